/* SPDX-License-Identifier: MIT */
/*
 * libiofault.so: an LD_PRELOAD shim that makes chosen I/O calls fail, so the
 * tests can check that weft notices a full disk or an I/O error and says
 * which file and why.
 *
 *   WEFT_IOFAULT='op=write,nth=3,err=ENOSPC,path=results' LD_PRELOAD=libiofault.so prog
 *
 * The 3rd `write` on an fd whose path (readlink of /proc/self/fd/N) contains
 * "results" fails with ENOSPC.  A rule is comma-separated key=value pairs;
 * several rules are separated by ';' (at most 16):
 *   op     write | pwrite (also pwrite64) | writev | fsync | fdatasync |
 *          rename | renameat | close | open (open, openat, creat and their
 *          64 variants, only calls with O_CREAT)                  required
 *   nth    the matching call that fails, 1-based                default 1
 *   every  1: every matching call from the nth on fails         default 0
 *   err    an errno name: ENOSPC EIO EDQUOT EFBIG EROFS EACCES EPERM
 *          EINTR EAGAIN EBADF EINVAL ENOMEM EMFILE ENFILE        default EIO
 *   short  1 (write, pwrite, writev only): the call writes only half its
 *          bytes (the first half, at least 1) and returns that count
 *          instead of failing; a correct caller writes the rest
 *   path   substring of the file's absolute path, or with a trailing '$'
 *          its end ("path=out.json$" is not "out.json.journal"); for
 *          rename(at) either name, relative names made absolute; empty or
 *          absent: any file
 * Each rule counts only the calls it matches (op and path), with an atomic
 * counter, so counts are exact across threads.  A close that "fails" still
 * closes the fd, as Linux's close does.  A bad WEFT_IOFAULT prints a
 * message and exits with status 99 before main runs.
 *
 * Only calls that go through the dynamic symbol are seen: stdio's own
 * writes, and calls inside libc, are not.  The fd's path is read with
 * readlink on every matching call (no cache: an fd closed inside libc, e.g.
 * by fclose, or replaced by dup2 would leave a stale entry); the write path
 * allocates nothing and never calls back into itself.
 *
 * Under AddressSanitizer the ASan runtime must come first in the initial
 * library list, and a preloaded shim comes before the executable's own
 * libasan.  Either preload the runtime first
 * (LD_PRELOAD="$(gcc -print-file-name=libasan.so):libiofault.so") or, as
 * the tests do, set ASAN_OPTIONS=verify_asan_link_order=0 and prepend the
 * shim to LD_PRELOAD.
 */
/* Both would rename the functions defined here (open -> open64, or
 * inline wrappers): this file defines each symbol by its own name. */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef enum op {
    OP_WRITE,
    OP_PWRITE,
    OP_WRITEV,
    OP_FSYNC,
    OP_FDATASYNC,
    OP_RENAME,
    OP_RENAMEAT,
    OP_CLOSE,
    OP_OPEN,
    N_OPS
} op_t;

static const char *const op_names[N_OPS] = {
    [OP_WRITE] = "write",       [OP_PWRITE] = "pwrite",       [OP_WRITEV] = "writev",
    [OP_FSYNC] = "fsync",       [OP_FDATASYNC] = "fdatasync", [OP_RENAME] = "rename",
    [OP_RENAMEAT] = "renameat", [OP_CLOSE] = "close",         [OP_OPEN] = "open",
};

static const struct {
    const char *name;
    int value;
} errnos[] = {
    {"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EDQUOT", EDQUOT}, {"EFBIG", EFBIG},
    {"EROFS", EROFS},   {"EACCES", EACCES}, {"EPERM", EPERM},   {"EINTR", EINTR},
    {"EAGAIN", EAGAIN}, {"EBADF", EBADF},   {"EINVAL", EINVAL}, {"ENOMEM", ENOMEM},
    {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
};

enum { MAX_RULES = 16, MAX_PATTERN = 256 };

typedef struct rule {
    op_t op;
    uint64_t nth;
    bool every;
    bool half; /* short=1 */
    int err;
    char path[MAX_PATTERN]; /* "" matches any file */
    size_t path_len;
    bool anchored; /* path must end the file's path */
    atomic_uint_fast64_t calls;
} rule_t;

/* Written once by the constructor, before main and before any thread the
 * program starts; read-only afterwards (except the counters). */
static rule_t rules[MAX_RULES];
static int n_rules;
static bool rules_for[N_OPS]; /* any rule for this op: the fast path */

/* ---- the real functions ---------------------------------------------- */

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*fd_fn)(int);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*creat_fn)(const char *, mode_t);

enum {
    R_WRITE,
    R_PWRITE,
    R_PWRITE64,
    R_WRITEV,
    R_FSYNC,
    R_FDATASYNC,
    R_RENAME,
    R_RENAMEAT,
    R_CLOSE,
    R_OPEN,
    R_OPEN64,
    R_OPENAT,
    R_OPENAT64,
    R_CREAT,
    R_CREAT64,
    N_REAL
};
static const char *const real_names[N_REAL] = {
    "write",     "pwrite", "pwrite64", "writev", "fsync",
    "fdatasync", "rename", "renameat", "close",  "open",
    "open64",    "openat", "openat64", "creat",  "creat64",
};
/* Resolved by the constructor; a call that comes earlier (another
 * library's constructor) resolves its own entry.  Racing resolvers store
 * the same value.  Kept as a generic function pointer, converted back to
 * the real type at each call (a function-to-function pointer cast is
 * valid C; dlsym's object pointer is converted once, through memcpy). */
typedef void (*any_fn)(void);
static _Atomic(any_fn) real_fns[N_REAL];

static any_fn real(int which)
{
    any_fn f = atomic_load_explicit(&real_fns[which], memory_order_acquire);
    if (!f) {
        void *p = dlsym(RTLD_NEXT, real_names[which]);
        if (!p) /* nothing to fall back on: stop rather than recurse */
            abort();
        memcpy(&f, &p, sizeof f);
        atomic_store_explicit(&real_fns[which], f, memory_order_release);
    }
    return f;
}

/* ---- configuration ------------------------------------------------------ */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t ignored = ((write_fn)real(R_WRITE))(2, buf, (size_t)n);
    (void)ignored;
    _exit(99);
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool word_is(const char *s, size_t len, const char *w)
{
    return strlen(w) == len && memcmp(s, w, len) == 0;
}

/* One rule, text [s, s + len). */
static void parse_rule(const char *spec, const char *s, size_t len, rule_t *r)
{
    bool have_op = false;
    *r = (rule_t){.nth = 1, .err = EIO};
    const char *end = s + len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *pe = comma ? comma : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        if (pe == s) { /* empty pair: ",," */
            s = pe + 1;
            continue;
        }
        if (!eq)
            die("iofault: WEFT_IOFAULT=\"%s\": \"%.*s\" is not key=value", spec,
                (int)(pe - s), s);
        size_t kl = (size_t)(eq - s), vl = (size_t)(pe - eq - 1);
        const char *v = eq + 1;
        uint64_t u;
        if (word_is(s, kl, "op")) {
            int k = 0;
            while (k < N_OPS && !word_is(v, vl, op_names[k]))
                k++;
            if (k == N_OPS)
                die("iofault: WEFT_IOFAULT=\"%s\": unknown op \"%.*s\"", spec, (int)vl,
                    v);
            r->op = (op_t)k;
            have_op = true;
        } else if (word_is(s, kl, "nth")) {
            if (!parse_u64(v, vl, &u) || u == 0)
                die("iofault: WEFT_IOFAULT=\"%s\": nth wants a number >= 1", spec);
            r->nth = u;
        } else if (word_is(s, kl, "every") || word_is(s, kl, "short")) {
            if (!parse_u64(v, vl, &u) || u > 1)
                die("iofault: WEFT_IOFAULT=\"%s\": %.*s wants 0 or 1", spec, (int)kl, s);
            if (*s == 'e')
                r->every = u;
            else
                r->half = u;
        } else if (word_is(s, kl, "err")) {
            size_t k = 0;
            while (k < sizeof errnos / sizeof errnos[0] &&
                   !word_is(v, vl, errnos[k].name))
                k++;
            if (k == sizeof errnos / sizeof errnos[0])
                die("iofault: WEFT_IOFAULT=\"%s\": unknown err \"%.*s\"", spec, (int)vl,
                    v);
            r->err = errnos[k].value;
        } else if (word_is(s, kl, "path")) {
            if (vl >= MAX_PATTERN)
                die("iofault: WEFT_IOFAULT=\"%s\": path longer than %d bytes", spec,
                    MAX_PATTERN - 1);
            r->anchored = vl > 0 && v[vl - 1] == '$';
            r->path_len = vl - r->anchored;
            memcpy(r->path, v, r->path_len);
            r->path[r->path_len] = '\0';
        } else {
            die("iofault: WEFT_IOFAULT=\"%s\": unknown key \"%.*s\"", spec, (int)kl, s);
        }
        s = comma ? comma + 1 : end;
    }
    if (!have_op)
        die("iofault: WEFT_IOFAULT=\"%s\": a rule has no op=", spec);
    if (r->half && r->op != OP_WRITE && r->op != OP_PWRITE && r->op != OP_WRITEV)
        die("iofault: WEFT_IOFAULT=\"%s\": short=1 is for write, pwrite and writev only",
            spec);
    atomic_init(&r->calls, 0);
}

__attribute__((constructor(101))) static void iofault_init(void)
{
    for (int k = 0; k < N_REAL; k++)
        (void)real(k);
    const char *spec = getenv("WEFT_IOFAULT");
    if (!spec)
        return;
    const char *s = spec;
    while (*s) {
        size_t len = strcspn(s, ";");
        if (len > 0) {
            if (n_rules == MAX_RULES)
                die("iofault: WEFT_IOFAULT=\"%s\": more than %d rules", spec, MAX_RULES);
            parse_rule(spec, s, len, &rules[n_rules]);
            rules_for[rules[n_rules].op] = true;
            n_rules++;
        }
        s += len;
        if (*s == ';')
            s++;
    }
}

/* ---- matching ------------------------------------------------------------ */

/* The absolute path of fd into buf (PATH_MAX), or "" if unknown.  No
 * stdio: this runs inside write(). */
static void fd_path(int fd, char *buf)
{
    char link[32] = "/proc/self/fd/";
    char digits[12];
    int nd = 0;
    unsigned u = (unsigned)fd;
    do
        digits[nd++] = (char)('0' + u % 10);
    while ((u /= 10) && nd < (int)sizeof digits);
    size_t len = strlen(link);
    while (nd > 0)
        link[len++] = digits[--nd];
    link[len] = '\0';
    ssize_t n = readlink(link, buf, PATH_MAX - 1);
    buf[n > 0 ? n : 0] = '\0';
}

/* name made absolute against dirfd (AT_FDCWD: the cwd) into buf (PATH_MAX);
 * truncated if too long, which only costs a match. */
static void abs_path(int dirfd, const char *name, char *buf)
{
    size_t len = 0;
    buf[0] = '\0';
    if (name[0] != '/') {
        if (dirfd == AT_FDCWD) {
            if (!getcwd(buf, PATH_MAX))
                buf[0] = '\0';
        } else {
            fd_path(dirfd, buf);
        }
        len = strlen(buf);
        if (len > 0 && len < PATH_MAX - 1 && buf[len - 1] != '/')
            buf[len++] = '/';
    }
    size_t nl = strnlen(name, PATH_MAX - 1 - len);
    memcpy(buf + len, name, nl);
    buf[len + nl] = '\0';
}

/* Counts the call against every rule for op whose path matches one of the
 * paths (NULL entries skipped) and returns the first rule that fires, or
 * NULL.  The paths are computed only when some rule needs them. */
static bool path_matches(const rule_t *r, const char *path)
{
    if (!r->anchored)
        return strstr(path, r->path) != NULL;
    size_t len = strlen(path);
    return len >= r->path_len &&
           memcmp(path + len - r->path_len, r->path, r->path_len) == 0;
}

typedef struct subject {
    int fd;       /* >= 0: the path is the fd's                   */
    int dirfd[2]; /* else names[i] relative to dirfd[i]            */
    const char *names[2];
} subject_t;

static const rule_t *match(op_t op, const subject_t *sub)
{
    if (!rules_for[op])
        return NULL;
    int saved_errno = errno; /* readlink may set it; the caller's call must decide */
    char paths[2][PATH_MAX];
    bool have_paths = false;
    const rule_t *fire = NULL;
    for (int k = 0; k < n_rules; k++) {
        rule_t *r = &rules[k];
        if (r->op != op)
            continue;
        if (r->path[0]) {
            if (!have_paths) {
                paths[0][0] = paths[1][0] = '\0';
                if (sub->fd >= 0) {
                    fd_path(sub->fd, paths[0]);
                } else {
                    for (int i = 0; i < 2; i++)
                        if (sub->names[i])
                            abs_path(sub->dirfd[i], sub->names[i], paths[i]);
                }
                have_paths = true;
            }
            if (!path_matches(r, paths[0]) && !(paths[1][0] && path_matches(r, paths[1])))
                continue;
        }
        uint64_t n = atomic_fetch_add_explicit(&r->calls, 1, memory_order_relaxed) + 1;
        if (!fire && (n == r->nth || (r->every && n > r->nth)))
            fire = r;
    }
    errno = saved_errno;
    return fire;
}

static const rule_t *match_fd(op_t op, int fd)
{
    return match(op, &(subject_t){.fd = fd});
}

static int fail(const rule_t *r)
{
    errno = r->err;
    return -1;
}

/* ---- the interposed functions -------------------------------------------- */

static size_t half_of(size_t n)
{
    return n > 1 ? n / 2 : n;
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    const rule_t *r = match_fd(OP_WRITE, fd);
    if (r && r->half)
        n = half_of(n);
    else if (r)
        return fail(r);
    return ((write_fn)real(R_WRITE))(fd, buf, n);
}

static ssize_t do_pwrite(int which, int fd, const void *buf, size_t n, off_t off)
{
    const rule_t *r = match_fd(OP_PWRITE, fd);
    if (r && r->half)
        n = half_of(n);
    else if (r)
        return fail(r);
    return ((pwrite_fn)real(which))(fd, buf, n, off);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return do_pwrite(R_PWRITE, fd, buf, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return do_pwrite(R_PWRITE64, fd, buf, n, off);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    const rule_t *r = match_fd(OP_WRITEV, fd);
    if (r && !r->half)
        return fail(r);
    if (r && iovcnt > 0) {
        /* The first half of the bytes, in at most 64 vectors (fewer bytes
         * is still a short write). */
        enum { MAX_IOV = 64 };
        struct iovec part[MAX_IOV];
        size_t total = 0;
        for (int i = 0; i < iovcnt; i++)
            total += iov[i].iov_len;
        size_t want = half_of(total);
        int k = 0;
        while (want > 0 && k < iovcnt && k < MAX_IOV) {
            part[k] = iov[k];
            if (part[k].iov_len > want)
                part[k].iov_len = want;
            want -= part[k].iov_len;
            k++;
        }
        return ((writev_fn)real(R_WRITEV))(fd, part, k);
    }
    return ((writev_fn)real(R_WRITEV))(fd, iov, iovcnt);
}

EXPORT int fsync(int fd)
{
    const rule_t *r = match_fd(OP_FSYNC, fd);
    return r ? fail(r) : ((fd_fn)real(R_FSYNC))(fd);
}

EXPORT int fdatasync(int fd)
{
    const rule_t *r = match_fd(OP_FDATASYNC, fd);
    return r ? fail(r) : ((fd_fn)real(R_FDATASYNC))(fd);
}

EXPORT int close(int fd)
{
    const rule_t *r = match_fd(OP_CLOSE, fd);
    int rc = ((fd_fn)real(R_CLOSE))(fd);
    /* Linux releases the fd even when close reports an error. */
    return r ? fail(r) : rc;
}

EXPORT int rename(const char *from, const char *to)
{
    subject_t sub = {.fd = -1, .dirfd = {AT_FDCWD, AT_FDCWD}, .names = {from, to}};
    const rule_t *r = match(OP_RENAME, &sub);
    return r ? fail(r) : ((rename_fn)real(R_RENAME))(from, to);
}

EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    subject_t sub = {.fd = -1, .dirfd = {fromfd, tofd}, .names = {from, to}};
    const rule_t *r = match(OP_RENAMEAT, &sub);
    return r ? fail(r) : ((renameat_fn)real(R_RENAMEAT))(fromfd, from, tofd, to);
}

/* O_CREAT opens only; the mode argument exists when O_CREAT or O_TMPFILE. */
static const rule_t *match_open(int dirfd, const char *path, int flags)
{
    if (!(flags & O_CREAT))
        return NULL;
    subject_t sub = {.fd = -1, .dirfd = {dirfd, AT_FDCWD}, .names = {path, NULL}};
    return match(OP_OPEN, &sub);
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int)
                                                                 : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    const rule_t *r = match_open(AT_FDCWD, path, flags);
    return r ? fail(r) : ((open_fn)real(R_OPEN))(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    const rule_t *r = match_open(AT_FDCWD, path, flags);
    return r ? fail(r) : ((open_fn)real(R_OPEN64))(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    const rule_t *r = match_open(dirfd, path, flags);
    return r ? fail(r) : ((openat_fn)real(R_OPENAT))(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    const rule_t *r = match_open(dirfd, path, flags);
    return r ? fail(r) : ((openat_fn)real(R_OPENAT64))(dirfd, path, flags, mode);
}

EXPORT int creat(const char *path, mode_t mode)
{
    const rule_t *r = match_open(AT_FDCWD, path, O_CREAT);
    return r ? fail(r) : ((creat_fn)real(R_CREAT))(path, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
    const rule_t *r = match_open(AT_FDCWD, path, O_CREAT);
    return r ? fail(r) : ((creat_fn)real(R_CREAT64))(path, mode);
}
