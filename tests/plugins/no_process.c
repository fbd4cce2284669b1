/* SPDX-License-Identifier: MIT */
/* Lacks the required process_one. */
#include <weft/plugin.h>

static int no_process_init(const weft_host_t *host, const weft_arg_value_t *args,
                           void **state, char *msg, size_t msg_size)
{
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "no_process",
    .init = no_process_init,
    .process_one = NULL,
};
