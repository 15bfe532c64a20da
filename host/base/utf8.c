/* utf8.c - see utf8.h. The byte ranges are RFC 3629's table (section 4). */
#include "utf8.h"

/* The length of the sequence at s (whose first byte is not ASCII), or 0
 * when it is not well-formed. */
static size_t sequence(const uint8_t *s, size_t left)
{
    uint8_t b = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (b >= 0xc2 && b <= 0xdf)
        n = 2;
    else if (b >= 0xe0 && b <= 0xef)
        n = 3, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;   /* overlong; surrogates */
    else if (b >= 0xf0 && b <= 0xf4)
        n = 4, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;   /* overlong; > U+10FFFF */
    else
        return 0;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

bool nf_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = sequence(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}
