/* SPDX-License-Identifier: MIT */
/*
 * The exact 128-bit sum of n^4 for n in [0, N), two ways, in the same run:
 *
 *   omp   a hand-written C + OpenMP loop on THREADS threads: each thread sums
 *         its static share into a local, then stores it in its own 64-byte
 *         slot (`reduction` has no unsigned __int128), and the slots are
 *         added.  The loop is pow4's: n^2 in 64 bits, one 64x64->128
 *         multiply, the wraps of the sum counted.
 *   weft  a whole `weft run CONFIG -q` of the pow4 plugin as a child process
 *         (posix_spawn, wait4) on THREADS threads, output = none; its total
 *         is what pow4's finish prints on standard output (read through a
 *         pipe).
 *
 * Interleaved over ROUNDS rounds after a warm-up of each; every weft total
 * must equal the OpenMP one, digit for digit.  Prints each round's times and
 * the median of the per-round ratios weft / omp.  The weft figure includes
 * the process start (fork, exec, config, dlopen: ~1 ms, bench_startup).
 *
 *   bench_pow4 WEFT_EXE [N] [PLUGIN_DIR]
 *
 * N defaults to 5*10^7 (the sum must fit in 128 bits: N < ~7*10^7).
 * PLUGIN_DIR defaults to the `plugins` folder beside WEFT_EXE.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "u128_decimal.h"
#include "util.h" /* weft__mono_s */

enum { THREADS = 2, ROUNDS = 5 };

/* ---- OpenMP ------------------------------------------------------------- */

typedef struct slot {
    alignas(64) u128 sum; /* one cache line per thread */
    uint64_t carries;
} slot_t;

static slot_t slots[THREADS];

/* 0, or -1 when the sum wrapped (N too large). */
static int omp_sum(uint64_t n_items, u128 *total)
{
#pragma omp parallel num_threads(THREADS)
    {
        u128 s = 0;
        uint64_t c = 0;
#pragma omp for schedule(static)
        for (uint64_t n = 0; n < n_items; n++) {
            uint64_t sq = n * n;
            c += __builtin_add_overflow(s, (u128)sq * sq, &s);
        }
        slots[omp_get_thread_num()].sum = s;
        slots[omp_get_thread_num()].carries = c;
    }
    u128 t = 0;
    uint64_t c = 0;
    for (int k = 0; k < THREADS; k++) {
        c += slots[k].carries + __builtin_add_overflow(t, slots[k].sum, &t);
        slots[k].sum = 0;
        slots[k].carries = 0;
    }
    *total = t;
    return c ? -1 : 0;
}

/* ---- weft run ----------------------------------------------------------- */

/* Runs argv with stdout into a pipe; the output, trimmed, into out.  0 or -1
 * (the child failed: its stderr went to ours). */
static int spawn_capture(char *const argv[], char *out, size_t out_size)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        perror("bench_pow4: pipe");
        return -1;
    }
    pid_t pid = bench_spawn(argv, fds[1], -1);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        char buf[256];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t take = (size_t)n < out_size - 1 - len ? (size_t)n : out_size - 1 - len;
        memcpy(out + len, buf, take);
        len += take;
    }
    close(fds[0]);
    out[len] = '\0';
    while (len > 0 &&
           (out[len - 1] == '\n' || out[len - 1] == ' ' || out[len - 1] == '\r'))
        out[--len] = '\0';
    int status;
    if (bench_reap(pid, &status, NULL) != 0)
        return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_pow4: weft run failed (status 0x%x)\n", (unsigned)status);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: bench_pow4 WEFT_EXE [N] [PLUGIN_DIR]\n");
        return 2;
    }
    uint64_t n_items = 50000000;
    if (argc > 2) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[2], &end, 10);
        if (errno || end == argv[2] || *end || v == 0) {
            fprintf(stderr, "bench_pow4: N must be a positive integer, not '%s'\n",
                    argv[2]);
            return 2;
        }
        n_items = v;
    }
    /* sum n^4 over [0, N) is about N^5/5: it must fit in 128 bits. */
    if (n_items > 0xFFFFFFFFu || powl((long double)n_items, 5) / 5 >= ldexpl(1, 128)) {
        fprintf(stderr, "bench_pow4: N = %llu: the sum would not fit in 128 bits\n",
                (unsigned long long)n_items);
        return 2;
    }

    char *exe, *plugins;
    if (bench_weft_paths(argv[1], argc > 3 ? argv[3] : NULL, &exe, &plugins) != 0)
        return 2;

    char dir[] = "/tmp/weft-bench-pow4-XXXXXX", cfg[64];
    if (!mkdtemp(dir)) {
        perror("bench_pow4: mkdtemp");
        return 1;
    }
    snprintf(cfg, sizeof cfg, "%s/pow4.ini", dir);
    FILE *f = fopen(cfg, "w");
    if (!f) {
        perror("bench_pow4: the config");
        return 1;
    }
    fprintf(f,
            "[run]\nplugin = pow4\nitems = %llu\noutput = none\njournal = off\n"
            "threads = %d\nplugin_path = %s\n",
            (unsigned long long)n_items, THREADS, plugins);
    fclose(f);
    char *weft_argv[] = {exe, "run", cfg, "-q", NULL};

    int rc = 0;
    u128 omp_total;
    char want[48], got[256];
    double t_omp[ROUNDS], t_weft[ROUNDS], ratio[ROUNDS];

    /* Warm-up: OpenMP's threads, the page cache, the plugin. */
    if (omp_sum(n_items, &omp_total) != 0) {
        fprintf(stderr, "bench_pow4: the sum wrapped 128 bits\n");
        rc = 1;
        goto out;
    }
    u128_to_decimal(omp_total, want);
    bench_pause_ms(50); /* libgomp's spinning threads must not take weft's CPUs */
    if (spawn_capture(weft_argv, got, sizeof got) != 0) {
        rc = 1;
        goto out;
    }

    printf("bench_pow4: sum of n^4 for n in [0, %llu), %d threads, %d rounds\n",
           (unsigned long long)n_items, THREADS, ROUNDS);
    printf("  total %s\n", want);
    printf("  %5s %10s %10s %8s\n", "round", "omp ms", "weft ms", "weft/omp");
    for (int k = 0; k < ROUNDS; k++) {
        u128 t;
        double t0 = weft__mono_s();
        int wrapped = omp_sum(n_items, &t);
        t_omp[k] = weft__mono_s() - t0;
        char text[48];
        u128_to_decimal(t, text);
        if (wrapped || strcmp(text, want) != 0) {
            fprintf(stderr, "bench_pow4: round %d: OpenMP gave %s, before %s\n", k, text,
                    want);
            rc = 1;
        }
        bench_pause_ms(50);

        t0 = weft__mono_s();
        if (spawn_capture(weft_argv, got, sizeof got) != 0) {
            rc = 1;
            goto out;
        }
        t_weft[k] = weft__mono_s() - t0;
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "bench_pow4: round %d: weft printed '%s', OpenMP %s\n", k,
                    got, want);
            rc = 1;
        }
        ratio[k] = t_weft[k] / t_omp[k];
        printf("  %5d %10.2f %10.2f %8.2f\n", k + 1, t_omp[k] * 1e3, t_weft[k] * 1e3,
               ratio[k]);
        fflush(stdout);
        bench_pause_ms(20);
    }
    printf("  median %9.2f %10.2f %8.2f   (ratio: median of the per-round ratios)\n",
           bench_median(t_omp, ROUNDS) * 1e3, bench_median(t_weft, ROUNDS) * 1e3,
           bench_median(ratio, ROUNDS));
    printf("  %.2f ns/item omp, %.2f ns/item weft (wall, %d threads)\n",
           bench_median(t_omp, ROUNDS) * 1e9 / (double)n_items,
           bench_median(t_weft, ROUNDS) * 1e9 / (double)n_items, THREADS);
    printf("  totals %s\n", rc == 0 ? "equal in every round" : "DIFFER");

out:
    unlink(cfg);
    rmdir(dir);
    free(exe);
    free(plugins);
    return rc;
}
