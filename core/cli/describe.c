/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "describe.h"

static const char *type_name(weft_arg_type_t t)
{
    switch (t) {
    case WEFT_ARG_INT: return "int";
    case WEFT_ARG_FLOAT: return "float";
    case WEFT_ARG_BOOL: return "bool";
    case WEFT_ARG_STRING: return "string";
    case WEFT_ARG_PATH: return "path";
    case WEFT_ARG_OUTDIR: return "output folder";
    }
    return "?";
}

int weft__describe(FILE *f, const weft__plugin_t *p)
{
    int bad = 0;
    const weft_plugin_t *d = &p->desc;
    fprintf(f, "%s %s: %s\n", d->name, d->version ? d->version : "",
            d->description ? d->description : "");
    fprintf(f, "file: %s\n", p->path);
    if (d->flags & WEFT_PLUGIN_IO_BOUND)
        fprintf(f, "I/O-bound: the default thread count is 4 per CPU\n");
    else if (d->flags & WEFT_PLUGIN_WAITS)
        fprintf(f, "waits: items wait on other processes or devices (more threads than CPUs "
                   "is fine)\n");
    if (d->flags & WEFT_PLUGIN_REDUCES)
        fprintf(f, "reduces: finish sums up every item in one process (no isolate = process, "
                   "no --resume)\n");
    if (d->row_spec)
        fprintf(f, "array output: writes rows of a .npy file in place (output = FILE.npy)\n");
    if (d->flags & WEFT_PLUGIN_TASK_ARGS)
        fprintf(f, "[task]: any KEY = VALUE there is handed on, as text, to the task it "
                   "runs\n");
    if (!d->n_args) {
        fprintf(f, "\nno arguments\n");
        return 0;
    }
    fprintf(f, "\narguments:\n");
    for (size_t k = 0; k < d->n_args; k++) {
        const weft_arg_spec_t *a = &d->args[k];
        fprintf(f, "  %-16s %-6s ", a->name, type_name(a->type));
        if (a->default_value)
            fprintf(f, "default %s", a->default_value[0] ? a->default_value : "\"\"");
        else
            fprintf(f, "REQUIRED");
        if (a->min < a->max && a->type == WEFT_ARG_INT) /* ints as ints, not 1e+06 */
            fprintf(f, ", from %.0f to %.0f", a->min, a->max);
        else if (a->min < a->max)
            fprintf(f, ", from %.17g to %.17g", a->min, a->max);
        const char *choices =
            d->arg_choices && a->type == WEFT_ARG_STRING ? d->arg_choices[k] : NULL;
        if (choices)
            fprintf(f, ", one of %s", choices);
        fprintf(f, "\n  %-16s %s\n", "", a->help ? a->help : "");
        char why[256];
        if (a->default_value && weft__arg_check(d, k, a->default_value, why, sizeof why)) {
            fprintf(f, "  %-16s BAD DEFAULT '%s': %s\n", "", a->default_value, why);
            bad = 1;
        }
    }
    /* Ready to paste: defaults set, required ones to fill in. */
    fprintf(f, "\n[args]\n");
    for (size_t k = 0; k < d->n_args; k++) {
        const weft_arg_spec_t *a = &d->args[k];
        if (a->default_value)
            fprintf(f, "%s = %s\n", a->name, a->default_value);
        else
            fprintf(f, "%s =            ; required: %s\n", a->name, a->help ? a->help : "");
    }
    if (d->flags & WEFT_PLUGIN_TASK_ARGS)
        fprintf(f, "\n[task]              ; the task's own arguments, e.g.\n; size = 100\n");
    return bad ? -EINVAL : 0;
}

static int is_plugin_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 3 && e->d_name[0] != '.' && strcmp(e->d_name + n - 3, ".so") == 0;
}

static bool contains(char *const *names, size_t n, const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(names[k], name) == 0)
            return true;
    return false;
}

static void list_one(FILE *f, char *dir, const char *name, size_t *loaded)
{
    weft__plugin_t *p = NULL;
    char err[1024];
    if (weft__plugin_open(&p, name, &dir, 1, err, sizeof err) != 0) {
        fprintf(f, "%-14s cannot load: %s\n", name, err);
        return;
    }
    const weft_plugin_t *d = &p->desc;
    fprintf(f, "%-14s %-8s %s\n%-23s (%s)\n", d->name, d->version ? d->version : "",
            d->description ? d->description : "", "", p->path);
    weft__plugin_close(&p);
    ++*loaded;
}

/* Names only: no dlopen, so no plugin code runs (completion calls this). */
static size_t list(FILE *f, char *const *dirs, size_t n_dirs, bool names_only)
{
    char **seen = NULL;
    size_t n_seen = 0, loaded = 0;
    for (size_t i = 0; i < n_dirs; i++) {
        struct dirent **files = NULL;
        int n = scandir(dirs[i], &files, is_plugin_file, alphasort);
        for (int k = 0; k < n; k++) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(strlen(files[k]->d_name) - 3),
                     files[k]->d_name);
            free(files[k]);
            /* An earlier folder's plugin of the same name is the one used. */
            if (contains(seen, n_seen, name))
                continue;
            char **grown = realloc(seen, (n_seen + 1) * sizeof *seen);
            if (!grown || !(grown[n_seen] = strdup(name))) {
                seen = grown ? grown : seen;
                continue; /* out of memory: this one is skipped */
            }
            seen = grown;
            n_seen++;
            if (names_only) {
                fprintf(f, "%s\n", name);
                loaded++;
            } else {
                list_one(f, dirs[i], name, &loaded);
            }
        }
        free(files);
    }
    for (size_t s = 0; s < n_seen; s++)
        free(seen[s]);
    free(seen);
    return loaded;
}

size_t weft__list_plugins(FILE *f, char *const *dirs, size_t n_dirs)
{
    return list(f, dirs, n_dirs, false);
}

size_t weft__list_plugin_names(FILE *f, char *const *dirs, size_t n_dirs)
{
    return list(f, dirs, n_dirs, true);
}
