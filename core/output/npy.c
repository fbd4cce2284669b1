/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "npy.h"
#include "output.h"
#include "util.h"

struct weft__npy {
    char *path, *tmp;
    int fd;
    unsigned char *map;
    size_t map_size, header, row_bytes;
    weft_dtype_t dtype;
    bool holes;                  /* scalar array: clear rows to the hole */
};

static const struct {
    size_t size;
    const char *descr, *name;
} dtypes[] = {
    [WEFT_DTYPE_F64] = {8, "<f8", "float64"}, [WEFT_DTYPE_F32] = {4, "<f4", "float32"},
    [WEFT_DTYPE_I64] = {8, "<i8", "int64"},   [WEFT_DTYPE_I32] = {4, "<i4", "int32"},
    [WEFT_DTYPE_I16] = {2, "<i2", "int16"},   [WEFT_DTYPE_I8] = {1, "|i1", "int8"},
    [WEFT_DTYPE_U64] = {8, "<u8", "uint64"},  [WEFT_DTYPE_U32] = {4, "<u4", "uint32"},
    [WEFT_DTYPE_U16] = {2, "<u2", "uint16"},  [WEFT_DTYPE_U8] = {1, "|u1", "uint8"},
};

size_t weft__dtype_size(weft_dtype_t dtype)
{
    return (unsigned)dtype < sizeof dtypes / sizeof dtypes[0] ? dtypes[dtype].size : 0;
}

const char *weft__dtype_descr(weft_dtype_t dtype)
{
    return weft__dtype_size(dtype) ? dtypes[dtype].descr : NULL;
}

const char *weft__dtype_name(weft_dtype_t dtype)
{
    return weft__dtype_size(dtype) ? dtypes[dtype].name : NULL;
}

size_t weft__npy_header(char *buf, size_t size, weft_dtype_t dtype, uint64_t rows,
                        uint64_t row_len)
{
    char dict[160], shape[64];
    if (row_len == 1)
        snprintf(shape, sizeof shape, "(%" PRIu64 ",)", rows);
    else
        snprintf(shape, sizeof shape, "(%" PRIu64 ", %" PRIu64 ")", rows, row_len);
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     weft__dtype_descr(dtype), shape);
    /* magic(6) + version(2) + length(2) + dict + spaces + '\n' = k * 64 */
    size_t total = ((size_t)n + 11 + 63) / 64 * 64;
    if (total > size || total - 10 > 65535)
        return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((total - 10) & 0xff);
    buf[9] = (char)((total - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', total - 11 - (size_t)n);
    buf[total - 1] = '\n';
    return total;
}

static int fail(int rc, char *err, size_t errlen, const char *what, const char *path)
{
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
    return rc;
}

int weft__npy_open(weft__npy_t **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (weft__path_fd(path) >= 0) {
        snprintf(err, errlen, "%s: a .npy array is written into a file it maps, and this "
                 "names a descriptor (standard output?): give a file name", path);
        return -EINVAL;
    }
    weft__npy_t *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->fd = -1;
    a->path = strdup(path);
    /* The temporary name sits in the same folder, so rename is atomic. */
    a->tmp = weft__partial_name(path);
    if (!a->path || !a->tmp) {
        weft__npy_abort(&a);
        return -ENOMEM;
    }
    a->fd = weft__open_temp(a->tmp, O_RDWR, 0666); /* locked; never through a symlink */
    if (a->fd < 0) {
        int e = errno;
        weft__partial_error(err, errlen, path, a->tmp, e);
        weft__npy_abort(&a);
        return -e;
    }
    *out = a;
    return 0;
}

int weft__npy_shape(weft__npy_t *a, weft_dtype_t dtype, uint64_t rows, uint64_t row_len,
                    char *err, size_t errlen)
{
    size_t elem = weft__dtype_size(dtype);
    char header[256];
    size_t hlen = elem && row_len ? weft__npy_header(header, sizeof header, dtype, rows, row_len)
                                  : 0;
    if (!hlen) {
        snprintf(err, errlen, "bad array shape or dtype (dtype %d, row_len %" PRIu64 ")",
                 (int)dtype, row_len);
        return -EINVAL;
    }
    if (row_len > SIZE_MAX / elem || rows > (SIZE_MAX - hlen) / (row_len * elem)) {
        snprintf(err, errlen, "%s: an array of %" PRIu64 " x %" PRIu64 " is too large",
                 a->path, rows, row_len);
        return -EFBIG;
    }
    a->header = hlen;
    a->dtype = dtype;
    a->row_bytes = row_len * elem;
    a->map_size = hlen + rows * a->row_bytes;
    int rc;
    /* posix_fallocate reserves the blocks now: a full disk fails here,
     * not as SIGBUS in a worker halfway through. */
    if ((rc = -posix_fallocate(a->fd, 0, (off_t)a->map_size)) != 0)
        return fail(rc, err, errlen, "cannot allocate", a->tmp);
    a->map = mmap(NULL, a->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
    if (a->map == MAP_FAILED) {
        a->map = NULL;
        return fail(-errno, err, errlen, "cannot map", a->tmp);
    }
    memcpy(a->map, header, hlen);
    return 0;
}

int weft__npy_create(weft__npy_t **out, const char *path, weft_dtype_t dtype, uint64_t rows,
                     uint64_t row_len, char *err, size_t errlen)
{
    int rc = weft__npy_open(out, path, err, errlen);
    if (rc == 0 && (rc = weft__npy_shape(*out, dtype, rows, row_len, err, errlen)) != 0)
        weft__npy_abort(out);
    return rc;
}

void *weft__npy_row(const weft__npy_t *a, uint64_t i)
{
    return a->map + a->header + i * a->row_bytes;
}

size_t weft__npy_row_bytes(const weft__npy_t *a)
{
    return a->row_bytes;
}

/* ---- scalar arrays --------------------------------------------------------- */

/* The hole of a dtype: NaN, or the signed minimum (never a value). */
static bool hole_of(weft_dtype_t dtype, unsigned char out[8])
{
    switch (dtype) {
    case WEFT_DTYPE_F64: { double v = NAN; memcpy(out, &v, 8); return true; }
    case WEFT_DTYPE_F32: { float v = NAN; memcpy(out, &v, 4); return true; }
    case WEFT_DTYPE_I64: { int64_t v = INT64_MIN; memcpy(out, &v, 8); return true; }
    case WEFT_DTYPE_I32: { int32_t v = INT32_MIN; memcpy(out, &v, 4); return true; }
    case WEFT_DTYPE_I16: { int16_t v = INT16_MIN; memcpy(out, &v, 2); return true; }
    case WEFT_DTYPE_I8: { int8_t v = INT8_MIN; memcpy(out, &v, 1); return true; }
    default: return false;
    }
}

int weft__npy_holes(weft__npy_t *a)
{
    unsigned char hole[8];
    if (!a->map || a->row_bytes != weft__dtype_size(a->dtype) || !hole_of(a->dtype, hole))
        return -EINVAL;
    a->holes = true;
    uint64_t n = (a->map_size - a->header) / a->row_bytes;
    unsigned char *p = a->map + a->header;
    for (uint64_t i = 0; i < n; i++, p += a->row_bytes)
        memcpy(p, hole, a->row_bytes);
    return 0;
}

void weft__npy_clear_row(const weft__npy_t *a, uint64_t i)
{
    unsigned char hole[8];
    if (a->holes && hole_of(a->dtype, hole))
        memcpy(weft__npy_row(a, i), hole, a->row_bytes);
    else
        memset(weft__npy_row(a, i), 0, a->row_bytes);
}

/* v into a signed element of `bits`, its minimum kept for holes. */
static int put_int(const weft__npy_t *a, void *at, int64_t v, char *msg, size_t msg_size)
{
    int bits = (int)a->row_bytes * 8;
    int64_t max = bits == 64 ? INT64_MAX : (INT64_C(1) << (bits - 1)) - 1;
    if (v < -max || v > max) {
        snprintf(msg, msg_size, "%" PRId64 " is outside %s's %" PRId64 "..%" PRId64
                 "%s (npy_dtype)", v, weft__dtype_name(a->dtype), -max, max,
                 v == -max - 1 ? ": its minimum marks the holes" : "");
        return -ERANGE;
    }
    switch (bits) {
    case 64: memcpy(at, &v, 8); break;
    case 32: { int32_t x = (int32_t)v; memcpy(at, &x, 4); break; }
    case 16: { int16_t x = (int16_t)v; memcpy(at, &x, 2); break; }
    default: { int8_t x = (int8_t)v; memcpy(at, &x, 1); break; }
    }
    return 0;
}

int weft__npy_put_value(const weft__npy_t *a, uint64_t i, const weft_result_t *res,
                        char *msg, size_t msg_size)
{
    void *at = weft__npy_row(a, i);
    bool is_float = a->dtype == WEFT_DTYPE_F64 || a->dtype == WEFT_DTYPE_F32;
    const char *name = weft__dtype_name(a->dtype);
    switch (res->kind) {
    case WEFT_VALUE_NONE:
        weft__npy_clear_row(a, i); /* null: a hole, as JSON's null */
        return 0;
    case WEFT_VALUE_BOOL:
        if (!is_float)
            return put_int(a, at, res->value.b, msg, msg_size);
        break;
    case WEFT_VALUE_INT: {
        int64_t v = res->value.i;
        if (!is_float)
            return put_int(a, at, v, msg, msg_size);
        /* Exact or refused: a float64 holds integers to 2^53 (float32:
         * 2^24); beyond that most are rounded. */
        double d = a->dtype == WEFT_DTYPE_F64 ? (double)v : (double)(float)v;
        if (d >= 0x1p63 || (int64_t)d != v) {
            snprintf(msg, msg_size, "the integer %" PRId64 " is not exact in %s "
                     "(set npy_dtype = int64)", v, name);
            return -ERANGE;
        }
        break;
    }
    case WEFT_VALUE_FLOAT: {
        double f = res->value.f;
        if (is_float) {
            if (a->dtype == WEFT_DTYPE_F32 && isfinite(f) && fabs(f) > FLT_MAX) {
                snprintf(msg, msg_size, "%g is outside float32's range (npy_dtype)", f);
                return -ERANGE;
            }
            break;
        }
        if (!isfinite(f) || f != trunc(f) || f < -0x1p63 || f >= 0x1p63) {
            snprintf(msg, msg_size, "%.17g is not an integer: a %s array holds integers "
                     "(npy_dtype; float64 holds it)", f, name);
            return -ERANGE;
        }
        return put_int(a, at, (int64_t)f, msg, msg_size);
    }
    case WEFT_VALUE_STRING:
    case WEFT_VALUE_JSON:
        snprintf(msg, msg_size, "the value is %s, and a .npy array of %s holds one number "
                 "per item (write it as JSON, JSON Lines or CSV instead)",
                 res->kind == WEFT_VALUE_STRING ? "a string" : "JSON text", name);
        return -EINVAL;
    }
    double d = res->kind == WEFT_VALUE_BOOL ? (res->value.b ? 1.0 : 0.0)
               : res->kind == WEFT_VALUE_INT ? (double)res->value.i
                                             : res->value.f;
    if (a->dtype == WEFT_DTYPE_F64) {
        memcpy(at, &d, 8);
    } else {
        float x = (float)d;
        memcpy(at, &x, 4);
    }
    return 0;
}

int weft__npy_commit(weft__npy_t **ap, char *err, size_t errlen)
{
    weft__npy_t *a = *ap;
    int rc = 0;
    if (msync(a->map, a->map_size, MS_SYNC) != 0)
        rc = fail(-errno, err, errlen, "cannot write", a->tmp);
    munmap(a->map, a->map_size);
    a->map = NULL;
    if (!rc && fsync(a->fd) != 0)
        rc = fail(-errno, err, errlen, "cannot sync", a->tmp);
    /* Renamed while its lock is held, closed after (see weft__open_temp). */
    if (!rc && rename(a->tmp, a->path) != 0)
        rc = fail(-errno, err, errlen, "cannot rename into place", a->path);
    if (!rc) { /* the name is free now: another run may make it anew */
        free(a->tmp);
        a->tmp = NULL;
    }
    if (!rc && (rc = weft__sync_folder_of(a->path)) != 0)
        fail(rc, err, errlen, "cannot sync the folder of", a->path);
    if (rc) {
        weft__npy_abort(ap);
        return rc;
    }
    if (close(a->fd) != 0 && errno != EINTR)
        rc = fail(-errno, err, errlen, "cannot close", a->path);
    a->fd = -1;
    free(a->path);
    free(a);
    *ap = NULL;
    return rc;
}

void weft__npy_abort(weft__npy_t **ap)
{
    weft__npy_t *a = *ap;
    if (!a)
        return;
    if (a->map && a->map_size)
        munmap(a->map, a->map_size);
    if (a->tmp && a->fd >= 0)
        unlink(a->tmp); /* ours (locked) until the close below */
    if (a->fd >= 0)
        close(a->fd);
    free(a->path);
    free(a->tmp);
    free(a);
    *ap = NULL;
}
