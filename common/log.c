/* log: see log.h. Lines are formatted into one buffer and written with a
 * single write(2) so lines from several threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "backfill"; /* borrowed */
static int log_level_now = LOGL_INFO;

static const char *const log_level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_init(const char *component)
{
    if (component)
        log_component = component;
}

void log_set_level(int level)
{
    if (level < LOGL_ERROR)
        level = LOGL_ERROR;
    if (level > LOGL_DEBUG)
        level = LOGL_DEBUG;
    log_level_now = level;
}

int log_get_level(void)
{
    return log_level_now;
}

void log_msg(int level, const char *fmt, ...)
{
    char line[2048];
    struct timespec now;
    struct tm tm;
    size_t len;
    int n;
    va_list ap;

    if (level > log_level_now || level < LOGL_ERROR)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    len = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + len, sizeof line - len, ".%03ldZ %s %s ", now.tv_nsec / 1000000L,
                 log_level_names[level], log_component);
    if (n > 0)
        len += (size_t)n < sizeof line - len ? (size_t)n : sizeof line - len - 1;
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof line - len, fmt, ap);
    va_end(ap);
    if (n > 0)
        len += (size_t)n < sizeof line - len ? (size_t)n : sizeof line - len - 1;
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    if (len >= sizeof line - 1)
        len = sizeof line - 2;
    line[len++] = '\n';
    if (write(STDERR_FILENO, line, len) < 0) {
        /* nowhere left to report a failed log write */
    }
}
