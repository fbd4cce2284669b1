/* SPDX-License-Identifier: MIT */
/*
 * core/host/children.c: the table of plugin-started processes that weft kills
 * when it must exit at once.  Real processes: kill_all must end a tracked
 * child and the process group it leads, and leave untracked ones alone;
 * forward sends the first signal to each group once and marks the entry;
 * kill_owned, on a table shared with a forked process, ends what that
 * process announced and nothing else.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "children.h"

/* A child that sleeps until killed; with `lead`, in its own group, with a
 * grandchild in that group (its pid through *grandchild). */
static pid_t start_sleeper(bool lead, pid_t *grandchild)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (lead)
            setpgid(0, 0);
        pid_t g = 0;
        if (grandchild && (g = fork()) == 0) {
            for (;;)
                pause();
        }
        ssize_t unused = write(fds[1], &g, sizeof g);
        (void)unused;
        for (;;)
            pause();
    }
    close(fds[1]);
    pid_t g = 0;
    assert_int_equal(read(fds[0], &g, sizeof g), (ssize_t)sizeof g);
    close(fds[0]);
    if (grandchild)
        *grandchild = g;
    return pid;
}

/* The signal that ended pid (reaped), or 0 if it still runs. */
static int ended_by(pid_t pid, bool wait)
{
    int st;
    pid_t got;
    while ((got = waitpid(pid, &st, wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
        ;
    if (got == 0)
        return 0;
    assert_int_equal(got, pid);
    return WIFSIGNALED(st) ? WTERMSIG(st) : -1;
}

/* Whether pid (not our child) still exists and is not a zombie. */
static bool alive(pid_t pid)
{
    char path[64], state = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    int n = fscanf(f, "%*d %*s %c", &state);
    fclose(f);
    return n == 1 && state != 'Z' && state != 'X';
}

static void kills_tracked_and_their_groups(void **state)
{
    (void)state;
    pid_t grand;
    pid_t leader = start_sleeper(true, &grand);
    pid_t plain = start_sleeper(false, NULL);
    pid_t untracked = start_sleeper(false, NULL);
    assert_int_equal(weft__children_add(leader), 0);
    assert_int_equal(weft__children_add(plain), 0);

    assert_int_equal(weft__children_kill_all(), 2);
    assert_int_equal(ended_by(leader, true), SIGKILL);
    assert_int_equal(ended_by(plain, true), SIGKILL);
    /* The grandchild was in the leader's group (reparented, not ours to
     * reap): wait for it to go. */
    for (int k = 0; k < 300 && alive(grand); k++)
        usleep(10000);
    assert_false(alive(grand));
    assert_int_equal(ended_by(untracked, false), 0); /* left alone */
    kill(untracked, SIGKILL);
    assert_int_equal(ended_by(untracked, true), SIGKILL);

    weft__children_remove(leader);
    weft__children_remove(plain);
    assert_int_equal(weft__children_kill_all(), 0);
}

static void add_remove_and_full(void **state)
{
    (void)state;
    assert_int_equal(weft__children_add(0), -EINVAL);
    assert_int_equal(weft__children_add(-5), -EINVAL);
    /* Numbers that are no process: kill_all must not be reached here. */
    pid_t base = 1 << 30;
    for (pid_t k = 0; k < WEFT__CHILDREN_MAX; k++)
        assert_int_equal(weft__children_add(base + k * 7), 0);
    assert_int_equal(weft__children_add(base - 1), -ENOSPC);
    weft__children_remove(base + 7 * 100);
    weft__children_remove(base - 1); /* not tracked: no-op */
    assert_int_equal(weft__children_add(base - 1), 0);
    assert_int_equal(weft__children_add(base - 2), -ENOSPC);
    for (pid_t k = 0; k < WEFT__CHILDREN_MAX; k++)
        weft__children_remove(base + k * 7);
    weft__children_remove(base - 1);
    for (pid_t k = 0; k < WEFT__CHILDREN_MAX; k++) /* all free again */
        assert_int_equal(weft__children_add(base + k), 0);
    for (pid_t k = 0; k < WEFT__CHILDREN_MAX; k++)
        weft__children_remove(base + k);
}

/* Threads add and remove their own numbers at once; every number added is
 * removed exactly once, and the table ends empty. */
enum { THREADS = 8, ROUNDS = 20000, PER = 64 };

static void *churn(void *arg)
{
    pid_t base = (pid_t)(1 << 29) + (pid_t)(intptr_t)arg * PER;
    for (int r = 0; r < ROUNDS / PER; r++) {
        for (pid_t k = 0; k < PER; k++)
            if (weft__children_add(base + k) != 0)
                return (void *)1;
        for (pid_t k = 0; k < PER; k++)
            weft__children_remove(base + k);
    }
    return NULL;
}

static void concurrent_churn(void **state)
{
    (void)state;
    for (int loop = 0; loop < 5; loop++) {
        pthread_t t[THREADS];
        for (intptr_t k = 0; k < THREADS; k++)
            assert_int_equal(pthread_create(&t[k], NULL, churn, (void *)k), 0);
        for (int k = 0; k < THREADS; k++) {
            void *rc;
            pthread_join(t[k], &rc);
            assert_null(rc);
        }
        /* Empty: WEFT__CHILDREN_MAX fresh numbers fit. */
        for (pid_t k = 0; k < WEFT__CHILDREN_MAX; k++)
            assert_int_equal(weft__children_add((1 << 28) + k), 0);
        for (pid_t k = 0; k < WEFT__CHILDREN_MAX; k++)
            weft__children_remove((1 << 28) + k);
    }
}

/* The first signal goes to each tracked group (a grandchild in the
 * leader's group included), once; the entries are marked, which remove
 * reports; the signal is recorded until a reset. */
static void forward_signals_and_marks(void **state)
{
    (void)state;
    weft__children_forward_reset();
    pid_t grand;
    pid_t leader = start_sleeper(true, &grand);
    pid_t plain = start_sleeper(false, NULL);
    assert_int_equal(weft__children_add(leader), 0);
    assert_int_equal(weft__children_add(plain), 0);
    assert_int_equal(weft__children_forwarded(), 0);

    assert_int_equal(weft__children_forward(SIGINT), 2);
    assert_int_equal(weft__children_forwarded(), SIGINT);
    assert_int_equal(ended_by(leader, true), SIGINT);
    assert_int_equal(ended_by(plain, true), SIGINT);
    for (int k = 0; k < 300 && alive(grand); k++)
        usleep(10000);
    assert_false(alive(grand));
    /* Marked: not signalled again; the first signal stays the one. */
    assert_int_equal(weft__children_forward(SIGTERM), 0);
    assert_int_equal(weft__children_forwarded(), SIGINT);
    assert_true(weft__children_remove(leader));
    assert_true(weft__children_remove(plain));
    assert_false(weft__children_remove(plain)); /* gone */

    /* Announced after the forward: not marked. */
    assert_int_equal(weft__children_add(1 << 30), 0);
    assert_false(weft__children_remove(1 << 30));
    weft__children_forward_reset();
    assert_int_equal(weft__children_forwarded(), 0);
}

/* A shared table: a forked process (a worker) announces its child; the
 * parent (the supervisor) sees it, kills it by owner once the worker is
 * dead, and forgets it; its own entries stay. */
static void kill_owned_across_processes(void **state)
{
    (void)state;
    assert_int_equal(weft__children_share(), 0);
    assert_int_equal(weft__children_share(), 0);      /* once */
    assert_int_equal(weft__children_add(1 << 30), 0); /* ours: no such process */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t worker = fork();
    assert_true(worker >= 0);
    if (worker == 0) {
        close(fds[0]);
        pid_t g;
        pid_t s = start_sleeper(true, &g);
        pid_t both[2] = {s, g};
        if (weft__children_add(s) != 0 ||
            write(fds[1], both, sizeof both) != (ssize_t)sizeof both)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    pid_t both[2];
    assert_int_equal(read(fds[0], both, sizeof both), (ssize_t)sizeof both);
    close(fds[0]);
    /* Ours only: the fake number (no such process), not the worker's. */
    assert_int_equal(weft__children_kill_owned(getpid()), 1);
    assert_true(alive(both[0]));
    kill(worker, SIGKILL);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)worker, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(weft__children_kill_owned(worker), 1);
    assert_int_equal(ended_by(worker, true), SIGKILL);
    for (int k = 0; k < 300 && (alive(both[0]) || alive(both[1])); k++)
        usleep(10000);
    assert_false(alive(both[0]));
    assert_false(alive(both[1]));
    assert_int_equal(weft__children_kill_owned(worker), 0); /* forgotten */
    assert_int_equal(weft__children_kill_all(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kills_tracked_and_their_groups),
        cmocka_unit_test(add_remove_and_full),
        cmocka_unit_test(concurrent_churn),
        cmocka_unit_test(forward_signals_and_marks),
        cmocka_unit_test(kill_owned_across_processes), /* last: shares the table */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
