/*
 * Every accepted task runs exactly once or is reported cancelled: many
 * producers, tasks that spawn children, cancels racing dispatch. Counted per
 * task, not only in total.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "ripen.h"

#define PRODUCERS 4
#define MAX_TASKS (1u << 20)

static atomic_uchar runs[MAX_TASKS];
static atomic_uchar cancelled[MAX_TASKS];
static atomic_uint next_id;
static struct ripen_pool *pool;
static unsigned per_producer;

static void task_fn(void *arg);

static void submit_one(unsigned id, double base, bool handle, uint64_t *rng)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *t = NULL;

	o.base = base;
	o.class_id = id % 3;
	CHECK_OK(ripen_submit(pool, task_fn, (void *)(uintptr_t)id, &o, handle ? &t : NULL));
	if (!handle)
		return;
	/* cancel half of the handled tasks, at once or after a moment */
	if (test_rand(rng) % 2) {
		int rc = ripen_task_cancel(t);

		CHECK(rc == 0 || rc == -EBUSY || rc == -EALREADY);
		if (rc == 0)
			atomic_store(&cancelled[id], 1);
	}
	ripen_task_release(t);
}

static void task_fn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	unsigned prev = atomic_fetch_add(&runs[id], 1);

	if (prev != 0)
		check_fail(__FILE__, __LINE__, "task %u ran twice", id);
	if (atomic_load(&cancelled[id]))
		check_fail(__FILE__, __LINE__, "task %u ran after a successful cancel", id);
	/* one task in four spawns two children (bounded by the id space) */
	if (id % 4 == 0) {
		uint64_t rng = id * 2654435761u + 1;

		for (int c = 0; c < 2; c++) {
			unsigned cid = atomic_fetch_add(&next_id, 1);

			if (cid >= MAX_TASKS) {
				atomic_fetch_sub(&next_id, 1);
				break;
			}
			submit_one(cid, (double)(test_rand(&rng) % 100), false, &rng);
		}
	}
}

static void *producer(void *arg)
{
	uint64_t rng = (uintptr_t)arg * 7919 + 11;

	for (unsigned i = 0; i < per_producer; i++) {
		unsigned id = atomic_fetch_add(&next_id, 1);

		CHECK_LT(id, MAX_TASKS);
		submit_one(id, (double)(test_rand(&rng) % 100), test_rand(&rng) % 3 == 0, &rng);
	}
	return NULL;
}

static void run_round(unsigned workers)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	pthread_t th[PRODUCERS];
	uint64_t nrun = 0, ncancel = 0;
	unsigned n;

	memset(runs, 0, sizeof(runs));
	memset(cancelled, 0, sizeof(cancelled));
	atomic_store(&next_id, 0);
	o.workers = workers;
	CHECK_OK(ripen_pool_create(&o, &pool));
	for (uintptr_t p = 0; p < PRODUCERS; p++)
		CHECK_OK(pthread_create(&th[p], NULL, producer, (void *)(p + 1)));
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(th[p], NULL);
	CHECK_OK(ripen_pool_wait_idle(pool, -1));
	n = atomic_load(&next_id);
	for (unsigned id = 0; id < n; id++) {
		unsigned r = atomic_load(&runs[id]), c = atomic_load(&cancelled[id]);

		if (r + c != 1)
			check_fail(__FILE__, __LINE__, "task %u: ran %u times, cancelled %u", id, r, c);
		nrun += r;
		ncancel += c;
	}
	CHECK_OK(ripen_pool_stats(pool, &st));
	CHECK_EQ(st.submitted, n);
	CHECK_EQ(st.run, nrun);
	CHECK_EQ(st.cancelled, ncancel);
	CHECK_EQ(st.submitted, st.run + st.cancelled);
	ripen_pool_destroy(pool);
	printf("# workers=%u tasks=%u run=%llu cancelled=%llu steals=%llu inbox_steals=%llu stale=%llu\n",
	       workers, n, (unsigned long long)nrun, (unsigned long long)ncancel,
	       (unsigned long long)st.steals, (unsigned long long)st.inbox_steals,
	       (unsigned long long)st.stale_dropped);
}

static void many_producers_and_spawners(void)
{
	per_producer = (unsigned)(50000 * test_scale());
	run_round(1);
	run_round(2);
	run_round(5);
}

TEST_MAIN(T(many_producers_and_spawners))
