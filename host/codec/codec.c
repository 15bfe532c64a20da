/* codec.c - see codec.h. */
#include "codec.h"

#include <string.h>

/* Finds the escape sequence in [p, p+n); returns its offset or n. */
static size_t find_escape(const char *p, size_t n)
{
    const char *hit;
    size_t off = 0;
    while (off + NF_ESCAPED_SEMICOLON_LEN <= n &&
           (hit = memchr(p + off, '@', n - off - NF_ESCAPED_SEMICOLON_LEN + 1)) != NULL) {
        off = (size_t)(hit - p);
        if (memcmp(hit, NF_ESCAPED_SEMICOLON, NF_ESCAPED_SEMICOLON_LEN) == 0)
            return off;
        off++;
    }
    return n;
}

/* Unescapes field f into *scratch when needed, advancing the scratch cursor.
 * Replacement is left to right and non-overlapping, like Go's strings.Replace. */
static nf_slice unescape(nf_slice f, char **cursor, const char *end)
{
    size_t first = find_escape(f.ptr, f.len);
    if (first == f.len)
        return f;
    char *out = *cursor, *w = out;
    const char *r = f.ptr, *fend = f.ptr + f.len;
    /* Unescaping only shrinks a field, so f.len bytes always suffice. */
    if ((size_t)(end - out) < f.len)
        return (nf_slice){ NULL, 0 };
    while (r < fend) {
        size_t off = find_escape(r, (size_t)(fend - r));
        memcpy(w, r, off);
        w += off;
        r += off;
        if (r < fend) {
            *w++ = ';';
            r += NF_ESCAPED_SEMICOLON_LEN;
        }
    }
    *cursor = w;
    return (nf_slice){ out, (size_t)(w - out) };
}

static bool is_true_flag(nf_slice f)
{
    return f.len == 1 && f.ptr[0] == '1';
}

nf_parse_result nf_msg_parse(const char *frame, size_t len,
                             char *scratch, size_t scratch_cap, nf_msg *out)
{
    nf_slice field[6];
    const char *p = frame, *end = frame + len;

    if (len == 0)
        return NF_PARSE_EMPTY;
    for (int i = 0; i < 6; i++) {
        const char *sep = memchr(p, ';', (size_t)(end - p));
        if (sep == NULL)
            return NF_PARSE_NOT_MESSAGE;
        field[i] = nf_slice_of(p, (size_t)(sep - p));
        p = sep + 1;
    }

    char *cursor = scratch;
    const char *scratch_end = scratch + scratch_cap;
    out->wait = field[0];
    out->ns = unescape(field[1], &cursor, scratch_end);
    out->room = unescape(field[2], &cursor, scratch_end);
    out->event = unescape(field[3], &cursor, scratch_end);
    if ((out->ns.ptr == NULL) | (out->room.ptr == NULL) | (out->event.ptr == NULL))
        return NF_PARSE_SCRATCH_SMALL;
    out->is_error = is_true_flag(field[4]);
    out->is_noop = is_true_flag(field[5]);
    out->binary = false;
    out->body = nf_slice_of(p, (size_t)(end - p));
    return NF_PARSE_OK;
}

static size_t count_semicolons(nf_slice f)
{
    size_t n = 0;
    if (f.len == 0)
        return 0;   /* an absent field may be {NULL, 0}: memchr(NULL, ...) is undefined */
    for (const char *p = f.ptr, *e = f.ptr + f.len;
         (p = memchr(p, ';', (size_t)(e - p))) != NULL; p++)
        n++;
    return n;
}

static size_t escaped_len(nf_slice f)
{
    return f.len + count_semicolons(f) * (NF_ESCAPED_SEMICOLON_LEN - 1);
}

size_t nf_msg_serialized_len(const nf_msg *m)
{
    return m->wait.len + escaped_len(m->ns) + escaped_len(m->room) +
           escaped_len(m->event) + 2 /* flags */ + 6 /* separators */ + m->body.len;
}

static char *put(char *w, nf_slice f)
{
    if (f.len)
        memcpy(w, f.ptr, f.len);
    return w + f.len;
}

static char *put_escaped(char *w, nf_slice f)
{
    if (f.len == 0)
        return w;   /* f.ptr may be NULL: even NULL + 0 is undefined in C */
    const char *r = f.ptr, *e = f.ptr + f.len, *sep;
    while (r < e && (sep = memchr(r, ';', (size_t)(e - r))) != NULL) {
        memcpy(w, r, (size_t)(sep - r));
        w += sep - r;
        memcpy(w, NF_ESCAPED_SEMICOLON, NF_ESCAPED_SEMICOLON_LEN);
        w += NF_ESCAPED_SEMICOLON_LEN;
        r = sep + 1;
    }
    return put(w, nf_slice_of(r, (size_t)(e - r)));
}

size_t nf_msg_serialize(const nf_msg *m, char *out)
{
    char *w = put(out, m->wait);
    *w++ = ';';
    w = put_escaped(w, m->ns);
    *w++ = ';';
    w = put_escaped(w, m->room);
    *w++ = ';';
    w = put_escaped(w, m->event);
    *w++ = ';';
    *w++ = m->is_error ? '1' : '0';
    *w++ = ';';
    *w++ = m->is_noop ? '1' : '0';
    *w++ = ';';
    w = put(w, m->body);
    return (size_t)(w - out);
}

size_t nf_empty_reply_serialize(nf_slice token, char *out)
{
    char *w = put(out, token);
    memcpy(w, ";;;;;;", 6);
    return token.len + 6;
}
