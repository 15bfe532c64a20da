/* nf_url.c - see nf_url.h. */
#include "nf_url.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nf_url_parse(const char *url, nf_url *out, char *err, size_t errlen)
{
    const char *p = url, *host, *host_end, *rest;
    unsigned long port = 80;

    memset(out, 0, sizeof(*out));
    if (strncmp(p, "ws://", 5) != 0) {
        snprintf(err, errlen, "only ws:// URLs are supported: %s", url);
        return -1;
    }
    p += 5;
    if (*p == '[') {                      /* IPv6 literal */
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL) {
            snprintf(err, errlen, "unterminated [ in %s", url);
            return -1;
        }
        rest = host_end + 1;
    } else {
        host = p;
        host_end = host + strcspn(host, ":/?");
        rest = host_end;
    }
    if (host_end == host || (size_t)(host_end - host) >= sizeof(out->host)) {
        snprintf(err, errlen, "bad host in %s", url);
        return -1;
    }
    memcpy(out->host, host, (size_t)(host_end - host));
    if (*rest == ':') {
        char *end;
        port = strtoul(rest + 1, &end, 10);
        if (end == rest + 1 || port == 0 || port > 65535) {
            snprintf(err, errlen, "bad port in %s", url);
            return -1;
        }
        rest = end;
    }
    out->port = (unsigned short)port;
    if (*rest == '\0') {
        strcpy(out->path, "/");
    } else if (*rest == '/' || *rest == '?') {
        if (snprintf(out->path, sizeof(out->path), "%s%s", *rest == '?' ? "/" : "", rest) >=
            (int)sizeof(out->path)) {
            snprintf(err, errlen, "path too long in %s", url);
            return -1;
        }
    } else {
        snprintf(err, errlen, "bad URL %s", url);
        return -1;
    }
    snprintf(out->hostport, sizeof(out->hostport), strchr(out->host, ':') ? "[%s]:%u" : "%s:%u",
             out->host, (unsigned)out->port);

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

bool nf_url_is_loopback(const nf_url *u)
{
    if (u->addr.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&u->addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (u->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&u->addr;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}
