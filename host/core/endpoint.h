/* endpoint.h - one neffos server mounted on one path (nf_endpoint; its
 * public functions are in proto.h).
 *
 * Owns: its path, its configuration, the list of its open WebSocket
 * connections (not the connections: the host owns those), the index of
 * connection IDs (ids.c fills it) and the index of namespaces and rooms
 * (namespace.c fills it). Invariants: `count` is the length of `conns`;
 * a connection is in `conns` from nf_endpoint_join (upgraded) to
 * nf_endpoint_leave (teardown). Lifetime: made by nf_host_add_endpoint,
 * unmounted by nf_host_remove_endpoint but freed only with the host
 * (connections and waiting handlers may still point at it). */
#ifndef NF_ENDPOINT_H
#define NF_ENDPOINT_H

#include <stddef.h>

#include "dict.h"
#include "list.h"
#include "proto.h"

struct nf_endpoint {
    nf_host *host;
    nf_endpoint *next;               /* the host's mount list (or its retired list): host.c's */
    char *path;
    nf_endpoint_config cfg;
    void *app_data;
    nf_list conns;                   /* open WebSocket conns (nf_conn.ep_link) */
    size_t count;
    nf_dict *by_id;                  /* id -> nf_id_group (ids.c) */
    nf_dict *namespaces;             /* name -> nf_ns_index (namespace.c) */
};

/* A new endpoint on path (copied); NULL when out of memory. */
nf_endpoint *nf_endpoint_new(nf_host *h, const char *path, const nf_endpoint_config *cfg);
/* Frees ep and its indexes (empty by then: its connections are gone). */
void nf_endpoint_free(nf_endpoint *ep);
/* c, just upgraded, joins / leaves the list of open connections. */
void nf_endpoint_join(nf_endpoint *ep, nf_conn *c);
void nf_endpoint_leave(nf_endpoint *ep, nf_conn *c);
/* Closes every open connection with code and reason (RFC 6455 7.4). */
void nf_endpoint_close_all(nf_endpoint *ep, uint16_t code, nf_slice reason);
/* Adds ep's index sizes to out (ids, namespaces, rooms). */
void nf_endpoint_add_stats(const nf_endpoint *ep, nf_host_stats *out);
/* nf_endpoint_ask without the other processes (for an ask that came from one). */
void nf_endpoint_ask_local(nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                           nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud);

#endif
