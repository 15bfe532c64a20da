/* deflate.h - permessage-deflate (RFC 7692): the negotiation, a bounded
 * inflater and a deflater, over zlib. Pure: no I/O, no WebSocket framing
 * (ws.c sets and reads RSV1), nothing of neffos.
 *
 * What this server agrees to, and why (README, "Compression"):
 *  - server_no_context_takeover, always (7.1.1.1 lets the server add it):
 *    every message we send is compressed on its own, so one compressed copy
 *    of a broadcast serves every receiver with the same window size, and no
 *    connection keeps a compressor (zlib's is ~256 KiB with a 32 KiB window);
 *  - client_no_context_takeover unless the caller allows the client its
 *    context (7.1.1.2 lets the server ask for it): then an idle connection
 *    keeps no inflater either; with the context, one inflater (its window,
 *    2^client_max_window_bits bytes, plus ~7 KiB) stays with the connection
 *    once it sent a compressed message.
 * Errors: 0 or a negative NF_E* code (errors.h), as said per function. */
#ifndef NF_DEFLATE_H
#define NF_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* zlib's raw deflate cannot compress with a 256-byte window: an offer of
 * server_max_window_bits=8 is declined (RFC 7692 7.1.2.1 allows it). */
enum { NF_DEFLATE_MIN_BITS = 9, NF_DEFLATE_MAX_BITS = 15 };

/* The longest answer nf_deflate_answer writes, its NUL included. */
#define NF_DEFLATE_ANSWER_MAX 128

/* What one connection agreed to. */
typedef struct nf_deflate_params {
    uint8_t server_max_window_bits;   /* 9..15: the window we compress with */
    uint8_t client_max_window_bits;   /* 8..15: the most the client compresses with */
    bool client_no_context_takeover;  /* each client message is inflated on its own */
    bool server_no_context_takeover;  /* always true in what nf_deflate_offer agrees to */
    bool server_window_asked;         /* the offer named server_max_window_bits: the answer must */
} nf_deflate_params;

/* Reads one element of a Sec-WebSocket-Extensions list (RFC 7692 5, RFC 6455
 * 9.1: "name; param; param=value", a value a token or a quoted token) and
 * decides on it. allow_client_context: may the client keep its compression
 * context between messages? Returns 0 and fills *p when it is a
 * permessage-deflate offer we accept; NF_ENOENT when it names another
 * extension; NF_EINVAL when it is a permessage-deflate offer we decline: an
 * unknown or repeated parameter, a value where none belongs, a window size
 * outside 8..15 or written otherwise than in plain decimal (7.1), or
 * server_max_window_bits=8. The caller tries the next offered element. */
int nf_deflate_offer(const char *elem, size_t len, bool allow_client_context, nf_deflate_params *p);

/* Writes the Sec-WebSocket-Extensions value answering an accepted offer
 * (RFC 7692 5.1), NUL-terminated, into out (cap >= NF_DEFLATE_ANSWER_MAX);
 * returns its length. */
size_t nf_deflate_answer(const nf_deflate_params *p, char *out, size_t cap);

/* Counts since the process started, every connection and thread together:
 * what /metrics shows. Kept with relaxed atomic adds, so that event loops on
 * several threads may count at once. */
typedef struct nf_deflate_stats {
    uint64_t deflated, deflated_in, deflated_out;   /* compressor runs; bytes before, after */
    uint64_t inflated, inflated_in, inflated_out;   /* messages inflated; bytes before, after */
    uint64_t too_big, invalid;                      /* refused: past max_out; not deflate data */
} nf_deflate_stats;

nf_deflate_stats nf_deflate_get_stats(void);

/* ---- inflate -------------------------------------------------------------- */

typedef struct nf_inflater nf_inflater;

/* An inflater for a client that compresses with windows up to
 * 2^window_bits (8..15). NULL only when out of memory. */
nf_inflater *nf_inflater_new(unsigned window_bits);
void nf_inflater_free(nf_inflater *z);

/* Inflates one message: in[0..len) is the payload of its frames, put
 * together (RFC 7692 7.2.2: the 0x00 0x00 0xff 0xff tail is added here).
 * keep_context: the previous messages' window stays (context takeover);
 * else the message is inflated on its own. The output grows with what is
 * produced and stops as soon as it passes max_out: a 10 MB bomb of 10 KB
 * costs max_out + 1 bytes, never more. On 0, *out is a buffer of *out_len
 * bytes the caller frees (NULL when empty). Errors: NF_ENOBUFS (more than
 * max_out bytes: close 1009), NF_EPROTO (not valid deflate data: 1007),
 * NF_ENOMEM; *out is NULL then. After an error the context is lost: the
 * connection must not go on. */
int nf_inflater_message(nf_inflater *z, const uint8_t *in, size_t len, size_t max_out, bool keep_context,
                        uint8_t **out, size_t *out_len);

/* ---- deflate -------------------------------------------------------------- */

typedef struct nf_deflater nf_deflater;

/* A compressor with a window of 2^window_bits (9..15) that compresses each
 * message on its own (no context takeover). NULL only when out of memory. */
nf_deflater *nf_deflater_new(unsigned window_bits);
void nf_deflater_free(nf_deflater *d);

/* Compresses one message (RFC 7692 7.2.1: a sync flush, its 0x00 0x00 0xff
 * 0xff tail removed). On 0, *out points at *out_len bytes owned by d, valid
 * until the next call (d keeps that buffer up to 64 KiB; a bigger one goes
 * at the next message that fits in less). NF_ENOMEM. */
int nf_deflater_message(nf_deflater *d, const uint8_t *in, size_t len, const uint8_t **out, size_t *out_len);

#endif
