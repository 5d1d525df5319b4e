/*
 * stress_ledger: everything at once, against a per-task ledger.
 *
 * Producers submit tasks with random bases, classes, deadlines, inbox
 * affinities (a quarter of the submits skewed to one worker) and delays;
 * tasks spawn children, and some wait (fork-join) on a delayed child, which
 * they run inline once due; meddler threads cancel and re-prioritise at
 * random; a swapper changes the policy and the context, and starts and stops
 * the adaptive controller (ripen_pool_adapt, linear and additive forms in
 * turn: its weights, tau swaps and trace-free steps race everything else,
 * class-scaled policies among the swaps; no shedding, so every refusal is
 * still a shutdown's); some tasks block for
 * longer than a rebalance period (stranding). A periodic manager keeps a few
 * periodic and triggered tasks alive (hostile intervals and trigger times
 * among them), waiter threads block on them with no timeout while they
 * re-arm, and the manager cancels them; every waiter must come back. At the
 * end (wait_idle, then shutdown) the ledger must hold for every task:
 *   one-shot: ran + cancelled == 1, canary intact;
 *   periodic: final, and no run after a cancel that returned 0;
 * completion delivery: every plain task's done callback came exactly once,
 * with DONE if it ran and CANCELLED if it was cancelled, and, for half of
 * them, its handle was popped exactly once from a completion queue that a
 * loop thread polls by its eventfd (none for a refused submit);
 * and the pool's counters: submitted == run + cancelled, with every release
 * of a periodic task counted as one submit; per class (metrics.c), the same
 * law, submitted == started + cancelled + queued with queued 0 at the end,
 * the starts equal to the ledger's runs of that class, rejected tasks
 * counted apart, and the classes summing to the pool's totals. Minimum event counts (steals,
 * stale entries, re-prioritisations, cancels, rescues, merges, periodic
 * runs, inline runs...) make a run that did not reach its races fail.
 *
 *   stress_ledger [-w workers] [-p producers] [-s seconds] [-S seed] [-n max tasks]
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "stress_common.h"

static struct stress_opts opt = { 4, 4, 2.0, 1, 400000 };
static struct ripen_pool *pool;
static struct rec *recs;
static uint8_t *rec_slot;		/* each task's metrics slot (class, or 64: "other") */
#define PER_CLASS 9u			/* periodic and triggered tasks' class */
static _Atomic(struct ripen_task *) *handles; /* non-NULL for tasks with a handle */
static atomic_uint next_id, handled_hi;
static atomic_int stop_producing, stop_meddling;
static atomic_uint_fast64_t children_refused;

/* Periodic and triggered tasks: their own ledger. */
#define NPER 4096u
struct prec {
	atomic_uint runs;
	atomic_uint runs_at_cancel;
	atomic_int cancelled0;		/* ripen_task_cancel returned 0 */
	struct ripen_task *_Atomic h;
};
static struct prec *precs;
static atomic_uint per_created;
static atomic_int stop_periodic, stop_waiters, waiters_out;
static atomic_uint_fast64_t per_waits;

static void task_fn(void *arg);

/* Completion delivery: want[id] bit 0 a done callback, bit 1 the queue. */
static struct ripen_cq *ledger_cq;
static uint8_t *want;
static atomic_int stop_loop;

static void ledger_done(void *arg, enum ripen_task_state st)
{
	struct rec *r = arg;

	atomic_store(&r->done_state, (unsigned)st);
	atomic_fetch_add(&r->done_calls, 1);
}

static uint64_t drain_ledger_cq(void)
{
	struct ripen_task *t;
	uint64_t n = 0;

	while (ripen_cq_pop(ledger_cq, &t) == 0) {
		struct rec *r = ripen_task_arg(t);

		CHECK_GE(ripen_task_state(t), RIPEN_TASK_DONE); /* final before the push */
		atomic_fetch_add(&r->cq_pops, 1);
		ripen_task_release(t);
		n++;
	}
	return n;
}

static void *loop_thread(void *arg)
{
	struct pollfd pf = { .fd = ripen_cq_fd(ledger_cq), .events = POLLIN };

	(void)arg;
	while (!atomic_load(&stop_loop))
		if (poll(&pf, 1, 10) == 1)
			(void)drain_ledger_cq();
	return NULL;
}

static int submit_rec(unsigned id, uint64_t *rng, bool want_handle, bool allow_timed)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *h = NULL;
	int rc;

	recs[id].id = id;
	atomic_store(&recs[id].magic, REC_LIVE);
	o.base = (double)(test_rand(rng) % 1000) / 10.0;
	o.class_id = (uint32_t)(test_rand(rng) % 4);
	if (test_rand(rng) % 16 == 0)
		o.class_id = RIPEN_MAX_CLASSES + (uint32_t)(test_rand(rng) % 1000); /* "other" */
	rec_slot[id] = (uint8_t)(o.class_id < RIPEN_MAX_CLASSES ? o.class_id : RIPEN_MAX_CLASSES);
	o.deadline_ns = ripen_now_ns() + test_rand(rng) % 50000000;
	if (test_rand(rng) % 4 == 0)
		o.inbox = 1; /* skewed: all to worker 0 */
	if (allow_timed && test_rand(rng) % 64 == 0)
		o.not_before_ns = ripen_now_ns() + test_rand(rng) % 5000000;
	if (o.not_before_ns == 0) { /* plain: its completion is delivered */
		o.done = ledger_done;
		want[id] = 1;
		if (id % 2 == 0) {
			o.cq = ledger_cq;
			want[id] |= 2;
		}
	}
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
				atomic_store(&recs[id].refused, 1);
				atomic_store(&recs[id].cancelled, 1); /* refused: never runs */
			}
		}
		break;
	}
	case 3: /* longer than a rebalance period: its heap must not strand */
		test_sleep_ns(3000000);
		break;
	case 4: { /* fork-join on a delayed child: run inline once due */
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		unsigned id = atomic_fetch_add(&next_id, 1);
		struct ripen_task *h;
		int rc;

		if (id >= opt.size)
			break;
		recs[id].id = id;
		atomic_store(&recs[id].magic, REC_LIVE);
		rec_slot[id] = 0;
		o.not_before_ns = ripen_now_ns() + test_rand(&rng) % 2000000;
		rc = ripen_submit(pool, task_fn, &recs[id], &o, &h);
		if (rc != 0) {
			CHECK_EQ(rc, -ESHUTDOWN);
			atomic_fetch_add(&children_refused, 1);
			atomic_store(&recs[id].cancelled, 1);
			break;
		}
		CHECK_OK(ripen_task_wait(h, -1));
		/* a shutdown cancels delayed tasks not yet due */
		if (ripen_task_state(h) == RIPEN_TASK_CANCELLED)
			atomic_store(&recs[id].cancelled, 1);
		else
			CHECK_EQ(ripen_task_state(h), RIPEN_TASK_DONE);
		ripen_task_release(h);
		break;
	}
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

static void per_fn(void *arg)
{
	struct prec *p = arg;

	if (atomic_load(&p->cancelled0))
		check_fail(__FILE__, __LINE__, "periodic task %u ran after a successful cancel",
			   (unsigned)(p - precs));
	atomic_fetch_add(&p->runs, 1);
}

/* Next release from the task's own run count: soon, now-ish, in the past,
 * the end of time, or stop. */
static uint64_t per_trigger(const struct ripen_task_view *v)
{
	struct prec *p = v->arg;
	unsigned r = atomic_load(&p->runs);

	switch (r % 8) {
	case 7: return 0;
	case 5: return 1; /* long past: released at once */
	case 6: return r > 16 ? UINT64_MAX : ripen_now_ns();
	default: return ripen_now_ns() + (r % 3) * 100000;
	}
}

static void *periodic_manager(void *arg)
{
	static const uint64_t intervals[] = { 20000, 100000, 1000000, UINT64_MAX / 2, UINT64_MAX };
	uint64_t rng = opt.seed * 104729 + 3;
	unsigned live[8], nlive = 0;
	uint64_t until[8];

	(void)arg;
	for (;;) {
		bool stopping = atomic_load(&stop_periodic) || atomic_load(&per_created) >= NPER;

		if (!stopping && nlive < 8) {
			struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
			unsigned id = atomic_load(&per_created);
			struct ripen_task *h;

			if (test_rand(&rng) % 3 == 0)
				o.trigger = per_trigger;
			else
				o.interval_ns = intervals[test_rand(&rng) % 5];
			if (test_rand(&rng) % 2)
				o.not_before_ns = ripen_now_ns() + test_rand(&rng) % 1000000;
			o.base = 500 + (double)(test_rand(&rng) % 100); /* ahead of the backlog */
			o.class_id = PER_CLASS;
			CHECK_OK(ripen_submit(pool, per_fn, &precs[id], &o, &h));
			atomic_store(&precs[id].h, h);
			atomic_store(&per_created, id + 1); /* publishes the handle */
			until[nlive] = ripen_now_ns() + 1000000 + test_rand(&rng) % 8000000;
			live[nlive++] = id;
		}
		for (unsigned k = 0; k < nlive; k++) {
			unsigned id = live[k];
			struct prec *p = &precs[id];
			int rc;

			if (!stopping && ripen_now_ns() < until[k])
				continue; /* lives 1-9 ms: a few runs, some waiters */
			if (test_rand(&rng) % 4 == 0)
				(void)ripen_task_reprioritize(atomic_load(&p->h),
							      (double)(test_rand(&rng) % 100));
			rc = ripen_task_cancel(atomic_load(&p->h));
			CHECK(rc == 0 || rc == -EBUSY || rc == -EALREADY);
			if (rc == 0) {
				atomic_store(&p->runs_at_cancel, atomic_load(&p->runs));
				atomic_store(&p->cancelled0, 1);
			}
			/* -EBUSY: it ends after the current run; -EALREADY: its
			 * trigger ended it */
			nlive--;
			live[k] = live[nlive];
			until[k] = until[nlive];
			k--;
		}
		if (stopping && nlive == 0)
			break;
		test_sleep_ns(200000);
	}
	return NULL;
}

/* Block on a random periodic task with no timeout: returns only when it
 * ends, so a lost wake-up in the re-arm hangs here (and main fails). */
static void *periodic_waiter(void *arg)
{
	uint64_t rng = opt.seed * 613 + (uintptr_t)arg;

	while (!atomic_load(&stop_waiters)) {
		unsigned n = atomic_load(&per_created);
		struct ripen_task *h;

		if (n == 0) {
			test_sleep_ns(100000);
			continue;
		}
		/* one of the newest: most likely still alive */
		h = atomic_load(&precs[n - 1 - test_rand(&rng) % (n < 8 ? n : 8)].h);
		if (ripen_task_state(h) >= RIPEN_TASK_DONE) {
			test_sleep_ns(50000);
			continue;
		}
		CHECK_OK(ripen_task_wait(h, -1));
		CHECK_GE(ripen_task_state(h), RIPEN_TASK_DONE);
		atomic_fetch_add(&per_waits, 1);
	}
	atomic_fetch_add(&waiters_out, 1);
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

static unsigned adapt_runs, adapt_additive_runs; /* swapper only, read after its join */

static void *swapper(void *arg)
{
	const double w[4] = { 4, 2, 1, 0.5 };
	const struct ripen_objective ob[3] = {
		{ .class_id = 1, .quantile = 0.95, .target_s = 0.0005 },
		{ .class_id = 0, .quantile = 0.9, .target_s = 0.002 },
		{ .class_id = 3, .quantile = 0.99, .target_s = 0.01 },
	};
	unsigned k = 0;

	(void)arg;
	while (!atomic_load(&stop_meddling)) {
		struct ripen_policy *p;
		double *c = malloc(sizeof(*c));

		if (k % 13 == 0) { /* the controller, for six swaps' time */
			struct ripen_adaptive_opts ao = RIPEN_ADAPTIVE_OPTS_INIT;
			int rc;

			ao.objectives = ob;
			ao.n = 3;
			ao.period_ns = 1000000; /* 1 ms: many steps while it runs */
			ao.window_periods = 2;
			ao.patience = 3;
			ao.aging = adapt_runs % 2 ? RIPEN_AGING_ADDITIVE : RIPEN_AGING_LINEAR;
			rc = ripen_pool_adapt(pool, &ao);
			CHECK(rc == 0 || rc == -ENOTSUP);
			if (rc == 0) {
				adapt_runs++;
				adapt_additive_runs += ao.aging == RIPEN_AGING_ADDITIVE;
			}
		} else if (k % 13 == 6) {
			int rc = ripen_pool_adapt_stop(pool);

			CHECK(rc == 0 || rc == -EALREADY);
		}

		switch (k++ % 8) {
		case 6: p = ripen_policy_static(); break; /* push_local's fast key races the swaps */
		case 0: p = ripen_policy_linear_aging(0.01); break;
		case 1: p = ripen_policy_additive_aging(0.01); break;
		case 2: p = ripen_policy_edf(); break;
		case 3: p = ripen_policy_class_weights(w, 4, ripen_policy_linear_aging(0.02)); break;
		case 4: p = ripen_policy_custom(ctx_score, NULL, RIPEN_POLICY_TIME_VARYING, NULL); break;
		case 7: p = ripen_policy_class_scaled(w, 4, ripen_policy_additive_aging(0.02)); break;
		default: p = ripen_policy_fifo(); break;
		}
		CHECK_OK(ripen_pool_set_policy(pool, p));
		*c = 1.0 + k % 5;
		CHECK_OK(ripen_pool_set_context(pool, c, free));
		test_sleep_ns(5000000);
	}
	{
		int rc = ripen_pool_adapt_stop(pool);

		CHECK(rc == 0 || rc == -EALREADY);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	pthread_t prod[64], med[2], swp, pman, pwait[3], loop;
	uint64_t per_runs = 0, per_cancelled0 = 0;
	uint64_t ran = 0, cancelled = 0, t0, delivered_done = 0, delivered_cq = 0;
	uint64_t ran_slot[RIPEN_MAX_CLASSES + 1] = { 0 }, canc_slot[RIPEN_MAX_CLASSES + 1] = { 0 };
	unsigned n;

	stress_parse(argc, argv, &opt);
	if (opt.producers > 64)
		opt.producers = 64;
	recs = calloc(opt.size, sizeof(*recs));
	rec_slot = calloc(opt.size, sizeof(*rec_slot));
	handles = calloc(opt.size, sizeof(*handles));
	precs = calloc(NPER, sizeof(*precs));
	want = calloc(opt.size, sizeof(*want));
	CHECK_OK(ripen_cq_create(&ledger_cq));
	CHECK_OK(pthread_create(&loop, NULL, loop_thread, NULL));
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
	CHECK_OK(pthread_create(&pman, NULL, periodic_manager, NULL));
	for (uintptr_t i = 0; i < 3; i++)
		CHECK_OK(pthread_create(&pwait[i], NULL, periodic_waiter, (void *)i));
	while (!atomic_load(&stop_producing) && test_now_ns() - t0 < opt.seconds * 1e9)
		test_sleep_ns(10000000);
	atomic_store(&stop_producing, 1);
	for (unsigned i = 0; i < opt.producers; i++)
		pthread_join(prod[i], NULL);
	/* every periodic task ends (cancelled, or its trigger said stop), so
	 * every waiter returns: a waiter still blocked is a lost wake-up */
	atomic_store(&stop_periodic, 1);
	pthread_join(pman, NULL);
	atomic_store(&stop_waiters, 1);
	for (uint64_t t1 = test_now_ns(); atomic_load(&waiters_out) < 3;) {
		if (test_now_ns() - t1 > 120000000000ull)
			check_fail(__FILE__, __LINE__, "a periodic task's waiter never woke");
		test_sleep_ns(1000000);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(pwait[i], NULL);
	CHECK_OK(ripen_pool_wait_idle(pool, 120000000000ll)); /* 120 s: hangs fail */
	atomic_store(&stop_meddling, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(med[i], NULL);
	pthread_join(swp, NULL);
	/* delayed tasks may still be due: let them come, then drain */
	test_sleep_ns(10000000);
	CHECK_OK(ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN));
	CHECK_OK(ripen_pool_stats(pool, &st));
	/* every completion is in: the loop has popped some, the rest wait
	 * behind a readable eventfd */
	atomic_store(&stop_loop, 1);
	pthread_join(loop, NULL);
	{
		struct pollfd pf = { .fd = ripen_cq_fd(ledger_cq), .events = POLLIN };
		bool readable = poll(&pf, 1, 0) == 1;
		uint64_t left = drain_ledger_cq();

		CHECK(left == 0 || readable);
	}

	n = atomic_load(&next_id);
	if (n > opt.size)
		n = opt.size;
	for (unsigned id = 0; id < n; id++) {
		unsigned r = atomic_load(&recs[id].runs), c = atomic_load(&recs[id].cancelled);

		if (want[id] & 1) {
			unsigned dc = atomic_load(&recs[id].done_calls);
			unsigned ds = atomic_load(&recs[id].done_state);

			if (atomic_load(&recs[id].refused) ? dc != 0 :
			    dc != 1 || ds != (r ? RIPEN_TASK_DONE : RIPEN_TASK_CANCELLED))
				check_fail(__FILE__, __LINE__, "ledger: task %u (ran %u, cancelled %u, "
					   "refused %u): %u done calls, state %u", id, r, c,
					   atomic_load(&recs[id].refused), dc, ds);
			delivered_done += dc;
		}
		if ((want[id] & 2) &&
		    atomic_load(&recs[id].cq_pops) != (atomic_load(&recs[id].refused) ? 0u : 1u))
			check_fail(__FILE__, __LINE__, "ledger: task %u popped %u times from the "
				   "completion queue", id, atomic_load(&recs[id].cq_pops));
		delivered_cq += atomic_load(&recs[id].cq_pops);
		if (r + c != 1)
			check_fail(__FILE__, __LINE__, "ledger: task %u ran %u times, cancelled %u",
				   id, r, c);
		if (r && atomic_load(&recs[id].magic) != REC_RAN)
			check_fail(__FILE__, __LINE__, "task %u: canary %#x after its run", id,
				   atomic_load(&recs[id].magic));
		ran += r;
		cancelled += c;
		ran_slot[rec_slot[id]] += r;
		canc_slot[rec_slot[id]] += c;
		if (atomic_load(&handles[id]) != NULL)
			ripen_task_release(atomic_load(&handles[id]));
	}
	printf("  %u tasks in %.2f s: %llu ran, %llu cancelled (%llu children refused at "
	       "shutdown)\n", n, (test_now_ns() - t0) / 1e9, (unsigned long long)ran,
	       (unsigned long long)cancelled, (unsigned long long)atomic_load(&children_refused));
	printf("  completions: %llu done callbacks, %llu popped from the queue\n",
	       (unsigned long long)delivered_done, (unsigned long long)delivered_cq);
	CHECK_GT(delivered_cq, 0);
	for (unsigned id = 0; id < atomic_load(&per_created); id++) {
		struct prec *p = &precs[id];
		struct ripen_task *h = atomic_load(&p->h);

		CHECK_GE(ripen_task_state(h), RIPEN_TASK_DONE);
		if (atomic_load(&p->cancelled0)) {
			CHECK_EQ(ripen_task_state(h), RIPEN_TASK_CANCELLED);
			CHECK_EQ(atomic_load(&p->runs), atomic_load(&p->runs_at_cancel));
		}
		per_runs += atomic_load(&p->runs);
		per_cancelled0 += (uint64_t)atomic_load(&p->cancelled0);
		ripen_task_release(h);
	}
	printf("  %u periodic tasks: %llu runs, %llu cancelled while queued, %llu waits "
	       "returned\n", atomic_load(&per_created), (unsigned long long)per_runs,
	       (unsigned long long)per_cancelled0, (unsigned long long)atomic_load(&per_waits));
	CHECK_EQ(st.run, ran + per_runs);
	CHECK_EQ(st.cancelled + atomic_load(&children_refused), cancelled + per_cancelled0);
	CHECK_EQ(st.submitted, st.run + st.cancelled);
	/* a periodic task counts one submit per release, and one for a
	 * cancel while it waited in the timer heap: runs + cancelled0 */
	CHECK_EQ(st.submitted + atomic_load(&children_refused), n + per_runs + per_cancelled0);
	/* per class: the conservation law, and the ledger's runs */
	ran_slot[PER_CLASS] += per_runs;
	{
		uint64_t sub = 0, run = 0, canc = 0, rej = 0;

		for (unsigned s = 0; s <= RIPEN_MAX_CLASSES; s++) {
			struct ripen_class_stats cs = RIPEN_CLASS_STATS_INIT;

			CHECK_OK(ripen_pool_class_stats(pool, s, &cs));
			CHECK_EQ(cs.submitted, cs.started + cs.cancelled + cs.queued);
			CHECK_EQ(cs.queued, 0);
			CHECK_EQ(cs.shed, 0);
			CHECK_EQ(cs.started, ran_slot[s]);
			/* a refused child is a cancel in the ledger, a reject here */
			CHECK_EQ(cs.cancelled + cs.rejected, canc_slot[s] + (s == PER_CLASS ? per_cancelled0 : 0));
			sub += cs.submitted;
			run += cs.started;
			canc += cs.cancelled;
			rej += cs.rejected;
		}
		CHECK_EQ(sub, st.submitted);
		CHECK_EQ(run, st.run);
		CHECK_EQ(canc, st.cancelled);
		CHECK_EQ(rej, st.rejected);
		CHECK_EQ(rej, atomic_load(&children_refused));
		REQUIRE_AT_LEAST("tasks in the \"other\" class", ran_slot[RIPEN_MAX_CLASSES], 1);
	}
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
	/* not required: a stall wait needs a worker preempted inside its
	 * step, which the host's scheduling decides (test_regress forces it) */
	printf("  %-28s %llu (stall yields %llu)\n", "stall waits",
	       (unsigned long long)st.stall_waits, (unsigned long long)st.stall_yields);
	REQUIRE_AT_LEAST("adaptive controller runs", adapt_runs, 1);
	REQUIRE_AT_LEAST("  of them additive", adapt_additive_runs, 1);
	REQUIRE_AT_LEAST("periodic tasks", atomic_load(&per_created), 10);
	REQUIRE_AT_LEAST("periodic runs", per_runs, 10);
	REQUIRE_AT_LEAST("inline runs (fork-join)", st.inline_runs, 1);
	ripen_pool_destroy(pool);
	ripen_cq_destroy(ledger_cq);
	free(want);
	free(recs);
	free(rec_slot);
	free(handles);
	free(precs);
	printf("stress_ledger: ok\n");
	return 0;
}
