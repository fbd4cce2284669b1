/* SPDX-License-Identifier: MIT */
/*
 * The runner: config -> plugin -> items -> pool -> ordered output.
 *
 * Items are processed a window at a time (adaptive size): workers run
 * process_one and encode each result into their own buffer; a writer thread
 * emits the previous window in input order while the pool computes the
 * next.  Memory therefore stays bounded whatever the item count.
 */
#ifndef WEFT_CORE_RUN_H
#define WEFT_CORE_RUN_H

#include <stdbool.h>
#include <stddef.h>

/* Exit statuses of `weft run`, documented in README.md. */
enum weft__exit {
    WEFT_EXIT_OK = 0,           /* every item ok                           */
    WEFT_EXIT_ITEMS_FAILED = 1, /* some items (or finish) failed; all other
                                   results were written                    */
    WEFT_EXIT_USAGE = 2,        /* usage, config or plugin error: nothing ran */
    WEFT_EXIT_OUTPUT = 3,       /* the results could not be written        */
    WEFT_EXIT_HALTED = 4,       /* the failure policy (halt = ...) stopped the
                                   run; everything done was written        */
    /* Interrupted by SIGINT / SIGTERM: 128 + the signal number (130, 143),
     * the shell's convention; everything done was written. */
};

/* How the live progress is shown on stderr. */
typedef enum weft__progress_mode {
    WEFT__PROGRESS_AUTO = 0, /* a line when stderr is a terminal, else none */
    WEFT__PROGRESS_OFF,      /* --quiet, or --progress=off                 */
    WEFT__PROGRESS_LINE,     /* --progress: the line even when not a tty   */
    WEFT__PROGRESS_JSON,     /* --progress=json: one JSON object a second  */
} weft__progress_mode_t;

typedef struct weft__run_opts {
    const char *config_path; /* NULL: no file, the sets say it all (weft run
                                -p PLUGIN ...: weft__config_new)           */
    const char *const *sets; /* "section.key=value" overrides, in order    */
    const char *const *set_origins; /* for each, the option that gave it,
                                       in messages; NULL (or a NULL entry):
                                       "--set"                             */
    size_t n_sets;
    bool quiet;              /* errors only: no progress, no summary       */
    bool check_only;         /* validate config, plugin, arguments and items,
                                then stop before init: nothing runs        */
    bool check_init;         /* check --init: also the plugin's init and
                                destroy (no item, no output)               */
    bool resume;             /* --resume: run only what the journal lacks  */
    bool resume_auto;        /* --resume=auto: resume when there is a
                                journal to resume, else a plain run (a
                                requeued array task needs no other case) */
    bool retry_failed;       /* --retry-failed: resume, and re-run failures */
    bool force;              /* --force: resume although the config, plugin
                                or items changed (changed items re-run)    */
    bool restart;            /* --restart: discard an unfinished journal   */
    weft__progress_mode_t progress;
    const char *summary_json; /* --summary-json FILE, or NULL              */
    /* The command that finishes this job, exactly as typed but for the
     * mode (--resume, or --retry-failed when it was given), shell-quoted:
     * printed after an interrupt and when a plain run is refused.  NULL:
     * "weft run CONFIG --resume". */
    const char *resume_command;
} weft__run_opts_t;

/* Runs a job; prints errors and the summary on stderr; returns an exit
 * status from enum weft__exit. */
int weft__run(const weft__run_opts_t *opts);

#endif
