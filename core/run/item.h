/* SPDX-License-Identifier: MIT */
/*
 * The per-item code both engines call down into: one item run under the
 * plugin (retries, the timeout deadline), its outcome encoded into framed
 * records (or a null, or nothing), reused from an earlier run's journal on
 * resume, journaled, counted into a block of the reorder buffer.
 *
 * The functions a worker calls for every item are static inlines here
 * (a call each would cost more than most of what they do); the rest, and
 * what a failure or a resume needs, is in item.c.  tests/run/test_item.c
 * checks them on their own, against a real plugin.
 */
#ifndef WEFT_CORE_RUN_ITEM_H
#define WEFT_CORE_RUN_ITEM_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jlog.h"
#include "job.h"
#include "util.h"

#if defined(__GNUC__)
#define WEFT__HOT static inline __attribute__((always_inline))
#else
#define WEFT__HOT static inline
#endif

/* Appends one framed record of item: {"index":..,"ok":..,"value"/"error":..}
 * in record = full, else the value (null for a failure: `failure` set).
 * -EINVAL with `why` when the value cannot be encoded, -ENOMEM. */
int weft__item_encode_record(weft__engine_t *r, weft__buf_t *buf, const weft_item_t *item,
                             const weft_result_t *res, const char *failure, char *why,
                             size_t whylen);

/* A successful result's records (flatten: a list's elements, each one);
 * -EINVAL with `why` when the value cannot be encoded (then nothing is
 * appended). */
int weft__item_encode_ok(weft__engine_t *r, weft__buf_t *buf, const weft_item_t *item,
                         const weft_result_t *res, uint32_t *records, char *why,
                         size_t whylen);

/* Resume: takes item `index` from the journal of the earlier run when it
 * may (ok, or failed without --retry-failed; the item unchanged), or
 * quarantines it (poison); fills slot.  False: it has to run. */
bool weft__item_reuse(weft__engine_t *r, weft__buf_t *buf, weft__buf_t *msgs,
                      const weft_item_t *item, uint64_t index, slot_t *slot);

/* Counts a failure; trips the halt policy. */
void weft__item_failed(weft__engine_t *r);

/* True when index is in the sorted set. */
bool weft__item_in_set(const uint64_t *set, size_t n, uint64_t index);

/* Keeps a failure message (at most MSG_SIZE - 1 bytes) in msgs for slot. */
WEFT__HOT void weft__item_message(weft__buf_t *msgs, slot_t *slot, const char *msg,
                                  size_t n)
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

/* Encodes item's outcome into buf (records) and msgs (message); fills
 * slot.  A result that cannot be encoded fails its item. */
WEFT__HOT void weft__item_encode(weft__engine_t *r, weft__buf_t *buf, weft__buf_t *msgs,
                                 const weft_item_t *item, item_status_t status,
                                 const char *msg, const weft_result_t *res, slot_t *slot)
{
    size_t mark = buf->len;
    if (status == ST_OK && !r->writes_records) {
        *slot = (slot_t){.off = mark, .status = ST_OK}; /* nothing to keep */
        return;
    }
    if (status == ST_OK && r->plain_values && res->kind == WEFT_VALUE_INT &&
        weft__buf_reserve(buf, r->frame.prefix_len + 20 + r->frame.suffix_len) == 0) {
        /* The common record, framed in one go: an integer value. */
        char *o = buf->data + mark;
        for (size_t k = 0; k < r->frame.prefix_len; k++)
            *o++ = r->frame.prefix[k];
        o += weft__put_int(o, res->value.i);
        for (size_t k = 0; k < r->frame.suffix_len; k++)
            *o++ = r->frame.suffix[k];
        buf->len = (size_t)(o - buf->data);
        *slot = (slot_t){.off = mark, .len = (uint32_t)(buf->len - mark), .records = 1,
                         .status = ST_OK};
        return;
    }
    char why[256];
    why[0] = '\0';
    slot->records = 0;
    slot->reused = 0;
    if (status == ST_OK && r->writes_records) {
        int e = weft__item_encode_ok(r, buf, item, res, &slot->records, why, sizeof why);
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
        if (weft__item_encode_record(r, buf, item, res, "", unused, sizeof unused) != 0) {
            buf->len = mark;
            slot->records = 0;
        }
    } else if (status != ST_OK && status != ST_NOT_RUN && r->writes_records) {
        slot->records = 1;
        char unused[8];
        if (weft__item_encode_record(r, buf, item, res, msg, unused, sizeof unused) !=
            0) {
            buf->len = mark; /* out of memory: the message below still counts */
            slot->records = 0;
        }
    }
    slot->off = mark;
    slot->len = (uint32_t)(buf->len - mark);
    slot->status = (uint8_t)status;
    weft__item_message(msgs, slot, status == ST_OK ? NULL : msg, msg ? strlen(msg) : 0);
}

/* Runs item under the plugin on worker wk: retries, the timeout deadline.
 * *attempts: how many times process_one ran.
 * *msg is the failure message (in wk or why) when not ok.  ST_NOT_RUN when
 * it failed after a child it announced was sent weft's first signal
 * (weft__host_interrupted): the stop ended it, so --resume runs it again. */
WEFT__HOT item_status_t weft__item_call(weft__engine_t *r, worker_t *wk, const weft_item_t *item,
                                        weft_result_t *res, const char **msg, char *why,
                                        size_t whylen, unsigned *attempts)
{
    const weft_plugin_t *p = &r->plugin->desc;
    void *row = r->npy && !r->npy_scalar ? weft__npy_row(r->npy, item->index) : NULL;
    double timeout = r->cfg->timeout;
    for (unsigned attempt = 0;; attempt++) {
        *res = (weft_result_t){
            .kind = WEFT_VALUE_NONE, .msg = wk->msg, .msg_size = MSG_SIZE, .row = row};
        wk->msg[0] = '\0';
        double deadline = 0;
        if (timeout > 0) { /* else the deadline stays 0 (set at each start) */
            deadline = weft__host_now() + timeout;
            weft__host_item_begin(deadline);
        }
        __atomic_store_n(&wk->current, item->index, __ATOMIC_RELAXED);
        weft__host_interrupted = false;
        int rc = p->process_one(r->state, wk->ctx, item, res);
        __atomic_store_n(&wk->current, UINT64_MAX, __ATOMIC_RELAXED);
        *attempts = attempt + 1;
        if (rc == 0 && !r->npy_scalar)
            return ST_OK;
        if (rc == 0) { /* its number into the array; not retried: no number */
            if (weft__npy_put_value(r->npy, item->index, res, wk->msg, MSG_SIZE) == 0)
                return ST_OK;
            weft__npy_clear_row(r->npy, item->index);
            *msg = wk->msg;
            return ST_FAILED;
        }
        if (row)
            memset(row, 0, weft__npy_row_bytes(r->npy)); /* no half-written rows */
        else if (r->npy)
            weft__npy_clear_row(r->npy, item->index); /* a hole, not a stale value */
        if (weft__host_interrupted)
            return ST_NOT_RUN; /* its child got weft's first signal: not its fault,
                                  and not retried (--resume runs it) */
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

WEFT__HOT void weft__item_block_add(weft__block_t *b, uint64_t index, const slot_t *slot,
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

enum weft__item_fate {
    WEFT__FATE_NOT_RUN,
    WEFT__FATE_REUSED,
    WEFT__FATE_OK,
    WEFT__FATE_FAILED
};

/* One item into block b: not run once stopped, reused from the journal on
 * resume, else run; encoded, journaled, counted. */
WEFT__HOT enum weft__item_fate weft__item_run(weft__engine_t *r, worker_t *wk, weft__block_t *b,
                                              const weft_item_t *item)
{
    slot_t slot;
    weft__buf_t *buf = &b->bytes;
    wk->msgs.len = 0;
    enum weft__item_fate fate = WEFT__FATE_NOT_RUN;
    /* Relaxed: a stop only has to be seen soon, not at once. */
    if (atomic_load_explicit(&weft__run_stop, memory_order_relaxed)) {
        weft_result_t none = {0};
        weft__item_encode(r, buf, &wk->msgs, item, ST_NOT_RUN, NULL, &none, &slot);
        wk->tnext = 0;
    } else if (r->scan && weft__item_reuse(r, buf, &wk->msgs, item, item->index, &slot)) {
        /* A quarantine is journaled; a reused entry is not (reused). */
        wk->tnext = 0;
        weft__jlog_add(r, wk, item, item->index, &slot, buf->data + slot.off,
                       wk->msgs.data + slot.msg_off, NULL);
        fate = WEFT__FATE_REUSED;
    } else {
        char why[MSG_SIZE];
        weft_result_t res;
        const char *msg = NULL;
        unsigned attempts = 0;
        /* Timed journal only: one monotonic reading per item, after its
         * result is encoded; the item started when the one before it in
         * the chunk ended (wk->tnext; a chunk's first reads the clock).
         * The wall-clock start is derived (wall_mono_ns). */
        int64_t t0 = r->jtimed ? (wk->tnext ? wk->tnext : weft__mono_ns()) : 0;
        item_status_t st = weft__item_call(r, wk, item, &res, &msg, why, sizeof why, &attempts);
        weft__item_encode(r, buf, &wk->msgs, item, st, msg, &res, &slot);
        if (r->journal) { /* checked here: a call per item costs more */
            int64_t t1 = r->jtimed ? weft__mono_ns() : 0;
            wk->tnext = t1;
            weft__jtime_t t = weft__jlog_time(r, attempts, t0, t1);
            weft__jlog_add(r, wk, item, item->index, &slot, buf->data + slot.off,
                           wk->msgs.data + slot.msg_off, &t);
        }
        fate = slot.status == ST_OK        ? WEFT__FATE_OK
               : slot.status == ST_NOT_RUN ? WEFT__FATE_NOT_RUN
                                           : WEFT__FATE_FAILED;
    }
    weft__item_block_add(b, item->index, &slot, &wk->msgs);
    return fate;
}

/* Whether the engine may run items through weft__item_run_ints: plain
 * values into JSON or JSON Lines, and nothing kept or watched per item (no
 * journal, no resume, no timeout, no retries). */
static inline bool weft__item_ints_fast(const weft__engine_t *r)
{
    return r->plain_values && !r->journal && !r->scan && !r->n_suspects && !r->n_poison &&
           r->cfg->timeout <= 0 && r->cfg->retries == 0;
}

/*
 * Items [i, end) into block b, at full speed for the common case: a value
 * that is an integer is framed straight into the block, and only the count
 * of such items is kept (the block holds counts, not slots).  Any other
 * outcome (a failure, another kind of value) takes the general encoding,
 * in its place.  Stops before an item once the run is stopping; returns
 * the index reached (the caller marks the rest not run).  *ok and *failed
 * count the items run.  Only when weft__item_ints_fast(r).
 */
WEFT__HOT size_t weft__item_run_ints(weft__engine_t *r, worker_t *wk, weft__block_t *b,
                                     size_t i, size_t end, uint64_t *ok, uint64_t *failed)
{
    int (*process_one)(void *, void *, const weft_item_t *, weft_result_t *) =
        r->plugin->desc.process_one;
    void *state = r->state, *ctx = wk->ctx;
    weft__buf_t *buf = &b->bytes;
    const weft__frame_t fr = r->frame;
    const size_t need = fr.prefix_len + 20 + fr.suffix_len;
    uint64_t fast = 0; /* ok items not yet counted into b */
    weft_item_t computed = {0};
    weft_result_t res;
    int64_t begin;
    const bool range = weft__feed_range(r->feed, &begin); /* one item, renumbered */
    /* Set only by weft's first signal reaching a child, and the loop stops
     * at the next item then: once a chunk is enough. */
    weft__host_interrupted = false;
    for (; i < end; i++) {
        /* Relaxed: a stop only has to be seen soon, not at once. */
        if (atomic_load_explicit(&weft__run_stop, memory_order_relaxed))
            break;
        const weft_item_t *item = &computed;
        if (range) {
            computed.index = i;
            computed.number = (int64_t)((uint64_t)begin + i);
        } else {
            item = weft__feed_item(r->feed, i, &computed);
        }
        res.kind = WEFT_VALUE_NONE;
        res.msg = wk->msg;
        res.msg_size = MSG_SIZE;
        res.row = NULL;
        int rc = process_one(state, ctx, item, &res);
        if (rc == 0 && res.kind == WEFT_VALUE_INT && weft__buf_reserve(buf, need) == 0) {
            char *o = buf->data + buf->len;
            for (size_t k = 0; k < fr.prefix_len; k++)
                *o++ = fr.prefix[k];
            o += weft__put_int(o, res.value.i);
            for (size_t k = 0; k < fr.suffix_len; k++)
                *o++ = fr.suffix[k];
            buf->len = (size_t)(o - buf->data);
            fast++;
            continue;
        }
        /* In index order: the fast items before this one first. */
        b->count += fast;
        b->records += fast;
        b->counts[ST_OK] += fast;
        *ok += fast;
        fast = 0;
        char why[64];
        const char *msg = NULL;
        item_status_t st = ST_OK;
        if (rc != 0 && weft__host_interrupted) {
            st = ST_NOT_RUN; /* as weft__item_call: the stop ended it */
            weft__host_interrupted = false;
        } else if (rc != 0) {
            st = ST_FAILED;
            if (wk->msg[0]) {
                msg = wk->msg;
            } else {
                snprintf(why, sizeof why, "process_one returned %d", rc);
                msg = why;
            }
        }
        slot_t slot;
        wk->msgs.len = 0;
        weft__item_encode(r, buf, &wk->msgs, item, st, msg, &res, &slot);
        weft__item_block_add(b, item->index, &slot, &wk->msgs);
        wk->msg[0] = '\0'; /* the next failure's message starts empty */
        if (slot.status == ST_OK) {
            ++*ok;
        } else if (slot.status != ST_NOT_RUN) {
            ++*failed;
            weft__item_failed(r);
        }
    }
    b->count += fast;
    b->records += fast;
    b->counts[ST_OK] += fast;
    *ok += fast;
    return i;
}

#endif
