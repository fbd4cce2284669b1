/* SPDX-License-Identifier: MIT */
/*
 * greet: a complete out-of-tree weft plugin.  Each item (a line: a name)
 * becomes the string "<greeting>, <name>!".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/plugin.h>

enum { ARG_GREETING, ARG_SHOUT, N_ARGS };

static const weft_arg_spec_t greet_args[] = {
    [ARG_GREETING] = {.name = "greeting", .type = WEFT_ARG_STRING, .default_value = "Hello",
                      .help = "what to say"},
    [ARG_SHOUT] = {.name = "shout", .type = WEFT_ARG_BOOL, .default_value = "false",
                   .help = "upper-case the whole greeting"},
};

typedef struct greet {
    const char *greeting; /* points into the runner's config: lives until destroy */
    bool shout;
} greet_t;

/* Each worker formats into its own buffer: the string must only live until
 * process_one returns, and no two workers share it. */
typedef struct scratch {
    char text[512];
} scratch_t;

static int greet_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                      char *msg, size_t msg_size)
{
    (void)host;
    greet_t *g = malloc(sizeof *g);
    if (!g) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    g->greeting = args[ARG_GREETING].u.s;
    g->shout = args[ARG_SHOUT].u.b;
    *state = g;
    return 0;
}

static int greet_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                             char *msg, size_t msg_size)
{
    (void)state, (void)worker, (void)workers;
    *ctx = malloc(sizeof(scratch_t));
    if (!*ctx)
        snprintf(msg, msg_size, "out of memory");
    return *ctx ? 0 : -1;
}

static void greet_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)state, (void)worker;
    free(ctx);
}

static int greet_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    const greet_t *g = state;
    char *text = ((scratch_t *)ctx)->text;
    if (!item->text || !item->text[0]) {
        snprintf(r->msg, r->msg_size, "line %llu is empty: nobody to greet",
                 (unsigned long long)item->index + 1);
        return -1;
    }
    int n = snprintf(text, sizeof(scratch_t), "%s, %s!", g->greeting, item->text);
    if (n < 0 || (size_t)n >= sizeof(scratch_t)) {
        snprintf(r->msg, r->msg_size, "name too long");
        return -1;
    }
    for (int k = 0; g->shout && k < n; k++)
        text[k] = (char)toupper((unsigned char)text[k]);
    weft_result_string(r, text, (size_t)n);
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "greet",
    .version = "1.0.0",
    .description = "Greets every name of a list",
    .args = greet_args,
    .n_args = N_ARGS,
    .init = greet_init,
    .worker_init = greet_worker_init,
    .worker_fini = greet_worker_fini,
    .process_one = greet_process,
    .destroy = free,
};
