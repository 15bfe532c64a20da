/* test_nats_proto.c - the NATS protocol parser (host/cluster/nats_proto.h): every
 * server operation, streaming (any split point), the size bounds, and the
 * CONNECT line. */
#include <stdlib.h>
#include <string.h>

#include "nats_proto.h"
#include "test.h"

#define MAXP 64

static nf_nats_op parse(const char *s, nf_nats_event *ev) { return nf_nats_parse(s, strlen(s), MAXP, ev); }

static void operations(void)
{
    nf_nats_event ev;
    CHECK(parse("INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n", &ev) == NF_NATS_INFO);
    CHECK_STR(ev.text, "{\"server_id\":\"x\",\"max_payload\":1048576}");
    CHECK(ev.consumed == strlen("INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n"));

    CHECK(parse("PING\r\nPONG\r\n", &ev) == NF_NATS_PING && ev.consumed == 6);
    CHECK(parse("PONG\r\n", &ev) == NF_NATS_PONG && ev.consumed == 6);
    CHECK(parse("ping\r\n", &ev) == NF_NATS_PING);             /* ops are case-insensitive */
    CHECK(parse("+OK\r\n", &ev) == NF_NATS_OK);
    CHECK(parse("-ERR 'Authorization Violation'\r\n", &ev) == NF_NATS_ERR);
    CHECK_STR(ev.text, "Authorization Violation");

    const char *msg = "MSG neffos.default 7 13\r\n;default;;x\r\n\r\nnext";
    CHECK(parse(msg, &ev) == NF_NATS_MSG);
    CHECK_STR(ev.subject, "neffos.default");
    CHECK_STR(ev.sid, "7");
    CHECK(ev.reply.len == 0);
    CHECK_STR(ev.payload, ";default;;x\r\n");              /* payloads may hold CRLF */
    CHECK(ev.consumed == strlen(msg) - 4);

    CHECK(parse("MSG a.b 1 _INBOX.x 0\r\n\r\n", &ev) == NF_NATS_MSG);
    CHECK_STR(ev.reply, "_INBOX.x");
    CHECK(ev.payload.len == 0);
    CHECK(parse("MSG  a\t2   3\r\nabc\r\n", &ev) == NF_NATS_MSG);   /* any blanks between args */
    CHECK_STR(ev.payload, "abc");
}

static void incomplete_and_bad(void)
{
    nf_nats_event ev;
    CHECK(parse("", &ev) == NF_NATS_MORE);
    CHECK(parse("PIN", &ev) == NF_NATS_MORE);
    CHECK(parse("MSG a 1 5\r\nab", &ev) == NF_NATS_MORE && ev.need == strlen("MSG a 1 5\r\n") + 7);
    CHECK(parse("MSG a 1 5\r\nabcdeXY", &ev) == NF_NATS_BAD);     /* payload not followed by CRLF */
    CHECK(parse("MSG a 1\r\n", &ev) == NF_NATS_BAD);
    CHECK(parse("MSG a 1 x\r\n", &ev) == NF_NATS_BAD);
    CHECK(parse("MSG a 1 2 3 4\r\n", &ev) == NF_NATS_BAD);
    CHECK(parse("HELLO\r\n", &ev) == NF_NATS_BAD);
    CHECK(parse("PING\n", &ev) == NF_NATS_BAD);                   /* lines end with CRLF */
    CHECK(parse("PINGPONG\r\n", &ev) == NF_NATS_BAD);

    /* Oversized: the header is consumed and the rest is to be skipped, unbuffered. */
    CHECK(parse("MSG a 1 100\r\nxx", &ev) == NF_NATS_TOO_BIG);
    CHECK(ev.consumed == strlen("MSG a 1 100\r\n") && ev.skip == 102);

    /* A line without end: bounded. */
    size_t n = NF_NATS_MAX_LINE + 10;
    char *big = malloc(n);
    memset(big, 'A', n);
    memcpy(big, "INFO ", 5);
    CHECK(nf_nats_parse(big, n, MAXP, &ev) == NF_NATS_BAD);
    CHECK(nf_nats_parse(big, 100, MAXP, &ev) == NF_NATS_MORE);
    free(big);
}

/* A stream of operations fed in every possible two-piece split gives the
 * same events as one piece. */
static void streaming(void)
{
    const char *stream = "INFO {}\r\nMSG s.x 1 3\r\nabc\r\nPING\r\nMSG s.y 2 r 0\r\n\r\n-ERR 'x'\r\n";
    const nf_nats_op want[] = { NF_NATS_INFO, NF_NATS_MSG, NF_NATS_PING, NF_NATS_MSG, NF_NATS_ERR };
    size_t len = strlen(stream);
    for (size_t split = 0; split <= len; split++) {
        char buf[256];
        size_t have = 0, fed = 0, k = 0;
        bool ok = true;
        for (int round = 0; round < 20 && k < 5; round++) {
            size_t avail = fed < split ? split : len;
            memcpy(buf + have, stream + fed, avail - fed);
            have += avail - fed;
            fed = avail;
            nf_nats_event ev;
            while (k < 5) {
                nf_nats_op op = nf_nats_parse(buf, have, MAXP, &ev);
                if (op == NF_NATS_MORE)
                    break;
                ok = ok && op == want[k];
                k++;
                memmove(buf, buf + ev.consumed, have - ev.consumed);
                have -= ev.consumed;
            }
        }
        CHECK(ok && k == 5 && have == 0);
    }
}

static void connect_line(void)
{
    char out[512];
    size_t n = nf_nats_connect_line(out, sizeof out, "neffos-c", "0.1.0", "al\"ice", "p\\w", NULL);
    out[n] = '\0';
    CHECK(strcmp(out, "CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"c\",\"name\":\"neffos-c\","
                      "\"version\":\"0.1.0\",\"user\":\"al\\\"ice\",\"pass\":\"p\\\\w\"}\r\n") == 0);
    n = nf_nats_connect_line(out, sizeof out, "n", "v", NULL, NULL, "tok");
    out[n] = '\0';
    CHECK(strstr(out, "\"auth_token\":\"tok\"}\r\n") != NULL && strstr(out, "user") == NULL);
    CHECK(nf_nats_connect_line(out, 20, "n", "v", NULL, NULL, NULL) == 0);
}

int main(void)
{
    operations();
    incomplete_and_bad();
    streaming();
    connect_line();
    return TEST_REPORT();
}
