/* SPDX-License-Identifier: MIT */
/* core/run/claim.c: claims cover the items exactly once and in order, shrink
 * towards the end, stop at the span past the reorder prefix (and while too
 * many bytes wait), resume when the prefix moves, keep the texts of a text
 * source intact across batches, and end on stop.  Suite "unit". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"
#include "config.h"
#include "reorder.h"
#include "source.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/weft-claim-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/lines.txt", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

static weft__source_t *open_source(const char *spec)
{
    static weft__entry_t entry;
    static weft__config_t cfg;
    entry = (weft__entry_t){.section = "run", .key = "items", .value = (char *)spec,
                            .origin = "job.ini", .line = 4};
    cfg = (weft__config_t){.items = &entry, .dir = tmpdir};
    weft__source_t *src = NULL;
    char err[512];
    if (weft__source_open(&src, &cfg, err, sizeof err) != 0)
        fail_msg("%s: %s", spec, err);
    return src;
}

typedef struct fixture {
    weft__source_t *src;
    weft__reorder_t *ro;
    weft__feed_t *feed;
    _Atomic int stop;
} fixture_t;

static void open_fixture(fixture_t *fx, const char *spec, unsigned workers, uint64_t span,
                         uint64_t span_bytes)
{
    fx->src = open_source(spec);
    weft__reorder_settings_t rs = {.workers = workers, .ordered = true};
    assert_int_equal(weft__reorder_create(&fx->ro, &rs), 0);
    atomic_init(&fx->stop, 0);
    weft__feed_settings_t fs = {.source = fx->src, .reorder = fx->ro, .workers = workers,
                                .span = span, .span_bytes = span_bytes, .stop = &fx->stop};
    assert_int_equal(weft__feed_create(&fx->feed, &fs), 0);
}

static void close_fixture(fixture_t *fx)
{
    weft__feed_destroy(&fx->feed);
    assert_null(fx->feed);
    weft__reorder_destroy(&fx->ro);
    weft__source_close(&fx->src);
}

/* Marks [b, e) done in the reorder buffer (bytes of padding each). */
static void done(fixture_t *fx, uint64_t b, uint64_t e, size_t bytes)
{
    weft__block_t *blk = weft__reorder_block_get(fx->ro, 0);
    assert_non_null(blk);
    blk->first = b;
    blk->count = e - b;
    blk->counts[0] = e - b;
    char pad[256] = {0};
    while (bytes) {
        size_t k = bytes < sizeof pad ? bytes : sizeof pad;
        assert_int_equal(weft__buf_append(&blk->bytes, pad, k), 0);
        bytes -= k;
    }
    weft__reorder_put(fx->ro, blk);
    weft__reorder_drain(fx->ro);
}

static void claim_range_exactly_once(void **state)
{
    (void)state;
    fixture_t fx;
    open_fixture(&fx, "100000..200000", 4, 1 << 18, 1 << 30);
    uint64_t next = 0, claims = 0, first_size = 0, last_size = 0;
    weft__range_t r;
    for (;;) {
        weft__claim_status_t st = weft__feed_claim(fx.feed, 0, &r);
        if (st == WEFT__CLAIM_END)
            break;
        assert_int_equal(st, WEFT__CLAIM_OK);
        assert_int_equal(r.begin, next); /* in order, no gap, no overlap */
        assert_true(r.end > r.begin && r.end - r.begin <= 4096);
        if (!claims)
            first_size = r.end - r.begin;
        last_size = r.end - r.begin;
        weft_item_t tmp;
        const weft_item_t *it = weft__feed_item(fx.feed, r.begin, &tmp);
        assert_int_equal(it->index, r.begin);
        assert_int_equal(it->number, 100000 + (int64_t)r.begin);
        next = r.end;
        claims++;
        done(&fx, r.begin, r.end, 0);
    }
    assert_int_equal(next, 100000);
    assert_int_equal(weft__feed_claimed(fx.feed), 100000);
    assert_true(weft__feed_at_end(fx.feed));
    assert_null(weft__feed_error(fx.feed));
    /* Guided: big first, 1 at the end. */
    assert_true(first_size > 1000);
    assert_int_equal(last_size, 1);
    assert_int_equal(weft__feed_claim(fx.feed, 1, &r), WEFT__CLAIM_END);
    close_fixture(&fx);
}

static void write_lines(int n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/lines.txt", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int k = 0; k < n; k++)
        fprintf(f, "line %d %.*s\n", k, k % 37, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN");
    fclose(f);
}

static void expect_line(const weft_item_t *it, uint64_t index)
{
    char want[128];
    snprintf(want, sizeof want, "line %d %.*s", (int)index, (int)(index % 37),
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN");
    assert_int_equal(it->index, index);
    assert_non_null(it->text);
    assert_string_equal(it->text, want);
    assert_int_equal(it->text_len, strlen(want));
}

/* A span of 64 over 20000 lines: the claims stop at prefix + 64, go on
 * when the prefix moves, and every text is right though the ring wraps
 * and old batches are freed. */
static void claim_lines_bounded_by_span(void **state)
{
    (void)state;
    write_lines(20000);
    fixture_t fx;
    open_fixture(&fx, "lines:lines.txt", 2, 64, 1 << 30);
    uint64_t next = 0, waits = 0;
    weft__range_t held[64];
    size_t n_held = 0;
    for (;;) {
        weft__range_t r;
        weft__claim_status_t st = weft__feed_claim(fx.feed, 0, &r);
        if (st == WEFT__CLAIM_END)
            break;
        if (st == WEFT__CLAIM_WAIT) {
            /* Full: nothing claimed beyond prefix + 64. */
            assert_true(next >= weft__reorder_prefix(fx.ro) + 64 || n_held == 0);
            waits++;
            /* Finish the oldest held range (out of order first when two). */
            assert_true(n_held > 0);
            if (n_held >= 2) {
                done(&fx, held[1].begin, held[1].end, 0);
                done(&fx, held[0].begin, held[0].end, 0);
                memmove(held, held + 2, (n_held - 2) * sizeof *held);
                n_held -= 2;
            } else {
                done(&fx, held[0].begin, held[0].end, 0);
                n_held = 0;
            }
            continue;
        }
        assert_int_equal(st, WEFT__CLAIM_OK);
        assert_int_equal(r.begin, next);
        assert_true(r.end <= weft__reorder_prefix(fx.ro) + 64);
        for (uint64_t i = r.begin; i < r.end; i++) {
            weft_item_t tmp;
            expect_line(weft__feed_item(fx.feed, i, &tmp), i);
        }
        next = r.end;
        assert_true(n_held < 64);
        held[n_held++] = r;
    }
    assert_int_equal(next, 20000);
    assert_true(waits > 100);
    /* Items still held stay readable until they are out. */
    for (size_t k = 0; k < n_held; k++) {
        weft_item_t tmp;
        expect_line(weft__feed_item(fx.feed, held[k].begin, &tmp), held[k].begin);
    }
    assert_int_equal(weft__feed_read(fx.feed), 20000);
    close_fixture(&fx);
}

/* Records waiting for an earlier item hold the claims back. */
static void claim_waits_for_bytes(void **state)
{
    (void)state;
    fixture_t fx;
    open_fixture(&fx, "1000", 1, 1 << 18, 1000);
    weft__range_t a, b;
    assert_int_equal(weft__feed_claim(fx.feed, 0, &a), WEFT__CLAIM_OK);
    assert_int_equal(weft__feed_claim(fx.feed, 0, &b), WEFT__CLAIM_OK);
    /* b is done first with 2000 bytes: they wait for a. */
    weft__block_t *blk = weft__reorder_block_get(fx.ro, 0);
    blk->first = b.begin;
    blk->count = b.end - b.begin;
    char pad[2000] = {0};
    assert_int_equal(weft__buf_append(&blk->bytes, pad, sizeof pad), 0);
    weft__reorder_put(fx.ro, blk);
    weft__reorder_drain(fx.ro);
    weft__range_t c;
    assert_int_equal(weft__feed_claim(fx.feed, 0, &c), WEFT__CLAIM_WAIT);
    done(&fx, a.begin, a.end, 0); /* now both go out */
    assert_int_equal(weft__reorder_pending_bytes(fx.ro), 0);
    assert_int_equal(weft__feed_claim(fx.feed, 0, &c), WEFT__CLAIM_OK);
    assert_int_equal(c.begin, b.end);
    close_fixture(&fx);
}

static void claim_stop_ends(void **state)
{
    (void)state;
    write_lines(100);
    fixture_t fx;
    open_fixture(&fx, "lines:lines.txt", 1, 0, 1 << 30);
    weft__range_t r;
    assert_int_equal(weft__feed_claim(fx.feed, 0, &r), WEFT__CLAIM_OK);
    atomic_store(&fx.stop, 1);
    assert_int_equal(weft__feed_claim(fx.feed, 0, &r), WEFT__CLAIM_END);
    assert_true(weft__feed_claimed(fx.feed) < 100);
    assert_false(weft__feed_at_end(fx.feed));
    close_fixture(&fx);
    fixture_t bad;
    assert_int_equal(weft__feed_create(&bad.feed, &(weft__feed_settings_t){0}), -EINVAL);
}

/* large_claims (a plugin's process_range over a range): claims up to 2^20
 * in a span of 2^26, still guided, in order and exactly once; a source
 * whose items must be read keeps the small span and claims. */
static void claim_large_for_cheap_items(void **state)
{
    (void)state;
    fixture_t fx;
    fx.src = open_source("0..50000000");
    weft__reorder_settings_t rs = {.workers = 2, .ordered = true};
    assert_int_equal(weft__reorder_create(&fx.ro, &rs), 0);
    atomic_init(&fx.stop, 0);
    weft__feed_settings_t fs = {.source = fx.src, .reorder = fx.ro, .workers = 2,
                                .span = 1 << 18, .span_bytes = 1 << 30, .stop = &fx.stop,
                                .large_claims = true};
    assert_int_equal(weft__feed_create(&fx.feed, &fs), 0);
    assert_int_equal(weft__feed_span(fx.feed), 1u << 26);
    uint64_t next = 0, biggest = 0, last = 0;
    weft__range_t r;
    /* Without anything written, claims stop at the span (2^26 > the job:
     * every item can be claimed before the first is out). */
    while (weft__feed_claim(fx.feed, 0, &r) == WEFT__CLAIM_OK) {
        assert_int_equal(r.begin, next);
        uint64_t n = r.end - r.begin;
        assert_true(n >= 1 && n <= 1u << 20);
        biggest = n > biggest ? n : biggest;
        last = n;
        next = r.end;
    }
    assert_int_equal(next, 50000000);
    assert_int_equal(biggest, 1u << 20);
    assert_int_equal(last, 1);
    close_fixture(&fx);

    /* Lines are read into a ring: large_claims changes nothing. */
    write_lines(20000);
    fx.src = open_source("lines:lines.txt");
    assert_int_equal(weft__reorder_create(&fx.ro, &rs), 0);
    fs.source = fx.src;
    fs.reorder = fx.ro;
    assert_int_equal(weft__feed_create(&fx.feed, &fs), 0);
    assert_true(weft__feed_span(fx.feed) <= 1u << 18);
    next = 0;
    while (weft__feed_claim(fx.feed, 0, &r) == WEFT__CLAIM_OK) {
        assert_int_equal(r.begin, next);
        assert_true(r.end - r.begin <= 4096);
        next = r.end;
        done(&fx, r.begin, r.end, 0);
    }
    assert_int_equal(next, 20000);
    close_fixture(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claim_range_exactly_once),
        cmocka_unit_test(claim_lines_bounded_by_span),
        cmocka_unit_test(claim_waits_for_bytes),
        cmocka_unit_test(claim_stop_ends),
        cmocka_unit_test(claim_large_for_cheap_items),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
