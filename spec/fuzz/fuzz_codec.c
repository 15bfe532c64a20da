/* fuzz_codec.c - libFuzzer target for the neffos message codec (host/codec/codec.c).
 *
 * Input: byte 0 selects the mode (low bit).
 *   parse (0): the rest is a frame. nf_msg_parse must stay inside the frame
 *       and the scratch buffer; a parsed message serializes to exactly
 *       nf_msg_serialized_len bytes, and parsing that gives the same fields.
 *   build (1): byte 1 = flags (bit 0 is_error, bit 1 is_noop), the rest is
 *       wait, namespace, room, event, body separated by NUL bytes (';' in the
 *       wait token becomes ':', the token being the one field that is never
 *       escaped). The message serializes and parses back to the same fields;
 *       so does the empty reply for the token.
 *
 * One ambiguity is the protocol's, not the codec's: the escape sequence
 * "@%!semicolon@%!" begins and ends with "@%!", so a field holding
 * "@%!semicolon" right before a ';' (or the escape sequence itself) cannot
 * survive escaping then unescaping (neffos Go and neffos.js do the same
 * left-to-right replacement). Such fields are excluded from the equality. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static bool has(nf_slice f, const char *needle)
{
    size_t n = strlen(needle);
    if (f.len < n)
        return false;
    for (size_t i = 0; i + n <= f.len; i++)
        if (memcmp(f.ptr + i, needle, n) == 0)
            return true;
    return false;
}

static bool ambiguous(nf_slice f)
{
    return has(f, "@%!semicolon;") || has(f, NF_ESCAPED_SEMICOLON);
}

static bool inside(nf_slice s, const char *base, size_t len)
{
    return s.len == 0 || (s.ptr >= base && s.ptr + s.len <= base + len);
}

static void check_same(const nf_msg *a, const nf_msg *b)
{
    if (!nf_slice_eq(a->wait, b->wait) || !nf_slice_eq(a->body, b->body) || a->is_error != b->is_error ||
        a->is_noop != b->is_noop)
        __builtin_trap();
    if (!ambiguous(a->ns) && !nf_slice_eq(a->ns, b->ns))
        __builtin_trap();
    if (!ambiguous(a->room) && !nf_slice_eq(a->room, b->room))
        __builtin_trap();
    if (!ambiguous(a->event) && !nf_slice_eq(a->event, b->event))
        __builtin_trap();
}

/* Serializes m, parses it back, compares. */
static void roundtrip(const nf_msg *m)
{
    size_t n = nf_msg_serialized_len(m);
    char *buf = malloc(n);
    char *scratch = malloc(n);
    if (!buf || !scratch)
        abort();
    if (nf_msg_serialize(m, buf) != n)
        __builtin_trap();
    nf_msg back;
    if (nf_msg_parse(buf, n, scratch, n, &back) != NF_PARSE_OK)
        __builtin_trap();
    check_same(m, &back);
    free(buf);
    free(scratch);
}

static void parse_mode(const uint8_t *data, size_t size)
{
    /* Exact-size heap copies so ASan catches a read past either end. */
    char *frame = calloc(size ? size : 1, 1);   /* calloc: gcc -O2 sees the size 0 case as unread */
    char *scratch = malloc(size ? size : 1);
    if (!frame || !scratch)
        abort();
    if (size)
        memcpy(frame, data, size);
    nf_msg m;
    nf_parse_result r = nf_msg_parse(frame, size, scratch, size, &m);
    if (r == NF_PARSE_SCRATCH_SMALL)
        __builtin_trap();   /* len bytes of scratch always suffice */
    if (r == NF_PARSE_EMPTY && size != 0)
        __builtin_trap();
    if (r == NF_PARSE_OK) {
        const nf_slice *f[] = { &m.wait, &m.ns, &m.room, &m.event, &m.body };
        for (size_t i = 0; i < 5; i++)
            if (!inside(*f[i], frame, size) && !inside(*f[i], scratch, size))
                __builtin_trap();
        if (memchr(m.wait.ptr, ';', m.wait.len))
            __builtin_trap();
        roundtrip(&m);
    }
    free(frame);
    free(scratch);
}

static void build_mode(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    nf_msg m = { .is_error = data[0] & 1, .is_noop = (data[0] & 2) != 0 };
    size_t rlen = size - 1;
    char *copy = malloc(rlen ? rlen : 1);
    if (!copy)
        abort();
    if (rlen)
        memcpy(copy, data + 1, rlen);
    /* wait, ns, room, event end at the first four NULs; the body is the rest. */
    nf_slice *f[] = { &m.wait, &m.ns, &m.room, &m.event };
    const char *p = copy, *end = copy + rlen;
    for (size_t k = 0; k < 4; k++) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        *f[k] = nf_slice_of(p, (size_t)((z ? z : end) - p));
        p = z ? z + 1 : end;
    }
    m.body = nf_slice_of(p, (size_t)(end - p));
    /* Callers build messages with {NULL, 0} for absent fields (the Lua
     * bindings do for a broadcast without room): allowed, and tested. */
    nf_slice *all[] = { &m.wait, &m.ns, &m.room, &m.event, &m.body };
    for (size_t k = 0; k < 5; k++)
        if (all[k]->len == 0)
            *all[k] = (nf_slice){ NULL, 0 };
    for (size_t i = 0; i < m.wait.len; i++)   /* the token starts the copy */
        if (copy[i] == ';')
            copy[i] = ':';
    roundtrip(&m);

    /* The empty reply for this token: "<token>;;;;;;" parses to the token alone. */
    size_t n = nf_empty_reply_len(m.wait);
    char *buf = malloc(n);
    if (!buf)
        abort();
    if (nf_empty_reply_serialize(m.wait, buf) != n)
        __builtin_trap();
    nf_msg back;
    char scratch[1];
    if (nf_msg_parse(buf, n, scratch, sizeof scratch, &back) != NF_PARSE_OK || !nf_slice_eq(back.wait, m.wait) ||
        back.ns.len || back.room.len || back.event.len || back.body.len || back.is_error || back.is_noop)
        __builtin_trap();
    free(buf);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        build_mode(data + 1, size - 1);
    else
        parse_mode(data + 1, size - 1);
    return 0;
}
