/* SPDX-License-Identifier: MIT */
/*
 * What the benchmarks share, so that each measures and reports the same
 * way: pauses, medians, the load average, weft as a child process.  The
 * clock is core's (util.h: weft__mono_s), the one the engine times with.
 * Errors are said on stderr under the program's name.
 */
#ifndef WEFT_BENCH_UTIL_H
#define WEFT_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The per-item work of the CPU-bound benches: a 64-bit mixer (splitmix64's
 * finaliser, Stafford's variant 13).  Inline: it is the measured loop. */
static inline uint64_t bench_mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    return x ^ (x >> 33);
}

/* Sleeps ms milliseconds, resuming after signals (lets the machine settle
 * between two timed runs). */
void bench_pause_ms(long ms);

/* The median of v[0..n), n >= 1; v is left as it is (callers print the
 * rounds after their medians). */
double bench_median(const double *v, int n);

/* The 1, 5 and 15 minute load averages into buf, or "?": other processes
 * skew every figure. */
void bench_loadavg(char *buf, size_t size);

/* WEFT_EXE and the plugin folder as absolute paths (both end up in a
 * config and an exec): plugins_arg, or when it is NULL the `plugins`
 * folder beside the executable.  0, or -1 (said); free both. */
int bench_weft_paths(const char *exe_arg, const char *plugins_arg, char **exe,
                     char **plugins);

/* Starts argv[0] (a path) with argv, its stdout on out_fd and its stderr
 * on err_fd, or on ours when err_fd is -1; the other fds should be
 * O_CLOEXEC.  The pid, or -1 (said). */
pid_t bench_spawn(char *const argv[], int out_fd, int err_fd);

/* Waits for pid, resuming after signals: its wait status in *status, its
 * resource use in *ru (when not NULL).  0, or -1 (said). */
int bench_reap(pid_t pid, int *status, struct rusage *ru);

#endif
