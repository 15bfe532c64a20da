/* endpoint.c - one neffos server mounted on one path: its lifetime, its
 * list of open connections, and the public nf_endpoint_* entries, which
 * hand the work to the module that owns it (ids.c for IDs, broadcast.c for
 * fan-out, listings and asks). See endpoint.h for what it owns. */
#include "internal.h"

#include "exchange.h"

#include <stdlib.h>
#include <string.h>

nf_endpoint *nf_endpoint_new(nf_host *h, const char *path, const nf_endpoint_config *cfg)
{
    nf_endpoint *ep = calloc(1, sizeof *ep);
    if (ep == NULL)
        return NULL;
    ep->host = h;
    ep->path = strdup(path);
    ep->cfg = *cfg;
    ep->by_id = nf_dict_new();
    ep->namespaces = nf_dict_new();
    nf_list_init(&ep->conns);
    if (ep->path == NULL || ep->by_id == NULL || ep->namespaces == NULL) {
        nf_endpoint_free(ep);
        return NULL;
    }
    return ep;
}

void nf_endpoint_free(nf_endpoint *ep)
{
    if (ep == NULL)
        return;
    nf_dict_free(ep->by_id);
    nf_dict_free(ep->namespaces);
    free(ep->path);
    free(ep);
}

void nf_endpoint_join(nf_endpoint *ep, nf_conn *c)
{
    nf_list_push_back(&ep->conns, &c->ep_link);
    ep->count++;
}

void nf_endpoint_leave(nf_endpoint *ep, nf_conn *c)
{
    nf_list_remove(&c->ep_link);
    ep->count--;
}

void nf_endpoint_close_all(nf_endpoint *ep, uint16_t code, nf_slice reason)
{
    NF_LIST_FOREACH_SAFE(it, tmp, &ep->conns)
        nf_conn_close(NF_LIST_ENTRY(it, nf_conn, ep_link), code, reason);
}

void nf_endpoint_add_stats(const nf_endpoint *ep, nf_host_stats *out)
{
    out->ids += nf_dict_size(ep->by_id);
    out->namespaces += nf_dict_size(ep->namespaces);
    size_t cur = 0;
    nf_ns_index *idx;
    while ((idx = nf_dict_next(ep->namespaces, &cur, NULL)) != NULL)
        out->rooms += nf_dict_size(idx->rooms);
}

void nf_endpoint_configure(nf_endpoint *ep, const nf_endpoint_config *cfg) { ep->cfg = *cfg; }
const char *nf_endpoint_path(const nf_endpoint *ep) { return ep->path; }
nf_host *nf_endpoint_host(nf_endpoint *ep) { return ep->host; }
void *nf_endpoint_app_data(nf_endpoint *ep) { return ep->app_data; }
void nf_endpoint_set_app_data(nf_endpoint *ep, void *data) { ep->app_data = data; }
size_t nf_endpoint_connection_count(const nf_endpoint *ep)
{
    nf_exchange *x = ep->host->exchange;
    return x && x->ops->count ? x->ops->count(x, (nf_endpoint *)ep) : ep->count;
}

size_t nf_endpoint_own_count(const nf_endpoint *ep) { return ep->count; }

/* ---- entries owned elsewhere ------------------------------------------------------ */

nf_conn *nf_endpoint_find(nf_endpoint *ep, nf_slice id) { return nf_ids_find(ep, id); }

void nf_endpoint_each_with_id(nf_endpoint *ep, nf_slice id, bool (*fn)(void *ud, nf_conn *c), void *ud)
{
    nf_ids_each(ep, id, fn, ud);
}

void nf_endpoint_each(nf_endpoint *ep, bool (*fn)(void *ud, nf_conn *c), void *ud)
{
    nf_broadcast_each(ep, fn, ud);
}

void nf_endpoint_each_member(nf_endpoint *ep, nf_slice ns, nf_slice room,
                             bool (*fn)(void *ud, nf_nsconn *nc), void *ud)
{
    nf_broadcast_each_member(ep, ns, room, fn, ud);
}

size_t nf_endpoint_broadcast(nf_endpoint *ep, const nf_broadcast *b) { return nf_broadcast_publish(ep, b); }

void nf_endpoint_ask(nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                     nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    nf_broadcast_ask(ep, true, to, ns, room, event, body, binary, timeout_ms, cb, ud);
}

void nf_endpoint_ask_local(nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                           nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    nf_broadcast_ask(ep, false, to, ns, room, event, body, binary, timeout_ms, cb, ud);
}
