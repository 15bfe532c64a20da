/* ws.c - see ws.h. */
#include "ws.h"

#include "clock.h"
#include "deflate.h"
#include "errors.h"
#include "log.h"
#include "poison.h"
#include "sock.h"
#include "utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <wslay/wslay.h>

/* The input: one contiguous buffer per connection that the socket is read
 * into, as much as it has (not a fixed slice per loop iteration). Frames
 * are parsed, unmasked and UTF-8-checked in place, and a message sent as one
 * frame (every neffos client does) is handed to on_message from there: its
 * payload is copied once, by the kernel. Only the fragments of a fragmented
 * message are copied, into ws->msg. wslay's parser copied every payload
 * through a 4 KiB buffer and checked UTF-8 a byte at a time; at 64 KiB it
 * was half of the server's time, so frames are parsed here.
 *
 * An idle connection holds no input buffer: an empty one goes back to a
 * small pool (buffers of IN_CHUNK bytes) or is freed. A frame larger than
 * the buffer grows it, doubling as its bytes arrive (memory follows the
 * bytes that came, not the length announced: at most twice them), never
 * past the largest frame allowed. Copies beyond the kernel's: a frame that
 * straddles the end of the buffer is moved to its front once, and the bytes
 * of a frame larger than the buffer move with it when it grows. */
#define IN_CHUNK (64 * 1024)      /* the size of a pooled input buffer */
#define IN_POOL_MAX 64            /* pooled buffers kept for the next reads */
#define IN_READS_MAX 4            /* socket reads per nf_ws_read: others get their turn */
#define WS_MAX_HEADER 14          /* bytes of a frame header: 2 + 8 (length) + 4 (mask) */
#define WS_MAX_CONTROL 125        /* payload of a control frame (RFC 6455 5.5) */

enum {   /* opcodes, RFC 6455 5.2 */
    OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xA
};
enum {   /* close codes the parser answers with, RFC 6455 7.4.1 */
    CLOSE_NO_STATUS = 1005, CLOSE_ABNORMAL = 1006, CLOSE_PROTOCOL = 1002, CLOSE_BAD_DATA = 1007,
    CLOSE_TOO_BIG = 1009
};

typedef struct in_pool {
    uint8_t *bufs[IN_POOL_MAX];
    size_t n;
} in_pool;

/* Per thread: each worker (--workers N) pools its own buffers. */
static _Thread_local in_pool pool;

/* One entry of a connection's output queue (see "the output queue" below):
 * a shared frame, or a run of `owned` bytes at the front of the
 * bufferevent's output. 16 bytes: what a queued broadcast delivery costs. */
typedef struct out_ent {
    nf_shared_frame *frame;   /* NULL: an owned run */
    size_t owned;
} out_ent;

struct nf_ws {
    struct bufferevent *bev;
    struct evbuffer *held;    /* frames go here instead of the output, or NULL */
    nf_sock *sock;            /* where input is read from, or NULL: only the bufferevent's input */
    nf_ws_callbacks cb;
    void *ud;
    size_t max_message_bytes;
    size_t max_output_bytes;  /* input waits while more than this is queued; 0 = no bound */
    /* The input buffer: bytes in[start..end) are unparsed. */
    uint8_t *in;
    size_t in_start, in_end, in_cap;
    /* The frame at in + in_start, once its header is complete. */
    bool have_hdr;
    bool fin;
    uint8_t opcode;
    bool rsv1;                /* RSV1: the message this frame begins is compressed (RFC 7692 6) */
    uint8_t mask[4];
    uint8_t hdr_len;
    uint64_t payload_len;
    uint64_t payload_done;    /* bytes of it already unmasked and checked */
    /* The data message. */
    bool in_message;          /* a fragmented message is open */
    bool msg_text;
    bool msg_compressed;      /* RSV1 on its first frame: inflated when whole, UTF-8 checked then */
    uint32_t utf8;            /* UTF-8 check state across the message's bytes */
    uint8_t *msg;             /* the fragments so far (fragmented messages only) */
    size_t msg_len, msg_cap;
    /* The close handshake (RFC 6455 7.1). */
    bool closing;             /* close_sent or close_received: no more data frames go out */
    bool close_sent;
    bool close_received;
    bool read_shut;           /* nothing more is parsed: close received or the peer failed */
    uint16_t peer_code;
    /* The output queue: a ring of out_ent, freed whenever it empties. */
    struct evbuffer *out; /* the bufferevent's output (kept: a broadcast reads it per receiver) */
    out_ent *q;
    uint32_t q_head, q_len, q_cap;
    size_t q_owned;       /* bytes of the output covered by owned runs */
    size_t q_shared;      /* bytes of queued shared frames not yet written */
    size_t head_off;      /* bytes of the first entry's frame already written */
    struct ws_deflate *pmd;   /* permessage-deflate, or NULL (the end of this file) */
};

struct nf_shared_frame {
    unsigned refs;        /* one thread's (ws.h) */
    size_t len;
    /* The same message compressed, per server window size, made for the
     * first receiver that wants it (see shared_deflated). */
    struct nf_shared_frame *deflated[NF_DEFLATE_MAX_BITS - NF_DEFLATE_MIN_BITS + 1];
    char bytes[];
};

/* Unmasks n payload bytes at p, the first being byte `off` of the payload
 * (RFC 6455 5.3): word by word once in phase with the mask. */
static void unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
    size_t i = 0;
    for (; i < n && ((off + i) & 3); i++)
        p[i] ^= mask[(off + i) & 3];
    uint32_t m32;
    memcpy(&m32, mask, 4);
    uint64_t m64 = (uint64_t)m32 << 32 | m32;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= m64;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= mask[(off + i) & 3];
}

/* ---- output helpers used by the receive side ------------------------------- */

/* Where frames are appended: the bufferevent's output, or the owner's hold. */
static struct evbuffer *out_of(nf_ws *ws)
{
    return ws->held ? ws->held : bufferevent_get_output(ws->bev);
}

static void output_added(nf_ws *ws)
{
    if (ws->cb.on_output)
        ws->cb.on_output(ws->ud);
}

static bool output_over(const nf_ws *ws)
{
    return ws->max_output_bytes && nf_ws_queued_bytes(ws) > ws->max_output_bytes;
}

/* A control frame (<= 125 bytes of payload) to the output, in order. */
static int write_control(nf_ws *ws, uint8_t opcode, const uint8_t *payload, size_t len)
{
    uint8_t frame[2 + WS_MAX_CONTROL];
    frame[0] = 0x80 | opcode;   /* FIN; server frames are unmasked */
    frame[1] = (uint8_t)len;
    if (len)
        memcpy(frame + 2, payload, len);
    if (evbuffer_add(out_of(ws), frame, 2 + len) != 0)
        return NF_ENOMEM;
    output_added(ws);
    return 0;
}

/* Our close frame (RFC 6455 5.5.1): the code (none for 1005) and a reason
 * of at most 123 bytes. Once only. */
static int send_close(nf_ws *ws, uint16_t code, const uint8_t *reason, size_t reason_len)
{
    uint8_t payload[WS_MAX_CONTROL];
    size_t len = 0;
    if (ws->close_sent)
        return 0;
    ws->close_sent = ws->closing = true;
    if (code != CLOSE_NO_STATUS) {
        if (reason_len > WS_MAX_CONTROL - 2)
            reason_len = WS_MAX_CONTROL - 2;
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        if (reason_len)
            memcpy(payload + 2, reason, reason_len);
        len = 2 + reason_len;
    }
    return write_control(ws, OP_CLOSE, payload, len);
}

/* ---- the input buffer ------------------------------------------------------- */

static void in_discard(nf_ws *ws)
{
    ws->in_start = ws->in_end = 0;
    ws->have_hdr = false;
}

/* Gives an empty input buffer back: to the pool if it has the pool's size. */
static void in_release_if_empty(nf_ws *ws)
{
    if (ws->in == NULL || ws->in_start != ws->in_end)
        return;
    if (ws->in_cap == IN_CHUNK && pool.n < IN_POOL_MAX) {
        pool.bufs[pool.n++] = ws->in;
        NF_POISON(ws->in, IN_CHUNK);   /* a read of a freed connection's input still shows under ASan */
    } else {
        free(ws->in);
    }
    ws->in = NULL;
    ws->in_start = ws->in_end = ws->in_cap = 0;
}

void nf_ws_pool_trim(void)
{
    while (pool.n > 0) {
        NF_UNPOISON(pool.bufs[pool.n - 1], IN_CHUNK);
        free(pool.bufs[--pool.n]);
    }
}

/* Bytes from in + in_start the frame being parsed needs in all (header and
 * payload), as far as its header says yet. */
static uint64_t in_frame_need(const nf_ws *ws)
{
    return ws->have_hdr ? ws->hdr_len + ws->payload_len : WS_MAX_HEADER;
}

/* Makes room after in_end for at least one byte: takes a buffer, moves the
 * unparsed frame to the front when the rest of the buffer cannot hold it
 * (each frame is moved at most once), or grows the buffer (doubling, never
 * past the frame) when that frame is larger than all of it. */
static int in_reserve(nf_ws *ws)
{
    if (ws->in == NULL) {
        if (pool.n) {
            ws->in = pool.bufs[--pool.n];
            NF_UNPOISON(ws->in, IN_CHUNK);
        } else {
            ws->in = malloc(IN_CHUNK);
        }
        if (ws->in == NULL)
            return NF_ENOMEM;
        ws->in_cap = IN_CHUNK;
        ws->in_start = ws->in_end = 0;
    }
    if (ws->in_start == ws->in_end)
        ws->in_start = ws->in_end = 0;
    uint64_t need = in_frame_need(ws);
    if (ws->in_start > 0 && (ws->in_end == ws->in_cap || ws->in_cap - ws->in_start < need)) {
        memmove(ws->in, ws->in + ws->in_start, ws->in_end - ws->in_start);
        ws->in_end -= ws->in_start;
        ws->in_start = 0;
    }
    if (ws->in_end < ws->in_cap)
        return 0;
    if (need <= ws->in_cap)
        return NF_EIO;   /* full of whole frames: parse them first (never happens) */
    /* The buffer is full of the frame's first bytes (need > in_cap): twice
     * that, so the frames after it fit too, never more than the largest
     * frame allowed. */
    size_t cap = ws->in_cap * 2, most = ws->max_message_bytes + WS_MAX_HEADER;
    if (cap > most)
        cap = most > need ? most : (size_t)need;
    uint8_t *p = realloc(ws->in, cap);
    if (p == NULL)
        return NF_ENOMEM;
    ws->in = p;
    ws->in_cap = cap;
    return 0;
}

/* ---- the parser (RFC 6455 5.2) --------------------------------------------- */

/* Fails the connection (RFC 6455 7.1.7): our close frame with the code,
 * nothing more parsed, nothing of the open message delivered. */
static void fail(nf_ws *ws, uint16_t code)
{
    send_close(ws, code, NULL, 0);
    ws->read_shut = true;
}

static bool close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006) ||
           (code >= 3000 && code <= 4999);
}

/* Reads the frame header at p (n bytes there). Returns its length once
 * whole, 0 while bytes are missing, or the negative close code that refuses
 * it: bad bits, opcodes and lengths are refused as soon as the byte that
 * shows them is there. */
static int parse_header(nf_ws *ws, const uint8_t *p, size_t n)
{
    unsigned op = p[0] & 0x0f, len7 = p[1] & 0x7f;
    bool fin = p[0] & 0x80, control = op & 0x08;
    bool rsv1 = p[0] & 0x40;
    /* RSV1-3: no extension but permessage-deflate, whose RSV1 marks a
     * compressed message on its first frame only (RFC 6455 5.2; RFC 7692 6:
     * never on a control frame nor a continuation). */
    if ((p[0] & 0x30) || (rsv1 && (!ws->pmd || control || op == OP_CONT)))
        return -CLOSE_PROTOCOL;
    if (!(op <= OP_BINARY || op == OP_CLOSE || op == OP_PING || op == OP_PONG))
        return -CLOSE_PROTOCOL;
    if (!(p[1] & 0x80))   /* a client masks every frame (5.1) */
        return -CLOSE_PROTOCOL;
    if (control && (len7 > WS_MAX_CONTROL || !fin))   /* 5.5 */
        return -CLOSE_PROTOCOL;
    if (op == OP_CLOSE && len7 == 1)   /* a close payload is empty or has a code (5.5.1) */
        return -CLOSE_PROTOCOL;
    if (op == OP_CONT && !ws->in_message)   /* 5.4 */
        return -CLOSE_PROTOCOL;
    if ((op == OP_TEXT || op == OP_BINARY) && ws->in_message)
        return -CLOSE_PROTOCOL;
    unsigned ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (n < 2 + ext)
        return 0;
    uint64_t len = len7;
    if (ext) {
        len = 0;
        for (unsigned i = 0; i < ext; i++)
            len = len << 8 | p[2 + i];
        /* The minimal encoding, and the top bit clear (5.2). */
        if ((ext == 2 && len < 126) || (ext == 8 && (len >> 63 || len <= 0xFFFF)))
            return -CLOSE_PROTOCOL;
    }
    /* A data message announcing more than the maximum, in one frame or as
     * the sum of its fragments: refused now, not when its bytes came. */
    if (!control && len > ws->max_message_bytes - (op == OP_CONT ? ws->msg_len : 0))
        return -CLOSE_TOO_BIG;
    if (n < 2 + ext + 4)
        return 0;
    ws->opcode = (uint8_t)op;
    ws->rsv1 = rsv1;
    ws->fin = fin;
    ws->payload_len = len;
    memcpy(ws->mask, p + 2 + ext, 4);
    return (int)(2 + ext + 4);
}

/* The capacity for `need` bytes of a fragmented message: doubling, so that
 * a message sent in tiny fragments costs a few reallocations and at most
 * twice its payload; never more than the maximum, nor more than the
 * message's last frame will fill. */
static size_t msg_grow_to(const nf_ws *ws, size_t need)
{
    size_t cap = ws->msg_cap > need / 2 ? ws->msg_cap * 2 : need;
    if (cap > ws->max_message_bytes)
        cap = ws->max_message_bytes;
    return cap < need ? need : cap;
}

static void msg_reset(nf_ws *ws)
{
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_len = ws->msg_cap = 0;
    ws->in_message = false;
}

static int deliver_inflated(nf_ws *ws, const uint8_t *data, size_t len);

/* A whole message: handed over, inflated first if it is compressed.
 * Returns 0 or NF_ENOMEM. */
static int deliver(nf_ws *ws, const uint8_t *data, size_t len)
{
    if (ws->msg_compressed)
        return deliver_inflated(ws, data, len);
    ws->cb.on_message(ws->ud, !ws->msg_text, len ? data : (const uint8_t *)"", len);
    return 0;
}

/* A whole data frame, payload unmasked and checked. */
static int data_frame(nf_ws *ws, const uint8_t *payload, size_t len)
{
    if (ws->fin && !ws->in_message)   /* a message in one frame: from the input buffer */
        return deliver(ws, payload, len);
    size_t need = ws->msg_len + len;
    if (need > ws->msg_cap) {
        size_t cap = msg_grow_to(ws, need);
        uint8_t *p = realloc(ws->msg, cap);
        if (p == NULL)
            return NF_ENOMEM;
        ws->msg = p;
        ws->msg_cap = cap;
    }
    if (len)
        memcpy(ws->msg + ws->msg_len, payload, len);
    ws->msg_len = need;
    ws->in_message = !ws->fin;
    if (ws->fin) {
        int rc = deliver(ws, ws->msg, ws->msg_len);
        msg_reset(ws);
        return rc;
    }
    return 0;
}

/* A whole control frame (RFC 6455 5.5). */
static int control_frame(nf_ws *ws, const uint8_t *payload, size_t len)
{
    switch (ws->opcode) {
    case OP_PING:
        return ws->close_sent ? 0 : write_control(ws, OP_PONG, payload, len);   /* 5.5.3 */
    case OP_PONG:
        if (ws->cb.on_pong)
            ws->cb.on_pong(ws->ud, payload, len);
        return 0;
    default: {   /* OP_CLOSE: answered with the peer's code (5.5.1), then nothing more is read */
        uint16_t code = len >= 2 ? (uint16_t)(payload[0] << 8 | payload[1]) : CLOSE_NO_STATUS;
        if (len >= 2 && !close_code_valid(code)) {
            fail(ws, CLOSE_PROTOCOL);
            return 0;
        }
        if (len > 2 && !nf_utf8_valid(payload + 2, len - 2)) {
            fail(ws, CLOSE_BAD_DATA);
            return 0;
        }
        ws->peer_code = code;
        ws->close_received = ws->closing = true;
        ws->read_shut = true;
        return send_close(ws, code, NULL, 0);
    }
    }
}

/* Unmasks and checks the payload bytes of the current frame that arrived
 * since the last call: a text message is refused (1007) at its first bad
 * byte, not when it is whole. */
static void payload_arrived(nf_ws *ws, uint8_t *payload, size_t have)
{
    if (have <= ws->payload_done)
        return;
    uint8_t *p = payload + ws->payload_done;
    size_t n = have - (size_t)ws->payload_done;
    unmask(p, n, ws->mask, ws->payload_done);
    ws->payload_done = have;
    if (!(ws->opcode & 0x08) && ws->msg_text && !ws->msg_compressed) {
        ws->utf8 = nf_utf8_step(ws->utf8, p, n);
        if (ws->utf8 == NF_UTF8_BAD)
            fail(ws, CLOSE_BAD_DATA);
    }
}

/* Parses the frames in the input buffer until one is incomplete, the
 * connection fails or closes, or the output passes its bound (the frames
 * left could only add to it: pongs, replies). Returns 0 or NF_ENOMEM. */
static int parse(nf_ws *ws)
{
    while (!ws->read_shut && ws->in_start < ws->in_end) {
        uint8_t *p = ws->in + ws->in_start;
        size_t avail = ws->in_end - ws->in_start;
        if (!ws->have_hdr) {
            if (output_over(ws))
                return 0;
            if (avail < 2)
                return 0;
            int h = parse_header(ws, p, avail);
            if (h < 0) {
                fail(ws, (uint16_t)-h);
                return 0;
            }
            if (h == 0)
                return 0;
            ws->have_hdr = true;
            ws->hdr_len = (uint8_t)h;
            ws->payload_done = 0;
            if (ws->opcode == OP_TEXT || ws->opcode == OP_BINARY) {
                ws->msg_text = ws->opcode == OP_TEXT;
                ws->msg_compressed = ws->rsv1;
                ws->utf8 = NF_UTF8_OK;
            }
            if (ws->cb.on_activity)
                ws->cb.on_activity(ws->ud);
        }
        size_t have = avail - ws->hdr_len;
        if (have > ws->payload_len)
            have = (size_t)ws->payload_len;
        payload_arrived(ws, p + ws->hdr_len, have);
        if (ws->read_shut || have < ws->payload_len)
            return 0;
        /* The frame is whole. */
        bool last = ws->fin && !(ws->opcode & 0x08);
        if (last && ws->msg_text && !ws->msg_compressed && ws->utf8 != NF_UTF8_OK) {
            fail(ws, CLOSE_BAD_DATA);   /* the message ends inside a character */
            return 0;
        }
        ws->have_hdr = false;
        ws->in_start += ws->hdr_len + have;
        int rc = ws->opcode & 0x08 ? control_frame(ws, p + ws->hdr_len, have)
                                   : data_frame(ws, p + ws->hdr_len, have);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- the connection -------------------------------------------------------- */

/* Moves what the bufferevent read before the WebSocket began (frames right
 * behind the upgrade request; all input in tests and fuzzing) to the input
 * buffer, a bufferful at a time, parsing each. */
static int in_take_bufferevent(nf_ws *ws)
{
    struct evbuffer *src = bufferevent_get_input(ws->bev);
    size_t n;
    while (!ws->read_shut && !output_over(ws) && (n = evbuffer_get_length(src)) > 0) {
        int rc = in_reserve(ws);
        if (rc != 0)
            return rc;
        size_t room = ws->in_cap - ws->in_end;
        int got = evbuffer_remove(src, ws->in + ws->in_end, n < room ? n : room);
        if (got <= 0)
            return NF_EIO;
        ws->in_end += (size_t)got;
        if ((rc = parse(ws)) != 0)
            return rc;
    }
    return 0;
}

nf_ws *nf_ws_new(struct bufferevent *bev, size_t max_message_bytes, size_t max_output_bytes,
                 const nf_ws_callbacks *cb, void *ud)
{
    nf_ws *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return NULL;
    ws->max_message_bytes = max_message_bytes;
    ws->max_output_bytes = max_output_bytes;
    ws->bev = bev;
    ws->out = bufferevent_get_output(bev);
    ws->cb = *cb;
    ws->ud = ud;
    ws->peer_code = CLOSE_ABNORMAL;
    return ws;
}

void nf_ws_set_sock(nf_ws *ws, nf_sock *sock) { ws->sock = sock; }

static void queue_clear(nf_ws *ws);
static void ws_deflate_free(struct ws_deflate *pmd);

void nf_ws_free(nf_ws *ws)
{
    if (ws) {
        in_discard(ws);
        in_release_if_empty(ws);
        queue_clear(ws);
        free(ws->msg);
        ws_deflate_free(ws->pmd);
        free(ws);
    }
}

/* Reads the socket into the input buffer and parses, at most IN_READS_MAX
 * times while each read fills the room it had (more may wait). */
static int read_socket(nf_ws *ws)
{
    for (int i = 0; i < IN_READS_MAX && !ws->read_shut && !output_over(ws); i++) {
        int rc = in_reserve(ws);
        if (rc != 0)
            return rc;
        size_t room = ws->in_cap - ws->in_end;
        ssize_t n = nf_sock_read(ws->sock, ws->in + ws->in_end, room);
        if (n == NF_EAGAIN)
            return 0;
        if (n <= 0)
            return NF_EPIPE;   /* the peer ended the stream, or the socket failed */
        ws->in_end += (size_t)n;
        if ((rc = parse(ws)) != 0)
            return rc;
        if ((size_t)n < room)
            return 0;   /* the socket had no more */
    }
    return 0;
}

/* After the end (close received, or failed) the peer's bytes are read and
 * dropped: left in the socket, they would make it readable forever. */
static int read_socket_discard(nf_ws *ws)
{
    uint8_t sink[4096];
    for (int i = 0; i < IN_READS_MAX; i++) {
        ssize_t n = nf_sock_read(ws->sock, sink, sizeof sink);
        if (n == NF_EAGAIN)
            return 0;
        if (n <= 0)
            return NF_EPIPE;
        if ((size_t)n < sizeof sink)
            return 0;
    }
    return 0;
}

int nf_ws_read(nf_ws *ws)
{
    int rc = 0;
    if (ws->read_shut && ws->sock)
        rc = read_socket_discard(ws);
    if (!ws->read_shut) {
        rc = parse(ws);   /* what waited while the output was over its bound */
        if (rc == 0)
            rc = in_take_bufferevent(ws);
        if (rc == 0 && ws->sock)
            rc = read_socket(ws);
    }
    /* Once nothing more is parsed (close received, the connection failed,
     * the stream ended), whatever else the peer sent is discarded, never
     * buffered. */
    if (ws->read_shut || rc != 0) {
        struct evbuffer *src = bufferevent_get_input(ws->bev);
        evbuffer_drain(src, evbuffer_get_length(src));
        in_discard(ws);
    }
    in_release_if_empty(ws);
    if (rc != 0)
        return rc;
    /* Done when the close handshake is complete or a failure was answered
     * with our close frame. */
    return ws->read_shut && ws->close_sent ? NF_EOF : 0;
}

bool nf_ws_input_pending(const nf_ws *ws)
{
    return ws->in_start < ws->in_end || evbuffer_get_length(bufferevent_get_input(ws->bev)) > 0;
}

bool nf_ws_is_closing(const nf_ws *ws) { return ws->closing; }

size_t nf_ws_queued_bytes(const nf_ws *ws)
{
    size_t n = nf_ws_unwritten_bytes(ws);
    if (ws->held)
        n += evbuffer_get_length(ws->held);   /* frames behind a ping barrier */
    return n;
}

uint16_t nf_ws_peer_close_code(const nf_ws *ws) { return ws->peer_code; }

size_t nf_ws_frame_header(uint8_t *hdr, bool binary, size_t len)
{
    hdr[0] = 0x80 | (binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME);   /* FIN + opcode */
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static bool deflates(const nf_ws *ws, size_t len);
static int send_deflated(nf_ws *ws, bool binary, size_t len, void (*fill)(void *ctx, char *dst), void *ctx);

int nf_ws_send_with(nf_ws *ws, bool binary, size_t len, void (*fill)(void *ctx, char *dst), void *ctx)
{
    struct evbuffer *out = out_of(ws);
    struct evbuffer_iovec vec;
    uint8_t hdr[10];
    size_t hlen;

    if (ws->closing)
        return NF_EPIPE;
    if (ws->pmd && deflates(ws, len))
        return send_deflated(ws, binary, len, fill, ctx);
    hlen = nf_ws_frame_header(hdr, binary, len);
    if (evbuffer_reserve_space(out, (ev_ssize_t)(hlen + len), &vec, 1) != 1)
        return NF_ENOMEM;
    memcpy(vec.iov_base, hdr, hlen);
    fill(ctx, (char *)vec.iov_base + hlen);
    vec.iov_len = hlen + len;
    if (evbuffer_commit_space(out, &vec, 1) != 0)
        return NF_ENOMEM;
    output_added(ws);
    return 0;
}

typedef struct bytes_ctx {
    const void *data;
    size_t len;
} bytes_ctx;

static void fill_bytes(void *ctx, char *dst)
{
    bytes_ctx *b = ctx;
    if (b->len)
        memcpy(dst, b->data, b->len);
}

int nf_ws_send(nf_ws *ws, bool binary, const void *data, size_t len)
{
    bytes_ctx b = { data, len };
    return nf_ws_send_with(ws, binary, len, fill_bytes, &b);
}

int nf_ws_ping(nf_ws *ws, const void *payload, size_t len)
{
    uint8_t frame[2 + 125];
    if (ws->closing)
        return NF_EPIPE;
    if (len > 125)
        return NF_EINVAL;
    frame[0] = 0x80 | WSLAY_PING;   /* FIN + opcode; server frames are unmasked */
    frame[1] = (uint8_t)len;
    memcpy(frame + 2, payload, len);
    if (evbuffer_add(out_of(ws), frame, 2 + len) != 0)
        return NF_ENOMEM;
    output_added(ws);
    return 0;
}

void nf_ws_hold_output(nf_ws *ws, struct evbuffer *held) { ws->held = held; }

void nf_ws_close(nf_ws *ws, uint16_t code, const char *reason, size_t reason_len)
{
    if (ws->closing)
        return;
    send_close(ws, code, (const uint8_t *)reason, reason_len);
}

/* ---- the output queue ------------------------------------------------------------
 *
 * libevent 2.1 gives every evbuffer_add_reference a chain of its own, and a
 * chain is at least 1 KiB: a broadcast queued for 10,000 slow receivers
 * cost 10 MB beyond its bytes. So a shared frame is queued here, as a
 * 16-byte entry of a ring, and everything else (replies, pings, wslay's
 * pongs and close frames) stays in the bufferevent's output as before. To
 * keep the order, a shared frame first closes the owned bytes queued since
 * the previous entry into an owned run; owned bytes after the last entry
 * (the tail, usually all of them) need no entry. The owner writes with
 * nf_ws_output_peek + nf_ws_output_drain, never the bufferevent itself. */

#define QUEUE_MIN_CAP 8

static struct evbuffer *output_of(const nf_ws *ws) { return ws->out; }

static out_ent *queue_at(const nf_ws *ws, uint32_t i) { return &ws->q[(ws->q_head + i) & (ws->q_cap - 1)]; }

/* Room for `more` entries: the ring doubles (its capacity a power of two). */
static int queue_reserve(nf_ws *ws, uint32_t more)
{
    if (ws->q_len + more <= ws->q_cap)
        return 0;
    uint32_t cap = ws->q_cap ? ws->q_cap : QUEUE_MIN_CAP;
    while (cap < ws->q_len + more)
        cap *= 2;
    out_ent *q = malloc(cap * sizeof *q);
    if (q == NULL)
        return NF_ENOMEM;
    for (uint32_t i = 0; i < ws->q_len; i++)
        q[i] = *queue_at(ws, i);
    free(ws->q);
    ws->q = q;
    ws->q_cap = cap;
    ws->q_head = 0;
    return 0;
}

static void queue_push(nf_ws *ws, nf_shared_frame *f, size_t owned)
{
    ws->q_len++;
    *queue_at(ws, ws->q_len - 1) = (out_ent){ f, owned };
}

static void queue_pop(nf_ws *ws)
{
    ws->q_head = (ws->q_head + 1) & (ws->q_cap - 1);
    ws->head_off = 0;
    if (--ws->q_len == 0) {   /* drained: the memory goes back */
        free(ws->q);
        ws->q = NULL;
        ws->q_cap = ws->q_head = 0;
    }
}

static void queue_clear(nf_ws *ws)
{
    while (ws->q_len) {
        nf_shared_frame_release(queue_at(ws, 0)->frame);
        queue_pop(ws);
    }
    ws->q_owned = ws->q_shared = 0;
}

/* Owned bytes queued after the last entry. */
static size_t queue_tail(const nf_ws *ws)
{
    size_t len = evbuffer_get_length(output_of(ws));
    return len > ws->q_owned ? len - ws->q_owned : 0;
}

size_t nf_ws_unwritten_bytes(const nf_ws *ws)
{
    return evbuffer_get_length(output_of(ws)) + ws->q_shared;
}

/* Up to max extents covering `len` owned bytes from offset `off` of the
 * output; returns how many were filled, and sets *whole when they cover
 * all len bytes. */
static int peek_owned(nf_ws *ws, size_t off, size_t len, struct iovec *iov, int max, bool *whole)
{
    struct evbuffer *out = output_of(ws);
    struct evbuffer_ptr at;
    struct evbuffer_iovec v[16];
    int want = max < 16 ? max : 16;
    *whole = len == 0;
    if (len == 0 || evbuffer_ptr_set(out, &at, off, EVBUFFER_PTR_SET) != 0)
        return 0;
    int n = evbuffer_peek(out, (ev_ssize_t)len, &at, v, want);
    int got = n < 0 ? 0 : n < want ? n : want;
    size_t sum = 0;
    for (int i = 0; i < got; i++) {
        size_t l = v[i].iov_len;
        if (sum + l > len)
            l = len - sum;   /* the last extent can go past len */
        iov[i] = (struct iovec){ v[i].iov_base, l };
        sum += l;
    }
    *whole = sum == len;
    return got;
}

int nf_ws_output_peek(nf_ws *ws, struct iovec *iov, int max)
{
    int n = 0;
    size_t off = 0;   /* where the next owned run starts in the output */
    bool whole = true;
    for (uint32_t i = 0; i < ws->q_len && n < max && whole; i++) {
        out_ent *e = queue_at(ws, i);
        if (e->frame) {
            size_t skip = i == 0 ? ws->head_off : 0;
            iov[n++] = (struct iovec){ e->frame->bytes + skip, e->frame->len - skip };
        } else {
            n += peek_owned(ws, off, e->owned, iov + n, max - n, &whole);
            off += e->owned;
        }
    }
    if (whole && n < max)
        n += peek_owned(ws, off, queue_tail(ws), iov + n, max - n, &whole);
    return n;
}

/* Drains n bytes from the front of the output, which bufferevents keep
 * frozen except while they write themselves. */
static void drain_owned(nf_ws *ws, size_t n)
{
    struct evbuffer *out = output_of(ws);
    evbuffer_unfreeze(out, 1);
    evbuffer_drain(out, n);
    evbuffer_freeze(out, 1);
}

void nf_ws_output_drain(nf_ws *ws, size_t n)
{
    while (n > 0 && ws->q_len > 0) {
        out_ent *e = queue_at(ws, 0);
        if (e->frame) {
            size_t take = e->frame->len - ws->head_off;
            take = take < n ? take : n;
            ws->head_off += take;
            ws->q_shared -= take;
            n -= take;
            if (ws->head_off < e->frame->len)
                return;
            nf_shared_frame_release(e->frame);
        } else {
            size_t take = e->owned < n ? e->owned : n;
            drain_owned(ws, take);
            e->owned -= take;
            ws->q_owned -= take;
            n -= take;
            if (e->owned > 0)
                return;
        }
        queue_pop(ws);
    }
    if (n > 0)
        drain_owned(ws, n);
}

nf_shared_frame *nf_shared_frame_new(bool binary, size_t payload_len,
                                     void (*fill)(void *ctx, char *dst), void *ctx)
{
    uint8_t hdr[10];
    size_t hlen = nf_ws_frame_header(hdr, binary, payload_len);
    nf_shared_frame *f = malloc(sizeof *f + hlen + payload_len);
    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->len = hlen + payload_len;
    memset(f->deflated, 0, sizeof f->deflated);
    memcpy(f->bytes, hdr, hlen);
    fill(ctx, f->bytes + hlen);
    return f;
}

void nf_shared_frame_release(nf_shared_frame *f)
{
    if (f && --f->refs == 0) {
        for (size_t i = 0; i < sizeof f->deflated / sizeof f->deflated[0]; i++)
            nf_shared_frame_release(f->deflated[i]);
        free(f);
    }
}

static void shared_cleanup(const void *data, size_t len, void *arg)
{
    nf_shared_frame_release(arg);
}

static nf_shared_frame *shared_deflated(nf_ws *ws, nf_shared_frame *f);

int nf_ws_send_shared(nf_ws *ws, nf_shared_frame *f)
{
    if (ws->closing)
        return NF_EPIPE;
    if (ws->pmd && (f = shared_deflated(ws, f)) == NULL)
        return NF_ENOMEM;
    f->refs++;
    if (ws->held) {
        /* Behind a ping barrier (one round trip): held as bytes, like
         * everything else held. */
        if (evbuffer_add_reference(ws->held, f->bytes, f->len, shared_cleanup, f) != 0) {
            f->refs--;
            return NF_ENOMEM;
        }
    } else {
        size_t tail = queue_tail(ws);
        if (queue_reserve(ws, tail ? 2 : 1) != 0) {
            f->refs--;
            return NF_ENOMEM;
        }
        if (tail) {
            queue_push(ws, NULL, tail);
            ws->q_owned += tail;
        }
        queue_push(ws, f, 0);
        ws->q_shared += f->len;
    }
    output_added(ws);
    return 0;
}

size_t nf_shared_frame_size(const nf_shared_frame *f) { return f->len; }

/* ---- permessage-deflate (RFC 7692; deflate.h) --------------------------------- */

/* What a connection agreed to. Our messages are compressed each on its own
 * (server_no_context_takeover, always), so one compressor per window size
 * (and event loop) serves every connection, and a broadcast is compressed
 * once per window size; so is the client's when it gave up its context: one
 * inflater for all. Only a client that keeps its context has an inflater of its own,
 * from its first compressed message on. */
struct ws_deflate {
    nf_deflate_params p;
    size_t min_bytes;     /* shorter messages go uncompressed */
    nf_inflater *ctx;     /* client context takeover: this client's window */
};

/* Per thread: an event loop's own (a compressor is not shared across
 * threads); nf_ws_deflate_thread_free gives them back. */
static _Thread_local nf_deflater *deflaters[NF_DEFLATE_MAX_BITS + 1];   /* by window bits, made when first used */
static _Thread_local nf_inflater *shared_inflater;

static nf_deflater *deflater_for(unsigned bits)
{
    if (deflaters[bits] == NULL)
        deflaters[bits] = nf_deflater_new(bits);
    return deflaters[bits];
}

int nf_ws_set_deflate(nf_ws *ws, const nf_deflate_params *p, size_t min_bytes)
{
    struct ws_deflate *pmd = calloc(1, sizeof *pmd);
    if (pmd == NULL)
        return NF_ENOMEM;
    pmd->p = *p;
    pmd->min_bytes = min_bytes;
    ws_deflate_free(ws->pmd);
    ws->pmd = pmd;   /* parse_header lets RSV1 through from now on */
    return 0;
}

void nf_ws_deflate_thread_free(void)
{
    for (size_t i = 0; i < sizeof deflaters / sizeof deflaters[0]; i++) {
        nf_deflater_free(deflaters[i]);
        deflaters[i] = NULL;
    }
    nf_inflater_free(shared_inflater);
    shared_inflater = NULL;
}

static void ws_deflate_free(struct ws_deflate *pmd)
{
    if (pmd) {
        nf_inflater_free(pmd->ctx);
        free(pmd);
    }
}

#define REFUSED_LOG_EVERY_MS 1000

/* A refused compressed message is logged, at most one line a second per
 * thread (a flood of bombs cannot flood the log); the ones left out are
 * counted in the next line, and every one in neffos_deflate_refused_total. */
static void log_refused(const nf_ws *ws, uint16_t code)
{
    static _Thread_local uint64_t logged_ms, left_out;
    static _Thread_local bool ever;
    uint64_t now = nf_now_ms();
    if (ever && now - logged_ms < REFUSED_LOG_EVERY_MS) {
        left_out++;
        return;
    }
    const char *why = code == CLOSE_TOO_BIG ? "it inflates past --max-message-bytes"
                      : ws->msg_text        ? "not deflate data, or text that is not UTF-8"
                                            : "not deflate data";
    if (left_out)
        nf_warn("permessage-deflate: a compressed message refused with close %u: %s (and %llu more not "
                "logged before this one)", code, why, (unsigned long long)left_out);
    else
        nf_warn("permessage-deflate: a compressed message refused with close %u: %s", code, why);
    ever = true;
    logged_ms = now;
    left_out = 0;
}

/* A compressed message (RSV1 on its first frame) is whole: its payload
 * (from the input buffer, or ws->msg when it came in fragments) inflated
 * into a buffer that stops growing past max_message_bytes (a bomb is
 * refused with 1009 without being inflated any further), its text checked
 * (the parser cannot check compressed bytes), then delivered. Data that is
 * not deflate is inconsistent with the message: 1007, as for bad UTF-8
 * (RFC 6455 7.4.1). Returns 0 (delivered, or the connection failed) or
 * NF_ENOMEM. */
static int deliver_inflated(nf_ws *ws, const uint8_t *data, size_t len)
{
    struct ws_deflate *pmd = ws->pmd;
    bool keep = !pmd->p.client_no_context_takeover;
    nf_inflater **z = keep ? &pmd->ctx : &shared_inflater;
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = 0;

    if (*z == NULL) {
        /* zlib compresses with 9 bits when asked for 8: inflate with 9. */
        unsigned bits = keep ? pmd->p.client_max_window_bits : NF_DEFLATE_MAX_BITS;
        *z = nf_inflater_new(bits < NF_DEFLATE_MIN_BITS ? NF_DEFLATE_MIN_BITS : bits);
        if (*z == NULL)
            return NF_ENOMEM;
    }
    rc = nf_inflater_message(*z, data, len, ws->max_message_bytes, keep, &out, &out_len);
    if (rc == 0 && ws->msg_text && !nf_utf8_valid(out, out_len))
        rc = NF_EPROTO;
    if (rc == NF_ENOMEM)
        return rc;
    if (rc != 0) {
        uint16_t code = rc == NF_ENOBUFS ? CLOSE_TOO_BIG : CLOSE_BAD_DATA;
        fail(ws, code);
        log_refused(ws, code);
        free(out);
        return 0;
    }
    ws->cb.on_message(ws->ud, !ws->msg_text, out ? out : (const uint8_t *)"", out_len);
    free(out);
    return 0;
}

/* Appends one frame of payload, with RSV1 ("Per-Message Compressed", RFC
 * 7692 6) when it is compressed. */
static int send_frame(nf_ws *ws, bool binary, bool compressed, const uint8_t *payload, size_t len)
{
    uint8_t hdr[10];
    size_t hlen = nf_ws_frame_header(hdr, binary, len);
    struct evbuffer *out = out_of(ws);
    if (compressed)
        hdr[0] |= 0x40;
    if (evbuffer_expand(out, hlen + len) != 0 || evbuffer_add(out, hdr, hlen) != 0 ||
        evbuffer_add(out, payload, len) != 0)
        return NF_ENOMEM;
    output_added(ws);
    return 0;
}

static bool deflates(const nf_ws *ws, size_t len) { return len >= ws->pmd->min_bytes; }

/* nf_ws_send_with for a message at or over the threshold: serialized, then
 * compressed (sent as it is if that did not make it smaller: RSV1 is per
 * message). */
static int send_deflated(nf_ws *ws, bool binary, size_t len, void (*fill)(void *ctx, char *dst), void *ctx)
{
    nf_deflater *d = deflater_for(ws->pmd->p.server_max_window_bits);
    uint8_t *plain = malloc(len ? len : 1);
    const uint8_t *z;
    size_t zlen;
    int rc = d && plain ? 0 : NF_ENOMEM;

    if (rc == 0) {
        fill(ctx, (char *)plain);
        rc = nf_deflater_message(d, plain, len, &z, &zlen);
    }
    if (rc == 0)
        rc = zlen < len ? send_frame(ws, binary, true, z, zlen) : send_frame(ws, binary, false, plain, len);
    free(plain);
    return rc;
}

/* The frame of f that ws gets: f itself while under the threshold, else f
 * compressed with ws's window, made once for every receiver with that
 * window and kept with f. NULL when out of memory. */
static nf_shared_frame *shared_deflated(nf_ws *ws, nf_shared_frame *f)
{
    unsigned len7 = (uint8_t)f->bytes[1] & 0x7f;
    size_t hlen = len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
    size_t plen = f->len - hlen;
    unsigned bits = ws->pmd->p.server_max_window_bits;
    nf_shared_frame **slot = &f->deflated[bits - NF_DEFLATE_MIN_BITS];
    if (!deflates(ws, plen))
        return f;
    if (*slot)
        return *slot;
    nf_deflater *d = deflater_for(bits);
    const uint8_t *z;
    size_t zlen;
    if (d == NULL || nf_deflater_message(d, (const uint8_t *)f->bytes + hlen, plen, &z, &zlen) != 0)
        return NULL;
    uint8_t hdr[10];
    size_t zhlen = nf_ws_frame_header(hdr, (f->bytes[0] & 0x0f) == OP_BINARY, zlen);
    nf_shared_frame *c = malloc(sizeof *c + zhlen + zlen);
    if (c == NULL)
        return NULL;
    hdr[0] |= 0x40;   /* RSV1 */
    c->refs = 1;      /* f's, given back with f */
    c->len = zhlen + zlen;
    memset(c->deflated, 0, sizeof c->deflated);
    memcpy(c->bytes, hdr, zhlen);
    memcpy(c->bytes + zhlen, z, zlen);
    *slot = c;
    return c;
}
