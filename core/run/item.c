/* SPDX-License-Identifier: MIT */
/* The per-item code that is not on every item's path (see item.h). */
#include "item.h"

#include <inttypes.h>
#include <stdlib.h>

atomic_int weft__run_stop;
atomic_int weft__run_halted;

/* Splits the minified JSON array at buf->data + list_off (len bytes) into
 * its top-level elements, appending each as a framed record (flatten =
 * true).  The list lives in the buffer it appends to, so it is addressed
 * by offset, and room is reserved before each element so that the buffer
 * cannot move while the element is copied.  Returns the record count. */
static uint32_t splice_list(weft__engine_t *r, weft__buf_t *buf, size_t list_off, size_t len,
                            const weft_item_t *item, int *e, char *why, size_t whylen)
{
    uint32_t n = 0;
    size_t start = 1, depth = 0;
    bool in_string = false;
    for (size_t k = 1; k < len && !*e; k++) {
        char c = buf->data[list_off + k];
        if (in_string) {
            if (c == '\\')
                k++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && depth)
            depth--;
        else if ((c == ',' || (c == ']' && k == len - 1)) && depth == 0) {
            if (k > start) {
                /* frame + {"index":..,"ok":true,"value": + } + frame < 128;
                 * a CSV row says how much it needs (the element is in buf,
                 * so it must not move). */
                weft_result_t elem = {.kind = WEFT_VALUE_JSON};
                elem.value.s.len = k - start;
                size_t room = r->csv ? weft__csv_row_bound(item, &elem, NULL,
                                                           r->cfg->n_columns)
                                     : k - start + 128;
                *e = room == SIZE_MAX ? -ENOMEM : weft__buf_reserve(buf, room + 2);
                if (*e)
                    break;
                elem.value.s.ptr = buf->data + list_off + start;
                *e = weft__item_encode_record(r, buf, item, &elem, NULL, why, whylen);
                n++;
            }
            start = k + 1;
        }
    }
    return n;
}

/* Appends one framed record: {"index":..,"ok":..,"value"/"error":..} in
 * record = full, else the value (null for a failure).  -EINVAL with `why`
 * when the value cannot be encoded. */
int weft__item_encode_record(weft__engine_t *r, weft__buf_t *buf, const weft_item_t *item,
                             const weft_result_t *res, const char *failure, char *why,
                             size_t whylen)
{
    char head[64];
    bool full = r->cfg->record == WEFT__RECORD_FULL;
    if (r->raw) /* a failure (or a not-run item) writes nothing */
        return failure ? 0 : weft__raw_value(buf, res, why, whylen);
    if (r->csv) { /* a row, then its LF (the frame's suffix) */
        size_t mark = buf->len;
        int e = weft__csv_row(buf, r->cfg->format, r->cfg->columns, r->cfg->n_columns, item,
                              res, failure, why, whylen);
        if (e == 0 && (e = weft__buf_append(buf, r->frame.suffix, r->frame.suffix_len)))
            buf->len = mark;
        return e;
    }
    int e = weft__buf_append(buf, r->frame.prefix, r->frame.prefix_len);
    if (e == 0 && full) {
        int n = snprintf(head, sizeof head, "{\"index\":%" PRIu64 ",\"ok\":%s",
                         item->index, failure ? "false,\"error\":" : "true,\"value\":");
        e = weft__buf_append(buf, head, (size_t)n);
    }
    if (e == 0)
        e = failure ? (full ? weft__json_string(buf, failure, strlen(failure))
                            : weft__buf_append(buf, "null", 4))
                    : weft__json_value(buf, res, why, whylen);
    if (e == 0 && full)
        e = weft__buf_append(buf, "}", 1);
    if (e == 0)
        e = weft__buf_append(buf, r->frame.suffix, r->frame.suffix_len);
    return e;
}

/* A successful result's records; -EINVAL with `why` when the value cannot
 * be encoded (then nothing is appended). */
int weft__item_encode_ok(weft__engine_t *r, weft__buf_t *buf, const weft_item_t *item,
                         const weft_result_t *res, uint32_t *records, char *why,
                         size_t whylen)
{
    size_t mark = buf->len;
    if (!r->cfg->flatten) {
        *records = 1;
        return weft__item_encode_record(r, buf, item, res, NULL, why, whylen);
    }
    /* flatten: the value goes to scratch space first; a list is spliced,
     * anything else is encoded again as one record (rare: flatten is for
     * lists). */
    int e = weft__json_value(buf, res, why, whylen);
    if (e)
        return e;
    size_t vlen = buf->len - mark;
    if (buf->data[mark] != '[') {
        buf->len = mark;
        *records = 1;
        return weft__item_encode_record(r, buf, item, res, NULL, why, whylen);
    }
    /* Elements are appended after the scratch copy, then moved down. */
    *records = splice_list(r, buf, mark, vlen, item, &e, why, whylen);
    if (e == 0) {
        memmove(buf->data + mark, buf->data + mark + vlen, buf->len - mark - vlen);
        buf->len -= vlen;
    }
    return e;
}

void weft__item_failed(weft__engine_t *r)
{
    uint64_t f = atomic_fetch_add(&r->failures, 1) + 1;
    const weft__halt_t *h = &r->cfg->halt;
    if (h->mode == WEFT__HALT_NEVER)
        return;
    bool trip;
    if (h->fail_count) {
        trip = f >= h->fail_count;
    } else {
        /* Items finished so far: the workers' counts (each its own line,
         * read here on the rare failure path only) plus this one. */
        uint64_t done = 1;
        for (unsigned t = 0; t < r->threads; t++)
            done += __atomic_load_n(&r->workers[t].done, __ATOMIC_RELAXED);
        trip = done * h->fail_percent >= 100.0 &&
               (double)f * 100.0 >= h->fail_percent * (double)done;
    }
    if (!trip)
        return;
    atomic_store(&weft__run_halted, 1);
    int want = h->mode == WEFT__HALT_NOW ? 2 : 1, cur = atomic_load(&weft__run_stop);
    while (cur < want && !atomic_compare_exchange_weak(&weft__run_stop, &cur, want))
        ;
}

bool weft__item_in_set(const uint64_t *set, size_t n, uint64_t index)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set[mid] < index)
            lo = mid + 1;
        else if (set[mid] > index)
            hi = mid;
        else
            return true;
    }
    return false;
}

bool weft__item_reuse(weft__engine_t *r, weft__buf_t *buf, weft__buf_t *msgs,
                      const weft_item_t *item, uint64_t index, slot_t *slot)
{
    static const char poison[] =
        "quarantined: it was running when weft crashed, twice in a row "
        "(run with --retry-failed to try it again)";
    if (r->n_poison && !r->retry_failed &&
        weft__item_in_set(r->poison, r->n_poison, index)) {
        weft_result_t none = {0};
        weft__item_encode(r, buf, msgs, item, ST_QUARANTINED, poison, &none, slot);
        return true;
    }
    weft__jentry_t e;
    if (!weft__jscan_get(r->scan, index, &e))
        return false;
    if (e.status != WEFT__J_OK && r->retry_failed)
        return false;
    if (e.item_hash != weft__item_hash(item))
        return false; /* --force, and the item changed: run it again */
    size_t mark = buf->len;
    slot->records = 0;
    if (r->npy) {
        if (e.len == weft__npy_row_bytes(r->npy))
            memcpy(weft__npy_row(r->npy, index), e.bytes, e.len);
        else if (e.status == WEFT__J_OK)
            return false;
    } else if (r->writes_records && e.len) {
        if (weft__buf_append(buf, e.bytes, e.len) != 0)
            return false; /* out of memory: run it instead */
        slot->records = e.records;
    }
    slot->off = mark;
    slot->len = (uint32_t)(buf->len - mark);
    slot->status = (uint8_t)e.status;
    slot->reused = 1;
    weft__item_message(msgs, slot, e.status == WEFT__J_OK ? NULL : e.msg, e.msg_len);
    return true;
}
