/* SPDX-License-Identifier: MIT */
/*
 * The coordinator at paper scale (docs/scale.md): bench/coord_sim.c with
 * the real policy (core/run/coord.c), 1000 ranks, 1 % of them 10x slower,
 * over 10^10 items at 10^5 items/s a rank (a ~100 s run), with the claim
 * round trips measured here (../shared/notes/scale-out.md): 8 us (TCP, a
 * spinning coordinator) and 200 us (one that sleeps); then speed-sized
 * claims against fixed-size ones, and with ranks lost.  Prints, per case:
 * claims, the coordinator's busy share, and the makespan over the ideal
 * (items over the live ranks' speed: no claim cost, perfect balance).
 *
 *   bench_coord [RANKS [ITEMS]]
 */
#include <stdio.h>
#include <stdlib.h>

#include "coord_sim.h"

static void one(const char *what, coord_sim_settings_t s)
{
    coord_sim_result_t r;
    if (coord_sim_run(&s, &r, NULL) != 0) {
        fprintf(stderr, "bench_coord: out of memory\n");
        exit(1);
    }
    printf("%-44s %9llu claims  coordinator %6.2f %% busy  makespan/ideal %.4f (%+.2f %%)%s\n",
           what, (unsigned long long)r.claims, 100 * r.coord_busy, r.makespan_s / r.ideal_s,
           100 * (r.makespan_s / r.ideal_s - 1),
           r.done_items == s.items ? "" : "  NOT ALL DONE");
}

int main(int argc, char **argv)
{
    unsigned ranks = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
    unsigned long long items = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000000ull;
    coord_sim_settings_t base = {
        .items = items,
        .ranks = ranks,
        .speed = 1e5,
        .slow_fraction = 0.01,
        .slow_factor = 10,
        .notice_s = 1.0,
        .latency_s = 8e-6,
        .serve_s = 1e-6,
        .coord = {.target_s = 0.5},
        .seed = 1,
    };
    printf("bench_coord: %u ranks, %llu items, %.0f items/s a rank, 1 %% of ranks 10x slower\n",
           ranks, items, base.speed);
    one("speed-sized, 8 us round trip", base);
    coord_sim_settings_t s = base;
    s.latency_s = 200e-6;
    one("speed-sized, 200 us round trip", s);
    s.serve_s = 20e-6;
    one("speed-sized, 200 us, 20 us per message", s);
    s = base;
    s.coord.target_s = 0.05;
    one("speed-sized, 8 us, claims of 0.05 s", s);
    s = base;
    s.coord.min_claim = s.coord.max_claim = s.coord.first_claim = 100000;
    one("fixed claims of 10^5 items, 8 us", s);
    s.coord.min_claim = s.coord.max_claim = s.coord.first_claim = 1000000;
    one("fixed claims of 10^6 items, 8 us", s);
    s = base;
    s.losses = 10;
    one("speed-sized, 8 us, 10 ranks lost", s);
    return 0;
}
