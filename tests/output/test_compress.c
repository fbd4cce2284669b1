/* SPDX-License-Identifier: MIT */
/* core/output/compress.c: the gzip and Zstandard codecs, read back with
 * zlib's inflate and libzstd's decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "output.h"

static int to_buf(void *arg, const void *p, size_t n)
{
    return weft__buf_append(arg, p, n);
}

/* A sink that fails: its error comes back from the codec. */
static int full_disk(void *arg, const void *p, size_t n)
{
    (void)arg, (void)p, (void)n;
    return -ENOSPC;
}

static void gunzip(const weft__buf_t *in, weft__buf_t *out)
{
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 31), Z_OK);
    z.next_in = (unsigned char *)in->data;
    z.avail_in = (unsigned)in->len;
    int rc;
    do {
        assert_int_equal(weft__buf_reserve(out, 1 << 16), 0);
        z.next_out = (unsigned char *)out->data + out->len;
        z.avail_out = 1 << 16;
        rc = inflate(&z, Z_NO_FLUSH);
        assert_true(rc == Z_OK || rc == Z_STREAM_END);
        out->len = (size_t)((char *)z.next_out - out->data);
    } while (rc != Z_STREAM_END);
    assert_int_equal(z.avail_in, 0); /* one member, nothing after it */
    inflateEnd(&z);
}

static void unzstd(const weft__buf_t *in, weft__buf_t *out)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    assert_non_null(d);
    ZSTD_inBuffer ib = {in->data, in->len, 0};
    size_t left = 1;
    while (ib.pos < ib.size || left) {
        assert_int_equal(weft__buf_reserve(out, 1 << 16), 0);
        ZSTD_outBuffer ob = {out->data + out->len, 1 << 16, 0};
        left = ZSTD_decompressStream(d, &ob, &ib);
        assert_false(ZSTD_isError(left));
        out->len += ob.pos;
        if (ob.pos == 0 && ib.pos == ib.size)
            break;
    }
    assert_int_equal(left, 0); /* a whole frame */
    ZSTD_freeDCtx(d);
}

/* Some megabytes of JSON-Lines-like text, reproducible. */
static void sample(weft__buf_t *b, size_t records)
{
    srand(11);
    for (size_t k = 0; k < records; k++) {
        char rec[96];
        int n = snprintf(rec, sizeof rec, "{\"index\":%zu,\"ok\":true,\"value\":%d}\n", k,
                         rand());
        assert_int_equal(weft__buf_append(b, rec, (size_t)n), 0);
    }
}

static void compress_chunked(weft__compress_t kind, const weft__buf_t *in, size_t chunk,
                             bool flushes, weft__buf_t *out)
{
    weft__codec_t *c = NULL;
    assert_int_equal(weft__codec_open(&c, kind), 0);
    size_t at = 0;
    while (at < in->len) {
        size_t n = in->len - at < chunk ? in->len - at : chunk;
        weft__codec_mode_t m = flushes && (at / chunk) % 3 == 1 ? WEFT__CODEC_FLUSH
                                                                  : WEFT__CODEC_CONTINUE;
        assert_int_equal(weft__codec_put(c, in->data + at, n, m, to_buf, out), 0);
        at += n;
    }
    assert_int_equal(weft__codec_put(c, "", 0, WEFT__CODEC_END, to_buf, out), 0);
    weft__codec_free(&c);
    assert_null(c);
}

static void codec_round_trips(void **state)
{
    (void)state;
    weft__buf_t in = {0};
    sample(&in, 100000); /* ~4 MB */
    static const size_t chunks[] = {1, 4093, WEFT__WRITER_CHUNK, (size_t)64 << 20};
    for (int kind = WEFT__COMPRESS_GZIP; kind <= WEFT__COMPRESS_ZSTD; kind++) {
        for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
            /* Byte-by-byte is slow: only the first 20 kB then. */
            weft__buf_t part = in;
            if (chunks[i] == 1)
                part.len = 20000;
            for (int flushes = 0; flushes < 2; flushes++) {
                weft__buf_t z = {0}, back = {0};
                compress_chunked((weft__compress_t)kind, &part, chunks[i], flushes, &z);
                if (chunks[i] > 1 || !flushes) /* a flush a byte costs more than it saves */
                    assert_true(z.len < part.len / 2);
                if (kind == WEFT__COMPRESS_GZIP)
                    gunzip(&z, &back);
                else
                    unzstd(&z, &back);
                assert_int_equal(back.len, part.len);
                assert_memory_equal(back.data, part.data, part.len);
                weft__buf_free(&z);
                weft__buf_free(&back);
            }
        }
    }
    weft__buf_free(&in);
}

/* An empty stream is a valid one; the gzip header has mtime 0 and no name
 * (equal input, equal bytes). */
static void codec_empty_and_header(void **state)
{
    (void)state;
    weft__buf_t none = {0}, z = {0}, back = {0};
    compress_chunked(WEFT__COMPRESS_GZIP, &none, 1, false, &z);
    assert_true(z.len >= 18);
    static const unsigned char head[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0};
    assert_memory_equal(z.data, head, sizeof head); /* no FNAME flag, mtime 0 */
    gunzip(&z, &back);
    assert_int_equal(back.len, 0);
    z.len = 0;
    compress_chunked(WEFT__COMPRESS_ZSTD, &none, 1, false, &z);
    assert_int_equal((unsigned char)z.data[0], 0x28); /* the frame's magic, LE */
    unzstd(&z, &back);
    assert_int_equal(back.len, 0);
    weft__buf_free(&z);
    weft__buf_free(&back);
}

/* The same chunks give the same bytes: the codecs keep no clock, no
 * randomness, no address. */
static void codec_deterministic(void **state)
{
    (void)state;
    weft__buf_t in = {0};
    sample(&in, 60000);
    for (int kind = WEFT__COMPRESS_GZIP; kind <= WEFT__COMPRESS_ZSTD; kind++) {
        weft__buf_t a = {0}, b = {0};
        compress_chunked((weft__compress_t)kind, &in, WEFT__WRITER_CHUNK, false, &a);
        compress_chunked((weft__compress_t)kind, &in, WEFT__WRITER_CHUNK, false, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        weft__buf_free(&a);
        weft__buf_free(&b);
    }
    weft__buf_free(&in);
}

static void codec_errors(void **state)
{
    (void)state;
    weft__codec_t *c = (weft__codec_t *)&c;
    assert_int_equal(weft__codec_open(&c, WEFT__COMPRESS_NONE), -EINVAL);
    assert_null(c);
    weft__codec_free(&c); /* NULL is fine */
    weft__buf_t in = {0};
    sample(&in, 1000);
    for (int kind = WEFT__COMPRESS_GZIP; kind <= WEFT__COMPRESS_ZSTD; kind++) {
        assert_int_equal(weft__codec_open(&c, (weft__compress_t)kind), 0);
        assert_int_equal(weft__codec_put(c, in.data, in.len, WEFT__CODEC_END, full_disk, NULL),
                         -ENOSPC);
        weft__codec_free(&c);
    }
    weft__buf_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec_round_trips),
        cmocka_unit_test(codec_empty_and_header),
        cmocka_unit_test(codec_deterministic),
        cmocka_unit_test(codec_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
