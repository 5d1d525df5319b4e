/*
 * An idle pool sleeps: after work has come and gone, the process's CPU time
 * over an idle second stays near zero, and a submit still wakes a worker.
 * This reads CPU time, not wall time, so machine load does not skew it.
 */
#include <stdatomic.h>
#include <time.h>

#include "check.h"
#include "ripen.h"

static atomic_int ran;

static void fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void idle_pool_burns_no_cpu(void)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p;
	uint64_t c0, c1;

	o.workers = 4; /* more workers than this machine's cores: all must park */
	CHECK_OK(ripen_pool_create(&o, &p));
	for (int i = 0; i < 10000; i++)
		CHECK_OK(ripen_submit(p, fn, NULL, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	test_sleep_ns(50000000); /* let the spinners reach their park */
	c0 = cpu_ns();
	test_sleep_ns(1000000000);
	c1 = cpu_ns();
	printf("# CPU time over an idle second: %.3f ms\n", (double)(c1 - c0) / 1e6);
	/* 20 ms = 2% of one core: parked workers use none; this leaves room
	 * for the sanitizers' own background threads */
	CHECK_LT(c1 - c0, 20000000);
	/* and a submit to the sleeping pool is still picked up */
	CHECK_OK(ripen_submit(p, fn, NULL, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	CHECK_EQ(atomic_load(&ran), 10001);
	ripen_pool_destroy(p);
}

TEST_MAIN(T(idle_pool_burns_no_cpu))
