/* SPDX-License-Identifier: MIT */
/*
 * The child processes plugins have started and not yet reaped (announced
 * through the host table's child_started / child_ended).  When weft must
 * exit at once — a second SIGINT/SIGTERM, a crash in thread mode — it kills
 * them and their process groups first, so that nothing it started outlives
 * it.  (A normal exit and the first signal wait for the items, and so for
 * their children.)
 *
 * A fixed table of atomic slots, process-wide: lock-free and usable from a
 * signal handler.
 */
#ifndef WEFT_CORE_CHILDREN_H
#define WEFT_CORE_CHILDREN_H

#include <sys/types.h>

#define WEFT__CHILDREN_MAX 4096

/* 0; -EINVAL for pid <= 0; -ENOSPC when WEFT__CHILDREN_MAX are tracked. */
int weft__children_add(pid_t pid);
/* Forgets pid (no-op when it is not tracked). */
void weft__children_remove(pid_t pid);
/* SIGKILLs every tracked child and its process group (when it leads one);
 * returns how many were tracked.  Async-signal-safe. */
unsigned weft__children_kill_all(void);

#endif
