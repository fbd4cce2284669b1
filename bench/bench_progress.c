/* SPDX-License-Identifier: MIT */
/*
 * bench_progress: what the live progress costs a run.
 *
 *   bench_progress [--quick] [THREADS]     (THREADS default 2)
 *
 * The same weft_pool_for loop of small items (~40 ns each), a
 * weft__progress_add per chunk of 256, in three variants:
 *   bare      no progress calls at all;
 *   off       the calls with a NULL handle (--quiet, or not a terminal);
 *   line      the calls with a reporter thread redrawing a line 10 times a
 *             second on a pseudo-terminal that a reader thread drains, as a
 *             terminal emulator would.
 * Variants are interleaved round by round, in a rotating order; the
 * ratios are medians of the per-round ratios (paired, so drift of a shared
 * machine does not bias them), the best-round ratio (noise only ever adds
 * time) and the median ratio of process CPU time (the reporter's own work,
 * even when it ran on an otherwise idle core).  Target: line / bare <=
 * 1.01.  Then the single-thread cost of one add call.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "progress.h"
#include "util.h" /* weft__mono_s */
#include "weft/weft.h"

#define GRAIN 256

__attribute__((noinline)) static uint64_t item(size_t i)
{
    uint64_t x = i;
    for (unsigned r = 0; r < 8; r++)
        x = bench_mix(x + r);
    return x;
}

enum variant { V_BARE, V_OFF, V_LINE, V_COUNT };
static const char *const vname[V_COUNT] = {"bare", "off (NULL)", "line (reporter)"};

struct job {
    uint64_t *sink; /* one per worker, 64 bytes apart */
    weft__progress_t *p;
    bool calls;
};

static void body(void *ctx, size_t b, size_t e, unsigned worker)
{
    struct job *j = ctx;
    uint64_t acc = 0, failed = 0;
    for (size_t i = b; i < e; i++) {
        uint64_t x = item(i);
        acc += x;
        failed += (x & 1023) == 0;
    }
    j->sink[worker * 8] += acc;
    if (j->calls)
        weft__progress_add(j->p, worker, (e - b) - failed, failed);
}

/* Drains the terminal as an emulator would, until the master closes. */
static void *drain(void *arg)
{
    int fd = *(int *)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        return NULL;
    }
}

/* Process CPU time: the reporter's own work shows here even when a core
 * was idle anyway. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    bool quick = false;
    unsigned threads = 2;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--quick") == 0)
            quick = true;
        else
            threads = (unsigned)atoi(argv[k]);
    }
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "usage: bench_progress [--quick] [THREADS 1-256]\n");
        return 2;
    }
    const size_t n = quick ? 2000000 : 20000000;
    const int rounds = quick ? 3 : 21;

    /* A pseudo-terminal, so that the reporter really draws a line. */
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) || unlockpt(master)) {
        perror("bench_progress: posix_openpt");
        return 1;
    }
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    pthread_t reader;
    if (slave < 0 || pthread_create(&reader, NULL, drain, &master) != 0) {
        perror("bench_progress: pty");
        return 1;
    }

    weft_pool_t *pool = NULL;
    weft_pool_settings_t ps = {.threads = threads};
    if (weft_pool_create(&pool, &ps) != 0) {
        fprintf(stderr, "bench_progress: cannot start the pool\n");
        return 1;
    }
    uint64_t *sink = aligned_alloc(64, 64 * (size_t)threads);
    memset(sink, 0, 64 * (size_t)threads);
    double t[V_COUNT][64], ratio[V_COUNT][64], c[V_COUNT][64], cratio[V_COUNT][64];
    unsigned long long updates = 0;
    double line_time = 0;

    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        for (int k = 0; k < V_COUNT; k++) {
            int v = (k + (r < 0 ? 0 : r)) % V_COUNT; /* rotated: no position bias */
            struct job j = {.sink = sink, .calls = v != V_BARE};
            double c0 = cpu_s(), t0 = weft__mono_s();
            if (v == V_LINE && weft__progress_start(&j.p, WEFT__PROGRESS_LINE, slave, n,
                                                    threads, "bench")) {
                fprintf(stderr, "bench_progress: cannot start the reporter\n");
                return 1;
            }
            weft_pool_for(pool, n, GRAIN, body, &j);
            updates += weft__progress_updates(j.p);
            weft__progress_stop(&j.p); /* start and stop are part of the cost */
            double dt = weft__mono_s() - t0, dc = cpu_s() - c0;
            if (v == V_LINE)
                line_time += dt;
            if (r >= 0)
                t[v][r] = dt, c[v][r] = dc;
            bench_pause_ms(20); /* let the machine settle */
        }
        if (r >= 0)
            for (int v = 0; v < V_COUNT; v++) {
                ratio[v][r] = t[v][r] / t[V_BARE][r];
                cratio[v][r] = c[v][r] / c[V_BARE][r];
            }
    }

    printf("bench_progress: %zu items, chunks of %d, %u threads, %d rounds\n", n, GRAIN,
           threads, rounds);
    printf("%-16s %9s %9s %11s %11s %11s\n", "variant", "ns/item", "best", "wall ratio",
           "best ratio", "cpu ratio");
    double best_bare = 1e300;
    for (int r = 0; r < rounds; r++)
        best_bare = t[V_BARE][r] < best_bare ? t[V_BARE][r] : best_bare;
    for (int v = 0; v < V_COUNT; v++) {
        double best = 1e300;
        for (int r = 0; r < rounds; r++)
            best = t[v][r] < best ? t[v][r] : best;
        double med = bench_median(t[v], rounds);
        printf("%-16s %9.2f %9.2f %11.4f %11.4f %11.4f\n", vname[v],
               med * 1e9 / (double)n, best * 1e9 / (double)n,
               bench_median(ratio[v], rounds), best / best_bare,
               bench_median(cratio[v], rounds));
    }
    printf("reporter updates drawn: %llu (%.1f a second)\n", updates,
           (double)updates / line_time);

    /* One add call, single thread, reporter running. */
    weft__progress_t *p = NULL;
    weft__progress_start(&p, WEFT__PROGRESS_LINE, slave, UINT64_MAX, 1, "bench");
    const uint64_t calls = quick ? 10000000 : 100000000;
    double t0 = weft__mono_s();
    for (uint64_t k = 0; k < calls; k++)
        weft__progress_add(p, 0, 1, k & 1);
    double dt = weft__mono_s() - t0;
    weft__progress_stop(&p);
    printf("weft__progress_add: %.2f ns per call (1 thread, reporter running)\n",
           dt * 1e9 / (double)calls);

    weft_pool_destroy(&pool);
    close(slave); /* the last slave fd: the reader's read fails (EIO), it ends */
    pthread_join(reader, NULL);
    close(master);
    free(sink);
    return 0;
}
