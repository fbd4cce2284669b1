/* SPDX-License-Identifier: MIT */
/* A job's signal handlers (see signals.h). */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "altstack.h"
#include "children.h"

static atomic_int stop_signal;           /* the first SIGINT/SIGTERM/SIGHUP, or 0 */
static weft__iso_t *volatile signal_iso; /* process mode: killed on a 2nd signal */

static void put_str(const char *s)
{
    ssize_t unused = write(STDERR_FILENO, s, strlen(s));
    (void)unused;
}

/* First SIGINT/SIGTERM/SIGHUP: stop soon, and the signal goes on to the
 * process groups of the children plugins announced (exec's commands lead
 * their own, so a terminal's Ctrl-C would not reach them): a command sees
 * it as if run at the terminal, and the item it ends is not run.  Second:
 * exit at once, killing the worker processes and every announced child
 * (only write, kill and _exit here: async-signal-safe).  The journal's
 * records are each one write(2), so whatever it holds stays readable. */
static void on_signal(int sig)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&stop_signal, &expected, sig)) {
        put_str(
            "\nweft: second signal: exiting at once; the journal keeps what was done\n");
        if (signal_iso)
            weft__iso_kill_all(signal_iso);
        weft__children_kill_all(); /* what the plugin started dies with us */
        _exit(128 + sig);
    }
    int saved_errno = errno; /* kill and write may set it; the thread we
                                interrupted may be about to read its own */
    int soon = 0;
    atomic_compare_exchange_strong(&weft__run_stop, &soon, 1);
    weft__children_forward(sig); /* after the stop: no item starts unsignalled */
    put_str(sig == SIGINT    ? "\nweft: SIGINT: finishing the items in flight (again to "
                               "quit at once)\n"
            : sig == SIGTERM ? "\nweft: SIGTERM: finishing the items in flight (again to "
                               "quit at once)\n"
                             : "\nweft: SIGHUP: finishing the items in flight (again to "
                               "quit at once)\n");
    errno = saved_errno;
}

void weft__signals_install(weft__signals_t *saved)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    atomic_store(&stop_signal, 0);
    weft__children_forward_reset();
    sigaction(SIGINT, &sa, &saved->old_int);
    sigaction(SIGTERM, &sa, &saved->old_term);
    /* An ignored SIGHUP stays ignored: `nohup weft run ...` must survive
     * the terminal's hangup. */
    sigaction(SIGHUP, NULL, &saved->old_hup);
    if (saved->old_hup.sa_handler != SIG_IGN || (saved->old_hup.sa_flags & SA_SIGINFO))
        sigaction(SIGHUP, &sa, NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &saved->old_pipe);
    sigaction(SIGXFSZ, &ign, &saved->old_xfsz);
}

void weft__signals_restore(const weft__signals_t *saved)
{
    sigaction(SIGINT, &saved->old_int, NULL);
    sigaction(SIGTERM, &saved->old_term, NULL);
    sigaction(SIGHUP, &saved->old_hup, NULL);
    sigaction(SIGPIPE, &saved->old_pipe, NULL);
    sigaction(SIGXFSZ, &saved->old_xfsz, NULL);
}

/* Thread mode: a plugin that crashes takes weft down.  Before it goes, the
 * journal learns which items were running (one CRASH record, one write):
 * an item named by two crashes in a row is quarantined on resume, while a
 * kill -9, which names nothing, quarantines nothing.  The processes the
 * plugin started are killed too. */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define N_CRASH_SIGNALS (sizeof crash_signals / sizeof *crash_signals)
static struct sigaction crash_old[N_CRASH_SIGNALS];
static weft__engine_t *volatile crash_run;

/* One CRASH record naming the items running in r (sig 0: exit()).
 * Async-signal-safe: atomics, pure computation, one write(2). */
static void journal_running(weft__engine_t *r, int sig)
{
    uint64_t items[64];
    size_t n = 0;
    for (unsigned t = 0; t < r->threads && n < 64; t++) {
        uint64_t v = __atomic_load_n(&r->workers[t].current, __ATOMIC_RELAXED);
        if (v != UINT64_MAX)
            items[n++] = v;
    }
    unsigned char rec[24 + 8 * 64];
    size_t len = weft__journal_crash_record(rec, sizeof rec, sig, items, n);
    ssize_t unused = write(weft__journal_fd(r->journal), rec, len);
    (void)unused;
}

static void on_crash(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    weft__engine_t *r = crash_run;
    crash_run = NULL; /* once */
    if (r && r->journal) {
        journal_running(r, sig);
        put_str("weft: crashed in the plugin; the journal names the items that were "
                "running\n");
    }
    if (r)
        weft__children_kill_all();
    /* The handler before ours (default, or a sanitizer's) takes over: a
     * fault happens again on return; a sent signal is raised again. */
    for (size_t k = 0; k < N_CRASH_SIGNALS; k++)
        if (crash_signals[k] == sig)
            sigaction(sig, &crash_old[k], NULL);
    if (info->si_code <= 0)
        raise(sig);
}

/* Thread mode: a plugin that calls exit() ends weft from inside an item,
 * with nothing written.  It is a crash like the others: the journal names
 * the items running, the message says what happened, the exit status is
 * not 0 (3: the results could not be written). */
static _Atomic(weft__engine_t *) exit_run;

static void on_exit_call(int status, void *arg)
{
    (void)arg;
    weft__engine_t *r = atomic_exchange(&exit_run, NULL);
    if (!r)
        return; /* weft's own exit */
    if (r->journal)
        journal_running(r, 0);
    char msg[256];
    snprintf(msg, sizeof msg,
             "weft: the plugin called exit(%d) in an item: the run cannot finish and its "
             "results are not written%s\n",
             status, r->journal ? "; the journal keeps what was done (--resume goes on)" : "");
    put_str(msg);
    weft__children_kill_all();
    _exit(WEFT_EXIT_OUTPUT);
}

void weft__crash_handlers(weft__engine_t *r, bool on)
{
    static bool exit_hooked;
    if (on && !exit_hooked)
        exit_hooked = on_exit(on_exit_call, NULL) == 0;
    atomic_store(&exit_run, on ? r : NULL);
    if (on) {
        /* SA_ONSTACK: a stack overflow is handled on the alternate stack
         * (each worker sets one up in run_chunk, the caller here). */
        struct sigaction sa = {.sa_sigaction = on_crash,
                               .sa_flags = SA_SIGINFO | SA_ONSTACK};
        sigemptyset(&sa.sa_mask);
        weft__altstack_ensure();
        crash_run = r;
        for (size_t k = 0; k < N_CRASH_SIGNALS; k++)
            sigaction(crash_signals[k], &sa, &crash_old[k]);
    } else {
        crash_run = NULL;
        for (size_t k = 0; k < N_CRASH_SIGNALS; k++)
            sigaction(crash_signals[k], &crash_old[k], NULL);
    }
}

void weft__signals_set_iso(weft__iso_t *iso)
{
    signal_iso = iso;
}

int weft__signals_first(void)
{
    return atomic_load(&stop_signal);
}
