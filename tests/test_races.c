/*
 * Races the contract must survive: cancel against start, release before
 * completion, waits with timeouts against completion, submits racing
 * shutdown in both modes, pools created and destroyed in a loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "ripen.h"

#define MAXN (1u << 17)

static atomic_uchar ran[MAXN];
static atomic_uchar cancel_ok[MAXN];

static void mark_fn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;

	if (atomic_fetch_add(&ran[id], 1) != 0)
		check_fail(__FILE__, __LINE__, "task %u ran twice", id);
	if (atomic_load(&cancel_ok[id]))
		check_fail(__FILE__, __LINE__, "task %u ran after cancel returned 0", id);
}

static struct ripen_pool *make_pool(unsigned workers)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p;

	o.workers = workers;
	CHECK_OK(ripen_pool_create(&o, &p));
	return p;
}

/* Cancel right after submit, while workers are busy dispatching: either the
 * cancel wins (0: never runs) or the start wins (-EBUSY/-EALREADY: runs once). */
static void cancel_races_start(void)
{
	unsigned n = (unsigned)(100000 * test_scale());
	struct ripen_pool *p = make_pool(3);
	unsigned won = 0, lost = 0;

	memset(ran, 0, sizeof(ran));
	memset(cancel_ok, 0, sizeof(cancel_ok));
	for (unsigned i = 0; i < n; i++) {
		struct ripen_task *t;
		int rc;

		CHECK_OK(ripen_submit(p, mark_fn, (void *)(uintptr_t)i, NULL, &t));
		if (i % 4 == 1)
			sched_yield();
		rc = ripen_task_cancel(t);
		if (rc == 0) {
			atomic_store(&cancel_ok[i], 1);
			won++;
		} else {
			CHECK(rc == -EBUSY || rc == -EALREADY);
			lost++;
		}
		/* half the handles are released before the task can finish */
		if (i % 2 == 0) {
			ripen_task_release(t);
		} else {
			CHECK_OK(ripen_task_wait(t, -1));
			CHECK_EQ(ripen_task_state(t), rc == 0 ? RIPEN_TASK_CANCELLED : RIPEN_TASK_DONE);
			ripen_task_release(t);
		}
	}
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	for (unsigned i = 0; i < n; i++)
		if (atomic_load(&ran[i]) + atomic_load(&cancel_ok[i]) != 1)
			check_fail(__FILE__, __LINE__, "task %u: ran %u, cancelled %u", i,
				   atomic_load(&ran[i]), atomic_load(&cancel_ok[i]));
	printf("# cancel won %u, start won %u\n", won, lost);
	CHECK_GT(won, 0);
	CHECK_GT(lost, 0);
	ripen_pool_destroy(p);
}

static void sleepy_fn(void *arg)
{
	test_sleep_ns((uint64_t)(uintptr_t)arg);
}

/* Waits with short timeouts racing completion: 0 only once DONE. */
static void wait_timeouts_race_completion(void)
{
	struct ripen_pool *p = make_pool(2);
	uint64_t rng = 3;
	unsigned timeouts = 0, completions = 0;

	for (int i = 0; i < (int)(2000 * test_scale()); i++) {
		struct ripen_task *t;
		uint64_t sleep = test_rand(&rng) % 50000, to = test_rand(&rng) % 60000;
		int rc;

		CHECK_OK(ripen_submit(p, sleepy_fn, (void *)(uintptr_t)sleep, NULL, &t));
		rc = ripen_task_wait(t, (int64_t)to);
		if (rc == 0) {
			CHECK_EQ(ripen_task_state(t), RIPEN_TASK_DONE);
			completions++;
		} else {
			CHECK_EQ(rc, -ETIMEDOUT);
			timeouts++;
		}
		ripen_task_release(t);
	}
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	printf("# waits: %u completed, %u timed out\n", completions, timeouts);
	CHECK_GT(completions, 0);
	CHECK_GT(timeouts, 0);
	ripen_pool_destroy(p);
}

/* Several threads wait on one task while it completes. */
static struct ripen_task *shared_task;

static void *waiter(void *arg)
{
	(void)arg;
	CHECK_OK(ripen_task_wait(shared_task, -1));
	CHECK_EQ(ripen_task_state(shared_task), RIPEN_TASK_DONE);
	return NULL;
}

static void many_waiters_one_task(void)
{
	struct ripen_pool *p = make_pool(2);
	pthread_t th[6];

	for (int round = 0; round < 50; round++) {
		CHECK_OK(ripen_submit(p, sleepy_fn, (void *)(uintptr_t)200000, NULL, &shared_task));
		for (int i = 0; i < 6; i++)
			CHECK_OK(pthread_create(&th[i], NULL, waiter, NULL));
		for (int i = 0; i < 6; i++)
			pthread_join(th[i], NULL);
		ripen_task_release(shared_task);
	}
	ripen_pool_destroy(p);
}

/* Submitters hammer a pool while it shuts down. Accepted tasks run exactly
 * once (DRAIN) or run or are cancelled exactly once (CANCEL); refused ones
 * never run; nothing leaks (ASan/LSan builds check that). */
struct hammer {
	struct ripen_pool *pool;
	unsigned first, count;
	unsigned accepted;
	atomic_int *go;
};

static atomic_uchar accepted[MAXN];
static atomic_uchar ran_or_cancelled[MAXN];

static void ledger_fn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;

	if (atomic_fetch_add(&ran_or_cancelled[id], 1) != 0)
		check_fail(__FILE__, __LINE__, "task %u ran twice", id);
}

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load(h->go))
		;
	for (unsigned i = 0; i < h->count; i++) {
		unsigned id = h->first + i;
		int rc = ripen_submit(h->pool, ledger_fn, (void *)(uintptr_t)id, NULL, NULL);

		if (rc == 0) {
			atomic_store(&accepted[id], 1);
			h->accepted++;
		} else {
			CHECK_EQ(rc, -ESHUTDOWN);
		}
	}
	return NULL;
}

static void submit_races_shutdown(void)
{
	const unsigned threads = 3, per = (unsigned)(4000 * test_scale()) + 100;
	unsigned rounds = (unsigned)(40 * test_scale()) + 4;

	for (unsigned round = 0; round < rounds; round++) {
		enum ripen_shutdown how = round % 2 ? RIPEN_SHUTDOWN_CANCEL : RIPEN_SHUTDOWN_DRAIN;
		struct ripen_pool *p = make_pool(1 + round % 3);
		struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
		struct hammer h[3];
		pthread_t th[3];
		atomic_int go = 0;
		uint64_t acc = 0, done = 0;

		memset(accepted, 0, sizeof(accepted));
		memset(ran_or_cancelled, 0, sizeof(ran_or_cancelled));
		for (unsigned i = 0; i < threads; i++) {
			h[i] = (struct hammer){ p, i * per, per, 0, &go };
			CHECK_OK(pthread_create(&th[i], NULL, hammer_thread, &h[i]));
		}
		atomic_store(&go, 1);
		test_sleep_ns((round % 5) * 20000);
		CHECK_OK(ripen_pool_shutdown(p, how));
		for (unsigned i = 0; i < threads; i++) {
			pthread_join(th[i], NULL);
			acc += h[i].accepted;
		}
		CHECK_OK(ripen_pool_stats(p, &st));
		for (unsigned id = 0; id < threads * per; id++) {
			unsigned a = atomic_load(&accepted[id]), r = atomic_load(&ran_or_cancelled[id]);

			if (!a && r)
				check_fail(__FILE__, __LINE__, "refused task %u ran", id);
			if (a && how == RIPEN_SHUTDOWN_DRAIN && r != 1)
				check_fail(__FILE__, __LINE__, "accepted task %u ran %u times in a drain", id, r);
			done += r;
		}
		CHECK_EQ(st.submitted, acc);
		CHECK_EQ(st.run, done);
		CHECK_EQ(st.submitted, st.run + st.cancelled);
		CHECK_EQ(st.rejected, threads * per - acc);
		ripen_pool_destroy(p);
	}
}

/* Pools created and destroyed in a loop, some never used, some paused,
 * some destroyed with work still queued: destroy drains every one. */
static atomic_int loop_ran;

static void loop_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&loop_ran, 1);
}

static void create_destroy_loop(void)
{
	int expect = 0;

	atomic_store(&loop_ran, 0);
	for (int i = 0; i < (int)(200 * test_scale()) + 10; i++) {
		struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
		struct ripen_pool *p;

		o.workers = 1 + i % 4;
		o.start_paused = i % 3 == 0;
		CHECK_OK(ripen_pool_create(&o, &p));
		for (int k = 0; k < i % 7; k++, expect++)
			CHECK_OK(ripen_submit(p, loop_fn, NULL, NULL, NULL));
		ripen_pool_destroy(p);
		CHECK_EQ(atomic_load(&loop_ran), expect);
	}
	CHECK_GT(expect, 0);
}

TEST_MAIN(T(cancel_races_start), T(wait_timeouts_race_completion), T(many_waiters_one_task),
	  T(submit_races_shutdown), T(create_destroy_loop))
