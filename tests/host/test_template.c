/* SPDX-License-Identifier: MIT */
/*
 * core/host/template.c: every placeholder and padding, literal braces, compile
 * errors with their positions, expansion bounds, and the confinement
 * rules, including item text that only becomes "../" after expansion.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loader.h"
#include "template.h"

static weft_item_t text_item(uint64_t index, const char *text)
{
    return (weft_item_t){.index = index, .number = (int64_t)index, .text = text,
                         .text_len = text ? strlen(text) : 0};
}

static weft_item_t range_item(uint64_t index, int64_t number)
{
    return (weft_item_t){.index = index, .number = number};
}

/* Compiles tmpl (must succeed), expands it for item into a static buffer. */
static const char *expand(const char *tmpl, const weft_item_t *item)
{
    static char out[PATH_MAX];
    char err[256] = "";
    weft__tmpl_t *t = NULL;
    int rc = weft__tmpl_compile(&t, tmpl, err, sizeof err);
    if (rc)
        fail_msg("compile '%s': %d %s", tmpl, rc, err);
    int n = weft__tmpl_expand(t, item, out, sizeof out);
    weft__tmpl_free(&t);
    assert_null(t);
    if (n < 0)
        fail_msg("expand '%s': %d", tmpl, n);
    assert_int_equal((size_t)n, strlen(out));
    return out;
}

/* Compiling tmpl fails with rc, and the message contains each of the
 * NULL-terminated fragments. */
static void compile_fails(const char *tmpl, int rc, ...)
{
    char err[512] = "";
    weft__tmpl_t *t = (weft__tmpl_t *)(uintptr_t)1; /* must become NULL */
    assert_int_equal(weft__tmpl_compile(&t, tmpl, err, sizeof err), rc);
    assert_null(t);
    va_list ap;
    va_start(ap, rc);
    for (const char *frag; (frag = va_arg(ap, const char *));)
        if (!strstr(err, frag))
            fail_msg("template '%s': message '%s' lacks '%s'", tmpl, err, frag);
    va_end(ap);
}

/* ---- placeholders -------------------------------------------------------- */

static void tmpl_text_and_numbers(void **state)
{
    (void)state;
    weft_item_t it = text_item(7, "photos/cat.jpg");
    assert_string_equal(expand("{}", &it), "photos/cat.jpg");
    assert_string_equal(expand("{path}", &it), "photos/cat.jpg");
    assert_string_equal(expand("{index}", &it), "7");
    assert_string_equal(expand("{number}", &it), "7");
    assert_string_equal(expand("x-{index}-{number}.png", &it), "x-7-7.png");

    /* Range items: {} is the number, index the position. */
    weft_item_t r = range_item(3, 1003);
    assert_string_equal(expand("{}", &r), "1003");
    assert_string_equal(expand("{index}/{number}", &r), "3/1003");
    weft_item_t neg = range_item(0, -42);
    assert_string_equal(expand("{}", &neg), "-42");
    assert_string_equal(expand("{number:05}", &neg), "-00042");
    weft_item_t min = range_item(UINT64_MAX, INT64_MIN);
    assert_string_equal(expand("{number}", &min), "-9223372036854775808");
    assert_string_equal(expand("{index}", &min), "18446744073709551615");
}

static void tmpl_padding(void **state)
{
    (void)state;
    weft_item_t it = range_item(42, 42);
    assert_string_equal(expand("noise_{index:06}.png", &it), "noise_000042.png");
    assert_string_equal(expand("{index:01}", &it), "42");
    assert_string_equal(expand("{index:02}", &it), "42");
    assert_string_equal(expand("{index:03}", &it), "042");
    assert_string_equal(expand("{index:020}", &it), "00000000000000000042");
    assert_string_equal(expand("{number:04}", &it), "0042");
    weft_item_t big = range_item(1234567, 0);
    assert_string_equal(expand("{index:06}", &big), "1234567"); /* never cut */
    weft_item_t zero = range_item(0, 0);
    assert_string_equal(expand("{index:03}", &zero), "000");
}

static void tmpl_path_parts(void **state)
{
    (void)state;
    static const struct {
        const char *text, *name, *stem, *ext, *dir;
    } cases[] = {
        {"photos/cat.jpg", "cat.jpg", "cat", ".jpg", "photos"},
        {"a/b/c.tar.gz", "c.tar.gz", "c.tar", ".gz", "a/b"},
        {"plain", "plain", "plain", "", "."},
        {".bashrc", ".bashrc", ".bashrc", "", "."},
        {"dir/.hidden.txt", ".hidden.txt", ".hidden", ".txt", "dir"},
        {"trail/", "trail", "trail", "", "."},
        {"a//b.c", "b.c", "b", ".c", "a"},
        {"/abs/x.y", "x.y", "x", ".y", "/abs"},
        {"/x", "x", "x", "", "/"},
        {"/", "/", "/", "", "/"},
        {"..", "..", "..", "", "."},
        {"a/..", "..", "..", "", "a"},
        {"name.", "name.", "name", ".", "."},
        {"", "", "", "", "."},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        weft_item_t it = text_item(k, cases[k].text);
        const char *what[] = {"{name}", "{stem}", "{ext}", "{dir}"};
        const char *want[] = {cases[k].name, cases[k].stem, cases[k].ext, cases[k].dir};
        for (int w = 0; w < 4; w++) {
            const char *got = expand(what[w], &it);
            if (strcmp(got, want[w]) != 0)
                fail_msg("'%s' %s: got '%s', want '%s'", cases[k].text, what[w], got,
                         want[w]);
        }
        /* {stem}{ext} is {name}, always. */
        char both[PATH_MAX];
        snprintf(both, sizeof both, "%s", expand("{stem}{ext}", &it));
        assert_string_equal(both, expand("{name}", &it));
    }
    /* A range item's text is its number. */
    weft_item_t r = range_item(0, 12);
    assert_string_equal(expand("{dir}/{stem}{ext}", &r), "./12");
}

static void tmpl_braces_and_literals(void **state)
{
    (void)state;
    weft_item_t it = range_item(5, 5);
    assert_string_equal(expand("{{}}", &it), "{}");
    assert_string_equal(expand("{{{index}}}", &it), "{5}");
    assert_string_equal(expand("a{{b}}c", &it), "a{b}c");
    assert_string_equal(expand("", &it), "");
    assert_string_equal(expand("plain.txt", &it), "plain.txt");
    assert_string_equal(expand("{index}{index}{index}", &it), "555");
    /* UTF-8 literals pass untouched. */
    assert_string_equal(expand("bild-\xc3\xa4-{index}", &it), "bild-\xc3\xa4-5");
}

/* GNU parallel's spellings: {/} {//} {/.} are {name} {dir} {stem}; {.} is
 * the text without {ext}; on hostile and odd paths alike. */
static void tmpl_gnu_aliases(void **state)
{
    (void)state;
    static const struct {
        const char *text, *noext, *base, *dir, *stem;
    } cases[] = {
        {"a/b/c.tar.gz", "a/b/c.tar", "c.tar.gz", "a/b", "c.tar"},
        {"my dir/it's a \"file\".txt", "my dir/it's a \"file\"", "it's a \"file\".txt",
         "my dir", "it's a \"file\""},
        {"$HOME/`x`.$y", "$HOME/`x`", "`x`.$y", "$HOME", "`x`"},
        {"new\nline.c", "new\nline", "new\nline.c", ".", "new\nline"},
        {"-n.txt", "-n", "-n.txt", ".", "-n"},
        {"--", "--", "--", ".", "--"},
        {"noext", "noext", "noext", ".", "noext"},
        {"a.b/noext", "a.b/noext", "noext", "a.b", "noext"},
        {".bashrc", ".bashrc", ".bashrc", ".", ".bashrc"},
        {"d/.hidden.txt", "d/.hidden", ".hidden.txt", "d", ".hidden"},
        {"trail/", "trail/", "trail", ".", "trail"},
        {"x.y/", "x/", "x.y", ".", "x"},
        {"d/x.y//", "d/x//", "x.y", "d", "x"},
        {"/", "/", "/", "/", "/"},
        {"/abs.d/f.e", "/abs.d/f", "f.e", "/abs.d", "f"},
        {"..", "..", "..", ".", ".."},
        {"a/..", "a/..", "..", "a", ".."},
        {"name.", "name", "name.", ".", "name"},
        {"", "", "", ".", ""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        weft_item_t it = text_item(k, cases[k].text);
        const char *what[] = {"{.}", "{/}", "{//}", "{/.}"};
        const char *same[] = {NULL, "{name}", "{dir}", "{stem}"};
        const char *want[] = {cases[k].noext, cases[k].base, cases[k].dir, cases[k].stem};
        for (int w = 0; w < 4; w++) {
            char got[PATH_MAX];
            snprintf(got, sizeof got, "%s", expand(what[w], &it));
            if (strcmp(got, want[w]) != 0)
                fail_msg("'%s' %s: got '%s', want '%s'", cases[k].text, what[w], got,
                         want[w]);
            if (same[w] && strcmp(got, expand(same[w], &it)) != 0)
                fail_msg("'%s': %s differs from %s", cases[k].text, what[w], same[w]);
        }
        /* Without a trailing '/', {.}{ext} is {}. */
        size_t n = strlen(cases[k].text);
        if (n > 1 && cases[k].text[n - 1] != '/')
            assert_string_equal(expand("{.}{ext}", &it), cases[k].text);
    }
    weft_item_t r = range_item(4, -12);
    assert_string_equal(expand("{.}|{/}|{//}|{/.}|{#}", &r), "-12|-12|.|-12|5");
}

static void tmpl_seq_and_slot(void **state)
{
    (void)state;
    weft_item_t it = text_item(0, "x");
    assert_string_equal(expand("{#}", &it), "1");
    weft_item_t r = range_item(41, 1000);
    assert_string_equal(expand("{#}-{#:04}-{index}", &r), "42-0042-41");
    weft_item_t last = range_item(UINT64_MAX, 0);
    assert_string_equal(expand("{#}", &last), "18446744073709551616");
    assert_string_equal(expand("{#:020}", &last), "18446744073709551616");

    /* {%} depends on scheduling: refused in a file name... */
    compile_fails("out/{%}.png", -EINVAL, "'{%}' at position 5", "job slot",
                  "use {#} or {index}", NULL);
    /* ...an argv word's, through scan, with the slot the plugin knows. */
    weft__tmpl_t *t = NULL;
    size_t len = 0;
    assert_int_equal(weft__tmpl_scan("{%}", 0, &len, &t, NULL, 0), 1);
    assert_int_equal(len, 3);
    char out[32];
    assert_int_equal(weft__tmpl_expand_slot(t, &it, 7, out, sizeof out), 1);
    assert_string_equal(out, "7");
    assert_int_equal(weft__tmpl_expand_slot(t, &it, 12, out, sizeof out), 2);
    assert_string_equal(out, "12");
    assert_int_equal(weft__tmpl_expand_slot(t, &it, 0, out, sizeof out), -EINVAL);
    assert_int_equal(weft__tmpl_expand(t, &it, out, sizeof out), -EINVAL);
    weft__tmpl_free(&t);
}

/* expand_slot's snprintf contract: the full length, whatever fits. */
static void tmpl_expand_slot_sizes(void **state)
{
    (void)state;
    weft__tmpl_t *t = NULL;
    assert_int_equal(weft__tmpl_compile(&t, "ab{}cd", NULL, 0), 0);
    weft_item_t it = text_item(0, "0123456789");
    char out[32];
    memset(out, 'x', sizeof out);
    assert_int_equal(weft__tmpl_expand_slot(t, &it, 0, out, 14), 14);
    assert_string_equal(out, ""); /* needs 15 */
    assert_int_equal(weft__tmpl_expand_slot(t, &it, 0, out, 0), 14);
    assert_int_equal(weft__tmpl_expand_slot(t, &it, 0, out, 15), 14);
    assert_string_equal(out, "ab0123456789cd");
    weft_item_t nul = {.index = 0, .number = 0, .text = "a\0b", .text_len = 3};
    assert_int_equal(weft__tmpl_expand_slot(t, &nul, 1, out, sizeof out), -EINVAL);
    assert_int_equal(weft__tmpl_expand_slot(NULL, &it, 1, out, sizeof out), -EINVAL);
    weft__tmpl_free(&t);
}

/* scan at text[pos]: 1 and the placeholder's bytes, 0 and the literal's,
 * or an error; checks the compiled piece expands to `want` for item 4. */
static void scan_is(const char *text, size_t pos, int rc, size_t len, const char *want)
{
    weft__tmpl_t *t = (weft__tmpl_t *)(uintptr_t)1;
    size_t got = 99;
    char err[512] = "";
    int r = weft__tmpl_scan(text, pos, &got, &t, err, sizeof err);
    if (r != rc || (r >= 0 && got != len))
        fail_msg("scan '%s' at %zu: %d len %zu (want %d len %zu) %s", text, pos, r, got,
                 rc, len, err);
    if (r != 1) {
        assert_null(t);
        return;
    }
    weft_item_t it = text_item(4, "dir/file.txt");
    char out[64];
    assert_true(weft__tmpl_expand_slot(t, &it, 2, out, sizeof out) >= 0);
    if (strcmp(out, want) != 0)
        fail_msg("scan '%s': expands to '%s', want '%s'", text, out, want);
    weft__tmpl_free(&t);
}

static void scan_fails(const char *text, size_t pos, const char *frag1, const char *frag2)
{
    weft__tmpl_t *t = NULL;
    size_t len = 0;
    char err[512] = "";
    assert_int_equal(weft__tmpl_scan(text, pos, &len, &t, err, sizeof err), -EINVAL);
    assert_null(t);
    if (!strstr(err, frag1) || (frag2 && !strstr(err, frag2)))
        fail_msg("scan '%s': message '%s' lacks '%s' / '%s'", text, err, frag1,
                 frag2 ? frag2 : "");
}

/* Argv words: only placeholder-shaped groups are placeholders. */
static void tmpl_scan_words(void **state)
{
    (void)state;
    scan_is("{}", 0, 1, 2, "dir/file.txt");
    scan_is("x{.}y", 1, 1, 3, "dir/file");
    scan_is("{/}", 0, 1, 3, "file.txt");
    scan_is("{//}", 0, 1, 4, "dir");
    scan_is("{/.}", 0, 1, 4, "file");
    scan_is("{#}", 0, 1, 3, "5");
    scan_is("{%}", 0, 1, 3, "2");
    scan_is("{index:03}{}", 0, 1, 10, "004");
    scan_is("{ext}", 0, 1, 5, ".txt");
    scan_is("{{}}", 0, 0, 2, NULL);
    scan_is("{{}}", 2, 0, 2, NULL);
    scan_is("}", 0, 0, 1, NULL);
    scan_is("{print $1}", 0, 0, 1, NULL);
    scan_is("{ }", 0, 0, 1, NULL);
    scan_is("{", 0, 0, 1, NULL);
    scan_is("{abc", 0, 0, 1, NULL);
    scan_is("{a{}", 0, 0, 1, NULL);
    scan_fails("echo {nmae}", 5, "unknown placeholder '{nmae}' at position 6",
               "did you mean {name}?");
    scan_fails("{indx:03}", 0, "did you mean {index}?", NULL);
    scan_fails("{1}", 0, "GNU parallel's numbered", NULL);
    scan_fails("{stem:03}", 0, "take a width", NULL);
    scan_fails("{index:99}", 0, "from 1 to 20", NULL);
    weft__tmpl_t *t = NULL;
    size_t len = 0;
    assert_int_equal(weft__tmpl_scan("x", 0, &len, &t, NULL, 0), -EINVAL);
    assert_int_equal(weft__tmpl_scan(NULL, 0, &len, &t, NULL, 0), -EINVAL);
}

static void tmpl_did_you_mean(void **state)
{
    (void)state;
    compile_fails("img_{nmae}.png", -EINVAL, "'{nmae}' at position 5",
                  "did you mean {name}?", NULL);
    compile_fails("{stme}", -EINVAL, "did you mean {stem}?", NULL);
    compile_fails("{//.}", -EINVAL, "did you mean {//}?", NULL);
    compile_fails("{2/.}", -EINVAL, "GNU parallel's numbered", NULL);
    compile_fails("{completely_else}", -EINVAL, "'{completely_else}' at position 1 (known:",
                  NULL);
}

/* ---- errors ---------------------------------------------------------------- */

static void tmpl_compile_errors(void **state)
{
    (void)state;
    compile_fails("img_{foo}.png", -EINVAL, "unknown placeholder '{foo}'", "position 5",
                  "{index:0N}", NULL);
    compile_fails("{index}{Index}", -EINVAL, "'{Index}'", "position 8", NULL);
    compile_fails("a{index", -EINVAL, "'{' at position 2 is not closed", NULL);
    compile_fails("a{", -EINVAL, "position 2", NULL);
    compile_fails("a{b{index}}", -EINVAL, "position 2", NULL);
    compile_fails("x}", -EINVAL, "lone '}' at position 2", "}}", NULL);
    compile_fails("{index:6}", -EINVAL, "position 1", ":0N", NULL);
    compile_fails("{index:00}", -EINVAL, "from 1 to 20", NULL);
    compile_fails("{index:021}", -EINVAL, "from 1 to 20", NULL);
    compile_fails("{index:0x}", -EINVAL, "'{index:0x}'", NULL);
    compile_fails("{index:0}", -EINVAL, "'{index:0}'", NULL);
    compile_fails("{index:}", -EINVAL, "'{index:}'", NULL);
    compile_fails("{index:0001}", -EINVAL, "'{index:0001}'", NULL);
    compile_fails("ab{stem:04}", -EINVAL, "position 3", "only {index}, {number} and {#}",
                  NULL);
    compile_fails("{:03}", -EINVAL, "only {index}, {number} and {#}", NULL);
    compile_fails("{/.:03}", -EINVAL, "only {index}, {number} and {#}", NULL);
    /* A long unknown placeholder is quoted, cut. */
    char big[300];
    memset(big, 'z', sizeof big);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    compile_fails(big, -EINVAL, "unknown placeholder '{zzz", "...' at position 1", NULL);

    /* Too long a template. */
    char *huge = malloc(WEFT__TMPL_TEXT_MAX + 2);
    assert_non_null(huge);
    memset(huge, 'a', WEFT__TMPL_TEXT_MAX + 1);
    huge[WEFT__TMPL_TEXT_MAX + 1] = '\0';
    compile_fails(huge, -ENAMETOOLONG, "longer than", NULL);
    huge[WEFT__TMPL_TEXT_MAX] = '\0'; /* exactly the limit: fine */
    weft__tmpl_t *t = NULL;
    assert_int_equal(weft__tmpl_compile(&t, huge, NULL, 0), 0);
    weft__tmpl_free(&t);
    free(huge);

    /* NULLs and no message buffer. */
    assert_int_equal(weft__tmpl_compile(&t, NULL, NULL, 0), -EINVAL);
    assert_int_equal(weft__tmpl_compile(NULL, "x", NULL, 0), -EINVAL);
    assert_int_equal(weft__tmpl_compile(&t, "{bad}", NULL, 0), -EINVAL);
    weft__tmpl_free(NULL);
    weft__tmpl_free(&t);
}

static void tmpl_expand_bounds(void **state)
{
    (void)state;
    weft__tmpl_t *t = NULL;
    assert_int_equal(weft__tmpl_compile(&t, "ab{index:06}", NULL, 0), 0);
    weft_item_t it = range_item(7, 7);
    char out[16];
    /* "ab000007" is 8 bytes: needs 9 with the NUL. */
    assert_int_equal(weft__tmpl_expand(t, &it, out, 9), 8);
    assert_string_equal(out, "ab000007");
    memset(out, 'x', sizeof out);
    assert_int_equal(weft__tmpl_expand(t, &it, out, 8), -ENAMETOOLONG);
    assert_string_equal(out, "");
    assert_int_equal(weft__tmpl_expand(t, &it, out, 2), -ENAMETOOLONG);
    assert_int_equal(weft__tmpl_expand(t, &it, out, 0), -ENAMETOOLONG);
    assert_int_equal(weft__tmpl_expand(NULL, &it, out, sizeof out), -EINVAL);
    assert_int_equal(weft__tmpl_expand(t, NULL, out, sizeof out), -EINVAL);
    assert_int_equal(weft__tmpl_expand(t, &it, NULL, sizeof out), -EINVAL);
    weft__tmpl_free(&t);

    /* Empty template, empty buffer. */
    assert_int_equal(weft__tmpl_compile(&t, "", NULL, 0), 0);
    assert_int_equal(weft__tmpl_expand(t, &it, out, 1), 0);
    assert_int_equal(weft__tmpl_expand(t, &it, out, 0), -ENAMETOOLONG);
    weft__tmpl_free(&t);

    /* Item text with a NUL inside: -EINVAL when the text is used, ignored
     * when not. */
    weft_item_t nul = {.index = 1, .number = 1, .text = "a\0b", .text_len = 3};
    assert_int_equal(weft__tmpl_compile(&t, "{stem}", NULL, 0), 0);
    assert_int_equal(weft__tmpl_expand(t, &nul, out, sizeof out), -EINVAL);
    weft__tmpl_free(&t);
    assert_int_equal(weft__tmpl_compile(&t, "{index}", NULL, 0), 0);
    assert_int_equal(weft__tmpl_expand(t, &nul, out, sizeof out), 1);
    weft__tmpl_free(&t);

    /* text_len rules, not the NUL: a text not terminated where text_len
     * ends is cut there. */
    weft_item_t cut = {.index = 0, .number = 0, .text = "abcdef", .text_len = 3};
    assert_string_equal(expand("{}", &cut), "abc");
}

/* ---- confinement ------------------------------------------------------------ */

static void confine_rejects(const char *rel, int rc, const char *frag)
{
    char err[512] = "";
    assert_int_equal(weft__path_confine_check(rel, err, sizeof err), rc);
    if (!strstr(err, frag))
        fail_msg("'%s': message '%s' lacks '%s'", rel, err, frag);
}

static void confine_rules(void **state)
{
    (void)state;
    const char *ok[] = {"x", "a/b/c.png", "./a", "a//b", "a/./b", "..x", "x..", "a/...",
                        ".hidden", "a/..b/c", "{}", ".weftrc", "weft.lock", "a/.weft",
                        ".x.tmp-1-2"};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        char err[256] = "";
        if (weft__path_confine_check(ok[k], err, sizeof err) != 0)
            fail_msg("'%s' rejected: %s", ok[k], err);
    }
    confine_rejects("", -EINVAL, "empty");
    confine_rejects("../x", -EINVAL, "'..' at position 1");
    confine_rejects("a/../../x", -EINVAL, "'..' at position 3");
    confine_rejects("a/..", -EINVAL, "'..'");
    confine_rejects("..", -EINVAL, "'..'");
    confine_rejects("/etc/x", -EINVAL, "absolute");
    confine_rejects("/", -EINVAL, "absolute");
    confine_rejects(".", -EINVAL, "no file name");
    confine_rejects("a/", -EINVAL, "no file name");
    confine_rejects("a/.", -EINVAL, "no file name");
    assert_int_equal(weft__path_confine_check(NULL, NULL, 0), -EINVAL);
    /* weft's own names: the lock, the journal, temporaries (the sweep's). */
    confine_rejects(".weft.lock", -EINVAL, "the name '.weft.lock' at position 1 is weft's own");
    confine_rejects("sub/.weft.lock", -EINVAL, "'.weft.lock' at position 5");
    confine_rejects(".weft-journal", -EINVAL, "weft's own");
    confine_rejects("a/.weft-journal.new", -EINVAL, "weft's own");
    confine_rejects(".weft-journal/x.png", -EINVAL, "weft's own");
    confine_rejects(".x.png.weft-tmp-12-3", -EINVAL, "weft's own");

    /* NAME_MAX per component, PATH_MAX in all. */
    char name[NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[NAME_MAX] = '\0';
    char err[512];
    assert_int_equal(weft__path_confine_check(name, err, sizeof err), 0);
    name[NAME_MAX] = 'n';
    name[NAME_MAX + 1] = '\0';
    confine_rejects(name, -ENAMETOOLONG, "256 bytes long (at most 255)");
    char *longp = malloc(PATH_MAX + 8);
    assert_non_null(longp);
    for (size_t i = 0; i < PATH_MAX + 7; i++)
        longp[i] = i % 2 ? '/' : 'd';
    longp[PATH_MAX - 1] = '\0'; /* 4095 bytes: the most there may be */
    if (longp[PATH_MAX - 2] == '/')
        longp[PATH_MAX - 2] = 'd';
    assert_int_equal(weft__path_confine_check(longp, err, sizeof err), 0);
    longp[PATH_MAX - 1] = 'd';
    longp[PATH_MAX] = '\0';
    confine_rejects(longp, -ENAMETOOLONG, "at most 4095");
    longp[PATH_MAX] = 'd';
    longp[PATH_MAX + 7] = '\0';
    confine_rejects(longp, -ENAMETOOLONG, "at most 4095");
    free(longp);

    /* Lengths: a NUL inside is refused. */
    assert_int_equal(weft__path_confine_check_n("a\0b", 3, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "NUL byte at position 2"));
    assert_int_equal(weft__path_confine_check_n("abc", 2, err, sizeof err), 0);
    assert_int_equal(weft__path_confine_check_n("../", 2, err, sizeof err), -EINVAL);
}

/* Item text is data: "../" in it is only caught after expansion. */
static void confine_after_expansion(void **state)
{
    (void)state;
    const char *bad[] = {"../etc/passwd", "a/../../x", "/etc/passwd", "..", "x/.."};
    weft__tmpl_t *t = NULL;
    assert_int_equal(weft__tmpl_compile(&t, "{}", NULL, 0), 0);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        weft_item_t it = text_item(k, bad[k]);
        char out[PATH_MAX], err[512];
        assert_true(weft__tmpl_expand(t, &it, out, sizeof out) >= 0);
        if (weft__path_confine_check(out, err, sizeof err) == 0)
            fail_msg("'%s' from item '%s' was accepted", out, bad[k]);
    }
    weft__tmpl_free(&t);
    /* {dir} of "../x" is "..". */
    weft_item_t up = text_item(0, "../x.png");
    char err[256];
    assert_int_not_equal(weft__path_confine_check(expand("{dir}/{name}", &up), err, sizeof err),
                         0);
    /* {name} of the same item is confined. */
    assert_int_equal(weft__path_confine_check(expand("out-{name}", &up), err, sizeof err), 0);
}

/* Through the host table, as a plugin sees it. */
static void tmpl_host_table(void **state)
{
    (void)state;
    weft__host_t h;
    weft__host_init(&h, "t", 0, "/");
    const weft_host_t *host = &h.pub;
    assert_true(WEFT_HOST_HAS(host, tmpl_free));
    assert_true(WEFT_HOST_HAS(host, out_write));
    weft_tmpl_t *t = NULL;
    char msg[256] = "";
    assert_int_equal(host->tmpl_compile(host, "f_{index:03}{ext}", &t, msg, sizeof msg), 0);
    weft_item_t it = text_item(9, "x.bin");
    char out[64];
    assert_int_equal(host->tmpl_expand(t, &it, out, sizeof out), 9);
    assert_string_equal(out, "f_009.bin");
    host->tmpl_free(t);
    host->tmpl_free(NULL);
    assert_int_equal(host->tmpl_compile(host, "{nope}", &t, msg, sizeof msg), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(msg, "unknown placeholder '{nope}' at position 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tmpl_text_and_numbers),
        cmocka_unit_test(tmpl_padding),
        cmocka_unit_test(tmpl_path_parts),
        cmocka_unit_test(tmpl_braces_and_literals),
        cmocka_unit_test(tmpl_gnu_aliases),
        cmocka_unit_test(tmpl_seq_and_slot),
        cmocka_unit_test(tmpl_expand_slot_sizes),
        cmocka_unit_test(tmpl_scan_words),
        cmocka_unit_test(tmpl_did_you_mean),
        cmocka_unit_test(tmpl_compile_errors),
        cmocka_unit_test(tmpl_expand_bounds),
        cmocka_unit_test(confine_rules),
        cmocka_unit_test(confine_after_expansion),
        cmocka_unit_test(tmpl_host_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
