/* SPDX-License-Identifier: MIT */
/*
 * The engine's own cost, as whole `weft run CONFIG -q` runs of the add_one
 * plugin, each a child process (posix_spawn, wait4; stdout and stderr to
 * /dev/null), timed with CLOCK_MONOTONIC from the spawn to the reaping:
 *
 *   1. jsonl   add_one over 10^7 items into a JSONL file, threads = 1 and
 *              threads = 2, against a hand-written serial C writer of the
 *              same bytes in this process: i + 1 for i in [0, N), one per
 *              line, a two-digits-at-a-time integer-to-decimal routine into
 *              a 1 MiB buffer flushed with write(2), then what
 *              weft__writer_close does (core/output/output.c): fsync of the file,
 *              close, rename of the hidden `.NAME.partial` over NAME, fsync
 *              of the folder.  The files must be byte-identical (compared
 *              in round 1).  Ratios weft_j1/C, weft_j2/C, weft_j2/weft_j1,
 *              and weft's peak RSS (wait4's ru_maxrss) in the j2 run.
 *   2. none    output = none, threads = 2 at N = 10^5 ... 10^8: wall ns/item,
 *              the fixed cost (T(10^5) - 10^5 x the per-item slope between
 *              10^7 and 10^8), ns/item at 10^8 over ns/item at 10^5, and
 *              the per-item slopes 10^5..10^6 over 10^7..10^8 (the cost of
 *              an item at either end, the fixed cost aside).
 *   3. isolate 10^6 items, output = none, threads = 2, with and without
 *              isolate = process: the ratio process / thread.
 *
 * All in the same rounds, interleaved, after a warm-up of each; ratios are
 * the medians of the per-round ratios, times the medians of the rounds.
 * The weft figures include the process start (fork, exec, config, dlopen:
 * ~1 ms, bench_startup); the C writer's do not.  journal = off everywhere.
 * The 10^8 run gets fewer rounds (at least 2) when the warm-up projects the
 * whole bench past ~80 s; the output says so.
 *
 *   bench_engine WEFT_EXE [PLUGIN_DIR]
 *
 * PLUGIN_DIR defaults to the `plugins` folder beside WEFT_EXE;
 * BENCH_ENGINE_ROUNDS (default 5) sets the number of rounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "util.h" /* weft__mono_s */

enum {
    THREADS = 2,
    ROUNDS = 5,
    ROUNDS_MAX = 100,
    BIG_ROUNDS_MIN = 2,
    WRITE_BUF = 1 << 20, /* weft's WRITER_BUF */
};

#define N_JSONL 10000000ull
#define N_ISOLATE 1000000ull
#define BUDGET_S 80.0 /* the whole bench, warm-up included */

static const unsigned long long none_n[] = {100000ull, 1000000ull, 10000000ull,
                                            100000000ull};
enum { N_NONE = sizeof none_n / sizeof none_n[0], BIG = N_NONE - 1 };

/* ---- the C writer ---------------------------------------------------------- */

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static unsigned dec_digits(uint64_t v)
{
    unsigned n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* v in decimal at o, two digits per division; the length. */
static inline unsigned u64_dec(uint64_t v, char *o)
{
    unsigned len = dec_digits(v), k = len;
    while (v >= 100) {
        unsigned p = (unsigned)(v % 100) * 2;
        v /= 100;
        o[--k] = digit_pairs[p + 1];
        o[--k] = digit_pairs[p];
    }
    if (v >= 10) {
        o[1] = digit_pairs[v * 2 + 1];
        o[0] = digit_pairs[v * 2];
    } else {
        o[0] = (char)('0' + v);
    }
    return len;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w > 0)
            p += w, n -= (size_t)w;
        else if (w < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    return 0;
}

static char wbuf[WRITE_BUF];

/* i + 1 for i in [0, n), a line each, into dir/name as weft writes a file:
 * under `.name.partial`, fsync, close, rename, fsync of the folder.  The
 * clock when the last write(2) returned into t_written. */
static int c_writer(const char *dir, const char *name, uint64_t n, double *t_written)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.partial", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "bench_engine: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    size_t fill = 0;
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        if (fill > WRITE_BUF - 21) {
            rc = write_all(fd, wbuf, fill);
            fill = 0;
        }
        fill += u64_dec(i + 1, wbuf + fill);
        wbuf[fill++] = '\n';
    }
    if (rc == 0 && fill)
        rc = write_all(fd, wbuf, fill);
    *t_written = weft__mono_s();
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    if (close(fd) != 0 && rc == 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0)
            rc = -1;
        if (dfd >= 0)
            close(dfd);
    }
    if (rc != 0) {
        fprintf(stderr, "bench_engine: the C writer: %s\n", strerror(errno));
        unlink(tmp);
    }
    return rc;
}

/* 0 when a and b hold the same bytes; else says where they differ. */
static int same_bytes(const char *a, const char *b)
{
    static char ba[1 << 20], bb[1 << 20];
    int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
    int rc = -1;
    if (fa < 0 || fb < 0) {
        fprintf(stderr, "bench_engine: cmp: %s: %s\n", fa < 0 ? a : b, strerror(errno));
        goto out;
    }
    uint64_t off = 0;
    for (;;) {
        /* Regular files: a short read only at the end. */
        ssize_t na = read(fa, ba, sizeof ba), nb = read(fb, bb, sizeof bb);
        if (na < 0 || nb < 0) {
            fprintf(stderr, "bench_engine: cmp: %s\n", strerror(errno));
            goto out;
        }
        size_t m = (size_t)(na < nb ? na : nb);
        for (size_t k = 0; k < m; k++)
            if (ba[k] != bb[k]) {
                fprintf(stderr, "bench_engine: %s %s differ: byte %llu\n", a, b,
                        (unsigned long long)(off + k + 1));
                goto out;
            }
        if (na != nb) {
            fprintf(stderr, "bench_engine: cmp: EOF on %s after byte %llu\n",
                    na < nb ? a : b, (unsigned long long)(off + m));
            goto out;
        }
        if (na == 0)
            break;
        off += (uint64_t)na;
    }
    rc = 0;
out:
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    return rc;
}

/* ---- weft run ----------------------------------------------------------- */

typedef struct cfg {
    char path[4096];
} cfg_t;

/* output NULL: output = none. */
static int write_cfg(cfg_t *c, const char *dir, const char *name, unsigned long long items,
                     const char *output, int threads, bool isolate_process,
                     const char *plugins)
{
    snprintf(c->path, sizeof c->path, "%s/%s", dir, name);
    FILE *f = fopen(c->path, "w");
    if (!f) {
        fprintf(stderr, "bench_engine: %s: %s\n", c->path, strerror(errno));
        return -1;
    }
    fprintf(f, "[run]\nplugin = add_one\nitems = %llu\n", items);
    if (output)
        fprintf(f, "output = %s\nformat = jsonl\n", output);
    else
        fprintf(f, "output = none\nformat = none\n");
    fprintf(f, "threads = %d\njournal = off\n", threads);
    if (isolate_process)
        fprintf(f, "isolate = process\n");
    fprintf(f, "plugin_path = %s\n\n[args]\nstep = 1\n", plugins);
    return fclose(f) == 0 ? 0 : -1;
}

static const char *weft_exe;

typedef struct run {
    double s;
    long maxrss_kib;
} run_t;

static int dev_null = -1; /* weft's stdout, and its stderr when quiet */

/* One `weft run CFG -q`: its wall time and peak RSS.  -1 when it failed
 * (it is then run once more with its stderr on ours, to say why). */
static int run_weft(const cfg_t *c, run_t *out)
{
    char *argv[] = {(char *)weft_exe, "run", (char *)c->path, "-q", NULL};
    for (int loud = 0; loud < 2; loud++) {
        double t0 = weft__mono_s();
        pid_t pid = bench_spawn(argv, dev_null, loud ? -1 : dev_null);
        int status;
        struct rusage ru;
        if (pid < 0 || bench_reap(pid, &status, &ru) != 0)
            return -1;
        double t = weft__mono_s() - t0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            if (loud)
                break; /* failed once, not twice: still a failure */
            out->s = t;
            out->maxrss_kib = ru.ru_maxrss;
            return 0;
        }
        if (!loud)
            fprintf(stderr, "bench_engine: weft run %s failed (status 0x%x), again:\n",
                    c->path, (unsigned)status);
    }
    return -1;
}

/* ---- main ---------------------------------------------------------------- */

typedef struct rounds {
    double c[ROUNDS_MAX], c_sync[ROUNDS_MAX], j1[ROUNDS_MAX], j2[ROUNDS_MAX];
    double j1_c[ROUNDS_MAX], j2_c[ROUNDS_MAX], j2_j1[ROUNDS_MAX];
    double rss_j2[ROUNDS_MAX];
    double none[N_NONE][ROUNDS_MAX];
    double thr[ROUNDS_MAX], proc[ROUNDS_MAX], proc_thr[ROUNDS_MAX];
} rounds_t;

static rounds_t r;

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_engine WEFT_EXE [PLUGIN_DIR]\n");
        return 2;
    }
    int rounds = ROUNDS;
    const char *env = getenv("BENCH_ENGINE_ROUNDS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 1 || v > ROUNDS_MAX) {
            fprintf(stderr, "bench_engine: BENCH_ENGINE_ROUNDS must be 1 to %d, not '%s'\n",
                    ROUNDS_MAX, env);
            return 2;
        }
        rounds = (int)v;
    }

    char *exe, *plugins;
    if (bench_weft_paths(argv[1], argc > 2 ? argv[2] : NULL, &exe, &plugins) != 0)
        return 2;
    weft_exe = exe;
    dev_null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (dev_null < 0) {
        perror("bench_engine: /dev/null");
        return 2;
    }

    double t_start = weft__mono_s();
    char load_start[64], load_end[64];
    bench_loadavg(load_start, sizeof load_start);

    char dir[] = "/tmp/weft-bench-engine-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_engine: mkdtemp");
        return 1;
    }
    char out_weft[4096], out_c[4096];
    snprintf(out_weft, sizeof out_weft, "%s/o.jsonl", dir);
    snprintf(out_c, sizeof out_c, "%s/c.jsonl", dir);
    cfg_t j1, j2, none[N_NONE], thr, proc;
    int rc = 0;
    bool identical = true;
    if (write_cfg(&j1, dir, "j1.ini", N_JSONL, out_weft, 1, false, plugins) ||
        write_cfg(&j2, dir, "j2.ini", N_JSONL, out_weft, 2, false, plugins) ||
        write_cfg(&thr, dir, "thread.ini", N_ISOLATE, NULL, THREADS, false, plugins) ||
        write_cfg(&proc, dir, "process.ini", N_ISOLATE, NULL, THREADS, true, plugins)) {
        rc = 1;
        goto out;
    }
    for (int k = 0; k < N_NONE; k++) {
        char name[32];
        snprintf(name, sizeof name, "none%d.ini", k);
        if (write_cfg(&none[k], dir, name, none_n[k], NULL, THREADS, false, plugins)) {
            rc = 1;
            goto out;
        }
    }

    /* Warm-up: the page cache, the plugin, the files' first allocation;
     * and the projection of a round's time. */
    run_t w;
    double t0 = weft__mono_s(), t_written;
    if (c_writer(dir, "c.jsonl", N_JSONL, &t_written) != 0) {
        rc = 1;
        goto out;
    }
    double round_small = weft__mono_s() - t0, round_big = 0;
    const cfg_t *warm[] = {&j1, &j2, &thr, &proc, &none[0], &none[1], &none[2], &none[BIG]};
    for (size_t k = 0; k < sizeof warm / sizeof warm[0]; k++) {
        if (run_weft(warm[k], &w)) {
            rc = 1;
            goto out;
        }
        if (warm[k] == &none[BIG])
            round_big = w.s;
        else
            round_small += w.s;
    }
    round_small += 0.02 * 9; /* the pauses */
    int big_rounds = rounds;
    double left = BUDGET_S - (weft__mono_s() - t_start) - rounds * round_small;
    if (left < rounds * round_big) {
        big_rounds = left > 0 ? (int)(left / round_big) : 0;
        if (big_rounds < BIG_ROUNDS_MIN)
            big_rounds = BIG_ROUNDS_MIN;
        if (big_rounds > rounds)
            big_rounds = rounds;
    }

    printf("bench_engine: add_one through whole `weft run -q` processes, %d rounds "
           "interleaved, %ld CPUs online\n",
           rounds, sysconf(_SC_NPROCESSORS_ONLN));
    printf("  load average at the start: %s\n", load_start);
    if (big_rounds < rounds)
        printf("  N = 10^8 runs in only the first %d of the %d rounds: the warm-up "
               "(%.2f s a round + %.2f s for 10^8) projected more than ~%.0f s\n",
               big_rounds, rounds, round_small, round_big, BUDGET_S);

    for (int k = 0; k < rounds; k++) {
        run_t a, b;
        /* 1. JSONL: the C writer, then weft on 1 and 2 threads. */
        t0 = weft__mono_s();
        if (c_writer(dir, "c.jsonl", N_JSONL, &t_written) != 0) {
            rc = 1;
            goto out;
        }
        r.c[k] = weft__mono_s() - t0;
        r.c_sync[k] = weft__mono_s() - t_written;
        bench_pause_ms(20);
        if (run_weft(&j1, &a)) {
            rc = 1;
            goto out;
        }
        if (k == 0 && same_bytes(out_weft, out_c) != 0)
            rc = 1, identical = false;
        bench_pause_ms(20);
        if (run_weft(&j2, &b)) {
            rc = 1;
            goto out;
        }
        if (k == 0 && same_bytes(out_weft, out_c) != 0)
            rc = 1, identical = false;
        r.j1[k] = a.s, r.j2[k] = b.s;
        r.j1_c[k] = a.s / r.c[k], r.j2_c[k] = b.s / r.c[k], r.j2_j1[k] = b.s / a.s;
        r.rss_j2[k] = (double)b.maxrss_kib / 1024;
        bench_pause_ms(20);

        /* 2. output = none at each N. */
        for (int n = 0; n < N_NONE; n++) {
            if (n == BIG && k >= big_rounds)
                continue;
            if (run_weft(&none[n], &a)) {
                rc = 1;
                goto out;
            }
            r.none[n][k] = a.s;
            bench_pause_ms(20);
        }

        /* 3. isolate = thread, then process. */
        if (run_weft(&thr, &a)) {
            rc = 1;
            goto out;
        }
        bench_pause_ms(20);
        if (run_weft(&proc, &b)) {
            rc = 1;
            goto out;
        }
        r.thr[k] = a.s, r.proc[k] = b.s, r.proc_thr[k] = b.s / a.s;
        bench_pause_ms(20);
    }

    struct stat st;
    long long bytes = stat(out_c, &st) == 0 ? (long long)st.st_size : -1;
    printf("\n1. add_one over 10^7 items -> JSONL (%lld bytes), against a serial C writer "
           "of the same bytes\n",
           bytes);
    printf("  %5s %8s %9s %9s %9s %9s %9s %9s\n", "round", "C ms", "j1 ms", "j2 ms", "j1/C",
           "j2/C", "j2/j1", "j2 RSS");
    for (int k = 0; k < rounds; k++)
        printf("  %5d %8.1f %9.1f %9.1f %9.2f %9.2f %9.2f %6.1f MiB\n", k + 1, r.c[k] * 1e3,
               r.j1[k] * 1e3, r.j2[k] * 1e3, r.j1_c[k], r.j2_c[k], r.j2_j1[k], r.rss_j2[k]);
    printf("  %5s %8.1f %9.1f %9.1f %9.2f %9.2f %9.2f %6.1f MiB\n", "median",
           bench_median(r.c, rounds) * 1e3, bench_median(r.j1, rounds) * 1e3,
           bench_median(r.j2, rounds) * 1e3, bench_median(r.j1_c, rounds),
           bench_median(r.j2_c, rounds), bench_median(r.j2_j1, rounds),
           bench_median(r.rss_j2, rounds));
    printf("  weft_j1/C %.2f   weft_j2/C %.2f   weft_j2/weft_j1 %.2f   (medians of the "
           "per-round ratios)\n",
           bench_median(r.j1_c, rounds), bench_median(r.j2_c, rounds),
           bench_median(r.j2_j1, rounds));
    printf("  weft j2 peak RSS (wait4 ru_maxrss): median %.1f MiB\n",
           bench_median(r.rss_j2, rounds));
    printf("  C %.2f ns/item, weft j1 %.2f, j2 %.2f (wall, fsync + rename included)\n",
           bench_median(r.c, rounds) * 1e9 / (double)N_JSONL,
           bench_median(r.j1, rounds) * 1e9 / (double)N_JSONL,
           bench_median(r.j2, rounds) * 1e9 / (double)N_JSONL);
    printf("  of the C writer's time, fsync + close + rename + fsync of the folder: "
           "median %.1f ms\n",
           bench_median(r.c_sync, rounds) * 1e3);
    printf("  files %s in round 1\n", identical ? "byte-identical (weft j1 and j2 against C)" : "DIFFER");

    printf("\n2. add_one, output = none, threads = %d: wall time per item\n", THREADS);
    double med[N_NONE];
    for (int n = 0; n < N_NONE; n++) {
        int m = n == BIG ? big_rounds : rounds;
        med[n] = bench_median(r.none[n], m);
        printf("  N = %-10llu %10.2f ms %8.3f ns/item   (median of %d rounds:", none_n[n],
               med[n] * 1e3, med[n] * 1e9 / (double)none_n[n], m);
        for (int k = 0; k < m; k++)
            printf(" %.1f", r.none[n][k] * 1e3);
        printf(" ms)\n");
    }
    double slope = (med[BIG] - med[BIG - 1]) / (double)(none_n[BIG] - none_n[BIG - 1]);
    double fixed = med[0] - (double)none_n[0] * slope;
    printf("  per-item slope 10^7..10^8: %.3f ns/item\n", slope * 1e9);
    printf("  fixed cost: T(10^5) - 10^5 x slope = %.2f ms\n", fixed * 1e3);
    double per_big = med[BIG] / (double)none_n[BIG], per_small = med[0] / (double)none_n[0];
    printf("  ns/item at 10^8 / ns/item at 10^5 = %.3f   (10^5 costs %.1fx more per item)\n",
           per_big / per_small, per_small / per_big);
    /* The per-item cost itself at the small end, the fixed cost aside. */
    double slope_small = (med[1] - med[0]) / (double)(none_n[1] - none_n[0]);
    printf("  per-item slope 10^5..10^6: %.3f ns/item, over the slope 10^7..10^8: %.2f\n",
           slope_small * 1e9, slope_small / slope);

    printf("\n3. add_one over 10^6 items, output = none, threads = %d: isolate = process "
           "against thread\n",
           THREADS);
    printf("  %5s %10s %10s %14s\n", "round", "thread ms", "process ms", "process/thread");
    for (int k = 0; k < rounds; k++)
        printf("  %5d %10.2f %10.2f %14.2f\n", k + 1, r.thr[k] * 1e3, r.proc[k] * 1e3,
               r.proc_thr[k]);
    printf("  %5s %10.2f %10.2f %14.2f   (ratio: median of the per-round ratios)\n",
           "median", bench_median(r.thr, rounds) * 1e3,
           bench_median(r.proc, rounds) * 1e3, bench_median(r.proc_thr, rounds));
    printf("  process %.1f ns/item, thread %.1f ns/item (wall)\n",
           bench_median(r.proc, rounds) * 1e9 / (double)N_ISOLATE,
           bench_median(r.thr, rounds) * 1e9 / (double)N_ISOLATE);

    bench_loadavg(load_end, sizeof load_end);
    printf("\n  load average at the start: %s, at the end: %s; %.1f s in all\n",
           load_start, load_end, weft__mono_s() - t_start);

out:
    fflush(stdout);
    {
        static const char *const names[] = {"o.jsonl",     "c.jsonl",     ".o.jsonl.partial",
                                            ".c.jsonl.partial", "j1.ini", "j2.ini",
                                            "thread.ini",  "process.ini", "none0.ini",
                                            "none1.ini",   "none2.ini",   "none3.ini"};
        char p[4096];
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            snprintf(p, sizeof p, "%s/%s", dir, names[k]);
            unlink(p);
        }
        rmdir(dir);
    }
    free(exe);
    free(plugins);
    return rc;
}
