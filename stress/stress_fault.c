/*
 * stress_fault: fault injection at every named point (runtime/fault-internal.h).
 * Needs a build with -Dfault_injection=true (-Dtiny=true makes the heap grow
 * all the time, so its growth is hit often); run it under ASan/LSan so that
 * "nothing leaks" is checked too.
 *
 * For each point and n = 1..N it fails the n-th hit and runs a scenario:
 * create a pool, submit plain, spawning, delayed and periodic tasks, wait,
 * destroy. Checks: every error is the documented one (-ENOMEM, -EAGAIN);
 * every accepted task ran exactly once or was cancelled; a refused one never
 * ran; nothing hangs (wait_idle has a deadline). Then runs with random
 * failures at every point at once.
 *
 *   stress_fault [-n max hit per point] [-s seconds of random failures] [-S seed]
 */
#include <errno.h>
#include <pthread.h>

#include "fault-internal.h"
#include "stress_common.h"

#define MAXT 4096

static struct rec recs[MAXT];
static atomic_uint next_id;
static struct ripen_pool *pool;
static atomic_uint refused;

static void task_fn(void *arg);

static int submit_one(unsigned id, int kind, struct ripen_task **h)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	recs[id].id = id;
	atomic_store(&recs[id].magic, REC_LIVE);
	atomic_store(&recs[id].runs, 0);
	atomic_store(&recs[id].cancelled, 0);
	o.base = (double)(id % 17);
	if (kind == 1)
		o.not_before_ns = ripen_now_ns() + 200000;
	return ripen_submit(pool, task_fn, &recs[id], &o, h);
}

static void task_fn(void *arg)
{
	struct rec *r = arg;

	rec_run(r);
	if (r->id % 5 == 0) { /* spawn a child from inside the task */
		unsigned id = atomic_fetch_add(&next_id, 1);
		int rc;

		if (id >= MAXT)
			return;
		rc = submit_one(id, 0, NULL);
		if (rc != 0) {
			if (rc != -ENOMEM)
				check_fail(__FILE__, __LINE__, "child submit: %d", rc);
			atomic_store(&recs[id].cancelled, 2);
			atomic_fetch_add(&refused, 1);
		}
	}
}

static atomic_uint periodic_runs;

static void periodic_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&periodic_runs, 1);
}

/* One scenario; returns 1 if the pool could be created. */
static int scenario(unsigned tasks)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_task *per = NULL;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	unsigned n, accepted = 0;
	int rc;

	atomic_store(&next_id, 0);
	atomic_store(&refused, 0);
	po.workers = 3;
	rc = ripen_pool_create(&po, &pool);
	if (rc != 0) {
		if (rc != -ENOMEM && rc != -EAGAIN)
			check_fail(__FILE__, __LINE__, "create: %d", rc);
		return 0;
	}
	o.interval_ns = 300000;
	rc = ripen_submit(pool, periodic_fn, NULL, &o, &per);
	CHECK(rc == 0 || rc == -ENOMEM);
	for (unsigned i = 0; i < tasks; i++) {
		unsigned id = atomic_fetch_add(&next_id, 1);

		rc = submit_one(id, i % 7 == 3 ? 1 : 0, NULL);
		if (rc == 0) {
			accepted++;
		} else {
			if (rc != -ENOMEM)
				check_fail(__FILE__, __LINE__, "submit: %d", rc);
			atomic_store(&recs[id].cancelled, 2);
		}
	}
	/* delayed tasks come due (a shutdown would cancel those still waiting) */
	for (uint64_t t = test_now_ns(); test_now_ns() - t < 10000000000ull;) {
		CHECK_OK(ripen_pool_stats(pool, &st));
		if (st.delayed == 0)
			break;
		test_sleep_ns(200000);
	}
	CHECK_EQ(st.delayed, 0);
	if (per != NULL) {
		rc = ripen_task_cancel(per);
		CHECK(rc == 0 || rc == -EBUSY || rc == -EALREADY);
		CHECK_OK(ripen_task_wait(per, 10000000000ll));
		ripen_task_release(per);
	}
	if (ripen_pool_wait_idle(pool, 20000000000ll) != 0)
		check_fail(__FILE__, __LINE__, "hang: the pool did not go idle in 20 s");
	CHECK_OK(ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN));
	CHECK_OK(ripen_pool_stats(pool, &st));
	n = atomic_load(&next_id);
	if (n > MAXT)
		n = MAXT;
	for (unsigned id = 0; id < n; id++) {
		unsigned r = atomic_load(&recs[id].runs), c = atomic_load(&recs[id].cancelled);

		if (c == 2 ? r != 0 : r != 1)
			check_fail(__FILE__, __LINE__, "ledger: task %u ran %u times (refused: %u)",
				   id, r, c == 2);
	}
	CHECK_EQ(st.submitted, st.run + st.cancelled);
	ripen_pool_destroy(pool);
	(void)accepted;
	return 1;
}

/*
 * Regression (found in review): a child submitted from a task whose heap
 * could not grow went to the worker's inbox without its node marked busy,
 * so re-prioritising it through its handle linked the node a second time
 * (a self-loop in the inbox). One worker runs a parent that submits
 * children with handles, the first heap growth fails, and the parent
 * re-prioritises every child while the one that overflowed still waits in
 * the inbox. Each child must run exactly once.
 */
#define FB_N 64
static struct ripen_task *fb_handle[FB_N];
static atomic_uint fb_runs[FB_N];
static atomic_int fb_bad_rc;

static void fb_child(void *arg)
{
	atomic_fetch_add(&fb_runs[(uintptr_t)arg], 1);
}

static void fb_parent(void *arg)
{
	(void)arg;
	for (uintptr_t i = 0; i < FB_N; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.base = (double)i;
		if (ripen_submit(pool, fb_child, (void *)i, &o, &fb_handle[i]) != 0)
			atomic_store(&fb_bad_rc, 1);
	}
	for (int round = 1; round <= 3; round++)
		for (uintptr_t i = 0; i < FB_N; i++) {
			int rc = ripen_task_reprioritize(fb_handle[i], (double)(round * FB_N - i));

			if (rc != 0 && rc != -EALREADY)
				atomic_store(&fb_bad_rc, rc);
		}
}

static void local_push_fallback(void)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;

	ripen__fault_reset();
	po.workers = 1;
	CHECK_EQ(ripen_pool_create(&po, &pool), 0);
	ripen__fault_arm(RIPEN_FAULT_HEAP_GROW, 1);
	CHECK_EQ(ripen_submit(pool, fb_parent, NULL, NULL, NULL), 0);
	CHECK_EQ(ripen_pool_wait_idle(pool, 20000000000ll), 0);
	REQUIRE_AT_LEAST("heap growth failures", ripen__fault_fired(RIPEN_FAULT_HEAP_GROW), 1);
	ripen__fault_reset();
	CHECK_EQ(atomic_load(&fb_bad_rc), 0);
	for (unsigned i = 0; i < FB_N; i++) {
		if (atomic_load(&fb_runs[i]) != 1)
			check_fail(__FILE__, __LINE__, "child %u ran %u times", i,
				   atomic_load(&fb_runs[i]));
		ripen_task_release(fb_handle[i]);
	}
	ripen_pool_destroy(pool);
	printf("  local push fallback + re-prioritise: %d children, each ran once\n", FB_N);
}

int main(int argc, char **argv)
{
	struct stress_opts opt = { 0, 0, 2.0, 1, 40 };
	uint64_t t0, random_runs = 0, created = 0;

	stress_parse(argc, argv, &opt);
	if (!ripen__fault_enabled()) {
		printf("stress_fault: built without -Dfault_injection=true: nothing to do\n");
		return 77; /* meson: skipped */
	}
	printf("stress_fault: each point, hits 1..%u, then %.1f s of random failures\n",
	       opt.size, opt.seconds);
	local_push_fallback();
	for (int p = 0; p < RIPEN_FAULT_NPOINTS; p++) {
		unsigned fired = 0, made = 0;

		for (unsigned nth = 1; nth <= opt.size; nth++) {
			ripen__fault_reset();
			ripen__fault_arm((enum ripen__fault_point)p, nth);
			made += (unsigned)scenario(300);
			fired += (unsigned)ripen__fault_fired((enum ripen__fault_point)p);
		}
		printf("  %-14s hits 1..%u tried, %u failures injected, %u pools created\n",
		       ripen__fault_name((enum ripen__fault_point)p), opt.size, fired, made);
		REQUIRE_AT_LEAST("failures injected", fired, 1);
	}
	ripen__fault_reset();
	t0 = test_now_ns();
	while (test_now_ns() - t0 < opt.seconds * 1e9) {
		ripen__fault_random(40, opt.seed + random_runs);
		created += (unsigned)scenario(500);
		random_runs++;
	}
	ripen__fault_reset();
	printf("  random failures (1 in 40 at every point): %llu runs, %llu pools created\n",
	       (unsigned long long)random_runs, (unsigned long long)created);
	REQUIRE_AT_LEAST("random runs", random_runs, 3);
	printf("stress_fault: ok\n");
	return 0;
}
