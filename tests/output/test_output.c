/* SPDX-License-Identifier: MIT */
/* core/output/output.c: JSON encoders and the ordered writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "output.h"

static char text[4096];

/* The JSON text of a value, NUL-terminated in `text`. */
static const char *value_json(const weft_result_t *r, int *rc)
{
    weft__buf_t b = {0};
    char why[256] = "";
    *rc = weft__json_value(&b, r, why, sizeof why);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.data ? b.data : "");
    if (*rc)
        snprintf(text, sizeof text, "%s", why);
    weft__buf_free(&b);
    return text;
}

static const char *string_json(const char *s, size_t len)
{
    weft__buf_t b = {0};
    assert_int_equal(weft__json_string(&b, s, len), 0);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.data);
    weft__buf_free(&b);
    return text;
}

static void string_escapes(void **state)
{
    (void)state;
    assert_string_equal(string_json("plain", 5), "\"plain\"");
    assert_string_equal(string_json("q\"b\\", 4), "\"q\\\"b\\\\\"");
    assert_string_equal(string_json("\n\t\r\b\f\x01", 6), "\"\\n\\t\\r\\b\\f\\u0001\"");
    assert_string_equal(string_json("a\0b", 3), "\"a\\u0000b\"");
    assert_string_equal(string_json("", 0), "\"\"");
}

static void string_utf8(void **state)
{
    (void)state;
    /* Valid multi-byte sequences pass through untouched. */
    assert_string_equal(string_json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9),
                        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* Invalid: stray continuation, truncated, overlong, surrogate, > U+10FFFF. */
    assert_string_equal(string_json("\x80", 1), "\"\xef\xbf\xbd\"");
    assert_string_equal(string_json("a\xc3", 2), "\"a\xef\xbf\xbd\"");
    assert_string_equal(string_json("\xc0\xaf", 2), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    assert_string_equal(string_json("\xed\xa0\x80", 3),
                        "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    assert_string_equal(string_json("\xf4\x90\x80\x80", 4),
                        "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    /* Whatever the bytes, the result parses as JSON. */
    char junk[256];
    for (int k = 0; k < 256; k++)
        junk[k] = (char)(255 - k);
    string_json(junk, sizeof junk);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_true(cJSON_IsString(j));
    cJSON_Delete(j);
}

static const char *minify(const char *s, int *rc)
{
    weft__buf_t b = {0};
    char why[256] = "";
    assert_int_equal(weft__buf_append(&b, "X", 1), 0); /* a prefix that must survive */
    *rc = weft__json_minify(&b, s, strlen(s), why, sizeof why);
    if (*rc == 0)
        snprintf(text, sizeof text, "%.*s", (int)b.len - 1, b.data + 1);
    else {
        assert_int_equal(b.len, 1); /* left as it was */
        snprintf(text, sizeof text, "%s", why);
    }
    weft__buf_free(&b);
    return text;
}

static void minify_valid(void **state)
{
    (void)state;
    int rc;
    assert_string_equal(minify(" { \"a\" : [ 1 , 2.5e-3 , true , null ] ,\n\"b\":\"x y\" } ", &rc),
                        "{\"a\":[1,2.5e-3,true,null],\"b\":\"x y\"}");
    assert_int_equal(rc, 0);
    /* Numbers are kept to the letter: a 128-bit integer keeps its digits. */
    assert_string_equal(minify("340282366920938463463374607431768211455", &rc),
                        "340282366920938463463374607431768211455");
    assert_string_equal(minify("\"\\u00e9\\n\"", &rc), "\"\\u00e9\\n\"");
    assert_string_equal(minify("[]", &rc), "[]");
    assert_string_equal(minify("-0", &rc), "-0");
}

static void minify_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "{", "{\"a\":", "[1,]", "[1 2]", "{\"a\" 1}", "{1:2}", "01", "1.", "1e",
        "-", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"a\nb\"", "1 2", "[1]]",
        "\"\xff\"", "NaN", "+1", ".5",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc;
        const char *why = minify(bad[k], &rc);
        if (rc != -EINVAL)
            fail_msg("accepted invalid JSON '%s'", bad[k]);
        assert_non_null(strstr(why, "invalid JSON value at byte"));
    }
    /* Depth limit: 300 nested arrays are refused, 200 are fine. */
    char deep[700];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    deep[600] = '\0';
    int rc;
    assert_non_null(strstr(minify(deep, &rc), "nested too deeply"));
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    deep[400] = '\0';
    minify(deep, &rc);
    assert_int_equal(rc, 0);
}

static void values_every_kind(void **state)
{
    (void)state;
    int rc;
    weft_result_t r = {0};
    assert_string_equal(value_json(&r, &rc), "null");
    weft_result_int(&r, INT64_MIN);
    assert_string_equal(value_json(&r, &rc), "-9223372036854775808");
    weft_result_int(&r, 0);
    assert_string_equal(value_json(&r, &rc), "0");
    weft_result_float(&r, 0.1);
    assert_string_equal(value_json(&r, &rc), "0.1");
    weft_result_float(&r, 3.0);
    assert_string_equal(value_json(&r, &rc), "3");
    weft_result_float(&r, 1e300);
    assert_float_equal(strtod(value_json(&r, &rc), NULL), 1e300, 1e285);
    weft_result_float(&r, NAN);
    assert_string_equal(value_json(&r, &rc), "null");
    weft_result_float(&r, -INFINITY);
    assert_string_equal(value_json(&r, &rc), "null");
    weft_result_bool(&r, true);
    assert_string_equal(value_json(&r, &rc), "true");
    weft_result_string(&r, "s", 1);
    assert_string_equal(value_json(&r, &rc), "\"s\"");
    weft_result_json(&r, "[1, 2]", 6);
    assert_string_equal(value_json(&r, &rc), "[1,2]");
    weft_result_json(&r, "[1, 2", 5);
    value_json(&r, &rc);
    assert_int_equal(rc, -EINVAL);
    weft_result_json(&r, NULL, 0);
    value_json(&r, &rc);
    assert_int_equal(rc, -EINVAL);
    r.kind = (weft_value_kind_t)99;
    value_json(&r, &rc);
    assert_int_equal(rc, -EINVAL);
    /* Doubles round-trip exactly. */
    for (double d = 1e-7; d < 1e7; d *= 3.3) {
        weft_result_float(&r, d / 7);
        assert_true(strtod(value_json(&r, &rc), NULL) == d / 7);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[1 << 16];
    size_t n = fread(data, 1, sizeof data - 1, f);
    data[n] = '\0';
    fclose(f);
    return data;
}

static void write_records(const char *path, weft__format_t fmt, int n)
{
    weft__writer_t *w = NULL;
    char err[256];
    assert_int_equal(weft__writer_open(&w, path, fmt, err, sizeof err), 0);
    for (int k = 0; k < n; k++) {
        char rec[32];
        int len = snprintf(rec, sizeof rec, "{\"k\":%d}", k);
        assert_int_equal(weft__writer_record(w, rec, (size_t)len), 0);
    }
    assert_int_equal(weft__writer_close(&w, err, sizeof err), 0);
    assert_null(w);
}

static void writer_formats(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-output-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out.json", dir);

    write_records(path, WEFT__FORMAT_JSON, 0);
    assert_string_equal(slurp(path), "[]\n");
    write_records(path, WEFT__FORMAT_JSON, 3);
    assert_string_equal(slurp(path), "[\n{\"k\":0},\n{\"k\":1},\n{\"k\":2}\n]\n");
    write_records(path, WEFT__FORMAT_JSONL, 2);
    assert_string_equal(slurp(path), "{\"k\":0}\n{\"k\":1}\n");

    /* Larger than the writer's buffer: still one valid array, in order. */
    write_records(path, WEFT__FORMAT_JSON, 3000);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *all = malloc((size_t)size + 1);
    assert_int_equal(fread(all, 1, (size_t)size, f), (size_t)size);
    all[size] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(all);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 3000);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 2999), "k")->valueint, 2999);
    cJSON_Delete(j);
    free(all);
    unlink(path);
    rmdir(dir);
}

/* Framed blocks, small ones through the buffer and big ones written
 * straight from the block after what is buffered (writev): the file holds
 * every byte once, in order, in JSON Lines and in a JSON array. */
static void writer_big_blocks(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-output-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    for (int json = 0; json < 2; json++) {
        const char *pre = json ? ",\n" : "", *suf = json ? "" : "\n";
        weft__writer_t *w = NULL;
        char err[256];
        assert_int_equal(weft__writer_open(&w, path, json ? WEFT__FORMAT_JSON : WEFT__FORMAT_JSONL,
                                           err, sizeof err),
                         0);
        weft__buf_t block = {0}, want = {0};
        uint64_t next = 0;
        /* Block sizes around the direct-write threshold and the buffer. */
        static const int sizes[] = {3, 9000, 1, 20000, 120000, 2, 150000, 7};
        for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b++) {
            block.len = 0;
            for (int k = 0; k < sizes[b]; k++, next++) {
                char rec[48];
                int n = snprintf(rec, sizeof rec, "%s%llu%s", pre, (unsigned long long)next, suf);
                assert_int_equal(weft__buf_append(&block, rec, (size_t)n), 0);
            }
            assert_int_equal(weft__writer_framed(w, block.data, block.len, (uint64_t)sizes[b]), 0);
        }
        assert_int_equal(weft__writer_close(&w, err, sizeof err), 0);
        assert_int_equal(weft__buf_append(&want, json ? "[\n" : "", json ? 2 : 0), 0);
        for (uint64_t k = 0; k < next; k++) {
            char rec[48];
            int n = snprintf(rec, sizeof rec, "%s%llu%s", json && k ? ",\n" : "",
                             (unsigned long long)k, suf);
            assert_int_equal(weft__buf_append(&want, rec, (size_t)n), 0);
        }
        assert_int_equal(weft__buf_append(&want, json ? "\n]\n" : "", json ? 3 : 0), 0);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char *got = malloc(want.len + 2);
        size_t n = fread(got, 1, want.len + 1, f);
        fclose(f);
        assert_int_equal(n, want.len);
        assert_memory_equal(got, want.data, want.len);
        free(got);
        weft__buf_free(&block);
        weft__buf_free(&want);
    }
    unlink(path);
    rmdir(dir);
}

static void writer_errors(void **state)
{
    (void)state;
    weft__writer_t *w = NULL;
    char err[256] = "";
    assert_int_equal(weft__writer_open(&w, "/nonexistent-dir/out.json", WEFT__FORMAT_JSON,
                                       err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-dir/out.json"));
    assert_null(w);

    /* /dev/full: every write fails with ENOSPC; the error is reported, not
     * swallowed, and names the file. */
    assert_int_equal(weft__writer_open(&w, "/dev/full", WEFT__FORMAT_JSONL, err, sizeof err), 0);
    static char big[4096];
    memset(big, '1', sizeof big);
    int rc = 0;
    for (int k = 0; k < 600 && rc == 0; k++)
        rc = weft__writer_record(w, big, sizeof big);
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(weft__writer_close(&w, err, sizeof err), -ENOSPC);
    assert_non_null(strstr(err, "/dev/full: write failed"));
}

/* ---- compressed outputs ------------------------------------------------------ */

static size_t file_bytes(const char *path, weft__buf_t *out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    out->len = 0;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(weft__buf_append(out, chunk, n), 0);
    fclose(f);
    return out->len;
}

/* zlib's or libzstd's reading of a whole compressed buffer. */
static void decompress(weft__compress_t kind, const char *p, size_t n, weft__buf_t *out)
{
    out->len = 0;
    if (kind == WEFT__COMPRESS_GZIP) {
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 31), Z_OK);
        z.next_in = (unsigned char *)p;
        z.avail_in = (unsigned)n;
        int rc;
        do {
            assert_int_equal(weft__buf_reserve(out, 1 << 16), 0);
            z.next_out = (unsigned char *)out->data + out->len;
            z.avail_out = 1 << 16;
            rc = inflate(&z, Z_SYNC_FLUSH);
            assert_true(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
            out->len = (size_t)((char *)z.next_out - out->data);
        } while (rc == Z_OK && (z.avail_in || z.avail_out == 0));
        inflateEnd(&z);
    } else {
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ZSTD_inBuffer ib = {p, n, 0};
        for (;;) {
            assert_int_equal(weft__buf_reserve(out, 1 << 16), 0);
            ZSTD_outBuffer ob = {out->data + out->len, 1 << 16, 0};
            size_t left = ZSTD_decompressStream(d, &ob, &ib);
            assert_false(ZSTD_isError(left));
            out->len += ob.pos;
            if (ib.pos == ib.size && ob.pos < ob.size)
                break;
        }
        ZSTD_freeDCtx(d);
    }
}

/*
 * The compressed file is a function of the bytes written alone: the same
 * records in blocks of other sizes, with flushes at other moments (a run
 * and its resume split and time them differently), give the same file, and
 * it reads back as the uncompressed writer's.
 */
static void writer_compressed_deterministic(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-output-XXXXXX", path[64], plain[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out.csv.z", dir);
    snprintf(plain, sizeof plain, "%s/out.csv", dir);
    static const char header[] = "index,input,ok,error,value\n";
    weft__buf_t first = {0}, got = {0}, want = {0}, block = {0};
    for (int kind = WEFT__COMPRESS_NONE; kind <= WEFT__COMPRESS_ZSTD; kind++) {
        for (int split = 0; split < 3; split++) {
            weft__writer_t *w = NULL;
            char err[256];
            weft__writer_settings_t s = {.format = WEFT__FORMAT_CSV,
                                         .compress = (weft__compress_t)kind,
                                         .header = header, .header_len = sizeof header - 1};
            assert_int_equal(weft__writer_open_with(&w, kind ? path : plain, &s, err, sizeof err),
                             0);
            srand(3);
            unsigned pick = (unsigned)split * 7919u;
            uint64_t next = 0;
            while (next < 120000) { /* ~3.5 MB: several of the writer's chunks */
                pick = pick * 1103515245u + 12345u;
                uint64_t n = 1 + (split == 0 ? 1000 : (pick >> 8) % (split == 1 ? 50 : 9000));
                if (n > 120000 - next)
                    n = 120000 - next;
                block.len = 0;
                for (uint64_t k = 0; k < n; k++, next++) {
                    char rec[64];
                    int len = snprintf(rec, sizeof rec, "%llu,%llu,true,,%d\n",
                                       (unsigned long long)next, (unsigned long long)next,
                                       rand());
                    assert_int_equal(weft__buf_append(&block, rec, (size_t)len), 0);
                }
                assert_int_equal(weft__writer_framed(w, block.data, block.len, n), 0);
                if ((pick >> 4) % 5 == 0)
                    assert_int_equal(weft__writer_flush(w), 0); /* the drain's flushes */
            }
            assert_int_equal(weft__writer_close(&w, err, sizeof err), 0);
            if (kind == WEFT__COMPRESS_NONE) {
                file_bytes(plain, &want);
                break;
            }
            file_bytes(path, &got);
            assert_true(got.len < want.len / 2);
            if (split == 0) {
                first.len = 0;
                assert_int_equal(weft__buf_append(&first, got.data, got.len), 0);
            } else {
                assert_int_equal(got.len, first.len);
                assert_memory_equal(got.data, first.data, got.len);
            }
            weft__buf_t back = {0};
            decompress((weft__compress_t)kind, got.data, got.len, &back);
            assert_int_equal(back.len, want.len);
            assert_memory_equal(back.data, want.data, want.len);
            weft__buf_free(&back);
        }
    }
    weft__buf_free(&first);
    weft__buf_free(&got);
    weft__buf_free(&want);
    weft__buf_free(&block);
    unlink(path);
    unlink(plain);
    rmdir(dir);
}

/* Into a pipe, a flush goes through the codec: the reader can decode every
 * record written so far before the stream ends. */
static void writer_compressed_pipe_streams(void **state)
{
    (void)state;
    for (int kind = WEFT__COMPRESS_GZIP; kind <= WEFT__COMPRESS_ZSTD; kind++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        char path[64];
        snprintf(path, sizeof path, "/dev/fd/%d", fds[1]);
        weft__writer_t *w = NULL;
        char err[256];
        weft__writer_settings_t s = {.format = WEFT__FORMAT_JSONL,
                                     .compress = (weft__compress_t)kind};
        assert_int_equal(weft__writer_open_with(&w, path, &s, err, sizeof err), 0);
        assert_int_equal(weft__writer_record(w, "{\"k\":1}", 7), 0);
        assert_int_equal(weft__writer_flush(w), 0);
        char got[4096];
        ssize_t n = read(fds[0], got, sizeof got);
        assert_true(n > 0);
        weft__buf_t back = {0};
        decompress((weft__compress_t)kind, got, (size_t)n, &back);
        assert_int_equal(back.len, 8);
        assert_memory_equal(back.data, "{\"k\":1}\n", 8);
        assert_int_equal(weft__writer_close(&w, err, sizeof err), 0);
        weft__buf_free(&back);
        close(fds[0]);
        close(fds[1]);
    }
}

/* weft__put_int against snprintf: every digit-count boundary (10^k - 1,
 * 10^k, 10^k + 1), every power of two around it, the ends of int64, and a
 * dense stretch around 0. */
static void check_int(int64_t v)
{
    char got[32], want[32];
    size_t n = weft__put_int(got, v);
    got[n] = '\0';
    snprintf(want, sizeof want, "%" PRId64, v);
    if (strcmp(got, want) != 0)
        fail_msg("%s written as '%s'", want, got);
}

static void put_int_every_boundary(void **state)
{
    (void)state;
    for (int64_t v = -100000; v <= 100000; v++)
        check_int(v);
    int64_t p = 1;
    for (int k = 1; k < 19; k++) {
        p *= 10;
        for (int64_t d = -1; d <= 1; d++) {
            check_int(p + d);
            check_int(-(p + d));
        }
    }
    for (int e = 0; e < 63; e++)
        for (int64_t d = -1; d <= 1; d++) {
            check_int(((int64_t)1 << e) + d);
            check_int(-(((int64_t)1 << e) + d));
        }
    check_int(INT64_MAX);
    check_int(INT64_MIN);
    check_int(INT64_MIN + 1);
}

/* format = raw: a string's bytes as they are (NUL, invalid UTF-8, no
 * newline added), another value's JSON and a newline, no value nothing. */
static void raw_values(void **state)
{
    (void)state;
    weft__buf_t b = {0};
    char why[128] = "";
    weft_result_t r = {.kind = WEFT_VALUE_STRING};
    r.value.s.ptr = "a\0\xff\n";
    r.value.s.len = 4;
    assert_int_equal(weft__raw_value(&b, &r, why, sizeof why), 0);
    r = (weft_result_t){.kind = WEFT_VALUE_INT, .value.i = -7};
    assert_int_equal(weft__raw_value(&b, &r, why, sizeof why), 0);
    r = (weft_result_t){.kind = WEFT_VALUE_NONE};
    assert_int_equal(weft__raw_value(&b, &r, why, sizeof why), 0);
    r = (weft_result_t){.kind = WEFT_VALUE_JSON};
    r.value.s.ptr = "{ \"k\" : [1, 2] }";
    r.value.s.len = strlen(r.value.s.ptr);
    assert_int_equal(weft__raw_value(&b, &r, why, sizeof why), 0);
    r = (weft_result_t){.kind = WEFT_VALUE_STRING}; /* empty: nothing */
    assert_int_equal(weft__raw_value(&b, &r, why, sizeof why), 0);
    static const char want[] = "a\0\xff\n-7\n{\"k\":[1,2]}\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    /* Invalid JSON: an error, nothing appended. */
    r = (weft_result_t){.kind = WEFT_VALUE_JSON};
    r.value.s.ptr = "[1,";
    r.value.s.len = 3;
    assert_int_equal(weft__raw_value(&b, &r, why, sizeof why), -EINVAL);
    assert_int_equal(b.len, sizeof want - 1);
    weft__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_int_every_boundary),
        cmocka_unit_test(raw_values),
        cmocka_unit_test(string_escapes),   cmocka_unit_test(string_utf8),
        cmocka_unit_test(minify_valid),     cmocka_unit_test(minify_invalid),
        cmocka_unit_test(values_every_kind), cmocka_unit_test(writer_formats),
        cmocka_unit_test(writer_errors),    cmocka_unit_test(writer_big_blocks),
        cmocka_unit_test(writer_compressed_deterministic),
        cmocka_unit_test(writer_compressed_pipe_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
