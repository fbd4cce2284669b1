/* SPDX-License-Identifier: MIT */
/* core/source.c: the range item source and the registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "source.h"

static int open_items(const char *spec, weft__source_t **src, char *err, size_t errlen)
{
    static weft__entry_t entry;
    static weft__config_t cfg;
    entry = (weft__entry_t){.section = "run", .key = "items", .value = (char *)spec,
                            .origin = "job.ini", .line = 4};
    cfg = (weft__config_t){.items = &entry};
    err[0] = '\0';
    return weft__source_open(src, &cfg, err, errlen);
}

static void range_count(void **state)
{
    (void)state;
    weft__source_t *src = NULL;
    char err[512];
    assert_int_equal(open_items("2000", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 2000);
    weft_item_t items[300];
    uint64_t seen = 0;
    size_t got;
    /* Windows smaller than the total: consecutive indices, then the end. */
    do {
        assert_int_equal(weft__source_next(src, items, 300, &got, err, sizeof err), 0);
        for (size_t k = 0; k < got; k++) {
            assert_int_equal(items[k].index, seen + k);
            assert_int_equal(items[k].number, (int64_t)(seen + k));
            assert_null(items[k].text);
        }
        seen += got;
    } while (got);
    assert_int_equal(seen, 2000);
    weft__source_close(&src);
    assert_null(src);
}

static void range_bounds(void **state)
{
    (void)state;
    weft__source_t *src = NULL;
    char err[512];
    weft_item_t items[4];
    size_t got;
    assert_int_equal(open_items("10..20", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 10);
    assert_int_equal(weft__source_next(src, items, 4, &got, err, sizeof err), 0);
    assert_int_equal(got, 4);
    assert_int_equal(items[0].number, 10);
    assert_int_equal(items[3].number, 13);
    assert_int_equal(items[3].index, 3);
    weft__source_close(&src);

    assert_int_equal(open_items("-5..5", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 10);
    assert_int_equal(weft__source_next(src, items, 1, &got, err, sizeof err), 0);
    assert_int_equal(items[0].number, -5);
    weft__source_close(&src);

    /* The widest range: 2^64 - 1 items, counted without overflow. */
    assert_int_equal(open_items("-9223372036854775808..9223372036854775807", &src, err,
                                sizeof err),
                     0);
    assert_int_equal(src->total, UINT64_MAX);
    assert_int_equal(weft__source_next(src, items, 2, &got, err, sizeof err), 0);
    assert_int_equal(items[1].number, INT64_MIN + 1);
    weft__source_close(&src);

    assert_int_equal(open_items("0x10", &src, err, sizeof err), 0);
    assert_int_equal(src->total, 16);
    weft__source_close(&src);
}

static void range_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *says;
    } cases[] = {
        {"abc", "not an item source"},
        {"5..3", "ends before it begins"},
        {"5..5", "empty"},
        {"0", "empty"},
        {"-3", "expected a count"},
        {"1..", "expected a range"},
        {"..5", "expected a range"},
        {"9223372036854775808", "expected a count"},
        {"1..2..3", "expected a range"},
        {"", "not an item source"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        weft__source_t *src = NULL;
        char err[512];
        int rc = open_items(cases[k].spec, &src, err, sizeof err);
        if (rc != -EINVAL || !strstr(err, cases[k].says) || !strstr(err, "job.ini:4:"))
            fail_msg("items = '%s': rc %d, message '%s'", cases[k].spec, rc, err);
        assert_null(src);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(range_count),
        cmocka_unit_test(range_bounds),
        cmocka_unit_test(range_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
