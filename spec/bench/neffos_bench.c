/* neffos_bench.c - the neffos load generator: argument parsing and the
 * bounds every run is held to. The modes live in bench_<mode>.c.
 *
 *   neffos-bench ask       --url ws://127.0.0.1:PORT/echo --namespace v1 --event echo
 *                          --conns 50 --inflight 8 --size 64 --seconds 10
 *   neffos-bench broadcast --url ... --namespace v1 --event shout --recv-event chat
 *                          --receivers 1000 --seconds 10
 *   neffos-bench idle      --url ... --namespace v1 --conns 10000 [--server-pid PID]
 *   neffos-bench floor     --url ws://127.0.0.1:PORT/echo [--seconds S]
 *                          (a plain C echo server: the round trip's floor)
 *
 * Each mode prints a summary and, as its last line, one JSON object. */
#include "bench.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONNS 100000u
#define MAX_INFLIGHT 10000u
#define MAX_SECONDS 3600.0
#define MAX_SIZE (16u << 20)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: neffos-bench ask|broadcast|idle|floor --url ws://127.0.0.1:PORT/PATH [options]\n"
            "  floor: serve a plain C echo on the URL (the round-trip floor), until killed or --seconds\n"
            "  --namespace NS       namespace to connect (v1)\n"
            "  --event E            ask: the asked event (echo); broadcast: the sender's event (shout)\n"
            "  --recv-event E       broadcast: the event receivers get (chat)\n"
            "  --conns N            ask: connections (50); idle: connections (10000)\n"
            "  --inflight N         ask: asks outstanding per connection (8)\n"
            "  --receivers N        broadcast: receiving connections (1000)\n"
            "  --window N           broadcast: max messages the sender leads the slowest receiver by (64)\n"
            "  --size B             ask: body bytes (64); broadcast: minimum body bytes (0)\n"
            "  --seconds S          measured time; idle: how long to hold (ask/broadcast 10, idle 3)\n"
            "  --warmup S           ask: unmeasured time before (1)\n"
            "  --drain S            max wait for outstanding replies/deliveries at the end (3)\n"
            "  --dial-parallel N    connections dialling at once (1000)\n"
            "  --dial-timeout S     give up on connections not ready by then (30)\n"
            "  --server-pid PID     read the server's CPU time and RSS from /proc\n"
            "  --busy-poll-us N     floor: keep polling N us after input before sleeping, as the\n"
            "                       server's --busy-poll-us (0)\n"
            "Loopback only. The last line of output is one JSON object.\n");
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool parse_secs(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= 0) || v > MAX_SECONDS)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    enum { O_URL = 256, O_NS, O_EVENT, O_RECV, O_CONNS, O_INFL, O_RECVS, O_WINDOW, O_SIZE,
           O_SECS, O_WARM, O_DRAIN, O_DPAR, O_DTMO, O_PID, O_SPIN, O_HELP };
    static const struct option longopts[] = {
        { "url", required_argument, NULL, O_URL },
        { "namespace", required_argument, NULL, O_NS },
        { "event", required_argument, NULL, O_EVENT },
        { "recv-event", required_argument, NULL, O_RECV },
        { "conns", required_argument, NULL, O_CONNS },
        { "inflight", required_argument, NULL, O_INFL },
        { "receivers", required_argument, NULL, O_RECVS },
        { "window", required_argument, NULL, O_WINDOW },
        { "size", required_argument, NULL, O_SIZE },
        { "seconds", required_argument, NULL, O_SECS },
        { "warmup", required_argument, NULL, O_WARM },
        { "drain", required_argument, NULL, O_DRAIN },
        { "dial-parallel", required_argument, NULL, O_DPAR },
        { "dial-timeout", required_argument, NULL, O_DTMO },
        { "server-pid", required_argument, NULL, O_PID },
        { "busy-poll-us", required_argument, NULL, O_SPIN },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    bench_opts o = { .ns = "v1", .recv_event = "chat", .inflight = 8, .receivers = 1000, .window = 64,
                     .warmup = 1, .drain = 3, .dial_parallel = 1000, .dial_timeout = 30, .seconds = -1 };
    unsigned conns = 0, size = 0, pid = 0;
    bool have_conns = false, have_size = false, ok = true;

    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    o.mode = argv[1];
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case O_URL: o.url_str = optarg; break;
        case O_NS: o.ns = optarg; break;
        case O_EVENT: o.event = optarg; break;
        case O_RECV: o.recv_event = optarg; break;
        case O_CONNS: ok = parse_uint(optarg, MAX_CONNS, &conns) && conns > 0; have_conns = true; break;
        case O_INFL: ok = parse_uint(optarg, MAX_INFLIGHT, &o.inflight) && o.inflight > 0; break;
        case O_RECVS: ok = parse_uint(optarg, MAX_CONNS - 1, &o.receivers) && o.receivers > 0; break;
        case O_WINDOW: ok = parse_uint(optarg, 1u << 20, &o.window) && o.window > 0; break;
        case O_SIZE: ok = parse_uint(optarg, MAX_SIZE, &size); have_size = true; break;
        case O_SECS: ok = parse_secs(optarg, &o.seconds); break;
        case O_WARM: ok = parse_secs(optarg, &o.warmup); break;
        case O_DRAIN: ok = parse_secs(optarg, &o.drain); break;
        case O_DPAR: ok = parse_uint(optarg, MAX_CONNS, &o.dial_parallel) && o.dial_parallel > 0; break;
        case O_DTMO: ok = parse_secs(optarg, &o.dial_timeout) && o.dial_timeout > 0; break;
        case O_PID: ok = parse_uint(optarg, 1u << 30, &pid); o.server_pid = (pid_t)pid; break;
        case O_SPIN: ok = parse_uint(optarg, 1000000, &o.busy_poll_us); break;
        case O_HELP: usage(stdout); return 0;
        default: ok = false;
        }
        if (!ok) {
            fprintf(stderr, "neffos-bench: bad value for an option (%s)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "neffos-bench: unexpected argument %s\n", argv[optind]);
        return 2;
    }

    int (*run)(const bench_opts *);
    if (strcmp(o.mode, "ask") == 0) {
        run = bench_ask;
        o.conns = have_conns ? conns : 50;
        o.size = have_size ? size : 64;
        if (o.event == NULL) o.event = "echo";
        if (o.seconds < 0) o.seconds = 10;
    } else if (strcmp(o.mode, "broadcast") == 0) {
        run = bench_broadcast;
        o.size = have_size ? size : 0;
        if (o.event == NULL) o.event = "shout";
        if (o.seconds < 0) o.seconds = 10;
    } else if (strcmp(o.mode, "floor") == 0) {
        run = bench_floor;
        if (o.seconds < 0) o.seconds = 0;
    } else if (strcmp(o.mode, "idle") == 0) {
        run = bench_idle;
        o.conns = have_conns ? conns : 10000;
        if (o.seconds < 0) o.seconds = 3;
    } else {
        fprintf(stderr, "neffos-bench: unknown mode %s\n", o.mode);
        usage(stderr);
        return 2;
    }
    if (o.url_str == NULL) {
        fprintf(stderr, "neffos-bench: --url is required\n");
        return 2;
    }
    char err[256];
    if (nf_target_resolve(o.url_str, &o.url, err, sizeof(err)) < 0) {
        fprintf(stderr, "neffos-bench: %s\n", err);
        return 2;
    }
    /* A load generator pointed at someone else's host is an attack. */
    if (!nf_target_is_loopback(&o.url)) {
        fprintf(stderr, "neffos-bench: refusing %s: only loopback addresses are allowed\n", o.url_str);
        return 2;
    }
    unsigned need = (strcmp(o.mode, "broadcast") == 0 ? o.receivers + 1 : o.conns) + 32;
    unsigned long nofile = bench_raise_nofile();
    if (nofile < need) {
        fprintf(stderr, "neffos-bench: need %u file descriptors, RLIMIT_NOFILE allows %lu\n", need, nofile);
        return 2;
    }
    /* A server that closes mid-write must show up as an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return run(&o);
}
