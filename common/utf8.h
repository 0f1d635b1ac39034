/* utf8: UTF-8 validation shared by everything that cleans untrusted text
 * (the consumer's JSON repair, the sink's text cleaning). No dependencies,
 * built as its own small library so the Postgres writer can use it
 * without linking Kafka. */
#ifndef BACKFILL_UTF8_H
#define BACKFILL_UTF8_H

#include <stddef.h>

/* Length (1..4) of the valid UTF-8 sequence at p (n >= 1 bytes left), or 0
 * if p[0] does not start one. Rejects overlong forms, encoded surrogates
 * and code points above U+10FFFF (RFC 3629). NUL counts as valid. */
size_t utf8_seq_len(const unsigned char *p, size_t n);

#endif
