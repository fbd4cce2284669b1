/* SPDX-License-Identifier: MIT */
/*
 * A per-thread alternate signal stack.  A plugin that recurses without end
 * overflows its thread's stack; without an alternate stack the kernel
 * cannot run weft's crash handler and kills the process silently, so the
 * journal never learns which item did it (and poison is never found).
 */
#ifndef WEFT_CORE_ALTSTACK_H
#define WEFT_CORE_ALTSTACK_H

/*
 * Gives the calling thread an alternate signal stack unless it has one
 * (a sanitizer's, or the embedding program's, is kept).  Cheap after the
 * first call on a thread (one thread-local test).  The stack is released
 * when the thread exits.  0, or a negative errno (the thread then simply
 * has none).
 */
int weft__altstack_ensure(void);

#endif
