/* test_http.c - the HTTP request-head parser, its accessors, and the
 * response writer (docs/protocol.md §3.1-§3.3, vectors A05-A07). */
#include "http.h"
#include "test.h"

#include <event2/buffer.h>

#include <stdlib.h>

static nf_http_limits lim;

/* Parses a complete request given as a C string; NULL unless NF_HTTP_OK. */
static nf_request *parse(const char *s, nf_http_status *st_out)
{
    nf_request *r = NULL;
    size_t used = 0;
    nf_http_status st = nf_http_parse_request(s, strlen(s), &lim, &r, &used);
    if (st_out)
        *st_out = st;
    if (st == NF_HTTP_OK)
        CHECK(used == strlen(s));
    else
        CHECK(r == NULL);
    return r;
}

static nf_http_status status_of(const char *s)
{
    nf_http_status st;
    nf_request *r = parse(s, &st);
    nf_request_free(r);
    return st;
}

static bool header(const nf_request *r, const char *name, size_t n, const char *want)
{
    nf_slice v;
    if (!nf_request_header(r, nf_slice_of(name, strlen(name)), n, &v))
        return want == NULL;
    return want && v.len == strlen(want) && memcmp(v.ptr, want, v.len) == 0 && v.ptr[v.len] == '\0';
}

static void test_simple_get(void)
{
    const char *req = "GET /echo?a=1 HTTP/1.1\r\n"
                      "Host: localhost:8080\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: keep-alive, Upgrade\r\n"
                      "Sec-WebSocket-Key:dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13 \t\r\n"
                      "Empty:\r\n"
                      "\r\n";
    nf_request *r = parse(req, NULL);
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_STR(nf_request_method(r), "GET");
    CHECK_STR(nf_request_path(r), "/echo");
    CHECK_STR(nf_request_query(r), "a=1");
    CHECK(nf_request_http_minor(r) == 1);
    CHECK(header(r, "host", 0, "localhost:8080"));
    CHECK(header(r, "UPGRADE", 0, "websocket"));
    CHECK(header(r, "sec-websocket-key", 0, "dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(header(r, "Sec-WebSocket-Version", 0, "13"));   /* OWS trimmed */
    CHECK(header(r, "Empty", 0, ""));
    CHECK(header(r, "Host", 1, NULL));
    CHECK(header(r, "Missing", 0, NULL));
    CHECK(header(r, "a", 0, NULL));                        /* plain query: no header */
    CHECK(nf_request_reconnect_tries(r) == 0);

    nf_slice v;
    CHECK(nf_request_header(r, NF_SLICE("connection"), 0, &v));
    CHECK(nf_http_header_has_token(v, "upgrade"));
    CHECK(nf_http_header_has_token(v, "Keep-Alive"));
    CHECK(!nf_http_header_has_token(v, "keep"));

    /* Iteration sees every header in order. */
    size_t cursor = 0, count = 0;
    nf_slice name, value;
    while (nf_request_header_next(r, &cursor, &name, &value))
        count++;
    CHECK(count == 6);
    cursor = 0;
    CHECK(nf_request_header_next(r, &cursor, &name, &value));
    CHECK_STR(name, "Host");
    CHECK_STR(value, "localhost:8080");
    nf_request_free(r);
}

/* Bytes after the head (an early WebSocket frame) are not consumed. */
static void test_pipelined_bytes(void)
{
    const char *req = "GET / HTTP/1.0\r\n\r\n\x81\x85xxxxx";
    nf_request *r = NULL;
    size_t used = 0;
    CHECK(nf_http_parse_request(req, strlen(req), &lim, &r, &used) == NF_HTTP_OK);
    CHECK(used == 18);
    CHECK(r && nf_request_http_minor(r) == 0);
    CHECK(r && nf_request_query(r).len == 0);
    CHECK(r && nf_request_path(r).len == 1);
    nf_request_free(r);
}

/* Vector A05: headers from the query, case-insensitive prefix, URL-decoded. */
static void test_query_headers_a05(void)
{
    const char *target = "/echo?X-Websocket-Header-X-Custom=hello%20world"
                         "&x-websocket-header-authorization=Bearer%20t0k&plain=1";
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", target);
    nf_request *r = parse(req, NULL);
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK(header(r, "X-Custom", 0, "hello world"));
    CHECK(header(r, "authorization", 0, "Bearer t0k"));
    CHECK(header(r, "plain", 0, NULL));
    CHECK_STR(nf_request_path(r), "/echo");
    CHECK_STR(nf_request_query(r), target + strlen("/echo?"));   /* left intact */
    nf_request_free(r);
}

static void test_query_headers_details(void)
{
    /* '+' is a space, encoded keys, several values, real header first, A06
     * order, reconnect via the query (A07 browser form). */
    const char *req =
        "GET /e?X-Websocket-Header-Authorization=B&X-Websocket-Header-X-Custom=v%201"
        "&X-WEBSOCKET-HEADER-X-Multi=a+b&%58-websocket-header-x-multi=c%2Bd"
        "&X-Websocket-Header-X-Websocket-Reconnect=3"
        "&X-Websocket-Header-=empty-name&X-Websocket-Header-Bad%20Name=x"
        "&X-Websocket-Header-Nul=a%00b&X-Websocket-Header-Crlf=a%0D%0Ab"
        "&X-Websocket-Header-BadEsc=%zz&X-Websocket-Header-Semi=a;b"
        "&&X-Websocket-Header-NoValue&X-Websocket-Header-Tab=a%09b HTTP/1.1\r\n"
        "X-Multi: wire\r\n"
        "\r\n";
    nf_request *r = parse(req, NULL);
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK(header(r, "Authorization", 0, "B"));
    CHECK(header(r, "X-Custom", 0, "v 1"));
    CHECK(header(r, "x-multi", 0, "wire"));
    CHECK(header(r, "x-multi", 1, "a b"));
    CHECK(header(r, "x-multi", 2, "c+d"));
    CHECK(header(r, "x-multi", 3, NULL));
    CHECK(nf_request_reconnect_tries(r) == 3);
    CHECK(header(r, "", 0, NULL));
    CHECK(header(r, "Bad Name", 0, NULL));
    CHECK(header(r, "Nul", 0, NULL));
    CHECK(header(r, "Crlf", 0, NULL));
    CHECK(header(r, "BadEsc", 0, NULL));
    CHECK(header(r, "Semi", 0, NULL));
    CHECK(header(r, "NoValue", 0, ""));
    CHECK(header(r, "Tab", 0, "a\tb"));

    size_t cursor = 0, count = 0;
    nf_slice name, value;
    while (nf_request_header_next(r, &cursor, &name, &value))
        count++;
    CHECK(count == 8);   /* 1 wire + 7 from the query */
    nf_request_free(r);

    /* Exactly the prefix (19 bytes) is not a header. */
    r = parse("GET /?X-Websocket-Header-=1 HTTP/1.1\r\n\r\n", NULL);
    CHECK(r != NULL);
    cursor = 0;
    CHECK(r && !nf_request_header_next(r, &cursor, &name, &value));
    nf_request_free(r);
}

static int tries(const char *value)
{
    char req[256];
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Websocket-Reconnect: %s\r\n\r\n", value);
    nf_request *r = parse(req, NULL);
    int n = r ? nf_request_reconnect_tries(r) : -999;
    nf_request_free(r);
    return n;
}

static void test_reconnect(void)
{
    CHECK(tries("1") == 1);
    CHECK(tries("42") == 42);
    CHECK(tries("+7") == 7);
    CHECK(tries("-2") == -2);
    CHECK(tries("2147483647") == 2147483647);
    CHECK(tries("2147483648") == 0);
    CHECK(tries("99999999999999999999999") == 0);
    CHECK(tries("") == 0);
    CHECK(tries("+") == 0);
    CHECK(tries("1x") == 0);
    CHECK(tries("0x10") == 0);
    CHECK(tries("1 2") == 0);

    /* The real header wins over the query, as with Go's Header.Get. */
    nf_request *r = parse("GET /?X-Websocket-Header-X-Websocket-Reconnect=5 HTTP/1.1\r\n"
                          "x-websocket-reconnect: 2\r\n\r\n", NULL);
    CHECK(r && nf_request_reconnect_tries(r) == 2);
    nf_request_free(r);
}

static void test_incomplete_byte_by_byte(void)
{
    const char *req = "GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n";
    size_t n = strlen(req);
    for (size_t i = 0; i < n; i++) {
        nf_request *r = (nf_request *)1;
        size_t used = 12345;
        nf_http_status st = nf_http_parse_request(req, i, &lim, &r, &used);
        CHECK(st == NF_HTTP_INCOMPLETE);
        CHECK(r == NULL);
        CHECK(used == 12345);
    }
    nf_request *r = NULL;
    size_t used = 0;
    CHECK(nf_http_parse_request(req, n, &lim, &r, &used) == NF_HTTP_OK);
    CHECK(used == n);
    nf_request_free(r);
}

static void test_too_large(void)
{
    nf_http_limits small = lim;
    small.max_header_bytes = 64;
    char buf[200];
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    nf_request *r = NULL;
    size_t used;
    CHECK(nf_http_parse_request(buf, 63, &small, &r, &used) == NF_HTTP_INCOMPLETE);
    CHECK(nf_http_parse_request(buf, 64, &small, &r, &used) == NF_HTTP_TOO_LARGE);
    CHECK(nf_http_parse_request(buf, sizeof(buf), &small, &r, &used) == NF_HTTP_TOO_LARGE);

    /* A complete head of exactly the limit is fine; one byte more is not. */
    char exact[65];
    snprintf(exact, sizeof(exact), "GET / HTTP/1.1\r\nX: %s\r\n\r\n",
             "0123456789012345678901234567890123456789");
    CHECK(strlen(exact) == 63);
    CHECK(nf_http_parse_request(exact, 63, &small, &r, &used) == NF_HTTP_OK);
    nf_request_free(r);
    small.max_header_bytes = 62;
    CHECK(nf_http_parse_request(exact, 63, &small, &r, &used) == NF_HTTP_TOO_LARGE);
    CHECK(r == NULL);

    CHECK(nf_http_status_code(NF_HTTP_TOO_LARGE) == 431);
}

static void test_too_many_headers(void)
{
    nf_http_limits few = lim;
    few.max_headers = 3;
    nf_request *r = NULL;
    size_t used;
    const char *three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    const char *four = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    const char *query = "GET /?X-Websocket-Header-D=4 HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK(nf_http_parse_request(three, strlen(three), &few, &r, &used) == NF_HTTP_OK);
    nf_request_free(r);
    CHECK(nf_http_parse_request(four, strlen(four), &few, &r, &used) == NF_HTTP_TOO_MANY_HEADERS);
    CHECK(nf_http_parse_request(query, strlen(query), &few, &r, &used) == NF_HTTP_TOO_MANY_HEADERS);
    CHECK(r == NULL);
    CHECK(nf_http_status_code(NF_HTTP_TOO_MANY_HEADERS) == 431);

    /* The default limit, with a default-sized head. */
    char big[8192];
    size_t off = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 65; i++)
        off += (size_t)snprintf(big + off, sizeof(big) - off, "H%d: v\r\n", i);
    off += (size_t)snprintf(big + off, sizeof(big) - off, "\r\n");
    CHECK(nf_http_parse_request(big, off, &lim, &r, &used) == NF_HTTP_TOO_MANY_HEADERS);
}

static void test_bad_requests(void)
{
    static const char *bad[] = {
        "\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\n\r\n",                /* leading empty line */
        "GET / HTTP/1.1\n\n",                        /* bare LF */
        "GET / HTTP/1.1\r\nA: 1\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\rB: 2\r\n\r\n",      /* bare CR */
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET /  HTTP/1.1\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / \r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "GET x HTTP/1.1\r\n\r\n",                    /* neither origin- nor absolute-form */
        "GET http:///echo HTTP/1.1\r\n\r\n",         /* absolute-form, empty authority */
        "GET http:/echo HTTP/1.1\r\n\r\n",
        "GET 1http://h/ HTTP/1.1\r\n\r\n",           /* a scheme starts with a letter */
        "GET h_p://h/ HTTP/1.1\r\n\r\n",
        "GET h:80 HTTP/1.1\r\n\r\n",                 /* authority-form */
        "GET * HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",   /* two Host lines (RFC 9112 3.2) */
        "GET / HTTP/1.1\r\nhost: a\r\nX: 1\r\nHOST: b\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1.1x\r\n\r\n",
        "GET / HTTP/11\r\n\r\n",
        "GET / HTTP/a.1\r\n\r\n",
        "GET / HTTP/1.1\r\nA : 1\r\n\r\n",           /* space before colon */
        "GET / HTTP/1.1\r\nA\t: 1\r\n\r\n",
        "GET / HTTP/1.1\r\n: 1\r\n\r\n",             /* empty name */
        "GET / HTTP/1.1\r\nA: 1\r\n b\r\n\r\n",      /* obs-fold */
        "GET / HTTP/1.1\r\nA: 1\r\n\tb\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nA(b: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n",       /* control byte */
        "GET / HTTP/1.1\r\nA: x\x7fy\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nf_http_status st = status_of(bad[i]);
        if (st != NF_HTTP_BAD_REQUEST)
            fprintf(stderr, "  case %zu: status %d\n", i, (int)st);
        CHECK(st == NF_HTTP_BAD_REQUEST);
    }

    /* NUL anywhere, even before the head is complete. */
    static const char nul[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    nf_request *r = NULL;
    size_t used;
    CHECK(nf_http_parse_request(nul, sizeof(nul) - 1, &lim, &r, &used) == NF_HTTP_BAD_REQUEST);
    CHECK(nf_http_parse_request(nul, 8, &lim, &r, &used) == NF_HTTP_BAD_REQUEST);
    /* A bare LF fails fast too. */
    CHECK(nf_http_parse_request("GET / HTTP/1.1\nHost", 19, &lim, &r, &used) == NF_HTTP_BAD_REQUEST);

    CHECK(status_of("GET / HTTP/2.0\r\n\r\n") == NF_HTTP_BAD_VERSION);
    CHECK(status_of("GET / HTTP/1.2\r\n\r\n") == NF_HTTP_BAD_VERSION);
    CHECK(status_of("GET / HTTP/0.9\r\n\r\n") == NF_HTTP_BAD_VERSION);
    CHECK(nf_http_status_code(NF_HTTP_BAD_VERSION) == 505);
    CHECK(nf_http_status_code(NF_HTTP_BAD_REQUEST) == 400);

    /* Tolerated: odd methods (the caller answers 405), raw UTF-8 in the
     * target, obs-text in values, any header token. */
    CHECK(status_of("M-SEARCH /%C3%A9?q HTTP/1.1\r\n\r\n") == NF_HTTP_OK);
    CHECK(status_of("GET /\xc3\xa9 HTTP/1.1\r\n\r\n") == NF_HTTP_OK);
    CHECK(status_of("GET / HTTP/1.1\r\nX-A: caf\xc3\xa9\r\n!#$%&'*+-.^_`|~: 1\r\n\r\n") == NF_HTTP_OK);
}

static bool decoded(const char *target, const char *want)
{
    char req[256], out[64];
    size_t len = 999;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", target);
    nf_request *r = parse(req, NULL);
    if (!r)
        return false;
    bool ok = nf_request_path_decoded(r, out, sizeof(out), &len);
    nf_request_free(r);
    if (!want)
        return !ok;
    return ok && len == strlen(want) && strcmp(out, want) == 0;
}

static void test_path_decoded(void)
{
    CHECK(decoded("/a%20b+c?x=%20", "/a b+c"));
    CHECK(decoded("/%2e%2E/%2F", "/../\x2f"));
    CHECK(decoded("/caf%C3%A9", "/caf\xc3\xa9"));
    CHECK(decoded("/%00", NULL));
    CHECK(decoded("/%", NULL));
    CHECK(decoded("/%4", NULL));
    CHECK(decoded("/%zz", NULL));
    /* 63 bytes + NUL fit a 64-byte buffer, 64 do not. */
    char longpath[80];
    memset(longpath, 'a', sizeof(longpath));
    longpath[0] = '/';
    longpath[63] = '\0';
    CHECK(decoded(longpath, longpath));
    longpath[63] = 'a';
    longpath[64] = '\0';
    CHECK(decoded(longpath, NULL));
}

static void test_has_token(void)
{
    CHECK(nf_http_header_has_token(NF_SLICE("Upgrade"), "upgrade"));
    CHECK(nf_http_header_has_token(NF_SLICE("keep-alive, Upgrade"), "upgrade"));
    CHECK(nf_http_header_has_token(NF_SLICE("keep-alive ,\tUPGRADE\t"), "upgrade"));
    CHECK(nf_http_header_has_token(NF_SLICE(",,upgrade,"), "upgrade"));
    CHECK(!nf_http_header_has_token(NF_SLICE("upgrades"), "upgrade"));
    CHECK(!nf_http_header_has_token(NF_SLICE("up grade"), "upgrade"));
    CHECK(!nf_http_header_has_token(NF_SLICE(""), "upgrade"));
    CHECK(!nf_http_header_has_token((nf_slice){ NULL, 0 }, "upgrade"));
}

/* Drains out into a NUL-terminated string (caller frees). */
static char *drain(struct evbuffer *out)
{
    size_t n = evbuffer_get_length(out);
    char *s = malloc(n + 1);
    evbuffer_remove(out, s, n);
    s[n] = '\0';
    return s;
}

static void test_respond(void)
{
    struct evbuffer *out = evbuffer_new();
    nf_http_respond(out, 405, "Allow: GET\r\nX-Content-Type-Options: nosniff\r\n",
                    "text/plain; charset=utf-8", "Method Not Allowed\n", 19, false);
    char *s = drain(out);
    CHECK(strcmp(s, "HTTP/1.1 405 Method Not Allowed\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 19\r\n"
                    "Connection: close\r\n"
                    "Allow: GET\r\n"
                    "X-Content-Type-Options: nosniff\r\n"
                    "\r\n"
                    "Method Not Allowed\n") == 0);
    free(s);

    /* The HEAD probe (docs/protocol.md §3.1): 302, no body, no Location. */
    nf_http_respond(out, 302, NULL, NULL, NULL, 0, true);
    s = drain(out);
    CHECK(strcmp(s, "HTTP/1.1 302 Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n") == 0);
    free(s);

    /* head_only keeps the length but drops the body. */
    nf_http_respond(out, 200, NULL, "text/plain", "hello", 5, true);
    s = drain(out);
    CHECK(strcmp(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                    "Connection: close\r\n\r\n") == 0);
    free(s);

    nf_http_respond(out, 431, NULL, NULL, "x", 1, false);
    s = drain(out);
    CHECK(strncmp(s, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
    free(s);

    CHECK(strcmp(nf_http_reason(505), "HTTP Version Not Supported") == 0);
    CHECK(strcmp(nf_http_reason(599), "Unknown") == 0);
    evbuffer_free(out);
}

/* RFC 9112 3.2.2: a server accepts the absolute-form; the path and query are
 * what the origin-form would carry. */
static void test_absolute_form(void)
{
    static const struct { const char *target, *path, *query; } cases[] = {
        { "http://127.0.0.1:8080/echo", "/echo", "" },
        { "HTTP://h/echo?a=1&b", "/echo", "a=1&b" },
        { "ws://h", "/", "" },
        { "wss://user@h:1?x=y", "/", "x=y" },
        { "coap+tcp.x-1://h/a/b", "/a/b", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].target);
        nf_request *r = parse(req, NULL);
        CHECK(r != NULL);
        if (!r)
            continue;
        CHECK_STR(nf_request_path(r), cases[i].path);
        CHECK_STR(nf_request_query(r), cases[i].query);
        nf_request_free(r);
    }
}

/* Collects the elements of a list field into "a|b|c". */
static void list_of(const nf_request *r, const char *name, char *out, size_t cap)
{
    nf_http_cursor cur = { 0, 0 };
    nf_slice e;
    size_t n = 0;
    out[0] = '\0';
    while (nf_request_list_next(r, nf_slice_of(name, strlen(name)), &cur, &e))
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", n ? "|" : "", (int)e.len, e.ptr);
}

/* RFC 9110 5.3: the lines of a list field are one list; 5.6.1: OWS around
 * elements, empty elements. Query-carried headers are not wire fields. */
static void test_lists(void)
{
    nf_request *r = parse("GET /?X-Websocket-Header-Connection=close HTTP/1.1\r\n"
                          "Connection: keep-alive\r\n"
                          "X: y\r\n"
                          "connection: \t , Upgrade\t,, \r\n"
                          "Sec-WebSocket-Protocol:\tchat\t\r\n"
                          "Sec-WebSocket-Protocol: ,superchat , x\r\n"
                          "Empty:\r\n"
                          "\r\n", NULL);
    CHECK(r != NULL);
    if (!r)
        return;
    char got[128];
    list_of(r, "Connection", got, sizeof got);
    CHECK(strcmp(got, "keep-alive|Upgrade") == 0);
    list_of(r, "Sec-WebSocket-Protocol", got, sizeof got);
    CHECK(strcmp(got, "chat|superchat|x") == 0);
    list_of(r, "Empty", got, sizeof got);
    CHECK(strcmp(got, "") == 0);
    list_of(r, "Missing", got, sizeof got);
    CHECK(strcmp(got, "") == 0);
    CHECK(nf_request_list_has(r, NF_SLICE("CONNECTION"), "upgrade"));
    CHECK(nf_request_list_has(r, NF_SLICE("connection"), "Keep-Alive"));
    CHECK(!nf_request_list_has(r, NF_SLICE("connection"), "close"));   /* from the query */
    CHECK(nf_request_field_lines(r, NF_SLICE("connection")) == 2);
    CHECK(nf_request_field_lines(r, NF_SLICE("x")) == 1);
    CHECK(nf_request_field_lines(r, NF_SLICE("Missing")) == 0);
    nf_request_free(r);
}

#define UPGRADE_LINE "GET /echo HTTP/1.1\r\n"
#define UPGRADE_HOST "Host: h\r\n"
#define UPGRADE_UPC "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define UPGRADE_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define UPGRADE_VER "Sec-WebSocket-Version: 13\r\n"
#define UPGRADE_OK UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_KEY UPGRADE_VER

/* nf_http_upgrade_check on a request; returns its result and fills up. */
static int upgrade_of(const char *req, nf_upgrade *up, const char **why)
{
    nf_http_status st;
    nf_request *r = parse(req, &st);
    if (!r)
        return 1000 + (int)st;   /* the parser refused it */
    int rc = nf_http_upgrade_check(r, up, why);
    /* The slices point into r: copy what the caller checks. */
    static char proto[64], origin[64];
    snprintf(proto, sizeof proto, "%.*s", (int)up->protocol.len, up->protocol.ptr ? up->protocol.ptr : "");
    snprintf(origin, sizeof origin, "%.*s", (int)up->origin.len, up->origin.ptr ? up->origin.ptr : "");
    up->protocol = nf_slice_of(proto, strlen(proto));
    up->origin = nf_slice_of(origin, strlen(origin));
    nf_request_free(r);
    return rc;
}

static void test_upgrade_check(void)
{
    nf_upgrade up;
    const char *why = NULL;

    CHECK(upgrade_of(UPGRADE_OK "\r\n", &up, &why) == 0);
    CHECK(up.protocol.len == 0 && !up.has_origin);
    /* Connection and Upgrade over several lines (RFC 9110 5.3), as proxies send them. */
    CHECK(upgrade_of(UPGRADE_LINE UPGRADE_HOST "Connection: keep-alive\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\n" UPGRADE_KEY UPGRADE_VER "\r\n", &up, &why) == 0);
    CHECK(upgrade_of("GET http://h:1/echo HTTP/1.1\r\n" UPGRADE_HOST UPGRADE_UPC UPGRADE_KEY UPGRADE_VER "\r\n",
                     &up, &why) == 0);
    /* Subprotocols: OWS trimmed, lines joined, the first one selected. */
    CHECK(upgrade_of(UPGRADE_OK "Sec-WebSocket-Protocol: \tchat\t\r\n\r\n", &up, &why) == 0);
    CHECK_STR(up.protocol, "chat");
    CHECK(upgrade_of(UPGRADE_OK "Sec-WebSocket-Protocol: ,\r\nSec-WebSocket-Protocol:  v2 ,v1\r\n\r\n", &up, &why) == 0);
    CHECK_STR(up.protocol, "v2");
    CHECK(upgrade_of(UPGRADE_OK "Sec-WebSocket-Protocol: a b\r\n\r\n", &up, &why) == -400);
    CHECK(upgrade_of(UPGRADE_OK "Sec-WebSocket-Protocol: chat, \"x\"\r\n\r\n", &up, &why) == -400);
    CHECK(upgrade_of(UPGRADE_OK "Origin: http://a.example\r\n\r\n", &up, &why) == 0);
    CHECK(up.has_origin);
    CHECK_STR(up.origin, "http://a.example");

    /* Refused: 400, or 426 for the version. */
    static const struct { const char *req; int rc; } bad[] = {
        { "GET /echo HTTP/1.0\r\n" UPGRADE_HOST UPGRADE_UPC UPGRADE_KEY UPGRADE_VER "\r\n", -400 },
        { UPGRADE_LINE UPGRADE_UPC UPGRADE_KEY UPGRADE_VER "\r\n", -400 },                       /* no Host */
        { UPGRADE_LINE UPGRADE_HOST "Upgrade: websocket\r\n" UPGRADE_KEY UPGRADE_VER "\r\n", -400 },
        { UPGRADE_LINE UPGRADE_HOST "Connection: Upgrade\r\n" UPGRADE_KEY UPGRADE_VER "\r\n", -400 },
        { UPGRADE_LINE UPGRADE_HOST "Upgrade: websocket2\r\nConnection: Upgrade\r\n" UPGRADE_KEY UPGRADE_VER "\r\n", -400 },
        { UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_KEY "\r\n", -426 },                   /* no version */
        { UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_KEY "Sec-WebSocket-Version: 8\r\n\r\n", -426 },
        { UPGRADE_OK UPGRADE_VER "\r\n", -400 },                                               /* version twice */
        { UPGRADE_OK "Sec-WebSocket-Version: 8\r\n\r\n", -400 },
        { UPGRADE_OK UPGRADE_KEY "\r\n", -400 },                                               /* key twice */
        { UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_VER "\r\n", -400 },                    /* no key */
        { UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_VER "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n\r\n", -400 },
        { UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_VER "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ===\r\n\r\n", -400 },
        { UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_VER "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==\r\n\r\n", -400 },
        { UPGRADE_LINE UPGRADE_HOST UPGRADE_UPC UPGRADE_VER "Sec-WebSocket-Key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", -400 },
        { UPGRADE_OK "Origin: http://a.example\r\nOrigin: http://b.example\r\n\r\n", -400 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        int rc = upgrade_of(bad[i].req, &up, &why);
        CHECK(rc == bad[i].rc);
        CHECK(why != NULL && *why != '\0');
        if (rc != bad[i].rc)
            fprintf(stderr, "case %zu: got %d\n", i, rc);
    }
    /* Two Host lines never reach the check: the parser refuses them. */
    CHECK(upgrade_of(UPGRADE_OK UPGRADE_HOST "\r\n", &up, &why) == 1000 + (int)NF_HTTP_BAD_REQUEST);
}

int main(void)
{
    lim = (nf_http_limits){ .max_header_bytes = 8192, .max_headers = 64 };
    test_simple_get();
    test_pipelined_bytes();
    test_query_headers_a05();
    test_query_headers_details();
    test_reconnect();
    test_incomplete_byte_by_byte();
    test_too_large();
    test_too_many_headers();
    test_bad_requests();
    test_path_decoded();
    test_has_token();
    test_absolute_form();
    test_lists();
    test_upgrade_check();
    test_respond();
    return TEST_REPORT();
}
