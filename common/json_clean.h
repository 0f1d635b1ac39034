/* json_clean: repairs JSON text that jansson would refuse as a whole only
 * because the content of a string is broken.
 *
 * jansson rejects an entire document for a \u escape of a UTF-16
 * surrogate that is not half of a valid pair ("\ud800" alone) and for any
 * byte that is not valid UTF-8. Both can reach us inside otherwise good
 * data (a pull-request title from GitHub, an event written by another
 * tool); losing a page of 100 pull requests, or retrying it until the job
 * fails, for one bad character is the wrong trade. Each such character
 * becomes U+FFFD, the Unicode replacement character, which is what a
 * lenient decoder would show. Nothing else is touched: \u0000 and broken
 * JSON syntax are left for the parser to accept or reject. */
#ifndef BACKFILL_JSON_CLEAN_H
#define BACKFILL_JSON_CLEAN_H

#include <stddef.h>

/* Scans buf[0..len) (borrowed; need not be NUL-terminated). Returns
 *   0   nothing to repair: *out and *outlen untouched, use buf as is;
 *   n   n repairs: *out is a malloc'd (caller frees), NUL-terminated copy
 *       in which each lone surrogate escape is "\ufffd" and each invalid
 *       UTF-8 byte is U+FFFD (EF BF BD); its length in *outlen;
 *  -1   out of memory (*out untouched).
 * Linear time; allocates only when something needs repair. */
int json_clean_text(const char *buf, size_t len, char **out, size_t *outlen);

#endif
