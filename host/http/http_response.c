/* http_response.c - complete HTTP/1.1 responses for everything that is not
 * the 101 upgrade: errors, the HEAD probe, /health, static files.
 *
 * Every response closes the connection ("Connection: close"): the server is
 * a WebSocket server, and one request per TCP connection keeps the
 * non-upgrade path free of keep-alive state. */
#include "http.h"

#include <event2/buffer.h>

int nf_http_status_code(nf_http_status st)
{
    switch (st) {
    case NF_HTTP_OK: return 200;
    case NF_HTTP_INCOMPLETE: return 400;
    case NF_HTTP_BAD_REQUEST: return 400;
    case NF_HTTP_TOO_LARGE: return 431;
    case NF_HTTP_TOO_MANY_HEADERS: return 431;
    case NF_HTTP_BAD_VERSION: return 505;
    case NF_HTTP_NO_MEMORY: return 503;
    }
    return 500;
}

const char *nf_http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}

void nf_http_write_head(struct evbuffer *out, int status, const char *extra_headers,
                        const char *content_type, size_t content_length)
{
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, nf_http_reason(status));
    if (content_type)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
    evbuffer_add_printf(out, "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", content_length,
                        extra_headers ? extra_headers : "");
}

void nf_http_respond(struct evbuffer *out, int status, const char *extra_headers,
                     const char *content_type, const char *body, size_t body_len, bool head_only)
{
    nf_http_write_head(out, status, extra_headers, content_type, body_len);
    if (!head_only && body_len > 0)
        evbuffer_add(out, body, body_len);
}
