/* utf8.c - see utf8.h. The byte ranges are RFC 3629's table (section 4).
 *
 * In the middle of a character the state holds the continuation bytes
 * still due (bits 0-7) and the range the next one must be in (bits 8-15
 * low, 16-23 high): the first continuation of E0, ED, F0 and F4 is
 * narrower, which refuses overlong forms, surrogates and code points past
 * U+10FFFF. ASCII goes 16 bytes per step: text is mostly ASCII, and this
 * runs over every byte of every text message. */
#include "utf8.h"

#include <string.h>

uint32_t nf_utf8_step(uint32_t st, const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n && st != NF_UTF8_BAD) {
        if (st == NF_UTF8_OK) {
            for (; i + 16 <= n; i += 16) {
                uint64_t a, b;
                memcpy(&a, s + i, 8);
                memcpy(&b, s + i + 8, 8);
                if ((a | b) & 0x8080808080808080ull)
                    break;
            }
            if (i == n)
                break;
            uint8_t c = s[i++];
            if (c < 0x80)
                continue;
            if (c < 0xC2 || c > 0xF4)
                st = NF_UTF8_BAD;
            else if (c < 0xE0)
                st = 1u | 0x80u << 8 | 0xBFu << 16;
            else if (c < 0xF0)
                st = 2u | (c == 0xE0 ? 0xA0u : 0x80u) << 8 | (c == 0xED ? 0x9Fu : 0xBFu) << 16;
            else
                st = 3u | (c == 0xF0 ? 0x90u : 0x80u) << 8 | (c == 0xF4 ? 0x8Fu : 0xBFu) << 16;
        } else {
            uint8_t c = s[i++];
            if (c < ((st >> 8) & 0xff) || c > ((st >> 16) & 0xff)) {
                st = NF_UTF8_BAD;
            } else {
                st = (st & 0xff) - 1;
                if (st)
                    st |= 0x80u << 8 | 0xBFu << 16;
            }
        }
    }
    return st;
}

bool nf_utf8_valid(const uint8_t *s, size_t len)
{
    return nf_utf8_step(NF_UTF8_OK, s, len) == NF_UTF8_OK;
}
