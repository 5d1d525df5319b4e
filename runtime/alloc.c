/*
 * Allocation: see alloc-internal.h for the why. The arena index is created
 * on first use under pthread_once; if jemalloc refuses to create one (it
 * never has in practice) we fall back to its default arenas rather than fail.
 */
#include "alloc-internal.h"

#include <stdlib.h>

#ifdef RIPEN_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#include <pthread.h>

#include "common-internal.h"

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static unsigned arena_ind;
static int arena_flags; /* MALLOCX_ARENA(ind), or 0 when creation failed */
static RIPEN_TLS bool thread_bound; /* this thread's default arena is ours */

/*
 * A worker's cache of free 64-byte blocks (a plain task's size), a LIFO
 * list threaded through the blocks themselves. jemalloc's own thread cache
 * is behind an API that costs ~90 instructions a mallocx and ~30 a
 * sdallocx (callgrind, spawn tree); this costs a few. Bounded, and flushed
 * when the worker exits. Worker threads only: a block freed by a worker may
 * come from any thread's allocation, which is fine, they all come from
 * ripen's arena.
 */
#define RIPEN_BLOCK_SIZE 64u
#define RIPEN_BLOCK_CACHE 256u

struct block {
	struct block *next;
};

static RIPEN_TLS struct block *cache_head;
static RIPEN_TLS unsigned cache_n;

static void arena_create(void)
{
	unsigned ind;
	size_t sz = sizeof(ind);

	if (mallctl("arenas.create", &ind, &sz, NULL, 0) == 0) {
		arena_ind = ind;
		arena_flags = MALLOCX_ARENA(ind);
	}
}

/*
 * Workers make ripen's arena their thread's default: then mallocx(size, 0)
 * takes jemalloc's fast path (thread cache, no flag decoding) and still
 * allocates from that arena. Measured: an explicit MALLOCX_ARENA allocation
 * costs ~120 instructions, the bound fast path a fraction of that. Other
 * threads (the application's submitters) pass the arena explicitly.
 */
void ripen__alloc_bind_thread(void)
{
	pthread_once(&arena_once, arena_create);
	if (arena_flags != 0 &&
	    mallctl("thread.arena", NULL, NULL, &arena_ind, sizeof(arena_ind)) == 0)
		thread_bound = true;
}

void ripen__alloc_unbind_thread(void)
{
	while (cache_head != NULL) {
		struct block *b = cache_head;

		cache_head = b->next;
		sdallocx(b, RIPEN_BLOCK_SIZE, 0);
	}
	cache_n = 0;
	thread_bound = false;
}

void *ripen__malloc(size_t size)
{
	if (thread_bound) {
		if (size == RIPEN_BLOCK_SIZE && cache_head != NULL) {
			struct block *b = cache_head;

			cache_head = b->next;
			cache_n--;
			return b;
		}
		return mallocx(size, 0);
	}
	pthread_once(&arena_once, arena_create);
	return mallocx(size, arena_flags);
}

void *ripen__realloc(void *p, size_t old_size, size_t new_size)
{
	(void)old_size;
	if (p == NULL)
		return ripen__malloc(new_size);
	return rallocx(p, new_size, arena_flags);
}

void ripen__free(void *p, size_t size)
{
	if (p == NULL)
		return;
	if (size == RIPEN_BLOCK_SIZE && thread_bound && cache_n < RIPEN_BLOCK_CACHE) {
		struct block *b = p;

		b->next = cache_head;
		cache_head = b;
		cache_n++;
		return;
	}
	sdallocx(p, size, 0);
}

#else /* libc malloc: sanitizer builds, or no jemalloc found */

void ripen__alloc_bind_thread(void)
{
}

void ripen__alloc_unbind_thread(void)
{
}

void *ripen__malloc(size_t size)
{
	return malloc(size);
}

void *ripen__realloc(void *p, size_t old_size, size_t new_size)
{
	(void)old_size;
	return realloc(p, new_size);
}

void ripen__free(void *p, size_t size)
{
	(void)size;
	free(p);
}
#endif
