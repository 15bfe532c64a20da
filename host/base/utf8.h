/* utf8.h - UTF-8 validation (RFC 3629): what a text message must be (RFC
 * 6455 8.1), checked as its bytes arrive, fragment by fragment, and what an
 * ID must be. The one checker of the project: host/ws/ws.c feeds it frames as
 * they come (and inflated messages whole), host/core/ids.c checks IDs. */
#ifndef NF_UTF8_H
#define NF_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The state between calls of nf_utf8_step: NF_UTF8_OK between characters,
 * NF_UTF8_BAD once a byte was wrong (it stays so), any other value in the
 * middle of a character. Start with NF_UTF8_OK. */
#define NF_UTF8_OK 0u
#define NF_UTF8_BAD 0xFFFFFFFFu

/* The state after the n bytes at s, from state st: a message split anywhere
 * (across fragments or reads) is checked as if it came whole. Refuses
 * overlong forms, surrogates (U+D800..U+DFFF) and anything past U+10FFFF.
 * The message is well-formed if the state after its last byte is
 * NF_UTF8_OK (another value there: a character cut short). */
uint32_t nf_utf8_step(uint32_t st, const uint8_t *s, size_t n);

/* Is s[0..len) well-formed UTF-8, whole (nf_utf8_step from NF_UTF8_OK)? */
bool nf_utf8_valid(const uint8_t *s, size_t len);

#endif
