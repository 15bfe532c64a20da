/* host.c - the process: listener, the HTTP phase of every connection
 * (upgrade, HEAD probe, /health, /metrics, static files, 404), the mount
 * list of endpoints, the coarse timeout sweep, and draining on shutdown.
 *
 * Owns: nf_host and what hangs off it (the listener, the list of every
 * connection, per-address counts, the sweep and flush events, metrics), all
 * freed by nf_host_free. Every socket enters through admit() (accept and
 * nf_host_adopt alike), leaves through nf_host_conn_gone. It never touches a
 * connection's fields: answers go through conn.c (nf_conn_end_http closes
 * after the write, nf_conn_upgrade makes the WebSocket), and each endpoint is
 * endpoint.c's. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "deflate.h"
#include "exchange.h"
#include "heap.h"
#include "http.h"
#include "linger.h"
#include "log.h"
#include "sha1.h"
#include "static_files.h"

#define SWEEP_INTERVAL_MS 250
#define TRIM_MAX_WAIT_MS 10000       /* memory goes back at least this often while the server is busy */
#define TRIM_MIN_INTERVAL_MS 2000    /* and at most this often (a full Lua GC, a walk of the heap) */
#define ACCEPT_PAUSE_MS 100          /* after accept() fails for want of descriptors */
#define ACCEPT_LOG_INTERVAL_MS 1000  /* at most one log line about those per interval */

static void sweep_cb(evutil_socket_t fd, short what, void *arg);
static void accept_resume_cb(evutil_socket_t fd, short what, void *arg);

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_host *h = arg;
    if (h->hooks && h->hooks->flushing)
        h->hooks->flushing(h->hooks_ud);
    nf_conn_flush_all(h);
}

nf_host *nf_host_new(struct event_base *base, const nf_limits *limits, const nf_app_ops *ops, void *app)
{
    nf_host *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->base = base;
    h->limits = *limits;
    h->ops = ops;
    h->app = app;
    h->metrics.exchange_connected = -1;
    nf_list_init(&h->conns);
    /* Server tokens: decimal, seeded with the clock like Go's UnixNano ones. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->next_token = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    h->scratch = malloc(limits->max_message_bytes + 1);
    h->per_ip = nf_dict_new();
    h->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, h);
    nf_list_init(&h->flushq);
    h->flush_ev = event_new(base, -1, 0, flush_cb, h);
    h->accept_resume = evtimer_new(base, accept_resume_cb, h);
    h->linger = nf_linger_new(base);
    if (h->linger == NULL || h->scratch == NULL || h->per_ip == NULL || h->sweep == NULL || h->flush_ev == NULL ||
        h->accept_resume == NULL) {
        nf_host_free(h);
        return NULL;
    }
    struct timeval tv = nf_clock_timeval(SWEEP_INTERVAL_MS);
    event_add(h->sweep, &tv);
    return h;
}

typedef struct ip_count {
    size_t count;
    char ip[INET6_ADDRSTRLEN];
} ip_count;

void nf_host_free(nf_host *h)
{
    if (h == NULL)
        return;
    NF_LIST_FOREACH_SAFE(it, tmp, &h->conns)
        nf_conn_teardown(NF_LIST_ENTRY(it, nf_conn, host_link));
    if (h->listener)
        evconnlistener_free(h->listener);
    if (h->tls_listener)
        evconnlistener_free(h->tls_listener);
    nf_host_set_allowed_origins(h, NULL);
    for (nf_endpoint **list = &h->endpoints; list; list = list == &h->endpoints ? &h->retired : NULL) {
        while (*list) {
            nf_endpoint *ep = *list;
            *list = ep->next;
            nf_endpoint_free(ep);
        }
    }
    nf_host_set_exchange(h, NULL);
    if (h->sweep)
        event_free(h->sweep);
    if (h->flush_ev)
        event_free(h->flush_ev);
    if (h->accept_resume)
        event_free(h->accept_resume);
    if (h->drain_timer)
        event_free(h->drain_timer);
    if (h->per_ip) {
        size_t cur = 0;
        ip_count *ic;
        while ((ic = nf_dict_next(h->per_ip, &cur, NULL)) != NULL)
            free(ic);
        nf_dict_free(h->per_ip);
    }
    nf_linger_free(h->linger);
    free(h->scratch);
    free(h->static_root);
    free(h->unhealthy);
    free(h);
}

struct event_base *nf_host_base(nf_host *h) { return h->base; }
const nf_limits *nf_host_limits(const nf_host *h) { return &h->limits; }
void *nf_host_app(const nf_host *h) { return h->app; }
size_t nf_host_connection_count(const nf_host *h) { return h->ws_count; }
bool nf_host_is_draining(const nf_host *h) { return h->draining; }
int nf_host_port(const nf_host *h) { return h->port; }
int nf_host_tls_port(const nf_host *h) { return h->tls_port; }

void nf_host_set_static_root(nf_host *h, const char *root)
{
    free(h->static_root);
    h->static_root = root ? nf_static_root_resolve(root) : NULL;
    if (root && h->static_root == NULL)
        nf_warn("static files: %s: %s", root, strerror(errno));
}

void nf_host_set_unhealthy(nf_host *h, const char *reason)
{
    free(h->unhealthy);
    h->unhealthy = reason ? strdup(reason) : NULL;
}

void nf_host_set_hooks(nf_host *h, const nf_host_hooks *hooks, void *ud)
{
    h->hooks = hooks;
    h->hooks_ud = ud;
}

void nf_host_thread_exit(void)
{
    nf_ws_pool_trim();
    nf_ws_deflate_thread_free();
    nf_invocation_pool_release();
}

void nf_host_set_exchange(nf_host *h, nf_exchange *x)
{
    if (h->exchange && h->exchange->ops->free)
        h->exchange->ops->free(h->exchange);
    h->exchange = x;
    h->metrics.exchange_connected = x ? 0 : -1;
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The time spent in handler code (neffos_handler_seconds_total): the
 * outermost of nested slices counts. */
void nf_host_handler_enter(nf_host *h)
{
    if (h->handler_depth++ == 0)
        h->handler_since_us = monotonic_us();
}

void nf_host_handler_leave(nf_host *h)
{
    if (h->handler_depth > 0 && --h->handler_depth == 0)
        h->metrics.handler_us_total += monotonic_us() - h->handler_since_us;
}

void nf_host_count_reload(nf_host *h, bool ok)
{
    if (ok)
        h->metrics.reloads_ok++;
    else
        h->metrics.reloads_failed++;
}

/* ---- per-address accounting ----------------------------------------------------- */

static void ip_of(const char *remote, char *ip, size_t cap)
{
    /* remote is "1.2.3.4:port" or "[::1]:port" */
    const char *start = remote, *end = strrchr(remote, ':');
    if (*start == '[') {
        start++;
        end = strchr(start, ']');
    }
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= cap)
        n = cap - 1;
    memcpy(ip, start, n);
    ip[n] = '\0';
}

/* Counts a new socket from `remote` against --max-connections-per-ip; false
 * when its address is at the limit (or memory ran out). Invariant: while
 * the limit is on, every connection was counted here, once, before it was
 * made, and is released once, in nf_host_conn_gone. */
static bool ip_admit(nf_host *h, const char *remote)
{
    char ip[INET6_ADDRSTRLEN];
    if (h->limits.max_connections_per_ip == 0)
        return true;
    ip_of(remote, ip, sizeof ip);
    ip_count *ic = nf_dict_get(h->per_ip, nf_slice_of(ip, strlen(ip)));
    if (ic && ic->count >= h->limits.max_connections_per_ip)
        return false;
    if (ic == NULL) {
        ic = calloc(1, sizeof *ic);
        if (ic == NULL)
            return false;
        memcpy(ic->ip, ip, strlen(ip) + 1);
        nf_dict_set(h->per_ip, nf_slice_of(ic->ip, strlen(ic->ip)), ic);
    }
    ic->count++;
    return true;
}

/* --workers N: the process's counts (nf_host_hooks.admit). */
static int hooks_admit(nf_host *h, const char *remote)
{
    char ip[INET6_ADDRSTRLEN];
    ip_of(remote, ip, sizeof ip);
    return h->hooks->admit(h->hooks_ud, ip);
}

static void ip_release(nf_host *h, const char *remote)
{
    char ip[INET6_ADDRSTRLEN];
    if (h->hooks && h->hooks->gone) {
        ip_of(remote, ip, sizeof ip);
        h->hooks->gone(h->hooks_ud, ip);
        return;
    }
    if (h->limits.max_connections_per_ip == 0)
        return;
    ip_of(remote, ip, sizeof ip);
    ip_count *ic = nf_dict_get(h->per_ip, nf_slice_of(ip, strlen(ip)));
    if (ic && --ic->count == 0) {
        nf_dict_delete(h->per_ip, nf_slice_of(ip, strlen(ip)));
        free(ic);
    }
}

/* ---- accepting --------------------------------------------------------------------- */

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        snprintf(out, cap, "unknown");
    }
}


/* Admission of a connected socket, the one path for accept(2) and
 * nf_host_adopt: the connection limits, then a connection in the HTTP
 * phase (behind a TLS handshake first if tls). Returns 0 (*out the
 * connection, if out), or NF_EAGAIN (refused by a limit: counted and
 * logged), NF_EINVAL, NF_ENOMEM; fd is closed on failure. */
static int admit(nf_host *h, evutil_socket_t fd, const char *remote, nf_tls *tls, nf_conn **out)
{
    int one = 1;
    if (out)
        *out = NULL;
    /* Sockets still in the HTTP phase count too: a flood of half-open
     * requests must not use up descriptors until the handshake timeout. */
    int over = h->hooks && h->hooks->admit ? hooks_admit(h, remote)
             : h->conn_count >= h->limits.max_connections ? NF_EAGAIN : ip_admit(h, remote) ? 0 : NF_EEXIST;
    if (over == NF_EAGAIN) {
        nf_refusal(h, NF_REFUSED_LIMIT, remote, "too many connections (--max-connections %zu)",
                   h->limits.max_connections);
        evutil_closesocket(fd);
        return NF_EAGAIN;
    }
    if (over != 0) {
        nf_refusal(h, NF_REFUSED_LIMIT, remote, "too many connections from this address (--max-connections-per-ip %zu)",
                   h->limits.max_connections_per_ip);
        evutil_closesocket(fd);
        return NF_EAGAIN;
    }
    if (evutil_make_socket_nonblocking(fd) != 0) {
        ip_release(h, remote);
        evutil_closesocket(fd);
        return NF_EINVAL;
    }
    /* libevent leaves Nagle on; small frames must not wait for it. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev = tls ? nf_tls_accept(tls, h->base, fd)
                                  : bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        ip_release(h, remote);
        evutil_closesocket(fd);
        return NF_ENOMEM;
    }
    nf_conn *c = nf_conn_new(h, bev, remote, tls != NULL);
    if (c == NULL) {
        ip_release(h, remote);
        bufferevent_free(bev);
        return NF_ENOMEM;
    }
    if (out)
        *out = c;
    return 0;
}

/* Nothing is accepted while draining: nf_host_drain closes the listener. */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    nf_host *h = arg;
    char remote[64];
    format_addr(sa, remote, sizeof remote);
    if (h->hooks && h->hooks->accepted && h->hooks->accepted(h->hooks_ud, h, fd, remote, NULL))
        return;   /* another worker adopts it */
    admit(h, fd, remote, NULL, NULL);
}

static void accept_tls_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    nf_host *h = arg;
    char remote[64];
    format_addr(sa, remote, sizeof remote);
    /* Handed over with its certificate: the adopting worker makes the TLS
     * bufferevent on its own loop. */
    if (h->hooks && h->hooks->accepted && h->hooks->accepted(h->hooks_ud, h, fd, remote, h->tls))
        return;
    admit(h, fd, remote, h->tls, NULL);
}

/* accept() failed for want of a resource: descriptors (EMFILE, ENFILE) or
 * kernel memory. The connection stays in the backlog and the listener stays
 * readable, so listening on would retry at once, forever: a core at 100%
 * and a log line per try, while the connections already open starve. So
 * the listener pauses for ACCEPT_PAUSE_MS; the connections it has go on,
 * and any that closes meanwhile frees a descriptor for the next try. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    nf_host *h = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err == EMFILE)
        h->metrics.accept_emfile++;
    else if (err == ENFILE)
        h->metrics.accept_enfile++;
    else
        h->metrics.accept_other++;
    evconnlistener_disable(l);
    h->metrics.accept_paused = 1;
    struct timeval tv = nf_clock_timeval(ACCEPT_PAUSE_MS);
    event_add(h->accept_resume, &tv);
    h->accept_failures++;
    uint64_t now = nf_now_ms();
    if (h->accept_logged_ms == 0 || now - h->accept_logged_ms >= ACCEPT_LOG_INTERVAL_MS) {
        nf_warn("accept: %s: new connections wait in the backlog, retried every %d ms (%llu failure%s since the "
                "last report; %zu sockets open, --max-connections %zu)", evutil_socket_error_to_string(err),
                ACCEPT_PAUSE_MS, (unsigned long long)h->accept_failures, h->accept_failures == 1 ? "" : "s",
                h->conn_count, h->limits.max_connections);
        h->accept_failures = 0;
        h->accept_logged_ms = now;
    }
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_host *h = arg;
    h->metrics.accept_paused = 0;
    if (h->listener)
        evconnlistener_enable(h->listener);
    if (h->tls_listener)
        evconnlistener_enable(h->tls_listener);
}

/* Binds a listener on host:port for cb; *port_out gets the port bound. */
static int bind_listener(nf_host *h, const char *host, int port, evconnlistener_cb cb, struct evconnlistener **out,
                         int *port_out, char *err, size_t errcap)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errcap, "%s:%d: %s", host, port, gai_strerror(rc));
        return rc == EAI_MEMORY ? NF_ENOMEM : NF_EINVAL;
    }
    struct evconnlistener *l = evconnlistener_new_bind(h->base, cb, h,
                                          LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                          1024, res->ai_addr, (int)res->ai_addrlen);
    int saved = errno;
    freeaddrinfo(res);
    if (l == NULL) {
        snprintf(err, errcap, "%s:%d: %s", host, port,
                 saved == EADDRINUSE ? "address already in use" : strerror(saved));
        return saved > 0 ? -saved : NF_EIO;
    }
    evconnlistener_set_error_cb(l, accept_error_cb);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    *out = l;
    return 0;
}

int nf_host_listen(nf_host *h, const char *host, int port, char *err, size_t errcap)
{
    return bind_listener(h, host, port, accept_cb, &h->listener, &h->port, err, errcap);
}

int nf_host_listen_tls(nf_host *h, const char *host, int port, nf_tls *tls, char *err, size_t errcap)
{
    h->tls = tls;
    return bind_listener(h, host, port, accept_tls_cb, &h->tls_listener, &h->tls_port, err, errcap);
}

/* ---- the HTTP phase ------------------------------------------------------------------ */

/* Sends a complete answer; the connection closes once it is flushed. */
static void http_answer(nf_conn *c, int status, const char *extra, const char *ctype, const char *body, bool head)
{
    nf_http_respond(nf_conn_output(c), status, extra, ctype, body, body ? strlen(body) : 0, head);
    nf_conn_end_http(c, NF_CONN_ANSWER_SHORT);
}

static bool origin_allowed(nf_host *h, const nf_upgrade *up)
{
    if (h->allowed_origins == NULL || !up->has_origin)
        return true;
    for (char **o = h->allowed_origins; *o; o++)
        if (strcmp(*o, "*") == 0 || nf_slice_eq_cstr(up->origin, *o))
            return true;
    return false;
}

/* permessage-deflate (RFC 7692 5): the first offer that can be accepted,
 * turned on for c, its answer in answer[NF_DEFLATE_ANSWER_MAX]. */
static bool accept_deflate(nf_conn *c, char *answer)
{
    const nf_limits *lim = &nf_conn_host(c)->limits;
    nf_http_cursor cur = { 0, 0 };
    nf_slice e;
    nf_deflate_params p;
    if (lim->compression == NF_COMPRESSION_OFF)
        return false;
    while (nf_request_list_next(nf_conn_request(c), NF_SLICE("Sec-WebSocket-Extensions"), &cur, &e))
        if (nf_deflate_offer(e.ptr, e.len, lim->compression == NF_COMPRESSION_CONTEXT, &p) == 0)
            return nf_ws_set_deflate(nf_conn_ws(c), &p, lim->compression_min_bytes) == 0 &&
                   nf_deflate_answer(&p, answer, NF_DEFLATE_ANSWER_MAX) > 0;
    return false;
}

static void upgrade(nf_conn *c, nf_endpoint *ep)
{
    nf_host *h = nf_conn_host(c);
    nf_upgrade up;
    const char *why = NULL;
    char body[80];

    int rc = nf_http_upgrade_check(nf_conn_request(c), &up, &why);
    if (rc != 0) {
        nf_refusal_conn(c, ep, NF_REFUSED_BAD_REQUEST, "%d %s", -rc, why);
        snprintf(body, sizeof body, "%s\n", why);
        http_answer(c, -rc, rc == -426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, "text/plain; charset=utf-8",
                    body, false);
        return;
    }
    if (!origin_allowed(h, &up)) {
        /* Bounded: the origin is the client's text (the log escapes it). */
        nf_refusal_conn(c, ep, NF_REFUSED_ORIGIN, "origin %.*s not allowed", (int)(up.origin.len > 200 ? 200 : up.origin.len),
                   up.origin.ptr);
        http_answer(c, 403, NULL, "text/plain; charset=utf-8", "origin not allowed\n", false);
        return;
    }
    if (nf_conn_upgrade(c, ep) != 0) {
        http_answer(c, 503, NULL, "text/plain; charset=utf-8", "out of memory\n", false);
        return;
    }
    char accept[29];
    nf_ws_accept_key(up.key.ptr, up.key.len, accept);
    struct evbuffer *out = nf_conn_output(c);
    evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: %s\r\n", accept);
    /* Browsers refuse a handshake that selects none of the subprotocols they
     * offered (docs/protocol.md §3.1): echo the first one. */
    if (up.protocol.len)
        evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %.*s\r\n", (int)up.protocol.len, up.protocol.ptr);
    char deflate[NF_DEFLATE_ANSWER_MAX];
    if (accept_deflate(c, deflate)) {
        evbuffer_add_printf(out, "Sec-WebSocket-Extensions: %s\r\n", deflate);
        h->metrics.upgrades_deflate++;
    }
    evbuffer_add(out, "\r\n", 2);
    nf_conn_want_flush(c);
    h->metrics.upgrades++;
    nf_conn_upgraded(c, ep);
}

static void answer_health(nf_conn *c, bool head)
{
    nf_host *h = nf_conn_host(c);
    if (h->unhealthy) {
        char body[600];
        snprintf(body, sizeof body, "%.*s\n", 500, h->unhealthy);
        http_answer(c, 503, NULL, "text/plain; charset=utf-8", body, head);
    } else
        http_answer(c, 200, NULL, "text/plain; charset=utf-8", "ok\n", head);
}

void nf_host_metrics_snapshot(const nf_host *h, nf_metrics *m, size_t *connections, size_t *endpoints)
{
    size_t eps = 0;
    for (nf_endpoint *ep = h->endpoints; ep; ep = ep->next)
        eps++;
    *m = h->metrics;
    m->lingering = nf_linger_count(h->linger);
    *connections = h->ws_count;
    *endpoints = eps;
}

nf_metrics *nf_host_metrics(nf_host *h) { return &h->metrics; }

uint64_t nf_host_activity(void *arg)
{
    const nf_host *h = arg;
    return h->metrics.messages_in + h->metrics.http_requests + h->metrics.worker_messages_in +
           h->metrics.exchange_received;
}

static void write_metrics(nf_conn *c, bool head, const nf_metrics *m, size_t conns, size_t eps, const char *extra)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL)
        return;
    nf_metrics_render(m, conns, eps, body);
    if (extra)
        evbuffer_add(body, extra, strlen(extra));
    /* The certificate is the process's (every worker's host has it): once. */
    nf_host *h = nf_conn_host(c);
    if (h->tls) {
        nf_tls_stats ts;
        nf_tls_get_stats(h->tls, &ts);
        nf_metrics_render_tls(&ts, body);
    }
    size_t len = evbuffer_get_length(body);
    struct evbuffer *out = nf_conn_output(c);
    nf_http_write_head(out, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", len);
    if (!head)
        evbuffer_add_buffer(out, body);
    evbuffer_free(body);
    nf_conn_end_http(c, NF_CONN_ANSWER_SHORT);
}

void nf_host_answer_metrics(nf_conn *c, bool head, const nf_metrics *m, size_t conns, size_t eps, const char *extra)
{
    if (!nf_conn_is_closed(c))
        write_metrics(c, head, m, conns, eps, extra);
    nf_conn_unref(c);
}

static void answer_metrics(nf_conn *c, bool head)
{
    nf_host *h = nf_conn_host(c);
    if (h->hooks && h->hooks->metrics) {
        nf_conn_ref(c);
        if (h->hooks->metrics(h->hooks_ud, h, c, head))
            return;
        nf_conn_unref(c);
    }
    nf_metrics m;
    size_t conns, eps;
    nf_host_metrics_snapshot(h, &m, &conns, &eps);
    write_metrics(c, head, &m, conns, eps, NULL);
}

static void route(nf_conn *c)
{
    nf_host *h = nf_conn_host(c);
    const nf_request *req = nf_conn_request(c);
    nf_slice method = nf_request_method(req), path = nf_request_path(req);
    bool head = nf_slice_eq_cstr(method, "HEAD"), get = nf_slice_eq_cstr(method, "GET");

    h->metrics.http_requests++;
    for (nf_endpoint *ep = h->endpoints; ep; ep = ep->next) {
        if (!nf_slice_eq_cstr(path, ep->path))
            continue;
        if (head)   /* the neffos.js reconnect probe: any answer means "back" (docs/protocol.md §3.1) */
            http_answer(c, 302, NULL, NULL, NULL, true);
        else if (!get)
            http_answer(c, 405, "Allow: GET\r\nX-Content-Type-Options: nosniff\r\n", "text/plain; charset=utf-8",
                        "Method Not Allowed\n", false);
        else
            upgrade(c, ep);
        return;
    }
    if ((get || head) && nf_slice_eq_cstr(path, "/health")) {
        answer_health(c, head);
        return;
    }
    if ((get || head) && nf_slice_eq_cstr(path, "/metrics")) {
        answer_metrics(c, head);
        return;
    }
    if (h->static_root) {
        nf_static_respond(h->static_root, req, nf_conn_output(c));
        nf_conn_end_http(c, NF_CONN_ANSWER_FILE);
        return;
    }
    http_answer(c, 404, NULL, "text/plain; charset=utf-8", "404 page not found\n", head);
}

void nf_host_http_read(nf_conn *c)
{
    nf_host *h = nf_conn_host(c);
    struct evbuffer *in = nf_conn_input(c);
    size_t avail = evbuffer_get_length(in);
    size_t take = avail < h->limits.max_header_bytes + 1 ? avail : h->limits.max_header_bytes + 1;
    const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
    nf_request *req = NULL;
    size_t head_len = 0;

    nf_http_limits hl = { h->limits.max_header_bytes, h->limits.max_headers };
    nf_http_status st = nf_http_parse_request(buf, take, &hl, &req, &head_len);
    if (st == NF_HTTP_INCOMPLETE)
        return;
    if (st != NF_HTTP_OK) {
        int code = nf_http_status_code(st);
        nf_refusal(h, NF_REFUSED_BAD_REQUEST, nf_conn_remote_addr(c), "bad HTTP request (%d %s)", code,
                   nf_http_reason(code));
        evbuffer_drain(in, avail);
        http_answer(c, code, NULL, "text/plain; charset=utf-8", nf_http_reason(code), false);
        return;
    }
    evbuffer_drain(in, head_len);
    nf_conn_set_request(c, req);
    nf_conn_ref(c);
    route(c);
    nf_conn_read_pipelined(c);   /* frames right behind the upgrade request */
    nf_conn_unref(c);
}

void nf_host_conn_gone(nf_host *h, nf_conn *c)
{
    nf_list_remove(&c->host_link);
    h->conn_count--;
    ip_release(h, nf_conn_remote_addr(c));
    if (h->draining && h->ws_count == 0 && h->drain_timer) {
        struct timeval now = { 0, 0 };
        event_add(h->drain_timer, &now);   /* finish from the loop, not from inside a teardown */
    }
}

/* ---- sweep and drain ------------------------------------------------------------------ */

/* Gives freed memory back to the system (heap.h) once connections have
 * closed or queues drained: at the first sweep that finds the server quiet
 * after them, so a burst of closes costs one trim, or every
 * TRIM_MAX_WAIT_MS while it stays busy. The application's garbage is
 * collected first only when quiet: a full GC under load would be a pause.
 * With --workers N each worker trims on its own quiet sweeps, on its own
 * thread: its Lua state and its input-buffer pool are its own, and
 * nf_heap_trim (heap.h) flushes this thread's cache and purges each arena
 * under that arena's lock (malloc_trim in a libc build). */
static void sweep_trim(nf_host *h, uint64_t now)
{
    uint64_t activity = h->metrics.closed + h->metrics.broadcast_deliveries;
    bool busy = activity != h->trim_activity;
    h->trim_activity = activity;
    if (busy && h->trim_pending_ms == 0)
        h->trim_pending_ms = now ? now : 1;
    if (h->trim_pending_ms == 0 || (busy && now - h->trim_pending_ms < TRIM_MAX_WAIT_MS) ||
        (h->trim_last_ms && now - h->trim_last_ms < TRIM_MIN_INTERVAL_MS))
        return;
    h->trim_pending_ms = 0;
    h->trim_last_ms = now;
    if (!busy && h->ops->trim)
        h->ops->trim(h->app);
    nf_ws_pool_trim();
    nf_heap_trim();
    h->metrics.heap_trims++;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_host *h = arg;
    uint64_t now = nf_now_ms();
    NF_LIST_FOREACH_SAFE(it, tmp, &h->conns) {
        nf_conn *c = NF_LIST_ENTRY(it, nf_conn, host_link);
        nf_conn_sweep(c, now);
    }
    nf_refusal_sweep(h, now);
    sweep_trim(h, now);
}

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_host *h = arg;
    if (h->ws_count > 0) {
        nf_warn("shutdown: grace period over, %zu connection(s) still open", h->ws_count);
        /* Handlers still waiting lose their connection now. */
        NF_LIST_FOREACH_SAFE(it, tmp, &h->conns) {
            nf_conn *c = NF_LIST_ENTRY(it, nf_conn, host_link);
            nf_conn_close(c, NF_WS_CLOSE_GOING_AWAY, NF_SLICE("going away"));
        }
        nf_conn_flush_all(h);
    }
    void (*done)(void *) = h->drain_done;
    h->drain_done = NULL;
    if (done)
        done(h->drain_ud);
}

void nf_host_drain(nf_host *h, unsigned grace_ms, void (*done)(void *ud), void *ud)
{
    if (h->draining)
        return;
    h->draining = true;
    h->drain_done = done;
    h->drain_ud = ud;
    h->drain_timer = evtimer_new(h->base, drain_timer_cb, h);
    /* Stop listening at once, like Go's http.Server.Shutdown: the port is
     * free for the next process (a restart binds it while this one still
     * drains), and a client probing it meanwhile (the neffos.js reconnect
     * HEAD) is refused, which it retries, instead of answered by a process
     * that would then refuse its upgrade, which it does not retry. */
    if (h->listener) {
        evconnlistener_free(h->listener);
        h->listener = NULL;
    }
    if (h->tls_listener) {
        evconnlistener_free(h->tls_listener);
        h->tls_listener = NULL;
    }
    /* A connection whose handler is running (waiting on an ask, a sleep)
     * is closed when that handler finishes (nf_conn_drain), or when the
     * grace period ends; the others right away. */
    NF_LIST_FOREACH_SAFE(it, tmp, &h->conns) {
        nf_conn_shutdown(NF_LIST_ENTRY(it, nf_conn, host_link));
    }
    struct timeval tv = nf_clock_timeval(grace_ms);
    if (h->ws_count == 0)
        tv = (struct timeval){ 0, 0 };
    evtimer_add(h->drain_timer, &tv);
}

/* ---- the mount list of endpoints (endpoint.c owns each endpoint) ---------------------- */

nf_endpoint *nf_host_add_endpoint(nf_host *h, const char *path, const nf_endpoint_config *cfg)
{
    if (nf_host_find_endpoint(h, path))
        return NULL;
    nf_endpoint *ep = nf_endpoint_new(h, path, cfg);
    if (ep == NULL)
        return NULL;
    nf_endpoint **tail = &h->endpoints;
    while (*tail)
        tail = &(*tail)->next;
    *tail = ep;
    return ep;
}

nf_endpoint *nf_host_find_endpoint(nf_host *h, const char *path)
{
    for (nf_endpoint *ep = h->endpoints; ep; ep = ep->next)
        if (strcmp(ep->path, path) == 0)
            return ep;
    return NULL;
}

nf_endpoint *nf_host_endpoint_next(nf_host *h, nf_endpoint *prev)
{
    return prev ? prev->next : h->endpoints;
}

void nf_host_remove_endpoint(nf_host *h, nf_endpoint *ep)
{
    /* Unmounted at once; its connections get 1001. The struct itself stays
     * (in `retired`) until the host is freed, because connections and
     * waiting handlers may still point at it. */
    for (nf_endpoint **p = &h->endpoints; *p; p = &(*p)->next) {
        if (*p == ep) {
            *p = ep->next;
            break;
        }
    }
    ep->next = h->retired;
    h->retired = ep;
    nf_endpoint_close_all(ep, NF_WS_CLOSE_GOING_AWAY, NF_SLICE("endpoint removed"));
}

void nf_host_set_allowed_origins(nf_host *h, const char *csv)
{
    if (h->allowed_origins) {
        for (char **o = h->allowed_origins; *o; o++)
            free(*o);
        free(h->allowed_origins);
        h->allowed_origins = NULL;
    }
    if (csv == NULL || *csv == '\0')
        return;
    size_t n = 1;
    for (const char *p = csv; *p; p++)
        n += *p == ',';
    h->allowed_origins = calloc(n + 1, sizeof(char *));
    if (h->allowed_origins == NULL)
        return;
    size_t i = 0;
    for (const char *p = csv; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ')) { p++; len--; }
        while (len && p[len - 1] == ' ') len--;
        if (len)
            h->allowed_origins[i++] = strndup(p, len);
        p = end ? end + 1 : p + strlen(p);
    }
}

/* ---- the seam: adopting a socket, the sweep by hand, read-only stats --------------- */


int nf_host_adopt(nf_host *h, int fd, const char *remote, nf_conn **out)
{
    return admit(h, fd, remote, NULL, out);
}

int nf_host_adopt_tls(nf_host *h, int fd, const char *remote, nf_tls *tls, nf_conn **out)
{
    return admit(h, fd, remote, tls, out);
}

void nf_host_set_tls(nf_host *h, nf_tls *tls) { h->tls = tls; }

/* The periodic sweep, after failing the server asks past their deadline:
 * their exact timers are libevent's, which a manual clock cannot move. */
void nf_host_sweep(nf_host *h)
{
    uint64_t now = nf_now_ms();
    NF_LIST_FOREACH_SAFE(it, tmp, &h->conns) {
        nf_conn *c = NF_LIST_ENTRY(it, nf_conn, host_link);
        nf_conn_ref(c);   /* an ask's callback may close it */
        nf_ask_expire(c, now);
        nf_conn_unref(c);
    }
    sweep_cb(-1, 0, h);
}

int nf_host_sweep_every(nf_host *h, unsigned ms)
{
    event_del(h->sweep);
    if (ms == 0)
        return 0;
    struct timeval tv = nf_clock_timeval(ms);
    return event_add(h->sweep, &tv) == 0 ? 0 : -ENOMEM;
}


void nf_host_get_stats(const nf_host *h, nf_host_stats *out)
{
    memset(out, 0, sizeof *out);
    out->sockets = h->conn_count;
    out->websockets = h->ws_count;
    out->addresses = nf_dict_size(h->per_ip);
    for (const nf_endpoint *ep = h->endpoints; ep; ep = ep->next)
        nf_endpoint_add_stats(ep, out);
    for (const nf_endpoint *ep = h->retired; ep; ep = ep->next)
        nf_endpoint_add_stats(ep, out);
}
