/* SPDX-License-Identifier: MIT */
/*
 * sync = batch: a worker's committed files made durable together (group
 * commit).
 *
 * With a batch bound to the calling thread, host->out_commit closes the
 * file and queues it (its folder, its temporary and final names) instead
 * of syncing it alone.  weft__outbatch_commit then makes the group durable
 * in the order a crash needs:
 *   1. syncfs: every queued file's bytes reach the disk;
 *   2. each temporary is renamed to its final name;
 *   3. syncfs again: the names reach the disk;
 * once per filesystem the files are on (usually one), so N files cost two
 * filesystem syncs instead of 2N fsyncs.  The engine commits a worker's
 * batch before that worker's journal entries are appended (core/run/jlog.c):
 * an item the journal says is done has its file durable under its name,
 * as with sync = item, and a crash before the commit leaves temporaries
 * (swept at the next start) and items the journal does not list (run
 * again by --resume).  A batch is committed when it is full (BATCH_FILES
 * files, or BATCH_DIRS subfolders held open), when the worker's journal
 * chunk is handed over (at most every 50 ms), and at the end of the run.
 *
 * syncfs writes back the whole filesystem, also what other programs left
 * dirty on it: on a disk shared with heavy writers, sync = item may wait
 * less.  Each batch syncs through its own descriptor of the output folder:
 * a writeback error is reported to every descriptor opened before it
 * (Linux >= 5.8), so one worker's commit cannot consume another's error.  Threads: a batch belongs to one worker thread at a time (bound
 * with weft__outbatch_bind); commit it from that thread, or once the
 * worker has stopped.  Without a bound batch (isolate = process worker
 * processes, items the main thread runs on a resume), out_commit syncs
 * each file as sync = item does.
 */
#ifndef WEFT_CORE_OUTBATCH_H
#define WEFT_CORE_OUTBATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "loader.h"

typedef struct weft__outbatch weft__outbatch_t;

/* An empty batch, its room allocated now; it holds at most max_dirs
 * subfolder fds at a time (the run's share of RLIMIT_NOFILE; files of one
 * subfolder share one).  0 or -ENOMEM. */
int weft__outbatch_new(weft__outbatch_t **out, unsigned max_dirs);

/* Removes the temporaries still queued (nothing is renamed) and frees the
 * batch; NULL ok. */
void weft__outbatch_free(weft__outbatch_t **b);

/* The calling thread's batch from now on (NULL: none). */
void weft__outbatch_bind(weft__outbatch_t *b);
weft__outbatch_t *weft__outbatch_bound(void);

/* Files queued, not yet committed. */
size_t weft__outbatch_pending(const weft__outbatch_t *b);

/* Whether a file of folder dirfd (a subfolder of the output folder when
 * own_dir) may join the batch: false on a filesystem whose syncfs is not
 * known to make files durable (FUSE, NFS, SMB: their files are synced one
 * by one, as sync = item does).  The filesystem's type is looked up once
 * per filesystem. */
bool weft__outbatch_accepts(weft__outbatch_t *b, const weft__host_t *h, int dirfd,
                            bool own_dir);

/*
 * Queues a closed temporary `tmp` of folder `dirfd` (taken over when
 * own_dir: closed after the commit, or at once when the batch already
 * holds that folder) to become `name`; `rel` names it in messages.  A
 * full batch is committed first.  0, or -1 with r's message when that
 * commit failed (this file is then removed too).
 */
int weft__outbatch_add(weft__outbatch_t *b, const weft__host_t *h, int dirfd, bool own_dir,
                       const char *tmp, const char *name, const char *rel, weft_result_t *r);

/*
 * Makes every queued file durable under its name (steps 1-3 above); the
 * batch is empty afterwards.  0, or a negative errno with the message in
 * err ("DIR/x.png: syncfs: Input/output error"): then some or all of the
 * files may be missing or not durable, their temporaries are removed, and
 * h->write_error is set (the run ends with status 3).  The caller must not
 * journal the items those files belong to.
 */
int weft__outbatch_commit(weft__outbatch_t *b, const weft__host_t *h, char *err,
                          size_t errlen);

#endif
