/* bench_floor.c - the floor: a plain C echo server over the same sockets as
 * neffos (TCP on loopback, epoll, one read and one write per wake-up), so
 * that a round trip measured against it is what the kernel and the load
 * generator cost, and the server's figure can be quoted as a ratio to it.
 *
 *   neffos-bench floor --url ws://127.0.0.1:PORT/echo [--seconds S]
 *
 * It answers exactly what `neffos-bench ask` needs: the HTTP upgrade
 * (RFC 6455 4.2.2), "M" with "A<id>", a namespace connect with the empty
 * reply, and every other message with itself (an ask's reply carries the
 * ask's own token, namespace, event and body: docs/protocol.md §6); pings
 * with pongs, a close with a close. Nothing else of neffos: no Lua, no
 * rooms, no limits beyond a fixed input buffer. Runs until killed, or
 * --seconds if given (> 0). Loopback only, like every mode. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sha1.h"

#define FLOOR_IN_MAX (1u << 20)     /* one connection's unparsed input; more: dropped */
#define FLOOR_EVENTS 256

typedef struct floor_conn {
    int fd;
    bool upgraded;
    uint8_t *in;
    size_t len;
    uint8_t *out;
    size_t out_len, out_cap;
} floor_conn;

static void conn_free(floor_conn *fc)
{
    close(fc->fd);
    free(fc->in);
    free(fc->out);
    free(fc);
}

static bool out_add(floor_conn *fc, const void *p, size_t n)
{
    if (fc->out_len + n > fc->out_cap) {
        size_t cap = fc->out_cap ? fc->out_cap : 4096;
        while (cap < fc->out_len + n)
            cap *= 2;
        uint8_t *q = realloc(fc->out, cap);
        if (q == NULL)
            return false;
        fc->out = q;
        fc->out_cap = cap;
    }
    memcpy(fc->out + fc->out_len, p, n);
    fc->out_len += n;
    return true;
}

static bool out_frame(floor_conn *fc, unsigned opcode, const void *payload, size_t len)
{
    uint8_t h[10];
    size_t hl = 2;
    h[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len <= 0xFFFF) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    return out_add(fc, h, hl) && out_add(fc, payload, len);
}

/* Writes what is queued; false when the peer is gone. Short writes block
 * briefly: the floor's clients read everything they asked for. */
static bool out_flush(floor_conn *fc)
{
    size_t off = 0;
    while (off < fc->out_len) {
        ssize_t n = write(fc->fd, fc->out + off, fc->out_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fd_set w;
            FD_ZERO(&w);
            FD_SET(fc->fd, &w);
            select(fc->fd + 1, NULL, &w, NULL, NULL);
            continue;
        }
        if (n <= 0)
            return false;
        off += (size_t)n;
    }
    fc->out_len = 0;
    return true;
}

/* The HTTP upgrade: the request head whole, the key, the 101. Returns the
 * head's length, 0 while incomplete, -1 to drop. */
static long http_upgrade(floor_conn *fc)
{
    char *head = (char *)fc->in;
    char *end = memmem(head, fc->len, "\r\n\r\n", 4);
    if (end == NULL)
        return fc->len > 16384 ? -1 : 0;
    *end = '\0';
    char *key = NULL;
    for (char *line = strstr(head, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) {
            key = line + 2 + 18;
            while (*key == ' ')
                key++;
            break;
        }
    }
    if (key == NULL)
        return -1;
    size_t klen = strcspn(key, "\r\n ");
    char accept[29], resp[256];
    nf_ws_accept_key(key, klen, accept);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    if (!out_add(fc, resp, (size_t)n))
        return -1;
    fc->upgraded = true;
    return (long)(end + 4 - head);
}

/* Answers one message (payload unmasked). */
static bool on_message(floor_conn *fc, unsigned opcode, const uint8_t *p, size_t len)
{
    if (len == 1 && p[0] == 'M')
        return out_frame(fc, 1, "Afloor", 6);
    /* token;ns;room;event;... : a namespace connect gets the empty reply. */
    const uint8_t *semi[4] = { NULL };
    size_t k = 0;
    for (size_t i = 0; i < len && k < 4; i++)
        if (p[i] == ';')
            semi[k++] = p + i;
    static const char connect[] = "_OnNamespaceConnect;";
    if (k == 4 && (size_t)(p + len - semi[2]) > sizeof connect - 1 &&
        memcmp(semi[2] + 1, connect, sizeof connect - 1) == 0) {
        char reply[160];
        size_t tl = (size_t)(semi[0] - p);
        if (tl > 100)
            return false;
        memcpy(reply, p, tl);
        memcpy(reply + tl, ";;;;;;", 6);
        return out_frame(fc, 1, reply, tl + 6);
    }
    return out_frame(fc, opcode, p, len);
}

/* Parses the whole frames in the input (client frames: masked). Returns
 * false to drop the connection. */
static bool on_frames(floor_conn *fc, size_t *used)
{
    size_t off = 0;
    while (fc->len - off >= 2) {
        uint8_t *f = fc->in + off;
        size_t avail = fc->len - off, hl = 2;
        uint64_t plen = f[1] & 0x7f;
        if (plen == 126) {
            hl = 4;
            if (avail < hl)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
        } else if (plen == 127) {
            hl = 10;
            if (avail < hl)
                break;
            plen = 0;
            for (int i = 2; i < 10; i++)
                plen = plen << 8 | f[i];
        }
        if (!(f[1] & 0x80) || plen > FLOOR_IN_MAX)
            return false;
        hl += 4;
        if (avail < hl || avail - hl < plen)
            break;
        uint8_t *p = f + hl;
        for (size_t i = 0; i < plen; i++)
            p[i] ^= f[hl - 4 + (i & 3)];
        unsigned opcode = f[0] & 0x0f;
        bool ok = opcode == 0x9   ? out_frame(fc, 0xA, p, (size_t)plen)
                  : opcode == 0x8 ? (out_frame(fc, 0x8, p, plen >= 2 ? 2 : 0), false)
                  : opcode == 0xA ? true
                                  : on_message(fc, opcode, p, (size_t)plen);
        if (!ok)
            return false;
        off += hl + (size_t)plen;
    }
    *used = off;
    return true;
}

/* The socket is readable: one read, every whole frame answered, one write. */
static bool on_readable(floor_conn *fc)
{
    if (fc->in == NULL && (fc->in = malloc(FLOOR_IN_MAX)) == NULL)
        return false;
    ssize_t n = read(fc->fd, fc->in + fc->len, FLOOR_IN_MAX - fc->len);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false;
    fc->len += (size_t)n;
    size_t used = 0;
    if (!fc->upgraded) {
        long h = http_upgrade(fc);
        if (h < 0)
            return false;
        used = (size_t)h;
        memmove(fc->in, fc->in + used, fc->len - used);
        fc->len -= used;
        used = 0;
    }
    bool ok = !fc->upgraded || on_frames(fc, &used);
    memmove(fc->in, fc->in + used, fc->len - used);
    fc->len -= used;
    if (fc->len == FLOOR_IN_MAX)
        ok = false;
    return out_flush(fc) && ok;
}

int bench_floor(const bench_opts *o)
{
    int lfd = socket(o->url.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, (const struct sockaddr *)&o->url.addr, o->url.addrlen) != 0 || listen(lfd, 1024) != 0) {
        fprintf(stderr, "floor: cannot listen on %s: %s\n", o->url.hostport, strerror(errno));
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    fprintf(stderr, "floor: echo on ws://%s%s\n", o->url.hostport, o->url.path);
    uint64_t until = o->seconds > 0 ? bench_now_ns() + (uint64_t)(o->seconds * 1e9) : 0;
    struct epoll_event evs[FLOOR_EVENTS];
    uint64_t last_input = 0;   /* --busy-poll-us: as the server's loop (host/base/loop.h) */
    while (until == 0 || bench_now_ns() < until) {
        int tmo = until ? 100 : -1;
        if (o->busy_poll_us && bench_now_ns() - last_input <= o->busy_poll_us * 1000ull)
            tmo = 0;
        int n = epoll_wait(ep, evs, FLOOR_EVENTS, tmo);
        if (n > 0 && o->busy_poll_us)
            last_input = bench_now_ns();
        for (int i = 0; i < n; i++) {
            floor_conn *fc = evs[i].data.ptr;
            if (fc == NULL) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fc = calloc(1, sizeof *fc);
                if (fc == NULL) {
                    close(fd);
                    continue;
                }
                fc->fd = fd;
                struct epoll_event cev = { .events = EPOLLIN, .data.ptr = fc };
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
            } else if (!on_readable(fc)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fc->fd, NULL);
                conn_free(fc);
            }
        }
    }
    close(ep);
    close(lfd);
    return 0;
}
