/* SPDX-License-Identifier: MIT */
/*
 * read_files: one JSON object per file item (item text = a path).
 *
 *   {"path":"...","size":N,"xxh64":"0123456789abcdef"}
 *   {"path":"...","size":N,"xxh64":"...","encoding":"text","content":"..."}
 *
 * path is the item's text (invalid UTF-8 in it becomes U+FFFD); a relative
 * path is opened relative to the config file's folder, like every other
 * relative path in a config.  size is the number of bytes read, which is
 * what the checksum and the content cover even if the file changes while
 * it is read.
 *
 * xxh64 is XXH64 with seed 0 (Collet, xxHash specification v0.8), as 16
 * lowercase hex digits: what `xxhsum -H1` prints.  It is fast (~10 GB/s,
 * never the bottleneck behind read(2)) and 64 bits wide, but it is NOT
 * cryptographic: good for change detection and finding duplicates, useless
 * against someone who crafts collisions.  A string, because JSON numbers
 * past 2^53 lose digits in many parsers.  No dependency beyond libc.
 *
 * content: none; text (a JSON string; each byte that is not part of valid
 * UTF-8 becomes U+FFFD, the runner's rule, so text is lossy for binary
 * files); base64 (RFC 4648, padded, no line breaks); auto (text when the
 * file is valid UTF-8 without NUL bytes, else base64).
 *
 * Every failure is the item's, never the run's: a missing or unreadable
 * file, a folder, a FIFO or device (opened O_NONBLOCK, so a FIFO cannot
 * hang a worker), a file over max_size, a symbolic link when
 * follow_symlinks is false (only the last path component is checked:
 * O_NOFOLLOW semantics).
 *
 * No malloc per item in steady state: each worker keeps a read buffer and
 * a result buffer, grown as needed.  A buffer grown past KEEP_CAP by a big
 * file is shrunk back when a small file follows, so that a few big files
 * do not pin (workers x size) of memory for the rest of the run.  Reads
 * are at most READ_CHUNK long and hashed right away, while in cache.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* GNU strerror_r: also when built on its own */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/plugin.h>

enum { ARG_CONTENT, ARG_MAX_SIZE, ARG_FOLLOW_SYMLINKS };

static const weft_arg_spec_t rf_args[] = {
    [ARG_CONTENT] = {.name = "content",
                     .type = WEFT_ARG_STRING,
                     .default_value = "none",
                     .help =
                         "none | text | base64 | auto: add the file's bytes (auto: text "
                         "if valid UTF-8 without NUL, else base64)"},
    [ARG_MAX_SIZE] = {.name = "max_size",
                      .type = WEFT_ARG_INT,
                      .default_value = "67108864",
                      .help = "bytes; a larger file is that item's error; 0 = no limit",
                      .min = 0,
                      .max = 1e18},
    [ARG_FOLLOW_SYMLINKS] = {.name = "follow_symlinks",
                             .type = WEFT_ARG_BOOL,
                             .default_value = "true",
                             .help =
                                 "false: an item whose last path component is a symbolic "
                                 "link fails (O_NOFOLLOW)"},
};

typedef enum { CONTENT_NONE, CONTENT_TEXT, CONTENT_BASE64, CONTENT_AUTO } content_t;

enum {
    READ_CHUNK = 256 << 10, /* per read(2): hashed while still in L2 */
    KEEP_CAP = 16 << 20,    /* buffers above this shrink for a small file */
    JSON_FIXED = 128,       /* the object's keys, size, hash and braces */
};

/* The runner stores a record's length in 32 bits (core/run/job.h, slot_t);
 * leave room for the `record = full` wrapper. */
#define RESULT_MAX ((size_t)UINT32_MAX - 4096)

typedef struct rf_state {
    const weft_host_t *host;
    content_t content;
    uint64_t max_size; /* UINT64_MAX: no limit */
    bool follow;
    int dirfd; /* the config's folder: relative items resolve here */
} rf_state_t;

typedef struct rf_worker {
    alignas(64) const rf_state_t *s; /* own cache line: see aligned_alloc */
    unsigned char *raw; /* the file (content) or a READ_CHUNK window (none) */
    size_t raw_cap;
    char *json; /* the item's value */
    size_t json_cap;
} rf_worker_t;

/* ---- XXH64, streaming ---------------------------------------------------- */

#define P1 UINT64_C(0x9E3779B185EBCA87)
#define P2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C(0x165667B19E3779F9)
#define P4 UINT64_C(0x85EBCA77C2B2AE63)
#define P5 UINT64_C(0x27D4EB2F165667C5)

typedef struct xxh64 {
    uint64_t v[4];
    uint64_t total;
    unsigned char mem[32]; /* a partial stripe between updates */
    size_t mem_len;
} xxh64_t;

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56; /* one load at -O2 */
}

static inline uint64_t le32(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t lane)
{
    return rotl64(acc + lane * P2, 31) * P1;
}

static void xxh_init(xxh64_t *h)
{
    *h = (xxh64_t){.v = {P1 + P2, P2, 0, 0 - P1}};
}

/* Whole 32-byte stripes of p; returns the bytes consumed. */
static size_t xxh_stripes(xxh64_t *h, const unsigned char *p, size_t n)
{
    uint64_t a = h->v[0], b = h->v[1], c = h->v[2], d = h->v[3];
    size_t k = 0;
    for (; n - k >= 32; k += 32) {
        a = xxh_round(a, le64(p + k));
        b = xxh_round(b, le64(p + k + 8));
        c = xxh_round(c, le64(p + k + 16));
        d = xxh_round(d, le64(p + k + 24));
    }
    h->v[0] = a, h->v[1] = b, h->v[2] = c, h->v[3] = d;
    return k;
}

static void xxh_update(xxh64_t *h, const unsigned char *p, size_t n)
{
    h->total += n;
    if (h->mem_len) {
        size_t take = 32 - h->mem_len < n ? 32 - h->mem_len : n;
        memcpy(h->mem + h->mem_len, p, take);
        h->mem_len += take;
        p += take, n -= take;
        if (h->mem_len < 32)
            return;
        xxh_stripes(h, h->mem, 32);
        h->mem_len = 0;
    }
    size_t done = xxh_stripes(h, p, n);
    memcpy(h->mem, p + done, n - done);
    h->mem_len = n - done;
}

static uint64_t xxh_digest(const xxh64_t *h)
{
    uint64_t acc;
    if (h->total >= 32) {
        acc = rotl64(h->v[0], 1) + rotl64(h->v[1], 7) + rotl64(h->v[2], 12) +
              rotl64(h->v[3], 18);
        for (int k = 0; k < 4; k++)
            acc = (acc ^ xxh_round(0, h->v[k])) * P1 + P4;
    } else {
        acc = P5; /* seed + P5 */
    }
    acc += h->total;
    const unsigned char *p = h->mem;
    size_t n = h->mem_len;
    for (; n >= 8; p += 8, n -= 8)
        acc = rotl64(acc ^ xxh_round(0, le64(p)), 27) * P1 + P4;
    if (n >= 4) {
        acc = rotl64(acc ^ le32(p) * P1, 23) * P2 + P3;
        p += 4, n -= 4;
    }
    for (; n > 0; p++, n--)
        acc = rotl64(acc ^ *p * P5, 11) * P1;
    acc ^= acc >> 33;
    acc *= P2;
    acc ^= acc >> 29;
    acc *= P3;
    acc ^= acc >> 32;
    return acc;
}

/* ---- JSON strings ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (Unicode table 3-7: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF; /* bounds of the 2nd byte */
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (left < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < need; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return need;
}

/* What an ASCII byte becomes inside a JSON string: 0 for itself, a letter
 * for a two-character escape, 'u' for \u00XX. */
static char ascii_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    default:
        return c < 0x20 ? 'u' : 0;
    }
}

/* Bytes the body of s takes as a JSON string (quotes excluded); *text_ok
 * tells whether s is valid UTF-8 without NUL, i.e. survives as text. */
static size_t text_measure(const unsigned char *s, size_t n, bool *text_ok)
{
    size_t out = 0;
    bool ok = true;
    for (size_t k = 0; k < n;) {
        unsigned char c = s[k];
        if (c < 0x80) {
            char e = ascii_escape(c);
            out += e == 0 ? 1 : e == 'u' ? 6 : 2;
            ok &= c != 0;
            k++;
            continue;
        }
        size_t m = utf8_len(s + k, n - k);
        if (m) {
            out += m, k += m;
        } else {
            out += 3, k++; /* U+FFFD */
            ok = false;
        }
    }
    *text_ok = ok;
    return out;
}

/* Writes what text_measure counted; returns the end. */
static char *text_write(char *o, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t k = 0; k < n;) {
        unsigned char c = s[k];
        if (c < 0x80) {
            char e = ascii_escape(c);
            if (e == 0) {
                *o++ = (char)c;
            } else if (e != 'u') {
                *o++ = '\\', *o++ = e;
            } else {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4], o[5] = hex[c & 15];
                o += 6;
            }
            k++;
            continue;
        }
        size_t m = utf8_len(s + k, n - k);
        if (m) {
            memcpy(o, s + k, m);
            o += m, k += m;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3, k++;
        }
    }
    return o;
}

static char *base64_write(char *o, const unsigned char *s, size_t n)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (; n - k >= 3; k += 3) {
        uint32_t v = (uint32_t)s[k] << 16 | (uint32_t)s[k + 1] << 8 | s[k + 2];
        o[0] = abc[v >> 18], o[1] = abc[(v >> 12) & 63];
        o[2] = abc[(v >> 6) & 63], o[3] = abc[v & 63];
        o += 4;
    }
    if (n - k) {
        uint32_t v = (uint32_t)s[k] << 16 | (n - k == 2 ? (uint32_t)s[k + 1] << 8 : 0);
        o[0] = abc[v >> 18], o[1] = abc[(v >> 12) & 63];
        o[2] = n - k == 2 ? abc[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    return o;
}

static char *put(char *o, const char *lit)
{
    size_t n = strlen(lit);
    memcpy(o, lit, n);
    return o + n;
}

/* ---- buffers --------------------------------------------------------------- */

/* Makes *buf hold at least `need` bytes.  Grows by doubling (rare once the
 * run has seen its biggest file); shrinks back to KEEP_CAP when a big
 * buffer meets a small need.  Contents are not kept.  0 or -1. */
static int reserve(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap) {
        if (*cap > KEEP_CAP && need <= KEEP_CAP) {
            void *p = realloc(*buf, KEEP_CAP);
            if (p) {
                *buf = p;
                *cap = KEEP_CAP;
            }
        }
        return 0;
    }
    size_t grown = *cap > SIZE_MAX / 2 ? SIZE_MAX : *cap * 2;
    if (grown < need)
        grown = need;
    free(*buf); /* no realloc: the old bytes need no copy */
    *buf = malloc(grown);
    *cap = *buf ? grown : 0;
    return *buf ? 0 : -1;
}

/* ---- one item -------------------------------------------------------------- */

/* Fails the item with "PATH: why"; a long path is cut at its front so
 * that the reason always fits in the message buffer. */
static int fail_path(const rf_state_t *s, weft_result_t *r, const char *path,
                     const char *fmt, ...) WEFT_PRINTF(4, 5);
static int fail_path(const rf_state_t *s, weft_result_t *r, const char *path,
                     const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    size_t len = strlen(path), room = r->msg_size > 200 ? r->msg_size - 200 : 56;
    const char *cut = len > room ? "..." : "";
    return s->host->failf(r, "%s%s: %s", cut, len > room ? path + len - room : path, why);
}

static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m)   ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

/* Reads fd to its end (checking max_size as it goes) into w->raw when
 * `keep`, else through a READ_CHUNK window; hashes as it reads.  Returns
 * 0, or an errno value, with EFBIG for "over max_size". */
static int read_all(rf_worker_t *w, int fd, bool keep, size_t hint, xxh64_t *h,
                    size_t *len_out)
{
    const rf_state_t *s = w->s;
    size_t len = 0;
    xxh_init(h);
    /* One spare byte: a file that did not change ends on the same read. */
    if (keep && reserve((void **)&w->raw, &w->raw_cap, hint < SIZE_MAX ? hint + 1 : hint))
        return ENOMEM;
    for (;;) {
        if (keep && len == w->raw_cap) {
            /* The file grew since fstat: keep going, the buffer doubles. */
            unsigned char *p = realloc(w->raw, len * 2);
            if (!p)
                return ENOMEM;
            w->raw = p;
            w->raw_cap = len * 2;
        }
        unsigned char *dst = keep ? w->raw + len : w->raw;
        size_t room = keep ? w->raw_cap - len : w->raw_cap;
        ssize_t n = read(fd, dst, room < READ_CHUNK ? room : READ_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            break;
        xxh_update(h, dst, (size_t)n);
        len += (size_t)n;
        if (len > s->max_size) {
            *len_out = len;
            return EFBIG;
        }
    }
    *len_out = len;
    return 0;
}

static int rf_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    const rf_state_t *s = state;
    rf_worker_t *w = ctx;
    const char *path = item->text;
    size_t path_len = item->text_len;
    char err[128];

    if (!path)
        return s->host->failf(r,
                              "item %" PRIu64 " is a number, not a path: use items = "
                              "files:, lines: or json:",
                              item->index);
    if (strlen(path) != path_len)
        return fail_path(s, r, path, "the path holds a NUL byte");
    int flags =
        O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (s->follow ? 0 : O_NOFOLLOW);
    int fd = openat(s->dirfd, path, flags);
    if (fd < 0) {
        int e = errno;
        struct stat ls;
        if (e == ELOOP && !s->follow &&
            fstatat(s->dirfd, path, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode))
            return fail_path(s, r, path, "a symbolic link, and follow_symlinks is false");
        return fail_path(s, r, path, "%s", strerror_r(e, err, sizeof err));
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        fail_path(s, r, path, "fstat: %s", strerror_r(errno, err, sizeof err));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        fail_path(s, r, path, "%s",
                  S_ISDIR(st.st_mode) ? strerror_r(EISDIR, err, sizeof err)
                                      : file_kind(st.st_mode));
        goto out;
    }
    if ((uint64_t)st.st_size > s->max_size) {
        fail_path(s, r, path, "file is %" PRIu64 " bytes, over max_size %" PRIu64,
                  (uint64_t)st.st_size, s->max_size);
        goto out;
    }
    /* O_NONBLOCK was only for opening (a FIFO would block there).  Local
     * filesystems ignore it on reads; clear it rather than count on every
     * FUSE or network filesystem doing the same. */
    (void)fcntl(fd, F_SETFL, 0);

    bool keep = s->content != CONTENT_NONE;
    xxh64_t h;
    size_t len = 0;
    int e = read_all(w, fd, keep, (size_t)st.st_size, &h, &len);
    if (e == EFBIG) {
        /* The file grew, or fstat does not know its size (/proc). */
        fail_path(s, r, path,
                  "over max_size %" PRIu64 " after reading %zu bytes (fstat "
                  "said %" PRIu64 ")",
                  s->max_size, len, (uint64_t)st.st_size);
        goto out;
    }
    if (e) {
        fail_path(s, r, path, "read: %s", strerror_r(e, err, sizeof err));
        goto out;
    }

    /* Measure first, then write into a buffer of exactly the right size:
     * escaping may take 6 bytes per input byte, reserving that is wasteful. */
    bool path_ok, text_ok; /* path_ok unused: a path is always escaped text */
    size_t path_esc = text_measure((const unsigned char *)path, path_len, &path_ok);
    content_t mode = s->content;
    size_t body = 0;
    if (mode == CONTENT_TEXT || mode == CONTENT_AUTO) {
        body = text_measure(w->raw, len, &text_ok);
        if (mode == CONTENT_AUTO)
            mode = text_ok ? CONTENT_TEXT : CONTENT_BASE64;
    }
    if (mode == CONTENT_BASE64)
        body = len / 3 * 4 + (len % 3 ? 4 : 0);
    size_t need = JSON_FIXED + path_esc + body;
    if (need > RESULT_MAX || need < body) {
        fail_path(s, r, path,
                  "the result would be %zu bytes, over the runner's limit %zu", need,
                  RESULT_MAX);
        goto out;
    }
    if (reserve((void **)&w->json, &w->json_cap, need) != 0) {
        fail_path(s, r, path, "out of memory for a %zu-byte result", need);
        goto out;
    }

    char *o = put(w->json, "{\"path\":\"");
    o = text_write(o, (const unsigned char *)path, path_len);
    o += sprintf(o, "\",\"size\":%zu,\"xxh64\":\"%016" PRIx64 "\"", len, xxh_digest(&h));
    if (mode == CONTENT_TEXT) {
        o = put(o, ",\"encoding\":\"text\",\"content\":\"");
        o = text_write(o, w->raw, len);
        o = put(o, "\"");
    } else if (mode == CONTENT_BASE64) {
        o = put(o, ",\"encoding\":\"base64\",\"content\":\"");
        o = base64_write(o, w->raw, len);
        o = put(o, "\"");
    }
    o = put(o, "}");
    weft_result_json(r, w->json, (size_t)(o - w->json));
    rc = 0;
out:
    close(fd); /* read-only: close cannot lose data */
    return rc;
}

/* ---- workers and the run ---------------------------------------------------- */

static void rf_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)state, (void)worker;
    rf_worker_t *w = ctx;
    if (!w)
        return;
    free(w->raw);
    free(w->json);
    free(w);
}

static int rf_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                          char *msg, size_t msg_size)
{
    (void)workers;
    rf_worker_t *w = aligned_alloc(64, sizeof *w); /* a multiple of 64 */
    if (!w) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    memset(w, 0, sizeof *w);
    w->s = state;
    /* A READ_CHUNK window serves content = none for good; the rest grows. */
    w->raw_cap = READ_CHUNK;
    w->json_cap = 4096;
    w->raw = malloc(w->raw_cap);
    w->json = malloc(w->json_cap);
    if (!w->raw || !w->json) {
        rf_worker_fini(state, worker, w);
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    *ctx = w;
    return 0;
}

static void rf_destroy(void *state)
{
    rf_state_t *s = state;
    if (!s)
        return;
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s);
}

static int rf_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                   char *msg, size_t msg_size)
{
    static const char *const names[] = {"none", "text", "base64", "auto"};
    const char *c = args[ARG_CONTENT].u.s;
    content_t mode = CONTENT_NONE;
    while (mode <= CONTENT_AUTO && strcmp(c, names[mode]) != 0)
        mode++;
    if (mode > CONTENT_AUTO) {
        snprintf(msg, msg_size, "content = '%s': expected none, text, base64 or auto", c);
        return -1;
    }
    rf_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    s->host = host;
    s->content = mode;
    s->max_size = args[ARG_MAX_SIZE].u.i ? (uint64_t)args[ARG_MAX_SIZE].u.i : UINT64_MAX;
    s->follow = args[ARG_FOLLOW_SYMLINKS].u.b;
    s->dirfd = open(host->config_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        snprintf(msg, msg_size, "cannot open the config's folder '%s': %s",
                 host->config_dir, strerror(errno));
        rf_destroy(s);
        return -1;
    }
    *state = s;
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "read_files",
    .version = "1.0.0",
    .description = "Reads file items: path, size, XXH64 checksum (not cryptographic: for "
                   "change detection), optionally the content",
    .args = rf_args,
    .n_args = sizeof rf_args / sizeof rf_args[0],
    .arg_choices = (const char *const[]){[ARG_CONTENT] = "none|text|base64|auto",
                                         [ARG_FOLLOW_SYMLINKS] = NULL},
    .flags = WEFT_PLUGIN_IO_BOUND,
    .init = rf_init,
    .worker_init = rf_worker_init,
    .worker_fini = rf_worker_fini,
    .process_one = rf_process,
    .destroy = rf_destroy,
};
