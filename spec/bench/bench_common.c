/* bench_common.c - clocks, /proc readings and the connection fleet. */
#include "bench.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bench_proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and ')': fields restart after the
     * last ')'. utime and stime are fields 14 and 15, i.e. the 12th and
     * 13th after it. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long long bench_proc_rss(pid_t pid)
{
    char path[64], line[256];
    long long kb = -1;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

double bench_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

unsigned long bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (unsigned long)rl.rlim_cur;
}

const char *bench_json_num(char buf[32], double v, int prec)
{
    if (v < 0)
        return strcpy(buf, "null");
    snprintf(buf, 32, "%.*f", prec, v);
    return buf;
}

void bench_json_string(char *out, size_t cap, const char *s)
{
    size_t w = 0;
    if (cap < 3)
        return;
    out[w++] = '"';
    for (; *s && w + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[w++] = '\\';
            out[w++] = (char)ch;
        } else if (ch < 0x20) {
            w += (size_t)snprintf(out + w, cap - w, "\\u%04x", ch);
        } else {
            out[w++] = (char)ch;
        }
    }
    out[w++] = '"';
    out[w] = '\0';
}

/* ---- the fleet ------------------------------------------------------------- */

static void fleet_dial_more(bench_fleet *f);

static void fleet_check_done(bench_fleet *f)
{
    if (f->dial_done || f->ready + f->failed < f->n)
        return;
    f->dial_done = true;
    event_del(f->dial_timer);
    f->on_all_dialled(f);
}

static void note_error(bench_fleet *f, const char *why)
{
    if (f->first_error[0] == '\0')
        snprintf(f->first_error, sizeof(f->first_error), "%s", why);
}

static void ns_connected(nf_client *c, nf_client_ask_status st, const nf_msg *reply, void *arg)
{
    bench_conn *bc = arg;
    bench_fleet *f = bc->fleet;
    if (st == NF_CLIENT_ASK_CLOSED)
        return;     /* on_close counts it */
    f->dialing--;
    if (st == NF_CLIENT_ASK_OK) {
        bc->ready = true;
        f->ready++;
    } else {
        char why[200];
        snprintf(why, sizeof(why), "namespace connect refused: %.*s",
                 (int)reply->body.len, reply->body.ptr);
        note_error(f, why);
        f->failed++;
        bc->closed = true;
        nf_client_free(c);
        bc->c = NULL;
    }
    fleet_dial_more(f);
    fleet_check_done(f);
}

static void fleet_on_open(nf_client *c, nf_slice id)
{
    bench_conn *bc = nf_client_udata(c);
    if (nf_client_connect_ns(c, bc->fleet->ns, ns_connected, bc) < 0)
        nf_client_close(c);
}

static void fleet_on_close(nf_client *c, const char *why)
{
    bench_conn *bc = nf_client_udata(c);
    bench_fleet *f = bc->fleet;
    bc->closed = true;
    note_error(f, why);
    if (bc->ready) {
        f->closed_after_ready++;
        if (f->on_lost)
            f->on_lost(f, bc);
        return;
    }
    f->dialing--;
    f->failed++;
    fleet_dial_more(f);
    fleet_check_done(f);
}

static void fleet_dial_more(bench_fleet *f)
{
    while (f->next_dial < f->n && f->dialing < f->o->dial_parallel && !f->dial_done) {
        bench_conn *bc = &f->conns[f->next_dial];
        bc->fleet = f;
        bc->index = f->next_dial++;
        nf_client_opts co = { .url = &f->o->url, .handlers = &f->h, .udata = bc };
        bc->c = nf_client_new(f->loop, &co);
        if (bc->c == NULL) {
            char why[200];
            snprintf(why, sizeof(why), "socket: %s", strerror(errno));
            note_error(f, why);
            bc->closed = true;
            f->failed++;
            continue;
        }
        f->dialing++;
    }
}

static void dial_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    bench_fleet *f = arg;
    /* Whatever is still dialling counts as failed; the run goes on with
     * the connections that made it. */
    note_error(f, "dial timeout");
    for (unsigned i = 0; i < f->n; i++) {
        bench_conn *bc = &f->conns[i];
        if (i >= f->next_dial) {
            bc->closed = true;
            f->failed++;
        } else if (bc->c && !bc->ready && !bc->closed) {
            bc->closed = true;
            nf_client_free(bc->c);
            bc->c = NULL;
            f->failed++;
        }
    }
    f->next_dial = f->n;
    f->dialing = 0;
    fleet_check_done(f);
}

int bench_fleet_start(bench_fleet *f, struct event_base *base, const bench_opts *o, unsigned n)
{
    f->base = base;
    f->o = o;
    f->n = n;
    f->ns = nf_slice_of(o->ns, strlen(o->ns));
    f->loop = nf_client_loop_new(base);
    f->conns = calloc(n ? n : 1, sizeof(*f->conns));
    f->dial_timer = evtimer_new(base, dial_timeout_cb, f);
    if (f->loop == NULL || f->conns == NULL || f->dial_timer == NULL)
        return -1;
    f->h.on_open = fleet_on_open;
    f->h.on_close = fleet_on_close;
    double t = o->dial_timeout;
    struct timeval tv = { (time_t)t, (suseconds_t)((t - (double)(time_t)t) * 1e6) };
    evtimer_add(f->dial_timer, &tv);
    fleet_dial_more(f);
    fleet_check_done(f);
    return 0;
}

void bench_fleet_free(bench_fleet *f)
{
    for (unsigned i = 0; i < f->next_dial && f->conns; i++)
        if (f->conns[i].c)
            nf_client_free(f->conns[i].c);
    free(f->conns);
    if (f->dial_timer)
        event_free(f->dial_timer);
    nf_client_loop_free(f->loop);
}
