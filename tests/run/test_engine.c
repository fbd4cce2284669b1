/* SPDX-License-Identifier: MIT */
/* The engine end to end (core/run/engine_thread.c, engine_process.c):
 * results stream out while later items still run, an interrupted record =
 * value list keeps one entry per item, order = any keeps every record in
 * both modes, and long items all start at once.  Suite "e2e". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "u128_decimal.h"
#include "util.h" /* weft__mono_s */

extern char **environ;

/* Starts weft with stdout on a pipe (returned in *out_fd), stderr and stdin
 * on /dev/null. */
static pid_t spawn_piped(const char *const *args, int *out_fd)
{
    const char *argv[E2E_ARGV_MAX];
    e2e_weft_argv(argv, args);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int e = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    assert_int_equal(e, 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

/* Reads until `lines` newlines arrived or `timeout` seconds passed; the
 * number of lines read. */
static int read_lines(int fd, int lines, double timeout, char *buf, size_t cap)
{
    size_t len = 0;
    int got = 0;
    double end = weft__mono_s() + timeout;
    while (got < lines && weft__mono_s() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t k = read(fd, buf + len, cap - 1 - len);
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            got += buf[len + (size_t)i] == '\n';
        len += (size_t)k;
    }
    buf[len] = '\0';
    return got;
}

/* Items 0-4 are instant, item 5 runs until its 10 s timeout stops it: the
 * first five records must reach the pipe while item 5 still runs (before
 * the engine streamed, they came only at the end).  Both modes, both
 * orders. */
static void engine_streams_while_items_run(void **state)
{
    (void)state;
    static const char *const modes[] = {
        "threads = 2",
        "threads = 2\norder = any",
        "threads = 2\nisolate = process",
        "threads = 2\nisolate = process\norder = any",
    };
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        const char *ini = e2e_writef("stream.ini",
                                     "[run]\nplugin = fault\nitems = 6\noutput = -\n"
                                     "format = jsonl\ntimeout = 10\n%s\n[args]\nhang = 5\n",
                                     modes[m]);
        int fd;
        pid_t pid = spawn_piped((const char *const[]){"run", ini, "-q", NULL}, &fd);
        char buf[4096];
        double t0 = weft__mono_s();
        int got = read_lines(fd, 5, 9.0, buf, sizeof buf);
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (got != 5) {
            kill(pid, SIGKILL);
            fail_msg("%s: %d of 5 records reached the pipe in %.1f s: '%s'", modes[m],
                     got, weft__mono_s() - t0, buf);
        }
        if (w != 0)
            fail_msg("%s: weft had ended before the hanging item timed out", modes[m]);
        /* The records are the instant items', in input order unless any. */
        for (int k = 0; k < 5; k++) {
            char want[16];
            snprintf(want, sizeof want, "%d\n", 3 * k + 1);
            assert_non_null(strstr(buf, want));
        }
        if (!strstr(modes[m], "any"))
            assert_string_equal(buf, "1\n4\n7\n10\n13\n");
        /* Item 5 times out and fails: its record is the last line. */
        got = read_lines(fd, 1, 30.0, buf, sizeof buf);
        int status = e2e_wait(pid);
        close(fd);
        if (got != 1 || strcmp(buf, "null\n") != 0)
            fail_msg("%s: after the timeout: '%s'", modes[m], buf);
        if (status != 1)
            fail_msg("%s: weft exited %d (want 1: item 5 timed out)", modes[m], status);
    }
}

/* record = value: an interrupted run keeps one entry per item, null where
 * an item did not run (or failed), so positions still are indices. */
static void engine_value_positions_survive_interrupt(void **state)
{
    (void)state;
    static const char *const modes[] = {"threads = 2", "threads = 2\nisolate = process"};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        const char *ini = e2e_writef("nulls.ini",
                                     "[run]\nplugin = fault\nitems = 3000\noutput = nulls.json\n"
                                     "%s\n[args]\nsleep_ms = 1\nfail = 3\n",
                                     modes[m]);
        pid_t pid = E2E_SPAWN("run", ini, "-q", "--restart");
        e2e_sleep(0.4);
        kill(pid, SIGINT);
        int st = e2e_wait(pid);
        assert_int_equal(st, 130);
        char *text = e2e_slurp(e2e_path("nulls.json"), NULL);
        assert_non_null(text);
        cJSON *a = cJSON_Parse(text);
        assert_non_null(a);
        assert_true(cJSON_IsArray(a));
        assert_int_equal(cJSON_GetArraySize(a), 3000);
        int ran = 0, nulls = 0;
        for (int k = 0; k < 3000; k++) {
            cJSON *e = cJSON_GetArrayItem(a, k);
            if (cJSON_IsNull(e)) {
                nulls++;
                continue;
            }
            assert_true(cJSON_IsNumber(e));
            if ((int)e->valuedouble != 3 * k + 1)
                fail_msg("%s: entry %d is %g, want %d", modes[m], k, e->valuedouble,
                         3 * k + 1);
            ran++;
        }
        assert_true(cJSON_IsNull(cJSON_GetArrayItem(a, 3))); /* failed */
        if (ran == 0 || nulls < 2)
            fail_msg("%s: %d ran, %d null: the interrupt came too early or too late", modes[m],
                     ran, nulls);
        cJSON_Delete(a);
        free(text);
        /* --resume fills the nulls in: the complete list. */
        e2e_outcome_t o = E2E_RUN("run", ini, "-q", "--resume");
        e2e_expect(&o, 1, NULL); /* item 3 fails */
        e2e_free(&o);
        text = e2e_slurp(e2e_path("nulls.json"), NULL);
        a = cJSON_Parse(text);
        assert_non_null(a);
        assert_int_equal(cJSON_GetArraySize(a), 3000);
        for (int k = 0; k < 3000; k++) {
            cJSON *e = cJSON_GetArrayItem(a, k);
            if (k == 3)
                assert_true(cJSON_IsNull(e));
            else
                assert_int_equal((int)e->valuedouble, 3 * k + 1);
        }
        cJSON_Delete(a);
        free(text);
    }
}

/* order = any with worker processes, with failures and crashes retried:
 * every item's record exactly once (it used to write nothing at all). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void engine_order_any_every_record(void **state)
{
    (void)state;
    static const char *const modes[] = {
        "threads = 3\norder = any",
        "threads = 3\norder = any\nisolate = process",
        "threads = 3\norder = any\nisolate = process\nretries = 1",
    };
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        const char *ini = e2e_writef("any.ini",
                                     "[run]\nplugin = fault\nitems = 2000\noutput = -\n"
                                     "format = jsonl\nrecord = full\n%s\n"
                                     "[args]\nfail = 5,1999\nfail_once = 77\n",
                                     modes[m]);
        e2e_outcome_t o = E2E_RUN("run", ini, "-q");
        e2e_expect(&o, 1, NULL);
        char *lines[2001];
        size_t n = 0;
        for (char *l = strtok(o.out, "\n"); l && n < 2001; l = strtok(NULL, "\n"))
            lines[n++] = l;
        if (n != 2000)
            fail_msg("%s: %zu records for 2000 items", modes[m], n);
        qsort(lines, n, sizeof *lines, cmp_str);
        for (size_t k = 1; k < n; k++)
            if (strcmp(lines[k - 1], lines[k]) == 0)
                fail_msg("%s: a record twice: %s", modes[m], lines[k]);
        int seen = 0;
        for (size_t k = 0; k < n; k++) {
            cJSON *rec = cJSON_Parse(lines[k]);
            assert_non_null(rec);
            int index = cJSON_GetObjectItem(rec, "index")->valueint;
            assert_true(index >= 0 && index < 2000);
            seen++;
            bool ok = cJSON_IsTrue(cJSON_GetObjectItem(rec, "ok"));
            assert_int_equal(ok, !(index == 5 || index == 1999 ||
                                   (index == 77 && !strstr(modes[m], "retries"))));
            cJSON_Delete(rec);
        }
        assert_int_equal(seen, 2000);
        e2e_free(&o);
    }
}

/* Many long items on as many threads all run at once: 24 items of 0.3 s on
 * 24 threads take well under 24 x 0.3 s.  (Not a timing assertion on the
 * machine's speed: the items sleep; a serializing engine takes >= 0.6 s.) */
static void engine_long_items_start_together(void **state)
{
    (void)state;
    const char *ini = e2e_write("long.ini", "[run]\nplugin = fault\nitems = 24\nthreads = 24\n"
                                            "output = none\n[args]\nsleep_ms = 300\n");
    for (int round = 0; round < 3; round++) {
        double t0 = weft__mono_s();
        e2e_outcome_t o = E2E_RUN("run", ini, "-q");
        double took = weft__mono_s() - t0;
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
        if (took < 0.6)
            return;
    }
    fail_msg("24 items of 0.3 s on 24 threads never finished under 0.6 s in 3 rounds");
}

/* pow4 takes whole chunks through process_range; a chunk with a number it
 * refuses (beyond 2^32 - 1; the range excludes its end) runs again item by item: the
 * total counts every good number once, and exactly the bad ones fail. */
static void engine_batch_falls_back_per_item(void **state)
{
    (void)state;
    const int64_t lo = 4294967295LL - 3000, hi = 4294967295LL + 40;
    const char *ini = e2e_writef("pow4.ini",
                                 "[run]\nplugin = pow4\nitems = %lld..%lld\noutput = none\n"
                                 "threads = 2\n",
                                 (long long)lo, (long long)hi);
    e2e_outcome_t o = E2E_RUN("run", ini);
    /* The sum of these huge fourth powers overflows (pow4 says so); the
     * point is the counts: every number once, exactly the 39 bad ones
     * failed. */
    e2e_expect(&o, 1, "3001 ok, 39 failed");
    e2e_free(&o);
    /* Small numbers: the exact total, batch or not. */
    ini = e2e_write("pow4s.ini", "[run]\nplugin = pow4\nitems = 1000000\noutput = none\n"
                                 "threads = 2\n");
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    u128 total = 0;
    for (uint64_t n = 0; n < 1000000; n++)
        total += (u128)(n * n) * (n * n);
    char want[64];
    u128_to_decimal(total, want);
    strcat(want, "\n");
    assert_string_equal(o.out, want);
    e2e_free(&o);
}

/* A resume after a crash runs the in-flight items alone first; stopped
 * while it does, the items never reached keep their places around them:
 * the list still has one entry per item, and the counts add up. */
static void engine_stop_during_suspects(void **state)
{
    (void)state;
    const char *ini = e2e_write("sus.ini", "[run]\nplugin = fault\nitems = 300\n"
                                           "output = sus.json\nthreads = 2\n"
                                           "[args]\nsegv = 150\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    assert_true(o.status > 4 && o.status != 130 && o.status != 143); /* crashed */
    e2e_free(&o);
    pid_t pid = E2E_SPAWN("run", ini, "--resume", "--force", "--set", "args.segv=", "--set",
                          "args.sleep_ms=700", "--summary-json", e2e_path("sus-summary.json"));
    e2e_sleep(0.3);
    kill(pid, SIGINT);
    double t0 = weft__mono_s();
    assert_int_equal(e2e_wait(pid), 130);
    if (weft__mono_s() - t0 > 5.0)
        fail_msg("the stop waited %.1f s: the items in flight alone did not stop",
                 weft__mono_s() - t0);
    char *text = e2e_slurp(e2e_path("sus.json"), NULL);
    assert_non_null(text);
    cJSON *a = cJSON_Parse(text);
    assert_non_null(a);
    assert_int_equal(cJSON_GetArraySize(a), 300);
    for (int k = 0; k < 300; k++) {
        cJSON *e = cJSON_GetArrayItem(a, k);
        if (!cJSON_IsNull(e))
            assert_int_equal((int)e->valuedouble, 3 * k + 1);
    }
    cJSON_Delete(a);
    free(text);
    char *sum = e2e_slurp(e2e_path("sus-summary.json"), NULL);
    assert_non_null(sum);
    cJSON *js = cJSON_Parse(sum);
    assert_non_null(js);
    double n = 0;
    static const char *const keys[] = {"ok", "failed", "crashed", "timed_out", "quarantined",
                                       "skipped", "not_run"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        cJSON *v = cJSON_GetObjectItem(js, keys[k]);
        if (!v) {
            cJSON *items = cJSON_GetObjectItem(js, "items");
            v = items ? cJSON_GetObjectItem(items, keys[k]) : NULL;
        }
        if (!v)
            fail_msg("no %s in the summary: %s", keys[k], sum);
        n += v->valuedouble;
    }
    if (n != 300)
        fail_msg("the counts add up to %g for 300 items: %s", n, sum);
    cJSON_Delete(js);
    free(sum);
}

int main(void)
{
    e2e_setup("engine");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(engine_streams_while_items_run),
        cmocka_unit_test(engine_value_positions_survive_interrupt),
        cmocka_unit_test(engine_order_any_every_record),
        cmocka_unit_test(engine_long_items_start_together),
        cmocka_unit_test(engine_batch_falls_back_per_item),
        cmocka_unit_test(engine_stop_during_suspects),
    };
    return cmocka_run_group_tests(tests, NULL, e2e_teardown);
}
