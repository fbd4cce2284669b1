/* SPDX-License-Identifier: MIT */
/*
 * The I/O fault shim (tests/fixtures/shim/iofault.c, $WEFT_IOFAULT_LIB), and what
 * weft does when its output cannot be written.
 *
 * The shim is checked through this same program re-executed as a probe
 * (`test_iofault --probe OP PATH N`) under LD_PRELOAD: the probe makes N
 * calls and prints what each returned, and the test checks that exactly the
 * configured call failed, with exactly the configured errno.  Then the
 * real weft binary runs add_one with its output on a path the rule matches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

static const char *tmp;

/* ---- the probe (runs under the shim) -------------------------------------- */

static void probe_line(char tag, long rc, int err)
{
    printf("%c %ld %d\n", tag, rc, rc < 0 ? err : 0);
}

enum { PROBE_THREADS = 4 };
typedef struct probe_thread {
    const char *path;
    int n;
    int failed;
    int written;
} probe_thread_t;

static void *probe_thread_main(void *arg)
{
    probe_thread_t *t = arg;
    int fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return NULL;
    for (int i = 0; i < t->n; i++) {
        if (write(fd, "x", 1) == 1)
            t->written++;
        else
            t->failed++;
    }
    close(fd);
    return NULL;
}

/*
 * Each call on PATH prints "m RC ERRNO"; calls on a side file whose name
 * no rule matches print "s RC ERRNO".  Exit status 0 unless the probe itself
 * could not run (then 2).
 */
static int probe(const char *op, const char *path, int n)
{
    static const char ten[] = "0123456789";
    char side[4096];
    snprintf(side, sizeof side, "%s.side", path);
    for (char *p = strrchr(side, '/') + 1; *p; p++)
        *p = *p == '.' ? '.' : 'z'; /* "zzzzzzz.zzzz": never the rule's text */

    if (strcmp(op, "threads") == 0) {
        probe_thread_t t[PROBE_THREADS];
        pthread_t tid[PROBE_THREADS];
        char names[PROBE_THREADS][4096];
        for (int k = 0; k < PROBE_THREADS; k++) {
            snprintf(names[k], sizeof names[k], "%s%d", path, k);
            t[k] = (probe_thread_t){.path = names[k], .n = n};
            if (pthread_create(&tid[k], NULL, probe_thread_main, &t[k]) != 0)
                return 2;
        }
        int failed = 0, written = 0;
        for (int k = 0; k < PROBE_THREADS; k++) {
            pthread_join(tid[k], NULL);
            failed += t[k].failed;
            written += t[k].written;
        }
        printf("failed %d written %d\n", failed, written);
        return 0;
    }

    /* The open probe makes its own O_CREAT opens: these would count. */
    bool opens = strcmp(op, "open") == 0;
    int fd = opens ? -1 : open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int sfd = opens ? -1 : open(side, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!opens && (fd < 0 || sfd < 0))
        return 2;
    for (int i = 0; i < n; i++) {
        long rc = 0, src = 0;
        int err = 0, serr = 0;
        errno = 0;
        if (strcmp(op, "write") == 0) {
            rc = write(fd, ten, 10), err = errno;
            src = write(sfd, ten, 10), serr = errno;
        } else if (strcmp(op, "pwrite") == 0) {
            rc = pwrite(fd, ten, 10, (off_t)i * 10), err = errno;
            src = pwrite(sfd, ten, 10, (off_t)i * 10), serr = errno;
        } else if (strcmp(op, "writev") == 0) {
            struct iovec iov[2] = {{(void *)ten, 4}, {(void *)(ten + 4), 6}};
            rc = writev(fd, iov, 2), err = errno;
            src = writev(sfd, iov, 2), serr = errno;
        } else if (strcmp(op, "fsync") == 0) {
            rc = fsync(fd), err = errno;
            src = fsync(sfd), serr = errno;
        } else if (strcmp(op, "fdatasync") == 0) {
            rc = fdatasync(fd), err = errno;
            src = fdatasync(sfd), serr = errno;
        } else if (strcmp(op, "close") == 0) {
            int f = open(path, O_RDONLY | O_CLOEXEC);
            rc = close(f), err = errno;
            /* A failed close still released the fd. */
            if (fcntl(f, F_GETFD) != -1)
                return 3;
            f = open(side, O_RDONLY | O_CLOEXEC);
            src = close(f), serr = errno;
        } else if (strcmp(op, "rename") == 0 || strcmp(op, "renameat") == 0) {
            /* Relative names from the file's folder: the shim must make
             * them absolute to match. */
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", path);
            *strrchr(dir, '/') = '\0';
            if (chdir(dir) != 0)
                return 2;
            const char *base = strrchr(path, '/') + 1, *sbase = strrchr(side, '/') + 1;
            bool at = op[6] == 'a';
            rc = at ? renameat(AT_FDCWD, base, AT_FDCWD, "tmp.x") : rename(base, "tmp.x");
            err = errno;
            /* Back with renameat2, which the shim does not count. */
            if (rc == 0 && renameat2(AT_FDCWD, "tmp.x", AT_FDCWD, base, 0) != 0)
                return 2;
            src = at ? renameat(AT_FDCWD, sbase, AT_FDCWD, "tmp.y")
                     : rename(sbase, "tmp.y");
            serr = errno;
            if (src == 0 && renameat2(AT_FDCWD, "tmp.y", AT_FDCWD, sbase, 0) != 0)
                return 2;
        } else if (strcmp(op, "open") == 0) {
            int f = openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            rc = f < 0 ? -1 : 0, err = errno;
            if (f >= 0)
                close(f);
            /* Opens without O_CREAT are neither counted nor failed. */
            if (rc == 0 && (f = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return 4;
            if (rc == 0)
                close(f);
            f = open(side, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            src = f < 0 ? -1 : 0, serr = errno;
            if (f >= 0)
                close(f);
        } else {
            return 2;
        }
        probe_line('m', rc, err);
        probe_line('s', src, serr);
    }
    return 0;
}

/* ---- running things under the shim --------------------------------------- */

static char *saved_preload, *saved_asan;

/* Puts the shim into the environment children inherit (this process was
 * loaded already and is not affected). */
static void shim_env_set(const char *spec)
{
    const char *lib = getenv("WEFT_IOFAULT_LIB");
    assert_non_null(lib);
    const char *old = getenv("LD_PRELOAD");
    saved_preload = old ? strdup(old) : NULL;
    const char *asan = getenv("ASAN_OPTIONS");
    saved_asan = asan ? strdup(asan) : NULL;

    char buf[8192];
    snprintf(buf, sizeof buf, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", buf, 1);
    /* The shim comes before the ASan runtime in the library list. */
    snprintf(buf, sizeof buf, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", buf, 1);
    setenv("WEFT_IOFAULT", spec, 1);
}

static void shim_env_clear(void)
{
    if (saved_preload)
        setenv("LD_PRELOAD", saved_preload, 1);
    else
        unsetenv("LD_PRELOAD");
    if (saved_asan)
        setenv("ASAN_OPTIONS", saved_asan, 1);
    else
        unsetenv("ASAN_OPTIONS");
    unsetenv("WEFT_IOFAULT");
    free(saved_preload);
    free(saved_asan);
    saved_preload = saved_asan = NULL;
}

typedef struct probe_result {
    int status;
    char out[65536];
    /* The "m" and "s" lines, parsed. */
    int n;
    long rc[256], src[256];
    int err[256], serr[256];
} probe_result_t;

static void run_probe(probe_result_t *r, const char *spec, const char *op,
                      const char *path, int n)
{
    memset(r, 0, sizeof *r);
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    shim_env_set(spec);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        execl("/proc/self/exe", "test_iofault", "--probe", op, path, nbuf, (char *)NULL);
        _exit(127);
    }
    shim_env_clear();
    close(p[1]);
    size_t len = 0;
    ssize_t k;
    while ((k = read(p[0], r->out + len, sizeof r->out - 1 - len)) > 0)
        len += (size_t)k;
    r->out[len] = '\0';
    close(p[0]);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);

    for (char *line = r->out; *line && r->n < 256;) {
        char tag;
        long rc;
        int err;
        if (sscanf(line, "%c %ld %d", &tag, &rc, &err) == 3 &&
            (tag == 'm' || tag == 's')) {
            if (tag == 'm') {
                r->rc[r->n] = rc, r->err[r->n] = err;
            } else {
                r->src[r->n] = rc, r->serr[r->n] = err;
                r->n++;
            }
        }
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
}

/* Checks that call i (1-based) on the matched file returned ok_rc, except
 * the calls in fail[0..n_fail) which failed with err; and that no call on
 * the side file failed. */
static void expect_calls(const probe_result_t *r, int n, long ok_rc, const int *fail,
                         int n_fail, int err)
{
    if (r->status != 0 || r->n != n)
        fprintf(stderr, "probe status %d, %d calls, output:\n%s", r->status, r->n,
                r->out);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->n, n);
    for (int i = 0; i < n; i++) {
        bool should_fail = false;
        for (int k = 0; k < n_fail; k++)
            should_fail |= fail[k] == i + 1;
        if (should_fail) {
            assert_int_equal(r->rc[i], -1);
            assert_int_equal(r->err[i], err);
        } else {
            assert_int_equal(r->rc[i], ok_rc);
        }
        assert_int_equal(r->src[i], ok_rc);
    }
}

static probe_result_t pr; /* 64 KiB: not on the stack */

static const char *results_path(void)
{
    return e2e_path("results.bin");
}

/* ---- the shim, call by call ----------------------------------------------- */

static void iofault_nth_call_fails_exactly(void **state)
{
    (void)state;
    static const struct {
        const char *op;
        long ok_rc;
    } ops[] = {{"write", 10}, {"pwrite", 10},   {"writev", 10},
               {"fsync", 0},  {"fdatasync", 0}, {"close", 0},
               {"rename", 0}, {"renameat", 0},  {"open", 0}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        char spec[128];
        snprintf(spec, sizeof spec, "op=%s,nth=3,err=ENOSPC,path=results", ops[k].op);
        run_probe(&pr, spec, ops[k].op, results_path(), 6);
        expect_calls(&pr, 6, ops[k].ok_rc, (const int[]){3}, 1, ENOSPC);

        snprintf(spec, sizeof spec, "op=%s,nth=2,err=EIO,path=results", ops[k].op);
        run_probe(&pr, spec, ops[k].op, results_path(), 4);
        expect_calls(&pr, 4, ops[k].ok_rc, (const int[]){2}, 1, EIO);
    }
}

static void iofault_every_from_nth(void **state)
{
    (void)state;
    run_probe(&pr, "op=write,nth=4,every=1,err=EIO,path=results", "write", results_path(),
              7);
    expect_calls(&pr, 7, 10, (const int[]){4, 5, 6, 7}, 4, EIO);

    /* No path: every file matches, the side file's calls count too (two a
     * round), and err defaults to EIO. */
    run_probe(&pr, "op=fsync,nth=1,every=1", "fsync", results_path(), 2);
    assert_int_equal(pr.status, 0);
    assert_int_equal(pr.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pr.rc[i], -1);
        assert_int_equal(pr.err[i], EIO);
        assert_int_equal(pr.src[i], -1);
    }
}

static void iofault_several_rules(void **state)
{
    (void)state;
    /* Each rule counts its own calls. */
    run_probe(&pr, "op=fsync,nth=9,err=EIO;op=write,nth=2,err=EDQUOT,path=results",
              "write", results_path(), 3);
    expect_calls(&pr, 3, 10, (const int[]){2}, 1, EDQUOT);
    run_probe(&pr, "op=write,nth=1,err=EFBIG,path=nomatch;op=write,nth=3,path=results",
              "write", results_path(), 3);
    expect_calls(&pr, 3, 10, (const int[]){3}, 1, EIO);
    /* "$" anchors at the end: "results$" is not results.bin. */
    run_probe(&pr,
              "op=write,nth=1,every=1,path=results$;op=write,nth=2,err=EROFS,path=s.bin$",
              "write", results_path(), 3);
    expect_calls(&pr, 3, 10, (const int[]){2}, 1, EROFS);
}

static void iofault_short_write(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        const char *op = (const char *[]){"write", "pwrite", "writev"}[k];
        char spec[128];
        snprintf(spec, sizeof spec, "op=%s,nth=2,short=1,path=results", op);
        run_probe(&pr, spec, op, results_path(), 4);
        assert_int_equal(pr.status, 0);
        assert_int_equal(pr.n, 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(pr.rc[i], i == 1 ? 5 : 10);
            assert_int_equal(pr.src[i], 10);
        }
        /* The short call really wrote 5 bytes: the file holds the first
         * half of the second block (pwrite: at its offset, so the file
         * length is unchanged but bytes 15..19 were never written). */
        size_t len;
        char *data = e2e_slurp(results_path(), &len);
        assert_non_null(data);
        if (k == 1) {
            assert_int_equal(len, 40);
            assert_memory_equal(data + 10, "01234", 5);
            assert_memory_equal(data + 15, "\0\0\0\0\0", 5);
        } else {
            assert_int_equal(len, 35);
            assert_memory_equal(data + 10, "012340123456789", 15);
        }
        free(data);
    }
}

static void iofault_threads_count_exactly(void **state)
{
    (void)state;
    /* 4 threads x 500 matching writes: exactly one fails, and with every=1
     * exactly the calls from the 700th on, whichever thread makes them. */
    for (int round = 0; round < 20; round++) {
        run_probe(&pr, "op=write,nth=700,err=ENOSPC,path=results", "threads",
                  results_path(), 500);
        assert_int_equal(pr.status, 0);
        assert_string_equal(pr.out, "failed 1 written 1999\n");
        run_probe(&pr, "op=write,nth=700,every=1,path=results", "threads", results_path(),
                  500);
        assert_int_equal(pr.status, 0);
        assert_string_equal(pr.out, "failed 1301 written 699\n");
    }
}

static void iofault_bad_spec_stops(void **state)
{
    (void)state;
    const char *bad[] = {"op=bogus",         "nth=2",
                         "op=write,nth=0",   "op=write,err=EWHAT",
                         "op=fsync,short=1", "op=write,colour=red",
                         "op=write,nth"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        run_probe(&pr, bad[k], "write", results_path(), 1);
        assert_int_equal(pr.status, 99);
        assert_int_equal(pr.n, 0);
    }
}

/* ---- weft under the shim ---------------------------------------------------- */

enum { N_ITEMS = 300000 }; /* ~2.4 MB of JSON: several 1 MiB writes */

/* Each run writes a fresh output file, results-N.json, so nothing a failed
 * run leaves behind reaches the next run.  The rules match "results-N.json"
 * anywhere in a path: the output and any temporary named after it (the
 * writer's ".results-N.json.partial"); the journal is put where they do
 * not look. */
static int run_no;

static const char *output_name(void)
{
    static char name[64];
    snprintf(name, sizeof name, "results-%d.json", run_no);
    return name;
}

/* Runs add_one on N_ITEMS into a fresh output under the rules of spec_fmt,
 * whose "%s"s are the output's name. */
static e2e_outcome_t run_weft_under(const char *spec_fmt)
{
    run_no++;
    const char *cfg = e2e_writef("job.ini",
                                 "[run]\n"
                                 "plugin = add_one\n"
                                 "items = %d\n"
                                 "output = %s\n"
                                 "journal = job-%d.wj\n"
                                 "threads = 2\n",
                                 N_ITEMS, output_name(), run_no);
    /* Every "%s" is the output's name. */
    char spec[512];
    size_t len = 0;
    for (const char *f = spec_fmt; *f && len < sizeof spec - 64; f++) {
        if (f[0] == '%' && f[1] == 's')
            len += (size_t)snprintf(spec + len, sizeof spec - len, "%s", output_name()),
                f++;
        else
            spec[len++] = *f;
    }
    spec[len] = '\0';
    shim_env_set(spec);
    e2e_outcome_t o = E2E_RUN("run", cfg);
    shim_env_clear();
    return o;
}

/* Status 3, and stderr names the output file and the reason. */
static void expect_output_error(const char *spec_fmt, const char *why)
{
    e2e_outcome_t o = run_weft_under(spec_fmt);
    e2e_expect(&o, 3, why);
    if (!strstr(o.err, e2e_path(output_name())))
        fprintf(stderr, "stderr does not name %s:\n%s", e2e_path(output_name()), o.err);
    assert_non_null(strstr(o.err, e2e_path(output_name())));
    e2e_free(&o);
}

static void iofault_weft_write_errors(void **state)
{
    (void)state;
    /* Big blocks of records go out by writev, the rest by write. */
    expect_output_error("op=write,nth=1,err=ENOSPC,path=%s;op=writev,nth=1,err=ENOSPC,path=%s",
                        "No space left on device");
    expect_output_error("op=write,nth=1,err=EIO,path=%s;op=writev,nth=1,err=EIO,path=%s",
                        "Input/output error");
    /* In the middle of the file, after a full buffer went out. */
    expect_output_error("op=write,nth=2,err=ENOSPC,path=%s;op=writev,nth=2,err=ENOSPC,path=%s",
                        "No space left on device");
    expect_output_error("op=write,nth=3,err=EIO,path=%s;op=writev,nth=3,err=EIO,path=%s",
                        "Input/output error");
}

static void iofault_weft_fsync_close_errors(void **state)
{
    (void)state;
    expect_output_error(
        "op=fsync,nth=1,err=ENOSPC,path=%s;op=fdatasync,nth=1,err=ENOSPC,path=%s",
        "No space left on device");
    expect_output_error(
        "op=fsync,nth=1,err=EIO,path=%s;op=fdatasync,nth=1,err=EIO,path=%s",
        "Input/output error");
    expect_output_error("op=close,nth=1,err=EIO,path=%s", "Input/output error");
}

static void iofault_weft_rename_error(void **state)
{
    (void)state;
    /* Whichever call weft makes them with. */
    expect_output_error(
        "op=rename,nth=1,err=EIO,path=%s;op=renameat,nth=1,err=EIO,path=%s",
        "Input/output error");
    expect_output_error(
        "op=rename,nth=1,err=ENOSPC,path=%s;op=renameat,nth=1,err=ENOSPC,path=%s",
        "No space left on device");
}

static void iofault_weft_open_error(void **state)
{
    (void)state;
    e2e_outcome_t o = run_weft_under("op=open,nth=1,err=EACCES,path=%s");
    /* Nothing could run: the output was never created. */
    assert_true(o.status == 2 || o.status == 3);
    assert_non_null(strstr(o.err, output_name()));
    assert_non_null(strstr(o.err, "Permission denied"));
    e2e_free(&o);
}

static void iofault_weft_short_writes_complete(void **state)
{
    (void)state;
    /* Every write to the output writes half: a correct writer loops on and
     * the file is whole. */
    e2e_outcome_t o = run_weft_under(
        "op=write,nth=1,every=1,short=1,path=%s;op=writev,nth=1,every=1,short=1,path=%s");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    char *json = e2e_slurp(e2e_path(output_name()), NULL);
    assert_non_null(json);
    cJSON *arr = cJSON_Parse(json);
    free(json);
    assert_non_null(arr);
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), N_ITEMS);
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        assert_true(cJSON_IsNumber(v));
        assert_int_equal((long)v->valuedouble, i + 1);
        i++;
    }
    cJSON_Delete(arr);
}

static void iofault_weft_unmatched_rule_is_harmless(void **state)
{
    (void)state;
    /* The proof that the failures above come from the rule: the same run
     * with a rule on another path succeeds. */
    e2e_outcome_t o = run_weft_under("op=write,nth=1,every=1,err=EIO,path=nowhere");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
}

/* Thread creation refused (EAGAIN: ulimit -u, a pids cgroup full): weft
 * says so, not "out of memory", exits 2 and leaves the results as they
 * were. */
static void iofault_weft_threads_refused(void **state)
{
    (void)state;
    e2e_outcome_t o = run_weft_under("op=write,nth=1,every=1,err=EIO,path=nowhere");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    run_no--; /* the same output again */
    size_t before_len = 0;
    char *before = e2e_slurp(e2e_path(output_name()), &before_len);
    assert_non_null(before);
    o = run_weft_under("op=thread,nth=1,every=1,err=EAGAIN");
    e2e_expect(&o, 2, "cannot start the worker threads (the system refused: too many "
                      "processes or threads?)");
    if (strstr(o.err, "out of memory"))
        fail_msg("said out of memory:\n%s", o.err);
    e2e_free(&o);
    size_t after_len = 0;
    char *after = e2e_slurp(e2e_path(output_name()), &after_len);
    assert_non_null(after);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(before);
    free(after);
}

/* Regular files of dir not starting with '.'; fails on a temporary. */
static int images_in(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strstr(e->d_name, ".weft-tmp-"))
            fail_msg("%s: temporary '%s' left", dir, e->d_name);
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* sync = batch: a group's syncfs fails.  The run ends with status 3 and
 * says which file and that its group's items are not journaled; --resume
 * (no fault) runs them again and every image is there.  The same rule
 * under sync = item (no syncfs) harms nothing: the failure is the rule's. */
static void iofault_syncfs_fails(void **state)
{
    (void)state;
    const char *cfg = e2e_write("png.ini", "[run]\nplugin = noise_png\nitems = 400\n"
                                           "output = none\nthreads = 2\n[args]\n"
                                           "size_x = 16\nsize_y = 16\ndir = imgs\n"
                                           "name = n_{index:04}.png\n");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", e2e_path("imgs"));
    shim_env_set("op=syncfs,nth=3,err=EIO,path=imgs");
    e2e_outcome_t o = E2E_RUN("run", cfg);
    shim_env_clear();
    e2e_expect(&o, 3, "syncfs (sync = batch): Input/output error; the items of those files "
                      "are not recorded as done (--resume runs them again)");
    assert_non_null(strstr(o.err, dir));
    e2e_free(&o);
    o = E2E_RUN("run", cfg, "--resume");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_int_equal(images_in(dir), 400);

    assert_int_equal(e2e_remove(dir), 0);
    shim_env_set("op=syncfs,nth=1,every=1,err=EIO,path=imgs");
    o = E2E_RUN("run", cfg, "--set", "run.sync=item");
    shim_env_clear();
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_int_equal(images_in(dir), 400);
}

/* Which syncs each mode makes, seen through failing them: item fsyncs
 * every file (a failing fsync fails items), batch and none fsync none of
 * them (batch syncs the filesystem: a failing syncfs ends the run), none
 * syncs nothing at all. */
static void iofault_sync_modes_sync_what_they_say(void **state)
{
    (void)state;
    const char *cfg = e2e_write("modes.ini", "[run]\nplugin = noise_png\nitems = 50\n"
                                             "output = none\nthreads = 2\njournal = off\n"
                                             "[args]\nsize_x = 8\nsize_y = 8\ndir = m\n"
                                             "name = n_{index:02}.png\n");
    static const struct {
        const char *mode, *rule;
        int status;
        const char *err;
    } cases[] = {
        {"item", "op=fsync,nth=1,every=1,err=EIO,path=/m/", 3, "fsync: Input/output error"},
        {"batch", "op=fsync,nth=1,every=1,err=EIO,path=/m/", 0, NULL},
        {"none", "op=fsync,nth=1,every=1,err=EIO,path=/m/;op=syncfs,nth=1,every=1,err=EIO", 0,
         NULL},
        {"batch", "op=syncfs,nth=1,every=1,err=EIO", 3, "syncfs (sync = batch)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        assert_int_equal(e2e_remove(e2e_path("m")), 0);
        char set[32];
        snprintf(set, sizeof set, "run.sync=%s", cases[k].mode);
        shim_env_set(cases[k].rule);
        e2e_outcome_t o = E2E_RUN("run", cfg, "-q", "--set", set);
        shim_env_clear();
        e2e_expect(&o, cases[k].status, cases[k].err);
        e2e_free(&o);
        if (cases[k].status == 0)
            assert_int_equal(images_in(e2e_path("m")), 50);
    }
}

static int setup(void **state)
{
    (void)state;
    return (tmp = e2e_setup("iofault")) ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--probe") == 0) {
        int rc = probe(argv[2], argv[3], atoi(argv[4]));
        fflush(stdout);
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iofault_nth_call_fails_exactly),
        cmocka_unit_test(iofault_every_from_nth),
        cmocka_unit_test(iofault_several_rules),
        cmocka_unit_test(iofault_short_write),
        cmocka_unit_test(iofault_threads_count_exactly),
        cmocka_unit_test(iofault_bad_spec_stops),
        cmocka_unit_test(iofault_weft_write_errors),
        cmocka_unit_test(iofault_weft_fsync_close_errors),
        cmocka_unit_test(iofault_weft_rename_error),
        cmocka_unit_test(iofault_weft_open_error),
        cmocka_unit_test(iofault_weft_short_writes_complete),
        cmocka_unit_test(iofault_weft_unmatched_rule_is_harmless),
        cmocka_unit_test(iofault_weft_threads_refused),
        cmocka_unit_test(iofault_syncfs_fails),
        cmocka_unit_test(iofault_sync_modes_sync_what_they_say),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
