/* SPDX-License-Identifier: MIT */
/*
 * Job configs: an INI file (read with inih) with a [run] section, which says
 * what to run, an [args] section, which binds the plugin's fixed arguments,
 * and for a plugin that runs a task of its own (worker) a [task] section of
 * free-form arguments handed on to the task as text.  Command-line overrides (--set section.key=value) replace or
 * add entries before the file is interpreted.
 *
 * Every relative path in the file is relative to the file's folder, so a
 * config means the same thing whatever the current directory.
 *
 * Syntax (inih's): `key = value` (or `key: value`), `[section]`, comments
 * starting with ';' or '#'.  A line may hold up to 64 KiB (longer than
 * Debian's libinih buffer: the reader keeps what inih would cut), and a
 * line ending in a backslash continues on the next (weft.ini(5)).
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
    char *section;   /* "run", "args" or "task"                           */
    char *key;
    char *value;
    const char *origin; /* the config path, "--set", or the option that set it */
    int line;        /* 1-based line in origin; 0 for --set               */
} weft__entry_t;

typedef enum weft__format {
    WEFT__FORMAT_JSON = 1, /* one JSON array, in input order               */
    WEFT__FORMAT_JSONL,    /* one JSON value per line (streams)             */
    WEFT__FORMAT_NONE,     /* results are not written (plugin writes files) */
    WEFT__FORMAT_NPY,      /* a NumPy array the plugin's rows are written
                              into in place (plugins with row_spec)         */
    WEFT__FORMAT_CSV,      /* RFC 4180 CSV: a header, one row per record
                              (core/output/output.h, "CSV and TSV")         */
    WEFT__FORMAT_TSV,      /* tab-separated, backslash escapes, likewise    */
    WEFT__FORMAT_RAW,      /* each value's own bytes, GNU parallel style
                              (core/output/output.h, "raw")                 */
} weft__format_t;

/* How the files a plugin commits (host->out_commit) reach the disk. */
typedef enum weft__sync {
    WEFT__SYNC_BATCH = 0, /* a worker's files together: syncfs, renames,
                             syncfs, and only then their items' journal
                             entries (core/host/outbatch.h)               */
    WEFT__SYNC_ITEM,      /* each file: fsync, rename, fsync its folder    */
    WEFT__SYNC_NONE,      /* rename at once, never synced                  */
} weft__sync_t;

/* How the results stream is compressed: from the output's last extension
 * (.gz, .zst); never for .npy or standard output. */
typedef enum weft__compress {
    WEFT__COMPRESS_NONE = 0,
    WEFT__COMPRESS_GZIP,   /* .gz: zlib's gzip format                       */
    WEFT__COMPRESS_ZSTD,   /* .zst: one Zstandard frame, with its checksum  */
} weft__compress_t;

/* At most this many `columns =` (a header must stay a sane line). */
enum { WEFT__MAX_COLUMNS = 256 };

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
    char *dir;   /* absolute folder of path (the current one for "-")      */
    bool from_stdin; /* path "-": the config was read from standard input */
    bool in_memory;  /* weft__config_new: no file (weft run -p PLUGIN)     */

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
                              (.json, .jsonl/.ndjson, .csv, .tsv, .npy,
                              each optionally + .gz/.zst; "-" and special
                              files JSONL); an extension that names another
                              format than `format =` is an error, and so is
                              an unknown one without `format =`; NONE when
                              output is none                              */
    weft__compress_t compress; /* from output's .gz / .zst                */
    weft_dtype_t npy_dtype; /* npy_dtype = float64|float32|int64|int32|int16|
                              int8: the element type of a .npy output of a
                              plugin without row_spec (one number per
                              item); 0 unset (float64 then), and refused
                              for any other output                        */
    weft__record_t record; /* default VALUE; always FULL for CSV and TSV,
                              whose rows carry index, input, ok, error
                              (an explicit record = value is refused)      */
    char **columns;        /* columns = a,b,c (CSV/TSV only): the object
                              keys written as value columns, in order;
                              NULL: one column `value`                     */
    size_t n_columns;
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
    bool keep_journal;     /* keep_journal = true: a run that finished every
                              item keeps its whole journal (else it is
                              compacted to a record that it finished)     */
    weft__sync_t sync;     /* sync = batch (default) | item | none: how a
                              plugin's committed files are made durable
                              (docs/guarantees.md)                        */

    /* [task], listed by weft__config_bind() for a plugin that takes it
     * (WEFT_PLUGIN_TASK_ARGS): n_task keys and their values, in file
     * order, pointing into entries (a --set after bind invalidates them). */
    const char **task_keys;
    const char **task_values;
    size_t n_task;

    /* Strings weft__config_bind() hands out that are not entry values
     * (resolved PATHs, copied defaults); freed by weft__config_free(). */
    char **bound;
    size_t n_bound;
} weft__config_t;

/* Reads and syntax-checks the file.  Unknown sections, duplicate keys,
 * over-long lines and lines that are not `key = value` are errors. */
/* path "-" reads the config from standard input (messages say "stdin:N:",
 * relative paths are against the current folder). */
int weft__config_load(weft__config_t **out, const char *path, char *err, size_t errlen);

/* A config with no entries and no file, for a run the command line
 * describes (weft run -p PLUGIN ... ::: ITEM...): messages name it by
 * `label`, its relative paths are against the current folder, its output
 * is standard output unless set, written as format = raw when its format
 * is not set either, and the plugin search skips its folder (it has none:
 * never the current directory). */
int weft__config_new(weft__config_t **out, const char *label, char *err, size_t errlen);

/* Applies "section.key=value" (e.g. "args.size_x=200", "run.threads=4").
 * Call before weft__config_finalize() and weft__config_bind(): it may move
 * or free entries that cfg->items and bound STRING values point to. */
int weft__config_set(weft__config_t *cfg, const char *assignment, char *err, size_t errlen);

/* weft__config_set, the entry's origin (in messages) being `origin`, a
 * string that outlives cfg: the option that set it ("--items", ":::"). */
int weft__config_set_as(weft__config_t *cfg, const char *assignment, const char *origin,
                        char *err, size_t errlen);

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

/* Whether text would bind to argument k of plugin: its type, its bounds,
 * its choices (plugin->arg_choices).  0, or -EINVAL with the reason in why
 * ("expected one of a|b|c; did you mean 'b'?"). */
int weft__arg_check(const weft_plugin_t *plugin, size_t k, const char *text, char *why,
                    size_t whylen);
/* Whether value is one of the '|'-separated choices. */
bool weft__arg_choice_ok(const char *choices, const char *value);

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
