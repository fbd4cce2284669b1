/* SPDX-License-Identifier: MIT */
/* A well-formed plugin whose init always refuses: the runner must report
 * the message and call nothing else of it. */
#include <stdio.h>

#include <weft/plugin.h>

static const weft_arg_spec_t args[] = {
    {.name = "count",
     .type = WEFT_ARG_INT,
     .default_value = "3",
     .help = "unused; here so the schema is not empty",
     .min = 0,
     .max = 10},
    {.name = "label", .type = WEFT_ARG_STRING, .default_value = "x", .help = "unused"},
};

static int init_fail_init(const weft_host_t *host, const weft_arg_value_t *argv,
                          void **state, char *msg, size_t msg_size)
{
    snprintf(msg, msg_size, "init_fail: refusing on purpose");
    return -1;
}

static int init_fail_process_one(void *state, void *worker_ctx, const weft_item_t *item,
                                 weft_result_t *result)
{
    weft_result_int(result, item->number);
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,     .name = "init_fail",
    .version = "1.0.0",     .description = "always fails in init (test plugin)",
    .args = args,           .n_args = sizeof args / sizeof args[0],
    .init = init_fail_init, .process_one = init_fail_process_one,
};
