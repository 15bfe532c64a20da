/* refusal.h - connections refused before they become neffos connections
 * (limits, malformed requests, origins, on_connect, handshake timeouts, failed
 * TLS handshakes):
 * each is counted in neffos_refusals_total{reason} and logged at info with
 * the remote address, at most one line per reason per second, so that a
 * flood of refusals cannot flood the log. The refusals left out are counted
 * and their number is logged with the next line of that reason, or by the
 * host's sweep once the second is over: every refusal is accounted for. */
#ifndef NF_REFUSAL_H
#define NF_REFUSAL_H

#include <stdbool.h>
#include <stdint.h>

typedef enum nf_refusal_reason {
    NF_REFUSED_LIMIT,               /* --max-connections, --max-connections-per-ip */
    NF_REFUSED_BAD_REQUEST,         /* malformed, oversized, or not a valid upgrade */
    NF_REFUSED_ORIGIN,              /* --allowed-origins */
    NF_REFUSED_ON_CONNECT,          /* the app's on_connect said no */
    NF_REFUSED_HANDSHAKE_TIMEOUT,   /* --handshake-timeout-ms */
    NF_REFUSED_TLS_HANDSHAKE,       /* the TLS handshake failed (not TLS, no shared version or cipher, ...) */
    NF_REFUSAL_REASONS
} nf_refusal_reason;

/* Per reason: when its last line was logged, and how many were left out since. */
typedef struct nf_refusal_log {
    uint64_t logged_ms;
    uint64_t left_out;
    bool ever;
} nf_refusal_log;

struct nf_host;

/* Counts a refusal of the connection from remote ("1.2.3.4:5678") and logs
 * "refused <reason> from <remote>: <what>" unless a line of this reason was
 * logged less than a second ago. what is printf-formatted. */
void nf_refusal(struct nf_host *h, nf_refusal_reason why, const char *remote, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct nf_conn;
struct nf_endpoint;

/* The same for a connection whose request named endpoint ep (NULL: none),
 * which is then told to the application (nf_app_ops.refused) with the
 * reason's metric name ("origin", ...) and the text: every time, not
 * rate-limited like the log. */
void nf_refusal_conn(struct nf_conn *c, struct nf_endpoint *ep, nf_refusal_reason why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Only tells the application (a refusal counted elsewhere: the ID's). */
void nf_refusal_tell(struct nf_conn *c, struct nf_endpoint *ep, const char *reason, const char *what);

/* Logs the number of refusals left out by a reason whose second is over
 * (called by the host's sweep). */
void nf_refusal_sweep(struct nf_host *h, uint64_t now_ms);

#endif
