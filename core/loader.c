/* SPDX-License-Identifier: MIT */
/* Finding, loading and checking task plugins; the search order is in loader.h. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "weft/weft.h"

/* The ABI-1 descriptor ends with destroy; a plugin's struct may be larger
 * (newer) but never smaller. */
#define WEFT__PLUGIN_ABI1_SIZE                                                           \
    (offsetof(weft_plugin_t, destroy) + sizeof(((weft_plugin_t *)0)->destroy))

/* A schema this long is a corrupt descriptor, not a real plugin; the bound
 * keeps the checks from walking off into unmapped memory. */
#define WEFT__MAX_ARGS 1024

static void seterr(char *err, size_t errlen, const char *fmt, ...) WEFT_PRINTF(3, 4);

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

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

static char *path_join(const char *dir, const char *name, const char *suffix)
{
    size_t dl = strlen(dir), nl = strlen(name), sl = strlen(suffix);
    bool slash = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + slash + nl + sl + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    if (slash)
        p[dl] = '/';
    memcpy(p + dl + slash, name, nl);
    memcpy(p + dl + slash + nl, suffix, sl + 1);
    return p;
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
                dir = path_join(base, elem, "");
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
#ifdef WEFT_PLUGINDIR
    if ((r = dirlist_add(&l, strdup(WEFT_PLUGINDIR))) < 0)
        goto fail;
#endif
    /* Not knowing where we run from only loses these folders.  An
     * installed tree moved elsewhere (or installed with DESTDIR) still
     * finds its plugins relative to bin/; a build tree has plugins/. */
    char *exe = exe_dir();
    if (exe) {
#ifdef WEFT_PLUGINDIR_FROM_BINDIR
        r = dirlist_add(&l, path_join(exe, WEFT_PLUGINDIR_FROM_BINDIR, ""));
#endif
        if (r >= 0)
            r = dirlist_add(&l, path_join(exe, "plugins", ""));
        free(exe);
        if (r < 0)
            goto fail;
    }

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
    for (size_t i = 0; i < n_dirs; i++) {
        /* "" would give a path without a '/', which dlopen searches for in
         * LD_LIBRARY_PATH and the cwd. */
        if (!dirs[i][0])
            continue;
        char *path = path_join(dirs[i], name, ".so");
        if (!path)
            return -ENOMEM;
        if (is_regular_file(path)) {
            *out = path;
            return 0;
        }
        free(path);
    }

    if (err && errlen > 0) {
        size_t len = (size_t)snprintf(err, errlen, "plugin %s: no %s.so in ", name, name);
        if (n_dirs == 0 && len < errlen)
            len += (size_t)snprintf(err + len, errlen - len, "(no folders to search)");
        for (size_t i = 0; i < n_dirs && len < errlen; i++)
            len +=
                (size_t)snprintf(err + len, errlen - len, "%s%s", i ? ", " : "", dirs[i]);
        if (len < errlen)
            snprintf(err + len, errlen - len, " (set WEFT_PLUGIN_PATH or give a path)");
    }
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
        seterr(err, errlen, "%s: n_args is %zu but args is NULL", path, d->n_args);
        return -ENOEXEC;
    }
    if (d->n_args > WEFT__MAX_ARGS) {
        seterr(err, errlen, "%s: n_args %zu is more than %d", path, d->n_args,
               WEFT__MAX_ARGS);
        return -ENOEXEC;
    }
    for (size_t k = 0; k < d->n_args; k++) {
        const weft_arg_spec_t *a = &d->args[k];
        if (!a->name) {
            seterr(err, errlen, "%s: argument %zu has no name", path, k);
            return -ENOEXEC;
        }
        if (!valid_arg_name(a->name)) {
            seterr(err, errlen,
                   "%s: argument %zu: invalid name \"%s\" (want [a-z_][a-z0-9_]*)", path,
                   k, a->name);
            return -ENOEXEC;
        }
        for (size_t j = 0; j < k; j++) {
            if (strcmp(d->args[j].name, a->name) == 0) {
                seterr(err, errlen, "%s: argument %zu: duplicate name \"%s\"", path, k,
                       a->name);
                return -ENOEXEC;
            }
        }
        if ((int)a->type < WEFT_ARG_INT || (int)a->type > WEFT_ARG_OUTDIR) {
            seterr(err, errlen, "%s: argument \"%s\": unknown type %d", path, a->name,
                   (int)a->type);
            return -ENOEXEC;
        }
        /* Also rejects NaN bounds. */
        if (!(a->min <= a->max)) {
            seterr(err, errlen, "%s: argument \"%s\": min %g is above max %g", path,
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
        seterr(err, errlen, "%s: plugin ABI version %u, this weft speaks %u", path,
               (unsigned)entry->abi_version, (unsigned)WEFT_PLUGIN_ABI_VERSION);
        return -ENOEXEC;
    }
    if (entry->struct_size < WEFT__PLUGIN_ABI1_SIZE) {
        seterr(err, errlen, "%s: plugin struct_size %u is smaller than ABI %u's %zu",
               path, (unsigned)entry->struct_size, (unsigned)WEFT_PLUGIN_ABI_VERSION,
               (size_t)WEFT__PLUGIN_ABI1_SIZE);
        return -ENOEXEC;
    }
    /* A newer plugin's extra fields are not ours to read; an older one's
     * missing fields stay NULL/0. */
    size_t n = entry->struct_size < sizeof *desc ? entry->struct_size : sizeof *desc;
    memcpy(desc, entry, n);

    const char *missing = !desc->name          ? "name"
                          : !desc->init        ? "init"
                          : !desc->process_one ? "process_one"
                                               : NULL;
    if (missing) {
        seterr(err, errlen, "%s: the descriptor has no %s (required)", path, missing);
        goto fail;
    }
    if (!*desc->name) {
        seterr(err, errlen, "%s: the descriptor's name is empty", path);
        goto fail;
    }
    if (check_schema(desc, path, err, errlen) < 0)
        goto fail;
    return 0;

fail:
    memset(desc, 0, sizeof *desc);
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
            seterr(err, errlen, "%s: %s", name_or_path, weft_strerror(r));
            /* Anything that stops us reaching the file counts as "not found". */
            return r == -ENOMEM ? r : -ENOENT;
        }
        if (!S_ISREG(st.st_mode)) {
            seterr(err, errlen, "%s: not a regular file", name_or_path);
            return -ENOEXEC;
        }
        path = strdup(name_or_path);
        if (!path) {
            seterr(err, errlen, "out of memory");
            return -ENOMEM;
        }
    } else {
        /* Only a plain word is joined with a folder: "..", "x.so" or ""
         * must not turn into some other file. */
        if (!valid_plugin_name(name_or_path)) {
            seterr(
                err, errlen,
                "invalid plugin name \"%s\": want [a-z0-9_-]+, or a path containing '/'",
                name_or_path);
            return -EINVAL;
        }
        r = find_plugin(&path, name_or_path, dirs, n_dirs, err, errlen);
        if (r == -ENOMEM)
            seterr(err, errlen, "out of memory");
        if (r < 0)
            return r;
    }

    p = calloc(1, sizeof *p);
    if (!p) {
        seterr(err, errlen, "out of memory");
        r = -ENOMEM;
        goto fail_path;
    }
    p->path = path;

    /* RTLD_NOW: an unresolved symbol fails here, not in the middle of a
     * run; RTLD_LOCAL: plugins cannot see or clash with each other. */
    dlerror();
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        const char *e = dlerror();
        seterr(err, errlen, "%s", e ? e : "dlopen failed");
        r = -ENOEXEC;
        goto fail_alloc;
    }

    dlerror();
    const weft_plugin_t *entry = dlsym(p->dl, WEFT_PLUGIN_ENTRY_NAME);
    if (!entry) {
        const char *e = dlerror();
        seterr(err, errlen, "%s: no symbol %s (is it a weft plugin?): %s", path,
               WEFT_PLUGIN_ENTRY_NAME, e ? e : "symbol is NULL");
        r = -ENOEXEC;
        goto fail_dl;
    }

    r = weft__plugin_check(entry, &p->desc, path, err, errlen);
    if (r < 0)
        goto fail_dl;

    *out = p;
    return 0;

fail_dl:
    dlclose(p->dl);
fail_alloc:
    free(p);
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
    free(p->path);
    free(p);
    *pp = NULL;
}
