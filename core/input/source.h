/* SPDX-License-Identifier: MIT */
/*
 * Item sources: where a run's items come from (`items =` in [run]).
 *
 * A source hands out items in input order, a window at a time, so a run
 * over 10^7 items never holds them all.  Each kind is one const vtable in
 * the registry of source.c; adding a kind is adding one.  Only the main
 * thread calls a source; items it fills (and the text they point to) stay
 * valid until its next call.
 *
 * The kind is picked by the value's prefix; blanks after the colon are
 * skipped, and a relative FILE, DIR or PATTERN is relative to the config
 * file's folder.  For every kind but the range, item.number == item.index
 * and item.text is NUL-terminated (text_len bytes before the NUL).
 *
 *   items = 2000        the numbers 0, 1, ..., 1999
 *   items = 10..20      the numbers 10, 11, ..., 19 (end excluded); a value
 *                       is a range when it looks numeric (starts with a
 *                       digit, a sign or "..")
 *
 *   items = lines:FILE  one item per line of FILE, text without its "\n" or
 *                       "\r\n" (a lone '\r' is data).  Empty lines are items;
 *                       a final line without a newline is one.  Streamed: a
 *                       first pass counts the lines (total), the second
 *                       reads them window by window (a window stops early
 *                       past 64 MiB of text; lines may have any length).
 *                       If the file changes between the passes, the second
 *                       pass wins: total is advisory while running (never
 *                       below the items handed out) and exact once next()
 *                       has reported the end.  A FIFO or device is read
 *                       once, total unknown until its end.
 *   items = stdin       the lines of standard input, as lines:FILE; also
 *   items = lines:-     spelled so.  total is WEFT__COUNT_UNKNOWN until the
 *                       end of input.  Whether stdin is empty cannot be known
 *                       at open: the first next() reports it.
 *   items = files:DIR   the regular files of DIR (symbolic links to one
 *                       count; not recursive; names starting with '.'
 *                       skipped), sorted by name with strcmp; text is the
 *                       absolute path DIR/NAME.
 *   items = files:PATTERN  when the text has one of * ? [ : the regular files
 *                       glob(3) matches (GLOB_ERR; a leading '.' must be
 *                       matched explicitly), sorted with strcmp; text is the
 *                       absolute path.  A component that is exactly `**`
 *                       matches zero or more folder levels (DIR, `**`,
 *                       "*.txt": every .txt at any depth under DIR, DIR's
 *                       own included; a last `**` is `**` then `*`): a walk
 *                       of real folders that never enters a symbolic link
 *                       to one (no loops; a linked folder's files come
 *                       under their real path) nor a name starting with
 *                       '.', each file once ("a//./b" read as "a/b"; a
 *                       last '/' names folders, so nothing; a ".." after
 *                       a `**` is an error).  Links the
 *                       pattern names itself (before the `**`, or by a `*`
 *                       of its own) are followed, as glob(3) follows them.
 *   items = json:FILE   the elements of FILE's top-level JSON array (read
 *                       whole, parsed with cJSON).  A string element's text
 *                       is its decoded value (UTF-8; a "\u0000" ends it);
 *                       any other element's text is its JSON as written,
 *                       minified (whitespace outside strings dropped,
 *                       numbers keep every digit).
 *
 *   items = ["a b", "c", 3]  the elements of the JSON array written in the
 *                       value itself, as json:FILE has them (the one-liner's
 *                       `::: a b c` becomes such a list); errors say
 *                       "the list:LINE:COL".
 *
 * Errors read "FILE:LINE: items = 'VALUE': what is wrong" (FILE:LINE is
 * where `items` was set), naming the path and strerror when a file is at
 * fault; invalid JSON adds "PATH:LINE:COL: invalid JSON near '...'" (COL in
 * bytes).  A source with no items (an empty file, empty stdin, an empty
 * folder or array, a pattern that matches nothing, an empty range) is a run
 * of nothing, as xargs -r and GNU parallel have it: total is 0 and `empty`
 * says why ("/data/list.txt has no lines"), for the runner to mention.  An
 * unknown kind lists the kinds, with a "did you mean" on the prefix.
 */
#ifndef WEFT_CORE_SOURCE_H
#define WEFT_CORE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "weft/plugin.h"

#define WEFT__COUNT_UNKNOWN UINT64_MAX

typedef struct weft__source weft__source_t;

typedef struct weft__source_vtbl {
    const char *name;  /* the prefix without ':' ("lines"); "range"        */
    const char *usage; /* the syntax, as error messages list it            */
    /* True when this kind handles the `items` text. */
    int (*accepts)(const char *spec);
    /* Parses and opens; errors as "FILE:LINE: items = '...': why". */
    int (*open)(weft__source_t **out, const weft__entry_t *items,
                const weft__config_t *cfg, char *err, size_t errlen);
    /* Fills up to `max` next items into items[] (index set by the source);
     * fewer than max does not mean the end, *got = 0 does.  0 or negative
     * errno with a message. */
    int (*next)(weft__source_t *src, weft_item_t *items, size_t max, size_t *got,
                char *err, size_t errlen);
    void (*close)(weft__source_t *src);
    /* Optional, for sources whose items follow from their index alone
     * (ranges): fills item `index` without touching the source's state,
     * concurrently from the workers.  When set, the runner calls next()
     * with items == NULL, only to count the window off. */
    void (*at)(const weft__source_t *src, uint64_t index, weft_item_t *item);
} weft__source_vtbl_t;

/* Every source starts with this. */
struct weft__source {
    const weft__source_vtbl_t *vt;
    uint64_t total; /* number of items, or WEFT__COUNT_UNKNOWN           */
    /* A range (A..B, or N): item i's number is range_begin + i, so the
     * engines make items without a call (weft__feed_item). */
    bool is_range;
    int64_t range_begin;
    char empty[256]; /* why it has no items ("" while it may have some) */
};

/* Picks the kind that accepts cfg->items and opens it. */
int weft__source_open(weft__source_t **out, const weft__config_t *cfg, char *err,
                      size_t errlen);
void weft__source_close(weft__source_t **src);

static inline int weft__source_next(weft__source_t *src, weft_item_t *items, size_t max,
                                    size_t *got, char *err, size_t errlen)
{
    return src->vt->next(src, items, max, got, err, errlen);
}

#endif
