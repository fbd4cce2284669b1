/* SPDX-License-Identifier: MIT */
/*
 * core/input/source.c: every kind of item source, on real files in a fresh
 * mkdtemp folder per test (the config's folder, so relative paths resolve
 * there); every documented error is checked for "job.ini:4:" and its cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "source.h"
#include "test_util.h"

/* ---- helpers --------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    char err[1024];
    char out[16384]; /* texts joined by drain() */
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/weft_test_source_XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    int rc = remove_tree(fx->dir);
    free(fx);
    return rc;
}

/* Opens `items = spec` as if set on line 4 of job.ini in `dir` (NULL: no
 * config folder). */
static int open_in(const char *dir, const char *spec, weft__source_t **src, char *err,
                   size_t errlen)
{
    static weft__entry_t entry;
    static weft__config_t cfg;
    entry = (weft__entry_t){.section = "run",
                            .key = "items",
                            .value = (char *)spec,
                            .origin = "job.ini",
                            .line = 4};
    cfg = (weft__config_t){.items = &entry, .dir = (char *)dir};
    err[0] = '\0';
    *src = NULL;
    return weft__source_open(src, &cfg, err, errlen);
}

static int open_items(const char *spec, weft__source_t **src, char *err, size_t errlen)
{
    return open_in(NULL, spec, src, err, errlen);
}

static void put(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

#define PUT(dir, name, literal) put(dir, name, literal, sizeof literal - 1)

static void make_dir(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
}

#define assert_has(text, needle)                                                         \
    do {                                                                                 \
        if (!strstr((text), (needle)))                                                   \
            fail_msg("'%s' does not contain '%s'", (text), (needle));                    \
    } while (0)

/*
 * Reads src to its end in windows of `window` items and checks what every
 * text source promises: consecutive indices, number == index, each text
 * NUL-terminated and intact after the whole window was filled, total never
 * below the items seen.  Joins the texts with '|' into out (if they fit).
 */
static size_t drain(weft__source_t *src, size_t window, char *out, size_t cap)
{
    weft_item_t *items = calloc(window, sizeof *items);
    assert_non_null(items);
    char err[512];
    size_t seen = 0, used = 0, got;
    out[0] = '\0';
    do {
        assert_int_equal(weft__source_next(src, items, window, &got, err, sizeof err), 0);
        assert_true(got <= window);
        for (size_t k = 0; k < got; k++) {
            assert_int_equal(items[k].index, seen + k);
            assert_int_equal(items[k].number, (int64_t)(seen + k));
            assert_non_null(items[k].text);
            assert_int_equal(items[k].text[items[k].text_len], '\0');
            int n = snprintf(out + used, cap - used, "%s%s", seen + k ? "|" : "",
                             items[k].text);
            if (n > 0 && (size_t)n < cap - used)
                used += (size_t)n;
        }
        seen += got;
        if (src->total != WEFT__COUNT_UNKNOWN)
            assert_true(src->total >= seen);
    } while (got);
    /* The end stays the end. */
    assert_int_equal(weft__source_next(src, items, window, &got, err, sizeof err), 0);
    assert_int_equal(got, 0);
    free(items);
    return seen;
}

/* Opens spec in fx->dir, expecting an error rc whose message names the
 * entry and contains `says`. */
/* A source with no items: opened, no item, and `empty` says why. */
static void expect_empty(fixture_t *fx, const char *spec, const char *says)
{
    weft__source_t *src = NULL;
    fx->err[0] = '\0';
    int rc = open_in(fx->dir, spec, &src, fx->err, sizeof fx->err);
    if (rc != 0)
        fail_msg("items = '%s': rc %d, message '%s'", spec, rc, fx->err);
    weft_item_t items[2];
    size_t got = 9;
    assert_int_equal(weft__source_next(src, items, 2, &got, fx->err, sizeof fx->err), 0);
    assert_int_equal(got, 0);
    assert_int_equal(src->total, 0);
    if (!strstr(src->empty, says))
        fail_msg("items = '%s': empty says '%s' (want '%s')", spec, src->empty, says);
    weft__source_close(&src);
}

static void expect_error(fixture_t *fx, const char *spec, int rc, const char *says)
{
    weft__source_t *src = NULL;
    int got = open_in(fx->dir, spec, &src, fx->err, sizeof fx->err);
    if (got != rc || !strstr(fx->err, says) || !strstr(fx->err, "job.ini:4: items = '"))
        fail_msg("items = '%s': rc %d (want %d), message '%s' (want '%s')", spec, got, rc,
                 fx->err, says);
    assert_null(src);
}

/* ---- range ----------------------------------------------------------------- */

static void range_count(void **state)
{
    (void)state;
    weft__source_t *src = NULL;
    char err[512];
    assert_int_equal(open_items("2000", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 2000);
    weft_item_t items[300];
    uint64_t seen = 0;
    size_t got;
    /* Windows smaller than the total: consecutive indices, then the end. */
    do {
        assert_int_equal(weft__source_next(src, items, 300, &got, err, sizeof err), 0);
        for (size_t k = 0; k < got; k++) {
            assert_int_equal(items[k].index, seen + k);
            assert_int_equal(items[k].number, (int64_t)(seen + k));
            assert_null(items[k].text);
        }
        seen += got;
    } while (got);
    assert_int_equal(seen, 2000);
    weft__source_close(&src);
    assert_null(src);
}

static void range_bounds(void **state)
{
    (void)state;
    weft__source_t *src = NULL;
    char err[512];
    weft_item_t items[4];
    size_t got;
    assert_int_equal(open_items("10..20", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 10);
    assert_int_equal(weft__source_next(src, items, 4, &got, err, sizeof err), 0);
    assert_int_equal(got, 4);
    assert_int_equal(items[0].number, 10);
    assert_int_equal(items[3].number, 13);
    assert_int_equal(items[3].index, 3);
    weft__source_close(&src);

    assert_int_equal(open_items("-5..5", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 10);
    assert_int_equal(weft__source_next(src, items, 1, &got, err, sizeof err), 0);
    assert_int_equal(items[0].number, -5);
    weft__source_close(&src);

    /* The widest range: 2^63 - 1 items, counted without overflow; one more
     * is refused (2^64 - 1 would read as "count unknown": a fuzz finding). */
    assert_int_equal(
        open_items("-9223372036854775808..0", &src, err, sizeof err), -ERANGE);
    assert_non_null(strstr(err, "more than 2^63 - 1 items"));
    assert_int_equal(
        open_items("-9223372036854775808..9223372036854775807", &src, err, sizeof err),
        -ERANGE);
    assert_int_equal(
        open_items("-9223372036854775807..0", &src, err, sizeof err), 0);
    assert_int_equal(src->total, (uint64_t)INT64_MAX);
    assert_int_equal(weft__source_next(src, items, 2, &got, err, sizeof err), 0);
    assert_int_equal(items[1].number, INT64_MIN + 2);
    weft__source_close(&src);

    assert_int_equal(open_items("0x10", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 16);
    weft__source_close(&src);
}

static void range_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *says;
    } cases[] = {
        {"abc", "not an item source"},
        {"5..3", "ends before it begins"},
        {"-3", "expected a count"},
        {"1..", "expected a range"},
        {"..5", "expected a range"},
        {"9223372036854775808", "expected a count"},
        {"1..2..3", "expected a range"},
        {"", "not an item source"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        weft__source_t *src = NULL;
        char err[512];
        int rc = open_items(cases[k].spec, &src, err, sizeof err);
        if (rc != -EINVAL || !strstr(err, cases[k].says) || !strstr(err, "job.ini:4:"))
            fail_msg("items = '%s': rc %d, message '%s'", cases[k].spec, rc, err);
        assert_null(src);
    }
    /* An empty range is a run of nothing, said so. */
    const char *empty[] = {"0", "5..5", "-3..-3"};
    for (size_t k = 0; k < sizeof empty / sizeof *empty; k++) {
        weft__source_t *src = NULL;
        char err[512] = "";
        assert_int_equal(open_items(empty[k], &src, err, sizeof err), 0);
        assert_int_equal(src->total, 0);
        assert_string_equal(src->empty, "the range is empty");
        weft_item_t items[2];
        size_t got = 9;
        assert_int_equal(weft__source_next(src, items, 2, &got, err, sizeof err), 0);
        assert_int_equal(got, 0);
        weft__source_close(&src);
    }
}

/* ---- registry -------------------------------------------------------------- */

static void registry_unknown_kind(void **state)
{
    fixture_t *fx = *state;
    expect_error(fx, "foo:x", -EINVAL, "not an item source (kinds: ");
    /* The list names every kind. */
    assert_has(fx->err, "lines:FILE");
    assert_has(fx->err, "stdin");
    assert_has(fx->err, "files:DIR");
    assert_has(fx->err, "files:PATTERN");
    assert_has(fx->err, "json:FILE");
    assert_has(fx->err, "A..B");
    assert_null(strstr(fx->err, "did you mean"));

    expect_error(fx, "lnes:words.txt", -EINVAL, "did you mean 'lines:FILE'?");
    expect_error(fx, "jsno:list.json", -EINVAL, "did you mean 'json:FILE'?");
    expect_error(fx, "Files:data", -EINVAL, "did you mean 'files:DIR'?");
    expect_error(fx, "stdn", -EINVAL, "did you mean 'stdin'?");
    expect_error(fx, "lines", -EINVAL, "did you mean 'lines:FILE'?");
    /* Not numeric, so not a range: no "expected a count". */
    expect_error(fx, "face", -EINVAL, "not an item source");
}

/* ---- lines ----------------------------------------------------------------- */

static void lines_crlf(void **state)
{
    fixture_t *fx = *state;
    weft__source_t *src;
    PUT(fx->dir, "crlf.txt", "alpha\r\nbeta\r\n\r\ngam\rma\r\n");
    assert_int_equal(open_in(fx->dir, "lines:crlf.txt", &src, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(src->total, 4);
    assert_int_equal(drain(src, 64, fx->out, sizeof fx->out), 4);
    /* "\r\n" goes, a '\r' inside a line stays. */
    assert_string_equal(fx->out, "alpha|beta||gam\rma");
    weft__source_close(&src);
}

static void lines_no_final_newline(void **state)
{
    fixture_t *fx = *state;
    weft__source_t *src;
    PUT(fx->dir, "a.txt", "one\ntwo\nthree");
    assert_int_equal(open_in(fx->dir, "lines:a.txt", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 3);
    assert_int_equal(drain(src, 2, fx->out, sizeof fx->out), 3);
    assert_string_equal(fx->out, "one|two|three");
    weft__source_close(&src);

    /* A single line without a newline is one item. */
    PUT(fx->dir, "b.txt", "x");
    assert_int_equal(open_in(fx->dir, "lines:b.txt", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 1);
    assert_int_equal(drain(src, 2, fx->out, sizeof fx->out), 1);
    assert_string_equal(fx->out, "x");
    weft__source_close(&src);
}

static void lines_empty_lines(void **state)
{
    fixture_t *fx = *state;
    weft__source_t *src;
    PUT(fx->dir, "e.txt", "\n\na\n\n");
    assert_int_equal(open_in(fx->dir, "lines:e.txt", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 4);
    weft_item_t items[8];
    size_t got;
    assert_int_equal(weft__source_next(src, items, 8, &got, fx->err, sizeof fx->err), 0);
    assert_int_equal(got, 4);
    assert_int_equal(items[0].text_len, 0);
    assert_string_equal(items[0].text, "");
    assert_int_equal(items[2].text_len, 1);
    assert_string_equal(items[2].text, "a");
    assert_int_equal(items[3].text_len, 0);
    weft__source_close(&src);

    /* A file of one newline holds one (empty) line, not zero. */
    PUT(fx->dir, "nl.txt", "\n");
    assert_int_equal(open_in(fx->dir, "lines:nl.txt", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 1);
    assert_int_equal(drain(src, 8, fx->out, sizeof fx->out), 1);
    weft__source_close(&src);
}

static void lines_nul_byte(void **state)
{
    fixture_t *fx = *state;
    weft__source_t *src;
    put(fx->dir, "z.txt", "a\0b\nc\n", 6);
    assert_int_equal(open_in(fx->dir, "lines:z.txt", &src, fx->err, sizeof fx->err), 0);
    weft_item_t items[4];
    size_t got;
    assert_int_equal(weft__source_next(src, items, 4, &got, fx->err, sizeof fx->err), 0);
    assert_int_equal(got, 2);
    /* text_len, not strlen, is the line's length. */
    assert_int_equal(items[0].text_len, 3);
    assert_memory_equal(items[0].text, "a\0b", 4);
    weft__source_close(&src);
}

static void lines_long_line(void **state)
{
    fixture_t *fx = *state;
    /* A 1 MiB line, then one whose "\r" ends one 1 MiB read and "\n"
     * starts the next, between short lines. */
    size_t big = (size_t)1 << 20;
    size_t len = 2 + big + 1 + (big - 4) + 2 + 4;
    char *data = malloc(len);
    assert_non_null(data);
    char *p = data;
    memcpy(p, "a\n", 2), p += 2;
    memset(p, 'x', big), p += big;
    *p++ = '\n';
    memset(p, 'y', big - 4), p += big - 4;
    assert_int_equal(p - data, (ptrdiff_t)big * 2 - 1); /* '\r' at 2 MiB - 1 */
    memcpy(p, "\r\n", 2), p += 2;
    memcpy(p, "end\n", 4), p += 4;
    assert_int_equal((size_t)(p - data), len);
    put(fx->dir, "big.txt", data, len);
    free(data);

    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "lines:big.txt", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 4);
    weft_item_t items[4];
    size_t got;
    assert_int_equal(weft__source_next(src, items, 4, &got, fx->err, sizeof fx->err), 0);
    assert_int_equal(got, 4);
    assert_string_equal(items[0].text, "a");
    assert_int_equal(items[1].text_len, big);
    for (size_t k = 0; k < big; k++)
        if (items[1].text[k] != 'x')
            fail_msg("byte %zu of the long line is %d", k, items[1].text[k]);
    assert_int_equal(items[1].text[big], '\0');
    assert_int_equal(items[2].text_len, big - 4);
    assert_int_equal(items[2].text[big - 5], 'y');
    assert_int_equal(items[2].text[big - 4], '\0');
    assert_string_equal(items[3].text, "end");
    weft__source_close(&src);
}

/* Line k of the windows test: lengths vary so the arena grows mid-window. */
static int nth_line(size_t k, char *buf, size_t size)
{
    size_t pad = (k * 37) % 3000;
    int n = snprintf(buf, size, "line %zu ", k);
    memset(buf + n, 'a' + (int)(k % 26), pad);
    buf[n + (int)pad] = '\0';
    return n + (int)pad;
}

static void lines_windows(void **state)
{
    fixture_t *fx = *state;
    enum { N = 2000, WINDOW = 7 };
    char path[PATH_MAX], line[4096];
    snprintf(path, sizeof path, "%s/many.txt", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t k = 0; k < N; k++) {
        nth_line(k, line, sizeof line);
        fprintf(f, "%s\n", line);
    }
    assert_int_equal(fclose(f), 0);

    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "lines: many.txt", &src, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(src->total, N);
    weft_item_t items[WINDOW];
    size_t got, seen = 0;
    do {
        assert_int_equal(
            weft__source_next(src, items, WINDOW, &got, fx->err, sizeof fx->err), 0);
        /* Every item of the window is intact once the window is full. */
        for (size_t k = 0; k < got; k++) {
            assert_int_equal(items[k].index, seen + k);
            assert_int_equal(items[k].number, (int64_t)(seen + k));
            int n = nth_line(seen + k, line, sizeof line);
            assert_int_equal(items[k].text_len, (size_t)n);
            assert_string_equal(items[k].text, line);
        }
        seen += got;
    } while (got);
    assert_int_equal(seen, N);
    assert_int_equal(src->total, N);
    weft__source_close(&src);
}

/* A window stops early past 64 MiB of text, whatever `max` allows. */
static void lines_window_bytes(void **state)
{
    fixture_t *fx = *state;
    enum { LINES = 66 };
    size_t mib = (size_t)1 << 20;
    char *line = malloc(mib);
    assert_non_null(line);
    memset(line, 'm', mib - 1);
    line[mib - 1] = '\n';
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/huge.txt", fx->dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int k = 0; k < LINES; k++)
        assert_int_equal(fwrite(line, 1, mib, f), mib);
    assert_int_equal(fclose(f), 0);
    free(line);

    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "lines:huge.txt", &src, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(src->total, LINES);
    weft_item_t items[100];
    size_t got, seen = 0, windows = 0;
    do {
        assert_int_equal(
            weft__source_next(src, items, 100, &got, fx->err, sizeof fx->err), 0);
        assert_true(got <= 64);
        if (got)
            assert_int_equal(items[got - 1].text_len, mib - 1);
        seen += got;
        windows += got > 0;
    } while (got);
    assert_int_equal(seen, LINES);
    assert_int_equal(windows, 2);
    weft__source_close(&src);
}

/* The file changes between the counting pass and the reading pass: the
 * second pass is what counts, and total ends up exact. */
static void lines_count_mismatch(void **state)
{
    fixture_t *fx = *state;
    weft__source_t *src;

    PUT(fx->dir, "grow.txt", "1\n2\n3\n");
    assert_int_equal(open_in(fx->dir, "lines:grow.txt", &src, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(src->total, 3);
    PUT(fx->dir, "grow.txt", "1\n2\n3\n4\n5\n"); /* rewritten in place */
    assert_int_equal(drain(src, 1, fx->out, sizeof fx->out), 5);
    assert_string_equal(fx->out, "1|2|3|4|5");
    assert_int_equal(src->total, 5);
    weft__source_close(&src);

    PUT(fx->dir, "shrink.txt", "1\n2\n3\n4\n5\n");
    assert_int_equal(open_in(fx->dir, "lines:shrink.txt", &src, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(src->total, 5);
    PUT(fx->dir, "shrink.txt", "a\nb");
    assert_int_equal(drain(src, 4, fx->out, sizeof fx->out), 2);
    assert_string_equal(fx->out, "a|b");
    assert_int_equal(src->total, 2);
    weft__source_close(&src);

    /* Emptied in between: the first next() says so. */
    PUT(fx->dir, "gone.txt", "1\n");
    assert_int_equal(open_in(fx->dir, "lines:gone.txt", &src, fx->err, sizeof fx->err),
                     0);
    PUT(fx->dir, "gone.txt", "");
    weft_item_t items[2];
    size_t got = 9;
    assert_int_equal(weft__source_next(src, items, 2, &got, fx->err, sizeof fx->err), 0);
    assert_int_equal(got, 0);
    assert_int_equal(src->total, 0);
    assert_has(src->empty, "gone.txt has no lines");
    weft__source_close(&src);
}

static void lines_paths(void **state)
{
    fixture_t *fx = *state;
    weft__source_t *src;
    char spec[PATH_MAX + 16];
    make_dir(fx->dir, "sub");
    PUT(fx->dir, "sub/w.txt", "w\n");
    /* Relative to the config's folder, "./" or not, and absolute. */
    assert_int_equal(open_in(fx->dir, "lines:./sub/w.txt", &src, fx->err, sizeof fx->err),
                     0);
    weft__source_close(&src);
    snprintf(spec, sizeof spec, "lines:%s/sub/w.txt", fx->dir);
    assert_int_equal(open_in("/nonexistent", spec, &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(drain(src, 4, fx->out, sizeof fx->out), 1);
    assert_string_equal(fx->out, "w");
    weft__source_close(&src);
}

static void lines_errors(void **state)
{
    fixture_t *fx = *state;
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/missing.txt: No such file or directory", fx->dir);
    expect_error(fx, "lines:missing.txt", -ENOENT, want);

    make_dir(fx->dir, "folder");
    snprintf(want, sizeof want, "%s/folder: is a folder", fx->dir);
    expect_error(fx, "lines:folder", -EISDIR, want);

    PUT(fx->dir, "empty.txt", "");
    expect_empty(fx, "lines:empty.txt", "empty.txt has no lines");

    expect_error(fx, "lines:", -EINVAL, "expected a file");
    expect_error(fx, "lines:  ", -EINVAL, "expected a file");
}

/* ---- stdin ------------------------------------------------------------------ */

/* Puts fd on standard input; returns the saved original. */
static int stdin_swap(int fd)
{
    int saved = dup(STDIN_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
    return saved;
}

static void stdin_restore(int saved)
{
    assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
    close(saved);
}

static int open_file_fd(fixture_t *fx, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    return fd;
}

/* A child writes more than a pipe holds, so reads see partial lines. */
static void stdin_pipe(void **state)
{
    fixture_t *fx = *state;
    enum { N = 50000 };
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        FILE *f = fdopen(p[1], "w");
        for (int k = 0; f && k < N; k++)
            fprintf(f, "item %d\r\n", k);
        _exit(f && fclose(f) == 0 ? 0 : 1);
    }
    close(p[1]);
    int saved = stdin_swap(p[0]);

    weft__source_t *src;
    int rc = open_in(fx->dir, "stdin", &src, fx->err, sizeof fx->err);
    size_t seen = 0, got;
    weft_item_t items[1000];
    char want[32];
    if (rc == 0) {
        assert_int_equal(src->total, WEFT__COUNT_UNKNOWN);
        do {
            assert_int_equal(
                weft__source_next(src, items, 1000, &got, fx->err, sizeof fx->err), 0);
            for (size_t k = 0; k < got; k++) {
                snprintf(want, sizeof want, "item %zu", seen + k);
                assert_int_equal(items[k].index, seen + k);
                assert_string_equal(items[k].text, want);
            }
            seen += got;
        } while (got);
        assert_int_equal(src->total, N); /* known once the input ended */
        weft__source_close(&src);
    }
    stdin_restore(saved);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(rc, 0);
    assert_int_equal(seen, N);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void stdin_lines_dash(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "in.txt", "x\r\n\ny");
    int saved = stdin_swap(open_file_fd(fx, "in.txt"));
    weft__source_t *src;
    int rc = open_in(fx->dir, "lines:-", &src, fx->err, sizeof fx->err);
    size_t n = 0;
    uint64_t total = 0;
    if (rc == 0) {
        total = src->total;
        n = drain(src, 2, fx->out, sizeof fx->out);
        weft__source_close(&src);
    }
    stdin_restore(saved);
    assert_int_equal(rc, 0);
    assert_int_equal(total, WEFT__COUNT_UNKNOWN);
    assert_int_equal(n, 3);
    assert_string_equal(fx->out, "x||y");
}

static void stdin_empty(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "none.txt", "");
    int saved = stdin_swap(open_file_fd(fx, "none.txt"));
    weft__source_t *src;
    /* open cannot know; the first next() finds no items. */
    int rc = open_in(fx->dir, "stdin", &src, fx->err, sizeof fx->err);
    int next_rc = 0;
    size_t got = 99;
    weft_item_t items[2];
    if (rc == 0) {
        next_rc = weft__source_next(src, items, 2, &got, fx->err, sizeof fx->err);
        weft__source_close(&src);
    }
    stdin_restore(saved);
    assert_int_equal(rc, 0);
    assert_int_equal(next_rc, 0);
    assert_int_equal(got, 0);
}

/* ---- files ------------------------------------------------------------------ */

static void files_dir_sorted(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "b.txt", "b");
    PUT(fx->dir, "a.txt", "a");
    PUT(fx->dir, "C.txt", "c");
    PUT(fx->dir, "a b.txt", "ab");
    PUT(fx->dir, ".hidden", "h");
    make_dir(fx->dir, "sub");
    PUT(fx->dir, "sub/inner.txt", "i");
    char target[PATH_MAX], link[PATH_MAX];
    snprintf(target, sizeof target, "%s/a.txt", fx->dir);
    snprintf(link, sizeof link, "%s/link", fx->dir);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof link, "%s/dangling", fx->dir);
    assert_int_equal(symlink("/nonexistent/file", link), 0);
    snprintf(target, sizeof target, "%s/sub", fx->dir);
    snprintf(link, sizeof link, "%s/dirlink", fx->dir);
    assert_int_equal(symlink(target, link), 0);

    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "files:.", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 5);
    assert_int_equal(drain(src, 2, fx->out, sizeof fx->out), 5);
    /* strcmp order; dot-files, folders, links to folders and dangling
     * links left out; a link to a file counts. */
    char want[5 * PATH_MAX];
    snprintf(want, sizeof want, "%s/C.txt|%s/a b.txt|%s/a.txt|%s/b.txt|%s/link", fx->dir,
             fx->dir, fx->dir, fx->dir, fx->dir);
    assert_string_equal(fx->out, want);
    weft__source_close(&src);

    /* A relative folder, with a trailing slash. */
    assert_int_equal(open_in(fx->dir, "files:sub/", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(drain(src, 2, fx->out, sizeof fx->out), 1);
    snprintf(want, sizeof want, "%s/sub/inner.txt", fx->dir);
    assert_string_equal(fx->out, want);
    weft__source_close(&src);
}

static void files_glob(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "b.txt", "b");
    PUT(fx->dir, "a.txt", "a");
    PUT(fx->dir, "c.dat", "c");
    PUT(fx->dir, ".d.txt", "d");
    make_dir(fx->dir, "e.txt"); /* a folder that matches */
    make_dir(fx->dir, "sub");
    PUT(fx->dir, "sub/x1", "x");
    PUT(fx->dir, "sub/x2", "x");
    PUT(fx->dir, "sub/y1", "y");

    weft__source_t *src;
    char want[4 * PATH_MAX];
    assert_int_equal(open_in(fx->dir, "files:*.txt", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 2);
    assert_int_equal(drain(src, 8, fx->out, sizeof fx->out), 2);
    snprintf(want, sizeof want, "%s/a.txt|%s/b.txt", fx->dir, fx->dir);
    assert_string_equal(fx->out, want);
    weft__source_close(&src);

    assert_int_equal(open_in(fx->dir, "files:s?b/[x]*", &src, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(drain(src, 1, fx->out, sizeof fx->out), 2);
    snprintf(want, sizeof want, "%s/sub/x1|%s/sub/x2", fx->dir, fx->dir);
    assert_string_equal(fx->out, want);
    weft__source_close(&src);
}

/* The config's folder is literal even when its name looks like a glob. */
static void files_glob_literal_dir(void **state)
{
    fixture_t *fx = *state;
    char odd[PATH_MAX];
    snprintf(odd, sizeof odd, "%s/[x] *?", fx->dir);
    assert_int_equal(mkdir(odd, 0755), 0);
    make_dir(fx->dir, "x y");
    PUT(fx->dir, "x y/decoy.txt", "d"); /* what "[x] *?" matches as a pattern */
    PUT(fx->dir, "[x] *?/a.txt", "a");
    weft__source_t *src;
    assert_int_equal(open_in(odd, "files:*.txt", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(drain(src, 4, fx->out, sizeof fx->out), 1);
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/a.txt", odd);
    assert_string_equal(fx->out, want);
    weft__source_close(&src);
}

static void files_glob_no_match(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "a.txt", "a");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "no regular file matches %s/*.nothing", fx->dir);
    expect_empty(fx, "files:*.nothing", want);
    /* Only folders match: still nothing. */
    make_dir(fx->dir, "d1");
    expect_empty(fx, "files:d*", "no regular file matches");
}

/* glob(3) recurses once per '/' after a wildcard: a deep pattern is
 * refused before it can overflow the stack (a fuzz finding: 3000 '/'). */
static void files_glob_too_deep(void **state)
{
    fixture_t *fx = *state;
    char spec[8192];
    int n = snprintf(spec, sizeof spec, "files:sub/[");
    for (int k = 0; k < 65; k++)
        spec[n++] = '/';
    spec[n] = '\0';
    expect_error(fx, spec, -EINVAL, "65 '/' after the first wildcard (at most 64)");

    /* 64 levels after the wildcard is still a pattern (it matches nothing). */
    n = snprintf(spec, sizeof spec, "files:*");
    for (int k = 0; k < 64; k++)
        n += snprintf(spec + n, sizeof spec - n, "/d");
    expect_empty(fx, spec, "no regular file matches");
    /* Folders before the wildcard do not count. */
    n = snprintf(spec, sizeof spec, "files:");
    for (int k = 0; k < 100; k++)
        n += snprintf(spec + n, sizeof spec - n, "d/");
    snprintf(spec + n, sizeof spec - n, "*.txt");
    expect_error(fx, spec, -ENOENT, "No such file or directory");
}

static void files_errors(void **state)
{
    fixture_t *fx = *state;
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/missing: No such file or directory", fx->dir);
    expect_error(fx, "files:missing", -ENOENT, want);

    /* A path under a regular file: ENOTDIR, even as root. */
    PUT(fx->dir, "plain.txt", "p");
    snprintf(want, sizeof want, "%s/plain.txt/sub: Not a directory", fx->dir);
    expect_error(fx, "files:plain.txt/sub", -ENOTDIR, want);

    /* A pattern in a folder that does not exist. */
    snprintf(want, sizeof want, "%s/missing: No such file or directory", fx->dir);
    expect_error(fx, "files:missing/*.txt", -ENOENT, want);

    make_dir(fx->dir, "empty");
    snprintf(want, sizeof want, "no regular files in %s/empty", fx->dir);
    expect_empty(fx, "files:empty", want);

    make_dir(fx->dir, "dots");
    PUT(fx->dir, "dots/.a", "a");
    make_dir(fx->dir, "dots/inner");
    expect_empty(fx, "files:dots", "(dot-files are skipped)");

    expect_error(fx, "files:", -EINVAL, "expected a folder or a pattern");
}

/* items = spec lists exactly the files of `rels` ('|' between, relative to
 * fx->dir), in that order. */
static void expect_files(fixture_t *fx, const char *spec, const char *rels)
{
    weft__source_t *src = NULL;
    if (open_in(fx->dir, spec, &src, fx->err, sizeof fx->err) != 0)
        fail_msg("items = '%s': %s", spec, fx->err);
    char want[8192] = "";
    size_t n = 0;
    for (const char *p = rels; *p;) {
        size_t len = strcspn(p, "|");
        n += (size_t)snprintf(want + n, sizeof want - n, "%s%s/%.*s", n ? "|" : "",
                              fx->dir, (int)len, p);
        p += len + (p[len] == '|');
    }
    drain(src, 3, fx->out, sizeof fx->out);
    if (strcmp(fx->out, want) != 0)
        fail_msg("items = '%s':\n got %s\nwant %s", spec, fx->out, want);
    assert_int_equal(src->empty[0], '\0');
    weft__source_close(&src);
}

/* The tree of the `**` tests: files at several depths, dot-names. */
static void globstar_tree(fixture_t *fx)
{
    PUT(fx->dir, "top.txt", "t");
    make_dir(fx->dir, "a");
    PUT(fx->dir, "a/x.txt", "x");
    PUT(fx->dir, "a/.e.txt", "e");
    make_dir(fx->dir, "a/b");
    PUT(fx->dir, "a/b/y.txt", "y");
    make_dir(fx->dir, "a/b/c");
    PUT(fx->dir, "a/b/c/z.txt", "z");
    PUT(fx->dir, "a/b/c/z.md", "z");
    make_dir(fx->dir, "a/.dot");
    PUT(fx->dir, "a/.dot/d.txt", "d");
    make_dir(fx->dir, ".hid");
    PUT(fx->dir, ".hid/h.txt", "h");
    make_dir(fx->dir, "a/b/c.txt"); /* a folder that matches *.txt */
}

/* `**` is zero or more folder levels; dot-names are skipped as `*` skips
 * them; every file once, sorted. */
static void files_globstar_levels(void **state)
{
    fixture_t *fx = *state;
    globstar_tree(fx);
    expect_files(fx, "files:**/*.txt", "a/b/c/z.txt|a/b/y.txt|a/x.txt|top.txt");
    expect_files(fx, "files:a/**/*.txt", "a/b/c/z.txt|a/b/y.txt|a/x.txt");
    expect_files(fx, "files:a/b/c/**/*.txt", "a/b/c/z.txt"); /* zero levels */
    expect_files(fx, "files:a/**/c/*", "a/b/c/z.md|a/b/c/z.txt");
    expect_files(fx, "files:a/**", "a/b/c/z.md|a/b/c/z.txt|a/b/y.txt|a/x.txt");
    expect_files(fx, "files:**/**/y.txt", "a/b/y.txt");
    /* Empty and "." components go: a file has one spelling, and comes once. */
    expect_files(fx, "files:a//**///**//*.txt", "a/b/c/z.txt|a/b/y.txt|a/x.txt");
    expect_files(fx, "files:./a/./**/./**/./y.txt", "a/b/y.txt");
    expect_files(fx, "files:**/b/**/z.*", "a/b/c/z.md|a/b/c/z.txt");
    expect_files(fx, "files:a/**/.e.txt", "a/.e.txt"); /* a dot matched explicitly */
    expect_files(fx, "files:.hid/**/*.txt", ".hid/h.txt");
    expect_files(fx, "files:*/**/z.md", "a/b/c/z.md");
    /* "**" inside a name is glob's "*": one level. */
    expect_files(fx, "files:a/**.txt", "a/x.txt");
    /* A deep tree: the walk is iterative. */
    char deep[PATH_MAX] = "deep";
    make_dir(fx->dir, deep);
    for (int k = 0; k < 300; k++) {
        strcat(deep, "/d");
        make_dir(fx->dir, deep);
    }
    strcat(deep, "/leaf.txt");
    put(fx->dir, deep, "l", 1);
    expect_files(fx, "files:deep/**/leaf.txt", deep);
}

/* The walk never enters a symbolic link to a folder: loops end, and a
 * linked folder's files come once, under their real path.  Links named
 * by the pattern itself (its HEAD, a `*` of its own) are followed, as
 * glob(3) follows them. */
static void files_globstar_symlinks(void **state)
{
    fixture_t *fx = *state;
    globstar_tree(fx);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/a/b/loop", fx->dir);
    assert_int_equal(symlink("../..", path), 0);
    snprintf(path, sizeof path, "%s/a/self", fx->dir);
    assert_int_equal(symlink(".", path), 0);
    snprintf(path, sizeof path, "%s/dirlink", fx->dir);
    assert_int_equal(symlink("a", path), 0);
    snprintf(path, sizeof path, "%s/filelink.txt", fx->dir);
    assert_int_equal(symlink("a/x.txt", path), 0);
    snprintf(path, sizeof path, "%s/a/dangling.txt", fx->dir);
    assert_int_equal(symlink("nowhere", path), 0);

    expect_files(fx, "files:**/*.txt", "a/b/c/z.txt|a/b/y.txt|a/x.txt|filelink.txt|top.txt");
    expect_files(fx, "files:dirlink/**/*.txt",
                 "dirlink/b/c/z.txt|dirlink/b/y.txt|dirlink/x.txt");
    expect_files(fx, "files:*/**/y.txt", "a/b/y.txt|dirlink/b/y.txt");
    expect_files(fx, "files:a/b/loop/**/y.txt", "a/b/loop/a/b/y.txt");
}

static void files_globstar_empty_and_errors(void **state)
{
    fixture_t *fx = *state;
    globstar_tree(fx);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "no regular file matches %s/**/*.none", fx->dir);
    expect_empty(fx, "files:**/*.none", want);
    expect_empty(fx, "files:a/**/nothere/*.txt", "no regular file matches");
    expect_empty(fx, "files:a/**/", "no regular file matches"); /* folders only */
    make_dir(fx->dir, "void");
    expect_empty(fx, "files:void/**", "no regular file matches");
    snprintf(want, sizeof want, "%s/missing: No such file or directory", fx->dir);
    expect_error(fx, "files:missing/**/*.txt", -ENOENT, want);
    snprintf(want, sizeof want, "%s/top.txt: Not a directory", fx->dir);
    expect_error(fx, "files:top.txt/**", -ENOTDIR, want);
    expect_empty(fx, "files:a/**/.", "no regular file matches");
    /* ".." after `**` would spell each file many ways. */
    expect_error(fx, "files:a/**/../x.txt", -EINVAL, "a '..' after a '**' is not supported");
    expect_files(fx, "files:a/b/../**/x.txt", "a/b/../x.txt"); /* before: fine */
    /* The depth limit on the pattern holds for `**` too. */
    char spec[512];
    int n = snprintf(spec, sizeof spec, "files:**");
    for (int k = 0; k < 65; k++)
        n += snprintf(spec + n, sizeof spec - n, "/**");
    expect_error(fx, spec, -EINVAL, "65 '/' after the first wildcard (at most 64)");
}

/* ---- json ------------------------------------------------------------------- */

static void json_strings(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "s.json",
        "[\"a.txt\", \"b c.txt\",\n \"tab\\there\", \"q\\\"uote\\\\\", "
        "\"\\u00e9t\\u00e9\",\n"
        " \"\xe6\x97\xa5\xe6\x9c\xac\", \"\\ud83d\\ude00\", \"\"]");
    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "json:s.json", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 8);
    assert_int_equal(drain(src, 3, fx->out, sizeof fx->out), 8);
    assert_string_equal(fx->out, "a.txt|b c.txt|tab\there|q\"uote\\|\xc3\xa9t\xc3\xa9|"
                                 "\xe6\x97\xa5\xe6\x9c\xac|\xf0\x9f\x98\x80|");
    weft__source_close(&src);
}

static void json_other_values(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "v.json",
        "[1, 2.50, {\"a\" : [1, 2],\n \"b\": null, \"s\": \"x y\"}, true, null, [ ],\n"
        " 12345678901234567890, -0.5e+10, [\"q\\\" ,]\"]]\n");
    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "json:v.json", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(src->total, 9);
    weft_item_t items[9];
    size_t got;
    assert_int_equal(weft__source_next(src, items, 9, &got, fx->err, sizeof fx->err), 0);
    assert_int_equal(got, 9);
    static const char *const want[] = {
        "1",
        "2.50",
        "{\"a\":[1,2],\"b\":null,\"s\":\"x y\"}",
        "true",
        "null",
        "[]",
        /* kept to the letter, not re-printed through a double */
        "12345678901234567890",
        "-0.5e+10",
        "[\"q\\\" ,]\"]",
    };
    for (size_t k = 0; k < 9; k++) {
        assert_string_equal(items[k].text, want[k]);
        assert_int_equal(items[k].text_len, strlen(want[k]));
        assert_int_equal(items[k].number, (int64_t)k);
    }
    weft__source_close(&src);
}

static void json_windows(void **state)
{
    fixture_t *fx = *state;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/n.json", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputc('[', f);
    for (int k = 0; k < 1000; k++)
        fprintf(f, "%s{\"k\": %d}", k ? ",\n" : "", k);
    fputc(']', f);
    assert_int_equal(fclose(f), 0);

    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "json:n.json", &src, fx->err, sizeof fx->err), 0);
    weft_item_t items[7];
    size_t got, seen = 0;
    char want[32];
    do {
        assert_int_equal(weft__source_next(src, items, 7, &got, fx->err, sizeof fx->err),
                         0);
        for (size_t k = 0; k < got; k++) {
            snprintf(want, sizeof want, "{\"k\":%zu}", seen + k);
            assert_int_equal(items[k].index, seen + k);
            assert_string_equal(items[k].text, want);
        }
        seen += got;
    } while (got);
    assert_int_equal(seen, 1000);
    weft__source_close(&src);
}

static void json_invalid(void **state)
{
    fixture_t *fx = *state;
    char want[PATH_MAX + 64];
    PUT(fx->dir, "bad.json", "[1,\n 2,\n    x]\n");
    snprintf(want, sizeof want, "%s/bad.json:3:5: invalid JSON near 'x]'", fx->dir);
    expect_error(fx, "json:bad.json", -EINVAL, want);

    PUT(fx->dir, "short.json", "[1,\n 2");
    snprintf(want, sizeof want, "%s/short.json:2:3: invalid JSON: it ends too soon",
             fx->dir);
    expect_error(fx, "json:short.json", -EINVAL, want);

    PUT(fx->dir, "after.json", "[1]\n[2]");
    expect_error(fx, "json:after.json", -EINVAL,
                 "after.json:2:1: invalid JSON near '[2]'");

    put(fx->dir, "nul.json", "[1,\0 2]", 7);
    expect_error(fx, "json:nul.json", -EINVAL, "nul.json:1:4: invalid JSON near");

    PUT(fx->dir, "zero.json", "");
    expect_error(fx, "json:zero.json", -EINVAL, "zero.json:1:1: invalid JSON");

    /* A NUL character in a string item: refused where it is, not cut. */
    PUT(fx->dir, "unul.json", "[\"a\",\n  \"b\\u0000c\"]");
    expect_error(fx, "json:unul.json", -EINVAL,
                 "unul.json:2:5: a string item holds a NUL character (\\u0000)");
    /* An escaped backslash before u0000 is no NUL: kept as it is. */
    PUT(fx->dir, "bs.json", "[\"b\\\\u0000c\", \"\\u0041\"]");
    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "json:bs.json", &src, fx->err, sizeof fx->err), 0);
    assert_int_equal(drain(src, 3, fx->out, sizeof fx->out), 2);
    assert_string_equal(fx->out, "b\\u0000c|A");
    weft__source_close(&src);
}

static void json_not_array(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "o.json", "{\"items\": [1, 2]}");
    expect_error(fx, "json:o.json", -EINVAL,
                 "expected a JSON array of items, found an object");
    PUT(fx->dir, "s.json", "\"a.txt\"");
    expect_error(fx, "json:s.json", -EINVAL, "found a string");
}

static void json_empty_array(void **state)
{
    fixture_t *fx = *state;
    PUT(fx->dir, "e.json", " [ \n ] ");
    expect_empty(fx, "json:e.json", "e.json is an empty JSON array");
}

static void json_file_errors(void **state)
{
    fixture_t *fx = *state;
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/missing.json: No such file or directory", fx->dir);
    expect_error(fx, "json:missing.json", -ENOENT, want);
    make_dir(fx->dir, "d.json");
    expect_error(fx, "json:d.json", -EISDIR, "d.json: is a folder");
    expect_error(fx, "json:", -EINVAL, "expected a file");
}

/* ---- list: items = [JSON array] ------------------------------------------- */

/* The array in the value itself: elements as json:FILE has them, bytes
 * that are not UTF-8 kept (the one-liner's ::: writes raw bytes). */
static void list_inline(void **state)
{
    fixture_t *fx = *state;
    weft__source_t *src;
    assert_int_equal(open_in(fx->dir, "[\"a b\", \"x\\ny\", 3, {\"k\": [1]}, \"\xff\", \"\"]",
                             &src, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(src->total, 6);
    assert_int_equal(drain(src, 4, fx->out, sizeof fx->out), 6);
    assert_string_equal(fx->out, "a b|x\ny|3|{\"k\":[1]}|\xff|");
    weft__source_close(&src);
    expect_empty(fx, "[ ]", "the list is an empty JSON array");
    expect_error(fx, "[1, 2", -EINVAL, "the list:1:6: invalid JSON");
    expect_error(fx, "[\"a\"] x", -EINVAL, "the list:1:7: invalid JSON near 'x'");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(range_count),
        cmocka_unit_test(range_bounds),
        cmocka_unit_test(range_errors),
        T(registry_unknown_kind),
        T(lines_crlf),
        T(lines_no_final_newline),
        T(lines_empty_lines),
        T(lines_nul_byte),
        T(lines_long_line),
        T(lines_windows),
        T(lines_window_bytes),
        T(lines_count_mismatch),
        T(lines_paths),
        T(lines_errors),
        T(stdin_pipe),
        T(stdin_lines_dash),
        T(stdin_empty),
        T(files_dir_sorted),
        T(files_glob),
        T(files_glob_literal_dir),
        T(files_glob_no_match),
        T(files_glob_too_deep),
        T(files_errors),
        T(files_globstar_levels),
        T(files_globstar_symlinks),
        T(files_globstar_empty_and_errors),
        T(json_strings),
        T(json_other_values),
        T(json_windows),
        T(json_invalid),
        T(json_not_array),
        T(json_empty_array),
        T(json_file_errors),
        T(list_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
