/* exchange_marker.c - see exchange_marker.h. */
#include "exchange_marker.h"

#include "exchange_key.h"
#include "errors.h"

#include <errno.h>

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define PREFIX "neffos(0xC1:"
#define PREFIX_LEN (sizeof PREFIX - 1)
#define GO_PREFIX "neffos(0x"
#define GO_PREFIX_LEN (sizeof GO_PREFIX - 1)

static size_t digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

size_t nf_marker_len(const nf_marker *m)
{
    /* PREFIX node ':' flag ':' len ':' path '(' id "))" */
    return PREFIX_LEN + m->node.len + 3 + digits(m->path.len) + 1 + m->path.len + 1 +
           nf_key_encoded_len(m->except_id) + 2;
}

/* memcpy of an empty slice whose pointer may be NULL. */
static char *put(char *p, nf_slice s)
{
    if (s.len)
        memcpy(p, s.ptr, s.len);
    return p + s.len;
}

size_t nf_marker_write(const nf_marker *m, char *out)
{
    char *p = out;
    memcpy(p, PREFIX, PREFIX_LEN);
    p += PREFIX_LEN;
    p = put(p, m->node);
    p += sprintf(p, ":%c:%zu:", m->native ? (m->binary ? 'm' : 'n') : (m->binary ? 'b' : 't'), m->path.len);
    p = put(p, m->path);
    *p++ = '(';
    p += nf_key_encode(m->except_id, p);
    memcpy(p, "))", 2);
    return (size_t)(p + 2 - out);
}

static bool is_hex_lower(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* Parses what follows PREFIX; false if it is not our format. */
static bool parse_ours(const char *p, const char *end, nf_marker *out, char *buf)
{
    if (end - p < NF_MARKER_NODE_LEN + 3 || !is_hex_lower(p, NF_MARKER_NODE_LEN))
        return false;
    out->node = nf_slice_of(p, NF_MARKER_NODE_LEN);
    p += NF_MARKER_NODE_LEN;
    if (p[0] != ':' || !p[1] || !strchr("tbnm", p[1]) || p[2] != ':')
        return false;
    out->binary = p[1] == 'b' || p[1] == 'm';
    out->native = p[1] == 'n' || p[1] == 'm';
    p += 3;
    size_t len = 0, nd = 0;
    for (; p < end && *p >= '0' && *p <= '9' && nd < 7; p++, nd++)
        len = len * 10 + (size_t)(*p - '0');
    if (nd == 0 || p == end || *p++ != ':' || (size_t)(end - p) < len + 3)
        return false;
    out->path = nf_slice_of(p, len);
    p += len;
    if (*p++ != '(' || end[-1] != ')' || end[-2] != ')')
        return false;
    nf_slice id = nf_slice_of(p, (size_t)(end - 2 - p));
    long n = nf_key_decode(id, buf);
    out->except_id = n >= 0 ? nf_slice_of(buf, (size_t)n) : id;   /* raw: an older C node */
    return true;
}

nf_marker_kind nf_marker_parse(nf_slice f, nf_marker *out, char *buf)
{
    memset(out, 0, sizeof *out);
    if (f.len == 0)
        return NF_MARKER_NONE;
    if (f.len < GO_PREFIX_LEN || memcmp(f.ptr, GO_PREFIX, GO_PREFIX_LEN) != 0)
        return NF_MARKER_TOKEN;
    if (f.len >= PREFIX_LEN && memcmp(f.ptr, PREFIX, PREFIX_LEN) == 0 &&
        parse_ours(f.ptr + PREFIX_LEN, f.ptr + f.len, out, buf))
        return NF_MARKER_OURS;
    memset(out, 0, sizeof *out);
    return NF_MARKER_FOREIGN;
}

int nf_marker_new_node(char out[NF_MARKER_NODE_LEN + 1])
{
    unsigned char b[NF_MARKER_NODE_LEN / 2];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return errno > 0 ? -errno : NF_EIO;
    for (size_t i = 0; i < sizeof b; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    return 0;
}
