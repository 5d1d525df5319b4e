/*
 * The adaptive controller's law (adapt.c has the design): per-class
 * objectives on a quantile of the wait, in priority order, and one control
 * step per period that moves class weights and the aging tau by bounded
 * steps. Pure and deterministic: no clock, no pool. The simulator of
 * ripen-replay and the pool's controller on the rebalancer (watch.c) run
 * the same code, and build the policy it tunes with the same function.
 */
#ifndef RIPEN_ADAPT_INTERNAL_H
#define RIPEN_ADAPT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ripen_policy;

#define RIPEN__ADAPT_MAX 16u	/* objectives */
#define RIPEN__ADAPT_GAP 64.0	/* a given-up class weighs w_min / GAP */

struct ripen__adapt_objective {
	uint32_t class_id;
	double quantile;	/* in (0, 1) */
	double target_s;	/* > 0: the quantile of the wait must stay at or below */
	bool may_shed;		/* the user allows shedding this class as a last resort */
};

struct ripen__adapt_params {
	double w_min;		 /* the least weight of a pursued objective's class (the
				  * most favoured weighs 1); in (0, 1] */
	double tau_min_s, tau_max_s; /* clamp of tau; 0 < min <= max, finite */
	double tau0_s;		 /* the starting tau, within the clamp */
	double step;		 /* a raise multiplies by (1 + step); a back-off divides
				  * by (1 + step)^2; in (0, 1] */
	double band;		 /* an objective is met comfortably at measured <=
				  * (1 - band) * target; in [0, 1) */
	unsigned patience;	 /* periods an objective may miss in a row before the
				  * set is declared infeasible, and periods of room
				  * before a give-up is undone; >= 1 */
};

/* Defaults: weights in [1/64, 1] (given up: 1/4096), tau in [0.01 s,
 * 100 s] from 10 s, step 0.1, band 0.5, patience 10. */
void ripen__adapt_default_params(struct ripen__adapt_params *p);

enum ripen__adapt_event {
	RIPEN__ADAPT_NONE = 0,
	RIPEN__ADAPT_GIVE_UP,	/* objective `which` is no longer pursued */
	RIPEN__ADAPT_SHED,	/* its class is shed (the user allowed it) */
	RIPEN__ADAPT_UNSHED,
	RIPEN__ADAPT_RESTORE,	/* pursued again */
};

struct ripen__adapt {
	struct ripen__adapt_params p;
	struct ripen__adapt_objective obj[RIPEN__ADAPT_MAX];
	size_t n;
	double w[RIPEN__ADAPT_MAX];	/* the weight of obj[i].class_id: in [w_min, 1],
					 * w_min / RIPEN__ADAPT_GAP once given up */
	double tau_s;
	unsigned stuck[RIPEN__ADAPT_MAX]; /* consecutive periods stuck (see adapt.c) */
	unsigned comfy;			/* consecutive periods every pursued objective comfortable */
	unsigned calm;			/* ... every pursued one met, and the next to undo too */
	bool given_up[RIPEN__ADAPT_MAX];
	bool shed[RIPEN__ADAPT_MAX];
	bool infeasible;		/* some pursued objective stuck for `patience` periods,
					 * or any objective given up or shed */
	uint64_t steps;
};

/* What one step did (for metrics, trace records and watcher events). */
struct ripen__adapt_out {
	bool changed;			/* a weight or tau moved */
	bool infeasible_changed;	/* ripen__adapt.infeasible flipped */
	enum ripen__adapt_event event;	/* at most one give-up/shed/restore per step */
	size_t which;			/* its objective */
};

/* 0, or -EINVAL for bad parameters or objectives (n = 0 or too many, a
 * quantile outside (0, 1), a target not finite and > 0, two objectives on
 * one class). Objectives are in priority order: obj[0] matters most. */
int ripen__adapt_init(struct ripen__adapt *a, const struct ripen__adapt_params *p,
		      const struct ripen__adapt_objective *obj, size_t n);

/*
 * One control period. measured[i]: obj[i]'s quantile of the waits measured
 * over the last window, in seconds; NaN when the window holds none (the
 * objective then holds still). Updates a and fills *out.
 */
void ripen__adapt_step(struct ripen__adapt *a, const double *measured,
		       struct ripen__adapt_out *out);

/* The weight of class c under a (1 for classes without an objective). */
double ripen__adapt_weight(const struct ripen__adapt *a, uint32_t c);

/*
 * The policy the controller tunes, of form `aging` (RIPEN_AGING_*): class
 * weights w[0..n) over linear aging at tau_s, or class scaling w[0..n) over
 * additive aging (policy.c). The one place the form becomes a policy, for
 * the pool (watch.c: weights of 1, its factors carry the controller's) and
 * for ripen-replay's simulator (tools/replay/adaptive.c). NULL without
 * memory or on a bad form.
 */
struct ripen_policy *ripen__adapt_policy(unsigned aging, const double *w, size_t n, double tau_s);

#endif
