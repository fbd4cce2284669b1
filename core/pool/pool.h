/* SPDX-License-Identifier: MIT */
/*
 * Internal side of the pool (core/pool/pool.c); the pool itself is public API,
 * declared in include/weft/weft.h.
 */
#ifndef WEFT_CORE_POOL_H
#define WEFT_CORE_POOL_H

#include <stddef.h>

#include "deque.h"
#include "weft/weft.h"

/*
 * A claim source: where a loop's ranges come from when the workers have
 * nothing left in their deques (the runner's item source bounded by its
 * reorder buffer; later a shard or a remote coordinator).  weft_pool_for is
 * the special case of one range [0, n) handed to the caller up front.
 *
 * next() is called concurrently by any worker with nothing else to do
 * (never while that worker holds a range).  It returns
 *   WEFT__CLAIM_OK    *out is a non-empty range, now owned by the pool;
 *   WEFT__CLAIM_WAIT  nothing now, maybe later: the source calls
 *                     weft__pool_wake() once it may have more (waiters
 *                     then retry);
 *   WEFT__CLAIM_END   nothing, ever: it must keep saying END to the few
 *                     workers already on their way into next(); no
 *                     worker starts a claim after it has seen END.
 * The loop ends when a claim said END and every claimed index has run.
 */
typedef enum weft__claim_status {
    WEFT__CLAIM_OK,
    WEFT__CLAIM_WAIT,
    WEFT__CLAIM_END,
} weft__claim_status_t;

typedef struct weft__claim {
    weft__claim_status_t (*next)(void *ctx, unsigned worker, weft__range_t *out);
    void *ctx;
} weft__claim_t;

/*
 * Runs fn over every range claim->next hands out, on every worker
 * including the caller, and returns when the source said END and all of it
 * ran.  grain caps one fn call's range (0: the pool's default).  -EBUSY
 * when a loop runs on this pool already (also from inside fn),
 * -ECANCELED after weft_pool_cancel (claimed indices not started were
 * dropped, next() is not called again).
 */
int weft__pool_run(weft_pool_t *pool, size_t grain, weft_range_fn fn, void *ctx,
                   const weft__claim_t *claim);

/* The claim source may have more: workers waiting after WAIT retry.  Any
 * thread; cheap when nobody waits (one atomic increment and one load). */
void weft__pool_wake(weft_pool_t *pool);

/*
 * Fault injection for tests; 0 (the default) disables it.  When k > 0, the
 * k-th fallible step of the next weft_pool_create call fails: steps are
 * counted from 1 in the order pool allocation, worker-array allocation,
 * then one pthread_create per worker thread.  An allocation fails with
 * -ENOMEM, a thread start with -EAGAIN, and the create unwinds as it would
 * on a real failure.  The hook then resets itself to 0.  Not thread-safe:
 * set it only while no other thread creates a pool.
 */
extern int weft__pool_fail_step;

#endif /* WEFT_CORE_POOL_H */
