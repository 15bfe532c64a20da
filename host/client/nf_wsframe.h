/* nf_wsframe.h - RFC 6455 framing as a client needs it: pure functions,
 * no I/O. The client writes frames straight into its output buffer with
 * these (header, then payload, then masked in place) and parses the
 * server's frames in place from its input buffer. */
#ifndef NF_WSFRAME_H
#define NF_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    NF_WS_CONT = 0x0, NF_WS_TEXT = 0x1, NF_WS_BINARY = 0x2,
    NF_WS_CLOSE = 0x8, NF_WS_PING = 0x9, NF_WS_PONG = 0xA
};

/* Longest client frame header: 2 + 8 (64-bit length) + 4 (mask key). */
#define NF_WS_MAX_CLIENT_HEADER 14

/* Writes a FIN frame header with the mask bit and key for a payload of len
 * bytes; returns its size (6, 8 or 14). */
size_t nf_ws_client_header(uint8_t *out, unsigned opcode, uint64_t len, uint32_t mask_key);

/* XORs buf with the 4-byte key, where buf[0] is payload byte `offset`.
 * Eight bytes at a time: this runs over every byte the client sends. */
void nf_ws_mask(uint8_t *buf, size_t len, uint32_t mask_key, size_t offset);

typedef struct nf_ws_header {
    bool fin;
    unsigned opcode;
    unsigned rsv;           /* RSV1-3 bits; nonzero without an extension = error */
    bool masked;
    uint32_t mask_key;
    uint64_t payload_len;
    size_t header_len;
} nf_ws_header;

typedef enum {
    NF_WS_HDR_OK = 0,
    NF_WS_HDR_SHORT,        /* need more bytes */
    NF_WS_HDR_BAD           /* 64-bit length with the top bit, or non-minimal control */
} nf_ws_hdr_result;

/* Parses a frame header from [p, p+n). */
nf_ws_hdr_result nf_ws_parse_header(const uint8_t *p, size_t n, nf_ws_header *h);

#endif
