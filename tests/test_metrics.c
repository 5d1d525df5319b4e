/*
 * Per-class recording, exposition and watchers (issue 11).
 *
 * The histogram math is checked on values written straight into a block
 * (exact, deterministic); the pool-level cases check the counts exactly
 * and the quantiles of known synthetic waits against the bucket error;
 * the watcher cases feed a class the pool never runs, from the test
 * thread (which is then that class's one writer), so what the watcher
 * sees is known. Every wait for the rebalancer is bounded in seconds
 * where it needs milliseconds; no case asserts a latency. Times to fire
 * and to clear are printed as figures.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "metrics-internal.h"
#include "policy-internal.h"
#include "ripen.h"

#define MS 1000000ull
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
	o.name = "t";
	CHECK_OK(ripen_pool_create(&o, &p));
	return p;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The exact q-quantile of sorted v[0..n): the value of rank ceil(q n). */
static uint64_t exact_quantile(const uint64_t *v, size_t n, double q)
{
	size_t r = (size_t)ceil(q * (double)n);

	return v[(r == 0 ? 1 : r) - 1];
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / SEC), (long)(ns % SEC) };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ buckets */

static void bucket_bounds_and_error(void)
{
	uint64_t prev_hi = 0;

	for (unsigned i = 0; i < RIPEN_H_BUCKETS; i++) {
		uint64_t lo, hi;

		ripen__hbucket_bounds(i, &lo, &hi);
		CHECK_EQ(lo, prev_hi); /* contiguous, from 0 */
		CHECK(lo < hi);
		CHECK_EQ(ripen__hbucket(lo), i);
		if (hi != UINT64_MAX)
			CHECK_EQ(ripen__hbucket(hi - 1), i);
		if (lo >= 512 && hi != UINT64_MAX)
			CHECK((double)(hi - lo) / (double)lo <= 0.125 + 1e-12);
		prev_hi = hi;
	}
	/* the range: 12.5% holds up to at least an hour */
	{
		uint64_t lo, hi, hour = 3600ull * SEC;

		ripen__hbucket_bounds(ripen__hbucket(hour), &lo, &hi);
		CHECK(hi != UINT64_MAX);
		CHECK((double)(hi - lo) / (double)lo <= 0.125);
	}
	CHECK_EQ(ripen__hbucket(UINT64_MAX), RIPEN_H_BUCKETS - 1);
	CHECK_EQ(ripen__hbucket(0), 0);
}

/* Known values into a histogram; quantiles within half a bucket. */
static void quantiles_of_known_values(void)
{
	enum { N = 20000 };
	static struct ripen__hist h;
	static uint64_t v[N], b[RIPEN_H_BUCKETS];
	uint64_t seed = 12345, n = 0;
	const double qs[] = { 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0 };

	memset(&h, 0, sizeof(h));
	for (int i = 0; i < N; i++) {
		/* log-uniform over 1 us .. 10 s */
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = (uint64_t)(1000.0 * pow(1e7, (double)(seed >> 11) / 9007199254740992.0));
		ripen__hist_add(&h, v[i]);
	}
	qsort(v, N, sizeof(v[0]), cmp_u64);
	for (unsigned k = 0; k < RIPEN_H_BUCKETS; k++) {
		b[k] = atomic_load(&h.b[k]);
		n += b[k];
	}
	CHECK_EQ(n, N);
	CHECK_EQ(atomic_load(&h.max_ns), v[N - 1]);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		uint64_t want = exact_quantile(v, N, qs[i]);
		uint64_t got = ripen__hist_quantile(b, n, atomic_load(&h.max_ns), qs[i]);
		double err = fabs((double)got - (double)want) / (double)want;

		printf("# q=%.3f exact %llu got %llu (%.2f%%)\n", qs[i], (unsigned long long)want,
		       (unsigned long long)got, 100 * err);
		CHECK(err <= 0.0625 + 1e-9); /* the midpoint of a 12.5% bucket */
	}
	/* every thousandth quantile: the worst error is the half-bucket bound */
	{
		double worst = 0;

		for (int k = 1; k <= 1000; k++) {
			uint64_t want = exact_quantile(v, N, k / 1000.0);
			uint64_t got = ripen__hist_quantile(b, n, atomic_load(&h.max_ns), k / 1000.0);
			double err = fabs((double)got - (double)want) / (double)want;

			worst = err > worst ? err : worst;
		}
		printf("# worst error over 1000 quantiles: %.2f%%\n", 100 * worst);
		CHECK(worst <= 0.0625 + 1e-9);
	}
}

/* ------------------------------------------------------------ pool counts */

struct prod {
	struct ripen_pool *pool;
	int id, n;
	atomic_ullong *ran;		/* per class id index below */
};

static const uint32_t classes[] = { 0, 1, 5, 63, 64, 1000 };
#define NCLS (sizeof(classes) / sizeof(classes[0]))
static atomic_ullong ran_by_class[NCLS];

static void count_run(void *arg)
{
	atomic_fetch_add(&ran_by_class[(uintptr_t)arg], 1);
}

static void *producer(void *arg)
{
	struct prod *p = arg;

	for (int i = 0; i < p->n; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		unsigned k = (unsigned)(i + p->id) % NCLS;

		o.class_id = classes[k];
		CHECK_OK(ripen_submit(p->pool, count_run, (void *)(uintptr_t)k, &o, NULL));
	}
	return NULL;
}

/* Children submitted from tasks count on the worker's own block. */
static void spawn_children(void *arg)
{
	struct ripen_pool *pool = arg;

	for (unsigned k = 0; k < NCLS; k++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.class_id = classes[k];
		CHECK_OK(ripen_submit(pool, count_run, (void *)(uintptr_t)k, &o, NULL));
	}
}

static void counts_equal_starts_per_class(void)
{
	enum { P = 4, N = 20000, SPAWNERS = 200 };
	struct ripen_pool *pool = make_pool(2, 0, false, NULL);
	pthread_t th[P];
	struct prod pr[P];
	uint64_t expect[RIPEN_MSLOTS] = { 0 }, other = 0;

	for (unsigned k = 0; k < NCLS; k++)
		atomic_store(&ran_by_class[k], 0);
	for (int i = 0; i < P; i++) {
		pr[i] = (struct prod){ pool, i, N, NULL };
		CHECK_EQ(pthread_create(&th[i], NULL, producer, &pr[i]), 0);
	}
	for (int i = 0; i < SPAWNERS; i++)
		CHECK_OK(ripen_submit(pool, spawn_children, pool, NULL, NULL));
	for (int i = 0; i < P; i++)
		pthread_join(th[i], NULL);
	CHECK_OK(ripen_pool_wait_idle(pool, 60 * (int64_t)SEC));
	for (unsigned k = 0; k < NCLS; k++)
		expect[ripen__mslot(classes[k])] += atomic_load(&ran_by_class[k]);
	expect[0] += SPAWNERS; /* the spawners themselves are class 0 */
	for (unsigned s = 0; s < RIPEN_MSLOTS; s++) {
		struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
		struct ripen__csnap cs;
		static uint64_t wb[RIPEN_H_BUCKETS], rb[RIPEN_H_BUCKETS];

		CHECK_OK(ripen_pool_class_stats(pool, s, &st));
		CHECK_EQ(st.started, expect[s]);
		CHECK_EQ(st.submitted, expect[s]);
		CHECK_EQ(st.queued, 0);
		CHECK_EQ(st.cancelled, 0);
		cs.wait_b = wb;
		cs.run_b = rb;
		ripen__m_snapshot(pool, s, &cs);
		CHECK_EQ(cs.wait_n, expect[s]); /* histogram counts, exactly */
		CHECK_EQ(cs.run_n, expect[s]);
	}
	/* 64 and 1000 share "other"; a large id is never an error */
	other = atomic_load(&ran_by_class[4]) + atomic_load(&ran_by_class[5]);
	{
		struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;

		CHECK_OK(ripen_pool_class_stats(pool, 123456, &st));
		CHECK_EQ(st.started, other);
	}
	{
		struct ripen_pool_stats ps = RIPEN_POOL_STATS_INIT;
		uint64_t sum = 0;

		CHECK_OK(ripen_pool_stats(pool, &ps));
		for (unsigned s = 0; s < RIPEN_MSLOTS; s++)
			sum += expect[s];
		CHECK_EQ(ps.run, sum);
	}
	ripen_pool_destroy(pool);
}

/* Cancels, rejects and delayed tasks land in their class's counts. */
static void noop(void *arg)
{
	(void)arg;
}

static void cancels_rejects_delayed(void)
{
	struct ripen_pool *pool = make_pool(1, 0, true, NULL);
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *t[10], *td;
	struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;

	o.class_id = 7;
	for (int i = 0; i < 10; i++)
		CHECK_OK(ripen_submit(pool, noop, NULL, &o, &t[i]));
	for (int i = 0; i < 4; i++)
		CHECK_OK(ripen_task_cancel(t[i]));
	o.not_before_ns = ripen_now_ns() + 3600 * SEC; /* cancelled in the timer heap */
	CHECK_OK(ripen_submit(pool, noop, NULL, &o, &td));
	CHECK_OK(ripen_pool_class_stats(pool, 7, &st));
	CHECK_EQ(st.submitted, 10); /* the delayed one counts at its release */
	CHECK_EQ(st.cancelled, 4);
	CHECK_EQ(st.queued, 6);
	CHECK_OK(ripen_task_cancel(td));
	CHECK_OK(ripen_pool_class_stats(pool, 7, &st));
	CHECK_EQ(st.submitted, 11);
	CHECK_EQ(st.cancelled, 5);
	CHECK_EQ(st.queued, 6);
	CHECK_OK(ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN));
	o.not_before_ns = 0;
	CHECK_EQ(ripen_submit(pool, noop, NULL, &o, NULL), -ESHUTDOWN);
	o.not_before_ns = ripen_now_ns() + SEC;
	CHECK_EQ(ripen_submit(pool, noop, NULL, &o, NULL), -ESHUTDOWN);
	CHECK_OK(ripen_pool_class_stats(pool, 7, &st));
	CHECK_EQ(st.rejected, 2);
	CHECK_EQ(st.started, 6);
	CHECK_EQ(st.queued, 0);
	for (int i = 0; i < 10; i++)
		ripen_task_release(t[i]);
	ripen_task_release(td);
	ripen_pool_destroy(pool);
}

/* ------------------------------------------------------------ known waits */

static uint64_t ran_at[400];
static atomic_int ran_n;

static void stamp(void *arg)
{
	ran_at[(uintptr_t)arg] = ripen_now_ns();
	atomic_fetch_add(&ran_n, 1);
}

/*
 * A paused one-worker pool, prefilled with tasks submitted over ~200 ms,
 * resumed: each task's wait is (its start - its submit), which the test
 * knows to within the few microseconds around each clock read; the
 * pool's quantiles must match the exact ones within the bucket error
 * (12.5%), plus 1 ms for a preemption between the pool's clock read and
 * the task's own.
 */
static void quantiles_of_known_waits(void)
{
	enum { N = 200 };
	struct ripen_pool *pool = make_pool(1, 0, true, ripen_policy_fifo());
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
	static uint64_t sub_at[N], w[N];
	const double qs[] = { 0.5, 0.95, 0.99 };
	double got[3];
	double sum = 0;

	atomic_store(&ran_n, 0);
	o.class_id = 3;
	for (int i = 0; i < N; i++) {
		uint64_t a = ripen_now_ns(), b;

		CHECK_OK(ripen_submit(pool, stamp, (void *)(uintptr_t)i, &o, NULL));
		b = ripen_now_ns();
		sub_at[i] = a + (b - a) / 2;
		sleep_ns(1 * MS);
	}
	CHECK_OK(ripen_pool_resume(pool));
	CHECK_OK(ripen_pool_wait_idle(pool, 30 * (int64_t)SEC));
	CHECK_EQ(atomic_load(&ran_n), N);
	for (int i = 0; i < N; i++) {
		w[i] = ran_at[i] - sub_at[i];
		sum += (double)w[i];
	}
	qsort(w, N, sizeof(w[0]), cmp_u64);
	CHECK_OK(ripen_pool_class_stats(pool, 3, &st));
	got[0] = st.wait_p50_s;
	got[1] = st.wait_p95_s;
	got[2] = st.wait_p99_s;
	for (int k = 0; k < 3; k++) {
		double want = (double)exact_quantile(w, N, qs[k]) / 1e9;

		printf("# wait q=%.2f exact %.6f s, pool %.6f s\n", qs[k], want, got[k]);
		CHECK(fabs(got[k] - want) <= 0.125 * want + 0.001);
	}
	printf("# wait max exact %.6f pool %.6f; mean exact %.6f pool %.6f\n",
	       (double)w[N - 1] / 1e9, st.wait_max_s, sum / N / 1e9, st.wait_mean_s);
	CHECK(fabs(st.wait_max_s - (double)w[N - 1] / 1e9) <= 0.001);
	CHECK(fabs(st.wait_mean_s - sum / N / 1e9) <= 0.001);
	CHECK_EQ(st.started, N);
	CHECK(st.run_max_s >= st.run_p99_s && st.run_p99_s >= st.run_p50_s);
	ripen_pool_destroy(pool);
}

/* ------------------------------------------------------ the boundary stamp */

/*
 * A worker that goes straight from one task to the next starts the next
 * at the last one's end stamp (worker.c, run_fn). Two ways that would
 * charge a long gap to a task's run time, each checked against a gap of
 * 100 ms and a trivial task whose recorded run must stay under 50 ms
 * (it is microseconds; the margin is for preemption beside CPU hogs).
 */
static struct ripen_pool *bs_pool;
static struct ripen_task *bs_child;
static atomic_int bs_ran;

static void bs_count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&bs_ran, 1);
}

/* 100 ms after its start, wait for a child it queued: the wait runs the
 * child inline, and the child's start must be read then, not be the end
 * of the task the worker ran before this one. */
static void bs_parent(void *arg)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	(void)arg;
	o.class_id = 2;
	CHECK_OK(ripen_submit(bs_pool, bs_count, NULL, &o, &bs_child));
	sleep_ns(100 * MS);
	CHECK_OK(ripen_task_wait(bs_child, -1)); /* no timeout: run inline */
	ripen_task_release(bs_child);
}

static void boundary_skips_inline_runs(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
	struct ripen_pool_stats ps = RIPEN_POOL_STATS_INIT;

	/* paused, FIFO: the no-op runs first and leaves its end stamp; the
	 * parent follows through a quiet step and starts at that stamp */
	bs_pool = make_pool(1, RIPEN_REBALANCE_OFF, true, ripen_policy_fifo());
	atomic_store(&bs_ran, 0);
	CHECK_OK(ripen_submit(bs_pool, noop, NULL, NULL, NULL));
	o.class_id = 1;
	CHECK_OK(ripen_submit(bs_pool, bs_parent, NULL, &o, NULL));
	CHECK_OK(ripen_pool_resume(bs_pool));
	CHECK_OK(ripen_pool_wait_idle(bs_pool, (int64_t)(30 * SEC)));
	CHECK_OK(ripen_pool_stats(bs_pool, &ps));
	CHECK_EQ(ps.inline_runs, 1); /* the case this checks happened */
	CHECK_OK(ripen_pool_class_stats(bs_pool, 2, &st));
	CHECK_EQ(st.started, 1);
	printf("# inline child's recorded run: %.6f s\n", st.run_max_s);
	CHECK(st.run_max_s < 0.050);
	CHECK_OK(ripen_pool_class_stats(bs_pool, 1, &st));
	CHECK(st.run_max_s >= 0.099); /* the parent's own run holds the sleep */
	ripen_pool_destroy(bs_pool);
}

/* On one worker: queue 8 children and hold the worker until they have
 * run, which only the other worker can do: woken by the children's
 * rise, it steals them in its search and pops them in quiet steps. */
static void bs_holder(void *arg)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	uint64_t t0 = ripen_now_ns();
	int base = atomic_load(&bs_ran);

	(void)arg;
	o.class_id = 2;
	for (int i = 0; i < 8; i++)
		CHECK_OK(ripen_submit(bs_pool, bs_count, NULL, &o, NULL));
	while (atomic_load(&bs_ran) < base + 8 && ripen_now_ns() - t0 < 10 * SEC)
		sleep_ns(1 * MS);
}

/* A worker that searched (and parked) before it stole must read the
 * clock for the stolen task: its last end stamp is 100 ms old. Each
 * round's first stolen child is popped in a quiet step 3 times in 4
 * (a peer look makes the step non-quiet), so 8 rounds. */
static void boundary_ends_at_a_search(void)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;

	bs_pool = make_pool(2, RIPEN_REBALANCE_OFF, false, ripen_policy_fifo());
	atomic_store(&bs_ran, 0);
	for (int r = 0; r < 8; r++) {
		o.inbox = 1 + (unsigned)(r % 2);
		CHECK_OK(ripen_submit(bs_pool, noop, NULL, &o, NULL));
		CHECK_OK(ripen_pool_wait_idle(bs_pool, (int64_t)(10 * SEC)));
		sleep_ns(100 * MS); /* both workers search and park */
		o.inbox = 2 - (unsigned)(r % 2);
		CHECK_OK(ripen_submit(bs_pool, bs_holder, NULL, &o, NULL));
		CHECK_OK(ripen_pool_wait_idle(bs_pool, (int64_t)(30 * SEC)));
		CHECK_EQ(atomic_load(&bs_ran), 8 * (r + 1));
	}
	CHECK_OK(ripen_pool_class_stats(bs_pool, 2, &st));
	CHECK_EQ(st.started, 64);
	printf("# stolen children's longest recorded run: %.6f s\n", st.run_max_s);
	CHECK(st.run_max_s < 0.050);
	ripen_pool_destroy(bs_pool);
}

/* A periodic task's wait runs from each release, not from its submit. */
static atomic_int periodic_runs;

static void periodic_body(void *arg)
{
	(void)arg;
	atomic_fetch_add(&periodic_runs, 1);
}

static void periodic_wait_from_release(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false, NULL);
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
	struct ripen_task *t;
	uint64_t t0 = ripen_now_ns();

	atomic_store(&periodic_runs, 0);
	o.class_id = 2;
	o.interval_ns = 10 * MS;
	CHECK_OK(ripen_submit(pool, periodic_body, NULL, &o, &t));
	while (atomic_load(&periodic_runs) < 30 && ripen_now_ns() - t0 < 20 * SEC)
		sleep_ns(MS);
	(void)ripen_task_cancel(t); /* -EBUSY while it runs: it then ends */
	(void)ripen_task_wait(t, 5 * (int64_t)SEC);
	ripen_task_release(t);
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	CHECK_OK(ripen_pool_class_stats(pool, 2, &st));
	CHECK_GE(st.started, 30);
	CHECK_EQ(st.submitted, st.started + st.cancelled);
	/* measured from submit, the k-th run would wait (k - 1) * 10 ms: a
	 * median of 140 ms or more */
	printf("# periodic: %llu starts, wait max %.6f s, p50 %.6f s\n",
	       (unsigned long long)st.started, st.wait_max_s, st.wait_p50_s);
	CHECK(st.wait_p50_s < 0.05);
	ripen_pool_destroy(pool);
}

/* ------------------------------------------------------------ exposition */

static char *scrape(struct ripen_pool *pool)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	CHECK_OK(ripen_metrics_write(pool, f));
	fclose(f);
	return buf;
}

/* The value of the series line that starts with `prefix`, or -1. */
static double series_value(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while ((p = strstr(p, prefix)) != NULL) {
		if (p == text || p[-1] == '\n')
			return strtod(p + n, NULL);
		p += n;
	}
	return -1;
}

static void names_and_escaping(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false, NULL);
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	char *text;

	CHECK_EQ(ripen_pool_set_class_name(pool, 64, "x"), -EINVAL);
	CHECK_EQ(ripen_pool_set_class_name(pool, 1, ""), -EINVAL);
	{
		char longname[200];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		CHECK_EQ(ripen_pool_set_class_name(pool, 1, longname), -EINVAL);
	}
	CHECK_EQ(ripen_pool_set_class_name(pool, 1, "other"), -EEXIST);
	CHECK_EQ(ripen_pool_set_class_name(pool, 1, "2"), -EEXIST); /* class 2's label */
	CHECK_OK(ripen_pool_set_class_name(pool, 1, "v\"i\\p\nx"));
	CHECK_OK(ripen_pool_set_class_name(pool, 2, "batch"));
	CHECK_EQ(ripen_pool_set_class_name(pool, 3, "batch"), -EEXIST);
	CHECK_OK(ripen_pool_set_class_name(pool, 2, "2")); /* its own number: fine */
	CHECK_OK(ripen_pool_set_class_name(pool, 2, NULL));
	CHECK_OK(ripen_pool_set_class_name(pool, 2, "batch"));
	o.class_id = 1;
	CHECK_OK(ripen_submit(pool, noop, NULL, &o, NULL));
	o.class_id = 9;
	CHECK_OK(ripen_submit(pool, noop, NULL, &o, NULL));
	o.class_id = 500;
	CHECK_OK(ripen_submit(pool, noop, NULL, &o, NULL));
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	text = scrape(pool);
	CHECK(strstr(text, "class=\"v\\\"i\\\\p\\nx\"") != NULL);
	CHECK_EQ(series_value(text, "ripen_tasks_started_total{pool=\"t\",class=\"v\\\"i\\\\p\\nx\"} "), 1);
	CHECK_EQ(series_value(text, "ripen_tasks_started_total{pool=\"t\",class=\"9\"} "), 1);
	CHECK_EQ(series_value(text, "ripen_tasks_started_total{pool=\"t\",class=\"other\"} "), 1);
	CHECK_EQ(series_value(text, "ripen_tasks_started_total{pool=\"t\",class=\"batch\"} "), 0);
	CHECK(strstr(text, "class=\"4\"") == NULL); /* unused and unnamed: not shown */
	CHECK_EQ(series_value(text, "ripen_tasks_started_total{pool=\"t\",class=\"0\"} "), 0);
	free(text);
	ripen_pool_destroy(pool);
}

/* Every family has HELP and TYPE; histograms are cumulative and end at
 * their count; le=E counts exactly the samples below E's fine bucket. */
static void exposition_is_consistent(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false, NULL);
	struct ripen__mclass *mc = &pool->workers[0].m->cls[11];
	const double user[] = { 0.003, 0.0007, 0.003 };
	static uint64_t v[5000];
	uint64_t seed = 99;
	char *text, *line, *save;
	double last = -1;
	int buckets = 0, nlines = 0;

	CHECK_EQ(ripen_metrics_add_edges(pool, (double[]){ NAN }, 1), -EINVAL);
	CHECK_EQ(ripen_metrics_add_edges(pool, (double[]){ -1 }, 1), -EINVAL);
	CHECK_OK(ripen_metrics_add_edges(pool, user, 3));
	/* class 11 is never run by the pool: the test thread is its writer */
	for (int i = 0; i < 5000; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = (uint64_t)(10000.0 * pow(1e5, (double)(seed >> 11) / 9007199254740992.0));
		ripen__hist_add(&mc->wait, v[i]);
	}
	atomic_store(&mc->started, 5000);
	atomic_store(&pool->workers[0].m->ext_submitted[11], 5000);
	text = scrape(pool);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const char *le;

		nlines++;
		if (strncmp(line, "ripen_task_wait_seconds_bucket{pool=\"t\",class=\"11\",le=\"", 55) == 0) {
			double edge, cnt;
			uint64_t lo, hi, want = 0, edge_ns;

			le = line + 55;
			cnt = strtod(strchr(le, ' ') + 1, NULL);
			CHECK(cnt >= last); /* cumulative */
			last = cnt;
			buckets++;
			if (strncmp(le, "+Inf", 4) == 0) {
				CHECK_EQ(cnt, 5000);
				continue;
			}
			edge = strtod(le, NULL);
			edge_ns = (uint64_t)(edge * 1e9 + 0.5);
			ripen__hbucket_bounds(ripen__hbucket(edge_ns), &lo, &hi);
			if (hi == edge_ns) /* on a boundary: the bucket below is whole */
				lo = hi;
			for (int i = 0; i < 5000; i++)
				want += v[i] < lo;
			CHECK_EQ(cnt, want);
			CHECK(lo >= (uint64_t)(edge_ns / 1.125));
		}
	}
	free(text);
	CHECK_EQ(buckets, 17 + 2 + 1); /* default, two new user edges, +Inf */
	CHECK_GT(nlines, 100);
	text = scrape(pool);
	CHECK(strstr(text, "le=\"0.0007\"") != NULL && strstr(text, "le=\"0.003\"") != NULL);
	{
		/* every "# TYPE x" has its "# HELP x" just before */
		const char *p = text;

		while ((p = strstr(p, "# TYPE ")) != NULL) {
			const char *name = p + 7, *sp = strchr(name, ' ');
			char help[128];

			snprintf(help, sizeof(help), "# HELP %.*s ", (int)(sp - name), name);
			CHECK(strstr(text, help) != NULL);
			p = sp;
		}
	}
	CHECK_EQ(series_value(text, "ripen_task_wait_seconds_count{pool=\"t\",class=\"11\"} "), 5000);
	free(text);
	/* a stream that fails: -EIO, and the pool is fine after */
	{
		FILE *f = fopen("/dev/full", "w");

		CHECK(f != NULL);
		CHECK_EQ(ripen_metrics_write(pool, f), -EIO);
		fclose(f);
	}
	CHECK_EQ(ripen_metrics_write(NULL, stdout), -EINVAL);
	CHECK_OK(ripen_submit(pool, noop, NULL, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	ripen_pool_destroy(pool);
}

/* ------------------------------------------------------------ watchers */

struct events {
	pthread_mutex_t mu;
	int fired, cleared;
	uint64_t fire_ns, clear_ns;
	double value;
	int set_policy_rc, wait_idle_rc, shutdown_rc;
	struct ripen_pool *pool;
	bool try_calls;
};

static void on_event(struct ripen_pool *pool, const struct ripen_watch_event *ev, void *arg)
{
	struct events *e = arg;

	pthread_mutex_lock(&e->mu);
	if (ev->firing) {
		e->fired++;
		e->fire_ns = ev->now_ns;
		e->value = ev->value;
	} else {
		e->cleared++;
		e->clear_ns = ev->now_ns;
	}
	if (e->try_calls && ev->firing) {
		e->set_policy_rc = ripen_pool_set_policy(pool, ripen_policy_static());
		e->wait_idle_rc = ripen_pool_wait_idle(pool, -1);
		e->shutdown_rc = ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN);
	}
	pthread_mutex_unlock(&e->mu);
}

static int ev_count(struct events *e, bool fire)
{
	int n;

	pthread_mutex_lock(&e->mu);
	n = fire ? e->fired : e->cleared;
	pthread_mutex_unlock(&e->mu);
	return n;
}

/* Wait up to `limit` for the fire (or clear) count to reach n. */
static bool await_events(struct events *e, bool fire, int n, uint64_t limit)
{
	uint64_t t0 = ripen_now_ns();

	while (ev_count(e, fire) < n) {
		if (ripen_now_ns() - t0 > limit)
			return false;
		sleep_ns(MS);
	}
	return true;
}

static void watch_bad_input(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false, NULL);
	struct ripen_pool *nore = make_pool(1, RIPEN_REBALANCE_OFF, false, NULL);
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT, b;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER };
	uint32_t id;

	o.fn = on_event;
	o.arg = &e;
	o.threshold = 1;
	o.window_ns = 100 * MS;
	b = o;
	b.kind = (enum ripen_watch_kind)-1;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b = o;
	b.kind = 99;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b = o;
	b.threshold = NAN;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b = o;
	b.window_ns = 0;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b = o;
	b.fn = NULL;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b.action = RIPEN_WATCH_SHED; /* an action without a callback is fine */
	CHECK_OK(ripen_pool_watch(pool, &b, &id));
	CHECK_OK(ripen_pool_unwatch(pool, id));
	b = o;
	b.kind = RIPEN_WATCH_WAIT_QUANTILE;
	b.quantile = 1.0;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b = o;
	b.action = RIPEN_WATCH_DOWNGRADE;
	b.factor = 0;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b = o;
	b.action = 7;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	b = o;
	b.hysteresis = 1.0;
	CHECK_EQ(ripen_pool_watch(pool, &b, &id), -EINVAL);
	CHECK_EQ(ripen_pool_watch(NULL, &o, &id), -EINVAL);
	CHECK_EQ(ripen_pool_watch(pool, NULL, &id), -EINVAL);
	CHECK_EQ(ripen_pool_watch(pool, &o, NULL), -EINVAL);
	CHECK_EQ(ripen_pool_watch(nore, &o, &id), -ENOTSUP);
	CHECK_EQ(ripen_pool_unwatch(pool, 12345), -ENOENT);
	for (unsigned i = 0; i < RIPEN_MAX_WATCHES; i++)
		CHECK_OK(ripen_pool_watch(pool, &o, &id));
	{
		uint32_t last = id;

		CHECK_EQ(ripen_pool_watch(pool, &o, &id), -ENOSPC);
		CHECK_EQ(id, 0);
		CHECK_OK(ripen_pool_unwatch(pool, last));
	}
	CHECK_OK(ripen_pool_watch(pool, &o, &id));
	ripen_pool_destroy(pool);
	ripen_pool_destroy(nore);
}

/* WAIT_MEAN on a class fed by the test thread: fires once within a
 * window of the waits rising, clears once after they stop. */
static void watch_wait_mean_fires_and_clears(void)
{
	struct ripen_pool *pool = make_pool(1, 0, false, NULL);
	struct ripen__mclass *mc = &pool->workers[0].m->cls[9];
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER };
	uint64_t t_rise, t_stop;
	uint32_t id;
	char *text;

	o.kind = RIPEN_WATCH_WAIT_MEAN;
	o.class_id = 9;
	o.threshold = 0.002;
	o.window_ns = 200 * MS;
	o.fn = on_event;
	o.arg = &e;
	CHECK_OK(ripen_pool_watch(pool, &o, &id));
	/* below the threshold for a while: 1 ms waits */
	for (int i = 0; i < 40; i++) {
		ripen__hist_add(&mc->wait, 1 * MS);
		sleep_ns(5 * MS);
	}
	CHECK_EQ(ev_count(&e, true), 0);
	t_rise = ripen_now_ns();
	for (int i = 0; i < 20; i++) {
		ripen__hist_add(&mc->wait, 5 * MS);
		sleep_ns(1 * MS);
	}
	CHECK(await_events(&e, true, 1, 10 * SEC));
	t_stop = ripen_now_ns();
	printf("# wait_mean fired %.1f ms after the rise (window 200 ms), value %.4f s\n",
	       (double)(e.fire_ns - t_rise) / 1e6, e.value);
	CHECK(e.value > 0.002);
	text = scrape(pool);
	CHECK(strstr(text, "ripen_watch_firing{pool=\"t\",watch=") != NULL);
	CHECK(strstr(text, "kind=\"wait_mean\"} 1") != NULL);
	free(text);
	/* nothing more starts: the window empties and the watcher clears */
	CHECK(await_events(&e, false, 1, 10 * SEC));
	printf("# wait_mean cleared %.1f ms after the last high wait\n",
	       (double)(e.clear_ns - t_stop) / 1e6);
	CHECK_EQ(ev_count(&e, true), 1); /* no flapping */
	CHECK_EQ(ev_count(&e, false), 1);
	CHECK_OK(ripen_pool_unwatch(pool, id));
	ripen_pool_destroy(pool);
}

/*
 * Hysteresis: QUEUED of a paused pool's class is exact. Above 10 it
 * fires; at 10 (not above the threshold, but above the 10% band) it keeps
 * firing; at 8 it clears, once it has fired for a window.
 */
static void watch_hysteresis_holds(void)
{
	struct ripen_pool *pool = make_pool(1, 0, true, NULL);
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;
	struct ripen_task_opts t = RIPEN_TASK_OPTS_INIT;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct ripen_task *h[11];
	uint32_t id;

	o.kind = RIPEN_WATCH_QUEUED;
	o.class_id = 3;
	o.threshold = 10;
	o.window_ns = 40 * MS;
	o.fn = on_event;
	o.arg = &e;
	CHECK_OK(ripen_pool_watch(pool, &o, &id));
	t.class_id = 3;
	for (int i = 0; i < 11; i++)
		CHECK_OK(ripen_submit(pool, noop, NULL, &t, &h[i]));
	CHECK(await_events(&e, true, 1, 10 * SEC));
	CHECK_OK(ripen_task_cancel(h[0])); /* 10 queued: inside the band */
	sleep_ns(200 * MS); /* five windows: a flapping watcher would clear here */
	CHECK_EQ(ev_count(&e, false), 0);
	CHECK_OK(ripen_task_cancel(h[1]));
	CHECK_OK(ripen_task_cancel(h[2])); /* 8: below the band */
	CHECK(await_events(&e, false, 1, 10 * SEC));
	CHECK_GE(e.clear_ns - e.fire_ns, o.window_ns); /* it fired for a window at least */
	CHECK_EQ(ev_count(&e, true), 1);
	CHECK_OK(ripen_pool_resume(pool));
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	for (int i = 0; i < 11; i++)
		ripen_task_release(h[i]);
	CHECK_OK(ripen_pool_unwatch(pool, id));
	ripen_pool_destroy(pool);
}

/* SHED: while class 3 has more than 5 queued, class 4 is refused. */
static void watch_shed_applies_and_undoes(void)
{
	struct ripen_pool *pool = make_pool(1, 0, true, NULL);
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;
	struct ripen_task_opts t3 = RIPEN_TASK_OPTS_INIT, t4 = RIPEN_TASK_OPTS_INIT;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
	uint32_t id;
	int shed = 0;

	o.kind = RIPEN_WATCH_QUEUED;
	o.class_id = 3;
	o.threshold = 5;
	o.window_ns = 40 * MS;
	o.action = RIPEN_WATCH_SHED;
	o.target_class = 4;
	o.fn = on_event;
	o.arg = &e;
	CHECK_OK(ripen_pool_watch(pool, &o, &id));
	t3.class_id = 3;
	t4.class_id = 4;
	CHECK_OK(ripen_submit(pool, noop, NULL, &t4, NULL)); /* accepted: not firing */
	for (int i = 0; i < 10; i++)
		CHECK_OK(ripen_submit(pool, noop, NULL, &t3, NULL));
	CHECK(await_events(&e, true, 1, 10 * SEC));
	for (int i = 0; i < 5; i++)
		shed += ripen_submit(pool, noop, NULL, &t4, NULL) == -EBUSY;
	CHECK_EQ(shed, 5);
	CHECK_OK(ripen_submit(pool, noop, NULL, &t3, NULL)); /* other classes flow */
	CHECK_OK(ripen_pool_class_stats(pool, 4, &st));
	CHECK_EQ(st.shed, 5);
	CHECK_EQ(st.submitted, 1);
	CHECK_OK(ripen_pool_resume(pool)); /* the queue drains: it clears */
	CHECK(await_events(&e, false, 1, 10 * SEC));
	CHECK_OK(ripen_submit(pool, noop, NULL, &t4, NULL)); /* undone */
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	CHECK_OK(ripen_pool_class_stats(pool, 4, &st));
	CHECK_EQ(st.submitted, 2);
	CHECK_EQ(st.started, 2);
	CHECK_EQ(st.shed, 5);
	CHECK_OK(ripen_pool_unwatch(pool, id));
	ripen_pool_destroy(pool);
}

/* Removing a firing SHED watcher undoes its action at once. */
static void unwatch_undoes_the_action(void)
{
	struct ripen_pool *pool = make_pool(1, 0, true, NULL);
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;
	struct ripen_task_opts t3 = RIPEN_TASK_OPTS_INIT;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER };
	uint32_t id;

	o.kind = RIPEN_WATCH_QUEUED;
	o.class_id = 3;
	o.threshold = 0;
	o.window_ns = 40 * MS;
	o.action = RIPEN_WATCH_SHED;
	o.target_class = 200; /* "other" */
	o.fn = on_event;
	o.arg = &e;
	CHECK_OK(ripen_pool_watch(pool, &o, &id));
	t3.class_id = 3;
	CHECK_OK(ripen_submit(pool, noop, NULL, &t3, NULL));
	CHECK(await_events(&e, true, 1, 10 * SEC));
	t3.class_id = 999; /* also "other" */
	CHECK_EQ(ripen_submit(pool, noop, NULL, &t3, NULL), -EBUSY);
	CHECK_OK(ripen_pool_unwatch(pool, id));
	CHECK_OK(ripen_submit(pool, noop, NULL, &t3, NULL));
	CHECK_OK(ripen_pool_resume(pool));
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	ripen_pool_destroy(pool);
}

static int order[8];
static atomic_int norder;

static void note_class(void *arg)
{
	order[atomic_fetch_add(&norder, 1)] = (int)(uintptr_t)arg;
}

/*
 * The order of a class-6 task (base 10) and a class-7 one (base 1) under
 * class weights, with or without a DOWNGRADE of class 6 by 0.01 in force.
 * A blocker task on the one worker pushes both into its own heap (keyed
 * there and then), plus a class-5 task that keeps class 5 queued (the
 * watcher's trigger); with the watcher it waits until the downgrade is in
 * force, so the two entries must be re-keyed to come out in the new order.
 */
struct dg {
	struct ripen_pool *pool;
	struct events *e;
	bool downgrade;
};

static void dg_blocker(void *arg)
{
	struct dg *d = arg;
	struct ripen_task_opts t = RIPEN_TASK_OPTS_INIT;

	t.class_id = 6;
	t.base = 10;
	CHECK_OK(ripen_submit(d->pool, note_class, (void *)6, &t, NULL));
	t.class_id = 7;
	t.base = 1;
	CHECK_OK(ripen_submit(d->pool, note_class, (void *)7, &t, NULL));
	t.class_id = 5;
	t.base = -1000; /* runs last: keeps class 5 queued meanwhile */
	CHECK_OK(ripen_submit(d->pool, note_class, (void *)5, &t, NULL));
	if (d->downgrade) {
		CHECK(await_events(d->e, true, 1, 10 * SEC));
		CHECK(ripen__class_factor(d->pool->metrics->factor_bits, 6) == 0.01);
	}
}

static void downgrade_round(bool downgrade, int *first)
{
	const double wts[] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	struct ripen_pool *pool = make_pool(1, 0, false,
					    ripen_policy_class_weights(wts, 8, ripen_policy_static()));
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct dg d = { pool, &e, downgrade };
	uint32_t id = 0;

	atomic_store(&norder, 0);
	if (downgrade) {
		o.kind = RIPEN_WATCH_QUEUED;
		o.class_id = 5;
		o.threshold = 0;
		o.window_ns = 40 * MS;
		o.action = RIPEN_WATCH_DOWNGRADE;
		o.target_class = 6;
		o.factor = 0.01;
		o.fn = on_event;
		o.arg = &e;
		CHECK_OK(ripen_pool_watch(pool, &o, &id));
	}
	CHECK_OK(ripen_submit(pool, dg_blocker, &d, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(pool, 20 * (int64_t)SEC));
	CHECK_EQ(atomic_load(&norder), 3);
	*first = order[0];
	CHECK_EQ(order[2], 5);
	if (downgrade) {
		CHECK(await_events(&e, false, 1, 10 * SEC)); /* nothing queued: clears */
		CHECK(ripen__class_factor(pool->metrics->factor_bits, 6) == 1.0);
		CHECK_OK(ripen_pool_unwatch(pool, id));
	}
	ripen_pool_destroy(pool);
}

static void watch_downgrade_applies_and_undoes(void)
{
	int first;

	downgrade_round(false, &first);
	CHECK_EQ(first, 6); /* 10 beats 1 */
	downgrade_round(true, &first);
	CHECK_EQ(first, 7); /* 10 * 0.01 loses to 1 */
}

/* A callback may swap the policy; it may not wait for the pool. */
static void watch_callback_rules(void)
{
	struct ripen_pool *pool = make_pool(1, 0, true, NULL);
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;
	struct ripen_task_opts t = RIPEN_TASK_OPTS_INIT;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER, .try_calls = true };
	uint32_t id;

	o.kind = RIPEN_WATCH_QUEUED;
	o.class_id = 1;
	o.threshold = 0;
	o.window_ns = 40 * MS;
	o.fn = on_event;
	o.arg = &e;
	CHECK_OK(ripen_pool_watch(pool, &o, &id));
	t.class_id = 1;
	CHECK_OK(ripen_submit(pool, noop, NULL, &t, NULL));
	CHECK(await_events(&e, true, 1, 10 * SEC));
	pthread_mutex_lock(&e.mu);
	CHECK_EQ(e.set_policy_rc, 0);
	CHECK_EQ(e.wait_idle_rc, -EDEADLK);
	CHECK_EQ(e.shutdown_rc, -EDEADLK);
	pthread_mutex_unlock(&e.mu);
	CHECK_OK(ripen_pool_resume(pool));
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	ripen_pool_destroy(pool);
}

/* Watchers come and go under full load; nothing is lost. */
static atomic_int churn_stop;

static void *churner(void *arg)
{
	struct ripen_pool *pool = arg;
	struct events e = { .mu = PTHREAD_MUTEX_INITIALIZER };
	uint32_t ids[8];
	unsigned k = 0;

	while (!atomic_load(&churn_stop)) {
		struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;

		o.kind = (enum ripen_watch_kind)(k % 4);
		o.quantile = 0.9;
		o.class_id = k % 3;
		o.threshold = (k % 2) ? 0 : 1e9;
		o.window_ns = (1 + k % 5) * MS;
		o.fn = on_event;
		o.arg = &e;
		o.action = (k % 3 == 0) ? RIPEN_WATCH_SHED : (k % 3 == 1) ? RIPEN_WATCH_DOWNGRADE :
			   RIPEN_WATCH_NOTIFY;
		o.target_class = 50; /* never submitted: shedding it loses nothing */
		o.factor = 0.5;
		CHECK_OK(ripen_pool_watch(pool, &o, &ids[k % 8]));
		if (k >= 7)
			CHECK_OK(ripen_pool_unwatch(pool, ids[(k - 7) % 8]));
		k++;
		sleep_ns(200000);
	}
	for (unsigned i = k >= 7 ? k - 7 : 0; i < k; i++)
		CHECK_OK(ripen_pool_unwatch(pool, ids[i % 8]));
	return NULL;
}

static void watchers_churn_under_load(void)
{
	enum { P = 2, N = 30000 };
	const double wts[] = { 1, 2, 3 };
	struct ripen_pool *pool = make_pool(2, 0, false,
					    ripen_policy_class_weights(wts, 3, ripen_policy_linear_aging(0.01)));
	pthread_t th[P], ch;
	struct prod pr[P];
	uint64_t total = 0;

	atomic_store(&churn_stop, 0);
	for (unsigned k = 0; k < NCLS; k++)
		atomic_store(&ran_by_class[k], 0);
	CHECK_EQ(pthread_create(&ch, NULL, churner, pool), 0);
	for (int i = 0; i < P; i++) {
		pr[i] = (struct prod){ pool, i, N, NULL };
		CHECK_EQ(pthread_create(&th[i], NULL, producer, &pr[i]), 0);
	}
	for (int i = 0; i < P; i++)
		pthread_join(th[i], NULL);
	atomic_store(&churn_stop, 1);
	pthread_join(ch, NULL);
	CHECK_OK(ripen_pool_wait_idle(pool, 60 * (int64_t)SEC));
	for (unsigned k = 0; k < NCLS; k++)
		total += atomic_load(&ran_by_class[k]);
	CHECK_EQ(total, (uint64_t)P * N);
	for (unsigned s = 0; s < RIPEN_MSLOTS; s++) {
		struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;

		CHECK_OK(ripen_pool_class_stats(pool, s, &st));
		CHECK_EQ(st.submitted, st.started + st.cancelled + st.queued);
		CHECK_EQ(st.queued, 0);
		CHECK_EQ(st.shed, 0);
	}
	CHECK(ripen__class_factor(pool->metrics->factor_bits, 50) == 1.0);
	ripen_pool_destroy(pool);
}

static const struct test_case cases[] = {
	{ "bucket_bounds_and_error", bucket_bounds_and_error },
	{ "quantiles_of_known_values", quantiles_of_known_values },
	{ "counts_equal_starts_per_class", counts_equal_starts_per_class },
	{ "cancels_rejects_delayed", cancels_rejects_delayed },
	{ "quantiles_of_known_waits", quantiles_of_known_waits },
	{ "periodic_wait_from_release", periodic_wait_from_release },
	{ "boundary_skips_inline_runs", boundary_skips_inline_runs },
	{ "boundary_ends_at_a_search", boundary_ends_at_a_search },
	{ "names_and_escaping", names_and_escaping },
	{ "exposition_is_consistent", exposition_is_consistent },
	{ "watch_bad_input", watch_bad_input },
	{ "watch_wait_mean_fires_and_clears", watch_wait_mean_fires_and_clears },
	{ "watch_hysteresis_holds", watch_hysteresis_holds },
	{ "watch_shed_applies_and_undoes", watch_shed_applies_and_undoes },
	{ "unwatch_undoes_the_action", unwatch_undoes_the_action },
	{ "watch_downgrade_applies_and_undoes", watch_downgrade_applies_and_undoes },
	{ "watch_callback_rules", watch_callback_rules },
	{ "watchers_churn_under_load", watchers_churn_under_load },
};

int main(int argc, char **argv)
{
	return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
