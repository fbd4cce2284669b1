/* SPDX-License-Identifier: MIT */
/*
 * A job: the config read, the plugin loaded and started, the outputs and
 * the journal opened (or an earlier run's journal read, for --resume), one
 * of the two engines run over the items (engine_thread.c, or
 * engine_process.c for isolate = process), then the end: items never
 * claimed counted as not run, the plugin's finish, the outputs committed,
 * the summary.  weft__run is the whole of it, for `weft run` and `weft
 * check`.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "item.h"
#include "jlog.h"
#include "signals.h"
#include "summary.h"
#include "util.h"

/* ---- what both engines report ------------------------------------------ */

int weft__run_source_status(weft__engine_t *r)
{
    const char *why = r->feed ? weft__feed_error(r->feed) : NULL;
    if (!why)
        return 0;
    fprintf(stderr, "weft: items: %s\n", why);
    return WEFT_EXIT_USAGE;
}

static void print_failure(void *arg, uint64_t index, unsigned status, bool reused,
                          const char *msg, size_t len)
{
    run_t *r = arg;
    /* Crashes, timeouts and quarantines say so in their message. */
    weft__progress_message(r->eng.progress, "weft: item %" PRIu64 "%s%s: %.*s\n", index,
                           status == ST_FAILED ? " failed" : "",
                           reused ? " (in an earlier run)" : "", (int)len, msg);
}

/* Every item that did not end ok, for the summary JSON's failed_items. */
static void note_failure(void *arg, uint64_t index, unsigned status)
{
    run_t *r = arg;
    (void)status;
    if (!r->opts->summary_json)
        return;
    if (r->n_failed_items == r->cap_failed_items) {
        size_t cap = r->cap_failed_items ? 2 * r->cap_failed_items : 256;
        if (cap > WEFT__SUMMARY_FAILED_MAX)
            cap = WEFT__SUMMARY_FAILED_MAX;
        uint64_t *p = cap > r->cap_failed_items
                          ? realloc(r->failed_items, cap * sizeof *p)
                          : NULL;
        if (!p) { /* the cap, or out of memory: the list says it is cut */
            r->failed_truncated = true;
            return;
        }
        r->failed_items = p;
        r->cap_failed_items = cap;
    }
    r->failed_items[r->n_failed_items++] = index;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- set-up and tear-down ----------------------------------------------- */

static int usage_error(const char *msg)
{
    fprintf(stderr, "weft: %s\n", msg);
    return WEFT_EXIT_USAGE;
}

static void workers_fini(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    for (unsigned t = 0; t < r->workers_ready; t++)
        if (p->worker_fini)
            p->worker_fini(r->eng.state, t, r->eng.workers[t].ctx);
    r->workers_ready = 0;
}

/* Loads config, plugin, arguments and source; nothing runs yet. */
static int prepare(run_t *r, const weft__run_opts_t *o)
{
    char *err = r->err;
    int rc;
    if (o->config_path) {
        r->config_abs = realpath(o->config_path, NULL); /* NULL: the summary says null */
        rc = weft__config_load(&r->cfg, o->config_path, err, ERR_SIZE);
    } else {
        rc = weft__config_new(&r->cfg, "command line", err, ERR_SIZE);
    }
    for (size_t k = 0; rc == 0 && k < o->n_sets; k++) {
        const char *origin = o->set_origins ? o->set_origins[k] : NULL;
        rc = weft__config_set_as(r->cfg, o->sets[k], origin ? origin : "--set", err, ERR_SIZE);
    }
    if (rc == 0)
        rc = weft__config_finalize(r->cfg, err, ERR_SIZE);
    if (rc)
        return usage_error(err);

    char **dirs = NULL;
    size_t n_dirs = 0;
    /* A config from stdin or the command line has no folder of its own to
     * search (r->cfg->dir is the current one: never searched). */
    bool has_folder = !r->cfg->in_memory && !r->cfg->from_stdin;
    rc = weft__plugin_dirs(has_folder ? r->cfg->dir : NULL, r->cfg->plugin_path, &dirs,
                           &n_dirs);
    if (rc)
        snprintf(err, ERR_SIZE, "plugin search path: %s", weft_strerror(rc));
    else
        rc = weft__plugin_open(&r->plugin, r->cfg->plugin, dirs, n_dirs, err, ERR_SIZE);
    for (size_t k = 0; k < n_dirs; k++)
        free(dirs[k]);
    free(dirs);
    if (rc)
        return usage_error(err);

    const weft_plugin_t *p = &r->plugin->desc;
    r->args = calloc(p->n_args ? p->n_args : 1, sizeof *r->args);
    if (!r->args)
        return usage_error("out of memory");
    size_t k;
    if (weft__config_bind(r->cfg, p, r->args, err, ERR_SIZE) != 0 ||
        weft__outdir_arg(p, &k, err, ERR_SIZE) < 0 ||
        weft__source_open(&r->source, r->cfg, err, ERR_SIZE) != 0)
        return usage_error(err);
    if (k != SIZE_MAX && !(r->outdir_path = strdup(r->args[k].u.s)))
        return usage_error("out of memory");
    if ((p->flags & WEFT_PLUGIN_REDUCES) && r->cfg->isolate_process) {
        const weft__entry_t *e = weft__config_entry(r->cfg, "run", "isolate");
        char where[512];
        snprintf(err, ERR_SIZE,
                 "%s: isolate = process: plugin %s reduces over its items in one process "
                 "(its finish sums up what process_one did), and worker processes would keep "
                 "that to themselves; use isolate = thread",
                 e ? weft__entry_where(e, where, sizeof where) : r->cfg->path, p->name);
        return usage_error(err);
    }
    return 0;
}

/* init in this process; worker_init for each thread (thread mode). */
static int start_plugin(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    char msg[MSG_SIZE] = "";
    double t0 = weft__mono_s();
    if (p->init(&r->host.pub, r->args, &r->eng.state, msg, sizeof msg) != 0) {
        fprintf(stderr, "weft: plugin %s: init failed: %s\n", p->name,
                msg[0] ? msg : "(no message)");
        return WEFT_EXIT_USAGE;
    }
    r->state_live = true;
    for (unsigned t = 0; t < r->eng.threads && !r->cfg->isolate_process; t++) {
        if (!p->worker_init)
            break;
        msg[0] = '\0';
        if (p->worker_init(r->eng.state, t, r->eng.threads, &r->eng.workers[t].ctx, msg, sizeof msg)) {
            fprintf(stderr, "weft: plugin %s: worker_init (worker %u) failed: %s\n", p->name,
                    t, msg[0] ? msg : "(no message)");
            return WEFT_EXIT_USAGE;
        }
        r->workers_ready = t + 1;
    }
    r->t_init = weft__mono_s() - t0;
    return 0;
}

/* Process mode, in each worker process: the plugin's state of its own
 * (the parent's was forked along, and is not this worker's). */
static int child_start(void *job, unsigned worker, char *msg, size_t msg_size)
{
    run_t *r = job;
    const weft_plugin_t *p = &r->plugin->desc;
    r->eng.state = NULL;
    if (p->init(&r->host.pub, r->args, &r->eng.state, msg, msg_size) != 0)
        return -1;
    if (p->worker_init && p->worker_init(r->eng.state, worker, r->eng.threads,
                                         &r->eng.workers[worker].ctx, msg, msg_size) != 0)
        return -1;
    return 0;
}

static void child_stop(void *job, unsigned worker)
{
    run_t *r = job;
    const weft_plugin_t *p = &r->plugin->desc;
    if (p->worker_fini)
        p->worker_fini(r->eng.state, worker, r->eng.workers[worker].ctx);
    if (p->destroy)
        p->destroy(r->eng.state);
}

/* npy_dtype is for plugins whose results are numbers: one with row_spec
 * says its own dtype.  0, or an error naming the key. */
static int check_npy_dtype(const run_t *r)
{
    const weft__entry_t *e = weft__config_entry(r->cfg, "run", "npy_dtype");
    char where[256];
    if (!e || !r->plugin->desc.row_spec)
        return 0;
    fprintf(stderr, "weft: %s: npy_dtype: plugin %s writes rows of its own dtype "
                    "(row_spec): drop npy_dtype\n",
            weft__entry_where(e, where, sizeof where), r->plugin->desc.name);
    return WEFT_EXIT_USAGE;
}

/* output = FILE.npy: the plugin's rows, in a file the runner creates; for a
 * plugin without row_spec, one number per item (its result) in a 1-D array
 * of npy_dtype (float64), holes (NaN, or the int minimum) where none. */
static int open_array(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    weft_row_spec_t spec = {.dtype = r->cfg->npy_dtype ? r->cfg->npy_dtype : WEFT_DTYPE_F64,
                            .row_len = 1};
    char msg[MSG_SIZE] = "";
    int rc = check_npy_dtype(r);
    if (rc)
        return rc;
    r->eng.npy_scalar = !p->row_spec;
    if (p->row_spec && p->row_spec(r->eng.state, &spec, msg, sizeof msg) != 0) {
        fprintf(stderr, "weft: plugin %s: row_spec failed: %s\n", p->name, msg);
        return WEFT_EXIT_USAGE;
    }
    if (r->source->total == WEFT__COUNT_UNKNOWN) {
        fprintf(stderr, "weft: %s: a .npy output needs the item count up front, and "
                        "standard input has none\n", r->cfg->output);
        return WEFT_EXIT_USAGE;
    }
    if (weft__npy_shape(r->eng.npy, spec.dtype, r->source->total, spec.row_len, r->err,
                        ERR_SIZE) != 0)
        return usage_error(r->err);
    if (r->eng.npy_scalar && weft__npy_holes(r->eng.npy) != 0)
        return usage_error("npy_dtype: no hole value for this dtype");
    return 0;
}

static const char *format_name(weft__format_t f)
{
    switch (f) {
    case WEFT__FORMAT_JSON: return "a JSON array";
    case WEFT__FORMAT_JSONL: return "JSON Lines";
    case WEFT__FORMAT_CSV: return "CSV";
    case WEFT__FORMAT_TSV: return "TSV";
    case WEFT__FORMAT_NPY: return "a .npy array";
    case WEFT__FORMAT_RAW: return "raw values";
    case WEFT__FORMAT_NONE: break;
    }
    return "nothing";
}

/* The host table as the config says: the same for a run and check --init. */
static void host_setup(run_t *r)
{
    const weft__config_t *c = r->cfg;
    weft__host_init(&r->host, r->plugin->desc.name, c->seed, c->dir);
    r->host.pub.values_wanted = c->format != WEFT__FORMAT_NONE;
    r->host.pub.values_raw = c->format == WEFT__FORMAT_RAW;
    r->host.pub.n_task = c->n_task;
    r->host.pub.task_keys = c->task_keys;
    r->host.pub.task_values = c->task_values;
    r->host.pub.workers = r->opts->check_only ? 0 : r->eng.threads;
    r->host.pub.worker_processes = !r->opts->check_only && c->isolate_process;
    r->host.sync = c->sync;
    r->host.stop = &weft__run_stop;
    r->host.log_quiet = r->opts->quiet; /* -q: errors only, and a plugin's log is not one */
}

/* weft check: everything was validated; say what would run. */
/* check --init: the plugin's init as a run would call it (no output
 * folder opened, nothing written); destroy follows at the end. */
static int check_init(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    host_setup(r);
    char msg[MSG_SIZE] = "";
    if (p->init(&r->host.pub, r->args, &r->eng.state, msg, sizeof msg) != 0) {
        fprintf(stderr, "weft: %s: plugin %s: init failed: %s\n", r->cfg->path,
                p->name, msg[0] ? msg : "(no message)");
        return WEFT_EXIT_USAGE;
    }
    r->state_live = true;
    return 0;
}

static int report_check(const run_t *r, const char *path)
{
    const weft__config_t *c = r->cfg;
    const weft_plugin_t *p = &r->plugin->desc;
    if (c->format == WEFT__FORMAT_NPY && check_npy_dtype(r))
        return WEFT_EXIT_USAGE;
    printf("%s: ok\n", path);
    printf("  plugin   %s %s (%s)\n", p->name, p->version ? p->version : "", r->plugin->path);
    if (r->source->total == WEFT__COUNT_UNKNOWN)
        printf("  items    %s (count known when read)\n", c->items->value);
    else
        printf("  items    %s: %" PRIu64 " items\n", c->items->value, r->source->total);
    char npy[64] = "";
    if (c->format == WEFT__FORMAT_NPY && !p->row_spec)
        snprintf(npy, sizeof npy, " of %s, one number per item",
                 weft__dtype_name(c->npy_dtype ? c->npy_dtype : WEFT_DTYPE_F64));
    printf("  output   %s, %s%s%s%s\n", c->output ? c->output : "none", format_name(c->format),
           npy,
           c->compress == WEFT__COMPRESS_GZIP   ? ", gzip-compressed"
           : c->compress == WEFT__COMPRESS_ZSTD ? ", zstd-compressed"
                                                : "",
           c->order_any ? ", in completion order" : "");
    if (r->outdir_path)
        printf("  folder   %s\n", r->outdir_path);
    printf("  threads  %u%s\n", r->eng.threads, c->isolate_process ? " (worker processes)" : "");
    for (size_t k = 0; k < c->n_task; k++)
        printf("  %-8s %s = %s\n", k ? "" : "task", c->task_keys[k], c->task_values[k]);
    if (r->opts->check_init)
        printf("  init     ok (the plugin started, and was stopped)\n");
    return WEFT_EXIT_OK;
}

static unsigned pick_threads(const run_t *r)
{
    unsigned t = r->cfg->threads;
    if (t == 0) {
        t = weft_cpu_count();
        /* I/O-bound items mostly wait: more threads keep the disk busy. */
        if (r->plugin->desc.flags & WEFT_PLUGIN_IO_BOUND)
            t *= 4;
    }
    if (r->source->total != WEFT__COUNT_UNKNOWN && r->source->total < t)
        t = (unsigned)r->source->total;
    if (t > 1024)
        t = 1024;
    return t ? t : 1;
}

/* N workers, each running OpenMP or BLAS code on every CPU, would ask for
 * N x CPUs threads: as joblib does, numeric libraries in the plugin and in
 * exec's commands get one thread each, unless the environment already says
 * how many (set here, before any thread of ours exists). */
static void one_thread_each(void)
{
    static const char *const vars[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                       "MKL_NUM_THREADS"};
    for (size_t k = 0; k < sizeof vars / sizeof *vars; k++)
        setenv(vars[k], "1", 0); /* 0: what the user set stays */
}

/* The command that finishes the job (main.c makes it from the command
 * line as typed), into buf. */
enum { RESUME_CMD_SIZE = 8192 };
static const char *resume_command(const weft__run_opts_t *o, char *buf, size_t size)
{
    if (o->resume_command)
        return o->resume_command;
    snprintf(buf, size, "weft run %s --resume", o->config_path);
    return buf;
}

/* ---- the journal: create, or resume ------------------------------------- */

static int refuse(const char *fmt, ...) WEFT_PRINTF(1, 2);
static int refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return WEFT_EXIT_USAGE;
}

/* --resume: the earlier run must be this run (or --force). */
static int check_same_run(run_t *r, const char *path)
{
    char diff[4096] = "";
    size_t n = weft__jheader_diff(weft__jscan_header(r->eng.scan), &r->id.header, diff, sizeof diff);
    if (n && !r->opts->force)
        return refuse("%s: cannot resume: the run changed since it began:\n%s"
                         "weft: add --restart (instead of --resume) to start over, or --force to "
                         "resume anyway (changed items run again)",
                      path, diff);
    char what[512] = "";
    int64_t differ = weft__resume_check_items(r->cfg, r->eng.scan, what, sizeof what);
    if (differ < 0)
        return refuse("items: %s", what);
    if (differ > 0 && !r->opts->force)
        return refuse("%s: cannot resume: %" PRId64 " item%s changed since the run began (%s); "
                         "add --force to run the changed items again",
                      path, differ, differ == 1 ? "" : "s", what);
    if (n || differ)
        fprintf(stderr, "weft: resuming anyway (--force): %s%s", diff,
                differ ? "changed items run again\n" : "");
    return 0;
}

static int open_journal(run_t *r)
{
    const weft__run_opts_t *o = r->opts;
    bool resume = o->resume || o->retry_failed;
    bool nomem;
    char *path = weft__journal_path(r->cfg, r->outdir_path, &nomem);
    int rc = 0;
    if (nomem)
        return usage_error("out of memory");
    if (path && r->source->total == WEFT__COUNT_UNKNOWN) {
        free(path); /* items read once from a stream cannot be resumed */
        path = NULL;
    }
    /* --resume=auto: a journal to resume, or none (a first start, a job
     * that keeps none): then a plain run. */
    if (resume && o->resume_auto && (!path || access(path, F_OK) != 0))
        resume = false;
    if (!path) {
        if (resume)
            return refuse("%s: nothing to resume: this run keeps no journal (its output is "
                             "standard output, none or a special file, its items a stream, or "
                             "journal = off or a special file)",
                          r->cfg->path);
        return 0;
    }
    bool reduces = r->plugin->desc.flags & WEFT_PLUGIN_REDUCES;
    if (resume && reduces) {
        free(path);
        return refuse("%s: cannot resume: plugin %s reduces over every item in one run (its "
                      "final result would cover only the items a resume runs); add --restart "
                      "to start over",
                      r->cfg->path, r->plugin->desc.name);
    }
    if (weft__identity_make(&r->id, r->cfg, r->plugin, r->source) != 0) {
        free(path);
        return usage_error("out of memory");
    }
    /* Killed while the journal was being created: it holds no work, so
     * resuming is running everything. */
    if (resume && weft__journal_empty(path))
        resume = false;
    if (!resume) {
        /* A plain run: refuse to overwrite a journal whose run did not
         * finish (cheap: only its last record is read). */
        bool finished = false;
        long pid = 0;
        if (weft__in_use(path, &pid)) {
            rc = pid ? refuse("%s: this job is running now (pid %ld, journal %s): wait for it "
                              "to end, or stop it first",
                              r->cfg->path, pid, path)
                     : refuse("%s: this job is running now (journal %s is in use): wait for "
                              "it to end, or stop it first",
                              r->cfg->path, path);
            goto out;
        }
        rc = weft__journal_peek(path, &finished);
        if (rc == 0 && !finished && !o->restart && reduces) {
            rc = refuse("%s: an earlier run of this job did not finish (journal %s); plugin %s "
                        "cannot resume (it reduces over every item): add --restart to start "
                        "over",
                        r->cfg->path, path, r->plugin->desc.name);
            goto out;
        }
        if (rc == 0 && !finished && !o->restart) {
            char cmd[RESUME_CMD_SIZE];
            rc = refuse("%s: an earlier run of this job did not finish (journal %s).\n"
                           "weft: run `%s` to finish it, or add --restart to start over",
                        r->cfg->path, path, resume_command(o, cmd, sizeof cmd));
            goto out;
        }
        rc = weft__journal_create(&r->eng.journal, path, &r->id.header, r->err, ERR_SIZE);
        if (rc == 0 && (rc = weft__journal_session(r->eng.journal, 1, 0)) != 0)
            snprintf(r->err, ERR_SIZE, "%s: cannot write the journal: %s", path,
                     strerror(-rc));
        r->journaled = rc == 0;
        r->journal_fresh = rc == 0;
        if (rc)
            rc = usage_error(r->err);
        goto out;
    }
    rc = weft__journal_resume(&r->eng.journal, &r->eng.scan, path, r->err, ERR_SIZE);
    if (rc == -ENOENT) {
        rc = refuse("%s: nothing to resume: no journal at %s (run without --resume)",
                    r->cfg->path, path);
        goto out;
    }
    if (rc) {
        rc = usage_error(r->err);
        goto out;
    }
    if (weft__jscan_dropped(r->eng.scan))
        fprintf(stderr, "weft: %s: dropped %zu bytes of a torn or corrupt tail (at byte %zu: %s)\n",
                path, weft__jscan_dropped(r->eng.scan), weft__jscan_valid_len(r->eng.scan),
                weft__jscan_tail(r->eng.scan));
    rc = check_same_run(r, path);
    if (rc)
        goto out;
    unsigned last_flags = 0;
    weft__jscan_last_session(r->eng.scan, &last_flags);
    if (weft__jscan_finished(r->eng.scan) && (last_flags & WEFT__JS_COMPACT)) {
        r->finished_before = true; /* the caller says so, and runs nothing */
        goto out;
    }
    if (!r->cfg->isolate_process) {
        r->eng.n_suspects = weft__jscan_suspects(r->eng.scan, &r->eng.suspects);
        r->eng.n_poison = weft__jscan_poison(r->eng.scan, &r->eng.poison);
    }
    rc = weft__journal_session(r->eng.journal, weft__jscan_sessions(r->eng.scan) + 1,
                               WEFT__JS_RESUME | (r->eng.n_suspects ? WEFT__JS_CAREFUL : 0));
    r->journaled = rc == 0;
    if (rc)
        rc = refuse("%s: cannot append to the journal: %s", path, strerror(-rc));
out:
    r->journal_path = path;
    r->eng.jtimed = r->eng.journal && weft__journal_version(r->eng.journal) >= 3;
    return rc;
}


/* ---- the engines ------------------------------------------------------------ */

/* The claim source and the reorder buffer, shared by both engines. */
static int engine_open(run_t *r, bool threaded)
{
    weft__reorder_settings_t rs = {
        .workers = r->eng.threads,
        .ordered = !r->cfg->order_any,
        .writer = r->eng.writer,
        .print = print_failure,
        .print_arg = r,
        .max_printed = MAX_PRINTED_FAILURES,
        .noted = note_failure,
    };
    if (weft__reorder_create(&r->eng.reorder, &rs) != 0)
        return usage_error("out of memory starting the workers");
    if (threaded) {
        weft_pool_settings_t ps;
        weft_pool_default_settings(&ps);
        ps.threads = r->eng.threads;
        int e = weft_pool_create(&r->eng.pool, &ps);
        if (e == -EAGAIN)
            return usage_error("cannot start the worker threads (the system refused: "
                               "too many processes or threads?)");
        if (e)
            return usage_error("out of memory starting the workers");
    }
    weft__feed_settings_t fs = {
        .source = r->source,
        .reorder = r->eng.reorder,
        .pool = r->eng.pool,
        .workers = r->eng.threads,
        .span = SPAN_ITEMS,
        .span_bytes = SPAN_BYTES,
        .stop = &weft__run_stop,
        .large_claims = r->eng.batch, /* whole chunks through process_range */
    };
    if (weft__feed_create(&r->eng.feed, &fs) != 0)
        return usage_error("out of memory starting the workers");
    return 0;
}


/* The items never claimed (a stop) go into the reorder buffer as not run,
 * so that they fall into place around blocks already waiting there (items
 * run alone before the engine), and in record = value keep their places as
 * nulls.  Main thread, after the engine: worker 0's blocks are ours now. */
static void pad_not_run(run_t *r, uint64_t from, uint64_t to)
{
    uint64_t i = from;
    while (i < to) {
        weft__block_t *b = weft__reorder_block_get(r->eng.reorder, 0);
        if (!b) {
            r->eng.write_error = -ENOMEM;
            return;
        }
        b->first = i;
        for (; i < to && b->count < 4096; i++) {
            if (r->eng.suspects_run && weft__item_in_set(r->eng.suspects, r->eng.suspects_run, i))
                break; /* has its block */
            if (r->eng.null_not_run &&
                (weft__buf_append(&b->bytes, r->eng.frame.prefix, r->eng.frame.prefix_len) ||
                 weft__buf_append(&b->bytes, "null", 4) ||
                 weft__buf_append(&b->bytes, r->eng.frame.suffix, r->eng.frame.suffix_len)))
                r->eng.write_error = -ENOMEM;
            b->records += r->eng.null_not_run;
            b->counts[ST_NOT_RUN]++;
            b->count++;
        }
        if (b->count)
            weft__reorder_put(r->eng.reorder, b);
        else
            weft__reorder_block_drop(r->eng.reorder, b);
        if (i < to && b->count == 0)
            i++; /* a suspect's index */
        weft__reorder_drain(r->eng.reorder);
    }
}

/* After the engine (no worker, no drain left): what the reorder buffer
 * counted, the items never claimed included. */
static void engine_totals(run_t *r)
{
    if (!r->eng.reorder)
        return;
    uint64_t claimed = weft__feed_claimed(r->eng.feed), read = weft__feed_read(r->eng.feed);
    uint64_t total = r->source->total;
    uint64_t all = weft__feed_at_end(r->eng.feed) || total == WEFT__COUNT_UNKNOWN
                       ? (read > claimed ? read : claimed)
                       : (total > claimed ? total : claimed);
    pad_not_run(r, claimed, all);
    if (r->eng.progress && total == WEFT__COUNT_UNKNOWN)
        weft__progress_set_total(r->eng.progress, all); /* a stream's end */
    if (weft__reorder_finish(r->eng.reorder) && !r->eng.write_error)
        r->eng.write_error = -ENOMEM;
    weft__reorder_totals_t t;
    weft__reorder_totals(r->eng.reorder, &t);
    for (int k = 0; k <= ST_NOT_RUN; k++) {
        r->counts[k] = t.counts[k];
        r->reused_by[k] = t.reused[k];
        r->reused += t.reused[k];
    }
    r->printed = t.printed;
    if (t.write_error && !r->eng.write_error)
        r->eng.write_error = t.write_error;
}

/* ---- the end --------------------------------------------------------------- */

static void print_finish_value(run_t *r, const weft_result_t *res)
{
    weft__buf_t b = {0};
    char why[256];
    if (weft__json_value(&b, res, why, sizeof why) != 0) {
        fprintf(stderr, "weft: plugin %s: finish returned a bad value: %s\n",
                r->plugin->desc.name, why);
    } else {
        bool to_stdout = !(r->cfg->output && strcmp(r->cfg->output, "-") == 0);
        fprintf(to_stdout ? stdout : stderr, "%s%.*s\n", to_stdout ? "" : "weft: result: ",
                (int)b.len, b.data);
        fflush(to_stdout ? stdout : stderr);
    }
    weft__buf_free(&b);
}

static uint64_t total_items(const run_t *r)
{
    uint64_t seen = 0;
    for (int s = 0; s <= ST_NOT_RUN; s++)
        seen += r->counts[s];
    return seen;
}

static int run_finish_plugin(run_t *r, int status)
{
    const weft_plugin_t *p = &r->plugin->desc;
    if (status != 0 || !p->finish)
        return status;
    char msg[MSG_SIZE] = "";
    uint64_t seen = total_items(r);
    uint64_t total = r->source->total == WEFT__COUNT_UNKNOWN ? seen : r->source->total;
    weft_counts_t counts = {.total = total, .ok = r->counts[ST_OK]};
    counts.failed = r->counts[ST_FAILED] + r->counts[ST_CRASHED] + r->counts[ST_TIMED_OUT] +
                    r->counts[ST_QUARANTINED];
    counts.not_run = total - counts.ok - counts.failed;
    weft_result_t res = {.msg = msg, .msg_size = sizeof msg};
    double t0 = weft__mono_s();
    if (p->finish(r->eng.state, &counts, &res) != 0) {
        fprintf(stderr, "weft: plugin %s: finish failed: %s\n", p->name,
                msg[0] ? msg : "(no message)");
        status = WEFT_EXIT_ITEMS_FAILED;
    } else if (res.kind != WEFT_VALUE_NONE) {
        print_finish_value(r, &res);
    }
    r->t_finish = weft__mono_s() - t0;
    return status;
}

/* Output and journal closed, in that order: the END record says the output
 * is complete, so it goes last. */
static int close_outputs(run_t *r, int status, bool complete)
{
    double t0 = weft__mono_s();
    if (status == WEFT_EXIT_USAGE) {
        /* The run ended in an error of its own (the workers could not
         * start, the items could not be read): what the results file held
         * stays; what was done is in the journal. */
        bool had = r->eng.writer || r->eng.npy;
        weft__writer_abort(&r->eng.writer);
        weft__npy_abort(&r->eng.npy);
        if (had)
            fprintf(stderr, "weft: %s left as it was\n", r->cfg->output);
        uint64_t ran = total_items(r) - r->counts[ST_NOT_RUN] - r->reused;
        if (r->eng.journal && r->journal_created && ran == 0) {
            /* Nothing ran: a journal this run made holds nothing, and
             * would only make the next plain run refuse. */
            weft__journal_close(&r->eng.journal);
            unlink(r->journal_path);
            return status;
        }
    }
    if (r->eng.writer && weft__writer_close(&r->eng.writer, r->err, ERR_SIZE) != 0) {
        fprintf(stderr, "weft: %s\n", r->err);
        status = WEFT_EXIT_OUTPUT;
    }
    if (r->eng.write_error == -ENOMEM) {
        fprintf(stderr, "weft: out of memory keeping results: some records are missing "
                        "from the output (the journal has them: --resume rebuilds it)\n");
        status = WEFT_EXIT_OUTPUT;
    }
    /* Rows of failed items are zeros; the array is kept, like other output. */
    if (r->eng.npy && weft__npy_commit(&r->eng.npy, r->err, ERR_SIZE)) {
        fprintf(stderr, "weft: %s\n", r->err);
        status = WEFT_EXIT_OUTPUT;
    }
    r->eng.t_output += weft__mono_s() - t0;
    if (!r->eng.journal)
        return status;
    weft__jlog_sync(&r->eng, true);
    int je = atomic_load(&r->eng.journal_error);
    if (je == 0 && complete && status != WEFT_EXIT_OUTPUT)
        je = weft__journal_end(r->eng.journal, r->counts[ST_OK], total_items(r) - r->counts[ST_OK]);
    else if (je == 0)
        je = weft__journal_stop(r->eng.journal); /* stopped early, cleanly: no crash */
    int ce = weft__journal_close(&r->eng.journal);
    if (!je)
        je = ce;
    /* The scan's mapping of the journal keeps the open file, and with it
     * the flock, alive: released before the compaction, which would
     * otherwise find the journal "in use" by this very run. */
    weft__jscan_free(&r->eng.scan);
    if (je) {
        fprintf(stderr, "weft: journal: %s: what was done since may run again on --resume\n",
                strerror(-je));
        status = WEFT_EXIT_OUTPUT;
    }
    /* Every item done and ok, the output committed: the entries have
     * served (a journal is ~2.5x the output).  Its identity stays, so that
     * --resume says there is nothing left; failures keep the whole journal
     * for --retry-failed. */
    uint64_t total = total_items(r);
    if (!je && complete && status == WEFT_EXIT_OK && total > 0 && r->counts[ST_OK] == total &&
        !r->cfg->keep_journal &&
        weft__journal_compact(r->journal_path, &r->id.header, total, r->err, ERR_SIZE) != 0)
        fprintf(stderr, "weft: %s (the whole journal stays)\n", r->err);
    return status;
}

static void summarize(run_t *r, int status, const char *label)
{
    weft__summary_t s = {
        .plugin = r->plugin->desc.name,
        .threads = r->eng.threads,
        .isolate = r->cfg->isolate_process ? "process" : "thread",
        .total = r->source->total,
        .ok = r->counts[ST_OK],
        .failed = r->counts[ST_FAILED],
        .crashed = r->counts[ST_CRASHED],
        .timed_out = r->counts[ST_TIMED_OUT],
        .quarantined = r->counts[ST_QUARANTINED],
        .skipped = r->reused,
        .not_run = r->counts[ST_NOT_RUN],
        .wall_s = weft__mono_s() - r->t_start,
        .init_s = r->t_init,
        .items_s = r->t_items,
        .finish_s = r->t_finish,
        .output_s = r->eng.t_output,
        .status = label,
        .exit_code = status,
        .config = r->config_abs,
        .output = r->cfg->output,
        .journal = r->journaled ? r->journal_path : NULL,
        .started_at = r->started_at,
        .ended_at = weft__real_s(),
        .failed_items = r->failed_items,
        .n_failed_items = r->n_failed_items,
        .failed_truncated = r->failed_truncated,
    };
    if (r->n_failed_items) /* in output order: sorted for order = any */
        qsort(r->failed_items, r->n_failed_items, sizeof *r->failed_items, cmp_u64);
    /* Items an earlier run did are "skipped", not counted again. */
    s.ok -= r->reused_by[ST_OK];
    s.failed -= r->reused_by[ST_FAILED];
    s.crashed -= r->reused_by[ST_CRASHED];
    s.timed_out -= r->reused_by[ST_TIMED_OUT];
    s.quarantined -= r->reused_by[ST_QUARANTINED];
    weft__summary_cpu(&s);
    if (!r->opts->quiet && r->source->empty[0]) {
        char where[512];
        fprintf(stderr, "weft: %s: items = '%s': no items (%s): nothing to run\n",
                weft__entry_where(r->cfg->items, where, sizeof where), r->cfg->items->value,
                r->source->empty);
    }
    if (!r->opts->quiet)
        weft__summary_print(stderr, &s);
    if (r->opts->summary_json &&
        weft__summary_write_json(r->opts->summary_json, &s, r->err, ERR_SIZE) != 0)
        fprintf(stderr, "weft: --summary-json: %s\n", r->err);
}

/* The plugin's logf lines go to stderr again before the progress goes. */
static void stop_progress(run_t *r)
{
    r->host.log_line = NULL;
    if (r->eng.log_relay) {
        weft__progress_relay(r->eng.progress, r->eng.log_relay_fd); /* the last lines */
        close(r->eng.log_relay_fd);
        close(r->host.log_fd);
        r->host.log_fd = -1;
        r->eng.log_relay = false;
    }
    weft__progress_stop(&r->eng.progress);
}

/* isolate = process: the workers' logf lines reach the progress through the
 * supervisor, as a thread's do; without the pipe they go to stderr as is. */
static void open_log_relay(run_t *r)
{
    int fds[2];
    if (!r->cfg->isolate_process || pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return;
    r->eng.log_relay = true;
    r->eng.log_relay_fd = fds[0];
    r->host.log_fd = fds[1];
}

static int finish_run(run_t *r, int status)
{
    workers_fini(r);
    /* The workers' last files durable, then their journal entries. */
    weft__jlog_sync(&r->eng, false);
    int sig = weft__signals_first();
    bool halted = atomic_load(&weft__run_halted);
    bool complete = status == 0 && !sig && !halted && !atomic_load(&r->eng.journal_error) &&
                    !atomic_load(&r->eng.commit_failed);
    status = run_finish_plugin(r, status);
    stop_progress(r);
    status = close_outputs(r, status, complete);
    int lost = r->outdir_error ? atomic_load(r->outdir_error) : 0;
    if (lost) {
        /* A full disk under the plugin's files is not items that failed. */
        fprintf(stderr, "weft: the plugin's output files in %s could not be written: %s (%s)\n",
                r->outdir_path ? r->outdir_path : "its folder", strerror(-lost),
                atomic_load(&r->eng.commit_failed)
                    ? "a group of them could not be made durable: see above"
                    : "the failed items name them");
        status = WEFT_EXIT_OUTPUT;
    }
    uint64_t bad = total_items(r) - r->counts[ST_OK] - r->counts[ST_NOT_RUN];
    if (r->printed < bad)
        fprintf(stderr, "weft: ... and %" PRIu64 " more failed items\n", bad - r->printed);
    const char *label = "ok";
    if (status == WEFT_EXIT_OUTPUT) {
        label = "output error";
    } else if (status == 0 && sig) {
        status = 128 + sig;
        label = "interrupted";
    } else if (status == 0 && halted) {
        status = WEFT_EXIT_HALTED;
        label = "halted";
        const weft__halt_t *h = &r->cfg->halt;
        if (h->fail_count)
            fprintf(stderr, "weft: halted by the failure policy (halt = %s,fail=%" PRIu64 ")\n",
                    h->mode == WEFT__HALT_NOW ? "now" : "soon", h->fail_count);
        else
            fprintf(stderr, "weft: halted by the failure policy (halt = %s,fail=%g%%)\n",
                    h->mode == WEFT__HALT_NOW ? "now" : "soon", h->fail_percent);
    } else if (status == 0 && bad) {
        status = WEFT_EXIT_ITEMS_FAILED;
        label = "failed";
    } else if (status) {
        label = "failed";
    }
    summarize(r, status, label);
    if ((sig || halted) && status != WEFT_EXIT_OUTPUT) {
        char cmd[RESUME_CMD_SIZE];
        if (r->journaled)
            fprintf(stderr, "weft: %" PRIu64 " items not run; `%s` finishes the run\n",
                    r->counts[ST_NOT_RUN], resume_command(r->opts, cmd, sizeof cmd));
        else
            fprintf(stderr, "weft: %" PRIu64 " items not run (this run keeps no journal)\n",
                    r->counts[ST_NOT_RUN]);
    }
    return status;
}

/* ---- the run ----------------------------------------------------------------- */

static int open_outputs(run_t *r)
{
    if (r->outdir_path &&
        weft__outdir_open(&r->outdir, r->outdir_path, r->err, ERR_SIZE) != 0)
        return usage_error(r->err);
    if (!r->outdir)
        return 0;
    weft__host_set_outdir(&r->host, r->outdir);
    /* Under the lock, no temporary in the folder can be a live run's. */
    size_t stale = weft__outdir_sweep(r->outdir);
    if (stale && !r->opts->quiet)
        fprintf(stderr, "weft: removed %zu temporary file%s left in %s by a run that did not "
                        "finish\n",
                stale, stale == 1 ? "" : "s", r->outdir_path);
    return 0;
}

/* The results file's temporary, created and locked before the plugin's
 * init: a second run writing the same file is refused before it starts
 * anything, whatever its journal setting.  The file already there is
 * untouched until the commit (an error before aborts the temporary). */
static int open_results(run_t *r)
{
    int rc = 0;
    if (r->cfg->format == WEFT__FORMAT_NPY)
        rc = weft__npy_open(&r->eng.npy, r->cfg->output, r->err, ERR_SIZE);
    else if (r->eng.writes_records) {
        weft__buf_t header = {0};
        if (r->eng.csv && weft__csv_header(&header, r->cfg->format, r->cfg->columns,
                                           r->cfg->n_columns) != 0) {
            weft__buf_free(&header);
            return usage_error("out of memory");
        }
        weft__writer_settings_t s = {.format = r->cfg->format, .compress = r->cfg->compress,
                                     .header = header.data, .header_len = header.len};
        rc = weft__writer_open_with(&r->eng.writer, r->cfg->output, &s, r->err, ERR_SIZE);
        weft__buf_free(&header);
    }
    return rc ? usage_error(r->err) : 0;
}

/* More workers than CPUs only adds switching for a CPU-bound plugin (one
 * that does not say it waits): said once, not with -q. */
static void warn_oversubscribed(const run_t *r)
{
    unsigned cpus = weft_cpu_count();
    if (r->opts->quiet || r->eng.threads <= cpus ||
        (r->plugin->desc.flags & (WEFT_PLUGIN_IO_BOUND | WEFT_PLUGIN_WAITS)))
        return;
    fprintf(stderr, "weft: warning: threads = %u on %u CPU%s: plugin %s is CPU-bound and runs "
                    "slower oversubscribed (threads = 0 is one per CPU)\n",
            r->eng.threads, cpus, cpus == 1 ? "" : "s", r->plugin->desc.name);
}

static int run_job(run_t *r)
{
    const weft__run_opts_t *o = r->opts;
    int status = prepare(r, o);
    if (status)
        return status;
    r->eng.threads = pick_threads(r);
    if (r->eng.threads > 1 && !o->check_only)
        one_thread_each();
    if (o->check_only && o->check_init && (status = check_init(r)))
        return status;
    if (o->check_only)
        return report_check(r, r->cfg->path);
    warn_oversubscribed(r);

    /* What the engine gets (job.h, weft__engine_t). */
    r->eng.cfg = r->cfg;
    r->eng.plugin = r->plugin;
    r->eng.source = r->source;
    r->eng.retry_failed = o->retry_failed;
    r->eng.child_start = child_start;
    r->eng.child_stop = child_stop;
    r->eng.job = r;
    r->eng.frame = weft__frame_of(r->cfg->format);
    r->eng.csv = r->cfg->format == WEFT__FORMAT_CSV || r->cfg->format == WEFT__FORMAT_TSV;
    r->eng.raw = r->cfg->format == WEFT__FORMAT_RAW;
    r->eng.writes_records = r->cfg->format == WEFT__FORMAT_JSON ||
                            r->cfg->format == WEFT__FORMAT_JSONL || r->eng.csv || r->eng.raw;
    r->eng.plain_values = r->eng.writes_records && !r->eng.csv && !r->eng.raw &&
                          r->cfg->record == WEFT__RECORD_VALUE && !r->cfg->flatten;
    r->eng.null_not_run = r->eng.plain_values && !r->cfg->order_any;
    r->eng.workers = aligned_alloc(64, sizeof(worker_t) * r->eng.threads);
    if (!r->eng.workers)
        return usage_error("out of memory starting the workers");
    /* Whole chunks through process_range when nothing is kept per item:
     * numbers only (a range), no records, no journal, no per-item timeout. */
    r->eng.batch = r->plugin->desc.process_range && r->source->vt->at &&
               r->cfg->format == WEFT__FORMAT_NONE && r->cfg->timeout <= 0 &&
               !r->cfg->isolate_process;
    memset(r->eng.workers, 0, sizeof(worker_t) * r->eng.threads);
    for (unsigned t = 0; t < r->eng.threads; t++)
        r->eng.workers[t].current = UINT64_MAX;
    /* sync = batch: thread workers group their files' commits (a worker
     * process syncs each file itself).  Their subfolder fds may take a
     * quarter of the descriptors, at most 32 each. */
    struct rlimit nofile = {.rlim_cur = 1024};
    getrlimit(RLIMIT_NOFILE, &nofile);
    rlim_t dirs = nofile.rlim_cur / 4 / r->eng.threads;
    for (unsigned t = 0; r->outdir_path && r->cfg->sync == WEFT__SYNC_BATCH &&
                         !r->cfg->isolate_process && t < r->eng.threads;
         t++)
        if (weft__outbatch_new(&r->eng.workers[t].outbatch,
                               dirs > 32 ? 32 : dirs < 1 ? 1 : (unsigned)dirs) != 0)
            return usage_error("out of memory starting the workers");
    r->eng.host = &r->host;

    /* The output folder is locked before init (a second run is refused
     * before anything is written), the journal before any output. */
    host_setup(r);
    /* Shared, so that worker processes' storage errors reach us too. */
    void *shared = mmap(NULL, sizeof *r->outdir_error, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return usage_error("out of memory");
    r->outdir_error = shared;
    r->host.write_error = r->outdir_error;
    if ((status = open_outputs(r)) || (status = open_journal(r)))
        return status;
    if (r->finished_before) {
        if (!o->quiet)
            fprintf(stderr, "weft: %s: nothing to resume: the last run finished every item, "
                            "and %s is complete (keep_journal = true keeps each item's "
                            "record)\n",
                    r->cfg->path, r->cfg->output ? r->cfg->output : "its output");
        return WEFT_EXIT_OK;
    }
    if ((status = open_results(r)) || (status = start_plugin(r)))
        return status;
    if (r->cfg->format == WEFT__FORMAT_NPY && (status = open_array(r)))
        return status;

    weft__progress_start(&r->eng.progress, o->progress,
                         STDERR_FILENO, r->source->total == WEFT__COUNT_UNKNOWN
                                            ? WEFT__PROGRESS_UNKNOWN : r->source->total,
                         r->eng.threads, r->plugin->desc.name);
    if (r->eng.progress) { /* logf lines erase the progress line first */
        r->host.log_arg = r->eng.progress;
        r->host.log_pid = (long)getpid();
        r->host.log_line = weft__progress_log;
        open_log_relay(r);
    }
    if (r->eng.journal || r->eng.scan || r->eng.n_suspects || r->outdir)
        r->eng.batch = false; /* per-item entries, reuse, careful runs, files */
    if ((status = engine_open(r, !r->cfg->isolate_process)))
        return status;
    double t0 = weft__mono_s();
    r->journal_created = r->journal_fresh;
    r->journal_fresh = false; /* from here on it records work */
    if (r->cfg->isolate_process) {
        status = weft__engine_processes(&r->eng);
    } else {
        weft__crash_handlers(&r->eng, true);
        status = weft__engine_threads(&r->eng);
        weft__crash_handlers(&r->eng, false);
    }
    engine_totals(r);
    r->t_items = weft__mono_s() - t0 - r->eng.t_output;
    if (r->t_items < 0)
        r->t_items = 0;
    return finish_run(r, status);
}

int weft__run(const weft__run_opts_t *o)
{
    run_t *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "weft: out of memory\n");
        return WEFT_EXIT_USAGE;
    }
    atomic_store(&weft__run_stop, 0);
    atomic_store(&weft__run_halted, 0);
    r->opts = o;
    r->t_start = weft__mono_s();
    r->started_at = weft__real_s();
    {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        r->eng.wall_mono_ns =
            (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec - weft__mono_ns();
    }
    weft__summary_cpu_start();
    r->eng.journal_synced = r->t_start;
    weft__signals_t saved;
    if (!o->check_only)
        weft__signals_install(&saved);

    int status = run_job(r);

    stop_progress(r);
    if (r->plugin) {
        workers_fini(r);
        if (r->state_live && r->plugin->desc.destroy)
            r->plugin->desc.destroy(r->eng.state);
    }
    weft__writer_abort(&r->eng.writer); /* only after an early error, reported already */
    if (r->eng.journal) {
        /* An early error, before any item ran: a fresh journal goes (it
         * holds nothing), a resumed one is marked as cleanly stopped. */
        if (r->journal_fresh)
            unlink(r->journal_path);
        else if (!r->finished_before) /* a compacted journal stays as it is */
            weft__journal_stop(r->eng.journal);
    }
    weft__npy_abort(&r->eng.npy);
    weft__journal_close(&r->eng.journal);
    weft__jscan_free(&r->eng.scan);
    weft__identity_free(&r->id);
    /* Uncommitted files (a run that failed to start, or stopped in an
     * error) are removed while their folder is still open. */
    for (unsigned t = 0; r->eng.workers && t < r->eng.threads; t++)
        weft__outbatch_free(&r->eng.workers[t].outbatch);
    weft__outdir_close(&r->outdir);
    if (r->outdir_error)
        munmap((void *)r->outdir_error, sizeof *r->outdir_error);
    weft_pool_destroy(&r->eng.pool);
    weft__feed_destroy(&r->eng.feed);
    weft__reorder_destroy(&r->eng.reorder);
    for (unsigned t = 0; r->eng.workers && t < r->eng.threads; t++) {
        weft__buf_free(&r->eng.workers[t].jbuf);
        weft__buf_free(&r->eng.workers[t].msgs);
    }
    free(r->eng.workers);
    free(r->args);
    free(r->outdir_path);
    free(r->journal_path);
    free(r->failed_items);
    free(r->config_abs);
    weft__source_close(&r->source);
    weft__plugin_close(&r->plugin);
    weft__config_free(&r->cfg);
    if (!o->check_only)
        weft__signals_restore(&saved);
    free(r);
    return status;
}

