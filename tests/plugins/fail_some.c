/* SPDX-License-Identifier: MIT */
/*
 * Test plugin: fails every `every`-th item (index % every == 0) with a
 * message, and can fail init, worker_init or finish on request, so the
 * tests can check that failures are reported and every other result kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/plugin.h>

enum { ARG_EVERY, ARG_FAIL_INIT, ARG_FAIL_WORKER_INIT, ARG_FAIL_FINISH, N_ARGS };

static const weft_arg_spec_t fail_args[] = {
    [ARG_EVERY] = {.name = "every", .type = WEFT_ARG_INT, .default_value = "3",
                   .help = "fail items whose index is a multiple of this", .min = 1, .max = 1e9},
    [ARG_FAIL_INIT] = {.name = "fail_init", .type = WEFT_ARG_BOOL, .default_value = "no",
                       .help = "make init fail"},
    [ARG_FAIL_WORKER_INIT] = {.name = "fail_worker_init", .type = WEFT_ARG_BOOL,
                              .default_value = "no", .help = "make worker_init fail"},
    [ARG_FAIL_FINISH] = {.name = "fail_finish", .type = WEFT_ARG_BOOL, .default_value = "no",
                         .help = "make finish fail"},
};

#define WORKER_MAGIC 0x5eedf00dU

typedef struct fail_state {
    weft_arg_value_t args[N_ARGS];
} fail_state_t;

static int fail_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                     char *msg, size_t msg_size)
{
    (void)host;
    if (args[ARG_FAIL_INIT].u.b) {
        snprintf(msg, msg_size, "refusing to start (fail_init = true)");
        return -1;
    }
    fail_state_t *s = malloc(sizeof *s);
    if (!s)
        return -1;
    for (int k = 0; k < N_ARGS; k++)
        s->args[k] = args[k];
    *state = s;
    return 0;
}

static int fail_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                            char *msg, size_t msg_size)
{
    fail_state_t *s = state;
    if (s->args[ARG_FAIL_WORKER_INIT].u.b && worker == workers - 1) {
        snprintf(msg, msg_size, "worker %u of %u refuses", worker, workers);
        return -1;
    }
    unsigned *magic = malloc(sizeof *magic);
    if (!magic)
        return -1;
    *magic = WORKER_MAGIC;
    *ctx = magic;
    return 0;
}

static void fail_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)state, (void)worker;
    free(ctx);
}

static int fail_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    fail_state_t *s = state;
    if (!ctx || *(unsigned *)ctx != WORKER_MAGIC) {
        snprintf(r->msg, r->msg_size, "worker context missing");
        return -1;
    }
    if (item->index % (uint64_t)s->args[ARG_EVERY].u.i == 0) {
        /* scribble on the row: the runner must zero it again */
        if (r->row)
            memset(r->row, 0xAB, 16);
        snprintf(r->msg, r->msg_size, "item %llu refused \"on purpose\"",
                 (unsigned long long)item->index);
        return -1;
    }
    if (r->row) { /* array output: [index, index^2] */
        int64_t *row = r->row;
        row[0] = (int64_t)item->index;
        row[1] = (int64_t)(item->index * item->index);
    }
    weft_result_int(r, (int64_t)item->index);
    return 0;
}

static int fail_row_spec(void *state, weft_row_spec_t *spec, char *msg, size_t msg_size)
{
    (void)state, (void)msg, (void)msg_size;
    spec->dtype = WEFT_DTYPE_I64;
    spec->row_len = 2;
    return 0;
}

static int fail_finish(void *state, const weft_counts_t *counts, weft_result_t *r)
{
    fail_state_t *s = state;
    if (s->args[ARG_FAIL_FINISH].u.b) {
        snprintf(r->msg, r->msg_size, "finish refuses");
        return -1;
    }
    /* Report the counts so the tests can check them. */
    static _Thread_local char buf[128];
    int n = snprintf(buf, sizeof buf, "{\"total\":%llu,\"ok\":%llu,\"failed\":%llu}",
                     (unsigned long long)counts->total, (unsigned long long)counts->ok,
                     (unsigned long long)counts->failed);
    weft_result_json(r, buf, (size_t)n);
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "fail_some",
    .version = "0.1.0",
    .description = "Test plugin: fails chosen items, or init/worker_init/finish on request",
    .args = fail_args,
    .n_args = N_ARGS,
    .init = fail_init,
    .worker_init = fail_worker_init,
    .worker_fini = fail_worker_fini,
    .process_one = fail_process,
    .finish = fail_finish,
    .destroy = free,
    .row_spec = fail_row_spec,
};
