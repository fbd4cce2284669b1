/* SPDX-License-Identifier: MIT */
/*
 * The local claim source: where an engine's next range of items comes from
 * when it runs on this machine alone.  It reads the item source (core/
 * source.h) as far as the reorder buffer allows, keeps the items read in a
 * ring until they are out, and hands out ranges of them, so the engines
 * never see the source.  Its claim function has the shape of the pool's
 * claim interface (core/pool/pool.h): a shard, or a remote coordinator, is
 * another implementation of the same function.
 *
 * Bounds: no item at or beyond prefix + span is read or handed out (the
 * prefix is the reorder buffer's, core/run/reorder.h), and while more than
 * span_bytes of finished records wait for earlier items, nothing is handed
 * out.  Claims are guided: about a 4·workers-th of what is left, at most
 * CLAIM_MAX items (4096; with large_claims, up to 2^20 in a span of up
 * to 2^26; sources of unknown length: growing from 1), so the last claims are small
 * and the first ones few.
 *
 * Threads: _claim from any worker (one of them reads the source at a time,
 * the others are told to wait meanwhile); _item for a claimed index not yet
 * out; the rest from the thread that owns the feed, while no claim runs.
 */
#ifndef WEFT_CORE_CLAIM_H
#define WEFT_CORE_CLAIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pool.h"
#include "reorder.h"
#include "source.h"

typedef struct weft__feed weft__feed_t;

typedef struct weft__feed_settings {
    weft__source_t *source;
    const weft__reorder_t *reorder; /* its prefix bounds the claims        */
    weft_pool_t *pool;              /* woken when a claim was told to wait;
                                       NULL: one thread claims (no waits) */
    unsigned workers;
    uint64_t span;       /* items; rounded up to a power of two, <= 2^18
                            (2^26 with large_claims)                      */
    uint64_t span_bytes; /* finished bytes waiting that stop claims        */
    _Atomic int *stop;   /* nonzero: no more claims (END)                  */
    bool large_claims;   /* an indexed source whose items cost next to
                            nothing each (a plugin's process_range): a span
                            of up to 2^26 and claims up to 2^20 items    */
} weft__feed_settings_t;

int weft__feed_create(weft__feed_t **out, const weft__feed_settings_t *s);
void weft__feed_destroy(weft__feed_t **f);

/*
 * The claim function (weft__claim_t.next, ctx = the feed): OK with a range
 * of items now claimed, WAIT when the span is full or another worker reads
 * the source (the caller is woken by weft__pool_wake, which the engine
 * calls when the prefix moves; the reader calls it itself), END at the end
 * of the items, on stop, or on a source error.
 */
weft__claim_status_t weft__feed_claim(void *feed, unsigned worker, weft__range_t *out);

/* What weft__feed_item needs, first in the feed (inline: it runs per item). */
typedef struct weft__feed_head {
    const weft__source_t *source;
    const weft_item_t *ring; /* NULL for indexed sources */
    uint64_t mask;
    bool range;              /* numbers are range_begin + index */
    int64_t range_begin;
} weft__feed_head_t;

/* Whether items are range_begin + index alone (*begin set): a loop over
 * them may keep one item and change only its index and number. */
static inline bool weft__feed_range(const weft__feed_t *f, int64_t *begin)
{
    const weft__feed_head_t *h = (const weft__feed_head_t *)(const void *)f;
    *begin = h->range_begin;
    return h->range;
}

/* Claimed item `index` (not yet out): a pointer into the ring, or for
 * indexed sources *tmp filled from the index. */
static inline const weft_item_t *weft__feed_item(const weft__feed_t *f, uint64_t index,
                                                 weft_item_t *tmp)
{
    const weft__feed_head_t *h = (const weft__feed_head_t *)(const void *)f;
    if (h->range) {
        *tmp = (weft_item_t){.index = index,
                             .number = (int64_t)((uint64_t)h->range_begin + index)};
        return tmp;
    }
    if (!h->ring) {
        h->source->vt->at(h->source, index, tmp);
        return tmp;
    }
    return &h->ring[index & h->mask];
}

/* The span in force (items past the prefix that may be claimed). */
uint64_t weft__feed_span(const weft__feed_t *f);

/* Items handed out so far (all of [0, claimed)). */
uint64_t weft__feed_claimed(const weft__feed_t *f);

/* Items read from the source so far (>= claimed); the source's total when
 * it is indexed. */
uint64_t weft__feed_read(const weft__feed_t *f);

/* True once the source reported its end (every item was read). */
bool weft__feed_at_end(const weft__feed_t *f);

/* The source's error message when it failed mid-run, else NULL. */
const char *weft__feed_error(const weft__feed_t *f);

#endif
