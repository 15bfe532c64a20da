/* exchange_redis.c - the Redis transport of the scale-out bus (docs/protocol.md
 * §14.3), with hiredis's async API on the host's libevent loop.
 *
 * One subscriber and one publisher connection per process, whatever the
 * number of WebSocket clients (Go neffos opens one Redis connection per
 * client). Channels are subscribed with SUBSCRIBE, not Go's PSUBSCRIBE:
 * Redis delivers a PUBLISH to exact subscribers and pattern subscribers
 * alike, so Go publishers still reach us, and a '*', '?' or '[' in a
 * namespace cannot turn into a wildcard here.
 *
 * Each connection reconnects on its own with backoff (100 ms doubling to
 * 5 s); when the subscriber comes back every channel in use is subscribed
 * again. While the publisher is down, or its output buffer is over
 * NF_BUS_MAX_PENDING_BYTES, publishes are dropped (counted by the bus).
 *
 * hiredis 0.14 detail: an "unsubscribe" reply deletes the channel's
 * callback even if a newer SUBSCRIBE for it is already on its way, which
 * would leave the channel subscribed with nobody to hand its messages to.
 * So on every "unsubscribe" reply we ask the bus whether the channel is
 * wanted again and, if so, subscribe it once more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "exchange_bus.h"
#include "log.h"
#include "url.h"

#define CONNECT_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS 2000

typedef struct redis_x redis_x;

typedef struct redis_link {
    redis_x *x;
    const char *role;             /* "subscriber" or "publisher", for the log */
    redisAsyncContext *ac;        /* NULL while waiting to reconnect */
    bool up;
    bool is_sub;
    nf_backoff backoff;
    struct event *timer;          /* reconnect delay, or connect timeout */
} redis_link;

struct redis_x {
    nf_bus *bus;
    struct event_base *base;
    nf_url url;
    int db;
    redis_link sub, pub;
    bool closing;
};

static void link_connect(redis_link *l);

/* ---- connection life cycle --------------------------------------------------- */

static void update_connected(redis_x *x) { nf_bus_set_connected(x->bus, x->sub.up && x->pub.up); }

static void arm(redis_link *l, unsigned ms)
{
    struct timeval tv = nf_clock_timeval(ms);
    evtimer_add(l->timer, &tv);
}

static void retry_later(redis_link *l, const char *why)
{
    unsigned ms = nf_backoff_next(&l->backoff);
    nf_warn("redis: %s connection to %s:%d: %s; reconnecting in %u ms", l->role, l->x->url.host, l->x->url.port,
            why, ms);
    arm(l, ms);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_link *l = ac->data;
    if (l == NULL || l->x->closing)
        return;
    evtimer_del(l->timer);
    if (status != REDIS_OK) {
        l->ac = NULL;   /* hiredis frees it after this callback */
        retry_later(l, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    l->up = true;
    nf_backoff_reset(&l->backoff);
    nf_info("redis: %s connected to %s:%d", l->role, l->x->url.host, l->x->url.port);
    update_connected(l->x);
    if (l->is_sub)
        nf_bus_resubscribe(l->x->bus);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_link *l = ac->data;
    if (l == NULL || l->x->closing)
        return;
    l->ac = NULL;       /* hiredis frees it after this callback */
    l->up = false;
    update_connected(l->x);
    retry_later(l, status == REDIS_OK ? "closed" : ac->errstr[0] ? ac->errstr : "lost");
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *what)
{
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        nf_error("redis: %s refused: %s", (const char *)what, reply->str);
        redisAsyncDisconnect(ac);     /* on_disconnect retries with backoff */
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    redis_link *l = arg;
    if (l->ac && !l->up) {
        /* Connect timeout: no callback runs for a context freed before it connected. */
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
        retry_later(l, "connect timed out");
        return;
    }
    link_connect(l);
}

static void sub_cb(redisAsyncContext *ac, void *r, void *privdata);

static void link_connect(redis_link *l)
{
    redis_x *x = l->x;
    redisAsyncContext *ac = redisAsyncConnect(x->url.host, x->url.port);
    if (ac == NULL || ac->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        retry_later(l, why);
        return;
    }
    ac->data = l;
    redisLibeventAttach(ac, x->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    /* Queued now, written as soon as the connection is up, answered before
     * anything else we send. */
    if (x->url.has_password) {
        if (x->url.has_user)
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", x->url.user, x->url.password);
        else
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", x->url.password);
    }
    if (x->db && !l->is_sub)
        redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %d", x->db);
    arm(l, CONNECT_TIMEOUT_MS);
}

/* ---- the transport ------------------------------------------------------------- */

static nf_slice reply_slice(const redisReply *r) { return nf_slice_of(r->str ? r->str : "", (size_t)r->len); }

/* Every subscribed channel's callback: messages, and the broker's
 * confirmations of SUBSCRIBE and UNSUBSCRIBE. */
static void sub_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_x *x = privdata;
    redisReply *reply = r;
    if (reply == NULL || x->closing || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    nf_slice channel = reply_slice(reply->element[1]);
    if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING)
        nf_bus_receive(x->bus, channel, reply_slice(reply->element[2]));
    else if (strcmp(kind, "subscribe") == 0)
        nf_bus_subscribed(x->bus, channel);
    else if (strcmp(kind, "unsubscribe") == 0 && nf_bus_wants(x->bus, channel))
        redisAsyncCommand(ac, sub_cb, x, "SUBSCRIBE %b", channel.ptr, channel.len);
}

static nf_bus_sub redis_subscribe(void *t, nf_slice channel)
{
    redis_x *x = t;
    if (!x->sub.up || redisAsyncCommand(x->sub.ac, sub_cb, x, "SUBSCRIBE %b", channel.ptr, channel.len) != REDIS_OK)
        return NF_BUS_SUB_DOWN;
    /* Written now rather than on the next loop turn: the core subscribes a
     * namespace right after queueing the client's answer, and the client may
     * broadcast through another process as soon as it has it. Not through
     * redisAsyncHandleWrite, which may free the context on an error; an
     * error here shows up on the next regular write. */
    int done;
    redisBufferWrite(&x->sub.ac->c, &done);
    return NF_BUS_SUB_SENT;
}

static void redis_unsubscribe(void *t, nf_slice channel)
{
    redis_x *x = t;
    if (x->sub.up)
        redisAsyncCommand(x->sub.ac, NULL, NULL, "UNSUBSCRIBE %b", channel.ptr, channel.len);
}

static int redis_publish(void *t, nf_slice channel, nf_slice payload)
{
    redis_x *x = t;
    if (!x->pub.up || sdslen(x->pub.ac->c.obuf) > NF_BUS_MAX_PENDING_BYTES)
        return NF_EAGAIN;
    return redisAsyncCommand(x->pub.ac, NULL, NULL, "PUBLISH %b %b", channel.ptr, channel.len, payload.ptr,
                             payload.len) == REDIS_OK ? 0 : NF_EAGAIN;
}

static void redis_free(void *t)
{
    redis_x *x = t;
    x->closing = true;
    redis_link *links[2] = { &x->sub, &x->pub };
    for (int i = 0; i < 2; i++) {
        if (links[i]->ac)
            redisAsyncFree(links[i]->ac);
        if (links[i]->timer)
            event_free(links[i]->timer);
    }
    free(x);
}

static const nf_bus_transport_ops redis_ops = {
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .publish = redis_publish,
    .valid = NULL,       /* a Redis channel name is any byte string */
    .free = redis_free,
};

/* ---- construction --------------------------------------------------------------- */

static int parse_config(redis_x *x, const char *url, char *err, size_t errcap)
{
    if (nf_url_parse(url, "redis", &x->url, err, errcap) != 0)
        return -1;
    if (x->url.query[0]) {
        snprintf(err, errcap, "query not supported in URL \"%s\"", url);
        return -1;
    }
    if (strcmp(x->url.scheme, "redis") != 0) {
        snprintf(err, errcap, "unsupported scheme \"%s\" in %s (redis:// only; no TLS)", x->url.scheme, url);
        return -1;
    }
    if (x->url.port == 0)
        x->url.port = 6379;
    char *end;
    long db = x->url.path[0] ? strtol(x->url.path, &end, 10) : 0;
    if (x->url.path[0] && (*end || db < 0 || db > 1000000)) {
        snprintf(err, errcap, "bad database number \"%s\" in %s", x->url.path, url);
        return -1;
    }
    x->db = (int)db;
    return 0;
}

/* One blocking round trip at start, so that a wrong address or password is
 * a clear error instead of a process that quietly serves its own clients only. */
static int probe(const redis_x *x, char *err, size_t errcap)
{
    struct timeval tv = { PROBE_TIMEOUT_MS / 1000, 0 };
    redisContext *c = redisConnectWithTimeout(x->url.host, x->url.port, tv);
    redisReply *r = NULL;
    int rc = -1;
    if (c == NULL || c->err) {
        snprintf(err, errcap, "cannot reach redis at %s:%d: %s", x->url.host, x->url.port,
                 c ? c->errstr : "out of memory");
        goto done;
    }
    redisSetTimeout(c, tv);
    if (x->url.has_password)
        r = x->url.has_user ? redisCommand(c, "AUTH %s %s", x->url.user, x->url.password)
                            : redisCommand(c, "AUTH %s", x->url.password);
    else
        r = redisCommand(c, "PING");
    if (r == NULL)
        snprintf(err, errcap, "redis at %s:%d: %s", x->url.host, x->url.port, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errcap, "redis at %s:%d refused: %s", x->url.host, x->url.port, r->str);
    else
        rc = 0;
done:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return rc;
}

static int link_init(redis_x *x, redis_link *l, const char *role, bool is_sub)
{
    l->x = x;
    l->role = role;
    l->is_sub = is_sub;
    l->timer = evtimer_new(x->base, timer_cb, l);
    return l->timer ? 0 : -1;
}

nf_exchange *nf_exchange_redis_new(nf_host *h, const char *url, const char *prefix, char *err, size_t errcap)
{
    redis_x *x = calloc(1, sizeof *x);
    if (x == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    x->base = nf_host_base(h);
    if (parse_config(x, url, err, errcap) != 0 || probe(x, err, errcap) != 0)
        goto fail;
    if (link_init(x, &x->sub, "subscriber", true) != 0 || link_init(x, &x->pub, "publisher", false) != 0 ||
        (x->bus = nf_bus_new(h, prefix && *prefix ? prefix : "neffos", NF_BUS_NAMES_REDIS, &redis_ops, x)) == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    nf_info("redis: sharing broadcasts through %s:%d with prefix \"%s\"", x->url.host, x->url.port,
            prefix && *prefix ? prefix : "neffos");
    link_connect(&x->sub);
    link_connect(&x->pub);
    return nf_bus_exchange(x->bus);
fail:
    if (x->sub.timer)
        event_free(x->sub.timer);
    if (x->pub.timer)
        event_free(x->pub.timer);
    free(x);
    return NULL;
}
