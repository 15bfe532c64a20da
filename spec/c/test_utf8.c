/* test_utf8.c - the project's one UTF-8 checker (host/base/utf8.h), used by
 * the WebSocket layer fragment by fragment and by the ID rules whole: RFC
 * 3629's refusals, and the streaming property ws.c relies on: a message cut
 * anywhere, fed piece by piece, gets the verdict it gets whole. */
#include <stdint.h>
#include <string.h>

#include "test.h"
#include "utf8.h"

static const struct { const char *s; size_t n; int ok; } cases[] = {
    { "", 0, 1 },
    { "plain ASCII, longer than sixteen bytes", 38, 1 },
    { "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, 1 },
    { "\xf4\x8f\xbf\xbf", 4, 1 },             /* U+10FFFF */
    { "\xed\x9f\xbf", 3, 1 },                 /* U+D7FF */
    { "\xc0\xaf", 2, 0 },                     /* overlong */
    { "\xe0\x80\xaf", 3, 0 },                 /* overlong */
    { "\xf0\x80\x80\xaf", 4, 0 },             /* overlong */
    { "\xed\xa0\x80", 3, 0 },                 /* surrogate */
    { "\xf4\x90\x80\x80", 4, 0 },             /* > U+10FFFF */
    { "\xf5\x80\x80\x80", 4, 0 },
    { "\xe2\x82", 2, 0 },                     /* cut short */
    { "\x80", 1, 0 },                         /* a lone continuation */
    { "sixteen ASCII by\xff", 17, 0 },        /* the bad byte right after a 16-byte step */
    { "\xc3\xa9\xc3", 3, 0 },
};

int main(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const uint8_t *s = (const uint8_t *)cases[k].s;
        size_t n = cases[k].n;
        CHECK(nf_utf8_valid(s, n) == (bool)cases[k].ok);
        /* Cut in two at every position, and fed a byte at a time. */
        for (size_t cut = 0; cut <= n; cut++) {
            uint32_t st = nf_utf8_step(NF_UTF8_OK, s, cut);
            st = nf_utf8_step(st, s + cut, n - cut);
            CHECK((st == NF_UTF8_OK) == (bool)cases[k].ok);
        }
        uint32_t st = NF_UTF8_OK;
        for (size_t i = 0; i < n; i++)
            st = nf_utf8_step(st, s + i, 1);
        CHECK((st == NF_UTF8_OK) == (bool)cases[k].ok);
    }
    /* A bad byte is final: nothing after it makes the message good. */
    uint32_t st = nf_utf8_step(NF_UTF8_OK, (const uint8_t *)"\xff", 1);
    CHECK(st == NF_UTF8_BAD);
    CHECK(nf_utf8_step(st, (const uint8_t *)"abc", 3) == NF_UTF8_BAD);
    /* In the middle of a character the state is neither OK nor BAD. */
    st = nf_utf8_step(NF_UTF8_OK, (const uint8_t *)"\xf0\x9f", 2);
    CHECK(st != NF_UTF8_OK && st != NF_UTF8_BAD);
    CHECK(nf_utf8_step(st, (const uint8_t *)"\x98\x80", 2) == NF_UTF8_OK);
    return TEST_REPORT();
}
