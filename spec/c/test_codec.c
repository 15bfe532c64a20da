/* test_codec.c - the neffos message codec against the protocol vectors.
 *
 * Two parts: explicit cases from docs/protocol.md §5 (edge cases, escaping,
 * flags), and a sweep over every quoted frame in
 * spec/vectors/neffos-protocol-vectors.txt: each one that is a message must survive
 * parse -> serialize byte for byte (canonical frames are what both Go and
 * neffos.js produce). */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "test.h"

static char scratch[1 << 16];

static nf_parse_result parse(const char *s, nf_msg *m)
{
    return nf_msg_parse(s, strlen(s), scratch, sizeof scratch, m);
}

static void roundtrip(const char *frame, size_t len, const char *where)
{
    nf_msg m;
    char out[1 << 16];
    if (nf_msg_parse(frame, len, scratch, sizeof scratch, &m) != NF_PARSE_OK)
        return;
    /* Flags other than "0"/"1" are not canonical: skip those frames. */
    size_t n = nf_msg_serialized_len(&m);
    CHECK(n < sizeof out);
    size_t w = nf_msg_serialize(&m, out);
    CHECK(w == n);
    if (!(w == len && memcmp(out, frame, len) == 0))
        fprintf(stderr, "round trip differs for %s\n", where);
    CHECK(w == len && memcmp(out, frame, len) == 0);
}

static void explicit_cases(void)
{
    nf_msg m;

    CHECK(parse("$123;default;room1;chat;0;0;hello", &m) == NF_PARSE_OK);
    CHECK_STR(m.wait, "$123");
    CHECK_STR(m.ns, "default");
    CHECK_STR(m.room, "room1");
    CHECK_STR(m.event, "chat");
    CHECK_STR(m.body, "hello");
    CHECK(!m.is_error && !m.is_noop);

    CHECK(parse(";default;;chat;0;0;a;b;c", &m) == NF_PARSE_OK);   /* B04/C02: body keeps ';' */
    CHECK_STR(m.body, "a;b;c");
    CHECK(parse(";default;;chat;0;0;body;", &m) == NF_PARSE_OK);
    CHECK_STR(m.body, "body;");
    CHECK(parse(";default;;chat;0;0;body\r\n", &m) == NF_PARSE_OK);
    CHECK_STR(m.body, "body\r\n");

    CHECK(parse(";default;;chat;0;0", &m) == NF_PARSE_NOT_MESSAGE);   /* C04: 5 separators */
    CHECK(parse("hello", &m) == NF_PARSE_NOT_MESSAGE);
    CHECK(parse("M", &m) == NF_PARSE_NOT_MESSAGE);
    CHECK(nf_msg_parse("", 0, scratch, sizeof scratch, &m) == NF_PARSE_EMPTY);

    CHECK(parse(";default;;chat;1;0;not allowed", &m) == NF_PARSE_OK);
    CHECK(m.is_error);
    CHECK_STR(m.body, "not allowed");
    CHECK(parse(";default;;chat;2;0;txt", &m) == NF_PARSE_OK && !m.is_error);     /* only "1" is true */
    CHECK(parse(";default;;chat;true;0;txt", &m) == NF_PARSE_OK && !m.is_error);
    CHECK(parse("$1;ns;;_OnNamespaceConnect;0;1;", &m) == NF_PARSE_OK && m.is_noop);

    CHECK(parse("$123;;;;;;", &m) == NF_PARSE_OK);   /* C11: the empty reply */
    CHECK_STR(m.wait, "$123");
    CHECK(m.ns.len == 0 && m.event.len == 0 && m.body.len == 0);

    /* B03: escaping in fields 1-3 only */
    CHECK(parse(";ns@%!semicolon@%!1;r@%!semicolon@%!1;ev@%!semicolon@%!1;0;0;a;b;c", &m) == NF_PARSE_OK);
    CHECK_STR(m.ns, "ns;1");
    CHECK_STR(m.room, "r;1");
    CHECK_STR(m.event, "ev;1");
    CHECK_STR(m.body, "a;b;c");
    nf_msg out = { .ns = NF_SLICE("ns;1"), .room = NF_SLICE("r;1"), .event = NF_SLICE("ev;1"),
                   .body = NF_SLICE("a;b;c") };
    char buf[256];
    size_t n = nf_msg_serialize(&out, buf);
    const char *want = ";ns@%!semicolon@%!1;r@%!semicolon@%!1;ev@%!semicolon@%!1;0;0;a;b;c";
    CHECK_MEM(buf, n, want, strlen(want));
    CHECK(n == nf_msg_serialized_len(&out));

    /* The escape is not a true escape: the literal text comes out as ';'. */
    CHECK(parse(";a@%!semicolon@%!@%!semicolon@%!b;;e;0;0;", &m) == NF_PARSE_OK);
    CHECK_STR(m.ns, "a;;b");
    CHECK(parse(";@%!semicolon@;;e;0;0;", &m) == NF_PARSE_OK);   /* a partial escape stays */
    CHECK_STR(m.ns, "@%!semicolon@");

    /* Scratch too small for an escaped field is reported, not overrun. */
    char tiny[2];
    CHECK(nf_msg_parse(";a@%!semicolon@%!b;;e;0;0;", 26, tiny, sizeof tiny, &m) == NF_PARSE_SCRATCH_SMALL);

    n = nf_empty_reply_serialize(NF_SLICE("1795310615474625092"), buf);
    CHECK_MEM(buf, n, "1795310615474625092;;;;;;", 25);

    nf_msg err = { .wait = NF_SLICE("$T"), .ns = NF_SLICE("ns"), .event = NF_SLICE("_OnNamespaceConnect"),
                   .is_error = true, .body = NF_SLICE("bad namespace") };
    n = nf_msg_serialize(&err, buf);
    CHECK_MEM(buf, n, "$T;ns;;_OnNamespaceConnect;1;0;bad namespace", 44);

    /* Binary body bytes pass through untouched (B13). */
    const char bin[] = ";default;;bin;0;0;\x01;\xff\x00";
    CHECK(nf_msg_parse(bin, sizeof bin - 1, scratch, sizeof scratch, &m) == NF_PARSE_OK);
    CHECK_MEM(m.body.ptr, m.body.len, "\x01;\xff\x00", 4);
}

/* Decodes the JSON-style literal starting at the opening quote. Returns its
 * length, or -1. \u00XX is one byte (the vectors' notation). */
static long decode_literal(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    if (*p++ != '"')
        return -1;
    while (*p && *p != '"') {
        char ch = *p++;
        if (ch == '\\') {
            char e = *p++;
            if (e == 'r') ch = '\r';
            else if (e == 'n') ch = '\n';
            else if (e == 't') ch = '\t';
            else if (e == 'u') {
                char hex[5] = { p[0], p[1], p[2], p[3], 0 };
                ch = (char)strtol(hex, NULL, 16);
                p += 4;
            } else ch = e;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = ch;
    }
    return *p == '"' ? (long)n : -1;
}

static void vector_sweep(void)
{
    const char *path = getenv("NEFFOS_VECTORS");
    if (path == NULL)
        path = "spec/vectors/neffos-protocol-vectors.txt";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f == NULL) {
        fprintf(stderr, "cannot open vectors file %s\n", path);
        return;
    }
    char line[4096], frame[4096];
    int frames = 0;
    while (fgets(line, sizeof line, f)) {
        /* Vector lines: "B03 [live] ... \"frame\"" in sections B, D, E, F, G. */
        if (!(line[0] >= 'B' && line[0] <= 'H' && line[0] != 'C' && line[1] >= '0' && line[1] <= '9'))
            continue;
        const char *q = strchr(line, '"');
        if (q == NULL)
            continue;
        long n = decode_literal(q, frame, sizeof frame);
        if (n <= 0)
            continue;
        char where[16];
        snprintf(where, sizeof where, "%.4s", line);
        roundtrip(frame, (size_t)n, where);
        frames++;
    }
    fclose(f);
    CHECK(frames >= 30);   /* the sweep really read the file */
    printf("vectors: %d frames checked\n", frames);
}

int main(void)
{
    explicit_cases();
    vector_sweep();
    return TEST_REPORT();
}
