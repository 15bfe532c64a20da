/* deflate.c - see deflate.h. */
#include "deflate.h"

#include "errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#define EXT_NAME "permessage-deflate"

/* The bytes a sync flush ends with, removed by the sender and put back by
 * the receiver (RFC 7692 7.2.1, 7.2.2). */
static const uint8_t sync_tail[4] = { 0x00, 0x00, 0xff, 0xff };

/* zlib's compression level: 1 costs about half the default's (6) CPU on 2 KB
 * of JSON for 3% more bytes (README, "Compression"). memLevel 8 is zlib's
 * default; 4 measured no faster. */
#define DEFLATE_LEVEL 1
#define DEFLATE_MEM_LEVEL 8

/* A deflater keeps its output buffer between messages up to this size; a
 * larger one (a big message) is given back at the next message that fits. */
#define DEFLATE_KEEP_BYTES (64u << 10)

static nf_deflate_stats stats;

#define COUNT(field, n) __atomic_fetch_add(&stats.field, (uint64_t)(n), __ATOMIC_RELAXED)

nf_deflate_stats nf_deflate_get_stats(void)
{
    nf_deflate_stats s;
    uint64_t *to = (uint64_t *)&s, *from = (uint64_t *)&stats;
    for (size_t i = 0; i < sizeof s / sizeof *to; i++)
        to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
    return s;
}

/* ---- negotiation ------------------------------------------------------------ */

typedef struct span {
    const char *p;
    size_t n;
} span;

static span trim(span s)
{
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.n--;
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

static bool span_is(span s, const char *word)
{
    return s.n == strlen(word) && strncasecmp(s.p, word, s.n) == 0;
}

/* Cuts s at the first c: returns what is before, leaves the rest in *s
 * (empty, p NULL, when there is no c). */
static span cut(span *s, char c)
{
    const char *at = memchr(s->p, c, s->n);
    span head = { s->p, at ? (size_t)(at - s->p) : s->n };
    *s = at ? (span){ at + 1, s->n - head.n - 1 } : (span){ NULL, 0 };
    return head;
}

/* A window size: "8".."15" in plain decimal, or the same quoted (RFC 7692
 * 7.1.2: 1*DIGIT, no leading zero); 0 when it is anything else. */
static unsigned window_bits(span v)
{
    if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"')
        v = (span){ v.p + 1, v.n - 2 };
    if (v.n == 0 || v.n > 2 || v.p[0] == '0')
        return 0;
    unsigned bits = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
        bits = bits * 10 + (unsigned)(v.p[i] - '0');
    }
    return bits >= 8 && bits <= NF_DEFLATE_MAX_BITS ? bits : 0;
}

enum { SEEN_SNCT = 1, SEEN_CNCT = 2, SEEN_SMWB = 4, SEEN_CMWB = 8 };

/* One parameter of the offer into *p; false declines the offer. */
static bool offer_param(span name, span value, bool has_value, unsigned *seen, nf_deflate_params *p)
{
    unsigned flag, bits = 0;
    if (span_is(name, "server_no_context_takeover"))
        flag = SEEN_SNCT;
    else if (span_is(name, "client_no_context_takeover"))
        flag = SEEN_CNCT;
    else if (span_is(name, "server_max_window_bits"))
        flag = SEEN_SMWB;
    else if (span_is(name, "client_max_window_bits"))
        flag = SEEN_CMWB;
    else
        return false;   /* 7: an unknown parameter declines the offer */
    if (*seen & flag)
        return false;   /* 7: a repeated one too */
    *seen |= flag;
    if (flag & (SEEN_SNCT | SEEN_CNCT))
        return !has_value;   /* 7.1.1: no value */
    if (has_value && (bits = window_bits(value)) == 0)
        return false;
    if (flag == SEEN_SMWB) {
        /* 7.1.2.1: a value is required; 8 is beyond zlib's raw deflate. */
        if (!has_value || bits < NF_DEFLATE_MIN_BITS)
            return false;
        p->server_max_window_bits = (uint8_t)bits;
    } else if (has_value) {
        p->client_max_window_bits = (uint8_t)bits;   /* 7.1.2.2: the value is optional */
    }
    return true;
}

int nf_deflate_offer(const char *elem, size_t len, bool allow_client_context, nf_deflate_params *p)
{
    span rest = { elem, len };
    if (!span_is(trim(cut(&rest, ';')), EXT_NAME))
        return NF_ENOENT;
    nf_deflate_params want = { .server_max_window_bits = NF_DEFLATE_MAX_BITS,
                               .client_max_window_bits = NF_DEFLATE_MAX_BITS };
    unsigned seen = 0;
    while (rest.p) {
        span param = cut(&rest, ';');
        bool has_value = memchr(param.p, '=', param.n) != NULL;
        span name = trim(cut(&param, '='));
        span value = trim(param);
        if (!offer_param(name, value, has_value, &seen, &want))
            return NF_EINVAL;
    }
    want.server_no_context_takeover = true;
    want.server_window_asked = seen & SEEN_SMWB;
    want.client_no_context_takeover = (seen & SEEN_CNCT) || !allow_client_context;
    *p = want;
    return 0;
}

size_t nf_deflate_answer(const nf_deflate_params *p, char *out, size_t cap)
{
    int n = snprintf(out, cap, EXT_NAME "; server_no_context_takeover%s",
                     p->client_no_context_takeover ? "; client_no_context_takeover" : "");
    /* 7.1.2.1: an offered server window is accepted by answering it (ours is
     * never larger); when none was offered ours is 15, the default, unsaid. */
    if (p->server_window_asked && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "; server_max_window_bits=%u", p->server_max_window_bits);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- inflate ------------------------------------------------------------------ */

struct nf_inflater {
    z_stream z;
};

nf_inflater *nf_inflater_new(unsigned window_bits)
{
    nf_inflater *z = calloc(1, sizeof *z);
    if (z == NULL)
        return NULL;
    /* Negative: raw deflate, no zlib header (7.2.1). A window at least as
     * large as the client's decodes what it sends. */
    if (inflateInit2(&z->z, -(int)window_bits) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

void nf_inflater_free(nf_inflater *z)
{
    if (z) {
        inflateEnd(&z->z);
        free(z);
    }
}

/* Room for more output: doubling, never past limit bytes in all. */
static int out_grow(uint8_t **buf, size_t *cap, size_t limit)
{
    size_t want = *cap ? *cap * 2 : 256;
    if (want > limit)
        want = limit;
    uint8_t *p = realloc(*buf, want);
    if (p == NULL)
        return NF_ENOMEM;
    *buf = p;
    *cap = want;
    return 0;
}

/* Feeds in[0..len) to the inflater, output appended to buf[*got..]. Stops
 * at the end of the input or of the deflate stream (a final block), or as
 * soon as more than max_out bytes came out. */
static int inflate_part(z_stream *z, const uint8_t *in, size_t len, size_t max_out, uint8_t **buf, size_t *cap,
                        size_t *got, bool *ended)
{
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)len;
    for (;;) {
        if (*got > max_out)
            return NF_ENOBUFS;
        if (*got == *cap) {
            int rc = out_grow(buf, cap, max_out + 1);
            if (rc != 0)
                return rc;
        }
        z->next_out = *buf + *got;
        z->avail_out = (uInt)(*cap - *got);
        int zr = inflate(z, Z_SYNC_FLUSH);
        *got = *cap - z->avail_out;
        if (zr == Z_STREAM_END) {
            *ended = true;   /* a final block: what follows it is ignored */
            return *got > max_out ? NF_ENOBUFS : 0;
        }
        if (zr == Z_MEM_ERROR)
            return NF_ENOMEM;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return NF_EPROTO;   /* Z_DATA_ERROR, Z_NEED_DICT */
        /* Done with this input once zlib had output room left. */
        if (z->avail_in == 0 && z->avail_out > 0)
            return *got > max_out ? NF_ENOBUFS : 0;
    }
}

int nf_inflater_message(nf_inflater *zi, const uint8_t *in, size_t len, size_t max_out, bool keep_context,
                        uint8_t **out, size_t *out_len)
{
    z_stream *z = &zi->z;
    uint8_t *buf = NULL;
    size_t cap = 0, got = 0;
    bool ended = false;
    int rc = 0;
    size_t in_len = len;

    *out = NULL;
    *out_len = 0;
    if (!keep_context)
        inflateReset(z);
    /* zlib counts in uInt: a message is fed in parts it can take. */
    while (rc == 0 && !ended && len > 0) {
        size_t part = len > (1u << 30) ? (1u << 30) : len;
        rc = inflate_part(z, in, part, max_out, &buf, &cap, &got, &ended);
        in += part;
        len -= part;
    }
    if (rc == 0 && !ended)
        rc = inflate_part(z, sync_tail, sizeof sync_tail, max_out, &buf, &cap, &got, &ended);
    if (rc == 0 && ended)
        inflateReset(z);   /* a final block ends the stream: the next message starts afresh */
    if (rc != 0) {
        COUNT(too_big, rc == NF_ENOBUFS);
        COUNT(invalid, rc == NF_EPROTO);
        free(buf);
        inflateReset(z);
        return rc;
    }
    COUNT(inflated, 1);
    COUNT(inflated_in, in_len);
    COUNT(inflated_out, got);
    if (got == 0) {
        free(buf);
        return 0;
    }
    *out = buf;
    *out_len = got;
    return 0;
}

/* ---- deflate ------------------------------------------------------------------ */

struct nf_deflater {
    z_stream z;
    uint8_t *buf;   /* the last message compressed */
    size_t cap;
};

nf_deflater *nf_deflater_new(unsigned window_bits)
{
    nf_deflater *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    if (deflateInit2(&d->z, DEFLATE_LEVEL, Z_DEFLATED, -(int)window_bits, DEFLATE_MEM_LEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void nf_deflater_free(nf_deflater *d)
{
    if (d) {
        deflateEnd(&d->z);
        free(d->buf);
        free(d);
    }
}

int nf_deflater_message(nf_deflater *d, const uint8_t *in, size_t len, const uint8_t **out, size_t *out_len)
{
    z_stream *z = &d->z;
    /* deflateBound has no room for the flush's empty stored block (5 bytes),
     * and counts in uLong. */
    size_t need = deflateBound(z, (uLong)len) + 16;
    if (d->cap > DEFLATE_KEEP_BYTES && need <= DEFLATE_KEEP_BYTES) {
        free(d->buf);
        d->buf = NULL;
        d->cap = 0;
    }
    if (need > d->cap) {
        uint8_t *p = realloc(d->buf, need);
        if (p == NULL)
            return NF_ENOMEM;
        d->buf = p;
        d->cap = need;
    }
    deflateReset(z);   /* no context takeover: each message on its own */
    z->next_in = (Bytef *)in;
    z->next_out = d->buf;
    z->avail_out = (uInt)d->cap;
    size_t left = len;
    do {
        size_t part = left > (1u << 30) ? (1u << 30) : left;
        z->avail_in = (uInt)part;
        left -= part;
        if (deflate(z, left ? Z_NO_FLUSH : Z_SYNC_FLUSH) == Z_STREAM_ERROR)
            return NF_EIO;   /* not reached: the stream is ours and consistent */
    } while (left > 0);
    if (z->avail_in != 0 || z->avail_out == 0)
        return NF_EIO;   /* not reached: the buffer holds deflateBound */
    size_t n = d->cap - z->avail_out;
    /* A sync flush ends in the tail, which is not sent (7.2.1). */
    if (n >= sizeof sync_tail && memcmp(d->buf + n - sizeof sync_tail, sync_tail, sizeof sync_tail) == 0)
        n -= sizeof sync_tail;
    *out = d->buf;
    *out_len = n;
    COUNT(deflated, 1);
    COUNT(deflated_in, len);
    COUNT(deflated_out, n);
    return 0;
}
