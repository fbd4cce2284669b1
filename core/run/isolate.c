/* SPDX-License-Identifier: MIT */
/*
 * Crash isolation: a single-threaded supervisor of persistent forked
 * workers (see isolate.h for the model and the contract).
 *
 * Wire format (native endianness: both ends are the same binary).
 *   request (socket, supervisor -> worker):
 *            req_hdr {entries, payload bytes}, then per entry
 *            req_entry {index, len, count} and len bytes; count > 1 only
 *            with len 0: items index .. index + count - 1, all empty.
 *   messages (socket, worker -> supervisor): msg_hdr {type, ...}
 *            READY once after child_init; NOTE after each request (its
 *            items and time: the batch size's measure), and whenever the
 *            worker waits for ring space or published work for NOTE_NS;
 *            REPLY for a reply too big for the ring (see REC_SOCKET).
 *   replies (a shared ring per worker, worker -> supervisor): records
 *            rec {status, records, len, msg_len, count, flags, index}, then
 *            the bytes and the message, padded to 8; a record never wraps
 *            (REC_WRAP, or less than a header left, skips to the start).
 *            count > 1: a run of ok replies without bytes or message.
 *            REC_SOCKET: this item's reply is the next REPLY on the socket.
 *
 * Why a ring: a reply per item over the socket costs a write(2) and a
 * read(2) per item.  In the ring a reply costs a memcpy; it survives its
 * worker's crash (the mapping is the supervisor's), so every item the
 * worker finished is still delivered and the first one it did not answer
 * is the culprit.  A run of empty ok replies (output = none) is kept in
 * the ring header (run_first/run_count) while it grows and written as one
 * record when it ends; after a crash the header is read as well.
 *
 * Supervisor invariants, per worker slot:
 *   DEAD     no process (pid 0, fd -1); respawned unless stopping or given up
 *   STARTING forked, READY not yet read; holds no item
 *   IDLE     ready, holds no item
 *   BUSY     holds qn items, q's spans from qhead, in the order it runs them: up
 *            to two requests (the next is sent before the current one
 *            ends, so the worker never waits for the supervisor).  The last
 *            `unsent` of them belong to a request not wholly sent yet; if
 *            qn > unsent, the first one runs since item_start (the send, or the
 *            last progress the supervisor saw: never too early).
 *   GONE     failed to restart RESPAWN_LIMIT times in a row; never used again
 * An item is in exactly one place: the claimed range [next, end), the
 * retry ring, one worker's q, or delivered.
 */
#include "isolate.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "children.h"
#include "util.h"

#define MAX_WORKERS 1024u
#define MAX_BATCH 16384u
#define QSPANS 4096u              /* runs of consecutive items a worker holds */
#define BATCH_TARGET_NS 1000000.0 /* ~1 ms of work per request */
#define POLL_MAX_MS 50
#define RESPAWN_LIMIT 3u
#define DESTROY_GRACE_NS 2000000000LL
#define CHILD_MSG_SIZE 1024
#define RING_BYTES ((size_t)1 << 20) /* per worker */
#define RING_BIG (RING_BYTES / 4)    /* larger replies go over the socket */
#define NOTE_NS 2000000LL            /* published work is announced this often */

enum { MSG_READY = 1, MSG_REPLY = 2, MSG_NOTE = 3 };
enum { REC_WRAP = 1, REC_SOCKET = 2 };

struct req_hdr {
    uint32_t n;     /* entries */
    uint32_t items; /* items in them, capped at UINT32_MAX */
    uint64_t payload;
};
struct req_entry {
    uint64_t index;
    uint32_t len;
    uint32_t count;
};
struct msg_hdr {
    uint32_t type;
    int32_t status;
    uint64_t index; /* REPLY: the item; NOTE: items of the request       */
    uint32_t records;
    uint32_t len;
    uint32_t msg_len;
    uint32_t attempts; /* REPLY: its timing (settings.timed), else 0   */
    uint64_t ns; /* NOTE: the request's time in the worker              */
    int64_t t0, t1; /* REPLY: CLOCK_MONOTONIC ns at its start and end    */
};
struct rec {
    int32_t status; /* 0 ok, else the child's failure code */
    uint32_t records;
    uint32_t len, msg_len;
    uint32_t count; /* items: > 1 only for a run of empty ok replies */
    uint32_t flags; /* REC_WRAP, REC_SOCKET */
    uint64_t index; /* the first item */
    uint32_t attempts; /* settings.timed: the item's timing, else 0      */
    uint32_t pad;
    int64_t t0, t1;
};

/* Shared by the supervisor and one worker process (MAP_SHARED). */
struct ring {
    _Atomic uint64_t head;    /* bytes published by the worker        */
    _Atomic uint64_t started; /* items the worker began               */
    char pad0[48];
    _Atomic uint64_t tail;     /* bytes consumed by the supervisor     */
    _Atomic uint32_t tail_seq; /* futex word: bumped at each consumption */
    _Atomic uint32_t waiting;  /* the worker sleeps on tail_seq        */
    char pad1[48];
    /* The run of empty ok replies not yet in the ring (worker-written;
     * the supervisor reads it only once the worker is dead). */
    _Atomic uint64_t run_first, run_count;
    _Atomic uint32_t run_records;
    char pad2[44];
    unsigned char data[RING_BYTES];
};

/* Items first .. first + n - 1. */
struct span {
    uint64_t first, n;
};

enum wstate { W_DEAD, W_STARTING, W_IDLE, W_BUSY, W_GONE };

struct worker {
    _Atomic(pid_t) pid; /* read by weft__iso_kill_all from signal handlers */
    int fd;
    int pidfd; /* polls readable once the process exited; -1 without pidfds */
    enum wstate st;
    unsigned fail_streak; /* restarts that failed in a row */
    bool init_failed;     /* READY carried a failure; EOF follows */
    struct ring *ring;
    uint64_t tail;        /* the ring's tail, as consumed here */
    uint64_t started;     /* the ring's started, as last seen */
    struct span *q;       /* ring of QSPANS: items held, oldest first */
    size_t qhead, qspans; /* its first span, spans in use */
    size_t qn, unsent;    /* items held; of them, not wholly sent */
    int64_t item_start;
    unsigned char *sbuf; /* request being sent: [soff, slen) left */
    size_t scap, slen, soff;
    unsigned char *rbuf; /* received, unparsed: [roff, rlen) */
    size_t rcap, rlen, roff;
};

struct run {
    const weft__iso_feed_t *f;
    uint64_t next, end; /* claimed, not yet dispatched */
    bool ended;         /* the feed said no more (or the run stops) */
};

struct weft__iso {
    weft__iso_settings_t s;
    unsigned n;
    pid_t super_pid;
    _Atomic int stop; /* weft__iso_stop: 0, 1 soon, 2 now */
    bool all_gone;
    weft__iso_stats_t stats;
    double per_item_ns; /* EWMA of the children's item times, 0 = unknown */
    size_t bsize;       /* size of the last batch sent */
    struct run *cur;    /* the serve in progress (weft__iso_again) */
    /* Re-queued items, oldest first. */
    uint64_t *retry;
    size_t rcap, rhead, rn;
    char gone_msg[CHILD_MSG_SIZE + 64]; /* why the last restart failed */
    char msg[CHILD_MSG_SIZE + 64];      /* outcome text being delivered */
    struct worker w[];
};

/* ---- small helpers ---------------------------------------------------------- */

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

static size_t rec_size(size_t len, size_t msg_len)
{
    return (sizeof(struct rec) + len + msg_len + 7) & ~(size_t)7;
}

static void futex_wait(_Atomic uint32_t *word, uint32_t seen, long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void describe_status(char *buf, size_t size, int st)
{
    if (WIFSIGNALED(st))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
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
    int b = iso->s.stop_flag
                ? atomic_load_explicit(iso->s.stop_flag, memory_order_relaxed)
                : 0;
    if (b > a) {
        atomic_store_explicit(&iso->stop, b > 2 ? 2 : b, memory_order_relaxed);
        return b > 2 ? 2 : b;
    }
    return a;
}

/* ---- child side ------------------------------------------------------------- */

struct weft__iso_reply {
    unsigned char *buf; /* [bytes: len][msg: msg_len] */
    size_t cap;
    int32_t status;
    uint32_t records;
    size_t len, msg_len;
    uint32_t attempts;
    int64_t t0, t1;
};

static void reply_reset(weft__iso_reply_t *r)
{
    r->status = 0;
    r->records = 0;
    r->len = r->msg_len = 0;
    r->attempts = 0;
}

void weft__iso_reply_time(weft__iso_reply_t *r, unsigned attempts, int64_t t0_ns,
                          int64_t t1_ns)
{
    r->attempts = attempts;
    r->t0 = t0_ns;
    r->t1 = t1_ns;
}

int weft__iso_reply_ok(weft__iso_reply_t *r, uint32_t records, const void *bytes,
                       size_t len)
{
    if (len > UINT32_MAX)
        return -EOVERFLOW;
    if (grow(&r->buf, &r->cap, len))
        return -ENOMEM;
    if (len)
        memcpy(r->buf, bytes, len);
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
    if (grow(&r->buf, &r->cap, msg_len))
        return -ENOMEM; /* still a failure, without its text */
    if (msg_len)
        memcpy(r->buf, msg, msg_len);
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
        if (!(sa.sa_flags & SA_SIGINFO) &&
            (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
            continue;
        signal(sig, SIG_DFL);
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* A worker's side of its ring and socket. */
typedef struct child {
    int fd;
    struct ring *ring;
    uint64_t head; /* published: ring->head */
    uint64_t run_first, run_count;
    uint32_t run_records;
    int64_t noted; /* when the supervisor was last told */
    bool timed;    /* settings.timed: no runs, every reply its record */
} child_t;

static void child_note(child_t *c, uint64_t items, uint64_t ns)
{
    struct msg_hdr h = {.type = MSG_NOTE, .index = items, .ns = ns};
    if (write_full(c->fd, &h, sizeof h))
        _exit(WEFT__ISO_EXIT_PROTO);
    c->noted = weft__mono_ns();
}

/* Room for `size` bytes at the ring's head, without wrapping; waits for
 * the supervisor (telling it first) while the ring is full. */
static unsigned char *ring_room(child_t *c, size_t size)
{
    struct ring *g = c->ring;
    for (;;) {
        size_t pos = (size_t)(c->head % RING_BYTES), to_end = RING_BYTES - pos;
        size_t need = size <= to_end ? size : to_end + size;
        uint64_t tail = atomic_load_explicit(&g->tail, memory_order_acquire);
        if (RING_BYTES - (c->head - tail) >= need) {
            if (size > to_end) { /* skip to the start */
                if (to_end >= sizeof(struct rec)) {
                    struct rec w = {.flags = REC_WRAP};
                    memcpy(g->data + pos, &w, sizeof w);
                }
                c->head += to_end;
                pos = 0;
            }
            return g->data + pos;
        }
        /* Full: sleep until the supervisor consumes (a Dekker pair with
         * its store of tail, then its load of waiting). */
        uint32_t seq = atomic_load(&g->tail_seq);
        atomic_store(&g->waiting, 1);
        if (atomic_load(&g->tail) == tail) {
            child_note(c, 0, 0);
            futex_wait(&g->tail_seq, seq, 50000000L);
        }
        atomic_store(&g->waiting, 0);
    }
}

static void ring_publish(child_t *c, size_t size)
{
    c->head += size;
    atomic_store_explicit(&c->ring->head, c->head, memory_order_release);
}

/* The run of empty ok replies goes into the ring as one record. */
static void run_flush(child_t *c)
{
    if (!c->run_count)
        return;
    struct rec h = {.records = c->run_records,
                    .index = c->run_first,
                    .count = (uint32_t)c->run_count};
    memcpy(ring_room(c, sizeof h), &h, sizeof h);
    ring_publish(c, sizeof h);
    c->run_count = 0;
    atomic_store_explicit(&c->ring->run_count, 0, memory_order_relaxed);
}

static void child_reply(child_t *c, uint64_t index, const weft__iso_reply_t *rp)
{
    struct ring *g = c->ring;
    if (rp->status == 0 && rp->len == 0 && !c->timed) {
        if (c->run_count && c->run_records == rp->records &&
            c->run_first + c->run_count == index && c->run_count < UINT32_MAX) {
            c->run_count++;
        } else {
            run_flush(c);
            c->run_first = index;
            c->run_count = 1;
            c->run_records = rp->records;
            atomic_store_explicit(&g->run_first, index, memory_order_relaxed);
            atomic_store_explicit(&g->run_records, rp->records, memory_order_relaxed);
        }
        /* Read by the supervisor only after this process died. */
        atomic_store_explicit(&g->run_count, c->run_count, memory_order_relaxed);
        return;
    }
    run_flush(c);
    struct rec h = {.status = rp->status,
                    .records = rp->records,
                    .len = (uint32_t)rp->len,
                    .msg_len = (uint32_t)rp->msg_len,
                    .count = 1,
                    .index = index,
                    .attempts = rp->attempts,
                    .t0 = rp->t0,
                    .t1 = rp->t1};
    size_t size = rec_size(rp->len, rp->msg_len);
    if (size > RING_BIG) {
        /* Its place in the ring, then the reply itself on the socket. */
        h.flags = REC_SOCKET;
        h.len = h.msg_len = 0;
        memcpy(ring_room(c, sizeof h), &h, sizeof h);
        ring_publish(c, sizeof h);
        struct msg_hdr mh = {.type = MSG_REPLY,
                             .status = rp->status,
                             .index = index,
                             .records = rp->records,
                             .len = (uint32_t)rp->len,
                             .msg_len = (uint32_t)rp->msg_len,
                             .attempts = rp->attempts,
                             .t0 = rp->t0,
                             .t1 = rp->t1};
        if (write_full(c->fd, &mh, sizeof mh) ||
            write_full(c->fd, rp->buf, rp->len + rp->msg_len))
            _exit(WEFT__ISO_EXIT_PROTO);
        return;
    }
    unsigned char *p = ring_room(c, size);
    memcpy(p, &h, sizeof h);
    if (rp->len + rp->msg_len)
        memcpy(p + sizeof h, rp->buf, rp->len + rp->msg_len);
    ring_publish(c, size);
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

    child_t c = {.fd = fd, .ring = iso->w[id].ring, .timed = iso->s.timed};
    uint64_t started = 0;
    unsigned char *req = NULL;
    size_t req_cap = 0;
    weft__iso_reply_t reply = {0};
    for (;;) {
        struct req_hdr h;
        int r = read_full(fd, &h, sizeof h);
        if (r == 0)
            break; /* orderly shutdown */
        if (r < 0 || h.payload > SIZE_MAX ||
            grow(&req, &req_cap, (size_t)h.payload ? (size_t)h.payload : 1) ||
            read_full(fd, req, (size_t)h.payload) != 1)
            _exit(WEFT__ISO_EXIT_PROTO);
        size_t off = 0;
        uint64_t items = 0;
        int64_t t0 = weft__mono_ns();
        for (uint32_t k = 0; k < h.n; k++) {
            struct req_entry e;
            if (h.payload - off < sizeof e)
                _exit(WEFT__ISO_EXIT_PROTO);
            memcpy(&e, req + off, sizeof e);
            off += sizeof e;
            if (h.payload - off < e.len || e.count == 0 || (e.count > 1 && e.len))
                _exit(WEFT__ISO_EXIT_PROTO);
            for (uint32_t j = 0; j < e.count; j++) {
                atomic_store_explicit(&c.ring->started, ++started, memory_order_relaxed);
                reply_reset(&reply);
                iso->s.child_item(iso->s.arg, id, e.index + j, e.len ? req + off : NULL,
                                  e.len, &reply);
                child_reply(&c, e.index + j, &reply);
                /* Slow items: what is done is announced every NOTE_NS. */
                if ((++items & 63) == 0 || h.items < 64) {
                    int64_t t = weft__mono_ns();
                    if (t - c.noted >= NOTE_NS) {
                        run_flush(&c);
                        child_note(&c, 0, 0);
                    }
                }
            }
            off += e.len;
        }
        run_flush(&c);
        child_note(&c, items, (uint64_t)(weft__mono_ns() - t0));
    }
    if (iso->s.child_fini)
        iso->s.child_fini(iso->s.arg, id);
    _exit(
        0); /* not exit(): the parent's atexit handlers and stdio buffers are not ours */
}

/* ---- supervisor: spawning and reaping ---------------------------------------- */

/* Forks worker `id` into a DEAD slot; it becomes STARTING.  -errno. */
static int spawn(weft__iso_t *iso, unsigned id)
{
    struct worker *w = &iso->w[id];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    /* A fresh ring: the one before was consumed when its worker died. */
    struct ring *g = w->ring;
    atomic_store(&g->head, 0);
    atomic_store(&g->started, 0);
    atomic_store(&g->tail, 0);
    atomic_store(&g->waiting, 0);
    atomic_store(&g->run_count, 0);
    w->tail = w->started = 0;
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
        /* Other workers' sockets: holding them would hide their EOF; their
         * rings: this process has no business there. */
        close(sv[0]);
        for (unsigned j = 0; j < iso->n; j++) {
            if (iso->w[j].fd >= 0)
                close(iso->w[j].fd);
            if (iso->w[j].pidfd >= 0)
                close(iso->w[j].pidfd);
            if (j != id)
                munmap(iso->w[j].ring, sizeof(struct ring));
        }
        child_main(iso, id, sv[1]);
    }
    close(sv[1]);
    atomic_store_explicit(&w->pid, pid, memory_order_relaxed);
    w->fd = sv[0];
    /* Its exit, seen at once: EOF on the socket waits for every process
     * that inherited the worker's end (a child the plugin forked). */
    w->pidfd = pidfd_open(pid, 0);
    w->st = W_STARTING;
    w->init_failed = false;
    w->qhead = w->qspans = w->qn = w->unsent = 0;
    w->slen = w->soff = 0;
    w->rlen = w->roff = 0;
    iso->stats.spawned++;
    return 0;
}

/* Waits for worker process pid to end (SIGKILLed first with `force`; a
 * worker that is already exiting keeps its own status), kills the children
 * it announced and had not reaped (weft__children_kill_owned: only now, as
 * it can start no more, and before the reap, while no other process can
 * have its number), then reaps it; returns its wait status. */
static int end_process(pid_t pid, bool force)
{
    if (force)
        kill(pid, SIGKILL);
    siginfo_t si;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    weft__children_kill_owned(pid);
    return reap(pid);
}

/* SIGKILLs (if still alive) and reaps the worker, and what it started;
 * returns its wait status.  The pid is cleared first, so kill_all never
 * signals a reused pid. */
static int kill_reap(struct worker *w)
{
    pid_t pid = atomic_exchange_explicit(&w->pid, 0, memory_order_relaxed);
    int st = 0;
    if (pid > 0)
        st = end_process(pid, true);
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    if (w->pidfd >= 0)
        close(w->pidfd);
    w->pidfd = -1;
    w->st = W_DEAD;
    w->slen = w->soff = w->rlen = w->roff = 0;
    return st;
}

/* ---- supervisor: the queue and outcomes --------------------------------------- */

static void deliver(weft__iso_t *iso, struct run *r, uint64_t index,
                    const weft__iso_outcome_t *o)
{
    if (o->kind == WEFT__ISO_CRASHED)
        iso->stats.crashed++;
    else if (o->kind == WEFT__ISO_TIMED_OUT)
        iso->stats.timed_out++;
    r->f->on_result(r->f->arg, index, o);
}

static void deliver_simple(weft__iso_t *iso, struct run *r, uint64_t index,
                           enum weft__iso_outcome_kind kind, const char *msg)
{
    weft__iso_outcome_t o = {
        .kind = kind, .exit_status = -1, .msg = msg, .msg_len = strlen(msg)};
    deliver(iso, r, index, &o);
}

static int requeue(weft__iso_t *iso, uint64_t index)
{
    if (iso->rn == iso->rcap) {
        size_t cap = iso->rcap * 2;
        uint64_t *p = malloc(cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        for (size_t k = 0; k < iso->rn; k++)
            p[k] = iso->retry[(iso->rhead + k) % iso->rcap];
        free(iso->retry);
        iso->retry = p;
        iso->rcap = cap;
        iso->rhead = 0;
    }
    iso->retry[(iso->rhead + iso->rn) % iso->rcap] = index;
    iso->rn++;
    return 0;
}

/* Claims more from the feed when the claimed range is used up. */
static void refill(weft__iso_t *iso, struct run *r)
{
    if (r->next < r->end || r->ended)
        return;
    uint64_t first;
    size_t n;
    int rc = stop_level(iso) ? -1 : r->f->claim(r->f->arg, &first, &n);
    if (rc < 0)
        r->ended = true;
    else if (rc > 0 && n) {
        r->next = first;
        r->end = first + n;
    }
}

static size_t queued(const weft__iso_t *iso, const struct run *r)
{
    return iso->rn + (size_t)(r->end - r->next);
}

static uint64_t dequeue(weft__iso_t *iso, struct run *r)
{
    if (iso->rn) {
        uint64_t i = iso->retry[iso->rhead];
        iso->rhead = (iso->rhead + 1) % iso->rcap;
        iso->rn--;
        return i;
    }
    return r->next++;
}

/* Every queued item (claimed, not sent) gets `kind` (NOT_RUN, or FAILED
 * with msg). */
static void settle_queued(weft__iso_t *iso, struct run *r,
                          enum weft__iso_outcome_kind kind, const char *msg)
{
    while (queued(iso, r))
        deliver_simple(iso, r, dequeue(iso, r), kind, msg);
}

/* Whether the oldest held items are first .. first + n - 1. */
static bool q_starts_with(const struct worker *w, uint64_t first, uint64_t n)
{
    return w->qn && w->q[w->qhead].first == first && w->q[w->qhead].n >= n;
}

static uint64_t q_pop(struct worker *w)
{
    struct span *s = &w->q[w->qhead];
    uint64_t i = s->first++;
    if (--s->n == 0) {
        w->qhead = (w->qhead + 1) % QSPANS;
        w->qspans--;
    }
    w->qn--;
    return i;
}

/* Drops the n oldest items, which q_starts_with said are one span's. */
static void q_pop_n(struct worker *w, uint64_t n)
{
    struct span *s = &w->q[w->qhead];
    s->first += n;
    s->n -= n;
    if (s->n == 0) {
        w->qhead = (w->qhead + 1) % QSPANS;
        w->qspans--;
    }
    w->qn -= n;
}

/* Whether items from `first` on can be appended (a span is left, or they
 * continue the last one). */
static bool q_can_push(const struct worker *w, uint64_t first)
{
    if (w->qspans) {
        const struct span *last = &w->q[(w->qhead + w->qspans - 1) % QSPANS];
        if (last->first + last->n == first)
            return true;
    }
    return w->qspans < QSPANS;
}

/* Appends items first .. first + n - 1 (q_can_push said yes). */
static void q_push(struct worker *w, uint64_t first, uint64_t n)
{
    struct span *last = w->qspans ? &w->q[(w->qhead + w->qspans - 1) % QSPANS] : NULL;
    if (last && last->first + last->n == first)
        last->n += n;
    else
        w->q[(w->qhead + w->qspans++) % QSPANS] = (struct span){first, n};
    w->qn += n;
}

/* ---- supervisor: the ring -------------------------------------------------------- */

/* Delivers what worker id published, up to a REC_SOCKET record (`big`:
 * that record's reply, read from the socket, delivered in its place).
 * 0, 1 when it stopped at a REC_SOCKET without `big`, -EPROTO. */
static int ring_read(weft__iso_t *iso, struct run *r, unsigned id,
                     const weft__iso_outcome_t *big, uint64_t big_index)
{
    struct worker *w = &iso->w[id];
    struct ring *g = w->ring;
    uint64_t head = atomic_load_explicit(&g->head, memory_order_acquire);
    uint64_t tail = w->tail;
    int rc = 0;
    if (r && stop_level(iso) >= 2)
        return 0; /* stop now: what is unread is NOT_RUN */
    if (head - tail > RING_BYTES)
        return -EPROTO;
    while (tail < head) {
        size_t pos = (size_t)(tail % RING_BYTES), to_end = RING_BYTES - pos;
        struct rec h;
        if (to_end < sizeof h) {
            tail += to_end;
            continue;
        }
        memcpy(&h, g->data + pos, sizeof h);
        if (h.flags & REC_WRAP) {
            tail += to_end;
            continue;
        }
        size_t size = rec_size(h.len, h.msg_len);
        size_t count = h.count ? h.count : 1;
        if (size > to_end || size > head - tail || !r || count > w->qn - w->unsent ||
            !q_starts_with(w, h.index, count) ||
            (count > 1 && (h.len || h.msg_len || h.status))) {
            rc = -EPROTO;
            break;
        }
        if (h.flags & REC_SOCKET) {
            if (!big) {
                rc = 1;
                break;
            }
            if (big_index != h.index) {
                rc = -EPROTO;
                break;
            }
            q_pop(w);
            deliver(iso, r, h.index, big);
            big = NULL;
        } else if (count > 1) {
            if (r->f->on_ok_run) {
                q_pop_n(w, count);
                r->f->on_ok_run(r->f->arg, h.index, count, h.records);
            } else {
                for (size_t k = 0; k < count; k++) {
                    weft__iso_outcome_t o = {.kind = WEFT__ISO_OK,
                                             .exit_status = -1,
                                             .records = h.records,
                                             .msg = ""};
                    q_pop(w);
                    deliver(iso, r, h.index + k, &o);
                    /* Stop now: the rest stays held (NOT_RUN), the record
                     * unconsumed; its worker is killed. */
                    if (k + 1 < count && stop_level(iso) >= 2)
                        goto out;
                }
            }
        } else {
            const unsigned char *body = g->data + pos + sizeof h;
            weft__iso_outcome_t o = {
                .kind = h.status ? WEFT__ISO_FAILED : WEFT__ISO_OK,
                .exit_status = -1,
                .code = h.status,
                .records = h.records,
                .bytes = h.len ? body : NULL,
                .len = h.len,
                .msg = h.msg_len ? (const char *)body + h.len : "",
                .msg_len = h.msg_len,
                .attempts = h.attempts,
                .t0_ns = h.t0,
                .t1_ns = h.t1,
            };
            q_pop(w);
            deliver(iso, r, h.index, &o);
        }
        tail += size;
        if (stop_level(iso) >= 2)
            break; /* on_result asked to stop now */
    }
out:
    if (big && rc == 0 && stop_level(iso) < 2)
        rc = -EPROTO; /* a REPLY with no place in the ring */
    if (tail != w->tail) {
        w->tail = tail;
        w->item_start = weft__mono_ns();
        atomic_store(&g->tail, tail);
        atomic_fetch_add(&g->tail_seq, 1);
        if (atomic_load(&g->waiting))
            futex_wake(&g->tail_seq);
    }
    if (w->st == W_BUSY && w->qn == 0)
        w->st = W_IDLE;
    return rc;
}

/* After the worker died: its run of empty ok replies still in the header,
 * when it answers the item at the head of its queue. */
static void ring_run_left(weft__iso_t *iso, struct run *r, unsigned id)
{
    struct worker *w = &iso->w[id];
    struct ring *g = w->ring;
    uint64_t first = atomic_load(&g->run_first), n = atomic_load(&g->run_count);
    uint32_t records = atomic_load(&g->run_records);
    if (!r || !n || n > w->qn - w->unsent || !q_starts_with(w, first, n))
        return; /* already in the ring, or nonsense */
    for (uint64_t k = 0; k < n; k++) {
        q_pop(w);
        weft__iso_outcome_t o = {
            .kind = WEFT__ISO_OK, .exit_status = -1, .records = records, .msg = ""};
        deliver(iso, r, first + k, &o);
    }
}

/* The worker is gone (EOF, send error, timeout, protocol error): reap it;
 * what it published is delivered, its current item gets `kind` (CRASHED
 * from the wait status unless told otherwise), the rest of what it held is
 * re-queued. */
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
            snprintf(iso->gone_msg, sizeof iso->gone_msg,
                     "worker %u died during init: %s", id, d);
        }
        w->fail_streak++;
    }
    if (was != W_BUSY || !r)
        return;
    if (kind != WEFT__ISO_FAILED && stop_level(iso) < 2) {
        /* Finished before it died: theirs, not the culprit's.  (Not after
         * a malformed ring, nor under stop now: those are not read.) */
        ring_read(iso, r, id, NULL, 0);
        ring_run_left(iso, r, id);
    }
    if (kind == WEFT__ISO_CRASHED && stop_level(iso) >= 2)
        kind = WEFT__ISO_NOT_RUN; /* killed by stop now, not by its item */
    /* Its current item is the oldest held, unless not wholly sent. */
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
        uint64_t i = q_pop(w);
        deliver(iso, r, i, &o);
    }
    while (w->qn) {
        uint64_t i = q_pop(w);
        if (requeue(iso, i) != 0)
            deliver_simple(iso, r, i, WEFT__ISO_FAILED,
                           "out of memory re-queueing the item");
    }
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
static int handle_msg(weft__iso_t *iso, struct run *r, unsigned id,
                      const struct msg_hdr *h, const unsigned char *body)
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
                snprintf(iso->gone_msg, sizeof iso->gone_msg, "worker %u: init failed",
                         id);
        }
        return 0;
    }
    if (w->st != W_BUSY && w->st != W_IDLE)
        return -EPROTO;
    if (h->type == MSG_NOTE) {
        if (h->index) { /* a request ended: its time per item */
            double ns = (double)h->ns / (double)h->index;
            ns = ns > 1 ? ns : 1;
            iso->per_item_ns =
                iso->per_item_ns > 0 ? 0.75 * iso->per_item_ns + 0.25 * ns : ns;
        }
        int rc = ring_read(iso, r, id, NULL, 0);
        return rc < 0 ? rc : 0;
    }
    if (h->type != MSG_REPLY || !r)
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
        .attempts = h->attempts,
        .t0_ns = h->t0,
        .t1_ns = h->t1,
    };
    int rc = ring_read(iso, r, id, &o, h->index);
    return rc < 0 ? rc : 0; /* 1: stopped at a later REC_SOCKET, its REPLY to come */
}

/* Reads what is there and handles whole messages, then the ring.  0, 1 at
 * EOF (or a read error: same thing for us), -EPROTO or -ENOMEM. */
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
            break;
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
    if (w->st == W_BUSY || w->st == W_IDLE) {
        int rc = ring_read(iso, r, id, NULL, 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Sends what the socket takes.  0, or 1 if the worker is gone. */
static int worker_send(struct worker *w)
{
    while (w->soff < w->slen) {
        ssize_t k = send(w->fd, w->sbuf + w->soff, w->slen - w->soff,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
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

/* Appends item i (bytes, len) to the request in w->sbuf at *off: a new
 * entry, or the previous entry's run when both are empty and consecutive. */
static int request_put(struct worker *w, size_t *off, struct req_entry *last,
                       uint32_t *entries, uint64_t i, const void *bytes, size_t len)
{
    if (!len && *entries && !last->len && last->index + last->count == i &&
        last->count < UINT32_MAX) {
        last->count++;
        memcpy(w->sbuf + *off - sizeof *last, last, sizeof *last);
        return 0;
    }
    if (len > UINT32_MAX)
        return -EOVERFLOW;
    if (grow(&w->sbuf, &w->scap, *off + sizeof *last + len))
        return -ENOMEM;
    *last = (struct req_entry){.index = i, .len = (uint32_t)len, .count = 1};
    memcpy(w->sbuf + *off, last, sizeof *last);
    *off += sizeof *last;
    if (len)
        memcpy(w->sbuf + *off, bytes, len);
    *off += len;
    ++*entries;
    return 0;
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
    refill(iso, r);
    /* At the end, share what is left instead. */
    if (r->ended) {
        unsigned alive = usable_workers(iso);
        size_t fair = (queued(iso, r) + alive - 1) / (alive ? alive : 1);
        if (b > fair)
            b = fair ? fair : 1;
    }
    if (grow(&w->sbuf, &w->scap, sizeof(struct req_hdr)))
        return -ENOMEM;
    size_t n = 0, off = sizeof(struct req_hdr);
    uint32_t entries = 0;
    struct req_entry last = {0};
    while (n < b) {
        if (!queued(iso, r)) {
            refill(iso, r);
            if (!queued(iso, r))
                break;
        }
        uint64_t i = iso->rn ? iso->retry[iso->rhead] : r->next;
        if (!q_can_push(w, i))
            break;
        if (!iso->rn && r->f->empty_items) {
            /* A whole run of the claimed range, as one entry. */
            uint64_t k = r->end - r->next;
            k = k < b - n ? k : b - n;
            k = k < UINT32_MAX ? k : UINT32_MAX;
            if (entries && !last.len && last.index + last.count == i &&
                last.count <= UINT32_MAX - k) {
                last.count += (uint32_t)k; /* continues the last entry */
                memcpy(w->sbuf + off - sizeof last, &last, sizeof last);
            } else if (grow(&w->sbuf, &w->scap, off + sizeof last)) {
                if (!n)
                    return -ENOMEM;
                break;
            } else {
                last = (struct req_entry){.index = i, .count = (uint32_t)k};
                memcpy(w->sbuf + off, &last, sizeof last);
                off += sizeof last;
                entries++;
            }
            q_push(w, i, k);
            r->next += k;
            n += k;
            continue;
        }
        dequeue(iso, r);
        const void *bytes = NULL;
        size_t len = 0;
        if (!r->f->empty_items)
            r->f->get_item(r->f->arg, i, &bytes, &len);
        int e = request_put(w, &off, &last, &entries, i, bytes, len);
        if (e) {
            if (requeue(iso, i) != 0 || e == -EOVERFLOW)
                deliver_simple(iso, r, i, WEFT__ISO_FAILED,
                               e == -EOVERFLOW ? "the item is over 4 GiB"
                                               : "out of memory");
            if (e == -ENOMEM && !n)
                return -ENOMEM;
            break;
        }
        q_push(w, i, 1);
        n++;
    }
    if (!n)
        return 0;
    struct req_hdr h = {.n = entries,
                        .items = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n,
                        .payload = off - sizeof h};
    memcpy(w->sbuf, &h, sizeof h);
    if (w->qn == n)
        w->item_start = weft__mono_ns();
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

/* A send to worker j failed: it is gone.  The replies it sent before it
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

/* Worker j's process exited (its pidfd polled readable), its socket maybe
 * still open: a process it forked holds the other end, and EOF comes only
 * when that one exits.  What it sent is read, then it is lost: its current
 * item crashed, with its wait status. */
static void worker_exited(weft__iso_t *iso, struct run *r, unsigned j)
{
    for (int k = 0; k < 64 && iso->w[j].fd >= 0; k++) {
        if (r && stop_level(iso) >= 2)
            return;
        struct pollfd p = {.fd = iso->w[j].fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            break; /* nothing more to read */
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
    struct pollfd pf[2 * MAX_WORKERS]; /* per worker: its socket, its pidfd */
    unsigned ids[MAX_WORKERS], np = 0;
    int64_t now = weft__mono_ns();
    int64_t tmo_ns = iso->s.timeout > 0 ? (int64_t)(iso->s.timeout * 1e9) : 0;
    int64_t wake = now + POLL_MAX_MS * 1000000LL;
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        if (w->fd < 0)
            continue;
        if (tmo_ns && w->qn > w->unsent && w->item_start + tmo_ns < wake)
            wake = w->item_start + tmo_ns;
        pf[2 * np] = (struct pollfd){.fd = w->fd, .events = POLLIN};
        if (w->soff < w->slen)
            pf[2 * np].events |= POLLOUT;
        pf[2 * np + 1] = (struct pollfd){.fd = w->pidfd, .events = POLLIN}; /* -1: none */
        ids[np++] = j;
    }
    int64_t left = wake - now;
    if (left < 0)
        left = 0;
    struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
    int n = ppoll(pf, 2 * np, &ts, NULL);
    if (n < 0)
        n = 0; /* EINTR: a signal; the caller re-checks the stop flags */
    for (unsigned k = 0; k < np; k++) {
        unsigned j = ids[k];
        struct worker *w = &iso->w[j];
        const struct pollfd *sock = &pf[2 * k], *gone = &pf[2 * k + 1];
        if (w->fd < 0)
            continue;
        if (r && stop_level(iso) >= 2)
            return; /* on_result asked to stop now: the caller kills all */
        if ((sock->revents & POLLOUT) && worker_send(w)) {
            send_failed(iso, r, j);
            continue;
        }
        if (sock->revents & (POLLIN | POLLHUP | POLLERR))
            read_worker(iso, r, j);
        else if (r && (w->st == W_BUSY))
            read_worker(iso, r, j); /* the ring, at least every wakeup */
        if (w->fd >= 0 && (gone->revents & POLLIN))
            worker_exited(iso, r, j);
    }
    if (!tmo_ns || (r && stop_level(iso) >= 2))
        return;
    now = weft__mono_ns();
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        if (w->st != W_BUSY || w->qn <= w->unsent)
            continue;
        /* Items begun since the last look: the current one is newer. */
        uint64_t started = atomic_load_explicit(&w->ring->started, memory_order_relaxed);
        if (started != w->started) {
            w->started = started;
            w->item_start = now;
        }
        if (now - w->item_start >= tmo_ns) {
            char why[96];
            snprintf(why, sizeof why, "timed out after %g s (worker killed)",
                     iso->s.timeout);
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
    /* EOF on each socket asks the worker to run child_fini and exit; we see
     * it go by its pidfd (or, without one, by EOF on our end, which a
     * process it forked may hold open). */
    for (unsigned j = 0; j < iso->n; j++)
        if (iso->w[j].fd >= 0)
            shutdown(iso->w[j].fd, SHUT_WR);
    int64_t deadline = weft__mono_ns() + DESTROY_GRACE_NS;
    for (;;) {
        struct pollfd pf[MAX_WORKERS];
        unsigned ids[MAX_WORKERS], np = 0;
        for (unsigned j = 0; j < iso->n; j++) {
            struct worker *w = &iso->w[j];
            if (atomic_load_explicit(&w->pid, memory_order_relaxed) <= 0)
                continue;
            if (w->pidfd >= 0)
                pf[np] = (struct pollfd){.fd = w->pidfd, .events = POLLIN};
            else if (w->fd >= 0)
                pf[np] = (struct pollfd){.fd = w->fd, .events = POLLIN};
            else
                continue;
            ids[np++] = j;
        }
        int64_t left = deadline - weft__mono_ns();
        if (!np || left <= 0)
            break;
        int n = poll(pf, np, (int)((left + 999999) / 1000000));
        for (unsigned k = 0; k < np && n > 0; k++) {
            struct worker *w = &iso->w[ids[k]];
            if (!pf[k].revents)
                continue;
            if (pf[k].fd == w->pidfd) { /* exited */
                close(w->pidfd);
                w->pidfd = -1;
                if (w->fd >= 0)
                    close(w->fd);
                w->fd = -1;
                continue;
            }
            char scratch[4096];
            ssize_t got = recv(pf[k].fd, scratch, sizeof scratch, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                close(w->fd);
                w->fd = -1;
            }
        }
    }
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        pid_t pid = atomic_exchange_explicit(&w->pid, 0, memory_order_relaxed);
        if (pid > 0) {
            siginfo_t si = {0};
            while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
                   errno == EINTR)
                ;
            end_process(pid, si.si_pid != pid); /* still running: killed */
        }
        if (w->fd >= 0)
            close(w->fd);
        if (w->pidfd >= 0)
            close(w->pidfd);
        if (w->ring)
            munmap(w->ring, sizeof *w->ring);
        free(w->q);
        free(w->sbuf);
        free(w->rbuf);
    }
    free(iso->retry);
    free(iso);
    *pp = NULL;
}

int weft__iso_start(weft__iso_t **out, const weft__iso_settings_t *s, char *err,
                    size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if (!s || !s->child_item || s->workers == 0 || s->workers > MAX_WORKERS ||
        !(s->timeout >= 0)) {
        snprintf(err, err ? errlen : 0,
                 "isolate: workers must be 1..%u, child_item set, timeout >= 0",
                 MAX_WORKERS);
        return -EINVAL;
    }
    weft__iso_t *iso = calloc(1, sizeof *iso + s->workers * sizeof(struct worker));
    if (!iso)
        goto nomem;
    iso->s = *s;
    iso->n = s->workers;
    iso->super_pid = getpid();
    for (unsigned j = 0; j < iso->n; j++)
        iso->w[j].fd = iso->w[j].pidfd = -1;
    /* The children the workers' plugins announce, where we see them. */
    if (weft__children_share() != 0)
        goto nomem_free;
    iso->rcap = (size_t)s->workers * 64;
    iso->retry = malloc(iso->rcap * sizeof *iso->retry);
    if (!iso->retry)
        goto nomem_free;
    for (unsigned j = 0; j < iso->n; j++) {
        struct worker *w = &iso->w[j];
        w->q = malloc(QSPANS * sizeof *w->q);
        void *g = mmap(NULL, sizeof(struct ring), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        w->ring = g == MAP_FAILED ? NULL : g;
        if (!w->q || !w->ring)
            goto nomem_free;
    }

    int rc = 0;
    for (unsigned j = 0; j < iso->n && !rc; j++) {
        rc = spawn(iso, j);
        if (rc)
            snprintf(err, err ? errlen : 0, "isolate: starting worker %u: %s", j,
                     strerror(-rc));
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
nomem_free:
    weft__iso_destroy(&iso);
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
            snprintf(iso->gone_msg, sizeof iso->gone_msg,
                     "isolate: restarting worker %u: %s", j, strerror(-rc));
            if (++w->fail_streak >= RESPAWN_LIMIT)
                w->st = W_GONE;
        }
    }
    iso->all_gone = !usable_workers(iso);
}

static size_t held(const weft__iso_t *iso)
{
    size_t n = 0;
    for (unsigned j = 0; j < iso->n; j++)
        n += iso->w[j].qn;
    return n;
}

int weft__iso_serve(weft__iso_t *iso, const weft__iso_feed_t *f)
{
    if (!iso || !f || !f->claim || !f->get_item || !f->on_result || iso->cur)
        return -EINVAL;
    struct run r = {.f = f};
    iso->cur = &r;
    iso->rhead = iso->rn = 0;
    int ret = 0;
    for (;;) {
        int stop = stop_level(iso);
        if (stop) {
            ret = -ECANCELED;
            r.ended = true; /* nothing more is claimed */
            if (stop >= 2) {
                for (unsigned j = 0; j < iso->n; j++) {
                    struct worker *w = &iso->w[j];
                    while (w->qn)
                        deliver_simple(iso, &r, q_pop(w), WEFT__ISO_NOT_RUN, "");
                    w->unsent = 0;
                    if (w->st != W_GONE)
                        kill_reap(w);
                }
            }
            settle_queued(iso, &r, WEFT__ISO_NOT_RUN, "");
        } else {
            respawn(iso);
        }
        if (iso->all_gone) {
            /* Nothing is in flight (every slot is GONE): what is left, and
             * all the feed still has, fails with the reason. */
            ret = ret ? ret : -ECHILD;
            for (;;) {
                settle_queued(iso, &r, WEFT__ISO_FAILED, iso->gone_msg);
                refill(iso, &r);
                if (!queued(iso, &r) && (r.ended || stop_level(iso)))
                    break;
                if (!queued(iso, &r))
                    pump(iso, &r); /* the feed waits: let time pass */
                if (iso->s.tick)
                    iso->s.tick(iso->s.arg);
            }
            break;
        }
        if (!stop) {
            for (unsigned j = 0; j < iso->n; j++) {
                if (!wants_work(iso, &iso->w[j]))
                    continue;
                int rc = dispatch(iso, &r, j);
                if (rc == 1)
                    send_failed(iso, &r, j);
                else if (rc)
                    break; /* -ENOMEM: try again at the next wakeup */
                if (!queued(iso, &r) && r.ended)
                    break;
            }
        }
        if (r.ended && !queued(iso, &r) && !held(iso))
            break;
        pump(iso, &r);
        if (iso->s.tick)
            iso->s.tick(iso->s.arg);
    }
    iso->cur = NULL;
    /* Replacements start while the runner writes out what is done. */
    if (!stop_level(iso))
        respawn(iso);
    return ret;
}

int weft__iso_again(weft__iso_t *iso, uint64_t index)
{
    if (!iso->cur)
        return -EINVAL;
    if (stop_level(iso))
        return -ECANCELED;
    return requeue(iso, index);
}

/* weft__iso_run's range as a feed. */
struct fixed {
    size_t count;
    uint64_t first;
    bool claimed;
    void (*get_item)(void *arg, size_t i, const void **bytes, size_t *len);
    void (*on_result)(void *arg, size_t i, const weft__iso_outcome_t *o);
    void *arg;
};

static int fixed_claim(void *arg, uint64_t *first, size_t *n)
{
    struct fixed *x = arg;
    if (x->claimed || !x->count)
        return -1;
    x->claimed = true;
    *first = x->first;
    *n = x->count;
    return 1;
}

static void fixed_get(void *arg, uint64_t index, const void **bytes, size_t *len)
{
    struct fixed *x = arg;
    x->get_item(x->arg, (size_t)(index - x->first), bytes, len);
}

static void fixed_result(void *arg, uint64_t index, const weft__iso_outcome_t *o)
{
    struct fixed *x = arg;
    x->on_result(x->arg, (size_t)(index - x->first), o);
}

int weft__iso_run(weft__iso_t *iso, size_t count, uint64_t first_index,
                  void (*get_item)(void *arg, size_t i, const void **bytes, size_t *len),
                  void (*on_result)(void *arg, size_t i, const weft__iso_outcome_t *o),
                  void *arg)
{
    if (!iso || !get_item || !on_result)
        return -EINVAL;
    struct fixed x = {.count = count,
                      .first = first_index,
                      .get_item = get_item,
                      .on_result = on_result,
                      .arg = arg};
    weft__iso_feed_t f = {.claim = fixed_claim,
                          .get_item = fixed_get,
                          .on_result = fixed_result,
                          .arg = &x};
    int rc = weft__iso_serve(iso, &f);
    if (rc != -EINVAL && !x.claimed) /* stopped before the claim */
        for (size_t i = 0; i < count; i++) {
            weft__iso_outcome_t o = {
                .kind = WEFT__ISO_NOT_RUN, .exit_status = -1, .msg = ""};
            on_result(arg, i, &o);
        }
    return rc;
}

void weft__iso_stop(weft__iso_t *iso, bool now)
{
    int want = now ? 2 : 1;
    int cur = atomic_load_explicit(&iso->stop, memory_order_relaxed);
    while (cur < want && !atomic_compare_exchange_weak_explicit(&iso->stop, &cur, want,
                                                                memory_order_relaxed,
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
