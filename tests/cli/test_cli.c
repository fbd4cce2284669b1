/* SPDX-License-Identifier: MIT */
/*
 * End to end: the weft binary run as a real process on real config files,
 * checking its output files, stdout, stderr and exit status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "u128_decimal.h"

static const char *tmp; /* the temporary folder, from e2e_setup */

static int setup(void **state)
{
    (void)state;
    /* Configs find the shipped and test plugins through the search path. */
    return (tmp = e2e_setup("cli")) ? 0 : -1;
}

/* ---- the command line ---------------------------------------------------- */

static void cli_usage_and_version(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("--version");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "weft 0.1.0"));
    e2e_free(&o);

    o = e2e_run((const char *const[]){NULL});
    e2e_expect(&o, 2, "usage: weft run CONFIG");
    e2e_free(&o);

    o = E2E_RUN("--help");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "exit status"));
    e2e_free(&o);

    o = E2E_RUN("run", "--help");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);

    o = E2E_RUN("frobnicate");
    e2e_expect(&o, 2, "unknown command 'frobnicate'");
    e2e_free(&o);

    o = E2E_RUN("run");
    e2e_expect(&o, 2, "which config?");
    e2e_free(&o);

    o = E2E_RUN("run", "a.ini", "--bogus");
    e2e_expect(&o, 2, "unknown option '--bogus'");
    e2e_free(&o);

    o = E2E_RUN("run", "a.ini", "--threads", "many");
    e2e_expect(&o, 2, "--threads 'many'");
    e2e_free(&o);

    o = E2E_RUN("run", "a.ini", "--threads");
    e2e_expect(&o, 2, "--threads needs a value");
    e2e_free(&o);

    o = E2E_RUN("run", "/nonexistent/job.ini");
    e2e_expect(&o, 2, "/nonexistent/job.ini");
    e2e_free(&o);
}

/* ---- pow4: the exact sum, whatever the thread count ----------------------- */

/* sum of i^4 for i in [0, n), n >= 1, by the closed form, in 128 bits. */
static u128 pow4_closed(u128 n)
{
    u128 m = n - 1; /* sum_{i=1}^{m} i^4 = m(m+1)(2m+1)(3m^2+3m-1)/30 */
    return m * (m + 1) * (2 * m + 1) * (3 * m * m + 3 * m - 1) / 30;
}

static void pow4_closed_form(void **state)
{
    (void)state;
    static const unsigned n_values[] = {1, 2, 10, 12345, 1000000};
    static const char *const threads[] = {"1", "2", "3", "8"};
    for (size_t a = 0; a < sizeof n_values / sizeof n_values[0]; a++) {
        char cfg[256], want[64];
        snprintf(cfg, sizeof cfg, "[run]\nplugin = pow4\nitems = %u\noutput = none\n",
                 n_values[a]);
        const char *path = e2e_write("pow4.ini", cfg);
        u128_to_decimal(pow4_closed(n_values[a]), want);
        strcat(want, "\n");
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            e2e_outcome_t o = E2E_RUN("run", path, "--threads", threads[t]);
            e2e_expect(&o, 0, "0 failed");
            if (strcmp(o.out, want) != 0)
                fail_msg("n=%u threads=%s: got %s want %s", n_values[a], threads[t], o.out, want);
            e2e_free(&o);
        }
    }
    /* Negative numbers: (-k)^4 == k^4, so -1000..1001 (1001 excluded) is
     * twice the sum over 1..1000. */
    const char *path =
        e2e_write("pow4n.ini", "[run]\nplugin = pow4\nitems = -1000..1001\n");
    e2e_outcome_t o = E2E_RUN("run", path);
    e2e_expect(&o, 0, NULL);
    char want[64];
    u128_to_decimal(2 * pow4_closed(1001), want);
    strcat(want, "\n");
    assert_string_equal(o.out, want);
    e2e_free(&o);
}

static void pow4_shipped_config(void **state)
{
    (void)state;
    char path[512], want[64];
    snprintf(path, sizeof path, "%s/configs/pow4.ini", getenv("WEFT_SOURCE_ROOT"));
    e2e_outcome_t o = E2E_RUN("run", path, "--set", "run.items=200000");
    e2e_expect(&o, 0, "pow4: 200000 ok, 0 failed");
    u128_to_decimal(pow4_closed(200000), want);
    strcat(want, "\n");
    assert_string_equal(o.out, want);
    e2e_free(&o);
}

/* ---- results in input order ------------------------------------------------ */

/* Checks a JSONL file of add_one values: line k is first + k + step. */
static void check_jsonl_values(const char *text, long count, long first, long step)
{
    const char *p = text;
    for (long k = 0; k < count; k++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || *end != '\n' || v != first + k + step)
            fail_msg("line %ld: '%.20s' (want %ld)", k, p, first + k + step);
        p = end + 1;
    }
    assert_int_equal(*p, '\0');
}

static void add_one_order_jsonl(void **state)
{
    (void)state;
    /* 300000 items: several windows, so order across windows is checked. */
    const char *path = e2e_write("add.ini", "[run]\nplugin = add_one\nitems = 300000\n"
                                            "output = add.jsonl\n");
    char out[256];
    snprintf(out, sizeof out, "%s/add.jsonl", tmp);
    static const char *const threads[] = {"1", "2", "5", "8"};
    for (size_t t = 0; t < 4; t++) {
        e2e_outcome_t o = E2E_RUN("run", path, "-j", threads[t]);
        e2e_expect(&o, 0, "300000 ok, 0 failed");
        e2e_free(&o);
        char *text = e2e_slurp(out, NULL);
        assert_non_null(text);
        check_jsonl_values(text, 300000, 0, 1);
        free(text);
    }
}

static void add_one_json_array_and_overrides(void **state)
{
    (void)state;
    char src[512];
    snprintf(src, sizeof src, "%s/configs/add_ten.ini", getenv("WEFT_SOURCE_ROOT"));
    char out[256];
    snprintf(out, sizeof out, "%s/ten.json", tmp);
    /* --output is relative to the current directory; use an absolute one. */
    e2e_outcome_t o = E2E_RUN("run", src, "--output", out, "--set", "args.step=7", "-q");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.err, ""); /* --quiet */
    e2e_free(&o);
    char *text = e2e_slurp(out, NULL);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 20);
    for (int k = 0; k < 20; k++)
        assert_int_equal(cJSON_GetArrayItem(j, k)->valueint, 1000 + k + 7);
    cJSON_Delete(j);
    free(text);

    /* The shipped stdout config: 100 lines of i + 1. */
    snprintf(src, sizeof src, "%s/configs/add_one.ini", getenv("WEFT_SOURCE_ROOT"));
    o = E2E_RUN("run", src);
    e2e_expect(&o, 0, "100 ok");
    check_jsonl_values(o.out, 100, 0, 1);
    e2e_free(&o);
}

/* ---- failures: reported, everything else kept ------------------------------ */

static void failed_items_keep_the_rest(void **state)
{
    (void)state;
    char out[256];
    snprintf(out, sizeof out, "%s/fail.json", tmp);
    const char *path = e2e_write("fail.ini", "[run]\nplugin = fail_some\nitems = 1000\n"
                                             "output = fail.json\n[args]\nevery = 7\n");
    e2e_outcome_t o = E2E_RUN("run", path, "-j", "4");
    e2e_expect(&o, 1, "item 0 failed: item 0 refused \"on purpose\"");
    assert_non_null(strstr(o.err, "857 ok, 143 failed"));
    assert_non_null(strstr(o.err, "and 133 more failed items"));
    /* finish saw the counts */
    assert_non_null(strstr(o.out, "{\"total\":1000,\"ok\":857,\"failed\":143}"));
    e2e_free(&o);
    char *text = e2e_slurp(out, NULL);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 1000);
    for (int k = 0; k < 1000; k++) {
        cJSON *v = cJSON_GetArrayItem(j, k);
        if (k % 7 == 0)
            assert_true(cJSON_IsNull(v));
        else
            assert_int_equal(v->valueint, k);
    }
    cJSON_Delete(j);
    free(text);

    /* record = full keeps each failure's message, JSON-escaped.  (Into
     * fail.jsonl: a .json name with format = jsonl is refused.) */
    snprintf(out, sizeof out, "%s/fail.jsonl", tmp);
    o = E2E_RUN("run", path, "--set", "run.record=full", "-o", out);
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    text = e2e_slurp(out, NULL);
    char *line = strtok(text, "\n");
    int count = 0;
    for (; line; line = strtok(NULL, "\n"), count++) {
        cJSON *rec = cJSON_Parse(line);
        assert_non_null(rec);
        assert_int_equal(cJSON_GetObjectItem(rec, "index")->valueint, count);
        bool ok = cJSON_IsTrue(cJSON_GetObjectItem(rec, "ok"));
        assert_int_equal(ok, count % 7 != 0);
        if (!ok)
            assert_non_null(strstr(cJSON_GetObjectItem(rec, "error")->valuestring,
                                   "refused \"on purpose\""));
        else
            assert_int_equal(cJSON_GetObjectItem(rec, "value")->valueint, count);
        cJSON_Delete(rec);
    }
    assert_int_equal(count, 1000);
    free(text);
}

static void plugin_callback_failures(void **state)
{
    (void)state;
    const char *path = e2e_write("cb.ini", "[run]\nplugin = fail_some\nitems = 10\n"
                                           "output = cb.json\n");
    e2e_outcome_t o = E2E_RUN("run", path, "--set", "args.fail_init=yes");
    e2e_expect(&o, 2, "plugin fail_some: init failed: refusing to start");
    e2e_free(&o);
    /* Nothing ran, and so nothing was written. */
    char out[256];
    snprintf(out, sizeof out, "%s/cb.json", tmp);
    assert_int_equal(access(out, F_OK), -1);

    o = E2E_RUN("run", path, "--set", "args.fail_worker_init=on", "-j", "3");
    e2e_expect(&o, 2, "worker_init (worker 2) failed: worker 2 of 3 refuses");
    e2e_free(&o);

    o = E2E_RUN("run", path, "--set", "args.fail_finish=true", "--set",
                "args.every=1000");
    e2e_expect(&o, 1, "finish failed: finish refuses");
    e2e_free(&o);
    /* The items' results were still written. */
    char *text = e2e_slurp(out, NULL);
    assert_non_null(text);
    cJSON *j = cJSON_Parse(text);
    assert_int_equal(cJSON_GetArraySize(j), 10);
    cJSON_Delete(j);
    free(text);
}

/* ---- bad configs: file:line, key, nothing runs --------------------------- */

static void config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body, *says;
    } cases[] = {
        {"[run]\nplugin = add_one\nitems = 10\nthread = 2\n", "bad.ini:4:"},
        {"[run]\nplugin = add_one\nitems = 10\nthread = 2\n", "did you mean 'threads'"},
        {"[run]\nplugin = add_one\nitems = 10\n[args]\nstep = x1\n", "bad.ini:5:"},
        {"[run]\nplugin = add_one\nitems = 10\n[args]\nstep = x1\n", "step"},
        {"[run]\nplugin = add_one\nitems = 10\n[args]\nstpe = 1\n", "did you mean 'step'"},
        {"[run]\nplugin = add_one\nitems = 10\nitems = 11\n", "bad.ini:4:"},
        {"[run]\nplugin = nosuchplugin\nitems = 10\n", "nosuchplugin"},
        {"[run]\nplugin = no_symbol\nitems = 10\n", "weft_plugin_entry"},
        {"[run]\nplugin = bad_abi\nitems = 10\n", "ABI"},
        {"[run]\nplugin = add_one\nitems = ten\n", "bad.ini:3:"},
        {"[run]\nitems = 10\n", "plugin"},
        {"[run]\nplugin = echo\nitems = 10\n[args]\nn = 5000\n", "bad.ini:5:"},
        {"[run]\nplugin = echo\nitems = 10\n[args]\nflag = maybe\n", "flag"},
    };
    char out[256];
    snprintf(out, sizeof out, "%s/keep.json", tmp);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        /* An existing output must survive a config error untouched. */
        FILE *f = fopen(out, "w");
        fputs("precious", f);
        fclose(f);
        const char *path = e2e_write("bad.ini", cases[k].body);
        e2e_outcome_t o = E2E_RUN("run", path, "--output", out);
        if (o.status != 2 || !strstr(o.err, cases[k].says))
            fail_msg("case %zu: exit %d, stderr '%s' (want '%s')", k, o.status, o.err,
                     cases[k].says);
        e2e_free(&o);
        char *text = e2e_slurp(out, NULL);
        assert_string_equal(text, "precious");
        free(text);
    }
    /* --set errors name the override. */
    const char *path = e2e_write("ok.ini", "[run]\nplugin = add_one\nitems = 10\n");
    e2e_outcome_t o = E2E_RUN("run", path, "--set", "args.step=abc");
    e2e_expect(&o, 2, "--set args.step");
    e2e_free(&o);
}

/* ---- values: every kind, bad ones fail only their item ------------------- */

static void value_kinds(void **state)
{
    (void)state;
    const char *path =
        e2e_write("echo.ini", "[run]\nplugin = echo\nitems = 4\noutput = -\n"
                              "format = json\n[args]\nmode = json\nn = 3\n"
                              "file = sub/x.txt\n");
    e2e_outcome_t o = E2E_RUN("run", path);
    e2e_expect(&o, 0, NULL);
    cJSON *j = cJSON_Parse(o.out);
    assert_non_null(j);
    cJSON *first = cJSON_GetArrayItem(j, 1);
    assert_int_equal(cJSON_GetObjectItem(first, "index")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(first, "n")->valueint, 3);
    /* PATH arguments are resolved against the config's folder. */
    char want[256];
    snprintf(want, sizeof want, "%s/sub/x.txt", tmp);
    assert_string_equal(cJSON_GetObjectItem(first, "file")->valuestring, want);
    cJSON_Delete(j);
    e2e_free(&o);

    o = E2E_RUN("run", path, "--set", "args.mode=bad_json");
    e2e_expect(&o, 1, "invalid JSON value");
    assert_string_equal(o.out, "[\nnull,\nnull,\nnull,\nnull\n]\n");
    e2e_free(&o);

    o = E2E_RUN("run", path, "--set", "args.mode=bad_utf8");
    e2e_expect(&o, 0, NULL);
    j = cJSON_Parse(o.out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetArrayItem(j, 0)->valuestring, "\xef\xbf\xbd ok \xef\xbf\xbd");
    cJSON_Delete(j);
    e2e_free(&o);

    o = E2E_RUN("run", path, "--set", "args.mode=nul");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "\"a\\u0000b\\n\""));
    e2e_free(&o);
}

/* ---- determinism: the random stream ignores the thread count ------------- */

static void rng_independent_of_threads(void **state)
{
    (void)state;
    const char *path =
        e2e_write("rng.ini", "[run]\nplugin = echo\nitems = 5000\n"
                             "output = -\nseed = 42\n[args]\nmode = rng\n");
    e2e_outcome_t one = E2E_RUN("run", path, "-j", "1");
    e2e_expect(&one, 0, NULL);
    static const char *const threads[] = {"2", "7"};
    for (int t = 0; t < 2; t++) {
        e2e_outcome_t many = E2E_RUN("run", path, "-j", threads[t]);
        e2e_expect(&many, 0, NULL);
        assert_string_equal(one.out, many.out);
        e2e_free(&many);
    }
    /* Another seed gives other numbers. */
    e2e_outcome_t other = E2E_RUN("run", path, "--set", "run.seed=43");
    assert_string_not_equal(one.out, other.out);
    e2e_free(&other);
    e2e_free(&one);
}

/* ---- streaming: memory does not grow with the item count ------------------- */

static void jsonl_streams_in_bounded_memory(void **state)
{
    (void)state;
#ifdef UNDER_SANITIZER
    /* Sanitizer shadow memory makes RSS meaningless, and 10^7 items take
     * minutes there; the plain build runs this check. */
    skip();
#else
    const char *path = e2e_write("big.ini", "[run]\nplugin = add_one\nitems = 10000000\n"
                                            "output = /dev/null\nformat = jsonl\n");
    e2e_outcome_t o = E2E_RUN("run", path, "-j", "2");
    e2e_expect(&o, 0, "10000000 ok, 0 failed");
    if (o.maxrss_kb >= 64 * 1024)
        fail_msg("peak RSS %ld KiB for 10^7 items (limit 64 MiB)", o.maxrss_kb);
    print_message("10^7 items: peak RSS %ld KiB\n", o.maxrss_kb);
    e2e_free(&o);
#endif
}

/* ---- discovery: check, describe, plugins ------------------------------- */

static void cli_check(void **state)
{
    (void)state;
    const char *path = e2e_write("chk.ini", "[run]\nplugin = add_one\nitems = 10..15\n"
                                            "output = chk.json\n[args]\nstep = 2\n");
    e2e_outcome_t o = E2E_RUN("check", path);
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "chk.ini: ok"));
    assert_non_null(strstr(o.out, "plugin   add_one 1.0.0"));
    assert_non_null(strstr(o.out, "10..15: 5 items"));
    assert_non_null(strstr(o.out, "a JSON array"));
    e2e_free(&o);
    /* Nothing ran: no output file. */
    char out[256];
    snprintf(out, sizeof out, "%s/chk.json", tmp);
    assert_int_equal(access(out, F_OK), -1);

    o = E2E_RUN("check", path, "--set", "args.step=two");
    e2e_expect(&o, 2, "--set args.step");
    e2e_free(&o);
    path = e2e_write("chk2.ini", "[run]\nplugin = add_one\nitems = 10\nouput = x\n");
    o = E2E_RUN("check", path);
    e2e_expect(&o, 2, "chk2.ini:4: unknown key 'ouput' in [run]; did you mean 'output'?");
    e2e_free(&o);
    o = E2E_RUN("check", "--help");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "Runs nothing"));
    e2e_free(&o);
}

static void cli_describe(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("describe", "echo");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "echo 0.1.0: Test plugin"));
    assert_non_null(strstr(o.out, "  n                int    default 0, from -1000 to 1000"));
    assert_non_null(strstr(o.out, "  file             path   default data.txt"));
    assert_non_null(strstr(o.out, "\n[args]\nmode = int\nn = 0\n"));
    e2e_free(&o);

    /* A required argument is marked, and left to fill in the [args] block. */
    char path[512];
    snprintf(path, sizeof path, "%s/exec.so", getenv("WEFT_PLUGINS"));
    o = E2E_RUN("describe", path);
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "REQUIRED"));
    assert_non_null(strstr(o.out, "command =            ; required:"));
    e2e_free(&o);

    /* Choices listed; ints as ints. */
    snprintf(path, sizeof path, "%s/read_files.so", getenv("WEFT_PLUGINS"));
    o = E2E_RUN("describe", path);
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "default none, one of none|text|base64|auto"));
    assert_non_null(strstr(o.out, "from 0 to 1000000000000000000"));
    e2e_free(&o);

    /* Defaults are checked as a config's values would be. */
    o = E2E_RUN("describe", "bad_default");
    e2e_expect(&o, 2, "plugin bad_default has a default that its own checks refuse");
    assert_non_null(strstr(o.out, "BAD DEFAULT '12x': expected an integer"));
    assert_non_null(strstr(o.out, "BAD DEFAULT 'loud': expected one of quiet|chatty"));
    assert_null(strstr(o.out, "BAD DEFAULT 'a'"));
    e2e_free(&o);

    o = E2E_RUN("describe", "no_such_plugin");
    e2e_expect(&o, 2, "no_such_plugin");
    e2e_free(&o);
    o = E2E_RUN("describe");
    e2e_expect(&o, 2, "usage: weft describe PLUGIN");
    e2e_free(&o);
    o = E2E_RUN("describe", "--help");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
}

static void cli_plugins(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("plugins");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "add_one        1.0.0    The value i + step"));
    assert_non_null(strstr(o.out, "pow4           1.0.0"));
    assert_non_null(strstr(o.out, "echo           0.1.0"));
    /* Broken plugins are listed with the reason, not fatal. */
    assert_non_null(strstr(o.out, "bad_abi        cannot load:"));
    assert_non_null(strstr(o.out, "no_symbol      cannot load:"));
    e2e_free(&o);
    o = E2E_RUN("plugins", "extra");
    e2e_expect(&o, 2, "usage: weft plugins");
    e2e_free(&o);
    o = E2E_RUN("chek", "x");
    e2e_expect(&o, 2, "did you mean 'check'?");
    e2e_free(&o);
}

/* ---- GNU option conventions, and the command that finishes a run -------- */

/* "threads": N in the summary JSON weft wrote to stdout after the records. */
static long summary_threads(const char *out)
{
    const char *t = strstr(out, "\"threads\":");
    return t ? strtol(t + strlen("\"threads\":"), NULL, 10) : -1;
}

static long cpus(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

static void cli_gnu_options(void **state)
{
    (void)state;
    const char *ini = e2e_write("gnu.ini", "[run]\nplugin = add_one\nitems = 5\n"
                                           "output = gnu.jsonl\n");
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", ini);
    /* Bundled, attached values, options after CONFIG. */
    e2e_outcome_t o = E2E_RUN("run", cfg, "-qj3", "-o-", "--summary-json=-");
    e2e_expect(&o, 0, NULL);
    assert_true(strncmp(o.out, "1\n2\n3\n4\n5\n", 10) == 0);
    assert_int_equal(summary_threads(o.out), 3);
    e2e_free(&o);
    o = E2E_RUN("--threads=2", "run", cfg); /* not an option of weft itself */
    e2e_expect(&o, 2, "unknown command '--threads=2'");
    e2e_free(&o);
    o = E2E_RUN("run", "--threads=1", "--output=-", "-q", "--summary-json", "-", "--", cfg);
    e2e_expect(&o, 0, NULL);
    assert_int_equal(summary_threads(o.out), 1);
    e2e_free(&o);
    /* -1: every CPU, -2: all but one (joblib); P% of the CPUs (parallel). */
    long n = cpus();
    const struct {
        const char *arg;
        long want;
    } counts[] = {{"-1", n}, {"-2", n > 1 ? n - 1 : 1}, {"100%", n}, {"200%", 2 * n},
                  {"1%", 1}};
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        o = E2E_RUN("run", cfg, "-q", "-o", "-", "--summary-json", "-", "-j", counts[k].arg);
        e2e_expect(&o, 0, NULL);
        if (summary_threads(o.out) != counts[k].want)
            fail_msg("-j %s: %ld threads, want %ld", counts[k].arg, summary_threads(o.out),
                     counts[k].want);
        e2e_free(&o);
    }
    const char *bad[] = {"0%", "-2000", "x%", "%", "1.5"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        o = E2E_RUN("run", cfg, "-j", bad[k]);
        e2e_expect(&o, 2, "expected N from 0 to 1024");
        e2e_free(&o);
    }
    o = E2E_RUN("run", cfg, "-x");
    e2e_expect(&o, 2, "unknown option '-x'");
    e2e_free(&o);
    o = E2E_RUN("run", cfg, "-qj");
    e2e_expect(&o, 2, "-j needs a value");
    e2e_free(&o);
    /* Long options are never abbreviated: a typo is said, not guessed. */
    o = E2E_RUN("run", cfg, "--resum");
    e2e_expect(&o, 2, "unknown option '--resum'; did you mean '--resume'?");
    e2e_free(&o);
    o = E2E_RUN("run", cfg, "--thread=2");
    e2e_expect(&o, 2, "did you mean '--threads'?");
    e2e_free(&o);
    /* A value that looks like an option is a value. */
    o = E2E_RUN("run", cfg, "-q", "--set", "--resum", "-o", "-");
    e2e_expect(&o, 2, "--set --resum: expected section.key=value");
    e2e_free(&o);
    /* After "--", words are the command (args.command), never options. */
    o = E2E_RUN("run", cfg, "--", "-j4");
    e2e_expect(&o, 2, "the words after --: unknown argument 'command' for plugin add_one");
    e2e_free(&o);
}

/* The command between the first pair of backticks in text, or NULL. */
static char *quoted_command(const char *text, const char *after)
{
    const char *p = strstr(text, after);
    const char *a = p ? strchr(p, '`') : NULL;
    const char *b = a ? strchr(a + 1, '`') : NULL;
    return b ? strndup(a + 1, (size_t)(b - a - 1)) : NULL;
}

/* A halted run prints the command that finishes it: the command as typed
 * (--set, -o, -j and all, quoted for the shell), with --resume; run as
 * printed it finishes this job (it used to print `weft run CONFIG
 * --resume`, which resumed another, finished run with these items
 * missing).  A plain run refused for the unfinished journal prints it too. */
static void cli_resume_command_is_exact(void **state)
{
    (void)state;
    assert_int_equal(mkdir(e2e_path("out dir"), 0777), 0);
    const char *ini = e2e_write("halt.ini", "[run]\nplugin = fault\nitems = 50\n"
                                            "output = other.jsonl\nhalt = soon,fail=1\n"
                                            "[args]\nfail_once = 3\n");
    char cfg[4096], out[4096], shell[16384];
    snprintf(cfg, sizeof cfg, "%s", ini);
    snprintf(out, sizeof out, "%s", e2e_path("out dir/r.jsonl"));
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", "args.sleep_ms=1", "-o", out, "-qj1");
    e2e_expect(&o, 4, "items not run; `");
    char *cmd = quoted_command(o.err, "items not run; ");
    assert_non_null(cmd);
    e2e_free(&o);
    if (!strstr(cmd, " --set args.sleep_ms=1 ") || !strstr(cmd, "'/") ||
        !strstr(cmd, "out dir/r.jsonl'") || !strstr(cmd, " -qj1 --resume"))
        fail_msg("resume command: %s", cmd);

    /* A plain run of the same: refused, with the same command. */
    o = E2E_RUN("run", cfg, "--set", "args.sleep_ms=1", "-o", out, "-qj1");
    e2e_expect(&o, 2, "did not finish");
    char *again = quoted_command(o.err, "weft: run ");
    assert_non_null(again);
    assert_string_equal(again, cmd);
    free(again);
    e2e_free(&o);

    /* As printed, through a shell. */
    snprintf(shell, sizeof shell, "%s 2>/dev/null", cmd);
    int st_sh = system(shell);
    assert_true(WIFEXITED(st_sh));
    assert_int_equal(WEXITSTATUS(st_sh), 1); /* item 3 stays failed; all 50 written */
    char *text = e2e_slurp(out, NULL);
    assert_non_null(text);
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 50);
    free(text);
    struct stat st;
    assert_int_equal(stat(e2e_path("other.jsonl"), &st), -1); /* the config's own output */
    free(cmd);
}

/* No items is a run of nothing, as with xargs -r or GNU parallel: an empty
 * result ([] in JSON, an empty JSON Lines file), exit 0, and a line saying
 * why there was nothing to run. */
static void cli_empty_source(void **state)
{
    (void)state;
    e2e_write("none.txt", "");
    assert_int_equal(mkdir(e2e_path("nothing"), 0777) == 0 || errno == EEXIST, 1);
    const struct {
        const char *items, *why;
    } cases[] = {
        {"lines:none.txt", "none.txt has no lines"},
        {"0", "the range is empty"},
        {"files:nothing", "no regular files in"},
        {"files:nothing/*.png", "no regular file matches"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *ini = e2e_writef("empty.ini", "[run]\nplugin = add_one\nitems = %s\n"
                                                  "output = empty.json\n",
                                     cases[k].items);
        e2e_outcome_t o = E2E_RUN("run", ini);
        e2e_expect(&o, 0, "no items (");
        e2e_expect(&o, 0, cases[k].why);
        e2e_expect(&o, 0, "0 ok, 0 failed, 0 not run");
        e2e_free(&o);
        char *got = e2e_slurp(e2e_path("empty.json"), NULL);
        assert_non_null(got);
        assert_string_equal(got, "[]\n");
        free(got);
    }
    const char *ini = e2e_write("empty2.ini", "[run]\nplugin = add_one\nitems = stdin\n"
                                              "output = -\nformat = jsonl\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "");
    assert_string_equal(o.err, ""); /* -q: nothing said */
    e2e_free(&o);
}

/* A long exec command, written over continuation lines and past inih's
 * 200-byte lines, runs as one command (it used to be "line too long"). */
static void cli_long_continued_command(void **state)
{
    (void)state;
    char words[400];
    memset(words, 'x', 300);
    words[300] = '\0';
    const char *ini = e2e_writef("long.ini",
                                 "[run]\nplugin = exec\nitems = 2\noutput = -\nformat = jsonl\n"
                                 "[args]\ncommand = echo start \\\n"
                                 "          %s \\\n"
                                 "          end {}\n",
                                 words);
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-j", "1");
    e2e_expect(&o, 0, NULL);
    char want[1024]; /* exec's value: the output without its last newline */
    snprintf(want, sizeof want, "\"start %s end 0\"\n\"start %s end 1\"\n", words, words);
    assert_string_equal(o.out, want);
    e2e_free(&o);
}

/* weft run -: the config from standard input, its relative paths against
 * the current folder; messages say "stdin:N:"; items = stdin is refused
 * (standard input holds the config). */
static void cli_config_from_stdin(void **state)
{
    (void)state;
    e2e_write("in-list.txt", "a\nb\n");
    e2e_write("piped.ini", "[run]\nplugin = add_one\nitems = lines:in-list.txt\n"
                           "output = piped.jsonl\n[args]\n");
    e2e_write("bad.ini", "[run]\nplugin = add_one\nitemz = 3\n");
    e2e_write("stdin-items.ini", "[run]\nplugin = add_one\nitems = stdin\noutput = -\n");
    const char *exe = getenv("WEFT_EXE");
    char cmd[8192];
    /* From the test folder: relative paths resolve there. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' run - -q < piped.ini && '%s' check - < bad.ini 2> bad.err; "
             "echo $? > bad.status; '%s' run - < stdin-items.ini 2> si.err; echo $? > si.status",
             e2e_path(""), exe, exe, exe);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    char *got = e2e_slurp(e2e_path("piped.jsonl"), NULL);
    assert_non_null(got);
    assert_string_equal(got, "1\n2\n"); /* add_one of the line numbers 0 and 1 */
    free(got);
    char *status = e2e_slurp(e2e_path("bad.status"), NULL);
    char *err = e2e_slurp(e2e_path("bad.err"), NULL);
    assert_non_null(status);
    assert_non_null(err);
    assert_string_equal(status, "2\n");
    assert_non_null(strstr(err, "stdin:3: unknown key 'itemz' in [run]"));
    free(status);
    free(err);
    status = e2e_slurp(e2e_path("si.status"), NULL);
    err = e2e_slurp(e2e_path("si.err"), NULL);
    assert_non_null(status);
    assert_non_null(err);
    assert_string_equal(status, "2\n");
    assert_non_null(strstr(err, "standard input already held the config"));
    free(status);
    free(err);
}

/* A STRING argument with choices (arg_choices): weft check refuses any
 * other value with its line and a did-you-mean, before anything runs. */
static void cli_arg_choices(void **state)
{
    (void)state;
    e2e_write("chosen.txt", "x\n");
    const char *ini = e2e_write("choice.ini", "[run]\nplugin = read_files\n"
                                              "items = lines:chosen.txt\noutput = -\n"
                                              "[args]\ncontent = bas64\n");
    e2e_outcome_t o = E2E_RUN("check", ini);
    e2e_expect(&o, 2, "choice.ini:6: content = 'bas64': expected one of "
                      "none|text|base64|auto; did you mean 'base64'?");
    e2e_free(&o);
    o = E2E_RUN("check", ini, "--set", "args.content=auto");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    ini = e2e_write("choice2.ini", "[run]\nplugin = bad_default\nitems = 1\noutput = -\n"
                                   "[args]\ncount = 3\n");
    o = E2E_RUN("check", ini);
    e2e_expect(&o, 2, "plugin bad_default: bad default for mode: 'loud': expected one of "
                      "quiet|chatty");
    e2e_free(&o);
}

/* check --init starts the plugin and stops it: a config whose init fails
 * fails the check (plain check passes it: init is not run); a good one
 * says so; run has no --init. */
static void cli_check_init(void **state)
{
    (void)state;
    const char *bad = e2e_write("initfail.ini", "[run]\nplugin = init_fail\nitems = 3\n"
                                                "output = none\n");
    char bad_cfg[4096];
    snprintf(bad_cfg, sizeof bad_cfg, "%s", bad);
    e2e_outcome_t o = E2E_RUN("check", bad_cfg);
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    o = E2E_RUN("check", bad_cfg, "--init");
    e2e_expect(&o, 2, "plugin init_fail: init failed");
    e2e_free(&o);
    const char *good = e2e_write("initok.ini", "[run]\nplugin = add_one\nitems = 3\n"
                                               "output = initok.jsonl\n");
    o = E2E_RUN("check", good, "--init");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "init     ok"));
    e2e_free(&o);
    struct stat st;
    assert_int_equal(stat(e2e_path("initok.jsonl"), &st), -1); /* nothing written */
    o = E2E_RUN("run", good, "--init");
    e2e_expect(&o, 2, "--init is an option of weft check");
    e2e_free(&o);
}

/* More workers than CPUs: one warning for a plugin taken as CPU-bound
 * (add_one, pow4: neither says it waits), none for exec (it declares
 * WEFT_PLUGIN_WAITS), none at one per CPU, none with -q.  The CPU count is
 * this machine's, as weft counts it (the affinity mask). */
static void cli_oversubscribed_warning(void **state)
{
    (void)state;
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    int cpus = CPU_COUNT(&set);
    char many[16], one_each[16], want[160];
    snprintf(many, sizeof many, "%d", 4 * cpus);
    snprintf(one_each, sizeof one_each, "%d", cpus);
    int items = 8 * cpus; /* more than the threads: they are not clamped */
    static const char *const plugins[] = {"add_one", "pow4"};
    for (size_t k = 0; k < 2; k++) {
        const char *ini = e2e_writef("over.ini", "[run]\nplugin = %s\nitems = %d\n"
                                                 "output = none\n", plugins[k], items);
        snprintf(want, sizeof want,
                 "weft: warning: threads = %d on %d CPU%s: plugin %s is CPU-bound and runs "
                 "slower oversubscribed (threads = 0 is one per CPU)\n",
                 4 * cpus, cpus, cpus == 1 ? "" : "s", plugins[k]);
        e2e_outcome_t o = E2E_RUN("run", ini, "-j", many);
        e2e_expect(&o, 0, want);
        const char *at = strstr(o.err, "warning:");
        assert_null(strstr(at + 1, "warning:")); /* once */
        e2e_free(&o);
        if (k == 0) { /* pow4 reduces: no worker processes */
            o = E2E_RUN("run", ini, "-j", many, "--set", "run.isolate=process");
            e2e_expect(&o, 0, want);
            e2e_free(&o);
        }
        o = E2E_RUN("run", ini, "-j", one_each);
        e2e_expect(&o, 0, NULL);
        assert_null(strstr(o.err, "warning"));
        e2e_free(&o);
        o = E2E_RUN("run", ini, "-j", many, "-q");
        e2e_expect(&o, 0, NULL);
        assert_string_equal(o.err, "");
        e2e_free(&o);
    }
    const char *ini = e2e_writef("over_exec.ini", "[run]\nplugin = exec\nitems = %d\n"
                                                  "output = none\n[args]\ncommand = true\n",
                                 items);
    e2e_outcome_t o = E2E_RUN("run", ini, "-j", many);
    e2e_expect(&o, 0, NULL);
    assert_null(strstr(o.err, "warning"));
    e2e_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cli_usage_and_version),
        cmocka_unit_test(pow4_closed_form),
        cmocka_unit_test(pow4_shipped_config),
        cmocka_unit_test(add_one_order_jsonl),
        cmocka_unit_test(add_one_json_array_and_overrides),
        cmocka_unit_test(failed_items_keep_the_rest),
        cmocka_unit_test(plugin_callback_failures),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(value_kinds),
        cmocka_unit_test(rng_independent_of_threads),
        cmocka_unit_test(jsonl_streams_in_bounded_memory),
        cmocka_unit_test(cli_check),
        cmocka_unit_test(cli_describe),
        cmocka_unit_test(cli_plugins),
        cmocka_unit_test(cli_gnu_options),
        cmocka_unit_test(cli_resume_command_is_exact),
        cmocka_unit_test(cli_empty_source),
        cmocka_unit_test(cli_long_continued_command),
        cmocka_unit_test(cli_config_from_stdin),
        cmocka_unit_test(cli_arg_choices),
        cmocka_unit_test(cli_check_init),
        cmocka_unit_test(cli_oversubscribed_warning),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
