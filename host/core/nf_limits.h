/* nf_limits.h - every bound that input can push against, in one place.
 * Each has a safe default (nf_limits_default) and a command-line flag. */
#ifndef NF_LIMITS_H
#define NF_LIMITS_H

#include <stddef.h>

typedef struct nf_limits {
    size_t max_message_bytes;       /* one WebSocket message, after reassembly */
    size_t max_header_bytes;        /* HTTP request head (request line + headers) */
    size_t max_headers;             /* HTTP header count */
    unsigned handshake_timeout_ms;  /* HTTP request + "M" must arrive within this */
    size_t max_connections;         /* total open WebSocket connections */
    size_t max_connections_per_ip;  /* per client address */
    size_t max_outgoing_bytes;      /* queued for one conn, pongs too; slow reader closed (1008) */
    size_t max_incoming_queue;      /* frames waiting while the conn's handler waits */
    size_t max_incoming_bytes;      /* their bytes, per-frame overhead included */
    unsigned max_messages_per_sec;  /* per connection; 0 = unlimited */
    size_t max_namespaces_per_conn;
    size_t max_rooms_per_conn;      /* per namespace connection */
    size_t max_pending_asks;        /* server asks in flight per connection */
    unsigned ask_timeout_ms;        /* default for asks without a timeout */
    size_t max_id_bytes;            /* connection ID length */
    size_t max_name_bytes;          /* one namespace, room or event name */
    size_t max_name_bytes_per_conn; /* a connection's namespace and room names, summed */
    size_t max_budget_overruns;     /* handler runs of one connection in a row that hit the
                                       instruction limit before it is closed; 0 = no bound */
    unsigned compression;           /* permessage-deflate: NF_COMPRESSION_* */
    size_t compression_min_bytes;   /* shorter messages are sent uncompressed */
} nf_limits;

/* --compression: off; on (each message on its own both ways: no zlib state
 * per connection); context (the client may keep its context: a window per
 * connection that sent compressed data). README, "Compression". */
enum { NF_COMPRESSION_OFF, NF_COMPRESSION_ON, NF_COMPRESSION_CONTEXT };

static inline nf_limits nf_limits_default(void)
{
    nf_limits l = {
        .max_message_bytes = 1u << 20,        /* 1 MiB */
        .max_header_bytes = 8192,
        .max_headers = 64,
        .handshake_timeout_ms = 10000,
        .max_connections = 100000,            /* main.c lowers it to the descriptor budget */
        .max_connections_per_ip = 0,          /* 0 = unlimited */
        .max_outgoing_bytes = 16u << 20,      /* 16 MiB */
        .max_incoming_queue = 1024,
        .max_incoming_bytes = 4u << 20,       /* 4 MiB: four messages of the maximum size */
        .max_messages_per_sec = 0,
        .max_namespaces_per_conn = 64,
        .max_rooms_per_conn = 256,
        .max_pending_asks = 1024,
        .ask_timeout_ms = 30000,
        .max_id_bytes = 128,
        .max_name_bytes = 256,
        .max_name_bytes_per_conn = 16384,     /* 16 KiB: 256 rooms of 64 bytes */
        .max_budget_overruns = 3,             /* each holds the loop up to the instruction limit */
        .compression = NF_COMPRESSION_ON,     /* no memory per idle connection (README) */
        .compression_min_bytes = 256,         /* below: a few bytes saved for a compressor run */
    };
    return l;
}

#endif
