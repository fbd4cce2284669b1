/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#include "util.h"

#define TICK_S 0.1        /* the reporter wakes 10 times a second        */
#define SLOW_TICKS 10     /* plain and JSON lines: every 10th tick (1/s) */
#define RATE_WINDOW_S 5.0 /* the rate is the slope over the last 5 s     */
#define LINE_MAX_BYTES 512

/* One worker's counters, alone on a cache line so that workers never share
 * a line (no false sharing on the hot path). */
typedef struct slot {
    _Alignas(64) _Atomic uint64_t ok;
    _Atomic uint64_t failed;
} slot_t;

enum kind { KIND_TTY, KIND_PLAIN, KIND_JSON };

struct weft__progress {
    slot_t *slots; /* workers + 1; the last is the shared slot    */
    unsigned workers;
    _Atomic uint64_t skipped, total, updates;
    int fd;
    enum kind kind;
    char *label;
    double t0;
    pthread_t thread;
    /* lock guards stopping, line_shown, broken and every write to fd, so
     * that messages and redraws never interleave. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled by stop                           */
    bool stopping;
    bool line_shown;   /* a TTY line is on screen (cursor after it)   */
    /* TERM=dumb or NO_COLOR: no escape codes; a line is erased with
     * spaces over its last width (shown_len) and '\r'. */
    bool no_escapes;
    size_t shown_len;
    bool broken;       /* a write failed: draw nothing more           */
    weft__rate_t rate; /* the reporter thread's, then stop's          */
    /* weft__progress_relay's partial line (its one caller's alone). */
    char relay[8192];
    size_t relay_len;
};

/* ---- pure formatting ------------------------------------------------------ */

void weft__progress_fmt_duration(char *buf, size_t size, double s)
{
    if (s < 0 || s != s) {
        snprintf(buf, size, "?");
        return;
    }
    if (s > 1e9)
        s = 1e9; /* keep the integer conversion defined */
    uint64_t t = (uint64_t)(s + 0.5);
    uint64_t h = t / 3600, m = t / 60 % 60, sec = t % 60;
    if (h)
        snprintf(buf, size, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, h, m, sec);
    else
        snprintf(buf, size, "%" PRIu64 ":%02" PRIu64, m, sec);
}

void weft__progress_fmt_rate(char *buf, size_t size, double r)
{
    if (r < 0 || r != r)
        snprintf(buf, size, "?/s");
    else if (r < 10)
        snprintf(buf, size, "%.2f/s", r);
    else if (r < 100)
        snprintf(buf, size, "%.1f/s", r);
    else if (r < 999.5)
        snprintf(buf, size, "%.0f/s", r);
    else if (r < 999.5e3)
        snprintf(buf, size, "%.2fk/s", r / 1e3);
    else if (r < 999.5e6)
        snprintf(buf, size, "%.2fM/s", r / 1e6);
    else
        snprintf(buf, size, "%.2fG/s", r / 1e9);
}

double weft__progress_eta(const weft__progress_view_t *v)
{
    if (v->total == WEFT__PROGRESS_UNKNOWN)
        return -1;
    if (v->done >= v->total)
        return 0;
    if (!(v->rate > 0))
        return -1;
    return (double)(v->total - v->done) / v->rate;
}

/* snprintf at *len, never past size; *len stops growing when full. */
WEFT_PRINTF(4, 5)
static void appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = (size_t)n < size - *len ? *len + (size_t)n : size - 1;
}

/* Cuts s to `cols` columns, counting a UTF-8 sequence as one column (good
 * enough for names; the rest is ASCII).  Returns the new length. */
static size_t cut_columns(char *s, size_t len, unsigned cols)
{
    unsigned used = 0;
    for (size_t k = 0; k < len; k++) {
        if (((unsigned char)s[k] & 0xC0) == 0x80)
            continue; /* continuation byte: same column */
        if (used == cols) {
            s[k] = '\0';
            return k;
        }
        used++;
    }
    return len;
}

size_t weft__progress_format_line(char *buf, size_t size, const weft__progress_view_t *v,
                                  unsigned width)
{
    if (!size)
        return 0;
    size_t len = 0;
    char rate[32], elapsed[32], eta[32];
    buf[0] = '\0';
    weft__progress_fmt_rate(rate, sizeof rate, v->rate);
    weft__progress_fmt_duration(elapsed, sizeof elapsed, v->elapsed_s);
    if (v->label && v->label[0])
        appendf(buf, size, &len, "%s  ", v->label);
    if (v->total == WEFT__PROGRESS_UNKNOWN) {
        appendf(buf, size, &len, "%" PRIu64 " done  %s  elapsed %s", v->done, rate,
                elapsed);
    } else {
        double pct = v->total ? 100.0 * (double)v->done / (double)v->total : 100.0;
        weft__progress_fmt_duration(eta, sizeof eta, weft__progress_eta(v));
        appendf(buf, size, &len,
                "%" PRIu64 "/%" PRIu64 "  %.1f%%  %s  elapsed %s  ETA %s", v->done,
                v->total, pct > 100 ? 100.0 : pct, rate, elapsed, eta);
    }
    appendf(buf, size, &len, "  %" PRIu64 " failed", v->failed);
    if (width)
        len = cut_columns(buf, len, width - 1);
    return len;
}

size_t weft__progress_format_json(char *buf, size_t size, const weft__progress_view_t *v,
                                  bool final)
{
    if (!size)
        return 0;
    size_t len = 0;
    char total[32], rate[32], eta[32];
    double e = weft__progress_eta(v);
    if (v->total == WEFT__PROGRESS_UNKNOWN)
        snprintf(total, sizeof total, "null");
    else
        snprintf(total, sizeof total, "%" PRIu64, v->total);
    if (v->rate < 0)
        snprintf(rate, sizeof rate, "null");
    else
        snprintf(rate, sizeof rate, "%.1f", v->rate);
    if (e < 0)
        snprintf(eta, sizeof eta, "null");
    else
        snprintf(eta, sizeof eta, "%.1f", e);
    buf[0] = '\0';
    appendf(buf, size, &len,
            "{\"done\":%" PRIu64 ",\"total\":%s,\"failed\":%" PRIu64
            ",\"skipped\":%" PRIu64 ",\"elapsed_s\":%.3f,\"rate\":%s,\"eta_s\":%s%s}",
            v->done, total, v->failed, v->skipped, v->elapsed_s, rate, eta,
            final ? ",\"final\":true" : "");
    return len;
}

void weft__rate_init(weft__rate_t *r, double window_s)
{
    memset(r, 0, sizeof *r);
    r->window_s = window_s;
}

double weft__rate_sample(weft__rate_t *r, double t, uint64_t n)
{
    unsigned tail = (r->head + WEFT__RATE_SAMPLES - r->count) % WEFT__RATE_SAMPLES;
    if (r->count == WEFT__RATE_SAMPLES) { /* full: the oldest goes */
        tail = (tail + 1) % WEFT__RATE_SAMPLES;
        r->count--;
    }
    r->t[r->head] = t;
    r->n[r->head] = n;
    r->head = (r->head + 1) % WEFT__RATE_SAMPLES;
    r->count++;
    /* Drop the oldest while the next one still spans the whole window. */
    while (r->count > 2) {
        unsigned next = (tail + 1) % WEFT__RATE_SAMPLES;
        if (t - r->t[next] < r->window_s)
            break;
        tail = next;
        r->count--;
    }
    double dt = t - r->t[tail];
    if (dt < 0.05)
        return -1;
    return (double)(n >= r->n[tail] ? n - r->n[tail] : 0) / dt;
}

/* ---- the reporter --------------------------------------------------------- */

static unsigned term_width(int fd)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Caller holds p->lock. */
static void put(weft__progress_t *p, const char *s, size_t n)
{
    while (n && !p->broken) {
        ssize_t w = write(p->fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            p->broken = true; /* stderr gone: stay silent, the run goes on */
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

/* The counters now; rate from the window (reporter thread or stop only). */
static weft__progress_view_t view(weft__progress_t *p)
{
    uint64_t ok = 0, failed = 0;
    for (unsigned k = 0; k <= p->workers; k++) {
        ok += atomic_load_explicit(&p->slots[k].ok, memory_order_relaxed);
        failed += atomic_load_explicit(&p->slots[k].failed, memory_order_relaxed);
    }
    weft__progress_view_t v = {
        .label = p->label,
        .skipped = atomic_load_explicit(&p->skipped, memory_order_relaxed),
        .total = atomic_load_explicit(&p->total, memory_order_relaxed),
        .failed = failed,
        .elapsed_s = weft__mono_s() - p->t0,
    };
    v.done = ok + failed + v.skipped;
    v.rate = weft__rate_sample(&p->rate, v.elapsed_s, ok + failed);
    return v;
}

/* Erases the TTY line on screen, leaving the cursor at its start.  Caller
 * holds p->lock. */
static void erase_line(weft__progress_t *p)
{
    if (!p->line_shown)
        return;
    if (p->no_escapes) {
        char blank[LINE_MAX_BYTES + 2];
        size_t n = p->shown_len < LINE_MAX_BYTES ? p->shown_len : LINE_MAX_BYTES;
        blank[0] = '\r';
        memset(blank + 1, ' ', n);
        blank[n + 1] = '\r';
        put(p, blank, n + 2);
    } else {
        put(p, "\r\033[K", 4);
    }
    p->line_shown = false;
}

/* Writes one update.  Caller holds p->lock. */
static void update(weft__progress_t *p, const weft__progress_view_t *v, bool final)
{
    char line[LINE_MAX_BYTES + 8];
    size_t n;
    switch (p->kind) {
    case KIND_TTY: {
        line[0] = '\r';
        n = 1 +
            weft__progress_format_line(line + 1, LINE_MAX_BYTES, v, term_width(p->fd));
        /* Text first, then erase the rest: no blank flash between frames
         * (without escapes: spaces over what the last frame had more). */
        size_t text = n - 1, pad = 3;
        if (p->no_escapes) {
            pad = p->shown_len > text ? p->shown_len - text : 0;
            memset(line + n, ' ', pad);
        } else {
            memcpy(line + n, "\033[K", 3);
        }
        put(p, line, n + pad);
        p->line_shown = true;
        p->shown_len = text;
        if (final)
            erase_line(p);
        break;
    }
    case KIND_PLAIN:
        n = weft__progress_format_line(line, LINE_MAX_BYTES, v, 0);
        line[n] = '\n';
        put(p, line, n + 1);
        break;
    case KIND_JSON:
        n = weft__progress_format_json(line, LINE_MAX_BYTES, v, final);
        line[n] = '\n';
        put(p, line, n + 1);
        break;
    }
    atomic_fetch_add_explicit(&p->updates, 1, memory_order_relaxed);
}

static struct timespec abs_time(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *reporter(void *arg)
{
    weft__progress_t *p = arg;
    unsigned tick = 0;
    double next = p->t0 + TICK_S;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        /* A timed wait rather than a sleep: stop wakes us at once, so a
         * short run does not wait for the tick to end. */
        struct timespec ts = abs_time(next);
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        if (p->stopping)
            break;
        double now = weft__mono_s();
        if (now < next)
            continue; /* spurious wake-up: the clock decides, not the return */
        /* Deadlines, not sleeps: at most one update per tick, whatever
         * the wake-ups; after a stall, no burst to catch up. */
        next += TICK_S;
        if (next < now)
            next = now + TICK_S;
        tick++;
        weft__progress_view_t v = view(p); /* samples the rate every tick */
        if (p->kind == KIND_TTY || tick % SLOW_TICKS == 0)
            update(p, &v, false);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int weft__progress_start(weft__progress_t **out, weft__progress_mode_t mode, int fd,
                         uint64_t total, unsigned workers, const char *label)
{
    *out = NULL;
    bool tty = isatty(fd) == 1;
    enum kind kind;
    switch (mode) {
    case WEFT__PROGRESS_AUTO:
        if (!tty)
            return 0;
        kind = KIND_TTY;
        break;
    case WEFT__PROGRESS_LINE:
        kind = tty ? KIND_TTY : KIND_PLAIN;
        break;
    case WEFT__PROGRESS_JSON:
        kind = KIND_JSON;
        break;
    default:
        return 0;
    }
    weft__progress_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->slots = aligned_alloc(64, sizeof(slot_t) * ((size_t)workers + 1));
    p->label = strdup(label ? label : "");
    if (!p->slots || !p->label) {
        free(p->slots);
        free(p->label);
        free(p);
        return -ENOMEM;
    }
    for (unsigned k = 0; k <= workers; k++) {
        atomic_init(&p->slots[k].ok, 0);
        atomic_init(&p->slots[k].failed, 0);
    }
    p->workers = workers;
    atomic_init(&p->skipped, 0);
    atomic_init(&p->total, total);
    atomic_init(&p->updates, 0);
    p->fd = fd;
    p->kind = kind;
    const char *term = getenv("TERM"), *no_color = getenv("NO_COLOR");
    p->no_escapes = (term && strcmp(term, "dumb") == 0) || (no_color && no_color[0]);
    p->t0 = weft__mono_s();
    weft__rate_init(&p->rate, RATE_WINDOW_S);
    weft__rate_sample(&p->rate, 0, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->lock, NULL);
    int rc = pthread_create(&p->thread, NULL, reporter, p);
    if (rc) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p->slots);
        free(p->label);
        free(p);
        return -rc;
    }
    *out = p;
    return 0;
}

void weft__progress_add(weft__progress_t *p, unsigned worker, uint64_t ok,
                        uint64_t failed)
{
    if (!p)
        return;
    if (worker >= p->workers) {
        slot_t *s = &p->slots[p->workers];
        atomic_fetch_add_explicit(&s->ok, ok, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->failed, failed, memory_order_relaxed);
        return;
    }
    /* Single writer: a load and a store, no locked read-modify-write. */
    slot_t *s = &p->slots[worker];
    if (ok)
        atomic_store_explicit(&s->ok,
                              atomic_load_explicit(&s->ok, memory_order_relaxed) + ok,
                              memory_order_relaxed);
    if (failed)
        atomic_store_explicit(
            &s->failed, atomic_load_explicit(&s->failed, memory_order_relaxed) + failed,
            memory_order_relaxed);
}

void weft__progress_skip(weft__progress_t *p, uint64_t n)
{
    if (p)
        atomic_fetch_add_explicit(&p->skipped, n, memory_order_relaxed);
}

void weft__progress_set_total(weft__progress_t *p, uint64_t total)
{
    if (p)
        atomic_store_explicit(&p->total, total, memory_order_relaxed);
}

void weft__progress_message(weft__progress_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!p) {
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        return;
    }
    char buf[4096];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    pthread_mutex_lock(&p->lock);
    erase_line(p);
    put(p, buf, len);
    pthread_mutex_unlock(&p->lock);
}

void weft__progress_log(void *arg, const char *line, size_t len)
{
    weft__progress_t *p = arg;
    if (!p) {
        ssize_t unused = write(STDERR_FILENO, line, len);
        (void)unused;
        return;
    }
    pthread_mutex_lock(&p->lock);
    erase_line(p); /* the next tick draws it again, below the line */
    put(p, line, len);
    pthread_mutex_unlock(&p->lock);
}

void weft__progress_relay(weft__progress_t *p, int fd)
{
    if (!p || fd < 0)
        return;
    for (;;) {
        ssize_t n = read(fd, p->relay + p->relay_len, sizeof p->relay - p->relay_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EAGAIN: nothing more now */
        p->relay_len += (size_t)n;
        size_t used = 0;
        for (char *nl; (nl = memchr(p->relay + used, '\n', p->relay_len - used));) {
            size_t end = (size_t)(nl - p->relay) + 1;
            weft__progress_log(p, p->relay + used, end - used);
            used = end;
        }
        if (used == 0 && p->relay_len == sizeof p->relay)
            used = p->relay_len; /* no line end in 8 KiB: cannot be a line of ours */
        memmove(p->relay, p->relay + used, p->relay_len - used);
        p->relay_len -= used;
    }
}

void weft__progress_stop(weft__progress_t **pp)
{
    weft__progress_t *p = *pp;
    if (!p)
        return;
    *pp = NULL;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    /* The thread is gone: the last update needs no lock, but the same code
     * path takes it anyway. */
    pthread_mutex_lock(&p->lock);
    weft__progress_view_t v = view(p);
    update(p, &v, true);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->slots);
    free(p->label);
    free(p);
}

uint64_t weft__progress_updates(const weft__progress_t *p)
{
    return p ? atomic_load_explicit(&((weft__progress_t *)p)->updates,
                                    memory_order_relaxed)
             : 0;
}
