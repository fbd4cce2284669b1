/* SPDX-License-Identifier: MIT */
/*
 * The journal log: what each worker finished, with its encoded bytes, in
 * the worker's own chunk; a chunk goes to the journal (one write) when it
 * holds JOURNAL_CHUNK_BYTES, is JOURNAL_CHUNK_AGE_S old, or the engine says
 * so (slow items: each is journaled as it ends); fdatasync at most every
 * JOURNAL_SYNC_S.  A crash loses at most the last ~50 ms of work per
 * worker plus what the OS had not written.
 *
 * A worker's committed files (sync = batch) are made durable first
 * (weft__outbatch_commit), so the journal never says an item is done
 * before its files are on disk; if that fails the chunk is dropped: its
 * items are not journaled, and --resume runs them again.
 */
#include "jlog.h"

#include <errno.h>
#include <stdio.h>

#include "util.h"

enum { JOURNAL_CHUNK_BYTES = 1 << 20 };
#define JOURNAL_CHUNK_AGE_S 0.05

/* wk's files durable, or false (said once) when that failed.  Once any
 * worker's commit failed, none is trusted: a writeback error may have
 * been reported to one of them only (older kernels, another fd). */
static bool commit_files(weft__engine_t *r, worker_t *wk)
{
    char why[512];
    if (!wk->outbatch)
        return true;
    if (weft__outbatch_commit(wk->outbatch, r->host, why, sizeof why) == 0)
        return !atomic_load(&r->commit_failed);
    bool said = false;
    if (atomic_compare_exchange_strong(&r->commit_failed, &said, true))
        fprintf(stderr, "weft: %s; the items of those files are not recorded as done "
                        "(--resume runs them again)\n",
                why);
    int running = 0;
    atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
    return false;
}

void weft__jlog_flush(weft__engine_t *r, worker_t *wk, bool force)
{
    bool files = wk->outbatch && weft__outbatch_pending(wk->outbatch);
    if (!wk->jopen && !files)
        return;
    double t = weft__mono_s();
    if (!force && (!wk->jopen || wk->jbuf.len - wk->jmark < JOURNAL_CHUNK_BYTES) &&
        t - wk->jflushed < JOURNAL_CHUNK_AGE_S)
        return;
    if (!commit_files(r, wk)) {
        wk->jbuf.len = 0; /* their items must not be journaled */
        wk->jopen = false;
    }
    if (!wk->jopen) {
        wk->jflushed = t;
        return;
    }
    weft__jchunk_end(&wk->jbuf, wk->jmark);
    int e = weft__journal_append(r->journal, wk->jbuf.data, wk->jbuf.len);
    if (e) {
        int none = 0;
        if (atomic_compare_exchange_strong(&r->journal_error, &none, e)) {
            /* Without a journal nothing done from here on could be resumed:
             * stop soon, and say so at the end. */
            int soon = 0;
            atomic_compare_exchange_strong(&weft__run_stop, &soon, 1);
        }
    }
    wk->jbuf.len = 0;
    wk->jopen = false;
    wk->jflushed = t;
}

void weft__jlog_add(weft__engine_t *r, worker_t *wk, const weft_item_t *item, uint64_t index,
                    const slot_t *slot, const char *bytes, const char *msg,
                    const weft__jtime_t *t)
{
    if (!r->journal || slot->reused || slot->status == ST_NOT_RUN)
        return;
    if (!wk->jopen) {
        wk->jbuf.len = 0;
        if (weft__jchunk_begin(&wk->jbuf, &wk->jmark) != 0)
            goto nomem;
        wk->jopen = true;
    }
    size_t len = slot->len;
    if (r->npy && slot->status == ST_OK) {
        bytes = weft__npy_row(r->npy, index);
        len = weft__npy_row_bytes(r->npy);
    } else if (!len) {
        bytes = NULL;
    }
    if (weft__jchunk_add_timed(&wk->jbuf, index, weft__item_hash(item), slot->status,
                               slot->records, bytes, len, slot->msg_len ? msg : NULL,
                               slot->msg_len, r->jtimed ? t : NULL) != 0)
        goto nomem;
    return;
nomem:;
    int none = 0, running = 0;
    atomic_compare_exchange_strong(&r->journal_error, &none, -ENOMEM);
    atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
}

/* Hands every worker's journal chunk over; fdatasyncs at most once a second
 * (or now, when `sync`). */
void weft__jlog_sync(weft__engine_t *r, bool sync)
{
    for (unsigned t = 0; t < r->threads; t++)
        weft__jlog_flush(r, &r->workers[t], true);
    if (!r->journal)
        return;
    double t = weft__mono_s();
    if (sync || t - r->journal_synced >= JOURNAL_SYNC_S) {
        int e = weft__journal_sync(r->journal);
        int none = 0;
        if (e)
            atomic_compare_exchange_strong(&r->journal_error, &none, e);
        r->journal_synced = t;
    }
}
