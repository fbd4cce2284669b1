/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
};

static const struct {
    size_t size;
    const char *descr;
} dtypes[] = {
    [WEFT_DTYPE_F64] = {8, "<f8"}, [WEFT_DTYPE_F32] = {4, "<f4"},
    [WEFT_DTYPE_I64] = {8, "<i8"}, [WEFT_DTYPE_I32] = {4, "<i4"},
    [WEFT_DTYPE_I16] = {2, "<i2"}, [WEFT_DTYPE_I8] = {1, "|i1"},
    [WEFT_DTYPE_U64] = {8, "<u8"}, [WEFT_DTYPE_U32] = {4, "<u4"},
    [WEFT_DTYPE_U16] = {2, "<u2"}, [WEFT_DTYPE_U8] = {1, "|u1"},
};

size_t weft__dtype_size(weft_dtype_t dtype)
{
    return (unsigned)dtype < sizeof dtypes / sizeof dtypes[0] ? dtypes[dtype].size : 0;
}

const char *weft__dtype_descr(weft_dtype_t dtype)
{
    return weft__dtype_size(dtype) ? dtypes[dtype].descr : NULL;
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
