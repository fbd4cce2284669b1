/* SPDX-License-Identifier: MIT */
/* Discovery: what a plugin is and takes (`weft describe`), which plugins
 * the search path holds (`weft plugins`). */
#ifndef WEFT_CORE_DESCRIBE_H
#define WEFT_CORE_DESCRIBE_H

#include <stdio.h>

#include "loader.h"

/* Name, version, description, file, flags, every argument (type, default
 * or required, range, choices, help), and a ready-to-paste [args] block.
 * Each default is checked as a config's value would be: -EINVAL when one
 * would not bind (the output says which and why), else 0. */
int weft__describe(FILE *f, const weft__plugin_t *p);

/* One line per plugin found in dirs, in search order; a name shadowed by
 * an earlier folder is listed once (the one a config would load).  Files
 * that fail to load are listed with the reason.  Returns the number of
 * plugins that loaded. */
size_t weft__list_plugins(FILE *f, char *const *dirs, size_t n_dirs);

/* The names weft__list_plugins would list, one per line, without loading
 * the files (for shell completion).  Returns how many. */
size_t weft__list_plugin_names(FILE *f, char *const *dirs, size_t n_dirs);

#endif
