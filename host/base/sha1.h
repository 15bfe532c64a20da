/* sha1.h - SHA-1: the WebSocket accept key (RFC 6455 4.2.2) and the
 * fingerprint of the app's files that hot reload compares. */
#ifndef NF_SHA1_H
#define NF_SHA1_H

#include <stddef.h>
#include <stdint.h>

void nf_sha1(const void *data, size_t len, uint8_t digest[20]);

/* Base64 (RFC 4648, with padding). out needs 4*ceil(len/3)+1 bytes; it is
 * NUL-terminated. Returns the length written, without the NUL. */
size_t nf_base64_encode(const uint8_t *in, size_t len, char *out);

/* Sec-WebSocket-Accept for a client key: base64(sha1(key + GUID)).
 * out needs 29 bytes (28 + NUL). */
void nf_ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif
