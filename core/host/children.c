/* SPDX-License-Identifier: MIT */
#include "children.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>

/* 0 = free.  Open addressing from a hash of the pid; a removal leaves a
 * hole, so lookups probe the whole table when they must (removals are
 * per item, next to a fork and an exec: the probe is noise). */
static _Atomic pid_t slots[WEFT__CHILDREN_MAX];

static unsigned home(pid_t pid)
{
    return (unsigned)pid * 2654435761u % WEFT__CHILDREN_MAX;
}

int weft__children_add(pid_t pid)
{
    if (pid <= 0)
        return -EINVAL;
    unsigned h = home(pid);
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        pid_t free_slot = 0;
        if (atomic_compare_exchange_strong(&slots[(h + k) % WEFT__CHILDREN_MAX], &free_slot,
                                           pid))
            return 0;
    }
    return -ENOSPC;
}

void weft__children_remove(pid_t pid)
{
    if (pid <= 0)
        return;
    unsigned h = home(pid);
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        pid_t want = pid;
        if (atomic_compare_exchange_strong(&slots[(h + k) % WEFT__CHILDREN_MAX], &want, 0))
            return;
    }
}

unsigned weft__children_kill_all(void)
{
    unsigned n = 0;
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        pid_t pid = atomic_load(&slots[k]);
        if (pid > 0) {
            /* The group first: a child that is not a leader makes this
             * fail with ESRCH, harmlessly. */
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            n++;
        }
    }
    return n;
}
