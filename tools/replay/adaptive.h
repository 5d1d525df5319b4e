/*
 * The adaptive policy of ripen-replay's simulator (adaptive.c): the
 * control law of runtime/adapt.c, measured from the simulated starts,
 * driving class weights and tau of a class-weighted aging policy.
 */
#ifndef RIPEN_REPLAY_ADAPTIVE_H
#define RIPEN_REPLAY_ADAPTIVE_H

#include <stdio.h>

#include "adapt-internal.h"
#include "run.h"

struct rr_adaptive;

struct rr_adaptive_stats {
	uint64_t steps, changes, events, infeasible_steps;
	double tau_s;				/* at the end */
	double w[RIPEN__ADAPT_MAX];
	bool given_up[RIPEN__ADAPT_MAX];
	bool infeasible;
};

/*
 * A controller over tasks t[0..n) for objectives obj[0..nobj) (priority
 * order), tuning the aging form `aging` (RIPEN_AGING_*), stepping every
 * period_ns and measuring over window_periods periods; `log` (NULL: none)
 * receives a CSV line per step. Fills *ctl for
 * rr_sim_opts.control; the first policy is rr_adaptive_policy(). 0,
 * -EINVAL, -ENOMEM.
 */
int rr_adaptive_new(const struct rr_task *t, size_t n, const struct ripen__adapt_objective *obj,
		    size_t nobj, const struct ripen__adapt_params *params, unsigned aging,
		    uint64_t period_ns, unsigned window_periods, FILE *log,
		    struct rr_adaptive **out, struct rr_control *ctl);
/* The policy now in force (owned by the controller). */
const struct ripen_policy *rr_adaptive_policy(const struct rr_adaptive *a);
/* Its record; 0, or -ENOMEM if a step ran out of memory. */
int rr_adaptive_finish(const struct rr_adaptive *a, struct rr_adaptive_stats *st);
void rr_adaptive_free(struct rr_adaptive *a);

#endif
