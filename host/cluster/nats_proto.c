/* nats_proto.c - see nats_proto.h. */
#include "nats_proto.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_TOKENS 5

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* Splits line[0..n) on blanks; returns the number of tokens, or -1 if more
 * than MAX_TOKENS. */
static int split(const char *line, size_t n, nf_slice tok[MAX_TOKENS])
{
    int count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(line[i]))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && !is_space(line[i]))
            i++;
        if (count == MAX_TOKENS)
            return -1;
        tok[count++] = nf_slice_of(line + start, i - start);
    }
    return count;
}

static bool parse_size(nf_slice s, size_t *out)
{
    size_t v = 0;
    if (s.len == 0 || s.len > 12)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        v = v * 10 + (size_t)(s.ptr[i] - '0');
    }
    *out = v;
    return true;
}

static bool op_is(const char *line, size_t n, const char *op)
{
    size_t k = strlen(op);
    return n >= k && strncasecmp(line, op, k) == 0 && (n == k || is_space(line[k]));
}

static nf_slice after_op(const char *line, size_t n, size_t oplen)
{
    size_t i = oplen;
    while (i < n && is_space(line[i]))
        i++;
    return nf_slice_of(line + i, n - i);
}

/* MSG <subject> <sid> [reply-to] <#bytes> */
static nf_nats_op parse_msg(const char *buf, size_t len, size_t line_len, size_t max_payload, nf_nats_event *ev)
{
    nf_slice tok[MAX_TOKENS];
    int n = split(buf, line_len, tok);
    size_t size, head = line_len + 2;
    if ((n != 4 && n != 5) || !parse_size(tok[n - 1], &size))
        return ev->op = NF_NATS_BAD;
    ev->subject = tok[1];
    ev->sid = tok[2];
    ev->reply = n == 5 ? tok[3] : NF_SLICE_EMPTY;
    if (size > max_payload) {
        ev->consumed = head;
        ev->skip = size + 2;
        return ev->op = NF_NATS_TOO_BIG;
    }
    if (len < head + size + 2) {
        ev->need = head + size + 2;
        return ev->op = NF_NATS_MORE;
    }
    if (buf[head + size] != '\r' || buf[head + size + 1] != '\n')
        return ev->op = NF_NATS_BAD;
    ev->payload = nf_slice_of(buf + head, size);
    ev->consumed = head + size + 2;
    return ev->op = NF_NATS_MSG;
}

nf_nats_op nf_nats_parse(const char *buf, size_t len, size_t max_payload, nf_nats_event *ev)
{
    memset(ev, 0, sizeof *ev);
    const char *lf = memchr(buf, '\n', len < NF_NATS_MAX_LINE ? len : NF_NATS_MAX_LINE);
    if (lf == NULL)
        return ev->op = len >= NF_NATS_MAX_LINE ? NF_NATS_BAD : NF_NATS_MORE;
    if (lf == buf || lf[-1] != '\r')
        return ev->op = NF_NATS_BAD;
    size_t line_len = (size_t)(lf - buf) - 1;
    ev->consumed = line_len + 2;
    if (op_is(buf, line_len, "MSG"))
        return parse_msg(buf, len, line_len, max_payload, ev);
    if (op_is(buf, line_len, "PING"))
        return ev->op = NF_NATS_PING;
    if (op_is(buf, line_len, "PONG"))
        return ev->op = NF_NATS_PONG;
    if (op_is(buf, line_len, "+OK"))
        return ev->op = NF_NATS_OK;
    if (op_is(buf, line_len, "INFO")) {
        ev->text = after_op(buf, line_len, 4);
        return ev->op = NF_NATS_INFO;
    }
    if (op_is(buf, line_len, "-ERR")) {
        nf_slice t = after_op(buf, line_len, 4);
        if (t.len >= 2 && t.ptr[0] == '\'' && t.ptr[t.len - 1] == '\'')
            t = nf_slice_of(t.ptr + 1, t.len - 2);
        ev->text = t;
        return ev->op = NF_NATS_ERR;
    }
    return ev->op = NF_NATS_BAD;
}

/* Appends s as a JSON string; false if it does not fit. */
static bool json_str(char **p, char *end, const char *s)
{
    if (end - *p < 2)
        return false;
    *(*p)++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        int n;
        if (c == '"' || c == '\\')
            n = snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20)
            n = snprintf(esc, sizeof esc, "\\u%04x", c);
        else
            n = snprintf(esc, sizeof esc, "%c", c);
        if (end - *p < n + 1)
            return false;
        memcpy(*p, esc, (size_t)n);
        *p += n;
    }
    *(*p)++ = '"';
    return true;
}

static bool lit(char **p, char *end, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(end - *p) < n)
        return false;
    memcpy(*p, s, n);
    *p += n;
    return true;
}

static bool field(char **p, char *end, const char *key, const char *value)
{
    return value == NULL || (lit(p, end, ",\"") && lit(p, end, key) && lit(p, end, "\":") && json_str(p, end, value));
}

size_t nf_nats_connect_line(char *out, size_t cap, const char *name, const char *version,
                            const char *user, const char *password, const char *token)
{
    char *p = out, *end = out + cap;
    bool ok = lit(&p, end, "CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"c\"") &&
              field(&p, end, "name", name) && field(&p, end, "version", version) &&
              field(&p, end, "user", user) && field(&p, end, "pass", password) &&
              field(&p, end, "auth_token", token) && lit(&p, end, "}\r\n");
    return ok ? (size_t)(p - out) : 0;
}
