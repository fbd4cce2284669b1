/* SPDX-License-Identifier: MIT */
/*
 * isolate = process: items run in persistent forked worker processes
 * (core/run/isolate.c), so an item that crashes, exits or hangs costs only
 * itself.  This engine feeds the supervisor from the same claim source as
 * thread mode and turns its outcomes into blocks of the same reorder
 * buffer: each child runs the plugin's init and worker_init once, then per
 * item process_one and the same encoding as thread mode (core/run/item.h:
 * per-item code), and puts the framed records in its reply ring; the
 * parent, single-threaded (it forks: no other thread may exist), settles
 * items reused from an earlier run itself, journals each outcome, and
 * drains the reorder buffer into the output as it goes (every FLUSH_S,
 * also while slow items keep it waiting).  No barrier: claims flow while
 * items run, as in thread mode.
 *
 * Items of an indexed source (items = N, a range) are not sent at all: the
 * child makes each from its index, as thread mode does, so they travel as
 * ranges.  A .npy output is a shared mapping: a child writes its row in
 * place, and the parent zeroes the row of an item that did not end ok.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"
#include "item.h"
#include "signals.h"
#include "util.h"

#define FLUSH_S 0.02
enum {
    BLOCK_ITEMS = 4096,      /* a block is handed on at this many items */
    BLOCK_BYTES = 256 << 10, /* or this many bytes                     */
};

/* An item that crashed or timed out, running again (cfg->retries). */
typedef struct retry {
    uint64_t index;
    unsigned tries;
} retry_t;

typedef struct proc {
    weft__engine_t *r;
    weft__iso_t *iso;
    bool indexed;       /* items are made from their index          */
    uint64_t next, end; /* claimed from the feed, not yet served     */
    weft__block_t *b;   /* the open block: outcomes in index order   */
    weft__buf_t wire;   /* get_item's answer                         */
    retry_t *retries;   /* items running again                       */
    size_t n_retries, cap_retries;
    int status;     /* an engine error (exit status), or 0       */
    double drained; /* when the reorder buffer was last drained  */
    /* Child side: its encoding buffers. */
    weft__buf_t cbuf, cmsgs;
} proc_t;

static void item_at(const weft__engine_t *r, uint64_t index, weft_item_t *out)
{
    *out = *weft__feed_item(r->feed, index, out);
}

/* ---- blocks ----------------------------------------------------------------- */

static void block_close(proc_t *pc)
{
    weft__block_t *b = pc->b;
    pc->b = NULL;
    if (!b)
        return;
    if (b->count)
        weft__reorder_put(pc->r->reorder, b);
    else
        weft__reorder_block_drop(pc->r->reorder, b);
}

/* The block item `index` goes into: the open one when it continues it. */
static weft__block_t *block_for(proc_t *pc, uint64_t index)
{
    weft__block_t *b = pc->b;
    if (b && b->first + b->count == index && b->count < BLOCK_ITEMS &&
        b->bytes.len < BLOCK_BYTES)
        return b;
    block_close(pc);
    b = weft__reorder_block_get(pc->r->reorder, 0);
    if (!b) {
        /* Without a block the item cannot be kept: stop (reported as out
         * of memory at the end: the reorder buffer counts a lost block). */
        int running = 0;
        atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
        pc->r->write_error = -ENOMEM;
        return NULL;
    }
    b->first = index;
    pc->b = b;
    return b;
}

/* Empties the reorder buffer into the output; flushes it. */
static void drain(proc_t *pc)
{
    weft__engine_t *r = pc->r;
    double t0 = weft__mono_s();
    block_close(pc);
    weft__reorder_drain(r->reorder);
    weft__reorder_totals_t t;
    weft__reorder_totals(r->reorder, &t);
    int running = 0;
    if (t.write_error == -ENOMEM) /* a lost block: the prefix is stuck */
        atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
    if (r->writer && weft__writer_buffered(r->writer))
        weft__writer_flush(r->writer);
    weft__jlog_sync(r, false);
    pc->drained = weft__mono_s();
    r->t_output += pc->drained - t0;
}

/* The supervisor's tick: what finished reaches the output within FLUSH_S
 * plus one of its wakeups, also while a slow item keeps it waiting. */
static void tick(void *arg)
{
    proc_t *pc = arg;
    if (pc->r->log_relay)
        weft__progress_relay(pc->r->progress, pc->r->log_relay_fd);
    if (weft__mono_s() - pc->drained >= FLUSH_S)
        drain(pc);
}

/* ---- the child side ------------------------------------------------------ */

static int child_init(void *arg, unsigned worker, char *msg, size_t msg_size)
{
    proc_t *pc = arg;
    weft__engine_t *r = pc->r;
    r->progress = NULL; /* the parent's reporter is not ours */
    return r->child_start(r->job, worker, msg, msg_size);
}

/* An item on the wire (text sources): its number, then its text and a NUL
 * (or nothing).  Indexed sources send nothing: the child's copy of the
 * source makes the item from its index. */
static void child_item(void *arg, unsigned worker, uint64_t index, const void *bytes,
                       size_t len, weft__iso_reply_t *reply)
{
    proc_t *pc = arg;
    weft__engine_t *r = pc->r;
    if (weft__children_forwarded()) {
        /* Stopped by a signal (the supervisor forwarded it to the items'
         * children): the rest of a batch is not run, as in thread mode. */
        weft__iso_reply_fail(reply, ST_NOT_RUN, "", 0);
        return;
    }
    weft_item_t tmp = {0}, *item = &tmp;
    if (pc->indexed) {
        item = (weft_item_t *)weft__feed_item(r->feed, index, &tmp);
    } else {
        int64_t number = 0;
        if (len >= sizeof number)
            memcpy(&number, bytes, sizeof number);
        tmp.index = index;
        tmp.number = number;
        if (len > sizeof number) {
            tmp.text = (const char *)bytes + sizeof number;
            tmp.text_len = len - sizeof number - 1;
        }
    }
    char why[MSG_SIZE];
    const char *msg = NULL;
    weft_result_t res;
    unsigned attempts = 0;
    int64_t t0 = r->jtimed ? weft__mono_ns() : 0;
    item_status_t st = weft__item_call(r, &r->workers[worker], item, &res, &msg, why,
                                       sizeof why, &attempts);
    int64_t t1 = r->jtimed ? weft__mono_ns() : 0;
    slot_t slot = {0};
    pc->cbuf.len = pc->cmsgs.len = 0;
    weft__item_encode(r, &pc->cbuf, &pc->cmsgs, item, st, msg, &res, &slot);
    if (slot.status == ST_OK)
        weft__iso_reply_ok(reply, slot.records, pc->cbuf.data + slot.off, slot.len);
    else
        weft__iso_reply_fail(reply, (int)slot.status, pc->cmsgs.data + slot.msg_off,
                             slot.msg_len);
    if (r->jtimed) /* after the reply: setting one resets its timing */
        weft__iso_reply_time(reply, attempts, t0, t1);
}

static void child_fini(void *arg, unsigned worker)
{
    proc_t *pc = arg;
    pc->r->child_stop(pc->r->job, worker);
}

/* ---- the supervisor side: the feed ------------------------------------- */

/* Settles item `index` here (no worker): not run once stopped, or taken
 * from the journal of an earlier run.  False: it has to run. */
static bool settle_here(proc_t *pc, uint64_t index)
{
    weft__engine_t *r = pc->r;
    worker_t *wk = &r->workers[0];
    weft_item_t item;
    item_at(r, index, &item);
    weft__block_t *b = block_for(pc, index);
    if (!b)
        return true; /* lost: the run stops */
    slot_t slot;
    size_t mark = b->bytes.len;
    wk->msgs.len = 0;
    if (!weft__item_reuse(r, &b->bytes, &wk->msgs, &item, index, &slot)) {
        b->bytes.len = mark;
        return false;
    }
    weft__jlog_add(r, wk, &item, index, &slot, b->bytes.data + slot.off,
                   wk->msgs.data + slot.msg_off, NULL); /* a quarantine */
    weft__progress_skip(r->progress, 1);
    weft__item_block_add(b, index, &slot, &wk->msgs);
    return true;
}

/* The supervisor's claim: the next range of items to run, from the claim
 * source (each claim journaled as in flight), less those an earlier run
 * did. */
static int feed_claim(void *arg, uint64_t *first, size_t *n)
{
    proc_t *pc = arg;
    weft__engine_t *r = pc->r;
    for (;;) {
        if (pc->next == pc->end) {
            weft__range_t range;
            weft__claim_status_t st = weft__feed_claim(r->feed, 0, &range);
            if (st == WEFT__CLAIM_WAIT) {
                drain(pc); /* one thread: what waits is ours to write */
                st = weft__feed_claim(r->feed, 0, &range);
            }
            if (st == WEFT__CLAIM_WAIT)
                return 0;
            if (st == WEFT__CLAIM_END)
                return -1;
            if (r->journal)
                weft__journal_window(r->journal, range.begin, range.end - range.begin);
            pc->next = range.begin;
            pc->end = range.end;
        }
        uint64_t start = pc->next;
        while (pc->next < pc->end) {
            uint64_t i = pc->next++;
            if (r->scan && settle_here(pc, i)) {
                if (i > start) { /* the run before it goes first */
                    *first = start;
                    *n = (size_t)(i - start);
                    return 1;
                }
                start = i + 1;
            }
        }
        if (pc->next > start) {
            *first = start;
            *n = (size_t)(pc->next - start);
            return 1;
        }
    }
}

static void feed_get(void *arg, uint64_t index, const void **bytes, size_t *len)
{
    proc_t *pc = arg;
    *bytes = NULL;
    *len = 0;
    if (pc->indexed)
        return;
    weft_item_t item;
    item_at(pc->r, index, &item);
    int64_t number = item.number;
    pc->wire.len = 0;
    if (weft__buf_append(&pc->wire, &number, sizeof number) == 0 &&
        (!item.text || weft__buf_append(&pc->wire, item.text, item.text_len + 1) == 0)) {
        *bytes = pc->wire.data;
        *len = pc->wire.len;
    }
}

/* Whether item `index` crashed or timed out and runs again. */
static bool try_again(proc_t *pc, uint64_t index, item_status_t st)
{
    weft__engine_t *r = pc->r;
    size_t k = 0;
    while (k < pc->n_retries && pc->retries[k].index != index)
        k++;
    bool again = (st == ST_CRASHED || st == ST_TIMED_OUT) &&
                 (k < pc->n_retries ? pc->retries[k].tries : 0) < r->cfg->retries;
    if (again && k == pc->n_retries) {
        if (pc->n_retries == pc->cap_retries) {
            size_t cap = pc->cap_retries ? 2 * pc->cap_retries : 16;
            retry_t *p = realloc(pc->retries, cap * sizeof *p);
            if (!p)
                return false;
            pc->retries = p;
            pc->cap_retries = cap;
        }
        pc->retries[pc->n_retries++] = (retry_t){index, 0};
    }
    if (again && weft__iso_again(pc->iso, index) == 0) {
        pc->retries[k].tries++; /* a fresh worker tries it again */
        return true;
    }
    if (k < pc->n_retries) /* settled: forget it */
        pc->retries[k] = pc->retries[--pc->n_retries];
    return false;
}

/* Counts one settled item (journaled when it ran, timed as its worker
 * process reported; a crash or a kill has no timing). */
static void count_item(weft__engine_t *r, worker_t *wk, const weft_item_t *item,
                       const slot_t *slot, const weft__block_t *b,
                       const weft__iso_outcome_t *o)
{
    if (slot->status == ST_NOT_RUN)
        return;
    weft__jtime_t t = o->attempts ? weft__jlog_time(r, o->attempts, o->t0_ns, o->t1_ns)
                                  : (weft__jtime_t){0};
    weft__jlog_add(r, wk, item, item->index, slot, b->bytes.data + slot->off,
                   wk->msgs.data + slot->msg_off, o->attempts ? &t : NULL);
    weft__jlog_flush(r, wk, false);
    wk->done++;
    if (slot->status == ST_OK) {
        weft__progress_add(r->progress, 0, 1, 0);
    } else {
        weft__progress_add(r->progress, 0, 0, 1);
        weft__item_failed(r);
    }
}

static void feed_result(void *arg, uint64_t index, const weft__iso_outcome_t *o)
{
    proc_t *pc = arg;
    weft__engine_t *r = pc->r;
    worker_t *wk = &r->workers[0];
    if (o->kind == WEFT__ISO_OK && !pc->n_retries && !r->journal) {
        /* The common case, per item: its records into the open block. */
        weft__block_t *b = block_for(pc, index);
        if (!b)
            return;
        if (!o->len || weft__buf_append(&b->bytes, o->bytes, o->len) == 0) {
            b->count++;
            b->records += o->records;
            b->counts[ST_OK]++;
            wk->done++;
            weft__progress_add(r->progress, 0, 1, 0);
            return;
        }
    }
    weft_item_t item;
    item_at(r, index, &item);

    item_status_t st = ST_FAILED;
    char msg[MSG_SIZE];
    size_t n = o->msg_len < sizeof msg - 1 ? o->msg_len : sizeof msg - 1;
    memcpy(msg, o->msg ? o->msg : "", n);
    msg[n] = '\0';
    switch (o->kind) {
    case WEFT__ISO_OK:
        st = ST_OK;
        break;
    case WEFT__ISO_FAILED: /* failed, the child's cooperative timeout, or
                              stopped by a signal (not run) */
        st = o->code == ST_TIMED_OUT ? ST_TIMED_OUT
             : o->code == ST_NOT_RUN ? ST_NOT_RUN
                                     : ST_FAILED;
        break;
    case WEFT__ISO_CRASHED:
        st = ST_CRASHED;
        break;
    case WEFT__ISO_TIMED_OUT:
        st = ST_TIMED_OUT;
        snprintf(msg, sizeof msg, "timed out after %g s (its worker was killed)",
                 r->cfg->timeout);
        break;
    case WEFT__ISO_NOT_RUN:
        st = ST_NOT_RUN;
        break;
    }
    if ((pc->n_retries || st == ST_CRASHED || st == ST_TIMED_OUT) &&
        try_again(pc, index, st))
        return;
    weft__block_t *b = block_for(pc, index);
    if (!b)
        return; /* lost: reported as out of memory at the end */
    weft__buf_t *buf = &b->bytes;
    wk->msgs.len = 0;
    slot_t slot = {0};
    if (st != ST_OK && r->npy)
        weft__npy_clear_row(r->npy, item.index);
    if (st == ST_OK) {
        slot = (slot_t){.off = buf->len,
                        .len = (uint32_t)o->len,
                        .records = o->records,
                        .status = ST_OK};
        if (o->len && weft__buf_append(buf, o->bytes, o->len) != 0) {
            st = ST_FAILED;
            snprintf(msg, sizeof msg, "out of memory keeping the result");
        }
    }
    if (st != ST_OK) {
        weft_result_t none = {0};
        if (st == ST_CRASHED && strncmp(msg, "crashed", 7) != 0) {
            size_t keep = strlen(msg) < sizeof msg - 10 ? strlen(msg) : sizeof msg - 10;
            memmove(msg + 9, msg, keep);
            memcpy(msg, "crashed: ", 9);
            msg[9 + keep] = '\0';
        }
        weft__item_encode(r, buf, &wk->msgs, &item, st, st == ST_NOT_RUN ? NULL : msg,
                          &none, &slot);
    }
    count_item(r, wk, &item, &slot, b, o);
    weft__item_block_add(b, index, &slot, &wk->msgs);
}

/* A run of items that ended ok without bytes (output = none, .npy rows):
 * counted as a whole, journaled one by one when there is a journal. */
static void feed_ok_run(void *arg, uint64_t first, size_t n, uint32_t records)
{
    proc_t *pc = arg;
    weft__engine_t *r = pc->r;
    worker_t *wk = &r->workers[0];
    if (pc->n_retries || r->journal) {
        weft__iso_outcome_t o = {
            .kind = WEFT__ISO_OK, .exit_status = -1, .records = records, .msg = ""};
        for (size_t k = 0; k < n; k++)
            feed_result(arg, first + k, &o);
        return;
    }
    weft__block_t *b = block_for(pc, first);
    if (!b)
        return;
    b->count += n;
    b->records += (uint64_t)n * records;
    b->counts[ST_OK] += n;
    wk->done += n;
    weft__progress_add(r->progress, 0, n, 0);
}

int weft__engine_processes(weft__engine_t *r)
{
    const weft__feed_head_t *head = (const weft__feed_head_t *)(const void *)r->feed;
    proc_t pc = {.r = r, .drained = weft__mono_s(), .indexed = head->ring == NULL};
    int status = 0;
    fflush(NULL); /* nothing buffered may be written twice */
    weft__iso_settings_t s = {
        .workers = r->threads,
        .timeout = r->cfg->timeout,
        .stop_flag = &weft__run_stop,
        .arg = &pc,
        .timed = r->jtimed,
        .child_init = child_init,
        .child_item = child_item,
        .child_fini = child_fini,
        .tick = tick,
    };
    char err[ERR_SIZE];
    if (weft__iso_start(&pc.iso, &s, err, sizeof err) != 0) {
        fprintf(stderr, "weft: worker processes: %s\n", err);
        status = WEFT_EXIT_USAGE;
        goto out;
    }
    weft__signals_set_iso(pc.iso);
    weft__iso_feed_t feed = {
        .claim = feed_claim,
        .get_item = feed_get,
        .on_result = feed_result,
        .on_ok_run = feed_ok_run,
        .empty_items = pc.indexed,
        .arg = &pc,
    };
    int rc = weft__iso_serve(pc.iso, &feed);
    if (rc && rc != -ECANCELED && rc != -ECHILD) {
        fprintf(stderr, "weft: worker processes: %s\n", strerror(-rc));
        status = WEFT_EXIT_OUTPUT;
    }
    /* A stop leaves claimed items never served: not run. */
    for (; pc.next < pc.end; pc.next++) {
        weft__iso_outcome_t o = {.kind = WEFT__ISO_NOT_RUN, .exit_status = -1, .msg = ""};
        feed_result(&pc, pc.next, &o);
    }
    drain(&pc);
    weft__signals_set_iso(NULL);
    if (!status)
        status = weft__run_source_status(r);
out:
    weft__iso_destroy(&pc.iso);
    weft__buf_free(&pc.wire);
    weft__buf_free(&pc.cbuf);
    weft__buf_free(&pc.cmsgs);
    free(pc.retries);
    return status;
}
