/* SPDX-License-Identifier: MIT */
/*
 * Test plugin `fault`: misbehaves on chosen items, so the tests of process
 * isolation, stopping, retries and resume have something real to survive.
 *
 * Each list argument is a comma-separated list of item indices ("13,42",
 * spaces allowed, "" for none).  On an item, in this order:
 *   sleep_ms      every item sleeps this long first (0: no sleep)
 *   crash_after   N >= 0: once this process has started N items, any item
 *                 whose index is >= N segfaults (a rerun that skips done
 *                 items crashes again after N more); -1: off
 *   segv          a real invalid write (to a PROT_NONE page: no undefined
 *                 behaviour for UBSan to report first).  Under ASan its
 *                 SEGV handler reports and, with abort_on_error=1, the
 *                 process dies of SIGABRT; ASAN_OPTIONS=handle_segv=0
 *                 keeps SIGSEGV
 *   overflow      recursion without end until the thread's stack overflows
 *                 (SIGSEGV on the guard page; the handler needs an
 *                 alternate stack to run at all)
 *   abort         abort()
 *   exit          _exit(7), no atexit handlers, no flushing
 *   hang          sleeps until the host says stop (host->should_stop,
 *                 polled every 10 ms, when the host table has it), then
 *                 fails with "fault: item N hung and was stopped"; forever
 *                 on a host without should_stop
 *   fail          fails: "fault: item N fails on purpose"
 *   fail_once     fails the first attempt of the item in this process, and
 *                 succeeds on a retry in the same process
 * Any other item's value is index * 3 + 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <weft/plugin.h>

enum {
    ARG_SEGV,
    ARG_OVERFLOW,
    ARG_ABORT,
    ARG_EXIT,
    ARG_HANG,
    ARG_FAIL,
    ARG_FAIL_ONCE,
    ARG_SLEEP_MS,
    ARG_CRASH_AFTER,
    N_ARGS
};
#define N_LISTS (ARG_FAIL_ONCE + 1)

static const weft_arg_spec_t fault_args[] = {
    [ARG_SEGV] = {.name = "segv",
                  .type = WEFT_ARG_STRING,
                  .default_value = "",
                  .help = "item indices that segfault, e.g. \"13,42\""},
    [ARG_OVERFLOW] = {.name = "overflow",
                      .type = WEFT_ARG_STRING,
                      .default_value = "",
                      .help = "item indices that overflow their stack (unbounded recursion)"},
    [ARG_ABORT] = {.name = "abort",
                   .type = WEFT_ARG_STRING,
                   .default_value = "",
                   .help = "item indices that call abort()"},
    [ARG_EXIT] = {.name = "exit",
                  .type = WEFT_ARG_STRING,
                  .default_value = "",
                  .help = "item indices that call _exit(7)"},
    [ARG_HANG] = {.name = "hang",
                  .type = WEFT_ARG_STRING,
                  .default_value = "",
                  .help = "item indices that sleep until the host says stop"},
    [ARG_FAIL] = {.name = "fail",
                  .type = WEFT_ARG_STRING,
                  .default_value = "",
                  .help = "item indices that fail"},
    [ARG_FAIL_ONCE] = {.name = "fail_once",
                       .type = WEFT_ARG_STRING,
                       .default_value = "",
                       .help = "item indices whose first attempt fails"},
    [ARG_SLEEP_MS] = {.name = "sleep_ms",
                      .type = WEFT_ARG_INT,
                      .default_value = "0",
                      .help = "every item sleeps this many milliseconds",
                      .min = 0,
                      .max = 86400000},
    [ARG_CRASH_AFTER] = {.name = "crash_after",
                         .type = WEFT_ARG_INT,
                         .default_value = "-1",
                         .help =
                             "segfault on items >= N once N items started here; -1 off",
                         .min = -1,
                         .max = 9e18},
};

typedef struct index_list {
    uint64_t *v; /* sorted, unique */
    size_t n;
} index_list_t;

typedef struct fault_state {
    const weft_host_t *host;
    index_list_t lists[N_LISTS];
    /* fail_once: one flag per entry of lists[ARG_FAIL_ONCE]; set by the
     * first attempt.  Retries run in the same process, so memory is
     * enough. */
    atomic_bool *failed_once;
    int64_t sleep_ms;
    int64_t crash_after;
    atomic_uint_fast64_t started; /* items started by this process */
    void *noaccess;               /* a PROT_NONE page for segv     */
} fault_state_t;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int parse_list(const char *name, const char *s, index_list_t *out, char *msg,
                      size_t msg_size)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    out->v = malloc(cap * sizeof *out->v);
    out->n = 0;
    if (!out->v) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (*p < '0' || *p > '9') {
            snprintf(msg, msg_size, "%s: \"%s\": want item indices like \"13,42\"", name,
                     s);
            return -1;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno) {
            snprintf(msg, msg_size, "%s: \"%s\": index out of range", name, s);
            return -1;
        }
        out->v[out->n++] = v;
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ',')
            p++;
        else if (*p) {
            snprintf(msg, msg_size, "%s: \"%s\": unexpected '%c'", name, s, *p);
            return -1;
        }
    }
    qsort(out->v, out->n, sizeof *out->v, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++)
        if (w == 0 || out->v[w - 1] != out->v[i])
            out->v[w++] = out->v[i];
    out->n = w;
    return 0;
}

/* Position of index in l, or -1. */
static ptrdiff_t list_find(const index_list_t *l, uint64_t index)
{
    const uint64_t *hit =
        l->n ? bsearch(&index, l->v, l->n, sizeof *l->v, cmp_u64) : NULL;
    return hit ? hit - l->v : -1;
}

static void fault_destroy(void *state)
{
    fault_state_t *s = state;
    if (!s)
        return;
    for (int k = 0; k < N_LISTS; k++)
        free(s->lists[k].v);
    free(s->failed_once);
    if (s->noaccess)
        munmap(s->noaccess, (size_t)sysconf(_SC_PAGESIZE));
    free(s);
}

static int fault_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                      char *msg, size_t msg_size)
{
    fault_state_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    s->host = host;
    for (int k = 0; k < N_LISTS; k++) {
        if (parse_list(fault_args[k].name, args[k].u.s, &s->lists[k], msg, msg_size) < 0)
            goto fail;
    }
    size_t n_once = s->lists[ARG_FAIL_ONCE].n;
    s->failed_once = calloc(n_once ? n_once : 1, sizeof *s->failed_once);
    if (!s->failed_once) {
        snprintf(msg, msg_size, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_once; i++)
        atomic_init(&s->failed_once[i], false);
    s->sleep_ms = args[ARG_SLEEP_MS].u.i;
    s->crash_after = args[ARG_CRASH_AFTER].u.i;
    atomic_init(&s->started, 0);
    void *page = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        snprintf(msg, msg_size, "mmap: %s", strerror(errno));
        goto fail;
    }
    s->noaccess = page;
    *state = s;
    return 0;

fail:
    fault_destroy(s);
    return -1;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool host_says_stop(const weft_host_t *host)
{
    return WEFT_HOST_HAS(host, should_stop) && host->should_stop &&
           host->should_stop(host);
}

static void segfault(fault_state_t *s)
{
    *(volatile char *)s->noaccess = 1;
    /* Not reached unless a SIGSEGV handler returned. */
    abort();
}

/* Each frame keeps a live 1 KiB array, and the call is not a tail call, so
 * no optimizer turns this into a loop.  `depth` comes from a volatile so
 * the compiler cannot prove the recursion endless. */
static volatile int64_t overflow_limit = -1;

static __attribute__((noinline)) int64_t dive(volatile char *above, int64_t depth)
{
    volatile char frame[1024];
    frame[0] = above ? (char)(above[0] + 1) : 0;
    if (depth == overflow_limit)
        return frame[0];
    return dive(frame, depth + 1) + frame[0];
}

static int fault_process(void *state, void *ctx, const weft_item_t *item,
                         weft_result_t *r)
{
    (void)ctx;
    fault_state_t *s = state;
    uint64_t i = item->index;
    uint64_t started = atomic_fetch_add_explicit(&s->started, 1, memory_order_relaxed);

    if (s->sleep_ms > 0)
        sleep_ms(s->sleep_ms);
    if (s->crash_after >= 0 && started >= (uint64_t)s->crash_after &&
        i >= (uint64_t)s->crash_after)
        segfault(s);
    if (list_find(&s->lists[ARG_SEGV], i) >= 0)
        segfault(s);
    if (list_find(&s->lists[ARG_OVERFLOW], i) >= 0)
        dive(NULL, 0);
    if (list_find(&s->lists[ARG_ABORT], i) >= 0)
        abort();
    if (list_find(&s->lists[ARG_EXIT], i) >= 0)
        _exit(7);
    if (list_find(&s->lists[ARG_HANG], i) >= 0) {
        while (!host_says_stop(s->host))
            sleep_ms(10);
        return s->host->failf(r, "fault: item %" PRIu64 " hung and was stopped", i);
    }
    if (list_find(&s->lists[ARG_FAIL], i) >= 0)
        return s->host->failf(r, "fault: item %" PRIu64 " fails on purpose", i);
    ptrdiff_t once = list_find(&s->lists[ARG_FAIL_ONCE], i);
    if (once >= 0 && !atomic_exchange(&s->failed_once[once], true))
        return s->host->failf(
            r, "fault: item %" PRIu64 " fails on purpose (first attempt)", i);
    weft_result_int(r, (int64_t)(i * 3 + 1));
    return 0;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "fault",
    .version = "0.1.0",
    .description = "Test plugin: crashes, aborts, exits, hangs or fails on chosen items",
    .args = fault_args,
    .n_args = N_ARGS,
    .init = fault_init,
    .process_one = fault_process,
    .destroy = fault_destroy,
};
