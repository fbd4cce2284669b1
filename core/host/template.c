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

enum kind {
    K_LIT,
    K_TEXT,   /* {} {path}   */
    K_INDEX,  /* {index}     */
    K_NUMBER, /* {number}    */
    K_NAME,   /* {name} {/}  */
    K_STEM,   /* {stem} {/.} */
    K_EXT,    /* {ext}       */
    K_DIR,    /* {dir} {//}  */
    K_NOEXT,  /* {.}         */
    K_SEQ,    /* {#}         */
    K_SLOT,   /* {%}         */
};

/* The one list of placeholders: file names (weft__tmpl_compile) and argv
 * words (weft__tmpl_scan) both read it. */
static const struct {
    const char *name;
    enum kind kind;
    bool pad; /* accepts :0N */
} known[] = {
    {"", K_TEXT, false},      {"path", K_TEXT, false},   {"index", K_INDEX, true},
    {"number", K_NUMBER, true}, {"name", K_NAME, false}, {"stem", K_STEM, false},
    {"ext", K_EXT, false},    {"dir", K_DIR, false},     {".", K_NOEXT, false},
    {"/", K_NAME, false},     {"//", K_DIR, false},      {"/.", K_STEM, false},
    {"#", K_SEQ, true},       {"%", K_SLOT, false},
};
enum { N_KNOWN = sizeof known / sizeof known[0] };

/* A printf format: {%%} is {%}. */
#define KNOWN_LIST                                                                       \
    "known: {} {.} {/} {//} {/.} {#} {%%} {index} {index:0N} {number} {number:0N} "      \
    "{name} {stem} {ext} {dir}; {{ and }} are literal braces"

enum { PAD_MAX = 20, NUM_BUF = 24 };

/* Compile modes. */
enum { MODE_FILE, MODE_WORD };

typedef struct piece {
    uint8_t kind;
    uint8_t pad; /* minimum digits, 0 = none */
    uint32_t off; /* K_LIT: bytes [off, off + len) of lit */
    uint32_t len;
} piece_t;

struct weft_tmpl {
    size_t n;
    bool uses_text; /* a piece reads the item text (not for ranges) */
    bool uses_slot; /* {%}: only weft__tmpl_expand_slot with a slot expands it */
    char *lit;
    piece_t pieces[]; /* n */
};

static bool kind_uses_text(enum kind k)
{
    return k == K_TEXT || k == K_NAME || k == K_STEM || k == K_EXT || k == K_DIR ||
           k == K_NOEXT;
}

static void add_piece(weft__tmpl_t *t, piece_t p)
{
    t->pieces[t->n++] = p;
    t->uses_text |= kind_uses_text((enum kind)p.kind);
    t->uses_slot |= p.kind == K_SLOT;
}

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

/* The message of an unknown placeholder: a "did you mean" when a known
 * name is close, a word on GNU parallel's forms weft does not have. */
static int unknown(const char *text, size_t open, size_t nlen, int qlen, const char *more,
                   char *err, size_t errlen)
{
    const char *body = text + open + 1;
    const char *names[N_KNOWN];
    for (size_t k = 0; k < N_KNOWN; k++)
        names[k] = known[k].name;
    char word[WEFT__SUGGEST_MAX + 1];
    snprintf(word, sizeof word, "%.*s",
             (int)(nlen < WEFT__SUGGEST_MAX ? nlen : WEFT__SUGGEST_MAX), body);
    bool gnu = nlen && ((body[0] >= '0' && body[0] <= '9') || body[0] == '=');
    const char *near = nlen && !gnu ? weft__suggest(word, names, N_KNOWN) : NULL;
    char hint[96] = "";
    if (gnu)
        snprintf(hint, sizeof hint,
                 "; GNU parallel's numbered and {=perl=} forms are not supported");
    else if (near)
        snprintf(hint, sizeof hint, "; did you mean {%s}?", near);
    return weft__failf(-EINVAL, err, errlen,
                       "unknown placeholder '%.*s%s' at position %zu%s (" KNOWN_LIST ")",
                       qlen, text + open, more, open + 1, hint);
}

/* Parses the placeholder text[open+1 .. close) into *p.  0 or -EINVAL. */
static int parse_placeholder(const char *text, size_t open, size_t close, int mode,
                             piece_t *p, char *err, size_t errlen)
{
    const char *body = text + open + 1;
    size_t blen = close - open - 1;
    const char *colon = memchr(body, ':', blen);
    size_t nlen = colon ? (size_t)(colon - body) : blen;
    /* Quote at most 64 bytes of a long placeholder. */
    int qlen = blen + 2 > 64 ? 64 : (int)(blen + 2);
    const char *more = blen + 2 > 64 ? "..." : "";

    for (size_t k = 0; k < N_KNOWN; k++) {
        if (strlen(known[k].name) != nlen || memcmp(known[k].name, body, nlen) != 0)
            continue;
        p->kind = (uint8_t)known[k].kind;
        p->pad = 0;
        if (p->kind == K_SLOT && mode == MODE_FILE)
            return weft__failf(
                -EINVAL, err, errlen,
                "placeholder '{%%}' at position %zu: the job slot depends on which "
                "worker runs the item, and a file name must not (use {#} or {index})",
                open + 1);
        if (!colon)
            return 0;
        const char *spec = colon + 1;
        size_t slen = blen - nlen - 1;
        if (!known[k].pad)
            return weft__failf(
                -EINVAL, err, errlen,
                "placeholder '%.*s%s' at position %zu: only {index}, {number} and {#} "
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
    return unknown(text, open, nlen, qlen, more, err, errlen);
}

/* A template of room for `pieces` pieces and `lits` literal bytes. */
static weft__tmpl_t *tmpl_alloc(size_t pieces, size_t lits)
{
    weft__tmpl_t *t = malloc(sizeof *t + pieces * sizeof(piece_t));
    char *lit = malloc(lits ? lits : 1);
    if (!t || !lit) {
        free(t);
        free(lit);
        return NULL;
    }
    t->n = 0;
    t->uses_text = t->uses_slot = false;
    t->lit = lit;
    return t;
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
    weft__tmpl_t *t = tmpl_alloc(len + 1, len + 1);
    if (!t)
        return weft__failf(-ENOMEM, err, errlen, "template: out of memory");
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
        int rc = parse_placeholder(text, i, j, MODE_FILE, &p, err, errlen);
        if (rc) {
            weft__tmpl_free(&t);
            return rc;
        }
        add_piece(t, p);
        i = j + 1;
    }
    *out = t;
    return 0;
}

/* What may stand between the braces of a placeholder-shaped group. */
static bool is_shape_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '/' || c == '#' || c == '%' || c == ':';
}

int weft__tmpl_scan(const char *text, size_t pos, size_t *len, weft__tmpl_t **out,
                    char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!text || !len || !out || (text[pos] != '{' && text[pos] != '}'))
        return weft__failf(-EINVAL, err, errlen, "template scan: not at a brace");
    char c = text[pos];
    *len = text[pos + 1] == c ? 2 : 1; /* {{ and }}: one literal brace */
    if (c == '}' || *len == 2)
        return 0;
    size_t j = pos + 1;
    while (j - pos <= WEFT__TMPL_TEXT_MAX && is_shape_char(text[j]))
        j++;
    if (text[j] != '}')
        return 0; /* not a placeholder: `{print $1}`, `{ }`, a lone '{' */
    piece_t p = {0};
    int rc = parse_placeholder(text, pos, j, MODE_WORD, &p, err, errlen);
    if (rc)
        return rc;
    weft__tmpl_t *t = tmpl_alloc(1, 1);
    if (!t)
        return weft__failf(-ENOMEM, err, errlen, "template: out of memory");
    add_piece(t, p);
    *len = j + 1 - pos;
    *out = t;
    return 1;
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

/* index + 1, which for the last uint64_t is 2^64: one digit more. */
static span_t format_seq(char *buf, uint64_t index, unsigned pad)
{
    if (index != UINT64_MAX)
        return format_num(buf, index + 1, false, pad);
    static const char two64[] = "18446744073709551616"; /* 20 digits: PAD_MAX */
    memcpy(buf, two64, sizeof two64 - 1);
    return (span_t){buf, sizeof two64 - 1};
}

/* The parts of a path: basename(1) and dirname(1) of s, the stem (the base
 * without its last extension; ".bashrc", "." and ".." have none), that
 * extension, and the text around it: s is pre, ext, post ({.} is pre then
 * post).  ext is empty or inside s. */
typedef struct parts {
    span_t text, dir, base, stem, ext, pre, post;
} parts_t;

static void split_path(span_t s, parts_t *o)
{
    size_t end = s.n;
    while (end > 1 && s.p[end - 1] == '/')
        end--;
    o->text = o->pre = s;
    o->post = (span_t){"", 0};
    o->ext = (span_t){"", 0};
    if (end == 1 && s.p[0] == '/') {
        o->dir = o->base = o->stem = (span_t){"/", 1};
        return;
    }
    size_t slash = end;
    while (slash > 0 && s.p[slash - 1] != '/')
        slash--;
    o->base = (span_t){s.p + slash, end - slash};
    if (slash == 0) {
        o->dir = (span_t){".", 1};
    } else {
        size_t d = slash;
        while (d > 1 && s.p[d - 1] == '/')
            d--;
        o->dir = (span_t){s.p, d};
    }
    const span_t *b = &o->base;
    size_t dot = b->n;
    while (dot > 0 && b->p[dot - 1] != '.')
        dot--;
    bool dots_only =
        b->n <= 2 && (b->n == 0 || b->p[0] == '.') && (b->n < 2 || b->p[1] == '.');
    o->stem = *b;
    if (dot > 1 && !dots_only)
        o->stem.n = dot - 1;
    o->ext = (span_t){b->p + o->stem.n, b->n - o->stem.n};
    if (o->ext.n) {
        o->pre = (span_t){s.p, (size_t)(o->ext.p - s.p)};
        o->post = (span_t){s.p + end, s.n - end};
    }
}

/* The expansion: its full length (which may be over outsz - 1: then out
 * holds "" when outsz > 0), -EINVAL, or -E2BIG past INT_MAX. */
static int expand(const weft__tmpl_t *t, const weft_item_t *item, unsigned slot, char *out,
                  size_t outsz)
{
    if (!t || !item || !out)
        return -EINVAL;
    if (t->uses_slot && slot == 0)
        return -EINVAL;
    if (outsz > 0)
        out[0] = '\0';
    char num_text[NUM_BUF];
    parts_t parts = {0};
    if (t->uses_text) {
        span_t text;
        if (item->text) {
            text = (span_t){item->text, item->text_len};
            if (memchr(text.p, '\0', text.n))
                return -EINVAL;
        } else {
            text = format_i64(num_text, item->number, 0);
        }
        split_path(text, &parts);
    }

    size_t len = 0;
    bool fits = true;
    for (size_t k = 0; k < t->n; k++) {
        const piece_t *p = &t->pieces[k];
        char num[NUM_BUF];
        span_t v[2] = {{0}, {"", 0}};
        switch ((enum kind)p->kind) {
        case K_LIT: v[0] = (span_t){t->lit + p->off, p->len}; break;
        case K_TEXT: v[0] = parts.text; break;
        case K_INDEX: v[0] = format_num(num, item->index, false, p->pad); break;
        case K_NUMBER: v[0] = format_i64(num, item->number, p->pad); break;
        case K_NAME: v[0] = parts.base; break;
        case K_STEM: v[0] = parts.stem; break;
        case K_EXT: v[0] = parts.ext; break;
        case K_DIR: v[0] = parts.dir; break;
        case K_NOEXT:
            v[0] = parts.pre;
            v[1] = parts.post;
            break;
        case K_SEQ: v[0] = format_seq(num, item->index, p->pad); break;
        case K_SLOT: v[0] = format_num(num, slot, false, 0); break;
        default: return -EINVAL;
        }
        for (int h = 0; h < 2; h++) {
            if (v[h].n > (size_t)INT_MAX - len) {
                if (outsz > 0)
                    out[0] = '\0';
                return -E2BIG;
            }
            /* Copy while it fits with room for the NUL; count regardless. */
            if (fits && v[h].n < outsz - len)
                memcpy(out + len, v[h].p, v[h].n);
            else
                fits = false;
            len += v[h].n;
        }
    }
    if (fits && len < outsz)
        out[len] = '\0';
    else if (outsz > 0)
        out[0] = '\0';
    return (int)len;
}

int weft__tmpl_expand(const weft__tmpl_t *t, const weft_item_t *item, char *out, size_t outsz)
{
    if (t && t->uses_slot)
        return -EINVAL; /* only weft__tmpl_scan makes these */
    int n = expand(t, item, 0, out, outsz);
    if (n == -E2BIG || (n >= 0 && (size_t)n >= outsz))
        return -ENAMETOOLONG;
    return n;
}

int weft__tmpl_expand_slot(const weft__tmpl_t *t, const weft_item_t *item, unsigned slot,
                           char *out, size_t outsz)
{
    return expand(t, item, slot, out, outsz);
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
