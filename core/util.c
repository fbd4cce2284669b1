/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

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
