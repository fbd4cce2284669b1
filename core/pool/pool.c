/* SPDX-License-Identifier: MIT */
/*
 * The work-stealing pool behind weft_pool_for (include/weft/weft.h) and the
 * runner's claim-driven loops (weft__pool_run, core/pool/pool.h).
 *
 * threads - 1 persistent pthreads are workers 0 .. threads-2; the thread
 * inside a loop is worker threads-1.  Each worker owns a Chase–Lev deque of
 * index ranges (core/pool/deque.h).  An idle worker pops its own deque, steals
 * from random victims, then asks the loop's claim source (if any) for a new
 * range; failing all three it spins briefly, then sleeps on one condition
 * variable.
 *
 * Granularity adapts to the measured cost of an item.  Each worker keeps a
 * moving estimate of its item time (from the chunks it ran, one clock read
 * per chunk).  Short items run in chunks of up to `grain` indices (and
 * about CHUNK_NS of work), split lazily (Tzannes, Caragea, Barua, Vishkin,
 * "Lazy Binary Splitting", PPoPP 2010): before each chunk, a worker whose
 * deque is empty pushes the upper half of what it holds.  Long items (over
 * LONG_ITEM_NS, and the first item of a loop, whose cost is unknown) run one
 * at a time, and before each of them the worker pushes ALL the rest of its
 * range (as two halves), so that a worker busy in a long item holds nothing
 * an idle one could run: N long items on N threads start together.
 *
 * Invariants (each is also stated where it is enforced):
 *  I1 Every claimed index is, at any time, in exactly one place: the range
 *     a worker holds, a deque slot, or done (ran or dropped on cancel).
 *     `remaining` counts the claimed indices not yet done plus one token
 *     per worker inside a claim; the loop is over when `claiming` is false
 *     and `remaining` is 0, and then every deque is empty.
 *  I2 The loop descriptor (fn, ctx, grain, claim) is written by the caller
 *     before it publishes the first range (or sets `claiming`) and read by
 *     a worker only after it has obtained a range (or holds a claim token
 *     and has seen `claiming` set), so the push/steal chain or the
 *     `claiming` flag orders the accesses; the worker's decrement of
 *     `remaining` is its last access, so the next loop's writes come after
 *     every read of the previous one.  The caller ADDS to `remaining` (a
 *     late token of the previous loop may still be counted there).
 *  I3 No lost wakeup: a sleeper increments `sleepers` (seq_cst) under the
 *     mutex and then re-checks every deque and the claim generation
 *     (seq_cst) before waiting; a pusher stores bottom (seq_cst), a claim
 *     source bumps the generation (seq_cst), and then each loads `sleepers`
 *     (seq_cst), signalling under the mutex if it is non-zero.  In the
 *     single total order one of the two sees the other.  The same pairing
 *     holds between the caller asleep waiting for the end and the worker
 *     that brings `remaining` to 0.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft/weft.h"
#include "deque.h"
#include "pool.h"
#include "util.h"

#define MAX_THREADS 1024u
#define AUTO_GRAIN_MAX 2048u  /* trivial items: ~10 µs of work, claims amortised */
#define AUTO_GRAIN_PIECES 64u /* auto grain gives each thread >= this many chunks */
#define SPIN_ROUNDS 200u      /* idle steal attempts before sleeping (~tens of µs) */
#define SPIN_PAUSES 16u       /* pause instructions between two attempts */
#define LONG_ITEM_NS 20000u   /* an item this long runs alone, its range exposed:
                                 the push, pop and clock read cost < 1 % of it */
#define CHUNK_NS 200000u      /* a chunk of short items holds about this much work */
#define TAIL_NS 5000u         /* ... and at least this much (or all that is left) */
#define EST_UNKNOWN 0         /* no item timed yet in this loop: treated as long */

struct worker {
    weft__deque_t dq; /* occupies its own cache lines */

    /* Touched by the owning thread only: a pool thread, or for worker
     * threads-1 whichever thread is inside a loop (`busy` orders
     * successive callers). */
    alignas(WEFT__CACHE_LINE) struct weft_pool *pool;
    unsigned id;
    uint64_t rng;       /* xorshift64 state for victim choice */
    uint64_t est_ns;    /* moving estimate of one item's time, or EST_UNKNOWN */
    uint64_t est_loop;  /* the loop est_ns belongs to */
    uint64_t claim_gen; /* the claim generation when next() last said WAIT */
    bool claim_waiting; /* next() said WAIT: a new generation wakes us */
    pthread_t thread;

    /* Written by the owner only (load + store, no RMW), read by get_stats. */
    alignas(WEFT__CACHE_LINE) _Atomic uint64_t steals;
    _Atomic uint64_t splits;
    _Atomic uint64_t sleeps;
    _Atomic uint64_t exposes;
};

struct weft_pool {
    /* Immutable between create and destroy. */
    unsigned threads;
    struct worker *w;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* idle workers, and the caller waiting for the end */

    /* The loop descriptor (I2) and read-mostly flags, checked per chunk. */
    alignas(WEFT__CACHE_LINE) weft_range_fn fn;
    void *ctx;
    size_t grain;
    const weft__claim_t *claim;
    _Atomic uint64_t loop_id; /* the running loop's number (est_loop) */
    _Atomic bool cancel;
    _Atomic bool shutdown; /* written under mu by destroy */

    alignas(WEFT__CACHE_LINE) _Atomic size_t remaining; /* I1 */
    alignas(WEFT__CACHE_LINE) _Atomic bool claiming;    /* I1, I2: next() may be called */
    alignas(WEFT__CACHE_LINE) _Atomic uint64_t claim_gen; /* I3: bumped by weft__pool_wake */
    alignas(WEFT__CACHE_LINE) _Atomic unsigned sleepers; /* I3 */
    alignas(WEFT__CACHE_LINE) _Atomic bool busy; /* a thread is in a loop */
    _Atomic uint64_t loops;
};

int weft__pool_fail_step;

/* Fault injection (core/pool/pool.h): true if this fallible step must fail. */
static bool inject_failure(int *step)
{
    if (weft__pool_fail_step <= 0 || ++*step != weft__pool_fail_step)
        return false;
    weft__pool_fail_step = 0;
    return true;
}

/* The worker this thread is acting as, for nested-call detection. */
static _Thread_local struct worker *tls_self;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline void stat_inc(_Atomic uint64_t *c)
{
    /* Single writer: no RMW needed; relaxed because readers only sum. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline unsigned random_below(struct worker *w, unsigned n)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (unsigned)(((x >> 32) * (uint64_t)n) >> 32);
}

static size_t auto_grain(size_t n, unsigned threads)
{
    size_t g = n / ((size_t)threads * AUTO_GRAIN_PIECES);
    if (g < 1)
        g = 1;
    if (g > AUTO_GRAIN_MAX)
        g = AUTO_GRAIN_MAX;
    return g;
}

/* Next chunk of a held range of `rem` short items: at most grain and
 * about CHUNK_NS of work; a quarter of the range, so that the tail keeps
 * chunk boundaries where a split can still feed an idle thief, but never
 * less than TAIL_NS of work (the rest of a short range goes in one call:
 * splitting it finer would cost more than any imbalance it could cure). */
static inline size_t chunk_size(size_t rem, size_t grain, uint64_t est_ns)
{
    size_t most = est_ns ? CHUNK_NS / est_ns : grain;
    size_t least = est_ns ? TAIL_NS / est_ns : 1;
    if (most > grain)
        most = grain;
    if (least > most)
        least = most;
    size_t c = rem / 4;
    if (c < least)
        c = least;
    if (c > most)
        c = most;
    if (c > rem)
        c = rem;
    return c ? c : 1;
}

/* Wakes one sleeper after a push (I3). */
static void wake_one(struct weft_pool *p)
{
    /* seq_cst: after _push's seq_cst store of bottom; pairs with the
     * sleeper's seq_cst increment followed by its seq_cst deque loads. */
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) == 0)
        return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void wake_all(struct weft_pool *p)
{
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) == 0)
        return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Marks `count` indices (or claim tokens) done; wakes the caller at zero. */
static void finish(struct weft_pool *p, size_t count)
{
    /* seq_cst RMW: its release half (all RMWs form one release sequence)
     * pairs with the caller's acquire/seq_cst load of 0, so every fn effect
     * happens-before the loop returns; seq_cst orders it before the load
     * of sleepers in wake_all (I3, with a caller that went to sleep). */
    if (atomic_fetch_sub_explicit(&p->remaining, count, memory_order_seq_cst) != count)
        return;
    wake_all(p);
}

/* Pushes [b, e) as two halves (upper first, so that a thief, which takes
 * the oldest entry, gets the far half); returns how many indices went. */
static size_t expose(struct worker *w, size_t b, size_t e)
{
    size_t mid = b + (e - b) / 2, given = 0;
    if (mid < e && weft__deque_push(&w->dq, (weft__range_t){mid, e}))
        given += e - mid;
    else
        mid = e; /* full: keep it all */
    if (b < mid && given && weft__deque_push(&w->dq, (weft__range_t){b, mid}))
        given += mid - b;
    if (given) {
        stat_inc(&w->exposes);
        wake_one(w->pool);
        if (given > e - mid)
            wake_one(w->pool);
    }
    return given;
}

/* Runs a range this worker obtained; the hot path. */
static void run_range(struct worker *w, weft__range_t r)
{
    struct weft_pool *p = w->pool;
    /* I2: plain reads are safe, this range was published after the writes. */
    weft_range_fn fn = p->fn;
    void *ctx = p->ctx;
    size_t grain = p->grain;
    uint64_t loop = atomic_load_explicit(&p->loop_id, memory_order_relaxed);
    if (w->est_loop != loop) {
        w->est_loop = loop;
        w->est_ns = EST_UNKNOWN; /* another loop, another fn */
    }
    size_t b = r.begin, e = r.end;
    size_t owned = e - b; /* indices this worker must account for (I1) */
    uint64_t t0 = (uint64_t)weft__mono_ns(); /* never below 0 */

    while (b < e) {
        /* Relaxed: a hint; fn's own cancel is seen in program order. */
        if (atomic_load_explicit(&p->cancel, memory_order_relaxed))
            break; /* drop [b, e): never claimed, counted as done below */
        size_t rem = e - b, c;
        uint64_t est = w->est_ns;
        if (est == EST_UNKNOWN || est >= LONG_ITEM_NS) {
            /* Long items: run one, with everything after it up for grabs. */
            if (rem >= 2) {
                size_t given = expose(w, b + 1, e);
                owned -= given;
                e -= given;
            }
            c = 1;
        } else {
            /* Split only what is worth it: each half at least TAIL_NS of
             * work (halving a short range down to single items costs a
             * chunk, a clock read and a push per piece). */
            if (rem >= 2 && rem >= 2 * TAIL_NS / est && weft__deque_empty_hint(&w->dq)) {
                size_t mid = b + rem / 2;
                if (weft__deque_push(&w->dq, (weft__range_t){mid, e})) {
                    owned -= e - mid; /* I1: now in the deque */
                    e = mid;
                    rem = e - b;
                    stat_inc(&w->splits);
                    wake_one(p);
                }
            }
            c = chunk_size(rem, grain, est);
        }
        fn(ctx, b, b + c, w->id);
        b += c;
        uint64_t t1 = (uint64_t)weft__mono_ns();
        uint64_t per = (t1 - t0 + c / 2) / c;
        /* A quarter of the newest sample: a run of long items is noticed
         * after one of them, a run of short ones after a few. */
        w->est_ns = est == EST_UNKNOWN ? per + 1 : (3 * est + per) / 4 + 1;
        t0 = t1;
    }
    finish(p, owned); /* I2: our last access to this loop's indices */
}

/* Asks the loop's claim source for a range (I1, I2). */
static bool claim_work(struct worker *w, weft__range_t *r)
{
    struct weft_pool *p = w->pool;
    if (!atomic_load_explicit(&p->claiming, memory_order_relaxed))
        return false; /* cheap and usually right; the token below decides */
    /* The token keeps the loop from ending while we are in next(). */
    atomic_fetch_add_explicit(&p->remaining, 1, memory_order_seq_cst);
    /* acquire: pairs with the caller's release store of claiming, making
     * the descriptor it wrote before visible (I2). */
    if (!atomic_load_explicit(&p->claiming, memory_order_acquire)) {
        finish(p, 1);
        return false;
    }
    const weft__claim_t *c = p->claim;
    uint64_t gen = atomic_load_explicit(&p->claim_gen, memory_order_seq_cst);
    weft__claim_status_t st = WEFT__CLAIM_END;
    if (!atomic_load_explicit(&p->cancel, memory_order_relaxed))
        st = c->next(c->ctx, w->id, r);
    w->claim_waiting = false;
    if (st == WEFT__CLAIM_OK && r->end > r->begin) {
        /* The token becomes one of the claimed indices (I1). */
        atomic_fetch_add_explicit(&p->remaining, r->end - r->begin - 1, memory_order_relaxed);
        return true;
    }
    if (st == WEFT__CLAIM_WAIT) {
        w->claim_waiting = true;
        w->claim_gen = gen; /* a bump since this load wakes us (I3) */
    } else {
        atomic_store_explicit(&p->claiming, false, memory_order_seq_cst);
    }
    finish(p, 1);
    return false;
}

/* Own deque first (LIFO, cache-warm), then one pass over random victims,
 * then the claim source. */
static bool find_work(struct worker *w, weft__range_t *r)
{
    if (weft__deque_pop(&w->dq, r))
        return true;
    struct weft_pool *p = w->pool;
    unsigned nt = p->threads;
    for (int pass = 0; pass < 2; pass++) {
        bool aborted = false;
        unsigned v = random_below(w, nt);
        for (unsigned k = 0; k < nt; k++, v = v + 1 == nt ? 0 : v + 1) {
            if (v == w->id)
                continue;
            switch (weft__deque_steal(&p->w[v].dq, r)) {
            case WEFT__STEAL_OK:
                stat_inc(&w->steals);
                return true;
            case WEFT__STEAL_ABORT:
                aborted = true;
                break;
            case WEFT__STEAL_EMPTY:
                break;
            }
        }
        if (!aborted)
            break;
    }
    return claim_work(w, r);
}

/* The caller's loop is over (I1). */
static bool loop_over(struct weft_pool *p)
{
    /* seq_cst: pairs with finish()'s seq_cst decrement then sleepers load,
     * and orders claiming's load before remaining's (a token taken after
     * we read claiming == false sees it false too). */
    return !atomic_load_explicit(&p->claiming, memory_order_seq_cst) &&
           atomic_load_explicit(&p->remaining, memory_order_seq_cst) == 0;
}

/* Under p->mu, after the seq_cst increment of sleepers (I3). */
static bool should_wake(struct worker *w, bool caller)
{
    struct weft_pool *p = w->pool;
    if (atomic_load_explicit(&p->shutdown, memory_order_relaxed))
        return true; /* written under mu */
    if (caller && loop_over(p))
        return true;
    for (unsigned i = 0; i < p->threads; i++)
        if (weft__deque_nonempty(&p->w[i].dq))
            return true;
    /* A claim loop: a worker that has not asked yet, or was told to wait
     * before the latest bump, asks (again).  seq_cst: the load half of the
     * pair with weft__pool_wake's bump, which also starts each loop. */
    if (atomic_load_explicit(&p->claiming, memory_order_seq_cst) &&
        (!w->claim_waiting ||
         atomic_load_explicit(&p->claim_gen, memory_order_seq_cst) != w->claim_gen))
        return true;
    return false;
}

static void sleep_until_woken(struct worker *w, bool caller)
{
    struct weft_pool *p = w->pool;
    bool slept = false;
    pthread_mutex_lock(&p->mu);
    /* I3: the seq_cst increment precedes the seq_cst re-check in
     * should_wake; a pusher or finisher that misses our re-check sees
     * sleepers > 0 and signals under mu, which we hold until we wait. */
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
    while (!should_wake(w, caller)) {
        slept = true;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    /* Relaxed: a late decrement only costs a pusher a useless signal. */
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
    pthread_mutex_unlock(&p->mu);
    if (slept)
        stat_inc(&w->sleeps);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct weft_pool *p = w->pool;
    unsigned spins = 0;
    tls_self = w;
    for (;;) {
        weft__range_t r;
        if (find_work(w, &r)) {
            run_range(w, r);
            spins = 0;
            continue;
        }
        /* Relaxed: destroy joins us, which orders everything else. */
        if (atomic_load_explicit(&p->shutdown, memory_order_relaxed))
            break;
        if (spins++ < SPIN_ROUNDS) {
            for (unsigned i = 0; i < SPIN_PAUSES; i++)
                cpu_relax();
            continue;
        }
        spins = 0;
        sleep_until_woken(w, false);
    }
    return NULL;
}

WEFT_API void weft_pool_default_settings(weft_pool_settings_t *s)
{
    if (s)
        *s = (weft_pool_settings_t){.threads = 0};
}

/* Both pool structs contain cache-line-aligned members; their sizes are
 * multiples of the line, as aligned_alloc requires. */
static void *alloc_lines(int *step, size_t size)
{
    return inject_failure(step) ? NULL : aligned_alloc(WEFT__CACHE_LINE, size);
}

static int start_worker(int *step, struct worker *w)
{
    return inject_failure(step) ? EAGAIN : pthread_create(&w->thread, NULL, worker_main, w);
}

/* Asks the workers to exit and joins the first `started` of them. */
static void stop_workers(struct weft_pool *p, unsigned started)
{
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->shutdown, true, memory_order_relaxed);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(p->w[i].thread, NULL);
}
WEFT_API int weft_pool_create(weft_pool_t **out, const weft_pool_settings_t *s)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    weft_pool_settings_t def;
    if (!s) {
        weft_pool_default_settings(&def);
        s = &def;
    }
    if (s->threads > MAX_THREADS)
        return -EINVAL;
    unsigned threads = s->threads ? s->threads : weft_cpu_count();
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;

    int err = -ENOMEM, step = 0;
    struct weft_pool *p = alloc_lines(&step, sizeof *p);
    if (!p)
        goto fail_pool;
    memset(p, 0, sizeof *p);
    p->threads = threads;
    p->w = alloc_lines(&step, threads * sizeof *p->w);
    if (!p->w)
        goto fail_workers;
    memset(p->w, 0, threads * sizeof *p->w);
    atomic_init(&p->cancel, false);
    atomic_init(&p->shutdown, false);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->busy, false);
    atomic_init(&p->loops, 0);
    atomic_init(&p->loop_id, 0);
    atomic_init(&p->claiming, false);
    atomic_init(&p->claim_gen, 0);
    for (unsigned i = 0; i < threads; i++) {
        struct worker *w = &p->w[i];
        weft__deque_init(&w->dq);
        w->pool = p;
        w->id = i;
        /* splitmix64 of the id: distinct, non-zero xorshift seeds. */
        uint64_t z = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15u;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        w->rng = (z ^ (z >> 31)) | 1;
        atomic_init(&w->steals, 0);
        atomic_init(&w->splits, 0);
        atomic_init(&w->sleeps, 0);
        atomic_init(&w->exposes, 0);
    }
    if ((err = -pthread_mutex_init(&p->mu, NULL)))
        goto fail_mutex;
    if ((err = -pthread_cond_init(&p->cv, NULL)))
        goto fail_cond;

    /* Workers block the signals sent to the process, so they go to the
     * application's threads; not those a fault raises in the faulting
     * thread itself (a blocked SIGSEGV kills the process without running
     * the application's handler, which wants to say what crashed). */
    sigset_t all, old;
    sigfillset(&all);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t k = 0; k < sizeof faults / sizeof *faults; k++)
        sigdelset(&all, faults[k]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    unsigned started = 0;
    for (; started + 1 < threads; started++) {
        int e = start_worker(&step, &p->w[started]);
        if (e) {
            err = -e;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started + 1 < threads)
        goto fail_threads;

    *out = p;
    return 0;

fail_threads:
    stop_workers(p, started);
    pthread_cond_destroy(&p->cv);
fail_cond:
    pthread_mutex_destroy(&p->mu);
fail_mutex:
    free(p->w);
fail_workers:
    free(p);
fail_pool:
    return err;
}

WEFT_API void weft_pool_destroy(weft_pool_t **pool)
{
    if (!pool || !*pool)
        return;
    struct weft_pool *p = *pool;
    stop_workers(p, p->threads - 1);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->w);
    free(p);
    *pool = NULL;
}

WEFT_API unsigned weft_pool_threads(const weft_pool_t *pool)
{
    return pool ? pool->threads : 0;
}

/* Serial [0, n) in chunks of at most grain on worker `id`. */
static bool run_serial(struct weft_pool *p, size_t n, size_t grain, weft_range_fn fn,
                       void *ctx, unsigned id, bool cancellable)
{
    for (size_t b = 0; b < n;) {
        if (cancellable && atomic_load_explicit(&p->cancel, memory_order_relaxed))
            return false;
        size_t c = n - b < grain ? n - b : grain;
        fn(ctx, b, b + c, id);
        b += c;
    }
    return true;
}

/* Takes the pool for one loop; false if another loop runs. */
static bool loop_enter(struct weft_pool *p)
{
    bool idle = false;
    /* acquire pairs with the release clearing `busy` at the end of the
     * previous loop: its writes to the caller worker's state (rng, stats,
     * deque) happen-before ours. */
    if (!atomic_compare_exchange_strong_explicit(&p->busy, &idle, true, memory_order_acquire,
                                                 memory_order_relaxed))
        return false;
    atomic_store_explicit(&p->cancel, false, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->loops, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->loop_id, 1, memory_order_relaxed);
    return true;
}

static int loop_leave(struct weft_pool *p)
{
    bool cancelled = atomic_load_explicit(&p->cancel, memory_order_relaxed);
    /* release: pairs with the acquire CAS of the next caller. */
    atomic_store_explicit(&p->busy, false, memory_order_release);
    return cancelled ? -ECANCELED : 0;
}

/* The caller works like any worker until the loop is over. */
static void caller_work(struct worker *me)
{
    struct weft_pool *p = me->pool;
    unsigned spins = 0;
    /* acquire (inside loop_over's seq_cst loads): pairs with the releasing
     * fetch_sub in finish() that made it 0, so all fn side effects are
     * visible when we return. */
    while (!loop_over(p)) {
        weft__range_t r;
        if (find_work(me, &r)) {
            run_range(me, r);
            spins = 0;
        } else if (spins++ < SPIN_ROUNDS) {
            for (unsigned i = 0; i < SPIN_PAUSES; i++)
                cpu_relax();
        } else {
            spins = 0;
            sleep_until_woken(me, true);
        }
    }
}

WEFT_API int weft_pool_for(weft_pool_t *pool, size_t n, size_t grain, weft_range_fn fn,
                           void *ctx)
{
    struct weft_pool *p = pool;
    if (!p || (!fn && n))
        return -EINVAL;
    if (!grain)
        grain = auto_grain(n, p->threads);

    struct worker *self = tls_self;
    if (self && self->pool == p) {
        /* Nested call from fn: the pool is ours already; run inline. */
        atomic_fetch_add_explicit(&p->loops, 1, memory_order_relaxed);
        run_serial(p, n, grain, fn, ctx, self->id, false);
        return 0;
    }
    if (!loop_enter(p))
        return -EBUSY;

    struct worker *me = &p->w[p->threads - 1];
    tls_self = me;
    if (p->threads == 1 || n == 0) {
        /* Nothing to share: skip the deque (and waking anyone).  Note that
         * n <= grain is not such a case: grain caps a call's range, and a
         * few costly items still deserve to be spread. */
        run_serial(p, n, grain, fn, ctx, me->id, true);
    } else {
        /* I2: written before run_range's first push publishes a range. */
        p->fn = fn;
        p->ctx = ctx;
        p->grain = grain;
        p->claim = NULL;
        /* I2: add, a late claim token of an earlier loop may be counted. */
        atomic_fetch_add_explicit(&p->remaining, n, memory_order_relaxed);
        run_range(me, (weft__range_t){0, n});
        caller_work(me);
    }
    tls_self = self;
    return loop_leave(p);
}

int weft__pool_run(weft_pool_t *pool, size_t grain, weft_range_fn fn, void *ctx,
                   const weft__claim_t *claim)
{
    struct weft_pool *p = pool;
    if (!p || !fn || !claim || !claim->next)
        return -EINVAL;
    struct worker *self = tls_self;
    if ((self && self->pool == p) || !loop_enter(p))
        return -EBUSY;
    struct worker *me = &p->w[p->threads - 1];
    tls_self = me;
    p->fn = fn;
    p->ctx = ctx;
    p->grain = grain ? grain : AUTO_GRAIN_MAX;
    p->claim = claim;
    /* release: publishes the descriptor to workers that take a claim
     * token and then see the flag (I2); seq_cst for loop_over's order. */
    atomic_store_explicit(&p->claiming, true, memory_order_seq_cst);
    weft__pool_wake(p); /* a new generation: sleepers ask for claims */
    caller_work(me);
    tls_self = self;
    return loop_leave(p);
}

void weft__pool_wake(weft_pool_t *pool)
{
    /* seq_cst: the store half of the pair with should_wake's load (I3). */
    atomic_fetch_add_explicit(&pool->claim_gen, 1, memory_order_seq_cst);
    wake_all(pool);
}

WEFT_API void weft_pool_cancel(weft_pool_t *pool)
{
    /* Relaxed: the flag carries no data; workers poll it before each chunk
     * and claim.  Checking busy keeps a cancel with no loop from lingering
     * (the next loop clears it anyway). */
    if (pool && atomic_load_explicit(&pool->busy, memory_order_relaxed)) {
        atomic_store_explicit(&pool->cancel, true, memory_order_relaxed);
        weft__pool_wake(pool); /* claim waiters see it and end the claims */
    }
}

WEFT_API void weft_pool_get_stats(const weft_pool_t *pool, weft_pool_stats_t *out)
{
    if (!out)
        return;
    *out = (weft_pool_stats_t){0};
    if (!pool)
        return;
    out->loops = atomic_load_explicit(&pool->loops, memory_order_relaxed);
    for (unsigned i = 0; i < pool->threads; i++) {
        const struct worker *w = &pool->w[i];
        out->steals += atomic_load_explicit(&w->steals, memory_order_relaxed);
        out->splits += atomic_load_explicit(&w->splits, memory_order_relaxed);
        out->sleeps += atomic_load_explicit(&w->sleeps, memory_order_relaxed);
        out->exposes += atomic_load_explicit(&w->exposes, memory_order_relaxed);
    }
}

WEFT_API int weft_parallel_for(size_t n, unsigned threads, weft_range_fn fn, void *ctx)
{
    weft_pool_t *pool;
    weft_pool_settings_t s;
    weft_pool_default_settings(&s);
    s.threads = threads;
    int err = weft_pool_create(&pool, &s);
    if (err)
        return err;
    err = weft_pool_for(pool, n, 0, fn, ctx);
    weft_pool_destroy(&pool);
    return err;
}
