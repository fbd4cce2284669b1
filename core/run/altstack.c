/* SPDX-License-Identifier: MIT */
#include "altstack.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

/* Roomy: the handler that runs after ours may be a sanitizer's, which
 * symbolizes a stack trace on it.  A guard page below catches an overflow
 * of the alternate stack itself. */
enum { ALT_SIZE = 256 * 1024 };

static pthread_key_t alt_key;
static pthread_once_t alt_once = PTHREAD_ONCE_INIT;
static bool alt_key_ok;
static _Thread_local bool alt_done;

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* Thread exit: off first, then unmapped (a signal in between would run on
 * freed memory). */
static void alt_release(void *mem)
{
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    munmap(mem, page_size() + ALT_SIZE);
}

static void alt_make_key(void)
{
    alt_key_ok = pthread_key_create(&alt_key, alt_release) == 0;
}

int weft__altstack_ensure(void)
{
    if (alt_done)
        return 0;
    alt_done = true;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return 0;
    pthread_once(&alt_once, alt_make_key);
    if (!alt_key_ok)
        return -EAGAIN;
    size_t page = page_size();
    char *mem = mmap(NULL, page + ALT_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    stack_t ss = {.ss_sp = mem + page, .ss_size = ALT_SIZE};
    if (mprotect(mem, page, PROT_NONE) != 0 || sigaltstack(&ss, NULL) != 0) {
        int e = errno;
        munmap(mem, page + ALT_SIZE);
        return -e;
    }
    pthread_setspecific(alt_key, mem);
    return 0;
}
