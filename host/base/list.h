/* list.h - intrusive doubly linked lists (the Linux kernel's shape).
 * A node lives inside the struct it links; nothing is allocated. */
#ifndef NF_LIST_H
#define NF_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct nf_list {
    struct nf_list *prev, *next;
} nf_list;

#define NF_LIST_ENTRY(node, type, member) ((type *)((char *)(node) - offsetof(type, member)))

static inline void nf_list_init(nf_list *l) { l->prev = l->next = l; }
static inline bool nf_list_empty(const nf_list *l) { return l->next == l; }
static inline bool nf_list_linked(const nf_list *n) { return n->next != NULL && n->next != n; }

static inline void nf_list_push_back(nf_list *head, nf_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void nf_list_remove(nf_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define NF_LIST_FOREACH(it, head) for (nf_list *it = (head)->next; it != (head); it = it->next)
/* Safe against removal of `it` inside the body. */
#define NF_LIST_FOREACH_SAFE(it, tmp, head) \
    for (nf_list *it = (head)->next, *tmp = it->next; it != (head); it = tmp, tmp = it->next)

#endif
