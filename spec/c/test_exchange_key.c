/* test_exchange_key.c - connection IDs in NATS subjects and bus markers
 * (host/cluster/exchange_key.h, docs/protocol.md §17.2.5): the encoding is the documented one,
 * one-to-one, leaves Go-style IDs alone, and its output is always a legal
 * NATS subject token with no ';'. */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "exchange_key.h"
#include "test.h"

static void encodes_as(const char *id, size_t len, const char *want)
{
    char out[256], back[256];
    nf_slice s = nf_slice_of(id, len);
    size_t n = nf_key_encode(s, out);
    CHECK(n == nf_key_encoded_len(s));
    CHECK_MEM(out, n, want, strlen(want));
    CHECK(nf_key_is_plain(s) == (n == len && memcmp(out, id, len) == 0));
    long m = nf_key_decode(nf_slice_of(out, n), back);
    CHECK(m == (long)len && memcmp(back, id, len) == 0);
}

#define ENC(id, want) encodes_as(id, sizeof id - 1, want)

static void documented(void)
{
    ENC("bob smith", "bob%20smith");
    ENC("alice@example.com", "alice@example%2Ecom");
    ENC("zo\xc3\xab", "zo%C3%AB");
    ENC("2d1f0c6e-8a1b-4c1e-9d5e-0a0b0c0d0e0f", "2d1f0c6e-8a1b-4c1e-9d5e-0a0b0c0d0e0f");   /* Go's UUIDs */
    ENC("a.b*c>d;e%f", "a%2Eb%2Ac%3Ed%3Be%25f");
    ENC("\t\n\r\x7f", "%09%0A%0D%7F");
    ENC("nul\0byte", "nul%00byte");
    ENC("?[]{}()!~#$&'+,/:=@^_`|\"\\", "?[]{}()!~#$&'+,/:=@^_`|\"\\");    /* legal in a token */
    ENC("", "");
}

/* Every byte, alone and in company: round trip, and the output is one legal
 * NATS token (no '.', '*', '>', white space, control or non-ASCII) without ';'. */
static void every_byte(void)
{
    for (int c = 0; c < 256; c++) {
        char id[3] = { 'x', (char)c, 'y' }, out[16], back[16];
        size_t n = nf_key_encode(nf_slice_of(id, 3), out);
        bool legal = true;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)out[i];
            if (ch <= 0x20 || ch >= 0x7F || ch == '.' || ch == '*' || ch == '>' || ch == ';')
                legal = false;
        }
        CHECK(legal);
        CHECK(nf_key_decode(nf_slice_of(out, n), back) == 3 && memcmp(back, id, 3) == 0);
    }
}

/* Only what encoding writes decodes: one subject per ID, never two. */
static void one_to_one(void)
{
    char out[64];
    CHECK(nf_key_decode(NF_SLICE("a%2eb"), out) == NF_EINVAL);      /* lower-case hex */
    CHECK(nf_key_decode(NF_SLICE("%41"), out) == NF_EINVAL);        /* 'A' needs no encoding */
    CHECK(nf_key_decode(NF_SLICE("a%2"), out) == NF_EINVAL);        /* cut short */
    CHECK(nf_key_decode(NF_SLICE("a%"), out) == NF_EINVAL);
    CHECK(nf_key_decode(NF_SLICE("a%G0"), out) == NF_EINVAL);
    CHECK(nf_key_decode(NF_SLICE("a b"), out) == NF_EINVAL);        /* a raw byte that must be encoded */
    CHECK(nf_key_decode(NF_SLICE("a.b"), out) == NF_EINVAL);
    /* In place. */
    char buf[] = "x%20y%25";
    CHECK(nf_key_decode(nf_slice_of(buf, strlen(buf)), buf) == 4 && memcmp(buf, "x y%", 4) == 0);
}

int main(void)
{
    documented();
    every_byte();
    one_to_one();
    return TEST_REPORT();
}
