/* test_protocol_doc.c - docs/protocol.md, the code and the vectors agree.
 *
 * The protocol document is cited from comments all over the repository as
 * "docs/protocol.md §N", and it cites the vectors file by ID. Nothing would
 * notice a renumbered section or a frame typed wrong, so this test checks:
 *
 *   1. every §N, §N.M, §N.M.K in a file of host/, bindings/, scripts/,
 *      spec/, docs/, examples/ or README.md (except "RFC 9110 §5.3" and
 *      the like) names a section of the document:
 *      a "## N." heading, a "### N.M" heading, or item "K." under "### N.M";
 *   2. every "section(s) N.M" the vectors file names exists too;
 *   3. every vector ID the document names (A05, C01-C18...) is in the
 *      vectors file;
 *   4. every frame the document quotes in code (`"...;..."`) is read by this
 *      server's codec and written back byte for byte (frames with flags other
 *      than 0/1 only have to parse), unless its line calls it invalid, raw or
 *      not a message;
 *   5. no file names the protocol document that used to live outside the
 *      repository, or a path into the sibling shared/ folder: a bare clone
 *      must build, test and read its documentation alone.
 *
 * Paths are relative to $NEFFOS_ROOT (ctest sets it), else to ".". */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "test.h"

#define MAX_SECTIONS 1024
#define SECTION_LEN 16

static char sections[MAX_SECTIONS][SECTION_LEN];
static size_t nsections;
static char *doc;          /* docs/protocol.md */
static char *vectors;      /* the vectors file */
static const char *root;
static int refs_checked, files_scanned;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *p = realloc(buf, 2 * cap + 1);
            if (p == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static char *slurp_rel(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return slurp(path);
}

/* ---- the document's sections ---------------------------------------------------- */

static void add_section(const char *s, size_t n)
{
    if (nsections < MAX_SECTIONS && n < SECTION_LEN) {
        memcpy(sections[nsections], s, n);
        sections[nsections++][n] = '\0';
    }
}

static bool has_section(const char *s)
{
    for (size_t i = 0; i < nsections; i++)
        if (strcmp(sections[i], s) == 0)
            return true;
    return false;
}

/* Length of a section number "N", "N.M" or "N.M.K" at p (0 if none). */
static size_t number_len(const char *p)
{
    size_t n = 0;
    for (;;) {
        size_t d = strspn(p + n, "0123456789");
        if (d == 0)
            return n ? n - 1 : 0;   /* drop a trailing '.' */
        n += d;
        if (p[n] != '.' || p[n + 1] < '0' || p[n + 1] > '9')
            return n;
        n++;
    }
}

static void collect_sections(void)
{
    char sub[SECTION_LEN] = "";
    for (const char *line = doc; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        size_t n;
        if (strncmp(line, "## ", 3) == 0 && (n = number_len(line + 3)) > 0) {
            add_section(line + 3, n);
            sub[0] = '\0';
        } else if (strncmp(line, "### ", 4) == 0 && (n = number_len(line + 4)) > 0) {
            add_section(line + 4, n);
            snprintf(sub, sizeof sub, "%.*s", (int)n, line + 4);
        } else if (sub[0] && (n = strspn(line, "0123456789")) > 0 && line[n] == '.' && line[n + 1] == ' ') {
            char item[SECTION_LEN * 2];
            snprintf(item, sizeof item, "%s.%.*s", sub, (int)n, line);
            add_section(item, strlen(item));
        }
    }
}

/* ---- 1. citations in the repository ------------------------------------------------- */

/* "RFC 9110 §5.3" cites an RFC, not this document. */
static bool cites_rfc(const char *text, const char *mark)
{
    const char *q = mark;
    while (q > text && q[-1] == ' ')
        q--;
    const char *digits_end = q;
    while (q > text && q[-1] >= '0' && q[-1] <= '9')
        q--;
    if (q == digits_end)
        return false;
    while (q > text && q[-1] == ' ')
        q--;
    return q - text >= 3 && strncmp(q - 3, "RFC", 3) == 0;
}

static void check_refs(const char *text, const char *where)
{
    static const char mark[] = "\xc2\xa7";   /* § in UTF-8 */
    for (const char *p = text; (p = strstr(p, mark)) != NULL; p += 2) {
        size_t n = number_len(p + 2);
        if (n == 0 || n >= SECTION_LEN || cites_rfc(text, p))
            continue;
        char s[SECTION_LEN];
        snprintf(s, sizeof s, "%.*s", (int)n, p + 2);
        refs_checked++;
        if (!has_section(s))
            fprintf(stderr, "%s: cites docs/protocol.md \xc2\xa7%s, which does not exist\n", where, s);
        CHECK(has_section(s));
    }
}

static bool wanted(const char *path)
{
    static const char *exts[] = { ".c", ".h", ".lua", ".mjs", ".js", ".md", ".sh", ".txt", ".cmake", ".html", NULL };
    const char *dot = strrchr(path, '.');
    if (strstr(path, "/node_modules/") || strstr(path, "/corpus/") || strstr(path, "/regressions/"))
        return false;
    if (strstr(path, "/.ci/"))
        return true;   /* the CI scripts have no extension */
    if (dot == NULL)
        return false;
    for (int i = 0; exts[i]; i++)
        if (strcmp(dot, exts[i]) == 0)
            return true;
    return false;
}

/* Spelled in pieces so that this file does not match itself. */
static void check_outside(const char *text, const char *where)
{
    const char *needles[] = { "neffos-protocol" ".md", "../" "shared", "/work/" "shared", NULL };
    for (int i = 0; needles[i]; i++) {
        bool hit = strstr(text, needles[i]) != NULL;
        if (hit)
            fprintf(stderr, "%s: refers to %s, outside the repository\n", where, needles[i]);
        CHECK(!hit);
    }
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type != FTW_F || !wanted(path))
        return 0;
    char *text = slurp(path);
    if (text) {
        files_scanned++;
        check_refs(text, path);
        check_outside(text, path);
        free(text);
    }
    return 0;
}

static void check_repository(void)
{
    static const char *dirs[] = { "host", "bindings", "scripts", "spec", "docs", "examples", "README.md",
                                  "CMakeLists.txt", ".ci", NULL };
    for (int i = 0; dirs[i]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        nftw(path, visit, 16, FTW_PHYS);
    }
    CHECK(files_scanned > 50);   /* the walk really found the tree */
    CHECK(refs_checked > 30);
    printf("citations: %d checked in %d files\n", refs_checked, files_scanned);
}

/* ---- 2. sections named by the vectors file ------------------------------------------- */

static void check_vector_sections(void)
{
    int n = 0;
    for (const char *p = vectors; (p = strstr(p, "section")) != NULL; p++) {
        const char *q = p + 7;
        if (*q == 's')
            q++;
        /* "section 7.2, 7.3" / "sections 3 and 4" / "sections 8.2 - 8.4" */
        while (*q == ' ' || *q == ',' || *q == '-' || strncmp(q, "and ", 4) == 0) {
            q += strncmp(q, "and ", 4) == 0 ? 4 : 1;
            size_t len = number_len(q);
            if (len == 0 || len >= SECTION_LEN)
                continue;
            char s[SECTION_LEN];
            snprintf(s, sizeof s, "%.*s", (int)len, q);
            if (!has_section(s))
                fprintf(stderr, "vectors file: names section %s, which docs/protocol.md does not have\n", s);
            CHECK(has_section(s));
            n++;
            q += len;
        }
    }
    CHECK(n > 10);
    printf("vectors file: %d section names checked\n", n);
}

/* ---- 3. vector IDs named by the document ------------------------------------------- */

static bool is_vector_id(const char *p)
{
    return p[0] >= 'A' && p[0] <= 'L' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
           !(p[3] >= '0' && p[3] <= '9') && !(p[3] >= 'A' && p[3] <= 'Z') && !(p[3] >= 'a' && p[3] <= 'z');
}

static bool vector_exists(const char *id)
{
    for (const char *line = vectors; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, id, 3) == 0 && line[3] == ' ')
            return true;
    return false;
}

static void check_vector_ids(void)
{
    int n = 0;
    for (const char *p = doc; (p = strstr(p, "vector")) != NULL; p++) {
        /* the IDs that follow "vector"/"vectors" up to the end of the sentence part */
        const char *end = strpbrk(p, ").:\n");
        for (const char *q = p; end && q < end; q++) {
            if ((q == doc || !(q[-1] >= 'A' && q[-1] <= 'Z')) && is_vector_id(q)) {
                char id[4] = { q[0], q[1], q[2], 0 };
                if (!vector_exists(id))
                    fprintf(stderr, "docs/protocol.md names vector %s, which the vectors file does not have\n", id);
                CHECK(vector_exists(id));
                n++;
            }
        }
    }
    CHECK(n >= 5);
    printf("vector IDs: %d checked\n", n);
}

/* ---- 4. the frames the document quotes ------------------------------------------------ */

/* Decodes the quoted frame starting after the opening quote, with the
 * vectors' \uXXXX convention (one byte); returns its length or -1. */
static long decode(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    while (p < end) {
        char ch = *p++;
        if (ch == '\\' && p + 5 <= end && *p == 'u') {
            char hex[5] = { p[1], p[2], p[3], p[4], 0 };
            ch = (char)strtol(hex, NULL, 16);
            p += 5;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = ch;
    }
    return (long)n;
}

static bool line_excuses(const char *line_start, const char *line_end)
{
    static const char *words[] = { "invalid", "raw", "not a message", NULL };
    for (int i = 0; words[i]; i++) {
        const char *hit = strstr(line_start, words[i]);
        if (hit && hit < line_end)
            return true;
    }
    return false;
}

static bool canonical_flags(const char *f, size_t len)
{
    const char *p = f, *end = f + len;
    for (int i = 0; i < 4; i++)
        p = memchr(p, ';', (size_t)(end - p)) + 1;
    return (p[0] == '0' || p[0] == '1') && p[1] == ';' && (p[2] == '0' || p[2] == '1') && p[3] == ';';
}

static void check_frames(void)
{
    static char scratch[1 << 16], frame[1 << 12], out[1 << 12];
    int n = 0;
    for (const char *p = doc; (p = strstr(p, "`\"")) != NULL; p += 2) {
        const char *start = p + 2, *close = strstr(start, "\"`"), *nl = strchr(start, '\n');
        if (close == NULL || (nl && nl < close))
            continue;
        long len = decode(start, close, frame, sizeof frame);
        if (len <= 0 || memchr(frame, ';', (size_t)len) == NULL)
            continue;   /* handshake frames, names */
        const char *ls = p;
        while (ls > doc && ls[-1] != '\n')
            ls--;
        const char *le = nl ? nl : close;
        nf_msg m;
        nf_parse_result r = nf_msg_parse(frame, (size_t)len, scratch, sizeof scratch, &m);
        if (r != NF_PARSE_OK) {
            if (!line_excuses(ls, le))
                fprintf(stderr, "docs/protocol.md quotes %.*s, which is not a message\n", (int)len, frame);
            CHECK(line_excuses(ls, le));
            continue;
        }
        n++;
        if (!canonical_flags(frame, (size_t)len))
            continue;
        size_t w = nf_msg_serialize(&m, out);
        if (!(w == (size_t)len && memcmp(out, frame, w) == 0))
            fprintf(stderr, "docs/protocol.md quotes %.*s, which the codec writes as %.*s\n", (int)len, frame,
                    (int)w, out);
        CHECK(w == (size_t)len && memcmp(out, frame, w) == 0);
    }
    CHECK(n >= 30);
    printf("frames quoted in the document: %d checked\n", n);
}

int main(void)
{
    root = getenv("NEFFOS_ROOT");
    if (root == NULL)
        root = ".";
    doc = slurp_rel("docs/protocol.md");
    const char *vpath = getenv("NEFFOS_VECTORS");
    vectors = vpath ? slurp(vpath) : slurp_rel("spec/vectors/neffos-protocol-vectors.txt");
    CHECK(doc != NULL);
    CHECK(vectors != NULL);
    if (doc == NULL || vectors == NULL) {
        fprintf(stderr, "cannot read docs/protocol.md or the vectors file under %s\n", root);
        return TEST_REPORT();
    }
    collect_sections();
    CHECK(has_section("6") && has_section("17.5") && has_section("17.5.7"));
    printf("docs/protocol.md: %zu sections\n", nsections);
    check_refs(doc, "docs/protocol.md");
    check_repository();
    check_vector_sections();
    check_vector_ids();
    check_frames();
    free(doc);
    free(vectors);
    return TEST_REPORT();
}
