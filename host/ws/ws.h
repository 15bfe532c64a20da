/* ws.h - one server-side WebSocket connection (RFC 6455) on a bufferevent.
 *
 * Knows nothing of neffos. The socket (sock.h, the transport seam) is read
 * into one contiguous input buffer per connection, as much as it holds;
 * frames are parsed there (RFC 6455 5.2: masking, reserved bits, opcodes,
 * control frames, UTF-8 fail-fast, close codes, message size), and a message
 * in one frame is handed over from that buffer, so its payload is copied
 * once (socket to buffer). A fragmented message is assembled in a buffer of
 * its own that grows with the bytes that arrived (at most twice the
 * payload, never past max_message_bytes). Idle connections hold no input
 * buffer.
 *
 * Everything queued for the peer counts against one output bound: data
 * frames, shared frames, pongs and close frames. While the
 * output is over it, input is left unparsed (see nf_ws_read), so a peer
 * that sends pings faster than it reads cannot grow it.
 *
 * Outgoing data frames are written
 * directly into the bufferevent's output: a 2-10 byte header followed by the
 * payload, serialized in place. A shared frame (broadcast) is queued by
 * reference instead, 16 bytes per receiver, in order with the rest; the
 * owner writes the lot with one writev per loop iteration
 * (nf_ws_output_peek / nf_ws_output_drain), never the bufferevent itself.
 *
 * Ownership: the caller owns the bufferevent (nf_ws_free leaves it open);
 * a shared frame is freed with its last reference. Errors: 0 or an NF_E*
 * code (errors.h), as said per function. */
#ifndef NF_WS_H
#define NF_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct evbuffer;
struct iovec;
struct nf_sock;
struct nf_deflate_params;

typedef struct nf_ws nf_ws;

typedef struct nf_ws_callbacks {
    /* A complete data message. `data` is valid only during the call. */
    void (*on_message)(void *ud, bool binary, const uint8_t *data, size_t len);
    /* Any frame arrived (data or control): for read timeouts. */
    void (*on_activity)(void *ud);
    /* Bytes were appended to the output (a data frame, a pong, a close):
     * the owner flushes them, once per loop iteration. */
    void (*on_output)(void *ud);
    /* A pong arrived (RFC 6455 5.5.3); NULL to ignore pongs. */
    void (*on_pong)(void *ud, const uint8_t *payload, size_t len);
} nf_ws_callbacks;

/* A frame shared by many connections: refcounted, freed with the last ref. */
typedef struct nf_shared_frame nf_shared_frame;

/* max_message_bytes: the largest data message accepted, after reassembly
 * (larger: close 1009, RFC 6455 7.4.1). max_output_bytes: while more than
 * this is queued for the peer (nf_ws_queued_bytes), input is not parsed;
 * 0 = no bound. */
nf_ws *nf_ws_new(struct bufferevent *bev, size_t max_message_bytes, size_t max_output_bytes,
                 const nf_ws_callbacks *cb, void *ud);
void nf_ws_free(nf_ws *ws);

/* Frees the input buffers pooled for the next reads (64 KiB each, up to
 * 64 of them): for when memory should go back, and as a thread ends (the
 * pool is per thread: each worker of --workers N has its own). */
void nf_ws_pool_trim(void);

/* Reads from the socket (nf_ws_set_sock; without one, only what is in the
 * bufferevent's input, which is taken first: bytes read before the upgrade)
 * and parses what arrived. Returns 0 while the connection goes on; NF_EOF
 * when it is finished (close handshake done, RFC 6455 7.1.1, or a protocol
 * error answered with a close frame): flush the output, then close;
 * NF_EPIPE when the peer ended the stream or the socket failed: tear it
 * down; NF_ENOMEM when memory ran out; NF_EIO if the bufferevent's input
 * could not be moved. Parsing stops before the next frame
 * once the output is over max_output_bytes (it passes it by at most the
 * answers to one frame: a pong, a close): the rest of the input waits,
 * unread and unparsed (nf_ws_input_pending), and the owner should stop
 * watching the socket until the output drains, then call again. */
int nf_ws_read(nf_ws *ws);

/* The socket nf_ws_read reads (kept by the caller; NULL: none). */
void nf_ws_set_sock(nf_ws *ws, struct nf_sock *sock);

/* True if input is buffered and not yet parsed (left while the output was
 * over its bound): the next nf_ws_read parses it even if the socket has
 * nothing new. */
bool nf_ws_input_pending(const nf_ws *ws);

/* Bytes queued for the peer and not yet written to the socket: the
 * bufferevent's output and the frames held behind a ping barrier
 * (nf_ws_hold_output). */
size_t nf_ws_queued_bytes(const nf_ws *ws);

/* Bytes queued for the socket and not yet written: what is queued but
 * not held (nf_ws_queued_bytes without the held and wslay's frames). */
size_t nf_ws_unwritten_bytes(const nf_ws *ws);

/* The next unwritten bytes, in order, as up to max extents (max >= 1) for
 * writev(2); returns how many were filled (0: nothing to write). They stay
 * valid until the output changes. nf_ws_output_drain then drops the n
 * bytes that were written from the front. */
int nf_ws_output_peek(nf_ws *ws, struct iovec *iov, int max);
void nf_ws_output_drain(nf_ws *ws, size_t n);

/* True once a close frame was queued or received. */
bool nf_ws_is_closing(const nf_ws *ws);
/* The status code the peer sent (1005 if none), or 1006 if it sent none yet. */
uint16_t nf_ws_peer_close_code(const nf_ws *ws);

/* Writes the frame header for a payload of len bytes into hdr (>= 10 bytes);
 * returns its size. */
size_t nf_ws_frame_header(uint8_t *hdr, bool binary, size_t len);

/* Sends one data frame (RFC 6455 5.6) whose payload of len bytes is
 * produced by fill() straight into the output buffer. Returns 0; NF_EPIPE
 * once a close frame was queued or received; NF_ENOMEM. nf_ws_send copies
 * data. */
int nf_ws_send_with(nf_ws *ws, bool binary, size_t len,
                    void (*fill)(void *ctx, char *dst), void *ctx);
int nf_ws_send(nf_ws *ws, bool binary, const void *data, size_t len);

/* Turns permessage-deflate on, as negotiated (deflate.h, RFC 7692): a
 * message whose first frame has RSV1 is inflated, bounded by
 * max_message_bytes (over it: close 1009; not deflate data, or inflated
 * text not UTF-8: 1007; RSV1 on a control or continuation frame: 1002);
 * data messages of min_bytes or more are sent compressed, shared frames
 * compressed once per window size. Call before the first nf_ws_read.
 * Returns 0 or NF_ENOMEM. */
int nf_ws_set_deflate(nf_ws *ws, const struct nf_deflate_params *p, size_t min_bytes);
/* The compressors and the inflater connections share are per thread (an
 * event loop's), made when first needed: a thread that ran connections and
 * ends calls this to free its own (the main thread need not: they stay
 * reachable). */
void nf_ws_deflate_thread_free(void);

/* Sends a ping (RFC 6455 5.5.2) with payload (<= 125 bytes) straight into
 * the output, in order with the data frames. Returns 0; NF_EPIPE if closing;
 * NF_EINVAL for a payload over 125 bytes; NF_ENOMEM. */
int nf_ws_ping(nf_ws *ws, const void *payload, size_t len);

/* Appends every frame from now on (data, pongs, close) to `held` instead of
 * the bufferevent's output, until called again with NULL. The owner moves
 * held bytes to the output when it wants them written. */
void nf_ws_hold_output(nf_ws *ws, struct evbuffer *held);

/* The close status codes the server sends (RFC 6455 7.4.1). */
enum {
    NF_WS_CLOSE_NORMAL = 1000,       /* the purpose is fulfilled (a refused handshake) */
    NF_WS_CLOSE_GOING_AWAY = 1001,   /* shutdown, endpoint removed, read timeout */
    NF_WS_CLOSE_POLICY = 1008,       /* a limit or the protocol was broken */
    NF_WS_CLOSE_INTERNAL = 1011      /* the server failed (out of memory) */
};

/* Queues a close frame (code, reason <= 123 bytes). */
void nf_ws_close(nf_ws *ws, uint16_t code, const char *reason, size_t reason_len);

/* Shared frames: build once, send to many. nf_shared_frame_new returns NULL
 * only when out of memory; nf_ws_send_shared takes a reference and returns
 * 0, NF_EPIPE if closing, or NF_ENOMEM (no reference taken). The
 * references are counted without atomics: a frame is built, queued and
 * released on one thread (--workers N: a broadcast crosses workers as its
 * fields, exchange_workers.c, and each worker builds its own frame). */
nf_shared_frame *nf_shared_frame_new(bool binary, size_t payload_len,
                                     void (*fill)(void *ctx, char *dst), void *ctx);
void nf_shared_frame_release(nf_shared_frame *f);
int nf_ws_send_shared(nf_ws *ws, nf_shared_frame *f);
size_t nf_shared_frame_size(const nf_shared_frame *f);

#endif
