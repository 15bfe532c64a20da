/* nf_wsframe.c - see nf_wsframe.h. */
#include "nf_wsframe.h"

#include <string.h>

size_t nf_ws_client_header(uint8_t *out, unsigned opcode, uint64_t len, uint32_t mask_key)
{
    size_t n;
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)(0x80 | len);
        n = 2;
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    /* The key goes on the wire in memory order; nf_ws_mask uses the same
     * order, so the host's endianness never matters. */
    memcpy(out + n, &mask_key, 4);
    return n + 4;
}

void nf_ws_mask(uint8_t *buf, size_t len, uint32_t mask_key, size_t offset)
{
    uint8_t key[4];
    memcpy(key, &mask_key, 4);
    size_t i = 0;
    /* Rotate the key so that buf[0] lines up with key[offset % 4]. */
    uint8_t rk[8];
    for (int k = 0; k < 8; k++)
        rk[k] = key[(offset + (size_t)k) & 3];
    uint64_t wide;
    memcpy(&wide, rk, 8);
    /* memcpy in and out: unaligned-safe, and compilers turn it into plain
     * 64-bit loads and stores. */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, buf + i, 8);
        w ^= wide;
        memcpy(buf + i, &w, 8);
    }
    for (; i < len; i++)
        buf[i] ^= rk[i & 7];
}

nf_ws_hdr_result nf_ws_parse_header(const uint8_t *p, size_t n, nf_ws_header *h)
{
    if (n < 2)
        return NF_WS_HDR_SHORT;
    h->fin = (p[0] & 0x80) != 0;
    h->rsv = (p[0] >> 4) & 0x07;
    h->opcode = p[0] & 0x0f;
    h->masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 0x7f;
    size_t off = 2;
    if (len == 126) {
        if (n < 4)
            return NF_WS_HDR_SHORT;
        len = ((uint64_t)p[2] << 8) | p[3];
        off = 4;
    } else if (len == 127) {
        if (n < 10)
            return NF_WS_HDR_SHORT;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        off = 10;
        if (len >> 63)
            return NF_WS_HDR_BAD;   /* RFC 6455 5.2: the top bit must be 0 */
    }
    if ((h->opcode & 0x8) && (len > 125 || !h->fin))
        return NF_WS_HDR_BAD;       /* control frames: short and unfragmented */
    h->mask_key = 0;
    if (h->masked) {
        if (n < off + 4)
            return NF_WS_HDR_SHORT;
        memcpy(&h->mask_key, p + off, 4);
        off += 4;
    }
    h->payload_len = len;
    h->header_len = off;
    return NF_WS_HDR_OK;
}
