/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Every target is `int LLVMFuzzerTestOneInput(const uint8_t *, size_t)`,
 * linked either with libFuzzer (-Dfuzz=true, clang) or with our main.c,
 * which runs it over files so that the seed corpora are regression tests in
 * every build.  A target must not leak, must not grow global state from one
 * input to the next, and writes files only under fuzz_tmpdir().
 *
 * An invariant that does not hold is a finding: FUZZ_CHECK prints what and
 * where, then abort()s, so both libFuzzer and the driver report a crash
 * with the input that caused it.
 */
#ifndef WEFT_FUZZ_COMMON_H
#define WEFT_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                            \
    do {                                                                                 \
        if (!(cond))                                                                     \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                           \
    } while (0)

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 4, 5)))
#endif
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...);

/* This process's scratch folder (absolute, created on first use, removed
 * with everything in it at exit).  Never NULL: aborts if it cannot exist. */
const char *fuzz_tmpdir(void);

/* Writes len bytes to DIR/name (created or truncated, 0600); aborts on an
 * I/O error, which is the machine's fault, not the code under test's. */
void fuzz_write_file(const char *name, const void *data, size_t len);

/* Reads the file at path (as given) whole into a malloc'ed buffer with
 * a NUL after the end; NULL if it cannot be read. */
char *fuzz_read_file(const char *path, size_t *len);

/* The reference integer grammar of weft__parse_int64(), written
 * independently: optional sign, then decimal digits or 0x/0X hex digits,
 * nothing else; -ERANGE outside int64 (junk wins over overflow). */
int fuzz_ref_parse_int64(const char *s, int64_t *out);

/* A NUL-terminated copy of data[0, len), with embedded NULs kept (the
 * caller sees a C string cut at the first one). */
char *fuzz_strndup(const void *data, size_t len);

/* Finds the first occurrence of needle in [data, data + len). */
const uint8_t *fuzz_memmem(const uint8_t *data, size_t len, const char *needle);

#endif
