/*
 * ripen_pool_adapt, the live controller: bad input, the direction of its
 * first moves on a pool where one class misses by construction, the
 * infeasibility event, shedding only where allowed, and stop undoing it.
 * (The law itself, step by step: test_adapt.c; its behaviour under load:
 * bench/adaptive_step.sh and the README.)
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ripen-trace.h"
#include "ripen.h"

#define MS 1000000ull

static struct ripen_pool *make_pool(unsigned workers, uint64_t period, bool metrics_off)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *pool;

	o.workers = workers;
	o.rebalance_period_ns = period;
	o.metrics_off = metrics_off;
	o.name = "adapt";
	CHECK_OK(ripen_pool_create(&o, &pool));
	return pool;
}

static atomic_ullong starts; /* relaxed: every task's start, counted */

static void spin(void *arg)
{
	uint64_t t0 = ripen_now_ns(), d = (uint64_t)(uintptr_t)arg;

	atomic_fetch_add_explicit(&starts, 1, memory_order_relaxed);
	while (ripen_now_ns() - t0 < d)
		;
}

static atomic_ullong probe_start; /* relaxed; read after ripen_task_wait */

static void probe(void *arg)
{
	(void)arg;
	atomic_store_explicit(&probe_start,
			      atomic_fetch_add_explicit(&starts, 1, memory_order_relaxed),
			      memory_order_relaxed);
}

/* The value of the first series of `metrics` that begins with `prefix`
 * (NAN when none). */
static double metric(struct ripen_pool *pool, const char *prefix)
{
	char *buf = NULL, *line;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	double v = NAN;

	CHECK(f != NULL);
	CHECK_OK(ripen_metrics_write(pool, f));
	fclose(f);
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, prefix, strlen(prefix)) == 0) {
			v = strtod(strrchr(line, ' ') + 1, NULL);
			break;
		}
	free(buf);
	return v;
}

static void bad_input_is_refused(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false), *off = make_pool(1, 0, true),
			  *norebal = make_pool(1, RIPEN_REBALANCE_OFF, false);
	struct ripen_objective ob[2] = { { .class_id = 1, .quantile = 0.95, .target_s = 0.01 },
					 { .class_id = 2, .quantile = 0.99, .target_s = 1 } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;

	o.objectives = ob;
	o.n = 2;
	CHECK_EQ(ripen_pool_adapt(NULL, &o), -EINVAL);
	CHECK_EQ(ripen_pool_adapt(pool, NULL), -EINVAL);
	o.n = 0;
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	o.n = 17;
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	o.n = 2;
	ob[1].class_id = 1; /* one class twice */
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	ob[1].class_id = RIPEN_MAX_CLASSES;
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	ob[1].class_id = 2;
	ob[1].quantile = 1;
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	ob[1].quantile = 0.99;
	ob[1].target_s = -1;
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	ob[1].target_s = 1;
	o.step = 2; /* over 1 */
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	o.step = 0;
	o.tau_min_s = 5;
	o.tau_max_s = 1;
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	o.tau_min_s = o.tau_max_s = 0;
	o.aging = 2; /* no such form */
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EINVAL);
	o.aging = RIPEN_AGING_LINEAR;
	CHECK_EQ(ripen_pool_adapt(off, &o), -ENOTSUP);
	CHECK_EQ(ripen_pool_adapt(norebal, &o), -ENOTSUP);
	CHECK_EQ(ripen_pool_adapt_stop(pool), -EALREADY);
	CHECK_OK(ripen_pool_adapt(pool, &o));
	CHECK_EQ(ripen_pool_adapt(pool, &o), -EALREADY);
	CHECK(metric(pool, "ripen_adaptive_tau_seconds{") == 10.0);
	CHECK_OK(ripen_pool_adapt_stop(pool));
	CHECK_EQ(ripen_pool_adapt_stop(pool), -EALREADY);
	CHECK(isnan(metric(pool, "ripen_adaptive_tau_seconds{")));
	CHECK_OK(ripen_pool_adapt(pool, &o)); /* again after a stop */
	ripen_pool_destroy(pool);	      /* with a controller running */
	ripen_pool_destroy(off);
	ripen_pool_destroy(norebal);
}

/*
 * One worker, one base for all: class 2 keeps ~40 tasks of 1 ms queued, so
 * a class-1 task submitted behind them waits tens of ms, far over its 2 ms
 * objective, as long as the two classes weigh the same. The controller's
 * first moves must favour class 1: its weight stays 1 and class 2's falls.
 * And the pool must order by them: with class 2 at a fifth of class 1's
 * weight, a class-1 probe submitted behind 20 or more queued class-2
 * tasks starts after at most the one running and one more (popped before
 * the probe reached the heap). (That the objective is then met is a
 * figure, not asserted: it depends on the machine's load.)
 */
struct feeder {
	struct ripen_pool *pool;
	atomic_bool stop;
};

static void *feed(void *arg)
{
	struct feeder *fd = arg;
	unsigned k = 0;

	/* relaxed: a stop flag */
	while (!atomic_load_explicit(&fd->stop, memory_order_relaxed)) {
		struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
		struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;

		CHECK_OK(ripen_pool_class_stats(fd->pool, 2, &st));
		if (st.queued < 40) {
			to.base = 1;
			to.class_id = (++k % 10 == 0) ? 1 : 2;
			CHECK_OK(ripen_submit(fd->pool, spin, (void *)(uintptr_t)MS, &to, NULL));
		} else {
			usleep(200);
		}
	}
	return NULL;
}

static void first_moves_favour_the_missing_class(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false);
	struct ripen_objective ob[2] = { { .class_id = 1, .quantile = 0.95, .target_s = 0.002 },
					 { .class_id = 2, .quantile = 0.95, .target_s = 60 } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;
	struct feeder fd = { .pool = pool };
	pthread_t th;
	uint64_t t0;
	double w1 = NAN, w2 = NAN, steps = 0;

	CHECK_OK(ripen_pool_set_class_name(pool, 1, "vip"));
	CHECK_OK(ripen_pool_set_class_name(pool, 2, "batch"));
	o.objectives = ob;
	o.n = 2;
	o.period_ns = 50 * MS;
	o.window_periods = 2;
	CHECK_OK(ripen_pool_adapt(pool, &o));
	CHECK_OK(pthread_create(&th, NULL, feed, &fd));
	/* bounded: 5 steps of 50 ms are due in 0.25 s; allow 60 s */
	for (t0 = ripen_now_ns(); ripen_now_ns() - t0 < 60000 * MS;) {
		steps = metric(pool, "ripen_adaptive_steps_total{");
		w1 = metric(pool, "ripen_adaptive_weight{pool=\"adapt\",class=\"vip\"}");
		w2 = metric(pool, "ripen_adaptive_weight{pool=\"adapt\",class=\"batch\"}");
		if (steps >= 8 && w2 < 1.0)
			break;
		usleep(10000);
	}
	printf("# after %.0f steps: weight vip %g, batch %g, tau %g s, vip measured %g s\n", steps, w1,
	       w2, metric(pool, "ripen_adaptive_tau_seconds{"),
	       metric(pool, "ripen_adaptive_measured_seconds{pool=\"adapt\",class=\"vip\"}"));
	CHECK(steps >= 8);
	CHECK(w1 == 1.0);
	CHECK(w2 < 1.0);
	/* the missing class is the most important one: less aging */
	CHECK(metric(pool, "ripen_adaptive_tau_seconds{") > 10.0);
	/* the weights act on the order: wait (still feeding: the controller
	 * holds without news) until class 2 weighs under 1/5, then probe
	 * behind a queue of class-2 tasks */
	for (t0 = ripen_now_ns(); ripen_now_ns() - t0 < 60000 * MS;) {
		if (metric(pool, "ripen_adaptive_weight{pool=\"adapt\",class=\"batch\"}") < 0.2)
			break;
		usleep(10000);
	}
	CHECK(metric(pool, "ripen_adaptive_weight{pool=\"adapt\",class=\"batch\"}") < 0.2);
	/* relaxed: a stop flag */
	atomic_store_explicit(&fd.stop, true, memory_order_relaxed);
	CHECK_OK(pthread_join(th, NULL));
	{
		struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
		struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
		struct ripen_task *t;
		uint64_t before;

		to.base = 1;
		to.class_id = 2;
		for (int i = 0; i < 30; i++)
			CHECK_OK(ripen_submit(pool, spin, (void *)(uintptr_t)MS, &to, NULL));
		usleep(5000); /* let them reach the heap */
		CHECK_OK(ripen_pool_class_stats(pool, 2, &st));
		CHECK_GE(st.queued, 20);
		to.class_id = 1;
		before = atomic_load_explicit(&starts, memory_order_relaxed);
		CHECK_OK(ripen_submit(pool, probe, NULL, &to, &t));
		CHECK_OK(ripen_task_wait(t, -1));
		ripen_task_release(t);
		printf("# the probe started after %llu class-2 starts\n",
		       (unsigned long long)(atomic_load_explicit(&probe_start, memory_order_relaxed) -
					    before));
		CHECK_LE(atomic_load_explicit(&probe_start, memory_order_relaxed) - before, 2);
	}
	CHECK_OK(ripen_pool_adapt_stop(pool));
	ripen_pool_destroy(pool);
}

/*
 * Objectives no pool can meet (1 ns): every step misses. With patience 3,
 * the controller declares the set infeasible (an event, firing), gives up
 * class 2, then sheds class 2, which allows it; class 1, which does not
 * allow it, is never shed. Stop takes the shed back.
 */
static atomic_uint events_on, events_off; /* seq_cst: test bookkeeping */
static atomic_uint last_class;

static void on_event(struct ripen_pool *pool, const struct ripen_watch_event *ev, void *arg)
{
	(void)pool;
	CHECK(arg == &events_on);
	CHECK_EQ(ev->kind, RIPEN_WATCH_ADAPT);
	CHECK_EQ(ev->id, 0);
	atomic_fetch_add(ev->firing ? &events_on : &events_off, 1);
	atomic_store(&last_class, ev->class_id);
}

static void impossible_objectives_shed_only_where_allowed(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false);
	struct ripen_objective ob[2] = { { .class_id = 1, .quantile = 0.5, .target_s = 1e-9 },
					 { .class_id = 2, .quantile = 0.5, .target_s = 1e-9,
					   .may_shed = true } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;
	struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
	uint64_t t0;
	int rc = 0;

	o.objectives = ob;
	o.n = 2;
	o.period_ns = 10 * MS;
	o.window_periods = 2;
	o.patience = 3;
	o.fn = on_event;
	o.arg = &events_on;
	CHECK_OK(ripen_pool_adapt(pool, &o));
	to.base = 1;
	/* keep both classes running (so each window has starts to measure)
	 * until class 2 is refused: bounded by 60 s */
	for (t0 = ripen_now_ns(); ripen_now_ns() - t0 < 60000 * MS;) {
		to.class_id = 1;
		CHECK_OK(ripen_submit(pool, spin, (void *)(uintptr_t)(MS / 10), &to, NULL));
		to.class_id = 2;
		rc = ripen_submit(pool, spin, (void *)(uintptr_t)(MS / 10), &to, NULL);
		if (rc == -EBUSY)
			break;
		CHECK_OK(rc);
		usleep(1000);
	}
	CHECK_EQ(rc, -EBUSY);
	CHECK(metric(pool, "ripen_adaptive_shed{pool=\"adapt\",class=\"2\"}") == 1);
	CHECK(metric(pool, "ripen_adaptive_shed{pool=\"adapt\",class=\"1\"}") == 0);
	CHECK(metric(pool, "ripen_adaptive_given_up{pool=\"adapt\",class=\"2\"}") == 1);
	CHECK(metric(pool, "ripen_adaptive_given_up{pool=\"adapt\",class=\"1\"}") == 0);
	CHECK(metric(pool, "ripen_adaptive_infeasible{") == 1);
	CHECK(metric(pool, "ripen_adaptive_events_total{") == 2); /* give up, shed */
	to.class_id = 1;
	CHECK_OK(ripen_submit(pool, spin, NULL, &to, NULL)); /* class 1 is never shed */
	CHECK_OK(ripen_pool_adapt_stop(pool));
	CHECK_GE(atomic_load(&events_on), 1);
	to.class_id = 2;
	CHECK_OK(ripen_submit(pool, spin, NULL, &to, NULL)); /* the stop undid the shed */
	CHECK(isnan(metric(pool, "ripen_adaptive_steps_total{"))); /* no controller: no series */
	CHECK_OK(ripen_pool_wait_idle(pool, -1));
	ripen_pool_destroy(pool);
}

/* A class whose tasks are queued but never start (the only worker is held
 * by a blocker) has no waits to measure; the controller counts it as
 * missing (+Inf), so it gains (it is the more important objective here),
 * rather than holding on "no news". */
static atomic_bool release_blocker; /* seq_cst: test bookkeeping */

static void blocker(void *arg)
{
	uint64_t t0 = ripen_now_ns();

	(void)arg;
	while (!atomic_load(&release_blocker) && ripen_now_ns() - t0 < 60000 * MS)
		usleep(100);
}

static void queued_but_not_started_counts_as_missing(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false);
	struct ripen_objective ob[2] = { { .class_id = 2, .quantile = 0.95, .target_s = 1 },
					 { .class_id = 1, .quantile = 0.95, .target_s = 1 } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;
	struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
	uint64_t t0;
	double steps = 0;

	atomic_store(&release_blocker, false);
	to.class_id = 9;
	CHECK_OK(ripen_submit(pool, blocker, NULL, &to, NULL));
	for (t0 = ripen_now_ns(); ripen_now_ns() - t0 < 60000 * MS; usleep(1000)) {
		struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;

		CHECK_OK(ripen_pool_class_stats(pool, 9, &st));
		if (st.started == 1)
			break;
	}
	to.class_id = 2;
	for (int i = 0; i < 5; i++)
		CHECK_OK(ripen_submit(pool, spin, NULL, &to, NULL));
	o.objectives = ob;
	o.n = 2;
	o.period_ns = 10 * MS;
	CHECK_OK(ripen_pool_adapt(pool, &o));
	for (t0 = ripen_now_ns(); ripen_now_ns() - t0 < 60000 * MS && steps < 5; usleep(5000))
		steps = metric(pool, "ripen_adaptive_steps_total{");
	CHECK(steps >= 5);
	CHECK(isinf(metric(pool, "ripen_adaptive_measured_seconds{pool=\"adapt\",class=\"2\"}")));
	CHECK(isnan(metric(pool, "ripen_adaptive_measured_seconds{pool=\"adapt\",class=\"1\"}")));
	CHECK(metric(pool, "ripen_adaptive_weight{pool=\"adapt\",class=\"2\"}") == 1.0);
	CHECK(metric(pool, "ripen_adaptive_weight{pool=\"adapt\",class=\"1\"}") < 1.0);
	atomic_store(&release_blocker, true);
	ripen_pool_destroy(pool);
}

/*
 * The aging form. One worker; class 2 (base 1) keeps 20 tasks of 1 ms
 * queued (each tops the queue up before it spins, so it never runs dry);
 * one class-1 task of base 0 is queued behind them. tau is held at 10 ms
 * (its clamp is one point). Under linear aging its score is w * 0 * (1 +
 * wait/tau) = 0, below every class-2 task's (positive) score for as long
 * as the stream lasts, by construction: it starts only once the stream
 * stops. Under additive aging, w * (0 + wait/tau) passes a fresh class-2
 * task's w2 * (1 + ...) within tens of ms (w2 <= 1 = w1): it must start
 * while the stream still runs (allowed 10 s).
 */
/* all seq_cst (test bookkeeping, no pairing to reason about) */
static struct ripen_pool *zpool;
static atomic_bool z_feeding;
static atomic_uint z_queued;
static atomic_bool z_started, z_started_while_feeding;

static void z_top_up(void);

static void z_stream(void *arg)
{
	atomic_fetch_sub(&z_queued, 1);
	z_top_up();
	spin(arg);
}

static void z_top_up(void)
{
	while (atomic_load(&z_feeding) && atomic_load(&z_queued) < 20) {
		struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;

		to.base = 1;
		to.class_id = 2;
		atomic_fetch_add(&z_queued, 1);
		CHECK_OK(ripen_submit(zpool, z_stream, (void *)(uintptr_t)MS, &to, NULL));
	}
}

static void z_low(void *arg)
{
	(void)arg;
	atomic_store(&z_started_while_feeding, atomic_load(&z_feeding));
	atomic_store(&z_started, true);
}

static void aging_form(unsigned aging)
{
	struct ripen_objective ob[2] = { { .class_id = 1, .quantile = 0.95, .target_s = 60 },
					 { .class_id = 2, .quantile = 0.95, .target_s = 60 } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;
	struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *t;
	uint64_t t0;

	zpool = make_pool(1, 0, false);
	atomic_store(&z_feeding, true);
	atomic_store(&z_queued, 0);
	atomic_store(&z_started, false);
	o.objectives = ob;
	o.n = 2;
	o.period_ns = 50 * MS;
	o.tau0_s = o.tau_min_s = o.tau_max_s = 0.01;
	o.aging = aging;
	CHECK_OK(ripen_pool_adapt(zpool, &o));
	z_top_up();
	usleep(5000);
	to.base = 0;
	to.class_id = 1;
	CHECK_OK(ripen_submit(zpool, z_low, NULL, &to, &t));
	/* additive: it starts on its own; linear: 300 ms in which it cannot */
	t0 = ripen_now_ns();
	while (!atomic_load(&z_started) &&
	       ripen_now_ns() - t0 < (aging == RIPEN_AGING_ADDITIVE ? 10000 : 300) * MS)
		usleep(1000);
	atomic_store(&z_feeding, false);
	CHECK_OK(ripen_task_wait(t, -1));
	ripen_task_release(t);
	printf("# aging %u: the base-0 task started %s the stream stopped (%.1f ms)\n", aging,
	       atomic_load(&z_started_while_feeding) ? "before" : "after",
	       (double)(ripen_now_ns() - t0) / 1e6);
	CHECK_EQ(atomic_load(&z_started_while_feeding), aging == RIPEN_AGING_ADDITIVE);
	CHECK_OK(ripen_pool_wait_idle(zpool, -1));
	ripen_pool_destroy(zpool);
}

static void linear_aging_never_ages_base_zero(void)
{
	aging_form(RIPEN_AGING_LINEAR);
}

static void additive_aging_ages_every_class(void)
{
	aging_form(RIPEN_AGING_ADDITIVE);
}

/*
 * Two ripen_pool_adapt calls at once, with tau0 1 s and 50 s: exactly one
 * wins (the other gets -EALREADY), and the policy in force is the winner's
 * (the trace header names it). Before the place was held across the
 * policy swap, the loser could install its policy after the winner's.
 */
struct racer {
	struct ripen_pool *pool;
	pthread_barrier_t *bar;
	double tau0;
	int rc;
};

static void *race_adapt(void *arg)
{
	struct racer *r = arg;
	struct ripen_objective ob[1] = { { .class_id = 1, .quantile = 0.95, .target_s = 1 } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;

	o.objectives = ob;
	o.n = 1;
	o.tau0_s = r->tau0;
	pthread_barrier_wait(r->bar);
	r->rc = ripen_pool_adapt(r->pool, &o);
	return NULL;
}

static void concurrent_starts_leave_the_winners_policy(void)
{
	int rounds = (int)(40 * test_scale());

	for (int k = 0; k < (rounds > 4 ? rounds : 4); k++) {
		struct ripen_pool *pool = make_pool(1, 0, false);
		pthread_barrier_t bar;
		struct racer r[2] = { { pool, &bar, 1.0, 1 }, { pool, &bar, 50.0, 1 } };
		pthread_t th[2];
		char path[] = "/tmp/ripen-adapt-race-XXXXXX", want[64];
		int fd = mkstemp(path);
		struct ripen_trace_header h;
		FILE *f;
		const struct racer *win;

		CHECK(fd >= 0);
		close(fd);
		CHECK_OK(pthread_barrier_init(&bar, NULL, 2));
		for (int i = 0; i < 2; i++)
			CHECK_OK(pthread_create(&th[i], NULL, race_adapt, &r[i]));
		for (int i = 0; i < 2; i++)
			CHECK_OK(pthread_join(th[i], NULL));
		pthread_barrier_destroy(&bar);
		CHECK((r[0].rc == 0) != (r[1].rc == 0));
		CHECK(r[0].rc == -EALREADY || r[1].rc == -EALREADY);
		win = r[0].rc == 0 ? &r[0] : &r[1];
		CHECK_OK(ripen_pool_trace_start(pool, path));
		CHECK_OK(ripen_pool_trace_stop(pool));
		f = fopen(path, "rb");
		CHECK(f != NULL);
		CHECK_EQ(fread(&h, sizeof(h), 1, f), 1);
		fclose(f);
		unlink(path);
		snprintf(want, sizeof(want), ":linear:%g", win->tau0);
		h.policy[sizeof(h.policy) - 1] = 0;
		if (strstr(h.policy, want) == NULL)
			fprintf(stderr, "round %d: policy %s, winner's tau0 %g\n", k, h.policy, win->tau0);
		CHECK(strstr(h.policy, want) != NULL);
		ripen_pool_destroy(pool);
	}
}

/* A paused pool starts nothing, so every class would look starved: the
 * controller takes no step until the pool runs. */
static void a_paused_pool_holds_the_controller(void)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_objective ob[1] = { { .class_id = 2, .quantile = 0.95, .target_s = 1 } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;
	struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
	struct ripen_pool *pool;
	uint64_t t0;
	double steps = 0;

	po.workers = 1;
	po.start_paused = true;
	po.name = "adapt";
	CHECK_OK(ripen_pool_create(&po, &pool));
	to.class_id = 2;
	CHECK_OK(ripen_submit(pool, spin, NULL, &to, NULL));
	o.objectives = ob;
	o.n = 1;
	o.period_ns = 1 * MS;
	CHECK_OK(ripen_pool_adapt(pool, &o));
	usleep(100000); /* 100 periods */
	CHECK(metric(pool, "ripen_adaptive_steps_total{") == 0);
	CHECK_OK(ripen_pool_resume(pool));
	for (t0 = ripen_now_ns(); ripen_now_ns() - t0 < 60000 * MS && steps < 3; usleep(1000))
		steps = metric(pool, "ripen_adaptive_steps_total{");
	CHECK(steps >= 3);
	ripen_pool_destroy(pool);
}

/* Every control step that changes something is in the trace: one
 * RIPEN_TRACE_ADAPT record per objective with the weight and tau after it
 * and the state flags; the task records are still there. */
static void steps_are_trace_records(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false);
	struct ripen_objective ob[2] = { { .class_id = 1, .quantile = 0.5, .target_s = 1e-9 },
					 { .class_id = 2, .quantile = 0.5, .target_s = 1e-9 } };
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;
	struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
	char path[] = "/tmp/ripen-adapt-trace-XXXXXX";
	int fd = mkstemp(path);
	struct ripen_trace_header h;
	struct ripen_trace_record r;
	unsigned adapt = 0, runs = 0, infeasible = 0, given_up = 0;
	uint64_t t0, last_ns = 0;
	FILE *f;

	CHECK(fd >= 0);
	close(fd);
	CHECK_OK(ripen_pool_trace_start(pool, path));
	o.objectives = ob;
	o.n = 2;
	o.period_ns = 10 * MS;
	o.window_periods = 2;
	o.patience = 3;
	CHECK_OK(ripen_pool_adapt(pool, &o));
	to.base = 1;
	/* impossible targets: every step misses; run until class 2 is given
	 * up (bounded: 60 s) */
	for (t0 = ripen_now_ns(); ripen_now_ns() - t0 < 60000 * MS;) {
		to.class_id = 1 + (unsigned)(ripen_now_ns() / 1000 % 2);
		CHECK_OK(ripen_submit(pool, spin, (void *)(uintptr_t)(MS / 10), &to, NULL));
		if (metric(pool, "ripen_adaptive_given_up{pool=\"adapt\",class=\"2\"}") == 1)
			break;
		usleep(1000);
	}
	CHECK(metric(pool, "ripen_adaptive_given_up{pool=\"adapt\",class=\"2\"}") == 1);
	CHECK_OK(ripen_pool_adapt_stop(pool));
	CHECK_OK(ripen_pool_wait_idle(pool, -1));
	CHECK_OK(ripen_pool_trace_stop(pool));
	f = fopen(path, "rb");
	CHECK(f != NULL);
	CHECK_EQ(fread(&h, sizeof(h), 1, f), 1);
	while (fread(&r, sizeof(r), 1, f) == 1 && memcmp(&r, RIPEN_TRACE_END_MAGIC, 8) != 0) {
		if (r.kind == RIPEN_TRACE_RUN) {
			runs++;
			continue;
		}
		if (r.kind != RIPEN_TRACE_ADAPT)
			continue;
		adapt++;
		CHECK(r.class_id == 1 || r.class_id == 2);
		CHECK_EQ(r.worker, 0xffff);
		CHECK(r.ready_ns >= h.start_ns && r.ready_ns >= last_ns); /* in step order */
		last_ns = r.ready_ns;
		CHECK(r.base > 0 && r.base <= 1.0);
		CHECK(r.score >= 0.01 && r.score <= 100.0);
		CHECK_EQ(r.start_ns, 0);
		infeasible += (r.stolen & RIPEN_TRACE_ADAPT_INFEASIBLE) != 0;
		given_up += r.class_id == 2 && (r.stolen & RIPEN_TRACE_ADAPT_GIVEN_UP) != 0;
		CHECK(r.class_id != 1 || (r.stolen & RIPEN_TRACE_ADAPT_GIVEN_UP) == 0);
	}
	fclose(f);
	unlink(path);
	printf("# %u controller records, %u runs\n", adapt, runs);
	CHECK_GT(runs, 0);
	CHECK_GE(adapt, 2);
	CHECK_EQ(adapt % 2, 0); /* one per objective per step */
	CHECK_GE(infeasible, 1);
	CHECK_GE(given_up, 1);
	ripen_pool_destroy(pool);
}

TEST_MAIN(T(bad_input_is_refused), T(first_moves_favour_the_missing_class),
	  T(linear_aging_never_ages_base_zero), T(additive_aging_ages_every_class),
	  T(concurrent_starts_leave_the_winners_policy),
	  T(impossible_objectives_shed_only_where_allowed),
	  T(queued_but_not_started_counts_as_missing), T(a_paused_pool_holds_the_controller),
	  T(steps_are_trace_records))
