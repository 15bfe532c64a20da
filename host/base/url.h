/* url.h - the one URL parser of the project (RFC 3986 generic syntax, the
 * parts this server needs):
 *     scheme://[user[:password]@]host[:port][/path][?query]
 * used for the broker flags (redis://...[/db], nats://[token@]host[:port])
 * and for the ws:// URLs of the C client (host/client/nf_target.h).
 * A missing "scheme://" means the caller's default scheme. A fragment
 * ("#...") is refused; a query is returned for the caller to accept or not. Hosts may be
 * names, IPv4 addresses or IPv6 addresses in brackets. User and password
 * are percent-decoded (a password with '@' or ':' is written %40, %3A).
 *
 * Pure: no allocation, no I/O; fields are fixed-size and NUL-terminated. */
#ifndef NF_URL_H
#define NF_URL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct nf_url {
    char scheme[16];
    char user[256];
    char password[256];
    bool has_user;          /* "user@" or "user:password@" was given */
    bool has_password;      /* ":password" was given (possibly empty user) */
    char host[256];         /* without brackets */
    int port;               /* 0 when not given */
    char path[1024];        /* after the first '/', up to '?'; empty when none */
    char query[1024];       /* after '?', empty when none */
} nf_url;

/* Parses s into out. Returns 0, or -1 with a one-line message in err
 * ("bad host or port in URL \"...\"").
 * default_scheme is used when s has no "://". */
int nf_url_parse(const char *s, const char *default_scheme, nf_url *out, char *err, size_t errcap);

#endif
