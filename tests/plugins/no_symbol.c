/* SPDX-License-Identifier: MIT */
/* A good descriptor under the wrong symbol name: the loader must say that
 * weft_plugin_entry is missing. */
#include <weft/plugin.h>

static int no_symbol_init(const weft_host_t *host, const weft_arg_value_t *args,
                          void **state, char *msg, size_t msg_size)
{
    return 0;
}

static int no_symbol_process_one(void *state, void *worker_ctx, const weft_item_t *item,
                                 weft_result_t *result)
{
    return 0;
}

extern WEFT_PLUGIN_EXPORT const weft_plugin_t not_the_entry;
WEFT_PLUGIN_EXPORT const weft_plugin_t not_the_entry = {
    WEFT_PLUGIN_HEADER,
    .name = "no_symbol",
    .init = no_symbol_init,
    .process_one = no_symbol_process_one,
};
