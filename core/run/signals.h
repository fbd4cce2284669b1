/* SPDX-License-Identifier: MIT */
/*
 * A job's signals.  The first SIGINT/SIGTERM/SIGHUP asks the run to stop
 * soon (weft__run_stop = 1: the items in flight finish, the output is
 * complete up to them) and is forwarded to the process groups of the
 * children plugins announced (weft__children_forward): a command ends as
 * it would at the terminal, and its item is recorded as not run, so
 * --resume runs it again.  A second exits at once, killing the worker
 * processes and whatever the plugins started (the journal keeps what was
 * done).  In thread mode a crash in the plugin takes weft down, but first
 * the journal learns which items were running (one CRASH record), so that
 * a second crash of the same item quarantines it on resume.
 */
#ifndef WEFT_CORE_RUN_SIGNALS_H
#define WEFT_CORE_RUN_SIGNALS_H

#include <signal.h>

#include "job.h"

typedef struct weft__signals {
    struct sigaction old_int, old_term, old_hup, old_pipe, old_xfsz;
} weft__signals_t;

/* SIGINT, SIGTERM and SIGHUP handlers for the run (the earlier ones kept;
 * a SIGHUP ignored before, as under nohup, stays ignored), and
 * SIGPIPE and SIGXFSZ ignored: a write into a pipe nobody reads, or past
 * `ulimit -f`, is a write error (EPIPE, EFBIG) that says which file, not
 * the end of weft.  (exec's commands get SIGPIPE's default back, and that
 * of SIGINT/SIGTERM/SIGHUP, which worker processes ignore; worker
 * processes reset SIGPIPE too.) */
void weft__signals_install(weft__signals_t *saved);
void weft__signals_restore(const weft__signals_t *saved);

/* The first SIGINT/SIGTERM/SIGHUP since the install, or 0. */
int weft__signals_first(void);

/* Process mode: the supervisor a second signal must kill, or NULL. */
void weft__signals_set_iso(weft__iso_t *iso);

/* Thread mode, on or off: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT
 * journal the items running in r before weft dies of them; so does a
 * plugin's exit(), which then ends weft with WEFT_EXIT_OUTPUT and says so. */
void weft__crash_handlers(weft__engine_t *r, bool on);

#endif
