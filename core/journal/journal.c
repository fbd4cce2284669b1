/* SPDX-License-Identifier: MIT */
/* The run journal: format in journal.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <xxhash.h>

#include "journal.h"
#include "util.h"
#include "weft/weft.h"

static const char file_magic[8] = {'W', 'E', 'F', 'T', 'J', 'R', 'N', '1'};

#define DONE_HDR 12u /* u32 n, u64 base */
#define CHUNK_HDR (WEFT__JREC_HDR + DONE_HDR)
/* The most bytes an entry's fields take besides bytes and msg: the index
 * delta (10), item_hash (8), status (1), records, len, msg_len (5 each),
 * and a TIMED entry's attempts (5), start_us and runtime_us (10 each). */
#define ENTRY_MAX 59u

/* ---- little-endian fields ------------------------------------------------ */

static uint32_t ld32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t ld64(const unsigned char *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static void st32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static void st64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* ---- varints (LEB128: 7 bits a byte, low group first) --------------------- */

static size_t put_uv(unsigned char *p, uint64_t v)
{
    size_t k = 0;
    while (v >= 0x80) {
        p[k++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[k++] = (unsigned char)v;
    return k;
}

/* An entry's index relative to prev: the zigzag of the true difference, a
 * 65-bit number 2 * mag + neg (index = prev + mag, or prev - mag - 1 when
 * neg), so that every index is reachable from every prev without wrapping.
 * Its first byte holds neg and the 6 low bits of mag; the rest of mag
 * follows as a plain varint (at most 9 bytes). */
static size_t put_delta(unsigned char *p, uint64_t prev, uint64_t index)
{
    unsigned neg = index < prev;
    uint64_t mag = neg ? prev - index - 1 : index - prev;
    unsigned char b = (unsigned char)(neg | (mag & 0x3F) << 1);
    if (mag < 0x40) {
        p[0] = b;
        return 1;
    }
    p[0] = b | 0x80;
    return 1 + put_uv(p + 1, mag >> 6);
}

/* Reads a varint of at most `bits` bits from [*pp, end).  False when it runs
 * past end, does not fit `bits` (so is at most ceil(bits / 7) bytes), or is
 * overlong (a last group of 0 after others: each value has one encoding). */
static bool get_uv(const unsigned char **pp, const unsigned char *end, unsigned bits,
                   uint64_t *out)
{
    const unsigned char *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (p == end || shift >= bits)
            return false;
        unsigned b = *p++;
        uint64_t g = b & 0x7Fu;
        if (bits - shift < 7 && g >> (bits - shift))
            return false;
        v |= g << shift;
        if (!(b & 0x80)) {
            if (g == 0 && shift)
                return false;
            break;
        }
    }
    *out = v;
    *pp = p;
    return true;
}

/* The checked reading of put_delta; false also when the index would leave
 * [0, 2^64). */
static bool get_delta(const unsigned char **pp, const unsigned char *end, uint64_t prev,
                      uint64_t *index)
{
    const unsigned char *p = *pp;
    if (p == end)
        return false;
    unsigned b = *p++;
    uint64_t mag = (b >> 1) & 0x3Fu, hi = 0;
    if (b & 0x80) {
        if (!get_uv(&p, end, 58, &hi) || hi == 0) /* 0: overlong */
            return false;
        mag |= hi << 6;
    }
    if (b & 1) {
        if (mag >= prev)
            return false;
        *index = prev - mag - 1;
    } else {
        if (mag > UINT64_MAX - prev)
            return false;
        *index = prev + mag;
    }
    *pp = p;
    return true;
}

/* Unchecked readings, for entries already validated by done_valid. */
static uint64_t uv(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint64_t v = 0;
    unsigned shift = 0, b;
    do {
        b = *p++;
        v |= (uint64_t)(b & 0x7Fu) << shift;
        shift += 7;
    } while (b & 0x80);
    *pp = p;
    return v;
}

static uint64_t delta(const unsigned char **pp, uint64_t prev)
{
    unsigned b = *(*pp)++;
    uint64_t mag = (b >> 1) & 0x3Fu;
    if (b & 0x80)
        mag |= uv(pp) << 6;
    return b & 1 ? prev - mag - 1 : prev + mag;
}

/* Decodes the fields after an entry's index delta (at e, validated) into r
 * (all but r->index); returns where the next entry starts. */
static const unsigned char *entry_body(const unsigned char *e, weft__jentry_t *r)
{
    r->item_hash = ld64(e);
    r->status = e[8] & ~WEFT__J_TIMED;
    const unsigned char *p = e + 9;
    r->records = (uint32_t)uv(&p);
    r->len = (uint32_t)uv(&p);
    r->bytes = p;
    p += r->len;
    r->msg_len = r->status == WEFT__J_OK ? 0 : (uint32_t)uv(&p);
    r->msg = (const char *)p;
    p += r->msg_len;
    r->timed = e[8] & WEFT__J_TIMED;
    r->attempts = 0;
    r->start_us = r->runtime_us = 0;
    if (r->timed) {
        r->attempts = (uint32_t)uv(&p);
        r->start_us = uv(&p);
        r->runtime_us = uv(&p);
    }
    return p;
}

/* Fills the header of the record at r (payload of plen bytes already in
 * place) and its checksum. */
static void seal(unsigned char *r, unsigned kind, uint32_t plen)
{
    st32(r, WEFT__JREC_MAGIC | kind);
    st32(r + 4, plen);
    st64(r + 8, 0);
    st64(r + 8, XXH3_64bits(r, WEFT__JREC_HDR + (size_t)plen));
}

/* The checksum of a record as stored (without writing to it).  st: a
 * streaming state for large records (its layout is private to libxxhash, so
 * it comes from XXH3_createState). */
static uint64_t record_sum(XXH3_state_t *st, const unsigned char *r, size_t plen)
{
    if (plen <= 240) { /* small records: one call beats the streaming state */
        unsigned char tmp[WEFT__JREC_HDR + 240];
        memcpy(tmp, r, 8);
        memset(tmp + 8, 0, 8);
        memcpy(tmp + WEFT__JREC_HDR, r + WEFT__JREC_HDR, plen);
        return XXH3_64bits(tmp, WEFT__JREC_HDR + plen);
    }
    static const unsigned char zero[8];
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, r, 8);
    XXH3_64bits_update(st, zero, 8);
    XXH3_64bits_update(st, r + WEFT__JREC_HDR, plen);
    return XXH3_64bits_digest(st);
}

/* ---- writing ------------------------------------------------------------- */

struct weft__journal {
    int fd;
    unsigned version; /* the file's format */
    int err; /* latched first error, under mu */
    pthread_mutex_t mu;
};

/* Locked: writes all of len bytes. */
static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int weft__journal_append(weft__journal_t *j, const void *rec, size_t len)
{
    pthread_mutex_lock(&j->mu);
    int rc = j->err;
    if (!rc && len) {
        rc = write_all(j->fd, rec, len);
        if (rc)
            j->err = rc;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

static int append_small(weft__journal_t *j, unsigned kind, const unsigned char *payload,
                        uint32_t plen)
{
    unsigned char r[WEFT__JREC_HDR + 16];
    if (plen)
        memcpy(r + WEFT__JREC_HDR, payload, plen);
    seal(r, kind, plen);
    return weft__journal_append(j, r, WEFT__JREC_HDR + plen);
}

int weft__journal_session(weft__journal_t *j, uint64_t session, unsigned flags)
{
    if (flags > 255)
        return -EINVAL;
    unsigned char p[9];
    st64(p, session);
    p[8] = (unsigned char)flags;
    return append_small(j, WEFT__JREC_SESSION, p, sizeof p);
}

int weft__journal_window(weft__journal_t *j, uint64_t first, uint64_t count)
{
    if (count < 1 || count > WEFT__J_MAX_WINDOW || first > UINT64_MAX - count)
        return -EINVAL;
    unsigned char p[16];
    st64(p, first);
    st64(p + 8, count);
    return append_small(j, WEFT__JREC_WINDOW, p, sizeof p);
}

int weft__journal_begin(weft__journal_t *j, uint64_t index)
{
    unsigned char p[8];
    st64(p, index);
    return append_small(j, WEFT__JREC_BEGIN, p, sizeof p);
}

int weft__journal_end(weft__journal_t *j, uint64_t ok, uint64_t failed)
{
    unsigned char p[16];
    st64(p, ok);
    st64(p + 8, failed);
    return append_small(j, WEFT__JREC_END, p, sizeof p);
}

int weft__journal_compact(const char *path, const weft__jheader_t *h, uint64_t ok, char *err,
                          size_t errlen)
{
    weft__journal_t *j = NULL;
    int rc = weft__journal_create(&j, path, h, err, errlen);
    if (rc)
        return rc;
    rc = weft__journal_session(j, 1, WEFT__JS_COMPACT);
    if (rc == 0)
        rc = weft__journal_end(j, ok, 0);
    int ce = weft__journal_close(&j);
    if (rc == 0)
        rc = ce;
    if (rc)
        weft__msgf(err, errlen, "%s: cannot compact the journal: %s", path, weft_strerror(rc));
    return rc;
}

int weft__journal_stop(weft__journal_t *j)
{
    return append_small(j, WEFT__JREC_STOP, NULL, 0);
}

size_t weft__journal_crash_record(void *buf, size_t cap, int signal, const uint64_t *items,
                                  size_t n)
{
    if (cap < WEFT__JREC_HDR + 8)
        return 0;
    if (n > (cap - WEFT__JREC_HDR - 8) / 8)
        n = (cap - WEFT__JREC_HDR - 8) / 8;
    unsigned char *r = buf, *p = r + WEFT__JREC_HDR;
    st32(p, (uint32_t)signal);
    st32(p + 4, (uint32_t)n);
    for (size_t k = 0; k < n; k++)
        st64(p + 8 + 8 * k, items[k]);
    seal(r, WEFT__JREC_CRASH, (uint32_t)(8 + 8 * n));
    return WEFT__JREC_HDR + 8 + 8 * n;
}

int weft__journal_peek(const char *path, bool *finished)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* END is the last record of a finished journal, and has a fixed size. */
    unsigned char r[WEFT__JREC_HDR + 16];
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : 0;
    /* Shorter than a header: killed while being created; it holds no work. */
    *finished = rc == 0 && st.st_size < (off_t)(sizeof file_magic + WEFT__JREC_HDR + 8);
    if (rc == 0 && st.st_size >= (off_t)(sizeof file_magic + 2 * sizeof r) &&
        pread(fd, r, sizeof r, st.st_size - (off_t)sizeof r) == (ssize_t)sizeof r)
        *finished = ld32(r) == (WEFT__JREC_MAGIC | WEFT__JREC_END) && ld32(r + 4) == 16 &&
                    record_sum(NULL, r, 16) == ld64(r + 8);
    close(fd);
    return rc;
}

bool weft__journal_empty(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size < (off_t)(sizeof file_magic + WEFT__JREC_HDR + 8);
}

int weft__journal_fd(const weft__journal_t *j)
{
    return j ? j->fd : -1;
}

unsigned weft__journal_version(const weft__journal_t *j)
{
    return j->version;
}

int weft__journal_sync(weft__journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    int rc = j->err;
    if (!rc && fdatasync(j->fd) != 0)
        rc = j->err = -errno;
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int weft__journal_close(weft__journal_t **jp)
{
    weft__journal_t *j = jp ? *jp : NULL;
    if (!j)
        return 0;
    *jp = NULL;
    int rc = j->err;
    if (fdatasync(j->fd) != 0 && !rc)
        rc = -errno;
    /* close() releases the flock: it is the only descriptor of this open. */
    if (close(j->fd) != 0 && !rc && errno != EINTR)
        rc = -errno;
    pthread_mutex_destroy(&j->mu);
    free(j);
    return rc;
}

/* Opens path and takes the lock; *fd_out on success. */
static int open_locked(int *fd_out, const char *path, int flags, char *err, size_t errlen)
{
    int fd = open(path, flags | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && !(flags & O_CREAT))
            weft__msgf(err, errlen, "%s: no journal to resume", path);
        else
            weft__msgf(err, errlen, "%s: cannot open: %s", path, weft_strerror(e));
        return -e;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == EWOULDBLOCK) {
            long pid = weft__lock_holder(fd);
            close(fd);
            if (pid)
                weft__msgf(err, errlen, "%s is in use by another weft run (pid %ld): it is "
                           "running now", path, pid);
            else
                weft__msgf(err, errlen, "%s is in use by another weft run: it is running now",
                           path);
            return -EWOULDBLOCK;
        }
        close(fd);
        weft__msgf(err, errlen, "%s: cannot lock: %s", path, weft_strerror(e));
        return -e;
    }
    /* create replaces the file by renaming a new one over it: a lock won on
     * the replaced file guards nothing, so check we hold the file the name
     * now means, and start again if not. */
    struct stat held, named;
    if (fstat(fd, &held) == 0 && stat(path, &named) == 0 &&
        (held.st_ino != named.st_ino || held.st_dev != named.st_dev)) {
        close(fd);
        return open_locked(fd_out, path, flags, err, errlen);
    }
    *fd_out = fd;
    return 0;
}

static int journal_new(weft__journal_t **j, int fd, unsigned version)
{
    weft__journal_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    if (pthread_mutex_init(&n->mu, NULL) != 0) {
        free(n);
        return -ENOMEM;
    }
    n->fd = fd;
    n->version = version;
    *j = n;
    return 0;
}

int weft__journal_create(weft__journal_t **j, const char *path, const weft__jheader_t *h,
                         char *err, size_t errlen)
{
    *j = NULL;
    const char *blob[3] = {h->config, h->plugin, h->items};
    size_t bl[3], plen = 8;
    for (int k = 0; k < 3; k++) {
        bl[k] = strlen(blob[k]);
        plen += 4 + bl[k];
    }
    if (plen > UINT32_MAX) {
        weft__msgf(err, errlen, "%s: journal header too large", path);
        return -E2BIG;
    }
    size_t total = sizeof file_magic + WEFT__JREC_HDR + plen;
    unsigned char *rec = malloc(total);
    if (!rec) {
        weft__msgf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    memcpy(rec, file_magic, sizeof file_magic);
    unsigned char *r = rec + sizeof file_magic, *p = r + WEFT__JREC_HDR;
    st32(p, WEFT__JOURNAL_VERSION);
    st32(p + 4, 0);
    p += 8;
    for (int k = 0; k < 3; k++) {
        st32(p, (uint32_t)bl[k]);
        memcpy(p + 4, blob[k], bl[k]);
        p += 4 + bl[k];
    }
    seal(r, WEFT__JREC_HEADER, (uint32_t)plen);

    /* The old file is locked (so no other run uses it), then a new one is
     * written beside it and renamed over it: whenever this is killed, the
     * name holds a whole journal, the old one or the new one.  No O_TRUNC:
     * truncating before the lock is held would wipe a running job's journal. */
    int fd = -1, nfd = -1;
    char *tmp = malloc(strlen(path) + 8);
    int rc = tmp ? open_locked(&fd, path, O_CREAT, err, errlen) : -ENOMEM;
    if (rc) {
        if (!tmp)
            weft__msgf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    sprintf(tmp, "%s.new", path);
    const char *what = "create";
    nfd = weft__open_temp(tmp, O_RDWR, 0644); /* locked; never through a symlink */
    if (nfd < 0)
        goto fail_errno;
    what = "write";
    if ((rc = write_all(nfd, rec, total)) != 0)
        goto fail;
    what = "sync";
    if (fsync(nfd) != 0)
        goto fail_errno;
    what = "rename";
    if (rename(tmp, path) != 0)
        goto fail_errno;
    what = "sync folder of";
    if ((rc = weft__sync_folder_of(path)) != 0)
        goto fail;
    if ((rc = journal_new(j, nfd, WEFT__JOURNAL_VERSION)) != 0) {
        what = "set up";
        goto fail;
    }
    close(fd);
    goto out;
fail_errno:
    rc = -errno;
fail:
    weft__msgf(err, errlen, "%s: cannot %s the journal: %s", path, what,
               weft_strerror(rc));
    if (nfd >= 0) {
        close(nfd);
        unlink(tmp);
    }
    close(fd);
out:
    free(tmp);
    free(rec);
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct pair {
    uint64_t index, off; /* off: of the entry's fields after its index */
} pair_t;

struct weft__jscan {
    const unsigned char *data;
    size_t len;
    void *map; /* owned mapping (resume), or NULL */
    size_t map_len;
    /* data is a read-only private mapping of the journal file that the scan
     * may drop the resident pages of (resume): see touched(). */
    bool trim;
    atomic_size_t touched; /* bytes counted since the last drop */
    char *blob[3];
    weft__jheader_t hdr;
    size_t valid_len, dropped;
    char tail[96];
    unsigned version;
    uint64_t sessions, last_session, n_entries, n_items;
    unsigned last_flags;
    bool finished;
    /* The index.  An entry's offset is that of its fields after the index
     * delta: a get knows the index and decodes the rest from there.  Dense
     * when the indices are compact: per block of 4096 indices the offset of
     * its first entry in file order (base, 0 = none: no entry starts at 0),
     * per index its latest entry's offset - base + 1 (delta, 0 = none), or
     * FAR when that does not fit 32 bits (a block spread over 4 GiB of
     * journal): then its offset is in pairs.  Else (sparse) pairs alone.
     * pairs: sorted by index, one per index. */
    uint64_t *base;
    uint32_t *delta;
    uint64_t dense_n;
    pair_t *pairs;
    size_t n_pairs;
    uint64_t *suspects, *poison;
    size_t n_suspects, n_poison;
    size_t mem;
};

/* ---- the resident part of a resume's mapping --------------------------------
 *
 * A resume reads its journal through a read-only private mapping of the file,
 * and every page that a scan pass or a get touches stays resident (counted in
 * the process's RSS) until it is unmapped: a whole 200 MB journal would end up
 * in RSS.  So readers count what they touch, and once WEFT__J_RESIDENT bytes
 * were counted one of them drops the resident pages of the whole mapping
 * (MADV_DONTNEED).  That is safe with readers on other threads at any moment:
 * the mapping is PROT_READ and MAP_PRIVATE, so none of its pages was ever
 * written (copied on write) and each is the page cache's page of the file; a
 * dropped page refaults from the page cache (or the file) with the same bytes,
 * because bytes [0, valid_len) of the file do not change while the scan lives
 * (the journal is locked, appends go past valid_len, a torn tail is cut only
 * there, and before any get).  A reader sees the same bytes whether or not a
 * drop raced with it; a drop costs refaults, never a wrong read.
 *
 * Counting: a fault maps up to 64 KiB around the faulting address of what the
 * page cache holds (fault-around), so a read counts each 64 KiB window it
 * touches, except the window its thread touched last: a sequential reader
 * counts about what it reads, a scattered one 64 KiB a read.  A thread adds
 * its count to the shared one by TOUCH_FLUSH: one atomic operation per
 * 256 KiB counted, none per item.  The resident part stays below
 * WEFT__J_RESIDENT + (TOUCH_FLUSH + 64 KiB) per reading thread, plus the
 * entries being read at that moment. */
#define WINDOW_SHIFT 16
#define TOUCH_FLUSH (256u << 10)

static _Thread_local struct {
    const weft__jscan_t *s;
    uintptr_t window; /* the last 64 KiB window this thread touched, + 1 */
    size_t bytes;     /* counted, not yet added to s->touched */
} reader;

#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

/* touched() past its fast path: a new window, or another scan. */
static void touched_count(weft__jscan_t *s, uintptr_t w0, uintptr_t w1)
{
    if (reader.s != s) {
        reader.s = s;
        reader.window = 0;
        reader.bytes = 0;
    }
    size_t windows = (size_t)(w1 - w0) + (reader.window != w0 + 1);
    reader.window = w1 + 1;
    reader.bytes += windows << WINDOW_SHIFT;
    if (reader.bytes < TOUCH_FLUSH)
        return;
    size_t add = reader.bytes;
    reader.bytes = 0;
    size_t total =
        atomic_fetch_add_explicit(&s->touched, add, memory_order_relaxed) + add;
    /* One of the threads that see the total pass the budget drops. */
    if (total >= WEFT__J_RESIDENT &&
        atomic_compare_exchange_strong_explicit(
            &s->touched, &total, 0, memory_order_relaxed, memory_order_relaxed))
        (void)madvise((void *)s->data, s->len, MADV_DONTNEED); /* advice: see above */
}

/* n >= 1 bytes at p, of s->data, are about to be read.  Inline: on every
 * get, and mostly in the window the thread read last. */
HOT void touched(const weft__jscan_t *cs, const unsigned char *p, size_t n)
{
    if (!cs->trim)
        return;
    uintptr_t w0 = (uintptr_t)p >> WINDOW_SHIFT,
              w1 = (uintptr_t)(p + n - 1) >> WINDOW_SHIFT;
    if (w0 == w1 && reader.window == w1 + 1 && reader.s == cs)
        return; /* counted already */
    /* Only the counter changes, and atomically: the scan is otherwise
     * read-only once parsed (journal.h). */
    touched_count((weft__jscan_t *)cs, w0, w1);
}

/* Checks a DONE payload; counts its entries and their largest index (left
 * alone when the payload is bad). */
static bool done_valid(const unsigned char *p, size_t plen, bool timed_ok, uint64_t *n_out,
                       uint64_t *max_index)
{
    if (plen < DONE_HDR)
        return false;
    uint32_t n = ld32(p);
    uint64_t index = ld64(p + 4), max = *max_index, v;
    const unsigned char *q = p + DONE_HDR, *end = p + plen;
    for (uint32_t k = 0; k < n; k++) {
        if (!get_delta(&q, end, index, &index) || end - q < 9)
            return false;
        unsigned status = q[8] & ~WEFT__J_TIMED;
        bool timed = q[8] & WEFT__J_TIMED;
        if (status < WEFT__J_OK || status > WEFT__J_QUARANTINED || (timed && !timed_ok))
            return false;
        q += 9;
        if (!get_uv(&q, end, 32, &v) || !get_uv(&q, end, 32, &v) ||
            v > (uint64_t)(end - q))
            return false;
        q += v;
        if (status != WEFT__J_OK) {
            if (!get_uv(&q, end, 32, &v) || v > (uint64_t)(end - q))
                return false;
            q += v;
        }
        if (timed && (!get_uv(&q, end, 32, &v) || !get_uv(&q, end, 64, &v) ||
                      !get_uv(&q, end, 64, &v)))
            return false;
        if (index > max)
            max = index;
    }
    if (q != end)
        return false;
    *n_out = n;
    *max_index = max;
    return true;
}

/* Why the record at off (with len - off bytes left) is not usable, or NULL.
 * On success *rlen is its total length. */
static const char *record_check(XXH3_state_t *st, const unsigned char *d, size_t len,
                                size_t off, unsigned version, size_t *rlen,
                                uint64_t *n_entries, uint64_t *max_index)
{
    size_t left = len - off;
    if (left < WEFT__JREC_HDR)
        return "incomplete record header";
    const unsigned char *r = d + off;
    uint32_t type = ld32(r), plen = ld32(r + 4);
    unsigned kind = type & 0xFFu;
    if ((type & ~0xFFu) != WEFT__JREC_MAGIC || kind < WEFT__JREC_SESSION ||
        kind > WEFT__JREC_CRASH)
        return "bad record type";
    if (plen > left - WEFT__JREC_HDR)
        return "record runs past the end of the file";
    if (record_sum(st, r, plen) != ld64(r + 8))
        return "bad checksum";
    const unsigned char *p = r + WEFT__JREC_HDR;
    uint64_t n = 0;
    switch (kind) {
    case WEFT__JREC_SESSION:
        if (plen != 9)
            return "bad SESSION record";
        break;
    case WEFT__JREC_WINDOW: {
        if (plen != 16) /* before reading: the fields may not be there */
            return "bad WINDOW record";
        uint64_t first = ld64(p), count = ld64(p + 8);
        if (count < 1 || count > WEFT__J_MAX_WINDOW || first > UINT64_MAX - count)
            return "bad WINDOW record";
        break;
    }
    case WEFT__JREC_BEGIN:
        if (plen != 8)
            return "bad BEGIN record";
        break;
    case WEFT__JREC_DONE:
        if (!done_valid(p, plen, version >= 3, &n, max_index))
            return "bad DONE record";
        break;
    case WEFT__JREC_END:
        if (plen != 16)
            return "bad END record";
        break;
    case WEFT__JREC_STOP:
        if (plen != 0)
            return "bad STOP record";
        break;
    case WEFT__JREC_CRASH:
        if (plen < 8 || ld32(p + 4) != (plen - 8) / 8 || (plen - 8) % 8)
            return "bad CRASH record";
        break;
    }
    *n_entries += n;
    *rlen = WEFT__JREC_HDR + (size_t)plen;
    return NULL;
}

/* Runs the statement for each entry of the DONE record at r (validated),
 * with idx its index and e where its fields after the index start. */
#define FOR_ENTRIES(r, idx, e, ...)                                                      \
    do {                                                                                 \
        const unsigned char *p_ = (r) + WEFT__JREC_HDR;                                  \
        uint32_t n_ = ld32(p_);                                                          \
        uint64_t idx = ld64(p_ + 4);                                                     \
        const unsigned char *q_ = p_ + DONE_HDR;                                         \
        for (uint32_t k_ = 0; k_ < n_; k_++) {                                           \
            idx = delta(&q_, idx);                                                       \
            const unsigned char *e = q_;                                                 \
            weft__jentry_t x_;                                                           \
            q_ = entry_body(q_, &x_);                                                    \
            __VA_ARGS__;                                                                 \
        }                                                                                \
    } while (0)

/* -- the index -------------------------------------------------------------- */

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    if (x->index != y->index)
        return (x->index > y->index) - (x->index < y->index);
    return (x->off > y->off) - (x->off < y->off);
}

#define BLOCK_SHIFT 12       /* the dense index's blocks: 4096 indices */
#define DELTA_FAR UINT32_MAX /* a dense slot whose entry is in pairs    */

/* Appends a pair to s->pairs (capacity *cap, grown by doubling). */
static int pair_push(weft__jscan_t *s, size_t *cap, uint64_t index, uint64_t off)
{
    if (s->n_pairs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        if (ncap > SIZE_MAX / sizeof *s->pairs)
            return -ENOMEM;
        pair_t *np = realloc(s->pairs, ncap * sizeof *np);
        if (!np)
            return -ENOMEM;
        s->mem += (ncap - *cap) * sizeof *np;
        s->pairs = np;
        *cap = ncap;
    }
    s->pairs[s->n_pairs++] = (pair_t){index, off};
    return 0;
}

/* Builds the index from every DONE entry of the valid part. */
static int build_index(weft__jscan_t *s, size_t first, uint64_t max_index)
{
    if (!s->n_entries)
        return 0;
    /* Dense when that costs at most 16 bytes per entry (+ 512 KiB), what the
     * sorted pairs would: the indices a run writes are 0..N-1, and then it
     * costs 4 bytes per item (+ 8 per 4096). */
    bool dense = max_index < s->n_entries * 4 + (1u << 17);
    size_t cap = 0;
    if (dense) {
        s->dense_n = max_index + 1;
        uint64_t blocks = (max_index >> BLOCK_SHIFT) + 1;
        s->base = calloc(blocks, sizeof *s->base);
        s->delta = calloc(s->dense_n, sizeof *s->delta);
        if (!s->base || !s->delta)
            return -ENOMEM;
        s->mem += blocks * sizeof *s->base + s->dense_n * sizeof *s->delta;
    } else {
        if (s->n_entries > SIZE_MAX / sizeof *s->pairs)
            return -ENOMEM;
        cap = s->n_entries;
        s->pairs = malloc(cap * sizeof *s->pairs);
        if (!s->pairs)
            return -ENOMEM;
        s->mem += cap * sizeof *s->pairs;
    }
    int rc = 0;
    for (size_t off = first; off < s->valid_len && !rc;) {
        const unsigned char *r = s->data + off;
        size_t rlen = WEFT__JREC_HDR + (size_t)ld32(r + 4);
        if ((ld32(r) & 0xFFu) == WEFT__JREC_DONE) {
            touched(s, r, rlen);
            FOR_ENTRIES(r, idx, e, {
                uint64_t eo = (uint64_t)(e - s->data);
                if (!dense) {
                    s->pairs[s->n_pairs++] = (pair_t){idx, eo};
                    continue;
                }
                /* File order: eo only grows, so d >= 1, and a slot once
                 * FAR stays FAR (its later entries are farther still). */
                uint64_t *b = &s->base[idx >> BLOCK_SHIFT];
                if (!*b)
                    *b = eo;
                uint64_t d = eo - *b + 1;
                uint32_t *slot = &s->delta[idx];
                s->n_items += !*slot;
                if (d < DELTA_FAR) {
                    *slot = (uint32_t)d;
                } else {
                    *slot = DELTA_FAR;
                    if ((rc = pair_push(s, &cap, idx, eo)) != 0)
                        break;
                }
            });
        }
        off += rlen;
    }
    if (rc || !s->n_pairs)
        return rc;
    /* Sort by (index, file order) and keep the last of each index. */
    qsort(s->pairs, s->n_pairs, sizeof *s->pairs, cmp_pair);
    size_t m = 0;
    for (size_t k = 0; k < s->n_pairs; k++) {
        if (m && s->pairs[m - 1].index == s->pairs[k].index)
            m--;
        s->pairs[m++] = s->pairs[k];
    }
    s->n_pairs = m;
    if (!dense)
        s->n_items = m;
    return 0;
}

/* The first of the sorted pairs whose index is not below `index`. */
static size_t pairs_lower_bound(const weft__jscan_t *s, uint64_t index)
{
    size_t lo = 0, hi = s->n_pairs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->pairs[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The offset of item index's latest entry (its fields after the index). */
HOT bool entry_off(const weft__jscan_t *s, uint64_t index, uint64_t *off)
{
    if (s->delta) {
        if (index >= s->dense_n)
            return false;
        uint32_t d = s->delta[index];
        if (d == 0)
            return false;
        if (d != DELTA_FAR) {
            *off = s->base[index >> BLOCK_SHIFT] + d - 1;
            return true;
        }
    }
    size_t lo = pairs_lower_bound(s, index);
    if (lo == s->n_pairs || s->pairs[lo].index != index)
        return false;
    *off = s->pairs[lo].off;
    return true;
}

/* -- in-flight sets: a hash map of 4096-item bitmap pages ------------------ */

#define PAGE_SHIFT 12
#define PAGE_WORDS ((1u << PAGE_SHIFT) / 64)
/* Pages bound the memory (~8.5 MiB), the item count bounds the lists. */
#define MAX_PAGES (1u << 14)

typedef struct page {
    uint32_t pop;
    uint64_t w[PAGE_WORDS];
} page_t;

typedef struct slot {
    uint64_t key;
    page_t *p; /* NULL: empty */
} slot_t;

typedef struct iset {
    slot_t *slots;
    size_t cap, n;  /* cap: a power of 2, or 0 */
    uint64_t total; /* items in the set */
    uint64_t ckey;  /* a one-page cache: items arrive in runs */
    page_t *cpage;
} iset_t;

static size_t home(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15u) >> 32) & (cap - 1);
}

static size_t find_slot(const iset_t *s, uint64_t key)
{
    size_t i = home(key, s->cap);
    while (s->slots[i].p && s->slots[i].key != key)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static page_t *iset_page(iset_t *s, uint64_t key, bool create, int *rc)
{
    if (s->cpage && s->ckey == key)
        return s->cpage;
    if (s->cap) {
        size_t i = find_slot(s, key);
        if (s->slots[i].p) {
            s->ckey = key;
            return s->cpage = s->slots[i].p;
        }
    }
    if (!create)
        return NULL;
    if (s->n >= MAX_PAGES) {
        *rc = -E2BIG;
        return NULL;
    }
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        slot_t *ns = calloc(cap, sizeof *ns);
        if (!ns) {
            *rc = -ENOMEM;
            return NULL;
        }
        iset_t t = {.slots = ns, .cap = cap};
        for (size_t k = 0; k < s->cap; k++)
            if (s->slots[k].p)
                ns[find_slot(&t, s->slots[k].key)] = s->slots[k];
        free(s->slots);
        s->slots = ns;
        s->cap = cap;
    }
    page_t *pg = calloc(1, sizeof *pg);
    if (!pg) {
        *rc = -ENOMEM;
        return NULL;
    }
    size_t i = find_slot(s, key);
    s->slots[i] = (slot_t){key, pg};
    s->n++;
    s->ckey = key;
    return s->cpage = pg;
}

/* Linear-probing deletion by backward shift (no tombstones). */
static void iset_drop(iset_t *s, uint64_t key)
{
    size_t mask = s->cap - 1, i = find_slot(s, key);
    free(s->slots[i].p);
    s->slots[i].p = NULL;
    s->n--;
    if (s->ckey == key)
        s->cpage = NULL;
    for (size_t j = (i + 1) & mask; s->slots[j].p; j = (j + 1) & mask) {
        size_t h = home(s->slots[j].key, s->cap);
        /* slot j may move to the hole at i unless its home lies in (i, j]. */
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            s->slots[j].p = NULL;
            i = j;
        }
    }
}

static void iset_free(iset_t *s)
{
    for (size_t k = 0; k < s->cap; k++)
        free(s->slots[k].p);
    free(s->slots);
    *s = (iset_t){0};
}

static int iset_mark(iset_t *s, uint64_t first, uint64_t count)
{
    uint64_t end = first + count; /* validated: no wrap */
    while (first < end) {
        int rc = 0;
        page_t *pg = iset_page(s, first >> PAGE_SHIFT, true, &rc);
        if (!pg)
            return rc;
        uint64_t base = first & ~(uint64_t)((1u << PAGE_SHIFT) - 1);
        uint64_t stop = end - base < (1u << PAGE_SHIFT) ? end - base : (1u << PAGE_SHIFT);
        for (uint64_t b = first - base; b < stop;) {
            unsigned w = (unsigned)(b / 64), lo = (unsigned)(b % 64);
            unsigned hi = stop - (uint64_t)w * 64 >= 64 ? 64 : (unsigned)(stop - w * 64);
            uint64_t bits = (hi == 64 ? ~(uint64_t)0 : (((uint64_t)1 << hi) - 1)) &
                            ~(((uint64_t)1 << lo) - 1);
            unsigned added = (unsigned)__builtin_popcountll(bits & ~pg->w[w]);
            pg->pop += added;
            s->total += added;
            pg->w[w] |= bits;
            b = (uint64_t)w * 64 + hi;
        }
        first = base + stop;
    }
    return s->total > WEFT__J_MAX_INFLIGHT ? -E2BIG : 0;
}

static void iset_clear(iset_t *s, uint64_t index)
{
    int rc = 0;
    page_t *pg = iset_page(s, index >> PAGE_SHIFT, false, &rc);
    if (!pg)
        return;
    unsigned b = (unsigned)(index & ((1u << PAGE_SHIFT) - 1));
    uint64_t bit = (uint64_t)1 << (b % 64);
    if (pg->w[b / 64] & bit) {
        pg->w[b / 64] &= ~bit;
        s->total--;
        if (--pg->pop == 0)
            iset_drop(s, index >> PAGE_SHIFT);
    }
}

static int cmp_slot(const void *a, const void *b)
{
    uint64_t x = ((const slot_t *)a)->key, y = ((const slot_t *)b)->key;
    return (x > y) - (x < y);
}

/* The set's items, sorted, into a new array. */
static int iset_list(iset_t *s, uint64_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t n = 0, total = 0;
    for (size_t k = 0; k < s->cap; k++)
        if (s->slots[k].p) {
            s->slots[n++] = s->slots[k];
            total += s->slots[k].p->pop;
        }
    for (size_t k = n; k < s->cap; k++)
        s->slots[k].p = NULL;
    /* The slots are compacted now: no longer a hash table, only freed. */
    if (!total)
        return 0;
    qsort(s->slots, n, sizeof *s->slots, cmp_slot);
    uint64_t *v = malloc(total * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        const page_t *pg = s->slots[k].p;
        for (unsigned w = 0; w < PAGE_WORDS; w++)
            for (uint64_t bits = pg->w[w]; bits; bits &= bits - 1)
                v[m++] = (s->slots[k].key << PAGE_SHIFT) + (uint64_t)w * 64 +
                         (unsigned)__builtin_ctzll(bits);
    }
    *out = v;
    *n_out = m;
    return 0;
}

/* Whether item index's latest entry is an OK one written before byte from
 * (the session's start): a resume reuses it rather than run the item. */
static bool reused(const weft__jscan_t *s, uint64_t index, size_t from)
{
    uint64_t off;
    if (!entry_off(s, index, &off) || off >= from)
        return false;
    touched(s, s->data + off + 8, 1);
    /* The status, after item_hash. */
    return (s->data[off + 8] & ~WEFT__J_TIMED) == WEFT__J_OK;
}

/* Marks the items of a WINDOW [first, first + count) of the session that
 * starts at byte from, but those it reused: a resume claims done items with
 * the rest and never runs them, so they are not in flight (else a killed
 * resume would leave every item it reused a suspect, and past
 * WEFT__J_MAX_INFLIGHT of them its journal could not be resumed).  The one
 * miss: an item that changed, rerun under --force, is no suspect if the
 * session is killed while it runs (a CRASH record still names it). */
static int mark_window(const weft__jscan_t *s, iset_t *set, uint64_t first,
                       uint64_t count, size_t from)
{
    uint64_t end = first + count, run = first; /* [run, i): to mark */
    int rc = 0;
    for (uint64_t i = first; i < end && !rc; i++) {
        if (s->delta) {
            /* No entry past the dense table, none before from in a block
             * whose first entry comes after it (a fresh run's windows): the
             * block is not reused, on to the next. */
            if (i >= s->dense_n)
                break;
            uint64_t b = s->base[i >> BLOCK_SHIFT];
            if (!b || b >= from) {
                i |= (1u << BLOCK_SHIFT) - 1; /* i < dense_n: no wrap */
                continue;
            }
        }
        if (!reused(s, i, from))
            continue;
        if (i > run)
            rc = iset_mark(set, run, i - run);
        run = i + 1;
    }
    if (!rc && end > run)
        rc = iset_mark(set, run, end - run);
    return rc;
}

/* The in-flight items at the end of the session whose records are
 * [from, to) of the valid part. */
static int inflight(const weft__jscan_t *s, size_t from, size_t to, uint64_t **out,
                    size_t *n_out)
{
    iset_t set = {0};
    int rc = 0;
    for (size_t off = from; off < to && !rc;) {
        const unsigned char *r = s->data + off;
        uint32_t plen = ld32(r + 4);
        const unsigned char *p = r + WEFT__JREC_HDR;
        touched(s, r, WEFT__JREC_HDR + (size_t)plen);
        switch (ld32(r) & 0xFFu) {
        case WEFT__JREC_WINDOW:
            rc = mark_window(s, &set, ld64(p), ld64(p + 8), from);
            break;
        case WEFT__JREC_BEGIN:
            rc = iset_mark(&set, ld64(p), 1);
            break;
        case WEFT__JREC_DONE:
            if (set.n)
                FOR_ENTRIES(r, idx, e, (void)e, iset_clear(&set, idx));
            break;
        }
        off += WEFT__JREC_HDR + (size_t)plen;
    }
    if (!rc)
        rc = iset_list(&set, out, n_out);
    iset_free(&set);
    return rc;
}

static size_t intersect(const uint64_t *a, size_t na, const uint64_t *b, size_t nb,
                        uint64_t *out)
{
    size_t i = 0, k = 0, m = 0;
    while (i < na && k < nb) {
        if (a[i] < b[k])
            i++;
        else if (b[k] < a[i])
            k++;
        else {
            out[m++] = a[i];
            i++;
            k++;
        }
    }
    return m;
}

/* Parses the file magic and the HEADER record; *first: the offset after. */
static int parse_header(weft__jscan_t *s, XXH3_state_t *st, size_t *first, char *err,
                        size_t errlen)
{
    const unsigned char *d = s->data;
    size_t len = s->len;
    if (len < sizeof file_magic) {
        if (len == 0 || memcmp(d, file_magic, len) == 0) {
            weft__msgf(err, errlen, "journal header is incomplete (%zu bytes)", len);
            return -EINVAL;
        }
    }
    if (len < sizeof file_magic || memcmp(d, file_magic, sizeof file_magic) != 0) {
        weft__msgf(err, errlen, "not a weft journal (bad magic)");
        return -EINVAL;
    }
    size_t off = sizeof file_magic, left = len - off;
    if (left < WEFT__JREC_HDR || ld32(d + off + 4) > left - WEFT__JREC_HDR) {
        weft__msgf(err, errlen, "journal header is incomplete (%zu bytes)", len);
        return -EINVAL;
    }
    const unsigned char *r = d + off;
    size_t plen = ld32(r + 4);
    if (ld32(r) != (WEFT__JREC_MAGIC | WEFT__JREC_HEADER) ||
        record_sum(st, r, plen) != ld64(r + 8) || plen < 8) {
        weft__msgf(err, errlen, "journal header is damaged");
        return -EINVAL;
    }
    const unsigned char *p = r + WEFT__JREC_HDR;
    uint32_t version = ld32(p);
    if (version == 1) {
        weft__msgf(
            err, errlen,
            "journal format 1 (an older weft): finish it with that weft, or start over "
            "with --restart");
        return -ENOTSUP;
    }
    if (version < WEFT__JOURNAL_OLDEST || version > WEFT__JOURNAL_VERSION) {
        weft__msgf(err, errlen,
                   "journal format version %u is not supported (this weft reads %u to %u)",
                   version, WEFT__JOURNAL_OLDEST, WEFT__JOURNAL_VERSION);
        return -ENOTSUP;
    }
    s->version = version;
    size_t at = 8;
    for (int k = 0; k < 3; k++) {
        uint32_t bl;
        if (plen - at < 4 || (bl = ld32(p + at), plen - at - 4 < bl) ||
            memchr(p + at + 4, 0, bl)) {
            weft__msgf(err, errlen, "journal header is damaged");
            return -EINVAL;
        }
        s->blob[k] = strndup((const char *)p + at + 4, bl);
        if (!s->blob[k]) {
            weft__msgf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        s->mem += bl + 1;
        at += 4 + (size_t)bl;
    }
    if (at != plen) {
        weft__msgf(err, errlen, "journal header is damaged");
        return -EINVAL;
    }
    s->hdr = (weft__jheader_t){s->blob[0], s->blob[1], s->blob[2]};
    *first = off + WEFT__JREC_HDR + plen;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The items the CRASH records of [from, to) name: sorted, unique. */
static int crashed_items(const weft__jscan_t *s, size_t from, size_t to, uint64_t **out,
                         size_t *n_out)
{
    size_t n = 0, cap = 0;
    uint64_t *v = NULL;
    for (size_t off = from; off < to;) {
        const unsigned char *r = s->data + off;
        uint32_t plen = ld32(r + 4);
        const unsigned char *p = r + WEFT__JREC_HDR;
        touched(s, r, WEFT__JREC_HDR + (size_t)plen);
        if ((ld32(r) & 0xFFu) == WEFT__JREC_CRASH) {
            uint32_t k = ld32(p + 4);
            if (n + k > cap) {
                size_t ncap = (n + k) * 2;
                uint64_t *nv = realloc(v, ncap * sizeof *v);
                if (!nv) {
                    free(v);
                    return -ENOMEM;
                }
                v = nv, cap = ncap;
            }
            for (uint32_t i = 0; i < k; i++)
                v[n++] = ld64(p + 8 + 8 * i);
        }
        off += WEFT__JREC_HDR + (size_t)plen;
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || v[m - 1] != v[i])
            v[m++] = v[i];
    *out = v;
    *n_out = m;
    return 0;
}

/* A session's records [start, end), for poison detection. */
typedef struct session {
    size_t start, end;
    bool marks;   /* has a WINDOW or BEGIN                          */
    bool ended;   /* its last record is END or STOP: it did not crash */
    bool crashed; /* has a CRASH record: weft crashed running items  */
} session_t;

/* Ends the session `cur` at `end`.  It counts for poison if it ended or
 * started items: a crash before any item started (say, in the plugin's init)
 * says nothing about the items, and must not hide the sessions before it. */
static void session_close(session_t *cur, size_t end, unsigned last_kind, session_t q[2],
                          size_t *nq)
{
    if (cur->start == SIZE_MAX)
        return;
    cur->end = end;
    cur->ended = last_kind == WEFT__JREC_END || last_kind == WEFT__JREC_STOP;
    if (cur->marks || cur->ended) {
        q[0] = q[1];
        q[1] = *cur;
        ++*nq;
    }
}

/* weft__jscan_parse; trim: data is a private read-only mapping of a file
 * whose resident pages may be dropped (see touched()). */
static int scan_parse(weft__jscan_t **out, const void *data, size_t len, bool trim,
                      char *err, size_t errlen)
{
    *out = NULL;
    weft__jscan_t *s = calloc(1, sizeof *s);
    if (!s) {
        weft__msgf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->mem = sizeof *s;
    s->data = len ? data : (const unsigned char *)"";
    s->len = len;
    s->trim = trim && len;
    atomic_init(&s->touched, 0);
    size_t first;
    int rc = -ENOMEM;
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        weft__msgf(err, errlen, "out of memory");
        goto fail;
    }
    if ((rc = parse_header(s, st, &first, err, errlen)) != 0)
        goto fail;

    /* Pass 1: find the valid part, count entries, locate the last two
     * sessions that count for poison. */
    uint64_t max_index = 0;
    size_t off = first, nq = 0;
    session_t cur = {.start = SIZE_MAX}, q[2] = {{0}}; /* q[1]: the latest */
    unsigned last_kind = 0;
    while (off < len) {
        size_t rlen;
        const char *why =
            record_check(st, s->data, len, off, s->version, &rlen, &s->n_entries, &max_index);
        if (why) {
            snprintf(s->tail, sizeof s->tail, "record at byte %zu: %s", off, why);
            break;
        }
        const unsigned char *r = s->data + off;
        unsigned kind = ld32(r) & 0xFFu;
        if (kind == WEFT__JREC_SESSION) {
            session_close(&cur, off, last_kind, q, &nq);
            cur = (session_t){.start = off};
            s->sessions++;
            s->last_session = ld64(r + WEFT__JREC_HDR);
            s->last_flags = r[WEFT__JREC_HDR + 8];
        } else if (kind == WEFT__JREC_WINDOW || kind == WEFT__JREC_BEGIN) {
            cur.marks = true;
        } else if (kind == WEFT__JREC_CRASH) {
            cur.crashed = true; /* a crash before any item started says nothing */
        }
        last_kind = kind;
        touched(s, r, rlen);
        off += rlen;
    }
    s->valid_len = off;
    s->dropped = len - off;
    session_close(&cur, off, last_kind, q, &nq);
    s->finished = s->sessions > 0 && last_kind == WEFT__JREC_END;

    if ((rc = build_index(s, first, max_index)) != 0) {
        weft__msgf(err, errlen, "out of memory");
        goto fail;
    }
    if (nq >= 1 && !q[1].ended) {
        rc = inflight(s, q[1].start, q[1].end, &s->suspects, &s->n_suspects);
        /* Poison: named by the CRASH records of the last two sessions,
         * both crashed (a kill -9 leaves no CRASH record: it is nobody's
         * fault, and quarantines nothing). */
        uint64_t *was = NULL, *now = NULL;
        size_t n_was = 0, n_now = 0;
        if (!rc && q[1].crashed && nq >= 2 && q[0].crashed && !q[0].ended)
            rc = crashed_items(s, q[0].start, q[0].end, &was, &n_was);
        if (!rc && n_was)
            rc = crashed_items(s, q[1].start, q[1].end, &now, &n_now);
        if (!rc && n_was && n_now) {
            s->poison = malloc(n_was * sizeof *s->poison);
            if (!s->poison)
                rc = -ENOMEM;
            else
                s->n_poison = intersect(now, n_now, was, n_was, s->poison);
        }
        free(now);
        free(was);
        if (rc == -E2BIG)
            weft__msgf(err, errlen,
                       "too many items in flight in one session (more than %u)",
                       WEFT__J_MAX_INFLIGHT);
        else if (rc)
            weft__msgf(err, errlen, "out of memory");
        if (rc)
            goto fail;
        s->mem += (s->n_suspects + s->n_poison) * sizeof(uint64_t);
    }
    XXH3_freeState(st);
    *out = s;
    return 0;
fail:
    XXH3_freeState(st);
    weft__jscan_free(&s);
    return rc;
}

int weft__jscan_parse(weft__jscan_t **out, const void *data, size_t len, char *err,
                      size_t errlen)
{
    return scan_parse(out, data, len, false, err, errlen);
}

void weft__jscan_free(weft__jscan_t **sp)
{
    weft__jscan_t *s = sp ? *sp : NULL;
    if (!s)
        return;
    *sp = NULL;
    for (int k = 0; k < 3; k++)
        free(s->blob[k]);
    free(s->base);
    free(s->delta);
    free(s->pairs);
    free(s->suspects);
    free(s->poison);
    if (s->map)
        munmap(s->map, s->map_len);
    free(s);
}

const weft__jheader_t *weft__jscan_header(const weft__jscan_t *s)
{
    return &s->hdr;
}

unsigned weft__jscan_version(const weft__jscan_t *s)
{
    return s->version;
}

size_t weft__jscan_valid_len(const weft__jscan_t *s)
{
    return s->valid_len;
}

size_t weft__jscan_dropped(const weft__jscan_t *s)
{
    return s->dropped;
}

const char *weft__jscan_tail(const weft__jscan_t *s)
{
    return s->tail;
}

bool weft__jscan_finished(const weft__jscan_t *s)
{
    return s->finished;
}

uint64_t weft__jscan_sessions(const weft__jscan_t *s)
{
    return s->sessions;
}

uint64_t weft__jscan_last_session(const weft__jscan_t *s, unsigned *flags)
{
    if (flags)
        *flags = s->last_flags;
    return s->last_session;
}

uint64_t weft__jscan_items(const weft__jscan_t *s)
{
    return s->n_items;
}

size_t weft__jscan_memory(const weft__jscan_t *s)
{
    return s->mem;
}

bool weft__jscan_get(const weft__jscan_t *s, uint64_t index, weft__jentry_t *out)
{
    uint64_t off;
    if (!entry_off(s, index, &off))
        return false;
    if (out) {
        const unsigned char *e = s->data + off;
        touched(s, e, (size_t)(entry_body(e, out) - e));
        out->index = index;
    }
    return true;
}

bool weft__jscan_next(const weft__jscan_t *s, uint64_t from, weft__jentry_t *e)
{
    if (s->delta) {
        for (uint64_t i = from; i < s->dense_n; i++)
            if (s->delta[i])
                return weft__jscan_get(s, i, e);
        return false;
    }
    size_t lo = pairs_lower_bound(s, from);
    return lo < s->n_pairs && weft__jscan_get(s, s->pairs[lo].index, e);
}

size_t weft__jscan_suspects(const weft__jscan_t *s, const uint64_t **idx)
{
    *idx = s->n_suspects ? s->suspects : NULL;
    return s->n_suspects;
}

size_t weft__jscan_poison(const weft__jscan_t *s, const uint64_t **idx)
{
    *idx = s->n_poison ? s->poison : NULL;
    return s->n_poison;
}

/* ---- resume ------------------------------------------------------------ */

int weft__journal_resume(weft__journal_t **j, weft__jscan_t **scan, const char *path,
                         char *err, size_t errlen)
{
    *j = NULL;
    *scan = NULL;
    int fd = -1;
    int rc = open_locked(&fd, path, 0, err, errlen);
    if (rc)
        return rc;
    const char *what;
    struct stat st;
    void *map = NULL;
    size_t len = 0;
    weft__jscan_t *s = NULL;
    what = "read";
    if (fstat(fd, &st) != 0)
        goto fail_errno;
    len = (size_t)st.st_size;
    if (len) {
        /* Not MAP_POPULATE: that made the whole file resident before the
         * scan began.  Read ahead hard for the scan (one pass, then the
         * index pass), then as usual for the lookups, which follow the file
         * order only roughly. */
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            goto fail_errno;
        }
        (void)madvise(map, len, MADV_SEQUENTIAL); /* advice: failure is harmless */
    }
    char why[160];
    if ((rc = scan_parse(&s, map, len, true, why, sizeof why)) != 0) {
        weft__msgf(err, errlen, "%s: %s", path, why);
        goto out_err;
    }
    if (map)
        (void)madvise(map, len, MADV_NORMAL);
    s->map = map;
    s->map_len = len;
    map = NULL;
    if (s->dropped) {
        /* The tail is never read again: truncating under the mapping is
         * safe (pages past the new end are not touched). */
        what = "truncate";
        if (ftruncate(fd, (off_t)s->valid_len) != 0 || fsync(fd) != 0)
            goto fail_errno;
    }
    what = "seek in";
    if (lseek(fd, (off_t)s->valid_len, SEEK_SET) < 0)
        goto fail_errno;
    if ((rc = journal_new(j, fd, s->version)) != 0) {
        weft__msgf(err, errlen, "%s: out of memory", path);
        goto out_err;
    }
    *scan = s;
    return 0;
fail_errno:
    rc = -errno;
    weft__msgf(err, errlen, "%s: cannot %s the journal: %s", path, what,
               weft_strerror(rc));
out_err:
    weft__jscan_free(&s);
    if (map)
        munmap(map, len);
    close(fd);
    return rc;
}

/* ---- DONE chunks ----------------------------------------------------------- */

/* While a chunk is built, its state sits in the buffer's spare room just past
 * b->len (the header only gets its count and base at the end, and add is not
 * told where the chunk starts): u64 prev (the last entry's index), u64 base
 * (the first one's), u32 n (entries so far).  Every begin and add writes it
 * there after growing the buffer; nothing else may touch b in between
 * (journal.h).  In memory only, so native byte order; field by field: a
 * struct copied through the stack stalled store forwarding, which was the
 * worst cost of the per-item path. */
#define TRAIL 20u

static void trail_put(unsigned char *t, uint64_t prev, uint64_t base, uint32_t n)
{
    memcpy(t, &prev, 8);
    memcpy(t + 8, &base, 8);
    memcpy(t + 16, &n, 4);
}

static void trail_get(const unsigned char *t, uint64_t *prev, uint64_t *base, uint32_t *n)
{
    memcpy(prev, t, 8);
    memcpy(base, t + 8, 8);
    memcpy(n, t + 16, 4);
}

int weft__jchunk_begin(weft__buf_t *b, size_t *mark)
{
    *mark = b->len;
    int rc = weft__buf_reserve(b, CHUNK_HDR + TRAIL);
    if (rc)
        return rc;
    memset(b->data + b->len, 0, CHUNK_HDR);
    b->len += CHUNK_HDR;
    trail_put((unsigned char *)b->data + b->len, 0, 0, 0);
    return 0;
}

int weft__jchunk_add(weft__buf_t *b, uint64_t index, uint64_t item_hash, unsigned status,
                     uint32_t records, const void *bytes, size_t len, const char *m,
                     size_t msg_len)
{
    return weft__jchunk_add_timed(b, index, item_hash, status, records, bytes, len, m,
                                  msg_len, NULL);
}

int weft__jchunk_add_timed(weft__buf_t *b, uint64_t index, uint64_t item_hash,
                           unsigned status, uint32_t records, const void *bytes, size_t len,
                           const char *m, size_t msg_len, const weft__jtime_t *t)
{
    if (status < WEFT__J_OK || status > WEFT__J_QUARANTINED)
        return -EINVAL;
    if (status == WEFT__J_OK)
        msg_len = 0; /* not stored: an OK entry has no message */
    /* The chunk is at most the whole buffer: bounding the buffer bounds the
     * record's 32-bit length without knowing where the chunk starts. */
    size_t limit = (size_t)UINT32_MAX;
    if (len > limit || msg_len > limit || b->len > limit || limit - b->len < ENTRY_MAX ||
        len + msg_len > limit - b->len - ENTRY_MAX)
        return -E2BIG;
    uint64_t prev, base;
    uint32_t n;
    trail_get((const unsigned char *)b->data + b->len, &prev, &base, &n); /* see TRAIL */
    size_t need = ENTRY_MAX + len + msg_len + TRAIL;
    int rc = b->cap - b->len >= need ? 0 : weft__buf_reserve(b, need);
    if (rc)
        return rc;
    if (n == 0)
        base = prev = index;
    unsigned char *e = (unsigned char *)b->data + b->len;
    e += put_delta(e, prev, index);
    st64(e, item_hash);
    e[8] = (unsigned char)(status | (t ? WEFT__J_TIMED : 0));
    e += 9;
    e += put_uv(e, records);
    e += put_uv(e, len);
    if (len <= 16) { /* most outputs: cheaper than a call */
        for (size_t k = 0; k < len; k++)
            e[k] = ((const unsigned char *)bytes)[k];
    } else {
        memcpy(e, bytes, len);
    }
    e += len;
    if (status != WEFT__J_OK) {
        e += put_uv(e, msg_len);
        if (msg_len)
            memcpy(e, m, msg_len);
        e += msg_len;
    }
    if (t) {
        e += put_uv(e, t->attempts);
        e += put_uv(e, t->start_us);
        e += put_uv(e, t->runtime_us);
    }
    b->len = (size_t)(e - (unsigned char *)b->data);
    trail_put(e, index, base, n + 1);
    return 0;
}

void weft__jchunk_end(weft__buf_t *b, size_t mark)
{
    if (b->len <= mark + CHUNK_HDR) {
        if (b->len > mark)
            b->len = mark;
        return;
    }
    uint64_t prev, base;
    uint32_t n;
    trail_get((const unsigned char *)b->data + b->len, &prev, &base, &n);
    unsigned char *r = (unsigned char *)b->data + mark;
    st32(r + WEFT__JREC_HDR, n);
    st64(r + WEFT__JREC_HDR + 4, base);
    seal(r, WEFT__JREC_DONE, (uint32_t)(b->len - mark - WEFT__JREC_HDR));
}

/* ---- header diff ----------------------------------------------------------- */

typedef struct dout {
    char *p;
    size_t left;
} dout_t;

static void dput(dout_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dput(dout_t *o, const char *fmt, ...)
{
    if (o->left <= 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p, o->left, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t w = (size_t)n < o->left ? (size_t)n : o->left - 1;
    o->p += w;
    o->left -= w;
}

typedef struct cline {
    const char *s; /* the line */
    int len;
    int klen; /* bytes of "section.key" before '=', or -1 without '=' */
    bool used;
} cline_t;

static size_t split_lines(const char *text, cline_t *v)
{
    size_t n = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l && p[l - 1] == '\r')
            l--;
        if (l > INT_MAX)
            l = INT_MAX;
        if (l) {
            if (v) {
                const char *eq = memchr(p, '=', l);
                v[n] = (cline_t){p, (int)l, eq ? (int)(eq - p) : -1, false};
            }
            n++;
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    return n;
}

/* "[section] key" of a line's key part. */
static void put_key(dout_t *o, const cline_t *c)
{
    const char *dot = memchr(c->s, '.', (size_t)c->klen);
    if (dot)
        dput(o, "config: [%.*s] %.*s: ", (int)(dot - c->s), c->s,
             (int)(c->klen - (dot - c->s) - 1), dot + 1);
    else
        dput(o, "config: %.*s: ", c->klen, c->s);
}

static size_t diff_config(const char *was, const char *now, dout_t *o)
{
    size_t na = split_lines(was, NULL), nb = split_lines(now, NULL);
    cline_t *a = calloc(na + 1, sizeof *a), *b = calloc(nb + 1, sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        if (strcmp(was, now) == 0)
            return 0;
        dput(o, "config: changed\n");
        return 1;
    }
    split_lines(was, a);
    split_lines(now, b);
    size_t diffs = 0;
    for (size_t i = 0; i < na; i++) {
        const cline_t *x = &a[i];
        cline_t *y = NULL;
        for (size_t k = 0; k < nb && !y; k++) {
            if (b[k].used)
                continue;
            if (x->klen >= 0
                    ? (b[k].klen == x->klen && !memcmp(b[k].s, x->s, (size_t)x->klen))
                    : (b[k].len == x->len && !memcmp(b[k].s, x->s, (size_t)x->len)))
                y = &b[k];
        }
        if (y)
            y->used = true;
        if (y && y->len == x->len && !memcmp(y->s, x->s, (size_t)x->len))
            continue;
        diffs++;
        if (x->klen < 0) {
            dput(o, "config: line removed: %.*s\n", x->len, x->s);
            continue;
        }
        put_key(o, x);
        if (y)
            dput(o, "%.*s -> %.*s\n", x->len - x->klen - 1, x->s + x->klen + 1,
                 y->len - y->klen - 1, y->s + y->klen + 1);
        else
            dput(o, "%.*s -> (unset)\n", x->len - x->klen - 1, x->s + x->klen + 1);
    }
    for (size_t k = 0; k < nb; k++) {
        const cline_t *y = &b[k];
        if (y->used)
            continue;
        diffs++;
        if (y->klen < 0) {
            dput(o, "config: line added: %.*s\n", y->len, y->s);
            continue;
        }
        put_key(o, y);
        dput(o, "(unset) -> %.*s\n", y->len - y->klen - 1, y->s + y->klen + 1);
    }
    free(a);
    free(b);
    return diffs;
}

size_t weft__jheader_diff(const weft__jheader_t *was, const weft__jheader_t *now,
                          char *out, size_t outlen)
{
    dout_t o = {out, outlen};
    if (out && outlen)
        out[0] = '\0';
    else
        o.left = 0;
    const char *wc = was->config ? was->config : "", *nc = now->config ? now->config : "";
    size_t diffs = diff_config(wc, nc, &o);
    const char *names[2] = {"plugin", "items"};
    const char *w[2] = {was->plugin, was->items}, *n[2] = {now->plugin, now->items};
    for (int k = 0; k < 2; k++) {
        const char *x = w[k] ? w[k] : "", *y = n[k] ? n[k] : "";
        if (strcmp(x, y) != 0) {
            diffs++;
            dput(&o, "%s: %s -> %s\n", names[k], x, y);
        }
    }
    return diffs;
}
