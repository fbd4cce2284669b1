/* SPDX-License-Identifier: MIT */
/*
 * Crash isolation: a single-threaded supervisor of persistent forked
 * workers (see isolate.h for the model and the contract).
 *
 * Wire format (native endianness: both ends are the same binary).
 *   request: req_hdr {n, payload bytes}, then n x {req_item {index, len}, bytes}
 *   message: msg_hdr {type, status, index, records, len, msg_len}, bytes, msg
 *            type READY once after child_init, then one REPLY per item.
 *
 * Supervisor invariants, per worker slot:
 *   DEAD     no process (pid 0, fd -1); respawned unless stopping or given up
 *   STARTING forked, READY not yet read; holds no item
 *   IDLE     ready, holds no item
 *   BUSY     holds the positions q[qhead..+qn), in the order it runs them:
 *            up to two requests (the next is sent before the current one
 *            ends, so the worker never waits for the supervisor).  The last
 *            `unsent` of them belong to a request not wholly sent yet; if
 *            qn > unsent, q[qhead] runs since item_start (the send, or the
 *            reply before it as the supervisor saw it: never too early).
 *   GONE     failed to restart RESPAWN_LIMIT times in a row; never used again
 * An item position is in exactly one place: the fresh range [next, count),
 * the retry ring, one worker's q, or delivered (done).
 *
 * Batch sizes come from the item times the children measure and report
 * (their reply writes included), not from when the supervisor happened to
 * read the replies.
 */
#include "isolate.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 1024u
#define MAX_BATCH 256u
#define QCAP (2 * MAX_BATCH)      /* positions a worker may hold */
#define BATCH_TARGET_NS 1000000.0 /* ~1 ms of work per request */
#define POLL_MAX_MS 50
#define RESPAWN_LIMIT 3u
#define DESTROY_GRACE_NS 2000000000LL
#define CHILD_MSG_SIZE 1024

enum { MSG_READY = 1, MSG_REPLY = 2 };

struct req_hdr {
    uint32_t n;
    uint32_t pad;
    uint64_t payload;
};
struct req_item {
    uint64_t index;
    uint64_t len;
};
struct msg_hdr {
    uint32_t type;
    int32_t status;
    uint64_t index;
    uint32_t records;
    uint32_t len;
    uint32_t msg_len;
    uint32_t pad;
    uint64_t ns; /* REPLY: the item's time in the child, its reply included */
};

enum wstate { W_DEAD, W_STARTING, W_IDLE, W_BUSY, W_GONE };

struct worker {
    _Atomic(pid_t) pid; /* read by weft__iso_kill_all from signal handlers */
    int fd;
    enum wstate st;
    unsigned fail_streak; /* restarts that failed in a row */
    bool init_failed;     /* READY carried a failure; EOF follows */
    size_t q[QCAP]; /* ring: positions held, oldest first */
    size_t qhead, qn, unsent;
    int64_t item_start;
    unsigned char *sbuf; /* request being sent: [soff, slen) left */
    size_t scap, slen, soff;
    unsigned char *rbuf; /* received, unparsed: [roff, rlen) */
    size_t rcap, rlen, roff;
};

struct run {
    size_t count;
    uint64_t first;
    void (*get_item)(void *arg, size_t i, const void **bytes, size_t *len);
    void (*on_result)(void *arg, size_t i, const weft__iso_outcome_t *o);
    void *arg;
    size_t next; /* first fresh position */
    size_t done; /* outcomes delivered */
};

struct weft__iso {
    weft__iso_settings_t s;
    unsigned n;
    pid_t super_pid;
    _Atomic int stop; /* weft__iso_stop: 0, 1 soon, 2 now */
    bool all_gone;
    weft__iso_stats_t stats;
    double per_item_ns;   /* EWMA of the children's item times, 0 = unknown */
    size_t bsize;         /* size of the last batch sent */
    const void *item[MAX_BATCH]; /* get_item's answers, while dispatching */
    size_t item_len[MAX_BATCH];
    /* Re-queued positions, oldest first: at most one batch per worker. */
    size_t *retry;
    size_t rcap, rhead, rn;
    char gone_msg[CHILD_MSG_SIZE + 64]; /* why the last restart failed */
    char msg[CHILD_MSG_SIZE + 64];      /* outcome text being delivered */
    struct worker w[];
};

/* ---- small helpers ---------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int grow(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    unsigned char *p = realloc(*buf, c);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = c;
    return 0;
}

static void describe_status(char *buf, size_t size, int st)
{
    if (WIFSIGNALED(st))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else if (WIFEXITED(st))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(st));
    else
        snprintf(buf, size, "ended with wait status %#x", (unsigned)st);
}

static int reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* The stop level, latching the runner's flag: stopped stays stopped. */
static int stop_level(weft__iso_t *iso)
{
    int a = atomic_load_explicit(&iso->stop, memory_order_relaxed);
    int b = iso->s.stop_flag ? atomic_load_explicit(iso->s.stop_flag, memory_order_relaxed) : 0;
    if (b > a) {
        atomic_store_explicit(&iso->stop, b > 2 ? 2 : b, memory_order_relaxed);
        return b > 2 ? 2 : b;
    }
    return a;
}

/* ---- child side ------------------------------------------------------------- */

struct weft__iso_reply {
    unsigned char *buf; /* [msg_hdr][bytes: len][msg: msg_len] */
    size_t cap;
    int32_t status;
    uint32_t records;
    size_t len, msg_len;
};

static void reply_reset(weft__iso_reply_t *r)
{
    r->status = 0;
    r->records = 0;
    r->len = r->msg_len = 0;
}

int weft__iso_reply_ok(weft__iso_reply_t *r, uint32_t records, const void *bytes, size_t len)
{
    if (len > UINT32_MAX)
        return -EOVERFLOW;
    if (grow(&r->buf, &r->cap, sizeof(struct msg_hdr) + len))
        return -ENOMEM;
    if (len)
        memcpy(r->buf + sizeof(struct msg_hdr), bytes, len);
    r->status = 0;
    r->records = records;
    r->len = len;
    r->msg_len = 0;
    return 0;
}

int weft__iso_reply_fail(weft__iso_reply_t *r, int code, const char *msg, size_t msg_len)
{
    reply_reset(r);
    r->status = code ? code : 1;
    if (msg_len > UINT32_MAX)
        msg_len = UINT32_MAX;
    if (grow(&r->buf, &r->cap, sizeof(struct msg_hdr) + msg_len))
        return -ENOMEM; /* still a failure, without its text */
    if (msg_len)
        memcpy(r->buf + sizeof(struct msg_hdr), msg, msg_len);
    r->msg_len = msg_len;
    return 0;
}

/* 1 all read, 0 EOF before the first byte, -1 error or EOF midway.  A
 * supervisor that dies with our READY unread gives ECONNRESET, not EOF. */
static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k > 0)
            got += (size_t)k;
        else if (k == 0 || errno == ECONNRESET)
            return got ? -1 : 0;
        else if (errno != EINTR)
            return -1;
    }
    return 1;
}

static int write_full(int fd, const void *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t k = write(fd, (const char *)buf + put, n - put);
        if (k >= 0)
            put += (size_t)k;
        else if (errno != EINTR)
            return -1;
    }
    return 0;
}

static void child_signals(void)
{
    /* Handlers are the parent's (the runner's SIGINT flag, a test
     * harness's SIGSEGV longjmp): none may run here, so a fault kills the
     * worker with its signal.  Ignored signals stay ignored (nohup). */
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) != 0)
            continue;
        if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
            continue;
        signal(sig, SIG_DFL);
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static _Noreturn void child_main(weft__iso_t *iso, unsigned id, int fd)
{
    child_signals();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != iso->super_pid)
        _exit(WEFT__ISO_EXIT_PROTO); /* the supervisor already died */

    char msg[CHILD_MSG_SIZE] = "";
    int rc = iso->s.child_init ? iso->s.child_init(iso->s.arg, id, msg, sizeof msg) : 0;
    msg[sizeof msg - 1] = '\0';
    size_t mlen = rc ? strlen(msg) : 0;
    struct msg_hdr rh = {.type = MSG_READY, .status = rc != 0, .msg_len = (uint32_t)mlen};
    if (write_full(fd, &rh, sizeof rh) || write_full(fd, msg, mlen))
        _exit(WEFT__ISO_EXIT_PROTO);
    if (rc)
        _exit(WEFT__ISO_EXIT_INIT);

    unsigned char *req = NULL;
    size_t req_cap = 0;
    weft__iso_reply_t reply = {0};
    for (;;) {
        struct req_hdr h;
        int r = read_full(fd, &h, sizeof h);
        if (r == 0)
            break; /* orderly shutdown */
        if (r < 0 || h.payload > SIZE_MAX || grow(&req, &req_cap, (size_t)h.payload ? (size_t)h.payload : 1) ||
            read_full(fd, req, (size_t)h.payload) != 1)
            _exit(WEFT__ISO_EXIT_PROTO);
        size_t off = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (uint32_t k = 0; k < h.n; k++) {
            struct req_item it;
            if (h.payload - off < sizeof it)
                _exit(WEFT__ISO_EXIT_PROTO);
            memcpy(&it, req + off, sizeof it);
            off += sizeof it;
            if (h.payload - off < it.len)
                _exit(WEFT__ISO_EXIT_PROTO);
            reply_reset(&reply);
            if (grow(&reply.buf, &reply.cap, sizeof(struct msg_hdr)))
                _exit(WEFT__ISO_EXIT_PROTO);
            iso->s.child_item(iso->s.arg, id, it.index, req + off, (size_t)it.len, &reply);
            off += (size_t)it.len;
            struct msg_hdr mh = {
                .type = MSG_REPLY,
                .status = reply.status,
                .index = it.index,
                .records = reply.records,
                .len = (uint32_t)reply.len,
                .msg_len = (uint32_t)reply.msg_len,
            };
            /* The write of the previous reply counts: it is per-item cost. */
            clock_gettime(CLOCK_MONOTONIC, &t1);
            mh.ns = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
            t0 = t1;
            memcpy(reply.buf, &mh, sizeof mh);
            if (write_full(fd, reply.buf, sizeof mh + reply.len + reply.msg_len))
                _exit(WEFT__ISO_EXIT_PROTO);
        }
    }
    if (iso->s.child_fini)
        iso->s.child_fini(iso->s.arg, id);
    _exit(0); /* not exit(): the parent's atexit handlers and stdio buffers are not ours */
}

/* ---- supervisor: spawning and reaping ---------------------------------------- */

/* Forks worker `id` into a DEAD slot; it becomes STARTING.  -errno. */
static int spawn(weft__iso_t *iso, unsigned id)
{
    struct worker *w = &iso->w[id];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    /* Buffered stdio output would otherwise be written twice if a plugin
     * flushes it in the child. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(sv[0]);
        close(sv[1]);
        return e;
    }
    if (pid == 0) {
        /* Other workers' sockets: holding them would hide their EOF. */
        close(sv[0]);
        for (unsigned j = 0; j < iso->n; j++)
            if (iso->w[j].fd >= 0)
                close(iso->w[j].fd);
        child_main(iso, id, sv[1]);
    }
    close(sv[1]);
    atomic_store_explicit(&w->pid, pid, memory_order_relaxed);
    w->fd = sv[0];
    w->st = W_STARTING;
    w->init_failed = false;
    w->qhead = w->qn = w->unsent = 0;
    w->slen = w->soff = 0;
    w->rlen = w->roff = 0;
    iso->stats.spawned++;
    return 0;
}

/* SIGKILLs (if still alive) and reaps the worker; returns its wait status.
 * The pid is cleared first, so kill_all never signals a reused pid. */
static int kill_reap(struct worker *w)
{
    pid_t pid = atomic_exchange_explicit(&w->pid, 0, memory_order_relaxed);
    int st = 0;
    if (pid > 0) {
        /* A worker that is already exiting keeps its own status. */
        kill(pid, SIGKILL);
        st = reap(pid);
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->st = W_DEAD;
    w->slen = w->soff = w->rlen = w->roff = 0;
    return st;
}

/* ---- supervisor: the run's queue and outcomes -------------------------------- */

static void deliver(weft__iso_t *iso, struct run *r, size_t i, const weft__iso_outcome_t *o)
{
    if (o->kind == WEFT__ISO_CRASHED)
        iso->stats.crashed++;
    else if (o->kind == WEFT__ISO_TIMED_OUT)
        iso->stats.timed_out++;
    r->done++;
    r->on_result(r->arg, i, o);
}

static void deliver_simple(weft__iso_t *iso, struct run *r, size_t i,
                           enum weft__iso_outcome_kind kind, const char *msg)
{
    weft__iso_outcome_t o = {.kind = kind, .exit_status = -1, .msg = msg, .msg_len = strlen(msg)};
    deliver(iso, r, i, &o);
}

static void requeue(weft__iso_t *iso, size_t i)
{
    iso->retry[(iso->rhead + iso->rn) % iso->rcap] = i;
    iso->rn++;
}

static size_t queued(const weft__iso_t *iso, const struct run *r)
{
    return iso->rn + (r->count - r->next);
}

static size_t dequeue(weft__iso_t *iso, struct run *r)
{
    if (iso->rn) {
        size_t i = iso->retry[iso->rhead];
        iso->rhead = (iso->rhead + 1) % iso->rcap;
        iso->rn--;
        return i;
    }
    return r->next++;
}

/* Every queued position gets `kind` (NOT_RUN, or FAILED with msg). */
static void drain(weft__iso_t *iso, struct run *r, enum weft__iso_outcome_kind kind,
                  const char *msg)
{
    while (queued(iso, r))
        deliver_simple(iso, r, dequeue(iso, r), kind, msg);
}

/* The worker is gone (EOF, send error, timeout, protocol error): reap it,
 * give its current item `kind` (CRASHED from the wait status unless told
 * otherwise), re-queue the rest of its batch. */
static void worker_lost(weft__iso_t *iso, struct run *r, unsigned id,
                        enum weft__iso_outcome_kind kind, const char *why)
{
    struct worker *w = &iso->w[id];
    enum wstate was = w->st;
    int st = kill_reap(w);
    if (was == W_STARTING) {
        if (!w->init_failed) {
            char d[128];
            describe_status(d, sizeof d, st);
            snprintf(iso->gone_msg, sizeof iso->gone_msg, "worker %u died during init: %s", id, d);
        }
        w->fail_streak++;
    }
    if (was != W_BUSY || !r)
        return;
    if (kind == WEFT__ISO_CRASHED && stop_level(iso) >= 2)
        kind = WEFT__ISO_NOT_RUN; /* killed by stop now, not by its item */
    /* Its current item is q[qhead], unless that one was not wholly sent. */
    if (w->qn > w->unsent) {
        weft__iso_outcome_t o = {.kind = kind, .exit_status = -1};
        if (kind == WEFT__ISO_CRASHED) {
            if (WIFSIGNALED(st))
                o.signal = WTERMSIG(st);
            else if (WIFEXITED(st))
                o.exit_status = WEXITSTATUS(st);
            describe_status(iso->msg, sizeof iso->msg, st);
        } else {
            snprintf(iso->msg, sizeof iso->msg, "%s", why ? why : "");
        }
        o.msg = iso->msg;
        o.msg_len = strlen(iso->msg);
        size_t i = w->q[w->qhead];
        w->qhead = (w->qhead + 1) % QCAP;
        w->qn--;
        deliver(iso, r, i, &o);
    }
    for (; w->qn; w->qn--, w->qhead = (w->qhead + 1) % QCAP)
        requeue(iso, w->q[w->qhead]);
    w->unsent = 0;
}

/* ---- supervisor: I/O --------------------------------------------------------- */

/* The batch size the estimate asks for: ~1 ms of work, 1..MAX_BATCH. */
static size_t target_batch(const weft__iso_t *iso)
{
    if (iso->per_item_ns <= 0)
        return 1;
    double want = BATCH_TARGET_NS / iso->per_item_ns;
    return want >= MAX_BATCH ? MAX_BATCH : want < 1 ? 1 : (size_t)want;
}

/* One message from worker id.  0, or -EPROTO (the caller kills it). */
static int handle_msg(weft__iso_t *iso, struct run *r, unsigned id, const struct msg_hdr *h,
                      const unsigned char *body)
{
    struct worker *w = &iso->w[id];
    if (h->type == MSG_READY) {
        if (w->st != W_STARTING)
            return -EPROTO;
        if (h->status == 0) {
            w->st = W_IDLE;
            w->fail_streak = 0;
        } else {
            w->init_failed = true; /* it exits; its EOF comes next */
            snprintf(iso->gone_msg, sizeof iso->gone_msg, "%.*s", (int)h->msg_len,
                     (const char *)body);
            if (!h->msg_len)
                snprintf(iso->gone_msg, sizeof iso->gone_msg, "worker %u: init failed", id);
        }
        return 0;
    }
    if (h->type != MSG_REPLY || w->st != W_BUSY || !r || w->qn <= w->unsent ||
        h->index != r->first + w->q[w->qhead])
        return -EPROTO;
    weft__iso_outcome_t o = {
        .kind = h->status ? WEFT__ISO_FAILED : WEFT__ISO_OK,
        .exit_status = -1,
        .code = h->status,
        .records = h->records,
        .bytes = h->len ? body : NULL,
        .len = h->len,
        .msg = h->msg_len ? (const char *)body + h->len : "",
        .msg_len = h->msg_len,
    };
    size_t i = w->q[w->qhead];
    w->qhead = (w->qhead + 1) % QCAP;
    if (--w->qn == 0)
        w->st = W_IDLE;
    w->item_start = mono_ns();
    double ns = h->ns > 1 ? (double)h->ns : 1;
    iso->per_item_ns = iso->per_item_ns > 0 ? 0.875 * iso->per_item_ns + 0.125 * ns : ns;
    deliver(iso, r, i, &o);
    return 0;
}

/* Reads what is there and handles whole messages.  0, 1 at EOF (or a read
 * error: same thing for us), -EPROTO or -ENOMEM. */
static int worker_read(weft__iso_t *iso, struct run *r, unsigned id)
{
    struct worker *w = &iso->w[id];
    for (int rounds = 0; rounds < 64; rounds++) {
        if (w->rcap - w->rlen < 65536 && grow(&w->rbuf, &w->rcap, w->rlen + 65536))
            return -ENOMEM;
        ssize_t k = recv(w->fd, w->rbuf + w->rlen, w->rcap - w->rlen, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (k <= 0)
            return 1;
        w->rlen += (size_t)k;
        while (w->rlen - w->roff >= sizeof(struct msg_hdr)) {
            struct msg_hdr h;
            memcpy(&h, w->rbuf + w->roff, sizeof h);
            size_t total = sizeof h + (size_t)h.len + h.msg_len;
            if (w->rlen - w->roff < total) {
                /* Make room for the whole message at once: MB replies. */
                if (w->roff) {
                    memmove(w->rbuf, w->rbuf + w->roff, w->rlen - w->roff);
                    w->rlen -= w->roff;
                    w->roff = 0;
                }
                if (grow(&w->rbuf, &w->rcap, total))
                    return -ENOMEM;
                break;
            }
            int rc = handle_msg(iso, r, id, &h, w->rbuf + w->roff + sizeof h);
            if (rc)
                return rc;
            w->roff += total;
            if (r && stop_level(iso) >= 2)
                return 0; /* stop now: what is unread is NOT_RUN */
        }
        if (w->roff == w->rlen)
            w->roff = w->rlen = 0;
    }
    return 0;
}

/* Sends what the socket takes.  0, or 1 if the worker is gone. */
static int worker_send(struct worker *w)
{
    while (w->soff < w->slen) {
        ssize_t k = send(w->fd, w->sbuf + w->soff, w->slen - w->soff, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            w->soff += (size_t)k;
            if (w->soff == w->slen)
                w->unsent = 0;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return 1;
    }
    return 0;
}

static unsigned usable_workers(const weft__iso_t *iso)
{
    unsigned k = 0;
    for (unsigned j = 0; j < iso->n; j++)
        k += iso->w[j].st != W_GONE;
    return k;
}

/* Whether the worker should be sent a batch now: it is idle, or its last
 * request is wholly sent and it holds less than one batch of work. */
static bool wants_work(const weft__iso_t *iso, const struct worker *w)
{
    return w->st == W_IDLE ||
           (w->st == W_BUSY && w->soff == w->slen && w->qn < target_batch(iso));
}

/* Sends the worker its next batch.  0, 1 if it is gone, -ENOMEM. */
static int dispatch(weft__iso_t *iso, struct run *r, unsigned id)
{
    struct worker *w = &iso->w[id];
    size_t b = target_batch(iso);
    /* Grow at most 2x per batch: one fast item may be luck. */
    if (b > 2 * iso->bsize)
        b = iso->bsize ? 2 * iso->bsize : 1;
    iso->bsize = b;
    /* At the end of a run, share what is left instead. */
    unsigned alive = usable_workers(iso);
    size_t fair = (queued(iso, r) + alive - 1) / (alive ? alive : 1);
    if (b > fair)
        b = fair ? fair : 1;
    size_t n = 0, payload = 0, tail = w->qhead + w->qn;
    while (n < b && queued(iso, r)) {
        size_t i = dequeue(iso, r);
        r->get_item(r->arg, i, &iso->item[n], &iso->item_len[n]);
        payload += sizeof(struct req_item) + iso->item_len[n];
        w->q[(tail + n++) % QCAP] = i;
    }
    if (grow(&w->sbuf, &w->scap, sizeof(struct req_hdr) + payload)) {
        for (size_t k = 0; k < n; k++)
            requeue(iso, w->q[(tail + k) % QCAP]);
        return -ENOMEM;
    }
    struct req_hdr h = {.n = (uint32_t)n, .payload = payload};
    memcpy(w->sbuf, &h, sizeof h);
    size_t off = sizeof h;
    for (size_t k = 0; k < n; k++) {
        size_t len = iso->item_len[k];
        struct req_item it = {.index = r->first + w->q[(tail + k) % QCAP], .len = len};
        memcpy(w->sbuf + off, &it, sizeof it);
        off += sizeof it;
        if (len)
            memcpy(w->sbuf + off, iso->item[k], len);
        off += len;
    }
    if (w->qn == 0)
        w->item_start = mono_ns();
    w->qn += n;
    w->unsent = n;
    w->slen = off;
    w->soff = 0;
    w->st = W_BUSY;
    return worker_send(w);
}

/* Reads worker j and acts on what it says (or that it is gone). */
static void read_worker(weft__iso_t *iso, struct run *r, unsigned j)
{
    int rc = worker_read(iso, r, j);
    if (rc == 1) {
        worker_lost(iso, r, j, WEFT__ISO_CRASHED, NULL);
    } else if (rc == -EPROTO) {
        fprintf(stderr, "weft: isolate: worker %u sent a malformed message; killed\n", j);
        worker_lost(iso, r, j, WEFT__ISO_FAILED, "worker sent a malformed reply");
    } else if (rc == -ENOMEM) {
        worker_lost(iso, r, j, WEFT__ISO_FAILED, "out of memory for the reply");
    }
}

/* A send to worker j failed: it is gone.  The replies it wrote before it
 * died come first (they answer items it finished), then its EOF, which
 * names the culprit. */
static void send_failed(weft__iso_t *iso, struct run *r, unsigned j)
{
    for (int k = 0; k < 10000 && iso->w[j].fd >= 0; k++) {
        if (r && stop_level(iso) >= 2)
            return;
        read_worker(iso, r, j);
    }
    if (iso->w[j].fd >= 0)
        worker_lost(iso, r, j, WEFT__ISO_CRASHED, NULL);
}

/*
 * One wakeup: poll the live sockets (at most POLL_MAX_MS, less if a
 * timeout is due), read and send, enforce timeouts.  r may be NULL (start).
 */
static void pump(weft__iso_t *iso, struct run *r)
{
    struct pollfd pf[MAX_WORKERS];
    unsigned ids[MAX_WORKERS], np = 0;
    int64_t now = mono_ns();
    int64_t tmo_ns = iso->s.timeout > 0 ? (int64_t)(iso->s.timeout * 1e9) : 0;
    int64_t wake = now + POLL_MAX_MS * 1000000LL;
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        if (w->fd < 0)
            continue;
        if (tmo_ns && w->qn > w->unsent && w->item_start + tmo_ns < wake)
            wake = w->item_start + tmo_ns;
        pf[np] = (struct pollfd){.fd = w->fd, .events = POLLIN};
        if (w->soff < w->slen)
            pf[np].events |= POLLOUT;
        ids[np++] = j;
    }
    int64_t left = wake - now;
    if (left < 0)
        left = 0;
    struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
    int n = ppoll(pf, np, &ts, NULL);
    if (n < 0)
        n = 0; /* EINTR: a signal; the caller re-checks the stop flags */
    for (unsigned k = 0; k < np && n > 0; k++) {
        unsigned j = ids[k];
        struct worker *w = &iso->w[j];
        if (!pf[k].revents || w->fd < 0)
            continue;
        if (r && stop_level(iso) >= 2)
            return; /* on_result asked to stop now: the caller kills all */
        if ((pf[k].revents & POLLOUT) && worker_send(w)) {
            send_failed(iso, r, j);
            continue;
        }
        if (pf[k].revents & (POLLIN | POLLHUP | POLLERR))
            read_worker(iso, r, j);
    }
    if (!tmo_ns || (r && stop_level(iso) >= 2))
        return;
    now = mono_ns();
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        if (w->st == W_BUSY && w->qn > w->unsent && now - w->item_start >= tmo_ns) {
            char why[96];
            snprintf(why, sizeof why, "timed out after %g s (worker killed)", iso->s.timeout);
            worker_lost(iso, r, j, WEFT__ISO_TIMED_OUT, why);
        }
    }
}

/* ---- public API -------------------------------------------------------------- */

void weft__iso_destroy(weft__iso_t **pp)
{
    weft__iso_t *iso = pp ? *pp : NULL;
    if (!iso)
        return;
    /* EOF on each socket asks the worker to run child_fini and exit; its
     * own end closes as it exits, which we see as EOF here. */
    for (unsigned j = 0; j < iso->n; j++)
        if (iso->w[j].fd >= 0)
            shutdown(iso->w[j].fd, SHUT_WR);
    int64_t deadline = mono_ns() + DESTROY_GRACE_NS;
    for (;;) {
        struct pollfd pf[MAX_WORKERS];
        unsigned ids[MAX_WORKERS], np = 0;
        for (unsigned j = 0; j < iso->n; j++)
            if (iso->w[j].fd >= 0) {
                pf[np] = (struct pollfd){.fd = iso->w[j].fd, .events = POLLIN};
                ids[np++] = j;
            }
        int64_t left = deadline - mono_ns();
        if (!np || left <= 0)
            break;
        int n = poll(pf, np, (int)((left + 999999) / 1000000));
        for (unsigned k = 0; k < np && n > 0; k++) {
            if (!pf[k].revents)
                continue;
            char scratch[4096];
            ssize_t got = recv(pf[k].fd, scratch, sizeof scratch, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                close(iso->w[ids[k]].fd);
                iso->w[ids[k]].fd = -1;
            }
        }
    }
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        pid_t pid = atomic_exchange_explicit(&w->pid, 0, memory_order_relaxed);
        if (pid > 0) {
            int st;
            pid_t got;
            while ((got = waitpid(pid, &st, WNOHANG)) < 0 && errno == EINTR)
                ;
            if (got == 0) {
                kill(pid, SIGKILL);
                reap(pid);
            }
        }
        if (w->fd >= 0)
            close(w->fd);
        free(w->sbuf);
        free(w->rbuf);
    }
    free(iso->retry);
    free(iso);
    *pp = NULL;
}

int weft__iso_start(weft__iso_t **out, const weft__iso_settings_t *s, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if (!s || !s->child_item || s->workers == 0 || s->workers > MAX_WORKERS ||
        !(s->timeout >= 0)) {
        snprintf(err, err ? errlen : 0, "isolate: workers must be 1..%u, child_item set, timeout >= 0",
                 MAX_WORKERS);
        return -EINVAL;
    }
    weft__iso_t *iso = calloc(1, sizeof *iso + s->workers * sizeof(struct worker));
    if (!iso)
        goto nomem;
    iso->s = *s;
    iso->n = s->workers;
    iso->super_pid = getpid();
    iso->rcap = (size_t)s->workers * QCAP;
    iso->retry = malloc(iso->rcap * sizeof *iso->retry);
    if (!iso->retry) {
        free(iso);
        goto nomem;
    }
    for (unsigned j = 0; j < iso->n; j++)
        iso->w[j].fd = -1;

    int rc = 0;
    for (unsigned j = 0; j < iso->n && !rc; j++) {
        rc = spawn(iso, j);
        if (rc)
            snprintf(err, err ? errlen : 0, "isolate: starting worker %u: %s", j, strerror(-rc));
    }
    /* Wait for every READY; the first failure fails the start. */
    while (!rc) {
        unsigned starting = 0;
        for (unsigned j = 0; j < iso->n; j++) {
            if (iso->w[j].fail_streak) {
                snprintf(err, err ? errlen : 0, "%s", iso->gone_msg);
                rc = -ECHILD;
            }
            starting += iso->w[j].st == W_STARTING;
        }
        if (rc || !starting)
            break;
        if (stop_level(iso)) {
            snprintf(err, err ? errlen : 0, "isolate: stopped while workers started");
            rc = -ECANCELED;
            break;
        }
        pump(iso, NULL);
    }
    if (rc) {
        for (unsigned j = 0; j < iso->n; j++)
            kill_reap(&iso->w[j]);
        weft__iso_destroy(&iso);
        return rc;
    }
    *out = iso;
    return 0;
nomem:
    snprintf(err, err ? errlen : 0, "isolate: out of memory");
    return -ENOMEM;
}

/* Forks a replacement into every DEAD slot, unless it failed too often. */
static void respawn(weft__iso_t *iso)
{
    if (iso->all_gone)
        return;
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        if (w->st != W_DEAD)
            continue;
        if (w->fail_streak >= RESPAWN_LIMIT) {
            w->st = W_GONE;
            continue;
        }
        int rc = spawn(iso, j);
        if (rc) {
            snprintf(iso->gone_msg, sizeof iso->gone_msg, "isolate: restarting worker %u: %s", j,
                     strerror(-rc));
            if (++w->fail_streak >= RESPAWN_LIMIT)
                w->st = W_GONE;
        }
    }
    iso->all_gone = !usable_workers(iso);
}

int weft__iso_run(weft__iso_t *iso, size_t count, uint64_t first_index,
                  void (*get_item)(void *arg, size_t i, const void **bytes, size_t *len),
                  void (*on_result)(void *arg, size_t i, const weft__iso_outcome_t *o),
                  void *arg)
{
    if (!iso || !get_item || !on_result)
        return -EINVAL;
    struct run r = {.count = count, .first = first_index, .get_item = get_item,
                    .on_result = on_result, .arg = arg};
    iso->rhead = iso->rn = 0;
    int ret = 0;
    while (r.done < r.count) {
        int stop = stop_level(iso);
        if (stop) {
            ret = -ECANCELED;
            if (stop >= 2) {
                for (unsigned j = 0; j < iso->n; j++) {
                    struct worker *w = &iso->w[j];
                    for (; w->qn; w->qn--, w->qhead = (w->qhead + 1) % QCAP)
                        deliver_simple(iso, &r, w->q[w->qhead], WEFT__ISO_NOT_RUN, "");
                    w->unsent = 0;
                    if (w->st != W_GONE)
                        kill_reap(w);
                }
            }
            drain(iso, &r, WEFT__ISO_NOT_RUN, "");
            if (r.done == r.count)
                break;
        } else {
            respawn(iso);
        }
        if (iso->all_gone) {
            ret = -ECHILD;
            drain(iso, &r, WEFT__ISO_FAILED, iso->gone_msg);
            break; /* nothing can be in flight: every slot is GONE */
        }
        if (!stop) {
            for (unsigned j = 0; j < iso->n && queued(iso, &r); j++) {
                if (!wants_work(iso, &iso->w[j]))
                    continue;
                int rc = dispatch(iso, &r, j);
                if (rc == 1)
                    send_failed(iso, &r, j);
                else if (rc)
                    break; /* -ENOMEM: try again at the next wakeup */
            }
        }
        if (r.done < r.count)
            pump(iso, &r);
        if (iso->s.tick)
            iso->s.tick(iso->s.arg);
    }
    /* Replacements start while the runner writes this window out. */
    if (!stop_level(iso))
        respawn(iso);
    return ret;
}

void weft__iso_stop(weft__iso_t *iso, bool now)
{
    int want = now ? 2 : 1;
    int cur = atomic_load_explicit(&iso->stop, memory_order_relaxed);
    while (cur < want &&
           !atomic_compare_exchange_weak_explicit(&iso->stop, &cur, want, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    if (now)
        weft__iso_kill_all(iso);
}

void weft__iso_kill_all(const weft__iso_t *iso)
{
    for (unsigned j = 0; j < iso->n; j++) {
        pid_t pid = atomic_load_explicit(&iso->w[j].pid, memory_order_relaxed);
        if (pid > 0)
            kill(pid, SIGKILL);
    }
}

void weft__iso_get_stats(const weft__iso_t *iso, weft__iso_stats_t *st)
{
    *st = iso->stats;
}
