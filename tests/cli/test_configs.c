/* SPDX-License-Identifier: MIT */
/*
 * Every config shipped in configs/ runs cleanly: a copy of the folder is
 * run from a temporary place (so outputs never land in the source tree),
 * each job must exit 0 with no failed item, and a file it writes must be
 * well formed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

static const char *copy;

static int setup(void **state)
{
    (void)state;
    const char *tmp = e2e_setup("configs");
    if (!tmp)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s/configs' '%s/configs'", getenv("WEFT_SOURCE_ROOT"),
             tmp);
    if (system(cmd) != 0)
        return -1;
    copy = strdup(e2e_path("configs"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup();
    free((void *)copy);
    return 0;
}

/* The value of `key` in a config's [run] section, or NULL. */
static char *run_key(const char *path, const char *key)
{
    char *text = e2e_slurp(path, NULL), *found = NULL;
    bool in_run = false;
    for (char *line = strtok(text, "\n"); line && !found; line = strtok(NULL, "\n")) {
        if (line[0] == '[')
            in_run = strncmp(line, "[run]", 5) == 0;
        size_t n = strlen(key);
        if (in_run && strncmp(line, key, n) == 0 && strchr(" =", line[n])) {
            char *v = strchr(line, '=') + 1;
            v += strspn(v, " ");
            found = strdup(v);
        }
    }
    free(text);
    return found;
}

static void check_output_file(const char *config, const char *output)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", copy, output);
    size_t len;
    char *data = e2e_slurp(path, &len);
    if (!data)
        fail_msg("%s: no output file %s", config, output);
    size_t n = strlen(output);
    if (n > 4 && strcmp(output + n - 4, ".npy") == 0) {
        assert_memory_equal(data, "\x93NUMPY", 6);
    } else if (n > 5 && strcmp(output + n - 5, ".json") == 0) {
        cJSON *j = cJSON_Parse(data);
        if (!j)
            fail_msg("%s: %s is not JSON", config, output);
        cJSON_Delete(j);
    }
    free(data);
}

static void every_shipped_config_runs(void **state)
{
    (void)state;
    DIR *d = opendir(copy);
    assert_non_null(d);
    int ran = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".ini") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", copy, e->d_name);
        e2e_outcome_t o = E2E_RUN("run", path);
        if (o.status != 0 || !strstr(o.err, " 0 failed"))
            fail_msg("%s: exit %d\n%s", e->d_name, o.status, o.err);
        char *output = run_key(path, "output");
        if (output && strcmp(output, "-") != 0 && strcmp(output, "none") != 0)
            check_output_file(e->d_name, output);
        else if (output && strcmp(output, "-") == 0)
            assert_true(o.out && o.out[0]); /* something on stdout */
        print_message("%-24s ok\n", e->d_name);
        free(output);
        e2e_free(&o);
        ran++;
    }
    closedir(d);
    assert_true(ran >= 8); /* the folder was really read */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_shipped_config_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
