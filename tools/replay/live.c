/*
 * The live run: the same (scaled) trace through a real ripen pool.
 *
 * One pool per policy, o->workers workers, the policy given to
 * ripen_pool_create and the rebalancer period set to the simulator's re-key
 * period (so both re-score time-varying policies on the same period). The
 * calling thread is the producer: after a common start t0 (20 ms ahead, so
 * the workers are up and parked), it submits task i at t0 + arrival_ns[i]:
 * it sleeps (clock_nanosleep, absolute) until 200 us before, then spins on
 * ripen_now_ns. Tasks with equal arrival times are submitted back to back
 * in arrival order, so the runtime's submit sequence is the trace order.
 * Each task records its start (ripen_now_ns), spins until start +
 * service_ns and records when it saw that time pass (its end: later than
 * start + service when its thread was descheduled across it). Its wait is start - (t0 + arrival_ns): the scheduled arrival,
 * so a producer that falls behind shows up as wait (its lateness is
 * reported apart, in rr_live_stats). Deadlines are absolute: t0 +
 * deadline_ns.
 *
 * The start stamps are written by the workers and read after
 * ripen_pool_shutdown, which joins them (that join orders the reads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run.h"

struct slot {
	uint64_t service_ns;
	uint64_t start_ns;
	uint64_t end_ns;
};

static void spin_task(void *arg)
{
	struct slot *s = arg;
	uint64_t start = ripen_now_ns(), now;

	s->start_ns = start;
	while ((now = ripen_now_ns()) - start < s->service_ns)
		;
	s->end_ns = now;
}

static void sleep_until(uint64_t target_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(target_ns / 1000000000u),
		.tv_nsec = (long)(target_ns % 1000000000u),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int rr_live(const struct rr_task *t, size_t n, struct ripen_policy *p,
	    const struct rr_live_opts *o, uint64_t *wait_ns, struct rr_live_stats *st,
	    char *err, size_t errlen)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *pool = NULL;
	struct slot *slot = malloc((n ? n : 1) * sizeof(*slot));
	uint64_t *late = malloc((n ? n : 1) * sizeof(*late));
	uint64_t t0;
	int rc;

	if (slot == NULL || late == NULL) {
		free(slot);
		free(late);
		ripen_policy_free(p);
		snprintf(err, errlen, "live: out of memory for %zu tasks", n);
		return -ENOMEM;
	}
	po.workers = o->workers;
	po.policy = p;
	po.rebalance_period_ns = o->rebalance_period_ns;
	po.name = "ripen-replay";
	rc = ripen_pool_create(&po, &pool); /* takes p, even on failure */
	if (rc != 0) {
		snprintf(err, errlen, "live: ripen_pool_create: %s", ripen_strerror(rc));
		goto out;
	}
	t0 = ripen_now_ns() + 20000000u;
	for (size_t i = 0; i < n; i++) {
		struct ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
		uint64_t due = t0 + t[i].arrival_ns, now = ripen_now_ns();

		if (due > now + 200000u)
			sleep_until(due - 200000u);
		while ((now = ripen_now_ns()) < due)
			;
		late[i] = now - due;
		slot[i].service_ns = t[i].service_ns;
		slot[i].start_ns = 0;
		slot[i].end_ns = 0;
		to.base = t[i].base;
		to.class_id = t[i].class_id;
		to.deadline_ns = t[i].deadline_ns ? t0 + t[i].deadline_ns : 0;
		rc = ripen_submit(pool, spin_task, &slot[i], &to, NULL);
		if (rc != 0) {
			snprintf(err, errlen, "live: ripen_submit of task %zu: %s", i,
				 ripen_strerror(rc));
			break;
		}
		if (o->progress != NULL && ((i + 1) & 0x3ff) == 0)
			o->progress(o->progress_ctx, i + 1);
	}
	ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN); /* runs the rest, joins */
	if (st != NULL) {
		st->pool = (struct ripen_pool_stats)RIPEN_POOL_STATS_INIT;
		ripen_pool_stats(pool, &st->pool);
	}
	ripen_pool_destroy(pool);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++) {
			uint64_t due = t0 + t[i].arrival_ns;

			wait_ns[i] = slot[i].start_ns > due ? slot[i].start_ns - due : 0;
		}
		if (st != NULL && n > 0) {
			st->makespan_ns = 0;
			for (size_t i = 0; i < n; i++)
				if (slot[i].end_ns - t0 > st->makespan_ns)
					st->makespan_ns = slot[i].end_ns - t0;
			qsort(late, n, sizeof(*late), cmp_u64);
			st->late_p99_ns = late[(size_t)((n * 99 + 99) / 100) - 1];
			st->late_max_ns = late[n - 1];
		}
	}
out:
	free(slot);
	free(late);
	return rc;
}
