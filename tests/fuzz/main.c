/* SPDX-License-Identifier: MIT */
/*
 * Standalone driver for a fuzz target when libFuzzer is not linked in (any
 * compiler, any sanitizer): runs LLVMFuzzerTestOneInput once per file named
 * on the command line, descending into folders (sorted, dot-files skipped).
 * A finding aborts, like under libFuzzer.  Each input sits in a buffer of
 * exactly its size, so AddressSanitizer sees a one-byte over-read.
 *
 *   fuzz_config tests/fuzz/corpus/config        # every seed
 *   fuzz_config crash-1234                      # one reproducer
 *
 * Exit status: 0 when every input ran, 1 when one could not be read or the
 * target returned something libFuzzer does not accept, 2 on usage (no
 * input at all also counts: an empty corpus must not pass as a test).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static unsigned long n_run;

static int run_file(const char *path)
{
    size_t len = 0;
    char *text = fuzz_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno ? errno : EIO));
        return 1;
    }
    /* Exactly len bytes, without the NUL fuzz_read_file() adds. */
    uint8_t *data = malloc(len ? len : 1);
    if (!data) {
        free(text);
        fprintf(stderr, "%s: out of memory\n", path);
        return 1;
    }
    memcpy(data, text, len);
    free(text);
    int rc = LLVMFuzzerTestOneInput(data, len);
    free(data);
    n_run++;
    if (rc != 0 && rc != -1) { /* libFuzzer: 0, or -1 to keep out of the corpus */
        fprintf(stderr, "%s: the target returned %d\n", path, rc);
        return 1;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);

    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                rc = 1;
                break;
            }
            names = grown;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            rc = 1;
            break;
        }
        snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t k = 0; k < n; k++) {
        if (rc == 0)
            rc = run_path(names[k]);
        free(names[k]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++)
        rc = run_path(argv[i]);
    if (rc == 0 && n_run == 0) {
        fprintf(stderr, "%s: no inputs found\n", argv[0]);
        return 2;
    }
    printf("%s: %lu inputs ran\n", argv[0], n_run);
    return rc;
}
