/* SPDX-License-Identifier: MIT */
/* The growable byte buffer (see buf.h). */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int weft__buf_grow(weft__buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        return -ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

void weft__buf_free(weft__buf_t *b)
{
    free(b->data);
    *b = (weft__buf_t){0};
}
