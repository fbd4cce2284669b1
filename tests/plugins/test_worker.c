/* SPDX-License-Identifier: MIT */
/*
 * End to end: the worker plugin run by the weft binary, its workers the
 * hand-written protocol worker tests/fixtures/workers/proto_worker.py (no
 * weft_worker.py: what is tested here is weft's side of
 * docs/worker-protocol.md).  Each item's text tells that worker what to do
 * (echo, fail, segv, hang, garbage, ...), so one run mixes good items with
 * every way a worker can go wrong, and the test checks that each costs at
 * most its own item.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "loader.h" /* weft__rng_*: the seeds a worker gets */
#include "util.h"   /* weft__mono_s */

/* Debian's python3, as tests/cli/test_formats.c: a pyenv or venv python3
 * first on PATH may lack what Debian's packages installed. */
#define PYTHON "/usr/bin/python3"

static char worker_py[4096]; /* the fixture, absolute */

static int setup(void **state)
{
    (void)state;
    e2e_setup("worker");
    const char *src = getenv("WEFT_SOURCE_ROOT");
    assert_non_null(src);
    snprintf(worker_py, sizeof worker_py, "%s/tests/fixtures/workers/proto_worker.py", src);
    return 0;
}

/* items.txt: one item per line. */
static void items(const char *const *lines, size_t n)
{
    FILE *f = fopen(e2e_path("items.txt"), "wb");
    assert_non_null(f);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s\n", lines[k]);
    assert_int_equal(fclose(f), 0);
}

/* w.ini: the items of items.txt, JSON lines into out.jsonl, full records,
 * the fixture as the worker; run_extra goes to [run], args_extra to [args],
 * task to [task].  Removes an earlier test's journal.  Returns its path (a
 * copy: free it). */
static char *job(const char *run_extra, const char *args_extra, const char *task)
{
    unlink(e2e_path("out.jsonl.journal")); /* each test starts afresh */
    return strdup(e2e_writef("w.ini",
                             "[run]\nplugin = worker\nitems = lines:items.txt\n"
                             "output = out.jsonl\nrecord = full\n%s"
                             "[args]\ncommand = " PYTHON " -u %s\n%s[task]\n%s",
                             run_extra, worker_py, args_extra, task));
}

/* The records of out.jsonl, as a cJSON array (in file order). */
static cJSON *records(void)
{
    char *text = e2e_slurp(e2e_path("out.jsonl"), NULL);
    assert_non_null(text);
    cJSON *all = cJSON_CreateArray();
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        cJSON *rec = cJSON_Parse(line);
        if (!rec)
            fail_msg("not JSON: %s", line);
        cJSON_AddItemToArray(all, rec);
    }
    free(text);
    return all;
}

/* Record k: ok with value JSON text `value`, or failed with `error` in
 * its message (value NULL). */
static void expect_record(const cJSON *all, int k, const char *value, const char *error)
{
    const cJSON *rec = cJSON_GetArrayItem(all, k);
    assert_non_null(rec);
    char *text = cJSON_PrintUnformatted(rec);
    const cJSON *idx = cJSON_GetObjectItem(rec, "index");
    if (!cJSON_IsNumber(idx) || idx->valuedouble != k)
        fail_msg("record %d is item %s: %s", k, idx ? "another" : "none", text);
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(rec, "ok"));
    if (value) {
        char *v = ok ? cJSON_PrintUnformatted(cJSON_GetObjectItem(rec, "value")) : NULL;
        if (!ok || strcmp(v, value) != 0)
            fail_msg("record %d: %s, want ok value %s", k, text, value);
        free(v);
    } else {
        const cJSON *err = cJSON_GetObjectItem(rec, "error");
        if (ok || !cJSON_IsString(err) || !strstr(err->valuestring, error))
            fail_msg("record %d: %s, want a failure saying '%s'", k, text, error);
    }
    free(text);
}

/* The pid a worker reported in an echo record's value. */
static long echo_pid(const cJSON *all, int k)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(all, k), "value");
    const cJSON *pid = cJSON_GetObjectItem(v, "pid");
    assert_true(cJSON_IsNumber(pid));
    return (long)pid->valuedouble;
}

/* The pids workers appended to tmp/NAME, a line each. */
static size_t worker_pids_in(const char *name, int *pids, size_t max)
{
    char *text = e2e_slurp(e2e_path(name), NULL);
    size_t n = 0;
    for (char *p = text, *nl; p && n < max && (nl = strchr(p, '\n')); p = nl + 1)
        pids[n++] = atoi(p);
    free(text);
    return n;
}

/* Items get their index, number, text and the seed of their index: the
 * first word of the item's random stream 0, the same for any thread count
 * and in both modes; the output is in input order. */
static void worker_items_and_seeds(void **state)
{
    (void)state;
    enum { N = 40 };
    const char *lines[N];
    for (int k = 0; k < N; k++)
        lines[k] = "echo";
    items(lines, N);
    static const char *const modes[] = {"threads = 1\n", "threads = 2\n", "threads = 4\n",
                                        "threads = 3\nisolate = process\n"};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        char run[128];
        snprintf(run, sizeof run, "%sseed = 7\n", modes[m]);
        char *ini = job(run, "", "");
        e2e_outcome_t o = E2E_RUN("run", ini, "-q");
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
        cJSON *all = records();
        assert_int_equal(cJSON_GetArraySize(all), N);
        for (int k = 0; k < N; k++) {
            if (!cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(all, k), "ok")))
                fail_msg("%s item %d failed", modes[m], k);
            const cJSON *frame =
                cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(all, k), "value"),
                                    "frame");
            weft_item_t item = {.index = (uint64_t)k, .number = k};
            weft_rng_t rng;
            weft__rng_init(&rng, 7, 0, item.index);
            char want[256];
            snprintf(want, sizeof want,
                     "{\"index\":%d,\"number\":%d,\"seed\":%" PRIu64 ",\"text\":\"echo\"}", k,
                     k, weft__rng_u64(&rng));
            if (!cJSON_IsString(frame) || strcmp(frame->valuestring, want) != 0)
                fail_msg("%s item %d got %s, want %s", modes[m], k,
                         cJSON_IsString(frame) ? frame->valuestring : "no frame", want);
        }
        cJSON_Delete(all);
        free(ini);
    }
}

/* order = any: every record once, whatever order they finish in (the
 * sleeps make later items finish first). */
static void worker_order_any(void **state)
{
    (void)state;
    static const char *const lines[] = {"sleep:0.3", "sleep:0.2", "sleep:0.1", "ok:3",
                                        "sleep:0.05", "ok:5"};
    enum { N = sizeof lines / sizeof *lines };
    items(lines, N);
    char *ini = job("threads = 3\norder = any\n", "", "");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    cJSON *all = records();
    assert_int_equal(cJSON_GetArraySize(all), N);
    bool seen[N] = {0};
    const cJSON *rec;
    int pos = 0, first = -1;
    cJSON_ArrayForEach(rec, all)
    {
        int k = (int)cJSON_GetObjectItem(rec, "index")->valuedouble;
        assert_true(k >= 0 && k < N && !seen[k]);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rec, "ok")));
        seen[k] = true;
        if (pos++ == 0)
            first = k;
    }
    if (first == 0)
        fail_msg("order = any wrote the 0.3 s item first");
    cJSON_Delete(all);
    free(ini);
}

/* An item's bytes that are not UTF-8 reach the worker as \udcXX escapes
 * (Python's surrogateescape), valid UTF-8 as it is, controls escaped. */
static void worker_text_escapes(void **state)
{
    (void)state;
    e2e_write_bytes("items.txt", "echo\xff\xc3\xa9\x01\"\\\xe2\x82\n", 13);
    char *ini = job("", "", "");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    cJSON *all = records();
    const cJSON *frame = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), "value"), "frame");
    assert_true(cJSON_IsString(frame));
    if (!strstr(frame->valuestring,
                "\"text\":\"echo\\udcff\xc3\xa9\\u0001\\\"\\\\\\udce2\\udc82\"}"))
        fail_msg("frame: %s", frame->valuestring);
    cJSON_Delete(all);
    free(ini);
}

/* Each way a worker goes wrong costs its item only: the others are all
 * there, and a new worker takes the next item after a crash.  One worker,
 * so that every failure hits the process the next item runs on. */
static void worker_failures_cost_their_item(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "ok:1",        "fail:no such file: a.png", "segv",      "ok:3", "exit:3",
        "ok:5",        "garbage",                  "ok:7",      "partial", "ok:9",
        "huge:300000", "badutf8",                  "ok:12",     "hang",    "ok:14",
        "between",     "ok:16",                    "extra",     "ok:18",   "ok:[1,\"two\"]",
        "ok:",         "huge:50",
    };
    items(lines, sizeof lines / sizeof *lines);
    char *ini = job("threads = 1\n", "timeout = 1\nmax_result = 200000\n", "");
    e2e_outcome_t o = E2E_RUN("run", ini);
    e2e_expect(&o, 1, "8 failed");
    if (!strstr(o.err, "worker 0: sent 'ok 2' after its reply; a new worker takes over"))
        fail_msg("the extra reply was not reported:\n%s", o.err);
    e2e_free(&o);
    cJSON *all = records();
    assert_int_equal(cJSON_GetArraySize(all), sizeof lines / sizeof *lines);
    expect_record(all, 0, "1", NULL);
    expect_record(all, 1, NULL, "no such file: a.png");
    expect_record(all, 2, NULL, "the worker was killed by signal 11 (SIGSEGV)");
    expect_record(all, 3, "3", NULL);
    expect_record(all, 4, NULL, "the worker exited with status 3: exiting with 3 on purpose");
    expect_record(all, 5, "5", NULL);
    expect_record(all, 6, NULL, "broke the protocol: sent 'Traceback (most recent call");
    expect_record(all, 7, "7", NULL);
    expect_record(all, 8, NULL, "in the middle of its reply (12 bytes, no newline)");
    expect_record(all, 9, "9", NULL);
    expect_record(all, 10, NULL, "over max_result (200000 bytes)");
    expect_record(all, 11, NULL, "UTF-8");
    expect_record(all, 12, "12", NULL);
    expect_record(all, 13, NULL, "timed out after 1 s (the worker was killed)");
    expect_record(all, 14, "14", NULL);
    expect_record(all, 15, "1", NULL);
    expect_record(all, 16, "16", NULL); /* the worker that left between items cost nothing */
    expect_record(all, 17, "1", NULL);
    expect_record(all, 18, "18", NULL);
    expect_record(all, 19, "[1,\"two\"]", NULL);
    expect_record(all, 20, "null", NULL); /* `ok` alone */
    char want[64];
    snprintf(want, sizeof want, "\"%050d\"", 0);
    memset(want + 1, 'x', 50);
    expect_record(all, 21, want, NULL);
    cJSON_Delete(all);
    free(ini);
}

/* A large reply (8 MiB) arrives whole; the default max_result allows it. */
static void worker_large_reply(void **state)
{
    (void)state;
    static const char *const lines[] = {"huge:8388608", "ok:2"};
    items(lines, 2);
    char *ini = job("threads = 1\n", "", "");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    cJSON *all = records();
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), "value");
    assert_true(cJSON_IsString(v));
    assert_int_equal(strlen(v->valuestring), 8388608);
    assert_int_equal(strspn(v->valuestring, "x"), 8388608);
    expect_record(all, 1, "2", NULL);
    cJSON_Delete(all);
    free(ini);

    /* max_result holds for a line that came in one read, at its edge:
     * `ok "` + 35 x + `"` is 40 bytes. */
    static const char *const small[] = {"huge:35", "huge:36", "ok:3"};
    items(small, 3);
    ini = job("threads = 1\n", "max_result = 40\n", "");
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    all = records();
    char want[64] = "\"";
    memset(want + 1, 'x', 35);
    strcpy(want + 36, "\"");
    expect_record(all, 0, want, NULL);
    expect_record(all, 1, NULL, "over max_result (40 bytes)");
    expect_record(all, 2, "3", NULL);
    cJSON_Delete(all);
    free(ini);
}

/* A task that reads its item and exits 0 costs that item, and is not
 * given it a second time; an item's timeout does not count the start of
 * the worker that takes it (a slow start after a crash is not a timeout). */
static void worker_exit0_and_slow_start(void **state)
{
    (void)state;
    unlink(e2e_path("ran"));
    static const char *const lines[] = {"exit0:ran", "segv", "ok:2"};
    items(lines, 3);
    char *ini = job("threads = 1\n", "timeout = 1\n", "start_delay = 1.5\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    cJSON *all = records();
    expect_record(all, 0, NULL, "the worker exited with status 0");
    expect_record(all, 1, NULL, "killed by signal 11");
    expect_record(all, 2, "2", NULL);
    cJSON_Delete(all);
    int pids[4];
    size_t n = worker_pids_in("ran", pids, 4);
    if (n != 1)
        fail_msg("the item that exits 0 ran %zu times", n);
    free(ini);
}

/* [task] reaches hello's args as text, exactly; --set task.KEY overrides
 * one; bytes that are not UTF-8 come as \udcXX.  A [task] section for a
 * plugin that takes none, or a key no function argument can have, is
 * refused with its line. */
static void worker_task_args(void **state)
{
    (void)state;
    /* The fixture writes its hello's args back through a task arg: its
     * pids file is written first, so use echo of a frame instead. */
    static const char *const lines[] = {"echo"};
    items(lines, 1);
    char *ini = job("", "", "size = 100\nname = h\xc3\xa9llo \"q\"\n");
    e2e_outcome_t o = E2E_RUN("check", ini, "--init");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    free(ini);

    ini = strdup(e2e_writef("exec_task.ini", "[run]\nplugin = exec\nitems = 2\n"
                                             "output = -\n[args]\ncommand = echo\n"
                                             "[task]\nsize = 3\n"));
    o = E2E_RUN("check", ini);
    e2e_expect(&o, 2, "exec_task.ini:8: [task] is for a plugin that hands arguments on");
    e2e_free(&o);
    free(ini);

    ini = job("", "", "2size = 3\n");
    o = E2E_RUN("check", ini);
    e2e_expect(&o, 2, "w.ini:9: [task] key '2size' is not a name");
    e2e_free(&o);
    free(ini);
}

/* The worker's own view of [task]: the fixture refuses at hello when told
 * to, and weft stops before anything is written (status 2, the old
 * results kept): so does `weft check --init`.  A command that is not
 * there, one that exits before ready, and one that hangs are refused the
 * same way, each saying why. */
static void worker_cannot_start(void **state)
{
    (void)state;
    static const char *const lines[] = {"ok:1", "ok:2"};
    items(lines, 2);
    e2e_write("out.jsonl", "old results\n");
    static const struct {
        const char *task, *args, *says;
    } cases[] = {
        {"hello = fail\n", "", "the task refuses: size must be even"},
        {"hello = exit\n", "", "exited with status 4 before answering hello: cannot import "
                               "numpy (pretend)"},
        {"hello = hang\n", "start_timeout = 0.5\n", "no 'ready' within start_timeout (0.5 s)"},
        {"hello = garbage\n", "", "broke the protocol: sent 'hi there' to hello"},
        {"hello = extra\n", "", "broke the protocol: sent 'ok 999' after 'ready', before any "
                                "item"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char *ini = job("", cases[c].args, cases[c].task);
        for (int check = 0; check < 2; check++) {
            e2e_outcome_t o =
                check ? E2E_RUN("check", ini, "--init") : E2E_RUN("run", ini, "-q");
            e2e_expect(&o, 2, cases[c].says);
            e2e_free(&o);
        }
        char *kept = e2e_slurp(e2e_path("out.jsonl"), NULL);
        assert_string_equal(kept, "old results\n");
        free(kept);
        free(ini);
    }
    char *ini = strdup(e2e_writef("nope.ini", "[run]\nplugin = worker\nitems = 2\n"
                                              "output = -\n[args]\ncommand = "
                                              "no-such-command-here --x\n"));
    e2e_outcome_t o = E2E_RUN("run", ini);
    e2e_expect(&o, 2, "exited with status 127 before answering hello");
    if (!strstr(o.err, "not found"))
        fail_msg("the shell's 'not found' is not in the message:\n%s", o.err);
    e2e_free(&o);
    free(ini);
    unlink(e2e_path("out.jsonl"));
}

/* A worker's stderr reaches weft's, a line at a time, with its item. */
static void worker_stderr_lines(void **state)
{
    (void)state;
    static const char *const lines[] = {"ok:0", "stderr:first line", "stderr:second"};
    items(lines, 3);
    char *ini = job("threads = 1\n", "", "");
    e2e_outcome_t o = E2E_RUN("run", ini);
    e2e_expect(&o, 0, "worker: item 1: first line");
    e2e_expect(&o, 0, "worker: item 2: second");
    e2e_free(&o);
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    if (strstr(o.err, "first line"))
        fail_msg("-q kept a worker's line:\n%s", o.err);
    e2e_free(&o);
    free(ini);
}

/* retries = 1: an item whose worker crashed runs again on a new one. */
static void worker_retries(void **state)
{
    (void)state;
    unlink(e2e_path("once.mark"));
    char line[64];
    snprintf(line, sizeof line, "once:once.mark");
    const char *lines[] = {"ok:0", line, "ok:2"};
    items(lines, 3);
    char *ini = job("threads = 1\nretries = 1\n", "", "");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    cJSON *all = records();
    expect_record(all, 1, "1", NULL);
    cJSON_Delete(all);
    free(ini);
}

/* kill -9 of weft in the middle of a run, then --resume: the output is
 * byte-identical to an uninterrupted run's, and the workers of the killed
 * run do not outlive it (their input ends with weft). */
static void worker_kill9_resume(void **state)
{
    (void)state;
    enum { N = 400 };
    static char texts[N][32];
    const char *lines[N];
    for (int k = 0; k < N; k++) {
        snprintf(texts[k], sizeof texts[k], k % 7 == 3 ? "fail:no %d" : "sleep:0.00%d",
                 k % 10);
        lines[k] = texts[k];
    }
    items(lines, N);
    char *ini = job("threads = 2\n", "", "pids = pids\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "--set", "run.record=value", "--set",
                              "run.output=ref.jsonl");
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    char *ref = e2e_slurp(e2e_path("ref.jsonl"), NULL);
    assert_non_null(ref);
    for (int round = 0; round < 3; round++) {
        unlink(e2e_path("out.jsonl"));
        unlink(e2e_path("out.jsonl.journal"));
        unlink(e2e_path("pids"));
        int pid = E2E_SPAWN("run", ini, "-q", "--set", "run.record=value");
        e2e_sleep(0.3 + 0.2 * round);
        kill(pid, SIGKILL);
        e2e_wait(pid);
        int pids[16];
        size_t n = worker_pids_in("pids", pids, 16);
        assert_true(n >= 1);
        e2e_expect_all_gone(pids, n, "a worker of a weft killed by SIGKILL");
        o = E2E_RUN("run", ini, "-q", "--set", "run.record=value", "--resume");
        e2e_expect(&o, 1, NULL); /* the items that fail on purpose */
        e2e_free(&o);
        char *got = e2e_slurp(e2e_path("out.jsonl"), NULL);
        if (!got || strcmp(got, ref) != 0)
            fail_msg("round %d: the resumed output differs from one run's", round);
        free(got);
    }
    free(ref);
    free(ini);
}

/* A first SIGINT reaches the workers (their own process groups: weft
 * forwards it, as a terminal would); the items they were running are not
 * run, weft exits 130, and --resume finishes the output.  A worker that
 * ignores SIGINT holds its item until a second SIGINT, which kills it. */
static void worker_signals(void **state)
{
    (void)state;
    static const char *const lines[] = {"ok:0", "wait:go", "wait:go", "ok:3"};
    items(lines, 4);
    /* ignore 0: the worker dies of SIGINT; 1: it ignores it; 2: it answers
     * its item `fail interrupted` (also not run). */
    for (int ignore = 0; ignore < 3; ignore++) {
        unlink(e2e_path("out.jsonl"));
        unlink(e2e_path("out.jsonl.journal"));
        unlink(e2e_path("pids"));
        unlink(e2e_path("go"));
        char task[64];
        snprintf(task, sizeof task, "pids = pids\nignore_int = %d\nint_fail = %d\n",
                 ignore == 1, ignore == 2);
        char *ini = job("threads = 2\n", "", task);
        int pid = E2E_SPAWN_LOGGED(false, "run", ini);
        int pids[2];
        if (!e2e_pids_in_file("pids", pids, 2)) {
            kill(pid, SIGKILL);
            fail_msg("the workers did not start (weft: status %d)", e2e_wait(pid));
        }
        e2e_sleep(0.5); /* both waiting in their items */
        kill(pid, SIGINT);
        if (ignore == 1) {
            e2e_sleep(0.3);
            int st;
            if (waitpid(pid, &st, WNOHANG) != 0) {
                e2e_expect_all_gone(pids, 2, "a worker");
                fail_msg("weft ended at one SIGINT though its workers ignore it");
            }
            kill(pid, SIGINT);
        }
        bool exited;
        int st = e2e_wait_for(pid, 10.0, &exited);
        e2e_expect_all_gone(pids, 2, "a worker at SIGINT");
        char *err = e2e_slurp(e2e_path("weft.err"), NULL);
        if (st != 130 || (ignore != 1 && !strstr(err, "items not run")) ||
            strstr(err, "failed:"))
            fail_msg("ignore %d: weft status %d, want 130, items not run, none failed; "
                     "stderr:\n%s",
                     ignore, st, err ? err : "");
        free(err);
        /* The interrupted items run again, the others are reused. */
        e2e_write("go", "");
        e2e_outcome_t o = E2E_RUN("run", ini, "-q", "--resume");
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
        cJSON *all = records();
        assert_int_equal(cJSON_GetArraySize(all), 4);
        expect_record(all, 0, "0", NULL);
        expect_record(all, 1, "\"waited\"", NULL);
        expect_record(all, 2, "\"waited\"", NULL);
        expect_record(all, 3, "3", NULL);
        cJSON_Delete(all);
        free(ini);
    }
}

/* The workers persist: 200 items on 2 workers are served by the 2
 * processes init started. */
static void worker_processes_persist(void **state)
{
    (void)state;
    enum { N = 200 };
    const char *lines[N];
    for (int k = 0; k < N; k++)
        lines[k] = "echo";
    items(lines, N);
    char *ini = job("threads = 2\n", "", "");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    cJSON *all = records();
    long seen[4] = {0};
    size_t n_seen = 0;
    for (int k = 0; k < N; k++) {
        long p = echo_pid(all, k);
        size_t j = 0;
        while (j < n_seen && seen[j] != p)
            j++;
        if (j == n_seen) {
            if (n_seen == 2)
                fail_msg("item %d ran in a third worker process (pid %ld)", k, p);
            seen[n_seen++] = p;
        }
    }
    cJSON_Delete(all);
    free(ini);
}

/* The one-liner: weft run -p worker -- CMD ::: ITEMS prints raw values (a
 * string's own text, GNU parallel style). */
static void worker_one_liner(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("run", "-q", "-j1", "-p", "worker", "--", PYTHON, "-u",
                              worker_py, ":::", "ok:\"a b\"", "ok:42", "ok:\"caf\\u00e9\"");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "a b\n42\ncaf\xc3\xa9\n"); /* a string's text, a line */
    e2e_free(&o);
    /* What is not JSON fails the item there too. */
    o = E2E_RUN("run", "-j1", "-p", "worker", "--", PYTHON, "-u", worker_py, ":::", "badutf8",
                "ok:\"a\tb\"", "ok:7");
    e2e_expect(&o, 1, "invalid UTF-8");
    e2e_expect(&o, 1, "item 1 failed");
    assert_string_equal(o.out, "7\n");
    e2e_free(&o);
}

/* ---- through weft_worker.py ---------------------------------------------- */

/* A Python task written with weft_worker.py, run by weft (the helper found
 * beside worker.so): typed [task] arguments, print() reaching weft's stderr
 * with its item, an exception, a segfault and a hang each costing their
 * item only (timeout kills the worker), the others all there. */
static void worker_python_task(void **state)
{
    (void)state;
    e2e_write("task.py",
              "import ctypes, time\n"
              "import weft_worker\n"
              "@weft_worker.task\n"
              "def process(item, scale: int = 1, tag: str = ''):\n"
              "    if item.index == 2:\n"
              "        raise ValueError('item two is bad')\n"
              "    if item.index == 3:\n"
              "        ctypes.string_at(0)\n"
              "    if item.index == 4:\n"
              "        time.sleep(60)\n"
              "    print('working on', item.index)\n"
              "    return [item.number * scale, tag]\n"
              "if __name__ == '__main__':\n"
              "    weft_worker.run()\n");
    char *ini = strdup(e2e_writef("py.ini",
                                  "[run]\nplugin = worker\nitems = 10..17\noutput = out.jsonl\n"
                                  "record = full\nthreads = 2\n[args]\ncommand = " PYTHON
                                  " -u task.py\ntimeout = 2\n[task]\nscale = 3\ntag = t\n"));
    unlink(e2e_path("out.jsonl.journal"));
    e2e_outcome_t o = E2E_RUN("run", ini);
    e2e_expect(&o, 1, "worker: item 5: working on 5");
    e2e_free(&o);
    cJSON *all = records();
    for (int k = 0; k < 7; k++) {
        char want[32];
        snprintf(want, sizeof want, "[%d,\"t\"]", (10 + k) * 3);
        if (k == 2)
            expect_record(all, k, NULL, "ValueError: item two is bad");
        else if (k == 3)
            expect_record(all, k, NULL, "the worker was killed by signal 11 (SIGSEGV)");
        else if (k == 4)
            expect_record(all, k, NULL, "timed out after 2 s");
        else
            expect_record(all, k, want, NULL);
    }
    cJSON_Delete(all);
    /* An argument the function does not take stops the run at start, with
     * the helper's did-you-mean; weft check --init says the same. */
    for (int check = 0; check < 2; check++) {
        o = check ? E2E_RUN("check", ini, "--init", "--set", "task.scael=2")
                  : E2E_RUN("run", ini, "--set", "task.scael=2");
        e2e_expect(&o, 2, "unknown argument 'scael'");
        e2e_expect(&o, 2, "did you mean 'scale'?");
        e2e_free(&o);
    }
    free(ini);
}

/* weft killed by SIGKILL cannot kill its workers: a weft_worker.py worker
 * busy in a long item sees its parent change and ends within a second, so
 * nothing runs on under PID 1. */
static void worker_python_outlives_nothing(void **state)
{
    (void)state;
    unlink(e2e_path("busy.pids"));
    e2e_write("long.py",
              "import os, time\n"
              "import weft_worker\n"
              "@weft_worker.task\n"
              "def process(item):\n"
              "    with open('busy.pids', 'a') as f:\n"
              "        f.write('%d\\n' % os.getpid())\n"
              "    time.sleep(60)\n"
              "    return 1\n"
              "weft_worker.run()\n");
    char *ini = strdup(e2e_writef("long.ini", "[run]\nplugin = worker\nitems = 2\n"
                                              "output = long.json\nthreads = 2\n[args]\n"
                                              "command = " PYTHON " -u long.py\n"));
    unlink(e2e_path("long.json.journal"));
    int pid = E2E_SPAWN("run", ini, "-q");
    int pids[2];
    if (!e2e_pids_in_file("busy.pids", pids, 2)) {
        kill(pid, SIGKILL);
        fail_msg("the items did not start (weft: status %d)", e2e_wait(pid));
    }
    kill(pid, SIGKILL);
    e2e_wait(pid);
    e2e_expect_all_gone(pids, 2, "a weft_worker.py worker in an item when weft was killed");
    unlink(e2e_path("long.json.journal"));
    free(ini);
}

/* The shipped examples run as they are: read_files (stdlib Python) and the
 * awk worker (the protocol is language-neutral). */
static void worker_examples(void **state)
{
    (void)state;
    const char *src = getenv("WEFT_SOURCE_ROOT");
    char ini[4096];
    snprintf(ini, sizeof ini, "%s/examples/worker/upper.ini", src);
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-o", "-");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "[\n\"HELLO\",\n\"TWO WORDS\",\n\"WEFT\",\n\"PLAIN ASCII ONLY\",\n"
                               "\"MIXED CASE 123\"\n]\n");
    e2e_free(&o);

    snprintf(ini, sizeof ini, "%s/examples/worker/read_files.ini", src);
    o = E2E_RUN("run", ini, "-q", "-o", "-", "--set", "args.command=" PYTHON " -u read_files.py");
    e2e_expect(&o, 0, NULL);
    cJSON *all = cJSON_Parse(o.out);
    assert_non_null(all);
    assert_int_equal(cJSON_GetArraySize(all), 5);
    const cJSON *rec;
    cJSON_ArrayForEach(rec, all)
    {
        const char *name = cJSON_GetObjectItem(rec, "name")->valuestring;
        char path[4200];
        snprintf(path, sizeof path, "%s/configs/sample_files/%s", src, name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (cJSON_GetObjectItem(rec, "bytes")->valuedouble != (double)st.st_size)
            fail_msg("%s: %s bytes, stat says %lld", name, o.out, (long long)st.st_size);
    }
    cJSON_Delete(all);
    e2e_free(&o);
}

/* The seed's noise PNG job in Python (examples/worker/noise_png.py: numpy
 * and OpenCV): kill -9 in the middle, then --resume, gives the files of a
 * run never interrupted, byte for byte, with no partial file left. */
static void worker_noise_png_kill9_resume(void **state)
{
    (void)state;
    if (system(PYTHON " -c 'import cv2, numpy' 2>/dev/null") != 0) {
        print_message("no cv2 for " PYTHON " (bash .ci/deps installs python3-opencv): the "
                      "noise_png example is not run\n");
        skip();
    }
    const char *src = getenv("WEFT_SOURCE_ROOT");
    char ini[4096], outdir[2][4096], cmd[4300];
    snprintf(ini, sizeof ini, "%s/examples/worker/noise_png.ini", src);
    snprintf(cmd, sizeof cmd, "args.command=" PYTHON " -u noise_png.py");
    enum { N = 600 };
    for (int k = 0; k < 2; k++) {
        snprintf(outdir[k], sizeof outdir[k], "%s", e2e_pathf("png%d", k));
        e2e_remove(outdir[k]);
    }
    char set_dir[4200], set_out[4200];
    snprintf(set_dir, sizeof set_dir, "task.outdir=%s", outdir[0]);
    snprintf(set_out, sizeof set_out, "run.output=%s", e2e_path("ref.json"));
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-j1", "--set", cmd, "--set", set_dir, "--set",
                              set_out, "--set", "run.items=600");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);

    snprintf(set_dir, sizeof set_dir, "task.outdir=%s", outdir[1]);
    snprintf(set_out, sizeof set_out, "run.output=%s", e2e_path("k9.json"));
    unlink(e2e_path("k9.json.journal"));
    int pid = E2E_SPAWN("run", ini, "-q", "-j2", "--set", cmd, "--set", set_dir, "--set",
                        set_out, "--set", "run.items=600");
    /* Killed once some images are there, before the last. */
    for (double t0 = weft__mono_s(); weft__mono_s() - t0 < 20.0; e2e_sleep(0.01)) {
        char probe[4300];
        snprintf(probe, sizeof probe, "%s/noise_000100.png", outdir[1]);
        if (access(probe, F_OK) == 0)
            break;
    }
    kill(pid, SIGKILL);
    e2e_wait(pid);
    o = E2E_RUN("run", ini, "-q", "-j2", "--set", cmd, "--set", set_dir, "--set", set_out,
                "--set", "run.items=600", "--resume");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    for (int i = 0; i < N; i++) {
        char a[4300], b[4300];
        snprintf(a, sizeof a, "%s/noise_%06d.png", outdir[0], i);
        snprintf(b, sizeof b, "%s/noise_%06d.png", outdir[1], i);
        size_t na = 0, nb = 0;
        char *x = e2e_slurp(a, &na), *y = e2e_slurp(b, &nb);
        if (!x || !y || na != nb || memcmp(x, y, na) != 0)
            fail_msg("image %d differs after kill -9 and --resume (%s)", i, b);
        free(x);
        free(y);
    }
    char *x = e2e_slurp(e2e_path("ref.json"), NULL), *y = e2e_slurp(e2e_path("k9.json"), NULL);
    assert_non_null(x);
    assert_non_null(y);
    assert_string_equal(x, y);
    free(x);
    free(y);
    /* Nothing but the images and weft's lock: no temporary left behind. */
    char ls[4400];
    snprintf(ls, sizeof ls, "test \"$(ls -A '%s' | grep -vc '^noise_[0-9]*\\.png$')\" -le 1",
             outdir[1]);
    if (system(ls) != 0)
        fail_msg("%s holds files other than the images", outdir[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worker_items_and_seeds),
        cmocka_unit_test(worker_order_any),
        cmocka_unit_test(worker_text_escapes),
        cmocka_unit_test(worker_failures_cost_their_item),
        cmocka_unit_test(worker_large_reply),
        cmocka_unit_test(worker_exit0_and_slow_start),
        cmocka_unit_test(worker_task_args),
        cmocka_unit_test(worker_cannot_start),
        cmocka_unit_test(worker_stderr_lines),
        cmocka_unit_test(worker_retries),
        cmocka_unit_test(worker_kill9_resume),
        cmocka_unit_test(worker_signals),
        cmocka_unit_test(worker_processes_persist),
        cmocka_unit_test(worker_one_liner),
        cmocka_unit_test(worker_python_task),
        cmocka_unit_test(worker_python_outlives_nothing),
        cmocka_unit_test(worker_examples),
        cmocka_unit_test(worker_noise_png_kill9_resume),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
