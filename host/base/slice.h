/* slice.h - a view of bytes someone else owns: the one string type of the
 * host, used by every layer (the codec, HTTP, dictionaries, the core).
 *
 * A slice owns nothing and is never freed; it is valid as long as the bytes
 * it points into. ptr is never NULL for a slice made by these helpers (an
 * empty one points at ""), so printing "%.*s" is always safe. */
#ifndef NF_SLICE_H
#define NF_SLICE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct nf_slice {
    const char *ptr;
    size_t len;
} nf_slice;

#define NF_SLICE(lit) ((nf_slice){ (lit), sizeof(lit) - 1 })
#define NF_SLICE_EMPTY ((nf_slice){ "", 0 })

static inline nf_slice nf_slice_of(const char *p, size_t n) { return (nf_slice){ p, n }; }
/* Same length and bytes. */
bool nf_slice_eq(nf_slice a, nf_slice b);
/* Equal to the NUL-terminated s (without its NUL). */
bool nf_slice_eq_cstr(nf_slice a, const char *s);

#endif
