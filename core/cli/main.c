/* SPDX-License-Identifier: MIT */
/* The `weft` command line. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "describe.h"
#include "log.h"
#include "loader.h"
#include "run.h"
#include "util.h"
#include "weft/weft.h"

static const char usage_text[] =
    "usage: weft run CONFIG [--set SECTION.KEY=VALUE]... [--threads N]\n"
    "                       [--output FILE] [--quiet] [--progress[=MODE]]\n"
    "                       [--summary-json FILE] [--resume | --retry-failed |\n"
    "                       --restart] [--force] [-- COMMAND...] [::: ITEM...]\n"
    "       weft run -p PLUGIN [OPTIONS] [-- COMMAND...] (::: ITEM... | :::: FILE |\n"
    "                       --items SPEC)\n"
    "       weft check CONFIG [--set SECTION.KEY=VALUE]...\n"
    "       weft describe PLUGIN\n"
    "       weft plugins [--names]\n"
    "       weft log JOURNAL|CONFIG [--json | --failed [-0]] [--set S.K=V]...\n"
    "       weft --help | --version\n"
    "\n"
    "Runs a task plugin over many items in parallel, as a config file says.\n"
    "\n"
    "commands:\n"
    "  run CONFIG          run the job CONFIG describes (an INI file)\n"
    "  check CONFIG        validate CONFIG, its plugin and arguments; run nothing\n"
    "  describe PLUGIN     a plugin's arguments, and an [args] block to paste\n"
    "  plugins             the plugins found on the search path\n"
    "  log JOURNAL|CONFIG  each item of a run's journal: status, attempts, start,\n"
    "                      runtime, message (see weft log --help)\n"
    "\n"
    "run options:\n"
    "  --set S.K=V         override key K of section [S] (run or args),\n"
    "                      e.g. --set args.size_x=200; may repeat\n"
    "  -p, --plugin NAME   run NAME with no config file: the command line says\n"
    "                      it all; results to standard output as the values\n"
    "                      are (format = raw), GNU parallel style\n"
    "  --items SPEC        the items of a -p run, as `items =` (3, lines:FILE,\n"
    "                      files:'*.png', json:FILE; relative to the current folder)\n"
    "  -- COMMAND...       the plugin's command (exec): one word is the template\n"
    "                      itself, several are each one argument\n"
    "  ::: ITEM...         these words are the items (everything after :::)\n"
    "  :::: FILE           the lines of FILE are the items\n"
    "  -j, --threads N     worker threads (0 = one per CPU; -1 every CPU, -2 all\n"
    "                      but one; 50% half of the CPUs)\n"
    "  -o, --output FILE   where results go: a file (relative to the current\n"
    "                      directory), - for standard output, or none\n"
    "  -q, --quiet         errors only: no progress, no summary\n"
    "  --progress[=MODE]   live progress on stderr: line (the default when\n"
    "                      stderr is a terminal; --progress alone forces it),\n"
    "                      json (an object a second), or off\n"
    "  --summary-json FILE also write the run summary as JSON to FILE (- for\n"
    "                      standard output)\n"
    "  --resume[=auto]     run only the items the journal of an earlier,\n"
    "                      unfinished run lacks (auto: a plain run when there\n"
    "                      is no journal)\n"
    "  --retry-failed      --resume, and run the items that failed again\n"
    "  --force             resume although the config, plugin or items changed\n"
    "                      (changed items run again)\n"
    "  --restart           discard an unfinished run's journal, start over\n"
    "\n"
    "Plugins are looked up in the config's plugin_path and folder, then\n"
    "$WEFT_PLUGIN_PATH, then weft's install folder; never the current directory.\n"
    "\n"
    "exit status: 0 all items ok, 1 some items failed (all other results kept),\n"
    "2 usage, config or plugin error (nothing ran), 3 results could not be written,\n"
    "4 halted by the failure policy, 128+N interrupted by signal N (130 for\n"
    "SIGINT, 143 SIGTERM, 129 SIGHUP); an interrupted run finishes with the\n"
    "command weft prints (weft run CONFIG ... --resume).  Options: GNU style\n"
    "(-qj4, -o-, --threads=4, --).\n";

static const char run_help[] =
    "usage: weft run CONFIG [--set SECTION.KEY=VALUE]... [-j N] [-o FILE] [-q]\n"
    "                       [--progress[=line|json|off]] [--summary-json FILE]\n"
    "                       [--resume | --retry-failed | --restart] [--force]\n"
    "                       [-- COMMAND...] [::: ITEM... | :::: FILE]\n"
    "       weft run -p PLUGIN [OPTIONS] [-- COMMAND...] (::: ITEM... | :::: FILE |\n"
    "                       --items SPEC)\n"
    "Runs the job CONFIG describes, or with -p the one the command line does.\n"
    "  e.g. weft run -p exec -j8 -- convert {} {/.}.png ::: *.jpg\n"
    "\n"
    "  --set S.K=V         override key K of section [S]; may repeat\n"
    "  -p, --plugin NAME   no CONFIG: run plugin NAME; results on stdout as\n"
    "                      they are (format = raw) unless -o says otherwise\n"
    "  --items SPEC        a -p run's items, as `items =` in a config\n"
    "  -- COMMAND...       args.command: one word is the template (quotes\n"
    "                      group), several are one argument each\n"
    "  ::: ITEM...         the words after ::: are the items, :::: FILE its lines\n"
    "  -j, --threads N     worker threads (0 = one per CPU, -1 every CPU, -2 all\n"
    "                      but one, 50% half of them)\n"
    "  -o, --output FILE   a file (relative to the current directory), -, or none\n"
    "  -q, --quiet         errors only: no progress, no summary\n"
    "  --progress[=MODE]   line (default on a terminal; forced by --progress),\n"
    "                      json (one object a second on stderr), off\n"
    "  --summary-json FILE the summary as JSON, written atomically (- = stdout)\n"
    "  --resume[=auto]     run only what the journal of an earlier run lacks\n"
    "                      (=auto: or everything, when there is no journal)\n"
    "  --retry-failed      --resume, and run failed items again\n"
    "  --force             resume although the config, plugin or items changed\n"
    "  --restart           discard an unfinished journal (not with --resume)\n"
    "See weft --help for exit statuses.\n";
static const char check_help[] =
    "usage: weft check CONFIG [--set SECTION.KEY=VALUE]... [-j N] [-o FILE] [--init]\n"
    "       weft check -p PLUGIN [OPTIONS] [-- COMMAND...] [::: ITEM... | :::: FILE]\n"
    "Loads CONFIG and its plugin, checks every key and bound argument and opens\n"
    "the items, then says what would run.  Runs nothing, writes nothing.\n"
    "  --init              also start the plugin (its init) and stop it: the\n"
    "                      check then passes only a config that starts\n"
    "Exit status 0 if the job is valid, 2 (with file:line: message) if not.\n";
static const char describe_help[] =
    "usage: weft describe PLUGIN\n"
    "Prints PLUGIN's version, description and arguments (type, default, range,\n"
    "help), and an [args] block ready to paste into a config.  PLUGIN is a name\n"
    "looked up on $WEFT_PLUGIN_PATH and the install folder, or a path to a .so.\n";
static const char plugins_help[] =
    "usage: weft plugins [--names]\n"
    "Lists the plugins on the search path ($WEFT_PLUGIN_PATH, the install\n"
    "folder), in the order a config would find them, with version and\n"
    "description.  --names: only the names, one per line, without loading\n"
    "the plugins (for shell completion).\n";

static int usage(FILE *to, int status)
{
    fputs(usage_text, to);
    return status;
}

/* --output is relative to the current directory, unlike paths in the
 * config file: make it absolute before it becomes a config override. */
static char *output_override(const char *path)
{
    const char *value = path;
    char *abs = NULL;
    if (strcmp(path, "-") != 0 && strcmp(path, "none") != 0 && path[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) || !(abs = weft__path_join_dup(cwd, path)))
            return NULL;
        value = abs;
    }
    size_t len = strlen("run.output=") + strlen(value) + 1;
    char *set = malloc(len);
    if (set)
        snprintf(set, len, "run.output=%s", value);
    free(abs);
    return set;
}

static bool is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* Every option of run and check, for "did you mean". */
static const char *const run_options[] = {
    "--set",    "--threads",     "--output", "--quiet",   "--progress", "--summary-json",
    "--resume", "--retry-failed", "--force",  "--restart", "--help",     "--init",
    "--plugin", "--items",
};

/* --progress's value (NULL: line).  -1 (and a message) if it is wrong. */
static int progress_mode(const char *v, weft__progress_mode_t *mode)
{
    static const struct {
        const char *word;
        weft__progress_mode_t mode;
    } modes[] = {
        {"line", WEFT__PROGRESS_LINE},
        {"json", WEFT__PROGRESS_JSON},
        {"off", WEFT__PROGRESS_OFF},
    };
    if (!v) {
        *mode = WEFT__PROGRESS_LINE;
        return 0;
    }
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++)
        if (strcmp(v, modes[k].word) == 0) {
            *mode = modes[k].mode;
            return 0;
        }
    fprintf(stderr, "weft: --progress '%s': expected line, json or off\n", v);
    return -1;
}

/* The CPUs this process may run on. */
static long cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* -j's value: N (0: one per CPU), -K as joblib (-1 every CPU, -2 all but
 * one), or P% of the CPUs as GNU parallel; never below 1 but for 0, never
 * above 1024.  -1 when it is none of these. */
static long threads_value(const char *v)
{
    size_t len = strlen(v);
    long cpus = cpu_count();
    int64_t n;
    if (len > 1 && v[len - 1] == '%') {
        char num[24];
        if (len - 1 >= sizeof num)
            return -1;
        memcpy(num, v, len - 1);
        num[len - 1] = '\0';
        if (weft__parse_int64(num, &n) != 0 || n <= 0 || n > 100000)
            return -1;
        long t = (long)((cpus * n + 50) / 100);
        return t < 1 ? 1 : t > 1024 ? 1024 : t;
    }
    if (weft__parse_int64(v, &n) != 0 || n < -1024 || n > 1024)
        return -1;
    if (n >= 0)
        return (long)n;
    long t = cpus + 1 + (long)n;
    return t < 1 ? 1 : t;
}

/* Appends a to out (room for 4 * strlen(a) + 3), quoted for a POSIX shell
 * when it holds anything but plain characters. */
static char *shell_word(char *out, const char *a)
{
    bool plain = *a != '\0';
    for (const char *p = a; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || strchr("_-./=:,+@%^", *p);
    if (plain)
        return stpcpy(out, a);
    *out++ = '\'';
    for (const char *p = a; *p; p++) {
        if (*p == '\'')
            out = stpcpy(out, "'\\''");
        else
            *out++ = *p;
    }
    *out++ = '\'';
    *out = '\0';
    return out;
}

/* a then b, allocated; NULL when out of memory. */
static char *joined(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    char *s = malloc(n + m + 1);
    if (s) {
        memcpy(s, a, n);
        memcpy(s + n, b, m + 1);
    }
    return s;
}

/* GNU parallel's separators: `::: ITEM...` and `:::: FILE`. */
static bool is_items_word(const char *a)
{
    return strcmp(a, ":::") == 0 || strcmp(a, "::::") == 0;
}

/* "PROG run ARGS... --resume": the command line as typed, without its
 * mode options (--resume, --retry-failed, --restart; not an option's
 * value, is_value[k]), with the mode that finishes the job where the
 * options end (argv[stop], a "--" command or a ::: list, whose words are
 * not options; stop = argc: at the end).  Allocated; NULL when out of
 * memory. */
static char *resume_command(const char *prog, int argc, char **argv, bool retry, int stop,
                            const bool *is_value)
{
    const char *mode = retry ? " --retry-failed" : " --resume";
    size_t size = 4 * strlen(prog) + 32;
    for (int k = 0; k < argc; k++)
        size += 4 * strlen(argv[k]) + 3;
    char *cmd = malloc(size), *o = cmd;
    if (!cmd)
        return NULL;
    o = shell_word(o, strchr(prog, '/') ? prog : "weft");
    o = stpcpy(o, " run");
    for (int k = 0; k < argc; k++) {
        const char *a = argv[k];
        if (k == stop)
            o = stpcpy(o, mode);
        else if (k < stop && !is_value[k] &&
                 (strcmp(a, "--resume") == 0 || strcmp(a, "--resume=auto") == 0 ||
                  strcmp(a, "--retry-failed") == 0 ||
                  strcmp(a, "--restart") == 0))
            continue;
        *o++ = ' ';
        o = shell_word(o, a);
    }
    if (stop >= argc)
        stpcpy(o, mode);
    return cmd;
}

/* The words after -- as the plugin's `command` template: one word is the
 * template itself (exec's grammar: quotes group; with shell = true, a
 * script), several are each one argument, as typed, quoted for that
 * grammar ('...' with ' written '\''; placeholders are still read inside
 * quotes, as exec documents).  Allocated "args.command=..."; NULL: out of
 * memory. */
static char *command_set(char *const *words, int n)
{
    size_t size = sizeof "args.command=";
    for (int k = 0; k < n; k++)
        size += 4 * strlen(words[k]) + 3;
    char *set = malloc(size);
    if (!set)
        return NULL;
    char *o = stpcpy(set, "args.command=");
    if (n == 1) {
        stpcpy(o, words[0]);
        return set;
    }
    for (int k = 0; k < n; k++) {
        if (k)
            *o++ = ' ';
        *o++ = '\'';
        for (const char *p = words[k]; *p; p++) {
            if (*p == '\'')
                o = stpcpy(o, "'\\''");
            else
                *o++ = *p;
        }
        *o++ = '\'';
    }
    *o = '\0';
    return set;
}

/* `::: ITEM...` as "run.items=[...]": a JSON array of strings, each item's
 * bytes kept (only '"', '\\' and control characters escaped; other bytes,
 * invalid UTF-8 included, go through cJSON as they are).  NULL: out of
 * memory. */
static char *items_set(char *const *items, int n)
{
    size_t size = sizeof "run.items=[]";
    for (int k = 0; k < n; k++)
        size += 6 * strlen(items[k]) + 3;
    char *set = malloc(size);
    if (!set)
        return NULL;
    char *o = stpcpy(set, "run.items=[");
    for (int k = 0; k < n; k++) {
        o = stpcpy(o, k ? ",\"" : "\"");
        for (const unsigned char *p = (const unsigned char *)items[k]; *p; p++) {
            if (*p == '"' || *p == '\\')
                *o++ = '\\', *o++ = (char)*p;
            else if (*p < 0x20)
                o += sprintf(o, "\\u%04x", *p);
            else
                *o++ = (char)*p;
        }
        *o++ = '"';
    }
    stpcpy(o, "]");
    return set;
}

/* `:::: FILE` as "run.items=lines:ABS" (FILE relative to the current
 * folder, - for standard input).  NULL: out of memory, or no folder. */
static char *lines_set(const char *file)
{
    char *abs = NULL;
    if (strcmp(file, "-") != 0 && file[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) || !(abs = weft__path_join_dup(cwd, file)))
            return NULL;
    }
    const char *path = abs ? abs : file;
    size_t len = strlen("run.items=lines:") + strlen(path) + 1;
    char *set = malloc(len);
    if (set)
        snprintf(set, len, "run.items=lines:%s", path);
    free(abs);
    return set;
}

static void unknown_option(const char *cmd, const char *a)
{
    /* Compare the name without any "=value". */
    char word[64];
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    if (len >= sizeof word)
        len = sizeof word - 1;
    snprintf(word, sizeof word, "%.*s", (int)len, a);
    const char *near =
        weft__suggest(word, run_options, sizeof run_options / sizeof run_options[0]);
    fprintf(stderr, "weft: %s: unknown option '%s'", cmd, a);
    if (near)
        fprintf(stderr, "; did you mean '%s'?", near);
    fprintf(stderr, " (see weft %s --help)\n", cmd);
}

/* An option word that is not exactly one of longs (getopt_long would take
 * "--resum" for --resume: a typo must be said, not guessed), found the
 * way getopt_long reads the words: values of options that take one are
 * skipped, "--" ends the options.  Its index, or -1. */
static int inexact_option(int argc, char **argv, const struct option *longs,
                          const char *with_value)
{
    for (int k = 0; k < argc; k++) {
        const char *a = argv[k];
        if (strcmp(a, "--") == 0)
            return -1;
        if (a[0] != '-' || a[1] == '\0')
            continue;
        if (a[1] != '-') { /* -qj4, -j 4: the value ends the word or is the next */
            for (const char *c = a + 1; *c; c++)
                if (strchr(with_value, *c)) {
                    k += c[1] == '\0';
                    break;
                }
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option *o = longs;
        while (o->name && (strlen(o->name) != len || strncmp(o->name, name, len) != 0))
            o++;
        if (!o->name)
            return k;
        k += o->has_arg == required_argument && !eq;
    }
    return -1;
}

/* The first ::: or :::: that is not an option's value (-o :::), walking
 * the words as getopt_long reads them (values of options that take one
 * skipped; after "--" every word is a word); argc when there is none. */
static int items_word_at(int argc, char **argv, const struct option *longs,
                         const char *with_value)
{
    bool options = true;
    for (int k = 0; k < argc; k++) {
        const char *a = argv[k];
        if (is_items_word(a))
            return k;
        if (!options || a[0] != '-' || a[1] == '\0')
            continue;
        if (strcmp(a, "--") == 0) {
            options = false;
        } else if (a[1] != '-') {
            for (const char *c = a + 1; *c; c++)
                if (strchr(with_value, *c)) {
                    k += c[1] == '\0';
                    break;
                }
        } else if (!strchr(a, '=')) {
            const struct option *o = longs;
            while (o->name && strcmp(o->name, a + 2) != 0)
                o++;
            k += o->name && o->has_arg == required_argument;
        }
    }
    return argc;
}

/* run and check: the same options; check stops before anything runs.
 * GNU conventions (getopt_long): -j4, -qj4, -o-, --threads=4, --output
 * FILE, options before or after CONFIG, -- ends the options; long options
 * are never abbreviated. */
static int cmd_run(const char *prog, int argc, char **argv, bool check)
{
    const char *cmd = check ? "check" : "run";
    weft__run_opts_t o = {.check_only = check, .progress = WEFT__PROGRESS_AUTO};
    bool progress_given = false;
    enum {
        O_SET = 256, O_PROGRESS, O_SUMMARY, O_RESUME, O_RETRY, O_FORCE, O_RESTART, O_INIT,
        O_ITEMS
    };
    static const struct option longs[] = {
        {"set", required_argument, NULL, O_SET},
        {"plugin", required_argument, NULL, 'p'},
        {"items", required_argument, NULL, O_ITEMS},
        {"threads", required_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"progress", optional_argument, NULL, O_PROGRESS},
        {"summary-json", required_argument, NULL, O_SUMMARY},
        {"resume", optional_argument, NULL, O_RESUME},
        {"retry-failed", no_argument, NULL, O_RETRY},
        {"force", no_argument, NULL, O_FORCE},
        {"restart", no_argument, NULL, O_RESTART},
        {"init", no_argument, NULL, O_INIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Every option becomes at most one override (origins[k]: the option
     * that gave sets[k], NULL for --set); owned copies in `owned`.  The
     * words as typed, for the resume command (getopt reorders argv). */
    const char **sets = calloc((size_t)argc + 4, sizeof *sets);
    const char **origins = calloc((size_t)argc + 4, sizeof *origins);
    char **owned = calloc((size_t)argc + 5, sizeof *owned);
    char **typed = calloc((size_t)argc + 1, sizeof *typed);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    const char **values = calloc((size_t)argc + 1, sizeof *values);
    size_t n_owned = 0, n_values = 0, n_own = 0;
    const char *plugin = NULL, *items = NULL;
    int status = WEFT_EXIT_USAGE;
    if (!sets || !origins || !owned || !typed || !args || !values) {
        fputs("weft: out of memory\n", stderr);
        goto out;
    }
    args[0] = (char *)cmd; /* getopt reads from argv[1] */
    for (int k = 0; k < argc; k++)
        typed[k] = args[k + 1] = argv[k];
    /* The words after ::: (or ::::) are items, never options. */
    int n_opts = items_word_at(argc, argv, longs, "jop");
    int bad = inexact_option(n_opts, argv, longs, "jop");
    if (bad >= 0) {
        unknown_option(cmd, argv[bad]);
        goto out;
    }
    optind = 0; /* a full reset (glibc) */
    opterr = 0; /* the messages below say more */
    for (int c; (c = getopt_long(n_opts + 1, args, ":j:o:p:qh", longs, NULL)) != -1;) {
        const char *v = optarg;
        if (v)
            values[n_values++] = v; /* to tell an option's "--" from the end of options */
        switch (c) {
        case 'h':
            fputs(check ? check_help : run_help, stdout);
            status = 0;
            goto out;
        case 'q':
            o.quiet = true;
            break;
        case O_PROGRESS:
            if (progress_mode(v, &o.progress) != 0)
                goto out;
            progress_given = true;
            break;
        case O_RESUME:
            if (optarg && strcmp(optarg, "auto") != 0) {
                fprintf(stderr, "weft: %s: --resume=%s: expected --resume or --resume=auto\n",
                        cmd, optarg);
                goto out;
            }
            o.resume = true;
            o.resume_auto = optarg != NULL;
            break;
        case O_RETRY:
            o.resume = o.retry_failed = true;
            break;
        case O_FORCE:
            o.force = true;
            break;
        case O_RESTART:
            o.restart = true;
            break;
        case O_INIT:
            if (!check) {
                fputs("weft: run: --init is an option of weft check (a run always starts "
                      "the plugin)\n",
                      stderr);
                goto out;
            }
            o.check_init = true;
            break;
        case O_SUMMARY:
            if (!v[0]) {
                fputs("weft: --summary-json needs a file name (- for standard output)\n",
                      stderr);
                goto out;
            }
            o.summary_json = v;
            break;
        case O_SET:
            sets[o.n_sets++] = v;
            break;
        case 'p':
            plugin = v;
            break;
        case O_ITEMS:
            items = v;
            break;
        case 'j': {
            long n = threads_value(v);
            if (n < 0) {
                fprintf(stderr, "weft: --threads '%s': expected N from 0 to 1024 (0: one per "
                                "CPU), -K (-1: every CPU, -2: all but one) or P%% of the CPUs\n",
                        v);
                goto out;
            }
            char *set = malloc(32);
            if (!set)
                goto out;
            snprintf(set, 32, "run.threads=%ld", n);
            sets[o.n_sets++] = owned[n_owned++] = set;
            break;
        }
        case 'o': {
            char *set = output_override(v);
            if (!set) {
                fprintf(stderr, "weft: --output '%s': %s\n", v, strerror(errno));
                goto out;
            }
            sets[o.n_sets++] = owned[n_owned++] = set;
            break;
        }
        case ':': /* the word typed: a long option, or -X (also in -qX) */
            if (strncmp(args[optind - 1], "--", 2) == 0)
                fprintf(stderr, "weft: %s needs a value\n", args[optind - 1]);
            else
                fprintf(stderr, "weft: -%c needs a value\n", optopt);
            goto out;
        default: /* '?' */
            if (optopt) {
                char word[3] = {'-', (char)optopt, '\0'};
                unknown_option(cmd, word);
            } else {
                unknown_option(cmd, args[optind - 1]);
            }
            goto out;
        }
    }
    /* The "--" that ended the options (not an option's value): the words
     * after it are the command; an operand before it is CONFIG. */
    int end = -1;
    for (int k = 0; k < n_opts && end < 0; k++) {
        bool value = false;
        for (size_t i = 0; i < n_values && !value; i++)
            value = values[i] == typed[k];
        if (!value && strcmp(typed[k], "--") == 0)
            end = k;
    }
    for (int k = optind; k < n_opts + 1; k++) {
        int at = 0;
        while (at < n_opts && typed[at] != args[k])
            at++;
        if (end >= 0 && at > end)
            continue; /* a word of the command */
        if (o.config_path) {
            fprintf(stderr, "weft: one CONFIG only ('%s' and '%s')\n", o.config_path, args[k]);
            goto out;
        }
        o.config_path = args[k];
    }
    /* GNU style, `weft run -- -odd.ini`: with no CONFIG before "--" and
     * no -p, the first word after it is CONFIG; the rest is the command. */
    int words = end + 1;
    if (end >= 0 && !o.config_path && !plugin && words < n_opts)
        o.config_path = typed[words++];
    /* The one-liner's parts go first: --set can still override them. */
    if (o.config_path && plugin) {
        fprintf(stderr, "weft: %s: give CONFIG or -p PLUGIN, not both (--set run.plugin=NAME "
                        "runs a config with another plugin)\n",
                cmd);
        goto out;
    }
    if (o.config_path && items) {
        fprintf(stderr, "weft: %s: --items is for a run without a config (-p PLUGIN); with "
                        "CONFIG, use --set run.items=SPEC (relative to the config's folder) "
                        "or ::: ITEM...\n",
                cmd);
        goto out;
    }
    if (items && n_opts < argc) {
        fprintf(stderr, "weft: %s: the items are given twice (--items and %s)\n", cmd,
                argv[n_opts]);
        goto out;
    }
    /* own[k], with origin own_from[k]: also in `owned`, freed at the end. */
    char *own[4];
    const char *own_from[4];
#define OWN(set, from)                                                                     \
    do {                                                                                   \
        if (!(owned[n_owned++] = own[n_own] = (set)))                                     \
            goto nomem;                                                                    \
        own_from[n_own++] = (from);                                                        \
    } while (0)
    if (plugin)
        OWN(joined("run.plugin=", plugin), "-p");
    if (items)
        OWN(joined("run.items=", items), "--items");
    if (n_opts < argc) {
        char *const *rest = argv + n_opts + 1;
        int n_rest = argc - n_opts - 1;
        for (int k = 0; k < n_rest; k++)
            if (is_items_word(rest[k])) {
                fprintf(stderr, "weft: %s: one %s list only (GNU parallel's combinations of "
                                "several are not supported)\n",
                        cmd, argv[n_opts]);
                goto out;
            }
        bool file = strcmp(argv[n_opts], "::::") == 0;
        if (file && n_rest != 1) {
            fprintf(stderr, "weft: %s: :::: takes one FILE, whose lines are the items\n", cmd);
            goto out;
        }
        OWN(file ? lines_set(rest[0]) : items_set(rest, n_rest), argv[n_opts]);
    }
    if (end >= 0 && words < n_opts)
        OWN(command_set(typed + words, n_opts - words), "the words after --");
#undef OWN
    /* Before the options' sets, in the order above. */
    memmove(sets + n_own, sets, o.n_sets * sizeof *sets);
    memmove(origins + n_own, origins, o.n_sets * sizeof *origins);
    for (size_t k = 0; k < n_own; k++) {
        sets[k] = own[k];
        origins[k] = own_from[k];
    }
    o.n_sets += n_own;
    if (o.restart && o.resume) {
        fprintf(stderr, "weft: %s: --restart discards the journal that %s would use; "
                        "give one of them\n",
                cmd, o.retry_failed ? "--retry-failed" : "--resume");
        goto out;
    }
    /* --quiet silences the progress too, unless --progress asks for it. */
    if (o.quiet && !progress_given)
        o.progress = WEFT__PROGRESS_OFF;
    if (!o.config_path && !plugin) {
        fprintf(stderr, "weft: %s: which config? (weft %s CONFIG, or without one: weft %s -p "
                        "PLUGIN ... ::: ITEM...)\n",
                cmd, cmd, cmd);
        goto out;
    }
    bool *is_value = calloc((size_t)argc + 1, sizeof *is_value);
    for (int k = 0; is_value && k < n_opts; k++)
        for (size_t i = 0; i < n_values && !is_value[k]; i++)
            is_value[k] = values[i] == typed[k];
    int stop = end >= 0 ? end : n_opts;
    if (!check && (!is_value || !(owned[n_owned++] = resume_command(
                                      prog, argc, typed, o.retry_failed, stop, is_value)))) {
        free(is_value);
        fputs("weft: out of memory\n", stderr);
        goto out;
    }
    free(is_value);
    o.resume_command = check ? NULL : owned[n_owned - 1];
    o.sets = sets;
    o.set_origins = origins;
    status = weft__run(&o);
    goto out;
nomem:
    fputs("weft: out of memory\n", stderr);
out:
    for (size_t k = 0; k < n_owned; k++)
        free(owned[k]);
    free(owned);
    free(sets);
    free(origins);
    free(values);
    free(typed);
    free(args);
    return status;
}

/* The plugin search folders without a config ($WEFT_PLUGIN_PATH, install). */
static int search_dirs(char ***dirs, size_t *n)
{
    int rc = weft__plugin_dirs(NULL, NULL, dirs, n);
    if (rc)
        fprintf(stderr, "weft: plugin search path: %s\n", weft_strerror(rc));
    return rc;
}

static void free_dirs(char **dirs, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(dirs[k]);
    free(dirs);
}

static int cmd_describe(int argc, char **argv)
{
    if (argc == 1 && is_help(argv[0])) {
        fputs(describe_help, stdout);
        return 0;
    }
    if (argc != 1 || argv[0][0] == '-') {
        fputs(describe_help, stderr);
        return WEFT_EXIT_USAGE;
    }
    char **dirs;
    size_t n;
    if (search_dirs(&dirs, &n))
        return WEFT_EXIT_USAGE;
    weft__plugin_t *p = NULL;
    char err[2048];
    int rc = weft__plugin_open(&p, argv[0], dirs, n, err, sizeof err);
    free_dirs(dirs, n);
    if (rc) {
        fprintf(stderr, "weft: %s\n", err);
        return WEFT_EXIT_USAGE;
    }
    rc = weft__describe(stdout, p);
    weft__plugin_close(&p);
    if (rc)
        fprintf(stderr, "weft: plugin %s has a default that its own checks refuse\n",
                argv[0]);
    return rc ? WEFT_EXIT_USAGE : 0;
}

static int cmd_plugins(int argc, char **argv)
{
    if (argc == 1 && is_help(argv[0])) {
        fputs(plugins_help, stdout);
        return 0;
    }
    bool names = argc == 1 && strcmp(argv[0], "--names") == 0;
    if (argc != 0 && !names) {
        fputs(plugins_help, stderr);
        return WEFT_EXIT_USAGE;
    }
    char **dirs;
    size_t n;
    if (search_dirs(&dirs, &n))
        return WEFT_EXIT_USAGE;
    if (names) {
        /* Completion wants silence, not advice, when nothing is found. */
        weft__list_plugin_names(stdout, dirs, n);
        free_dirs(dirs, n);
        return 0;
    }
    size_t found = weft__list_plugins(stdout, dirs, n);
    if (!found) {
        fprintf(stderr, "weft: no plugins in");
        for (size_t k = 0; k < n; k++)
            fprintf(stderr, " %s", dirs[k]);
        fprintf(stderr, " (set WEFT_PLUGIN_PATH)\n");
    }
    free_dirs(dirs, n);
    return 0;
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
    static const char *const commands[] = {"run", "check", "describe", "plugins", "log"};
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "check") == 0)
        return cmd_run(argv[0], argc - 2, argv + 2, cmd[0] == 'c');
    if (strcmp(cmd, "describe") == 0)
        return cmd_describe(argc - 2, argv + 2);
    if (strcmp(cmd, "plugins") == 0)
        return cmd_plugins(argc - 2, argv + 2);
    if (strcmp(cmd, "log") == 0)
        return weft__cmd_log(argc - 2, argv + 2);
    const char *near = weft__suggest(cmd, commands, sizeof commands / sizeof *commands);
    fprintf(stderr, "weft: unknown command '%s'", cmd);
    if (near)
        fprintf(stderr, "; did you mean '%s'?", near);
    fputs("\n\n", stderr);
    return usage(stderr, WEFT_EXIT_USAGE);
}
