/* dict.c - open addressing with linear probing and backward-shift deletion
 * (no tombstones, so lookups stay short under connection churn).
 *
 * The table doubles past 3/4 full and halves below 1/8 full (never under
 * DICT_MIN_CAP slots): a table that 10,000 connections grew gives its slots
 * back when they leave (0.5 MB of the server's RSS after a 10,000-receiver
 * broadcast, docs/bench.md), and the gap between the two loads keeps a size
 * that goes up and down around one of them from resizing every time. */
#include "dict.h"

#include "errors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint64_t hash;      /* 0 = empty */
    nf_slice key;
    void *value;
} slot;

struct nf_dict {
    slot *slots;
    size_t cap;         /* power of two */
    size_t size;
};

static uint64_t hash_bytes(nf_slice k)
{
    uint64_t h = 1469598103934665603ULL;          /* FNV-1a, 64-bit */
    for (size_t i = 0; i < k.len; i++)
        h = (h ^ (unsigned char)k.ptr[i]) * 1099511628211ULL;
    h ^= h >> 29;
    return h ? h : 1;
}

#define DICT_MIN_CAP 8

nf_dict *nf_dict_new(void)
{
    nf_dict *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->cap = DICT_MIN_CAP;
    d->slots = calloc(d->cap, sizeof(slot));
    if (d->slots == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

void nf_dict_free(nf_dict *d)
{
    if (d) {
        free(d->slots);
        free(d);
    }
}

size_t nf_dict_size(const nf_dict *d) { return d->size; }

static size_t find(const nf_dict *d, nf_slice key, uint64_t h)
{
    size_t mask = d->cap - 1, i = h & mask;
    while (d->slots[i].hash != 0) {
        if (d->slots[i].hash == h && nf_slice_eq(d->slots[i].key, key))
            return i;
        i = (i + 1) & mask;
    }
    return i;   /* the empty slot where key would go */
}

void *nf_dict_get(const nf_dict *d, nf_slice key)
{
    size_t i = find(d, key, hash_bytes(key));
    return d->slots[i].hash ? d->slots[i].value : NULL;
}

/* Moves every entry into a table of cap slots (a power of two that holds
 * them); 0, or -1 with the table unchanged when memory is short. */
static int resize(nf_dict *d, size_t cap)
{
    size_t old_cap = d->cap;
    slot *old = d->slots;
    d->slots = calloc(cap, sizeof(slot));
    if (d->slots == NULL) {
        d->slots = old;
        return -1;
    }
    d->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].hash)
            d->slots[find(d, old[i].key, old[i].hash)] = old[i];
    free(old);
    return 0;
}

int nf_dict_set(nf_dict *d, nf_slice key, void *value)
{
    if ((d->size + 1) * 4 > d->cap * 3 && resize(d, d->cap * 2) != 0)
        return NF_ENOMEM;
    uint64_t h = hash_bytes(key);
    size_t i = find(d, key, h);
    if (d->slots[i].hash == 0)
        d->size++;
    d->slots[i] = (slot){ h, key, value };
    return 0;
}

void *nf_dict_delete(nf_dict *d, nf_slice key)
{
    size_t mask = d->cap - 1, i = find(d, key, hash_bytes(key));
    if (d->slots[i].hash == 0)
        return NULL;
    void *value = d->slots[i].value;
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (d->slots[j].hash == 0)
            break;
        size_t home = d->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            d->slots[hole] = d->slots[j];
            hole = j;
        }
    }
    d->slots[hole].hash = 0;
    d->size--;
    if (d->cap > DICT_MIN_CAP && d->size * 8 < d->cap)
        (void)resize(d, d->cap / 2);   /* no memory for the smaller one: keep this one */
    return value;
}

void *nf_dict_next(const nf_dict *d, size_t *cursor, nf_slice *key)
{
    while (*cursor < d->cap) {
        slot *s = &d->slots[(*cursor)++];
        if (s->hash) {
            if (key)
                *key = s->key;
            return s->value;
        }
    }
    return NULL;
}
