/* SPDX-License-Identifier: MIT */
/* sync = batch: group commit of a worker's files (see outbatch.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syncfs */
#endif
#include "outbatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "buf.h"

enum {
    BATCH_FILES = 256, /* files a batch holds                          */
    BATCH_DEVS = 4,    /* filesystems synced per commit before a flush */
    KNOWN_FS = 8,      /* filesystems whose type is remembered         */
};

/* Filesystems whose sync_fs does not make files durable: their files are
 * synced one by one.  (linux/magic.h; FUSE's syncfs reaches the daemon
 * without a FUSE_FSYNC, NFS and SMB commit per file.) */
static bool untrusted_fs(long type)
{
    return type == 0x65735546L /* FUSE */ || type == 0x6969L /* NFS */ ||
           type == (long)0xFF534D42 /* CIFS */ || type == (long)0xFE534D42 /* SMB2 */ ||
           type == 0x517BL /* SMB */;
}

typedef struct entry {
    int dirfd;
    bool own_dir; /* dirfd is closed after the commit                  */
    dev_t dev;
    ino_t ino;    /* of the folder: files of one subfolder share its fd */
    size_t tmp, name, rel; /* offsets of NUL-terminated names in text */
} entry_t;

struct weft__outbatch {
    entry_t files[BATCH_FILES];
    size_t n, n_dirs, max_dirs;
    int sync_fd;      /* this batch's own fd of the output folder       */
    struct {
        dev_t dev;
        bool ok;
    } known[KNOWN_FS]; /* filesystems seen, and whether they batch      */
    size_t n_known;
    weft__buf_t text; /* the names, reused from batch to batch          */
    dev_t outdir_dev; /* the output folder's filesystem, once known     */
    bool outdir_known;
    int error;        /* a commit inside add failed since the last
                         weft__outbatch_commit: reported there too      */
    char msg[512];    /* its message                                    */
};

static _Thread_local weft__outbatch_t *bound;

int weft__outbatch_new(weft__outbatch_t **out, unsigned max_dirs)
{
    weft__outbatch_t *b = calloc(1, sizeof *b);
    if (!b || weft__buf_reserve(&b->text, 64 << 10) != 0) {
        free(b);
        return -ENOMEM;
    }
    b->max_dirs = max_dirs ? max_dirs : 1;
    b->sync_fd = -1;
    *out = b;
    return 0;
}

static void drop_entries(weft__outbatch_t *b)
{
    for (size_t k = 0; k < b->n; k++)
        if (b->files[k].own_dir)
            close(b->files[k].dirfd);
    b->n = b->n_dirs = 0;
    b->text.len = 0;
}

void weft__outbatch_free(weft__outbatch_t **pb)
{
    weft__outbatch_t *b = *pb;
    if (!b)
        return;
    for (size_t k = 0; k < b->n; k++)
        unlinkat(b->files[k].dirfd, b->text.data + b->files[k].tmp, 0);
    drop_entries(b);
    weft__buf_free(&b->text);
    if (b->sync_fd >= 0)
        close(b->sync_fd);
    free(b);
    *pb = NULL;
}

void weft__outbatch_bind(weft__outbatch_t *b)
{
    bound = b;
}

weft__outbatch_t *weft__outbatch_bound(void)
{
    return bound;
}

size_t weft__outbatch_pending(const weft__outbatch_t *b)
{
    return b->n;
}

static const char *name_at(const weft__outbatch_t *b, size_t off)
{
    return b->text.data + off;
}

/* "DIR/REL: what: strerror" into msg; a storage error also becomes the
 * run's write error. */
static int commit_fail(weft__outbatch_t *b, const weft__host_t *h, const entry_t *e,
                       const char *what, int err)
{
    char text[128];
    const char *why = strerror_r(err, text, sizeof text);
    const char *dir = h->outdir_path;
    snprintf(b->msg, sizeof b->msg, "%s%s%s: %s (sync = batch): %s", dir ? dir : "",
             dir ? "/" : "", name_at(b, e->rel), what, why);
    int none = 0;
    if (h->write_error)
        atomic_compare_exchange_strong(h->write_error, &none, -(err ? err : EIO));
    return -(err ? err : EIO);
}

/* syncfs once per filesystem the batch's files are on. */
static int sync_all(weft__outbatch_t *b, const weft__host_t *h)
{
    dev_t done[BATCH_DEVS];
    size_t n_done = 0;
    for (size_t k = 0; k < b->n; k++) {
        const entry_t *e = &b->files[k];
        bool seen = false;
        for (size_t d = 0; d < n_done && !seen; d++)
            seen = done[d] == e->dev;
        if (seen)
            continue;
        bool in_outdir = b->sync_fd >= 0 && b->outdir_known && e->dev == b->outdir_dev;
        int fd = in_outdir ? b->sync_fd : e->dirfd;
        if (syncfs(fd) != 0)
            return commit_fail(b, h, e, "syncfs", errno);
        if (n_done < BATCH_DEVS)
            done[n_done++] = e->dev;
    }
    return 0;
}

int weft__outbatch_commit(weft__outbatch_t *b, const weft__host_t *h, char *err,
                          size_t errlen)
{
    int rc = b->error;
    if (rc)
        snprintf(err, errlen, "%s", b->msg);
    b->error = 0;
    if (b->n == 0)
        return rc;
    /* The data before the names: a crash must never leave a final name on
     * a file whose bytes did not reach the disk. */
    int e = sync_all(b, h);
    size_t renamed = 0;
    while (e == 0 && renamed < b->n) {
        const entry_t *f = &b->files[renamed];
        if (renameat(f->dirfd, name_at(b, f->tmp), f->dirfd, name_at(b, f->name)) != 0)
            e = commit_fail(b, h, f, "rename", errno);
        else
            renamed++;
    }
    if (e == 0)
        e = sync_all(b, h);
    if (e) {
        for (size_t k = renamed; k < b->n; k++)
            unlinkat(b->files[k].dirfd, name_at(b, b->files[k].tmp), 0);
        if (!rc)
            snprintf(err, errlen, "%s", b->msg);
        rc = rc ? rc : e;
    }
    drop_entries(b);
    return rc;
}

bool weft__outbatch_accepts(weft__outbatch_t *b, const weft__host_t *h, int dirfd,
                            bool own_dir)
{
    if (b->sync_fd < 0 && h->outdir_fd >= 0) /* once: see outbatch.h */
        b->sync_fd = openat(h->outdir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (fstat(own_dir ? dirfd : (b->sync_fd >= 0 ? b->sync_fd : dirfd), &st) != 0)
        return false;
    for (size_t k = 0; k < b->n_known; k++)
        if (b->known[k].dev == st.st_dev)
            return b->known[k].ok;
    struct statfs fs;
    bool ok = fstatfs(dirfd, &fs) == 0 && !untrusted_fs((long)fs.f_type);
    if (b->n_known < KNOWN_FS) {
        b->known[b->n_known].dev = st.st_dev;
        b->known[b->n_known++].ok = ok;
    }
    return ok;
}

/* Appends s and its NUL to the names; its offset, or SIZE_MAX. */
static size_t keep(weft__outbatch_t *b, const char *s)
{
    size_t off = b->text.len;
    return weft__buf_append(&b->text, s, strlen(s) + 1) == 0 ? off : SIZE_MAX;
}

/* Commits a full batch to make room; on failure removes tmp (and closes
 * dirfd when own_dir) and fails r. */
static int make_room(weft__outbatch_t *b, const weft__host_t *h, int dirfd, bool own_dir,
                     const char *tmp, weft_result_t *r)
{
    char why[512];
    int e = weft__outbatch_commit(b, h, why, sizeof why);
    if (e == 0)
        return 0;
    /* The queued files' items returned already: the engine learns of it
     * at its next commit and journals none of them. */
    b->error = e;
    snprintf(b->msg, sizeof b->msg, "%s", why);
    unlinkat(dirfd, tmp, 0);
    if (own_dir)
        close(dirfd);
    return h->pub.failf(r, "%s", why);
}

int weft__outbatch_add(weft__outbatch_t *b, const weft__host_t *h, int dirfd, bool own_dir,
                       const char *tmp, const char *name, const char *rel, weft_result_t *r)
{
    if (b->n == BATCH_FILES && make_room(b, h, dirfd, own_dir, tmp, r) != 0)
        return -1;
    struct stat st;
    dev_t dev = b->outdir_dev;
    ino_t ino = 0;
    if (own_dir) {
        /* A subfolder may be another filesystem's mount; one the batch
         * holds already lends its fd, and this one is closed. */
        if (fstat(dirfd, &st) == 0)
            dev = st.st_dev, ino = st.st_ino;
        for (size_t k = 0; k < b->n && ino; k++)
            if (b->files[k].own_dir && b->files[k].dev == dev && b->files[k].ino == ino) {
                close(dirfd);
                dirfd = b->files[k].dirfd;
                own_dir = false; /* closed with the file that owns it */
                break;
            }
        if (own_dir && b->n_dirs == b->max_dirs && make_room(b, h, dirfd, true, tmp, r) != 0)
            return -1;
    } else if (!b->outdir_known && fstat(dirfd, &st) == 0) {
        b->outdir_dev = dev = st.st_dev;
        b->outdir_known = true;
    }
    entry_t *f = &b->files[b->n];
    f->dirfd = dirfd;
    f->own_dir = own_dir;
    f->dev = dev;
    f->ino = ino;
    f->tmp = keep(b, tmp);
    f->name = keep(b, name);
    f->rel = keep(b, rel);
    if (f->tmp == SIZE_MAX || f->name == SIZE_MAX || f->rel == SIZE_MAX) {
        unlinkat(dirfd, tmp, 0);
        if (own_dir)
            close(dirfd);
        return h->pub.failf(r, "%s: commit (sync = batch): out of memory", rel);
    }
    b->n++;
    b->n_dirs += own_dir;
    return 0;
}
