/* SPDX-License-Identifier: MIT */
/*
 * Philox4x32-10: J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw,
 * "Parallel Random Numbers: As Easy as 1, 2, 3", SC11.  Checked against the
 * known-answer vectors of Random123 (tests/test_rng.c).
 *
 * The stream of one item:
 *   key     = splitmix64(run_seed ^ splitmix64(stream)), low word first
 *   counter = { index lo, index hi, block lo, block hi }, block = 0, 1, ...
 * Each block gives four 32-bit words, read in order.  rng_u64 takes two
 * words (first word = low half) and drops a lone leftover word; rng_double
 * is the top 53 bits of one u64.  rng_fill(n > 0) starts at the next unused
 * block (dropping unread words), writes each word little-endian, and
 * drops what is left of the last, partial, block: so a fill is exactly the
 * concatenation of whole blocks, and the bytes do not depend on the host.
 */
#include <string.h>

#include "loader.h"

#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9) /* golden ratio                   */
#define PHILOX_W1 UINT32_C(0xBB67AE85) /* sqrt(3) - 1                    */

static inline void philox_round(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c[0] = n0;
    c[1] = n1;
    c[2] = n2;
    c[3] = n3;
}

static inline void philox_block(const uint32_t ctr[4], const uint32_t key[2],
                                uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k0 = key[0], k1 = key[1];
    /* The key is bumped between rounds, not before the first. */
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        philox_round(c, k0, k1);
    }
    memcpy(out, c, sizeof c);
}

void weft__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    philox_block(ctr, key, out);
}

/* Steele, Lea, Flood, "Fast splittable pseudorandom number generators"
 * (OOPSLA 2014): the splitmix64 output function of x + golden gamma. */
static uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x + UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void weft__rng_init(weft_rng_t *rng, uint64_t run_seed, uint64_t stream, uint64_t index)
{
    /* Mixing stream first keeps nearby (seed, stream) pairs from sharing a
     * key, e.g. (1, 0) and (0, 1) under a plain xor. */
    uint64_t k = splitmix64(run_seed ^ splitmix64(stream));
    memset(rng, 0, sizeof *rng);
    rng->key[0] = (uint32_t)k;
    rng->key[1] = (uint32_t)(k >> 32);
    rng->index = index;
    rng->block = 0;
    rng->avail = 0;
}

static inline void next_block(weft_rng_t *rng, uint32_t out[4])
{
    const uint32_t ctr[4] = {(uint32_t)rng->index, (uint32_t)(rng->index >> 32),
                             (uint32_t)rng->block, (uint32_t)(rng->block >> 32)};
    philox_block(ctr, rng->key, out);
    rng->block++;
}

uint64_t weft__rng_u64(weft_rng_t *rng)
{
    if (rng->avail < 2) {
        next_block(rng, rng->out);
        rng->avail = 4;
    }
    unsigned at = 4u - rng->avail;
    uint64_t v = (uint64_t)rng->out[at] | (uint64_t)rng->out[at + 1] << 32;
    rng->avail -= 2;
    return v;
}

double weft__rng_double(weft_rng_t *rng)
{
    return (double)(weft__rng_u64(rng) >> 11) * 0x1.0p-53;
}

/* Byte stores: defined order on any host; compilers merge them into one
 * store on little-endian targets. */
static inline void store_le32(unsigned char *p, uint32_t w)
{
    p[0] = (unsigned char)w;
    p[1] = (unsigned char)(w >> 8);
    p[2] = (unsigned char)(w >> 16);
    p[3] = (unsigned char)(w >> 24);
}

/* LANES consecutive blocks at once: the rounds of one block form a chain
 * of dependent multiplies, so independent blocks side by side keep the
 * multiplier busy (and let the compiler use vector multiplies). */
enum { LANES = 4 };

static void fill_lanes(weft_rng_t *rng, unsigned char *p)
{
    uint32_t c[4][LANES];
    for (int l = 0; l < LANES; l++) {
        uint64_t b = rng->block + (uint64_t)l;
        c[0][l] = (uint32_t)rng->index;
        c[1][l] = (uint32_t)(rng->index >> 32);
        c[2][l] = (uint32_t)b;
        c[3][l] = (uint32_t)(b >> 32);
    }
    uint32_t k0 = rng->key[0], k1 = rng->key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        for (int l = 0; l < LANES; l++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c[0][l];
            uint64_t p1 = (uint64_t)PHILOX_M1 * c[2][l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1][l] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3][l] ^ k1;
            c[1][l] = (uint32_t)p1;
            c[3][l] = (uint32_t)p0;
            c[0][l] = n0;
            c[2][l] = n2;
        }
    }
    for (int l = 0; l < LANES; l++)
        for (int w = 0; w < 4; w++)
            store_le32(p + 16 * l + 4 * w, c[w][l]);
    rng->block += LANES;
}

void weft__rng_fill(weft_rng_t *rng, void *buf, size_t n)
{
    if (n == 0)
        return;
    unsigned char *p = buf;
    uint32_t out[4];
    rng->avail = 0;
    for (; n >= 16 * LANES; n -= 16 * LANES, p += 16 * LANES)
        fill_lanes(rng, p);
    for (; n >= 16; n -= 16, p += 16) {
        next_block(rng, out);
        store_le32(p, out[0]);
        store_le32(p + 4, out[1]);
        store_le32(p + 8, out[2]);
        store_le32(p + 12, out[3]);
    }
    if (n > 0) {
        unsigned char tail[16];
        next_block(rng, out);
        for (int w = 0; w < 4; w++)
            store_le32(tail + 4 * w, out[w]);
        memcpy(p, tail, n);
    }
}
