/* SPDX-License-Identifier: MIT */
/*
 * noise_png: one 8-bit greyscale PNG of random noise per item.
 *
 * The pixels are the item's random stream (stream = the `seed` argument),
 * filled in one host->rng_fill call, so a file depends only on the run
 * seed, `seed`, the item index and the encoder settings: never on the
 * thread count.  Each file is encoded whole in memory, then written through
 * the host's atomic output files (host->out_open / out_write / out_commit):
 * a hidden temporary name in the output folder, fsync, rename, fsync of the
 * folder, so the final name never holds a partial image, even after a
 * crash.  The file name is the `name` template expanded for the item
 * (default noise_{index:06}.png), confined to the output folder `dir`:
 * a name that would leave it ("../x", an absolute path, a planted symlink)
 * fails that item.
 *
 * No malloc per item: each worker owns its pixels, row pointers, encoded
 * file buffer and an arena that is libpng's allocator (and through it
 * zlib's).  The arena is a bump allocator reset after every image: libpng
 * and zlib ask for ~300 KB per image, and glibc would hand blocks that large
 * back to the kernel on free and fault them in again for the next file.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <zlib.h>

#include <weft/plugin.h>

/* Huffman-only skips the match search, which cannot pay off on noise; the
 * files are the same size (deflate falls back to stored blocks anyway).
 * 2000 images of 100x100 at level 1, one thread: 60 us/image against 63
 * for Z_RLE and 90 for the default or Z_FILTERED. */
#define NOISE_STRATEGY Z_HUFFMAN_ONLY

enum { ARG_SIZE_X, ARG_SIZE_Y, ARG_DIR, ARG_NAME, ARG_SEED, ARG_COMPRESSION };

static const weft_arg_spec_t noise_args[] = {
    [ARG_SIZE_X] = {.name = "size_x", .type = WEFT_ARG_INT, .default_value = "100",
                    .help = "image width in pixels", .min = 1, .max = 65535},
    [ARG_SIZE_Y] = {.name = "size_y", .type = WEFT_ARG_INT, .default_value = "100",
                    .help = "image height in pixels", .min = 1, .max = 65535},
    [ARG_DIR] = {.name = "dir", .type = WEFT_ARG_OUTDIR, .default_value = "out",
                 .help = "output folder (created; one run at a time)"},
    [ARG_NAME] = {.name = "name", .type = WEFT_ARG_STRING,
                  .default_value = "noise_{index:06}.png",
                  .help = "file name template inside dir: {index} {index:06} {#} {} "
                          "{.} {/} {//} {/.} {name} {stem} {ext}; may hold folders, "
                          "never '..'"},
    [ARG_SEED] = {.name = "seed", .type = WEFT_ARG_INT, .default_value = "0",
                  .help = "random stream: another seed gives other images"},
    [ARG_COMPRESSION] = {.name = "compression", .type = WEFT_ARG_INT, .default_value = "1",
                         .help = "zlib level (noise does not compress: 1 is fastest)",
                         .min = 0, .max = 9},
};

typedef struct noise_state {
    const weft_host_t *host;
    uint32_t width, height;
    uint64_t stream;
    int level;
    weft_tmpl_t *name; /* the file name template                           */
    const char *dir;   /* the output folder, for the item's value           */
    size_t dir_len;    /* with the '/' that follows it in paths             */
} noise_state_t;

typedef struct noise_worker {
    alignas(64) const noise_state_t *s; /* own cache line: see aligned_alloc */
    unsigned id;
    unsigned char *pixels; /* width * height, row after row                 */
    png_bytep *rows;       /* rows[y] = pixels + y * width                  */
    unsigned char *arena;  /* libpng's allocator, reset after each image    */
    size_t arena_cap, arena_top, arena_need;
    unsigned char *file;   /* the encoded PNG                               */
    size_t file_len, file_cap;
    char *path;            /* dir + '/' + name: the item's value            */
    char png_err[192];     /* libpng's error message                        */
    weft_outfile_t out;    /* the file being written (holds its names)      */
} noise_worker_t;

/* ---- libpng's allocator: a per-worker bump arena ----------------------- */

enum { ARENA_ALIGN = 16 }; /* alignof(max_align_t) on x86-64 and arm64 */

static png_voidp arena_malloc(png_structp png, png_alloc_size_t n)
{
    noise_worker_t *w = png_get_mem_ptr(png);
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t size = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    w->arena_need += size;
    if (w->arena && size <= w->arena_cap - w->arena_top) {
        void *p = w->arena + w->arena_top;
        w->arena_top += size;
        return p;
    }
    /* Does not fit: the heap serves it, and arena_reset grows the arena so
     * that the next image fits whole. */
    return malloc(n);
}

static void arena_free(png_structp png, png_voidp p)
{
    noise_worker_t *w = png_get_mem_ptr(png);
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)w->arena;
    if (a - base >= w->arena_cap) /* also true for a < base */
        free(p);
    /* Arena blocks are reclaimed all at once by arena_reset. */
}

/* Call only when every libpng object of the image is destroyed. */
static void arena_reset(noise_worker_t *w)
{
    if (w->arena_need > w->arena_cap) {
        free(w->arena);
        w->arena = malloc(w->arena_need);
        w->arena_cap = w->arena ? w->arena_need : 0;
    }
    w->arena_top = 0;
    w->arena_need = 0;
}

/* ---- libpng's output and errors ---------------------------------------- */

static void file_write(png_structp png, png_bytep data, size_t n)
{
    noise_worker_t *w = png_get_io_ptr(png);
    if (n > w->file_cap - w->file_len) {
        /* Only if worker_init's size bound was wrong: then once per worker. */
        size_t cap = w->file_cap;
        while (n > cap - w->file_len) {
            if (cap > SIZE_MAX / 2)
                png_error(png, "encoded file too large");
            cap *= 2;
        }
        unsigned char *p = realloc(w->file, cap);
        if (!p)
            png_error(png, "out of memory");
        w->file = p;
        w->file_cap = cap;
    }
    memcpy(w->file + w->file_len, data, n);
    w->file_len += n;
}

static void file_flush(png_structp png)
{
    (void)png; /* a NULL flush function would make libpng fflush() io_ptr */
}

static void png_fail(png_structp png, png_const_charp msg)
{
    noise_worker_t *w = png_get_error_ptr(png);
    snprintf(w->png_err, sizeof w->png_err, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png, (void)msg; /* nothing we write can draw a warning */
}

/* Encodes w->pixels into w->file.  0, or -1 with the reason in png_err. */
static int encode(noise_worker_t *w)
{
    const noise_state_t *s = w->s;
    w->file_len = 0;
    png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, w, png_fail, png_warn,
                                                w, arena_malloc, arena_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        arena_reset(w);
        snprintf(w->png_err, sizeof w->png_err, "cannot start libpng (out of memory?)");
        return -1;
    }
    /* png and info are not assigned after setjmp, so they keep their values
     * across the longjmp without being volatile; nothing else is read after
     * it. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        arena_reset(w);
        return -1;
    }
    png_set_write_fn(png, w, file_write, file_flush);
    png_set_IHDR(png, info, s->width, s->height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Filters only cost time on noise: nothing to predict. */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, s->level);
    png_set_compression_strategy(png, NOISE_STRATEGY);
    png_write_info(png, info);
    png_write_image(png, w->rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    arena_reset(w);
    return 0;
}

/* ---- one item ------------------------------------------------------------ */

static int noise_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    const noise_state_t *s = state;
    const weft_host_t *host = s->host;
    noise_worker_t *w = ctx;
    char *name = w->path + s->dir_len;
    int name_len = host->tmpl_expand(s->name, item, name, PATH_MAX);
    if (name_len == -ENAMETOOLONG)
        return host->failf(r, "name: the file name of item %" PRIu64 " is over %d bytes",
                           item->index, PATH_MAX - 1);
    if (name_len < 0)
        return host->failf(r, "name: item %" PRIu64 " holds a NUL byte: it cannot be in "
                              "a file name", item->index);

    weft_rng_t rng;
    host->rng_init(host, &rng, item, s->stream);
    host->rng_fill(&rng, w->pixels, (size_t)s->width * s->height);
    if (encode(w) != 0)
        return host->failf(r, "%s: libpng: %s", w->path, w->png_err);

    /* out_open checks the name (confinement) and sets r->msg on failure. */
    if (host->out_open(host, name, &w->out, r) != 0)
        return -1;
    if (host->out_write(host, &w->out, w->file, w->file_len, r) != 0) {
        host->out_discard(host, &w->out);
        return -1;
    }
    if (host->out_commit(host, &w->out, r) != 0)
        return -1;
    weft_result_string(r, w->path, s->dir_len + (size_t)name_len);
    return 0;
}

/* ---- workers ------------------------------------------------------------ */

static void noise_worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)state, (void)worker;
    noise_worker_t *w = ctx;
    if (!w)
        return;
    free(w->pixels);
    free(w->rows);
    free(w->arena);
    free(w->file);
    free(w->path);
    free(w);
}

static int noise_worker_init(void *state, unsigned worker, unsigned workers, void **ctx,
                             char *msg, size_t msg_size)
{
    (void)workers;
    const noise_state_t *s = state;
    noise_worker_t *w = aligned_alloc(64, sizeof *w); /* a multiple of 64 */
    if (!w) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    memset(w, 0, sizeof *w);
    w->s = s;
    w->id = worker;
    size_t raw = (size_t)s->width * s->height;
    /* Stored deflate blocks and IDAT chunk headers add well under 1/256;
     * file_write grows the buffer if this is ever short. */
    w->file_cap = raw + s->height + raw / 256 + 4096;
    w->pixels = calloc(raw, 1);
    w->rows = malloc(s->height * sizeof *w->rows);
    w->file = malloc(w->file_cap);
    w->path = malloc(s->dir_len + PATH_MAX);
    if (!w->pixels || !w->rows || !w->file || !w->path) {
        noise_worker_fini(state, worker, w);
        snprintf(msg, msg_size, "out of memory for %" PRIu32 "x%" PRIu32 " images", s->width,
                 s->height);
        return -1;
    }
    for (uint32_t y = 0; y < s->height; y++)
        w->rows[y] = w->pixels + (size_t)y * s->width;
    memcpy(w->path, s->dir, s->dir_len - 1);
    w->path[s->dir_len - 1] = '/';
    w->out.fd = -1;
    /* A first image, thrown away: sizes the arena to exactly what libpng and
     * zlib take for this size and level, and shows up libpng errors here
     * rather than on every item. */
    if (encode(w) != 0) {
        snprintf(msg, msg_size, "libpng: %s", w->png_err);
        noise_worker_fini(state, worker, w);
        return -1;
    }
    *ctx = w;
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

static void noise_destroy(void *state)
{
    noise_state_t *s = state;
    if (!s)
        return;
    if (s->name)
        s->host->tmpl_free(s->name);
    free(s);
}

static int noise_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                      char *msg, size_t msg_size)
{
    if (!WEFT_HOST_HAS(host, out_write)) {
        snprintf(msg, msg_size, "this runner has no output file API (out_open): update weft");
        return -1;
    }
    noise_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    s->host = host;
    s->width = (uint32_t)args[ARG_SIZE_X].u.i;
    s->height = (uint32_t)args[ARG_SIZE_Y].u.i;
    s->stream = (uint64_t)args[ARG_SEED].u.i;
    s->level = (int)args[ARG_COMPRESSION].u.i;
    s->dir = args[ARG_DIR].u.s; /* the runner created, opened and locked it */
    s->dir_len = strlen(s->dir) + 1;
    char why[512];
    if (host->tmpl_compile(host, args[ARG_NAME].u.s, &s->name, why, sizeof why) != 0) {
        snprintf(msg, msg_size, "name '%s': %s", args[ARG_NAME].u.s, why);
        noise_destroy(s);
        return -1;
    }
    *state = s;
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "noise_png",
    .version = "2.0.0",
    .description = "One 8-bit greyscale PNG of random noise per item",
    .args = noise_args,
    .n_args = sizeof noise_args / sizeof noise_args[0],
    .init = noise_init,
    .worker_init = noise_worker_init,
    .worker_fini = noise_worker_fini,
    .process_one = noise_process,
    .destroy = noise_destroy,
};
