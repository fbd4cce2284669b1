/* SPDX-License-Identifier: MIT */
/*
 * The child processes plugins have started and not yet reaped (announced
 * through the host table's child_started / child_ended), each with the
 * process that announced it (its owner: weft itself in thread mode, a
 * worker process with isolate = process).
 *
 * What weft does with them:
 *   - the first SIGINT/SIGTERM/SIGHUP is forwarded to each one's process
 *     group (weft__children_forward), as a terminal would have delivered it
 *     had the command run in the foreground; the entry is marked, so that
 *     the item whose child it was can be recorded as not run (its child
 *     ended because weft was stopped, not because the item is bad);
 *   - when weft must exit at once (a second signal, a crash in thread
 *     mode) it SIGKILLs them all and their groups (weft__children_kill_all);
 *   - when a worker process dies or is killed (crash, timeout, halt = now)
 *     the supervisor SIGKILLs what that worker announced
 *     (weft__children_kill_owned), so nothing it started runs on under
 *     PID 1.
 *
 * A fixed table of atomic 64-bit slots, lock-free and usable from a signal
 * handler.  It starts process-private; weft__children_share moves it into
 * a shared anonymous mapping, so that worker processes forked afterwards
 * announce into the table the supervisor sees.
 */
#ifndef WEFT_CORE_CHILDREN_H
#define WEFT_CORE_CHILDREN_H

#include <stdbool.h>
#include <sys/types.h>

#define WEFT__CHILDREN_MAX 4096

/* Tracks pid, owned by the calling process.  0; -EINVAL for pid <= 0;
 * -ENOSPC when WEFT__CHILDREN_MAX are tracked. */
int weft__children_add(pid_t pid);
/* Forgets pid (no-op when it is not tracked).  True when it had been sent
 * the forwarded signal (weft__children_forward) while tracked. */
bool weft__children_remove(pid_t pid);

/* SIGKILLs every tracked child and its process group (when it leads one);
 * returns how many were tracked.  Async-signal-safe. */
unsigned weft__children_kill_all(void);
/* SIGKILLs the children `owner` announced, and their groups, and forgets
 * them (their owner will never say they ended); returns how many.  Call it
 * once owner is dead and before it is reaped, so that no other process can
 * have its number.  Async-signal-safe. */
unsigned weft__children_kill_owned(pid_t owner);

/* Sends sig to each tracked child's process group (to the child alone if
 * it leads none: one signal each, never two), marks it, and records sig as
 * the forwarded signal (the first one only); children already marked are
 * not signalled again.  Returns how many were signalled.
 * Async-signal-safe. */
unsigned weft__children_forward(int sig);
/* The signal weft__children_forward recorded, or 0 (visible to every
 * process sharing the table). */
int weft__children_forwarded(void);
/* Forgets the forwarded signal (a new run). */
void weft__children_forward_reset(void);

/* Moves the table into memory shared with the processes forked from now
 * on (once; later calls do nothing).  0, or -errno of mmap (the table then
 * stays private).  Call it while no other thread announces children. */
int weft__children_share(void);

#endif
