/* SPDX-License-Identifier: MIT */
/*
 * add_one: the value i + step for every item i (step defaults to 1) — the
 * smallest useful plugin, and a template for your own.
 */
#include <stdio.h>
#include <stdlib.h>

#include <weft/plugin.h>

enum { ARG_STEP };

static const weft_arg_spec_t add_one_args[] = {
    [ARG_STEP] = {.name = "step", .type = WEFT_ARG_INT, .default_value = "1",
                  .help = "added to each item's number"},
};

static int add_one_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                        char *msg, size_t msg_size)
{
    (void)host, (void)msg, (void)msg_size;
    /* The state is just the step: keep it in the pointer's own storage. */
    int64_t *step = malloc(sizeof *step);
    if (!step) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    *step = args[ARG_STEP].u.i;
    *state = step;
    return 0;
}

static int add_one_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    (void)ctx;
    int64_t step = *(const int64_t *)state, v;
    if (__builtin_add_overflow(item->number, step, &v)) {
        snprintf(r->msg, r->msg_size, "%lld + %lld overflows int64", (long long)item->number,
                 (long long)step);
        return -1;
    }
    weft_result_int(r, v);
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "add_one",
    .version = "1.0.0",
    .description = "The value i + step for every item i",
    .args = add_one_args,
    .n_args = sizeof add_one_args / sizeof add_one_args[0],
    .init = add_one_init,
    .process_one = add_one_process,
    .destroy = free,
};
