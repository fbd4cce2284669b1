/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "weft/weft.h"

#define WEFT_STR_(x) #x
#define WEFT_STR(x) WEFT_STR_(x)

WEFT_API const char *weft_version(void)
{
    return WEFT_STR(WEFT_VERSION_MAJOR) "." WEFT_STR(WEFT_VERSION_MINOR) "." WEFT_STR(
        WEFT_VERSION_PATCH);
}

WEFT_API const char *weft_strerror(int err)
{
    if (err == 0)
        return "success";
    /* strerrordesc_np reads a static table: thread-safe, unlike strerror. */
    const char *s = strerrordesc_np(err < 0 ? -err : err);
    return s ? s : "unknown error";
}

WEFT_API unsigned weft_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

/* ---- messages ------------------------------------------------------------ */

void weft__vmsgf(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (!buf || size == 0)
        return;
    vsnprintf(buf, size, fmt, ap);
}

void weft__msgf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__vmsgf(buf, size, fmt, ap);
    va_end(ap);
}

int weft__failf(int rc, char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__vmsgf(buf, size, fmt, ap);
    va_end(ap);
    return rc;
}

void weft__vmsg_appendf(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (!buf || size == 0)
        return;
    size_t used = strnlen(buf, size - 1);
    vsnprintf(buf + used, size - used, fmt, ap);
}

void weft__msg_appendf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    weft__vmsg_appendf(buf, size, fmt, ap);
    va_end(ap);
}

/* ---- paths --------------------------------------------------------------- */

int weft__path_join(char *out, size_t size, const char *dir, const char *name)
{
    size_t nd = strlen(dir), nn = strlen(name);
    bool slash = nd > 0 && dir[nd - 1] != '/';
    if (nd + slash + nn >= size) {
        if (size > 0)
            out[0] = '\0';
        return -ENAMETOOLONG;
    }
    memcpy(out, dir, nd);
    if (slash)
        out[nd] = '/';
    memcpy(out + nd + slash, name, nn + 1);
    return 0;
}

char *weft__path_join_dup(const char *dir, const char *name)
{
    size_t size = strlen(dir) + 1 + strlen(name) + 1;
    char *out = malloc(size);
    if (out)
        weft__path_join(out, size, dir, name); /* sized to fit */
    return out;
}

char *weft__path_resolve(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir || !dir[0])
        return strdup(p);
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    if (p[0] == '\0' || strcmp(p, ".") == 0) {
        /* dir itself, without its trailing '/' unless it is "/" */
        size_t nd = strlen(dir);
        if (nd > 1 && dir[nd - 1] == '/')
            nd--;
        return strndup(dir, nd);
    }
    return weft__path_join_dup(dir, p);
}

int weft__open_temp(const char *path, int flags, unsigned mode)
{
    for (int tries = 0; tries < 3; tries++) {
        int fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            errno = EISDIR;
            return -1;
        }
        if (unlink(path) != 0 && errno != ENOENT)
            return -1;
    }
    errno = EEXIST; /* someone keeps creating it */
    return -1;
}
