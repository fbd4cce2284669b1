/* SPDX-License-Identifier: MIT */
/*
 * core/run/progress.c: the pure formatters, the rate window, the reporter on a
 * real pseudo-terminal, a pipe and a file (rate limit counted, not timed),
 * concurrent adds from a real pool; then `weft run` end to end under a
 * pseudo-terminal and piped, with --progress=json, --quiet and
 * --summary-json, and the new command-line options.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "progress.h"
#include "test_util.h"
#include "util.h" /* weft__mono_s */
#include "weft/weft.h"

/* ---- helpers --------------------------------------------------------------- */

/* Updates the reporter may have made in `elapsed` seconds at one per
 * `period`: its deadlines are t0 + k * period, never earlier, so this is
 * an upper bound however loaded the machine (a slow machine only makes
 * elapsed longer). */
static uint64_t max_updates(double elapsed, double period)
{
    return (uint64_t)(elapsed / period + 1e-9);
}

/* A growable byte buffer for what a terminal or pipe received. */
typedef struct bytes {
    char *data;
    size_t len, cap;
} bytes_t;

static void bytes_add(bytes_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Reads what is there now (fd non-blocking); true at end of input. */
static bool drain(int fd, bytes_t *b)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            bytes_add(b, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* EIO: a pty master whose slave is closed everywhere. */
        return n == 0 || (n < 0 && errno == EIO);
    }
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = s; (p = strstr(p, needle)); p += len)
        n++;
    return n;
}

/* A pseudo-terminal: master (non-blocking, ours to read) and slave (a
 * terminal of `cols` columns, raw: no \n -> \r\n translation). */
typedef struct pty {
    int master, slave;
} pty_t;

static pty_t pty_open(unsigned short cols)
{
    pty_t t;
    t.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(t.master >= 0);
    assert_int_equal(grantpt(t.master), 0);
    assert_int_equal(unlockpt(t.master), 0);
    const char *name = ptsname(t.master);
    assert_non_null(name);
    t.slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(t.slave >= 0);
    struct termios tio;
    assert_int_equal(tcgetattr(t.slave, &tio), 0);
    cfmakeraw(&tio);
    assert_int_equal(tcsetattr(t.slave, TCSANOW, &tio), 0);
    struct winsize ws = {.ws_row = 24, .ws_col = cols};
    assert_int_equal(ioctl(t.slave, TIOCSWINSZ, &ws), 0);
    assert_int_equal(fcntl(t.master, F_SETFL, O_NONBLOCK), 0);
    return t;
}

static void pty_close(pty_t *t)
{
    close(t->slave);
    close(t->master);
}

/* Frames of a redrawn line: the text between a "\r" and the next "\033[K",
 * checked to fit in width - 1 columns; returns how many had text. */
static size_t check_frames(const char *s, unsigned width, const char *must_have)
{
    size_t frames = 0;
    for (const char *p = s; (p = strchr(p, '\r'));) {
        p++;
        const char *end = strstr(p, "\033[K");
        assert_non_null(end);
        size_t len = (size_t)(end - p);
        if (len) {
            assert_true(len <= width - 1);
            assert_null(memchr(p, '\n', len));
            if (must_have) {
                char frame[512];
                snprintf(frame, sizeof frame, "%.*s", (int)len, p);
                assert_non_null(strstr(frame, must_have));
            }
            frames++;
        }
        p = end;
    }
    return frames;
}

/* ---- pure formatting ------------------------------------------------------- */

static void duration_format(void **state)
{
    (void)state;
    static const struct {
        double s;
        const char *want;
    } cases[] = {
        {0, "0:00"},  {0.4, "0:00"},   {59.4, "0:59"},    {59.6, "1:00"},
        {61, "1:01"}, {3599, "59:59"}, {3600, "1:00:00"}, {90061, "25:01:01"},
        {-1, "?"},    {-0.001, "?"},
    };
    char buf[32];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        weft__progress_fmt_duration(buf, sizeof buf, cases[k].s);
        assert_string_equal(buf, cases[k].want);
    }
    weft__progress_fmt_duration(buf, sizeof buf, 1e300); /* no overflow */
    assert_true(strlen(buf) > 4);
}

static void rate_format(void **state)
{
    (void)state;
    static const struct {
        double r;
        const char *want;
    } cases[] = {
        {0, "0.00/s"},      {0.5, "0.50/s"},  {9.994, "9.99/s"},  {12.34, "12.3/s"},
        {987, "987/s"},     {999.4, "999/s"}, {999.6, "1.00k/s"}, {2817.3, "2.82k/s"},
        {1.5e6, "1.50M/s"}, {3e9, "3.00G/s"}, {-1, "?/s"},
    };
    char buf[32];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        weft__progress_fmt_rate(buf, sizeof buf, cases[k].r);
        assert_string_equal(buf, cases[k].want);
    }
}

static void eta(void **state)
{
    (void)state;
    weft__progress_view_t v = {.done = 100, .total = 300, .rate = 50};
    assert_true(weft__progress_eta(&v) == 4.0);
    v.rate = -1; /* not measured yet */
    assert_true(weft__progress_eta(&v) < 0);
    v.rate = 0; /* stalled */
    assert_true(weft__progress_eta(&v) < 0);
    v.done = 300; /* done: 0 whatever the rate */
    assert_true(weft__progress_eta(&v) == 0);
    v.done = 5, v.total = WEFT__PROGRESS_UNKNOWN, v.rate = 10;
    assert_true(weft__progress_eta(&v) < 0);
}

static void line_known_total(void **state)
{
    (void)state;
    weft__progress_view_t v = {.label = "noise_png",
                               .done = 1234,
                               .total = 2000,
                               .failed = 2,
                               .elapsed_s = 61,
                               .rate = 2817.3};
    char buf[256];
    size_t n = weft__progress_format_line(buf, sizeof buf, &v, 0);
    assert_string_equal(buf,
                        "noise_png  1234/2000  61.7%  2.82k/s  elapsed 1:01  ETA 0:00"
                        "  2 failed");
    assert_int_equal(n, strlen(buf));

    /* No label; not measured yet; nothing to do at all. */
    v = (weft__progress_view_t){.done = 0, .total = 0, .rate = -1};
    weft__progress_format_line(buf, sizeof buf, &v, 0);
    assert_string_equal(buf, "0/0  100.0%  ?/s  elapsed 0:00  ETA 0:00  0 failed");
    v = (weft__progress_view_t){
        .label = "", .done = 10, .total = 1000, .rate = -1, .elapsed_s = 0.2};
    weft__progress_format_line(buf, sizeof buf, &v, 0);
    assert_string_equal(buf, "10/1000  1.0%  ?/s  elapsed 0:00  ETA ?  0 failed");
}

static void line_unknown_total(void **state)
{
    (void)state;
    weft__progress_view_t v = {.label = "exec",
                               .done = 5,
                               .total = WEFT__PROGRESS_UNKNOWN,
                               .failed = 1,
                               .elapsed_s = 3725,
                               .rate = 0.25};
    char buf[256];
    weft__progress_format_line(buf, sizeof buf, &v, 0);
    assert_string_equal(buf, "exec  5 done  0.25/s  elapsed 1:02:05  1 failed");
}

/* Cut to width - 1 columns whatever the width, always a prefix of the
 * whole line; a multi-byte label counts in characters, never cut inside
 * one; a small buffer truncates safely. */
static void line_truncated_to_width(void **state)
{
    (void)state;
    weft__progress_view_t v = {.label = "pow4",
                               .done = 123456789,
                               .total = 987654321,
                               .failed = 42,
                               .elapsed_s = 100,
                               .rate = 1e6};
    char full[256], buf[256];
    size_t n_full = weft__progress_format_line(full, sizeof full, &v, 0);
    for (unsigned w = 1; w < n_full + 5; w++) {
        size_t n = weft__progress_format_line(buf, sizeof buf, &v, w);
        size_t want = n_full < w - 1 ? n_full : w - 1;
        assert_int_equal(n, want);
        assert_int_equal(strlen(buf), want);
        assert_memory_equal(buf, full, want);
    }
    v.label = "\xc3\xa9t\xc3\xa9"; /* "été": 3 columns, 5 bytes */
    size_t n = weft__progress_format_line(buf, sizeof buf, &v, 3);
    assert_string_equal(buf, "\xc3\xa9t");
    assert_int_equal(n, 3);
    n = weft__progress_format_line(buf, sizeof buf, &v, 4);
    assert_string_equal(buf, "\xc3\xa9t\xc3\xa9");
    assert_int_equal(n, 5);
    n = weft__progress_format_line(buf, 10, &v, 0);
    assert_int_equal(n, 9);
    assert_int_equal(strlen(buf), 9);
}

static void json_format(void **state)
{
    (void)state;
    weft__progress_view_t v = {.done = 700,
                               .total = 1000,
                               .failed = 3,
                               .skipped = 200,
                               .elapsed_s = 1.5,
                               .rate = 100};
    char buf[512];
    size_t n = weft__progress_format_json(buf, sizeof buf, &v, false);
    assert_int_equal(n, strlen(buf));
    assert_null(strchr(buf, '\n'));
    cJSON *o = json_parse(buf);
    assert_int_equal(json_num(o, "done"), 700);
    assert_int_equal(json_num(o, "total"), 1000);
    assert_int_equal(json_num(o, "failed"), 3);
    assert_int_equal(json_num(o, "skipped"), 200);
    assert_true(json_num(o, "elapsed_s") == 1.5);
    assert_true(json_num(o, "rate") == 100);
    assert_true(json_num(o, "eta_s") == 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "final"));
    cJSON_Delete(o);

    v.total = WEFT__PROGRESS_UNKNOWN, v.rate = -1;
    weft__progress_format_json(buf, sizeof buf, &v, true);
    o = json_parse(buf);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "total")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "rate")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "eta_s")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "final")));
    cJSON_Delete(o);
}

/* The rate is the slope over the last window: it follows a change of
 * speed within one window, and is unknown until 50 ms are covered. */
static void rate_window(void **state)
{
    (void)state;
    weft__rate_t r;
    weft__rate_init(&r, 5.0);
    assert_true(weft__rate_sample(&r, 0, 0) < 0);
    assert_true(weft__rate_sample(&r, 0.01, 5) < 0);
    double got = 0;
    int k = 1;
    for (; k <= 100; k++) /* 100 items/s for 10 s */
        got = weft__rate_sample(&r, k * 0.1, (uint64_t)k * 10);
    assert_true(got > 99.999 && got < 100.001);
    uint64_t n = 1000;
    for (int j = 1; j <= 30; j++) { /* then 1000/s for 3 s: a mix */
        n += 100;
        got = weft__rate_sample(&r, (k - 1 + j) * 0.1, n);
    }
    assert_true(got > 100 && got < 1000);
    for (int j = 31; j <= 60; j++) { /* 6 s at 1000/s: the old speed is gone */
        n += 100;
        got = weft__rate_sample(&r, (k - 1 + j) * 0.1, n);
    }
    assert_true(got > 999.999 && got < 1000.001);
    /* More samples than the ring holds inside one window: still right. */
    weft__rate_init(&r, 5.0);
    for (int j = 0; j <= 1000; j++)
        got = weft__rate_sample(&r, j * 0.001, (uint64_t)j * 7);
    assert_true(got > 6999.99 && got < 7000.01);
}

/* ---- the reporter ---------------------------------------------------------- */

/* AUTO on a pipe, and OFF on a terminal: no reporter, no output; every
 * call takes the NULL handle. */
static void auto_off_when_not_tty(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    weft__progress_t *p = (weft__progress_t *)1;
    assert_int_equal(weft__progress_start(&p, WEFT__PROGRESS_AUTO, fds[1], 10, 2, "x"),
                     0);
    assert_null(p);
    weft__progress_add(p, 0, 5, 1);
    weft__progress_skip(p, 3);
    weft__progress_set_total(p, 11);
    assert_int_equal(weft__progress_updates(p), 0);
    weft__progress_stop(&p);
    close(fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 0); /* nothing was written */
    close(fds[0]);

    pty_t t = pty_open(80);
    p = (weft__progress_t *)1;
    assert_int_equal(weft__progress_start(&p, WEFT__PROGRESS_OFF, t.slave, 10, 2, "x"),
                     0);
    assert_null(p);
    bytes_t b = {0};
    drain(t.master, &b);
    assert_int_equal(b.len, 0);
    pty_close(&t);
}

/* On a terminal: frames redrawn in place, at most 10 a second (counted
 * over ~1 s), each within the width; stop draws the last state, then
 * leaves the line empty with the cursor at column 0. */
static void tty_redraws_rate_limited(void **state)
{
    (void)state;
    const unsigned width = 50;
    pty_t t = pty_open(width);
    weft__progress_t *p = NULL;
    double t0 = weft__mono_s();
    assert_int_equal(weft__progress_start(&p, WEFT__PROGRESS_AUTO, t.slave, 1000, 2,
                                          "a_rather_long_plugin_name"),
                     0);
    assert_non_null(p);
    bytes_t b = {0};
    weft__progress_skip(p, 100);
    for (int k = 0; k < 45; k++) { /* ~1 s in all */
        weft__progress_add(p, (unsigned)k % 2, 19, 1);
        e2e_sleep(0.02);
        drain(t.master, &b);
    }
    e2e_sleep(0.1);
    uint64_t updates = weft__progress_updates(p);
    double elapsed = weft__mono_s() - t0;
    weft__progress_stop(&p);
    assert_null(p);
    drain(t.master, &b);
    assert_true(updates >= 1);
    /* At most 10 a second: <= 11 when the second was not stretched. */
    assert_true(updates <= max_updates(elapsed, 0.1));
    if (elapsed < 1.1)
        assert_true(updates <= 11);
    /* Those counted, perhaps one more before stop, and stop's own. */
    size_t frames = check_frames(b.data, width, "/1000");
    assert_true(frames >= updates + 1 && frames <= updates + 2);
    assert_null(strchr(b.data, '\n'));
    /* The last frame shows everything; then the line is cleared. */
    assert_non_null(strstr(b.data, "1000/1000  100.0%"));
    assert_true(b.len >= 4);
    assert_string_equal(b.data + b.len - 4, "\r\033[K");
    free(b.data);
    pty_close(&t);
}

/* A message goes on a line of its own: the progress line is cleared
 * first, and drawn again at the next tick. */
static void tty_message_clears_line(void **state)
{
    (void)state;
    pty_t t = pty_open(80);
    weft__progress_t *p = NULL;
    assert_int_equal(weft__progress_start(&p, WEFT__PROGRESS_LINE, t.slave, 10, 1, "m"),
                     0);
    bytes_t b = {0};
    while (weft__progress_updates(p) == 0)
        e2e_sleep(0.01);
    weft__progress_message(p, "weft: item %d failed: %s\n", 3, "because");
    uint64_t u = weft__progress_updates(p);
    while (weft__progress_updates(p) == u)
        e2e_sleep(0.01);
    weft__progress_stop(&p);
    drain(t.master, &b);
    const char *m = strstr(b.data, "\r\033[Kweft: item 3 failed: because\n");
    assert_non_null(m);
    assert_non_null(strstr(m, "\n\rm  0/10")); /* drawn again after it */
    free(b.data);
    pty_close(&t);
}

/* --progress on a pipe: plain lines, no escape codes, at most one a second
 * plus the last. */
static void plain_lines_when_not_tty(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    weft__progress_t *p = NULL;
    double t0 = weft__mono_s();
    assert_int_equal(
        weft__progress_start(&p, WEFT__PROGRESS_LINE, fds[1], 64, 1, "plain"), 0);
    assert_non_null(p);
    bytes_t b = {0};
    for (int k = 0; k < 64; k++) {
        weft__progress_add(p, 0, 1, 0);
        e2e_sleep(1.3 / 64);
        drain(fds[0], &b);
    }
    double elapsed = weft__mono_s() - t0;
    weft__progress_stop(&p);
    close(fds[1]);
    while (!drain(fds[0], &b))
        e2e_sleep(0.01);
    close(fds[0]);
    assert_non_null(b.data);
    assert_null(strchr(b.data, '\r'));
    assert_null(strchr(b.data, '\033'));
    size_t lines = count(b.data, "\n"); /* one a second, and the last */
    assert_true(lines >= 1 && lines <= max_updates(elapsed, 1.0) + 1);
    assert_int_equal(b.data[b.len - 1], '\n');
    assert_non_null(strstr(b.data, "plain  64/64  100.0%"));
    free(b.data);
}

/* JSON mode: every line parses; the last is final, with done == total. */
static void json_lines(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    weft__progress_t *p = NULL;
    double t0 = weft__mono_s();
    assert_int_equal(weft__progress_start(&p, WEFT__PROGRESS_JSON, fileno(f),
                                          WEFT__PROGRESS_UNKNOWN, 3, "j"),
                     0);
    weft__progress_skip(p, 10);
    for (int k = 0; k < 30; k++) {
        weft__progress_add(p, (unsigned)k % 3, 2, k % 10 == 0);
        e2e_sleep(0.04);
    }
    weft__progress_set_total(p, 10 + 30 * 2 + 3);
    double elapsed = weft__mono_s() - t0;
    weft__progress_stop(&p);
    rewind(f);
    char line[1024];
    int lines = 0;
    cJSON *last = NULL;
    while (fgets(line, sizeof line, f)) {
        assert_non_null(strchr(line, '\n'));
        cJSON_Delete(last);
        last = json_parse(line);
        lines++;
    }
    fclose(f);
    assert_true(lines >= 1 && (uint64_t)lines <= max_updates(elapsed, 1.0) + 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(last, "final")));
    assert_int_equal(json_num(last, "done"), 73);
    assert_int_equal(json_num(last, "total"), 73);
    assert_int_equal(json_num(last, "failed"), 3);
    assert_int_equal(json_num(last, "skipped"), 10);
    assert_true(json_num(last, "eta_s") == 0);
    cJSON_Delete(last);
}

typedef struct adder {
    weft__progress_t *p;
} adder_t;

/* A chunk of items: those divisible by 7 fail; one chunk in 5 is counted
 * through the shared slot, as a non-worker thread would. */
static void add_range(void *ctx, size_t begin, size_t end, unsigned worker)
{
    adder_t *a = ctx;
    uint64_t failed = 0;
    for (size_t i = begin; i < end; i++)
        failed += i % 7 == 0;
    unsigned slot = begin % 5 == 0 ? WEFT__PROGRESS_ANY_WORKER : worker;
    weft__progress_add(a->p, slot, (end - begin) - failed, failed);
}

/* Workers add while the reporter reads (TSan checks the pair); the last
 * report counts every item exactly once. */
static void concurrent_adds(void **state)
{
    (void)state;
    weft_pool_t *pool = NULL;
    weft_pool_settings_t s = {.threads = 4};
    assert_int_equal(weft_pool_create(&pool, &s), 0);
    const size_t n = 200000;
    for (int round = 0; round < 20; round++) {
        FILE *f = tmpfile();
        assert_non_null(f);
        adder_t a = {0};
        assert_int_equal(weft__progress_start(&a.p, WEFT__PROGRESS_JSON, fileno(f), 3 * n,
                                              weft_pool_threads(pool), "c"),
                         0);
        for (int loop = 0; loop < 3; loop++)
            assert_int_equal(weft_pool_for(pool, n, 64, add_range, &a), 0);
        weft__progress_stop(&a.p);
        rewind(f);
        char line[1024], last[1024] = "";
        while (fgets(line, sizeof line, f))
            memcpy(last, line, sizeof line);
        fclose(f);
        cJSON *o = json_parse(last);
        assert_int_equal(json_num(o, "done"), 3 * n);
        assert_int_equal(json_num(o, "failed"), 3 * ((n + 6) / 7));
        cJSON_Delete(o);
    }
    weft_pool_destroy(&pool);
}

/* ---- end to end ------------------------------------------------------------ */

static const char *cfg_path;
static char summary_path[512];

static int e2e_group_setup(void **state)
{
    (void)state;
    if (!e2e_setup("progress"))
        return -1;
    /* 40 items of 20 ms on 2 threads: ~0.4 s, items 3 and 7 fail. */
    cfg_path =
        strdup(e2e_write("slow.ini", "[run]\nplugin = fault\nitems = 40\nthreads = 2\n"
                                     "output = none\n[args]\nsleep_ms = 20\n"
                                     "fail = 3,7\n"));
    snprintf(summary_path, sizeof summary_path, "%s", e2e_path("summary.json"));
    return cfg_path ? 0 : -1;
}

static int e2e_group_teardown(void **state)
{
    free((char *)cfg_path);
    return e2e_teardown(state);
}

/* weft with stderr on a pseudo-terminal of `cols` columns, stdout in a
 * file; returns the exit status, the terminal's bytes in *term. */
static int run_on_tty(const char *const *args, unsigned short cols, bytes_t *term,
                      char **out)
{
    const char *argv[E2E_ARGV_MAX];
    e2e_weft_argv(argv, args);
    pty_t t = pty_open(cols);
    const char *out_path = e2e_path("tty.stdout");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || in < 0)
            _exit(127);
        dup2(in, 0), dup2(o, 1), dup2(t.slave, 2);
        close(in), close(o); /* the pty fds are CLOEXEC */
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(t.slave);
    t.slave = -1;
    /* Read while it runs: a full terminal buffer would block weft. */
    for (;;) {
        struct pollfd pfd = {.fd = t.master, .events = POLLIN};
        poll(&pfd, 1, 100);
        if (drain(t.master, term))
            break;
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(t.master);
    *out = e2e_slurp(out_path, NULL);
    assert_non_null(*out);
    if (!term->data)
        bytes_add(term, "", 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* On a terminal: the line redrawn with "/40" counts, cleared before the
 * summary, which ends the output on its own lines. */
static void e2e_tty_shows_progress(void **state)
{
    (void)state;
    bytes_t term = {0};
    char *out = NULL;
    int status =
        run_on_tty((const char *const[]){"run", cfg_path, NULL}, 72, &term, &out);
    assert_int_equal(status, 1);
    const char *summary = strstr(term.data, "weft: fault: 38 ok, 2 failed");
    if (!summary)
        fail_msg("no summary in: %s", term.data);
    assert_true(count(term.data, "\r") >= 2); /* a redraw, and the final clear */
    /* Every frame fits 71 columns and shows done/total. */
    char *progress = strndup(term.data, (size_t)(summary - term.data));
    assert_true(check_frames(progress, 72, "/40") >= 1);
    /* The last thing drawn before the summary is the clearing of the
     * line: the summary (and any message before it) starts at column 0 of
     * a clean line, and nothing is drawn after it. */
    const char *last_cr = strrchr(progress, '\r');
    assert_non_null(last_cr);
    assert_memory_equal(last_cr, "\r\033[K", 4);
    assert_null(strchr(last_cr + 4, '\033'));
    assert_null(strchr(summary, '\033'));
    assert_null(strchr(summary, '\r'));
    free(progress);
    free(term.data);
    free(out);
}

/* Piped (not a terminal): no progress at all, the summary as before. */
static void e2e_piped_no_progress(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("run", cfg_path);
    e2e_expect(&o, 1, "weft: fault: 38 ok, 2 failed");
    assert_null(strchr(o.err, '\r'));
    assert_null(strchr(o.err, '\033'));
    assert_null(strstr(o.err, "/40"));
    e2e_free(&o);
}

/* A plugin's log lines on a terminal: each starts on a line of its own
 * (the progress line is erased first, never glued to), and -q silences
 * them.  TERM=dumb: the same with no escape code at all.  The same with
 * isolate = process, whose workers hand their lines to the supervisor. */
static void tty_log_lines(const char *isolate)
{
    char text[512];
    snprintf(text, sizeof text,
             "[run]\nplugin = fault\nitems = 40\nthreads = 2\nisolate = %s\n"
             "output = none\n[args]\nsleep_ms = 20\nlog = 10,20,30\n",
             isolate);
    const char *ini = e2e_write("log.ini", text);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", ini);
    for (int dumb = 0; dumb < 2; dumb++) {
        if (dumb)
            setenv("TERM", "dumb", 1);
        bytes_t term = {0};
        char *out = NULL;
        int status = run_on_tty((const char *const[]){"run", cfg, NULL}, 72, &term, &out);
        unsetenv("TERM");
        assert_int_equal(status, 0);
        for (int k = 10; k <= 30; k += 10) {
            char want[64];
            snprintf(want, sizeof want, "weft: fault: item %d says hello\n", k);
            const char *at = strstr(term.data, want);
            if (!at)
                fail_msg("no '%s' in: %s", want, term.data);
            /* Right before it: a line's end, or the erasing of the
             * progress line ("\r\033[K"; with TERM=dumb "\r", spaces, "\r"). */
            size_t off = (size_t)(at - term.data);
            bool own_line =
                off == 0 || at[-1] == '\n' ||
                (!dumb && off >= 4 && memcmp(at - 4, "\r\033[K", 4) == 0) ||
                (dumb && at[-1] == '\r' && (off < 2 || at[-2] == ' ' || at[-2] == '\n'));
            if (!own_line)
                fail_msg("the log line shares its line: '%.*s'", (int)(off < 40 ? off : 40),
                         at - (off < 40 ? off : 40));
        }
        if (dumb)
            assert_null(strchr(term.data, '\033'));
        else
            assert_non_null(strstr(term.data, "\r\033[K"));
        free(term.data);
        free(out);
    }
    bytes_t term = {0};
    char *out = NULL;
    int status = run_on_tty((const char *const[]){"run", cfg, "-q", NULL}, 72, &term, &out);
    assert_int_equal(status, 0);
    assert_null(strstr(term.data, "says hello"));
    free(term.data);
    free(out);
}

static void e2e_tty_log_lines(void **state)
{
    (void)state;
    tty_log_lines("thread");
}

static void e2e_tty_log_lines_process(void **state)
{
    (void)state;
    tty_log_lines("process");
}

/* --progress=json: JSON lines on stderr that parse; the last says done ==
 * total == 40, with the 2 failures. */
static void e2e_progress_json(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("run", cfg_path, "--progress=json");
    e2e_expect(&o, 1, "38 ok, 2 failed");
    cJSON *last = NULL;
    int lines = 0;
    for (char *s = o.err, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = '\0';
        if (s[0] != '{')
            continue;
        cJSON_Delete(last);
        last = json_parse(s);
        lines++;
    }
    assert_true(lines >= 1);
    assert_int_equal(json_num(last, "done"), 40);
    assert_int_equal(json_num(last, "total"), 40);
    assert_int_equal(json_num(last, "failed"), 2);
    cJSON_Delete(last);
    e2e_free(&o);
}

/* --quiet: nothing at all on success, also on a terminal; errors only on
 * failure (no summary). */
static void e2e_quiet(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("run", cfg_path, "--set", "args.fail=", "--quiet");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.err, "");
    assert_string_equal(o.out, "");
    e2e_free(&o);

    bytes_t term = {0};
    char *out = NULL;
    int status = run_on_tty(
        (const char *const[]){"run", cfg_path, "--set", "args.fail=", "-q", NULL}, 80,
        &term, &out);
    assert_int_equal(status, 0);
    assert_int_equal(term.len, 0);
    free(term.data);
    free(out);

    o = E2E_RUN("run", cfg_path, "-q");
    e2e_expect(&o, 1, "item 3");
    assert_null(strstr(o.err, " ok, "));
    e2e_free(&o);
}

/* --summary-json FILE: the counts, the status and the exit code. */
static void e2e_summary_json(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("run", cfg_path, "--summary-json", summary_path);
    e2e_expect(&o, 1, "38 ok, 2 failed");
    e2e_free(&o);
    char *text = e2e_slurp(summary_path, NULL);
    assert_non_null(text);
    cJSON *s = json_parse(text);
    assert_int_equal(json_num(s, "ok"), 38);
    assert_int_equal(json_num(s, "failed"), 2);
    assert_int_equal(json_num(s, "total"), 40);
    assert_int_equal(json_num(s, "not_run"), 0);
    assert_int_equal(json_num(s, "threads"), 2);
    assert_int_equal(json_num(s, "exit_code"), 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "status")->valuestring,
                        "failed");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "plugin")->valuestring,
                        "fault");
    assert_true(json_num(s, "wall_s") > 0);
    /* Which items failed (3 and 7), where and when, by which weft. */
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(s, "failed_items");
    assert_true(cJSON_IsArray(failed));
    assert_int_equal(cJSON_GetArraySize(failed), 2);
    assert_int_equal((int)cJSON_GetArrayItem(failed, 0)->valuedouble, 3);
    assert_int_equal((int)cJSON_GetArrayItem(failed, 1)->valuedouble, 7);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "failed_items_truncated")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "weft_version")->valuestring,
                        weft_version());
    char *real_cfg = realpath(cfg_path, NULL);
    assert_non_null(real_cfg);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "config")->valuestring, real_cfg);
    free(real_cfg);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "output"))); /* none */
    const char *t0 = cJSON_GetObjectItemCaseSensitive(s, "started_at")->valuestring;
    const char *t1 = cJSON_GetObjectItemCaseSensitive(s, "ended_at")->valuestring;
    /* 2026-12-04T01:50:12.345Z: sortable, so ended >= started */
    assert_int_equal(strlen(t0), 24);
    assert_int_equal(t0[10], 'T');
    assert_int_equal(t0[23], 'Z');
    assert_true(strcmp(t1, t0) >= 0);
    cJSON_Delete(s);
    free(text);

    /* "-": the summary on stdout (output = none leaves it alone). */
    o = E2E_RUN("run", cfg_path, "--set", "args.fail=", "-q", "--summary-json", "-");
    e2e_expect(&o, 0, NULL);
    s = json_parse(o.out);
    assert_int_equal(json_num(s, "ok"), 40);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "status")->valuestring, "ok");
    cJSON_Delete(s);
    e2e_free(&o);
}

/* ---- the options (main.c), no wiring needed -------------------------------- */

static void cli_option_errors(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--resume", "--restart", "--restart discards the journal that --resume"},
        {"--restart", "--retry-failed", "that --retry-failed would use"},
        {"--progress=bogus", NULL, "--progress 'bogus': expected line, json or off"},
        {"--progres", NULL, "unknown option '--progres'; did you mean '--progress'?"},
        {"--progres=json", NULL, "did you mean '--progress'?"},
        {"--resum", NULL, "did you mean '--resume'?"},
        {"--summary-json", NULL, "--summary-json needs a value"},
        {"--summary-json=", NULL, "--summary-json needs a file name"},
        {"--bogus", NULL, "unknown option '--bogus' (see weft run --help)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        e2e_outcome_t o = cases[k].b ? E2E_RUN("run", cfg_path, cases[k].a, cases[k].b)
                                     : E2E_RUN("run", cfg_path, cases[k].a);
        e2e_expect(&o, 2, cases[k].want);
        assert_string_equal(o.out, "");
        e2e_free(&o);
    }
}

/* Valid options reach the run (check stops before anything runs). */
static void cli_options_accepted(void **state)
{
    (void)state;
    static const char *const opts[] = {
        "--progress",     "--progress=line", "--progress=json",
        "--progress=off", "--resume",        "--retry-failed",
        "--force",        "--restart",       "-q"};
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
        e2e_outcome_t o = E2E_RUN("check", cfg_path, opts[k]);
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
    }
    e2e_outcome_t o = E2E_RUN("run", "--help");
    e2e_expect(&o, 0, NULL);
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
        if (strncmp(opts[k], "--progress", 10) != 0)
            assert_non_null(strstr(o.out, opts[k]));
    assert_non_null(strstr(o.out, "--progress[=line|json|off]"));
    assert_non_null(strstr(o.out, "--summary-json FILE"));
    e2e_free(&o);
    o = E2E_RUN("--help");
    assert_non_null(strstr(o.out, "--summary-json FILE"));
    assert_non_null(strstr(o.out, "plugins [--names]"));
    e2e_free(&o);
}

/* weft plugins --names: one bare name per line, in search order, without
 * loading anything; bad arguments are usage errors. */
static void cli_plugins_names(void **state)
{
    (void)state;
    e2e_outcome_t o = E2E_RUN("plugins", "--names");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.err, "");
    assert_non_null(strstr(o.out, "add_one\n"));
    assert_non_null(strstr(o.out, "\nfault\n"));
    assert_non_null(strstr(o.out, "\nnoise_png\n"));
    for (char *s = o.out, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        assert_true(nl > s); /* no empty line */
        for (char *c = s; c < nl; c++)
            assert_true(*c != ' ' && *c != '/' && *c != '\t');
        assert_true(nl - s < 3 || strncmp(nl - 3, ".so", 3) != 0);
    }
    /* The names only: the broken test plugins are listed, not diagnosed. */
    assert_non_null(strstr(o.out, "\nbad_abi\n"));
    assert_null(strstr(o.out, "cannot load"));
    e2e_free(&o);
    o = E2E_RUN("plugins", "--nmes");
    e2e_expect(&o, 2, "usage: weft plugins [--names]");
    e2e_free(&o);
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(duration_format),
        cmocka_unit_test(rate_format),
        cmocka_unit_test(eta),
        cmocka_unit_test(line_known_total),
        cmocka_unit_test(line_unknown_total),
        cmocka_unit_test(line_truncated_to_width),
        cmocka_unit_test(json_format),
        cmocka_unit_test(rate_window),
        cmocka_unit_test(auto_off_when_not_tty),
        cmocka_unit_test(tty_redraws_rate_limited),
        cmocka_unit_test(tty_message_clears_line),
        cmocka_unit_test(plain_lines_when_not_tty),
        cmocka_unit_test(json_lines),
        cmocka_unit_test(concurrent_adds),
    };
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(cli_option_errors),
        cmocka_unit_test(cli_options_accepted),
        cmocka_unit_test(cli_plugins_names),
        cmocka_unit_test(e2e_piped_no_progress),
        cmocka_unit_test(e2e_tty_shows_progress),
        cmocka_unit_test(e2e_tty_log_lines),
        cmocka_unit_test(e2e_tty_log_lines_process),
        cmocka_unit_test(e2e_progress_json),
        cmocka_unit_test(e2e_quiet),
        cmocka_unit_test(e2e_summary_json),
    };
    int failed = cmocka_run_group_tests_name("progress", unit, NULL, NULL);
    failed += cmocka_run_group_tests_name("progress_e2e", e2e, e2e_group_setup,
                                          e2e_group_teardown);
    return failed;
}
