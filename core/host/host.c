/* SPDX-License-Identifier: MIT */
/* The table of runner services a plugin receives in init(). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "children.h"
#include "loader.h"
#include "outbatch.h"
#include "outdir.h"
#include "template.h"
#include "util.h"

_Static_assert(WEFT_OUT_NAME_MAX == NAME_MAX, "weft_outfile_t is sized for NAME_MAX");
_Static_assert(WEFT_OUT_PATH_MAX == PATH_MAX, "weft_outfile_t is sized for PATH_MAX");

static int host_failf(weft_result_t *r, const char *fmt, ...) WEFT_PRINTF(2, 3);
static void host_logf(const weft_host_t *host, const char *fmt, ...) WEFT_PRINTF(2, 3);

static int host_failf(weft_result_t *r, const char *fmt, ...)
{
    if (r) {
        va_list ap;
        va_start(ap, fmt);
        weft__vmsgf(r->msg, r->msg_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void host_logf(const weft_host_t *host, const char *fmt, ...)
{
    /* pub is the first member, so the plugin's pointer is ours. */
    const weft__host_t *h = (const weft__host_t *)host;
    if (h && h->log_quiet)
        return;
    const char *name = h && h->plugin_name ? h->plugin_name : "plugin";
    char stackbuf[1024];
    char *line = stackbuf;
    size_t cap = sizeof stackbuf;
    va_list ap;

    int head = snprintf(NULL, 0, "weft: %s: ", name);
    va_start(ap, fmt);
    int body = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (head < 0 || body < 0)
        return;
    /* Too long for the stack: use the heap; if that fails, the truncated
     * line still goes out. */
    size_t need = (size_t)head + (size_t)body + 2; /* '\n' and NUL */
    if (need > cap) {
        char *heap = malloc(need);
        if (heap) {
            line = heap;
            cap = need;
        }
    }
    size_t len = (size_t)snprintf(line, cap, "weft: %s: ", name);
    if (len < cap) {
        va_start(ap, fmt);
        vsnprintf(line + len, cap - len, fmt, ap);
        va_end(ap);
    }

    /* One line per call: drop the plugin's own trailing newlines. */
    len = strlen(line);
    while (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > cap - 2)
        len = cap - 2;
    line[len] = '\n';
    line[len + 1] = '\0';

    /* Through the runner's progress (it erases its line first), or a
     * single fputs: stdio locks the stream for the call, so lines from
     * concurrent callers never interleave. */
    if (h && h->log_line && h->log_pid == (long)getpid())
        h->log_line(h->log_arg, line, len + 1);
    else if (!(h && h->log_line && h->log_fd >= 0 && len + 1 <= PIPE_BUF &&
               write(h->log_fd, line, len + 1) == (ssize_t)(len + 1)))
        fputs(line, stderr);
    if (line != stackbuf)
        free(line);
}

static void host_rng_init(const weft_host_t *host, weft_rng_t *rng,
                          const weft_item_t *item, uint64_t stream)
{
    weft__rng_init(rng, host->run_seed, stream, item->index);
}

/* ---- should_stop ------------------------------------------------------ */

/* The deadline of the item this worker runs (0: none), set by the runner
 * through weft__host_item_begin. */
static _Thread_local double weft__item_deadline;

double weft__host_now(void)
{
    return weft__mono_s();
}

void weft__host_item_begin(double deadline_or_0)
{
    weft__item_deadline = deadline_or_0;
}

static bool host_should_stop(const weft_host_t *host)
{
    const weft__host_t *h = (const weft__host_t *)host;
    /* Relaxed: the flag carries no data with it; a stale read costs one
     * more poll. */
    if (h->stop && atomic_load_explicit(h->stop, memory_order_relaxed) >= 2)
        return true;
    double deadline = weft__item_deadline;
    return deadline > 0 && weft__host_now() >= deadline;
}

/* ---- child processes --------------------------------------------------- */

static int host_child_started(const weft_host_t *host, long pid)
{
    (void)host;
    return pid > 0 && pid <= INT32_MAX && weft__children_add((pid_t)pid) == 0 ? 0 : -1;
}

_Thread_local bool weft__host_interrupted;

static void host_child_ended(const weft_host_t *host, long pid)
{
    (void)host;
    if (pid > 0 && pid <= INT32_MAX && weft__children_remove((pid_t)pid))
        weft__host_interrupted = true; /* it was sent weft's first signal */
}

/* ---- atomic output files ----------------------------------------------- */

enum { OUT_OWN_DIR = 1u, OUT_OPEN = 2u };

/* Names temporaries apart across the threads (and with the pid, the runs)
 * writing into one folder. */
static atomic_ulong tmp_counter;

/* failf with "DIR/REL: what: strerror(err)"; returns -1. */
static int out_fail(const weft__host_t *h, weft_result_t *r, const char *rel, const char *what,
                    int err)
{
    char text[128];
    /* GNU strerror_r: may return a static string instead of filling text. */
    const char *why = strerror_r(err, text, sizeof text);
    const char *dir = h->outdir_path;
    int none = 0;
    if (h->write_error &&
        (err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS || err == EFBIG))
        atomic_compare_exchange_strong(h->write_error, &none, -err);
    return host_failf(r, "%s%s%s: %s: %s", dir ? dir : "", dir ? "/" : "", rel, what, why);
}

static void out_reset(weft_outfile_t *f)
{
    f->fd = -1;
    f->dirfd_ = -1;
    f->flags_ = 0;
}

static void out_close_dir(weft_outfile_t *f)
{
    if ((f->flags_ & OUT_OWN_DIR) && f->dirfd_ >= 0)
        close(f->dirfd_);
    f->dirfd_ = -1;
    f->flags_ &= ~(uint32_t)OUT_OWN_DIR;
}

/*
 * Opens (creating when missing) the folder component `name` under `dir`,
 * never following a symlink.  The new fd, or -errno.  A created folder's
 * parent is fsynced, so that a committed file's path survives a crash.
 */
static int open_subdir(int dir, const char *name, const char **what)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        *what = "open folder";
        int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT || attempt)
            return errno == ELOOP ? -ELOOP : -errno;
        *what = "create folder";
        if (mkdirat(dir, name, 0777) == 0) {
            if (fsync(dir) != 0) {
                *what = "fsync folder";
                return -errno;
            }
        } else if (errno != EEXIST) { /* EEXIST: another worker made it */
            return -errno;
        }
    }
    return -ENOENT;
}

static int host_out_open(const weft_host_t *host, const char *rel, weft_outfile_t *f,
                         weft_result_t *r)
{
    const weft__host_t *h = (const weft__host_t *)host;
    out_reset(f);
    f->rel_[0] = '\0';
    if (h->outdir_fd < 0)
        return host_failf(r, "%s: no output folder: the plugin has no output folder argument "
                             "(OUTDIR) or the runner opened none",
                          rel ? rel : "(null)");
    char why[WEFT_OUT_PATH_MAX + 128];
    if (weft__path_confine_check(rel, why, sizeof why) != 0)
        return host_failf(r, "%s", why);
    size_t len = strlen(rel); /* < PATH_MAX: checked */
    memcpy(f->rel_, rel, len + 1);

    /* Walk the folders of rel from the output folder. */
    int dir = h->outdir_fd;
    bool own = false;
    size_t start = 0;
    for (;;) {
        size_t end = start;
        while (end < len && rel[end] != '/')
            end++;
        size_t clen = end - start;
        if (end == len) { /* the file name */
            memcpy(f->name_, rel + start, clen);
            f->name_[clen] = '\0';
            break;
        }
        if (clen == 0 || (clen == 1 && rel[start] == '.')) {
            start = end + 1; /* "a//b", "./a" */
            continue;
        }
        char comp[NAME_MAX + 1];
        memcpy(comp, rel + start, clen);
        comp[clen] = '\0';
        const char *what;
        int fd = open_subdir(dir, comp, &what);
        if (own)
            close(dir);
        if (fd < 0) {
            char where[WEFT_OUT_PATH_MAX];
            snprintf(where, sizeof where, "%.*s", (int)end, rel);
            if (fd == -ELOOP || fd == -ENOTDIR)
                return host_failf(r, "%s%s%s: '%s' is a symbolic link or not a folder: "
                                     "output paths never leave the output folder",
                                  h->outdir_path ? h->outdir_path : "",
                                  h->outdir_path ? "/" : "", rel, where);
            return out_fail(h, r, where, what, -fd);
        }
        dir = fd;
        own = true;
        start = end + 1;
    }
    f->dirfd_ = dir;
    f->flags_ = own ? OUT_OWN_DIR : 0;

    /* ".NAME.weft-tmp-PID-N" (outdir.h).  O_EXCL: never an existing file,
     * never through a symlink. */
    long pid = (long)getpid();
    for (int attempt = 0;; attempt++) {
        unsigned long n = atomic_fetch_add_explicit(&tmp_counter, 1, memory_order_relaxed);
        weft__outdir_temp_name(f->tmp_, sizeof f->tmp_, f->name_, pid, n);
        f->fd = openat(dir, f->tmp_, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0666);
        if (f->fd >= 0)
            break;
        int e = errno;
        if (e == EEXIST && attempt < 8)
            continue; /* a stale temporary of a dead run with our pid */
        out_close_dir(f);
        return out_fail(h, r, rel, "create", e);
    }
    f->flags_ |= OUT_OPEN;
    return 0;
}

static int host_out_write(const weft_host_t *host, weft_outfile_t *f, const void *buf,
                          size_t n, weft_result_t *r)
{
    const weft__host_t *h = (const weft__host_t *)host;
    if (!(f->flags_ & OUT_OPEN) || f->fd < 0)
        return host_failf(r, "%s: write: the file is not open (out_open failed or it was "
                             "committed)",
                          f->rel_);
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t k = write(f->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return out_fail(h, r, f->rel_, "write", errno);
        if (k == 0) /* a regular file writes something or fails */
            return out_fail(h, r, f->rel_, "write", ENOSPC);
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void host_out_discard(const weft_host_t *host, weft_outfile_t *f)
{
    (void)host;
    if (!(f->flags_ & OUT_OPEN)) {
        f->fd = -1;
        return;
    }
    if (f->fd >= 0)
        close(f->fd);
    unlinkat(f->dirfd_, f->tmp_, 0);
    out_close_dir(f);
    out_reset(f);
}

static int host_out_commit(const weft_host_t *host, weft_outfile_t *f, weft_result_t *r)
{
    const weft__host_t *h = (const weft__host_t *)host;
    if (!(f->flags_ & OUT_OPEN) || f->fd < 0)
        return host_failf(r, "%s: commit: the file is not open (out_open failed or it was "
                             "committed)",
                          f->rel_);
    const char *what = NULL;
    int err = 0;
    weft__outbatch_t *batch = h->sync == WEFT__SYNC_BATCH ? weft__outbatch_bound() : NULL;
    /* A filesystem whose syncfs does not make files durable (FUSE, NFS,
     * SMB) gets each file synced alone. */
    if (batch && !weft__outbatch_accepts(batch, h, f->dirfd_, f->flags_ & OUT_OWN_DIR))
        batch = NULL;
    if (batch || h->sync == WEFT__SYNC_NONE) {
        /* Closed now, made durable with the batch (or never: none). */
        int closed = close(f->fd);
        f->fd = -1;
        if (closed != 0) {
            err = errno;
            unlinkat(f->dirfd_, f->tmp_, 0);
            out_close_dir(f);
            out_reset(f);
            return out_fail(h, r, f->rel_, "close", err);
        }
        if (batch) {
            /* The one rename failure that is this item's own, said now as
             * sync = item would (the batch's renames come after its
             * item returned): a folder in the way. */
            struct stat st;
            if (fstatat(f->dirfd_, f->name_, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISDIR(st.st_mode)) {
                unlinkat(f->dirfd_, f->tmp_, 0);
                out_close_dir(f);
                out_reset(f);
                return out_fail(h, r, f->rel_, "rename", EISDIR);
            }
            int rc = weft__outbatch_add(batch, h, f->dirfd_, f->flags_ & OUT_OWN_DIR, f->tmp_,
                                        f->name_, f->rel_, r);
            out_reset(f); /* the folder fd is the batch's now */
            return rc;
        }
        if (renameat(f->dirfd_, f->tmp_, f->dirfd_, f->name_) != 0) {
            err = errno;
            unlinkat(f->dirfd_, f->tmp_, 0);
        }
        out_close_dir(f);
        out_reset(f);
        return err ? out_fail(h, r, f->rel_, "rename", err) : 0;
    }
    /* The data must be on disk before the name points at it: otherwise a
     * crash can leave the final name on an empty or partial file. */
    if (fsync(f->fd) != 0) {
        what = "fsync";
        err = errno;
    }
    /* close() can report a deferred write error (NFS, quotas). */
    if (close(f->fd) != 0 && !err) {
        what = "close";
        err = errno;
    }
    f->fd = -1;
    if (!err && renameat(f->dirfd_, f->tmp_, f->dirfd_, f->name_) != 0) {
        what = "rename";
        err = errno;
    }
    if (err) {
        unlinkat(f->dirfd_, f->tmp_, 0);
    } else if (fsync(f->dirfd_) != 0) {
        /* The file is complete under its name, but the name may not survive
         * a crash: still an error, never silence. */
        what = "fsync folder";
        err = errno;
    }
    out_close_dir(f);
    out_reset(f);
    return err ? out_fail(h, r, f->rel_, what, err) : 0;
}

/* ---- templates ------------------------------------------------------------ */

static int host_tmpl_compile(const weft_host_t *host, const char *text, weft_tmpl_t **t,
                             char *msg, size_t msg_size)
{
    (void)host;
    return weft__tmpl_compile(t, text, msg, msg_size);
}

static int host_tmpl_scan(const weft_host_t *host, const char *text, size_t pos,
                          size_t *len, weft_tmpl_t **t, char *msg, size_t msg_size)
{
    (void)host;
    return weft__tmpl_scan(text, pos, len, t, msg, msg_size);
}

static void host_tmpl_free(weft_tmpl_t *t)
{
    weft__tmpl_free(&t);
}

void weft__host_init(weft__host_t *h, const char *plugin_name, uint64_t run_seed,
                     const char *config_dir)
{
    memset(h, 0, sizeof *h);
    h->log_fd = -1;
    h->pub.struct_size = (uint32_t)sizeof(weft_host_t);
    h->pub.abi_version = WEFT_PLUGIN_ABI_VERSION;
    h->pub.run_seed = run_seed;
    h->pub.config_dir = config_dir;
    h->pub.failf = host_failf;
    h->pub.logf = host_logf;
    h->pub.rng_init = host_rng_init;
    h->pub.rng_u64 = weft__rng_u64;
    h->pub.rng_double = weft__rng_double;
    h->pub.rng_fill = weft__rng_fill;
    h->pub.should_stop = host_should_stop;
    h->pub.out_open = host_out_open;
    h->pub.out_commit = host_out_commit;
    h->pub.out_discard = host_out_discard;
    h->pub.tmpl_compile = host_tmpl_compile;
    h->pub.tmpl_expand = weft__tmpl_expand;
    h->pub.tmpl_free = host_tmpl_free;
    h->pub.out_write = host_out_write;
    h->pub.child_started = host_child_started;
    h->pub.child_ended = host_child_ended;
    h->pub.tmpl_scan = host_tmpl_scan;
    h->pub.tmpl_expand_slot = weft__tmpl_expand_slot;
    h->plugin_name = plugin_name;
    h->stop = NULL;
    h->outdir_fd = -1;
    h->outdir_path = NULL;
}
