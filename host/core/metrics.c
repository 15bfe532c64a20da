/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <stddef.h>

#include <event2/buffer.h>

#include "heap.h"
#include "deflate.h"
#include "tls.h"

#define MAX(a, b) ((a) > (b) ? (a) : (b))

_Static_assert(offsetof(nf_metrics, accept_paused) == offsetof(nf_metrics, idle_poll_us) + sizeof(uint64_t),
               "nf_metrics_add sums the uint64_t counters before accept_paused");

void nf_metrics_add(nf_metrics *sum, const nf_metrics *m)
{
    /* Every field before accept_paused is a uint64_t counter. */
    uint64_t *s = (uint64_t *)sum;
    const uint64_t *v = (const uint64_t *)m;
    size_t n = offsetof(nf_metrics, accept_paused) / sizeof(uint64_t);
    uint64_t reloads_ok = MAX(sum->reloads_ok, m->reloads_ok), reloads_failed = MAX(sum->reloads_failed, m->reloads_failed);
    for (size_t i = 0; i < n; i++)
        s[i] += v[i];
    sum->reloads_ok = reloads_ok;
    sum->reloads_failed = reloads_failed;
    sum->accept_paused = MAX(sum->accept_paused, m->accept_paused);
    sum->exchange_connected = MAX(sum->exchange_connected, m->exchange_connected);
    sum->exchange_channels += m->exchange_channels;
    sum->exchange_pending += m->exchange_pending;
    sum->lingering += m->lingering;
}

static void counter(struct evbuffer *out, const char *name, const char *help, const char *labels, uint64_t v)
{
    if (help)
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    evbuffer_add_printf(out, "%s%s %llu\n", name, labels ? labels : "", (unsigned long long)v);
}

/* A counter of microseconds, exposed in seconds (Prometheus' base unit). */
static void counter_seconds(struct evbuffer *out, const char *name, const char *help, uint64_t us)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %.6f\n", name, help, name, name, (double)us / 1e6);
}

static void gauge(struct evbuffer *out, const char *name, const char *help, long long v)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

void nf_metrics_render(const nf_metrics *m, size_t connections, size_t endpoints, struct evbuffer *out)
{
    gauge(out, "neffos_connections", "Open WebSocket connections.", (long long)connections);
    gauge(out, "neffos_endpoints", "Mounted endpoints.", (long long)endpoints);
    counter(out, "neffos_http_requests_total", "HTTP requests received.", NULL, m->http_requests);
    counter(out, "neffos_upgrades_total", "Successful WebSocket upgrades.", NULL, m->upgrades);
    counter(out, "neffos_upgrades_deflate_total", "Upgrades that agreed to permessage-deflate.", NULL,
            m->upgrades_deflate);
    counter(out, "neffos_refusals_total", "Connections refused, by reason.", "{reason=\"limit\"}", m->refused_limit);
    counter(out, "neffos_refusals_total", NULL, "{reason=\"bad_request\"}", m->refused_bad_request);
    counter(out, "neffos_refusals_total", NULL, "{reason=\"origin\"}", m->refused_origin);
    counter(out, "neffos_refusals_total", NULL, "{reason=\"on_connect\"}", m->refused_on_connect);
    counter(out, "neffos_refusals_total", NULL, "{reason=\"id\"}", m->refused_id);
    counter(out, "neffos_refusals_total", NULL, "{reason=\"handshake_timeout\"}", m->handshake_timeouts);
    counter(out, "neffos_refusals_total", NULL, "{reason=\"tls_handshake\"}", m->refused_tls_handshake);
    counter(out, "neffos_accept_errors_total", "accept() failures, by reason; each pauses accepting briefly.",
            "{reason=\"emfile\"}", m->accept_emfile);
    counter(out, "neffos_accept_errors_total", NULL, "{reason=\"enfile\"}", m->accept_enfile);
    counter(out, "neffos_accept_errors_total", NULL, "{reason=\"other\"}", m->accept_other);
    gauge(out, "neffos_accept_paused", "1 while accepting is paused after an accept() failure.", m->accept_paused);
    gauge(out, "neffos_lingering_sockets", "Closed sockets discarding the peer's last input before the close (linger.h).",
          m->lingering);
    counter(out, "neffos_closed_total", "WebSocket connections closed.", NULL, m->closed);
    nf_deflate_stats zs = nf_deflate_get_stats();
    const nf_deflate_stats *z = &zs;
    counter(out, "neffos_deflate_messages_total", "permessage-deflate: messages compressed (a broadcast once per "
            "window size) and inflated.", "{dir=\"out\"}", z->deflated);
    counter(out, "neffos_deflate_messages_total", NULL, "{dir=\"in\"}", z->inflated);
    counter(out, "neffos_deflate_bytes_total", "permessage-deflate: bytes of those messages, plain and compressed.",
            "{dir=\"out\",form=\"plain\"}", z->deflated_in);
    counter(out, "neffos_deflate_bytes_total", NULL, "{dir=\"out\",form=\"compressed\"}", z->deflated_out);
    counter(out, "neffos_deflate_bytes_total", NULL, "{dir=\"in\",form=\"compressed\"}", z->inflated_in);
    counter(out, "neffos_deflate_bytes_total", NULL, "{dir=\"in\",form=\"plain\"}", z->inflated_out);
    counter(out, "neffos_deflate_refused_total", "Compressed messages refused: inflated past --max-message-bytes "
            "(1009), or not deflate data (1007).", "{reason=\"too_big\"}", z->too_big);
    counter(out, "neffos_deflate_refused_total", NULL, "{reason=\"invalid\"}", z->invalid);
    counter(out, "neffos_messages_in_total", "Data messages received.", NULL, m->messages_in);
    counter(out, "neffos_messages_out_total", "Data messages sent.", NULL, m->messages_out);
    counter(out, "neffos_bytes_in_total", "Payload bytes received.", NULL, m->bytes_in);
    counter(out, "neffos_bytes_out_total", "Payload bytes sent.", NULL, m->bytes_out);
    counter(out, "neffos_invalid_frames_total", "Frames dropped as not neffos messages.", NULL, m->invalid_frames);
    counter(out, "neffos_broadcasts_total", "Broadcasts made.", NULL, m->broadcasts);
    counter(out, "neffos_broadcast_deliveries_total", "Local deliveries of broadcasts (fan-out).", NULL,
            m->broadcast_deliveries);
    counter(out, "neffos_heap_trims_total", "Times free heap memory was given back to the system.", NULL,
            m->heap_trims);
    gauge(out, "neffos_heap_bytes", "Heap bytes allocated and not freed (Lua, libevent and queues included).",
          (long long)nf_heap_live_bytes());
    counter(out, "neffos_handler_runs_total", "Lua handler runs.", NULL, m->handler_runs);
    counter(out, "neffos_handler_errors_total", "Handler runs that ended in an error (raised, or returned nil, err).", NULL, m->handler_errors);
    counter_seconds(out, "neffos_handler_seconds_total",
                    "Time spent running handlers, every slice until they end (not the waits).", m->handler_us_total);
    counter_seconds(out, "neffos_busy_poll_idle_seconds_total",
                    "Time the event loops polled (--busy-poll-us) and found no input.", m->idle_poll_us);
    counter(out, "neffos_asks_sent_total", "Server asks sent to clients.", NULL, m->asks_sent);
    counter(out, "neffos_ask_timeouts_total", "Server asks that timed out.", NULL, m->ask_timeouts);
    counter(out, "neffos_limit_hits_total", "Limits hit, by limit.", "{limit=\"outgoing_queue\"}", m->limit_outgoing);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"incoming_queue\"}", m->limit_inbox);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"incoming_bytes\"}", m->limit_inbox_bytes);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"message_rate\"}", m->limit_rate);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"namespaces\"}", m->limit_namespaces);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"rooms\"}", m->limit_rooms);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"pending_asks\"}", m->limit_asks);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"name_bytes\"}", m->limit_name);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"name_bytes_per_conn\"}", m->limit_names_per_conn);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"handler_budget\"}", m->limit_budget);
    counter(out, "neffos_limit_hits_total", NULL, "{limit=\"worker_queue\"}", m->limit_worker_queue);
    counter(out, "neffos_reloads_total", "Hot reloads, by result.", "{result=\"ok\"}", m->reloads_ok);
    counter(out, "neffos_reloads_total", NULL, "{result=\"failed\"}", m->reloads_failed);
    if (m->workers > 1) {
        gauge(out, "neffos_workers", "Event loops (--workers): each line above sums them.", m->workers);
        counter(out, "neffos_worker_messages_total", "Calls between workers (broadcasts, asks, connections handed over).",
                "{direction=\"out\"}", m->worker_messages_out);
        counter(out, "neffos_worker_messages_total", NULL, "{direction=\"in\"}", m->worker_messages_in);
    }
    if (m->exchange_connected >= 0) {
        gauge(out, "neffos_exchange_connected", "Scale-out broker connection up (1) or down (0).",
              m->exchange_connected);
        gauge(out, "neffos_exchange_channels", "Channels this process is subscribed to at the broker.",
              (long long)m->exchange_channels);
        gauge(out, "neffos_exchange_subscriptions_pending",
              "Subscriptions sent to the broker and not confirmed yet: until confirmed, other processes' "
              "broadcasts to them may be missed.", (long long)m->exchange_pending);
        counter(out, "neffos_exchange_published_total", "Messages published to the broker.", NULL,
                m->exchange_published);
        counter(out, "neffos_exchange_received_total", "Messages received from the broker.", NULL,
                m->exchange_received);
        counter(out, "neffos_exchange_dropped_total", "Publishes dropped while the broker was down.", NULL,
                m->exchange_dropped);
    }
}

void nf_metrics_render_tls(const nf_tls_stats *s, struct evbuffer *out)
{
    counter(out, "neffos_tls_reloads_total", "TLS certificate reloads (SIGHUP, the files changed), by result.",
            "{result=\"ok\"}", s->reloads_ok);
    counter(out, "neffos_tls_reloads_total", NULL, "{result=\"failed\"}", s->reloads_failed);
    gauge(out, "neffos_tls_certificate_expiry_seconds", "When the serving TLS certificate expires, Unix time.",
          (long long)s->not_after);
}
