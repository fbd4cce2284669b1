/* SPDX-License-Identifier: MIT */
/*
 * Helpers for end-to-end tests: run the real weft binary ($WEFT_EXE) in a
 * child process and collect its exit status, output and peak memory.
 */
#ifndef WEFT_TESTS_E2E_H
#define WEFT_TESTS_E2E_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/plugin.h" /* WEFT_PRINTF */

/* Defined in AddressSanitizer and ThreadSanitizer builds, where peak RSS and
 * timings mean little (tests that bound them say what they skip). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

typedef struct e2e_outcome {
    int status;     /* exit status, or 128 + signal */
    long maxrss_kb; /* the child's peak RSS          */
    char *out;      /* stdout, NUL-terminated        */
    char *err;      /* stderr                        */
} e2e_outcome_t;

/* How e2e_run_with starts weft; all zero is e2e_run's way.  Whatever the
 * options, weft gets only fds 0-2 from the harness. */
typedef struct e2e_options {
    /* stdin a pipe whose write end the harness holds open until weft
     * exits, so that reading it blocks rather than ending (default:
     * /dev/null). */
    bool stdin_pipe;
    /* SIGPIPE ignored, as some launchers leave it. */
    bool ignore_sigpipe;
} e2e_options_t;

/* Makes a temporary folder (its path is returned and kept until
 * e2e_cleanup) and points WEFT_PLUGIN_PATH at the built plugins, shipped
 * then test ones. */
const char *e2e_setup(const char *name);
/* Removes the temporary folder: 0, or -1 (and a message) if it stays. */
int e2e_cleanup(void);
/* e2e_cleanup as a cmocka group teardown. */
int e2e_teardown(void **state);

/* Runs weft with args (NULL-terminated), stdin from /dev/null.  Fails the
 * test if stdout or stderr could not be captured. */
e2e_outcome_t e2e_run(const char *const *args);
#define E2E_RUN(...) e2e_run((const char *const[]){__VA_ARGS__, NULL})
/* e2e_run, started as opt says. */
e2e_outcome_t e2e_run_with(const char *const *args, const e2e_options_t *opt);
#define E2E_RUN_WITH(opt, ...)                                                           \
    e2e_run_with((const char *const[]){__VA_ARGS__, NULL}, (opt))
void e2e_free(e2e_outcome_t *o);

/* argv for starting weft yourself: $WEFT_EXE, then args (NULL-terminated,
 * at most E2E_ARGV_MAX - 2 of them), then NULL. */
enum { E2E_ARGV_MAX = 64 };
void e2e_weft_argv(const char *argv[E2E_ARGV_MAX], const char *const *args);

/* Starts weft with args in the background, stdin, stdout and stderr on
 * /dev/null; returns its pid (fails the test if fork fails). */
int e2e_spawn(const char *const *args);
#define E2E_SPAWN(...) e2e_spawn((const char *const[]){__VA_ARGS__, NULL})
/* Waits for pid: its exit status, or 128 + signal. */
int e2e_wait(int pid);
/* Sleeps s seconds, resuming after signals. */
void e2e_sleep(double s);

/* Fails the test unless the exit status is `status` and stderr contains
 * `in_err` (if not NULL), printing both. */
void e2e_expect(const e2e_outcome_t *o, int status, const char *in_err);

/* Paths in the temporary folder come from eight static buffers used in
 * turn (shared by e2e_path, e2e_pathf and the writers): copy one that must
 * outlive the next eight. */

/* Writes `body` to NAME in the temporary folder; returns its path. */
const char *e2e_write(const char *name, const char *body);
/* The same, the body formatted as by printf. */
const char *e2e_writef(const char *name, const char *fmt, ...) WEFT_PRINTF(2, 3);
/* Writes len bytes (NULs and all) to NAME; returns its path. */
const char *e2e_write_bytes(const char *name, const void *data, size_t len);
/* tmp/NAME. */
const char *e2e_path(const char *name);
/* tmp/ then the name formatted as by printf. */
const char *e2e_pathf(const char *fmt, ...) WEFT_PRINTF(1, 2);

/* rm -rf path: 0, or -1 if that failed. */
int e2e_remove(const char *path);

/* True once pid is gone or a zombie (its reaper, e.g. a container's PID 1,
 * may never reap it): the process no longer runs. */
bool e2e_process_dead(int pid);

/* A whole file, NUL-terminated (size in *len if not NULL), or NULL. */
char *e2e_slurp(const char *path, size_t *len);

/* ---- processes a job starts (signal and orphan tests) ---- */

/* The pid a child wrote into tmp/NAME as a line (waits up to 10 s for
 * it), or 0. */
int e2e_pid_in(const char *name);
/* The first n pids children appended to tmp/NAME, one a line (waits up to
 * 10 s for them); false when they did not all come. */
bool e2e_pids_in_file(const char *name, int *out, size_t n);
/* Fails unless every one of the n pids ends within 3 s; the survivors are
 * killed first, so that a failure leaves nothing behind.  what names them
 * in the message ("... (pid N) outlived it"). */
void e2e_expect_all_gone(const int *pids, size_t n, const char *what);
/* Starts weft with args in the background: stdin and stdout /dev/null,
 * stderr into tmp/weft.err, no other descriptor; SIGHUP ignored (as by
 * nohup) or at its default. */
int e2e_spawn_logged(bool nohup, const char *const *args);
#define E2E_SPAWN_LOGGED(nohup, ...)                                                     \
    e2e_spawn_logged((nohup), (const char *const[]){__VA_ARGS__, NULL})
/* pid's exit status once it ends, within `limit` seconds (*exited: by
 * exit(), not killed by a signal), or -1: it was still running, and has
 * been SIGKILLed. */
int e2e_wait_for(int pid, double limit, bool *exited);

#endif
