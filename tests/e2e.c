/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "test_util.h"
#include "util.h" /* weft__mono_s */

enum { PATH_SIZE = 512 };

static char tmp[128], out_path[160], err_path[160];

const char *e2e_setup(const char *name)
{
    snprintf(tmp, sizeof tmp, "/tmp/weft-%s-XXXXXX", name);
    if (!mkdtemp(tmp))
        return NULL;
    snprintf(out_path, sizeof out_path, "%s/.stdout", tmp);
    snprintf(err_path, sizeof err_path, "%s/.stderr", tmp);
    char path[2048];
    snprintf(path, sizeof path, "%s:%s", getenv("WEFT_PLUGINS"), getenv("WEFT_TEST_PLUGINS"));
    setenv("WEFT_PLUGIN_PATH", path, 1);
    return tmp;
}

int e2e_remove(const char *path)
{
    return remove_tree(path);
}

int e2e_cleanup(void)
{
    if (tmp[0] && e2e_remove(tmp) != 0) {
        fprintf(stderr, "e2e: could not remove %s\n", tmp);
        return -1;
    }
    return 0;
}

int e2e_teardown(void **state)
{
    (void)state;
    return e2e_cleanup();
}

char *e2e_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return s;
}

e2e_outcome_t e2e_run(const char *const *args)
{
    static const e2e_options_t defaults;
    return e2e_run_with(args, &defaults);
}

void e2e_weft_argv(const char *argv[E2E_ARGV_MAX], const char *const *args)
{
    const char *exe = getenv("WEFT_EXE");
    assert_non_null(exe);
    argv[0] = exe;
    size_t n = 1;
    for (; args[n - 1]; n++) {
        assert_true(n < E2E_ARGV_MAX - 1);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
}

int e2e_spawn(const char *const *args)
{
    const char *argv[E2E_ARGV_MAX];
    e2e_weft_argv(argv, args);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null < 0)
            _exit(127);
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        if (null > 2)
            close(null);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int e2e_wait(int pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void e2e_sleep(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

e2e_outcome_t e2e_run_with(const char *const *args, const e2e_options_t *opt)
{
    const char *argv[E2E_ARGV_MAX];
    e2e_weft_argv(argv, args);
    int pipe_fds[2] = {-1, -1};
    if (opt->stdin_pipe)
        assert_int_equal(pipe(pipe_fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = opt->stdin_pipe ? pipe_fds[0] : open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0)
            _exit(127);
        dup2(o, 1), dup2(e, 2), dup2(in, 0);
        /* Only 0-2 reach weft, so that any other fd its children see
         * leaked from weft's side. */
        close(o), close(e), close(in);
        if (pipe_fds[1] >= 0)
            close(pipe_fds[1]);
        if (opt->ignore_sigpipe)
            signal(SIGPIPE, SIG_IGN); /* survives exec */
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pipe_fds[0] >= 0)
        close(pipe_fds[0]);
    int status;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    if (pipe_fds[1] >= 0)
        close(pipe_fds[1]); /* only now: weft's stdin never ended */
    e2e_outcome_t out = {.maxrss_kb = ru.ru_maxrss};
    out.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    out.out = e2e_slurp(out_path, NULL);
    out.err = e2e_slurp(err_path, NULL);
    /* Missing only if the child died before exec. */
    assert_non_null(out.out);
    assert_non_null(out.err);
    return out;
}

void e2e_free(e2e_outcome_t *o)
{
    free(o->out);
    free(o->err);
    o->out = o->err = NULL;
}

void e2e_expect(const e2e_outcome_t *o, int status, const char *in_err)
{
    if (o->status != status || (in_err && !strstr(o->err, in_err)))
        fail_msg("exit %d (want %d); stderr:\n%s\n(want it to contain '%s')", o->status,
                 status, o->err, in_err ? in_err : "");
}

/* The next of the path buffers: a few in turn, so that paths can be used
 * side by side. */
static char *next_path(void)
{
    static char paths[8][PATH_SIZE];
    static unsigned next;
    return paths[next++ % 8];
}

const char *e2e_path(const char *name)
{
    return e2e_pathf("%s", name);
}

const char *e2e_pathf(const char *fmt, ...)
{
    char *path = next_path();
    int len = snprintf(path, PATH_SIZE, "%s/", tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path + len, PATH_SIZE - (size_t)len, fmt, ap);
    va_end(ap);
    return path;
}

const char *e2e_write_bytes(const char *name, const void *data, size_t len)
{
    const char *path = e2e_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

const char *e2e_writef(const char *name, const char *fmt, ...)
{
    const char *path = e2e_path(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    int written = vfprintf(f, fmt, ap);
    va_end(ap);
    assert_true(written >= 0);
    assert_int_equal(fclose(f), 0);
    return path;
}

const char *e2e_write(const char *name, const char *body)
{
    return e2e_writef(name, "%s", body);
}

bool e2e_process_dead(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}
/* The pid a command wrote into tmp/NAME (waits up to 10 s for it), or 0. */
int e2e_pid_in(const char *name)
{
    for (double t0 = weft__mono_s(); weft__mono_s() - t0 < 10.0; e2e_sleep(0.02)) {
        char *text = e2e_slurp(e2e_path(name), NULL);
        int pid = text && strchr(text, '\n') ? atoi(text) : 0;
        free(text);
        if (pid > 1)
            return pid;
    }
    return 0;
}

/* Fails unless every one of the n pids ends within 3 s; the survivors are
 * killed first, so that a failure leaves nothing behind. */
void e2e_expect_all_gone(const int *pids, size_t n, const char *what)
{
    double t0 = weft__mono_s();
    for (size_t k = 0; k < n; k++)
        while (!e2e_process_dead(pids[k]) && weft__mono_s() - t0 < 3.0)
            e2e_sleep(0.01);
    int left = 0;
    for (size_t k = 0; k < n; k++)
        if (!e2e_process_dead(pids[k])) {
            kill(pids[k], SIGKILL);
            left = left ? left : (int)pids[k];
        }
    if (left)
        fail_msg("%s (pid %d) outlived it", what, left);
}

/* The first n pids the commands appended to tmp/NAME, one a line (waits up
 * to 10 s for them); false when they did not all come. */
bool e2e_pids_in_file(const char *name, int *out, size_t n)
{
    for (double t0 = weft__mono_s(); weft__mono_s() - t0 < 10.0; e2e_sleep(0.02)) {
        char *text = e2e_slurp(e2e_path(name), NULL);
        size_t got = 0;
        for (char *p = text, *nl; p && got < n && (nl = strchr(p, '\n')); p = nl + 1)
            if (atoi(p) > 1)
                out[got++] = atoi(p);
        free(text);
        if (got == n)
            return true;
    }
    return false;
}

/* Starts weft in the background: stdin and stdout /dev/null, stderr into
 * tmp/weft.err, no other descriptor; SIGHUP ignored (as by nohup) or at
 * its default, whatever ours is. */
int e2e_spawn_logged(bool nohup, const char *const *args)
{
    const char *argv[E2E_ARGV_MAX];
    e2e_weft_argv(argv, args);
    char err[512];
    snprintf(err, sizeof err, "%s", e2e_path("weft.err"));
    int pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR),
            e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (null < 0 || e < 0)
            _exit(127);
        dup2(null, 0), dup2(null, 1), dup2(e, 2);
        closefrom(3);
        signal(SIGHUP, nohup ? SIG_IGN : SIG_DFL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* pid's exit status once it ends, within `limit` seconds (*exited: by
 * exit(), not killed by a signal), or -1: it was still running, and has
 * been SIGKILLed. */
int e2e_wait_for(int pid, double limit, bool *exited)
{
    int st;
    for (double t0 = weft__mono_s(); waitpid(pid, &st, WNOHANG) != pid; e2e_sleep(0.01))
        if (weft__mono_s() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            *exited = false;
            return -1;
        }
    *exited = WIFEXITED(st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

