/* SPDX-License-Identifier: MIT */
/*
 * A Chase–Lev work-stealing deque of index ranges, internal to the pool.
 *
 * Algorithm: D. Chase, Y. Lev, "Dynamic Circular Work-Stealing Deque",
 * SPAA 2005, in the C11 formulation of N. M. Lê, A. Pop, A. Cohen,
 * F. Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
 * Models", PPoPP 2013.  One owner thread calls _push and _pop at the bottom;
 * any number of thieves call _steal at the top.  Elements live in slots
 * [top, bottom) of a circular array, indexed modulo the capacity.
 *
 * Differences from the paper, and why:
 *
 *  - FIXED capacity (WEFT__DEQUE_CAP, a power of two), no growth: _push
 *    returns false when full and the owner simply keeps the range it wanted
 *    to give away.  The pool pushes only when its own deque is empty (lazy
 *    binary splitting), so it never holds more than one element anyway.  With
 *    no resize there is no array pointer to reload after a resize, no resize
 *    racing a steal and no retired array a thief might still read: bugs 1, 4
 *    and 5 of the team's work-stealing notes (a push missing the array
 *    reload after a resize, a task handed out twice by a steal racing a
 *    resize, a freed retired array) cannot happen by construction.
 *  - top and bottom are signed 64-bit: _pop on an empty deque with
 *    bottom == 0 computes -1, not SIZE_MAX (bug 2).  They never wrap in
 *    practice (2^63 operations).
 *  - A slot is two relaxed atomic words {begin, end}, so a thief reading a
 *    slot the owner is rewriting is not a data race in C11 terms.  The thief
 *    reads the slot BEFORE its CAS on top (bug 3); a successful CAS proves
 *    the slot was not reused in between (reuse needs top to move past it),
 *    so a torn or stale read is always discarded with a failed CAS.
 *  - The paper's standalone seq_cst fences (in take and steal) are replaced
 *    by seq_cst atomic operations: a seq_cst store of bottom followed by a
 *    seq_cst load of top in _pop, seq_cst loads of top then bottom in _steal.
 *    ThreadSanitizer does not model atomic_thread_fence and would report
 *    false races; the operations give the same store-load (Dekker) ordering
 *    and TSan understands them.  On x86 the cost is the same (the store
 *    becomes an XCHG, as the fence would have been an MFENCE).  Every store
 *    to top and bottom is seq_cst, so every seq_cst load of them reads the
 *    latest value in the single total order S, which keeps the proofs short.
 *
 * The pool also relies on _push's seq_cst store of bottom to order it before
 * its later seq_cst load of the sleeper count (see core/pool/pool.c).
 *
 * Layout: top, bottom and the slots sit on separate cache lines, so the
 * owner's bottom updates do not invalidate the line thieves CAS on.
 */
#ifndef WEFT_CORE_DEQUE_H
#define WEFT_CORE_DEQUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT__DEQUE_CAP 64 /* power of two */
#define WEFT__CACHE_LINE 64

typedef struct weft__range {
    size_t begin, end;
} weft__range_t;

typedef struct weft__deque {
    alignas(WEFT__CACHE_LINE) _Atomic int64_t top; /* CAS by thieves, and owner for the last element */
    alignas(WEFT__CACHE_LINE) _Atomic int64_t bottom; /* written by the owner only */
    alignas(WEFT__CACHE_LINE) struct {
        _Atomic size_t begin, end;
    } slot[WEFT__DEQUE_CAP];
} weft__deque_t;

enum weft__steal_result {
    WEFT__STEAL_EMPTY = 0, /* nothing to take */
    WEFT__STEAL_OK = 1,    /* *out holds the stolen range */
    WEFT__STEAL_ABORT = 2, /* lost a race with another thief or the owner; retry */
};

/* Not thread-safe: before any other thread may see the deque. */
static inline void weft__deque_init(weft__deque_t *d)
{
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    for (size_t i = 0; i < WEFT__DEQUE_CAP; i++) {
        atomic_init(&d->slot[i].begin, 0);
        atomic_init(&d->slot[i].end, 0);
    }
}

/* Owner only.  Appends r at the bottom; false when full (r not stored). */
static inline bool weft__deque_push(weft__deque_t *d, weft__range_t r)
{
    /* Only the owner writes bottom: our own last value. */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    /* acquire pairs with the thieves' seq_cst CAS on top: a thief's read of
     * slot t happens-before our overwrite of that slot (b == t + CAP) once we
     * have seen top move past t.  A stale (smaller) top only makes us
     * conservative. */
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    if (b - t >= WEFT__DEQUE_CAP)
        return false;
    size_t i = (size_t)b & (WEFT__DEQUE_CAP - 1);
    atomic_store_explicit(&d->slot[i].begin, r.begin, memory_order_relaxed);
    atomic_store_explicit(&d->slot[i].end, r.end, memory_order_relaxed);
    /* seq_cst (a release): pairs with the thieves' seq_cst load of bottom,
     * publishing the slot.  Being seq_cst also orders it before the pool's
     * seq_cst load of the sleeper count (no lost wakeup, see pool.c). */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_seq_cst);
    return true;
}

/* Owner only.  Takes the most recently pushed range (LIFO); false if empty. */
static inline bool weft__deque_pop(weft__deque_t *d, weft__range_t *out)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    /* Early out: top only grows, so b <= (a possibly stale) top proves empty
     * and spares the idle owner two serialising stores. */
    if (b <= atomic_load_explicit(&d->top, memory_order_relaxed))
        return false;
    b -= 1;
    /* Store-load (Dekker) pair with _steal's seq_cst loads of top then bottom:
     * in the total order either the thief sees the lowered bottom or we see
     * its incremented top, so both cannot take the same last element. */
    atomic_store_explicit(&d->bottom, b, memory_order_seq_cst);
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    if (t > b) {
        /* Thieves emptied it meanwhile: restore bottom == top. */
        atomic_store_explicit(&d->bottom, b + 1, memory_order_seq_cst);
        return false;
    }
    size_t i = (size_t)b & (WEFT__DEQUE_CAP - 1);
    out->begin = atomic_load_explicit(&d->slot[i].begin, memory_order_relaxed);
    out->end = atomic_load_explicit(&d->slot[i].end, memory_order_relaxed);
    if (t < b)
        return true; /* more than one element: no thief can reach slot b */
    /* Last element: race the thieves for it on top, like a steal.  seq_cst
     * so that it is ordered with the thieves' CAS and loads in S. */
    int64_t expected = t;
    bool won = atomic_compare_exchange_strong_explicit(
        &d->top, &expected, t + 1, memory_order_seq_cst, memory_order_relaxed);
    /* Either way the deque is now empty: bottom = top = t + 1. */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_seq_cst);
    return won;
}

/* Any thread but the owner.  Takes the oldest range (FIFO from the top). */
static inline enum weft__steal_result weft__deque_steal(weft__deque_t *d,
                                                        weft__range_t *out)
{
    /* seq_cst loads, top then bottom: the other half of _pop's Dekker pair.
     * The load of bottom also acquires _push's seq_cst store of bottom,
     * making slot t's contents visible. */
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    if (t >= b)
        return WEFT__STEAL_EMPTY;
    /* Read before the CAS (bug 3).  The CAS below validates the read: if the
     * owner reused slot t, top has moved past t and the CAS fails. */
    size_t i = (size_t)t & (WEFT__DEQUE_CAP - 1);
    weft__range_t r;
    r.begin = atomic_load_explicit(&d->slot[i].begin, memory_order_relaxed);
    r.end = atomic_load_explicit(&d->slot[i].end, memory_order_relaxed);
    int64_t expected = t;
    /* seq_cst: totally ordered with the owner's last-element CAS and its
     * bottom/top accesses in _pop; its release half pairs with _push's
     * acquire load of top (slot reuse). */
    if (!atomic_compare_exchange_strong_explicit(&d->top, &expected, t + 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return WEFT__STEAL_ABORT;
    *out = r;
    return WEFT__STEAL_OK;
}

/* Owner only, a cheap hint for the split decision: true if the deque is
 * empty or a thief has just emptied it.  Relaxed: a stale top can only say
 * "not empty" for a moment, which merely postpones one split. */
static inline bool weft__deque_empty_hint(weft__deque_t *d)
{
    return atomic_load_explicit(&d->bottom, memory_order_relaxed) <=
           atomic_load_explicit(&d->top, memory_order_relaxed);
}

/* Any thread: does the deque (seem to) hold a range?  seq_cst loads: used by
 * a worker about to sleep, after its seq_cst increment of the sleeper count,
 * as the load half of the Dekker pair with _push's store of bottom. */
static inline bool weft__deque_nonempty(weft__deque_t *d)
{
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    return t < b;
}

/* Number of ranges, approximate under concurrency (exact when quiescent). */
static inline int64_t weft__deque_size(weft__deque_t *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    return b > t ? b - t : 0;
}

#endif /* WEFT_CORE_DEQUE_H */
