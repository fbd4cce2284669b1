/* SPDX-License-Identifier: MIT */
/*
 * The reorder buffer (core/run/reorder.h).
 *
 * Hand-off: workers push finished blocks onto one lock-free stack
 * (`incoming`, a Treiber push; the drain takes the whole stack with one
 * exchange, so there is no ABA).  The drain keeps the blocks that may not
 * go out yet in a binary min-heap by first index; the blocks arrive nearly
 * in order, so the heap stays small.  Blocks go back to their owner on a
 * per-owner stack of the same kind (the drain pushes, the owner takes all),
 * and from there onto the owner's private free list.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "reorder.h"

enum { NOTE_HEAD = 12, NOTE_MAX = 1023 };

typedef struct pending {
    uint64_t first, count;
    weft__block_t *b; /* NULL: already sent (order = any), only its range waits */
} pending_t;

typedef struct owner {
    alignas(64) _Atomic(weft__block_t *) returned; /* pushed by the drain    */
    weft__block_t *free;                           /* the owner's own         */
    char pad[64 - sizeof(weft__block_t *)];
} owner_t;

struct weft__reorder {
    weft__reorder_settings_t s;
    owner_t *owners;

    alignas(64) _Atomic(weft__block_t *) incoming;
    alignas(64) _Atomic uint64_t prefix;
    alignas(64) _Atomic uint64_t pending_bytes;

    /* The drain's own. */
    alignas(64) pending_t *heap;
    size_t n_heap, cap_heap;
    weft__reorder_totals_t totals;
};

int weft__block_note(weft__block_t *b, uint64_t index, unsigned status, bool reused,
                     const char *msg, size_t len)
{
    if (len > NOTE_MAX)
        len = NOTE_MAX;
    int e = weft__buf_reserve(&b->notes, NOTE_HEAD + len);
    if (e)
        return e;
    unsigned char *p = (unsigned char *)b->notes.data + b->notes.len;
    memcpy(p, &index, 8);
    p[8] = (unsigned char)status;
    p[9] = reused;
    p[10] = (unsigned char)(len & 0xFF);
    p[11] = (unsigned char)(len >> 8);
    if (len)
        memcpy(p + NOTE_HEAD, msg, len);
    b->notes.len += NOTE_HEAD + len;
    return 0;
}

int weft__reorder_create(weft__reorder_t **out, const weft__reorder_settings_t *s)
{
    *out = NULL;
    if (!s || s->workers < 1 || s->workers > 1024)
        return -EINVAL;
    weft__reorder_t *ro = aligned_alloc(64, sizeof *ro);
    if (!ro)
        return -ENOMEM;
    memset(ro, 0, sizeof *ro);
    ro->s = *s;
    ro->owners = aligned_alloc(64, sizeof *ro->owners * s->workers);
    if (!ro->owners) {
        free(ro);
        return -ENOMEM;
    }
    memset(ro->owners, 0, sizeof *ro->owners * s->workers);
    for (unsigned k = 0; k < s->workers; k++)
        atomic_init(&ro->owners[k].returned, NULL);
    atomic_init(&ro->incoming, NULL);
    atomic_init(&ro->prefix, 0);
    atomic_init(&ro->pending_bytes, 0);
    *out = ro;
    return 0;
}

static void block_free(weft__block_t *b)
{
    weft__buf_free(&b->bytes);
    weft__buf_free(&b->notes);
    free(b);
}

static void free_list(weft__block_t *b)
{
    while (b) {
        weft__block_t *next = b->next;
        block_free(b);
        b = next;
    }
}

void weft__reorder_destroy(weft__reorder_t **rop)
{
    weft__reorder_t *ro = *rop;
    if (!ro)
        return;
    free_list(atomic_load(&ro->incoming));
    for (size_t k = 0; k < ro->n_heap; k++)
        if (ro->heap[k].b)
            block_free(ro->heap[k].b);
    for (unsigned k = 0; k < ro->s.workers; k++) {
        free_list(atomic_load(&ro->owners[k].returned));
        free_list(ro->owners[k].free);
    }
    free(ro->heap);
    free(ro->owners);
    free(ro);
    *rop = NULL;
}

weft__block_t *weft__reorder_block_get(weft__reorder_t *ro, unsigned owner)
{
    owner_t *o = &ro->owners[owner];
    weft__block_t *b = o->free;
    if (!b) {
        /* acquire: pairs with the drain's release push; the block's last
         * use by the drain happens-before our reuse. */
        b = atomic_exchange_explicit(&o->returned, NULL, memory_order_acquire);
        if (!b) {
            b = calloc(1, sizeof *b);
            if (!b)
                return NULL;
        }
    }
    o->free = b->next;
    b->next = NULL;
    b->first = b->count = b->records = 0;
    b->owner = owner;
    b->bytes.len = b->notes.len = 0;
    memset(b->counts, 0, sizeof b->counts);
    memset(b->reused, 0, sizeof b->reused);
    return b;
}

static void give_back(weft__reorder_t *ro, weft__block_t *b)
{
    owner_t *o = &ro->owners[b->owner];
    weft__block_t *head = atomic_load_explicit(&o->returned, memory_order_relaxed);
    do
        b->next = head;
    while (!atomic_compare_exchange_weak_explicit(&o->returned, &head, b, memory_order_release,
                                                  memory_order_relaxed));
}

void weft__reorder_block_drop(weft__reorder_t *ro, weft__block_t *b)
{
    /* Called by the owner itself: straight onto its free list. */
    owner_t *o = &ro->owners[b->owner];
    b->next = o->free;
    o->free = b;
}

void weft__reorder_put(weft__reorder_t *ro, weft__block_t *b)
{
    atomic_fetch_add_explicit(&ro->pending_bytes, b->bytes.len, memory_order_relaxed);
    weft__block_t *head = atomic_load_explicit(&ro->incoming, memory_order_relaxed);
    /* seq_cst (a release): the block's contents happen-before the drain's
     * acquire exchange that takes it; seq_cst also orders it before the
     * engine's load of the drain's sleeping flag (no lost wakeup). */
    do
        b->next = head;
    while (!atomic_compare_exchange_weak_explicit(&ro->incoming, &head, b, memory_order_seq_cst,
                                                  memory_order_relaxed));
}

bool weft__reorder_idle(const weft__reorder_t *ro)
{
    /* seq_cst: the drain's re-check after it set its sleeping flag. */
    return atomic_load_explicit(&((weft__reorder_t *)ro)->incoming, memory_order_seq_cst) ==
           NULL;
}

uint64_t weft__reorder_prefix(const weft__reorder_t *ro)
{
    return atomic_load_explicit(&((weft__reorder_t *)ro)->prefix, memory_order_acquire);
}

uint64_t weft__reorder_pending_bytes(const weft__reorder_t *ro)
{
    return atomic_load_explicit(&((weft__reorder_t *)ro)->pending_bytes,
                                memory_order_relaxed);
}

/* ---- the drain's heap ------------------------------------------------------ */

static int heap_push(weft__reorder_t *ro, pending_t p)
{
    if (ro->n_heap == ro->cap_heap) {
        size_t cap = ro->cap_heap ? 2 * ro->cap_heap : 64;
        pending_t *h = realloc(ro->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        ro->heap = h;
        ro->cap_heap = cap;
    }
    size_t i = ro->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (ro->heap[up].first <= p.first)
            break;
        ro->heap[i] = ro->heap[up];
        i = up;
    }
    ro->heap[i] = p;
    return 0;
}

static pending_t heap_pop(weft__reorder_t *ro)
{
    pending_t top = ro->heap[0], last = ro->heap[--ro->n_heap];
    size_t i = 0, n = ro->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ro->heap[c + 1].first < ro->heap[c].first)
            c++;
        if (last.first <= ro->heap[c].first)
            break;
        ro->heap[i] = ro->heap[c];
        i = c;
    }
    if (n)
        ro->heap[i] = last;
    return top;
}

/* ---- sending a block --------------------------------------------------------- */

static void count_and_print(weft__reorder_t *ro, const weft__block_t *b)
{
    weft__reorder_totals_t *t = &ro->totals;
    for (int k = 0; k < WEFT__N_STATUS; k++) {
        t->counts[k] += b->counts[k];
        t->reused[k] += b->reused[k];
    }
    const unsigned char *p = (const unsigned char *)b->notes.data;
    const unsigned char *end = p + b->notes.len;
    while (p < end && (ro->s.noted || (ro->s.print && t->printed < ro->s.max_printed))) {
        uint64_t index;
        memcpy(&index, p, 8);
        size_t len = (size_t)p[10] | (size_t)p[11] << 8;
        if (ro->s.print && t->printed < ro->s.max_printed) {
            ro->s.print(ro->s.print_arg, index, p[8], p[9], (const char *)p + NOTE_HEAD, len);
            t->printed++;
        }
        if (ro->s.noted)
            ro->s.noted(ro->s.print_arg, index, p[8]);
        p += NOTE_HEAD + len;
    }
}

static void send(weft__reorder_t *ro, weft__block_t *b)
{
    if (ro->s.writer && b->records && !ro->totals.write_error)
        ro->totals.write_error =
            weft__writer_framed(ro->s.writer, b->bytes.data, b->bytes.len, b->records);
    atomic_fetch_sub_explicit(&ro->pending_bytes, b->bytes.len, memory_order_relaxed);
    count_and_print(ro, b);
}

bool weft__reorder_drain(weft__reorder_t *ro)
{
    /* acquire: pairs with the workers' release CAS in _put. */
    weft__block_t *b = atomic_exchange_explicit(&ro->incoming, NULL, memory_order_acquire);
    uint64_t prefix = atomic_load_explicit(&ro->prefix, memory_order_relaxed);
    uint64_t was = prefix;
    /* The stack is newest first: reverse it, so ties keep arrival order. */
    weft__block_t *list = NULL;
    while (b) {
        weft__block_t *next = b->next;
        b->next = list;
        list = b;
        b = next;
    }
    for (b = list; b;) {
        weft__block_t *next = b->next;
        pending_t p = {.first = b->first, .count = b->count, .b = b};
        if (!ro->s.ordered) {
            send(ro, b); /* order = any: at once; only its range waits */
            p.b = NULL;
            give_back(ro, b);
        }
        if (p.first == prefix && ro->n_heap == 0) {
            prefix += p.count; /* the common case: next in line */
            if (p.b) {
                send(ro, p.b);
                give_back(ro, p.b);
            }
        } else if (heap_push(ro, p) != 0) {
            /* Out of memory for the heap: this block is lost, and with it
             * the prefix stops here (the engine stops the run on it). */
            ro->totals.write_error = -ENOMEM;
            if (p.b) {
                atomic_fetch_sub_explicit(&ro->pending_bytes, p.b->bytes.len,
                                          memory_order_relaxed);
                count_and_print(ro, p.b);
                give_back(ro, p.b);
            }
        }
        b = next;
    }
    while (ro->n_heap && ro->heap[0].first == prefix) {
        pending_t p = heap_pop(ro);
        prefix += p.count;
        if (p.b) {
            send(ro, p.b);
            give_back(ro, p.b);
        }
    }
    if (prefix != was)
        /* release: every record below prefix went to the writer, and the
         * blocks' items are no longer needed by anyone. */
        atomic_store_explicit(&ro->prefix, prefix, memory_order_release);
    /* Room made: the prefix moved, or (order = any) records went out
     * while the prefix waits for a slow item: bytes no longer wait. */
    return prefix != was || (!ro->s.ordered && list);
}

uint64_t weft__reorder_finish(weft__reorder_t *ro)
{
    weft__reorder_drain(ro);
    uint64_t lost = 0;
    while (ro->n_heap) {
        pending_t p = heap_pop(ro);
        if (p.b) {
            lost += p.count;
            atomic_fetch_sub_explicit(&ro->pending_bytes, p.b->bytes.len, memory_order_relaxed);
            count_and_print(ro, p.b); /* they ran; only their records are lost */
            give_back(ro, p.b);
        }
    }
    return lost;
}

void weft__reorder_totals(const weft__reorder_t *ro, weft__reorder_totals_t *out)
{
    *out = ro->totals;
}
