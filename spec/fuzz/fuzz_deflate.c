/* fuzz_deflate.c - libFuzzer target for permessage-deflate (host/ws/deflate.c).
 *
 * Input: byte 0 selects the mode (low two bits), byte 1 is a parameter, the
 * rest is the data.
 *   offer (0):   the data is one Sec-WebSocket-Extensions element. Accepted,
 *                the agreement is in range and its answer, read back as an
 *                offer, is accepted with the same server window.
 *   inflate (1): the data is a compressed message from a client; byte 1 sets
 *                the bound (bits 0-5: 64 << (b % 12) bytes) and keep_context
 *                (bit 7). The output never passes the bound; a failure
 *                returns no buffer; the inflater goes on (the data again).
 *   round (2):   the data is a message; compressed with window 9 + byte 1 % 7
 *                and inflated, it comes back the same, and the compressed
 *                form does not end in the sync tail.
 *   utf8 (3):    nf_utf8_valid agrees with a byte-by-byte decoder. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "errors.h"
#include "utf8.h"

static void fuzz_offer(const uint8_t *d, size_t n)
{
    nf_deflate_params p, q;
    char ans[NF_DEFLATE_ANSWER_MAX];
    if (nf_deflate_offer((const char *)d, n, n & 1, &p) != 0)
        return;
    if (p.server_max_window_bits < NF_DEFLATE_MIN_BITS || p.server_max_window_bits > NF_DEFLATE_MAX_BITS ||
        p.client_max_window_bits < 8 || p.client_max_window_bits > NF_DEFLATE_MAX_BITS || !p.server_no_context_takeover)
        __builtin_trap();
    size_t len = nf_deflate_answer(&p, ans, sizeof ans);
    if (len == 0 || len >= sizeof ans || ans[len] != '\0')
        __builtin_trap();
    if (nf_deflate_offer(ans, len, false, &q) != 0 || q.server_max_window_bits != p.server_max_window_bits)
        __builtin_trap();
}

static void fuzz_inflate(uint8_t param, const uint8_t *d, size_t n)
{
    static nf_inflater *z;
    size_t max = (size_t)64 << ((param & 0x3f) % 12);
    bool keep = param & 0x80;
    if (z == NULL && (z = nf_inflater_new(15)) == NULL)
        return;
    for (int round = 0; round < 2; round++) {
        uint8_t *out;
        size_t len;
        int rc = nf_inflater_message(z, d, n, max, keep, &out, &len);
        if (rc == 0 && (len > max || (len == 0) != (out == NULL)))
            __builtin_trap();
        if (rc != 0 && (out != NULL || (rc != NF_ENOBUFS && rc != NF_EPROTO && rc != NF_ENOMEM)))
            __builtin_trap();
        free(out);
    }
}

static void fuzz_round(uint8_t param, const uint8_t *d, size_t n)
{
    static nf_deflater *defl[16];
    static nf_inflater *z;
    unsigned bits = 9 + param % 7;
    if (defl[bits] == NULL && (defl[bits] = nf_deflater_new(bits)) == NULL)
        return;
    if (z == NULL && (z = nf_inflater_new(15)) == NULL)
        return;
    const uint8_t *c;
    size_t clen;
    if (nf_deflater_message(defl[bits], d, n, &c, &clen) != 0)
        return;
    if (clen >= 4 && memcmp(c + clen - 4, "\x00\x00\xff\xff", 4) == 0)
        __builtin_trap();
    uint8_t *copy = malloc(clen ? clen : 1), *out;
    size_t len;
    if (copy == NULL)
        return;
    memcpy(copy, c, clen);
    if (nf_inflater_message(z, copy, clen, n, false, &out, &len) != 0 || len != n || (n && memcmp(out, d, n) != 0))
        __builtin_trap();
    free(out);
    free(copy);
}

/* The reference: RFC 3629's definition, decoded to code points. */
static bool utf8_reference(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || i + len > n)
            return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *d = data + 2;
    size_t n = size - 2;
    switch (data[0] & 3) {
    case 0: fuzz_offer(d, n); break;
    case 1: fuzz_inflate(data[1], d, n); break;
    case 2: fuzz_round(data[1], d, n); break;
    default:
        if (nf_utf8_valid(d, n) != utf8_reference(d, n))
            __builtin_trap();
        break;
    }
    return 0;
}
