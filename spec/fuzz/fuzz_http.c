/* fuzz_http.c - libFuzzer target for the HTTP request-head parser.
 * Build: clang -fsanitize=fuzzer,address,undefined -Ihost spec/fuzz/fuzz_http.c
 *        host/http/http_request.c host/http/http_upgrade.c host/codec/codec.c
 * Every accessor is exercised on success so ASan sees each slice read. */
#include "http.h"

#include <stdint.h>

static void touch(nf_slice s, volatile unsigned char *sink)
{
    for (size_t i = 0; i <= s.len; i++)   /* <=: slices are NUL-terminated */
        *sink ^= (unsigned char)s.ptr[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static volatile unsigned char sink;
    nf_http_limits lim = { .max_header_bytes = 8192, .max_headers = 64 };   /* the flags' defaults */
    nf_request *r = NULL;
    size_t head_len = 0;

    nf_http_status st = nf_http_parse_request((const char *)data, size, &lim, &r, &head_len);
    if (st != NF_HTTP_OK)
        return 0;
    if (head_len > size || head_len > lim.max_header_bytes)
        __builtin_trap();

    touch(nf_request_method(r), &sink);
    touch(nf_request_path(r), &sink);
    touch(nf_request_query(r), &sink);
    size_t cursor = 0;
    nf_slice name, value, v;
    while (nf_request_header_next(r, &cursor, &name, &value)) {
        touch(name, &sink);
        touch(value, &sink);
        if (!nf_request_header(r, name, 0, &v))   /* every name can be looked up */
            __builtin_trap();
        sink ^= (unsigned char)nf_http_header_has_token(value, "upgrade");
        /* Every field read as a list: each element inside the request, trimmed. */
        nf_http_cursor cur = { 0, 0 };
        nf_slice e;
        size_t n = 0;
        while (nf_request_list_next(r, name, &cur, &e)) {
            touch(e, &sink);
            if (e.len == 0 || e.ptr[0] == ' ' || e.ptr[0] == '\t' || e.ptr[e.len - 1] == ' ' || ++n > lim.max_header_bytes)
                __builtin_trap();
        }
        sink ^= (unsigned char)nf_request_field_lines(r, name);
    }
    nf_upgrade up;
    const char *why = NULL;
    int rc = nf_http_upgrade_check(r, &up, &why);
    if (rc == 0) {
        if (up.key.len != 24)
            __builtin_trap();
        touch(up.key, &sink);
        if (up.protocol.len && !nf_http_is_token(up.protocol))
            __builtin_trap();
    } else if ((rc != -400 && rc != -426) || why == NULL) {
        __builtin_trap();
    }
    char path[256];
    size_t len;
    if (nf_request_path_decoded(r, path, sizeof(path), &len) && len >= sizeof(path))
        __builtin_trap();
    sink ^= (unsigned char)nf_request_reconnect_tries(r);
    nf_request_free(r);
    return 0;
}
