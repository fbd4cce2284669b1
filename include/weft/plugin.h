/* SPDX-License-Identifier: MIT */
/*
 * weft plugin SDK: the only header a task plugin needs.
 *
 * A plugin is a shared object that exports one symbol, WEFT_PLUGIN_ENTRY
 * ("weft_plugin_entry"): a const weft_plugin_t.  It links against nothing of
 * weft's; everything the runner offers reaches it through the weft_host_t
 * table passed to init().  Both structs start with their size and the ABI
 * version, and only ever grow at their end, so an older plugin keeps working
 * with a newer runner (which reads only the first struct_size bytes) and a
 * newer plugin can tell which host entries exist (host->struct_size).
 *
 * Lifecycle, and which thread calls what (the runner's main thread is "main"):
 *
 *   init            main, once, before anything else
 *   worker_init     main, once per worker, serially, before any item
 *   process_one     any worker thread, concurrently, once per item
 *   process_range   (optional) any worker thread, concurrently, in place of
 *                   process_one for a run of consecutive range items, when
 *                   nothing is kept per item
 *   worker_fini     main, once per worker, serially, after the last item
 *   finish          main, once, after every worker_fini
 *   destroy         main, once, last; always called when init succeeded
 *
 * Everything a plugin receives is owned by the runner and valid for the call
 * it is passed to, unless a field says otherwise.
 */
#ifndef WEFT_PLUGIN_H
#define WEFT_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change; the runner refuses any other value. */
#define WEFT_PLUGIN_ABI_VERSION 1u
#define WEFT_PLUGIN_ENTRY weft_plugin_entry
#define WEFT_PLUGIN_ENTRY_NAME "weft_plugin_entry"

#if defined(__GNUC__)
#define WEFT_PLUGIN_EXPORT __attribute__((visibility("default")))
#define WEFT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WEFT_PLUGIN_EXPORT
#define WEFT_PRINTF(fmt, args)
#endif

/* ---- argument schema (the fixed arguments a config binds) ------------- */

typedef enum weft_arg_type {
    WEFT_ARG_INT = 1,  /* int64_t; decimal or 0x hex, range-checked      */
    WEFT_ARG_FLOAT,    /* double; finite                                  */
    WEFT_ARG_BOOL,     /* true/false, yes/no, on/off, 1/0                 */
    WEFT_ARG_STRING,   /* any text                                        */
    WEFT_ARG_PATH,     /* text; relative paths are resolved against the
                          config file's folder                            */
    WEFT_ARG_OUTDIR,   /* like PATH: the folder the plugin writes its
                          files into, through host->out_open.  At most one
                          per plugin.  The runner creates it and locks it
                          (a second run on it is refused) before init().  */
} weft_arg_type_t;

typedef struct weft_arg_spec {
    const char *name;          /* [a-z_][a-z0-9_]*, unique in the schema  */
    weft_arg_type_t type;
    const char *default_value; /* as written in an INI file; NULL: required */
    const char *help;          /* one line, shown by `weft describe`      */
    /* Inclusive bounds for INT and FLOAT, checked when min < max; leave
     * both 0 for no bound. */
    double min, max;
} weft_arg_spec_t;

/* A bound argument, as init() receives it: args[k] belongs to schema[k]. */
typedef struct weft_arg_value {
    weft_arg_type_t type;
    union {
        int64_t i;
        double f;
        bool b;
        const char *s; /* STRING and PATH; valid until destroy() returns */
    } u;
} weft_arg_value_t;

/* ---- items and results ------------------------------------------------- */

typedef struct weft_item {
    uint64_t index;    /* position in input order, 0-based                */
    int64_t number;    /* range sources: the item's number (10..20 gives
                          10, 11, ..., 19); other sources: == index       */
    const char *text;  /* payload of text sources (a line, a path, a JSON
                          element), NUL-terminated; NULL for ranges       */
    size_t text_len;
} weft_item_t;

typedef enum weft_value_kind {
    WEFT_VALUE_NONE = 0, /* no value: written as null                    */
    WEFT_VALUE_INT,
    WEFT_VALUE_FLOAT,    /* non-finite values are written as null         */
    WEFT_VALUE_BOOL,
    WEFT_VALUE_STRING,   /* any bytes; invalid UTF-8 is escaped as U+FFFD */
    WEFT_VALUE_JSON,     /* JSON text, validated by the runner            */
} weft_value_kind_t;

/*
 * What process_one() fills in.  The runner zeroes kind before each call.
 * Strings (STRING, JSON) are borrowed: they must stay valid only until
 * process_one returns, because the runner encodes the result on the same
 * thread right after; per-worker scratch is the natural place for them.
 */
typedef struct weft_result {
    weft_value_kind_t kind;
    union {
        int64_t i;
        double f;
        bool b;
        struct {
            const char *ptr;
            size_t len;
        } s;
    } value;
    /* Failure message buffer, owned by the runner (msg_size >= 256).
     * Write it with host->failf() or snprintf; empty means "no message". */
    char *msg;
    size_t msg_size;
    /* Array output (see row_spec): this item's row inside the output file,
     * row_len zeroed elements of the declared dtype, aligned to the
     * element size; write it in place (nothing is copied).  NULL when the
     * run has no array output.  A failed item's row is zeroed again. */
    void *row;
} weft_result_t;

static inline void weft_result_int(weft_result_t *r, int64_t v)
{
    r->kind = WEFT_VALUE_INT;
    r->value.i = v;
}
static inline void weft_result_float(weft_result_t *r, double v)
{
    r->kind = WEFT_VALUE_FLOAT;
    r->value.f = v;
}
static inline void weft_result_bool(weft_result_t *r, bool v)
{
    r->kind = WEFT_VALUE_BOOL;
    r->value.b = v;
}
static inline void weft_result_string(weft_result_t *r, const char *s, size_t len)
{
    r->kind = WEFT_VALUE_STRING;
    r->value.s.ptr = s;
    r->value.s.len = len;
}
static inline void weft_result_json(weft_result_t *r, const char *json, size_t len)
{
    r->kind = WEFT_VALUE_JSON;
    r->value.s.ptr = json;
    r->value.s.len = len;
}

/* ---- array output -------------------------------------------------------- */

/* Element types of array rows, as NumPy names them (little-endian). */
typedef enum weft_dtype {
    WEFT_DTYPE_F64 = 1, /* '<f8' */
    WEFT_DTYPE_F32,     /* '<f4' */
    WEFT_DTYPE_I64,     /* '<i8' */
    WEFT_DTYPE_I32,     /* '<i4' */
    WEFT_DTYPE_I16,     /* '<i2' */
    WEFT_DTYPE_I8,      /* '|i1' */
    WEFT_DTYPE_U64,     /* '<u8' */
    WEFT_DTYPE_U32,     /* '<u4' */
    WEFT_DTYPE_U16,     /* '<u2' */
    WEFT_DTYPE_U8,      /* '|u1' */
} weft_dtype_t;

/* One row of the output array per item. */
typedef struct weft_row_spec {
    weft_dtype_t dtype;
    uint64_t row_len; /* elements per row, >= 1; 1 gives a 1-D array     */
} weft_row_spec_t;

/* Counts handed to finish(). */
typedef struct weft_counts {
    uint64_t total;   /* items in the source                              */
    uint64_t ok;
    uint64_t failed;
    uint64_t not_run; /* never started (stopped run)                     */
} weft_counts_t;

/* ---- deterministic random numbers -------------------------------------- */

/*
 * A per-item random stream: Philox4x32-10 (Salmon et al., SC11), keyed by
 * the run seed and a plugin-chosen stream number, counted by the item index
 * and a block counter.  The numbers an item sees depend only on
 * (run seed, stream, item index): never on the thread that runs it, the
 * thread count, or the order items run in.  Opaque: use host->rng_*.
 */
typedef struct weft_rng {
    uint32_t key[2];
    uint64_t index;
    uint64_t block;
    uint32_t out[4];
    uint32_t avail; /* unread words left in out[]                        */
} weft_rng_t;

/* ---- output files and name templates ------------------------------------ */

/* A compiled file name template (host->tmpl_*): opaque. */
typedef struct weft_tmpl weft_tmpl_t;

#define WEFT_OUT_NAME_MAX 255   /* NAME_MAX on Linux                      */
#define WEFT_OUT_PATH_MAX 4096  /* PATH_MAX on Linux                      */

/*
 * An output file being written (host->out_open ... out_commit).  The plugin
 * owns the struct (a per-worker field is the natural place: it is ~4.6 KB);
 * only fd is the plugin's to use.  The rest is the host's: do not touch.
 */
typedef struct weft_outfile {
    int fd;                 /* open for writing after out_open; else -1   */
    /* Host-private. */
    int dirfd_;             /* the file's folder (owned while open)       */
    uint32_t flags_;
    char tmp_[WEFT_OUT_NAME_MAX + 1];  /* temporary name in dirfd_        */
    char name_[WEFT_OUT_NAME_MAX + 1]; /* final name in dirfd_            */
    char rel_[WEFT_OUT_PATH_MAX];      /* as given, for messages          */
    uint64_t reserved_[8];
} weft_outfile_t;

/* ---- the host table ---------------------------------------------------- */

typedef struct weft_host weft_host_t;

struct weft_host {
    uint32_t struct_size; /* sizeof(weft_host_t) of the runner            */
    uint32_t abi_version; /* WEFT_PLUGIN_ABI_VERSION of the runner        */

    /* ABI 1.  All entries are thread-safe. */

    uint64_t run_seed;       /* [run] seed                                */
    const char *config_dir;  /* folder of the config file, absolute       */

    /* Formats a failure message into r->msg; returns -1 so that
     * `return host->failf(r, "...", ...);` fails the item. */
    int (*failf)(weft_result_t *r, const char *fmt, ...) WEFT_PRINTF(2, 3);
    /* Logs a line to the runner's stderr, prefixed with the plugin name.
     * Takes a lock: not for the per-item hot path. */
    void (*logf)(const weft_host_t *host, const char *fmt, ...) WEFT_PRINTF(2, 3);

    /* Starts the random stream (run seed, stream) of this item. */
    void (*rng_init)(const weft_host_t *host, weft_rng_t *rng,
                     const weft_item_t *item, uint64_t stream);
    uint64_t (*rng_u64)(weft_rng_t *rng);
    double (*rng_double)(weft_rng_t *rng);            /* uniform in [0, 1) */
    /* n random bytes, the same on every host (little-endian words).  A
     * fill starts on a fresh 16-byte block and discards the rest of its
     * last block, so it uses exactly ceil(n / 16) blocks: a fill's bytes
     * depend only on how many blocks the stream used before it. */
    void (*rng_fill)(weft_rng_t *rng, void *buf, size_t n);

    /* False when the run writes no results (output = none): a plugin may
     * then skip building per-item values nobody reads.  Read it only when
     * WEFT_HOST_HAS(host, values_wanted). */
    bool values_wanted;

    /* ---- appended: read each only when WEFT_HOST_HAS(host, member) ---- */

    /* Cooperative stop: true when the run is stopping at once (halt = now,
     * a second signal) or the current item ran past [run] timeout (thread
     * mode).  Cheap (an atomic load and a clock read): long items should
     * poll it and return early (the item is recorded as not run / timed
     * out).  Call it from process_one, on the worker running the item. */
    bool (*should_stop)(const weft_host_t *host);

    /* Atomic output files inside the run's output folder (the plugin's
     * OUTDIR argument; the runner opened and locked it).
     *
     * out_open: rel is a relative path, checked with the confinement rules
     * (not empty, not absolute, no ".." component, components of at most
     * NAME_MAX bytes, at most PATH_MAX in all).  Missing parent folders are
     * created inside the output folder; no symlink is ever followed on the
     * way (a planted `sub -> /elsewhere` makes the call fail).  Opens a
     * hidden temporary file in the final folder; f->fd is then writable
     * (write(2) it, or out_write below).  0, or -1 with the reason in
     * r->msg ("DIR/sub/x.png: create: Permission denied"); nothing to
     * discard then.
     * out_commit: makes the file durable under its final name (replacing
     * what was there), as [run] sync says: `item` fsyncs it, renames it
     * and fsyncs the folder before returning; `batch` (the default, on a
     * worker thread) closes it and queues it with the worker's other
     * files, which reach their final names together within ~50 ms,
     * before the item is journaled: do not read or link the file by its
     * final name in the same item; `none` renames it unsynced.  An error
     * seen now (a folder in the way, a failed write or close) removes the
     * temporary and returns -1 with the reason in r->msg ("DIR/x.png:
     * fsync: No space left on device"); a batch's own failure later ends
     * the run (status 3) with its items unjournaled.  Either way f is
     * finished: do not commit or discard it again.
     * out_discard: removes the temporary; harmless on a finished or zeroed
     * (fd = -1 after out_open failed) f.
     *
     * All thread-safe.  The caller owns the weft_outfile_t (it holds the
     * names: nothing is allocated on this path beyond what the OS does); one
     * file at a time per weft_outfile_t.  Without an output folder (no
     * OUTDIR argument) out_open fails with a message saying so. */
    int (*out_open)(const weft_host_t *host, const char *rel, weft_outfile_t *f,
                    weft_result_t *r);
    int (*out_commit)(const weft_host_t *host, weft_outfile_t *f, weft_result_t *r);
    void (*out_discard)(const weft_host_t *host, weft_outfile_t *f);

    /* File name templates: compiled once (in init), expanded per item
     * (thread-safe, no allocation).  Placeholders: {} the item text (a range
     * item's number), {.} the text without its extension, {/} or {name} its
     * base name (basename(1)), {//} or {dir} its folder (dirname(1)), {/.}
     * or {stem} the base name without its last extension, {ext} that
     * extension with its dot, or empty ({stem}{ext} is {name}), {#} the
     * 1-based sequence number (index + 1), {index}, {number}, and
     * {index:0N} {number:0N} {#:0N} (zero padded to N <= 20 digits); {{ and
     * }} are literal braces.  {%} (the job slot) is refused here: see
     * tmpl_scan.
     * tmpl_compile: 0, or a negative errno with msg ("unknown placeholder
     * '{foo}' at position 7").  *t is the plugin's until tmpl_free.
     * tmpl_expand: writes the NUL-terminated name into out; returns its
     * length, or -ENAMETOOLONG (out_size too small) or -EINVAL (the item's
     * text holds a NUL byte).  The result is not checked: out_open does. */
    int (*tmpl_compile)(const weft_host_t *host, const char *text, weft_tmpl_t **t,
                        char *msg, size_t msg_size);
    int (*tmpl_expand)(const weft_tmpl_t *t, const weft_item_t *item, char *out,
                       size_t out_size);
    void (*tmpl_free)(weft_tmpl_t *t);

    /* Writes all n bytes to f->fd (EINTR and short writes retried).  0, or
     * -1 with r->msg ("DIR/x.png: write: No space left on device"); the
     * file stays open either way: commit or discard it. */
    int (*out_write)(const weft_host_t *host, weft_outfile_t *f, const void *buf, size_t n,
                     weft_result_t *r);

    /* Child processes a plugin starts: announce each with child_started
     * once it runs, and child_ended before reaping it (waitpid), while its
     * number cannot yet belong to another process; both from the thread
     * that runs the item.  Then:
     *   - the first SIGINT/SIGTERM/SIGHUP weft gets is sent on to the
     *     child's process group (or to the child alone if it leads none),
     *     once, as a terminal would deliver it to a foreground command; an
     *     item that fails after child_ended for such a child is recorded
     *     as not run (--resume runs it again), not as failed;
     *   - when weft must exit at once (a second signal, a crash in thread
     *     mode), or the worker process that announced it ends (isolate =
     *     process: a crash, timeout, halt = now), weft SIGKILLs it and the
     *     process group it leads, so that nothing outlives weft.
     * 0, or -1 when 4096 are tracked already (the child then runs
     * untracked).  Lock-free: cheap beside a fork. */
    int (*child_started)(const weft_host_t *host, long pid);
    void (*child_ended)(const weft_host_t *host, long pid);

    /* Placeholders inside a plugin's own syntax (exec's argv words and
     * shell scripts): the same grammar and meanings as tmpl_compile's, plus
     * GNU parallel's {%}, the job slot.  The plugin scans its text itself
     * (its quotes, its escapes) and hands each brace to tmpl_scan:
     *   tmpl_scan: text[pos] is '{' or '}'.  1: text[pos, pos + *len) is a
     *   placeholder, compiled into *t (the plugin's until tmpl_free).  0:
     *   the brace is literal text standing for one brace, *len bytes long
     *   ({{ and }} are 2; a '{' that does not open a placeholder-shaped
     *   group -- '{', bytes of [A-Za-z0-9_./#%:], '}' -- is 1, so awk's
     *   '{print $1}' stays text).  Negative errno: placeholder-shaped but
     *   unknown, or a bad width; msg says which, at position pos + 1, with a
     *   "did you mean".
     *   tmpl_expand_slot: as tmpl_expand, with `slot` for {%} (1..workers:
     *   the worker number + 1, from worker_init; 0: none, and a template
     *   using {%} gives -EINVAL), and snprintf's contract: returns the full
     *   length even when out_size is too small (out then holds "": grow and
     *   call again), -EINVAL (the item's text holds a NUL byte), or -E2BIG
     *   (over INT_MAX bytes).  tmpl_expand refuses a template with {%}, and
     *   tmpl_compile refuses {%}: a file name must not depend on which
     *   worker ran the item.  Thread-safe, no allocation. */
    int (*tmpl_scan)(const weft_host_t *host, const char *text, size_t pos, size_t *len,
                     weft_tmpl_t **t, char *msg, size_t msg_size);
    int (*tmpl_expand_slot)(const weft_tmpl_t *t, const weft_item_t *item, unsigned slot,
                            char *out, size_t out_size);

    /* True when values are written as they are (format = raw, GNU
     * parallel style: a string value's bytes, nothing added).  A plugin
     * that tidies a value for JSON (exec drops its output's last newline)
     * keeps it exact then.  Set before init; read it in init. */
    bool values_raw;

    /* The config's [task] section, for a plugin that hands arguments on to
     * a task of its own (WEFT_PLUGIN_TASK_ARGS: the worker plugin sends
     * them to its worker processes): n_task pairs task_keys[k] =
     * task_values[k], as written (text: the task converts them), in
     * config order, keys [A-Za-z_][A-Za-z0-9_]*.  Valid until destroy()
     * returns; 0 and NULL for any other plugin (the runner refuses a
     * [task] section for it). */
    size_t n_task;
    const char *const *task_keys;
    const char *const *task_values;

    /* How the run's workers will be made, known before init: `workers`
     * worker contexts ([run] threads, resolved), and whether they live in
     * forked worker processes (isolate = process: worker_init then runs in
     * each of them, never in the process init ran in).  A plugin that
     * starts something slow per worker (worker processes of its own) can
     * start them all at init, in parallel.  0 and false from weft check
     * --init, which makes no workers. */
    unsigned workers;
    bool worker_processes;
};

/* True when the host table has the member (the table only grows). */
#define WEFT_HOST_HAS(host, member)                                           \
    ((host)->struct_size >= offsetof(weft_host_t, member) + sizeof((host)->member))

/* ---- the plugin descriptor --------------------------------------------- */

enum weft_plugin_flags {
    /* Items mostly wait on I/O: the default thread count is raised. */
    WEFT_PLUGIN_IO_BOUND = 1u << 0,
    /* finish() reduces over every item, from what process_one left in the
     * state or the worker contexts (a sum, a histogram): every item must
     * run in this one process, in this one run.  weft then refuses
     * isolate = process (the worker processes' states never reach finish)
     * and --resume (finish would see only the items the resume ran). */
    WEFT_PLUGIN_REDUCES = 1u << 1,
    /* Items wait on something other than weft's CPUs (child processes, the
     * network, a device): more workers than CPUs is how such a plugin is
     * run, so weft does not warn about it.  The default thread count stays
     * one per CPU.  WEFT_PLUGIN_IO_BOUND implies it.  A plugin that says
     * neither is taken as CPU-bound: a run with more workers than CPUs
     * warns once.  (A bit of `flags`, ABI 1 since the start: an older
     * runner ignores it.) */
    WEFT_PLUGIN_WAITS = 1u << 2,
    /* The plugin takes a [task] section: free-form arguments it hands on
     * to a task of its own (host->task_keys).  Without this bit a config
     * with [task] is refused.  An older runner ignores the bit and has no
     * task_keys (check WEFT_HOST_HAS). */
    WEFT_PLUGIN_TASK_ARGS = 1u << 3,
};

typedef struct weft_plugin {
    uint32_t struct_size; /* sizeof(weft_plugin_t) as the plugin saw it    */
    uint32_t abi_version; /* WEFT_PLUGIN_ABI_VERSION                       */

    const char *name;        /* [a-z0-9_]+, matches the file name          */
    const char *version;     /* free text, e.g. "1.0.0"                    */
    const char *description; /* one line                                   */

    const weft_arg_spec_t *args; /* schema, n_args entries (may be NULL)   */
    size_t n_args;
    uint64_t flags; /* weft_plugin_flags                                   */

    /* Required.  args[k] is bound to schema args[k].  On success store the
     * plugin's state in *state (may stay NULL) and return 0; on failure
     * write a message into msg (msg_size bytes) and return nonzero.
     * `host` stays valid until destroy() returns. */
    int (*init)(const weft_host_t *host, const weft_arg_value_t *args,
                void **state, char *msg, size_t msg_size);

    /* Optional.  Per-worker context for worker `worker` in [0, workers);
     * it reaches every process_one that worker runs, and only those.  A
     * worker (a thread, or a worker process with isolate = process) runs
     * one item at a time, so worker + 1 is GNU parallel's job slot: the
     * {%} of host->tmpl_expand_slot. */
    int (*worker_init)(void *state, unsigned worker, unsigned workers,
                       void **worker_ctx, char *msg, size_t msg_size);
    void (*worker_fini)(void *state, unsigned worker, void *worker_ctx);

    /* Required.  Called concurrently; must not touch another worker's
     * context.  Returns 0 (ok, value in *result) or nonzero (failed; the
     * message is whatever result->msg holds).  A failed item never stops
     * the run: the others' results are all kept. */
    int (*process_one)(void *state, void *worker_ctx, const weft_item_t *item,
                       weft_result_t *result);

    /* Optional.  May reduce: a value put in *result is the run's result
     * (printed to stdout as JSON).  Nonzero: the run failed (message in
     * result->msg). */
    int (*finish)(void *state, const weft_counts_t *counts, weft_result_t *result);

    /* Optional.  Frees the state. */
    void (*destroy)(void *state);

    /* Optional: the plugin fills rows of an array.  Called on main after
     * init, with the bound arguments known.  When the run's output is a
     * .npy file, the runner creates it as an (items, row_len) array of
     * `dtype`, maps it, and hands each process_one its row in
     * result->row.  Nonzero: the run stops (message in msg). */
    int (*row_spec)(void *state, weft_row_spec_t *spec, char *msg, size_t msg_size);

    /* ---- appended: the runner reads each only when the plugin's struct
     * has it (WEFT_PLUGIN_HAS); an older plugin's read as NULL ---- */

    /* Optional (may be NULL).  Thread: any worker, like process_one, with
     * that worker's context; concurrently on every worker.  Runs the items
     * [first_index, first_index + count) of a RANGE source in one call:
     * item first_index + k has number first_number + k and no text.  The
     * runner calls it instead of process_one only when nothing is kept per
     * item (output = none, no journal, no per-item timeout, no retries);
     * otherwise, and for any other source, it calls process_one.  There
     * are no per-item results: msg (msg_size bytes, the runner's, valid
     * during the call) is the only output.  Returns 0 when every item
     * succeeded.  Nonzero (message in msg) when any failed -- then the
     * batch must have left NO trace in the plugin's state or the worker
     * context (accumulate into locals, commit on success), because the
     * runner runs the same items again one by one with process_one to find
     * which failed, and counts and reports them as process_one says. */
    int (*process_range)(void *state, void *worker_ctx, uint64_t first_index,
                         int64_t first_number, size_t count, char *msg, size_t msg_size);

    /* Optional (may be NULL): arg_choices[k], for argument args[k], is the
     * values a STRING argument may take, '|'-separated ("none|text|auto"),
     * or NULL for any text.  The runner refuses any other value where the
     * config sets it (`weft check` says so with the line), and a default
     * outside them; `weft describe` lists them. */
    const char *const *arg_choices;
} weft_plugin_t;

/* True when the descriptor has the member whole (the struct only grows; a
 * plugin built against an older header has a smaller struct_size).  The
 * runner's copy of an older descriptor reads missing members as NULL/0
 * anyway; this says whether the plugin knew of them. */
#define WEFT_PLUGIN_HAS(desc, member)                                         \
    ((desc)->struct_size >= offsetof(weft_plugin_t, member) + sizeof((desc)->member))

/* The entry symbol, declared here so a definition has a prior declaration. */
WEFT_PLUGIN_EXPORT extern const weft_plugin_t WEFT_PLUGIN_ENTRY;

/* Defines the entry symbol: `WEFT_PLUGIN_DEFINE = { ... };` */
#define WEFT_PLUGIN_DEFINE WEFT_PLUGIN_EXPORT const weft_plugin_t WEFT_PLUGIN_ENTRY

/* Fills the two header fields. */
#define WEFT_PLUGIN_HEADER                                                    \
    .struct_size = sizeof(weft_plugin_t), .abi_version = WEFT_PLUGIN_ABI_VERSION

#ifdef __cplusplus
}
#endif
#endif /* WEFT_PLUGIN_H */
