/* SPDX-License-Identifier: MIT */
/*
 * What makes a run the same run: the identity a journal records at its
 * start, and the checks `weft run --resume` makes against it.
 *
 * A run is (config, plugin, items):
 *   config  every [run] and [args] entry that can change a result, as
 *           sorted "section.key=value" lines.  The policy keys (threads,
 *           halt, retries, timeout, isolate, journal) are left out: a
 *           resume may change them (e.g. a longer timeout).
 *   plugin  "NAME VERSION file=XXH3" of the plugin file's bytes.
 *   items   "SPEC total=N", and per item a 64-bit hash of its text (a
 *           range item: of its number), stored with each journal entry.
 * A resume refuses when any differs (saying what), unless forced; forced,
 * a done item whose hash differs is run again.
 */
#ifndef WEFT_CORE_RESUME_H
#define WEFT_CORE_RESUME_H

#include <stdint.h>

#include "config.h"
#include "journal.h"
#include "loader.h"
#include "source.h"

typedef struct weft__identity {
    char *config, *plugin, *items;
    weft__jheader_t header; /* points at the three strings */
} weft__identity_t;

int weft__identity_make(weft__identity_t *id, const weft__config_t *cfg,
                        const weft__plugin_t *plugin, const weft__source_t *src);
void weft__identity_free(weft__identity_t *id);

/* The identity hash of an item (stored in each journal entry). */
uint64_t weft__item_hash(const weft_item_t *item);

/* The journal's default place: OUTPUT.journal beside a file output, else
 * OUTDIR/.weft-journal for a plugin with an output folder, else NULL (no
 * journal: results go to stdout or nowhere).  Honours journal = off/PATH.
 * None when the journal or the results would be a special file (a device,
 * a FIFO): nothing is kept beside, or renamed over, one.
 * Returns a malloc'ed path, or NULL with *nomem set on allocation failure. */
char *weft__journal_path(const weft__config_t *cfg, const char *outdir, bool *nomem);

/* Reads every item of a fresh instance of cfg's source and compares the
 * hash of each item the journal has an entry for.  Returns the number of
 * items that differ (and whether the count differs), describing the first
 * in `what`; a negative errno when the items cannot be read (message in
 * what). */
int64_t weft__resume_check_items(const weft__config_t *cfg, const weft__jscan_t *scan,
                                 char *what, size_t whatlen);

#endif
