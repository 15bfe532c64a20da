/* exchange_marker.h - field 0 of the bus messages this server publishes
 * (docs/protocol.md §14.2, §14.5, §14.8).
 *
 * Go neffos nodes read field 0 of a bus message three ways: empty (a plain
 * broadcast), starting with "neffos(0x" (the server connection id of the
 * excluded sender, compared for equality and never parsed), or anything
 * else (an ask token, forwarded to the client). We always publish a marker
 * of the second kind, so Go nodes strip it and deliver to everybody, while
 * C nodes parse it:
 *
 *     neffos(0xC1:<node>:<t|b>:<pathlen>:<path>(<except-id>))
 *
 *   C1        format tag; Go's uuids are lower-case hex, so never "C1:"
 *   node      32 lower-case hex digits, random per process: a receiver
 *             drops its own publications (it delivered them locally)
 *   t | b     text or binary frame (Go nodes send everything as text);
 *   n | m     the same for a native message: the frame is the body alone
 *   path      the endpoint that broadcast; C receivers deliver to the
 *             endpoint with the same path only
 *   except-id the ID whose connections to skip, empty for none; any node
 *             may own them. Percent-encoded (exchange_key.h): an ID may hold
 *             any byte, and field 0 ends at the first ';'
 *
 * A path with a ';' is left out (empty: any endpoint). Older C nodes wrote
 * the ID raw (their IDs had no ';'); an except-id that is not a valid
 * encoding is read as it is, so their markers keep working. */
#ifndef NF_EXCHANGE_MARKER_H
#define NF_EXCHANGE_MARKER_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

#define NF_MARKER_NODE_LEN 32

typedef struct nf_marker {
    nf_slice node;          /* NF_MARKER_NODE_LEN hex digits */
    bool binary;
    bool native;            /* the frame is the body alone (docs/protocol.md §11) */
    nf_slice path;          /* empty = any endpoint */
    nf_slice except_id;     /* empty = none; the ID itself (encoded on the wire) */
} nf_marker;

typedef enum nf_marker_kind {
    NF_MARKER_NONE,         /* empty field 0: a plain broadcast (Go) */
    NF_MARKER_OURS,         /* our format, fields filled */
    NF_MARKER_FOREIGN,      /* "neffos(0x..." of a Go node: its sender lives there */
    NF_MARKER_TOKEN         /* anything else: an ask token */
} nf_marker_kind;

/* Bytes nf_marker_write() writes. */
size_t nf_marker_len(const nf_marker *m);
size_t nf_marker_write(const nf_marker *m, char *out);

/* Classifies field 0; fills *out for NF_MARKER_OURS: slices into field0, but
 * except_id, decoded, into buf (field0.len bytes are enough). */
nf_marker_kind nf_marker_parse(nf_slice field0, nf_marker *out, char *buf);

/* A fresh random node id (NF_MARKER_NODE_LEN hex digits, NUL-terminated).
 * Returns 0, or a negative errno value of getrandom(2). */
int nf_marker_new_node(char out[NF_MARKER_NODE_LEN + 1]);

#endif
