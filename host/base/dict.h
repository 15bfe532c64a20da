/* dict.h - a hash table from byte-string keys to pointers.
 * Keys are not copied: each value must keep its own key alive (the usual
 * case here: a connection owns its ID, a room index owns its name). */
#ifndef NF_DICT_H
#define NF_DICT_H

#include <stddef.h>

#include "slice.h"

typedef struct nf_dict nf_dict;

nf_dict *nf_dict_new(void);
void nf_dict_free(nf_dict *d);
size_t nf_dict_size(const nf_dict *d);
void *nf_dict_get(const nf_dict *d, nf_slice key);
/* Inserts or replaces; returns 0, or NF_ENOMEM (errors.h). The key's bytes
 * are not copied: they must live as long as the entry. */
int nf_dict_set(nf_dict *d, nf_slice key, void *value);
/* Removes key; returns the value it had, or NULL. The table shrinks when it
 * falls below 1/8 full (dict.c): deleting while iterating is not allowed. */
void *nf_dict_delete(nf_dict *d, nf_slice key);
/* Iteration: start with *cursor = 0; returns NULL after the last value.
 * The table must not change during iteration. */
void *nf_dict_next(const nf_dict *d, size_t *cursor, nf_slice *key);

#endif
