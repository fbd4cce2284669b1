/* SPDX-License-Identifier: MIT */
/*
 * The runner, thread mode, and what both modes share.
 *
 * The engine.  Workers claim ranges of items continuously (core/run/claim.h,
 * through the pool's claim interface, core/pool/pool.h); the pool times the
 * items and exposes the rest of a range while a long one runs.  Each call
 * the pool makes (a chunk) runs its items into one block: encoded records,
 * outcome counts, failure notes.  Blocks go to the reorder buffer
 * (core/run/reorder.h), which a drain thread empties into the output as soon
 * as a block may go out: in input order once every earlier item is out,
 * or at once with order = any.  No barrier anywhere: the claim source
 * simply hands out nothing beyond a span past the oldest item not yet out,
 * which bounds memory.  The drain flushes the output when it has nothing
 * else to do (and at most every FLUSH_S while records keep coming), so a
 * finished result reaches a file or a pipe within ~FLUSH_S.
 *
 * The journal.  Each worker also appends its finished items, with their
 * encoded bytes, to its own journal buffer; it hands the buffer to the
 * journal (one write) when it holds 1 MiB, is 50 ms old, or its chunk took
 * over a millisecond (slow items: each is journaled as it ends); the drain
 * fdatasyncs at most once a second.  A crash therefore loses at most the
 * last ~50 ms of work per worker plus what the OS had not written.  A
 * WINDOW record for each claim says what was in flight, for poison
 * detection on resume.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "altstack.h"
#include "children.h"
#include "run_impl.h"
#include "summary.h"

enum { SPAN_ITEMS = 1 << 18, FLUSH_BYTES = 64 << 10 };
#define SPAN_BYTES ((uint64_t)64 << 20) /* records waiting for an earlier item */
#define FLUSH_S 0.02                    /* output flushed at least this often  */
#define DRAIN_POLL_S 0.01               /* the drain looks for blocks this often */
#define CHUNK_SLOW_S 0.001              /* a chunk this long: journal it now   */

enum { JOURNAL_CHUNK_BYTES = 1 << 20 };
#define JOURNAL_CHUNK_AGE_S 0.05
#define JOURNAL_SYNC_S 1.0

atomic_int weft__run_stop;
static atomic_int stop_signal;  /* the first SIGINT/SIGTERM, or 0        */
static atomic_int stop_halted;  /* the failure policy stopped the run    */
static weft__iso_t *volatile signal_iso; /* process mode: killed on a 2nd signal */

double weft__run_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- signals -------------------------------------------------------------- */

static void put_str(const char *s)
{
    ssize_t unused = write(STDERR_FILENO, s, strlen(s));
    (void)unused;
}

/* First SIGINT/SIGTERM: stop soon.  Second: at once (only write, kill and
 * _exit here: async-signal-safe).  The journal's records are each one
 * write(2), so whatever it holds stays readable. */
static void on_signal(int sig)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&stop_signal, &expected, sig)) {
        put_str("\nweft: second signal: exiting at once; the journal keeps what was done\n");
        if (signal_iso)
            weft__iso_kill_all(signal_iso);
        weft__children_kill_all(); /* what the plugin started dies with us */
        _exit(128 + sig);
    }
    int soon = 0;
    atomic_compare_exchange_strong(&weft__run_stop, &soon, 1);
    put_str(sig == SIGINT ? "\nweft: SIGINT: finishing the items in flight (again to quit at once)\n"
                          : "\nweft: SIGTERM: finishing the items in flight (again to quit at once)\n");
}

static void signals_install(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

static void signals_restore(const struct sigaction *old_int, const struct sigaction *old_term)
{
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGTERM, old_term, NULL);
}

/* Thread mode: a plugin that crashes takes weft down.  Before it goes, the
 * journal learns which items were running (one CRASH record, one write):
 * an item named by two crashes in a row is quarantined on resume, while a
 * kill -9, which names nothing, quarantines nothing.  The processes the
 * plugin started are killed too. */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define N_CRASH_SIGNALS (sizeof crash_signals / sizeof *crash_signals)
static struct sigaction crash_old[N_CRASH_SIGNALS];
static run_t *volatile crash_run;

static void on_crash(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    run_t *r = crash_run;
    crash_run = NULL; /* once */
    if (r && r->journal) {
        uint64_t items[64];
        size_t n = 0;
        for (unsigned t = 0; t < r->threads && n < 64; t++) {
            uint64_t v = __atomic_load_n(&r->workers[t].current, __ATOMIC_RELAXED);
            if (v != UINT64_MAX)
                items[n++] = v;
        }
        unsigned char rec[24 + 8 * 64];
        size_t len = weft__journal_crash_record(rec, sizeof rec, sig, items, n);
        ssize_t unused = write(weft__journal_fd(r->journal), rec, len);
        (void)unused;
        put_str("weft: crashed in the plugin; the journal names the items that were running\n");
    }
    if (r)
        weft__children_kill_all();
    /* The handler before ours (default, or a sanitizer's) takes over: a
     * fault happens again on return; a sent signal is raised again. */
    for (size_t k = 0; k < N_CRASH_SIGNALS; k++)
        if (crash_signals[k] == sig)
            sigaction(sig, &crash_old[k], NULL);
    if (info->si_code <= 0)
        raise(sig);
}

static void crash_handlers(run_t *r, bool on)
{
    if (on) {
        /* SA_ONSTACK: a stack overflow is handled on the alternate stack
         * (each worker sets one up in run_chunk, the caller here). */
        struct sigaction sa = {.sa_sigaction = on_crash, .sa_flags = SA_SIGINFO | SA_ONSTACK};
        sigemptyset(&sa.sa_mask);
        weft__altstack_ensure();
        crash_run = r;
        for (size_t k = 0; k < N_CRASH_SIGNALS; k++)
            sigaction(crash_signals[k], &sa, &crash_old[k]);
    } else {
        crash_run = NULL;
        for (size_t k = 0; k < N_CRASH_SIGNALS; k++)
            sigaction(crash_signals[k], &crash_old[k], NULL);
    }
}

/* ---- the per-item path (shared) ----------------------------------------- */

static int encode_record(run_t *r, weft__buf_t *buf, const weft_item_t *item,
                         const weft_result_t *res, const char *failure, char *why,
                         size_t whylen);

/* Splits the minified JSON array at buf->data + list_off (len bytes) into
 * its top-level elements, appending each as a framed record (flatten =
 * true).  The list lives in the buffer it appends to, so it is addressed
 * by offset, and room is reserved before each element so that the buffer
 * cannot move while the element is copied.  Returns the record count. */
static uint32_t splice_list(run_t *r, weft__buf_t *buf, size_t list_off, size_t len,
                            const weft_item_t *item, int *e, char *why, size_t whylen)
{
    uint32_t n = 0;
    size_t start = 1, depth = 0;
    bool in_string = false;
    for (size_t k = 1; k < len && !*e; k++) {
        char c = buf->data[list_off + k];
        if (in_string) {
            if (c == '\\')
                k++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && depth)
            depth--;
        else if ((c == ',' || (c == ']' && k == len - 1)) && depth == 0) {
            if (k > start) {
                /* frame + {"index":..,"ok":true,"value": + } + frame < 128 */
                *e = weft__buf_reserve(buf, k - start + 128);
                if (*e)
                    break;
                weft_result_t elem = {.kind = WEFT_VALUE_JSON};
                elem.value.s.ptr = buf->data + list_off + start;
                elem.value.s.len = k - start;
                *e = encode_record(r, buf, item, &elem, NULL, why, whylen);
                n++;
            }
            start = k + 1;
        }
    }
    return n;
}

/* Appends one framed record: {"index":..,"ok":..,"value"/"error":..} in
 * record = full, else the value (null for a failure).  -EINVAL with `why`
 * when the value cannot be encoded. */
static int encode_record(run_t *r, weft__buf_t *buf, const weft_item_t *item,
                         const weft_result_t *res, const char *failure, char *why,
                         size_t whylen)
{
    char head[64];
    bool full = r->cfg->record == WEFT__RECORD_FULL;
    int e = weft__buf_append(buf, r->frame.prefix, r->frame.prefix_len);
    if (e == 0 && full) {
        int n = snprintf(head, sizeof head, "{\"index\":%" PRIu64 ",\"ok\":%s", item->index,
                         failure ? "false,\"error\":" : "true,\"value\":");
        e = weft__buf_append(buf, head, (size_t)n);
    }
    if (e == 0)
        e = failure ? (full ? weft__json_string(buf, failure, strlen(failure))
                            : weft__buf_append(buf, "null", 4))
                    : weft__json_value(buf, res, why, whylen);
    if (e == 0 && full)
        e = weft__buf_append(buf, "}", 1);
    if (e == 0)
        e = weft__buf_append(buf, r->frame.suffix, r->frame.suffix_len);
    return e;
}

/* A successful result's records; -EINVAL with `why` when the value cannot
 * be encoded (then nothing is appended). */
static int encode_ok(run_t *r, weft__buf_t *buf, const weft_item_t *item,
                     const weft_result_t *res, uint32_t *records, char *why, size_t whylen)
{
    size_t mark = buf->len;
    if (!r->cfg->flatten) {
        *records = 1;
        return encode_record(r, buf, item, res, NULL, why, whylen);
    }
    /* flatten: the value goes to scratch space first; a list is spliced,
     * anything else is encoded again as one record (rare: flatten is for
     * lists). */
    int e = weft__json_value(buf, res, why, whylen);
    if (e)
        return e;
    size_t vlen = buf->len - mark;
    if (buf->data[mark] != '[') {
        buf->len = mark;
        *records = 1;
        return encode_record(r, buf, item, res, NULL, why, whylen);
    }
    /* Elements are appended after the scratch copy, then moved down. */
    *records = splice_list(r, buf, mark, vlen, item, &e, why, whylen);
    if (e == 0) {
        memmove(buf->data + mark, buf->data + mark + vlen, buf->len - mark - vlen);
        buf->len -= vlen;
    }
    return e;
}

static void slot_message(weft__buf_t *msgs, slot_t *slot, const char *msg, size_t n)
{
    slot->msg_len = 0;
    if (!msg)
        return;
    if (n > MSG_SIZE - 1)
        n = MSG_SIZE - 1;
    slot->msg_off = (uint32_t)msgs->len;
    if (weft__buf_append(msgs, msg, n) == 0)
        slot->msg_len = (uint16_t)n;
}

/* The per-item functions are defined once, here, as HOT static inlines
 * (the thread engine's loop calls them per item; a call each would cost
 * more than most of what they do) and exported as plain functions for the
 * process engine. */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

HOT void encode_item(run_t *r, weft__buf_t *buf, weft__buf_t *msgs, const weft_item_t *item,
                     item_status_t status, const char *msg, const weft_result_t *res,
                     slot_t *slot)
{
    size_t mark = buf->len;
    if (status == ST_OK && !r->writes_records) {
        *slot = (slot_t){.off = mark, .status = ST_OK}; /* nothing to keep */
        return;
    }
    char why[256];
    why[0] = '\0';
    slot->records = 0;
    slot->reused = 0;
    if (status == ST_OK && r->writes_records) {
        int e = encode_ok(r, buf, item, res, &slot->records, why, sizeof why);
        if (e == 0 && buf->len - mark > UINT32_MAX) {
            e = -E2BIG;
            snprintf(why, sizeof why, "the result is over 4 GiB encoded");
        }
        if (e != 0) {
            /* A result that cannot be encoded fails its item, nothing else. */
            buf->len = mark;
            status = ST_FAILED;
            msg = e == -ENOMEM ? "out of memory encoding the result" : why;
        }
    }
    if (status == ST_NOT_RUN && r->null_not_run) {
        /* record = value keeps one entry per item: null, like a failure. */
        slot->records = 1;
        char unused[8];
        if (encode_record(r, buf, item, res, "", unused, sizeof unused) != 0) {
            buf->len = mark;
            slot->records = 0;
        }
    } else if (status != ST_OK && status != ST_NOT_RUN && r->writes_records) {
        slot->records = 1;
        char unused[8];
        if (encode_record(r, buf, item, res, msg, unused, sizeof unused) != 0) {
            buf->len = mark; /* out of memory: the message below still counts */
            slot->records = 0;
        }
    }
    slot->off = mark;
    slot->len = (uint32_t)(buf->len - mark);
    slot->status = (uint8_t)status;
    slot_message(msgs, slot, status == ST_OK ? NULL : msg, msg ? strlen(msg) : 0);
}

void weft__run_encode(run_t *r, weft__buf_t *buf, weft__buf_t *msgs, const weft_item_t *item,
                      item_status_t status, const char *msg, const weft_result_t *res,
                      slot_t *slot)
{
    encode_item(r, buf, msgs, item, status, msg, res, slot);
}

HOT item_status_t call_item(run_t *r, worker_t *wk, const weft_item_t *item,
                           weft_result_t *res, const char **msg, char *why, size_t whylen)
{
    const weft_plugin_t *p = &r->plugin->desc;
    void *row = r->npy ? weft__npy_row(r->npy, item->index) : NULL;
    double timeout = r->cfg->timeout;
    for (unsigned attempt = 0;; attempt++) {
        *res = (weft_result_t){.kind = WEFT_VALUE_NONE, .msg = wk->msg, .msg_size = MSG_SIZE,
                               .row = row};
        wk->msg[0] = '\0';
        double deadline = 0;
        if (timeout > 0) { /* else the deadline stays 0 (set at each start) */
            deadline = weft__host_now() + timeout;
            weft__host_item_begin(deadline);
        }
        __atomic_store_n(&wk->current, item->index, __ATOMIC_RELAXED);
        int rc = p->process_one(r->state, wk->ctx, item, res);
        __atomic_store_n(&wk->current, UINT64_MAX, __ATOMIC_RELAXED);
        if (rc == 0)
            return ST_OK;
        if (row)
            memset(row, 0, weft__npy_row_bytes(r->npy)); /* no half-written rows */
        bool late = deadline > 0 && weft__host_now() >= deadline;
        if (attempt < r->cfg->retries && !late &&
            atomic_load_explicit(&weft__run_stop, memory_order_relaxed) < 2)
            continue;
        if (late) {
            snprintf(why, whylen, "timed out after %g s%s%.960s", timeout,
                     wk->msg[0] ? ": " : "", wk->msg);
            *msg = why;
            return ST_TIMED_OUT;
        }
        if (wk->msg[0]) {
            *msg = wk->msg;
        } else {
            snprintf(why, whylen, "process_one returned %d", rc);
            *msg = why;
        }
        return ST_FAILED;
    }
}

item_status_t weft__run_call(run_t *r, worker_t *wk, const weft_item_t *item,
                             weft_result_t *res, const char **msg, char *why, size_t whylen)
{
    return call_item(r, wk, item, res, msg, why, whylen);
}

void weft__run_failed(run_t *r)
{
    uint64_t f = atomic_fetch_add(&r->failures, 1) + 1;
    const weft__halt_t *h = &r->cfg->halt;
    if (h->mode == WEFT__HALT_NEVER)
        return;
    bool trip;
    if (h->fail_count) {
        trip = f >= h->fail_count;
    } else {
        /* Items finished so far: the workers' counts (each its own line,
         * read here on the rare failure path only) plus this one. */
        uint64_t done = 1;
        for (unsigned t = 0; t < r->threads; t++)
            done += __atomic_load_n(&r->workers[t].done, __ATOMIC_RELAXED);
        trip = done * h->fail_percent >= 100.0 && (double)f * 100.0 >= h->fail_percent * (double)done;
    }
    if (!trip)
        return;
    atomic_store(&stop_halted, 1);
    int want = h->mode == WEFT__HALT_NOW ? 2 : 1, cur = atomic_load(&weft__run_stop);
    while (cur < want && !atomic_compare_exchange_weak(&weft__run_stop, &cur, want))
        ;
}

bool weft__run_in_set(const uint64_t *set, size_t n, uint64_t index)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set[mid] < index)
            lo = mid + 1;
        else if (set[mid] > index)
            hi = mid;
        else
            return true;
    }
    return false;
}

bool weft__run_reuse(run_t *r, weft__buf_t *buf, weft__buf_t *msgs, const weft_item_t *item,
                     uint64_t index, slot_t *slot)
{
    static const char poison[] = "quarantined: it was running when weft crashed, twice in a row "
                                 "(run with --retry-failed to try it again)";
    if (r->n_poison && !r->opts->retry_failed && weft__run_in_set(r->poison, r->n_poison, index)) {
        weft_result_t none = {0};
        weft__run_encode(r, buf, msgs, item, ST_QUARANTINED, poison, &none, slot);
        return true;
    }
    weft__jentry_t e;
    if (!weft__jscan_get(r->scan, index, &e))
        return false;
    if (e.status != WEFT__J_OK && r->opts->retry_failed)
        return false;
    if (e.item_hash != weft__item_hash(item))
        return false; /* --force, and the item changed: run it again */
    size_t mark = buf->len;
    slot->records = 0;
    if (r->npy) {
        if (e.len == weft__npy_row_bytes(r->npy))
            memcpy(weft__npy_row(r->npy, index), e.bytes, e.len);
        else if (e.status == WEFT__J_OK)
            return false;
    } else if (r->writes_records && e.len) {
        if (weft__buf_append(buf, e.bytes, e.len) != 0)
            return false; /* out of memory: run it instead */
        slot->records = e.records;
    }
    slot->off = mark;
    slot->len = (uint32_t)(buf->len - mark);
    slot->status = (uint8_t)e.status;
    slot->reused = 1;
    slot_message(msgs, slot, e.status == WEFT__J_OK ? NULL : e.msg, e.msg_len);
    return true;
}

void weft__run_journal_flush(run_t *r, worker_t *wk, bool force)
{
    if (!wk->jopen)
        return;
    double t = weft__run_now();
    if (!force && wk->jbuf.len - wk->jmark < JOURNAL_CHUNK_BYTES &&
        t - wk->jflushed < JOURNAL_CHUNK_AGE_S)
        return;
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

void weft__run_journal_add(run_t *r, worker_t *wk, const weft_item_t *item, uint64_t index,
                           const slot_t *slot, const char *bytes, const char *msg)
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
    if (weft__jchunk_add(&wk->jbuf, index, weft__item_hash(item), slot->status, slot->records,
                         bytes, len, slot->msg_len ? msg : NULL, slot->msg_len) != 0)
        goto nomem;
    return;
nomem:;
    int none = 0, running = 0;
    atomic_compare_exchange_strong(&r->journal_error, &none, -ENOMEM);
    atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
}

HOT void block_add(weft__block_t *b, uint64_t index, const slot_t *slot,
                   const weft__buf_t *msgs)
{
    b->count++;
    b->records += slot->records;
    b->counts[slot->status]++;
    if (slot->reused)
        b->reused[slot->status]++;
    if (slot->status != ST_OK && slot->status != ST_NOT_RUN)
        weft__block_note(b, index, slot->status, slot->reused,
                         slot->msg_len ? msgs->data + slot->msg_off : "(no message)",
                         slot->msg_len ? slot->msg_len : 12);
}

void weft__run_block_add(run_t *r, weft__block_t *b, uint64_t index, const slot_t *slot,
                         const weft__buf_t *msgs)
{
    (void)r;
    block_add(b, index, slot, msgs);
}

int weft__run_source_status(run_t *r)
{
    const char *why = r->feed ? weft__feed_error(r->feed) : NULL;
    if (!why)
        return 0;
    fprintf(stderr, "weft: items: %s\n", why);
    return WEFT_EXIT_USAGE;
}

/* ---- the per-item path -------------------------------------------------- */

enum item_fate { FATE_NOT_RUN, FATE_REUSED, FATE_OK, FATE_FAILED };

/* One item into block b: not run once stopped, reused from the journal on
 * resume, else run; encoded, journaled, counted. */
HOT enum item_fate run_item(run_t *r, worker_t *wk, weft__block_t *b,
                               const weft_item_t *item)
{
    slot_t slot;
    weft__buf_t *buf = &b->bytes;
    wk->msgs.len = 0;
    enum item_fate fate = FATE_NOT_RUN;
    /* Relaxed: a stop only has to be seen soon, not at once. */
    if (atomic_load_explicit(&weft__run_stop, memory_order_relaxed)) {
        weft_result_t none = {0};
        encode_item(r, buf, &wk->msgs, item, ST_NOT_RUN, NULL, &none, &slot);
    } else if (r->scan && weft__run_reuse(r, buf, &wk->msgs, item, item->index, &slot)) {
        /* A quarantine is journaled; a reused entry is not (reused). */
        weft__run_journal_add(r, wk, item, item->index, &slot, buf->data + slot.off,
                              wk->msgs.data + slot.msg_off);
        fate = FATE_REUSED;
    } else {
        char why[MSG_SIZE];
        weft_result_t res;
        const char *msg = NULL;
        item_status_t st = call_item(r, wk, item, &res, &msg, why, sizeof why);
        encode_item(r, buf, &wk->msgs, item, st, msg, &res, &slot);
        weft__run_journal_add(r, wk, item, item->index, &slot, buf->data + slot.off,
                              wk->msgs.data + slot.msg_off);
        fate = slot.status == ST_OK ? FATE_OK : FATE_FAILED;
    }
    block_add(b, item->index, &slot, &wk->msgs);
    return fate;
}

/* Wakes the drain when it sleeps (Dekker pair: our seq_cst put, then this
 * seq_cst load; its seq_cst store of the flag, then its idle re-check). */
static void drain_wake(run_t *r)
{
    if (!atomic_load_explicit(&r->drain_sleeping, memory_order_seq_cst))
        return;
    pthread_mutex_lock(&r->lock);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* A block that holds items goes to the reorder buffer; an empty one back.
 * The drain polls every DRAIN_POLL_S (streaming needs no more); it is woken
 * early only when the span is filling up, so claims never wait for it. */
static void block_hand(run_t *r, weft__block_t *b)
{
    if (!b)
        return;
    if (!b->count) {
        weft__reorder_block_drop(r->reorder, b);
        return;
    }
    uint64_t end = b->first + b->count;
    weft__reorder_put(r->reorder, b);
    if (end > weft__reorder_prefix(r->reorder) + SPAN_ITEMS / 4)
        drain_wake(r);
}

static weft__block_t *block_open(run_t *r, unsigned worker, uint64_t first)
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

/* ---- thread mode: the pool's chunks ------------------------------------- */

/* The plugin's process_range over a whole chunk (see r->batch): true when
 * every item succeeded; false leaves no trace (the plugin's contract), and
 * the items run one by one to find the failures. */
static bool run_batch(run_t *r, worker_t *wk, weft__block_t *b, size_t begin, size_t end)
{
    if (atomic_load_explicit(&weft__run_stop, memory_order_relaxed))
        return false; /* the loop marks them not run */
    const weft_plugin_t *p = &r->plugin->desc;
    weft_item_t first;
    weft__feed_item(r->feed, begin, &first);
    __atomic_store_n(&wk->current, (uint64_t)begin, __ATOMIC_RELAXED);
    int rc = p->process_range(r->state, wk->ctx, begin, first.number, end - begin, wk->msg,
                              MSG_SIZE);
    __atomic_store_n(&wk->current, UINT64_MAX, __ATOMIC_RELAXED);
    if (rc)
        return false;
    b->count = end - begin;
    b->counts[ST_OK] += end - begin;
    return true;
}

static void run_chunk(void *arg, size_t begin, size_t end, unsigned worker)
{
    run_t *r = arg;
    worker_t *wk = &r->workers[worker];
    uint64_t ok = 0, failed = 0, reused = 0;
    weft_item_t computed;
    double t0 = weft__run_now();

    weft__altstack_ensure(); /* see crash_handlers */
    weft__block_t *b = block_open(r, worker, begin);
    if (r->batch && b && run_batch(r, wk, b, begin, end)) {
        ok = end - begin;
        begin = end; /* done: no item left for the loop */
    }
    for (size_t i = begin; i < end; i++) {
        if (r->suspects_run && weft__run_in_set(r->suspects, r->suspects_run, i)) {
            /* Ran alone before the engine started (run_suspects). */
            block_hand(r, b);
            b = block_open(r, worker, i + 1);
            continue;
        }
        if (!b) {
            /* Out of memory: this item cannot be kept; a fresh try for the
             * next one (it also stays not run, the run is stopping). */
            b = block_open(r, worker, i + 1);
            continue;
        }
        switch (run_item(r, wk, b, weft__feed_item(r->feed, i, &computed))) {
        case FATE_OK: ok++; break;
        case FATE_FAILED:
            failed++;
            weft__run_failed(r);
            break;
        case FATE_REUSED: reused++; break;
        case FATE_NOT_RUN: break;
        }
    }
    block_hand(r, b);
    if (ok + failed)
        __atomic_store_n(&wk->done, wk->done + ok + failed, __ATOMIC_RELAXED);
    weft__progress_add(r->progress, worker, ok, failed);
    if (reused)
        weft__progress_skip(r->progress, reused);
    /* Slow items: each chunk's entries reach the journal as it ends. */
    weft__run_journal_flush(r, wk, weft__run_now() - t0 >= CHUNK_SLOW_S);
}

/* Each claim is journaled as in flight (poison detection on resume). */
static weft__claim_status_t claim_next(void *arg, unsigned worker, weft__range_t *out)
{
    run_t *r = arg;
    weft__claim_status_t st = weft__feed_claim(r->feed, worker, out);
    if (st == WEFT__CLAIM_OK && r->journal)
        weft__journal_window(r->journal, out->begin, out->end - out->begin);
    if (st == WEFT__CLAIM_WAIT)
        drain_wake(r); /* the span is full: the drain makes room */
    return st;
}

/* Resume after a crash (thread mode): items that were in flight when it
 * happened run first, one at a time, each announced in the journal, so that
 * a second crash names its culprit exactly (then quarantined as poison).
 * Their blocks wait in the reorder buffer; the engine skips them. */
static void run_suspect(run_t *r, const weft_item_t *item)
{
    worker_t *wk = &r->workers[0];
    uint64_t index = item->index;
    weft__block_t *b = block_open(r, 0, index);
    if (!b)
        return;
    slot_t slot;
    wk->msgs.len = 0;
    if (weft__run_reuse(r, &b->bytes, &wk->msgs, item, index, &slot)) {
        weft__run_journal_add(r, wk, item, index, &slot, b->bytes.data + slot.off,
                              wk->msgs.data + slot.msg_off); /* a quarantine */
    } else {
        weft__journal_begin(r->journal, index);
        char why[MSG_SIZE];
        weft_result_t res;
        const char *msg = NULL;
        item_status_t st = weft__run_call(r, wk, item, &res, &msg, why, sizeof why);
        weft__run_encode(r, &b->bytes, &wk->msgs, item, st, msg, &res, &slot);
        weft__run_journal_add(r, wk, item, index, &slot, b->bytes.data + slot.off,
                              wk->msgs.data + slot.msg_off);
        weft__run_journal_flush(r, wk, true);
        if (st != ST_OK)
            weft__run_failed(r);
    }
    weft__run_block_add(r, b, index, &slot, &wk->msgs);
    block_hand(r, b);
}

/* Items of a text source are reached by reading it once more (a second
 * instance, up to the last suspect); the engine's own is untouched. */
static int run_suspects(run_t *r)
{
    const weft__source_t *src = r->source;
    uint64_t total = src->total;
    if (src->vt->at) {
        for (size_t k = 0; k < r->n_suspects && !atomic_load(&weft__run_stop); k++) {
            weft_item_t item;
            r->suspects_run = k + 1;
            if (r->suspects[k] < total) {
                src->vt->at(src, r->suspects[k], &item);
                run_suspect(r, &item);
            }
        }
        return 0;
    }
    weft__source_t *again = NULL;
    weft_item_t *items = malloc(4096 * sizeof *items);
    int rc = items ? weft__source_open(&again, r->cfg, r->err, ERR_SIZE) : -ENOMEM;
    size_t k = 0;
    while (rc == 0 && k < r->n_suspects && !atomic_load(&weft__run_stop)) {
        size_t got = 0;
        rc = weft__source_next(again, items, 4096, &got, r->err, ERR_SIZE);
        if (rc || got == 0)
            break;
        for (size_t i = 0; i < got && k < r->n_suspects; i++) {
            while (k < r->n_suspects && r->suspects[k] < items[i].index)
                k++; /* not an item any more (the source changed; --force) */
            if (k < r->n_suspects && r->suspects[k] == items[i].index) {
                if (atomic_load(&weft__run_stop))
                    break;
                run_suspect(r, &items[i]);
                r->suspects_run = ++k;
            }
        }
    }
    free(items);
    weft__source_close(&again);
    if (rc) {
        fprintf(stderr, "weft: items: %s\n", rc == -ENOMEM ? "out of memory" : r->err);
        return WEFT_EXIT_USAGE;
    }
    return 0;
}

/* ---- the drain ------------------------------------------------------------ */

static void print_failure(void *arg, uint64_t index, unsigned status, bool reused,
                          const char *msg, size_t len)
{
    run_t *r = arg;
    /* Crashes, timeouts and quarantines say so in their message. */
    weft__progress_message(r->progress, "weft: item %" PRIu64 "%s%s: %.*s\n", index,
                           status == ST_FAILED ? " failed" : "",
                           reused ? " (in an earlier run)" : "", (int)len, msg);
}

/* The reorder buffer lost a block (out of memory): its prefix cannot
 * pass it any more, so the claims would wait forever; stop the run. */
static void engine_check_broken(run_t *r)
{
    weft__reorder_totals_t t;
    weft__reorder_totals(r->reorder, &t);
    int running = 0;
    if (t.write_error == -ENOMEM)
        atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
}

/* Takes what the workers finished; returns true if anything was put. */
static bool drain_once(run_t *r)
{
    if (weft__reorder_idle(r->reorder))
        return false;
    double t0 = weft__run_now();
    /* Room made (the prefix moved, or bytes went out): claims told to
     * wait try again. */
    if (weft__reorder_drain(r->reorder) && r->pool)
        weft__pool_wake(r->pool);
    engine_check_broken(r);
    r->t_output += weft__run_now() - t0;
    return true;
}

/* Flushes the output when it is due (or `now`); syncs the journal at most
 * once a second. */
static void drain_flush(run_t *r, bool now)
{
    double t = weft__run_now();
    if (r->writer && weft__writer_buffered(r->writer) &&
        (now || weft__writer_buffered(r->writer) >= FLUSH_BYTES || t - r->flushed >= FLUSH_S)) {
        weft__writer_flush(r->writer); /* an error is reported at close */
        r->flushed = t;
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
    run_t *r = arg;
    for (;;) {
        if (drain_once(r)) {
            drain_flush(r, false);
            continue;
        }
        /* Idle: what is buffered goes out now (streaming). */
        drain_flush(r, true);
        pthread_mutex_lock(&r->lock);
        atomic_store_explicit(&r->drain_sleeping, true, memory_order_seq_cst);
        bool closing = r->closing;
        if (!closing && weft__reorder_idle(r->reorder)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += (long)(DRAIN_POLL_S * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
            closing = r->closing;
        }
        atomic_store_explicit(&r->drain_sleeping, false, memory_order_relaxed);
        pthread_mutex_unlock(&r->lock);
        if (closing && weft__reorder_idle(r->reorder))
            break; /* every block was put before closing was set */
    }
    return NULL;
}

static int drain_start(run_t *r)
{
    if (pthread_create(&r->drain_thread, NULL, drain_main, r) != 0)
        return -EAGAIN;
    r->drain_started = true;
    return 0;
}

static void drain_stop(run_t *r)
{
    if (!r->drain_started)
        return;
    pthread_mutex_lock(&r->lock);
    r->closing = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->drain_thread, NULL);
    r->drain_started = false;
}

/* ---- set-up and tear-down ----------------------------------------------- */

static int usage_error(const char *msg)
{
    fprintf(stderr, "weft: %s\n", msg);
    return WEFT_EXIT_USAGE;
}

static void workers_fini(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    for (unsigned t = 0; t < r->workers_ready; t++)
        if (p->worker_fini)
            p->worker_fini(r->state, t, r->workers[t].ctx);
    r->workers_ready = 0;
}

/* Loads config, plugin, arguments and source; nothing runs yet. */
static int prepare(run_t *r, const weft__run_opts_t *o)
{
    char *err = r->err;
    int rc = weft__config_load(&r->cfg, o->config_path, err, ERR_SIZE);
    for (size_t k = 0; rc == 0 && k < o->n_sets; k++)
        rc = weft__config_set(r->cfg, o->sets[k], err, ERR_SIZE);
    if (rc == 0)
        rc = weft__config_finalize(r->cfg, err, ERR_SIZE);
    if (rc)
        return usage_error(err);

    char **dirs = NULL;
    size_t n_dirs = 0;
    rc = weft__plugin_dirs(r->cfg->dir, r->cfg->plugin_path, &dirs, &n_dirs);
    if (rc)
        snprintf(err, ERR_SIZE, "plugin search path: %s", weft_strerror(rc));
    else
        rc = weft__plugin_open(&r->plugin, r->cfg->plugin, dirs, n_dirs, err, ERR_SIZE);
    for (size_t k = 0; k < n_dirs; k++)
        free(dirs[k]);
    free(dirs);
    if (rc)
        return usage_error(err);

    const weft_plugin_t *p = &r->plugin->desc;
    r->args = calloc(p->n_args ? p->n_args : 1, sizeof *r->args);
    if (!r->args)
        return usage_error("out of memory");
    size_t k;
    if (weft__config_bind(r->cfg, p, r->args, err, ERR_SIZE) != 0 ||
        weft__outdir_arg(p, &k, err, ERR_SIZE) < 0 ||
        weft__source_open(&r->source, r->cfg, err, ERR_SIZE) != 0)
        return usage_error(err);
    if (k != SIZE_MAX && !(r->outdir_path = strdup(r->args[k].u.s)))
        return usage_error("out of memory");
    if ((p->flags & WEFT_PLUGIN_REDUCES) && r->cfg->isolate_process) {
        const weft__entry_t *e = weft__config_entry(r->cfg, "run", "isolate");
        char where[512];
        snprintf(err, ERR_SIZE,
                 "%s: isolate = process: plugin %s reduces over its items in one process "
                 "(its finish sums up what process_one did), and worker processes would keep "
                 "that to themselves; use isolate = thread",
                 e ? weft__entry_where(e, where, sizeof where) : r->cfg->path, p->name);
        return usage_error(err);
    }
    return 0;
}

/* init in this process; worker_init for each thread (thread mode). */
static int start_plugin(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    char msg[MSG_SIZE] = "";
    double t0 = weft__run_now();
    if (p->init(&r->host.pub, r->args, &r->state, msg, sizeof msg) != 0) {
        fprintf(stderr, "weft: plugin %s: init failed: %s\n", p->name,
                msg[0] ? msg : "(no message)");
        return WEFT_EXIT_USAGE;
    }
    r->state_live = true;
    for (unsigned t = 0; t < r->threads && !r->cfg->isolate_process; t++) {
        if (!p->worker_init)
            break;
        msg[0] = '\0';
        if (p->worker_init(r->state, t, r->threads, &r->workers[t].ctx, msg, sizeof msg)) {
            fprintf(stderr, "weft: plugin %s: worker_init (worker %u) failed: %s\n", p->name,
                    t, msg[0] ? msg : "(no message)");
            return WEFT_EXIT_USAGE;
        }
        r->workers_ready = t + 1;
    }
    r->t_init = weft__run_now() - t0;
    return 0;
}

/* output = FILE.npy: the plugin's rows, in a file the runner creates. */
static int open_array(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    weft_row_spec_t spec = {0};
    char msg[MSG_SIZE] = "";
    if (!p->row_spec) {
        fprintf(stderr, "weft: %s: plugin %s writes no array rows (it has no row_spec), "
                        "so its output cannot be .npy\n", r->cfg->output, p->name);
        return WEFT_EXIT_USAGE;
    }
    if (p->row_spec(r->state, &spec, msg, sizeof msg) != 0) {
        fprintf(stderr, "weft: plugin %s: row_spec failed: %s\n", p->name, msg);
        return WEFT_EXIT_USAGE;
    }
    if (r->source->total == WEFT__COUNT_UNKNOWN) {
        fprintf(stderr, "weft: %s: a .npy output needs the item count up front, and "
                        "standard input has none\n", r->cfg->output);
        return WEFT_EXIT_USAGE;
    }
    if (weft__npy_create(&r->npy, r->cfg->output, spec.dtype, r->source->total, spec.row_len,
                         r->err, ERR_SIZE) != 0)
        return usage_error(r->err);
    return 0;
}

static const char *format_name(weft__format_t f)
{
    switch (f) {
    case WEFT__FORMAT_JSON: return "a JSON array";
    case WEFT__FORMAT_JSONL: return "JSON Lines";
    case WEFT__FORMAT_NPY: return "a .npy array";
    case WEFT__FORMAT_NONE: break;
    }
    return "nothing";
}

/* weft check: everything was validated; say what would run. */
static int report_check(const run_t *r, const char *path)
{
    const weft__config_t *c = r->cfg;
    const weft_plugin_t *p = &r->plugin->desc;
    if (c->format == WEFT__FORMAT_NPY && !p->row_spec) {
        fprintf(stderr, "weft: %s: plugin %s writes no array rows, so its output cannot be "
                        ".npy\n", c->output, p->name);
        return WEFT_EXIT_USAGE;
    }
    printf("%s: ok\n", path);
    printf("  plugin   %s %s (%s)\n", p->name, p->version ? p->version : "", r->plugin->path);
    if (r->source->total == WEFT__COUNT_UNKNOWN)
        printf("  items    %s (count known when read)\n", c->items->value);
    else
        printf("  items    %s: %" PRIu64 " items\n", c->items->value, r->source->total);
    printf("  output   %s, %s%s\n", c->output ? c->output : "none", format_name(c->format),
           c->order_any ? ", in completion order" : "");
    if (r->outdir_path)
        printf("  folder   %s\n", r->outdir_path);
    printf("  threads  %u%s\n", r->threads, c->isolate_process ? " (worker processes)" : "");
    return WEFT_EXIT_OK;
}

static unsigned pick_threads(const run_t *r)
{
    unsigned t = r->cfg->threads;
    if (t == 0) {
        t = weft_cpu_count();
        /* I/O-bound items mostly wait: more threads keep the disk busy. */
        if (r->plugin->desc.flags & WEFT_PLUGIN_IO_BOUND)
            t *= 4;
    }
    if (r->source->total != WEFT__COUNT_UNKNOWN && r->source->total < t)
        t = (unsigned)r->source->total;
    if (t > 1024)
        t = 1024;
    return t ? t : 1;
}

/* ---- the journal: create, or resume ------------------------------------- */

static int refuse(const char *fmt, ...) WEFT_PRINTF(1, 2);
static int refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return WEFT_EXIT_USAGE;
}

/* --resume: the earlier run must be this run (or --force). */
static int check_same_run(run_t *r, const char *path)
{
    char diff[4096] = "";
    size_t n = weft__jheader_diff(weft__jscan_header(r->scan), &r->id.header, diff, sizeof diff);
    if (n && !r->opts->force)
        return refuse("%s: cannot resume: the run changed since it began:\n%s"
                         "weft: add --restart (instead of --resume) to start over, or --force to "
                         "resume anyway (changed items run again)",
                      path, diff);
    char what[512] = "";
    int64_t differ = weft__resume_check_items(r->cfg, r->scan, what, sizeof what);
    if (differ < 0)
        return refuse("items: %s", what);
    if (differ > 0 && !r->opts->force)
        return refuse("%s: cannot resume: %" PRId64 " item%s changed since the run began (%s); "
                         "add --force to run the changed items again",
                      path, differ, differ == 1 ? "" : "s", what);
    if (n || differ)
        fprintf(stderr, "weft: resuming anyway (--force): %s%s", diff,
                differ ? "changed items run again\n" : "");
    return 0;
}

static int open_journal(run_t *r)
{
    const weft__run_opts_t *o = r->opts;
    bool resume = o->resume || o->retry_failed;
    bool nomem;
    char *path = weft__journal_path(r->cfg, r->outdir_path, &nomem);
    int rc = 0;
    if (nomem)
        return usage_error("out of memory");
    if (path && r->source->total == WEFT__COUNT_UNKNOWN) {
        free(path); /* items read once from a stream cannot be resumed */
        path = NULL;
    }
    if (!path) {
        if (resume)
            return refuse("%s: nothing to resume: this run keeps no journal (its output is "
                             "standard output or none, its items a stream, or journal = off)",
                          r->cfg->path);
        return 0;
    }
    bool reduces = r->plugin->desc.flags & WEFT_PLUGIN_REDUCES;
    if (resume && reduces) {
        free(path);
        return refuse("%s: cannot resume: plugin %s reduces over every item in one run (its "
                      "final result would cover only the items a resume runs); add --restart "
                      "to start over",
                      r->cfg->path, r->plugin->desc.name);
    }
    if (weft__identity_make(&r->id, r->cfg, r->plugin, r->source) != 0) {
        free(path);
        return usage_error("out of memory");
    }
    /* Killed while the journal was being created: it holds no work, so
     * resuming is running everything. */
    if (resume && weft__journal_empty(path))
        resume = false;
    if (!resume) {
        /* A plain run: refuse to overwrite a journal whose run did not
         * finish (cheap: only its last record is read). */
        bool finished = false;
        rc = weft__journal_peek(path, &finished);
        if (rc == 0 && !finished && !o->restart && reduces) {
            rc = refuse("%s: an earlier run of this job did not finish (journal %s); plugin %s "
                        "cannot resume (it reduces over every item): add --restart to start "
                        "over",
                        r->cfg->path, path, r->plugin->desc.name);
            goto out;
        }
        if (rc == 0 && !finished && !o->restart) {
            rc = refuse("%s: an earlier run of this job did not finish (journal %s).\n"
                           "weft: run `weft run %s --resume` to finish it, or add --restart to "
                           "start over",
                        r->cfg->path, path, r->cfg->path);
            goto out;
        }
        rc = weft__journal_create(&r->journal, path, &r->id.header, r->err, ERR_SIZE);
        if (rc == 0 && (rc = weft__journal_session(r->journal, 1, 0)) != 0)
            snprintf(r->err, ERR_SIZE, "%s: cannot write the journal: %s", path,
                     strerror(-rc));
        r->journaled = rc == 0;
        r->journal_fresh = rc == 0;
        if (rc)
            rc = usage_error(r->err);
        goto out;
    }
    rc = weft__journal_resume(&r->journal, &r->scan, path, r->err, ERR_SIZE);
    if (rc == -ENOENT) {
        rc = refuse("%s: nothing to resume: no journal at %s (run without --resume)",
                    r->cfg->path, path);
        goto out;
    }
    if (rc) {
        rc = usage_error(r->err);
        goto out;
    }
    if (weft__jscan_dropped(r->scan))
        fprintf(stderr, "weft: %s: dropped %zu bytes of a torn or corrupt tail (at byte %zu: %s)\n",
                path, weft__jscan_dropped(r->scan), weft__jscan_valid_len(r->scan),
                weft__jscan_tail(r->scan));
    rc = check_same_run(r, path);
    if (rc)
        goto out;
    if (!r->cfg->isolate_process) {
        r->n_suspects = weft__jscan_suspects(r->scan, &r->suspects);
        r->n_poison = weft__jscan_poison(r->scan, &r->poison);
    }
    rc = weft__journal_session(r->journal, weft__jscan_sessions(r->scan) + 1,
                               WEFT__JS_RESUME | (r->n_suspects ? WEFT__JS_CAREFUL : 0));
    r->journaled = rc == 0;
    if (rc)
        rc = refuse("%s: cannot append to the journal: %s", path, strerror(-rc));
out:
    r->journal_path = path;
    return rc;
}

/* Hands every worker's journal chunk over; fdatasyncs at most once a second
 * (or now, when `sync`). */
void weft__run_journal_window_end(run_t *r, bool sync)
{
    if (!r->journal)
        return;
    for (unsigned t = 0; t < r->threads; t++)
        weft__run_journal_flush(r, &r->workers[t], true);
    double t = weft__run_now();
    if (sync || t - r->journal_synced >= JOURNAL_SYNC_S) {
        int e = weft__journal_sync(r->journal);
        int none = 0;
        if (e)
            atomic_compare_exchange_strong(&r->journal_error, &none, e);
        r->journal_synced = t;
    }
}

/* ---- the engines ------------------------------------------------------------ */

/* The claim source and the reorder buffer, shared by both engines. */
static int engine_open(run_t *r, bool threaded)
{
    weft__reorder_settings_t rs = {
        .workers = r->threads,
        .ordered = !r->cfg->order_any,
        .writer = r->writer,
        .print = print_failure,
        .print_arg = r,
        .max_printed = MAX_PRINTED_FAILURES,
    };
    if (weft__reorder_create(&r->reorder, &rs) != 0)
        return usage_error("out of memory starting the workers");
    if (threaded) {
        weft_pool_settings_t ps;
        weft_pool_default_settings(&ps);
        ps.threads = r->threads;
        int e = weft_pool_create(&r->pool, &ps);
        if (e == -EAGAIN)
            return usage_error("cannot start the worker threads (the system refused: "
                               "too many processes or threads?)");
        if (e)
            return usage_error("out of memory starting the workers");
    }
    weft__feed_settings_t fs = {
        .source = r->source,
        .reorder = r->reorder,
        .pool = r->pool,
        .workers = r->threads,
        .span = SPAN_ITEMS,
        .span_bytes = SPAN_BYTES,
        .stop = &weft__run_stop,
    };
    if (weft__feed_create(&r->feed, &fs) != 0)
        return usage_error("out of memory starting the workers");
    return 0;
}

/* Thread mode: the pool runs the claims until the items end or a stop. */
static int run_threads(run_t *r)
{
    if (drain_start(r) != 0)
        return usage_error("cannot start the output thread");
    weft__host_item_begin(0); /* call_item sets it only with a timeout */
    int status = 0;
    if (r->n_suspects)
        status = run_suspects(r);
    weft__claim_t claim = {claim_next, r};
    int rc = status ? 0 : weft__pool_run(r->pool, 0, run_chunk, r, &claim);
    drain_stop(r);
    if (rc) {
        fprintf(stderr, "weft: pool: %s\n", weft_strerror(rc));
        return WEFT_EXIT_OUTPUT;
    }
    return status ? status : weft__run_source_status(r);
}

/* The items never claimed (a stop) go into the reorder buffer as not run,
 * so that they fall into place around blocks already waiting there (items
 * run alone before the engine), and in record = value keep their places as
 * nulls.  Main thread, after the engine: worker 0's blocks are ours now. */
static void pad_not_run(run_t *r, uint64_t from, uint64_t to)
{
    uint64_t i = from;
    while (i < to) {
        weft__block_t *b = weft__reorder_block_get(r->reorder, 0);
        if (!b) {
            r->write_error = -ENOMEM;
            return;
        }
        b->first = i;
        for (; i < to && b->count < 4096; i++) {
            if (r->suspects_run && weft__run_in_set(r->suspects, r->suspects_run, i))
                break; /* has its block */
            if (r->null_not_run &&
                (weft__buf_append(&b->bytes, r->frame.prefix, r->frame.prefix_len) ||
                 weft__buf_append(&b->bytes, "null", 4) ||
                 weft__buf_append(&b->bytes, r->frame.suffix, r->frame.suffix_len)))
                r->write_error = -ENOMEM;
            b->records += r->null_not_run;
            b->counts[ST_NOT_RUN]++;
            b->count++;
        }
        if (b->count)
            weft__reorder_put(r->reorder, b);
        else
            weft__reorder_block_drop(r->reorder, b);
        if (i < to && b->count == 0)
            i++; /* a suspect's index */
        weft__reorder_drain(r->reorder);
    }
}

/* After the engine (no worker, no drain left): what the reorder buffer
 * counted, the items never claimed included. */
static void engine_totals(run_t *r)
{
    if (!r->reorder)
        return;
    uint64_t claimed = weft__feed_claimed(r->feed), read = weft__feed_read(r->feed);
    uint64_t total = r->source->total;
    uint64_t all = weft__feed_at_end(r->feed) || total == WEFT__COUNT_UNKNOWN
                       ? (read > claimed ? read : claimed)
                       : (total > claimed ? total : claimed);
    pad_not_run(r, claimed, all);
    if (r->progress && total == WEFT__COUNT_UNKNOWN)
        weft__progress_set_total(r->progress, all); /* a stream's end */
    if (weft__reorder_finish(r->reorder) && !r->write_error)
        r->write_error = -ENOMEM;
    weft__reorder_totals_t t;
    weft__reorder_totals(r->reorder, &t);
    for (int k = 0; k <= ST_NOT_RUN; k++) {
        r->counts[k] = t.counts[k];
        r->reused_by[k] = t.reused[k];
        r->reused += t.reused[k];
    }
    r->printed = t.printed;
    if (t.write_error && !r->write_error)
        r->write_error = t.write_error;
}

/* ---- the end --------------------------------------------------------------- */

static void print_finish_value(run_t *r, const weft_result_t *res)
{
    weft__buf_t b = {0};
    char why[256];
    if (weft__json_value(&b, res, why, sizeof why) != 0) {
        fprintf(stderr, "weft: plugin %s: finish returned a bad value: %s\n",
                r->plugin->desc.name, why);
    } else {
        bool to_stdout = !(r->cfg->output && strcmp(r->cfg->output, "-") == 0);
        fprintf(to_stdout ? stdout : stderr, "%s%.*s\n", to_stdout ? "" : "weft: result: ",
                (int)b.len, b.data);
        fflush(to_stdout ? stdout : stderr);
    }
    weft__buf_free(&b);
}

static uint64_t total_items(const run_t *r)
{
    uint64_t seen = 0;
    for (int s = 0; s <= ST_NOT_RUN; s++)
        seen += r->counts[s];
    return seen;
}

static int run_finish_plugin(run_t *r, int status)
{
    const weft_plugin_t *p = &r->plugin->desc;
    if (status != 0 || !p->finish)
        return status;
    char msg[MSG_SIZE] = "";
    uint64_t seen = total_items(r);
    uint64_t total = r->source->total == WEFT__COUNT_UNKNOWN ? seen : r->source->total;
    weft_counts_t counts = {.total = total, .ok = r->counts[ST_OK]};
    counts.failed = r->counts[ST_FAILED] + r->counts[ST_CRASHED] + r->counts[ST_TIMED_OUT] +
                    r->counts[ST_QUARANTINED];
    counts.not_run = total - counts.ok - counts.failed;
    weft_result_t res = {.msg = msg, .msg_size = sizeof msg};
    double t0 = weft__run_now();
    if (p->finish(r->state, &counts, &res) != 0) {
        fprintf(stderr, "weft: plugin %s: finish failed: %s\n", p->name,
                msg[0] ? msg : "(no message)");
        status = WEFT_EXIT_ITEMS_FAILED;
    } else if (res.kind != WEFT_VALUE_NONE) {
        print_finish_value(r, &res);
    }
    r->t_finish = weft__run_now() - t0;
    return status;
}

/* Output and journal closed, in that order: the END record says the output
 * is complete, so it goes last. */
static int close_outputs(run_t *r, int status, bool complete)
{
    double t0 = weft__run_now();
    if (r->writer && weft__writer_close(&r->writer, r->err, ERR_SIZE) != 0) {
        fprintf(stderr, "weft: %s\n", r->err);
        status = WEFT_EXIT_OUTPUT;
    }
    if (r->write_error == -ENOMEM) {
        fprintf(stderr, "weft: out of memory keeping results: some records are missing "
                        "from the output (the journal has them: --resume rebuilds it)\n");
        status = WEFT_EXIT_OUTPUT;
    }
    /* Rows of failed items are zeros; the array is kept, like other output. */
    if (r->npy && weft__npy_commit(&r->npy, r->err, ERR_SIZE)) {
        fprintf(stderr, "weft: %s\n", r->err);
        status = WEFT_EXIT_OUTPUT;
    }
    r->t_output += weft__run_now() - t0;
    if (!r->journal)
        return status;
    weft__run_journal_window_end(r, true);
    int je = atomic_load(&r->journal_error);
    if (je == 0 && complete && status != WEFT_EXIT_OUTPUT)
        je = weft__journal_end(r->journal, r->counts[ST_OK], total_items(r) - r->counts[ST_OK]);
    else if (je == 0)
        je = weft__journal_stop(r->journal); /* stopped early, cleanly: no crash */
    int ce = weft__journal_close(&r->journal);
    if (!je)
        je = ce;
    if (je) {
        fprintf(stderr, "weft: journal: %s: what was done since may run again on --resume\n",
                strerror(-je));
        status = WEFT_EXIT_OUTPUT;
    }
    return status;
}

static void summarize(run_t *r, int status, const char *label)
{
    weft__summary_t s = {
        .plugin = r->plugin->desc.name,
        .threads = r->threads,
        .isolate = r->cfg->isolate_process ? "process" : "thread",
        .total = r->source->total,
        .ok = r->counts[ST_OK],
        .failed = r->counts[ST_FAILED],
        .crashed = r->counts[ST_CRASHED],
        .timed_out = r->counts[ST_TIMED_OUT],
        .quarantined = r->counts[ST_QUARANTINED],
        .skipped = r->reused,
        .not_run = r->counts[ST_NOT_RUN],
        .wall_s = weft__run_now() - r->t_start,
        .init_s = r->t_init,
        .items_s = r->t_items,
        .finish_s = r->t_finish,
        .output_s = r->t_output,
        .status = label,
        .exit_code = status,
    };
    /* Items an earlier run did are "skipped", not counted again. */
    s.ok -= r->reused_by[ST_OK];
    s.failed -= r->reused_by[ST_FAILED];
    s.crashed -= r->reused_by[ST_CRASHED];
    s.timed_out -= r->reused_by[ST_TIMED_OUT];
    s.quarantined -= r->reused_by[ST_QUARANTINED];
    weft__summary_cpu(&s);
    if (!r->opts->quiet)
        weft__summary_print(stderr, &s);
    if (r->opts->summary_json &&
        weft__summary_write_json(r->opts->summary_json, &s, r->err, ERR_SIZE) != 0)
        fprintf(stderr, "weft: --summary-json: %s\n", r->err);
}

static int finish_run(run_t *r, int status)
{
    workers_fini(r);
    int sig = atomic_load(&stop_signal);
    bool halted = atomic_load(&stop_halted);
    bool complete = status == 0 && !sig && !halted && !atomic_load(&r->journal_error);
    status = run_finish_plugin(r, status);
    weft__progress_stop(&r->progress);
    status = close_outputs(r, status, complete);
    uint64_t bad = total_items(r) - r->counts[ST_OK] - r->counts[ST_NOT_RUN];
    if (r->printed < bad)
        fprintf(stderr, "weft: ... and %" PRIu64 " more failed items\n", bad - r->printed);
    const char *label = "ok";
    if (status == WEFT_EXIT_OUTPUT) {
        label = "output error";
    } else if (status == 0 && sig) {
        status = 128 + sig;
        label = "interrupted";
    } else if (status == 0 && halted) {
        status = WEFT_EXIT_HALTED;
        label = "halted";
        const weft__halt_t *h = &r->cfg->halt;
        if (h->fail_count)
            fprintf(stderr, "weft: halted by the failure policy (halt = %s,fail=%" PRIu64 ")\n",
                    h->mode == WEFT__HALT_NOW ? "now" : "soon", h->fail_count);
        else
            fprintf(stderr, "weft: halted by the failure policy (halt = %s,fail=%g%%)\n",
                    h->mode == WEFT__HALT_NOW ? "now" : "soon", h->fail_percent);
    } else if (status == 0 && bad) {
        status = WEFT_EXIT_ITEMS_FAILED;
        label = "failed";
    } else if (status) {
        label = "failed";
    }
    summarize(r, status, label);
    if ((sig || halted) && status != WEFT_EXIT_OUTPUT) {
        if (r->journaled)
            fprintf(stderr, "weft: %" PRIu64 " items not run; `weft run %s --resume` finishes "
                            "the run\n", r->counts[ST_NOT_RUN], r->opts->config_path);
        else
            fprintf(stderr, "weft: %" PRIu64 " items not run (this run keeps no journal)\n",
                    r->counts[ST_NOT_RUN]);
    }
    return status;
}

/* ---- the run ----------------------------------------------------------------- */

static int open_outputs(run_t *r)
{
    if (r->outdir_path &&
        weft__outdir_open(&r->outdir, r->outdir_path, r->err, ERR_SIZE) != 0)
        return usage_error(r->err);
    if (!r->outdir)
        return 0;
    weft__host_set_outdir(&r->host, r->outdir);
    /* Under the lock, no temporary in the folder can be a live run's. */
    size_t stale = weft__outdir_sweep(r->outdir);
    if (stale && !r->opts->quiet)
        fprintf(stderr, "weft: removed %zu temporary file%s left in %s by a run that did not "
                        "finish\n",
                stale, stale == 1 ? "" : "s", r->outdir_path);
    return 0;
}

static int run_job(run_t *r)
{
    const weft__run_opts_t *o = r->opts;
    int status = prepare(r, o);
    if (status)
        return status;
    r->threads = pick_threads(r);
    if (o->check_only)
        return report_check(r, o->config_path);

    r->frame = weft__frame_of(r->cfg->format);
    r->writes_records = r->cfg->format == WEFT__FORMAT_JSON || r->cfg->format == WEFT__FORMAT_JSONL;
    r->null_not_run = r->writes_records && r->cfg->record == WEFT__RECORD_VALUE &&
                      !r->cfg->order_any && !r->cfg->flatten;
    r->workers = aligned_alloc(64, sizeof(worker_t) * r->threads);
    if (!r->workers)
        return usage_error("out of memory starting the workers");
    /* Whole chunks through process_range when nothing is kept per item:
     * numbers only (a range), no records, no journal, no per-item timeout. */
    r->batch = r->plugin->desc.process_range && r->source->vt->at &&
               r->cfg->format == WEFT__FORMAT_NONE && r->cfg->timeout <= 0 &&
               !r->cfg->isolate_process;
    memset(r->workers, 0, sizeof(worker_t) * r->threads);
    for (unsigned t = 0; t < r->threads; t++)
        r->workers[t].current = UINT64_MAX;

    /* The output folder is locked before init (a second run is refused
     * before anything is written), the journal before any output. */
    weft__host_init(&r->host, r->plugin->desc.name, r->cfg->seed, r->cfg->dir);
    r->host.pub.values_wanted = r->cfg->format != WEFT__FORMAT_NONE;
    r->host.stop = &weft__run_stop;
    if ((status = open_outputs(r)) || (status = open_journal(r)))
        return status;
    if ((status = start_plugin(r)))
        return status;
    /* Opened last, so that no earlier error truncates an existing file. */
    if (r->cfg->format == WEFT__FORMAT_NPY)
        status = open_array(r);
    else if (r->writes_records &&
             weft__writer_open(&r->writer, r->cfg->output, r->cfg->format, r->err, ERR_SIZE))
        status = usage_error(r->err);
    if (status)
        return status;

    weft__progress_start(&r->progress, o->progress,
                         STDERR_FILENO, r->source->total == WEFT__COUNT_UNKNOWN
                                            ? WEFT__PROGRESS_UNKNOWN : r->source->total,
                         r->threads, r->plugin->desc.name);
    if (r->journal || r->scan || r->n_suspects || r->outdir)
        r->batch = false; /* per-item entries, reuse, careful runs, files */
    if ((status = engine_open(r, !r->cfg->isolate_process)))
        return status;
    double t0 = weft__run_now();
    r->journal_fresh = false; /* from here on it records work */
    r->flushed = t0;
    if (r->cfg->isolate_process) {
        status = weft__run_process(r);
    } else {
        crash_handlers(r, true);
        status = run_threads(r);
        crash_handlers(r, false);
    }
    engine_totals(r);
    r->t_items = weft__run_now() - t0 - r->t_output;
    if (r->t_items < 0)
        r->t_items = 0;
    return finish_run(r, status);
}

int weft__run(const weft__run_opts_t *o)
{
    run_t *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "weft: out of memory\n");
        return WEFT_EXIT_USAGE;
    }
    atomic_store(&weft__run_stop, 0);
    atomic_store(&stop_signal, 0);
    atomic_store(&stop_halted, 0);
    r->opts = o;
    r->t_start = weft__run_now();
    r->journal_synced = r->t_start;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the drain's timed waits */
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&r->drain_sleeping, false);
    struct sigaction old_int, old_term;
    if (!o->check_only)
        signals_install(&old_int, &old_term);

    int status = run_job(r);

    drain_stop(r);
    weft__progress_stop(&r->progress);
    if (r->plugin) {
        workers_fini(r);
        if (r->state_live && r->plugin->desc.destroy)
            r->plugin->desc.destroy(r->state);
    }
    weft__writer_abort(&r->writer); /* only after an early error, reported already */
    if (r->journal) {
        /* An early error, before any item ran: a fresh journal goes (it
         * holds nothing), a resumed one is marked as cleanly stopped. */
        if (r->journal_fresh)
            unlink(r->journal_path);
        else
            weft__journal_stop(r->journal);
    }
    weft__npy_abort(&r->npy);
    weft__journal_close(&r->journal);
    weft__jscan_free(&r->scan);
    weft__identity_free(&r->id);
    weft__outdir_close(&r->outdir);
    weft_pool_destroy(&r->pool);
    weft__feed_destroy(&r->feed);
    weft__reorder_destroy(&r->reorder);
    for (unsigned t = 0; r->workers && t < r->threads; t++) {
        weft__buf_free(&r->workers[t].jbuf);
        weft__buf_free(&r->workers[t].msgs);
    }
    free(r->workers);
    free(r->args);
    free(r->outdir_path);
    free(r->journal_path);
    weft__source_close(&r->source);
    weft__plugin_close(&r->plugin);
    weft__config_free(&r->cfg);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    if (!o->check_only)
        signals_restore(&old_int, &old_term);
    free(r);
    return status;
}

void weft__run_set_signal_iso(weft__iso_t *iso)
{
    signal_iso = iso;
}
