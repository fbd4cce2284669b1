/* SPDX-License-Identifier: MIT */
/*
 * The output folder of a run (a plugin's WEFT_ARG_OUTDIR argument): created,
 * opened once, and locked so that two runs never write into it together.
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on PATH/.weft.lock, held on an open
 * file description for as long as the folder is open: the kernel drops it
 * when the process exits however it exits, so a crashed run leaves nothing
 * to clean up (the file stays, unlocked).  The holder's pid is written into
 * the file after locking, only so that the refusal can name it.  flock locks
 * are per open file description: a second weft__outdir_open of the same
 * folder in the same process is refused too.  NFS emulates flock with
 * fcntl locks (still exclusive across hosts on Linux >= 2.6.12).
 */
#ifndef WEFT_CORE_OUTDIR_H
#define WEFT_CORE_OUTDIR_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/plugin.h"

typedef struct weft__outdir weft__outdir_t;

/* The lock file's name inside the output folder. */
#define WEFT__OUTDIR_LOCK ".weft.lock"

/*
 * Creates `path` (mkdir -p, mode 0777 & ~umask) unless it exists, opens it
 * (O_DIRECTORY | O_CLOEXEC) and takes the lock.  0 and *d set, or *d = NULL
 * and a negative errno with err saying what and where:
 *   -EBUSY    "PATH is in use by another weft run (pid N)"
 *   -ENOTDIR  PATH (or a parent) is not a folder
 *   -EACCES, -EROFS, -ENOSPC, ...: mkdir/open/lock file creation failed
 *   -EINVAL   empty path
 *   -ENOMEM
 * path is copied.
 */
int weft__outdir_open(weft__outdir_t **d, const char *path, char *err, size_t errlen);

/* Releases the lock, closes the folder, frees; *d becomes NULL.  The lock
 * file is left in place (removing it would race with a run that just
 * opened it and is about to lock it). */
void weft__outdir_close(weft__outdir_t **d);

/*
 * Temporary names.  out_open writes NAME under ".NAME.weft-tmp-PID-N" in
 * its final folder (NAME cut to fit NAME_MAX) until out_commit renames it.
 * weft__outdir_temp_name writes that name into out (at least NAME_MAX + 1
 * bytes); weft__outdir_is_temp recognizes one.
 */
void weft__outdir_temp_name(char *out, size_t size, const char *name, long pid,
                            unsigned long n);
bool weft__outdir_is_temp(const char *name);

/* Whether the file or folder name (len bytes, not NUL-terminated) is one
 * weft keeps for itself, so that no item output may take it: a name
 * beginning ".weft." or ".weft-" (the lock, the journal and its .new) and
 * a temporary's name (which the start-up sweep removes). */
bool weft__outdir_reserved(const char *name, size_t len);

/*
 * Removes the temporaries a run that did not finish (killed, crashed, out
 * of power) left anywhere under the folder, never following a symbolic
 * link nor entering a folder that holds a lock of its own (another run's
 * output folder, nested in this one).  Safe only while the lock is held (no other run can be writing
 * them): the runner calls it right after weft__outdir_open.  Best effort:
 * returns how many it removed; folders it cannot read are skipped.
 */
size_t weft__outdir_sweep(const weft__outdir_t *d);

/* The folder's descriptor, valid until weft__outdir_close. */
int weft__outdir_fd(const weft__outdir_t *d);

/* The path as given to weft__outdir_open (for messages). */
const char *weft__outdir_path(const weft__outdir_t *d);

/*
 * The plugin's OUTDIR argument, if any: *index = k with schema[k].type ==
 * WEFT_ARG_OUTDIR and returns 1; returns 0 (and *index = SIZE_MAX) when
 * there is none; -EINVAL with err ("PLUGIN: arguments 'a' and 'b' are both
 * output folders: at most one") when there are two or more.
 */
int weft__outdir_arg(const weft_plugin_t *desc, size_t *index, char *err, size_t errlen);

/*
 * Binds the folder to a host table (core/host/loader.h): the out_* entries then
 * write into it.  NULL unbinds.  Call before init; d must outlive the
 * plugin's destroy().
 */
struct weft__host;
void weft__host_set_outdir(struct weft__host *h, const weft__outdir_t *d);

/*
 * What the runner calls, once, between weft__host_init and the plugin's
 * init: finds the plugin's OUTDIR argument in the bound args (schema desc),
 * opens and locks that folder into *d and binds it to h.  A plugin without
 * an OUTDIR argument: *d = NULL, h unbound, 0.  Errors as
 * weft__outdir_open and weft__outdir_arg (nothing ran: exit status 2).
 * Close *d with weft__outdir_close after the plugin's destroy().
 */
int weft__outdir_bind(weft__outdir_t **d, struct weft__host *h, const weft_plugin_t *desc,
                      const weft_arg_value_t *args, char *err, size_t errlen);

#endif
