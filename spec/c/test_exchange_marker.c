/* test_exchange_marker.c - field 0 of bus messages (host/cluster/exchange_marker.h):
 * our marker round-trips, and Go's field 0 values are classified as the Go
 * nodes themselves classify them (docs/protocol.md §14.5, §14.7). */
#include <string.h>

#include "exchange_marker.h"
#include "test.h"

static void roundtrip(const char *path, const char *id, bool binary, bool native)
{
    char node[NF_MARKER_NODE_LEN + 1], out[512], buf[512];
    CHECK(nf_marker_new_node(node) == 0 && strlen(node) == NF_MARKER_NODE_LEN);
    nf_marker m = { .node = nf_slice_of(node, NF_MARKER_NODE_LEN), .binary = binary, .native = native,
                    .path = nf_slice_of(path, strlen(path)), .except_id = nf_slice_of(id, strlen(id)) }, back;
    size_t n = nf_marker_write(&m, out);
    CHECK(n == nf_marker_len(&m));
    CHECK(memcmp(out, "neffos(0x", 9) == 0);        /* what Go nodes look for */
    CHECK(memchr(out, ';', n) == NULL);          /* field 0 ends at the first ';' */
    CHECK(nf_marker_parse(nf_slice_of(out, n), &back, buf) == NF_MARKER_OURS);
    CHECK_MEM(back.node.ptr, back.node.len, node, strlen(node));
    CHECK_STR(back.path, path);
    CHECK_STR(back.except_id, id);
    CHECK(back.binary == binary);
    CHECK(back.native == native);
}

static void classify(void)
{
    nf_marker m;
    char buf[128];
    CHECK(nf_marker_parse(NF_SLICE_EMPTY, &m, buf) == NF_MARKER_NONE);
    /* A Go node's server connection id (docs/protocol.md §14.4 capture). */
    CHECK(nf_marker_parse(NF_SLICE("neffos(0x77a37a9d-e89e-4e7d-a66e-cc9b7a70b79f(n1-conn10xc00012c300))"), &m, buf) ==
          NF_MARKER_FOREIGN);
    CHECK(m.except_id.len == 0);
    /* Go's broken ask token, and ours: digits. */
    CHECK(nf_marker_parse(NF_SLICE("R795310697697464675"), &m, buf) == NF_MARKER_TOKEN);
    CHECK(nf_marker_parse(NF_SLICE("1700000000000000000123456"), &m, buf) == NF_MARKER_TOKEN);
    /* Damaged versions of ours are somebody else's. */
    CHECK(nf_marker_parse(NF_SLICE("neffos(0xC1:zz"), &m, buf) == NF_MARKER_FOREIGN);
    CHECK(nf_marker_parse(NF_SLICE("neffos(0xC1:0123456789abcdef0123456789abcdef:t:9:/x(id))"), &m, buf) ==
          NF_MARKER_FOREIGN);
    CHECK(nf_marker_parse(NF_SLICE("neffos(0xC1:0123456789abcdef0123456789abcdef:t:2:/x(id)"), &m, buf) ==
          NF_MARKER_FOREIGN);
    CHECK(nf_marker_parse(NF_SLICE("neffos(0xC1:0123456789abcdef0123456789abcdef:t:2:/x(id))"), &m, buf) ==
          NF_MARKER_OURS);
    CHECK_STR(m.path, "/x");
    CHECK_STR(m.except_id, "id");
}

/* Older C nodes wrote the ID raw: what does not decode is read as it is. */
static void older_nodes(void)
{
    nf_marker m;
    char buf[128];
    CHECK(nf_marker_parse(NF_SLICE("neffos(0xC1:0123456789abcdef0123456789abcdef:t:2:/x(50%off))"), &m, buf) ==
          NF_MARKER_OURS);
    CHECK_STR(m.except_id, "50%off");
    CHECK(nf_marker_parse(NF_SLICE("neffos(0xC1:0123456789abcdef0123456789abcdef:t:2:/x(50%25off))"), &m, buf) ==
          NF_MARKER_OURS);
    CHECK_STR(m.except_id, "50%off");
}

int main(void)
{
    roundtrip("/chat", "", false, false);
    roundtrip("/chat", "", false, true);     /* a native message's frame is its body alone */
    roundtrip("/chat", "x", true, true);
    roundtrip("/chat", "2d1f0c6e-8a1b-4c1e-9d5e-0a0b0c0d0e0f", true, false);
    roundtrip("", "x", false, false);
    roundtrip("/a(b))c", "we(ird))", false, false);    /* parentheses inside still parse */
    /* Any ID: ';' and the rest travel encoded (docs/protocol.md §17.2.5). */
    roundtrip("/chat", "a;b", false, false);
    roundtrip("/chat", "bob smith.*> 50% \n zo\xc3\xab", false, false);
    older_nodes();
    classify();
    return TEST_REPORT();
}
