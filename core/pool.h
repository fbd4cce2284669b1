/* SPDX-License-Identifier: MIT */
/*
 * Internal hooks of the pool (core/pool.c); the pool itself is public API,
 * declared in include/weft/weft.h.
 */
#ifndef WEFT_CORE_POOL_H
#define WEFT_CORE_POOL_H

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
