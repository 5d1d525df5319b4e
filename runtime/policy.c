/*
 * Scoring policies.
 *
 * A policy maps what is known about a queued task to a score (higher runs
 * first), and the score to the heap key (prioq-internal.h: a total order,
 * NaN lowest). Two kinds:
 *
 *  - order-stable: the relative order of two queued tasks never changes, so
 *    each is keyed once, when it enters a heap, and never again. FIFO
 *    (key = ~seq, exact to the nanosecond, no double rounding), static
 *    (base), EDF (key = ~deadline; no deadline sorts last), additive aging:
 *    base + wait/tau = base + (now - submit)/tau, and every queued task gains
 *    now/tau at the same rate, so the key base - submit/tau orders them the
 *    same at every instant (the "order-stable vs time-varying" split of the
 *    project's design notes, ../shared/DESIGN.md, outside this repository);
 *  - time-varying: linear aging base * (1 + wait/tau) (two lines of
 *    different slopes cross), custom scores that say so, and class weights
 *    over a time-varying inner policy. Their keys are computed at the pool's
 *    reference time, which the rebalancer advances each period, so all
 *    entries of all heaps compare at one instant (rebalance.c).
 *
 * Class weights multiply the base before the inner policy scores it: static
 * inner gives w * base, linear inner w * base * (1 + wait/tau). Class
 * scaling multiplies the inner policy's whole score instead: the same for
 * static and linear inners, but over additive aging it gives
 * w * (base + wait/tau), where a class's weight also scales how fast its
 * tasks age, so a light class stays below a heavy one instead of catching
 * up after (w_heavy - w_light) * base * tau of waiting. That is the form the
 * adaptive controller needs over additive aging (its "given up" class must
 * drop below the others, adapt.c), and it is time-varying: two tasks of
 * classes of different weights age at different rates, so their lines
 * cross. Linear aging gives a task of base 0 no aging at all, which is why
 * the controller offers both (watch.c).
 *
 * Linear aging is meant for non-negative bases: a negative base gets more
 * negative as it waits (that is the formula).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common-internal.h"
#include "fault-internal.h"
#include "policy-internal.h"
#include "prioq-internal.h"

RIPEN_TLS unsigned char ripen__in_callback;

static struct ripen_policy *policy_new(enum ripen__policy_kind kind)
{
	struct ripen_policy *p = RIPEN_FAULT(RIPEN_FAULT_POLICY_ALLOC) ? NULL :
				 calloc(1, sizeof(*p));

	if (p != NULL)
		p->kind = kind;
	return p;
}

struct ripen_policy *ripen_policy_fifo(void)
{
	return policy_new(RIPEN_POL_FIFO);
}

struct ripen_policy *ripen_policy_static(void)
{
	return policy_new(RIPEN_POL_STATIC);
}

static bool tau_ok(double tau_s)
{
	return isfinite(tau_s) && tau_s > 0 && tau_s * 1e9 >= 1.0;
}

struct ripen_policy *ripen_policy_linear_aging(double tau_s)
{
	struct ripen_policy *p;

	if (!tau_ok(tau_s) || (p = policy_new(RIPEN_POL_LINEAR)) == NULL)
		return NULL;
	p->tau_ns = tau_s * 1e9;
	p->time_varying = true;
	return p;
}

struct ripen_policy *ripen_policy_additive_aging(double tau_s)
{
	struct ripen_policy *p;

	if (!tau_ok(tau_s) || (p = policy_new(RIPEN_POL_ADDITIVE)) == NULL)
		return NULL;
	p->tau_ns = tau_s * 1e9;
	return p;
}

struct ripen_policy *ripen_policy_edf(void)
{
	return policy_new(RIPEN_POL_EDF);
}

struct ripen_policy *ripen_policy_class_weights(const double *w, size_t n,
						struct ripen_policy *inner)
{
	struct ripen_policy *p = NULL;

	if (w == NULL || n == 0 || inner == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(w[i]))
			goto fail;
	if ((p = policy_new(RIPEN_POL_CLASS_WEIGHTS)) == NULL)
		goto fail;
	if (RIPEN_FAULT(RIPEN_FAULT_POLICY_ALLOC) ||
	    (p->weights = malloc(n * sizeof(double))) == NULL)
		goto fail;
	memcpy(p->weights, w, n * sizeof(double));
	p->nweights = n;
	p->inner = inner;
	p->time_varying = inner->time_varying;
	return p;
fail:
	if (p != NULL)
		free(p->weights);
	free(p);
	ripen_policy_free(inner); /* owned by the callee, even on failure */
	return NULL;
}

struct ripen_policy *ripen_policy_class_scaled(const double *w, size_t n,
					       struct ripen_policy *inner)
{
	struct ripen_policy *p;

	if (inner != NULL && inner->kind != RIPEN_POL_STATIC && inner->kind != RIPEN_POL_LINEAR &&
	    inner->kind != RIPEN_POL_ADDITIVE && inner->kind != RIPEN_POL_CUSTOM) {
		ripen_policy_free(inner); /* no score to scale; owned by the callee */
		return NULL;
	}
	p = ripen_policy_class_weights(w, n, inner); /* the same checks; takes inner */
	if (p != NULL) {
		p->kind = RIPEN_POL_CLASS_SCALED;
		p->time_varying = p->inner->kind != RIPEN_POL_STATIC;
	}
	return p;
}

struct ripen_policy *ripen_policy_custom(ripen_score_fn *fn, void *policy_ctx, unsigned flags,
					 void (*ctx_free)(void *))
{
	struct ripen_policy *p;

	if (fn == NULL || (flags & ~RIPEN_POLICY_TIME_VARYING) != 0 ||
	    (p = policy_new(RIPEN_POL_CUSTOM)) == NULL)
		return NULL;
	p->fn = fn;
	p->ctx = policy_ctx;
	p->ctx_free = ctx_free;
	p->time_varying = (flags & RIPEN_POLICY_TIME_VARYING) != 0;
	return p;
}

void ripen_policy_free(struct ripen_policy *p)
{
	if (p == NULL)
		return;
	ripen_policy_free(p->inner);
	if (p->ctx_free != NULL)
		p->ctx_free(p->ctx);
	free(p->weights);
	free(p);
}

void ripen__policy_spec(const struct ripen_policy *p, char *buf, size_t len)
{
	int n = 0;

	if (len == 0)
		return;
	switch (p->kind) {
	case RIPEN_POL_FIFO: n = snprintf(buf, len, "fifo"); break;
	case RIPEN_POL_STATIC: n = snprintf(buf, len, "static"); break;
	case RIPEN_POL_LINEAR: n = snprintf(buf, len, "linear:%.9g", p->tau_ns / 1e9); break;
	case RIPEN_POL_ADDITIVE: n = snprintf(buf, len, "additive:%.9g", p->tau_ns / 1e9); break;
	case RIPEN_POL_EDF: n = snprintf(buf, len, "edf"); break;
	case RIPEN_POL_CUSTOM: n = snprintf(buf, len, "custom"); break;
	case RIPEN_POL_CLASS_WEIGHTS:
	case RIPEN_POL_CLASS_SCALED:
		n = snprintf(buf, len, p->kind == RIPEN_POL_CLASS_WEIGHTS ? "weights:" : "scaled:");
		for (size_t i = 0; i < p->nweights && n >= 0 && (size_t)n < len; i++)
			n += snprintf(buf + n, len - (size_t)n, "%s%.9g", i ? "," : "", p->weights[i]);
		if (n >= 0 && (size_t)n < len) {
			n += snprintf(buf + n, len - (size_t)n, ":");
			if ((size_t)n < len)
				ripen__policy_spec(p->inner, buf + n, len - (size_t)n);
		}
		return;
	}
	(void)n;
}

/* A custom policy's score, with the callback mark set around the call. */
static double custom_score(const struct ripen_policy *p, const struct ripen_task_view *v,
			   uint64_t ref_ns)
{
	unsigned char outer = ripen__in_callback;
	double s;

	ripen__in_callback = RIPEN_CB_SCORE;
	s = p->fn(v, ref_ns, p->ctx);
	ripen__in_callback = outer;
	return s;
}

/* The score of an inner policy of class scaling at ref_ns (the kinds the
 * constructor admits). */
static double scaled_inner_score(const struct ripen_policy *p, const struct ripen_task_view *v,
				 uint64_t ref_ns)
{
	double wait = ref_ns > v->submit_ns ? (double)(ref_ns - v->submit_ns) : 0.0;

	switch (p->kind) {
	case RIPEN_POL_STATIC:
		return v->base;
	case RIPEN_POL_LINEAR:
		return v->base * (1.0 + wait / p->tau_ns);
	case RIPEN_POL_ADDITIVE:
		return v->base + wait / p->tau_ns;
	case RIPEN_POL_CUSTOM:
		return custom_score(p, v, ref_ns);
	default:
		RIPEN_DIE("class scaling over policy kind %d", (int)p->kind);
	}
}

uint64_t ripen__policy_key(const struct ripen_policy *p, const struct ripen_task_view *v,
			   uint64_t seq, uint64_t ref_ns, const _Atomic uint64_t *factors, bool *bad)
{
	double wait;

	switch (p->kind) {
	case RIPEN_POL_FIFO:
		return ~seq;
	case RIPEN_POL_STATIC:
		return ripen__score_key(v->base);
	case RIPEN_POL_LINEAR:
		wait = ref_ns > v->submit_ns ? (double)(ref_ns - v->submit_ns) : 0.0;
		return ripen__score_key(v->base * (1.0 + wait / p->tau_ns));
	case RIPEN_POL_ADDITIVE:
		return ripen__score_key(v->base - (double)v->submit_ns / p->tau_ns);
	case RIPEN_POL_EDF:
		/* no deadline: the lowest key; the farthest deadlines (the last
		 * two nanoseconds of the clock) share the one above it */
		if (v->deadline_ns == 0)
			return RIPEN_KEY_LOWEST;
		return ~v->deadline_ns > RIPEN_KEY_LOWEST ? ~v->deadline_ns : RIPEN_KEY_LOWEST + 1;
	case RIPEN_POL_CLASS_WEIGHTS: {
		struct ripen_task_view w = *v;

		if (v->class_id < p->nweights)
			w.base = v->base * p->weights[v->class_id];
		if (factors != NULL)
			w.base *= ripen__class_factor(factors, v->class_id);
		return ripen__policy_key(p->inner, &w, seq, ref_ns, NULL, bad);
	}
	case RIPEN_POL_CLASS_SCALED: {
		double s = scaled_inner_score(p->inner, v, ref_ns);

		if (v->class_id < p->nweights)
			s *= p->weights[v->class_id];
		if (factors != NULL)
			s *= ripen__class_factor(factors, v->class_id);
		if (!isfinite(s)) {
			*bad = true; /* a NaN or overflowing score: lowest, counted */
			return RIPEN_KEY_LOWEST;
		}
		return ripen__score_key(s);
	}
	case RIPEN_POL_CUSTOM: {
		double s = custom_score(p, v, ref_ns);

		if (!isfinite(s)) {
			*bad = true;
			return RIPEN_KEY_LOWEST; /* lowest, yet runnable and stealable */
		}
		return ripen__score_key(s);
	}
	}
	RIPEN_DIE("unknown policy kind %d", (int)p->kind);
}
