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
};

typedef struct weft__run_opts {
    const char *config_path;
    const char *const *sets; /* "section.key=value" overrides, in order    */
    size_t n_sets;
    bool quiet;              /* no summary line                            */
    bool check_only;         /* validate config, plugin, arguments and items,
                                then stop before init: nothing runs        */
} weft__run_opts_t;

/* Runs a job; prints errors and the summary on stderr; returns an exit
 * status from enum weft__exit. */
int weft__run(const weft__run_opts_t *opts);

#endif
