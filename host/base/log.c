/* log.c - see log.h. */
#include "log.h"

#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static nf_log_level current_level = NF_LOG_INFO;
static bool as_json;
static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };
static nf_log_sink *sink;
static void *sink_ud;

void nf_log_set_sink(nf_log_sink *fn, void *ud)
{
    sink = fn;
    sink_ud = ud;
}

void nf_log_set_level(nf_log_level level) { current_level = level; }
nf_log_level nf_log_get_level(void) { return current_level; }
void nf_log_set_json(bool json) { as_json = json; }

int nf_log_parse_level(const char *name)
{
    for (int i = 0; i <= NF_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return NF_LOG_WARN;
    return NF_EINVAL;
}

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
}

void nf_log(nf_log_level level, const char *fmt, ...)
{
    char text[2048], stamp[32];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < current_level || level >= NF_LOG_OFF)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (sink) {
        sink(sink_ud, level, text);
        return;
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    flockfile(stderr);   /* one line, whole: the watchdog's thread logs too */
    if (as_json) {
        fprintf(stderr, "{\"time\":\"%s.%03dZ\",\"level\":\"%s\",\"msg\":\"", stamp,
                (int)(tv.tv_usec / 1000), level_names[level]);
        json_escape(stderr, text);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s.%03dZ %-5s %s\n", stamp, (int)(tv.tv_usec / 1000), level_names[level], text);
    }
    funlockfile(stderr);
}
