/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every room uses: one home, so that none is copied.  Only
 * libc: util.c is also part of libweft.so.
 */
#ifndef WEFT_CORE_UTIL_H
#define WEFT_CORE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds (a vDSO call, no syscall). */
static inline int64_t weft__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The same clock in seconds. */
static inline double weft__mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CLOCK_REALTIME in seconds: wall-clock dates (summaries), never durations. */
static inline double weft__real_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- messages into a caller's buffer ------------------------------------- */

/* Writes the message into buf (truncated, always terminated); a NULL buf
 * or a size of 0 takes nothing, so callers may pass on what they got. */
void weft__vmsgf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void weft__msgf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* weft__msgf, then returns rc: `return weft__failf(-EINVAL, err, errlen, ...)`. */
int weft__failf(int rc, char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds to the end of the message already in buf (for lists and "WHERE: "
 * prefixes), truncated the same way. */
void weft__vmsg_appendf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void weft__msg_appendf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- files ---------------------------------------------------------------- */

/* Creates the temporary file `path` afresh (open's flags, plus O_CREAT |
 * O_EXCL | O_NOFOLLOW | O_CLOEXEC) and holds an exclusive flock on it
 * until the fd is closed: never through a symlink, never into a file
 * already there.  A name already there is removed first (unlink removes a
 * link, not what it points to) when it is a crashed run's leftover or
 * anything planted; when a live process holds its lock (another run writes
 * the same output) it is left alone: -1 with errno EWOULDBLOCK.  A holder
 * renames the file into place, or unlinks it, before closing it, so that
 * the name is never taken over while still in use.  The fd, or -1 with
 * errno (EISDIR for a folder). */
int weft__open_temp(const char *path, int flags, unsigned mode);
/* The descriptor of this process that path names, following symbolic
 * links: /dev/stdout (-> /proc/self/fd/1), /dev/stderr, /dev/fd/N,
 * /proc/self/fd/N, or a link to one; else -1.  Such a name is written to
 * through that descriptor, never opened afresh, replaced or given a file
 * beside it: /dev/stdout may be a shell's redirect into a regular file,
 * and renaming over the name would replace /dev/stdout itself. */
int weft__path_fd(const char *path);
/* fsyncs the folder holding path, so that a new or renamed entry in it is
 * durable.  0 or -errno. */
int weft__sync_folder_of(const char *path);
/* Whether another open file holds a flock on path (a run using it now),
 * and the holder's pid when /proc/locks tells it (else 0). */
bool weft__in_use(const char *path, long *pid);
/* The pid holding a flock on the file open on fd (by /proc/locks), or 0. */
long weft__lock_holder(int fd);

/* ---- paths ----------------------------------------------------------------- */

/* dir '/' name into out, without a second '/' when dir is empty or ends
 * with one.  0, or -ENAMETOOLONG when it does not fit in size bytes. */
int weft__path_join(char *out, size_t size, const char *dir, const char *name);
/* The same, allocated (free it); NULL when out of memory. */
char *weft__path_join_dup(const char *dir, const char *name);
/* p made absolute against dir (no normalisation, nothing need exist): an
 * absolute p as it is, "./" prefixes dropped, "." is dir itself; without
 * a dir (NULL or "") p as given.  Allocated; NULL when out of memory. */
char *weft__path_resolve(const char *dir, const char *p);

/* ---- suggestions ------------------------------------------------------ */

/* Candidates longer than this are never suggested (keeps the row on the
 * stack; no key, argument or placeholder name comes close). */
#define WEFT__SUGGEST_MAX 64

/* The candidate closest to `word` by edit distance (optimal string
 * alignment: a swap of two adjacent letters is one edit), if close enough
 * to be worth suggesting ("did you mean ...?"); else NULL. */
const char *weft__suggest(const char *word, const char *const *candidates, size_t n);

#endif
