/*
 * The adaptive policy in the simulator: runtime/adapt.c's control law,
 * fed from the simulated starts, driving a class-weighted linear-aging
 * policy, score = w[class] * base * (1 + wait / tau), or (aging
 * RIPEN_AGING_ADDITIVE) a class-scaled additive one, score = w[class] *
 * (base + wait / tau): the two forms of ripen_pool_adapt.
 *
 * Measurement. At each control instant t, objective i's measured value is
 * the quantile q_i (nearest rank) of the waits of its class's tasks that
 * started in (t - window, t], raised to the age of the class's oldest task
 * still queued at t when that is larger: a task that has already waited
 * past the target is a miss now, not only once it starts, so a class that
 * is starved (no starts, so no samples) is seen missing. NaN when the
 * window holds no start and nothing of the class is queued.
 *
 * Each step whose weights or tau moved builds the new policy
 * (ripen__adapt_policy, as the pool does) and hands it
 * to the simulator, which re-keys its queue. Every step is written to the
 * control log when one is given (CSV: t_s, tau_s, then per objective its
 * weight and measured value, then infeasible and the step's event).
 *
 * The simulator never sheds: objectives here do not allow it, so the law
 * gives objectives up but never asks for shedding.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptive.h"

struct obj_track {
	uint64_t *start_ns, *wait_ns;	/* the class's starts, in start order */
	size_t nstart, lo;		/* lo: the first inside the window */
	size_t *arrivals;		/* the class's tasks, in arrival order */
	size_t narr, oldest;		/* oldest: the first not yet started */
};

struct rr_adaptive {
	const struct rr_task *t;
	size_t n;
	struct ripen__adapt law;
	struct obj_track tr[RIPEN__ADAPT_MAX];
	uint32_t max_class;
	unsigned aging;			/* RIPEN_AGING_* */
	uint64_t window_ns;
	bool *started;
	uint64_t *scratch;
	size_t scratch_cap;
	struct ripen_policy *cur;
	FILE *log;
	struct rr_adaptive_stats st;
	int err;
};

static const char *event_name(enum ripen__adapt_event e)
{
	switch (e) {
	case RIPEN__ADAPT_GIVE_UP:
		return "give_up";
	case RIPEN__ADAPT_SHED:
		return "shed";
	case RIPEN__ADAPT_UNSHED:
		return "unshed";
	case RIPEN__ADAPT_RESTORE:
		return "restore";
	default:
		return "";
	}
}

static struct ripen_policy *build(struct rr_adaptive *a)
{
	size_t n = (size_t)a->max_class + 1;
	double *w = malloc(n * sizeof(*w));
	struct ripen_policy *p;

	if (w == NULL)
		return NULL;
	for (size_t c = 0; c < n; c++)
		w[c] = ripen__adapt_weight(&a->law, (uint32_t)c);
	p = ripen__adapt_policy(a->aging, w, n, a->law.tau_s);
	free(w);
	return p;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static double measure(struct rr_adaptive *a, size_t i, uint64_t now)
{
	struct obj_track *tr = &a->tr[i];
	uint64_t lo_ns = now > a->window_ns ? now - a->window_ns : 0;
	double m = NAN;
	size_t k;

	while (tr->lo < tr->nstart && tr->start_ns[tr->lo] <= lo_ns && now >= a->window_ns)
		tr->lo++;
	k = tr->nstart - tr->lo;
	if (k > 0) {
		size_t rank;

		if (k > a->scratch_cap) {
			uint64_t *s = realloc(a->scratch, k * sizeof(*s));

			if (s == NULL) {
				a->err = -ENOMEM;
				return NAN;
			}
			a->scratch = s;
			a->scratch_cap = k;
		}
		memcpy(a->scratch, tr->wait_ns + tr->lo, k * sizeof(*a->scratch));
		qsort(a->scratch, k, sizeof(*a->scratch), cmp_u64);
		rank = (size_t)ceil(a->law.obj[i].quantile * (double)k);
		m = (double)a->scratch[(rank ? rank : 1) - 1] / 1e9;
	}
	while (tr->oldest < tr->narr && a->started[tr->arrivals[tr->oldest]])
		tr->oldest++;
	if (tr->oldest < tr->narr && a->t[tr->arrivals[tr->oldest]].arrival_ns <= now) {
		double age = (double)(now - a->t[tr->arrivals[tr->oldest]].arrival_ns) / 1e9;

		if (isnan(m) || age > m)
			m = age;
	}
	return m;
}

static const struct ripen_policy *step_cb(void *ctx, uint64_t now)
{
	struct rr_adaptive *a = ctx;
	double m[RIPEN__ADAPT_MAX];
	struct ripen__adapt_out out;
	struct ripen_policy *np;

	if (a->err)
		return NULL;
	for (size_t i = 0; i < a->law.n; i++)
		m[i] = measure(a, i, now);
	ripen__adapt_step(&a->law, m, &out);
	a->st.steps++;
	a->st.infeasible_steps += a->law.infeasible;
	a->st.events += out.event != RIPEN__ADAPT_NONE;
	if (a->log) {
		fprintf(a->log, "%.6f,%.9g", (double)now / 1e9, a->law.tau_s);
		for (size_t i = 0; i < a->law.n; i++)
			fprintf(a->log, ",%.9g,%.9g", a->law.w[i], m[i]);
		fprintf(a->log, ",%d,", a->law.infeasible);
		if (out.event != RIPEN__ADAPT_NONE)
			fprintf(a->log, "%s:class%u", event_name(out.event),
				(unsigned)a->law.obj[out.which].class_id);
		fputc('\n', a->log);
	}
	if (!out.changed)
		return NULL;
	np = build(a);
	if (np == NULL) {
		a->err = -ENOMEM;
		return NULL;
	}
	a->st.changes++;
	ripen_policy_free(a->cur); /* the simulator drops it for np */
	a->cur = np;
	return np;
}

static void start_cb(void *ctx, size_t seq, uint64_t now)
{
	struct rr_adaptive *a = ctx;
	const struct rr_task *t = &a->t[seq];

	a->started[seq] = true;
	for (size_t i = 0; i < a->law.n; i++) {
		if (a->law.obj[i].class_id == t->class_id) {
			struct obj_track *tr = &a->tr[i];

			tr->start_ns[tr->nstart] = now;
			tr->wait_ns[tr->nstart++] = now - t->arrival_ns;
			break;
		}
	}
}

int rr_adaptive_new(const struct rr_task *t, size_t n, const struct ripen__adapt_objective *obj,
		    size_t nobj, const struct ripen__adapt_params *params, unsigned aging,
		    uint64_t period_ns, unsigned window_periods, FILE *log,
		    struct rr_adaptive **out, struct rr_control *ctl)
{
	struct rr_adaptive *a = calloc(1, sizeof(*a));
	int rc;

	if (a == NULL)
		return -ENOMEM;
	rc = ripen__adapt_init(&a->law, params, obj, nobj);
	if (rc != 0 || period_ns == 0 || window_periods == 0 ||
	    (aging != RIPEN_AGING_LINEAR && aging != RIPEN_AGING_ADDITIVE)) {
		free(a);
		return -EINVAL;
	}
	a->t = t;
	a->n = n;
	a->aging = aging;
	a->window_ns = period_ns * window_periods;
	a->log = log;
	a->started = calloc(n ? n : 1, sizeof(*a->started));
	if (a->started == NULL)
		goto nomem;
	for (size_t i = 0; i < nobj; i++) {
		size_t k = 0;

		if (obj[i].class_id > a->max_class)
			a->max_class = obj[i].class_id;
		for (size_t j = 0; j < n; j++)
			k += t[j].class_id == obj[i].class_id;
		a->tr[i].start_ns = malloc((k ? k : 1) * sizeof(uint64_t));
		a->tr[i].wait_ns = malloc((k ? k : 1) * sizeof(uint64_t));
		a->tr[i].arrivals = malloc((k ? k : 1) * sizeof(size_t));
		if (!a->tr[i].start_ns || !a->tr[i].wait_ns || !a->tr[i].arrivals)
			goto nomem;
		for (size_t j = 0; j < n; j++)
			if (t[j].class_id == obj[i].class_id)
				a->tr[i].arrivals[a->tr[i].narr++] = j;
	}
	a->cur = build(a);
	if (a->cur == NULL)
		goto nomem;
	if (log) {
		fprintf(log, "t_s,tau_s");
		for (size_t i = 0; i < nobj; i++)
			fprintf(log, ",w_class%u,measured_class%u_s", (unsigned)obj[i].class_id,
				(unsigned)obj[i].class_id);
		fprintf(log, ",infeasible,event\n");
	}
	ctl->period_ns = period_ns;
	ctl->step = step_cb;
	ctl->on_start = start_cb;
	ctl->ctx = a;
	*out = a;
	return 0;
nomem:
	rr_adaptive_free(a);
	return -ENOMEM;
}

const struct ripen_policy *rr_adaptive_policy(const struct rr_adaptive *a)
{
	return a->cur;
}

int rr_adaptive_finish(const struct rr_adaptive *a, struct rr_adaptive_stats *st)
{
	*st = a->st;
	st->tau_s = a->law.tau_s;
	st->infeasible = a->law.infeasible;
	for (size_t i = 0; i < a->law.n; i++) {
		st->w[i] = a->law.w[i];
		st->given_up[i] = a->law.given_up[i];
	}
	return a->err;
}

void rr_adaptive_free(struct rr_adaptive *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < RIPEN__ADAPT_MAX; i++) {
		free(a->tr[i].start_ns);
		free(a->tr[i].wait_ns);
		free(a->tr[i].arrivals);
	}
	free(a->started);
	free(a->scratch);
	ripen_policy_free(a->cur);
	free(a);
}
