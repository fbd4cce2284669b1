/* SPDX-License-Identifier: MIT */
/* Declares a descriptor far smaller than ABI 1's: the loader must refuse
 * it without reading the fields past struct_size. */
#include <weft/plugin.h>

static int small_struct_init(const weft_host_t *host, const weft_arg_value_t *args,
                             void **state, char *msg, size_t msg_size)
{
    return 0;
}

static int small_struct_process_one(void *state, void *worker_ctx,
                                    const weft_item_t *item, weft_result_t *result)
{
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    .struct_size = 16,
    .abi_version = WEFT_PLUGIN_ABI_VERSION,
    .name = "small_struct",
    .init = small_struct_init,
    .process_one = small_struct_process_one,
};
