/* SPDX-License-Identifier: MIT */
/*
 * Array output (.npy written in place), flatten and order = any, end to
 * end through the weft binary with the fill_array plugin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"

static int setup(void **state)
{
    (void)state;
    return e2e_setup("fill") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup();
    return 0;
}

/* Checks a .npy file's header; returns the offset of its data. */
static size_t check_header(const char *npy, size_t len, const char *descr, const char *shape)
{
    assert_true(len >= 64);
    assert_memory_equal(npy, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (unsigned char)npy[8] | (size_t)(unsigned char)npy[9] << 8;
    size_t data = 10 + hlen;
    assert_int_equal(data % 64, 0); /* data aligned, as NEP 1 asks */
    assert_int_equal(npy[data - 1], '\n');
    char dict[256];
    snprintf(dict, sizeof dict, "%.*s", (int)hlen, npy + 10);
    char want[128];
    snprintf(want, sizeof want, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
             descr, shape);
    if (strncmp(dict, want, strlen(want)) != 0)
        fail_msg("header '%s', want '%s'", dict, want);
    return data;
}

static bool has_temp_files(void)
{
    DIR *d = opendir(e2e_path(""));
    bool found = false;
    for (struct dirent *e; d && (e = readdir(d));)
        found |= strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return found;
}

static void npy_in_place(void **state)
{
    (void)state;
    const char *cfg = e2e_write("rows.ini", "[run]\nplugin = fill_array\nitems = 1000\n"
                                            "output = rows.npy\n[args]\ncolumns = 5\n"
                                            "scale = 0.5\n");
    char *first = NULL;
    size_t first_len = 0;
    static const char *const threads[] = {"1", "2", "8"};
    for (int t = 0; t < 3; t++) {
        e2e_outcome_t o = E2E_RUN("run", cfg, "-j", threads[t]);
        e2e_expect(&o, 0, "1000 ok, 0 failed");
        e2e_free(&o);
        size_t len;
        char *npy = e2e_slurp(e2e_path("rows.npy"), &len);
        assert_non_null(npy);
        size_t data = check_header(npy, len, "<f8", "(1000, 5)");
        assert_int_equal(len, data + 1000 * 5 * sizeof(double));
        for (int i = 0; i < 1000; i++)
            for (int j = 0; j < 5; j++) {
                double v;
                memcpy(&v, npy + data + ((size_t)i * 5 + (size_t)j) * 8, 8);
                if (v != i * 0.5 + j)
                    fail_msg("row %d col %d: %g", i, j, v);
            }
        if (!first) {
            first = npy, first_len = len;
        } else {
            assert_int_equal(len, first_len); /* identical whatever the threads */
            assert_memory_equal(npy, first, len);
            free(npy);
        }
        assert_false(has_temp_files());
    }
    free(first);
}

static void npy_loads_with_numpy(void **state)
{
    (void)state;
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
        skip(); /* numpy is not installed here: the C checks above still ran */
        return;
    }
    const char *cfg = e2e_write("sin.ini", "[run]\nplugin = fill_array\nitems = 300\n"
                                           "output = sin.npy\n[args]\ncolumns = 7\n"
                                           "function = sin\nscale = 0.01\n");
    e2e_outcome_t o = E2E_RUN("run", cfg);
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s'); "
             "i = np.arange(300)[:, None] * 0.01 * np.arange(1, 8)[None, :]; "
             "assert a.shape == (300, 7) and a.dtype == np.float64; "
             "assert np.allclose(a, np.sin(i), rtol=0, atol=1e-12), abs(a - np.sin(i)).max()\"",
             e2e_path("sin.npy"));
    assert_int_equal(system(cmd), 0); /* numpy's sin and libm's may differ in the last bit */

    /* linear rows are exact in float64: equal to the last bit. */
    o = E2E_RUN("run", cfg, "--set", "args.function=linear", "--set", "args.scale=0.25");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s'); "
             "want = np.arange(300)[:, None] * 0.25 + np.arange(7)[None, :]; "
             "assert np.array_equal(a, want)\"",
             e2e_path("sin.npy"));
    assert_int_equal(system(cmd), 0);
}

static void npy_one_column_is_1d(void **state)
{
    (void)state;
    const char *cfg = e2e_write("one.ini", "[run]\nplugin = fill_array\nitems = 10..20\n"
                                           "output = one.npy\n[args]\ncolumns = 1\n");
    e2e_outcome_t o = E2E_RUN("run", cfg);
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    size_t len;
    char *npy = e2e_slurp(e2e_path("one.npy"), &len);
    size_t data = check_header(npy, len, "<f8", "(10,)");
    double v;
    memcpy(&v, npy + data + 9 * 8, 8);
    assert_true(v == 19.0); /* item numbers, not indices */
    free(npy);
}

static void npy_failed_rows_are_zero(void **state)
{
    (void)state;
    const char *cfg = e2e_write("fail.ini", "[run]\nplugin = fail_some\nitems = 100\n"
                                            "output = fail.npy\n[args]\nevery = 3\n");
    e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "4");
    e2e_expect(&o, 1, "66 ok, 34 failed");
    e2e_free(&o);
    size_t len;
    char *npy = e2e_slurp(e2e_path("fail.npy"), &len);
    size_t data = check_header(npy, len, "<i8", "(100, 2)");
    for (int64_t i = 0; i < 100; i++) {
        int64_t row[2];
        memcpy(row, npy + data + (size_t)i * 16, 16);
        if (i % 3 == 0)
            assert_true(row[0] == 0 && row[1] == 0);
        else
            assert_true(row[0] == i && row[1] == i * i);
    }
    free(npy);
}

static void npy_errors(void **state)
{
    (void)state;
    /* A plugin without row_spec writes one number per item
     * (tests/cli/test_npy_scalars.c), which needs the count up front too. */
    const char *cfg = e2e_write("bad.ini", "[run]\nplugin = add_one\nitems = stdin\n"
                                           "output = bad.npy\n");
    e2e_outcome_t o = E2E_RUN("run", cfg);
    e2e_expect(&o, 2, "needs the item count up front");
    e2e_free(&o);
    assert_int_equal(access(e2e_path("bad.npy"), F_OK), -1);

    cfg = e2e_write("stdin.ini", "[run]\nplugin = fill_array\nitems = stdin\n"
                                 "output = s.npy\n");
    o = E2E_RUN("run", cfg);
    e2e_expect(&o, 2, NULL); /* empty stdin, or no count up front: refused */
    e2e_free(&o);

    cfg = e2e_write("dash.ini", "[run]\nplugin = fill_array\nitems = 3\noutput = -\n"
                                "format = npy\n");
    o = E2E_RUN("run", cfg);
    e2e_expect(&o, 2, "must be a file");
    e2e_free(&o);
}

static void flatten_lists(void **state)
{
    (void)state;
    const char *cfg = e2e_write("flat.ini", "[run]\nplugin = fill_array\nitems = 6\n"
                                            "output = -\nformat = json\nflatten = true\n"
                                            "[args]\ncolumns = 4\n");
    e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "3");
    e2e_expect(&o, 0, NULL);
    cJSON *j = cJSON_Parse(o.out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 24);
    for (int k = 0; k < 24; k++)
        assert_true(cJSON_GetArrayItem(j, k)->valuedouble == (double)(k / 4 + k % 4));
    cJSON_Delete(j);
    e2e_free(&o);

    /* Long lists: the worker's buffer must grow while a list is spliced
     * (a use-after-free here once; ASan watches this case). */
    o = E2E_RUN("run", cfg, "--set", "args.columns=3000", "--set", "run.items=3");
    e2e_expect(&o, 0, NULL);
    j = cJSON_Parse(o.out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 9000);
    assert_true(cJSON_GetArrayItem(j, 8999)->valuedouble == 2.0 + 2999.0);
    cJSON_Delete(j);
    e2e_free(&o);

    /* Without flatten: one list per item. */
    o = E2E_RUN("run", cfg, "--set", "run.flatten=false");
    j = cJSON_Parse(o.out);
    assert_int_equal(cJSON_GetArraySize(j), 6);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(j, 5)), 4);
    cJSON_Delete(j);
    e2e_free(&o);

    /* record = full, JSON Lines: each element keeps its item's index. */
    o = E2E_RUN("run", cfg, "--set", "run.record=full", "--set", "run.format=jsonl");
    e2e_expect(&o, 0, NULL);
    int lines = 0;
    for (char *line = strtok(o.out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *rec = cJSON_Parse(line);
        assert_non_null(rec);
        assert_int_equal(cJSON_GetObjectItem(rec, "index")->valueint, lines / 4);
        cJSON_Delete(rec);
    }
    assert_int_equal(lines, 24);
    e2e_free(&o);

    /* Non-list values pass through flatten unchanged. */
    cfg = e2e_write("flat1.ini", "[run]\nplugin = add_one\nitems = 3\noutput = -\n"
                                 "flatten = yes\n");
    o = E2E_RUN("run", cfg);
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "1\n2\n3\n");
    e2e_free(&o);
}

static void order_any_keeps_every_record(void **state)
{
    (void)state;
    enum { N = 50000 };
    const char *cfg = e2e_write("any.ini", "[run]\nplugin = add_one\nitems = 50000\n"
                                           "output = any.jsonl\norder = any\nrecord = full\n");
    static const char *const threads[] = {"1", "4"};
    for (int t = 0; t < 2; t++) {
        e2e_outcome_t o = E2E_RUN("run", cfg, "-j", threads[t]);
        e2e_expect(&o, 0, "50000 ok");
        e2e_free(&o);
        char *text = e2e_slurp(e2e_path("any.jsonl"), NULL);
        static unsigned char seen[N];
        memset(seen, 0, sizeof seen);
        int lines = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
            cJSON *rec = cJSON_Parse(line);
            assert_non_null(rec);
            int i = cJSON_GetObjectItem(rec, "index")->valueint;
            assert_true(i >= 0 && i < N);
            assert_int_equal(cJSON_GetObjectItem(rec, "value")->valueint, i + 1);
            seen[i]++;
            cJSON_Delete(rec);
        }
        assert_int_equal(lines, N);
        for (int i = 0; i < N; i++)
            assert_int_equal(seen[i], 1); /* exactly once */
        free(text);
    }
    /* A JSON array in completion order is still one valid array. */
    e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "3", "-o", e2e_path("any.json"));
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    char *text = e2e_slurp(e2e_path("any.json"), NULL);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), N);
    cJSON_Delete(j);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npy_in_place),
        cmocka_unit_test(npy_loads_with_numpy),
        cmocka_unit_test(npy_one_column_is_1d),
        cmocka_unit_test(npy_failed_rows_are_zero),
        cmocka_unit_test(npy_errors),
        cmocka_unit_test(flatten_lists),
        cmocka_unit_test(order_any_keeps_every_record),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
