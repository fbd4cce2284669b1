/* SPDX-License-Identifier: MIT */
/*
 * core/host/outdir.c and the out_* entries of the host table (core/host/host.c), on
 * real folders: the lock (same process, another process, released when its
 * holder dies), atomic files (no final name before commit, a concurrent
 * reader sees nothing or everything), confinement (../, absolute, planted
 * symlinks), and write errors from a read-only or full file system (tmpfs
 * mounts when root, else chmod or skip).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "loader.h"
#include "outdir.h"
#include "test_util.h"

/* ---- helpers --------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];      /* the test's folder                                 */
    char out[128];     /* dir/out: the output folder                        */
    char mnt[128];     /* a tmpfs mounted by the test, unmounted in teardown */
    bool mounted;
    weft__outdir_t *od;
    weft__host_t h;
    char msg[1024];
    weft_result_t r;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/weft_test_outdir_XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->out, sizeof fx->out, "%s/out", fx->dir);
    snprintf(fx->mnt, sizeof fx->mnt, "%s/mnt", fx->dir);
    weft__host_init(&fx->h, "test", 0, fx->dir);
    fx->r.msg = fx->msg;
    fx->r.msg_size = sizeof fx->msg;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    weft__outdir_close(&fx->od);
    if (fx->mounted && umount2(fx->mnt, MNT_DETACH) != 0)
        fprintf(stderr, "umount %s: %s\n", fx->mnt, strerror(errno));
    chmod(fx->out, 0700); /* the only folder a test makes read-only */
    int rc = remove_tree(fx->dir);
    free(fx);
    return rc;
}

/* Opens fx->out as the output folder and binds it to fx->h. */
static void open_out(fixture_t *fx)
{
    char err[512] = "";
    if (weft__outdir_open(&fx->od, fx->out, err, sizeof err) != 0)
        fail_msg("outdir_open %s: %s", fx->out, err);
    weft__host_set_outdir(&fx->h, fx->od);
}

/* Files in folder whose name contains `part` (NULL: all but . and ..). */
static int count_files(const char *folder, const char *part)
{
    DIR *d = opendir(folder);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            (!part || strstr(e->d_name, part)))
            n++;
    closedir(d);
    return n;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            char *p = realloc(buf, cap + 1);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void expect_msg(const fixture_t *fx, const char *frag)
{
    if (!strstr(fx->msg, frag))
        fail_msg("message '%s' lacks '%s'", fx->msg, frag);
}

/* Mounts a tmpfs on fx->mnt with opts; false (and the test skipped by
 * the caller) when this process may not mount. */
static bool mount_tmpfs(fixture_t *fx, const char *opts)
{
    if (mkdir(fx->mnt, 0700) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", fx->mnt, strerror(errno));
    if (mount("tmpfs", fx->mnt, "tmpfs", 0, opts) != 0)
        return false;
    fx->mounted = true;
    return true;
}

/* ---- the lock ---------------------------------------------------------------- */

static void lock_refuses_second_open(void **state)
{
    fixture_t *fx = *state;
    snprintf(fx->out, sizeof fx->out, "%s/a/b/out", fx->dir); /* mkdir -p */
    open_out(fx);
    struct stat st;
    assert_int_equal(stat(fx->out, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    char lock[256];
    snprintf(lock, sizeof lock, "%s/" WEFT__OUTDIR_LOCK, fx->out);
    assert_int_equal(stat(lock, &st), 0);
    assert_int_equal(st.st_mode & 0777 & ~0644u, 0); /* 0644 & ~umask */

    /* Same process, a second open file description: refused. */
    weft__outdir_t *again = NULL;
    char err[512] = "", want[256];
    assert_int_equal(weft__outdir_open(&again, fx->out, err, sizeof err), -EBUSY);
    assert_null(again);
    snprintf(want, sizeof want, "%s is in use by another weft run (pid %ld)", fx->out,
             (long)getpid());
    assert_string_equal(err, want);

    /* Another process: refused, naming us. */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        weft__outdir_t *d = NULL;
        char e[512] = "";
        int rc = weft__outdir_open(&d, fx->out, e, sizeof e);
        (void)!write(pfd[1], e, strlen(e) + 1);
        _exit(rc == -EBUSY ? 0 : 1);
    }
    close(pfd[1]);
    char child_err[512] = "";
    ssize_t n = read(pfd[0], child_err, sizeof child_err - 1);
    close(pfd[0]);
    int ws;
    assert_int_equal(waitpid(child, &ws, 0), child);
    assert_true(n > 0);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    assert_string_equal(child_err, want);

    /* Closed: free again. */
    weft__outdir_close(&fx->od);
    assert_null(fx->od);
    assert_int_equal(weft__outdir_open(&again, fx->out, err, sizeof err), 0);
    weft__outdir_close(&again);
}

/* A holder killed with SIGKILL leaves the lock file, not the lock. */
static void lock_released_when_holder_dies(void **state)
{
    fixture_t *fx = *state;
    for (int round = 0; round < 20; round++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
            weft__outdir_t *d = NULL;
            char ok = weft__outdir_open(&d, fx->out, NULL, 0) == 0 ? 'y' : 'n';
            (void)!write(pfd[1], &ok, 1);
            for (;;)
                pause(); /* holds the lock until killed */
        }
        close(pfd[1]);
        char ok = 0;
        assert_int_equal(read(pfd[0], &ok, 1), 1);
        close(pfd[0]);
        assert_int_equal(ok, 'y');
        weft__outdir_t *d = NULL;
        char err[512] = "", want[64];
        assert_int_equal(weft__outdir_open(&d, fx->out, err, sizeof err), -EBUSY);
        snprintf(want, sizeof want, "(pid %ld)", (long)child);
        assert_non_null(strstr(err, want));
        kill(child, SIGKILL);
        int ws;
        assert_int_equal(waitpid(child, &ws, 0), child);
        assert_int_equal(weft__outdir_open(&d, fx->out, err, sizeof err), 0);
        weft__outdir_close(&d);
    }
}

static void outdir_errors(void **state)
{
    fixture_t *fx = *state;
    weft__outdir_t *d = NULL;
    char err[512] = "";
    assert_int_equal(weft__outdir_open(&d, "", err, sizeof err), -EINVAL);
    assert_null(d);
    /* A file in the way. */
    char file[256];
    snprintf(file, sizeof file, "%s/file", fx->dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(weft__outdir_open(&d, file, err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, file));
    char below[300];
    snprintf(below, sizeof below, "%s/sub", file);
    assert_int_equal(weft__outdir_open(&d, below, err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, "cannot create output folder"));
    assert_null(d);

    /* A planted symlink as the lock file is not followed. */
    assert_int_equal(mkdir(fx->out, 0777), 0);
    char lock[256], target[256];
    snprintf(lock, sizeof lock, "%s/" WEFT__OUTDIR_LOCK, fx->out);
    snprintf(target, sizeof target, "%s/victim", fx->dir);
    assert_int_equal(symlink(target, lock), 0);
    assert_int_equal(weft__outdir_open(&d, fx->out, err, sizeof err), -ELOOP);
    assert_non_null(strstr(err, "lock file"));
    assert_int_equal(access(target, F_OK), -1);
}

static void outdir_arg_schema(void **state)
{
    (void)state;
    weft_arg_spec_t args[] = {
        {.name = "a", .type = WEFT_ARG_INT},
        {.name = "dir", .type = WEFT_ARG_OUTDIR},
        {.name = "other", .type = WEFT_ARG_OUTDIR},
    };
    weft_plugin_t p = {.name = "two", .args = args, .n_args = 2};
    size_t k;
    char err[256] = "";
    assert_int_equal(weft__outdir_arg(&p, &k, err, sizeof err), 1);
    assert_int_equal(k, 1);
    p.n_args = 1;
    assert_int_equal(weft__outdir_arg(&p, &k, err, sizeof err), 0);
    assert_int_equal(k, SIZE_MAX);
    p.n_args = 3;
    assert_int_equal(weft__outdir_arg(&p, &k, err, sizeof err), -EINVAL);
    assert_string_equal(err, "two: arguments 'dir' and 'other' are both output folders: "
                             "at most one");
}

static void outdir_bind(void **state)
{
    fixture_t *fx = *state;
    weft_arg_spec_t spec[] = {
        {.name = "n", .type = WEFT_ARG_INT},
        {.name = "dir", .type = WEFT_ARG_OUTDIR},
    };
    weft_plugin_t p = {.name = "b", .args = spec, .n_args = 2};
    weft_arg_value_t v[2] = {{.type = WEFT_ARG_INT}, {.type = WEFT_ARG_OUTDIR}};
    v[1].u.s = fx->out;
    char err[256] = "";
    assert_int_equal(weft__outdir_bind(&fx->od, &fx->h, &p, v, err, sizeof err), 0);
    assert_non_null(fx->od);
    assert_int_equal(fx->h.outdir_fd, weft__outdir_fd(fx->od));
    assert_string_equal(fx->h.outdir_path, fx->out);

    /* No OUTDIR argument: nothing opened, nothing bound. */
    weft__outdir_t *none = (weft__outdir_t *)(uintptr_t)1;
    weft__host_t h2;
    weft__host_init(&h2, "x", 0, "/");
    p.n_args = 1;
    assert_int_equal(weft__outdir_bind(&none, &h2, &p, v, err, sizeof err), 0);
    assert_null(none);
    assert_int_equal(h2.outdir_fd, -1);
    /* Empty value. */
    p.n_args = 2;
    v[1].u.s = "";
    assert_int_equal(weft__outdir_bind(&none, &h2, &p, v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "b: argument 'dir': the output folder is empty");
    /* Already locked by fx->od. */
    v[1].u.s = fx->out;
    assert_int_equal(weft__outdir_bind(&none, &h2, &p, v, err, sizeof err), -EBUSY);
    assert_int_equal(h2.outdir_fd, -1);
}

/* ---- atomic files ---------------------------------------------------------- */

static void out_file_appears_on_commit(void **state)
{
    fixture_t *fx = *state;
    open_out(fx);
    const weft_host_t *host = &fx->h.pub;
    weft_outfile_t f;
    assert_int_equal(host->out_open(host, "a/b/x.txt", &f, &fx->r), 0);
    assert_true(f.fd >= 0);
    char final[256], folder[256];
    snprintf(final, sizeof final, "%s/a/b/x.txt", fx->out);
    snprintf(folder, sizeof folder, "%s/a/b", fx->out);
    /* Folders made, the temporary hidden in the final folder, no final name. */
    assert_int_equal(access(folder, F_OK), 0);
    assert_int_equal(access(final, F_OK), -1);
    assert_int_equal(count_files(folder, ".weft-tmp-"), 1);
    assert_int_equal(host->out_write(host, &f, "hello ", 6, &fx->r), 0);
    assert_int_equal(write(f.fd, "world", 5), 5);
    assert_int_equal(access(final, F_OK), -1);
    assert_int_equal(host->out_commit(host, &f, &fx->r), 0);
    assert_int_equal(f.fd, -1);
    char *body = slurp(final, NULL);
    assert_non_null(body);
    assert_string_equal(body, "hello world");
    free(body);
    assert_int_equal(count_files(folder, NULL), 1);

    /* Replacing, and a top-level name. */
    assert_int_equal(host->out_open(host, "a/b/x.txt", &f, &fx->r), 0);
    assert_int_equal(host->out_write(host, &f, "new", 3, &fx->r), 0);
    assert_int_equal(host->out_commit(host, &f, &fx->r), 0);
    body = slurp(final, NULL);
    assert_string_equal(body, "new");
    free(body);
    assert_int_equal(host->out_open(host, "./top.bin", &f, &fx->r), 0);
    assert_int_equal(host->out_commit(host, &f, &fx->r), 0);
    snprintf(final, sizeof final, "%s/top.bin", fx->out);
    assert_int_equal(access(final, F_OK), 0);

    /* Committing twice, or writing after commit, is an error, not a crash. */
    assert_int_equal(host->out_commit(host, &f, &fx->r), -1);
    expect_msg(fx, "not open");
    assert_int_equal(host->out_write(host, &f, "x", 1, &fx->r), -1);
    expect_msg(fx, "not open");

    /* Discard leaves nothing. */
    assert_int_equal(host->out_open(host, "a/gone.txt", &f, &fx->r), 0);
    assert_int_equal(host->out_write(host, &f, "x", 1, &fx->r), 0);
    host->out_discard(host, &f);
    host->out_discard(host, &f); /* harmless twice */
    snprintf(folder, sizeof folder, "%s/a", fx->out);
    assert_int_equal(count_files(folder, NULL), 1); /* only b/ */
    /* Only the lock file and what we made at the top. */
    assert_int_equal(count_files(fx->out, ".weft-tmp-"), 0);
}

/* ---- temporaries left by a run that did not finish ------------------------- */

static void temp_names(void **state)
{
    (void)state;
    char name[NAME_MAX + 1], out[NAME_MAX + 1];
    memset(name, 'a', NAME_MAX);
    name[NAME_MAX] = '\0';
    const char *names[] = {"x.png", "a.weft-tmp-1-2", ".hidden", name};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        weft__outdir_temp_name(out, sizeof out, names[k], 123456, 18446744073709551615ul);
        assert_true(strlen(out) <= NAME_MAX);
        assert_true(weft__outdir_is_temp(out));
    }
    weft__outdir_temp_name(out, sizeof out, "x.png", 42, 7);
    assert_string_equal(out, ".x.png.weft-tmp-42-7");
    const char *not_ours[] = {"x.png",          ".x.png",         ".weft-tmp-1-2",
                              ".x.tmp-1-2",     ".x.png.tmp-42-7",
                              ".x.weft-tmp-",        ".x.weft-tmp-12",      ".x.weft-tmp-12-",
                              ".x.weft-tmp-a-1",     "x.weft-tmp-1-2",      ".x.weft-tmp-1-2.png",
                              ".x.weft-tmp--1-2",    ".x.weft-tmp-1-2-",    ""};
    for (size_t k = 0; k < sizeof not_ours / sizeof *not_ours; k++)
        if (weft__outdir_is_temp(not_ours[k]))
            fail_msg("'%s' taken for a temporary", not_ours[k]);
}

static void put_file(const char *dir, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    assert_int_equal(fclose(f), 0);
}

static void sweep_removes_stale_temporaries(void **state)
{
    fixture_t *fx = *state;
    open_out(fx);
    const weft_host_t *host = &fx->h.pub;
    /* A temporary exactly as out_open makes it, never committed. */
    weft_outfile_t f;
    assert_int_equal(host->out_open(host, "sub/deep/left.png", &f, &fx->r), 0);
    close(f.fd);
    put_file(fx->out, ".a.weft-tmp-99-1");
    put_file(fx->out, "sub/.b.png.weft-tmp-5-7");
    /* Not temporaries, or not ours to touch. */
    put_file(fx->out, ".notes.weft-tmp-12");
    put_file(fx->out, "x.weft-tmp-1-2");
    put_file(fx->out, "sub/deep/kept.png");
    put_file(fx->out, ".e.tmp-1-2"); /* another tool's name */
    char path[512];
    /* A nested output folder with its own lock: another run's. */
    snprintf(path, sizeof path, "%s/sub/nested", fx->out);
    assert_int_equal(mkdir(path, 0755), 0);
    put_file(path, ".weft.lock");
    put_file(path, ".f.png.weft-tmp-1-2");
    snprintf(path, sizeof path, "%s/.c.weft-tmp-1-2", fx->out);
    assert_int_equal(mkdir(path, 0755), 0); /* a folder */
    snprintf(path, sizeof path, "%s/elsewhere", fx->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    put_file(path, ".d.weft-tmp-1-2");
    char link[512];
    snprintf(link, sizeof link, "%s/link", fx->out);
    assert_int_equal(symlink(path, link), 0); /* never followed */

    assert_int_equal(weft__outdir_sweep(fx->od), 3);
    /* .notes.weft-tmp-12, x.weft-tmp-1-2 and the folder .c.weft-tmp-1-2 stay. */
    assert_int_equal(count_files(fx->out, ".weft-tmp-"), 3);
    snprintf(path, sizeof path, "%s/.c.weft-tmp-1-2", fx->out);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/sub", fx->out);
    assert_int_equal(count_files(path, NULL), 2); /* deep/, nested/ */
    snprintf(path, sizeof path, "%s/sub/nested", fx->out);
    assert_int_equal(count_files(path, ".weft-tmp-"), 1); /* not this run's to sweep */
    assert_int_equal(count_files(fx->out, ".e.tmp-"), 1);
    snprintf(path, sizeof path, "%s/sub/deep", fx->out);
    assert_int_equal(count_files(path, NULL), 1); /* kept.png */
    snprintf(path, sizeof path, "%s/elsewhere", fx->dir);
    assert_int_equal(count_files(path, NULL), 1);
    assert_int_equal(weft__outdir_sweep(fx->od), 0);
}

enum { BIG = 256 * 1024, ROUNDS = 300 };

typedef struct race {
    fixture_t *fx;
    atomic_int done;
    atomic_int torn;
    atomic_int whole;
} race_t;

static void *reader_main(void *arg)
{
    race_t *rc = arg;
    char path[256];
    snprintf(path, sizeof path, "%s/race.bin", rc->fx->out);
    unsigned char *buf = malloc(BIG + 1);
    while (!atomic_load(&rc->done)) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue; /* nothing yet: allowed */
        size_t n = 0;
        ssize_t k;
        while (n <= BIG && (k = read(fd, buf + n, BIG + 1 - n)) > 0)
            n += (size_t)k;
        close(fd);
        bool ok = n == BIG;
        for (size_t i = 1; ok && i < n; i++)
            ok = buf[i] == buf[0];
        if (ok)
            atomic_fetch_add(&rc->whole, 1);
        else
            atomic_fetch_add(&rc->torn, 1);
    }
    free(buf);
    return NULL;
}

/* A reader opening the final name while it is rewritten again and again
 * sees either no file or one whole version, never a mix or a short file. */
static void out_reader_sees_nothing_or_all(void **state)
{
    fixture_t *fx = *state;
    open_out(fx);
    const weft_host_t *host = &fx->h.pub;
    race_t rc = {.fx = fx};
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &rc), 0);
    unsigned char *data = malloc(BIG);
    assert_non_null(data);
    for (int round = 0; round < ROUNDS; round++) {
        memset(data, 'a' + round % 26, BIG);
        weft_outfile_t f;
        assert_int_equal(host->out_open(host, "race.bin", &f, &fx->r), 0);
        /* In pieces, so that a non-atomic writer would be seen half done. */
        for (size_t off = 0; off < BIG; off += BIG / 8)
            assert_int_equal(host->out_write(host, &f, data + off, BIG / 8, &fx->r), 0);
        assert_int_equal(host->out_commit(host, &f, &fx->r), 0);
    }
    atomic_store(&rc.done, 1);
    pthread_join(reader, NULL);
    free(data);
    assert_int_equal(atomic_load(&rc.torn), 0);
    /* The test means something only if the reader did read. */
    assert_true(atomic_load(&rc.whole) > 0);
    assert_int_equal(count_files(fx->out, ".weft-tmp-"), 0);
}

/* Many threads writing into shared new folders at once. */
typedef struct many {
    fixture_t *fx;
    int id;
    int failures;
} many_t;

static void *many_main(void *arg)
{
    many_t *m = arg;
    const weft_host_t *host = &m->fx->h.pub;
    char msg[512];
    weft_result_t r = {.msg = msg, .msg_size = sizeof msg};
    for (int i = 0; i < 200; i++) {
        char rel[64], body[64];
        snprintf(rel, sizeof rel, "d%d/e%d/f_%d_%d", i % 5, i % 3, m->id, i);
        int n = snprintf(body, sizeof body, "%d/%d", m->id, i);
        weft_outfile_t f;
        if (host->out_open(host, rel, &f, &r) || host->out_write(host, &f, body, (size_t)n, &r) ||
            host->out_commit(host, &f, &r)) {
            fprintf(stderr, "%s\n", msg);
            m->failures++;
        }
    }
    return NULL;
}

static void out_concurrent_writers(void **state)
{
    fixture_t *fx = *state;
    open_out(fx);
    enum { T = 4 };
    pthread_t th[T];
    many_t m[T];
    for (int t = 0; t < T; t++) {
        m[t] = (many_t){.fx = fx, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, many_main, &m[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(m[t].failures, 0);
    }
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < 200; i++) {
            char path[256], want[64];
            snprintf(path, sizeof path, "%s/d%d/e%d/f_%d_%d", fx->out, i % 5, i % 3, t, i);
            snprintf(want, sizeof want, "%d/%d", t, i);
            char *body = slurp(path, NULL);
            if (!body || strcmp(body, want))
                fail_msg("%s: '%s', want '%s'", path, body ? body : "(missing)", want);
            free(body);
        }
    }
}

/* ---- confinement ------------------------------------------------------------ */

static void out_confined(void **state)
{
    fixture_t *fx = *state;
    open_out(fx);
    const weft_host_t *host = &fx->h.pub;
    weft_outfile_t f;
    const char *bad[] = {"../x", "a/../../x", "/etc/x", "", "a/", "..", "sub/.."};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        fx->msg[0] = '\0';
        assert_int_equal(host->out_open(host, bad[k], &f, &fx->r), -1);
        assert_int_equal(f.fd, -1);
        assert_true(fx->msg[0] != '\0');
        host->out_discard(host, &f); /* harmless after a failed open */
    }
    assert_int_equal(host->out_open(host, "../x", &f, &fx->r), -1);
    expect_msg(fx, "'..' at position 1 would leave the output folder");
    assert_int_equal(host->out_open(host, "/etc/x", &f, &fx->r), -1);
    expect_msg(fx, "absolute");
    char x[256];
    snprintf(x, sizeof x, "%s/x", fx->dir);
    assert_int_equal(access(x, F_OK), -1);
}

static void out_planted_symlink(void **state)
{
    fixture_t *fx = *state;
    open_out(fx);
    const weft_host_t *host = &fx->h.pub;
    char elsewhere[] = "/tmp/weft_test_elsewhere_XXXXXX";
    assert_non_null(mkdtemp(elsewhere));
    char link[256];
    snprintf(link, sizeof link, "%s/sub", fx->out);
    assert_int_equal(symlink(elsewhere, link), 0);

    weft_outfile_t f;
    assert_int_equal(host->out_open(host, "sub/x", &f, &fx->r), -1);
    expect_msg(fx, "'sub' is a symbolic link or not a folder");
    assert_int_equal(host->out_open(host, "sub/deeper/x", &f, &fx->r), -1);
    assert_int_equal(host->out_open(host, "./sub/x", &f, &fx->r), -1);
    assert_int_equal(count_files(elsewhere, NULL), 0);

    /* Deeper: out/a/b -> elsewhere. */
    char a[256];
    snprintf(a, sizeof a, "%s/a", fx->out);
    assert_int_equal(mkdir(a, 0777), 0);
    snprintf(link, sizeof link, "%s/a/b", fx->out);
    assert_int_equal(symlink(elsewhere, link), 0);
    assert_int_equal(host->out_open(host, "a/b/c/x", &f, &fx->r), -1);
    expect_msg(fx, "'a/b' is a symbolic link");
    assert_int_equal(count_files(elsewhere, NULL), 0);

    /* A symlink as the final name is replaced, its target untouched. */
    char target[300];
    snprintf(target, sizeof target, "%s/target", elsewhere);
    snprintf(link, sizeof link, "%s/final.png", fx->out);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(host->out_open(host, "final.png", &f, &fx->r), 0);
    assert_int_equal(host->out_write(host, &f, "png", 3, &fx->r), 0);
    assert_int_equal(host->out_commit(host, &f, &fx->r), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(count_files(elsewhere, NULL), 0);

    /* A file where a folder should be. */
    snprintf(a, sizeof a, "%s/plainfile", fx->out);
    FILE *pf = fopen(a, "w");
    assert_non_null(pf);
    fclose(pf);
    assert_int_equal(host->out_open(host, "plainfile/x", &f, &fx->r), -1);
    expect_msg(fx, "'plainfile' is a symbolic link or not a folder");
    rmdir(elsewhere);
}

static void out_without_folder(void **state)
{
    fixture_t *fx = *state;
    const weft_host_t *host = &fx->h.pub; /* never bound */
    weft_outfile_t f;
    assert_int_equal(host->out_open(host, "x.png", &f, &fx->r), -1);
    expect_msg(fx, "x.png: no output folder");
    assert_int_equal(f.fd, -1);
}

/* ---- errors from the file system -------------------------------------------- */

static void out_commit_rename_error(void **state)
{
    fixture_t *fx = *state;
    open_out(fx);
    const weft_host_t *host = &fx->h.pub;
    /* The final name is a non-empty folder: rename(2) must fail. */
    char busy[256], inner[300];
    snprintf(busy, sizeof busy, "%s/busy", fx->out);
    snprintf(inner, sizeof inner, "%s/keep", busy);
    assert_int_equal(mkdir(busy, 0777), 0);
    assert_int_equal(mkdir(inner, 0777), 0);
    weft_outfile_t f;
    assert_int_equal(host->out_open(host, "busy", &f, &fx->r), 0);
    assert_int_equal(host->out_write(host, &f, "x", 1, &fx->r), 0);
    assert_int_equal(host->out_commit(host, &f, &fx->r), -1);
    char want[300];
    snprintf(want, sizeof want, "%s/busy: rename: Is a directory", fx->out);
    assert_string_equal(fx->msg, want);
    assert_int_equal(count_files(fx->out, ".weft-tmp-"), 0);
}

static void out_read_only(void **state)
{
    fixture_t *fx = *state;
    const weft_host_t *host = &fx->h.pub;
    weft_outfile_t f;
    char err[512] = "";
    const char *why;
    if (geteuid() == 0) {
        /* Root writes through mode bits: a read-only tmpfs it is. */
        if (!mount_tmpfs(fx, "size=64k")) {
            skip();
            return;
        }
        snprintf(fx->out, sizeof fx->out, "%s", fx->mnt);
        assert_int_equal(mount(NULL, fx->mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
        why = "Read-only file system";
        /* A run cannot even make its lock file there. */
        weft__outdir_t *d = NULL;
        assert_int_equal(weft__outdir_open(&d, fx->mnt, err, sizeof err), -EROFS);
        assert_non_null(strstr(err, why));
        /* The host keeps writing through a folder it holds. */
        int dfd = open(fx->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        fx->h.outdir_fd = dfd;
        fx->h.outdir_path = fx->mnt;
        assert_int_equal(host->out_open(host, "x.png", &f, &fx->r), -1);
        assert_int_equal(host->out_open(host, "sub/x.png", &f, &fx->r), -1);
        expect_msg(fx, "sub: create folder: Read-only file system");
        assert_int_equal(host->out_open(host, "x.png", &f, &fx->r), -1);
        close(dfd);
    } else {
        open_out(fx);
        assert_int_equal(chmod(fx->out, 0555), 0);
        why = "Permission denied";
        assert_int_equal(host->out_open(host, "x.png", &f, &fx->r), -1);
    }
    char want[256];
    snprintf(want, sizeof want, "%s/x.png: create: %s", fx->out, why);
    assert_string_equal(fx->msg, want);
}

static void out_disk_full(void **state)
{
    fixture_t *fx = *state;
    if (geteuid() != 0 || !mount_tmpfs(fx, "size=64k,nr_inodes=16")) {
        skip();
        return;
    }
    snprintf(fx->out, sizeof fx->out, "%s", fx->mnt);
    open_out(fx);
    const weft_host_t *host = &fx->h.pub;
    weft_outfile_t f;
    char want[256];

    /* Data: write reports ENOSPC; discarding leaves nothing behind. */
    static unsigned char chunk[16384];
    memset(chunk, 'z', sizeof chunk);
    assert_int_equal(host->out_open(host, "big.bin", &f, &fx->r), 0);
    int rc = 0;
    for (int i = 0; i < 16 && rc == 0; i++)
        rc = host->out_write(host, &f, chunk, sizeof chunk, &fx->r);
    assert_int_equal(rc, -1);
    snprintf(want, sizeof want, "%s/big.bin: write: No space left on device", fx->out);
    assert_string_equal(fx->msg, want);
    host->out_discard(host, &f);
    assert_int_equal(count_files(fx->out, ".weft-tmp-"), 0);
    assert_int_equal(count_files(fx->out, "big.bin"), 0);

    /* The space is back: a file that fits commits. */
    assert_int_equal(host->out_open(host, "fits.bin", &f, &fx->r), 0);
    assert_int_equal(host->out_write(host, &f, chunk, 1024, &fx->r), 0);
    assert_int_equal(host->out_commit(host, &f, &fx->r), 0);

    /* Inodes: out_open reports ENOSPC when the file cannot be created. */
    fx->msg[0] = '\0';
    int made = 0;
    for (; made < 64; made++) {
        char rel[32];
        snprintf(rel, sizeof rel, "f%d", made);
        if (host->out_open(host, rel, &f, &fx->r) != 0)
            break;
        if (host->out_commit(host, &f, &fx->r) != 0)
            fail_msg("commit %s: %s", rel, fx->msg);
    }
    assert_true(made < 64);
    expect_msg(fx, ": create: No space left on device");
    assert_int_equal(count_files(fx->out, ".weft-tmp-"), 0);
    assert_int_equal(host->out_open(host, "newdir/x", &f, &fx->r), -1);
    expect_msg(fx, "newdir: create folder: No space left on device");
}

/* ---- should_stop ------------------------------------------------------------ */

static void *stop_probe(void *arg)
{
    const weft_host_t *host = arg;
    /* A new thread has no item deadline. */
    return (void *)(uintptr_t)host->should_stop(host);
}

static void should_stop_flag_and_deadline(void **state)
{
    fixture_t *fx = *state;
    const weft_host_t *host = &fx->h.pub;
    assert_true(WEFT_HOST_HAS(host, should_stop));
    assert_false(host->should_stop(host)); /* no flag, no deadline */
    _Atomic int stop = 0;
    fx->h.stop = &stop;
    assert_false(host->should_stop(host));
    atomic_store(&stop, 1); /* stop soon: items run to their end */
    assert_false(host->should_stop(host));
    atomic_store(&stop, 2); /* now */
    assert_true(host->should_stop(host));
    atomic_store(&stop, 0);

    weft__host_item_begin(weft__host_now() + 3600);
    assert_false(host->should_stop(host));
    weft__host_item_begin(weft__host_now() - 1);
    assert_true(host->should_stop(host));
    /* Per thread: another worker's item is not past its deadline. */
    pthread_t t;
    void *res = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, stop_probe, (void *)host), 0);
    pthread_join(t, &res);
    assert_null(res);
    weft__host_item_begin(0);
    assert_false(host->should_stop(host));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(lock_refuses_second_open),
        T(lock_released_when_holder_dies),
        T(outdir_errors),
        T(outdir_arg_schema),
        T(outdir_bind),
        T(out_file_appears_on_commit),
        T(temp_names),
        T(sweep_removes_stale_temporaries),
        T(out_reader_sees_nothing_or_all),
        T(out_concurrent_writers),
        T(out_confined),
        T(out_planted_symlink),
        T(out_without_folder),
        T(out_commit_rename_error),
        T(out_read_only),
        T(out_disk_full),
        T(should_stop_flag_and_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
