/* SPDX-License-Identifier: MIT */
/* core/host/loader.c and core/host/host.c: finding, loading and checking plugins, and
 * the host table they receive.  The broken plugins are in tests/fixtures/plugins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "loader.h"
#include "test_util.h"
#include "u128_decimal.h"

#define ERRLEN 1024

static const char *test_plugins(void)
{
    const char *d = getenv("WEFT_TEST_PLUGINS");
    assert_non_null(d);
    return d;
}

static const char *tp(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s.so", test_plugins(), name);
    return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        print_error("\"%s\" does not contain \"%s\"\n", hay, needle);
    assert_non_null(strstr(hay, needle));
}

/* A fresh empty folder, removed (with what the test put in it) by rmtree. */
static void mktmp(char *buf, size_t size)
{
    snprintf(buf, size, "%s/weft-test-loader-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(buf));
}

static void rmtree(const char *dir)
{
    assert_int_equal(remove_tree(dir), 0);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Opens a test plugin by path and expects -ENOEXEC; returns the message. */
static const char *expect_noexec(const char *name)
{
    static char err[ERRLEN];
    char path[PATH_MAX];
    weft__plugin_t *p = (weft__plugin_t *)&p; /* must be reset to NULL */
    err[0] = '\0';
    int r = weft__plugin_open(&p, tp(path, sizeof path, name), NULL, 0, err, sizeof err);
    assert_int_equal(r, -ENOEXEC);
    assert_null(p);
    assert_contains(err, path);
    return err;
}

static void free_dirs(char **dirs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
}

/* ---- loading good plugins ---------------------------------------------- */

static void loader_open_by_path(void **state)
{
    char path[PATH_MAX], err[ERRLEN] = "";
    weft__plugin_t *p = NULL;
    tp(path, sizeof path, "init_fail");
    assert_int_equal(weft__plugin_open(&p, path, NULL, 0, err, sizeof err), 0);
    assert_non_null(p);
    assert_non_null(p->dl);
    assert_string_equal(p->path, path);

    const weft_plugin_t *d = &p->desc;
    assert_int_equal(d->struct_size, sizeof(weft_plugin_t));
    assert_int_equal(d->abi_version, WEFT_PLUGIN_ABI_VERSION);
    assert_string_equal(d->name, "init_fail");
    assert_string_equal(d->version, "1.0.0");
    assert_non_null(d->description);
    assert_non_null(d->init);
    assert_non_null(d->process_one);
    assert_null(d->worker_init);
    assert_null(d->finish);
    assert_null(d->destroy);

    /* The schema came across whole. */
    assert_int_equal(d->n_args, 2);
    assert_non_null(d->args);
    assert_string_equal(d->args[0].name, "count");
    assert_int_equal(d->args[0].type, WEFT_ARG_INT);
    assert_string_equal(d->args[0].default_value, "3");
    assert_true(d->args[0].min == 0 && d->args[0].max == 10);
    assert_string_equal(d->args[1].name, "label");
    assert_int_equal(d->args[1].type, WEFT_ARG_STRING);

    /* The copy is byte-for-byte the plugin's own descriptor. */
    const weft_plugin_t *entry = dlsym(p->dl, WEFT_PLUGIN_ENTRY_NAME);
    assert_non_null(entry);
    assert_ptr_not_equal(entry, d);
    assert_memory_equal(entry, d, sizeof *d);

    weft__plugin_close(&p);
    assert_null(p);
}

static void loader_init_fail_init(void **state)
{
    char path[PATH_MAX], err[ERRLEN] = "";
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, tp(path, sizeof path, "init_fail"), NULL, 0,
                                       err, sizeof err),
                     0);
    weft__host_t host;
    weft__host_init(&host, p->desc.name, 0, "/");
    void *st = NULL;
    char msg[256] = "";
    assert_int_not_equal(p->desc.init(&host.pub, NULL, &st, msg, sizeof msg), 0);
    assert_string_equal(msg, "init_fail: refusing on purpose");
    assert_null(st);
    weft__plugin_close(&p);
}

/* echo.c is written in parallel with this test: until it is a real plugin
 * the test is skipped rather than failed. */
static void loader_open_echo(void **state)
{
    char path[PATH_MAX], err[ERRLEN] = "";
    weft__plugin_t *p = NULL;
    int r = weft__plugin_open(&p, "echo", (char *const[]){(char *)test_plugins()}, 1, err,
                              sizeof err);
    if (r == -ENOEXEC && strstr(err, "no symbol")) {
        print_message("echo.so is still a placeholder: %s\n", err);
        skip();
    }
    if (r != 0)
        print_error("%s\n", err);
    assert_int_equal(r, 0);
    assert_string_equal(p->path, tp(path, sizeof path, "echo"));
    assert_string_equal(p->desc.name, "echo");
    assert_int_equal(p->desc.abi_version, WEFT_PLUGIN_ABI_VERSION);
    assert_non_null(p->desc.init);
    assert_non_null(p->desc.process_one);
    const weft_plugin_t *entry = dlsym(p->dl, WEFT_PLUGIN_ENTRY_NAME);
    assert_non_null(entry);
    assert_memory_equal(entry, &p->desc, sizeof p->desc);
    for (size_t k = 0; k < p->desc.n_args; k++)
        assert_string_equal(p->desc.args[k].name, entry->args[k].name);
    weft__plugin_close(&p);
}

/* ---- finding by name --------------------------------------------------- */

static void loader_bare_name(void **state)
{
    char tmp[PATH_MAX], path[PATH_MAX], err[ERRLEN] = "";
    mktmp(tmp, sizeof tmp);
    char *dirs[] = {"/nonexistent-weft-dir", tmp, (char *)test_plugins()};
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, "init_fail", dirs, 3, err, sizeof err), 0);
    assert_string_equal(p->path, tp(path, sizeof path, "init_fail"));
    assert_string_equal(p->desc.name, "init_fail");
    weft__plugin_close(&p);

    /* A trailing '/' on a folder does not double up. */
    char withslash[PATH_MAX + 1];
    snprintf(withslash, sizeof withslash, "%s/", test_plugins());
    char *dirs2[] = {withslash};
    assert_int_equal(weft__plugin_open(&p, "init_fail", dirs2, 1, err, sizeof err), 0);
    assert_string_equal(p->path, path);
    weft__plugin_close(&p);
    rmtree(tmp);
}

static void loader_first_match_wins(void **state)
{
    char tmp[PATH_MAX], path[PATH_MAX], copy[PATH_MAX + 32], err[ERRLEN] = "";
    mktmp(tmp, sizeof tmp);
    /* A good plugin under a broken one's name, earlier in the order. */
    snprintf(copy, sizeof copy, "%s/no_process.so", tmp);
    copy_file(tp(path, sizeof path, "init_fail"), copy);
    /* Not a regular file: passed over, not loaded. */
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/init_fail.so", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);

    char *dirs[] = {tmp, (char *)test_plugins()};
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, "no_process", dirs, 2, err, sizeof err), 0);
    assert_string_equal(p->path, copy);
    assert_string_equal(p->desc.name, "init_fail");
    weft__plugin_close(&p);

    assert_int_equal(weft__plugin_open(&p, "init_fail", dirs, 2, err, sizeof err), 0);
    assert_string_equal(p->path, path);
    weft__plugin_close(&p);
    rmtree(tmp);
}

static void loader_not_found(void **state)
{
    char err[ERRLEN] = "";
    char *dirs[] = {"/nonexistent-a", "/nonexistent-b", (char *)test_plugins()};
    weft__plugin_t *p = (weft__plugin_t *)&p;
    assert_int_equal(weft__plugin_open(&p, "nosuch", dirs, 3, err, sizeof err), -ENOENT);
    assert_null(p);
    assert_contains(err, "nosuch.so");
    assert_contains(err, "/nonexistent-a");
    assert_contains(err, "/nonexistent-b");
    assert_contains(err, test_plugins());
    assert_contains(err, "(set WEFT_PLUGIN_PATH or give a path)");

    /* No folders at all. */
    assert_int_equal(weft__plugin_open(&p, "nosuch", NULL, 0, err, sizeof err), -ENOENT);
    assert_contains(err, "WEFT_PLUGIN_PATH");

    /* A short or absent message buffer is safe. */
    char small[12];
    memset(small, 'x', sizeof small);
    assert_int_equal(weft__plugin_open(&p, "nosuch", dirs, 3, small, sizeof small),
                     -ENOENT);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(weft__plugin_open(&p, "nosuch", dirs, 3, NULL, 0), -ENOENT);
    assert_int_equal(weft__plugin_open(&p, "init_fail", dirs, 3, NULL, 0), 0);
    weft__plugin_close(&p);
}

static void loader_path_not_found(void **state)
{
    char err[ERRLEN] = "";
    weft__plugin_t *p = NULL;
    assert_int_equal(
        weft__plugin_open(&p, "/nonexistent-weft-dir/x.so", NULL, 0, err, sizeof err),
        -ENOENT);
    assert_null(p);
    assert_contains(err, "/nonexistent-weft-dir/x.so");

    /* A folder is not a plugin. */
    assert_int_equal(weft__plugin_open(&p, test_plugins(), NULL, 0, err, sizeof err),
                     -ENOEXEC);
    assert_contains(err, "not a regular file");
}

static void loader_cwd_not_searched(void **state)
{
    char old[PATH_MAX], path[PATH_MAX], err[ERRLEN] = "";
    assert_non_null(getcwd(old, sizeof old));

    /* The folder holding the plugin is the cwd, but not in dirs. */
    assert_int_equal(chdir(test_plugins()), 0);
    char *dirs[] = {"/nonexistent-weft-dir"};
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, "init_fail", dirs, 1, err, sizeof err),
                     -ENOENT);
    assert_null(p);

    /* The real search list does not reach the cwd either, even with an
     * empty WEFT_PLUGIN_PATH. */
    char tmp[PATH_MAX], copy[PATH_MAX + 32];
    mktmp(tmp, sizeof tmp);
    snprintf(copy, sizeof copy, "%s/cwd_only.so", tmp);
    copy_file(tp(path, sizeof path, "init_fail"), copy);
    assert_int_equal(chdir(tmp), 0);
    char **found = NULL;
    size_t n = 0;
    /* Empty elements, which a shell would take as the cwd, included. */
    const char *envs[] = {"", ":", "::", ":/nonexistent-weft-dir:"};
    for (size_t k = 0; k < sizeof envs / sizeof envs[0]; k++) {
        assert_int_equal(setenv("WEFT_PLUGIN_PATH", envs[k], 1), 0);
        assert_int_equal(weft__plugin_dirs(NULL, "::", &found, &n), 0);
        for (size_t i = 0; i < n; i++) {
            assert_string_not_equal(found[i], "");
            assert_string_not_equal(found[i], ".");
            assert_string_not_equal(found[i], tmp);
        }
        assert_int_equal(weft__plugin_open(&p, "cwd_only", found, n, err, sizeof err),
                         -ENOENT);
        if (k + 1 < sizeof envs / sizeof envs[0])
            free_dirs(found, n);
    }
    assert_int_equal(setenv("WEFT_PLUGIN_PATH", "", 1), 0);
    /* While "./cwd_only.so", a path, is the explicit way to load it. */
    assert_int_equal(weft__plugin_open(&p, "./cwd_only.so", NULL, 0, err, sizeof err), 0);
    weft__plugin_close(&p);
    free_dirs(found, n);

    assert_int_equal(chdir(old), 0);
    rmtree(tmp);
}

/* ---- the search list --------------------------------------------------- */

/* EXE_FOLDER/sub: the folders the loader derives from the executable. */
static void exe_plugins_dir(char *buf, size_t size, const char *sub)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(buf, size, "%s/%s", exe, sub);
}

/* The built-in folders: the install folder found from the executable, the
 * build tree's plugins/ beside the executable, then the install folder (the
 * binary's own plugins first: a build tree never loads an older install). */
#define N_BUILTIN 3

static void loader_dirs_order(void **state)
{
    char exe_plugins[PATH_MAX + 16], exe_install[PATH_MAX + 64];
    exe_plugins_dir(exe_plugins, sizeof exe_plugins, "plugins");
    exe_plugins_dir(exe_install, sizeof exe_install, WEFT_PLUGINDIR_FROM_BINDIR);

    assert_int_equal(setenv("WEFT_PLUGIN_PATH", ":/env/a::/env/b:", 1), 0);
    char **d = NULL;
    size_t n = 0;
    assert_int_equal(weft__plugin_dirs("/cfg", "rel:/abs::sub/dir", &d, &n), 0);
    const char *want[] = {"/cfg/rel",     "/abs",      "/cfg/sub/dir",
                          "/cfg",         "/env/a",    "/env/b",
                          exe_install,    exe_plugins, WEFT_PLUGINDIR};
    for (size_t i = 0; i < n; i++)
        print_message("dir %zu: %s\n", i, d[i]);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(d[i], want[i]);
    free_dirs(d, n);

    /* No config: only the environment and the built-in folders. */
    assert_int_equal(unsetenv("WEFT_PLUGIN_PATH"), 0);
    assert_int_equal(weft__plugin_dirs(NULL, NULL, &d, &n), 0);
    assert_int_equal(n, N_BUILTIN);
    assert_string_equal(d[0], exe_install);
    assert_string_equal(d[1], exe_plugins);
    assert_string_equal(d[2], WEFT_PLUGINDIR);
    free_dirs(d, n);

    /* A repeated folder is searched once. */
    assert_int_equal(setenv("WEFT_PLUGIN_PATH", "/cfg:/cfg", 1), 0);
    assert_int_equal(weft__plugin_dirs("/cfg", "/cfg", &d, &n), 0);
    assert_int_equal(n, 1 + N_BUILTIN);
    assert_string_equal(d[0], "/cfg");
    free_dirs(d, n);

    assert_int_equal(setenv("WEFT_PLUGIN_PATH", "", 1), 0);
}

static void loader_dirs_empty_elements(void **state)
{
    const char *values[] = {"::", ":", "", ":::"};
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        assert_int_equal(setenv("WEFT_PLUGIN_PATH", values[v], 1), 0);
        char **d = NULL;
        size_t n = 0;
        assert_int_equal(weft__plugin_dirs(NULL, "::", &d, &n), 0);
        assert_int_equal(n, N_BUILTIN); /* nothing from the empty elements */
        for (size_t i = 0; i < n; i++) {
            assert_string_not_equal(d[i], "");
            assert_string_not_equal(d[i], ".");
        }
        free_dirs(d, n);
    }
    assert_int_equal(setenv("WEFT_PLUGIN_PATH", "", 1), 0);
}

/* ---- broken plugins ---------------------------------------------------- */

static void loader_no_symbol(void **state)
{
    const char *err = expect_noexec("no_symbol");
    assert_contains(err, "no symbol weft_plugin_entry (is it a weft plugin?)");
    /* The dynamic linker's name for the file is not ours to show. */
    assert_null(strstr(err, "/proc/self/fd"));
}

static void loader_bad_abi(void **state)
{
    const char *err = expect_noexec("bad_abi");
    assert_contains(err, "plugin ABI version 999, this weft speaks 1");
}

static void loader_small_struct(void **state)
{
    const char *err = expect_noexec("small_struct");
    assert_contains(err, "struct_size 16");
}

static void loader_no_process(void **state)
{
    const char *err = expect_noexec("no_process");
    assert_contains(err, "process_one");
}

static void loader_bad_schema(void **state)
{
    const char *err = expect_noexec("bad_schema");
    assert_contains(err, "duplicate name \"size\"");
}

/* ---- optional members appended after ABI 1 ------------------------------ */

/* A plugin built before process_range existed loads, and the runner's copy
 * reads the member as NULL whatever the bytes past its struct hold. */
static void loader_old_struct(void **state)
{
    char path[PATH_MAX], err[ERRLEN] = "";
    weft__plugin_t *p = NULL;
    int r = weft__plugin_open(&p, tp(path, sizeof path, "old_struct"), NULL, 0, err,
                              sizeof err);
    if (r != 0)
        print_error("%s\n", err);
    assert_int_equal(r, 0);
    const weft_plugin_t *d = &p->desc;
    assert_int_equal(d->struct_size, offsetof(weft_plugin_t, process_range));
    assert_string_equal(d->name, "old_struct");
    assert_non_null(d->process_one);
    assert_false(WEFT_PLUGIN_HAS(d, process_range));
    assert_true(WEFT_PLUGIN_HAS(d, row_spec));
    assert_null(d->process_range);

    /* The plugin's bytes past struct_size do hold a pointer: not read. */
    const weft_plugin_t *entry = dlsym(p->dl, WEFT_PLUGIN_ENTRY_NAME);
    assert_non_null(entry);
    assert_non_null(entry->process_range);
    assert_memory_equal(entry, d, offsetof(weft_plugin_t, process_range));

    /* And it still works as it did. */
    char msg[256] = "";
    weft_result_t res = {.msg = msg, .msg_size = sizeof msg};
    weft_item_t item = {.index = 3, .number = 13};
    assert_int_equal(d->init(NULL, NULL, NULL, msg, sizeof msg), 0);
    assert_int_equal(d->process_one(NULL, NULL, &item, &res), 0);
    assert_int_equal(res.kind, WEFT_VALUE_INT);
    assert_int_equal(res.value.i, 13);
    weft__plugin_close(&p);
}

/* The shipped plugins, built by this tree (WEFT_PLUGINS). */
static weft__plugin_t *open_shipped(const char *name)
{
    const char *dir = getenv("WEFT_PLUGINS");
    assert_non_null(dir);
    char path[PATH_MAX], err[ERRLEN] = "";
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    weft__plugin_t *p = NULL;
    int r = weft__plugin_open(&p, path, NULL, 0, err, sizeof err);
    if (r != 0)
        print_error("%s\n", err);
    assert_int_equal(r, 0);
    return p;
}

/* sum of i^4 for i in [1, n]: n(n+1)(2n+1)(3n^2+3n-1)/30 */
static u128 pow4_closed(u128 n)
{
    return n * (n + 1) * (2 * n + 1) * (3 * n * n + 3 * n - 1) / 30;
}

/* One pow4 job on one worker, driven by hand: each step is a range
 * (count > 0, through process_range) or a single number (count == 0,
 * through process_one).  Returns finish's status; its text in out. */
typedef struct pow4_step {
    int64_t first;
    size_t count;
    int want; /* the call's status: 0 or nonzero (1) */
} pow4_step_t;

static int pow4_job(const weft_plugin_t *d, const pow4_step_t *steps, size_t n_steps,
                    char *out, size_t out_size)
{
    weft__host_t host;
    weft__host_init(&host, d->name, 0, "/");
    void *st = NULL, *ctx = NULL;
    char msg[256] = "";
    assert_int_equal(d->init(&host.pub, NULL, &st, msg, sizeof msg), 0);
    assert_int_equal(d->worker_init(st, 0, 1, &ctx, msg, sizeof msg), 0);
    uint64_t index = 0;
    for (size_t k = 0; k < n_steps; k++) {
        int r;
        msg[0] = '\0';
        if (steps[k].count > 0) {
            r = d->process_range(st, ctx, index, steps[k].first, steps[k].count, msg,
                                 sizeof msg);
            index += steps[k].count;
        } else {
            weft_result_t res = {.msg = msg, .msg_size = sizeof msg};
            weft_item_t item = {.index = index++, .number = steps[k].first};
            r = d->process_one(st, ctx, &item, &res);
        }
        if ((r != 0) != steps[k].want)
            print_error("step %zu: status %d, message \"%s\"\n", k, r, msg);
        assert_int_equal(r != 0, steps[k].want);
        if (r != 0)
            snprintf(out, out_size, "%s", msg); /* the last failure's message */
    }
    d->worker_fini(st, 0, ctx);
    weft_counts_t counts = {.total = index, .ok = index};
    weft_result_t res = {.msg = msg, .msg_size = sizeof msg};
    msg[0] = '\0';
    int r = d->finish(st, &counts, &res);
    if (r == 0) {
        assert_int_equal(res.kind, WEFT_VALUE_JSON);
        snprintf(out, out_size, "%.*s", (int)res.value.s.len, res.value.s.ptr);
    } else {
        snprintf(out, out_size, "%s", msg);
    }
    d->destroy(st);
    return r;
}

/* pow4 (built against this header) has process_range, and it sums exactly
 * what process_one would; a failed range leaves no trace. */
static void loader_pow4_process_range(void **state)
{
    weft__plugin_t *p = open_shipped("pow4");
    const weft_plugin_t *d = &p->desc;
    assert_int_equal(d->struct_size, sizeof(weft_plugin_t));
    assert_true(WEFT_PLUGIN_HAS(d, process_range));
    assert_non_null(d->process_range);
    char got[256], want[64];

    /* -1000 ... 1000 in one range, in uneven ranges, and one by one. */
    u128_to_decimal(2 * pow4_closed(1000), want);
    assert_int_equal(pow4_job(d, (pow4_step_t[]){{-1000, 2001, 0}}, 1, got, sizeof got),
                     0);
    assert_string_equal(got, want);
    pow4_step_t split[] = {
        {-1000, 1, 0}, {-999, 998, 0}, {-1, 0, 0}, {0, 0, 0}, {1, 1000, 0}};
    assert_int_equal(pow4_job(d, split, 5, got, sizeof got), 0);
    assert_string_equal(got, want);
    pow4_step_t *one = calloc(2001, sizeof *one);
    assert_non_null(one);
    for (int k = 0; k < 2001; k++)
        one[k] = (pow4_step_t){-1000 + k, 0, 0};
    assert_int_equal(pow4_job(d, one, 2001, got, sizeof got), 0);
    assert_string_equal(got, want);
    free(one);

    /* 0 ... 9999999 (configs/pow4.ini's total), in two ranges. */
    u128_to_decimal(pow4_closed(9999999), want);
    assert_string_equal(want, "19999995000000333333333333333000000");
    pow4_step_t big[] = {{0, 6000000, 0}, {6000000, 4000000, 0}};
    assert_int_equal(pow4_job(d, big, 2, got, sizeof got), 0);
    assert_string_equal(got, want);

    /* A range holding a number past 2^32 - 1 fails whole, naming the first
     * bad number, and adds nothing: only 0 ... 9 are in the total. */
    const int64_t lim = 0xFFFFFFFF;
    pow4_step_t bad[] = {{lim - 5, 10, 1}, {0, 10, 0}};
    assert_int_equal(pow4_job(d, bad, 2, got, sizeof got), 0);
    assert_string_equal(got, "15333");
    assert_int_equal(pow4_job(d, bad, 1, got, sizeof got), 0);
    assert_string_equal(got, "0");
    /* The message is process_one's for that number. */
    char msg[256];
    assert_int_not_equal(d->process_range(NULL, NULL, 0, lim - 5, 10, msg, sizeof msg),
                         0);
    assert_string_equal(msg, "4294967296^4 does not fit in 128 bits");
    assert_int_not_equal(d->process_range(NULL, NULL, 0, -lim - 1, 3, msg, sizeof msg),
                         0);
    assert_string_equal(msg, "-4294967296^4 does not fit in 128 bits");
    assert_int_not_equal(d->process_range(NULL, NULL, 0, INT64_MIN, 1, msg, sizeof msg),
                         0);
    assert_int_not_equal(
        d->process_range(NULL, NULL, 0, INT64_MAX, SIZE_MAX, msg, sizeof msg), 0);
    assert_string_equal(msg, "9223372036854775807^4 does not fit in 128 bits");
    assert_int_not_equal(d->process_range(NULL, NULL, 0, 0, SIZE_MAX, msg, sizeof msg),
                         0);
    assert_string_equal(msg, "4294967296^4 does not fit in 128 bits");
    /* +-(2^32 - 1) themselves are good items, by either callback (though
     * their two fourth powers wrap the sum, which finish reports). */
    pow4_step_t edge[] = {{-lim, 1, 0}, {lim, 0, 0}};
    assert_int_not_equal(pow4_job(d, edge, 2, got, sizeof got), 0);
    assert_string_equal(got, "the sum of i^4 overflows 128 bits");

    /* A wrapping sum is no failed item, but finish reports it: inside one
     * range, and when a range's sum is added to the worker's. */
    pow4_step_t wrap_in[] = {{lim - 1, 2, 0}};
    assert_int_not_equal(pow4_job(d, wrap_in, 1, got, sizeof got), 0);
    assert_string_equal(got, "the sum of i^4 overflows 128 bits");
    pow4_step_t wrap_add[] = {{lim, 1, 0}, {lim, 1, 0}};
    assert_int_not_equal(pow4_job(d, wrap_add, 2, got, sizeof got), 0);
    assert_string_equal(got, "the sum of i^4 overflows 128 bits");
    /* One fourth power at the top does not wrap: (2^32 - 1)^4 exactly. */
    u128 m = lim;
    u128_to_decimal(m * m * m * m, want);
    assert_int_equal(pow4_job(d, (pow4_step_t[]){{lim, 1, 0}}, 1, got, sizeof got), 0);
    assert_string_equal(got, want);
    weft__plugin_close(&p);
}

static void loader_not_elf(void **state)
{
    char tmp[PATH_MAX], path[PATH_MAX + 16], err[ERRLEN] = "";
    mktmp(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/x.so", tmp);
    write_file(path, "this is not an ELF file, just some text long enough\n");

    /* What dlopen itself says about the file. */
    assert_null(dlopen(path, RTLD_NOW | RTLD_LOCAL));
    char want[ERRLEN];
    snprintf(want, sizeof want, "%s", dlerror());

    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, path, NULL, 0, err, sizeof err), -ENOEXEC);
    assert_null(p);
    assert_contains(err, want);
    assert_null(strstr(err, "/proc/self/fd"));

    /* Found by name, it fails the same way. */
    char *dirs[] = {tmp};
    assert_int_equal(weft__plugin_open(&p, "x", dirs, 1, err, sizeof err), -ENOEXEC);
    assert_contains(err, want);
    rmtree(tmp);
}

static void loader_invalid_names(void **state)
{
    char err[ERRLEN];
    char *dirs[] = {(char *)test_plugins()};
    const char *bad[] = {"",          ".",           "..",  "init_fail.so", "Init_fail",
                         "init fail", "init_fail\\", "in*", "~x",           "é"};
    weft__plugin_t *p = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(weft__plugin_open(&p, bad[i], dirs, 1, err, sizeof err),
                         -EINVAL);
        assert_null(p);
        assert_contains(err, "invalid plugin name");
    }
    /* Dashes and digits are fine (not found here, but searched for). */
    assert_int_equal(weft__plugin_open(&p, "my-plugin2", dirs, 1, err, sizeof err),
                     -ENOENT);

    /* "../x" has a '/': it is a path, taken as is against the cwd, never
     * joined with a search folder. */
    char old[PATH_MAX], tmp[PATH_MAX], sub[PATH_MAX + 8];
    assert_non_null(getcwd(old, sizeof old));
    mktmp(tmp, sizeof tmp);
    snprintf(sub, sizeof sub, "%s/sub", tmp);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(chdir(sub), 0);
    assert_int_equal(weft__plugin_open(&p, "../x", dirs, 1, err, sizeof err), -ENOENT);
    assert_null(p);
    assert_contains(err, "../x");
    assert_int_equal(chdir(old), 0);
    rmtree(tmp);
}

/* ---- safe loading ------------------------------------------------------ */

static void mkdir_mode(const char *path, mode_t mode)
{
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(chmod(path, mode), 0); /* exact, whatever the umask */
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Opens path and expects -EPERM with a message containing needle. */
static void expect_refused(const char *path, const char *needle)
{
    char err[ERRLEN] = "";
    weft__plugin_t *p = (weft__plugin_t *)&p;
    int r = weft__plugin_open(&p, path, NULL, 0, err, sizeof err);
    if (r != -EPERM)
        print_error("%s: got %d: %s\n", path, r, err);
    assert_int_equal(r, -EPERM);
    assert_null(p);
    assert_contains(err, "refusing to load");
    assert_contains(err, needle);
}

static void loader_refuses_writable_folder(void **state)
{
    char tmp[PATH_MAX], dir[PATH_MAX + 8], so[PATH_MAX + 32], marker[PATH_MAX + 16];
    char src[PATH_MAX], err[ERRLEN] = "", want[3 * PATH_MAX];
    mktmp(tmp, sizeof tmp);
    snprintf(dir, sizeof dir, "%s/ww", tmp);
    snprintf(so, sizeof so, "%s/ctor_marker.so", dir);
    snprintf(marker, sizeof marker, "%s/marker", tmp);
    mkdir_mode(dir, 0777);
    copy_file(tp(src, sizeof src, "ctor_marker"), so);
    assert_int_equal(setenv("WEFT_CTOR_MARKER", marker, 1), 0);

    /* By path and by name: refused, and none of its code ran. */
    snprintf(want, sizeof want,
             "%s: refusing to load: the folder %s is writable by others (mode 0777)", so,
             dir);
    expect_refused(so, want);
    char *dirs[] = {dir};
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, "ctor_marker", dirs, 1, err, sizeof err),
                     -EPERM);
    assert_contains(err, want);
    assert_false(exists(marker));

    /* Sticky is no excuse for the plugin's own folder. */
    assert_int_equal(chmod(dir, 01777), 0);
    expect_refused(so, "is writable by others (mode 1777)");
    /* Group-writable is refused too. */
    assert_int_equal(chmod(dir, 0770), 0);
    expect_refused(so, "is writable by its group (mode 0770)");
    assert_false(exists(marker));

    /* The same file from a safe folder loads, and its constructor runs:
     * the marker test can fail. */
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(weft__plugin_open(&p, so, NULL, 0, err, sizeof err), 0);
    assert_string_equal(p->desc.name, "ctor_marker");
    assert_true(exists(marker));
    weft__plugin_close(&p);

    assert_int_equal(unsetenv("WEFT_CTOR_MARKER"), 0);
    rmtree(tmp);
}

static void loader_sticky_parent(void **state)
{
    char tmp[PATH_MAX], top[PATH_MAX + 8], inner[PATH_MAX + 16], so[PATH_MAX + 48];
    char src[PATH_MAX], err[ERRLEN] = "", want[3 * PATH_MAX];
    mktmp(tmp, sizeof tmp);
    snprintf(top, sizeof top, "%s/top", tmp);
    snprintf(inner, sizeof inner, "%s/inner", top);
    snprintf(so, sizeof so, "%s/init_fail.so", inner);
    mkdir_mode(top, 01777);
    mkdir_mode(inner, 0755);
    copy_file(tp(src, sizeof src, "init_fail"), so);

    /* A sticky world-writable parent, like /tmp: fine. */
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, so, NULL, 0, err, sizeof err), 0);
    weft__plugin_close(&p);

    /* Without the sticky bit anyone could rename inner away: refused, and
     * the message names the parent. */
    assert_int_equal(chmod(top, 0777), 0);
    snprintf(want, sizeof want, "the folder %s is writable by others (mode 0777)", top);
    expect_refused(so, want);
    rmtree(tmp);
}

static void loader_refuses_writable_file(void **state)
{
    char tmp[PATH_MAX], so[PATH_MAX + 32], src[PATH_MAX], err[ERRLEN] = "",
                                                          want[3 * PATH_MAX];
    mktmp(tmp, sizeof tmp);
    snprintf(so, sizeof so, "%s/init_fail.so", tmp);
    copy_file(tp(src, sizeof src, "init_fail"), so);

    assert_int_equal(chmod(so, 0664), 0);
    snprintf(want, sizeof want,
             "%s: refusing to load: the file is writable by its group (mode 0664)", so);
    expect_refused(so, want);
    assert_int_equal(chmod(so, 0646), 0);
    expect_refused(so, "the file is writable by others (mode 0646)");

    assert_int_equal(chmod(so, 0644), 0);
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, so, NULL, 0, err, sizeof err), 0);
    weft__plugin_close(&p);
    rmtree(tmp);
}

static void loader_refuses_foreign_owner(void **state)
{
    if (geteuid() != 0) {
        print_message("not root: cannot give a file to another user\n");
        skip();
    }
    char tmp[PATH_MAX], dir[PATH_MAX + 8], so[PATH_MAX + 32], src[PATH_MAX];
    char err[ERRLEN] = "", want[3 * PATH_MAX];
    mktmp(tmp, sizeof tmp);
    snprintf(dir, sizeof dir, "%s/d", tmp);
    snprintf(so, sizeof so, "%s/init_fail.so", dir);
    mkdir_mode(dir, 0755);
    copy_file(tp(src, sizeof src, "init_fail"), so);

    assert_int_equal(chown(so, 65534, 65534), 0);
    snprintf(want, sizeof want,
             "%s: refusing to load: the file is owned by uid 65534, not you (0) or root",
             so);
    expect_refused(so, want);
    assert_int_equal(chown(so, 0, 0), 0);

    assert_int_equal(chown(dir, 65534, 65534), 0);
    snprintf(want, sizeof want,
             "the folder %s is owned by uid 65534, not you (0) or root", dir);
    expect_refused(so, want);
    assert_int_equal(chown(dir, 0, 0), 0);

    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, so, NULL, 0, err, sizeof err), 0);
    weft__plugin_close(&p);
    rmtree(tmp);
}

static void loader_unsafe_escape_hatch(void **state)
{
    char tmp[PATH_MAX], so[PATH_MAX + 32], src[PATH_MAX], marker[PATH_MAX + 16];
    char err[ERRLEN] = "";
    mktmp(tmp, sizeof tmp);
    assert_int_equal(chmod(tmp, 0777), 0);
    snprintf(so, sizeof so, "%s/ctor_marker.so", tmp);
    snprintf(marker, sizeof marker, "%s/marker", tmp);
    copy_file(tp(src, sizeof src, "ctor_marker"), so);
    assert_int_equal(chmod(so, 0666), 0);
    assert_int_equal(setenv("WEFT_CTOR_MARKER", marker, 1), 0);

    /* Only "1" opens the hatch. */
    assert_int_equal(setenv("WEFT_UNSAFE_PLUGINS", "0", 1), 0);
    expect_refused(so, "writable by others");
    assert_false(exists(marker));

    assert_int_equal(setenv("WEFT_UNSAFE_PLUGINS", "1", 1), 0);
    weft__plugin_t *p = NULL;
    int r = weft__plugin_open(&p, so, NULL, 0, err, sizeof err);
    assert_int_equal(unsetenv("WEFT_UNSAFE_PLUGINS"), 0);
    assert_int_equal(r, 0);
    assert_true(exists(marker));
    weft__plugin_close(&p);
    assert_int_equal(unsetenv("WEFT_CTOR_MARKER"), 0);
    rmtree(tmp);
}

static void loader_symlink_resolved(void **state)
{
    char tmp[PATH_MAX], real[PATH_MAX + 8], so[PATH_MAX + 32], link[PATH_MAX + 16];
    char src[PATH_MAX], err[ERRLEN] = "", want[3 * PATH_MAX];
    mktmp(tmp, sizeof tmp);
    snprintf(real, sizeof real, "%s/real", tmp);
    snprintf(so, sizeof so, "%s/init_fail.so", real);
    snprintf(link, sizeof link, "%s/link.so", tmp);
    mkdir_mode(real, 0755);
    copy_file(tp(src, sizeof src, "init_fail"), so);
    assert_int_equal(symlink(so, link), 0);

    /* A symlink (as in a build tree) is followed; the path is the target. */
    weft__plugin_t *p = NULL;
    assert_int_equal(weft__plugin_open(&p, link, NULL, 0, err, sizeof err), 0);
    assert_string_equal(p->path, so);
    weft__plugin_close(&p);
    char *dirs[] = {tmp};
    assert_int_equal(weft__plugin_open(&p, "link", dirs, 1, err, sizeof err), 0);
    assert_string_equal(p->path, so);
    weft__plugin_close(&p);

    /* The target's folders are what is checked, not the link's. */
    assert_int_equal(chmod(real, 0777), 0);
    snprintf(want, sizeof want, "%s: refusing to load: the folder %s is writable", so,
             real);
    expect_refused(link, want);
    rmtree(tmp);
}

/* The inode mapped at addr, from /proc/self/maps (0: none). */
static unsigned long maps_inode(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[4096];
    unsigned long found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, ino;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) == 3 &&
            lo <= (uintptr_t)addr && (uintptr_t)addr < hi) {
            found = ino;
            break;
        }
    }
    fclose(f);
    return found;
}

static uint64_t file_xxh3(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    XXH3_state_t *h = XXH3_createState();
    assert_non_null(h);
    XXH3_64bits_reset(h);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        XXH3_64bits_update(h, buf, n);
    fclose(f);
    uint64_t v = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return v;
}

static char swap_from[PATH_MAX + 32], swap_to[PATH_MAX + 32];
static int swaps;

/* Between the checks and dlopen: another plugin takes the checked path. */
static void swap_hook(const char *real_path)
{
    assert_string_equal(real_path, swap_to);
    assert_int_equal(rename(swap_from, swap_to), 0);
    swaps++;
}

static void loader_swap_after_check(void **state)
{
    char tmp[PATH_MAX], src[PATH_MAX], err[ERRLEN] = "";
    mktmp(tmp, sizeof tmp);
    snprintf(swap_to, sizeof swap_to, "%s/plugin.so", tmp);
    snprintf(swap_from, sizeof swap_from, "%s/other.so", tmp);
    copy_file(tp(src, sizeof src, "init_fail"), swap_to);
    copy_file(tp(src, sizeof src, "echo"), swap_from);
    struct stat checked;
    assert_int_equal(stat(swap_to, &checked), 0);
    uint64_t checked_hash = file_xxh3(swap_to);

    weft__plugin_open_test_hook = swap_hook;
    weft__plugin_t *p = NULL;
    int r = weft__plugin_open(&p, swap_to, NULL, 0, err, sizeof err);
    weft__plugin_open_test_hook = NULL;
    assert_int_equal(r, 0);
    assert_int_equal(swaps, 1);

    /* The path now holds echo... */
    struct stat now;
    assert_int_equal(stat(swap_to, &now), 0);
    assert_true(now.st_ino != checked.st_ino);
    void *direct = dlopen(swap_to, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(direct);
    const weft_plugin_t *e = dlsym(direct, WEFT_PLUGIN_ENTRY_NAME);
    assert_non_null(e);
    assert_string_equal(e->name, "echo");
    dlclose(direct);

    /* ...but what was loaded is the file that was checked, mapped from
     * its inode, with its hash. */
    assert_string_equal(p->desc.name, "init_fail");
    const weft_plugin_t *entry = dlsym(p->dl, WEFT_PLUGIN_ENTRY_NAME);
    assert_non_null(entry);
    assert_true(maps_inode(entry) == (unsigned long)checked.st_ino);
    assert_true(p->file_hash == checked_hash);
    assert_string_equal(p->path, swap_to);
    weft__plugin_close(&p);
    rmtree(tmp);
}

static void loader_file_hash(void **state)
{
    char a[PATH_MAX], b[PATH_MAX], err[ERRLEN] = "";
    weft__plugin_t *pa = NULL, *pb = NULL, *pa2 = NULL;
    assert_int_equal(
        weft__plugin_open(&pa, tp(a, sizeof a, "init_fail"), NULL, 0, err, sizeof err),
        0);
    assert_int_equal(
        weft__plugin_open(&pb, tp(b, sizeof b, "echo"), NULL, 0, err, sizeof err), 0);
    /* The same file twice at once: one object, the same hash. */
    assert_int_equal(weft__plugin_open(&pa2, a, NULL, 0, err, sizeof err), 0);
    assert_true(pa->file_hash == file_xxh3(a));
    assert_true(pb->file_hash == file_xxh3(b));
    assert_true(pa->file_hash != pb->file_hash);
    assert_true(pa2->file_hash == pa->file_hash);
    assert_string_equal(pa2->desc.name, "init_fail");
    assert_string_equal(pb->desc.name, "echo");
    weft__plugin_close(&pa);
    weft__plugin_close(&pb);
    weft__plugin_close(&pa2);
}

/* A plugin that stays loaded after its fd closed leaves its /proc/self/fd
 * name behind; the next plugin given that fd number must still be itself. */
static void loader_stale_fd_name(void **state)
{
    char a[PATH_MAX], b[PATH_MAX], err[ERRLEN] = "", name[64];
    weft__plugin_t *pa = NULL, *pb = NULL;
    assert_int_equal(
        weft__plugin_open(&pa, tp(a, sizeof a, "bad_schema"), NULL, 0, err, sizeof err),
        -ENOEXEC);
    /* fail_some stays resident: NODELETE, through its fd name. */
    assert_int_equal(
        weft__plugin_open(&pa, tp(a, sizeof a, "fail_some"), NULL, 0, err, sizeof err),
        0);
    int fd = pa->fd;
    snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
    void *pin = dlopen(name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    assert_non_null(pin);
    dlclose(pin);
    weft__plugin_close(&pa);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* the number is free again */

    /* The same steps for a file in the same folder reuse that number. */
    assert_int_equal(
        weft__plugin_open(&pb, tp(b, sizeof b, "echo"), NULL, 0, err, sizeof err), 0);
    assert_string_equal(pb->desc.name, "echo");
    const weft_plugin_t *entry = dlsym(pb->dl, WEFT_PLUGIN_ENTRY_NAME);
    struct stat st;
    assert_int_equal(stat(b, &st), 0);
    assert_true(maps_inode(entry) == (unsigned long)st.st_ino);
    weft__plugin_close(&pb);
}

static void loader_close_null(void **state)
{
    weft__plugin_t *p = NULL;
    weft__plugin_close(&p);
    weft__plugin_close(NULL);
    assert_null(p);
}

/* ---- descriptor checks on hand-made descriptors ------------------------ */

static int fake_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                     char *msg, size_t msg_size)
{
    return 0;
}

static int fake_process(void *state, void *worker_ctx, const weft_item_t *item,
                        weft_result_t *result)
{
    return 0;
}

static weft_plugin_t good_desc(void)
{
    return (weft_plugin_t){
        WEFT_PLUGIN_HEADER,
        .name = "fake",
        .init = fake_init,
        .process_one = fake_process,
    };
}

static void check_rejects(const weft_plugin_t *e, const char *needle)
{
    char err[ERRLEN] = "";
    weft_plugin_t d;
    memset(&d, 0xFF, sizeof d);
    assert_int_equal(weft__plugin_check(e, &d, "fake.so", err, sizeof err), -ENOEXEC);
    assert_contains(err, "fake.so: ");
    assert_contains(err, needle);
    /* Nothing half-checked is left behind. */
    weft_plugin_t zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&d, &zero, sizeof d);
}

static void check_desc_header(void **state)
{
    char err[ERRLEN];
    weft_plugin_t d;
    weft_plugin_t e = good_desc();
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    assert_memory_equal(&d, &e, sizeof d);

    e.abi_version = 0;
    check_rejects(&e, "plugin ABI version 0, this weft speaks 1");
    e.abi_version = 2;
    check_rejects(&e, "plugin ABI version 2");

    e = good_desc();
    e.struct_size = 8;
    check_rejects(&e, "struct_size 8");
    e.struct_size = (uint32_t)offsetof(weft_plugin_t, destroy);
    check_rejects(&e, "struct_size");
    /* Exactly ABI 1's size is enough. */
    e.struct_size =
        (uint32_t)(offsetof(weft_plugin_t, destroy) + sizeof(void (*)(void *)));
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);

    /* A newer, larger descriptor: only our part is read. */
    struct {
        weft_plugin_t p;
        unsigned char future[64];
    } big;
    memset(&big, 0x5A, sizeof big);
    big.p = good_desc();
    big.p.struct_size = (uint32_t)sizeof big;
    memset(&d, 0, sizeof d);
    assert_int_equal(weft__plugin_check(&big.p, &d, "fake.so", err, sizeof err), 0);
    assert_int_equal(d.struct_size, sizeof big);
    assert_ptr_equal(d.process_one, fake_process);
}

static int fake_range(void *state, void *worker_ctx, uint64_t first_index,
                      int64_t first_number, size_t count, char *msg, size_t msg_size)
{
    return 0;
}

static int fake_row_spec(void *state, weft_row_spec_t *spec, char *msg, size_t msg_size)
{
    return 0;
}

/* The members appended after ABI 1: read only when struct_size holds them
 * whole; otherwise NULL, whatever the bytes past struct_size are. */
static void check_desc_appended(void **state)
{
    char err[ERRLEN];
    weft_plugin_t d;
    weft_plugin_t e = good_desc();
    e.process_range = fake_range;
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    assert_ptr_equal(d.process_range, fake_range);
    assert_true(WEFT_PLUGIN_HAS(&d, process_range));

    /* An older plugin: its struct ends before process_range. */
    e.struct_size = (uint32_t)offsetof(weft_plugin_t, process_range);
    memset(&d, 0xFF, sizeof d);
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    assert_int_equal(d.struct_size, offsetof(weft_plugin_t, process_range));
    assert_false(WEFT_PLUGIN_HAS(&d, process_range));
    assert_null(d.process_range);
    assert_ptr_equal(d.process_one, fake_process);

    /* A struct_size cutting through a pointer does not hand half of it. */
    e.struct_size = (uint32_t)offsetof(weft_plugin_t, process_range) + 4;
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    assert_null(d.process_range);
    e.row_spec = fake_row_spec;
    e.struct_size = (uint32_t)offsetof(weft_plugin_t, row_spec) + 1;
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    assert_null(d.row_spec);
    assert_null(d.process_range);

    /* ABI 1's own size, before row_spec: both NULL. */
    e.struct_size = (uint32_t)offsetof(weft_plugin_t, row_spec);
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    assert_null(d.row_spec);
    assert_null(d.process_range);
}

static void check_desc_required(void **state)
{
    weft_plugin_t e = good_desc();
    e.name = NULL;
    check_rejects(&e, "no name");
    e = good_desc();
    e.name = "";
    check_rejects(&e, "name is empty");
    e = good_desc();
    e.init = NULL;
    check_rejects(&e, "no init");
    e = good_desc();
    e.process_one = NULL;
    check_rejects(&e, "no process_one");
}

static void check_desc_schema(void **state)
{
    char err[ERRLEN];
    weft_plugin_t d;
    weft_arg_spec_t args[3] = {
        {.name = "a", .type = WEFT_ARG_INT, .min = -1, .max = 1},
        {.name = "_b2", .type = WEFT_ARG_PATH},
        {.name = "c_", .type = WEFT_ARG_FLOAT, .min = 2, .max = 2},
    };
    weft_plugin_t e = good_desc();
    e.args = args;
    e.n_args = 3;
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    assert_ptr_equal(d.args, args);
    assert_int_equal(d.n_args, 3);

    /* args NULL is fine only with no args. */
    e.args = NULL;
    e.n_args = 0;
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
    e.n_args = 2;
    check_rejects(&e, "args is NULL");
    e.args = args;
    e.n_args = 100000;
    check_rejects(&e, "n_args 100000");
    e.n_args = 3;

    const char *bad_names[] = {"", "1a", "A", "a-b", "a.b", "a b", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        args[1].name = bad_names[i];
        char needle[64];
        snprintf(needle, sizeof needle, "argument 1: invalid name \"%s\"", bad_names[i]);
        check_rejects(&e, needle);
    }
    args[1].name = NULL;
    check_rejects(&e, "argument 1 has no name");
    args[1].name = "a";
    check_rejects(&e, "argument 1: duplicate name \"a\"");
    args[1].name = "_b2";

    args[2].type = (weft_arg_type_t)0;
    check_rejects(&e, "argument \"c_\": unknown type 0");
    args[2].type = (weft_arg_type_t)(WEFT_ARG_OUTDIR + 1);
    check_rejects(&e, "unknown type");
    args[2].type = WEFT_ARG_FLOAT;

    args[2].min = 3;
    check_rejects(&e, "argument \"c_\": min 3 is above max 2");
    args[2].min = NAN;
    check_rejects(&e, "argument \"c_\": min nan");
    args[2].min = 0;
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", err, sizeof err), 0);
}

static void check_desc_err_buffer(void **state)
{
    weft_plugin_t d;
    weft_plugin_t e = good_desc();
    e.abi_version = 7;
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", NULL, 0), -ENOEXEC);
    char small[5] = "abcd";
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", small, 1), -ENOEXEC);
    assert_string_equal(small, "");
    assert_int_equal(weft__plugin_check(&e, &d, "fake.so", small, sizeof small),
                     -ENOEXEC);
    assert_string_equal(small, "fake");
}

/* ---- the host table ---------------------------------------------------- */

static void host_fields(void **state)
{
    weft__host_t h;
    weft__host_init(&h, "myplug", 1234, "/some/dir");
    const weft_host_t *host = &h.pub;
    assert_ptr_equal((const void *)host, (const void *)&h);
    assert_int_equal(host->struct_size, sizeof(weft_host_t));
    assert_int_equal(host->abi_version, WEFT_PLUGIN_ABI_VERSION);
    assert_true(host->run_seed == 1234);
    assert_string_equal(host->config_dir, "/some/dir");
    assert_true(WEFT_HOST_HAS(host, rng_fill));
    assert_non_null(host->failf);
    assert_non_null(host->logf);
    assert_non_null(host->rng_init);
    assert_non_null(host->rng_u64);
    assert_non_null(host->rng_double);
    assert_non_null(host->rng_fill);
    assert_string_equal(h.plugin_name, "myplug");
}

static void host_failf(void **state)
{
    weft__host_t h;
    weft__host_init(&h, "p", 0, "/");
    char buf[256] = "";
    weft_result_t r = {.msg = buf, .msg_size = sizeof buf};
    assert_int_equal(h.pub.failf(&r, "item %d: %s", 7, "bad"), -1);
    assert_string_equal(buf, "item 7: bad");

    /* Truncated, always terminated. */
    r.msg_size = 8;
    assert_int_equal(h.pub.failf(&r, "%s", "abcdefghijklmnop"), -1);
    assert_string_equal(buf, "abcdefg");

    /* No buffer: nothing written, still -1. */
    r.msg_size = 0;
    memcpy(buf, "keep", 5);
    assert_int_equal(h.pub.failf(&r, "x"), -1);
    assert_string_equal(buf, "keep");
    r.msg = NULL;
    r.msg_size = 256;
    assert_int_equal(h.pub.failf(&r, "x"), -1);
}

static void host_rng(void **state)
{
    weft__host_t h;
    weft__host_init(&h, "p", 99, "/");
    weft_item_t item = {.index = 12, .number = 40};
    weft_rng_t a, b;
    h.pub.rng_init(&h.pub, &a, &item, 5);
    weft__rng_init(&b, 99, 5, 12);
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(h.pub.rng_u64(&a) == weft__rng_u64(&b));
    assert_true(h.pub.rng_double(&a) == weft__rng_double(&b));
    unsigned char x[20], y[20];
    h.pub.rng_fill(&a, x, sizeof x);
    weft__rng_fill(&b, y, sizeof y);
    assert_memory_equal(x, y, sizeof x);
}

/* Runs logf with stderr sent to a file; returns what was written. */
static char *capture_logf(const weft_host_t *host, const char *text)
{
    char tmpl[] = "/tmp/weft-test-logf-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    host->logf(host, "%s", text);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);

    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(fd);
    unlink(tmpl);
    return buf;
}

static void host_logf(void **state)
{
    weft__host_t h;
    weft__host_init(&h, "myplug", 0, "/");
    char *s = capture_logf(&h.pub, "hello 42");
    assert_string_equal(s, "weft: myplug: hello 42\n");
    free(s);

    /* The plugin's own newline is not doubled. */
    s = capture_logf(&h.pub, "bye\n\n");
    assert_string_equal(s, "weft: myplug: bye\n");
    free(s);

    /* Longer than the stack buffer: still one whole line. */
    size_t n = 5000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'z', n);
    big[n] = '\0';
    s = capture_logf(&h.pub, big);
    assert_int_equal(strlen(s), strlen("weft: myplug: ") + n + 1);
    assert_memory_equal(s + strlen("weft: myplug: "), big, n);
    assert_int_equal(s[strlen(s) - 1], '\n');
    free(s);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loader_open_by_path),
        cmocka_unit_test(loader_init_fail_init),
        cmocka_unit_test(loader_open_echo),
        cmocka_unit_test(loader_bare_name),
        cmocka_unit_test(loader_first_match_wins),
        cmocka_unit_test(loader_not_found),
        cmocka_unit_test(loader_path_not_found),
        cmocka_unit_test(loader_cwd_not_searched),
        cmocka_unit_test(loader_dirs_order),
        cmocka_unit_test(loader_dirs_empty_elements),
        cmocka_unit_test(loader_no_symbol),
        cmocka_unit_test(loader_bad_abi),
        cmocka_unit_test(loader_small_struct),
        cmocka_unit_test(loader_no_process),
        cmocka_unit_test(loader_bad_schema),
        cmocka_unit_test(loader_old_struct),
        cmocka_unit_test(loader_pow4_process_range),
        cmocka_unit_test(loader_not_elf),
        cmocka_unit_test(loader_invalid_names),
        cmocka_unit_test(loader_close_null),
        cmocka_unit_test(loader_refuses_writable_folder),
        cmocka_unit_test(loader_sticky_parent),
        cmocka_unit_test(loader_refuses_writable_file),
        cmocka_unit_test(loader_refuses_foreign_owner),
        cmocka_unit_test(loader_unsafe_escape_hatch),
        cmocka_unit_test(loader_symlink_resolved),
        cmocka_unit_test(loader_swap_after_check),
        cmocka_unit_test(loader_file_hash),
        cmocka_unit_test(loader_stale_fd_name),
        cmocka_unit_test(check_desc_header),
        cmocka_unit_test(check_desc_appended),
        cmocka_unit_test(check_desc_required),
        cmocka_unit_test(check_desc_schema),
        cmocka_unit_test(check_desc_err_buffer),
        cmocka_unit_test(host_fields),
        cmocka_unit_test(host_failf),
        cmocka_unit_test(host_rng),
        cmocka_unit_test(host_logf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
