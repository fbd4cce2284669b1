/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "resume.h"
#include "util.h"

/* [run] keys a resume may change: they decide how items run, not what an
 * item's result is. */
static const char *const policy_keys[] = {"threads", "halt",    "retries",    "timeout",
                                          "isolate", "journal", "keep_journal"};

static bool is_policy(const weft__entry_t *e)
{
    if (strcmp(e->section, "run") != 0)
        return false;
    for (size_t i = 0; i < sizeof policy_keys / sizeof *policy_keys; i++)
        if (strcmp(e->key, policy_keys[i]) == 0)
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* v into o (room for 2 * strlen(v) + 1), '\\', '\n' and '\r' escaped: a
 * newline in a value must not read as a second entry. */
static void escape_into(char *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '\n' || *v == '\r') {
            *o++ = '\\';
            *o++ = *v == '\n' ? 'n' : *v == '\r' ? 'r' : '\\';
        } else {
            *o++ = *v;
        }
    }
    *o = '\0';
}

static char *config_text(const weft__config_t *cfg)
{
    char **lines = calloc(cfg->n_entries + 2, sizeof *lines);
    size_t n = 0, total = 1;
    char *out = NULL;
    if (!lines)
        return NULL;
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const weft__entry_t *e = &cfg->entries[i];
        if (is_policy(e))
            continue;
        /* One entry a line, the value escaped: a newline in a --set value
         * must not read as a second entry (another config, the same text). */
        size_t len = strlen(e->section) + strlen(e->key) + 2 * strlen(e->value) + 3;
        if (!(lines[n] = malloc(len)))
            goto out;
        int at = snprintf(lines[n], len, "%s.%s=", e->section, e->key);
        escape_into(lines[n] + at, e->value);
        total += len;
        n++;
    }
    /* The config's folder: relative paths (item files, PATH arguments, and
     * what plugins resolve against host->config_dir) mean files there, so
     * a copy of the config elsewhere sharing the journal is another job. */
    if (cfg->dir) {
        size_t len = strlen("config.folder=") + 2 * strlen(cfg->dir) + 1;
        if (!(lines[n] = malloc(len)))
            goto out;
        char *o = lines[n] + sprintf(lines[n], "config.folder=");
        escape_into(o, cfg->dir);
        total += len;
        n++;
    }
    qsort(lines, n, sizeof *lines, cmp_str);
    if (!(out = malloc(total)))
        goto out;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(out + at, "%s\n", lines[i]);
    out[at] = '\0';
out:
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    return out;
}

static char *format(const char *fmt, ...) WEFT_PRINTF(1, 2);
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

int weft__identity_make(weft__identity_t *id, const weft__config_t *cfg,
                        const weft__plugin_t *plugin, const weft__source_t *src)
{
    *id = (weft__identity_t){0};
    id->config = config_text(cfg);
    id->plugin = format("%s %s file=%016" PRIx64, plugin->desc.name,
                        plugin->desc.version ? plugin->desc.version : "-", plugin->file_hash);
    if (src->total == WEFT__COUNT_UNKNOWN)
        id->items = format("%s", cfg->items->value);
    else
        id->items = format("%s total=%" PRIu64, cfg->items->value, src->total);
    if (!id->config || !id->plugin || !id->items) {
        weft__identity_free(id);
        return -ENOMEM;
    }
    id->header = (weft__jheader_t){.config = id->config, .plugin = id->plugin,
                                   .items = id->items};
    return 0;
}

void weft__identity_free(weft__identity_t *id)
{
    free(id->config);
    free(id->plugin);
    free(id->items);
    *id = (weft__identity_t){0};
}

uint64_t weft__item_hash(const weft_item_t *item)
{
    if (item->text)
        return XXH3_64bits(item->text, item->text_len);
    int64_t n = item->number;
    return XXH3_64bits(&n, sizeof n);
}

/* A device, a FIFO, a socket, a name for a descriptor (/dev/stdout):
 * written to, never replaced or accompanied. */
static bool special_file(const char *path)
{
    struct stat st;
    return weft__path_fd(path) >= 0 || (stat(path, &st) == 0 && !S_ISREG(st.st_mode));
}

char *weft__journal_path(const weft__config_t *cfg, const char *outdir, bool *nomem)
{
    char *p = NULL;
    *nomem = false;
    if (cfg->journal_off)
        return NULL;
    /* journal = /dev/null, or results into one: no journal, and none
     * beside a device (no /dev/null.journal). */
    if (cfg->journal ? special_file(cfg->journal)
                     : cfg->output && strcmp(cfg->output, "-") != 0 && special_file(cfg->output))
        return NULL;
    if (cfg->journal)
        p = strdup(cfg->journal);
    else if (cfg->output && strcmp(cfg->output, "-") != 0)
        p = format("%s.journal", cfg->output);
    else if (outdir)
        p = format("%s/.weft-journal", outdir);
    else
        return NULL;
    *nomem = p == NULL;
    return p;
}

enum { CHECK_WINDOW = 4096 };

int64_t weft__resume_check_items(const weft__config_t *cfg, const weft__jscan_t *scan,
                                 char *what, size_t whatlen)
{
    weft__source_t *src = NULL;
    weft_item_t *items = calloc(CHECK_WINDOW, sizeof *items);
    int64_t differ = 0;
    uint64_t index = 0;
    int rc = items ? weft__source_open(&src, cfg, what, whatlen) : -ENOMEM;
    if (rc) {
        if (rc == -ENOMEM)
            snprintf(what, whatlen, "out of memory");
        free(items);
        return rc;
    }
    bool indexed = src->vt->at != NULL;
    for (;;) {
        size_t got = 0;
        rc = weft__source_next(src, indexed ? NULL : items, CHECK_WINDOW, &got, what, whatlen);
        if (rc || got == 0)
            break;
        for (size_t i = 0; i < got; i++, index++) {
            weft_item_t computed;
            const weft_item_t *it = &items[i];
            if (indexed) {
                src->vt->at(src, index, &computed);
                it = &computed;
            }
            weft__jentry_t e;
            if (!weft__jscan_get(scan, index, &e) || e.item_hash == weft__item_hash(it))
                continue;
            if (differ++ == 0) {
                if (it->text)
                    snprintf(what, whatlen, "item %" PRIu64 " is now '%.200s'", index, it->text);
                else
                    snprintf(what, whatlen, "item %" PRIu64 " is now %" PRId64, index,
                             it->number);
            }
        }
    }
    weft__source_close(&src);
    free(items);
    return rc ? rc : differ;
}
