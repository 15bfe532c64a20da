/* test_deflate.c - host/ws/deflate.c: the permessage-deflate negotiation
 * (RFC 7692 5, 7), the bounded inflater and the deflater, and utf8.c. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "test.h"
#include "deflate.h"
#include "errors.h"
#include "utf8.h"

static int offer(const char *s, bool allow_ctx, nf_deflate_params *p)
{
    return nf_deflate_offer(s, strlen(s), allow_ctx, p);
}

static void test_offers(void)
{
    nf_deflate_params p;
    char ans[NF_DEFLATE_ANSWER_MAX];

    /* What Chromium and ws send. */
    CHECK(offer("permessage-deflate; client_max_window_bits", false, &p) == 0);
    CHECK(p.server_no_context_takeover && p.client_no_context_takeover);
    CHECK(p.server_max_window_bits == 15 && p.client_max_window_bits == 15);
    nf_deflate_answer(&p, ans, sizeof ans);
    CHECK(strcmp(ans, "permessage-deflate; server_no_context_takeover; client_no_context_takeover") == 0);

    /* The client keeps its context when allowed and not asked otherwise. */
    CHECK(offer("permessage-deflate", true, &p) == 0);
    CHECK(p.server_no_context_takeover && !p.client_no_context_takeover);
    nf_deflate_answer(&p, ans, sizeof ans);
    CHECK(strcmp(ans, "permessage-deflate; server_no_context_takeover") == 0);
    CHECK(offer("permessage-deflate; client_no_context_takeover", true, &p) == 0 && p.client_no_context_takeover);

    /* Windows: the server's is answered (7.1.2.1), quoted values read. */
    CHECK(offer("permessage-deflate; server_max_window_bits=10; client_max_window_bits=\"9\"", false, &p) == 0);
    CHECK(p.server_max_window_bits == 10 && p.client_max_window_bits == 9);
    nf_deflate_answer(&p, ans, sizeof ans);
    CHECK(strcmp(ans, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                      "server_max_window_bits=10") == 0);
    CHECK(offer("permessage-deflate; server_max_window_bits=15", false, &p) == 0 && p.server_max_window_bits == 15);
    nf_deflate_answer(&p, ans, sizeof ans);
    CHECK(strcmp(ans, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                      "server_max_window_bits=15") == 0);
    CHECK(offer("  PerMessage-Deflate ;server_no_context_takeover ; client_max_window_bits = 8 ", false, &p) == 0);
    CHECK(p.client_max_window_bits == 8);

    /* Other extensions: not ours. */
    CHECK(offer("x-webkit-deflate-frame", false, &p) == NF_ENOENT);
    CHECK(offer("permessage-deflatex", false, &p) == NF_ENOENT);
    CHECK(offer("", false, &p) == NF_ENOENT);

    /* Declined (7): unknown, repeated, valued flags, bad windows, 8 for us. */
    const char *declined[] = {
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=1x",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate; =10",
        "permessage-deflate;",
    };
    for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++) {
        int rc = offer(declined[i], false, &p);
        if (rc != NF_EINVAL)
            fprintf(stderr, "not declined: %s\n", declined[i]);
        CHECK(rc == NF_EINVAL);
    }
}

/* Compresses like a client would: raw deflate, sync flush, tail removed. */
static size_t client_deflate(const uint8_t *in, size_t len, int bits, uint8_t *out, size_t cap)
{
    z_stream z = { 0 };
    deflateInit2(&z, 9, Z_DEFLATED, -bits, 9, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_SYNC_FLUSH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n - 4;   /* the 00 00 ff ff tail */
}

static void test_round_trip(void)
{
    nf_deflater *d = nf_deflater_new(15);
    nf_inflater *z = nf_inflater_new(15);
    const char *text = "{\"user\":\"ann\",\"text\":\"hello hello hello hello hello hello hello\"}";
    const uint8_t *c;
    size_t clen, olen;
    uint8_t *o;

    CHECK(d && z);
    /* Twice: each message stands alone (no context takeover). */
    for (int round = 0; round < 2; round++) {
        CHECK(nf_deflater_message(d, (const uint8_t *)text, strlen(text), &c, &clen) == 0);
        CHECK(clen < strlen(text));
        CHECK(clen < 4 || memcmp(c + clen - 4, "\x00\x00\xff\xff", 4) != 0);   /* tail removed */
        uint8_t copy[256];
        memcpy(copy, c, clen);
        nf_inflater *fresh = nf_inflater_new(15);
        CHECK(nf_inflater_message(fresh, copy, clen, 1000, false, &o, &olen) == 0);
        CHECK_MEM(o, olen, text, strlen(text));
        free(o);
        nf_inflater_free(fresh);
        CHECK(nf_inflater_message(z, copy, clen, 1000, false, &o, &olen) == 0);
        CHECK_MEM(o, olen, text, strlen(text));
        free(o);
    }
    /* Exactly at the bound passes; one byte less refuses. */
    CHECK(nf_deflater_message(d, (const uint8_t *)text, strlen(text), &c, &clen) == 0);
    CHECK(nf_inflater_message(z, c, clen, strlen(text), false, &o, &olen) == 0 && olen == strlen(text));
    free(o);
    CHECK(nf_inflater_message(z, c, clen, strlen(text) - 1, false, &o, &olen) == NF_ENOBUFS && o == NULL);
    /* Empty message (7.2.3.6: a single 0x00 byte). */
    CHECK(nf_deflater_message(d, (const uint8_t *)"", 0, &c, &clen) == 0);
    CHECK(nf_inflater_message(z, c, clen, 10, false, &o, &olen) == 0 && olen == 0 && o == NULL);
    CHECK(nf_inflater_message(z, (const uint8_t *)"\x00", 1, 10, false, &o, &olen) == 0 && olen == 0);
    nf_deflater_free(d);
    nf_inflater_free(z);
}

/* Context takeover: the second message refers back to the first. */
static void test_client_context(void)
{
    const char *m = "the same sentence, said twice over, compresses into a reference";
    uint8_t out[512];
    z_stream c = { 0 };
    deflateInit2(&c, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
    size_t lens[2];
    uint8_t *starts[2];
    uint8_t *p = out;
    for (int i = 0; i < 2; i++) {
        c.next_in = (Bytef *)m;
        c.avail_in = (uInt)strlen(m);
        c.next_out = p;
        c.avail_out = (uInt)(out + sizeof out - p);
        deflate(&c, Z_SYNC_FLUSH);
        starts[i] = p;
        lens[i] = (size_t)(c.next_out - p) - 4;
        p = c.next_out;
    }
    deflateEnd(&c);
    CHECK(lens[1] < lens[0] / 2);
    nf_inflater *z = nf_inflater_new(15);
    uint8_t *o;
    size_t olen;
    CHECK(nf_inflater_message(z, starts[0], lens[0], 1000, true, &o, &olen) == 0);
    CHECK_MEM(o, olen, m, strlen(m));
    free(o);
    CHECK(nf_inflater_message(z, starts[1], lens[1], 1000, true, &o, &olen) == 0);
    CHECK_MEM(o, olen, m, strlen(m));
    free(o);
    /* Without the context the reference points at nothing. */
    CHECK(nf_inflater_message(z, starts[1], lens[1], 1000, false, &o, &olen) == NF_EPROTO);
    nf_inflater_free(z);
}

/* A bomb: 10 MB of zeros in ~10 KB; the inflater stops at the bound. */
static void test_bomb(void)
{
    size_t big = 10u << 20;
    uint8_t *zeros = calloc(1, big);
    uint8_t *comp = malloc(64 << 10);
    size_t clen = client_deflate(zeros, big, 15, comp, 64 << 10);
    CHECK(clen < 12 << 10);
    nf_inflater *z = nf_inflater_new(15);
    uint8_t *o;
    size_t olen;
    CHECK(nf_inflater_message(z, comp, clen, 1u << 20, false, &o, &olen) == NF_ENOBUFS && o == NULL);
    /* Reusable afterwards (the shared inflater is). */
    CHECK(nf_inflater_message(z, comp, clen, big, false, &o, &olen) == 0 && olen == big);
    CHECK(o && memcmp(o, zeros, big) == 0);
    free(o);
    nf_inflater_free(z);
    free(zeros);
    free(comp);
}

static void test_invalid(void)
{
    nf_inflater *z = nf_inflater_new(15);
    uint8_t *o;
    size_t olen;
    /* BTYPE 11 is reserved. */
    CHECK(nf_inflater_message(z, (const uint8_t *)"\xff\xff\xff", 3, 100, false, &o, &olen) == NF_EPROTO);
    /* A stored block whose NLEN is not LEN's complement. */
    CHECK(nf_inflater_message(z, (const uint8_t *)"\x00\x05\x00\x05\x00hello", 10, 100, false, &o, &olen) ==
          NF_EPROTO);
    /* A distance past the start of the output. */
    uint8_t buf[64];
    size_t n = client_deflate((const uint8_t *)"abcabcabcabcabcabc", 18, 15, buf, sizeof buf);
    CHECK(n > 0);
    /* A final block (BFINAL=1) is fine; what follows is ignored. */
    z_stream c = { 0 };
    deflateInit2(&c, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    c.next_in = (Bytef *)"final";
    c.avail_in = 5;
    c.next_out = buf;
    c.avail_out = sizeof buf;
    deflate(&c, Z_FINISH);
    size_t fl = sizeof buf - c.avail_out;
    deflateEnd(&c);
    CHECK(nf_inflater_message(z, buf, fl, 100, true, &o, &olen) == 0);
    CHECK_MEM(o, olen, "final", 5);
    free(o);
    nf_inflater_free(z);
}

static void test_utf8(void)
{
    CHECK(nf_utf8_valid((const uint8_t *)"", 0));
    CHECK(nf_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    CHECK(!nf_utf8_valid((const uint8_t *)"\xc0\xaf", 2));            /* overlong */
    CHECK(!nf_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));        /* overlong */
    CHECK(!nf_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));        /* surrogate */
    CHECK(!nf_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));    /* > U+10FFFF */
    CHECK(!nf_utf8_valid((const uint8_t *)"\xe2\x82", 2));            /* cut short */
    CHECK(!nf_utf8_valid((const uint8_t *)"\x80", 1));
    CHECK(!nf_utf8_valid((const uint8_t *)"\xf5\x80\x80\x80", 4));
    CHECK(nf_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));     /* U+10FFFF */
    CHECK(nf_utf8_valid((const uint8_t *)"\xed\x9f\xbf", 3));         /* U+D7FF */
}

int main(void)
{
    test_offers();
    test_round_trip();
    test_client_context();
    test_bomb();
    test_invalid();
    test_utf8();
    return TEST_REPORT();
}
