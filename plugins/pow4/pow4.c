/* SPDX-License-Identifier: MIT */
/*
 * pow4: the exact sum of i^4 over the items, in 128-bit integers.
 *
 * Each worker adds into its own partial sum (its own cache line, no atomics
 * on the per-item path); worker_fini folds the partials into the state on
 * the main thread, and finish returns the total as a JSON integer.  Each
 * item's value is i^4 itself.  When nothing is kept per item, the runner
 * may hand a worker a whole run of numbers at once (process_range): one
 * tight loop, the same sum and the same overflow rules.
 */
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/plugin.h>

#include "u128_decimal.h"

typedef struct pow4_worker {
    alignas(64) u128 sum;
    int overflow;
    char digits[48];
} pow4_worker_t;

typedef struct pow4_state {
    u128 sum;
    bool values_wanted;
    int overflow;
    char digits[48];
} pow4_state_t;

static int pow4_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                     char *msg, size_t msg_size)
{
    (void)args;
    pow4_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    /* 128-bit decimal digits are costly: build values only if written. */
    s->values_wanted = !WEFT_HOST_HAS(host, values_wanted) || host->values_wanted;
    *state = s;
    return 0;
}

static int pow4_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                            char *msg, size_t msg_size)
{
    (void)state, (void)worker, (void)workers;
    pow4_worker_t *w = aligned_alloc(64, sizeof *w);
    if (!w) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    memset(w, 0, sizeof *w);
    *ctx = w;
    return 0;
}

static int pow4_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    const pow4_state_t *s = state;
    pow4_worker_t *w = ctx;
    int64_t i = item->number;
    u128 a = i < 0 ? (u128)(0 - (uint64_t)i) : (u128)(uint64_t)i;
    if (a > 0xFFFFFFFFu) {
        snprintf(r->msg, r->msg_size, "%lld^4 does not fit in 128 bits", (long long)i);
        return -1;
    }
    u128 p = a * a * a * a;
    u128 sum = w->sum + p;
    if (sum < p)
        w->overflow = 1; /* reported by finish: the total is wrong */
    w->sum = sum;
    if (!s->values_wanted) {
        /* no value */
    } else if (p <= (u128)INT64_MAX) {
        weft_result_int(r, (int64_t)p);
    } else {
        size_t n = u128_to_decimal(p, w->digits);
        weft_result_json(r, w->digits, n);
    }
    return 0;
}

/*
 * The numbers first_number ... first_number + count - 1 at once, with
 * process_one's rules: a number beyond +-(2^32 - 1) fails (its fourth power
 * may not fit in 128 bits), and a sum that wraps sets the worker's overflow
 * flag for finish to report.  All of it is summed into locals and added to
 * the worker's sum only when the whole range is good, so a failed batch
 * leaves nothing behind (the runner then runs its items one by one).
 */
static int pow4_process_range(void *state, void *ctx, uint64_t first_index,
                              int64_t first_number, size_t count, char *msg,
                              size_t msg_size)
{
    (void)state, (void)first_index;
    pow4_worker_t *w = ctx;
    if (count == 0)
        return 0;
    /* The numbers are consecutive: checking both ends checks them all.
     * The first bad one is the first number itself, or 2^32. */
    const int64_t lim = 0xFFFFFFFF;
    if (first_number < -lim || first_number > lim ||
        count - 1 > (uint64_t)(lim - first_number)) {
        long long bad = first_number < -lim || first_number > lim
                            ? (long long)first_number
                            : (long long)lim + 1;
        snprintf(msg, msg_size, "%lld^4 does not fit in 128 bits", bad);
        return -1;
    }
    /* |n| < 2^32, so n^2 fits in 64 bits, and the 64-bit product of the
     * two's-complement words is n^2 exactly, negative n too; n^4 is then
     * one 64x64->128 multiply.  carries counts the wraps of the sum. */
    u128 sum = 0;
    uint64_t carries = 0;
    const uint64_t n0 = (uint64_t)first_number;
    for (size_t k = 0; k < count; k++) {
        uint64_t n = n0 + k;
        uint64_t sq = n * n;
        carries += __builtin_add_overflow(sum, (u128)sq * sq, &sum);
    }
    /* Commit: the same wrap test as process_one's, once. */
    u128 total = w->sum + sum;
    w->overflow |= (carries != 0) | (total < sum);
    w->sum = total;
    return 0;
}

static void pow4_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)worker;
    pow4_state_t *s = state;
    pow4_worker_t *w = ctx;
    u128 sum = s->sum + w->sum;
    s->overflow |= w->overflow | (sum < w->sum);
    s->sum = sum;
    free(w);
}

static int pow4_finish(void *state, const weft_counts_t *counts, weft_result_t *r)
{
    (void)counts;
    pow4_state_t *s = state;
    if (s->overflow) {
        snprintf(r->msg, r->msg_size, "the sum of i^4 overflows 128 bits");
        return -1;
    }
    size_t n = u128_to_decimal(s->sum, s->digits);
    weft_result_json(r, s->digits, n);
    return 0;
}

static void pow4_destroy(void *state)
{
    free(state);
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "pow4",
    .version = "1.0.0",
    .description = "Exact 128-bit sum of i^4 over the items (per-worker partial sums)",
    .flags = WEFT_PLUGIN_REDUCES,
    .init = pow4_init,
    .worker_init = pow4_worker_init,
    .worker_fini = pow4_worker_fini,
    .process_one = pow4_process,
    .finish = pow4_finish,
    .destroy = pow4_destroy,
    .process_range = pow4_process_range,
};
