/* SPDX-License-Identifier: MIT */
/* core/journal/journal.c: the run journal's writer, reader, poison detection, diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "journal.h"
#include "test_util.h"
#include "util.h" /* weft__mono_s */

/* Fault injection: journal.c's flock() calls land here (the executable's
 * definition comes before libc's).  When armed, the hook runs once before
 * the lock is taken: say, another weft's create renaming a new journal over
 * the path between open_locked's open() and flock(). */
static void (*flock_hook)(void *);
static void *flock_hook_arg;

int flock(int fd, int op)
{
    void (*h)(void *) = flock_hook;
    if (h) {
        flock_hook = NULL;
        h(flock_hook_arg);
    }
    return (int)syscall(SYS_flock, fd, op);
}

typedef struct fixture {
    char dir[64];
    char path[128];
    char err[512];
    pid_t child; /* a forked helper still running, killed by teardown */
} fixture_t;

static const weft__jheader_t hdr = {
    .config = "run.items=0..4000\nrun.seed=7\nargs.level=1\n",
    .plugin = "noise_png 1.0 xxh=0123456789abcdef",
    .items = "range:0:4000 count=4000 fp=42",
};

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/weft_test_journal_XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/out.json.journal", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    flock_hook = NULL;
    if (fx->child > 0) { /* a test failed with its helper running */
        kill(fx->child, SIGKILL);
        waitpid(fx->child, NULL, 0);
    }
    int rc = remove_tree(fx->dir);
    free(fx);
    return rc;
}

/* A fresh journal at fx->path with the header hdr (the test fails if not). */
static weft__journal_t *create(fixture_t *fx)
{
    weft__journal_t *j;
    assert_int_equal(weft__journal_create(&j, fx->path, &hdr, fx->err, sizeof fx->err), 0);
    return j;
}

/* ---- helpers ------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* Item i's journaled output: 0 and 1 bytes, three of 1 MiB, else < 300. */
static size_t item_len(uint64_t i)
{
    if (i % 97 == 0)
        return 0;
    if (i % 97 == 1)
        return 1;
    if (i == 500 || i == 1501 || i == 3333)
        return (size_t)1 << 20;
    return (size_t)(mix(i) % 300);
}

static void item_fill(uint64_t i, unsigned char *p, size_t len)
{
    for (size_t k = 0; k < len; k++)
        p[k] = (unsigned char)(mix(i * 131 + k / 8) >> (8 * (k % 8)));
}

static unsigned item_status(uint64_t i)
{
    return (unsigned)(i % 5) + 1;
}

static void item_msg(uint64_t i, char *m, size_t size)
{
    if (item_status(i) == WEFT__J_OK)
        m[0] = '\0';
    else
        snprintf(m, size, "item %llu failed: status %u", (unsigned long long)i,
                 item_status(i));
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *d = malloc((size_t)n + 1);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return d;
}

static void spit(const char *path, const void *d, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static size_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

/* A scan of the file as it is now (the writer may still hold it). */
typedef struct snap {
    unsigned char *data;
    size_t len;
    weft__jscan_t *s;
} snap_t;

static snap_t snap(const char *path)
{
    snap_t n = {0};
    char err[256] = "";
    n.data = slurp(path, &n.len);
    int rc = weft__jscan_parse(&n.s, n.data, n.len, err, sizeof err);
    if (rc)
        fail_msg("parse %s: %d %s", path, rc, err);
    return n;
}

static void snap_free(snap_t *n)
{
    weft__jscan_free(&n->s);
    free(n->data);
}

/* Appends one DONE chunk of entries for items [first, first + n), with
 * payloads from item_fill, status and msg from the item helpers. */
static void put_items(weft__journal_t *j, uint64_t first, uint64_t n)
{
    weft__buf_t b = {0};
    size_t mark;
    char m[64];
    unsigned char small[300];
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    for (uint64_t i = first; i < first + n; i++) {
        size_t len = item_len(i) > sizeof small ? sizeof small : item_len(i);
        item_fill(i, small, len);
        item_msg(i, m, sizeof m);
        assert_int_equal(weft__jchunk_add(&b, i, mix(i), item_status(i),
                                          (uint32_t)(i % 3), small, len, m, strlen(m)),
                         0);
    }
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data + mark, b.len - mark), 0);
    weft__buf_free(&b);
}

/* One DONE entry with explicit bytes. */
static void put_one(weft__journal_t *j, uint64_t index, unsigned status,
                    const char *bytes, const char *m)
{
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(weft__jchunk_add(&b, index, index * 3, status, 1, bytes,
                                      strlen(bytes), m, strlen(m)),
                     0);
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
    weft__buf_free(&b);
}

static void expect_entry(const weft__jscan_t *s, uint64_t i, size_t max_len)
{
    weft__jentry_t e;
    if (!weft__jscan_get(s, i, &e))
        fail_msg("item %llu missing", (unsigned long long)i);
    size_t len = item_len(i) > max_len ? max_len : item_len(i);
    char m[64];
    item_msg(i, m, sizeof m);
    assert_int_equal(e.index, i);
    assert_int_equal(e.item_hash, mix(i));
    assert_int_equal(e.status, item_status(i));
    assert_int_equal(e.records, i % 3);
    assert_int_equal(e.len, len);
    assert_int_equal(e.msg_len, strlen(m));
    if (e.msg_len)
        assert_memory_equal(e.msg, m, e.msg_len);
    unsigned char *want = malloc(len + 1);
    assert_non_null(want);
    item_fill(i, want, len);
    assert_non_null(e.bytes);
    if (len)
        assert_memory_equal(e.bytes, want, len);
    free(want);
}

/* ---- round trip, two writer threads ---------------------------------------- */

#define RT_ITEMS 4000u

typedef struct worker {
    weft__journal_t *j;
    unsigned t;
    int rc;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    weft__buf_t b = {0};
    char m[64];
    unsigned char *tmp = malloc((size_t)1 << 20);
    size_t mark = 0, in_chunk = 0, chunks = 0;
    int rc = tmp ? 0 : -ENOMEM;
    for (uint64_t i = w->t; i < RT_ITEMS && !rc; i += 2) {
        if (!in_chunk)
            rc = weft__jchunk_begin(&b, &mark);
        size_t len = item_len(i);
        item_fill(i, tmp, len);
        item_msg(i, m, sizeof m);
        if (!rc)
            rc = weft__jchunk_add(&b, i, mix(i), item_status(i), (uint32_t)(i % 3), tmp,
                                  len, m, strlen(m));
        /* Chunks of 1..40 entries; every other time two chunks go out in
         * one append. */
        if (!rc && ++in_chunk >= 1 + mix(i) % 40) {
            weft__jchunk_end(&b, mark);
            in_chunk = 0;
            if (++chunks % 2 == 0) {
                rc = weft__journal_append(w->j, b.data, b.len);
                b.len = 0;
            }
        }
    }
    if (!rc && in_chunk)
        weft__jchunk_end(&b, mark);
    if (!rc)
        rc = weft__journal_append(w->j, b.data, b.len);
    weft__buf_free(&b);
    free(tmp);
    w->rc = rc;
    return NULL;
}

static void round_trip(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    for (uint64_t first = 0; first < RT_ITEMS; first += 1024)
        assert_int_equal(weft__journal_window(j, first, 1024), 0);
    worker_t w[2] = {{j, 0, -1}, {j, 1, -1}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, worker_main, &w[k]), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_int_equal(w[k].rc, 0);
    }
    assert_int_equal(weft__journal_end(j, 800, 3200), 0);
    assert_int_equal(weft__journal_close(&j), 0);
    assert_null(j);

    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_dropped(s), 0);
    assert_string_equal(weft__jscan_tail(s), "");
    assert_int_equal(weft__jscan_valid_len(s), file_size(fx->path));
    assert_true(weft__jscan_finished(s));
    assert_int_equal(weft__jscan_sessions(s), 1);
    assert_int_equal(weft__jscan_items(s), RT_ITEMS);
    const weft__jheader_t *h = weft__jscan_header(s);
    assert_string_equal(h->config, hdr.config);
    assert_string_equal(h->plugin, hdr.plugin);
    assert_string_equal(h->items, hdr.items);
    for (uint64_t i = 0; i < RT_ITEMS; i++)
        expect_entry(s, i, SIZE_MAX);
    assert_false(weft__jscan_get(s, RT_ITEMS, NULL));
    const uint64_t *idx;
    assert_int_equal(weft__jscan_suspects(s, &idx), 0);
    assert_null(idx);
    /* The scan outlives the journal. */
    assert_int_equal(weft__journal_close(&j), 0);
    expect_entry(s, 500, SIZE_MAX);
    weft__jscan_free(&s);
    assert_null(s);
}

/* ---- torn and corrupt tails ---------------------------------------------- */

/* A journal whose last three records are DONE(0..3), DONE(4..6), END;
 * bounds[k] = where record k of those ends (bounds[0]: where the first one
 * starts). */
static unsigned char *torn_base(fixture_t *fx, size_t *len, size_t bounds[4],
                                size_t *hdr_end)
{
    weft__journal_t *j = create(fx);
    *hdr_end = file_size(fx->path);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_window(j, 0, 8), 0);
    bounds[0] = file_size(fx->path);
    put_items(j, 0, 4);
    bounds[1] = file_size(fx->path);
    put_items(j, 4, 3);
    bounds[2] = file_size(fx->path);
    assert_int_equal(weft__journal_end(j, 7, 0), 0);
    bounds[3] = file_size(fx->path);
    assert_int_equal(weft__journal_close(&j), 0);
    unsigned char *d = slurp(fx->path, len);
    assert_int_equal(*len, bounds[3]);
    return d;
}

static void expect_cut(const weft__jscan_t *s, size_t cut, const size_t bounds[4])
{
    size_t good = bounds[0];
    for (int k = 1; k < 4; k++)
        if (cut >= bounds[k])
            good = bounds[k];
    assert_int_equal(weft__jscan_valid_len(s), good);
    assert_int_equal(weft__jscan_dropped(s), cut - good);
    assert_int_equal(weft__jscan_tail(s)[0] != '\0', cut != good);
    for (uint64_t i = 0; i < 7; i++)
        assert_int_equal(weft__jscan_get(s, i, NULL), cut >= bounds[i < 4 ? 1 : 2]);
    for (uint64_t i = 0; i < 7 && cut >= bounds[i < 4 ? 1 : 2]; i++)
        expect_entry(s, i, 300);
    assert_int_equal(weft__jscan_finished(s), cut == bounds[3]);
    assert_int_equal(weft__jscan_sessions(s), 1);
}

static void torn_every_byte(void **state)
{
    fixture_t *fx = *state;
    size_t len, bounds[4], hdr_end;
    unsigned char *d = torn_base(fx, &len, bounds, &hdr_end);
    char path2[160];
    snprintf(path2, sizeof path2, "%s/cut.journal", fx->dir);
    for (size_t cut = bounds[0]; cut <= len; cut++) {
        /* On memory: a copy of exactly `cut` bytes, so ASan sees over-reads. */
        unsigned char *c = malloc(cut);
        assert_non_null(c);
        memcpy(c, d, cut);
        weft__jscan_t *s;
        assert_int_equal(weft__jscan_parse(&s, c, cut, fx->err, sizeof fx->err), 0);
        expect_cut(s, cut, bounds);
        weft__jscan_free(&s);
        free(c);

        /* On a file: resume truncates the tail, appending gives a valid journal. */
        spit(path2, d, cut);
        weft__journal_t *j;
        assert_int_equal(weft__journal_resume(&j, &s, path2, fx->err, sizeof fx->err), 0);
        expect_cut(s, cut, bounds);
        size_t good = weft__jscan_valid_len(s);
        weft__jscan_free(&s);
        assert_int_equal(file_size(path2), good);
        assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
        put_items(j, 100, 2);
        assert_int_equal(weft__journal_end(j, 2, 0), 0);
        assert_int_equal(weft__journal_close(&j), 0);
        snap_t n = snap(path2);
        assert_int_equal(weft__jscan_dropped(n.s), 0);
        assert_int_equal(weft__jscan_valid_len(n.s), n.len);
        assert_true(weft__jscan_finished(n.s));
        assert_int_equal(weft__jscan_sessions(n.s), 2);
        expect_entry(n.s, 100, 300);
        expect_entry(n.s, 101, 300);
        assert_int_equal(weft__jscan_get(n.s, 4, NULL), cut >= bounds[2]);
        snap_free(&n);
    }
    /* Cut inside the file magic or header: an error, never a crash. */
    for (size_t cut = 0; cut < hdr_end; cut++) {
        unsigned char *c = malloc(cut + 1);
        assert_non_null(c);
        memcpy(c, d, cut);
        weft__jscan_t *s = (weft__jscan_t *)c;
        assert_int_equal(weft__jscan_parse(&s, c, cut, fx->err, sizeof fx->err), -EINVAL);
        assert_null(s);
        assert_non_null(strstr(fx->err, "incomplete"));
        free(c);
    }
    free(d);
}

static void corrupt_every_bit(void **state)
{
    fixture_t *fx = *state;
    size_t len, bounds[4], hdr_end;
    unsigned char *d = torn_base(fx, &len, bounds, &hdr_end);
    unsigned char *c = malloc(len);
    assert_non_null(c);
    size_t checked = 0;
    for (int r = 0; r < 3; r++) {
        for (size_t at = bounds[r]; at < bounds[r + 1]; at++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(c, d, len);
                c[at] ^= (unsigned char)(1u << bit);
                weft__jscan_t *s;
                assert_int_equal(weft__jscan_parse(&s, c, len, fx->err, sizeof fx->err),
                                 0);
                /* The damaged record and everything after it are dropped. */
                assert_int_equal(weft__jscan_valid_len(s), bounds[r]);
                assert_int_equal(weft__jscan_dropped(s), len - bounds[r]);
                assert_int_equal(weft__jscan_get(s, 0, NULL), r > 0);
                assert_int_equal(weft__jscan_get(s, 4, NULL), r > 1);
                assert_false(weft__jscan_finished(s));
                weft__jscan_free(&s);
                checked++;
            }
        }
    }
    assert_int_equal(checked, (bounds[3] - bounds[0]) * 8);
    /* A damaged header makes the whole file unusable. */
    for (size_t at = 8; at < hdr_end; at += 3) {
        memcpy(c, d, len);
        c[at] ^= 0x10;
        weft__jscan_t *s;
        assert_int_equal(weft__jscan_parse(&s, c, len, fx->err, sizeof fx->err), -EINVAL);
    }
    memcpy(c, d, len);
    c[0] = 'X';
    weft__jscan_t *s;
    assert_int_equal(weft__jscan_parse(&s, c, len, fx->err, sizeof fx->err), -EINVAL);
    assert_string_equal(fx->err, "not a weft journal (bad magic)");
    free(c);
    free(d);
}

/* Random damage anywhere (lengths, counts, types): never a crash or an
 * over-read (each input is an exact-size copy, for ASan). */
static void random_damage(void **state)
{
    fixture_t *fx = *state;
    size_t len, bounds[4], hdr_end;
    unsigned char *d = torn_base(fx, &len, bounds, &hdr_end);
    uint64_t rng = 12345;
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(mix(rng++) % (len + 1));
        unsigned char *c = malloc(n ? n : 1);
        assert_non_null(c);
        memcpy(c, d, n);
        int flips = 1 + (int)(mix(rng++) % 4);
        for (int k = 0; k < flips && n; k++) {
            size_t at = (size_t)(mix(rng++) % n);
            c[at] = (unsigned char)mix(rng++);
        }
        weft__jscan_t *s = NULL;
        int rc = weft__jscan_parse(&s, c, n, fx->err, sizeof fx->err);
        if (rc == 0) {
            assert_true(weft__jscan_valid_len(s) + weft__jscan_dropped(s) == n);
            weft__jentry_t e;
            for (uint64_t i = 0; i < 8; i++)
                if (weft__jscan_get(s, i, &e))
                    assert_true((const unsigned char *)e.msg + e.msg_len <= c + n);
            weft__jscan_free(&s);
        } else {
            assert_true(rc == -EINVAL || rc == -ENOTSUP);
            assert_null(s);
        }
        free(c);
    }
    free(d);
}

/* ---- later entries, sessions, END ------------------------------------------- */

static void later_entry_wins(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    snap_t n = snap(fx->path);
    assert_int_equal(weft__jscan_sessions(n.s), 0);
    assert_false(weft__jscan_finished(n.s));
    snap_free(&n);

    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_one(j, 5, WEFT__J_FAILED, "", "boom");
    put_one(j, 6, WEFT__J_OK, "six", "");
    assert_int_equal(weft__journal_end(j, 1, 1), 0);
    n = snap(fx->path);
    assert_true(weft__jscan_finished(n.s));
    assert_int_equal(weft__jscan_sessions(n.s), 1);
    weft__jentry_t e;
    assert_true(weft__jscan_get(n.s, 5, &e));
    assert_int_equal(e.status, WEFT__J_FAILED);
    assert_memory_equal(e.msg, "boom", 4);
    snap_free(&n);

    assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME | WEFT__JS_CAREFUL), 0);
    n = snap(fx->path);
    assert_false(weft__jscan_finished(n.s));
    unsigned flags;
    assert_int_equal(weft__jscan_last_session(n.s, &flags), 2);
    assert_int_equal(flags, WEFT__JS_RESUME | WEFT__JS_CAREFUL);
    snap_free(&n);

    put_one(j, 5, WEFT__J_OK, "fixed", "");
    /* Two entries for one item in one chunk: the second wins. */
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(weft__jchunk_add(&b, 7, 1, WEFT__J_CRASHED, 0, NULL, 0, "x", 1), 0);
    assert_int_equal(weft__jchunk_add(&b, 7, 2, WEFT__J_TIMEDOUT, 0, NULL, 0, "late", 4),
                     0);
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
    weft__buf_free(&b);

    n = snap(fx->path);
    assert_int_equal(weft__jscan_sessions(n.s), 2);
    assert_false(weft__jscan_finished(n.s));
    assert_true(weft__jscan_get(n.s, 5, &e));
    assert_int_equal(e.status, WEFT__J_OK);
    assert_int_equal(e.len, 5);
    assert_memory_equal(e.bytes, "fixed", 5);
    assert_int_equal(e.msg_len, 0);
    assert_true(weft__jscan_get(n.s, 6, &e));
    assert_memory_equal(e.bytes, "six", 3);
    assert_true(weft__jscan_get(n.s, 7, &e));
    assert_int_equal(e.status, WEFT__J_TIMEDOUT);
    assert_int_equal(e.item_hash, 2);
    assert_int_equal(weft__jscan_items(n.s), 3);
    snap_free(&n);

    assert_int_equal(weft__journal_end(j, 2, 0), 0);
    n = snap(fx->path);
    assert_true(weft__jscan_finished(n.s));
    snap_free(&n);
    /* Anything after END re-opens the session. */
    assert_int_equal(weft__journal_window(j, 10, 1), 0);
    n = snap(fx->path);
    assert_false(weft__jscan_finished(n.s));
    snap_free(&n);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* Sparse indices take the sorted index instead of the dense table. */
static void sparse_indices(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    const uint64_t big = (uint64_t)1 << 40;
    put_one(j, 3 * big, WEFT__J_FAILED, "a", "first");
    put_one(j, big, WEFT__J_OK, "b", "");
    put_one(j, UINT64_MAX, WEFT__J_OK, "max", "");
    put_one(j, 3 * big, WEFT__J_OK, "c", "");
    put_one(j, 0, WEFT__J_OK, "zero", "");
    snap_t n = snap(fx->path);
    weft__jentry_t e;
    assert_true(weft__jscan_get(n.s, 3 * big, &e));
    assert_int_equal(e.status, WEFT__J_OK);
    assert_memory_equal(e.bytes, "c", 1);
    assert_true(weft__jscan_get(n.s, big, &e));
    assert_memory_equal(e.bytes, "b", 1);
    assert_true(weft__jscan_get(n.s, UINT64_MAX, &e));
    assert_memory_equal(e.bytes, "max", 3);
    assert_true(weft__jscan_get(n.s, 0, &e));
    assert_false(weft__jscan_get(n.s, 2 * big, &e));
    assert_false(weft__jscan_get(n.s, 1, &e));
    assert_int_equal(weft__jscan_items(n.s), 4);
    assert_true(weft__jscan_memory(n.s) < 4096);
    snap_free(&n);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* ---- suspects and poison ------------------------------------------------------ */

static void expect_set(const uint64_t *got, size_t n, const uint64_t *want, size_t nw)
{
    assert_int_equal(n, nw);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(got[k], want[k]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t record_checksum(const unsigned char *r)
{
    size_t plen = get32(r + 4);
    unsigned char *c = malloc(WEFT__JREC_HDR + plen);
    assert_non_null(c);
    memcpy(c, r, WEFT__JREC_HDR + plen);
    memset(c + 8, 0, 8);
    uint64_t sum = XXH3_64bits(c, WEFT__JREC_HDR + plen);
    free(c);
    return sum;
}

/* Seals the record at r (type, length and payload in place) with a correct
 * checksum, so that only its payload's form can make it bad. */
static void reseal(unsigned char *r)
{
    uint64_t sum = record_checksum(r);
    for (int k = 0; k < 8; k++)
        r[8 + k] = (unsigned char)(sum >> (8 * k));
}

/* Writes a CRASH record the way weft's crash handler does: built by
 * weft__journal_crash_record, one write(2) to the journal's descriptor. */
static void put_crash(weft__journal_t *j, int sig, const uint64_t *items, size_t n)
{
    size_t cap = WEFT__JREC_HDR + 8 + 8 * n;
    unsigned char *r = malloc(cap);
    assert_non_null(r);
    size_t len = weft__journal_crash_record(r, cap, sig, items, n);
    assert_int_equal(len, cap);
    assert_int_equal(write(weft__journal_fd(j), r, len), (ssize_t)len);
    free(r);
}

static void expect_none(const weft__jscan_t *s, bool suspects)
{
    const uint64_t *idx = (const uint64_t *)s;
    if (suspects) {
        assert_int_equal(weft__jscan_suspects(s, &idx), 0);
        assert_null(idx);
    }
    idx = (const uint64_t *)s;
    assert_int_equal(weft__jscan_poison(s, &idx), 0);
    assert_null(idx);
}

static void suspects_and_poison(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j;
    const uint64_t *idx;
    j = create(fx);

    /* Session 1 stops with two windows partly done. */
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_window(j, 0, 64), 0);
    put_items(j, 30, 34); /* 30..63, out of order */
    put_items(j, 0, 10);
    put_items(j, 11, 9); /* 11..19 */
    put_items(j, 21, 9); /* 21..29 */
    assert_int_equal(weft__journal_window(j, 64, 64), 0);
    put_items(j, 64, 36); /* 64..99 */
    uint64_t first[30] = {10, 20};
    for (uint64_t k = 2; k < 30; k++)
        first[k] = 100 + k - 2;
    snap_t n = snap(fx->path); /* killed here: suspects, no poison */
    size_t ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, first, 30);
    expect_none(n.s, false);
    snap_free(&n);
    /* ... or crashed: the CRASH record names them; one crash is not poison. */
    put_crash(j, SIGSEGV, first, 30);
    n = snap(fx->path);
    ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, first, 30);
    expect_none(n.s, false);
    snap_free(&n);

    /* A session killed before it started any item changes nothing. */
    assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
    n = snap(fx->path);
    ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, first, 30);
    expect_none(n.s, false);
    assert_int_equal(weft__jscan_sessions(n.s), 2);
    snap_free(&n);

    /* Session 3, careful: 10 passes alone, 20 is in flight. */
    assert_int_equal(weft__journal_session(j, 3, WEFT__JS_RESUME | WEFT__JS_CAREFUL), 0);
    assert_int_equal(weft__journal_begin(j, 10), 0);
    put_items(j, 10, 1);
    assert_int_equal(weft__journal_begin(j, 20), 0);
    const uint64_t twenty[] = {20};
    n = snap(fx->path); /* killed there: nobody's fault, no poison */
    ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, twenty, 1);
    expect_none(n.s, false);
    snap_free(&n);
    put_crash(j, SIGBUS, twenty, 1); /* crashed there: 20 crashed twice */
    n = snap(fx->path);
    ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, twenty, 1);
    ns = weft__jscan_poison(n.s, &idx);
    expect_set(idx, ns, twenty, 1);
    snap_free(&n);

    /* Session 4 quarantines 20, then crashes on 100 (named in 1, not in 3):
     * a suspect, not poison. */
    assert_int_equal(weft__journal_session(j, 4, WEFT__JS_RESUME | WEFT__JS_CAREFUL), 0);
    put_one(j, 20, WEFT__J_QUARANTINED, "", "crashed twice");
    assert_int_equal(weft__journal_begin(j, 100), 0);
    const uint64_t hundred[] = {100};
    put_crash(j, SIGSEGV, hundred, 1);
    n = snap(fx->path);
    ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, hundred, 1);
    expect_none(n.s, false);
    snap_free(&n);

    /* Session 5: done again after being started, then started again and
     * crashed on. */
    assert_int_equal(weft__journal_session(j, 5, WEFT__JS_RESUME | WEFT__JS_CAREFUL), 0);
    assert_int_equal(weft__journal_begin(j, 100), 0);
    put_items(j, 100, 1);
    assert_int_equal(weft__journal_begin(j, 100), 0);
    put_crash(j, SIGSEGV, hundred, 1);
    n = snap(fx->path);
    ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, hundred, 1);
    ns = weft__jscan_poison(n.s, &idx);
    expect_set(idx, ns, hundred, 1);
    snap_free(&n);

    /* Session 6 ends: nothing suspect. */
    assert_int_equal(weft__journal_session(j, 6, WEFT__JS_RESUME), 0);
    put_items(j, 100, 28);
    assert_int_equal(weft__journal_end(j, 128, 0), 0);
    n = snap(fx->path);
    assert_true(weft__jscan_finished(n.s));
    expect_none(n.s, true);
    snap_free(&n);

    /* Session 7 crashes on 7; the session before it ended: no poison. */
    assert_int_equal(weft__journal_session(j, 7, 0), 0);
    assert_int_equal(weft__journal_begin(j, 7), 0);
    const uint64_t seven[] = {7};
    put_crash(j, SIGSEGV, seven, 1);
    n = snap(fx->path);
    ns = weft__jscan_suspects(n.s, &idx);
    expect_set(idx, ns, seven, 1);
    expect_none(n.s, false);
    assert_int_equal(weft__jscan_sessions(n.s), 7);
    snap_free(&n);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* In-flight sets and CRASH records against a plain per-item model: random
 * windows (across 4096-item pages), begins and dones (some failed); two
 * sessions, each killed (no CRASH), crashed (CRASH records, possibly
 * followed by more records from other threads) or, the second, stopped.
 * In the second, a window does not put in flight an item whose last entry
 * is an OK one of the first (a resume reuses it). */
#define MODEL_N 20000u

/* What a session did to an item (model_session's `what`). */
enum { W_BEGUN = 1, W_WINDOWED = 2, W_DONE = 4, W_LAST_OK = 8 };

enum { M_KILL, M_CRASH, M_STOP };

/* Writes 1..3 CRASH records naming a random part of the items in flight
 * (and, sometimes, a few items not in flight and repeats); marks them in
 * named. */
static void model_crash(weft__journal_t *j, uint64_t *rng, const unsigned char *inflight,
                        unsigned char *named)
{
    uint64_t *list = malloc(MODEL_N * 2 * sizeof *list);
    assert_non_null(list);
    size_t n = 0;
    uint64_t keep = 1 + mix((*rng)++) % 4; /* 1 in keep */
    for (uint64_t i = 0; i < MODEL_N; i++)
        if (inflight[i] && mix((*rng)++) % keep == 0)
            list[n++] = i;
    int extra = (int)(mix((*rng)++) % 4);
    for (int k = 0; k < extra; k++)
        list[n++] = mix((*rng)++) % MODEL_N;
    for (size_t k = 0, m = n; k < m && k < 5; k++)
        list[n++] = list[k]; /* repeats */
    for (size_t k = 0; k < n; k++)
        named[list[k]] = 1;
    int parts = 1 + (int)(mix((*rng)++) % 3);
    size_t at = 0;
    for (int p = 0; p < parts; p++) {
        size_t cnt = p == parts - 1 ? n - at : (n - at) / 2;
        put_crash(j, SIGSEGV, list + at, cnt);
        at += cnt;
    }
    free(list);
}

static void model_session(weft__journal_t *j, uint64_t *rng, int mode,
                          unsigned char *inflight, unsigned char *named,
                          unsigned char *what)
{
    memset(inflight, 0, MODEL_N);
    memset(named, 0, MODEL_N);
    memset(what, 0, MODEL_N);
    int ops = 20 + (int)(mix((*rng)++) % 60);
    int crash_at = (int)(mix((*rng)++) % 3) == 0 ? (int)(mix((*rng)++) % ops) : ops;
    for (int op = 0; op < ops; op++) {
        if (mode == M_CRASH && op == crash_at)
            model_crash(j, rng, inflight, named);
        uint64_t r = mix((*rng)++);
        uint64_t at = mix((*rng)++) % MODEL_N;
        if (r % 4 == 0) {
            uint64_t count = 1 + mix((*rng)++) % 6000;
            if (at + count > MODEL_N)
                count = MODEL_N - at;
            assert_int_equal(weft__journal_window(j, at, count), 0);
            memset(inflight + at, 1, count);
            for (uint64_t i = at; i < at + count; i++)
                what[i] |= W_WINDOWED;
        } else if (r % 4 == 1) {
            assert_int_equal(weft__journal_begin(j, at), 0);
            inflight[at] = 1;
            what[at] |= W_BEGUN;
        } else {
            /* A chunk of random items, mostly near `at`. */
            weft__buf_t b = {0};
            size_t mark;
            assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
            int n = 1 + (int)(mix((*rng)++) % 400);
            for (int k = 0; k < n; k++) {
                uint64_t i = (at + mix((*rng)++) % 3000) % MODEL_N;
                unsigned st = mix((*rng)++) % 8 == 0 ? WEFT__J_FAILED : WEFT__J_OK;
                assert_int_equal(weft__jchunk_add(&b, i, 0, st, 1, "x", 1, "f", 1), 0);
                inflight[i] = 0;
                what[i] = (unsigned char)((what[i] & ~W_LAST_OK) | W_DONE |
                                          (st == WEFT__J_OK ? W_LAST_OK : 0));
            }
            weft__jchunk_end(&b, mark);
            assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
            weft__buf_free(&b);
        }
    }
    if (mode == M_CRASH && crash_at == ops)
        model_crash(j, rng, inflight, named);
    if (mode == M_STOP) {
        assert_int_equal(weft__journal_stop(j), 0);
        memset(inflight, 0, MODEL_N);
    }
}

static void inflight_model(void **state)
{
    fixture_t *fx = *state;
    unsigned char *a = malloc(MODEL_N), *b = malloc(MODEL_N);
    unsigned char *na = malloc(MODEL_N), *nb = malloc(MODEL_N);
    unsigned char *wa = malloc(MODEL_N), *wb = malloc(MODEL_N);
    assert_true(a && b && na && nb && wa && wb);
    uint64_t rng = 99;
    size_t rounds_poisoned = 0, rounds_both_crashed = 0, reused = 0, failed_kept = 0;
    for (int round = 0; round < 48; round++) {
        /* Mostly both crashed, else each kind of break. */
        static const int modes[8][2] = {
            {M_CRASH, M_CRASH}, {M_CRASH, M_CRASH}, {M_CRASH, M_CRASH},
            {M_CRASH, M_CRASH}, {M_KILL, M_CRASH},  {M_CRASH, M_KILL},
            {M_KILL, M_KILL},   {M_CRASH, M_STOP},
        };
        int ma = modes[round % 8][0], mb = modes[round % 8][1];
        weft__journal_t *j;
        assert_int_equal(
            weft__journal_create(&j, fx->path, &hdr, fx->err, sizeof fx->err), 0);
        assert_int_equal(weft__journal_session(j, 1, 0), 0);
        model_session(j, &rng, ma, a, na, wa);
        assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
        model_session(j, &rng, mb, b, nb, wb);
        assert_int_equal(weft__journal_close(&j), 0);
        /* Only windowed in the second session, last done OK in the first:
         * reused, not in flight.  Last done failed: it may have run again
         * (--retry-failed), so it still counts. */
        for (uint64_t i = 0; i < MODEL_N; i++) {
            if (!b[i] || (wb[i] & (W_DONE | W_BEGUN)) || !(wa[i] & W_DONE))
                continue;
            if (wa[i] & W_LAST_OK) {
                b[i] = 0;
                reused++;
            } else {
                failed_kept++;
            }
        }
        snap_t n = snap(fx->path);
        assert_int_equal(weft__jscan_dropped(n.s), 0);
        assert_false(weft__jscan_finished(n.s));
        const uint64_t *idx;
        size_t ns = weft__jscan_suspects(n.s, &idx), want = 0, pos = 0;
        for (uint64_t i = 0; i < MODEL_N; i++)
            want += b[i];
        assert_int_equal(ns, want);
        for (uint64_t i = 0; i < MODEL_N; i++)
            if (b[i])
                assert_int_equal(idx[pos++], i);
        /* Poison: named by the CRASH records of both, both crashed. */
        bool both = ma == M_CRASH && mb == M_CRASH;
        size_t np = weft__jscan_poison(n.s, &idx);
        want = pos = 0;
        for (uint64_t i = 0; i < MODEL_N; i++)
            want += both && na[i] && nb[i];
        assert_int_equal(np, want);
        for (uint64_t i = 0; i < MODEL_N; i++)
            if (both && na[i] && nb[i])
                assert_int_equal(idx[pos++], i);
        rounds_both_crashed += both;
        rounds_poisoned += np > 0;
        snap_free(&n);
    }
    /* The model met both outcomes of two crashes, and windows over reused
     * and over failed items (fixed seed: deterministic). */
    assert_true(rounds_poisoned > 0 && rounds_poisoned < rounds_both_crashed);
    assert_true(reused > 0 && failed_kept > 0);
    free(a);
    free(b);
    free(na);
    free(nb);
    free(wa);
    free(wb);
}

/* Items one per 4096-index block: hundreds of blocks in the hash map, done
 * in random order (deletions amid collisions), some started again. */
static void inflight_many_blocks(void **state)
{
    fixture_t *fx = *state;
    enum { K = 1500 };
    unsigned char *want = calloc(K, 1);
    assert_non_null(want);
    uint64_t rng = 7;
    for (int round = 0; round < 10; round++) {
        weft__journal_t *j;
        assert_int_equal(
            weft__journal_create(&j, fx->path, &hdr, fx->err, sizeof fx->err), 0);
        assert_int_equal(weft__journal_session(j, 1, 0), 0);
        for (uint64_t k = 0; k < K; k++) {
            assert_int_equal(weft__journal_begin(j, k * 4096 + k % 4096), 0);
            want[k] = 1;
        }
        weft__buf_t b = {0};
        size_t mark;
        assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
        for (int n = 0; n < 3 * K; n++) {
            uint64_t k = mix(rng++) % K;
            assert_int_equal(weft__jchunk_add(&b, k * 4096 + k % 4096, 0, WEFT__J_OK, 0,
                                              NULL, 0, NULL, 0),
                             0);
            want[k] = 0;
            if (n % 500 == 499) { /* restart a few */
                weft__jchunk_end(&b, mark);
                assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
                b.len = 0;
                for (int q = 0; q < 20; q++) {
                    uint64_t r = mix(rng++) % K;
                    assert_int_equal(weft__journal_begin(j, r * 4096 + r % 4096), 0);
                    want[r] = 1;
                }
                assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
            }
        }
        weft__jchunk_end(&b, mark);
        assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
        weft__buf_free(&b);
        assert_int_equal(weft__journal_close(&j), 0);
        snap_t n = snap(fx->path);
        const uint64_t *idx;
        size_t ns = weft__jscan_suspects(n.s, &idx), pos = 0, count = 0;
        for (uint64_t k = 0; k < K; k++)
            count += want[k];
        assert_true(count > 0);
        assert_int_equal(ns, count);
        for (uint64_t k = 0; k < K; k++)
            if (want[k])
                assert_int_equal(idx[pos++], k * 4096 + k % 4096);
        snap_free(&n);
    }
    free(want);
}

/* More in flight than a scan tracks: refused, not a crash or a huge list. */
static void inflight_limit(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    uint64_t first = 0;
    for (; first < WEFT__J_MAX_INFLIGHT; first += WEFT__J_MAX_WINDOW)
        assert_int_equal(weft__journal_window(j, first, WEFT__J_MAX_WINDOW), 0);
    snap_t n = snap(fx->path); /* exactly at the limit: fine */
    const uint64_t *idx;
    assert_int_equal(weft__jscan_suspects(n.s, &idx), WEFT__J_MAX_INFLIGHT);
    assert_int_equal(idx[WEFT__J_MAX_INFLIGHT - 1], WEFT__J_MAX_INFLIGHT - 1);
    snap_free(&n);
    assert_int_equal(weft__journal_window(j, first, 1), 0);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t len;
    unsigned char *d = slurp(fx->path, &len);
    weft__jscan_t *s;
    assert_int_equal(weft__jscan_parse(&s, d, len, fx->err, sizeof fx->err), -E2BIG);
    assert_null(s);
    assert_non_null(strstr(fx->err, "in flight"));
    free(d);
}

/* ---- STOP and CRASH records ------------------------------------------------- */

/* Where the file at path ends now. */
#define HERE(fx) file_size((fx)->path)

static void stop_sessions(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j;
    const uint64_t *idx;
    j = create(fx);
    /* Session 1 halts with 10..31 in flight: stopped, not finished, not a
     * crash: no suspects. */
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_window(j, 0, 32), 0);
    put_items(j, 0, 10);
    assert_int_equal(weft__journal_stop(j), 0);
    snap_t n = snap(fx->path);
    assert_false(weft__jscan_finished(n.s));
    assert_int_equal(weft__jscan_sessions(n.s), 1);
    expect_none(n.s, true);
    assert_int_equal(weft__jscan_dropped(n.s), 0);
    snap_free(&n);

    /* Session 2 likewise (before its STOP, its items are suspects). */
    assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
    assert_int_equal(weft__journal_window(j, 10, 22), 0);
    put_items(j, 10, 5);
    n = snap(fx->path);
    assert_int_equal(weft__jscan_suspects(n.s, &idx), 17);
    assert_int_equal(idx[0], 15);
    expect_none(n.s, false);
    snap_free(&n);
    size_t stop_at = HERE(fx);
    assert_int_equal(weft__journal_stop(j), 0);
    assert_int_equal(HERE(fx), stop_at + WEFT__JREC_HDR); /* empty payload */
    assert_int_equal(weft__journal_close(&j), 0);

    /* Two STOP sessions in a row: no suspects, no poison; resume agrees. */
    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_false(weft__jscan_finished(s));
    assert_int_equal(weft__jscan_sessions(s), 2);
    assert_int_equal(weft__jscan_dropped(s), 0);
    assert_int_equal(weft__jscan_items(s), 15);
    expect_none(s, true);
    weft__jscan_free(&s);

    /* Two STOP sessions before do not hide two crashes after. */
    const uint64_t x[] = {20, 21};
    for (uint64_t k = 3; k <= 4; k++) {
        assert_int_equal(weft__journal_session(j, k, WEFT__JS_RESUME), 0);
        assert_int_equal(weft__journal_window(j, 15, 17), 0);
        put_crash(j, SIGSEGV, x, 2);
    }
    n = snap(fx->path);
    size_t np = weft__jscan_poison(n.s, &idx);
    expect_set(idx, np, x, 2);
    snap_free(&n);
    /* A STOP after it: no poison, nothing suspect. */
    assert_int_equal(weft__journal_session(j, 5, WEFT__JS_RESUME), 0);
    assert_int_equal(weft__journal_window(j, 15, 17), 0);
    assert_int_equal(weft__journal_stop(j), 0);
    n = snap(fx->path);
    expect_none(n.s, true);
    snap_free(&n);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* A STOP record with a payload is a corrupt tail: dropped with what follows,
 * so the session it would have stopped is not stopped. */
static void stop_validated(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_window(j, 0, 4), 0);
    size_t stop_at = HERE(fx);
    assert_int_equal(weft__journal_stop(j), 0);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t len;
    unsigned char *d = slurp(fx->path, &len);
    assert_int_equal(len, stop_at + WEFT__JREC_HDR);
    assert_int_equal(get32(d + stop_at), WEFT__JREC_MAGIC | WEFT__JREC_STOP);
    assert_int_equal(get32(d + stop_at + 4), 0);
    assert_int_equal(get64(d + stop_at + 8), record_checksum(d + stop_at));

    static const size_t plens[] = {1, 8, 16};
    for (size_t t = 0; t < sizeof plens / sizeof plens[0]; t++) {
        /* The STOP, sealed correctly with a payload, then a good record. */
        size_t bad_len = WEFT__JREC_HDR + plens[t];
        size_t n = stop_at + bad_len + WEFT__JREC_HDR;
        unsigned char *c = calloc(1, n);
        assert_non_null(c);
        memcpy(c, d, stop_at);
        memcpy(c + stop_at, d + stop_at, WEFT__JREC_HDR);
        put32(c + stop_at + 4, (uint32_t)plens[t]);
        reseal(c + stop_at);
        memcpy(c + stop_at + bad_len, d + stop_at, WEFT__JREC_HDR);
        weft__jscan_t *s;
        assert_int_equal(weft__jscan_parse(&s, c, n, fx->err, sizeof fx->err), 0);
        assert_int_equal(weft__jscan_valid_len(s), stop_at);
        assert_int_equal(weft__jscan_dropped(s), n - stop_at);
        assert_non_null(strstr(weft__jscan_tail(s), "bad STOP record"));
        assert_false(weft__jscan_finished(s));
        const uint64_t *idx;
        assert_int_equal(weft__jscan_suspects(s, &idx), 4); /* not stopped */
        weft__jscan_free(&s);
        free(c);
    }
    /* Every bit of the good STOP flipped: dropped, the session not stopped. */
    for (size_t at = stop_at; at < len; at++)
        for (int bit = 0; bit < 8; bit++) {
            d[at] ^= (unsigned char)(1u << bit);
            weft__jscan_t *s;
            assert_int_equal(weft__jscan_parse(&s, d, len, fx->err, sizeof fx->err), 0);
            assert_int_equal(weft__jscan_valid_len(s), stop_at);
            const uint64_t *idx;
            assert_int_equal(weft__jscan_suspects(s, &idx), 4);
            weft__jscan_free(&s);
            d[at] ^= (unsigned char)(1u << bit);
        }
    free(d);
}

static void crash_record_format(void **state)
{
    (void)state;
    const uint64_t items[] = {3, (uint64_t)1 << 40, UINT64_MAX, 3, 0};
    unsigned char buf[128];
    memset(buf, 0xAA, sizeof buf);
    size_t len = weft__journal_crash_record(buf, sizeof buf, SIGSEGV, items, 5);
    assert_int_equal(len, WEFT__JREC_HDR + 8 + 5 * 8);
    assert_int_equal(get32(buf), WEFT__JREC_MAGIC | WEFT__JREC_CRASH);
    assert_int_equal(get32(buf + 4), 8 + 5 * 8);
    assert_int_equal(get64(buf + 8), record_checksum(buf));
    assert_int_equal(get32(buf + 16), SIGSEGV);
    assert_int_equal(get32(buf + 20), 5);
    for (int k = 0; k < 5; k++) /* as given: repeats and order kept */
        assert_int_equal(get64(buf + 24 + 8 * k), items[k]);
    assert_int_equal(buf[len], 0xAA);

    /* Truncated to what fits, never past cap (exact-size buffers for ASan). */
    for (size_t cap = 0; cap <= WEFT__JREC_HDR + 8 + 6 * 8; cap++) {
        unsigned char *b = malloc(cap ? cap : 1);
        assert_non_null(b);
        size_t got = weft__journal_crash_record(b, cap, SIGABRT, items, 5);
        if (cap < WEFT__JREC_HDR + 8) {
            assert_int_equal(got, 0);
        } else {
            size_t keep = (cap - WEFT__JREC_HDR - 8) / 8;
            if (keep > 5)
                keep = 5;
            assert_int_equal(got, WEFT__JREC_HDR + 8 + 8 * keep);
            assert_int_equal(get32(b + 4), 8 + 8 * keep);
            assert_int_equal(get32(b + 16), SIGABRT);
            assert_int_equal(get32(b + 20), keep);
            for (size_t k = 0; k < keep; k++)
                assert_int_equal(get64(b + 24 + 8 * k), items[k]);
            assert_int_equal(get64(b + 8), record_checksum(b));
        }
        free(b);
    }
    /* No items: a valid, empty CRASH record. */
    assert_int_equal(weft__journal_crash_record(buf, sizeof buf, SIGILL, NULL, 0),
                     WEFT__JREC_HDR + 8);
    assert_int_equal(get32(buf + 20), 0);
    assert_int_equal(weft__journal_fd(NULL), -1);
}

/* CRASH records round trip: what they name, after truncation, is what the
 * scan reads, in several records per session. */
static void crash_records_read(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j;
    const uint64_t *idx;
    j = create(fx);
    const uint64_t big = (uint64_t)1 << 40;
    /* Session 1 names 5, 6 (7 did not fit) and big. */
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_window(j, 0, 8), 0);
    unsigned char r[WEFT__JREC_HDR + 8 + 2 * 8 + 7];
    const uint64_t first[] = {6, 5, 7};
    size_t len = weft__journal_crash_record(r, sizeof r, SIGSEGV, first, 3);
    assert_int_equal(len, WEFT__JREC_HDR + 8 + 2 * 8);
    assert_int_equal(write(weft__journal_fd(j), r, len), (ssize_t)len);
    const uint64_t one[] = {big};
    put_crash(j, SIGSEGV, one, 1);
    /* Session 2 names 7, 5, big, UINT64_MAX, 6, 5 in three records. */
    assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
    assert_int_equal(weft__journal_window(j, 0, 8), 0);
    const uint64_t two[] = {7, 5, big}, three[] = {UINT64_MAX, 6, 5};
    put_crash(j, SIGSEGV, two, 3);
    put_crash(j, SIGSEGV, NULL, 0);
    put_crash(j, SIGSEGV, three, 3);
    assert_int_equal(weft__journal_close(&j), 0);

    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_dropped(s), 0);
    assert_int_equal(weft__jscan_sessions(s), 2);
    assert_false(weft__jscan_finished(s));
    const uint64_t want[] = {5, 6, big};
    size_t np = weft__jscan_poison(s, &idx);
    expect_set(idx, np, want, 3);
    /* Suspects stay the in-flight items, whatever CRASH names. */
    const uint64_t all8[] = {0, 1, 2, 3, 4, 5, 6, 7};
    size_t ns = weft__jscan_suspects(s, &idx);
    expect_set(idx, ns, all8, 8);
    weft__jscan_free(&s);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* Two crashed sessions, then a torn, bit-flipped or malformed CRASH record
 * in the second: dropped like any other record, so no poison. */
static void crash_damaged(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j;
    const uint64_t *idx;
    j = create(fx);
    const uint64_t x[] = {2, 5}, y[] = {5, 2, 7};
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_window(j, 0, 8), 0);
    put_crash(j, SIGSEGV, x, 2);
    assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
    assert_int_equal(weft__journal_window(j, 0, 8), 0);
    put_items(j, 0, 1);
    size_t c0 = HERE(fx);
    put_crash(j, SIGSEGV, y, 3);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t len;
    unsigned char *d = slurp(fx->path, &len);
    assert_int_equal(len, c0 + WEFT__JREC_HDR + 8 + 3 * 8);
    const uint64_t inflight2[] = {1, 2, 3, 4, 5, 6, 7};

    weft__jscan_t *s;
    assert_int_equal(weft__jscan_parse(&s, d, len, fx->err, sizeof fx->err), 0);
    size_t np = weft__jscan_poison(s, &idx);
    expect_set(idx, np, x, 2);
    weft__jscan_free(&s);

    for (size_t cut = c0; cut < len; cut++) {
        unsigned char *c = malloc(cut);
        assert_non_null(c);
        memcpy(c, d, cut);
        assert_int_equal(weft__jscan_parse(&s, c, cut, fx->err, sizeof fx->err), 0);
        assert_int_equal(weft__jscan_valid_len(s), c0);
        assert_int_equal(weft__jscan_dropped(s), cut - c0);
        assert_int_equal(weft__jscan_tail(s)[0] != '\0', cut > c0);
        size_t ns = weft__jscan_suspects(s, &idx);
        expect_set(idx, ns, inflight2, 7);
        expect_none(s, false);
        weft__jscan_free(&s);
        free(c);
    }
    size_t flips = 0;
    for (size_t at = c0; at < len; at++)
        for (int bit = 0; bit < 8; bit++, flips++) {
            d[at] ^= (unsigned char)(1u << bit);
            assert_int_equal(weft__jscan_parse(&s, d, len, fx->err, sizeof fx->err), 0);
            assert_int_equal(weft__jscan_valid_len(s), c0);
            assert_int_equal(weft__jscan_dropped(s), len - c0);
            expect_none(s, false);
            weft__jscan_free(&s);
            d[at] ^= (unsigned char)(1u << bit);
        }
    assert_int_equal(flips, (len - c0) * 8);

    /* Sealed correctly but malformed: n does not match the payload. */
    static const struct {
        uint32_t plen, n;
    } bad[] = {{8 + 3 * 8, 2}, {8 + 3 * 8, 4}, {8 + 3 * 8 + 4, 3},
               {4, 0},         {0, 0},         {8 + 3 * 8 - 1, 3}};
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        size_t n = c0 + WEFT__JREC_HDR + bad[t].plen;
        unsigned char *c = calloc(1, n);
        assert_non_null(c);
        memcpy(c, d, len < n ? len : n);
        put32(c + c0 + 4, bad[t].plen);
        if (bad[t].plen >= 8)
            put32(c + c0 + WEFT__JREC_HDR + 4, bad[t].n);
        reseal(c + c0);
        assert_int_equal(weft__jscan_parse(&s, c, n, fx->err, sizeof fx->err), 0);
        assert_int_equal(weft__jscan_valid_len(s), c0);
        assert_non_null(strstr(weft__jscan_tail(s), "bad CRASH record"));
        expect_none(s, false);
        weft__jscan_free(&s);
        free(c);
    }

    /* On a file: resume cuts a torn CRASH record off; appending works. */
    spit(fx->path, d, len - 3);
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_dropped(s), len - 3 - c0);
    assert_int_equal(file_size(fx->path), c0);
    weft__jscan_free(&s);
    put_crash(j, SIGSEGV, y, 3);
    assert_int_equal(weft__journal_close(&j), 0);
    snap_t sn = snap(fx->path);
    assert_int_equal(weft__jscan_dropped(sn.s), 0);
    np = weft__jscan_poison(sn.s, &idx);
    expect_set(idx, np, x, 2);
    snap_free(&sn);
    free(d);
}

/* Two crashes naming X among others: poison is exactly X. */
static void crash_twice_poison(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j;
    const uint64_t *idx;
    j = create(fx);
    const uint64_t a[] = {7, 40, 41, 4096 * 3 + 1}, b1[] = {90, 4096 * 3},
                   b2[] = {41, 41};
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_window(j, 0, 100), 0);
    put_crash(j, SIGSEGV, a, 4);
    /* Other threads may still write DONE after the crash record. */
    put_items(j, 0, 5);
    assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME | WEFT__JS_CAREFUL), 0);
    assert_int_equal(weft__journal_window(j, 5, 95), 0);
    put_crash(j, SIGSEGV, b1, 2);
    put_crash(j, SIGSEGV, b2, 2);
    assert_int_equal(weft__journal_close(&j), 0);
    snap_t n = snap(fx->path);
    const uint64_t want[] = {41};
    size_t np = weft__jscan_poison(n.s, &idx);
    expect_set(idx, np, want, 1);
    size_t ns = weft__jscan_suspects(n.s, &idx);
    assert_int_equal(ns, 95);
    assert_int_equal(idx[0], 5);
    assert_int_equal(idx[94], 99);
    snap_free(&n);
}

/* kill -9 leaves no CRASH record: suspects, never poison. */
static void kill_only_sessions(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j;
    const uint64_t *idx;
    j = create(fx);
    for (uint64_t k = 1; k <= 3; k++) {
        assert_int_equal(weft__journal_session(j, k, k > 1 ? WEFT__JS_RESUME : 0), 0);
        assert_int_equal(weft__journal_window(j, 0, 50), 0);
        assert_int_equal(weft__journal_begin(j, 60), 0);
        put_items(j, 0, 10 * k);
        if (k < 2)
            continue;
        snap_t n = snap(fx->path);
        size_t ns = weft__jscan_suspects(n.s, &idx);
        assert_int_equal(ns, 50 - 10 * k + 1);
        assert_int_equal(idx[0], 10 * k);
        assert_int_equal(idx[ns - 1], 60);
        expect_none(n.s, false);
        assert_false(weft__jscan_finished(n.s));
        snap_free(&n);
    }
    /* One crash after kills: still no poison; the next crash makes it. */
    const uint64_t c3[] = {30, 60};
    put_crash(j, SIGSEGV, c3, 2);
    snap_t n = snap(fx->path);
    expect_none(n.s, false);
    snap_free(&n);
    assert_int_equal(weft__journal_session(j, 4, WEFT__JS_RESUME | WEFT__JS_CAREFUL), 0);
    assert_int_equal(weft__journal_begin(j, 60), 0);
    const uint64_t c4[] = {60};
    put_crash(j, SIGSEGV, c4, 1);
    n = snap(fx->path);
    size_t np = weft__jscan_poison(n.s, &idx);
    expect_set(idx, np, c4, 1);
    snap_free(&n);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* Poison takes the last two sessions that count (those that started items
 * or ended): a kill or a STOP between two crashes breaks the row; a session
 * killed before it started any item does not. */
static void crash_row(void **state)
{
    fixture_t *fx = *state;
    const uint64_t x[] = {9, 11}, z[] = {9, 12};
    const uint64_t nine[] = {9};
    enum { KILL_RUNNING, KILL_IN_INIT, STOPPED, CRASHED };
    for (int mid = KILL_RUNNING; mid <= CRASHED; mid++) {
        weft__journal_t *j;
        const uint64_t *idx;
        assert_int_equal(
            weft__journal_create(&j, fx->path, &hdr, fx->err, sizeof fx->err), 0);
        assert_int_equal(weft__journal_session(j, 1, 0), 0);
        assert_int_equal(weft__journal_window(j, 0, 16), 0);
        put_crash(j, SIGSEGV, x, 2);
        assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
        if (mid != KILL_IN_INIT)
            assert_int_equal(weft__journal_window(j, 0, 16), 0);
        if (mid == STOPPED)
            assert_int_equal(weft__journal_stop(j), 0);
        if (mid == CRASHED)
            put_crash(j, SIGSEGV, nine, 1);
        assert_int_equal(weft__journal_session(j, 3, WEFT__JS_RESUME), 0);
        assert_int_equal(weft__journal_window(j, 8, 8), 0);
        put_crash(j, SIGSEGV, z, 2);
        assert_int_equal(weft__journal_close(&j), 0);
        snap_t n = snap(fx->path);
        assert_int_equal(weft__jscan_sessions(n.s), 3);
        size_t ns = weft__jscan_suspects(n.s, &idx);
        assert_int_equal(ns, 8);
        assert_int_equal(idx[0], 8);
        size_t np = weft__jscan_poison(n.s, &idx);
        if (mid == KILL_IN_INIT || mid == CRASHED)
            expect_set(idx, np, nine, 1);
        else
            expect_none(n.s, false);
        snap_free(&n);
    }
}

/* ---- locking ------------------------------------------------------------------ */

static void lock_in_process(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j, *j2 = (weft__journal_t *)fx;
    weft__jscan_t *s = (weft__jscan_t *)fx;
    j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_items(j, 0, 10);
    size_t before = file_size(fx->path);

    char want[256];
    snprintf(want, sizeof want, "%s is in use by another weft run (pid %ld): it is running now",
             fx->path, (long)getpid());
    long holder = -1;
    assert_true(weft__in_use(fx->path, &holder));
    assert_int_equal(holder, getpid());
    assert_int_equal(weft__journal_create(&j2, fx->path, &hdr, fx->err, sizeof fx->err),
                     -EWOULDBLOCK);
    assert_null(j2);
    assert_string_equal(fx->err, want);
    /* The failed create did not truncate the running job's journal. */
    assert_int_equal(file_size(fx->path), before);
    fx->err[0] = '\0';
    assert_int_equal(weft__journal_resume(&j2, &s, fx->path, fx->err, sizeof fx->err),
                     -EWOULDBLOCK);
    assert_null(j2);
    assert_null(s);
    assert_string_equal(fx->err, want);

    assert_int_equal(weft__journal_close(&j), 0);
    assert_false(weft__in_use(fx->path, &holder));
    assert_int_equal(holder, 0);
    assert_int_equal(weft__journal_resume(&j2, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_items(s), 10);
    weft__jscan_free(&s);
    assert_int_equal(weft__journal_close(&j2), 0);
}

static void lock_across_processes(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_close(&j), 0);
    for (int round = 0; round < 5; round++) {
        int up[2], down[2];
        assert_int_equal(pipe(up), 0);
        assert_int_equal(pipe(down), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            weft__journal_t *cj;
            weft__jscan_t *cs;
            char e[256];
            char c =
                weft__journal_resume(&cj, &cs, fx->path, e, sizeof e) == 0 ? 'L' : 'E';
            if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
                _exit(2);
            weft__jscan_free(&cs);
            _exit(weft__journal_close(&cj) == 0 ? 0 : 3);
        }
        fx->child = pid;
        char c = 0;
        assert_int_equal(read(up[0], &c, 1), 1);
        assert_int_equal(c, 'L');
        weft__jscan_t *s;
        assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                         -EWOULDBLOCK);
        assert_non_null(strstr(fx->err, "is in use by another weft run"));
        assert_int_equal(
            weft__journal_create(&j, fx->path, &hdr, fx->err, sizeof fx->err),
            -EWOULDBLOCK);
        assert_int_equal(write(down[1], "x", 1), 1);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        fx->child = 0;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(up[0]), close(up[1]), close(down[0]), close(down[1]);
        /* The child is gone: the lock went with it. */
        assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                         0);
        weft__jscan_free(&s);
        assert_int_equal(weft__journal_close(&j), 0);
    }
}

/* ---- atomic create ---------------------------------------------------------------- */

static const weft__jheader_t hdr2 = {
    .config = "run.items=0..10\nrun.seed=8\n",
    .plugin = "noise_png 1.1 xxh=fedcba9876543210",
    .items = "range:0:10 count=10 fp=43",
};

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void create_replaces(void **state)
{
    fixture_t *fx = *state;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.new", fx->path);
    weft__journal_t *j = create(fx);
    assert_false(exists(tmp));
    for (uint64_t k = 1; k <= 2; k++) {
        assert_int_equal(weft__journal_session(j, k, k > 1 ? WEFT__JS_RESUME : 0), 0);
        put_items(j, 5 * (k - 1), 5);
    }
    assert_int_equal(weft__journal_end(j, 10, 0), 0);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t old_len;
    unsigned char *old = slurp(fx->path, &old_len);
    /* A reader of the old file: create must not rewrite it in place. */
    int ofd = open(fx->path, O_RDONLY | O_CLOEXEC);
    assert_true(ofd >= 0);

    assert_int_equal(weft__journal_create(&j, fx->path, &hdr2, fx->err, sizeof fx->err),
                     0);
    assert_false(exists(tmp));
    size_t new_hdr = file_size(fx->path);
    assert_true(new_hdr < old_len);
    unsigned char *seen = malloc(old_len + 1);
    assert_non_null(seen);
    assert_int_equal(pread(ofd, seen, old_len + 1, 0), (ssize_t)old_len);
    assert_memory_equal(seen, old, old_len);
    free(seen);
    close(ofd);
    /* The new journal holds its lock from the start. */
    weft__journal_t *j2;
    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j2, &s, fx->path, fx->err, sizeof fx->err),
                     -EWOULDBLOCK);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_items(j, 100, 2);
    assert_int_equal(weft__journal_end(j, 2, 0), 0);
    assert_int_equal(weft__journal_close(&j), 0);

    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_sessions(s), 1);
    assert_int_equal(weft__jscan_items(s), 2);
    assert_true(weft__jscan_finished(s));
    assert_false(weft__jscan_get(s, 0, NULL));
    expect_entry(s, 100, 300);
    assert_string_equal(weft__jscan_header(s)->config, hdr2.config);
    assert_string_equal(weft__jscan_header(s)->items, hdr2.items);
    weft__jscan_free(&s);
    assert_int_equal(weft__journal_close(&j), 0);
    free(old);

    /* Over a file that is not a journal, and with a stale PATH.new left by a
     * killed create. */
    spit(fx->path, "not a journal\n", 14);
    spit(tmp, "half a header", 13);
    j = create(fx);
    assert_false(exists(tmp));
    assert_int_equal(weft__journal_close(&j), 0);
    snap_t n = snap(fx->path);
    assert_string_equal(weft__jscan_header(n.s)->plugin, hdr.plugin);
    assert_int_equal(weft__jscan_sessions(n.s), 0);
    snap_free(&n);
}

/* Another open file description holds the lock: create fails and leaves the
 * old journal byte-identical (same file, same bytes, no PATH.new). */
static void create_locked_leaves_old(void **state)
{
    fixture_t *fx = *state;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.new", fx->path);
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_items(j, 0, 20);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t before_len;
    unsigned char *before = slurp(fx->path, &before_len);
    struct stat st0, st1;
    assert_int_equal(stat(fx->path, &st0), 0);

    int lfd = open(fx->path, O_RDWR | O_CLOEXEC);
    assert_true(lfd >= 0);
    assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), 0);
    for (int k = 0; k < 3; k++) {
        j = (weft__journal_t *)fx;
        assert_int_equal(
            weft__journal_create(&j, fx->path, &hdr2, fx->err, sizeof fx->err),
            -EWOULDBLOCK);
        assert_null(j);
        assert_non_null(strstr(fx->err, "is in use by another weft run"));
        assert_false(exists(tmp));
        assert_int_equal(stat(fx->path, &st1), 0);
        assert_int_equal(st1.st_ino, st0.st_ino);
        size_t after_len;
        unsigned char *after = slurp(fx->path, &after_len);
        assert_int_equal(after_len, before_len);
        assert_memory_equal(after, before, before_len);
        free(after);
    }
    close(lfd); /* the lock goes with the last descriptor of that open */
    assert_int_equal(weft__journal_create(&j, fx->path, &hdr2, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(weft__journal_close(&j), 0);
    snap_t n = snap(fx->path);
    assert_string_equal(weft__jscan_header(n.s)->config, hdr2.config);
    snap_free(&n);
    free(before);
}

/* A child creates journals over and over (alternating headers) and is
 * killed at arbitrary moments; meanwhile this process resumes whenever it
 * can.  At every moment PATH is a whole journal (never a cut header), and a
 * resume that succeeds holds the lock on the file PATH names, not on one a
 * create has just replaced. */
static void create_kill_race(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_close(&j), 0);
    uint64_t rng = 4242;
    size_t resumed = 0, busy = 0, created = 0;
    for (int round = 0; round < 8; round++) {
        int up[2];
        assert_int_equal(pipe(up), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(up[0]);
            for (unsigned k = 0;; k++) {
                weft__journal_t *cj;
                char e[256];
                if (weft__journal_create(&cj, fx->path, k % 2 ? &hdr2 : &hdr, e,
                                         sizeof e) == 0) {
                    weft__journal_session(cj, k, 0);
                    weft__journal_window(cj, 0, 4);
                    weft__journal_close(&cj);
                    if (write(up[1], "c", 1) != 1)
                        _exit(2);
                }
            }
        }
        fx->child = pid;
        close(up[1]);
        assert_int_equal(fcntl(up[0], F_SETFL, O_NONBLOCK), 0);
        /* Run until the child made `target` journals, then a few more
         * resumes, then kill it wherever it is. */
        size_t target = 2 + mix(rng++) % 8, seen = 0;
        int tail = (int)(mix(rng++) % 20);
        while (seen < target || tail-- > 0) {
            char c[64];
            ssize_t got = read(up[0], c, sizeof c);
            if (got > 0)
                seen += (size_t)got;
            weft__jscan_t *s;
            int rc = weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err);
            if (rc == -EWOULDBLOCK) {
                busy++;
                continue;
            }
            if (rc)
                fail_msg("resume during creates: %d %s", rc, fx->err);
            struct stat held, named;
            assert_int_equal(fstat(weft__journal_fd(j), &held), 0);
            assert_int_equal(stat(fx->path, &named), 0);
            assert_true(held.st_ino == named.st_ino && held.st_dev == named.st_dev);
            const char *cfg = weft__jscan_header(s)->config;
            assert_true(strcmp(cfg, hdr.config) == 0 || strcmp(cfg, hdr2.config) == 0);
            resumed++;
            weft__jscan_free(&s);
            assert_int_equal(weft__journal_close(&j), 0);
            /* Unlocked readers see a whole header too. */
            snap_t n = snap(fx->path);
            snap_free(&n);
        }
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        fx->child = 0;
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        close(up[0]);
        created += seen;
        weft__jscan_t *s;
        assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                         0);
        weft__jscan_free(&s);
        assert_int_equal(weft__journal_close(&j), 0);
    }
    fprintf(stderr,
            "# create race: %zu creates, %zu resumes won, %zu found the journal busy\n",
            created, resumed, busy);
}

/* What another weft's create does at the worst moment for us: rename a
 * complete journal over the path, and (held) keep its lock. */
typedef struct swap {
    const char *from, *to;
    bool held;
    int fd;
} swap_t;

static void swap_in(void *arg)
{
    swap_t *w = arg;
    w->fd = -1;
    if (w->held) {
        w->fd = open(w->from, O_RDWR | O_CLOEXEC);
        assert_true(w->fd >= 0);
        assert_int_equal(flock(w->fd, LOCK_EX | LOCK_NB), 0);
    }
    assert_int_equal(rename(w->from, w->to), 0);
}

static void expect_held_is_named(const weft__journal_t *j, const char *path)
{
    struct stat held, named;
    assert_int_equal(fstat(weft__journal_fd(j), &held), 0);
    assert_int_equal(stat(path, &named), 0);
    assert_true(held.st_ino == named.st_ino && held.st_dev == named.st_dev);
}

/* The lock was won on a file that a create has just replaced: open_locked
 * notices and starts again on the file the name now means. */
static void lock_on_replaced_file(void **state)
{
    fixture_t *fx = *state;
    char other[160];
    snprintf(other, sizeof other, "%s/other.journal", fx->dir);
    weft__journal_t *j;
    weft__jscan_t *s;
    for (int held = 0; held <= 1; held++) {
        for (int op = 0; op < 2; op++) { /* resume, create */
            assert_int_equal(
                weft__journal_create(&j, fx->path, &hdr, fx->err, sizeof fx->err), 0);
            assert_int_equal(weft__journal_close(&j), 0);
            assert_int_equal(
                weft__journal_create(&j, other, &hdr2, fx->err, sizeof fx->err), 0);
            assert_int_equal(weft__journal_session(j, 9, 0), 0);
            assert_int_equal(weft__journal_close(&j), 0);
            size_t blen;
            unsigned char *b = slurp(other, &blen);

            swap_t w = {other, fx->path, held != 0, -1};
            flock_hook_arg = &w;
            flock_hook = swap_in;
            int rc =
                op == 0
                    ? weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err)
                    : weft__journal_create(&j, fx->path, &hdr, fx->err, sizeof fx->err);
            assert_null(flock_hook); /* the swap happened */
            if (held) {
                /* The new file is in use: refused, and left alone. */
                assert_int_equal(rc, -EWOULDBLOCK);
                assert_null(j);
                size_t len;
                unsigned char *now = slurp(fx->path, &len);
                assert_int_equal(len, blen);
                assert_memory_equal(now, b, blen);
                free(now);
                close(w.fd);
            } else if (op == 0) {
                /* The resume reads and holds the new file, not the old. */
                assert_int_equal(rc, 0);
                expect_held_is_named(j, fx->path);
                assert_string_equal(weft__jscan_header(s)->config, hdr2.config);
                assert_int_equal(weft__jscan_last_session(s, NULL), 9);
                weft__jscan_free(&s);
                assert_int_equal(weft__journal_close(&j), 0);
            } else {
                /* The create replaced the new file, and holds its own. */
                assert_int_equal(rc, 0);
                expect_held_is_named(j, fx->path);
                assert_int_equal(weft__journal_session(j, 1, 0), 0);
                assert_int_equal(weft__journal_close(&j), 0);
                snap_t n = snap(fx->path);
                assert_string_equal(weft__jscan_header(n.s)->config, hdr.config);
                assert_int_equal(weft__jscan_last_session(n.s, NULL), 1);
                snap_free(&n);
            }
            free(b);
        }
    }
}

/* ---- errors ------------------------------------------------------------------- */

static void open_errors(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j;
    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                     -ENOENT);
    assert_non_null(strstr(fx->err, "no journal"));

    spit(fx->path, "", 0);
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                     -EINVAL);
    assert_non_null(strstr(fx->err, "incomplete"));
    assert_non_null(strstr(fx->err, fx->path));

    spit(fx->path, "hello, world\n", 13);
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                     -EINVAL);
    assert_non_null(strstr(fx->err, "not a weft journal"));
    assert_int_equal(file_size(fx->path), 13); /* left alone */

    /* A future format version, correctly sealed. */
    j = create(fx);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t len;
    unsigned char *d = slurp(fx->path, &len);
    unsigned char *r = d + 8;
    size_t plen = (size_t)r[4] | (size_t)r[5] << 8 | (size_t)r[6] << 16;
    r[16] = WEFT__JOURNAL_VERSION + 1;
    memset(r + 8, 0, 8);
    uint64_t sum = XXH3_64bits(r, 16 + plen);
    for (int k = 0; k < 8; k++)
        r[8 + k] = (unsigned char)(sum >> (8 * k));
    spit(fx->path, d, len);
    free(d);
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                     -ENOTSUP);
    char want[32];
    snprintf(want, sizeof want, "version %u", WEFT__JOURNAL_VERSION + 1);
    assert_non_null(strstr(fx->err, want));

    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/folder/j", fx->dir);
    assert_int_equal(weft__journal_create(&j, bad, &hdr, fx->err, sizeof fx->err),
                     -ENOENT);
    assert_null(j);
    assert_non_null(strstr(fx->err, bad));
}

static void bad_arguments(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_window(j, 0, 0), -EINVAL);
    assert_int_equal(weft__journal_window(j, 0, WEFT__J_MAX_WINDOW + 1), -EINVAL);
    assert_int_equal(weft__journal_window(j, UINT64_MAX, 2), -EINVAL);
    assert_int_equal(weft__journal_window(j, 0, WEFT__J_MAX_WINDOW), 0);
    assert_int_equal(weft__journal_session(j, 1, 256), -EINVAL);

    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(weft__jchunk_add(&b, 1, 0, 0, 0, NULL, 0, NULL, 0), -EINVAL);
    assert_int_equal(weft__jchunk_add(&b, 1, 0, 6, 0, NULL, 0, NULL, 0), -EINVAL);
    weft__jchunk_end(&b, mark); /* no entries: removed */
    assert_int_equal(b.len, mark);
    assert_int_equal(weft__journal_append(j, b.data, b.len - mark), 0);
    /* A chunk after other bytes in the buffer. */
    assert_int_equal(weft__buf_append(&b, "junk", 4), 0);
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(mark, 4);
    assert_int_equal(weft__jchunk_add(&b, 3, 9, WEFT__J_OK, 2, "ab", 2, NULL, 0), 0);
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data + mark, b.len - mark), 0);
    weft__buf_free(&b);
    assert_int_equal(weft__journal_close(&j), 0);
    assert_int_equal(weft__journal_close(&j), 0); /* NULL-safe */
    snap_t n = snap(fx->path);
    assert_int_equal(weft__jscan_dropped(n.s), 0);
    weft__jentry_t e;
    assert_true(weft__jscan_get(n.s, 3, &e));
    assert_int_equal(e.records, 2);
    assert_memory_equal(e.bytes, "ab", 2);
    /* The window of 2^18 items is in flight: no session, so not a suspect. */
    const uint64_t *idx;
    assert_int_equal(weft__jscan_suspects(n.s, &idx), 0);
    snap_free(&n);
}

/* A write that fails (here: past RLIMIT_FSIZE) is returned and latched; the
 * half-written record is dropped by the next resume. */
static void write_error_latched(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    size_t good = file_size(fx->path);

    weft__buf_t b = {0};
    size_t mark;
    char big[900];
    memset(big, 'z', sizeof big);
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(weft__jchunk_add(&b, 0, 0, WEFT__J_OK, 1, big, sizeof big, NULL, 0),
                     0);
    weft__jchunk_end(&b, mark);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = good + 100;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = weft__journal_append(j, b.data, b.len);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, -EFBIG);
    assert_int_equal(file_size(fx->path), good + 100); /* a short write happened */

    /* Latched: nothing more is written. */
    assert_int_equal(weft__journal_end(j, 0, 0), -EFBIG);
    assert_int_equal(weft__journal_append(j, b.data, b.len), -EFBIG);
    assert_int_equal(weft__journal_sync(j), -EFBIG);
    assert_int_equal(file_size(fx->path), good + 100);
    assert_int_equal(weft__journal_close(&j), -EFBIG);
    weft__buf_free(&b);

    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_valid_len(s), good);
    assert_int_equal(weft__jscan_dropped(s), 100);
    assert_non_null(strstr(weft__jscan_tail(s), "past the end"));
    assert_int_equal(file_size(fx->path), good);
    weft__jscan_free(&s);
    assert_int_equal(weft__journal_sync(j), 0);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* ---- format 2: DONE entries with varints ------------------------------------- */

/* One DONE chunk of the given entries, appended to j. */
typedef struct dentry {
    uint64_t index;
    unsigned status;
    uint32_t records;
    const char *bytes, *msg;
    size_t len, msg_len; /* 0: strlen */
} dentry_t;

static void put_entries(weft__journal_t *j, const dentry_t *v, size_t n)
{
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    for (size_t k = 0; k < n; k++) {
        size_t len = v[k].len ? v[k].len : strlen(v[k].bytes);
        size_t ml = v[k].msg_len ? v[k].msg_len : strlen(v[k].msg);
        assert_int_equal(weft__jchunk_add(&b, v[k].index, mix(k), v[k].status, v[k].records,
                                          v[k].bytes, len, v[k].msg, ml),
                         0);
    }
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data + mark, b.len - mark), 0);
    weft__buf_free(&b);
}

static void expect_dentry(const weft__jscan_t *s, const dentry_t *d, uint64_t hash)
{
    weft__jentry_t e;
    if (!weft__jscan_get(s, d->index, &e))
        fail_msg("index %llu missing", (unsigned long long)d->index);
    size_t len = d->len ? d->len : strlen(d->bytes);
    size_t ml = d->status == WEFT__J_OK ? 0 : d->msg_len ? d->msg_len : strlen(d->msg);
    assert_int_equal(e.index, d->index);
    assert_int_equal(e.item_hash, hash);
    assert_int_equal(e.status, d->status);
    assert_int_equal(e.records, d->records);
    assert_int_equal(e.len, len);
    assert_non_null(e.bytes);
    if (len)
        assert_memory_equal(e.bytes, d->bytes, len);
    assert_int_equal(e.msg_len, ml);
    if (ml)
        assert_memory_equal(e.msg, d->msg, ml);
}

/* Index deltas of every kind in one chunk (negative, zero, 0 -> 2^63, the
 * largest both ways), every status, bytes or none, messages, multi-byte
 * varints; read back from memory and through a resume. */
static void varint_round_trip(void **state)
{
    fixture_t *fx = *state;
    static char long_bytes[300], long_msg[200];
    memset(long_bytes, 'b', sizeof long_bytes);
    memset(long_msg, 'm', sizeof long_msg);
    const uint64_t top = (uint64_t)1 << 63;
    const dentry_t v[] = {
        {10, WEFT__J_OK, 1, "ten", "", 0, 0},            /* base: delta 0 */
        {10, WEFT__J_FAILED, 0, "", "again", 0, 0},      /* delta 0: the later wins */
        {5, WEFT__J_OK, 1, "", "", 0, 0},                /* -5, no bytes */
        {0, WEFT__J_CRASHED, 0, "", "c", 0, 0},          /* -5 */
        {top, WEFT__J_OK, 7, "big", "", 0, 0},           /* 0 -> 2^63 */
        {UINT64_MAX, WEFT__J_TIMEDOUT, 2, "x", "late", 0, 0},
        {1, WEFT__J_QUARANTINED, 0, "", "q", 0, 0},      /* -(2^64 - 2) */
        {top - 1, WEFT__J_OK, UINT32_MAX, long_bytes, "", sizeof long_bytes, 0},
        {0x7F, WEFT__J_FAILED, 128, long_bytes, long_msg, 129, sizeof long_msg},
        {0x80, WEFT__J_OK, 1, "ok", "ignored: OK", 0, 0}, /* an OK keeps no message */
    };
    const size_t n = sizeof v / sizeof v[0];
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    size_t at = file_size(fx->path);
    put_entries(j, v, n);
    assert_int_equal(weft__journal_end(j, 1, 1), 0);
    assert_int_equal(weft__journal_close(&j), 0);

    size_t len;
    unsigned char *d = slurp(fx->path, &len);
    assert_int_equal(get32(d + at), WEFT__JREC_MAGIC | WEFT__JREC_DONE);
    assert_int_equal(get32(d + at + 16), n);
    assert_int_equal(get64(d + at + 20), 10); /* base: the first index */
    assert_int_equal(d[at + 28], 0);          /* its delta */
    free(d);

    for (int pass = 0; pass < 2; pass++) {
        weft__jscan_t *s;
        snap_t sn = {0};
        if (pass == 0) {
            sn = snap(fx->path);
            s = sn.s;
        } else {
            assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                             0);
        }
        assert_int_equal(weft__jscan_dropped(s), 0);
        assert_true(weft__jscan_finished(s));
        assert_int_equal(weft__jscan_items(s), n - 1);
        for (size_t k = 1; k < n; k++)
            expect_dentry(s, &v[k], mix(k));
        assert_false(weft__jscan_get(s, 2, NULL));
        assert_false(weft__jscan_get(s, top + 1, NULL));
        if (pass == 0) {
            snap_free(&sn);
        } else {
            weft__jscan_free(&s);
            assert_int_equal(weft__journal_close(&j), 0);
        }
    }
}

/* The point of format 2: a run's entries (index + 1, OK, one record, short
 * output, no message) cost 12 bytes each besides their output. */
static void compact_entries(void **state)
{
    (void)state;
    enum { N = 1000 };
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__buf_append(&b, "xy", 2), 0); /* a chunk not at 0 */
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(mark, 2);
    for (uint64_t i = 5000; i < 5000 + N; i++)
        assert_int_equal(weft__jchunk_add(&b, i, mix(i), WEFT__J_OK, 1, "1234567\n", 8,
                                          NULL, 0),
                         0);
    weft__jchunk_end(&b, mark);
    assert_int_equal(b.len - mark, WEFT__JREC_HDR + 12 + (size_t)N * (12 + 8));
    assert_int_equal(get32((unsigned char *)b.data + mark + 16), N);
    assert_int_equal(get64((unsigned char *)b.data + mark + 20), 5000);
    assert_int_equal(get64((unsigned char *)b.data + mark + 8),
                     record_checksum((unsigned char *)b.data + mark));
    assert_memory_equal(b.data, "xy", 2);
    weft__buf_free(&b);
}

/* Raw record building, for payloads the writer never makes. */
typedef struct raw {
    unsigned char d[256];
    size_t n;
} raw_t;

static void raw_put(raw_t *r, const void *p, size_t n)
{
    assert_true(r->n + n <= sizeof r->d);
    memcpy(r->d + r->n, p, n);
    r->n += n;
}

static void raw_le(raw_t *r, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++)
        r->d[r->n++] = (unsigned char)(v >> (8 * k));
}

/* Appends a sealed record of `kind` with the payload p[0, n). */
static void raw_record(raw_t *out, unsigned kind, const raw_t *p)
{
    size_t at = out->n;
    raw_le(out, WEFT__JREC_MAGIC | kind, 4);
    raw_le(out, p->n, 4);
    raw_le(out, 0, 8);
    raw_put(out, p->d, p->n);
    reseal(out->d + at);
}

typedef struct dcase {
    const char *what;
    uint64_t base;
    const char *delta; /* the index delta's bytes, as written */
    size_t delta_len;
    unsigned status;
    const char *records;
    size_t records_len;
    const char *len; /* the len varint; then `have` bytes of output */
    size_t len_len, have;
    bool ok;           /* accepted? */
    uint64_t index;    /* then: the entry's index */
    uint32_t recs;     /* and its records */
    uint32_t n;        /* the entry count written (0: 1) */
} dcase_t;

/* Each case: a real journal (header, SESSION, a good DONE of item 0), then
 * a sealed DONE record of one hand-made entry, then a good END.  A bad entry
 * ends the journal there, like a torn record; a good one is read. */
static void varint_refused(void **state)
{
    fixture_t *fx = *state;
    const uint64_t M = UINT64_MAX;
#define B(s) s, sizeof(s) - 1
    const dcase_t cases[] = {
        {"control", 100, B("\x02"), WEFT__J_OK, B("\x01"), B("\x03"), 3, true, 101, 1, 0},
        {"records u32 max", 0, B("\x00"), WEFT__J_OK, B("\xff\xff\xff\xff\x0f"), B("\x00"), 0,
         true, 0, UINT32_MAX, 0},
        {"records 2^32", 0, B("\x00"), WEFT__J_OK, B("\x80\x80\x80\x80\x10"), B("\x00"), 0,
         false, 0, 0, 0},
        {"records 6 bytes", 0, B("\x00"), WEFT__J_OK, B("\x81\x80\x80\x80\x80\x00"),
         B("\x00"), 0, false, 0, 0, 0},
        {"records not minimal", 0, B("\x00"), WEFT__J_OK, B("\x81\x00"), B("\x00"), 0, false,
         0, 0, 0},
        {"len past the end", 0, B("\x00"), WEFT__J_OK, B("\x01"), B("\x64"), 3, false, 0, 0,
         2},
        {"len 2^32 - 1", 0, B("\x00"), WEFT__J_OK, B("\x01"), B("\xff\xff\xff\xff\x0f"), 3,
         false, 0, 0, 2},
        {"len cut", 0, B("\x00"), WEFT__J_OK, B("\x01"), B("\x83"), 0, false, 0, 0, 0},
        {"bytes left over", 0, B("\x00"), WEFT__J_OK, B("\x01"), B("\x02"), 3, false, 0, 0, 0},
        {"status 6", 0, B("\x00"), 6, B("\x01"), B("\x00"), 0, false, 0, 0, 0},
        {"delta 2^64 - 1 from 0", 0, B("\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x03"),
         WEFT__J_OK, B("\x01"), B("\x00"), 0, true, M, 1, 0},
        {"delta 11 bytes", 0, B("\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x83\x00"), WEFT__J_OK,
         B("\x01"), B("\x00"), 0, false, 0, 0, 0},
        {"delta over 65 bits", 0, B("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x04"), WEFT__J_OK,
         B("\x01"), B("\x00"), 0, false, 0, 0, 0},
        {"delta not minimal", 7, B("\x80\x00"), WEFT__J_OK, B("\x01"), B("\x00"), 0, false,
         0, 0, 0},
        {"delta not minimal, 3 bytes", 7, B("\x82\x80\x00"), WEFT__J_OK, B("\x01"), B("\x00"),
         0, false, 0, 0, 0},
        {"delta wraps up", M, B("\x02"), WEFT__J_OK, B("\x01"), B("\x00"), 0, false, 0, 0, 0},
        {"delta to the top", M, B("\x00"), WEFT__J_OK, B("\x01"), B("\x00"), 0, true, M, 1, 0},
        {"delta wraps down", 0, B("\x01"), WEFT__J_OK, B("\x01"), B("\x00"), 0, false, 0, 0, 0},
        {"delta down to 0", 5, B("\x09"), WEFT__J_OK, B("\x01"), B("\x00"), 0, true, 0, 1, 0},
        {"delta below 0", 5, B("\x0b"), WEFT__J_OK, B("\x01"), B("\x00"), 0, false, 0, 0, 0},
    };
#undef B
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_items(j, 0, 1);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t plen;
    unsigned char *prefix = slurp(fx->path, &plen);

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const dcase_t *k = &cases[c];
        raw_t p = {.n = 0}, tail = {.n = 0}, end = {.n = 0};
        raw_le(&p, k->n ? k->n : 1, 4); /* more than there are: the reader stops */
        raw_le(&p, k->base, 8);
        raw_put(&p, k->delta, k->delta_len);
        raw_le(&p, 0x1234, 8);
        raw_le(&p, k->status, 1);
        raw_put(&p, k->records, k->records_len);
        raw_put(&p, k->len, k->len_len);
        raw_put(&p, "abc", k->have);
        raw_record(&tail, WEFT__JREC_DONE, &p);
        raw_le(&end, 1, 8);
        raw_le(&end, 0, 8);
        raw_record(&tail, WEFT__JREC_END, &end);

        size_t n = plen + tail.n;
        unsigned char *d = malloc(n); /* exact size, for ASan */
        assert_non_null(d);
        memcpy(d, prefix, plen);
        memcpy(d + plen, tail.d, tail.n);
        weft__jscan_t *s;
        assert_int_equal(weft__jscan_parse(&s, d, n, fx->err, sizeof fx->err), 0);
        if (weft__jscan_valid_len(s) != (k->ok ? n : plen))
            fail_msg("%s: valid %zu of %zu", k->what, weft__jscan_valid_len(s), n);
        assert_true(weft__jscan_get(s, 0, NULL) || k->ok); /* the good one stays */
        if (k->ok) {
            weft__jentry_t e;
            assert_true(weft__jscan_get(s, k->index, &e));
            assert_int_equal(e.item_hash, 0x1234);
            assert_int_equal(e.records, k->recs);
            assert_true(weft__jscan_finished(s));
        } else {
            assert_string_equal(weft__jscan_tail(s) + strlen(weft__jscan_tail(s)) - 15,
                                "bad DONE record");
            assert_false(weft__jscan_finished(s));
        }
        weft__jscan_free(&s);
        if (c == 5) { /* through a resume, once: truncated there */
            spit(fx->path, d, n);
            assert_int_equal(
                weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
            assert_int_equal(weft__jscan_dropped(s), n - plen);
            assert_int_equal(file_size(fx->path), plen);
            weft__jscan_free(&s);
            assert_int_equal(weft__journal_close(&j), 0);
        }
        free(d);
    }
    free(prefix);
}

/* A journal of format 1 (an older weft): refused with a message that says
 * what to do; the file is left alone. */
static void format1_refused(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_items(j, 0, 3);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t len;
    unsigned char *d = slurp(fx->path, &len);
    assert_int_equal(get32(d + 8 + 16), WEFT__JOURNAL_VERSION);
    d[8 + 16] = 1;
    reseal(d + 8);
    spit(fx->path, d, len);
    static const char want[] =
        "journal format 1 (an older weft): finish it with that weft, or start over with "
        "--restart";
    weft__jscan_t *s = (weft__jscan_t *)d;
    assert_int_equal(weft__jscan_parse(&s, d, len, fx->err, sizeof fx->err), -ENOTSUP);
    assert_null(s);
    assert_string_equal(fx->err, want);
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err),
                     -ENOTSUP);
    assert_null(j);
    assert_null(s);
    assert_non_null(strstr(fx->err, fx->path));
    assert_non_null(strstr(fx->err, want));
    assert_int_equal(file_size(fx->path), len);
    free(d);
}

/* ---- header diff ---------------------------------------------------------------- */

static void header_diff(void **state)
{
    (void)state;
    char out[1024];
    weft__jheader_t was = {
        .config = "run.items=0..10\nrun.seed=7\nargs.level=1\nargs.name=a=b\n",
        .plugin = "noise_png 1.0 xxh=aa",
        .items = "range:0:10 count=10 fp=1",
    };
    weft__jheader_t now = was;
    assert_int_equal(weft__jheader_diff(&was, &now, out, sizeof out), 0);
    assert_string_equal(out, "");

    now.config = "args.level=3\nrun.items=0..10\nargs.name=a=b\nargs.size=4\n";
    assert_int_equal(weft__jheader_diff(&was, &now, out, sizeof out), 3);
    assert_string_equal(out, "config: [run] seed: 7 -> (unset)\n"
                             "config: [args] level: 1 -> 3\n"
                             "config: [args] size: (unset) -> 4\n");

    now = was;
    now.plugin = "noise_png 1.1 xxh=bb";
    now.items = "range:0:11 count=11 fp=2";
    assert_int_equal(weft__jheader_diff(&was, &now, out, sizeof out), 2);
    assert_string_equal(out,
                        "plugin: noise_png 1.0 xxh=aa -> noise_png 1.1 xxh=bb\n"
                        "items: range:0:10 count=10 fp=1 -> range:0:11 count=11 fp=2\n");

    /* A value containing '=' and one line without one. */
    now = was;
    now.config = "run.items=0..10\nrun.seed=7\nargs.level=1\nargs.name=a=c\nodd line\n";
    assert_int_equal(weft__jheader_diff(&was, &now, out, sizeof out), 2);
    assert_string_equal(out, "config: [args] name: a=b -> a=c\n"
                             "config: line added: odd line\n");

    /* Cut output: still terminated, count unchanged. */
    now.plugin = "other";
    assert_int_equal(weft__jheader_diff(&was, &now, out, 12), 3);
    assert_int_equal(strlen(out), 11);
    assert_int_equal(weft__jheader_diff(&was, &now, NULL, 0), 3);
    /* The header a journal stored compares equal to the one it was made with. */
    weft__jheader_t empty = {NULL, NULL, NULL};
    assert_int_equal(weft__jheader_diff(&empty, &empty, out, sizeof out), 0);
}

/* ---- large -------------------------------------------------------------------- */

#define LARGE_N 1000000u

static void large_scan(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    weft__buf_t b = {0};
    for (uint64_t first = 0; first < LARGE_N; first += WEFT__J_MAX_WINDOW) {
        uint64_t end =
            first + WEFT__J_MAX_WINDOW < LARGE_N ? first + WEFT__J_MAX_WINDOW : LARGE_N;
        assert_int_equal(weft__journal_window(j, first, end - first), 0);
        for (uint64_t c = first; c < end; c += 4096) {
            size_t mark;
            b.len = 0;
            assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
            for (uint64_t i = c; i < c + 4096 && i < end; i++) {
                /* Stored in reverse within a chunk: order must not matter. */
                uint64_t k = c + (c + 4096 < end ? c + 4096 : end) - 1 - i;
                unsigned char v[8];
                for (int q = 0; q < 8; q++)
                    v[q] = (unsigned char)(k >> (8 * q));
                assert_int_equal(
                    weft__jchunk_add(&b, k, mix(k), WEFT__J_OK, 1, v, sizeof v, NULL, 0),
                    0);
            }
            weft__jchunk_end(&b, mark);
            assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
        }
    }
    weft__buf_free(&b);
    assert_int_equal(weft__journal_end(j, LARGE_N, 0), 0);
    assert_int_equal(weft__journal_close(&j), 0);

    double t0 = weft__mono_s();
    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    double resume_ms = (weft__mono_s() - t0) * 1e3;
    assert_int_equal(weft__jscan_items(s), LARGE_N);
    assert_true(weft__jscan_finished(s));
    /* The memory bound: at most 5 bytes per item for the dense indices a
     * run writes (4, and 8 per 4096; it was 8 a u64 per item, 80 MB for
     * 10^7 items), on top of the header texts. */
    size_t mem = weft__jscan_memory(s);
    assert_true(mem <= (size_t)LARGE_N * 5);
    assert_true(mem >= (size_t)LARGE_N * 4);
    for (uint64_t i = 0; i < LARGE_N; i++) {
        weft__jentry_t e;
        assert_true(weft__jscan_get(s, i, &e));
        assert_int_equal(e.index, i);
        assert_int_equal(e.item_hash, mix(i));
        assert_int_equal(e.len, 8);
        const unsigned char *v = e.bytes;
        uint64_t got = 0;
        for (int q = 0; q < 8; q++)
            got |= (uint64_t)v[q] << (8 * q);
        assert_int_equal(got, i);
    }
    assert_false(weft__jscan_get(s, LARGE_N, NULL));
    fprintf(stderr,
            "# large: %u entries, %zu bytes, resume+scan %.1f ms, %zu bytes of index\n",
            LARGE_N, weft__jscan_valid_len(s), resume_ms, mem);
    weft__jscan_free(&s);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* A block of 4096 indices whose entries lie more than 4 GiB apart in the
 * journal: the dense index's 32-bit deltas do not reach that far, and those
 * entries are found in the sorted pairs instead.  The journal is built in
 * memory: between the entries, one DONE record of 4 GiB, all zeros but its
 * head, in a mapping whose zeros are never written (so never resident). */
static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static void far_block(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_one(j, 0, WEFT__J_OK, "zero", "");
    put_one(j, 2, WEFT__J_FAILED, "", "two");
    assert_int_equal(weft__journal_close(&j), 0);
    size_t head_len;
    unsigned char *head = slurp(fx->path, &head_len);

    /* The big record: DONE, n = 1, base = 3; the entry: delta 0, item_hash,
     * status, records = 1, len (5-byte varint), then len zero bytes. */
    const size_t fill = (size_t)UINT32_MAX - 64;
    const size_t big_plen = 12 + 1 + 8 + 1 + 1 + 5 + fill;
    const size_t cap = head_len + WEFT__JREC_HDR + big_plen + 4096;
    unsigned char *d = mmap(NULL, cap, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (d == MAP_FAILED) {
        free(head);
        fprintf(stderr, "# far_block: no 4 GiB mapping (%s): skipped\n", strerror(errno));
        skip();
    }
    memcpy(d, head, head_len);
    free(head);
    unsigned char *r = d + head_len, *p = r + WEFT__JREC_HDR;
    put_le(r, WEFT__JREC_MAGIC | WEFT__JREC_DONE, 4);
    put_le(r + 4, big_plen, 4);
    put_le(p, 1, 4);
    put_le(p + 4, 3, 8);
    p[12] = 0;             /* index = base */
    put_le(p + 13, 33, 8); /* item_hash */
    p[21] = WEFT__J_OK;
    p[22] = 1;         /* records */
    uint64_t v = fill; /* len */
    for (int k = 0; k < 5; k++, v >>= 7)
        p[23 + k] = (unsigned char)((v & 0x7F) | (k < 4 ? 0x80 : 0));
    XXH3_state_t *xs = XXH3_createState();
    assert_non_null(xs);
    XXH3_64bits_reset(xs);
    XXH3_64bits_update(xs, r, WEFT__JREC_HDR + big_plen); /* checksum field still 0 */
    put_le(r + 8, XXH3_64bits_digest(xs), 8);
    XXH3_freeState(xs);
    size_t len = head_len + WEFT__JREC_HDR + big_plen;

    /* After it: 1 and 0 of the first block (0 again: the later wins), and
     * 4096, the first of the next block. */
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(weft__jchunk_add(&b, 1, 11, WEFT__J_OK, 1, "one", 3, NULL, 0), 0);
    assert_int_equal(weft__jchunk_add(&b, 0, 10, WEFT__J_OK, 1, "again", 5, NULL, 0), 0);
    assert_int_equal(weft__jchunk_add(&b, 4096, 12, WEFT__J_OK, 1, "next", 4, NULL, 0),
                     0);
    weft__jchunk_end(&b, mark);
    assert_true(len + b.len <= cap);
    memcpy(d + len, b.data, b.len);
    len += b.len;
    weft__buf_free(&b);

    weft__jscan_t *s;
    assert_int_equal(weft__jscan_parse(&s, d, len, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_dropped(s), 0);
    assert_int_equal(weft__jscan_items(s), 5);
    weft__jentry_t e;
    assert_true(weft__jscan_get(s, 0, &e));
    assert_int_equal(e.item_hash, 10);
    assert_int_equal(e.len, 5);
    assert_memory_equal(e.bytes, "again", 5);
    assert_true(weft__jscan_get(s, 1, &e));
    assert_int_equal(e.item_hash, 11);
    assert_memory_equal(e.bytes, "one", 3);
    assert_true(weft__jscan_get(s, 2, &e));
    assert_int_equal(e.status, WEFT__J_FAILED);
    assert_memory_equal(e.msg, "two", 3);
    assert_true(weft__jscan_get(s, 3, &e));
    assert_int_equal(e.item_hash, 33);
    assert_int_equal(e.len, fill);
    assert_ptr_equal(e.bytes, p + 28);
    assert_true(weft__jscan_get(s, 4096, &e));
    assert_memory_equal(e.bytes, "next", 4);
    assert_false(weft__jscan_get(s, 4, &e));
    assert_false(weft__jscan_get(s, 4097, &e));
    /* Two far entries (0 twice, 1), one pair each after the sort. */
    assert_true(weft__jscan_memory(s) < 4096 * 5 + 8192);
    weft__jscan_free(&s);
    assert_int_equal(munmap(d, cap), 0);
}

/* A resume reads its journal through a mapping whose resident pages it
 * drops as it goes (journal.c: touched()): the scan and gets from several
 * threads at once, with drops among them, read every entry right. */
#define TRIM_N 400000u
#define TRIM_THREADS 4

typedef struct trim_reader {
    const weft__jscan_t *s;
    unsigned t;
    uint64_t bad;
} trim_reader_t;

static void *trim_read(void *arg)
{
    trim_reader_t *tr = arg;
    /* Each thread half of the items, in its own order of runs of 1000 items
     * as workers read (together they read every item, most more than once). */
    for (uint64_t k = 0; k < TRIM_N / 2; k++) {
        uint64_t run = (k / 1000 * 37 + tr->t * 101) % (TRIM_N / 1000);
        uint64_t i = run * 1000 + k % 1000;
        weft__jentry_t e;
        unsigned char want[64];
        size_t len = 8 + (size_t)(mix(i) % 56);
        item_fill(i, want, len);
        if (!weft__jscan_get(tr->s, i, &e) || e.item_hash != mix(i) || e.len != len ||
            memcmp(e.bytes, want, len) != 0)
            tr->bad++;
    }
    return NULL;
}

/* The resident kB of this process's mapping of the file at path (from
 * /proc/self/smaps), or -1 when it maps no such file. */
static long mapping_rss_kb(const char *path)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[4096];
    long rss = -1, kb;
    bool ours = false;
    size_t pl = strlen(path);
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\n");
        line[n] = '\0';
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) /* a mapping's header */
            ours = n > pl && strcmp(line + n - pl, path) == 0 && line[n - pl - 1] == ' ';
        else if (ours && sscanf(line, "Rss: %ld kB", &kb) == 1)
            rss = (rss < 0 ? 0 : rss) + kb;
    }
    fclose(f);
    return rss;
}

static void resume_trims_mapping(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    weft__buf_t b = {0};
    unsigned char v[64];
    for (uint64_t c = 0; c < TRIM_N; c += 1000) {
        size_t mark;
        b.len = 0;
        assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
        for (uint64_t i = c; i < c + 1000; i++) {
            size_t len = 8 + (size_t)(mix(i) % 56);
            item_fill(i, v, len);
            assert_int_equal(
                weft__jchunk_add(&b, i, mix(i), WEFT__J_OK, 1, v, len, NULL, 0), 0);
        }
        weft__jchunk_end(&b, mark);
        assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
    }
    weft__buf_free(&b);
    assert_int_equal(weft__journal_close(&j), 0);
    /* ~20 MB of journal: passes and gets drop the mapping a few times. */
    assert_true(file_size(fx->path) > 4 * WEFT__J_RESIDENT);

    /* What of the mapping may stay resident: the budget, what each reading
     * thread has not counted yet, and the pages of the entries being read
     * (journal.c). */
    const long bound_kb = (long)(WEFT__J_RESIDENT >> 10) + (TRIM_THREADS + 1) * 384;
    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_items(s), TRIM_N);
    long kb = mapping_rss_kb(fx->path);
    fprintf(stderr, "# trims: %zu bytes of journal, %ld kB of it resident after the scan",
            file_size(fx->path), kb);
    assert_true(kb >= 0 && kb <= bound_kb);
    pthread_t th[TRIM_THREADS];
    trim_reader_t tr[TRIM_THREADS];
    for (unsigned t = 0; t < TRIM_THREADS; t++) {
        tr[t] = (trim_reader_t){s, t, 0};
        assert_int_equal(pthread_create(&th[t], NULL, trim_read, &tr[t]), 0);
    }
    for (unsigned t = 0; t < TRIM_THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(tr[t].bad, 0);
    }
    kb = mapping_rss_kb(fx->path);
    fprintf(stderr, ", %ld kB after %u threads read it all\n", kb, TRIM_THREADS);
    assert_true(kb >= 0 && kb <= bound_kb);
    weft__jscan_free(&s);
    assert_int_equal(weft__journal_close(&j), 0);
}

/* ---- TIMED entries (format 3) and format 2 --------------------------------- */

/* Rewrites the journal at path's header version (and its checksum). */
static void set_version(const char *path, unsigned version)
{
    size_t len;
    unsigned char *d = slurp(path, &len);
    unsigned char *r = d + 8;
    size_t plen = (size_t)r[4] | (size_t)r[5] << 8 | (size_t)r[6] << 16;
    r[16] = (unsigned char)version;
    memset(r + 8, 0, 8);
    uint64_t sum = XXH3_64bits(r, 16 + plen);
    for (int k = 0; k < 8; k++)
        r[8 + k] = (unsigned char)(sum >> (8 * k));
    spit(path, d, len);
    free(d);
}

static void append_timed(weft__journal_t *j, uint64_t index, unsigned status, const char *m,
                         const weft__jtime_t *t)
{
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    assert_int_equal(weft__jchunk_add_timed(&b, index, index * 3, status, 1, "v", 1, m,
                                            strlen(m), t),
                     0);
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
    weft__buf_free(&b);
}

/* Every field of a TIMED entry comes back, at its extremes too, beside
 * untimed entries in the same chunk; a resume keeps format 3. */
static void timed_round_trip(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_version(j), WEFT__JOURNAL_VERSION);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    static const weft__jtime_t times[] = {
        {1, 1764806400123456u, 0},
        {3, 1, 190001},
        {0, 0, 0},
        {UINT32_MAX, UINT64_MAX, UINT64_MAX},
        {2, 1ull << 63, 127},
    };
    static const unsigned status[] = {WEFT__J_OK, WEFT__J_FAILED, WEFT__J_QUARANTINED,
                                      WEFT__J_TIMEDOUT, WEFT__J_CRASHED};
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    for (unsigned k = 0; k < 5; k++)
        assert_int_equal(weft__jchunk_add_timed(&b, k, mix(k), status[k], k, "abc", k % 4,
                                                "why", 3, &times[k]),
                         0);
    /* An untimed entry among them (item 5), then a timed one again. */
    assert_int_equal(weft__jchunk_add(&b, 5, mix(5), WEFT__J_FAILED, 1, NULL, 0, "old", 3),
                     0);
    assert_int_equal(weft__jchunk_add_timed(&b, 6, mix(6), WEFT__J_OK, 1, "x", 1, NULL, 0,
                                            &times[0]),
                     0);
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
    weft__buf_free(&b);
    assert_int_equal(weft__journal_close(&j), 0);

    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_version(s), 3);
    assert_int_equal(weft__journal_version(j), 3);
    assert_int_equal(weft__jscan_dropped(s), 0);
    weft__jentry_t e;
    for (unsigned k = 0; k < 5; k++) {
        assert_true(weft__jscan_get(s, k, &e));
        assert_true(e.timed);
        assert_int_equal(e.status, status[k]);
        assert_int_equal(e.item_hash, mix(k));
        assert_int_equal(e.records, k);
        assert_int_equal(e.len, k % 4);
        assert_memory_equal(e.bytes, "abc", k % 4);
        assert_int_equal(e.msg_len, status[k] == WEFT__J_OK ? 0 : 3);
        assert_int_equal(e.attempts, times[k].attempts);
        assert_true(e.start_us == times[k].start_us);
        assert_true(e.runtime_us == times[k].runtime_us);
    }
    assert_true(weft__jscan_get(s, 5, &e));
    assert_false(e.timed);
    assert_int_equal(e.attempts, 0);
    assert_true(e.start_us == 0 && e.runtime_us == 0);
    assert_memory_equal(e.msg, "old", 3);
    assert_true(weft__jscan_get(s, 6, &e));
    assert_true(e.timed);
    assert_true(e.start_us == times[0].start_us);
    assert_memory_equal(e.bytes, "x", 1);
    /* Reused as OK although the status byte carries the TIMED bit: a
     * suspect window over them leaves out the ok ones. */
    weft__jscan_free(&s);
    assert_int_equal(weft__journal_session(j, 2, WEFT__JS_RESUME), 0);
    assert_int_equal(weft__journal_window(j, 0, 7), 0);
    assert_int_equal(weft__journal_close(&j), 0);
    snap_t n = snap(fx->path);
    const uint64_t *idx;
    size_t ns = weft__jscan_suspects(n.s, &idx);
    assert_int_equal(ns, 5); /* 1..5, not the ok 0 and 6 */
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[4], 5);
    snap_free(&n);
}

/* A format 2 journal (before TIMED entries) is read and resumed, stays
 * format 2, and a TIMED entry in it is a bad record (a torn tail). */
static void format2_read(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    put_one(j, 0, WEFT__J_OK, "zero", "");
    put_one(j, 1, WEFT__J_FAILED, "", "exit status 3");
    assert_int_equal(weft__journal_close(&j), 0);
    set_version(fx->path, 2);

    weft__jscan_t *s;
    assert_int_equal(weft__journal_resume(&j, &s, fx->path, fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__jscan_version(s), 2);
    assert_int_equal(weft__journal_version(j), 2);
    weft__jentry_t e;
    assert_true(weft__jscan_get(s, 1, &e));
    assert_false(e.timed);
    assert_int_equal(e.status, WEFT__J_FAILED);
    assert_memory_equal(e.msg, "exit status 3", 13);
    weft__jscan_free(&s);
    size_t good = file_size(fx->path);
    weft__jtime_t t = {1, 5, 6};
    append_timed(j, 2, WEFT__J_OK, "", &t);
    assert_int_equal(weft__journal_close(&j), 0);

    snap_t n = snap(fx->path);
    assert_int_equal(weft__jscan_valid_len(n.s), good);
    assert_non_null(strstr(weft__jscan_tail(n.s), "bad DONE record"));
    assert_false(weft__jscan_get(n.s, 2, NULL));
    assert_true(weft__jscan_get(n.s, 0, NULL));
    snap_free(&n);

    /* The same bytes as format 3: the TIMED entry is good. */
    set_version(fx->path, 3);
    n = snap(fx->path);
    assert_int_equal(weft__jscan_dropped(n.s), 0);
    assert_true(weft__jscan_get(n.s, 2, &e));
    assert_true(e.timed && e.attempts == 1 && e.start_us == 5 && e.runtime_us == 6);
    snap_free(&n);
}

/* Overlong and oversized timing varints are refused like the others. */
static void timed_refused(void **state)
{
    fixture_t *fx = *state;
    weft__journal_t *j = create(fx);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    assert_int_equal(weft__journal_close(&j), 0);
    size_t good = file_size(fx->path);
    /* A hand-made DONE record of one OK entry with TIMED: index delta 0,
     * item_hash, status, records 1, len 0, then the three varints. */
    static const struct {
        unsigned char tail[16];
        size_t n;
        bool ok;
    } cases[] = {
        {{1, 2, 3}, 3, true},
        {{0x80, 0x80, 0x80, 0x80, 0x10, 0, 0}, 7, false}, /* attempts past 32 bits */
        {{1, 0x80, 0}, 3, false},                         /* overlong start       */
        {{1, 2}, 2, false},                               /* runtime missing      */
        {{1, 2, 3, 4}, 4, false},                         /* a byte too many      */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned char rec[64] = {0};
        unsigned char *p = rec + 16;
        p[0] = 1; /* n = 1, base 0 */
        unsigned char *e = p + 12;
        e[0] = 0;
        e[9] = WEFT__J_OK | WEFT__J_TIMED;
        e[10] = 1;
        e[11] = 0;
        memcpy(e + 12, cases[c].tail, cases[c].n);
        size_t plen = 12 + 12 + cases[c].n;
        uint32_t type = WEFT__JREC_MAGIC | WEFT__JREC_DONE;
        for (int k = 0; k < 4; k++) {
            rec[k] = (unsigned char)(type >> (8 * k));
            rec[4 + k] = (unsigned char)(plen >> (8 * k));
        }
        uint64_t sum = XXH3_64bits(rec, 16 + plen);
        for (int k = 0; k < 8; k++)
            rec[8 + k] = (unsigned char)(sum >> (8 * k));
        size_t len;
        unsigned char *d = slurp(fx->path, &len);
        d = realloc(d, good + 16 + plen);
        assert_non_null(d);
        memcpy(d + good, rec, 16 + plen);
        spit(fx->path, d, good + 16 + plen);
        free(d);
        snap_t n = snap(fx->path);
        weft__jentry_t x;
        assert_int_equal(weft__jscan_get(n.s, 0, &x), cases[c].ok);
        if (cases[c].ok)
            assert_true(x.attempts == 1 && x.start_us == 2 && x.runtime_us == 3);
        else
            assert_int_equal(weft__jscan_valid_len(n.s), good);
        snap_free(&n);
        assert_int_equal(truncate(fx->path, (off_t)good), 0);
    }
}

/* weft__jscan_next walks every item's latest entry in index order, over the
 * dense table and the sorted pairs alike. */
static void next_in_index_order(void **state)
{
    fixture_t *fx = *state;
    static const uint64_t dense[] = {5, 0, 3, 5, 4096 + 2};
    static const uint64_t sparse[] = {1ull << 40, 0, 7, UINT64_MAX, 7};
    const uint64_t *sets[2] = {dense, sparse};
    static const uint64_t want[2][4] = {{0, 3, 5, 4096 + 2}, {0, 7, 1ull << 40, UINT64_MAX}};
    for (int k = 0; k < 2; k++) {
        weft__journal_t *j = create(fx);
        assert_int_equal(weft__journal_session(j, 1, 0), 0);
        for (int i = 0; i < 5; i++)
            put_one(j, sets[k][i], i == 3 ? WEFT__J_OK : WEFT__J_FAILED, "", i == 3 ? "" : "m");
        assert_int_equal(weft__journal_close(&j), 0);
        snap_t n = snap(fx->path);
        weft__jentry_t e;
        int got = 0;
        for (bool have = weft__jscan_next(n.s, 0, &e); have;
             have = e.index < UINT64_MAX && weft__jscan_next(n.s, e.index + 1, &e)) {
            assert_true(got < 4);
            assert_true(e.index == want[k][got]);
            got++;
        }
        assert_int_equal(got, 4);
        /* The later entry of an item wins here too (dense 5: OK at i = 3). */
        if (k == 0) {
            assert_true(weft__jscan_next(n.s, 4, &e));
            assert_int_equal(e.index, 5);
            assert_int_equal(e.status, WEFT__J_OK);
        }
        if (k == 0) {
            assert_false(weft__jscan_next(n.s, 4096 + 3, &e));
        } else {
            assert_true(weft__jscan_next(n.s, 8, &e));
            assert_true(e.index == 1ull << 40);
        }
        snap_free(&n);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(round_trip),           T(torn_every_byte),
        T(corrupt_every_bit),    T(random_damage),
        T(later_entry_wins),     T(sparse_indices),
        T(suspects_and_poison),  T(inflight_model),
        T(inflight_many_blocks), T(inflight_limit),
        T(stop_sessions),        T(stop_validated),
        T(crash_record_format),  T(crash_records_read),
        T(crash_damaged),        T(crash_twice_poison),
        T(kill_only_sessions),   T(crash_row),
        T(lock_in_process),      T(lock_across_processes),
        T(create_replaces),      T(create_locked_leaves_old),
        T(create_kill_race),     T(lock_on_replaced_file),
        T(open_errors),          T(bad_arguments),
        T(write_error_latched),  cmocka_unit_test(header_diff),
        T(large_scan),           T(varint_round_trip),
        cmocka_unit_test(compact_entries), T(varint_refused),
        T(format1_refused),      T(far_block),
        T(resume_trims_mapping), T(timed_round_trip),
        T(format2_read),         T(timed_refused),
        T(next_in_index_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
