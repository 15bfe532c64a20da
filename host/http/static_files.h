/* static_files.h - serving a directory of files over plain HTTP (the demo
 * pages, a browser client), beside the WebSocket endpoints.
 *
 * Answers, always a complete response with "Connection: close":
 *   405  method other than GET/HEAD (with "Allow: GET, HEAD")
 *   400  a path that can never name a file under the root: malformed
 *        %-escape, %00, a backslash, or a ".." segment, also when spelled
 *        with escapes ("/%2e%2e/x", "/a/..%2f..%2fx")
 *   404  missing, not a regular file, resolving (through symlinks) outside
 *        the root, unreadable, or larger than NF_STATIC_MAX_FILE_BYTES
 *   200  the file; "/" and directories map to their index.html
 *
 * The root is assumed not writable by clients: a symlink swapped in between
 * the realpath check and open() of the last component is refused
 * (O_NOFOLLOW), one swapped into an intermediate directory is not. */
#ifndef NF_STATIC_FILES_H
#define NF_STATIC_FILES_H

#include "http.h"

struct evbuffer;

#define NF_STATIC_MAX_FILE_BYTES (64ull << 20)   /* 64 MiB */

/* The realpath of dir if it is a directory (malloc'd, free() it), else NULL
 * with errno set. Resolve once at start-up and pass it to nf_static_respond. */
char *nf_static_root_resolve(const char *dir);

/* Appends the complete response for req to out. GET bodies go in as an
 * evbuffer file segment (sendfile when out drains to a socket, else mmap);
 * HEAD gets the same headers and no body. */
void nf_static_respond(const char *root_realpath, const nf_request *req, struct evbuffer *out);

/* The Content-Type for a file name, by extension (exposed for tests). */
const char *nf_static_content_type(const char *name);

#endif
