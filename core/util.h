/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every room uses: one home, so that none is copied.
 */
#ifndef WEFT_CORE_UTIL_H
#define WEFT_CORE_UTIL_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds (a vDSO call, no syscall). */
static inline int64_t weft__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The same clock in seconds. */
static inline double weft__mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
