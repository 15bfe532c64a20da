/* shdict.h - a dictionary every worker of a process shares (neffos.shared,
 * the spirit of OpenResty's ngx.shared.DICT): string keys, values that are
 * strings, numbers or booleans, an optional expiry per key, bounded in
 * bytes. One mutex guards it; every operation copies in or out under it
 * and none calls back, so a worker never waits on another's Lua code, only
 * on one table operation.
 *
 * Bounded: keys and values count with their bytes plus NF_SHDICT_OVERHEAD
 * each; a set or add that would pass the capacity first drops expired keys,
 * then fails with NF_ENOBUFS ("no memory" for Lua): nothing is evicted
 * behind the app's back. Times are milliseconds of nf_now_ms(). */
#ifndef NF_SHDICT_H
#define NF_SHDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slice.h"

#define NF_SHDICT_OVERHEAD 64            /* bytes counted per key beside its key and value */
#define NF_SHDICT_MAX_KEY 65535          /* bytes of one key */

typedef struct nf_shdict nf_shdict;

typedef enum nf_shval_type { NF_SHVAL_NIL = 0, NF_SHVAL_BOOLEAN, NF_SHVAL_NUMBER, NF_SHVAL_STRING } nf_shval_type;

typedef struct nf_shval {
    nf_shval_type type;
    bool b;
    double n;
    nf_slice s;                    /* NF_SHVAL_STRING: the bytes (see nf_shdict_get) */
} nf_shval;

/* A dictionary of at most capacity bytes. NULL when out of memory. */
nf_shdict *nf_shdict_new(size_t capacity);
void nf_shdict_free(nf_shdict *d);
size_t nf_shdict_capacity(const nf_shdict *d);
/* Bytes in use now (keys, values, overhead; expired keys until dropped). */
size_t nf_shdict_used(nf_shdict *d);

/* The value of key (type NIL if absent or expired). A string is copied into
 * *buf (realloc'd as needed, *cap its size; free it when done) and v->s
 * points there. Returns 0 or NF_ENOMEM. */
int nf_shdict_get(nf_shdict *d, nf_slice key, nf_shval *v, char **buf, size_t *cap);

/* Sets key to v (NIL deletes); ttl_ms 0 = no expiry. Returns 0, NF_ENOBUFS
 * (over the capacity), NF_ENAMETOOLONG (key over NF_SHDICT_MAX_KEY),
 * NF_EINVAL (empty key) or NF_ENOMEM. */
int nf_shdict_set(nf_shdict *d, nf_slice key, const nf_shval *v, uint64_t ttl_ms);
/* Like set, but only if key is absent (or expired): NF_EEXIST otherwise. */
int nf_shdict_add(nf_shdict *d, nf_slice key, const nf_shval *v, uint64_t ttl_ms);
/* Adds by to the number at key, atomically; an absent key starts from
 * init (and gets init_ttl_ms) when has_init, else NF_ENOENT. NF_EINVAL when
 * the value is not a number. *out receives the new value. */
int nf_shdict_incr(nf_shdict *d, nf_slice key, double by, bool has_init, double init, uint64_t init_ttl_ms,
                   double *out);
/* Removes key (absent: no-op). */
void nf_shdict_delete(nf_shdict *d, nf_slice key);
/* Calls fn for at most max keys that have not expired (0 = all), under the
 * lock: fn must only copy the key. */
void nf_shdict_keys(nf_shdict *d, size_t max, void (*fn)(void *ud, nf_slice key), void *ud);
/* Removes every key. */
void nf_shdict_flush_all(nf_shdict *d);

#endif
