/* SPDX-License-Identifier: MIT */
/* The coordinator simulation (coord_sim.h): events in a binary heap. */
#include "coord_sim.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum { EV_REQUEST, EV_REPLY, EV_DONE, EV_REPORT, EV_LOSS, EV_NOTICE } ev_kind_t;

typedef struct event {
    double t;
    uint64_t seq; /* ties in the order they were made: the run is repeatable */
    ev_kind_t kind;
    unsigned rank;
    weft__coord_claim_t claim;
    int status; /* EV_REPLY: the coordinator's answer */
} event_t;

typedef struct heap {
    event_t *e;
    size_t n, cap;
    uint64_t seq;
} heap_t;

static bool before(const event_t *a, const event_t *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int push(heap_t *h, event_t ev)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        event_t *p = realloc(h->e, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        h->e = p;
        h->cap = cap;
    }
    ev.seq = h->seq++;
    size_t i = h->n++;
    while (i > 0 && before(&ev, &h->e[(i - 1) / 2])) {
        h->e[i] = h->e[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->e[i] = ev;
    return 0;
}

static event_t pop(heap_t *h)
{
    event_t top = h->e[0], last = h->e[--h->n];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= h->n)
            break;
        if (k + 1 < h->n && before(&h->e[k + 1], &h->e[k]))
            k++;
        if (!before(&h->e[k], &last))
            break;
        h->e[i] = h->e[k];
        i = k;
    }
    if (h->n)
        h->e[i] = last;
    return top;
}

typedef struct sim_rank {
    double speed;
    weft__coord_claim_t queue[8]; /* received, not started (ahead <= 8) */
    unsigned n_queue;
    bool running, asking, dead, ended;
    weft__coord_claim_t current;
} sim_rank_t;

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13; /* xorshift64: enough for picking moments and ranks */
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

typedef struct sim {
    const coord_sim_settings_t *s;
    weft__coord_t *c;
    heap_t h;
    sim_rank_t *r;
    double coord_free, coord_busy, last_done;
    coord_sim_result_t *out;
    uint8_t *counts;
    unsigned ahead;
} sim_t;

/* A message reaches the coordinator half a round trip after it is sent and
 * waits for the coordinator to be free; it is served then. */
static double served_at(sim_t *m, double sent)
{
    double at = sent + m->s->latency_s / 2;
    if (at < m->coord_free)
        at = m->coord_free;
    m->coord_free = at + m->s->serve_s;
    m->coord_busy += m->s->serve_s;
    m->out->messages++;
    return at;
}

static int ask(sim_t *m, unsigned rank, double now)
{
    sim_rank_t *rk = &m->r[rank];
    if (rk->dead || rk->ended || rk->asking ||
        rk->n_queue + (rk->running ? 1u : 0u) >= m->ahead)
        return 0;
    rk->asking = true;
    return push(&m->h, (event_t){.t = now, .kind = EV_REQUEST, .rank = rank});
}

static int start(sim_t *m, unsigned rank, double now)
{
    sim_rank_t *rk = &m->r[rank];
    if (rk->dead || rk->running || !rk->n_queue)
        return 0;
    rk->current = rk->queue[0];
    memmove(rk->queue, rk->queue + 1, --rk->n_queue * sizeof *rk->queue);
    rk->running = true;
    return push(&m->h, (event_t){.t = now + (double)rk->current.count / rk->speed,
                                 .kind = EV_DONE, .rank = rank, .claim = rk->current});
}

static int step(sim_t *m, event_t ev)
{
    sim_rank_t *rk = &m->r[ev.rank];
    int rc = 0;
    switch (ev.kind) {
    case EV_REQUEST: { /* served by the coordinator, answered half a trip later */
        double at = served_at(m, ev.t);
        weft__coord_claim_t g = {0, 0};
        weft__coord_status_t st = weft__coord_claim(m->c, ev.rank, at, &g);
        return push(&m->h, (event_t){.t = at + m->s->serve_s + m->s->latency_s / 2,
                                     .kind = EV_REPLY, .rank = ev.rank, .claim = g,
                                     .status = (int)st});
    }
    case EV_REPLY:
        rk->asking = false;
        if (rk->dead)
            return 0; /* lost with it; the coordinator gives it back */
        if (ev.status == WEFT__COORD_END) {
            rk->ended = true;
            return 0;
        }
        if (ev.status == WEFT__COORD_WAIT) { /* ask again later */
            rk->asking = true;
            return push(&m->h, (event_t){.t = ev.t + 0.05 + 10 * m->s->latency_s,
                                         .kind = EV_REQUEST, .rank = ev.rank});
        }
        if (ev.status == WEFT__COORD_OK)
            rk->queue[rk->n_queue++] = ev.claim;
        rc = start(m, ev.rank, ev.t);
        return rc ? rc : ask(m, ev.rank, ev.t);
    case EV_DONE:
        if (rk->dead || !rk->running)
            return 0;
        rk->running = false;
        rc = push(&m->h, (event_t){.t = ev.t, .kind = EV_REPORT, .rank = ev.rank,
                                   .claim = ev.claim});
        rc = rc ? rc : start(m, ev.rank, ev.t);
        return rc ? rc : ask(m, ev.rank, ev.t);
    case EV_REPORT: {
        double at = served_at(m, ev.t);
        if (weft__coord_done(m->c, ev.rank, ev.claim, at) != 0)
            return 0; /* a lost rank's late report: the claim is someone else's now */
        m->out->done_items += ev.claim.count;
        if (m->counts)
            for (uint64_t i = ev.claim.first; i < ev.claim.first + ev.claim.count; i++)
                if (m->counts[i] < 255)
                    m->counts[i]++;
        if (ev.t > m->last_done)
            m->last_done = ev.t; /* the work's end, not the report's arrival */
        return 0;
    }
    case EV_LOSS:
        rk->dead = true;
        rk->running = false;
        rk->n_queue = 0;
        return push(&m->h,
                    (event_t){.t = ev.t + m->s->notice_s, .kind = EV_NOTICE, .rank = ev.rank});
    case EV_NOTICE:
        m->out->given_back += weft__coord_lost(m->c, ev.rank);
        return 0;
    }
    return 0;
}

int coord_sim_run(const coord_sim_settings_t *s, coord_sim_result_t *out, uint8_t *counts)
{
    memset(out, 0, sizeof *out);
    sim_t m = {.s = s, .out = out, .counts = counts};
    weft__coord_settings_t cs = s->coord;
    cs.items = s->items;
    cs.ranks = s->ranks;
    m.ahead = cs.ahead ? cs.ahead : 2;
    if (m.ahead > 8)
        return -EINVAL;
    int rc = weft__coord_create(&m.c, &cs);
    if (rc)
        return rc;
    m.r = calloc(s->ranks, sizeof *m.r);
    if (!m.r) {
        weft__coord_destroy(&m.c);
        return -ENOMEM;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull ^ s->seed;
    unsigned slow = (unsigned)(s->slow_fraction * s->ranks + 0.5);
    double total = 0;
    for (unsigned k = 0; k < s->ranks; k++) {
        m.r[k].speed = k < slow ? s->speed / s->slow_factor : s->speed;
        total += m.r[k].speed;
    }
    /* Losses at moments spread over the run's expected length. */
    double expect = (double)s->items / total;
    for (unsigned k = 0; k < s->losses && !rc; k++) {
        unsigned rank = (unsigned)(next_rand(&x) % s->ranks);
        double t = expect * (double)(next_rand(&x) % 1000) / 1000.0;
        if (!m.r[rank].dead) {
            total -= m.r[rank].speed;
            m.r[rank].dead = true; /* reserved: not chosen twice */
            rc = push(&m.h, (event_t){.t = t, .kind = EV_LOSS, .rank = rank});
        }
    }
    for (unsigned k = 0; k < s->ranks; k++)
        m.r[k].dead = false;
    for (unsigned k = 0; k < s->ranks && !rc; k++)
        rc = ask(&m, k, 0);
    while (!rc && m.h.n)
        rc = step(&m, pop(&m.h));
    out->makespan_s = m.last_done;
    out->ideal_s = (double)s->items / total;
    out->claims = weft__coord_claims(m.c);
    out->coord_busy = m.last_done > 0 ? m.coord_busy / m.last_done : 0;
    if (counts)
        for (uint64_t i = 0; i < s->items; i++) {
            out->twice += counts[i] > 1;
            out->never += counts[i] == 0;
        }
    free(m.h.e);
    free(m.r);
    weft__coord_destroy(&m.c);
    return rc;
}
