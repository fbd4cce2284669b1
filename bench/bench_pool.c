/* SPDX-License-Identifier: MIT */
/*
 * bench_pool: weft_pool_for against a serial loop and OpenMP, same run.
 *
 *   bench_pool [--quick] [--sweep] [--new-only] [THREADS]   (THREADS default 2)
 *
 * 1. Uniform trivial items (10^7, --quick 10^6): ns/item for serial, weft
 *    (auto grain), OpenMP schedule(static), (guided), (dynamic,1); weft vs
 *    the better of static/guided (target <= 1.10), dynamic,1 vs weft
 *    (target >= 30x), parallel efficiency vs serial.
 * 2. Skewed items, 5% of them 100x heavier, (a) at random positions, (b) all
 *    at the end: weft's makespan against the ideal
 *    max(serial time / threads, largest item) (target <= 1.02).
 *    (With more threads than CPUs, "threads" here means min(threads, cpus).)
 * 3. Long items ("long"): each item sleeps 0.5 s (no CPU), 16 items on a
 *    16-thread pool and 4 on a 4-thread pool: makespan / the ideal 0.5 s,
 *    with OpenMP schedule(dynamic,1) over the same items for comparison.
 * 4. Skewed 20 us items ("skewed 20us"): a 2-thread pool, 20000 items of
 *    ~20 us of busy work (a spin loop on a volatile counter, calibrated once
 *    at start), 5% of them (1000) 100x that; (a) at random positions (fixed
 *    seed), (b) all at the end.  Ideal = serial time / 2, the serial time
 *    measured by one serial run in the same run (both layouts hold the same
 *    items, so the same total work); weft, OpenMP guided and dynamic,1
 *    against it.
 *    Cases 3 and 4 ignore THREADS, run 3 interleaved rounds (no warm-up: a
 *    run lasts 0.5 s or more) and take ~30 s; --new-only (or
 *    BENCH_POOL_NEW_ONLY=1 in the environment) skips cases 1 and 2.
 *
 * Every variant calls the same non-inlined item() per index, so only the
 * scheduling differs.  Variants are interleaved round by round and
 * separated by a short sleep, so that one runtime's spinning threads do
 * not steal the next one's CPU.  Times are medians over the rounds, after a
 * warm-up round; ratios are medians of the per-round ratios (paired, so a
 * machine that drifts in speed between rounds does not bias them), and the
 * summary also gives the ratios of each variant's fastest round (noise from
 * other tenants only ever adds time).  Times are "hot" (a run right after
 * one of the same variant); the uniform table also shows "cold" runs, which
 * pay the threads' wake-up.  The machine's real parallel capacity is
 * measured before and after with plain pthreads: on a shared VM it varies,
 * and the targets only mean something when it is close to the thread count.
 */
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "util.h" /* weft__mono_s */
#include "weft/weft.h"

#define LIGHT_ROUNDS 2u
#define HEAVY_ROUNDS (100u * LIGHT_ROUNDS)

struct job {
    uint64_t *out;
    const uint8_t *heavy; /* NULL: all light */
};

/* The per-index work, identical for every variant and never inlined. */
__attribute__((noinline, noclone)) static void item(uint64_t *out, size_t i,
                                                    unsigned rounds)
{
    uint64_t x = i;
    for (unsigned r = 0; r < rounds; r++)
        x = bench_mix(x + r);
    out[i] = x;
}

static inline unsigned rounds_of(const uint8_t *heavy, size_t i)
{
    return heavy && heavy[i] ? HEAVY_ROUNDS : LIGHT_ROUNDS;
}

/* ---- the variants --------------------------------------------------------- */

enum variant { V_SERIAL, V_WEFT, V_STATIC, V_GUIDED, V_DYNAMIC, V_COUNT };
static const char *const vname[V_COUNT] = {"serial", "weft", "omp static", "omp guided",
                                           "omp dynamic,1"};

static void weft_body(void *ctx, size_t b, size_t e, unsigned worker)
{
    (void)worker;
    const struct job *j = ctx;
    for (size_t i = b; i < e; i++)
        item(j->out, i, rounds_of(j->heavy, i));
}

#define MAX_REPS 15

static weft_pool_t *pool;
static int nthreads = 2;
static size_t weft_grain; /* 0 = auto */

static double run(enum variant v, const struct job *j, size_t n)
{
    uint64_t *out = j->out;
    const uint8_t *heavy = j->heavy;
    double t0 = weft__mono_s();
    switch (v) {
    case V_SERIAL:
        for (size_t i = 0; i < n; i++)
            item(out, i, rounds_of(heavy, i));
        break;
    case V_WEFT:
        if (weft_pool_for(pool, n, weft_grain, weft_body, (void *)j) != 0) {
            fprintf(stderr, "weft_pool_for failed\n");
            exit(1);
        }
        break;
    case V_STATIC:
#pragma omp parallel for schedule(static) num_threads(nthreads)
        for (size_t i = 0; i < n; i++)
            item(out, i, rounds_of(heavy, i));
        break;
    case V_GUIDED:
#pragma omp parallel for schedule(guided) num_threads(nthreads)
        for (size_t i = 0; i < n; i++)
            item(out, i, rounds_of(heavy, i));
        break;
    case V_DYNAMIC:
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
        for (size_t i = 0; i < n; i++)
            item(out, i, rounds_of(heavy, i));
        break;
    default:
        break;
    }
    return weft__mono_s() - t0;
}

/* Per-round seconds of every variant: hot and cold runs. */
struct rounds {
    int reps;
    double hot[V_COUNT][MAX_REPS], cold[V_COUNT][MAX_REPS];
};

/*
 * In each round a selected variant gets a cold run, after 20 ms of idleness
 * (longer than libgomp's ~7 ms spin here, so every runtime's threads are
 * asleep and none steals CPU from the next variant), then a hot run right
 * after it, while its threads still spin.  Round -1 is a warm-up.
 */
static void measure(const struct job *j, size_t n, int reps, const int *use,
                    struct rounds *out)
{
    out->reps = reps;
    for (int r = -1; r < reps; r++) {
        for (int v = 0; v < V_COUNT; v++) {
            if (!use[v])
                continue;
            bench_pause_ms(20);
            double c = run((enum variant)v, j, n);
            double h = run((enum variant)v, j, n);
            if (r >= 0) {
                out->hot[v][r] = h;
                out->cold[v][r] = c;
            }
        }
    }
}

/* Ratios of the uniform case, from one set of per-variant times. */
enum ratio {
    R_WEFT_VS_BEST_SG, /* weft / min(static, guided) */
    R_DYN_VS_WEFT,     /* dynamic,1 / weft */
    R_EFF_WEFT,        /* serial / (par * weft) */
    R_EFF_STATIC,      /* serial / (par * static) */
};

static int par; /* min(threads, cpus) */

static double ratio_of(enum ratio k, const double *t)
{
    double w = t[V_WEFT], st = t[V_STATIC], gu = t[V_GUIDED];
    switch (k) {
    case R_WEFT_VS_BEST_SG:
        return w / (st < gu ? st : gu);
    case R_DYN_VS_WEFT:
        return t[V_DYNAMIC] / w;
    case R_EFF_WEFT:
        return t[V_SERIAL] / (par * w);
    case R_EFF_STATIC:
        return t[V_SERIAL] / (par * st);
    }
    return 0;
}

/* Makespan of variant `var` over the ideal max(serial / par, largest). */
static double ideal_ratio_of(enum variant var, double largest, const double *t)
{
    double ideal = t[V_SERIAL] / par;
    return t[var] / (ideal > largest ? ideal : largest);
}

/* Each variant's fastest round: on a shared machine noise only adds time,
 * so ratios of minima estimate what the schedulers themselves cost. */
static void minima(const struct rounds *m, double *t)
{
    for (int v = 0; v < V_COUNT; v++) {
        t[v] = m->hot[v][0];
        for (int r = 1; r < m->reps; r++)
            t[v] = m->hot[v][r] < t[v] ? m->hot[v][r] : t[v];
    }
}

/* Median of the per-round ratios (paired), or the ratio of the minima. */
static double ratio(const struct rounds *m, enum ratio k, int best)
{
    double t[V_COUNT], v[MAX_REPS];
    if (best) {
        minima(m, t);
        return ratio_of(k, t);
    }
    for (int r = 0; r < m->reps; r++) {
        for (int x = 0; x < V_COUNT; x++)
            t[x] = m->hot[x][r];
        v[r] = ratio_of(k, t);
    }
    return bench_median(v, m->reps);
}

static double vs_ideal(const struct rounds *m, enum variant var, double largest, int best)
{
    double t[V_COUNT], v[MAX_REPS];
    if (best) {
        minima(m, t);
        return ideal_ratio_of(var, largest, t);
    }
    for (int r = 0; r < m->reps; r++) {
        for (int x = 0; x < V_COUNT; x++)
            t[x] = m->hot[x][r];
        v[r] = ideal_ratio_of(var, largest, t);
    }
    return bench_median(v, m->reps);
}

/* Other processes on the machine skew every figure: show the load. */
static void print_load(const char *when)
{
    char buf[64];
    bench_loadavg(buf, sizeof buf);
    printf("loadavg %s: %s\n", when, buf);
}

/*
 * How many CPUs' worth of throughput the machine gives right now: par
 * plain pthreads each run the same item() loop as one thread alone.  On a
 * shared VM this can be far below `par`, and then no scheduler can reach
 * the targets; the figure says how to read the others.
 */
struct cap_arg {
    uint64_t *out;
    size_t n;
};

static void *cap_thread(void *arg)
{
    struct cap_arg *a = arg;
    for (size_t i = 0; i < a->n; i++)
        item(a->out, i, LIGHT_ROUNDS);
    return NULL;
}

static double capacity(uint64_t *out, size_t n, int nthr)
{
    enum { MAXP = 64 };
    if (nthr > MAXP)
        nthr = MAXP;
    size_t per = n / (size_t)nthr;
    double best1 = 1e9, bestp = 1e9;
    bench_pause_ms(20); /* libgomp's spinning threads must not interfere */
    for (int r = 0; r < 3; r++) {
        struct cap_arg one = {out, per};
        double t0 = weft__mono_s();
        cap_thread(&one);
        double t1 = weft__mono_s() - t0;
        pthread_t th[MAXP];
        struct cap_arg a[MAXP];
        t0 = weft__mono_s();
        for (int k = 0; k < nthr; k++) {
            a[k] = (struct cap_arg){out + (size_t)k * per, per};
            if (pthread_create(&th[k], NULL, cap_thread, &a[k]))
                exit(1);
        }
        for (int k = 0; k < nthr; k++)
            pthread_join(th[k], NULL);
        double tp = weft__mono_s() - t0;
        best1 = t1 < best1 ? t1 : best1;
        bestp = tp < bestp ? tp : bestp;
    }
    return (double)nthr * best1 / bestp;
}

/* ---- long and uneven items (cases 3 and 4) ------------------------------ */

#define NEW_REPS 3

static weft_pool_t *pool_of(unsigned threads)
{
    weft_pool_settings_t s;
    weft_pool_default_settings(&s);
    s.threads = threads;
    weft_pool_t *p = NULL;
    int err = weft_pool_create(&p, &s);
    if (err) {
        fprintf(stderr, "weft_pool_create(%u): %s\n", threads, weft_strerror(err));
        exit(1);
    }
    return p;
}

static void weft_for_or_die(weft_pool_t *p, size_t n, weft_range_fn fn, void *ctx)
{
    if (weft_pool_for(p, n, 0, fn, ctx) != 0) {
        fprintf(stderr, "weft_pool_for failed\n");
        exit(1);
    }
}

static double min_of(const double *x, int k)
{
    double m = x[0];
    for (int r = 1; r < k; r++)
        m = x[r] < m ? x[r] : m;
    return m;
}

/* Median over the rounds of t[r] / ideal. */
static double med_ratio(const double *t, int k, double ideal)
{
    double v[MAX_REPS];
    for (int r = 0; r < k; r++)
        v[r] = t[r] / ideal;
    return bench_median(v, k);
}

/* 3. Long items: each sleeps, so only the scheduling sets the makespan. */
#define LONG_NS 500000000L

static void sleep_item(void)
{
    struct timespec ts = {LONG_NS / 1000000000L, LONG_NS % 1000000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void long_body(void *ctx, size_t b, size_t e, unsigned worker)
{
    (void)ctx, (void)worker;
    for (size_t i = b; i < e; i++)
        sleep_item();
}

static double run_long(weft_pool_t *p, int omp, size_t n, int threads)
{
    double t0 = weft__mono_s();
    if (!omp) {
        weft_for_or_die(p, n, long_body, NULL);
    } else {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (size_t i = 0; i < n; i++)
            sleep_item();
    }
    return weft__mono_s() - t0;
}

static void bench_long(void)
{
    static const struct {
        size_t n;
        unsigned threads;
    } cases[] = {{16, 16}, {4, 4}};
    enum { NC = sizeof cases / sizeof *cases };
    weft_pool_t *pools[NC];
    double tw[NC][MAX_REPS], to[NC][MAX_REPS];
    for (int c = 0; c < NC; c++)
        pools[c] = pool_of(cases[c].threads);
    for (int r = 0; r < NEW_REPS; r++) {
        for (int c = 0; c < NC; c++) {
            bench_pause_ms(20);
            tw[c][r] = run_long(pools[c], 0, cases[c].n, (int)cases[c].threads);
            bench_pause_ms(20);
            to[c][r] = run_long(pools[c], 1, cases[c].n, (int)cases[c].threads);
        }
    }
    const double ideal = LONG_NS * 1e-9;
    printf("\n== long: items that sleep %.1f s (no CPU), %d rounds ==\n", ideal, NEW_REPS);
    printf("%-22s %10s %10s %12s %10s %12s\n", "case", "ideal ms", "weft ms", "weft/ideal",
           "best", "dyn,1/ideal");
    for (int c = 0; c < NC; c++) {
        char name[64];
        snprintf(name, sizeof name, "%zu x %.1f s, %u threads", cases[c].n, ideal,
                 cases[c].threads);
        printf("%-22s %10.2f %10.2f %12.3f %10.3f %12.3f\n", name, ideal * 1e3,
               bench_median(tw[c], NEW_REPS) * 1e3, med_ratio(tw[c], NEW_REPS, ideal),
               min_of(tw[c], NEW_REPS) / ideal, med_ratio(to[c], NEW_REPS, ideal));
        weft_pool_destroy(&pools[c]);
    }
    printf("(weft/ideal, dyn,1/ideal: medians of the per-round ratios; best: fastest "
           "round / ideal)\n");
}

/* 4. Skewed items of ~20 us of busy work, 5% of them 100x that. */
#define SKEW_N 20000u
#define SKEW_HEAVY (SKEW_N / 20u)
#define SKEW_FACTOR 100u
#define SKEW_THREADS 2u

static uint64_t spin_iters = 1; /* one light item, from calibrate_spin() */

/* The busy work: a counter on the stack, volatile so no loop is folded. */
__attribute__((noinline, noclone)) static void spin(uint64_t iters)
{
    volatile uint64_t c = 0;
    for (uint64_t k = 0; k < iters; k++)
        c = c + 1;
}

static inline void skew_item(const uint8_t *heavy, size_t i)
{
    spin(heavy[i] ? SKEW_FACTOR * spin_iters : spin_iters);
}

static void skew_body(void *ctx, size_t b, size_t e, unsigned worker)
{
    (void)worker;
    const uint8_t *heavy = ctx;
    for (size_t i = b; i < e; i++)
        skew_item(heavy, i);
}

/* Seconds of one spin(spin_iters): the fastest of 5 batches of 200. */
static double light_item_s(void)
{
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = weft__mono_s();
        for (int k = 0; k < 200; k++)
            spin(spin_iters);
        double t = (weft__mono_s() - t0) / 200;
        best = t < best ? t : best;
    }
    return best;
}

/* Sets spin_iters so that one light item takes ~20 us, by timing the item
 * itself and rescaling (three passes, ~0.1 s); returns the final measured
 * time of one light item, in seconds.  Starts after 50 ms of idleness, so
 * that no OpenMP thread still spins on the CPUs. */
static double calibrate_spin(void)
{
    bench_pause_ms(50);
    spin_iters = 50000;
    spin(100 * spin_iters); /* let the clock ramp up */
    for (int pass = 0; pass < 3; pass++) {
        double t = light_item_s();
        spin_iters = (uint64_t)((double)spin_iters * 20e-6 / t);
        if (spin_iters < 1)
            spin_iters = 1;
    }
    return light_item_s();
}

enum { S_WEFT, S_GUIDED, S_DYNAMIC, S_COUNT };

static double run_skew(weft_pool_t *p, int v, const uint8_t *heavy)
{
    double t0 = weft__mono_s();
    switch (v) {
    case S_WEFT:
        weft_for_or_die(p, SKEW_N, skew_body, (void *)heavy);
        break;
    case S_GUIDED:
#pragma omp parallel for schedule(guided) num_threads(SKEW_THREADS)
        for (size_t i = 0; i < SKEW_N; i++)
            skew_item(heavy, i);
        break;
    case S_DYNAMIC:
#pragma omp parallel for schedule(dynamic, 1) num_threads(SKEW_THREADS)
        for (size_t i = 0; i < SKEW_N; i++)
            skew_item(heavy, i);
        break;
    default: /* serial */
        for (size_t i = 0; i < SKEW_N; i++)
            skew_item(heavy, i);
        break;
    }
    return weft__mono_s() - t0;
}

static void bench_skew20(unsigned cpus)
{
    static uint8_t heavy[2][SKEW_N];
    static const char *const name[2] = {"5% heavy, random", "5% heavy, at end"};
    /* (a) exactly SKEW_HEAVY heavy items at positions drawn with a fixed seed
     * (a partial Fisher-Yates shuffle); (b) the last SKEW_HEAVY. */
    static uint32_t perm[SKEW_N];
    for (uint32_t i = 0; i < SKEW_N; i++)
        perm[i] = i;
    for (uint32_t i = 0; i < SKEW_HEAVY; i++) {
        uint32_t j = i + (uint32_t)(bench_mix(0x5eed + i) % (SKEW_N - i));
        uint32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
        heavy[0][perm[i]] = 1;
    }
    for (uint32_t i = SKEW_N - SKEW_HEAVY; i < SKEW_N; i++)
        heavy[1][i] = 1;

    const int par2 = SKEW_THREADS < cpus ? (int)SKEW_THREADS : (int)cpus;
    double light = calibrate_spin();
    weft_pool_t *p = pool_of(SKEW_THREADS);
    /* Both layouts hold the same items (19000 light, 1000 heavy), so they
     * have the same total work: one serial run measures it for both. */
    double t[2][S_COUNT][MAX_REPS];
    bench_pause_ms(20);
    const double serial = run_skew(p, -1, heavy[0]);
    const double ideal = serial / par2;
    for (int r = 0; r < NEW_REPS; r++)
        for (int k = 0; k < 2; k++)
            for (int v = 0; v < S_COUNT; v++) {
                bench_pause_ms(20);
                t[k][v][r] = run_skew(p, v, heavy[k]);
            }
    weft_pool_destroy(&p);

    printf("\n== skewed 20us: %u items, %u of them %ux heavier, %u threads, %d rounds ==\n",
           SKEW_N, SKEW_HEAVY, SKEW_FACTOR, SKEW_THREADS, NEW_REPS);
    printf("light item %.1f us (%llu spins), heavy %.0f us; serial %.2f ms (one run, "
           "same items in both layouts); ideal = serial / %d = %.2f ms\n",
           light * 1e6, (unsigned long long)spin_iters, light * SKEW_FACTOR * 1e6,
           serial * 1e3, par2, ideal * 1e3);
    printf("%-18s %10s %12s %10s %12s %12s\n", "case", "weft ms", "weft/ideal", "best",
           "guided/ideal", "dyn,1/ideal");
    for (int k = 0; k < 2; k++) {
        printf("%-18s %10.2f %12.3f %10.3f %12.3f %12.3f\n", name[k],
               bench_median(t[k][S_WEFT], NEW_REPS) * 1e3,
               med_ratio(t[k][S_WEFT], NEW_REPS, ideal),
               min_of(t[k][S_WEFT], NEW_REPS) / ideal,
               med_ratio(t[k][S_GUIDED], NEW_REPS, ideal),
               med_ratio(t[k][S_DYNAMIC], NEW_REPS, ideal));
    }
    printf("(ratios: medians of the per-round ratios to the ideal; best: fastest weft "
           "round / ideal)\n");
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int quick = 0, sweep = 0;
    const char *env_new = getenv("BENCH_POOL_NEW_ONLY");
    int new_only = env_new && *env_new && strcmp(env_new, "0") != 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--quick"))
            quick = 1;
        else if (!strcmp(argv[a], "--new-only"))
            new_only = 1;
        else if (!strcmp(argv[a], "--sweep"))
            sweep = 1;
        else if (atoi(argv[a]) > 0)
            nthreads = atoi(argv[a]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--sweep] [--new-only] [THREADS]\n",
                    argv[0]);
            return 2;
        }
    }
    const size_t n = quick ? 1000000 : 10000000;
    const int reps = quick ? 5 : 9;
    /* Oversubscribed runs cannot beat the cores: the ideal and the
     * efficiency use min(threads, cpus). */
    const unsigned cpus = weft_cpu_count();
    par = (unsigned)nthreads < cpus ? nthreads : (int)cpus;

    weft_pool_settings_t s;
    weft_pool_default_settings(&s);
    s.threads = (unsigned)nthreads;
    int err = weft_pool_create(&pool, &s);
    if (err) {
        fprintf(stderr, "weft_pool_create: %s\n", weft_strerror(err));
        return 1;
    }
    uint64_t *out = malloc(n * sizeof *out);
    uint8_t *heavy_rand = malloc(n), *heavy_end = malloc(n);
    struct rounds *flat_m = calloc(1, sizeof *flat_m);
    struct rounds *skew_m = calloc(2, sizeof *skew_m);
    if (!out || !heavy_rand || !heavy_end || !flat_m || !skew_m)
        return 1;
    memset(out, 0, n * sizeof *out); /* fault the pages in before timing */
    size_t nheavy = 0;
    for (size_t i = 0; i < n; i++) {
        heavy_rand[i] = bench_mix(i ^ 0x5eed) % 100 < 5;
        nheavy += heavy_rand[i];
        heavy_end[i] = i >= n - n / 20;
    }

    printf("bench_pool: n=%zu threads=%d cpus=%u rounds=%d (+1 warm-up)\n", n, nthreads,
           cpus, reps);
    print_load("before");
    printf("item: %u hash rounds (light), %u (heavy)\n", LIGHT_ROUNDS, HEAVY_ROUNDS);
    double cap0 = capacity(out, n, par);
    printf("machine capacity before: %.2f CPUs of %d (plain pthreads, same item)\n\n",
           cap0, par);

    if (!new_only) {
        /* 1. Uniform trivial items. */
        struct job flat = {out, NULL};
        int all[V_COUNT] = {1, 1, 1, 1, 1};
        weft_pool_stats_t st0, st1;
        weft_pool_get_stats(pool, &st0);
        measure(&flat, n, reps, all, flat_m);
        weft_pool_get_stats(pool, &st1);

        printf("== uniform trivial items (median times) ==\n");
        printf("%-16s %10s %10s %10s %12s\n", "variant", "ns/item", "ms", "cold ms",
               "speedup");
        double ser = bench_median(flat_m->hot[V_SERIAL], reps);
        for (int v = 0; v < V_COUNT; v++) {
            double h = bench_median(flat_m->hot[v], reps),
                   c = bench_median(flat_m->cold[v], reps);
            printf("%-16s %10.3f %10.2f %10.2f %11.2fx\n", vname[v], h * 1e9 / (double)n,
                   h * 1e3, c * 1e3, ser / h);
        }
        printf("(hot: right after a run of the same variant; cold: after 20 ms idle)\n");
        uint64_t loops = st1.loops - st0.loops;
        printf("weft scheduling per loop: %.1f steals, %.1f splits, %.1f sleeps\n\n",
               (double)(st1.steals - st0.steals) / (double)loops,
               (double)(st1.splits - st0.splits) / (double)loops,
               (double)(st1.sleeps - st0.sleeps) / (double)loops);

        /* 2. Skewed items. */
        struct job skew[2] = {{out, heavy_rand}, {out, heavy_end}};
        const char *skew_name[2] = {"5% heavy, random", "5% heavy, at end"};
        int skew_use[V_COUNT] = {1, 1, 1, 1, 0};
        /* The largest item: a heavy one, timed in bulk. */
        double t0 = weft__mono_s();
        for (size_t i = 0; i < 100000; i++)
            item(out, i, HEAVY_ROUNDS);
        double largest = (weft__mono_s() - t0) / 100000;
        for (int k = 0; k < 2; k++)
            measure(&skew[k], n, reps, skew_use, &skew_m[k]);
        printf("== skewed: %zu (random) / %zu (end) of %zu items %ux heavier ==\n", nheavy,
               n / 20, n, HEAVY_ROUNDS / LIGHT_ROUNDS);
        printf("largest item %.0f ns; ideal = max(serial / %d, largest)\n", largest * 1e9, par);
        printf("%-18s %10s %10s %10s %12s %12s %12s\n", "case", "serial ms", "ideal ms",
               "weft ms", "weft/ideal", "static/ideal", "guided/ideal");
        for (int k = 0; k < 2; k++) {
            const struct rounds *m = &skew_m[k];
            double sr = bench_median(m->hot[V_SERIAL], reps);
            double id = sr / par > largest ? sr / par : largest;
            printf("%-18s %10.2f %10.2f %10.2f %12.3f %12.3f %12.3f\n", skew_name[k],
                   sr * 1e3, id * 1e3, bench_median(m->hot[V_WEFT], reps) * 1e3,
                   vs_ideal(m, V_WEFT, largest, 0), vs_ideal(m, V_STATIC, largest, 0),
                   vs_ideal(m, V_GUIDED, largest, 0));
        }

        /* Optional: weft with explicit grains, for tuning the auto policy. */
        if (sweep) {
            static const size_t g[] = {64, 256, 1024, 2048, 4096, 16384};
            int ws[V_COUNT] = {1, 1, 0, 0, 0};
            struct rounds *a = calloc(3, sizeof *a);
            if (!a)
                return 1;
            printf("\n== grain sweep: weft/ideal (uniform / random / end) ==\n");
            for (size_t k = 0; k < sizeof g / sizeof *g; k++) {
                weft_grain = g[k];
                measure(&flat, n, reps, ws, &a[0]);
                measure(&skew[0], n, reps, ws, &a[1]);
                measure(&skew[1], n, reps, ws, &a[2]);
                printf("grain %6zu: %8.3f %8.3f %8.3f\n", g[k], vs_ideal(&a[0], V_WEFT, 0, 0),
                       vs_ideal(&a[1], V_WEFT, largest, 0), vs_ideal(&a[2], V_WEFT, largest, 0));
            }
            weft_grain = 0;
            free(a);
        }

        printf("\n");
        print_load("after");
        double cap1 = capacity(out, n, par);
        printf("machine capacity after: %.2f CPUs of %d\n", cap1, par);
        printf("== summary (threads=%d) ==\n", nthreads);
        printf("%-40s %8s %8s %9s\n", "metric", "median", "best", "target");
        static const struct {
            const char *name, *target;
            int prec;
            enum ratio k;
        } rows[] = {
            {"weft / best(omp static, omp guided)", "<= 1.10", 3, R_WEFT_VS_BEST_SG},
            {"omp dynamic,1 / weft", ">= 30", 1, R_DYN_VS_WEFT},
            {"parallel efficiency, weft", "", 3, R_EFF_WEFT},
            {"parallel efficiency, omp static", "", 3, R_EFF_STATIC},
        };
        for (size_t k = 0; k < sizeof rows / sizeof *rows; k++)
            printf("%-40s %8.*f %8.*f %9s\n", rows[k].name, rows[k].prec,
                   ratio(flat_m, rows[k].k, 0), rows[k].prec, ratio(flat_m, rows[k].k, 1),
                   rows[k].target);
        for (int k = 0; k < 2; k++)
            printf("%-40s %8.3f %8.3f %9s\n",
                   k ? "skewed at end: weft makespan / ideal" : "skewed random: weft makespan / ideal",
                   vs_ideal(&skew_m[k], V_WEFT, largest, 0), vs_ideal(&skew_m[k], V_WEFT, largest, 1),
                   "<= 1.02");
        printf("(median: of the per-round ratios; best: ratio of each variant's fastest round)\n");
    }

    /* 3, 4. Long and uneven items (their own pools and thread counts). */
    bench_long();
    bench_skew20(cpus);
    printf("\n");
    print_load("after long and uneven");

    weft_pool_destroy(&pool);
    free(skew_m);
    free(flat_m);
    free(out);
    free(heavy_rand);
    free(heavy_end);
    return 0;
}
