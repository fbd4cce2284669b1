/* SPDX-License-Identifier: MIT */
/* File name templates and the confinement check (see template.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outdir.h"
#include "template.h"
#include "util.h"

enum kind { K_LIT, K_TEXT, K_INDEX, K_NUMBER, K_NAME, K_STEM, K_EXT, K_DIR };

static const struct {
    const char *name;
    enum kind kind;
    bool pad; /* accepts :0N */
} known[] = {
    {"", K_TEXT, false},       {"path", K_TEXT, false}, {"index", K_INDEX, true},
    {"number", K_NUMBER, true}, {"name", K_NAME, false}, {"stem", K_STEM, false},
    {"ext", K_EXT, false},     {"dir", K_DIR, false},
};

#define KNOWN_LIST                                                                       \
    "known: {} {index} {index:0N} {number} {number:0N} {name} {stem} {ext} {dir}; {{ "   \
    "and }} are literal braces"

enum { PAD_MAX = 20, NUM_BUF = 24 };

typedef struct piece {
    uint8_t kind;
    uint8_t pad; /* minimum digits, 0 = none */
    uint32_t off; /* K_LIT: bytes [off, off + len) of lit */
    uint32_t len;
} piece_t;

struct weft_tmpl {
    size_t n;
    bool uses_text; /* a piece reads the item text (not for ranges) */
    char *lit;
    piece_t pieces[]; /* n */
};

/* Appends a literal byte, merging with a literal piece just before. */
static void add_lit(weft__tmpl_t *t, size_t *n_lit, char c)
{
    piece_t *last = t->n ? &t->pieces[t->n - 1] : NULL;
    t->lit[*n_lit] = c;
    if (last && last->kind == K_LIT && last->off + last->len == *n_lit)
        last->len++;
    else
        t->pieces[t->n++] = (piece_t){K_LIT, 0, (uint32_t)*n_lit, 1};
    ++*n_lit;
}

/* Parses the placeholder text[open+1 .. close) into *p.  0 or -EINVAL. */
static int parse_placeholder(const char *text, size_t open, size_t close, piece_t *p,
                             char *err, size_t errlen)
{
    const char *body = text + open + 1;
    size_t blen = close - open - 1;
    const char *colon = memchr(body, ':', blen);
    size_t nlen = colon ? (size_t)(colon - body) : blen;
    /* Quote at most 64 bytes of a long placeholder. */
    int qlen = blen + 2 > 64 ? 64 : (int)(blen + 2);
    const char *more = blen + 2 > 64 ? "..." : "";

    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        if (strlen(known[k].name) != nlen || memcmp(known[k].name, body, nlen) != 0)
            continue;
        p->kind = (uint8_t)known[k].kind;
        p->pad = 0;
        if (!colon)
            return 0;
        const char *spec = colon + 1;
        size_t slen = blen - nlen - 1;
        if (!known[k].pad)
            return weft__failf(
                -EINVAL, err, errlen,
                "placeholder '%.*s%s' at position %zu: only {index} and {number} "
                "take a width (:0N)",
                qlen, text + open, more, open + 1);
        unsigned n = 0;
        bool ok = slen >= 2 && slen <= 3 && spec[0] == '0';
        for (size_t i = 1; ok && i < slen; i++) {
            ok = spec[i] >= '0' && spec[i] <= '9';
            n = n * 10 + (unsigned)(spec[i] - '0');
        }
        if (!ok || n < 1 || n > PAD_MAX)
            return weft__failf(
                -EINVAL, err, errlen,
                "placeholder '%.*s%s' at position %zu: the width is written :0N "
                "with N from 1 to %d (e.g. {%s:06})",
                qlen, text + open, more, open + 1, PAD_MAX, known[k].name);
        p->pad = (uint8_t)n;
        return 0;
    }
    return weft__failf(-EINVAL, err, errlen,
                       "unknown placeholder '%.*s%s' at position %zu (" KNOWN_LIST ")",
                       qlen, text + open, more, open + 1);
}

int weft__tmpl_compile(weft__tmpl_t **out, const char *text, char *err, size_t errlen)
{
    if (!out)
        return weft__failf(-EINVAL, err, errlen, "template: no result pointer");
    *out = NULL;
    if (!text)
        return weft__failf(-EINVAL, err, errlen, "template: no text");
    size_t len = strnlen(text, WEFT__TMPL_TEXT_MAX + 1);
    if (len > WEFT__TMPL_TEXT_MAX)
        return weft__failf(-ENAMETOOLONG, err, errlen, "template is longer than %d bytes",
                           WEFT__TMPL_TEXT_MAX);
    /* At most one piece per byte, and the literals are a subset of text. */
    weft__tmpl_t *t = malloc(sizeof *t + (len + 1) * sizeof(piece_t));
    char *lit = malloc(len + 1);
    if (!t || !lit) {
        free(t);
        free(lit);
        return weft__failf(-ENOMEM, err, errlen, "template: out of memory");
    }
    t->n = 0;
    t->uses_text = false;
    t->lit = lit;
    size_t n_lit = 0;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if ((c == '{' || c == '}') && text[i + 1] == c) {
            add_lit(t, &n_lit, c);
            i += 2;
            continue;
        }
        if (c == '}') {
            weft__tmpl_free(&t);
            return weft__failf(-EINVAL, err, errlen,
                               "lone '}' at position %zu (write }} for a literal brace)",
                               i + 1);
        }
        if (c != '{') {
            add_lit(t, &n_lit, c);
            i++;
            continue;
        }
        const char *close = memchr(text + i + 1, '}', len - i - 1);
        const char *inner = memchr(text + i + 1, '{', len - i - 1);
        if (!close || (inner && inner < close)) {
            weft__tmpl_free(&t);
            return weft__failf(
                -EINVAL, err, errlen,
                "'{' at position %zu is not closed (write {{ for a literal brace)",
                i + 1);
        }
        size_t j = (size_t)(close - text);
        piece_t p = {0};
        int rc = parse_placeholder(text, i, j, &p, err, errlen);
        if (rc) {
            weft__tmpl_free(&t);
            return rc;
        }
        t->pieces[t->n++] = p;
        t->uses_text |= p.kind == K_TEXT || p.kind == K_NAME || p.kind == K_STEM ||
                        p.kind == K_EXT || p.kind == K_DIR;
        i = j + 1;
    }
    *out = t;
    return 0;
}

void weft__tmpl_free(weft__tmpl_t **t)
{
    if (!t || !*t)
        return;
    free((*t)->lit);
    free(*t);
    *t = NULL;
}

/* ---- expansion ---------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span_t;

/* Decimal digits of v, zero padded to `pad` after a '-' sign, into buf
 * (NUM_BUF bytes: 1 sign + 20 digits fit). */
static span_t format_num(char *buf, uint64_t mag, bool neg, unsigned pad)
{
    char *end = buf + NUM_BUF, *p = end;
    unsigned digits = 0;
    do {
        *--p = (char)('0' + mag % 10);
        mag /= 10;
        digits++;
    } while (mag);
    while (digits < pad) {
        *--p = '0';
        digits++;
    }
    if (neg)
        *--p = '-';
    return (span_t){p, (size_t)(end - p)};
}

static span_t format_i64(char *buf, int64_t v, unsigned pad)
{
    /* The magnitude of INT64_MIN does not fit an int64_t: negate unsigned. */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return format_num(buf, mag, v < 0, pad);
}

/* basename(1) and dirname(1) of s, the stem (the base without its last
 * extension; ".bashrc", "." and ".." have none) and that extension. */
static void split_path(span_t s, span_t *dir, span_t *base, span_t *stem, span_t *ext)
{
    size_t end = s.n;
    while (end > 1 && s.p[end - 1] == '/')
        end--;
    if (end == 1 && s.p[0] == '/') {
        *dir = *base = *stem = (span_t){"/", 1};
        *ext = (span_t){"", 0};
        return;
    }
    size_t slash = end;
    while (slash > 0 && s.p[slash - 1] != '/')
        slash--;
    *base = (span_t){s.p + slash, end - slash};
    if (slash == 0) {
        *dir = (span_t){".", 1};
    } else {
        size_t d = slash;
        while (d > 1 && s.p[d - 1] == '/')
            d--;
        *dir = (span_t){s.p, d};
    }
    size_t dot = base->n;
    while (dot > 0 && base->p[dot - 1] != '.')
        dot--;
    bool dots_only = base->n <= 2 && (base->n == 0 || base->p[0] == '.') &&
                     (base->n < 2 || base->p[1] == '.');
    *stem = *base;
    if (dot > 1 && !dots_only)
        stem->n = dot - 1;
    *ext = (span_t){base->p + stem->n, base->n - stem->n};
}

int weft__tmpl_expand(const weft__tmpl_t *t, const weft_item_t *item, char *out, size_t outsz)
{
    if (!t || !item || !out)
        return -EINVAL;
    if (outsz > 0)
        out[0] = '\0';
    char num_text[NUM_BUF];
    span_t text = {0}, dir = {0}, base = {0}, stem = {0}, ext = {0};
    if (t->uses_text) {
        if (item->text) {
            text = (span_t){item->text, item->text_len};
            if (memchr(text.p, '\0', text.n))
                return -EINVAL;
        } else {
            text = format_i64(num_text, item->number, 0);
        }
        split_path(text, &dir, &base, &stem, &ext);
    }

    size_t len = 0;
    for (size_t k = 0; k < t->n; k++) {
        const piece_t *p = &t->pieces[k];
        char num[NUM_BUF];
        span_t v;
        switch ((enum kind)p->kind) {
        case K_LIT: v = (span_t){t->lit + p->off, p->len}; break;
        case K_TEXT: v = text; break;
        case K_INDEX: v = format_num(num, item->index, false, p->pad); break;
        case K_NUMBER: v = format_i64(num, item->number, p->pad); break;
        case K_NAME: v = base; break;
        case K_STEM: v = stem; break;
        case K_EXT: v = ext; break;
        case K_DIR: v = dir; break;
        default: return -EINVAL;
        }
        /* len < outsz holds before each copy; keep room for the NUL. */
        if (v.n >= outsz - len || len + v.n > INT_MAX) {
            if (outsz > 0)
                out[0] = '\0';
            return -ENAMETOOLONG;
        }
        memcpy(out + len, v.p, v.n);
        len += v.n;
    }
    if (len >= outsz)
        return -ENAMETOOLONG; /* only outsz == 0 gets here */
    out[len] = '\0';
    return (int)len;
}

/* ---- confinement -------------------------------------------------------- */

int weft__path_confine_check_n(const char *rel, size_t n, char *err, size_t errlen)
{
    /* Quote at most 200 bytes of a long or binary path. */
    int q = n > 200 ? 200 : (int)n;
    const char *more = n > 200 ? "..." : "";
    if (!rel || n == 0)
        return weft__failf(-EINVAL, err, errlen, "empty output path");
    const char *nul = memchr(rel, '\0', n);
    if (nul)
        return weft__failf(-EINVAL, err, errlen,
                           "output path '%.*s%s' holds a NUL byte at position %zu", q,
                           rel, more, (size_t)(nul - rel) + 1);
    if (rel[0] == '/')
        return weft__failf(
            -EINVAL, err, errlen,
            "output path '%.*s%s' is absolute: it must be relative to the output "
            "folder",
            q, rel, more);
    if (n > PATH_MAX - 1)
        return weft__failf(-ENAMETOOLONG, err, errlen,
                           "output path '%.*s%s' is %zu bytes long (at most %d)", q, rel,
                           more, n, PATH_MAX - 1);
    size_t start = 0;
    while (start <= n) {
        size_t end = start;
        while (end < n && rel[end] != '/')
            end++;
        size_t clen = end - start;
        if (clen == 2 && rel[start] == '.' && rel[start + 1] == '.')
            return weft__failf(
                -EINVAL, err, errlen,
                "output path '%.*s%s': '..' at position %zu would leave the output "
                "folder",
                q, rel, more, start + 1);
        if (clen > NAME_MAX)
            return weft__failf(
                -ENAMETOOLONG, err, errlen,
                "output path '%.*s%s': the name at position %zu is %zu bytes long "
                "(at most %d)",
                q, rel, more, start + 1, clen, NAME_MAX);
        if (weft__outdir_reserved(rel + start, clen))
            return weft__failf(-EINVAL, err, errlen,
                               "output path '%.*s%s': the name '%.*s' at position %zu is "
                               "weft's own (its lock, journal and temporaries): choose "
                               "another",
                               q, rel, more, (int)clen, rel + start, start + 1);
        if (end == n) {
            /* The last component must name a file. */
            if (clen == 0 || (clen == 1 && rel[start] == '.'))
                return weft__failf(-EINVAL, err, errlen,
                                   "output path '%.*s%s' has no file name at its end", q,
                                   rel, more);
            break;
        }
        start = end + 1;
    }
    return 0;
}

int weft__path_confine_check(const char *rel, char *err, size_t errlen)
{
    if (!rel)
        return weft__failf(-EINVAL, err, errlen, "empty output path");
    /* strnlen bounds the scan: anything over PATH_MAX is rejected anyway. */
    return weft__path_confine_check_n(rel, strnlen(rel, PATH_MAX + 1), err, errlen);
}
