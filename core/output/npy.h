/* SPDX-License-Identifier: MIT */
/*
 * NumPy .npy output, written in place: the file is created at its full
 * size under a temporary name beside its final path, mapped, filled by the
 * workers row by row, then synced and renamed, so the final name only ever
 * holds a complete array.  Format: NumPy's NEP 1 ("format 1.0"): magic,
 * version, a little-endian header length, a Python dict literal padded so
 * the data starts 64-byte aligned.
 */
#ifndef WEFT_CORE_NPY_H
#define WEFT_CORE_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "weft/plugin.h"

typedef struct weft__npy weft__npy_t;

/* Bytes per element, and NumPy's descr ('<f8'); 0 / NULL if unknown. */
size_t weft__dtype_size(weft_dtype_t dtype);
const char *weft__dtype_descr(weft_dtype_t dtype);

/* The header for shape (rows, row_len), or (rows,) when row_len == 1, into
 * buf; returns its length (a multiple of 64) or 0 if it does not fit. */
size_t weft__npy_header(char *buf, size_t size, weft_dtype_t dtype, uint64_t rows,
                        uint64_t row_len);

/* In two steps, so that a run can hold the results file before its plugin
 * says the row shape: open creates and locks the temporary
 * (".NAME.partial"; -EWOULDBLOCK when another run is writing path now),
 * shape sizes it (posix_fallocate: a full disk fails here) and maps it.
 * create is both at once.  On a shape error the caller aborts. */
int weft__npy_open(weft__npy_t **out, const char *path, char *err, size_t errlen);
int weft__npy_shape(weft__npy_t *a, weft_dtype_t dtype, uint64_t rows, uint64_t row_len,
                    char *err, size_t errlen);
int weft__npy_create(weft__npy_t **out, const char *path, weft_dtype_t dtype, uint64_t rows,
                     uint64_t row_len, char *err, size_t errlen);

/* Row i's memory; thread-safe (pure arithmetic). */
void *weft__npy_row(const weft__npy_t *a, uint64_t i);
size_t weft__npy_row_bytes(const weft__npy_t *a);

/*
 * Scalar arrays: one number per item, from plugins without row_spec.
 * After weft__npy_shape(..., 1): weft__npy_holes writes the hole value
 * into every element (NaN for floats, the type's minimum for signed ints,
 * as R's NA_integer_; other dtypes: -EINVAL), so an item that never gets
 * a value (failed, not run) stays visible as one.  From then on
 * weft__npy_clear_row writes the hole (else zeros).
 * weft__npy_put_value stores a process_one result into element i: INT,
 * FLOAT, BOOL (1/0) when the dtype holds it exactly (an integer beyond
 * 2^53 in float64 does not; floats narrow to float32 unless out of its
 * range; an int element takes only an integral, in-range float, and never
 * the hole value); NONE (null) is the hole.  Else -ERANGE or -EINVAL
 * (STRING, JSON), element i left as it was, msg saying why.  Both
 * thread-safe for distinct i.
 */
int weft__npy_holes(weft__npy_t *a);
void weft__npy_clear_row(const weft__npy_t *a, uint64_t i);
int weft__npy_put_value(const weft__npy_t *a, uint64_t i, const weft_result_t *res,
                        char *msg, size_t msg_size);

/* The dtype's name in npy_dtype (float64, int32, ...); NULL if none. */
const char *weft__dtype_name(weft_dtype_t dtype);

/* Syncs, unmaps, renames into place and syncs the folder.  *a becomes
 * NULL; on error the temporary file is removed and err says why. */
int weft__npy_commit(weft__npy_t **a, char *err, size_t errlen);

/* Drops an unfinished array (removes the temporary file). */
void weft__npy_abort(weft__npy_t **a);

#endif
