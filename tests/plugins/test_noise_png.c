/* SPDX-License-Identifier: MIT */
/*
 * End to end: the noise_png plugin run by the weft binary.  Every file is
 * decoded with libpng's simplified API and its pixels compared with the
 * host's random stream (weft__rng_fill), so a stride, seed or index mix-up
 * shows; files must be byte-identical whatever the thread count.  Names
 * come from the `name` template, confined to the `dir` output folder, which
 * one run at a time may hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"
#include "loader.h"
#include "outdir.h"

enum { N = 60, W = 37, H = 23 }; /* odd sizes: rows are not padded */

static const char *tmp; /* the temporary folder, from e2e_setup */

/* e2e_expect, then frees o: the tests look at o before, never after. */
static void expect(e2e_outcome_t *o, int status, const char *in_err)
{
    e2e_expect(o, status, in_err);
    e2e_free(o);
}

/* A config in the temporary folder: [run] plugin and items, then body.
 * Copied out of e2e's path buffers: a test holds it across many paths. */
static const char *config(unsigned items, const char *body)
{
    static char path[512];
    snprintf(path, sizeof path, "%s",
             e2e_writef("noise.ini", "[run]\nplugin = noise_png\nitems = %u\n%s", items,
                        body));
    return path;
}

/* Entries of dir but the runner's own (.weft.lock, .weft-journal...); fails
 * on a leftover temporary (another dot file). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, WEFT__OUTDIR_LOCK) == 0 || strncmp(e->d_name, ".weft-", 6) == 0)
            continue;
        if (e->d_name[0] == '.')
            fail_msg("%s: temporary file '%s' left behind", dir, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* Decodes path: 8-bit grey, w x h, pixels = the stream (run_seed, stream,
 * index). */
static void check_image(const char *path, unsigned w, unsigned h, uint64_t run_seed,
                        uint64_t stream, uint64_t index)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        fail_msg("%s: %s", path, img.message);
    /* The format the file holds, before any conversion we might ask for. */
    assert_int_equal(img.format, PNG_FORMAT_GRAY);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    unsigned char *got = malloc((size_t)w * h), *want = malloc((size_t)w * h);
    assert_non_null(got);
    assert_non_null(want);
    if (!png_image_finish_read(&img, NULL, got, (png_int_32)w, NULL))
        fail_msg("%s: %s", path, img.message);
    weft_rng_t rng;
    weft__rng_init(&rng, run_seed, stream, index);
    weft__rng_fill(&rng, want, (size_t)w * h);
    if (memcmp(got, want, (size_t)w * h) != 0)
        fail_msg("%s: pixels are not the stream (run seed %llu, stream %llu, index %llu)", path,
                 (unsigned long long)run_seed, (unsigned long long)stream,
                 (unsigned long long)index);
    free(got);
    free(want);
}

static int setup(void **state)
{
    (void)state;
    return (tmp = e2e_setup("png")) ? 0 : -1;
}

/* ---- the same bytes whatever the thread count ---------------------------- */

static const char body[] =
    "[args]\nsize_x = 37\nsize_y = 23\nseed = 5\ndir = img\nname = n_{index:06}.png\n";

static void noise_png_same_bytes_any_threads(void **state)
{
    (void)state;
    const char *cfg = config(N, body);
    static const char *const threads[] = {"1", "2", "8"};
    char *first[N];
    size_t first_len[N];
    for (int t = 0; t < 3; t++) {
        assert_int_equal(e2e_remove(e2e_path("img")), 0);
        e2e_outcome_t o = E2E_RUN("run", cfg, "-j", threads[t]);
        expect(&o, 0, "60 ok, 0 failed");
        assert_int_equal(count_files(e2e_path("img")), N);
        for (int k = 0; k < N; k++) {
            const char *path = e2e_pathf("img/n_%06d.png", k);
            size_t len;
            char *bytes = e2e_slurp(path, &len);
            if (!bytes)
                fail_msg("%s missing (threads %s)", path, threads[t]);
            if (t == 0) {
                check_image(path, W, H, 0, 5, (uint64_t)k);
                first[k] = bytes;
                first_len[k] = len;
                continue;
            }
            if (len != first_len[k] || memcmp(bytes, first[k], len) != 0)
                fail_msg("%s differs between 1 and %s threads", path, threads[t]);
            free(bytes);
        }
    }

    /* Another seed, or another run seed: other bytes, still the stream. */
    static const struct {
        const char *set;
        uint64_t run_seed, stream;
    } other[] = {{"args.seed=6", 0, 6}, {"run.seed=1", 1, 5}};
    for (int c = 0; c < 2; c++) {
        e2e_outcome_t o = E2E_RUN("run", cfg, "--set", other[c].set);
        expect(&o, 0, "60 ok");
        for (int k = 0; k < N; k += 7) {
            const char *path = e2e_pathf("img/n_%06d.png", k);
            size_t len;
            char *bytes = e2e_slurp(path, &len);
            assert_non_null(bytes);
            if (len == first_len[k] && memcmp(bytes, first[k], len) == 0)
                fail_msg("%s: --set %s did not change the image", path, other[c].set);
            check_image(path, W, H, other[c].run_seed, other[c].stream, (uint64_t)k);
            free(bytes);
        }
    }
    for (int k = 0; k < N; k++)
        free(first[k]);
}

/* ---- durability: sync = batch | item | none ---------------------------------- */

/* Every mode writes the same files, each whole under its name, and leaves
 * no temporary (a subfolder too: its files are synced on its filesystem). */
static void noise_png_sync_modes(void **state)
{
    (void)state;
    static const char *const modes[] = {"batch", "item", "none"};
    for (int m = 0; m < 3; m++) {
        char set[64];
        snprintf(set, sizeof set, "run.sync=%s", modes[m]);
        const char *cfg = config(300, "[args]\nsize_x = 37\nsize_y = 23\nseed = 5\n"
                                      "dir = syncd\nname = s{index:03}/n_{index:06}.png\n");
        assert_int_equal(e2e_remove(e2e_path("syncd")), 0);
        e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "3", "--set", set);
        expect(&o, 0, "300 ok, 0 failed");
        for (int k = 0; k < 300; k += 13) {
            assert_int_equal(count_files(e2e_pathf("syncd/s%03d", k)), 1);
            check_image(e2e_pathf("syncd/s%03d/n_%06d.png", k, k), W, H, 0, 5, (uint64_t)k);
        }
        assert_int_equal(count_files(e2e_path("syncd")), 300);
    }
    const char *cfg = config(3, body);
    e2e_outcome_t o = E2E_RUN("check", cfg, "--set", "run.sync=always");
    expect(&o, 2, "--set run.sync: sync = 'always': expected batch (files made durable in "
                  "groups, then journaled), item");
}

/* kill -9 at any moment, then --resume: every image is there and right,
 * in batch mode (files committed in groups, journaled after) as in item
 * mode.  An item the journal lists as done always has its file: a resume
 * does not run it again. */
static void noise_png_kill9_resume(void **state)
{
    (void)state;
    static const char *const modes[] = {"batch", "item"};
    enum { ITEMS = 3000, ROUNDS = 6 };
    srand((unsigned)getpid());
    for (int round = 0; round < ROUNDS; round++) {
        const char *mode = modes[round % 2];
        char set[64];
        snprintf(set, sizeof set, "run.sync=%s", mode);
        const char *cfg = config(ITEMS, "[args]\nsize_x = 16\nsize_y = 16\nseed = 2\n"
                                        "dir = k9\nname = n_{index:05}.png\n");
        assert_int_equal(e2e_remove(e2e_path("k9")), 0);
        int pid = E2E_SPAWN("run", cfg, "-j", "2", "--set", set);
        e2e_sleep(0.05 + (rand() % 400) / 1000.0);
        kill(pid, SIGKILL);
        e2e_wait(pid);
        e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "2", "--set", set, "--resume");
        if (o.status != 0 && !strstr(o.err, "nothing to resume"))
            fail_msg("round %d (%s): --resume exit %d: %s", round, mode, o.status, o.err);
        if (o.status != 0) { /* killed before the journal existed: run it whole */
            e2e_free(&o);
            o = E2E_RUN("run", cfg, "-j", "2", "--set", set, "--restart");
        }
        expect(&o, 0, NULL);
        assert_int_equal(count_files(e2e_path("k9")), ITEMS);
        for (int k = 0; k < ITEMS; k += 97)
            check_image(e2e_pathf("k9/n_%05d.png", k), 16, 16, 0, 2, (uint64_t)k);
    }
}

/* ---- names --------------------------------------------------------------- */

static void noise_png_template(void **state)
{
    (void)state;
    const char *cfg = config(5, "output = -\n[args]\nsize_x = 37\nsize_y = 23\n"
                                "dir = tpl\nname = {index:06}-noise.png\n");
    e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "2");
    /* Each item's value is its file's path. */
    char want[256];
    snprintf(want, sizeof want, "\"%s/tpl/000004-noise.png\"\n", tmp);
    if (!strstr(o.out, want))
        fail_msg("stdout:\n%s\nlacks %s", o.out, want);
    expect(&o, 0, "5 ok");
    assert_int_equal(count_files(e2e_path("tpl")), 5);
    for (int k = 0; k < 5; k++)
        check_image(e2e_pathf("tpl/%06d-noise.png", k), W, H, 0, 0, (uint64_t)k);

    /* Folders in the name are made inside dir; item text names files. */
    e2e_write("names.txt", "cat.jpg\nsub/dog.jpeg\n");
    cfg = config(0, "output = -\n[args]\nsize_x = 37\nsize_y = 23\n"
                    "dir = tree\nname = {dir}/{index:02}/{stem}.png\n");
    o = E2E_RUN("run", cfg, "--set", "run.items=lines:names.txt");
    snprintf(want, sizeof want, "\"%s/tree/sub/01/dog.png\"", tmp);
    if (!strstr(o.out, want))
        fail_msg("stdout:\n%s\nlacks %s", o.out, want);
    expect(&o, 0, "2 ok");
    check_image(e2e_path("tree/00/cat.png"), W, H, 0, 0, 0); /* {dir} of cat.jpg is . */
    check_image(e2e_path("tree/sub/01/dog.png"), W, H, 0, 0, 1);
}

/* The placeholders exec's commands have, with the same meanings, in the
 * file name; {%} is refused (a file name must not depend on scheduling). */
static void noise_png_gnu_placeholders(void **state)
{
    (void)state;
    e2e_write("gnu.txt", "a/x.tar.gz\nb/.rc\nc.d/noext\nsp ace/it's.png\n");
    const char *cfg = config(0, "output = -\n[args]\nsize_x = 37\nsize_y = 23\n"
                                "dir = gnu\nname = {//}/{/.}-{#}{ext}.png\n");
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", "run.items=lines:gnu.txt");
    expect(&o, 0, "4 ok");
    check_image(e2e_path("gnu/a/x.tar-1.gz.png"), W, H, 0, 0, 0);
    check_image(e2e_path("gnu/b/.rc-2.png"), W, H, 0, 0, 1);
    check_image(e2e_path("gnu/c.d/noext-3.png"), W, H, 0, 0, 2);
    check_image(e2e_path("gnu/sp ace/it's-4.png.png"), W, H, 0, 0, 3);

    cfg = config(0, "output = -\n[args]\nsize_x = 37\nsize_y = 23\n"
                    "dir = gnu2\nname = {.}_{/}.png\n");
    o = E2E_RUN("run", cfg, "--set", "run.items=lines:gnu.txt");
    expect(&o, 0, "4 ok");
    check_image(e2e_path("gnu2/a/x.tar_x.tar.gz.png"), W, H, 0, 0, 0);
    check_image(e2e_path("gnu2/b/.rc_.rc.png"), W, H, 0, 0, 1);
    check_image(e2e_path("gnu2/c.d/noext_noext.png"), W, H, 0, 0, 2);
    check_image(e2e_path("gnu2/sp ace/it's_it's.png.png"), W, H, 0, 0, 3);
    assert_int_equal(count_files(e2e_path("gnu2")), 4);

    cfg = config(N, "[args]\ndir = gnu3\nname = x_{%}.png\n");
    o = E2E_RUN("run", cfg);
    expect(&o, 2, "placeholder '{%}' at position 3: the job slot depends on which worker");
    cfg = config(N, "[args]\ndir = gnu3\nname = x_{nmae}.png\n");
    o = E2E_RUN("run", cfg);
    expect(&o, 2, "did you mean {name}?");
}

/* "../" that only appears in an item's text: that item fails, the others
 * are written, nothing lands outside the folder. */
static void noise_png_confined(void **state)
{
    (void)state;
    e2e_write("escape.txt", "a\n../b\nc\n/etc/d\n");
    const char *cfg = config(0, "[args]\nsize_x = 37\nsize_y = 23\n"
                                "dir = conf\nname = {}.png\n");
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", "run.items=lines:escape.txt");
    e2e_expect(&o, 1, "output path '../b.png': '..' at position 1 would leave the output "
                      "folder");
    e2e_expect(&o, 1, "output path '/etc/d.png' is absolute");
    e2e_expect(&o, 1, "2 ok, 2 failed");
    e2e_free(&o);
    assert_int_equal(count_files(e2e_path("conf")), 2);
    check_image(e2e_path("conf/c.png"), W, H, 0, 0, 2);
    struct stat st;
    assert_int_equal(stat(e2e_path("b.png"), &st), -1);

    /* A planted symlink to a folder outside: refused, nothing written there. */
    assert_int_equal(mkdir(e2e_path("outside"), 0777), 0);
    assert_int_equal(symlink(e2e_path("outside"), e2e_path("conf/link")), 0);
    cfg = config(3, "[args]\nsize_x = 37\nsize_y = 23\ndir = conf\n"
                    "name = link/{index}.png\n");
    o = E2E_RUN("run", cfg);
    expect(&o, 1, "'link' is a symbolic link or not a folder");
    assert_int_equal(count_files(e2e_path("outside")), 0);
}

/* ---- failures ------------------------------------------------------------ */

static void noise_png_init_errors(void **state)
{
    (void)state;
    /* Root ignores permission bits: a folder under a regular file fails
     * for everyone. */
    e2e_write("somefile", "");
    const char *cfg = config(N, "[args]\ndir = somefile\n");
    e2e_outcome_t o = E2E_RUN("run", cfg);
    char want[256];
    snprintf(want, sizeof want, "cannot open output folder '%s/somefile': Not a directory",
             tmp);
    expect(&o, 2, want);

    cfg = config(N, "[args]\ndir = somefile/sub\n");
    o = E2E_RUN("run", cfg);
    snprintf(want, sizeof want, "cannot create output folder '%s/somefile/sub'", tmp);
    expect(&o, 2, want);

    cfg = config(N, "[args]\ndir = e1\nname = x_{idx}.png\n");
    o = E2E_RUN("run", cfg);
    expect(&o, 2, "init failed: name 'x_{idx}.png': unknown placeholder '{idx}' at position 3");

    cfg = config(N, "[args]\ndir = e2\nname = x_{index.png\n");
    o = E2E_RUN("run", cfg);
    expect(&o, 2, "'{' at position 3 is not closed");

    cfg = config(N, "[args]\ndir = e3\ncompression = 10\n");
    o = E2E_RUN("run", cfg);
    expect(&o, 2, "compression");

    /* weft check validates without creating the folder. */
    cfg = config(N, "[args]\ndir = never_made\n");
    o = E2E_RUN("check", cfg);
    expect(&o, 0, NULL);
    struct stat st;
    assert_int_equal(stat(e2e_path("never_made"), &st), -1);
}

static void noise_png_item_failure(void **state)
{
    (void)state;
    /* A folder where item 3's file goes: its rename fails, the others
     * are written, and no temporary stays. */
    assert_int_equal(e2e_remove(e2e_path("img")), 0);
    assert_int_equal(mkdir(e2e_path("img"), 0777), 0);
    assert_int_equal(mkdir(e2e_path("img/n_000003.png"), 0777), 0);
    const char *cfg = config(N, body);
    e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "2");
    char want[256];
    snprintf(want, sizeof want, "%s/img/n_000003.png: rename: Is a directory", tmp);
    expect(&o, 1, want);
    assert_int_equal(count_files(e2e_path("img")), N);
    check_image(e2e_path("img/n_000004.png"), W, H, 0, 5, 4);
}

/* ---- one run per folder ---------------------------------------------------- */

/* While another process holds the folder (here the test itself, through
 * the same lock weft takes), a run on it is refused before anything runs. */
static void noise_png_folder_in_use(void **state)
{
    (void)state;
    const char *cfg = config(N, body);
    char dir[512], err[512] = "";
    snprintf(dir, sizeof dir, "%s", e2e_path("img"));
    assert_int_equal(e2e_remove(dir), 0);
    weft__outdir_t *held = NULL;
    assert_int_equal(weft__outdir_open(&held, dir, err, sizeof err), 0);

    e2e_outcome_t o = E2E_RUN("run", cfg);
    char want[600];
    snprintf(want, sizeof want, "%s is in use by another weft run (pid %ld)", dir,
             (long)getpid());
    expect(&o, 2, want);
    assert_int_equal(count_files(dir), 0); /* nothing ran */

    /* Released: the next run goes through. */
    weft__outdir_close(&held);
    o = E2E_RUN("run", cfg);
    expect(&o, 0, "60 ok");
    assert_int_equal(count_files(dir), N);
}

/* Items named like weft's own files (the journal, the lock, a temporary)
 * fail; the journal and the lock stay weft's: the run resumes, and the
 * folder is still locked by the lock file. */
static void noise_png_reserved_names(void **state)
{
    (void)state;
    e2e_write("names.txt", ".weft-journal\n.weft.lock\n.a.png.weft-tmp-1-2\nfine\n");
    const char *cfg = config(0, "[args]\nsize_x = 37\nsize_y = 23\n"
                                "dir = own\nname = {}\n");
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", "run.items=lines:names.txt", "-j", "1");
    e2e_expect(&o, 1, "the name '.weft-journal' at position 1 is weft's own");
    e2e_expect(&o, 1, "the name '.weft.lock' at position 1 is weft's own");
    e2e_expect(&o, 1, "the name '.a.png.weft-tmp-1-2' at position 1 is weft's own");
    e2e_expect(&o, 1, "1 ok, 3 failed");
    e2e_free(&o);
    check_image(e2e_path("own/fine"), W, H, 0, 0, 3);
    size_t len = 0;
    char *j = e2e_slurp(e2e_path("own/.weft-journal"), &len);
    assert_non_null(j);
    assert_true(len > 8 && memcmp(j, "\x89PNG", 4) != 0);
    free(j);
    char *lock = e2e_slurp(e2e_path("own/.weft.lock"), &len);
    assert_non_null(lock);
    assert_true(len > 0 && lock[0] >= '1' && lock[0] <= '9'); /* a pid, not an image */
    free(lock);
    /* The journal still reads: a retry of the failed items is refused the
     * same way, the done one is kept. */
    o = E2E_RUN("run", cfg, "--set", "run.items=lines:names.txt", "--resume",
                "--retry-failed");
    e2e_expect(&o, 1, "0 ok, 3 failed, 0 not run, 1 done before");
    e2e_free(&o);
}

/* ---- the shipped configs -------------------------------------------------- */

static void noise_png_shipped_configs(void **state)
{
    (void)state;
    char cfg[512], set[300];
    snprintf(cfg, sizeof cfg, "%s/configs/noise_png.ini", getenv("WEFT_SOURCE_ROOT"));
    snprintf(set, sizeof set, "args.dir=%s/ship", tmp);
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", set, "--set", "run.items=3");
    expect(&o, 0, "3 ok");
    check_image(e2e_path("ship/noise_000002.png"), 100, 100, 0, 0, 2);

    snprintf(cfg, sizeof cfg, "%s/configs/noise_png_large.ini", getenv("WEFT_SOURCE_ROOT"));
    snprintf(set, sizeof set, "args.dir=%s/large", tmp);
    o = E2E_RUN("run", cfg, "--set", set, "--set", "run.items=2");
    expect(&o, 0, "2 ok");
    check_image(e2e_path("large/large_001.png"), 1024, 768, 0, 7, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(noise_png_same_bytes_any_threads),
        cmocka_unit_test(noise_png_sync_modes),
        cmocka_unit_test(noise_png_kill9_resume),
        cmocka_unit_test(noise_png_template),
        cmocka_unit_test(noise_png_gnu_placeholders),
        cmocka_unit_test(noise_png_confined),
        cmocka_unit_test(noise_png_init_errors),
        cmocka_unit_test(noise_png_item_failure),
        cmocka_unit_test(noise_png_folder_in_use),
        cmocka_unit_test(noise_png_reserved_names),
        cmocka_unit_test(noise_png_shipped_configs),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
