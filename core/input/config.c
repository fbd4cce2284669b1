/* SPDX-License-Identifier: MIT */
/*
 * Job configs, read with inih through our own line reader (read_line), which
 *  - counts lines: this libinih build passes no line number to the handler
 *    (INI_HANDLER_LINENO 0), but inih calls the reader exactly once per line,
 *    so our count is inih's line number;
 *  - rejects a line that does not fit inih's buffer, which inih would
 *    otherwise split, the tail becoming a second "line" (and maybe a key);
 *  - left-strips every line, so inih's multi-line continuation (an indented
 *    line continues the previous value) never triggers: weft has no
 *    continuation lines, and an indented `key = value` is just a key;
 *  - checks section headers itself, so an unknown section is reported at its
 *    own line even when it is empty;
 *  - stops at the first error (inih would go on to the end of the file).
 * inih's process-global options are never touched.
 *
 * What inih accepts, and so weft too: `key = value` or `key: value`; values
 * trimmed, possibly empty; comments are lines starting with ';' or '#', and
 * "; text" after whitespace inside a line.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "buf.h"
#include "config.h"
#include "util.h"
#include "weft/weft.h"

#define SET_ORIGIN "--set"

/* ---- messages ----------------------------------------------------------- */

/* "WHERE: key = 'value': <why>" for a value that does not convert. */
WEFT_PRINTF(4, 5)
static int bad_value(char *err, size_t errlen, const weft__entry_t *e, const char *fmt,
                     ...)
{
    char where[256];
    va_list ap;
    weft__msgf(err, errlen, "%s: %s = '%s': ", weft__entry_where(e, where, sizeof where),
               e->key, e->value);
    va_start(ap, fmt);
    weft__vmsg_appendf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

const char *weft__entry_where(const weft__entry_t *e, char *buf, size_t size)
{
    if (e->line > 0)
        snprintf(buf, size, "%s:%d", e->origin, e->line);
    else if (strcmp(e->origin, SET_ORIGIN) == 0)
        snprintf(buf, size, SET_ORIGIN " %s.%s", e->section, e->key);
    else
        snprintf(buf, size, "%s", e->origin);
    return buf;
}

/* ---- small helpers ------------------------------------------------------- */

static bool is_section(const char *s, size_t n)
{
    return (n == 3 && memcmp(s, "run", 3) == 0) || (n == 4 && memcmp(s, "args", 4) == 0) ||
           (n == 4 && memcmp(s, "task", 4) == 0);
}

/* The absolute folder holding `path` (symlinks in the folder resolved). */
static int dir_of(const char *path, char **out)
{
    const char *slash = strrchr(path, '/');
    char *d;
    if (!slash)
        d = strdup(".");
    else if (slash == path)
        d = strdup("/");
    else
        d = strndup(path, (size_t)(slash - path));
    if (!d)
        return -ENOMEM;
    *out = realpath(d, NULL);
    int e = errno;
    free(d);
    if (*out)
        return 0;
    return e == ENOMEM ? -ENOMEM : -EIO;
}

static void entry_clear(weft__entry_t *e)
{
    free(e->section);
    free(e->key);
    free(e->value);
}

static weft__entry_t *entry_find(const weft__config_t *cfg, const char *section,
                                 const char *key)
{
    for (size_t i = 0; i < cfg->n_entries; i++) {
        weft__entry_t *e = &cfg->entries[i];
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

const weft__entry_t *weft__config_entry(const weft__config_t *cfg, const char *section,
                                        const char *key)
{
    return entry_find(cfg, section, key);
}

/* Appends *e, taking its strings; on failure frees them.  Grows by one:
 * configs have tens of entries, and the struct has no capacity field. */
static int entry_adopt(weft__config_t *cfg, weft__entry_t *e)
{
    weft__entry_t *grown;
    if (!e->section || !e->key || !e->value)
        goto nomem;
    grown = realloc(cfg->entries, (cfg->n_entries + 1) * sizeof *grown);
    if (!grown)
        goto nomem;
    cfg->entries = grown;
    grown[cfg->n_entries++] = *e;
    return 0;
nomem:
    entry_clear(e);
    return -ENOMEM;
}

/* Keeps s in cfg->bound so it lives as long as cfg; frees it on failure. */
static const char *keep_bound(weft__config_t *cfg, char *s)
{
    char **grown;
    if (!s)
        return NULL;
    grown = realloc(cfg->bound, (cfg->n_bound + 1) * sizeof *grown);
    if (!grown) {
        free(s);
        return NULL;
    }
    cfg->bound = grown;
    grown[cfg->n_bound++] = s;
    return s;
}

/* ---- numbers and suggestions -------------------------------------------- */

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unsigned decimal or 0x hex, whole string.  Junk wins over overflow, so
 * "99999999999999999999x" is -EINVAL, not -ERANGE. */
static int parse_uint64(const char *s, uint64_t *out)
{
    uint64_t base = 10, v = 0;
    bool overflow = false;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        int d = digit_value(*s);
        if (d < 0 || (uint64_t)d >= base)
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)d) / base)
            overflow = true;
        else
            v = v * base + (uint64_t)d;
    }
    if (overflow)
        return -ERANGE;
    *out = v;
    return 0;
}

int weft__parse_int64(const char *text, int64_t *out)
{
    const uint64_t limit = (uint64_t)INT64_MAX;
    bool neg = false;
    uint64_t mag;
    if (!text)
        return -EINVAL;
    if (*text == '+' || *text == '-')
        neg = *text++ == '-';
    int rc = parse_uint64(text, &mag);
    if (rc)
        return rc;
    if (mag > limit + (neg ? 1 : 0))
        return -ERANGE;
    if (!neg)
        *out = (int64_t)mag;
    else if (mag == limit + 1)
        *out = INT64_MIN;
    else
        *out = -(int64_t)mag;
    return 0;
}

/* weft__suggest (util.h) compares at most this many bytes. */
#define SUGGEST_MAX WEFT__SUGGEST_MAX

/* ---- loading: the reader and the handler ---------------------------------- */

enum { CONFIG_MAX = 1 << 20, LINE_READ_MAX = 1 << 16 }; /* bytes */

/* Marks a value kept by the reader (too long for inih's line buffer):
 * inih gets "key = " LONG_MARK "N", on_entry takes long_values[N]. */
#define LONG_MARK "\x1eweft-long:"

typedef struct loader {
    weft__config_t *cfg;
    FILE *f;
    int line;         /* where the line served last starts (messages)    */
    int next_line;    /* physical lines read so far                      */
    int served;       /* lines served to inih so far (= inih's lineno)   */
    int handled_line; /* `served` when inih last called on_entry()       */
    bool key_pending; /* the last line served must reach on_entry()      */
    char quote[48];   /* its start, to quote if inih rejects it          */
    int rc;           /* first error; once set, the reader ends the file */
    size_t bytes;     /* read so far: a config is small (CONFIG_MAX)     */
    weft__buf_t text; /* the logical line: continuations joined          */
    char **long_values;
    size_t n_long;
    int long_served;  /* `served` of the last line sent as a mark         */
    char *err;
    size_t errlen;
} loader_t;

WEFT_PRINTF(3, 4)
static void load_fail(loader_t *ld, int rc, const char *fmt, ...)
{
    va_list ap;
    if (ld->rc)
        return; /* keep the first error */
    ld->rc = rc;
    weft__msgf(ld->err, ld->errlen, "%s:%d: ", ld->cfg->path, ld->line);
    va_start(ap, fmt);
    weft__vmsg_appendf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
}

/* inih rejects a non-comment, non-section line that has no '=' or ':' by
 * not calling the handler; we notice when it asks for the next line. */
static void check_pending_key(loader_t *ld)
{
    if (ld->key_pending && ld->handled_line != ld->served)
        load_fail(ld, -EINVAL,
                  "expected 'key = value', '[section]' or a comment, not '%s'",
                  ld->quote);
    ld->key_pending = false;
}

static void check_section(loader_t *ld, const char *line)
{
    const char *close = strchr(line, ']');
    if (!close) {
        load_fail(ld, -EINVAL, "section header has no closing ']'");
        return;
    }
    const char *name = line + 1;
    size_t n = (size_t)(close - name);
    const char *rest = close + 1;
    while (isspace((unsigned char)*rest))
        rest++;
    if (*rest && *rest != ';' && *rest != '#') {
        load_fail(ld, -EINVAL, "unexpected text after ']': '%.40s'", rest);
        return;
    }
    if (is_section(name, n))
        return;

    static const char *const known[] = {"run", "args", "task"};
    char word[SUGGEST_MAX + 1];
    snprintf(word, sizeof word, "%.*s", (int)(n < SUGGEST_MAX ? n : SUGGEST_MAX), name);
    const char *near = weft__suggest(word, known, 3);
    if (near)
        load_fail(ld, -EINVAL, "unknown section '[%s]'; did you mean '[%s]'?", word,
                  near);
    else
        load_fail(ld, -EINVAL, "unknown section '[%s]' (expected [run], [args] or [task])",
                  word);
}

/* Looks at a left-stripped line before inih does. */
static void classify(loader_t *ld, const char *line)
{
    if (line[0] == '\0' || line[0] == ';' || line[0] == '#')
        return;
    if (line[0] == '[') {
        check_section(ld, line);
        return;
    }
    ld->key_pending = true;
    snprintf(ld->quote, sizeof ld->quote, "%s", line);
}

/* One physical line appended to ld->text (CRLF and the line break
 * dropped, leading blanks and a first line's BOM skipped).  1, 0 at the
 * end of the file, -1 on an error (reported). */
static int read_physical(loader_t *ld)
{
    size_t start = ld->text.len;
    bool any = false, nul = false, lead = true;
    int c;
    while ((c = getc(ld->f)) != EOF) {
        any = true;
        if (++ld->bytes > CONFIG_MAX) { /* /dev/zero, a log file given by mistake */
            load_fail(ld, -EFBIG, "larger than %d MiB: not a config file", CONFIG_MAX >> 20);
            return -1;
        }
        if (c == '\n')
            break;
        if (ld->text.len - start > LINE_READ_MAX || ld->text.len > LINE_READ_MAX) {
            load_fail(ld, -EINVAL, "line too long (over %d characters)", LINE_READ_MAX);
            return -1;
        }
        if (lead && isspace((unsigned char)c))
            continue;
        lead = false;
        nul |= c == '\0';
        char ch = (char)c;
        if (weft__buf_append(&ld->text, &ch, 1) != 0) {
            load_fail(ld, -ENOMEM, "out of memory");
            return -1;
        }
    }
    if (ferror(ld->f)) {
        load_fail(ld, -EIO, "read error: %s", weft_strerror(-EIO));
        return -1;
    }
    if (!any)
        return 0;
    ld->next_line++;
    if (ld->text.len > start && ld->text.data[ld->text.len - 1] == '\r')
        ld->text.len--; /* CRLF */
    if (ld->next_line == 1 && ld->text.len - start >= 3 &&
        memcmp(ld->text.data + start, "\xEF\xBB\xBF", 3) == 0) {
        memmove(ld->text.data + start, ld->text.data + start + 3, ld->text.len - start - 3);
        ld->text.len -= 3;
        size_t k = start; /* blanks after the BOM */
        while (k < ld->text.len && isspace((unsigned char)ld->text.data[k]))
            k++;
        memmove(ld->text.data + start, ld->text.data + k, ld->text.len - k);
        ld->text.len -= k - start;
    }
    if (nul) {
        load_fail(ld, -EINVAL, "line contains a NUL byte");
        return -1;
    }
    return 1;
}

/* The logical line: physical lines joined while a key line ends in a
 * backslash (the backslash, the line break and the next line's leading
 * blanks become one space, as in systemd's unit files), NUL-terminated in
 * ld->text; ld->line is where it starts.  1, 0 at the end, -1. */
static int read_logical(loader_t *ld)
{
    ld->text.len = 0;
    ld->line = ld->next_line + 1; /* where it starts, also for its errors */
    int rc = read_physical(ld);
    if (rc <= 0)
        return rc;
    for (;;) {
        const char *t = ld->text.data;
        size_t n = ld->text.len;
        bool key_line = n > 0 && t[0] != ';' && t[0] != '#' && t[0] != '[';
        if (!key_line || t[n - 1] != '\\')
            break;
        n--; /* the backslash, and the blanks before it, become one space */
        while (n > 0 && isspace((unsigned char)t[n - 1]))
            n--;
        if (n > 0) /* a line of a backslash alone adds no space before the rest */
            ld->text.data[n++] = ' ';
        ld->text.len = n;
        if ((rc = read_physical(ld)) < 0)
            return -1;
        if (rc == 0)
            break; /* a backslash on the last line: a space, nothing more */
    }
    if (weft__buf_append(&ld->text, "", 1) != 0) {
        load_fail(ld, -ENOMEM, "out of memory");
        return -1;
    }
    ld->text.len--;
    return 1;
}

/* The value of a key line as inih takes it: after the first '=' or ':',
 * up to an inline comment (';' after a blank), blanks trimmed.  The key's
 * length in *key_len; NULL when the line has no separator. */
static const char *split_key(const char *line, size_t *key_len, size_t *value_len)
{
    const char *sep = NULL; /* line starts with no blank (read_physical) */
    for (const char *p = line; *p && !sep; p++) {
        if (*p == ';' && p > line && isspace((unsigned char)p[-1]))
            return NULL; /* a comment before any separator */
        if (*p == '=' || *p == ':')
            sep = p;
    }
    if (!sep)
        return NULL;
    size_t k = (size_t)(sep - line);
    while (k > 0 && isspace((unsigned char)line[k - 1]))
        k--;
    *key_len = k;
    const char *v = sep + 1;
    while (isspace((unsigned char)*v))
        v++;
    const char *end = v;
    while (*end && !(*end == ';' && end > v && isspace((unsigned char)end[-1])))
        end++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    *value_len = (size_t)(end - v);
    return v;
}

/*
 * inih's reader (fgets-like): one logical line per call (continuations
 * joined), leading blanks and a BOM removed, "\n" kept at the end so that
 * an inih that can grow its buffer sees a complete line.  A key line too
 * long for inih's buffer (num bytes, of which "\r\n\0" need 3: Debian's
 * inih has 200) reaches inih as "key = MARK N" and its value is kept here,
 * so lines are as long as LINE_READ_MAX allows.
 */
static char *read_line(char *str, int num, void *stream)
{
    loader_t *ld = stream;
    size_t max = num > 3 ? (size_t)num - 3 : 0;

    check_pending_key(ld);
    if (ld->rc)
        return NULL;
    int rc = read_logical(ld);
    if (rc <= 0)
        return NULL;
    ld->served++;
    const char *text = ld->text.data;
    size_t n = ld->text.len;
    classify(ld, text);
    if (ld->rc)
        return NULL;
    if (n <= max) {
        memcpy(str, text, n);
        memcpy(str + n, "\n", 2); /* n <= max = num - 3 */
        return str;
    }
    if (text[0] == ';' || text[0] == '#') { /* a long comment: nothing for inih */
        memcpy(str, "\n", 2);
        return str;
    }
    size_t key_len, value_len;
    const char *value = text[0] == '[' ? NULL : split_key(text, &key_len, &value_len);
    char mark[32];
    int mark_len = snprintf(mark, sizeof mark, LONG_MARK "%zu", ld->n_long);
    if (!value || key_len + 3 + (size_t)mark_len > max) {
        load_fail(ld, -EINVAL, "line too long (%zu characters) for a %s", n,
                  text[0] == '[' ? "section header" : value ? "key name" : "line without '='");
        return NULL;
    }
    char **grown = realloc(ld->long_values, (ld->n_long + 1) * sizeof *grown);
    char *copy = grown ? strndup(value, value_len) : NULL;
    if (!copy) {
        if (grown)
            ld->long_values = grown;
        load_fail(ld, -ENOMEM, "out of memory");
        return NULL;
    }
    ld->long_values = grown;
    ld->long_values[ld->n_long++] = copy;
    ld->long_served = ld->served;
    snprintf(str, (size_t)num, "%.*s = %s\n", (int)key_len, text, mark);
    return str;
}

/* inih's handler: NONZERO means success. */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    loader_t *ld = user;
    weft__config_t *cfg = ld->cfg;
    const weft__entry_t *prev;

    ld->handled_line = ld->served;
    if (ld->rc)
        return 0;
    size_t mark = strlen(LONG_MARK);
    /* Only for the line the reader marked: a config that spells the mark
     * out itself keeps its own text. */
    if (ld->long_served == ld->served && ld->n_long &&
        strncmp(value, LONG_MARK, mark) == 0) { /* the reader kept it */
        size_t k = strtoull(value + mark, NULL, 10);
        if (k < ld->n_long)
            value = ld->long_values[k];
    }
    /* Trimmed as inih trims a short line, whichever way the text came
     * (a long line's value through the reader, a continuation), before
     * the checks: "k" and "k " are one key. */
    size_t nl = strlen(name), vl;
    while (nl && isspace((unsigned char)name[nl - 1]))
        nl--;
    while (nl && isspace((unsigned char)*name))
        name++, nl--;
    while (isspace((unsigned char)*value))
        value++;
    vl = strlen(value);
    while (vl && isspace((unsigned char)value[vl - 1]))
        vl--;
    weft__entry_t e = {strdup(section), strndup(name, nl), strndup(value, vl), cfg->path,
                       ld->line};
    if (!e.section || !e.key || !e.value) {
        load_fail(ld, -ENOMEM, "out of memory");
    } else if (!*section) {
        load_fail(ld, -EINVAL,
                  "key '%s' is outside a section (put it under [run] or [args])", e.key);
    } else if (!*e.key) {
        load_fail(ld, -EINVAL, "empty key (expected 'key = value')");
    } else if ((prev = entry_find(cfg, section, e.key))) {
        load_fail(ld, -EINVAL, "duplicate key '%s' (first set at line %d)", e.key,
                  prev->line);
    } else {
        if (entry_adopt(cfg, &e))
            load_fail(ld, -ENOMEM, "out of memory");
        return ld->rc == 0;
    }
    entry_clear(&e);
    return ld->rc == 0;
}

static int open_error(int e, const char *path, char *err, size_t errlen)
{
    int rc = e == ENOENT ? -ENOENT : e == ENOMEM ? -ENOMEM : -EIO;
    return weft__failf(rc, err, errlen, "cannot open %s: %s", path, weft_strerror(-e));
}

int weft__config_load(weft__config_t **out, const char *path, char *err, size_t errlen)
{
    weft__config_t *cfg = NULL;
    loader_t ld = {.err = err, .errlen = errlen};
    FILE *f;
    int rc, bad_line;

    *out = NULL;
    weft__msgf(err, errlen, "%s", "");
    bool from_stdin = strcmp(path, "-") == 0;
    f = from_stdin ? fdopen(dup(STDIN_FILENO), "r") : fopen(path, "re");
    if (!f)
        return open_error(errno, path, err, errlen);
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return weft__failf(-EISDIR, err, errlen, "%s: is a folder, not a config file", path);
    }

    rc = -ENOMEM;
    cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = strdup(from_stdin ? "stdin" : path)))
        goto fail_nomem;
    cfg->from_stdin = from_stdin;
    rc = dir_of(from_stdin ? "./-" : path, &cfg->dir);
    if (rc == -ENOMEM)
        goto fail_nomem;
    if (rc) {
        weft__msgf(err, errlen, "cannot find the folder of %s: %s", path,
                   weft_strerror(rc));
        goto fail;
    }

    ld.cfg = cfg;
    ld.f = f;
    bad_line = ini_parse_stream(read_line, &ld, on_entry, &ld);
    rc = ld.rc;
    weft__buf_free(&ld.text);
    for (size_t k = 0; k < ld.n_long; k++)
        free(ld.long_values[k]);
    free(ld.long_values);
    if (rc == 0 && bad_line == -2)
        goto fail_nomem;
    if (rc == 0 && bad_line != 0) /* not expected: read_line sees every error */
        rc = weft__failf(-EINVAL, err, errlen, "%s:%d: syntax error", path, bad_line);
    if (rc)
        goto fail;
    fclose(f);
    *out = cfg;
    return 0;

fail_nomem:
    rc = weft__failf(-ENOMEM, err, errlen, "%s: out of memory", path);
fail:
    weft__config_free(&cfg);
    fclose(f);
    return rc;
}

/* ---- --set ------------------------------------------------------------- */

static char *dup_trimmed(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

int weft__config_set_as(weft__config_t *cfg, const char *assignment, const char *origin,
                        char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = strchr(assignment, '.');
    int name_len = eq ? (int)(eq - assignment) : (int)strlen(assignment);

    if (!eq || !dot || dot > eq)
        return weft__failf(-EINVAL, err, errlen,
                           "%s %s: expected section.key=value (e.g. run.threads=4)",
                           origin, assignment);

    weft__entry_t e = {dup_trimmed(assignment, (size_t)(dot - assignment)),
                       dup_trimmed(dot + 1, (size_t)(eq - dot - 1)),
                       dup_trimmed(eq + 1, strlen(eq + 1)), origin, 0};
    int rc = -EINVAL;
    if (!e.section || !e.key || !e.value) {
        rc = weft__failf(-ENOMEM, err, errlen, "%s: out of memory", origin);
    } else if (!is_section(e.section, strlen(e.section))) {
        weft__msgf(err, errlen, "%s %.*s: unknown section '%s' (expected run, args or task)",
                   origin, name_len, assignment, e.section);
    } else if (!*e.key) {
        weft__msgf(err, errlen, "%s %.*s: empty key", origin, name_len, assignment);
    } else {
        weft__entry_t *old = entry_find(cfg, e.section, e.key);
        if (!old) {
            rc = entry_adopt(cfg, &e);
            return rc ? weft__failf(rc, err, errlen, "%s: out of memory", origin) : 0;
        }
        free(old->value); /* replace in place: file order is kept */
        old->value = e.value;
        old->origin = origin;
        old->line = 0;
        e.value = NULL;
        rc = 0;
    }
    entry_clear(&e);
    return rc;
}

int weft__config_set(weft__config_t *cfg, const char *assignment, char *err,
                     size_t errlen)
{
    return weft__config_set_as(cfg, assignment, SET_ORIGIN, err, errlen);
}

int weft__config_new(weft__config_t **out, const char *label, char *err, size_t errlen)
{
    weft__config_t *cfg = calloc(1, sizeof *cfg);
    *out = NULL;
    if (!cfg || !(cfg->path = strdup(label)) || !(cfg->dir = getcwd(NULL, 0))) {
        int e = errno;
        weft__config_free(&cfg);
        return e == ENOMEM || !e ? weft__failf(-ENOMEM, err, errlen, "%s: out of memory", label)
                                 : weft__failf(-EIO, err, errlen,
                                               "%s: cannot find the current folder: %s",
                                               label, weft_strerror(-e));
    }
    cfg->in_memory = true;
    *out = cfg;
    return 0;
}

/* ---- finalize: [run] ------------------------------------------------------ */

typedef struct run_state {
    weft__config_t *cfg;
    const weft__entry_t *format_entry; /* NULL: format derived from output */
    const weft__entry_t *output_entry, *record_entry, *columns_entry, *flatten_entry,
        *npy_dtype_entry;
    weft__format_t format;
    char *err;
    size_t errlen;
} run_state_t;

static int nomem(run_state_t *st)
{
    return weft__failf(-ENOMEM, st->err, st->errlen, "%s: out of memory", st->cfg->path);
}

static int run_plugin(run_state_t *st, const weft__entry_t *e)
{
    if (!*e->value)
        return bad_value(st->err, st->errlen, e, "expected a plugin name or path");
    /* A name is looked up on the plugin path; anything with a '/' is a file. */
    st->cfg->plugin = strchr(e->value, '/') ? weft__path_resolve(st->cfg->dir, e->value)
                                            : strdup(e->value);
    return st->cfg->plugin ? 0 : nomem(st);
}

static int run_plugin_path(run_state_t *st, const weft__entry_t *e)
{
    size_t cap = 1, len = 0;
    const char *p = e->value;
    /* Every part can grow by at most strlen(dir) + 1. */
    for (const char *q = p; *q; q++)
        cap += *q == ':';
    cap = strlen(p) + cap * (strlen(st->cfg->dir) + 2) + 1;
    char *out = malloc(cap);
    if (!out)
        return nomem(st);
    while (*p) {
        size_t n = strcspn(p, ":");
        if (n > 0) { /* empty parts ("a::b") are skipped */
            char *part = strndup(p, n);
            char *abs = part ? weft__path_resolve(st->cfg->dir, part) : NULL;
            free(part);
            if (!abs) {
                free(out);
                return nomem(st);
            }
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ":" : "", abs);
            free(abs);
        }
        p += n + (p[n] == ':');
    }
    if (len == 0) {
        free(out);
        out = NULL;
    }
    st->cfg->plugin_path = out;
    return 0;
}

static int run_items(run_state_t *st, const weft__entry_t *e)
{
    st->cfg->items = e; /* the item source parses it */
    return 0;
}

static int run_threads(run_state_t *st, const weft__entry_t *e)
{
    int64_t v;
    if (weft__parse_int64(e->value, &v) || v < 0 || v > 1024)
        return bad_value(st->err, st->errlen, e, "expected an integer from 0 to 1024");
    st->cfg->threads = (unsigned)v;
    return 0;
}

static int run_output(run_state_t *st, const weft__entry_t *e)
{
    st->output_entry = e;
    if (strcmp(e->value, "none") == 0)
        return 0;
    if (!*e->value)
        return bad_value(st->err, st->errlen, e,
                         "expected a file, '-' for stdout, or 'none'");
    st->cfg->output = strcmp(e->value, "-") == 0
                          ? strdup("-")
                          : weft__path_resolve(st->cfg->dir, e->value);
    return st->cfg->output ? 0 : nomem(st);
}

static int run_format(run_state_t *st, const weft__entry_t *e)
{
    static const char *const names[] = {"json", "jsonl", "csv", "tsv", "npy", "raw", "none"};
    static const weft__format_t values[] = {WEFT__FORMAT_JSON, WEFT__FORMAT_JSONL,
                                            WEFT__FORMAT_CSV,  WEFT__FORMAT_TSV,
                                            WEFT__FORMAT_NPY,  WEFT__FORMAT_RAW,
                                            WEFT__FORMAT_NONE};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strcmp(e->value, names[i]) == 0) {
            st->format = values[i];
            st->format_entry = e;
            return 0;
        }
    }
    return bad_value(st->err, st->errlen, e,
                     "expected json, jsonl, csv, tsv, npy, raw or none");
}

static int run_npy_dtype(run_state_t *st, const weft__entry_t *e)
{
    static const char *const names[] = {"float64", "float32", "int64", "int32", "int16", "int8"};
    static const weft_dtype_t values[] = {WEFT_DTYPE_F64, WEFT_DTYPE_F32, WEFT_DTYPE_I64,
                                          WEFT_DTYPE_I32, WEFT_DTYPE_I16, WEFT_DTYPE_I8};
    st->npy_dtype_entry = e;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strcmp(e->value, names[i]) == 0) {
            st->cfg->npy_dtype = values[i];
            return 0;
        }
    }
    return bad_value(st->err, st->errlen, e,
                     "expected float64, float32, int64, int32, int16 or int8");
}

static int run_record(run_state_t *st, const weft__entry_t *e)
{
    st->record_entry = e;
    if (strcmp(e->value, "value") == 0)
        st->cfg->record = WEFT__RECORD_VALUE;
    else if (strcmp(e->value, "full") == 0)
        st->cfg->record = WEFT__RECORD_FULL;
    else
        return bad_value(st->err, st->errlen, e, "expected value or full");
    return 0;
}

static int run_seed(run_state_t *st, const weft__entry_t *e)
{
    if (parse_uint64(e->value, &st->cfg->seed))
        return bad_value(st->err, st->errlen, e,
                         "expected an integer from 0 to %llu (decimal or 0x hex)",
                         (unsigned long long)UINT64_MAX);
    return 0;
}

static int run_order(run_state_t *st, const weft__entry_t *e)
{
    if (strcmp(e->value, "input") == 0 || strcmp(e->value, "any") == 0) {
        st->cfg->order_any = e->value[0] == 'a';
        return 0;
    }
    return bad_value(st->err, st->errlen, e,
                     "expected input (results in input order) or any (as they finish)");
}

static int run_flatten(run_state_t *st, const weft__entry_t *e)
{
    st->flatten_entry = e;
    if (weft__parse_bool(e->value, &st->cfg->flatten) != 0)
        return bad_value(st->err, st->errlen, e, "expected true/false, yes/no, on/off or 1/0");
    return 0;
}

static int run_keep_journal(run_state_t *st, const weft__entry_t *e)
{
    if (weft__parse_bool(e->value, &st->cfg->keep_journal) != 0)
        return bad_value(st->err, st->errlen, e, "expected true/false, yes/no, on/off or 1/0");
    return 0;
}

static int run_sync(run_state_t *st, const weft__entry_t *e)
{
    static const char *const names[] = {"batch", "item", "none"};
    static const weft__sync_t values[] = {WEFT__SYNC_BATCH, WEFT__SYNC_ITEM, WEFT__SYNC_NONE};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(e->value, names[i]) == 0) {
            st->cfg->sync = values[i];
            return 0;
        }
    return bad_value(st->err, st->errlen, e,
                     "expected batch (files made durable in groups, then journaled), item "
                     "(each file synced as it is committed) or none (no sync: safe from a "
                     "crash of weft, not of the machine)");
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* columns = a,b,c: names split at ',', trimmed of blanks; each non-empty,
 * unique, and none of the fixed columns. */
static int run_columns(run_state_t *st, const weft__entry_t *e)
{
    static const char *const fixed[] = {"index", "input", "ok", "error"};
    weft__config_t *cfg = st->cfg;
    st->columns_entry = e;
    size_t cap = 1;
    for (const char *q = e->value; *q; q++)
        cap += *q == ',';
    if (cap > WEFT__MAX_COLUMNS)
        return bad_value(st->err, st->errlen, e, "at most %d columns", WEFT__MAX_COLUMNS);
    cfg->columns = calloc(cap, sizeof *cfg->columns);
    if (!cfg->columns)
        return nomem(st);
    for (const char *p = e->value;; p++) {
        size_t n = strcspn(p, ",");
        const char *a = p, *z = p + n;
        while (a < z && is_blank(*a))
            a++;
        while (z > a && is_blank(z[-1]))
            z--;
        if (a == z)
            return bad_value(st->err, st->errlen, e,
                             "expected the value's keys, e.g. columns = x,y (column %zu "
                             "is empty)", cfg->n_columns + 1);
        char *name = strndup(a, (size_t)(z - a));
        if (!name)
            return nomem(st);
        cfg->columns[cfg->n_columns++] = name;
        for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++)
            if (strcmp(name, fixed[k]) == 0)
                return bad_value(st->err, st->errlen, e,
                                 "'%s' is one of the fixed columns (index, input, ok, "
                                 "error)", name);
        for (size_t k = 0; k + 1 < cfg->n_columns; k++)
            if (strcmp(name, cfg->columns[k]) == 0)
                return bad_value(st->err, st->errlen, e, "'%s' is named twice", name);
        p += n;
        if (!*p)
            break;
    }
    return 0;
}

static int run_halt(run_state_t *st, const weft__entry_t *e)
{
    weft__halt_t *h = &st->cfg->halt;
    const char *v = e->value;
    const char *expected = "expected never, or soon,fail=N / soon,fail=P% / now,fail=N / "
                           "now,fail=P% (stop after N failures, or when P % of the items "
                           "run so far failed)";
    *h = (weft__halt_t){0};
    if (strcmp(v, "never") == 0)
        return 0;
    if (strncmp(v, "soon,fail=", 10) == 0)
        h->mode = WEFT__HALT_SOON;
    else if (strncmp(v, "now,fail=", 9) == 0)
        h->mode = WEFT__HALT_NOW;
    else
        return bad_value(st->err, st->errlen, e, "%s", expected);
    const char *num = strchr(v, '=') + 1;
    size_t n = strlen(num);
    if (n > 1 && num[n - 1] == '%') {
        char buf[32];
        char *end;
        if (n - 1 >= sizeof buf)
            return bad_value(st->err, st->errlen, e, "%s", expected);
        memcpy(buf, num, n - 1);
        buf[n - 1] = '\0';
        errno = 0;
        double p = strtod(buf, &end);
        if (errno || *end || end == buf || !(p > 0 && p <= 100))
            return bad_value(st->err, st->errlen, e, "the percentage must be in (0, 100]");
        h->fail_percent = p;
        return 0;
    }
    int64_t c;
    if (weft__parse_int64(num, &c) || c < 1)
        return bad_value(st->err, st->errlen, e, "the failure count must be an integer >= 1");
    h->fail_count = (uint64_t)c;
    return 0;
}

static int run_retries(run_state_t *st, const weft__entry_t *e)
{
    int64_t v;
    if (weft__parse_int64(e->value, &v) || v < 0 || v > 1000)
        return bad_value(st->err, st->errlen, e, "expected an integer from 0 to 1000");
    st->cfg->retries = (unsigned)v;
    return 0;
}

static int run_timeout(run_state_t *st, const weft__entry_t *e)
{
    char *end;
    errno = 0;
    double t = strtod(e->value, &end);
    if (errno || *end || end == e->value || !(t >= 0 && t <= 1e9))
        return bad_value(st->err, st->errlen, e,
                         "expected seconds per item, e.g. 30 or 0.5 (0 = no limit)");
    st->cfg->timeout = t;
    return 0;
}

static int run_isolate(run_state_t *st, const weft__entry_t *e)
{
    if (strcmp(e->value, "thread") == 0 || strcmp(e->value, "process") == 0) {
        st->cfg->isolate_process = e->value[0] == 'p';
        return 0;
    }
    return bad_value(st->err, st->errlen, e,
                     "expected thread (items run on threads) or process (in worker "
                     "processes: a crash costs only its item)");
}

static int run_journal(run_state_t *st, const weft__entry_t *e)
{
    if (strcmp(e->value, "auto") == 0)
        return 0;
    if (strcmp(e->value, "off") == 0) {
        st->cfg->journal_off = true;
        return 0;
    }
    if (!*e->value)
        return bad_value(st->err, st->errlen, e, "expected auto, off or a file");
    st->cfg->journal = weft__path_resolve(st->cfg->dir, e->value);
    return st->cfg->journal ? 0 : nomem(st);
}

typedef struct run_key {
    const char *name;
    int (*apply)(run_state_t *st, const weft__entry_t *e);
} run_key_t;

static const run_key_t run_keys[] = {
    {"plugin", run_plugin}, {"plugin_path", run_plugin_path},
    {"items", run_items},   {"threads", run_threads},
    {"output", run_output}, {"format", run_format},
    {"record", run_record}, {"seed", run_seed},
    {"order", run_order},   {"flatten", run_flatten},
    {"halt", run_halt},     {"retries", run_retries},
    {"timeout", run_timeout}, {"isolate", run_isolate},
    {"journal", run_journal}, {"keep_journal", run_keep_journal},
    {"sync", run_sync},
    {"columns", run_columns}, {"npy_dtype", run_npy_dtype},
};
#define N_RUN_KEYS (sizeof run_keys / sizeof run_keys[0])

static int unknown_run_key(run_state_t *st, const weft__entry_t *e)
{
    const char *names[N_RUN_KEYS];
    char where[256];
    for (size_t i = 0; i < N_RUN_KEYS; i++)
        names[i] = run_keys[i].name;
    const char *near = weft__suggest(e->key, names, N_RUN_KEYS);
    weft__msgf(st->err, st->errlen, "%s: unknown key '%s' in [run]",
               weft__entry_where(e, where, sizeof where), e->key);
    if (near) {
        weft__msg_appendf(st->err, st->errlen, "; did you mean '%s'?", near);
        return -EINVAL;
    }
    weft__msg_appendf(st->err, st->errlen, " (known keys:");
    for (size_t i = 0; i < N_RUN_KEYS; i++)
        weft__msg_appendf(st->err, st->errlen, " %s", names[i]);
    weft__msg_appendf(st->err, st->errlen, ")");
    return -EINVAL;
}

static int apply_run_entry(run_state_t *st, const weft__entry_t *e)
{
    for (size_t i = 0; i < N_RUN_KEYS; i++)
        if (strcmp(e->key, run_keys[i].name) == 0)
            return run_keys[i].apply(st, e);
    return unknown_run_key(st, e);
}

/* What an output's name says: the format of its extension (0: none known)
 * and its compression (.gz, .zst, stripped first). */
static weft__format_t format_of_name(const char *path, weft__compress_t *compress)
{
    static const struct {
        const char *ext;
        weft__format_t format;
    } exts[] = {{".json", WEFT__FORMAT_JSON}, {".jsonl", WEFT__FORMAT_JSONL},
                {".ndjson", WEFT__FORMAT_JSONL}, {".csv", WEFT__FORMAT_CSV},
                {".tsv", WEFT__FORMAT_TSV}, {".npy", WEFT__FORMAT_NPY}};
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(base);
    *compress = WEFT__COMPRESS_NONE;
    if (n > 3 && strcasecmp(base + n - 3, ".gz") == 0)
        *compress = WEFT__COMPRESS_GZIP, n -= 3;
    else if (n > 4 && strcasecmp(base + n - 4, ".zst") == 0)
        *compress = WEFT__COMPRESS_ZSTD, n -= 4;
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        size_t k = strlen(exts[i].ext);
        if (n > k && strncasecmp(base + n - k, exts[i].ext, k) == 0)
            return exts[i].format;
    }
    return (weft__format_t)0;
}

static const char *format_word(weft__format_t f)
{
    switch (f) {
    case WEFT__FORMAT_JSON: return "json";
    case WEFT__FORMAT_JSONL: return "jsonl";
    case WEFT__FORMAT_CSV: return "csv";
    case WEFT__FORMAT_TSV: return "tsv";
    case WEFT__FORMAT_NPY: return "npy";
    case WEFT__FORMAT_RAW: return "raw";
    case WEFT__FORMAT_NONE: break;
    }
    return "none";
}

/* Standard output, a name for one of weft's descriptors, or a special file
 * that exists (/dev/null, a FIFO): written as a stream, with no extension
 * to go by. */
static bool is_stream_output(const char *path)
{
    struct stat sb;
    return strcmp(path, "-") == 0 || weft__path_fd(path) >= 0 ||
           (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode));
}

/* Keeps the invariant output == NULL <=> format == NONE; the output's
 * extension and `format =` must agree. */
static int settle_format(run_state_t *st)
{
    weft__config_t *cfg = st->cfg;
    const weft__entry_t *e = st->format_entry;
    char where[256];
    weft__format_t named = cfg->output && strcmp(cfg->output, "-") != 0
                               ? format_of_name(cfg->output, &cfg->compress)
                               : (weft__format_t)0;
    const weft__entry_t *o = st->output_entry;
    if (!cfg->output) {
        if (e && st->format != WEFT__FORMAT_NONE)
            return bad_value(st->err, st->errlen, e,
                             "there is no output (set output = FILE, or - for stdout)");
        cfg->format = WEFT__FORMAT_NONE;
    } else if (e && st->format == WEFT__FORMAT_NONE) {
        return bad_value(st->err, st->errlen, e,
                         "output is set (use output = none to write no results)");
    } else if (e) {
        if (named && named != st->format)
            return bad_value(st->err, st->errlen, e,
                             "the output %s is %s by its extension (%s): name it for "
                             "the format, or drop one of the two",
                             cfg->output, format_word(named),
                             weft__entry_where(o, where, sizeof where));
        cfg->format = st->format;
    } else if (named) {
        cfg->format = named;
    } else if (is_stream_output(cfg->output) && cfg->compress == WEFT__COMPRESS_NONE) {
        /* Standard output of a command-line run: what the commands print,
         * as GNU parallel prints it. */
        cfg->format = cfg->in_memory && strcmp(cfg->output, "-") == 0 ? WEFT__FORMAT_RAW
                                                                       : WEFT__FORMAT_JSONL;
    } else {
        return bad_value(st->err, st->errlen, o,
                         "which format? Name the file .json, .jsonl (or .ndjson), .csv, "
                         ".tsv or .npy (the first four may end in .gz or .zst), or set "
                         "format = json|jsonl|csv|tsv|npy|raw");
    }
    if (cfg->format == WEFT__FORMAT_NPY && strcmp(cfg->output, "-") == 0)
        return weft__failf(-EINVAL, st->err, st->errlen,
                           "%s: a .npy output must be a file (it is written in place)",
                           cfg->path);
    if (cfg->format == WEFT__FORMAT_NPY && cfg->compress)
        return bad_value(st->err, st->errlen, o,
                         "a .npy array is written in place and cannot be compressed "
                         "(write .npy, and compress it after the run)");
    if (st->npy_dtype_entry && cfg->format != WEFT__FORMAT_NPY)
        return bad_value(st->err, st->errlen, st->npy_dtype_entry,
                         "npy_dtype is for .npy outputs (this output is %s)",
                         format_word(cfg->format));
    bool csv = cfg->format == WEFT__FORMAT_CSV || cfg->format == WEFT__FORMAT_TSV;
    if (st->columns_entry && !csv)
        return bad_value(st->err, st->errlen, st->columns_entry,
                         "columns is for csv and tsv outputs (this output is %s)",
                         format_word(cfg->format));
    if (csv && st->record_entry && cfg->record == WEFT__RECORD_VALUE)
        return bad_value(st->err, st->errlen, st->record_entry,
                         "a %s row always holds index, input, ok, error and the value "
                         "(drop record, or set record = full)",
                         format_word(cfg->format));
    if (csv)
        cfg->record = WEFT__RECORD_FULL;
    if (cfg->format == WEFT__FORMAT_RAW && st->record_entry &&
        cfg->record == WEFT__RECORD_FULL)
        return bad_value(st->err, st->errlen, st->record_entry,
                         "format = raw writes each value's bytes alone (use jsonl, csv "
                         "or tsv for full records)");
    if (cfg->format == WEFT__FORMAT_RAW && cfg->flatten)
        return bad_value(st->err, st->errlen, st->flatten_entry,
                         "format = raw writes each value as it is (a list as its JSON "
                         "text); flatten is for json, jsonl, csv and tsv");
    return 0;
}

static void run_reset(weft__config_t *cfg)
{
    free(cfg->plugin);
    free(cfg->plugin_path);
    free(cfg->output);
    free(cfg->journal);
    cfg->plugin = cfg->plugin_path = cfg->output = cfg->journal = NULL;
    for (size_t i = 0; i < cfg->n_columns; i++)
        free(cfg->columns[i]);
    free(cfg->columns);
    cfg->columns = NULL;
    cfg->n_columns = 0;
    cfg->compress = WEFT__COMPRESS_NONE;
    cfg->halt = (weft__halt_t){0};
    cfg->retries = 0;
    cfg->timeout = 0;
    cfg->isolate_process = cfg->journal_off = false;
    cfg->sync = WEFT__SYNC_BATCH;
    cfg->items = NULL;
    cfg->threads = 0;
    cfg->format = WEFT__FORMAT_NONE;
    cfg->npy_dtype = (weft_dtype_t)0;
    cfg->record = WEFT__RECORD_VALUE;
    cfg->seed = 0;
    cfg->order_any = cfg->flatten = false;
}

int weft__config_finalize(weft__config_t *cfg, char *err, size_t errlen)
{
    run_state_t st = {.cfg = cfg, .err = err, .errlen = errlen};
    int rc;

    run_reset(cfg); /* finalize may run again after more --set */
    for (size_t i = 0; i < cfg->n_entries; i++) {
        if (strcmp(cfg->entries[i].section, "run") != 0)
            continue;
        rc = apply_run_entry(&st, &cfg->entries[i]);
        if (rc)
            return rc;
    }
    if (!cfg->plugin)
        return weft__failf(-EINVAL, err, errlen,
                           "%s: [run] has no 'plugin' key (the plugin to run)",
                           cfg->path);
    if (!cfg->items)
        return cfg->in_memory
                   ? weft__failf(-EINVAL, err, errlen,
                                 "%s: which items? Give them after ::: (::: a b c), "
                                 "as the lines of a file (:::: FILE) or as a source "
                                 "(--items SPEC)",
                                 cfg->path)
                   : weft__failf(-EINVAL, err, errlen,
                                 "%s: [run] has no 'items' key (the items to process)",
                                 cfg->path);
    /* A run the command line describes prints to standard output. */
    if (cfg->in_memory && !st.output_entry && !(cfg->output = strdup("-")))
        return nomem(&st);
    return settle_format(&st);
}

/* ---- bind: [args] ----------------------------------------------------------- */

static const char *type_name(weft_arg_type_t t)
{
    switch (t) {
    case WEFT_ARG_INT:
        return "int";
    case WEFT_ARG_FLOAT:
        return "float";
    case WEFT_ARG_BOOL:
        return "bool";
    case WEFT_ARG_STRING:
        return "string";
    case WEFT_ARG_PATH:
        return "path";
    case WEFT_ARG_OUTDIR:
        return "output folder";
    }
    return "unknown type";
}

static bool has_range(const weft_arg_spec_t *spec)
{
    return spec->min < spec->max;
}

static int convert_int(const weft_arg_spec_t *spec, const char *text,
                       weft_arg_value_t *out, char *why, size_t whylen)
{
    int64_t v;
    int rc = weft__parse_int64(text, &v);
    if (rc == -ERANGE)
        return weft__failf(-EINVAL, why, whylen,
                           "expected an integer from %lld to %lld (int64)",
                           (long long)INT64_MIN, (long long)INT64_MAX);
    if (rc)
        return weft__failf(-EINVAL, why, whylen, "expected an integer (int64)");
    if (has_range(spec) && ((double)v < spec->min || (double)v > spec->max))
        return weft__failf(-EINVAL, why, whylen, "expected an integer from %.0f to %.0f",
                           spec->min, spec->max);
    out->u.i = v;
    return 0;
}

static int convert_float(const weft_arg_spec_t *spec, const char *text,
                         weft_arg_value_t *out, char *why, size_t whylen)
{
    const char *expected = "expected a finite number (float)";
    char *end;
    /* strtod skips leading blanks and takes "inf"/"nan": whole, finite only. */
    if (!*text || isspace((unsigned char)*text))
        return weft__failf(-EINVAL, why, whylen, "%s", expected);
    double v = strtod(text, &end);
    if (*end || !isfinite(v))
        return weft__failf(-EINVAL, why, whylen, "%s", expected);
    if (has_range(spec) && (v < spec->min || v > spec->max))
        return weft__failf(-EINVAL, why, whylen, "expected a number from %g to %g",
                           spec->min, spec->max);
    out->u.f = v;
    return 0;
}

int weft__parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    return -EINVAL;
}

static int convert_bool(const char *text, weft_arg_value_t *out, char *why, size_t whylen)
{
    if (weft__parse_bool(text, &out->u.b) == 0)
        return 0;
    return weft__failf(-EINVAL, why, whylen,
                       "expected true/false, yes/no, on/off or 1/0 (bool)");
}

/* text -> out.  STRING values point at text unless `copy` (a default: the
 * plugin's string, copied so that out points into cfg as promised); PATHs
 * are always new strings.  -EINVAL with the reason in why, or -ENOMEM. */
static int convert(weft__config_t *cfg, const weft_arg_spec_t *spec, const char *text,
                   bool copy, weft_arg_value_t *out, char *why, size_t whylen)
{
    out->type = spec->type;
    switch (spec->type) {
    case WEFT_ARG_INT:
        return convert_int(spec, text, out, why, whylen);
    case WEFT_ARG_FLOAT:
        return convert_float(spec, text, out, why, whylen);
    case WEFT_ARG_BOOL:
        return convert_bool(text, out, why, whylen);
    case WEFT_ARG_STRING:
        out->u.s = copy ? keep_bound(cfg, strdup(text)) : text;
        return out->u.s ? 0 : -ENOMEM;
    case WEFT_ARG_PATH: /* "" stays "": the plugin's "not set" */
    case WEFT_ARG_OUTDIR: /* the runner refuses "" when it opens it */
        out->u.s =
            keep_bound(cfg, *text ? weft__path_resolve(cfg->dir, text) : strdup(""));
        return out->u.s ? 0 : -ENOMEM;
    }
    return weft__failf(-EINVAL, why, whylen, "argument has an unknown type %d",
                       (int)spec->type);
}

static int unknown_arg(const weft__config_t *cfg, const weft_plugin_t *plugin,
                       const weft__entry_t *e, char *err, size_t errlen)
{
    char where[256];
    weft__entry_where(e, where, sizeof where);
    if (plugin->n_args == 0)
        return weft__failf(-EINVAL, err, errlen,
                           "%s: unknown argument '%s': plugin %s takes no arguments",
                           where, e->key, plugin->name);
    const char **names = malloc(plugin->n_args * sizeof *names);
    if (!names)
        return weft__failf(-ENOMEM, err, errlen, "%s: out of memory", cfg->path);
    for (size_t k = 0; k < plugin->n_args; k++)
        names[k] = plugin->args[k].name;
    const char *near = weft__suggest(e->key, names, plugin->n_args);
    weft__msgf(err, errlen, "%s: unknown argument '%s' for plugin %s", where, e->key,
               plugin->name);
    if (near)
        weft__msg_appendf(err, errlen, "; did you mean '%s'?", near);
    weft__msg_appendf(err, errlen, " (its arguments:");
    for (size_t k = 0; k < plugin->n_args; k++)
        weft__msg_appendf(err, errlen, " %s", names[k]);
    weft__msg_appendf(err, errlen, ")");
    free(names);
    return -EINVAL;
}

static bool schema_has(const weft_plugin_t *plugin, const char *name)
{
    for (size_t k = 0; k < plugin->n_args; k++)
        if (strcmp(plugin->args[k].name, name) == 0)
            return true;
    return false;
}

bool weft__arg_choice_ok(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *c = choices; c && *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, value, n) == 0)
            return true;
        if (!bar)
            break;
        c = bar + 1;
    }
    return false;
}

/* The choices of argument k, or NULL. */
static const char *choices_of(const weft_plugin_t *plugin, size_t k)
{
    return plugin->arg_choices && plugin->args[k].type == WEFT_ARG_STRING
               ? plugin->arg_choices[k]
               : NULL;
}

/* Why value is not one of choices: "expected one of a|b|c" and a did you
 * mean.  -EINVAL. */
static int not_a_choice(const char *choices, const char *value, char *why, size_t whylen)
{
    const char *words[32];
    char copy[512];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", choices);
    for (char *save = NULL, *w = strtok_r(copy, "|", &save); w && n < 32;
         w = strtok_r(NULL, "|", &save))
        words[n++] = w;
    const char *near = weft__suggest(value, words, n);
    weft__msgf(why, whylen, "expected one of %s", choices);
    if (near)
        weft__msg_appendf(why, whylen, "; did you mean '%s'?", near);
    return -EINVAL;
}

int weft__arg_check(const weft_plugin_t *plugin, size_t k, const char *text, char *why,
                    size_t whylen)
{
    const weft_arg_spec_t *spec = &plugin->args[k];
    weft_arg_value_t v;
    switch (spec->type) {
    case WEFT_ARG_INT:
        return convert_int(spec, text, &v, why, whylen);
    case WEFT_ARG_FLOAT:
        return convert_float(spec, text, &v, why, whylen);
    case WEFT_ARG_BOOL:
        return convert_bool(text, &v, why, whylen);
    case WEFT_ARG_STRING: {
        const char *choices = choices_of(plugin, k);
        return choices && !weft__arg_choice_ok(choices, text)
                   ? not_a_choice(choices, text, why, whylen)
                   : 0;
    }
    case WEFT_ARG_PATH:
    case WEFT_ARG_OUTDIR:
        return 0;
    }
    return weft__failf(-EINVAL, why, whylen, "argument has an unknown type %d",
                       (int)spec->type);
}

static int bind_one(weft__config_t *cfg, const weft_plugin_t *plugin, size_t k,
                    weft_arg_value_t *out, char *err, size_t errlen)
{
    const weft_arg_spec_t *spec = &plugin->args[k];
    const weft__entry_t *e = entry_find(cfg, "args", spec->name);
    char why[160] = "";
    int rc;

    const char *choices = choices_of(plugin, k);
    if (e) {
        rc = convert(cfg, spec, e->value, false, out, why, sizeof why);
        if (rc == 0 && choices && !weft__arg_choice_ok(choices, e->value))
            rc = not_a_choice(choices, e->value, why, sizeof why);
        if (rc == -EINVAL)
            return bad_value(err, errlen, e, "%s", why);
    } else if (!spec->default_value) {
        if (cfg->in_memory) /* weft run -p PLUGIN: no [args] to point at */
            return weft__failf(-EINVAL, err, errlen,
                               "%s: missing required argument '%s' (%s: %s): give it with "
                               "--set args.%s=VALUE%s",
                               cfg->path, spec->name, type_name(spec->type),
                               spec->help ? spec->help : "no help", spec->name,
                               strcmp(spec->name, "command") == 0
                                   ? ", or as the words after -- (weft run -p PLUGIN -- "
                                     "CMD ARG... ::: ITEM...)"
                                   : "");
        return weft__failf(-EINVAL, err, errlen,
                           "%s: missing required argument '%s' (%s: %s) in [args]",
                           cfg->path, spec->name, type_name(spec->type),
                           spec->help ? spec->help : "no help");
    } else {
        rc = convert(cfg, spec, spec->default_value, true, out, why, sizeof why);
        if (rc == 0 && choices && !weft__arg_choice_ok(choices, spec->default_value))
            rc = not_a_choice(choices, spec->default_value, why, sizeof why);
        if (rc == -EINVAL)
            return weft__failf(rc, err, errlen, "plugin %s: bad default for %s: '%s': %s",
                               plugin->name, spec->name, spec->default_value, why);
    }
    if (rc == -ENOMEM)
        return weft__failf(rc, err, errlen, "%s: out of memory", cfg->path);
    return rc;
}

/* A [task] key becomes a keyword argument of a function in the worker's
 * language: an identifier, [A-Za-z_][A-Za-z0-9_]*. */
static bool task_key_ok(const char *k)
{
    if (!isalpha((unsigned char)*k) && *k != '_')
        return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_')
            return false;
    return true;
}

/* [task] entries, checked and listed in cfg->task_keys/values (file order). */
static int bind_task(weft__config_t *cfg, const weft_plugin_t *plugin, char *err,
                     size_t errlen)
{
    free(cfg->task_keys);
    free(cfg->task_values);
    cfg->task_keys = cfg->task_values = NULL;
    cfg->n_task = 0;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_entries; i++)
        n += strcmp(cfg->entries[i].section, "task") == 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const weft__entry_t *e = &cfg->entries[i];
        if (strcmp(e->section, "task") != 0)
            continue;
        char where[256];
        weft__entry_where(e, where, sizeof where);
        if (!(plugin->flags & WEFT_PLUGIN_TASK_ARGS))
            return weft__failf(-EINVAL, err, errlen,
                               "%s: [task] is for a plugin that hands arguments on to a "
                               "task of its own (plugin = worker); plugin %s takes its "
                               "arguments in [args]",
                               where, plugin->name);
        if (!task_key_ok(e->key))
            return weft__failf(-EINVAL, err, errlen,
                               "%s: [task] key '%s' is not a name a function's argument "
                               "can have ([A-Za-z_][A-Za-z0-9_]*)",
                               where, e->key);
    }
    cfg->task_keys = malloc(n * sizeof *cfg->task_keys);
    cfg->task_values = malloc(n * sizeof *cfg->task_values);
    if (!cfg->task_keys || !cfg->task_values)
        return weft__failf(-ENOMEM, err, errlen, "%s: out of memory", cfg->path);
    for (size_t i = 0; i < cfg->n_entries; i++)
        if (strcmp(cfg->entries[i].section, "task") == 0) {
            cfg->task_keys[cfg->n_task] = cfg->entries[i].key;
            cfg->task_values[cfg->n_task++] = cfg->entries[i].value;
        }
    return 0;
}

int weft__config_bind(weft__config_t *cfg, const weft_plugin_t *plugin,
                      weft_arg_value_t *out, char *err, size_t errlen)
{
    int rc;
    /* Unknown keys first, in file order: a typo also makes its argument
     * look "missing", and the typo is the real error. */
    for (size_t i = 0; i < cfg->n_entries; i++) {
        const weft__entry_t *e = &cfg->entries[i];
        if (strcmp(e->section, "args") == 0 && !schema_has(plugin, e->key))
            return unknown_arg(cfg, plugin, e, err, errlen);
    }
    rc = bind_task(cfg, plugin, err, errlen);
    if (rc)
        return rc;
    for (size_t k = 0; k < plugin->n_args; k++) {
        rc = bind_one(cfg, plugin, k, &out[k], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- free ------------------------------------------------------------------ */

void weft__config_free(weft__config_t **pcfg)
{
    weft__config_t *cfg = pcfg ? *pcfg : NULL;
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_entries; i++)
        entry_clear(&cfg->entries[i]);
    free(cfg->entries);
    for (size_t i = 0; i < cfg->n_bound; i++)
        free(cfg->bound[i]);
    free(cfg->bound);
    free(cfg->task_keys);
    free(cfg->task_values);
    run_reset(cfg);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
    *pcfg = NULL;
}
