/* url.h - the broker URLs of the scale-out flags:
 *     redis://[user[:password]@]host[:port][/db]
 *     nats://[user[:password]@|token@]host[:port]
 * A missing "scheme://" means the caller's default scheme. Hosts may be
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
    char path[256];         /* after the first '/', empty when none */
} nf_url;

/* Parses s. Returns 0, or -1 with a message in err ("bad port in ...").
 * default_scheme is used when s has no "://". */
int nf_url_parse(const char *s, const char *default_scheme, nf_url *out, char *err, size_t errcap);

#endif
