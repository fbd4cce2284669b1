/* SPDX-License-Identifier: MIT */
/* The journal log of a job's workers (see jlog.c). */
#ifndef WEFT_CORE_RUN_JLOG_H
#define WEFT_CORE_RUN_JLOG_H

#include "job.h"

#define JOURNAL_SYNC_S 1.0 /* fdatasync at most this often */

/* Adds item's journal entry (its records at `bytes`, message at `msg`, as
 * slot says) to wk's open chunk; nothing without a journal, for a reused
 * or a not-run item.  t: its timing (a TIMED entry when r->jtimed), or
 * NULL.  Out of memory stops the run (journal_error). */
void weft__jlog_add(weft__engine_t *r, worker_t *wk, const weft_item_t *item, uint64_t index,
                    const slot_t *slot, const char *bytes, const char *msg,
                    const weft__jtime_t *t);

/* The timing of an item whose first attempt began at monotonic t0_ns and
 * whose last ended at t1_ns (weft__mono_ns). */
static inline weft__jtime_t weft__jlog_time(const weft__engine_t *r, unsigned attempts,
                                            int64_t t0_ns, int64_t t1_ns)
{
    int64_t wall = t0_ns + r->wall_mono_ns;
    return (weft__jtime_t){.attempts = attempts,
                           .start_us = wall > 0 ? (uint64_t)wall / 1000 : 0,
                           .runtime_us = t1_ns > t0_ns ? (uint64_t)(t1_ns - t0_ns) / 1000 : 0};
}

/* Appends wk's chunk when it is big or old (force: always). */
void weft__jlog_flush(weft__engine_t *r, worker_t *wk, bool force);

/* Hands every worker's chunk over; fdatasyncs at most once every
 * JOURNAL_SYNC_S, or now when `sync`.  Only while no worker runs. */
void weft__jlog_sync(weft__engine_t *r, bool sync);

#endif
