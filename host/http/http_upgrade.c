/* http_upgrade.c - the WebSocket opening handshake read from a parsed
 * request (RFC 6455 4.2.1): which fields must be there, once or as lists.
 * Pure: see nf_http_upgrade_check in http.h. */
#include "http.h"

#include <string.h>

#define WS_KEY_CHARS 22   /* base64 of 16 bytes: 22 characters, then "==" */

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* RFC 6455 4.2.1 item 5: "a base64-encoded value that, when decoded, is 16
 * bytes in length". */
static bool ws_key_valid(nf_slice key)
{
    if (key.len != WS_KEY_CHARS + 2 || key.ptr[WS_KEY_CHARS] != '=' || key.ptr[WS_KEY_CHARS + 1] != '=')
        return false;
    for (size_t i = 0; i < WS_KEY_CHARS; i++)
        if (!is_base64_char(key.ptr[i]))
            return false;
    return true;
}

/* The value of a field that must come on exactly one line. */
static bool single_field(const nf_request *r, nf_slice name, nf_slice *value)
{
    return nf_request_field_lines(r, name) == 1 && nf_request_header(r, name, 0, value);
}

/* The first offered subprotocol; -1 if an element is not a token. */
static int first_protocol(const nf_request *r, nf_slice *out)
{
    nf_http_cursor cur = { 0, 0 };
    nf_slice e;
    *out = NF_SLICE_EMPTY;
    while (nf_request_list_next(r, NF_SLICE("Sec-WebSocket-Protocol"), &cur, &e)) {
        if (!nf_http_is_token(e))
            return -1;
        if (out->len == 0)
            *out = e;
    }
    return 0;
}

int nf_http_upgrade_check(const nf_request *req, nf_upgrade *up, const char **why)
{
    nf_slice v;
    memset(up, 0, sizeof *up);
    if (nf_request_http_minor(req) < 1 || !nf_request_list_has(req, NF_SLICE("Upgrade"), "websocket") ||
        !nf_request_list_has(req, NF_SLICE("Connection"), "upgrade")) {
        *why = "expected a WebSocket upgrade";
        return -400;
    }
    if (nf_request_field_lines(req, NF_SLICE("Host")) != 1) {
        *why = "missing Host";   /* two or more are refused by the parser */
        return -400;
    }
    size_t versions = nf_request_field_lines(req, NF_SLICE("Sec-WebSocket-Version"));
    if (versions > 1) {
        *why = "more than one Sec-WebSocket-Version";
        return -400;
    }
    if (!single_field(req, NF_SLICE("Sec-WebSocket-Version"), &v) || !nf_slice_eq_cstr(v, "13")) {
        *why = "unsupported WebSocket version";
        return -426;
    }
    if (!single_field(req, NF_SLICE("Sec-WebSocket-Key"), &up->key) || !ws_key_valid(up->key)) {
        *why = "bad Sec-WebSocket-Key";
        return -400;
    }
    size_t origins = nf_request_field_lines(req, NF_SLICE("Origin"));
    if (origins > 1) {
        *why = "more than one Origin";
        return -400;
    }
    up->has_origin = origins == 1 && nf_request_header(req, NF_SLICE("Origin"), 0, &up->origin);
    if (first_protocol(req, &up->protocol) != 0) {
        *why = "bad Sec-WebSocket-Protocol";
        return -400;
    }
    return 0;
}
