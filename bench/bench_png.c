/* SPDX-License-Identifier: MIT */
/*
 * bench_png: the noise_png plugin run by the weft binary against the loop a
 * competent user would write by hand with OpenMP and libpng, same run.
 *
 *   bench_png [--quick] [--no-sync] [--sync MODE] [--dir DIR] [THREADS]
 *                                                 (THREADS default 2)
 *
 * Both write 2000 (--quick 200) 8-bit grey PNGs of 100x100 random noise,
 * pixels from the same Philox stream, at zlib level 1, no filter, Huffman
 * only, each to a temporary name, fsync, rename, fsync of the folder (what
 * weft's host->out_commit does), into DIR (default /dev/shm, else $TMPDIR
 * or /tmp): the same work, and byte-identical files (checked).  --no-sync
 * drops the two fsyncs from the hand-written loop only: weft / that is the
 * price of durability.  --sync MODE is weft's [run] sync (default batch:
 * its files made durable in groups; item: each as the C loop does it).  On tmpfs (/dev/shm) fsync costs nothing; use
 * --dir on a disk to see it.
 * weft is timed as a whole process (fork, exec, plugin load, workers, exit);
 * the OpenMP loop in-process, so its thread start-up is paid only by the
 * warm-up.  Median of 5 after a warm-up, variants interleaved with a pause
 * between them so that one side's spinning threads never steal the other's
 * CPU; the folders are emptied between runs, untimed.
 *
 * WEFT_EXE names the weft binary (meson sets it); default: ../weft beside
 * this program.  The plugin is loaded from the plugins folder beside it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <omp.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "bench_util.h"
#include "loader.h" /* weft__rng_*: the pixels the plugin gets */
#include "util.h"   /* weft__mono_s */

enum { REPS = 5, SIZE = 100 };

/* Removes the files in dir (the folder stays); untimed. */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    int fd = dirfd(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(fd, e->d_name, 0);
    closedir(d);
}

/* ---- weft: the whole process -------------------------------------------- */

static char weft_exe[PATH_MAX], config[PATH_MAX], log_path[PATH_MAX];

static double run_weft(int threads)
{
    char j[16];
    snprintf(j, sizeof j, "%d", threads);
    double t0 = weft__mono_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1), dup2(fd, 2);
        execl(weft_exe, weft_exe, "run", config, "--threads", j, (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_png: %s run %s failed; its output is in %s\n", weft_exe, config,
                log_path);
        exit(1);
    }
    return weft__mono_s() - t0;
}

/* ---- the hand-written loop ------------------------------------------------ */

static int sync_files = 1; /* --no-sync: 0 */

static int write_one(const char *dir, int dir_fd, unsigned i, unsigned char *pixels,
                     png_bytep *rows)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/noise_%06u.png", dir, i);
    snprintf(tmp, sizeof tmp, "%s/.noise_%06u.png.tmp-%d", dir, i, omp_get_thread_num());
    weft_rng_t rng;
    weft__rng_init(&rng, 0, 0, i);
    weft__rng_fill(&rng, pixels, (size_t)SIZE * SIZE);

    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        remove(tmp);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        remove(tmp);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, SIZE, SIZE, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, 1);
    png_set_compression_strategy(png, Z_HUFFMAN_ONLY);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if ((sync_files && (fflush(f) != 0 || fsync(fileno(f)) != 0)) | (fclose(f) != 0)) {
        remove(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0)
        return -1;
    return sync_files ? fsync(dir_fd) : 0;
}

static double run_omp(const char *dir, unsigned n, int threads)
{
    int failed = 0;
    double t0 = weft__mono_s();
#pragma omp parallel num_threads(threads) reduction(+ : failed)
    {
        unsigned char *pixels = malloc((size_t)SIZE * SIZE);
        png_bytep rows[SIZE];
        int dir_fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (!pixels || dir_fd < 0)
            abort();
        for (int y = 0; y < SIZE; y++)
            rows[y] = pixels + (size_t)y * SIZE;
#pragma omp for schedule(dynamic)
        for (unsigned i = 0; i < n; i++)
            failed += write_one(dir, dir_fd, i, pixels, rows) != 0;
        free(pixels);
        close(dir_fd);
    }
    double t = weft__mono_s() - t0;
    if (failed) {
        fprintf(stderr, "bench_png: the OpenMP loop failed %d images in %s\n", failed, dir);
        exit(1);
    }
    return t;
}

/* ---- setup ---------------------------------------------------------------- */

static void find_weft(void)
{
    const char *env = getenv("WEFT_EXE");
    if (env && *env) {
        snprintf(weft_exe, sizeof weft_exe, "%s", env);
        return;
    }
    char self[PATH_MAX - 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "bench_png: set WEFT_EXE to the weft binary\n");
        exit(2);
    }
    self[n] = '\0';
    *strrchr(self, '/') = '\0'; /* build/bench */
    snprintf(weft_exe, sizeof weft_exe, "%s/../weft", self);
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = getc(fa), cb = getc(fb);
        same = ca == cb;
        if (ca == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

int main(int argc, char **argv)
{
    unsigned n = 2000;
    int threads = 2;
    const char *base = NULL, *sync_mode = "batch";
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--quick") == 0) {
            n = 200;
        } else if (strcmp(argv[k], "--no-sync") == 0) {
            sync_files = 0;
        } else if (strcmp(argv[k], "--sync") == 0 && k + 1 < argc) {
            sync_mode = argv[++k];
        } else if (strcmp(argv[k], "--dir") == 0 && k + 1 < argc) {
            base = argv[++k];
        } else if (atoi(argv[k]) > 0) {
            threads = atoi(argv[k]);
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--no-sync] [--sync MODE] [--dir DIR] [THREADS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm"
               : getenv("TMPDIR")            ? getenv("TMPDIR")
                                             : "/tmp";
    find_weft();

    char root[PATH_MAX - 32], weft_dir[PATH_MAX], omp_dir[PATH_MAX];
    snprintf(root, sizeof root, "%s/weft-bench-png-XXXXXX", base);
    if (!mkdtemp(root)) {
        perror(root);
        return 1;
    }
    snprintf(weft_dir, sizeof weft_dir, "%s/weft", root);
    snprintf(omp_dir, sizeof omp_dir, "%s/omp", root);
    snprintf(log_path, sizeof log_path, "%s/weft.log", root);
    if (mkdir(omp_dir, 0777) != 0) {
        perror(omp_dir);
        return 1;
    }
    /* The plugin by path: nothing on WEFT_PLUGIN_PATH can stand in for it. */
    char plugin[PATH_MAX];
    snprintf(plugin, sizeof plugin, "%s", strchr(weft_exe, '/') ? weft_exe : "./weft");
    *strrchr(plugin, '/') = '\0';
    snprintf(config, sizeof config, "%s/noise.ini", root);
    FILE *f = fopen(config, "w");
    if (!f) {
        perror(config);
        return 1;
    }
    fprintf(f,
            "[run]\nplugin = %s/plugins/noise_png.so\nitems = %u\noutput = none\n"
            "sync = %s\n[args]\nsize_x = %d\nsize_y = %d\ncompression = 1\ndir = %s\n"
            "name = noise_{index:06}.png\n",
            plugin, n, sync_mode, SIZE, SIZE, weft_dir);
    fclose(f);

    printf("bench_png: %u images %dx%d, zlib level 1, Huffman only, no filter, in %s; "
           "C loop %s; weft: sync = %s\n", n, SIZE, SIZE, base,
           sync_files ? "fsyncs each file" : "does not fsync (--no-sync)", sync_mode);
    printf("weft: %s (whole process); OpenMP: in-process; median of %d after a warm-up\n\n",
           weft_exe, REPS);

    enum { WEFT_T, OMP_T, WEFT_1, OMP_1, NV };
    static const char *const name[NV] = {"weft", "C + OpenMP", "weft", "C serial"};
    double t[NV][REPS];
    for (int rep = -1; rep < REPS; rep++) {
        for (int v = 0; v < NV; v++) {
            int th = v < WEFT_1 ? threads : 1;
            double s = v % 2 == 0 ? run_weft(th) : run_omp(omp_dir, n, th);
            if (rep >= 0)
                t[v][rep] = s;
            /* Keep the last set of files for the byte comparison. */
            if (!(rep == REPS - 1 && v >= WEFT_1))
                empty_dir(v % 2 == 0 ? weft_dir : omp_dir);
            bench_pause_ms(100);
        }
    }

    char a[PATH_MAX + 32], b[PATH_MAX + 32];
    int same = 1;
    for (unsigned i = 0; i < n && same; i += n / 10 ? n / 10 : 1) {
        snprintf(a, sizeof a, "%s/noise_%06u.png", weft_dir, i);
        snprintf(b, sizeof b, "%s/noise_%06u.png", omp_dir, i);
        same = same_file(a, b);
    }

    double m[NV];
    printf("%-12s %8s %10s %12s\n", "variant", "threads", "ms", "us/image");
    for (int v = 0; v < NV; v++) {
        m[v] = bench_median(t[v], REPS);
        printf("%-12s %8d %10.1f %12.1f\n", name[v], v < WEFT_1 ? threads : 1, m[v] * 1e3,
               m[v] * 1e6 / n);
    }
    printf("\n%-40s %8.3f %10s\n", "weft / OpenMP", m[WEFT_T] / m[OMP_T], "<= 1.10");
    printf("%-40s %8.3f\n", "weft 1 thread / C serial", m[WEFT_1] / m[OMP_1]);
    printf("%-40s %8.2f\n", "speed-up, weft", m[WEFT_1] / m[WEFT_T]);
    printf("%-40s %8.2f\n", "speed-up, OpenMP", m[OMP_1] / m[OMP_T]);
    printf("%-40s %8s\n", "files byte-identical (every n/10th)", same ? "yes" : "NO");

    empty_dir(weft_dir);
    empty_dir(omp_dir);
    rmdir(weft_dir);
    rmdir(omp_dir);
    unlink(config);
    unlink(log_path);
    rmdir(root);
    return same ? 0 : 1;
}
