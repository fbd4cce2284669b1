/* SPDX-License-Identifier: MIT */
/* The journal log of a job's workers (see jlog.c). */
#ifndef WEFT_CORE_RUN_JLOG_H
#define WEFT_CORE_RUN_JLOG_H

#include "job.h"

#define JOURNAL_SYNC_S 1.0 /* fdatasync at most this often */

/* Adds item's journal entry (its records at `bytes`, message at `msg`, as
 * slot says) to wk's open chunk; nothing without a journal, for a reused
 * or a not-run item.  Out of memory stops the run (journal_error). */
void weft__jlog_add(weft__engine_t *r, worker_t *wk, const weft_item_t *item, uint64_t index,
                    const slot_t *slot, const char *bytes, const char *msg);

/* Appends wk's chunk when it is big or old (force: always). */
void weft__jlog_flush(weft__engine_t *r, worker_t *wk, bool force);

/* Hands every worker's chunk over; fdatasyncs at most once every
 * JOURNAL_SYNC_S, or now when `sync`.  Only while no worker runs. */
void weft__jlog_sync(weft__engine_t *r, bool sync);

#endif
