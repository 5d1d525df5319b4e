/*
 * Policies: how a task's score, and so its heap key, is computed.
 * Any thread; a policy is immutable once built.
 */
#ifndef RIPEN_POLICY_INTERNAL_H
#define RIPEN_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ripen.h"

enum ripen__policy_kind {
	RIPEN_POL_FIFO,
	RIPEN_POL_STATIC,
	RIPEN_POL_LINEAR,
	RIPEN_POL_ADDITIVE,
	RIPEN_POL_EDF,
	RIPEN_POL_CLASS_WEIGHTS,
	RIPEN_POL_CUSTOM,
};

struct ripen_policy {
	enum ripen__policy_kind kind;
	bool time_varying;		/* keys must be recomputed as time passes */
	double tau_ns;			/* aging */
	double *weights;		/* class weights */
	size_t nweights;
	struct ripen_policy *inner;	/* class weights */
	ripen_score_fn *fn;		/* custom */
	void *ctx;
	void (*ctx_free)(void *);
};

/*
 * The heap key of a task under policy p, at reference time ref_ns (only
 * time-varying policies read it). *bad is set when a custom score was NaN or
 * infinite (the key is then RIPEN_KEY_LOWEST, below every other). Never 0.
 * Caller is inside an RCU read-side section if p or pool_ctx came from a
 * pool.
 */
uint64_t ripen__policy_key(const struct ripen_policy *p, const struct ripen_task_view *v,
			   uint64_t seq, uint64_t ref_ns, bool *bad);

#endif
