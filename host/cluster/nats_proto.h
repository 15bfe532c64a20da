/* nats_proto.h - the NATS client protocol, text part (docs.nats.io,
 * "Client Protocol"): parsing what the server sends, formatting CONNECT.
 *
 * Pure: bytes in, one event out per call, no allocation, no state. The
 * caller keeps the unread bytes and calls again from the first one not
 * consumed. Sizes are bounded: a control line longer than
 * NF_NATS_MAX_LINE is a protocol error, and a MSG payload larger than the
 * caller's max_payload is reported (NF_NATS_TOO_BIG) so the caller can
 * skip it without buffering it. */
#ifndef NF_NATS_PROTO_H
#define NF_NATS_PROTO_H

#include <stddef.h>

#include "slice.h"

#define NF_NATS_MAX_LINE 65536

typedef enum nf_nats_op {
    NF_NATS_MORE = 0,   /* incomplete: call again with at least ev->need bytes */
    NF_NATS_INFO,       /* ev->text: the JSON object */
    NF_NATS_MSG,        /* ev->subject, sid, reply (may be empty), payload */
    NF_NATS_PING,
    NF_NATS_PONG,
    NF_NATS_OK,
    NF_NATS_ERR,        /* ev->text: the message, quotes removed */
    NF_NATS_TOO_BIG,    /* a MSG over max_payload: the header line is consumed,
                           discard ev->skip more bytes (payload and CRLF) */
    NF_NATS_BAD         /* not NATS: drop the connection */
} nf_nats_op;

typedef struct nf_nats_event {
    nf_nats_op op;
    size_t consumed;        /* input bytes this event used */
    size_t need;            /* NF_NATS_MORE: total bytes needed, when known (else 0) */
    size_t skip;            /* NF_NATS_TOO_BIG */
    nf_slice subject, sid, reply, payload;
    nf_slice text;
} nf_nats_event;

/* Parses the first server operation in buf[0..len). */
nf_nats_op nf_nats_parse(const char *buf, size_t len, size_t max_payload, nf_nats_event *ev);

/* Formats "CONNECT {...}\r\n" with verbose and pedantic off. user, password
 * and token may be NULL. Returns the length, or 0 if cap is too small. */
size_t nf_nats_connect_line(char *out, size_t cap, const char *name, const char *version,
                            const char *user, const char *password, const char *token);

#endif
