/* SPDX-License-Identifier: MIT */
/*
 * End to end: the exec plugin run by the weft binary on configs written to a
 * temporary folder.  Outputs are compared byte for byte with what the items
 * must give when each reaches the command as exactly one argument; failures
 * through `record = full`, so the message is checked with the item.
 *
 * weft's stdin is a pipe this process keeps open for the whole run: a
 * command that read weft's stdin instead of /dev/null would block, and the
 * item's timeout would say so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "util.h" /* weft__mono_s */

static const char *tmp; /* the temporary folder, from e2e_setup */

/* weft's stdin a pipe held open (see the top); SIGPIPE ignored, as some
 * launchers leave it: the commands must get it back. */
static const e2e_options_t run_opts = {.stdin_pipe = true, .ignore_sigpipe = true};
#define RUN(...) E2E_RUN_WITH(&run_opts, __VA_ARGS__)

/* Checks status, stdout (exactly, unless NULL) and a piece of stderr. */
static void expect(e2e_outcome_t *o, int status, const char *out, const char *in_err)
{
    e2e_expect(o, status, in_err);
    if (out && strcmp(o->out, out) != 0)
        fail_msg("stdout:\n%s\nwant:\n%s\nstderr:\n%s", o->out, out, o->err);
    e2e_free(o);
}

/* items.txt: one item per line. */
static void items(const char *const *lines, size_t n)
{
    FILE *f = fopen(e2e_path("items.txt"), "wb");
    assert_non_null(f);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s\n", lines[k]);
    assert_int_equal(fclose(f), 0);
}

/* exec.ini: the items of items.txt, JSON lines on stdout, full records;
 * run_extra goes to [run], args to [args]. */
static const char *job(const char *run_extra, const char *args)
{
    return e2e_writef("exec.ini",
                      "[run]\nplugin = exec\nitems = lines:items.txt\noutput = -\n"
                      "format = jsonl\nrecord = full\n%s[args]\n%s",
                      run_extra, args);
}

/* Fails if a command an item tried to inject left its mark. */
static void assert_no_pwned(void)
{
    static const char *const marks[] = {"PWNED", "PWNED2", "PWNED3", "PWNED4", "*"};
    for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++)
        if (access(e2e_path(marks[k]), F_OK) == 0)
            fail_msg("%s/%s exists: an item ran as shell code", tmp, marks[k]);
}

/* The JSON string weft writes for a string of printable ASCII and UTF-8. */
static void json_string(char *out, size_t size, const char *s)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s; s++) {
        assert_true(n + 8 < size);
        if (*s == '"' || *s == '\\')
            out[n++] = '\\', out[n++] = *s;
        else if (*s == '\t')
            out[n++] = '\\', out[n++] = 't';
        else if (*s == '\n')
            out[n++] = '\\', out[n++] = 'n';
        else
            out[n++] = *s;
    }
    out[n++] = '"';
    out[n] = '\0';
}

/* Appends text to want (size bytes), which must hold it. */
static void append(char *want, size_t size, const char *text)
{
    size_t len = strlen(want), n = strlen(text);
    assert_true(len + n < size);
    memcpy(want + len, text, n + 1);
}

/* Appends {"index":i,"ok":true,"value":"..."} and a newline to want. */
static void want_ok(char *want, size_t size, size_t i, const char *value)
{
    char line[1200];
    snprintf(line, sizeof line, "{\"index\":%zu,\"ok\":true,\"value\":", i);
    append(want, size, line);
    json_string(line, sizeof line, value);
    append(want, size, line);
    append(want, size, "}\n");
}

static void want_fail(char *want, size_t size, size_t i, const char *msg)
{
    char line[1200];
    snprintf(line, sizeof line, "{\"index\":%zu,\"ok\":false,\"error\":", i);
    append(want, size, line);
    json_string(line, sizeof line, msg);
    append(want, size, line);
    append(want, size, "}\n");
}

static int setup(void **state)
{
    (void)state;
    return (tmp = e2e_setup("exec")) ? 0 : -1;
}

/* ---- items reach the command untouched, as one argument ------------------ */

static const char *const nasty[] = {
    "plain",
    "two words",
    "  lead and trail  ",
    "it's",
    "say \"hi\"",
    "back\\slash \\n \\",
    "$HOME ${HOME} ~",
    "a; touch PWNED;",
    "*",
    "$(touch PWNED2)",
    "`touch PWNED3`",
    "\"; touch PWNED4; \"",
    "x'; touch PWNED; '",
    "{} {index} {{",
    "-n",
    "",
    "\t tab",
    "caf\xC3\xA9 \xE6\x97\xA5",
    "%s %d %%",
};
enum { N_NASTY = sizeof nasty / sizeof nasty[0] };

static void exec_items_are_one_argument(void **state)
{
    (void)state;
    items(nasty, N_NASTY);
    char want[8192];

    /* printf's format is its own word: an item is never a format. */
    want[0] = '\0';
    for (size_t k = 0; k < N_NASTY; k++)
        want_ok(want, sizeof want, k, nasty[k]);
    e2e_outcome_t o = RUN("run", job("", "command = printf %s {}\n"), "-j", "3");
    expect(&o, 0, want, "19 ok, 0 failed");
    assert_no_pwned();

    /* The argv a program receives, one [..] per argument. */
    want[0] = '\0';
    for (size_t k = 0; k < N_NASTY; k++) {
        char v[256];
        snprintf(v, sizeof v, "[%s]", nasty[k]);
        want_ok(want, sizeof want, k, v);
    }
    o = RUN("run", job("", "command = /bin/sh -c 'printf \"[%s]\" \"$@\"' sh {}\n"));
    expect(&o, 0, want, "19 ok");
    assert_no_pwned();

    /* Placeholders inside words, quoting, escapes, literal braces. */
    static const char *const two[] = {"x y", "it's"};
    items(two, 2);
    o = RUN("run", job("", "command = /bin/sh -c 'printf \"[%s]\" \"$@\"' sh pre{}post "
                           "\"a {} b\" '{}' \"{index}:{}\" {{}} \\{} '' \"\\\"\\\\\\n\" "
                           "a\\ b\\'\n"));
    want[0] = '\0';
    want_ok(want, sizeof want, 0,
            "[prex ypost][a x y b][x y][0:x y][{}][{}][][\"\\\\n][a b']");
    want_ok(want, sizeof want, 1,
            "[preit'spost][a it's b][it's][1:it's][{}][{}][][\"\\\\n][a b']");
    expect(&o, 0, want, "2 ok");
}

/* ---- placeholders --------------------------------------------------------- */

static void exec_placeholders(void **state)
{
    (void)state;
    static const struct {
        const char *text, *stem, *dir;
    } paths[] = {
        {"a/b/c.tar.gz", "c.tar", "a/b"},
        {"plain", "plain", "."},
        {"/abs/x.txt", "x", "/abs"},
        {".bashrc", ".bashrc", "."},
        {"/", "/", "/"},
        {"d/e/", "e", "d"},
        {"//twice//f.c", "f", "//twice"},
        {"noext.", "noext", "."},
        {"sp ace/my file.txt", "my file", "sp ace"},
        {"", "", "."},
    };
    enum { N = sizeof paths / sizeof paths[0] };
    const char *lines[N];
    for (size_t k = 0; k < N; k++)
        lines[k] = paths[k].text;
    items(lines, N);
    char want[4096] = "";
    for (size_t k = 0; k < N; k++) {
        char v[512];
        snprintf(v, sizeof v, "[%zu][%s][%s][%s][%s][%zu]", k, paths[k].stem,
                 paths[k].dir, paths[k].text, paths[k].text, k);
        want_ok(want, sizeof want, k, v);
    }
    e2e_outcome_t o =
        RUN("run", job("", "command = /bin/sh -c 'printf \"[%s]\" \"$@\"' sh "
                           "{index} {stem} {dir} {path} {} {number}\n"));
    expect(&o, 0, want, "10 ok");

    /* Range items: {} and {number} are the number, {index} counts from 0. */
    const char *cfg =
        job("", "command = printf %s/%s/%s/%s {} {index} {number} {stem}\n");
    o = RUN("run", cfg, "--set", "run.items=5..8");
    want[0] = '\0';
    want_ok(want, sizeof want, 0, "5/0/5/5");
    want_ok(want, sizeof want, 1, "6/1/6/6");
    want_ok(want, sizeof want, 2, "7/2/7/7");
    expect(&o, 0, want, "3 ok");
}

static void exec_appends_item_without_placeholder(void **state)
{
    (void)state;
    static const char *const two[] = {"a b", "c"};
    items(two, 2);
    char want[512] = "";
    want_ok(want, sizeof want, 0, "<a b>");
    want_ok(want, sizeof want, 1, "<c>");
    e2e_outcome_t o = RUN("run", job("", "command = printf '<%s>'\n"));
    expect(&o, 0, want, "2 ok");

    /* Literal braces are not a placeholder. */
    want[0] = '\0';
    want_ok(want, sizeof want, 0, "{a b}");
    want_ok(want, sizeof want, 1, "{c}");
    o = RUN("run", job("", "command = printf {{%s}}\n"));
    expect(&o, 0, want, "2 ok");
}

/* ---- GNU parallel's placeholders, hostile inputs ---------------------------- */

/* Items as JSON strings (so that one may hold a newline), and what each
 * placeholder must give, written out by hand. */
static const struct {
    const char *json, *text, *noext, *base, *dir, *stem, *ext;
} hostile[] = {
    {"\"my dir/it's a \\\"file\\\".tar.gz\"", "my dir/it's a \"file\".tar.gz",
     "my dir/it's a \"file\".tar", "it's a \"file\".tar.gz", "my dir", "it's a \"file\".tar",
     ".gz"},
    {"\"$HOME/$(touch PWNED).sh\"", "$HOME/$(touch PWNED).sh", "$HOME/$(touch PWNED)",
     "$(touch PWNED).sh", "$HOME", "$(touch PWNED)", ".sh"},
    {"\"line one\\nline two.txt\"", "line one\nline two.txt", "line one\nline two",
     "line one\nline two.txt", ".", "line one\nline two", ".txt"},
    {"\"-n\"", "-n", "-n", "-n", ".", "-n", ""},
    {"\"--help.x\"", "--help.x", "--help", "--help.x", ".", "--help", ".x"},
    {"\"noext\"", "noext", "noext", "noext", ".", "noext", ""},
    {"\".bashrc\"", ".bashrc", ".bashrc", ".bashrc", ".", ".bashrc", ""},
    {"\"dir/.hidden.txt\"", "dir/.hidden.txt", "dir/.hidden", ".hidden.txt", "dir",
     ".hidden", ".txt"},
    {"\"trail.d/\"", "trail.d/", "trail/", "trail.d", ".", "trail", ".d"},
    {"\"a.b.c/d.e.f\"", "a.b.c/d.e.f", "a.b.c/d.e", "d.e.f", "a.b.c", "d.e", ".f"},
    {"\"x; `touch PWNED3`.y\"", "x; `touch PWNED3`.y", "x; `touch PWNED3`",
     "x; `touch PWNED3`.y", ".", "x; `touch PWNED3`", ".y"},
    {"\"'; touch PWNED; '\"", "'; touch PWNED; '", "'; touch PWNED; '", "'; touch PWNED; '",
     ".", "'; touch PWNED; '", ""},
    {"\"*.txt\"", "*.txt", "*", "*.txt", ".", "*", ".txt"},
    {"\"  two  spaces .c\"", "  two  spaces .c", "  two  spaces ", "  two  spaces .c", ".",
     "  two  spaces ", ".c"},
    {"\"/abs/x\"", "/abs/x", "/abs/x", "x", "/abs", "x", ""},
    {"\"\"", "", "", "", ".", "", ""},
};
enum { N_HOSTILE = sizeof hostile / sizeof hostile[0] };

/* items.json: the hostile items. */
static void hostile_items(void)
{
    char json[4096] = "[";
    for (size_t k = 0; k < N_HOSTILE; k++) {
        append(json, sizeof json, k ? ", " : "");
        append(json, sizeof json, hostile[k].json);
    }
    append(json, sizeof json, "]\n");
    e2e_write_bytes("items.json", json, strlen(json));
}

/* Every placeholder, each its own argument or inside a word, in both
 * modes: the argv the command gets is exactly the expected bytes. */
static void exec_gnu_placeholders(void **state)
{
    (void)state;
    hostile_items();
    static const char *const commands[] = {
        /* argv words */
        "command = printf [%s] {} {.} {/} {//} {/.} {ext} {name} {#} {index:03} "
        "<{/.}|{//}>\n",
        /* the same through sh -c, as positional parameters; quoted three ways */
        "shell = true\ncommand = printf '[%s]' {} {.} {/} {//} \"{/.}\" '{ext}' {name} "
        "{#} {index:03} \"<{/.}|\"'{//}>'\n",
    };
    for (size_t c = 0; c < 2; c++) {
        char want[16384] = "";
        for (size_t k = 0; k < N_HOSTILE; k++) {
            char v[2048];
            snprintf(v, sizeof v, "[%s][%s][%s][%s][%s][%s][%s][%zu][%03zu][<%s|%s>]",
                     hostile[k].text, hostile[k].noext, hostile[k].base, hostile[k].dir,
                     hostile[k].stem, hostile[k].ext, hostile[k].base, k + 1, k,
                     hostile[k].stem, hostile[k].dir);
            want_ok(want, sizeof want, k, v);
        }
        char args[1024];
        snprintf(args, sizeof args, "%s", commands[c]);
        e2e_outcome_t o = RUN("run", job("", args), "--set", "run.items=json:items.json",
                              "-j", "3");
        expect(&o, 0, want, "16 ok, 0 failed");
        assert_no_pwned();
    }

    /* Range items: the text is the number. */
    e2e_outcome_t o = RUN("run", job("", "command = printf %s/%s/%s/%s/%s {.} {/} {//} {#} "
                                         "{/.}\n"),
                          "--set", "run.items=7..9");
    char want[512] = "";
    want_ok(want, sizeof want, 0, "7/7/./1/7");
    want_ok(want, sizeof want, 1, "8/8/./2/8");
    expect(&o, 0, want, "2 ok");
}

/* {#} is index + 1; {%} the slot: within 1..threads, and never held by
 * two items at once (mkdir of slot-N is the test: it fails when the
 * folder is there), in thread and process mode. */
static void slots(const char *isolate, const char *threads, unsigned n_threads)
{
    enum { N = 24 };
    char args[1024], run[64];
    snprintf(run, sizeof run, "isolate = %s\n", isolate);
    snprintf(args, sizeof args,
             "shell = true\n"
             "command = mkdir \"slot-{%%}\" || exit 9; sleep 0.05; rmdir 'slot-{%%}'; "
             "printf '%%s %%s %%s' {#} {%%} {index}\n");
    const char *cfg = e2e_writef("slots.ini",
                                 "[run]\nplugin = exec\nitems = %d\noutput = -\n"
                                 "format = jsonl\n%s[args]\n%s",
                                 N, run, args);
    e2e_outcome_t o = RUN("run", cfg, "-j", threads);
    e2e_expect(&o, 0, NULL);
    unsigned used = 0, seen = 0;
    for (const char *at = o.out; (at = strchr(at, '"')); seen++) {
        unsigned seq = 0, slot = 0, index = 0; /* a line is "SEQ SLOT INDEX" */
        at++;
        assert_int_equal(sscanf(at, "%u %u %u", &seq, &slot, &index), 3);
        if (seq != index + 1 || slot < 1 || slot > n_threads)
            fail_msg("%s, -j %s: {#} %u {%%} %u for index %u:\n%s", isolate, threads, seq,
                     slot, index, o.out);
        used |= 1u << slot;
        at = strchr(at, '\n');
        assert_non_null(at);
    }
    assert_int_equal(seen, N);
    /* Several workers ran items (each sleeps, so the others take some). */
    if (n_threads > 1 && __builtin_popcount(used) < 2)
        fail_msg("%s, -j %s: one slot ran every item:\n%s", isolate, threads, o.out);
    e2e_free(&o);
}

static void exec_seq_and_slot(void **state)
{
    (void)state;
    slots("thread", "4", 4);
    slots("process", "3", 3);
    slots("thread", "1", 1);
    /* argv words too. */
    e2e_outcome_t o =
        RUN("run", job("", "command = printf %s-%s {#} {%}\n"), "--set", "run.items=3",
            "-j", "1");
    expect(&o, 0,
           "{\"index\":0,\"ok\":true,\"value\":\"1-1\"}\n"
           "{\"index\":1,\"ok\":true,\"value\":\"2-1\"}\n"
           "{\"index\":2,\"ok\":true,\"value\":\"3-1\"}\n",
           "3 ok");
}

/* files:DIR/`**`/PATTERN feeding commands: every depth, the loop link not
 * entered; no match is a run of nothing that says why. */
static void exec_globstar_items(void **state)
{
    (void)state;
    static const char *const dirs[] = {"gs", "gs/a", "gs/a/b", "gs/.hid"};
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(mkdir(e2e_path(dirs[k]), 0777), 0);
    e2e_write_bytes("gs/top.txt", "", 0);
    e2e_write_bytes("gs/a/b/deep name.txt", "", 0);
    e2e_write_bytes("gs/a/skip.md", "", 0);
    e2e_write_bytes("gs/.hid/no.txt", "", 0);
    assert_int_equal(symlink("..", e2e_path("gs/a/up")), 0);
    const char *cfg = e2e_writef("gs.ini", "[run]\nplugin = exec\nitems = files:gs/**/*.txt\n"
                                           "output = -\nformat = jsonl\n[args]\n"
                                           "command = printf %%s:%%s {#} {/}\n");
    e2e_outcome_t o = RUN("run", cfg);
    expect(&o, 0, "\"1:deep name.txt\"\n\"2:top.txt\"\n", "2 ok");
    o = RUN("run", cfg, "--set", "run.items=files:gs/**/*.none");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "no items (no regular file matches %s/gs/**/*.none)", tmp);
    expect(&o, 0, "", want);
}

/* ---- failing commands ----------------------------------------------------- */

static void exec_failed_items(void **state)
{
    (void)state;
    static const char *const codes[] = {"0", "3", "0", "1"};
    items(codes, 4);
    char want[1024] = "";
    want_ok(want, sizeof want, 0, "");
    want_fail(want, sizeof want, 1, "exit status 3");
    want_ok(want, sizeof want, 2, "");
    want_fail(want, sizeof want, 3, "exit status 1");
    e2e_outcome_t o =
        RUN("run", job("", "command = /bin/sh -c 'exit \"$1\"' sh {}\n"), "-j", "2");
    expect(&o, 1, want, "item 1 failed: exit status 3");

    /* The brief's two: no placeholder, so the item is appended (and
     * ignored by false, $0 of sh). */
    static const char *const one[] = {"x"};
    items(one, 1);
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "exit status 1");
    o = RUN("run", job("", "command = false\n"));
    expect(&o, 1, want, "0 ok, 1 failed");
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "exit status 3");
    o = RUN("run", job("", "command = sh -c 'exit 3'\n"));
    expect(&o, 1, want, "item 0 failed: exit status 3");

    /* A child starts with no signal blocked (pool workers block them all,
     * and a mask is inherited) and SIGPIPE not ignored. */
    const char *fields[32];
    for (int k = 0; k < 32; k++)
        fields[k] = k % 2 ? "SigIgn" : "SigBlk";
    items(fields, 32); /* 32 over 8 threads: most run on pool workers */
    o = RUN("run", job("", "command = grep -h ^{}: /proc/self/status\n"), "-j", "8");
    const char *at = o.out;
    for (int k = 0; k < 32; k++) {
        at = strstr(at, k % 2 ? "SigIgn:\\t" : "SigBlk:\\t");
        assert_non_null(at);
        at += 9;
        unsigned long long bits = strtoull(at, NULL, 16);
        if (k % 2 ? (bits & 1ull << (SIGPIPE - 1)) != 0 : bits != 0)
            fail_msg("item %d: the child has %.6s %#llx:\n%s", k, at - 9, bits, o.out);
    }
    expect(&o, 0, NULL, "32 ok");

    /* Killed by a signal. */
    items(one, 1);
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "killed by signal 15 (SIGTERM)");
    o = RUN("run", job("", "command = /bin/sh -c 'kill -TERM $$; sleep 5'\n"));
    expect(&o, 1, want, "killed by signal 15");

    /* stdout+stderr: one stream, as 2>&1; a failure quotes its first line. */
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "exit status 4: bad thing happened");
    o = RUN("run",
            job("",
                "capture = stdout+stderr\n"
                "command = /bin/sh -c 'echo \"  bad thing happened  \" >&2; exit 4'\n"));
    expect(&o, 1, want, NULL);
    want[0] = '\0';
    want_ok(want, sizeof want, 0, "out\nerr");
    o = RUN("run", job("", "capture = stdout+stderr\n"
                           "command = /bin/sh -c 'echo out; echo err >&2'\n"));
    /* \n in the value is written as \n: compare that way. */
    expect(&o, 0, "{\"index\":0,\"ok\":true,\"value\":\"out\\nerr\"}\n", "1 ok");

    /* capture = stdout leaves stderr to weft's stderr. */
    o = RUN("run",
            job("", "command = /bin/sh -c 'echo to-stderr >&2; echo to-stdout'\n"));
    expect(&o, 0, "{\"index\":0,\"ok\":true,\"value\":\"to-stdout\"}\n", "to-stderr");

    /* capture = none: the value is the exit status; stdout is dropped, not
     * mixed into weft's JSON. */
    o = RUN("run", job("", "capture = none\ncommand = echo noise\n"));
    expect(&o, 0, "{\"index\":0,\"ok\":true,\"value\":0}\n", "1 ok");

    /* What sh reports as 127. */
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "exit status 127 (command not found?)");
    o = RUN("run", job("", "command = /bin/sh -c no-such-command-weft\n"));
    expect(&o, 1, want, "not found");
}

static void exec_cannot_run(void **state)
{
    (void)state;
    static const char *const two[] = {"a", "b"};
    items(two, 2);
    char want[1024] = "";
    want_fail(want, sizeof want, 0,
              "cannot run 'no-such-command-weft': No such file or directory");
    want_fail(want, sizeof want, 1,
              "cannot run 'no-such-command-weft': No such file or directory");
    e2e_outcome_t o =
        RUN("run", job("", "command = no-such-command-weft {}\n"), "-j", "2");
    expect(&o, 1, want, "0 ok, 2 failed");

    want[0] = '\0';
    want_fail(want, sizeof want, 0,
              "cannot run './missing.sh': No such file or directory");
    want_fail(want, sizeof want, 1,
              "cannot run './missing.sh': No such file or directory");
    o = RUN("run", job("", "command = ./missing.sh\n"));
    expect(&o, 1, want, NULL);

    /* No execute bit: even root gets EACCES. */
    e2e_write_bytes("noexec.sh", "#!/bin/sh\necho hi\n", 18);
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "cannot run './noexec.sh': Permission denied");
    want_fail(want, sizeof want, 1, "cannot run './noexec.sh': Permission denied");
    o = RUN("run", job("", "command = ./noexec.sh\n"));
    expect(&o, 1, want, NULL);

    /* An item with a NUL byte cannot be an argument; the others run. */
    e2e_write_bytes("items.txt", "a\0b\nok\n", 7);
    want[0] = '\0';
    want_fail(want, sizeof want, 0,
              "the item holds a NUL byte: it cannot be an argument");
    want_ok(want, sizeof want, 1, "ok");
    o = RUN("run", job("", "command = printf %s {}\n"));
    expect(&o, 1, want, NULL);
}

/* ---- limits --------------------------------------------------------------- */

static void exec_timeout(void **state)
{
    (void)state;
    static const char *const secs[] = {"10", "0", "10"};
    items(secs, 3);
    char want[1024] = "";
    want_fail(want, sizeof want, 0, "timed out after 0.3 s");
    want_ok(want, sizeof want, 1, "");
    want_fail(want, sizeof want, 2, "timed out after 0.3 s");
    double t0 = weft__mono_s();
    e2e_outcome_t o =
        RUN("run", job("", "timeout = 0.3\ncommand = sleep {}\n"), "-j", "2");
    double took = weft__mono_s() - t0;
    expect(&o, 1, want, "1 ok, 2 failed");
    if (took > 3.0)
        fail_msg("timed-out items took %.1f s to stop", took);

    /* The whole process group goes, not just the shell. */
    static const char *const pidfile[] = {"sleeper.pid"};
    items(pidfile, 1);
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "timed out after 0.2 s");
    t0 = weft__mono_s();
    o = RUN("run",
            job("", "timeout = 0.2\n"
                    "command = /bin/sh -c 'sleep 10 & echo $! > \"$1\"; wait' sh {}\n"));
    expect(&o, 1, want, NULL);
    char *text = e2e_slurp(e2e_path("sleeper.pid"), NULL);
    assert_non_null(text);
    pid_t pid = (pid_t)atoi(text);
    free(text);
    assert_true(pid > 1);
    while (!e2e_process_dead(pid) && weft__mono_s() - t0 < 3.0)
        usleep(10000);
    if (!e2e_process_dead(pid)) {
        kill(pid, SIGKILL);
        fail_msg("the background sleep (pid %d) outlived its timed-out item", (int)pid);
    }

    /* A child that closes its output and lingers still times out. */
    items(secs, 1);
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "timed out after 0.2 s");
    t0 = weft__mono_s();
    o = RUN(
        "run",
        job("", "timeout = 0.2\ncommand = /bin/sh -c 'exec >&-; sleep \"$1\"' sh {}\n"));
    took = weft__mono_s() - t0;
    expect(&o, 1, want, NULL);
    assert_true(took < 3.0);

    /* stdin is /dev/null, not weft's (a pipe that never ends, here). */
    want[0] = '\0';
    want_ok(want, sizeof want, 0, "eof");
    o = RUN("run", job("", "timeout = 5\ncommand = /bin/sh -c 'cat; echo eof' {}\n"));
    expect(&o, 0, want, "1 ok");
}

/* A command writes its pid as soon as it runs, which may be just before
 * exec's thread announces it to weft (child_started, right after
 * posix_spawn returns): a signal sent in between would not be forwarded
 * to it.  The signal tests give exec this long first. */
#define ANNOUNCED_S 0.2

#define SPAWN(...) E2E_SPAWN_LOGGED(false, __VA_ARGS__)
#define SPAWN_NOHUP(...) E2E_SPAWN_LOGGED(true, __VA_ARGS__)

/* [run] lines: thread mode, process mode. */
#define THREADS ""
#define PROCESSES "isolate = process\n"

/* A background process each item's command starts, in the item's group. */
#define SLEEPER "command = /bin/sh -c 'sleep 30 & echo $! > \"$1\"; wait' sh {}\n"

/* [run] timeout (the runner's, not the plugin's).  Threads: exec asks the
 * host whether to stop while it waits, and kills the item's process group.
 * Processes: the supervisor kills the worker at the deadline (before exec,
 * which looks every 0.1 s, would), and with it the groups of the commands
 * that worker announced. */
static void run_timeout(const char *mode, const char *timeout, unsigned n)
{
    static const char *const pidfiles[] = {"rt1.pid", "rt2.pid"};
    assert_true(n <= 2);
    items(pidfiles, n);
    char run[128], msg[64];
    snprintf(run, sizeof run, "%stimeout = %s\n", mode, timeout);
    snprintf(msg, sizeof msg, "timed out after %s s", timeout);
    char *ini = strdup(job(run, SLEEPER));
    for (int round = 0; round < 2; round++) {
        for (unsigned k = 0; k < n; k++)
            unlink(e2e_path(pidfiles[k]));
        double t0 = weft__mono_s();
        e2e_outcome_t o = RUN("run", ini, "-j", "2");
        double took = weft__mono_s() - t0;
        pid_t sleepers[2] = {0, 0};
        for (unsigned k = 0; k < n; k++)
            sleepers[k] = e2e_pid_in(pidfiles[k]);
        for (unsigned k = 0; k < n; k++)
            assert_true(sleepers[k] > 1);
        e2e_expect_all_gone(sleepers, n, "the sleep of a timed-out item");
        expect(&o, 1, NULL, msg);
        if (took > 10.0)
            fail_msg("the items ran %.1f s past a %s s timeout", took, timeout);
    }
    free(ini);
}

static void exec_run_timeout(void **state)
{
    (void)state;
    run_timeout(THREADS, "0.3", 1);
}

static void exec_run_timeout_processes(void **state)
{
    (void)state;
    run_timeout(PROCESSES, "0.35", 2);
}

/* halt = now in process mode kills the worker processes: the commands
 * they announced go with them.  Item 0 starts a background sleep; item 1
 * fails a little later and trips the policy. */
static void exec_halt_now_processes(void **state)
{
    (void)state;
    static const char *const lines[] = {"hn.pid", "x"};
    items(lines, 2);
    char *ini = strdup(job(
        PROCESSES "halt = now,fail=1\n",
        "command = /bin/sh -c 'case \"$1\" in *.pid) sleep 30 & echo $! > \"$1\"; wait;; "
        "*) sleep 0.3; exit 3;; esac' sh {}\n"));
    for (int round = 0; round < 2; round++) {
        unlink(e2e_path("hn.pid"));
        double t0 = weft__mono_s();
        e2e_outcome_t o = RUN("run", ini, "-j", "2");
        double took = weft__mono_s() - t0;
        pid_t sleeper = e2e_pid_in("hn.pid");
        assert_true(sleeper > 1);
        e2e_expect_all_gone(&sleeper, 1, "the sleep of an item killed by halt = now");
        expect(&o, 4, NULL, "halted by the failure policy");
        if (took > 10.0)
            fail_msg("halt = now took %.1f s", took);
    }
    free(ini);
}

/* A second SIGINT makes weft exit at once; what the items started must
 * not outlive it (their groups are not weft's: the terminal's Ctrl-C
 * would not reach them).  The first SIGINT reaches the shells, not their
 * background sleeps (sh ignores SIGINT in those). */
static void second_sigint(const char *mode)
{
    static const char *const pidfiles[] = {"sig1.pid", "sig2.pid"};
    items(pidfiles, 2);
    char *ini = strdup(job(mode, SLEEPER)); /* e2e_path's buffers rotate */
    assert_non_null(ini);
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < 2; k++)
            unlink(e2e_path(pidfiles[k]));
        int pid = E2E_SPAWN("run", ini, "-q", "-j", "2", "--set", "run.output=sig.jsonl");
        pid_t sleepers[2];
        for (size_t k = 0; k < 2; k++) {
            sleepers[k] = e2e_pid_in(pidfiles[k]);
            if (!sleepers[k]) {
                kill(pid, SIGKILL);
                fail_msg("item %zu did not start its sleep (weft: status %d)", k,
                         e2e_wait(pid));
            }
        }
        e2e_sleep(ANNOUNCED_S);
        kill(pid, SIGINT);
        e2e_sleep(0.1);
        kill(pid, SIGINT);
        bool exited;
        int st = e2e_wait_for(pid, 10.0, &exited);
        e2e_expect_all_gone(sleepers, 2, "the sleep of an item in flight at a second signal");
        assert_int_equal(st, 130);
        unlink(e2e_path("sig.jsonl.journal"));
    }
    free(ini);
}

static void exec_second_signal_kills_children(void **state)
{
    (void)state;
    second_sigint(THREADS);
}

static void exec_second_signal_kills_children_processes(void **state)
{
    (void)state;
    second_sigint(PROCESSES);
}

/* Commands that ignore sig (named trap_name for sh's trap) outlast the
 * first, which weft forwards to them; the second makes weft exit at once
 * with 128 + sig, by exit(), and takes them along. */
static void second_signal_ignored(const char *mode, int sig, const char *trap_name)
{
    static const char *const lines[] = {"a", "b"};
    items(lines, 2);
    char cmd[256];
    snprintf(
        cmd, sizeof cmd,
        "command = /bin/sh -c 'trap \"\" %s; echo $$ >> held.pids; exec sleep 30' sh "
        "{}\n",
        trap_name);
    char *ini = strdup(job(mode, cmd));
    unlink(e2e_path("held.pids"));
    pid_t pid = SPAWN("run", ini, "-j", "2", "--set", "run.output=held.jsonl");
    pid_t cmds[2];
    if (!e2e_pids_in_file("held.pids", cmds, 2)) {
        kill(pid, SIGKILL);
        fail_msg("the commands did not start (weft: status %d)", e2e_wait(pid));
    }
    e2e_sleep(ANNOUNCED_S);
    kill(pid, sig);
    e2e_sleep(0.3);
    int raw;
    if (waitpid(pid, &raw, WNOHANG) != 0 || e2e_process_dead(cmds[0]) ||
        e2e_process_dead(cmds[1])) { /* the commands hold their items */
        kill(pid, SIGKILL);
        e2e_expect_all_gone(cmds, 2, "a command");
        fail_msg("weft or a command that ignores the signal ended at the first one");
    }
    kill(pid, sig);
    bool exited;
    int st = e2e_wait_for(pid, 10.0, &exited);
    e2e_expect_all_gone(cmds, 2, "a command in flight at a second signal");
    if (st != 128 + sig || !exited) {
        char *err = e2e_slurp(e2e_path("weft.err"), NULL);
        fail_msg("weft: status %d (%s), want exit(%d); stderr:\n%s", st,
                 exited ? "exited" : "killed by a signal", 128 + sig, err ? err : "");
    }
    unlink(e2e_path("held.jsonl.journal"));
    free(ini);
}

/* SIGHUP is a stop like SIGTERM, in both modes: the first is forwarded to
 * the commands (plain ones die of it: their items are not run), weft
 * writes what was done and exits 129; a second exits at once.  Without a
 * handler, weft died of it and left the commands to PID 1.  Under nohup
 * (SIGHUP ignored when weft starts) it stays ignored. */
static void exec_sighup(void **state)
{
    (void)state;
    static const char *const modes[] = {THREADS, PROCESSES};
    for (size_t m = 0; m < 2; m++) {
        second_signal_ignored(modes[m], SIGHUP, "HUP");

        static const char *const lines[] = {"a", "b"};
        items(lines, 2);
        char *ini =
            strdup(job(modes[m], "command = /bin/sh -c 'echo $$ >> hup.pids; exec "
                                 "sleep 30' sh {}\n"));
        for (int nohup = 0; nohup < 2; nohup++) {
            unlink(e2e_path("hup.pids"));
            pid_t pid =
                nohup ? SPAWN_NOHUP("run", ini, "-j", "2", "--set", "run.output=hup.jsonl")
                      : SPAWN("run", ini, "-j", "2", "--set", "run.output=hup.jsonl");
            pid_t cmds[2];
            if (!e2e_pids_in_file("hup.pids", cmds, 2)) {
                kill(pid, SIGKILL);
                fail_msg("the commands did not start (weft: status %d)", e2e_wait(pid));
            }
            e2e_sleep(ANNOUNCED_S);
            kill(pid, SIGHUP);
            int want = 129;
            if (nohup) { /* nothing happens; SIGTERM then stops it */
                e2e_sleep(0.3);
                int st;
                if (waitpid(pid, &st, WNOHANG) != 0 || e2e_process_dead(cmds[0]) ||
                    e2e_process_dead(cmds[1])) {
                    kill(pid, SIGKILL);
                    e2e_expect_all_gone(cmds, 2, "a command");
                    fail_msg("weft under nohup did not ignore SIGHUP");
                }
                kill(pid, SIGTERM);
                want = 143;
            }
            bool exited;
            int st = e2e_wait_for(pid, 10.0, &exited);
            e2e_expect_all_gone(cmds, 2, "a command in flight at SIGHUP");
            char *err = e2e_slurp(e2e_path("weft.err"), NULL);
            if (st != want || !exited || !strstr(err, "2 items not run"))
                fail_msg("weft: status %d (%s), want exit(%d); stderr:\n%s", st,
                         exited ? "exited" : "killed by a signal", want, err ? err : "");
            free(err);
            unlink(e2e_path("hup.jsonl.journal"));
        }
        free(ini);
    }
}

/* A first Ctrl-C (SIGINT) reaches a long command, as it would at the
 * terminal: it ends at once, not after its 30 s; its item is not run (no
 * failure recorded), weft exits 130, and --resume runs it, so the output
 * is complete. */
static void first_sigint(const char *mode)
{
    static const char *const lines[] = {"0", "1", "s", "3"};
    items(lines, 4);
    static const char *const stale[] = {"go", "sint.pids", "sint.jsonl",
                                        "sint.jsonl.journal"};
    for (size_t k = 0; k < sizeof stale / sizeof *stale; k++)
        unlink(e2e_path(stale[k]));
    char *ini =
        strdup(job(mode, "command = /bin/sh -c 'if [ \"$1\" = s ] && [ ! -e go ]; "
                         "then echo $$ >> sint.pids; exec sleep 30; fi; "
                         "echo \"v$1\"' sh {}\n"));
    char *out = strdup(e2e_path("sint.jsonl"));
    double t0 = weft__mono_s();
    pid_t pid = SPAWN("run", ini, "-j", "1", "--set", "run.output=sint.jsonl");
    pid_t sleeper;
    if (!e2e_pids_in_file("sint.pids", &sleeper, 1)) {
        kill(pid, SIGKILL);
        fail_msg("item 2 did not start its sleep (weft: status %d)", e2e_wait(pid));
    }
    e2e_sleep(ANNOUNCED_S);
    kill(pid, SIGINT);
    bool exited;
    int st = e2e_wait_for(pid, 10.0, &exited);
    double took = weft__mono_s() - t0;
    e2e_expect_all_gone(&sleeper, 1, "the sleep 30 of an item at a first SIGINT");
    char *err = e2e_slurp(e2e_path("weft.err"), NULL);
    if (st != 130 || !strstr(err, "2 items not run") || strstr(err, "killed by signal"))
        fail_msg("weft: status %d after %.1f s, want 130 at once, 2 items not run, no "
                 "failure; stderr:\n%s",
                 st, took, err ? err : "");
    free(err);
    char want[1024] = "";
    want_ok(want, sizeof want, 0, "v0");
    want_ok(want, sizeof want, 1, "v1");
    char *text = e2e_slurp(out, NULL);
    if (!text || strcmp(text, want) != 0)
        fail_msg("interrupted output:\n%s\nwant:\n%s", text ? text : "(none)", want);
    free(text);

    e2e_write("go", "");
    e2e_outcome_t o =
        RUN("run", ini, "-j", "1", "--set", "run.output=sint.jsonl", "--resume");
    e2e_expect(&o, 0, "2 ok");
    e2e_free(&o);
    want_ok(want, sizeof want, 2, "vs");
    want_ok(want, sizeof want, 3, "v3");
    text = e2e_slurp(out, NULL);
    if (!text || strcmp(text, want) != 0)
        fail_msg("resumed output:\n%s\nwant:\n%s", text ? text : "(none)", want);
    free(text);
    free(out);
    free(ini);
}

static void exec_first_sigint_reaches_commands(void **state)
{
    (void)state;
    first_sigint(THREADS);
}

static void exec_first_sigint_reaches_commands_processes(void **state)
{
    (void)state;
    first_sigint(PROCESSES);
}

static void exec_max_output(void **state)
{
    (void)state;
    static const char *const one[] = {"0123456789"};
    items(one, 1);
    char want[1024] = "";
    want_ok(want, sizeof want, 0, "0123456789");
    e2e_outcome_t o = RUN("run", job("", "max_output = 10\ncommand = printf %s {}\n"));
    expect(&o, 0, want, "1 ok");
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "output over max_output (9 bytes)");
    o = RUN("run", job("", "max_output = 9\ncommand = printf %s {}\n"));
    expect(&o, 1, want, NULL);

    /* Endless output: the child is killed, the run ends. */
    want[0] = '\0';
    want_fail(want, sizeof want, 0, "output over max_output (1000 bytes)");
    o = RUN("run", job("", "max_output = 1000\ncommand = yes\n"));
    expect(&o, 1, want, NULL);

    /* Past the first buffer: 200000 bytes come back whole, the last
     * newline dropped. */
    o = RUN("run", job("", "command = /bin/sh -c 'yes 0123456789 | head -n 20000' {}\n"));
    size_t cap = 20000 * 13 + 64;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap, "{\"index\":0,\"ok\":true,\"value\":\"");
    for (int k = 0; k < 20000; k++)
        n += (size_t)snprintf(big + n, cap - n, k ? "\\n0123456789" : "0123456789");
    snprintf(big + n, cap - n, "\"}\n");
    expect(&o, 0, big, "1 ok");
    free(big);
}

/* ---- shell = true ----------------------------------------------------------- */

static void exec_shell(void **state)
{
    (void)state;
    items(nasty, N_NASTY);
    static const struct {
        const char *command, *fmt;
    } cases[] = {
        {"printf '%s|' {}", "%s|"},
        {"printf '[%s]' \"in dq {}\"", "[in dq %s]"},
        {"printf '[%s]' 'in sq {}'", "[in sq %s]"},
        {"printf '[%s]' \"$(printf '%s' {})\"", "[%s]"},
        {"printf '[%s]' `printf '%s' {}`x", "[%sx]"},
        {"printf '<%s>'", "<%s>"}, /* no placeholder: "$1" appended */
        {"test -n \"${PATH}\" && printf '%s' {}", "%s"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char want[8192] = "", args[512];
        for (size_t k = 0; k < N_NASTY; k++) {
            char v[256];
            snprintf(v, sizeof v, cases[c].fmt, nasty[k]);
            /* `...` without quotes splits: only one-word items compare. */
            if (c == 4 && (strpbrk(nasty[k], " \t*") || !*nasty[k] || nasty[k][0] == '-'))
                continue;
            want_ok(want, sizeof want, k, v);
        }
        snprintf(args, sizeof args, "shell = true\ncommand = %s\n", cases[c].command);
        e2e_outcome_t o = RUN("run", job("", args));
        if (c == 4) { /* just the lines of the one-word items */
            for (char *line = strtok(want, "\n"); line; line = strtok(NULL, "\n"))
                if (!strstr(o.out, line))
                    fail_msg("`...` case: stdout\n%s\nlacks %s", o.out, line);
            expect(&o, 0, NULL, "19 ok");
        } else {
            expect(&o, 0, want, "19 ok");
        }
        assert_no_pwned();
    }
}

/* ---- init errors -------------------------------------------------------------- */

static void exec_init_errors(void **state)
{
    (void)state;
    static const char *const one[] = {"a"};
    items(one, 1);
    static const struct {
        const char *args, *err;
    } cases[] = {
        {"command = printf 'abc {}\n",
         "init failed: command: unbalanced ': the quote at position 8 is never closed"},
        {"command = printf \"abc {}\n",
         "command: unbalanced \": the quote at position 8 is never closed"},
        {"command = printf %s {xyz}\n",
         "command: unknown placeholder '{xyz}' at position 11 (known: {} {.} {/} {//} "
         "{/.} {#} {%} {index} {index:0N} {number} {number:0N} {name} {stem} {ext} "
         "{dir}; {{ and }} are literal braces)"},
        {"command = echo ${HOME}\n", "there is no $ expansion unless shell = true"},
        {"command = echo {2/.}\n", "GNU parallel's numbered and {=perl=} forms"},
        {"command = echo {nmae}\n",
         "unknown placeholder '{nmae}' at position 6; did you mean {name}?"},
        {"shell = true\ncommand = echo \"{/..}\"\n",
         "'{/..}' at position 7; did you mean {/.}?"},
        {"command = echo {stem:03}\n", "only {index}, {number} and {#} take a width"},
        /* (At a line's very end a backslash continues the line; a blank
         * after it keeps it in the value.) */
        {"command = echo abc\\ \n", "command: backslash at position 9 escapes nothing"},
        {"shell = true\ncommand = echo 'abc\n", "unbalanced ': the quote at position 6"},
        {"shell = true\ncommand = echo \"$(date\n",
         "the $( at position 7 is never closed"},
        {"shell = true\ncommand = echo {nope}\n",
         "unknown placeholder '{nope}' at position 6"},
        {"command =\n", "command is empty"},
        {"command = echo\ncapture = both\n",
         "capture = 'both': expected one of stdout|stdout+stderr|none"},
        {"command = echo\ncwd = no/such/folder\n",
         "no/such/folder': No such file or directory"},
        {"command = echo\nmax_output = -1\n", "max_output"},
        {"command = echo\ntimeout = -1\n", "timeout"},
        {"shell = true\n", "command"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        e2e_outcome_t o = RUN("run", job("", cases[c].args));
        expect(&o, 2, "", cases[c].err);
    }

    /* A placeholder pasted into an sh -c script works, with a warning. */
    e2e_outcome_t o = RUN("run", job("", "command = sh -c 'echo {}'\n"));
    expect(&o, 0, "{\"index\":0,\"ok\":true,\"value\":\"a\"}\n",
           "warning: a placeholder inside the script of 'sh -c'");
}

/* ---- ordering, load ---------------------------------------------------------- */

static void exec_same_output_any_threads(void **state)
{
    (void)state;
    enum { N = 100 };
    char *lines[N];
    char want[16384] = "";
    for (int k = 0; k < N; k++) {
        lines[k] = malloc(32);
        assert_non_null(lines[k]);
        snprintf(lines[k], 32, "item %d  x", k);
        char v[64];
        snprintf(v, sizeof v, "%d:%s", k, lines[k]);
        want_ok(want, sizeof want, (size_t)k, v);
    }
    items((const char *const *)lines, N);
    /* Every 7th item is slow, so items finish out of order. */
    const char *cfg =
        job("", "command = /bin/sh -c 'case \"$2\" in *7*) sleep 0.05;; esac; "
                "printf \"%s:%s\" \"$1\" \"$2\"' sh {index} {}\n");
    char *first = NULL;
    static const char *const threads[] = {"1", "8"};
    for (int t = 0; t < 2; t++) {
        e2e_outcome_t o = RUN("run", cfg, "-j", threads[t]);
        if (t == 0)
            first = strdup(o.out);
        else if (strcmp(o.out, first) != 0)
            fail_msg("1 and 8 threads differ:\n%s\n---\n%s", first, o.out);
        expect(&o, 0, want, "100 ok, 0 failed");
    }
    free(first);
    for (int k = 0; k < N; k++)
        free(lines[k]);
}

/* 300 children from 8 threads: the run ends, every item ok, and each child
 * holds exactly fds 0-2 (ls adds 3, its own listing of /proc/self/fd).  A
 * pipe end leaked from a concurrent spawn would show as a 4th. */
static void exec_many_items(void **state)
{
    (void)state;
    enum { N = 300 };
    char *lines[N];
    size_t cap = (size_t)N * 64;
    char *want = malloc(cap), *want2 = malloc(cap);
    assert_non_null(want);
    assert_non_null(want2);
    want[0] = want2[0] = '\0';
    for (int k = 0; k < N; k++) {
        lines[k] = malloc(16);
        assert_non_null(lines[k]);
        snprintf(lines[k], 16, "n %d", k);
        want_ok(want, cap, (size_t)k, lines[k]);
        size_t len = strlen(want2);
        snprintf(want2 + len, cap - len,
                 "{\"index\":%d,\"ok\":true,\"value\":\"0\\n1\\n2\\n3\"}\n", k);
    }
    items((const char *const *)lines, N);
    double t0 = weft__mono_s();
    e2e_outcome_t o =
        RUN("run", job("", "timeout = 30\ncommand = printf %s {}\n"), "-j", "8");
    expect(&o, 0, want, "300 ok, 0 failed");
    o = RUN("run",
            job("", "timeout = 30\ncommand = /bin/sh -c 'exec ls /proc/self/fd' {}\n"),
            "-j", "8");
    expect(&o, 0, want2, "300 ok, 0 failed");
    assert_true(weft__mono_s() - t0 < 60.0);
    for (int k = 0; k < N; k++)
        free(lines[k]);
    free(want);
    free(want2);
}

/* ---- cwd, the shipped config -------------------------------------------------- */

static void exec_cwd(void **state)
{
    (void)state;
    static const char *const one[] = {"it"};
    items(one, 1);
    char real[PATH_MAX], want[2048] = "";
    assert_non_null(realpath(tmp, real));
    want_ok(want, sizeof want, 0, real);
    e2e_outcome_t o = RUN("run", job("", "command = /bin/sh -c pwd {}\n"));
    expect(&o, 0, want, "1 ok");

    /* A relative command is found in cwd, itself relative to the config. */
    assert_int_equal(mkdir(e2e_path("sub"), 0777), 0);
    static const char script[] = "#!/bin/sh\nprintf 'hello %s from %s' \"$1\" \"$PWD\"\n";
    e2e_write_bytes("sub/hello.sh", script, sizeof script - 1);
    assert_int_equal(chmod(e2e_path("sub/hello.sh"), 0755), 0);
    char v[PATH_MAX + 64];
    snprintf(v, sizeof v, "hello it from %s/sub", real);
    want[0] = '\0';
    want_ok(want, sizeof want, 0, v);
    o = RUN("run", job("", "cwd = sub\ncommand = ./hello.sh\n"));
    expect(&o, 0, want, "1 ok");
}

static void exec_invalid_utf8(void **state)
{
    (void)state;
    static const char *const one[] = {"x"};
    items(one, 1);
    e2e_outcome_t o = RUN("run", job("", "command = printf '\\377ok%s\\n\\n'\n"));
    /* One U+FFFD for the bad byte; only the last newline is dropped. */
    expect(&o, 0, "{\"index\":0,\"ok\":true,\"value\":\"\xEF\xBF\xBDokx\\n\"}\n", "1 ok");
}

static void exec_shipped_config(void **state)
{
    (void)state;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/configs/exec.ini", getenv("WEFT_SOURCE_ROOT"));
    e2e_outcome_t o = RUN("run", cfg, "-q");
    expect(&o, 0,
           "[\n"
           "\"[hello]\",\n"
           "\"[two words]\",\n"
           "\"[  spaces kept at both ends  ]\",\n"
           "\"[it's \\\"quoted\\\"]\",\n"
           "\"[no $HOME; no * glob; no \\\\n]\",\n"
           "\"[]\"\n"
           "]\n",
           NULL);
}

/* Several workers: numeric libraries in exec's commands get one thread
 * each (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS = 1), as
 * joblib does; what the environment sets stays; one worker leaves them be. */
static void exec_one_thread_each(void **state)
{
    (void)state;
    const char *ini = e2e_write("omp.ini",
                                "[run]\nplugin = exec\nitems = 2\noutput = -\nformat = jsonl\n"
                                "[args]\nshell = true\n"
                                "command = echo \"${OMP_NUM_THREADS-unset}/"
                                "${OPENBLAS_NUM_THREADS-unset}/${MKL_NUM_THREADS-unset}\" {}\n");
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", ini);
    unsetenv("OMP_NUM_THREADS");
    unsetenv("OPENBLAS_NUM_THREADS");
    unsetenv("MKL_NUM_THREADS");
    e2e_outcome_t o = E2E_RUN("run", cfg, "-q", "-j", "2");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "1/1/1 0"));
    assert_non_null(strstr(o.out, "1/1/1 1"));
    e2e_free(&o);
    setenv("OMP_NUM_THREADS", "3", 1);
    o = E2E_RUN("run", cfg, "-q", "-j", "2");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "3/1/1 0"));
    e2e_free(&o);
    unsetenv("OMP_NUM_THREADS");
    o = E2E_RUN("run", cfg, "-q", "-j", "1");
    e2e_expect(&o, 0, NULL);
    assert_non_null(strstr(o.out, "unset/unset/unset 0"));
    e2e_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exec_items_are_one_argument),
        cmocka_unit_test(exec_one_thread_each),
        cmocka_unit_test(exec_placeholders),
        cmocka_unit_test(exec_appends_item_without_placeholder),
        cmocka_unit_test(exec_gnu_placeholders),
        cmocka_unit_test(exec_seq_and_slot),
        cmocka_unit_test(exec_globstar_items),
        cmocka_unit_test(exec_failed_items),
        cmocka_unit_test(exec_cannot_run),
        cmocka_unit_test(exec_timeout),
        cmocka_unit_test(exec_run_timeout),
        cmocka_unit_test(exec_run_timeout_processes),
        cmocka_unit_test(exec_halt_now_processes),
        cmocka_unit_test(exec_second_signal_kills_children),
        cmocka_unit_test(exec_second_signal_kills_children_processes),
        cmocka_unit_test(exec_sighup),
        cmocka_unit_test(exec_first_sigint_reaches_commands),
        cmocka_unit_test(exec_first_sigint_reaches_commands_processes),
        cmocka_unit_test(exec_max_output),
        cmocka_unit_test(exec_shell),
        cmocka_unit_test(exec_init_errors),
        cmocka_unit_test(exec_same_output_any_threads),
        cmocka_unit_test(exec_many_items),
        cmocka_unit_test(exec_cwd),
        cmocka_unit_test(exec_invalid_utf8),
        cmocka_unit_test(exec_shipped_config),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
