/* SPDX-License-Identifier: MIT */
/*
 * A job's state, shared by the rooms of core/run: the job's set-up and end
 * (job.c), its two engines (engine_thread.c: the work-stealing pool;
 * engine_process.c: forked workers, isolate = process), the per-item code
 * both call down into (item.h), the journal log (jlog.h) and the signal
 * handlers (signals.h).  An engine reads the feed (claims), the reorder
 * buffer, the journal log, the writer, the progress counters and the stop
 * flag from it; the set-up fields are job.c's.  Not an API.
 */
#ifndef WEFT_CORE_RUN_JOB_H
#define WEFT_CORE_RUN_JOB_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "claim.h"
#include "config.h"
#include "isolate.h"
#include "journal.h"
#include "loader.h"
#include "outbatch.h"
#include "npy.h"
#include "outdir.h"
#include "output.h"
#include "progress.h"
#include "reorder.h"
#include "resume.h"
#include "run.h"
#include "source.h"
#include "weft/weft.h"

enum { MSG_SIZE = 1024, ERR_SIZE = 2048, MAX_PRINTED_FAILURES = 10 };

/* How an item ended (journal statuses, plus not run). */
typedef enum item_status {
    ST_OK = WEFT__J_OK,
    ST_FAILED = WEFT__J_FAILED,
    ST_CRASHED = WEFT__J_CRASHED,
    ST_TIMED_OUT = WEFT__J_TIMEDOUT,
    ST_QUARANTINED = WEFT__J_QUARANTINED,
    ST_NOT_RUN = 9,
} item_status_t;

/* An item's outcome as the per-item code makes it: its records at
 * buf->data + off (len bytes), its failure message at msgs->data + msg_off. */
typedef struct slot {
    uint64_t off;     /* records, in the block's record buffer          */
    uint32_t len;     /* their bytes                                    */
    uint32_t records; /* 1, or a flattened list's length (may be 0)     */
    uint32_t msg_off; /* failure message, in the worker's msg buffer    */
    uint16_t msg_len;
    uint8_t status;   /* item_status_t                                  */
    uint8_t reused;   /* taken from the journal of an earlier run       */
} slot_t;

/* Written only by its own worker while the pool runs. */
typedef struct worker {
    alignas(64) void *ctx;  /* the plugin's per-worker context          */
    weft__buf_t jbuf;       /* journal entries not yet appended         */
    size_t jmark;           /* where the open DONE chunk starts in jbuf */
    bool jopen;
    double jflushed;        /* when jbuf was last appended              */
    int64_t tnext;          /* monotonic ns its last timed item ended, so
                               the next one of the chunk started (item.h);
                               0: not known, read the clock            */
    uint64_t done;          /* items this worker finished (halt = P%)   */
    uint64_t current;       /* the item in process_one, or UINT64_MAX:
                               a crash handler names it in the journal  */
    weft__buf_t msgs;       /* the current item's failure message       */
    char msg[MSG_SIZE];
    weft__outbatch_t *outbatch; /* sync = batch, thread mode: the files its
                                   items committed, made durable before its
                                   journal entries are appended (jlog.c)  */
} worker_t;

/*
 * What an engine, and the per-item code under it, get from the job: the
 * plugin to call, the claim source, the reorder buffer, the journal log,
 * the writer (or .npy array), the progress counters; the stop flag is
 * weft__run_stop.  Nothing of the job's set-up: a worker process starts
 * its own plugin through child_start.  The fields an engine reports come
 * last.
 */
typedef struct weft__engine {
    const weft__config_t *cfg;
    const weft__plugin_t *plugin;
    void *state;            /* the plugin's (a worker process: its own)   */
    unsigned threads;
    worker_t *workers;      /* threads of them, each on its cache lines    */
    const weft__source_t *source; /* the items (the feed reads it): resume
                                     runs suspects from it first          */
    weft__feed_t *feed;     /* where the engines claim items               */
    weft__reorder_t *reorder; /* where they hand their results             */
    weft_pool_t *pool;      /* thread mode                                 */
    weft__writer_t *writer; /* JSON, JSON Lines, CSV or TSV, or NULL       */
    weft__npy_t *npy;       /* .npy output, rows written in place         */
    bool npy_scalar;        /* ... by the runner: each result one number
                               (the plugin has no row_spec)               */
    weft__progress_t *progress;
    bool log_relay;         /* process mode: workers' logf lines arrive on */
    int log_relay_fd;       /* this pipe, for weft__progress_relay         */
    weft__frame_t frame;    /* how records are framed                     */
    bool writes_records;    /* JSON, JSON Lines, CSV or TSV output        */
    bool csv;               /* CSV or TSV: records are rows (output.h)    */
    bool raw;               /* format = raw: a record is a value's bytes  */
    bool plain_values;      /* JSON or JSON Lines, record = value, no
                               flatten: a record is the value alone       */
    bool batch;             /* chunks go through the plugin's process_range */
    bool null_not_run;      /* record = value, in input order: a not-run
                               item keeps its place as null               */
    bool ints_fast;         /* thread mode, plain values, nothing kept per
                               item: weft__item_run_ints (item.h)          */

    /* The journal log, and resume. */
    weft__journal_t *journal;    /* NULL: no journal                       */
    weft__jscan_t *scan;         /* resume: what an earlier run did        */
    bool retry_failed;           /* --retry-failed: failed items run again */
    const uint64_t *suspects, *poison; /* resume, thread mode: sorted      */
    size_t n_suspects, n_poison;
    size_t suspects_run;         /* suspects[0, suspects_run) ran alone     */
    atomic_int journal_error;    /* first append error, negative errno     */
    const weft__host_t *host;    /* for the outbatch commits (messages, the
                                    write error)                           */
    atomic_bool commit_failed;   /* an outbatch commit failed: said once   */
    atomic_uint_fast64_t failures; /* failed items so far (halt policy)    */
    double journal_synced;
    bool jtimed;                 /* a version 3 journal: entries are timed  */
    int64_t wall_mono_ns;        /* CLOCK_REALTIME - CLOCK_MONOTONIC at the
                                    start: an item's wall-clock start from
                                    its one monotonic reading (item.h)     */

    /* Process mode: in each worker process, once, the plugin's init and
     * worker_init (nonzero: failed, message in msg), and at its end the
     * plugin's worker_fini and destroy.  `job` is their argument. */
    int (*child_start)(void *job, unsigned worker, char *msg, size_t msg_size);
    void (*child_stop)(void *job, unsigned worker);
    void *job;

    /* Thread mode's drain thread (engine_thread.c's own), while the
     * engine runs; NULL otherwise. */
    struct weft__drain *drain;

    /* What the engine reports. */
    int write_error;  /* the output could not be kept: -errno          */
    double t_output;  /* seconds spent writing the output              */
} weft__engine_t;

/* A job: its set-up, the engine it runs, what it reports at the end. */
typedef struct run {
    weft__engine_t eng;
    const weft__run_opts_t *opts;
    weft__config_t *cfg;
    weft__plugin_t *plugin;
    weft_arg_value_t *args;
    weft__host_t host;
    bool state_live;
    weft__source_t *source;
    unsigned workers_ready; /* worker_init succeeded for [0, workers_ready) */

    /* Never losing work. */
    weft__outdir_t *outdir;      /* the plugin's output folder, locked    */
    char *outdir_path;
    _Atomic int *outdir_error;   /* host.write_error, in shared memory    */
    char *journal_path;          /* where it is, or NULL                    */
    char *config_abs;            /* the config's absolute path (summary)   */
    weft__identity_t id;

    /* Filled from the reorder buffer's totals at the end. */
    uint64_t counts[ST_NOT_RUN + 1]; /* by item_status_t                    */
    uint64_t reused, printed;
    uint64_t reused_by[ST_NOT_RUN + 1]; /* of counts[], done by an earlier run */
    bool journaled;                     /* a journal records this run        */
    bool journal_fresh;                 /* created by this run, nothing run yet */
    bool journal_created;               /* created by this run (not a resume) */
    bool finished_before;               /* --resume of a compacted journal    */

    /* The items that did not end ok, for the summary JSON (at most
     * WEFT__SUMMARY_FAILED_MAX; failed_truncated past that). */
    uint64_t *failed_items;
    size_t n_failed_items, cap_failed_items;
    bool failed_truncated;

    double t_start, t_init, t_items, t_finish;
    double started_at; /* CLOCK_REALTIME, for the summary */
    char err[ERR_SIZE];
} run_t;

/* The claim span: items past the oldest not yet written, and the bytes
 * finished records may hold while they wait for it. */
enum { SPAN_ITEMS = 1 << 18 };
#define SPAN_BYTES ((uint64_t)64 << 20)

/* The run's stop request: 0 running, 1 stop soon, 2 stop now.  Set by the
 * signal handlers, the halt policy, a journal error; read by the engines
 * and the plugin host. */
extern atomic_int weft__run_stop;

/* The failure policy (halt = ...) stopped the run. */
extern atomic_int weft__run_halted;

/* The source failed mid-run: the message is printed, the exit status
 * returned (0 when it did not fail). */
int weft__run_source_status(weft__engine_t *r);

/* The engines: each runs every item the feed hands out (or gives it its
 * outcome when stopped) into the reorder buffer, then returns an exit
 * status (0, or the reason it could not go on). */
int weft__engine_threads(weft__engine_t *r);
int weft__engine_processes(weft__engine_t *r);

#endif
