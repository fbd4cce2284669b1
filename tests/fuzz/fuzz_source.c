/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the item sources (core/input/source.h).
 *
 * Input: the first line is the `items =` value (the spec); the rest is
 * written to the file "input" in this process's scratch folder, which is
 * also the config's folder.  So "lines:input" and "json:input" read fuzzed
 * text, "files:tree" and "files:tree/STAR.txt" (STAR: '*') list a small
 * fixed tree made once (regular files, a dot-file, sub-folders two levels
 * deep, symbolic links to a file, to a folder and to nothing, a folder
 * holding a link to itself, a name with glob characters), and "10..20" is
 * a range.  Specs that would leave the
 * scratch folder (absolute paths, "..", backslashes, a glob that can match
 * "..") or read standard input are skipped: they are not what is under
 * test and must not touch the machine.
 *
 * Every item is read, in windows of varying size (and with `at` for
 * ranges), and checked against an independent reading of the same file:
 * the exact lines, the JSON array's elements (strings decoded, other
 * elements minified text that parses back to an equal value), the sorted
 * regular files of the folder, the range's bounds, and for a pattern
 * with `**` components an expansion by glob(3) alone: each `**` replaced
 * by 0 to 4 `*` components that must match real folders (no symbolic
 * link), the union of the regular files these patterns match (empty and
 * "." components dropped, as the source drops them; a pattern ending in
 * '/' matches no file).
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "source.h"

#define ORIGIN "fuzz.ini"
#define LABEL ORIGIN ":1: items = '"

/* ---- the fixed tree ----------------------------------------------------- */

static void make_tree(void)
{
    static bool made;
    if (made)
        return;
    made = true;
    char path[8192];
    const char *dirs[] = {"tree", "tree/sub", "tree/sub/deep", "tree/[x] y", "tree/loop"};
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), dirs[k]);
        FUZZ_CHECK(mkdir(path, 0700) == 0, "mkdir %s: %s", path, strerror(errno));
    }
    static const struct {
        const char *name, *text;
    } files[] = {
        {"tree/a.txt", "alpha\nbeta\r\n\ngamma"},
        {"tree/b.json", "[1, \"two\", {\"three\": [3]}, null]"},
        {"tree/c", ""},
        {"tree/.hidden", "dot-file\n"},
        {"tree/sub/d.txt", "in a sub-folder\n"},
        {"tree/sub/deep/f.txt", "two levels down\n"},
        {"tree/loop/l.txt", "beside a link to its own folder\n"},
        {"tree/[x] y/e.txt", "glob characters in the folder name\n"},
        {"tree/*star", "a name with a star\n"},
        {"lines.txt", "one\ntwo\n"},
        {"array.json", "[\"a\", 2, [3, 4], {\"k\": \"v\"}]\n"},
    };
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++)
        fuzz_write_file(files[k].name, files[k].text, strlen(files[k].text));
    static const struct {
        const char *target, *name;
    } links[] = {
        {"a.txt", "tree/link"},
        {"sub", "tree/dirlink"},
        {"nowhere", "tree/dangling"},
        /* Alone in its folder, so that `*` components (which follow it, as
         * glob does) branch once per level, never more. */
        {".", "tree/loop/self"},
    };
    for (size_t k = 0; k < sizeof links / sizeof links[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), links[k].name);
        FUZZ_CHECK(symlink(links[k].target, path) == 0, "symlink %s: %s", path,
                   strerror(errno));
    }
}

/* ---- which specs are run ------------------------------------------------ */

/* The argument of a file kind ("lines:", "json:", "files:"), blanks after
 * the colon skipped as source.c does; NULL for other specs. */
static const char *file_arg(const char *spec)
{
    static const char *const prefixes[] = {"lines:", "json:", "files:"};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(prefixes[k]);
        if (strncmp(spec, prefixes[k], n) == 0)
            return spec + n + strspn(spec + n, " \t");
    }
    return NULL;
}

static bool stays_inside(const char *spec)
{
    if (strcmp(spec, "stdin") == 0)
        return false;
    const char *arg = file_arg(spec);
    if (!arg)
        return true; /* a range or an unknown kind: no file is touched */
    if (arg[0] == '/' || strcmp(arg, "-") == 0 || strstr(arg, "..") || strchr(arg, '\\'))
        return false;
    /* A component starting with '.' then a wildcard can match "..". */
    for (const char *p = arg; *p; p++)
        if (p[0] == '.' && (p == arg || p[-1] == '/') && strchr("[?*", p[1]) && p[1])
            return false;
    return true;
}

/* ---- the reading -------------------------------------------------------- */

typedef struct seen {
    size_t n, cap;
    char **text; /* copies, NUL-terminated */
    size_t *len;
} seen_t;

static void seen_add(seen_t *s, const weft_item_t *it)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->text = realloc(s->text, s->cap * sizeof *s->text);
        s->len = realloc(s->len, s->cap * sizeof *s->len);
        FUZZ_CHECK(s->text && s->len, "out of memory");
    }
    s->text[s->n] = fuzz_strndup(it->text, it->text_len);
    s->len[s->n++] = it->text_len;
}

static void seen_free(seen_t *s)
{
    for (size_t k = 0; k < s->n; k++)
        free(s->text[k]);
    free(s->text);
    free(s->len);
}

/* Reads a text source to its end; every item is copied into *s. */
static void read_all(weft__source_t *src, size_t limit, size_t window, seen_t *s)
{
    const size_t windows[] = {window, 1, 300};
    weft_item_t items[300];
    char err[1024];
    uint64_t total0 = src->total;
    for (size_t round = 0;; round++) {
        size_t max = windows[round % 3], got = 12345;
        err[0] = '\0';
        int rc = weft__source_next(src, items, max, &got, err, sizeof err);
        FUZZ_CHECK(rc == 0, "%s source: next failed (%d): %s", src->vt->name, rc, err);
        FUZZ_CHECK(got <= max, "next gave %zu items for a window of %zu", got, max);
        if (got == 0)
            break;
        for (size_t k = 0; k < got; k++) {
            const weft_item_t *it = &items[k];
            FUZZ_CHECK(it->index == s->n, "item index %llu, expected %zu",
                       (unsigned long long)it->index, s->n);
            FUZZ_CHECK(it->number == (int64_t)it->index, "item %zu: number %lld", s->n,
                       (long long)it->number);
            FUZZ_CHECK(it->text && it->text[it->text_len] == '\0',
                       "item %zu: text is not NUL-terminated at text_len", s->n);
            seen_add(s, it);
        }
        FUZZ_CHECK(s->n <= limit, "%s source: more than %zu items (it does not end?)",
                   src->vt->name, limit);
        FUZZ_CHECK(src->total == WEFT__COUNT_UNKNOWN || src->total >= s->n,
                   "total %llu below the %zu items handed out",
                   (unsigned long long)src->total, s->n);
    }
    size_t again = 1;
    FUZZ_CHECK(weft__source_next(src, items, 4, &again, err, sizeof err) == 0 &&
                   again == 0,
               "next after the end gave %zu items", again);
    FUZZ_CHECK(src->total == s->n, "total %llu after the end, %zu items",
               (unsigned long long)src->total, s->n);
    FUZZ_CHECK(total0 == s->n, "%s source: total %llu at open, %zu items", src->vt->name,
               (unsigned long long)total0, s->n);
}

/* ---- oracles ------------------------------------------------------------ */

static char *scratch_path(const char *arg)
{
    size_t n = strlen(fuzz_tmpdir()) + strlen(arg) + 2;
    char *p = malloc(n);
    FUZZ_CHECK(p, "out of memory");
    snprintf(p, n, "%s/%s", fuzz_tmpdir(), arg);
    return p;
}

static void check_lines(const seen_t *s, const char *arg)
{
    char *path = scratch_path(arg);
    size_t len = 0;
    char *text = fuzz_read_file(path, &len);
    FUZZ_CHECK(text, "cannot read %s back", path);
    size_t n = 0;
    for (size_t pos = 0; pos < len; n++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t line = end - pos;
        if (nl && line > 0 && text[end - 1] == '\r')
            line--; /* CRLF; a lone '\r' at the very end is data */
        FUZZ_CHECK(n < s->n, "%s: the source has %zu lines, there are more", arg, s->n);
        FUZZ_CHECK(s->len[n] == line && memcmp(s->text[n], text + pos, line) == 0,
                   "%s: line %zu differs (%zu bytes, expected %zu)", arg, n, s->len[n],
                   line);
        pos = end + 1;
    }
    FUZZ_CHECK(n == s->n, "%s: %zu lines, the source gave %zu", arg, n, s->n);
    free(text);
    free(path);
}

/* Same value, in the same order (cJSON_Compare says inf != inf). */
static bool json_equal(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return false;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble ||
               (isnan(a->valuedouble) && isnan(b->valuedouble));
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if ((a->string == NULL) != (b->string == NULL) ||
        (a->string && strcmp(a->string, b->string) != 0))
        return false;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        if (!json_equal(x, y) || (x->string == NULL) != (y->string == NULL) ||
            (x->string && strcmp(x->string, y->string) != 0))
            return false;
    return !x && !y;
}

/* JSON whitespace outside string literals (minified text has none). */
static bool space_outside_strings(const char *p)
{
    for (; *p; p++) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (!*p)
                return false;
        } else if (strchr(" \t\r\n", *p)) {
            return true;
        }
    }
    return false;
}

/* The items of a JSON array source are its elements (arg names it in
 * messages): strings decoded, anything else minified JSON. */
static void check_json_text(const seen_t *s, const char *arg, const char *text)
{
    /* As strict as the source: the whole text, nothing after the value. */
    cJSON *root = cJSON_ParseWithOpts(text, NULL, 1);
    FUZZ_CHECK(root && cJSON_IsArray(root), "%s: the source read it, cJSON does not",
               arg);
    size_t n = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, root)
    {
        FUZZ_CHECK(n < s->n, "%s: the source has %zu elements, there are more", arg,
                   s->n);
        if (cJSON_IsString(el)) {
            FUZZ_CHECK(strcmp(s->text[n], el->valuestring) == 0 &&
                           s->len[n] == strlen(el->valuestring),
                       "%s: string element %zu differs", arg, n);
        } else {
            cJSON *back = cJSON_ParseWithLength(s->text[n], s->len[n]);
            FUZZ_CHECK(back, "%s: element %zu '%s' is not JSON", arg, n, s->text[n]);
            FUZZ_CHECK(json_equal(back, el), "%s: element %zu '%s' differs", arg, n,
                       s->text[n]);
            FUZZ_CHECK(!space_outside_strings(s->text[n]),
                       "%s: element %zu '%s' not minified", arg, n, s->text[n]);
            cJSON_Delete(back);
        }
        n++;
    }
    FUZZ_CHECK(n == s->n, "%s: %zu elements, the source gave %zu", arg, n, s->n);
    cJSON_Delete(root);
}

static void check_json(const seen_t *s, const char *arg)
{
    char *path = scratch_path(arg);
    size_t len = 0;
    char *text = fuzz_read_file(path, &len);
    FUZZ_CHECK(text, "cannot read %s back", path);
    check_json_text(s, arg, text);
    free(text);
    free(path);
}

/* A raw control character other than tab, newline and return: JSON allows
 * none (cJSON takes them for whitespace; the source refuses them). */
static bool has_control(const char *text, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)text[k];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return true;
    }
    return false;
}

/* When the source fails on a JSON file, cJSON must fail too, or find no
 * array (or the text hold a NUL, a raw control character or the escape of
 * a NUL character, \u0000, which the source refuses).  An empty array is a
 * source of no items, not a failure. */
static void check_json_text_refused(const char *arg, const char *text, size_t len)
{
    if (text && !has_control(text, len) && !strstr(text, "\\u0000")) {
        cJSON *root = cJSON_ParseWithOpts(text, NULL, 1);
        FUZZ_CHECK(!root || !cJSON_IsArray(root), "%s: a JSON array the source refused",
                   arg);
        cJSON_Delete(root);
    }
}

static void check_json_refused(const char *arg)
{
    char *path = scratch_path(arg);
    size_t len = 0;
    char *text = fuzz_read_file(path, &len);
    check_json_text_refused(arg, text, len);
    free(text);
    free(path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the `**` reference -------------------------------------------------- */

enum { STAR_MAX_LEVELS = 4, STAR_MAX = 3, REF_MAX = 512 };

typedef struct star_ref {
    char *comp[128]; /* the pattern's components ("**" among them) */
    size_t n;
    size_t pick[STAR_MAX]; /* levels chosen for each `**`           */
    char *found[REF_MAX];
    size_t n_found;
} star_ref_t;

/* p with every run of '/' made one. */
static char *one_slash(const char *p)
{
    char *o = fuzz_strndup(p, strlen(p)), *w = o;
    for (const char *r = p; *r; r++)
        if (!(r[0] == '/' && r > p && r[-1] == '/'))
            *w++ = *r;
    *w = '\0';
    return o;
}

/* glob(3)s one choice of levels; keeps the regular files whose `**`
 * levels are real folders. */
static void star_glob(star_ref_t *r)
{
    char pat[8192];
    bool from_star[256];
    size_t len = 0, nc = 0, s = 0;
    for (size_t k = 0; k < r->n; k++) {
        bool star = strcmp(r->comp[k], "**") == 0;
        size_t times = star ? r->pick[s] : 1;
        bool last = k + 1 == r->n;
        for (size_t t = 0; t < times + (star && last); t++) { /* a last `**` is `**` `*` */
            const char *c = star ? "*" : r->comp[k];
            len += (size_t)snprintf(pat + len, sizeof pat - len, "%s%s", nc ? "/" : "", c);
            from_star[nc++] = star && t < times;
        }
        s += star;
    }
    if (nc == 0 || len >= sizeof pat)
        return;
    glob_t g = {0};
    if (glob(pat, GLOB_NOSORT, NULL, &g) == 0) {
        for (size_t m = 0; m < g.gl_pathc; m++) {
            const char *p = g.gl_pathv[m];
            struct stat st;
            if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            /* Component c of the path is component c of the pattern. */
            bool real = true;
            size_t c = 0;
            for (const char *q = p;; q++) {
                if (*q == '/' || !*q) {
                    if (c < nc && from_star[c]) {
                        char *prefix = fuzz_strndup(p, (size_t)(q - p));
                        real = lstat(prefix, &st) == 0 && S_ISDIR(st.st_mode);
                        free(prefix);
                    }
                    c++;
                    if (!*q || !real)
                        break;
                }
            }
            if (!real)
                continue;
            char *one = one_slash(p);
            bool dup = false;
            for (size_t k = 0; k < r->n_found && !dup; k++)
                dup = strcmp(r->found[k], one) == 0;
            if (dup || r->n_found == REF_MAX)
                free(one);
            else
                r->found[r->n_found++] = one;
        }
    }
    globfree(&g);
}

static void star_choose(star_ref_t *r, size_t s, size_t n_stars)
{
    if (s == n_stars) {
        star_glob(r);
        return;
    }
    for (size_t k = 0; k <= STAR_MAX_LEVELS; k++) {
        r->pick[s] = k;
        star_choose(r, s + 1, n_stars);
    }
}

/* The files a `**` pattern must give; false when the reference does not
 * model it (too many `**`s or components). */
static bool star_reference(const char *arg, star_ref_t *r)
{
    /* Empty and "." components go, as the source drops them (the kernel
     * reads the path alike): they would not line up with glob's paths.  A
     * last one names folders: no file (glob(3) itself is not consistent
     * there, see files_globstar). */
    char *path = scratch_path(arg);
    size_t n_stars = 0;
    bool folders = false;
    r->n = 0;
    for (char *p = path, *slash;; p = slash + 1) {
        slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        bool skip = r->n > 0 && (n == 0 || (n == 1 && p[0] == '.'));
        folders = skip && !slash;
        if (r->n == 128) {
            free(path);
            return false;
        }
        if (!skip) {
            r->comp[r->n++] = fuzz_strndup(p, n);
            n_stars += strcmp(r->comp[r->n - 1], "**") == 0;
        }
        if (!slash)
            break;
    }
    free(path);
    bool ok = n_stars >= 1 && n_stars <= STAR_MAX;
    if (ok && !folders)
        star_choose(r, 0, n_stars);
    for (size_t k = 0; k < r->n; k++)
        free(r->comp[k]);
    return ok && r->n_found < REF_MAX;
}

static bool is_globstar(const char *arg)
{
    for (const char *c = arg; (c = strstr(c, "**")); c++)
        if ((c == arg || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
            return true;
    return false;
}

static void check_globstar(const seen_t *s, const char *arg)
{
    star_ref_t r = {0};
    if (!star_reference(arg, &r)) {
        for (size_t k = 0; k < r.n_found; k++)
            free(r.found[k]);
        return;
    }
    FUZZ_CHECK(r.n_found == s->n, "%s: the reference finds %zu files, the source %zu", arg,
               r.n_found, s->n);
    /* The same set once "//" is "/" (the source keeps a pattern's "//", as
     * glob does, which changes where such a path sorts: compare sorted
     * again; check_files checked the source's own order). */
    char **mine = malloc((s->n ? s->n : 1) * sizeof *mine);
    FUZZ_CHECK(mine, "out of memory");
    for (size_t k = 0; k < s->n; k++)
        mine[k] = one_slash(s->text[k]);
    qsort(mine, s->n, sizeof *mine, cmp_str);
    qsort(r.found, r.n_found, sizeof *r.found, cmp_str);
    for (size_t k = 0; k < s->n; k++)
        FUZZ_CHECK(strcmp(mine[k], r.found[k]) == 0,
                   "%s: file %zu is '%s', the reference '%s'", arg, k, mine[k], r.found[k]);
    for (size_t k = 0; k < s->n; k++)
        free(mine[k]);
    free(mine);
    for (size_t k = 0; k < r.n_found; k++)
        free(r.found[k]);
}

static void check_files(const seen_t *s, const char *arg)
{
    const char *dir = fuzz_tmpdir();
    size_t nd = strlen(dir);
    for (size_t k = 0; k < s->n; k++) {
        struct stat st;
        FUZZ_CHECK(strncmp(s->text[k], dir, nd) == 0 && s->text[k][nd] == '/',
                   "file '%s' outside %s", s->text[k], dir);
        FUZZ_CHECK(stat(s->text[k], &st) == 0 && S_ISREG(st.st_mode),
                   "'%s' is not a regular file", s->text[k]);
        FUZZ_CHECK(k == 0 || strcmp(s->text[k - 1], s->text[k]) < 0,
                   "files not sorted: '%s' then '%s'", s->text[k - 1], s->text[k]);
    }
    if (is_globstar(arg)) {
        check_globstar(s, arg);
        return;
    }
    if (strpbrk(arg, "*?["))
        return; /* a pattern: glob(3) is its own reference */

    /* A folder: its regular files (links followed), dot-files left out. */
    char *path = scratch_path(arg);
    DIR *d = opendir(path);
    FUZZ_CHECK(d, "%s: the source listed it, opendir fails", path);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        FUZZ_CHECK(n < 64, "too many files");
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    FUZZ_CHECK(n == s->n, "%s: %zu regular files, the source gave %zu", arg, n, s->n);
    for (size_t k = 0; k < n; k++) {
        const char *base = strrchr(s->text[k], '/') + 1;
        FUZZ_CHECK(strcmp(base, names[k]) == 0, "%s: file %zu is '%s', expected '%s'",
                   arg, k, base, names[k]);
        free(names[k]);
    }
    free(path);
}

/* The reference reading of `N` / `A..B`; false if it is not one. */
static bool ref_range(const char *spec, int64_t *begin, int64_t *end)
{
    const char *dots = strstr(spec, "..");
    if (!dots) {
        *begin = 0;
        return fuzz_ref_parse_int64(spec, end) == 0 && *end >= 0;
    }
    char *first = fuzz_strndup(spec, (size_t)(dots - spec));
    bool ok = fuzz_ref_parse_int64(first, begin) == 0 &&
              fuzz_ref_parse_int64(dots + 2, end) == 0 && *begin <= *end;
    free(first);
    return ok;
}

static void check_range(weft__source_t *src, const char *spec, size_t window)
{
    int64_t begin = 0, end = 0;
    FUZZ_CHECK(ref_range(spec, &begin, &end), "'%s' opened as a range", spec);
    uint64_t total = (uint64_t)end - (uint64_t)begin;
    FUZZ_CHECK((total == 0) == (src->empty[0] != '\0'),
               "'%s': %llu items, and empty says '%s'", spec, (unsigned long long)total,
               src->empty);
    if (total == 0) {
        weft_item_t none[2];
        char why[256];
        size_t n = 9;
        FUZZ_CHECK(src->total == 0 && weft__source_next(src, none, 2, &n, why, sizeof why) == 0 &&
                       n == 0,
                   "'%s': an empty range gave items", spec);
        return;
    }
    FUZZ_CHECK(src->total == total, "'%s': total %llu, expected %llu", spec,
               (unsigned long long)src->total, (unsigned long long)total);
    FUZZ_CHECK(src->total != WEFT__COUNT_UNKNOWN,
               "'%s': a known count that reads as WEFT__COUNT_UNKNOWN", spec);
    FUZZ_CHECK(src->vt->at, "a range without at()");

    weft_item_t items[300];
    char err[256];
    size_t got = 0;
    FUZZ_CHECK(weft__source_next(src, items, window, &got, err, sizeof err) == 0, "next");
    FUZZ_CHECK(got == (total < window ? total : window), "first window: %zu items", got);
    for (size_t k = 0; k < got; k++)
        FUZZ_CHECK(items[k].index == k &&
                       items[k].number == (int64_t)((uint64_t)begin + k) &&
                       items[k].text == NULL,
                   "'%s': item %zu is %lld", spec, k, (long long)items[k].number);
    const uint64_t probe[] = {0, total / 2, total - 1, total > 7 ? total - 7 : 0};
    for (size_t k = 0; k < 4; k++) {
        weft_item_t it;
        memset(&it, 0xA5, sizeof it);
        src->vt->at(src, probe[k], &it);
        FUZZ_CHECK(it.index == probe[k] &&
                       it.number == (int64_t)((uint64_t)begin + probe[k]) && !it.text,
                   "'%s': at(%llu) gave %lld", spec, (unsigned long long)probe[k],
                   (long long)it.number);
    }
    /* The runner counts windows off with items == NULL. */
    FUZZ_CHECK(weft__source_next(src, NULL, SIZE_MAX, &got, err, sizeof err) == 0,
               "next");
    FUZZ_CHECK(got == total - (total < window ? total : window), "counted %zu more", got);
    FUZZ_CHECK(weft__source_next(src, NULL, SIZE_MAX, &got, err, sizeof err) == 0 &&
                   got == 0,
               "next after the end gave %zu", got);
}

/* ---- the target --------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t spec_len = nl ? (size_t)(nl - data) : size;
    char *spec = fuzz_strndup(data, spec_len); /* cut at a NUL, as INI text is */
    if (!stays_inside(spec)) {
        free(spec);
        return -1; /* not worth keeping in the corpus */
    }
    make_tree();
    size_t body = nl ? size - spec_len - 1 : 0;
    fuzz_write_file("input", nl ? nl + 1 : data + size, body);

    weft__entry_t entry = {
        .section = "run", .key = "items", .value = spec, .origin = ORIGIN, .line = 1};
    weft__config_t cfg = {.path = ORIGIN, .dir = (char *)fuzz_tmpdir(), .items = &entry};
    weft__source_t *src = NULL;
    char err[2048] = "";
    int rc = weft__source_open(&src, &cfg, err, sizeof err);
    const char *arg = file_arg(spec);
    if (rc) {
        FUZZ_CHECK(rc < 0, "open returned %d", rc);
        FUZZ_CHECK(strncmp(err, LABEL, strlen(LABEL)) == 0,
                   "error does not start with '" LABEL "': %s", err);
        if (arg && strncmp(spec, "json:", 5) == 0 && rc == -EINVAL)
            check_json_refused(arg);
        if (spec[0] == '[' && rc == -EINVAL) /* an inline list (items = [...]) */
            check_json_text_refused(spec, spec, strlen(spec));
        free(spec);
        return 0;
    }
    FUZZ_CHECK(src && src->vt, "open succeeded without a source");

    size_t window = 1 + size % 37;
    const char *kind = src->vt->name;
    if (strcmp(kind, "range") == 0) {
        check_range(src, spec, window);
    } else {
        seen_t seen = {0};
        read_all(src, size + 1000, window, &seen);
        /* No items exactly when the source says why. */
        FUZZ_CHECK((seen.n == 0) == (src->empty[0] != '\0'),
                   "%s: %zu items, and empty says '%s'", spec, seen.n, src->empty);
        if (strcmp(kind, "lines") == 0)
            check_lines(&seen, arg);
        else if (strcmp(kind, "json") == 0)
            check_json(&seen, arg);
        else if (strcmp(kind, "files") == 0)
            check_files(&seen, arg);
        else if (strcmp(kind, "list") == 0)
            check_json_text(&seen, spec, spec);
        else
            FUZZ_CHECK(0, "unexpected kind %s for '%s'", kind, spec);
        seen_free(&seen);
    }
    weft__source_close(&src);
    FUZZ_CHECK(src == NULL, "close did not clear the pointer");
    free(spec);
    return 0;
}
