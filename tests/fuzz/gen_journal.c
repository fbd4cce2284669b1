/* SPDX-License-Identifier: MIT */
/*
 * Writes the journal seeds of tests/fuzz/corpus/journal with the real
 * writer (core/journal/journal.c), so the seeds are what weft writes:
 *
 *   build/tests/fuzz/fuzz_gen_journal tests/fuzz/corpus/journal
 *
 * header_only, finished (a run with windows, DONE chunks of every status
 * and END), crashed_twice (two sessions cut short, the second one in
 * careful mode with BEGIN: poison), resumed_finished, stopped (a STOP
 * record), crash_record (a CRASH record), and torn_tail / bad_checksum (finished, cut in
 * its last record / one byte flipped).  Every other entry is TIMED (format 3:
 * attempts, start, runtime).  format2_finished, the format 2 `finished`, is
 * kept as written by the weft before format 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

static const weft__jheader_t header = {
    .config = "run.items=0..12\nrun.output=out.json\nargs.level=3\nargs.name=x y",
    .plugin = "noise_png 1.0 xxh=0123456789abcdef",
    .items = "range:0:12 count=12 fp=42",
};

static void die(const char *what, int rc, const char *err)
{
    fprintf(stderr, "gen_journal: %s: %d %s\n", what, rc, err ? err : "");
    exit(1);
}

/* One DONE chunk of entries [first, first + n), statuses cycling. */
static void done(weft__journal_t *j, uint64_t first, uint64_t n)
{
    weft__buf_t b = {0};
    size_t mark;
    int rc = weft__jchunk_begin(&b, &mark);
    for (uint64_t i = first; rc == 0 && i < first + n; i++) {
        char bytes[64], msg[64];
        unsigned status = (unsigned)(i % 5) + 1;
        int len =
            snprintf(bytes, sizeof bytes, "{\"index\":%llu}", (unsigned long long)i);
        int mlen = status == WEFT__J_OK ? 0
                                        : snprintf(msg, sizeof msg, "item %llu failed",
                                                   (unsigned long long)i);
        weft__jtime_t t = {(unsigned)(i % 3) + 1, 1764806400000000u + i * 250000u,
                           i * 4099u};
        rc = weft__jchunk_add_timed(&b, i, i * 0x9E3779B97F4A7C15u, status, 1, bytes,
                                    i % 4 == 3 ? 0 : (size_t)len, msg, (size_t)mlen,
                                    i % 2 ? NULL : &t);
    }
    if (rc)
        die("chunk", rc, NULL);
    weft__jchunk_end(&b, mark);
    rc = weft__journal_append(j, b.data + mark, b.len - mark);
    weft__buf_free(&b);
    if (rc)
        die("append", rc, NULL);
}

static weft__journal_t *create(const char *dir, const char *name)
{
    char path[4096], err[256];
    weft__journal_t *j = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = weft__journal_create(&j, path, &header, err, sizeof err);
    if (rc)
        die(path, rc, err);
    return j;
}

static void finish(weft__journal_t **j)
{
    int rc = weft__journal_close(j);
    if (rc)
        die("close", rc, NULL);
}

/* Rewrites dir/name cut to `keep` bytes, with byte `flip` (if >= 0) xored. */
static void derive(const char *dir, const char *from, const char *name, long cut,
                   long flip)
{
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", dir, from);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    FILE *f = fopen(src, "rb");
    if (!f)
        die(src, -errno, NULL);
    unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (cut > 0 && (size_t)cut < n)
        n -= (size_t)cut;
    if (flip >= 0 && (size_t)flip < n)
        buf[n - 1 - (size_t)flip] ^= 0x40;
    f = fopen(dst, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
        die(dst, -errno, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    mkdir(dir, 0777);

    weft__journal_t *j = create(dir, "header_only");
    finish(&j);

    j = create(dir, "finished");
    weft__journal_session(j, 1, 0);
    weft__journal_window(j, 0, 8);
    done(j, 0, 5);
    done(j, 5, 3);
    weft__journal_window(j, 8, 4);
    done(j, 8, 4);
    weft__journal_end(j, 9, 3);
    finish(&j);

    j = create(dir, "crashed_twice");
    weft__journal_session(j, 1, 0);
    weft__journal_window(j, 0, 6);
    done(j, 0, 2);
    done(j, 4, 1); /* 2, 3 and 5 in flight at the crash */
    weft__journal_session(j, 2, WEFT__JS_RESUME | WEFT__JS_CAREFUL);
    weft__journal_begin(j, 2);
    done(j, 2, 1);
    weft__journal_begin(j, 3); /* in flight again: poison */
    finish(&j);

    j = create(dir, "resumed_finished");
    weft__journal_session(j, 1, 0);
    weft__journal_window(j, 0, 12);
    done(j, 0, 3);
    weft__journal_session(j, 2, WEFT__JS_RESUME);
    weft__journal_window(j, 3, 9);
    done(j, 3, 9);
    done(j, 1, 1); /* a retry: the later entry wins */
    weft__journal_end(j, 10, 2);
    finish(&j);

    j = create(dir, "stopped");
    weft__journal_session(j, 1, 0);
    weft__journal_window(j, 0, 4);
    done(j, 0, 2);
    weft__journal_stop(j);
    finish(&j);

    j = create(dir, "crash_record");
    weft__journal_session(j, 1, 0);
    weft__journal_window(j, 0, 8);
    done(j, 0, 3);
    {
        const uint64_t in_flight[] = {3, 4, 6};
        unsigned char rec[128];
        size_t n = weft__journal_crash_record(rec, sizeof rec, 11, in_flight, 3);
        int rc = weft__journal_append(j, rec, n);
        if (rc)
            die("crash record", rc, NULL);
    }
    finish(&j);

    derive(dir, "finished", "torn_tail", 5, -1);
    derive(dir, "finished", "bad_checksum", 0, 20);
    return 0;
}
