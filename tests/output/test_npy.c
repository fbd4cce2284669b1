/* SPDX-License-Identifier: MIT */
/*
 * core/output/npy.c's scalar arrays on their own: the hole of each dtype,
 * and which results an element takes exactly (weft__npy_put_value), at
 * the edges of each type.  tests/cli/test_npy_scalars.c reads whole runs'
 * files back with numpy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"

static char dir[] = "/tmp/weft_test_npy_XXXXXX";

static weft__npy_t *scalar_array(weft_dtype_t dtype, uint64_t n)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    weft__npy_t *a = NULL;
    assert_int_equal(weft__npy_create(&a, path, dtype, n, 1, err, sizeof err), 0);
    assert_int_equal(weft__npy_holes(a), 0);
    return a;
}

static int put(weft__npy_t *a, uint64_t i, weft_result_t r, char *msg)
{
    msg[0] = '\0';
    return weft__npy_put_value(a, i, &r, msg, 256);
}

static weft_result_t int_result(int64_t v)
{
    weft_result_t r = {0};
    weft_result_int(&r, v);
    return r;
}

static weft_result_t float_result(double v)
{
    weft_result_t r = {0};
    weft_result_float(&r, v);
    return r;
}

static void npy_float64_elements(void **state)
{
    (void)state;
    char msg[256];
    weft__npy_t *a = scalar_array(WEFT_DTYPE_F64, 8);
    double d;
    for (uint64_t i = 0; i < 8; i++) { /* every element starts as a hole */
        memcpy(&d, weft__npy_row(a, i), 8);
        assert_true(isnan(d));
    }
    assert_int_equal(put(a, 0, int_result(INT64_C(1) << 53), msg), 0);
    memcpy(&d, weft__npy_row(a, 0), 8);
    assert_true(d == 0x1p53);
    assert_int_equal(put(a, 1, int_result((INT64_C(1) << 53) + 1), msg), -ERANGE);
    assert_non_null(strstr(msg, "9007199254740993 is not exact in float64 (set npy_dtype = "
                                "int64)"));
    assert_int_equal(put(a, 1, int_result(INT64_MAX), msg), -ERANGE); /* rounds to 2^63 */
    assert_int_equal(put(a, 1, int_result(INT64_MIN), msg), 0);      /* -2^63 is exact */
    weft_result_t b = {0};
    weft_result_bool(&b, true);
    assert_int_equal(put(a, 2, b, msg), 0);
    memcpy(&d, weft__npy_row(a, 2), 8);
    assert_true(d == 1.0);
    weft_result_t s = {0};
    weft_result_string(&s, "3", 1); /* a number as text is still text */
    assert_int_equal(put(a, 3, s, msg), -EINVAL);
    assert_non_null(strstr(msg, "the value is a string"));
    memcpy(&d, weft__npy_row(a, 3), 8);
    assert_true(isnan(d)); /* left as it was */
    assert_int_equal(put(a, 4, float_result(2.5), msg), 0);
    assert_int_equal(put(a, 4, (weft_result_t){0}, msg), 0); /* no value: a hole again */
    memcpy(&d, weft__npy_row(a, 4), 8);
    assert_true(isnan(d));
    assert_int_equal(put(a, 5, float_result(7.25), msg), 0);
    weft__npy_clear_row(a, 5);
    memcpy(&d, weft__npy_row(a, 5), 8);
    assert_true(isnan(d));
    weft__npy_abort(&a);
}

static void npy_float32_elements(void **state)
{
    (void)state;
    char msg[256];
    weft__npy_t *a = scalar_array(WEFT_DTYPE_F32, 2);
    float f;
    assert_int_equal(put(a, 0, float_result(0.1), msg), 0);
    memcpy(&f, weft__npy_row(a, 0), 4);
    assert_true(f == 0.1f);
    assert_int_equal(put(a, 1, float_result(1e300), msg), -ERANGE);
    assert_non_null(strstr(msg, "outside float32's range"));
    assert_int_equal(put(a, 1, float_result(INFINITY), msg), 0); /* as numpy keeps it */
    assert_int_equal(put(a, 1, int_result((1 << 24) + 1), msg), -ERANGE);
    assert_int_equal(put(a, 1, int_result(1 << 24), msg), 0);
    weft__npy_abort(&a);
}

static void npy_int_elements(void **state)
{
    (void)state;
    char msg[256];
    weft__npy_t *a = scalar_array(WEFT_DTYPE_I64, 4);
    int64_t v;
    memcpy(&v, weft__npy_row(a, 3), 8);
    assert_true(v == INT64_MIN);
    assert_int_equal(put(a, 0, int_result(INT64_MAX), msg), 0);
    memcpy(&v, weft__npy_row(a, 0), 8);
    assert_true(v == INT64_MAX);
    assert_int_equal(put(a, 1, int_result(INT64_MIN), msg), -ERANGE);
    assert_non_null(strstr(msg, "its minimum marks the holes"));
    assert_int_equal(put(a, 1, float_result(-0x1p63), msg), -ERANGE); /* the hole too */
    assert_int_equal(put(a, 1, float_result(0x1p63), msg), -ERANGE);
    assert_int_equal(put(a, 1, float_result(NAN), msg), -ERANGE);
    assert_non_null(strstr(msg, "nan is not an integer"));
    assert_int_equal(put(a, 1, float_result(-42.0), msg), 0);
    memcpy(&v, weft__npy_row(a, 1), 8);
    assert_true(v == -42);
    weft__npy_abort(&a);

    static const struct {
        weft_dtype_t dtype;
        int64_t max;
    } small[] = {{WEFT_DTYPE_I32, INT32_MAX}, {WEFT_DTYPE_I16, INT16_MAX}, {WEFT_DTYPE_I8, INT8_MAX}};
    for (size_t k = 0; k < 3; k++) {
        a = scalar_array(small[k].dtype, 2);
        size_t size = weft__dtype_size(small[k].dtype);
        assert_int_equal(put(a, 0, int_result(small[k].max), msg), 0);
        assert_int_equal(put(a, 1, int_result(-small[k].max), msg), 0);
        assert_int_equal(put(a, 1, int_result(small[k].max + 1), msg), -ERANGE);
        assert_int_equal(put(a, 1, int_result(-small[k].max - 1), msg), -ERANGE);
        int64_t got = 0;
        unsigned char *row = weft__npy_row(a, 1);
        /* little-endian, sign-extended: the element still holds -max */
        memcpy(&got, row, size);
        if (row[size - 1] & 0x80)
            memset((unsigned char *)&got + size, 0xff, 8 - size);
        assert_true(got == -small[k].max);
        weft__npy_clear_row(a, 0);
        memcpy(&got, weft__npy_row(a, 0), size);
        memset((unsigned char *)&got + size, 0xff, 8 - size);
        assert_true(got == -small[k].max - 1);
        weft__npy_abort(&a);
    }
}

/* Unsigned dtypes have no hole: weft__npy_holes refuses them. */
static void npy_no_hole_for_unsigned(void **state)
{
    (void)state;
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/u.npy", dir);
    weft__npy_t *a = NULL;
    assert_int_equal(weft__npy_create(&a, path, WEFT_DTYPE_U8, 4, 1, err, sizeof err), 0);
    assert_int_equal(weft__npy_holes(a), -EINVAL);
    weft__npy_abort(&a);
    assert_int_equal(weft__npy_create(&a, path, WEFT_DTYPE_F64, 4, 3, err, sizeof err), 0);
    assert_int_equal(weft__npy_holes(a), -EINVAL); /* rows of 3: not a scalar array */
    weft__npy_abort(&a);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npy_float64_elements),
        cmocka_unit_test(npy_float32_elements),
        cmocka_unit_test(npy_int_elements),
        cmocka_unit_test(npy_no_hole_for_unsigned),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
