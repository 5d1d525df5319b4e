/*
 * Task-block recycling (runtime/alloc.c): blocks freed by workers come back
 * to the threads that submit, and none is lost when threads exit. Producer
 * threads come and go while a pool runs: each submits tasks with a bounded
 * backlog (so workers free while it still submits, and magazines travel
 * back through the depot). Half of them keep a few handles and release
 * them (so they free blocks too); the other half only ever allocate, so
 * their lists must be returned at exit all the same. After the producers exit and the pool is destroyed (its
 * workers exit), every block still taken from jemalloc must be in the depot
 * or this thread's list. Without jemalloc (sanitizer builds) nothing is
 * recycled and the test only runs the traffic.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "alloc-internal.h"
#include "check.h"
#include "ripen.h"

#define PRODUCERS 6
#define PER_PRODUCER 20000u
#define BACKLOG 256u

static struct ripen_pool *pool;
static atomic_uint done;

static void task_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&done, 1, memory_order_relaxed);
}

static void *producer(void *arg)
{
	unsigned base = (unsigned)(uintptr_t)arg * PER_PRODUCER;
	struct ripen_task *h[16];
	unsigned nh = 0;

	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		/* keep at most BACKLOG outstanding across all producers */
		while (base + i - atomic_load_explicit(&done, memory_order_relaxed) > BACKLOG * PRODUCERS)
			sched_yield();
		/* even producers keep a few handles and release them at the end;
		 * odd ones never free a block, they only take them */
		if (base / PER_PRODUCER % 2 == 0 && i % 1000 == 0 && nh < 16)
			CHECK_OK(ripen_submit(pool, task_fn, NULL, NULL, &h[nh++]));
		else
			CHECK_OK(ripen_submit(pool, task_fn, NULL, NULL, NULL));
	}
	for (unsigned k = 0; k < nh; k++) {
		CHECK_OK(ripen_task_wait(h[k], -1));
		ripen_task_release(h[k]); /* the last reference may drop here */
	}
	return NULL;
}

static void blocks_come_back_and_none_leak(void)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	int64_t out;
	uint64_t held, taken;
	const unsigned total = PRODUCERS * PER_PRODUCER;

	o.workers = 2;
	CHECK_OK(ripen_pool_create(&o, &pool));
	/* producers one after another, so each exits while the pool runs */
	for (uintptr_t p = 0; p < PRODUCERS; p++) {
		pthread_t th;

		CHECK_OK(pthread_create(&th, NULL, producer, (void *)p));
		CHECK_OK(pthread_join(th, NULL));
	}
	CHECK_OK(ripen_pool_wait_idle(pool, -1));
	CHECK_EQ(atomic_load(&done), total);
	ripen_pool_destroy(pool);

	ripen__alloc_block_stats(&out, &held, &taken);
	printf("# %u tasks: %llu blocks taken from jemalloc, %lld still out, %llu held\n", total,
	       (unsigned long long)taken, (long long)out, (unsigned long long)held);
	if (out < 0)
		return; /* no jemalloc: libc malloc, nothing recycled */
	CHECK_EQ((uint64_t)out, held);
	/* recycling happened: far fewer blocks than tasks came from jemalloc */
	CHECK_LT(taken, total / 2);
}

TEST_MAIN(T(blocks_come_back_and_none_leak))
