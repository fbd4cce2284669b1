/* SPDX-License-Identifier: MIT */
/* core/run/isolate.c: exactly-once over real worker processes, crashes, hangs,
 * exits, large messages, stop soon/now, init failures, restart failures,
 * orderly shutdown, no orphans when the supervisor is SIGKILLed, a crash
 * seen at once although a child holds the worker's socket (and that child
 * killed); the
 * streaming feed: claims while items run, empty items as ranges, runs of
 * empty replies, replies of every size through the ring and the socket, a
 * full ring, items run again, and no finished item run twice after a
 * crash.  Suite "stress". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "children.h"
#include "isolate.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CRASH_LOOPS 30
#else
#define CRASH_LOOPS 50
#endif
#define LOOP_TIMEOUT 0.1 /* s: the hang of item 42, 50 times */

/* ---- what the children do, chosen by the item's index -------------------- */

enum behaviour { B_ECHO, B_CRASHY, B_BIG, B_SLOW, B_HANG0, B_MIXED, B_FAT, B_LINGER };

/* Set in the parent before start (or before a restart): children inherit. */
static struct {
    enum behaviour b;
    int init_fail_worker; /* -1 none; else that worker's init fails */
    bool init_fail_all;   /* every init fails (restart failure test) */
    bool init_crash;      /* worker 0's init segfaults */
    int pid_fd;           /* >= 0: child_init writes its pid here */
    int linger_fd;        /* B_LINGER: the lingering child's pid goes here */
    int fini_fd;          /* >= 0: child_fini writes a byte here */
    long slow_us;
    bool crash_once;          /* B_MIXED: a crashing item crashes once */
    _Atomic unsigned *runs;   /* shared: how often each item began */
} cfg = {.init_fail_worker = -1, .pid_fd = -1, .fini_fd = -1, .linger_fd = -1};

#define BIG_ITEM (1u << 20)
#define BIG_REPLY (4u << 20)
#define MIXED_HUGE (300u << 10) /* over the ring's limit: by the socket */
#define FAT_REPLY (60u << 10)   /* ~17 fill the 1 MiB ring */

/* The code an echo failure passes to the supervisor: varies, never 0. */
static int fail_code(uint64_t index)
{
    return 2 + (int)(index % 3);
}

static size_t echo_len(uint64_t index)
{
    return (size_t)(index % 37);
}

static unsigned char echo_byte(uint64_t index, size_t k)
{
    return (unsigned char)(index * 31u + k * 7u);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A real SIGSEGV, without UBSan's null-store report (whose symbolizing
 * can outlast the crash loop's item timeout). */
static void segfault(void)
{
    raise(SIGSEGV);
}

static int child_init(void *arg, unsigned worker, char *msg, size_t size)
{
    (void)arg;
    /* Our crashes must not leave core files behind. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (cfg.pid_fd >= 0) {
        pid_t me = getpid();
        if (write(cfg.pid_fd, &me, sizeof me) != (ssize_t)sizeof me)
            return -1;
    }
    if (cfg.init_crash && worker == 0)
        segfault();
    if (cfg.init_fail_all || (int)worker == cfg.init_fail_worker) {
        snprintf(msg, size, "no licence for worker %u", worker);
        return -1;
    }
    return 0;
}

static void child_fini(void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    if (cfg.fini_fd >= 0 && write(cfg.fini_fd, "f", 1) != 1)
        _exit(9);
}

static void child_item(void *arg, unsigned worker, uint64_t index, const void *item,
                       size_t len, weft__iso_reply_t *reply)
{
    (void)arg;
    (void)worker;
    char want[32];
    static unsigned char buf[64];
    switch (cfg.b) {
    case B_CRASHY:
        if (index == 13)
            segfault();
        if (index == 42)
            for (;;)
                pause();
        if (index == 77)
            abort();
        if (index == 99)
            _exit(3);
        /* fall through */
    case B_ECHO: {
        int n = snprintf(want, sizeof want, "item-%llu", (unsigned long long)index);
        if ((size_t)n != len || memcmp(item, want, len) != 0) {
            weft__iso_reply_fail(reply, 1, "wrong item bytes", 16);
            return;
        }
        if (index % 11 == 5) {
            char m[48];
            int ml = snprintf(m, sizeof m, "failed %llu", (unsigned long long)index);
            weft__iso_reply_fail(reply, fail_code(index), m, (size_t)ml);
            return;
        }
        for (size_t k = 0; k < echo_len(index); k++)
            buf[k] = echo_byte(index, k);
        weft__iso_reply_ok(reply, (uint32_t)(index % 5), buf, echo_len(index));
        return;
    }
    case B_BIG: {
        const unsigned char *p = item;
        if (len != BIG_ITEM) {
            weft__iso_reply_fail(reply, 1, "short item", 10);
            return;
        }
        for (size_t k = 0; k < len; k++)
            if (p[k] != (unsigned char)index) {
                weft__iso_reply_fail(reply, 1, "bad item", 8);
                return;
            }
        unsigned char *out = malloc(BIG_REPLY);
        if (!out)
            _exit(8);
        memset(out, (unsigned char)(index ^ 0x5a), BIG_REPLY);
        weft__iso_reply_ok(reply, 1, out, BIG_REPLY);
        free(out);
        return;
    }
    case B_MIXED: {
        /* Empty items; empty replies in runs (records change every 100),
         * echoes and huge replies between them, crashes. */
        unsigned ran = atomic_fetch_add(&cfg.runs[index], 1) + 1;
        if (item || len) {
            weft__iso_reply_fail(reply, 1, "an empty item had bytes", 23);
            return;
        }
        if (index % 1000 == 777 && (!cfg.crash_once || ran == 1))
            segfault();
        if (index % 500 == 9) {
            unsigned char *out = malloc(MIXED_HUGE);
            if (!out)
                _exit(8);
            memset(out, (unsigned char)index, MIXED_HUGE);
            weft__iso_reply_ok(reply, 7, out, MIXED_HUGE);
            free(out);
            return;
        }
        if (index % 250 == 3) {
            for (size_t k = 0; k < echo_len(index); k++)
                buf[k] = echo_byte(index, k);
            weft__iso_reply_ok(reply, 2, buf, echo_len(index));
            return;
        }
        weft__iso_reply_ok(reply, (uint32_t)(index / 100 % 2), NULL, 0);
        return;
    }
    case B_FAT: {
        unsigned char *out = malloc(FAT_REPLY);
        if (!out)
            _exit(8);
        for (size_t k = 0; k < FAT_REPLY; k++)
            out[k] = echo_byte(index, k);
        weft__iso_reply_ok(reply, 1, out, FAT_REPLY);
        free(out);
        return;
    }
    case B_LINGER:
        if (index == 3) {
            /* A child that holds our socket for 20 s, announced as a
             * plugin announces its commands; then a crash. */
            pid_t pid = fork();
            if (pid == 0) {
                setpgid(0, 0);
                sleep_us(20 * 1000000L);
                _exit(0);
            }
            if (pid < 0 || weft__children_add(pid) != 0 ||
                write(cfg.linger_fd, &pid, sizeof pid) != (ssize_t)sizeof pid)
                _exit(9);
            segfault();
        }
        weft__iso_reply_ok(reply, 1, NULL, 0);
        return;
    case B_HANG0:
        if (index == 0)
            for (;;)
                pause();
        /* fall through */
    case B_SLOW:
        sleep_us(cfg.slow_us);
        weft__iso_reply_ok(reply, 1, NULL, 0);
        return;
    }
}

/* ---- the parent's side of a run -------------------------------------------- */

#define MAX_ITEMS 20000

static struct res {
    unsigned seen[MAX_ITEMS];
    enum weft__iso_outcome_kind kind[MAX_ITEMS];
    int sig[MAX_ITEMS], exit_status[MAX_ITEMS], code[MAX_ITEMS];
    char msg[MAX_ITEMS][64];
    unsigned bad_bytes; /* OK replies whose bytes/records were wrong */
    size_t n_results;
    size_t stop_after; /* 0: never; else stop once this many arrived */
    int stop_how;      /* 1 soon, 2 now: through weft__iso_stop or the flag */
    bool via_flag;
    size_t ok_after_stop;
    bool stopped;
    uint64_t first;
    unsigned char *big; /* B_BIG: the current item buffer */
} R;

static weft__iso_t *cur_iso;
static _Atomic int stop_flag;
static char item_text[MAX_ITEMS][32];

static void reset_results(uint64_t first)
{
    memset(&R, 0, sizeof R);
    R.first = first;
    atomic_store(&stop_flag, 0);
}

static void get_item(void *arg, size_t i, const void **bytes, size_t *len)
{
    (void)arg;
    if (cfg.b == B_BIG) {
        memset(R.big + (i % 4) * BIG_ITEM, (unsigned char)(R.first + i), BIG_ITEM);
        *bytes = R.big + (i % 4) * BIG_ITEM;
        *len = BIG_ITEM;
        return;
    }
    int n = snprintf(item_text[i], sizeof item_text[i], "item-%llu",
                     (unsigned long long)(R.first + i));
    *bytes = item_text[i];
    *len = (size_t)n;
}

static void on_result(void *arg, size_t i, const weft__iso_outcome_t *o)
{
    (void)arg;
    uint64_t index = R.first + i;
    R.seen[i]++;
    R.kind[i] = o->kind;
    R.sig[i] = o->signal;
    R.exit_status[i] = o->exit_status;
    R.code[i] = o->code;
    snprintf(R.msg[i], sizeof R.msg[i], "%.*s", (int)o->msg_len, o->msg);
    R.n_results++;
    if (o->kind == WEFT__ISO_OK && R.stopped)
        R.ok_after_stop++;
    if (o->kind == WEFT__ISO_OK && (cfg.b == B_ECHO || cfg.b == B_CRASHY)) {
        const unsigned char *b = o->bytes;
        bool good = o->len == echo_len(index) && o->records == index % 5;
        for (size_t k = 0; good && k < o->len; k++)
            good = b[k] == echo_byte(index, k);
        R.bad_bytes += !good;
    }
    if (o->kind == WEFT__ISO_OK && cfg.b == B_BIG) {
        const unsigned char *b = o->bytes;
        bool good = o->len == BIG_REPLY;
        for (size_t k = 0; good && k < o->len; k += 4093)
            good = b[k] == (unsigned char)(index ^ 0x5a);
        R.bad_bytes += !good || b[BIG_REPLY - 1] != (unsigned char)(index ^ 0x5a);
    }
    if (R.stop_after && R.n_results == R.stop_after) {
        R.stopped = true;
        if (R.via_flag)
            atomic_store(&stop_flag, R.stop_how);
        else
            weft__iso_stop(cur_iso, R.stop_how == 2);
    }
}

static weft__iso_t *start(unsigned workers, double timeout)
{
    weft__iso_settings_t s = {
        .workers = workers,
        .timeout = timeout,
        .stop_flag = &stop_flag,
        .child_init = child_init,
        .child_item = child_item,
        .child_fini = child_fini,
    };
    char err[256];
    weft__iso_t *iso = NULL;
    int rc = weft__iso_start(&iso, &s, err, sizeof err);
    if (rc)
        fail_msg("weft__iso_start: %d %s", rc, err);
    cur_iso = iso;
    return iso;
}

static void finish(weft__iso_t **iso)
{
    assert_ptr_equal(*iso, cur_iso);
    weft__iso_destroy(iso);
    assert_null(*iso);
    cur_iso = NULL;
}

/* After a failed test: no workers or settings leak into the next one. */
static int teardown(void **state)
{
    (void)state;
    weft__iso_destroy(&cur_iso);
    atomic_store(&stop_flag, 0);
    cfg.init_fail_worker = -1;
    cfg.init_fail_all = cfg.init_crash = false;
    cfg.pid_fd = cfg.fini_fd = cfg.linger_fd = -1;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    return 0;
}

/* No child of ours is left, zombie or alive. */
static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* ---- tests ------------------------------------------------------------------ */

static void isolate_echo_exactly_once(void **state)
{
    (void)state;
    cfg.b = B_ECHO;
    for (unsigned workers = 1; workers <= 4; workers++) {
        weft__iso_t *iso = start(workers, 0);
        /* Two windows, as the runner will: positions map to first + i. */
        for (uint64_t first = 0; first < 20000; first += 10000) {
            reset_results(first + 1000);
            assert_int_equal(weft__iso_run(iso, 10000, first + 1000, get_item, on_result, NULL), 0);
            assert_int_equal(R.n_results, 10000);
            assert_int_equal(R.bad_bytes, 0);
            for (size_t i = 0; i < 10000; i++) {
                assert_int_equal(R.seen[i], 1);
                uint64_t index = first + 1000 + i;
                if (index % 11 == 5) {
                    assert_int_equal(R.kind[i], WEFT__ISO_FAILED);
                    assert_int_equal(R.code[i], fail_code(index));
                    char m[48];
                    snprintf(m, sizeof m, "failed %llu", (unsigned long long)index);
                    assert_string_equal(R.msg[i], m);
                } else {
                    assert_int_equal(R.kind[i], WEFT__ISO_OK);
                    assert_int_equal(R.code[i], 0);
                }
            }
        }
        weft__iso_stats_t st;
        weft__iso_get_stats(iso, &st);
        assert_int_equal(st.spawned, workers);
        assert_int_equal(st.crashed, 0);
        finish(&iso);
        assert_null(iso);
        assert_no_children();
    }
}

/* Items 13 (SIGSEGV), 42 (hangs), 77 (abort), 99 (_exit(3)); 150 items. */
static void check_crash_run(unsigned workers, double timeout)
{
    cfg.b = B_CRASHY;
    weft__iso_t *iso = start(workers, timeout);
    reset_results(0);
    assert_int_equal(weft__iso_run(iso, 150, 0, get_item, on_result, NULL), 0);
    assert_int_equal(R.n_results, 150);
    assert_int_equal(R.bad_bytes, 0);
    for (size_t i = 0; i < 150; i++) {
        assert_int_equal(R.seen[i], 1);
        switch (i) {
        case 13:
            /* Workers reset every handler, sanitizers' too: a plain
             * SIGSEGV death in every build. */
            assert_int_equal(R.kind[i], WEFT__ISO_CRASHED);
            assert_int_equal(R.sig[i], SIGSEGV);
            assert_int_equal(R.exit_status[i], -1);
            assert_non_null(strstr(R.msg[i], "killed by signal 11"));
            break;
        case 42:
            assert_int_equal(R.kind[i], WEFT__ISO_TIMED_OUT);
            assert_non_null(strstr(R.msg[i], "timed out"));
            break;
        case 77:
            assert_int_equal(R.kind[i], WEFT__ISO_CRASHED);
            assert_int_equal(R.sig[i], SIGABRT);
            assert_int_equal(R.exit_status[i], -1);
            break;
        case 99:
            assert_int_equal(R.kind[i], WEFT__ISO_CRASHED);
            assert_int_equal(R.sig[i], 0);
            assert_int_equal(R.exit_status[i], 3);
            assert_string_equal(R.msg[i], "exited with status 3");
            break;
        default:
            assert_int_equal(R.kind[i], i % 11 == 5 ? WEFT__ISO_FAILED : WEFT__ISO_OK);
        }
    }
    weft__iso_stats_t st;
    weft__iso_get_stats(iso, &st);
    assert_int_equal(st.crashed, 3);
    assert_int_equal(st.timed_out, 1);
    assert_int_equal(st.spawned, workers + 4); /* each loss was replaced */
    /* The replacements serve the next window. */
    cfg.b = B_ECHO;
    reset_results(500);
    assert_int_equal(weft__iso_run(iso, 100, 500, get_item, on_result, NULL), 0);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(R.seen[i], 1);
    assert_int_equal(R.bad_bytes, 0);
    weft__iso_get_stats(iso, &st);
    assert_int_equal(st.spawned, workers + 4); /* each loss was replaced */
    finish(&iso);
    assert_no_children();
}

static void isolate_crash_hang_abort_exit(void **state)
{
    (void)state;
    check_crash_run(2, 0.5);
}

static void isolate_crash_loop(void **state)
{
    (void)state;
    for (int k = 0; k < CRASH_LOOPS; k++)
        check_crash_run(1 + (unsigned)k % 4, LOOP_TIMEOUT);
}

static void isolate_big_messages(void **state)
{
    (void)state;
    cfg.b = B_BIG;
    R.big = NULL;
    unsigned char *big = malloc(4 * BIG_ITEM);
    assert_non_null(big);
    for (unsigned workers = 1; workers <= 3; workers += 2) {
        weft__iso_t *iso = start(workers, 0);
        reset_results(7);
        R.big = big;
        assert_int_equal(weft__iso_run(iso, 12, 7, get_item, on_result, NULL), 0);
        assert_int_equal(R.n_results, 12);
        for (size_t i = 0; i < 12; i++) {
            assert_int_equal(R.seen[i], 1);
            assert_int_equal(R.kind[i], WEFT__ISO_OK);
        }
        assert_int_equal(R.bad_bytes, 0);
        finish(&iso);
    }
    free(big);
    assert_no_children();
}

static void check_stop(unsigned workers, int how, bool via_flag)
{
    cfg.b = B_SLOW;
    cfg.slow_us = 300;
    weft__iso_t *iso = start(workers, 0);
    reset_results(0);
    R.stop_after = 100;
    R.stop_how = how;
    R.via_flag = via_flag;
    assert_int_equal(weft__iso_run(iso, 3000, 0, get_item, on_result, NULL), -ECANCELED);
    assert_int_equal(R.n_results, 3000);
    size_t ok = 0, not_run = 0;
    for (size_t i = 0; i < 3000; i++) {
        assert_int_equal(R.seen[i], 1);
        assert_true(R.kind[i] == WEFT__ISO_OK || R.kind[i] == WEFT__ISO_NOT_RUN);
        ok += R.kind[i] == WEFT__ISO_OK;
        not_run += R.kind[i] == WEFT__ISO_NOT_RUN;
    }
    assert_true(ok >= 100);
    assert_true(not_run > 0);
    if (how == 2)
        assert_int_equal(R.ok_after_stop, 0);
    else
        assert_true(R.ok_after_stop <= (size_t)workers * 2 * 256); /* two batches each */
    /* Stopped stays stopped: a later window runs nothing. */
    R.stop_after = 0;
    reset_results(3000);
    assert_int_equal(weft__iso_run(iso, 50, 3000, get_item, on_result, NULL), -ECANCELED);
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(R.seen[i], 1);
        assert_int_equal(R.kind[i], WEFT__ISO_NOT_RUN);
    }
    weft__iso_stats_t st;
    weft__iso_get_stats(iso, &st);
    assert_int_equal(st.crashed, 0);
    finish(&iso);
    assert_no_children();
}

static void isolate_stop_soon(void **state)
{
    (void)state;
    for (int k = 0; k < 10; k++)
        check_stop(1 + (unsigned)k % 3, 1, k % 2);
}

static void isolate_stop_now(void **state)
{
    (void)state;
    for (int k = 0; k < 10; k++)
        check_stop(1 + (unsigned)k % 3, 2, k % 2);
}

/* Stop now reaches a worker stuck in an item with no timeout. */
static void isolate_stop_now_hung(void **state)
{
    (void)state;
    cfg.b = B_HANG0;
    cfg.slow_us = 100;
    weft__iso_t *iso = start(2, 0);
    reset_results(0);
    R.stop_after = 50;
    R.stop_how = 2;
    R.via_flag = true;
    assert_int_equal(weft__iso_run(iso, 1000, 0, get_item, on_result, NULL), -ECANCELED);
    assert_int_equal(R.seen[0], 1);
    assert_int_equal(R.kind[0], WEFT__ISO_NOT_RUN);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(R.seen[i], 1);
    finish(&iso);
    assert_no_children();
}

static void isolate_init_failure(void **state)
{
    (void)state;
    weft__iso_settings_t s = {
        .workers = 3, .child_init = child_init, .child_item = child_item,
    };
    char err[256];
    weft__iso_t *iso = (weft__iso_t *)&s; /* must become NULL */
    cfg.init_fail_worker = 1;
    assert_int_equal(weft__iso_start(&iso, &s, err, sizeof err), -ECHILD);
    cfg.init_fail_worker = -1;
    assert_null(iso);
    assert_string_equal(err, "no licence for worker 1");
    assert_no_children();

    cfg.init_crash = true;
    assert_int_equal(weft__iso_start(&iso, &s, err, sizeof err), -ECHILD);
    cfg.init_crash = false;
    assert_non_null(strstr(err, "worker 0 died during init"));
    assert_no_children();

    s.workers = 0;
    assert_int_equal(weft__iso_start(&iso, &s, err, sizeof err), -EINVAL);
    s.workers = 1;
    s.child_item = NULL;
    assert_int_equal(weft__iso_start(&iso, &s, err, sizeof err), -EINVAL);
}

/* A crash needs a restart, and child_init now fails: the rest fail with
 * its message instead of looping. */
static void isolate_restart_failure(void **state)
{
    (void)state;
    cfg.b = B_CRASHY;
    weft__iso_t *iso = start(1, 0);
    cfg.init_fail_all = true; /* inherited by the replacements only */
    reset_results(0);
    assert_int_equal(weft__iso_run(iso, 60, 0, get_item, on_result, NULL), -ECHILD);
    cfg.init_fail_all = false;
    for (size_t i = 0; i < 60; i++) {
        assert_int_equal(R.seen[i], 1);
        if (i < 13)
            assert_int_equal(R.kind[i], i % 11 == 5 ? WEFT__ISO_FAILED : WEFT__ISO_OK);
    }
    assert_int_equal(R.kind[13], WEFT__ISO_CRASHED);
    for (size_t i = 14; i < 60; i++) {
        assert_int_equal(R.kind[i], WEFT__ISO_FAILED);
        assert_string_equal(R.msg[i], "no licence for worker 0");
    }
    weft__iso_stats_t st;
    weft__iso_get_stats(iso, &st);
    assert_int_equal(st.spawned, 1 + 3);
    finish(&iso);
    assert_no_children();
}

/* Destroy: every worker runs child_fini; kill_all'd workers are replaced. */
static void isolate_fini_and_kill_all(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    cfg.fini_fd = p[1];
    cfg.b = B_ECHO;
    for (int k = 0; k < 10; k++) {
        weft__iso_t *iso = start(3, 0);
        weft__iso_kill_all(iso);
        reset_results(0);
        assert_int_equal(weft__iso_run(iso, 300, 0, get_item, on_result, NULL), 0);
        /* A worker killed while idle may have been handed a batch before
         * its death was seen: that item is then CRASHED by SIGKILL. */
        size_t crashed = 0;
        for (size_t i = 0; i < 300; i++) {
            assert_int_equal(R.seen[i], 1);
            if (R.kind[i] == WEFT__ISO_CRASHED) {
                assert_int_equal(R.sig[i], SIGKILL);
                crashed++;
            }
        }
        assert_true(crashed <= 3);
        assert_int_equal(R.bad_bytes, 0);
        weft__iso_stats_t st;
        weft__iso_get_stats(iso, &st);
        assert_int_equal(st.spawned, 6);
        assert_int_equal(st.crashed, crashed);
        finish(&iso);
        assert_no_children();
        char b[8];
        assert_int_equal(read(p[0], b, sizeof b), 3);
    }
    cfg.fini_fd = -1;
    close(p[0]);
    close(p[1]);
}

/* The supervisor process is SIGKILLed: its workers must die too. */
static void isolate_no_orphans(void **state)
{
    (void)state;
    /* Orphans are re-parented to us, so we can reap and inspect them. */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    for (int k = 0; k < 20; k++) {
        enum { NW = 3 };
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t sup = fork();
        assert_true(sup >= 0);
        if (sup == 0) {
            close(p[0]);
            cfg.pid_fd = p[1];
            cfg.b = B_SLOW;
            cfg.slow_us = 10 * 1000000L;
            weft__iso_settings_t s = {.workers = NW, .child_init = child_init,
                                      .child_item = child_item};
            weft__iso_t *iso;
            if (weft__iso_start(&iso, &s, NULL, 0))
                _exit(1);
            reset_results(0);
            if (k % 2) /* half the time busy in items, half idle */
                weft__iso_run(iso, 100, 0, get_item, on_result, NULL);
            for (;;)
                pause();
        }
        close(p[1]);
        pid_t w[NW];
        for (int j = 0; j < NW; j++)
            assert_int_equal(read(p[0], &w[j], sizeof w[j]), (ssize_t)sizeof w[j]);
        close(p[0]);
        if (k % 2)
            sleep_us(20000); /* let the items start */
        assert_int_equal(kill(sup, SIGKILL), 0);
        int st;
        assert_int_equal(waitpid(sup, &st, 0), sup);
        for (int j = 0; j < NW; j++) {
            pid_t got = 0;
            for (int t = 0; t < 500 && got == 0; t++) { /* up to 5 s */
                got = waitpid(w[j], &st, WNOHANG);
                if (got == 0)
                    sleep_us(10000);
            }
            assert_int_equal(got, w[j]);
            /* Gone: by PR_SET_PDEATHSIG's SIGKILL, or first by the dead
             * supervisor's socket (EOF, or SIGPIPE on READY). */
            assert_true(WIFSIGNALED(st) || WIFEXITED(st));
        }
        assert_no_children();
    }
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* Whether pid (not our child) runs: not gone, not a zombie. */
static bool runs(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* A worker forks a child that lingers, holding the worker's socket, then
 * crashes: its death is seen at once (its pidfd), not when the socket's
 * last holder exits 20 s later; the child it announced is killed. */
static void isolate_crash_leaves_a_child(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    cfg.linger_fd = p[1];
    cfg.b = B_LINGER;
    weft__iso_t *iso = start(1, 0);
    reset_results(0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(weft__iso_run(iso, 6, 0, get_item, on_result, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pid_t child = 0;
    assert_int_equal(read(p[0], &child, sizeof child), (ssize_t)sizeof child);
    bool lives = true;
    for (int k = 0; k < 300 && (lives = runs(child)); k++)
        sleep_us(10000);
    if (lives)
        kill(child, SIGKILL);
    if (t1.tv_sec - t0.tv_sec >= 8)
        fail_msg("the crash took %ld s to be seen", (long)(t1.tv_sec - t0.tv_sec));
    assert_false(lives);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(R.seen[i], 1);
        assert_int_equal(R.kind[i], i == 3 ? WEFT__ISO_CRASHED : WEFT__ISO_OK);
    }
    assert_int_equal(weft__children_kill_all(), 0); /* forgotten */
    finish(&iso);
    assert_no_children();
    cfg.linger_fd = -1;
    close(p[0]);
    close(p[1]);
}

/* ---- the streaming feed ------------------------------------------------------ */

#define FEED_ITEMS 20000

static struct feed_state {
    uint64_t next, delivered;
    unsigned calls;
    uint64_t max_held_at_claim; /* items out, when a later claim came */
    bool again;                 /* on_result runs crashed items again */
    unsigned agains;
    long consume_us;            /* on_result sleeps this long, at times */
} F;

static int feed_claim(void *arg, uint64_t *first, size_t *n)
{
    (void)arg;
    if (F.next >= FEED_ITEMS)
        return -1;
    if (++F.calls % 7 == 0)
        return 0; /* "none just now": asked again later */
    uint64_t held = F.next - F.delivered;
    if (held > F.max_held_at_claim)
        F.max_held_at_claim = held;
    size_t k = 1 + (F.calls * 2654435761u) % 700;
    if (k > FEED_ITEMS - F.next)
        k = (size_t)(FEED_ITEMS - F.next);
    *first = F.next;
    *n = k;
    F.next += k;
    return 1;
}

static void feed_get(void *arg, uint64_t index, const void **bytes, size_t *len)
{
    (void)arg;
    (void)index;
    *bytes = NULL;
    *len = 0;
    if (cfg.b == B_FAT) {
        *bytes = "x";
        *len = 1;
    }
}

static void feed_note(uint64_t index, enum weft__iso_outcome_kind kind, uint32_t records)
{
    assert_true(index < FEED_ITEMS);
    R.seen[index]++;
    R.kind[index] = kind;
    R.code[index] = (int)records;
    R.n_results++;
    F.delivered++;
}

static void feed_result(void *arg, uint64_t index, const weft__iso_outcome_t *o)
{
    (void)arg;
    if (o->kind == WEFT__ISO_CRASHED && F.again && weft__iso_again(cur_iso, index) == 0) {
        F.agains++;
        return;
    }
    R.sig[index] = o->signal;
    bool good = true;
    if (o->kind == WEFT__ISO_OK && cfg.b == B_MIXED && index % 500 == 9) {
        const unsigned char *b = o->bytes;
        good = o->len == MIXED_HUGE && o->records == 7 && b[0] == (unsigned char)index &&
               b[MIXED_HUGE - 1] == (unsigned char)index;
    } else if (o->kind == WEFT__ISO_OK && cfg.b == B_MIXED && index % 250 == 3) {
        good = o->len == echo_len(index) && o->records == 2;
        for (size_t k = 0; good && k < o->len; k++)
            good = ((const unsigned char *)o->bytes)[k] == echo_byte(index, k);
    } else if (o->kind == WEFT__ISO_OK && cfg.b == B_MIXED) {
        good = o->len == 0 && o->records == index / 100 % 2;
    } else if (o->kind == WEFT__ISO_OK && cfg.b == B_FAT) {
        good = o->len == FAT_REPLY;
        for (size_t k = 0; good && k < o->len; k++)
            good = ((const unsigned char *)o->bytes)[k] == echo_byte(index, k);
    }
    R.bad_bytes += !good;
    feed_note(index, o->kind, o->records);
    if (F.consume_us && index % 16 == 0)
        sleep_us(F.consume_us); /* a slow consumer: the ring fills */
}

static void feed_ok_run(void *arg, uint64_t first, size_t n, uint32_t records)
{
    (void)arg;
    assert_true(n >= 2);
    for (size_t k = 0; k < n; k++) {
        R.bad_bytes += records != (first + k) / 100 % 2;
        feed_note(first + k, WEFT__ISO_OK, records);
    }
}

static void serve_mixed(unsigned workers, bool again, bool with_runs)
{
    cfg.b = B_MIXED;
    cfg.crash_once = again;
    for (size_t i = 0; i < FEED_ITEMS; i++)
        atomic_store(&cfg.runs[i], 0);
    weft__iso_t *iso = start(workers, 0);
    reset_results(0);
    memset(&F, 0, sizeof F);
    F.again = again;
    weft__iso_feed_t feed = {
        .claim = feed_claim,
        .get_item = feed_get,
        .on_result = feed_result,
        .on_ok_run = with_runs ? feed_ok_run : NULL,
        .empty_items = true,
    };
    assert_int_equal(weft__iso_serve(iso, &feed), 0);
    assert_int_equal(R.n_results, FEED_ITEMS);
    assert_int_equal(R.bad_bytes, 0);
    /* No barrier: claims came while items were out. */
    assert_true(F.max_held_at_claim > 0);
    for (size_t i = 0; i < FEED_ITEMS; i++) {
        assert_int_equal(R.seen[i], 1);
        bool crashes = i % 1000 == 777;
        if (crashes && !again) {
            assert_int_equal(R.kind[i], WEFT__ISO_CRASHED);
            assert_int_equal(R.sig[i], SIGSEGV);
        } else {
            if (R.kind[i] != WEFT__ISO_OK)
                fail_msg("item %zu: outcome %d (signal %d), ran %u times", i, (int)R.kind[i],
                         R.sig[i], atomic_load(&cfg.runs[i]));
        }
        /* What a worker finished before it crashed was not run again. */
        assert_int_equal(atomic_load(&cfg.runs[i]), crashes && again ? 2 : 1);
    }
    if (again)
        assert_int_equal(F.agains, FEED_ITEMS / 1000);
    weft__iso_stats_t st;
    weft__iso_get_stats(iso, &st);
    assert_int_equal(st.crashed, FEED_ITEMS / 1000);
    finish(&iso);
    assert_no_children();
}

static void isolate_serve_streams_exactly_once(void **state)
{
    (void)state;
    cfg.runs = mmap(NULL, FEED_ITEMS * sizeof *cfg.runs, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(cfg.runs != MAP_FAILED);
    for (unsigned workers = 1; workers <= 4; workers++) {
        serve_mixed(workers, false, true);
        serve_mixed(workers, false, false);
        serve_mixed(workers, true, workers % 2);
    }
    munmap(cfg.runs, FEED_ITEMS * sizeof *cfg.runs);
    cfg.runs = NULL;
}

/* Replies that fill the ring while the supervisor is slow to read it: the
 * workers wait for room, nothing is lost or torn. */
static void isolate_serve_full_ring(void **state)
{
    (void)state;
    cfg.b = B_FAT;
    for (unsigned workers = 1; workers <= 3; workers++) {
        weft__iso_t *iso = start(workers, 0);
        reset_results(0);
        memset(&F, 0, sizeof F);
        F.consume_us = 300;
        F.next = FEED_ITEMS - 600; /* 600 items of 60 KiB */
        F.delivered = F.next;
        weft__iso_feed_t feed = {.claim = feed_claim, .get_item = feed_get,
                                 .on_result = feed_result};
        assert_int_equal(weft__iso_serve(iso, &feed), 0);
        assert_int_equal(R.n_results, 600);
        assert_int_equal(R.bad_bytes, 0);
        for (size_t i = FEED_ITEMS - 600; i < FEED_ITEMS; i++)
            assert_int_equal(R.seen[i], 1);
        finish(&iso);
        assert_no_children();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(isolate_echo_exactly_once, teardown),
        cmocka_unit_test_teardown(isolate_crash_hang_abort_exit, teardown),
        cmocka_unit_test_teardown(isolate_crash_loop, teardown),
        cmocka_unit_test_teardown(isolate_big_messages, teardown),
        cmocka_unit_test_teardown(isolate_stop_soon, teardown),
        cmocka_unit_test_teardown(isolate_stop_now, teardown),
        cmocka_unit_test_teardown(isolate_stop_now_hung, teardown),
        cmocka_unit_test_teardown(isolate_init_failure, teardown),
        cmocka_unit_test_teardown(isolate_restart_failure, teardown),
        cmocka_unit_test_teardown(isolate_fini_and_kill_all, teardown),
        cmocka_unit_test_teardown(isolate_no_orphans, teardown),
        cmocka_unit_test_teardown(isolate_crash_leaves_a_child, teardown),
        cmocka_unit_test_teardown(isolate_serve_streams_exactly_once, teardown),
        cmocka_unit_test_teardown(isolate_serve_full_ring, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
