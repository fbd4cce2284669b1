/* SPDX-License-Identifier: MIT */
/*
 * Helpers any test program may use: tests/meson.build links test_util.c
 * into every test.  The helpers that run the weft binary are in e2e.h.
 */
#ifndef WEFT_TESTS_TEST_UTIL_H
#define WEFT_TESTS_TEST_UTIL_H

#include <cjson/cJSON.h>

/* rm -rf path without a shell: symlinks are removed, never followed.  0
 * (also when path does not exist), or -1. */
int remove_tree(const char *path);

/* text as one JSON value with nothing after it; fails the test, showing
 * the text, when it is not. */
cJSON *json_parse(const char *text);
/* The number o[key]; fails the test when o has no number there. */
double json_num(const cJSON *o, const char *key);
/* The string o[key]; fails the test when o has no string there. */
const char *json_str(const cJSON *o, const char *key);

#endif
