/* metrics.h - the server's counters, rendered as Prometheus text at /metrics.
 *
 * One nf_metrics per host, written on its loop's thread only: by host/core;
 * by host/cluster too, through nf_host_metrics (proto.h), for what
 * scale-out and --workers N count (exchange_*, worker_*, workers, and the
 * ask_timeouts and limit_name of a broker's asks and names); idle_poll_us
 * by the loop (loop.h). */
#ifndef NF_METRICS_H
#define NF_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

typedef struct nf_metrics {
    uint64_t http_requests;
    uint64_t upgrades;
    uint64_t upgrades_deflate;   /* of which with permessage-deflate */
    uint64_t refused_limit;          /* max connections (total or per address) */
    uint64_t refused_bad_request;    /* malformed or oversized HTTP */
    uint64_t refused_origin;
    uint64_t refused_on_connect;     /* on_connect returned an error */
    uint64_t refused_id;             /* the ID was refused: empty, too long, not UTF-8, generator failed */
    uint64_t handshake_timeouts;
    uint64_t refused_tls_handshake;  /* TLS handshakes that failed (a stalled one is a handshake timeout) */
    uint64_t closed;
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t invalid_frames;
    uint64_t broadcasts;
    uint64_t broadcast_deliveries;
    uint64_t heap_trims;             /* free memory given back to the system (host.c's sweep) */
    uint64_t handler_runs;
    uint64_t handler_errors;
    uint64_t handler_us_total;       /* sum of handler run times, microseconds */
    uint64_t asks_sent;
    uint64_t ask_timeouts;
    uint64_t limit_outgoing;
    uint64_t limit_inbox;
    uint64_t limit_inbox_bytes;
    uint64_t limit_rate;
    uint64_t limit_namespaces;
    uint64_t limit_rooms;
    uint64_t limit_asks;
    uint64_t limit_name;             /* a name over --max-name-bytes (clients, app, bus) */
    uint64_t limit_names_per_conn;
    uint64_t limit_budget;           /* connections closed for handler runs over the instruction limit */
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    uint64_t exchange_published;
    uint64_t exchange_received;
    uint64_t exchange_dropped;
    uint64_t accept_emfile;          /* accept() failures: out of descriptors (process) */
    uint64_t accept_enfile;          /* ... (system) */
    uint64_t accept_other;           /* ... anything else (ENOBUFS, ENOMEM) */
    uint64_t worker_messages_out;    /* --workers N: calls posted to other workers */
    uint64_t worker_messages_in;     /* ... run here for other workers */
    uint64_t limit_worker_queue;     /* ... dropped: that worker's queue was full (--max-worker-queue) */
    uint64_t idle_poll_us;           /* --busy-poll-us: polling that brought no input (loop.h) */
    int accept_paused;               /* 1 while the listener waits out such a failure */
    unsigned lingering;              /* closed sockets still discarding input (linger.h) */
    int exchange_connected;          /* -1 none, 0 down, 1 up */
    size_t exchange_channels;        /* channels (namespaces, IDs, asks) held at the broker */
    size_t exchange_pending;         /* ... of which the broker has not confirmed the subscription yet */
    unsigned workers;                /* --workers N (0 or 1: one loop, the worker lines are left out) */
} nf_metrics;

/* Adds m's counters into sum (the process's figures from its workers'):
 * counters and gauges are summed, except those every worker counts alike
 * (reloads: each worker swaps on every reload; the broker's gauges: one
 * worker holds the connection) which take the largest. neffos_heap_bytes
 * is the process's allocator's figure, read as m is rendered. */
void nf_metrics_add(nf_metrics *sum, const nf_metrics *m);

/* Appends the Prometheus text exposition of m plus the gauges given. */
void nf_metrics_render(const nf_metrics *m, size_t connections, size_t endpoints, struct evbuffer *out);

struct nf_tls_stats;
/* Appends the TLS certificate's reloads and expiry (tls.h), when TLS is on. */
void nf_metrics_render_tls(const struct nf_tls_stats *s, struct evbuffer *out);

#endif
