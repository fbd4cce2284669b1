/* SPDX-License-Identifier: MIT */
/*
 * Output formats end to end: CSV and TSV read back by Python's csv module
 * (and pandas, when installed) against what the items say, compressed
 * outputs checked by gzip -t / zstd -t and against the uncompressed run,
 * and the outputs whose name and format disagree refused.  The `echo` test
 * plugin returns the item's text (mode = text) or the item as JSON
 * (mode = item_json), and fails items holding `fail_on`.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"

/* Debian's python3, as tests/plugins/test_fill_array.c: a pyenv or venv
 * first on PATH may lack the distribution's packages. */
#define PYTHON "/usr/bin/python3"

/* Runs tests/cli/formats_check.py with the arguments (each a shell word
 * without quotes): its exit status. */
static int check_py(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, PYTHON " '%s/tests/cli/formats_check.py' %s",
             getenv("WEFT_SOURCE_ROOT"), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool have(const char *command)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", command);
    return system(cmd) == 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* e2e_path and e2e_write hand out eight buffers in turn: a config path
 * used across more calls than that is kept here. */
static const char *kept(const char *path)
{
    static char buf[8][4096];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s", path);
    return b;
}

/* Hostile strings as items (json: gives a string element's text): quotes,
 * commas, CR, LF, CRLF, tabs, backslashes, UTF-8, NUL, blanks, empty. */
static const char strings_json[] =
    "[\"plain\", \"comma, here\", \"quote \\\"in\\\" it\", \"\\\"\", \"new\\nline\","
    " \"cr\\rhere\", \"crlf\\r\\n\", \"tab\\there\", \"back\\\\slash \\\\n\","
    " \"\\u00e9t\\u00e9 \\ud83d\\ude00 \\u4e2d\", \"\", \"  blanks  \","
    " \"FAIL, \\\"boom\\\"\", \"=1+2\", \"a\\u2028b\", \",\", \"\\n\"]";

static void formats_csv_hostile_strings(void **state)
{
    (void)state;
    e2e_write("strings.json", strings_json);
    const char *ini = kept(e2e_write("strings.ini", "[run]\nplugin = echo\nitems = json:strings.json\n"
                                               "output = strings.csv\n[args]\nmode = text\n"
                                               "fail_on = FAIL\n"));
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 1, "failed on FAIL"); /* status 1: an item failed */
    e2e_free(&o);
    char args[2048];
    snprintf(args, sizeof args, "strings '%s' '%s' FAIL", e2e_path("strings.json"),
             e2e_path("strings.csv"));
    assert_int_equal(check_py(args), 0);

    /* The same rows as TSV, and on standard output. */
    o = E2E_RUN("run", ini, "-q", "-o", e2e_path("strings.tsv"));
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    snprintf(args, sizeof args, "strings '%s' '%s' FAIL", e2e_path("strings.json"),
             e2e_path("strings.tsv"));
    assert_int_equal(check_py(args), 0);
    o = E2E_RUN("run", ini, "-q", "-o", "-", "--set", "run.format=csv");
    e2e_expect(&o, 1, NULL);
    char *file = e2e_slurp(e2e_path("strings.csv"), NULL);
    assert_non_null(file);
    assert_string_equal(o.out, file);
    /* LF ends the rows; the CRLF inside a value is kept, quoted. */
    assert_non_null(strstr(file, "\n2,\"quote \"\"in\"\" it\",true,,\"quote \"\"in\"\" it\"\n"));
    assert_non_null(strstr(file, ",true,,\"crlf\r\n\"\n"));
    assert_non_null(strstr(file, "\n12,\"FAIL, \"\"boom\"\"\",false,\"failed on FAIL, "
                                 "\"\"boom\"\"\",\n"));
    free(file);
    e2e_free(&o);
}

/* Lines of bytes that are not UTF-8: each invalid byte becomes U+FFFD, as
 * in JSON, and the file reads back as strict UTF-8. */
static void formats_csv_invalid_utf8(void **state)
{
    (void)state;
    static const char lines[] = "ok line\nbad \xff byte\ntrunc \xc3 x\nlone \x80\n"
                                "mixed \"\xfe\",\xc3\xa9\n";
    e2e_write_bytes("bytes.txt", lines, sizeof lines - 1);
    const char *ini = kept(e2e_write("bytes.ini", "[run]\nplugin = echo\nitems = lines:bytes.txt\n"
                                             "output = bytes.csv\n[args]\nmode = text\n"));
    for (int tsv = 0; tsv < 2; tsv++) {
        const char *out = e2e_path(tsv ? "bytes.tsv" : "bytes.csv");
        char *keep = strdup(out);
        e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-o", keep);
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
        char args[2048];
        snprintf(args, sizeof args, "bytes '%s' '%s'", e2e_path("bytes.txt"), keep);
        assert_int_equal(check_py(args), 0);
        free(keep);
    }
    /* A string value holding NUL (which CSV readers refuse): U+FFFD. */
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-o", "-", "--set", "run.format=csv", "--set",
                              "args.mode=nul", "--set", "run.items=1");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "index,input,ok,error,value\n0,0,true,,\"a\xef\xbf\xbd" "b\n\"\n");
    e2e_free(&o);
}

/* Objects flattened into columns = (their keys as the header says), a key
 * not listed failing its item, nested values as JSON text. */
static const char objects_json[] =
    "[{\"a\": 1, \"b c\": \"x, \\\"y\\\"\\nz\", \"d\": true},"
    " {\"d\": false, \"a\": -2.5},"
    " {\"b c\": null, \"nested\": 1},"
    " {\"a\": 3, \"e\": [1, {\"k\": \"v\"}], \"b c\": \"\\u00e9\"},"
    " {},"
    " {\"a\": 4, \"b c\": \"tab\\there\", \"e\": {\"q\": \"a,b\"}}]";
#define OBJECT_COLUMNS "a,b c,d,e"

static void formats_csv_objects_flattened(void **state)
{
    (void)state;
    e2e_write("objects.json", objects_json);
    const char *ini = kept(e2e_write("objects.ini", "[run]\nplugin = echo\nitems = json:objects.json\n"
                                               "output = objects.csv\ncolumns = a, b c ,d,e\n"
                                               "threads = 3\n[args]\nmode = item_json\n"));
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 1, "item 2 failed: the value has the key \"nested\", which columns = does "
                      "not list");
    e2e_free(&o);
    char *file = e2e_slurp(e2e_path("objects.csv"), NULL);
    assert_non_null(file);
    assert_true(strncmp(file, "index,input,ok,error,a,b c,d,e\n", 31) == 0);
    free(file);
    char args[2048];
    snprintf(args, sizeof args, "objects '%s' '%s' '" OBJECT_COLUMNS "'",
             e2e_path("objects.json"), e2e_path("objects.csv"));
    assert_int_equal(check_py(args), 0);
    o = E2E_RUN("run", ini, "-q", "-o", e2e_path("objects.tsv"));
    e2e_expect(&o, 1, NULL);
    e2e_free(&o);
    snprintf(args, sizeof args, "objects '%s' '%s' '" OBJECT_COLUMNS "'",
             e2e_path("objects.json"), e2e_path("objects.tsv"));
    assert_int_equal(check_py(args), 0);
}

static void formats_pandas_reads_them(void **state)
{
    (void)state;
    if (system(PYTHON " -c 'import pandas' 2>/dev/null") != 0) {
        fprintf(stderr, "formats_pandas_reads_them: skipped: pandas is not installed for "
                        PYTHON " (bash .ci/deps installs python3-pandas); the csv-module "
                        "checks still ran\n");
        skip();
        return;
    }
    e2e_write("objects.json", objects_json);
    const char *ini = kept(e2e_write("pd.ini", "[run]\nplugin = echo\nitems = json:objects.json\n"
                                          "output = pd.csv\ncolumns = " OBJECT_COLUMNS "\n"
                                          "[args]\nmode = item_json\n"));
    for (int tsv = 0; tsv < 2; tsv++) {
        char *out = strdup(e2e_path(tsv ? "pd.tsv" : "pd.csv"));
        e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-o", out);
        e2e_expect(&o, 1, NULL);
        e2e_free(&o);
        char args[2048];
        snprintf(args, sizeof args, "pandas '%s' '%s' '" OBJECT_COLUMNS "'",
                 e2e_path("objects.json"), out);
        assert_int_equal(check_py(args), 0);
        free(out);
    }
}

/* ---- compression ------------------------------------------------------------- */

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void expect_same_bytes(const char *a, const char *b)
{
    size_t la, lb;
    char *x = e2e_slurp(a, &la), *y = e2e_slurp(b, &lb);
    assert_non_null(x);
    assert_non_null(y);
    if (la != lb || memcmp(x, y, la) != 0)
        fail_msg("%s (%zu bytes) differs from %s (%zu bytes)", a, la, b, lb);
    free(x);
    free(y);
}

/* Every text format, gzip and zstd: the tools accept the file, it holds
 * exactly what the uncompressed run writes, and a second run writes the
 * same compressed bytes (no time, no name in the stream). */
static void formats_compressed_outputs(void **state)
{
    (void)state;
    if (!have("gzip") || !have("zstd")) {
        fprintf(stderr, "formats_compressed_outputs: skipped: the gzip and zstd commands "
                        "are needed (bash .ci/deps installs them)\n");
        skip();
        return;
    }
    /* Enough records for several of the writer's 1 MiB chunks. */
    const char *ini = kept(e2e_write("z.ini", "[run]\nplugin = echo\nitems = 120000\n"
                                         "output = z.jsonl\nthreads = 2\njournal = off\n"
                                         "[args]\nmode = json\n"));
    static const char *const formats[] = {"jsonl", "json", "csv", "tsv"};
    for (size_t f = 0; f < 4; f++) {
        char plain[64], packed[64], again[64];
        snprintf(plain, sizeof plain, "z.%s", formats[f]);
        char *plain_path = strdup(e2e_path(plain));
        e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-o", plain_path);
        e2e_expect(&o, 0, NULL);
        e2e_free(&o);
        for (int zst = 0; zst < 2; zst++) {
            snprintf(packed, sizeof packed, "z.%s.%s", formats[f], zst ? "zst" : "gz");
            snprintf(again, sizeof again, "again.%s.%s", formats[f], zst ? "zst" : "gz");
            char *p = strdup(e2e_path(packed)), *q = strdup(e2e_path(again));
            o = E2E_RUN("run", ini, "-q", "-o", p);
            e2e_expect(&o, 0, NULL);
            e2e_free(&o);
            o = E2E_RUN("run", ini, "-q", "-o", q, "-j1");
            e2e_expect(&o, 0, NULL);
            e2e_free(&o);
            assert_int_equal(sh(zst ? "zstd -q -t '%s'" : "gzip -t '%s'", p, ""), 0);
            assert_int_equal(sh(zst ? "zstd -q -dc '%s' | cmp -s - '%s'"
                                    : "gzip -dc '%s' | cmp -s - '%s'",
                                p, plain_path),
                             0);
            expect_same_bytes(p, q);
            /* Smaller than the text, and nothing but the file is left. */
            struct stat a, b;
            assert_int_equal(stat(p, &a), 0);
            assert_int_equal(stat(plain_path, &b), 0);
            assert_true(a.st_size * 3 < b.st_size);
            char partial[96];
            snprintf(partial, sizeof partial, ".%s.partial", packed);
            assert_false(exists(e2e_path(partial)));
            free(p);
            free(q);
        }
        free(plain_path);
    }
}

/* A compressed stream into a FIFO: flushed as it goes, whole at the end. */
static void formats_compressed_into_a_fifo(void **state)
{
    (void)state;
    if (!have("gzip")) {
        fprintf(stderr, "formats_compressed_into_a_fifo: skipped: no gzip command\n");
        skip();
        return;
    }
    const char *fifo = e2e_path("res.csv.gz");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gzip -dc < '%s' > '%s'", fifo, e2e_path("fifo.got"));
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    const char *ini = kept(e2e_write("fifo.ini", "[run]\nplugin = echo\nitems = 3\n"
                                            "output = res.csv.gz\n[args]\nmode = int\n"));
    e2e_outcome_t o = E2E_RUN("run", ini, "-q");
    if (o.status != 0)
        kill(reader, SIGKILL);
    e2e_expect(&o, 0, NULL);
    e2e_free(&o);
    int st;
    assert_int_equal(waitpid(reader, &st, 0), reader);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *got = e2e_slurp(e2e_path("fifo.got"), NULL);
    assert_non_null(got);
    assert_string_equal(got, "index,input,ok,error,value\n0,0,true,,0\n1,1,true,,1\n"
                             "2,2,true,,2\n");
    free(got);
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
}

/* ---- names and formats that disagree ----------------------------------------- */

static void formats_mismatch_refused(void **state)
{
    (void)state;
    static const struct {
        const char *run; /* [run] lines after plugin and items */
        const char *err; /* in stderr */
        const char *never; /* a file that must not appear */
    } cases[] = {
        {"output = m.csv\nformat = jsonl\n",
         "m.ini:4: format = 'jsonl': the output ", "m.csv"},
        {"output = m.csv\nformat = jsonl\n", "m.csv is csv by its extension (", "m.csv"},
        {"output = m.json.gz\nformat = tsv\n", "is json by its extension", "m.json.gz"},
        {"output = m.txt\n", "m.ini:3: output = '", "m.txt"},
        {"output = m.txt\n", "which format? Name the file .json, .jsonl (or .ndjson), .csv, "
                             ".tsv or .npy (the first four may end in .gz or .zst), or set "
                             "format = json|jsonl|csv|tsv|npy|raw", "m.txt"},
        {"output = m.npy.gz\n", "a .npy array is written in place and cannot be compressed",
         "m.npy.gz"},
        {"output = m.jsonl\ncolumns = a\n",
         "m.ini:4: columns = 'a': columns is for csv and tsv outputs", "m.jsonl"},
        {"output = m.csv\nrecord = value\n", "m.ini:4: record = 'value': a csv row always",
         "m.csv"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char body[512];
        snprintf(body, sizeof body, "[run]\nplugin = echo\n%sitems = 4\n", cases[k].run);
        /* output first: its line number is 3 */
        const char *ini = kept(e2e_write("m.ini", body));
        for (int check = 0; check < 2; check++) {
            e2e_outcome_t o = E2E_RUN(check ? "check" : "run", ini, "-q");
            e2e_expect(&o, 2, cases[k].err);
            e2e_free(&o);
            char partial[64];
            snprintf(partial, sizeof partial, ".%s.partial", cases[k].never);
            assert_false(exists(e2e_path(cases[k].never)));
            assert_false(exists(e2e_path(partial)));
        }
    }
    /* -o says another format than the config's format =: refused too. */
    const char *ini = kept(e2e_write("o.ini", "[run]\nplugin = echo\nitems = 4\noutput = o.jsonl\n"
                                         "format = jsonl\n"));
    e2e_outcome_t o = E2E_RUN("run", ini, "-q", "-o", e2e_path("o.csv"));
    e2e_expect(&o, 2, "is csv by its extension");
    e2e_free(&o);
    assert_false(exists(e2e_path("o.csv")));
    /* Special files and standard output keep JSON Lines without format =. */
    ini = kept(e2e_write("dev.ini", "[run]\nplugin = echo\nitems = 2\noutput = /dev/stdout\n"));
    o = E2E_RUN("run", ini, "-q");
    e2e_expect(&o, 0, NULL);
    assert_string_equal(o.out, "0\n1\n");
    e2e_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_csv_hostile_strings),
        cmocka_unit_test(formats_csv_invalid_utf8),
        cmocka_unit_test(formats_csv_objects_flattened),
        cmocka_unit_test(formats_pandas_reads_them),
        cmocka_unit_test(formats_compressed_outputs),
        cmocka_unit_test(formats_compressed_into_a_fifo),
        cmocka_unit_test(formats_mismatch_refused),
    };
    e2e_setup("formats");
    return cmocka_run_group_tests(tests, NULL, e2e_teardown);
}
