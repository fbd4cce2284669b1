/* SPDX-License-Identifier: MIT */
/*
 * Finding and loading task plugins.
 *
 * A plugin named NAME is the file NAME.so.  A bare name is looked up, in
 * order, in:
 *   1. the [run] plugin_path folders (relative to the config's folder),
 *   2. the config file's folder,
 *   3. the folders of $WEFT_PLUGIN_PATH (':'-separated; empty elements are
 *      skipped, never taken as the current directory),
 *   4. the install folder found from the running weft executable
 *      (<bindir>/../<libdir>/weft/plugins: a relocated install),
 *   5. the `plugins` folder beside the running weft executable (how a
 *      build tree works without installing),
 *   6. the install folder (WEFT_PLUGINDIR, set at build time).
 * The binary's own plugins (4, 5) come before 6, so that a build tree
 * never loads an older installed copy.
 * The current directory is never searched implicitly.  A value containing
 * a '/' is a path and is loaded as is (no search).
 *
 * Loading runs the plugin's code (its ELF constructors) with weft's rights,
 * so before dlopen the file must be safe to trust.  Its path is resolved
 * (realpath: a symlink in a build tree is fine) and opened again one folder
 * at a time from "/" without following symlinks; on what was opened:
 *   - the file and every folder above it must be owned by the effective
 *     uid or by root;
 *   - none may be writable by group or others, except that a parent folder
 *     (not the plugin's own) may be if it is sticky, like /tmp.
 * Otherwise -EPERM: "PATH: refusing to load: the folder /x/y is writable by
 * others (mode 0777)", "... owned by uid 1234, not you (0) or root".  The
 * environment variable WEFT_UNSAFE_PLUGINS=1 skips these ownership and
 * mode checks (tests, unusual setups); nothing else.
 * The checks and the load see the same file: the checked fd is what is
 * loaded (dlopen of /proc/self/fd/N), so swapping the path afterwards
 * changes nothing, and the content hash is read from that fd too.  After
 * dlopen, /proc/self/maps must show the object mapped from that inode.
 */
#ifndef WEFT_CORE_LOADER_H
#define WEFT_CORE_LOADER_H

#include <stddef.h>

#include "config.h" /* weft__sync_t */
#include "weft/plugin.h"

typedef struct weft__plugin {
    void *dl;                    /* dlopen handle                          */
    char *path;                  /* the file that was loaded, resolved by
                                    realpath: for messages                 */
    uint64_t file_hash;          /* XXH3_64bits of the file's bytes, read
                                    from the fd that was loaded (the
                                    journal tells a changed plugin by it)  */
    int fd;                      /* the checked file, open while loaded:
                                    the object's name is /proc/self/fd/N,
                                    which must stay unique                 */
    /* The descriptor, copied into a zeroed full-size struct, so fields a
     * smaller (older) plugin struct lacks read as NULL/0: desc.row_spec
     * and desc.process_range are NULL unless the plugin's struct holds
     * them whole and sets them (desc.struct_size stays the plugin's, so
     * WEFT_PLUGIN_HAS(&desc, member) says what the plugin knew of). */
    weft_plugin_t desc;
} weft__plugin_t;

/* The search folders for bare names, in order (see above); config_dir and
 * config_plugin_path may be NULL.  The caller frees each string and the
 * array.  0 or -ENOMEM. */
int weft__plugin_dirs(const char *config_dir, const char *config_plugin_path,
                      char ***dirs, size_t *n_dirs);

/*
 * Loads a plugin by bare name (searched in dirs) or path, after the safety
 * checks above, and checks its descriptor before anything of it is called:
 * entry symbol present, ABI version equal, struct_size large enough for
 * ABI 1, name/init/process_one set, schema well formed (valid unique names,
 * known types).  Messages start with the resolved path; errors go to err
 * with dlerror()'s text where there is one:
 *   -ENOENT  not found (the message lists every folder searched), or a
 *            path that does not exist or cannot be reached
 *   -EPERM   refused by the safety checks, or the path changed into a
 *            symlink while it was being opened
 *   -ENOEXEC dlopen failed, symbol missing, ABI or size mismatch, bad
 *            schema, not a regular file, or the loaded object is not the
 *            checked file
 *   -EIO     the file could not be read for its hash
 *   -EINVAL  a bare name that is not [a-z0-9_-]+ (e.g. "..", "x.so")
 *   -ENOMEM
 */
int weft__plugin_open(weft__plugin_t **out, const char *name_or_path,
                      char *const *dirs, size_t n_dirs, char *err, size_t errlen);

/* The descriptor checks of weft__plugin_open, on an entry already in
 * memory (also what the tests feed hand-made descriptors to): ABI version,
 * struct_size, then copies min(struct_size, sizeof) bytes into the zeroed
 * *desc (an appended optional member that struct_size cuts through is
 * NULLed) and checks required fields and the schema.  `path` only prefixes
 * messages.  0 or -ENOEXEC (*desc zeroed). */
int weft__plugin_check(const weft_plugin_t *entry, weft_plugin_t *desc, const char *path,
                       char *err, size_t errlen);

/* dlclose()s, closes the fd and frees; *p becomes NULL. */
void weft__plugin_close(weft__plugin_t **p);

/* Tests only: when set, weft__plugin_open calls it with the resolved path
 * after the checks and the hash, right before dlopen, so a test can swap
 * the file under that path and see that the checked one is loaded. */
extern void (*weft__plugin_open_test_hook)(const char *real_path);

/* ---- the host table handed to plugins (core/host/host.c) ----------------- */

typedef struct weft__host {
    weft_host_t pub;        /* first member: plugins see only this        */
    const char *plugin_name;/* prefix for logf                            */
    /* Set by the runner before init, read by workers (should_stop): NULL
     * for never; nonzero = stopping, 2 = stop at once (halt = now, second
     * signal).  The runner owns it and keeps it alive until destroy. */
    _Atomic int *stop;
    /* The output folder (weft__outdir_fd) and its path for messages; -1 /
     * NULL when the plugin has no OUTDIR argument.  Borrowed: the runner
     * keeps the folder open until destroy() returned. */
    int outdir_fd;
    const char *outdir_path;
    /* The first storage error (-ENOSPC, -EDQUOT, -EIO, -EROFS, -EFBIG) of a
     * plugin's output files, or 0: the run then ends with "could not be
     * written" (status 3), not as items that merely failed.  The runner
     * points it into shared memory, so worker processes report too; NULL:
     * not kept. */
    _Atomic int *write_error;
    /* Where logf's lines go: log_line(log_arg, line, len), in the process
     * that set it (log_pid; a forked worker writes to stderr itself, never
     * through a copy of the runner's progress and its lock), else stderr;
     * log_quiet (-q) drops them. */
    void (*log_line)(void *arg, const char *line, size_t len);
    void *log_arg;
    long log_pid;
    /* isolate = process with log_line set: a forked worker writes each line
     * of at most PIPE_BUF bytes in one write (atomic, never interleaved) to
     * this non-blocking pipe, which the supervisor relays to log_line
     * (weft__progress_relay); a longer line, or a full pipe, goes to
     * stderr.  -1: none (weft__host_init). */
    int log_fd;
    bool log_quiet;
    /* How out_commit makes a file durable ([run] sync): BATCH queues it in
     * the calling thread's batch when one is bound (outbatch.h), else
     * syncs it as ITEM does; NONE renames it unsynced. */
    weft__sync_t sync;
} weft__host_t;

/* Fills the table (all function pointers set, struct_size, abi_version);
 * stop = NULL, outdir_fd = -1. */
void weft__host_init(weft__host_t *h, const char *plugin_name, uint64_t run_seed,
                     const char *config_dir);

/* Worker side of should_stop's timeout: the runner calls this on the worker
 * thread right before each process_one, with the item's deadline on
 * CLOCK_MONOTONIC in seconds (weft__host_now()), or 0 for none. */
void weft__host_item_begin(double deadline_or_0);

/* Set on this thread by child_ended when the child had been sent the
 * first SIGINT/SIGTERM/SIGHUP, which weft forwards to the children plugins
 * announce (weft__children_forward): the item that then fails was stopped,
 * not bad, and the runner records it as not run.  The runner clears it
 * before each item. */
extern _Thread_local bool weft__host_interrupted;

/* CLOCK_MONOTONIC in seconds: the clock of weft__host_item_begin. */
double weft__host_now(void);

/* ---- Philox4x32-10 (core/host/rng.c) --------------------------------------- */

/* One block: out = Philox4x32-10(counter ctr, key). */
void weft__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The rng_* entries of the host table, usable directly by the core. */
void weft__rng_init(weft_rng_t *rng, uint64_t run_seed, uint64_t stream, uint64_t index);
uint64_t weft__rng_u64(weft_rng_t *rng);
double weft__rng_double(weft_rng_t *rng);
void weft__rng_fill(weft_rng_t *rng, void *buf, size_t n);

#endif
