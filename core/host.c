/* SPDX-License-Identifier: MIT */
/* The table of runner services a plugin receives in init(). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

static int host_failf(weft_result_t *r, const char *fmt, ...) WEFT_PRINTF(2, 3);
static void host_logf(const weft_host_t *host, const char *fmt, ...) WEFT_PRINTF(2, 3);

static int host_failf(weft_result_t *r, const char *fmt, ...)
{
    if (r && r->msg && r->msg_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        /* vsnprintf truncates and always terminates when size > 0. */
        vsnprintf(r->msg, r->msg_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void host_logf(const weft_host_t *host, const char *fmt, ...)
{
    /* pub is the first member, so the plugin's pointer is ours. */
    const weft__host_t *h = (const weft__host_t *)host;
    const char *name = h && h->plugin_name ? h->plugin_name : "plugin";
    char stackbuf[1024];
    char *line = stackbuf;
    size_t cap = sizeof stackbuf;
    va_list ap;

    int head = snprintf(NULL, 0, "weft: %s: ", name);
    va_start(ap, fmt);
    int body = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (head < 0 || body < 0)
        return;
    /* Too long for the stack: use the heap; if that fails, the truncated
     * line still goes out. */
    size_t need = (size_t)head + (size_t)body + 2; /* '\n' and NUL */
    if (need > cap) {
        char *heap = malloc(need);
        if (heap) {
            line = heap;
            cap = need;
        }
    }
    size_t len = (size_t)snprintf(line, cap, "weft: %s: ", name);
    if (len < cap) {
        va_start(ap, fmt);
        vsnprintf(line + len, cap - len, fmt, ap);
        va_end(ap);
    }

    /* One line per call: drop the plugin's own trailing newlines. */
    len = strlen(line);
    while (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > cap - 2)
        len = cap - 2;
    line[len] = '\n';
    line[len + 1] = '\0';

    /* A single fputs: stdio locks the stream for the call, so lines from
     * concurrent callers never interleave. */
    fputs(line, stderr);
    if (line != stackbuf)
        free(line);
}

static void host_rng_init(const weft_host_t *host, weft_rng_t *rng,
                          const weft_item_t *item, uint64_t stream)
{
    weft__rng_init(rng, host->run_seed, stream, item->index);
}

void weft__host_init(weft__host_t *h, const char *plugin_name, uint64_t run_seed,
                     const char *config_dir)
{
    memset(h, 0, sizeof *h);
    h->pub.struct_size = (uint32_t)sizeof(weft_host_t);
    h->pub.abi_version = WEFT_PLUGIN_ABI_VERSION;
    h->pub.run_seed = run_seed;
    h->pub.config_dir = config_dir;
    h->pub.failf = host_failf;
    h->pub.logf = host_logf;
    h->pub.rng_init = host_rng_init;
    h->pub.rng_u64 = weft__rng_u64;
    h->pub.rng_double = weft__rng_double;
    h->pub.rng_fill = weft__rng_fill;
    h->plugin_name = plugin_name;
}
