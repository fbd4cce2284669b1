/* SPDX-License-Identifier: MIT */
/*
 * The end-of-run summary: a human one on stderr, and a JSON file for
 * scripts (--summary-json).
 *
 * Item counts are disjoint: every item of the source is exactly one of ok,
 * failed (process_one said so), crashed, timed_out, quarantined (refused
 * because it crashed runs before), skipped (done by an earlier run and not
 * run again) or not_run (halted, interrupted); when total is known they add
 * up to it.
 */
#ifndef WEFT_CORE_SUMMARY_H
#define WEFT_CORE_SUMMARY_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct weft__summary {
    const char *plugin;
    unsigned threads;
    const char *isolate;    /* "thread" | "process"                            */
    uint64_t total;         /* items in the source, UINT64_MAX unknown         */
    uint64_t ok, failed, crashed, timed_out, quarantined,
             skipped,       /* done by an earlier run                          */
             not_run;
    double wall_s, cpu_user_s, cpu_sys_s; /* cpu: weft__summary_cpu()          */
    double init_s, items_s, finish_s, output_s; /* phases, seconds             */
    const char *status;     /* "ok" | "failed" | "halted" | "interrupted" |
                               "output error"                                  */
    int exit_code;
    /* Where and when (NULL: none; times are CLOCK_REALTIME seconds). */
    const char *config, *output, *journal;
    double started_at, ended_at;
    /* The items that did not end ok (failed, crashed, timed out,
     * quarantined), sorted; at most WEFT__SUMMARY_FAILED_MAX of them, and
     * failed_truncated when there were more. */
    const uint64_t *failed_items;
    size_t n_failed_items;
    bool failed_truncated;
} weft__summary_t;

#define WEFT__SUMMARY_FAILED_MAX 100000u

/* cpu_user_s and cpu_sys_s from getrusage: this process and its waited-for
 * children (process isolation's workers, exec's commands), since
 * weft__summary_cpu_start (a shell's `exec weft` carries over what the
 * shell and its children used before). */
void weft__summary_cpu_start(void);
void weft__summary_cpu(weft__summary_t *s);

/* Human summary: 2 lines, e.g.
 *   weft: noise_png: 1998 ok, 2 failed, 0 not run in 0.710 s (2817 items/s, 2 threads)
 *   weft: cpu 1.30 s user, 0.12 s sys; init 0.002 s, items 0.690 s, finish 0.000 s,
 *         output 0.010 s  (one line)
 * crashed, timed out, quarantined and "done before" (skipped) appear on the
 * first line when not 0, and the status when it is halted, interrupted or
 * output error.  items/s counts the items this run processed.  The first
 * line's shape "weft: P: N ok, N failed" and "(R items/s, N threads)" is
 * what tests and scripts look for: keep it. */
void weft__summary_print(FILE *f, const weft__summary_t *s);

/* The summary as one JSON object (a trailing newline) to path, atomically:
 * PATH.tmp.PID written, fsynced, renamed over path, folder fsynced.  "-"
 * writes to stdout.  Fields: weft_version, plugin, config, output, journal
 * (paths or null), started_at and ended_at (UTC, ISO 8601 with
 * milliseconds), threads, isolate, status, exit_code, total (null if
 * unknown), ok, failed, crashed, timed_out, quarantined, skipped, not_run,
 * failed_items (sorted indices of the items that did not end ok: at most
 * WEFT__SUMMARY_FAILED_MAX) and failed_items_truncated, wall_s, cpu_user_s,
 * cpu_sys_s, items_per_s, and phases {init_s, items_s, finish_s,
 * output_s}.  Returns 0 or a negative errno,
 * with "PATH: reason" in err. */
int weft__summary_write_json(const char *path, const weft__summary_t *s, char *err,
                             size_t errlen);

#endif
