/* SPDX-License-Identifier: MIT */
/*
 * Helpers for end-to-end tests: run the real weft binary ($WEFT_EXE) in a
 * child process and collect its exit status, output and peak memory.
 */
#ifndef WEFT_TESTS_E2E_H
#define WEFT_TESTS_E2E_H

#include <stddef.h>

typedef struct e2e_outcome {
    int status;     /* exit status, or 128 + signal */
    long maxrss_kb; /* the child's peak RSS          */
    char *out;      /* stdout, NUL-terminated        */
    char *err;      /* stderr                        */
} e2e_outcome_t;

/* Makes a temporary folder (its path is returned and kept until
 * e2e_cleanup) and points WEFT_PLUGIN_PATH at the built plugins. */
const char *e2e_setup(const char *name);
void e2e_cleanup(void);

/* Runs weft with args (NULL-terminated), stdin from /dev/null. */
e2e_outcome_t e2e_run(const char *const *args);
#define E2E_RUN(...) e2e_run((const char *const[]){__VA_ARGS__, NULL})
void e2e_free(e2e_outcome_t *o);

/* Fails the test unless the exit status is `status` and stderr contains
 * `in_err` (if not NULL), printing both. */
void e2e_expect(const e2e_outcome_t *o, int status, const char *in_err);

/* Writes `body` to NAME in the temporary folder; returns the path (one of
 * eight static buffers used in turn, shared with e2e_path). */
const char *e2e_write(const char *name, const char *body);
/* tmp/NAME, in one of the eight static buffers. */
const char *e2e_path(const char *name);

/* A whole file, NUL-terminated (size in *len if not NULL), or NULL. */
char *e2e_slurp(const char *path, size_t *len);

#endif
