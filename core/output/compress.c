/* SPDX-License-Identifier: MIT */
/* The results stream's codecs: gzip (zlib) and Zstandard (output.h,
 * "compression"). */
#include <errno.h>
#include <stdlib.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "output.h"

enum {
    GZIP_LEVEL = 6,   /* gzip's default                                  */
    GZIP_WBITS = 31,  /* 15-bit window, + 16: a gzip header and trailer  */
    ZSTD_LEVEL = 3,   /* zstd's default                                  */
    OUT_SIZE = 128 << 10,
};

struct weft__codec {
    weft__compress_t kind;
    z_stream z;
    ZSTD_CCtx *zc;
    unsigned char out[OUT_SIZE];
};

int weft__codec_open(weft__codec_t **out, weft__compress_t kind)
{
    *out = NULL;
    if (kind != WEFT__COMPRESS_GZIP && kind != WEFT__COMPRESS_ZSTD)
        return -EINVAL;
    weft__codec_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->kind = kind;
    if (kind == WEFT__COMPRESS_GZIP) {
        /* No deflateSetHeader: zlib's own gzip header has no name, no
         * comment and mtime 0, so equal input gives equal bytes. */
        if (deflateInit2(&c->z, GZIP_LEVEL, Z_DEFLATED, GZIP_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            free(c);
            return -ENOMEM;
        }
    } else {
        c->zc = ZSTD_createCCtx();
        if (!c->zc || ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel,
                                                          ZSTD_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1))) {
            ZSTD_freeCCtx(c->zc);
            free(c);
            return -ENOMEM;
        }
    }
    *out = c;
    return 0;
}

static int gzip_put(weft__codec_t *c, const void *p, size_t n, weft__codec_mode_t mode,
                    weft__codec_sink_t sink, void *arg)
{
    static const int flush[] = {Z_NO_FLUSH, Z_SYNC_FLUSH, Z_FINISH};
    const unsigned char *in = p;
    /* avail_in is an unsigned int: feed at most 1 GiB a call. */
    do {
        size_t take = n < (1u << 30) ? n : (1u << 30);
        weft__codec_mode_t m = take == n ? mode : WEFT__CODEC_CONTINUE;
        c->z.next_in = (unsigned char *)in;
        c->z.avail_in = (unsigned)take;
        int rc;
        do {
            c->z.next_out = c->out;
            c->z.avail_out = OUT_SIZE;
            rc = deflate(&c->z, flush[m]);
            if (rc == Z_STREAM_ERROR)
                return -EIO;
            size_t have = OUT_SIZE - c->z.avail_out;
            int e = have ? sink(arg, c->out, have) : 0;
            if (e)
                return e;
            /* A full output buffer may hide more output; Z_FINISH ends
             * with Z_STREAM_END. */
        } while (c->z.avail_out == 0 || (m == WEFT__CODEC_END && rc != Z_STREAM_END));
        in += take, n -= take;
    } while (n);
    return 0;
}

static int zstd_put(weft__codec_t *c, const void *p, size_t n, weft__codec_mode_t mode,
                    weft__codec_sink_t sink, void *arg)
{
    static const ZSTD_EndDirective dir[] = {ZSTD_e_continue, ZSTD_e_flush, ZSTD_e_end};
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer o = {c->out, OUT_SIZE, 0};
        size_t left = ZSTD_compressStream2(c->zc, &o, &in, dir[mode]);
        if (ZSTD_isError(left))
            return ZSTD_getErrorCode(left) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
        int e = o.pos ? sink(arg, c->out, o.pos) : 0;
        if (e)
            return e;
        /* continue: until the input is taken; flush and end: until
         * nothing is left to write. */
        if (mode == WEFT__CODEC_CONTINUE ? in.pos == in.size : left == 0)
            return 0;
    }
}

int weft__codec_put(weft__codec_t *c, const void *p, size_t n, weft__codec_mode_t mode,
                    weft__codec_sink_t sink, void *arg)
{
    return c->kind == WEFT__COMPRESS_GZIP ? gzip_put(c, p, n, mode, sink, arg)
                                          : zstd_put(c, p, n, mode, sink, arg);
}

void weft__codec_free(weft__codec_t **cp)
{
    weft__codec_t *c = *cp;
    if (!c)
        return;
    if (c->kind == WEFT__COMPRESS_GZIP)
        deflateEnd(&c->z);
    else
        ZSTD_freeCCtx(c->zc);
    free(c);
    *cp = NULL;
}
