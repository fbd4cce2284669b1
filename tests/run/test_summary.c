/* SPDX-License-Identifier: MIT */
/* core/run/summary.c: the human lines, the JSON file (atomic), CPU times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "summary.h"
#include "test_util.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/weft-summary-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    return remove_tree(dir);
}

static weft__summary_t example(void)
{
    return (weft__summary_t){
        .plugin = "noise_png",
        .threads = 2,
        .isolate = "thread",
        .total = 2000,
        .ok = 1998,
        .failed = 2,
        .wall_s = 0.71,
        .cpu_user_s = 1.3,
        .cpu_sys_s = 0.12,
        .init_s = 0.002,
        .items_s = 0.69,
        .finish_s = 0.0,
        .output_s = 0.01,
        .status = "failed",
        .exit_code = 1,
    };
}

/* What weft__summary_print writes, as a malloc'd string. */
static char *printed(const weft__summary_t *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    weft__summary_print(f, s);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void print_two_lines(void **state)
{
    (void)state;
    weft__summary_t s = example();
    char *t = printed(&s);
    assert_string_equal(t,
                        "weft: noise_png: 1998 ok, 2 failed, 0 not run in 0.710 s "
                        "(2817 items/s, 2 threads)\n"
                        "weft: cpu 1.30 s user, 0.12 s sys; init 0.002 s, items 0.690 s, "
                        "finish 0.000 s, output 0.010 s\n");
    free(t);
}

/* The other outcomes show when not 0; the rate counts only the items this
 * run processed (not the skipped, quarantined or not run ones). */
static void print_other_outcomes(void **state)
{
    (void)state;
    weft__summary_t s = example();
    s.isolate = "process";
    s.ok = 50, s.failed = 10, s.crashed = 3, s.timed_out = 2, s.quarantined = 1;
    s.skipped = 900, s.not_run = 1034, s.wall_s = 0.5;
    s.status = "interrupted", s.exit_code = 130;
    char *t = printed(&s);
    assert_non_null(
        strstr(t, "weft: noise_png: 50 ok, 10 failed, 3 crashed, 2 timed out, "
                  "1 quarantined, 1034 not run, 900 done before in 0.500 s "
                  "(130 items/s, 2 threads, isolated processes): interrupted\n"));
    free(t);
}

static void print_zero_wall(void **state)
{
    (void)state;
    weft__summary_t s = {.plugin = "add_one", .threads = 1, .status = "ok"};
    char *t = printed(&s);
    assert_non_null(strstr(t, "weft: add_one: 0 ok, 0 failed, 0 not run in 0.000 s "
                              "(0 items/s, 1 threads)\n"));
    free(t);
}

static cJSON *parse_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_true(n > 0 && buf[n - 1] == '\n');
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(buf, &end, 0);
    assert_non_null(o);
    return o;
}

static size_t files_in_dir(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void json_fields(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/s.json", dir);
    weft__summary_t s = example();
    s.crashed = 3, s.timed_out = 4, s.quarantined = 5, s.skipped = 6, s.not_run = 7;
    assert_int_equal(weft__summary_write_json(path, &s, err, sizeof err), 0);
    cJSON *o = parse_file(path);
    assert_string_equal(json_str(o, "plugin"), "noise_png");
    assert_string_equal(json_str(o, "isolate"), "thread");
    assert_string_equal(json_str(o, "status"), "failed");
    assert_int_equal(json_num(o, "exit_code"), 1);
    assert_int_equal(json_num(o, "threads"), 2);
    assert_int_equal(json_num(o, "total"), 2000);
    assert_int_equal(json_num(o, "ok"), 1998);
    assert_int_equal(json_num(o, "failed"), 2);
    assert_int_equal(json_num(o, "crashed"), 3);
    assert_int_equal(json_num(o, "timed_out"), 4);
    assert_int_equal(json_num(o, "quarantined"), 5);
    assert_int_equal(json_num(o, "skipped"), 6);
    assert_int_equal(json_num(o, "not_run"), 7);
    assert_true(json_num(o, "wall_s") == 0.71);
    assert_true(json_num(o, "cpu_user_s") == 1.3);
    assert_true(json_num(o, "cpu_sys_s") == 0.12);
    double rate = json_num(o, "items_per_s"); /* (1998 + 2 + 3 + 4) / 0.71 */
    assert_true(rate > 2826.7 && rate < 2826.8);
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(o, "phases");
    assert_true(cJSON_IsObject(ph));
    assert_true(json_num(ph, "init_s") == 0.002);
    assert_true(json_num(ph, "items_s") == 0.69);
    assert_true(json_num(ph, "finish_s") == 0.0);
    assert_true(json_num(ph, "output_s") == 0.01);
    cJSON_Delete(o);
    /* No temporary file left behind. */
    assert_int_equal(files_in_dir(), 1);
    unlink(path);
}

static void json_unknown_total_is_null(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/u.json", dir);
    weft__summary_t s = example();
    s.total = UINT64_MAX;
    assert_int_equal(weft__summary_write_json(path, &s, err, sizeof err), 0);
    cJSON *o = parse_file(path);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "total")));
    cJSON_Delete(o);
    unlink(path);
}

/* An existing file is replaced whole (by rename: a new inode), never
 * truncated in place; a reader holding the old one still sees it all. */
static void json_replaces_atomically(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/r.json", dir);
    const char old[] = "old content, longer than nothing\n";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, old, sizeof old - 1), (ssize_t)(sizeof old - 1));
    close(fd);
    int reader = open(path, O_RDONLY);
    assert_true(reader >= 0);
    struct stat before, after;
    assert_int_equal(fstat(reader, &before), 0);
    for (int k = 0; k < 20; k++) {
        weft__summary_t s = example();
        s.ok = (uint64_t)k;
        assert_int_equal(weft__summary_write_json(path, &s, err, sizeof err), 0);
        cJSON *o = parse_file(path);
        assert_int_equal(json_num(o, "ok"), k);
        cJSON_Delete(o);
    }
    assert_int_equal(stat(path, &after), 0);
    assert_true(before.st_ino != after.st_ino);
    char buf[128];
    ssize_t n = read(reader, buf, sizeof buf);
    assert_int_equal(n, (ssize_t)(sizeof old - 1));
    assert_memory_equal(buf, old, sizeof old - 1);
    close(reader);
    assert_int_equal(files_in_dir(), 1);
    unlink(path);
}

static void json_error_names_path(void **state)
{
    (void)state;
    char path[160], err[256] = "";
    snprintf(path, sizeof path, "%s/no/such/folder/s.json", dir);
    weft__summary_t s = example();
    assert_int_equal(weft__summary_write_json(path, &s, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/no/such/folder/s.json"));
    assert_non_null(strstr(err, strerror(ENOENT)));

    /* A folder where the file should be: the rename fails, the temporary
     * file goes. */
    snprintf(path, sizeof path, "%s/isdir", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    int rc = weft__summary_write_json(path, &s, err, sizeof err);
    assert_true(rc == -EISDIR);
    assert_non_null(strstr(err, "isdir: rename"));
    assert_int_equal(files_in_dir(), 1);
    rmdir(path);
}

/* "-" writes to standard output (fd 1, after stdio's buffer). */
static void json_to_stdout(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    weft__summary_t s = example();
    int rc = weft__summary_write_json("-", &s, err, sizeof err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, 0);
    cJSON *o = parse_file(path);
    assert_int_equal(json_num(o, "ok"), 1998);
    cJSON_Delete(o);
    unlink(path);
}

static double user_s(int who)
{
    struct rusage ru;
    assert_int_equal(getrusage(who, &ru), 0);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}

/* CPU time of this process and of its waited-for children: a child that
 * burns 0.1 s of user time raises cpu_user_s by at least that. */
static void cpu_counts_children(void **state)
{
    (void)state;
    weft__summary_t a = {0}, b = {0};
    weft__summary_cpu(&a);
    assert_true(a.cpu_user_s >= 0 && a.cpu_sys_s >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        volatile uint64_t x = 0;
        while (user_s(RUSAGE_SELF) < 0.1) /* CPU time, not wall time */
            for (int k = 0; k < 100000; k++)
                x += (uint64_t)k;
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    weft__summary_cpu(&b);
    assert_true(b.cpu_user_s >= a.cpu_user_s + 0.1);
    assert_true(b.cpu_sys_s >= a.cpu_sys_s);
}

/* CPU is counted from weft__summary_cpu_start: what the process used
 * before (a shell that execs weft) is not weft's. */
static void cpu_counts_from_the_start(void **state)
{
    (void)state;
    volatile uint64_t x = 1;
    struct timespec t0, t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    do { /* 0.3 s of CPU before the start */
        for (int k = 0; k < 100000; k++)
            x = x * 6364136223846793005u + 1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 < 0.3);
    weft__summary_t s = {0};
    weft__summary_cpu_start();
    weft__summary_cpu(&s);
    assert_true(s.cpu_user_s >= 0 && s.cpu_user_s < 0.2);
    assert_true(s.cpu_sys_s >= 0 && s.cpu_sys_s < 0.2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(print_two_lines),
        cmocka_unit_test(print_other_outcomes),
        cmocka_unit_test(print_zero_wall),
        cmocka_unit_test(json_fields),
        cmocka_unit_test(json_unknown_total_is_null),
        cmocka_unit_test(json_replaces_atomically),
        cmocka_unit_test(json_error_names_path),
        cmocka_unit_test(json_to_stdout),
        cmocka_unit_test(cpu_counts_children),
        cmocka_unit_test(cpu_counts_from_the_start),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
