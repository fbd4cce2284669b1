/* SPDX-License-Identifier: MIT */
/* `weft log`: a run's journal as a job log (log.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "config.h"
#include "journal.h"
#include "loader.h"
#include "log.h"
#include "outdir.h"
#include "output.h"
#include "resume.h"
#include "run.h"
#include "source.h"
#include "util.h"
#include "weft/weft.h"

static const char log_help[] =
    "usage: weft log JOURNAL|CONFIG [--json | --failed [-0]] [--set SECTION.KEY=VALUE]...\n"
    "Prints what the journal of a run says of each item, in index order: a\n"
    "header line, then index, input, status, attempts, start (seconds since\n"
    "the epoch), runtime (seconds) and message, tab-separated.  CONFIG: the\n"
    "journal weft run CONFIG keeps (with the same --set overrides).\n"
    "  --json              one JSON object a line instead\n"
    "  --failed            only the input texts of the items that did not end\n"
    "                      ok, one a line, as items = lines:FILE reads them\n"
    "  -0, --null          with --failed: end each input with a NUL, not a newline\n"
    "                      (without it an input holding a newline is an error)\n"
    "  --set S.K=V         override key K of section [S] of CONFIG; may repeat\n"
    "A journal compacted after a run that ended every item ok has no per-item\n"
    "log (keep_journal = true keeps it): exit status 2, but --failed prints\n"
    "nothing and exits 0.  Exit status 0, or 2 with a message.\n";

enum { ERR_LEN = 2048, WINDOW = 4096 };

typedef enum { OUT_TSV, OUT_JSON, OUT_FAILED } out_mode_t;

/* What one `weft log` reads and how it prints. */
typedef struct logjob {
    out_mode_t mode;
    bool nul;
    const char *name;         /* the JOURNAL or CONFIG as given */
    char *journal;            /* the journal's path             */
    weft__config_t *cfg;      /* CONFIG's, or NULL               */
    weft__config_t items_cfg; /* JOURNAL: its items spec alone   */
    weft__entry_t items_entry;
    char *items_value, *folder;
    weft__jscan_t *scan;
    void *map;
    size_t map_len;
    weft__buf_t line;
    uint64_t listed, changed, first_changed;
    char err[ERR_LEN];
} logjob_t;

static int fail(const char *fmt, ...) WEFT_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: log: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return WEFT_EXIT_USAGE;
}

/* Whether path starts with the journal's file magic. */
static bool is_journal(const char *path)
{
    char magic[8];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool yes = read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
               memcmp(magic, "WEFTJRN1", 8) == 0;
    close(fd);
    return yes;
}

/* CONFIG's journal, found as weft run finds it (weft__journal_path): the
 * plugin is loaded only when the journal lives in its output folder. */
static int config_journal(logjob_t *lj, const char *const *sets, size_t n_sets)
{
    int rc = weft__config_load(&lj->cfg, lj->name, lj->err, sizeof lj->err);
    for (size_t k = 0; rc == 0 && k < n_sets; k++)
        rc = weft__config_set(lj->cfg, sets[k], lj->err, sizeof lj->err);
    if (rc == 0)
        rc = weft__config_finalize(lj->cfg, lj->err, sizeof lj->err);
    if (rc)
        return fail("%s", lj->err);
    bool nomem;
    lj->journal = weft__journal_path(lj->cfg, NULL, &nomem);
    if (!lj->journal && !nomem && !lj->cfg->journal_off) {
        char **dirs = NULL;
        size_t n_dirs = 0, k = SIZE_MAX;
        weft__plugin_t *p = NULL;
        weft_arg_value_t *args = NULL;
        /* As weft run: a config from stdin has no folder to search. */
        bool has_folder = !lj->cfg->in_memory && !lj->cfg->from_stdin;
        rc = weft__plugin_dirs(has_folder ? lj->cfg->dir : NULL, lj->cfg->plugin_path, &dirs,
                               &n_dirs);
        if (rc)
            snprintf(lj->err, sizeof lj->err, "plugin search path: %s", weft_strerror(rc));
        else
            rc = weft__plugin_open(&p, lj->cfg->plugin, dirs, n_dirs, lj->err, sizeof lj->err);
        for (size_t d = 0; d < n_dirs; d++)
            free(dirs[d]);
        free(dirs);
        if (rc == 0 && !(args = calloc(p->desc.n_args + 1, sizeof *args)))
            rc = -ENOMEM;
        if (rc == 0 && (weft__config_bind(lj->cfg, &p->desc, args, lj->err, sizeof lj->err) ||
                        weft__outdir_arg(&p->desc, &k, lj->err, sizeof lj->err) < 0))
            rc = -EINVAL;
        if (rc == 0 && k != SIZE_MAX)
            lj->journal = weft__journal_path(lj->cfg, args[k].u.s, &nomem);
        free(args);
        weft__plugin_close(&p);
        if (rc == -ENOMEM)
            return fail("out of memory");
        if (rc)
            return fail("%s", lj->err);
    }
    if (nomem)
        return fail("out of memory");
    if (!lj->journal)
        return fail("%s keeps no journal (its output is standard output, none or a special "
                    "file, or journal = off): nothing to show",
                    lj->name);
    return 0;
}

/* "section.key=value" lines' value of key, unescaped (resume.c's escape_into). */
static char *header_value(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) != 0 || p[klen] != '=')
            continue;
        const char *v = p + klen + 1, *end = strchr(v, '\n');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        char *out = malloc(n + 1), *o = out;
        if (!out)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            if (v[i] == '\\' && i + 1 < n) {
                i++;
                *o++ = v[i] == 'n' ? '\n' : v[i] == 'r' ? '\r' : v[i];
            } else {
                *o++ = v[i];
            }
        }
        *o = '\0';
        return out;
    }
    return NULL;
}

/* A JOURNAL's items: its header's run.items, resolved against the folder of
 * the config that ran (config.folder). */
static const weft__config_t *journal_items(logjob_t *lj)
{
    const weft__jheader_t *h = weft__jscan_header(lj->scan);
    lj->items_value = header_value(h->config, "run.items");
    /* No folder recorded (a hand-made journal): the current one. */
    lj->folder = header_value(h->config, "config.folder");
    if (!lj->folder)
        lj->folder = getcwd(NULL, 0);
    if (!lj->items_value || !lj->folder)
        return NULL;
    lj->items_entry = (weft__entry_t){.section = "run", .key = "items",
                                      .value = lj->items_value, .origin = lj->journal};
    lj->items_cfg = (weft__config_t){.path = lj->journal, .dir = lj->folder,
                                     .items = &lj->items_entry};
    return &lj->items_cfg;
}

static int read_journal(logjob_t *lj)
{
    int fd = open(lj->journal, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == ENOENT)
            return fail("%s: no journal (the job has not run, or keeps none)", lj->journal);
        return fail("%s: cannot read the journal: %s", lj->journal, strerror(e));
    }
    /* Read-only and without the lock: a running weft appends past what
     * is mapped here, and a torn tail is only left out. */
    lj->map_len = (size_t)st.st_size;
    if (lj->map_len) {
        lj->map = mmap(NULL, lj->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (lj->map == MAP_FAILED) {
            lj->map = NULL;
            int e = errno;
            close(fd);
            return fail("%s: cannot read the journal: %s", lj->journal, strerror(e));
        }
    }
    close(fd);
    char why[256];
    int rc = weft__jscan_parse(&lj->scan, lj->map, lj->map_len, why, sizeof why);
    if (rc)
        return fail("%s: %s", lj->journal, why);
    if (weft__jscan_dropped(lj->scan))
        fprintf(stderr, "weft: log: %s: left out %zu bytes of a torn or corrupt tail (at byte "
                        "%zu: %s)\n",
                lj->journal, weft__jscan_dropped(lj->scan), weft__jscan_valid_len(lj->scan),
                weft__jscan_tail(lj->scan));
    return 0;
}

static const char *status_name(unsigned st)
{
    static const char *const names[] = {"?", "ok", "failed", "crashed", "timed_out",
                                        "quarantined"};
    return st < sizeof names / sizeof *names ? names[st] : "?";
}

/* An item's input as text: its text, or a range item's number. */
static const char *input_text(const weft_item_t *it, char num[24], size_t *len)
{
    if (it->text) {
        *len = it->text_len;
        return it->text;
    }
    *len = (size_t)snprintf(num, 24, "%" PRId64, it->number);
    return num;
}

static int put_tsv(logjob_t *lj, const weft__jentry_t *e, const weft_item_t *it)
{
    weft__buf_t *b = &lj->line;
    char tmp[96], num[24];
    size_t ilen = 0;
    const char *in = it ? input_text(it, num, &ilen) : "";
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64 "\t", e->index);
    int rc = weft__buf_append(b, tmp, (size_t)n);
    if (!rc)
        rc = weft__csv_text(b, WEFT__FORMAT_TSV, in, ilen);
    if (e->timed)
        n = snprintf(tmp, sizeof tmp, "\t%s\t%" PRIu32 "\t%" PRIu64 ".%06" PRIu64
                                      "\t%" PRIu64 ".%06" PRIu64 "\t",
                     status_name(e->status), e->attempts, e->start_us / 1000000,
                     e->start_us % 1000000, e->runtime_us / 1000000, e->runtime_us % 1000000);
    else
        n = snprintf(tmp, sizeof tmp, "\t%s\t\t\t\t", status_name(e->status));
    if (!rc)
        rc = weft__buf_append(b, tmp, (size_t)n);
    if (!rc)
        rc = weft__csv_text(b, WEFT__FORMAT_TSV, e->msg, e->msg_len);
    if (!rc)
        rc = weft__buf_append(b, "\n", 1);
    return rc;
}

/* A JSON string of n bytes (not NUL-terminated) into o. */
static bool add_text(cJSON *o, const char *key, const char *s, size_t n)
{
    char *t = strndup(s, n);
    bool ok = t && cJSON_AddStringToObject(o, key, t);
    free(t);
    return ok;
}

static int put_json(logjob_t *lj, const weft__jentry_t *e, const weft_item_t *it)
{
    cJSON *o = cJSON_CreateObject();
    char num[24];
    size_t ilen = 0;
    const char *in = it ? input_text(it, num, &ilen) : NULL;
    bool ok = o && cJSON_AddNumberToObject(o, "index", (double)e->index) &&
              (in ? add_text(o, "input", in, ilen) : cJSON_AddNullToObject(o, "input") != NULL) &&
              cJSON_AddStringToObject(o, "status", status_name(e->status));
    char start[48], runtime[48];
    /* Raw numbers: exactly the microseconds the TSV shows (a double of the
     * epoch seconds would print as 1796358400.2203889). */
    snprintf(start, sizeof start, "%" PRIu64 ".%06" PRIu64, e->start_us / 1000000,
             e->start_us % 1000000);
    snprintf(runtime, sizeof runtime, "%" PRIu64 ".%06" PRIu64, e->runtime_us / 1000000,
             e->runtime_us % 1000000);
    if (ok && e->timed)
        ok = cJSON_AddNumberToObject(o, "attempts", e->attempts) &&
             cJSON_AddRawToObject(o, "start", start) &&
             cJSON_AddRawToObject(o, "runtime", runtime);
    else if (ok)
        ok = cJSON_AddNullToObject(o, "attempts") && cJSON_AddNullToObject(o, "start") &&
             cJSON_AddNullToObject(o, "runtime");
    if (ok)
        ok = e->msg_len ? add_text(o, "message", e->msg, e->msg_len)
                        : cJSON_AddNullToObject(o, "message") != NULL;
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    int rc = text ? weft__buf_append(&lj->line, text, strlen(text)) : -ENOMEM;
    if (!rc)
        rc = weft__buf_append(&lj->line, "\n", 1);
    free(text);
    return rc;
}

static int put_failed(logjob_t *lj, const weft__jentry_t *e, const weft_item_t *it)
{
    if (e->status == WEFT__J_OK)
        return 0;
    char num[24];
    size_t ilen;
    const char *in = input_text(it, num, &ilen);
    if (!lj->nul && memchr(in, '\n', ilen)) {
        snprintf(lj->err, sizeof lj->err,
                 "item %" PRIu64 "'s input holds a newline: one a line would split it "
                 "(add -0 for NUL-separated inputs)",
                 e->index);
        return -EINVAL;
    }
    int rc = weft__buf_append(&lj->line, in, ilen);
    return rc ? rc : weft__buf_append(&lj->line, lj->nul ? "" : "\n", 1);
}

/* One entry, with its item (NULL: its text is unknown). */
static int put_entry(logjob_t *lj, const weft__jentry_t *e, const weft_item_t *it)
{
    if (it && weft__item_hash(it) != e->item_hash && lj->changed++ == 0)
        lj->first_changed = e->index;
    lj->listed++;
    lj->line.len = 0;
    int rc = lj->mode == OUT_TSV    ? put_tsv(lj, e, it)
             : lj->mode == OUT_JSON ? put_json(lj, e, it)
                                    : put_failed(lj, e, it);
    if (rc == 0 && lj->line.len && fwrite(lj->line.data, 1, lj->line.len, stdout) != lj->line.len)
        rc = -EIO;
    return rc;
}

/* Every entry in index order, each with its item from src (NULL: none). */
static int list(logjob_t *lj, weft__source_t *src)
{
    weft__jentry_t e;
    bool have = weft__jscan_next(lj->scan, 0, &e);
    weft_item_t *items = src ? calloc(WINDOW, sizeof *items) : NULL;
    if (src && !items)
        return -ENOMEM;
    int rc = 0;
    uint64_t base = 0;
    bool indexed = src && src->vt->at;
    while (have && src && rc == 0) {
        size_t got = 0;
        rc = weft__source_next(src, indexed ? NULL : items, WINDOW, &got, lj->err,
                               sizeof lj->err);
        if (rc || got == 0)
            break;
        for (; have && rc == 0 && e.index < base + got;
             have = weft__jscan_next(lj->scan, e.index + 1, &e)) {
            weft_item_t computed;
            const weft_item_t *it = &items[e.index - base];
            if (indexed) {
                src->vt->at(src, e.index, &computed);
                it = &computed;
            }
            rc = put_entry(lj, &e, it);
        }
        base += got;
    }
    free(items);
    if (rc == 0 && have && src)
        fprintf(stderr, "weft: log: the items now end at %" PRIu64 ": the later entries have "
                        "no input text\n", base);
    for (; rc == 0 && have; have = weft__jscan_next(lj->scan, e.index + 1, &e))
        rc = put_entry(lj, &e, NULL);
    return rc;
}

static int show(logjob_t *lj)
{
    const weft__config_t *items_cfg = lj->cfg ? lj->cfg : journal_items(lj);
    weft__source_t *src = NULL;
    char why[ERR_LEN] = "the journal does not record its items";
    if (items_cfg && weft__source_open(&src, items_cfg, why, sizeof why) != 0)
        src = NULL;
    if (!src && lj->mode == OUT_FAILED)
        return fail("%s: cannot list the failed inputs: %s", lj->name, why);
    if (!src)
        fprintf(stderr, "weft: log: %s: no input texts: %s\n", lj->name, why);
    if (weft__jscan_version(lj->scan) < 3 && lj->mode != OUT_FAILED)
        fprintf(stderr, "weft: log: %s: journal format %u (an older weft) records no "
                        "attempts, start or runtime\n",
                lj->journal, weft__jscan_version(lj->scan));
    if (lj->mode == OUT_TSV)
        fputs("index\tinput\tstatus\tattempts\tstart\truntime\tmessage\n", stdout);
    int rc = list(lj, src);
    uint64_t total = src ? src->total : WEFT__COUNT_UNKNOWN;
    weft__source_close(&src);
    if (rc == -EINVAL)
        return fail("%s", lj->err);
    if (rc == -ENOMEM)
        return fail("out of memory");
    if (rc == -EIO || fflush(stdout) != 0 || ferror(stdout))
        return fail("cannot write to standard output");
    if (rc)
        return fail("%s: items: %s", lj->name, lj->err);
    if (lj->changed)
        fprintf(stderr, "weft: log: %" PRIu64 " item%s changed since the run (the first: item "
                        "%" PRIu64 "): %s the current input text\n",
                lj->changed, lj->changed == 1 ? "" : "s", lj->first_changed,
                lj->changed == 1 ? "it shows" : "they show");
    if (!weft__jscan_finished(lj->scan) && total != WEFT__COUNT_UNKNOWN &&
        weft__jscan_items(lj->scan) < total)
        fprintf(stderr, "weft: log: the run did not finish: %" PRIu64 " of %" PRIu64
                        " items have an entry\n",
                weft__jscan_items(lj->scan), total);
    return 0;
}

int weft__cmd_log(int argc, char **argv)
{
    static const struct option longs[] = {
        {"json", no_argument, NULL, 'J'},   {"failed", no_argument, NULL, 'F'},
        {"null", no_argument, NULL, '0'},   {"set", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},   {NULL, 0, NULL, 0},
    };
    logjob_t lj = {.mode = OUT_TSV};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    size_t n_sets = 0;
    bool json = false, failed = false;
    int status = WEFT_EXIT_USAGE;
    if (!sets || !args) {
        fail("out of memory");
        goto out;
    }
    args[0] = "log"; /* getopt reads from argv[1] */
    for (int k = 0; k < argc; k++)
        args[k + 1] = argv[k];
    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc + 1, args, ":0h", longs, NULL)) != -1;) {
        switch (c) {
        case 'h':
            fputs(log_help, stdout);
            status = 0;
            goto out;
        case 'J':
            json = true;
            break;
        case 'F':
            failed = true;
            break;
        case '0':
            lj.nul = true;
            break;
        case 'S':
            sets[n_sets++] = optarg;
            break;
        case ':':
            fail("%s needs a value", args[optind - 1]);
            goto out;
        default:
            fail("unknown option '%s' (see weft log --help)", args[optind - 1]);
            goto out;
        }
    }
    if (optind != argc) {
        fail(optind > argc ? "which journal or config? (weft log JOURNAL|CONFIG)"
                           : "one JOURNAL or CONFIG only");
        goto out;
    }
    lj.name = args[optind];
    if (json && failed) {
        fail("--json and --failed: give one of them");
        goto out;
    }
    if (lj.nul && !failed) {
        fail("-0 goes with --failed (the inputs it prints)");
        goto out;
    }
    lj.mode = json ? OUT_JSON : failed ? OUT_FAILED : OUT_TSV;
    if (is_journal(lj.name)) {
        if (n_sets) {
            fail("--set goes with a CONFIG, and %s is a journal", lj.name);
            goto out;
        }
        if (!(lj.journal = strdup(lj.name))) {
            fail("out of memory");
            goto out;
        }
    } else if (config_journal(&lj, sets, n_sets) != 0) {
        goto out;
    }
    if (read_journal(&lj) != 0)
        goto out;
    unsigned flags = 0;
    weft__jscan_last_session(lj.scan, &flags);
    if ((flags & WEFT__JS_COMPACT) && weft__jscan_items(lj.scan) == 0) {
        if (lj.mode == OUT_FAILED) {
            status = 0; /* the run ended every item ok: none failed */
            goto out;
        }
        fail("%s: the run finished with every item ok and its journal was compacted: the "
             "per-item log is gone (set keep_journal = true in [run] to keep it)",
             lj.journal);
        goto out;
    }
    status = show(&lj);
out:
    weft__jscan_free(&lj.scan);
    if (lj.map)
        munmap(lj.map, lj.map_len);
    weft__buf_free(&lj.line);
    weft__config_free(&lj.cfg);
    free(lj.journal);
    free(lj.items_value);
    free(lj.folder);
    free(sets);
    free(args);
    return status;
}
