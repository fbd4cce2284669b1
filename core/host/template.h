/* SPDX-License-Identifier: MIT */
/*
 * File name templates and the confinement check of output paths.
 *
 * A template is compiled once (in a plugin's init, through the host table)
 * and expanded per item, concurrently, without allocating.  Placeholders:
 *
 *   {}            the item text; a range item's number, in decimal
 *   {index}       the item's index (0-based input position)
 *   {index:0N}    the same, zero padded to at least N digits, 1 <= N <= 20
 *   {number}      the item's number (== index for non-range sources)
 *   {number:0N}   the same, zero padded after any '-' sign
 *   {name}        the base name of the text (basename(1))
 *   {stem}        the base name without its last extension (".bashrc",
 *                 "." and ".." have none)
 *   {ext}         that extension with its dot, or "": {stem}{ext} == {name}
 *   {dir}         the folder of the text, as dirname(1) has it ("." when
 *                 there is none)
 *   {{  }}        a literal brace
 *
 * Any other {...}, a lone '{' or '}', or a bad :0N is a compile error
 * naming the placeholder and its 1-based byte position.  Expansion does not
 * judge the result: the item text is data (a `lines:` item may well hold
 * "../"), so every expanded path goes through weft__path_confine_check
 * (host->out_open does it) before it is used.
 *
 * No I/O anywhere here: compile, expand and the check run on memory only
 * (they are fuzzed).
 */
#ifndef WEFT_CORE_TEMPLATE_H
#define WEFT_CORE_TEMPLATE_H

#include <stddef.h>

#include "weft/plugin.h"

/* The host table's weft_tmpl_t is this type. */
typedef struct weft_tmpl weft__tmpl_t;

/* The longest template text accepted (bytes); longer is -ENAMETOOLONG. */
#define WEFT__TMPL_TEXT_MAX 4096

/*
 * Compiles `text` (NUL-terminated).  0 and *t set (free it with
 * weft__tmpl_free), or *t = NULL and:
 *   -EINVAL        syntax: unknown placeholder, lone brace, bad padding;
 *                  err says which and where ("unknown placeholder '{foo}'
 *                  at position 7 (known: ...)")
 *   -ENAMETOOLONG  text longer than WEFT__TMPL_TEXT_MAX
 *   -ENOMEM
 * err may be NULL / errlen 0.
 */
int weft__tmpl_compile(weft__tmpl_t **t, const char *text, char *err, size_t errlen);

/*
 * Expands t for item into out (outsz bytes, NUL-terminated).  Returns the
 * length (>= 0), or:
 *   -ENAMETOOLONG  the expansion needs more than outsz - 1 bytes (out then
 *                  holds "" when outsz > 0)
 *   -EINVAL        t, item or out is NULL, or the item text (which the
 *                  template uses) holds a NUL byte within text_len
 * Thread-safe for one t shared by many threads; never allocates.
 */
int weft__tmpl_expand(const weft__tmpl_t *t, const weft_item_t *item, char *out,
                      size_t outsz);

/* Frees; *t becomes NULL.  NULL and *t == NULL are fine. */
void weft__tmpl_free(weft__tmpl_t **t);

/*
 * The confinement rules of output paths, on text only (symlinks are
 * handled by the walk in out_open).  Rejects, with err saying why and
 * where: empty, absolute ("/..."), any ".." component, a component longer
 * than NAME_MAX, a total longer than PATH_MAX - 1, a path with no file
 * name ("." , "./", "a/": only "." components, or a trailing '/'), and any
 * component weft keeps for itself (weft__outdir_reserved: ".weft.lock",
 * ".weft-journal", a temporary's name).
 * "a//b" and "./a" are accepted, as the kernel reads them.
 * 0, -EINVAL or -ENAMETOOLONG.  err may be NULL / errlen 0.
 */
int weft__path_confine_check(const char *rel, char *err, size_t errlen);

/* The same on n bytes that need not be NUL-terminated; a NUL byte among
 * them is rejected (-EINVAL).  For fuzzers and callers holding lengths. */
int weft__path_confine_check_n(const char *rel, size_t n, char *err, size_t errlen);

#endif
