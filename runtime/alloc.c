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
#include <stdatomic.h>
#include <stdint.h>

#include "common-internal.h"

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static unsigned arena_ind;
static int arena_flags; /* MALLOCX_ARENA(ind), or 0 when creation failed */
static RIPEN_TLS bool thread_bound; /* this thread's default arena is ours */

/*
 * Free 64-byte blocks (a plain task's size) are recycled by ripen itself,
 * magazine style (Bonwick and Adams, "Magazines and Vmem", USENIX 2001):
 * every thread keeps a LIFO list threaded through the blocks, and full
 * magazines of RIPEN_MAG blocks move through a mutex-protected depot. That
 * is what carries blocks back from the workers, which free tasks, to the
 * application's threads, which allocate them. Measured with callgrind (one
 * producer thread, one worker, 200k tasks): jemalloc's mallocx with an
 * explicit arena cost ~180 instructions a task on the producer, and the
 * worker's frees ~160 once its thread cache kept flushing to the arena;
 * the lists cost a few, the depot a lock per RIPEN_MAG blocks. Bounded: a
 * thread keeps at most 2 * RIPEN_MAG, the depot RIPEN_DEPOT_MAX magazines;
 * the rest goes back to jemalloc. A thread's list goes back when it exits
 * (workers in ripen__alloc_unbind_thread, other threads through a
 * pthread key destructor).
 */
#define RIPEN_DEPOT_MAX 64u

RIPEN_TLS struct ripen__block *ripen__cache_head;
RIPEN_TLS unsigned ripen__cache_n;
/* thread_bound || cache_keyed, for the inline fast path of a free */
RIPEN_TLS bool ripen__cache_ok;
static RIPEN_TLS bool cache_keyed; /* an application thread: its destructor is armed */

static pthread_mutex_t depot_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ripen__block *depot[RIPEN_DEPOT_MAX]; /* each a list of RIPEN_MAG blocks */
/* Written under depot_lock only; read without it as a hint (cache_refill).
 * relaxed everywhere: the lock orders the depot itself. */
static _Atomic unsigned depot_n;
static pthread_key_t cache_key;
/* Blocks taken from jemalloc and not given back: the leak check of
 * test_alloc. Counted on the jemalloc calls only, never on a list hit.
 * relaxed: a statistic; the test reads it after joining every thread. */
static _Atomic int64_t blocks_out;
static _Atomic uint64_t blocks_taken; /* ever taken from jemalloc */

static void block_release(struct ripen__block *b)
{
	atomic_fetch_sub_explicit(&blocks_out, 1, memory_order_relaxed);
	sdallocx(b, RIPEN_BLOCK_SIZE, 0);
}

static void cache_flush(void)
{
	while (ripen__cache_head != NULL) {
		struct ripen__block *b = ripen__cache_head;

		ripen__cache_head = b->next;
		block_release(b);
	}
	ripen__cache_n = 0;
}

/* An application thread exits. A block it frees after this (from another
 * key's destructor) arms the key again: POSIX runs destructors again for a
 * value set meanwhile. */
static void cache_destructor(void *unused)
{
	(void)unused;
	cache_flush();
	cache_keyed = false;
	ripen__cache_ok = thread_bound;
}

static void arena_create(void)
{
	unsigned ind;
	size_t sz = sizeof(ind);

	if (mallctl("arenas.create", &ind, &sz, NULL, 0) == 0) {
		arena_ind = ind;
		arena_flags = MALLOCX_ARENA(ind);
	}
	if (pthread_key_create(&cache_key, cache_destructor) != 0)
		RIPEN_DIE("pthread_key_create failed");
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
	    mallctl("thread.arena", NULL, NULL, &arena_ind, sizeof(arena_ind)) == 0) {
		thread_bound = true;
		ripen__cache_ok = true;
	}
}

void ripen__alloc_unbind_thread(void)
{
	cache_flush();
	thread_bound = false;
	ripen__cache_ok = cache_keyed;
}

/* An application thread is about to hold blocks in its list: have them
 * returned when it exits. false if that cannot be arranged (then it must
 * not hold any). Its first call may come before anything else in the
 * process used ripen's allocator: the key is created with the arena. */
static inline bool cache_arm(void)
{
	if (ripen__likely(ripen__cache_ok))
		return true;
	pthread_once(&arena_once, arena_create);
	if (pthread_setspecific(cache_key, &cache_keyed) != 0)
		return false;
	cache_keyed = true;
	ripen__cache_ok = true;
	return true;
}

/* Refill an empty list with a magazine from the depot: true if one was there. */
static bool cache_refill(void)
{
	struct ripen__block *m = NULL;
	unsigned n;

	if (!cache_arm())
		return false;
	/* relaxed: a hint. A growing queue (every new task a new block) finds
	 * the depot empty each time, and the lock cost it ~60 instructions a
	 * block (callgrind, cg driver fib); a magazine spilled just now is
	 * found by the next refill */
	if (atomic_load_explicit(&depot_n, memory_order_relaxed) == 0)
		return false;
	pthread_mutex_lock(&depot_lock);
	n = atomic_load_explicit(&depot_n, memory_order_relaxed);
	if (n > 0) {
		m = depot[--n];
		atomic_store_explicit(&depot_n, n, memory_order_relaxed);
	}
	pthread_mutex_unlock(&depot_lock);
	if (m == NULL)
		return false;
	ripen__cache_head = m;
	ripen__cache_n = RIPEN_MAG;
	return true;
}

/* The list is full: hand its first RIPEN_MAG blocks to the depot, or back
 * to jemalloc when the depot is full too. */
static void cache_spill(void)
{
	struct ripen__block *m = ripen__cache_head, *last = m;
	bool kept = false;
	unsigned n;

	for (unsigned i = 1; i < RIPEN_MAG; i++)
		last = last->next;
	ripen__cache_head = last->next;
	ripen__cache_n -= RIPEN_MAG;
	last->next = NULL;
	pthread_mutex_lock(&depot_lock);
	n = atomic_load_explicit(&depot_n, memory_order_relaxed);
	if (n < RIPEN_DEPOT_MAX) {
		depot[n] = m;
		atomic_store_explicit(&depot_n, n + 1, memory_order_relaxed);
		kept = true;
	}
	pthread_mutex_unlock(&depot_lock);
	while (!kept && m != NULL) {
		struct ripen__block *b = m;

		m = b->next;
		block_release(b);
	}
}

void *ripen__malloc(size_t size)
{
	if (size == RIPEN_BLOCK_SIZE && (ripen__cache_head != NULL || cache_refill())) {
		struct ripen__block *b = ripen__cache_head;

		ripen__cache_head = b->next;
		ripen__cache_n--;
		return b;
	}
	if (size == RIPEN_BLOCK_SIZE) {
		/* relaxed: see blocks_out */
		atomic_fetch_add_explicit(&blocks_out, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&blocks_taken, 1, memory_order_relaxed);
	}
	if (thread_bound)
		return mallocx(size, 0);
	pthread_once(&arena_once, arena_create);
	return mallocx(size, arena_flags);
}

void ripen__alloc_block_stats(int64_t *out, uint64_t *held, uint64_t *taken)
{
	/* relaxed: see blocks_out */
	*out = atomic_load_explicit(&blocks_out, memory_order_relaxed);
	*taken = atomic_load_explicit(&blocks_taken, memory_order_relaxed);
	pthread_mutex_lock(&depot_lock);
	*held = (uint64_t)atomic_load_explicit(&depot_n, memory_order_relaxed) * RIPEN_MAG +
		ripen__cache_n;
	pthread_mutex_unlock(&depot_lock);
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
	struct ripen__block *b = p;

	if (p == NULL)
		return;
	if (size != RIPEN_BLOCK_SIZE) {
		sdallocx(p, size, 0);
		return;
	}
	if (!cache_arm()) {
		block_release(b);
		return;
	}
	b->next = ripen__cache_head;
	ripen__cache_head = b;
	if (++ripen__cache_n >= 2 * RIPEN_MAG)
		cache_spill();
}

#else /* libc malloc: sanitizer builds, or no jemalloc found */

void ripen__alloc_bind_thread(void)
{
}

void ripen__alloc_unbind_thread(void)
{
}

void ripen__alloc_block_stats(int64_t *out, uint64_t *held, uint64_t *taken)
{
	*out = -1; /* no recycling without jemalloc */
	*held = 0;
	*taken = 0;
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
