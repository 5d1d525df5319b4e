/*
 * ripen-cg-driver: a fixed amount of work for callgrind instruction counts
 * per task, the measure that a refactor must keep within 2%. On a
 * one-worker pool with the rebalancer off:
 *
 *   submitp N   N empty tasks submitted to the paused pool, then resumed
 *               (the submit path and the run path, without the idle
 *               worker's spinning interleaved)
 *   spawn D     a binary spawn tree of depth D (2^(D+1) - 1 tasks), every
 *               task submitted from inside a task, all at one priority
 *   fib N       the fib(N) call tree as tasks (bench_workloads' SpawnTree),
 *               all at one priority: FIFO on ties, breadth first
 *   fibd N      the same with depth as priority (deeper first, depth first)
 *   prio N      like submitp with random priorities: N pops from a heap of
 *               up to N entries (the heap's sift cost)
 *
 * The task count goes to stderr, so the marginal count per task is the
 * difference of two runs over the difference of their task counts.
 *
 * Run two sizes and divide the difference by the difference in tasks:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       build/tools/ripen-cg-driver submitp 20000      (then 40000)
 *   ... spawn 13 (then 14: 16384 more tasks)
 *
 * On a kvm-clock VM, set RIPEN_METRICS_TSC=1 as well: valgrind has no
 * vDSO, so without it the recording clock is a system call under valgrind
 * and the TSC, which runs natively, is not counted (runtime/metrics.c).
 *
 * RIPEN_CG_METRICS_OFF=1 in the environment creates the pool with
 * opts.metrics_off: the difference is what the recording costs a task.
 *
 * Not a benchmark: time under valgrind means nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ripen.h>

static struct ripen_pool *pool;

static void noop(void *arg)
{
	(void)arg;
}

static unsigned long ntasks;
static bool by_depth;

/* arg = depth << 8 | n */
static void fib(void *arg)
{
	uintptr_t a = (uintptr_t)arg, n = a & 0xff, d = a >> 8;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	ntasks++; /* one worker */
	if (n < 2)
		return;
	if (by_depth)
		o.base = (double)(d + 1);
	if (ripen_submit(pool, fib, (void *)((d + 1) << 8 | (n - 1)), &o, NULL) != 0 ||
	    ripen_submit(pool, fib, (void *)((d + 1) << 8 | (n - 2)), &o, NULL) != 0)
		abort();
}

static void spawn(void *arg)
{
	long depth = (long)(intptr_t)arg;

	if (depth > 0)
		for (int i = 0; i < 2; i++)
			if (ripen_submit(pool, spawn, (void *)(intptr_t)(depth - 1), NULL, NULL) != 0)
				abort();
}

int main(int argc, char **argv)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	bool submit, is_fib;
	long n;
	int rc;

	if (argc != 3 || (n = atol(argv[2])) <= 0 ||
	    (strcmp(argv[1], "submitp") != 0 && strcmp(argv[1], "spawn") != 0 &&
	     strcmp(argv[1], "prio") != 0 &&
	     strcmp(argv[1], "fib") != 0 && strcmp(argv[1], "fibd") != 0) ||
	    (argv[1][0] == 'f' && n > 40)) {
		fprintf(stderr, "usage: %s submitp N | prio N | spawn DEPTH | fib N | fibd N (N <= 40)\n",
			argv[0]);
		return 2;
	}
	submit = strcmp(argv[1], "submitp") == 0 || strcmp(argv[1], "prio") == 0;
	is_fib = argv[1][0] == 'f';
	by_depth = strcmp(argv[1], "fibd") == 0;
	o.workers = 1;
	o.start_paused = submit;
	o.rebalance_period_ns = RIPEN_REBALANCE_OFF;
	o.metrics_off = getenv("RIPEN_CG_METRICS_OFF") != NULL;
	if ((rc = ripen_pool_create(&o, &pool)) != 0) {
		fprintf(stderr, "ripen_pool_create: %s\n", ripen_strerror(rc));
		return 1;
	}
	if (submit) {
		uint64_t x = 88172645463325252ull;
		bool prio = argv[1][0] == 'p';

		for (long i = 0; i < n; i++) {
			struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift: the same keys every run */
			to.base = prio ? (double)(x % 1000000) : 0.0;
			if ((rc = ripen_submit(pool, noop, NULL, &to, NULL)) != 0)
				break;
		}
		if (rc == 0)
			rc = ripen_pool_resume(pool);
	} else if (is_fib) {
		rc = ripen_submit(pool, fib, (void *)(uintptr_t)n, NULL, NULL);
	} else {
		rc = ripen_submit(pool, spawn, (void *)(intptr_t)n, NULL, NULL);
	}
	if (rc == 0)
		rc = ripen_pool_wait_idle(pool, -1);
	ripen_pool_destroy(pool);
	if (is_fib)
		fprintf(stderr, "tasks %lu\n", ntasks);
	if (rc != 0) {
		fprintf(stderr, "%s\n", ripen_strerror(rc));
		return 1;
	}
	return 0;
}
