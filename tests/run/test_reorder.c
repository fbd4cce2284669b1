/* SPDX-License-Identifier: MIT */
/* core/run/reorder.c: blocks out of order come out in order (or all, with order
 * = any), the prefix, notes and their limit, a gap at the end, and a stress
 * of 1-8 producer threads against a concurrent drain, hundreds of rounds,
 * with uneven block sizes.  Suite "stress". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "reorder.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define ROUNDS 60
#else
#define ROUNDS 300
#endif

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/weft-reorder-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/out.jsonl", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* A block of items [first, first + count) by `owner`: records "i\n". */
static weft__block_t *make(weft__reorder_t *ro, unsigned owner, uint64_t first, uint64_t count)
{
    weft__block_t *b = weft__reorder_block_get(ro, owner);
    assert_non_null(b);
    b->first = first;
    for (uint64_t i = first; i < first + count; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof rec, "%" PRIu64 "\n", i);
        assert_int_equal(weft__buf_append(&b->bytes, rec, (size_t)n), 0);
        b->count++;
        b->records++;
        b->counts[0]++;
    }
    return b;
}

static weft__writer_t *open_out(char *path, size_t len)
{
    snprintf(path, len, "%s/out.jsonl", tmpdir);
    weft__writer_t *w = NULL;
    char err[256];
    assert_int_equal(weft__writer_open(&w, path, WEFT__FORMAT_JSONL, err, sizeof err), 0);
    return w;
}

static void close_out(weft__writer_t **w)
{
    char err[256];
    assert_int_equal(weft__writer_close(w, err, sizeof err), 0);
}

static void reorder_in_order(void **state)
{
    (void)state;
    char path[128];
    weft__writer_t *w = open_out(path, sizeof path);
    weft__reorder_t *ro;
    weft__reorder_settings_t s = {.workers = 2, .ordered = true, .writer = w};
    assert_int_equal(weft__reorder_create(&ro, &s), 0);
    weft__reorder_put(ro, make(ro, 1, 5, 3));
    weft__reorder_put(ro, make(ro, 0, 2, 3));
    assert_false(weft__reorder_drain(ro)); /* 0 and 1 missing */
    assert_int_equal(weft__reorder_prefix(ro), 0);
    assert_true(weft__reorder_pending_bytes(ro) > 0);
    weft__reorder_put(ro, make(ro, 0, 0, 2));
    assert_true(weft__reorder_drain(ro));
    assert_int_equal(weft__reorder_prefix(ro), 8);
    assert_int_equal(weft__reorder_pending_bytes(ro), 0);
    assert_true(weft__reorder_idle(ro));
    assert_int_equal(weft__reorder_finish(ro), 0);
    weft__reorder_totals_t t;
    weft__reorder_totals(ro, &t);
    assert_int_equal(t.counts[0], 8);
    weft__reorder_destroy(&ro);
    assert_null(ro);
    close_out(&w);
    char *got = slurp(path);
    assert_string_equal(got, "0\n1\n2\n3\n4\n5\n6\n7\n");
    free(got);
}

static void reorder_any_order(void **state)
{
    (void)state;
    char path[128];
    weft__writer_t *w = open_out(path, sizeof path);
    weft__reorder_t *ro;
    weft__reorder_settings_t s = {.workers = 1, .ordered = false, .writer = w};
    assert_int_equal(weft__reorder_create(&ro, &s), 0);
    weft__reorder_put(ro, make(ro, 0, 4, 2));
    /* Written at once (room made: its bytes no longer wait), but 0..3 are
     * not done, so the prefix stays; nothing new: no room made. */
    assert_true(weft__reorder_drain(ro));
    assert_int_equal(weft__reorder_prefix(ro), 0);
    assert_int_equal(weft__reorder_pending_bytes(ro), 0);
    assert_false(weft__reorder_drain(ro));
    weft__reorder_put(ro, make(ro, 0, 0, 4));
    assert_true(weft__reorder_drain(ro));
    assert_int_equal(weft__reorder_prefix(ro), 6);
    weft__reorder_destroy(&ro);
    close_out(&w);
    char *got = slurp(path);
    assert_string_equal(got, "4\n5\n0\n1\n2\n3\n"); /* as they came */
    free(got);
}

struct printed {
    uint64_t index[8];
    unsigned status[8];
    char msg[8][32];
    int n;
};

static void print_note(void *arg, uint64_t index, unsigned status, bool reused, const char *msg,
                       size_t len)
{
    struct printed *p = arg;
    (void)reused;
    assert_true(p->n < 8);
    p->index[p->n] = index;
    p->status[p->n] = status;
    snprintf(p->msg[p->n], sizeof p->msg[p->n], "%.*s", (int)len, msg);
    p->n++;
}

static void reorder_notes_in_order_and_capped(void **state)
{
    (void)state;
    struct printed p = {0};
    weft__reorder_t *ro;
    weft__reorder_settings_t s = {.workers = 1, .ordered = true, .print = print_note,
                                  .print_arg = &p, .max_printed = 3};
    assert_int_equal(weft__reorder_create(&ro, &s), 0);
    weft__block_t *b2 = weft__reorder_block_get(ro, 0);
    b2->first = 10;
    b2->count = 10;
    b2->counts[1] = 2;
    assert_int_equal(weft__block_note(b2, 12, 1, false, "twelve", 6), 0);
    assert_int_equal(weft__block_note(b2, 15, 1, true, "fifteen", 7), 0);
    weft__reorder_put(ro, b2);
    weft__block_t *b1 = weft__reorder_block_get(ro, 0);
    b1->first = 0;
    b1->count = 10;
    b1->counts[3] = 2;
    assert_int_equal(weft__block_note(b1, 1, 3, false, "one", 3), 0);
    assert_int_equal(weft__block_note(b1, 2, 3, false, "two", 3), 0);
    weft__reorder_put(ro, b1);
    assert_true(weft__reorder_drain(ro));
    /* In index order, three of four. */
    assert_int_equal(p.n, 3);
    assert_int_equal(p.index[0], 1);
    assert_string_equal(p.msg[0], "one");
    assert_int_equal(p.index[1], 2);
    assert_int_equal(p.index[2], 12);
    assert_int_equal(p.status[2], 1);
    weft__reorder_totals_t t;
    weft__reorder_totals(ro, &t);
    assert_int_equal(t.printed, 3);
    assert_int_equal(t.counts[1], 2);
    assert_int_equal(t.counts[3], 2);
    weft__reorder_destroy(&ro);
}

static void reorder_gap_at_finish(void **state)
{
    (void)state;
    weft__reorder_t *ro;
    weft__reorder_settings_t s = {.workers = 1, .ordered = true};
    assert_int_equal(weft__reorder_create(&ro, &s), 0);
    weft__reorder_put(ro, make(ro, 0, 10, 5));
    assert_int_equal(weft__reorder_finish(ro), 5);
    weft__reorder_totals_t t;
    weft__reorder_totals(ro, &t);
    assert_int_equal(t.counts[0], 5); /* they ran: counted, not written */
    assert_int_equal(weft__reorder_prefix(ro), 0);
    weft__reorder_destroy(&ro);
    weft__reorder_destroy(&ro); /* NULL ok */
    assert_int_equal(weft__reorder_create(&ro, &(weft__reorder_settings_t){.workers = 0}),
                     -EINVAL);
}

/* ---- stress -------------------------------------------------------------------- */

struct stress {
    weft__reorder_t *ro;
    uint64_t (*ranges)[2];
    size_t n_ranges;
    unsigned threads;
    _Atomic size_t next; /* ranges handed to producers, in order of this counter */
};

static void *producer(void *arg)
{
    struct stress *st = arg;
    static _Atomic unsigned ids;
    unsigned me = atomic_fetch_add(&ids, 1) % st->threads;
    for (;;) {
        size_t k = atomic_fetch_add(&st->next, 1);
        if (k >= st->n_ranges)
            break;
        weft__block_t *b = make(st->ro, me, st->ranges[k][0], st->ranges[k][1]);
        if (k % 7 == 0)
            sched_yield();
        weft__reorder_put(st->ro, b);
    }
    return NULL;
}

static void stress_round(unsigned threads, bool ordered, unsigned seed)
{
    char path[128];
    weft__writer_t *w = open_out(path, sizeof path);
    weft__reorder_t *ro;
    weft__reorder_settings_t s = {.workers = threads, .ordered = ordered, .writer = w};
    assert_int_equal(weft__reorder_create(&ro, &s), 0);
    /* Uneven ranges over [0, n), handed out nearly in order (a window of
     * shuffling, like claims that finish out of order). */
    uint64_t (*ranges)[2] = malloc(4000 * sizeof *ranges);
    assert_non_null(ranges);
    size_t n_ranges = 0;
    uint64_t n = 0;
    srand(seed);
    while (n_ranges < 4000 && n < 20000) {
        uint64_t len = (uint64_t)(rand() % 4 == 0 ? rand() % 200 + 1 : rand() % 5 + 1);
        ranges[n_ranges][0] = n;
        ranges[n_ranges][1] = len;
        n_ranges++;
        n += len;
    }
    for (size_t k = 0; k + 1 < n_ranges; k++) {
        size_t j = k + (size_t)(rand() % 8);
        if (j < n_ranges) {
            uint64_t t0 = ranges[k][0], t1 = ranges[k][1];
            ranges[k][0] = ranges[j][0], ranges[k][1] = ranges[j][1];
            ranges[j][0] = t0, ranges[j][1] = t1;
        }
    }
    struct stress st = {.ro = ro, .ranges = ranges, .n_ranges = n_ranges, .threads = threads};
    pthread_t tid[8];
    for (unsigned t = 0; t < threads; t++)
        assert_int_equal(pthread_create(&tid[t], NULL, producer, &st), 0);
    uint64_t last = 0;
    while (weft__reorder_prefix(ro) < n) {
        weft__reorder_drain(ro);
        uint64_t p = weft__reorder_prefix(ro);
        assert_true(p >= last); /* never goes back */
        last = p;
    }
    for (unsigned t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    assert_int_equal(weft__reorder_finish(ro), 0);
    weft__reorder_totals_t tot;
    weft__reorder_totals(ro, &tot);
    assert_int_equal(tot.counts[0], n);
    assert_int_equal(weft__reorder_pending_bytes(ro), 0);
    weft__reorder_destroy(&ro);
    close_out(&w);
    char *got = slurp(path);
    /* Every item once; in order when ordered. */
    char *seen = calloc(n, 1);
    assert_non_null(seen);
    uint64_t expect = 0, lines = 0;
    for (char *l = strtok(got, "\n"); l; l = strtok(NULL, "\n")) {
        uint64_t v = strtoull(l, NULL, 10);
        assert_true(v < n);
        if (seen[v]++)
            fail_msg("item %" PRIu64 " written twice (threads %u)", v, threads);
        if (ordered && v != expect)
            fail_msg("item %" PRIu64 " where %" PRIu64 " belongs (threads %u)", v, expect,
                     threads);
        expect++;
        lines++;
    }
    assert_int_equal(lines, n);
    free(seen);
    free(got);
    free(ranges);
}

static void reorder_stress(void **state)
{
    (void)state;
    for (unsigned threads = 1; threads <= 8; threads++)
        for (unsigned r = 0; r < ROUNDS / 8; r++) {
            stress_round(threads, true, threads * 1000 + r);
            stress_round(threads, false, threads * 2000 + r);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reorder_in_order),
        cmocka_unit_test(reorder_any_order),
        cmocka_unit_test(reorder_notes_in_order_and_capped),
        cmocka_unit_test(reorder_gap_at_finish),
        cmocka_unit_test(reorder_stress),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
