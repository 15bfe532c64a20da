/* static_files.c - see static_files.h.
 *
 * Containment is checked twice, by two different means: lexically on the
 * decoded path (no "..", no backslash, no NUL), then on the filesystem (the
 * realpath must lie inside the root's realpath). The first gives a clear 400
 * for hostile paths; the second is what actually keeps symlinks and any
 * trick the first missed inside the root. */
#include "static_files.h"

#include "http.h"

#include <event2/buffer.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOSNIFF "X-Content-Type-Options: nosniff\r\n"
#define FILE_HEADERS "Cache-Control: no-cache\r\n" NOSNIFF
#define TEXT_PLAIN "text/plain; charset=utf-8"

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    { "html", "text/html; charset=utf-8" },
    { "htm", "text/html; charset=utf-8" },
    { "js", "text/javascript; charset=utf-8" },
    { "mjs", "text/javascript; charset=utf-8" },
    { "css", "text/css; charset=utf-8" },
    { "txt", TEXT_PLAIN },
    { "json", "application/json" },         /* UTF-8 by definition: no charset */
    { "map", "application/json" },
    { "svg", "image/svg+xml" },
    { "png", "image/png" },
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "ico", "image/x-icon" },
    { "wasm", "application/wasm" },
};

const char *nf_static_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    if (dot) {
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    }
    return "application/octet-stream";
}

char *nf_static_root_resolve(const char *dir)
{
    struct stat st;
    char *root = realpath(dir, NULL);
    if (!root)
        return NULL;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(root);
        errno = ENOTDIR;
        return NULL;
    }
    return root;
}

static void respond_error(struct evbuffer *out, int status, bool head_only)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", nf_http_reason(status));
    const char *extra = status == 405 ? "Allow: GET, HEAD\r\n" NOSNIFF : NOSNIFF;
    nf_http_respond(out, status, extra, TEXT_PLAIN, body, (size_t)n, head_only);
}

/* Decodes the request path into buf (PATH_MAX bytes) and refuses what can
 * never name a file under the root. Returns 0, or the status to answer. */
static int decode_safe_path(const nf_request *req, char *buf)
{
    size_t len;
    if (!nf_request_path_decoded(req, buf, PATH_MAX, &len))
        return 400;   /* malformed escape, %00, or longer than any path */
    if (memchr(buf, '\\', len))
        return 400;
    /* The path starts with '/' (origin-form); check every segment. */
    for (const char *seg = buf; seg < buf + len;) {
        const char *next = memchr(seg + 1, '/', (size_t)(buf + len - seg - 1));
        const char *end = next ? next : buf + len;
        if (end - seg == 3 && seg[1] == '.' && seg[2] == '.')
            return 400;
        seg = end;
    }
    return 0;
}

/* Is the resolved path the root or below it? */
static bool inside_root(const char *root, const char *resolved)
{
    size_t n = strlen(root);
    if (n == 1)   /* root is "/" */
        return true;
    return strncmp(resolved, root, n) == 0 && (resolved[n] == '\0' || resolved[n] == '/');
}

/* Opens the regular file that path names inside root, following a
 * directory to its index.html once. Returns the fd (and *st, *resolved), or
 * -1 for anything that is to be a 404. */
static int open_inside(const char *root, const char *path, char *resolved, struct stat *st)
{
    char index[PATH_MAX];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!realpath(path, resolved) || !inside_root(root, resolved))
            return -1;
        /* O_NOFOLLOW: the last component must still be what realpath saw.
         * O_NONBLOCK: opening a FIFO must not stall the loop. */
        int fd = open(resolved, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return -1;
        if (fstat(fd, st) == 0 && S_ISREG(st->st_mode))
            return fd;
        bool dir = S_ISDIR(st->st_mode);
        close(fd);
        if (!dir || attempt > 0)
            return -1;
        if ((size_t)snprintf(index, sizeof(index), "%s/index.html", resolved) >= sizeof(index))
            return -1;
        path = index;
    }
    return -1;
}

void nf_static_respond(const char *root_realpath, const nf_request *req, struct evbuffer *out)
{
    nf_slice method = nf_request_method(req);
    bool head_only = nf_slice_eq_cstr(method, "HEAD");
    if (!head_only && !nf_slice_eq_cstr(method, "GET")) {
        respond_error(out, 405, false);
        return;
    }

    char decoded[PATH_MAX], path[PATH_MAX], resolved[PATH_MAX];
    int status = decode_safe_path(req, decoded);
    if (status) {
        respond_error(out, status, head_only);
        return;
    }
    size_t dlen = strlen(decoded);
    const char *index = decoded[dlen - 1] == '/' ? "index.html" : "";
    if ((size_t)snprintf(path, sizeof(path), "%s%s%s", root_realpath, decoded, index) >= sizeof(path)) {
        respond_error(out, 404, head_only);
        return;
    }

    struct stat st;
    int fd = open_inside(root_realpath, path, resolved, &st);
    if (fd < 0 || (unsigned long long)st.st_size > NF_STATIC_MAX_FILE_BYTES) {
        if (fd >= 0)
            close(fd);
        respond_error(out, 404, head_only);
        return;
    }

    const char *type = nf_static_content_type(resolved);
    size_t size = (size_t)st.st_size;
    if (head_only || size == 0) {
        close(fd);
        nf_http_write_head(out, 200, FILE_HEADERS, type, size);
        return;
    }
    /* The segment owns fd from here on (closed when the data is gone). */
    struct evbuffer_file_segment *seg = evbuffer_file_segment_new(fd, 0, (ev_off_t)size,
                                                                  EVBUF_FS_CLOSE_ON_FREE);
    if (!seg) {
        close(fd);
        respond_error(out, 500, false);
        return;
    }
    nf_http_write_head(out, 200, FILE_HEADERS, type, size);
    /* Fails only without memory; the head is out, so the client sees a short
     * body and the connection closes: nothing better is left to do. */
    evbuffer_add_file_segment(out, seg, 0, (ev_off_t)size);
    evbuffer_file_segment_free(seg);
}
