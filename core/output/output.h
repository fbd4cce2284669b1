/* SPDX-License-Identifier: MIT */
/*
 * Results as JSON text, and the ordered writer.
 *
 * Workers encode each result into their own growable buffer right after
 * process_one returns (so a plugin's strings need to live only until then);
 * the writer then emits the encoded records in input order.  Encoding is
 * allocation-free once a worker's buffer has grown to its working size.
 *
 * Why not cJSON here: its parser writes a process-global error position on
 * every call (a data race between workers), re-printing parsed numbers
 * through double loses digits (a 128-bit sum), its string printer copies
 * invalid UTF-8 through (invalid JSON), and its number printer accepts 15
 * digits when they round-trip only within a relative epsilon, losing the
 * last bit of some doubles.  cJSON parses the inputs (json: item sources)
 * and the tests read every output back with it.
 */
#ifndef WEFT_CORE_OUTPUT_H
#define WEFT_CORE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "weft/plugin.h"

extern const char weft__digit_pairs[201];

/* Writes v in decimal at o, which has room for 20 bytes; returns the bytes
 * written.  Inline: a record of an integer is mostly this. */
static inline size_t weft__put_int(char *o, int64_t v)
{
    char *start = o;
    if (v < 0)
        *o++ = '-';
    /* Through uint64_t so INT64_MIN negates without overflow. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    unsigned n = 1; /* digits: compares, four digits per division */
    for (uint64_t t = u;; t /= 10000, n += 4) {
        if (t < 10)
            break;
        if (t < 100) {
            n += 1;
            break;
        }
        if (t < 1000) {
            n += 2;
            break;
        }
        if (t < 10000) {
            n += 3;
            break;
        }
    }
    char *p = o + n;
    while (u >= 100) {
        const char *d = weft__digit_pairs + 2 * (u % 100);
        u /= 100;
        *--p = d[1];
        *--p = d[0];
    }
    if (u >= 10) {
        *--p = weft__digit_pairs[2 * u + 1];
        *--p = weft__digit_pairs[2 * u];
    } else {
        *--p = (char)('0' + u);
    }
    return (size_t)(o + n - start);
}

/* A JSON string literal for len bytes of s; invalid UTF-8 becomes U+FFFD,
 * control characters and NUL are escaped.  0 or -ENOMEM. */
int weft__json_string(weft__buf_t *b, const char *s, size_t len);

/* Validates JSON text (RFC 8259, one value, surrounding space allowed,
 * nesting at most 256 deep) and appends it minified, every number and
 * string kept to the letter.  -EINVAL with `why` ("at byte N: ...") if
 * invalid; the buffer is then left as it was.  -ENOMEM. */
int weft__json_minify(weft__buf_t *b, const char *s, size_t len, char *why, size_t whylen);

/* Appends the JSON of r's value (null for NONE and non-finite floats).
 * -EINVAL with `why` for an invalid JSON value or a bad kind. */
int weft__json_value(weft__buf_t *b, const weft_result_t *r, char *why, size_t whylen);

/* ---- the ordered writer --------------------------------------------------- */

typedef struct weft__writer weft__writer_t;

/* path: an absolute path or "-" for stdout.  A file is written under a
 * hidden temporary name beside it (".NAME.partial") and renamed over path at
 * close: path only ever holds a complete document (or what it held before).
 * A path that exists and is not a regular file (/dev/null, a FIFO) is
 * written directly.  -EWOULDBLOCK when another run is writing path now. */
int weft__writer_open(weft__writer_t **out, const char *path, weft__format_t format,
                      char *err, size_t errlen);

/* Appends one record (JSON text without a newline); buffered.  Once a write
 * failed, later calls do nothing and return that error. */
int weft__writer_record(weft__writer_t *w, const char *json, size_t len);

/*
 * Records framed by the workers themselves, so that the writer can copy a
 * run of consecutive records in one go: in a JSON array each record is
 * prefixed with ",\n" (the writer drops it before the first record), in
 * JSON Lines each is followed by "\n".  `data` holds n_records records.
 */
typedef struct weft__frame {
    const char *prefix, *suffix;
    size_t prefix_len, suffix_len;
} weft__frame_t;

weft__frame_t weft__frame_of(weft__format_t format);
int weft__writer_framed(weft__writer_t *w, const char *data, size_t len, uint64_t n_records);

/* Bytes buffered, not yet handed to the file (or pipe). */
size_t weft__writer_buffered(const weft__writer_t *w);

/* Hands what is buffered to the file now (streaming: a reader of the pipe
 * sees every record written so far).  The first error, or 0. */
int weft__writer_flush(weft__writer_t *w);

/* Bytes of records written so far (after buffering), for summaries. */
uint64_t weft__writer_bytes(const weft__writer_t *w);

/* Ends the document, flushes, syncs a regular file, closes, renames it into
 * place and syncs its folder.  Reports the first error of the whole run
 * ("PATH: write failed: No space left on device"); then the temporary is
 * removed and path left as it was.  *w becomes NULL. */
int weft__writer_close(weft__writer_t **w, char *err, size_t errlen);

/* Closes and removes the temporary: path is left as it was.  NULL ok. */
void weft__writer_abort(weft__writer_t **w);

/* "DIR/.NAME.partial" for path "DIR/NAME" (malloc'd; NULL when out of
 * memory): where a results file is written until it is complete.  A fixed
 * name, so a killed run's leftover is replaced by the next, not piled up
 * beside it; the writing run holds its flock (weft__open_temp), so a second
 * run on the same results file is refused whatever its journal setting. */
char *weft__partial_name(const char *path);
/* The message for a results temporary `tmp` (of path) that could not be
 * created with errno e: "PATH is being written by another weft run now
 * (pid N)..." for EWOULDBLOCK, else "cannot create output PATH: ...". */
void weft__partial_error(char *err, size_t errlen, const char *path, const char *tmp, int e);

#endif
