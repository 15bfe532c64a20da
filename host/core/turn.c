/* turn.c - the connection's turn: the handlers of one connection run one at
 * a time, in arrival order (docs/architecture.md, "Ordering").
 *
 * This is the one place that orders them. A turn begins when a frame of the
 * client is dispatched, when "M" starts on_connect, or when a forced action
 * (connect, disconnect, join, leave) starts. Everything that turn does holds
 * it: every handler run (nf_invocation_run takes a hold, its finish gives it
 * back), the notification that follows a decision (OnNamespaceConnected,
 * OnRoomJoined, OnRoomLeft run in the turn of the request), and every forced
 * action from its local decision through the client's answer to its local
 * events. While a turn is held, the client's next frames and forced actions
 * asked from elsewhere (a timer, another connection's handler) wait here,
 * in one FIFO. A forced action that a handler asks of its own connection is
 * part of that handler's turn, as in Go where it runs in the caller's
 * goroutine; otherwise a handler waiting for it would wait for itself.
 *
 * Not ordered here: the answers to the server's own asks (matched at once,
 * so that a handler can ask its own client), and the close procedure (the
 * connection is gone; its waiting handlers learn it from their asks).
 *
 * Bounds: parked frames are bounded in count (--max-incoming-queue) and in
 * bytes, job headers included (--max-incoming-bytes). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef enum job_kind { JOB_FRAME, JOB_CALL } job_kind;

struct nf_job {
    nf_job *next;
    job_kind kind;
    bool binary;              /* JOB_FRAME */
    nf_turn_call fn;          /* JOB_CALL */
    void *ud;
    uint64_t queued_ms;
    size_t len;
    char data[];              /* JOB_FRAME: the frame's payload */
};

bool nf_turn_busy(const nf_conn *c) { return c->turn.holds > 0; }

void nf_turn_hold(nf_conn *c) { c->turn.holds++; }

void nf_turn_release(nf_conn *c)
{
    if (c->turn.holds > 0 && --c->turn.holds == 0)
        nf_conn_drain(c);
}

static void push(nf_conn *c, nf_job *j)
{
    nf_turn *t = &c->turn;
    j->next = NULL;
    j->queued_ms = nf_now_ms();
    if (t->head == NULL)
        t->tail = &t->head;
    *t->tail = j;
    t->tail = &j->next;
}

static nf_job *pop(nf_conn *c)
{
    nf_turn *t = &c->turn;
    nf_job *j = t->head;
    t->head = j->next;
    if (t->head == NULL)
        t->tail = &t->head;
    if (j->kind == JOB_FRAME) {
        t->frames--;
        t->bytes -= sizeof *j + j->len;
    } else {
        t->calls--;
    }
    return j;
}

/* The byte bound, never below one frame of the maximum size: a client may
 * always send one message while a handler waits. */
static size_t bytes_bound(const nf_limits *lim)
{
    size_t one = sizeof(nf_job) + lim->max_message_bytes;
    return lim->max_incoming_bytes > one ? lim->max_incoming_bytes : one;
}

int nf_turn_park_frame(nf_conn *c, bool binary, const uint8_t *data, size_t len)
{
    nf_turn *t = &c->turn;
    const nf_limits *lim = &nf_conn_host(c)->limits;
    if (t->frames >= lim->max_incoming_queue) {
        nf_conn_limit_hit(c, NF_LIMIT_INBOX, "incoming queue full while a handler waits, closing with 1008");
        nf_conn_close(c, NF_WS_CLOSE_POLICY, NF_SLICE("incoming queue full"));
        return NF_ENOBUFS;
    }
    if (t->bytes + sizeof(nf_job) + len > bytes_bound(lim)) {
        nf_conn_limit_hit(c, NF_LIMIT_INBOX_BYTES,
                          "incoming queue bytes full while a handler waits, closing with 1008");
        nf_conn_close(c, NF_WS_CLOSE_POLICY, NF_SLICE("incoming queue full"));
        return NF_ENOBUFS;
    }
    nf_job *j = malloc(sizeof *j + len);
    if (j == NULL) {
        nf_conn_close(c, NF_WS_CLOSE_INTERNAL, NF_SLICE("out of memory"));
        return NF_ENOMEM;
    }
    memset(j, 0, sizeof *j);
    j->kind = JOB_FRAME;
    j->binary = binary;
    j->len = len;
    memcpy(j->data, data, len);
    push(c, j);
    t->frames++;
    t->bytes += sizeof *j + len;
    return 0;
}

void nf_turn_call_later(nf_conn *c, nf_turn_call fn, void *ud)
{
    if (nf_conn_is_acknowledged(c) && c->turn.holds == 0 && c->turn.head == NULL) {
        c->turn.holds++;
        fn(ud, true);
        return;
    }
    if (nf_conn_is_closed(c)) {
        fn(ud, false);
        return;
    }
    nf_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        fn(ud, false);
        return;
    }
    j->kind = JOB_CALL;
    j->fn = fn;
    j->ud = ud;
    push(c, j);
    c->turn.calls++;
}

void nf_turn_pump(nf_conn *c)
{
    nf_turn *t = &c->turn;
    if (t->pumping)
        return;
    t->pumping = true;
    nf_conn_ref(c);
    while (t->holds == 0 && nf_conn_is_acknowledged(c) && t->head) {
        nf_job *j = pop(c);
        t->holds++;   /* for the frame's dispatch, or on behalf of the call */
        if (j->kind == JOB_FRAME) {
            nf_conn_dispatch(c, j->binary, j->data, j->len);
            t->holds--;
        } else {
            j->fn(j->ud, true);
        }
        free(j);
    }
    t->pumping = false;
    nf_conn_unref(c);
}

void nf_turn_sweep(nf_conn *c, uint64_t now)
{
    nf_turn *t = &c->turn;
    unsigned wait_ms = nf_conn_host(c)->limits.ask_timeout_ms;
    if (t->calls == 0)
        return;
    for (nf_job **p = &t->head; *p;) {
        nf_job *j = *p;
        if (j->kind != JOB_CALL || now - j->queued_ms < wait_ms) {
            p = &j->next;
            continue;
        }
        *p = j->next;
        if (t->tail == &j->next)
            t->tail = p;
        t->calls--;
        nf_warn("conn %.*s: a forced action waited %u ms for the connection's turn; given up",
                (int)nf_conn_id(c).len, nf_conn_id(c).ptr, wait_ms);
        j->fn(j->ud, false);
        free(j);
    }
}

void nf_turn_clear(nf_conn *c)
{
    nf_turn *t = &c->turn;
    while (t->head) {
        nf_job *j = pop(c);
        if (j->kind == JOB_CALL)
            j->fn(j->ud, false);
        free(j);
    }
}

void nf_turn_completion_begin(nf_conn *c) { c->turn.completing++; }
void nf_turn_completion_end(nf_conn *c) { c->turn.completing--; }

bool nf_turn_is_current(nf_conn *c)
{
    const nf_app_ops *ops = nf_conn_host(c)->ops;
    if (c->turn.completing > 0)
        return true;
    nf_invocation *now = ops->current ? ops->current(nf_conn_host(c)->app) : NULL;
    return now != NULL && nf_invocation_conn(now) == c && c->turn.holds > 0;
}
