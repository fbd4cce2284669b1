/* SPDX-License-Identifier: MIT */
/*
 * End to end: `output = FILE.npy` for plugins without row_spec, whose
 * results are numbers: a 1-D array of npy_dtype (float64 by default), one
 * element per item in input order, holes (NaN, or the int minimum) where
 * an item has no number.  numpy reads every file back
 * (tests/cli/npy_check.py), against what the items say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

/* Debian's python3, as tests/cli/test_formats.c. */
#define PYTHON "/usr/bin/python3"

static const char *tmp;
static bool have_numpy;

static int setup(void **state)
{
    (void)state;
    if (!(tmp = e2e_setup("npy_scalars")))
        return -1;
    have_numpy = system(PYTHON " -c 'import numpy' 2>/dev/null") == 0;
    if (!have_numpy)
        fprintf(stderr, "npy_scalars: numpy is not installed for " PYTHON
                        " (bash .ci/deps installs python3-numpy): the checks through it "
                        "are skipped\n");
    return 0;
}

/* What element k must be: a value, a hole, or either (a run that stopped). */
typedef struct expect {
    enum { WANT_INT, WANT_FLOAT, WANT_HOLE, WANT_INT_OR_HOLE } kind;
    int64_t i;
    double f;
} expect_t;

/* numpy's view of path: its dtype is descr and element k is want[k].  The
 * holes numpy counts, or -1 when numpy is not there. */
static long npy_check(const char *path, const char *descr, const expect_t *want, size_t n)
{
    if (!have_numpy)
        return -1;
    char *expect_path = strdup(e2e_path("expect.json"));
    FILE *f = fopen(expect_path, "w");
    assert_non_null(f);
    fputc('[', f);
    for (size_t k = 0; k < n; k++) {
        if (k)
            fputc(',', f);
        switch (want[k].kind) {
        case WANT_INT: fprintf(f, "%" PRId64, want[k].i); break;
        case WANT_FLOAT: fprintf(f, "%.17g", want[k].f); break;
        case WANT_HOLE: fputs("null", f); break;
        case WANT_INT_OR_HOLE: fprintf(f, "[%" PRId64 "]", want[k].i); break;
        }
    }
    fputs("]\n", f);
    assert_int_equal(fclose(f), 0);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, PYTHON " '%s/tests/cli/npy_check.py' '%s' '%s' '%s'",
             getenv("WEFT_SOURCE_ROOT"), path, descr, expect_path);
    free(expect_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096] = "";
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("numpy disagrees on %s:\n%s", path, out);
    long holes = -1;
    const char *h = strstr(out, "holes=");
    assert_non_null(h);
    holes = strtol(h + 6, NULL, 10);
    return holes;
}

static expect_t *expect_alloc(size_t n)
{
    expect_t *e = calloc(n, sizeof *e);
    assert_non_null(e);
    return e;
}

static const char *const isolate[] = {"thread", "process"};

/* add_one over a range: i + 1 at i, in input order, with any thread count
 * and either engine; float64 when nothing says otherwise, int64 or int32
 * when npy_dtype says so.  `format = npy` names a file of any name. */
static void npy_add_one_values(void **state)
{
    (void)state;
    enum { N = 20000 };
    const char *ini = strdup(e2e_write("add.ini", "[run]\nplugin = add_one\nitems = 20000\n"
                                                  "output = add.npy\n"));
    char *out = strdup(e2e_path("add.npy"));
    expect_t *want = expect_alloc(N);
    for (size_t k = 0; k < N; k++)
        want[k] = (expect_t){.kind = WANT_INT, .i = (int64_t)k + 1};
    for (int m = 0; m < 2; m++) {
        char iso[64];
        snprintf(iso, sizeof iso, "run.isolate=%s", isolate[m]);
        e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-j", "2", "--set", iso);
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
        assert_true(npy_check(out, "<f8", want, N) <= 0);
        o = E2E_RUN("run", ini, "-q", "-j", "2", "--set", iso, "--set", "run.npy_dtype=int64");
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
        assert_true(npy_check(out, "<i8", want, N) <= 0);
    }
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "--set", "run.npy_dtype=int32");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_true(npy_check(out, "<i4", want, N) <= 0);
    /* The size says the shape: header + 8 bytes an item. */
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_size, 128 + 8 * N);
    /* format = npy, whatever the name. */
    char *dat = strdup(e2e_path("add.dat"));
    o = E2E_RUN("run", ini, "-q", "--set", "run.format=npy", "-o", dat);
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_true(npy_check(dat, "<f8", want, N) <= 0);
    /* weft check says what it will write. */
    o = E2E_RUN("check", ini, "--set", "run.npy_dtype=int64");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "a .npy array of int64, one number per item"));
    e2e_free(&o);
    free(dat);
    free(want);
    free(out);
    free((char *)ini);
}

/* pow4's i^4 (ints up to 2^53 are exact in float64); float results
 * (echo mode = float) as they are, narrowed for float32. */
static void npy_pow4_and_floats(void **state)
{
    (void)state;
    enum { N = 5000 };
    const char *ini = strdup(e2e_write("pow.ini", "[run]\nplugin = pow4\nitems = 5000\n"
                                                  "output = pow.npy\n"));
    expect_t *want = expect_alloc(N);
    for (size_t k = 0; k < N; k++)
        want[k] = (expect_t){.kind = WANT_INT, .i = (int64_t)(k * k * k * k)};
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-j", "2");
    e2e_expect(&o, 0, NULL); /* its finish prints the sum on stdout */
    e2e_free(&o);
    assert_true(npy_check(e2e_path("pow.npy"), "<f8", want, N) <= 0);
    free((char *)ini);

    ini = e2e_write("fl.ini", "[run]\nplugin = echo\nitems = 5000\noutput = fl.npy\n"
                              "[args]\nmode = float\nx = 0.1\n");
    for (size_t k = 0; k < N; k++)
        want[k] = (expect_t){.kind = WANT_FLOAT, .f = (double)k * 0.1};
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_true(npy_check(e2e_path("fl.npy"), "<f8", want, N) <= 0);
    o = E2E_RUN("run", ini, "-q", "--set", "run.npy_dtype=float32");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_true(npy_check(e2e_path("fl.npy"), "<f4", want, N) <= 0);
    free(want);
}

/* Failed items are holes at their index, the others keep theirs: NaN in
 * float64, INT64_MIN in int64; so are items a worker process crashed on.
 * The run exits 1 and says which failed, as for any output. */
static void npy_failed_items_are_holes(void **state)
{
    (void)state;
    enum { N = 300 };
    const char *ini = strdup(e2e_write("fail.ini", "[run]\nplugin = fault\nitems = 300\n"
                                                   "output = fail.npy\njournal = off\n"
                                                   "[args]\nfail = 0,7,150,299\n"));
    char *out = strdup(e2e_path("fail.npy"));
    expect_t *want = expect_alloc(N);
    for (size_t k = 0; k < N; k++)
        want[k] = (expect_t){.kind = WANT_INT, .i = 3 * (int64_t)k + 1};
    want[0].kind = want[7].kind = want[150].kind = want[299].kind = WANT_HOLE;
    static const char *const dtypes[] = {"run.npy_dtype=float64", "run.npy_dtype=int64"};
    static const char *const descr[] = {"<f8", "<i8"};
    for (int m = 0; m < 2; m++) {
        for (int d = 0; d < 2; d++) {
            char iso[64];
            snprintf(iso, sizeof iso, "run.isolate=%s", isolate[m]);
            e2e_outcome_t o = E2E_RUN("run", ini, "-j", "2", "--set", iso, "--set", dtypes[d]);
            e2e_expect(&o, 1, "296 ok, 4 failed");
            assert_non_null(strstr(o.err, "item 150 fails on purpose"));
            e2e_free(&o);
            long holes = npy_check(out, descr[d], want, N);
            assert_true(holes == 4 || holes == -1);
        }
    }
    /* A crash in a worker process: a hole too, the rest kept. */
    const char *segv = e2e_write("segv.ini", "[run]\nplugin = fault\nitems = 300\n"
                                             "output = fail.npy\njournal = off\n"
                                             "isolate = process\n[args]\nsegv = 42\n");
    setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:handle_segv=0", 1);
    e2e_outcome_t o = E2E_RUN("run", segv, "-j", "2");
    setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1", 1);
    e2e_expect(&o, 1, "299 ok, 0 failed, 1 crashed");
    e2e_free(&o);
    for (size_t k = 0; k < N; k++)
        want[k] = (expect_t){.kind = WANT_INT, .i = 3 * (int64_t)k + 1};
    want[42].kind = WANT_HOLE;
    long holes = npy_check(out, "<f8", want, N);
    assert_true(holes == 1 || holes == -1);
    free(want);
    free(out);
    free((char *)ini);
}

/* A value the dtype cannot hold exactly fails its item, with the reason
 * and the key to change, and leaves a hole: strings, JSON, an integer
 * beyond 2^53 in float64, a fraction in int64, a value equal to the int
 * hole.  The same values in int64 are kept exactly (checked against the
 * same run's JSON Lines). */
static void npy_values_that_do_not_fit(void **state)
{
    (void)state;
    enum { N = 50 };
    const char *str = e2e_write("str.ini", "[run]\nplugin = echo\nitems = 50\noutput = s.npy\n"
                                           "[args]\nmode = string\n");
    e2e_outcome_t o = E2E_RUN("run", str);
    e2e_expect(&o, 1, "0 ok, 50 failed");
    assert_non_null(strstr(o.err, "the value is a string, and a .npy array of float64 holds "
                                  "one number per item"));
    e2e_free(&o);
    expect_t *want = expect_alloc(N);
    for (size_t k = 0; k < N; k++)
        want[k].kind = WANT_HOLE;
    long holes = npy_check(e2e_path("s.npy"), "<f8", want, N);
    assert_true(holes == N || holes == -1);
    o = E2E_RUN("run", str, "--set", "args.mode=json");
    e2e_expect(&o, 1, "the value is JSON text");
    e2e_free(&o);

    /* rng: 63-bit integers, almost none exact in float64. */
    const char *rng = strdup(e2e_write("rng.ini", "[run]\nplugin = echo\nitems = 50\n"
                                                  "output = r.npy\n[args]\nmode = rng\n"));
    o = E2E_RUN("run", rng);
    e2e_expect(&o, 1, "(set npy_dtype = int64)");
    assert_non_null(strstr(o.err, "is not exact in float64"));
    e2e_free(&o);
    o = E2E_RUN("run", rng, "-q", "--set", "run.npy_dtype=int64");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    o = E2E_RUN("run", rng, "-q", "-o", e2e_path("r.jsonl"));
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    char *text = e2e_slurp(e2e_path("r.jsonl"), NULL);
    assert_non_null(text);
    char *s = text;
    for (size_t k = 0; k < N; k++) {
        char *end;
        want[k] = (expect_t){.kind = WANT_INT, .i = strtoll(s, &end, 10)};
        assert_true(end > s && *end == '\n');
        s = end + 1;
    }
    free(text);
    holes = npy_check(e2e_path("r.npy"), "<i8", want, N);
    assert_true(holes == 0 || holes == -1);

    /* Fractions into int64: odd numbers * 0.5 fail, even ones fit. */
    o = E2E_RUN("run", rng, "--set", "args.mode=float", "--set", "run.npy_dtype=int64");
    e2e_expect(&o, 1, "25 ok, 25 failed");
    assert_non_null(strstr(o.err, "0.5 is not an integer: a int64 array holds integers"));
    e2e_free(&o);
    for (size_t k = 0; k < N; k++)
        want[k] = k % 2 ? (expect_t){.kind = WANT_HOLE}
                        : (expect_t){.kind = WANT_INT, .i = (int64_t)k / 2};
    holes = npy_check(e2e_path("r.npy"), "<i8", want, N);
    assert_true(holes == 25 || holes == -1);

    /* int8: -140..-91: below its range, then -128 (its hole), then in it. */
    o = E2E_RUN("run", rng, "--set", "args.mode=int", "--set", "args.n=-140", "--set",
                "run.npy_dtype=int8");
    e2e_expect(&o, 1, "37 ok, 13 failed");
    assert_non_null(strstr(o.err, "-140 is outside int8's -127..127 (npy_dtype)"));
    e2e_free(&o);
    o = E2E_RUN("run", rng, "--set", "args.mode=int", "--set", "args.n=-128", "--set",
                "run.npy_dtype=int8", "--set", "run.items=1");
    e2e_expect(&o, 1, "-128 is outside int8's -127..127: its minimum marks the holes");
    e2e_free(&o);
    free(want);
    free((char *)rng);
}

/* npy_dtype: its values, its place (a .npy output, a plugin without
 * row_spec), said with where it was set. */
static void npy_dtype_errors(void **state)
{
    (void)state;
    const char *ini = e2e_write("bad.ini", "[run]\nplugin = add_one\nitems = 5\n"
                                           "output = b.npy\nnpy_dtype = double\n");
    e2e_outcome_t o = E2E_RUN("run", ini);
    e2e_expect(&o, 2, "bad.ini:5: npy_dtype = 'double': expected float64, float32, int64, "
                      "int32, int16 or int8");
    e2e_free(&o);
    ini = e2e_write("bad2.ini", "[run]\nplugin = add_one\nitems = 5\n"
                                "output = b.json\nnpy_dtype = int64\n");
    o = E2E_RUN("run", ini);
    e2e_expect(&o, 2, "bad2.ini:5: npy_dtype = 'int64': npy_dtype is for .npy outputs "
                      "(this output is json)");
    e2e_free(&o);
    ini = e2e_write("bad3.ini", "[run]\nplugin = fill_array\nitems = 5\n"
                                "output = b.npy\nnpy_dtype = int64\n");
    o = E2E_RUN("run", ini);
    e2e_expect(&o, 2, "bad3.ini:5: npy_dtype: plugin fill_array writes rows of its own dtype "
                      "(row_spec): drop npy_dtype");
    e2e_free(&o);
    o = E2E_RUN("check", ini);
    e2e_expect(&o, 2, "drop npy_dtype");
    e2e_free(&o);
    struct stat st;
    assert_int_equal(stat(e2e_path("b.npy"), &st), -1); /* nothing written */
}

/* Stopped, resumed, retried: positions stay item indices.  A run halted
 * by its failure policy keeps holes for what did not run; --resume runs
 * those (the failed item stays a hole), every other element comes back
 * from the journal; --retry-failed --force with the failure gone fills
 * the last hole. */
static void npy_resume_keeps_positions(void **state)
{
    (void)state;
    enum { N = 400 };
    const char *ini = strdup(e2e_write("res.ini", "[run]\nplugin = fault\nitems = 400\n"
                                                  "output = res.npy\nthreads = 2\n"
                                                  "halt = soon,fail=1\nnpy_dtype = int64\n"
                                                  "[args]\nfail = 20\nsleep_ms = 2\n"));
    char *out = strdup(e2e_path("res.npy"));
    expect_t *want = expect_alloc(N);
    for (size_t k = 0; k < N; k++)
        want[k] = (expect_t){.kind = WANT_INT_OR_HOLE, .i = 3 * (int64_t)k + 1};
    want[20].kind = WANT_HOLE;
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 4, NULL); /* halted */
    e2e_free(&o);
    long holes = npy_check(out, "<i8", want, N);
    assert_true(holes > 100 || holes == -1); /* most never ran */
    for (int m = 0; m < 2; m++) {
        for (size_t k = 0; k < N; k++)
            want[k].kind = WANT_INT;
        want[20].kind = WANT_HOLE;
        char iso[64];
        snprintf(iso, sizeof iso, "run.isolate=%s", isolate[m]);
        /* The second resume reuses everything but item 20. */
        o = E2E_RUN("run", ini, "-q", "--resume", "--set", "run.halt=never", "--set", iso);
        e2e_expect(&o, 1, NULL);
        e2e_free(&o);
        holes = npy_check(out, "<i8", want, N);
        assert_true(holes == 1 || holes == -1);
    }
    /* The dtype is part of what the journal's results mean. */
    o = E2E_RUN("run", ini, "-q", "--resume", "--set", "run.npy_dtype=float64");
    e2e_expect(&o, 2, "npy_dtype");
    e2e_free(&o);
    o = E2E_RUN("run", ini, "-q", "--retry-failed", "--force", "--set", "args.fail=",
                "--set", "run.halt=never");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    want[20].kind = WANT_INT;
    holes = npy_check(out, "<i8", want, N);
    assert_true(holes == 0 || holes == -1);
    free(want);
    free(out);
    free((char *)ini);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npy_add_one_values),
        cmocka_unit_test(npy_pow4_and_floats),
        cmocka_unit_test(npy_failed_items_are_holes),
        cmocka_unit_test(npy_values_that_do_not_fit),
        cmocka_unit_test(npy_dtype_errors),
        cmocka_unit_test(npy_resume_keeps_positions),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
