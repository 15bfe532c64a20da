/* test_static.c - static file serving: content types, HEAD, 404/405, and
 * that nothing outside the root is ever served (traversal, encoded dots and
 * slashes, NUL, backslash, symlinks out of the root). */
#include "http.h"
#include "static_files.h"
#include "test.h"

#include <event2/buffer.h>

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "TOPSECRET-outside-the-root"

static char base[64];          /* temp dir: secret.txt and root/ */
static char *root;             /* realpath of base/root */

typedef struct resp {
    int status;
    char *text;        /* the whole response, NUL-terminated */
    const char *body;
    size_t body_len;
} resp;

static void write_file(const char *rel, const char *content)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(content, f);
    fclose(f);
}

static void make_dir(const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    if (mkdir(path, 0755) != 0) {
        perror(path);
        exit(2);
    }
}

static void make_link(const char *target, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    if (symlink(target, path) != 0) {
        perror(path);
        exit(2);
    }
}

static void setup(void)
{
    char tmpl[] = "/tmp/nf_static_XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(base, sizeof(base), "%s", tmpl);
    write_file("secret.txt", SECRET "\n");
    make_dir("root");
    write_file("root/index.html", "<h1>home</h1>\n");
    write_file("root/app.js", "console.log(1)\n");
    write_file("root/mod.mjs", "export {}\n");
    write_file("root/style.css", "body{}\n");
    write_file("root/data.json", "{}\n");
    write_file("root/app.js.map", "{}\n");
    write_file("root/logo.png", "png");
    write_file("root/photo.jpg", "jpg");
    write_file("root/icon.svg", "<svg/>");
    write_file("root/favicon.ico", "ico");
    write_file("root/notes.txt", "notes\n");
    write_file("root/prog.wasm", "wasm");
    write_file("root/blob.bin", "bin");
    write_file("root/UPPER.HTML", "upper");
    write_file("root/noext", "noext");
    write_file("root/empty.txt", "");
    write_file("root/a b.txt", "space");
    make_dir("root/sub");
    write_file("root/sub/index.html", "<h1>sub</h1>\n");
    write_file("root/sub/page.txt", "page\n");
    make_dir("root/nodir");
    make_dir("root/a");

    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/secret.txt", base);
    make_link(path, "root/out");                /* absolute, to a file outside */
    make_link("../secret.txt", "root/out_rel"); /* relative, same file */
    make_link(base, "root/outdir");             /* a directory outside */
    make_link("notes.txt", "root/inlink");      /* stays inside: allowed */
    make_link("../out", "root/sub/chain");      /* through an inner link to the outside */

    snprintf(path, sizeof(path), "%s/root/fifo", base);
    if (mkfifo(path, 0644) != 0) {
        perror(path);
        exit(2);
    }
    /* One byte over the bound, sparse so it costs nothing. */
    snprintf(path, sizeof(path), "%s/root/big.bin", base);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)NF_STATIC_MAX_FILE_BYTES + 1) != 0) {
        perror(path);
        exit(2);
    }
    close(fd);

    snprintf(path, sizeof(path), "%s/root/", base);
    root = nf_static_root_resolve(path);
    if (!root) {
        perror("nf_static_root_resolve");
        exit(2);
    }
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
    free(root);
}

static resp request(const char *method, const char *target)
{
    resp r = { 0 };
    char req[1024];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: h\r\n\r\n", method, target);
    nf_request *q = NULL;
    size_t used;
    nf_http_limits lim = { .max_header_bytes = 8192, .max_headers = 64 };   /* the flags' defaults */
    if (nf_http_parse_request(req, (size_t)n, &lim, &q, &used) != NF_HTTP_OK) {
        fprintf(stderr, "  request did not parse: %s %s\n", method, target);
        r.text = strdup("");
        r.body = r.text;
        return r;
    }
    struct evbuffer *out = evbuffer_new();
    nf_static_respond(root, q, out);
    nf_request_free(q);

    size_t len = evbuffer_get_length(out);
    r.text = malloc(len + 1);
    evbuffer_remove(out, r.text, len);
    r.text[len] = '\0';
    evbuffer_free(out);

    sscanf(r.text, "HTTP/1.1 %d ", &r.status);
    char *end = strstr(r.text, "\r\n\r\n");
    r.body = end ? end + 4 : r.text + len;
    r.body_len = (size_t)(r.text + len - r.body);
    return r;
}

/* The value of a response header (exact name) or "" if absent; static. */
static const char *hdr(const resp *r, const char *name)
{
    static char value[256];
    char pat[64];
    snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    const char *p = strstr(r->text, pat);
    const char *end = strstr(r->text, "\r\n\r\n");
    value[0] = '\0';
    if (!p || (end && p >= end))
        return value;
    p += strlen(pat);
    size_t n = strcspn(p, "\r");
    if (n >= sizeof(value))
        n = sizeof(value) - 1;
    memcpy(value, p, n);
    value[n] = '\0';
    return value;
}

static bool served(const char *target, const char *body, const char *type)
{
    resp r = request("GET", target);
    char len[32];
    snprintf(len, sizeof(len), "%zu", strlen(body));
    bool ok = r.status == 200 && r.body_len == strlen(body) && memcmp(r.body, body, r.body_len) == 0 &&
              strcmp(hdr(&r, "Content-Type"), type) == 0 && strcmp(hdr(&r, "Content-Length"), len) == 0 &&
              strcmp(hdr(&r, "Cache-Control"), "no-cache") == 0 &&
              strcmp(hdr(&r, "X-Content-Type-Options"), "nosniff") == 0 &&
              strcmp(hdr(&r, "Connection"), "close") == 0;
    if (!ok)
        fprintf(stderr, "  GET %s:\n%s\n", target, r.text);
    free(r.text);
    return ok;
}

/* Refused with the given status, and nothing from outside the root leaked. */
static bool refused(const char *method, const char *target, int status)
{
    resp r = request(method, target);
    bool ok = r.status == status && strstr(r.text, SECRET) == NULL &&
              strstr(r.text, "root:") == NULL;
    if (!ok)
        fprintf(stderr, "  %s %s: want %d, got:\n%s\n", method, target, status, r.text);
    free(r.text);
    return ok;
}

static void test_content_types(void)
{
    CHECK(served("/", "<h1>home</h1>\n", "text/html; charset=utf-8"));
    CHECK(served("/index.html", "<h1>home</h1>\n", "text/html; charset=utf-8"));
    CHECK(served("/app.js", "console.log(1)\n", "text/javascript; charset=utf-8"));
    CHECK(served("/mod.mjs", "export {}\n", "text/javascript; charset=utf-8"));
    CHECK(served("/style.css", "body{}\n", "text/css; charset=utf-8"));
    CHECK(served("/data.json", "{}\n", "application/json"));
    CHECK(served("/app.js.map", "{}\n", "application/json"));
    CHECK(served("/logo.png", "png", "image/png"));
    CHECK(served("/photo.jpg", "jpg", "image/jpeg"));
    CHECK(served("/icon.svg", "<svg/>", "image/svg+xml"));
    CHECK(served("/favicon.ico", "ico", "image/x-icon"));
    CHECK(served("/notes.txt", "notes\n", "text/plain; charset=utf-8"));
    CHECK(served("/prog.wasm", "wasm", "application/wasm"));
    CHECK(served("/blob.bin", "bin", "application/octet-stream"));
    CHECK(served("/noext", "noext", "application/octet-stream"));
    CHECK(served("/UPPER.HTML", "upper", "text/html; charset=utf-8"));
    CHECK(strcmp(nf_static_content_type("/x.y/README"), "application/octet-stream") == 0);
}

static void test_paths(void)
{
    CHECK(served("/sub", "<h1>sub</h1>\n", "text/html; charset=utf-8"));
    CHECK(served("/sub/", "<h1>sub</h1>\n", "text/html; charset=utf-8"));
    CHECK(served("/sub/page.txt", "page\n", "text/plain; charset=utf-8"));
    CHECK(served("/sub/./page.txt", "page\n", "text/plain; charset=utf-8"));
    CHECK(served("//sub//page.txt", "page\n", "text/plain; charset=utf-8"));
    CHECK(served("/a%20b.txt", "space", "text/plain; charset=utf-8"));
    CHECK(served("/notes.txt?v=1", "notes\n", "text/plain; charset=utf-8"));
    CHECK(served("/inlink", "notes\n", "text/plain; charset=utf-8"));   /* resolved name */
    CHECK(served("/empty.txt", "", "text/plain; charset=utf-8"));
    CHECK(refused("GET", "/missing", 404));
    CHECK(refused("GET", "/nodir/", 404));
    CHECK(refused("GET", "/nodir", 404));
    CHECK(refused("GET", "/notes.txt/", 404));
    CHECK(refused("GET", "/fifo", 404));       /* not regular, and must not block */
    CHECK(refused("GET", "/big.bin", 404));    /* over NF_STATIC_MAX_FILE_BYTES */
    CHECK(refused("GET", "/%zz", 400));
}

static void test_head_and_methods(void)
{
    resp r = request("HEAD", "/app.js");
    CHECK(r.status == 200);
    CHECK(r.body_len == 0);
    CHECK(strcmp(hdr(&r, "Content-Length"), "15") == 0);
    CHECK(strcmp(hdr(&r, "Content-Type"), "text/javascript; charset=utf-8") == 0);
    free(r.text);

    r = request("HEAD", "/missing");
    CHECK(r.status == 404);
    CHECK(r.body_len == 0);
    CHECK(strcmp(hdr(&r, "Content-Length"), "10") == 0);   /* "Not Found\n" */
    free(r.text);

    r = request("GET", "/missing");
    CHECK(r.status == 404);
    CHECK(r.body_len == 10 && memcmp(r.body, "Not Found\n", 10) == 0);
    free(r.text);

    r = request("POST", "/index.html");
    CHECK(r.status == 405);
    CHECK(strcmp(hdr(&r, "Allow"), "GET, HEAD") == 0);
    CHECK(strstr(r.body, "home") == NULL);
    free(r.text);
    CHECK(refused("PUT", "/", 405));
    CHECK(refused("get", "/", 405));   /* methods are case-sensitive */
}

static void test_traversal(void)
{
    static const char *bad[] = {
        "/../etc/passwd",
        "/../secret.txt",
        "/..",
        "/sub/../../secret.txt",
        "/%2e%2e/x",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2fsecret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/a/..%2f..%2fx",
        "/a/..%2F..%2Fsecret.txt",
        "/%2f..%2fsecret.txt",
        "/%00",
        "/notes.txt%00.html",
        "/a%5c..%5csecret.txt",
        "/a\\..\\secret.txt",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(refused("GET", bad[i], 400));
        CHECK(refused("HEAD", bad[i], 400));
    }
    /* Symlinks whose target is outside the root. */
    CHECK(refused("GET", "/out", 404));
    CHECK(refused("GET", "/out_rel", 404));
    CHECK(refused("GET", "/outdir/secret.txt", 404));
    CHECK(refused("GET", "/outdir/", 404));
    CHECK(refused("GET", "/sub/chain", 404));
    CHECK(refused("HEAD", "/out", 404));
    /* Names that merely contain dots are fine. */
    CHECK(refused("GET", "/..foo", 404));
    CHECK(refused("GET", "/foo..", 404));
}

static void test_root_resolve(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/root/notes.txt", base);
    CHECK(nf_static_root_resolve(path) == NULL);   /* not a directory */
    snprintf(path, sizeof(path), "%s/nope", base);
    CHECK(nf_static_root_resolve(path) == NULL);
    snprintf(path, sizeof(path), "%s/root/sub/..", base);
    char *r = nf_static_root_resolve(path);
    CHECK(r && strcmp(r, root) == 0);
    free(r);
}

int main(void)
{
    setup();
    test_content_types();
    test_paths();
    test_head_and_methods();
    test_traversal();
    test_root_resolve();
    teardown();
    return TEST_REPORT();
}
