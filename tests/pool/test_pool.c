/* SPDX-License-Identifier: MIT */
/* core/pool/pool.c: exactly-once stress, worker ids, cancel, -EBUSY, nesting,
 * one-shot, create/destroy, reuse and argument errors.  Suite "stress". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft/weft.h"
#include "pool.h"
#include "util.h" /* weft__mono_s */

/*
 * TSan makes atomics and thread switches ~10x slower on our 2 cores, ASan
 * less: sanitizer builds use a cheaper heavy item and fewer matrix passes
 * (the repetition counts stay in the hundreds), never fewer checks.
 */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define MATRIX_PASSES 3
#define REPEAT_LOOPS 1000
#define REUSE_LOOPS 3000
#define CREATE_DESTROY 300
#define HEAVY_ITERS 500u
#else
#define MATRIX_PASSES 4
#define REPEAT_LOOPS 1000
#define REUSE_LOOPS 5000
#define CREATE_DESTROY 500
#define HEAVY_ITERS 2000u
#endif

#define MAX_T 1024

/* Which items are costly: none, ~1/64 at random positions, the last 1/16,
 * or all (COST_ALL is not part of the rotation). */
enum cost { COST_FLAT, COST_RANDOM, COST_END, COST_MODES, COST_ALL = COST_MODES };

/* Shared by the loop body and the checks.  fn never calls cmocka (it runs
 * on other threads): it counts problems in `errors`; main asserts. */
struct ctx {
    _Atomic uint8_t *seen; /* per index: times fn was given it */
    size_t n;
    size_t grain; /* 0: unchecked (auto) */
    unsigned threads;
    enum cost cost;
    unsigned heavy_iters;
    _Atomic unsigned errors;
    _Atomic size_t ran;
    _Atomic uint8_t busy[MAX_T]; /* worker id in use by a thread right now */
    _Atomic uint8_t used[MAX_T]; /* worker id was given a range */
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Burns time in registers: no memory accesses for TSan to slow down. */
static void spin(unsigned iters)
{
    uint64_t x = iters;
    for (unsigned k = 0; k < iters; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(x));
    }
}

static bool heavy(const struct ctx *c, size_t i)
{
    switch (c->cost) {
    case COST_RANDOM:
        return mix(i) % 64 == 0;
    case COST_END:
        return i >= c->n - c->n / 16;
    case COST_ALL:
        return true;
    default:
        return false;
    }
}

static void body(void *arg, size_t b, size_t e, unsigned worker)
{
    struct ctx *c = arg;
    if (worker >= c->threads || worker >= MAX_T) {
        atomic_fetch_add(&c->errors, 1);
        return;
    }
    /* The id must not be in use by another thread at the same time. */
    if (atomic_exchange(&c->busy[worker], 1) != 0)
        atomic_fetch_add(&c->errors, 1);
    if (b >= e || e > c->n || (c->grain && e - b > c->grain))
        atomic_fetch_add(&c->errors, 1);
    for (size_t i = b; i < e && i < c->n; i++) {
        atomic_fetch_add_explicit(&c->seen[i], 1, memory_order_relaxed);
        if (heavy(c, i))
            spin(c->heavy_iters);
    }
    atomic_fetch_add_explicit(&c->ran, e - b, memory_order_relaxed);
    atomic_store_explicit(&c->used[worker], 1, memory_order_relaxed);
    atomic_store(&c->busy[worker], 0);
}

static struct ctx *ctx_new(size_t cap)
{
    struct ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->seen = calloc(cap ? cap : 1, sizeof *c->seen);
    assert_non_null(c->seen);
    return c;
}

static void ctx_free(struct ctx *c)
{
    free(c->seen);
    free(c);
}

static void ctx_reset(struct ctx *c, size_t n, size_t grain, unsigned threads, enum cost cost)
{
    /* Plain writes: the pool's loop start orders them before the workers. */
    memset(c->seen, 0, n ? n : 1);
    c->n = n;
    c->grain = grain;
    c->threads = threads;
    c->cost = cost;
    c->heavy_iters = HEAVY_ITERS;
    atomic_store(&c->errors, 0);
    atomic_store(&c->ran, 0);
}

/* Every index exactly once, no body error. */
static void check_once(struct ctx *c, const char *what)
{
    assert_int_equal(atomic_load(&c->errors), 0);
    for (size_t i = 0; i < c->n; i++) {
        unsigned v = atomic_load_explicit(&c->seen[i], memory_order_relaxed);
        if (v != 1)
            fail_msg("%s: n=%zu grain=%zu threads=%u cost=%d: index %zu ran %u times",
                     what, c->n, c->grain, c->threads, (int)c->cost, i, v);
    }
    assert_int_equal(atomic_load(&c->ran), c->n);
}

static weft_pool_t *make_pool(unsigned threads)
{
    weft_pool_t *p = NULL;
    weft_pool_settings_t s;
    weft_pool_default_settings(&s);
    s.threads = threads;
    assert_int_equal(weft_pool_create(&p, &s), 0);
    assert_non_null(p);
    assert_int_equal(weft_pool_threads(p), threads);
    return p;
}

/* ---- exactly once ------------------------------------------------------- */

static const size_t sizes[] = {0, 1, 2, 3, 17, 1000, 100003, 1000000};
static const size_t grains[] = {0, 1, 7, 1000};

/* threads 1..8 (up to 4x oversubscribed) x sizes x grains, the cost shape
 * rotating so that every combination meets each shape over the passes. */
static void pool_exactly_once_matrix(void **state)
{
    (void)state;
    struct ctx *c = ctx_new(1000000);
    unsigned k = 0;
    for (int pass = 0; pass < MATRIX_PASSES; pass++) {
        for (unsigned t = 1; t <= 8; t++) {
            weft_pool_t *p = make_pool(t);
            for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
                for (size_t gi = 0; gi < sizeof grains / sizeof *grains; gi++) {
                    enum cost cost = (enum cost)((k++ + (unsigned)pass) % COST_MODES);
                    ctx_reset(c, sizes[si], grains[gi], t, cost);
                    assert_int_equal(weft_pool_for(p, c->n, c->grain, body, c), 0);
                    check_once(c, "matrix");
                }
            }
            weft_pool_destroy(&p);
            assert_null(p);
        }
    }
    ctx_free(c);
}

/* Hundreds of loops on one oversubscribed pool, uneven costs. */
static void pool_exactly_once_repeated(void **state)
{
    (void)state;
    struct ctx *c = ctx_new(100003);
    weft_pool_t *p = make_pool(6);
    for (unsigned rep = 0; rep < REPEAT_LOOPS; rep++) {
        ctx_reset(c, 100003 - rep % 7, grains[rep % 4], 6,
                  (enum cost)(1 + rep % 2)); /* random / at the end */
        assert_int_equal(weft_pool_for(p, c->n, c->grain, body, c), 0);
        check_once(c, "repeated");
    }
    weft_pool_stats_t st;
    weft_pool_get_stats(p, &st);
    assert_int_equal(st.loops, REPEAT_LOOPS);
    assert_true(st.steals > 0);
    weft_pool_destroy(&p);
    ctx_free(c);
}

/* Costly items, fine grain, more threads than cores: idle workers must
 * steal, and the splits that feed them must have happened.  A loop is
 * ~20 ms of work; on a loaded VM a sleeping worker can take milliseconds to
 * wake, so loops are repeated (each one fully checked) until steals showed,
 * at most 20 times. */
static void pool_steals_happen(void **state)
{
    (void)state;
    const unsigned t = 4;
    struct ctx *c = ctx_new(2000);
    weft_pool_t *p = make_pool(t);
    weft_pool_stats_t st;
    unsigned loops = 0, workers_seen = 0;
    do {
        ctx_reset(c, 2000, 1, t, COST_ALL);
        c->heavy_iters = 4 * HEAVY_ITERS;
        for (unsigned w = 0; w < t; w++)
            atomic_store(&c->used[w], 0);
        assert_int_equal(weft_pool_for(p, c->n, 1, body, c), 0);
        check_once(c, "steals");
        loops++;
        unsigned seen = 0;
        for (unsigned w = 0; w < t; w++)
            seen += atomic_load(&c->used[w]) != 0;
        workers_seen = seen > workers_seen ? seen : workers_seen;
        weft_pool_get_stats(p, &st);
    } while (loops < 20 && (loops < 3 || st.steals == 0));
    print_message("      %u loops: steals=%llu splits=%llu sleeps=%llu, up to %u workers\n",
                  loops, (unsigned long long)st.steals, (unsigned long long)st.splits,
                  (unsigned long long)st.sleeps, workers_seen);
    assert_true(st.steals > 0);
    assert_true(st.splits >= st.steals); /* every stolen range was pushed */
    assert_true(workers_seen >= 2);
    assert_int_equal(st.loops, loops);
    weft_pool_destroy(&p);
    ctx_free(c);
}

/* ---- cancel ------------------------------------------------------------- */

struct cancel_ctx {
    struct ctx *c;
    weft_pool_t *pool;
    size_t cancel_after; /* cancel once this many indices ran */
};

static void cancel_body(void *arg, size_t b, size_t e, unsigned worker)
{
    struct cancel_ctx *cc = arg;
    body(cc->c, b, e, worker);
    if (atomic_load(&cc->c->ran) >= cc->cancel_after)
        weft_pool_cancel(cc->pool);
}

static void *cancel_later(void *arg)
{
    struct cancel_ctx *cc = arg;
    while (atomic_load(&cc->c->ran) < cc->cancel_after)
        sched_yield();
    weft_pool_cancel(cc->pool);
    return NULL;
}

static void pool_cancel(void **state)
{
    (void)state;
    const size_t n = 1000000;
    struct ctx *c = ctx_new(n);
    for (unsigned t = 1; t <= 4; t++) {
        weft_pool_t *p = make_pool(t);
        weft_pool_cancel(p); /* no loop: a no-op */

        /* From inside fn. */
        struct cancel_ctx cc = {c, p, 5000};
        ctx_reset(c, n, 100, t, COST_FLAT);
        assert_int_equal(weft_pool_for(p, n, 100, cancel_body, &cc), -ECANCELED);
        assert_int_equal(atomic_load(&c->errors), 0);
        size_t ran = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned v = atomic_load_explicit(&c->seen[i], memory_order_relaxed);
            assert_true(v <= 1);
            ran += v;
        }
        assert_int_equal(ran, atomic_load(&c->ran));
        assert_true(ran >= cc.cancel_after);
        assert_true(ran < n / 2);

        /* From another thread, while costly items run. */
        ctx_reset(c, 20000, 10, t, COST_ALL);
        cc.cancel_after = 200;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, cancel_later, &cc), 0);
        int r = weft_pool_for(p, c->n, 10, body, c);
        pthread_join(th, NULL);
        /* The canceller may come late only if the loop already finished. */
        ran = 0;
        for (size_t i = 0; i < c->n; i++) {
            unsigned v = atomic_load_explicit(&c->seen[i], memory_order_relaxed);
            assert_true(v <= 1);
            ran += v;
        }
        assert_int_equal(atomic_load(&c->errors), 0);
        if (r == 0)
            assert_int_equal(ran, c->n);
        else
            assert_int_equal(r, -ECANCELED);

        /* The flag is cleared by the next loop, which runs fully. */
        ctx_reset(c, 100003, 0, t, COST_RANDOM);
        assert_int_equal(weft_pool_for(p, c->n, 0, body, c), 0);
        check_once(c, "after cancel");
        weft_pool_destroy(&p);
    }
    ctx_free(c);
}

/* ---- -EBUSY ------------------------------------------------------------- */

struct busy_ctx {
    weft_pool_t *pool;
    _Atomic int started, go, calls;
    int result;
};

static void busy_body(void *arg, size_t b, size_t e, unsigned worker)
{
    (void)b, (void)e, (void)worker;
    struct busy_ctx *bc = arg;
    if (atomic_fetch_add(&bc->calls, 1) == 0) {
        atomic_store(&bc->started, 1);
        while (!atomic_load(&bc->go))
            sched_yield();
    }
}

static void *busy_thread(void *arg)
{
    struct busy_ctx *bc = arg;
    bc->result = weft_pool_for(bc->pool, 64, 1, busy_body, bc);
    return NULL;
}

static void pool_busy(void **state)
{
    (void)state;
    for (unsigned t = 1; t <= 3; t++) {
        struct busy_ctx bc = {.pool = make_pool(t), .result = -1};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, busy_thread, &bc), 0);
        while (!atomic_load(&bc.started))
            sched_yield();
        struct ctx *c = ctx_new(10);
        ctx_reset(c, 10, 0, t, COST_FLAT);
        assert_int_equal(weft_pool_for(bc.pool, 10, 0, body, c), -EBUSY);
        atomic_store(&bc.go, 1);
        pthread_join(th, NULL);
        assert_int_equal(bc.result, 0);
        assert_int_equal(atomic_load(&bc.calls), 64);
        /* Free again once the first caller left. */
        assert_int_equal(weft_pool_for(bc.pool, 10, 0, body, c), 0);
        check_once(c, "after busy");
        weft_pool_stats_t st;
        weft_pool_get_stats(bc.pool, &st);
        assert_int_equal(st.loops, 2); /* the refused call is not a loop */
        ctx_free(c);
        weft_pool_destroy(&bc.pool);
    }
}

/* ---- nested ------------------------------------------------------------- */

#define OUTER 2000
#define INNER 50

struct nest_ctx {
    weft_pool_t *pool;
    unsigned threads;
    _Atomic uint8_t outer[OUTER];
    _Atomic uint32_t inner_total;
    _Atomic unsigned errors;
};

struct inner_ctx {
    struct nest_ctx *nc;
    unsigned worker;
    uint8_t seen[INNER]; /* plain: the nested loop must run on this thread */
};

static void inner_body(void *arg, size_t b, size_t e, unsigned worker)
{
    struct inner_ctx *ic = arg;
    if (worker != ic->worker || e - b > 7)
        atomic_fetch_add(&ic->nc->errors, 1);
    for (size_t i = b; i < e; i++)
        ic->seen[i]++;
}

static void outer_body(void *arg, size_t b, size_t e, unsigned worker)
{
    struct nest_ctx *nc = arg;
    if (worker >= nc->threads)
        atomic_fetch_add(&nc->errors, 1);
    for (size_t i = b; i < e; i++) {
        atomic_fetch_add(&nc->outer[i], 1);
        struct inner_ctx ic = {.nc = nc, .worker = worker};
        if (weft_pool_for(nc->pool, INNER, 7, inner_body, &ic) != 0)
            atomic_fetch_add(&nc->errors, 1);
        for (size_t j = 0; j < INNER; j++)
            if (ic.seen[j] != 1)
                atomic_fetch_add(&nc->errors, 1);
        atomic_fetch_add(&nc->inner_total, INNER);
    }
}

static void pool_nested(void **state)
{
    (void)state;
    for (unsigned t = 1; t <= 4; t++) {
        struct nest_ctx *nc = calloc(1, sizeof *nc);
        assert_non_null(nc);
        nc->pool = make_pool(t);
        nc->threads = t;
        assert_int_equal(weft_pool_for(nc->pool, OUTER, 3, outer_body, nc), 0);
        assert_int_equal(atomic_load(&nc->errors), 0);
        for (size_t i = 0; i < OUTER; i++)
            assert_int_equal(atomic_load(&nc->outer[i]), 1);
        assert_int_equal(atomic_load(&nc->inner_total), OUTER * INNER);
        weft_pool_stats_t st;
        weft_pool_get_stats(nc->pool, &st);
        assert_int_equal(st.loops, 1 + OUTER); /* nested calls count too */
        weft_pool_destroy(&nc->pool);
        free(nc);
    }
}

/* ---- one-shot, lifecycle, reuse, errors ------------------------------- */

static void pool_parallel_for(void **state)
{
    (void)state;
    struct ctx *c = ctx_new(100003);
    unsigned threads[] = {0, 1, 3};
    for (size_t k = 0; k < 3; k++) {
        unsigned t = threads[k] ? threads[k] : weft_cpu_count();
        ctx_reset(c, 100003, 0, t, COST_RANDOM);
        assert_int_equal(weft_parallel_for(c->n, threads[k], body, c), 0);
        check_once(c, "parallel_for");
    }
    ctx_reset(c, 0, 0, 1, COST_FLAT);
    assert_int_equal(weft_parallel_for(0, 2, body, c), 0);
    assert_int_equal(weft_parallel_for(10, 1025, body, c), -EINVAL);
    ctx_free(c);
}

static void pool_create_destroy(void **state)
{
    (void)state;
    struct ctx *c = ctx_new(1000);
    for (unsigned k = 0; k < CREATE_DESTROY; k++) {
        unsigned t = 1 + k % 8;
        weft_pool_t *p = make_pool(t);
        if (k % 3 == 0) { /* some never run a loop */
            ctx_reset(c, 1000, 0, t, COST_FLAT);
            assert_int_equal(weft_pool_for(p, 1000, 0, body, c), 0);
            check_once(c, "create/destroy");
        }
        weft_pool_destroy(&p);
        assert_null(p);
        weft_pool_destroy(&p); /* NULL is fine */
    }
    weft_pool_destroy(NULL);

    /* Defaults: threads == 0 means every CPU. */
    weft_pool_t *p = NULL;
    assert_int_equal(weft_pool_create(&p, NULL), 0);
    assert_int_equal(weft_pool_threads(p), weft_cpu_count());
    weft_pool_destroy(&p);
    ctx_free(c);
}

static void pool_reuse(void **state)
{
    (void)state;
    struct ctx *c = ctx_new(5000);
    weft_pool_t *p = make_pool(3);
    for (unsigned k = 0; k < REUSE_LOOPS; k++) {
        size_t n = (size_t)(mix(k) % 5000);
        ctx_reset(c, n, k % 5 == 0 ? 1 : 0, 3, (enum cost)(k % COST_MODES));
        c->heavy_iters = 50;
        assert_int_equal(weft_pool_for(p, n, c->grain, body, c), 0);
        check_once(c, "reuse");
    }
    weft_pool_stats_t st;
    weft_pool_get_stats(p, &st);
    assert_int_equal(st.loops, REUSE_LOOPS);
    weft_pool_destroy(&p);
    ctx_free(c);
}

/* Every fallible step of weft_pool_create, made to fail in turn: a clean
 * negative errno, *out NULL, nothing leaked (ASan), no thread left behind
 * (the started ones must be joined, or the process would not exit clean). */
static void pool_create_failures(void **state)
{
    (void)state;
    for (unsigned t = 1; t <= 4; t++) {
        int steps = 2 + (int)(t - 1); /* two allocations, t - 1 threads */
        for (int k = 1; k <= steps; k++) {
            weft_pool_t *p = (weft_pool_t *)&p;
            weft_pool_settings_t s = {.threads = t};
            weft__pool_fail_step = k;
            int err = weft_pool_create(&p, &s);
            assert_int_equal(err, k <= 2 ? -ENOMEM : -EAGAIN);
            assert_null(p);
            assert_int_equal(weft__pool_fail_step, 0); /* the hook fired */
        }
        /* One step past the last: nothing fails. */
        weft_pool_t *p = NULL;
        weft_pool_settings_t s = {.threads = t};
        weft__pool_fail_step = steps + 1;
        assert_int_equal(weft_pool_create(&p, &s), 0);
        weft__pool_fail_step = 0;
        struct ctx *c = ctx_new(1000);
        ctx_reset(c, 1000, 0, t, COST_FLAT);
        assert_int_equal(weft_pool_for(p, 1000, 0, body, c), 0);
        check_once(c, "after failures");
        ctx_free(c);
        weft_pool_destroy(&p);
    }
}

static void pool_errors(void **state)
{
    (void)state;
    weft_pool_t *p = (weft_pool_t *)&p; /* must be reset to NULL */
    weft_pool_settings_t s;
    weft_pool_default_settings(&s);
    assert_int_equal(s.threads, 0);
    s.threads = 1025;
    assert_int_equal(weft_pool_create(&p, &s), -EINVAL);
    assert_null(p);
    s.threads = UINT_MAX;
    assert_int_equal(weft_pool_create(&p, &s), -EINVAL);
    assert_null(p);
    assert_int_equal(weft_pool_create(NULL, NULL), -EINVAL);

    s.threads = 2;
    assert_int_equal(weft_pool_create(&p, &s), 0);
    assert_int_equal(weft_pool_for(NULL, 10, 0, body, NULL), -EINVAL);
    assert_int_equal(weft_pool_for(p, 10, 0, NULL, NULL), -EINVAL);
    assert_int_equal(weft_pool_for(p, 0, 0, NULL, NULL), 0); /* nothing to call */
    weft_pool_cancel(NULL);
    weft_pool_stats_t st;
    weft_pool_get_stats(NULL, &st);
    assert_int_equal(st.loops, 0);
    assert_int_equal(weft_pool_threads(NULL), 0);
    weft_pool_destroy(&p);
}

/* ---- long items start together ------------------------------------------ */

/* Each item waits (up to 20 s) until `n` items are running at once.  If a
 * worker busy in one item kept the rest of its range to itself, fewer than
 * n could ever run together and the wait would time out. */
struct rendezvous {
    _Atomic unsigned arrived;
    unsigned n;
    _Atomic unsigned timeouts;
    _Atomic unsigned ran;
};

static void rendezvous_fn(void *arg, size_t b, size_t e, unsigned worker)
{
    struct rendezvous *rv = arg;
    (void)worker;
    for (size_t i = b; i < e; i++) {
        atomic_fetch_add(&rv->arrived, 1);
        double t0 = weft__mono_s();
        while (atomic_load(&rv->arrived) < rv->n) {
            if (weft__mono_s() - t0 > 20) {
                atomic_fetch_add(&rv->timeouts, 1);
                break;
            }
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        atomic_fetch_add(&rv->ran, 1);
    }
}

static void pool_long_items_start_together(void **state)
{
    (void)state;
    static const unsigned threads[] = {2, 4, 8, 16, 32};
    for (size_t k = 0; k < sizeof threads / sizeof *threads; k++) {
        weft_pool_t *pool;
        weft_pool_settings_t s = {.threads = threads[k]};
        assert_int_equal(weft_pool_create(&pool, &s), 0);
        for (int rep = 0; rep < 5; rep++) {
            struct rendezvous rv = {.n = threads[k]};
            assert_int_equal(weft_pool_for(pool, threads[k], 0, rendezvous_fn, &rv), 0);
            assert_int_equal(atomic_load(&rv.timeouts), 0);
            assert_int_equal(atomic_load(&rv.ran), threads[k]);
            /* A grain larger than the loop changes nothing. */
            struct rendezvous rv2 = {.n = threads[k]};
            assert_int_equal(weft_pool_for(pool, threads[k], 1000, rendezvous_fn, &rv2), 0);
            assert_int_equal(atomic_load(&rv2.timeouts), 0);
        }
        weft_pool_stats_t st;
        weft_pool_get_stats(pool, &st);
        assert_true(st.exposes > 0);
        weft_pool_destroy(&pool);
    }
}

/* ---- claim sources (weft__pool_run) ---------------------------------------- */

/* Ranges from a shared cursor, at most `span` indices ahead of the ones
 * done (like the runner's reorder buffer): WAIT when the span is full, a
 * wake when a chunk finishes.  Every index must run exactly once. */
struct claimer {
    weft_pool_t *pool;
    _Atomic size_t cursor, done;
    size_t n, span, piece;
    _Atomic uint8_t *seen;
    _Atomic unsigned errors;
    _Atomic uint64_t waits, calls_after_end;
    _Atomic bool ended;
    unsigned threads;
};

static weft__claim_status_t claimer_next(void *arg, unsigned worker, weft__range_t *out)
{
    struct claimer *c = arg;
    if (worker >= c->threads)
        atomic_fetch_add(&c->errors, 1);
    if (atomic_load(&c->ended))
        atomic_fetch_add(&c->calls_after_end, 1);
    size_t cur = atomic_load(&c->cursor);
    for (;;) {
        if (cur >= c->n) {
            atomic_store(&c->ended, true);
            return WEFT__CLAIM_END;
        }
        size_t limit = atomic_load(&c->done) + c->span;
        if (cur >= limit) {
            atomic_fetch_add(&c->waits, 1);
            return WEFT__CLAIM_WAIT;
        }
        size_t end = cur + c->piece;
        if (end > limit)
            end = limit;
        if (end > c->n)
            end = c->n;
        if (atomic_compare_exchange_weak(&c->cursor, &cur, end)) {
            *out = (weft__range_t){cur, end};
            return WEFT__CLAIM_OK;
        }
    }
}

static void claimer_fn(void *arg, size_t b, size_t e, unsigned worker)
{
    struct claimer *c = arg;
    (void)worker;
    for (size_t i = b; i < e; i++) {
        if (i >= c->n || atomic_fetch_add(&c->seen[i], 1) != 0)
            atomic_fetch_add(&c->errors, 1);
        if (i % 97 == 0) /* uneven: some items cost more */
            for (volatile unsigned k = 0; k < 3000; k++)
                ;
    }
    atomic_fetch_add(&c->done, e - b);
    weft__pool_wake(c->pool);
}

static void pool_claim_exactly_once(void **state)
{
    (void)state;
    static const unsigned threads[] = {1, 2, 3, 4, 8};
    static const size_t spans[] = {1, 7, 64, 100000};
    const size_t n = 20000;
    _Atomic uint8_t *seen = calloc(n, sizeof *seen);
    assert_non_null(seen);
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        weft_pool_t *pool;
        weft_pool_settings_t s = {.threads = threads[t]};
        assert_int_equal(weft_pool_create(&pool, &s), 0);
        for (size_t k = 0; k < sizeof spans / sizeof *spans; k++) {
            /* A tiny span is a wake per chunk: fewer items keep it quick. */
            size_t items = spans[k] < 64 ? n / 10 : n;
            for (int rep = 0; rep < 20; rep++) {
                memset((void *)seen, 0, n);
                struct claimer c = {.pool = pool, .n = items, .span = spans[k],
                                    .piece = (size_t)(rep % 5) * 37 + 1, .seen = seen,
                                    .threads = threads[t]};
                assert_int_equal(weft__pool_run(pool, 0, claimer_fn, &c,
                                                &(weft__claim_t){claimer_next, &c}),
                                 0);
                assert_int_equal(atomic_load(&c.errors), 0);
                assert_int_equal(atomic_load(&c.done), items);
                assert_int_equal(atomic_load(&c.calls_after_end) <= threads[t], 1);
                for (size_t i = 0; i < items; i++)
                    if (seen[i] != 1)
                        fail_msg("index %zu ran %u times (threads %u span %zu)", i,
                                 (unsigned)seen[i], threads[t], spans[k]);
            }
        }
        /* A claim loop and weft_pool_for alternate on one pool. */
        for (int rep = 0; rep < 50; rep++) {
            memset((void *)seen, 0, n);
            struct claimer c = {.pool = pool, .n = n / 20, .span = 5, .piece = 3, .seen = seen,
                                .threads = threads[t]};
            assert_int_equal(weft__pool_run(pool, 0, claimer_fn, &c,
                                            &(weft__claim_t){claimer_next, &c}),
                             0);
            assert_int_equal(atomic_load(&c.done), n / 20);
            struct rendezvous rv = {.n = 1};
            assert_int_equal(weft_pool_for(pool, 100, 0, rendezvous_fn, &rv), 0);
            assert_int_equal(atomic_load(&rv.ran), 100);
        }
        weft_pool_destroy(&pool);
    }
    free((void *)seen);
}

static void pool_claim_errors(void **state)
{
    (void)state;
    weft_pool_t *pool;
    weft_pool_settings_t s = {.threads = 2};
    assert_int_equal(weft_pool_create(&pool, &s), 0);
    struct claimer c = {.pool = pool};
    assert_int_equal(weft__pool_run(NULL, 0, claimer_fn, &c, &(weft__claim_t){claimer_next, &c}),
                     -EINVAL);
    assert_int_equal(weft__pool_run(pool, 0, NULL, &c, &(weft__claim_t){claimer_next, &c}),
                     -EINVAL);
    assert_int_equal(weft__pool_run(pool, 0, claimer_fn, &c, NULL), -EINVAL);
    /* An empty source ends at once. */
    c.threads = 2;
    assert_int_equal(weft__pool_run(pool, 0, claimer_fn, &c, &(weft__claim_t){claimer_next, &c}),
                     0);
    assert_int_equal(atomic_load(&c.done), 0);
    weft_pool_destroy(&pool);
}

/* Cancel from inside fn: claims stop, the loop returns -ECANCELED. */
static void cancel_fn(void *arg, size_t b, size_t e, unsigned worker)
{
    struct claimer *c = arg;
    claimer_fn(arg, b, e, worker);
    if (atomic_load(&c->done) > c->n / 3)
        weft_pool_cancel(c->pool);
}

static void pool_claim_cancel(void **state)
{
    (void)state;
    const size_t n = 100000;
    _Atomic uint8_t *seen = calloc(n, sizeof *seen);
    assert_non_null(seen);
    weft_pool_t *pool;
    weft_pool_settings_t s = {.threads = 4};
    assert_int_equal(weft_pool_create(&pool, &s), 0);
    for (int rep = 0; rep < 20; rep++) {
        memset((void *)seen, 0, n);
        struct claimer c = {.pool = pool, .n = n, .span = 1000, .piece = 50, .seen = seen,
                            .threads = 4};
        assert_int_equal(weft__pool_run(pool, 0, cancel_fn, &c,
                                        &(weft__claim_t){claimer_next, &c}),
                         -ECANCELED);
        assert_int_equal(atomic_load(&c.errors), 0);
        assert_true(atomic_load(&c.done) < n);
    }
    weft_pool_destroy(&pool);
    free((void *)seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_errors),
        cmocka_unit_test(pool_create_failures),
        cmocka_unit_test(pool_exactly_once_matrix),
        cmocka_unit_test(pool_exactly_once_repeated),
        cmocka_unit_test(pool_steals_happen),
        cmocka_unit_test(pool_cancel),
        cmocka_unit_test(pool_busy),
        cmocka_unit_test(pool_nested),
        cmocka_unit_test(pool_parallel_for),
        cmocka_unit_test(pool_create_destroy),
        cmocka_unit_test(pool_reuse),
        cmocka_unit_test(pool_long_items_start_together),
        cmocka_unit_test(pool_claim_exactly_once),
        cmocka_unit_test(pool_claim_errors),
        cmocka_unit_test(pool_claim_cancel),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
