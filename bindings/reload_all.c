/* reload_all.c - see reload_all.h. Worker 1 (index 0) runs the round; each
 * other worker touches only its own app, in calls posted to its loop. */
#include "reload_all.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ERR_CAP 1024

struct nf_reload_all {
    nf_workers *g;
    unsigned n;
    bool active;                  /* a round is under way */
    bool again;                   /* asked to reload meanwhile */
    unsigned pending;             /* workers that have not answered */
    bool failed;
    char err[ERR_CAP];            /* the first failure of the round */
    nf_lua_app *apps[];
};

typedef struct request {
    nf_reload_all *r;
    unsigned worker;              /* 0-based */
    bool ok;
    char err[ERR_CAP];
} request;

nf_reload_all *nf_reload_all_new(nf_workers *g, nf_lua_app *const *apps, unsigned n)
{
    nf_reload_all *r = calloc(1, sizeof *r + n * sizeof *apps);
    if (r == NULL)
        return NULL;
    r->g = g;
    r->n = n;
    memcpy(r->apps, apps, n * sizeof *apps);
    return r;
}

void nf_reload_all_free(nf_reload_all *r) { free(r); }

/* ---- on the other workers ----------------------------------------------------------- */

static void run_commit(nf_host *h, void *arg)
{
    request *q = arg;
    if (nf_lua_reload_commit(q->r->apps[q->worker], q->err, sizeof q->err) != NF_RELOAD_SWAPPED)
        nf_error("worker %u: reload failed at the swap: %s", q->worker + 1, q->err);
    free(q);
}

static void mark_failed(nf_host *h, const char *err)
{
    char reason[ERR_CAP + 32];
    snprintf(reason, sizeof reason, "reload failed: %s", err);
    nf_host_set_unhealthy(h, reason);
    nf_host_count_reload(h, false);
}

static void run_abort(nf_host *h, void *arg)
{
    request *q = arg;
    nf_lua_reload_abort(q->r->apps[q->worker]);
    mark_failed(h, q->err);
    free(q);
}

static void run_healthy(nf_host *h, void *arg)
{
    (void)arg;
    nf_host_set_unhealthy(h, NULL);
}

static void run_unhealthy(nf_host *h, void *arg)
{
    char *err = arg;
    mark_failed(h, err);
    free(err);
}

static void answered(nf_host *h, void *arg);

static void run_prepare(nf_host *h, void *arg)
{
    request *q = arg;
    int rc = nf_lua_reload_prepare(q->r->apps[q->worker], false, q->err, sizeof q->err);
    q->ok = rc == NF_RELOAD_PREPARED;
    if (nf_workers_post(q->r->g, 0, answered, q, 0) != 0) {
        nf_lua_reload_abort(q->r->apps[q->worker]);   /* worker 1 is gone: the process stops */
        free(q);
    }
}

/* ---- worker 1: the round ---------------------------------------------------------- */

static request *request_new(nf_reload_all *r, unsigned worker)
{
    request *q = calloc(1, sizeof *q);
    if (q) {
        q->r = r;
        q->worker = worker;
        snprintf(q->err, sizeof q->err, "%s", r->err);
    }
    return q;
}

/* Sends fn to every other worker with a request (or arg, when given). */
static void to_others(nf_reload_all *r, nf_workers_fn fn, bool with_request)
{
    for (unsigned i = 1; i < r->n; i++) {
        void *arg = NULL;
        if (with_request && (arg = request_new(r, i)) == NULL)
            continue;
        if (nf_workers_post(r->g, i, fn, arg, 0) != 0)
            free(arg);
    }
}

static void finish(nf_reload_all *r)
{
    r->active = false;
    char err[ERR_CAP];
    if (!r->failed) {
        to_others(r, run_commit, true);
        if (nf_lua_reload_commit(r->apps[0], err, sizeof err) != NF_RELOAD_SWAPPED)
            nf_error("worker 1: reload failed at the swap: %s", err);
    } else {
        /* All or none: the workers that prepared drop it. */
        nf_lua_reload_abort(r->apps[0]);
        to_others(r, run_abort, true);
        nf_lua_reload_failed(r->apps[0], r->err);
    }
    if (r->again) {
        r->again = false;
        if (nf_reload_all_reload(r, true, err, sizeof err) == NF_RELOAD_FAILED)
            nf_reload_all_failed(r, err);
    }
}

static void answered(nf_host *h, void *arg)
{
    request *q = arg;
    nf_reload_all *r = q->r;
    if (!q->ok && !r->failed) {
        r->failed = true;
        snprintf(r->err, sizeof r->err, "worker %u: %.1000s", q->worker + 1, q->err);
    }
    free(q);
    if (--r->pending == 0)
        finish(r);
}

int nf_reload_all_reload(void *ud, bool if_changed, char *err, size_t errcap)
{
    nf_reload_all *r = ud;
    if (r->active) {
        r->again = true;
        return NF_RELOAD_SWAPPED;
    }
    int rc = nf_lua_reload_prepare(r->apps[0], if_changed, err, errcap);
    if (rc == NF_RELOAD_UNCHANGED)
        to_others(r, run_healthy, false);
    if (rc != NF_RELOAD_PREPARED)
        return rc;
    r->active = true;
    r->failed = false;
    r->err[0] = '\0';
    r->pending = 1;   /* while posting */
    for (unsigned i = 1; i < r->n; i++) {
        request *q = request_new(r, i);
        r->pending++;
        if (q == NULL || nf_workers_post(r->g, i, run_prepare, q, 0) != 0) {
            free(q);
            r->pending--;
            if (!r->failed) {
                r->failed = true;
                snprintf(r->err, sizeof r->err, "worker %u cannot be reached", i + 1);
            }
        }
    }
    if (--r->pending == 0)
        finish(r);
    return NF_RELOAD_SWAPPED;
}

void nf_reload_all_failed(void *ud, const char *err)
{
    nf_reload_all *r = ud;
    nf_lua_reload_failed(r->apps[0], err);
    for (unsigned i = 1; i < r->n; i++) {
        char *copy = strdup(err);
        if (copy && nf_workers_post(r->g, i, run_unhealthy, copy, 0) != 0)
            free(copy);
    }
}
