/* isotime: see isotime.h. */
#define _GNU_SOURCE /* timegm */
#include "isotime.h"

#include <stdio.h>
#include <string.h>

void isotime_format(time_t t, char out[ISOTIME_LEN + 1])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, ISOTIME_LEN + 1, "%04Y-%m-%dT%H:%M:%SZ", &tm); /* %Y alone: "24" for 0024 */
}

int isotime_parse(const char *s, time_t *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd"; /* d: a digit */
    struct tm tm;
    int n = 0;
    memset(&tm, 0, sizeof tm);
    /* sscanf alone would take signs and spaces ("+024-…", "…T-1:…"): a
     * time isotime_format could not write back in the same shape. */
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
            return -1;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
        return -1;
    s += n;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (strcmp(s, "Z") != 0)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *t = timegm(&tm);
    return 0;
}

int64_t isotime_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double isotime_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
