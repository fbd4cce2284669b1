/* SPDX-License-Identifier: MIT */
/*
 * The reorder buffer: finished work goes out in input order (or as it
 * completes), with bounded memory and no barrier.
 *
 * A block is what one worker made of a contiguous run of items
 * [first, first + count): their framed records, their outcome counts and
 * the notes of their failures.  Workers fill blocks and hand them over
 * (weft__reorder_put, lock-free); the drain (weft__reorder_drain: the
 * writer thread, or the single-threaded process engine) takes them, sends
 * each block's records to the sink as soon as it may (order = input: once
 * every item before it went out; order = any: at once), counts outcomes,
 * prints the first failures, and gives the block back to its owner for
 * reuse.  Blocks are recycled, so the steady state allocates nothing.
 *
 * The drain also publishes the done prefix: the first item index not yet
 * out, with every item below it out.  The claim source (core/run/claim.h)
 * hands out no item at or beyond prefix + span, so the span between the
 * oldest unwritten item and the newest claimed one is bounded, and with it
 * the memory the blocks and the item ring hold.
 *
 * Threads: _block_get and _put by workers (a worker gets blocks with its
 * own id only); _drain, _flush_due and the counters by one drain thread at
 * a time; _prefix by anyone.
 */
#ifndef WEFT_CORE_REORDER_H
#define WEFT_CORE_REORDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "output.h"

/* Item outcomes, as the journal numbers them, plus "not run". */
enum { WEFT__N_STATUS = 10, WEFT__ST_NOT_RUN = 9 };

typedef struct weft__block {
    struct weft__block *next; /* hand-off stack, or the owner's free list   */
    uint64_t first, count;    /* the items [first, first + count)           */
    uint64_t records;         /* framed records in `bytes`                  */
    unsigned owner;           /* the worker it returns to                   */
    weft__buf_t bytes;        /* the records, framed (output.h)             */
    weft__buf_t notes;        /* failure notes, see weft__block_note        */
    uint64_t counts[WEFT__N_STATUS]; /* by status                           */
    uint64_t reused[WEFT__N_STATUS]; /* of counts[], done by an earlier run  */
} weft__block_t;

/* Adds a failure note: item index, status, whether an earlier run did it,
 * and its message (cut at 1023 bytes).  0 or -ENOMEM (the note is then
 * lost; the counts still hold). */
int weft__block_note(weft__block_t *b, uint64_t index, unsigned status, bool reused,
                     const char *msg, size_t len);

typedef struct weft__reorder weft__reorder_t;

typedef struct weft__reorder_settings {
    unsigned workers;       /* owners of blocks, 1..1024                   */
    bool ordered;           /* order = input                               */
    weft__writer_t *writer; /* where records go; NULL: nowhere (counted)   */
    /* Prints failure notes, at most `max_printed` of them in all, in the
     * order their blocks go out.  May be NULL. */
    void (*print)(void *arg, uint64_t index, unsigned status, bool reused, const char *msg,
                  size_t len);
    void *print_arg;
    unsigned max_printed;
    /* Told of every failure note, printed or not, in the same order (the
     * summary's list of failed items).  May be NULL. */
    void (*noted)(void *arg, uint64_t index, unsigned status);
} weft__reorder_settings_t;

int weft__reorder_create(weft__reorder_t **out, const weft__reorder_settings_t *s);
/* Frees every block, queued or not; *ro becomes NULL.  NULL ok. */
void weft__reorder_destroy(weft__reorder_t **ro);

/* Worker `owner`: an empty block (first = count = 0), or NULL when out of
 * memory.  Cheap: reuses blocks the drain gave back. */
weft__block_t *weft__reorder_block_get(weft__reorder_t *ro, unsigned owner);

/* Any worker: hands b (count > 0) to the drain.  Lock-free, one CAS. */
void weft__reorder_put(weft__reorder_t *ro, weft__block_t *b);

/* Gives a block that was never put back to its owner (a worker with
 * nothing to hand over). */
void weft__reorder_block_drop(weft__reorder_t *ro, weft__block_t *b);

/* The drain: takes every block put so far, sends what may go out to the
 * writer, and returns true if it made room for claims: the prefix moved,
 * or with order = any records went out (they no longer count as waiting). */
bool weft__reorder_drain(weft__reorder_t *ro);

/* True when nothing is put and not yet drained (a hint for sleeping). */
bool weft__reorder_idle(const weft__reorder_t *ro);

/* The done prefix (see the top); any thread, acquire. */
uint64_t weft__reorder_prefix(const weft__reorder_t *ro);

/* Records held, not yet sent: blocks waiting for their turn (bytes).  Any
 * thread; relaxed. */
uint64_t weft__reorder_pending_bytes(const weft__reorder_t *ro);

/* Drain thread, after the last drain: blocks still waiting (an item before
 * them never came: a block lost for want of memory) are counted but their
 * records dropped; returns how many items they held. */
uint64_t weft__reorder_finish(weft__reorder_t *ro);

/* Totals of what was drained (drain thread, or after the drain stopped). */
typedef struct weft__reorder_totals {
    uint64_t counts[WEFT__N_STATUS];
    uint64_t reused[WEFT__N_STATUS];
    uint64_t printed;  /* failure notes printed                        */
    int write_error;   /* first error the writer reported, or 0          */
} weft__reorder_totals_t;
void weft__reorder_totals(const weft__reorder_t *ro, weft__reorder_totals_t *out);

#endif
