/* log: one line per event on stderr, "ts level component message key=value…".
 *
 * Levels are ordered; messages above the current level are dropped. The
 * level starts at LOGL_INFO; -v raises it, -q lowers it. Never pass a
 * secret (token, password, conninfo) to these functions. */
#ifndef BACKFILL_LOG_H
#define BACKFILL_LOG_H

enum log_level { LOGL_ERROR = 0, LOGL_WARN = 1, LOGL_INFO = 2, LOGL_DEBUG = 3 };

/* Sets the component name printed on every line (borrowed: must outlive
 * logging; a string literal is typical). */
void log_init(const char *component);

/* Sets / reads the current level; values are clamped to the enum range. */
void log_set_level(int level);
int log_get_level(void);

/* Writes one line if `level` is enabled. Newlines inside the message are
 * replaced by spaces so one event stays one line. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)

#endif
