/* watchdog.c - see watchdog.h.
 *
 * The thread sleeps in poll() on a wake-up pipe, a tick at a time. Each
 * tick it compares the loop thread's progress counter (bumped by every
 * enter and leave) with the last one it saw: unchanged while app code is
 * running means that code has run since the change. It only reads what the
 * loop thread wrote under the mutex, and logs only when stderr can take a
 * line at once (a blocked stderr must not keep it from ending the process). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "watchdog.h"

#define LABEL_MAX 160
#define DEPTH_MAX 4         /* deeper nesting keeps the 4th level's label */
#define TICK_MIN_MS 10
#define TICK_MAX_MS 250

/* One event loop's state (--workers N: one per worker). */
typedef struct loop_state {
    /* under mu */
    unsigned depth;
    unsigned long long progress;
    char label[DEPTH_MAX][LABEL_MAX];
    /* the watchdog thread's own */
    unsigned long long seen;
    uint64_t since;
    bool warned;
} loop_state;

struct nf_watchdog {
    nf_watchdog_config cfg;
    pthread_t thread;
    int wake[2];            /* signal handler, nf_watchdog_free -> thread */
    int notify[2];          /* thread -> loop: signal numbers */
    struct sigaction old_term, old_int;
    pthread_mutex_t mu;
    bool disarmed;          /* under mu */
    unsigned loops;
    loop_state *loop;       /* [loops] */
};

static int wake_fd = -1;    /* the signal handler's only state */
static _Thread_local unsigned this_loop;   /* nf_watchdog_bind_thread */

void nf_watchdog_bind_thread(unsigned loop) { this_loop = loop; }

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (wake_fd >= 0)
        (void)!write(wake_fd, &b, 1);
    errno = saved;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A quarter of the shortest limit, within [TICK_MIN_MS, TICK_MAX_MS]. */
static unsigned tick_ms(const nf_watchdog_config *c)
{
    unsigned t = TICK_MAX_MS * 4;
    if (c->warn_ms && c->warn_ms < t) t = c->warn_ms;
    if (c->kill_ms && c->kill_ms < t) t = c->kill_ms;
    t /= 4;
    return t < TICK_MIN_MS ? TICK_MIN_MS : t > TICK_MAX_MS ? TICK_MAX_MS : t;
}

/* Logs from the watchdog thread only if stderr is free and writable now. */
static void say(nf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(nf_log_level level, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    if (ftrylockfile(stderr) != 0)
        return;
    struct pollfd p = { .fd = STDERR_FILENO, .events = POLLOUT };
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) {
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        nf_log(level, "%s", text);
    }
    funlockfile(stderr);
}

static const char *signame(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }

static void *watch(void *ud)
{
    nf_watchdog *wd = ud;
    const nf_watchdog_config *c = &wd->cfg;
    unsigned tick = tick_ms(c);
    uint64_t signalled_at = 0;
    int signals = 0, first_sig = 0;
    for (unsigned i = 0; i < wd->loops; i++)
        wd->loop[i].since = now_ms();

    for (;;) {
        struct pollfd p = { .fd = wd->wake[0], .events = POLLIN };
        if (poll(&p, 1, (int)tick) > 0) {
            unsigned char buf[16];
            ssize_t n = read(wd->wake[0], buf, sizeof buf);
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == 0)
                    return NULL;   /* nf_watchdog_free */
                if (++signals >= 2) {
                    say(NF_LOG_WARN, "second signal: exiting now");
                    _exit(0);
                }
                first_sig = buf[i];
                signalled_at = now_ms();
                (void)!write(wd->notify[1], &buf[i], 1);   /* the loop drains */
            }
        }

        char blocked[LABEL_MAX] = "";
        bool any_running = false, disarmed = false;
        for (unsigned i = 0; i < wd->loops; i++) {
            loop_state *ls = &wd->loop[i];
            char label[LABEL_MAX] = "";
            pthread_mutex_lock(&wd->mu);
            bool running = ls->depth > 0 && !wd->disarmed;
            disarmed = wd->disarmed;
            unsigned long long progress = ls->progress;
            if (running)
                memcpy(label, ls->label[(ls->depth > DEPTH_MAX ? DEPTH_MAX : ls->depth) - 1], LABEL_MAX);
            pthread_mutex_unlock(&wd->mu);

            uint64_t now = now_ms();
            if (progress != ls->seen) {
                ls->seen = progress;
                ls->since = now;
                ls->warned = false;
            }
            unsigned long long ran = now - ls->since;
            if (running && c->kill_ms && ran >= c->kill_ms) {
                say(NF_LOG_ERROR, "watchdog: %s has run for %llu ms without returning, the event loop is blocked "
                    "(--watchdog-kill-ms %u): exiting with code %d", label, ran, c->kill_ms, NF_WATCHDOG_EXIT);
                _exit(NF_WATCHDOG_EXIT);
            }
            if (running && c->warn_ms && ran >= c->warn_ms && !ls->warned) {
                say(NF_LOG_WARN, "watchdog: %s has run for %llu ms without returning; every connection waits "
                    "(--watchdog-warn-ms %u)", label, ran, c->warn_ms);
                ls->warned = true;
            }
            if (running && !any_running) {
                any_running = true;
                memcpy(blocked, label, LABEL_MAX);
            }
        }
        uint64_t now = now_ms();
        if (signals > 0 && !disarmed && now - signalled_at >= (uint64_t)c->grace_ms + NF_WATCHDOG_STOP_MARGIN_MS) {
            say(NF_LOG_ERROR, "watchdog: still running %llu ms after %s (grace period %u ms)%s%s: exiting with code %d",
                (unsigned long long)(now - signalled_at), signame(first_sig), c->grace_ms,
                any_running ? ", the event loop is blocked by " : "", blocked, NF_WATCHDOG_EXIT);
            _exit(NF_WATCHDOG_EXIT);
        }
    }
}

static int make_pipe(int fds[2])
{
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

nf_watchdog *nf_watchdog_start(const nf_watchdog_config *cfg, char *err, size_t errcap)
{
    nf_watchdog *wd = calloc(1, sizeof *wd);
    if (!wd) {
        snprintf(err, errcap, "watchdog: out of memory");
        return NULL;
    }
    wd->cfg = *cfg;
    wd->loops = cfg->loops ? cfg->loops : 1;
    wd->loop = calloc(wd->loops, sizeof *wd->loop);
    if (!wd->loop) {
        snprintf(err, errcap, "watchdog: out of memory");
        free(wd);
        return NULL;
    }
    wd->wake[0] = wd->wake[1] = wd->notify[0] = wd->notify[1] = -1;
    if (make_pipe(wd->wake) != 0 || make_pipe(wd->notify) != 0) {
        snprintf(err, errcap, "watchdog: pipe: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&wd->mu, NULL);
    wake_fd = wd->wake[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &wd->old_term);
    sigaction(SIGINT, &sa, &wd->old_int);

    /* The thread takes no signals: they wake it through the pipe. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&wd->thread, NULL, watch, wd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errcap, "watchdog: cannot start its thread: %s", strerror(rc));
        sigaction(SIGTERM, &wd->old_term, NULL);
        sigaction(SIGINT, &wd->old_int, NULL);
        wake_fd = -1;
        pthread_mutex_destroy(&wd->mu);
        goto fail;
    }
    return wd;
fail:
    for (int i = 0; i < 2; i++) {
        if (wd->wake[i] >= 0) close(wd->wake[i]);
        if (wd->notify[i] >= 0) close(wd->notify[i]);
    }
    free(wd->loop);
    free(wd);
    return NULL;
}

int nf_watchdog_signal_fd(const nf_watchdog *wd) { return wd->notify[0]; }

void nf_watchdog_enter(nf_watchdog *wd, const char *what)
{
    if (!wd)
        return;
    loop_state *ls = &wd->loop[this_loop < wd->loops ? this_loop : 0];
    pthread_mutex_lock(&wd->mu);
    if (ls->depth < DEPTH_MAX) {
        char *l = ls->label[ls->depth];
        size_t n = strlen(what);
        if (n >= LABEL_MAX)
            n = LABEL_MAX - 1;
        memcpy(l, what, n);
        l[n] = '\0';
    }
    ls->depth++;
    ls->progress++;
    pthread_mutex_unlock(&wd->mu);
}

void nf_watchdog_leave(nf_watchdog *wd)
{
    if (!wd)
        return;
    loop_state *ls = &wd->loop[this_loop < wd->loops ? this_loop : 0];
    pthread_mutex_lock(&wd->mu);
    if (ls->depth > 0)
        ls->depth--;
    ls->progress++;
    pthread_mutex_unlock(&wd->mu);
}

void nf_watchdog_disarm(nf_watchdog *wd)
{
    pthread_mutex_lock(&wd->mu);
    wd->disarmed = true;
    pthread_mutex_unlock(&wd->mu);
}

void nf_watchdog_free(nf_watchdog *wd)
{
    if (!wd)
        return;
    unsigned char stop = 0;
    sigaction(SIGTERM, &wd->old_term, NULL);
    sigaction(SIGINT, &wd->old_int, NULL);
    wake_fd = -1;
    while (write(wd->wake[1], &stop, 1) < 0 && errno == EINTR)
        ;
    pthread_join(wd->thread, NULL);
    pthread_mutex_destroy(&wd->mu);
    for (int i = 0; i < 2; i++) {
        close(wd->wake[i]);
        close(wd->notify[i]);
    }
    free(wd->loop);
    free(wd);
}
