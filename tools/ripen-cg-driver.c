/*
 * ripen-cg-driver: a fixed amount of work for callgrind instruction counts
 * per task, the measure that a refactor must keep within 2%. On a
 * one-worker pool with the rebalancer off:
 *
 *   submitp N   N empty tasks submitted to the paused pool, then resumed
 *               (the submit path and the run path, without the idle
 *               worker's spinning interleaved)
 *   spawn D     a binary spawn tree of depth D (2^(D+1) - 1 tasks), every
 *               task submitted from inside a task
 *
 * Run two sizes and divide the difference by the difference in tasks:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       build/tools/ripen-cg-driver submitp 20000      (then 40000)
 *   ... spawn 13 (then 14: 16384 more tasks)
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
	bool submit;
	long n;
	int rc;

	if (argc != 3 || (strcmp(argv[1], "submitp") != 0 && strcmp(argv[1], "spawn") != 0) ||
	    (n = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: %s submitp N | spawn DEPTH\n", argv[0]);
		return 2;
	}
	submit = strcmp(argv[1], "submitp") == 0;
	o.workers = 1;
	o.start_paused = submit;
	o.rebalance_period_ns = RIPEN_REBALANCE_OFF;
	o.metrics_off = getenv("RIPEN_CG_METRICS_OFF") != NULL;
	if ((rc = ripen_pool_create(&o, &pool)) != 0) {
		fprintf(stderr, "ripen_pool_create: %s\n", ripen_strerror(rc));
		return 1;
	}
	if (submit) {
		for (long i = 0; i < n; i++)
			if ((rc = ripen_submit(pool, noop, NULL, NULL, NULL)) != 0)
				break;
		if (rc == 0)
			rc = ripen_pool_resume(pool);
	} else {
		rc = ripen_submit(pool, spawn, (void *)(intptr_t)n, NULL, NULL);
	}
	if (rc == 0)
		rc = ripen_pool_wait_idle(pool, -1);
	ripen_pool_destroy(pool);
	if (rc != 0) {
		fprintf(stderr, "%s\n", ripen_strerror(rc));
		return 1;
	}
	return 0;
}
