/* SPDX-License-Identifier: MIT */
/*
 * A whole `weft run` of a 10-item config, as a user's shell would start it:
 * fork, exec, load the config and plugin, run, write, exit.  Baseline in
 * the same run: fork + exec of /bin/true, the floor of any process.
 *
 *   bench_startup WEFT_EXE PLUGIN_DIR [RUNS]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "util.h" /* weft__mono_s */

static double spawn_ms(char *const argv[])
{
    double t0 = weft__mono_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_startup: fork");
        exit(1);
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    if (bench_reap(pid, &status, NULL) != 0)
        exit(1);
    double t = (weft__mono_s() - t0) * 1e3;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_startup: %s failed (status %d)\n", argv[0], status);
        exit(1);
    }
    return t;
}

/* The median of `runs` runs of argv, in ms. */
static double median_ms(char *const argv[], int runs)
{
    double *t = malloc(sizeof *t * (size_t)runs);
    if (!t) {
        fprintf(stderr, "bench_startup: out of memory\n");
        exit(1);
    }
    for (int k = 0; k < runs; k++)
        t[k] = spawn_ms(argv);
    double m = bench_median(t, runs);
    free(t);
    return m;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_startup WEFT_EXE PLUGIN_DIR [RUNS]\n");
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 50;
    char *exe, *plugins;
    if (bench_weft_paths(argv[1], argv[2], &exe, &plugins) != 0)
        return 1;
    char dir[] = "/tmp/weft-bench-startup-XXXXXX", cfg[128], out[128];
    if (!mkdtemp(dir))
        return 1;
    snprintf(cfg, sizeof cfg, "%s/ten.ini", dir);
    snprintf(out, sizeof out, "%s/ten.json", dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "[run]\nplugin = %s/add_one.so\nitems = 10\noutput = ten.json\n", plugins);
    fclose(f);

    char *weft[] = {exe, "run", cfg, "-q", NULL};
    char *true_argv[] = {"/bin/true", NULL};
    spawn_ms(weft); /* warm the page cache */
    double base = median_ms(true_argv, runs);
    double run = median_ms(weft, runs);
    printf("bench_startup: median of %d runs\n", runs);
    printf("  fork+exec /bin/true       %7.3f ms\n", base);
    printf("  weft run (10 items)       %7.3f ms   (target < 5 ms)\n", run);
    printf("  weft over process floor   %7.3f ms   (ratio %.2fx)\n", run - base, run / base);
    unlink(out);
    unlink(cfg);
    rmdir(dir);
    free(exe);
    free(plugins);
    return 0;
}
