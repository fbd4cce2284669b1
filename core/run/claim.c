/* SPDX-License-Identifier: MIT */
/*
 * The local claim source (core/run/claim.h).
 *
 * Indexed sources (ranges) need no reading: a claim is a cursor move, and a
 * worker computes each item from its index.  Other sources are read a
 * batch at a time by whichever worker claims when the read-ahead is used
 * up: the items go into a ring indexed by item index (mask = capacity - 1),
 * their texts into one buffer per batch, freed once the reorder prefix has
 * passed the batch.  The source's own buffers are valid only until its
 * next call, hence the copy.
 *
 * One mutex guards the cursor, the read-ahead and the batches; it is taken
 * with trylock, so a worker never blocks behind a slow read: it is told to
 * WAIT, and the reader wakes the pool when it is done.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"

enum { CLAIM_MAX = 4096, READ_BATCH = 4096, SPAN_MAX = 1 << 18, ERR_LEN = 2048 };
/* large_claims: ~0.5 ms of items costing ~0.5 ns each per claim, and a span
 * of many claims, so that the drain is rarely needed to make room. */
enum { LARGE_CLAIM_MAX = 1 << 20, LARGE_SPAN_MAX = 1 << 26 };

typedef struct batch {
    struct batch *next;
    uint64_t end; /* one past its last item */
    char *text;
} batch_t;

struct weft__feed {
    weft__feed_head_t view; /* first: weft__feed_item reads it */
    weft__feed_settings_t s;
    bool indexed;
    uint64_t total; /* the source's count, or WEFT__COUNT_UNKNOWN */
    uint64_t mask;  /* ring capacity - 1 */
    weft_item_t *ring;
    weft_item_t *scratch; /* READ_BATCH items for the source to fill */

    pthread_mutex_t mu;
    /* Under mu, and read relaxed by the owner thread only after the loop. */
    _Atomic uint64_t cursor; /* next item to hand out                    */
    _Atomic uint64_t read;   /* items read into the ring                  */
    _Atomic bool at_end, failed;
    uint64_t grow;           /* unknown length: the next claim's size      */
    uint64_t claim_max;      /* the largest claim                          */
    batch_t *head, *tail;    /* text batches, oldest first                 */
    char err[ERR_LEN];
};

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int weft__feed_create(weft__feed_t **out, const weft__feed_settings_t *s)
{
    *out = NULL;
    if (!s || !s->source || !s->reorder || s->workers < 1)
        return -EINVAL;
    weft__feed_t *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->s = *s;
    f->indexed = s->source->vt->at != NULL;
    f->total = s->source->total;
    bool large = s->large_claims && f->indexed;
    /* Large claims need a large span: no ring holds indexed items, and the
     * records' bytes are bounded by span_bytes anyway. */
    uint64_t span_max = large ? LARGE_SPAN_MAX : SPAN_MAX;
    uint64_t span = s->span ? s->span : SPAN_MAX;
    if (large && span < LARGE_SPAN_MAX)
        span = LARGE_SPAN_MAX;
    if (span > span_max)
        span = span_max;
    /* Sized to the job: a short list needs no big ring. */
    if (f->total != WEFT__COUNT_UNKNOWN && f->total < span)
        span = f->total ? f->total : 1;
    span = pow2_at_least(span);
    f->s.span = span;
    f->mask = span - 1;
    /* Large claims only where items cost next to nothing and every item is
     * made from its index; at most a 2·workers-th of the span, so that
     * claims keep flowing while earlier ones are written. */
    f->claim_max = CLAIM_MAX;
    if (large) {
        uint64_t big = span / (2 * (uint64_t)s->workers);
        f->claim_max = big > LARGE_CLAIM_MAX ? LARGE_CLAIM_MAX : big > CLAIM_MAX ? big : CLAIM_MAX;
    }
    f->grow = 1;
    if (!f->indexed) {
        f->ring = malloc(span * sizeof *f->ring);
        f->scratch = malloc(READ_BATCH * sizeof *f->scratch);
        if (!f->ring || !f->scratch) {
            weft__feed_destroy(&f);
            return -ENOMEM;
        }
    } else {
        atomic_store(&f->read, f->total);
    }
    f->view = (weft__feed_head_t){.source = s->source, .ring = f->ring, .mask = f->mask,
                                  .range = s->source->is_range,
                                  .range_begin = s->source->range_begin};
    pthread_mutex_init(&f->mu, NULL);
    *out = f;
    return 0;
}

void weft__feed_destroy(weft__feed_t **fp)
{
    weft__feed_t *f = *fp;
    if (!f)
        return;
    for (batch_t *b = f->head; b;) {
        batch_t *next = b->next;
        free(b->text);
        free(b);
        b = next;
    }
    if (f->ring || f->indexed)
        pthread_mutex_destroy(&f->mu);
    free(f->ring);
    free(f->scratch);
    free(f);
    *fp = NULL;
}

/* Under mu: frees the text of batches the prefix has passed. */
static void reclaim(weft__feed_t *f, uint64_t prefix)
{
    while (f->head && f->head->end <= prefix) {
        batch_t *b = f->head;
        f->head = b->next;
        if (!f->head)
            f->tail = NULL;
        free(b->text);
        free(b);
    }
}

/* Under mu: reads up to `room` items into the ring.  0, or -1 with f->err
 * (source error, or out of memory). */
static int read_batch(weft__feed_t *f, uint64_t room)
{
    uint64_t first = atomic_load_explicit(&f->read, memory_order_relaxed);
    size_t max = room < READ_BATCH ? (size_t)room : READ_BATCH, got = 0;
    int rc = weft__source_next(f->s.source, f->scratch, max, &got, f->err, sizeof f->err);
    if (rc)
        return -1;
    if (got == 0) {
        atomic_store_explicit(&f->at_end, true, memory_order_relaxed);
        return 0;
    }
    size_t bytes = 0;
    for (size_t k = 0; k < got; k++)
        if (f->scratch[k].text)
            bytes += f->scratch[k].text_len + 1;
    batch_t *b = calloc(1, sizeof *b);
    char *text = bytes ? malloc(bytes) : NULL;
    if (!b || (bytes && !text)) {
        free(b);
        free(text);
        snprintf(f->err, sizeof f->err, "out of memory keeping %zu items read", got);
        return -1;
    }
    char *p = text;
    for (size_t k = 0; k < got; k++) {
        weft_item_t it = f->scratch[k];
        if (it.text) {
            memcpy(p, it.text, it.text_len);
            p[it.text_len] = '\0';
            it.text = p;
            p += it.text_len + 1;
        }
        f->ring[(first + k) & f->mask] = it;
    }
    b->text = text;
    b->end = first + got;
    if (f->tail)
        f->tail->next = b;
    else
        f->head = b;
    f->tail = b;
    /* release: the ring slots are written before workers learn the items
     * exist (they read them after their claim, which is under mu anyway). */
    atomic_store_explicit(&f->read, first + got, memory_order_release);
    return 0;
}

/* Guided claim size for `left` items (UNKNOWN: growing). */
static uint64_t claim_size(weft__feed_t *f, uint64_t left)
{
    if (left == WEFT__COUNT_UNKNOWN) {
        uint64_t n = f->grow;
        if (f->grow < CLAIM_MAX)
            f->grow *= 2;
        return n;
    }
    uint64_t n = left / (4 * (uint64_t)f->s.workers);
    if (n > f->claim_max)
        n = f->claim_max;
    return n ? n : 1;
}

weft__claim_status_t weft__feed_claim(void *feed, unsigned worker, weft__range_t *out)
{
    weft__feed_t *f = feed;
    (void)worker;
    if (atomic_load_explicit(f->s.stop, memory_order_relaxed) ||
        atomic_load_explicit(&f->failed, memory_order_relaxed))
        return WEFT__CLAIM_END;
    if (pthread_mutex_trylock(&f->mu) != 0)
        return WEFT__CLAIM_WAIT; /* another worker claims; it wakes us */
    weft__claim_status_t st = WEFT__CLAIM_WAIT;
    uint64_t cur = atomic_load_explicit(&f->cursor, memory_order_relaxed);
    uint64_t prefix = weft__reorder_prefix(f->s.reorder);
    uint64_t limit = prefix + f->s.span;
    if (cur > prefix && weft__reorder_pending_bytes(f->s.reorder) > f->s.span_bytes)
        goto out; /* records wait for an earlier item: let it finish */
    uint64_t read = atomic_load_explicit(&f->read, memory_order_relaxed);
    if (!f->indexed && read == cur && !atomic_load_explicit(&f->at_end, memory_order_relaxed)) {
        if (read >= limit)
            goto out;
        reclaim(f, prefix);
        if (read_batch(f, limit - read) != 0) {
            atomic_store_explicit(&f->failed, true, memory_order_relaxed);
            st = WEFT__CLAIM_END;
            goto out;
        }
        read = atomic_load_explicit(&f->read, memory_order_relaxed);
    }
    if (cur >= read) {
        if (f->indexed || atomic_load_explicit(&f->at_end, memory_order_relaxed))
            st = WEFT__CLAIM_END;
        goto out;
    }
    if (cur >= limit)
        goto out;
    /* A file's line count is advisory (it may grow between the passes). */
    uint64_t left = f->total == WEFT__COUNT_UNKNOWN ? WEFT__COUNT_UNKNOWN
                    : f->total > cur                ? f->total - cur
                                                    : read - cur;
    uint64_t n = claim_size(f, left);
    if (n > read - cur)
        n = read - cur;
    if (n > limit - cur)
        n = limit - cur;
    *out = (weft__range_t){(size_t)cur, (size_t)(cur + n)};
    atomic_store_explicit(&f->cursor, cur + n, memory_order_relaxed);
    st = WEFT__CLAIM_OK;
out:
    pthread_mutex_unlock(&f->mu);
    /* A worker whose trylock failed while we held the lock was told to
     * wait; it loaded the pool's generation before its trylock, so this
     * bump, after our unlock, wakes it in every interleaving.  Only after
     * a claim that got items: after WAIT it would wait too (the drain's
     * bump, when it makes room, wakes it), after END it has nothing to
     * claim; and a bump per WAIT would wake every waiter in turn while
     * the span stays full.  One atomic add per claim (a claim is many
     * items). */
    if (f->s.pool && st == WEFT__CLAIM_OK)
        weft__pool_wake(f->s.pool);
    return st;
}

uint64_t weft__feed_span(const weft__feed_t *f)
{
    return f->s.span;
}

uint64_t weft__feed_claimed(const weft__feed_t *f)
{
    return atomic_load_explicit(&((weft__feed_t *)f)->cursor, memory_order_relaxed);
}

uint64_t weft__feed_read(const weft__feed_t *f)
{
    return atomic_load_explicit(&((weft__feed_t *)f)->read, memory_order_relaxed);
}

bool weft__feed_at_end(const weft__feed_t *f)
{
    return f->indexed || atomic_load_explicit(&((weft__feed_t *)f)->at_end, memory_order_relaxed);
}

const char *weft__feed_error(const weft__feed_t *f)
{
    return atomic_load_explicit(&((weft__feed_t *)f)->failed, memory_order_relaxed) ? f->err
                                                                                     : NULL;
}
