/* Unit tests of kafka_health's reading of librdkafka's broker error text:
 * the broker's "host:port" and the short reason that the one log line per
 * state change carries. */
#include <string.h>

#include "check.h"
#include "kafka_health.h"

static int parsed(const char *text, const char *broker, const char *reason)
{
    char b[128], r[256];
    if (kafka_health_parse_broker_error(text, b, sizeof b, r, sizeof r) != 0)
        return 0;
    if (strcmp(b, broker) || strcmp(r, reason)) {
        fprintf(stderr, "got '%s' '%s'\n", b, r);
        return 0;
    }
    return 1;
}

int main(void)
{
    /* as logged (facility FAIL), with the thread name first */
    CHECK(parsed("[thrd:127.0.0.1:9/bootstrap]: 127.0.0.1:9/bootstrap: Connect to "
                 "ipv4#127.0.0.1:9 failed: Connection refused (after 0ms in state CONNECT)",
                 "127.0.0.1:9", "connection refused"));
    /* as handed to the error callback */
    CHECK(parsed("kafka:9092/1: Connect to ipv4#10.0.0.7:9092 failed: Connection timed out "
                 "(after 30012ms in state CONNECT)",
                 "kafka:9092", "connection timed out"));
    CHECK(parsed("[thrd:nohost.invalid:9092/bootstrap]: nohost.invalid:9092/bootstrap: Failed to "
                 "resolve 'nohost.invalid:9092': Name or service not known (after 4ms in state "
                 "CONNECT)",
                 "nohost.invalid:9092", "name or service not known"));
    /* a TLS listener: the protocol prefix is not part of the address */
    CHECK(parsed("sasl_ssl://b1.example.com:9093/2: SSL handshake failed: certificate verify "
                 "failed (after 12ms in state SSL_HANDSHAKE)",
                 "b1.example.com:9093", "certificate verify failed"));
    /* an all-caps first word stays as it is */
    CHECK(parsed("[::1]:9092/bootstrap: Connect to ipv6#[::1]:9092 failed: SASL authentication "
                 "error (after 3ms in state AUTH_REQ)",
                 "[::1]:9092", "SASL authentication error"));
    /* text that names no broker */
    {
        char b[64], r[64];
        CHECK(kafka_health_parse_broker_error("1/1 brokers are down", b, sizeof b, r, sizeof r) ==
              -1);
        CHECK(kafka_health_parse_broker_error("no broker here", b, sizeof b, r, sizeof r) == -1);
        CHECK(kafka_health_parse_broker_error("", b, sizeof b, r, sizeof r) == -1);
    }
    /* small buffers truncate, never overflow */
    {
        char b[4], r[4];
        CHECK(kafka_health_parse_broker_error("127.0.0.1:9/bootstrap: Connect to x failed: "
                                              "Connection refused",
                                              b, sizeof b, r, sizeof r) == 0);
        CHECK(strcmp(b, "127") == 0 && strcmp(r, "con") == 0);
    }
    CHECK(!kafka_health_fatal(NULL, 0));
    CHECK(!kafka_health_unreachable(NULL, 0));
    return CHECK_DONE();
}
