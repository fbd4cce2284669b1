/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

static void remove_tmpdir(void);

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    remove_tmpdir(); /* abort() skips atexit handlers */
    abort();
}

static char tmpdir[4096];
static pid_t tmpdir_owner;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tmpdir(void)
{
    /* Only the process that made it removes it (a forked child inherits
     * the atexit handler). */
    if (tmpdir[0] && tmpdir_owner == getpid())
        nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    if (tmpdir[0])
        return tmpdir;
    const char *base = getenv("TMPDIR");
    if (!base || base[0] != '/')
        base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/weft-fuzz-XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    tmpdir_owner = getpid();
    atexit(remove_tmpdir);
    return tmpdir;
}

void fuzz_write_file(const char *name, const void *data, size_t len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
    /* No O_TRUNC: ext4 flushes a file truncated to 0 when it is closed
     * (auto_da_alloc), which would cost more than the code under test. */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    const char *p = data;
    off_t off = 0;
    for (size_t left = len; left > 0;) {
        ssize_t n = pwrite(fd, p, left, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror(path);
            abort();
        }
        p += n, off += n;
        left -= (size_t)n;
    }
    if (ftruncate(fd, (off_t)len) != 0) {
        perror(path);
        abort();
    }
    close(fd);
}

char *fuzz_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *grown = realloc(buf, 2 * cap + 1);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

int fuzz_ref_parse_int64(const char *s, int64_t *out)
{
    bool neg = false, hex = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        hex = true;
        s += 2;
    }
    size_t n = strspn(s, hex ? "0123456789abcdefABCDEF" : "0123456789");
    if (n == 0 || s[n] != '\0')
        return -EINVAL;
    uint64_t mag = 0;
    bool overflow = false;
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        unsigned d = c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
        overflow |= __builtin_mul_overflow(mag, hex ? 16u : 10u, &mag);
        overflow |= __builtin_add_overflow(mag, d, &mag);
    }
    if (overflow || mag > (uint64_t)INT64_MAX + neg)
        return -ERANGE;
    if (!neg)
        *out = (int64_t)mag;
    else
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    return 0;
}

char *fuzz_strndup(const void *data, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    if (len)
        memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

const uint8_t *fuzz_memmem(const uint8_t *data, size_t len, const char *needle)
{
    return memmem(data, len, needle, strlen(needle));
}
