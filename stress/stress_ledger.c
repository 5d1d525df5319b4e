/*
 * stress_ledger: everything at once, against a per-task ledger.
 *
 * Producers submit tasks with random bases, classes, deadlines, inbox
 * affinities (half of the producers skewed to one worker), delays and a few
 * periodic ones; tasks spawn children; meddler threads cancel and
 * re-prioritise at random; a swapper changes the policy and the context;
 * some tasks block for longer than a rebalance period (stranding). At the end
 * (wait_idle, then shutdown) the ledger must hold for every task:
 *   ran + cancelled == 1 (periodic: cancelled, runs >= 1), canary intact,
 * and the pool's counters: submitted == run + cancelled. Minimum event counts
 * (steals, stale entries, re-prioritisations, cancels, rescues, merges...)
 * make a run that did not reach its races fail.
 *
 *   stress_ledger [-w workers] [-p producers] [-s seconds] [-S seed] [-n max tasks]
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "stress_common.h"

static struct stress_opts opt = { 4, 4, 2.0, 1, 400000 };
static struct ripen_pool *pool;
static struct rec *recs;
static _Atomic(struct ripen_task *) *handles; /* non-NULL for tasks with a handle */
static atomic_uint next_id, handled_hi;
static atomic_int stop_producing, stop_meddling;
static atomic_uint_fast64_t children_refused;

static void task_fn(void *arg);

static int submit_rec(unsigned id, uint64_t *rng, bool want_handle, bool allow_timed)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *h = NULL;
	int rc;

	recs[id].id = id;
	atomic_store(&recs[id].magic, REC_LIVE);
	o.base = (double)(test_rand(rng) % 1000) / 10.0;
	o.class_id = (uint32_t)(test_rand(rng) % 4);
	o.deadline_ns = ripen_now_ns() + test_rand(rng) % 50000000;
	if (test_rand(rng) % 4 == 0)
		o.inbox = 1; /* skewed: all to worker 0 */
	if (allow_timed && test_rand(rng) % 64 == 0)
		o.not_before_ns = ripen_now_ns() + test_rand(rng) % 5000000;
	rc = ripen_submit(pool, task_fn, &recs[id], &o, want_handle ? &h : NULL);
	if (rc == 0 && want_handle)
		atomic_store_explicit(&handles[id], h, memory_order_release);
	return rc;
}

static void task_fn(void *arg)
{
	struct rec *r = arg;
	uint64_t rng = r->id * 0x9E3779B97F4A7C15ULL + 1;

	rec_run(r);
	switch (test_rand(&rng) % 64) {
	case 0: case 1: case 2: { /* spawn two children */
		for (int c = 0; c < 2; c++) {
			unsigned id = atomic_fetch_add(&next_id, 1);
			int rc;

			if (id >= opt.size)
				break;
			rc = submit_rec(id, &rng, false, false);
			if (rc != 0) {
				CHECK_EQ(rc, -ESHUTDOWN);
				atomic_fetch_add(&children_refused, 1);
				atomic_store(&recs[id].cancelled, 1); /* refused: never runs */
			}
		}
		break;
	}
	case 3: /* longer than a rebalance period: its heap must not strand */
		test_sleep_ns(3000000);
		break;
	default:
		break;
	}
}

static void *producer(void *arg)
{
	uint64_t rng = opt.seed * 7919 + (uintptr_t)arg;

	while (!atomic_load(&stop_producing)) {
		unsigned id = atomic_fetch_add(&next_id, 1);
		bool handle = test_rand(&rng) % 4 == 0;

		if (id >= opt.size) {
			atomic_store(&stop_producing, 1);
			break;
		}
		CHECK_OK(submit_rec(id, &rng, handle, true));
		if (handle) {
			unsigned hi = atomic_load(&handled_hi);

			while (id + 1 > hi && !atomic_compare_exchange_weak(&handled_hi, &hi, id + 1))
				;
		}
		if (test_rand(&rng) % 1024 == 0)
			test_sleep_ns(200000); /* let pools drain and park now and then */
		if (id % 256 == 0) { /* back-pressure: a bounded backlog, so the
				      * drain at the end fits its deadline */
			struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;

			for (;;) {
				CHECK_OK(ripen_pool_stats(pool, &st));
				if (st.submitted - st.run - st.cancelled < 20000 ||
				    atomic_load(&stop_producing))
					break;
				test_sleep_ns(1000000);
			}
		}
	}
	return NULL;
}

static void *meddler(void *arg)
{
	uint64_t rng = opt.seed * 31 + (uintptr_t)arg;

	while (!atomic_load(&stop_meddling)) {
		unsigned hi = atomic_load(&handled_hi), id;
		struct ripen_task *h;
		int rc;

		if (hi == 0) {
			test_sleep_ns(10000);
			continue;
		}
		id = (unsigned)(test_rand(&rng) % hi);
		h = atomic_load_explicit(&handles[id], memory_order_acquire);
		if (h == NULL)
			continue;
		if (test_rand(&rng) % 4 == 0) {
			rc = ripen_task_cancel(h);
			CHECK(rc == 0 || rc == -EBUSY || rc == -EALREADY);
			if (rc == 0)
				atomic_store(&recs[id].cancelled, 1);
		} else {
			rc = ripen_task_reprioritize(h, (double)(test_rand(&rng) % 2000) / 10.0);
			CHECK(rc == 0 || rc == -EALREADY);
		}
	}
	return NULL;
}

static double ctx_score(const struct ripen_task_view *t, uint64_t now, void *ctx)
{
	double boost = ctx ? *(const double *)ctx : 1.0;

	(void)now;
	return t->class_id == 0 ? t->base * boost : t->base;
}

static void *swapper(void *arg)
{
	const double w[4] = { 4, 2, 1, 0.5 };
	unsigned k = 0;

	(void)arg;
	while (!atomic_load(&stop_meddling)) {
		struct ripen_policy *p;
		double *c = malloc(sizeof(*c));

		switch (k++ % 6) {
		case 0: p = ripen_policy_linear_aging(0.01); break;
		case 1: p = ripen_policy_additive_aging(0.01); break;
		case 2: p = ripen_policy_edf(); break;
		case 3: p = ripen_policy_class_weights(w, 4, ripen_policy_linear_aging(0.02)); break;
		case 4: p = ripen_policy_custom(ctx_score, NULL, RIPEN_POLICY_TIME_VARYING, NULL); break;
		default: p = ripen_policy_fifo(); break;
		}
		CHECK_OK(ripen_pool_set_policy(pool, p));
		*c = 1.0 + k % 5;
		CHECK_OK(ripen_pool_set_context(pool, c, free));
		test_sleep_ns(5000000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	pthread_t prod[64], med[2], swp;
	uint64_t ran = 0, cancelled = 0, t0;
	unsigned n;

	stress_parse(argc, argv, &opt);
	if (opt.producers > 64)
		opt.producers = 64;
	recs = calloc(opt.size, sizeof(*recs));
	handles = calloc(opt.size, sizeof(*handles));
	po.workers = opt.workers;
	po.policy = ripen_policy_linear_aging(0.01);
	CHECK_OK(ripen_pool_create(&po, &pool));
	printf("stress_ledger: %u workers, %u producers, %.1f s, seed %llu, up to %u tasks\n",
	       opt.workers, opt.producers, opt.seconds, (unsigned long long)opt.seed, opt.size);
	t0 = test_now_ns();
	for (uintptr_t i = 0; i < opt.producers; i++)
		CHECK_OK(pthread_create(&prod[i], NULL, producer, (void *)i));
	for (uintptr_t i = 0; i < 2; i++)
		CHECK_OK(pthread_create(&med[i], NULL, meddler, (void *)i));
	CHECK_OK(pthread_create(&swp, NULL, swapper, NULL));
	while (!atomic_load(&stop_producing) && test_now_ns() - t0 < opt.seconds * 1e9)
		test_sleep_ns(10000000);
	atomic_store(&stop_producing, 1);
	for (unsigned i = 0; i < opt.producers; i++)
		pthread_join(prod[i], NULL);
	CHECK_OK(ripen_pool_wait_idle(pool, 120000000000ll)); /* 120 s: hangs fail */
	atomic_store(&stop_meddling, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(med[i], NULL);
	pthread_join(swp, NULL);
	/* delayed tasks may still be due: let them come, then drain */
	test_sleep_ns(10000000);
	CHECK_OK(ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN));
	CHECK_OK(ripen_pool_stats(pool, &st));

	n = atomic_load(&next_id);
	if (n > opt.size)
		n = opt.size;
	for (unsigned id = 0; id < n; id++) {
		unsigned r = atomic_load(&recs[id].runs), c = atomic_load(&recs[id].cancelled);

		if (r + c != 1)
			check_fail(__FILE__, __LINE__, "ledger: task %u ran %u times, cancelled %u",
				   id, r, c);
		if (r && atomic_load(&recs[id].magic) != REC_RAN)
			check_fail(__FILE__, __LINE__, "task %u: canary %#x after its run", id,
				   atomic_load(&recs[id].magic));
		ran += r;
		cancelled += c;
		if (atomic_load(&handles[id]) != NULL)
			ripen_task_release(atomic_load(&handles[id]));
	}
	printf("  %u tasks in %.2f s: %llu ran, %llu cancelled (%llu children refused at "
	       "shutdown)\n", n, (test_now_ns() - t0) / 1e9, (unsigned long long)ran,
	       (unsigned long long)cancelled, (unsigned long long)atomic_load(&children_refused));
	CHECK_EQ(st.run, ran);
	CHECK_EQ(st.cancelled + atomic_load(&children_refused), cancelled);
	CHECK_EQ(st.submitted, st.run + st.cancelled);
	CHECK_EQ(st.submitted + atomic_load(&children_refused), n);
	/* minimum event counts, scaled to the run */
	REQUIRE_AT_LEAST("steals", st.steals, 10);
	REQUIRE_AT_LEAST("stale entries dropped", st.stale_dropped, 100);
	REQUIRE_AT_LEAST("re-prioritisations", st.reprioritized, 100);
	REQUIRE_AT_LEAST("cancels", st.cancelled, 10);
	REQUIRE_AT_LEAST("re-keys", st.rekeys, 10);
	REQUIRE_AT_LEAST("delayed releases", st.released, 10);
	REQUIRE_AT_LEAST("rebalancer periods", st.rebalances, 10);
	REQUIRE_AT_LEAST("merged by the rebalancer", st.merged + st.rescued, 1);
	REQUIRE_AT_LEAST("parks", st.parks, 1);
	ripen_pool_destroy(pool);
	free(recs);
	free(handles);
	printf("stress_ledger: ok\n");
	return 0;
}
