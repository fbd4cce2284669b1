/* SPDX-License-Identifier: MIT */
/*
 * The claim coordinator of a run spread over ranks (processes on one or
 * many machines: MPI ranks, issue 12): one of them hands out item ranges,
 * the others ask for their next range before they need it.  This is the
 * policy alone -- no transport, no clock, no I/O -- so that it is tested
 * with a thousand simulated ranks (tests/run/test_coord.c) and modelled at
 * scale (bench/bench_coord.c, docs/scale.md) with the very code a run uses.
 *
 * Sizing (docs/scale.md says why, with the simulation's numbers):
 *   - a rank's claim is sized by its measured speed, items per second of
 *     its own claims (an exponential moving average of items / busy time),
 *     to take about target_s: fixed-size claims let a slow rank hold the
 *     run's end, halving ones flood the coordinator;
 *   - before a rank has a speed, it gets first_claim items;
 *   - at the tail no claim is larger than what is left over twice the
 *     ranks, so every rank runs out at about the same time;
 *   - a rank holds up to `ahead` claims (the one it runs and those queued
 *     behind it), so asking for the next one never makes it wait.
 * A rank that is lost (dead, cut off) gives its unfinished claims back:
 * they are handed out again, first, in pieces of the asking rank's size.
 * Items of a lost rank's claims may have been done and journaled by it:
 * redoing them is what makes the run at-least-once, and the per-rank
 * journals (and --resume) tell which results to keep.
 *
 * Counting: every item is in exactly one claim reported done, once the
 * coordinator says finished.
 *
 * Threads: one caller (the coordinator's loop).  Times are the caller's
 * seconds on any monotonic clock.
 */
#ifndef WEFT_CORE_COORD_H
#define WEFT_CORE_COORD_H

#include <stdbool.h>
#include <stdint.h>

typedef struct weft__coord weft__coord_t;

typedef struct weft__coord_settings {
    uint64_t items;       /* items [0, items)                               */
    unsigned ranks;       /* ranks that claim, numbered [0, ranks)          */
    unsigned ahead;       /* claims a rank may hold; 0: 2                   */
    double target_s;      /* work a claim should take; 0: 0.5 s             */
    uint64_t first_claim; /* a rank's claim before its speed is known; 0: 64 */
    uint64_t min_claim;   /* 0: 1                                           */
    uint64_t max_claim;   /* 0: no bound                                    */
} weft__coord_settings_t;

typedef enum weft__coord_status {
    WEFT__COORD_OK,   /* *out is a claim, now the rank's                    */
    WEFT__COORD_FULL, /* the rank holds `ahead` claims: ask when one is done */
    WEFT__COORD_WAIT, /* nothing to hand out now, but claims are out: what a
                         lost rank gives back may come                      */
    WEFT__COORD_END,  /* nothing left to hand out, ever                     */
} weft__coord_status_t;

/* A claim: items [first, first + count). */
typedef struct weft__coord_claim {
    uint64_t first, count;
} weft__coord_claim_t;

/* 0, -EINVAL (no ranks, or min_claim > max_claim), -ENOMEM. */
int weft__coord_create(weft__coord_t **out, const weft__coord_settings_t *s);
void weft__coord_destroy(weft__coord_t **c);

/* The next claim of `rank` at time now. */
weft__coord_status_t weft__coord_claim(weft__coord_t *c, unsigned rank, double now,
                                       weft__coord_claim_t *out);

/* `rank` finished its oldest claim (claims are run in the order they were
 * handed out) at time now: its speed is updated.  0; -EINVAL when the rank
 * holds no claim, is lost, or `claim` is not its oldest. */
int weft__coord_done(weft__coord_t *c, unsigned rank, weft__coord_claim_t claim, double now);

/* `rank` is lost: its unfinished claims are handed out again, and it gets
 * nothing more.  Returns how many items it gave back. */
uint64_t weft__coord_lost(weft__coord_t *c, unsigned rank);

/* Every item in a claim reported done. */
bool weft__coord_finished(const weft__coord_t *c);

/* The rank's speed estimate in items per second; 0 before its first claim
 * is done. */
double weft__coord_speed(const weft__coord_t *c, unsigned rank);

/* Claims handed out so far (the coordinator's load). */
uint64_t weft__coord_claims(const weft__coord_t *c);

#endif
