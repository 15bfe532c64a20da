/* test_core_invocation.c - the invocation seam (host/core/proto.h): how a
 * handler run came about is a set of named flags (nf_invocation_flags,
 * NF_INV_*), the same the four predicates read, for every way the core
 * starts a handler: a client's event (text, binary), the connect hook, a
 * client's request, and the forced events and hook of the close procedure
 * (docs/protocol.md §7.8). */
#include <stdio.h>
#include <string.h>

#include "fake_conn.h"
#include "test.h"

#define MAX_SEEN 32
static struct seen {
    char event[FAKE_NAME_MAX];
    unsigned flags;
} seen[MAX_SEEN];
static size_t nseen;

/* Records the flags and checks they agree with the predicates. */
static void record(fake_app *a, nf_invocation *inv, void *ud)
{
    unsigned f = nf_invocation_flags(inv);
    CHECK(nf_invocation_is_local(inv) == ((f & NF_INV_LOCAL) != 0));
    CHECK(nf_invocation_is_forced(inv) == ((f & NF_INV_FORCED) != 0));
    CHECK(nf_invocation_is_native(inv) == ((f & NF_INV_NATIVE) != 0));
    CHECK(nf_invocation_is_binary(inv) == ((f & NF_INV_BINARY) != 0));
    if (nseen < MAX_SEEN) {
        const nf_msg *m = nf_invocation_msg(inv);
        const char *name = ud ? ud : "";
        if (*name == '\0')
            snprintf(seen[nseen].event, sizeof seen[nseen].event, "%.*s", (int)m->event.len, m->event.ptr);
        else
            snprintf(seen[nseen].event, sizeof seen[nseen].event, "%s", name);
        seen[nseen++].flags = f;
    }
    nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0);
}

static unsigned flags_of(const char *event)
{
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i].event, event) == 0)
            return seen[i].flags;
    fprintf(stderr, "no invocation of %s\n", event);
    CHECK(0);
    return ~0u;
}

int main(void)
{
    fake_app app;
    fake_conn fc;
    fake_clock_install(1000000);
    fake_app_init(&app);
    app.namespaces[0] = "default";
    fake_app_hook(&app, FAKE_ON_CONNECT, record, FAKE_ON_CONNECT);
    fake_app_hook(&app, FAKE_ON_DISCONNECT, record, FAKE_ON_DISCONNECT);
    const char *events[] = { "_OnNamespaceConnect", "_OnNamespaceConnected", "_OnRoomJoin", "_OnRoomJoined",
                             "_OnRoomLeave", "_OnRoomLeft", "_OnNamespaceDisconnect", "text", "bin" };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        fake_app_hook(&app, events[i], record, NULL);
    nf_limits lim = nf_limits_default();
    nf_host *h = fake_host_new(&lim, &app, NULL);
    CHECK(h != NULL);
    CHECK(fake_conn_open(&fc, h, 0) == 0);
    CHECK(fake_conn_handshake(&fc, "/echo") == 0);
    CHECK(fake_conn_send_text(&fc, "$0;default;;_OnNamespaceConnect;0;0;") == 0);
    CHECK(fake_conn_send_text(&fc, "$1;default;lobby;_OnRoomJoin;0;0;") == 0);
    CHECK(fake_conn_send_text(&fc, ";default;;text;0;0;hi") == 0);
    static const char bin[] = ";default;;bin;0;0;\x01\x02";
    CHECK(fake_conn_send_binary(&fc, bin, sizeof bin - 1) == 0);
    fake_conn_pump(&fc);

    CHECK(flags_of(FAKE_ON_CONNECT) == 0);
    CHECK(flags_of("_OnNamespaceConnect") == 0);     /* the client asked */
    CHECK(flags_of("_OnNamespaceConnected") == 0);
    CHECK(flags_of("_OnRoomJoin") == 0);
    CHECK(flags_of("text") == 0);
    CHECK(flags_of("bin") == NF_INV_BINARY);

    nseen = 0;
    fake_conn_send_close(&fc, 1000, "bye");
    fake_conn_pump(&fc);
    fake_conn_free(&fc);
    /* The close procedure: the server runs them, and their answers are ignored. */
    CHECK(flags_of("_OnRoomLeave") == (NF_INV_LOCAL | NF_INV_FORCED));
    CHECK(flags_of("_OnRoomLeft") == (NF_INV_LOCAL | NF_INV_FORCED));
    CHECK(flags_of("_OnNamespaceDisconnect") == (NF_INV_LOCAL | NF_INV_FORCED));
    CHECK(flags_of(FAKE_ON_DISCONNECT) == (NF_INV_LOCAL | NF_INV_FORCED));
    fake_host_free(h);
    fake_clock_uninstall();
    return TEST_REPORT();
}
