/* test_url.c - the one URL parser (host/base/url.h): broker flags and ws:// URLs. */
#include <string.h>

#include "test.h"
#include "url.h"

static nf_url u;
static char err[256];

static int parse(const char *s) { return nf_url_parse(s, "redis", &u, err, sizeof err); }

static void good(void)
{
    CHECK(parse("redis://127.0.0.1:6380/2") == 0);
    CHECK(strcmp(u.scheme, "redis") == 0 && strcmp(u.host, "127.0.0.1") == 0 && u.port == 6380);
    CHECK(strcmp(u.path, "2") == 0 && !u.has_user && !u.has_password);

    CHECK(parse("redis://localhost") == 0);
    CHECK(strcmp(u.host, "localhost") == 0 && u.port == 0 && u.path[0] == '\0');

    CHECK(parse("redis://:s3cret@h:1") == 0);
    CHECK(!u.has_user && u.has_password && strcmp(u.password, "s3cret") == 0);

    CHECK(parse("redis://alice:p%40ss%3Aw@h") == 0);
    CHECK(u.has_user && strcmp(u.user, "alice") == 0 && strcmp(u.password, "p@ss:w") == 0);

    /* A raw '@' in the password: the last '@' ends the user info. */
    CHECK(parse("redis://bob:a@b@h:7") == 0);
    CHECK(strcmp(u.password, "a@b") == 0 && strcmp(u.host, "h") == 0 && u.port == 7);

    CHECK(nf_url_parse("nats://tok@[::1]:4223", "redis", &u, err, sizeof err) == 0);
    CHECK(strcmp(u.scheme, "nats") == 0 && strcmp(u.host, "::1") == 0 && u.port == 4223);
    CHECK(u.has_user && !u.has_password && strcmp(u.user, "tok") == 0);

    /* The ws:// URLs of the C client: path and query kept apart. */
    CHECK(nf_url_parse("ws://[::1]:8080/chat/room?x=1&y=a/b", "ws", &u, err, sizeof err) == 0);
    CHECK(strcmp(u.host, "::1") == 0 && u.port == 8080);
    CHECK(strcmp(u.path, "chat/room") == 0 && strcmp(u.query, "x=1&y=a/b") == 0);
    CHECK(parse("redis://h?db=1") == 0 && strcmp(u.query, "db=1") == 0 && u.path[0] == '\0');

    CHECK(nf_url_parse("10.0.0.1:4222", "nats", &u, err, sizeof err) == 0);
    CHECK(strcmp(u.scheme, "nats") == 0 && strcmp(u.host, "10.0.0.1") == 0 && u.port == 4222);
}

static void bad(void)
{
    const char *cases[] = { "redis://", "redis://h:", "redis://h:0", "redis://h:65536", "redis://h:12x",
                            "redis://[::1", "redis://[::1]x", "redis://h#frag", "redis://a:%4@h", "://h",
                            "redis://:p@:1" };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = '\0';
        int rc = parse(cases[i]);
        if (rc == 0)
            fprintf(stderr, "accepted: %s\n", cases[i]);
        CHECK(rc == -1 && strstr(err, "URL") != NULL);
    }
}

int main(void)
{
    good();
    bad();
    return TEST_REPORT();
}
