/* http.h - the HTTP/1.1 side of the upgrade: a request-head parser and a
 * response writer (docs/protocol.md §3, §17.1).
 *
 * Pure: no sockets. The parser reads bytes the caller has buffered; the
 * writer appends to an evbuffer that the caller later flushes.
 *
 * Parser rules (stricter than RFC 9112 where leniency buys nothing):
 *  - Lines end with CRLF. A bare LF, a CR not followed by LF, or a NUL
 *    anywhere in the head is NF_HTTP_BAD_REQUEST, reported as soon as the
 *    byte arrives so a broken client does not wait for the handshake timeout.
 *    Leading empty lines before the request line are not skipped (400).
 *  - Request line: method SP request-target SP HTTP-version, single spaces.
 *    The method is any token (the caller decides 405); the target is made of
 *    visible bytes (0x21-0x7E, or >= 0x80), in origin-form ("/...") or in
 *    absolute-form ("scheme://authority/path?query", RFC 9112 3.2.2, what
 *    proxies send; its authority must not be empty and is not kept, an empty
 *    path is "/"). Asterisk- and authority-form are NF_HTTP_BAD_REQUEST.
 *  - More than one Host line is NF_HTTP_BAD_REQUEST (RFC 9112 3.2).
 *  - "HTTP/d.d" other than 1.0 and 1.1 is NF_HTTP_BAD_VERSION (505); any
 *    other version text is NF_HTTP_BAD_REQUEST.
 *  - Header lines: token ':' OWS value OWS. Whitespace before the colon,
 *    obs-fold (a line starting with SP/HTAB), an empty name and control
 *    bytes other than HTAB in the value are NF_HTTP_BAD_REQUEST.
 *  - The whole head, CRLFCRLF included, must fit lim->max_header_bytes, else
 *    NF_HTTP_TOO_LARGE. More than lim->max_headers headers, counting those
 *    carried in the query string, is NF_HTTP_TOO_MANY_HEADERS.
 *
 * X-Websocket-Header- query parameters (docs/protocol.md §3.2): parsed like Go's
 * url.ParseQuery ('&' separates; pairs with ';' or a bad %-escape are
 * skipped; '+' is a space). A decoded key longer than 19 bytes starting with
 * "X-Websocket-Header-" (any case) adds the header named by the rest of the
 * key, once per value, after the real headers (so the first value of a name
 * sent both ways is the real header, as in Go). Parameters whose header name
 * is not a token, or whose decoded value holds a control byte other than
 * HTAB (NUL, CR, LF, ...), are skipped: every header the application sees is
 * a valid field. The query string itself is left intact. */
#ifndef NF_HTTP_H
#define NF_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

struct evbuffer;

/* The HTTP upgrade request, kept per connection: one exact-size allocation
 * (see nf_http_parse_request); freed with nf_request_free. */
typedef struct nf_request nf_request;

nf_slice nf_request_method(const nf_request *r);
nf_slice nf_request_path(const nf_request *r);   /* without the query */
nf_slice nf_request_query(const nf_request *r);  /* after '?', raw */
/* Header by name, case-insensitive; the n-th value (0 = first). Includes
 * headers carried as X-Websocket-Header-* query parameters. */
bool nf_request_header(const nf_request *r, nf_slice name, size_t n, nf_slice *value);
/* Iterates all headers: cursor starts at 0; returns false after the last. */
bool nf_request_header_next(const nf_request *r, size_t *cursor, nf_slice *name, nf_slice *value);

/* The bounds of a request head (the --max-header-bytes / --max-headers flags). */
typedef struct nf_http_limits {
    size_t max_header_bytes;   /* request line + headers + CRLFCRLF */
    size_t max_headers;        /* header lines */
} nf_http_limits;

typedef enum nf_http_status {
    NF_HTTP_OK = 0,
    NF_HTTP_INCOMPLETE,        /* no complete head yet: read more and call again */
    NF_HTTP_BAD_REQUEST,       /* 400 */
    NF_HTTP_TOO_LARGE,         /* 431: head longer than max_header_bytes */
    NF_HTTP_TOO_MANY_HEADERS,  /* 431: more than max_headers */
    NF_HTTP_BAD_VERSION,       /* 505 */
    NF_HTTP_NO_MEMORY          /* 503: the request could not be allocated */
} nf_http_status;

/* Parses the request head at the start of buf[0..len). Call it again with
 * the whole buffered input whenever more bytes arrive.
 *
 * On NF_HTTP_OK, *out is a new request (free it with nf_request_free) and
 * *head_len is the size of the head including the final CRLFCRLF; bytes
 * after it (a pipelined WebSocket frame) are not consumed. On any other
 * result *out is NULL and *head_len untouched.
 *
 * The request is one exact-size allocation holding copies of everything, so
 * buf may be discarded. Every slice it hands out is NUL-terminated. */
nf_http_status nf_http_parse_request(const char *buf, size_t len, const nf_http_limits *lim,
                                     nf_request **out, size_t *head_len);

void nf_request_free(nf_request *r);

/* The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (WebSocket needs 1.1). */
unsigned nf_request_http_minor(const nf_request *r);

/* Percent-decodes the path ('+' stays '+') into out[0..cap), NUL-terminated,
 * and sets *len to the decoded length. False on a malformed escape, on %00,
 * or if the result plus its NUL does not fit cap. */
bool nf_request_path_decoded(const nf_request *r, char *out, size_t cap, size_t *len);

/* X-Websocket-Reconnect (docs/protocol.md §3.3), first value, read like Go's strconv.Atoi:
 * optional sign then decimal digits only; missing, malformed or out of int
 * range gives 0. */
int nf_request_reconnect_tries(const nf_request *r);

/* Does a comma-separated header value list token, case-insensitively, with
 * optional white space around each element? ("keep-alive, Upgrade" has
 * "upgrade".) */
bool nf_http_header_has_token(nf_slice value, const char *token);

/* ---- header fields as RFC 9110 defines them ----------------------------------
 * These read only the header lines that came on the wire, not those carried
 * in the query (X-Websocket-Header-*): the RFC rules are about the message. */

/* How many header lines named name (case-insensitive) the request has. */
size_t nf_request_field_lines(const nf_request *r, nf_slice name);

/* A position in a list-valued field: start with { 0, 0 }. */
typedef struct nf_http_cursor {
    size_t line, off;
} nf_http_cursor;

/* The next element of the list-valued field name (RFC 9110 5.6.1), all of
 * its lines read in order as one comma-separated list (5.3): SP and HTAB
 * around each element trimmed, empty elements skipped. False after the
 * last. (No quoted strings: the fields read this way are token lists.) */
bool nf_request_list_next(const nf_request *r, nf_slice name, nf_http_cursor *cur, nf_slice *elem);

/* Does the list-valued field name hold token, case-insensitively? */
bool nf_request_list_has(const nf_request *r, nf_slice name, const char *token);

/* Is s a non-empty token (RFC 9110 5.6.2)? */
bool nf_http_is_token(nf_slice s);

/* What a valid WebSocket opening handshake carries (slices into the request). */
typedef struct nf_upgrade {
    nf_slice key;        /* Sec-WebSocket-Key: 24 characters, base64 of 16 bytes */
    nf_slice protocol;   /* the subprotocol to select: the first offered; empty if none */
    nf_slice origin;     /* Origin; empty when absent */
    bool has_origin;
} nf_upgrade;

/* Reads req as a WebSocket opening handshake (RFC 6455 4.2.1), each field
 * the way RFC 9110 defines it:
 *  - HTTP/1.1 or later, exactly one Host (RFC 9112 3.2);
 *  - Upgrade and Connection are lists, over any number of lines, holding
 *    "websocket" and "upgrade" (case-insensitive);
 *  - exactly one Sec-WebSocket-Version, "13" (another value, or none: 426);
 *  - exactly one Sec-WebSocket-Key, base64 of 16 bytes (22 characters of the
 *    base64 alphabet and "==");
 *  - at most one Origin (RFC 6454 7.3);
 *  - Sec-WebSocket-Protocol is a list of tokens over any number of lines
 *    (RFC 6455 11.3.4); the first one is selected.
 * Returns 0 and fills *up, or a negative HTTP status, -400 or -426, with
 * *why set to a one-line reason (a static string) for the log and the body. */
int nf_http_upgrade_check(const nf_request *req, nf_upgrade *up, const char **why);

/* The status code a parser error should be answered with: 400, 431, 505 or
 * 503 (200 for NF_HTTP_OK, 400 for NF_HTTP_INCOMPLETE, i.e. a head cut short). */
int nf_http_status_code(nf_http_status st);

/* The standard reason phrase of status ("Not Found"), or "Unknown". */
const char *nf_http_reason(int status);

/* Appends a complete HTTP/1.1 response to out:
 *     HTTP/1.1 <status> <reason>
 *     Content-Type: <content_type>         (omitted when NULL)
 *     Content-Length: <body_len>
 *     Connection: close
 *     <extra_headers>                      ("Name: value\r\n..." or NULL)
 * then the body unless head_only. With head_only, body may be NULL and
 * Content-Length still says body_len (what a GET would have carried). The
 * header set is deterministic: no Date, no Server. */
void nf_http_respond(struct evbuffer *out, int status, const char *extra_headers,
                     const char *content_type, const char *body, size_t body_len, bool head_only);

/* Appends just the head of such a response, ending with the empty line; the
 * caller adds content_length bytes of body itself (e.g. a file). */
void nf_http_write_head(struct evbuffer *out, int status, const char *extra_headers,
                        const char *content_type, size_t content_length);

#endif
