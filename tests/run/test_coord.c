/* SPDX-License-Identifier: MIT */
/*
 * The claim coordinator (core/run/coord.c): its sizing rules one by one,
 * then a thousand simulated ranks (bench/coord_sim.c, the real policy in
 * the loop) with slow and lost ranks: every item is in exactly one claim
 * reported done, and the run ends close to the ideal.  The simulation is
 * deterministic (its own clock and seed): its figures are asserted, not
 * timed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "coord.h"
#include "coord_sim.h"

static weft__coord_t *make(uint64_t items, unsigned ranks, double target_s)
{
    weft__coord_t *c = NULL;
    weft__coord_settings_t s = {.items = items, .ranks = ranks, .target_s = target_s,
                                .first_claim = 10};
    assert_int_equal(weft__coord_create(&c, &s), 0);
    return c;
}

/* A first claim of first_claim items; after a claim is done, claims sized
 * by the rank's speed (items / busy time); ahead claims at most; claims
 * done in order only. */
static void coord_sizes_by_speed(void **state)
{
    (void)state;
    weft__coord_t *c = make(1000000, 4, 0.5);
    weft__coord_claim_t a, b, x;
    assert_int_equal(weft__coord_claim(c, 0, 0.0, &a), WEFT__COORD_OK);
    assert_true(a.first == 0 && a.count == 10);
    assert_int_equal(weft__coord_claim(c, 0, 0.0, &b), WEFT__COORD_OK);
    assert_true(b.first == 10 && b.count == 10);
    assert_int_equal(weft__coord_claim(c, 0, 0.0, &x), WEFT__COORD_FULL);
    assert_int_equal(weft__coord_done(c, 0, b, 1.0), -EINVAL); /* not its oldest */
    assert_int_equal(weft__coord_done(c, 0, a, 0.01), 0);      /* 1000 items/s */
    assert_true(weft__coord_speed(c, 0) == 1000.0);
    assert_int_equal(weft__coord_claim(c, 0, 0.01, &x), WEFT__COORD_OK);
    assert_int_equal(x.count, 500); /* 0.5 s at 1000/s */
    /* b was queued behind a: its time counts from a's end (0.01), not from
     * when it was handed out (0). */
    assert_int_equal(weft__coord_done(c, 0, b, 0.02), 0);
    assert_true(weft__coord_speed(c, 0) == 1000.0);
    assert_int_equal(weft__coord_done(c, 1, a, 1.0), -EINVAL); /* rank 1 holds nothing */
    assert_int_equal(weft__coord_claims(c), 3);
    weft__coord_destroy(&c);
    assert_null(c);
}

/* At the tail no claim exceeds what is left over twice the ranks; then
 * WAIT while claims are out, END once every item is reported done. */
static void coord_tail_and_end(void **state)
{
    (void)state;
    weft__coord_t *c = make(100, 2, 1e6); /* a speed would ask for everything */
    weft__coord_claim_t g[8];
    assert_int_equal(weft__coord_claim(c, 0, 0, &g[0]), WEFT__COORD_OK);
    assert_int_equal(weft__coord_done(c, 0, g[0], 1e-6), 0); /* fast: 10^7/s */
    assert_int_equal(weft__coord_claim(c, 0, 1e-6, &g[1]), WEFT__COORD_OK);
    assert_int_equal(g[1].count, (90 + 3) / 4); /* ceil(90 / (2 * 2)) */
    assert_int_equal(weft__coord_claim(c, 1, 0, &g[2]), WEFT__COORD_OK);
    assert_int_equal(weft__coord_claim(c, 1, 0, &g[3]), WEFT__COORD_OK);
    uint64_t out = g[1].count + g[2].count + g[3].count;
    weft__coord_claim_t more;
    while (out < 90) {
        assert_int_equal(weft__coord_claim(c, 0, 0, &more), WEFT__COORD_OK);
        out += more.count;
        assert_int_equal(weft__coord_done(c, 0, g[1], 1), 0);
        g[1] = more;
    }
    assert_int_equal(out, 90);
    assert_int_equal(weft__coord_claim(c, 0, 2, &more), WEFT__COORD_WAIT);
    assert_false(weft__coord_finished(c));
    assert_int_equal(weft__coord_done(c, 0, g[1], 2), 0);
    assert_int_equal(weft__coord_done(c, 1, g[2], 2), 0);
    assert_int_equal(weft__coord_done(c, 1, g[3], 2), 0);
    assert_true(weft__coord_finished(c));
    assert_int_equal(weft__coord_claim(c, 0, 3, &more), WEFT__COORD_END);
    weft__coord_destroy(&c);
}

/* A lost rank's claims are handed out again, first, oldest first, in the
 * asking rank's sizes; a lost rank gets END and its late report is
 * refused. */
static void coord_lost_rank(void **state)
{
    (void)state;
    weft__coord_t *c = make(1000, 2, 0.5);
    weft__coord_claim_t a, b, x;
    assert_int_equal(weft__coord_claim(c, 0, 0, &a), WEFT__COORD_OK);
    assert_int_equal(weft__coord_claim(c, 0, 0, &b), WEFT__COORD_OK);
    assert_int_equal(weft__coord_lost(c, 0), 20);
    assert_int_equal(weft__coord_lost(c, 0), 0);
    assert_int_equal(weft__coord_claim(c, 0, 1, &x), WEFT__COORD_END);
    assert_int_equal(weft__coord_done(c, 0, a, 1), -EINVAL);
    assert_int_equal(weft__coord_claim(c, 1, 1, &x), WEFT__COORD_OK);
    assert_true(x.first == a.first && x.count == a.count);
    assert_int_equal(weft__coord_claim(c, 1, 1, &x), WEFT__COORD_OK);
    assert_true(x.first == b.first && x.count == b.count);
    weft__coord_destroy(&c);
}

static void coord_bad_settings(void **state)
{
    (void)state;
    weft__coord_t *c = (weft__coord_t *)1;
    weft__coord_settings_t s = {.items = 10};
    assert_int_equal(weft__coord_create(&c, &s), -EINVAL);
    assert_null(c);
    s = (weft__coord_settings_t){.items = 10, .ranks = 1, .min_claim = 5, .max_claim = 4};
    assert_int_equal(weft__coord_create(&c, &s), -EINVAL);
}

/* 1000 ranks, 10^7 items, 1 % of them 10x slower, and `losses` lost along
 * the way: every item reported done exactly once; the end within `bound`
 * of the ideal. */
static void simulate(unsigned losses, double bound)
{
    coord_sim_settings_t s = {
        .items = 10000000,
        .ranks = 1000,
        .speed = 1000,
        .slow_fraction = 0.01,
        .slow_factor = 10,
        .losses = losses,
        .notice_s = 1.0,
        .latency_s = 200e-6, /* a coordinator that sleeps (scale-out.md) */
        .serve_s = 2e-6,
        .coord = {.target_s = 0.5},
        .seed = 7,
    };
    uint8_t *counts = calloc(s.items, 1);
    assert_non_null(counts);
    coord_sim_result_t r;
    assert_int_equal(coord_sim_run(&s, &r, counts), 0);
    free(counts);
    print_message("%u ranks, %u lost: %llu claims, makespan %.3f s, ideal %.3f s (%.2f %%), "
                  "coordinator busy %.2f %%, %llu items given back\n",
                  s.ranks, losses, (unsigned long long)r.claims, r.makespan_s, r.ideal_s,
                  100 * (r.makespan_s / r.ideal_s - 1), 100 * r.coord_busy,
                  (unsigned long long)r.given_back);
    assert_int_equal(r.done_items, s.items);
    if (r.twice || r.never)
        fail_msg("%llu items done twice, %llu never", (unsigned long long)r.twice,
                 (unsigned long long)r.never);
    if (losses)
        assert_true(r.given_back > 0);
    if (r.makespan_s > bound * r.ideal_s)
        fail_msg("makespan %.3f s over %.3f x the ideal %.3f s", r.makespan_s, bound,
                 r.ideal_s);
}

static void coord_thousand_ranks(void **state)
{
    (void)state;
    simulate(0, 1.01); /* issue 12: claim overhead <= 1 % with 1 % slow ranks */
}

static void coord_thousand_ranks_with_losses(void **state)
{
    (void)state;
    simulate(10, 1.2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(coord_sizes_by_speed),
        cmocka_unit_test(coord_tail_and_end),
        cmocka_unit_test(coord_lost_rank),
        cmocka_unit_test(coord_bad_settings),
        cmocka_unit_test(coord_thousand_ranks),
        cmocka_unit_test(coord_thousand_ranks_with_losses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
