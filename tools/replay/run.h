/*
 * ripen-replay's engines: the trace as they replay it, the deterministic
 * simulator (sim.c) and the live run through a real pool (live.c). main.c
 * converts an rp_trace (replay.h) into rr_task records, runs every policy
 * through one engine and summarises the waits.
 */
#ifndef RIPEN_REPLAY_RUN_H
#define RIPEN_REPLAY_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ripen.h"

/* One task as replayed: times in integer nanoseconds of replay time (the
 * trace's seconds after --time-scale, times 1e9, rounded), first arrival at
 * 0. The array is in arrival order; a task's index is its sequence number
 * (the FIFO tie-break). */
struct rr_task {
	uint64_t arrival_ns;
	uint64_t service_ns;
	uint64_t deadline_ns;	/* 0 = none */
	double base;
	uint32_t class_id;
	uint32_t pad_;
};

/* Called now and then with the number of tasks started so far (progress). */
typedef void rr_progress_fn(void *ctx, size_t started);

/*
 * A controller that changes the policy while the simulation runs (the
 * adaptive policy, adaptive.c). At every multiple of period_ns (replay
 * time), before the events of that instant's first event time, step() is
 * called and returns the policy from then on (NULL: unchanged); a new
 * policy re-keys the whole queue. on_start() hears of every start.
 */
struct rr_control {
	uint64_t period_ns;		/* > 0 */
	const struct ripen_policy *(*step)(void *ctx, uint64_t now_ns);
	void (*on_start)(void *ctx, size_t seq, uint64_t now_ns);
	void *ctx;
};

struct rr_sim_opts {
	unsigned workers;		/* >= 1 */
	/* time-varying policies: the whole queue is re-keyed at reference
	 * times on this grid (ref = t - t % period), like the runtime's
	 * rebalancer period; > 0 */
	uint64_t rekey_period_ns;
	bool exact;			/* time-varying policies: key every queued task at
					 * each dispatch instead (O(queue) a dispatch) */
	rr_progress_fn *progress;	/* NULL: none */
	void *progress_ctx;
	const struct rr_control *control; /* NULL: the policy is fixed */
};

struct rr_sim_stats {
	uint64_t rekeys;		/* whole-queue re-keys */
	uint64_t rekeyed_entries;	/* keys computed by them (or by exact scans) */
	size_t max_queued;
};

/*
 * Simulate tasks t[0..n) (arrival order) on o->workers non-preemptive
 * workers under policy p (not taken; read only). wait_ns[i] receives task
 * i's start minus its arrival. 0, or -ENOMEM (nothing written to st).
 * Deterministic: the result depends only on the arguments. The caller
 * guarantees that arrival + the sum of all service times fits in 63 bits.
 * Any thread; p must not be a custom policy that calls into a pool.
 */
int rr_simulate(const struct rr_task *t, size_t n, const struct ripen_policy *p,
		const struct rr_sim_opts *o, uint64_t *wait_ns, struct rr_sim_stats *st);

struct rr_live_opts {
	unsigned workers;
	uint64_t rebalance_period_ns;	/* the pool's rebalancer period */
	rr_progress_fn *progress;
	void *progress_ctx;
};

struct rr_live_stats {
	uint64_t late_p99_ns;		/* how late the producer submitted, p99 and max */
	uint64_t late_max_ns;
	uint64_t makespan_ns;		/* the last task's end, from the first arrival */
	struct ripen_pool_stats pool;	/* the pool's counters at the end */
};

/*
 * Run the tasks through a real pool of o->workers workers under policy p
 * (taken over, even on failure): one producer (the calling thread) submits
 * task i at its arrival time after a common start, each task spins for its
 * service time; wait_ns[i] = its start minus its scheduled arrival. 0 or a
 * negative errno (message in err).
 */
int rr_live(const struct rr_task *t, size_t n, struct ripen_policy *p,
	    const struct rr_live_opts *o, uint64_t *wait_ns, struct rr_live_stats *st,
	    char *err, size_t errlen);

#endif
