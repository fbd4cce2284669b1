/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the config loader (core/input/config.h).
 *
 * Input: INI text, optionally followed by a line ";--set" and then one
 * `section.key=value` override per line.  The text is written to a memfd
 * and loaded as "/proc/self/fd/N" (no file on disk), the overrides are
 * applied with weft__config_set(), then weft__config_finalize() runs twice
 * (it must be repeatable) and weft__config_bind() binds [args] against a
 * fixed schema of every argument type.
 *
 * Checked beyond "no crash, no leak": error codes and messages, what the
 * loader promises about entries (known sections, no duplicate keys, trimmed
 * text), that --set replaces or appends exactly, finalize's invariants
 * (output NULL <=> format NONE, absolute paths), bind's types and ranges,
 * and weft__parse_int64() against an independent reference.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_common.h"

#define SET_MARKER "\n;--set\n"
#define MAX_SETS 32

static const weft_arg_spec_t schema[] = {
    {.name = "n", .type = WEFT_ARG_INT, .default_value = "10", .min = 0, .max = 1000},
    {.name = "big", .type = WEFT_ARG_INT, .help = "required"},
    {.name = "ratio", .type = WEFT_ARG_FLOAT, .default_value = "0.5", .min = 0, .max = 1},
    {.name = "x", .type = WEFT_ARG_FLOAT, .default_value = "1"},
    {.name = "flag", .type = WEFT_ARG_BOOL, .default_value = "false"},
    {.name = "name", .type = WEFT_ARG_STRING, .default_value = "abc"},
    {.name = "file", .type = WEFT_ARG_PATH, .default_value = ""},
    {.name = "data", .type = WEFT_ARG_PATH, .default_value = "data/x.bin"},
};
#define N_SCHEMA (sizeof schema / sizeof schema[0])

static const weft_plugin_t fuzz_plugin = {
    .name = "fuzzplug",
    .version = "1.0",
    .args = schema,
    .n_args = N_SCHEMA,
};
/* The same, taking a [task] section (as the worker plugin does). */
static const weft_plugin_t fuzz_task_plugin = {
    .name = "fuzztask",
    .version = "1.0",
    .args = schema,
    .n_args = N_SCHEMA,
    .flags = WEFT_PLUGIN_TASK_ARGS,
};

static bool is_trimmed(const char *s)
{
    size_t n = strlen(s);
    return n == 0 || (!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]));
}

static void check_error(int rc, const char *err, const char *what)
{
    FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM || rc == -EIO || rc == -ENOENT,
               "%s returned %d", what, rc);
    FUZZ_CHECK(err[0] != '\0', "%s failed (%d) without a message", what, rc);
}

/* weft__parse_int64 agrees with the reference grammar on every value. */
static void check_int_parse(const char *text)
{
    int64_t got = 0, want = 0;
    int rc = weft__parse_int64(text, &got);
    int ref = fuzz_ref_parse_int64(text, &want);
    FUZZ_CHECK(rc == ref, "weft__parse_int64('%s') = %d, reference %d", text, rc, ref);
    FUZZ_CHECK(rc != 0 || got == want, "weft__parse_int64('%s') = %lld, reference %lld",
               text, (long long)got, (long long)want);
}

static void check_entries(const weft__config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const weft__entry_t *e = &cfg->entries[i];
        FUZZ_CHECK(strcmp(e->section, "run") == 0 || strcmp(e->section, "args") == 0 ||
                       strcmp(e->section, "task") == 0,
                   "entry %zu in section '%s'", i, e->section);
        FUZZ_CHECK(e->key[0] != '\0', "entry %zu has an empty key", i);
        FUZZ_CHECK(is_trimmed(e->key) && is_trimmed(e->value),
                   "entry %zu not trimmed: '%s' = '%s'", i, e->key, e->value);
        FUZZ_CHECK(e->line >= 0, "entry %zu: line %d", i, e->line);
        FUZZ_CHECK((e->line == 0) == (strcmp(e->origin, "--set") == 0),
                   "entry %zu: origin %s with line %d", i, e->origin, e->line);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(cfg->entries[j].section, e->section) != 0 ||
                           strcmp(cfg->entries[j].key, e->key) != 0,
                       "duplicate entry %s.%s", e->section, e->key);
        check_int_parse(e->value);
    }
}

static const weft__entry_t *find(const weft__config_t *cfg, const char *section,
                                 const char *key)
{
    for (size_t i = 0; i < cfg->n_entries; i++)
        if (strcmp(cfg->entries[i].section, section) == 0 &&
            strcmp(cfg->entries[i].key, key) == 0)
            return &cfg->entries[i];
    return NULL;
}

static char *trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return fuzz_strndup(s, n);
}

/* Applies one override and checks that exactly it changed. */
static void apply_set(weft__config_t *cfg, const char *line)
{
    char err[512] = "";
    size_t before = cfg->n_entries;
    int rc = weft__config_set(cfg, line, err, sizeof err);
    const char *eq = strchr(line, '='), *dot = strchr(line, '.');
    if (rc) {
        check_error(rc, err, "weft__config_set");
        FUZZ_CHECK(cfg->n_entries == before, "a failed --set added an entry");
        return;
    }
    FUZZ_CHECK(eq && dot && dot < eq, "--set '%s' accepted without section.key=", line);
    char *section = trimmed(line, (size_t)(dot - line));
    char *key = trimmed(dot + 1, (size_t)(eq - dot - 1));
    char *value = trimmed(eq + 1, strlen(eq + 1));
    const weft__entry_t *e = find(cfg, section, key);
    FUZZ_CHECK(e != NULL, "--set %s.%s accepted but not found", section, key);
    FUZZ_CHECK(strcmp(e->value, value) == 0, "--set %s.%s: value '%s', expected '%s'",
               section, key, e->value, value);
    FUZZ_CHECK(e->line == 0, "--set entry has line %d", e->line);
    FUZZ_CHECK(cfg->n_entries == before || cfg->n_entries == before + 1,
               "--set changed the entry count from %zu to %zu", before, cfg->n_entries);
    free(section);
    free(key);
    free(value);
}

static void check_finalized(const weft__config_t *cfg)
{
    FUZZ_CHECK(cfg->plugin && cfg->plugin[0], "finalized without a plugin");
    FUZZ_CHECK(cfg->items && strcmp(cfg->items->key, "items") == 0,
               "finalized without items");
    FUZZ_CHECK(!strchr(cfg->plugin, '/') || cfg->plugin[0] == '/',
               "plugin path '%s' is not absolute", cfg->plugin);
    FUZZ_CHECK((cfg->output == NULL) == (cfg->format == WEFT__FORMAT_NONE),
               "output %s with format %d", cfg->output ? cfg->output : "(none)",
               (int)cfg->format);
    FUZZ_CHECK(!cfg->output || strcmp(cfg->output, "-") == 0 || cfg->output[0] == '/',
               "output '%s' is neither '-' nor absolute", cfg->output);
    FUZZ_CHECK(cfg->format >= WEFT__FORMAT_JSON && cfg->format <= WEFT__FORMAT_RAW,
               "format %d", (int)cfg->format);
    bool csv = cfg->format == WEFT__FORMAT_CSV || cfg->format == WEFT__FORMAT_TSV;
    FUZZ_CHECK(!cfg->columns || csv, "columns with format %d", (int)cfg->format);
    FUZZ_CHECK(!csv || cfg->record == WEFT__RECORD_FULL, "a CSV output with record = value");
    FUZZ_CHECK(cfg->format != WEFT__FORMAT_RAW ||
                   (cfg->record == WEFT__RECORD_VALUE && !cfg->flatten),
               "a raw output with record = full or flatten");
    FUZZ_CHECK(cfg->n_columns <= WEFT__MAX_COLUMNS && (cfg->n_columns == 0) == !cfg->columns,
               "%zu columns", cfg->n_columns);
    for (size_t k = 0; k < cfg->n_columns; k++)
        FUZZ_CHECK(cfg->columns[k][0], "column %zu is empty", k);
    FUZZ_CHECK(cfg->compress == WEFT__COMPRESS_NONE ||
                   (cfg->format != WEFT__FORMAT_NPY && strcmp(cfg->output, "-") != 0),
               "compress %d with format %d", (int)cfg->compress, (int)cfg->format);
    FUZZ_CHECK(cfg->record == WEFT__RECORD_VALUE || cfg->record == WEFT__RECORD_FULL,
               "record %d", (int)cfg->record);
    FUZZ_CHECK(cfg->threads <= 1024, "threads %u", cfg->threads);
    FUZZ_CHECK(!cfg->plugin_path || cfg->plugin_path[0] == '/',
               "plugin_path '%s' not absolute", cfg->plugin_path);
    FUZZ_CHECK(cfg->retries <= 1000, "retries %u", cfg->retries);
    FUZZ_CHECK(cfg->timeout >= 0 && cfg->timeout <= 1e9, "timeout %g", cfg->timeout);
    FUZZ_CHECK(cfg->halt.mode == WEFT__HALT_NEVER ||
                   (cfg->halt.fail_count >= 1) != (cfg->halt.fail_percent > 0),
               "halt mode %d with count %llu and percent %g", (int)cfg->halt.mode,
               (unsigned long long)cfg->halt.fail_count, cfg->halt.fail_percent);
    FUZZ_CHECK(cfg->halt.fail_percent >= 0 && cfg->halt.fail_percent <= 100,
               "halt percent %g", cfg->halt.fail_percent);
    FUZZ_CHECK(!cfg->journal || cfg->journal[0] == '/', "journal '%s' not absolute",
               cfg->journal);
}

static void check_bound(const weft_arg_value_t *out)
{
    for (size_t k = 0; k < N_SCHEMA; k++) {
        const weft_arg_spec_t *s = &schema[k];
        FUZZ_CHECK(out[k].type == s->type, "arg %s: type %d", s->name, (int)out[k].type);
        switch (s->type) {
        case WEFT_ARG_INT:
            FUZZ_CHECK(!(s->min < s->max) ||
                           ((double)out[k].u.i >= s->min && (double)out[k].u.i <= s->max),
                       "arg %s = %lld out of range", s->name, (long long)out[k].u.i);
            break;
        case WEFT_ARG_FLOAT:
            FUZZ_CHECK(isfinite(out[k].u.f), "arg %s = %g", s->name, out[k].u.f);
            FUZZ_CHECK(!(s->min < s->max) ||
                           (out[k].u.f >= s->min && out[k].u.f <= s->max),
                       "arg %s = %g out of range", s->name, out[k].u.f);
            break;
        case WEFT_ARG_STRING:
            FUZZ_CHECK(out[k].u.s != NULL, "arg %s is NULL", s->name);
            (void)strlen(out[k].u.s); /* ASan: it must still be readable */
            break;
        case WEFT_ARG_PATH:
            FUZZ_CHECK(out[k].u.s && (out[k].u.s[0] == '\0' || out[k].u.s[0] == '/'),
                       "arg %s = '%s' is not absolute", s->name,
                       out[k].u.s ? out[k].u.s : "(null)");
            break;
        default:
            break;
        }
    }
}

/* The memfd is made once and reused: it is not state that grows. */
static int config_fd(void)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("weft-fuzz.ini", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *marker = fuzz_memmem(data, size, SET_MARKER);
    size_t ini_len = marker ? (size_t)(marker - data) + 1 : size;

    int fd = config_fd();
    FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate: %s", strerror(errno));
    FUZZ_CHECK(pwrite(fd, data, ini_len, 0) == (ssize_t)ini_len, "pwrite: %s",
               strerror(errno));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    static weft__config_t sentinel; /* *out must become NULL on failure */
    char err[1024] = "x";
    weft__config_t *cfg = &sentinel;
    int rc = weft__config_load(&cfg, path, err, sizeof err);
    if (rc) {
        check_error(rc, err, "weft__config_load");
        FUZZ_CHECK(cfg == NULL, "failed load left *out set");
        FUZZ_CHECK(rc != -EINVAL || strncmp(err, path, strlen(path)) == 0,
                   "load error does not start with the path: %s", err);
        return 0;
    }
    FUZZ_CHECK(cfg && strcmp(cfg->path, path) == 0, "config path");
    FUZZ_CHECK(cfg->dir && cfg->dir[0] == '/', "config dir '%s'", cfg->dir);
    check_entries(cfg);

    if (marker) {
        const char *p = (const char *)marker + strlen(SET_MARKER);
        const char *end = (const char *)data + size;
        for (int n = 0; p < end && n < MAX_SETS; n++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            char *line = fuzz_strndup(p, len); /* cut at an embedded NUL */
            apply_set(cfg, line);
            free(line);
            p += len + 1;
        }
        check_entries(cfg);
    }

    rc = weft__config_finalize(cfg, err, sizeof err);
    if (rc) {
        check_error(rc, err, "weft__config_finalize");
    } else {
        check_finalized(cfg);
        /* Repeatable: the runner finalizes again after more --set. */
        char *plugin = strdup(cfg->plugin);
        weft__format_t format = cfg->format;
        const weft__entry_t *items = cfg->items;
        rc = weft__config_finalize(cfg, err, sizeof err);
        FUZZ_CHECK(rc == 0, "second finalize failed: %s", err);
        FUZZ_CHECK(strcmp(plugin, cfg->plugin) == 0 && format == cfg->format &&
                       items == cfg->items,
                   "second finalize differs");
        free(plugin);
        check_finalized(cfg);
    }

    weft_arg_value_t out[N_SCHEMA];
    memset(out, 0, sizeof out);
    err[0] = '\0';
    size_t n_task = 0;
    for (size_t i = 0; i < cfg->n_entries; i++)
        n_task += strcmp(cfg->entries[i].section, "task") == 0;
    rc = weft__config_bind(cfg, &fuzz_plugin, out, err, sizeof err);
    if (rc)
        check_error(rc, err, "weft__config_bind");
    else
        check_bound(out);
    /* A plugin without the flag refuses [task]; one with it lists every
     * entry, in file order, each key a name an argument can have. */
    FUZZ_CHECK(n_task == 0 || rc == -EINVAL, "[task] accepted by a plugin without the flag");
    memset(out, 0, sizeof out);
    err[0] = '\0';
    rc = weft__config_bind(cfg, &fuzz_task_plugin, out, err, sizeof err);
    if (rc) {
        check_error(rc, err, "weft__config_bind (task)");
    } else {
        check_bound(out);
        FUZZ_CHECK(cfg->n_task == n_task, "%zu [task] entries listed, %zu in the config",
                   cfg->n_task, n_task);
        for (size_t i = 0, k = 0; i < cfg->n_entries; i++) {
            const weft__entry_t *e = &cfg->entries[i];
            if (strcmp(e->section, "task") != 0)
                continue;
            FUZZ_CHECK(cfg->task_keys[k] == e->key && cfg->task_values[k] == e->value,
                       "[task] entry %zu listed out of order", k);
            const char *c = e->key;
            FUZZ_CHECK(isalpha((unsigned char)*c) || *c == '_', "[task] key '%s' accepted", c);
            for (; *c; c++)
                FUZZ_CHECK(isalnum((unsigned char)*c) || *c == '_', "[task] key '%s' accepted",
                           e->key);
            k++;
        }
    }

    weft__config_free(&cfg);
    FUZZ_CHECK(cfg == NULL, "weft__config_free did not clear the pointer");
    return 0;
}
