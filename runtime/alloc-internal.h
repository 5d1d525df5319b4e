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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common-internal.h"

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

/*
 * A plain task's block, inline: the fast paths of ripen__malloc and
 * ripen__free for that size (the thread's list), with everything else in
 * alloc.c. Out of line, the two calls and their prologues cost ~45
 * instructions a task (callgrind, ripen-cg-driver).
 */
#define RIPEN_BLOCK_SIZE 64u
#define RIPEN_MAG 64u

#ifdef RIPEN_HAVE_JEMALLOC
struct ripen__block {
	struct ripen__block *next;
};

/* This thread's list of free blocks (alloc.c): its head, its length, and
 * whether the thread may hold blocks at all (a worker, or a thread whose
 * exit destructor is armed). */
extern RIPEN_TLS struct ripen__block *ripen__cache_head;
extern RIPEN_TLS unsigned ripen__cache_n;
extern RIPEN_TLS bool ripen__cache_ok;

static inline void *ripen__block_alloc(void)
{
	struct ripen__block *b = ripen__cache_head;

	if (ripen__likely(b != NULL)) {
		ripen__cache_head = b->next;
		ripen__cache_n--;
		return b;
	}
	return ripen__malloc(RIPEN_BLOCK_SIZE); /* the depot, or jemalloc */
}

static inline void ripen__block_free(void *p)
{
	struct ripen__block *b = p;

	/* the last slot spills half to the depot: ripen__free does that */
	if (ripen__likely(ripen__cache_ok && ripen__cache_n + 1 < 2 * RIPEN_MAG)) {
		b->next = ripen__cache_head;
		ripen__cache_head = b;
		ripen__cache_n++;
		return;
	}
	ripen__free(p, RIPEN_BLOCK_SIZE);
}
#else
static inline void *ripen__block_alloc(void)
{
	return ripen__malloc(RIPEN_BLOCK_SIZE);
}

static inline void ripen__block_free(void *p)
{
	ripen__free(p, RIPEN_BLOCK_SIZE);
}
#endif

#endif
