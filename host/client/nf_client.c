/* nf_client.c - see nf_client.h.
 *
 * Data path: a send serializes the neffos message straight into the output
 * buffer behind room for the frame header, writes the header, and masks the
 * payload in place, 8 bytes at a time. The output buffer is written by the
 * loop's flush event, which libevent runs after every callback this
 * iteration activated, so all frames queued in one iteration leave in one
 * write(). Incoming bytes are read into a flat buffer and every complete
 * frame is handled in place; only a fragmented message is copied. */
#include "nf_client.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nf_wsframe.h"
#include "sha1.h"

#define RBUF_INITIAL 2048           /* enough for an idle connection's traffic */
#define RBUF_BUSY (64 * 1024)       /* once a read fills the buffer, read more at once */
#define WBUF_INITIAL 512
#define MAX_HTTP_RESPONSE 8192
#define DEFAULT_MAX_MESSAGE (16u << 20)
#define DEFAULT_MAX_OUTPUT (32u << 20)   /* two maximum messages behind a peer that stopped reading */
#define TOKEN_MAX 24                /* "$" + 20 digits + NUL */

struct nf_client_loop {
    struct event_base *base;
    struct event *flush_ev;
    nf_client *flush_head;          /* clients with output and no EV_WRITE armed */
    uint64_t rng;                   /* xorshift64* state for masking keys */
};

typedef struct pending_ask {
    uint64_t id;                    /* 0: free slot (ids start at 1) */
    nf_client_ask_cb *cb;
    void *arg;
} pending_ask;

struct nf_client {
    nf_client_loop *loop;
    nf_client_handlers h;
    const char *const *headers;
    const nf_target *url;
    void *udata;
    size_t max_message;
    size_t max_output;              /* bound of the unwritten bytes [woff, wlen) */
    bool native;                    /* no neffos handshake, every frame raw */

    int fd;
    nf_client_state state;
    struct event *rev, *wev;

    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf;
    size_t woff, wlen, wcap;        /* unwritten bytes are [woff, wlen) */
    uint8_t *frag;                  /* a fragmented message being reassembled */
    size_t fraglen, fragcap;
    unsigned frag_opcode;           /* 0: no fragmented message in progress */

    /* Pending asks by id: slot = id & (cap-1). Ids are handed out in order
     * and mostly answered in order, so slots rarely collide; on a collision
     * the table doubles (two ids that collide at 2*cap collided at cap). */
    pending_ask *asks;
    size_t asks_cap, asks_n;
    uint64_t next_ask;

    char key[32];                   /* Sec-WebSocket-Key we sent */
    char *id;                       /* from "A<id>" */
    char why[160];                  /* reason given to on_close */

    nf_client *flush_prev, *flush_next;
    bool in_flush_list;
    bool write_armed;               /* EV_WRITE pending after a short write */
    bool close_after_flush;         /* our close frame is queued */
    bool close_reported;
    bool free_pending;              /* nf_client_free called inside a callback */
    int depth;                      /* >0 while our event handlers run */
    int connect_errno;              /* connect() failed synchronously */
};

static void read_cb(evutil_socket_t fd, short what, void *arg);
static void write_cb(evutil_socket_t fd, short what, void *arg);
static void flush_one(nf_client *c);
static void enter(nf_client *c);
static bool leave(nf_client *c);

/* ---- the loop ---------------------------------------------------------- */

static void flush_list_unlink(nf_client *c)
{
    nf_client_loop *l = c->loop;
    if (!c->in_flush_list)
        return;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else
        l->flush_head = c->flush_next;
    if (c->flush_next)
        c->flush_next->flush_prev = c->flush_prev;
    c->flush_prev = c->flush_next = NULL;
    c->in_flush_list = false;
}

/* Runs once per loop iteration in which something was queued: libevent
 * appends it to the active queue behind the read events already being
 * handled, so it sees all of this iteration's output. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_client_loop *l = arg;
    nf_client *c;
    while ((c = l->flush_head) != NULL) {
        flush_list_unlink(c);
        enter(c);
        flush_one(c);
        leave(c);
    }
}

nf_client_loop *nf_client_loop_new(struct event_base *base)
{
    nf_client_loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->base = base;
    l->flush_ev = event_new(base, -1, 0, flush_cb, l);
    if (l->flush_ev == NULL) {
        free(l);
        return NULL;
    }
    if (getrandom(&l->rng, sizeof(l->rng), 0) != sizeof(l->rng) || l->rng == 0)
        l->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    return l;
}

void nf_client_loop_free(nf_client_loop *l)
{
    if (l == NULL)
        return;
    event_free(l->flush_ev);
    free(l);
}

/* RFC 6455 wants masking keys an attacker cannot predict (it protects
 * intermediaries from cache poisoning by script-controlled payloads). A
 * load generator on loopback has no such attacker; a kernel-seeded
 * xorshift64* costs a few cycles per frame instead of a syscall. */
static uint64_t loop_random(nf_client_loop *l)
{
    uint64_t x = l->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    l->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void release(nf_client *c)
{
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    free(c->rbuf);
    free(c->wbuf);
    free(c->frag);
    free(c->asks);
    free(c->id);
    free(c);
}

static void fail_asks(nf_client *c)
{
    if (c->asks_n == 0)
        return;
    /* Callbacks may ask again (and fail, the state is CLOSED), but must not
     * see a half-cleared table: take each entry out before calling. */
    for (size_t i = 0; i < c->asks_cap && c->asks_n > 0; i++) {
        pending_ask a = c->asks[i];
        if (a.id == 0)
            continue;
        c->asks[i].id = 0;
        c->asks_n--;
        a.cb(c, NF_CLIENT_ASK_CLOSED, NULL, a.arg);
    }
}

/* Closes the socket; the struct stays. */
static void teardown(nf_client *c)
{
    if (c->fd >= 0) {
        event_del(c->rev);
        event_del(c->wev);
        close(c->fd);
        c->fd = -1;
    }
    flush_list_unlink(c);
    c->write_armed = false;
    c->state = NF_CLIENT_CLOSED;
    fail_asks(c);
}

static void finish(nf_client *c, const char *why)
{
    if (c->state == NF_CLIENT_CLOSED)
        return;
    if (why != c->why)
        snprintf(c->why, sizeof(c->why), "%s", why);
    teardown(c);
    if (!c->close_reported) {
        c->close_reported = true;
        if (c->h.on_close)
            c->h.on_close(c, c->why);
    }
}

static void enter(nf_client *c) { c->depth++; }

/* Returns false when c was freed: the caller must not touch it. */
static bool leave(nf_client *c)
{
    if (--c->depth == 0 && c->free_pending) {
        release(c);
        return false;
    }
    return true;
}

void nf_client_free(nf_client *c)
{
    if (c == NULL)
        return;
    c->close_reported = true;       /* the owner is gone: no on_close */
    teardown(c);
    if (c->depth > 0)
        c->free_pending = true;
    else
        release(c);
}

/* ---- output -------------------------------------------------------------- */

static void schedule_flush(nf_client *c)
{
    nf_client_loop *l = c->loop;
    if (c->in_flush_list || c->write_armed || c->fd < 0)
        return;
    if (l->flush_head == NULL)
        event_active(l->flush_ev, 0, 0);
    c->flush_next = l->flush_head;
    if (l->flush_head)
        l->flush_head->flush_prev = c;
    l->flush_head = c;
    c->in_flush_list = true;
}

/* Room for n more bytes at wbuf + wlen, or NULL: out of memory, or the
 * unwritten bytes would pass max_output (a peer that stopped reading must
 * not make the buffer grow without end; the send fails instead). */
static uint8_t *wreserve(nf_client *c, size_t n)
{
    if (c->wlen - c->woff + n > c->max_output)
        return NULL;
    if (c->wcap - c->wlen >= n)
        return c->wbuf + c->wlen;
    if (c->woff > 0) {              /* slide the unwritten tail to the front */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (c->wcap - c->wlen >= n)
            return c->wbuf + c->wlen;
    }
    size_t cap = c->wcap ? c->wcap : WBUF_INITIAL;
    while (cap - c->wlen < n)
        cap *= 2;
    uint8_t *nb = realloc(c->wbuf, cap);
    if (nb == NULL)
        return NULL;
    c->wbuf = nb;
    c->wcap = cap;
    return c->wbuf + c->wlen;
}

static void wcommit(nf_client *c, size_t n)
{
    c->wlen += n;
    schedule_flush(c);
}

static size_t header_len_for(uint64_t len)
{
    return len < 126 ? 6 : len <= 0xffff ? 8 : 14;
}

/* Queues one masked frame whose payload is written by the caller: returns
 * where the payload goes; finish with frame_commit. */
static uint8_t *frame_begin(nf_client *c, size_t len, size_t *hlen)
{
    size_t hn = header_len_for(len);
    uint8_t *p = wreserve(c, hn + len);
    if (p == NULL)
        return NULL;
    *hlen = hn;
    return p + hn;
}

static void frame_commit(nf_client *c, unsigned opcode, size_t hlen, size_t len)
{
    uint8_t *p = c->wbuf + c->wlen;
    uint32_t key = (uint32_t)loop_random(c->loop);
    nf_ws_client_header(p, opcode, len, key);
    nf_ws_mask(p + hlen, len, key, 0);
    wcommit(c, hlen + len);
}

static int send_frame(nf_client *c, unsigned opcode, const void *data, size_t len)
{
    size_t hlen;
    uint8_t *p = frame_begin(c, len, &hlen);
    if (p == NULL)
        return -1;
    if (len)
        memcpy(p, data, len);
    frame_commit(c, opcode, hlen, len);
    return 0;
}

/* Callers hold enter()/leave() around it: a failed write runs on_close. */
static void flush_one(nf_client *c)
{
    if (c->fd < 0 || c->woff == c->wlen)
        goto done;
    ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        snprintf(c->why, sizeof(c->why), "write: %s", strerror(errno));
        finish(c, c->why);
        return;
    }
    if (n > 0)
        c->woff += (size_t)n;
    if (c->woff < c->wlen) {        /* short write: let the kernel tell us */
        c->write_armed = true;
        event_add(c->wev, NULL);
        return;
    }
    c->woff = c->wlen = 0;
done:
    if (c->close_after_flush && c->fd >= 0 && c->state == NF_CLIENT_CLOSING) {
        /* Our close frame is out: half-close, and let the read side wait
         * for the server's close frame or EOF. */
        shutdown(c->fd, SHUT_WR);
        c->close_after_flush = false;
    }
}

/* ---- dialling -------------------------------------------------------------- */

static int send_upgrade_request(nf_client *c)
{
    uint8_t raw[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = loop_random(c->loop);
        memcpy(raw + i, &r, 8);
    }
    nf_base64_encode(raw, sizeof(raw), c->key);

    size_t need = 256 + strlen(c->url->path) + strlen(c->url->hostport);
    for (const char *const *h = c->headers; h && *h; h++)
        need += strlen(*h) + 2;
    char *p = (char *)wreserve(c, need);
    if (p == NULL)
        return -1;
    int n = snprintf(p, need,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     c->url->path, c->url->hostport, c->key);
    for (const char *const *h = c->headers; h && *h; h++)
        n += snprintf(p + n, need - (size_t)n, "%s\r\n", *h);
    n += snprintf(p + n, need - (size_t)n, "\r\n");
    wcommit(c, (size_t)n);
    return 0;
}

nf_client *nf_client_new(nf_client_loop *loop, const nf_client_opts *opts)
{
    nf_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    if (opts->handlers)
        c->h = *opts->handlers;
    c->headers = opts->headers;
    c->url = opts->url;
    c->udata = opts->udata;
    c->max_message = opts->max_message ? opts->max_message : DEFAULT_MAX_MESSAGE;
    c->max_output = opts->max_output ? opts->max_output : DEFAULT_MAX_OUTPUT;
    c->native = opts->native;
    c->next_ask = 1;
    c->state = NF_CLIENT_CONNECTING;

    c->fd = socket(c->url->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        int e = errno;
        free(c);
        errno = e;
        return NULL;
    }
    /* We batch frames ourselves; Nagle would only hold back the next
     * batch until the previous one is acknowledged. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->rev = event_new(loop->base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(loop->base, c->fd, EV_WRITE, write_cb, c);
    c->rbuf = malloc(RBUF_INITIAL);
    if (c->rev == NULL || c->wev == NULL || c->rbuf == NULL) {
        close(c->fd);
        c->fd = -1;
        release(c);
        errno = ENOMEM;
        return NULL;
    }
    c->rcap = RBUF_INITIAL;
    if (connect(c->fd, (const struct sockaddr *)&c->url->addr, c->url->addrlen) < 0 &&
        errno != EINPROGRESS) {
        /* Reported from the loop, so that on_close never runs before the
         * caller has the pointer. */
        c->connect_errno = errno;
        event_active(c->wev, EV_WRITE, 0);
        c->write_armed = true;
        return c;
    }
    c->write_armed = true;
    event_add(c->wev, NULL);
    return c;
}

static void connected(nf_client *c)
{
    int err = c->connect_errno;
    socklen_t len = sizeof(err);
    if (err == 0 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        snprintf(c->why, sizeof(c->why), "connect: %s", strerror(err));
        finish(c, c->why);
        return;
    }
    c->state = NF_CLIENT_UPGRADING;
    event_add(c->rev, NULL);
    if (send_upgrade_request(c) < 0)
        finish(c, "out of memory");
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_client *c = arg;
    enter(c);
    c->write_armed = false;
    if (c->state == NF_CLIENT_CONNECTING)
        connected(c);
    else
        flush_one(c);
    leave(c);
}

/* ---- the HTTP upgrade response ------------------------------------------------ */

static const char *find_header(const char *head, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *line = memchr(head, '\n', (size_t)(end - head));
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

/* Consumes the response head from rbuf. Returns 1 when done, 0 when more
 * bytes are needed, -1 after finish(). */
static int handle_upgrade_response(nf_client *c)
{
    const char *head = (const char *)c->rbuf;
    const char *end = memmem(head, c->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->rlen > MAX_HTTP_RESPONSE) {
            finish(c, "upgrade: response head too large");
            return -1;
        }
        return 0;
    }
    end += 2;   /* keep the last header's CRLF inside [head, end) */
    if (c->rlen < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
        const char *eol = memchr(head, '\r', (size_t)(end - head));
        snprintf(c->why, sizeof(c->why), "upgrade refused: %.*s",
                 (int)(eol ? eol - head : 40), head);
        finish(c, c->why);
        return -1;
    }
    size_t vlen;
    const char *v = find_header(head, end, "Sec-WebSocket-Accept", &vlen);
    char want[29];
    nf_ws_accept_key(c->key, strlen(c->key), want);
    if (v == NULL || vlen != 28 || memcmp(v, want, 28) != 0) {
        finish(c, "upgrade: missing or wrong Sec-WebSocket-Accept");
        return -1;
    }
    size_t used = (size_t)(end + 2 - head);
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
    if (c->native) {
        /* A native-only endpoint has no handshake (docs/protocol.md §4.7). */
        c->state = NF_CLIENT_OPEN;
        if (c->h.on_open)
            c->h.on_open(c, NF_SLICE_EMPTY);
        return c->state == NF_CLIENT_OPEN ? 1 : -1;
    }
    c->state = NF_CLIENT_ACKING;
    /* The neffos handshake: the client speaks first (docs/protocol.md §4.2). */
    if (send_frame(c, NF_WS_TEXT, "M", 1) < 0) {
        finish(c, "out of memory");
        return -1;
    }
    return 1;
}

/* ---- asks --------------------------------------------------------------------- */

static int asks_grow(nf_client *c)
{
    size_t ncap = c->asks_cap ? c->asks_cap * 2 : 16;
    pending_ask *na = calloc(ncap, sizeof(*na));
    if (na == NULL)
        return -1;
    for (size_t i = 0; i < c->asks_cap; i++)
        if (c->asks[i].id)
            na[c->asks[i].id & (ncap - 1)] = c->asks[i];
    free(c->asks);
    c->asks = na;
    c->asks_cap = ncap;
    return 0;
}

static int asks_put(nf_client *c, uint64_t id, nf_client_ask_cb *cb, void *arg)
{
    while (c->asks_cap == 0 || c->asks[id & (c->asks_cap - 1)].id != 0)
        if (asks_grow(c) < 0)
            return -1;
    c->asks[id & (c->asks_cap - 1)] = (pending_ask){ id, cb, arg };
    c->asks_n++;
    return 0;
}

/* Our tokens are "$" + decimal; anything else is not ours. */
static bool token_id(nf_slice t, uint64_t *id)
{
    if (t.len < 2 || t.len > 21 || t.ptr[0] != '$')
        return false;
    uint64_t v = 0;
    for (size_t i = 1; i < t.len; i++) {
        unsigned d = (unsigned char)t.ptr[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    *id = v;
    return true;
}

static size_t format_token(char *out, uint64_t id)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    out[0] = '$';
    for (size_t i = 0; i < n; i++)
        out[1 + i] = tmp[n - 1 - i];
    return n + 1;
}

static bool complete_ask(nf_client *c, const nf_msg *m)
{
    uint64_t id;
    if (c->asks_cap == 0 || !token_id(m->wait, &id))
        return false;
    pending_ask *slot = &c->asks[id & (c->asks_cap - 1)];
    if (slot->id != id)
        return false;
    pending_ask a = *slot;
    slot->id = 0;
    c->asks_n--;
    a.cb(c, m->is_error ? NF_CLIENT_ASK_ERROR : NF_CLIENT_ASK_OK, m, a.arg);
    return true;
}

/* ---- incoming messages -------------------------------------------------------- */

static void handle_ack(nf_client *c, const uint8_t *p, size_t len)
{
    if (len >= 1 && p[0] == 'A') {
        c->id = malloc(len);
        if (c->id == NULL) {
            finish(c, "out of memory");
            return;
        }
        memcpy(c->id, p + 1, len - 1);
        c->id[len - 1] = '\0';
        c->state = NF_CLIENT_OPEN;
        if (c->h.on_open)
            c->h.on_open(c, nf_slice_of(c->id, len - 1));
    } else if (len >= 1 && p[0] == 'H') {
        snprintf(c->why, sizeof(c->why), "refused: %.*s", (int)(len - 1), (const char *)p + 1);
        finish(c, c->why);
    } else {
        /* A conforming server sends nothing before "A" (docs/protocol.md §4.5). */
        snprintf(c->why, sizeof(c->why), "handshake: unexpected frame %.*s",
                 (int)(len < 40 ? len : 40), (const char *)p);
        finish(c, c->why);
    }
}

static void handle_message(nf_client *c, const uint8_t *p, size_t len, bool binary)
{
    if (c->state == NF_CLIENT_ACKING) {
        handle_ack(c, p, len);
        return;
    }
    if (c->native) {
        if (c->h.on_native)
            c->h.on_native(c, nf_slice_of((const char *)p, len), binary);
        return;
    }
    nf_msg m;
    char scratch[256], *heap = NULL;
    nf_parse_result r = nf_msg_parse((const char *)p, len, scratch, sizeof(scratch), &m);
    if (r == NF_PARSE_SCRATCH_SMALL) {  /* long escaped names: rare */
        heap = malloc(len);
        r = heap ? nf_msg_parse((const char *)p, len, heap, len, &m) : NF_PARSE_EMPTY;
    }
    m.binary = binary;   /* the opcode: parse leaves it false */
    if (r == NF_PARSE_NOT_MESSAGE) {
        if (c->h.on_native)
            c->h.on_native(c, nf_slice_of((const char *)p, len), binary);
    } else if (r == NF_PARSE_OK) {
        if (m.wait.len > 0 && m.wait.ptr[0] == '$') {
            if (!complete_ask(c, &m) && c->h.on_event)
                c->h.on_event(c, &m);
        } else if (m.wait.len > 0 && c->h.on_ask) {
            nf_client_reply rep = { NF_SLICE_EMPTY, false };
            if (c->h.on_ask(c, &m, &rep) && c->state == NF_CLIENT_OPEN) {
                nf_msg out = { .wait = m.wait, .ns = m.ns, .room = m.room, .event = m.event,
                               .body = rep.body, .is_error = rep.is_error };
                nf_client_send(c, &out, false);
            }
        } else if (c->h.on_event) {
            c->h.on_event(c, &m);
        }
    }
    free(heap);
}

static void handle_close_frame(nf_client *c, const uint8_t *p, size_t len)
{
    unsigned code = len >= 2 ? ((unsigned)p[0] << 8) | p[1] : 1005;
    if (c->state != NF_CLIENT_CLOSING && c->fd >= 0) {
        /* Echo the code (RFC 6455 5.5.1) with a best-effort direct write:
         * the socket closes right after. */
        uint8_t fr[NF_WS_MAX_CLIENT_HEADER + 2];
        uint8_t body[2] = { (uint8_t)(code >> 8), (uint8_t)code };
        uint32_t key = (uint32_t)loop_random(c->loop);
        size_t hn = nf_ws_client_header(fr, NF_WS_CLOSE, len >= 2 ? 2 : 0, key);
        memcpy(fr + hn, body, 2);
        nf_ws_mask(fr + hn, 2, key, 0);
        if (write(c->fd, fr, hn + (len >= 2 ? 2 : 0)) < 0) {
            /* the peer is gone already; nothing to do */
        }
    }
    if (c->state == NF_CLIENT_CLOSING) {    /* the answer to our own close */
        finish(c, "closed");
        return;
    }
    snprintf(c->why, sizeof(c->why), "closed by server (%u%s%.*s)", code,
             len > 2 ? " " : "", (int)(len > 2 ? len - 2 : 0), (const char *)p + 2);
    finish(c, c->why);
}

/* Handles one complete frame whose payload is [p, p+len). */
static void handle_frame(nf_client *c, const nf_ws_header *h, const uint8_t *p, size_t len)
{
    switch (h->opcode) {
    case NF_WS_TEXT:
    case NF_WS_BINARY:
        if (c->frag_opcode) {
            finish(c, "protocol: new message inside a fragmented one");
            return;
        }
        if (h->fin) {
            handle_message(c, p, len, h->opcode == NF_WS_BINARY);
            return;
        }
        c->frag_opcode = h->opcode;
        c->fraglen = 0;
        /* fallthrough */
    case NF_WS_CONT:
        if (!c->frag_opcode) {
            finish(c, "protocol: continuation without a start");
            return;
        }
        if (c->fraglen + len > c->max_message) {
            finish(c, "message too large");
            return;
        }
        if (c->fraglen + len > c->fragcap) {
            size_t cap = c->fragcap ? c->fragcap : 1024;
            while (cap < c->fraglen + len)
                cap *= 2;
            uint8_t *nf = realloc(c->frag, cap);
            if (nf == NULL) {
                finish(c, "out of memory");
                return;
            }
            c->frag = nf;
            c->fragcap = cap;
        }
        memcpy(c->frag + c->fraglen, p, len);
        c->fraglen += len;
        if (h->fin) {
            bool binary = c->frag_opcode == NF_WS_BINARY;
            c->frag_opcode = 0;
            handle_message(c, c->frag, c->fraglen, binary);
        }
        return;
    case NF_WS_PING:
        if (c->state != NF_CLIENT_CLOSING)
            send_frame(c, NF_WS_PONG, p, len);
        return;
    case NF_WS_PONG:
        return;
    case NF_WS_CLOSE:
        handle_close_frame(c, p, len);
        return;
    default:
        snprintf(c->why, sizeof(c->why), "protocol: unknown opcode %u", h->opcode);
        finish(c, c->why);
    }
}

/* Handles every complete frame in rbuf, then keeps the partial tail. */
static void process_frames(nf_client *c)
{
    size_t off = 0;
    while (c->state != NF_CLIENT_CLOSED) {
        nf_ws_header h;
        nf_ws_hdr_result r = nf_ws_parse_header(c->rbuf + off, c->rlen - off, &h);
        if (r == NF_WS_HDR_SHORT)
            break;
        if (r == NF_WS_HDR_BAD || h.rsv || h.masked) {
            finish(c, h.masked ? "protocol: masked frame from the server"
                               : "protocol: bad frame header");
            return;
        }
        if (h.payload_len > c->max_message) {
            finish(c, "message too large");
            return;
        }
        size_t total = h.header_len + (size_t)h.payload_len;
        if (c->rlen - off < total) {
            if (total > c->rcap) {      /* make room for the whole frame */
                uint8_t *nb = realloc(c->rbuf, total);
                if (nb == NULL) {
                    finish(c, "out of memory");
                    return;
                }
                c->rbuf = nb;
                c->rcap = total;
            }
            break;
        }
        off += total;
        handle_frame(c, &h, c->rbuf + off - h.payload_len, (size_t)h.payload_len);
    }
    if (c->state == NF_CLIENT_CLOSED)
        return;
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_client *c = arg;
    if (c->rlen == c->rcap) {
        size_t cap = c->rcap < RBUF_BUSY ? RBUF_BUSY : c->rcap * 2;
        uint8_t *nb = realloc(c->rbuf, cap);
        if (nb == NULL) {
            enter(c);
            finish(c, "out of memory");
            leave(c);
            return;
        }
        c->rbuf = nb;
        c->rcap = cap;
    }
    size_t room = c->rcap - c->rlen;
    ssize_t n = read(fd, c->rbuf + c->rlen, room);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    enter(c);
    if (n <= 0) {
        if (n == 0)
            finish(c, c->state == NF_CLIENT_CLOSING ? "closed" : "connection closed by server (EOF)");
        else {
            snprintf(c->why, sizeof(c->why), "read: %s", strerror(errno));
            finish(c, c->why);
        }
        leave(c);
        return;
    }
    c->rlen += (size_t)n;
    /* A read that filled the buffer means traffic is heavy: grow it so the
     * next one takes more per syscall. */
    if ((size_t)n == room && c->rcap < RBUF_BUSY) {
        uint8_t *nb = realloc(c->rbuf, RBUF_BUSY);
        if (nb) {
            c->rbuf = nb;
            c->rcap = RBUF_BUSY;
        }
    }
    if (c->state == NF_CLIENT_UPGRADING && handle_upgrade_response(c) <= 0) {
        leave(c);
        return;
    }
    process_frames(c);
    leave(c);
}

/* ---- public sending API ---------------------------------------------------------- */

int nf_client_send(nf_client *c, const nf_msg *m, bool binary)
{
    if (c->state != NF_CLIENT_OPEN)
        return -1;
    size_t len = nf_msg_serialized_len(m), hlen;
    if (len > c->max_message)
        return -1;
    uint8_t *p = frame_begin(c, len, &hlen);
    if (p == NULL)
        return -1;
    nf_msg_serialize(m, (char *)p);
    frame_commit(c, binary ? NF_WS_BINARY : NF_WS_TEXT, hlen, len);
    return 0;
}

int nf_client_send_native(nf_client *c, nf_slice data, bool binary)
{
    if (c->state != NF_CLIENT_OPEN || data.len > c->max_message)
        return -1;
    return send_frame(c, binary ? NF_WS_BINARY : NF_WS_TEXT, data.ptr, data.len);
}

int nf_client_send_empty_reply(nf_client *c, nf_slice token)
{
    if (c->state != NF_CLIENT_OPEN || token.len > c->max_message - 6)
        return -1;
    size_t hlen;
    uint8_t *p = frame_begin(c, token.len + 6, &hlen);
    if (p == NULL)
        return -1;
    frame_commit(c, NF_WS_TEXT, hlen, nf_empty_reply_serialize(token, (char *)p));
    return 0;
}

int nf_client_emit(nf_client *c, nf_slice ns, nf_slice event, nf_slice body)
{
    nf_msg m = { .wait = NF_SLICE_EMPTY, .ns = ns, .room = NF_SLICE_EMPTY, .event = event, .body = body };
    return nf_client_send(c, &m, false);
}

int nf_client_ask(nf_client *c, nf_slice ns, nf_slice event, nf_slice body,
                  nf_client_ask_cb *cb, void *arg)
{
    nf_msg m = { .ns = ns, .room = NF_SLICE_EMPTY, .event = event, .body = body };
    return nf_client_ask_msg(c, &m, false, cb, arg);
}

int nf_client_ask_msg(nf_client *c, const nf_msg *q, bool binary, nf_client_ask_cb *cb, void *arg)
{
    if (c->state != NF_CLIENT_OPEN)
        return -1;
    char tok[TOKEN_MAX];
    uint64_t id = c->next_ask;
    nf_msg m = *q;
    m.wait = nf_slice_of(tok, format_token(tok, id));
    if (asks_put(c, id, cb, arg) < 0)
        return -1;
    if (nf_client_send(c, &m, binary) < 0) {
        c->asks[id & (c->asks_cap - 1)].id = 0;
        c->asks_n--;
        return -1;
    }
    c->next_ask++;
    return 0;
}

int nf_client_connect_ns(nf_client *c, nf_slice ns, nf_client_ask_cb *cb, void *arg)
{
    return nf_client_ask(c, ns, NF_SLICE(NF_ON_NAMESPACE_CONNECT), NF_SLICE_EMPTY, cb, arg);
}

int nf_client_disconnect_ns(nf_client *c, nf_slice ns, nf_client_ask_cb *cb, void *arg)
{
    return nf_client_ask(c, ns, NF_SLICE(NF_ON_NAMESPACE_DISCONNECT), NF_SLICE_EMPTY, cb, arg);
}

void nf_client_close(nf_client *c)
{
    if (c->state == NF_CLIENT_CLOSED || c->state == NF_CLIENT_CLOSING)
        return;
    if (c->state == NF_CLIENT_CONNECTING || c->state == NF_CLIENT_UPGRADING) {
        finish(c, "closed");
        return;
    }
    static const uint8_t normal[2] = { 0x03, 0xe8 };   /* 1000 */
    if (send_frame(c, NF_WS_CLOSE, normal, 2) < 0) {
        finish(c, "closed");
        return;
    }
    c->state = NF_CLIENT_CLOSING;
    c->close_after_flush = true;
    fail_asks(c);
}

/* ---- accessors ---------------------------------------------------------------------- */

nf_client_state nf_client_get_state(const nf_client *c) { return c->state; }
void *nf_client_udata(const nf_client *c) { return c->udata; }
void nf_client_set_udata(nf_client *c, void *udata) { c->udata = udata; }
const char *nf_client_id(const nf_client *c) { return c->id ? c->id : ""; }
size_t nf_client_pending_output(const nf_client *c) { return c->wlen - c->woff; }
size_t nf_client_asks_pending(const nf_client *c) { return c->asks_n; }
