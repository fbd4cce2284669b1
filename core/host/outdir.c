/* SPDX-License-Identifier: MIT */
/* The run's output folder: created, opened, locked (see outdir.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "outdir.h"
#include "util.h"

struct weft__outdir {
    int fd;      /* the folder                                   */
    int lock_fd; /* PATH/.weft.lock, flock()ed while open        */
    char *path;
};

/* mkdir -p on a copy of path.  0 or -errno with err. */
static int make_folders(const char *path, char *err, size_t errlen)
{
    char *p = strdup(path);
    if (!p)
        return weft__failf(-ENOMEM, err, errlen, "%s: out of memory", path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        /* EEXIST also covers a file in the way: open() reports ENOTDIR. */
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = -errno;
            weft__msgf(err, errlen, "cannot create output folder '%s': %s", p,
                       strerror(-rc));
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
        return weft__failf(-EINVAL, err, errlen, "the output folder is empty");
    weft__outdir_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return weft__failf(-ENOMEM, err, errlen, "%s: out of memory", path);
    }
    d->fd = d->lock_fd = -1;
    int rc = make_folders(path, err, errlen);
    if (rc)
        goto fail;
    d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->fd < 0) {
        rc = weft__failf(-errno, err, errlen, "cannot open output folder '%s': %s", path,
                         strerror(errno));
        goto fail;
    }
    /* O_NOFOLLOW: a planted symlink must not make us create or truncate
     * a file elsewhere.  Never O_TRUNC: the holder's pid is in it. */
    d->lock_fd = openat(d->fd, WEFT__OUTDIR_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                        0644);
    if (d->lock_fd < 0) {
        rc = weft__failf(-errno, err, errlen, "cannot create the lock file '%s/%s': %s",
                         path, WEFT__OUTDIR_LOCK, strerror(errno));
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
            rc = weft__failf(-EBUSY, err, errlen, "%s is in use by another weft run%s",
                             path, who);
        } else {
            rc = weft__failf(-errno, err, errlen, "cannot lock '%s/%s': %s", path,
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

/* ---- temporaries ------------------------------------------------------- */

#define TEMP_MARK ".weft-tmp-"

void weft__outdir_temp_name(char *out, size_t size, const char *name, long pid,
                            unsigned long n)
{
    char suffix[64];
    int slen = snprintf(suffix, sizeof suffix, TEMP_MARK "%ld-%lu", pid, n);
    int keep = NAME_MAX - 1 - slen;
    snprintf(out, size, ".%.*s%s", keep, name, suffix);
}

/* At p: one or more digits, then `end`; the position after them, or NULL. */
static const char *digits_then(const char *p, char end)
{
    const char *q = p;
    while (*q >= '0' && *q <= '9')
        q++;
    return q > p && *q == end ? q : NULL;
}

bool weft__outdir_reserved(const char *name, size_t len)
{
    static const char prefix[] = ".weft";
    size_t n = sizeof prefix - 1;
    if (len > n && memcmp(name, prefix, n) == 0 && (name[n] == '.' || name[n] == '-'))
        return true; /* .weft.lock, .weft-journal, .weft-journal.new, ... */
    char copy[NAME_MAX + 1];
    if (len > NAME_MAX || memchr(name, '\0', len))
        return false;
    memcpy(copy, name, len);
    copy[len] = '\0';
    return weft__outdir_is_temp(copy);
}

bool weft__outdir_is_temp(const char *name)
{
    if (name[0] != '.')
        return false;
    /* The last mark: NAME itself may contain it. */
    const char *mark = NULL;
    for (const char *p = strstr(name + 1, TEMP_MARK); p; p = strstr(p + 1, TEMP_MARK))
        mark = p;
    if (!mark || mark == name + 1) /* ".weft-tmp-1-2": no NAME, not ours */
        return false;
    const char *dash = digits_then(mark + strlen(TEMP_MARK), '-');
    return dash && digits_then(dash + 1, '\0');
}

/* Deeper than this, a folder is left alone (each level holds a descriptor;
 * out_open's paths are at most PATH_MAX, so real ones are far shallower). */
enum { SWEEP_DEPTH = 64 };

/* Sweeps the folder open on fd (which it closes). */
static size_t sweep_folder(int fd, int depth)
{
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return 0;
    }
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        unsigned char type = e->d_type;
        struct stat st;
        if (type == DT_UNKNOWN && fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        if (type == DT_DIR && depth < SWEEP_DEPTH) {
            int sub = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            /* A folder with a lock of its own is another run's output
             * folder (items cannot make one: the name is reserved): that
             * run, live or the next of its job, sweeps it. */
            if (sub >= 0 && faccessat(sub, WEFT__OUTDIR_LOCK, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                close(sub);
            else if (sub >= 0)
                removed += sweep_folder(sub, depth + 1);
        } else if (type == DT_REG && weft__outdir_is_temp(name) &&
                   unlinkat(dirfd(dir), name, 0) == 0) {
            removed++;
        }
    }
    closedir(dir);
    return removed;
}

size_t weft__outdir_sweep(const weft__outdir_t *d)
{
    int fd = d ? openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    return fd >= 0 ? sweep_folder(fd, 0) : 0;
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
            return weft__failf(
                -EINVAL, err, errlen,
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
        return weft__failf(-EINVAL, err, errlen,
                           "%s: argument '%s': the output folder is empty",
                           desc->name ? desc->name : "plugin", desc->args[k].name);
    rc = weft__outdir_open(d, path, err, errlen);
    if (rc == 0)
        weft__host_set_outdir(h, *d);
    return rc;
}
