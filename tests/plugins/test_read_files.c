/* SPDX-License-Identifier: MIT */
/*
 * End to end: the read_files plugin run by the weft binary.  Every output
 * object is checked against a serial read done here: same files in the same
 * order, size, an XXH64 computed by a separate one-shot implementation
 * (itself checked against the specification's published values), and the
 * content decoded back (base64 to bytes; text to the bytes with each
 * invalid UTF-8 byte as U+FFFD, and its escaped form compared letter for
 * letter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"
#include "test_util.h"

static const char *tmp; /* the temporary folder, from e2e_setup */

/* A config in the temporary folder (so relative items resolve there). */
static const char *config(const char *items, const char *body)
{
    return e2e_writef("rf.ini",
                      "[run]\nplugin = read_files\nitems = %s\noutput = -\n"
                      "format = json\n%s",
                      items, body);
}

/* ---- reference implementations ---------------------------------------- */

/* XXH64, seed 0, in one shot: deliberately not the plugin's streaming
 * code.  https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md */
static const uint64_t X1 = 0x9E3779B185EBCA87u, X2 = 0xC2B2AE3D27D4EB4Fu,
                      X3 = 0x165667B19E3779F9u, X4 = 0x85EBCA77C2B2AE63u,
                      X5 = 0x27D4EB2F165667C5u;

static uint64_t rol(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t rd(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

static uint64_t lane(uint64_t acc, uint64_t in)
{
    acc += in * X2;
    return rol(acc, 31) * X1;
}

static uint64_t ref_xxh64(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    uint64_t h;
    if (n >= 32) {
        uint64_t acc[4] = {X1 + X2, X2, 0, -X1};
        while (end - p >= 32) {
            for (int k = 0; k < 4; k++, p += 8)
                acc[k] = lane(acc[k], rd(p, 8));
        }
        h = rol(acc[0], 1) + rol(acc[1], 7) + rol(acc[2], 12) + rol(acc[3], 18);
        for (int k = 0; k < 4; k++) {
            h ^= lane(0, acc[k]);
            h = h * X1 + X4;
        }
    } else {
        h = X5;
    }
    h += n;
    while (end - p >= 8) {
        h ^= lane(0, rd(p, 8));
        h = rol(h, 27) * X1 + X4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= rd(p, 4) * X1;
        h = rol(h, 23) * X2 + X3;
        p += 4;
    }
    while (p < end) {
        h ^= *p++ * X5;
        h = rol(h, 11) * X1;
    }
    h ^= h >> 33, h *= X2, h ^= h >> 29, h *= X3, h ^= h >> 32;
    return h;
}

/* The well-formed UTF-8 sequence at s, decoded: its length or 0. */
static size_t ref_utf8(const unsigned char *s, size_t n)
{
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xE0) == 0xC0 ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (len <= 1 || len > n)
        return len == 1;
    uint32_t v = s[0] & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[k] & 0x3F);
    }
    return v < least[len] || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000) ? 0 : len;
}

static bool ref_is_text(const unsigned char *s, size_t n)
{
    for (size_t k = 0, m; k < n; k += m)
        if (s[k] == 0 || !(m = ref_utf8(s + k, n - k)))
            return false;
    return true;
}

/* The JSON string literal (quotes included) the plugin must write for s:
 * or, with `decoded`, the bytes a JSON parser gives back. */
static char *ref_text(const unsigned char *s, size_t n, bool decoded, size_t *len)
{
    char *out = malloc(n * 6 + 3), *o = out;
    assert_non_null(out);
    if (!decoded)
        *o++ = '"';
    for (size_t k = 0; k < n;) {
        size_t m = ref_utf8(s + k, n - k);
        const char *esc = NULL;
        if (!m) {
            o += sprintf(o, "\xEF\xBF\xBD");
            k++;
            continue;
        }
        if (!decoded && m == 1) {
            static const char *const named[] = {
                ['"'] = "\\\"", ['\\'] = "\\\\", ['\b'] = "\\b", ['\f'] = "\\f",
                ['\n'] = "\\n", ['\r'] = "\\r",  ['\t'] = "\\t"};
            esc = s[k] <= '\\' ? named[s[k]] : NULL;
            if (!esc && s[k] < 0x20) {
                o += sprintf(o, "\\u%04x", s[k]);
                k++;
                continue;
            }
        }
        if (esc) {
            o += sprintf(o, "%s", esc);
        } else {
            memcpy(o, s + k, m);
            o += m;
        }
        k += m;
    }
    if (!decoded)
        *o++ = '"';
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

/* Decodes padded standard base64; NULL if s is not exactly that. */
static unsigned char *ref_unbase64(const char *s, size_t *len)
{
    size_t n = strlen(s);
    if (n % 4)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    assert_non_null(out);
    size_t o = 0;
    for (size_t k = 0; k < n; k += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = s[k + j];
            const char *abc =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            const char *at = c ? strchr(abc, c) : NULL;
            if (c == '=' && k + 4 == n && j >= 2 && (j == 3 || s[k + 3] == '=')) {
                pad++;
                v <<= 6;
            } else if (at && !pad) {
                v = v << 6 | (uint32_t)(at - abc);
            } else {
                free(out);
                return NULL;
            }
        }
        out[o++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)v;
    }
    *len = o;
    return out;
}

/* ---- the serial read -------------------------------------------------- */

typedef struct ref_file {
    char *path;
    unsigned char *data;
    size_t len;
} ref_file_t;

typedef struct ref {
    ref_file_t f[16];
    size_t n;
} ref_t;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const ref_file_t *)a)->path, ((const ref_file_t *)b)->path);
}

static void ref_add(ref_t *r, const char *path)
{
    assert_true(r->n < 16);
    ref_file_t *f = &r->f[r->n++];
    f->path = strdup(path);
    f->data = (unsigned char *)e2e_slurp(path, &f->len);
    assert_non_null(f->path);
    assert_non_null(f->data);
}

/* Reads path to its end, for files whose size fstat does not tell. */
static unsigned char *read_to_end(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    assert_non_null(b);
    for (size_t got; (got = fread(b + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            b = realloc(b, cap *= 2);
            assert_non_null(b);
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* What items = files:DIR gives: regular files (links followed), no dot
 * names, sorted by name. */
static ref_t ref_read_dir(const char *dir)
{
    ref_t r = {.n = 0};
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            ref_add(&r, path);
    }
    closedir(d);
    qsort(r.f, r.n, sizeof r.f[0], by_name);
    return r;
}

/* The file whose path ends with suffix. */
static const ref_file_t *ref_find(const ref_t *r, const char *suffix)
{
    for (size_t k = 0; k < r->n; k++) {
        size_t n = strlen(r->f[k].path), m = strlen(suffix);
        if (n >= m && strcmp(r->f[k].path + n - m, suffix) == 0)
            return &r->f[k];
    }
    fail_msg("no reference file *%s", suffix);
    return NULL;
}

static void ref_free(ref_t *r)
{
    for (size_t k = 0; k < r->n; k++) {
        free(r->f[k].path);
        free(r->f[k].data);
    }
    r->n = 0;
}

/* Checks one output object against f.  mode: the content argument; out:
 * the whole output, where the text literal must appear as written. */
static void check_object(const cJSON *o, const ref_file_t *f, const char *path,
                         const char *mode, const char *out)
{
    if (!cJSON_IsObject(o))
        fail_msg("%s: not an object", path);
    bool none = strcmp(mode, "none") == 0;
    assert_int_equal(cJSON_GetArraySize(o), none ? 3 : 5);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(o, "xxh64");
    assert_true(cJSON_IsString(p));
    assert_string_equal(p->valuestring, path);
    assert_true(cJSON_IsNumber(size));
    assert_true(size->valuedouble == (double)f->len);
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, ref_xxh64(f->data, f->len));
    assert_true(cJSON_IsString(hash));
    if (strcmp(hash->valuestring, want) != 0)
        fail_msg("%s: xxh64 %s, want %s", path, hash->valuestring, want);
    if (none)
        return;

    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(o, "encoding");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
    assert_true(cJSON_IsString(enc));
    assert_true(cJSON_IsString(c));
    const char *want_enc = strcmp(mode, "auto") != 0      ? mode
                           : ref_is_text(f->data, f->len) ? "text"
                                                          : "base64";
    if (strcmp(enc->valuestring, want_enc) != 0)
        fail_msg("%s: encoding %s, want %s (content = %s)", path, enc->valuestring,
                 want_enc, mode);
    if (strcmp(want_enc, "base64") == 0) {
        size_t len;
        unsigned char *bytes = ref_unbase64(c->valuestring, &len);
        if (!bytes)
            fail_msg("%s: content is not padded base64", path);
        assert_int_equal(len, f->len);
        assert_memory_equal(bytes, f->data, len);
        free(bytes);
        return;
    }
    size_t len;
    char *text = ref_text(f->data, f->len, true, &len);
    if (!memchr(f->data, 0, f->len)) /* cJSON's strings end at a \u0000 */
        assert_string_equal(c->valuestring, text);
    free(text);
    /* The runner keeps strings to the letter: the escapes must be ours. */
    char *lit = ref_text(f->data, f->len, false, &len);
    char *whole = malloc(len + 16);
    assert_non_null(whole);
    snprintf(whole, len + 16, "\"content\":%s}", lit);
    if (!strstr(out, whole))
        fail_msg("%s: output lacks the content literal %.200s", path, whole);
    free(whole);
    free(lit);
}

/* ---- the tree ------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    tmp = e2e_setup("rf");
    if (!tmp)
        return -1;

    if (mkdir(e2e_path("tree"), 0777) != 0)
        return -1;
    e2e_write_bytes("tree/a.txt", "hello\n", 6);
    static const char utf[] = "h\xC3\xA9llo \"q\" \\ / \t\x01\x1F\x7F \xE2\x9C\x93 "
                              "\xF0\x9D\x84\x9E \xE2\x80\xA8\r\n";
    e2e_write_bytes("tree/b.txt", utf, sizeof utf - 1);
    e2e_write_bytes("tree/empty", "", 0);
    /* Text for a JSON string, but not for auto: a NUL; invalid UTF-8. */
    e2e_write_bytes("tree/nul.txt", "a\0b", 3);
    e2e_write_bytes("tree/latin1.txt", "caf\xE9\n", 5);
    e2e_write_bytes("tree/name with spaces \"and\" quotes \\ 'too'.txt", "odd name\n", 9);
    e2e_write_bytes("tree/.hidden", "skipped by files:", 17);

    /* Every byte value, then ill-formed UTF-8: a lone lead byte, a
     * surrogate, past U+10FFFF, overlong forms, a sequence cut at the end. */
    unsigned char bin[256 + 32];
    for (int k = 0; k < 256; k++)
        bin[k] = (unsigned char)k;
    static const unsigned char bad[] = {0xC3, '(',  0xED, 0xA0, 0x80, 0xF4,
                                        0x90, 0x80, 0x80, 0xE0, 0x80, 0xAF,
                                        0xC0, 0x80, 0x00, 0xF0, 0x9F, 0x98};
    memcpy(bin + 256, bad, sizeof bad);
    e2e_write_bytes("tree/bin.dat", bin, 256 + sizeof bad);

    /* Over 3 MB of valid UTF-8: several read chunks, 1..4-byte characters,
     * escapes; its size is no multiple of 3 or 32. */
    size_t cap = 3300000, len = 0;
    char *big = malloc(cap);
    if (!big)
        return -1;
    for (unsigned line = 0; len < 3u << 20; line++)
        len += (size_t)snprintf(
            big + len, cap - len,
            "%u: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \"q\" \\ \t|\n",
            line * 2654435761u);
    e2e_write_bytes("tree/big.txt", big, len);
    free(big);
    if (symlink("a.txt", e2e_path("tree/link")) != 0)
        return -1;
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void read_files_reference_checksum(void **state)
{
    (void)state;
    /* Published XXH64 values (seed 0): the reference must agree first. */
    assert_true(ref_xxh64((const unsigned char *)"", 0) == 0xEF46DB3751D8E999u);
    assert_true(ref_xxh64((const unsigned char *)"a", 1) == 0xD24EC4F1A98C6E5Bu);
    assert_true(ref_xxh64((const unsigned char *)"abc", 3) == 0x44BC2CF5AD770999u);
    static const char nobody[] = "Nobody inspects the spammish repetition";
    assert_true(ref_xxh64((const unsigned char *)nobody, sizeof nobody - 1) ==
                0xFBCEA83C8A378BF1u);
}

/* Every content mode at 1, 2 and 8 threads matches the serial read. */
static void read_files_matches_serial_read(void **state)
{
    (void)state;
    ref_t ref = ref_read_dir(e2e_path("tree"));
    assert_int_equal(ref.n, 9); /* a b big bin empty latin1 link odd nul */
    char items[128], ok[32];
    snprintf(items, sizeof items, "files:%s/tree", tmp);
    snprintf(ok, sizeof ok, "%zu ok, 0 failed", ref.n);
    const char *cfg = config(items, "");
    static const char *const modes[] = {"none", "text", "base64", "auto"};
    static const char *const threads[] = {"1", "2", "8"};
    for (int m = 0; m < 4; m++) {
        char set[64];
        snprintf(set, sizeof set, "args.content=%s", modes[m]);
        for (int t = 0; t < 3; t++) {
            e2e_outcome_t o = E2E_RUN("run", cfg, "-j", threads[t], "--set", set);
            e2e_expect(&o, 0, ok);
            cJSON *j = json_parse(o.out);
            assert_int_equal(cJSON_GetArraySize(j), (int)ref.n);
            for (size_t k = 0; k < ref.n; k++)
                check_object(cJSON_GetArrayItem(j, (int)k), &ref.f[k], ref.f[k].path,
                             modes[m], o.out);
            cJSON_Delete(j);
            e2e_free(&o);
        }
    }
    /* auto really mixes: b.txt is text; bin.dat, latin1.txt, nul.txt not. */
    assert_true(
        ref_is_text(ref_find(&ref, "/b.txt")->data, ref_find(&ref, "/b.txt")->len));
    static const char *const binary[] = {"/bin.dat", "/latin1.txt", "/nul.txt"};
    for (int k = 0; k < 3; k++) {
        const ref_file_t *f = ref_find(&ref, binary[k]);
        assert_false(ref_is_text(f->data, f->len));
    }

    /* No thread count: the plugin is I/O bound, so 4 per CPU (at most one
     * per item). */
    cpu_set_t cpus;
    assert_int_equal(sched_getaffinity(0, sizeof cpus, &cpus), 0);
    unsigned want = 4u * (unsigned)CPU_COUNT(&cpus);
    char threads_text[32];
    snprintf(threads_text, sizeof threads_text, "%u threads)",
             want < ref.n ? want : (unsigned)ref.n);
    e2e_outcome_t o = E2E_RUN("run", cfg);
    e2e_expect(&o, 0, threads_text);
    e2e_free(&o);
    ref_free(&ref);
}

/* A list with a missing file, a folder, a FIFO, a NUL byte and a relative
 * path: each bad one is its item's error; the others are all there. */
static void read_files_item_errors(void **state)
{
    (void)state;
    assert_int_equal(mkfifo(e2e_path("fifo"), 0666), 0);
    char list[1024];
    int n = snprintf(list, sizeof list,
                     "tree/a.txt\n%s/missing\n%s/tree\n%s/fifo\n%s/tree/b.txt\n"
                     "tree/a.txt",
                     tmp, tmp, tmp, tmp);
    list[n++] = '\0'; /* line 5 is "tree/a.txt\0x": not the path tree/a.txt */
    n += snprintf(list + n, sizeof list - (size_t)n, "x\n");
    e2e_write_bytes("list", list, (size_t)n);
    const char *cfg = config("lines:list", "[args]\ncontent = auto\n");

    char want[6][256];
    snprintf(want[1], sizeof want[1], "%s/missing: No such file or directory", tmp);
    snprintf(want[2], sizeof want[2], "%s/tree: Is a directory", tmp);
    snprintf(want[3], sizeof want[3], "%s/fifo: a FIFO", tmp);
    snprintf(want[5], sizeof want[5], "tree/a.txt: the path holds a NUL byte");
    ref_t ref = {.n = 0};
    ref_add(&ref, e2e_path("tree/a.txt"));
    ref_add(&ref, e2e_path("tree/b.txt"));

    e2e_outcome_t o = E2E_RUN("run", cfg, "-j", "3");
    e2e_expect(&o, 1, "4 failed");
    char line[300];
    for (int k = 1; k <= 5; k++) {
        if (k == 4)
            continue;
        snprintf(line, sizeof line, "item %d failed: %s\n", k, want[k]);
        e2e_expect(&o, 1, line);
    }
    cJSON *j = json_parse(o.out);
    assert_int_equal(cJSON_GetArraySize(j), 6);
    check_object(cJSON_GetArrayItem(j, 0), &ref.f[0], "tree/a.txt", "auto", o.out);
    check_object(cJSON_GetArrayItem(j, 4), &ref.f[1], ref.f[1].path, "auto", o.out);
    for (int k = 1; k <= 5; k++)
        if (k != 4)
            assert_true(cJSON_IsNull(cJSON_GetArrayItem(j, k)));
    cJSON_Delete(j);
    e2e_free(&o);

    /* record = full: each failure carries its message. */
    o = E2E_RUN("run", cfg, "--set", "run.record=full");
    e2e_expect(&o, 1, "4 failed");
    j = json_parse(o.out);
    assert_int_equal(cJSON_GetArraySize(j), 6);
    for (int k = 0; k < 6; k++) {
        const cJSON *rec = cJSON_GetArrayItem(j, k);
        bool good = k == 0 || k == 4;
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(rec, "index")->valueint, k);
        assert_true(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(rec, "ok")));
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "ok")), good);
        if (good) {
            check_object(cJSON_GetObjectItemCaseSensitive(rec, "value"),
                         &ref.f[k ? 1 : 0], k ? ref.f[1].path : "tree/a.txt", "auto",
                         o.out);
        } else {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(rec, "error");
            assert_true(cJSON_IsString(e));
            assert_string_equal(e->valuestring, want[k]);
        }
    }
    cJSON_Delete(j);
    e2e_free(&o);
    ref_free(&ref);
    unlink(e2e_path("fifo"));
}

static void read_files_max_size(void **state)
{
    (void)state;
    ref_t ref = ref_read_dir(e2e_path("tree"));
    char items[128];
    snprintf(items, sizeof items, "files:%s/tree", tmp);
    /* Up to 6 bytes pass (a.txt, the link to it, the small ones). */
    size_t small = 0;
    for (size_t k = 0; k < ref.n; k++)
        small += ref.f[k].len <= 6;
    assert_int_equal(small, 5);
    const char *cfg = config(items, "[args]\nmax_size = 6\n");
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", "run.record=full");
    e2e_expect(&o, 1, "5 ok, 4 failed");
    cJSON *j = json_parse(o.out);
    assert_int_equal(cJSON_GetArraySize(j), (int)ref.n);
    for (size_t k = 0; k < ref.n; k++) {
        const cJSON *rec = cJSON_GetArrayItem(j, (int)k);
        bool fits = ref.f[k].len <= 6;
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "ok")), fits);
        if (fits) {
            check_object(cJSON_GetObjectItemCaseSensitive(rec, "value"), &ref.f[k],
                         ref.f[k].path, "none", o.out);
            continue;
        }
        char want[512];
        snprintf(want, sizeof want, "%s: file is %zu bytes, over max_size 6",
                 ref.f[k].path, ref.f[k].len);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(rec, "error")->valuestring,
                            want);
    }
    cJSON_Delete(j);
    e2e_free(&o);

    /* 0: no limit; a limit of exactly the biggest size passes it. */
    o = E2E_RUN("run", cfg, "--set", "args.max_size=0");
    e2e_expect(&o, 0, "9 ok, 0 failed");
    e2e_free(&o);
    size_t biggest = 0;
    for (size_t k = 0; k < ref.n; k++)
        biggest = ref.f[k].len > biggest ? ref.f[k].len : biggest;
    char set[64];
    snprintf(set, sizeof set, "args.max_size=%zu", biggest);
    o = E2E_RUN("run", cfg, "--set", set, "--set", "args.content=base64");
    e2e_expect(&o, 0, "9 ok, 0 failed");
    e2e_free(&o);
    snprintf(set, sizeof set, "args.max_size=%zu", biggest - 1);
    o = E2E_RUN("run", cfg, "--set", set);
    e2e_expect(&o, 1, "8 ok, 1 failed");
    e2e_free(&o);
    ref_free(&ref);
}

static void read_files_symlinks(void **state)
{
    (void)state;
    assert_int_equal(symlink("tree", e2e_path("treelink")), 0);
    assert_int_equal(symlink("nowhere", e2e_path("tree-dangling")), 0);
    static const char links[] = "tree/link\ntreelink/a.txt\ntree-dangling\n";
    e2e_write_bytes("links", links, sizeof links - 1);
    ref_t ref = {.n = 0};
    ref_add(&ref, e2e_path("tree/a.txt"));
    const char *cfg = config("lines:links", "[args]\ncontent = text\n");

    /* Followed: the link's path, the target's bytes. */
    e2e_outcome_t o = E2E_RUN("run", cfg);
    e2e_expect(&o, 1, "item 2 failed: tree-dangling: No such file or directory\n");
    cJSON *j = json_parse(o.out);
    check_object(cJSON_GetArrayItem(j, 0), &ref.f[0], "tree/link", "text", o.out);
    check_object(cJSON_GetArrayItem(j, 1), &ref.f[0], "treelink/a.txt", "text", o.out);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(j, 2)));
    cJSON_Delete(j);
    e2e_free(&o);

    /* Not followed: a link as the last component fails (O_NOFOLLOW); a
     * link to a folder earlier in the path is still followed. */
    o = E2E_RUN("run", cfg, "--set", "args.follow_symlinks=false");
    e2e_expect(&o, 1,
               "item 0 failed: tree/link: a symbolic link, and follow_symlinks is "
               "false\n");
    e2e_expect(&o, 1,
               "item 2 failed: tree-dangling: a symbolic link, and follow_symlinks "
               "is false\n");
    e2e_expect(&o, 1, "1 ok, 2 failed");
    j = json_parse(o.out);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(j, 0)));
    check_object(cJSON_GetArrayItem(j, 1), &ref.f[0], "treelink/a.txt", "text", o.out);
    cJSON_Delete(j);
    e2e_free(&o);
    ref_free(&ref);
}

/* /proc/kallsyms: size 0 to fstat, megabytes to read, and read(2) returns
 * about a page at a time, cut at record boundaries.  So the checksum must
 * carry partial stripes between reads, and the buffer grow past the size
 * fstat gave.  Regular files from the page cache never read short. */
static void read_files_short_reads(void **state)
{
    (void)state;
    char path[] = "/proc/kallsyms";
    ref_file_t f = {.path = path};
    f.data = read_to_end(path, &f.len);
    if (!f.data || f.len < (1u << 20)) {
        free(f.data);
        skip(); /* no /proc, or a tiny one: nothing reads short here */
    }
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    e2e_write_bytes("proc-list", "/proc/kallsyms\n", 15);
    const char *cfg = config("lines:proc-list", "");
    static const char *const modes[] = {"none", "base64"};
    for (int m = 0; m < 2; m++) {
        char set[64];
        snprintf(set, sizeof set, "args.content=%s", modes[m]);
        e2e_outcome_t o = E2E_RUN("run", cfg, "--set", set);
        e2e_expect(&o, 0, "1 ok, 0 failed");
        cJSON *j = json_parse(o.out);
        check_object(cJSON_GetArrayItem(j, 0), &f, path, modes[m], o.out);
        cJSON_Delete(j);
        e2e_free(&o);
    }
    /* max_size holds while reading too, when fstat did not tell. */
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", "args.max_size=1048576");
    e2e_expect(&o, 1,
               "item 0 failed: /proc/kallsyms: over max_size 1048576 after reading ");
    e2e_free(&o);
    free(f.data);
}

static void read_files_bad_arguments(void **state)
{
    (void)state;
    const char *cfg = config("files:tree", "");
    e2e_outcome_t o = E2E_RUN("run", cfg, "--set", "args.content=binary");
    e2e_expect(&o, 2, "content = 'binary': expected one of none|text|base64|auto");
    e2e_free(&o);
    o = E2E_RUN("run", cfg, "--set", "args.max_size=-1");
    e2e_expect(&o, 2, "max_size");
    e2e_free(&o);
    o = E2E_RUN("run", cfg, "--set", "args.follow_symlinks=maybe");
    e2e_expect(&o, 2, "follow_symlinks");
    e2e_free(&o);
    /* Numbers are not paths: every item fails, the run does not. */
    cfg = config("3", "");
    o = E2E_RUN("run", cfg);
    e2e_expect(&o, 1, "item 0 failed: item 0 is a number, not a path");
    e2e_expect(&o, 1, "0 ok, 3 failed");
    assert_string_equal(o.out, "[\nnull,\nnull,\nnull\n]\n");
    e2e_free(&o);
}

static void read_files_shipped_config(void **state)
{
    (void)state;
    char cfg[512], dir[512];
    snprintf(cfg, sizeof cfg, "%s/configs/read_files.ini", getenv("WEFT_SOURCE_ROOT"));
    snprintf(dir, sizeof dir, "%s/configs/sample_files", getenv("WEFT_SOURCE_ROOT"));
    ref_t ref = ref_read_dir(dir);
    assert_true(ref.n >= 4);
    e2e_outcome_t o = E2E_RUN("run", cfg);
    char ok[32];
    snprintf(ok, sizeof ok, "%zu ok, 0 failed", ref.n);
    e2e_expect(&o, 0, ok);
    cJSON *j = json_parse(o.out);
    assert_int_equal(cJSON_GetArraySize(j), (int)ref.n);
    int base64 = 0;
    for (size_t k = 0; k < ref.n; k++) {
        const cJSON *obj = cJSON_GetArrayItem(j, (int)k);
        /* The config's folder may be reached through another path. */
        const char *path = cJSON_GetObjectItemCaseSensitive(obj, "path")->valuestring;
        const char *base = strrchr(ref.f[k].path, '/');
        assert_non_null(base);
        assert_true(strlen(path) >= strlen(base));
        assert_string_equal(path + strlen(path) - strlen(base), base);
        check_object(obj, &ref.f[k], path, "auto", o.out);
        base64 += strcmp(cJSON_GetObjectItemCaseSensitive(obj, "encoding")->valuestring,
                         "base64") == 0;
    }
    assert_int_equal(base64, 1); /* the one binary sample */
    cJSON_Delete(j);
    e2e_free(&o);
    ref_free(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_files_reference_checksum),
        cmocka_unit_test(read_files_matches_serial_read),
        cmocka_unit_test(read_files_item_errors),
        cmocka_unit_test(read_files_max_size),
        cmocka_unit_test(read_files_symlinks),
        cmocka_unit_test(read_files_short_reads),
        cmocka_unit_test(read_files_bad_arguments),
        cmocka_unit_test(read_files_shipped_config),
    };
    return cmocka_run_group_tests(tests, setup, e2e_teardown);
}
