/* SPDX-License-Identifier: MIT */
/*
 * bench_isolate: the per-item cost of process isolation (core/run/isolate.c)
 * against a plain in-process loop and a weft_pool of the same width.
 *
 *   bench_isolate [--quick] [WORKERS]       (WORKERS default 2)
 *
 * Two workloads: trivial items (2x10^5, a hash of the index) and ~10 us
 * items (2x10^4, a calibrated spin).  Every variant calls the same
 * non-inlined item(); the process variant sends the 8-byte index and gets
 * the 8-byte result back, as the runner will (bytes in, bytes out).  Times
 * are the best of ROUNDS (noise only ever adds time); the worker start-up
 * (fork + handshake) is reported apart from the per-item cost.  The pool
 * is created only after the supervisor is destroyed: isolate mode forks
 * and must not run beside other threads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isolate.h"
#include "util.h" /* weft__mono_s */
#include "weft/weft.h"

#define ROUNDS 5

static unsigned spin_iters; /* per item: 0 trivial, else ~10 us */

__attribute__((noinline, noclone)) static uint64_t item(uint64_t i)
{
    uint64_t x = i + 0x9e3779b97f4a7c15ull;
    unsigned n = spin_iters ? spin_iters : 1;
    for (unsigned r = 0; r < n; r++) {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185ull;
        x ^= x >> 27;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

static void calibrate(double target_s)
{
    spin_iters = 1000;
    for (;;) {
        double t0 = weft__mono_s();
        for (int k = 0; k < 100; k++)
            item((uint64_t)k);
        double per = (weft__mono_s() - t0) / 100;
        if (per > target_s * 0.5 || spin_iters > (1u << 30)) {
            spin_iters = (unsigned)((double)spin_iters * target_s / per);
            return;
        }
        spin_iters *= 4;
    }
}

/* ---- variants ---------------------------------------------------------------- */

static uint64_t *out;

static double run_serial(size_t n)
{
    double t0 = weft__mono_s();
    for (size_t i = 0; i < n; i++)
        out[i] = item(i);
    return weft__mono_s() - t0;
}

static void pool_body(void *ctx, size_t b, size_t e, unsigned worker)
{
    (void)ctx;
    (void)worker;
    for (size_t i = b; i < e; i++)
        out[i] = item(i);
}

static double run_pool(weft_pool_t *pool, size_t n)
{
    double t0 = weft__mono_s();
    weft_pool_for(pool, n, 0, pool_body, NULL);
    return weft__mono_s() - t0;
}

static uint64_t *keys;
static size_t bad;

static void child_item(void *arg, unsigned worker, uint64_t index, const void *bytes,
                       size_t len, weft__iso_reply_t *reply)
{
    (void)arg;
    (void)worker;
    (void)index;
    uint64_t k, r;
    memcpy(&k, bytes, sizeof k);
    (void)len;
    r = item(k);
    weft__iso_reply_ok(reply, 1, &r, sizeof r);
}

static void get_item(void *arg, size_t i, const void **bytes, size_t *len)
{
    (void)arg;
    *bytes = &keys[i];
    *len = sizeof keys[i];
}

static void on_result(void *arg, size_t i, const weft__iso_outcome_t *o)
{
    (void)arg;
    if (o->kind != WEFT__ISO_OK || o->len != sizeof(uint64_t)) {
        bad++;
        return;
    }
    memcpy(&out[i], o->bytes, sizeof out[i]);
}

static double run_iso(weft__iso_t *iso, size_t n)
{
    double t0 = weft__mono_s();
    weft__iso_run(iso, n, 0, get_item, on_result, NULL);
    return weft__mono_s() - t0;
}

static int check(size_t n, const char *what)
{
    for (size_t i = 0; i < n; i += 997)
        if (out[i] != item(i)) {
            fprintf(stderr, "bench_isolate: %s: wrong result at %zu\n", what, i);
            return 1;
        }
    if (bad) {
        fprintf(stderr, "bench_isolate: %s: %zu items not OK\n", what, bad);
        return 1;
    }
    return 0;
}

static int workload(const char *name, size_t n, unsigned workers)
{
    double best_serial = 1e30, best_pool = 1e30, best_iso = 1e30, best_start = 1e30;
    for (size_t i = 0; i < n; i++)
        keys[i] = i;
    for (int round = 0; round < ROUNDS; round++) {
        double t = run_serial(n);
        best_serial = t < best_serial ? t : best_serial;

        weft__iso_settings_t s = {.workers = workers, .child_item = child_item};
        weft__iso_t *iso;
        char err[256];
        double t0 = weft__mono_s();
        if (weft__iso_start(&iso, &s, err, sizeof err)) {
            fprintf(stderr, "bench_isolate: %s\n", err);
            return 1;
        }
        t = weft__mono_s() - t0;
        best_start = t < best_start ? t : best_start;
        memset(out, 0, n * sizeof *out);
        bad = 0;
        t = run_iso(iso, n);
        best_iso = t < best_iso ? t : best_iso;
        weft__iso_destroy(&iso);
        if (check(n, "process"))
            return 1;

        weft_pool_settings_t ps = {.threads = workers};
        weft_pool_t *pool;
        if (weft_pool_create(&pool, &ps))
            return 1;
        memset(out, 0, n * sizeof *out);
        t = run_pool(pool, n);
        best_pool = t < best_pool ? t : best_pool;
        weft_pool_destroy(&pool);
        if (check(n, "pool"))
            return 1;
    }
    double ns = 1e9 / (double)n;
    printf("%-10s n=%-7zu serial %8.1f ns/item   pool(%u) %8.1f   process(%u) %8.1f   "
           "process/pool %6.2fx   process/serial %6.2fx   (start %u workers: %.2f ms)\n",
           name, n, best_serial * ns, workers, best_pool * ns, workers, best_iso * ns,
           best_iso / best_pool, best_iso / best_serial, workers, best_start * 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned workers = 2;
    size_t scale = 1;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--quick"))
            scale = 10;
        else
            workers = (unsigned)strtoul(argv[k], NULL, 10);
    }
    if (workers < 1)
        workers = 1;
    size_t n_trivial = 200000 / scale, n_10us = 20000 / scale;
    out = calloc(n_trivial, sizeof *out);
    keys = calloc(n_trivial, sizeof *keys);
    if (!out || !keys)
        return 1;
    printf("bench_isolate: %u workers, %u CPUs, best of %d rounds\n", workers,
           weft_cpu_count(), ROUNDS);
    spin_iters = 0;
    if (workload("trivial", n_trivial, workers))
        return 1;
    calibrate(10e-6);
    if (workload("10us", n_10us, workers))
        return 1;
    free(out);
    free(keys);
    return 0;
}
