/* SPDX-License-Identifier: MIT */
/*
 * A discrete-event simulation of ranks claiming from the coordinator
 * (core/run/coord.h), the real policy code in the loop: ranks of given
 * speeds (some slower), claim round trips of a given latency through a
 * coordinator that serves one message at a time, ranks lost at random
 * moments (noticed after a delay, their claims given back).  Shared by
 * tests/run/test_coord.c (every item done exactly once) and
 * bench/bench_coord.c (overhead and load at 1000 ranks, docs/scale.md).
 */
#ifndef WEFT_BENCH_COORD_SIM_H
#define WEFT_BENCH_COORD_SIM_H

#include <stdint.h>

#include "coord.h"

typedef struct coord_sim_settings {
    uint64_t items;
    unsigned ranks;
    double speed;         /* items per second of a normal rank              */
    double slow_fraction; /* the share of ranks that are slow               */
    double slow_factor;   /* how many times slower they are                 */
    unsigned losses;      /* ranks lost, each at a random moment of the run  */
    double notice_s;      /* how long until a loss is noticed               */
    double latency_s;     /* a claim's round trip, rank - coordinator - rank */
    double serve_s;       /* the coordinator's time per message (it is one
                             server: messages queue)                        */
    weft__coord_settings_t coord; /* items and ranks are set from above     */
    unsigned seed;
} coord_sim_settings_t;

typedef struct coord_sim_result {
    double makespan_s;     /* when the last item was done                   */
    double ideal_s;        /* items over the speed of every rank that lived
                              to the end: no claim cost, perfect balance    */
    uint64_t claims;       /* claims handed out                             */
    uint64_t messages;     /* requests and done reports served              */
    double coord_busy;     /* the coordinator's busy share of the makespan  */
    uint64_t given_back;   /* items lost ranks gave back                    */
    uint64_t done_items;   /* items in claims reported done                 */
    uint64_t twice;        /* items reported done more than once (counted
                              when a per-item map is kept)                  */
    uint64_t never;        /* items never reported done (likewise)          */
} coord_sim_result_t;

/* Runs the simulation.  counts: NULL, or one byte per item, zeroed: each
 * item's number of done reports (saturating at 255).  0, or -ENOMEM. */
int coord_sim_run(const coord_sim_settings_t *s, coord_sim_result_t *out, uint8_t *counts);

#endif
