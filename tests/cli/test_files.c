/* SPDX-License-Identifier: MIT */
/* What a run does to the files around its outputs: a symlink planted where
 * weft keeps a temporary (the results' .NAME.partial, an array's
 * .NAME.npy.partial, the journal's NAME.journal.new) is replaced, never
 * written through, so the file it points to is untouched; a special file
 * given for the summary (a FIFO) is written to, never replaced; SIGPIPE in
 * a plugin and SIGXFSZ past `ulimit -f` are errors with a message, not the
 * end of weft. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

static const char secret[] = "the victim's own bytes\n";

/* A 0600 file outside the run's way, and a symlink to it at `name`. */
static const char *plant(const char *name)
{
    const char *victim = e2e_write("victim.txt", secret);
    assert_int_equal(chmod(victim, 0600), 0);
    unlink(e2e_path(name));
    assert_int_equal(symlink(victim, e2e_path(name)), 0);
    return victim;
}

static void assert_untouched(const char *victim)
{
    size_t len = 0;
    char *got = e2e_slurp(victim, &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof secret - 1);
    assert_memory_equal(got, secret, len);
    free(got);
    struct stat st;
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void files_results_temporary_symlink(void **state)
{
    (void)state;
    const char *victim = plant(".sym.jsonl.partial");
    const char *ini = e2e_write("sym.ini", "[run]\nplugin = add_one\nitems = 1000\n"
                                           "output = sym.jsonl\njournal = off\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_untouched(victim);
    size_t len = 0;
    char *out = e2e_slurp(e2e_path("sym.jsonl"), &len);
    assert_non_null(out);
    assert_true(strncmp(out, "1\n2\n3\n", 6) == 0);
    free(out);
    struct stat st;
    assert_int_equal(lstat(e2e_path(".sym.jsonl.partial"), &st), -1); /* renamed */
}

static void files_array_temporary_symlink(void **state)
{
    (void)state;
    const char *victim = plant(".sym.npy.partial");
    const char *ini = e2e_write("arr.ini", "[run]\nplugin = fill_array\nitems = 100\n"
                                           "output = sym.npy\njournal = off\n"
                                           "[args]\ncolumns = 4\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_untouched(victim);
    struct stat st;
    assert_int_equal(lstat(e2e_path("sym.npy"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_true(st.st_size > 100 * 4 * 8);
}

static void files_journal_temporary_symlink(void **state)
{
    (void)state;
    const char *victim = plant("jr.jsonl.journal.new");
    const char *ini = e2e_write("jr.ini", "[run]\nplugin = add_one\nitems = 1000\n"
                                          "output = jr.jsonl\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_untouched(victim);
    struct stat st;
    assert_int_equal(lstat(e2e_path("jr.jsonl.journal.new"), &st), -1); /* renamed */
}

/* A FIFO at path (made afresh) and a reader copying it into `got` (in the
 * test folder): the reader's pid. */
static pid_t fifo_with_reader(const char *path, const char *got)
{
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cat '%s' > '%s'", path, e2e_path(got));
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return reader;
}

/* --summary-json FIFO: the summary goes into the FIFO (a reader gets it);
 * the FIFO stays a FIFO. */
static void files_summary_into_a_fifo(void **state)
{
    (void)state;
    const char *fifo = e2e_path("summary.fifo");
    pid_t reader = fifo_with_reader(fifo, "summary.got");
    const char *ini = e2e_write("sum.ini", "[run]\nplugin = add_one\nitems = 10\n"
                                           "output = none\njournal = off\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "--summary-json", fifo);
    int st = 0;
    if (o.status != 0) /* the reader may wait forever: do not let it */
        kill(reader, SIGKILL);
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_int_equal(waitpid(reader, &st, 0), reader);
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    char *got = e2e_slurp(e2e_path("summary.got"), NULL);
    assert_non_null(got);
    assert_non_null(strstr(got, "\"ok\""));
    free(got);
}

/* A plugin writing into a pipe nobody reads: its item fails (EPIPE), every
 * other item is kept, weft lives on (exit 1, not 141). */
static void files_sigpipe_in_a_plugin(void **state)
{
    (void)state;
    const char *ini = e2e_write("pipe.ini", "[run]\nplugin = fault\nitems = 20\n"
                                            "output = pipe.jsonl\nrecord = full\n"
                                            "journal = off\nthreads = 2\n"
                                            "[args]\nbroken_pipe = 3,11\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 1, "Broken pipe");
    e2e_free(&o);
    char *out = e2e_slurp(e2e_path("pipe.jsonl"), NULL);
    assert_non_null(out);
    int lines = 0, failed = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    for (char *p = out; (p = strstr(p, "\"ok\":false")); p++)
        failed++;
    assert_int_equal(lines, 20);
    assert_int_equal(failed, 2);
    free(out);
}

/* Past `ulimit -f`: a write error naming the output (exit 3), not death by
 * SIGXFSZ (exit 153). */
static void files_file_size_limit(void **state)
{
    (void)state;
    const char *ini = e2e_write("big.ini", "[run]\nplugin = add_one\nitems = 200000\n"
                                           "output = big.jsonl\njournal = off\n");
    struct rlimit old, small = {64 << 10, 0};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    e2e_expect(&o, 3, "File too large");
    assert_non_null(strstr(o.err, "big.jsonl"));
    e2e_free(&o);
    struct stat st; /* what was there before stays: nothing */
    assert_int_equal(lstat(e2e_path("big.jsonl"), &st), -1);
}

/* Results into a FIFO (a reader takes them): no FIFO.journal beside it, the
 * FIFO stays; journal = a FIFO: used for nothing, never renamed over. */
static void files_no_journal_beside_a_special_file(void **state)
{
    (void)state;
    const char *fifo = e2e_path("res.fifo");
    pid_t reader = fifo_with_reader(fifo, "res.got");
    const char *ini = e2e_write("fifo.ini", "[run]\nplugin = add_one\nitems = 100\n"
                                            "output = res.fifo\nformat = jsonl\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    if (o.status != 0)
        kill(reader, SIGKILL);
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    int st;
    assert_int_equal(waitpid(reader, &st, 0), reader);
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(lstat(e2e_path("res.fifo.journal"), &sb), -1);
    char *got = e2e_slurp(e2e_path("res.got"), NULL);
    assert_non_null(got);
    assert_true(strncmp(got, "1\n2\n3\n", 6) == 0);
    free(got);

    const char *jfifo = e2e_path("j.fifo");
    unlink(jfifo);
    assert_int_equal(mkfifo(jfifo, 0600), 0);
    ini = e2e_write("jf.ini", "[run]\nplugin = add_one\nitems = 100\n"
                              "output = jf.jsonl\njournal = j.fifo\n");
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_int_equal(lstat(jfifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(lstat(e2e_path("j.fifo.new"), &sb), -1);
}

/* Lines in a file (-1 when it cannot be read). */
static long count_lines(const char *path)
{
    char *text = e2e_slurp(path, NULL);
    if (!text)
        return -1;
    long n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    free(text);
    return n;
}

/* Waits (at most 20 s) until path exists. */
static void wait_for_file(const char *path)
{
    struct stat st;
    for (int k = 0; k < 2000 && lstat(path, &st) != 0; k++)
        e2e_sleep(0.01);
    assert_int_equal(lstat(path, &st), 0);
}

/* Two runs on one results file, neither sharing a journal (journal = off,
 * or each its own): the second is refused at once, naming the first, and
 * the first's results are whole.  (Both used to write the one fixed
 * .NAME.partial: the later run's rename put a mix, or a cut file, in place.) */
static void files_two_runs_one_results_file(void **state)
{
    (void)state;
    const char *slow = e2e_write("slow.ini", "[run]\nplugin = fault\nitems = 40\nthreads = 2\n"
                                             "output = two.jsonl\njournal = off\n"
                                             "[args]\nsleep_ms = 40\n");
    char slow_path[4096];
    snprintf(slow_path, sizeof slow_path, "%s", slow);
    int a = E2E_SPAWN("run", slow_path, "-q");
    wait_for_file(e2e_path(".two.jsonl.partial"));
    char want[128];
    snprintf(want, sizeof want, "two.jsonl is being written by another weft run now (pid %d)",
             a);
    const char *fast[] = {
        "[run]\nplugin = add_one\nitems = 10\noutput = two.jsonl\njournal = off\n",
        "[run]\nplugin = add_one\nitems = 10\noutput = two.jsonl\njournal = other.journal\n"};
    for (size_t k = 0; k < 2; k++) {
        const char *ini = e2e_write("fast.ini", fast[k]);
        e2e_outcome_t o = E2E_RUN("run", ini, "-q");
        e2e_expect(&o, 2, want);
        e2e_free(&o);
    }
    assert_int_equal(e2e_wait(a), 0);
    assert_int_equal(count_lines(e2e_path("two.jsonl")), 40);
    struct stat st;
    assert_int_equal(lstat(e2e_path(".two.jsonl.partial"), &st), -1);
    /* Once the first has ended, the same run goes ahead. */
    const char *ini = e2e_write("fast.ini", fast[0]);
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_int_equal(count_lines(e2e_path("two.jsonl")), 10);
}

/* A killed run's leftover temporary is replaced; a hard link planted under
 * the temporary's name loses its name only, the file it shares stays. */
static void files_stale_and_hard_linked_temporaries(void **state)
{
    (void)state;
    e2e_write(".st.jsonl.partial", "half a line from a run that was killed");
    const char *ini = e2e_write("st.ini", "[run]\nplugin = add_one\nitems = 5\n"
                                          "output = st.jsonl\njournal = off\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    char *got = e2e_slurp(e2e_path("st.jsonl"), NULL);
    assert_non_null(got);
    assert_string_equal(got, "1\n2\n3\n4\n5\n");
    free(got);

    const char *victim = e2e_write("victim.txt", secret);
    assert_int_equal(chmod(victim, 0600), 0);
    unlink(e2e_path(".hl.jsonl.partial"));
    assert_int_equal(link(victim, e2e_path(".hl.jsonl.partial")), 0);
    ini = e2e_write("hl.ini", "[run]\nplugin = add_one\nitems = 5\n"
                              "output = hl.jsonl\njournal = off\n");
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    assert_untouched(victim);
    got = e2e_slurp(e2e_path("hl.jsonl"), NULL);
    assert_non_null(got);
    assert_string_equal(got, "1\n2\n3\n4\n5\n");
    free(got);
}

/* The device names people pass: -o /dev/stdout (a symlink to the pipe the
 * harness reads) and /dev/null, --summary-json /dev/null, journal =
 * /dev/null.  Each is written to, never replaced; nothing is created in
 * /dev (no .stdout.partial, no stdout.journal, no null.new). */
static void assert_dev_clean(void)
{
    struct stat st;
    const char *never[] = {"/dev/.stdout.partial", "/dev/stdout.journal", "/dev/.null.partial",
                           "/dev/null.journal",    "/dev/null.new",       "/dev/null.tmp"};
    bool bad = false;
    for (size_t k = 0; k < sizeof never / sizeof *never; k++)
        if (lstat(never[k], &st) == 0) {
            fprintf(stderr, "%s was created\n", never[k]);
            unlink(never[k]);
            bad = true;
        }
    if (lstat("/dev/stdout", &st) != 0 || !S_ISLNK(st.st_mode)) {
        /* Put the machine right before failing (as root a bad weft
         * replaces it): /dev/stdout is the link to fd 1 again. */
        fprintf(stderr, "/dev/stdout was replaced\n");
        unlink("/dev/stdout");
        if (symlink("/proc/self/fd/1", "/dev/stdout") != 0)
            perror("symlink /dev/stdout");
        bad = true;
    }
    assert_false(bad);
    assert_int_equal(lstat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

static void files_device_outputs(void **state)
{
    (void)state;
    const char *ini = e2e_write("dev.ini", "[run]\nplugin = add_one\nitems = 5\n"
                                           "output = dev.jsonl\n");
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-o", "/dev/stdout");
    assert_dev_clean(); /* first: it repairs what a bad run broke */
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "1\n2\n3\n4\n5\n");
    e2e_free(&o);

    o = E2E_RUN("run", ini, "-q", "-o", "/dev/null", "--summary-json", "/dev/null");
    assert_dev_clean();
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "");
    e2e_free(&o);

    ini = e2e_write("devj.ini", "[run]\nplugin = add_one\nitems = 5\n"
                                "output = devj.jsonl\njournal = /dev/null\n");
    o = E2E_RUN("run", ini, "-q");
    assert_dev_clean();
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    char *got = e2e_slurp(e2e_path("devj.jsonl"), NULL);
    assert_non_null(got);
    assert_string_equal(got, "1\n2\n3\n4\n5\n");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(files_results_temporary_symlink),
        cmocka_unit_test(files_array_temporary_symlink),
        cmocka_unit_test(files_journal_temporary_symlink),
        cmocka_unit_test(files_summary_into_a_fifo),
        cmocka_unit_test(files_sigpipe_in_a_plugin),
        cmocka_unit_test(files_file_size_limit),
        cmocka_unit_test(files_no_journal_beside_a_special_file),
        cmocka_unit_test(files_two_runs_one_results_file),
        cmocka_unit_test(files_stale_and_hard_linked_temporaries),
        cmocka_unit_test(files_device_outputs),
    };
    e2e_setup("files");
    return cmocka_run_group_tests(tests, NULL, e2e_teardown);
}
