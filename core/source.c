/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

/* ---- range: `items = N` or `items = A..B` ----------------------------- */

typedef struct range_source {
    weft__source_t base;
    int64_t begin;
    uint64_t next; /* index of the next item to hand out */
} range_source_t;

static int range_accepts(const char *spec)
{
    /* Digits, signs, hex and "..": anything else is some other kind. */
    return spec[0] != '\0' && strspn(spec, "0123456789+-xXabcdefABCDEF.") == strlen(spec);
}

/* Splits "A..B" (or "N") into numbers; 0 or a message in why. */
static int range_parse(const char *spec, int64_t *begin, int64_t *end, const char **why)
{
    const char *dots = strstr(spec, "..");
    if (!dots) {
        int64_t n;
        if (weft__parse_int64(spec, &n) != 0 || n < 0) {
            *why = "expected a count (items = 2000) or a range (items = 10..20)";
            return -EINVAL;
        }
        *begin = 0;
        *end = n;
        return 0;
    }
    char first[64];
    size_t len = (size_t)(dots - spec);
    if (len == 0 || len >= sizeof first || weft__parse_int64(dots + 2, end) != 0) {
        *why = "expected a range of two integers, A..B (B excluded)";
        return -EINVAL;
    }
    memcpy(first, spec, len);
    first[len] = '\0';
    if (weft__parse_int64(first, begin) != 0) {
        *why = "expected a range of two integers, A..B (B excluded)";
        return -EINVAL;
    }
    if (*end < *begin) {
        *why = "the range ends before it begins";
        return -EINVAL;
    }
    return 0;
}

static int range_open(weft__source_t **out, const weft__entry_t *items,
                      const weft__config_t *cfg, char *err, size_t errlen)
{
    (void)cfg;
    int64_t begin = 0, end = 0;
    const char *why = NULL;
    char where[512];
    if (range_parse(items->value, &begin, &end, &why) != 0) {
        snprintf(err, errlen, "%s: items = '%s': %s",
                 weft__entry_where(items, where, sizeof where), items->value, why);
        return -EINVAL;
    }
    if (begin == end) {
        snprintf(err, errlen, "%s: items = '%s': the range is empty (no items to run)",
                 weft__entry_where(items, where, sizeof where), items->value);
        return -EINVAL;
    }
    range_source_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->begin = begin;
    /* end - begin cannot overflow in uint64_t arithmetic. */
    r->base.total = (uint64_t)end - (uint64_t)begin;
    *out = &r->base;
    return 0;
}

static int range_next(weft__source_t *src, weft_item_t *items, size_t max, size_t *got,
                      char *err, size_t errlen)
{
    (void)err, (void)errlen;
    range_source_t *r = (range_source_t *)src;
    uint64_t left = r->base.total - r->next;
    size_t n = left < max ? (size_t)left : max;
    for (size_t k = 0; k < n; k++) {
        uint64_t index = r->next + k;
        items[k] = (weft_item_t){
            .index = index,
            .number = (int64_t)((uint64_t)r->begin + index),
        };
    }
    r->next += n;
    *got = n;
    return 0;
}

static void range_close(weft__source_t *src)
{
    free(src);
}

static const weft__source_vtbl_t range_vtbl = {
    .name = "range",
    .accepts = range_accepts,
    .open = range_open,
    .next = range_next,
    .close = range_close,
};

/* ---- registry ----------------------------------------------------------- */

static const weft__source_vtbl_t *const sources[] = {
    &range_vtbl,
};

int weft__source_open(weft__source_t **out, const weft__config_t *cfg, char *err,
                      size_t errlen)
{
    const weft__entry_t *items = cfg->items;
    for (size_t k = 0; k < sizeof sources / sizeof sources[0]; k++) {
        if (sources[k]->accepts(items->value)) {
            int rc = sources[k]->open(out, items, cfg, err, errlen);
            if (rc == 0)
                (*out)->vt = sources[k];
            return rc;
        }
    }
    char where[512];
    snprintf(err, errlen,
             "%s: items = '%s': not an item source (expected a count like 2000 or "
             "a range like 10..20)",
             weft__entry_where(items, where, sizeof where), items->value);
    return -EINVAL;
}

void weft__source_close(weft__source_t **src)
{
    if (*src) {
        (*src)->vt->close(*src);
        *src = NULL;
    }
}
