/*
 * The adaptive controller's law: per-class objectives on a quantile of the
 * wait ("class 1: p95 <= 2 ms"), met by moving class weights and the aging
 * tau of a class-weighted linear-aging policy, score = w[class] * base *
 * (1 + wait / tau).
 *
 * One step per control period, from each objective's quantile over the
 * last window (measured / target = r):
 *
 *  - Weights. r > 1 (missing): the class's weight rises by (1 + step).
 *    r <= 1 - band (met with room): it falls by (1 + step)^2, twice as fast
 *    in log terms. In between it holds. Every weight stays in [w_min,
 *    w_max]. This is the shape of CockroachDB's elastic CPU controller
 *    (scheduler_latency_listener.go, see ../shared/OBSERVABILITY.md: the
 *    low-priority share drops by 2 delta when the latency is bad and rises
 *    by delta otherwise, clamped): slow to give a class more than it needs,
 *    quick to give it back, and the dead band [1 - band, 1] is where it
 *    settles instead of hunting. Only ratios of weights order tasks, so the
 *    clamps bound how far any class can be favoured over another (at the
 *    defaults 64 / (1/64) = 4096).
 *  - Tau. Aging (a short tau) lets long waiters of any class pass fresh
 *    tasks of a favoured one: it helps the objectives with loose targets at
 *    the expense of the tightest one. So when the most important missing
 *    objective is the tightest (smallest target) of those pursued, tau
 *    rises by (1 + step)^2 (less aging, back off fast); when it is another
 *    one, tau falls by (1 + step) (more aging, slowly). It holds while every
 *    objective is met. tau stays in [tau_min, tau_max].
 *  - Feasibility. An objective missing while its weight is already at
 *    w_max is stuck: its weight cannot help it any more. When one has been
 *    stuck for `patience` periods, the set is infeasible at this load, and
 *    the controller gives up the least important objective still pursued
 *    (not obj[0]): its weight drops to w_min and stays there, which frees
 *    the capacity it held for the ones above it. Once only obj[0] is
 *    pursued and it is still stuck, the least important given-up class
 *    that the user allowed to be shed is shed (the caller refuses its
 *    submits): shedding is the last resort and only where allowed. After
 *    `patience` periods in which every pursued objective has room, the last
 *    of these steps is undone (unshed first, then restore, the most
 *    important first), one per `patience` periods. At most one such event
 *    per step, and the stuck counts restart after each, so that the effect
 *    of one is seen before the next.
 *
 * No state but this struct: the same inputs give the same steps, so the
 * simulator's run of it is reproducible and its tests are exact.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "adapt-internal.h"

void ripen__adapt_default_params(struct ripen__adapt_params *p)
{
	p->w_min = 1.0 / 64.0;
	p->w_max = 64.0;
	p->tau_min_s = 0.01;
	p->tau_max_s = 100.0;
	p->tau0_s = 10.0;
	p->step = 0.1;
	p->band = 0.5;
	p->patience = 5;
}

static bool params_ok(const struct ripen__adapt_params *p)
{
	return isfinite(p->w_min) && isfinite(p->w_max) && p->w_min > 0 && p->w_min <= 1.0 &&
	       p->w_max >= 1.0 && isfinite(p->tau_min_s) && isfinite(p->tau_max_s) &&
	       p->tau_min_s > 0 && p->tau_min_s <= p->tau_max_s && p->tau0_s >= p->tau_min_s &&
	       p->tau0_s <= p->tau_max_s && p->step > 0 && p->step <= 1.0 && p->band >= 0 &&
	       p->band < 1.0 && p->patience >= 1;
}

int ripen__adapt_init(struct ripen__adapt *a, const struct ripen__adapt_params *p,
		      const struct ripen__adapt_objective *obj, size_t n)
{
	if (a == NULL || p == NULL || obj == NULL || n == 0 || n > RIPEN__ADAPT_MAX || !params_ok(p))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!(obj[i].quantile > 0 && obj[i].quantile < 1) || !isfinite(obj[i].target_s) ||
		    obj[i].target_s <= 0)
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (obj[j].class_id == obj[i].class_id)
				return -EINVAL;
	}
	memset(a, 0, sizeof(*a));
	a->p = *p;
	memcpy(a->obj, obj, n * sizeof(*obj));
	a->n = n;
	for (size_t i = 0; i < n; i++)
		a->w[i] = 1.0;
	a->tau_s = p->tau0_s;
	return 0;
}

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* The one give-up, shed or undo this step may take (stuck counts restart). */
static void escalate(struct ripen__adapt *a, bool any_stuck, struct ripen__adapt_out *out)
{
	if (any_stuck) {
		for (size_t k = a->n; k-- > 1;) {
			if (!a->given_up[k]) {
				a->given_up[k] = true;
				a->w[k] = a->p.w_min;
				out->event = RIPEN__ADAPT_GIVE_UP;
				out->which = k;
				out->changed = true;
				goto done;
			}
		}
		for (size_t k = a->n; k-- > 1;) {
			if (a->obj[k].may_shed && !a->shed[k]) {
				a->shed[k] = true;
				out->event = RIPEN__ADAPT_SHED;
				out->which = k;
				goto done;
			}
		}
		return; /* nothing left to give: obj[0] stays stuck */
	}
	if (a->comfy < a->p.patience)
		return;
	for (size_t k = 1; k < a->n; k++) {
		if (a->shed[k]) {
			a->shed[k] = false;
			out->event = RIPEN__ADAPT_UNSHED;
			out->which = k;
			goto done;
		}
	}
	for (size_t k = 1; k < a->n; k++) {
		if (a->given_up[k]) {
			a->given_up[k] = false;
			a->w[k] = clamp(1.0, a->p.w_min, a->p.w_max);
			out->event = RIPEN__ADAPT_RESTORE;
			out->which = k;
			out->changed = true;
			goto done;
		}
	}
	return;
done:
	for (size_t i = 0; i < a->n; i++)
		a->stuck[i] = 0;
	a->comfy = 0;
}

void ripen__adapt_step(struct ripen__adapt *a, const double *measured,
		       struct ripen__adapt_out *out)
{
	const double up = 1.0 + a->p.step, down = up * up;
	double r[RIPEN__ADAPT_MAX];
	size_t worst = SIZE_MAX, tightest = SIZE_MAX;
	bool any_stuck = false, all_comfy = true, any_data = false, was = a->infeasible;

	memset(out, 0, sizeof(*out));
	a->steps++;
	for (size_t i = 0; i < a->n; i++) {
		double w = a->w[i], nw = w;

		r[i] = measured[i] / a->obj[i].target_s; /* NaN stays NaN */
		if (a->given_up[i])
			continue;
		if (tightest == SIZE_MAX || a->obj[i].target_s < a->obj[tightest].target_s)
			tightest = i;
		if (isnan(r[i])) {
			a->stuck[i] = 0;
			continue;
		}
		any_data = true;
		if (r[i] > 1.0) {
			if (worst == SIZE_MAX)
				worst = i; /* the most important missing one */
			a->stuck[i] = w >= a->p.w_max ? a->stuck[i] + 1 : 0;
			nw = clamp(w * up, a->p.w_min, a->p.w_max);
		} else {
			a->stuck[i] = 0;
			if (r[i] <= 1.0 - a->p.band)
				nw = clamp(w / down, a->p.w_min, a->p.w_max);
		}
		if (r[i] > 1.0 - a->p.band)
			all_comfy = false;
		if (a->stuck[i] >= a->p.patience)
			any_stuck = true;
		if (nw != w) {
			a->w[i] = nw;
			out->changed = true;
		}
	}
	if (worst != SIZE_MAX) {
		double t = worst == tightest ? a->tau_s * down : a->tau_s / up;

		t = clamp(t, a->p.tau_min_s, a->p.tau_max_s);
		if (t != a->tau_s) {
			a->tau_s = t;
			out->changed = true;
		}
	}
	a->comfy = any_data && all_comfy ? a->comfy + 1 : 0;
	escalate(a, any_stuck, out);
	a->infeasible = false;
	for (size_t i = 0; i < a->n; i++)
		a->infeasible |= a->given_up[i] || a->shed[i] || a->stuck[i] >= a->p.patience;
	out->infeasible_changed = a->infeasible != was;
}

double ripen__adapt_weight(const struct ripen__adapt *a, uint32_t c)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->obj[i].class_id == c)
			return a->w[i];
	return 1.0;
}
