/* SPDX-License-Identifier: MIT */
/* The run's output folder: created, opened, locked (see outdir.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "outdir.h"

struct weft__outdir {
    int fd;      /* the folder                                   */
    int lock_fd; /* PATH/.weft.lock, flock()ed while open        */
    char *path;
};

static int fail(int rc, char *err, size_t errlen, const char *fmt, ...) WEFT_PRINTF(4, 5);
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* mkdir -p on a copy of path.  0 or -errno with err. */
static int make_folders(const char *path, char *err, size_t errlen)
{
    char *p = strdup(path);
    if (!p)
        return fail(-ENOMEM, err, errlen, "%s: out of memory", path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        /* EEXIST also covers a file in the way: open() reports ENOTDIR. */
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = -errno;
            fail(rc, err, errlen, "cannot create output folder '%s': %s", p, strerror(-rc));
            break;
        }
        *s = c;
        if (c == '\0')
            break;
        while (s[1] == '/') /* "a//b" */
            s++;
    }
    free(p);
    return rc;
}

/* The pid in the lock file, or 0 when it cannot be read. */
static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

int weft__outdir_open(weft__outdir_t **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path)
        return fail(-EINVAL, err, errlen, "the output folder is empty");
    weft__outdir_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return fail(-ENOMEM, err, errlen, "%s: out of memory", path);
    }
    d->fd = d->lock_fd = -1;
    int rc = make_folders(path, err, errlen);
    if (rc)
        goto fail;
    d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->fd < 0) {
        rc = fail(-errno, err, errlen, "cannot open output folder '%s': %s", path,
                  strerror(errno));
        goto fail;
    }
    /* O_NOFOLLOW: a planted symlink must not make us create or truncate
     * a file elsewhere.  Never O_TRUNC: the holder's pid is in it. */
    d->lock_fd = openat(d->fd, WEFT__OUTDIR_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                        0644);
    if (d->lock_fd < 0) {
        rc = fail(-errno, err, errlen, "cannot create the lock file '%s/%s': %s", path,
                  WEFT__OUTDIR_LOCK, strerror(errno));
        goto fail;
    }
    while (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK) {
            long pid = read_pid(d->lock_fd);
            char who[32] = "";
            if (pid)
                snprintf(who, sizeof who, " (pid %ld)", pid);
            rc = fail(-EBUSY, err, errlen, "%s is in use by another weft run%s", path, who);
        } else {
            rc = fail(-errno, err, errlen, "cannot lock '%s/%s': %s", path,
                      WEFT__OUTDIR_LOCK, strerror(errno));
        }
        goto fail;
    }
    /* Ours now: record who holds it.  Best effort (only for the message of
     * a refused run); a failure here does not stop the run. */
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(d->lock_fd, 0) == 0 && pwrite(d->lock_fd, pid, (size_t)n, 0) != n) {
        /* nothing to do: read_pid then shows no pid */
    }
    *out = d;
    return 0;

fail:
    weft__outdir_close(&d);
    return rc;
}

void weft__outdir_close(weft__outdir_t **dp)
{
    weft__outdir_t *d = dp ? *dp : NULL;
    if (!d)
        return;
    /* Closing the only descriptor of the open file description releases the
     * flock. */
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    if (d->fd >= 0)
        close(d->fd);
    free(d->path);
    free(d);
    *dp = NULL;
}

int weft__outdir_fd(const weft__outdir_t *d)
{
    return d ? d->fd : -1;
}

const char *weft__outdir_path(const weft__outdir_t *d)
{
    return d ? d->path : NULL;
}

int weft__outdir_arg(const weft_plugin_t *desc, size_t *index, char *err, size_t errlen)
{
    *index = SIZE_MAX;
    if (!desc->args)
        return 0;
    for (size_t k = 0; k < desc->n_args; k++) {
        if (desc->args[k].type != WEFT_ARG_OUTDIR)
            continue;
        if (*index != SIZE_MAX) {
            size_t first = *index;
            *index = SIZE_MAX;
            return fail(-EINVAL, err, errlen,
                        "%s: arguments '%s' and '%s' are both output folders: at most one",
                        desc->name ? desc->name : "plugin", desc->args[first].name,
                        desc->args[k].name);
        }
        *index = k;
    }
    return *index == SIZE_MAX ? 0 : 1;
}

void weft__host_set_outdir(struct weft__host *h, const weft__outdir_t *d)
{
    h->outdir_fd = weft__outdir_fd(d);
    h->outdir_path = weft__outdir_path(d);
}

int weft__outdir_bind(weft__outdir_t **d, struct weft__host *h, const weft_plugin_t *desc,
                      const weft_arg_value_t *args, char *err, size_t errlen)
{
    *d = NULL;
    weft__host_set_outdir(h, NULL);
    size_t k;
    int rc = weft__outdir_arg(desc, &k, err, errlen);
    if (rc <= 0)
        return rc;
    const char *path = args[k].u.s;
    if (!path || !*path)
        return fail(-EINVAL, err, errlen, "%s: argument '%s': the output folder is empty",
                    desc->name ? desc->name : "plugin", desc->args[k].name);
    rc = weft__outdir_open(d, path, err, errlen);
    if (rc == 0)
        weft__host_set_outdir(h, *d);
    return rc;
}
