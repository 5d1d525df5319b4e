/*
 * The adaptive controller's law: per-class objectives on a quantile of the
 * wait ("class 1: p95 <= 2 ms"), met by moving class weights and the aging
 * tau of a class-weighted linear-aging policy, score = w[class] * base *
 * (1 + wait / tau).
 *
 * One step per control period, from each objective's quantile over the
 * last window (measured / target = r):
 *
 *  - Weights. Only the most important missing objective (r > 1) gains:
 *    its class's weight rises by (1 + step). Every objective met with room
 *    (r <= 1 - band) gives back: its weight falls by (1 + step)^2, twice as
 *    fast in log terms. The rest hold: those in the dead band (1 - band,
 *    1], and less important objectives that miss while a more important
 *    one does (they wait their turn: the objectives are protected in
 *    priority order). No pursued class may weigh more than a more important
 *    one: a less important class is helped up to the weight of the one
 *    above it, and beyond that only by aging, never by inverting the
 *    order the user gave (an earlier version let a missing batch class
 *    climb over a comfortable vip one, and at 120% load on examples/httpd
 *    the vip class then starved for seconds until it climbed back). Only
 *    the ratios of weights order tasks, so after each step the weights are
 *    scaled so that the most favoured class weighs 1,
 *    and no pursued one falls below w_min (1/64 at the default): a class
 *    met with room gives back, but not so far that it sinks among the
 *    given-up ones, which weigh w_min / RIPEN__ADAPT_GAP (1/4096). This is the shape of CockroachDB's
 *    elastic CPU controller (scheduler_latency_listener.go, see
 *    ../shared/OBSERVABILITY.md: the low-priority share drops by 2 delta
 *    when the latency is bad and rises by delta otherwise, clamped): slow
 *    to give a class more than it needs, quick to give it back, and the
 *    dead band is where it settles instead of hunting.
 *  - Tau. Aging (a short tau) lets long waiters of any class pass fresh
 *    tasks of a favoured one, and the longest waiters are the least
 *    favoured class's. So when the most important missing objective is the
 *    least important one pursued, and nothing has been given up (a given-up
 *    class waits longest of all), tau falls by (1 + step): more aging,
 *    slowly. When any other objective misses, tau rises by (1 + step)^2:
 *    less aging, backed off fast. It holds while every objective is met.
 *    tau stays in [tau_min, tau_max].
 *  - Feasibility. An objective is stuck while it misses and the weights
 *    cannot help it: it weighs as much as the objective above it (for the
 *    first: every other pursued class is at w_min), or it waits behind a
 *    more important missing objective (while its weight can still climb,
 *    it is not). One stuck for `patience` periods in a row makes the
 *    set infeasible at this load: the controller
 *    gives up the least important objective still pursued (never obj[0]):
 *    its weight drops below every pursued one and stays there, which frees
 *    the capacity it held for the ones above it. Once only obj[0] is pursued and one is
 *    still stuck, the least important given-up class that the user
 *    allowed to be shed is shed (the caller refuses its submits): shedding
 *    is the last resort and only where allowed. The last of these steps is
 *    undone (unshed first, then restore, the most important first, from
 *    w_min: it climbs again only if it misses), one per `patience` periods,
 *    after `patience` periods in which every pursued objective had room,
 *    or in which every pursued objective was met and so was the one to be
 *    taken back (its backlog drained: the load went down).
 *    At most one such event per step, and the counts restart after each,
 *    so that the effect of one is seen before the next. A transient miss
 *    longer than `patience` periods (a burst) also gives an objective up
 *    for a while: patience trades reaction time for that.
 *
 * No state but this struct: the same inputs give the same steps, so the
 * simulator's run of it is reproducible and its tests are exact.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "adapt-internal.h"
#include "ripen.h"

void ripen__adapt_default_params(struct ripen__adapt_params *p)
{
	p->w_min = 1.0 / 64.0;
	p->tau_min_s = 0.01;
	p->tau_max_s = 100.0;
	p->tau0_s = 10.0;
	p->step = 0.1;
	p->band = 0.5;
	p->patience = 10;
}

static bool params_ok(const struct ripen__adapt_params *p)
{
	return isfinite(p->w_min) && p->w_min > 0 && p->w_min <= 1.0 && isfinite(p->tau_min_s) && isfinite(p->tau_max_s) &&
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

/* The objective the next undo would take back: the first shed one, else
 * the first given up (the reverse of their order); SIZE_MAX: none. */
static size_t undo_candidate(const struct ripen__adapt *a)
{
	for (size_t k = 1; k < a->n; k++)
		if (a->shed[k])
			return k;
	for (size_t k = 1; k < a->n; k++)
		if (a->given_up[k])
			return k;
	return SIZE_MAX;
}

/* The one give-up, shed or undo this step may take (stuck counts restart). */
static void escalate(struct ripen__adapt *a, bool any_stuck, struct ripen__adapt_out *out)
{
	if (any_stuck) {
		for (size_t k = a->n; k-- > 1;) {
			if (!a->given_up[k]) {
				a->given_up[k] = true;
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
	if (a->comfy < a->p.patience && a->calm < a->p.patience)
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
			a->given_up[k] = false; /* from w_min: it climbs if it misses */
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
	a->calm = 0;
}

/* Raising i would still move a ratio: for the first pursued objective,
 * some other pursued class weighs more than w_min; for any other, it
 * weighs less than the pursued objective above it (its cap). */
static bool can_gain(const struct ripen__adapt *a, size_t i, const double *w)
{
	for (size_t j = i; j-- > 0;)
		if (!a->given_up[j])
			return w[i] < w[j];
	for (size_t j = 0; j < a->n; j++)
		if (j != i && !a->given_up[j] && w[j] > a->p.w_min)
			return true;
	return false;
}

void ripen__adapt_step(struct ripen__adapt *a, const double *measured,
		       struct ripen__adapt_out *out)
{
	const double up = 1.0 + a->p.step, down = up * up;
	double r[RIPEN__ADAPT_MAX], old[RIPEN__ADAPT_MAX], top = 0;
	size_t worst = SIZE_MAX, last = SIZE_MAX;
	bool any_stuck = false, all_comfy = true, all_met = true, any_data = false;
	bool any_given_up = false;
	size_t undo;
	bool was = a->infeasible;

	memset(out, 0, sizeof(*out));
	a->steps++;
	memcpy(old, a->w, sizeof(old));
	for (size_t i = 0; i < a->n; i++) {
		r[i] = measured[i] / a->obj[i].target_s; /* NaN stays NaN */
		if (a->given_up[i]) {
			any_given_up = true;
			continue;
		}
		last = i; /* the least important pursued */
		if (worst == SIZE_MAX && r[i] > 1.0)
			worst = i; /* the most important missing one */
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->given_up[i])
			continue;
		if (isnan(r[i])) {
			a->stuck[i] = 0;
			continue;
		}
		any_data = true;
		/* stuck: missing, and the law cannot help it now (it waits
		 * behind a more important missing objective, or every other
		 * pursued class is at w_min already); while its weight can
		 * still climb against another's it is not */
		if (r[i] <= 1.0)
			a->stuck[i] = 0;
		else if (i != worst || !can_gain(a, i, old))
			a->stuck[i]++;
		if (i == worst)
			a->w[i] *= up; /* only the most important missing one gains */
		else if (r[i] <= 1.0 - a->p.band)
			a->w[i] /= down;
		if (r[i] > 1.0 - a->p.band)
			all_comfy = false;
		if (r[i] > 1.0)
			all_met = false;
		if (a->stuck[i] >= a->p.patience)
			any_stuck = true;
	}
	if (worst != SIZE_MAX) {
		/* aging helps the longest waiters: the least favoured class's */
		double t = worst == last && !any_given_up ? a->tau_s / up : a->tau_s * down;

		t = clamp(t, a->p.tau_min_s, a->p.tau_max_s);
		if (t != a->tau_s) {
			a->tau_s = t;
			out->changed = true;
		}
	}
	a->comfy = any_data && all_comfy ? a->comfy + 1 : 0;
	/* calm: every pursued objective met and the one to take back met
	 * too (a shed class has nothing queued to measure: NaN will do) */
	undo = undo_candidate(a);
	a->calm = any_data && all_met && undo != SIZE_MAX &&
			  (r[undo] <= 1.0 || (a->shed[undo] && isnan(r[undo])))
		  ? a->calm + 1
		  : 0;
	escalate(a, any_stuck, out);
	/* the priority order holds in the weights: no pursued class weighs
	 * more than a more important one */
	for (size_t i = 0, prev = SIZE_MAX; i < a->n; i++) {
		if (a->given_up[i])
			continue;
		if (prev != SIZE_MAX && a->w[i] > a->w[prev])
			a->w[i] = a->w[prev];
		prev = i;
	}
	/* only ratios order tasks: the most favoured class weighs 1 */
	for (size_t i = 0; i < a->n; i++)
		if (!a->given_up[i] && a->w[i] > top)
			top = a->w[i];
	for (size_t i = 0; i < a->n; i++) {
		a->w[i] = a->given_up[i] ? a->p.w_min / RIPEN__ADAPT_GAP
					 : clamp(a->w[i] / top, a->p.w_min, 1.0);
		out->changed |= a->w[i] != old[i];
	}
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

struct ripen_policy *ripen__adapt_policy(unsigned aging, const double *w, size_t n, double tau_s)
{
	struct ripen_policy *inner;

	switch (aging) {
	case RIPEN_AGING_LINEAR:
		inner = ripen_policy_linear_aging(tau_s);
		return inner ? ripen_policy_class_weights(w, n, inner) : NULL; /* takes inner */
	case RIPEN_AGING_ADDITIVE:
		inner = ripen_policy_additive_aging(tau_s);
		return inner ? ripen_policy_class_scaled(w, n, inner) : NULL; /* takes inner */
	default:
		return NULL;
	}
}
