/* SPDX-License-Identifier: MIT */
/*
 * The run journal: an append-only file beside the output in which every
 * finished item is recorded, so that `weft run --resume` can skip done items
 * (reusing their output bytes), refuse a changed job, and spot the items that
 * crash the process (poison).
 *
 * File format, version 3, fixed-size integers little-endian:
 *
 *   "WEFTJRN1"                                 8 bytes, the file magic
 *   record HEADER                              the job's identity
 *   record ...                                 SESSION, WINDOW, BEGIN, DONE, END
 *
 *   record  = u32 type, u32 payload length, u64 checksum, payload
 *             type = WEFT__JREC_MAGIC | kind; checksum = XXH3_64bits of the
 *             16-byte header (checksum field taken as 0) and the payload.
 *   HEADER  = u32 version (3, or 2), u32 0, then config, plugin, items, each as
 *             u32 length + NUL-free text
 *   SESSION = u64 session number, u8 mode flags      (a run or resume starts)
 *   WINDOW  = u64 first, u64 count, count <= 2^18    (items being started)
 *   BEGIN   = u64 index                              (one item started alone)
 *   DONE    = u32 n, u64 base, then n entries:
 *             vdelta index, u64 item_hash, u8 status, varint records,
 *             varint len, bytes[len],
 *             and only when status != OK: varint msg_len, msg[msg_len],
 *             and only when status has bit 0x80 (TIMED; version 3 only):
 *             varint attempts, varint start_us, varint runtime_us
 *             (the low 7 bits of status are the enum weft__jstatus)
 *   END     = u64 ok, u64 failed                     (the session completed)
 *   STOP    = (empty)                       (it stopped early, cleanly: a
 *                                            halt or a signal, no crash)
 *   CRASH   = u32 signal (0: the plugin called exit()), u32 n, u64 index[n]
 *             (weft itself crashed while
 *                                            running these items)
 *
 *   varint  = LEB128: 7 bits a byte, low group first, high bit = more follow;
 *             records, len and msg_len are u32 (at most 5 bytes), and an
 *             encoding with a last group of 0 after others is refused
 *   vdelta  = the zigzag of the true (65-bit) difference d = index - prev,
 *             z = 2d (d >= 0) or -2d - 1 (d < 0): byte 0 holds z's low 7
 *             bits, and if its high bit is set, z >> 7 follows as a varint
 *             (non-zero, at most 58 bits; at most 10 bytes in all).  prev is
 *             base for the first entry (weft writes its index there), then
 *             the entry before; an index outside [0, 2^64) is refused.  A run's entries mostly go
 *             index + 1: 1 byte, so a typical OK entry costs 12 bytes + len.
 *
 * TIMED entries (`weft log`): attempts is how many times process_one ran
 * (1 + retries), start_us the wall clock (CLOCK_REALTIME, microseconds
 * since the Unix epoch) when its first attempt began, runtime_us the
 * monotonic time from then until its result was encoded after the last
 * one.  Each is at most 64 bits (attempts 32).  The runner writes them
 * from one monotonic reading per item: an item a worker runs right after
 * another of its chunk starts when that one ended (core/run/item.h).
 *
 * Version 2 is version 3 without TIMED entries (a TIMED bit in a version 2
 * file is a bad DONE record).  It is read as before, and a resume of it
 * appends untimed entries only, so the file stays version 2 for a weft
 * that predates version 3 (which refuses a version 3 file with -ENOTSUP
 * rather than misreading it).  Version 1 (u64 index, u32 records, u32 len,
 * u32 msg_len in every DONE entry; the same magic) is refused with
 * -ENOTSUP: it is finished with the weft that wrote it, or started over.
 *
 * A record is used only when it is complete, its checksum matches and its
 * payload is well formed; the first one that is not ends the journal (a torn
 * or corrupt tail): everything from there on is dropped, and a resume
 * truncates the file there before appending.
 *
 * Threads: a weft__journal_t may be appended to from any thread; the chunk
 * builders touch only the caller's buffer; a scan is read-only after
 * weft__jscan_parse() returns and may be read from any thread (a resume's
 * gets only count, with an atomic add per 256 KiB read, and now and then drop
 * the resident pages of the journal's mapping: no lock, no allocation).
 */
#ifndef WEFT_CORE_JOURNAL_H
#define WEFT_CORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "output.h" /* weft__buf_t */

typedef struct weft__journal weft__journal_t; /* an open journal, for appending */
typedef struct weft__jscan weft__jscan_t;     /* what a reader found             */

enum weft__jstatus {
    WEFT__J_OK = 1,
    WEFT__J_FAILED,
    WEFT__J_CRASHED,
    WEFT__J_TIMEDOUT,
    WEFT__J_QUARANTINED
};

/* Record kinds (low byte of the type field). */
enum weft__jrec {
    WEFT__JREC_HEADER = 1,
    WEFT__JREC_SESSION,
    WEFT__JREC_WINDOW,
    WEFT__JREC_BEGIN,
    WEFT__JREC_DONE,
    WEFT__JREC_END,
    WEFT__JREC_STOP,
    WEFT__JREC_CRASH,
};
#define WEFT__JREC_MAGIC 0x4A570000u /* "\0\0WJ" above the kind */
#define WEFT__JREC_HDR 16u           /* bytes of a record header */
#define WEFT__JOURNAL_VERSION 3u  /* what weft__journal_create writes      */
#define WEFT__JOURNAL_OLDEST 2u   /* the oldest version read (and resumed)  */
#define WEFT__J_TIMED 0x80u       /* status bit: the entry has its timing   */

/* SESSION mode flags: opaque to the journal, kept for the reader. */
#define WEFT__JS_RESUME 0x1u  /* a resume (not a fresh run)               */
#define WEFT__JS_CAREFUL 0x2u /* suspects run one at a time with BEGIN    */
#define WEFT__JS_COMPACT 0x4u /* a compacted journal: the run it stands for
                                 finished every item ok; no entries      */

#define WEFT__J_MAX_WINDOW (1u << 18) /* most items in one WINDOW record */
/* Most items a scan tracks as in flight at once within one session (nor may
 * they spread over more than 16384 blocks of 4096 indices); a journal that
 * exceeds it is refused (-E2BIG): a runner keeps only a few windows in
 * flight. */
#define WEFT__J_MAX_INFLIGHT (1u << 22)

/* What of a resumed journal's mapping stays resident (in the RSS) as it is
 * scanned and read: about this many bytes, plus 320 KiB per reading thread
 * and the entries being read (weft__journal_resume; journal.c's touched()
 * says how, and why it is safe with concurrent readers). */
#define WEFT__J_RESIDENT ((size_t)4 << 20)

typedef struct weft__jheader {
    const char *config, *plugin, *items;
} weft__jheader_t;

/* ---- writing ------------------------------------------------------------ */

/* Creates path, replacing it only once its lock is held: takes an exclusive
 * non-blocking flock (-EWOULDBLOCK with "PATH is in use by another weft run"
 * when held), writes and fsyncs the header in PATH.new, renames that over
 * PATH (so PATH is always a whole journal), fsyncs the folder.
 * The three header texts must not be NULL.  On error *j is NULL. */
int weft__journal_create(weft__journal_t **j, const char *path, const weft__jheader_t *h,
                         char *err, size_t errlen);

/* Replaces the journal at path (closed, its run finished with every item
 * ok) by its identity alone: the header, one SESSION with
 * WEFT__JS_COMPACT, END(ok, 0).  Atomic (weft__journal_create's rename);
 * on an error the whole journal stays. */
int weft__journal_compact(const char *path, const weft__jheader_t *h, uint64_t ok,
                          char *err, size_t errlen);

/* Opens an existing journal for resume: flock as above, maps and scans it
 * into *scan (the caller frees it with weft__jscan_free, before or after
 * closing the journal), truncates a torn tail (weft__jscan_dropped() says how
 * much; the file is fsynced) and positions for appending.  The mapping is
 * read-only and private; of it only ~WEFT__J_RESIDENT stays resident while
 * the scan and its gets read it, however large the journal.  -ENOENT when
 * missing; -EINVAL when the file is not a journal or its header is damaged
 * (the message says which); the parse errors below.  On error both outputs
 * are NULL. */
int weft__journal_resume(weft__journal_t **j, weft__jscan_t **scan, const char *path,
                         char *err, size_t errlen);

/* Thread-safe appends: one write(2) per call under a mutex; short writes
 * continued, EINTR retried.  Errors are returned as -errno and latched: once
 * an append or sync failed, every later call returns that first error
 * without writing (a half-written record may end the file; a resume drops
 * it).  len 0 writes nothing. */
int weft__journal_append(weft__journal_t *j, const void *rec, size_t len);
/* flags: 0..255 (WEFT__JS_*); -EINVAL otherwise. */
int weft__journal_session(weft__journal_t *j, uint64_t session, unsigned flags);
/* 1 <= count <= WEFT__J_MAX_WINDOW and first + count must not wrap: -EINVAL. */
int weft__journal_window(weft__journal_t *j, uint64_t first, uint64_t count);
int weft__journal_begin(weft__journal_t *j, uint64_t index);
int weft__journal_end(weft__journal_t *j, uint64_t ok, uint64_t failed);
/* The session stopped early but cleanly (halt, signal): not finished, and
 * its unfinished items were not in flight in a crash. */
int weft__journal_stop(weft__journal_t *j);

/* For a crash handler: builds a CRASH record naming the items in flight
 * into buf (cap bytes; at most (cap - 24) / 8 items are kept) and returns
 * its length.  Pure computation: async-signal-safe.  Write it with one
 * write(2) to weft__journal_fd(): regular-file writes do not interleave. */
size_t weft__journal_crash_record(void *buf, size_t cap, int signal, const uint64_t *items,
                                  size_t n);
int weft__journal_fd(const weft__journal_t *j);
/* The file's format version: WEFT__JOURNAL_VERSION when created, the
 * file's own when resumed.  Only a version 3 journal takes TIMED entries. */
unsigned weft__journal_version(const weft__journal_t *j);

/* Whether the journal at path ends with a valid END record (its last run
 * finished), without reading the rest: a plain run's cheap check.  0, or
 * -errno (-ENOENT: no journal). */
int weft__journal_peek(const char *path, bool *finished);

/* True when the file at path is shorter than a journal header: it was
 * being created when the process died, and holds no work. */
bool weft__journal_empty(const char *path);

int weft__journal_sync(weft__journal_t *j); /* fdatasync; -errno, latched */
/* Syncs, unlocks, closes; *j becomes NULL.  Returns the latched error if an
 * earlier call failed, else -errno of the sync or close.  NULL-safe. */
int weft__journal_close(weft__journal_t **j);

/*
 * Building a DONE chunk without locks, in a caller-owned growable buffer,
 * on a worker thread: begin, add entries, end (fills count, length and
 * checksum).  Appending the finished chunk is one
 * weft__journal_append(j, b->data + mark, b->len - mark).  Several chunks may
 * follow each other in one buffer.  Do not touch b between begin and end
 * except through weft__jchunk_add: the chunk's running state sits in b's
 * spare room, past b->len.  Per entry: no allocation but b's growth.
 */
int weft__jchunk_begin(weft__buf_t *b, size_t *mark); /* 0 or -ENOMEM */
/* status: enum weft__jstatus (else -EINVAL); with WEFT__J_OK, msg is not
 * stored (a get returns msg_len 0).  Indices may come in any order (each is
 * stored relative to the one before).  -ENOMEM leaves the chunk as
 * it was.  -E2BIG when the buffer would pass 4 GiB (a record's length is 32
 * bits): end and append the chunk, empty the buffer, begin again. */
int weft__jchunk_add(weft__buf_t *b, uint64_t index, uint64_t item_hash, unsigned status,
                     uint32_t records, const void *bytes, size_t len, const char *msg,
                     size_t msg_len);
/* An item's timing, for a TIMED entry (journal.h's format). */
typedef struct weft__jtime {
    uint32_t attempts;
    uint64_t start_us, runtime_us;
} weft__jtime_t;
/* weft__jchunk_add, and with t a TIMED entry: only into the chunks of a
 * version 3 journal (weft__journal_version); t NULL: an untimed one. */
int weft__jchunk_add_timed(weft__buf_t *b, uint64_t index, uint64_t item_hash,
                           unsigned status, uint32_t records, const void *bytes, size_t len,
                           const char *msg, size_t msg_len, const weft__jtime_t *t);
/* With no entries the chunk is removed (b->len = mark: nothing to append). */
void weft__jchunk_end(weft__buf_t *b, size_t mark);

/* ---- reading ------------------------------------------------------------ */

/*
 * The reader, on memory (fuzzable): never crashes or over-reads, whatever
 * the input.  data must stay valid and unchanged until weft__jscan_free.
 * Errors (the file is unusable as a whole; torn tails are not errors):
 *   -EINVAL  not a journal (bad magic), or the header is incomplete or damaged
 *   -ENOTSUP another format version (1: "journal format 1 (an older weft):
 *            finish it with that weft, or start over with --restart"; past
 *            3: "journal format version 4 is not supported ...")
 *   -E2BIG   more than WEFT__J_MAX_INFLIGHT items in flight in one session
 *   -ENOMEM
 */
int weft__jscan_parse(weft__jscan_t **scan, const void *data, size_t len, char *err,
                      size_t errlen);
void weft__jscan_free(weft__jscan_t **scan); /* NULL-safe; *scan becomes NULL */

const weft__jheader_t *weft__jscan_header(const weft__jscan_t *s);
unsigned weft__jscan_version(const weft__jscan_t *s); /* 2 or 3 */
size_t weft__jscan_valid_len(const weft__jscan_t *s); /* bytes of good records  */
size_t weft__jscan_dropped(const weft__jscan_t *s);   /* torn/corrupt tail bytes */
/* Why the tail was dropped, e.g. "record at byte 4242: bad checksum", or ""
 * when nothing was. */
const char *weft__jscan_tail(const weft__jscan_t *s);
bool weft__jscan_finished(const weft__jscan_t *s);     /* last session ended with END */
uint64_t weft__jscan_sessions(const weft__jscan_t *s); /* SESSION records        */
/* The number and flags of the last SESSION record (0, 0 when none). */
uint64_t weft__jscan_last_session(const weft__jscan_t *s, unsigned *flags);
uint64_t weft__jscan_items(const weft__jscan_t *s); /* distinct items with an entry */
/* Heap bytes the scan holds, beyond the scanned data (for memory bounds):
 * the index (see weft__jscan_get), the header texts, suspects and poison.
 * A resume's mapping of the scanned data is not counted: WEFT__J_RESIDENT. */
size_t weft__jscan_memory(const weft__jscan_t *s);

/* The latest DONE entry for item `index` (a later entry wins: a retry that
 * succeeded replaces a failure), or false.  Lock-free, no allocation.  The
 * index behind it: for the dense indices a run writes (largest index < 4 x
 * entries + 2^17), O(1), 4 bytes per index + 8 per block of 4096 indices
 * (~4 bytes per item: 40 MB for 10^7), and 16 more for an entry that lies
 * 4 GiB or more past the first entry of its block (then found in O(log n));
 * else sorted pairs, O(log n), 16 bytes per item.  So at most 16 bytes per
 * entry + 512 KiB, + 16 per far entry.  Pointers point into the scanned
 * memory (valid until free); bytes is never NULL. */
typedef struct weft__jentry {
    uint64_t index, item_hash;
    unsigned status;
    uint32_t records;
    const void *bytes;
    uint32_t len;
    const char *msg; /* not NUL-terminated */
    uint32_t msg_len;
    bool timed;      /* a TIMED entry: the next three are set, else 0 */
    uint32_t attempts;
    uint64_t start_us, runtime_us;
} weft__jentry_t;
bool weft__jscan_get(const weft__jscan_t *s, uint64_t index, weft__jentry_t *e);
/* The latest entry of the smallest index >= from that has one, or false:
 * every entry in index order is next(0), then next(e.index + 1) until false
 * (O(1) amortized per index over the dense table, O(log n) sparse). */
bool weft__jscan_next(const weft__jscan_t *s, uint64_t from, weft__jentry_t *e);

/*
 * Poison detection.  A session that ends with neither END nor STOP was
 * killed or crashed.  The items in flight then are the items of its WINDOW
 * and BEGIN records with no DONE entry written after the WINDOW/BEGIN in that
 * same session, but for the items of a WINDOW whose latest entry is an OK
 * one of an earlier session: a resume claims them with the rest and reuses
 * them, never runs them (a failed one may run again, and stays in flight).
 * Sessions that stopped before starting any item (no WINDOW or BEGIN: say,
 * killed during the plugin's init) are skipped here: they say nothing about
 * the items and must not hide the sessions before them.
 * suspects: the in-flight items of the last session if it did not end.
 * poison: the items named by the CRASH records of the last session and of
 * the one just before it, both crashed (a CRASH record is written by weft's
 * own crash handler; a kill -9 writes none, so kills never make poison).
 * Both sorted, unique; *idx is NULL when the count is 0.
 */
size_t weft__jscan_suspects(const weft__jscan_t *s, const uint64_t **idx);
size_t weft__jscan_poison(const weft__jscan_t *s, const uint64_t **idx);

/*
 * Describes how `now` differs from `was`, one line per difference, each
 * ending in '\n':
 *   "config: [args] level: 1 -> 3"        (config blobs compared line by
 *   "config: [args] size: (unset) -> 4"    line; lines are section.key=value,
 *   "config: [run] seed: 7 -> (unset)"     matched by key)
 *   "plugin: noise_png 1.0 xxh=.. -> noise_png 1.1 xxh=.."
 *   "items: ... -> ..."
 * out is always NUL-terminated (when outlen > 0); text that does not fit is
 * cut.  Returns the number of differences (0 = same).  NULL texts are "".
 */
size_t weft__jheader_diff(const weft__jheader_t *was, const weft__jheader_t *now,
                          char *out, size_t outlen);

#endif
