/* exchange.h - scale-out: several neffos processes acting as one, over a
 * broker (Redis pub/sub, NATS). The core calls these hooks; each broker
 * implements nf_exchange_ops in its own file. */
#ifndef NF_EXCHANGE_H
#define NF_EXCHANGE_H

#include "proto.h"

typedef struct nf_exchange nf_exchange;

typedef struct nf_exchange_ops {
    /* Publish a broadcast for the other processes (local delivery is done
     * by the core itself). */
    void (*publish)(nf_exchange *x, nf_endpoint *ep, const nf_broadcast *b);
    /* Subscriptions are reference-counted by the implementation: one call
     * per local namespace connection / local connection ID. */
    void (*subscribe_ns)(nf_exchange *x, nf_endpoint *ep, nf_slice ns);
    void (*unsubscribe_ns)(nf_exchange *x, nf_endpoint *ep, nf_slice ns);
    void (*subscribe_id)(nf_exchange *x, nf_endpoint *ep, nf_slice id);
    void (*unsubscribe_id)(nf_exchange *x, nf_endpoint *ep, nf_slice id);
    /* Ask the connections with this ID on the other processes; the first
     * answer wins. cb exactly once. Returns a handle for ask_cancel, or NULL
     * when cb was called already. binary: the question is a binary frame
     * (the other workers of this process keep it; a broker's question is
     * text, Go's bus message has no frame type: docs/protocol.md §14.7). */
    void *(*ask)(nf_exchange *x, nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                 nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud);
    /* Ends an ask before its cb ran: the cb runs now, with NF_ASK_CLOSED. */
    void (*ask_cancel)(nf_exchange *x, void *handle);
    void (*free)(nf_exchange *x);
    /* Optional: the open connections of ep's path in the whole process
     * (--workers N: every worker's), ep's own included. NULL: ep's count. */
    size_t (*count)(nf_exchange *x, nf_endpoint *ep);
    /* Optional: a message from a broker was delivered to ep's connections;
     * pass it on to the other workers of this process (--workers N). */
    void (*relay)(nf_exchange *x, nf_endpoint *ep, const nf_broadcast *b);
} nf_exchange_ops;

struct nf_exchange {
    const nf_exchange_ops *ops;
    nf_host *host;
};

/* Installs x on the host (the host frees it). */
void nf_host_set_exchange(nf_host *h, nf_exchange *x);

void nf_exchange_publish(nf_exchange *x, nf_endpoint *ep, const nf_broadcast *b);
void nf_exchange_subscribe(nf_exchange *x, nf_endpoint *ep, nf_slice ns);
void nf_exchange_unsubscribe(nf_exchange *x, nf_endpoint *ep, nf_slice ns);
void nf_exchange_conn_added(nf_exchange *x, nf_endpoint *ep, nf_slice id);
void nf_exchange_conn_removed(nf_exchange *x, nf_endpoint *ep, nf_slice id);
void *nf_exchange_ask(nf_exchange *x, nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                      nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud);
void nf_exchange_ask_cancel(nf_exchange *x, void *handle);

/* For implementations: deliver a message received from the broker to the
 * local connections (namespace/room/To checks, except the marked sender);
 * with --workers N, to every worker's. */
size_t nf_exchange_deliver_local(nf_endpoint *ep, const nf_broadcast *b);

/* For implementations: true when x is not the host's exchange itself but
 * sits behind one that relays to the other workers of this process
 * (--workers N): what x receives is then for every worker's connections,
 * a connection ID included, not for its own host's alone. */
bool nf_exchange_relayed(const nf_exchange *x);

/* For implementations: b delivered to the connections of ep's host alone:
 * not published, not relayed, not counted as received (a broadcast another
 * worker of this process handed over). Returns the number of receivers. */
size_t nf_exchange_deliver_host(nf_endpoint *ep, const nf_broadcast *b);

/* For implementations: a question by ID (`to`) asked of the connections of
 * ep's host alone, never published (a question from the broker or from
 * another worker). A binary frame if binary (another worker's binary
 * question), else text; timeout_ms 0 means the default ask timeout;
 * cb exactly once, possibly before this returns, as nf_endpoint_ask. */
void nf_exchange_ask_host(nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event, nf_slice body,
                          bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud);

/* For implementations: true while a broker's question is being asked of
 * this process's connections (set around that ask, on its thread): the
 * workers' exchange then asks the other workers, not the broker again. */
void nf_exchange_set_serving(bool on);
bool nf_exchange_serving(void);

/* The brokers (exchange_redis.c, exchange_nats.c). Each checks at once that
 * the broker answers (a blocking probe of at most 2 s) and returns NULL with
 * a message in err if not; afterwards it reconnects on its own. prefix NULL
 * or "" means "neffos". Install the result with nf_host_set_exchange().
 *     redis://[user[:password]@]host[:port][/db]     (port 6379)
 *     nats://[user[:password]@|token@]host[:port]    (port 4222) */
nf_exchange *nf_exchange_redis_new(nf_host *h, const char *url, const char *prefix, char *err, size_t errcap);
nf_exchange *nf_exchange_nats_new(nf_host *h, const char *url, const char *prefix, char *err, size_t errcap);

#endif
