/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: output path templates and the confinement check
 * (core/host/template.h).
 *
 * Input: the template text up to the first '\n' (cut at a NUL), then the
 * item: u8 flags, u64 index, u64 number (little-endian; missing bytes are
 * 0), and the rest is the item's text.  flags bit 0: a range item (no
 * text); bit 1: number = index, as every non-range source has it.
 *
 * The invariant the brief asks for: when an expansion succeeds and
 * weft__path_confine_check() passes, the path is not absolute, has no ".."
 * component, no component longer than NAME_MAX and fits PATH_MAX; else
 * abort().  Also checked: compile's errors, that expansion is repeatable,
 * exact about its size (an exactly-sized buffer works, one byte less gives
 * -ENAMETOOLONG and "", checked under ASan with heap buffers of exactly
 * that size), that a template without placeholders expands to itself, a
 * reference expansion of {} {index} {number} {#} {index:0N} {number:0N}
 * {#:0N} {{ }}, and that the argv-word reading of the same text
 * (weft__tmpl_scan at each brace, as exec reads its command) gives the
 * same expansion whenever the file-name reading compiles, and never reads
 * past the text otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "template.h"

#define OUT_MAX (64 * 1024)

static uint64_t le64(const uint8_t *p, size_t avail)
{
    uint64_t v = 0;
    for (size_t k = 0; k < 8 && k < avail; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* What a confined path must never be; returns why, or NULL. */
static const char *unsafe(const char *p)
{
    size_t n = strlen(p);
    if (n == 0)
        return "empty";
    if (p[0] == '/')
        return "absolute";
    if (n > PATH_MAX - 1)
        return "longer than PATH_MAX - 1";
    if (p[n - 1] == '/')
        return "ends with '/'";
    for (const char *c = p; *c;) {
        size_t len = strcspn(c, "/");
        if (len == 2 && c[0] == '.' && c[1] == '.')
            return "has a '..' component";
        if (len > NAME_MAX)
            return "has a component longer than NAME_MAX";
        c += len + (c[len] == '/');
    }
    return NULL;
}

/* Plainly fine: [A-Za-z0-9_-] starts each component, [A-Za-z0-9._-]
 * follows, single slashes, no trailing one, within the limits. */
static bool plainly_fine(const char *p)
{
    static const char first[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    size_t n = strlen(p);
    if (n == 0 || n > PATH_MAX - 1 || p[n - 1] == '/')
        return false;
    for (const char *c = p; *c;) {
        size_t len = strcspn(c, "/");
        if (len == 0 || len > NAME_MAX || !strchr(first, c[0]) ||
            strspn(c + 1,
                   ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") <
                len - 1)
            return false;
        c += len + (c[len] == '/');
    }
    return true;
}

/* Both sides of the check: what it accepts is safe, and what is plainly
 * fine it accepts. */
static void check_confine(const char *path, const char *what)
{
    char err[512] = "";
    int rc = weft__path_confine_check(path, err, sizeof err);
    int rc_n = weft__path_confine_check_n(path, strlen(path), NULL, 0);
    FUZZ_CHECK(rc == rc_n, "%s '%s': check %d, check_n %d", what, path, rc, rc_n);
    if (rc == 0) {
        const char *why = unsafe(path);
        FUZZ_CHECK(!why, "%s '%s' passed the confinement check but %s", what, path, why);
    } else {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENAMETOOLONG, "%s: check returned %d", what,
                   rc);
        FUZZ_CHECK(err[0], "%s '%s' refused without a message", what, path);
        FUZZ_CHECK(!plainly_fine(path), "%s '%s' refused: %s", what, path, err);
    }
}

/* ---- a reference expander for the simple placeholders ------------------ */

typedef struct ref {
    char *out;
    size_t len, cap;
} ref_t;

static void ref_put(ref_t *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        r->cap = 2 * (r->len + n + 1);
        r->out = realloc(r->out, r->cap);
        FUZZ_CHECK(r->out, "out of memory");
    }
    memcpy(r->out + r->len, s, n);
    r->len += n;
    r->out[r->len] = '\0';
}

/* An integer, zero padded to `width` digits after any '-'. */
static void ref_int(ref_t *r, bool is_signed, uint64_t v, unsigned width)
{
    char digits[32];
    bool neg = is_signed && (int64_t)v < 0;
    uint64_t mag = neg ? 0 - v : v;
    int n = snprintf(digits, sizeof digits, "%" PRIu64, mag);
    if (neg)
        ref_put(r, "-", 1);
    for (int k = n; k < (int)width; k++)
        ref_put(r, "0", 1);
    ref_put(r, digits, (size_t)n);
}

/* 1: expanded into r; 0: the template has something the reference does
 * not model (or a syntax error): no comparison. */
static int ref_expand(const char *t, const weft_item_t *it, ref_t *r)
{
    ref_put(r, "", 0);
    while (*t) {
        if (t[0] == '{' && t[1] == '{') {
            ref_put(r, "{", 1), t += 2;
            continue;
        }
        if (t[0] == '}') {
            if (t[1] != '}')
                return 0;
            ref_put(r, "}", 1), t += 2;
            continue;
        }
        if (t[0] != '{') {
            ref_put(r, t, 1), t++;
            continue;
        }
        const char *close = strchr(t, '}');
        if (!close)
            return 0;
        size_t n = (size_t)(close - t - 1);
        const char *name = t + 1;
        unsigned width = 0;
        const char *colon = memchr(name, ':', n);
        size_t name_len = colon ? (size_t)(colon - name) : n;
        if (colon) {
            size_t w = n - name_len - 1; /* "0N" */
            if (w < 2 || w > 3 || colon[1] != '0' || colon[2] < '1' || colon[2] > '9' ||
                (w == 3 && (colon[3] < '0' || colon[3] > '9')))
                return 0;
            width = (unsigned)(colon[2] - '0');
            if (w == 3)
                width = width * 10 + (unsigned)(colon[3] - '0');
            if (width > 20)
                return 0;
        }
        if (name_len == 0 && !colon) {
            if (!it->text)
                ref_int(r, true, (uint64_t)it->number, 0);
            else if (memchr(it->text, '\0', it->text_len))
                return 0;
            else
                ref_put(r, it->text, it->text_len);
        } else if (name_len == 5 && memcmp(name, "index", 5) == 0) {
            ref_int(r, false, it->index, width);
        } else if (name_len == 6 && memcmp(name, "number", 6) == 0) {
            ref_int(r, true, (uint64_t)it->number, width);
        } else if (name_len == 1 && name[0] == '#') {
            if (it->index == UINT64_MAX)
                ref_put(r, "18446744073709551616", 20); /* 20 digits: no pad */
            else
                ref_int(r, false, it->index + 1, width);
        } else {
            return 0; /* {name} {stem} {ext} {dir}, or unknown */
        }
        t = close + 1;
    }
    return 1;
}

/* ---- the argv-word reading ---------------------------------------------- */

/* Reads text as exec does its words (every byte not a brace literal, each
 * brace through weft__tmpl_scan) and expands it for item with slot 1 into
 * r.  1: expanded; 0: a scan refused a placeholder (or the item's text has
 * a NUL where one is used); checks scan's contract on the way. */
static int scan_expand(const char *text, const weft_item_t *item, ref_t *r)
{
    size_t n = strlen(text);
    int ok = 1;
    ref_put(r, "", 0);
    for (size_t i = 0; i < n;) {
        if (text[i] != '{' && text[i] != '}') {
            ref_put(r, text + i, 1), i++;
            continue;
        }
        static char sentinel;
        weft__tmpl_t *t = (weft__tmpl_t *)&sentinel;
        size_t len = 0;
        char err[512] = "";
        int rc = weft__tmpl_scan(text, i, &len, &t, err, sizeof err);
        if (rc < 0) {
            FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "scan at %zu: %d", i, rc);
            FUZZ_CHECK(t == NULL && err[0], "a failed scan at %zu left *t or no message", i);
            FUZZ_CHECK(text[i] == '{', "scan refused a '}' at %zu", i);
            ok = 0;
            i++; /* go on: the rest must not crash it either */
            continue;
        }
        FUZZ_CHECK(len >= 1 && i + len <= n, "scan at %zu of '%s': len %zu", i, text, len);
        if (rc == 0) {
            FUZZ_CHECK(t == NULL, "a literal brace with a template");
            FUZZ_CHECK(len == 1 || text[i + 1] == text[i], "literal of %zu bytes at %zu", len,
                       i);
            ref_put(r, text + i, 1);
        } else {
            FUZZ_CHECK(rc == 1 && t && text[i] == '{' && text[i + len - 1] == '}',
                       "scan at %zu: %d, len %zu", i, rc, len);
            char small[4];
            int need = weft__tmpl_expand_slot(t, item, 1, small, sizeof small);
            if (need >= 0) {
                char *v = malloc((size_t)need + 1);
                FUZZ_CHECK(v, "out of memory");
                int got = weft__tmpl_expand_slot(t, item, 1, v, (size_t)need + 1);
                FUZZ_CHECK(got == need && strlen(v) == (size_t)need,
                           "expand_slot: %d, then %d", need, got);
                FUZZ_CHECK((size_t)need < sizeof small ? strcmp(small, v) == 0
                                                       : small[0] == '\0',
                           "expand_slot into 4 bytes for %d", need);
                ref_put(r, v, (size_t)need);
                free(v);
            } else {
                FUZZ_CHECK(need == -EINVAL && item->text &&
                               memchr(item->text, '\0', item->text_len),
                           "expand_slot: %d", need);
                ok = 0;
            }
            weft__tmpl_free(&t);
        }
        i += len;
    }
    return ok;
}

/* ---- the target --------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t tlen = nl ? (size_t)(nl - data) : size;
    char *text = fuzz_strndup(data, tlen);
    const uint8_t *rest = nl ? nl + 1 : data + size;
    size_t rest_len = (size_t)(data + size - rest);

    uint8_t flags = rest_len ? rest[0] : 0;
    weft_item_t item = {.index = le64(rest + 1, rest_len > 1 ? rest_len - 1 : 0),
                        .number =
                            (int64_t)le64(rest + 9, rest_len > 9 ? rest_len - 9 : 0)};
    if (flags & 2)
        item.number = (int64_t)item.index;
    char *item_text = NULL;
    if (!(flags & 1)) {
        size_t off = rest_len < 17 ? rest_len : 17;
        item_text = fuzz_strndup(rest + off, rest_len - off); /* exactly sized + NUL */
        item.text = item_text;
        item.text_len = rest_len - off;
    }

    /* The check on raw text: the template itself and the item text. */
    check_confine(text, "template text");
    if (item_text)
        check_confine(item_text, "item text");
    if (item.text_len) {
        int rc = weft__path_confine_check_n(item.text, item.text_len, NULL, 0);
        FUZZ_CHECK(!memchr(item.text, '\0', item.text_len) || rc == -EINVAL,
                   "check_n accepted text with a NUL byte (%d)", rc);
    }

    static char sentinel;
    weft__tmpl_t *t = (weft__tmpl_t *)&sentinel; /* must become NULL on failure */
    char err[512] = "";
    int rc = weft__tmpl_compile(&t, text, err, sizeof err);
    weft__tmpl_t *t2 = NULL;
    int rc2 = weft__tmpl_compile(&t2, text, NULL, 0);
    FUZZ_CHECK(rc == rc2, "compile '%s': %d with a message buffer, %d without", text, rc,
               rc2);
    weft__tmpl_free(&t2);
    if (rc) {
        ref_t words = {0};
        scan_expand(text, &item, &words); /* its own checks; no reference */
        free(words.out);
        FUZZ_CHECK(rc == -EINVAL || rc == -ENAMETOOLONG || rc == -ENOMEM,
                   "compile returned %d", rc);
        FUZZ_CHECK(t == NULL, "a failed compile left *t set");
        FUZZ_CHECK(err[0], "compile failed (%d) without a message", rc);
        FUZZ_CHECK(rc != -ENAMETOOLONG || strlen(text) > WEFT__TMPL_TEXT_MAX,
                   "-ENAMETOOLONG for %zu bytes", strlen(text));
        FUZZ_CHECK(strpbrk(text, "{}") || rc != -EINVAL, "'%s' has no braces, yet: %s",
                   text, err);
        goto out;
    }
    FUZZ_CHECK(t != NULL, "compile succeeded without a template");
    FUZZ_CHECK(strlen(text) <= WEFT__TMPL_TEXT_MAX, "a %zu-byte template compiled",
               strlen(text));

    char *out = malloc(OUT_MAX);
    FUZZ_CHECK(out, "out of memory");
    int n = weft__tmpl_expand(t, &item, out, OUT_MAX);
    if (n < 0) {
        FUZZ_CHECK(n == -ENAMETOOLONG || n == -EINVAL, "expand returned %d", n);
        FUZZ_CHECK(out[0] == '\0', "a failed expansion left '%.40s'", out);
        FUZZ_CHECK(n != -EINVAL || (item.text && memchr(item.text, '\0', item.text_len)),
                   "expand: -EINVAL for '%s' without a NUL in the item text", text);
    } else {
        FUZZ_CHECK(n < OUT_MAX && out[n] == '\0' && strlen(out) == (size_t)n,
                   "expand returned %d for '%.40s' (%zu bytes)", n, out, strlen(out));

        /* Exactly sized buffers, so ASan sees a write past outsz. */
        char *exact = malloc((size_t)n + 1);
        FUZZ_CHECK(exact, "out of memory");
        int again = weft__tmpl_expand(t, &item, exact, (size_t)n + 1);
        FUZZ_CHECK(again == n && memcmp(exact, out, (size_t)n + 1) == 0,
                   "expand is not repeatable: %d then %d", n, again);
        free(exact);
        char *short_buf = malloc(n ? (size_t)n : 1);
        FUZZ_CHECK(short_buf, "out of memory");
        int too = weft__tmpl_expand(t, &item, short_buf, (size_t)n);
        FUZZ_CHECK(too == -ENAMETOOLONG, "expand into %d bytes for %d: %d", n, n, too);
        FUZZ_CHECK(n == 0 || short_buf[0] == '\0', "a too-small buffer holds text");
        free(short_buf);

        if (!strpbrk(text, "{}"))
            FUZZ_CHECK(strcmp(out, text) == 0, "'%s' expanded to '%s'", text, out);
        ref_t ref = {0};
        if (ref_expand(text, &item, &ref))
            FUZZ_CHECK(strcmp(ref.out, out) == 0, "'%s' expanded to '%s', reference '%s'",
                       text, out, ref.out);
        free(ref.out);

        /* The file-name reading compiled: the argv-word reading agrees. */
        ref_t words = {0};
        FUZZ_CHECK(scan_expand(text, &item, &words) == 1,
                   "'%s' compiles as a file name, not as words", text);
        FUZZ_CHECK(strcmp(words.out, out) == 0, "'%s': file name '%s', words '%s'", text,
                   out, words.out);
        free(words.out);

        check_confine(out, "expanded path");
    }
    free(out);
    weft__tmpl_free(&t);
    FUZZ_CHECK(t == NULL, "weft__tmpl_free did not clear the pointer");
out:
    free(item_text);
    free(text);
    return 0;
}
