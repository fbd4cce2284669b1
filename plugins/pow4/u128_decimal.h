/* SPDX-License-Identifier: MIT */
/*
 * Decimal text of an unsigned 128-bit integer (printf has no conversion
 * for it).  Header-only: pow4 prints its totals with it, and the bench and
 * tests that check those totals digit for digit build the text they expect
 * with the same function.
 */
#ifndef WEFT_PLUGINS_POW4_U128_DECIMAL_H
#define WEFT_PLUGINS_POW4_U128_DECIMAL_H

#include <stddef.h>

__extension__ typedef unsigned __int128 u128; /* GCC and clang */

/* 2^128 - 1 has 39 digits; one more byte for the NUL. */
#define U128_DECIMAL_SIZE 40

/* Decimal digits of v into buf (at least U128_DECIMAL_SIZE bytes),
 * NUL-terminated; returns the length. */
static inline size_t u128_to_decimal(u128 v, char *buf)
{
    char tmp[48];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (size_t k = 0; k < n; k++)
        buf[k] = tmp[n - 1 - k];
    buf[n] = '\0';
    return n;
}

#endif
