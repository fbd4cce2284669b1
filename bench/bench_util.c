/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "bench_util.h"

extern char **environ;

/* The bench's name, for its messages. */
#define PROG program_invocation_short_name

void bench_pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *v, int n)
{
    double *s = malloc(sizeof *s * (size_t)n);
    if (!s) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        exit(1);
    }
    memcpy(s, v, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

void bench_loadavg(char *buf, size_t size)
{
    snprintf(buf, size, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, size, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

int bench_weft_paths(const char *exe_arg, const char *plugins_arg, char **exe,
                     char **plugins)
{
    *exe = realpath(exe_arg, NULL);
    *plugins = NULL;
    if (!*exe) {
        fprintf(stderr, "%s: %s: %s\n", PROG, exe_arg, strerror(errno));
        return -1;
    }
    if (plugins_arg) {
        *plugins = realpath(plugins_arg, NULL);
    } else {
        char beside[4096];
        snprintf(beside, sizeof beside, "%.*s/plugins", (int)(strrchr(*exe, '/') - *exe),
                 *exe);
        *plugins = realpath(beside, NULL);
    }
    if (!*plugins) {
        fprintf(stderr, "%s: the plugin folder: %s\n", PROG, strerror(errno));
        free(*exe);
        *exe = NULL;
        return -1;
    }
    return 0;
}

pid_t bench_spawn(char *const argv[], int out_fd, int err_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (err_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    pid_t pid;
    int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, argv[0], strerror(e));
        return -1;
    }
    return pid;
}

int bench_reap(pid_t pid, int *status, struct rusage *ru)
{
    while (wait4(pid, status, 0, ru) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "%s: wait4: %s\n", PROG, strerror(errno));
            return -1;
        }
    return 0;
}
