/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer: what the encoder, the item sources, the journal
 * and the reorder buffer build their bytes in.  A room of its own (it needs
 * nothing), so that every other room may use it without a circle.
 */
#ifndef WEFT_CORE_BUF_H
#define WEFT_CORE_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct weft__buf {
    char *data;
    size_t len, cap;
} weft__buf_t;

/* The slow half of weft__buf_reserve: grows the buffer. */
int weft__buf_grow(weft__buf_t *b, size_t extra);

/* Makes room for `extra` more bytes; 0 or -ENOMEM (the buffer is intact).
 * Inline: the per-item encoder calls it for every record. */
static inline int weft__buf_reserve(weft__buf_t *b, size_t extra)
{
    return b->cap - b->len >= extra ? 0 : weft__buf_grow(b, extra);
}

static inline int weft__buf_append(weft__buf_t *b, const void *data, size_t len)
{
    int rc = weft__buf_reserve(b, len);
    if (rc || !len)
        return rc;
    char *o = b->data + b->len;
    if (len <= 8) { /* separators, literals: cheaper than a call */
        for (size_t k = 0; k < len; k++)
            o[k] = ((const char *)data)[k];
    } else {
        memcpy(o, data, len);
    }
    b->len += len;
    return 0;
}
void weft__buf_free(weft__buf_t *b);

#endif
