/* job_timeline: the spans add up to the total, a span closed before its
 * mark counts nothing, a move never takes more than was counted, the time
 * outside GitHub leaves out the requests and the imposed waits, and the
 * log text names every span. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "job_timeline.h"

#define NEAR(a, b) ((a) - (b) < 1e-9 && (b) - (a) < 1e-9)

int main(void)
{
    struct job_timeline t;
    char buf[512];
    double sum = 0;

    jt_begin(&t, 100.0, -1);
    CHECK(t.cur == JT_LOAD && NEAR(jt_total(&t), 0));
    jt_switch(&t, 100.002, JT_STARTED);  /* 2 ms reading the checkpoint */
    jt_switch(&t, 100.003, JT_GITHUB);   /* 1 ms publishing `started` */
    jt_switch(&t, 100.103, JT_PUBLISH);  /* 100 ms at GitHub */
    jt_move(&t, JT_GITHUB, JT_COLLECT, 0.004); /* the answer came 4 ms before it was seen */
    jt_switch(&t, 100.105, JT_ACKS);
    jt_switch(&t, 100.100, JT_ACKS);     /* a time before the mark counts nothing */
    jt_switch(&t, 100.109, JT_WAIT);
    jt_switch(&t, 100.609, JT_COMMIT);   /* half a second of rate limit */
    jt_switch(&t, 100.610, JT_COMMIT);
    CHECK(NEAR(t.span[JT_LOAD], 0.002));
    CHECK(NEAR(t.span[JT_STARTED], 0.001));
    CHECK(NEAR(t.span[JT_GITHUB], 0.096));
    CHECK(NEAR(t.span[JT_COLLECT], 0.004));
    CHECK(NEAR(t.span[JT_PUBLISH], 0.002));
    CHECK(NEAR(t.span[JT_ACKS], 0.004));
    CHECK(NEAR(t.span[JT_WAIT], 0.5));
    CHECK(NEAR(t.span[JT_COMMIT], 0.001));
    for (int i = 0; i < JT_N; i++)
        sum += t.span[i];
    CHECK(NEAR(sum, jt_total(&t)) && NEAR(jt_total(&t), 0.610));
    CHECK(NEAR(jt_outside(&t), 0.610 - 0.096 - 0.5));

    jt_move(&t, JT_LOAD, JT_SEND, 1.0); /* capped at what load had */
    CHECK(NEAR(t.span[JT_LOAD], 0) && NEAR(t.span[JT_SEND], 0.002));
    jt_move(&t, JT_SEND, JT_LOAD, -1.0); /* nothing */
    CHECK(NEAR(t.span[JT_SEND], 0.002));

    CHECK(jt_format(&t, buf, sizeof buf) == (int)strlen(buf));
    const char *head = "total_ms=610.0 github_ms=96.0 outside_ms=14.0 load_ms=0.0 started_ms=1.0 ";
    CHECK(strncmp(buf, head, strlen(head)) == 0);
    CHECK(strstr(buf, " wait_ms=500.0") != NULL);
    for (int i = 0; i < JT_N; i++) {
        char want[32];
        snprintf(want, sizeof want, " %s_ms=", jt_name((enum jt_span)i));
        CHECK(strstr(buf, want) != NULL);
    }
    CHECK(strstr(buf, "handover") == NULL); /* the slot's first job */
    CHECK(strcmp(jt_name(JT_N), "?") == 0);

    /* a later job of the slot says how long the slot stood free; a short
     * buffer is cut, never overrun, and the length says what was wanted */
    jt_begin(&t, 5.0, 0.0125);
    jt_switch(&t, 5.5, JT_COMMIT);
    CHECK(jt_format(&t, buf, sizeof buf) > 0 && strstr(buf, " handover_ms=12.5") != NULL);
    memset(buf, 'x', sizeof buf);
    int n = jt_format(&t, buf, 10);
    CHECK(n > 10 && buf[9] == '\0' && buf[10] == 'x');
    buf[0] = 'x';
    CHECK(jt_format(&t, buf, 0) == n && buf[0] == 'x');
    return CHECK_DONE();
}
