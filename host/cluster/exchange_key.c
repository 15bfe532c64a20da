/* exchange_key.c - see exchange_key.h. */
#include "exchange_key.h"

#include "errors.h"

#include <string.h>

static const char HEX[] = "0123456789ABCDEF";

static bool must_encode(unsigned char ch)
{
    return ch <= 0x20 || ch >= 0x7F || ch == '%' || ch == '.' || ch == '*' || ch == '>' || ch == ';';
}

size_t nf_key_encoded_len(nf_slice id)
{
    size_t n = id.len;
    for (size_t i = 0; i < id.len; i++)
        if (must_encode((unsigned char)id.ptr[i]))
            n += 2;
    return n;
}

size_t nf_key_encode(nf_slice id, char *out)
{
    char *p = out;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char ch = (unsigned char)id.ptr[i];
        if (must_encode(ch)) {
            *p++ = '%';
            *p++ = HEX[ch >> 4];
            *p++ = HEX[ch & 15];
        } else {
            *p++ = (char)ch;
        }
    }
    return (size_t)(p - out);
}

/* Upper-case only: "%2e" is not what any node writes, and accepting it would
 * give one ID two subjects. */
static int hex_value(char c)
{
    const char *at = c ? strchr(HEX, c) : NULL;
    return at ? (int)(at - HEX) : -1;
}

long nf_key_decode(nf_slice in, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char ch = (unsigned char)in.ptr[i];
        if (ch == '%') {
            if (in.len - i < 3)
                return NF_EINVAL;
            int h = hex_value(in.ptr[i + 1]), l = hex_value(in.ptr[i + 2]);
            if (h < 0 || l < 0)
                return NF_EINVAL;
            unsigned char v = (unsigned char)(h << 4 | l);
            if (!must_encode(v))
                return NF_EINVAL;      /* "%41" for "A": not what encoding writes */
            out[n++] = (char)v;
            i += 2;
        } else if (must_encode(ch)) {
            return NF_EINVAL;
        } else {
            out[n++] = (char)ch;
        }
    }
    return (long)n;
}

bool nf_key_is_plain(nf_slice id) { return nf_key_encoded_len(id) == id.len; }
