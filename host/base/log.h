/* log.h - leveled logging to stderr, as text or JSON lines.
 * Deep code returns errors to its caller; logging happens at the edges
 * (connection lifecycle, handler failures, limits hit, reloads). */
#ifndef NF_LOG_H
#define NF_LOG_H

#include <stdbool.h>

typedef enum nf_log_level { NF_LOG_DEBUG, NF_LOG_INFO, NF_LOG_WARN, NF_LOG_ERROR, NF_LOG_OFF } nf_log_level;

void nf_log_set_level(nf_log_level level);
nf_log_level nf_log_get_level(void);
void nf_log_set_json(bool json);
/* Parses "debug", "info", "warn", "error", "off": returns the level (>= 0),
 * or NF_EINVAL (errors.h) if unknown. */
int nf_log_parse_level(const char *name);

/* Where lines go instead of stderr (`neffos test` keeps them for the specs'
 * log assertions): fn gets the level and the message without its time
 * stamp. NULL restores stderr. Not for the watchdog's thread. */
typedef void nf_log_sink(void *ud, nf_log_level level, const char *text);
void nf_log_set_sink(nf_log_sink *fn, void *ud);

void nf_log(nf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define nf_debug(...) do { if (nf_log_get_level() <= NF_LOG_DEBUG) nf_log(NF_LOG_DEBUG, __VA_ARGS__); } while (0)
#define nf_info(...)  nf_log(NF_LOG_INFO, __VA_ARGS__)
#define nf_warn(...)  nf_log(NF_LOG_WARN, __VA_ARGS__)
#define nf_error(...) nf_log(NF_LOG_ERROR, __VA_ARGS__)

#endif
