/* SPDX-License-Identifier: MIT */
/*
 * libweft: run a function over [0, n) on a work-stealing thread pool — the C
 * analogue of Python's Pool.map — and the version and error helpers.
 *
 * Conventions: functions return 0 or a negative errno; weft_strerror() names
 * it.  Destructors take T ** and set the pointer to NULL.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually loaded. */
WEFT_API const char *weft_version(void);

/* A message for a negative errno value (or 0); never NULL, thread-safe. */
WEFT_API const char *weft_strerror(int err);

/* CPUs this process may run on (sched_getaffinity), at least 1. */
WEFT_API unsigned weft_cpu_count(void);

/* ---- the pool ---------------------------------------------------------- */

typedef struct weft_pool weft_pool_t;

typedef struct weft_pool_settings {
    /* Threads including the caller's; 0 = weft_cpu_count().  Default 0. */
    unsigned threads;
} weft_pool_settings_t;

WEFT_API void weft_pool_default_settings(weft_pool_settings_t *s);

/* Starts threads - 1 worker threads (the caller is the last worker).
 * s may be NULL for the defaults.  -EINVAL for threads > 1024. */
WEFT_API int weft_pool_create(weft_pool_t **out, const weft_pool_settings_t *s);

/* Joins the workers and frees the pool; *pool becomes NULL.  Must not be
 * called while weft_pool_for runs. */
WEFT_API void weft_pool_destroy(weft_pool_t **pool);

WEFT_API unsigned weft_pool_threads(const weft_pool_t *pool);

/*
 * Body of a parallel loop: handles the indices [begin, end).  `worker` is
 * in [0, threads) and unique among the threads running at one time, so it
 * can index per-worker state.  Called concurrently from every worker.
 */
typedef void (*weft_range_fn)(void *ctx, size_t begin, size_t end, unsigned worker);

/*
 * Calls fn over [0, n), every index exactly once, and returns when all have
 * run.  The calling thread takes part.  Ranges are split lazily (an idle
 * worker steals half of a busy one's range), so scheduling costs are paid
 * only when load is actually unbalanced.  Each worker times what it runs:
 * once items take more than ~20 µs (and for its first item of a loop) it
 * calls fn for one index at a time and leaves the rest of its range to be
 * stolen meanwhile, so N long items on N threads all start at once.
 * `grain` is the largest range one call of fn receives; 0 picks one from n
 * and the thread count.
 *
 * One loop at a time per pool: -EBUSY if another thread is inside
 * weft_pool_for on this pool.  Called from inside fn, it runs the nested
 * loop serially on the calling worker (returns 0).  Returns -ECANCELED if
 * weft_pool_cancel() stopped the loop: indices not yet claimed never ran.
 */
WEFT_API int weft_pool_for(weft_pool_t *pool, size_t n, size_t grain,
                           weft_range_fn fn, void *ctx);

/* Asks the running loop to stop claiming new ranges; ranges already
 * handed to fn finish.  Callable from fn or any thread; a no-op when no
 * loop runs.  The flag is cleared when the next loop starts. */
WEFT_API void weft_pool_cancel(weft_pool_t *pool);

/* Scheduling counters since the pool was created (for tests and benches). */
typedef struct weft_pool_stats {
    uint64_t loops;  /* weft_pool_for calls                               */
    uint64_t steals; /* successful steals                                 */
    uint64_t splits; /* ranges split to feed an idle worker               */
    uint64_t sleeps; /* times a worker went to sleep                      */
    uint64_t exposes; /* long items: the rest of a range pushed before one */
} weft_pool_stats_t;

WEFT_API void weft_pool_get_stats(const weft_pool_t *pool, weft_pool_stats_t *out);

/* One-shot helper: a pool of `threads` (0 = all CPUs), one loop, gone. */
WEFT_API int weft_parallel_for(size_t n, unsigned threads, weft_range_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_WEFT_H */
