/* fuzz_http.c - libFuzzer target for the HTTP request-head parser.
 * Build: clang -fsanitize=fuzzer,address,undefined -Ihost spec/fuzz/fuzz_http.c
 *        host/http_request.c host/codec.c
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
    nf_limits lim = nf_limits_default();
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
    }
    char path[256];
    size_t len;
    if (nf_request_path_decoded(r, path, sizeof(path), &len) && len >= sizeof(path))
        __builtin_trap();
    sink ^= (unsigned char)nf_request_reconnect_tries(r);
    nf_request_free(r);
    return 0;
}
