/* SPDX-License-Identifier: MIT */
#include "children.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* A slot: 0 = free, else owner << 32 | MARKED? | pid.  One word, so that a
 * signal handler reads an entry whole and a mark is one CAS. */
#define PID_MASK UINT64_C(0x7fffffff)
#define MARKED UINT64_C(0x80000000)

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the table's slots must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the forwarded signal must be lock-free");

struct table {
    _Atomic int forwarded; /* the first signal forwarded, or 0 */
    char pad[60];          /* the slots on other cache lines   */
    /* Open addressing from a hash of the pid; a removal leaves a hole, so
     * lookups probe the whole table when they must (removals are per
     * item, next to a fork and an exec: the probe is noise). */
    _Atomic uint64_t slots[WEFT__CHILDREN_MAX];
};

static struct table private_table;
/* Switched once, by weft__children_share, before any worker is forked. */
static struct table *_Atomic table = &private_table;

static struct table *tab(void)
{
    return atomic_load_explicit(&table, memory_order_acquire);
}

static unsigned home(pid_t pid)
{
    return (unsigned)pid * 2654435761u % WEFT__CHILDREN_MAX;
}

static pid_t pid_of(uint64_t v)
{
    return (pid_t)(v & PID_MASK);
}

static pid_t owner_of(uint64_t v)
{
    return (pid_t)(v >> 32);
}

int weft__children_add(pid_t pid)
{
    if (pid <= 0)
        return -EINVAL;
    struct table *t = tab();
    uint64_t entry = (uint64_t)(uint32_t)getpid() << 32 | (uint64_t)(uint32_t)pid;
    unsigned h = home(pid);
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        uint64_t free_slot = 0;
        if (atomic_compare_exchange_strong(&t->slots[(h + k) % WEFT__CHILDREN_MAX],
                                           &free_slot, entry))
            return 0;
    }
    return -ENOSPC;
}

bool weft__children_remove(pid_t pid)
{
    if (pid <= 0)
        return false;
    struct table *t = tab();
    unsigned h = home(pid);
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        _Atomic uint64_t *slot = &t->slots[(h + k) % WEFT__CHILDREN_MAX];
        uint64_t v = atomic_load(slot);
        /* A failed CAS reloads v: the entry was marked meanwhile. */
        while (v && pid_of(v) == pid)
            if (atomic_compare_exchange_strong(slot, &v, 0))
                return (v & MARKED) != 0;
    }
    return false;
}

/* The child and the group it leads (a child that leads none makes the
 * first kill fail with ESRCH, harmlessly). */
static void kill_hard(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

unsigned weft__children_kill_all(void)
{
    struct table *t = tab();
    unsigned n = 0;
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        uint64_t v = atomic_load(&t->slots[k]);
        if (v) {
            kill_hard(pid_of(v));
            n++;
        }
    }
    return n;
}

unsigned weft__children_kill_owned(pid_t owner)
{
    if (owner <= 0)
        return 0;
    struct table *t = tab();
    unsigned n = 0;
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        uint64_t v = atomic_load(&t->slots[k]);
        while (v && owner_of(v) == owner) {
            kill_hard(pid_of(v));
            if (atomic_compare_exchange_strong(&t->slots[k], &v, 0)) {
                n++;
                break;
            }
        }
    }
    return n;
}

unsigned weft__children_forward(int sig)
{
    struct table *t = tab();
    int none = 0;
    atomic_compare_exchange_strong(&t->forwarded, &none, sig);
    unsigned n = 0;
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++) {
        uint64_t v = atomic_load(&t->slots[k]);
        /* Marked first, signalled after: the item that reaps the child
         * then always sees the mark (its owner removes the entry only
         * after the child ended). */
        while (v && !(v & MARKED)) {
            if (atomic_compare_exchange_strong(&t->slots[k], &v, v | MARKED)) {
                pid_t pid = pid_of(v);
                if (kill(-pid, sig) != 0)
                    kill(pid, sig);
                n++;
                break;
            }
        }
    }
    return n;
}

int weft__children_forwarded(void)
{
    return atomic_load_explicit(&tab()->forwarded, memory_order_relaxed);
}

void weft__children_forward_reset(void)
{
    atomic_store(&tab()->forwarded, 0);
}

int weft__children_share(void)
{
    struct table *cur = tab();
    if (cur != &private_table)
        return 0;
    void *p = mmap(NULL, sizeof(struct table), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    struct table *shared = p; /* zeroed by mmap */
    atomic_store(&shared->forwarded, atomic_load(&cur->forwarded));
    for (unsigned k = 0; k < WEFT__CHILDREN_MAX; k++)
        atomic_store(&shared->slots[k], atomic_load(&cur->slots[k]));
    /* Never unmapped: a signal handler may be reading it at any time. */
    atomic_store_explicit(&table, shared, memory_order_release);
    return 0;
}
