/* SPDX-License-Identifier: MIT */
/* The `weft` command line. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "run.h"
#include "weft/weft.h"

static const char usage_text[] =
    "usage: weft run CONFIG [--set SECTION.KEY=VALUE]... [--threads N]\n"
    "                       [--output FILE] [--quiet]\n"
    "       weft --help | --version\n"
    "\n"
    "Runs a task plugin over many items in parallel, as a config file says.\n"
    "\n"
    "commands:\n"
    "  run CONFIG          run the job CONFIG describes (an INI file)\n"
    "\n"
    "run options:\n"
    "  --set S.K=V         override key K of section [S] (run or args),\n"
    "                      e.g. --set args.size_x=200; may repeat\n"
    "  -j, --threads N     worker threads (0 = one per CPU)\n"
    "  -o, --output FILE   where results go: a file (relative to the current\n"
    "                      directory), - for standard output, or none\n"
    "  -q, --quiet         no summary line\n"
    "\n"
    "exit status: 0 all items ok, 1 some items failed (all other results kept),\n"
    "2 usage, config or plugin error (nothing ran), 3 results could not be written.\n";

static int usage(FILE *to, int status)
{
    fputs(usage_text, to);
    return status;
}

/* Value of an option given as "--opt VALUE" or "--opt=VALUE"; NULL if
 * argv[*k] is not this option.  Sets *missing when the value is absent. */
static const char *option_value(char **argv, int argc, int *k, const char *lng,
                                const char *shrt, int *missing)
{
    const char *a = argv[*k];
    size_t n = strlen(lng);
    if (strncmp(a, lng, n) == 0 && a[n] == '=')
        return a + n + 1;
    if (strcmp(a, lng) == 0 || (shrt && strcmp(a, shrt) == 0)) {
        if (*k + 1 >= argc) {
            *missing = 1;
            return NULL;
        }
        return argv[++*k];
    }
    return NULL;
}

/* --output is relative to the current directory, unlike paths in the
 * config file: make it absolute before it becomes a config override. */
static char *output_override(const char *path)
{
    const char *value = path;
    char *abs = NULL;
    if (strcmp(path, "-") != 0 && strcmp(path, "none") != 0 && path[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return NULL;
        size_t len = strlen(cwd) + strlen(path) + 2;
        abs = malloc(len);
        if (!abs)
            return NULL;
        snprintf(abs, len, "%s/%s", cwd, path);
        value = abs;
    }
    size_t len = strlen("run.output=") + strlen(value) + 1;
    char *set = malloc(len);
    if (set)
        snprintf(set, len, "run.output=%s", value);
    free(abs);
    return set;
}

static int cmd_run(int argc, char **argv)
{
    weft__run_opts_t o = {0};
    /* Every option becomes at most one override; owned copies in `owned`. */
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    char **owned = calloc((size_t)argc + 1, sizeof *owned);
    size_t n_owned = 0;
    int status = WEFT_EXIT_USAGE;
    if (!sets || !owned) {
        fputs("weft: out of memory\n", stderr);
        goto out;
    }
    for (int k = 0; k < argc; k++) {
        const char *a = argv[k], *v;
        int missing = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            status = usage(stdout, 0);
            goto out;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o.quiet = true;
        } else if ((v = option_value(argv, argc, &k, "--set", NULL, &missing))) {
            sets[o.n_sets++] = v;
        } else if ((v = option_value(argv, argc, &k, "--threads", "-j", &missing))) {
            int64_t n;
            if (weft__parse_int64(v, &n) != 0 || n < 0 || n > 1024) {
                fprintf(stderr, "weft: --threads '%s': expected an integer from 0 to 1024\n", v);
                goto out;
            }
            char *set = malloc(32);
            if (!set)
                goto out;
            snprintf(set, 32, "run.threads=%d", (int)n);
            sets[o.n_sets++] = owned[n_owned++] = set;
        } else if ((v = option_value(argv, argc, &k, "--output", "-o", &missing))) {
            char *set = output_override(v);
            if (!set) {
                fprintf(stderr, "weft: --output '%s': %s\n", v, strerror(errno));
                goto out;
            }
            sets[o.n_sets++] = owned[n_owned++] = set;
        } else if (missing) {
            fprintf(stderr, "weft: %s needs a value\n", a);
            goto out;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "weft: run: unknown option '%s' (see weft run --help)\n", a);
            goto out;
        } else if (o.config_path) {
            fprintf(stderr, "weft: run: one CONFIG only ('%s' and '%s')\n", o.config_path, a);
            goto out;
        } else {
            o.config_path = a;
        }
    }
    if (!o.config_path) {
        fputs("weft: run: which config? (weft run CONFIG)\n", stderr);
        goto out;
    }
    o.sets = sets;
    status = weft__run(&o);
out:
    for (size_t k = 0; k < n_owned; k++)
        free(owned[k]);
    free(owned);
    free(sets);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr, WEFT_EXIT_USAGE);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
        return usage(stdout, 0);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("weft %s\n", weft_version());
        return 0;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    fprintf(stderr, "weft: unknown command '%s'\n\n", cmd);
    return usage(stderr, WEFT_EXIT_USAGE);
}
