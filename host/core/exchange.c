/* exchange.c - the core's side of scale-out: thin dispatch to the broker
 * implementation installed with nf_host_set_exchange(). */
#include "exchange.h"

#include "internal.h"


void nf_exchange_publish(nf_exchange *x, nf_endpoint *ep, const nf_broadcast *b) { x->ops->publish(x, ep, b); }
void nf_exchange_subscribe(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { x->ops->subscribe_ns(x, ep, ns); }
void nf_exchange_unsubscribe(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { x->ops->unsubscribe_ns(x, ep, ns); }
void nf_exchange_conn_added(nf_exchange *x, nf_endpoint *ep, nf_slice id) { x->ops->subscribe_id(x, ep, id); }
void nf_exchange_conn_removed(nf_exchange *x, nf_endpoint *ep, nf_slice id) { x->ops->unsubscribe_id(x, ep, id); }

void *nf_exchange_ask(nf_exchange *x, nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                      nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    return x->ops->ask(x, ep, to, ns, room, event, body, binary, timeout_ms, cb, ud);
}

void nf_exchange_ask_cancel(nf_exchange *x, void *handle) { x->ops->ask_cancel(x, handle); }

size_t nf_exchange_deliver_local(nf_endpoint *ep, const nf_broadcast *b)
{
    nf_exchange *x = ep->host->exchange;
    ep->host->metrics.exchange_received++;
    if (x && x->ops->relay)
        x->ops->relay(x, ep, b);
    return nf_broadcast_local(ep, b);
}

bool nf_exchange_relayed(const nf_exchange *x)
{
    const nf_exchange *hx = x->host->exchange;
    return hx && hx != x && hx->ops->relay;
}

size_t nf_exchange_deliver_host(nf_endpoint *ep, const nf_broadcast *b) { return nf_broadcast_local(ep, b); }

void nf_exchange_ask_host(nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event, nf_slice body,
                          bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    nf_endpoint_ask_local(ep, to, ns, room, event, body, binary, timeout_ms, cb, ud);
}

static _Thread_local bool serving;

void nf_exchange_set_serving(bool on) { serving = on; }
bool nf_exchange_serving(void) { return serving; }
