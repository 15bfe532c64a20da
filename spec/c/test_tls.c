/* test_tls.c - host/tls (tls.h) on its own: certificate loading and its
 * errors, reload (a good file replaces the certificate for new connections,
 * a bad one leaves the old serving), and the transport (nf_tls_sock_init,
 * the sock.h seam) over a real TLS connection on a socketpair: writev of
 * many small extents through a full socket (SSL_write offered the same
 * bytes again, and more, after NF_EAGAIN), reads into a small buffer with
 * the rest pending inside OpenSSL, close_notify. The certificates are made
 * with the `openssl` command in a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "errors.h"
#include "log.h"
#include "sock.h"
#include "test.h"
#include "tls.h"

#define PAYLOAD_BYTES (600 * 1024)   /* far more than the small socket buffer below */
#define LOOP_LIMIT_S 10              /* a test that hangs fails instead */

static char dir[64];

static void make_cert(const char *name, const char *cn)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=%s -keyout %s.key -out %s.pem >/dev/null 2>&1", dir, cn, name, name);
    CHECK(system(cmd) == 0);
}

static void path_of(char *out, size_t cap, const char *file) { snprintf(out, cap, "%s/%s", dir, file); }

/* ---- one client connection against nf_tls_accept ---------------------------------- */

typedef struct pair {
    struct event_base *base;
    struct bufferevent *srv, *cli;
    SSL_CTX *cli_ctx;
    bool srv_ready, cli_ready, failed, cli_eof;
    struct evbuffer *got;            /* what the client read */
    size_t want;
} pair;

static void srv_event(struct bufferevent *bev, short what, void *arg)
{
    pair *p = arg;
    if (what & BEV_EVENT_CONNECTED)
        p->srv_ready = true;
    else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
        p->failed = true;
    if (p->srv_ready && p->cli_ready && p->want == 0)
        event_base_loopbreak(p->base);
}

static void cli_event(struct bufferevent *bev, short what, void *arg)
{
    pair *p = arg;
    if (what & BEV_EVENT_EOF) {
        p->cli_eof = true;   /* the server's close_notify */
        event_base_loopbreak(p->base);
        return;
    }
    srv_event(bev, what, arg);
    if (what & BEV_EVENT_CONNECTED) {
        p->cli_ready = true;
        if (p->srv_ready && p->want == 0)
            event_base_loopbreak(p->base);
    }
}

static void cli_read(struct bufferevent *bev, void *arg)
{
    pair *p = arg;
    evbuffer_add_buffer(p->got, bufferevent_get_input(bev));
    if (p->want && evbuffer_get_length(p->got) >= p->want)
        event_base_loopbreak(p->base);
}

/* The server side of a socketpair is accepted by t, the client trusts ca_file. */
static void pair_open(pair *p, struct event_base *base, nf_tls *t, const char *ca_file, int srv_sndbuf)
{
    memset(p, 0, sizeof *p);
    p->base = base;
    p->got = evbuffer_new();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    if (srv_sndbuf)
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &srv_sndbuf, sizeof srv_sndbuf);
    evutil_make_socket_nonblocking(sv[0]);
    evutil_make_socket_nonblocking(sv[1]);
    p->srv = nf_tls_accept(t, base, sv[0]);
    CHECK(p->srv != NULL);
    bufferevent_setcb(p->srv, NULL, NULL, srv_event, p);
    bufferevent_enable(p->srv, EV_READ);
    p->cli_ctx = SSL_CTX_new(TLS_client_method());
    CHECK(SSL_CTX_load_verify_locations(p->cli_ctx, ca_file, NULL) == 1);
    SSL_CTX_set_verify(p->cli_ctx, SSL_VERIFY_PEER, NULL);
    p->cli = bufferevent_openssl_socket_new(base, sv[1], SSL_new(p->cli_ctx), BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(p->cli, cli_read, NULL, cli_event, p);
    bufferevent_enable(p->cli, EV_READ);
}

static void run_loop(struct event_base *base)
{
    struct timeval limit = { LOOP_LIMIT_S, 0 };
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

static void pair_close(pair *p)
{
    bufferevent_free(p->srv);
    bufferevent_free(p->cli);
    SSL_CTX_free(p->cli_ctx);
    evbuffer_free(p->got);
}

/* ---- a writer like conn.c's: a queue of small chunks, writev of up to
 * WRITER_IOV extents, drain what was written, wait for EV_WRITE ---------------------- */

#define WRITER_IOV 128

typedef struct writer {
    nf_sock *sock;
    struct evbuffer *q;
    struct event *ev;
    const char *extra;               /* appended at the first EV_WRITE: the retry is offered more */
    size_t extra_len;
    int eagains, shorts;
    bool failed;
} writer;

static void writer_step(writer *w)
{
    for (;;) {
        struct evbuffer_iovec v[WRITER_IOV];
        struct iovec iov[WRITER_IOV];
        int n = evbuffer_peek(w->q, -1, NULL, v, WRITER_IOV);
        if (n <= 0)
            return;
        if (n > WRITER_IOV)
            n = WRITER_IOV;
        size_t want = 0;
        for (int i = 0; i < n; i++) {
            iov[i] = (struct iovec){ v[i].iov_base, v[i].iov_len };
            want += v[i].iov_len;
        }
        ssize_t r = nf_sock_writev(w->sock, iov, n);
        if (r == NF_EAGAIN) {
            w->eagains++;
            event_add(w->ev, NULL);
            return;
        }
        if (r <= 0) {
            w->failed = true;
            return;
        }
        CHECK(evbuffer_drain(w->q, (size_t)r) == 0);
        if ((size_t)r < want) {
            w->shorts++;
            event_add(w->ev, NULL);
            return;
        }
    }
}

static void writer_writable(evutil_socket_t fd, short what, void *arg)
{
    writer *w = arg;
    (void)fd;
    (void)what;
    if (w->extra) {
        for (size_t off = 0; off < w->extra_len; off += 100)
            evbuffer_add(w->q, w->extra + off, w->extra_len - off < 100 ? w->extra_len - off : 100);
        w->extra = NULL;
    }
    writer_step(w);
}

/* The CN of the certificate a new connection gets, into cn. */
static void served_cn(struct event_base *base, nf_tls *t, const char *ca_file, char *cn, size_t cap)
{
    pair p;
    pair_open(&p, base, t, ca_file, 0);
    run_loop(base);
    CHECK(p.srv_ready && p.cli_ready && !p.failed);
    cn[0] = '\0';
    X509 *peer = SSL_get1_peer_certificate(bufferevent_openssl_get_ssl(p.cli));
    if (peer) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, (int)cap);
        X509_free(peer);
    }
    pair_close(&p);
}

int main(void)
{
    nf_log_set_level(NF_LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/nf-test-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    make_cert("a", "alpha");
    make_cert("b", "beta");
    char a_pem[128], a_key[128], b_pem[128], b_key[128], live_pem[128], live_key[128], missing[128];
    path_of(a_pem, sizeof a_pem, "a.pem");
    path_of(a_key, sizeof a_key, "a.key");
    path_of(b_pem, sizeof b_pem, "b.pem");
    path_of(b_key, sizeof b_key, "b.key");
    path_of(live_pem, sizeof live_pem, "live.pem");
    path_of(live_key, sizeof live_key, "live.key");
    path_of(missing, sizeof missing, "missing.pem");

    /* Versions. */
    CHECK(nf_tls_parse_version("1.2") == NF_TLS_1_2);
    CHECK(nf_tls_parse_version("1.3") == NF_TLS_1_3);
    CHECK(nf_tls_parse_version("1.1") == NF_EINVAL);

    /* Loading: errors name the file and the reason, nothing is returned. */
    nf_tls *t = NULL;
    char err[512];
    CHECK(nf_tls_new(missing, a_key, NF_TLS_1_2, &t, err, sizeof err) == NF_EINVAL && t == NULL);
    CHECK(strstr(err, "missing.pem") != NULL);
    CHECK(nf_tls_new(a_pem, b_key, NF_TLS_1_2, &t, err, sizeof err) == NF_EINVAL && t == NULL);
    CHECK(strstr(err, "key values mismatch") != NULL);

    /* A working one, on files that will change. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s %s && cp %s %s", a_pem, live_pem, a_key, live_key);
    CHECK(system(cmd) == 0);
    CHECK(nf_tls_new(live_pem, live_key, NF_TLS_1_2, &t, err, sizeof err) == 0 && t != NULL);
    nf_tls_stats st;
    nf_tls_get_stats(t, &st);
    CHECK(st.reloads_ok == 0 && st.reloads_failed == 0 && st.not_after > (int64_t)time(NULL));

    struct event_base *base = event_base_new();
    char cn[64];
    served_cn(base, t, a_pem, cn, sizeof cn);
    CHECK(strcmp(cn, "alpha") == 0);

    /* The transport: 600 KiB in 1000-byte chunks through a 4 KiB socket
     * buffer, the bufferevent disabled as after the upgrade. The socket
     * fills (NF_EAGAIN or a short write); each retry offers the same bytes
     * from the front, plus 3000 more the first time. */
    pair p;
    pair_open(&p, base, t, a_pem, 4096);
    run_loop(base);
    CHECK(p.srv_ready && p.cli_ready);
    bufferevent_disable(p.srv, EV_READ | EV_WRITE);
    nf_sock sock;
    nf_tls_sock_init(&sock, p.srv);
    CHECK(sock.fd == bufferevent_getfd(p.srv) && !nf_sock_pending(&sock));
    char *payload = malloc(PAYLOAD_BYTES + 3005);
    for (size_t i = 0; i < PAYLOAD_BYTES + 3005; i++)
        payload[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    writer w = { .sock = &sock, .q = evbuffer_new(), .extra = payload + PAYLOAD_BYTES, .extra_len = 3000 };
    w.ev = event_new(base, sock.fd, EV_WRITE, writer_writable, &w);
    for (size_t off = 0; off < PAYLOAD_BYTES; off += 1000)   /* many small chunks, like queued frames */
        evbuffer_add(w.q, payload + off, PAYLOAD_BYTES - off < 1000 ? PAYLOAD_BYTES - off : 1000);
    writer_step(&w);
    CHECK(w.eagains + w.shorts == 1 && !w.failed);
    CHECK(evbuffer_get_length(w.q) > 0);   /* the refused record waits in OpenSSL, its bytes at the front */
    p.want = PAYLOAD_BYTES + 3000;
    run_loop(base);
    CHECK(!w.failed && w.eagains + w.shorts > 10);
    CHECK(evbuffer_get_length(p.got) == PAYLOAD_BYTES + 3000 &&
          memcmp(evbuffer_pullup(p.got, -1), payload, PAYLOAD_BYTES + 3000) == 0);
    CHECK(evbuffer_get_length(w.q) == 0);
    /* Small output: all of it in one call. */
    struct iovec hello = { payload + PAYLOAD_BYTES + 3000, 5 };
    CHECK(nf_sock_writev(&sock, &hello, 1) == 5);
    p.want = PAYLOAD_BYTES + 3005;
    run_loop(base);
    CHECK(evbuffer_get_length(p.got) == PAYLOAD_BYTES + 3005 &&
          memcmp(evbuffer_pullup(p.got, -1), payload, PAYLOAD_BYTES + 3005) == 0);

    /* Reading: 64 KiB from the client (four records) into a 1000-byte
     * buffer: the first read fills it and the rest of the record is
     * pending inside OpenSSL, where epoll cannot see it; reads until
     * NF_EAGAIN get every byte, in order. */
    CHECK(nf_sock_read(&sock, payload, 1000) == NF_EAGAIN);
    bufferevent_write(p.cli, payload, 65536);
    char *in = malloc(65536);
    size_t got = 0;
    int reads = 0, pendings = 0;
    for (int round = 0; round < 1000 && got < 65536; round++) {
        ssize_t r = nf_sock_read(&sock, in + got, 65536 - got < 1000 ? 65536 - got : 1000);
        if (r == NF_EAGAIN) {
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);   /* the client writes */
            continue;
        }
        CHECK(r > 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        reads++;
        pendings += nf_sock_pending(&sock);
    }
    CHECK(got == 65536 && memcmp(in, payload, 65536) == 0);
    CHECK(reads >= 65 && pendings > 0);
    CHECK(!nf_sock_pending(&sock));   /* all read: nothing to wake for */
    /* Half a record (its header and 100 bytes of its body, written raw past
     * the client's SSL) is not pending: the socket shows its rest. */
    unsigned char half[5 + 100] = { 0x17, 0x03, 0x03, 0x01, 0x00 };   /* application data, 256 bytes */
    CHECK(write(bufferevent_getfd(p.cli), half, sizeof half) == (ssize_t)sizeof half);
    CHECK(nf_sock_read(&sock, in, 1000) == NF_EAGAIN);
    CHECK(!nf_sock_pending(&sock));
    free(in);
    /* Reload: a new certificate for new connections; the open one goes on. */
    snprintf(cmd, sizeof cmd, "cp %s %s && cp %s %s", b_pem, live_pem, b_key, live_key);
    CHECK(system(cmd) == 0);
    CHECK(nf_tls_reload(t, err, sizeof err) == 0);
    served_cn(base, t, b_pem, cn, sizeof cn);
    CHECK(strcmp(cn, "beta") == 0);
    struct iovec still = { "still here", 10 };
    CHECK(nf_sock_writev(&sock, &still, 1) == 10);
    p.want = PAYLOAD_BYTES + 3015;
    run_loop(base);
    CHECK(evbuffer_get_length(p.got) == PAYLOAD_BYTES + 3015);

    /* Closing: close_notify reaches the client as a clean end. */
    nf_tls_close_notify(p.srv);
    run_loop(base);
    CHECK(p.cli_eof);
    event_free(w.ev);
    evbuffer_free(w.q);
    free(payload);
    pair_close(&p);

    /* A bad file: refused, counted, the old certificate keeps serving. */
    snprintf(cmd, sizeof cmd, "echo garbage > %s", live_pem);
    CHECK(system(cmd) == 0);
    CHECK(nf_tls_reload(t, err, sizeof err) == NF_EINVAL);
    CHECK(strstr(err, "live.pem") != NULL);
    served_cn(base, t, b_pem, cn, sizeof cn);
    CHECK(strcmp(cn, "beta") == 0);
    nf_tls_get_stats(t, &st);
    CHECK(st.reloads_ok == 1 && st.reloads_failed == 1);

    nf_tls_free(t);
    event_base_free(base);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return TEST_REPORT();
}
