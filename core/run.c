/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "loader.h"
#include "npy.h"
#include "output.h"
#include "run.h"
#include "source.h"
#include "weft/weft.h"

/* Items per window.  A window ends in a barrier, so cheap items want big
 * windows; costly or bulky items want small ones (the barrier's idle tail,
 * and memory: a window's encoded results are all held until written).  So
 * the size adapts: it starts at WINDOW_MIN, grows 4x while a window takes
 * under WINDOW_TARGET_S and encodes under WINDOW_BYTES, and halves while
 * it encodes more than 4 * WINDOW_BYTES.  At WINDOW_MAX the fixed cost is
 * about 56 bytes an item, twice over: < 30 MiB. */
enum { WINDOW_MIN = 64, WINDOW_MAX = 1 << 18, WINDOW_BYTES = 8 << 20 };
#define WINDOW_TARGET_S 0.02

enum { MSG_SIZE = 1024, ERR_SIZE = 2048, MAX_PRINTED_FAILURES = 10 };

/* Where item i's encoded records and failure message live. */
typedef struct slot {
    uint64_t off;     /* records, in the worker's record buffer        */
    uint32_t len;     /* their bytes                                   */
    uint32_t records; /* 1, or a flattened list's length (may be 0)    */
    uint32_t msg_off; /* failure message, in the worker's msg buffer   */
    uint16_t msg_len;
    uint16_t worker;
    uint8_t failed;
} slot_t;

typedef struct window {
    weft_item_t *items; /* unused for indexed sources                 */
    slot_t *slots;
    weft__buf_t *bufs;  /* framed records, one buffer per worker      */
    weft__buf_t *msgs;  /* failure messages, one buffer per worker    */
    size_t count;
    uint64_t first;     /* index of the window's first item           */
} window_t;

/* Written only by its own worker while the pool runs. */
typedef struct worker {
    alignas(64) void *ctx; /* the plugin's per-worker context */
    char msg[MSG_SIZE];
} worker_t;

typedef struct run {
    weft__config_t *cfg;
    weft__plugin_t *plugin;
    weft__host_t host;
    void *state;
    bool state_live;
    weft__source_t *source;
    weft__writer_t *writer;
    weft_pool_t *pool;
    unsigned threads;
    worker_t *workers;
    unsigned workers_ready; /* worker_init succeeded for [0, workers_ready) */
    window_t win[2];
    window_t *cur;          /* the window the pool is computing */
    weft__frame_t frame;    /* how workers frame each record */
    uint64_t next_index;    /* index of the next window's first item */
    bool writes_records;    /* JSON or JSON Lines output */
    weft__npy_t *npy;       /* .npy output, rows written in place */
    pthread_mutex_t out_lock; /* order = any: workers take turns writing */

    /* Writer thread hand-off: `pending` is written under `lock`. */
    pthread_t writer_thread;
    bool writer_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    window_t *pending;      /* window waiting to be written, or NULL */
    bool closing;

    /* Written by the writer thread only, read after it is joined. */
    uint64_t ok, failed, printed;
    int write_error;

    double t_start, t_items;
    char err[ERR_SIZE];
} run_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the per-item path ------------------------------------------------- */

static int encode_record(run_t *r, weft__buf_t *buf, const weft_item_t *item,
                         const weft_result_t *res, const char *failure, char *why,
                         size_t whylen);

/* Splits the minified JSON array at buf->data + list_off (len bytes) into
 * its top-level elements, appending each as a framed record (flatten =
 * true).  The list lives in the buffer it appends to, so it is addressed
 * by offset, and room is reserved before each element so that the buffer
 * cannot move while the element is copied.  Returns the record count. */
static uint32_t splice_list(run_t *r, weft__buf_t *buf, size_t list_off, size_t len,
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
                /* frame + {"index":..,"ok":true,"value": + } + frame < 128 */
                *e = weft__buf_reserve(buf, k - start + 128);
                if (*e)
                    break;
                weft_result_t elem = {.kind = WEFT_VALUE_JSON};
                elem.value.s.ptr = buf->data + list_off + start;
                elem.value.s.len = k - start;
                *e = encode_record(r, buf, item, &elem, NULL, why, whylen);
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
static int encode_record(run_t *r, weft__buf_t *buf, const weft_item_t *item,
                         const weft_result_t *res, const char *failure, char *why,
                         size_t whylen)
{
    char head[64];
    bool full = r->cfg->record == WEFT__RECORD_FULL;
    int e = weft__buf_append(buf, r->frame.prefix, r->frame.prefix_len);
    if (e == 0 && full) {
        int n = snprintf(head, sizeof head, "{\"index\":%" PRIu64 ",\"ok\":%s", item->index,
                         failure ? "false,\"error\":" : "true,\"value\":");
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
static int encode_ok(run_t *r, weft__buf_t *buf, const weft_item_t *item,
                     const weft_result_t *res, uint32_t *records, char *why, size_t whylen)
{
    size_t mark = buf->len;
    if (!r->cfg->flatten) {
        *records = 1;
        return encode_record(r, buf, item, res, NULL, why, whylen);
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
        return encode_record(r, buf, item, res, NULL, why, whylen);
    }
    /* Elements are appended after the scratch copy, then moved down. */
    *records = splice_list(r, buf, mark, vlen, item, &e, why, whylen);
    if (e == 0) {
        memmove(buf->data + mark, buf->data + mark + vlen, buf->len - mark - vlen);
        buf->len -= vlen;
    }
    return e;
}

/* Encodes item i's outcome: its records (when the run writes records) and,
 * for a failure, its message.  Returns the failure flag. */
static bool encode(run_t *r, weft__buf_t *buf, weft__buf_t *msgs, const weft_item_t *item,
                   int rc, const weft_result_t *res, slot_t *slot)
{
    char why[256] = "";
    const char *msg = NULL;
    size_t mark = buf->len;
    slot->records = 0;
    if (rc != 0) {
        msg = res->msg;
        if (!msg[0]) {
            snprintf(why, sizeof why, "process_one returned %d", rc);
            msg = why;
        }
    } else if (r->writes_records) {
        int e = encode_ok(r, buf, item, res, &slot->records, why, sizeof why);
        if (e == 0 && buf->len - mark > UINT32_MAX) {
            e = -E2BIG;
            snprintf(why, sizeof why, "the result is over 4 GiB encoded");
        }
        if (e != 0) {
            /* A result that cannot be encoded fails its item, nothing else. */
            buf->len = mark;
            msg = e == -ENOMEM ? "out of memory encoding the result" : why;
        }
    }
    if (msg && r->writes_records) {
        slot->records = 1;
        char unused[8];
        if (encode_record(r, buf, item, res, msg, unused, sizeof unused) != 0) {
            buf->len = mark; /* out of memory: the message below still counts */
            slot->records = 0;
        }
    }
    slot->off = mark;
    slot->len = (uint32_t)(buf->len - mark);
    slot->failed = msg != NULL;
    slot->msg_len = 0;
    if (msg) {
        size_t n = strnlen(msg, MSG_SIZE - 1);
        slot->msg_off = (uint32_t)msgs->len;
        if (weft__buf_append(msgs, msg, n) == 0)
            slot->msg_len = (uint16_t)n;
    }
    return msg != NULL;
}

static void write_chunk(run_t *r, const weft__buf_t *buf, size_t mark, const window_t *w,
                        size_t begin, size_t end);

static void run_chunk(void *arg, size_t begin, size_t end, unsigned worker)
{
    run_t *r = arg;
    window_t *w = r->cur;
    worker_t *wk = &r->workers[worker];
    weft__buf_t *buf = &w->bufs[worker], *msgs = &w->msgs[worker];
    const weft_plugin_t *p = &r->plugin->desc;
    const weft__source_t *src = r->source;
    size_t mark = buf->len;
    weft_item_t computed;

    for (size_t i = begin; i < end; i++) {
        const weft_item_t *item = &w->items[i];
        if (src->vt->at) {
            src->vt->at(src, w->first + i, &computed);
            item = &computed;
        }
        slot_t *slot = &w->slots[i];
        weft_result_t res = {.kind = WEFT_VALUE_NONE, .msg = wk->msg, .msg_size = MSG_SIZE};
        if (r->npy)
            res.row = weft__npy_row(r->npy, w->first + i);
        wk->msg[0] = '\0';
        int rc = p->process_one(r->state, wk->ctx, item, &res);
        if (rc != 0 && res.row)
            memset(res.row, 0, weft__npy_row_bytes(r->npy)); /* no half-written rows */
        slot->worker = (uint16_t)worker;
        slot->failed = encode(r, buf, msgs, item, rc, &res, slot);
    }
    if (r->cfg->order_any && r->writer)
        write_chunk(r, buf, mark, w, begin, end);
}

/* order = any: a chunk's records go out as soon as it is done. */
static void write_chunk(run_t *r, const weft__buf_t *buf, size_t mark, const window_t *w,
                        size_t begin, size_t end)
{
    uint64_t records = 0;
    for (size_t i = begin; i < end; i++)
        records += w->slots[i].records;
    pthread_mutex_lock(&r->out_lock);
    if (!r->write_error)
        r->write_error = weft__writer_framed(r->writer, buf->data + mark, buf->len - mark, records);
    pthread_mutex_unlock(&r->out_lock);
}

/* ---- the writer thread -------------------------------------------------- */

/* Emits a window in input order (unless order = any wrote it already) and
 * reports its failures.  Consecutive records that sit end to end in one
 * worker's buffer (a chunk the worker ran) go out in one copy. */
static void write_window(run_t *r, window_t *w)
{
    bool write = r->writer && !r->cfg->order_any;
    const char *run_start = NULL;
    size_t run_len = 0;
    uint64_t run_records = 0;
    for (size_t i = 0; i < w->count; i++) {
        const slot_t *s = &w->slots[i];
        if (s->failed) {
            r->failed++;
            if (r->printed < MAX_PRINTED_FAILURES) {
                const char *msg = w->msgs[s->worker].data + s->msg_off;
                fprintf(stderr, "weft: item %" PRIu64 " failed: %.*s\n", w->first + i,
                        (int)s->msg_len, s->msg_len ? msg : "(no message)");
                r->printed++;
            }
        } else {
            r->ok++;
        }
        if (!write || !s->len)
            continue;
        const char *text = w->bufs[s->worker].data + s->off;
        if (run_records && text != run_start + run_len) {
            if (!r->write_error)
                r->write_error = weft__writer_framed(r->writer, run_start, run_len, run_records);
            run_records = 0;
        }
        if (!run_records)
            run_start = text, run_len = 0;
        run_len += s->len;
        run_records += s->records;
    }
    if (run_records && !r->write_error)
        r->write_error = weft__writer_framed(r->writer, run_start, run_len, run_records);
}

static void *writer_main(void *arg)
{
    run_t *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->pending && !r->closing)
            pthread_cond_wait(&r->cond, &r->lock);
        if (!r->pending)
            break; /* closing and nothing left */
        window_t *w = r->pending;
        pthread_mutex_unlock(&r->lock);
        write_window(r, w);
        pthread_mutex_lock(&r->lock);
        r->pending = NULL;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Hands w to the writer once it is done with the previous window, which
 * is the other buffer: on return the other buffer is free to refill. */
static void writer_hand(run_t *r, window_t *w)
{
    pthread_mutex_lock(&r->lock);
    while (r->pending)
        pthread_cond_wait(&r->cond, &r->lock);
    r->pending = w;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void writer_stop(run_t *r)
{
    if (!r->writer_started)
        return;
    pthread_mutex_lock(&r->lock);
    r->closing = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->writer_thread, NULL);
    r->writer_started = false;
}

/* ---- set-up and tear-down ----------------------------------------------- */

static int windows_alloc(run_t *r, size_t cap)
{
    for (int k = 0; k < 2; k++) {
        window_t *w = &r->win[k];
        w->items = calloc(cap, sizeof *w->items);
        w->slots = calloc(cap, sizeof *w->slots);
        w->bufs = calloc(r->threads, sizeof *w->bufs);
        w->msgs = calloc(r->threads, sizeof *w->msgs);
        if (!w->items || !w->slots || !w->bufs || !w->msgs)
            return -ENOMEM;
    }
    return 0;
}

static void windows_free(run_t *r)
{
    for (int k = 0; k < 2; k++) {
        window_t *w = &r->win[k];
        for (unsigned t = 0; t < r->threads; t++) {
            if (w->bufs)
                weft__buf_free(&w->bufs[t]);
            if (w->msgs)
                weft__buf_free(&w->msgs[t]);
        }
        free(w->msgs);
        free(w->items);
        free(w->slots);
        free(w->bufs);
    }
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "weft: %s\n", msg);
    return WEFT_EXIT_USAGE;
}

static void workers_fini(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    for (unsigned t = 0; t < r->workers_ready; t++)
        if (p->worker_fini)
            p->worker_fini(r->state, t, r->workers[t].ctx);
    r->workers_ready = 0;
}

/* Loads config, plugin, arguments and source; nothing runs yet. */
static int prepare(run_t *r, const weft__run_opts_t *o)
{
    char *err = r->err;
    int rc = weft__config_load(&r->cfg, o->config_path, err, ERR_SIZE);
    for (size_t k = 0; rc == 0 && k < o->n_sets; k++)
        rc = weft__config_set(r->cfg, o->sets[k], err, ERR_SIZE);
    if (rc == 0)
        rc = weft__config_finalize(r->cfg, err, ERR_SIZE);
    if (rc)
        return usage_error(err);

    char **dirs = NULL;
    size_t n_dirs = 0;
    rc = weft__plugin_dirs(r->cfg->dir, r->cfg->plugin_path, &dirs, &n_dirs);
    if (rc)
        snprintf(err, ERR_SIZE, "plugin search path: %s", weft_strerror(rc));
    else
        rc = weft__plugin_open(&r->plugin, r->cfg->plugin, dirs, n_dirs, err, ERR_SIZE);
    for (size_t k = 0; k < n_dirs; k++)
        free(dirs[k]);
    free(dirs);
    if (rc)
        return usage_error(err);
    return 0;
}

static int start_plugin(run_t *r, weft_arg_value_t *args)
{
    const weft_plugin_t *p = &r->plugin->desc;
    char msg[MSG_SIZE] = "";
    weft__host_init(&r->host, p->name, r->cfg->seed, r->cfg->dir);
    r->host.pub.values_wanted = r->cfg->format != WEFT__FORMAT_NONE;
    if (p->init(&r->host.pub, args, &r->state, msg, sizeof msg) != 0) {
        fprintf(stderr, "weft: plugin %s: init failed: %s\n", p->name,
                msg[0] ? msg : "(no message)");
        return WEFT_EXIT_USAGE;
    }
    r->state_live = true;
    for (unsigned t = 0; t < r->threads; t++) {
        if (!p->worker_init)
            break;
        msg[0] = '\0';
        if (p->worker_init(r->state, t, r->threads, &r->workers[t].ctx, msg, sizeof msg)) {
            fprintf(stderr, "weft: plugin %s: worker_init (worker %u) failed: %s\n", p->name,
                    t, msg[0] ? msg : "(no message)");
            return WEFT_EXIT_USAGE;
        }
        r->workers_ready = t + 1;
    }
    return 0;
}

/* output = FILE.npy: the plugin's rows, in a file the runner creates. */
static int open_array(run_t *r)
{
    const weft_plugin_t *p = &r->plugin->desc;
    weft_row_spec_t spec = {0};
    char msg[MSG_SIZE] = "";
    if (!p->row_spec) {
        fprintf(stderr, "weft: %s: plugin %s writes no array rows (it has no row_spec), "
                        "so its output cannot be .npy\n", r->cfg->output, p->name);
        return WEFT_EXIT_USAGE;
    }
    if (p->row_spec(r->state, &spec, msg, sizeof msg) != 0) {
        fprintf(stderr, "weft: plugin %s: row_spec failed: %s\n", p->name, msg);
        return WEFT_EXIT_USAGE;
    }
    if (r->source->total == WEFT__COUNT_UNKNOWN) {
        fprintf(stderr, "weft: %s: a .npy output needs the item count up front, and "
                        "standard input has none\n", r->cfg->output);
        return WEFT_EXIT_USAGE;
    }
    if (weft__npy_create(&r->npy, r->cfg->output, spec.dtype, r->source->total, spec.row_len,
                         r->err, ERR_SIZE) != 0)
        return usage_error(r->err);
    return 0;
}

static const char *format_name(weft__format_t f)
{
    switch (f) {
    case WEFT__FORMAT_JSON: return "a JSON array";
    case WEFT__FORMAT_JSONL: return "JSON Lines";
    case WEFT__FORMAT_NPY: return "a .npy array";
    case WEFT__FORMAT_NONE: break;
    }
    return "nothing";
}

/* weft check: everything was validated; say what would run. */
static int report_check(const run_t *r, const char *path)
{
    const weft__config_t *c = r->cfg;
    const weft_plugin_t *p = &r->plugin->desc;
    if (c->format == WEFT__FORMAT_NPY && !p->row_spec) {
        fprintf(stderr, "weft: %s: plugin %s writes no array rows, so its output cannot be "
                        ".npy\n", c->output, p->name);
        return WEFT_EXIT_USAGE;
    }
    printf("%s: ok\n", path);
    printf("  plugin   %s %s (%s)\n", p->name, p->version ? p->version : "", r->plugin->path);
    if (r->source->total == WEFT__COUNT_UNKNOWN)
        printf("  items    %s (count known when read)\n", c->items->value);
    else
        printf("  items    %s: %" PRIu64 " items\n", c->items->value, r->source->total);
    printf("  output   %s, %s%s\n", c->output ? c->output : "none", format_name(c->format),
           c->order_any ? ", in completion order" : "");
    printf("  threads  %u\n", r->threads);
    return WEFT_EXIT_OK;
}

static unsigned pick_threads(const run_t *r)
{
    unsigned t = r->cfg->threads;
    if (t == 0) {
        t = weft_cpu_count();
        /* I/O-bound items mostly wait: more threads keep the disk busy. */
        if (r->plugin->desc.flags & WEFT_PLUGIN_IO_BOUND)
            t *= 4;
    }
    if (r->source->total != WEFT__COUNT_UNKNOWN && r->source->total < t)
        t = (unsigned)r->source->total;
    if (t > 1024)
        t = 1024;
    return t ? t : 1;
}

static size_t next_window_size(const run_t *r, const window_t *w, size_t size, size_t got,
                               double seconds)
{
    size_t bytes = 0;
    for (unsigned t = 0; t < r->threads; t++)
        bytes += w->bufs[t].len;
    if (bytes > 4 * (size_t)WINDOW_BYTES && size > WINDOW_MIN)
        return size / 2;
    if (got == size && size < WINDOW_MAX && seconds < WINDOW_TARGET_S && bytes < WINDOW_BYTES)
        return size * 4 < WINDOW_MAX ? size * 4 : WINDOW_MAX;
    return size;
}

/* Runs every window; returns 0, or an exit status for a fatal error. */
static int run_items(run_t *r)
{
    char *err = r->err;
    window_t *w = &r->win[0];
    size_t size = WINDOW_MIN;
    for (;;) {
        for (unsigned t = 0; t < r->threads; t++)
            w->bufs[t].len = w->msgs[t].len = 0;
        size_t got = 0;
        bool indexed = r->source->vt->at != NULL; /* items computed by the workers */
        int rc = weft__source_next(r->source, indexed ? NULL : w->items, size, &got, err,
                                   ERR_SIZE);
        if (rc) {
            fprintf(stderr, "weft: items: %s\n", err);
            return WEFT_EXIT_USAGE;
        }
        if (got == 0)
            return 0;
        w->count = got;
        w->first = r->next_index;
        r->next_index += got;
        r->cur = w;
        double t0 = now();
        rc = weft_pool_for(r->pool, got, 0, run_chunk, r);
        if (rc) {
            fprintf(stderr, "weft: pool: %s\n", weft_strerror(rc));
            return WEFT_EXIT_OUTPUT;
        }
        size = next_window_size(r, w, size, got, now() - t0);
        writer_hand(r, w);
        w = (w == &r->win[0]) ? &r->win[1] : &r->win[0];
    }
}

static void print_finish_value(run_t *r, const weft_result_t *res)
{
    weft__buf_t b = {0};
    char why[256];
    if (weft__json_value(&b, res, why, sizeof why) != 0) {
        fprintf(stderr, "weft: plugin %s: finish returned a bad value: %s\n",
                r->plugin->desc.name, why);
    } else {
        bool to_stdout = !(r->cfg->output && strcmp(r->cfg->output, "-") == 0);
        fprintf(to_stdout ? stdout : stderr, "%s%.*s\n", to_stdout ? "" : "weft: result: ",
                (int)b.len, b.data);
        fflush(to_stdout ? stdout : stderr);
    }
    weft__buf_free(&b);
}

/* worker_fini, finish, summary.  Returns the exit status. */
static int finish_run(run_t *r, int status, bool quiet)
{
    const weft_plugin_t *p = &r->plugin->desc;
    workers_fini(r);

    uint64_t total = r->ok + r->failed;
    if (status == 0 && p->finish) {
        char msg[MSG_SIZE] = "";
        weft_counts_t counts = {.total = r->source->total == WEFT__COUNT_UNKNOWN
                                             ? total : r->source->total,
                                .ok = r->ok,
                                .failed = r->failed};
        counts.not_run = counts.total - total;
        weft_result_t res = {.msg = msg, .msg_size = sizeof msg};
        if (p->finish(r->state, &counts, &res) != 0) {
            fprintf(stderr, "weft: plugin %s: finish failed: %s\n", p->name,
                    msg[0] ? msg : "(no message)");
            status = WEFT_EXIT_ITEMS_FAILED;
        } else if (res.kind != WEFT_VALUE_NONE) {
            print_finish_value(r, &res);
        }
    }
    if (r->writer && weft__writer_close(&r->writer, r->err, ERR_SIZE) != 0) {
        fprintf(stderr, "weft: %s\n", r->err);
        status = WEFT_EXIT_OUTPUT;
    }
    /* Rows of failed items are zeros; the array is kept, like other output. */
    if (r->npy && status != WEFT_EXIT_USAGE && weft__npy_commit(&r->npy, r->err, ERR_SIZE)) {
        fprintf(stderr, "weft: %s\n", r->err);
        status = WEFT_EXIT_OUTPUT;
    }
    if (status == 0 && r->failed)
        status = WEFT_EXIT_ITEMS_FAILED;
    if (r->failed > r->printed)
        fprintf(stderr, "weft: ... and %" PRIu64 " more failed items\n", r->failed - r->printed);
    if (!quiet) {
        double wall = now() - r->t_start;
        fprintf(stderr,
                "weft: %s: %" PRIu64 " ok, %" PRIu64 " failed in %.3f s (%.0f items/s, %u threads)\n",
                p->name, r->ok, r->failed, wall, wall > 0 ? (double)total / wall : 0.0,
                r->threads);
    }
    return status;
}

int weft__run(const weft__run_opts_t *o)
{
    run_t *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "weft: out of memory\n");
        return WEFT_EXIT_USAGE;
    }
    r->t_start = now();
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->out_lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    weft_arg_value_t *args = NULL;
    int status = prepare(r, o);
    if (status)
        goto out;

    const weft_plugin_t *p = &r->plugin->desc;
    args = calloc(p->n_args ? p->n_args : 1, sizeof *args);
    if (!args) {
        status = usage_error("out of memory");
        goto out;
    }
    if (weft__config_bind(r->cfg, p, args, r->err, ERR_SIZE) != 0 ||
        weft__source_open(&r->source, r->cfg, r->err, ERR_SIZE) != 0) {
        status = usage_error(r->err);
        goto out;
    }
    r->threads = pick_threads(r);
    if (o->check_only) {
        status = report_check(r, o->config_path);
        goto out;
    }
    r->frame = weft__frame_of(r->cfg->format);
    r->writes_records = r->cfg->format == WEFT__FORMAT_JSON || r->cfg->format == WEFT__FORMAT_JSONL;
    weft_pool_settings_t ps;
    weft_pool_default_settings(&ps);
    ps.threads = r->threads;
    r->workers = aligned_alloc(64, sizeof(worker_t) * r->threads);
    if (!r->workers || windows_alloc(r, WINDOW_MAX) != 0 ||
        weft_pool_create(&r->pool, &ps) != 0) {
        status = usage_error("out of memory starting the workers");
        goto out;
    }
    memset(r->workers, 0, sizeof(worker_t) * r->threads);
    status = start_plugin(r, args);
    if (status)
        goto out;
    /* Opened last, so that no earlier error truncates an existing file. */
    if (r->cfg->format == WEFT__FORMAT_NPY)
        status = open_array(r);
    else if (r->writes_records &&
             weft__writer_open(&r->writer, r->cfg->output, r->cfg->format, r->err, ERR_SIZE))
        status = usage_error(r->err);
    if (status)
        goto out;
    if (pthread_create(&r->writer_thread, NULL, writer_main, r) != 0) {
        status = usage_error("cannot start the writer thread");
        goto out;
    }
    r->writer_started = true;

    status = run_items(r);
    writer_stop(r);
    status = finish_run(r, status, o->quiet);

out:
    writer_stop(r);
    if (r->plugin) {
        workers_fini(r);
        if (r->state_live && r->plugin->desc.destroy)
            r->plugin->desc.destroy(r->state);
    }
    if (r->writer) /* only after an early error, reported already */
        weft__writer_close(&r->writer, r->err, ERR_SIZE);
    weft__npy_abort(&r->npy);
    weft_pool_destroy(&r->pool);
    windows_free(r);
    free(r->workers);
    free(args);
    weft__source_close(&r->source);
    weft__plugin_close(&r->plugin);
    weft__config_free(&r->cfg);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->out_lock);
    free(r);
    return status;
}
