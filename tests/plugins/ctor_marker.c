/* SPDX-License-Identifier: MIT */
/*
 * Test plugin: its ELF constructor creates the file named by
 * $WEFT_CTOR_MARKER, so a test can tell whether dlopen() ran any of its
 * code.  Otherwise a minimal plugin whose value is the item's number.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/plugin.h>

__attribute__((constructor)) static void ctor_marker_ctor(void)
{
    const char *path = getenv("WEFT_CTOR_MARKER");
    if (!path || !*path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
}

static int ctor_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                     char *msg, size_t msg_size)
{
    (void)host, (void)args, (void)state, (void)msg, (void)msg_size;
    return 0;
}

static int ctor_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    (void)state, (void)ctx;
    weft_result_int(r, item->number);
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "ctor_marker",
    .version = "0.1.0",
    .description = "Test plugin: a constructor that leaves a marker file",
    .init = ctor_init,
    .process_one = ctor_process,
};
