/* barrier.c - the output barrier: frames after a namespace connect or room
 * join reply are held until the client has answered a ping sent right
 * after that reply.
 *
 * Why: neffos.js registers a namespace (and a room) in a promise
 * continuation after the reply resolves its ask. ws >= 8.17 emits every
 * frame of one TCP read synchronously, before any continuation runs, so a
 * frame read together with the reply (a welcome emit from
 * OnNamespaceConnected, a forced join) finds no namespace and is dropped.
 * A ping written in the same write as the reply is parsed in that same
 * read and answered at once (ws answers pings synchronously; browsers and
 * the Go client answer them too); frames released only once its pong is
 * back arrive in a later read, after the continuation ran. One ping per
 * connect or join, no timing luck.
 *
 * Held frames stay counted in the outgoing bound. A client that does not
 * answer within NF_BARRIER_TIMEOUT_MS (once its ping left) gets the held
 * frames anyway and no more barriers: it is never held for good.
 *
 * Several barriers can be pending (two connects in a row): each releases
 * what follows it only up to the next ping. A pong answers its ping and
 * every earlier one (RFC 6455 5.5.3 lets a client answer only the latest). */
#include "internal.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"

/* The ping payload: a marker and the barrier's sequence number. */
#define PAYLOAD_LEN 8
static const char marker[4] = { 'n', 'f', 'b', '1' };

static void encode(uint32_t seq, uint8_t *p)
{
    memcpy(p, marker, 4);
    for (int i = 0; i < 4; i++)
        p[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
}

static bool decode(const uint8_t *p, size_t len, uint32_t *seq)
{
    if (len != PAYLOAD_LEN || memcmp(p, marker, 4) != 0)
        return false;
    *seq = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    return true;
}

/* Held bytes that belong to barriers 1..count-1 (the rest follows the last ping). */
static size_t held_in_barriers(const nf_barrier *b)
{
    size_t n = 0;
    for (unsigned k = 1; k < b->count; k++)
        n += b->upto[k];
    return n;
}

void nf_barrier_add(nf_conn *c)
{
    nf_barrier *b = &c->barrier;
    uint8_t payload[PAYLOAD_LEN];
    if (b->off || !nf_conn_can_write(c))
        return;
    uint32_t seq = ++b->next_seq;
    encode(seq, payload);
    if (b->count == 0) {
        if (b->held == NULL && (b->held = evbuffer_new()) == NULL)
            return;
        if (nf_ws_ping(nf_conn_ws(c), payload, sizeof payload) != 0)
            return;
        nf_ws_hold_output(nf_conn_ws(c), b->held);
        b->seq[0] = seq;
        b->count = 1;
        b->since_ms = nf_now_ms();
        return;
    }
    /* Already holding: this ping goes to the held bytes, behind the reply. */
    if (nf_ws_ping(nf_conn_ws(c), payload, sizeof payload) != 0)
        return;
    size_t since_last = evbuffer_get_length(b->held) - held_in_barriers(b);
    if (b->count < NF_BARRIERS_MAX) {
        b->seq[b->count] = seq;
        b->upto[b->count] = since_last;
        b->count++;
    } else {
        /* Full: the last barrier waits for this newer ping instead. */
        b->seq[b->count - 1] = seq;
        b->upto[b->count - 1] += since_last;
    }
}

/* Releases barriers 0..i: what they held goes to the output, up to the ping
 * of barrier i + 1 if there is one. */
static void release_through(nf_conn *c, unsigned i)
{
    nf_barrier *b = &c->barrier;
    struct evbuffer *out = nf_conn_output(c);
    if (i + 1 >= b->count) {
        if (out)
            evbuffer_add_buffer(out, b->held);
        if (nf_conn_ws(c))
            nf_ws_hold_output(nf_conn_ws(c), NULL);
        b->count = 0;
    } else {
        size_t n = 0;
        for (unsigned k = 1; k <= i + 1; k++)
            n += b->upto[k];
        if (out)
            evbuffer_remove_buffer(b->held, out, n);
        unsigned left = b->count - (i + 1);
        for (unsigned k = 0; k < left; k++) {
            b->seq[k] = b->seq[k + i + 1];
            b->upto[k] = b->upto[k + i + 1];
        }
        b->count = left;
        b->since_ms = nf_now_ms();
    }
    if (out)
        nf_conn_want_flush(c);
}

void nf_barrier_pong(nf_conn *c, const uint8_t *payload, size_t len)
{
    nf_barrier *b = &c->barrier;
    uint32_t seq;
    if (b->count == 0 || !decode(payload, len, &seq))
        return;   /* an unsolicited pong (RFC 6455 5.5.3): nothing to do */
    for (unsigned i = 0; i < b->count; i++) {
        if (b->seq[i] == seq) {
            release_through(c, i);
            return;
        }
    }
}

void nf_barrier_release_all(nf_conn *c)
{
    if (c->barrier.count > 0)
        release_through(c, c->barrier.count - 1);
}

void nf_barrier_sweep(nf_conn *c, uint64_t now)
{
    nf_barrier *b = &c->barrier;
    if (b->count == 0 || now - b->since_ms < NF_BARRIER_TIMEOUT_MS)
        return;
    if (nf_conn_output(c) && evbuffer_get_length(nf_conn_output(c)) > 0)
        return;   /* the ping has not left yet: a slow reader, not a silent one */
    nf_info("conn %.*s (%s): no pong within %d ms, sending held frames; no more ping barriers",
            (int)nf_conn_id(c).len, nf_conn_id(c).ptr, nf_conn_remote_addr(c), NF_BARRIER_TIMEOUT_MS);
    b->off = true;
    nf_barrier_release_all(c);
}

size_t nf_barrier_held_bytes(const nf_conn *c)
{
    return c->barrier.held ? evbuffer_get_length(c->barrier.held) : 0;
}

void nf_barrier_free(nf_conn *c)
{
    if (c->barrier.held) {
        evbuffer_free(c->barrier.held);
        c->barrier.held = NULL;
    }
    c->barrier.count = 0;
}
