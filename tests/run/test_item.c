/* SPDX-License-Identifier: MIT */
/* core/run/item.h and item.c on their own: one item run under a plugin
 * (retries, the timeout deadline, a stop), its outcome encoded (record =
 * value or full, JSON Lines or a JSON array, flatten, nulls for failures
 * and not-run items, values that cannot be encoded), counted into a block,
 * and the halt policy.  The plugin is this file's: its behaviour is chosen
 * by the item's index. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "item.h"

/* ---- the plugin --------------------------------------------------------- */

enum { P_INT, P_FAIL, P_FLAKY, P_STRING, P_LIST, P_BAD_KIND, P_SLOW_FAIL, P_BAD_JSON, P_QUIET, P_EDGE };

static unsigned attempts[16]; /* process_one calls, by item index */
static unsigned flaky_failures; /* P_FLAKY fails this many times first */

static int item_plugin(void *state, void *ctx, const weft_item_t *item, weft_result_t *res)
{
    (void)state;
    (void)ctx;
    unsigned n = ++attempts[item->index % 16];
    switch (item->index % 16) {
    case P_INT:
        res->kind = WEFT_VALUE_INT;
        res->value.i = item->number * 2;
        return 0;
    case P_FAIL:
        snprintf(res->msg, res->msg_size, "bad item %llu", (unsigned long long)item->index);
        return -1;
    case P_FLAKY:
        if (n <= flaky_failures) {
            snprintf(res->msg, res->msg_size, "flaky, attempt %u", n);
            return -1;
        }
        res->kind = WEFT_VALUE_BOOL;
        res->value.b = true;
        return 0;
    case P_STRING:
        res->kind = WEFT_VALUE_STRING;
        res->value.s.ptr = "say \"hi\"\n";
        res->value.s.len = 9;
        return 0;
    case P_LIST:
        res->kind = WEFT_VALUE_JSON;
        res->value.s.ptr = "[1, [2,3], {\"a\": 4}]";
        res->value.s.len = strlen(res->value.s.ptr);
        return 0;
    case P_BAD_KIND:
        res->kind = (weft_value_kind_t)99;
        return 0;
    case P_SLOW_FAIL: {
        struct timespec ts = {0, 80 * 1000 * 1000};
        nanosleep(&ts, NULL);
        snprintf(res->msg, res->msg_size, "gave up");
        return -1;
    }
    case P_BAD_JSON:
        res->kind = WEFT_VALUE_JSON;
        res->value.s.ptr = "{\"a\": }";
        res->value.s.len = 7;
        return 0;
    case P_QUIET:
        return -7; /* a failure without a message */
    case P_EDGE: { /* integers at the edges of the encoder's fast path */
        static const int64_t edge[] = {INT64_MIN, INT64_MAX, 0, -7, 9, 10, 99, 100, -1000};
        res->kind = WEFT_VALUE_INT;
        res->value.i = edge[item->index / 16 % 9];
        return 0;
    }
    }
    return 0;
}

/* ---- a job with nothing but what the per-item code reads ------------------ */

static weft__config_t cfg;
static weft__plugin_t plugin;
static worker_t *wk;
static weft__engine_t job;

static void setup_job(weft__format_t format, weft__record_t record, bool flatten)
{
    memset(&cfg, 0, sizeof cfg);
    memset(&plugin, 0, sizeof plugin);
    memset(&job, 0, sizeof job);
    memset(attempts, 0, sizeof attempts);
    cfg.format = format;
    cfg.record = record;
    cfg.flatten = flatten;
    plugin.desc.process_one = item_plugin;
    if (wk) { /* a second job in the same test */
        weft__buf_free(&wk->msgs);
        free(wk);
    }
    wk = aligned_alloc(64, sizeof *wk);
    assert_non_null(wk);
    memset(wk, 0, sizeof *wk);
    wk->current = UINT64_MAX;
    job.cfg = &cfg;
    job.plugin = &plugin;
    job.workers = wk;
    job.threads = 1;
    job.frame = weft__frame_of(format);
    job.csv = format == WEFT__FORMAT_CSV || format == WEFT__FORMAT_TSV;
    job.writes_records = format == WEFT__FORMAT_JSON || format == WEFT__FORMAT_JSONL || job.csv;
    job.plain_values = job.writes_records && !job.csv && record == WEFT__RECORD_VALUE &&
                       !flatten;
    job.null_not_run = job.plain_values;
    atomic_store(&weft__run_stop, 0);
    atomic_store(&weft__run_halted, 0);
    atomic_store(&job.failures, 0);
}

static int teardown(void **state)
{
    (void)state;
    weft__buf_free(&wk->msgs);
    free(wk);
    wk = NULL;
    atomic_store(&weft__run_stop, 0);
    return 0;
}

static weft_item_t item_of(uint64_t index)
{
    return (weft_item_t){.index = index, .number = (int64_t)index + 100};
}

/* Runs item `index` into a fresh block; returns the block's bytes as a
 * string (static) and its fate. */
static const char *run_one(uint64_t index, enum weft__item_fate *fate, weft__block_t *b)
{
    static char out[512];
    memset(b, 0, sizeof *b);
    b->first = index;
    weft_item_t item = item_of(index);
    *fate = weft__item_run(&job, wk, b, &item);
    assert_true(b->bytes.len < sizeof out);
    memcpy(out, b->bytes.data ? b->bytes.data : "", b->bytes.len);
    out[b->bytes.len] = '\0';
    return out;
}

static void free_block(weft__block_t *b)
{
    weft__buf_free(&b->bytes);
    weft__buf_free(&b->notes);
}

/* ---- tests ------------------------------------------------------------------ */

static void item_value_records(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_JSONL, WEFT__RECORD_VALUE, false);
    weft__block_t b;
    enum weft__item_fate fate;
    assert_string_equal(run_one(P_INT, &fate, &b), "200\n");
    assert_int_equal(fate, WEFT__FATE_OK);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.records, 1);
    assert_int_equal(b.counts[ST_OK], 1);
    free_block(&b);
    assert_string_equal(run_one(P_STRING, &fate, &b), "\"say \\\"hi\\\"\\n\"\n");
    free_block(&b);
    static const char *const edge[] = {"-9223372036854775808\n", "9223372036854775807\n",
                                       "0\n", "-7\n", "9\n", "10\n", "99\n", "100\n",
                                       "-1000\n"};
    for (uint64_t k = 0; k < 9; k++) {
        assert_string_equal(run_one(P_EDGE + 16 * k, &fate, &b), edge[k]);
        free_block(&b);
    }
    /* A failure keeps its place as null, and its message as a note. */
    assert_string_equal(run_one(P_FAIL, &fate, &b), "null\n");
    assert_int_equal(fate, WEFT__FATE_FAILED);
    assert_int_equal(b.counts[ST_FAILED], 1);
    assert_int_equal(b.records, 1);
    assert_non_null(b.notes.data);
    assert_non_null(memmem(b.notes.data, b.notes.len, "bad item 1", 10));
    free_block(&b);
    /* Stopped: not run, null in record = value, the plugin not called. */
    atomic_store(&weft__run_stop, 1);
    assert_string_equal(run_one(P_INT + 16, &fate, &b), "null\n");
    assert_int_equal(fate, WEFT__FATE_NOT_RUN);
    assert_int_equal(b.counts[WEFT__ST_NOT_RUN], 1);
    assert_int_equal(attempts[P_INT], 1);
    free_block(&b);
}

static void item_full_records_in_an_array(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_JSON, WEFT__RECORD_FULL, false);
    weft__block_t b;
    enum weft__item_fate fate;
    assert_string_equal(run_one(P_INT, &fate, &b), ",\n{\"index\":0,\"ok\":true,\"value\":200}");
    free_block(&b);
    assert_string_equal(run_one(P_FAIL, &fate, &b),
                        ",\n{\"index\":1,\"ok\":false,\"error\":\"bad item 1\"}");
    free_block(&b);
    /* Not run, in record = full: no record at all (the summary counts it). */
    atomic_store(&weft__run_stop, 1);
    assert_string_equal(run_one(P_INT, &fate, &b), "");
    assert_int_equal(b.records, 0);
    assert_int_equal(b.counts[WEFT__ST_NOT_RUN], 1);
    free_block(&b);
}

static void item_flatten_and_no_output(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_JSONL, WEFT__RECORD_VALUE, true);
    weft__block_t b;
    enum weft__item_fate fate;
    assert_string_equal(run_one(P_LIST, &fate, &b), "1\n[2,3]\n{\"a\":4}\n");
    assert_int_equal(b.records, 3);
    free_block(&b);
    /* Not a list: one record, flatten or not. */
    assert_string_equal(run_one(P_INT, &fate, &b), "200\n");
    assert_int_equal(b.records, 1);
    free_block(&b);
    /* output = none: nothing encoded, the outcome still counted. */
    setup_job(WEFT__FORMAT_NONE, WEFT__RECORD_VALUE, false);
    assert_string_equal(run_one(P_INT, &fate, &b), "");
    assert_int_equal(fate, WEFT__FATE_OK);
    assert_int_equal(b.counts[ST_OK], 1);
    assert_int_equal(b.records, 0);
    free_block(&b);
}

/* A value that cannot be encoded fails its item, nothing else. */
static void item_bad_values_fail_the_item(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_JSONL, WEFT__RECORD_FULL, false);
    weft__block_t b;
    enum weft__item_fate fate;
    const char *out = run_one(P_BAD_KIND, &fate, &b);
    assert_int_equal(fate, WEFT__FATE_FAILED);
    assert_non_null(strstr(out, "\"ok\":false"));
    assert_non_null(strstr(out, "bad result"));
    free_block(&b);
    out = run_one(P_BAD_JSON, &fate, &b);
    assert_int_equal(fate, WEFT__FATE_FAILED);
    assert_non_null(strstr(out, "at byte"));
    free_block(&b);
}

/* CSV: a row a record (the integer fast path is not taken), a failure's
 * row, a list spliced into rows of the same index, a not-run item no row. */
static void item_csv_rows(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_CSV, WEFT__RECORD_FULL, false);
    weft__block_t b;
    enum weft__item_fate fate;
    assert_string_equal(run_one(P_INT, &fate, &b), "0,100,true,,200\n");
    free_block(&b);
    assert_string_equal(run_one(P_STRING, &fate, &b), "3,103,true,,\"say \"\"hi\"\"\n\"\n");
    free_block(&b);
    assert_string_equal(run_one(P_FAIL, &fate, &b), "1,101,false,bad item 1,\n");
    assert_int_equal(fate, WEFT__FATE_FAILED);
    assert_int_equal(b.records, 1);
    free_block(&b);
    const char *out = run_one(P_BAD_JSON, &fate, &b);
    assert_int_equal(fate, WEFT__FATE_FAILED);
    assert_true(strncmp(out, "7,107,false,invalid JSON value at byte", 37) == 0);
    free_block(&b);

    /* flatten: each element a row; with columns, objects only. */
    setup_job(WEFT__FORMAT_TSV, WEFT__RECORD_FULL, true);
    assert_string_equal(run_one(P_LIST, &fate, &b),
                        "4\t104\ttrue\t\t1\n4\t104\ttrue\t\t[2,3]\n4\t104\ttrue\t\t{\"a\":4}\n");
    assert_int_equal(b.records, 3);
    free_block(&b);
    char *cols[] = {"a"};
    cfg.columns = cols;
    cfg.n_columns = 1;
    out = run_one(P_LIST, &fate, &b);
    assert_int_equal(fate, WEFT__FATE_FAILED); /* 1 is not an object */
    assert_string_equal(out, "4\t104\tfalse\tcolumns = is set, so the value must be a JSON "
                             "object (it is a number)\t\n");
    free_block(&b);
    cfg.columns = NULL;
    cfg.n_columns = 0;

    atomic_store(&weft__run_stop, 1);
    assert_string_equal(run_one(P_INT, &fate, &b), "");
    assert_int_equal(b.records, 0);
    free_block(&b);
}

static void item_retries(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_JSONL, WEFT__RECORD_VALUE, false);
    weft__block_t b;
    enum weft__item_fate fate;
    flaky_failures = 2;
    cfg.retries = 2; /* three attempts: enough */
    assert_string_equal(run_one(P_FLAKY, &fate, &b), "true\n");
    assert_int_equal(fate, WEFT__FATE_OK);
    assert_int_equal(attempts[P_FLAKY], 3);
    free_block(&b);
    memset(attempts, 0, sizeof attempts);
    cfg.retries = 1; /* two attempts: not enough; the last message counts */
    assert_string_equal(run_one(P_FLAKY, &fate, &b), "null\n");
    assert_int_equal(fate, WEFT__FATE_FAILED);
    assert_int_equal(attempts[P_FLAKY], 2);
    assert_non_null(memmem(b.notes.data, b.notes.len, "flaky, attempt 2", 16));
    free_block(&b);
    /* No message from the plugin: its return value says what happened. */
    cfg.retries = 0;
    run_one(P_QUIET, &fate, &b);
    assert_non_null(memmem(b.notes.data, b.notes.len, "process_one returned -7", 23));
    free_block(&b);
}

/* A failure past the deadline is a timeout, and is not retried. */
static void item_timeout(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_JSONL, WEFT__RECORD_FULL, false);
    cfg.timeout = 0.05;
    cfg.retries = 3;
    weft__block_t b;
    enum weft__item_fate fate;
    const char *out = run_one(P_SLOW_FAIL, &fate, &b);
    assert_int_equal(fate, WEFT__FATE_FAILED);
    assert_int_equal(b.counts[ST_TIMED_OUT], 1);
    assert_int_equal(attempts[P_SLOW_FAIL], 1);
    assert_non_null(strstr(out, "timed out after 0.05 s: gave up"));
    free_block(&b);
    weft__host_item_begin(0);
}

static void item_halt_policy(void **state)
{
    (void)state;
    setup_job(WEFT__FORMAT_NONE, WEFT__RECORD_VALUE, false);
    cfg.halt = (weft__halt_t){.mode = WEFT__HALT_NOW, .fail_count = 2};
    weft__item_failed(&job);
    assert_int_equal(atomic_load(&weft__run_stop), 0);
    weft__item_failed(&job);
    assert_int_equal(atomic_load(&weft__run_stop), 2);
    assert_int_equal(atomic_load(&weft__run_halted), 1);
    /* halt = soon at 50 %: one failure in two finished items. */
    setup_job(WEFT__FORMAT_NONE, WEFT__RECORD_VALUE, false);
    cfg.halt = (weft__halt_t){.mode = WEFT__HALT_SOON, .fail_percent = 50};
    wk->done = 1;
    weft__item_failed(&job);
    assert_int_equal(atomic_load(&weft__run_stop), 1);
}

static void item_sorted_set(void **state)
{
    (void)state;
    const uint64_t set[] = {2, 3, 9, 100, UINT64_MAX - 1};
    size_t n = sizeof set / sizeof *set;
    for (uint64_t i = 0; i < 120; i++) {
        bool in = i == 2 || i == 3 || i == 9 || i == 100;
        assert_int_equal(weft__item_in_set(set, n, i), in);
    }
    assert_true(weft__item_in_set(set, n, UINT64_MAX - 1));
    assert_false(weft__item_in_set(set, 0, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(item_value_records, teardown),
        cmocka_unit_test_teardown(item_full_records_in_an_array, teardown),
        cmocka_unit_test_teardown(item_flatten_and_no_output, teardown),
        cmocka_unit_test_teardown(item_bad_values_fail_the_item, teardown),
        cmocka_unit_test_teardown(item_csv_rows, teardown),
        cmocka_unit_test_teardown(item_retries, teardown),
        cmocka_unit_test_teardown(item_timeout, teardown),
        cmocka_unit_test_teardown(item_halt_policy, teardown),
        cmocka_unit_test(item_sorted_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
