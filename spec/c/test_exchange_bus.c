/* test_exchange_bus.c - the broker-independent half of scale-out
 * (host/cluster/exchange_bus.h) over a fake transport that records what would go
 * to the broker: channel names, reference counting, the payload and its
 * marker, dropping our own messages, resubscription, asks across processes
 * (question after the confirmation, answer, timeout), drops while down. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "exchange_bus.h"
#include "exchange_marker.h"
#include "metrics.h"
#include "test.h"

typedef struct fake {
    char log[64][256];
    int n;
    bool up;
    nf_bus_sub sub_result;
} fake;

static fake F;

static void record(const char *op, nf_slice a, nf_slice b)
{
    if (F.n < 64)
        snprintf(F.log[F.n++], 256, "%s %.*s%s%.*s", op, (int)a.len, a.ptr, b.ptr ? " " : "", (int)b.len,
                 b.ptr ? b.ptr : "");
}

static nf_bus_sub f_sub(void *t, nf_slice ch)
{
    if (!F.up)
        return NF_BUS_SUB_DOWN;
    record("SUB", ch, (nf_slice){ NULL, 0 });
    return F.sub_result;
}

static void f_unsub(void *t, nf_slice ch) { record("UNSUB", ch, (nf_slice){ NULL, 0 }); }

static int f_pub(void *t, nf_slice ch, nf_slice payload)
{
    if (!F.up)
        return -1;
    record("PUB", ch, payload);
    return 0;
}

static void f_free(void *t) { (void)t; }

static const nf_bus_transport_ops fake_ops = { f_sub, f_unsub, f_pub, NULL, f_free };

static bool logged(const char *line)
{
    for (int i = 0; i < F.n; i++)
        if (strcmp(F.log[i], line) == 0)
            return true;
    return false;
}

static void reset(void) { F.n = 0; }

/* ---- a host with one endpoint and no connections ---- */

static bool has_ns(void *app, nf_endpoint *ep, nf_slice ns) { return true; }
static long gen_id(void *app, nf_endpoint *ep, nf_conn *c, char *id, size_t cap) { return NF_ID_DEFAULT; }
static void invoke(void *app, nf_invocation *inv) { nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0); }
static void freed(void *app, nf_conn *c) {}
static const nf_app_ops app_ops = { has_ns, gen_id, invoke, freed, NULL, NULL, NULL };

typedef struct ask_result {
    int calls;
    nf_ask_status st;
    char body[64];
} ask_result;

static void ask_cb(void *ud, nf_ask_status st, const nf_msg *reply)
{
    ask_result *r = ud;
    r->calls++;
    r->st = st;
    if (reply)
        snprintf(r->body, sizeof r->body, "%.*s", (int)reply->body.len, reply->body.ptr);
}

static void subscriptions(nf_exchange *x, nf_endpoint *ep)
{
    reset();
    nf_exchange_subscribe(x, ep, NF_SLICE("default"));
    nf_exchange_subscribe(x, ep, NF_SLICE("default"));
    nf_exchange_conn_added(x, ep, NF_SLICE("abc"));
    CHECK(F.n == 2 && logged("SUB P.default.") && logged("SUB P.abc."));
    nf_exchange_unsubscribe(x, ep, NF_SLICE("default"));
    CHECK(F.n == 2);
    nf_exchange_unsubscribe(x, ep, NF_SLICE("default"));
    CHECK(F.n == 3 && logged("UNSUB P.default."));
    nf_exchange_unsubscribe(x, ep, NF_SLICE("default"));    /* one too many: ignored */
    CHECK(F.n == 3);
}

static void publishing(nf_bus *b, nf_exchange *x, nf_endpoint *ep, nf_host *h)
{
    reset();
    nf_broadcast bc = { .ns = NF_SLICE("default"), .room = NF_SLICE("r;1"), .event = NF_SLICE("chat"),
                        .body = NF_SLICE("hi"), .except_id = NF_SLICE("someone") };
    nf_endpoint_broadcast(ep, &bc);
    CHECK(F.n == 1 && strncmp(F.log[0], "PUB P.default. neffos(0xC1:", 27) == 0);
    const char *payload = F.log[0] + strlen("PUB P.default. ");
    const char *semi = strchr(payload, ';');
    nf_marker mk;
    char buf[256];
    CHECK(semi && nf_marker_parse(nf_slice_of(payload, (size_t)(semi - payload)), &mk, buf) == NF_MARKER_OURS);
    CHECK_STR(mk.path, "/chat");
    CHECK_STR(mk.except_id, "someone");
    CHECK(strcmp(semi, ";default;r@%!semicolon@%!1;chat;0;0;hi") == 0);
    CHECK(nf_host_metrics(h)->exchange_published == 1);

    /* Our own message back from the broker: dropped (delivered locally already). */
    uint64_t received = nf_host_metrics(h)->exchange_received;
    nf_bus_receive(b, NF_SLICE("P.abc."), nf_slice_of(payload, strlen(payload)));
    CHECK(nf_host_metrics(h)->exchange_received == received);
    /* Another process's: delivered (to nobody here, but delivered). */
    nf_bus_receive(b, NF_SLICE("P.abc."), NF_SLICE(";default;;chat;0;0;from Go"));
    CHECK(nf_host_metrics(h)->exchange_received == received + 1);
    /* A channel nobody here subscribed: ignored. */
    nf_bus_receive(b, NF_SLICE("P.zzz."), NF_SLICE(";default;;chat;0;0;x"));
    CHECK(nf_host_metrics(h)->exchange_received == received + 1);

    /* To one ID that is not here: its own channel. */
    reset();
    bc = (nf_broadcast){ .ns = NF_SLICE("default"), .event = NF_SLICE("e"), .to = NF_SLICE("remote-1") };
    nf_endpoint_broadcast(ep, &bc);
    CHECK(F.n == 1 && strncmp(F.log[0], "PUB P.remote-1. ", 16) == 0);

    /* Broker down: dropped and counted, never queued. */
    F.up = false;
    uint64_t dropped = nf_host_metrics(h)->exchange_dropped;
    nf_endpoint_broadcast(ep, &bc);
    CHECK(nf_host_metrics(h)->exchange_dropped == dropped + 1);
    F.up = true;
}

static void asks(nf_bus *b, nf_exchange *x, nf_endpoint *ep, struct event_base *base)
{
    ask_result r = { 0 };
    char token[64], line[300];
    reset();
    F.sub_result = NF_BUS_SUB_SENT;
    nf_exchange_ask(x, ep, NF_SLICE("remote-2"), NF_SLICE("default"), NF_SLICE(""), NF_SLICE("q"),
                    NF_SLICE("body"), false, 5000, ask_cb, &r);
    CHECK(F.n == 1 && strncmp(F.log[0], "SUB ", 4) == 0);
    snprintf(token, sizeof token, "%.60s", F.log[0] + 4);
    CHECK(strspn(token, "0123456789") == strlen(token) && strlen(token) > 10);
    /* The question waits for the broker's confirmation of the subscription. */
    nf_bus_subscribed(b, nf_slice_of(token, strlen(token)));
    snprintf(line, sizeof line, "PUB P.remote-2. %s;default;;q;0;0;body", token);
    CHECK(F.n == 2 && strcmp(F.log[1], line) == 0);
    nf_bus_subscribed(b, nf_slice_of(token, strlen(token)));   /* a second confirmation: not sent again */
    CHECK(F.n == 2);
    CHECK(nf_bus_wants(b, nf_slice_of(token, strlen(token))));
    nf_bus_receive(b, nf_slice_of(token, strlen(token)), NF_SLICE(";default;;q;0;0;the answer"));
    CHECK(r.calls == 1 && r.st == NF_ASK_OK && strcmp(r.body, "the answer") == 0);
    snprintf(line, sizeof line, "UNSUB %s", token);
    CHECK(logged(line) && !nf_bus_wants(b, nf_slice_of(token, strlen(token))));

    /* An error answer. */
    memset(&r, 0, sizeof r);
    reset();
    F.sub_result = NF_BUS_SUB_ORDERED;      /* NATS: the question goes out at once */
    nf_exchange_ask(x, ep, NF_SLICE("remote-2"), NF_SLICE("default"), NF_SLICE(""), NF_SLICE("q"),
                    NF_SLICE(""), false, 5000, ask_cb, &r);
    CHECK(F.n == 2 && strncmp(F.log[1], "PUB P.remote-2. ", 16) == 0);
    snprintf(token, sizeof token, "%.60s", F.log[0] + 4);
    nf_bus_receive(b, nf_slice_of(token, strlen(token)), NF_SLICE(";default;;q;1;0;nope"));
    CHECK(r.calls == 1 && r.st == NF_ASK_REMOTE_ERROR && strcmp(r.body, "nope") == 0);

    /* Nobody answers: the timeout, and the token channel is given up. */
    memset(&r, 0, sizeof r);
    reset();
    nf_exchange_ask(x, ep, NF_SLICE("ghost"), NF_SLICE("default"), NF_SLICE(""), NF_SLICE("q"), NF_SLICE(""),
                    false, 50, ask_cb, &r);
    snprintf(token, sizeof token, "%.60s", F.log[0] + 4);
    for (int i = 0; i < 100 && r.calls == 0; i++)
        event_base_loop(base, EVLOOP_ONCE);
    CHECK(r.calls == 1 && r.st == NF_ASK_TIMEOUT);
    snprintf(line, sizeof line, "UNSUB %s", token);
    CHECK(logged(line));

    /* Asked while the broker is down: the question goes out after the
     * reconnection resubscribes the token channel. */
    memset(&r, 0, sizeof r);
    reset();
    F.up = false;
    nf_exchange_ask(x, ep, NF_SLICE("remote-3"), NF_SLICE("default"), NF_SLICE(""), NF_SLICE("q"), NF_SLICE("b"),
                    false, 5000, ask_cb, &r);
    CHECK(F.n == 0);
    F.up = true;
    nf_bus_resubscribe(b);
    CHECK(logged("SUB P.abc."));
    int pubs = 0;
    for (int i = 0; i < F.n; i++)
        pubs += strncmp(F.log[i], "PUB P.remote-3. ", 16) == 0;
    CHECK(pubs == 1);
    CHECK(r.calls == 0);
    /* Left pending: completed with NF_ASK_CLOSED when the exchange is freed. */
    static ask_result last;
    (void)last;
}

/* Names over --max-name-bytes, from other processes (a Go node may publish
 * anything) or from this one: never hashed, delivered, served or published. */
static void long_names(nf_bus *b, nf_endpoint *ep, nf_host *h)
{
    size_t max = nf_host_limits(h)->max_name_bytes;
    char *payload = malloc(max + 64), *name = malloc(max + 2);
    memset(name, 'r', max + 1);
    name[max + 1] = '\0';
    uint64_t received = nf_host_metrics(h)->exchange_received, hits = nf_host_metrics(h)->limit_name;

    snprintf(payload, max + 64, ";default;%s;chat;0;0;x", name);         /* a broadcast to a room */
    nf_bus_receive(b, NF_SLICE("P.abc."), nf_slice_of(payload, strlen(payload)));
    CHECK(nf_host_metrics(h)->exchange_received == received && nf_host_metrics(h)->limit_name == hits + 1);
    snprintf(payload, max + 64, "123456;default;;%s;0;0;x", name);       /* an ask of a local ID */
    nf_bus_receive(b, NF_SLICE("P.abc."), nf_slice_of(payload, strlen(payload)));
    CHECK(nf_host_metrics(h)->exchange_received == received && nf_host_metrics(h)->limit_name == hits + 2);
    name[max] = '\0';                                                    /* at the bound: delivered */
    snprintf(payload, max + 64, ";default;%s;chat;0;0;x", name);
    nf_bus_receive(b, NF_SLICE("P.abc."), nf_slice_of(payload, strlen(payload)));
    CHECK(nf_host_metrics(h)->exchange_received == received + 1 && nf_host_metrics(h)->limit_name == hits + 2);

    reset();                                                              /* published by this process */
    name[max] = 'r';
    nf_broadcast bc = { .ns = nf_slice_of(name, max + 1), .event = NF_SLICE("e") };
    CHECK(nf_endpoint_broadcast(ep, &bc) == 0);
    CHECK(F.n == 0 && nf_host_metrics(h)->limit_name == hits + 3);
    free(payload);
    free(name);
}

/* On a host of its own, whose exchange this bus is: broadcasts go through it. */
static void nats_names(struct event_base *base)
{
    nf_limits limits = nf_limits_default();
    nf_host *h = nf_host_new(base, &limits, &app_ops, NULL);
    nf_endpoint_config cfg = { 0 };
    nf_endpoint *ep = nf_host_add_endpoint(h, "/chat", &cfg);
    nf_bus *b = nf_bus_new(h, "neffos", NF_BUS_NAMES_NATS, &fake_ops, NULL);
    nf_exchange *x = nf_bus_exchange(b);
    nf_host_set_exchange(h, x);
    reset();
    F.sub_result = NF_BUS_SUB_ORDERED;
    x->ops->subscribe_ns(x, ep, NF_SLICE("default"));
    x->ops->subscribe_ns(x, ep, NF_SLICE(""));
    x->ops->subscribe_id(x, ep, NF_SLICE("c1"));
    CHECK(logged("SUB neffos.default") && logged("SUB neffos") && logged("SUB neffos.c1"));

    /* Any ID is one subject token, encoded (exchange_key.h); a namespace is
     * not encoded (Go's subjects). */
    reset();
    x->ops->subscribe_id(x, ep, NF_SLICE("bob smith.*>"));
    x->ops->subscribe_id(x, ep, NF_SLICE("alice@example.com"));
    x->ops->subscribe_ns(x, ep, NF_SLICE("a.b"));
    CHECK(F.n == 3 && logged("SUB neffos.bob%20smith%2E%2A%3E") && logged("SUB neffos.alice@example%2Ecom") &&
          logged("SUB neffos.a.b"));
    reset();
    nf_broadcast bc = { .ns = NF_SLICE("default"), .event = NF_SLICE("e"), .to = NF_SLICE("bob smith.*>"),
                        .except_id = NF_SLICE("x;y z") };
    nf_endpoint_broadcast(ep, &bc);
    CHECK(F.n == 1 && strncmp(F.log[0], "PUB neffos.bob%20smith%2E%2A%3E neffos(0xC1:", 44) == 0);
    /* The except-id travels encoded in the marker (field 0 ends at ';'). */
    const char *payload = strchr(F.log[0] + 4, ' ') + 1;
    const char *semi = strchr(payload, ';');
    nf_marker mk;
    char buf[256];
    CHECK(semi && nf_marker_parse(nf_slice_of(payload, (size_t)(semi - payload)), &mk, buf) == NF_MARKER_OURS);
    CHECK_STR(mk.except_id, "x;y z");
    CHECK(strcmp(semi, ";default;;e;0;0;") == 0);

    /* Our own question back on an ID channel we share: not asked again
     * (the local connections were asked directly). */
    reset();
    ask_result r = { 0 };
    void *handle = nf_exchange_ask(x, ep, NF_SLICE("bob smith.*>"), NF_SLICE("default"), NF_SLICE(""),
                                   NF_SLICE("q"), NF_SLICE("b"), false, 5000, ask_cb, &r);
    CHECK(handle != NULL && F.n == 2 && strncmp(F.log[1], "PUB neffos.bob%20smith%2E%2A%3E ", 32) == 0);
    const char *question = strchr(F.log[1] + 4, ' ') + 1;
    uint64_t received = nf_host_metrics(h)->exchange_received;
    nf_bus_receive(b, NF_SLICE("neffos.bob%20smith%2E%2A%3E"), nf_slice_of(question, strlen(question)));
    CHECK(nf_host_metrics(h)->exchange_received == received);
    /* Cancelled: the callback runs at once, the token channel is given up. */
    nf_exchange_ask_cancel(x, handle);
    CHECK(r.calls == 1 && r.st == NF_ASK_CLOSED);
    nf_host_free(h);       /* frees the exchange */
}

int main(void)
{
    struct event_base *base = event_base_new();
    nf_limits limits = nf_limits_default();
    nf_host *h = nf_host_new(base, &limits, &app_ops, NULL);
    nf_endpoint_config cfg = { 0 };
    nf_endpoint *ep = nf_host_add_endpoint(h, "/chat", &cfg);
    F.up = true;
    F.sub_result = NF_BUS_SUB_SENT;
    nf_bus *b = nf_bus_new(h, "P", NF_BUS_NAMES_REDIS, &fake_ops, NULL);
    nf_exchange *x = nf_bus_exchange(b);
    nf_host_set_exchange(h, x);
    nf_bus_set_connected(b, true);
    CHECK(nf_host_metrics(h)->exchange_connected == 1);

    subscriptions(x, ep);
    publishing(b, x, ep, h);
    asks(b, x, ep, base);
    long_names(b, ep, h);
    nats_names(base);
    /* The Redis names carry IDs as they are (byte strings, Go's names). */
    reset();
    nf_exchange_conn_added(x, ep, NF_SLICE("bob smith.*>"));
    CHECK(F.n == 1 && logged("SUB P.bob smith.*>."));

    nf_host_free(h);       /* frees the exchange: the pending ask completes */
    event_base_free(base);
    return TEST_REPORT();
}
