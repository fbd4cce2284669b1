/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the journal reader (core/journal/journal.h, weft__jscan_*).
 *
 * Input: journal bytes.  They are scanned as they are, then once more
 * with every record's checksum recomputed (the records found by walking
 * the length fields from the file magic on), so that mutations get past
 * the XXH3 check and reach the record parsers.
 *
 * Checked on every scan: the error codes; valid_len <= len and dropped =
 * len - valid_len, with a reason exactly when something was dropped; the
 * header texts readable; suspects and poison sorted and unique; every
 * entry weft__jscan_get() returns (for the indices in suspects and poison
 * and for every 8-byte value found in the input) is the one asked for,
 * has a known status and points inside the valid bytes, its timing fields 0
 * unless it is TIMED, which only a format 3 journal has; the scan of the
 * valid prefix alone says the same things; a header has no difference
 * with itself.  The scanned data sits in a buffer of exactly len bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "fuzz_common.h"
#include "journal.h"

#define MAX_PROBES 4096

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static void st64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

/* Recomputes the checksum of each record walked from byte 8; true if any
 * changed. */
static bool fix_checksums(uint8_t *d, size_t len)
{
    bool changed = false;
    size_t off = 8;
    while (len >= off && len - off >= WEFT__JREC_HDR) {
        uint32_t plen = ld32(d + off + 4);
        if (plen > len - off - WEFT__JREC_HDR)
            break;
        uint64_t was = ld64(d + off + 8);
        st64(d + off + 8, 0);
        uint64_t sum = XXH3_64bits(d + off, WEFT__JREC_HDR + (size_t)plen);
        st64(d + off + 8, sum);
        changed |= sum != was;
        off += WEFT__JREC_HDR + plen;
    }
    return changed;
}

static bool inside(const void *p, size_t n, const uint8_t *data, size_t valid)
{
    const uint8_t *b = p;
    return b >= data && b <= data + valid && n <= (size_t)(data + valid - b);
}

static void check_list(const uint64_t *idx, size_t n, const char *what)
{
    FUZZ_CHECK((n == 0) == (idx == NULL), "%s: %zu items, pointer %p", what, n,
               (const void *)idx);
    for (size_t k = 1; k < n; k++)
        FUZZ_CHECK(idx[k - 1] < idx[k], "%s not sorted and unique at %zu", what, k);
}

static void check_get(const weft__jscan_t *s, uint64_t index, const uint8_t *data,
                      size_t valid, size_t *found)
{
    weft__jentry_t e;
    memset(&e, 0xA5, sizeof e);
    if (!weft__jscan_get(s, index, &e))
        return;
    (*found)++;
    FUZZ_CHECK(e.index == index, "get(%llu) gave entry %llu", (unsigned long long)index,
               (unsigned long long)e.index);
    FUZZ_CHECK(e.status >= WEFT__J_OK && e.status <= WEFT__J_QUARANTINED,
               "entry %llu: status %u", (unsigned long long)index, e.status);
    FUZZ_CHECK(e.bytes != NULL, "entry %llu: bytes is NULL", (unsigned long long)index);
    FUZZ_CHECK(e.len == 0 || inside(e.bytes, e.len, data, valid),
               "entry %llu: %u bytes outside the valid records",
               (unsigned long long)index, e.len);
    FUZZ_CHECK(e.msg_len == 0 || (e.msg && inside(e.msg, e.msg_len, data, valid)),
               "entry %llu: message of %u bytes outside the valid records",
               (unsigned long long)index, e.msg_len);
    FUZZ_CHECK(e.timed || (e.attempts == 0 && e.start_us == 0 && e.runtime_us == 0),
               "entry %llu: untimed with timing fields", (unsigned long long)index);
    FUZZ_CHECK(!e.timed || weft__jscan_version(s) >= 3,
               "entry %llu: TIMED in a format %u journal", (unsigned long long)index,
               weft__jscan_version(s));
}

typedef struct summary {
    size_t valid, n_suspects, n_poison;
    uint64_t sessions, items;
    bool finished;
} summary_t;

/* Scans data[0, len) (a buffer of exactly len bytes) and checks it. */
static int scan(const uint8_t *data, size_t len, summary_t *sum)
{
    weft__jscan_t *s = NULL;
    char err[512] = "";
    int rc = weft__jscan_parse(&s, data, len, err, sizeof err);
    if (rc) {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOTSUP || rc == -E2BIG || rc == -ENOMEM,
                   "parse returned %d", rc);
        FUZZ_CHECK(s == NULL, "a failed parse left *scan set");
        FUZZ_CHECK(err[0], "parse failed (%d) without a message", rc);
        return rc;
    }
    FUZZ_CHECK(s, "parse succeeded without a scan");

    const weft__jheader_t *h = weft__jscan_header(s);
    FUZZ_CHECK(h && h->config && h->plugin && h->items, "header texts missing");
    size_t total = strlen(h->config) + strlen(h->plugin) + strlen(h->items);
    FUZZ_CHECK(total <= len, "header texts of %zu bytes in a %zu-byte journal", total,
               len);

    size_t valid = weft__jscan_valid_len(s), dropped = weft__jscan_dropped(s);
    FUZZ_CHECK(valid >= 8 && valid <= len, "valid_len %zu of %zu", valid, len);
    FUZZ_CHECK(dropped == len - valid, "dropped %zu, valid %zu of %zu", dropped, valid,
               len);
    const char *tail = weft__jscan_tail(s);
    FUZZ_CHECK(tail && (dropped == 0) == (tail[0] == '\0'),
               "dropped %zu bytes, reason '%s'", dropped, tail ? tail : "(null)");

    const uint64_t *suspects = NULL, *poison = NULL;
    size_t ns = weft__jscan_suspects(s, &suspects);
    size_t np = weft__jscan_poison(s, &poison);
    check_list(suspects, ns, "suspects");
    check_list(poison, np, "poison");
    FUZZ_CHECK(!weft__jscan_finished(s) || ns == 0,
               "a finished journal with %zu suspects", ns);

    size_t found = 0, probes = 0;
    uint64_t items = weft__jscan_items(s);
    for (size_t k = 0; k < ns && probes < MAX_PROBES; k++, probes++)
        check_get(s, suspects[k], data, valid, &found);
    for (size_t k = 0; k < np && probes < MAX_PROBES; k++, probes++)
        check_get(s, poison[k], data, valid, &found);
    for (uint64_t i = 0; i < 16; i++, probes++)
        check_get(s, i, data, valid, &found);
    check_get(s, UINT64_MAX, data, valid, &found);
    size_t from_data = 0;
    for (size_t off = 0; off + 8 <= valid && probes < MAX_PROBES; off++, probes++)
        check_get(s, ld64(data + off), data, valid, &from_data);
    FUZZ_CHECK(items > 0 || found + from_data == 0, "entries found, yet items() is 0");

    unsigned flags = 0xFFFF;
    uint64_t last = weft__jscan_last_session(s, &flags);
    FUZZ_CHECK(flags <= 255, "session flags %u", flags);
    FUZZ_CHECK(weft__jscan_sessions(s) > 0 || (last == 0 && flags == 0),
               "no SESSION record, yet last session %llu flags %u",
               (unsigned long long)last, flags);

    /* A header is the same as itself; the diff output always ends. */
    char out[96];
    memset(out, 'x', sizeof out);
    FUZZ_CHECK(weft__jheader_diff(h, h, out, sizeof out) == 0,
               "a header differs from itself");
    FUZZ_CHECK(memchr(out, '\0', sizeof out), "diff output not NUL-terminated");
    const weft__jheader_t other = {"run.items=0..10\nargs.level=3", "fuzzplug 1.0",
                                   "range:0:10"};
    size_t nd = weft__jheader_diff(h, &other, out, sizeof out);
    FUZZ_CHECK(memchr(out, '\0', sizeof out), "diff output not NUL-terminated");
    FUZZ_CHECK(nd == weft__jheader_diff(h, &other, NULL, 0), "diff count depends on out");

    *sum = (summary_t){
        valid, ns, np, weft__jscan_sessions(s), items, weft__jscan_finished(s)};
    weft__jscan_free(&s);
    FUZZ_CHECK(s == NULL, "weft__jscan_free did not clear the pointer");
    return 0;
}

/* Scans data, then its valid prefix alone, which must read the same. */
static void scan_twice(const uint8_t *data, size_t len)
{
    summary_t a, b;
    if (scan(data, len, &a) != 0 || a.valid == len)
        return;
    uint8_t *prefix = malloc(a.valid);
    FUZZ_CHECK(prefix, "out of memory");
    memcpy(prefix, data, a.valid);
    int rc = scan(prefix, a.valid, &b);
    FUZZ_CHECK(rc == 0, "the valid prefix (%zu bytes) does not scan: %d", a.valid, rc);
    FUZZ_CHECK(b.valid == a.valid && b.sessions == a.sessions && b.items == a.items &&
                   b.finished == a.finished && b.n_suspects == a.n_suspects &&
                   b.n_poison == a.n_poison,
               "the valid prefix reads differently");
    free(prefix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scan_twice(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy, "out of memory");
    memcpy(copy, data, size);
    if (fix_checksums(copy, size))
        scan_twice(copy, size);
    free(copy);
    return 0;
}
