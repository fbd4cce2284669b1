/* SPDX-License-Identifier: MIT */
/* The claim coordinator's policy (coord.h). */
#include "coord.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The weight of the newest claim in a rank's speed: high enough to follow
 * a rank that slows down, low enough that one noisy claim does not halve
 * the next. */
#define SPEED_ALPHA 0.3

typedef struct rank {
    unsigned head, n;  /* its claims: ring[(head + k) % ahead], oldest first */
    double last_done;  /* when its last claim ended; < 0: none yet          */
    double speed;      /* items per second; 0: not measured yet             */
    bool lost;
} rank_t;

struct weft__coord {
    weft__coord_settings_t s;
    uint64_t next;          /* items [next, items) never handed out         */
    uint64_t done;          /* items in claims reported done                */
    uint64_t claims;
    unsigned live;          /* ranks not lost                               */
    double total_speed;     /* the speeds of the live ranks measured so far */
    rank_t *ranks;
    weft__coord_claim_t *held; /* ranks * ahead: rank r's ring at r * ahead  */
    double *granted;           /* when each held claim was handed out        */
    weft__coord_claim_t *redo; /* given back by lost ranks, handed out first */
    size_t n_redo, cap_redo;
    uint64_t redo_items;
};

int weft__coord_create(weft__coord_t **out, const weft__coord_settings_t *s)
{
    *out = NULL;
    if (!s->ranks || (s->max_claim && s->min_claim > s->max_claim))
        return -EINVAL;
    weft__coord_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->s = *s;
    if (!c->s.ahead)
        c->s.ahead = 2;
    if (c->s.target_s <= 0)
        c->s.target_s = 0.5;
    if (!c->s.first_claim)
        c->s.first_claim = 64;
    if (!c->s.min_claim)
        c->s.min_claim = 1;
    c->live = s->ranks;
    size_t slots = (size_t)s->ranks * c->s.ahead;
    c->ranks = calloc(s->ranks, sizeof *c->ranks);
    c->held = calloc(slots, sizeof *c->held);
    c->granted = calloc(slots, sizeof *c->granted);
    if (!c->ranks || !c->held || !c->granted) {
        weft__coord_destroy(&c);
        return -ENOMEM;
    }
    for (unsigned r = 0; r < s->ranks; r++)
        c->ranks[r].last_done = -1;
    *out = c;
    return 0;
}

void weft__coord_destroy(weft__coord_t **pc)
{
    weft__coord_t *c = *pc;
    if (!c)
        return;
    free(c->ranks);
    free(c->held);
    free(c->granted);
    free(c->redo);
    free(c);
    *pc = NULL;
}

/* How many items rank's next claim should hold. */
static uint64_t claim_size(const weft__coord_t *c, const rank_t *rk)
{
    double want = rk->speed > 0 ? rk->speed * c->s.target_s : (double)c->s.first_claim;
    uint64_t size = want >= 1e18 ? UINT64_C(1000000000000000000) : (uint64_t)want;
    /* The tail: no more than what is left over twice the ranks, and no
     * more than half of what the rank can do in the time the run has left
     * at everyone's speed (it may hold two claims), so that the last
     * claims are small, a slow rank's smallest, and all ranks end
     * together. */
    uint64_t left = c->s.items - c->next + c->redo_items;
    uint64_t share = (left + 2 * (uint64_t)c->live - 1) / (2 * (uint64_t)c->live);
    if (size > share)
        size = share;
    if (rk->speed > 0 && c->total_speed > 0) {
        double t_left = (double)left / c->total_speed;
        double fits = rk->speed * t_left / c->s.ahead;
        if ((double)size > fits)
            size = (uint64_t)fits;
    }
    if (size < c->s.min_claim)
        size = c->s.min_claim;
    if (c->s.max_claim && size > c->s.max_claim)
        size = c->s.max_claim;
    return size ? size : 1;
}

/* Takes up to size items from the redo list, else from the frontier. */
static bool take(weft__coord_t *c, uint64_t size, weft__coord_claim_t *out)
{
    if (c->n_redo) {
        weft__coord_claim_t *g = &c->redo[c->n_redo - 1];
        uint64_t n = g->count < size ? g->count : size;
        *out = (weft__coord_claim_t){g->first, n};
        g->first += n;
        g->count -= n;
        c->redo_items -= n;
        if (!g->count)
            c->n_redo--;
        return true;
    }
    if (c->next >= c->s.items)
        return false;
    uint64_t n = c->s.items - c->next < size ? c->s.items - c->next : size;
    *out = (weft__coord_claim_t){c->next, n};
    c->next += n;
    return true;
}

weft__coord_status_t weft__coord_claim(weft__coord_t *c, unsigned rank, double now,
                                       weft__coord_claim_t *out)
{
    if (rank >= c->s.ranks || c->ranks[rank].lost || weft__coord_finished(c))
        return WEFT__COORD_END;
    rank_t *rk = &c->ranks[rank];
    if (rk->n == c->s.ahead)
        return WEFT__COORD_FULL;
    if (!take(c, claim_size(c, rk), out))
        return WEFT__COORD_WAIT; /* all out: a lost rank may give some back */
    size_t slot = (size_t)rank * c->s.ahead + (rk->head + rk->n) % c->s.ahead;
    c->held[slot] = *out;
    c->granted[slot] = now;
    rk->n++;
    c->claims++;
    return WEFT__COORD_OK;
}

int weft__coord_done(weft__coord_t *c, unsigned rank, weft__coord_claim_t claim, double now)
{
    if (rank >= c->s.ranks)
        return -EINVAL;
    rank_t *rk = &c->ranks[rank];
    size_t slot = (size_t)rank * c->s.ahead + rk->head;
    if (rk->lost || !rk->n || c->held[slot].first != claim.first ||
        c->held[slot].count != claim.count)
        return -EINVAL;
    /* It ran from when it was handed out or when the one before it ended,
     * whichever is later (a queued claim waits for its turn). */
    double start = c->granted[slot] > rk->last_done ? c->granted[slot] : rk->last_done;
    double busy = now - start;
    if (busy > 0) {
        double speed = (double)claim.count / busy;
        double old = rk->speed;
        rk->speed = old > 0 ? (1 - SPEED_ALPHA) * old + SPEED_ALPHA * speed : speed;
        c->total_speed += rk->speed - old;
    }
    rk->last_done = now;
    rk->head = (rk->head + 1) % c->s.ahead;
    rk->n--;
    c->done += claim.count;
    return 0;
}

uint64_t weft__coord_lost(weft__coord_t *c, unsigned rank)
{
    if (rank >= c->s.ranks || c->ranks[rank].lost)
        return 0;
    rank_t *rk = &c->ranks[rank];
    uint64_t back = 0;
    if (c->n_redo + rk->n > c->cap_redo) {
        size_t cap = c->cap_redo ? 2 * c->cap_redo : 16;
        while (cap < c->n_redo + rk->n)
            cap *= 2;
        weft__coord_claim_t *p = realloc(c->redo, cap * sizeof *p);
        if (!p)
            return 0; /* the claims stay held: the run cannot finish, and says so */
        c->redo = p;
        c->cap_redo = cap;
    }
    /* Newest first onto the stack, so the oldest is handed out first. */
    for (unsigned k = rk->n; k-- > 0;) {
        weft__coord_claim_t g = c->held[(size_t)rank * c->s.ahead + (rk->head + k) % c->s.ahead];
        c->redo[c->n_redo++] = g;
        c->redo_items += g.count;
        back += g.count;
    }
    rk->n = 0;
    rk->lost = true;
    c->total_speed -= rk->speed;
    if (c->total_speed < 0)
        c->total_speed = 0;
    c->live--;
    if (!c->live)
        c->live = 1; /* no one to share with: keep the arithmetic sane */
    return back;
}

bool weft__coord_finished(const weft__coord_t *c)
{
    return c->done == c->s.items;
}

double weft__coord_speed(const weft__coord_t *c, unsigned rank)
{
    return rank < c->s.ranks ? c->ranks[rank].speed : 0;
}

uint64_t weft__coord_claims(const weft__coord_t *c)
{
    return c->claims;
}
