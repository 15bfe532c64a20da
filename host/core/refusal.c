/* refusal.c - see refusal.h. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

#include "log.h"

#define REFUSAL_LOG_EVERY_MS 1000

static const char *const reason_names[NF_REFUSAL_REASONS] = {
    "limit", "bad_request", "origin", "on_connect", "handshake_timeout", "tls_handshake",
};

static uint64_t *counter_of(nf_metrics *m, nf_refusal_reason why)
{
    switch (why) {
    case NF_REFUSED_LIMIT: return &m->refused_limit;
    case NF_REFUSED_BAD_REQUEST: return &m->refused_bad_request;
    case NF_REFUSED_ORIGIN: return &m->refused_origin;
    case NF_REFUSED_ON_CONNECT: return &m->refused_on_connect;
    case NF_REFUSED_TLS_HANDSHAKE: return &m->refused_tls_handshake;
    default: return &m->handshake_timeouts;
    }
}

/* Counts and logs (rate-limited) a refusal whose text is already made. */
static void refusal_text(nf_host *h, nf_refusal_reason why, const char *remote, const char *what)
{
    nf_refusal_log *rl = &h->refusal_log[why];
    uint64_t now = nf_now_ms();

    (*counter_of(&h->metrics, why))++;
    if (rl->ever && now - rl->logged_ms < REFUSAL_LOG_EVERY_MS) {
        rl->left_out++;
        return;
    }
    if (rl->left_out)
        nf_info("refused %s from %s: %s (and %llu more %s refusals not logged before this one)", reason_names[why],
                remote, what, (unsigned long long)rl->left_out, reason_names[why]);
    else
        nf_info("refused %s from %s: %s", reason_names[why], remote, what);
    rl->ever = true;
    rl->logged_ms = now;
    rl->left_out = 0;
}

void nf_refusal(nf_host *h, nf_refusal_reason why, const char *remote, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    refusal_text(h, why, remote, what);
}

void nf_refusal_tell(nf_conn *c, nf_endpoint *ep, const char *reason, const char *what)
{
    nf_host *h = nf_conn_host(c);
    if (ep && h->ops->refused)
        h->ops->refused(h->app, ep, c, reason, what);
}

void nf_refusal_conn(nf_conn *c, nf_endpoint *ep, nf_refusal_reason why, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    refusal_text(nf_conn_host(c), why, nf_conn_remote_addr(c), what);
    nf_refusal_tell(c, ep, reason_names[why], what);
}

void nf_refusal_sweep(nf_host *h, uint64_t now_ms)
{
    for (int i = 0; i < NF_REFUSAL_REASONS; i++) {
        nf_refusal_log *rl = &h->refusal_log[i];
        if (rl->left_out == 0 || now_ms - rl->logged_ms < REFUSAL_LOG_EVERY_MS)
            continue;
        nf_info("refused %s: %llu more refusals not logged (at most one line per second)", reason_names[i],
                (unsigned long long)rl->left_out);
        rl->logged_ms = now_ms;
        rl->left_out = 0;
    }
}
