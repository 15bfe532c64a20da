/* test_mailbox.c - calls between event loops (host/base/mailbox.h): calls
 * posted from another thread run on the loop in the order they were posted,
 * a batch goes in whole or not at all, the bounds (calls, bytes) refuse with
 * NF_ENOBUFS, a detached mailbox with NF_EPIPE, and what was queued runs at
 * detach. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#include "errors.h"
#include "mailbox.h"
#include "test.h"

#define POSTS 20000

typedef struct sink {
    int next;          /* the value the next call must carry */
    int out_of_order;
    int ran;
    struct event_base *base;
} sink;

static void record(void *owner, void *arg)
{
    sink *s = owner;
    int v = (int)(intptr_t)arg;
    if (v != s->next)
        s->out_of_order++;
    s->next = v + 1;
    if (++s->ran == POSTS)
        event_base_loopbreak(s->base);
}

static void *poster(void *mb)
{
    for (int i = 0; i < POSTS; i++)
        while (nf_mailbox_post(mb, record, (void *)(intptr_t)i, 1) == NF_ENOBUFS)
            ;   /* the loop catches up */
    return NULL;
}

static void count(void *owner, void *arg) { (void)arg; ((sink *)owner)->ran++; }

int main(void)
{
    struct event_base *base = event_base_new();
    sink s = { .base = base };
    nf_mailbox *mb = nf_mailbox_new(base, 64, SIZE_MAX, &s);
    CHECK(mb != NULL);

    /* another thread posts; the loop runs every call, in order */
    pthread_t t;
    pthread_create(&t, NULL, poster, mb);
    event_base_dispatch(base);
    pthread_join(t, NULL);
    CHECK(s.ran == POSTS);
    CHECK(s.out_of_order == 0);

    /* the bound, and a batch: all or nothing */
    sink c = { 0 };
    nf_mailbox *small = nf_mailbox_new(base, 3, SIZE_MAX, &c);
    nf_mailbox_batch b = { 0 };
    for (int i = 0; i < 4; i++)
        CHECK(nf_mailbox_batch_add(&b, count, NULL, 0) == 0);
    CHECK(nf_mailbox_post_batch(small, &b) == NF_ENOBUFS);
    CHECK(b.count == 4 && nf_mailbox_pending(small) == 0);
    nf_mailbox_batch_run(&b, &c);   /* the caller's to dispose of */
    CHECK(c.ran == 4 && b.count == 0);
    for (int i = 0; i < 3; i++)
        CHECK(nf_mailbox_batch_add(&b, count, NULL, 0) == 0);
    CHECK(nf_mailbox_post_batch(small, &b) == 0 && b.count == 0);
    CHECK(nf_mailbox_post(small, count, NULL, 0) == NF_ENOBUFS);
    CHECK(nf_mailbox_run(small) == 3 && c.ran == 7);

    /* detached: queued calls run, later posts fail */
    CHECK(nf_mailbox_post(small, count, NULL, 0) == 0);
    nf_mailbox_detach(small);
    CHECK(c.ran == 8);
    CHECK(nf_mailbox_post(small, count, NULL, 0) == NF_EPIPE);

    /* the bytes bound: over it only when calls wait already (an empty queue
     * takes a call, or a batch, of any size); a batch counts all its bytes */
    sink d = { 0 };
    nf_mailbox *bytes = nf_mailbox_new(base, 100, 1000, &d);
    CHECK(nf_mailbox_post(bytes, count, NULL, 600) == 0);
    CHECK(nf_mailbox_post(bytes, count, NULL, 401) == NF_ENOBUFS);
    CHECK(nf_mailbox_post(bytes, count, NULL, 400) == 0);
    CHECK(nf_mailbox_pending(bytes) == 2 && nf_mailbox_pending_bytes(bytes) == 1000);
    CHECK(nf_mailbox_post(bytes, count, NULL, 1) == NF_ENOBUFS);
    CHECK(nf_mailbox_run(bytes) == 2 && nf_mailbox_pending_bytes(bytes) == 0);
    CHECK(nf_mailbox_post(bytes, count, NULL, 5000) == 0);
    CHECK(nf_mailbox_post(bytes, count, NULL, 1) == NF_ENOBUFS);
    CHECK(nf_mailbox_post(bytes, count, NULL, 0) == 0);   /* a control call: the count alone */
    for (int i = 0; i < 2; i++)
        CHECK(nf_mailbox_batch_add(&b, count, NULL, 10) == 0);
    CHECK(b.bytes == 20 && nf_mailbox_post_batch(bytes, &b) == NF_ENOBUFS && b.count == 2);
    CHECK(nf_mailbox_run(bytes) == 2 && nf_mailbox_post_batch(bytes, &b) == 0 && b.bytes == 0);
    CHECK(nf_mailbox_pending_bytes(bytes) == 20 && nf_mailbox_run(bytes) == 2 && d.ran == 6);
    nf_mailbox_free(bytes);

    nf_mailbox_free(small);
    nf_mailbox_free(mb);
    event_base_free(base);
    return TEST_REPORT();
}
