/* test_loop.c - the loop that spins before it sleeps (host/base/loop.h):
 * after input it polls for the spin window, then sleeps until the next
 * event; with no spin it is event_base_dispatch(); a break ends it. Counted
 * by iterations (each calls the activity counter once), not by timing: the
 * window is 20 ms, the checks are 40 ms and more after it. */
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "loop.h"
#include "test.h"

typedef struct probe {
    struct event_base *base;
    int fds[2];
    uint64_t input;         /* the activity counter: bytes read */
    uint64_t iterations;    /* calls of activity(): one per loop iteration */
    uint64_t at_60ms, at_100ms;
    uint64_t idle_us;       /* nf_loop_run's idle polling */
} probe;

static uint64_t activity(void *arg)
{
    probe *p = arg;
    p->iterations++;
    return p->input;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    probe *p = arg;
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0)
        p->input += (uint64_t)n;
}

static void at_60ms(evutil_socket_t fd, short what, void *arg) { (void)fd; (void)what; ((probe *)arg)->at_60ms = ((probe *)arg)->iterations; }

static void at_100ms(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    probe *p = arg;
    p->at_100ms = p->iterations;
    event_base_loopbreak(p->base);
}

/* One byte of input at the start, timers at 60 and 100 ms (the second breaks). */
static int run(probe *p, unsigned spin_us)
{
    *p = (probe){ .base = event_base_new() };
    socketpair(AF_UNIX, SOCK_STREAM, 0, p->fds);
    struct event *rd = event_new(p->base, p->fds[0], EV_READ | EV_PERSIST, on_readable, p);
    struct event *t1 = evtimer_new(p->base, at_60ms, p), *t2 = evtimer_new(p->base, at_100ms, p);
    event_add(rd, NULL);
    struct timeval ms60 = { 0, 60000 }, ms100 = { 0, 100000 };
    evtimer_add(t1, &ms60);
    evtimer_add(t2, &ms100);
    (void)!write(p->fds[1], "x", 1);
    int rc = nf_loop_run(p->base, spin_us, activity, p, &p->idle_us);
    event_free(rd);
    event_free(t1);
    event_free(t2);
    close(p->fds[0]);
    close(p->fds[1]);
    event_base_free(p->base);
    return rc;
}

static void stop_at_once(evutil_socket_t fd, short what, void *arg) { (void)fd; (void)what; event_base_loopexit(arg, NULL); }

int main(void)
{
    probe p;

    /* A 20 ms window: the loop spins after the input (thousands of passes
     * where one would do), then sleeps: between the timers at 60 and 100 ms,
     * long after the window, it wakes only for the second timer. */
    CHECK(run(&p, 20000) == 0);
    CHECK(p.input == 1);
    CHECK(p.at_60ms > 20);
    CHECK(p.at_100ms - p.at_60ms <= 2);
    CHECK(p.idle_us > 2000 && p.idle_us < 100000);   /* ~20 ms of polling that found nothing */

    /* No spin: event_base_dispatch(), the counter is never asked. */
    CHECK(run(&p, 0) == 0);
    CHECK(p.input == 1);
    CHECK(p.iterations == 0);
    CHECK(p.idle_us == 0);

    /* event_base_loopexit() ends it too, and a loop with no events returns. */
    struct event_base *base = event_base_new();
    struct event *ev = evtimer_new(base, stop_at_once, base);
    struct timeval ms1 = { 0, 1000 };
    evtimer_add(ev, &ms1);
    probe q = { 0 };
    CHECK(nf_loop_run(base, 1000000, activity, &q, NULL) == 0);
    event_free(ev);
    CHECK(nf_loop_run(base, 1000000, activity, &q, NULL) == 0);
    event_base_free(base);
    return TEST_REPORT();
}
