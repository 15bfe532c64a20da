/* slice.c - see slice.h. */
#include "slice.h"

#include <string.h>

bool nf_slice_eq(nf_slice a, nf_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool nf_slice_eq_cstr(nf_slice a, const char *s)
{
    return nf_slice_eq(a, nf_slice_of(s, strlen(s)));
}
