/* SPDX-License-Identifier: MIT */
/*
 * End to end: a run the command line describes, with no config file
 * (weft run -p PLUGIN [-- CMD ARG...] ::: ITEM... | :::: FILE | --items
 * SPEC), format = raw, and the same hostile inputs through GNU parallel,
 * whose output weft's must match byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

extern char **environ;

static const char *tmp; /* the temporary folder: also the current one */

static int setup(void **state)
{
    (void)state;
    if (!(tmp = e2e_setup("oneliner")))
        return -1;
    return chdir(tmp); /* relative paths of a command-line run are against it */
}

/* Inputs a shell, a quoting layer or a template engine could mangle. */
static const char *const hostile[] = {
    "plain",     "two words", "it's",    "$HOME",    "-n",       "x\ny",     "*",
    "`id`",      "$(id)",     "\"q\"",   "back\\slash", ";ls",   "|cat",     "&",
    "  lead",    "trail  ",   "\t",      "\xc3\xbc", "\xff\xfe", "{}",       "",
    "--",        "a.tar.gz",  "dir/b.c", "{.}",      "%s",       "\\n",
};
enum { N_HOSTILE = sizeof hostile / sizeof *hostile };

/* argv = head..., ":::", hostile... (NULL-terminated, static). */
static const char **with_items(const char *const *head)
{
    static const char *argv[E2E_ARGV_MAX];
    size_t n = 0;
    while (head[n])
        argv[n] = head[n], n++;
    argv[n++] = ":::";
    for (size_t k = 0; k < N_HOSTILE; k++)
        argv[n++] = hostile[k];
    argv[n] = NULL;
    assert_true(n < E2E_ARGV_MAX);
    return argv;
}

/* Runs argv (a program on $PATH) with stdout to a file, stdin from
 * /dev/null; its stdout, NUL-terminated, length in *len. */
static char *capture(const char *const *argv, size_t *len, int *status)
{
    const char *out = e2e_path(".capture");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return e2e_slurp(out, len);
}

static bool have_parallel(void)
{
    return system("parallel --version 2>/dev/null | grep -q 'GNU parallel'") == 0;
}

/* What `printf '[%s]\n' ITEM` prints for every hostile item, in order. */
static char *bracketed(size_t *len)
{
    size_t n = 0;
    for (size_t k = 0; k < N_HOSTILE; k++)
        n += strlen(hostile[k]) + 3;
    char *s = malloc(n + 1), *o = s;
    assert_non_null(s);
    for (size_t k = 0; k < N_HOSTILE; k++)
        o += sprintf(o, "[%s]\n", hostile[k]);
    *len = (size_t)(o - s);
    return s;
}

/* ---- the one-liner ---------------------------------------------------- */

/* Every item reaches the command as one argv word, byte for byte, and the
 * commands' output is printed as it is, in input order, on any -j. */
static void oneliner_items_exact_in_order(void **state)
{
    (void)state;
    size_t want_len;
    char *want = bracketed(&want_len);
    const char *threads[] = {"1", "4", "16"};
    for (size_t t = 0; t < 3; t++) {
        e2e_outcome_t o = e2e_run(with_items((const char *const[]){
            "run", "-q", "-j", threads[t], "-p", "exec", "--", "printf", "[%s]\\n", "{}",
            NULL}));
        e2e_expect(&o, 0, NULL);
        if (strcmp(o.out, want) != 0)
            fail_msg("-j %s: got\n%s\nwant\n%s", threads[t], o.out, want);
        assert_string_equal(o.err, ""); /* -q: nothing but errors */
        e2e_free(&o);
    }
    free(want);

    /* Slow items first: the output still follows the items. */
    e2e_outcome_t o = E2E_RUN("run", "-q", "-j", "3", "-p", "exec", "--", "sh", "-c",
                              "sleep 0.$1; echo $1", "sh", "{}", ":::", "3", "1", "2");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "3\n1\n2\n");
    e2e_free(&o);

    /* One word is the template itself: quotes group, placeholders work. */
    o = E2E_RUN("run", "-q", "-p", "exec", "--", "printf '<%s>' {/.} {//}", ":::",
                "x/a b.tar.gz", "c");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "<a b.tar><x><c><.>");
    e2e_free(&o);

    /* Nothing is added or taken: no final newline, an empty output. */
    o = E2E_RUN("run", "-q", "-p", "exec", "--", "printf", "%s", "{}", ":::", "a", "", "b\n\n");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "ab\n\n");
    e2e_free(&o);
}

/* :::: FILE (its lines, relative to the current folder), --items SPEC, a
 * plugin without a command; -o FILE picks the format by its name. */
static void oneliner_sources_and_outputs(void **state)
{
    (void)state;
    e2e_write("list.txt", "alpha\nbeta gamma\n");
    e2e_outcome_t o = E2E_RUN("run", "-q", "-p", "exec", "--", "echo", "[{}]", "::::",
                              "list.txt");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "[alpha]\n[beta gamma]\n");
    e2e_free(&o);

    /* add_one's value is the item's number + 1: a non-string value is its
     * JSON and a newline. */
    o = E2E_RUN("run", "-q", "-p", "add_one", "--items", "3");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "1\n2\n3\n");
    e2e_free(&o);
    o = E2E_RUN("run", "-q", "-p", "add_one", "--set", "args.step=10", ":::", "x", "y");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "10\n11\n");
    e2e_free(&o);

    /* To a file: the format its name says, exec's value without its last
     * newline as in any JSON output; the journal beside it. */
    o = E2E_RUN("run", "-q", "-o", "out.jsonl", "-p", "exec", "--", "echo", "{}", ":::",
                "a b", "c");
    e2e_expect(&o, 0, NULL);
    char *got = e2e_slurp(e2e_path("out.jsonl"), NULL);
    assert_non_null(got);
    assert_string_equal(got, "\"a b\"\n\"c\"\n");
    free(got);
    e2e_free(&o);
    /* format = raw to a file, by name. */
    o = E2E_RUN("run", "-q", "-o", "out.txt", "--set", "run.format=raw", "-p", "exec", "--",
                "echo", "{}", ":::", "a b", "c");
    e2e_expect(&o, 0, NULL);
    got = e2e_slurp(e2e_path("out.txt"), NULL);
    assert_non_null(got);
    assert_string_equal(got, "a b\nc\n");
    free(got);
    e2e_free(&o);

    /* A failed item prints nothing, the others print, exit 1. */
    o = E2E_RUN("run", "-q", "-p", "exec", "--", "sh", "-c", "echo $1; exit $1", "sh", "{}",
                ":::", "0", "3", "0");
    e2e_expect(&o, 1, "item 1 failed: exit status 3");
    assert_string_equal(o.out, "0\n0\n");
    e2e_free(&o);

    /* weft check says what would run. */
    o = E2E_RUN("check", "-p", "exec", "--", "echo", ":::", "a", "b");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "command line: ok"));
    assert_non_null(strstr(o.out, "2 items"));
    assert_non_null(strstr(o.out, "raw values"));
    e2e_free(&o);
}

/* ::: and -- also override a config's items and command. */
static void oneliner_overrides_a_config(void **state)
{
    (void)state;
    const char *ini = e2e_write("cmd.ini", "[run]\nplugin = exec\nitems = 5\noutput = -\n"
                                           "[args]\ncommand = echo config {}\n");
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s", ini);
    e2e_outcome_t o = E2E_RUN("run", "-q", cfg, ":::", "p", "q");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "\"config p\"\n\"config q\"\n"); /* the config's format */
    e2e_free(&o);
    o = E2E_RUN("run", "-q", cfg, "--", "echo", "cli", "{}", ":::", "p");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "\"cli p\"\n");
    e2e_free(&o);
    /* GNU style: after --, the CONFIG when none came before. */
    o = E2E_RUN("run", "-q", "--", cfg, "echo", "late", "{}", ":::", "p");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "\"late p\"\n");
    e2e_free(&o);
}

/* What a user gets wrong is said, and nothing runs. */
static void oneliner_errors(void **state)
{
    (void)state;
    static const struct {
        const char *args[12];
        const char *err;
    } cases[] = {
        {{"run", "-p", "exec", "--", "echo"},
         "command line: which items? Give them after ::: (::: a b c)"},
        {{"run", "-p", "exec", ":::", "a"},
         "missing required argument 'command' (string: argv template"},
        {{"run", "-p", "add_one", "--", "echo", ":::", "a"},
         "the words after --: unknown argument 'command' for plugin add_one"},
        {{"run", "-p", "nosuch", ":::", "a"}, "plugin nosuch: no nosuch.so in"},
        {{"run", "x.ini", "-p", "exec", ":::", "a"}, "give CONFIG or -p PLUGIN, not both"},
        {{"run", "-p", "exec", "--items", "3", "--", "echo", ":::", "a"},
         "the items are given twice (--items and :::)"},
        {{"run", "-p", "exec", "--", "echo", ":::", "a", ":::", "b"}, "one ::: list only"},
        {{"run", "-p", "exec", "--", "echo", "::::", "a", "b"}, ":::: takes one FILE"},
        {{"run", "-p", "exec", "--", "echo", "::::", "missing.txt"},
         "::::: items = 'lines:"},
        {{"run", "-p", "exec", "--set", "run.record=full", "--", "echo", ":::", "a"},
         "format = raw writes each value's bytes alone"},
        {{"run", "-j", "2"}, "which config? (weft run CONFIG, or without one: weft run -p "},
        /* An option's value is never the ::: separator. */
        {{"run", "-o", ":::", "-p", "add_one", "--items", "2"}, "output = '"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        e2e_outcome_t o = e2e_run(cases[k].args);
        e2e_expect(&o, 2, cases[k].err);
        assert_string_equal(o.out, "");
        e2e_free(&o);
    }
}

/* A run with no config file has no folder of its own: a plugin in the
 * current folder is never loaded (also for weft run -, whose relative
 * paths are against the current folder); a config file's folder is. */
static void oneliner_never_loads_from_cwd(void **state)
{
    (void)state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp '%s/add_one.so' '%s/herehere.so'", getenv("WEFT_PLUGINS"),
             tmp);
    assert_int_equal(system(cmd), 0);
    e2e_outcome_t o = E2E_RUN("run", "-q", "-p", "herehere", ":::", "a");
    e2e_expect(&o, 2, "plugin herehere: no herehere.so in");
    e2e_free(&o);

    const char *ini = e2e_write("here.ini", "[run]\nplugin = herehere\nitems = 2\n"
                                            "output = -\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run -q - < '%s' > piped.out 2> piped.err",
             tmp, getenv("WEFT_EXE"), ini);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    char *err = e2e_slurp(e2e_path("piped.err"), NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "plugin herehere: no herehere.so in"));
    free(err);

    o = E2E_RUN("run", "-q", ini); /* the config's own folder is searched */
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "1\n2\n");
    e2e_free(&o);
}

/* The resume command weft prints puts --resume where the options end, so
 * that it is not taken for an item or a word of the command. */
static void oneliner_resume_command(void **state)
{
    (void)state;
    /* A journaled run (to a file) that is refused because an earlier one
     * was interrupted prints the command that finishes it. */
    const char *args[] = {"run", "-q", "-o", "slow.jsonl", "-p", "exec", "--",
                          "sh", "-c", "sleep 30", ":::", "a", "--resume", NULL};
    int pid = e2e_spawn(args);
    char journal[1024];
    snprintf(journal, sizeof journal, "%s", e2e_path("slow.jsonl.journal"));
    for (int k = 0; k < 200 && access(journal, F_OK) != 0; k++)
        e2e_sleep(0.05);
    assert_int_equal(access(journal, F_OK), 0);
    e2e_sleep(0.3);
    kill(pid, SIGTERM); /* passed on to the sleep: nothing is left running */
    assert_int_equal(e2e_wait(pid), 128 + SIGTERM);
    e2e_outcome_t o = e2e_run(args);
    e2e_expect(&o, 2, "did not finish");
    /* The words after ::: are items: "--resume" is one, kept as typed. */
    assert_non_null(strstr(o.err, "run -q -o slow.jsonl -p exec --resume -- sh -c "
                                  "'sleep 30' ::: a --resume"));
    e2e_free(&o);
}

/* ---- GNU parallel ------------------------------------------------------ */

/* The same hostile inputs through weft and GNU parallel (-0: an item's
 * newline is data; -k: input order; -q: the words are argv) print the
 * same bytes: argv commands, placeholders, a shell command line. */
static void oneliner_matches_gnu_parallel(void **state)
{
    (void)state;
    if (!have_parallel())
        skip(); /* .ci/deps installs it: CI always runs this */
    static const struct {
        const char *weft[12];
        const char *parallel[12];
    } cases[] = {
        {{"run", "-q", "-j", "4", "-p", "exec", "--", "printf", "[%s]\\n", "{}"},
         {"parallel", "-0", "-k", "-q", "-j", "4", "printf", "[%s]\\n", "{}"}},
        {{"run", "-q", "-p", "exec", "--", "printf", "%s|%s|%s\\n", "{/}", "{#}", "x{}y"},
         {"parallel", "-0", "-k", "-q", "printf", "%s|%s|%s\\n", "{/}", "{#}", "x{}y"}},
        {{"run", "-q", "-j", "3", "-p", "exec", "--set", "args.shell=true", "--",
          "printf '%s' {} | od -An -c | tr -s ' '"},
         {"parallel", "-0", "-k", "-j", "3", "printf '%s' {} | od -An -c | tr -s ' '"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        e2e_outcome_t o = e2e_run(with_items(cases[k].weft));
        e2e_expect(&o, 0, NULL);
        size_t want_len;
        int status;
        char *want = capture(with_items(cases[k].parallel), &want_len, &status);
        assert_non_null(want);
        assert_int_equal(status, 0);
        if (strlen(o.out) != want_len || memcmp(o.out, want, want_len) != 0)
            fail_msg("case %zu: weft printed\n%s\nGNU parallel\n%s", k, o.out, want);
        assert_true(want_len > N_HOSTILE); /* something ran for every item */
        free(want);
        e2e_free(&o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oneliner_items_exact_in_order),
        cmocka_unit_test(oneliner_sources_and_outputs),
        cmocka_unit_test(oneliner_overrides_a_config),
        cmocka_unit_test(oneliner_errors),
        cmocka_unit_test(oneliner_never_loads_from_cwd),
        cmocka_unit_test(oneliner_resume_command),
        cmocka_unit_test(oneliner_matches_gnu_parallel),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
