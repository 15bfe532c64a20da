/* utf8.h - UTF-8 validation (RFC 3629): what a text message must be (RFC
 * 6455 8.1) when wslay could not check it, e.g. after inflating. */
#ifndef NF_UTF8_H
#define NF_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Is s[0..len) well-formed UTF-8: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF, no sequence cut short? */
bool nf_utf8_valid(const uint8_t *s, size_t len);

#endif
