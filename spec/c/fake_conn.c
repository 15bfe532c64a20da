/* fake_conn.c - see fake_conn.h. */
#include "fake_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#define PUMP_MAX_ROUNDS 400   /* loop iterations per pump, at most */
#define PUMP_QUIET_ROUNDS 3   /* ...ending after this many without progress */
#define RX_DEFAULT_MAX (64u << 20)

/* ---- the manual clock --------------------------------------------------------- */

static uint64_t fake_now;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

void fake_clock_install(uint64_t start_ms)
{
    fake_now = start_ms;
    nf_clock_set(fake_clock, NULL);
}

void fake_clock_advance(uint64_t ms) { fake_now += ms; }
uint64_t fake_clock_now(void) { return fake_now; }
void fake_clock_uninstall(void) { nf_clock_set(NULL, NULL); }

/* ---- the application ------------------------------------------------------------ */

static void copy_name(char *dst, nf_slice s)
{
    size_t n = s.len < FAKE_NAME_MAX - 1 ? s.len : FAKE_NAME_MAX - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static bool fake_has_namespace(void *app, nf_endpoint *ep, nf_slice ns)
{
    fake_app *a = app;
    (void)ep;
    for (size_t i = 0; i < 8 && a->namespaces[i]; i++)
        if (nf_slice_eq_cstr(ns, a->namespaces[i]))
            return true;
    return false;
}

static const char *key_of(const nf_invocation *inv)
{
    switch (nf_invocation_kind_of(inv)) {
    case NF_INVOKE_CONNECT: return FAKE_ON_CONNECT;
    case NF_INVOKE_DISCONNECT: return FAKE_ON_DISCONNECT;
    default: return NULL;
    }
}

static void record(fake_app *a, nf_invocation *inv)
{
    size_t i = a->ncalls++;
    if (i >= FAKE_MAX_CALLS)
        return;
    fake_call *call = &a->calls[i];
    const nf_msg *m = nf_invocation_msg(inv);
    memset(call, 0, sizeof *call);
    call->kind = nf_invocation_kind_of(inv);
    const char *key = key_of(inv);
    if (key)
        snprintf(call->event, sizeof call->event, "%s", key);
    else
        copy_name(call->event, m->event);
    copy_name(call->ns, m->ns);
    copy_name(call->room, m->room);
    call->body_len = m->body.len < FAKE_BODY_MAX ? m->body.len : FAKE_BODY_MAX;
    if (call->body_len)
        memcpy(call->body, m->body.ptr, call->body_len);
    call->is_local = nf_invocation_is_local(inv);
    call->is_forced = nf_invocation_is_forced(inv);
    call->is_native = nf_invocation_is_native(inv);
    call->binary = nf_invocation_is_binary(inv);
    call->wants_result = nf_invocation_wants_result(inv);
    call->has_nsconn = nf_invocation_nsconn(inv) != NULL;
}

static const fake_rule *rule_for(const fake_app *a, const char *event)
{
    for (size_t i = 0; i < a->nrules; i++)
        if (strcmp(a->rules[i].event, event) == 0)
            return &a->rules[i];
    return NULL;
}

static void fake_invoke(void *app, nf_invocation *inv)
{
    fake_app *a = app;
    record(a, inv);
    char event[FAKE_NAME_MAX];
    const char *key = key_of(inv);
    if (key)
        snprintf(event, sizeof event, "%s", key);
    else
        copy_name(event, nf_invocation_msg(inv)->event);
    const fake_rule *r = rule_for(a, event);
    fake_action act = r ? r->action : FAKE_NONE;
    switch (act) {
    case FAKE_REPLY:
        nf_invocation_finish(inv, NF_RESULT_REPLY, r->data, strlen(r->data));
        break;
    case FAKE_ERROR:
        nf_invocation_finish(inv, NF_RESULT_ERROR, r->data, strlen(r->data));
        break;
    case FAKE_WAIT:
        if (a->nwaiting < FAKE_MAX_WAITING) {
            a->waiting[a->nwaiting++] = inv;
            break;
        }
        nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0);
        break;
    case FAKE_HOOK:
        r->hook(a, inv, r->ud);
        break;
    default:
        nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0);
        break;
    }
}

static void fake_conn_freed(void *app, nf_conn *c)
{
    (void)c;
    ((fake_app *)app)->conns_freed++;
}

/* Designated: the core's default IDs (UUID v4); fields the core may add stay NULL. */
const nf_app_ops fake_app_ops = {
    .has_namespace = fake_has_namespace,
    .invoke = fake_invoke,
    .conn_freed = fake_conn_freed,
};

void fake_app_init(fake_app *a) { memset(a, 0, sizeof *a); }

static fake_rule *rule_slot(fake_app *a, const char *event)
{
    for (size_t i = 0; i < a->nrules; i++)
        if (strcmp(a->rules[i].event, event) == 0)
            return &a->rules[i];
    if (a->nrules >= FAKE_MAX_RULES)
        return NULL;
    fake_rule *r = &a->rules[a->nrules++];
    memset(r, 0, sizeof *r);
    snprintf(r->event, sizeof r->event, "%s", event);
    return r;
}

void fake_app_on(fake_app *a, const char *event, fake_action action, const char *data)
{
    fake_rule *r = rule_slot(a, event);
    if (r == NULL)
        return;
    r->action = action;
    snprintf(r->data, sizeof r->data, "%s", data ? data : "");
}

void fake_app_hook(fake_app *a, const char *event, fake_hook hook, void *ud)
{
    fake_rule *r = rule_slot(a, event);
    if (r == NULL)
        return;
    r->action = FAKE_HOOK;
    r->hook = hook;
    r->ud = ud;
}

void fake_app_clear_calls(fake_app *a) { a->ncalls = 0; }

int fake_app_finish(fake_app *a, size_t i, nf_result result, const char *data)
{
    if (i >= a->nwaiting)
        return -1;
    nf_invocation *inv = a->waiting[i];
    memmove(&a->waiting[i], &a->waiting[i + 1], (a->nwaiting - i - 1) * sizeof a->waiting[0]);
    a->nwaiting--;
    nf_invocation_finish(inv, result, data, data ? strlen(data) : 0);
    return 0;
}

int fake_app_find(const fake_app *a, const char *event, size_t from)
{
    size_t n = a->ncalls < FAKE_MAX_CALLS ? a->ncalls : FAKE_MAX_CALLS;
    for (size_t i = from; i < n; i++)
        if (strcmp(a->calls[i].event, event) == 0)
            return (int)i;
    return -1;
}

size_t fake_app_count(const fake_app *a, const char *event)
{
    size_t count = 0;
    for (int i = fake_app_find(a, event, 0); i >= 0; i = fake_app_find(a, event, (size_t)i + 1))
        count++;
    return count;
}

/* ---- the host -------------------------------------------------------------------- */

nf_host *fake_host_new(const nf_limits *limits, fake_app *app, const nf_endpoint_config *cfg)
{
    static const nf_endpoint_config none;
    struct event_base *base = event_base_new();
    if (base == NULL)
        return NULL;
    nf_host *h = nf_host_new(base, limits, &fake_app_ops, app);
    if (h == NULL) {
        event_base_free(base);
        return NULL;
    }
    nf_host_sweep_every(h, 0);
    if (nf_host_add_endpoint(h, "/echo", cfg ? cfg : &none) == NULL) {
        fake_host_free(h);
        return NULL;
    }
    return h;
}

void fake_host_free(nf_host *h)
{
    if (h == NULL)
        return;
    struct event_base *base = nf_host_base(h);
    nf_host_free(h);
    /* libevent finishes freeing bufferevents in callbacks run by the loop. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
}

/* ---- one connection ----------------------------------------------------------- */

int fake_conn_open(fake_conn *fc, nf_host *h, int sndbuf)
{
    int sv[2];
    memset(fc, 0, sizeof *fc);
    fc->peer = -1;
    /* As the server does (bindings/main.c): a write to a client that is gone
     * is an error to handle, not a signal that ends the process. */
    signal(SIGPIPE, SIG_IGN);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    if (sndbuf > 0) {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    }
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    fc->host = h;
    fc->base = nf_host_base(h);
    fc->peer = sv[1];
    fc->reading = true;
    fc->auto_pong = true;
    fc->mask_state = 0x9e3779b9u;
    fc->max_rx = RX_DEFAULT_MAX;
    int rc = nf_host_adopt(h, sv[0], "unix:1", &fc->conn);
    if (rc != 0) {
        close(sv[1]);
        fc->peer = -1;
        return rc;
    }
    nf_conn_ref(fc->conn);
    return 0;
}

void fake_conn_shutdown(fake_conn *fc)
{
    if (fc->peer >= 0) {
        close(fc->peer);
        fc->peer = -1;
    }
}

void fake_conn_free(fake_conn *fc)
{
    fake_conn_shutdown(fc);
    fake_conn_pump(fc);
    if (fc->conn)
        nf_conn_unref(fc->conn);
    fc->conn = NULL;
    free(fc->rx);
    fc->rx = NULL;
    fc->rx_len = fc->rx_cap = 0;
}

int fake_conn_write(fake_conn *fc, const void *bytes, size_t n)
{
    const uint8_t *p = bytes;
    while (n > 0) {
        if (fc->peer < 0)
            return -1;
        ssize_t w = send(fc->peer, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* The server is not reading (back-pressure): let it run once. */
            if (event_base_loop(fc->base, EVLOOP_NONBLOCK) < 0)
                return -1;
            w = send(fc->peer, p, n, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return -1;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static uint32_t next_mask(fake_conn *fc)
{
    uint32_t x = fc->mask_state;   /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    fc->mask_state = x;
    return x;
}

size_t fake_frame_encode(uint8_t *out, uint8_t b0, const void *payload, size_t n, uint32_t mask)
{
    size_t o = 0;
    out[o++] = b0;
    if (n < 126) {
        out[o++] = 0x80 | (uint8_t)n;
    } else if (n <= 0xFFFF) {
        out[o++] = 0x80 | 126;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[o++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t key[4] = { (uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8), (uint8_t)mask };
    memcpy(out + o, key, 4);
    o += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < n; i++)
        out[o + i] = p[i] ^ key[i & 3];
    return o + n;
}

int fake_conn_send_frame(fake_conn *fc, uint8_t b0, const void *payload, size_t n)
{
    uint8_t stack[512];
    uint8_t *buf = n + 14 <= sizeof stack ? stack : malloc(n + 14);
    if (buf == NULL)
        return -1;
    size_t len = fake_frame_encode(buf, b0, payload, n, next_mask(fc));
    int rc = fake_conn_write(fc, buf, len);
    if (buf != stack)
        free(buf);
    return rc;
}

int fake_conn_send_text(fake_conn *fc, const char *s) { return fake_conn_send_frame(fc, 0x81, s, strlen(s)); }
int fake_conn_send_binary(fake_conn *fc, const void *p, size_t n) { return fake_conn_send_frame(fc, 0x82, p, n); }

int fake_conn_send_close(fake_conn *fc, uint16_t code, const char *reason)
{
    uint8_t p[125];
    size_t n = 0;
    if (code) {
        p[n++] = (uint8_t)(code >> 8);
        p[n++] = (uint8_t)code;
        size_t r = reason ? strlen(reason) : 0;
        if (r > 123)
            r = 123;
        memcpy(p + n, reason, r);
        n += r;
    }
    return fake_conn_send_frame(fc, 0x88, p, n);
}

/* ---- reading the server -------------------------------------------------------- */

static bool rx_reserve(fake_conn *fc, size_t more)
{
    if (fc->rx_len + more <= fc->rx_cap)
        return true;
    size_t cap = fc->rx_cap ? fc->rx_cap : 4096;
    while (cap < fc->rx_len + more)
        cap *= 2;
    uint8_t *p = realloc(fc->rx, cap);
    if (p == NULL)
        return false;
    fc->rx = p;
    fc->rx_cap = cap;
    return true;
}

static bool read_some(fake_conn *fc)
{
    bool progress = false;
    while (fc->reading && fc->peer >= 0 && !fc->eof && fc->rx_len < fc->max_rx) {
        if (!rx_reserve(fc, 65536))
            break;
        ssize_t n = recv(fc->peer, fc->rx + fc->rx_len, 65536, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            fc->eof = true;
            progress = true;
            break;
        }
        if (n < 0)
            break;
        fc->rx_len += (size_t)n;
        progress = true;
    }
    return progress;
}

static void consume(fake_conn *fc, size_t n)
{
    memmove(fc->rx, fc->rx + n, fc->rx_len - n);
    fc->rx_len -= n;
}

/* The HTTP answer head: status parsed, consumed only if it is 101 (the
 * bytes of other answers stay for the test to read). */
static void read_http(fake_conn *fc)
{
    if (fc->http_done || fc->http_status || fc->rx_len < 12)
        return;
    uint8_t *end = memmem(fc->rx, fc->rx_len, "\r\n\r\n", 4);
    if (end == NULL)
        return;
    int status = 0;
    if (memcmp(fc->rx, "HTTP/1.1 ", 9) == 0)
        status = (fc->rx[9] - '0') * 100 + (fc->rx[10] - '0') * 10 + (fc->rx[11] - '0');
    fc->http_status = status;
    if (status == 101) {
        consume(fc, (size_t)(end + 4 - fc->rx));
        fc->http_done = true;
    }
}

/* Size of the complete frame at p[0..have), 0 if incomplete; the header
 * fields go to f (data not copied). */
static size_t frame_at(const uint8_t *p, size_t have, fake_frame *f, size_t *hlen)
{
    if (have < 2)
        return 0;
    uint64_t len = p[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (have < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (len == 127) {
        if (have < 10)
            return 0;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | p[i];
        h = 10;
    }
    if (p[1] & 0x80)
        h += 4;   /* a server must not mask; parsed anyway so a test can see it */
    if (have < h || have - h < len)
        return 0;
    f->opcode = p[0] & 0x0f;
    f->fin = p[0] & 0x80;
    f->len = (size_t)len;
    *hlen = h;
    return h + (size_t)len;
}

/* Answers every complete ping buffered and removes it. Returns true if it sent any. */
static bool answer_pings(fake_conn *fc)
{
    bool sent = false;
    size_t off = 0;
    while (fc->http_done && fc->auto_pong && off < fc->rx_len) {
        fake_frame f;
        size_t h, size = frame_at(fc->rx + off, fc->rx_len - off, &f, &h);
        if (size == 0)
            break;
        if (f.opcode != 0x9) {
            off += size;
            continue;
        }
        fake_conn_send_frame(fc, 0x8A, fc->rx + off + h, f.len);
        fc->pings++;
        memmove(fc->rx + off, fc->rx + off + size, fc->rx_len - off - size);
        fc->rx_len -= size;
        sent = true;
    }
    return sent;
}

void fake_conn_pump(fake_conn *fc)
{
    int quiet = 0;
    for (int i = 0; i < PUMP_MAX_ROUNDS && quiet < PUMP_QUIET_ROUNDS; i++) {
        event_base_loop(fc->base, EVLOOP_NONBLOCK);
        bool progress = read_some(fc);
        read_http(fc);
        progress |= answer_pings(fc);
        quiet = progress ? 0 : quiet + 1;
    }
}

void fake_conn_tick(fake_conn *fc, uint64_t ms)
{
    fake_clock_advance(ms);
    nf_host_sweep(fc->host);
    fake_conn_pump(fc);
}

int fake_conn_upgrade(fake_conn *fc, const char *path)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path);
    if (fake_conn_write(fc, req, (size_t)n) != 0)
        return 0;
    fake_conn_pump(fc);
    return fc->http_status;
}

int fake_conn_handshake(fake_conn *fc, const char *path)
{
    if (fake_conn_upgrade(fc, path) != 101 || fake_conn_send_text(fc, "M") != 0)
        return -1;
    fake_conn_pump(fc);
    return fake_conn_expect_ack(fc) ? 0 : -1;
}

int fake_conn_connect_ns(fake_conn *fc, const char *ns)
{
    char req[256];
    snprintf(req, sizeof req, "$0;%s;;_OnNamespaceConnect;0;0;", ns);
    if (fake_conn_send_text(fc, req) != 0)
        return -1;
    fake_conn_pump(fc);
    return fake_conn_expect_text(fc, "$0;;;;;;") ? 0 : -1;
}

int fake_setup(fake_app *app, nf_host **host, fake_conn *fc, const nf_limits *lim, const nf_endpoint_config *cfg,
               int sndbuf, uint64_t start_ms, bool handshake)
{
    nf_limits def = nf_limits_default();
    fake_clock_install(start_ms);
    fake_app_init(app);
    app->namespaces[0] = "default";
    *host = fake_host_new(lim ? lim : &def, app, cfg);
    if (*host == NULL || fake_conn_open(fc, *host, sndbuf) != 0)
        return -1;
    return handshake ? fake_conn_handshake(fc, "/echo") : 0;
}

int fake_teardown(fake_app *app, nf_host *host, fake_conn *fc)
{
    fake_conn_free(fc);
    nf_host_stats st;
    nf_host_get_stats(host, &st);
    fake_host_free(host);
    if (st.sockets || st.websockets || st.ids || st.namespaces || st.rooms || app->conns_freed != 1 || app->nwaiting) {
        fprintf(stderr, "teardown: left sockets=%zu websockets=%zu ids=%zu namespaces=%zu rooms=%zu; "
                "conns freed %d, handlers waiting %zu\n", (size_t)st.sockets, (size_t)st.websockets, (size_t)st.ids,
                (size_t)st.namespaces, (size_t)st.rooms, (int)app->conns_freed, (size_t)app->nwaiting);
        return -1;
    }
    return 0;
}

bool fake_conn_next(fake_conn *fc, fake_frame *f)
{
    size_t h;
    memset(f, 0, sizeof *f);
    if (!fc->http_done)
        return false;
    size_t size = frame_at(fc->rx, fc->rx_len, f, &h);
    if (size == 0)
        return false;
    f->data = malloc(f->len + 1);
    if (f->data == NULL)
        return false;
    memcpy(f->data, fc->rx + h, f->len);
    f->data[f->len] = '\0';
    if (f->opcode == 0x8 && f->len >= 2)
        f->close_code = (uint16_t)(f->data[0] << 8 | f->data[1]);
    consume(fc, size);
    return true;
}

void fake_frame_free(fake_frame *f)
{
    free(f->data);
    f->data = NULL;
}

static void show(const char *want, const fake_frame *f, bool got)
{
    if (!got) {
        fprintf(stderr, "  expected %s, got no frame\n", want);
        return;
    }
    fprintf(stderr, "  expected %s, got opcode %u (%zu bytes): \"", want, f->opcode, f->len);
    for (size_t i = 0; i < f->len && i < 200; i++)
        fputc(f->data[i] >= 0x20 && f->data[i] < 0x7f ? f->data[i] : '.', stderr);
    fprintf(stderr, "\"\n");
}

static bool expect_data(fake_conn *fc, uint8_t opcode, const void *p, size_t n)
{
    fake_frame f;
    bool got = fake_conn_next(fc, &f);
    bool ok = got && f.opcode == opcode && f.len == n && memcmp(f.data, p, n) == 0;
    if (!ok) {
        char want[300];
        snprintf(want, sizeof want, "opcode %u \"%.*s\"", opcode, (int)(n < 200 ? n : 200), (const char *)p);
        show(want, &f, got);
    }
    fake_frame_free(&f);
    return ok;
}

bool fake_conn_expect_text(fake_conn *fc, const char *s) { return expect_data(fc, 0x1, s, strlen(s)); }

bool fake_conn_expect_ack(fake_conn *fc)
{
    nf_slice id = nf_conn_id(fc->conn);
    char ack[160];
    if (id.len == 0 || id.len + 2 > sizeof ack)
        return false;
    ack[0] = 'A';
    memcpy(ack + 1, id.ptr, id.len);
    ack[id.len + 1] = '\0';
    return fake_conn_expect_text(fc, ack);
}
bool fake_conn_expect_binary(fake_conn *fc, const void *p, size_t n) { return expect_data(fc, 0x2, p, n); }

bool fake_conn_expect_close(fake_conn *fc, uint16_t code, const char *reason)
{
    fake_frame f;
    bool got = fake_conn_next(fc, &f);
    size_t rlen = strlen(reason);
    bool ok = got && f.opcode == 0x8 && f.close_code == code && f.len == 2 + rlen &&
              memcmp(f.data + 2, reason, rlen) == 0;
    if (!ok) {
        char want[200];
        snprintf(want, sizeof want, "close %u \"%s\"", code, reason);
        show(want, &f, got);
    }
    fake_frame_free(&f);
    return ok;
}

bool fake_conn_quiet(fake_conn *fc)
{
    if (fc->rx_len == 0)
        return true;
    fake_frame f;
    bool got = fake_conn_next(fc, &f);
    show("nothing", &f, got);
    fake_frame_free(&f);
    return false;
}

size_t fake_conn_pending(const fake_conn *fc) { return fc->rx_len; }
void fake_conn_discard(fake_conn *fc) { fc->rx_len = 0; }
