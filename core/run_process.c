/* SPDX-License-Identifier: MIT */
/*
 * isolate = process: items run in persistent forked worker processes
 * (core/isolate.c), so an item that crashes, exits or hangs costs only
 * itself.  This engine maps claims onto the supervisor: each child runs the
 * plugin's init and worker_init once, then per item process_one and the
 * same encoding as thread mode, and sends back the framed records; the
 * parent, single-threaded (it forks: no other thread may exist), claims
 * ranges from the same claim source as thread mode, turns each outcome
 * into a block of the same reorder buffer, journals it, and drains the
 * buffer into the output as it goes (at least every FLUSH_S).
 *
 * A .npy output is a shared mapping: a child writes its row in place, and
 * the parent zeroes the row of an item that did not end ok.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_impl.h"

enum { PROCESS_CLAIM = 4096 }; /* the claim source's largest claim */
#define FLUSH_S 0.02

typedef struct proc {
    run_t *r;
    uint64_t first;     /* the claim's first item                        */
    size_t count;
    uint64_t *todo;     /* item indices to run this round                */
    size_t n_todo;
    uint64_t *again;    /* items to run again (crash/timeout retries)    */
    size_t n_again;
    weft__buf_t wire;   /* the round's items, serialized                */
    size_t *wire_off;   /* item k of the round at wire.data + wire_off[k] */
    unsigned round;
    double drained;     /* when the reorder buffer was last drained      */
    /* Child side: its encoding buffers. */
    weft__buf_t cbuf, cmsgs;
} proc_t;

/* An item on the wire: its index and number, then its text and a NUL (or
 * nothing).  The supervisor numbers a round's items 0..n-1; the index
 * travels with the item. */
static int wire_put(weft__buf_t *b, const weft_item_t *item)
{
    uint64_t head[2] = {item->index, (uint64_t)item->number};
    int e = weft__buf_append(b, head, sizeof head);
    if (e == 0 && item->text)
        e = weft__buf_append(b, item->text, item->text_len + 1);
    return e;
}

static void item_at(const run_t *r, uint64_t index, weft_item_t *out)
{
    *out = *weft__feed_item(r->feed, index, out);
}

/* Empties the reorder buffer into the output; flushes it. */
static void drain(proc_t *pc)
{
    run_t *r = pc->r;
    double t0 = weft__run_now();
    weft__reorder_drain(r->reorder);
    weft__reorder_totals_t t;
    weft__reorder_totals(r->reorder, &t);
    int running = 0;
    if (t.write_error == -ENOMEM) /* a lost block: the prefix is stuck */
        atomic_compare_exchange_strong(&weft__run_stop, &running, 1);
    if (r->writer && weft__writer_buffered(r->writer))
        weft__writer_flush(r->writer);
    pc->drained = weft__run_now();
    r->t_output += pc->drained - t0;
}

/* The supervisor's tick: what finished reaches the output within FLUSH_S
 * plus one of its wakeups, also while a slow item keeps it waiting. */
static void tick(void *arg)
{
    proc_t *pc = arg;
    if (weft__run_now() - pc->drained >= FLUSH_S)
        drain(pc);
}

/* One item's outcome as a block of its own (process mode is per item). */
static void hand(proc_t *pc, weft__block_t *b, uint64_t index, const slot_t *slot,
                 const weft__buf_t *msgs)
{
    run_t *r = pc->r;
    weft__run_block_add(r, b, index, slot, msgs);
    weft__reorder_put(r->reorder, b);
    if (weft__run_now() - pc->drained >= FLUSH_S)
        drain(pc);
}

/* ---- the child side ------------------------------------------------------ */

static int child_init(void *arg, unsigned worker, char *msg, size_t msg_size)
{
    proc_t *pc = arg;
    run_t *r = pc->r;
    const weft_plugin_t *p = &r->plugin->desc;
    /* The parent's state was forked along; this worker makes its own. */
    r->state = NULL;
    r->progress = NULL;
    if (p->init(&r->host.pub, r->args, &r->state, msg, msg_size) != 0)
        return -1;
    if (p->worker_init &&
        p->worker_init(r->state, worker, r->threads, &r->workers[worker].ctx, msg, msg_size) != 0)
        return -1;
    return 0;
}

static void child_item(void *arg, unsigned worker, uint64_t index, const void *bytes,
                       size_t len, weft__iso_reply_t *reply)
{
    proc_t *pc = arg;
    run_t *r = pc->r;
    (void)index;
    uint64_t head[2] = {0, 0};
    weft_item_t item = {0};
    if (len >= sizeof head)
        memcpy(head, bytes, sizeof head);
    item.index = head[0];
    item.number = (int64_t)head[1];
    if (len > sizeof head) {
        item.text = (const char *)bytes + sizeof head;
        item.text_len = len - sizeof head - 1;
    }
    char why[MSG_SIZE];
    const char *msg = NULL;
    weft_result_t res;
    item_status_t st = weft__run_call(r, &r->workers[worker], &item, &res, &msg, why, sizeof why);
    slot_t slot = {0};
    pc->cbuf.len = pc->cmsgs.len = 0;
    weft__run_encode(r, &pc->cbuf, &pc->cmsgs, &item, st, msg, &res, &slot);
    if (slot.status == ST_OK)
        weft__iso_reply_ok(reply, slot.records, pc->cbuf.data + slot.off, slot.len);
    else
        weft__iso_reply_fail(reply, (int)slot.status, pc->cmsgs.data + slot.msg_off,
                             slot.msg_len);
}

static void child_fini(void *arg, unsigned worker)
{
    proc_t *pc = arg;
    run_t *r = pc->r;
    const weft_plugin_t *p = &r->plugin->desc;
    if (p->worker_fini)
        p->worker_fini(r->state, worker, r->workers[worker].ctx);
    if (p->destroy)
        p->destroy(r->state);
}

/* ---- the supervisor side ------------------------------------------------ */

static void get_item(void *arg, size_t i, const void **bytes, size_t *len)
{
    proc_t *pc = arg;
    size_t end = i + 1 < pc->n_todo ? pc->wire_off[i + 1] : pc->wire.len;
    *bytes = pc->wire.data + pc->wire_off[i];
    *len = end - pc->wire_off[i];
}

static void on_result(void *arg, size_t i, const weft__iso_outcome_t *o)
{
    proc_t *pc = arg;
    run_t *r = pc->r;
    uint64_t index = pc->todo[i];
    weft_item_t item;
    item_at(r, index, &item);

    item_status_t st = ST_FAILED;
    char msg[MSG_SIZE];
    size_t n = o->msg_len < sizeof msg - 1 ? o->msg_len : sizeof msg - 1;
    memcpy(msg, o->msg ? o->msg : "", n);
    msg[n] = '\0';
    switch (o->kind) {
    case WEFT__ISO_OK: st = ST_OK; break;
    case WEFT__ISO_FAILED: /* failed, or the child's cooperative timeout */
        st = o->code == ST_TIMED_OUT ? ST_TIMED_OUT : ST_FAILED;
        break;
    case WEFT__ISO_CRASHED: st = ST_CRASHED; break;
    case WEFT__ISO_TIMED_OUT:
        st = ST_TIMED_OUT;
        snprintf(msg, sizeof msg, "timed out after %g s (its worker was killed)",
                 r->cfg->timeout);
        break;
    case WEFT__ISO_NOT_RUN: st = ST_NOT_RUN; break;
    }
    if ((st == ST_CRASHED || st == ST_TIMED_OUT) && pc->round < r->cfg->retries &&
        !atomic_load(&weft__run_stop)) {
        pc->again[pc->n_again++] = index; /* a fresh worker tries it again */
        return;
    }
    weft__block_t *b = weft__reorder_block_get(r->reorder, 0);
    if (!b) {
        int none = 0;
        atomic_compare_exchange_strong(&weft__run_stop, &none, 1);
        return; /* lost: reported as out of memory at the end */
    }
    b->first = index;
    worker_t *wk = &r->workers[0];
    weft__buf_t *buf = &b->bytes;
    wk->msgs.len = 0;
    slot_t slot = {0};
    if (st != ST_OK && r->npy)
        memset(weft__npy_row(r->npy, item.index), 0, weft__npy_row_bytes(r->npy));
    if (st == ST_OK) {
        if (o->len && weft__buf_append(buf, o->bytes, o->len) != 0) {
            st = ST_FAILED;
            snprintf(msg, sizeof msg, "out of memory keeping the result");
        } else {
            slot = (slot_t){.len = (uint32_t)o->len, .records = o->records, .status = ST_OK};
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
        weft__run_encode(r, buf, &wk->msgs, &item, st, st == ST_NOT_RUN ? NULL : msg, &none,
                         &slot);
    }
    if (st != ST_NOT_RUN) {
        weft__run_journal_add(r, wk, &item, index, &slot, buf->data + slot.off,
                              wk->msgs.data + slot.msg_off);
        weft__run_journal_flush(r, wk, false);
        wk->done++;
        if (slot.status == ST_OK) {
            weft__progress_add(r->progress, 0, 1, 0);
        } else {
            weft__progress_add(r->progress, 0, 0, 1);
            weft__run_failed(r);
        }
    }
    hand(pc, b, index, &slot, &wk->msgs);
}

/* Serializes the round's items (pc->todo) onto the wire. */
static int wire_round(proc_t *pc)
{
    pc->wire.len = 0;
    for (size_t i = 0; i < pc->n_todo; i++) {
        weft_item_t item;
        item_at(pc->r, pc->todo[i], &item);
        pc->wire_off[i] = pc->wire.len;
        if (wire_put(&pc->wire, &item) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* One claim: reused and stopped items settled here, the rest on the
 * workers, crashed and timed-out ones again up to `retries` times. */
static int run_claim(proc_t *pc, weft__iso_t *iso)
{
    run_t *r = pc->r;
    worker_t *wk = &r->workers[0];
    pc->n_todo = 0;
    for (size_t k = 0; k < pc->count; k++) {
        uint64_t index = pc->first + k;
        weft_item_t item;
        item_at(r, index, &item);
        bool stopped = atomic_load(&weft__run_stop);
        if (!stopped && !r->scan) {
            pc->todo[pc->n_todo++] = index;
            continue;
        }
        weft__block_t *b = weft__reorder_block_get(r->reorder, 0);
        if (!b)
            return WEFT_EXIT_OUTPUT;
        b->first = index;
        slot_t slot;
        wk->msgs.len = 0;
        if (stopped) {
            weft_result_t none = {0};
            weft__run_encode(r, &b->bytes, &wk->msgs, &item, ST_NOT_RUN, NULL, &none, &slot);
        } else if (weft__run_reuse(r, &b->bytes, &wk->msgs, &item, index, &slot)) {
            weft__run_journal_add(r, wk, &item, index, &slot, b->bytes.data + slot.off,
                                  wk->msgs.data + slot.msg_off); /* a quarantine */
            weft__progress_skip(r->progress, 1);
        } else {
            weft__reorder_block_drop(r->reorder, b);
            pc->todo[pc->n_todo++] = index;
            continue;
        }
        hand(pc, b, index, &slot, &wk->msgs);
    }
    for (pc->round = 0; pc->n_todo; pc->round++) {
        if (wire_round(pc) != 0) {
            fprintf(stderr, "weft: out of memory\n");
            return WEFT_EXIT_OUTPUT;
        }
        pc->n_again = 0;
        int rc = weft__iso_run(iso, pc->n_todo, 0, get_item, on_result, pc);
        if (rc && rc != -ECANCELED && rc != -ECHILD) {
            fprintf(stderr, "weft: worker processes: %s\n", strerror(-rc));
            return WEFT_EXIT_OUTPUT;
        }
        memcpy(pc->todo, pc->again, pc->n_again * sizeof *pc->todo);
        pc->n_todo = pc->n_again;
    }
    return 0;
}

int weft__run_process(run_t *r)
{
    proc_t pc = {.r = r, .drained = weft__run_now()};
    pc.todo = malloc(PROCESS_CLAIM * sizeof *pc.todo);
    pc.again = malloc(PROCESS_CLAIM * sizeof *pc.again);
    pc.wire_off = malloc(PROCESS_CLAIM * sizeof *pc.wire_off);
    weft__iso_t *iso = NULL;
    int status = 0;
    if (!pc.todo || !pc.again || !pc.wire_off) {
        fprintf(stderr, "weft: out of memory\n");
        status = WEFT_EXIT_USAGE;
        goto out;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    weft__iso_settings_t s = {
        .workers = r->threads,
        .timeout = r->cfg->timeout,
        .stop_flag = &weft__run_stop,
        .arg = &pc,
        .child_init = child_init,
        .child_item = child_item,
        .child_fini = child_fini,
        .tick = tick,
    };
    if (weft__iso_start(&iso, &s, r->err, ERR_SIZE) != 0) {
        fprintf(stderr, "weft: worker processes: %s\n", r->err);
        status = WEFT_EXIT_USAGE;
        goto out;
    }
    weft__run_set_signal_iso(iso);
    for (;;) {
        weft__range_t range;
        weft__claim_status_t st = weft__feed_claim(r->feed, 0, &range);
        if (st == WEFT__CLAIM_WAIT) {
            drain(&pc); /* one thread: what waits is ours to write */
            continue;
        }
        if (st == WEFT__CLAIM_END)
            break;
        pc.first = range.begin;
        pc.count = range.end - range.begin;
        if (r->journal)
            weft__journal_window(r->journal, pc.first, pc.count);
        status = run_claim(&pc, iso);
        weft__run_journal_window_end(r, false);
        if (status)
            break;
    }
    drain(&pc);
    weft__run_set_signal_iso(NULL);
    if (!status)
        status = weft__run_source_status(r);
out:
    weft__iso_destroy(&iso);
    weft__buf_free(&pc.wire);
    weft__buf_free(&pc.cbuf);
    weft__buf_free(&pc.cmsgs);
    free(pc.todo);
    free(pc.again);
    free(pc.wire_off);
    return status;
}
