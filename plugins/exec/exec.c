/* SPDX-License-Identifier: MIT */
/*
 * exec: runs a command per item, GNU parallel style; the command's output
 * (or its exit status) is the item's value.
 *
 * `command` is an argv template, split into words once, at init, by a small
 * subset of sh that expands nothing:
 *   - blanks (space, tab, newline, CR, VT, FF) outside quotes end a word;
 *   - '...' groups, and everything inside is literal, backslash included;
 *   - "..." groups; inside, a backslash escapes only " \ $ and ` and is kept
 *     before anything else ("%s\n" reaches printf as %s\n);
 *   - outside quotes, a backslash makes the next character literal;
 *   - $VAR, $(...), `...`, globs and ~ are plain text: there is no shell;
 *   - '' or "" is an empty word; an open quote or a trailing backslash is an
 *     init error giving its position (1-based, in bytes).
 * Placeholders are the host's (host->tmpl_scan, the grammar of file name
 * templates: one implementation, one meaning per name), recognised
 * anywhere in a word, quoted or not (quotes only group):
 *   {}  the item text (a range item's number; {path} is the same)
 *   {.}  the text without its extension       a/b.tar.gz -> a/b.tar
 *   {/}  {name}  the base name                 a/b.tar.gz -> b.tar.gz
 *   {//} {dir}   the folder, as dirname(1)     a/b.tar.gz -> a   (b -> .)
 *   {/.} {stem}  the base name without its last extension -> b.tar
 *   {ext}  that extension with its dot, or nothing          -> .gz
 *   {#}  the sequence number, 1-based (index + 1)
 *   {%}  the job slot, 1..threads: the worker's number + 1; no two
 *        running commands have the same slot
 *   {index} {number}, and {index:0N} {number:0N} {#:0N} zero padded
 * The extension is that of the base name (".bashrc" has none, "x.d/" has
 * ".d"); unlike GNU parallel, a dot-file's {.} is itself.  {{ and }} are
 * literal braces, as is a brace escaped by a backslash outside quotes.  A
 * group '{' [A-Za-z0-9_./#%:]* '}' that is not a placeholder is an init
 * error with a "did you mean"; other braces are plain text, so awk
 * '{print $1}' needs no escaping.  A template without a placeholder gets
 * {} appended as its last word.  A value is always exactly its own bytes
 * inside its word: never split, never parsed, whatever it holds (spaces,
 * quotes, $, newlines, a leading '-': a command that takes options sees an
 * item "-n" as one, as it would from any argv; write `--` before {} when
 * that matters).  Unlike a file name template, nothing confines a value:
 * an argument is not a path weft opens, so "../x" is passed as it is.
 *
 * shell = true runs `/bin/sh -c SCRIPT sh VALUE...` instead.  The template
 * is the script, as written, except that each placeholder becomes a
 * reference to the positional parameter holding its value, quoted for where
 * it stands: "${1}" outside quotes, ${1} inside "...", '"${1}"' inside '...'
 * (${NAME} is the shell's, not a placeholder).  Each distinct placeholder
 * (by its text: {/.} and {stem} are two) is one parameter, numbered in the
 * order of first use.  An item's text is thus never shell code.  The
 * scanner follows quotes, backslashes, $(...) and `...`; a construct it
 * misreads (a case pattern's ')' in a $(...), a here-document) can make a
 * value split or glob, never run.
 *
 * Children are started with posix_spawnp, which glibc implements as a
 * clone(CLONE_VM | CLONE_VFORK) running only async-signal-safe code before
 * execve: safe from many worker threads at once, unlike fork() with its
 * copied locks.  Every pipe is made O_CLOEXEC by pipe2, and the child also
 * closes every descriptor above 2: a child of worker A holding the write end
 * of worker B's pipe would keep B reading until A's child exits.  Each child
 * leads its own process group so that a timeout or max_output kills what it
 * started too; it gets an empty signal mask (pool workers block every
 * signal, and a mask is inherited), the default actions of SIGPIPE (a
 * launcher may leave it ignored) and of SIGINT, SIGTERM and SIGHUP (worker
 * processes ignore those three, and ignoring is inherited), stdin from
 * /dev/null, and `cwd` (opened once at init) as its working folder.
 *
 * Per worker: the argv strings, the output buffer and the spawn attributes
 * are reused; what an item allocates is what posix_spawn itself does (its
 * file actions list and the child's stack).
 *
 * The value is the captured output without its last newline (as $(...)
 * has it), or exactly the output when the run writes values as they are
 * (format = raw, host->values_raw: weft then prints what GNU parallel
 * prints for commands that succeed; a failed command's output is not its
 * value, so it is not printed, and capture = none prints nothing).
 *
 * Outcomes: exit status 0 is ok; anything else fails the item with "exit
 * status N", "killed by signal N (SIGNAME)", "cannot run 'NAME': strerror"
 * (posix_spawnp's error: not found, not executable), "timed out after S s"
 * or "output over max_output (N bytes)".  With capture = stdout+stderr both
 * go to one pipe, so the value keeps the order they were written in, and a
 * failure adds the first non-blank line of that output (at most 200 bytes).
 *
 * Stopping: a wait wakes every 100 ms to ask the host whether to stop
 * ([run] timeout, halt = now) and then kills the child's group.  Each child
 * is announced to the host (child_started / child_ended), in thread and
 * process mode alike (a worker process announces into a table its
 * supervisor shares), and so:
 *   - the first SIGINT, SIGTERM or SIGHUP weft gets is forwarded to the
 *     child's group, once: a Ctrl-C at the terminal reaches the command as
 *     if it ran in the foreground (its own group keeps the terminal's from
 *     reaching it directly).  A command that then fails (killed by the
 *     signal, or exiting nonzero because of it) leaves its item *not run*:
 *     no record, no journal entry, so `--resume` runs it again, and the
 *     run's output is the same as if it had never been interrupted.  A
 *     command that ignores the signal and succeeds is done, as any other;
 *     one that ignores it and runs on holds the run until it ends or a
 *     second signal comes;
 *   - a second signal, a crash in thread mode, or the death of the worker
 *     process that started it (isolate = process: a crash, [run] timeout,
 *     halt = now) SIGKILLs the group: nothing the command started runs on
 *     under PID 1.
 *
 * Limits: an item's output ends at EOF, so without a timeout a background
 * process that keeps the pipe open holds its item until it exits.  A
 * command started in the instant between posix_spawn and child_started,
 * when weft or its worker process is SIGKILLed, is not known to weft.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, sigabbrev_np, addfchdir_np: also when built alone */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft/plugin.h>

#include "waiting.h" /* now, poll_ms, host_stopping, track, untrack */

extern char **environ;

enum { ARG_COMMAND, ARG_SHELL, ARG_CAPTURE, ARG_MAX_OUTPUT, ARG_TIMEOUT, ARG_CWD };

/* The shipped plugins' layout, a few fields a line. */
/* clang-format off */
static const weft_arg_spec_t exec_args[] = {
    [ARG_COMMAND] = {.name = "command", .type = WEFT_ARG_STRING,
                     .help = "argv template: quotes group, no expansion; {} {.} {/} {//} "
                             "{/.} {#} {%} {name} {ext} {index:0N} ...; no placeholder "
                             "appends {}"},
    [ARG_SHELL] = {.name = "shell", .type = WEFT_ARG_BOOL, .default_value = "false",
                   .help = "run /bin/sh -c COMMAND, placeholders passed as positional "
                           "parameters"},
    [ARG_CAPTURE] = {.name = "capture", .type = WEFT_ARG_STRING,
                     .default_value = "stdout",
                     .help = "the value: stdout, stdout+stderr (as 2>&1), or none (the "
                             "exit status)"},
    [ARG_MAX_OUTPUT] = {.name = "max_output", .type = WEFT_ARG_INT,
                        .default_value = "1048576",
                        .help = "bytes of output an item may capture; more fails it",
                        .min = 0, .max = 256 << 20},
    [ARG_TIMEOUT] = {.name = "timeout", .type = WEFT_ARG_FLOAT, .default_value = "0",
                     .help = "seconds before the command is killed; 0: no limit",
                     .min = 0, .max = 1e6},
    [ARG_CWD] = {.name = "cwd", .type = WEFT_ARG_PATH, .default_value = ".",
                 .help = "working folder of the commands (default: the config's folder)"},
};
/* clang-format on */

typedef enum capture { CAPTURE_NONE, CAPTURE_STDOUT, CAPTURE_BOTH } capture_t;

enum { FIRST_LINE_MAX = 200, NEST_MAX = 32 };

/* What a piece of a word is: literal bytes (ph == PH_LIT) or the value of
 * placeholder ph - 1 of the template's list. */
#define PH_LIT 0u

typedef struct piece {
    uint32_t ph;  /* PH_LIT, or 1 + an index into tpl_t.ph       */
    uint32_t off; /* PH_LIT: bytes [off, off + len) of lit       */
    uint32_t len;
} piece_t;

/* A distinct placeholder of the command, as the host compiled it; its text
 * ("{/.}") tells two apart, and in shell mode its position in the list is
 * its positional parameter (${1} is the first). */
typedef struct ph {
    weft_tmpl_t *t;
    char *text;
} ph_t;

/* The template, split: word k is pieces [word_end[k - 1], word_end[k]). */
typedef struct tpl {
    piece_t *pieces;
    size_t n_pieces, cap_pieces;
    char *lit;
    size_t n_lit, cap_lit;
    size_t *word_end;
    size_t n_words, cap_words;
    bool in_word;
    ph_t *ph; /* the distinct placeholders, in order of first use */
    size_t n_ph, cap_ph;
    const weft_host_t *host; /* compiles and frees them */
} tpl_t;

typedef struct exec_state {
    const weft_host_t *host;
    tpl_t t;
    capture_t capture;
    bool shell;
    bool exact; /* format = raw: the output as it is, last newline kept */
    size_t max_output;
    double timeout;
    int cwd_fd;
} exec_state_t;

typedef struct exec_worker {
    alignas(64) const exec_state_t *s; /* own cache line: see aligned_alloc */
    posix_spawnattr_t attr;
    char **argv;     /* n_words + 1                                       */
    size_t *arg_off; /* argv[k] = args + arg_off[k], fixed up after growth */
    char *args;
    size_t args_cap;
    char *out; /* captured output; never more than max_output + 1 bytes */
    size_t out_cap;
    unsigned slot; /* {%}: the worker's number + 1 */
} exec_worker_t;

/* ---- building the template ------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int tpl_piece(tpl_t *t, uint32_t ph, uint32_t off, uint32_t len)
{
    if (grow((void **)&t->pieces, &t->cap_pieces, t->n_pieces + 1, sizeof *t->pieces))
        return -1;
    t->pieces[t->n_pieces++] = (piece_t){ph, off, len};
    t->in_word = true;
    return 0;
}

/* Starts a word without content yet: '' is a word. */
static void tpl_begin(tpl_t *t)
{
    t->in_word = true;
}

/* Appends literal bytes to the current word, extending its last piece
 * when that is the literal just before. */
static int tpl_lit(tpl_t *t, const char *s, size_t n)
{
    if (t->n_lit + n > UINT32_MAX || grow((void **)&t->lit, &t->cap_lit, t->n_lit + n, 1))
        return -1;
    memcpy(t->lit + t->n_lit, s, n);
    size_t first = t->n_words ? t->word_end[t->n_words - 1] : 0;
    piece_t *last = t->n_pieces > first ? &t->pieces[t->n_pieces - 1] : NULL;
    if (last && last->ph == PH_LIT && last->off + last->len == t->n_lit)
        last->len += (uint32_t)n;
    else if (tpl_piece(t, PH_LIT, (uint32_t)t->n_lit, (uint32_t)n))
        return -1;
    t->n_lit += n;
    t->in_word = true;
    return 0;
}

static int tpl_end(tpl_t *t)
{
    if (!t->in_word)
        return 0;
    if (grow((void **)&t->word_end, &t->cap_words, t->n_words + 1, sizeof *t->word_end))
        return -1;
    t->word_end[t->n_words++] = t->n_pieces;
    t->in_word = false;
    return 0;
}

static int tpl_word(tpl_t *t, const char *s)
{
    tpl_begin(t);
    return tpl_lit(t, s, strlen(s)) || tpl_end(t) ? -1 : 0;
}

static void tpl_free(tpl_t *t)
{
    for (size_t k = 0; k < t->n_ph; k++) {
        t->host->tmpl_free(t->ph[k].t);
        free(t->ph[k].text);
    }
    free(t->ph);
    free(t->pieces);
    free(t->lit);
    free(t->word_end);
    *t = (tpl_t){0};
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int nomem(char *msg, size_t msg_size)
{
    snprintf(msg, msg_size, "out of memory");
    return -1;
}

/*
 * The placeholder t, of text cmd[at, at + n): its number in the list (1 +
 * its index), added unless the same text is there already (t is then
 * freed).  0 when out of memory (t freed too).
 */
static uint32_t tpl_ph(tpl_t *t, weft_tmpl_t *tm, const char *cmd, size_t at, size_t n)
{
    for (size_t k = 0; k < t->n_ph; k++)
        if (strlen(t->ph[k].text) == n && memcmp(t->ph[k].text, cmd + at, n) == 0) {
            t->host->tmpl_free(tm);
            return (uint32_t)k + 1;
        }
    char *text = malloc(n + 1);
    if (!text || grow((void **)&t->ph, &t->cap_ph, t->n_ph + 1, sizeof *t->ph)) {
        free(text);
        t->host->tmpl_free(tm);
        return 0;
    }
    memcpy(text, cmd + at, n);
    text[n] = '\0';
    t->ph[t->n_ph++] = (ph_t){tm, text};
    return (uint32_t)t->n_ph;
}

/*
 * At cmd[i], a brace, read by the host's placeholder grammar: sets *adv to
 * the bytes it takes and returns PH_LIT with *c the one literal character
 * it stands for (a plain brace, or {{ / }}), a placeholder's number
 * (tpl_ph), or -1 with msg (unknown, bad width, out of memory).
 */
static long scan_brace(tpl_t *t, const char *cmd, size_t i, bool after_dollar, size_t *adv,
                       char *c, char *msg, size_t msg_size)
{
    const weft_host_t *h = t->host;
    weft_tmpl_t *tm = NULL;
    char why[768] = "";
    int rc = h->tmpl_scan(h, cmd, i, adv, &tm, why, sizeof why);
    *c = cmd[i];
    if (rc == 0)
        return PH_LIT;
    if (rc < 0) {
        snprintf(msg, msg_size, "command: %s%s", why,
                 after_dollar ? "; there is no $ expansion unless shell = true" : "");
        return -1;
    }
    uint32_t ph = tpl_ph(t, tm, cmd, i, *adv);
    return ph ? (long)ph : nomem(msg, msg_size);
}

/* Adds {} as the template's only placeholder (a command without any gets
 * the item as its last argument).  0 or -1. */
static int add_default(tpl_t *t, char *msg, size_t msg_size)
{
    weft_tmpl_t *tm = NULL;
    size_t len = 0;
    if (t->host->tmpl_scan(t->host, "{}", 0, &len, &tm, msg, msg_size) != 1)
        return -1;
    return tpl_ph(t, tm, "{}", 0, 2) ? 0 : -1;
}

/* Splits a non-shell template into words; see the top of the file. */
static int parse_words(tpl_t *t, const char *cmd, char *msg, size_t msg_size)
{
    enum { Q_NONE, Q_SINGLE, Q_DOUBLE } q = Q_NONE;
    size_t q_at = 0;
    bool dollar = false; /* the previous character was a plain '$' */
    for (size_t i = 0; cmd[i];) {
        char c = cmd[i];
        bool was_dollar = dollar;
        dollar = false;
        if (c == '{' || c == '}') {
            size_t adv;
            char lit;
            long ph = scan_brace(t, cmd, i, was_dollar, &adv, &lit, msg, msg_size);
            if (ph < 0)
                return -1;
            if (ph == PH_LIT ? tpl_lit(t, &lit, 1) : tpl_piece(t, (uint32_t)ph, 0, 0))
                return nomem(msg, msg_size);
            i += adv;
            continue;
        }
        if (q == Q_SINGLE) {
            if (c == '\'')
                q = Q_NONE;
            else if (tpl_lit(t, &c, 1))
                return nomem(msg, msg_size);
            i++;
            continue;
        }
        if (c == '\\') {
            char next = cmd[i + 1];
            if (!next) {
                snprintf(msg, msg_size,
                         "command: backslash at position %zu escapes nothing", i + 1);
                return -1;
            }
            bool escapes =
                q == Q_NONE || next == '"' || next == '\\' || next == '$' || next == '`';
            /* Outside quotes or before one of those four, the next byte is
             * taken as is; otherwise the backslash is kept and the next
             * byte read normally (it may be a quote or a brace). */
            if (escapes ? tpl_lit(t, &next, 1) : tpl_lit(t, &c, 1))
                return nomem(msg, msg_size);
            i += escapes ? 2 : 1;
            continue;
        }
        if (q == Q_DOUBLE) {
            if (c == '"')
                q = Q_NONE;
            else if (tpl_lit(t, &c, 1))
                return nomem(msg, msg_size);
            dollar = c == '$';
            i++;
            continue;
        }
        if (is_blank(c)) {
            if (tpl_end(t))
                return nomem(msg, msg_size);
        } else if (c == '\'' || c == '"') {
            q = c == '\'' ? Q_SINGLE : Q_DOUBLE;
            q_at = i;
            tpl_begin(t);
        } else {
            if (tpl_lit(t, &c, 1))
                return nomem(msg, msg_size);
            dollar = c == '$';
        }
        i++;
    }
    if (q != Q_NONE) {
        snprintf(msg, msg_size,
                 "command: unbalanced %c: the quote at position %zu is never closed",
                 q == Q_SINGLE ? '\'' : '"', q_at + 1);
        return -1;
    }
    if (tpl_end(t))
        return nomem(msg, msg_size);
    return 0;
}

/*
 * shell = true: the script, placeholders turned into positional parameter
 * references quoted for their context.  Placeholder k of t's list (its
 * first use is its place there) is parameter k + 1.
 */
static int parse_script(tpl_t *t, const char *cmd, char *msg, size_t msg_size)
{
    enum { Q_NONE, Q_SINGLE, Q_DOUBLE };
    enum { END, PAREN, BACKTICK };
    struct frame {
        int q, closer;
        unsigned parens;
        size_t q_at, at;
    } st[NEST_MAX] = {{Q_NONE, END, 0, 0, 0}};
    int top = 0;
    bool dollar = false;
    tpl_begin(t);
    for (size_t i = 0; cmd[i];) {
        struct frame *f = &st[top];
        char c = cmd[i];
        bool was_dollar = dollar;
        dollar = false;
        if (c == '{' && was_dollar && f->q != Q_SINGLE) {
            /* ${NAME...}: the shell's parameter expansion, copied to its '}'. */
            const char *end = strchr(cmd + i, '}');
            size_t n = end ? (size_t)(end - cmd - i) + 1 : strlen(cmd + i);
            if (tpl_lit(t, cmd + i, n))
                return nomem(msg, msg_size);
            i += n;
            continue;
        }
        if (c == '{' || c == '}') {
            size_t adv;
            char lit;
            long ph = scan_brace(t, cmd, i, false, &adv, &lit, msg, msg_size);
            if (ph < 0)
                return -1;
            int rc;
            if (ph == PH_LIT) {
                rc = tpl_lit(t, &lit, 1);
            } else {
                char ref[32];
                int n = snprintf(ref, sizeof ref,
                                 f->q == Q_NONE     ? "\"${%ld}\""
                                 : f->q == Q_DOUBLE ? "${%ld}"
                                                    : "'\"${%ld}\"'",
                                 ph);
                rc = tpl_lit(t, ref, (size_t)n);
            }
            if (rc)
                return nomem(msg, msg_size);
            i += adv;
            continue;
        }
        size_t take = 1;
        if (f->q == Q_SINGLE) {
            if (c == '\'')
                f->q = Q_NONE;
        } else if (c == '\\') {
            if (!cmd[i + 1]) {
                snprintf(msg, msg_size,
                         "command: backslash at position %zu escapes nothing", i + 1);
                return -1;
            }
            take = 2; /* the shell reads the pair; neither is syntax here */
        } else if (c == '\'' && f->q == Q_NONE) {
            f->q = Q_SINGLE;
            f->q_at = i;
        } else if (c == '"') {
            if (f->q == Q_DOUBLE) {
                f->q = Q_NONE;
            } else {
                f->q = Q_DOUBLE;
                f->q_at = i;
            }
        } else if ((c == '$' && cmd[i + 1] == '(') ||
                   (c == '`' && f->closer != BACKTICK)) {
            if (top + 1 == NEST_MAX) {
                snprintf(msg, msg_size,
                         "command: nested more than %d deep at position %zu",
                         NEST_MAX - 1, i + 1);
                return -1;
            }
            st[++top] = (struct frame){Q_NONE, c == '`' ? BACKTICK : PAREN, 0, 0, i};
            take = c == '`' ? 1 : 2;
        } else if (c == '`' && f->q == Q_NONE) {
            top--; /* the closing backtick */
        } else if (f->q == Q_NONE && f->closer == PAREN && c == '(') {
            f->parens++;
        } else if (f->q == Q_NONE && f->closer == PAREN && c == ')') {
            if (f->parens)
                f->parens--;
            else
                top--;
        } else if (c == '$') {
            dollar = true;
        }
        if (tpl_lit(t, cmd + i, take))
            return nomem(msg, msg_size);
        i += take;
    }
    const struct frame *f = &st[top];
    if (f->q != Q_NONE) {
        snprintf(msg, msg_size,
                 "command: unbalanced %c: the quote at position %zu is never closed",
                 f->q == Q_SINGLE ? '\'' : '"', f->q_at + 1);
        return -1;
    }
    if (top > 0) {
        snprintf(msg, msg_size, "command: the %s at position %zu is never closed",
                 f->closer == PAREN ? "$(" : "`", f->at + 1);
        return -1;
    }
    if (!t->n_ph) { /* no placeholder: the item is the last argument */
        if (add_default(t, msg, msg_size) || tpl_lit(t, " \"${1}\"", 7))
            return nomem(msg, msg_size);
    }
    return tpl_end(t) ? nomem(msg, msg_size) : 0;
}

/* True when word k is one literal piece equal to s. */
static bool word_is(const tpl_t *t, size_t k, const char *s)
{
    size_t first = k ? t->word_end[k - 1] : 0;
    if (t->word_end[k] - first != 1 || t->pieces[first].ph != PH_LIT)
        return false;
    const piece_t *p = &t->pieces[first];
    return p->len == strlen(s) && memcmp(t->lit + p->off, s, p->len) == 0;
}

/* `sh -c 'echo {}'` without shell = true puts the raw item into a script:
 * legal (the user wrote it), but almost always meant as "$1". */
static void warn_raw_script(const exec_state_t *s)
{
    const tpl_t *t = &s->t;
    static const char *const shells[] = {
        "sh",      "bash",      "dash",      "zsh",           "ksh",         "mksh",
        "/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/bash", "/usr/bin/zsh"};
    bool shell = false;
    for (size_t k = 0; k < sizeof shells / sizeof shells[0] && t->n_words; k++)
        shell |= word_is(t, 0, shells[k]);
    for (size_t k = 1; shell && k + 1 < t->n_words; k++) {
        if (!word_is(t, k, "-c"))
            continue;
        for (size_t p = t->word_end[k]; p < t->word_end[k + 1]; p++)
            if (t->pieces[p].ph != PH_LIT) {
                s->host->logf(s->host,
                              "warning: a placeholder inside the script of "
                              "'sh -c' is pasted in as shell code; pass it as an "
                              "argument (sh -c '... \"$1\"' sh {}) or set "
                              "shell = true");
                return;
            }
        return;
    }
}

/* ---- one item --------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span_t;

/* w->args holds at least need bytes.  0 or -1. */
static int args_reserve(exec_worker_t *w, size_t need)
{
    if (need <= w->args_cap)
        return 0;
    size_t cap = w->args_cap * 2 > need ? w->args_cap * 2 : need;
    char *p = realloc(w->args, cap);
    if (!p)
        return -1;
    w->args = p;
    w->args_cap = cap;
    return 0;
}

/* Builds w->argv for the item: each placeholder expanded by the host, in
 * place, into its word.  0, or -1 with the item failed. */
static int build_argv(exec_worker_t *w, const exec_state_t *s, const weft_item_t *item,
                      weft_result_t *r)
{
    const tpl_t *t = &s->t;
    const weft_host_t *h = s->host;
    size_t len = 0, p = 0;
    for (size_t k = 0; k < t->n_words; k++) {
        w->arg_off[k] = len;
        for (; p < t->word_end[k]; p++) {
            const piece_t *pc = &t->pieces[p];
            if (pc->ph == PH_LIT) {
                if (args_reserve(w, len + pc->len + 1))
                    goto nomem;
                memcpy(w->args + len, t->lit + pc->off, pc->len);
                len += pc->len;
                continue;
            }
            const weft_tmpl_t *tm = t->ph[pc->ph - 1].t;
            int n = h->tmpl_expand_slot(tm, item, w->slot, w->args + len, w->args_cap - len);
            if (n >= 0 && (size_t)n >= w->args_cap - len) { /* grow, then again */
                if (args_reserve(w, len + (size_t)n + 1))
                    goto nomem;
                n = h->tmpl_expand_slot(tm, item, w->slot, w->args + len, w->args_cap - len);
            }
            if (n == -EINVAL)
                return h->failf(r, "the item holds a NUL byte: it cannot be an argument");
            if (n < 0)
                return h->failf(r, "an argument of the item is over %d bytes", INT_MAX);
            len += (size_t)n;
        }
        if (args_reserve(w, len + 1))
            goto nomem;
        w->args[len++] = '\0';
    }
    for (size_t k = 0; k < t->n_words; k++)
        w->argv[k] = w->args + w->arg_off[k];
    w->argv[t->n_words] = NULL;
    return 0;
nomem:
    return h->failf(r, "out of memory for the arguments (over %zu bytes)", len);
}

/* Whether the child has exited, without reaping it (nohang), or after
 * waiting for it.  0, or the errno of waitid (ECHILD if the host set
 * SIGCHLD to SIG_IGN). */
static int exited(pid_t pid, bool nohang, bool *yes)
{
    siginfo_t info;
    for (;;) {
        info.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT | (nohang ? WNOHANG : 0)) == 0)
            break;
        if (errno != EINTR)
            return errno;
    }
    *yes = info.si_pid == pid;
    return 0;
}

/* Reaps the child once it has exited (waiting for it), forgetting it just
 * before: until waitpid its number cannot be reused.  0 or an errno. */
static int reap(const weft_host_t *h, pid_t pid, int *status)
{
    bool yes = false;
    int err = exited(pid, false, &yes);
    untrack(h, pid);
    if (err)
        return err;
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return errno;
    return 0;
}

/* The child and its process group. */
static void kill_child(const weft_host_t *h, pid_t pid, int *status)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL); /* in case it left its group */
    reap(h, pid, status);
}

typedef enum outcome { RAN, TIMED_OUT, STOPPED, TOO_MUCH, NO_MEMORY, LOST } outcome_t;

/*
 * Reads fd (when >= 0) into w->out until EOF, then waits for the child; both
 * bounded by deadline (0: none) and by the host's should_stop.  *len is the
 * output read.  Never leaves a child unreaped.  LOST: waitid/waitpid failed,
 * its errno in *status.
 */
static outcome_t collect(exec_worker_t *w, const exec_state_t *s, pid_t pid, int fd,
                         double deadline, size_t *len, int *status)
{
    const weft_host_t *h = s->host;
    size_t limit = s->max_output + 1; /* one byte over tells "too much" */
    *len = 0;
    while (fd >= 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, poll_ms(h, deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            outcome_t why = past(deadline) ? TIMED_OUT : host_stopping(h) ? STOPPED : RAN;
            if (why == RAN)
                continue; /* a wakeup to ask the host */
            close(fd);
            kill_child(h, pid, status);
            return why;
        }
        if (*len == w->out_cap) {
            size_t cap = w->out_cap * 2 < limit ? w->out_cap * 2 : limit;
            char *p = realloc(w->out, cap);
            if (!p) {
                close(fd);
                kill_child(h, pid, status);
                return NO_MEMORY;
            }
            w->out = p;
            w->out_cap = cap;
        }
        ssize_t got = read(fd, w->out + *len, w->out_cap - *len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) { /* EOF, or an error that ends the stream alike */
            close(fd);
            break;
        }
        *len += (size_t)got;
        if (*len >= limit) {
            close(fd);
            kill_child(h, pid, status);
            return TOO_MUCH;
        }
    }
    if (poll_ms(h, deadline) < 0) {
        int err = reap(h, pid, status);
        if (err)
            *status = err;
        return err ? LOST : RAN;
    }
    /* A child can close its output and live on: wait on a pidfd, which
     * polls readable when the process exits. */
    int pidfd = pidfd_open(pid, 0);
    outcome_t result = RAN;
    for (unsigned nap_us = 50;;) {
        bool yes = false;
        int err = exited(pid, true, &yes);
        if (err || yes) {
            err = err ? err : reap(h, pid, status);
            if (err) {
                untrack(h, pid);
                *status = err;
                result = LOST;
            }
            break;
        }
        outcome_t why = past(deadline) ? TIMED_OUT : host_stopping(h) ? STOPPED : RAN;
        if (why != RAN) {
            kill_child(h, pid, status);
            result = why;
            break;
        }
        int ms = poll_ms(h, deadline);
        if (pidfd >= 0) {
            struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
            poll(&pfd, 1, ms);
        } else { /* no pidfd (old kernel, seccomp): nap, doubling to 10 ms */
            struct timespec ts = {0, (long)nap_us * 1000};
            nanosleep(&ts, NULL);
            nap_us = nap_us < 10000 ? nap_us * 2 : 10000;
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return result;
}

/* The first non-blank line of the output, at most FIRST_LINE_MAX bytes cut
 * at a UTF-8 boundary. */
static span_t first_line(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_blank(p[i]))
        i++;
    size_t end = i;
    while (end < n && p[end] != '\n' && p[end] != '\r' && end - i < FIRST_LINE_MAX)
        end++;
    if (end < n && end - i == FIRST_LINE_MAX)
        while (end > i && ((unsigned char)p[end] & 0xC0) == 0x80)
            end--;
    while (end > i && is_blank(p[end - 1]))
        end--;
    return (span_t){p + i, end - i};
}

static int exec_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    const exec_state_t *s = state;
    exec_worker_t *w = ctx;
    const weft_host_t *h = s->host;
    if (build_argv(w, s, item, r))
        return -1;
    const char *name = w->argv[0];
    char why[128]; /* strerror_r (GNU): strerror's buffer is not ours here */

    int pipefd[2] = {-1, -1};
    if (s->capture != CAPTURE_NONE && pipe2(pipefd, O_CLOEXEC) != 0)
        return h->failf(r, "cannot run '%s': pipe: %s", name,
                        strerror_r(errno, why, sizeof why));

    /* dup2s first: they read the pipe end before /dev/null may take fd 0. */
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (!rc && pipefd[1] >= 0)
        rc = posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    if (!rc && s->capture == CAPTURE_BOTH)
        rc = posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
    /* Not captured, stdout goes nowhere: weft's own stdout may be the JSON. */
    if (!rc && s->capture == CAPTURE_NONE)
        rc = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY,
                                              0);
    if (!rc)
        rc =
            posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_addfchdir_np(&fa, s->cwd_fd);
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    pid_t pid = -1;
    if (!rc)
        rc = posix_spawnp(&pid, name, &fa, &w->attr, w->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (!rc)
        track(h, pid);
    if (pipefd[1] >= 0)
        close(pipefd[1]); /* the child's copy is the only writer now */
    if (rc) {
        if (pipefd[0] >= 0)
            close(pipefd[0]);
        return h->failf(r, "cannot run '%s': %s", name, strerror_r(rc, why, sizeof why));
    }

    double deadline = s->timeout > 0 ? now() + s->timeout : 0;
    size_t len = 0;
    int status = 0;
    switch (collect(w, s, pid, pipefd[0], deadline, &len, &status)) {
    case TIMED_OUT:
        return h->failf(r, "timed out after %g s", s->timeout);
    case STOPPED: /* halt = now, or [run] timeout: weft records it as such */
        return h->failf(r, "stopped: weft asked it to stop (its process was killed)");
    case TOO_MUCH:
        return h->failf(r, "output over max_output (%zu bytes)", s->max_output);
    case NO_MEMORY:
        return h->failf(r, "out of memory for the output (%zu bytes)", len);
    case LOST:
        return h->failf(r, "cannot wait for '%s': %s", name,
                        strerror_r(status, why, sizeof why));
    case RAN:
        break;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        return h->failf(r, "killed by signal %d (SIG%s)", sig, abbrev ? abbrev : "?");
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code != 0) {
        /* 127 and 126 are what sh says for "not found", "not executable". */
        const char *hint = code == 127   ? " (command not found?)"
                           : code == 126 ? " (not executable?)"
                                         : "";
        span_t line =
            s->capture == CAPTURE_BOTH ? first_line(w->out, len) : (span_t){"", 0};
        return h->failf(r, "exit status %d%s%s%.*s", code, hint, line.n ? ": " : "",
                        (int)line.n, line.p);
    }
    if (s->capture == CAPTURE_NONE) {
        if (!s->exact) /* raw output prints nothing, as GNU parallel would */
            weft_result_int(r, 0);
        return 0;
    }
    if (!s->exact && len > 0 && w->out[len - 1] == '\n')
        len--;
    weft_result_string(r, w->out, len);
    return 0;
}

/* ---- workers ------------------------------------------------------------ */

static void exec_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)state, (void)worker;
    exec_worker_t *w = ctx;
    if (!w)
        return;
    posix_spawnattr_destroy(&w->attr);
    free(w->argv);
    free(w->arg_off);
    free(w->args);
    free(w->out);
    free(w);
}

static int exec_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                            char *msg, size_t msg_size)
{
    (void)workers;
    const exec_state_t *s = state;
    /* Rounded up to whole cache lines, as aligned_alloc wants a multiple. */
    size_t size = (sizeof(exec_worker_t) + 63) & ~(size_t)63;
    exec_worker_t *w = aligned_alloc(64, size);
    if (!w)
        return nomem(msg, msg_size);
    memset(w, 0, size);
    w->s = s;
    w->slot = worker + 1; /* one item at a time per worker: a slot of its own */
    if (posix_spawnattr_init(&w->attr) != 0) {
        free(w);
        return nomem(msg, msg_size);
    }
    int rc = child_spawnattr(&w->attr);
    w->argv = calloc(s->t.n_words + 1, sizeof *w->argv);
    w->arg_off = calloc(s->t.n_words + 1, sizeof *w->arg_off);
    w->args_cap = s->t.n_lit + s->t.n_words + 4096;
    w->args = malloc(w->args_cap);
    w->out_cap = s->max_output + 1 < 65536 ? s->max_output + 1 : 65536;
    w->out = s->capture != CAPTURE_NONE ? malloc(w->out_cap) : NULL;
    if (rc || !w->argv || !w->arg_off || !w->args ||
        (s->capture != CAPTURE_NONE && !w->out)) {
        exec_worker_fini(state, worker, w);
        if (!rc)
            return nomem(msg, msg_size);
        snprintf(msg, msg_size, "spawn attributes: %s", strerror(rc));
        return -1;
    }
    *ctx = w;
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

static void exec_destroy(void *state)
{
    exec_state_t *s = state;
    if (!s)
        return;
    if (s->cwd_fd >= 0)
        close(s->cwd_fd);
    tpl_free(&s->t);
    free(s);
}

static int exec_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                     char *msg, size_t msg_size)
{
    if (!WEFT_HOST_HAS(host, tmpl_expand_slot)) {
        snprintf(msg, msg_size, "this weft is older than the exec plugin: its host table "
                                "has no tmpl_scan (placeholders); use the exec of its release");
        return -1;
    }
    exec_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return nomem(msg, msg_size);
    s->host = host;
    s->t.host = host;
    s->cwd_fd = -1;
    s->shell = args[ARG_SHELL].u.b;
    s->exact = WEFT_HOST_HAS(host, values_raw) && host->values_raw;
    s->max_output = (size_t)args[ARG_MAX_OUTPUT].u.i;
    s->timeout = args[ARG_TIMEOUT].u.f;

    const char *cap = args[ARG_CAPTURE].u.s;
    if (strcmp(cap, "stdout") == 0)
        s->capture = CAPTURE_STDOUT;
    else if (strcmp(cap, "stdout+stderr") == 0)
        s->capture = CAPTURE_BOTH;
    else if (strcmp(cap, "none") == 0)
        s->capture = CAPTURE_NONE;
    else {
        snprintf(msg, msg_size, "capture = '%s': expected none, stdout or stdout+stderr",
                 cap);
        goto fail;
    }

    const char *cwd = args[ARG_CWD].u.s[0] ? args[ARG_CWD].u.s : host->config_dir;
    s->cwd_fd = open(cwd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->cwd_fd < 0) {
        snprintf(msg, msg_size, "cwd '%s': %s", cwd, strerror(errno));
        goto fail;
    }

    const char *cmd = args[ARG_COMMAND].u.s;
    const char *c = cmd;
    while (is_blank(*c))
        c++;
    if (!*c) {
        snprintf(msg, msg_size, "command is empty");
        goto fail;
    }
    if (s->shell) {
        if (tpl_word(&s->t, "/bin/sh") || tpl_word(&s->t, "-c")) {
            nomem(msg, msg_size);
            goto fail;
        }
        if (parse_script(&s->t, cmd, msg, msg_size))
            goto fail;
        if (tpl_word(&s->t, "sh")) { /* $0, for the shell's messages */
            nomem(msg, msg_size);
            goto fail;
        }
        /* ${k} is placeholder k - 1's value, a word of its own. */
        for (size_t k = 0; k < s->t.n_ph; k++)
            if (tpl_piece(&s->t, (uint32_t)k + 1, 0, 0) || tpl_end(&s->t)) {
                nomem(msg, msg_size);
                goto fail;
            }
    } else {
        if (parse_words(&s->t, cmd, msg, msg_size))
            goto fail;
        if (!s->t.n_ph && (add_default(&s->t, msg, msg_size) ||
                           tpl_piece(&s->t, 1, 0, 0) || tpl_end(&s->t))) {
            nomem(msg, msg_size);
            goto fail;
        }
        warn_raw_script(s);
    }
    *state = s;
    return 0;
fail:
    exec_destroy(s);
    return -1;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "exec",
    .version = "1.0.0",
    .description =
        "Runs a command per item (GNU parallel style); its output is the value",
    .args = exec_args,
    .n_args = sizeof exec_args / sizeof exec_args[0],
    .flags = WEFT_PLUGIN_WAITS, /* its items wait on their commands */
    .arg_choices = (const char *const[]){[ARG_CAPTURE] = "stdout|stdout+stderr|none",
                                         [ARG_CWD] = NULL},
    .init = exec_init,
    .worker_init = exec_worker_init,
    .worker_fini = exec_worker_fini,
    .process_one = exec_process,
    .destroy = exec_destroy,
};
