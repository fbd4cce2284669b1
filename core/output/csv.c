/* SPDX-License-Identifier: MIT */
/* CSV and TSV rows (output.h, "CSV and TSV"). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "output.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD, for invalid UTF-8 and NUL */

static bool is_tsv(weft__format_t f)
{
    return f == WEFT__FORMAT_TSV;
}

static char sep_of(weft__format_t f)
{
    return is_tsv(f) ? '\t' : ',';
}

/* Writes the field for len bytes of s at o, which has room for 3 * len + 2
 * bytes; returns the end.  CSV quotes a field holding '"', ',', CR or LF
 * (RFC 4180) and doubles its quotes; TSV escapes instead (PostgreSQL's text
 * format).  Invalid UTF-8 and NUL become U+FFFD, one per byte. */
static char *put_text(char *o, weft__format_t f, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    bool tsv = is_tsv(f), quote = false;
    if (!tsv)
        for (size_t k = 0; k < len && !quote; k++)
            quote = s[k] == '"' || s[k] == ',' || s[k] == '\n' || s[k] == '\r';
    if (quote)
        *o++ = '"';
    size_t k = 0;
    while (k < len) {
        unsigned char c = s[k];
        if (c >= 0x80) {
            size_t n = weft__utf8_len(s + k, len - k);
            if (n) {
                memcpy(o, s + k, n);
                o += n, k += n;
            } else {
                memcpy(o, REPLACEMENT, 3);
                o += 3, k++;
            }
            continue;
        }
        k++;
        if (c == 0) {
            memcpy(o, REPLACEMENT, 3);
            o += 3;
        } else if (tsv && (c == '\\' || c == '\t' || c == '\n' || c == '\r')) {
            *o++ = '\\';
            *o++ = c == '\\' ? '\\' : c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else {
            if (c == '"' && quote)
                *o++ = '"';
            *o++ = (char)c;
        }
    }
    if (quote)
        *o++ = '"';
    return o;
}

int weft__csv_text(weft__buf_t *b, weft__format_t f, const char *s, size_t len)
{
    if (len > (SIZE_MAX - 2) / 3 || weft__buf_reserve(b, 3 * len + 2) != 0)
        return -ENOMEM;
    b->len = (size_t)(put_text(b->data + b->len, f, s, len) - b->data);
    return 0;
}

int weft__csv_header(weft__buf_t *b, weft__format_t f, char *const *columns, size_t n)
{
    char sep = sep_of(f);
    int e = weft__buf_append(b, "index", 5);
    const char *fixed[] = {"input", "ok", "error"};
    for (size_t k = 0; k < 3 && !e; k++) {
        e = weft__buf_append(b, &sep, 1);
        if (!e)
            e = weft__buf_append(b, fixed[k], strlen(fixed[k]));
    }
    for (size_t k = 0; k < (n ? n : 1) && !e; k++) {
        e = weft__buf_append(b, &sep, 1);
        if (!e)
            e = n ? weft__csv_text(b, f, columns[k], strlen(columns[k]))
                  : weft__buf_append(b, "value", 5);
    }
    return e ? e : weft__buf_append(b, "\n", 1);
}

/* ---- JSON values as cells -------------------------------------------------- */

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* The text of the string literal s[0, n) (quotes included; valid, as the
 * minifier left it) at out, at most n bytes; returns its length.  A lone
 * surrogate becomes U+FFFD. */
static size_t json_unescape(char *out, const char *s, size_t n)
{
    char *o = out;
    size_t k = 1, end = n - 1;
    while (k < end) {
        char c = s[k];
        if (c != '\\') {
            *o++ = c;
            k++;
            continue;
        }
        char e = s[k + 1];
        k += 2;
        switch (e) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned cp = hex4(s + k);
            k += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && k + 6 <= end && s[k] == '\\' &&
                s[k + 1] == 'u') {
                unsigned lo = hex4(s + k + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    k += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD;
            o = put_utf8(o, cp);
            break;
        }
        default: *o++ = e; /* '"', '\\', '/' */
        }
    }
    return (size_t)(o - out);
}

/* The end of the string literal starting at s[k]. */
static size_t skip_string(const char *s, size_t k)
{
    for (k++;; k++) {
        if (s[k] == '\\')
            k++;
        else if (s[k] == '"')
            return k + 1;
    }
}

/* The end of the (minified, valid) value starting at s[k]. */
static size_t skip_value(const char *s, size_t k, size_t n)
{
    size_t depth = 0;
    while (k < n) {
        char c = s[k];
        if (c == '"') {
            k = skip_string(s, k);
            if (depth == 0)
                return k;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return k;
            if (--depth == 0)
                return k + 1;
        } else if (c == ',' && depth == 0) {
            return k;
        }
        k++;
    }
    return k;
}

/* The cell for the JSON value v[0, n) at o: a string's text, null empty,
 * anything else its JSON text.  tmp has room for n bytes. */
static char *put_json_cell(char *o, weft__format_t f, const char *v, size_t n, char *tmp)
{
    if (n == 0 || (v[0] == 'n' && n == 4))
        return o;
    if (v[0] == '"')
        return put_text(o, f, tmp, json_unescape(tmp, v, n));
    return put_text(o, f, v, n);
}

static const char *kind_name(const weft_result_t *r, const char *json)
{
    switch (r->kind) {
    case WEFT_VALUE_INT: return "an integer";
    case WEFT_VALUE_FLOAT: return "a number";
    case WEFT_VALUE_BOOL: return "a boolean";
    case WEFT_VALUE_STRING: return "a string";
    default: break;
    }
    switch (json ? json[0] : 0) {
    case '"': return "a string";
    case '[': return "a list";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

/*
 * columns: the object v[0, L) (minified) as n cells, in the order of
 * `columns`, each after a separator, at o.  tmp has room for L bytes.
 * -EINVAL with `why` for a key that is not a column or comes twice.
 */
static int put_columns(char **po, weft__format_t f, char *const *columns, size_t n,
                       const char *v, size_t L, char *tmp, char *why, size_t whylen)
{
    size_t at[WEFT__MAX_COLUMNS], len[WEFT__MAX_COLUMNS];
    for (size_t c = 0; c < n; c++)
        at[c] = SIZE_MAX, len[c] = 0;
    size_t k = 1;
    while (k < L && v[k] == '"') {
        size_t key_end = skip_string(v, k);
        size_t klen = json_unescape(tmp, v + k, key_end - k);
        size_t vs = key_end + 1; /* after ':' */
        size_t ve = skip_value(v, vs, L);
        size_t c = 0;
        while (c < n && !(strlen(columns[c]) == klen && memcmp(columns[c], tmp, klen) == 0))
            c++;
        if (c == n || at[c] != SIZE_MAX) {
            /* The key as text, cut short: a message, not the data. */
            char key[96];
            weft__buf_t kb = {0};
            if (weft__json_string(&kb, tmp, klen < 64 ? klen : 64) == 0)
                snprintf(key, sizeof key, "%.*s%s", (int)kb.len, kb.data,
                         klen > 64 ? "..." : "");
            else
                snprintf(key, sizeof key, "(a key)");
            weft__buf_free(&kb);
            if (c == n)
                snprintf(why, whylen, "the value has the key %s, which columns = does not "
                                      "list", key);
            else
                snprintf(why, whylen, "the value has the key %s twice", key);
            return -EINVAL;
        }
        at[c] = vs, len[c] = ve - vs;
        k = ve + (v[ve] == ',');
    }
    char *o = *po;
    char sep = sep_of(f);
    for (size_t c = 0; c < n; c++) {
        *o++ = sep;
        if (at[c] != SIZE_MAX)
            o = put_json_cell(o, f, v + at[c], len[c], tmp);
    }
    *po = o;
    return 0;
}

/* ---- rows ------------------------------------------------------------------ */

static size_t value_len(const weft_result_t *res)
{
    return res && (res->kind == WEFT_VALUE_STRING || res->kind == WEFT_VALUE_JSON)
               ? res->value.s.len
               : 0;
}

size_t weft__csv_row_bound(const weft_item_t *item, const weft_result_t *res,
                           const char *failure, size_t n_columns)
{
    size_t text = item->text ? item->text_len : 0;
    size_t fail = failure ? strlen(failure) : 0;
    size_t vlen = failure ? 0 : value_len(res);
    if (text > SIZE_MAX / 16 || fail > SIZE_MAX / 16 || vlen > SIZE_MAX / 16)
        return SIZE_MAX;
    /* index, ok, separators and the number of a range: 128; text fields
     * at most 3 bytes a byte, plus quotes; a JSON value's scratch copy (L),
     * its cells (2 L + 3 a column) and the room its strings are decoded in
     * (L). */
    return 128 + 3 * text + 3 * fail + 4 * vlen + 4 * (n_columns + 1);
}

int weft__csv_row(weft__buf_t *b, weft__format_t f, char *const *columns, size_t n_columns,
                  const weft_item_t *item, const weft_result_t *res, const char *failure,
                  char *why, size_t whylen)
{
    size_t bound = weft__csv_row_bound(item, res, failure, n_columns);
    if (bound == SIZE_MAX || weft__buf_reserve(b, bound) != 0)
        return -ENOMEM;
    /* From here on nothing grows the buffer past `bound`: b->data stays
     * where it is (a value may live in the buffer itself: flatten). */
    size_t mark = b->len;
    char sep = sep_of(f);
    char *o = b->data + b->len;
    o += weft__put_int(o, (int64_t)item->index); /* < 2^63: indexes are counts */
    *o++ = sep;
    if (item->text)
        o = put_text(o, f, item->text, item->text_len);
    else
        o += weft__put_int(o, item->number);
    *o++ = sep;
    memcpy(o, failure ? "false" : "true", failure ? 5 : 4);
    o += failure ? 5 : 4;
    *o++ = sep;
    if (failure)
        o = put_text(o, f, failure, strlen(failure));
    size_t cells = n_columns ? n_columns : 1;
    if (failure || res->kind == WEFT_VALUE_NONE ||
        (res->kind == WEFT_VALUE_FLOAT && !isfinite(res->value.f))) {
        memset(o, sep, cells); /* empty cells */
        o += cells;
    } else if (res->kind != WEFT_VALUE_JSON) {
        if (n_columns) {
            snprintf(why, whylen, "columns = is set, so the value must be a JSON object "
                                  "(it is %s)", kind_name(res, NULL));
            b->len = mark;
            return -EINVAL;
        }
        *o++ = sep;
        if (res->kind == WEFT_VALUE_STRING) {
            if (!res->value.s.ptr && res->value.s.len)
                goto bad_result;
            o = put_text(o, f, res->value.s.ptr ? res->value.s.ptr : "", res->value.s.len);
        } else { /* integer, finite float, bool: as JSON writes them, no quoting */
            b->len = (size_t)(o - b->data);
            int e = weft__json_value(b, res, why, whylen);
            if (e) {
                b->len = mark;
                return e;
            }
            o = b->data + b->len;
        }
    } else {
        if (!res->value.s.ptr)
            goto bad_result;
        /* The value minified into scratch space at s, its cells after it,
         * then moved down over it. */
        size_t s = (size_t)(o - b->data);
        b->len = s;
        int e = weft__json_minify(b, res->value.s.ptr, res->value.s.len, why, whylen);
        if (e) {
            b->len = mark;
            return e;
        }
        size_t L = b->len - s;
        const char *v = b->data + s;
        char *cells_at = b->data + s + L;
        char *tmp = cells_at + 2 * L + 3 * (n_columns + 1) + 4;
        o = cells_at;
        if (n_columns && v[0] != '{') {
            snprintf(why, whylen, "columns = is set, so the value must be a JSON object "
                                  "(it is %s)", kind_name(res, v));
            b->len = mark;
            return -EINVAL;
        }
        if (n_columns) {
            e = put_columns(&o, f, columns, n_columns, v, L, tmp, why, whylen);
            if (e) {
                b->len = mark;
                return e;
            }
        } else {
            *o++ = sep;
            o = put_json_cell(o, f, v, L, tmp);
        }
        size_t n = (size_t)(o - cells_at);
        memmove(b->data + s, cells_at, n);
        o = b->data + s + n;
    }
    b->len = (size_t)(o - b->data);
    return 0;

bad_result:
    snprintf(why, whylen, "the plugin returned a bad result (kind %d, or a NULL string)",
             (int)res->kind);
    b->len = mark;
    return -EINVAL;
}
