/* SPDX-License-Identifier: MIT */
/*
 * Item sources: where a run's items come from (`items =` in [run]).
 *
 * A source hands out items in input order, a window at a time, so a run
 * over 10^7 items never holds them all.  Each kind is one const vtable in
 * the registry of source.c; adding a kind is adding one.  Only the main
 * thread calls a source; items it fills stay valid until its next call.
 *
 *   items = 2000        the numbers 0, 1, ..., 1999
 *   items = 10..20      the numbers 10, 11, ..., 19 (end excluded)
 */
#ifndef WEFT_CORE_SOURCE_H
#define WEFT_CORE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "weft/plugin.h"

#define WEFT__COUNT_UNKNOWN UINT64_MAX

typedef struct weft__source weft__source_t;

typedef struct weft__source_vtbl {
    const char *name;
    /* True when this kind handles the `items` text. */
    int (*accepts)(const char *spec);
    /* Parses and opens; errors as "FILE:LINE: items = '...': why". */
    int (*open)(weft__source_t **out, const weft__entry_t *items,
                const weft__config_t *cfg, char *err, size_t errlen);
    /* Fills up to `max` next items into items[] (index set by the source),
     * *got = 0 at the end.  0 or negative errno with a message. */
    int (*next)(weft__source_t *src, weft_item_t *items, size_t max, size_t *got,
                char *err, size_t errlen);
    void (*close)(weft__source_t *src);
} weft__source_vtbl_t;

/* Every source starts with this. */
struct weft__source {
    const weft__source_vtbl_t *vt;
    uint64_t total; /* number of items, or WEFT__COUNT_UNKNOWN           */
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
