/* SPDX-License-Identifier: MIT */
/* Declares the argument "size" twice. */
#include <weft/plugin.h>

static const weft_arg_spec_t args[] = {
    {.name = "size", .type = WEFT_ARG_INT, .default_value = "1", .help = "first"},
    {.name = "scale", .type = WEFT_ARG_FLOAT, .default_value = "1.0", .help = "fine"},
    {.name = "size", .type = WEFT_ARG_INT, .default_value = "2", .help = "again"},
};

static int bad_schema_init(const weft_host_t *host, const weft_arg_value_t *argv,
                           void **state, char *msg, size_t msg_size)
{
    return 0;
}

static int bad_schema_process_one(void *state, void *worker_ctx, const weft_item_t *item,
                                  weft_result_t *result)
{
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "bad_schema",
    .args = args,
    .n_args = sizeof args / sizeof args[0],
    .init = bad_schema_init,
    .process_one = bad_schema_process_one,
};
