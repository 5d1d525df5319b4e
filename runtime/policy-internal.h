/*
 * Policies: how a task's score, and so its heap key, is computed.
 * Any thread; a policy is immutable once built.
 */
#ifndef RIPEN_POLICY_INTERNAL_H
#define RIPEN_POLICY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ripen.h"

enum ripen__policy_kind {
	RIPEN_POL_FIFO,
	RIPEN_POL_STATIC,
	RIPEN_POL_LINEAR,
	RIPEN_POL_ADDITIVE,
	RIPEN_POL_EDF,
	RIPEN_POL_CLASS_WEIGHTS,
	RIPEN_POL_CLASS_SCALED,
	RIPEN_POL_CUSTOM,
};

struct ripen_policy {
	enum ripen__policy_kind kind;
	bool time_varying;		/* keys must be recomputed as time passes */
	double tau_ns;			/* aging */
	double *weights;		/* class weights, class scaled */
	size_t nweights;
	struct ripen_policy *inner;	/* class weights, class scaled */
	ripen_score_fn *fn;		/* custom */
	void *ctx;
	void (*ctx_free)(void *);
};

/*
 * The heap key of a task under policy p, at reference time ref_ns (only
 * time-varying policies read it). *bad is set when a custom score, or a
 * class-scaled one, was NaN or infinite (the key is then RIPEN_KEY_LOWEST,
 * below every other). Never 0.
 * `factors` (NULL: none) are the pool's per-class weight factors, which
 * class weights and class scaling multiply in (watch.c's DOWNGRADE; metrics-internal.h).
 * Caller is inside an RCU read-side section if p or pool_ctx came from a
 * pool.
 */
/* The weight factor of class c from the pool's factor_bits (one slot per
 * class below RIPEN_MAX_CLASSES, then one for the rest): 1.0 unless a
 * DOWNGRADE watcher fires (watch.c). */
static inline double ripen__class_factor(const _Atomic uint64_t *factor_bits, uint32_t c)
{
	/* relaxed: a watcher's store is followed by a policy_gen bump
	 * (release) that makes the workers re-key */
	uint64_t b = atomic_load_explicit(&factor_bits[c < RIPEN_MAX_CLASSES ? c : RIPEN_MAX_CLASSES],
					  memory_order_relaxed);
	double f;

	memcpy(&f, &b, sizeof(f));
	return f;
}

/* p as a ripen-replay --policy SPEC ("linear:0.02", "weights:1,10:static",
 * "custom"), NUL-terminated, truncated to len. */
void ripen__policy_spec(const struct ripen_policy *p, char *buf, size_t len);

uint64_t ripen__policy_key(const struct ripen_policy *p, const struct ripen_task_view *v,
			   uint64_t seq, uint64_t ref_ns, const _Atomic uint64_t *factors, bool *bad);

#endif
