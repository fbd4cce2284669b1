/* SPDX-License-Identifier: MIT */
/*
 * Crash isolation (`isolate = process`): items run in persistent forked
 * worker processes, so an item that segfaults, aborts, exits or hangs costs
 * only that item.  This is a generic supervisor: it knows nothing about
 * plugins; the runner gives it child-side callbacks and a feed (where
 * items come from, where their outcomes go).
 *
 * Model.  weft__iso_start forks `workers` processes.  Each child resets its
 * signal handlers to the default (the parent's must not run there; a fault
 * kills the worker with its signal, so a sanitizer's handler does not report
 * either; SIGINT, SIGTERM and SIGHUP are ignored: the supervisor decides
 * when to stop; ignored signals stay ignored), asks for SIGKILL when the
 * forking thread dies (PR_SET_PDEATHSIG, then re-checks getppid() for the
 * race), closes every other worker's socket, calls child_init once, then
 * serves requests until it reads EOF, when it calls child_fini and
 * _exit(0)s.  Stdio is inherited: a crashing worker's last words reach
 * weft's stderr.  Workers stay in the supervisor's process group, so the
 * terminal's job control (Ctrl-Z stops them with weft) and its signals
 * reach them as they reach weft.
 *
 * Deaths and orphans.  The supervisor polls a pidfd per worker beside its
 * socket: a worker's death is seen when it happens, also when a process it
 * forked holds the socket open (EOF would wait for that one).  The table
 * of announced children (core/host/children.h) is shared with the workers
 * (weft__children_share at start); whenever a worker ends — a crash, a
 * timeout, stop now, destroy — the children it announced and had not
 * reaped are SIGKILLed with their process groups (weft__children_kill_owned)
 * before it is reaped, so they do not run on under PID 1.
 *
 * Transport: one AF_UNIX stream socketpair per worker (SOCK_CLOEXEC; the
 * supervisor sends with MSG_NOSIGNAL, so a dead worker never SIGPIPEs weft)
 * carries requests, each a batch of items (consecutive empty items as one
 * range), and the worker's short notices; replies go into a shared-memory
 * ring per worker (one memcpy each, no syscall; a run of empty ok replies
 * is one record), which outlives a crashed worker: every item it finished
 * is delivered, and the first one it did not answer is the culprit.  The
 * next batch is sent once a worker holds less than a batch, so it never
 * waits for the supervisor between batches.  The supervisor never blocks
 * (non-blocking sends and reads under poll); a worker whose ring is full
 * tells it and sleeps until it consumes.  Batch size adapts: it starts at
 * 1 and at most doubles per batch towards ~1 ms of work (as timed by the
 * workers), capped at 4096 and at a fair share of what is claimed.
 *
 * Threads.  Every supervisor function (all but weft__iso_kill_all and
 * weft__iso_stop) must be called from the one thread that called
 * weft__iso_start (PR_SET_PDEATHSIG is tied to the forking *thread*), while
 * no other thread exists in the process: it forks.  The supervisor never
 * calls plugin code.  The process must not set SIGCHLD to SIG_IGN (workers
 * are reaped with waitpid).
 */
#ifndef WEFT_CORE_ISOLATE_H
#define WEFT_CORE_ISOLATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct weft__iso weft__iso_t;

enum weft__iso_outcome_kind {
    WEFT__ISO_OK,        /* child_item replied with status 0              */
    WEFT__ISO_FAILED,    /* it replied with a failure, or the supervisor
                            could not run it (message says why)          */
    WEFT__ISO_CRASHED,   /* the worker died (signal or exit) during it    */
    WEFT__ISO_TIMED_OUT, /* it ran `timeout` seconds; the worker was killed */
    WEFT__ISO_NOT_RUN,   /* stopped before it ran (or killed by stop now) */
};

/* Passed to on_result; every pointer is valid during the callback only. */
typedef struct weft__iso_outcome {
    enum weft__iso_outcome_kind kind;
    int signal;      /* CRASHED by a signal: its number, else 0          */
    int exit_status; /* CRASHED by exit: the status, else -1             */
    int code;        /* FAILED by the child: its reply_fail code, else 0 */
    uint32_t records;
    const void *bytes; /* OK / FAILED: the reply bytes (may be NULL, len 0) */
    size_t len;
    const char *msg; /* failure text ("killed by signal 11 (...)",
                        "exited with status 3", ...), or ""; not NUL-
                        terminated when it came from the child: use msg_len */
    size_t msg_len;
    /* When the child ran it (settings.timed and weft__iso_reply_time):
     * attempts > 0, and CLOCK_MONOTONIC ns at its start and end (one clock
     * for every process of the machine); else attempts is 0. */
    unsigned attempts;
    int64_t t0_ns, t1_ns;
} weft__iso_outcome_t;

/*
 * Child side: child_item fills its reply through these.  A reply left
 * untouched is OK with 0 records and no bytes.  Each call replaces what an
 * earlier call set.  The bytes are copied.  0, -ENOMEM, or -EOVERFLOW
 * (more than 4 GiB - 1).
 */
typedef struct weft__iso_reply weft__iso_reply_t;
int weft__iso_reply_ok(weft__iso_reply_t *r, uint32_t records, const void *bytes, size_t len);
/* FAILED with message msg; bytes are dropped.  `code` (nonzero; 0 is
 * taken as 1) reaches the supervisor as the outcome's code: the caller's
 * own kind of failure. */
int weft__iso_reply_fail(weft__iso_reply_t *r, int code, const char *msg, size_t msg_len);
/* The item's timing (settings.timed): process_one ran `attempts` times,
 * from t0_ns to t1_ns (CLOCK_MONOTONIC).  Call it after _ok or _fail
 * (they reset it). */
void weft__iso_reply_time(weft__iso_reply_t *r, unsigned attempts, int64_t t0_ns,
                          int64_t t1_ns);

typedef struct weft__iso_settings {
    unsigned workers;       /* processes, 1..1024; 0 is an error       */
    double timeout;         /* seconds per item, 0 = none              */
    _Atomic int *stop_flag; /* may be NULL; read at every wakeup (at most
                               every 50 ms): 1 = stop soon, 2 = now, as
                               weft__iso_stop; latched (clearing it does
                               not restart).  A signal handler may store
                               to it.                                  */
    void *arg;              /* passed to the child callbacks            */
    bool timed;             /* every reply carries its timing (a run of
                               empty ok replies is not merged into one
                               record then)                            */
    /* In the child, once, before any item: nonzero = failure with a
     * NUL-terminated message in msg (the worker then exits with status
     * WEFT__ISO_EXIT_INIT and the supervisor reports the message). */
    int (*child_init)(void *arg, unsigned worker, char *msg, size_t msg_size);
    /* In the child, per item (item NULL and len 0 for an empty item). */
    void (*child_item)(void *arg, unsigned worker, uint64_t index, const void *item,
                       size_t item_len, weft__iso_reply_t *reply);
    /* In the child, at orderly shutdown (EOF on its socket).  May be NULL,
     * as may child_init. */
    void (*child_fini)(void *arg, unsigned worker);
    /* In the supervisor, after each wakeup of weft__iso_run (at least every
     * 50 ms while it waits): the runner's chance to write out what is
     * done.  May be NULL.  Must not call weft__iso_ functions but _stop. */
    void (*tick)(void *arg);
} weft__iso_settings_t;

/* Exit statuses a worker uses for its own reasons. */
#define WEFT__ISO_EXIT_INIT 120  /* child_init failed                     */
#define WEFT__ISO_EXIT_PROTO 121 /* bad request, or out of memory          */

/*
 * Forks the workers and waits until each has run child_init.  Returns 0
 * and *iso, or a negative errno with a message in err: -EINVAL (settings),
 * -ECHILD (a worker's child_init failed, with its message, or the worker
 * died during it), -ECANCELED (the stop flag was set meanwhile), or the
 * errno of socketpair/fork/malloc.  On failure no worker is left.
 */
int weft__iso_start(weft__iso_t **iso, const weft__iso_settings_t *s, char *err, size_t errlen);

/* Where weft__iso_serve's items come from and where their outcomes go.
 * Every callback runs on the serving thread. */
typedef struct weft__iso_feed {
    /* Fresh items: 1 with [*first, *first + *n) (n >= 1), now the
     * supervisor's; 0 for none just now (asked again after the next
     * wakeup, at most 50 ms later); -1 for no more (not asked again). */
    int (*claim)(void *arg, uint64_t *first, size_t *n);
    /* Item index's bytes, copied before the next get_item call.  Empty
     * items (len 0) travel as ranges; child_item gets item NULL, len 0.
     * Called again for an item re-queued after a worker died. */
    void (*get_item)(void *arg, uint64_t index, const void **bytes, size_t *len);
    /* Exactly one per claimed item, in completion order, unless it calls
     * weft__iso_again for it.  May call weft__iso_stop and _again. */
    void (*on_result)(void *arg, uint64_t index, const weft__iso_outcome_t *o);
    /* Every item is empty (the child makes it from its index): get_item
     * is not called, and claimed ranges travel whole. */
    bool empty_items;
    /* Optional: items [first, first + n) all ended OK with `records`
     * records each and no bytes, as one call (NULL: on_result for each). */
    void (*on_ok_run)(void *arg, uint64_t first, size_t n, uint32_t records);
    void *arg;
} weft__iso_feed_t;

/*
 * Runs the feed's items until claim says no more and each claimed item
 * has its outcome.  There is no barrier: a worker gets its next batch
 * while others still run long items, and claims continue as it goes.
 *
 * A worker that dies or times out is reaped and replaced by a fresh fork
 * (child_init runs again); what it finished is delivered, the culprit gets
 * its outcome, the rest of what it held is re-queued.  If a worker slot
 * fails to restart 3 times in a row it is given up; once every slot is
 * given up, the remaining items (claimed and still to claim) get FAILED
 * with the restart failure's message, and this and later serves return
 * -ECHILD.  Returns 0; -ECANCELED when stopped (queued and, under stop
 * now, held items got NOT_RUN; nothing more is claimed; later serves claim
 * nothing); -EINVAL for bad arguments (no outcome then).
 */
int weft__iso_serve(weft__iso_t *iso, const weft__iso_feed_t *feed);

/* From on_result: runs `index` once more (after what is queued) instead
 * of settling it.  0; -ECANCELED when stopping (settle it instead),
 * -ENOMEM, -EINVAL outside a serve. */
int weft__iso_again(weft__iso_t *iso, uint64_t index);

/*
 * A serve over the fixed range of window positions 0..count-1 (item
 * indices first_index + i): get_item and on_result take positions.
 */
int weft__iso_run(weft__iso_t *iso, size_t count, uint64_t first_index,
                  void (*get_item)(void *arg, size_t i, const void **bytes, size_t *len),
                  void (*on_result)(void *arg, size_t i, const weft__iso_outcome_t *o),
                  void *arg);

/*
 * Stops this and every later serve.  Soon: no new batches or claims;
 * batches already sent finish (a worker holds at most two batches of ~1 ms
 * of measured work, or one item when items are slower); claimed items not
 * sent are NOT_RUN.  Now: the workers are SIGKILLed, and items in
 * flight are NOT_RUN too.  Async-signal-safe (atomic store, kill(2)).
 */
void weft__iso_stop(weft__iso_t *iso, bool now);

/* SIGKILLs every live worker.  Async-signal-safe (kill(2) only), for a
 * second-signal path (which kills the announced children itself:
 * weft__children_kill_all); weft__iso_destroy still reaps them. */
void weft__iso_kill_all(const weft__iso_t *iso);

/* Closes the sockets (workers run child_fini and exit), waits up to 2 s for
 * them to exit, SIGKILLs whoever is left, kills what each left announced,
 * reaps all, frees; *iso becomes NULL.  NULL ok. */
void weft__iso_destroy(weft__iso_t **iso);

typedef struct weft__iso_stats {
    uint64_t spawned;   /* forks, the first ones included              */
    uint64_t crashed;   /* CRASHED outcomes                            */
    uint64_t timed_out; /* TIMED_OUT outcomes                          */
} weft__iso_stats_t;
void weft__iso_get_stats(const weft__iso_t *iso, weft__iso_stats_t *st);

#endif /* WEFT_CORE_ISOLATE_H */
