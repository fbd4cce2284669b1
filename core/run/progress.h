/* SPDX-License-Identifier: MIT */
/*
 * Live progress of a run on stderr (or any fd): a reporter thread reads
 * per-worker counters and redraws.
 *
 * Modes (weft__progress_mode_t, core/run/run.h):
 *   AUTO  a redrawn line when fd is a terminal; nothing at all otherwise.
 *   LINE  on a terminal: one line redrawn in place ("\r" + "\033[K"), at
 *         most 10 times a second, truncated to the terminal width (never
 *         wraps); with TERM=dumb or NO_COLOR set, no escape codes: spaces
 *         over what the last frame had more.  Not a terminal: a plain
 *         line, no escape codes, at most one a second.
 *   JSON  one JSON object per line, once a second, and a last one (with
 *         "final":true) at stop.
 *   OFF   nothing; no thread.
 *
 * Counting: done = ok + failed (this run, through _add) + skipped (done by
 * an earlier run, through _skip).  The rate counts only this run's items.
 *
 * Threads: _start, _skip, _set_total, _message and _stop may be called from
 * any one controlling thread (not concurrently with _stop); _add is called
 * by worker `worker` only (its counter slot has a single writer), or by any
 * thread with worker = WEFT__PROGRESS_ANY_WORKER (an atomic add on a shared
 * slot).  Every function accepts p == NULL and then does nothing, so the
 * runner calls them unconditionally.
 */
#ifndef WEFT_CORE_PROGRESS_H
#define WEFT_CORE_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "run.h" /* weft__progress_mode_t */
#include "weft/plugin.h" /* WEFT_PRINTF */

#define WEFT__PROGRESS_UNKNOWN UINT64_MAX   /* total not known             */
#define WEFT__PROGRESS_ANY_WORKER UINT32_MAX /* _add from a non-worker thread */

typedef struct weft__progress weft__progress_t;

/* Starts the reporter.  *p = NULL (and 0) when mode resolves to off:
 * OFF, or AUTO and fd not a terminal.  total: items in the source
 * including those an earlier run did, or WEFT__PROGRESS_UNKNOWN.  workers:
 * counter slots, one per worker thread.  label: shown at the start of the
 * line (the plugin name), copied.  Returns 0 or -ENOMEM / -EAGAIN. */
int weft__progress_start(weft__progress_t **p, weft__progress_mode_t mode, int fd,
                         uint64_t total, unsigned workers, const char *label);

/* Hot path, once per chunk of items: relaxed atomic store on worker's own
 * 64-byte line.  worker < workers, or WEFT__PROGRESS_ANY_WORKER. */
void weft__progress_add(weft__progress_t *p, unsigned worker, uint64_t ok,
                        uint64_t failed);

/* n items done by an earlier run (resume): counted as done, not in the rate. */
void weft__progress_skip(weft__progress_t *p, uint64_t n);

/* The total, when it becomes known late (e.g. stdin at its end). */
void weft__progress_set_total(weft__progress_t *p, uint64_t total);

/* Prints a message (a failed item, a warning) so that it does not mix with
 * the line: clears the line first; the next redraw draws it again.  With
 * p == NULL it goes to stderr as is. */
void weft__progress_message(weft__progress_t *p, const char *fmt, ...) WEFT_PRINTF(2, 3);
/* One whole line (len bytes, its '\n' included) from a plugin's logf: the
 * progress line is erased first and drawn again below it at the next
 * tick, so the two never share a line.  arg is the progress (NULL: the
 * line goes straight to stderr).  The host's log_line. */
void weft__progress_log(void *arg, const char *line, size_t len);
/* isolate = process: the worker processes' logf lines, written whole to a
 * pipe (host log_fd), read here from its non-blocking read end fd and
 * passed to weft__progress_log line by line.  Call it from one thread
 * only (the supervisor's); a line cut by the read waits for its rest. */
void weft__progress_relay(weft__progress_t *p, int fd);

/* A last update, then: terminal line cleared, cursor at column 0; plain
 * and JSON modes end with their last line.  Joins the thread, frees, sets
 * *p = NULL. */
void weft__progress_stop(weft__progress_t **p);

/* How many updates the reporter has written so far (tests: rate limit). */
uint64_t weft__progress_updates(const weft__progress_t *p);

/* ---- pure pieces, exposed for the tests ---------------------------------- */

/* What one update shows. */
typedef struct weft__progress_view {
    const char *label;  /* may be NULL or ""                               */
    uint64_t done;      /* ok + failed + skipped                           */
    uint64_t total;     /* WEFT__PROGRESS_UNKNOWN if unknown               */
    uint64_t failed;
    uint64_t skipped;
    double elapsed_s;
    double rate;        /* items/s (smoothed); < 0 not known yet           */
} weft__progress_view_t;

/* The line, at most width - 1 columns (the last column is left free so
 * that no terminal wraps), NUL-terminated in buf.  width 0 means no limit.
 * Returns its length in bytes. */
size_t weft__progress_format_line(char *buf, size_t size, const weft__progress_view_t *v,
                                  unsigned width);

/* One JSON object, no newline: {"done":N,"total":N|null,"failed":N,
 * "skipped":N,"elapsed_s":X,"rate":X,"eta_s":X|null[,"final":true]}. */
size_t weft__progress_format_json(char *buf, size_t size, const weft__progress_view_t *v,
                                  bool final);

/* Seconds left, or < 0 when not known (no total, no rate yet). */
double weft__progress_eta(const weft__progress_view_t *v);

/* "0:07", "12:34", "1:02:03" (hours unbounded); "?" for < 0. */
void weft__progress_fmt_duration(char *buf, size_t size, double seconds);
/* "0.50/s", "12.3/s", "987/s", "2.82k/s", "1.50M/s"; "?/s" for < 0. */
void weft__progress_fmt_rate(char *buf, size_t size, double per_s);

/* Smoothed rate: the slope over the samples of the last window_s seconds. */
#define WEFT__RATE_SAMPLES 64
typedef struct weft__rate {
    double window_s;
    double t[WEFT__RATE_SAMPLES];
    uint64_t n[WEFT__RATE_SAMPLES];
    unsigned head, count;
} weft__rate_t;
void weft__rate_init(weft__rate_t *r, double window_s);
/* Adds the sample (t seconds, n items so far; t increasing) and returns
 * items/s over the window, or -1 while less than 0.05 s is covered. */
double weft__rate_sample(weft__rate_t *r, double t, uint64_t n);

#endif
