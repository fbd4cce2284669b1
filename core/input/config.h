/* SPDX-License-Identifier: MIT */
/*
 * Job configs: an INI file (read with inih) with a [run] section, which says
 * what to run, and an [args] section, which binds the plugin's fixed
 * arguments.  Command-line overrides (--set section.key=value) replace or
 * add entries before the file is interpreted.
 *
 * Every relative path in the file is relative to the file's folder, so a
 * config means the same thing whatever the current directory.
 *
 * Syntax (inih's): `key = value` (or `key: value`), `[section]`, comments
 * starting with ';' or '#'.  A line holds at most 197 characters (Debian's
 * libinih buffer is 200).  There are no continuation lines: an indented
 * line is read like any other.
 *
 * Errors are written to `err` as "FILE:LINE: message" (or
 * "--set section.key: message" for overrides) and return -EINVAL, -ENOENT,
 * -EIO or -ENOMEM.  Nothing here runs anything.
 */
#ifndef WEFT_CORE_CONFIG_H
#define WEFT_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/plugin.h"

/* One `key = value` line, or one --set override. */
typedef struct weft__entry {
    char *section;   /* "run" or "args"                                   */
    char *key;
    char *value;
    const char *origin; /* the config path, or "--set"                     */
    int line;        /* 1-based line in origin; 0 for --set               */
} weft__entry_t;

typedef enum weft__format {
    WEFT__FORMAT_JSON = 1, /* one JSON array, in input order               */
    WEFT__FORMAT_JSONL,    /* one JSON value per line (streams)             */
    WEFT__FORMAT_NONE,     /* results are not written (plugin writes files) */
    WEFT__FORMAT_NPY,      /* a NumPy array the plugin's rows are written
                              into in place (plugins with row_spec)         */
} weft__format_t;

typedef enum weft__record {
    WEFT__RECORD_VALUE = 1, /* just the value; failed items are null        */
    WEFT__RECORD_FULL,      /* {"index":i,"ok":true,"value":v} or
                               {"index":i,"ok":false,"error":"msg"}         */
} weft__record_t;

/* When the failure policy stops a run: after `fail_count` failures, or
 * when failures reach `fail_percent` of the items run so far (checked once
 * at least 1/fail_percent items ran, so one early failure does not halt a
 * 10 % policy).  mode NEVER: never. */
typedef struct weft__halt {
    enum { WEFT__HALT_NEVER = 0, WEFT__HALT_SOON, WEFT__HALT_NOW } mode;
    uint64_t fail_count;   /* 0 when a percentage is used                 */
    double fail_percent;   /* in (0, 100]; 0 when a count is used         */
} weft__halt_t;

typedef struct weft__config {
    char *path;  /* as given                                               */
    char *dir;   /* absolute folder of path                                */

    weft__entry_t *entries; /* every [run] and [args] entry, file order;
                               overrides replace in place or append        */
    size_t n_entries;

    /* [run], filled by weft__config_finalize(): */
    char *plugin;          /* required: a name, or a path if it has a '/'
                              (relative paths resolved against dir)        */
    char *plugin_path;     /* optional extra plugin folders, ':'-separated,
                              each resolved against dir; NULL if unset     */
    const weft__entry_t *items; /* required; interpreted by the item source */
    unsigned threads;      /* 0 = automatic                                */
    char *output;          /* absolute path, "-" for stdout, NULL for none */
    weft__format_t format; /* `format =`, else from output's extension
                              (.json -> JSON, .npy -> NPY, otherwise
                              JSONL); NONE when output is none             */
    weft__record_t record; /* default VALUE                                */
    bool order_any;        /* order = any: records in completion order    */
    bool flatten;          /* flatten = true: list values spliced in      */
    uint64_t seed;         /* default 0                                    */

    /* Failure policy and isolation (docs/guarantees.md). */
    weft__halt_t halt;     /* halt = never | soon,fail=N|P% | now,fail=N|P% */
    unsigned retries;      /* retries = N: a failed item runs up to N more times */
    double timeout;        /* timeout = SECONDS per item; 0 = none         */
    bool isolate_process;  /* isolate = process: forked worker processes  */
    char *journal;         /* journal = PATH (absolute); NULL = auto       */
    bool journal_off;      /* journal = off                                */

    /* Strings weft__config_bind() hands out that are not entry values
     * (resolved PATHs, copied defaults); freed by weft__config_free(). */
    char **bound;
    size_t n_bound;
} weft__config_t;

/* Reads and syntax-checks the file.  Unknown sections, duplicate keys,
 * over-long lines and lines that are not `key = value` are errors. */
int weft__config_load(weft__config_t **out, const char *path, char *err, size_t errlen);

/* Applies "section.key=value" (e.g. "args.size_x=200", "run.threads=4").
 * Call before weft__config_finalize() and weft__config_bind(): it may move
 * or free entries that cfg->items and bound STRING values point to. */
int weft__config_set(weft__config_t *cfg, const char *assignment, char *err, size_t errlen);

/* Interprets and validates [run]: unknown keys (with a "did you mean"
 * suggestion), bad values, missing required keys. */
int weft__config_finalize(weft__config_t *cfg, char *err, size_t errlen);

/* Validates [args] against the plugin's schema and converts it: out[k] for
 * schema entry k (n_args entries).  Unknown argument, wrong type, value out
 * of range, missing required argument: an error naming the key, where it
 * was set, and what was expected.  STRING/PATH values in out point into
 * cfg and live as long as it. */
int weft__config_bind(weft__config_t *cfg, const weft_plugin_t *plugin,
                      weft_arg_value_t *out, char *err, size_t errlen);

/* The entry section.key (the last one set), or NULL. */
const weft__entry_t *weft__config_entry(const weft__config_t *cfg, const char *section,
                                        const char *key);

/* "FILE:LINE" or "--set section.key" for an entry, into buf. */
const char *weft__entry_where(const weft__entry_t *e, char *buf, size_t size);

void weft__config_free(weft__config_t **cfg);

/* Parses a whole decimal (or 0x hex) int64 with no trailing text and no
 * overflow; shared with the item sources and the CLI.  0 or -EINVAL/-ERANGE. */
int weft__parse_int64(const char *text, int64_t *out);

/* true/false, yes/no, on/off, 1/0 (any case); 0 or -EINVAL. */
int weft__parse_bool(const char *text, bool *out);

/* weft__suggest ("did you mean") is in util.h. */

#endif
