/* SPDX-License-Identifier: MIT */
/*
 * End to end: `weft log` (core/cli/log.h) on the journals of real runs of
 * the exec plugin (sh commands that fail, retry, sleep), checked column by
 * column; its JSON lines against its TSV; --failed fed back as items; a
 * format 2 journal (before TIMED entries) read and resumed; a compacted
 * journal; the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "e2e.h"
#include "journal.h"

static const char *tmp; /* the temporary folder, from e2e_setup */

static int setup(void **state)
{
    (void)state;
    return (tmp = e2e_setup("log")) ? 0 : -1;
}

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* An exec job over lines:NAME.txt: "fail*" items exit 3, "sleep" sleeps
 * 0.2 s, the others echo; `extra` is more [run] lines. */
static const char *job(const char *name, const char *items, const char *extra)
{
    char file[64];
    snprintf(file, sizeof file, "%s.txt", name);
    e2e_write(file, items);
    snprintf(file, sizeof file, "%s.ini", name);
    return e2e_writef(file,
                      "[run]\nplugin = exec\nitems = lines:%s.txt\noutput = %s.jsonl\n"
                      "threads = 2\n%s"
                      "[args]\ncommand = sh -c 'case \"$1\" in fail*) exit 3;; "
                      "sleep) sleep 0.2;; esac; echo \"$1\"' sh {}\n",
                      name, name, extra);
}

/* The fields of a TSV line, split at tabs in place (at most max). */
static size_t fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

/* The lines of text (modified in place: NULs for newlines). */
static size_t lines(char *text, char **v, size_t max)
{
    size_t n = 0;
    for (char *p = text; *p && n < max;) {
        char *nl = strchr(p, '\n');
        v[n++] = p;
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

/* ---- TSV, JSON, --failed ------------------------------------------------- */

enum { N_ITEMS = 6 };
static const char *const inputs[N_ITEMS] = {"a", "sleep", "fail3", "x\ty", "fail\\b", "b c"};

static void log_columns(void **state)
{
    (void)state;
    const char *ini = job("cols", "a\nsleep\nfail3\nx\ty\nfail\\b\nb c\n", "retries = 1\n");
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", ini);
    double t0 = now_s();
    e2e_outcome_t o = E2E_RUN("run", cfg, "-q");
    double t1 = now_s();
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);

    o = E2E_RUN("log", cfg);
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.err, "");
    char *row[N_ITEMS + 2];
    assert_int_equal(lines(o.out, row, N_ITEMS + 2), N_ITEMS + 1);
    assert_string_equal(row[0], "index\tinput\tstatus\tattempts\tstart\truntime\tmessage");
    static const char *const escaped[N_ITEMS] = {"a", "sleep", "fail3", "x\\ty", "fail\\\\b",
                                                 "b c"};
    for (int i = 0; i < N_ITEMS; i++) {
        char *f[8];
        assert_int_equal(fields(row[i + 1], f, 8), 7);
        bool bad = strncmp(inputs[i], "fail", 4) == 0;
        assert_int_equal(atoi(f[0]), i);
        assert_string_equal(f[1], escaped[i]);
        assert_string_equal(f[2], bad ? "failed" : "ok");
        assert_string_equal(f[3], bad ? "2" : "1"); /* retries = 1 */
        double start = atof(f[4]), runtime = atof(f[5]);
        assert_true(strchr(f[4], '.') && strlen(strchr(f[4], '.')) == 7); /* us */
        assert_true(start >= t0 - 1 && start <= t1 + 1);
        assert_true(runtime >= 0 && runtime <= t1 - t0 + 0.01);
        if (strcmp(inputs[i], "sleep") == 0)
            assert_true(runtime >= 0.19);
        assert_string_equal(f[6], bad ? "exit status 3" : "");
    }
    e2e_free(&o);

    /* The journal itself says the same. */
    o = E2E_RUN("log", e2e_path("cols.jsonl.journal"));
    e2e_expect(&o, 0, NULL);
    e2e_outcome_t again = E2E_RUN("log", cfg);
    assert_string_equal(o.out, again.out);
    e2e_free(&again);

    /* --json: one object a line, as the TSV says. */
    e2e_outcome_t j = E2E_RUN("log", cfg, "--json");
    e2e_expect(&j, 0, NULL);
    char *jl[N_ITEMS + 2], *tl[N_ITEMS + 2];
    assert_int_equal(lines(j.out, jl, N_ITEMS + 2), N_ITEMS);
    assert_int_equal(lines(o.out, tl, N_ITEMS + 2), N_ITEMS + 1);
    for (int i = 0; i < N_ITEMS; i++) {
        cJSON *x = cJSON_Parse(jl[i]);
        assert_non_null(x);
        char *f[8];
        assert_int_equal(fields(tl[i + 1], f, 8), 7);
        assert_int_equal(cJSON_GetObjectItem(x, "index")->valuedouble, i);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "input")), inputs[i]);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "status")), f[2]);
        assert_int_equal(cJSON_GetObjectItem(x, "attempts")->valuedouble, atoi(f[3]));
        assert_true(cJSON_GetObjectItem(x, "start")->valuedouble == atof(f[4]));
        assert_true(cJSON_GetObjectItem(x, "runtime")->valuedouble == atof(f[5]));
        cJSON *m = cJSON_GetObjectItem(x, "message");
        if (f[6][0])
            assert_string_equal(cJSON_GetStringValue(m), f[6]);
        else
            assert_true(cJSON_IsNull(m));
        cJSON_Delete(x);
    }
    e2e_free(&j);
    e2e_free(&o);

    /* --failed: exactly the failed inputs, raw; fed back, they run. */
    o = E2E_RUN("log", cfg, "--failed");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "fail3\nfail\\b\n");
    e2e_write("retry.txt", o.out);
    e2e_free(&o);
    const char *retry = e2e_write("retry.ini", "[run]\nplugin = exec\nitems = lines:retry.txt\n"
                                               "output = retry.jsonl\n[args]\n"
                                               "command = echo again {}\n");
    o = E2E_RUN("run", retry, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    char *out = e2e_slurp(e2e_path("retry.jsonl"), NULL);
    assert_string_equal(out, "\"again fail3\"\n\"again fail\\\\b\"\n");
    free(out);
}

/* Inputs with a newline (JSON items): --failed refuses them, -0 takes them. */
static void log_failed_newline(void **state)
{
    (void)state;
    e2e_write("nl.json", "[\"ok\", \"fail\\nline\", \"fine\"]");
    const char *ini = e2e_write(
        "nl.ini", "[run]\nplugin = exec\nitems = json:nl.json\noutput = nl.jsonl\n[args]\n"
                  "command = sh -c 'case \"$1\" in fail*) exit 1;; esac' sh {}\n");
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", ini);
    e2e_outcome_t o = E2E_RUN("run", cfg, "-q");
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    o = E2E_RUN("log", cfg, "--failed");
    e2e_expect(&o, 2, "holds a newline");
    e2e_free(&o);
    o = E2E_RUN("log", cfg, "--failed", "-0");
    e2e_expect(&o, 0, NULL);
    assert_memory_equal(o.out, "fail\nline", 10); /* with its NUL */
    e2e_free(&o);
    o = E2E_RUN("log", cfg);
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "\n1\tfail\\nline\tfailed\t1\t"));
    assert_non_null(strstr(o.out, "exit status 1\n"));
    e2e_free(&o);
}

/* ---- format 2, compacted, process mode -------------------------------------- */

/* Rewrites the format 3 journal at path as format 2 (what a weft before
 * TIMED entries wrote for the same run): its header, one session of its
 * entries untimed, END. */
static void downgrade(const char *path)
{
    size_t len;
    char *data = e2e_slurp(path, &len);
    weft__jscan_t *s = NULL;
    char err[256];
    assert_int_equal(weft__jscan_parse(&s, data, len, err, sizeof err), 0);
    weft__jheader_t h = *weft__jscan_header(s);
    char *copy = strdup(path);
    assert_int_equal(unlink(path), 0);
    weft__journal_t *j = NULL;
    assert_int_equal(weft__journal_create(&j, copy, &h, err, sizeof err), 0);
    assert_int_equal(weft__journal_session(j, 1, 0), 0);
    weft__buf_t b = {0};
    size_t mark;
    assert_int_equal(weft__jchunk_begin(&b, &mark), 0);
    weft__jentry_t e;
    uint64_t ok = 0, failed = 0;
    for (bool have = weft__jscan_next(s, 0, &e); have;
         have = weft__jscan_next(s, e.index + 1, &e)) {
        assert_true(e.timed);
        assert_int_equal(weft__jchunk_add(&b, e.index, e.item_hash, e.status, e.records,
                                          e.bytes, e.len, e.msg, e.msg_len),
                         0);
        ok += e.status == WEFT__J_OK;
        failed += e.status != WEFT__J_OK;
    }
    weft__jchunk_end(&b, mark);
    assert_int_equal(weft__journal_append(j, b.data, b.len), 0);
    assert_int_equal(weft__journal_end(j, ok, failed), 0);
    assert_int_equal(weft__journal_close(&j), 0);
    weft__buf_free(&b);
    weft__jscan_free(&s);
    free(data);

    /* The version field, and the header record's checksum. */
    unsigned char *d = (unsigned char *)e2e_slurp(copy, &len), *r = d + 8;
    size_t plen = (size_t)r[4] | (size_t)r[5] << 8 | (size_t)r[6] << 16;
    r[16] = 2;
    memset(r + 8, 0, 8);
    uint64_t sum = XXH3_64bits(r, 16 + plen);
    for (int k = 0; k < 8; k++)
        r[8 + k] = (unsigned char)(sum >> (8 * k));
    FILE *f = fopen(copy, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(d);
    free(copy);
}

static unsigned journal_version(const char *path)
{
    size_t len;
    unsigned char *d = (unsigned char *)e2e_slurp(path, &len);
    assert_true(len > 28);
    unsigned v = d[24];
    free(d);
    return v;
}

static void log_format2(void **state)
{
    (void)state;
    const char *ini = job("old", "one\nfail3\ntwo\n", "");
    char cfg[512], jpath[512];
    snprintf(cfg, sizeof cfg, "%s", ini);
    snprintf(jpath, sizeof jpath, "%s", e2e_path("old.jsonl.journal"));
    e2e_outcome_t o = E2E_RUN("run", cfg, "-q");
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    assert_int_equal(journal_version(jpath), 3);
    downgrade(jpath);
    assert_int_equal(journal_version(jpath), 2);

    o = E2E_RUN("log", cfg);
    e2e_expect(&o, 0, "journal format 2 (an older weft) records no attempts, start or runtime");
    assert_string_equal(o.out, "index\tinput\tstatus\tattempts\tstart\truntime\tmessage\n"
                               "0\tone\tok\t\t\t\t\n"
                               "1\tfail3\tfailed\t\t\t\texit status 3\n"
                               "2\ttwo\tok\t\t\t\t\n");
    e2e_free(&o);
    o = E2E_RUN("log", cfg, "--json");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "{\"index\":1,\"input\":\"fail3\",\"status\":\"failed\","
                                  "\"attempts\":null,\"start\":null,\"runtime\":null,"
                                  "\"message\":\"exit status 3\"}\n"));
    e2e_free(&o);
    o = E2E_RUN("log", cfg, "--failed");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "fail3\n");
    e2e_free(&o);

    /* Resumed by this weft, it stays format 2: the retried item's new
     * entry is untimed, and readable by the weft that wrote it.  (Kept
     * whole: a run that ends all ok otherwise compacts its journal.) */
    e2e_write("old.txt", "one\nfixed\ntwo\n");
    o = E2E_RUN("run", cfg, "-q", "--retry-failed", "--force", "--set", "run.keep_journal=true");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_int_equal(journal_version(jpath), 2);
    o = E2E_RUN("log", jpath);
    e2e_expect(&o, 0, "format 2");
    assert_non_null(strstr(o.out, "\n1\tfixed\tok\t\t\t\t\n"));
    e2e_free(&o);
}

static void log_compacted(void **state)
{
    (void)state;
    const char *ini = job("all_ok", "a\nb\n", "");
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", ini);
    e2e_outcome_t o = E2E_RUN("run", cfg, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    o = E2E_RUN("log", cfg);
    e2e_expect(&o, 2, "compacted");
    assert_non_null(strstr(o.err, "keep_journal = true"));
    assert_string_equal(o.out, "");
    e2e_free(&o);
    o = E2E_RUN("log", cfg, "--failed"); /* none failed */
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "");
    e2e_free(&o);

    o = E2E_RUN("run", cfg, "-q", "--set", "run.keep_journal=true");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    o = E2E_RUN("log", cfg);
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "\n1\tb\tok\t1\t"));
    e2e_free(&o);
}

/* isolate = process: each worker process reports its items' timing with
 * their results, as thread mode records it (attempts with retries, the
 * sleep's runtime, starts within the run). */
static void log_process_mode(void **state)
{
    (void)state;
    const char *ini = job("proc", "a\nfail3\nsleep\n", "isolate = process\nretries = 2\n");
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", ini);
    double t0 = (double)time(NULL);
    e2e_outcome_t o = E2E_RUN("run", cfg, "-q");
    double t1 = (double)time(NULL) + 1;
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    o = E2E_RUN("log", cfg);
    e2e_expect(&o, 0, NULL);
    char *line = strchr(o.out, '\n');
    assert_non_null(line);
    static const char *const want[][4] = {
        {"0", "a", "ok", "1"}, {"1", "fail3", "failed", "3"}, {"2", "sleep", "ok", "1"}};
    for (int k = 0; k < 3; k++) {
        char *f[8];
        char *next = strchr(++line, '\n');
        assert_non_null(next);
        *next = '\0';
        assert_int_equal(fields(line, f, 8), 7);
        for (int c = 0; c < 4; c++)
            if (strcmp(f[c], want[k][c]) != 0)
                fail_msg("item %d, column %d: '%s', want '%s'", k, c, f[c], want[k][c]);
        double start = atof(f[4]), runtime = atof(f[5]);
        if (start < t0 - 1 || start > t1 || runtime < 0 || runtime > t1 - t0 + 1)
            fail_msg("item %d: start %s, runtime %s (run from %.0f to %.0f)", k, f[4], f[5],
                     t0, t1);
        if (k == 2 && runtime < 0.19)
            fail_msg("the sleep took %s s", f[5]);
        line = next;
    }
    e2e_free(&o);
}

/* ---- errors -------------------------------------------------------------- */

static void log_errors(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("log", "--help");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "usage: weft log JOURNAL|CONFIG"));
    e2e_free(&o);

    o = E2E_RUN("log");
    e2e_expect(&o, 2, "which journal or config?");
    e2e_free(&o);
    o = E2E_RUN("log", "a", "b");
    e2e_expect(&o, 2, "one JOURNAL or CONFIG only");
    e2e_free(&o);
    o = E2E_RUN("log", "a.ini", "--bogus");
    e2e_expect(&o, 2, "unknown option '--bogus'");
    e2e_free(&o);
    o = E2E_RUN("log", "a.ini", "--json", "--failed");
    e2e_expect(&o, 2, "give one of them");
    e2e_free(&o);
    o = E2E_RUN("log", "a.ini", "-0");
    e2e_expect(&o, 2, "-0 goes with --failed");
    e2e_free(&o);
    o = E2E_RUN("log", "/nonexistent/job.ini");
    e2e_expect(&o, 2, "/nonexistent/job.ini");
    e2e_free(&o);

    /* A job that has not run: no journal. */
    const char *ini = job("never", "a\n", "");
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", ini);
    o = E2E_RUN("log", cfg);
    e2e_expect(&o, 2, "never.jsonl.journal: no journal");
    e2e_free(&o);
    /* --set moves the journal, as it would for weft run. */
    o = E2E_RUN("log", cfg, "--set", "run.journal=elsewhere.journal");
    e2e_expect(&o, 2, "elsewhere.journal: no journal");
    e2e_free(&o);
    o = E2E_RUN("log", cfg, "--set", "run.output=-");
    e2e_expect(&o, 2, "keeps no journal");
    e2e_free(&o);

    /* Corrupt: a damaged header; a future version. */
    const char *bad = e2e_write("bad.journal", "WEFTJRN1 not really a journal");
    o = E2E_RUN("log", bad);
    e2e_expect(&o, 2, "journal header is");
    e2e_free(&o);
    o = E2E_RUN("log", bad, "--set", "run.threads=2");
    e2e_expect(&o, 2, "--set goes with a CONFIG");
    e2e_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_columns),   cmocka_unit_test(log_failed_newline),
        cmocka_unit_test(log_format2),   cmocka_unit_test(log_compacted),
        cmocka_unit_test(log_process_mode), cmocka_unit_test(log_errors),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
