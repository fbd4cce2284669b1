/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"
#include "weft/weft.h"

#define WEFT_STR_(x) #x
#define WEFT_STR(x) WEFT_STR_(x)

WEFT_API const char *weft_version(void)
{
    return WEFT_STR(WEFT_VERSION_MAJOR) "." WEFT_STR(WEFT_VERSION_MINOR) "." WEFT_STR(
        WEFT_VERSION_PATCH);
}

WEFT_API const char *weft_strerror(int err)
{
    if (err == 0)
        return "success";
    /* strerrordesc_np reads a static table: thread-safe, unlike strerror. */
    const char *s = strerrordesc_np(err < 0 ? -err : err);
    return s ? s : "unknown error";
}

WEFT_API unsigned weft_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

/* ---- messages ------------------------------------------------------------ */

void weft__vmsgf(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (!buf || size == 0)
        return;
    vsnprintf(buf, size, fmt, ap);
}

void weft__msgf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__vmsgf(buf, size, fmt, ap);
    va_end(ap);
}

int weft__failf(int rc, char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__vmsgf(buf, size, fmt, ap);
    va_end(ap);
    return rc;
}

void weft__vmsg_appendf(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (!buf || size == 0)
        return;
    size_t used = strnlen(buf, size - 1);
    vsnprintf(buf + used, size - used, fmt, ap);
}

void weft__msg_appendf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__vmsg_appendf(buf, size, fmt, ap);
    va_end(ap);
}

/* ---- paths --------------------------------------------------------------- */

int weft__path_join(char *out, size_t size, const char *dir, const char *name)
{
    size_t nd = strlen(dir), nn = strlen(name);
    bool slash = nd > 0 && dir[nd - 1] != '/';
    if (nd + slash + nn >= size) {
        if (size > 0)
            out[0] = '\0';
        return -ENAMETOOLONG;
    }
    memcpy(out, dir, nd);
    if (slash)
        out[nd] = '/';
    memcpy(out + nd + slash, name, nn + 1);
    return 0;
}

char *weft__path_join_dup(const char *dir, const char *name)
{
    size_t size = strlen(dir) + 1 + strlen(name) + 1;
    char *out = malloc(size);
    if (out)
        weft__path_join(out, size, dir, name); /* sized to fit */
    return out;
}

char *weft__path_resolve(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir || !dir[0])
        return strdup(p);
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    if (p[0] == '\0' || strcmp(p, ".") == 0) {
        /* dir itself, without its trailing '/' unless it is "/" */
        size_t nd = strlen(dir);
        if (nd > 1 && dir[nd - 1] == '/')
            nd--;
        return strndup(dir, nd);
    }
    return weft__path_join_dup(dir, p);
}

/* Whether fd is still the file named path (not replaced, not removed). */
static bool still_named(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/* flock without blocking, again after a signal: 0 or -1 with errno. */
static int lock_now(int fd)
{
    int rc;
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    return rc;
}

/* What is at path already: a live run's temporary (its lock is held:
 * EWOULDBLOCK), or a dead run's leftover or anything planted, removed
 * (a stale file only while we hold its lock, so that a run which just
 * made it anew is never robbed of it).  0 (try to create again) or -1. */
static int clear_name(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) /* a symlink, a FIFO, a device: never opened */
        return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    int old = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (old < 0)
        return errno == ENOENT || errno == ELOOP ? 0 : -1; /* swapped meanwhile: again */
    int rc = 0;
    if (lock_now(old) != 0)
        rc = -1; /* EWOULDBLOCK: a live run writes it */
    else if (still_named(old, path) && unlink(path) != 0 && errno != ENOENT)
        rc = -1;
    int e = errno;
    close(old); /* after the unlink: the lock covered it */
    errno = e;
    return rc;
}

int weft__open_temp(const char *path, int flags, unsigned mode)
{
    for (int tries = 0; tries < 8; tries++) {
        int fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (fd < 0) {
            if (errno != EEXIST || clear_name(path) != 0)
                return -1;
            continue;
        }
        /* Between the create and the lock another run may have taken it
         * for a leftover: the lock is refused, or the name is no longer
         * this file.  Either way it is that run's now. */
        if (lock_now(fd) == 0 && still_named(fd, path))
            return fd;
        int e = errno == EWOULDBLOCK ? EWOULDBLOCK : 0;
        close(fd);
        if (e) {
            errno = e;
            return -1;
        }
    }
    errno = EEXIST; /* someone keeps creating it */
    return -1;
}

/* The descriptor a name of the kind /dev/stdout, /dev/fd/N or
 * /proc/self/fd/N stands for, or -1. */
static int fd_name(const char *p)
{
    static const char *const std[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
    for (int k = 0; k < 3; k++)
        if (strcmp(p, std[k]) == 0)
            return k;
    char self[40];
    snprintf(self, sizeof self, "/proc/%ld/fd/", (long)getpid());
    const char *const dirs[] = {"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/", self};
    for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++) {
        size_t n = strlen(dirs[k]);
        if (strncmp(p, dirs[k], n) != 0)
            continue;
        const char *d = p + n;
        long fd = 0;
        for (; *d >= '0' && *d <= '9' && fd < 1000000; d++)
            fd = fd * 10 + (*d - '0');
        return d > p + n && *d == '\0' && fd < 1000000 ? (int)fd : -1;
    }
    return -1;
}

int weft__path_fd(const char *path)
{
    char cur[PATH_MAX];
    if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur)
        return -1;
    /* Each link read as text, so that /dev/stdout -> /proc/self/fd/1 is
     * seen for what it names (the kernel would hand back "pipe:[N]" or the
     * file behind it).  40: the kernel's own limit on links in a path. */
    for (int hop = 0; hop < 40; hop++) {
        int fd = fd_name(cur);
        if (fd >= 0)
            return fd;
        char target[PATH_MAX];
        ssize_t n = readlink(cur, target, sizeof target - 1);
        if (n <= 0)
            return -1; /* not a link: a name of its own */
        target[n] = '\0';
        if (target[0] == '/') {
            memcpy(cur, target, (size_t)n + 1);
        } else { /* relative to the link's folder */
            char *slash = strrchr(cur, '/');
            size_t dir = slash ? (size_t)(slash - cur) + 1 : 0;
            if (dir + (size_t)n >= sizeof cur)
                return -1;
            memcpy(cur + dir, target, (size_t)n + 1);
        }
    }
    return -1;
}

int weft__sync_folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!dir)
        return -ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    /* EINVAL: a file system that cannot sync folders; nothing to wait for. */
    int rc = fsync(fd) != 0 && errno != EINVAL ? -errno : 0;
    close(fd);
    return rc;
}

/* The pid holding a flock on (dev, ino), from /proc/locks, or 0. */
static long lock_holder(dev_t dev, ino_t ino)
{
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return 0;
    char line[256];
    long pid = 0;
    while (!pid && fgets(line, sizeof line, f)) {
        /* "1: FLOCK  ADVISORY  WRITE 355 fe:00:10952889 0 EOF"; blocked
         * waiters' lines have "->" after the number: not holders. */
        char kind[16], arrow[4];
        long p;
        unsigned maj, min;
        unsigned long long i;
        if (sscanf(line, "%*d: %3s", arrow) == 1 && strcmp(arrow, "->") == 0)
            continue;
        if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", kind, &p, &maj, &min, &i) == 5 &&
            strcmp(kind, "FLOCK") == 0 && maj == major(dev) && min == minor(dev) &&
            i == (unsigned long long)ino)
            pid = p;
    }
    fclose(f);
    return pid;
}

long weft__lock_holder(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? lock_holder(st.st_dev, st.st_ino) : 0;
}

bool weft__in_use(const char *path, long *pid)
{
    *pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    bool used = false;
    int rc;
    while ((rc = flock(fd, LOCK_SH | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc != 0 && errno == EWOULDBLOCK) {
        used = true;
        *pid = weft__lock_holder(fd);
    }
    close(fd); /* drops our shared lock, if we got it */
    return used;
}

/* ---- suggestions ------------------------------------------------------- */


/* Optimal string alignment distance: Levenshtein plus the swap of two
 * adjacent letters as one edit, the commonest typo ("stpe" for "step"). */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t rows[3][WEFT__SUGGEST_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= nb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev, prev = cur, cur = t;
    }
    return prev[nb];
}

const char *weft__suggest(const char *word, const char *const *candidates, size_t n)
{
    if (!word)
        return NULL;
    size_t nw = strlen(word);
    size_t limit = nw / 3 > 1 ? nw / 3 : 1;
    size_t best_d = limit + 1;
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *c = candidates[i];
        size_t nc = c ? strlen(c) : WEFT__SUGGEST_MAX + 1;
        if (nc > WEFT__SUGGEST_MAX || (nc > nw ? nc - nw : nw - nc) > limit)
            continue; /* the length difference alone is too far */
        size_t d = edit_distance(word, nw, c, nc);
        if (d < best_d) { /* strict: ties keep the first */
            best_d = d;
            best = c;
        }
    }
    return best;
}
