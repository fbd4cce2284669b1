/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

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

void e2e_cleanup(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (tmp[0] && system(cmd) != 0)
        fprintf(stderr, "e2e: could not remove %s\n", tmp);
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
    const char *exe = getenv("WEFT_EXE");
    assert_non_null(exe);
    const char *argv[64] = {exe};
    size_t n = 1;
    for (; args[n - 1]; n++) {
        assert_true(n < 63);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0)
            _exit(127);
        dup2(o, 1), dup2(e, 2), dup2(in, 0);
        close(o), close(e), close(in); /* weft's children must not inherit them */
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    e2e_outcome_t out = {.maxrss_kb = ru.ru_maxrss};
    out.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    out.out = e2e_slurp(out_path, NULL);
    out.err = e2e_slurp(err_path, NULL);
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

const char *e2e_path(const char *name)
{
    /* A few buffers in turn, so that paths can be used side by side. */
    static char paths[8][512];
    static unsigned next;
    char *path = paths[next++ % 8];
    snprintf(path, 512, "%s/%s", tmp, name);
    return path;
}

const char *e2e_write(const char *name, const char *body)
{
    const char *path = e2e_path(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    return path;
}
