/* SPDX-License-Identifier: MIT */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "summary.h"
#include "util.h"
#include "weft/weft.h"

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* This process's and its children's CPU seconds so far: user, sys. */
static bool cpu_now(double *user, double *sys)
{
    struct rusage self, children;
    if (getrusage(RUSAGE_SELF, &self) != 0 || getrusage(RUSAGE_CHILDREN, &children) != 0)
        return false; /* cannot happen with valid arguments */
    *user = tv_s(self.ru_utime) + tv_s(children.ru_utime);
    *sys = tv_s(self.ru_stime) + tv_s(children.ru_stime);
    return true;
}

static double start_user, start_sys;

void weft__summary_cpu_start(void)
{
    if (!cpu_now(&start_user, &start_sys))
        start_user = start_sys = 0;
}

void weft__summary_cpu(weft__summary_t *s)
{
    double user, sys;
    if (!cpu_now(&user, &sys))
        return; /* keep what is there */
    s->cpu_user_s = user - start_user;
    s->cpu_sys_s = sys - start_sys;
}

/* Items this run processed (not skipped, not quarantined, not not-run). */
static uint64_t processed(const weft__summary_t *s)
{
    return s->ok + s->failed + s->crashed + s->timed_out;
}

static double items_per_s(const weft__summary_t *s)
{
    return s->wall_s > 0 ? (double)processed(s) / s->wall_s : 0.0;
}

void weft__summary_print(FILE *f, const weft__summary_t *s)
{
    fprintf(f, "weft: %s: %" PRIu64 " ok, %" PRIu64 " failed",
            s->plugin ? s->plugin : "?", s->ok, s->failed);
    if (s->crashed)
        fprintf(f, ", %" PRIu64 " crashed", s->crashed);
    if (s->timed_out)
        fprintf(f, ", %" PRIu64 " timed out", s->timed_out);
    if (s->quarantined)
        fprintf(f, ", %" PRIu64 " quarantined", s->quarantined);
    fprintf(f, ", %" PRIu64 " not run", s->not_run);
    if (s->skipped)
        fprintf(f, ", %" PRIu64 " done before", s->skipped);
    fprintf(f, " in %.3f s (%.0f items/s, %u threads%s%s)", s->wall_s, items_per_s(s),
            s->threads, s->isolate && strcmp(s->isolate, "process") == 0 ? ", " : "",
            s->isolate && strcmp(s->isolate, "process") == 0 ? "isolated processes" : "");
    /* ok and failed say it already; the others deserve a word. */
    if (s->status && strcmp(s->status, "ok") != 0 && strcmp(s->status, "failed") != 0)
        fprintf(f, ": %s", s->status);
    fputc('\n', f);
    fprintf(
        f,
        "weft: cpu %.2f s user, %.2f s sys; init %.3f s, items %.3f s, finish %.3f s, "
        "output %.3f s\n",
        s->cpu_user_s, s->cpu_sys_s, s->init_s, s->items_s, s->finish_s, s->output_s);
    fflush(f);
}

/* Microseconds are plenty, and "0.402126" reads better than all 17 digits. */
static double us(double seconds)
{
    return round(seconds * 1e6) / 1e6;
}

/* "2026-12-04T01:50:12.345Z", or "" for a time not taken. */
static void iso_time(char *buf, size_t size, double t)
{
    buf[0] = '\0';
    if (t <= 0)
        return;
    time_t secs = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&secs, &tm))
        return;
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int ms = (int)((t - (double)secs) * 1000.0);
    snprintf(buf + n, size - n, ".%03dZ", ms < 0 ? 0 : ms > 999 ? 999 : ms);
}

static bool add_text_or_null(cJSON *o, const char *key, const char *v)
{
    return v && v[0] ? cJSON_AddStringToObject(o, key, v) != NULL
                     : cJSON_AddNullToObject(o, key) != NULL;
}

static cJSON *to_json(const weft__summary_t *s)
{
    cJSON *o = cJSON_CreateObject(), *ph = cJSON_CreateObject();
    if (!o || !ph) {
        cJSON_Delete(o);
        cJSON_Delete(ph);
        return NULL;
    }
    /* cJSON numbers are doubles: counts are exact up to 2^53. */
    char started[40], ended[40];
    iso_time(started, sizeof started, s->started_at);
    iso_time(ended, sizeof ended, s->ended_at);
    bool ok =
        cJSON_AddStringToObject(o, "weft_version", weft_version()) &&
        add_text_or_null(o, "config", s->config) && add_text_or_null(o, "output", s->output) &&
        add_text_or_null(o, "journal", s->journal) &&
        add_text_or_null(o, "started_at", started) && add_text_or_null(o, "ended_at", ended) &&
        cJSON_AddStringToObject(o, "plugin", s->plugin ? s->plugin : "") &&
        cJSON_AddNumberToObject(o, "threads", s->threads) &&
        cJSON_AddStringToObject(o, "isolate", s->isolate ? s->isolate : "thread") &&
        cJSON_AddStringToObject(o, "status", s->status ? s->status : "") &&
        cJSON_AddNumberToObject(o, "exit_code", s->exit_code) &&
        (s->total == UINT64_MAX
             ? cJSON_AddNullToObject(o, "total")
             : cJSON_AddNumberToObject(o, "total", (double)s->total)) &&
        cJSON_AddNumberToObject(o, "ok", (double)s->ok) &&
        cJSON_AddNumberToObject(o, "failed", (double)s->failed) &&
        cJSON_AddNumberToObject(o, "crashed", (double)s->crashed) &&
        cJSON_AddNumberToObject(o, "timed_out", (double)s->timed_out) &&
        cJSON_AddNumberToObject(o, "quarantined", (double)s->quarantined) &&
        cJSON_AddNumberToObject(o, "skipped", (double)s->skipped) &&
        cJSON_AddNumberToObject(o, "not_run", (double)s->not_run) &&
        cJSON_AddNumberToObject(o, "wall_s", us(s->wall_s)) &&
        cJSON_AddNumberToObject(o, "cpu_user_s", us(s->cpu_user_s)) &&
        cJSON_AddNumberToObject(o, "cpu_sys_s", us(s->cpu_sys_s)) &&
        cJSON_AddNumberToObject(o, "items_per_s", round(items_per_s(s) * 1e3) / 1e3) &&
        cJSON_AddNumberToObject(ph, "init_s", us(s->init_s)) &&
        cJSON_AddNumberToObject(ph, "items_s", us(s->items_s)) &&
        cJSON_AddNumberToObject(ph, "finish_s", us(s->finish_s)) &&
        cJSON_AddNumberToObject(ph, "output_s", us(s->output_s));
    if (!ok || !cJSON_AddItemToObject(o, "phases", ph)) {
        cJSON_Delete(ph);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON *failed = cJSON_AddArrayToObject(o, "failed_items");
    ok = failed != NULL;
    for (size_t k = 0; ok && k < s->n_failed_items; k++) {
        cJSON *n = cJSON_CreateNumber((double)s->failed_items[k]);
        ok = n && cJSON_AddItemToArray(failed, n);
        if (!ok)
            cJSON_Delete(n);
    }
    if (!ok || !cJSON_AddBoolToObject(o, "failed_items_truncated", s->failed_truncated)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The folder holding path, so that the rename itself is durable. */
int weft__summary_write_json(const char *path, const weft__summary_t *s, char *err,
                             size_t errlen)
{
    cJSON *o = to_json(s);
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory building the summary", path);
        return -ENOMEM;
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's buffer has room: it held the NUL */
    int rc = 0;
    int named_fd = strcmp(path, "-") == 0 ? STDOUT_FILENO : weft__path_fd(path);
    if (named_fd >= 0) { /* "-", /dev/stdout, /dev/fd/N: that descriptor */
        fflush(stdout);
        rc = write_all(named_fd, text, len + 1);
        if (rc)
            snprintf(err, errlen, "summary to %s: %s",
                     named_fd == STDOUT_FILENO ? "standard output" : path, strerror(-rc));
        free(text);
        return rc;
    }
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        /* /dev/null, a FIFO, a terminal: written to, never replaced. */
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        rc = fd < 0 ? -errno : write_all(fd, text, len + 1);
        if (fd >= 0)
            close(fd);
        if (rc)
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        free(text);
        return rc;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        free(text);
        return -ENAMETOOLONG;
    }
    int fd = weft__open_temp(tmp, O_WRONLY, 0666); /* never through a symlink */
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        free(text);
        return rc;
    }
    const char *step = "write";
    rc = write_all(fd, text, len + 1);
    if (!rc && fsync(fd) != 0) {
        rc = -errno;
        step = "fsync";
    }
    /* Renamed, or removed, while its lock is held (weft__open_temp). */
    if (!rc && rename(tmp, path) != 0) {
        rc = -errno;
        step = "rename";
    }
    if (rc)
        unlink(tmp);
    if (close(fd) != 0 && !rc) {
        rc = -errno;
        step = "close";
    }
    if (rc)
        snprintf(err, errlen, "%s: %s: %s",
                 strcmp(step, "write") == 0 || strcmp(step, "fsync") == 0 ? tmp : path, step,
                 strerror(-rc));
    else
        weft__sync_folder_of(path); /* best effort: the summary is written */
    free(text);
    return rc;
}
