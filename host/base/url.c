/* url.c - see url.h. */
#include "url.h"

#include <stdio.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copies [p, p+n) into dst (cap bytes), percent-decoding. -1 if it does not
 * fit or an escape is malformed. */
static int decode(const char *p, size_t n, char *dst, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (w + 1 >= cap)
            return -1;
        dst[w++] = c;
    }
    dst[w] = '\0';
    return 0;
}

static int copy(const char *p, size_t n, char *dst, size_t cap)
{
    if (n >= cap)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

static int fail(char *err, size_t errcap, const char *what, const char *s)
{
    snprintf(err, errcap, "%s in URL \"%s\"", what, s);
    return -1;
}

static int parse_userinfo(const char *p, size_t n, nf_url *u)
{
    const char *colon = memchr(p, ':', n);
    size_t ulen = colon ? (size_t)(colon - p) : n;
    if (decode(p, ulen, u->user, sizeof u->user) != 0)
        return -1;
    u->has_user = ulen > 0;
    if (colon) {
        if (decode(colon + 1, n - ulen - 1, u->password, sizeof u->password) != 0)
            return -1;
        u->has_password = true;
    }
    return 0;
}

static int parse_port(const char *p, size_t n, int *port)
{
    int v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* host[:port] or [v6][:port] */
static int parse_hostport(const char *p, size_t n, nf_url *u)
{
    const char *port = NULL;
    size_t hlen;
    if (n && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (close == NULL || close == p + 1)
            return -1;
        if (copy(p + 1, (size_t)(close - p - 1), u->host, sizeof u->host) != 0)
            return -1;
        size_t rest = n - (size_t)(close - p) - 1;
        if (rest == 0)
            return 0;
        if (close[1] != ':')
            return -1;
        return parse_port(close + 2, rest - 1, &u->port);
    }
    port = memchr(p, ':', n);
    hlen = port ? (size_t)(port - p) : n;
    if (hlen == 0 || copy(p, hlen, u->host, sizeof u->host) != 0)
        return -1;
    return port ? parse_port(port + 1, n - hlen - 1, &u->port) : 0;
}

int nf_url_parse(const char *s, const char *default_scheme, nf_url *u, char *err, size_t errcap)
{
    memset(u, 0, sizeof *u);
    const char *p = s, *sep = strstr(s, "://");
    if (sep) {
        if (sep == s || copy(s, (size_t)(sep - s), u->scheme, sizeof u->scheme) != 0)
            return fail(err, errcap, "bad scheme", s);
        p = sep + 3;
    } else if (copy(default_scheme, strlen(default_scheme), u->scheme, sizeof u->scheme) != 0) {
        return fail(err, errcap, "bad scheme", s);
    }
    if (strchr(p, '#'))
        return fail(err, errcap, "fragment not supported", s);
    const char *q = strchr(p, '?');
    size_t before_q = q ? (size_t)(q - p) : strlen(p);
    if (q && copy(q + 1, strlen(q + 1), u->query, sizeof u->query) != 0)
        return fail(err, errcap, "query too long", s);
    const char *slash = memchr(p, '/', before_q);
    size_t auth_len = slash ? (size_t)(slash - p) : before_q;
    if (slash && copy(slash + 1, before_q - auth_len - 1, u->path, sizeof u->path) != 0)
        return fail(err, errcap, "path too long", s);
    /* The last '@' ends the user info: a password may hold a raw '@'. */
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (p[i] == '@')
            at = p + i;
    if (at) {
        if (parse_userinfo(p, (size_t)(at - p), u) != 0)
            return fail(err, errcap, "bad user or password", s);
        auth_len -= (size_t)(at - p) + 1;
        p = at + 1;
    }
    if (parse_hostport(p, auth_len, u) != 0)
        return fail(err, errcap, "bad host or port", s);
    return 0;
}
