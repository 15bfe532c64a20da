/* exchange_bus.h - the broker-independent half of scale-out (docs/protocol.md
 * §14): channel names, reference-counted subscriptions, the payload and its
 * field-0 marker, delivery of what the broker sends, and asks across
 * processes. A broker client (exchange_redis.c, exchange_nats.c) supplies
 * a transport: subscribe, unsubscribe, publish; and tells the bus what
 * happens on its side (connected, subscription confirmed, message).
 *
 * Channel names follow the Go exchanges so C and Go nodes can share a broker:
 *     Redis  <prefix>.<namespace>.   <prefix>.<connection ID>.   <token>
 *     NATS   <prefix>.<namespace>    <prefix>.<encoded ID>       <token>
 * (NATS: the empty namespace is the bare <prefix>, which Go cannot use; an
 * ID is percent-encoded into one subject token, exchange_key.h, so a Go
 * node addresses only the IDs that encoding leaves unchanged.)
 *
 * The bus runs on the host's loop. Delivery is at-most-once: a message
 * published while the broker is away is dropped and counted. */
#ifndef NF_EXCHANGE_BUS_H
#define NF_EXCHANGE_BUS_H

#include <stdbool.h>

#include "exchange.h"

typedef struct nf_bus nf_bus;

/* What a transport's subscribe() did. */
typedef enum nf_bus_sub {
    NF_BUS_SUB_DOWN = -1,     /* not connected: nf_bus_resubscribe() will ask again */
    NF_BUS_SUB_SENT = 0,      /* effective once confirmed with nf_bus_subscribed() */
    NF_BUS_SUB_ORDERED = 1    /* effective for every later publish of this process
                                 (NATS: one connection, the server keeps the order) */
} nf_bus_sub;

typedef struct nf_bus_transport_ops {
    nf_bus_sub (*subscribe)(void *t, nf_slice channel);
    void (*unsubscribe)(void *t, nf_slice channel);        /* no-op when down */
    /* 0 = handed to the broker connection; NF_EAGAIN = dropped (down,
     * output full), NF_EINVAL = over the broker's maximum payload. */
    int (*publish)(void *t, nf_slice channel, nf_slice payload);
    /* Optional: false for a name the broker would refuse. */
    bool (*valid)(nf_slice channel);
    void (*free)(void *t);
} nf_bus_transport_ops;

typedef enum nf_bus_names { NF_BUS_NAMES_REDIS, NF_BUS_NAMES_NATS } nf_bus_names;

/* Output a transport may hold for a broker that does not read: above this,
 * publishes are dropped (metrics.exchange_dropped). */
#define NF_BUS_MAX_PENDING_BYTES (8u << 20)
/* Asks in flight across processes, each way. */
#define NF_BUS_MAX_ASKS 4096

/* The bus takes ownership of t (freed with ops->free). Returns NULL on
 * allocation failure (t is then not freed). */
nf_bus *nf_bus_new(nf_host *h, const char *prefix, nf_bus_names names, const nf_bus_transport_ops *ops, void *t);
nf_exchange *nf_bus_exchange(nf_bus *b);
nf_host *nf_bus_host(nf_bus *b);
/* Largest payload accepted from or published to the broker. */
size_t nf_bus_max_payload(const nf_bus *b);

/* ---- called by transports ---- */

/* The broker connection is up (true) or down: metrics.exchange_connected. */
void nf_bus_set_connected(nf_bus *b, bool up);
/* The subscriber link is (again) connected: subscribes every channel in use. */
void nf_bus_resubscribe(nf_bus *b);
/* The broker confirmed a subscription. */
void nf_bus_subscribed(nf_bus *b, nf_slice channel);
/* Is channel still in use? (A transport re-subscribes after a late unsubscribe.) */
bool nf_bus_wants(nf_bus *b, nf_slice channel);
/* A message arrived on channel. */
void nf_bus_receive(nf_bus *b, nf_slice channel, nf_slice payload);

/* ---- reconnect backoff: 100 ms doubling to 5 s ---- */

typedef struct nf_backoff {
    unsigned ms;
} nf_backoff;

static inline unsigned nf_backoff_next(nf_backoff *b)
{
    b->ms = b->ms == 0 ? 100 : b->ms >= 2500 ? 5000 : b->ms * 2;
    return b->ms;
}

static inline void nf_backoff_reset(nf_backoff *b) { b->ms = 0; }

#endif
