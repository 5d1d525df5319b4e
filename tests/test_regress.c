/*
 * Regression tests for the correctness round (issue 9): one case per bug a
 * review confirmed, each written to fail on the code that had the bug, plus
 * the directed wake-up tests that catch a park recheck or a wake gate that
 * lost its half of the protocol.
 *
 * A hang is turned into a failure: every wait has a generous bound (seconds,
 * where the fixed code needs microseconds), and missing it aborts with the
 * case's name. No case asserts a latency or a speed.
 *
 * Cases marked "hook" hold a protocol window open with the window hooks of
 * the fault-injection build (runtime/fault-internal.h): they run there
 * (RIPEN_ASAN=1 tools/run-tests.sh, the "fault" build) and report a skip
 * elsewhere.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"
#include "fault-internal.h"
#include "pool-internal.h" /* RIPEN_STALL_AHEAD */
#include "ripen.h"

#define SEC 1000000000ull

static struct ripen_pool *make_pool(unsigned workers, uint64_t period, bool paused,
				    struct ripen_policy *pol)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p;

	o.workers = workers;
	o.rebalance_period_ns = period;
	o.start_paused = paused;
	o.policy = pol;
	CHECK_OK(ripen_pool_create(&o, &p));
	return p;
}

/* Spin (yielding) until *flag is non-zero or `limit_ns` passed: true if set. */
static bool await_flag(atomic_int *flag, uint64_t limit_ns)
{
	uint64_t t0 = test_now_ns();

	while (!atomic_load(flag)) {
		if (test_now_ns() - t0 > limit_ns)
			return false;
		sched_yield();
	}
	return true;
}

static bool skip_without_hooks(const char *name)
{
	if (ripen__fault_enabled())
		return false;
	(void)name;
	test_skip("needs the window hooks (-Dfault_injection=true)");
	return true;
}

static void noop(void *arg)
{
	(void)arg;
}

static void count_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* ------------------------------------------- 1: lost wake-up on re-arm */

struct rearm_ctx {
	atomic_int armed;	/* the hook fires once when set */
	atomic_int in_window;
	atomic_int waiter_started;
	atomic_int waiter_done;
	struct ripen_task *t;
};

static void rearm_hook(enum ripen__window win, void *arg)
{
	struct rearm_ctx *c = arg;
	int one = 1;

	if (win != RIPEN_WIN_REARM || !atomic_compare_exchange_strong(&c->armed, &one, 0))
		return;
	atomic_store(&c->in_window, 1);
	/* hold the window (state read, not yet written back) open while the
	 * waiter announces itself on the task's word */
	(void)await_flag(&c->waiter_started, 5 * SEC);
	test_sleep_ns(30000000);
}

static void *rearm_waiter(void *arg)
{
	struct rearm_ctx *c = arg;

	atomic_store(&c->waiter_started, 1);
	CHECK_OK(ripen_task_wait(c->t, -1));
	atomic_store(&c->waiter_done, 1);
	return NULL;
}

/* hook: a waiter that sets TS_WAITERS while the worker re-arms a periodic
 * task must still be woken by the cancel that ends it */
static void periodic_waiter_survives_rearm(void)
{
	static struct rearm_ctx c;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool *p;
	pthread_t th;
	int rc;

	if (skip_without_hooks(__func__))
		return;
	memset(&c, 0, sizeof(c));
	p = make_pool(1, 0, false, NULL);
	ripen__window_hook(rearm_hook, &c);
	atomic_store(&c.armed, 1);
	o.interval_ns = 1000000;
	CHECK_OK(ripen_submit(p, noop, NULL, &o, &c.t));
	if (!await_flag(&c.in_window, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the periodic task never reached its re-arm");
	CHECK_OK(pthread_create(&th, NULL, rearm_waiter, &c));
	if (!await_flag(&c.waiter_started, 10 * SEC))
		check_fail(__FILE__, __LINE__, "waiter did not start");
	test_sleep_ns(60000000); /* past the window: the task is re-armed */
	rc = ripen_task_cancel(c.t);
	CHECK(rc == 0 || rc == -EBUSY);
	if (!await_flag(&c.waiter_done, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the waiter's wake-up was lost in the re-arm");
	pthread_join(th, NULL);
	ripen__window_hook(NULL, NULL);
	ripen_task_release(c.t);
	c.t = NULL; /* nothing reachable hides a leak from LeakSanitizer */
	ripen_pool_destroy(p);
}

/* the same race without a hook: waiters arrive while periodic tasks re-arm
 * every 50 us, then a cancel ends each; every waiter must return */
struct soak_waiter {
	struct ripen_task *t;
	atomic_int done;
};

static void *soak_wait(void *arg)
{
	struct soak_waiter *s = arg;

	CHECK_OK(ripen_task_wait(s->t, -1));
	atomic_store(&s->done, 1);
	return NULL;
}

static void periodic_waiters_soak(void)
{
	unsigned rounds = (unsigned)(200 * test_scale());
	struct ripen_pool *p = make_pool(2, 0, false, NULL);
	uint64_t rng = 7;

	for (unsigned r = 0; r < rounds; r++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		struct soak_waiter w[4];
		pthread_t th[4];
		struct ripen_task *t;
		int rc;

		o.interval_ns = 50000;
		CHECK_OK(ripen_submit(p, noop, NULL, &o, &t));
		for (int i = 0; i < 4; i++) {
			w[i].t = t;
			atomic_init(&w[i].done, 0);
			CHECK_OK(pthread_create(&th[i], NULL, soak_wait, &w[i]));
		}
		test_sleep_ns(test_rand(&rng) % 300000);
		rc = ripen_task_cancel(t);
		CHECK(rc == 0 || rc == -EBUSY);
		for (int i = 0; i < 4; i++) {
			if (!await_flag(&w[i].done, 10 * SEC))
				check_fail(__FILE__, __LINE__, "round %u: waiter %d never woke", r, i);
			pthread_join(th[i], NULL);
		}
		CHECK_GE(ripen_task_state(t), RIPEN_TASK_DONE);
		ripen_task_release(t);
	}
	ripen_pool_destroy(p);
}

/* ------------------------------------- 2: fork-join on a delayed child */

struct fj {
	struct ripen_pool *p;
	atomic_int child_ran, parent_done;
	int wait_rc;
	uint64_t interval;
	unsigned runs_wanted;
};

static void fj_child(void *arg)
{
	struct fj *f = arg;

	atomic_fetch_add(&f->child_ran, 1);
}

static void fj_parent(void *arg)
{
	struct fj *f = arg;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *c;

	o.not_before_ns = ripen_now_ns() + 1000000;
	CHECK_OK(ripen_submit(f->p, fj_child, f, &o, &c));
	f->wait_rc = ripen_task_wait(c, -1);
	CHECK_EQ(ripen_task_state(c), RIPEN_TASK_DONE);
	ripen_task_release(c);
	atomic_store(&f->parent_done, 1);
}

/* A task waits for a child delayed by 1 ms on a one-worker pool: the waiter
 * must run the child inline once it is due, not wait for a worker that is
 * itself. */
static void fork_join_on_delayed_child(void)
{
	static struct fj f;
	struct ripen_task *t;
	int rc;

	memset(&f, 0, sizeof(f));
	f.p = make_pool(1, 0, false, NULL);
	CHECK_OK(ripen_submit(f.p, fj_parent, &f, NULL, &t));
	rc = ripen_task_wait(t, (int64_t)(20 * SEC));
	if (rc != 0)
		check_fail(__FILE__, __LINE__, "parent waiting on its delayed child hung (%d)", rc);
	CHECK_OK(f.wait_rc);
	CHECK_EQ(atomic_load(&f.child_ran), 1);
	ripen_task_release(t);
	ripen_pool_destroy(f.p);
}

/* Worker-side wait on a periodic child: run inline at each due time until
 * the trigger says stop; the wait returns once the task is done. */
static uint64_t fj_trigger(const struct ripen_task_view *v)
{
	struct fj *f = v->arg;

	return (unsigned)atomic_load(&f->child_ran) >= f->runs_wanted ? 0 :
	       ripen_now_ns() + 200000;
}

static void fj_parent_trig(void *arg)
{
	struct fj *f = arg;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *c;

	o.not_before_ns = ripen_now_ns() + 500000;
	o.trigger = fj_trigger;
	CHECK_OK(ripen_submit(f->p, fj_child, f, &o, &c));
	f->wait_rc = ripen_task_wait(c, -1);
	CHECK_EQ(ripen_task_state(c), RIPEN_TASK_DONE);
	ripen_task_release(c);
	atomic_store(&f->parent_done, 1);
}

static void fork_join_on_triggered_child(void)
{
	static struct fj f;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_task *t;
	int rc;

	memset(&f, 0, sizeof(f));
	f.runs_wanted = 3;
	f.p = make_pool(1, 0, false, NULL);
	CHECK_OK(ripen_submit(f.p, fj_parent_trig, &f, NULL, &t));
	rc = ripen_task_wait(t, (int64_t)(20 * SEC));
	if (rc != 0)
		check_fail(__FILE__, __LINE__, "parent waiting on its triggered child hung (%d)", rc);
	CHECK_OK(f.wait_rc);
	CHECK_EQ(atomic_load(&f.child_ran), 3);
	ripen_task_release(t);
	CHECK_OK(ripen_pool_wait_idle(f.p, (int64_t)(10 * SEC)));
	CHECK_OK(ripen_pool_stats(f.p, &st));
	CHECK_EQ(st.run, 4);
	CHECK_EQ(st.submitted, st.run + st.cancelled);
	ripen_pool_destroy(f.p);
}

/* ------------------------------- 3: NaN, inf and far-deadline entries */

#define NLOW 100

struct strand {
	atomic_int low_ran;
	atomic_int timed_out;
};

static struct strand sd;
static char long_marker; /* the long task's argument */

static void long_fn(void *arg)
{
	(void)arg;
	/* returns when the low-scored tasks queued behind it have run on the
	 * other worker, or after 10 s (then they were stranded behind it) */
	uint64_t t0 = test_now_ns();

	while (atomic_load(&sd.low_ran) < NLOW) {
		if (test_now_ns() - t0 > 10 * SEC) {
			atomic_store(&sd.timed_out, 1);
			return;
		}
		test_sleep_ns(100000);
	}
}

static void low_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&sd.low_ran, 1);
}

static double nan_score(const struct ripen_task_view *t, uint64_t now, void *ctx)
{
	(void)now;
	(void)ctx;
	return t->arg == &long_marker ? 1.0 : (t->base > 0 ? INFINITY : NAN);
}

/* One long task and 100 lowest-keyed tasks in worker 0's heap, the
 * rebalancer off: worker 1 must steal the low ones ("lowest" is still
 * runnable and stealable). */
static void lowest_keys_stay_stealable_(struct ripen_policy *pol, int kind)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_pool *p = make_pool(2, RIPEN_REBALANCE_OFF, true, pol);

	memset(&sd, 0, sizeof(sd));
	o.inbox = 1;
	o.deadline_ns = ripen_now_ns() + 1000 * SEC;
	CHECK_OK(ripen_submit(p, long_fn, &long_marker, &o, NULL));
	for (int i = 0; i < NLOW; i++) {
		o.base = kind == 1 ? 1.0 : 0.0;	/* custom: +inf or NaN */
		o.deadline_ns = UINT64_MAX;	/* EDF: the farthest deadline */
		CHECK_OK(ripen_submit(p, low_fn, NULL, &o, NULL));
	}
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_wait_idle(p, (int64_t)(60 * SEC)));
	if (atomic_load(&sd.timed_out))
		check_fail(__FILE__, __LINE__, "kind %d: lowest-keyed tasks stranded behind a long task",
			   kind);
	CHECK_EQ(atomic_load(&sd.low_ran), NLOW);
	CHECK_OK(ripen_pool_stats(p, &st));
	if (kind < 2)
		CHECK_GE(st.bad_scores, NLOW);
	ripen_pool_destroy(p);
}

static void lowest_keys_stay_stealable(void)
{
	lowest_keys_stay_stealable_(ripen_policy_custom(nan_score, NULL, 0, NULL), 0);
	lowest_keys_stay_stealable_(ripen_policy_custom(nan_score, NULL, 0, NULL), 1);
	lowest_keys_stay_stealable_(ripen_policy_edf(), 2);
}

/* --------------------------------- 4 and the park recheck: wake-ups */

/* 20,000 submits to a one-worker pool, with random gaps so that each lands
 * at some point of the worker's spin-then-park: each task must start. A
 * lost wake-up leaves the task queued forever (nothing else submits). */
static void polling_wakeups(void)
{
	unsigned n = (unsigned)(20000 * test_scale());
	struct ripen_pool *p = make_pool(1, 0, false, NULL);
	uint64_t rng = 12345;
	atomic_int ran = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t gap = test_rand(&rng) % 40000, t0 = test_now_ns();

		while (test_now_ns() - t0 < gap)
			; /* spin: a sleep would only ever find the worker parked */
		CHECK_OK(ripen_submit(p, count_fn, &ran, NULL, NULL));
		t0 = test_now_ns();
		while ((unsigned)atomic_load(&ran) <= i) {
			if (test_now_ns() - t0 > 2 * SEC)
				check_fail(__FILE__, __LINE__, "submit %u: not started in 2 s: a lost wake-up", i);
			sched_yield();
		}
	}
	ripen_pool_destroy(p);
}

/* Worker 1 sleeps; two tasks go to worker 0, the first of which waits for
 * the second: worker 0 publishes a non-empty heap after its pop and must
 * wake worker 1 to steal the second (rebalancer off: nobody else would). */
static atomic_int b_started;

static void blocker_fn(void *arg)
{
	atomic_int *timed_out = arg;

	if (!await_flag(&b_started, 5 * SEC))
		atomic_store(timed_out, 1);
}

static void b_fn(void *arg)
{
	(void)arg;
	atomic_store(&b_started, 1);
}

static void wake_gate_wakes_a_thief(void)
{
	unsigned rounds = (unsigned)(2000 * test_scale());
	struct ripen_pool *p = make_pool(2, RIPEN_REBALANCE_OFF, false, NULL);
	struct ripen_task_opts hi = RIPEN_TASK_OPTS_INIT, lo = RIPEN_TASK_OPTS_INIT;
	atomic_int timed_out = 0;
	uint64_t rng = 99;

	hi.inbox = lo.inbox = 1;
	hi.base = 2;
	lo.base = 1;
	for (unsigned r = 0; r < rounds && !atomic_load(&timed_out); r++) {
		uint64_t gap = test_rand(&rng) % 200000, t0 = test_now_ns();

		atomic_store(&b_started, 0);
		while (test_now_ns() - t0 < gap)
			;
		/* paused submits would not do: one pool, both land at once */
		CHECK_OK(ripen_submit(p, b_fn, NULL, &lo, NULL));
		CHECK_OK(ripen_submit(p, blocker_fn, &timed_out, &hi, NULL));
		CHECK_OK(ripen_pool_wait_idle(p, (int64_t)(30 * SEC)));
	}
	if (atomic_load(&timed_out))
		check_fail(__FILE__, __LINE__, "a task stayed in a busy worker's heap while its peer slept");
	ripen_pool_destroy(p);
}

/*
 * hook: the window the gate exists for. Worker G drains two tasks into its
 * empty heap; before it publishes the heap's size, its peer finishes a task,
 * finds nothing (inbox taken, size still 0) and parks. G then runs the first
 * task, which waits for the second: only the gate's wake-up on the size's
 * rise brings the peer back to take it (no submit comes to wake it, and the
 * rebalancer is off).
 */
struct gate_ctx {
	struct ripen_pool *p;
	atomic_int g_worker, t_worker;	/* 1 + index, once running */
	atomic_int g_go, t_go, armed;
};
static struct gate_ctx gc;

static void gate_g(void *arg)
{
	(void)arg;
	atomic_store(&gc.g_worker, 1 + ripen_pool_current_worker(gc.p));
	(void)await_flag(&gc.g_go, 10 * SEC);
}

static void gate_t(void *arg)
{
	(void)arg;
	atomic_store(&gc.t_worker, 1 + ripen_pool_current_worker(gc.p));
	(void)await_flag(&gc.t_go, 10 * SEC);
}

static void gate_hook(enum ripen__window win, void *arg)
{
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	uint64_t parks0, t0;
	int one = 1;

	(void)arg;
	if (win != RIPEN_WIN_DRAINED ||
	    ripen_pool_current_worker(gc.p) + 1 != atomic_load(&gc.g_worker) ||
	    !atomic_compare_exchange_strong(&gc.armed, &one, 0))
		return;
	CHECK_OK(ripen_pool_stats(gc.p, &st));
	parks0 = st.parks;
	atomic_store(&gc.t_go, 1); /* the peer's task returns; it finds nothing */
	for (t0 = test_now_ns(); st.parks == parks0; test_sleep_ns(100000)) {
		CHECK_OK(ripen_pool_stats(gc.p, &st));
		if (test_now_ns() - t0 > 10 * SEC)
			check_fail(__FILE__, __LINE__, "the peer never parked");
	}
	test_sleep_ns(10000000); /* asleep on its futex by now */
}

static void wake_gate_after_drain(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	atomic_int timed_out = 0;

	if (skip_without_hooks(__func__))
		return;
	memset(&gc, 0, sizeof(gc));
	atomic_store(&b_started, 0);
	gc.p = make_pool(2, RIPEN_REBALANCE_OFF, false, NULL);
	o.inbox = 1;
	CHECK_OK(ripen_submit(gc.p, gate_g, NULL, &o, NULL));
	o.inbox = 2;
	CHECK_OK(ripen_submit(gc.p, gate_t, NULL, &o, NULL));
	if (!await_flag(&gc.g_worker, 10 * SEC) || !await_flag(&gc.t_worker, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the two holding tasks did not start");
	/* both workers busy: these submits wake nobody */
	o.inbox = (uint32_t)atomic_load(&gc.g_worker);
	o.base = 1;
	CHECK_OK(ripen_submit(gc.p, b_fn, NULL, &o, NULL));
	o.base = 2;
	CHECK_OK(ripen_submit(gc.p, blocker_fn, &timed_out, &o, NULL));
	ripen__window_hook(gate_hook, NULL);
	atomic_store(&gc.armed, 1);
	atomic_store(&gc.g_go, 1);
	CHECK_OK(ripen_pool_wait_idle(gc.p, (int64_t)(30 * SEC)));
	ripen__window_hook(NULL, NULL);
	CHECK_EQ(atomic_load(&gc.armed), 0); /* the window was held */
	if (atomic_load(&timed_out))
		check_fail(__FILE__, __LINE__, "work stayed in a busy worker's heap while its peer slept");
	ripen_pool_destroy(gc.p);
}

/*
 * hook: the heap half of the park recheck. A worker about to park (it found
 * nothing) is held while its peer drains two tasks into its empty heap and
 * starts the first, which waits for the second; the peer's gate saw nobody
 * asleep. Only the parking worker's own recheck of the heap sizes keeps it
 * from sleeping with the second task stranded.
 */
static atomic_int pr_hi_started;

static void pr_blocker(void *arg)
{
	atomic_store(&pr_hi_started, 1);
	blocker_fn(arg);
}

static atomic_int pr_timed_out;

static void park_hook(enum ripen__window win, void *arg)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	int one = 1;

	(void)arg;
	if (win != RIPEN_WIN_PARK_ENTRY ||
	    ripen_pool_current_worker(gc.p) + 1 != atomic_load(&gc.t_worker) ||
	    !atomic_compare_exchange_strong(&gc.armed, &one, 0))
		return;
	/* we are not announced asleep: these submits and the peer's gate
	 * see no sleeper and wake nobody */
	o.inbox = (uint32_t)atomic_load(&gc.g_worker);
	o.base = 1;
	CHECK_OK(ripen_submit(gc.p, b_fn, NULL, &o, NULL));
	o.base = 2;
	CHECK_OK(ripen_submit(gc.p, pr_blocker, &pr_timed_out, &o, NULL));
	atomic_store(&gc.g_go, 1);
	if (!await_flag(&pr_hi_started, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the peer never started the first task");
	test_sleep_ns(5000000);
}

static void park_recheck_sees_heaps(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	if (skip_without_hooks(__func__))
		return;
	memset(&gc, 0, sizeof(gc));
	atomic_store(&b_started, 0);
	atomic_store(&pr_hi_started, 0);
	atomic_store(&pr_timed_out, 0);
	gc.p = make_pool(2, RIPEN_REBALANCE_OFF, false, NULL);
	o.inbox = 1;
	CHECK_OK(ripen_submit(gc.p, gate_g, NULL, &o, NULL));
	if (!await_flag(&gc.g_worker, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the holding task did not start");
	atomic_store(&gc.t_worker, 1 + (atomic_load(&gc.g_worker) == 1));
	ripen__window_hook(park_hook, NULL);
	atomic_store(&gc.armed, 1);
	/* wake the other worker (it may be asleep already): its next park
	 * goes through the hook */
	o.inbox = (uint32_t)atomic_load(&gc.t_worker);
	CHECK_OK(ripen_submit(gc.p, noop, NULL, &o, NULL));
	CHECK_OK(ripen_pool_wait_idle(gc.p, (int64_t)(30 * SEC)));
	ripen__window_hook(NULL, NULL);
	CHECK_EQ(atomic_load(&gc.armed), 0);
	if (atomic_load(&pr_timed_out))
		check_fail(__FILE__, __LINE__, "a worker slept while a peer's heap held work");
	ripen_pool_destroy(gc.p);
}

/*
 * A task queued in the inbox of a worker that is inside a long task must be
 * taken by its idle peer (search's inbox take): nothing else moves it, with
 * the rebalancer off. The long task waits for it.
 */
static atomic_int pi_ran, pi_timed_out;

static void pi_x(void *arg)
{
	(void)arg;
	atomic_store(&pi_ran, 1);
}

static void pi_holder(void *arg)
{
	(void)arg;
	atomic_store(&gc.g_worker, 1 + ripen_pool_current_worker(gc.p));
	if (!await_flag(&pi_ran, 10 * SEC))
		atomic_store(&pi_timed_out, 1);
}

static void idle_peer_takes_from_a_busy_inbox(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	memset(&gc, 0, sizeof(gc));
	atomic_store(&pi_ran, 0);
	atomic_store(&pi_timed_out, 0);
	gc.p = make_pool(2, RIPEN_REBALANCE_OFF, false, NULL);
	o.inbox = 1;
	CHECK_OK(ripen_submit(gc.p, pi_holder, NULL, &o, NULL));
	if (!await_flag(&gc.g_worker, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the holder did not start");
	o.inbox = (uint32_t)atomic_load(&gc.g_worker); /* the busy worker's inbox */
	CHECK_OK(ripen_submit(gc.p, pi_x, NULL, &o, NULL));
	CHECK_OK(ripen_pool_wait_idle(gc.p, (int64_t)(30 * SEC)));
	if (atomic_load(&pi_timed_out))
		check_fail(__FILE__, __LINE__, "a task waited in a busy worker's inbox while its peer idled");
	ripen_pool_destroy(gc.p);
}

/* --------------------------------------------- 5: timer arithmetic */

static atomic_int gate_open;
static void gate_fn(void *arg);

static void interval_saturates(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool *p = make_pool(1, 0, false, NULL);
	struct ripen_task *t;
	atomic_int runs = 0;
	uint64_t t0 = test_now_ns();

	o.interval_ns = UINT64_MAX;
	CHECK_OK(ripen_submit(p, count_fn, &runs, &o, &t));
	while (atomic_load(&runs) == 0) {
		if (test_now_ns() - t0 > 10 * SEC)
			check_fail(__FILE__, __LINE__, "first run never came");
		sched_yield();
	}
	test_sleep_ns(50000000);
	/* the next release is beyond the clock's range: never */
	CHECK_EQ(atomic_load(&runs), 1);
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_QUEUED);
	CHECK_OK(ripen_task_cancel(t));
	ripen_task_release(t);
	/* and a delay to the end of time waits until cancelled */
	o.interval_ns = 0;
	o.not_before_ns = UINT64_MAX;
	CHECK_OK(ripen_submit(p, count_fn, &runs, &o, &t));
	test_sleep_ns(10000000);
	CHECK_OK(ripen_task_cancel(t));
	CHECK_OK(ripen_task_wait(t, 0));
	ripen_task_release(t);
	CHECK_EQ(atomic_load(&runs), 1);
	ripen_pool_destroy(p);
}

static void huge_period_does_not_spin(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool_stats s0 = RIPEN_POOL_STATS_INIT, s1 = RIPEN_POOL_STATS_INIT;
	struct ripen_pool *p = make_pool(2, UINT64_MAX - 1, false, NULL);
	struct ripen_task *t;
	atomic_int runs = 0;

	atomic_store(&gate_open, 0);
	o.not_before_ns = ripen_now_ns() + 3600 * SEC;
	CHECK_OK(ripen_submit(p, count_fn, &runs, &o, &t));
	/* a running task keeps the pool busy: the rebalancer then wakes a
	 * period after each look, which is where the sum wrapped. A submit
	 * does not wake it (only a heap's rise, a swap, a timer do): once the
	 * task runs, a policy swap pokes it into a look at a busy pool */
	CHECK_OK(ripen_submit(p, gate_fn, NULL, NULL, NULL));
	for (int k = 0; k < 10000; k++) {
		CHECK_OK(ripen_pool_stats(p, &s0));
		if (s0.run >= 1)
			break;
		test_sleep_ns(1000000);
	}
	CHECK_EQ(s0.run, 1);
	CHECK_OK(ripen_pool_set_policy(p, ripen_policy_static()));
	test_sleep_ns(20000000);
	CHECK_OK(ripen_pool_stats(p, &s0));
	test_sleep_ns(200000000);
	CHECK_OK(ripen_pool_stats(p, &s1));
	atomic_store(&gate_open, 1);
	printf("# rebalancer periods over 200 ms with a period of ~584 years: %llu\n",
	       (unsigned long long)(s1.rebalances - s0.rebalances));
	/* a wrapped wake-up time spins (hundreds of thousands); the
	 * rebalancer should sleep until the timer or a poke: none came */
	CHECK_LT(s1.rebalances - s0.rebalances, 100);
	/* a delayed task still runs on time under such a period */
	ripen_task_release(t);
	o.not_before_ns = ripen_now_ns() + 1000000;
	CHECK_OK(ripen_submit(p, count_fn, &runs, &o, &t));
	CHECK_OK(ripen_task_wait(t, (int64_t)(10 * SEC)));
	CHECK_EQ(atomic_load(&runs), 1);
	ripen_task_release(t);
	ripen_pool_destroy(p);
}

/* ------------------------------ 6: re-prioritise racing a shutdown */

struct reprio_ctx {
	struct ripen_pool *p;
	atomic_int armed;
};

static void reprio_hook(enum ripen__window win, void *arg)
{
	struct reprio_ctx *c = arg;
	int one = 1;

	if (win != RIPEN_WIN_REPRIO || !atomic_compare_exchange_strong(&c->armed, &one, 0))
		return;
	/* the caller has seen the task QUEUED; before it goes on, the task
	 * runs, the pool drains and its workers exit */
	CHECK_OK(ripen_pool_shutdown(c->p, RIPEN_SHUTDOWN_DRAIN));
}

/* hook: the late re-prioritisation must not queue an entry nobody drains
 * (LeakSanitizer sees the task otherwise), and reports the task done */
static void reprioritize_racing_shutdown(void)
{
	static struct reprio_ctx c;
	struct ripen_task *t;
	atomic_int ran = 0;
	int rc;

	if (skip_without_hooks(__func__))
		return;
	c.p = make_pool(1, 0, true, NULL);
	CHECK_OK(ripen_submit(c.p, count_fn, &ran, NULL, &t));
	ripen__window_hook(reprio_hook, &c);
	atomic_store(&c.armed, 1);
	rc = ripen_task_reprioritize(t, 5.0);
	ripen__window_hook(NULL, NULL);
	CHECK_EQ(atomic_load(&ran), 1);
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_DONE);
	CHECK_EQ(rc, -EALREADY);
	ripen_pool_destroy(c.p);
	ripen_task_release(t); /* the last reference: the task is freed here */
}

/* -------------------- two live entries at one version, periodic task */

/*
 * The drainer and a re-prioritisation can both make an entry at the same
 * version (worker.c inbox_take): the re-prioritisation bumps the version,
 * the drainer frees the node and keys the new version, then the
 * re-prioritisation finds the node free and queues a fresh one. For a
 * periodic task the entry left over after the run must not run it again:
 * the task is back in the timer heap (ARMED), and only its release may
 * make it claimable. The hooks make that interleaving happen.
 */
struct twin_ctx {
	struct ripen_pool *p;
	atomic_int armed_reprio, armed_drain;
	atomic_int drained, reentered;
	pthread_t resumer;
};

static void *twin_resume(void *arg)
{
	CHECK_OK(ripen_pool_resume(((struct twin_ctx *)arg)->p));
	return NULL;
}

static void twin_hook(enum ripen__window win, void *arg)
{
	struct twin_ctx *c = arg;
	int one = 1;

	if (win == RIPEN_WIN_REPRIO_BUMPED &&
	    atomic_compare_exchange_strong(&c->armed_reprio, &one, 0)) {
		/* version bumped; now let the worker drain the node */
		atomic_store(&c->armed_drain, 1);
		CHECK_OK(pthread_create(&c->resumer, NULL, twin_resume, c));
		if (!await_flag(&c->drained, 10 * SEC))
			check_fail(__FILE__, __LINE__, "the worker never drained its inbox");
	} else if (win == RIPEN_WIN_DRAINED &&
		   atomic_compare_exchange_strong(&c->armed_drain, &one, 0)) {
		/* the node is free and keyed at the new version; hold the
		 * worker until the re-prioritisation has queued its twin */
		atomic_store(&c->drained, 1);
		(void)await_flag(&c->reentered, 10 * SEC);
	}
}

static void periodic_twin_entry_does_not_run_armed(void)
{
	static struct twin_ctx c;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *t;
	atomic_int runs = 0;
	int rc;

	if (skip_without_hooks(__func__))
		return;
	memset(&c, 0, sizeof(c));
	c.p = make_pool(1, 0, true, NULL);
	o.not_before_ns = ripen_now_ns() + 1000000;
	o.interval_ns = 100 * SEC; /* one release in this test */
	CHECK_OK(ripen_submit(c.p, count_fn, &runs, &o, &t));
	/* released into the paused worker's inbox */
	for (uint64_t t0 = test_now_ns(); ; test_sleep_ns(1000000)) {
		struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;

		CHECK_OK(ripen_pool_stats(c.p, &st));
		if (st.released == 1)
			break;
		if (test_now_ns() - t0 > 10 * SEC)
			check_fail(__FILE__, __LINE__, "never released");
	}
	ripen__window_hook(twin_hook, &c);
	atomic_store(&c.armed_reprio, 1);
	rc = ripen_task_reprioritize(t, 3.0);
	atomic_store(&c.reentered, 1);
	CHECK_OK(rc);
	pthread_join(c.resumer, NULL);
	ripen__window_hook(NULL, NULL);
	/* both entries are in the heap now; one runs the task, which re-arms
	 * for 100 s; the other must find it armed */
	for (uint64_t t0 = test_now_ns(); atomic_load(&runs) == 0; sched_yield())
		if (test_now_ns() - t0 > 10 * SEC)
			check_fail(__FILE__, __LINE__, "never ran");
	test_sleep_ns(50000000);
	CHECK_EQ(atomic_load(&runs), 1);
	{
		struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;

		/* the twin existed and was dropped: the interleaving happened */
		CHECK_OK(ripen_pool_stats(c.p, &st));
		CHECK_EQ(st.stale_dropped, 1);
	}
	CHECK_OK(ripen_task_cancel(t));
	ripen_task_release(t);
	ripen_pool_destroy(c.p);
	CHECK_EQ(atomic_load(&runs), 1);
}

/* ------------- a worker waiting inline sees a re-arm made elsewhere */

/*
 * Worker 0 runs X, which waits (no timeout) on periodic task P while P's
 * first run is on worker 1. That run queues a blocker B on worker 1, which
 * holds worker 1 until P has run three times. Nobody but X's inline wait can
 * run P's later releases (their inbox is worker 1's), so the re-arm on
 * worker 1 must wake X, asleep on P's word while P was running.
 */
static atomic_int w_runs, w_x_waiting;
static struct ripen_task *w_p;
static struct ripen_pool *w_pool;
static atomic_int w_blocker_timed_out;

static void w_blocker(void *arg)
{
	uint64_t t0 = test_now_ns();

	(void)arg;
	while (atomic_load(&w_runs) < 3) {
		if (test_now_ns() - t0 > 10 * SEC) {
			atomic_store(&w_blocker_timed_out, 1);
			return;
		}
		test_sleep_ns(100000);
	}
}

static void w_p_fn(void *arg)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	(void)arg;
	if (atomic_fetch_add(&w_runs, 1) != 0)
		return;
	/* first run, on worker 1: queue the blocker here, give X time to
	 * fall asleep on P's word, then return (the re-arm follows) */
	o.base = 1000;
	CHECK_OK(ripen_submit(w_pool, w_blocker, NULL, &o, NULL));
	(void)await_flag(&w_x_waiting, 5 * SEC);
	test_sleep_ns(20000000);
}

static uint64_t w_trigger(const struct ripen_task_view *v)
{
	(void)v;
	return atomic_load(&w_runs) >= 3 ? 0 : ripen_now_ns() + 1000000;
}

static void w_x(void *arg)
{
	(void)arg;
	while (atomic_load(&w_runs) == 0)
		sched_yield(); /* P's first run has started on worker 1 */
	atomic_store(&w_x_waiting, 1);
	CHECK_OK(ripen_task_wait(w_p, -1));
}

static void inline_waiter_sees_a_rearm_elsewhere(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *x;

	w_pool = make_pool(2, 0, true, NULL);
	o.inbox = 2; /* P's releases go to worker 1 */
	o.not_before_ns = ripen_now_ns() + 1000000;
	o.trigger = w_trigger;
	CHECK_OK(ripen_submit(w_pool, w_p_fn, NULL, &o, &w_p));
	o = (struct ripen_task_opts)RIPEN_TASK_OPTS_INIT;
	o.inbox = 1;
	CHECK_OK(ripen_submit(w_pool, w_x, NULL, &o, &x));
	CHECK_OK(ripen_pool_resume(w_pool));
	if (ripen_task_wait(x, (int64_t)(30 * SEC)) != 0)
		check_fail(__FILE__, __LINE__, "the inline waiter never woke");
	CHECK(!atomic_load(&w_blocker_timed_out));
	CHECK_EQ(atomic_load(&w_runs), 3);
	CHECK_EQ(ripen_task_state(w_p), RIPEN_TASK_DONE);
	ripen_task_release(x);
	ripen_task_release(w_p);
	w_p = NULL;
	ripen_pool_destroy(w_pool);
}

/* ------------- the rebalancer's requeue meets a re-prioritisation */

/*
 * hook: the rebalancer took a task's current entry out of a heap to deal
 * it; before it bumps the version, a re-prioritisation links the task's node
 * into an inbox. The requeue then finds the node busy and must drop its own
 * reference (LeakSanitizer sees the task otherwise). Both workers are held
 * in tasks, so the task sits in a heap where only the rebalancer moves it.
 * The submit's heap rise may wake the rebalancer before ripen_submit has
 * returned the task's pointer (a woken thread can take the submitter's
 * CPU), so the hook arms once A has begun, which makes every later requeue
 * this task's, and waits for the pointer in the window.
 */
static atomic_int rq_hold, rq_a_in, rq_a_up, rq_b_up, rq_hit, rq_ran;
static struct ripen_task *rq_t;
static struct ripen_pool *rq_pool;

static void rq_count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&rq_ran, 1);
}

static void rq_b(void *arg)
{
	(void)arg;
	atomic_store(&rq_b_up, 1);
	(void)await_flag(&rq_hold, 20 * SEC);
}

static void rq_a(void *arg)
{
	(void)arg;
	if (!await_flag(&rq_b_up, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the other holder did not start");
	atomic_store(&rq_a_in, 1); /* both held: the heaps hold only rq_t from here */
	/* into this worker's heap, where the rebalancer merges it */
	CHECK_OK(ripen_submit(rq_pool, rq_count, NULL, NULL, &rq_t));
	atomic_store(&rq_a_up, 1);
	(void)await_flag(&rq_hold, 20 * SEC);
}

static void rq_hook(enum ripen__window win, void *arg)
{
	int zero = 0;

	(void)arg;
	if (win != RIPEN_WIN_REQUEUE || !atomic_load(&rq_a_in) ||
	    !atomic_compare_exchange_strong(&rq_hit, &zero, 1))
		return;
	if (!await_flag(&rq_a_up, 10 * SEC)) /* rq_t is written before it */
		check_fail(__FILE__, __LINE__, "the submitter never returned");
	CHECK_OK(ripen_task_reprioritize(rq_t, 7.0));
}

static void requeue_meets_reprioritize(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	if (skip_without_hooks(__func__))
		return;
	rq_pool = make_pool(2, 0, false, NULL);
	ripen__window_hook(rq_hook, NULL);
	o.inbox = 2;
	CHECK_OK(ripen_submit(rq_pool, rq_b, NULL, &o, NULL));
	o.inbox = 1;
	CHECK_OK(ripen_submit(rq_pool, rq_a, NULL, &o, NULL));
	if (!await_flag(&rq_hit, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the rebalancer never requeued the task");
	ripen__window_hook(NULL, NULL);
	atomic_store(&rq_hold, 1);
	CHECK_OK(ripen_pool_wait_idle(rq_pool, (int64_t)(30 * SEC)));
	CHECK_EQ(atomic_load(&rq_ran), 1);
	ripen_pool_destroy(rq_pool);
	ripen_task_release(rq_t); /* the last reference: freed here */
	rq_t = NULL; /* else LeakSanitizer would find the leak still reachable */
}

/* ------------------------------ a stale entry must not run its task */

static atomic_int order_next;
static int order_of[2];
static struct ripen_task *reprio_a;

static void order_fn(void *arg)
{
	order_of[(intptr_t)arg] = atomic_fetch_add(&order_next, 1);
}

static void reprio_gate(void *arg)
{
	struct ripen_pool *p = arg;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	/* children go straight into this worker's heap: A at 3, B at 2 */
	o.base = 3;
	CHECK_OK(ripen_submit(p, order_fn, (void *)(intptr_t)0, &o, &reprio_a));
	o.base = 2;
	CHECK_OK(ripen_submit(p, order_fn, (void *)(intptr_t)1, &o, NULL));
	/* A's entry at 3 is now stale; its fresh entry at 1 comes through
	 * the inbox. So B runs first. */
	CHECK_OK(ripen_task_reprioritize(reprio_a, 1));
}

static void reprioritize_down_takes_effect(void)
{
	struct ripen_pool *p = make_pool(1, RIPEN_REBALANCE_OFF, false, NULL);
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;

	atomic_store(&order_next, 0);
	CHECK_OK(ripen_submit(p, reprio_gate, p, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(p, (int64_t)(10 * SEC)));
	CHECK_EQ(order_of[1], 0); /* B */
	CHECK_EQ(order_of[0], 1); /* A, at its new priority */
	CHECK_OK(ripen_pool_stats(p, &st));
	CHECK_GE(st.stale_dropped, 1);
	ripen_task_release(reprio_a);
	reprio_a = NULL;
	ripen_pool_destroy(p);
}

/* --------------------------------------------- 7: contract slips */

static void delayed_reject_is_counted(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_pool *p = make_pool(1, 0, false, NULL);
	struct ripen_task *t = (struct ripen_task *)&o;

	CHECK_OK(ripen_pool_shutdown(p, RIPEN_SHUTDOWN_DRAIN));
	o.not_before_ns = ripen_now_ns() + SEC;
	CHECK_EQ(ripen_submit(p, noop, NULL, &o, &t), -ESHUTDOWN);
	CHECK(t == NULL);
	CHECK_EQ(ripen_submit(p, noop, NULL, NULL, NULL), -ESHUTDOWN);
	CHECK_OK(ripen_pool_stats(p, &st));
	CHECK_EQ(st.rejected, 2);
	CHECK_EQ(st.submitted, 0);
	ripen_pool_destroy(p);
}

static atomic_int ctx_frees;

static void count_free(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&ctx_frees, 1);
}

static double base_score(const struct ripen_task_view *t, uint64_t now, void *ctx)
{
	(void)now;
	(void)ctx;
	return t->base;
}

static void larger_opts_still_take_the_policy(void)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	unsigned char buf[sizeof(o) + 32];
	struct ripen_pool_opts *big = (struct ripen_pool_opts *)(void *)buf;
	struct ripen_pool *p = (struct ripen_pool *)buf;

	atomic_store(&ctx_frees, 0);
	memset(buf, 0, sizeof(buf));
	o.policy = ripen_policy_custom(base_score, NULL, 0, count_free);
	CHECK(o.policy != NULL);
	memcpy(buf, &o, sizeof(o));
	big->size = sizeof(buf); /* a newer caller's layout */
	CHECK_EQ(ripen_pool_create(big, &p), -EINVAL);
	CHECK(p == NULL);
	CHECK_EQ(atomic_load(&ctx_frees), 1);
}

static void set_policy_to_the_current_one(void)
{
	struct ripen_policy *pol = ripen_policy_custom(base_score, NULL, 0, count_free);
	struct ripen_pool *p;
	atomic_int ran = 0;

	atomic_store(&ctx_frees, 0);
	p = make_pool(1, 0, false, pol);
	CHECK_OK(ripen_pool_set_policy(p, pol));
	CHECK_EQ(atomic_load(&ctx_frees), 0); /* the live policy is not freed */
	for (int i = 0; i < 100; i++)
		CHECK_OK(ripen_submit(p, count_fn, &ran, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(p, (int64_t)(10 * SEC)));
	CHECK_EQ(atomic_load(&ran), 100);
	CHECK_OK(ripen_pool_set_policy(p, ripen_policy_static()));
	CHECK_EQ(atomic_load(&ctx_frees), 1);
	ripen_pool_destroy(p);
	CHECK_EQ(atomic_load(&ctx_frees), 1);
}

static struct ripen_pool *reentrant_pool;
static atomic_int reentrant_rc[4];

static double reentrant_score(const struct ripen_task_view *t, uint64_t now, void *ctx)
{
	(void)now;
	(void)ctx;
	if (t->base == 1.0) {
		atomic_store(&reentrant_rc[0], ripen_submit(reentrant_pool, noop, NULL, NULL, NULL));
		atomic_store(&reentrant_rc[1],
			     ripen_pool_set_policy(reentrant_pool, ripen_policy_static()));
		atomic_store(&reentrant_rc[2], ripen_pool_set_context(reentrant_pool, NULL, NULL));
		atomic_store(&reentrant_rc[3], ripen_pool_wait_idle(reentrant_pool, 0));
	}
	return t->base;
}

/* A score function that calls back into the pool gets -EDEADLK instead of
 * deadlocking on the heap lock or the grace period it runs inside. */
static void score_fn_reentry_refused(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	atomic_int ran = 0;

	reentrant_pool = make_pool(1, 0, false,
				   ripen_policy_custom(reentrant_score, NULL, 0, NULL));
	o.base = 1.0;
	CHECK_OK(ripen_submit(reentrant_pool, count_fn, &ran, &o, NULL));
	if (ripen_pool_wait_idle(reentrant_pool, (int64_t)(10 * SEC)) != 0)
		check_fail(__FILE__, __LINE__, "a score function calling back deadlocked the pool");
	CHECK_EQ(atomic_load(&ran), 1);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(atomic_load(&reentrant_rc[i]), -EDEADLK);
	ripen_pool_destroy(reentrant_pool);
}

/* A policy swap must not wait for a whole re-key of a big heap: the read
 * section ends between chunks. Counted in scores, not timed. */
#define REKEY_N 20000
static atomic_int slow_calls, swap_started;
static atomic_int calls_at_swap_start, calls_at_swap_end;

static double slow_score(const struct ripen_task_view *t, uint64_t now, void *ctx)
{
	uint64_t t0 = test_now_ns();
	int n = atomic_fetch_add(&slow_calls, 1) + 1;

	(void)now;
	(void)ctx;
	if (n == 2000)
		atomic_store(&swap_started, 1);
	while (test_now_ns() - t0 < 10000)
		; /* 10 us a score: the whole re-key takes 200 ms */
	return t->base;
}

static void gate_fn(void *arg)
{
	(void)arg;
	if (!await_flag(&gate_open, 20 * SEC))
		check_fail(__FILE__, __LINE__, "gate never opened");
}

static void set_policy_does_not_wait_for_a_rekey(void)
{
	atomic_store(&gate_open, 0);
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool *p = make_pool(1, RIPEN_REBALANCE_OFF, true, NULL);
	int during;

	o.base = 100;
	CHECK_OK(ripen_submit(p, gate_fn, NULL, &o, NULL));
	o.base = 1;
	for (int i = 0; i < REKEY_N; i++)
		CHECK_OK(ripen_submit(p, noop, NULL, &o, NULL));
	CHECK_OK(ripen_pool_resume(p));
	/* the gate task runs; the rest sits in the heap */
	CHECK_OK(ripen_pool_set_policy(p, ripen_policy_custom(slow_score, NULL, 0, NULL)));
	atomic_store(&gate_open, 1); /* the worker's next step re-keys 20k entries */
	if (!await_flag(&swap_started, 30 * SEC))
		check_fail(__FILE__, __LINE__, "the re-key never started");
	atomic_store(&calls_at_swap_start, atomic_load(&slow_calls));
	CHECK_OK(ripen_pool_set_policy(p, ripen_policy_static()));
	atomic_store(&calls_at_swap_end, atomic_load(&slow_calls));
	during = atomic_load(&calls_at_swap_end) - atomic_load(&calls_at_swap_start);
	printf("# scores computed while set_policy waited: %d of %d left\n", during,
	       REKEY_N - atomic_load(&calls_at_swap_start));
	/* waiting for the whole pass means all ~18k; one chunk is 1024 */
	CHECK_LT(during, (REKEY_N - 2000) / 2);
	CHECK_OK(ripen_pool_wait_idle(p, (int64_t)(60 * SEC)));
	ripen_pool_destroy(p);
}


/* --------------------------------------------- the stall rule (issue 13) */

/*
 * A worker descheduled inside its scheduling step keeps its heap locked for
 * its whole time off the CPU, and thieves only try-lock. The stall rule
 * (worker.c, step 3a): the peer runs at most RIPEN_STALL_AHEAD entries
 * worse than the holder's published best under that one hold, counted
 * from the look that found the lock held, and then waits for the hold to
 * end. Hook: worker H is held in its step (RIPEN_WIN_DRAINED, lock held)
 * with ST_HIGH better tasks in its heap, published; then its peer R gets
 * ST_LOW worse ones. R may run those before its first look at H (a look
 * comes one step in RIPEN_P2C_EVERY = 4, at random: more than ST_PRELOOK
 * steps without one has probability (3/4)^100 < 1e-12) plus
 * RIPEN_STALL_AHEAD after it, and must then stay stopped while H is held,
 * except for a better task sent to its own inbox, which it must run. Without
 * the rule R runs all ST_LOW.
 */
#define ST_LOW 512
#define ST_HIGH 64
#define ST_PRELOOK 100

static struct {
	struct ripen_pool *p;
	atomic_int worker_of[2];	/* gate i ran on worker (value - 1) */
	atomic_int go[2];
	atomic_int x_started, x_go, armed, held, release;
	atomic_int low_run, high_run, urgent_run;
	atomic_int r_armed, r_in_wait, r_go;	/* second case: R held in its wait */
	atomic_int holds;			/* H's holds so far */
} sr;

static void sr_gate(void *arg)
{
	int i = (int)(uintptr_t)arg;

	atomic_store(&sr.worker_of[i], ripen_pool_current_worker(sr.p) + 1);
	if (!await_flag(&sr.go[i], 20 * SEC))
		check_fail(__FILE__, __LINE__, "gate %d never opened", i);
}

static void sr_x(void *arg)
{
	(void)arg;
	atomic_store(&sr.x_started, 1);
	if (!await_flag(&sr.x_go, 20 * SEC))
		check_fail(__FILE__, __LINE__, "x never released");
}

static void sr_low(void *arg)
{
	(void)arg;
	atomic_fetch_add(&sr.low_run, 1);
}

static void sr_high(void *arg)
{
	(void)arg;
	atomic_fetch_add(&sr.high_run, 1);
}

static void sr_urgent(void *arg)
{
	(void)arg;
	atomic_store(&sr.urgent_run, 1);
}

static void sr_hook(enum ripen__window win, void *arg)
{
	int one = 1;

	(void)arg;
	if (win == RIPEN_WIN_STALL_WAIT &&
	    ripen_pool_current_worker(sr.p) + 1 == atomic_load(&sr.worker_of[1]) &&
	    atomic_compare_exchange_strong(&sr.r_armed, &one, 0)) {
		/* R inside its wait, before it reads H's lock word */
		atomic_store(&sr.r_in_wait, 1);
		if (!await_flag(&sr.r_go, 30 * SEC))
			check_fail(__FILE__, __LINE__, "R was never let go");
		return;
	}
	if (win != RIPEN_WIN_DRAINED ||
	    ripen_pool_current_worker(sr.p) + 1 != atomic_load(&sr.worker_of[0]) ||
	    !atomic_compare_exchange_strong(&sr.armed, &one, 0))
		return;
	/* H's heap lock is held from here to the return: the n-th such hold
	 * ends when release reaches n */
	int n = atomic_fetch_add(&sr.holds, 1) + 1;
	uint64_t t0 = test_now_ns();

	atomic_store(&sr.held, n);
	while (atomic_load(&sr.release) < n) {
		if (test_now_ns() - t0 > 30 * SEC)
			check_fail(__FILE__, __LINE__, "the holder was never released");
		sched_yield();
	}
}

/*
 * The setup the cases share: a 2-worker pool (rebalancer period `period`,
 * RIPEN_REBALANCE_OFF for none) whose worker
 * H is held in its step (RIPEN_WIN_DRAINED, heap locked) with its ST_HIGH
 * better tasks published, and whose peer R is let out of its gate with
 * ST_LOW worse ones; `before_r` runs just before that (a second hook to
 * arm). Returns with R free to run; *h and *r are the two workers.
 */
static void sr_start(int *h, int *r, void (*before_r)(void), uint64_t period)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	memset(&sr, 0, sizeof(sr));
	sr.p = make_pool(2, period, false, NULL);
	/* both workers inside a gate task: H runs gate 0, R gate 1 */
	o.base = 100;
	for (int i = 0; i < 2; i++) {
		o.inbox = (uint32_t)i + 1;
		CHECK_OK(ripen_submit(sr.p, sr_gate, (void *)(uintptr_t)i, &o, NULL));
	}
	if (!await_flag(&sr.worker_of[0], 10 * SEC) || !await_flag(&sr.worker_of[1], 10 * SEC))
		check_fail(__FILE__, __LINE__, "the gates did not start");
	*h = atomic_load(&sr.worker_of[0]) - 1;
	*r = atomic_load(&sr.worker_of[1]) - 1;
	CHECK_NE(*h, *r);
	/* H: the better tasks and x; H pops x, publishes its best and runs x */
	o.inbox = (uint32_t)*h + 1;
	o.base = 10;
	for (int i = 0; i < ST_HIGH; i++)
		CHECK_OK(ripen_submit(sr.p, sr_high, NULL, &o, NULL));
	o.base = 20;
	CHECK_OK(ripen_submit(sr.p, sr_x, NULL, &o, NULL));
	atomic_store(&sr.go[0], 1);
	if (!await_flag(&sr.x_started, 10 * SEC))
		check_fail(__FILE__, __LINE__, "x did not start");
	/* one more for H's inbox: its next step drains it and is held there */
	ripen__window_hook(sr_hook, NULL);
	atomic_store(&sr.armed, 1);
	o.base = 10;
	CHECK_OK(ripen_submit(sr.p, sr_high, NULL, &o, NULL));
	atomic_store(&sr.x_go, 1);
	if (!await_flag(&sr.held, 10 * SEC))
		check_fail(__FILE__, __LINE__, "the holder never reached its window");
	/* R: the worse tasks, then out of its gate */
	if (before_r != NULL)
		before_r();
	o.inbox = (uint32_t)*r + 1;
	o.base = 1;
	for (int i = 0; i < ST_LOW; i++)
		CHECK_OK(ripen_submit(sr.p, sr_low, NULL, &o, NULL));
	atomic_store(&sr.go[1], 1);
}

/* Stop R inside its first stall wait (second case). */
static void sr_arm_r(void)
{
	atomic_store(&sr.r_armed, 1);
}

/* Until R has begun a stall wait (or ran all its worse tasks, or 10 s
 * passed: the caller checks st->stall_waits); st: the stats then. */
static void sr_await_wait(struct ripen_pool_stats *st)
{
	for (uint64_t t0 = test_now_ns();; test_sleep_ns(100000)) {
		CHECK_OK(ripen_pool_stats(sr.p, st));
		if (st->stall_waits > 0 || atomic_load(&sr.low_run) == ST_LOW ||
		    test_now_ns() - t0 > 10 * SEC)
			break;
	}
}

static void stall_rule_bounds_the_run_ahead(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	int h, r, at_20ms, at_40ms, after_urgent;
	bool urgent_during_hold;
	uint64_t t0;

	if (skip_without_hooks(__func__))
		return;
	sr_start(&h, &r, NULL, RIPEN_REBALANCE_OFF);
	sr_await_wait(&st);
	test_sleep_ns(20000000);
	at_20ms = atomic_load(&sr.low_run);
	test_sleep_ns(20000000);
	at_40ms = atomic_load(&sr.low_run);
	/* a task better than the held peer's best, aimed at R: its own inbox
	 * ends R's wait, and it runs while H is still held */
	o.inbox = (uint32_t)r + 1;
	o.base = 1000;
	CHECK_OK(ripen_submit(sr.p, sr_urgent, NULL, &o, NULL));
	t0 = test_now_ns();
	urgent_during_hold = await_flag(&sr.urgent_run, 5 * SEC);
	printf("# the better task ran %.3f ms after its submit\n", (double)(test_now_ns() - t0) / 1e6);
	/* and the inbox exit bought no fresh budget: R waits again at once */
	test_sleep_ns(20000000);
	after_urgent = atomic_load(&sr.low_run);
	atomic_store(&sr.release, 1);
	CHECK_OK(ripen_pool_wait_idle(sr.p, (int64_t)(30 * SEC)));
	ripen__window_hook(NULL, NULL);
	printf("# R ran %d of %d worse tasks while H was held (bound %d), %lu stall waits\n",
	       at_40ms, ST_LOW, ST_PRELOOK + (int)RIPEN_STALL_AHEAD, (unsigned long)st.stall_waits);
	if (st.stall_waits == 0)
		check_fail(__FILE__, __LINE__, "R never waited: it ran %d of %d worse tasks",
			   atomic_load(&sr.low_run), ST_LOW);
	CHECK_LE(at_20ms, ST_PRELOOK + (int)RIPEN_STALL_AHEAD);
	CHECK_EQ(at_20ms, at_40ms); /* stopped, not slowed */
	if (!urgent_during_hold)
		check_fail(__FILE__, __LINE__, "a better task in R's inbox waited for H's hold");
	if (after_urgent != at_40ms)
		check_fail(__FILE__, __LINE__,
			   "R ran %d more worse tasks after the better one: its inbox renewed the budget",
			   after_urgent - at_40ms);
	CHECK_EQ(atomic_load(&sr.low_run), ST_LOW);
	CHECK_EQ(atomic_load(&sr.high_run), ST_HIGH + 1);
	ripen_pool_destroy(sr.p);
}

/*
 * A worker in a stall wait starts nothing on purpose. The rebalancer's
 * rescue took it for stuck after a period and dealt its best entries out,
 * and its merge dealt some of them too: with two workers, to the held
 * peer's inbox, behind the hold (and to R's own inbox, which ended R's
 * wait every period). Both must leave a waiting worker alone. Same setup
 * with a rebalancer of period ST_PERIOD: once R waits, over three periods
 * nothing may be rescued or merged, and R must run no worse task. The
 * period is long so that the setup, where H runs a task with its heap
 * full, is far shorter than the two periods a rescue needs to see.
 */
#define ST_PERIOD (50 * 1000000ull)

static void stall_wait_is_left_alone_by_the_rebalancer(void)
{
	struct ripen_pool_stats a = RIPEN_POOL_STATS_INIT, b = RIPEN_POOL_STATS_INIT;
	int h, r, low_a, low_b;

	if (skip_without_hooks(__func__))
		return;
	sr_start(&h, &r, NULL, ST_PERIOD);
	sr_await_wait(&a);
	/* the first rescue could come one period after R's last start; a
	 * merge that read R's flag just before R set it lands in this */
	test_sleep_ns(20000000);
	CHECK_OK(ripen_pool_stats(sr.p, &a));
	low_a = atomic_load(&sr.low_run);
	test_sleep_ns(3 * ST_PERIOD);
	CHECK_OK(ripen_pool_stats(sr.p, &b));
	low_b = atomic_load(&sr.low_run);
	atomic_store(&sr.release, 1);
	CHECK_OK(ripen_pool_wait_idle(sr.p, (int64_t)(30 * SEC)));
	ripen__window_hook(NULL, NULL);
	printf("# over 3 periods of R's wait: %lu rescued, %lu merged, %d worse tasks run, "
	       "%lu rebalances, %lu stall waits\n",
	       (unsigned long)(b.rescued - a.rescued), (unsigned long)(b.merged - a.merged),
	       low_b - low_a, (unsigned long)(b.rebalances - a.rebalances),
	       (unsigned long)b.stall_waits);
	if (a.stall_waits == 0)
		check_fail(__FILE__, __LINE__, "R never waited: it ran %d of %d worse tasks",
			   low_a, ST_LOW);
	CHECK_GE(b.rebalances - a.rebalances, 2);
	CHECK_EQ(b.rescued, a.rescued);
	CHECK_EQ(b.merged, a.merged);
	CHECK_EQ(low_b, low_a);
	CHECK_EQ(atomic_load(&sr.low_run), ST_LOW);
	CHECK_EQ(atomic_load(&sr.high_run), ST_HIGH + 1);
	ripen_pool_destroy(sr.p);
}

/*
 * The hold counter: a wait ends when the hold it waits for ends, even if
 * the peer holds its lock again by the time the waiter looks (a plain 0/1
 * lock would read "still held" and keep waiting through every later hold).
 * R is stalled behind H's first hold and stopped inside its wait
 * (RIPEN_WIN_STALL_WAIT) before it reads H's lock word; H is let go, runs
 * on, and is held again in a later step (a second hold, lock held); then R
 * goes on. It must see a new hold, leave the wait, and run some of its
 * worse tasks under the fresh budget before it waits again.
 */
static void stall_rule_sees_a_new_hold(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	int h, r, before, after;
	uint64_t t0;

	if (skip_without_hooks(__func__))
		return;
	/* first hold: R stalls behind it and is stopped inside its wait */
	sr_start(&h, &r, sr_arm_r, RIPEN_REBALANCE_OFF);
	if (!await_flag(&sr.r_in_wait, 10 * SEC))
		check_fail(__FILE__, __LINE__, "R never waited: it ran %d of %d worse tasks",
			   atomic_load(&sr.low_run), ST_LOW);
	/* H goes on, then is held again: one more task for its inbox, so its
	 * next step drains and reaches the window */
	atomic_store(&sr.armed, 1);
	atomic_store(&sr.release, 1);
	o.inbox = (uint32_t)h + 1;
	o.base = 10;
	CHECK_OK(ripen_submit(sr.p, sr_high, NULL, &o, NULL));
	for (t0 = test_now_ns(); atomic_load(&sr.held) < 2; sched_yield())
		if (test_now_ns() - t0 > 10 * SEC)
			check_fail(__FILE__, __LINE__, "the holder never reached its window again");
	before = atomic_load(&sr.low_run);
	atomic_store(&sr.r_go, 1);
	for (t0 = test_now_ns();; test_sleep_ns(100000)) {
		CHECK_OK(ripen_pool_stats(sr.p, &st));
		if (st.stall_waits >= 2 || test_now_ns() - t0 > 5 * SEC)
			break;
	}
	test_sleep_ns(20000000);
	after = atomic_load(&sr.low_run);
	atomic_store(&sr.release, 2);
	CHECK_OK(ripen_pool_wait_idle(sr.p, (int64_t)(30 * SEC)));
	ripen__window_hook(NULL, NULL);
	printf("# under the second hold R ran %d more worse tasks, then waited (%lu waits)\n",
	       after - before, (unsigned long)st.stall_waits);
	if (after == before)
		check_fail(__FILE__, __LINE__, "R took the second hold for the first and kept waiting");
	CHECK_GE(st.stall_waits, 2);
	CHECK_LE(after - before, ST_PRELOOK + (int)RIPEN_STALL_AHEAD);
	CHECK_EQ(atomic_load(&sr.low_run), ST_LOW);
	CHECK_EQ(atomic_load(&sr.high_run), ST_HIGH + 2);
	ripen_pool_destroy(sr.p);
}

/*
 * The stall wait's re-wait backs off. R's own inbox ends its wait, but an
 * inbox can read non-empty and still not be drainable: a producer
 * preempted between its tail exchange and its link, or another dequeuer
 * holding the inbox lock. R's step then drains nothing and finds itself
 * stalled again; had the re-wait looked at the inbox first, R would loop
 * step - wait - step without ever yielding the CPU, and the thread it waits
 * for may need that CPU. Same setup; once R waits, the test holds R's
 * inbox lock (as a second dequeuer would) and sends R a worse task; from
 * 1 ms after the submit, R must yield in its wait (within 5 s: it may be
 * off its CPU for a while beside other load), count no new wait (one per
 * watch), and run nothing.
 */
static void stall_rewait_backs_off(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool_stats a = RIPEN_POOL_STATS_INIT, b = RIPEN_POOL_STATS_INIT;
	struct ripen__worker *rw;
	int h, r, low_a, low_b;
	double ms;
	uint64_t t0;

	if (skip_without_hooks(__func__))
		return;
	sr_start(&h, &r, NULL, RIPEN_REBALANCE_OFF);
	sr_await_wait(&a);
	if (a.stall_waits == 0)
		check_fail(__FILE__, __LINE__, "R never waited: it ran %d of %d worse tasks",
			   atomic_load(&sr.low_run), ST_LOW);
	test_sleep_ns(20000000); /* R's backoff is spent by now */
	rw = &sr.p->workers[r];
	/* acquire: pairs with the release unlock of R's last drain */
	for (t0 = test_now_ns();
	     atomic_exchange_explicit(&rw->inbox_lock, 1, memory_order_acquire); sched_yield())
		if (test_now_ns() - t0 > 10 * SEC)
			check_fail(__FILE__, __LINE__, "R's inbox lock was never free");
	o.inbox = (uint32_t)r + 1;
	o.base = 1;
	CHECK_OK(ripen_submit(sr.p, sr_low, NULL, &o, NULL));
	/* R's wait ends at most once for this task; the count starts after */
	test_sleep_ns(1000000);
	CHECK_OK(ripen_pool_stats(sr.p, &a));
	low_a = atomic_load(&sr.low_run);
	/* R yields as soon as it has a CPU; beside CPU hogs that can take
	 * tens of ms, and a hot loop never yields: up to 5 s */
	for (t0 = test_now_ns();; test_sleep_ns(1000000)) {
		CHECK_OK(ripen_pool_stats(sr.p, &b));
		if (b.stall_yields > a.stall_yields || test_now_ns() - t0 > 5 * SEC)
			break;
	}
	test_sleep_ns(5000000); /* a few more rounds for the counts below */
	CHECK_OK(ripen_pool_stats(sr.p, &b));
	low_b = atomic_load(&sr.low_run);
	ms = (double)(test_now_ns() - t0) / 1e6;
	/* release: pairs with the acquire exchange of R's next drain */
	atomic_store_explicit(&rw->inbox_lock, 0, memory_order_release);
	atomic_store(&sr.release, 1);
	CHECK_OK(ripen_pool_wait_idle(sr.p, (int64_t)(30 * SEC)));
	ripen__window_hook(NULL, NULL);
	printf("# over %.1f ms with an undrainable inbox R yielded %lu times, began %lu waits, "
	       "ran %d tasks\n",
	       ms, (unsigned long)(b.stall_yields - a.stall_yields),
	       (unsigned long)(b.stall_waits - a.stall_waits), low_b - low_a);
	if (b.stall_yields == a.stall_yields)
		check_fail(__FILE__, __LINE__,
			   "R never yielded while its inbox read non-empty: a hot loop");
	CHECK_EQ(b.stall_waits, a.stall_waits);
	CHECK_EQ(low_b, low_a);
	CHECK_EQ(atomic_load(&sr.low_run), ST_LOW + 1);
	CHECK_EQ(atomic_load(&sr.high_run), ST_HIGH + 1);
	ripen_pool_destroy(sr.p);
}

/* ------------- a sole holder's claim must see a cancel made just before */

static struct ripen_task *sole_t;
static atomic_int sole_armed, sole_hit;

static void sole_hook(enum ripen__window win, void *arg)
{
	int one = 1;

	(void)arg;
	if (win != RIPEN_WIN_CLAIM || !atomic_compare_exchange_strong(&sole_armed, &one, 0))
		return;
	/* the worker has popped the task's entry and not yet claimed it: the
	 * handle's holder cancels the task and lets go of the handle, which
	 * leaves the entry's reference the only one */
	CHECK_EQ(ripen_task_cancel(sole_t), 0);
	ripen_task_release(sole_t);
	atomic_store(&sole_hit, 1);
}

/* hook: the claim then holds the only reference and skips its CAS; it must
 * still find the task cancelled (the state read after the count) */
static void sole_claim_sees_a_cancel(void)
{
	struct ripen_pool *p;
	atomic_int ran = 0;

	if (skip_without_hooks(__func__))
		return;
	p = make_pool(1, 0, true, NULL);
	CHECK_OK(ripen_submit(p, count_fn, &ran, NULL, &sole_t));
	ripen__window_hook(sole_hook, NULL);
	atomic_store(&sole_armed, 1);
	CHECK_OK(ripen_pool_resume(p));
	/* the cancel counts the task out, so wait_idle may return while the
	 * hook still runs: wait for its end first */
	if (!await_flag(&sole_hit, 10 * SEC))
		check_fail(__FILE__, __LINE__, "no worker came to claim the task");
	CHECK_OK(ripen_pool_wait_idle(p, (int64_t)(30 * SEC)));
	ripen_pool_destroy(p); /* joins the worker: its claim is over */
	ripen__window_hook(NULL, NULL);
	CHECK_EQ(atomic_load(&ran), 0);
}

TEST_MAIN(T(periodic_waiter_survives_rearm), T(periodic_waiters_soak),
	  T(fork_join_on_delayed_child), T(fork_join_on_triggered_child),
	  T(lowest_keys_stay_stealable), T(polling_wakeups), T(wake_gate_wakes_a_thief),
	  T(wake_gate_after_drain), T(park_recheck_sees_heaps),
	  T(idle_peer_takes_from_a_busy_inbox),
	  T(interval_saturates), T(huge_period_does_not_spin),
	  T(reprioritize_racing_shutdown), T(periodic_twin_entry_does_not_run_armed),
	  T(reprioritize_down_takes_effect), T(inline_waiter_sees_a_rearm_elsewhere),
	  T(requeue_meets_reprioritize),
	  T(delayed_reject_is_counted),
	  T(larger_opts_still_take_the_policy), T(set_policy_to_the_current_one),
	  T(score_fn_reentry_refused), T(set_policy_does_not_wait_for_a_rekey),
	  T(stall_rule_bounds_the_run_ahead), T(stall_rule_sees_a_new_hold),
	  T(stall_wait_is_left_alone_by_the_rebalancer), T(stall_rewait_backs_off),
	  T(sole_claim_sees_a_cancel))
