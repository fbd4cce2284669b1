/* SPDX-License-Identifier: MIT */
/* Claims an ABI version this weft does not speak. */
#include <weft/plugin.h>

static int bad_abi_init(const weft_host_t *host, const weft_arg_value_t *args,
                        void **state, char *msg, size_t msg_size)
{
    return 0;
}

static int bad_abi_process_one(void *state, void *worker_ctx, const weft_item_t *item,
                               weft_result_t *result)
{
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    .struct_size = sizeof(weft_plugin_t),
    .abi_version = 999,
    .name = "bad_abi",
    .init = bad_abi_init,
    .process_one = bad_abi_process_one,
};
