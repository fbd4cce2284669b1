/* SPDX-License-Identifier: MIT */
/* core/host/rng.c: Philox4x32-10 and the per-item streams built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

/* ---- Philox4x32-10 known answers --------------------------------------- */

typedef struct kat {
    uint32_t ctr[4], key[2], expected[4];
} kat_t;

/*
 * The philox4x32 10 lines of Random123's examples/kat_vectors, as carried
 * in DEShawResearch/Random123-Boost libs/random/test/test_philox.cpp
 * ("cut-and-pasted from the kat_vectors file in the original Random123
 * distribution"): all zeros, all ones, and the digits of pi.
 */
static const kat_t random123_kats[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

/*
 * Single-bit counters and keys, from the philox4x32 10 lines of the longer
 * examples/kat_vectors in girving/random123-manual: they catch a swapped
 * word or key half that the symmetric vectors above can miss.
 */
static const kat_t bit_kats[] = {
    {{0x00000001, 0x00000000, 0x00000000, 0x00000000},
     {0x00000001, 0x00000000},
     {0xac08141b, 0xdfc5ccbe, 0x79c07a47, 0xa7f66093}},
    {{0x00000000, 0x00000000, 0x00000000, 0x00000001},
     {0x00000001, 0x00000000},
     {0x127bee41, 0x1e047488, 0x48842b20, 0x0a393496}},
    {{0x00000000, 0x00000001, 0x00000000, 0x00000000},
     {0x00000000, 0x00000001},
     {0x532f1322, 0x36c890fb, 0x6504b937, 0x07bbfef7}},
    {{0x00000000, 0x00000000, 0x80000000, 0x00000000},
     {0x00000000, 0x80000000},
     {0xae56ca02, 0x7609ba67, 0x25abd7df, 0x46ce39a3}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0x00000000, 0xffffffff},
     {0x08f7720c, 0x845ee9e0, 0x502ccd3d, 0xa9a00e27}},
};

static void check_kats(const kat_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t out[4];
        weft__philox4x32_10(k[i].ctr, k[i].key, out);
        for (int w = 0; w < 4; w++) {
            if (out[w] != k[i].expected[w])
                print_error("vector %zu word %d: got %08x want %08x\n", i, w,
                            (unsigned)out[w], (unsigned)k[i].expected[w]);
            assert_int_equal(out[w], k[i].expected[w]);
        }
    }
}

static void philox_random123_kat(void **state)
{
    check_kats(random123_kats, sizeof random123_kats / sizeof random123_kats[0]);
}

static void philox_single_bit_kat(void **state)
{
    check_kats(bit_kats, sizeof bit_kats / sizeof bit_kats[0]);
}

/* ---- stream layout ----------------------------------------------------- */

/* An independent splitmix64 (Steele, Lea, Flood 2014): state += gamma,
 * then the output mix. */
static uint64_t ref_splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Block b of a stream, computed straight from the documented layout. */
static void ref_block(const weft_rng_t *rng, uint64_t index, uint64_t b, uint32_t out[4])
{
    const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)b,
                             (uint32_t)(b >> 32)};
    weft__philox4x32_10(ctr, rng->key, out);
}

static void rng_key_derivation(void **state)
{
    /* The first output of SplitMix64 seeded with 0, as published with the
     * reference implementation (Vigna's splitmix64.c). */
    assert_true(ref_splitmix64(0) == 0xE220A8397B1DCDAFu);

    const uint64_t seeds[] = {0, 1, 42, UINT64_MAX};
    const uint64_t streams[] = {0, 1, 7, UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 4; j++) {
            weft_rng_t rng;
            weft__rng_init(&rng, seeds[i], streams[j], 5);
            uint64_t k = ref_splitmix64(seeds[i] ^ ref_splitmix64(streams[j]));
            assert_int_equal(rng.key[0], (uint32_t)k);
            assert_int_equal(rng.key[1], (uint32_t)(k >> 32));
        }
    }
}

static void rng_u64_layout(void **state)
{
    weft_rng_t rng;
    const uint64_t index = 0x0123456789abcdefu;
    weft__rng_init(&rng, 9, 3, index);
    for (uint64_t b = 0; b < 4; b++) {
        uint32_t out[4];
        ref_block(&rng, index, b, out);
        assert_true(weft__rng_u64(&rng) == ((uint64_t)out[1] << 32 | out[0]));
        assert_true(weft__rng_u64(&rng) == ((uint64_t)out[3] << 32 | out[2]));
    }
}

/* Pins the whole chain (key derivation, counter layout, word order), which
 * every seeded result a user has ever saved depends on.  Not an external
 * vector: computed once by this implementation and, independently, by a
 * few lines of Python written from the layout in core/host/rng.c. */
static void rng_golden(void **state)
{
    weft_rng_t rng;
    weft__rng_init(&rng, 0, 0, 0);
    uint64_t a = weft__rng_u64(&rng);
    weft__rng_init(&rng, 12345, 1, 1000);
    uint64_t b = weft__rng_u64(&rng);
    assert_true(a == 0xf8dc1230f1b644d8u);
    assert_true(b == 0x95f2f8b65f54bc12u);
}

/* ---- determinism ------------------------------------------------------- */

static void draw(uint64_t seed, uint64_t stream, uint64_t index, uint64_t *v, size_t n)
{
    weft_rng_t rng;
    weft__rng_init(&rng, seed, stream, index);
    for (size_t i = 0; i < n; i++)
        v[i] = weft__rng_u64(&rng);
}

static void rng_deterministic(void **state)
{
    enum { N = 64 };
    uint64_t a[N], b[N];
    draw(7, 2, 100, a, N);
    draw(7, 2, 100, b, N);
    assert_memory_equal(a, b, sizeof a);

    /* Any one coordinate changed: a different stream (no value shared in
     * the first N, which for 64-bit values means "unrelated"). */
    const uint64_t other[][3] = {
        {8, 2, 100}, {7, 3, 100}, {7, 2, 101}, {7, 2, 100 + (1ull << 32)}, {0, 2, 100}};
    for (size_t o = 0; o < sizeof other / sizeof other[0]; o++) {
        draw(other[o][0], other[o][1], other[o][2], b, N);
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                assert_true(a[i] != b[j]);
    }

    /* A swapped seed and stream is still another stream. */
    draw(1, 0, 0, a, N);
    draw(0, 1, 0, b, N);
    assert_memory_not_equal(a, b, sizeof a);
}

/* ---- rng_fill ---------------------------------------------------------- */

static void le_block(const uint32_t w[4], unsigned char *p)
{
    for (int i = 0; i < 16; i++)
        p[i] = (unsigned char)(w[i / 4] >> (8 * (i % 4)));
}

static void rng_fill_is_blocks(void **state)
{
    /* Past 64 bytes too, where whole blocks are made four at a time. */
    enum { MAX = 200 };
    const uint64_t index = 77;
    unsigned char expect[MAX + 16];
    weft_rng_t rng;
    weft__rng_init(&rng, 1, 2, index);
    for (uint64_t b = 0; b * 16 < MAX; b++) {
        uint32_t out[4];
        ref_block(&rng, index, b, out);
        le_block(out, expect + 16 * b);
    }

    /* Through an odd offset too: the whole-block path must not assume
     * alignment. */
    unsigned char raw[MAX + 32];
    for (size_t off = 0; off < 2; off++) {
        for (size_t n = 0; n <= MAX; n++) {
            unsigned char *buf = raw + off;
            memset(raw, 0xA5, sizeof raw);
            weft__rng_init(&rng, 1, 2, index);
            weft__rng_fill(&rng, buf, n);
            assert_memory_equal(buf, expect, n);
            /* Nothing written past n. */
            for (size_t i = off + n; i < sizeof raw; i++)
                assert_int_equal(raw[i], 0xA5);
            for (size_t i = 0; i < off; i++)
                assert_int_equal(raw[i], 0xA5);
            /* The fill used exactly ceil(n / 16) blocks. */
            assert_true(rng.block == (n + 15) / 16);
        }
    }
}

static void rng_fill_mixed_with_u64(void **state)
{
    const uint64_t index = 3;
    weft_rng_t rng, ref;
    weft__rng_init(&ref, 5, 0, index);
    uint32_t b0[4], b1[4], b2[4];
    ref_block(&ref, index, 0, b0);
    ref_block(&ref, index, 1, b1);
    ref_block(&ref, index, 2, b2);

    weft__rng_init(&rng, 5, 0, index);
    assert_true(weft__rng_u64(&rng) == ((uint64_t)b0[1] << 32 | b0[0]));
    /* fill(0) changes nothing: the next u64 is still from block 0. */
    weft__rng_fill(&rng, NULL, 0);
    assert_true(weft__rng_u64(&rng) == ((uint64_t)b0[3] << 32 | b0[2]));
    weft__rng_init(&rng, 5, 0, index);
    (void)weft__rng_u64(&rng);

    /* A fill starts on a fresh block (block 0's unread half is dropped)
     * and drops the rest of its partial last block. */
    unsigned char got[5], want[16];
    weft__rng_fill(&rng, got, sizeof got);
    le_block(b1, want);
    assert_memory_equal(got, want, sizeof got);
    assert_true(weft__rng_u64(&rng) == ((uint64_t)b2[1] << 32 | b2[0]));

    /* A long fill from there goes on at block 3. */
    unsigned char big[100], bigwant[112];
    weft__rng_fill(&rng, big, sizeof big);
    for (uint64_t b = 0; b < 7; b++) {
        uint32_t out[4];
        ref_block(&ref, index, 3 + b, out);
        le_block(out, bigwant + 16 * b);
    }
    assert_memory_equal(big, bigwant, sizeof big);
    assert_true(rng.block == 10);

    /* The block counter carries into its high word (counter word 3). */
    weft__rng_init(&rng, 5, 0, index);
    rng.block = 0xFFFFFFFEu;
    weft__rng_fill(&rng, big, 96);
    for (uint64_t b = 0; b < 6; b++) {
        uint32_t out[4];
        ref_block(&ref, index, 0xFFFFFFFEu + b, out);
        le_block(out, bigwant + 16 * b);
    }
    assert_memory_equal(big, bigwant, 96);
}

/* ---- rng_double -------------------------------------------------------- */

static void rng_double_uniform(void **state)
{
    enum { DRAWS = 1000000, BINS = 16 };
    unsigned long count[BINS] = {0};
    weft_rng_t rng;
    weft__rng_init(&rng, 2024, 0, 0);
    double sum = 0;
    for (long i = 0; i < DRAWS; i++) {
        double d = weft__rng_double(&rng);
        assert_true(d >= 0.0 && d < 1.0);
        count[(int)(d * BINS)]++;
        sum += d;
    }
    /* Deterministic, so not flaky: +-2% is about 5 standard deviations. */
    const double expect = (double)DRAWS / BINS;
    for (int b = 0; b < BINS; b++) {
        double c = (double)count[b];
        if (c < expect * 0.98 || c > expect * 1.02)
            print_error("bin %d: %lu, expected %.0f +- 2%%\n", b, count[b], expect);
        assert_true(c >= expect * 0.98 && c <= expect * 1.02);
    }
    double mean = sum / DRAWS;
    assert_true(mean > 0.499 && mean < 0.501);
}

static void rng_double_extremes(void **state)
{
    /* The top 53 bits decide: 0 gives 0.0, all ones the largest double
     * below 1. */
    weft_rng_t rng;
    weft__rng_init(&rng, 0, 0, 0);
    rng.out[2] = rng.out[3] = 0;
    rng.avail = 2;
    assert_true(weft__rng_double(&rng) == 0.0);
    rng.out[2] = rng.out[3] = UINT32_MAX;
    rng.avail = 2;
    assert_true(weft__rng_double(&rng) == 1.0 - 0x1.0p-53);
}

/* ---- independence of thread count and order ---------------------------- */

enum { ITEMS = 10000, THREADS = 4 };

/* What one item draws: several u64, doubles and an odd-sized fill. */
static uint64_t item_digest(uint64_t index)
{
    weft_rng_t rng;
    weft__rng_init(&rng, 0xfeedface, 11, index);
    uint64_t h = 1469598103934665603u;
    for (int i = 0; i < 3; i++)
        h = (h ^ weft__rng_u64(&rng)) * 1099511628211u;
    h = (h ^ (uint64_t)(weft__rng_double(&rng) * 0x1.0p53)) * 1099511628211u;
    unsigned char buf[37];
    weft__rng_fill(&rng, buf, sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        h = (h ^ buf[i]) * 1099511628211u;
    return h ^ weft__rng_u64(&rng);
}

typedef struct job {
    uint64_t *out;
    unsigned t;
} job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    /* Thread t takes indices == t (mod THREADS), from the top down. */
    for (long i = ITEMS - 1; i >= 0; i--)
        if ((unsigned long)i % THREADS == j->t)
            j->out[i] = item_digest((uint64_t)i);
    return NULL;
}

static void rng_thread_independent(void **state)
{
    uint64_t *serial = calloc(ITEMS, sizeof *serial);
    uint64_t *par = calloc(ITEMS, sizeof *par);
    assert_non_null(serial);
    assert_non_null(par);
    for (uint64_t i = 0; i < ITEMS; i++)
        serial[i] = item_digest(i);

    pthread_t th[THREADS];
    job_t jobs[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        jobs[t] = (job_t){par, t};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &jobs[t]), 0);
    }
    for (unsigned t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);

    assert_memory_equal(serial, par, ITEMS * sizeof *serial);
    free(serial);
    free(par);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(philox_random123_kat),
        cmocka_unit_test(philox_single_bit_kat),
        cmocka_unit_test(rng_key_derivation),
        cmocka_unit_test(rng_u64_layout),
        cmocka_unit_test(rng_golden),
        cmocka_unit_test(rng_deterministic),
        cmocka_unit_test(rng_fill_is_blocks),
        cmocka_unit_test(rng_fill_mixed_with_u64),
        cmocka_unit_test(rng_double_uniform),
        cmocka_unit_test(rng_double_extremes),
        cmocka_unit_test(rng_thread_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
