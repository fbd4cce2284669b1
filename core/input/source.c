/* SPDX-License-Identifier: MIT */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "source.h"
#include "util.h"
#include "weft/weft.h"

/* Bytes read from a file per read(2); also the counting pass's chunk. */
#define READ_CHUNK ((size_t)1 << 20)

/* ---- shared helpers ---------------------------------------------------- */

/* "FILE:LINE: items = 'VALUE'": every message of a source starts so. */
static void label_of(const weft__entry_t *items, char *buf, size_t size)
{
    char where[512];
    snprintf(buf, size, "%s: items = '%s'", weft__entry_where(items, where, sizeof where),
             items->value);
}

/* Writes "LABEL: <fmt>" into err and returns rc. */
WEFT_PRINTF(5, 6)
static int failf(char *err, size_t errlen, const char *label, int rc, const char *fmt,
                 ...)
{
    weft__msgf(err, errlen, "%s: ", label);
    va_list ap;
    va_start(ap, fmt);
    weft__vmsg_appendf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int fail_oom(char *err, size_t errlen, const char *label)
{
    return failf(err, errlen, label, -ENOMEM, "out of memory");
}

/* The text after `prefix` (blanks after the colon skipped), or NULL when
 * spec does not start with prefix. */
static const char *spec_arg(const char *spec, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(spec, prefix, n) != 0)
        return NULL;
    return spec + n + strspn(spec + n, " \t");
}

/* Opens `path` for reading; a folder is refused (reading one fails only
 * later, with a less helpful EISDIR). */
static int open_file(const char *path, const char *label, struct stat *st, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return failf(err, errlen, label, -errno, "%s: %s", path, weft_strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return failf(err, errlen, label, -e, "%s: %s", path, weft_strerror(e));
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        return failf(err, errlen, label, -EISDIR, "%s: is a folder, not a file", path);
    }
    return fd;
}

/* read(2) that retries on EINTR: bytes read, 0 at the end, or -errno. */
static ssize_t read_some(int fd, char *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR)
            return n >= 0 ? n : -errno;
    }
}

/* ---- text lists: every item's text in one arena ------------------------ */

/*
 * files: and json: know all their items at open time.  Their texts sit
 * back to back, NUL-terminated, in one buffer; item k spans
 * [offs[k], offs[k + 1] - 1).  Nothing is allocated per window.
 */
typedef struct list_source {
    weft__source_t base;
    weft__buf_t texts;
    size_t *offs; /* n + 1 entries once finished */
    size_t n, cap;
    uint64_t next; /* index of the next item to hand out */
} list_source_t;

/* Appends len bytes of s as the next item's text. */
static int list_add(list_source_t *l, const char *s, size_t len)
{
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *offs = realloc(l->offs, cap * sizeof *offs);
        if (!offs)
            return -ENOMEM;
        l->offs = offs;
        l->cap = cap;
    }
    l->offs[l->n] = l->texts.len;
    if (weft__buf_reserve(&l->texts, len + 1) != 0)
        return -ENOMEM;
    memcpy(l->texts.data + l->texts.len, s, len);
    l->texts.data[l->texts.len + len] = '\0';
    l->texts.len += len + 1;
    l->n++;
    l->offs[l->n] = l->texts.len; /* end sentinel, kept valid at all times */
    return 0;
}

static int list_next(weft__source_t *src, weft_item_t *items, size_t max, size_t *got,
                     char *err, size_t errlen)
{
    (void)err, (void)errlen;
    list_source_t *l = (list_source_t *)src;
    size_t left = l->n - (size_t)l->next;
    size_t n = left < max ? left : max;
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)l->next + k;
        items[k] = (weft_item_t){
            .index = i,
            .number = (int64_t)i,
            .text = l->texts.data + l->offs[i],
            .text_len = l->offs[i + 1] - l->offs[i] - 1,
        };
    }
    l->next += n;
    *got = n;
    return 0;
}

static void list_close(weft__source_t *src)
{
    list_source_t *l = (list_source_t *)src;
    if (!l)
        return;
    weft__buf_free(&l->texts);
    free(l->offs);
    free(l);
}

/* ---- lines: `items = lines:FILE`, `lines:-`, `stdin` ------------------- */

/* A window stops early past this many bytes of text, so that 65536 long
 * lines do not all sit in memory at once. */
#define LINES_WINDOW_BYTES ((size_t)64 << 20)

typedef struct lines_source {
    weft__source_t base;
    int fd;
    bool own_fd; /* false for standard input */
    bool eof;
    char *name;  /* the path, or "standard input", for messages */
    char *label; /* "FILE:LINE: items = '...'" for errors in next() */
    char *buf;   /* read buffer: bytes [pos, end) not consumed yet */
    size_t pos, end;
    weft__buf_t arena; /* this window's lines; reused window after window */
    uint64_t next;     /* index of the next line */
} lines_source_t;

static void lines_close(weft__source_t *src)
{
    lines_source_t *s = (lines_source_t *)src;
    if (!s)
        return;
    if (s->own_fd && s->fd >= 0)
        close(s->fd);
    free(s->name);
    free(s->label);
    free(s->buf);
    weft__buf_free(&s->arena);
    free(s);
}

static lines_source_t *lines_alloc(const char *name, const char *label)
{
    lines_source_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = -1;
    s->name = strdup(name);
    s->label = strdup(label);
    s->buf = malloc(READ_CHUNK);
    if (!s->name || !s->label || !s->buf) {
        lines_close(&s->base);
        return NULL;
    }
    return s;
}

/* First pass: lines in fd from its current offset to the end.  A final
 * line without a newline counts. */
static int count_lines(int fd, char *buf, uint64_t *lines)
{
    uint64_t n = 0;
    char last = '\n';
    for (;;) {
        ssize_t got = read_some(fd, buf, READ_CHUNK);
        if (got < 0)
            return (int)got;
        if (got == 0)
            break;
        for (const char *p = buf, *end = buf + got;
             (p = memchr(p, '\n', (size_t)(end - p))); p++)
            n++;
        last = buf[got - 1];
    }
    *lines = n + (last != '\n');
    return 0;
}

/* Appends the next line to the arena, NUL-terminated, without its "\n"
 * or "\r\n".  1 for a line, 0 at the end of input, or -errno. */
static int read_line(lines_source_t *s)
{
    size_t start = s->arena.len;
    for (;;) {
        if (s->pos == s->end) {
            ssize_t got = read_some(s->fd, s->buf, READ_CHUNK);
            if (got < 0)
                return (int)got;
            if (got == 0) {
                if (s->arena.len == start)
                    return 0; /* the previous line ended the input */
                break;        /* a final line without a newline */
            }
            s->pos = 0;
            s->end = (size_t)got;
        }
        const char *p = s->buf + s->pos;
        const char *nl = memchr(p, '\n', s->end - s->pos);
        size_t take = nl ? (size_t)(nl - p) : s->end - s->pos;
        if (weft__buf_append(&s->arena, p, take) != 0)
            return -ENOMEM;
        s->pos += take + (nl != NULL);
        if (nl) {
            /* The '\r' may have come with the previous read. */
            if (s->arena.len > start && s->arena.data[s->arena.len - 1] == '\r')
                s->arena.len--;
            break;
        }
    }
    return weft__buf_append(&s->arena, "", 1) == 0 ? 1 : -ENOMEM;
}

/* Called at the end of input after `n` more lines. */
static int lines_ended(lines_source_t *s, size_t n, char *err, size_t errlen)
{
    s->eof = true;
    (void)err, (void)errlen;
    if (s->next + n == 0)
        snprintf(s->base.empty, sizeof s->base.empty, "%s has no lines", s->name);
    /* The count of the first pass is advisory: the file may have changed. */
    s->base.total = s->next + n;
    return 0;
}

static int lines_next(weft__source_t *src, weft_item_t *items, size_t max, size_t *got,
                      char *err, size_t errlen)
{
    lines_source_t *s = (lines_source_t *)src;
    size_t n = 0;
    *got = 0;
    if (s->eof)
        return 0;
    s->arena.len = 0;
    while (n < max && (n == 0 || s->arena.len < LINES_WINDOW_BYTES)) {
        size_t off = s->arena.len;
        int rc = read_line(s);
        if (rc < 0)
            return failf(err, errlen, s->label, rc, "%s: %s", s->name, weft_strerror(rc));
        if (rc == 0) {
            rc = lines_ended(s, n, err, errlen);
            if (rc)
                return rc;
            break;
        }
        /* The arena may still move: keep the offset in `number` for now. */
        items[n] = (weft_item_t){
            .index = s->next + n,
            .number = (int64_t)off,
            .text_len = s->arena.len - off - 1,
        };
        n++;
    }
    for (size_t k = 0; k < n; k++) {
        items[k].text = s->arena.data + items[k].number;
        items[k].number = (int64_t)items[k].index;
    }
    s->next += n;
    if (s->base.total != WEFT__COUNT_UNKNOWN && s->next > s->base.total)
        s->base.total = s->next; /* never below what was handed out */
    *got = n;
    return 0;
}

/* Counts the lines of a regular file and rewinds it; else total unknown. */
static int lines_prepare(lines_source_t *s, const struct stat *st, char *err,
                         size_t errlen)
{
    s->base.total = WEFT__COUNT_UNKNOWN;
    if (!S_ISREG(st->st_mode))
        return 0; /* a FIFO or a device: it can be read only once */
    uint64_t count = 0;
    int rc = count_lines(s->fd, s->buf, &count);
    if (rc == 0 && lseek(s->fd, 0, SEEK_SET) != 0)
        rc = -errno;
    if (rc)
        return failf(err, errlen, s->label, rc, "%s: %s", s->name, weft_strerror(rc));
    if (count == 0)
        snprintf(s->base.empty, sizeof s->base.empty, "%s has no lines", s->name);
    posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s->base.total = count;
    return 0;
}

static int stdin_accepts(const char *spec)
{
    const char *arg = spec_arg(spec, "lines:");
    return strcmp(spec, "stdin") == 0 || (arg && strcmp(arg, "-") == 0);
}

static int lines_accepts(const char *spec)
{
    return spec_arg(spec, "lines:") != NULL && !stdin_accepts(spec);
}

static int lines_open(weft__source_t **out, const weft__entry_t *items,
                      const weft__config_t *cfg, char *err, size_t errlen)
{
    char label[1024];
    label_of(items, label, sizeof label);
    const char *arg = spec_arg(items->value, "lines:");
    if (!arg[0])
        return failf(err, errlen, label, -EINVAL,
                     "expected a file after 'lines:' (lines:FILE, or lines:- for "
                     "standard input)");
    char *path = weft__path_resolve(cfg->dir, arg);
    lines_source_t *s = path ? lines_alloc(path, label) : NULL;
    free(path);
    if (!s)
        return fail_oom(err, errlen, label);
    struct stat st;
    s->own_fd = true;
    s->fd = open_file(s->name, label, &st, err, errlen);
    int rc = s->fd < 0 ? s->fd : lines_prepare(s, &st, err, errlen);
    if (rc) {
        lines_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

static const weft__source_vtbl_t lines_vtbl = {
    .name = "lines",
    .usage = "lines:FILE",
    .accepts = lines_accepts,
    .open = lines_open,
    .next = lines_next,
    .close = lines_close,
};

static int stdin_open(weft__source_t **out, const weft__entry_t *items,
                      const weft__config_t *cfg, char *err, size_t errlen)
{
    char label[1024];
    label_of(items, label, sizeof label);
    if (cfg->from_stdin)
        return failf(err, errlen, label, -EINVAL,
                     "standard input already held the config (weft run -): give the items "
                     "in a file (lines:FILE)");
    lines_source_t *s = lines_alloc("standard input", label);
    if (!s)
        return fail_oom(err, errlen, label);
    s->fd = STDIN_FILENO;
    /* Whether it is empty shows only at the first read, in next(). */
    s->base.total = WEFT__COUNT_UNKNOWN;
    *out = &s->base;
    return 0;
}

static const weft__source_vtbl_t stdin_vtbl = {
    .name = "stdin",
    .usage = "stdin (or lines:-)",
    .accepts = stdin_accepts,
    .open = stdin_open,
    .next = lines_next,
    .close = lines_close,
};

/* ---- files: `items = files:DIR` or `files:PATTERN` --------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of the regular files in d (dot-files left out), back to back
 * in `names`; *count of them. */
static int read_names(DIR *d, weft__buf_t *names, size_t *count)
{
    struct dirent *e;
    for (errno = 0; (e = readdir(d)); errno = 0) {
        if (e->d_name[0] == '.')
            continue;
        bool reg = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat st; /* follow symbolic links, like stat(2) */
            reg = fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode);
        }
        if (reg && weft__buf_append(names, e->d_name, strlen(e->d_name) + 1) != 0)
            return -ENOMEM;
        *count += reg;
    }
    return -errno;
}

/* Adds dir/name for each name, sorted with strcmp. */
static int add_sorted(list_source_t *l, const char *dir, const weft__buf_t *names,
                      size_t count)
{
    const char **v = malloc((count ? count : 1) * sizeof *v);
    /* NAME_MAX is 255, so path always has room. */
    size_t size = strlen(dir) + 2 + 256;
    char *path = malloc(size);
    int rc = v && path ? 0 : -ENOMEM;
    const char *p = names->data;
    for (size_t k = 0; rc == 0 && k < count; k++, p += strlen(p) + 1)
        v[k] = p;
    if (rc == 0)
        qsort(v, count, sizeof *v, cmp_str);
    for (size_t k = 0; rc == 0 && k < count; k++) {
        rc = weft__path_join(path, size, dir, v[k]);
        if (rc == 0)
            rc = list_add(l, path, strlen(path));
    }
    free(path);
    free(v);
    return rc;
}

static int files_dir(list_source_t *l, const char *dir, const char *label, char *err,
                     size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return failf(err, errlen, label, -errno, "%s: %s", dir, weft_strerror(errno));
    weft__buf_t names = {0};
    size_t count = 0;
    int rc = read_names(d, &names, &count);
    closedir(d);
    if (rc == 0)
        rc = add_sorted(l, dir, &names, count);
    weft__buf_free(&names);
    if (rc == -ENOMEM)
        return fail_oom(err, errlen, label);
    if (rc)
        return failf(err, errlen, label, rc, "%s: %s", dir, weft_strerror(rc));
    if (l->n == 0)
        snprintf(l->base.empty, sizeof l->base.empty,
                 "no regular files in %s (dot-files are skipped)", dir);
    return 0;
}

/* glob(3)'s error callback has no user pointer: the first failure goes
 * here (sources are opened on the main thread; thread-local regardless). */
static _Thread_local struct {
    char path[512];
    int errnum;
} glob_failure;

static int glob_error(const char *path, int errnum)
{
    if (!glob_failure.errnum) {
        snprintf(glob_failure.path, sizeof glob_failure.path, "%s", path);
        glob_failure.errnum = errnum;
    }
    return 1; /* stop */
}

/* The paths glob(3) matches (GLOB_ERR; a leading '.' must be matched
 * explicitly) that are regular files (dirs false) or folders (dirs true),
 * symbolic links followed, NUL-terminated into out; *count of them.  0, or
 * a negative errno with err set.  missing_ok: a folder of the pattern that
 * is not there (ENOENT, ENOTDIR) is no match rather than an error. */
static int glob_paths(const char *pattern, bool dirs, bool missing_ok, weft__buf_t *out,
                      size_t *count, const char *label, char *err, size_t errlen)
{
    glob_t g = {0};
    glob_failure.errnum = 0;
    /* We sort with strcmp ourselves: glob's order follows the locale. */
    /* No GLOB_ONLYDIR: glibc's may drop symbolic links to folders. */
    int rc = glob(pattern, GLOB_ERR | GLOB_NOSORT, glob_error, &g);
    if (rc == GLOB_ABORTED && missing_ok &&
        (glob_failure.errnum == ENOENT || glob_failure.errnum == ENOTDIR)) {
        globfree(&g);
        return 0;
    }
    if (rc == GLOB_ABORTED) {
        globfree(&g);
        int e = glob_failure.errnum ? glob_failure.errnum : EIO;
        return failf(err, errlen, label, -e, "%s: %s",
                     glob_failure.errnum ? glob_failure.path : pattern, weft_strerror(e));
    }
    if (rc == GLOB_NOSPACE) {
        globfree(&g);
        return fail_oom(err, errlen, label);
    }
    size_t n = rc == 0 ? g.gl_pathc : 0;
    rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        struct stat st;
        const char *p = g.gl_pathv[k];
        if (stat(p, &st) != 0 || !(dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)))
            continue;
        rc = weft__buf_append(out, p, strlen(p) + 1);
        ++*count;
    }
    globfree(&g);
    return rc ? fail_oom(err, errlen, label) : 0;
}

/* Adds the count NUL-terminated paths of `paths`, sorted with strcmp, each
 * once. */
static int add_paths(list_source_t *l, const weft__buf_t *paths, size_t count)
{
    const char **v = malloc((count ? count : 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    const char *p = paths->data;
    for (size_t k = 0; k < count; k++, p += strlen(p) + 1)
        v[k] = p;
    qsort(v, count, sizeof *v, cmp_str);
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < count; k++)
        if (k == 0 || strcmp(v[k - 1], v[k]) != 0)
            rc = list_add(l, v[k], strlen(v[k]));
    free(v);
    return rc;
}

static int files_glob(list_source_t *l, const char *pattern, const char *label, char *err,
                      size_t errlen)
{
    weft__buf_t found = {0};
    size_t count = 0;
    int rc = glob_paths(pattern, false, false, &found, &count, label, err, errlen);
    if (rc == 0 && add_paths(l, &found, count) != 0)
        rc = fail_oom(err, errlen, label);
    weft__buf_free(&found);
    if (rc)
        return rc;
    if (l->n == 0)
        snprintf(l->base.empty, sizeof l->base.empty, "no regular file matches %s",
                 pattern);
    return 0;
}

/* dir with glob's special characters escaped, so that a config folder
 * named "[2024] runs" is taken literally under a relative pattern. */
static char *glob_escape(const char *dir)
{
    size_t n = strlen(dir);
    char *out = malloc(2 * n + 1), *o = out;
    for (const char *p = dir; out && *p; p++) {
        if (strchr("*?[]\\", *p))
            *o++ = '\\';
        *o++ = *p;
    }
    if (out)
        *o = '\0';
    return out;
}

/* ---- files:PATTERN with `**` ------------------------------------------- */

/*
 * glob(3) has no `**`.  A `**` component (exactly those two bytes between
 * slashes) matches zero or more folder levels: the pattern HEAD, `**`,
 * TAIL (slashes between) is glob(F/TAIL) for every folder F under each
 * folder HEAD matches, those included.  The walk from a HEAD folder descends only into real
 * folders: never through a symbolic link (as bash's globstar, and find
 * without -L), which also means no symlink loop, and never into a name
 * starting with '.' (as `*` skips them).  A folder that is its own
 * ancestor (a bind mount of a parent) is not entered again.  The walk is
 * iterative, breadth first, over an array: any depth is safe for the
 * stack; a path longer than PATH_MAX - 1 is an error, as it is for glob.
 * HEAD and TAIL are glob's own, so `*` in them follows symbolic links as
 * glob does; a TAIL with another `**` recurses, once per `**` (at most
 * MAX_GLOB_LEVELS).  A trailing `**` is `**` then `*`.  The files found
 * are sorted, each path once: the pattern's empty and "." components are
 * dropped first, so that a file has one spelling (and a ".." after a `**`
 * is refused, for the same reason).
 */

/* The first `**` component of p, or NULL. */
static const char *globstar_at(const char *p)
{
    for (const char *c = p; (c = strstr(c, "**")); c++)
        if ((c == p || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
            return c;
    return NULL;
}

typedef struct walk_node {
    size_t off;      /* its path in the walk's `paths`                  */
    size_t parent;   /* index of the folder it is in; SIZE_MAX: a root  */
    dev_t dev;
    ino_t ino;
} walk_node_t;

/* dir '/' name into out (PATH_MAX bytes): no '/' after "" or a '/'. */
static int join_child(char *out, const char *dir, const char *name)
{
    size_t nd = strlen(dir), nn = strlen(name);
    bool slash = nd > 0 && dir[nd - 1] != '/';
    if (nd + slash + nn >= PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(out, dir, nd);
    out[nd] = '/';
    memcpy(out + nd + slash, name, nn + 1);
    return 0;
}

/* The folders of the walk from root ("" is the current folder), root
 * first, NUL-terminated into *dirs; *count of them.  A root that is not
 * there or not a folder is an error, as glob(3) has a pattern's folder. */
static int walk_folders(const char *root, weft__buf_t *dirs, size_t *count,
                        const char *label, char *err, size_t errlen)
{
    struct stat st;
    const char *r = root[0] ? root : ".";
    if (stat(r, &st) != 0)
        return failf(err, errlen, label, -errno, "%s: %s", r, weft_strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return failf(err, errlen, label, -ENOTDIR, "%s: %s", r, weft_strerror(ENOTDIR));
    walk_node_t *nodes = NULL;
    size_t n = 0, cap = 0;
    char path[PATH_MAX];
    int rc = 0;
    for (size_t i = 0; rc == 0; i++) {
        if (i == 0) { /* the root */
            cap = 64;
            nodes = malloc(cap * sizeof *nodes);
            if (!nodes || weft__buf_append(dirs, root, strlen(root) + 1) != 0) {
                rc = fail_oom(err, errlen, label);
                break;
            }
            nodes[n++] = (walk_node_t){0, SIZE_MAX, st.st_dev, st.st_ino};
        } else if (i >= n) {
            break;
        }
        /* Copied: appending below may move dirs' bytes. */
        snprintf(path, sizeof path, "%s", dirs->data + nodes[i].off);
        DIR *d = opendir(path[0] ? path : ".");
        if (!d) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue; /* removed or replaced since: as glob, no match */
            rc = failf(err, errlen, label, -errno, "%s: %s", path[0] ? path : ".",
                       weft_strerror(errno));
            break;
        }
        struct dirent *e;
        for (errno = 0; rc == 0 && (e = readdir(d)); errno = 0) {
            if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
                continue; /* dot-names, files, and symbolic links: not entered */
            struct stat cst;
            if (fstatat(dirfd(d), e->d_name, &cst, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISDIR(cst.st_mode))
                continue;
            bool loop = false;
            for (size_t a = i; a != SIZE_MAX && !loop; a = nodes[a].parent)
                loop = nodes[a].dev == cst.st_dev && nodes[a].ino == cst.st_ino;
            if (loop)
                continue;
            char child[PATH_MAX];
            if (join_child(child, path, e->d_name) != 0) {
                rc = failf(err, errlen, label, -ENAMETOOLONG, "%s/%s: %s", path, e->d_name,
                           weft_strerror(ENAMETOOLONG));
                break;
            }
            if (n == cap) {
                size_t c = 2 * cap;
                walk_node_t *p = realloc(nodes, c * sizeof *nodes);
                if (!p) {
                    rc = fail_oom(err, errlen, label);
                    break;
                }
                nodes = p;
                cap = c;
            }
            nodes[n] = (walk_node_t){dirs->len, i, cst.st_dev, cst.st_ino};
            if (weft__buf_append(dirs, child, strlen(child) + 1) != 0) {
                rc = fail_oom(err, errlen, label);
                break;
            }
            n++;
        }
        if (rc == 0 && errno)
            rc = failf(err, errlen, label, -errno, "%s: %s", path, weft_strerror(errno));
        closedir(d);
    }
    free(nodes);
    *count = rc ? 0 : n;
    return rc;
}

static char *glob_escape(const char *dir);

/* A folder, symbolic links followed ("" is the current one). */
static bool is_folder(const char *path)
{
    struct stat st;
    return stat(path[0] ? path : ".", &st) == 0 && S_ISDIR(st.st_mode);
}

/* What a `**` expansion carries: the files found, the sub-patterns
 * already globbed (`F/TAIL` strings: a folder reached again through
 * another split of the pattern, as `**` then `*` then `**` allows, is not
 * globbed again, so the work stays linear in folders times `**`s), and
 * where errors go. */
typedef struct star {
    weft__buf_t found;
    size_t n_found;
    weft__buf_t keys; /* the sub-patterns done, NUL-terminated           */
    size_t *slots;    /* open addressing: 1 + an offset in keys; 0 free  */
    size_t n_slots, n_keys;
    const char *label;
    char *err;
    size_t errlen;
} star_t;

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)h;
}

/* 1 when key was done already, else 0 (and it is now); -ENOMEM. */
static int star_seen(star_t *st, const char *key)
{
    if (2 * (st->n_keys + 1) > st->n_slots) {
        size_t n = st->n_slots ? 2 * st->n_slots : 256;
        size_t *slots = calloc(n, sizeof *slots);
        if (!slots)
            return -ENOMEM;
        for (size_t k = 0; k < st->n_slots; k++) {
            if (!st->slots[k])
                continue;
            size_t i = hash_str(st->keys.data + st->slots[k] - 1) & (n - 1);
            while (slots[i])
                i = (i + 1) & (n - 1);
            slots[i] = st->slots[k];
        }
        free(st->slots);
        st->slots = slots;
        st->n_slots = n;
    }
    size_t i = hash_str(key) & (st->n_slots - 1);
    for (; st->slots[i]; i = (i + 1) & (st->n_slots - 1))
        if (strcmp(st->keys.data + st->slots[i] - 1, key) == 0)
            return 1;
    size_t off = st->keys.len;
    if (weft__buf_append(&st->keys, key, strlen(key) + 1) != 0)
        return -ENOMEM;
    st->slots[i] = off + 1;
    st->n_keys++;
    return 0;
}

/* Adds the regular files `pattern` (with a `**` at star) matches to
 * st->found.  0 or a negative errno with st->err set.  nested: pattern is
 * a TAIL under a folder of a walk, where a missing folder is no match. */
static int globstar(star_t *st, const char *pattern, const char *star, bool nested)
{
    const char *label = st->label;
    char *err = st->err;
    size_t errlen = st->errlen;
    /* HEAD: before the `**`, without its last '/' unless that is all. */
    size_t hn = (size_t)(star - pattern);
    if (hn > 1 && pattern[hn - 1] == '/')
        hn--;
    char *head = malloc(hn + 1);
    if (!head)
        return fail_oom(err, errlen, label);
    memcpy(head, pattern, hn);
    head[hn] = '\0';
    /* TAIL: after it and any `**` right after; a trailing one means `*`. */
    const char *tail = star;
    while (strncmp(tail, "**/", 3) == 0)
        tail += 3;
    if (strcmp(tail, "**") == 0)
        tail = "*";
    const char *next = globstar_at(tail);
    size_t nt = strlen(tail);

    weft__buf_t roots = {0}, dirs = {0};
    size_t n_roots = 0;
    int rc = 0;
    if (strpbrk(head, "*?["))
        rc = glob_paths(head, true, nested, &roots, &n_roots, label, err, errlen);
    else if (nested && !is_folder(head))
        n_roots = 0; /* F/sub/... under a folder F without sub */
    else if (weft__buf_append(&roots, head, hn + 1) == 0)
        n_roots = 1;
    else
        rc = fail_oom(err, errlen, label);
    const char *root = roots.data;
    for (size_t r = 0; rc == 0 && r < n_roots; r++, root += strlen(root) + 1) {
        size_t n_dirs = 0;
        dirs.len = 0;
        rc = walk_folders(root, &dirs, &n_dirs, label, err, errlen);
        const char *dir = dirs.data;
        for (size_t k = 0; rc == 0 && k < n_dirs; k++, dir += strlen(dir) + 1) {
            char *esc = glob_escape(dir);
            size_t ne = esc ? strlen(esc) : 0;
            char *sub = esc ? malloc(ne + 1 + nt + 1) : NULL;
            if (!sub) {
                free(esc);
                rc = fail_oom(err, errlen, label);
                break;
            }
            /* "" is the current folder: TAIL alone, as glob has it. */
            size_t at = ne && esc[ne - 1] != '/' ? ne + 1 : ne;
            memcpy(sub, esc, ne);
            sub[ne] = '/';
            memcpy(sub + at, tail, nt + 1);
            int seen = star_seen(st, sub);
            if (seen < 0)
                rc = fail_oom(err, errlen, label);
            else if (!seen && next)
                rc = globstar(st, sub, sub + at + (size_t)(next - tail), true);
            else if (!seen)
                rc = glob_paths(sub, false, true, &st->found, &st->n_found, label, err,
                                errlen);
            free(sub);
            free(esc);
        }
    }
    weft__buf_free(&dirs);
    weft__buf_free(&roots);
    free(head);
    return rc;
}

/* pattern with its empty and "." components dropped ("a//./b" is "a/b"),
 * a leading '/' kept; *folders when it ends in '/' or "/." (it then names
 * folders only), *dotdot when a ".." component follows a `**`.  NULL when
 * out of memory. */
static char *globstar_norm(const char *pattern, bool *folders, bool *dotdot)
{
    char *out = malloc(strlen(pattern) + 2), *w = out;
    if (!out)
        return NULL;
    *folders = *dotdot = false;
    bool star = false;
    if (pattern[0] == '/')
        *w++ = '/';
    for (const char *c = pattern;;) {
        size_t n = strcspn(c, "/");
        bool last = c[n] == '\0';
        if (n == 0 || (n == 1 && c[0] == '.')) {
            *folders = last && c != pattern; /* "x/", "x/." */
        } else {
            if (w > out && w[-1] != '/')
                *w++ = '/';
            memcpy(w, c, n);
            w += n;
            *dotdot |= star && n == 2 && c[0] == '.' && c[1] == '.';
            star |= n == 2 && c[0] == '*' && c[1] == '*';
            *folders = false;
        }
        if (last)
            break;
        c += n + 1;
    }
    *w = '\0';
    return out;
}

static int files_globstar(list_source_t *l, const char *pattern, const char *label,
                          char *err, size_t errlen)
{
    /* One spelling per file, so that each comes once: "a//./b" is "a/b".
     * A ".." after a `**` would spell every file many ways: refused. */
    bool folders, dotdot;
    char *one = globstar_norm(pattern, &folders, &dotdot);
    if (!one)
        return fail_oom(err, errlen, label);
    if (dotdot) {
        free(one);
        return failf(err, errlen, label, -EINVAL,
                     "a '..' after a '**' is not supported (write the folder it means)");
    }
    star_t st = {.label = label, .err = err, .errlen = errlen};
    /* A last '/' names folders: no regular file (glibc's glob would
     * return a file for "dir/name/" when name has no wildcard). */
    int rc = folders ? 0 : globstar(&st, one, globstar_at(one), false);
    free(one);
    if (rc == 0 && add_paths(l, &st.found, st.n_found) != 0)
        rc = fail_oom(err, errlen, label);
    weft__buf_free(&st.found);
    weft__buf_free(&st.keys);
    free(st.slots);
    if (rc)
        return rc;
    if (l->n == 0)
        snprintf(l->base.empty, sizeof l->base.empty, "no regular file matches %s",
                 pattern);
    return 0;
}

/* glob(3) calls itself once per '/' that follows a wildcard (glibc 2.36:
 * ~5000 levels overflow an 8 MiB stack, far fewer under ASan); real
 * patterns have a handful. */
enum { MAX_GLOB_LEVELS = 64 };

static int files_accepts(const char *spec)
{
    return spec_arg(spec, "files:") != NULL;
}

static int files_open(weft__source_t **out, const weft__entry_t *items,
                      const weft__config_t *cfg, char *err, size_t errlen)
{
    char label[1024];
    label_of(items, label, sizeof label);
    const char *arg = spec_arg(items->value, "files:");
    if (!arg[0])
        return failf(err, errlen, label, -EINVAL,
                     "expected a folder or a pattern after 'files:' (files:DIR, "
                     "files:DIR/*.txt)");
    const char *magic = strpbrk(arg, "*?[");
    bool is_glob = magic != NULL;
    size_t levels = 0;
    for (const char *p = magic; p && *p; p++)
        levels += *p == '/';
    if (levels > MAX_GLOB_LEVELS)
        return failf(err, errlen, label, -EINVAL,
                     "%zu '/' after the first wildcard (at most %d): glob(3) recurses once "
                     "per level and would overflow the stack",
                     levels, MAX_GLOB_LEVELS);
    char *dir = is_glob && cfg->dir ? glob_escape(cfg->dir) : NULL;
    list_source_t *l = calloc(1, sizeof *l);
    char *path = is_glob && cfg->dir ? (dir ? weft__path_resolve(dir, arg) : NULL)
                                     : weft__path_resolve(cfg->dir, arg);
    int rc;
    if (!l || !path)
        rc = fail_oom(err, errlen, label);
    else if (is_glob && globstar_at(path))
        rc = files_globstar(l, path, label, err, errlen);
    else if (is_glob)
        rc = files_glob(l, path, label, err, errlen);
    else
        rc = files_dir(l, path, label, err, errlen);
    free(path);
    free(dir);
    if (rc) {
        list_close(l ? &l->base : NULL);
        return rc;
    }
    l->base.total = l->n;
    *out = &l->base;
    return 0;
}

static const weft__source_vtbl_t files_vtbl = {
    .name = "files",
    .usage = "files:DIR or files:PATTERN",
    .accepts = files_accepts,
    .open = files_open,
    .next = list_next,
    .close = list_close,
};

/* ---- json: `items = json:FILE` ----------------------------------------- */

/* The whole file, NUL-terminated. */
static int read_whole(const char *path, const char *label, weft__buf_t *b, char *err,
                      size_t errlen)
{
    struct stat st;
    int fd = open_file(path, label, &st, err, errlen);
    if (fd < 0)
        return fd;
    /* Room for the size, the NUL and the read that sees the end. */
    size_t want = S_ISREG(st.st_mode) ? (size_t)st.st_size + 2 : READ_CHUNK;
    ssize_t got = 1;
    int rc = 0;
    while (rc == 0 && got > 0) {
        if (b->cap - b->len < 2)
            rc = weft__buf_reserve(b, b->len ? b->len : want);
        got = rc ? 0 : read_some(fd, b->data + b->len, b->cap - b->len - 1);
        if (got < 0)
            rc = (int)got;
        else
            b->len += (size_t)got;
    }
    close(fd);
    if (rc == 0)
        b->data[b->len] = '\0'; /* reserve() kept one byte free */
    if (rc == -ENOMEM)
        return fail_oom(err, errlen, label);
    if (rc)
        return failf(err, errlen, label, rc, "%s: %s", path, weft_strerror(rc));
    return 0;
}

/* "PATH:LINE:COL: invalid JSON near '...'" for the byte at `at`. */
static int json_syntax_error(const char *path, const weft__buf_t *b, size_t at,
                             const char *label, char *err, size_t errlen)
{
    unsigned long line = 1, col = 1;
    for (size_t k = 0; k < at; k++, col++)
        if (b->data[k] == '\n')
            line++, col = 0;
    if (at >= b->len)
        return failf(err, errlen, label, -EINVAL,
                     "%s:%lu:%lu: invalid JSON: it ends too soon", path, line, col);
    char near[24];
    size_t n = 0;
    for (size_t k = at; k < b->len && n < sizeof near - 1 && b->data[k] != '\n'; k++)
        near[n++] = (unsigned char)b->data[k] < 0x20 ? '?' : b->data[k];
    near[n] = '\0';
    return failf(err, errlen, label, -EINVAL, "%s:%lu:%lu: invalid JSON near '%s'", path,
                 line, col, near);
}

static const char *json_type(const cJSON *j)
{
    return cJSON_IsObject(j)   ? "an object"
           : cJSON_IsString(j) ? "a string"
           : cJSON_IsNumber(j) ? "a number"
           : cJSON_IsBool(j)   ? "a boolean"
                               : "null";
}

static const char *skip_space(const char *p)
{
    return p + strspn(p, " \t\r\n");
}

/* Past the string whose opening quote is at p (valid JSON). */
static const char *skip_string(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : p;
}

/* Past the value that starts at p, in a document cJSON accepted. */
static const char *skip_value(const char *p)
{
    if (*p == '"')
        return skip_string(p);
    int depth = 0;
    do {
        if (*p == '"')
            p = skip_string(p);
        else
            depth += (*p == '[' || *p == '{') - (*p == ']' || *p == '}'), p++;
    } while (*p && (depth > 0 || !strchr(",]} \t\r\n", *p)));
    return p;
}

/* Adds [p, end) minified: whitespace outside strings dropped.  The text
 * itself is kept, not re-printed, so numbers keep every digit. */
static int add_minified(list_source_t *l, weft__buf_t *scratch, const char *p,
                        const char *end)
{
    scratch->len = 0;
    if (weft__buf_reserve(scratch, (size_t)(end - p)) != 0)
        return -ENOMEM;
    char *o = scratch->data;
    while (p < end) {
        if (*p == '"') {
            const char *q = skip_string(p);
            memcpy(o, p, (size_t)(q - p));
            o += q - p;
            p = q;
        } else if (strchr(" \t\r\n", *p)) {
            p++;
        } else {
            *o++ = *p++;
        }
    }
    return list_add(l, scratch->data, (size_t)(o - scratch->data));
}

/* Where the string literal [p, end) escapes a NUL character (\u0000),
 * or NULL: decoded, it would end there (an item's text is a C string). */
static const char *escaped_nul(const char *p, const char *end)
{
    for (const char *q = p + 1; q < end; q++) {
        if (*q != '\\')
            continue;
        if (q + 5 < end && q[1] == 'u' && memcmp(q + 2, "0000", 4) == 0)
            return q;
        q++; /* the escaped character, never a second backslash's start */
    }
    return NULL;
}

/* One item per element: strings decoded, anything else as its text.  A
 * string holding a NUL character is refused, not cut short. */
static int json_add_elements(list_source_t *l, const cJSON *root, const char *text,
                             const char *path, const weft__buf_t *b, const char *label,
                             char *err, size_t errlen)
{
    weft__buf_t scratch = {0};
    const char *p = skip_space(skip_space(text) + 1); /* past '[' */
    const cJSON *el;
    int rc = 0;
    cJSON_ArrayForEach(el, root)
    {
        const char *end = skip_value(p);
        const char *nul = cJSON_IsString(el) ? escaped_nul(p, end) : NULL;
        if (nul) {
            unsigned long line = 1, col = 1;
            for (const char *q = b->data; q < nul; q++, col++)
                if (*q == '\n')
                    line++, col = 0;
            weft__buf_free(&scratch);
            return failf(err, errlen, label, -EINVAL,
                         "%s:%lu:%lu: a string item holds a NUL character (\\u0000); items "
                         "are text without NULs",
                         path, line, col);
        }
        if (cJSON_IsString(el))
            rc = list_add(l, el->valuestring, strlen(el->valuestring));
        else
            rc = add_minified(l, &scratch, p, end);
        if (rc)
            break;
        p = skip_space(end);
        if (*p == ',')
            p = skip_space(p + 1);
    }
    weft__buf_free(&scratch);
    return rc;
}

/* Parses the file's text and fills l; every error names the path. */
static int json_load(list_source_t *l, const char *path, const weft__buf_t *b,
                     const char *label, char *err, size_t errlen)
{
    /* cJSON would stop at a NUL byte as if the text ended there. */
    const char *nul = memchr(b->data, '\0', b->len);
    if (nul)
        return json_syntax_error(path, b, (size_t)(nul - b->data), label, err, errlen);
    /* JSON allows no raw control character (whitespace aside) anywhere;
     * cJSON takes any of them for whitespace between values. */
    for (size_t k = 0; k < b->len; k++) {
        unsigned char c = (unsigned char)b->data[k];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return json_syntax_error(path, b, k, label, err, errlen);
    }
    /* The length counts the NUL so that cJSON accepts the end of text. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(b->data, b->len + 1, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - b->data) : 0;
        return json_syntax_error(path, b, at, label, err, errlen);
    }
    int rc;
    if (!cJSON_IsArray(root))
        rc = failf(err, errlen, label, -EINVAL,
                   "%s: expected a JSON array of items, found %s", path, json_type(root));
    else if (!root->child) {
        rc = 0;
        snprintf(l->base.empty, sizeof l->base.empty, "%s is an empty JSON array", path);
    } else if ((rc = json_add_elements(l, root, b->data, path, b, label, err, errlen)) ==
               -ENOMEM) {
        rc = fail_oom(err, errlen, label);
    }
    cJSON_Delete(root);
    return rc;
}

static int json_accepts(const char *spec)
{
    return spec_arg(spec, "json:") != NULL;
}

static int json_open(weft__source_t **out, const weft__entry_t *items,
                     const weft__config_t *cfg, char *err, size_t errlen)
{
    char label[1024];
    label_of(items, label, sizeof label);
    const char *arg = spec_arg(items->value, "json:");
    if (!arg[0])
        return failf(err, errlen, label, -EINVAL,
                     "expected a file after 'json:' (json:FILE)");
    list_source_t *l = calloc(1, sizeof *l);
    char *path = weft__path_resolve(cfg->dir, arg);
    weft__buf_t text = {0};
    int rc = l && path ? read_whole(path, label, &text, err, errlen)
                       : fail_oom(err, errlen, label);
    if (rc == 0)
        rc = json_load(l, path, &text, label, err, errlen);
    weft__buf_free(&text);
    free(path);
    if (rc) {
        list_close(l ? &l->base : NULL);
        return rc;
    }
    l->base.total = l->n;
    *out = &l->base;
    return 0;
}

static const weft__source_vtbl_t json_vtbl = {
    .name = "json",
    .usage = "json:FILE",
    .accepts = json_accepts,
    .open = json_open,
    .next = list_next,
    .close = list_close,
};

/* ---- list: `items = ["a", "b"]`, a JSON array in the value itself ------ */

static int list_accepts(const char *spec)
{
    return spec[0] == '[';
}

static int list_open(weft__source_t **out, const weft__entry_t *items,
                     const weft__config_t *cfg, char *err, size_t errlen)
{
    (void)cfg;
    char label[1024];
    label_of(items, label, sizeof label);
    list_source_t *l = calloc(1, sizeof *l);
    weft__buf_t text = {0};
    size_t n = strlen(items->value);
    int rc = l && weft__buf_append(&text, items->value, n + 1) == 0
                 ? (text.len = n, json_load(l, "the list", &text, label, err, errlen))
                 : fail_oom(err, errlen, label);
    weft__buf_free(&text);
    if (rc) {
        list_close(l ? &l->base : NULL);
        return rc;
    }
    l->base.total = l->n;
    *out = &l->base;
    return 0;
}

static const weft__source_vtbl_t list_vtbl = {
    .name = "list",
    .usage = "[JSON, ...]",
    .accepts = list_accepts,
    .open = list_open,
    .next = list_next,
    .close = list_close,
};

/* ---- range: `items = N` or `items = A..B` ----------------------------- */

typedef struct range_source {
    weft__source_t base;
    int64_t begin;
    uint64_t next; /* index of the next item to hand out */
} range_source_t;

static int range_accepts(const char *spec)
{
    /* Looks numeric: starts like a number or "..", then digits, signs, hex
     * and ".." only.  A word ("abc", "face") is some other kind. */
    return spec[0] != '\0' && strchr("0123456789+-.", spec[0]) &&
           strspn(spec, "0123456789+-xXabcdefABCDEF.") == strlen(spec);
}

/* Splits "A..B" (or "N") into numbers; 0 or a message in why. */
static int range_parse(const char *spec, int64_t *begin, int64_t *end, const char **why)
{
    const char *dots = strstr(spec, "..");
    if (!dots) {
        int64_t n;
        if (weft__parse_int64(spec, &n) != 0 || n < 0) {
            *why = "expected a count (items = 2000) or a range (items = 10..20)";
            return -EINVAL;
        }
        *begin = 0;
        *end = n;
        return 0;
    }
    char first[64];
    size_t len = (size_t)(dots - spec);
    if (len == 0 || len >= sizeof first || weft__parse_int64(dots + 2, end) != 0) {
        *why = "expected a range of two integers, A..B (B excluded)";
        return -EINVAL;
    }
    memcpy(first, spec, len);
    first[len] = '\0';
    if (weft__parse_int64(first, begin) != 0) {
        *why = "expected a range of two integers, A..B (B excluded)";
        return -EINVAL;
    }
    if (*end < *begin) {
        *why = "the range ends before it begins";
        return -EINVAL;
    }
    /* 2^64 - 1 items would read as "count unknown"; 2^63 is plenty. */
    if ((uint64_t)*end - (uint64_t)*begin > (uint64_t)INT64_MAX) {
        *why = "the range holds more than 2^63 - 1 items";
        return -ERANGE;
    }
    return 0;
}

static int range_open(weft__source_t **out, const weft__entry_t *items,
                      const weft__config_t *cfg, char *err, size_t errlen)
{
    (void)cfg;
    int64_t begin = 0, end = 0;
    const char *why = NULL;
    char where[512];
    int rc = range_parse(items->value, &begin, &end, &why);
    if (rc != 0) {
        snprintf(err, errlen, "%s: items = '%s': %s",
                 weft__entry_where(items, where, sizeof where), items->value, why);
        return rc;
    }
    range_source_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    if (begin == end)
        snprintf(r->base.empty, sizeof r->base.empty, "the range is empty");
    r->begin = begin;
    r->base.is_range = true;
    r->base.range_begin = begin;
    /* end - begin cannot overflow in uint64_t arithmetic. */
    r->base.total = (uint64_t)end - (uint64_t)begin;
    *out = &r->base;
    return 0;
}

static int range_next(weft__source_t *src, weft_item_t *items, size_t max, size_t *got,
                      char *err, size_t errlen)
{
    (void)err, (void)errlen;
    range_source_t *r = (range_source_t *)src;
    uint64_t left = r->base.total - r->next;
    size_t n = left < max ? (size_t)left : max;
    for (size_t k = 0; items && k < n; k++)
        src->vt->at(src, r->next + k, &items[k]);
    r->next += n;
    *got = n;
    return 0;
}

static void range_at(const weft__source_t *src, uint64_t index, weft_item_t *item)
{
    const range_source_t *r = (const range_source_t *)src;
    *item = (weft_item_t){.index = index, .number = (int64_t)((uint64_t)r->begin + index)};
}

static void range_close(weft__source_t *src)
{
    free(src);
}

static const weft__source_vtbl_t range_vtbl = {
    .name = "range",
    .usage = "a count N or a range A..B",
    .accepts = range_accepts,
    .open = range_open,
    .next = range_next,
    .close = range_close,
    .at = range_at,
};

/* ---- registry ----------------------------------------------------------- */

/* The kinds accept disjoint specs; this order is the one errors list. */
static const weft__source_vtbl_t *const sources[] = {
    &lines_vtbl, &stdin_vtbl, &files_vtbl, &json_vtbl, &list_vtbl, &range_vtbl,
};

#define N_SOURCES (sizeof sources / sizeof sources[0])

/* "not an item source", the kinds, and a did-you-mean on the prefix. */
static int unknown_kind(const weft__entry_t *items, char *err, size_t errlen)
{
    char label[1024], word[64], hint[96] = "", kinds[512] = "";
    const char *names[N_SOURCES];
    label_of(items, label, sizeof label);
    snprintf(word, sizeof word, "%.*s", (int)strcspn(items->value, ":"), items->value);
    for (size_t k = 0; k < N_SOURCES; k++) {
        /* Suggest only kinds spelled by name (not range). */
        const char *name = sources[k]->name;
        names[k] = strncmp(sources[k]->usage, name, strlen(name)) == 0 ? name : NULL;
        size_t n = strlen(kinds);
        snprintf(kinds + n, sizeof kinds - n, "%s%s", k ? ", " : "", sources[k]->usage);
    }
    const char *near = weft__suggest(word, names, N_SOURCES);
    for (size_t k = 0; near && k < N_SOURCES; k++)
        if (near == names[k]) /* the usage's first form: "files:DIR" */
            snprintf(hint, sizeof hint, "; did you mean '%.*s'?",
                     (int)strcspn(sources[k]->usage, " "), sources[k]->usage);
    return failf(err, errlen, label, -EINVAL, "not an item source%s (kinds: %s)", hint,
                 kinds);
}

int weft__source_open(weft__source_t **out, const weft__config_t *cfg, char *err,
                      size_t errlen)
{
    const weft__entry_t *items = cfg->items;
    for (size_t k = 0; k < N_SOURCES; k++) {
        if (sources[k]->accepts(items->value)) {
            int rc = sources[k]->open(out, items, cfg, err, errlen);
            if (rc == 0)
                (*out)->vt = sources[k];
            return rc;
        }
    }
    return unknown_kind(items, err, errlen);
}

void weft__source_close(weft__source_t **src)
{
    if (*src) {
        (*src)->vt->close(*src);
        *src = NULL;
    }
}
