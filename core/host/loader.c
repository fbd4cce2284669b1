/* SPDX-License-Identifier: MIT */
/* Finding, loading and checking task plugins; the search order and the
 * safety rules are in loader.h. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "loader.h"
#include "util.h"
#include "weft/weft.h"

/* The ABI-1 descriptor ends with destroy; a plugin's struct may be larger
 * (newer) but never smaller.  The members appended since (row_spec,
 * process_range) are optional: an older plugin's struct lacks them, and its
 * copy reads them as NULL. */
#define WEFT__PLUGIN_ABI1_SIZE                                                           \
    (offsetof(weft_plugin_t, destroy) + sizeof(((weft_plugin_t *)0)->destroy))

/* A schema this long is a corrupt descriptor, not a real plugin; the bound
 * keeps the checks from walking off into unmapped memory. */
#define WEFT__MAX_ARGS 1024

/* ---- search folders ---------------------------------------------------- */

typedef struct dirlist {
    char **v;
    size_t n, cap;
} dirlist_t;

/* Takes ownership of dir (freed on failure or when it is a duplicate). */
static int dirlist_add(dirlist_t *l, char *dir)
{
    if (!dir)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], dir) == 0) {
            free(dir);
            return 0;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(dir);
            return -ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = dir;
    return 0;
}

/* Adds each non-empty element of a ':'-separated list; relative elements
 * are resolved against base when base is not NULL. */
static int dirlist_add_list(dirlist_t *l, const char *list, const char *base)
{
    const char *s = list;
    while (*s) {
        size_t len = strcspn(s, ":");
        /* An empty element would mean the current directory to a shell;
         * here it means nothing. */
        if (len > 0) {
            char *elem = strndup(s, len);
            if (!elem)
                return -ENOMEM;
            char *dir = elem;
            if (base && elem[0] != '/') {
                dir = weft__path_join_dup(base, elem);
                free(elem);
            }
            int r = dirlist_add(l, dir);
            if (r < 0)
                return r;
        }
        s += len;
        if (*s == ':')
            s++;
    }
    return 0;
}

/* The folder holding the running executable, or NULL. */
static char *exe_dir(void)
{
    size_t cap = 256;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf)
            return NULL;
        ssize_t n = readlink("/proc/self/exe", buf, cap);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if ((size_t)n < cap) {
            buf[n] = '\0';
            char *slash = strrchr(buf, '/');
            if (!slash) {
                free(buf);
                return NULL;
            }
            slash[slash == buf] = '\0'; /* keep "/" for a file at the root */
            return buf;
        }
        /* readlink truncates silently: grow until the result fits. */
        free(buf);
        if (cap >= 65536)
            return NULL;
        cap *= 2;
    }
}

int weft__plugin_dirs(const char *config_dir, const char *config_plugin_path,
                      char ***dirs, size_t *n_dirs)
{
    dirlist_t l = {0};
    int r = 0;

    if (config_plugin_path &&
        (r = dirlist_add_list(&l, config_plugin_path, config_dir)) < 0)
        goto fail;
    if (config_dir && *config_dir && (r = dirlist_add(&l, strdup(config_dir))) < 0)
        goto fail;
    const char *env = getenv("WEFT_PLUGIN_PATH");
    if (env && (r = dirlist_add_list(&l, env, NULL)) < 0)
        goto fail;
    /* The binary's own plugins come before the install folder, so that a
     * build tree never runs an older installed copy.  Not knowing where we
     * run from only loses these folders.  An installed tree moved elsewhere
     * (or installed with DESTDIR) finds its plugins relative to bin/; a
     * build tree has plugins/. */
    char *exe = exe_dir();
    if (exe) {
#ifdef WEFT_PLUGINDIR_FROM_BINDIR
        r = dirlist_add(&l, weft__path_join_dup(exe, WEFT_PLUGINDIR_FROM_BINDIR));
#endif
        if (r >= 0)
            r = dirlist_add(&l, weft__path_join_dup(exe, "plugins"));
        free(exe);
        if (r < 0)
            goto fail;
    }
#ifdef WEFT_PLUGINDIR
    if ((r = dirlist_add(&l, strdup(WEFT_PLUGINDIR))) < 0)
        goto fail;
#endif

    *dirs = l.v;
    *n_dirs = l.n;
    return 0;

fail:
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    *dirs = NULL;
    *n_dirs = 0;
    return r;
}

/* ---- finding ----------------------------------------------------------- */

static bool valid_plugin_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return false;
    }
    return true;
}

static bool is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* *out: the first dirs[i]/NAME.so that is a regular file. */
static int find_plugin(char **out, const char *name, char *const *dirs, size_t n_dirs,
                       char *err, size_t errlen)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < n_dirs; i++) {
        /* "" would give a path without a '/', which dlopen searches for in
         * LD_LIBRARY_PATH and the cwd. */
        if (!dirs[i][0])
            continue;
        /* Room for ".so"; a longer path names no file stat could find. */
        if (weft__path_join(path, sizeof path - 3, dirs[i], name) != 0)
            continue;
        strcat(path, ".so");
        if (is_regular_file(path))
            return (*out = strdup(path)) ? 0 : -ENOMEM;
    }

    weft__msgf(err, errlen, "plugin %s: no %s.so in ", name, name);
    if (n_dirs == 0)
        weft__msg_appendf(err, errlen, "(no folders to search)");
    for (size_t i = 0; i < n_dirs; i++)
        weft__msg_appendf(err, errlen, "%s%s", i ? ", " : "", dirs[i]);
    weft__msg_appendf(err, errlen, " (set WEFT_PLUGIN_PATH or give a path)");
    return -ENOENT;
}

/* ---- checking ---------------------------------------------------------- */

static bool valid_arg_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    }
    return true;
}

static int check_schema(const weft_plugin_t *d, const char *path, char *err,
                        size_t errlen)
{
    if (d->n_args == 0)
        return 0;
    if (!d->args) {
        weft__msgf(err, errlen, "%s: n_args is %zu but args is NULL", path, d->n_args);
        return -ENOEXEC;
    }
    if (d->n_args > WEFT__MAX_ARGS) {
        weft__msgf(err, errlen, "%s: n_args %zu is more than %d", path, d->n_args,
                   WEFT__MAX_ARGS);
        return -ENOEXEC;
    }
    for (size_t k = 0; k < d->n_args; k++) {
        const weft_arg_spec_t *a = &d->args[k];
        if (!a->name) {
            weft__msgf(err, errlen, "%s: argument %zu has no name", path, k);
            return -ENOEXEC;
        }
        if (!valid_arg_name(a->name)) {
            weft__msgf(err, errlen,
                       "%s: argument %zu: invalid name \"%s\" (want [a-z_][a-z0-9_]*)",
                       path, k, a->name);
            return -ENOEXEC;
        }
        for (size_t j = 0; j < k; j++) {
            if (strcmp(d->args[j].name, a->name) == 0) {
                weft__msgf(err, errlen, "%s: argument %zu: duplicate name \"%s\"", path,
                           k, a->name);
                return -ENOEXEC;
            }
        }
        if ((int)a->type < WEFT_ARG_INT || (int)a->type > WEFT_ARG_OUTDIR) {
            weft__msgf(err, errlen, "%s: argument \"%s\": unknown type %d", path, a->name,
                       (int)a->type);
            return -ENOEXEC;
        }
        /* Also rejects NaN bounds. */
        if (!(a->min <= a->max)) {
            weft__msgf(err, errlen, "%s: argument \"%s\": min %g is above max %g", path,
                       a->name, a->min, a->max);
            return -ENOEXEC;
        }
    }
    return 0;
}

int weft__plugin_check(const weft_plugin_t *entry, weft_plugin_t *desc, const char *path,
                       char *err, size_t errlen)
{
    memset(desc, 0, sizeof *desc);
    /* The header is the same in every ABI: read it before trusting any
     * other field. */
    if (entry->abi_version != WEFT_PLUGIN_ABI_VERSION) {
        weft__msgf(err, errlen, "%s: plugin ABI version %u, this weft speaks %u", path,
                   (unsigned)entry->abi_version, (unsigned)WEFT_PLUGIN_ABI_VERSION);
        return -ENOEXEC;
    }
    if (entry->struct_size < WEFT__PLUGIN_ABI1_SIZE) {
        weft__msgf(err, errlen, "%s: plugin struct_size %u is smaller than ABI %u's %zu",
                   path, (unsigned)entry->struct_size, (unsigned)WEFT_PLUGIN_ABI_VERSION,
                   (size_t)WEFT__PLUGIN_ABI1_SIZE);
        return -ENOEXEC;
    }
    /* A newer plugin's extra fields are not ours to read; an older one's
     * missing fields stay NULL/0. */
    size_t n = entry->struct_size < sizeof *desc ? entry->struct_size : sizeof *desc;
    memcpy(desc, entry, n);
    /* A struct_size that ends inside an appended member copied part of a
     * pointer: that member is not there. */
    if (!WEFT_PLUGIN_HAS(entry, row_spec))
        desc->row_spec = NULL;
    if (!WEFT_PLUGIN_HAS(entry, process_range))
        desc->process_range = NULL;
    if (!WEFT_PLUGIN_HAS(entry, arg_choices))
        desc->arg_choices = NULL;

    const char *missing = !desc->name          ? "name"
                          : !desc->init        ? "init"
                          : !desc->process_one ? "process_one"
                                               : NULL;
    if (missing) {
        weft__msgf(err, errlen, "%s: the descriptor has no %s (required)", path, missing);
        goto fail;
    }
    if (!*desc->name) {
        weft__msgf(err, errlen, "%s: the descriptor's name is empty", path);
        goto fail;
    }
    if (check_schema(desc, path, err, errlen) < 0)
        goto fail;
    return 0;

fail:
    memset(desc, 0, sizeof *desc);
    return -ENOEXEC;
}

/* ---- opening safely ---------------------------------------------------- */

void (*weft__plugin_open_test_hook)(const char *real_path);

static bool unsafe_plugins_allowed(void)
{
    const char *v = getenv("WEFT_UNSAFE_PLUGINS");
    return v && strcmp(v, "1") == 0;
}

/*
 * The ownership and mode rules of loader.h for one folder or the file.
 * kind is "folder" or "file"; where names the folder (NULL for the file,
 * which the message starts with already).  A sticky folder may be writable
 * by others only as a parent: sticky_ok.
 */
static int check_trust(const struct stat *st, const char *real, const char *kind,
                       const char *where, bool sticky_ok, char *err, size_t errlen)
{
    uid_t me = geteuid();
    const char *sep = where ? " " : "";
    if (st->st_uid != me && st->st_uid != 0) {
        weft__msgf(
            err, errlen,
            "%s: refusing to load: the %s%s%s is owned by uid %lu, not you (%lu) or root",
            real, kind, sep, where ? where : "", (unsigned long)st->st_uid,
            (unsigned long)me);
        return -EPERM;
    }
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(sticky_ok && (st->st_mode & S_ISVTX))) {
        weft__msgf(err, errlen,
                   "%s: refusing to load: the %s%s%s is writable by %s (mode %04o)", real,
                   kind, sep, where ? where : "",
                   (st->st_mode & S_IWOTH) ? "others" : "its group",
                   (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* A failed open on the way to real: a symlink or non-folder where realpath
 * saw a folder means the tree changed under us. */
static int open_failed(int e, const char *real, const char *where, char *err,
                       size_t errlen)
{
    if (e == ELOOP || e == ENOTDIR) {
        weft__msgf(
            err, errlen,
            "%s: refusing to load: %s changed into a symbolic link or a non-folder while "
            "it was being checked",
            real, where);
        return -EPERM;
    }
    weft__msgf(err, errlen, "%s: cannot open %s: %s", real, where, weft_strerror(-e));
    return e == ENOMEM ? -ENOMEM : -ENOENT;
}

/*
 * Opens real (absolute, no symlinks: from realpath) one component at a time
 * from "/", never following a symlink, and checks each folder on the way
 * and the file itself (unless !check).  *fd: the file, O_RDONLY; *st: its
 * fstat.  Folders are opened O_PATH, so an x-only folder is no obstacle.
 */
static int open_checked(const char *real, bool check, int *fd, struct stat *st, char *err,
                        size_t errlen)
{
    size_t len = strlen(real);
    char *where = malloc(len + 1); /* the folder being checked, for messages */
    if (!where) {
        weft__msgf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = 0;
    int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        r = open_failed(errno, real, "/", err, errlen);
        goto out;
    }
    const char *p = real + 1; /* the next component */
    for (;;) {
        const char *slash = strchr(p, '/');
        if (check) {
            /* where = real up to the folder dir is ("/" for the root). */
            size_t wl = p - real > 1 ? (size_t)(p - real) - 1 : 1;
            memcpy(where, real, wl);
            where[wl] = '\0';
            struct stat dst;
            if (fstat(dir, &dst) != 0) {
                r = open_failed(errno, real, where, err, errlen);
                goto out;
            }
            /* The last folder is the plugin's own: sticky is not enough. */
            r = check_trust(&dst, real, "folder", where, slash != NULL, err, errlen);
            if (r < 0)
                goto out;
        }
        if (!slash)
            break;
        /* realpath gives no "//", "." or ".." components. */
        size_t cl = (size_t)(slash - p);
        memcpy(where, p, cl);
        where[cl] = '\0';
        int next = openat(dir, where, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int e = errno;
            memcpy(where, real, (size_t)(slash - real));
            where[slash - real] = '\0';
            r = open_failed(e, real, where, err, errlen);
            goto out;
        }
        close(dir);
        dir = next;
        p = slash + 1;
    }
    /* O_NONBLOCK: a FIFO swapped in must not block the open. */
    *fd = openat(dir, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (*fd < 0) {
        r = open_failed(errno, real, real, err, errlen);
        goto out;
    }
    if (fstat(*fd, st) != 0) {
        r = open_failed(errno, real, real, err, errlen);
    } else if (!S_ISREG(st->st_mode)) {
        weft__msgf(err, errlen, "%s: not a regular file", real);
        r = -ENOEXEC;
    } else if (check) {
        r = check_trust(st, real, "file", NULL, false, err, errlen);
    }
    if (r < 0) {
        close(*fd);
        *fd = -1;
    }
out:
    if (dir >= 0)
        close(dir);
    free(where);
    return r;
}

/* XXH3_64bits of the whole file, read through fd (pread: no mapping that a
 * truncation could turn into SIGBUS). */
static int hash_fd(int fd, const char *real, uint64_t *hash, char *err, size_t errlen)
{
    enum { CHUNK = 1 << 16 };
    XXH3_state_t *h = XXH3_createState();
    unsigned char *buf = malloc(CHUNK);
    int r = 0;
    if (!h || !buf || XXH3_64bits_reset(h) != XXH_OK) {
        weft__msgf(err, errlen, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    for (off_t off = 0;;) {
        ssize_t n = pread(fd, buf, CHUNK, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            weft__msgf(err, errlen, "%s: cannot read: %s", real, weft_strerror(-errno));
            r = -EIO;
            goto out;
        }
        if (n == 0)
            break;
        XXH3_64bits_update(h, buf, (size_t)n);
        off += n;
    }
    *hash = XXH3_64bits_digest(h);
out:
    free(buf);
    XXH3_freeState(h);
    return r;
}

/* The inode of the file mapped at addr, from /proc/self/maps; 0 when the
 * address is in no file mapping.  The device is not compared: on overlayfs
 * the map shows the underlying file system's device, fstat the overlay's. */
static unsigned long mapped_inode(uintptr_t addr)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    unsigned long found = 0;
    while (getline(&line, &cap, f) > 0) {
        unsigned long lo, hi, ino;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) == 3 && lo <= addr &&
            addr < hi) {
            found = ino;
            break;
        }
    }
    free(line);
    fclose(f);
    return found;
}

/* dlerror()'s text without the "/proc/self/fd/N: " it starts with when it
 * is about the plugin itself: messages start with the real path instead. */
static const char *dl_error_text(int fd, const char *none)
{
    const char *e = dlerror();
    if (!e)
        return none;
    char fdname[32];
    int nl = snprintf(fdname, sizeof fdname, "/proc/self/fd/%d: ", fd);
    return strncmp(e, fdname, (size_t)nl) == 0 ? e + nl : e;
}

/*
 * dlopen of the checked fd by its /proc/self/fd name.  The dynamic linker
 * takes an object whose name matches as already loaded, so a name left by
 * an earlier plugin that stays resident (NODELETE, or still open elsewhere)
 * would hand us that one: the inode of the new mapping is checked, and on a
 * mismatch the fd moves to another number and the load is tried again.
 */
static int dlopen_fd(weft__plugin_t *p, const struct stat *st, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        char fdname[32];
        snprintf(fdname, sizeof fdname, "/proc/self/fd/%d", p->fd);
        /* RTLD_NOW: an unresolved symbol fails here, not in the middle of
         * a run; RTLD_LOCAL: plugins cannot see or clash with each other. */
        dlerror();
        void *dl = dlopen(fdname, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
            weft__msgf(err, errlen, "%s: %s", p->path,
                       dl_error_text(p->fd, "dlopen failed"));
            return -ENOEXEC;
        }
        struct link_map *lm = NULL;
        if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) == 0 && lm &&
            mapped_inode((uintptr_t)lm->l_addr) == (unsigned long)st->st_ino) {
            p->dl = dl;
            return 0;
        }
        dlclose(dl);
        /* Another number, above this one, for the next try. */
        int moved = fcntl(p->fd, F_DUPFD_CLOEXEC, p->fd + 1);
        if (moved < 0)
            break;
        close(p->fd);
        p->fd = moved;
    }
    weft__msgf(
        err, errlen,
        "%s: the object the dynamic linker loaded is not the file that was checked",
        p->path);
    return -ENOEXEC;
}

/* ---- loading ----------------------------------------------------------- */

int weft__plugin_open(weft__plugin_t **out, const char *name_or_path, char *const *dirs,
                      size_t n_dirs, char *err, size_t errlen)
{
    weft__plugin_t *p = NULL;
    char *path = NULL;
    int r;

    *out = NULL;
    if (strchr(name_or_path, '/')) {
        struct stat st;
        if (stat(name_or_path, &st) != 0) {
            r = -errno;
            weft__msgf(err, errlen, "%s: %s", name_or_path, weft_strerror(r));
            /* Anything that stops us reaching the file counts as "not found". */
            return r == -ENOMEM ? r : -ENOENT;
        }
        if (!S_ISREG(st.st_mode)) {
            weft__msgf(err, errlen, "%s: not a regular file", name_or_path);
            return -ENOEXEC;
        }
        path = strdup(name_or_path);
        if (!path) {
            weft__msgf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    } else {
        /* Only a plain word is joined with a folder: "..", "x.so" or ""
         * must not turn into some other file. */
        if (!valid_plugin_name(name_or_path)) {
            weft__msgf(
                err, errlen,
                "invalid plugin name \"%s\": want [a-z0-9_-]+, or a path containing '/'",
                name_or_path);
            return -EINVAL;
        }
        r = find_plugin(&path, name_or_path, dirs, n_dirs, err, errlen);
        if (r == -ENOMEM)
            weft__msgf(err, errlen, "out of memory");
        if (r < 0)
            return r;
    }

    p = calloc(1, sizeof *p);
    if (!p) {
        weft__msgf(err, errlen, "out of memory");
        r = -ENOMEM;
        goto fail_path;
    }
    p->fd = -1;
    /* The checks walk the resolved path; a symlinked build tree is fine,
     * what it points at is what must be safe. */
    p->path = realpath(path, NULL);
    if (!p->path) {
        r = -errno;
        weft__msgf(err, errlen, "%s: %s", path, weft_strerror(r));
        r = r == -ENOMEM ? r : -ENOENT;
        goto fail_alloc;
    }
    free(path);
    path = NULL;

    struct stat st;
    r = open_checked(p->path, !unsafe_plugins_allowed(), &p->fd, &st, err, errlen);
    if (r < 0)
        goto fail_alloc;
    r = hash_fd(p->fd, p->path, &p->file_hash, err, errlen);
    if (r < 0)
        goto fail_alloc;
    if (weft__plugin_open_test_hook)
        weft__plugin_open_test_hook(p->path);
    r = dlopen_fd(p, &st, err, errlen);
    if (r < 0)
        goto fail_alloc;

    dlerror();
    const weft_plugin_t *entry = dlsym(p->dl, WEFT_PLUGIN_ENTRY_NAME);
    if (!entry) {
        weft__msgf(err, errlen, "%s: no symbol %s (is it a weft plugin?): %s", p->path,
                   WEFT_PLUGIN_ENTRY_NAME, dl_error_text(p->fd, "the symbol is NULL"));
        r = -ENOEXEC;
        goto fail_alloc;
    }

    r = weft__plugin_check(entry, &p->desc, p->path, err, errlen);
    if (r < 0)
        goto fail_alloc;

    *out = p;
    return 0;

fail_alloc:
    weft__plugin_close(&p);
fail_path:
    free(path);
    return r;
}

void weft__plugin_close(weft__plugin_t **pp)
{
    if (!pp || !*pp)
        return;
    weft__plugin_t *p = *pp;
    if (p->dl)
        dlclose(p->dl);
    if (p->fd >= 0)
        close(p->fd);
    free(p->path);
    free(p);
    *pp = NULL;
}
