/* main.c - the `neffos` command: flags, the loop, signals, the watcher.
 *
 *   neffos [options] APP      APP = a directory with app.lua, or a .lua file
 *
 * Exit codes: 0 after a clean stop (or a passing --check), 1 when the app
 * fails to load (or --check finds a problem), 2 for a usage error: a bad
 * flag, a missing APP, an address that cannot be listened on, 3 when the
 * watchdog ended a process whose event loop stayed blocked (watchdog.h). */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <lua.h>
#include <openssl/crypto.h>
#include <wslay/wslay.h>

#include "exchange.h"
#include "workers.h"
#include "fdlimit.h"
#include "heap.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "nf_cmds.h"
#include "nf_lua.h"
#include "reload_all.h"
#include "reloader.h"
#include "shdict.h"
#include "tls.h"
#include "watchdog.h"

/* neffos.shared's default capacity (--shared-dict-bytes). */
#define NF_SHARED_BYTES_DEFAULT (16u << 20)

#ifndef NF_VERSION
#define NF_VERSION "dev"
#endif

/* ---- flags ------------------------------------------------------------------------ */

/* One flag per field of nf_limits, by offset. */
typedef struct limit_flag {
    const char *name;
    size_t offset;
    bool is_unsigned;   /* unsigned int field; else size_t */
    const char *help;
} limit_flag;

#define LIMIT(field, u, help) { #field, offsetof(nf_limits, field), u, help }
static const limit_flag limit_flags[] = {
    LIMIT(max_message_bytes, false, "bytes of one WebSocket message after reassembly"),
    LIMIT(max_header_bytes, false, "bytes of the HTTP request head"),
    LIMIT(max_headers, false, "HTTP header lines"),
    LIMIT(handshake_timeout_ms, true, "ms for the HTTP request and the \"M\" frame"),
    LIMIT(max_connections, false, "open WebSocket connections"),
    LIMIT(max_connections_per_ip, false, "connections per client address (0 = unlimited)"),
    LIMIT(max_outgoing_bytes, false, "bytes queued for one connection, pongs included, before it is closed"),
    LIMIT(max_incoming_queue, false, "frames waiting while a connection's handler waits"),
    LIMIT(max_incoming_bytes, false, "bytes of those frames (at least one maximum message)"),
    LIMIT(max_messages_per_sec, true, "messages per second per connection (0 = unlimited)"),
    LIMIT(max_namespaces_per_conn, false, "namespaces one connection may join"),
    LIMIT(max_rooms_per_conn, false, "rooms per namespace connection"),
    LIMIT(max_pending_asks, false, "server asks in flight per connection"),
    LIMIT(ask_timeout_ms, true, "ms an ask waits when the handler gives no timeout (with --workers: also a remote call's and a listing's bound)"),
    LIMIT(max_id_bytes, false, "bytes of a connection ID"),
    LIMIT(max_name_bytes, false, "bytes of one namespace, room or event name"),
    LIMIT(max_name_bytes_per_conn, false, "bytes of a connection's namespace and room names together"),
    LIMIT(max_budget_overruns, false, "handler runs of a connection in a row over the instruction limit (0 = unlimited)"),
    LIMIT(compression_min_bytes, false, "bytes from which a message is sent compressed (permessage-deflate)"),
};
#define NLIMITS (sizeof limit_flags / sizeof limit_flags[0])

enum {
    OPT_LISTEN = 256, OPT_ENDPOINT, OPT_STATIC, OPT_CHECK, OPT_LOG_LEVEL, OPT_LOG_JSON, OPT_HELP,
    OPT_VERSION, OPT_GRACE, OPT_LUA_INSTR, OPT_LUA_MEM, OPT_NO_WATCH, OPT_ORIGINS,
    OPT_REDIS, OPT_REDIS_PREFIX, OPT_NATS, OPT_NATS_PREFIX, OPT_WD_WARN, OPT_WD_KILL, OPT_WATCH_POLL,
    OPT_COMPRESSION,
    OPT_LISTEN_TLS, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_MIN,
    OPT_WORKERS, OPT_WORKER_QUEUE, OPT_WORKER_QUEUE_BYTES, OPT_SHARED_BYTES, OPT_BUSY_POLL,
    OPT_LIMIT_FIRST = 512
};

typedef struct config {
    char host[256];
    int port;
    char tls_host[256];                  /* --listen-tls, or "" */
    int tls_port;
    const char *tls_cert, *tls_key;      /* TLS: on --listen-tls, else on --listen */
    int tls_min_version;                 /* nf_tls_version */
    const char *endpoint;
    const char *static_root;
    const char *origins;
    const char *app;
    const char *redis, *redis_prefix;    /* scale-out: at most one broker */
    const char *nats, *nats_prefix;
    bool check;
    bool watch;
    unsigned watch_poll_ms;
    unsigned grace_ms;
    uint64_t instruction_limit;
    size_t memory_limit_mb;
    unsigned watchdog_warn_ms, watchdog_kill_ms;
    nf_limits limits;
    bool max_connections_set;            /* else derived from RLIMIT_NOFILE */
    unsigned workers;                    /* event loops, each with its own Lua state */
    size_t max_worker_queue;             /* calls waiting for one worker */
    size_t max_worker_queue_bytes;       /* and the bytes of their messages */
    size_t shared_bytes;                 /* neffos.shared's capacity (0 = none) */
    unsigned busy_poll_us;               /* loop.h: spin this long after input before sleeping */
} config;

static void flag_name(char *out, size_t cap, const char *field)
{
    snprintf(out, cap, "%s", field);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
}

/* What the default --max-connections will be: the soft limit is raised to
 * the hard one at start. */
static size_t default_max_connections(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return nf_limits_default().max_connections;
    return nf_fdlimit_max_connections(rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max);
}

static void usage(FILE *f)
{
    nf_limits d = nf_limits_default();
    d.max_connections = default_max_connections();
    fprintf(f,
            "usage: neffos [options] APP\n"
            "       neffos test APP [SPECS...]   run busted specs against APP (neffos test --help)\n"
            "       neffos new DIR               write a starter app into DIR\n"
            "\n"
            "Serves the neffos WebSocket protocol with handlers written in Lua 5.4.\n"
            "APP is a directory holding app.lua (which may require modules beside it)\n"
            "or a single .lua file. Edits of the app's files reload it in place.\n"
            "\n"
            "options:\n"
            "  --listen HOST:PORT       address to listen on (default 127.0.0.1:8080; [::1]:PORT for IPv6);\n"
            "                           with --tls-cert and no --listen-tls it serves TLS (https://, wss://)\n"
            "  --listen-tls HOST:PORT   also listen for TLS there (needs --tls-cert); --listen stays plain\n"
            "  --tls-cert FILE          TLS certificate chain, PEM (the server's first, then intermediates);\n"
            "                           reloaded on SIGHUP and when the file changes\n"
            "  --tls-key FILE           its private key, PEM (default: in the --tls-cert file)\n"
            "  --tls-min-version V      lowest TLS version accepted: 1.2 (default) or 1.3\n"
            "  --endpoint PATH          WebSocket path of servers that declare none (default /echo)\n"
            "  --static DIR             serve files from DIR for other GET requests\n"
            "  --allowed-origins LIST   comma-separated Origin values to accept (default: any)\n"
            "  --compression MODE       permessage-deflate: on (default; each message compressed on its own,\n"
            "                           no memory per idle connection), context (the client may keep its\n"
            "                           context: ~40 KiB per connection that sent compressed data), off\n"
            "  --check                  load and validate APP, print problems, serve nothing\n"
            "  --no-watch               do not reload when the app's files change (SIGHUP still does)\n"
            "  --watch-poll-ms N        also compare the app's files every N ms, for file systems\n"
            "                           inotify does not see (NFS, some container mounts; default 0 = off)\n"
            "  --grace-ms N             on SIGTERM/SIGINT, ms to wait for connections to close (default 5000)\n"
            "  --log-level LEVEL        debug, info, warn or error (default info)\n"
            "  --log-json               log JSON lines\n"
            "  --lua-instruction-limit N  instructions a handler may run without waiting (default 100000000, 0 = none)\n"
            "  --lua-memory-limit-mb N  Lua heap cap in MiB (default 256, 0 = none)\n"
            "  --watchdog-warn-ms N     log app code that runs N ms without returning (default 2000, 0 = never)\n"
            "  --watchdog-kill-ms N     exit with code 3 when it runs N ms: the loop is stuck (default 30000, 0 = never)\n"
            "  --redis URL              scale out over Redis: redis://[user:password@]HOST[:PORT][/DB]\n"
            "  --redis-prefix P         Redis channel prefix (default neffos)\n"
            "  --nats URL               scale out over NATS: nats://[user:password@|token@]HOST[:PORT]\n"
            "  --nats-prefix P          NATS subject prefix (default neffos)\n"
            "  --workers N|auto         event loops on as many threads, each running the app in a Lua state of\n"
            "                           its own, one server to clients (default 1; auto = the usable cores)\n"
            "  --max-worker-queue N     calls (broadcasts, asks, connections) waiting for one worker (default %u)\n"
            "  --max-worker-queue-bytes N  bytes of the messages in those calls (default %u)\n"
            "  --shared-dict-bytes N    capacity of neffos.shared, shared by every worker (default %u, 0 = none)\n"
            "  --busy-poll-us N         after input, keep polling N microseconds before the loop sleeps:\n"
            "                           a client that asks again within N us finds the loop awake (on a VM\n"
            "                           the quiet round trip drops ~3x); costs up to N us of CPU per burst,\n"
            "                           a core per worker under steady input (default 0 = off; 200 is typical)\n"
            "  --help, --version\n"
            "\n"
            "limits:\n", NF_WORKER_QUEUE_DEFAULT, NF_WORKER_QUEUE_BYTES_DEFAULT, NF_SHARED_BYTES_DEFAULT);
    for (size_t i = 0; i < NLIMITS; i++) {
        char name[64];
        flag_name(name, sizeof name, limit_flags[i].name);
        const char *p = (const char *)&d + limit_flags[i].offset;
        unsigned long long v = limit_flags[i].is_unsigned ? *(const unsigned *)p : *(const size_t *)p;
        fprintf(f, "  --%-24s %s (default %llu)\n", name, limit_flags[i].help, v);
    }
    fprintf(f,
            "\n"
            "descriptors: the soft RLIMIT_NOFILE is raised to the hard limit at start; the default\n"
            "--max-connections is then min(%d, max(N/2, N - %d - N/10)) for N = RLIMIT_NOFILE, leaving\n"
            "descriptors for brokers, static files, reloads and logs. When accept() still fails for want\n"
            "of descriptors, accepting pauses 100 ms at a time (neffos_accept_errors_total, neffos_accept_paused).\n"
            "\n"
            "signals: SIGTERM/SIGINT drain (close with 1001, then exit 0; a second one exits at once; a\n"
            "process still running 1 s after the grace period exits with code 3), SIGHUP reloads the app.\n",
            NF_FD_MAX_DEFAULT, NF_FD_RESERVE);
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "neffos: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see neffos --help)\n");
    return 2;
}

static bool parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s))   /* strtoull would take " 5", "+5" and "-1" (as 2^64 - 1) */
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* HOST:PORT, [V6]:PORT, or :PORT (all interfaces), into host (256 bytes) and *portp. */
static bool parse_listen(const char *s, char *hostbuf, int *portp)
{
    const char *colon;
    const char *host = s;
    size_t hostlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return false;
        hostlen = (size_t)(colon - s);
    }
    unsigned long long port;
    if (hostlen >= sizeof ((config *)0)->host || !parse_u64(colon + 1, 65535, &port))
        return false;
    if (hostlen == 0)
        snprintf(hostbuf, sizeof ((config *)0)->host, "0.0.0.0");
    else
        snprintf(hostbuf, sizeof ((config *)0)->host, "%.*s", (int)hostlen, host);
    *portp = (int)port;
    return true;
}

/* The versions a bug report needs: ours, and the libraries' (libevent's as
 * loaded at run time; Lua, wslay and hiredis as their headers were when this
 * binary was built: wslay and hiredis have no run-time query). */
static void print_version(void)
{
    printf("neffos %s\n", NF_VERSION);
    printf("  %s\n", LUA_RELEASE);
    printf("  libevent %s\n", event_get_version());
    printf("  wslay %s (headers)\n", WSLAY_VERSION);
    printf("  hiredis %d.%d.%d (headers)\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    printf("  %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("  allocator: %s\n", nf_heap_allocator());
}

/* Where neffos.lua is: beside an installed binary, <prefix>/share/neffos/lua
 * (found from /proc/self/exe, so a relocated install works too); NULL for a
 * binary in its build tree, which uses the source tree's scripts/. */
static const char *installed_scripts_dir(char *buf, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    if (snprintf(buf, cap, "%s/../share/neffos/lua", exe) >= (int)cap)
        return NULL;
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof probe, "%s/neffos.lua", buf);
    return access(probe, R_OK) == 0 ? buf : NULL;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, config *cfg)
{
    static char names[NLIMITS][64];
    static const struct option fixed[] = {
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "listen-tls", required_argument, NULL, OPT_LISTEN_TLS },
        { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
        { "tls-key", required_argument, NULL, OPT_TLS_KEY },
        { "tls-min-version", required_argument, NULL, OPT_TLS_MIN },
        { "endpoint", required_argument, NULL, OPT_ENDPOINT },
        { "static", required_argument, NULL, OPT_STATIC },
        { "allowed-origins", required_argument, NULL, OPT_ORIGINS },
        { "compression", required_argument, NULL, OPT_COMPRESSION },
        { "check", no_argument, NULL, OPT_CHECK },
        { "no-watch", no_argument, NULL, OPT_NO_WATCH },
        { "watch-poll-ms", required_argument, NULL, OPT_WATCH_POLL },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "log-json", no_argument, NULL, OPT_LOG_JSON },
        { "grace-ms", required_argument, NULL, OPT_GRACE },
        { "lua-instruction-limit", required_argument, NULL, OPT_LUA_INSTR },
        { "lua-memory-limit-mb", required_argument, NULL, OPT_LUA_MEM },
        { "watchdog-warn-ms", required_argument, NULL, OPT_WD_WARN },
        { "watchdog-kill-ms", required_argument, NULL, OPT_WD_KILL },
        { "redis", required_argument, NULL, OPT_REDIS },
        { "redis-prefix", required_argument, NULL, OPT_REDIS_PREFIX },
        { "nats", required_argument, NULL, OPT_NATS },
        { "nats-prefix", required_argument, NULL, OPT_NATS_PREFIX },
        { "workers", required_argument, NULL, OPT_WORKERS },
        { "max-worker-queue", required_argument, NULL, OPT_WORKER_QUEUE },
        { "max-worker-queue-bytes", required_argument, NULL, OPT_WORKER_QUEUE_BYTES },
        { "shared-dict-bytes", required_argument, NULL, OPT_SHARED_BYTES },
        { "busy-poll-us", required_argument, NULL, OPT_BUSY_POLL },
        { "help", no_argument, NULL, OPT_HELP },
        { "version", no_argument, NULL, OPT_VERSION },
    };
    /* Sized from the two tables: a new flag cannot overflow it. */
    static struct option opts[sizeof fixed / sizeof fixed[0] + NLIMITS + 1];
    size_t n = 0;
    for (; n < sizeof fixed / sizeof fixed[0]; n++)
        opts[n] = fixed[n];
    for (size_t i = 0; i < NLIMITS; i++, n++) {
        flag_name(names[i], sizeof names[i], limit_flags[i].name);
        opts[n] = (struct option){ names[i], required_argument, NULL, OPT_LIMIT_FIRST + (int)i };
    }
    opts[n] = (struct option){ NULL, 0, NULL, 0 };

    opterr = 0;
    int c;
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            if (!parse_listen(optarg, cfg->host, &cfg->port))
                return bad_usage("--listen wants HOST:PORT or [IPV6]:PORT, got '%s'", optarg);
            break;
        case OPT_LISTEN_TLS:
            if (!parse_listen(optarg, cfg->tls_host, &cfg->tls_port))
                return bad_usage("--listen-tls wants HOST:PORT or [IPV6]:PORT, got '%s'", optarg);
            break;
        case OPT_TLS_CERT: cfg->tls_cert = optarg; break;
        case OPT_TLS_KEY: cfg->tls_key = optarg; break;
        case OPT_TLS_MIN: {
            int ver = nf_tls_parse_version(optarg);
            if (ver < 0)
                return bad_usage("--tls-min-version wants 1.2 or 1.3, got '%s'", optarg);
            cfg->tls_min_version = ver;
            break;
        }
        case OPT_ENDPOINT:
            if (optarg[0] != '/')
                return bad_usage("--endpoint must start with '/', got '%s'", optarg);
            cfg->endpoint = optarg;
            break;
        case OPT_STATIC: cfg->static_root = optarg; break;
        case OPT_ORIGINS: cfg->origins = optarg; break;
        case OPT_COMPRESSION:
            if (strcmp(optarg, "off") == 0)
                cfg->limits.compression = NF_COMPRESSION_OFF;
            else if (strcmp(optarg, "on") == 0)
                cfg->limits.compression = NF_COMPRESSION_ON;
            else if (strcmp(optarg, "context") == 0)
                cfg->limits.compression = NF_COMPRESSION_CONTEXT;
            else
                return bad_usage("--compression wants off, on or context, got '%s'", optarg);
            break;
        case OPT_REDIS: cfg->redis = optarg; break;
        case OPT_REDIS_PREFIX: cfg->redis_prefix = optarg; break;
        case OPT_NATS: cfg->nats = optarg; break;
        case OPT_NATS_PREFIX: cfg->nats_prefix = optarg; break;
        case OPT_CHECK: cfg->check = true; break;
        case OPT_NO_WATCH: cfg->watch = false; break;
        case OPT_WATCH_POLL:
            if (!parse_u64(optarg, 3600000, &v))
                return bad_usage("--watch-poll-ms wants a number of milliseconds (at most an hour), got '%s'", optarg);
            cfg->watch_poll_ms = (unsigned)v;
            break;
        case OPT_LOG_LEVEL: {
            int level = nf_log_parse_level(optarg);
            if (level < 0)
                return bad_usage("unknown log level '%s' (debug, info, warn, error)", optarg);
            nf_log_set_level((nf_log_level)level);
            break;
        }
        case OPT_LOG_JSON: nf_log_set_json(true); break;
        case OPT_GRACE:
            if (!parse_u64(optarg, UINT_MAX, &v))
                return bad_usage("--grace-ms wants a number of milliseconds, got '%s'", optarg);
            cfg->grace_ms = (unsigned)v;
            break;
        case OPT_LUA_INSTR:
            if (!parse_u64(optarg, UINT64_MAX / 2, &v))
                return bad_usage("--lua-instruction-limit wants a number, got '%s'", optarg);
            cfg->instruction_limit = v;
            break;
        case OPT_LUA_MEM:
            if (!parse_u64(optarg, 1u << 20, &v))
                return bad_usage("--lua-memory-limit-mb wants a number of MiB, got '%s'", optarg);
            cfg->memory_limit_mb = (size_t)v;
            break;
        case OPT_WD_WARN:
        case OPT_WD_KILL:
            if (!parse_u64(optarg, UINT_MAX, &v))
                return bad_usage("--watchdog-*-ms wants a number of milliseconds, got '%s'", optarg);
            *(c == OPT_WD_WARN ? &cfg->watchdog_warn_ms : &cfg->watchdog_kill_ms) = (unsigned)v;
            break;
        case OPT_WORKERS:
            if (strcmp(optarg, "auto") == 0) {
                /* The cores this process may run on (a container's or taskset's
                 * CPU set), not every core of the machine. */
                cpu_set_t set;
                long cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
                cfg->workers = cores < 1 ? 1 : cores > NF_WORKERS_MAX ? NF_WORKERS_MAX : (unsigned)cores;
            } else if (!parse_u64(optarg, NF_WORKERS_MAX, &v) || v == 0) {
                return bad_usage("--workers wants a number from 1 to 256 or auto, got '%s'", optarg);
            } else {
                cfg->workers = (unsigned)v;
            }
            break;
        case OPT_WORKER_QUEUE:
            if (!parse_u64(optarg, SIZE_MAX, &v) || v == 0)
                return bad_usage("--max-worker-queue wants a number of calls (at least 1), got '%s'", optarg);
            cfg->max_worker_queue = (size_t)v;
            break;
        case OPT_WORKER_QUEUE_BYTES:
            if (!parse_u64(optarg, SIZE_MAX / 2, &v) || v == 0)
                return bad_usage("--max-worker-queue-bytes wants a number of bytes (at least 1), got '%s'", optarg);
            cfg->max_worker_queue_bytes = (size_t)v;
            break;
        case OPT_SHARED_BYTES:
            if (!parse_u64(optarg, SIZE_MAX / 2, &v))
                return bad_usage("--shared-dict-bytes wants a number of bytes, got '%s'", optarg);
            cfg->shared_bytes = (size_t)v;
            break;
        case OPT_BUSY_POLL:
            if (!parse_u64(optarg, 1000000, &v))
                return bad_usage("--busy-poll-us wants a number of microseconds (at most 1000000), got '%s'", optarg);
            cfg->busy_poll_us = (unsigned)v;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_VERSION:
            print_version();
            return 0;
        case ':':
            return bad_usage("%s needs a value", argv[optind - 1]);
        case '?':
            return bad_usage("unknown option '%s'", argv[optind - 1]);
        default: {
            size_t i = (size_t)(c - OPT_LIMIT_FIRST);
            if (i >= NLIMITS)
                return bad_usage("unknown option '%s'", argv[optind - 1]);
            const limit_flag *lf = &limit_flags[i];
            if (!parse_u64(optarg, lf->is_unsigned ? UINT_MAX : SIZE_MAX, &v)) {
                fprintf(stderr, "neffos: --%s wants a number (0 to %llu), got '%s' (see neffos --help)\n", names[i],
                        lf->is_unsigned ? (unsigned long long)UINT_MAX : (unsigned long long)SIZE_MAX, optarg);
                return 2;
            }
            char *p = (char *)&cfg->limits + lf->offset;
            if (lf->offset == offsetof(nf_limits, max_connections))
                cfg->max_connections_set = true;
            if (lf->is_unsigned)
                *(unsigned *)p = (unsigned)v;
            else
                *(size_t *)p = (size_t)v;
        }
        }
    }
    if (cfg->redis && cfg->nats)
        return bad_usage("%s", "--redis and --nats: choose one broker");
    if ((cfg->tls_host[0] || cfg->tls_key) && !cfg->tls_cert)
        return bad_usage("%s", "--listen-tls and --tls-key need --tls-cert");
    if (optind >= argc)
        return bad_usage("%s", "missing APP (a directory with app.lua, or a .lua file)");
    if (optind + 1 < argc)
        return bad_usage("one APP only, got also '%s'", argv[optind + 1]);
    cfg->app = argv[optind];
    return -1;
}

/* ---- running ----------------------------------------------------------------------- */

typedef struct process process;

/* An event loop. With several workers it has the mailbox's priorities
 * (mailbox.h): the calls from the other workers run before the sockets of
 * the same wake-up, as causality across workers needs. */
static struct event_base *new_loop(unsigned workers)
{
    struct event_base *base = event_base_new();
    if (base && workers > 1 && event_base_priority_init(base, NF_MAILBOX_PRIORITIES) != 0) {
        event_base_free(base);
        return NULL;
    }
    return base;
}

/* One worker: a loop, a host and a Lua state of its own (--workers N). */
typedef struct server {
    process *p;
    unsigned id;                 /* 0-based; neffos.worker.id is id + 1 */
    struct event_base *base;
    nf_host *host;
    nf_lua_app *app;
    pthread_t thread;
    bool started;                /* its thread runs (id > 0) */
    bool draining;
} server;

struct process {
    config *cfg;
    unsigned n;
    server *w;                   /* [n] */
    nf_workers *g;               /* NULL with one worker */
    nf_reload_all *reload_all;   /* NULL with one worker */
    nf_shdict *shared;
    nf_watchdog *watchdog;
    nf_reloader *reloader;       /* worker 1's */
    nf_tls *tls;                 /* --tls-cert, or NULL: one for every worker */
    bool draining;               /* worker 1's thread */
};

static void drained(void *ud)
{
    server *s = ud;
    nf_lua_abort_waiting(s->app);
    if (s->id == 0)
        nf_info("drained, exiting");
    event_base_loopbreak(s->base);
}

/* On s's own thread. */
static void start_drain(server *s)
{
    if (s->draining)
        return;
    s->draining = true;
    nf_lua_stop(s->app);
    nf_host_drain(s->host, s->p->cfg->grace_ms, drained, s);
}

static void drain_call(nf_host *h, void *arg)
{
    (void)h;
    start_drain(arg);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *ud)
{
    (void)what;
    process *p = ud;
    if (p->draining) {
        nf_warn("second signal: exiting now");
        _exit(0);
    }
    p->draining = true;
    nf_info("%s: draining (%u ms grace)", sig == SIGINT ? "SIGINT" : "SIGTERM", p->cfg->grace_ms);
    if (p->reloader)
        nf_reloader_stop(p->reloader);
    /* Every worker drains on its own loop; a worker that cannot be told
     * (its queue full) is ended by the watchdog after the grace period. */
    for (unsigned i = 1; i < p->n; i++)
        if (nf_workers_post(p->g, i, drain_call, &p->w[i], 0) != 0)
            nf_warn("worker %u cannot be told to drain", i + 1);
    start_drain(&p->w[0]);
}

/* SIGTERM/SIGINT, passed on by the watchdog thread (watchdog.h). */
static void on_signal_pipe(evutil_socket_t fd, short what, void *ud)
{
    (void)what;
    unsigned char sigs[8];
    ssize_t n = read(fd, sigs, sizeof sigs);
    for (ssize_t i = 0; i < n; i++)
        on_stop_signal(sigs[i], 0, ud);
}

static void on_hup(evutil_socket_t sig, short what, void *ud)
{
    (void)sig;
    (void)what;
    process *p = ud;
    if (p->draining)
        return;
    if (p->tls) {   /* the process's one certificate: every worker's next SSL_new gets the new one */
        nf_info("SIGHUP: reloading the TLS certificate");
        nf_tls_reload(p->tls, NULL, 0);   /* logged either way; a bad one leaves the old serving */
    }
    if (!p->reloader)
        return;
    nf_info("SIGHUP: reloading");
    nf_reloader_reload(p->reloader);
}

/* The listeners: --listen plain, or TLS when --tls-cert is given without
 * --listen-tls; --listen-tls TLS beside it. Returns 0, or a negative code
 * and err ("cannot listen: ...", "TLS: ..."). */
static int start_listening(process *p, char *err, size_t errcap)
{
    const config *cfg = p->cfg;
    server *s = &p->w[0];
    char why[512];
    if (cfg->tls_cert) {
        int rc = nf_tls_new(cfg->tls_cert, cfg->tls_key, (nf_tls_version)cfg->tls_min_version, &p->tls, why, sizeof why);
        if (rc != 0) {
            snprintf(err, errcap, "TLS: %s", rc == NF_ENOMEM ? "out of memory" : why);
            return rc;
        }
        /* One watcher (worker 1's loop) reloads for the process. */
        rc = nf_tls_watch(p->tls, s->base);
        if (rc != 0)
            nf_warn("tls: cannot watch %s (%s): reload it with SIGHUP", cfg->tls_cert, strerror(-rc));
        /* Worker 1 listens and hands TLS sockets to the others (host.c's
         * accepted hook), which then make their handshakes with it. */
        for (unsigned i = 1; i < p->n; i++)
            nf_host_set_tls(p->w[i].host, p->tls);
    }
    bool tls_on_listen = cfg->tls_cert && !cfg->tls_host[0];
    int rc = tls_on_listen ? nf_host_listen_tls(s->host, cfg->host, cfg->port, p->tls, why, sizeof why)
                           : nf_host_listen(s->host, cfg->host, cfg->port, why, sizeof why);
    if (rc == 0 && cfg->tls_host[0])
        rc = nf_host_listen_tls(s->host, cfg->tls_host, cfg->tls_port, p->tls, why, sizeof why);
    if (rc != 0)
        snprintf(err, errcap, "cannot listen: %s", why);
    return rc;
}

/* "127.0.0.1:8080" (plain only, as before TLS), "https [::1]:8443", or
 * "http ... and https ...", for the log. */
static void listening_on(const process *p, char *out, size_t cap)
{
    const config *cfg = p->cfg;
    const server *s = &p->w[0];
    bool both = cfg->tls_host[0] != '\0', tls_only = cfg->tls_cert && !both;
    const char *h1 = cfg->host, *h2 = cfg->tls_host;
    int n = snprintf(out, cap, "%s%s%s%s:%d", tls_only ? "https " : both ? "http " : "", strchr(h1, ':') ? "[" : "", h1,
                     strchr(h1, ':') ? "]" : "", tls_only ? nf_host_tls_port(s->host) : nf_host_port(s->host));
    if (both && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " and https %s%s%s:%d", strchr(h2, ':') ? "[" : "", h2,
                 strchr(h2, ':') ? "]" : "", nf_host_tls_port(s->host));
}

static int check_app(const config *cfg, struct event_base *base, const nf_lua_options *lo)
{
    char err[1024];
    nf_lua_app *app = nf_lua_new(base, lo, err, sizeof err);
    if (!app) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int rc = nf_lua_load(app, NULL, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    else
        printf("%s: ok\n", cfg->app);
    nf_lua_free(app);
    return rc == 0 ? 0 : 1;
}

/* The broker connection: worker 1's host's exchange, or with --workers N
 * the group's, which carries every worker's traffic through it. */
static int start_exchange(server *s, const char *kind, const char *url, const char *prefix)
{
    char err[1024];
    bool redis = strcmp(kind, "redis") == 0;
    nf_exchange *x = redis ? nf_exchange_redis_new(s->host, url, prefix, err, sizeof err)
                           : nf_exchange_nats_new(s->host, url, prefix, err, sizeof err);
    if (!x) {
        fprintf(stderr, "neffos: %s\n", err);
        return -1;
    }
    if (s->p->g)
        nf_workers_set_broker(s->p->g, x);
    else
        nf_host_set_exchange(s->host, x);
    return 0;
}

typedef struct fd_budget {
    int rc;                  /* of nf_fdlimit_raise */
    uint64_t before, after;  /* the soft RLIMIT_NOFILE */
} fd_budget;

/* Raises the soft RLIMIT_NOFILE to the hard one and fits --max-connections
 * to it (fdlimit.h). Before the host is made: it copies the limits. */
static fd_budget fit_descriptors(config *cfg)
{
    fd_budget fb = { 0, 0, 0 };
    fb.rc = nf_fdlimit_raise(&fb.before, &fb.after);
    if (!cfg->max_connections_set)
        cfg->limits.max_connections = nf_fdlimit_max_connections(fb.after);
    return fb;
}

/* Logged once the server is up, so that a failing start stays one line;
 * warns when an explicit --max-connections does not fit. */
static void report_descriptors(const config *cfg, const fd_budget *fb)
{
    uint64_t before = fb->before, after = fb->after, budget = nf_fdlimit_budget(after);
    if (fb->rc != 0)
        nf_warn("descriptors: cannot raise RLIMIT_NOFILE (%s), it stays %llu", strerror(-fb->rc),
                (unsigned long long)after);
    if (before != after)
        nf_info("descriptors: RLIMIT_NOFILE raised from %llu to %llu; --max-connections %zu",
                (unsigned long long)before, (unsigned long long)after, cfg->limits.max_connections);
    else
        nf_info("descriptors: RLIMIT_NOFILE %llu; --max-connections %zu", (unsigned long long)after,
                cfg->limits.max_connections);
    if (cfg->max_connections_set && cfg->limits.max_connections > budget)
        nf_warn("descriptors: --max-connections %zu is above what RLIMIT_NOFILE %llu allows (%llu after a reserve "
                "for the process's own files): accept() will fail with EMFILE first; raise the limit (ulimit -n, "
                "systemd LimitNOFILE=)", cfg->limits.max_connections, (unsigned long long)after,
                (unsigned long long)budget);
}

/* Makes worker i: its loop (worker 1 uses the main one), Lua state and host,
 * and loads the app into it. Returns 0, or the exit code. */
static int make_worker(process *p, unsigned i, struct event_base *main_base, const nf_lua_options *lo0,
                       const nf_limits *limits)
{
    char err[1024];
    server *s = &p->w[i];
    s->p = p;
    s->id = i;
    s->base = i == 0 ? main_base : new_loop(p->n);
    if (!s->base) {
        fprintf(stderr, "neffos: cannot create the event loop of worker %u\n", i + 1);
        return 1;
    }
    nf_lua_options lo = *lo0;
    lo.worker_id = i + 1;
    lo.worker_count = p->n;
    lo.shared = p->shared;
    lo.workers = p->g;
    s->app = nf_lua_new(s->base, &lo, err, sizeof err);
    if (!s->app) {
        fprintf(stderr, "neffos: %s\n", err);
        return 2;
    }
    s->host = nf_host_new(s->base, limits, nf_lua_ops(), s->app);
    if (!s->host) {
        fprintf(stderr, "neffos: cannot create the host\n");
        return 1;
    }
    nf_lua_set_watchdog(s->app, p->watchdog);
    return 0;
}

/* Worker i's loop: make it the watchdog's loop i, run it until its drain
 * ends, then let go of what crosses threads. */
static void run_worker_loop(server *s)
{
    nf_watchdog_bind_thread(s->id);
    if (s->p->g)
        nf_workers_bind_thread(s->p->g, s->id);
    nf_loop_run(s->base, s->p->cfg->busy_poll_us, nf_host_activity, s->host,
                &nf_host_metrics(s->host)->idle_poll_us);
    if (s->p->g)
        nf_workers_detach(s->p->g, s->id);
}

/* Takes worker i apart, on the thread that ran it (pools are per thread). */
static void free_worker(server *s)
{
    if (s->app)
        nf_lua_stop(s->app);
    if (s->host)
        nf_host_free(s->host);
    nf_lua_free(s->app);
    s->host = NULL;
    s->app = NULL;
    if (s->id > 0 && s->base)
        event_base_free(s->base);
    s->base = NULL;
}

static void *worker_thread(void *ud)
{
    server *s = ud;
    run_worker_loop(s);
    free_worker(s);
    nf_host_thread_exit();
    return NULL;
}

static int serve(config *cfg, struct event_base *base, const nf_lua_options *lo)
{
    char err[1024];
    process p = { .cfg = cfg, .n = cfg->workers };
    int rc = 1;
    fd_budget fb = fit_descriptors(cfg);
    /* --max-connections and --max-connections-per-ip are per process: the
     * workers count together (workers.h). */
    nf_limits wl = cfg->limits;

    p.w = calloc(p.n, sizeof *p.w);
    if (!p.w) {
        fprintf(stderr, "neffos: out of memory\n");
        return 1;
    }
    if (p.n > 1) {
        p.g = nf_workers_new(p.n, cfg->max_worker_queue, cfg->max_worker_queue_bytes);
        if (!p.g) {
            fprintf(stderr, "neffos: out of memory\n");
            goto out;
        }
    }
    if (cfg->shared_bytes && (p.shared = nf_shdict_new(cfg->shared_bytes)) == NULL) {
        fprintf(stderr, "neffos: out of memory\n");
        goto out;
    }
    /* Before the app's top level runs: it is app code like any handler. */
    nf_watchdog_config wc = { cfg->watchdog_warn_ms, cfg->watchdog_kill_ms, cfg->grace_ms, p.n };
    p.watchdog = nf_watchdog_start(&wc, err, sizeof err);
    if (!p.watchdog) {
        fprintf(stderr, "neffos: %s\n", err);
        goto out;
    }
    for (unsigned i = 0; i < p.n; i++)
        if ((rc = make_worker(&p, i, base, lo, &wl)) != 0)
            goto out;
    rc = 1;
    for (unsigned i = 0; p.g && i < p.n; i++) {
        if (nf_workers_attach(p.g, i, p.w[i].host, true) != 0) {
            fprintf(stderr, "neffos: cannot join worker %u: out of memory or descriptors\n", i + 1);
            goto out;
        }
    }
    if (cfg->redis || cfg->nats) {
        /* Before the app loads: its connections subscribe as they come. A
         * broker that does not answer now is an error (exit 2), not a
         * process that would quietly serve its own clients only. One
         * connection (pair) for the process, worker 1's. */
        if (start_exchange(&p.w[0], cfg->redis ? "redis" : "nats", cfg->redis ? cfg->redis : cfg->nats,
                           cfg->redis ? cfg->redis_prefix : cfg->nats_prefix) != 0) {
            rc = 2;
            goto out;
        }
    }
    for (unsigned i = 0; i < p.n; i++) {
        if (nf_lua_load(p.w[i].app, p.w[i].host, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            goto out;
        }
        if (cfg->static_root)
            nf_host_set_static_root(p.w[i].host, cfg->static_root);
        if (cfg->origins)
            nf_host_set_allowed_origins(p.w[i].host, cfg->origins);
    }
    char kind[8], url[512], prefix[128];
    if (!cfg->redis && !cfg->nats && nf_lua_scale_out(p.w[0].app, kind, sizeof kind, url, sizeof url, prefix, sizeof prefix)) {
        /* Asked for by the app (neffos.scale_out): still before listening,
         * so no connection exists yet. */
        if (start_exchange(&p.w[0], kind, url, prefix[0] ? prefix : NULL) != 0) {
            rc = 2;
            goto out;
        }
    }
    server *s = &p.w[0];
    if (start_listening(&p, err, sizeof err) != 0) {
        fprintf(stderr, "neffos: %s\n", err);
        rc = 2;
        goto out;
    }
    report_descriptors(cfg, &fb);
    nf_reloader_options ro = { .watch = cfg->watch, .poll_ms = cfg->watch_poll_ms };
    if (p.n > 1) {
        nf_lua_app *apps[NF_WORKERS_MAX];
        for (unsigned i = 0; i < p.n; i++)
            apps[i] = p.w[i].app;
        p.reload_all = nf_reload_all_new(p.g, apps, p.n);
        ro.reload = nf_reload_all_reload;
        ro.failed = nf_reload_all_failed;
        ro.ud = p.reload_all;
    }
    p.reloader = (p.n == 1 || p.reload_all) ? nf_reloader_new(base, s->app, &ro) : NULL;
    if (!p.reloader) {
        fprintf(stderr, "neffos: out of memory\n");
        goto out;
    }

    struct event *sigs[2] = {
        event_new(base, nf_watchdog_signal_fd(p.watchdog), EV_READ | EV_PERSIST, on_signal_pipe, &p),
        evsignal_new(base, SIGHUP, on_hup, &p),
    };
    for (int i = 0; i < 2; i++)
        event_add(sigs[i], NULL);

    char eps[512] = "";
    size_t used = 0;
    for (nf_endpoint *ep = nf_host_endpoint_next(s->host, NULL); ep; ep = nf_host_endpoint_next(s->host, ep)) {
        int w = snprintf(eps + used, sizeof eps - used, "%s%s", used ? " " : "", nf_endpoint_path(ep));
        if (w > 0 && (size_t)w < sizeof eps - used)
            used += (size_t)w;
    }
    char workers[32] = "";
    if (p.n > 1)
        snprintf(workers, sizeof workers, ", workers: %u", p.n);
    /* The other workers' threads take no signals: SIGHUP reaches worker 1's
     * loop, SIGTERM/SIGINT the watchdog. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 1; i < p.n; i++) {
        int e = pthread_create(&p.w[i].thread, NULL, worker_thread, &p.w[i]);
        if (e != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            fprintf(stderr, "neffos: cannot start worker %u: %s\n", i + 1, strerror(e));
            _exit(1);   /* workers already serve: no orderly way back */
        }
        p.w[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    char where[600];
    listening_on(&p, where, sizeof where);
    nf_info("neffos %s listening on %s, endpoints: %s, app: %s%s", NF_VERSION, where, eps, cfg->app, workers);

    run_worker_loop(s);
    nf_reloader_free(p.reloader);
    p.reloader = NULL;
    for (unsigned i = 1; i < p.n; i++) {
        if (p.w[i].started)
            pthread_join(p.w[i].thread, NULL);
        p.w[i].started = false;
    }
    nf_watchdog_disarm(p.watchdog);
    rc = 0;

    for (int i = 0; i < 2; i++)
        event_free(sigs[i]);
out:
    nf_reloader_free(p.reloader);
    for (unsigned i = 0; i < p.n; i++) {
        if (p.g)
            nf_workers_detach(p.g, i);   /* a start that failed: no loop ran */
        free_worker(&p.w[i]);
    }
    nf_reload_all_free(p.reload_all);
    nf_workers_free(p.g);
    nf_shdict_free(p.shared);
    nf_watchdog_free(p.watchdog);
    nf_tls_free(p.tls);   /* after every worker: their connections' SSLs are gone */
    free(p.w);
    return rc;
}

int main(int argc, char **argv)
{
    /* Every subcommand writes to sockets (neffos test runs a server and its
     * clients in one process): a peer gone is an EPIPE to handle, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    /* The author's subcommands (nf_cmds.h); serve an app named like one as ./test. */
    if (argc >= 2 && (strcmp(argv[1], "test") == 0 || strcmp(argv[1], "new") == 0)) {
        char dir[PATH_MAX];
        const char *scripts = installed_scripts_dir(dir, sizeof dir);
        if (!scripts)
            scripts = NF_SCRIPTS_DIR;
        return argv[1][0] == 't' ? nf_cmd_test(argc - 1, argv + 1, scripts) : nf_cmd_new(argc - 1, argv + 1, scripts);
    }
    config cfg = {
        .host = "127.0.0.1",
        .port = 8080,
        .endpoint = "/echo",
        .watch = true,
        .grace_ms = 5000,
        .instruction_limit = 100000000,
        .memory_limit_mb = 256,
        .watchdog_warn_ms = 2000,
        .watchdog_kill_ms = 30000,
        .limits = nf_limits_default(),
        .tls_min_version = NF_TLS_1_2,
        .workers = 1,
        .max_worker_queue = NF_WORKER_QUEUE_DEFAULT,
        .max_worker_queue_bytes = NF_WORKER_QUEUE_BYTES_DEFAULT,
        .shared_bytes = NF_SHARED_BYTES_DEFAULT,
    };
    int rc = parse_args(argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    /* The allocator's tuning (heap.c: glibc's slack and mmap threshold, its
     * arenas' trim threshold with --workers N; nothing under jemalloc). */
    nf_heap_configure(cfg.workers > 1);

    struct event_base *base = new_loop(cfg.workers);
    if (!base) {
        fprintf(stderr, "neffos: cannot create the event loop\n");
        return 1;
    }
    char scripts[PATH_MAX];
    nf_lua_options lo = {
        .app_path = cfg.app,
        .scripts_dir = installed_scripts_dir(scripts, sizeof scripts),
        .default_endpoint = cfg.endpoint,
        .memory_limit = cfg.memory_limit_mb << 20,
        .instruction_limit = cfg.instruction_limit,
    };
    nf_debug("Lua library: %s/neffos.lua", lo.scripts_dir ? lo.scripts_dir : NF_SCRIPTS_DIR);
    rc = cfg.check ? check_app(&cfg, base, &lo) : serve(&cfg, base, &lo);
    event_base_free(base);
    return rc;
}
