/* SPDX-License-Identifier: MIT */
/*
 * Test plugin: returns a value of the kind `mode` asks for, built from the
 * item and the bound arguments, so the tests can check argument binding,
 * every value kind and the encoder's handling of bad values end to end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/plugin.h>

enum { ARG_MODE, ARG_N, ARG_X, ARG_FLAG, ARG_TEXT, ARG_FILE, N_ARGS };

static const weft_arg_spec_t echo_args[] = {
    [ARG_MODE] = {.name = "mode", .type = WEFT_ARG_STRING, .default_value = "int",
                  .help = "int|float|bool|string|json|none|bad_json|bad_utf8|nul|rng"},
    [ARG_N] = {.name = "n", .type = WEFT_ARG_INT, .default_value = "0",
               .help = "added to the number", .min = -1000, .max = 1000},
    [ARG_X] = {.name = "x", .type = WEFT_ARG_FLOAT, .default_value = "0.5",
               .help = "multiplies the number"},
    [ARG_FLAG] = {.name = "flag", .type = WEFT_ARG_BOOL, .default_value = "false",
                  .help = "a boolean"},
    [ARG_TEXT] = {.name = "text", .type = WEFT_ARG_STRING, .default_value = "hi",
                  .help = "a string"},
    [ARG_FILE] = {.name = "file", .type = WEFT_ARG_PATH, .default_value = "data.txt",
                  .help = "a path"},
};

typedef struct echo_state {
    const weft_host_t *host;
    weft_arg_value_t args[N_ARGS];
} echo_state_t;

typedef struct echo_worker {
    char buf[4096];
} echo_worker_t;

static int echo_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                     char *msg, size_t msg_size)
{
    echo_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    s->host = host;
    memcpy(s->args, args, sizeof s->args);
    *state = s;
    return 0;
}

static int echo_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                            char *msg, size_t msg_size)
{
    (void)state, (void)worker, (void)workers;
    *ctx = malloc(sizeof(echo_worker_t));
    if (!*ctx)
        snprintf(msg, msg_size, "out of memory");
    return *ctx ? 0 : -1;
}

static void echo_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)state, (void)worker;
    free(ctx);
}

static int echo_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    echo_state_t *s = state;
    char *buf = ((echo_worker_t *)ctx)->buf;
    const weft_arg_value_t *a = s->args;
    const char *mode = a[ARG_MODE].u.s;
    int n;
    if (strcmp(mode, "int") == 0) {
        weft_result_int(r, item->number + a[ARG_N].u.i);
    } else if (strcmp(mode, "float") == 0) {
        weft_result_float(r, (double)item->number * a[ARG_X].u.f);
    } else if (strcmp(mode, "bool") == 0) {
        weft_result_bool(r, a[ARG_FLAG].u.b ^ (item->index & 1));
    } else if (strcmp(mode, "string") == 0) {
        n = snprintf(buf, 4096, "%s %lld", a[ARG_TEXT].u.s, (long long)item->number);
        weft_result_string(r, buf, (size_t)n);
    } else if (strcmp(mode, "json") == 0) {
        n = snprintf(buf, 4096,
                     "{ \"index\": %llu, \"n\": %lld, \"x\": %g, \"flag\": %s, \"file\": \"%s\" }",
                     (unsigned long long)item->index, (long long)a[ARG_N].u.i, a[ARG_X].u.f,
                     a[ARG_FLAG].u.b ? "true" : "false", a[ARG_FILE].u.s);
        weft_result_json(r, buf, (size_t)n);
    } else if (strcmp(mode, "none") == 0) {
        /* no value */
    } else if (strcmp(mode, "bad_json") == 0) {
        weft_result_json(r, "{\"a\":", 5);
    } else if (strcmp(mode, "bad_utf8") == 0) {
        weft_result_string(r, "\xff ok \xc3", 6);
    } else if (strcmp(mode, "nul") == 0) {
        weft_result_string(r, "a\0b\n", 4);
    } else if (strcmp(mode, "rng") == 0) {
        weft_rng_t rng;
        s->host->rng_init(s->host, &rng, item, (uint64_t)a[ARG_N].u.i);
        weft_result_int(r, (int64_t)(s->host->rng_u64(&rng) >> 1));
    } else {
        return s->host->failf(r, "unknown mode '%s'", mode);
    }
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "echo",
    .version = "0.1.0",
    .description = "Test plugin: echoes items and arguments as values of every kind",
    .args = echo_args,
    .n_args = N_ARGS,
    .init = echo_init,
    .worker_init = echo_worker_init,
    .worker_fini = echo_worker_fini,
    .process_one = echo_process,
    .destroy = free,
};
