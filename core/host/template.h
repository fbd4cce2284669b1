/* SPDX-License-Identifier: MIT */
/*
 * Placeholders: the one grammar of every plugin, in file name templates
 * (noise_png's `name`) and in argv words (exec's `command`), and the
 * confinement check of output paths.
 *
 * A template is compiled once (in a plugin's init, through the host table)
 * and expanded per item, concurrently, without allocating.  Placeholders
 * (GNU parallel's spellings are aliases with the same meaning):
 *
 *   {}            the item text; a range item's number, in decimal ({path}
 *                 is the same)
 *   {.}           the text without the extension {ext} ("a/b.tar.gz" ->
 *                 "a/b.tar"; a trailing '/' stays: "d/x.y/" -> "d/x/")
 *   {/}  {name}   the base name of the text (basename(1))
 *   {//} {dir}    the folder of the text, as dirname(1) has it ("." when
 *                 there is none)
 *   {/.} {stem}   the base name without its last extension (".bashrc",
 *                 "." and ".." have none)
 *   {ext}         that extension with its dot, or "": {stem}{ext} == {name}
 *   {#}           the job's sequence number, 1-based: index + 1
 *   {%}           the job slot, 1..N: the worker running the item, plus 1.
 *                 argv words only (weft__tmpl_scan): it depends on
 *                 scheduling, and a file name must not
 *   {index}       the item's index (0-based input position)
 *   {number}      the item's number (== index for non-range sources)
 *   {index:0N} {number:0N} {#:0N}
 *                 the same, zero padded to at least N digits (after any
 *                 '-' sign), 1 <= N <= 20
 *   {{  }}        a literal brace
 *
 * The two syntaxes around them differ on purpose:
 *   - a file name template (weft__tmpl_compile) is all placeholders and
 *     literal text: any other {...}, a lone '{' or '}', or a bad :0N is a
 *     compile error naming it and its 1-based byte position (with a "did
 *     you mean" when a known name is close);
 *   - an argv word belongs to the plugin's own syntax (exec's quotes, a
 *     shell script), which calls weft__tmpl_scan at each brace: only a
 *     placeholder-shaped group ('{', bytes of [A-Za-z0-9_./#%:], '}') is a
 *     placeholder, and an unknown one an error; other braces are text, so
 *     awk '{print $1}' needs no escaping.
 * Expansion does not judge the result: the item text is data (a `lines:`
 * item may well hold "../").  Every expanded file path goes through
 * weft__path_confine_check (host->out_open does it) before it is used; an
 * argv word is checked by nothing, being exactly one argument, whatever
 * its bytes.
 *
 * No I/O anywhere here: compile, scan, expand and the check run on memory
 * only (they are fuzzed).
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
 *   -EINVAL        t, item or out is NULL, the item text (which the
 *                  template uses) holds a NUL byte within text_len, or t
 *                  uses {%} (from weft__tmpl_scan: expand it with a slot)
 * Thread-safe for one t shared by many threads; never allocates.
 */
int weft__tmpl_expand(const weft__tmpl_t *t, const weft_item_t *item, char *out,
                      size_t outsz);

/*
 * The same, with the job slot for {%} (1..N; 0: none, and then a t using
 * {%} is -EINVAL), and snprintf's contract on size: returns the full
 * length of the expansion even when it is outsz or more (out then holds ""
 * when outsz > 0: grow the buffer and call again), or -EINVAL as above, or
 * -E2BIG past INT_MAX bytes.
 */
int weft__tmpl_expand_slot(const weft__tmpl_t *t, const weft_item_t *item, unsigned slot,
                           char *out, size_t outsz);

/*
 * One placeholder in a plugin's own syntax: text[pos] is a brace.
 *   1   text[pos, pos + *len) is a placeholder (of the shape above), compiled
 *       into *t: a one-placeholder template, {%} allowed; free it with
 *       weft__tmpl_free
 *   0   the brace is literal, standing for itself, and takes *len bytes: 2
 *       for {{ and }} (one brace), else 1 (a '}', or a '{' that does not
 *       start a placeholder-shaped group); *t = NULL
 *   -EINVAL  placeholder-shaped but unknown or with a bad width: err says
 *       which, at position pos + 1, with a "did you mean"; or text[pos] is
 *       not a brace
 *   -ENOMEM
 * The scan stops at a NUL; a group longer than WEFT__TMPL_TEXT_MAX is not
 * placeholder-shaped.
 */
int weft__tmpl_scan(const char *text, size_t pos, size_t *len, weft__tmpl_t **t,
                    char *err, size_t errlen);

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
