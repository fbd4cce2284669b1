/* SPDX-License-Identifier: MIT */
/*
 * worker: runs a task written in any language in long-lived worker
 * processes, one per weft worker, speaking the line protocol of
 * docs/worker-protocol.md (version 1): `hello {...}` once, then `item {...}`
 * per item; the worker answers `ready`, then `ok JSON` or `fail MESSAGE`.
 * The config's [task] section (host->task_keys) is the task's fixed
 * arguments, sent as text in hello's "args".  plugins/python/weft_worker.py
 * is the Python side; it is found in python/ beside this file and put first
 * on the workers' PYTHONPATH.
 *
 * A worker is `/bin/sh -c COMMAND` started with posix_spawn (safe from many
 * threads: glibc's clone(CLONE_VFORK) runs only async-signal-safe code),
 * leading its own process group, with three O_CLOEXEC pipes made
 * non-blocking on our side, every other descriptor closed, an empty signal
 * mask and the default actions of SIGPIPE, SIGINT, SIGTERM and SIGHUP
 * (weft's workers block or ignore them, and that is inherited).  It is
 * announced to the host (child_started/child_ended): the first signal weft
 * gets reaches its group as a terminal's would, a second SIGKILLs it.
 *
 * Life of a worker: init starts every worker at once and waits for each
 * `ready` (so the command and the [task] arguments are checked before
 * anything runs, also by `weft check --init`); worker_init adopts them.
 * With worker processes (isolate = process) init starts one, as a check,
 * and each worker process starts its own at worker_init; its first item
 * waits for `ready`.  A worker that breaks the protocol, exits,
 * times out or is stopped is killed with its group and reaped; the next
 * item starts a new one.  One that died between two items costs nothing:
 * the item goes to a new worker.  At the end every worker's input is
 * closed at once (a worker exits on end of input); each gets FINI_WAIT_S,
 * then its group is SIGKILLed.  A simple command is exec'ed by the shell
 * (exec_prefixed), so the worker is the command itself.
 *
 * The per-item path: one write of the item frame, then poll on the reply,
 * the worker's stderr and its pidfd, and reads; the reply is sliced in
 * place (the value is handed to the runner as JSON text, which validates
 * it), nothing is allocated once the buffers have grown.  stderr is passed
 * through host->logf a line at a time, prefixed with the item's index.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, dladdr, sigabbrev_np, addfchdir_np, closefrom */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft/plugin.h>

#include "waiting.h" /* now, poll_ms, host_stopping, track, untrack */

extern char **environ;

enum { ARG_COMMAND, ARG_CWD, ARG_TIMEOUT, ARG_START_TIMEOUT, ARG_MAX_RESULT };

/* clang-format off */
static const weft_arg_spec_t worker_args[] = {
    [ARG_COMMAND] = {.name = "command", .type = WEFT_ARG_STRING,
                     .help = "the worker's command line, run by /bin/sh -c "
                             "(e.g. python3 -u tasks.py)"},
    [ARG_CWD] = {.name = "cwd", .type = WEFT_ARG_PATH, .default_value = ".",
                 .help = "the workers' working folder (default: the config's folder)"},
    [ARG_TIMEOUT] = {.name = "timeout", .type = WEFT_ARG_FLOAT, .default_value = "0",
                     .help = "seconds an item may run before its worker is killed; "
                             "0: no limit", .min = 0, .max = 1e6},
    [ARG_START_TIMEOUT] = {.name = "start_timeout", .type = WEFT_ARG_FLOAT,
                           .default_value = "60",
                           .help = "seconds a worker may take to answer hello",
                           .min = 0.001, .max = 1e6},
    [ARG_MAX_RESULT] = {.name = "max_result", .type = WEFT_ARG_INT,
                        .default_value = "67108864",
                        .help = "bytes a reply line may hold; a longer one fails its item",
                        .min = 16, .max = 1 << 30},
};
/* clang-format on */

#define PROTOCOL 1
#define FINI_WAIT_S 5.0  /* how long a worker may take to exit at the end */
enum { LAST_LINE_MAX = 200, ERR_LINE_MAX = 4096, QUOTE_MAX = 60 };

/* A running worker process: pid 0 when there is none. */
typedef struct proc {
    pid_t pid;
    int in;    /* its stdin: frames to it (ours, non-blocking)         */
    int out;   /* its stdout: frames from it                           */
    int err;   /* its stderr: passed through                           */
    int pidfd; /* readable once it exited; -1 without pidfd            */
    bool ready;
} proc_t;

typedef struct worker_state {
    const weft_host_t *host;
    const char *command; /* as configured, for messages                  */
    char *script;        /* what /bin/sh -c runs (exec_prefixed)          */
    int cwd_fd;
    double timeout, start_timeout;
    size_t max_result;
    char *task_json; /* the [task] arguments as a JSON object */
    char *pydir;     /* the folder holding weft_worker.py, or NULL */
    proc_t *pre;     /* started and ready at init, for worker k < n_pre */
    unsigned n_pre;
    pid_t pre_pid;   /* the process init ran in: only its worker_init adopts */
    struct wk **live; /* the workers of this process (main thread only) */
    unsigned n_live;
    bool ending;     /* every live worker's input closed: the run is over */
} worker_state_t;

/* Bytes, growable. */
typedef struct bytes {
    char *p;
    size_t len, cap;
} bytes_t;

typedef struct wk {
    const worker_state_t *s;
    unsigned id;
    proc_t p;
    bool guard_pipe;    /* SIGPIPE is not ignored here: block it around writes */
    bool in_item;       /* stderr lines belong to item `index`                 */
    uint64_t index;
    bytes_t frame;      /* the frame being sent                                */
    bytes_t reply;      /* what came from stdout; a reply is [0, reply_end)    */
    size_t scanned;     /* bytes of reply searched for '\n' already            */
    size_t taken;       /* bytes of reply up to the end of the last line read  */
    bytes_t errline;    /* an unfinished stderr line                           */
    char last[LAST_LINE_MAX + 1]; /* the last non-blank stderr line            */
    bytes_t raw;        /* a JSON string's text, for format = raw              */
    struct env *env;    /* its environment (env_make)                          */
} wk_t;

/* ---- small helpers ----------------------------------------------------- */

static int nomem(char *msg, size_t size)
{
    snprintf(msg, size, "out of memory");
    return -1;
}

/* A formatted string of our own, or NULL. */
WEFT_PRINTF(1, 2) static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *out = NULL;
    if (vasprintf(&out, f, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

/* b holds at least need bytes, its capacity doubled as needed but never
 * grown past max (>= need).  0 or -1. */
static int reserve_upto(bytes_t *b, size_t need, size_t max)
{
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need && cap <= SIZE_MAX / 2)
        cap *= 2;
    cap = cap < need ? need : cap > max ? max : cap;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int reserve(bytes_t *b, size_t need)
{
    return reserve_upto(b, need, SIZE_MAX);
}

static int put(bytes_t *b, const void *p, size_t n)
{
    if (reserve(b, b->len + n))
        return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int puts_(bytes_t *b, const char *s)
{
    return put(b, s, strlen(s));
}

static int put_u64(bytes_t *b, uint64_t v)
{
    char d[24];
    int n = snprintf(d, sizeof d, "%" PRIu64, v);
    return put(b, d, (size_t)n);
}

static int put_i64(bytes_t *b, int64_t v)
{
    char d[24];
    int n = snprintf(d, sizeof d, "%" PRId64, v);
    return put(b, d, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (at most left bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4                          ? 4
                                                                 : 0;
    if (n == 0 || n > left)
        return 0;
    unsigned lo = 0x80, hi = 0xBF; /* the second byte's range (Unicode table 3-7) */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F; /* no surrogates */
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* A JSON string literal for n bytes of s.  A byte that is not part of
 * valid UTF-8 becomes \udc80..\udcff, Python's surrogateescape. */
static int put_json_string(bytes_t *b, const char *s, size_t n)
{
    /* At most 6 bytes an input byte, plus the quotes: reserve once. */
    if (n > (SIZE_MAX - 2) / 6 || reserve(b, b->len + 6 * n + 2))
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *o = b->p + b->len;
    const unsigned char *u = (const unsigned char *)s;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t len = utf8_len(u + i, n - i);
            if (len) {
                memcpy(o, u + i, len);
                o += len;
                i += len;
                continue;
            }
            memcpy(o, "\\udc", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
            i++;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

/* "'text...'" for messages: at most QUOTE_MAX bytes, control bytes as '?'. */
static const char *quote(const char *p, size_t n, char *buf, size_t size)
{
    const char *nl = memchr(p, '\n', n); /* a line at most */
    if (nl)
        n = (size_t)(nl - p);
    size_t k = 0, max = n < QUOTE_MAX ? n : QUOTE_MAX;
    buf[k++] = '\'';
    for (size_t i = 0; i < max && k + 5 < size; i++)
        buf[k++] = (unsigned char)p[i] < 0x20 ? '?' : p[i];
    if (n > max && k + 5 < size) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k++] = '\'';
    buf[k] = '\0';
    return buf;
}

/* ---- stderr ------------------------------------------------------------- */

static void err_line(wk_t *w, const char *p, size_t n)
{
    const weft_host_t *h = w->s->host;
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    size_t lead = 0;
    while (lead < n && (p[lead] == ' ' || p[lead] == '\t'))
        lead++;
    if (lead < n) { /* the last line that says something, for crash messages */
        size_t len = n - lead < LAST_LINE_MAX ? n - lead : LAST_LINE_MAX;
        while (len < n - lead && len > 0 && ((unsigned char)p[lead + len] & 0xC0) == 0x80)
            len--; /* cut at a character boundary */
        memcpy(w->last, p + lead, len);
        w->last[len] = '\0';
    }
    if (w->in_item)
        h->logf(h, "item %" PRIu64 ": %.*s", w->index, (int)n, p);
    else
        h->logf(h, "worker %u: %.*s", w->id, (int)n, p);
}

/* Reads what the worker's stderr holds now, passing whole lines on.
 * Returns false at its end (EOF or an error), true while it may say more. */
static bool err_drain(wk_t *w)
{
    char buf[4096];
    for (;;) {
        ssize_t got = read(w->p.err, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            return true;
        if (got <= 0) {
            if (w->errline.len)
                err_line(w, w->errline.p, w->errline.len);
            w->errline.len = 0;
            return false;
        }
        const char *p = buf, *end = buf + got;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (w->errline.len + n > ERR_LINE_MAX) { /* a huge line: pass it in parts */
                err_line(w, w->errline.p, w->errline.len);
                w->errline.len = 0;
            }
            if (w->errline.len || !nl) {
                if (put(&w->errline, p, n) == 0 && nl) {
                    err_line(w, w->errline.p, w->errline.len);
                    w->errline.len = 0;
                }
            } else {
                err_line(w, p, n);
            }
            p += n + (nl != NULL);
        }
        if ((size_t)got < sizeof buf)
            return true;
    }
}

/* ---- starting and ending a worker ---------------------------------------- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void proc_forget(proc_t *p)
{
    close_fd(&p->in);
    close_fd(&p->out);
    close_fd(&p->err);
    close_fd(&p->pidfd);
    p->pid = 0;
    p->ready = false;
}

/* Whether the process exited, waiting up to ms (-1: forever) on its pidfd
 * (a nap loop without one).  Leaves it unreaped. */
static bool exited_within(const proc_t *p, int ms)
{
    double until = ms < 0 ? 0 : now() + ms / 1000.0;
    for (unsigned nap_us = 100;;) {
        siginfo_t info = {0};
        int rc = waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOWAIT | WNOHANG);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 || info.si_pid == p->pid)
            return true; /* ECHILD: nothing left to wait for */
        if (ms == 0 || (ms > 0 && now() >= until))
            return false;
        if (p->pidfd >= 0) {
            struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
            int left = ms < 0 ? -1 : (int)((until - now()) * 1000.0) + 1;
            poll(&pfd, 1, left < 0 ? -1 : left);
        } else {
            struct timespec ts = {0, (long)nap_us * 1000};
            nanosleep(&ts, NULL);
            nap_us = nap_us < 10000 ? nap_us * 2 : 10000;
        }
    }
}

/* Reaps a process that exited (or is being killed): forgets it in the host
 * table first, while its number cannot belong to another process; then
 * SIGKILLs what is left of its group (a grandchild must not outlive it).
 * Returns its wait status, or -1 when it could not be waited for. */
static int proc_reap(const weft_host_t *h, proc_t *p)
{
    int status = -1;
    exited_within(p, -1);
    /* Still ours to wait for (not ECHILD: SIGCHLD ignored, or reaped by
     * someone else), so its number and group id cannot be another's yet. */
    siginfo_t info = {0};
    if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOWAIT | WNOHANG) == 0 &&
        info.si_pid == p->pid)
        kill(-p->pid, SIGKILL); /* what is left of its group */
    untrack(h, p->pid);
    while (waitpid(p->pid, &status, 0) < 0)
        if (errno != EINTR) {
            status = -1;
            break;
        }
    return status;
}

/* Kills a worker and its group, passes on the rest of its stderr, reaps it. */
static int wk_kill(wk_t *w)
{
    if (!w->p.pid)
        return -1;
    close_fd(&w->p.in);
    kill(-w->p.pid, SIGKILL);
    kill(w->p.pid, SIGKILL); /* in case it left its group */
    int status = proc_reap(w->s->host, &w->p);
    if (w->p.err >= 0) /* what it said before it died (non-blocking: a grandchild */
        err_drain(w);  /* may hold the pipe open) */
    proc_forget(&w->p);
    return status;
}

/* "exited with status N" / "was killed by signal N (SIGNAME)", then
 * `then` (" before answering hello"; may be ""), then ": " and its last line
 * of stderr. */
static void describe_end(const wk_t *w, int status, const char *then, char *out,
                         size_t size)
{
    char how[64];
    if (status < 0)
        snprintf(how, sizeof how, "ended (it could not be waited for)");
    else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        snprintf(how, sizeof how, "was killed by signal %d (SIG%s)", WTERMSIG(status),
                 abbrev ? abbrev : "?");
    } else
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    snprintf(out, size, "%s%s%s%s", how, then, w->last[0] ? ": " : "", w->last);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Writes all n bytes to fd, non-blocking, while passing the worker's
 * stderr on (a worker writing a long message must not block us both).
 * 0; -1 with errno EPIPE (it is gone), ETIMEDOUT, ECANCELED (stop) or
 * another. */
static int write_all(wk_t *w, const char *p, size_t n, double deadline)
{
    const weft_host_t *h = w->s->host;
    sigset_t pipe_set, old;
    if (w->guard_pipe) { /* a worker process keeps SIGPIPE's default */
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    }
    int rc = 0;
    while (n) {
        ssize_t put_n = write(w->p.in, p, n);
        if (put_n > 0) {
            p += put_n;
            n -= (size_t)put_n;
            continue;
        }
        if (put_n < 0 && errno == EINTR)
            continue;
        if (put_n < 0 && errno != EAGAIN) {
            rc = -1;
            break;
        }
        struct pollfd pfd[2] = {{.fd = w->p.in, .events = POLLOUT},
                                {.fd = w->p.err, .events = POLLIN}};
        int ready = poll(pfd, w->p.err >= 0 ? 2 : 1, poll_ms(h, deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0) {
            if (deadline > 0 && now() >= deadline) {
                errno = ETIMEDOUT;
                rc = -1;
                break;
            }
            if (host_stopping(h)) {
                errno = ECANCELED;
                rc = -1;
                break;
            }
        }
        if (ready > 0 && w->p.err >= 0 && (pfd[1].revents & (POLLIN | POLLHUP)) &&
            !err_drain(w))
            close_fd(&w->p.err);
    }
    if (w->guard_pipe) {
        int e = errno;
        if (rc && errno == EPIPE) { /* take the pending SIGPIPE, then unblock */
            struct timespec zero = {0, 0};
            sigtimedwait(&pipe_set, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = e;
    }
    return rc;
}

typedef enum got { GOT_LINE, GOT_EOF, GOT_TIMEOUT, GOT_STOP, GOT_TOO_LONG, GOT_NOMEM,
                   GOT_ERROR } got_t;

/* Waits for the next line on the worker's stdout, passing stderr on.
 * GOT_LINE: w->reply.p[0, *len) is it, '\n' (and a '\r' before it) not
 * counted; the line and its '\n' are consumed at the next call. */
static got_t read_line(wk_t *w, double deadline, size_t *len)
{
    const weft_host_t *h = w->s->host;
    size_t limit = w->s->max_result;
    for (;;) {
        char *nl = w->reply.len > w->scanned
                       ? memchr(w->reply.p + w->scanned, '\n', w->reply.len - w->scanned)
                       : NULL;
        if (nl) {
            size_t n = (size_t)(nl - w->reply.p);
            w->scanned = w->taken = n + 1; /* consume() drops it */
            *len = n && w->reply.p[n - 1] == '\r' ? n - 1 : n;
            return *len > limit ? GOT_TOO_LONG : GOT_LINE;
        }
        w->scanned = w->reply.len;
        /* A line of at most limit bytes and its "\r\n" fit in limit + 2:
         * reads never go past that, nor the buffer far beyond it. */
        if (w->reply.len >= limit + 2)
            return GOT_TOO_LONG;
        size_t room = limit + 2 - w->reply.len;
        if (w->reply.cap - w->reply.len < 4096 &&
            reserve_upto(&w->reply, w->reply.len + (room < 65536 ? room : 65536), limit + 2))
            return GOT_NOMEM;
        size_t want = w->reply.cap - w->reply.len;
        ssize_t got = read(w->p.out, w->reply.p + w->reply.len, want < room ? want : room);
        if (got > 0) {
            w->reply.len += (size_t)got;
            continue;
        }
        if (got == 0)
            return GOT_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return GOT_ERROR;
        struct pollfd pfd[3] = {{.fd = w->p.out, .events = POLLIN},
                                {.fd = w->p.err, .events = POLLIN},
                                {.fd = w->p.pidfd, .events = POLLIN}};
        int ready = poll(pfd, 3, poll_ms(h, deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0) {
            if (deadline > 0 && now() >= deadline)
                return GOT_TIMEOUT;
            if (host_stopping(h))
                return GOT_STOP;
            continue;
        }
        if (w->p.err >= 0 && (pfd[1].revents & (POLLIN | POLLHUP)) && !err_drain(w))
            close_fd(&w->p.err);
        /* Exited, with its stdout still open elsewhere (a grandchild): no
         * reply is coming, once what is in the pipe has been read. */
        if (w->p.pidfd >= 0 && (pfd[2].revents & POLLIN) && !(pfd[0].revents & POLLIN))
            return GOT_EOF;
    }
}

/* Drops the line read_line returned last (and anything before it). */
static void consume(wk_t *w)
{
    size_t n = w->taken;
    if (n)
        memmove(w->reply.p, w->reply.p + n, w->reply.len - n);
    w->reply.len -= n;
    w->scanned = w->taken = 0;
}

/* The environment of a worker: weft's, with the protocol's variables; the
 * strings made here are listed in own (freed by env_free). */
typedef struct env {
    char **envp;
    char *own[4];
} env_t;

static void env_free(env_t *e)
{
    for (int i = 0; i < 4; i++)
        free(e->own[i]);
    free(e->envp);
    *e = (env_t){0};
}

static int env_make(const worker_state_t *s, unsigned id, env_t *e)
{
    *e = (env_t){0};
    size_t n = 0;
    while (environ[n])
        n++;
    if (!(e->envp = calloc(n + 5, sizeof *e->envp)))
        return -1;
    size_t k = 0;
    const char *pypath = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = environ[i];
        if (strncmp(v, "WEFT_WORKER=", 12) == 0 || strncmp(v, "WEFT_WORKER_ID=", 15) == 0 ||
            strncmp(v, "PYTHONUNBUFFERED=", 17) == 0)
            continue;
        if (strncmp(v, "PYTHONPATH=", 11) == 0 && s->pydir) {
            pypath = v + 11; /* rebuilt below, weft_worker.py's folder first */
            continue;
        }
        e->envp[k++] = (char *)v;
    }
    e->own[0] = fmt("WEFT_WORKER=%d.0", PROTOCOL);
    e->own[1] = fmt("WEFT_WORKER_ID=%u", id);
    e->own[2] = fmt("PYTHONUNBUFFERED=1");
    bool ok = e->own[0] && e->own[1] && e->own[2];
    if (ok && s->pydir)
        ok = (e->own[3] = pypath && *pypath ? fmt("PYTHONPATH=%s:%s", s->pydir, pypath)
                                            : fmt("PYTHONPATH=%s", s->pydir)) != NULL;
    if (!ok) {
        env_free(e);
        return -1;
    }
    for (int i = 0; i < 4; i++)
        if (e->own[i])
            e->envp[k++] = e->own[i];
    e->envp[k] = NULL;
    return 0;
}

/* Starts a worker and sends it hello (not waiting for ready).  0, or -1
 * with why. */
static int proc_spawn(const worker_state_t *s, char **envp, proc_t *p, char *why,
                      size_t whylen)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    *p = (proc_t){.in = -1, .out = -1, .err = -1, .pidfd = -1};
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        goto fail;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) {
        snprintf(why, whylen, "spawn: %s", strerror(rc));
        goto fail;
    }
    rc = posix_spawnattr_init(&attr);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        snprintf(why, whylen, "spawn: %s", strerror(rc));
        goto fail;
    }
    rc = child_spawnattr(&attr);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    rc = rc ? rc : posix_spawn_file_actions_addfchdir_np(&fa, s->cwd_fd);
    rc = rc ? rc : posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    char *argv[] = {"/bin/sh", "-c", s->script, NULL};
    pid_t pid = 0;
    if (!rc)
        rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc) {
        snprintf(why, whylen, "cannot start /bin/sh: %s", strerror(rc));
        goto fail;
    }
    track(s->host, pid);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    *p = (proc_t){.pid = pid, .in = in[1], .out = out[0], .err = err[0],
                  .pidfd = (int)pidfd_open(pid, 0)};
    if (set_nonblock(p->in) || set_nonblock(p->out) || set_nonblock(p->err)) {
        snprintf(why, whylen, "fcntl: %s", strerror(errno));
        return -1; /* the caller kills it */
    }
    return 0;
fail:
    for (int k = 0; k < 2; k++) {
        close_fd(&in[k]);
        close_fd(&out[k]);
        close_fd(&err[k]);
    }
    return -1;
}

/* The hello frame for worker id. */
static int hello_frame(const worker_state_t *s, unsigned id, bytes_t *b)
{
    b->len = 0;
    int rc = puts_(b, "hello {\"protocol\":1,\"worker\":");
    rc = rc ? rc : put_u64(b, id);
    rc = rc ? rc : puts_(b, ",\"run_seed\":");
    rc = rc ? rc : put_u64(b, s->host->run_seed);
    rc = rc ? rc : puts_(b, ",\"config_dir\":");
    rc = rc ? rc : put_json_string(b, s->host->config_dir, strlen(s->host->config_dir));
    rc = rc ? rc : puts_(b, ",\"args\":");
    rc = rc ? rc : puts_(b, s->task_json);
    rc = rc ? rc : puts_(b, "}\n");
    return rc;
}

/* Starts w's worker and sends hello; ready comes later (await_ready). */
static int wk_start(wk_t *w, char *why, size_t whylen)
{
    w->reply.len = w->scanned = w->taken = 0;
    w->errline.len = 0;
    w->last[0] = '\0';
    if (proc_spawn(w->s, w->env->envp, &w->p, why, whylen)) {
        if (w->p.pid)
            wk_kill(w);
        return -1;
    }
    bytes_t hello = {0}; /* not w->frame: that may hold the item waiting for us */
    if (hello_frame(w->s, w->id, &hello)) {
        free(hello.p);
        wk_kill(w);
        return nomem(why, whylen);
    }
    double deadline = now() + w->s->start_timeout;
    int rc = write_all(w, hello.p, hello.len, deadline);
    free(hello.p);
    if (rc) {
        int e = errno;
        if (e == EPIPE) { /* it exited before reading anything: say how */
            int status = wk_kill(w);
            char end[LAST_LINE_MAX + 128];
            describe_end(w, status, " before answering hello", end, sizeof end);
            snprintf(why, whylen, "it %s", end);
        } else {
            wk_kill(w);
            snprintf(why, whylen, "sending hello: %s", strerror(e));
        }
        return -1;
    }
    return 0;
}

/* Waits for the answer to hello.  0, or -1 with why (the worker is gone). */
static int await_ready(wk_t *w, char *why, size_t whylen)
{
    double deadline = now() + w->s->start_timeout;
    size_t len = 0;
    got_t got = read_line(w, deadline, &len);
    char q[QUOTE_MAX + 8];
    if (got == GOT_LINE) {
        const char *l = w->reply.p;
        if (len == 5 && memcmp(l, "ready", 5) == 0) {
            consume(w);
            if (w->reply.len == 0) {
                w->p.ready = true;
                return 0;
            }
            /* More than ready, before any item: a reply nobody asked for
             * would be taken as the first item's. */
            snprintf(why, whylen, "it broke the protocol: sent %s after 'ready', before "
                                  "any item",
                     quote(w->reply.p, w->reply.len, q, sizeof q));
            wk_kill(w);
            return -1;
        }
        if (len >= 4 && memcmp(l, "fail", 4) == 0 && (len == 4 || l[4] == ' '))
            snprintf(why, whylen, "%.*s", len > 5 ? (int)(len - 5) : 0, l + 5);
        else
            snprintf(why, whylen, "it broke the protocol: sent %s to hello (expected "
                                  "'ready' or 'fail MESSAGE')",
                     quote(l, len, q, sizeof q));
        wk_kill(w);
        return -1;
    }
    int status = wk_kill(w);
    char end[LAST_LINE_MAX + 128];
    describe_end(w, status, " before answering hello", end, sizeof end);
    switch (got) {
    case GOT_TIMEOUT:
        snprintf(why, whylen, "no 'ready' within start_timeout (%g s)", w->s->start_timeout);
        break;
    case GOT_STOP:
        snprintf(why, whylen, "stopped: weft asked it to stop");
        break;
    case GOT_TOO_LONG:
        snprintf(why, whylen, "its answer to hello is over max_result (%zu bytes)",
                 w->s->max_result);
        break;
    default:
        snprintf(why, whylen, "it %s", end);
    }
    return -1;
}

/* ---- one item ------------------------------------------------------------ */

static int item_frame(wk_t *w, const weft_item_t *item)
{
    const weft_host_t *h = w->s->host;
    weft_rng_t rng;
    h->rng_init(h, &rng, item, 0);
    uint64_t seed = h->rng_u64(&rng);
    bytes_t *b = &w->frame;
    b->len = 0;
    int rc = puts_(b, "item {\"index\":");
    rc = rc ? rc : put_u64(b, item->index);
    rc = rc ? rc : puts_(b, ",\"number\":");
    rc = rc ? rc : put_i64(b, item->number);
    rc = rc ? rc : puts_(b, ",\"seed\":");
    rc = rc ? rc : put_u64(b, seed);
    if (item->text) {
        rc = rc ? rc : puts_(b, ",\"text\":");
        rc = rc ? rc : put_json_string(b, item->text, item->text_len);
    }
    rc = rc ? rc : puts_(b, "}\n");
    return rc;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                 : -1;
}

static int put_utf8(bytes_t *b, uint32_t c)
{
    char u[4];
    size_t n;
    if (c < 0x80)
        u[0] = (char)c, n = 1;
    else if (c < 0x800)
        u[0] = (char)(0xC0 | c >> 6), u[1] = (char)(0x80 | (c & 63)), n = 2;
    else if (c < 0x10000)
        u[0] = (char)(0xE0 | c >> 12), u[1] = (char)(0x80 | (c >> 6 & 63)),
        u[2] = (char)(0x80 | (c & 63)), n = 3;
    else
        u[0] = (char)(0xF0 | c >> 18), u[1] = (char)(0x80 | (c >> 12 & 63)),
        u[2] = (char)(0x80 | (c >> 6 & 63)), u[3] = (char)(0x80 | (c & 63)), n = 4;
    return put(b, u, n);
}

/* The text of the JSON string literal p[0, n) (the whole of it) into b;
 * -1 when it is not one string (the value is then left as JSON). */
static int json_string_text(const char *p, size_t n, bytes_t *b)
{
    b->len = 0;
    if (n < 2 || p[0] != '"' || p[n - 1] != '"')
        return -1;
    for (size_t i = 1; i < n - 1;) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c < 0x20)
            return -1;
        if (c != '\\') {
            size_t run = i;
            while (run < n - 1 && p[run] != '\\' && p[run] != '"') {
                size_t u = utf8_len((const unsigned char *)p + run, n - 1 - run);
                if (u == 0 || (unsigned char)p[run] < 0x20)
                    return -1; /* not JSON: the runner's check says so */
                run += u;
            }
            if (put(b, p + i, run - i))
                return -1;
            i = run;
            continue;
        }
        if (i + 1 >= n - 1)
            return -1;
        char e = p[i + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            if (put(b, &out[simple - "\"\\/bfnrt"], 1))
                return -1;
            i += 2;
            continue;
        }
        if (e != 'u' || i + 6 > n - 1)
            return -1;
        uint32_t cp = 0;
        for (int k = 2; k < 6; k++) {
            int v = hexval(p[i + k]);
            if (v < 0)
                return -1;
            cp = cp << 4 | (uint32_t)v;
        }
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= n - 1 && p[i] == '\\' &&
            p[i + 1] == 'u') {
            uint32_t lo = 0;
            int ok = 1;
            for (int k = 2; k < 6 && ok; k++) {
                int v = hexval(p[i + k]);
                ok = v >= 0;
                lo = lo << 4 | (uint32_t)(v < 0 ? 0 : v);
            }
            if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 0xFFFD; /* a lone surrogate has no UTF-8 */
        if (put_utf8(b, cp))
            return -1;
    }
    return 0;
}

/* The reply line l[0, len) as the item's outcome. */
static int take_reply(wk_t *w, const char *l, size_t len, weft_result_t *r)
{
    const weft_host_t *h = w->s->host;
    if (len >= 2 && l[0] == 'o' && l[1] == 'k' && (len == 2 || l[2] == ' ')) {
        if (len <= 3)
            return 0; /* `ok` alone: no value, written as null */
        const char *v = l + 3;
        size_t n = len - 3;
        if (WEFT_HOST_HAS(h, values_raw) && h->values_raw && n && v[0] == '"' &&
            json_string_text(v, n, &w->raw) == 0 && put(&w->raw, "\n", 1) == 0) {
            weft_result_string(r, w->raw.p, w->raw.len);
            return 0; /* raw output prints a string's text as a line (print's way) */
        }
        weft_result_json(r, v, n);
        return 0;
    }
    if (len >= 4 && memcmp(l, "fail", 4) == 0 && (len == 4 || l[4] == ' ')) {
        /* Announced again: child_ended tells the host whether weft's first
         * signal reached this worker, and an item failed because of it is
         * then recorded as not run (--resume runs it), as for a worker
         * that died of it. */
        untrack(h, w->p.pid);
        track(h, w->p.pid);
        return h->failf(r, "%.*s", len > 5 ? (int)(len - 5) : 0, l + 5);
    }
    char q[QUOTE_MAX + 8];
    h->failf(r, "the worker broke the protocol: sent %s (expected 'ok VALUE' or 'fail "
                "MESSAGE'); a new worker takes the next item",
             quote(l, len, q, sizeof q));
    return 1; /* the stream cannot be trusted any more */
}

/* Before an item: what the worker sent since its last reply (one read, not
 * waiting).  A reply nobody asked for means the stream cannot be trusted,
 * and end of output that it is gone: either way a new worker takes the
 * item, which costs the item nothing. */
static void peek(wk_t *w)
{
    const weft_host_t *h = w->s->host;
    if (w->reply.cap < 256 && reserve(&w->reply, 256))
        return;
    ssize_t got;
    do
        got = read(w->p.out, w->reply.p + w->reply.len, w->reply.cap - w->reply.len);
    while (got < 0 && errno == EINTR);
    if (got < 0 && w->reply.len == 0)
        return; /* EAGAIN: nothing, as it should be */
    w->reply.len += (size_t)(got > 0 ? got : 0);
    if (w->reply.len) {
        char q[QUOTE_MAX + 8];
        h->logf(h, "worker %u: sent %s after its reply; a new worker takes over", w->id,
                quote(w->reply.p, w->reply.len, q, sizeof q));
    }
    wk_kill(w);
    w->reply.len = w->scanned = w->taken = 0;
}

static int worker_process(void *state, void *ctx, const weft_item_t *item, weft_result_t *r)
{
    worker_state_t *s = state;
    wk_t *w = ctx;
    const weft_host_t *h = s->host;
    char why[512];
    if (item_frame(w, item))
        return h->failf(r, "out of memory for the item's frame");
    w->index = item->index;

    consume(w);
    if (w->p.ready)
        peek(w);
    double deadline = 0;
    got_t got = GOT_ERROR;
    int status = -1, err = 0;
    size_t len = 0;
    /* A worker that died between two items (it had ended before it read
     * this one: the write found no reader, or the frame is still unread in
     * its pipe) costs nothing: one new worker gets the item.  One that read
     * it and died is never given it again here (retries decide). */
    for (int attempt = 0; attempt < 2; attempt++) {
        w->in_item = false;
        if (!w->p.pid && wk_start(w, why, sizeof why))
            return h->failf(r, "the worker did not start: %s", why);
        if (!w->p.ready && await_ready(w, why, sizeof why))
            return h->failf(r, "the worker did not start: %s", why);
        w->in_item = true; /* what it says now is about this item */
        deadline = s->timeout > 0 ? now() + s->timeout : 0; /* its start not counted */
        if (write_all(w, w->frame.p, w->frame.len, deadline) != 0) {
            err = errno;
            status = wk_kill(w);
            if (err == EPIPE)
                continue;
            break;
        }
        err = 0;
        got = read_line(w, deadline, &len);
        if (got == GOT_LINE)
            break;
        bool partial = w->reply.len > w->taken;
        int unread = -1;
        if (got == GOT_EOF && ioctl(w->p.in, FIONREAD, &unread) != 0)
            unread = -1;
        status = wk_kill(w);
        if (!(got == GOT_EOF && !partial && unread == (int)w->frame.len))
            break;
    }
    w->in_item = false;
    if (err == ETIMEDOUT || got == GOT_TIMEOUT)
        return h->failf(r, "timed out after %g s (the worker was killed)", s->timeout);
    if (err == ECANCELED || got == GOT_STOP)
        return h->failf(r, "stopped: weft asked it to stop (its worker was killed)");
    if (err && err != EPIPE)
        return h->failf(r, "cannot send the item to the worker: %s", strerror(err));
    if (got == GOT_LINE) {
        int rc = take_reply(w, w->reply.p, len, r);
        /* stderr written before the reply is in its pipe by now: it
         * belongs to this item, not the next. */
        w->in_item = true;
        if (w->p.err >= 0 && !err_drain(w))
            close_fd(&w->p.err);
        w->in_item = false;
        if (rc > 0) {
            wk_kill(w);
            return -1;
        }
        return rc;
    }
    if (got == GOT_TOO_LONG)
        return h->failf(r, "the worker's reply is over max_result (%zu bytes); a new worker "
                           "takes the next item",
                        s->max_result);
    if (got == GOT_NOMEM)
        return h->failf(r, "out of memory for the worker's reply");
    if (got == GOT_EOF && w->reply.len > w->taken) {
        char then[96];
        snprintf(then, sizeof then, " in the middle of its reply (%zu bytes, no newline)",
                 w->reply.len - w->taken);
        describe_end(w, status, then, why, sizeof why);
    } else {
        describe_end(w, status, "", why, sizeof why);
    }
    return h->failf(r, "the worker %s", why);
}

/* ---- workers -------------------------------------------------------------- */

/* Ends a worker at the end of the run: end of input, a grace period
 * (its stderr passed on meanwhile), then SIGKILL for it and its group. */
static void wk_finish(wk_t *w)
{
    if (!w->p.pid)
        return;
    const weft_host_t *h = w->s->host;
    close_fd(&w->p.in);
    double until = now() + FINI_WAIT_S;
    while (w->p.err >= 0 && now() < until) {
        struct pollfd pfd[2] = {{.fd = w->p.err, .events = POLLIN},
                                {.fd = w->p.pidfd, .events = POLLIN}};
        int ms = (int)((until - now()) * 1000.0) + 1;
        if (poll(pfd, w->p.pidfd >= 0 ? 2 : 1, ms) <= 0)
            break;
        if (pfd[0].revents && !err_drain(w))
            close_fd(&w->p.err);
        if (w->p.pidfd >= 0 && (pfd[1].revents & POLLIN))
            break;
    }
    int left = (int)((until - now()) * 1000.0);
    bool gone = exited_within(&w->p, left > 0 ? left : 0);
    int status = wk_kill(w);
    if (!gone)
        h->logf(h, "worker %u did not exit within %g s of the end of its input: killed",
                w->id, FINI_WAIT_S);
    else if (status != 0) {
        char end[LAST_LINE_MAX + 128];
        describe_end(w, status, " at the end of its input", end, sizeof end);
        h->logf(h, "worker %u %s", w->id, end);
    }
}

static void wk_free(wk_t *w)
{
    free(w->frame.p);
    free(w->reply.p);
    free(w->errline.p);
    free(w->raw.p);
    if (w->env)
        env_free(w->env);
    free(w->env);
}

static void worker_fini(void *state, unsigned worker, void *ctx)
{
    (void)worker;
    worker_state_t *s = state;
    wk_t *w = ctx;
    if (!w)
        return;
    /* The first worker_fini (the pool is done: no item runs) ends the
     * input of every worker at once, so that they all finish together,
     * not one grace period after another. */
    bool live = false;
    for (unsigned k = 0; k < s->n_live; k++)
        if (s->live[k] == w) {
            live = true;
            s->live[k] = s->live[--s->n_live];
            break;
        }
    if (live && !s->ending) {
        s->ending = true;
        for (unsigned k = 0; k < s->n_live; k++)
            close_fd(&s->live[k]->p.in);
    }
    wk_finish(w);
    wk_free(w);
    free(w);
}

/* A worker's context, with no process yet.  0 or -1. */
static int wk_setup(wk_t *w, const worker_state_t *s, unsigned id)
{
    *w = (wk_t){.s = s, .id = id, .p = {.in = -1, .out = -1, .err = -1, .pidfd = -1}};
    struct sigaction sa;
    w->guard_pipe = sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN;
    w->env = malloc(sizeof *w->env);
    if (!w->env || env_make(s, id, w->env)) {
        free(w->env);
        w->env = NULL;
        return -1;
    }
    return 0;
}

static int worker_init_one(void *state, unsigned worker, unsigned workers, void **ctx,
                           char *msg, size_t msg_size)
{
    (void)workers;
    worker_state_t *s = state;
    size_t size = (sizeof(wk_t) + 63) & ~(size_t)63; /* a cache line of its own */
    wk_t *w = aligned_alloc(64, size);
    if (!w || wk_setup(w, s, worker)) {
        free(w);
        return nomem(msg, msg_size);
    }
    if (s->pre && s->pre_pid != getpid()) /* a forked worker process: these */
        for (unsigned k = 0; k < s->n_pre; k++) /* copies are not ours */
            proc_forget(&s->pre[k]);
    if (s->pre && worker < s->n_pre && s->pre[worker].pid) { /* init's, ready: ours */
        w->p = s->pre[worker];
        s->pre[worker].pid = 0;
    } else {
        char why[512];
        if (wk_start(w, why, sizeof why)) {
            snprintf(msg, msg_size, "worker %u did not start: %s", worker, why);
            worker_fini(state, worker, w);
            return -1;
        }
    }
    wk_t **live = realloc(s->live, (s->n_live + 1) * sizeof *live);
    if (!live) {
        worker_fini(state, worker, w);
        return nomem(msg, msg_size);
    }
    s->live = live;
    s->live[s->n_live++] = w;
    *ctx = w;
    return 0;
}

/* ---- the run --------------------------------------------------------------- */

static void worker_destroy(void *state)
{
    worker_state_t *s = state;
    if (!s)
        return;
    for (unsigned k = 0; s->pre && s->pre_pid == getpid() && k < s->n_pre; k++)
        if (s->pre[k].pid) { /* never adopted (fewer workers, a failed start) */
            wk_t w = {.s = s, .id = k, .p = s->pre[k]};
            wk_finish(&w);
            wk_free(&w);
        }
    free(s->pre);
    free(s->live);
    if (s->cwd_fd >= 0)
        close(s->cwd_fd);
    free(s->task_json);
    free(s->script);
    free(s->pydir);
    free(s);
}

/* The script /bin/sh -c runs: a simple command (python3 -u tasks.py) is
 * prefixed with exec, so that the worker is the command itself, not a
 * shell waiting on it (dash does not exec a -c command's last one): its
 * death by a signal is then seen as such, not as the shell's 128 + N.
 * Anything with shell syntax beyond words (operators, redirections,
 * subshells, a leading assignment or reserved word) runs as written. */
static char *exec_prefixed(const char *cmd)
{
    while (*cmd == ' ' || *cmd == '\t')
        cmd++;
    bool simple = !strpbrk(cmd, ";&|()<>`\n");
    size_t first = strcspn(cmd, " \t");
    if (memchr(cmd, '=', first))
        simple = false; /* VAR=value command: exec would take VAR=value as the name */
    static const char *const reserved[] = {"if", "while", "until", "for", "case", "{",
                                           "!", "exec", "time"};
    for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++)
        if (strlen(reserved[k]) == first && strncmp(cmd, reserved[k], first) == 0)
            simple = false;
    return simple ? fmt("exec %s", cmd) : strdup(cmd);
}

/* The folder of weft_worker.py: python/ beside this plugin's file. */
static char *find_pydir(void)
{
    Dl_info info;
    if (!dladdr((const void *)&WEFT_PLUGIN_ENTRY, &info) || !info.dli_fname)
        return NULL;
    char *path = realpath(info.dli_fname, NULL);
    if (!path)
        return NULL;
    char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (slash) {
        *slash = '\0';
        dir = fmt("%s/python", path);
        char *py = dir ? fmt("%s/weft_worker.py", dir) : NULL;
        struct stat st;
        if (!py || stat(py, &st) != 0) {
            free(dir);
            dir = NULL;
        }
        free(py);
    }
    free(path);
    return dir;
}

static char *task_json(const weft_host_t *host)
{
    bytes_t b = {0};
    int rc = puts_(&b, "{");
    size_t n = WEFT_HOST_HAS(host, task_values) ? host->n_task : 0;
    for (size_t k = 0; k < n && !rc; k++) {
        rc = k ? puts_(&b, ",") : 0;
        rc = rc ? rc : put_json_string(&b, host->task_keys[k], strlen(host->task_keys[k]));
        rc = rc ? rc : puts_(&b, ":");
        rc = rc ? rc
                : put_json_string(&b, host->task_values[k], strlen(host->task_values[k]));
    }
    rc = rc ? rc : put(&b, "}", 2); /* with its NUL */
    if (rc) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* The workers, started at init, all at once (a Python worker importing
 * numpy takes a good part of a second: in parallel, not one after another),
 * each waited for: a command that does not start, or a task that refuses
 * its [task] arguments, stops the run here, before anything is written
 * (and weft check --init says so).  Thread mode keeps them for worker_init;
 * with worker processes (host->worker_processes), or from check, one is
 * started as a check and ended: each worker process starts its own. */
static int start_all(worker_state_t *s, char *msg, size_t msg_size)
{
    const weft_host_t *h = s->host;
    bool keep = WEFT_HOST_HAS(h, worker_processes) && h->workers && !h->worker_processes;
    unsigned n = keep ? h->workers : 1;
    wk_t *w = calloc(n, sizeof *w);
    s->pre = calloc(n, sizeof *s->pre);
    if (!w || !s->pre) {
        free(w);
        return nomem(msg, msg_size);
    }
    char why[512] = "";
    unsigned bad = n;
    for (unsigned k = 0; k < n && bad == n; k++)
        if (wk_setup(&w[k], s, k) ? nomem(why, sizeof why) : wk_start(&w[k], why, sizeof why))
            bad = k;
    for (unsigned k = 0; k < n && bad == n; k++)
        if (await_ready(&w[k], why, sizeof why))
            bad = k;
    for (unsigned k = 0; k < n; k++) {
        if (bad < n)
            wk_kill(&w[k]);
        else if (!keep)
            wk_finish(&w[k]);
        else
            s->pre[k] = w[k].p;
        wk_free(&w[k]);
    }
    free(w);
    if (bad < n) {
        if (n > 1)
            snprintf(msg, msg_size, "%s: worker %u: %s", s->command, bad, why);
        else
            snprintf(msg, msg_size, "%s: %s", s->command, why);
        return -1;
    }
    s->n_pre = keep ? n : 0;
    s->pre_pid = getpid();
    return 0;
}

static int worker_init(const weft_host_t *host, const weft_arg_value_t *args, void **state,
                       char *msg, size_t msg_size)
{
    worker_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return nomem(msg, msg_size);
    s->host = host;
    s->cwd_fd = -1;
    s->command = args[ARG_COMMAND].u.s;
    s->timeout = args[ARG_TIMEOUT].u.f;
    s->start_timeout = args[ARG_START_TIMEOUT].u.f;
    s->max_result = (size_t)args[ARG_MAX_RESULT].u.i;
    const char *c = s->command;
    while (*c == ' ' || *c == '\t' || *c == '\n')
        c++;
    if (!*c) {
        snprintf(msg, msg_size, "command is empty");
        goto fail;
    }
    const char *cwd = args[ARG_CWD].u.s[0] ? args[ARG_CWD].u.s : host->config_dir;
    s->cwd_fd = open(cwd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->cwd_fd < 0) {
        snprintf(msg, msg_size, "cwd '%s': %s", cwd, strerror(errno));
        goto fail;
    }
    s->task_json = task_json(host);
    s->script = exec_prefixed(s->command);
    if (!s->task_json || !s->script) {
        nomem(msg, msg_size);
        goto fail;
    }
    s->pydir = find_pydir();

    if (start_all(s, msg, msg_size))
        goto fail;
    *state = s;
    return 0;
fail:
    worker_destroy(s);
    return -1;
}

WEFT_PLUGIN_DEFINE = {
    WEFT_PLUGIN_HEADER,
    .name = "worker",
    .version = "1.0.0",
    .description = "Runs a task in any language in persistent worker processes "
                   "(docs/worker-protocol.md); [task] holds its arguments",
    .args = worker_args,
    .n_args = sizeof worker_args / sizeof worker_args[0],
    .flags = WEFT_PLUGIN_TASK_ARGS,
    .init = worker_init,
    .worker_init = worker_init_one,
    .worker_fini = worker_fini,
    .process_one = worker_process,
    .destroy = worker_destroy,
};
