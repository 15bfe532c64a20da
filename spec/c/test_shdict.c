/* test_shdict.c - neffos.shared's dictionary (host/base/shdict.h): values of
 * each type, add and incr, expiry on a manual clock, the byte bound (a clear
 * NF_ENOBUFS, expired keys dropped first, nothing evicted), keys, and
 * increments from several threads at once losing nothing. */
#include <pthread.h>
#include <stdlib.h>

#include "clock.h"
#include "errors.h"
#include "shdict.h"
#include "test.h"

static uint64_t fake_now;
static uint64_t fake_clock(void *ud) { (void)ud; return fake_now; }

static nf_slice S(const char *s) { return nf_slice_of(s, strlen(s)); }

static void count_key(void *ud, nf_slice key) { (void)key; (*(size_t *)ud)++; }

#define THREADS 4
#define INCRS 10000

static void *incr_many(void *d)
{
    double out;
    for (int i = 0; i < INCRS; i++)
        nf_shdict_incr(d, S("n"), 1, true, 0, 0, &out);
    return NULL;
}

int main(void)
{
    nf_clock_set(fake_clock, NULL);
    fake_now = 1000;
    nf_shdict *d = nf_shdict_new(4096);
    char *buf = NULL;
    size_t cap = 0;
    nf_shval v;

    /* each type, and nil deletes */
    nf_shval str = { .type = NF_SHVAL_STRING, .s = S("hello") }, num = { .type = NF_SHVAL_NUMBER, .n = 2.5 },
             yes = { .type = NF_SHVAL_BOOLEAN, .b = true }, nil = { .type = NF_SHVAL_NIL };
    CHECK(nf_shdict_set(d, S("s"), &str, 0) == 0);
    CHECK(nf_shdict_set(d, S("n"), &num, 0) == 0);
    CHECK(nf_shdict_set(d, S("b"), &yes, 0) == 0);
    CHECK(nf_shdict_get(d, S("s"), &v, &buf, &cap) == 0 && v.type == NF_SHVAL_STRING);
    CHECK_STR(v.s, "hello");
    CHECK(nf_shdict_get(d, S("n"), &v, &buf, &cap) == 0 && v.type == NF_SHVAL_NUMBER && v.n == 2.5);
    CHECK(nf_shdict_get(d, S("b"), &v, &buf, &cap) == 0 && v.type == NF_SHVAL_BOOLEAN && v.b);
    CHECK(nf_shdict_set(d, S("b"), &nil, 0) == 0);
    CHECK(nf_shdict_get(d, S("b"), &v, &buf, &cap) == 0 && v.type == NF_SHVAL_NIL);
    CHECK(nf_shdict_set(d, S(""), &str, 0) == NF_EINVAL);

    /* add only when absent; incr on numbers only */
    CHECK(nf_shdict_add(d, S("s"), &num, 0) == NF_EEXIST);
    double out = 0;
    CHECK(nf_shdict_incr(d, S("n"), 1, false, 0, 0, &out) == 0 && out == 3.5);
    CHECK(nf_shdict_incr(d, S("none"), 1, false, 0, 0, &out) == NF_ENOENT);
    CHECK(nf_shdict_incr(d, S("c"), 5, true, 10, 0, &out) == 0 && out == 15);
    CHECK(nf_shdict_incr(d, S("s"), 1, false, 0, 0, &out) == NF_EINVAL);

    /* expiry follows the clock */
    CHECK(nf_shdict_set(d, S("t"), &str, 500) == 0);
    fake_now += 499;
    CHECK(nf_shdict_get(d, S("t"), &v, &buf, &cap) == 0 && v.type == NF_SHVAL_STRING);
    fake_now += 1;
    CHECK(nf_shdict_get(d, S("t"), &v, &buf, &cap) == 0 && v.type == NF_SHVAL_NIL);
    CHECK(nf_shdict_add(d, S("t"), &num, 0) == 0);   /* an expired key is absent */

    /* the byte bound: a clear error, nothing evicted; expired keys make room */
    nf_shdict_flush_all(d);
    CHECK(nf_shdict_used(d) == 0);
    char big[1000];
    memset(big, 'x', sizeof big);
    nf_shval bigv = { .type = NF_SHVAL_STRING, .s = nf_slice_of(big, sizeof big) };
    int stored = 0, rc = 0;
    char key[16];
    for (int i = 0; i < 100 && rc == 0; i++) {
        snprintf(key, sizeof key, "k%d", i);
        if ((rc = nf_shdict_set(d, S(key), &bigv, i == 0 ? 100 : 0)) == 0)
            stored++;
    }
    CHECK(rc == NF_ENOBUFS);
    CHECK(stored == 3);   /* 3 x (1000 + 2 + 64) fit in 4096, a fourth does not */
    CHECK(nf_shdict_used(d) <= nf_shdict_capacity(d));
    CHECK(nf_shdict_get(d, S("k1"), &v, &buf, &cap) == 0 && v.type == NF_SHVAL_STRING);
    fake_now += 100;   /* k0 expires: its room is taken back */
    CHECK(nf_shdict_set(d, S("k9"), &bigv, 0) == 0);
    size_t keys = 0;
    nf_shdict_keys(d, 0, count_key, &keys);
    CHECK(keys == 3);

    /* increments from several threads: none lost */
    nf_shdict_flush_all(d);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, incr_many, d);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(nf_shdict_get(d, S("n"), &v, &buf, &cap) == 0 && v.n == THREADS * INCRS);

    free(buf);
    nf_shdict_free(d);
    nf_clock_set(NULL, NULL);
    return TEST_REPORT();
}
