/* bench.h - what the neffos-bench modes share: options, the fleet of
 * connections (dialled at a bounded rate, each connected to the namespace),
 * clocks, and the server's /proc figures. */
#ifndef NF_BENCH_H
#define NF_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nf_client.h"

struct event_base;

typedef struct bench_opts {
    const char *mode;
    const char *url_str;
    nf_target url;
    const char *ns;
    const char *event;
    const char *recv_event;
    unsigned conns;         /* ask, idle */
    unsigned inflight;      /* ask: asks outstanding per connection */
    unsigned receivers;     /* broadcast */
    unsigned window;        /* broadcast: max lead of the sender over the slowest receiver */
    unsigned dial_parallel; /* connections being dialled at once */
    size_t size;            /* ask: body bytes; broadcast: minimum body bytes */
    double seconds;         /* measured time (idle: hold time) */
    double warmup;          /* ask: not measured */
    double drain;           /* max wait for stragglers after the end */
    double dial_timeout;
    pid_t server_pid;       /* 0: none */
    unsigned busy_poll_us;  /* floor: poll this long after input before sleeping (0: never) */
} bench_opts;

/* ---- clocks and /proc ---- */
uint64_t bench_now_ns(void);
/* Server CPU (utime+stime) in seconds, or -1. */
double bench_proc_cpu_s(pid_t pid);
/* Server VmRSS in bytes, or -1. */
long long bench_proc_rss(pid_t pid);
/* This process's CPU seconds (user+sys). */
double bench_self_cpu_s(void);
/* Raises RLIMIT_NOFILE to the hard limit; returns the soft limit now. */
unsigned long bench_raise_nofile(void);

/* ---- the fleet ---- */
typedef struct bench_conn {
    nf_client *c;
    struct bench_fleet *fleet;
    unsigned index;
    bool ready;             /* namespace connected */
    bool closed;
    /* ask mode */
    unsigned outstanding;
    uint64_t lat_sum_ns, lat_n;   /* measured replies: this connection's mean (fairness) */
    /* broadcast mode */
    uint64_t last_seq, received, order_violations, unexpected;
} bench_conn;

typedef struct bench_fleet {
    struct event_base *base;
    nf_client_loop *loop;
    const bench_opts *o;
    nf_slice ns;
    bench_conn *conns;
    unsigned n;
    unsigned next_dial, dialing, ready, failed;
    unsigned closed_after_ready;
    char first_error[200];
    nf_client_handlers h;           /* on_event/on_ask from the mode */
    void (*on_all_dialled)(struct bench_fleet *f);  /* every dial ended (ready or failed) */
    void (*on_lost)(struct bench_fleet *f, bench_conn *bc);  /* a ready one closed; optional */
    void *mode;                     /* the mode's state */
    struct event *dial_timer;
    bool dial_done;
} bench_fleet;

/* Dials n connections, at most o->dial_parallel at a time. The caller's
 * on_event/on_ask go in f->h before; on_all_dialled runs once. */
int bench_fleet_start(bench_fleet *f, struct event_base *base, const bench_opts *o, unsigned n);
void bench_fleet_free(bench_fleet *f);

/* Modes: each returns the process exit code. */
int bench_ask(const bench_opts *o);
int bench_broadcast(const bench_opts *o);
int bench_idle(const bench_opts *o);
/* The floor: a plain C echo server on o->url (bench_floor.c). */
int bench_floor(const bench_opts *o);

/* A JSON number with prec decimals, or null when v < 0 (not measured).
 * Returns buf. */
const char *bench_json_num(char buf[32], double v, int prec);

/* A JSON string literal for s (for error texts in the last line). */
void bench_json_string(char *out, size_t cap, const char *s);

#endif
