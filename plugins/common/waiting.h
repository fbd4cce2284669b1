/* SPDX-License-Identifier: MIT */
/*
 * What the shipped plugins that wait on child processes (exec, worker)
 * share, header-only (a plugin links against nothing of weft's): the
 * monotonic clock, the host's cooperative stop, poll timeouts bounded by
 * both, the spawn attributes of a child, and announcing children to the
 * host.
 */
#ifndef WEFT_PLUGINS_WAITING_H
#define WEFT_PLUGINS_WAITING_H

#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include <weft/plugin.h>

/* How often a wait wakes up to ask the host whether to stop ([run]
 * timeout, halt = now): the longest an item outlives its stop. */
#define STOP_POLL_S 0.1

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline bool host_stopping(const weft_host_t *h)
{
    return WEFT_HOST_HAS(h, should_stop) && h->should_stop && h->should_stop(h);
}

/* Milliseconds for poll: until deadline (rounded up; 0: none), at most
 * STOP_POLL_S when the host can say stop; -1 for forever. */
static inline int poll_ms(const weft_host_t *h, double deadline)
{
    bool asks = WEFT_HOST_HAS(h, should_stop) && h->should_stop;
    if (deadline == 0 && !asks)
        return -1;
    double left = deadline == 0 ? STOP_POLL_S : deadline - now();
    if (asks && left > STOP_POLL_S)
        left = STOP_POLL_S;
    if (left <= 0)
        return 0;
    return left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
}

static inline bool past(double deadline)
{
    return deadline > 0 && now() >= deadline;
}

/* The host forwards a first signal to the children it knows of, and kills
 * them when weft must exit at once (plugin.h, child_started). */
static inline void track(const weft_host_t *h, pid_t pid)
{
    if (WEFT_HOST_HAS(h, child_started) && h->child_started)
        h->child_started(h, (long)pid);
}

static inline void untrack(const weft_host_t *h, pid_t pid)
{
    if (WEFT_HOST_HAS(h, child_ended) && h->child_ended)
        h->child_ended(h, (long)pid);
}

/* A child of a weft worker: its own process group (a timeout or a kill
 * takes what it started too; the host forwards a terminal's signal to it),
 * an empty signal mask (pool workers block every signal, and a mask is
 * inherited), and the default actions of SIGPIPE (a launcher may leave it
 * ignored) and of SIGINT, SIGTERM and SIGHUP (worker processes ignore
 * them, and ignoring is inherited), set on an initialized *attr.  0 or
 * the error of posix_spawnattr_set*. */
static inline int child_spawnattr(posix_spawnattr_t *attr)
{
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGHUP);
    int rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETPGROUP);
    rc = rc ? rc : posix_spawnattr_setsigmask(attr, &none);
    rc = rc ? rc : posix_spawnattr_setsigdefault(attr, &dfl);
    rc = rc ? rc : posix_spawnattr_setpgroup(attr, 0);
    return rc;
}

#endif
