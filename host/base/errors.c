/* errors.c - nf_strerror: names an NF_E* code (errors.h). */
#include "errors.h"

#include <string.h>

const char *nf_strerror(int err)
{
    if (err == 0)
        return "ok";
    if (err == NF_EOF)
        return "end of stream";
    if (err < 0 && err > NF_EOF)
        return strerror(-err);
    return "unknown error";
}
