/* shdict.c - see shdict.h. One entry per key in nf_dict (which does not
 * copy keys: each entry holds its key and string value in one block). */
#include "shdict.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dict.h"
#include "errors.h"

typedef struct entry {
    nf_shval_type type;
    bool b;
    double n;
    uint64_t expires_ms;           /* 0 = never */
    size_t key_len, str_len;
    char data[];                   /* key, then the string value */
} entry;

struct nf_shdict {
    pthread_mutex_t mu;
    nf_dict *d;                    /* under mu */
    size_t used;                   /* under mu */
    size_t capacity;
};

static size_t entry_bytes(size_t key_len, size_t str_len) { return key_len + str_len + NF_SHDICT_OVERHEAD; }

static bool expired(const entry *e, uint64_t now) { return e->expires_ms && e->expires_ms <= now; }

nf_shdict *nf_shdict_new(size_t capacity)
{
    nf_shdict *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->d = nf_dict_new();
    if (d->d == NULL) {
        free(d);
        return NULL;
    }
    d->capacity = capacity;
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

static void drop(nf_shdict *d, entry *e)
{
    nf_dict_delete(d->d, nf_slice_of(e->data, e->key_len));
    d->used -= entry_bytes(e->key_len, e->str_len);
    free(e);
}

/* The walk starts over after each removal: the table must not change
 * while it is walked (flush_all is rare). */
static void clear(nf_shdict *d)
{
    for (;;) {
        size_t cur = 0;
        entry *e = nf_dict_next(d->d, &cur, NULL);
        if (e == NULL)
            break;
        drop(d, e);
    }
}

void nf_shdict_free(nf_shdict *d)
{
    if (d == NULL)
        return;
    size_t cur = 0;
    entry *e;
    while ((e = nf_dict_next(d->d, &cur, NULL)) != NULL)
        free(e);
    nf_dict_free(d->d);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

size_t nf_shdict_capacity(const nf_shdict *d) { return d->capacity; }

size_t nf_shdict_used(nf_shdict *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->used;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* Under mu: the live entry of key, dropping it if expired. */
static entry *find(nf_shdict *d, nf_slice key, uint64_t now)
{
    entry *e = nf_dict_get(d->d, key);
    if (e && expired(e, now)) {
        drop(d, e);
        return NULL;
    }
    return e;
}

/* Under mu: drops every expired entry (a set that would not fit tries this
 * before it fails). Collected first: the table must not change while it is
 * walked. */
static void purge_expired(nf_shdict *d, uint64_t now)
{
    size_t n = nf_dict_size(d->d), k = 0, cur = 0;
    entry **dead = n ? malloc(n * sizeof *dead) : NULL;
    entry *e;
    if (dead == NULL)
        return;
    while ((e = nf_dict_next(d->d, &cur, NULL)) != NULL)
        if (expired(e, now))
            dead[k++] = e;
    for (size_t i = 0; i < k; i++)
        drop(d, dead[i]);
    free(dead);
}

int nf_shdict_get(nf_shdict *d, nf_slice key, nf_shval *v, char **buf, size_t *cap)
{
    int rc = 0;
    memset(v, 0, sizeof *v);
    pthread_mutex_lock(&d->mu);
    entry *e = find(d, key, nf_now_ms());
    if (e) {
        v->type = e->type;
        v->b = e->b;
        v->n = e->n;
        if (e->type == NF_SHVAL_STRING) {
            if (*cap < e->str_len + 1) {
                char *p = realloc(*buf, e->str_len + 1);
                if (p == NULL) {
                    rc = NF_ENOMEM;
                    v->type = NF_SHVAL_NIL;
                    goto out;
                }
                *buf = p;
                *cap = e->str_len + 1;
            }
            memcpy(*buf, e->data + e->key_len, e->str_len);
            v->s = nf_slice_of(*buf, e->str_len);
        }
    }
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* Under mu: replaces (or inserts) key's entry. */
static int store(nf_shdict *d, nf_slice key, entry *old, const nf_shval *v, uint64_t ttl_ms, uint64_t now)
{
    if (v->type == NF_SHVAL_NIL) {
        if (old)
            drop(d, old);
        return 0;
    }
    size_t str_len = v->type == NF_SHVAL_STRING ? v->s.len : 0;
    size_t need = entry_bytes(key.len, str_len), freed = old ? entry_bytes(old->key_len, old->str_len) : 0;
    if (d->used - freed + need > d->capacity) {
        purge_expired(d, now);
        old = nf_dict_get(d->d, key);   /* it may have been expired */
        freed = old ? entry_bytes(old->key_len, old->str_len) : 0;
        if (d->used - freed + need > d->capacity)
            return NF_ENOBUFS;
    }
    entry *e = malloc(sizeof *e + key.len + str_len);
    if (e == NULL)
        return NF_ENOMEM;
    e->type = v->type;
    e->b = v->b;
    e->n = v->n;
    e->expires_ms = ttl_ms ? now + ttl_ms : 0;
    e->key_len = key.len;
    e->str_len = str_len;
    memcpy(e->data, key.ptr, key.len);
    if (str_len)
        memcpy(e->data + key.len, v->s.ptr, str_len);
    if (old)
        drop(d, old);
    if (nf_dict_set(d->d, nf_slice_of(e->data, key.len), e) != 0) {
        free(e);
        return NF_ENOMEM;
    }
    d->used += need;
    return 0;
}

static int check_key(nf_slice key)
{
    if (key.len == 0)
        return NF_EINVAL;
    return key.len > NF_SHDICT_MAX_KEY ? NF_ENAMETOOLONG : 0;
}

static int set_or_add(nf_shdict *d, nf_slice key, const nf_shval *v, uint64_t ttl_ms, bool only_new)
{
    int rc = check_key(key);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&d->mu);
    uint64_t now = nf_now_ms();
    entry *old = find(d, key, now);
    rc = only_new && old ? NF_EEXIST : store(d, key, old, v, ttl_ms, now);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int nf_shdict_set(nf_shdict *d, nf_slice key, const nf_shval *v, uint64_t ttl_ms)
{
    return set_or_add(d, key, v, ttl_ms, false);
}

int nf_shdict_add(nf_shdict *d, nf_slice key, const nf_shval *v, uint64_t ttl_ms)
{
    return set_or_add(d, key, v, ttl_ms, true);
}

int nf_shdict_incr(nf_shdict *d, nf_slice key, double by, bool has_init, double init, uint64_t init_ttl_ms,
                   double *out)
{
    int rc = check_key(key);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&d->mu);
    uint64_t now = nf_now_ms();
    entry *e = find(d, key, now);
    if (e == NULL && !has_init) {
        rc = NF_ENOENT;
    } else if (e == NULL) {
        nf_shval v = { .type = NF_SHVAL_NUMBER, .n = init + by };
        rc = store(d, key, NULL, &v, init_ttl_ms, now);
        *out = v.n;
    } else if (e->type != NF_SHVAL_NUMBER) {
        rc = NF_EINVAL;
    } else {
        e->n += by;   /* in place: same size, same expiry */
        *out = e->n;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

void nf_shdict_delete(nf_shdict *d, nf_slice key)
{
    pthread_mutex_lock(&d->mu);
    entry *e = nf_dict_get(d->d, key);
    if (e)
        drop(d, e);
    pthread_mutex_unlock(&d->mu);
}

void nf_shdict_keys(nf_shdict *d, size_t max, void (*fn)(void *ud, nf_slice key), void *ud)
{
    pthread_mutex_lock(&d->mu);
    uint64_t now = nf_now_ms();
    size_t cur = 0, n = 0;
    entry *e;
    while ((e = nf_dict_next(d->d, &cur, NULL)) != NULL && (max == 0 || n < max)) {
        if (expired(e, now))
            continue;
        fn(ud, nf_slice_of(e->data, e->key_len));
        n++;
    }
    pthread_mutex_unlock(&d->mu);
}

void nf_shdict_flush_all(nf_shdict *d)
{
    pthread_mutex_lock(&d->mu);
    clear(d);
    pthread_mutex_unlock(&d->mu);
}
