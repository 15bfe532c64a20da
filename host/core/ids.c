/* ids.c - connection IDs (docs/protocol.md §3.5, 17.2.5): how a connection gets
 * one, and the index of an endpoint's connections by ID.
 *
 * The ID is what the application's generator returns, byte for byte, as Go
 * uses its IDGenerator's: e-mail addresses, names with spaces, unicode. Only
 * what cannot work is refused, with a clear text in the "H" frame, never
 * replaced: an empty ID ("To" empty means everybody), one longer than
 * --max-id-bytes, one that is not UTF-8 (the "A" frame is a text frame and
 * clients close on invalid UTF-8), and a generator that failed. Bytes that a
 * broker cannot carry are the broker's business (exchange_key.h).
 *
 * IDs need not be unique, as in Go: a user's two browser tabs may both use
 * the user's name. The index maps an ID to the group of its open
 * connections, oldest first; "To" messages reach every one of them. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "utf8.h"

#define UUID_LEN 36
/* Bytes of an ID shown in a log line; longer ones are cut with "...". */
#define SHOWN_MAX 64

static bool uuid_v4(char out[UUID_LEN + 1])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return false;
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    snprintf(out, UUID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return true;
}

/* The ID as a log line may show it: control bytes and '\' escaped (an ID
 * with a newline must not forge a log line), cut after SHOWN_MAX bytes. */
static char *shown(const char *id, size_t len)
{
    size_t n = len > SHOWN_MAX ? SHOWN_MAX : len;
    char *out = malloc(n * 4 + 4), *p = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (ch < 0x20 || ch == 0x7F || ch == '\\')
            p += sprintf(p, "\\x%02x", ch);
        else
            *p++ = (char)ch;
    }
    strcpy(p, n < len ? "..." : "");
    return out;
}

static const char *refusal_text(long code)
{
    switch (code) {
    case NF_ID_EMPTY: return "empty connection ID";
    case NF_ID_TOO_LONG: return "connection ID too long";
    case NF_ID_NOT_UTF8: return "connection ID is not valid UTF-8";
    default: return "cannot assign a connection ID";
    }
}

int nf_ids_assign(nf_conn *c, nf_endpoint *ep)
{
    nf_host *h = nf_conn_host(c);
    size_t cap = h->limits.max_id_bytes;
    char *id = malloc(cap + 1 > UUID_LEN + 1 ? cap + 1 : UUID_LEN + 1);
    if (id == NULL)
        return NF_ENOMEM;
    long n = h->ops->generate_id ? h->ops->generate_id(h->app, ep, c, id, cap) : NF_ID_DEFAULT;
    if (n > (long)cap)
        n = NF_ID_TOO_LONG;
    else if (n > 0 && !nf_utf8_valid((const uint8_t *)id, (size_t)n))
        n = NF_ID_NOT_UTF8;
    if (n == NF_ID_DEFAULT) {
        if (!uuid_v4(id)) {
            free(id);
            return NF_ENOMEM;
        }
        n = UUID_LEN;
    } else if (n < 0) {
        /* Refused when the client sends "M" (nothing may be sent before). */
        c->id_refusal = refusal_text(n);
        n = 0;
    }
    id[n] = '\0';
    c->id = id;
    c->id_len = (size_t)n;
    c->id_shown = shown(id, (size_t)n);
    if (c->id_shown == NULL)
        return NF_ENOMEM;
    return 0;
}

int nf_ids_add(nf_conn *c)
{
    nf_endpoint *ep = nf_conn_endpoint(c);
    nf_slice id = nf_slice_of(c->id, c->id_len);
    nf_id_group *g = nf_dict_get(ep->by_id, id);
    if (g == NULL) {
        if ((g = malloc(sizeof *g + id.len + 1)) == NULL)
            return NF_ENOMEM;
        nf_list_init(&g->conns);
        g->count = 0;
        g->id_len = id.len;
        memcpy(g->id, id.ptr, id.len);
        g->id[id.len] = '\0';
        if (nf_dict_set(ep->by_id, nf_slice_of(g->id, g->id_len), g) != 0) {
            free(g);
            return NF_ENOMEM;
        }
    }
    nf_list_push_back(&g->conns, &c->id_link);
    g->count++;
    return 0;
}

void nf_ids_remove(nf_conn *c)
{
    if (!nf_list_linked(&c->id_link))
        return;
    nf_slice id = nf_slice_of(c->id, c->id_len);
    nf_id_group *g = nf_dict_get(nf_conn_endpoint(c)->by_id, id);
    nf_list_remove(&c->id_link);
    if (g && --g->count == 0) {
        nf_dict_delete(nf_conn_endpoint(c)->by_id, id);
        free(g);
    }
}

nf_conn *nf_ids_find(nf_endpoint *ep, nf_slice id)
{
    nf_id_group *g = nf_dict_get(ep->by_id, id);
    if (g == NULL)
        return NULL;
    /* The newest first: after a reconnect the old connection may linger
     * until a timeout notices it is dead. */
    for (nf_list *it = g->conns.prev; it != &g->conns; it = it->prev) {
        nf_conn *c = NF_LIST_ENTRY(it, nf_conn, id_link);
        if (!nf_conn_is_closed(c))
            return c;
    }
    return NULL;
}

void nf_ids_each(nf_endpoint *ep, nf_slice id, bool (*fn)(void *ud, nf_conn *c), void *ud)
{
    nf_id_group *g = nf_dict_get(ep->by_id, id);
    nf_conn *stack[8], **all = stack;
    size_t n = 0;
    if (g == NULL)
        return;
    if (g->count > 8 && (all = malloc(g->count * sizeof *all)) == NULL)
        return;
    /* A snapshot: fn may close connections, or open new ones with this ID. */
    NF_LIST_FOREACH(it, &g->conns) {
        all[n] = NF_LIST_ENTRY(it, nf_conn, id_link);
        nf_conn_ref(all[n++]);
    }
    size_t i = 0;
    for (; i < n; i++)
        if (!nf_conn_is_closed(all[i]) && !fn(ud, all[i]))
            break;
    for (i = 0; i < n; i++)
        nf_conn_unref(all[i]);
    if (all != stack)
        free(all);
}
