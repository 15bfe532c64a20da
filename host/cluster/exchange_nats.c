/* exchange_nats.c - the NATS transport of the scale-out bus (docs/protocol.md
 * §14.4): a small client of the NATS text protocol on a bufferevent.
 *
 * One connection per process both subscribes and publishes (Go neffos
 * opens one per WebSocket client). It does not ask for no_echo: our own
 * publications come back and the bus drops them by their marker, the same
 * path as with Redis.
 *
 * Life of a connection: TCP connect, the server's INFO, our CONNECT and a
 * PING; its PONG means CONNECT was accepted, and every channel in use is
 * subscribed again. The server's PINGs are answered; ours go out every
 * PING_INTERVAL_MS and two unanswered ones count as a dead server. Any
 * failure drops the connection and retries with backoff (100 ms to 5 s).
 *
 * A SUB is followed by a PING: the server handles a connection's operations
 * in order, so its PONG confirms the subscription for every publisher,
 * other processes included (nf_bus_subscribed). Until then a publish by
 * another process may reach the server first and miss us. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "dict.h"
#include "exchange_bus.h"
#include "list.h"
#include "log.h"
#include "nats_proto.h"
#include "url.h"

#define CONNECT_TIMEOUT_MS 5000       /* TCP connect through PONG */
#define PING_INTERVAL_MS 20000
#define MAX_PINGS_OUT 2
#define PROBE_TIMEOUT_MS 2000
/* nats-server refuses a protocol line longer than its max_control_line
 * (4096 by default) and drops the connection: a longer subject (a long ID
 * triples when encoded) stays local instead. */
#define MAX_SUBJECT_BYTES 3900

typedef enum nats_state { NATS_DOWN, NATS_CONNECTING, NATS_WAIT_INFO, NATS_WAIT_PONG, NATS_UP } nats_state;

typedef struct nats_sub {
    unsigned long long sid;
    size_t len;
    char subject[];
} nats_sub;

typedef struct nats_x {
    nf_bus *bus;
    struct event_base *base;
    nf_url url;
    struct bufferevent *bev;
    nats_state state;
    nf_dict *subs;                /* subject -> nats_sub, for UNSUB; emptied when down */
    unsigned long long next_sid;
    nf_backoff backoff;
    struct event *timer;          /* reconnect delay, or connect timeout */
    struct event *ping;           /* keep-alive, while up */
    unsigned pings_out;
    size_t skip;                  /* bytes of an oversized MSG still to discard */
    size_t server_max_payload;    /* from INFO */
    nf_list pongs;                /* pong_wait: what each PING in flight confirms, oldest first */
} nats_x;

/* The server answers PINGs in order, after everything sent before them: the
 * PONG of the PING written after a SUB says that SUB is in force for every
 * publisher, not only for this connection (another process's PUB may reach
 * the server before our SUB otherwise). Keep-alive PINGs have subject_len 0. */
typedef struct pong_wait {
    nf_list link;
    size_t subject_len;
    char subject[];
} pong_wait;

static void nats_connect(nats_x *x);

/* ---- helpers --------------------------------------------------------------------- */

static void arm(struct event *ev, unsigned ms)
{
    struct timeval tv = nf_clock_timeval(ms);
    evtimer_add(ev, &tv);
}

static void free_subs(nf_dict *subs)
{
    size_t cur = 0;
    nats_sub *s;
    while ((s = nf_dict_next(subs, &cur, NULL)) != NULL)
        free(s);
    nf_dict_free(subs);
}

static bool expect_pong(nats_x *x, nf_slice subject)
{
    pong_wait *w = malloc(sizeof *w + subject.len);
    if (w == NULL)
        return false;
    w->subject_len = subject.len;
    if (subject.len)
        memcpy(w->subject, subject.ptr, subject.len);
    nf_list_push_back(&x->pongs, &w->link);
    evbuffer_add(bufferevent_get_output(x->bev), "PING\r\n", 6);
    return true;
}

/* A PONG: the oldest PING in flight is answered. */
static void pong_arrived(nats_x *x)
{
    x->pings_out = 0;
    if (nf_list_empty(&x->pongs))
        return;
    pong_wait *w = NF_LIST_ENTRY(x->pongs.next, pong_wait, link);
    nf_list_remove(&w->link);
    if (w->subject_len)
        nf_bus_subscribed(x->bus, nf_slice_of(w->subject, w->subject_len));
    free(w);
}

static void clear_pongs(nats_x *x)
{
    while (!nf_list_empty(&x->pongs)) {
        pong_wait *w = NF_LIST_ENTRY(x->pongs.next, pong_wait, link);
        nf_list_remove(&w->link);
        free(w);
    }
}

/* The server forgets a connection's subscriptions with the connection. */
static void clear_subs(nats_x *x)
{
    free_subs(x->subs);
    x->subs = nf_dict_new();
    clear_pongs(x);
}

/* The CONNECT fields from the URL: user:password, or a lone token. */
static size_t connect_line(const nats_x *x, char *out, size_t cap)
{
    const nf_url *u = &x->url;
    const char *user = u->has_password && u->has_user ? u->user : NULL;
    const char *pass = u->has_password ? u->password : NULL;
    const char *token = u->has_user && !u->has_password ? u->user : NULL;
    return nf_nats_connect_line(out, cap, "neffos-c", NF_VERSION, user, pass, token);
}

static size_t info_max_payload(nf_slice json)
{
    static const char key[] = "\"max_payload\":";
    char buf[2048];
    size_t n = json.len < sizeof buf - 1 ? json.len : sizeof buf - 1;
    memcpy(buf, json.ptr, n);
    buf[n] = '\0';
    const char *p = strstr(buf, key);
    unsigned long long v = p ? strtoull(p + sizeof key - 1, NULL, 10) : 0;
    return v ? (size_t)v : 1024 * 1024;   /* the server's default */
}

/* ---- connection life cycle ----------------------------------------------------------- */

static void retry_later(nats_x *x, const char *why)
{
    unsigned ms = nf_backoff_next(&x->backoff);
    nf_warn("nats: connection to %s:%d: %s; reconnecting in %u ms", x->url.host, x->url.port, why, ms);
    arm(x->timer, ms);
}

static void link_lost(nats_x *x, const char *why)
{
    bool was_up = x->state == NATS_UP;
    if (x->bev)
        bufferevent_free(x->bev);
    x->bev = NULL;
    x->state = NATS_DOWN;
    x->skip = 0;
    x->pings_out = 0;
    evtimer_del(x->ping);
    evtimer_del(x->timer);
    clear_subs(x);
    if (was_up)
        nf_bus_set_connected(x->bus, false);
    retry_later(x, why);
}

static void became_up(nats_x *x)
{
    x->state = NATS_UP;
    x->pings_out = 0;
    nf_backoff_reset(&x->backoff);
    evtimer_del(x->timer);
    arm(x->ping, PING_INTERVAL_MS);
    nf_info("nats: connected to %s:%d", x->url.host, x->url.port);
    nf_bus_set_connected(x->bus, true);
    nf_bus_resubscribe(x->bus);
}

static void send_connect(nats_x *x)
{
    char line[2048];
    size_t n = connect_line(x, line, sizeof line);
    struct evbuffer *out = bufferevent_get_output(x->bev);
    evbuffer_add(out, line, n);
    evbuffer_add(out, "PING\r\n", 6);
    x->state = NATS_WAIT_PONG;
}

/* Returns -1 when the connection was dropped (stop reading). */
static int handle(nats_x *x, const nf_nats_event *ev)
{
    switch (ev->op) {
    case NF_NATS_INFO:
        x->server_max_payload = info_max_payload(ev->text);
        if (x->state == NATS_WAIT_INFO)
            send_connect(x);
        return 0;
    case NF_NATS_PING:
        evbuffer_add(bufferevent_get_output(x->bev), "PONG\r\n", 6);
        return 0;
    case NF_NATS_PONG:
        if (x->state == NATS_WAIT_PONG)
            became_up(x);
        else
            pong_arrived(x);
        return 0;
    case NF_NATS_OK:
        return 0;
    case NF_NATS_ERR:
        if (x->state != NATS_UP) {
            nf_error("nats: server refused the connection: %.*s", (int)ev->text.len, ev->text.ptr);
            link_lost(x, "refused");
            return -1;
        }
        nf_warn("nats: server error: %.*s", (int)ev->text.len, ev->text.ptr);
        return 0;
    case NF_NATS_MSG:
        if (x->state == NATS_UP)
            nf_bus_receive(x->bus, ev->subject, ev->payload);
        return 0;
    case NF_NATS_TOO_BIG:
        nf_debug("nats: skipping a message of %zu bytes on %.*s", ev->skip - 2, (int)ev->subject.len,
                 ev->subject.ptr);
        x->skip = ev->skip;
        return 0;
    default:
        link_lost(x, "protocol error");
        return -1;
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    nats_x *x = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t max = nf_bus_max_payload(x->bus);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (x->skip) {
            size_t n = len < x->skip ? len : x->skip;
            evbuffer_drain(in, n);
            x->skip -= n;
            len -= n;
        }
        if (len == 0 || x->skip)
            return;
        size_t look = len < NF_NATS_MAX_LINE ? len : NF_NATS_MAX_LINE;
        nf_nats_event ev;
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)look);
        if (nf_nats_parse(p, look, max, &ev) == NF_NATS_MORE && ev.need) {
            if (len < ev.need)
                return;      /* the rest of a MSG payload is on its way */
            p = (const char *)evbuffer_pullup(in, (ssize_t)ev.need);
            nf_nats_parse(p, ev.need, max, &ev);
        }
        if (ev.op == NF_NATS_MORE)
            return;
        size_t used = ev.consumed;
        if (handle(x, &ev) != 0 || x->bev != bev)
            return;
        evbuffer_drain(in, used);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    nats_x *x = arg;
    if (what & BEV_EVENT_CONNECTED) {
        x->state = NATS_WAIT_INFO;
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        char why[128];
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "%s", (what & BEV_EVENT_EOF) ? "closed by the server"
                                        : e ? evutil_socket_error_to_string(e) : "error");
        link_lost(x, why);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    nats_x *x = arg;
    if (x->state != NATS_DOWN)
        link_lost(x, "connect timed out");
    else
        nats_connect(x);
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    nats_x *x = arg;
    if (x->state != NATS_UP)
        return;
    if (x->pings_out >= MAX_PINGS_OUT) {
        link_lost(x, "no PONG from the server");
        return;
    }
    x->pings_out++;
    if (!expect_pong(x, NF_SLICE_EMPTY))
        link_lost(x, "out of memory");
    else
        arm(x->ping, PING_INTERVAL_MS);
}

static int resolve(const nf_url *u, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errcap)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
    char port[8];
    snprintf(port, sizeof port, "%d", u->port);
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errcap, "%s", gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void nats_connect(nats_x *x)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char why[128];
    if (resolve(&x->url, &ss, &sslen, why, sizeof why) != 0) {
        retry_later(x, why);
        return;
    }
    x->bev = bufferevent_socket_new(x->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (x->bev == NULL) {
        retry_later(x, "out of memory");
        return;
    }
    bufferevent_setcb(x->bev, read_cb, NULL, event_cb, x);
    bufferevent_enable(x->bev, EV_READ | EV_WRITE);
    x->state = NATS_CONNECTING;
    if (bufferevent_socket_connect(x->bev, (struct sockaddr *)&ss, (int)sslen) != 0) {
        link_lost(x, "connect failed");
        return;
    }
    /* Small control lines must not wait for the ACK of the previous write
     * (Nagle + delayed ACK: 40 ms per SUB on Linux). */
    int one = 1;
    setsockopt(bufferevent_getfd(x->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    arm(x->timer, CONNECT_TIMEOUT_MS);
}

/* ---- the transport ------------------------------------------------------------------- */

static nf_bus_sub nats_subscribe(void *t, nf_slice subject)
{
    nats_x *x = t;
    if (x->state != NATS_UP)
        return NF_BUS_SUB_DOWN;
    if (nf_dict_get(x->subs, subject))
        return NF_BUS_SUB_ORDERED;   /* in force already, or its PONG confirms it */
    nats_sub *s = malloc(sizeof *s + subject.len);
    if (s == NULL)
        return NF_BUS_SUB_DOWN;
    s->sid = ++x->next_sid;
    s->len = subject.len;
    memcpy(s->subject, subject.ptr, subject.len);
    if (nf_dict_set(x->subs, nf_slice_of(s->subject, s->len), s) != 0) {
        free(s);
        return NF_BUS_SUB_DOWN;
    }
    struct evbuffer *out = bufferevent_get_output(x->bev);
    evbuffer_add_printf(out, "SUB %.*s %llu\r\n", (int)subject.len, subject.ptr, s->sid);
    if (!expect_pong(x, subject)) {
        nf_dict_delete(x->subs, subject);
        free(s);
        return NF_BUS_SUB_DOWN;
    }
    /* Written now rather than on the next loop turn: the core subscribes a
     * namespace right after queueing the client's answer, and the client
     * may broadcast through another process as soon as it has it. A failed
     * write shows up on the bufferevent's own next write. */
    evbuffer_write(out, bufferevent_getfd(x->bev));
    return NF_BUS_SUB_SENT;
}

static void nats_unsubscribe(void *t, nf_slice subject)
{
    nats_x *x = t;
    nats_sub *s = nf_dict_delete(x->subs, subject);
    if (s && x->state == NATS_UP)
        evbuffer_add_printf(bufferevent_get_output(x->bev), "UNSUB %llu\r\n", s->sid);
    free(s);
}

static int nats_publish(void *t, nf_slice subject, nf_slice payload)
{
    nats_x *x = t;
    if (x->state != NATS_UP)
        return NF_EAGAIN;
    if (payload.len > x->server_max_payload)
        return NF_EINVAL;
    struct evbuffer *out = bufferevent_get_output(x->bev);
    if (evbuffer_get_length(out) > NF_BUS_MAX_PENDING_BYTES)
        return NF_EAGAIN;
    evbuffer_add_printf(out, "PUB %.*s %zu\r\n", (int)subject.len, subject.ptr, payload.len);
    evbuffer_add(out, payload.ptr, payload.len);
    evbuffer_add(out, "\r\n", 2);
    return 0;
}

/* Subjects are '.'-separated tokens: none empty, no wildcard ('*', '>'),
 * no white space (which would end the subject on the wire). IDs arrive
 * encoded (exchange_key.h); namespaces as they are. */
static bool nats_valid(nf_slice s)
{
    if (s.len == 0 || s.len > MAX_SUBJECT_BYTES || s.ptr[0] == '.' || s.ptr[s.len - 1] == '.')
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= ' ' || c == 0x7f || c == '*' || c == '>' || (c == '.' && s.ptr[i + 1] == '.'))
            return false;
    }
    return true;
}

static void nats_free(void *t)
{
    nats_x *x = t;
    if (x->bev)
        bufferevent_free(x->bev);
    if (x->timer)
        event_free(x->timer);
    if (x->ping)
        event_free(x->ping);
    if (x->subs)
        free_subs(x->subs);
    clear_pongs(x);
    free(x);
}

static const nf_bus_transport_ops nats_ops = {
    .subscribe = nats_subscribe,
    .unsubscribe = nats_unsubscribe,
    .publish = nats_publish,
    .valid = nats_valid,
    .free = nats_free,
};

/* ---- construction ------------------------------------------------------------------- */

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Reads until the buffer holds `want` or "-ERR", bounded by the deadline. */
static int probe_read(int fd, char *buf, size_t cap, size_t *len, const char *want, const struct timespec *dl)
{
    while (!strstr(buf, want) && !strstr(buf, "-ERR")) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        long left = ms_left(dl);
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 || *len + 1 >= cap)
            return -1;
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
        buf[*len] = '\0';
    }
    return 0;
}

/* One blocking handshake at start (INFO, CONNECT, PING -> PONG), so that a
 * wrong address or credentials are a clear error. */
static int probe(const nats_x *x, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct timespec dl;
    char buf[8192] = "", why[128];
    size_t len = 0;
    int rc = -1, fd = -1;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += PROBE_TIMEOUT_MS / 1000;
    if (resolve(&x->url, &ss, &sslen, why, sizeof why) != 0)
        goto fail;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = { PROBE_TIMEOUT_MS / 1000, 0 };
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
        snprintf(why, sizeof why, "%s", strerror(errno));
        goto fail;
    }
    snprintf(why, sizeof why, "no INFO from the server");
    if (probe_read(fd, buf, sizeof buf, &len, "\r\n", &dl) != 0 || strncmp(buf, "INFO ", 5) != 0)
        goto fail;
    char line[2048];
    size_t n = connect_line(x, line, sizeof line);
    memcpy(line + n, "PING\r\n", 6);
    snprintf(why, sizeof why, "no PONG from the server");
    if (write(fd, line, n + 6) != (ssize_t)(n + 6) || probe_read(fd, buf, sizeof buf, &len, "PONG\r\n", &dl) != 0)
        goto fail;
    const char *e = strstr(buf, "-ERR");
    if (e) {
        snprintf(why, sizeof why, "refused: %.*s", (int)strcspn(e, "\r\n"), e);
        goto fail;
    }
    rc = 0;
fail:
    if (rc != 0)
        snprintf(err, errcap, "cannot reach nats at %s:%d: %s", x->url.host, x->url.port, why);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int parse_config(nats_x *x, const char *url, char *err, size_t errcap)
{
    if (nf_url_parse(url, "nats", &x->url, err, errcap) != 0)
        return -1;
    if (x->url.query[0]) {
        snprintf(err, errcap, "query not supported in URL \"%s\"", url);
        return -1;
    }
    if (strcmp(x->url.scheme, "nats") != 0) {
        snprintf(err, errcap, "unsupported scheme \"%s\" in %s (nats:// only; no TLS)", x->url.scheme, url);
        return -1;
    }
    if (x->url.path[0]) {
        snprintf(err, errcap, "unexpected path \"/%s\" in %s", x->url.path, url);
        return -1;
    }
    if (x->url.port == 0)
        x->url.port = 4222;
    return 0;
}

nf_exchange *nf_exchange_nats_new(nf_host *h, const char *url, const char *prefix, char *err, size_t errcap)
{
    const char *p = prefix && *prefix ? prefix : "neffos";
    nats_x *x = calloc(1, sizeof *x);
    if (x == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    x->base = nf_host_base(h);
    nf_list_init(&x->pongs);
    x->server_max_payload = 1024 * 1024;
    if (parse_config(x, url, err, errcap) != 0)
        goto fail;
    if (!nats_valid(nf_slice_of(p, strlen(p)))) {
        snprintf(err, errcap, "bad NATS subject prefix \"%s\"", p);
        goto fail;
    }
    if (probe(x, err, errcap) != 0)
        goto fail;
    x->subs = nf_dict_new();
    x->timer = evtimer_new(x->base, timer_cb, x);
    x->ping = evtimer_new(x->base, ping_cb, x);
    if (x->subs == NULL || x->timer == NULL || x->ping == NULL ||
        (x->bus = nf_bus_new(h, p, NF_BUS_NAMES_NATS, &nats_ops, x)) == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    nf_info("nats: sharing broadcasts through %s:%d with subject prefix \"%s\"", x->url.host, x->url.port, p);
    nats_connect(x);
    return nf_bus_exchange(x->bus);
fail:
    x->bus = NULL;
    nats_free(x);
    return NULL;
}
