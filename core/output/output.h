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

/* Length of the valid UTF-8 sequence at s (Unicode 15, table 3-7), or 0;
 * left >= 1. */
size_t weft__utf8_len(const unsigned char *s, size_t left);

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

/* ---- raw ---------------------------------------------------------------------
 *
 * format = raw writes each value as it is, like GNU parallel and xargs
 * print their commands' output: a string value is its own bytes (nothing
 * added, nothing escaped: exec's captured stdout comes out byte for byte);
 * any other value is its JSON text and a newline (a number per line); no
 * value, a failed item and an item not run write nothing.  Records carry
 * no index, so record = full is refused; in input order (the default) the
 * values follow the items' order, with order = any as they finish.
 */

/* Appends r's value as format = raw writes it.  -EINVAL with `why` for a
 * bad kind or invalid JSON (then nothing is appended). */
int weft__raw_value(weft__buf_t *b, const weft_result_t *r, char *why, size_t whylen);

/* ---- CSV and TSV ------------------------------------------------------------
 *
 * format = csv | tsv: a header row, then one row per record, each ended by
 * LF alone (RFC 4180 writes CRLF; every reader we target -- Python's csv
 * module, pandas, R, spreadsheets -- takes either, and LF keeps the file
 * line-oriented like JSON Lines).  The columns:
 *
 *   index   the item's index
 *   input   the item's text (a line, a path, a JSON element), or its number
 *           for a range
 *   ok      true or false
 *   error   the failure message; empty when ok
 *   value   the value (no `columns =`), or one column per name of
 *           `columns = a,b,c` (WEFT__MAX_COLUMNS at most)
 *
 * The header is fixed before the first row streams: rows are encoded on the
 * workers, in parallel and out of order, so "the keys of the first object"
 * would depend on which item finished first.  Hence `columns =`: with it,
 * a value must be a JSON object (or no value: empty cells); each of its
 * keys goes into the column of that name, a listed key it lacks is an
 * empty cell, and a key not listed, or a key twice, fails the item with a
 * message naming the key -- never dropped in silence.  Nested objects are
 * not flattened further: they are a cell of JSON text.
 *
 * A cell holds: an integer or a finite float as JSON writes it (the float
 * the shortest text that reads back exactly); true/false; a string's text
 * (a JSON string decoded); nothing for null, no value, a non-finite float
 * or a failed item's value; a JSON list or object as its minified text.
 * Text keeps valid UTF-8; every byte of invalid UTF-8, and NUL (which CSV
 * readers refuse), becomes U+FFFD, as in JSON.
 *
 * CSV quoting (RFC 4180): a field holding '"', ',', CR or LF is enclosed
 * in '"' and its '"' doubled; every other field is written as it is.
 * TSV (PostgreSQL's text format, which pandas reads with sep='\t'): no
 * quoting; '\' is written "\\", tab "\t", LF "\n", CR "\r".
 *
 * A row is framed like a JSON Lines record: the frame's suffix is its LF
 * (weft__frame_of), so a block of rows is a run of lines.  record = full
 * is the only record kind (the row carries index, ok and error).
 */

/* The header row, LF included.  columns NULL/n 0: one column `value`. */
int weft__csv_header(weft__buf_t *b, weft__format_t f, char *const *columns, size_t n);

/* One field of text, escaped or quoted as above.  0 or -ENOMEM. */
int weft__csv_text(weft__buf_t *b, weft__format_t f, const char *s, size_t len);

/* The most bytes weft__csv_row may append for these arguments (SIZE_MAX:
 * too big to encode).  Once that much room is reserved the row does not
 * move b->data, so its value may point into b itself (flatten). */
size_t weft__csv_row_bound(const weft_item_t *item, const weft_result_t *res,
                           const char *failure, size_t n_columns);

/* Appends item's row, without its LF (the frame's): a failure (failure != NULL: its message)
 * or res's value.  -EINVAL with `why` when the value cannot be written
 * (invalid JSON, not an object with columns, a key that is not a column);
 * -ENOMEM.  On error nothing is appended. */
int weft__csv_row(weft__buf_t *b, weft__format_t f, char *const *columns, size_t n_columns,
                  const weft_item_t *item, const weft_result_t *res, const char *failure,
                  char *why, size_t whylen);

/* ---- compression ---------------------------------------------------------------
 *
 * output = NAME.gz or NAME.zst compresses the results stream as it is
 * written: gzip through zlib (deflate, level 6 as gzip's default, a gzip
 * header with no name and mtime 0), Zstandard through libzstd (level 3 as
 * zstd's default, one frame with its content checksum, no content size,
 * one thread).  The writer feeds the codec only whole buffers of
 * WEFT__WRITER_CHUNK bytes, and the rest at close: the compressed bytes are
 * a function of the uncompressed bytes alone, whatever the timing of
 * flushes, so a resumed run (which writes the whole stream again from its
 * journal) makes a byte-identical file.  A stream that is not a regular
 * file (a pipe, a FIFO) is flushed through the codec (Z_SYNC_FLUSH,
 * ZSTD_e_flush) at each weft__writer_flush instead, so a reader sees
 * every record written so far.  The codec runs on whichever thread calls
 * the writer (the drain thread).
 */
typedef struct weft__codec weft__codec_t;

typedef enum weft__codec_mode {
    WEFT__CODEC_CONTINUE, /* more input follows                      */
    WEFT__CODEC_FLUSH,    /* make everything so far decodable         */
    WEFT__CODEC_END,      /* the last input: end the stream           */
} weft__codec_mode_t;

/* Where compressed bytes go: 0, or a negative errno that stops the codec. */
typedef int (*weft__codec_sink_t)(void *arg, const void *data, size_t len);

/* kind GZIP or ZSTD.  0, -ENOMEM or -EINVAL. */
int weft__codec_open(weft__codec_t **out, weft__compress_t kind);

/* Compresses n bytes at p, handing output to sink as it comes.  0, the
 * sink's error, or -EIO / -ENOMEM from the library. */
int weft__codec_put(weft__codec_t *c, const void *p, size_t n, weft__codec_mode_t mode,
                    weft__codec_sink_t sink, void *arg);

/* NULL ok. */
void weft__codec_free(weft__codec_t **c);

/* ---- the ordered writer --------------------------------------------------- */

typedef struct weft__writer weft__writer_t;

/* The writer's buffer: a compressed output is fed to its codec in pieces
 * of exactly this size. */
#define WEFT__WRITER_CHUNK ((size_t)1 << 20)

/* What a writer writes; zero is the default except format. */
typedef struct weft__writer_settings {
    weft__format_t format;     /* JSON, JSONL, CSV or TSV                      */
    weft__compress_t compress; /* NONE by default                              */
    const char *header;        /* written first, before any record (the CSV
                                  header row); copied; NULL: nothing       */
    size_t header_len;
} weft__writer_settings_t;

/* path: an absolute path or "-" for stdout.  A file is written under a
 * hidden temporary name beside it (".NAME.partial") and renamed over path at
 * close: path only ever holds a complete document (or what it held before).
 * A path that exists and is not a regular file (/dev/null, a FIFO) is
 * written directly.  A compressed output's temporary holds the compressed
 * bytes.  -EWOULDBLOCK when another run is writing path now. */
int weft__writer_open_with(weft__writer_t **out, const char *path,
                           const weft__writer_settings_t *s, char *err, size_t errlen);

/* weft__writer_open_with, uncompressed, no header. */
int weft__writer_open(weft__writer_t **out, const char *path, weft__format_t format,
                      char *err, size_t errlen);

/* Appends one record (JSON text without a newline); buffered.  Once a write
 * failed, later calls do nothing and return that error. */
int weft__writer_record(weft__writer_t *w, const char *json, size_t len);

/*
 * Records framed by the workers themselves, so that the writer can copy a
 * run of consecutive records in one go: in a JSON array each record is
 * prefixed with ",\n" (the writer drops it before the first record), in
 * JSON Lines, CSV and TSV each is followed by "\n".  `data` holds
 * n_records records.
 */
typedef struct weft__frame {
    const char *prefix, *suffix;
    size_t prefix_len, suffix_len;
} weft__frame_t;

weft__frame_t weft__frame_of(weft__format_t format);
int weft__writer_framed(weft__writer_t *w, const char *data, size_t len, uint64_t n_records);

/* Bytes buffered, not yet handed to the file (or pipe, or codec). */
size_t weft__writer_buffered(const weft__writer_t *w);

/* Hands what is buffered to the file now (streaming: a reader of the pipe
 * sees every record written so far).  A compressed regular file keeps its
 * buffer (see "compression": it goes to the codec when full).  The first
 * error, or 0. */
int weft__writer_flush(weft__writer_t *w);

/* Bytes of records written so far (after buffering, before compression),
 * for summaries. */
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
