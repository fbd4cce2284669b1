/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "output.h"
#include "util.h"

/* ---- growable buffer ------------------------------------------------------- */

/* ---- strings ------------------------------------------------------------- */

size_t weft__utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else
        return 0;
    if (left < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < need; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return need;
}

int weft__json_string(weft__buf_t *b, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    /* Worst case: every byte becomes \u00XX (6) or U+FFFD (3). */
    if (len > (SIZE_MAX - 2) / 6 || weft__buf_reserve(b, len * 6 + 2) != 0)
        return -ENOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t k = 0;
    while (k < len) {
        unsigned char c = s[k];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            k++;
        } else if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                *o++ = 'u', *o++ = '0', *o++ = '0';
                *o++ = hex[c >> 4], *o++ = hex[c & 15];
            }
            k++;
        } else {
            size_t n = weft__utf8_len(s + k, len - k);
            if (n) {
                memcpy(o, s + k, n);
                o += n, k += n;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD per invalid byte */
                o += 3, k++;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

/* ---- validating minifier ------------------------------------------------------ */

typedef struct json_scan {
    const char *s;
    size_t len, pos;
    weft__buf_t *out;
    const char *err;
    int oom;
} json_scan_t;

enum { JSON_MAX_DEPTH = 256 };

static void skip_space(json_scan_t *j)
{
    while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                               j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

static int emit(json_scan_t *j, const char *p, size_t n)
{
    if (weft__buf_append(j->out, p, n) != 0) {
        j->oom = 1;
        return -1;
    }
    return 0;
}

static int fail(json_scan_t *j, const char *why)
{
    j->err = why;
    return -1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int scan_value(json_scan_t *j, int depth);

static int scan_string(json_scan_t *j)
{
    size_t start = j->pos++; /* opening quote */
    while (j->pos < j->len) {
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c == '"') {
            j->pos++;
            return emit(j, j->s + start, j->pos - start);
        }
        if (c < 0x20)
            return fail(j, "control character in string");
        if (c == '\\') {
            if (++j->pos >= j->len)
                break;
            char e = j->s[j->pos];
            if (e == 'u') {
                for (int k = 1; k <= 4; k++) {
                    char h = j->pos + k < j->len ? j->s[j->pos + k] : '\0';
                    if (!is_digit(h) && !((h | 0x20) >= 'a' && (h | 0x20) <= 'f'))
                        return fail(j, "bad \\u escape");
                }
                j->pos += 5;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                j->pos++;
            } else
                return fail(j, "bad escape in string");
        } else if (c >= 0x80) {
            size_t n = weft__utf8_len((const unsigned char *)j->s + j->pos, j->len - j->pos);
            if (!n)
                return fail(j, "invalid UTF-8 in string");
            j->pos += n;
        } else
            j->pos++;
    }
    return fail(j, "unterminated string");
}

static int scan_number(json_scan_t *j)
{
    size_t start = j->pos;
    if (j->s[j->pos] == '-')
        j->pos++;
    if (j->pos < j->len && j->s[j->pos] == '0')
        j->pos++;
    else if (j->pos < j->len && is_digit(j->s[j->pos]))
        while (j->pos < j->len && is_digit(j->s[j->pos]))
            j->pos++;
    else
        return fail(j, "bad number");
    if (j->pos < j->len && j->s[j->pos] == '.') {
        j->pos++;
        if (j->pos >= j->len || !is_digit(j->s[j->pos]))
            return fail(j, "bad number: digits must follow '.'");
        while (j->pos < j->len && is_digit(j->s[j->pos]))
            j->pos++;
    }
    if (j->pos < j->len && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->len && (j->s[j->pos] == '+' || j->s[j->pos] == '-'))
            j->pos++;
        if (j->pos >= j->len || !is_digit(j->s[j->pos]))
            return fail(j, "bad number: digits must follow the exponent");
        while (j->pos < j->len && is_digit(j->s[j->pos]))
            j->pos++;
    }
    return emit(j, j->s + start, j->pos - start);
}

static int scan_literal(json_scan_t *j, const char *word)
{
    size_t n = strlen(word);
    if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n) != 0)
        return fail(j, "unexpected character");
    j->pos += n;
    return emit(j, word, n);
}

/* Arrays and objects: items separated by ',', objects' items "key":value. */
static int scan_container(json_scan_t *j, int depth, char open, char close)
{
    if (depth >= JSON_MAX_DEPTH)
        return fail(j, "nested too deeply");
    j->pos++;
    if (emit(j, &open, 1))
        return -1;
    skip_space(j);
    if (j->pos < j->len && j->s[j->pos] == close) {
        j->pos++;
        return emit(j, &close, 1);
    }
    for (;;) {
        skip_space(j);
        if (open == '{') {
            if (j->pos >= j->len || j->s[j->pos] != '"')
                return fail(j, "expected a string key");
            if (scan_string(j))
                return -1;
            skip_space(j);
            if (j->pos >= j->len || j->s[j->pos] != ':')
                return fail(j, "expected ':'");
            j->pos++;
            if (emit(j, ":", 1))
                return -1;
        }
        if (scan_value(j, depth + 1))
            return -1;
        skip_space(j);
        if (j->pos < j->len && j->s[j->pos] == ',') {
            j->pos++;
            if (emit(j, ",", 1))
                return -1;
            continue;
        }
        if (j->pos < j->len && j->s[j->pos] == close) {
            j->pos++;
            return emit(j, &close, 1);
        }
        return fail(j, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int scan_value(json_scan_t *j, int depth)
{
    skip_space(j);
    if (j->pos >= j->len)
        return fail(j, "unexpected end");
    switch (j->s[j->pos]) {
    case '{': return scan_container(j, depth, '{', '}');
    case '[': return scan_container(j, depth, '[', ']');
    case '"': return scan_string(j);
    case 't': return scan_literal(j, "true");
    case 'f': return scan_literal(j, "false");
    case 'n': return scan_literal(j, "null");
    default: return scan_number(j);
    }
}

int weft__json_minify(weft__buf_t *b, const char *s, size_t len, char *why, size_t whylen)
{
    size_t mark = b->len;
    json_scan_t j = {.s = s, .len = len, .out = b};
    int rc = scan_value(&j, 0);
    if (rc == 0) {
        skip_space(&j);
        if (j.pos != len)
            rc = fail(&j, "text after the value");
    }
    if (rc == 0)
        return 0;
    b->len = mark;
    if (j.oom)
        return -ENOMEM;
    snprintf(why, whylen, "invalid JSON value at byte %zu: %s", j.pos, j.err);
    return -EINVAL;
}

/* ---- values -------------------------------------------------------------- */

/* Two digits at a time from a table: a division per digit (and glibc's
 * memcpy for the copy) cost more than the whole conversion for numbers
 * this small. */
const char weft__digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                    "25262728293031323334353637383940414243444546474849"
                                    "50515253545556575859606162636465666768697071727374"
                                    "75767778798081828384858687888990919293949596979899";

static int append_int(weft__buf_t *b, int64_t v)
{
    if (weft__buf_reserve(b, 20) != 0)
        return -ENOMEM;
    b->len += weft__put_int(b->data + b->len, v);
    return 0;
}

static int append_double(weft__buf_t *b, double v)
{
    if (!isfinite(v))
        return weft__buf_append(b, "null", 4);
    /* The shortest of 15, 16 or 17 significant digits that reads back as
     * exactly v (17 always does). */
    char text[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    return weft__buf_append(b, text, strlen(text));
}

int weft__json_value(weft__buf_t *b, const weft_result_t *r, char *why, size_t whylen)
{
    switch (r->kind) {
    case WEFT_VALUE_NONE:
        return weft__buf_append(b, "null", 4);
    case WEFT_VALUE_INT:
        return append_int(b, r->value.i);
    case WEFT_VALUE_FLOAT:
        return append_double(b, r->value.f);
    case WEFT_VALUE_BOOL:
        return r->value.b ? weft__buf_append(b, "true", 4) : weft__buf_append(b, "false", 5);
    case WEFT_VALUE_STRING:
        if (!r->value.s.ptr && r->value.s.len)
            break;
        return weft__json_string(b, r->value.s.ptr ? r->value.s.ptr : "", r->value.s.len);
    case WEFT_VALUE_JSON:
        if (!r->value.s.ptr)
            break;
        return weft__json_minify(b, r->value.s.ptr, r->value.s.len, why, whylen);
    }
    snprintf(why, whylen, "the plugin returned a bad result (kind %d, or a NULL string)",
             (int)r->kind);
    return -EINVAL;
}

int weft__raw_value(weft__buf_t *b, const weft_result_t *r, char *why, size_t whylen)
{
    if (r->kind == WEFT_VALUE_NONE)
        return 0;
    if (r->kind == WEFT_VALUE_STRING && (r->value.s.ptr || !r->value.s.len))
        return r->value.s.len ? weft__buf_append(b, r->value.s.ptr, r->value.s.len) : 0;
    size_t mark = b->len;
    int e = weft__json_value(b, r, why, whylen);
    if (e == 0)
        e = weft__buf_append(b, "\n", 1);
    if (e)
        b->len = mark;
    return e;
}

/* ---- the ordered writer ------------------------------------------------- */

enum { WRITER_BUF = WEFT__WRITER_CHUNK, WRITER_DIRECT = 64 << 10 };

struct weft__writer {
    int fd;
    bool owns_fd;
    bool regular;
    weft__codec_t *codec; /* a compressed output; NULL: bytes as they are */
    char *tmp;      /* the temporary name, renamed to path at close; or NULL */
    weft__format_t format;
    char *path;
    uint64_t records;
    uint64_t bytes;
    int error; /* first write error, negative errno */
    uint64_t offset, kicked; /* bytes written to fd; of them, sent to disk */
    size_t fill;
    char buf[WRITER_BUF];
};

/* Every WRITEBACK_STEP bytes written, a regular file's new pages are sent
 * to the disk (sync_file_range, SYNC_FILE_RANGE_WRITE: it starts writeback
 * and does not wait), so that the fsync at close finds little left to do
 * instead of the whole file: the disk works while the run does. */
#define WRITEBACK_STEP ((uint64_t)8 << 20)

static void wrote(weft__writer_t *w, size_t n)
{
    w->offset += n;
    if (w->regular && w->offset - w->kicked >= WRITEBACK_STEP) {
        /* Best effort: an error here shows again at fsync. */
        sync_file_range(w->fd, (off_t)w->kicked, (off_t)(w->offset - w->kicked),
                        SYNC_FILE_RANGE_WRITE);
        w->kicked = w->offset;
    }
}

/* A regular file is written under a hidden temporary name in its folder
 * and renamed at close: the final name only ever holds a complete file. */
char *weft__partial_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    size_t n = strlen(path) + 16;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%.*s.%s.partial", (int)dir_len, path, path + dir_len);
    return t;
}

void weft__partial_error(char *err, size_t errlen, const char *path, const char *tmp, int e)
{
    long pid = 0;
    if (e == EWOULDBLOCK && weft__in_use(tmp, &pid) && pid)
        weft__msgf(err, errlen, "%s is being written by another weft run now (pid %ld): "
                   "wait for it to end, or stop it first", path, pid);
    else if (e == EWOULDBLOCK)
        weft__msgf(err, errlen, "%s is being written by another weft run now: wait for it "
                   "to end, or stop it first", path);
    else
        weft__msgf(err, errlen, "cannot create output %s: %s", path, strerror(e));
}

int weft__writer_open(weft__writer_t **out, const char *path, weft__format_t format,
                      char *err, size_t errlen)
{
    weft__writer_settings_t s = {.format = format};
    return weft__writer_open_with(out, path, &s, err, errlen);
}

int weft__writer_open_with(weft__writer_t **out, const char *path,
                           const weft__writer_settings_t *s, char *err, size_t errlen)
{
    if (s->header_len > WRITER_BUF)
        return -EINVAL;
    weft__writer_t *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    *w = (weft__writer_t){.fd = -1, .format = s->format};
    w->path = strdup(path);
    int rc = !w->path ? -ENOMEM
             : s->compress != WEFT__COMPRESS_NONE ? weft__codec_open(&w->codec, s->compress)
                                                  : 0;
    if (rc) {
        snprintf(err, errlen, "%s: cannot start the compressor: %s", path, strerror(-rc));
        free(w->path);
        free(w);
        return rc;
    }
    struct stat st;
    int named_fd = strcmp(path, "-") == 0 ? STDOUT_FILENO : weft__path_fd(path);
    if (named_fd >= 0) { /* "-", /dev/stdout, /dev/fd/N: that descriptor */
        if (fcntl(named_fd, F_GETFL) < 0) {
            snprintf(err, errlen, "cannot write to %s: descriptor %d is not open", path,
                     named_fd);
            free(w->path);
            free(w);
            return -EBADF;
        }
        w->fd = named_fd;
    } else {
        bool special = stat(path, &st) == 0 && !S_ISREG(st.st_mode); /* /dev/null, a FIFO */
        if (!special && !(w->tmp = weft__partial_name(path))) {
            free(w->path);
            free(w);
            return -ENOMEM;
        }
        /* The temporary is created afresh, never through a planted
         * symlink; a special file (/dev/null, a FIFO) is written to. */
        w->fd = w->tmp ? weft__open_temp(w->tmp, O_WRONLY, 0666)
                       : open(path, O_WRONLY | O_CLOEXEC);
        if (w->fd < 0) {
            int e = errno;
            weft__partial_error(err, errlen, path, w->tmp, e);
            weft__codec_free(&w->codec);
            free(w->tmp);
            free(w->path);
            free(w);
            return -e;
        }
        w->owns_fd = true;
    }
    w->regular = fstat(w->fd, &st) == 0 && S_ISREG(st.st_mode);
    if (s->header_len) { /* buffered like a record: nothing is written yet */
        memcpy(w->buf, s->header, s->header_len);
        w->fill = s->header_len;
    }
    *out = w;
    return 0;
}

/* len bytes at p to the descriptor. */
static void raw_write(weft__writer_t *w, const char *p, size_t len)
{
    size_t done = 0;
    while (done < len && !w->error) {
        ssize_t n = write(w->fd, p + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            wrote(w, (size_t)n);
        }
        else if (n < 0 && errno == EINTR)
            continue;
        else
            w->error = n < 0 ? -errno : -EIO; /* a zero write makes no progress */
    }
}

static int codec_sink(void *arg, const void *p, size_t n)
{
    weft__writer_t *w = arg;
    raw_write(w, p, n);
    return w->error;
}

/* Empties the buffer: to the descriptor, or through the codec with mode. */
static void writer_empty(weft__writer_t *w, weft__codec_mode_t mode)
{
    if (!w->codec) {
        raw_write(w, w->buf, w->fill);
    } else if (!w->error) {
        int e = weft__codec_put(w->codec, w->buf, w->fill, mode, codec_sink, w);
        if (e && !w->error)
            w->error = e;
    }
    w->fill = 0;
}

/* The buffer is full: a compressed output's codec always gets exactly
 * WRITER_BUF bytes here (output.h, "compression"). */
static void writer_flush(weft__writer_t *w)
{
    writer_empty(w, WEFT__CODEC_CONTINUE);
}

/* What is buffered, then n bytes at p, written in one writev: a big block
 * of records goes to the file without a copy through the buffer. */
static void writer_direct(weft__writer_t *w, const char *p, size_t n)
{
    struct iovec iov[2] = {{w->buf, w->fill}, {(void *)p, n}};
    int k = w->fill ? 0 : 1;
    while (k < 2 && !w->error) {
        ssize_t got = writev(w->fd, iov + k, 2 - k);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            w->error = got < 0 ? -errno : -EIO; /* a zero write makes no progress */
            break;
        }
        wrote(w, (size_t)got);
        size_t left = (size_t)got; /* a short write: on from where it stopped */
        while (k < 2 && left >= iov[k].iov_len)
            left -= iov[k++].iov_len;
        if (k < 2) {
            iov[k].iov_base = (char *)iov[k].iov_base + left;
            iov[k].iov_len -= left;
        }
    }
    w->fill = 0;
}

static void writer_put(weft__writer_t *w, const char *p, size_t n)
{
    if (n >= WRITER_DIRECT && !w->error && !w->codec) {
        writer_direct(w, p, n);
        return;
    }
    while (n && !w->error) {
        if (w->fill == WRITER_BUF)
            writer_flush(w);
        size_t room = WRITER_BUF - w->fill;
        size_t k = n < room ? n : room;
        memcpy(w->buf + w->fill, p, k);
        w->fill += k, p += k, n -= k;
    }
}

int weft__writer_record(weft__writer_t *w, const char *json, size_t len)
{
    if (w->error)
        return w->error;
    if (w->format == WEFT__FORMAT_JSON)
        writer_put(w, w->records ? ",\n" : "[\n", 2);
    writer_put(w, json, len);
    if (w->format != WEFT__FORMAT_JSON)
        writer_put(w, "\n", 1);
    w->records++;
    w->bytes += len;
    return w->error;
}

weft__frame_t weft__frame_of(weft__format_t format)
{
    if (format == WEFT__FORMAT_JSON)
        return (weft__frame_t){.prefix = ",\n", .prefix_len = 2, .suffix = ""};
    if (format == WEFT__FORMAT_JSONL || format == WEFT__FORMAT_CSV ||
        format == WEFT__FORMAT_TSV)
        return (weft__frame_t){.prefix = "", .suffix = "\n", .suffix_len = 1};
    return (weft__frame_t){.prefix = "", .suffix = ""};
}

int weft__writer_framed(weft__writer_t *w, const char *data, size_t len, uint64_t n_records)
{
    if (w->error || n_records == 0)
        return w->error;
    if (w->format == WEFT__FORMAT_JSON && w->records == 0) {
        writer_put(w, "[\n", 2);
        data += 2, len -= 2; /* the first record has no separator */
    }
    writer_put(w, data, len);
    w->records += n_records;
    w->bytes += len;
    return w->error;
}

size_t weft__writer_buffered(const weft__writer_t *w)
{
    return w->fill;
}

int weft__writer_flush(weft__writer_t *w)
{
    if (!w->codec)
        writer_empty(w, WEFT__CODEC_CONTINUE);
    else if (!w->regular && w->fill) /* a pipe's reader sees every record */
        writer_empty(w, WEFT__CODEC_FLUSH);
    return w->error;
}

uint64_t weft__writer_bytes(const weft__writer_t *w)
{
    return w->bytes;
}

static void writer_free(weft__writer_t **wp)
{
    weft__writer_t *w = *wp;
    weft__codec_free(&w->codec);
    free(w->tmp);
    free(w->path);
    free(w);
    *wp = NULL;
}

/* fsync of the folder, so that the rename itself is durable. */
int weft__writer_close(weft__writer_t **wp, char *err, size_t errlen)
{
    weft__writer_t *w = *wp;
    if (!w)
        return 0;
    if (w->format == WEFT__FORMAT_JSON)
        writer_put(w, w->records ? "\n]\n" : "[]\n", 3);
    writer_empty(w, WEFT__CODEC_END);
    const char *stage = "write";
    /* fsync so that "done" means on disk; pipes and terminals skip it. */
    if (!w->error && w->regular && fsync(w->fd) != 0 && errno != EINVAL)
        w->error = -errno, stage = "fsync";
    /* Renamed (or removed) before the close, while its lock is held: a
     * run starting now must not take the temporary for a leftover. */
    bool renamed = false;
    if (!w->error && w->tmp && rename(w->tmp, w->path) != 0)
        w->error = -errno, stage = "rename";
    else if (w->tmp)
        renamed = !w->error; /* the name is free now: another run may make it anew */
    if (!w->error && renamed && (w->error = weft__sync_folder_of(w->path)) != 0)
        stage = "fsync of the folder";
    if (w->error && w->tmp && !renamed)
        unlink(w->tmp);
    if (w->owns_fd && close(w->fd) != 0 && !w->error && errno != EINTR)
        w->error = -errno, stage = "close";
    int rc = w->error;
    if (rc) {
        snprintf(err, errlen, "%s: %s failed: %s",
                 strcmp(w->path, "-") == 0 ? "standard output" : w->path, stage, strerror(-rc));
    }
    writer_free(wp);
    return rc;
}

void weft__writer_abort(weft__writer_t **wp)
{
    weft__writer_t *w = *wp;
    if (!w)
        return;
    if (w->tmp)
        unlink(w->tmp); /* before the close: see weft__writer_close */
    if (w->owns_fd)
        close(w->fd);
    writer_free(wp);
}
