/* SPDX-License-Identifier: MIT */
/*
 * The thread engine.  Workers claim ranges of items continuously
 * (claim.h, through the pool's claim interface, core/pool/pool.h); the
 * pool times the items and exposes the rest of a range while a long one
 * runs.  Each call the pool makes (a chunk) runs its items into one block
 * (item.h): encoded records, outcome counts, failure notes.  Blocks go to
 * the reorder buffer (reorder.h), which a drain thread empties into the
 * output as soon as a block may go out: in input order once every earlier
 * item is out, or at once with order = any.  No barrier anywhere: the claim
 * source hands out nothing beyond a span past the oldest item not yet out,
 * which bounds memory.  The drain flushes the output when it has nothing
 * else to do (and at most every FLUSH_S while records keep coming), so a
 * finished result reaches a file or a pipe within ~FLUSH_S; it also
 * fdatasyncs the journal at most every JOURNAL_SYNC_S.  A WINDOW record
 * for each claim says what was in flight, for poison detection on resume.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "altstack.h"
#include "item.h"
#include "util.h"

enum { FLUSH_BYTES = 64 << 10 };
#define FLUSH_S 0.02       /* output flushed at least this often    */
#define DRAIN_POLL_S 0.01  /* the drain looks for blocks this often */
#define CHUNK_SLOW_S 0.001 /* a chunk this long: journal it now     */

/* The drain thread: empties the reorder buffer into the output, flushes
 * it, syncs the journal.  It lives on weft__engine_threads' stack while
 * the engine runs (r->drain).  `closing` under `lock`. */
struct weft__drain {
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic bool sleeping;
    bool closing;
    double flushed; /* when the output was last flushed */
};

/* Wakes the drain when it sleeps (Dekker pair: our seq_cst put, then this
 * seq_cst load; its seq_cst store of the flag, then its idle re-check). */
static void drain_wake(weft__engine_t *r)
{
    struct weft__drain *d = r->drain;
    if (!atomic_load_explicit(&d->sleeping, memory_order_seq_cst))
        return;
    pthread_mutex_lock(&d->lock);
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* A block that holds items goes to the reorder buffer; an empty one back.
 * The drain polls every DRAIN_POLL_S (streaming needs no more); it is woken
 * early only when the span is filling up, so claims never wait for it. */
static void block_hand(weft__engine_t *r, weft__block_t *b)
{
    if (!b)
        return;
    if (!b->count) {
        weft__reorder_block_drop(r->reorder, b);
        return;
    }
    uint64_t end = b->first + b->count;
    weft__reorder_put(r->reorder, b);
    if (end > weft__reorder_prefix(r->reorder) + weft__feed_span(r->feed) / 4)
        drain_wake(r);
}

static weft__block_t *block_open(weft__engine_t *r, unsigned worker, uint64_t first)
{
    weft__block_t *b = weft__reorder_block_get(r->reorder, worker);
    if (!b) {
        /* Without a block the items cannot be kept: stop, they stay not run
         * (journaled items are kept, the rest runs again on --resume). */
        int none = 0, running = 0;
        atomic_compare_exchange_strong(&r->journal_error, &none, -ENOMEM);
        atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
        return NULL;
    }
    b->first = first;
    return b;
}

/* The plugin's process_range over a whole chunk (see r->batch): true when
 * every item succeeded; false leaves no trace (the plugin's contract), and
 * the items run one by one to find the failures. */
static bool run_batch(weft__engine_t *r, worker_t *wk, weft__block_t *b, size_t begin, size_t end)
{
    if (atomic_load_explicit(&weft__run_stop, memory_order_relaxed))
        return false; /* the loop marks them not run */
    const weft_plugin_t *p = &r->plugin->desc;
    weft_item_t first;
    weft__feed_item(r->feed, begin, &first);
    __atomic_store_n(&wk->current, (uint64_t)begin, __ATOMIC_RELAXED);
    int rc = p->process_range(r->state, wk->ctx, begin, first.number, end - begin,
                              wk->msg, MSG_SIZE);
    __atomic_store_n(&wk->current, UINT64_MAX, __ATOMIC_RELAXED);
    if (rc)
        return false;
    b->count = end - begin;
    b->counts[ST_OK] += end - begin;
    return true;
}

static void run_chunk(void *arg, size_t begin, size_t end, unsigned worker)
{
    weft__engine_t *r = arg;
    worker_t *wk = &r->workers[worker];
    uint64_t ok = 0, failed = 0, reused = 0;
    weft_item_t computed;
    double t0 = weft__mono_s();
    wk->tnext = 0; /* time passed since its last item: no start to chain */

    weft__altstack_ensure(); /* see weft__crash_handlers */
    weft__outbatch_bind(wk->outbatch); /* host->out_commit queues there */
    weft__block_t *b = block_open(r, worker, begin);
    if (r->batch && b && run_batch(r, wk, b, begin, end)) {
        ok = end - begin;
        begin = end; /* done: no item left for the loop */
    } else if (r->ints_fast && b) {
        begin = weft__item_run_ints(r, wk, b, begin, end, &ok, &failed);
    }
    for (size_t i = begin; i < end; i++) {
        if (r->suspects_run && weft__item_in_set(r->suspects, r->suspects_run, i)) {
            /* Ran alone before the engine started (run_suspects). */
            block_hand(r, b);
            b = block_open(r, worker, i + 1);
            wk->tnext = 0;
            continue;
        }
        if (!b) {
            /* Out of memory: this item cannot be kept; a fresh try for the
             * next one (it also stays not run, the run is stopping). */
            b = block_open(r, worker, i + 1);
            continue;
        }
        switch (weft__item_run(r, wk, b, weft__feed_item(r->feed, i, &computed))) {
        case WEFT__FATE_OK:
            ok++;
            break;
        case WEFT__FATE_FAILED:
            failed++;
            weft__item_failed(r);
            break;
        case WEFT__FATE_REUSED:
            reused++;
            break;
        case WEFT__FATE_NOT_RUN:
            break;
        }
    }
    block_hand(r, b);
    if (ok + failed)
        __atomic_store_n(&wk->done, wk->done + ok + failed, __ATOMIC_RELAXED);
    weft__progress_add(r->progress, worker, ok, failed);
    if (reused)
        weft__progress_skip(r->progress, reused);
    /* Slow items: each chunk's entries reach the journal as it ends. */
    weft__jlog_flush(r, wk, weft__mono_s() - t0 >= CHUNK_SLOW_S);
}

/* Each claim is journaled as in flight (poison detection on resume). */
static weft__claim_status_t claim_next(void *arg, unsigned worker, weft__range_t *out)
{
    weft__engine_t *r = arg;
    weft__claim_status_t st = weft__feed_claim(r->feed, worker, out);
    /* About to wait, or done: its files and journal entries go out now,
     * not when it next has work. */
    if (st != WEFT__CLAIM_OK)
        weft__jlog_flush(r, &r->workers[worker], true);
    if (st == WEFT__CLAIM_OK && r->journal)
        weft__journal_window(r->journal, out->begin, out->end - out->begin);
    if (st == WEFT__CLAIM_WAIT)
        drain_wake(r); /* the span is full: the drain makes room */
    return st;
}

/* Resume after a crash (thread mode): items that were in flight when it
 * happened run first, one at a time, each announced in the journal, so that
 * a second crash names its culprit exactly (then quarantined as poison).
 * Their blocks wait in the reorder buffer; the engine skips them.  A suspect
 * goes into b, the block of the one before, when it follows it, else into a
 * new block (b is handed): a killed fast run leaves tens of thousands of
 * suspects in a row, and a block each (~0.5 KiB) waiting for every item
 * before them grew a resume's memory by tens of MB.  Returns the open block
 * (the caller hands the last), NULL when out of memory. */
static weft__block_t *run_suspect(weft__engine_t *r, weft__block_t *b,
                                  const weft_item_t *item)
{
    worker_t *wk = &r->workers[0];
    uint64_t index = item->index;
    if (b && b->first + b->count != index) {
        block_hand(r, b);
        b = NULL;
    }
    if (!b && !(b = block_open(r, 0, index)))
        return NULL;
    slot_t slot;
    wk->msgs.len = 0;
    if (weft__item_reuse(r, &b->bytes, &wk->msgs, item, index, &slot)) {
        weft__jlog_add(r, wk, item, index, &slot, b->bytes.data + slot.off,
                       wk->msgs.data + slot.msg_off, NULL); /* a quarantine */
    } else {
        weft__journal_begin(r->journal, index);
        char why[MSG_SIZE];
        weft_result_t res;
        const char *msg = NULL;
        unsigned attempts = 0;
        int64_t t0 = weft__mono_ns();
        item_status_t st = weft__item_call(r, wk, item, &res, &msg, why, sizeof why, &attempts);
        weft__jtime_t t = weft__jlog_time(r, attempts, t0, weft__mono_ns());
        weft__item_encode(r, &b->bytes, &wk->msgs, item, st, msg, &res, &slot);
        weft__jlog_add(r, wk, item, index, &slot, b->bytes.data + slot.off,
                       wk->msgs.data + slot.msg_off, &t);
        weft__jlog_flush(r, wk, true);
        if (st != ST_OK && st != ST_NOT_RUN)
            weft__item_failed(r);
    }
    weft__item_block_add(b, index, &slot, &wk->msgs);
    return b;
}

/* Items of a text source are reached by reading it once more (a second
 * instance, up to the last suspect); the engine's own is untouched. */
static int run_suspects(weft__engine_t *r)
{
    const weft__source_t *src = r->source;
    uint64_t total = src->total;
    weft__block_t *b = NULL;
    if (src->vt->at) {
        for (size_t k = 0; k < r->n_suspects && !atomic_load(&weft__run_stop); k++) {
            weft_item_t item;
            r->suspects_run = k + 1;
            if (r->suspects[k] < total) {
                src->vt->at(src, r->suspects[k], &item);
                b = run_suspect(r, b, &item);
            }
        }
        block_hand(r, b);
        return 0;
    }
    weft__source_t *again = NULL;
    char err[ERR_SIZE];
    weft_item_t *items = malloc(4096 * sizeof *items);
    int rc = items ? weft__source_open(&again, r->cfg, err, sizeof err) : -ENOMEM;
    size_t k = 0;
    while (rc == 0 && k < r->n_suspects && !atomic_load(&weft__run_stop)) {
        size_t got = 0;
        rc = weft__source_next(again, items, 4096, &got, err, sizeof err);
        if (rc || got == 0)
            break;
        for (size_t i = 0; i < got && k < r->n_suspects; i++) {
            while (k < r->n_suspects && r->suspects[k] < items[i].index)
                k++; /* not an item any more (the source changed; --force) */
            if (k < r->n_suspects && r->suspects[k] == items[i].index) {
                if (atomic_load(&weft__run_stop))
                    break;
                b = run_suspect(r, b, &items[i]);
                r->suspects_run = ++k;
            }
        }
    }
    block_hand(r, b);
    free(items);
    weft__source_close(&again);
    if (rc) {
        fprintf(stderr, "weft: items: %s\n", rc == -ENOMEM ? "out of memory" : err);
        return WEFT_EXIT_USAGE;
    }
    return 0;
}

/* The reorder buffer lost a block (out of memory): its prefix cannot
 * pass it any more, so the claims would wait forever; stop the run. */
static void engine_check_broken(weft__engine_t *r)
{
    weft__reorder_totals_t t;
    weft__reorder_totals(r->reorder, &t);
    int running = 0;
    if (t.write_error == -ENOMEM)
        atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
}

/* Takes what the workers finished; returns true if anything was put. */
static bool drain_once(weft__engine_t *r)
{
    if (weft__reorder_idle(r->reorder))
        return false;
    double t0 = weft__mono_s();
    /* Room made (the prefix moved, or bytes went out): claims told to
     * wait try again. */
    if (weft__reorder_drain(r->reorder) && r->pool)
        weft__pool_wake(r->pool);
    engine_check_broken(r);
    r->t_output += weft__mono_s() - t0;
    return true;
}

/* Flushes the output when it is due (or `now`); syncs the journal at most
 * once a second. */
static void drain_flush(weft__engine_t *r, bool now)
{
    double t = weft__mono_s();
    struct weft__drain *d = r->drain;
    if (r->writer && weft__writer_buffered(r->writer) &&
        (now || weft__writer_buffered(r->writer) >= FLUSH_BYTES ||
         t - d->flushed >= FLUSH_S)) {
        weft__writer_flush(r->writer); /* an error is reported at close */
        d->flushed = t;
    }
    if (r->journal && t - r->journal_synced >= JOURNAL_SYNC_S) {
        int e = weft__journal_sync(r->journal);
        int none = 0;
        if (e)
            atomic_compare_exchange_strong(&r->journal_error, &none, e);
        r->journal_synced = t;
    }
}

static void *drain_main(void *arg)
{
    weft__engine_t *r = arg;
    struct weft__drain *d = r->drain;
    for (;;) {
        if (drain_once(r)) {
            drain_flush(r, false);
            continue;
        }
        /* Idle: what is buffered goes out now (streaming). */
        drain_flush(r, true);
        pthread_mutex_lock(&d->lock);
        atomic_store_explicit(&d->sleeping, true, memory_order_seq_cst);
        bool closing = d->closing;
        if (!closing && weft__reorder_idle(r->reorder)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += (long)(DRAIN_POLL_S * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&d->cond, &d->lock, &ts);
            closing = d->closing;
        }
        atomic_store_explicit(&d->sleeping, false, memory_order_relaxed);
        pthread_mutex_unlock(&d->lock);
        if (closing && weft__reorder_idle(r->reorder))
            break; /* every block was put before closing was set */
    }
    return NULL;
}

/* Starts the drain on d (which must outlive drain_stop). */
static int drain_start(weft__engine_t *r, struct weft__drain *d)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the drain's timed waits */
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&d->sleeping, false);
    d->closing = false;
    d->flushed = weft__mono_s();
    r->drain = d;
    if (pthread_create(&d->thread, NULL, drain_main, r) != 0) {
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        r->drain = NULL;
        return -EAGAIN;
    }
    d->started = true;
    return 0;
}

static void drain_stop(weft__engine_t *r)
{
    struct weft__drain *d = r->drain;
    if (!d || !d->started)
        return;
    pthread_mutex_lock(&d->lock);
    d->closing = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    d->started = false;
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    r->drain = NULL;
}

/* Thread mode: the pool runs the claims until the items end or a stop. */
int weft__engine_threads(weft__engine_t *r)
{
    struct weft__drain drain = {0};
    if (drain_start(r, &drain) != 0) {
        fprintf(stderr, "weft: cannot start the output thread (the system refused: too many "
                        "processes or threads?)\n");
        return WEFT_EXIT_USAGE;
    }
    weft__host_item_begin(0); /* weft__item_call sets it only with a timeout */
    r->ints_fast = weft__item_ints_fast(r);
    int status = 0;
    if (r->n_suspects)
        status = run_suspects(r);
    weft__claim_t claim = {claim_next, r};
    int rc = status ? 0 : weft__pool_run(r->pool, 0, run_chunk, r, &claim);
    /* This thread was a worker too: what it commits from now on (a
     * plugin's finish, destroy) is synced at once, not left in a batch. */
    weft__outbatch_bind(NULL);
    drain_stop(r);
    if (rc) {
        fprintf(stderr, "weft: pool: %s\n", weft_strerror(rc));
        return WEFT_EXIT_OUTPUT;
    }
    return status ? status : weft__run_source_status(r);
}
