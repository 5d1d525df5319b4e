/*
 * The API contract: bad input, states, cancel, wait, release, shutdown in
 * both modes, calls from inside tasks.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "ripen.h"

static atomic_int counter;

static void count_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&counter, 1);
}

static void add_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static struct ripen_pool *make_pool(unsigned workers, bool paused)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p = NULL;

	o.workers = workers;
	o.start_paused = paused;
	CHECK_OK(ripen_pool_create(&o, &p));
	CHECK(p != NULL);
	return p;
}

static void create_with_defaults(void)
{
	struct ripen_pool *p = NULL;

	CHECK_OK(ripen_pool_create(NULL, &p));
	CHECK_GE(ripen_pool_workers(p), 1);
	CHECK_EQ(ripen_pool_current_worker(p), -1);
	ripen_pool_destroy(p);
	ripen_pool_destroy(NULL); /* no-op */
}

static void create_rejects_bad_options(void)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p = (struct ripen_pool *)&o;

	CHECK_EQ(ripen_pool_create(NULL, NULL), -EINVAL);
	o.size = 0;
	CHECK_EQ(ripen_pool_create(&o, &p), -EINVAL);
	CHECK(p == NULL);
	o.size = sizeof(o) + 8;
	CHECK_EQ(ripen_pool_create(&o, &p), -EINVAL);
	o.size = sizeof(o);
	o.workers = RIPEN_MAX_WORKERS + 1;
	CHECK_EQ(ripen_pool_create(&o, &p), -EINVAL);
	o.workers = 100000000u;
	CHECK_EQ(ripen_pool_create(&o, &p), -EINVAL);
	CHECK_EQ(ripen_pool_resume(NULL), -EINVAL);
	CHECK_EQ(ripen_pool_wait_idle(NULL, 0), -EINVAL);
	CHECK_EQ(ripen_pool_shutdown(NULL, RIPEN_SHUTDOWN_DRAIN), -EINVAL);
}

static void submit_rejects_bad_input_and_disturbs_nothing(void)
{
	struct ripen_pool *p = make_pool(2, false);
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_task *t = (struct ripen_task *)&o;
	atomic_int ran = 0;
	const double bad[] = { NAN, -NAN, INFINITY, -INFINITY };

	CHECK_OK(ripen_submit(p, add_fn, &ran, NULL, NULL));
	CHECK_EQ(ripen_submit(NULL, add_fn, &ran, NULL, &t), -EINVAL);
	CHECK(t == NULL);
	t = (struct ripen_task *)&o;
	CHECK_EQ(ripen_submit(p, NULL, &ran, NULL, &t), -EINVAL);
	CHECK(t == NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.base = bad[i];
		t = (struct ripen_task *)&o;
		CHECK_EQ(ripen_submit(p, add_fn, &ran, &o, &t), -EINVAL);
		CHECK(t == NULL);
	}
	o.base = 1.0;
	o.size = 3;
	CHECK_EQ(ripen_submit(p, add_fn, &ran, &o, NULL), -EINVAL);
	o.size = sizeof(o) + 64;
	CHECK_EQ(ripen_submit(p, add_fn, &ran, &o, NULL), -EINVAL);
	/* denormal, -0.0 and huge bases are valid */
	o.size = sizeof(o);
	o.base = 4.9e-324;
	CHECK_OK(ripen_submit(p, add_fn, &ran, &o, NULL));
	o.base = -0.0;
	CHECK_OK(ripen_submit(p, add_fn, &ran, &o, NULL));
	o.base = -1.7e308;
	CHECK_OK(ripen_submit(p, add_fn, &ran, &o, NULL));
	/* an older caller's shorter struct: what lies past its size is not
	 * read (here both a period and a trigger, which together are -EINVAL,
	 * and a done callback): the defaults apply */
	o.size = offsetof(struct ripen_task_opts, class_id) + sizeof(uint32_t);
	o.base = 2.0;
	o.interval_ns = 1000;
	o.trigger = (ripen_trigger_fn *)(uintptr_t)1;
	o.done = (void (*)(void *, enum ripen_task_state))(uintptr_t)1;
	CHECK_OK(ripen_submit(p, add_fn, &ran, &o, NULL));
	o = (struct ripen_task_opts)RIPEN_TASK_OPTS_INIT;
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	CHECK_EQ(atomic_load(&ran), 5);
	CHECK_OK(ripen_pool_stats(p, &st));
	CHECK_EQ(st.submitted, 5);
	CHECK_EQ(st.run, 5);
	CHECK_EQ(st.rejected, 0);
	st.size = 0;
	CHECK_EQ(ripen_pool_stats(p, &st), -EINVAL);
	CHECK_EQ(ripen_pool_stats(NULL, &st), -EINVAL);
	ripen_pool_destroy(p);
}

static void run_wait_state_release(void)
{
	struct ripen_pool *p = make_pool(2, false);
	struct ripen_task *t;
	atomic_int ran = 0;

	CHECK_OK(ripen_submit(p, add_fn, &ran, NULL, &t));
	CHECK_OK(ripen_task_wait(t, -1));
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_DONE);
	CHECK_EQ(atomic_load(&ran), 1); /* DONE means its effects are visible */
	CHECK_EQ(ripen_task_cancel(t), -EALREADY);
	CHECK_OK(ripen_task_wait(t, 0));
	ripen_task_release(t);
	ripen_task_release(NULL);
	CHECK_EQ(ripen_task_cancel(NULL), -EINVAL);
	CHECK_EQ(ripen_task_wait(NULL, 0), -EINVAL);
	ripen_pool_destroy(p);
}

static void cancel_queued_task(void)
{
	struct ripen_pool *p = make_pool(2, true);
	struct ripen_task *t;
	atomic_int ran = 0;

	CHECK_OK(ripen_submit(p, add_fn, &ran, NULL, &t));
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_QUEUED);
	CHECK_EQ(ripen_task_wait(t, 1000000), -ETIMEDOUT);
	CHECK_EQ(ripen_task_wait(t, 0), -ETIMEDOUT);
	CHECK_EQ(ripen_pool_wait_idle(p, 1000000), -ETIMEDOUT);
	CHECK_OK(ripen_task_cancel(t));
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_CANCELLED);
	CHECK_EQ(ripen_task_cancel(t), -EALREADY);
	CHECK_OK(ripen_task_wait(t, -1));
	/* the cancelled task is no longer pending, even before dispatch */
	CHECK_OK(ripen_pool_wait_idle(p, 0));
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	ripen_pool_destroy(p);
	CHECK_EQ(atomic_load(&ran), 0);
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_CANCELLED); /* handle outlives pool */
	ripen_task_release(t);
}

struct gate {
	atomic_int entered;
	atomic_int open;
};

static void gated_fn(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->entered, 1);
	while (!atomic_load(&g->open))
		test_sleep_ns(100000);
}

static void cancel_running_task_is_busy(void)
{
	struct ripen_pool *p = make_pool(2, false);
	struct gate g = { 0, 0 };
	struct ripen_task *t;

	CHECK_OK(ripen_submit(p, gated_fn, &g, NULL, &t));
	while (!atomic_load(&g.entered))
		test_sleep_ns(100000);
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_RUNNING);
	CHECK_EQ(ripen_task_cancel(t), -EBUSY);
	CHECK_EQ(ripen_task_wait(t, 2000000), -ETIMEDOUT);
	atomic_store(&g.open, 1);
	CHECK_OK(ripen_task_wait(t, -1));
	CHECK_EQ(ripen_task_state(t), RIPEN_TASK_DONE);
	CHECK_EQ(ripen_task_cancel(t), -EALREADY);
	ripen_task_release(t);
	ripen_pool_destroy(p);
}

static void release_before_completion_still_runs(void)
{
	struct ripen_pool *p = make_pool(2, true);
	atomic_int ran = 0;

	for (int i = 0; i < 1000; i++) {
		struct ripen_task *t;

		CHECK_OK(ripen_submit(p, add_fn, &ran, NULL, &t));
		ripen_task_release(t);
	}
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	CHECK_EQ(atomic_load(&ran), 1000);
	ripen_pool_destroy(p);
}

static void shutdown_drain_runs_everything(void)
{
	struct ripen_pool *p = make_pool(2, true);
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_task *t = (struct ripen_task *)&st;
	atomic_int ran = 0;

	for (int i = 0; i < 5000; i++)
		CHECK_OK(ripen_submit(p, add_fn, &ran, NULL, NULL));
	/* shutdown resumes a paused pool to drain it */
	CHECK_OK(ripen_pool_shutdown(p, RIPEN_SHUTDOWN_DRAIN));
	CHECK_EQ(atomic_load(&ran), 5000);
	CHECK_EQ(ripen_submit(p, add_fn, &ran, NULL, &t), -ESHUTDOWN);
	CHECK(t == NULL);
	CHECK_EQ(ripen_pool_shutdown(p, RIPEN_SHUTDOWN_CANCEL), -EALREADY);
	CHECK_EQ(ripen_pool_shutdown(p, (enum ripen_shutdown)7), -EINVAL);
	CHECK_OK(ripen_pool_wait_idle(p, 0));
	CHECK_OK(ripen_pool_stats(p, &st));
	CHECK_EQ(st.submitted, 5000);
	CHECK_EQ(st.run, 5000);
	CHECK_EQ(st.rejected, 1);
	ripen_pool_destroy(p);
}

static void shutdown_cancel_cancels_queued(void)
{
	enum { N = 3000 };
	static struct ripen_task *h[N];
	struct ripen_pool *p = make_pool(2, true);
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	atomic_int ran = 0;

	for (int i = 0; i < N; i++)
		CHECK_OK(ripen_submit(p, add_fn, &ran, NULL, i % 2 ? &h[i] : NULL));
	CHECK_OK(ripen_pool_shutdown(p, RIPEN_SHUTDOWN_CANCEL));
	CHECK_EQ(atomic_load(&ran), 0);
	CHECK_OK(ripen_pool_stats(p, &st));
	CHECK_EQ(st.cancelled, N);
	CHECK_EQ(st.run, 0);
	for (int i = 1; i < N; i += 2) {
		CHECK_EQ(ripen_task_state(h[i]), RIPEN_TASK_CANCELLED);
		CHECK_EQ(ripen_task_cancel(h[i]), -EALREADY);
		ripen_task_release(h[i]);
	}
	ripen_pool_destroy(p);
}

static struct ripen_pool *inner_pool;
static atomic_int inner_rc[3];

static void calls_from_inside(void *arg)
{
	(void)arg;
	atomic_store(&inner_rc[0], ripen_pool_shutdown(inner_pool, RIPEN_SHUTDOWN_DRAIN));
	atomic_store(&inner_rc[1], ripen_pool_wait_idle(inner_pool, 0));
	atomic_store(&inner_rc[2], ripen_pool_current_worker(inner_pool) >= 0);
}

static void pool_calls_from_a_task_would_deadlock(void)
{
	struct ripen_task *t;

	inner_pool = make_pool(2, false);
	CHECK_OK(ripen_submit(inner_pool, calls_from_inside, NULL, NULL, &t));
	CHECK_OK(ripen_task_wait(t, -1));
	CHECK_EQ(atomic_load(&inner_rc[0]), -EDEADLK);
	CHECK_EQ(atomic_load(&inner_rc[1]), -EDEADLK);
	CHECK_EQ(atomic_load(&inner_rc[2]), 1);
	ripen_task_release(t);
	/* the pool still works after the refused calls */
	CHECK_OK(ripen_submit(inner_pool, count_fn, NULL, NULL, NULL));
	ripen_pool_destroy(inner_pool);
}

/* fork-join: a task waits for children it submitted. On ONE worker this
 * deadlocks unless the wait runs queued children inline. */
struct fib {
	struct ripen_pool *pool;
	int n;
	long result;
};

static void fib_fn(void *arg)
{
	struct fib *f = arg;
	struct fib a, b;
	struct ripen_task *ta, *tb;

	if (f->n < 2) {
		f->result = f->n;
		return;
	}
	a = (struct fib){ f->pool, f->n - 1, 0 };
	b = (struct fib){ f->pool, f->n - 2, 0 };
	CHECK_OK(ripen_submit(f->pool, fib_fn, &a, NULL, &ta));
	CHECK_OK(ripen_submit(f->pool, fib_fn, &b, NULL, &tb));
	CHECK_OK(ripen_task_wait(ta, -1));
	CHECK_OK(ripen_task_wait(tb, -1));
	ripen_task_release(ta);
	ripen_task_release(tb);
	f->result = a.result + b.result;
}

static void wait_inside_a_task_runs_inline(void)
{
	for (unsigned w = 1; w <= 3; w++) {
		struct ripen_pool *p = make_pool(w, false);
		struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
		struct fib f = { p, 18, 0 };
		struct ripen_task *t;

		CHECK_OK(ripen_submit(p, fib_fn, &f, NULL, &t));
		CHECK_OK(ripen_task_wait(t, -1));
		ripen_task_release(t);
		CHECK_EQ(f.result, 2584);
		CHECK_OK(ripen_pool_wait_idle(p, -1));
		CHECK_OK(ripen_pool_stats(p, &st));
		CHECK_EQ(st.run, st.submitted);
		if (w == 1)
			CHECK_GT(st.inline_runs, 0);
		ripen_pool_destroy(p);
	}
}

/* During a DRAIN shutdown, running tasks may still spawn children. */
static atomic_int spawned_ran;
static struct ripen_pool *spawn_pool;
static struct gate spawn_gate;

static void child_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&spawned_ran, 1);
}

static void parent_fn(void *arg)
{
	(void)arg;
	gated_fn(&spawn_gate);
	for (int i = 0; i < 100; i++)
		CHECK_OK(ripen_submit(spawn_pool, child_fn, NULL, NULL, NULL));
}

struct shutdown_arg {
	struct ripen_pool *p;
	enum ripen_shutdown how;
	atomic_int done;
};

static void *shutdown_thread(void *arg)
{
	struct shutdown_arg *a = arg;

	CHECK_OK(ripen_pool_shutdown(a->p, a->how));
	atomic_store(&a->done, 1);
	return NULL;
}

static void drain_lets_running_tasks_spawn(void)
{
	struct shutdown_arg a = { 0 };
	pthread_t th;

	spawn_pool = make_pool(2, false);
	CHECK_OK(ripen_submit(spawn_pool, parent_fn, NULL, NULL, NULL));
	while (!atomic_load(&spawn_gate.entered))
		test_sleep_ns(100000);
	a.p = spawn_pool;
	a.how = RIPEN_SHUTDOWN_DRAIN;
	CHECK_OK(pthread_create(&th, NULL, shutdown_thread, &a));
	/* the shutdown is under way: an external submit is refused */
	while (ripen_submit(spawn_pool, child_fn, NULL, NULL, NULL) == 0)
		test_sleep_ns(100000);
	CHECK_EQ(atomic_load(&a.done), 0);
	atomic_store(&spawn_gate.open, 1);
	pthread_join(th, NULL);
	/* 100 children of the running parent, plus any external submits that
	 * were accepted before the pool closed */
	CHECK_GE(atomic_load(&spawned_ran), 100);
	ripen_pool_destroy(spawn_pool);
}

static void strerror_names_every_code(void)
{
	const int codes[] = { 0, -EINVAL, -ENOMEM, -EAGAIN, -ESHUTDOWN, -ETIMEDOUT,
			      -EBUSY, -EALREADY, -EDEADLK };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		CHECK(ripen_strerror(codes[i]) != NULL);
		CHECK(strcmp(ripen_strerror(codes[i]), "unknown error") != 0);
	}
	CHECK(strcmp(ripen_strerror(12345), "unknown error") == 0);
}

/*
 * Worker lifecycle hooks: each worker's start hook runs on that thread
 * before any of its tasks (a thread-local it sets is seen by every task),
 * its stop hook after the last (the thread-local is still set, and a
 * submit from it is refused, since no one would run the task); both exactly
 * once per worker, and shutdown returns after every stop hook.
 */
enum { HOOK_WORKERS = 4, HOOK_TASKS = 2000 };
static _Thread_local int hook_tls;
static atomic_uint hook_starts, hook_stops, hook_bad, hook_ran;
static atomic_uint hook_start_of[HOOK_WORKERS], hook_stop_of[HOOK_WORKERS];
static int hook_stop_rc[HOOK_WORKERS];
static int hook_token;

static void hook_task(void *arg)
{
	(void)arg;
	if (hook_tls != 1)
		atomic_fetch_add(&hook_bad, 1);
	atomic_fetch_add(&hook_ran, 1);
}

static void on_start(struct ripen_pool *p, unsigned i, void *arg)
{
	if (arg != &hook_token || i >= HOOK_WORKERS || ripen_pool_current_worker(p) != (int)i ||
	    hook_tls != 0)
		atomic_fetch_add(&hook_bad, 1);
	hook_tls = 1;
	atomic_fetch_add(&hook_start_of[i % HOOK_WORKERS], 1);
	/* a start hook may submit, as any thread may */
	if (ripen_submit(p, hook_task, NULL, NULL, NULL) != 0)
		atomic_fetch_add(&hook_bad, 1);
	/* counted after the submit: the test shuts down once all are
	 * counted, and a submit after that would rightly be refused */
	atomic_fetch_add(&hook_starts, 1);
}

/* A start hook that runs late, while the pool shuts down: its submit is
 * either accepted and run, or refused, never left queued (a worker exiting
 * with a queued task aborts). */
static atomic_uint late_accepted, late_refused;

static void on_start_late(struct ripen_pool *p, unsigned i, void *arg)
{
	int rc;

	(void)i;
	(void)arg;
	hook_tls = 1;
	sched_yield(); /* let the shutdown get ahead */
	rc = ripen_submit(p, hook_task, NULL, NULL, NULL);
	if (rc == 0)
		atomic_fetch_add(&late_accepted, 1);
	else if (rc == -ESHUTDOWN)
		atomic_fetch_add(&late_refused, 1);
	else
		atomic_fetch_add(&hook_bad, 1);
}

static void on_stop(struct ripen_pool *p, unsigned i, void *arg)
{
	if (arg != &hook_token || i >= HOOK_WORKERS || hook_tls != 1)
		atomic_fetch_add(&hook_bad, 1);
	hook_tls = 2;
	hook_stop_rc[i % HOOK_WORKERS] = ripen_submit(p, hook_task, NULL, NULL, NULL);
	atomic_fetch_add(&hook_stop_of[i % HOOK_WORKERS], 1);
	atomic_fetch_add(&hook_stops, 1);
}

static void worker_hooks_bracket_every_task(void)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_pool *p;

	o.workers = HOOK_WORKERS;
	o.on_worker_start = on_start;
	o.on_worker_stop = on_stop;
	o.hook_arg = &hook_token;
	CHECK_OK(ripen_pool_create(&o, &p));
	for (int i = 0; i < HOOK_TASKS; i++)
		CHECK_OK(ripen_submit(p, hook_task, NULL, NULL, NULL));
	/* every start hook's submit lands before the shutdown (bounded wait) */
	for (int k = 0; k < 30000 && atomic_load(&hook_starts) < HOOK_WORKERS; k++)
		test_sleep_ns(1000000);
	CHECK_OK(ripen_pool_shutdown(p, RIPEN_SHUTDOWN_DRAIN));
	CHECK_EQ(atomic_load(&hook_starts), HOOK_WORKERS);
	CHECK_EQ(atomic_load(&hook_stops), HOOK_WORKERS); /* all of them before shutdown returned */
	for (int i = 0; i < HOOK_WORKERS; i++) {
		CHECK_EQ(atomic_load(&hook_start_of[i]), 1);
		CHECK_EQ(atomic_load(&hook_stop_of[i]), 1);
		CHECK_EQ(hook_stop_rc[i], -ESHUTDOWN);
	}
	CHECK_EQ(atomic_load(&hook_bad), 0);
	CHECK_EQ(atomic_load(&hook_ran), HOOK_TASKS + HOOK_WORKERS);
	CHECK_OK(ripen_pool_stats(p, &st));
	CHECK_EQ(st.submitted, HOOK_TASKS + HOOK_WORKERS);
	CHECK_EQ(st.run, HOOK_TASKS + HOOK_WORKERS);
	CHECK_EQ(st.rejected, HOOK_WORKERS); /* the stop hooks' submits */
	ripen_pool_destroy(p);

	/* start hooks racing an immediate shutdown, many times */
	o.on_worker_start = on_start_late;
	o.on_worker_stop = NULL;
	for (int round = 0; round < 50; round++) {
		atomic_store(&late_accepted, 0);
		atomic_store(&late_refused, 0);
		atomic_store(&hook_ran, 0);
		CHECK_OK(ripen_pool_create(&o, &p));
		CHECK_OK(ripen_pool_shutdown(p, RIPEN_SHUTDOWN_DRAIN));
		CHECK_EQ(atomic_load(&late_accepted) + atomic_load(&late_refused), HOOK_WORKERS);
		CHECK_EQ(atomic_load(&hook_ran), atomic_load(&late_accepted));
		CHECK_OK(ripen_pool_stats(p, &st));
		CHECK_EQ(st.submitted, atomic_load(&late_accepted));
		CHECK_EQ(st.rejected, atomic_load(&late_refused));
		ripen_pool_destroy(p);
	}
	CHECK_EQ(atomic_load(&hook_bad), 0);
}

TEST_MAIN(T(create_with_defaults), T(create_rejects_bad_options),
	  T(submit_rejects_bad_input_and_disturbs_nothing), T(run_wait_state_release),
	  T(cancel_queued_task), T(cancel_running_task_is_busy),
	  T(release_before_completion_still_runs), T(shutdown_drain_runs_everything),
	  T(shutdown_cancel_cancels_queued), T(pool_calls_from_a_task_would_deadlock),
	  T(wait_inside_a_task_runs_inline), T(drain_lets_running_tasks_spawn),
	  T(strerror_names_every_code), T(worker_hooks_bracket_every_task))
