/*
 * Memory for tasks and heap arrays.
 *
 * Normal builds take it from a jemalloc arena dedicated to ripen (created
 * once per process, so task handles may outlive their pool), which keeps
 * ripen's pages apart from the application's. In front of it, ripen's own
 * cache of free task-sized blocks: a short list per thread, and a depot of
 * 64-block magazines that carries blocks from the workers, which free
 * tasks, back to the threads that submit (alloc.c). Sanitizer builds use
 * libc malloc, because the sanitizers must own (and see) every allocation;
 * meson forces that.
 *
 * All functions: any thread. Sized frees: `size` must be the size allocated.
 */
#ifndef RIPEN_ALLOC_INTERNAL_H
#define RIPEN_ALLOC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

void *ripen__malloc(size_t size);
void *ripen__realloc(void *p, size_t old_size, size_t new_size);
void ripen__free(void *p, size_t size);
/* A worker thread: allocate from ripen's arena by default (fast path).
 * (Every thread keeps a short list of free task-sized blocks: alloc.c.) */
void ripen__alloc_bind_thread(void);
/* The worker is leaving: return its cached blocks. */
void ripen__alloc_unbind_thread(void);
/* Task-sized blocks taken from jemalloc and not given back (*out; -1
 * without jemalloc), of those how many the depot and the calling thread's
 * list hold (*held), and how many were ever taken (*taken). Once every
 * other thread that used ripen has exited, *out == *held, or blocks
 * leaked. For tests. */
void ripen__alloc_block_stats(int64_t *out, uint64_t *held, uint64_t *taken);

#endif
