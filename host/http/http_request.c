/* http_request.c - the HTTP/1.1 request-head parser and the nf_request
 * accessors of proto.h. See http.h for the accepted grammar.
 *
 * Parsing runs in two passes over the same bytes: the first validates and
 * measures, the second copies into one exact-size block. The request lives
 * as long as its connection, so a compact single allocation is worth a
 * second (cheap, bounded by max_header_bytes) walk over the head. */
#include "http.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_HEADER_PREFIX "X-Websocket-Header-"
#define QUERY_HEADER_PREFIX_LEN (sizeof(QUERY_HEADER_PREFIX) - 1)

typedef struct nf_header {
    nf_slice name;
    nf_slice value;
} nf_header;

/* One block: this struct, the header table, then the NUL-terminated text
 * every slice points into. */
struct nf_request {
    nf_slice method;
    nf_slice path;          /* raw, before '?' */
    nf_slice query;         /* raw, after '?' */
    unsigned minor;         /* HTTP/1.<minor> */
    size_t nheaders;        /* wire headers first, then those from the query */
    size_t nwire;           /* how many came on the wire */
    nf_header headers[];
};

/* What the measuring pass learns about a valid head. */
typedef struct head {
    nf_slice method, path, query;
    unsigned minor;
    const char *fields;     /* first header line */
    const char *end;        /* one past the final CRLFCRLF */
    size_t nheaders;
    size_t nwire;           /* of which on the wire */
    size_t text;            /* bytes of text to copy, NULs included */
} head;

/* ---- characters ----------------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values: VCHAR, obs-text, SP, HTAB; no other control byte. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Request-target bytes: visible ASCII, and raw UTF-8 some clients send. */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool ascii_case_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes "%XX" at p (which has at least one byte, the '%'); -1 if malformed. */
static int percent_byte(const char *p, const char *end)
{
    if (end - p < 3)
        return -1;
    int hi = hex_value((unsigned char)p[1]), lo = hex_value((unsigned char)p[2]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

#define UNESCAPE_END (-1)
#define UNESCAPE_BAD (-2)

/* Go's url.QueryUnescape one byte at a time, so the measuring pass needs no
 * scratch buffer: '+' is a space, %XX a byte. Returns the next decoded byte,
 * UNESCAPE_END, or UNESCAPE_BAD on a malformed escape. */
static int query_unescape_next(const char **p, const char *end)
{
    if (*p == end)
        return UNESCAPE_END;
    unsigned char c = (unsigned char)**p;
    if (c == '+') {
        (*p)++;
        return ' ';
    }
    if (c != '%') {
        (*p)++;
        return c;
    }
    int b = percent_byte(*p, end);
    if (b < 0)
        return UNESCAPE_BAD;
    *p += 3;
    return b;
}

/* ---- the head ----------------------------------------------------------------- */

/* Finds the CRLFCRLF that ends the head within the first max bytes, failing
 * fast on bytes no valid head can hold: NUL, bare LF, CR without LF. */
static nf_http_status find_head_end(const char *buf, size_t len, size_t max, size_t *end)
{
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '\0')
            return NF_HTTP_BAD_REQUEST;
        if (i > 0 && buf[i - 1] == '\r' && c != '\n')
            return NF_HTTP_BAD_REQUEST;
        if (c == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return NF_HTTP_BAD_REQUEST;
            /* Every LF so far follows a CR, so "\n\r\n" is "\r\n\r\n". */
            if (i >= 3 && buf[i - 2] == '\n') {
                *end = i + 1;
                return NF_HTTP_OK;
            }
        }
    }
    /* Holding max bytes without a terminator means the head is too long. */
    return n == max ? NF_HTTP_TOO_LARGE : NF_HTTP_INCOMPLETE;
}

/* "HTTP/d.d": 1.0 and 1.1 are served, other well-formed versions get 505. */
static nf_http_status parse_version(const char *p, size_t n, unsigned *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
        p[7] < '0' || p[7] > '9')
        return NF_HTTP_BAD_REQUEST;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return NF_HTTP_BAD_VERSION;
    *minor = (unsigned)(p[7] - '0');
    return NF_HTTP_OK;
}

/* The absolute-form "scheme://authority[/path][?query]" (RFC 9112 3.2.2,
 * what proxies send) reduced to its origin-form part: the start of the path
 * or query within [s, e), or NULL if it is not one. The authority must not
 * be empty (RFC 9110 4.2.1); it is not used (the Host header is what the
 * app sees). */
static const char *absolute_form_origin(const char *s, const char *e)
{
    const char *p = s;
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 3.1) */
    if (p == e || !is_alpha((unsigned char)*p))
        return NULL;
    while (p < e && (is_alpha((unsigned char)*p) || (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
        p++;
    if (e - p < 3 || memcmp(p, "://", 3) != 0)
        return NULL;
    p += 3;
    const char *authority = p;
    while (p < e && *p != '/' && *p != '?')
        p++;
    return p == authority ? NULL : p;
}

/* method SP request-target SP version, [p, eol). The target is the
 * origin-form, or the absolute-form reduced to it (an empty path is "/"). */
static nf_http_status parse_request_line(const char *p, const char *eol, head *h)
{
    const char *s = p;
    while (p < eol && is_tchar((unsigned char)*p))
        p++;
    if (p == s || p == eol || *p != ' ')
        return NF_HTTP_BAD_REQUEST;
    h->method = nf_slice_of(s, (size_t)(p - s));

    s = ++p;
    while (p < eol && is_target_char((unsigned char)*p))
        p++;
    if (p == s || p == eol || *p != ' ')
        return NF_HTTP_BAD_REQUEST;
    if (*s != '/' && (s = absolute_form_origin(s, p)) == NULL)
        return NF_HTTP_BAD_REQUEST;
    const char *q = memchr(s, '?', (size_t)(p - s));
    const char *path_end = q ? q : p;
    h->path = path_end == s ? NF_SLICE("/") : nf_slice_of(s, (size_t)(path_end - s));
    h->query = q ? nf_slice_of(q + 1, (size_t)(p - q - 1)) : nf_slice_of(p, 0);
    p++;
    return parse_version(p, (size_t)(eol - p), &h->minor);
}

/* name ':' OWS value OWS, [p, eol). A leading space (obs-fold) or a space
 * before the colon leaves the name empty or unterminated: refused. */
static bool parse_header_line(const char *p, const char *eol, nf_slice *name, nf_slice *value)
{
    const char *s = p;
    while (p < eol && is_tchar((unsigned char)*p))
        p++;
    if (p == s || p == eol || *p != ':')
        return false;
    *name = nf_slice_of(s, (size_t)(p - s));
    p++;
    while (p < eol && is_ows(*p))
        p++;
    const char *e = eol;
    while (e > p && is_ows(e[-1]))
        e--;
    for (const char *c = p; c < e; c++)
        if (!is_field_char((unsigned char)*c))
            return false;
    *value = nf_slice_of(p, (size_t)(e - p));
    return true;
}

/* The line starting at p ends at the CR before the next LF; the head was
 * validated, so there is one. */
static const char *line_end(const char *p, const char *end)
{
    return (const char *)memchr(p, '\n', (size_t)(end - p)) - 1;
}

/* ---- headers carried in the query (docs/protocol.md §3.2) ------------------ */

/* The next '&'-separated pair, Go's url.ParseQuery style: empty pairs and
 * pairs holding ';' are skipped. False after the last. */
static bool next_query_pair(nf_slice *rest, nf_slice *key, nf_slice *val)
{
    while (rest->len > 0) {
        const char *amp = memchr(rest->ptr, '&', rest->len);
        size_t n = amp ? (size_t)(amp - rest->ptr) : rest->len;
        nf_slice pair = nf_slice_of(rest->ptr, n);
        *rest = amp ? nf_slice_of(amp + 1, rest->len - n - 1) : nf_slice_of(rest->ptr + n, 0);
        if (n == 0 || memchr(pair.ptr, ';', n))
            continue;
        const char *eq = memchr(pair.ptr, '=', n);
        *key = nf_slice_of(pair.ptr, eq ? (size_t)(eq - pair.ptr) : n);
        *val = eq ? nf_slice_of(eq + 1, n - key->len - 1) : nf_slice_of(pair.ptr + n, 0);
        return true;
    }
    return false;
}

/* If key=val carries a header, sets the decoded lengths of its name and
 * value and, when name_out/value_out are given, writes them there (no NUL).
 * The name must be a non-empty token and the value valid field bytes. */
static bool query_header(nf_slice key, nf_slice val, char *name_out, size_t *name_len,
                         char *value_out, size_t *value_len)
{
    const char *p = key.ptr, *end = key.ptr + key.len;
    size_t i = 0, n = 0;
    int c;
    while ((c = query_unescape_next(&p, end)) >= 0) {
        if (i < QUERY_HEADER_PREFIX_LEN) {
            if (ascii_lower((unsigned char)c) != ascii_lower((unsigned char)QUERY_HEADER_PREFIX[i]))
                return false;
            i++;
            continue;
        }
        if (!is_tchar((unsigned char)c))
            return false;
        if (name_out)
            name_out[n] = (char)c;
        n++;
    }
    if (c == UNESCAPE_BAD || n == 0)
        return false;
    *name_len = n;

    p = val.ptr, end = val.ptr + val.len, n = 0;
    while ((c = query_unescape_next(&p, end)) >= 0) {
        if (!is_field_char((unsigned char)c))
            return false;
        if (value_out)
            value_out[n] = (char)c;
        n++;
    }
    if (c == UNESCAPE_BAD)
        return false;
    *value_len = n;
    return true;
}

/* ---- the two passes ------------------------------------------------------------ */

/* Validates the head [buf, end) and measures what the request will hold. */
static nf_http_status measure(const char *buf, const char *end, const nf_http_limits *lim, head *h)
{
    memset(h, 0, sizeof(*h));
    h->end = end;
    const char *eol = line_end(buf, end);
    nf_http_status st = parse_request_line(buf, eol, h);
    if (st != NF_HTTP_OK)
        return st;
    h->fields = eol + 2;
    h->text = h->method.len + h->path.len + h->query.len + 3;

    size_t hosts = 0;
    for (const char *line = h->fields; line < end - 2; line = eol + 2) {
        nf_slice name, value;
        eol = line_end(line, end);
        if (!parse_header_line(line, eol, &name, &value))
            return NF_HTTP_BAD_REQUEST;
        if (++h->nheaders > lim->max_headers)
            return NF_HTTP_TOO_MANY_HEADERS;
        /* RFC 9112 3.2: more than one Host line is a 400, whatever the request. */
        if (name.len == 4 && ascii_case_eq(name.ptr, "host", 4) && ++hosts > 1)
            return NF_HTTP_BAD_REQUEST;
        h->text += name.len + value.len + 2;
    }
    h->nwire = h->nheaders;

    nf_slice rest = h->query, key, val;
    while (next_query_pair(&rest, &key, &val)) {
        size_t nl, vl;
        if (!query_header(key, val, NULL, &nl, NULL, &vl))
            continue;
        if (++h->nheaders > lim->max_headers)
            return NF_HTTP_TOO_MANY_HEADERS;
        h->text += nl + vl + 2;
    }
    return NF_HTTP_OK;
}

/* Copies n bytes to *cursor, NUL-terminates, and returns the copy. */
static nf_slice copy_text(char **cursor, const char *p, size_t n)
{
    char *dst = *cursor;
    if (n)
        memcpy(dst, p, n);
    dst[n] = '\0';
    *cursor = dst + n + 1;
    return nf_slice_of(dst, n);
}

/* Builds the request from a measured head; NULL if out of memory. */
static nf_request *build(const head *h)
{
    size_t table = sizeof(nf_request) + h->nheaders * sizeof(nf_header);
    nf_request *r = malloc(table + h->text);
    if (!r)
        return NULL;
    char *text = (char *)r + table;

    r->method = copy_text(&text, h->method.ptr, h->method.len);
    r->path = copy_text(&text, h->path.ptr, h->path.len);
    r->query = copy_text(&text, h->query.ptr, h->query.len);
    r->minor = h->minor;
    r->nheaders = 0;

    const char *eol;
    for (const char *line = h->fields; line < h->end - 2; line = eol + 2) {
        nf_slice name, value;
        eol = line_end(line, h->end);
        parse_header_line(line, eol, &name, &value);   /* valid: measured */
        nf_header *hd = &r->headers[r->nheaders++];
        hd->name = copy_text(&text, name.ptr, name.len);
        hd->value = copy_text(&text, value.ptr, value.len);
    }
    r->nwire = r->nheaders;

    nf_slice rest = r->query, key, val;
    while (next_query_pair(&rest, &key, &val)) {
        size_t nl, vl;
        if (!query_header(key, val, NULL, &nl, NULL, &vl))
            continue;
        /* Measured first, so the value can go right after the name's NUL. */
        char *name = text, *value = text + nl + 1;
        query_header(key, val, name, &nl, value, &vl);
        name[nl] = '\0';
        value[vl] = '\0';
        text = value + vl + 1;
        nf_header *hd = &r->headers[r->nheaders++];
        hd->name = nf_slice_of(name, nl);
        hd->value = nf_slice_of(value, vl);
    }
    return r;
}

nf_http_status nf_http_parse_request(const char *buf, size_t len, const nf_http_limits *lim,
                                     nf_request **out, size_t *head_len)
{
    size_t end;
    head h;
    *out = NULL;
    nf_http_status st = find_head_end(buf, len, lim->max_header_bytes, &end);
    if (st != NF_HTTP_OK)
        return st;
    st = measure(buf, buf + end, lim, &h);
    if (st != NF_HTTP_OK)
        return st;
    if ((*out = build(&h)) == NULL)
        return NF_HTTP_NO_MEMORY;
    *head_len = end;
    return NF_HTTP_OK;
}

void nf_request_free(nf_request *r)
{
    free(r);
}

/* ---- accessors ------------------------------------------------------------------ */

nf_slice nf_request_method(const nf_request *r) { return r->method; }
nf_slice nf_request_path(const nf_request *r) { return r->path; }
nf_slice nf_request_query(const nf_request *r) { return r->query; }
unsigned nf_request_http_minor(const nf_request *r) { return r->minor; }

bool nf_request_header(const nf_request *r, nf_slice name, size_t n, nf_slice *value)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        const nf_header *h = &r->headers[i];
        if (h->name.len == name.len && ascii_case_eq(h->name.ptr, name.ptr, name.len) && n-- == 0) {
            *value = h->value;
            return true;
        }
    }
    return false;
}

bool nf_request_header_next(const nf_request *r, size_t *cursor, nf_slice *name, nf_slice *value)
{
    if (*cursor >= r->nheaders)
        return false;
    *name = r->headers[*cursor].name;
    *value = r->headers[*cursor].value;
    (*cursor)++;
    return true;
}

bool nf_request_path_decoded(const nf_request *r, char *out, size_t cap, size_t *len)
{
    const char *p = r->path.ptr, *end = p + r->path.len;
    size_t n = 0;
    while (p < end) {
        int c = (unsigned char)*p;
        if (c == '%') {
            if ((c = percent_byte(p, end)) <= 0)   /* malformed, or %00 */
                return false;
            p += 3;
        } else {
            p++;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = (char)c;
    }
    if (n >= cap)
        return false;
    out[n] = '\0';
    *len = n;
    return true;
}

/* Go's strconv.Atoi: [+-]digits, nothing else; errors and overflow give 0. */
static int go_atoi(nf_slice s)
{
    size_t i = 0;
    bool neg = false;
    if (s.len > 0 && (s.ptr[0] == '+' || s.ptr[0] == '-')) {
        neg = s.ptr[0] == '-';
        i = 1;
    }
    if (i == s.len)
        return 0;
    long long v = 0;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return 0;
        v = v * 10 + (s.ptr[i] - '0');
        if (v > (long long)INT_MAX + 1)
            return 0;
    }
    if (neg)
        v = -v;
    return (v > INT_MAX || v < INT_MIN) ? 0 : (int)v;
}

int nf_request_reconnect_tries(const nf_request *r)
{
    nf_slice v;
    if (!nf_request_header(r, NF_SLICE("X-Websocket-Reconnect"), 0, &v))
        return 0;
    return go_atoi(v);
}

bool nf_http_header_has_token(nf_slice value, const char *token)
{
    size_t tlen = strlen(token);
    if (value.len == 0)
        return false;
    const char *p = value.ptr, *end = value.ptr + value.len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *s = p;
        while (s < e && is_ows(*s))
            s++;
        while (e > s && is_ows(e[-1]))
            e--;
        if ((size_t)(e - s) == tlen && ascii_case_eq(s, token, tlen))
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

/* ---- header fields as RFC 9110 defines them ------------------------------------- */

static bool wire_name_is(const nf_request *r, size_t i, nf_slice name)
{
    const nf_header *h = &r->headers[i];
    return h->name.len == name.len && ascii_case_eq(h->name.ptr, name.ptr, name.len);
}

size_t nf_request_field_lines(const nf_request *r, nf_slice name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nwire; i++)
        n += wire_name_is(r, i, name);
    return n;
}

bool nf_request_list_next(const nf_request *r, nf_slice name, nf_http_cursor *cur, nf_slice *elem)
{
    for (; cur->line < r->nwire; cur->line++, cur->off = 0) {
        if (!wire_name_is(r, cur->line, name))
            continue;
        nf_slice v = r->headers[cur->line].value;
        while (cur->off < v.len) {
            const char *p = v.ptr + cur->off, *end = v.ptr + v.len;
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            cur->off = comma ? (size_t)(comma - v.ptr) + 1 : v.len;
            while (p < e && is_ows(*p))
                p++;
            while (e > p && is_ows(e[-1]))
                e--;
            if (e > p) {   /* empty elements are skipped (RFC 9110 5.6.1) */
                *elem = nf_slice_of(p, (size_t)(e - p));
                return true;
            }
        }
    }
    return false;
}

bool nf_request_list_has(const nf_request *r, nf_slice name, const char *token)
{
    nf_http_cursor cur = { 0, 0 };
    nf_slice e;
    size_t tlen = strlen(token);
    while (nf_request_list_next(r, name, &cur, &e))
        if (e.len == tlen && ascii_case_eq(e.ptr, token, tlen))
            return true;
    return false;
}

bool nf_http_is_token(nf_slice s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_tchar((unsigned char)s.ptr[i]))
            return false;
    return true;
}
