/* SPDX-License-Identifier: MIT */
/* A plugin as one built against the header before process_range was
 * appended: its struct_size ends right after row_spec.  The bytes past it
 * are not the plugin's to give; here they hold a pointer the loader must
 * not pick up (its copy must read process_range as NULL). */
#include <stddef.h>

#include <weft/plugin.h>

static int old_struct_init(const weft_host_t *host, const weft_arg_value_t *args,
                           void **state, char *msg, size_t msg_size)
{
    return 0;
}

static int old_struct_process_one(void *state, void *worker_ctx, const weft_item_t *item,
                                  weft_result_t *result)
{
    weft_result_int(result, item->number);
    return 0;
}

/* Never to be called: it lies past struct_size. */
static int old_struct_not_mine(void *state, void *worker_ctx, uint64_t first_index,
                               int64_t first_number, size_t count, char *msg,
                               size_t msg_size)
{
    return -1;
}

WEFT_PLUGIN_DEFINE = {
    .struct_size = (uint32_t)offsetof(weft_plugin_t, process_range),
    .abi_version = WEFT_PLUGIN_ABI_VERSION,
    .name = "old_struct",
    .version = "1.0.0",
    .description = "a descriptor from before process_range (test plugin)",
    .init = old_struct_init,
    .process_one = old_struct_process_one,
    .process_range = old_struct_not_mine,
};
