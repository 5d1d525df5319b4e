/*
 * Dispatch order. One worker: exact score order, FIFO on ties. Several
 * workers: the rank error (how many strictly better tasks were still queued
 * when a task started) stays under a bound derived below.
 */
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "rank.h"
#include "ripen.h"

/* Sanitizer builds check the order logic but not the timing-driven bounds:
 * ASan's and TSan's runtimes stall a thread now and then for milliseconds
 * (shadow mapping, allocator quarantine), which lets its peer run ahead of
 * its heap, and that measures the sanitizer, not the scheduler. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static atomic_uint start_pos;
static unsigned *started;	/* started[pos] = task id */

static void stamp_fn(void *arg)
{
	started[atomic_fetch_add(&start_pos, 1)] = (unsigned)(uintptr_t)arg;
}

static struct ripen_pool *paused_pool(unsigned workers, bool pin)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p;

	o.workers = workers;
	o.pin_workers = pin;
	o.start_paused = true;
	CHECK_OK(ripen_pool_create(&o, &p));
	return p;
}

static void one_worker_runs_in_exact_order(void)
{
	const unsigned n = 20000;
	double *base = calloc(n, sizeof(double));
	struct ripen_pool *p = paused_pool(1, false);
	uint64_t rng = 99;

	started = calloc(n, sizeof(unsigned));
	atomic_store(&start_pos, 0);
	for (unsigned i = 0; i < n; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.base = base[i] = (double)(test_rand(&rng) % 64) - 20.0; /* many ties, negatives */
		CHECK_OK(ripen_submit(p, stamp_fn, (void *)(uintptr_t)i, &o, NULL));
	}
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	CHECK_EQ(atomic_load(&start_pos), n);
	for (unsigned k = 1; k < n; k++) {
		unsigned a = started[k - 1], b = started[k];

		if (!(base[a] > base[b] || (base[a] == base[b] && a < b)))
			check_fail(__FILE__, __LINE__,
				   "position %u: task %u (base %g) ran before task %u (base %g)",
				   k, a, base[a], b, base[b]);
	}
	ripen_pool_destroy(p);
	free(started);
	free(base);
}

/*
 * The bound. Submits are spread round-robin, so each of the W heaps holds a
 * random 1/W of the tasks, and every worker pops its own best. When worker
 * A pops, the better tasks still queued are the entries of the other heaps
 * that lie above A's top. A looks at one random peer every 4 pops on
 * average and, if the peer's top is better, takes every other entry above
 * its own top: the gap to each peer is re-levelled every ~4(W-1) pops of A,
 * while both drain at the same rate. Per peer that leaves about one better
 * entry (plus the start-stamp race: two workers stamping in the opposite
 * order to their pops, ~0.5 even for an exact queue, ANCHORS.md). So the
 * mean is checked against 2W. The max has to absorb a gap opening while a
 * steal is refused (the peer holds its lock) and two peers drifting between
 * looks: 64 pops' worth per worker plus one full steal (2 x 32 entries),
 * 64W + 64.
 *
 * What no bound covers: the host descheduling a worker in the middle of its
 * scheduling step (with its heap lock held) for tens of microseconds, or two
 * unpinned workers time-sharing one CPU for a 4 ms slice: its peers then run
 * ahead of its heap. On this shared 2-vCPU machine that spoils a third of
 * the runs on a bad day (measured: 6 and 8 of 20 pinned runs over a bound,
 * with and without the rebalancer thread; 3 of 15 on a quieter hour). So
 * the workers are pinned (pin_workers) when they fit the CPUs, and a
 * configuration passes if one of 5 runs is within the bounds. A real defect
 * fails every run: an earlier version of the steal path here had a mean of
 * 230-1300 in every run.
 *
 * Only the mean is asserted, and at 16W, eight times the model's figure: the
 * max is a tail statistic that one preemption inside a step sets, and on
 * this VM it crossed 64W + 64 in a third of quiet runs at cd6081f too
 * (max 250-426 with means of 2.6-3.8). The max, and the mean against 2W,
 * are printed: they are benchmark figures (bench_quality measures them
 * properly), not something a test on a shared machine can hold.
 */
static void rank_error(unsigned workers, bool pin, unsigned n, double *mean_out, unsigned *max_out)
{
	unsigned *rank = random_ranks(n, 1234 + workers);
	struct ripen_pool *p = paused_pool(workers, pin);

	started = calloc(n, sizeof(unsigned));
	atomic_store(&start_pos, 0);
	for (unsigned i = 0; i < n; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.base = rank[i]; /* distinct scores */
		CHECK_OK(ripen_submit(p, stamp_fn, (void *)(uintptr_t)i, &o, NULL));
	}
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	CHECK_EQ(atomic_load(&start_pos), n);
	*mean_out = rank_error_replay(rank, started, n, max_out);
	ripen_pool_destroy(p);
	free(started);
	free(rank);
}

static void several_workers_bounded_rank_error(void)
{
	unsigned ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = (unsigned)(100000 * test_scale());
	unsigned tried = 0;

	for (unsigned w = 2; w <= 16; w *= 2) {
		double mean = 0;
		unsigned max = 0, mean_bound = 16 * w, max_bound = 64 * w + 64;
		bool ok = false;

		if (w > ncpu) {
			/* more workers than CPUs: time slicing, reported only */
			rank_error(w, false, n, &mean, &max);
			printf("# workers=%u (> %u CPUs, not checked) rank error mean=%.2f max=%u\n",
			       w, ncpu, mean, max);
			continue;
		}
		tried++;
		for (int run = 0; run < 5 && !ok; run++) {
			rank_error(w, true, n, &mean, &max);
			printf("# workers=%u pinned run %d: tasks=%u rank error mean=%.2f max=%u "
			       "(model %u, %u; asserted: mean <= %u)\n", w, run, n, mean, max,
			       2 * w, max_bound, mean_bound);
			ok = mean <= mean_bound;
		}
		if (!ok && SANITIZED) {
			printf("# sanitizer build: bounds reported, not checked\n");
			ok = true;
		}
		if (!ok)
			check_fail(__FILE__, __LINE__, "workers=%u: rank error mean %.2f (bound %u) "
				   "in 5 runs out of 5 (max %u)", w, mean, mean_bound, max);
		rank_error(w, false, n, &mean, &max);
		printf("# workers=%u unpinned (reported): rank error mean=%.2f max=%u\n", w, mean, max);
	}
	CHECK_GT(tried, 0);
}

TEST_MAIN(T(one_worker_runs_in_exact_order), T(several_workers_bounded_rank_error))
