/* codec.h - the neffos message codec (docs/protocol.md §5).
 *
 * Pure: bytes in, struct out, and back. No sockets, no allocation: parsed
 * fields are slices into the caller's frame, or into a caller-supplied
 * scratch buffer when a field had to be unescaped.
 *
 * A message frame is seven fields joined by ';':
 *     wait ; namespace ; room ; event ; isError ; isNoOp ; body
 * Fields 1-3 escape ';' as "@%!semicolon@%!". Field 0 and the body are
 * never escaped; the body is everything after the sixth ';'. */
#ifndef NF_CODEC_H
#define NF_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

#define NF_ESCAPED_SEMICOLON "@%!semicolon@%!"
#define NF_ESCAPED_SEMICOLON_LEN 15

/* System event names, exactly as they travel on the wire (docs/protocol.md §7.1). */
#define NF_ON_NAMESPACE_CONNECT    "_OnNamespaceConnect"
#define NF_ON_NAMESPACE_CONNECTED  "_OnNamespaceConnected"
#define NF_ON_NAMESPACE_DISCONNECT "_OnNamespaceDisconnect"
#define NF_ON_ROOM_JOIN            "_OnRoomJoin"
#define NF_ON_ROOM_JOINED          "_OnRoomJoined"
#define NF_ON_ROOM_LEAVE           "_OnRoomLeave"
#define NF_ON_ROOM_LEFT            "_OnRoomLeft"
#define NF_ON_ANY_EVENT            "_OnAnyEvent"
#define NF_ON_NATIVE_MESSAGE       "_OnNativeMessage"

/* Error texts that the protocol gives a meaning to (docs/protocol.md §9). */
#define NF_ERR_BAD_NAMESPACE "bad namespace"
#define NF_ERR_BAD_ROOM      "bad room"
#define NF_ERR_WRITE         "write closed"

typedef struct nf_msg {
    nf_slice wait;       /* ask/reply token, echoed byte for byte */
    nf_slice ns;         /* unescaped namespace */
    nf_slice room;       /* unescaped room, empty = namespace-wide */
    nf_slice event;      /* unescaped event name */
    nf_slice body;       /* payload, or the error text when is_error */
    bool is_error;       /* field 4 is exactly "1" */
    bool is_noop;        /* field 5 is exactly "1" */
    bool binary;         /* came in (or goes out) as a binary frame: the opcode,
                            not part of the seven fields; parse sets it false */
} nf_msg;

typedef enum nf_parse_result {
    NF_PARSE_OK = 0,
    NF_PARSE_EMPTY,         /* zero-length frame: ignored by every peer */
    NF_PARSE_NOT_MESSAGE,   /* fewer than six ';': invalid, or native if allowed */
    NF_PARSE_SCRATCH_SMALL  /* scratch buffer too small (a caller bug) */
} nf_parse_result;

/* Parses one frame. When a field contains the escape sequence its unescaped
 * form is written to scratch, which needs at most `len` bytes; otherwise
 * slices point into `frame`. The returned slices live as long as both. */
nf_parse_result nf_msg_parse(const char *frame, size_t len,
                             char *scratch, size_t scratch_cap, nf_msg *out);

/* Exact number of bytes nf_msg_serialize() will write. */
size_t nf_msg_serialized_len(const nf_msg *m);

/* Writes the seven-field form of m into out (nf_msg_serialized_len bytes)
 * and returns the number of bytes written. Escapes ';' in ns/room/event. */
size_t nf_msg_serialize(const nf_msg *m, char *out);

/* Bytes of the empty reply "<token>;;;;;;" (docs/protocol.md §5.7). */
static inline size_t nf_empty_reply_len(nf_slice token) { return token.len + 6; }
size_t nf_empty_reply_serialize(nf_slice token, char *out);

#endif
