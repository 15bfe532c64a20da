/* nf_target.c - see nf_target.h. */
#include "nf_target.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "url.h"

int nf_target_resolve(const char *url, nf_target *out, char *err, size_t errlen)
{
    nf_url u;
    memset(out, 0, sizeof(*out));
    if (nf_url_parse(url, "ws", &u, err, errlen) != 0)
        return -1;
    if (strcmp(u.scheme, "ws") != 0) {
        snprintf(err, errlen, "only ws:// URLs are supported: %s", url);
        return -1;
    }
    if (u.has_user || u.has_password) {
        snprintf(err, errlen, "user info not supported in %s", url);
        return -1;
    }
    out->port = (unsigned short)(u.port ? u.port : 80);
    snprintf(out->host, sizeof(out->host), "%s", u.host);
    snprintf(out->hostport, sizeof(out->hostport), strchr(u.host, ':') ? "[%s]:%u" : "%s:%u", u.host,
             (unsigned)out->port);
    if (snprintf(out->path, sizeof(out->path), "/%s%s%s", u.path, u.query[0] ? "?" : "", u.query) >=
        (int)sizeof(out->path)) {
        snprintf(err, errlen, "path too long in %s", url);
        return -1;
    }

    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)out->port);
    int rc = getaddrinfo(out->host, portstr, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cannot resolve %s: %s", out->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

bool nf_target_is_loopback(const nf_target *t)
{
    if (t->addr.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&t->addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (t->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&t->addr;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}
