/* exchange_key.h - connection IDs inside NATS subjects and bus markers
 * (docs/protocol.md §17.2.5, 14.4, 14.8).
 *
 * A connection ID is whatever the application chose: "alice@example.com",
 * "bob smith", unicode. A NATS subject cannot carry all of that: '.'
 * separates tokens, '*' and '>' are wildcards, white space ends the subject
 * on the wire. Field 0 of a bus message ends at the first ';'. So every C
 * node writes an ID into a subject token and into its marker (exchange_marker.h)
 * percent-encoded, the same way:
 *
 *     every byte outside 0x21..0x7E, and each of  % . * > ;
 *     becomes '%' and two upper-case hex digits; every other byte is itself.
 *
 *     "bob smith"          -> "bob%20smith"
 *     "alice@example.com"  -> "alice@example%2Ecom"
 *     "zoë"                -> "zo%C3%AB"
 *     a UUID v4            -> itself
 *
 * The mapping is one-to-one: decoding accepts only what encoding produces.
 * Redis channel names are byte strings and carry IDs as they are (Go's
 * channel names), so only NATS subjects and markers use this.
 *
 * A Go node names the subject with the raw ID: it can address an ID over NATS
 * only if encoding leaves it unchanged (nf_key_is_plain), e.g. its UUIDs. */
#ifndef NF_EXCHANGE_KEY_H
#define NF_EXCHANGE_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

/* Bytes nf_key_encode() writes for id: between id.len and 3 * id.len. */
size_t nf_key_encoded_len(nf_slice id);

/* Writes the encoding of id into out (nf_key_encoded_len bytes, no NUL);
 * returns that length. */
size_t nf_key_encode(nf_slice id, char *out);

/* Decodes in into out (at most in.len bytes; out may be in.ptr). Returns the
 * decoded length, or NF_EINVAL (errors.h) if in is not an encoding: a byte
 * that must be encoded, or a '%' without two upper-case hex digits after it. */
long nf_key_decode(nf_slice in, char *out);

/* True when encoding changes nothing (a Go node can address this ID). */
bool nf_key_is_plain(nf_slice id);

#endif
