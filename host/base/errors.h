/* errors.h - the error vocabulary of host/ (docs/architecture.md, "Errors").
 *
 * The convention, libuv's: a function that can fail returns 0 on success and
 * a negative code on failure, one of the NF_E* below. They are negative errno
 * values, so a system call's failure passes through as -errno and
 * nf_strerror() names every one; NF_EOF is the one code of our own (as
 * UV_EOF): "finished", which is no failure of the caller but must not look
 * like success. Exceptions, each said in its header: predicates return bool;
 * constructors return NULL, and only for want of memory; counters and
 * lengths return a size_t. Owns nothing. */
#ifndef NF_ERRORS_H
#define NF_ERRORS_H

#include <errno.h>

#define NF_EOF (-4095)                  /* finished: the stream ended as it should */
#define NF_ENOMEM (-ENOMEM)             /* out of memory */
#define NF_EINVAL (-EINVAL)             /* an argument out of its range */
#define NF_EAGAIN (-EAGAIN)             /* refused for now: a limit of open things */
#define NF_ENOBUFS (-ENOBUFS)           /* a configured bound on queued bytes or items */
#define NF_ENAMETOOLONG (-ENAMETOOLONG) /* a name over its configured bound */
#define NF_ENOENT (-ENOENT)             /* no such thing (namespace, room, endpoint) */
#define NF_EEXIST (-EEXIST)             /* already there */
#define NF_EPIPE (-EPIPE)               /* the connection is closing or closed: nothing more goes out */
#define NF_EIO (-EIO)                   /* a library below failed for a reason it did not name */
#define NF_EPROTO (-EPROTO)             /* the peer broke the protocol */

/* A short text for an NF_E* code (or any negative errno value); "ok" for 0.
 * The text is static: never freed, never changed. */
const char *nf_strerror(int err);

#endif
