/* SPDX-License-Identifier: MIT */
/*
 * core/input/config.c: real config files in a fresh mkdtemp folder per test; every
 * documented error is checked for its "FILE:LINE:" and its key.
 */
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util.h" /* weft__suggest */

typedef struct fixture {
    char dir[64];             /* as created, under /tmp                  */
    char real_dir[PATH_MAX];  /* what cfg->dir should be                 */
    char path[PATH_MAX + 16]; /* dir/cfg.ini                              */
    weft__config_t *cfg;
    char err[512];
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/weft-test-config-XXXXXX");
    if (!mkdtemp(fx->dir) || !realpath(fx->dir, fx->real_dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/cfg.ini", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char p[PATH_MAX + 300];
    weft__config_free(&fx->cfg);
    DIR *d = opendir(fx->dir);
    if (d) {
        for (struct dirent *de; (de = readdir(d));) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", fx->dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void write_bytes(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Writes cfg.ini (replacing any earlier config) and loads it. */
static int load_n(fixture_t *fx, const char *text, size_t n)
{
    weft__config_free(&fx->cfg);
    fx->err[0] = '\0';
    write_bytes(fx->path, text, n);
    int rc = weft__config_load(&fx->cfg, fx->path, fx->err, sizeof fx->err);
    if (rc)
        assert_null(fx->cfg);
    else
        assert_non_null(fx->cfg);
    return rc;
}

static int load(fixture_t *fx, const char *text)
{
    return load_n(fx, text, strlen(text));
}

/* Load, which must succeed, then finalize. */
static int load_final(fixture_t *fx, const char *text)
{
    int rc = load(fx, text);
    if (rc)
        fail_msg("load failed: %s", fx->err);
    return weft__config_finalize(fx->cfg, fx->err, sizeof fx->err);
}

#define assert_err_has(fx, sub)                                                          \
    do {                                                                                 \
        if (!strstr((fx)->err, (sub)))                                                   \
            fail_msg("error \"%s\" lacks \"%s\"", (fx)->err, (sub));                     \
    } while (0)

#define assert_err_lacks(fx, sub)                                                        \
    do {                                                                                 \
        if (strstr((fx)->err, (sub)))                                                    \
            fail_msg("error \"%s\" has \"%s\"", (fx)->err, (sub));                       \
    } while (0)

/* fx->real_dir + "/" + rel */
static const char *in_dir(fixture_t *fx, const char *rel, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", fx->real_dir, rel);
    return buf;
}

#define MINIMAL "[run]\nplugin = p\nitems = range:0..10\n"

/* ---- load and finalize: the good path -------------------------------------- */

static void load_good_config(void **state)
{
    fixture_t *fx = *state;
    char buf[PATH_MAX + 64];
    const char *text = "; a comment\n"
                       "# another\n"
                       "\n"
                       "[run]\n"
                       "plugin = mandel\n"
                       "items = range:0..100\n"
                       "threads = 4\n"
                       "output = out/results.json\n"
                       "record = full\n"
                       "seed = 0x10\n"
                       "order = input\n"
                       "plugin_path = plugins:/opt/weft\n"
                       "\n"
                       "[args]\n"
                       "size_x = 200\n"
                       "title = hello world ; an inline comment\n"
                       "empty =\n";
    assert_int_equal(load(fx, text), 0);
    weft__config_t *cfg = fx->cfg;
    assert_string_equal(cfg->path, fx->path);
    assert_string_equal(cfg->dir, fx->real_dir);
    assert_int_equal(cfg->n_entries, 11);

    const weft__entry_t *e = &cfg->entries[0];
    assert_string_equal(e->section, "run");
    assert_string_equal(e->key, "plugin");
    assert_string_equal(e->value, "mandel");
    assert_ptr_equal(e->origin, cfg->path);
    assert_int_equal(e->line, 5);
    assert_int_equal(cfg->entries[8].line, 15);
    assert_string_equal(cfg->entries[8].section, "args");
    assert_string_equal(cfg->entries[9].value, "hello world");
    assert_string_equal(cfg->entries[10].key, "empty");
    assert_string_equal(cfg->entries[10].value, "");
    assert_int_equal(cfg->entries[10].line, 17);

    assert_int_equal(weft__config_finalize(cfg, fx->err, sizeof fx->err), 0);
    assert_string_equal(cfg->plugin, "mandel");
    snprintf(buf, sizeof buf, "%s/plugins:/opt/weft", fx->real_dir);
    assert_string_equal(cfg->plugin_path, buf);
    assert_non_null(cfg->items);
    assert_string_equal(cfg->items->value, "range:0..100");
    assert_int_equal(cfg->items->line, 6);
    assert_int_equal(cfg->threads, 4);
    assert_string_equal(cfg->output, in_dir(fx, "out/results.json", buf, sizeof buf));
    assert_int_equal(cfg->format, WEFT__FORMAT_JSON);
    assert_int_equal(cfg->record, WEFT__RECORD_FULL);
    assert_int_equal(cfg->seed, 16);
}

static void finalize_defaults(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, MINIMAL), 0);
    assert_string_equal(fx->cfg->plugin, "p");
    assert_null(fx->cfg->plugin_path);
    assert_int_equal(fx->cfg->threads, 0);
    assert_null(fx->cfg->output);
    assert_int_equal(fx->cfg->format, WEFT__FORMAT_NONE);
    assert_int_equal(fx->cfg->record, WEFT__RECORD_VALUE);
    assert_int_equal(fx->cfg->seed, 0);
}

static void finalize_output_and_format(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *lines;
        const char *output; /* NULL: none; leading '/': exact; else in dir */
        weft__format_t format;
    } cases[] = {
        {"output = -\n", "-", WEFT__FORMAT_JSONL},
        {"output = r.json\n", "r.json", WEFT__FORMAT_JSON},
        {"output = R.JSON\n", "R.JSON", WEFT__FORMAT_JSON},
        {"output = r.jsonl\n", "r.jsonl", WEFT__FORMAT_JSONL},
        {"output = ./sub/r.txt\nformat = jsonl\n", "sub/r.txt", WEFT__FORMAT_JSONL},
        {"output = r.ndjson\n", "r.ndjson", WEFT__FORMAT_JSONL},
        {"output = r.csv\n", "r.csv", WEFT__FORMAT_CSV},
        {"output = r.TSV\n", "r.TSV", WEFT__FORMAT_TSV},
        {"output = r.csv\nformat = csv\nrecord = full\n", "r.csv", WEFT__FORMAT_CSV},
        {"output = r.jsonl.gz\n", "r.jsonl.gz", WEFT__FORMAT_JSONL},
        {"output = r.json.zst\n", "r.json.zst", WEFT__FORMAT_JSON},
        {"output = r.gz\nformat = tsv\n", "r.gz", WEFT__FORMAT_TSV},
        {"output = /dev/null\n", "/dev/null", WEFT__FORMAT_JSONL},
        {"output = /dev/stdout\n", "/dev/stdout", WEFT__FORMAT_JSONL},
        {"output = -\nformat = csv\n", "-", WEFT__FORMAT_CSV},
        {"output = /abs/x.json\n", "/abs/x.json", WEFT__FORMAT_JSON},
        {"output = none\n", NULL, WEFT__FORMAT_NONE},
        {"output = -\nformat = json\n", "-", WEFT__FORMAT_JSON},
        {"output = none\nformat = none\n", NULL, WEFT__FORMAT_NONE},
        {"format = none\n", NULL, WEFT__FORMAT_NONE},
    };
    char text[256], want[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, MINIMAL "%s", cases[i].lines);
        if (load_final(fx, text))
            fail_msg("case %zu: %s", i, fx->err);
        const char *o = cases[i].output;
        if (!o)
            assert_null(fx->cfg->output);
        else if (o[0] == '/' || o[0] == '-')
            assert_string_equal(fx->cfg->output, o);
        else
            assert_string_equal(fx->cfg->output, in_dir(fx, o, want, sizeof want));
        assert_int_equal(fx->cfg->format, cases[i].format);
    }
}

static void finalize_format_errors(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, MINIMAL "format = json\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: format = 'json':");
    assert_err_has(fx, "no output");

    assert_int_equal(load_final(fx, MINIMAL "output = r.json\nformat = none\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:5: format = 'none':");

    assert_int_equal(load_final(fx, MINIMAL "format = xml\n"), -EINVAL);
    assert_err_has(fx,
                   "cfg.ini:4: format = 'xml': expected json, jsonl, csv, tsv, npy, raw or none");

    assert_int_equal(load_final(fx, MINIMAL "output =\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: output = '':");
}

/* The output's extension and format = agree, or the config is refused
 * (it used to become JSON Lines whatever the name said). */
static void finalize_extension_mismatch(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, MINIMAL "output = r.csv\nformat = jsonl\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:5: format = 'jsonl': the output ");
    assert_err_has(fx, "r.csv is csv by its extension (");
    assert_err_has(fx, "cfg.ini:4)");

    assert_int_equal(load_final(fx, MINIMAL "output = r.json\nformat = jsonl\n"), -EINVAL);
    assert_err_has(fx, "is json by its extension");
    assert_int_equal(load_final(fx, MINIMAL "output = r.jsonl.gz\nformat = tsv\n"), -EINVAL);
    assert_err_has(fx, "is jsonl by its extension");

    /* No format = and an extension that names none: which formats exist. */
    assert_int_equal(load_final(fx, MINIMAL "output = r.txt\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: output = '");
    assert_err_has(fx, "which format? Name the file .json, .jsonl (or .ndjson), .csv, .tsv or "
                       ".npy (the first four may end in .gz or .zst), or set format = "
                       "json|jsonl|csv|tsv|npy|raw");
    assert_int_equal(load_final(fx, MINIMAL "output = r.gz\n"), -EINVAL);
    assert_err_has(fx, "which format?");

    assert_int_equal(load_final(fx, MINIMAL "output = r.npy.gz\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: output = '");
    assert_err_has(fx, "a .npy array is written in place and cannot be compressed");
}

static void finalize_csv_keys(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, MINIMAL "output = r.csv\ncolumns = x, y z ,w\n"), 0);
    assert_int_equal(fx->cfg->n_columns, 3);
    assert_string_equal(fx->cfg->columns[0], "x");
    assert_string_equal(fx->cfg->columns[1], "y z");
    assert_string_equal(fx->cfg->columns[2], "w");
    assert_int_equal(fx->cfg->record, WEFT__RECORD_FULL); /* a row is always whole */
    assert_int_equal(fx->cfg->compress, WEFT__COMPRESS_NONE);
    assert_int_equal(load_final(fx, MINIMAL "output = r.tsv.zst\n"), 0);
    assert_null(fx->cfg->columns);
    assert_int_equal(fx->cfg->compress, WEFT__COMPRESS_ZSTD);
    assert_int_equal(load_final(fx, MINIMAL "output = r.csv.GZ\n"), 0);
    assert_int_equal(fx->cfg->compress, WEFT__COMPRESS_GZIP);

    assert_int_equal(load_final(fx, MINIMAL "output = r.jsonl\ncolumns = a\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:5: columns = 'a': columns is for csv and tsv outputs (this "
                       "output is jsonl)");
    assert_int_equal(load_final(fx, MINIMAL "output = r.csv\nrecord = value\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:5: record = 'value': a csv row always holds index, input, ok, "
                       "error and the value");
    assert_int_equal(load_final(fx, MINIMAL "output = r.csv\ncolumns = a,,b\n"), -EINVAL);
    assert_err_has(fx, "column 2 is empty");
    assert_int_equal(load_final(fx, MINIMAL "output = r.csv\ncolumns = a,b,a\n"), -EINVAL);
    assert_err_has(fx, "'a' is named twice");
    assert_int_equal(load_final(fx, MINIMAL "output = r.csv\ncolumns = ok\n"), -EINVAL);
    assert_err_has(fx, "'ok' is one of the fixed columns");
}

static void finalize_plugin_paths(void **state)
{
    fixture_t *fx = *state;
    char want[PATH_MAX + 64];
    assert_int_equal(load_final(fx, "[run]\nplugin = ./lib/mandel.so\nitems = x\n"), 0);
    assert_string_equal(fx->cfg->plugin, in_dir(fx, "lib/mandel.so", want, sizeof want));

    assert_int_equal(load_final(fx, "[run]\nplugin = /abs/m.so\nitems = x\n"), 0);
    assert_string_equal(fx->cfg->plugin, "/abs/m.so");

    assert_int_equal(load_final(fx, MINIMAL "plugin_path = a::/b:\n"), 0);
    snprintf(want, sizeof want, "%s/a:/b", fx->real_dir);
    assert_string_equal(fx->cfg->plugin_path, want);

    assert_int_equal(load_final(fx, MINIMAL "plugin_path = .\n"), 0);
    assert_string_equal(fx->cfg->plugin_path, fx->real_dir);

    assert_int_equal(load_final(fx, MINIMAL "plugin_path =\n"), 0);
    assert_null(fx->cfg->plugin_path);

    assert_int_equal(load_final(fx, "[run]\nplugin =\nitems = x\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: plugin = '':");
}

static void finalize_threads(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *value;
        int ok;
        unsigned threads;
    } cases[] = {
        {"0", 1, 0},    {"1024", 1, 1024}, {"0x10", 1, 16},
        {"1025", 0, 0}, {"-1", 0, 0},      {"many", 0, 0},
        {"", 0, 0},     {"4.0", 0, 0},     {"99999999999999999999", 0, 0},
    };
    char text[256], want[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, MINIMAL "threads = %s\n", cases[i].value);
        int rc = load_final(fx, text);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(fx->cfg->threads, cases[i].threads);
        } else {
            assert_int_equal(rc, -EINVAL);
            snprintf(want, sizeof want,
                     "cfg.ini:4: threads = '%s': expected an integer from 0 to 1024",
                     cases[i].value);
            assert_err_has(fx, want);
        }
    }
}

static void finalize_seed(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, MINIMAL "seed = 18446744073709551615\n"), 0);
    assert_true(fx->cfg->seed == UINT64_MAX);
    assert_int_equal(load_final(fx, MINIMAL "seed = 0xDeadBeef\n"), 0);
    assert_int_equal(fx->cfg->seed, 0xdeadbeefu);
    assert_int_equal(load_final(fx, MINIMAL "seed = 42\n"), 0);
    assert_int_equal(fx->cfg->seed, 42);

    static const char *const bad[] = {
        "18446744073709551616", "-1", "+1", "12abc", "0x", ""};
    char text[256], want[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, MINIMAL "seed = %s\n", bad[i]);
        assert_int_equal(load_final(fx, text), -EINVAL);
        snprintf(want, sizeof want, "cfg.ini:4: seed = '%s': expected an integer",
                 bad[i]);
        assert_err_has(fx, want);
    }
}

static void finalize_record_and_order(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, MINIMAL "record = value\n"), 0);
    assert_int_equal(fx->cfg->record, WEFT__RECORD_VALUE);
    assert_int_equal(load_final(fx, MINIMAL "record = all\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: record = 'all': expected value or full");

    assert_int_equal(load_final(fx, MINIMAL "order = input\n"), 0);
    assert_false(fx->cfg->order_any);
    assert_int_equal(load_final(fx, MINIMAL "order = any\n"), 0);
    assert_true(fx->cfg->order_any);
    assert_int_equal(load_final(fx, MINIMAL "order = random\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: order = 'random': expected input");

    assert_int_equal(load_final(fx, MINIMAL "flatten = yes\n"), 0);
    assert_true(fx->cfg->flatten);
    assert_int_equal(load_final(fx, MINIMAL "flatten = sure\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: flatten = 'sure': expected true/false");

    /* .npy: from the extension, and never standard output. */
    assert_int_equal(load_final(fx, MINIMAL "output = rows.npy\n"), 0);
    assert_int_equal(fx->cfg->format, WEFT__FORMAT_NPY);
    assert_int_equal(load_final(fx, MINIMAL "output = -\nformat = npy\n"), -EINVAL);
    assert_err_has(fx, "a .npy output must be a file");
}

static void finalize_unknown_key(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, "[run]\nplugin = p\nthread = 4\nitems = x\n"),
                     -EINVAL);
    assert_err_has(fx,
                   "cfg.ini:3: unknown key 'thread' in [run]; did you mean 'threads'?");

    assert_int_equal(load_final(fx, MINIMAL "colour = red\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: unknown key 'colour' in [run]");
    assert_err_lacks(fx, "did you mean");
    assert_err_has(fx, "threads");
}

static void finalize_missing_required(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, "[run]\nitems = x\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini: [run] has no 'plugin' key (the plugin to run)");
    assert_int_equal(load_final(fx, "[run]\nplugin = p\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini: [run] has no 'items' key");
    assert_int_equal(load_final(fx, "[args]\nx = 1\n"), -EINVAL);
    assert_err_has(fx, "[run] has no 'plugin' key");
}

/* ---- load: syntax and errors -------------------------------------------------- */

static void load_missing_file(void **state)
{
    fixture_t *fx = *state;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/nope.ini", fx->dir);
    fx->cfg = (weft__config_t *)fx; /* must be reset to NULL */
    assert_int_equal(weft__config_load(&fx->cfg, path, fx->err, sizeof fx->err), -ENOENT);
    assert_null(fx->cfg);
    assert_err_has(fx, "cannot open ");
    assert_err_has(fx, "nope.ini: ");
    assert_err_has(fx, "No such file");
}

/* A bare file name: its folder is the current one, made absolute. */
static void load_relative_path(void **state)
{
    fixture_t *fx = *state;
    char cwd[PATH_MAX], want[PATH_MAX + 64];
    assert_non_null(getcwd(cwd, sizeof cwd));
    static const char text[] = MINIMAL "output = r.json\n";
    write_bytes(fx->path, text, sizeof text - 1);
    assert_int_equal(chdir(fx->dir), 0);
    int rc = weft__config_load(&fx->cfg, "cfg.ini", fx->err, sizeof fx->err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(fx->cfg->dir, fx->real_dir);
    assert_int_equal(weft__config_finalize(fx->cfg, fx->err, sizeof fx->err), 0);
    assert_string_equal(fx->cfg->output, in_dir(fx, "r.json", want, sizeof want));
    assert_err_lacks(fx, "cfg.ini"); /* err cleared on success */
}

static void load_directory_is_an_error(void **state)
{
    fixture_t *fx = *state;
    int rc = weft__config_load(&fx->cfg, fx->dir, fx->err, sizeof fx->err);
    assert_int_equal(rc, -EISDIR);
    assert_null(fx->cfg);
    assert_err_has(fx, fx->dir);
    assert_err_has(fx, "is a folder, not a config file");
}

static void load_unknown_section(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[run]\nplugin = p\n[arg]\nx = 1\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: unknown section '[arg]'; did you mean '[args]'?");

    /* An empty section is still reported, at its own line. */
    assert_int_equal(load(fx, MINIMAL "\n[extras]\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:5: unknown section '[extras]'");
    assert_err_lacks(fx, "did you mean");

    assert_int_equal(load(fx, "[Run]\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:1: unknown section '[Run]'; did you mean '[run]'?");
}

static void load_bad_section_headers(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[run]\n[args\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: section header has no closing ']'");

    assert_int_equal(load(fx, "[run] junk\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:1: unexpected text after ']'");

    assert_int_equal(load(fx, "[run] ; a comment\nplugin = p\n"), 0);
    assert_int_equal(fx->cfg->n_entries, 1);
}

static void load_key_outside_section(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "; header\nplugin = p\n[run]\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: key 'plugin' is outside a section");
}

static void load_duplicate_key(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[run]\nthreads = 1\nplugin = p\nthreads = 2\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:4: duplicate key 'threads' (first set at line 2)");

    /* Across two [run] headers too. */
    assert_int_equal(load(fx, "[run]\nseed = 1\n[args]\nseed = 1\n[run]\nseed = 2\n"),
                     -EINVAL);
    assert_err_has(fx, "cfg.ini:6: duplicate key 'seed' (first set at line 2)");

    /* The same key in two sections is fine. */
    assert_int_equal(load(fx, "[run]\nseed = 1\n[args]\nseed = 1\n"), 0);
    assert_int_equal(fx->cfg->n_entries, 2);
}

static void load_not_key_value(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[run]\nplugin = p\njust some words\nitems = x\n"),
                     -EINVAL);
    assert_err_has(fx, "cfg.ini:3: expected 'key = value'");
    assert_err_has(fx, "just some words");

    /* Last line, no final newline. */
    assert_int_equal(load(fx, "[run]\nplugin = p\ntrailing"), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: expected 'key = value'");

    /* An inline comment before the '=' hides it. */
    assert_int_equal(load(fx, "[run]\nplugin ;= p\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: expected 'key = value'");
}

static void load_empty_key(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[run]\n = 5\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: empty key");
}

static void load_first_error_wins(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[run]\nbroken\nthreads = 1\nthreads = 2\n[nope]\n"),
                     -EINVAL);
    assert_err_has(fx, "cfg.ini:2:");
    assert_err_lacks(fx, "duplicate");
}

static void load_long_lines(void **state)
{
    fixture_t *fx = *state;
    static char text[80000], value[70000];

    /* Past inih's 200-byte buffer (Debian's build): a whole value, one key,
     * the line numbers of the keys after it right. */
    memset(value, 'v', sizeof value);
    snprintf(text, sizeof text, "[run]\nplugin = p\nitems = %.*s\nthreads = 1\n", 292,
             value);
    assert_int_equal(load(fx, text), 0);
    assert_int_equal(fx->cfg->n_entries, 3);
    assert_int_equal(strlen(fx->cfg->entries[1].value), 292);
    assert_int_equal(fx->cfg->entries[2].line, 4);

    /* 60000 bytes, with CRLF and an inline comment cut off as inih would. */
    snprintf(text, sizeof text, "[args]\ncommand =   %.*s   ; a comment\r\nx = 1\n", 60000,
             value);
    assert_int_equal(load(fx, text), 0);
    assert_int_equal(strlen(fx->cfg->entries[0].value), 60000);
    assert_string_equal(fx->cfg->entries[1].value, "1");

    /* A long comment is a comment; a long line without '=' is still an error. */
    snprintf(text, sizeof text, "; %.*s\n[run]\nplugin = p\n", 250, value);
    assert_int_equal(load(fx, text), 0);
    assert_int_equal(fx->cfg->entries[0].line, 3);
    snprintf(text, sizeof text, "[run]\n%.*s\n", 250, value);
    assert_int_equal(load(fx, text), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: line too long (250 characters) for a line without '='");

    /* The bound: 64 KiB a line. */
    snprintf(text, sizeof text, "[run]\nitems = %.*s\n", 66000, value);
    assert_int_equal(load(fx, text), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: line too long (over 65536 characters)");
}

/* A key line ending in a backslash goes on on the next: the backslash, the
 * blanks around the break and the next line's indent become one space.
 * Comments do not continue; the entry's line is its first. */
static void load_continuation_lines(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[args]\ncommand = convert {} \\\n    -resize 50% \\\n"
                              "\t{stem}.png\n; a comment \\\nmode = x\n"),
                     0);
    assert_int_equal(fx->cfg->n_entries, 2);
    assert_string_equal(fx->cfg->entries[0].value, "convert {} -resize 50% {stem}.png");
    assert_int_equal(fx->cfg->entries[0].line, 2);
    assert_string_equal(fx->cfg->entries[1].key, "mode");
    assert_int_equal(fx->cfg->entries[1].line, 6);
    /* Continued past inih's buffer, and a backslash on the last line. */
    static char text[4096];
    char chunk[120];
    memset(chunk, 'w', sizeof chunk - 1);
    chunk[sizeof chunk - 1] = '\0';
    snprintf(text, sizeof text, "[args]\ncommand = %s \\\n %s \\\n %s \\\n", chunk, chunk,
             chunk);
    assert_int_equal(load(fx, text), 0);
    assert_int_equal(strlen(fx->cfg->entries[0].value), 3 * 119 + 2);
    /* Lines of a backslash alone add nothing (the fuzz finding that made
     * a long key line keep an untrimmed key is corpus/config/
     * bug_backslash_only_continuation). */
    static char text2[1024];
    snprintf(text2, sizeof text2, "[args]\n\\\n\\\nmode = %s%s\n", chunk, chunk);
    assert_int_equal(load(fx, text2), 0);
    assert_string_equal(fx->cfg->entries[0].key, "mode");
    assert_int_equal(strlen(fx->cfg->entries[0].value), 2 * 119);
    /* A blank after the backslash keeps it in the value. */
    assert_int_equal(load(fx, "[args]\npath = C:\\dir\\ \nmode = y\n"), 0);
    assert_string_equal(fx->cfg->entries[0].value, "C:\\dir\\");
    assert_string_equal(fx->cfg->entries[1].value, "y");
}

static void load_indented_is_not_continuation(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "[run]\nplugin = p\n    threads = 4\n\titems = x\n"), 0);
    assert_int_equal(fx->cfg->n_entries, 3);
    assert_string_equal(fx->cfg->entries[0].value, "p");
    assert_string_equal(fx->cfg->entries[1].key, "threads");
    assert_int_equal(fx->cfg->entries[1].line, 3);
    assert_string_equal(fx->cfg->entries[2].key, "items");

    /* A would-be continuation line is rejected, not glued to the value. */
    assert_int_equal(load(fx, "[run]\nplugin = p\n    more text\n"), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: expected 'key = value'");
}

static void load_crlf_bom_colon(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, "\xEF\xBB\xBF[run]\r\nplugin = p\r\nthreads: 3\r\n"), 0);
    assert_int_equal(fx->cfg->n_entries, 2);
    assert_string_equal(fx->cfg->entries[0].value, "p");
    assert_string_equal(fx->cfg->entries[1].key, "threads");
    assert_string_equal(fx->cfg->entries[1].value, "3");
    assert_int_equal(fx->cfg->entries[1].line, 3);
}

static void load_nul_byte(void **state)
{
    fixture_t *fx = *state;
    static const char text[] = "[run]\nplugin = p\nitems = a\0b\n";
    assert_int_equal(load_n(fx, text, sizeof text - 1), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: line contains a NUL byte");
}

static void load_empty_file(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load(fx, ""), 0);
    assert_int_equal(fx->cfg->n_entries, 0);
    assert_int_equal(weft__config_finalize(fx->cfg, fx->err, sizeof fx->err), -EINVAL);
    assert_err_has(fx, "has no 'plugin' key");
}

/* ---- --set --------------------------------------------------------------- */

static void set_replaces_and_adds(void **state)
{
    fixture_t *fx = *state;
    char where[128];
    weft__config_t *cfg;
    assert_int_equal(load(fx, MINIMAL "threads = 2\n"), 0);
    cfg = fx->cfg;

    assert_int_equal(weft__config_set(cfg, "run.threads=8", fx->err, sizeof fx->err), 0);
    assert_int_equal(cfg->n_entries, 3);
    assert_string_equal(cfg->entries[2].key, "threads");
    assert_string_equal(cfg->entries[2].value, "8");
    assert_string_equal(cfg->entries[2].origin, "--set");
    assert_int_equal(cfg->entries[2].line, 0);
    assert_string_equal(weft__entry_where(&cfg->entries[2], where, sizeof where),
                        "--set run.threads");

    assert_int_equal(
        weft__config_set(cfg, " args.size_x = 200 ", fx->err, sizeof fx->err), 0);
    assert_int_equal(cfg->n_entries, 4);
    assert_string_equal(cfg->entries[3].section, "args");
    assert_string_equal(cfg->entries[3].key, "size_x");
    assert_string_equal(cfg->entries[3].value, "200");

    assert_int_equal(weft__config_set(cfg, "run.output=", fx->err, sizeof fx->err), 0);
    assert_string_equal(cfg->entries[4].value, "");
    assert_int_equal(
        weft__config_set(cfg, "run.output=a=b.json", fx->err, sizeof fx->err), 0);
    assert_string_equal(cfg->entries[4].value, "a=b.json");

    assert_int_equal(weft__config_finalize(cfg, fx->err, sizeof fx->err), 0);
    assert_int_equal(cfg->threads, 8);
    assert_int_equal(cfg->format, WEFT__FORMAT_JSON);

    /* Finalize again after another override. */
    assert_int_equal(weft__config_set(cfg, "run.output=none", fx->err, sizeof fx->err),
                     0);
    assert_int_equal(weft__config_finalize(cfg, fx->err, sizeof fx->err), 0);
    assert_null(cfg->output);
    assert_int_equal(cfg->format, WEFT__FORMAT_NONE);
}

static void set_errors(void **state)
{
    fixture_t *fx = *state;
    weft__config_t *cfg;
    assert_int_equal(load(fx, MINIMAL), 0);
    cfg = fx->cfg;

    assert_int_equal(weft__config_set(cfg, "foo.x=1", fx->err, sizeof fx->err), -EINVAL);
    assert_string_equal(fx->err,
                        "--set foo.x: unknown section 'foo' (expected run, args or task)");
    assert_int_equal(weft__config_set(cfg, "threads=4", fx->err, sizeof fx->err),
                     -EINVAL);
    assert_err_has(fx, "--set threads=4: expected section.key=value");
    assert_int_equal(weft__config_set(cfg, "run.threads", fx->err, sizeof fx->err),
                     -EINVAL);
    assert_err_has(fx, "expected section.key=value");
    assert_int_equal(weft__config_set(cfg, "run.=4", fx->err, sizeof fx->err), -EINVAL);
    assert_err_has(fx, "--set run.: empty key");
    assert_int_equal(cfg->n_entries, 2);

    /* Errors in overrides name the override. */
    assert_int_equal(weft__config_set(cfg, "run.thread=4", fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__config_finalize(cfg, fx->err, sizeof fx->err), -EINVAL);
    assert_err_has(fx, "--set run.thread: unknown key 'thread' in [run]; "
                       "did you mean 'threads'?");

    assert_int_equal(load(fx, MINIMAL), 0);
    assert_int_equal(weft__config_set(fx->cfg, "run.threads=x", fx->err, sizeof fx->err),
                     0);
    assert_int_equal(weft__config_finalize(fx->cfg, fx->err, sizeof fx->err), -EINVAL);
    assert_err_has(
        fx, "--set run.threads: threads = 'x': expected an integer from 0 to 1024");
}

static void entry_where_file(void **state)
{
    fixture_t *fx = *state;
    char where[PATH_MAX + 32], want[PATH_MAX + 32];
    assert_int_equal(load(fx, MINIMAL), 0);
    snprintf(want, sizeof want, "%s:3", fx->path);
    assert_string_equal(weft__entry_where(&fx->cfg->entries[1], where, sizeof where),
                        want);
}

/* format = raw: values alone, so no full records and no flatten; never
 * picked from a name (it has no extension). */
static void finalize_format_raw(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_final(fx, MINIMAL "output = r.txt\nformat = raw\n"), 0);
    assert_int_equal(fx->cfg->format, WEFT__FORMAT_RAW);
    assert_int_equal(fx->cfg->record, WEFT__RECORD_VALUE);
    weft__config_free(&fx->cfg);
    assert_int_equal(load_final(fx, MINIMAL "output = -\n"), 0);
    assert_int_equal(fx->cfg->format, WEFT__FORMAT_JSONL); /* a file's stdout default */
    weft__config_free(&fx->cfg);
    assert_int_equal(load_final(fx, MINIMAL "output = -\nformat = raw\nrecord = full\n"),
                     -EINVAL);
    assert_err_has(fx, "cfg.ini:6: record = 'full': format = raw writes each value's bytes");
    weft__config_free(&fx->cfg);
    assert_int_equal(load_final(fx, MINIMAL "output = -\nformat = raw\nflatten = true\n"),
                     -EINVAL);
    assert_err_has(fx, "cfg.ini:6: flatten = 'true': format = raw writes each value as it is");
    weft__config_free(&fx->cfg);
    assert_int_equal(load_final(fx, MINIMAL "output = r.json\nformat = raw\n"), -EINVAL);
    assert_err_has(fx, "the output");
}

/* A config with no file (weft run -p PLUGIN): named by its label, its
 * folder the current one, standard output as raw values by default, an
 * entry's origin the option that set it. */
static void config_new_command_line(void **state)
{
    fixture_t *fx = *state;
    char cwd[PATH_MAX], where[256];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(weft__config_new(&fx->cfg, "command line", fx->err, sizeof fx->err), 0);
    assert_true(fx->cfg->in_memory);
    assert_string_equal(fx->cfg->path, "command line");
    assert_string_equal(fx->cfg->dir, cwd);
    assert_int_equal(weft__config_set_as(fx->cfg, "run.plugin=exec", "-p", fx->err,
                                         sizeof fx->err),
                     0);
    assert_int_equal(weft__config_finalize(fx->cfg, fx->err, sizeof fx->err), -EINVAL);
    assert_err_has(fx, "command line: which items? Give them after :::");
    assert_int_equal(weft__config_set_as(fx->cfg, "run.items=[\"a\"]", ":::", fx->err,
                                         sizeof fx->err),
                     0);
    assert_int_equal(weft__config_finalize(fx->cfg, fx->err, sizeof fx->err), 0);
    assert_string_equal(fx->cfg->output, "-");
    assert_int_equal(fx->cfg->format, WEFT__FORMAT_RAW);
    assert_string_equal(weft__entry_where(fx->cfg->items, where, sizeof where), ":::");
    /* -o FILE: the format its name says; --set keeps its own origin. */
    assert_int_equal(weft__config_set(fx->cfg, "run.output=/tmp/x.jsonl", fx->err,
                                      sizeof fx->err),
                     0);
    assert_int_equal(weft__config_finalize(fx->cfg, fx->err, sizeof fx->err), 0);
    assert_int_equal(fx->cfg->format, WEFT__FORMAT_JSONL);
    assert_string_equal(weft__entry_where(weft__config_entry(fx->cfg, "run", "output"), where,
                                          sizeof where),
                        "--set run.output");
    assert_int_equal(weft__config_set_as(fx->cfg, "run.threads=x", "-j", fx->err,
                                         sizeof fx->err),
                     0);
    assert_int_equal(weft__config_finalize(fx->cfg, fx->err, sizeof fx->err), -EINVAL);
    assert_err_has(fx, "-j: threads = 'x'");
}

/* ---- bind ---------------------------------------------------------------------- */

static const weft_arg_spec_t schema[] = {
    {"size_x", WEFT_ARG_INT, NULL, "image width in pixels", 1, 4096},
    {"iters", WEFT_ARG_INT, "100", "iterations", 0, 0},
    {"scale", WEFT_ARG_FLOAT, "1.5", "zoom", 0.1, 10},
    {"offset", WEFT_ARG_FLOAT, "-0.5", "offset", 0, 0},
    {"smooth", WEFT_ARG_BOOL, "yes", "smooth colours", 0, 0},
    {"title", WEFT_ARG_STRING, "untitled", "title", 0, 0},
    {"palette", WEFT_ARG_PATH, "pal/default.txt", "palette file", 0, 0},
    {"outdir", WEFT_ARG_PATH, "", "output folder", 0, 0},
};
#define N_SCHEMA (sizeof schema / sizeof schema[0])

static const weft_plugin_t mandel = {
    WEFT_PLUGIN_HEADER,
    .name = "mandel",
    .args = schema,
    .n_args = N_SCHEMA,
};

enum { SIZE_X, ITERS, SCALE, OFFSET, SMOOTH, TITLE, PALETTE, OUTDIR };

/* Loads "[args]\n" + lines (the first arg line is line 2) and binds it. */
static int bind_args(fixture_t *fx, const weft_plugin_t *plugin, const char *lines,
                     weft_arg_value_t *out)
{
    char text[1024];
    snprintf(text, sizeof text, "[args]\n%s", lines);
    if (load(fx, text))
        fail_msg("load failed: %s", fx->err);
    return weft__config_bind(fx->cfg, plugin, out, fx->err, sizeof fx->err);
}

static void bind_every_type(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    char want[PATH_MAX + 64];
    assert_int_equal(bind_args(fx, &mandel,
                               "size_x = 0x100\niters = -7\nscale = 2.5\noffset = -1e3\n"
                               "smooth = OFF\ntitle = Hello World\npalette = /abs/p.txt\n"
                               "outdir = out\n",
                               v),
                     0);
    assert_int_equal(v[SIZE_X].type, WEFT_ARG_INT);
    assert_int_equal(v[SIZE_X].u.i, 256);
    assert_int_equal(v[ITERS].u.i, -7);
    assert_int_equal(v[SCALE].type, WEFT_ARG_FLOAT);
    assert_true(v[SCALE].u.f == 2.5);
    assert_true(v[OFFSET].u.f == -1000.0);
    assert_int_equal(v[SMOOTH].type, WEFT_ARG_BOOL);
    assert_false(v[SMOOTH].u.b);
    assert_int_equal(v[TITLE].type, WEFT_ARG_STRING);
    assert_string_equal(v[TITLE].u.s, "Hello World");
    assert_int_equal(v[PALETTE].type, WEFT_ARG_PATH);
    assert_string_equal(v[PALETTE].u.s, "/abs/p.txt");
    assert_string_equal(v[OUTDIR].u.s, in_dir(fx, "out", want, sizeof want));
}

static void bind_defaults(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    char want[PATH_MAX + 64];
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\n", v), 0);
    assert_int_equal(v[SIZE_X].u.i, 1);
    assert_int_equal(v[ITERS].u.i, 100);
    assert_true(v[SCALE].u.f == 1.5);
    assert_true(v[OFFSET].u.f == -0.5);
    assert_true(v[SMOOTH].u.b);
    assert_string_equal(v[TITLE].u.s, "untitled");
    assert_ptr_not_equal(v[TITLE].u.s, schema[TITLE].default_value); /* owned by cfg */
    assert_string_equal(v[PALETTE].u.s, in_dir(fx, "pal/default.txt", want, sizeof want));
    assert_string_equal(v[OUTDIR].u.s, ""); /* empty PATH stays empty */
}

static void bind_set_overrides(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    char want[PATH_MAX + 64];
    assert_int_equal(load(fx, "[args]\nsize_x = 5\n"), 0);
    assert_int_equal(weft__config_set(fx->cfg, "args.size_x=7", fx->err, sizeof fx->err),
                     0);
    assert_int_equal(
        weft__config_set(fx->cfg, "args.palette=p.txt", fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__config_bind(fx->cfg, &mandel, v, fx->err, sizeof fx->err), 0);
    assert_int_equal(v[SIZE_X].u.i, 7);
    assert_string_equal(v[PALETTE].u.s, in_dir(fx, "p.txt", want, sizeof want));

    assert_int_equal(
        weft__config_set(fx->cfg, "args.size_x=abc", fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__config_bind(fx->cfg, &mandel, v, fx->err, sizeof fx->err),
                     -EINVAL);
    assert_err_has(fx, "--set args.size_x: size_x = 'abc': expected an integer (int64)");
}

static void bind_required_missing(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    assert_int_equal(bind_args(fx, &mandel, "iters = 5\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini: missing required argument 'size_x' "
                       "(int: image width in pixels) in [args]");
}

/* [task]: listed in file order for a plugin that takes it, --set task.KEY
 * replacing or adding one; refused (with its line) for one that does not,
 * and for a key no function argument can have. */
static void bind_task_section(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    weft_plugin_t takes = mandel;
    takes.flags = WEFT_PLUGIN_TASK_ARGS;
    assert_int_equal(load(fx, "[args]\nsize_x = 5\n[task]\nsize = 100\nname = a b\n"
                              "_x9 = \n"),
                     0);
    assert_int_equal(weft__config_set(fx->cfg, "task.size=200", fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__config_set(fx->cfg, "task.Extra=1", fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__config_bind(fx->cfg, &takes, v, fx->err, sizeof fx->err), 0);
    assert_int_equal(fx->cfg->n_task, 4);
    static const char *const keys[] = {"size", "name", "_x9", "Extra"};
    static const char *const values[] = {"200", "a b", "", "1"};
    for (size_t k = 0; k < 4; k++) {
        assert_string_equal(fx->cfg->task_keys[k], keys[k]);
        assert_string_equal(fx->cfg->task_values[k], values[k]);
    }
    /* A plugin without the flag: refused at the first [task] entry (size,
     * set last by --set). */
    assert_int_equal(weft__config_bind(fx->cfg, &mandel, v, fx->err, sizeof fx->err),
                     -EINVAL);
    assert_err_has(fx, "--set task.size: [task] is for a plugin that hands arguments on to a "
                       "task of its own (plugin = worker); plugin mandel takes its "
                       "arguments in [args]");
    assert_int_equal(weft__config_set(fx->cfg, "task.9lives=1", fx->err, sizeof fx->err), 0);
    assert_int_equal(weft__config_bind(fx->cfg, &takes, v, fx->err, sizeof fx->err),
                     -EINVAL);
    assert_err_has(fx, "--set task.9lives: [task] key '9lives' is not a name");
    /* No [task]: nothing listed. */
    assert_int_equal(load(fx, "[args]\nsize_x = 5\n"), 0);
    assert_int_equal(weft__config_bind(fx->cfg, &takes, v, fx->err, sizeof fx->err), 0);
    assert_int_equal(fx->cfg->n_task, 0);
    assert_null(fx->cfg->task_keys);
}

static void bind_bad_int(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    assert_int_equal(bind_args(fx, &mandel, "iters = 1\nsize_x = 12x\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: size_x = '12x': expected an integer (int64)");

    assert_int_equal(
        bind_args(fx, &mandel, "size_x = 1\niters = 9223372036854775808\n", v), -EINVAL);
    assert_err_has(fx,
                   "cfg.ini:3: iters = '9223372036854775808': expected an integer from "
                   "-9223372036854775808 to 9223372036854775807 (int64)");

    assert_int_equal(
        bind_args(fx, &mandel, "size_x = 1\niters = -9223372036854775808\n", v), 0);
    assert_true(v[ITERS].u.i == INT64_MIN);
}

static void bind_int_range(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    assert_int_equal(bind_args(fx, &mandel, "size_x = 0\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: size_x = '0': expected an integer from 1 to 4096");
    assert_int_equal(bind_args(fx, &mandel, "size_x = 4097\n", v), -EINVAL);
    assert_err_has(fx, "size_x = '4097'");
    assert_int_equal(bind_args(fx, &mandel, "size_x = 4096\n", v), 0);
    assert_int_equal(v[SIZE_X].u.i, 4096);
    /* iters has min == max == 0: no bound. */
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\niters = -99999\n", v), 0);
    assert_int_equal(v[ITERS].u.i, -99999);
}

static void bind_bad_float(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    char lines[128], want[128];
    static const char *const bad[] = {"1e999", "nan", "inf", "-inf", "1.5x", "", "0x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(lines, sizeof lines, "size_x = 1\noffset = %s\n", bad[i]);
        assert_int_equal(bind_args(fx, &mandel, lines, v), -EINVAL);
        snprintf(want, sizeof want, "cfg.ini:3: offset = '%s': expected a finite number",
                 bad[i]);
        assert_err_has(fx, want);
    }
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\nscale = 20\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: scale = '20': expected a number from 0.1 to 10");
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\nscale = 0.05\n", v), -EINVAL);
    assert_err_has(fx, "scale = '0.05'");
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\nscale = 10\n", v), 0);
    assert_true(v[SCALE].u.f == 10.0);
}

static void bind_bools(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    char lines[64];
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true}, {"TRUE", true},   {"yes", true}, {"On", true},
                 {"1", true},    {"false", false}, {"No", false}, {"off", false},
                 {"0", false},   {"FaLsE", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(lines, sizeof lines, "size_x = 1\nsmooth = %s\n", cases[i].text);
        assert_int_equal(bind_args(fx, &mandel, lines, v), 0);
        assert_int_equal(v[SMOOTH].u.b, cases[i].value);
    }
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\nsmooth = maybe\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: smooth = 'maybe': expected true/false");
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\nsmooth = 2\n", v), -EINVAL);
    assert_err_has(fx, "smooth = '2'");
}

static void bind_unknown_arg(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[N_SCHEMA];
    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\niter = 5\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: unknown argument 'iter' for plugin mandel; "
                       "did you mean 'iters'?");
    assert_err_has(fx, "size_x iters scale");

    /* Reported before the missing argument it probably was meant to be. */
    assert_int_equal(bind_args(fx, &mandel, "sizex = 1\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: unknown argument 'sizex'");
    assert_err_has(fx, "did you mean 'size_x'?");

    assert_int_equal(bind_args(fx, &mandel, "size_x = 1\ncolour = red\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:3: unknown argument 'colour'");
    assert_err_lacks(fx, "did you mean");

    static const weft_plugin_t bare = {WEFT_PLUGIN_HEADER, .name = "bare"};
    assert_int_equal(bind_args(fx, &bare, "x = 1\n", v), -EINVAL);
    assert_err_has(fx, "cfg.ini:2: unknown argument 'x': plugin bare takes no arguments");
    assert_int_equal(bind_args(fx, &bare, "", v), 0);
}

static void bind_bad_default(void **state)
{
    fixture_t *fx = *state;
    weft_arg_value_t v[2];
    static const weft_arg_spec_t bad_schema[] = {
        {"n", WEFT_ARG_INT, "lots", "how many", 0, 0},
    };
    static const weft_plugin_t broken = {WEFT_PLUGIN_HEADER, .name = "broken",
                                         .args = bad_schema, .n_args = 1};
    assert_int_equal(bind_args(fx, &broken, "", v), -EINVAL);
    assert_err_has(fx, "plugin broken: bad default for n: 'lots': expected an integer");
    /* A value in the config never looks at the default. */
    assert_int_equal(bind_args(fx, &broken, "n = 3\n", v), 0);
    assert_int_equal(v[0].u.i, 3);
}

/* ---- parse_int64 and suggest ----------------------------------------------------- */

static void parse_int64_cases(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        int64_t value;
    } cases[] = {
        {"0", 0, 0},
        {"-0", 0, 0},
        {"+17", 0, 17},
        {"007", 0, 7},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"0x7fffffffffffffff", 0, INT64_MAX},
        {"-0x8000000000000000", 0, INT64_MIN},
        {"-0x10", 0, -16},
        {"0XfF", 0, 255},
        {"9223372036854775808", -ERANGE, 0},
        {"-9223372036854775809", -ERANGE, 0},
        {"0x8000000000000000", -ERANGE, 0},
        {"99999999999999999999999", -ERANGE, 0},
        {"", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1 ", -EINVAL, 0},
        {"0x", -EINVAL, 0},
        {"-", -EINVAL, 0},
        {"+-1", -EINVAL, 0},
        {"1.0", -EINVAL, 0},
        {"0x1g", -EINVAL, 0},
        {"12a", -EINVAL, 0},
        {"99999999999999999999x", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 12345;
        int rc = weft__parse_int64(cases[i].text, &v);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0 && v != cases[i].value)
            fail_msg("'%s': %lld", cases[i].text, (long long)v);
        if (rc != 0 && v != 12345)
            fail_msg("'%s': wrote the output on error", cases[i].text);
    }
    int64_t v;
    assert_int_equal(weft__parse_int64(NULL, &v), -EINVAL);
}

static void suggest_cases(void **state)
{
    (void)state;
    static const char *const keys[] = {"plugin", "plugin_path", "items",  "threads",
                                       "output", "format",      "record", "seed"};
    const size_t n = sizeof keys / sizeof keys[0];
    assert_string_equal(weft__suggest("thread", keys, n), "threads");
    assert_string_equal(weft__suggest("treads", keys, n), "threads");
    assert_string_equal(weft__suggest("plugins", keys, n), "plugin");
    assert_string_equal(weft__suggest("plugin_paths", keys, n), "plugin_path");
    assert_string_equal(weft__suggest("seed", keys, n), "seed");
    assert_string_equal(weft__suggest("sed", keys, n), "seed");
    assert_null(weft__suggest("colour", keys, n));
    /* A swap of two adjacent letters is one edit. */
    assert_string_equal(weft__suggest("stpe", (const char *const[]){"step"}, 1), "step");
    assert_string_equal(weft__suggest("thraeds", keys, n), "threads");
    assert_null(weft__suggest("xyz", keys, n));
    assert_null(weft__suggest("", keys, n));
    assert_null(weft__suggest("thread", keys, 0));
    assert_null(weft__suggest(NULL, keys, n));
    /* Short words allow one edit; ties go to the first candidate. */
    static const char *const ab[] = {"ab", "ac"};
    assert_string_equal(weft__suggest("aa", ab, 2), "ab");
    assert_null(weft__suggest("xy", ab, 2));
    static const char *const run_args[] = {"run", "args"};
    assert_string_equal(weft__suggest("arg", run_args, 2), "args");
    assert_null(weft__suggest("foo", run_args, 2));
}

static void free_null(void **state)
{
    (void)state;
    weft__config_t *cfg = NULL;
    weft__config_free(&cfg);
    weft__config_free(NULL);
    assert_null(cfg);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* What is not a config: a folder, an endless file, a file far too big;
 * each refused at once, with what it is. */
static void load_not_a_config(void **state)
{
    fixture_t *fx = *state;
    /* (A folder: load_directory_is_an_error.)  /dev/zero: NUL bytes without end; the first line is too long. */
    assert_int_equal(weft__config_load(&fx->cfg, "/dev/zero", fx->err, sizeof fx->err),
                     -EINVAL);
    assert_err_has(fx, "/dev/zero:1: line too long");
    /* Lines each fine, 1.5 MiB of them. */
    size_t n = 3 << 19;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t k = 0; k < n; k++)
        big[k] = k % 64 == 63 ? '\n' : k % 64 == 0 ? ';' : 'x';
    assert_int_equal(load_n(fx, big, n), -EFBIG);
    free(big);
    assert_err_has(fx, "larger than 1 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(load_good_config),
        T(finalize_defaults),
        T(finalize_output_and_format),
        T(finalize_format_errors),
        T(finalize_extension_mismatch),
        T(finalize_csv_keys),
        T(finalize_plugin_paths),
        T(finalize_threads),
        T(finalize_seed),
        T(finalize_record_and_order),
        T(finalize_unknown_key),
        T(finalize_missing_required),
        T(load_missing_file),
        T(load_relative_path),
        T(load_directory_is_an_error),
        T(load_unknown_section),
        T(load_bad_section_headers),
        T(load_key_outside_section),
        T(load_duplicate_key),
        T(load_not_key_value),
        T(load_empty_key),
        T(load_first_error_wins),
        T(load_long_lines),
        T(load_continuation_lines),
        T(load_indented_is_not_continuation),
        T(load_crlf_bom_colon),
        T(load_nul_byte),
        T(load_empty_file),
        T(load_not_a_config),
        T(set_replaces_and_adds),
        T(set_errors),
        T(entry_where_file),
        T(finalize_format_raw),
        T(config_new_command_line),
        T(bind_every_type),
        T(bind_defaults),
        T(bind_set_overrides),
        T(bind_required_missing),
        T(bind_task_section),
        T(bind_bad_int),
        T(bind_int_range),
        T(bind_bad_float),
        T(bind_bools),
        T(bind_unknown_arg),
        T(bind_bad_default),
        cmocka_unit_test(parse_int64_cases),
        cmocka_unit_test(suggest_cases),
        cmocka_unit_test(free_null),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
