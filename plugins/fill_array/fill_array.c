/* SPDX-License-Identifier: MIT */
/*
 * fill_array: row i of a (items, columns) float64 array, computed from i.
 *
 * With `output = FILE.npy` the runner creates the array file, maps it and
 * hands each item its row: the plugin writes straight into the output, no
 * copy.  With JSON output each item's value is its row as a list (add
 * `flatten = true` to get one flat list of numbers).
 *
 *   function = linear   row[j] = i * scale + j
 *   function = sin      row[j] = sin(i * scale * (j + 1))
 */
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/plugin.h>

enum { ARG_COLUMNS, ARG_FUNCTION, ARG_SCALE, N_ARGS };

static const weft_arg_spec_t fill_args[] = {
    [ARG_COLUMNS] = {.name = "columns", .type = WEFT_ARG_INT, .default_value = "8",
                     .help = "values per row", .min = 1, .max = 1 << 20},
    [ARG_FUNCTION] = {.name = "function", .type = WEFT_ARG_STRING, .default_value = "linear",
                      .help = "linear: i*scale + j; sin: sin(i*scale*(j+1))"},
    [ARG_SCALE] = {.name = "scale", .type = WEFT_ARG_FLOAT, .default_value = "1",
                   .help = "multiplies the row number"},
};

typedef struct fill_state {
    uint64_t columns;
    bool sine;
    double scale;
} fill_state_t;

/* Scratch for rows returned as JSON lists. */
typedef struct fill_worker {
    alignas(64) double *row;
    char *text;
    size_t text_size;
} fill_worker_t;

static int fill_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                     char *msg, size_t msg_size)
{
    (void)host;
    const char *fn = args[ARG_FUNCTION].u.s;
    if (strcmp(fn, "linear") != 0 && strcmp(fn, "sin") != 0) {
        snprintf(msg, msg_size, "function = '%s': expected linear or sin", fn);
        return -1;
    }
    fill_state_t *s = malloc(sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    s->columns = (uint64_t)args[ARG_COLUMNS].u.i;
    s->sine = fn[0] == 's';
    s->scale = args[ARG_SCALE].u.f;
    *state = s;
    return 0;
}

static int fill_row_spec(void *state, weft_row_spec_t *spec, char *msg, size_t msg_size)
{
    (void)msg, (void)msg_size;
    const fill_state_t *s = state;
    spec->dtype = WEFT_DTYPE_F64;
    spec->row_len = s->columns;
    return 0;
}

static int fill_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                            char *msg, size_t msg_size)
{
    (void)worker, (void)workers;
    const fill_state_t *s = state;
    fill_worker_t *w = aligned_alloc(64, sizeof *w);
    if (w) {
        w->row = malloc(s->columns * sizeof *w->row);
        w->text_size = s->columns * 26 + 3; /* "%.17g," is at most 25 bytes */
        w->text = malloc(w->text_size);
    }
    if (!w || !w->row || !w->text) {
        if (w) {
            free(w->row);
            free(w->text);
        }
        free(w);
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    *ctx = w;
    return 0;
}

static void fill_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)state, (void)worker;
    fill_worker_t *w = ctx;
    free(w->row);
    free(w->text);
    free(w);
}

static void fill(const fill_state_t *s, int64_t i, double *row)
{
    double x = (double)i * s->scale;
    for (uint64_t j = 0; j < s->columns; j++)
        row[j] = s->sine ? sin(x * (double)(j + 1)) : x + (double)j;
}

static int fill_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    const fill_state_t *s = state;
    fill_worker_t *w = ctx;
    if (r->row) { /* array output: straight into the file */
        fill(s, item->number, r->row);
        return 0;
    }
    fill(s, item->number, w->row);
    size_t n = 0;
    w->text[n++] = '[';
    for (uint64_t j = 0; j < s->columns; j++)
        n += (size_t)snprintf(w->text + n, w->text_size - n, "%s%.17g", j ? "," : "", w->row[j]);
    w->text[n++] = ']';
    weft_result_json(r, w->text, n);
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "fill_array",
    .version = "1.0.0",
    .description = "Rows of a float64 array computed from the row number (.npy in place)",
    .args = fill_args,
    .n_args = N_ARGS,
    .arg_choices = (const char *const[]){[ARG_FUNCTION] = "linear|sin", [ARG_SCALE] = NULL},
    .init = fill_init,
    .worker_init = fill_worker_init,
    .worker_fini = fill_worker_fini,
    .process_one = fill_process,
    .destroy = free,
    .row_spec = fill_row_spec,
};
