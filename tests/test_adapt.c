/*
 * The adaptive controller's law (runtime/adapt.c) under synthetic feeds of
 * measured quantiles: every step within its bound, clamps held, each move
 * in the direction the law says, the dead band still, and under a load
 * that cannot be met the objectives given up least important first, shed
 * only where allowed, and restored in the reverse order.
 */
#include <errno.h>
#include <math.h>

#include "adapt-internal.h"
#include "check.h"
#include "ripen.h"

static const struct ripen__adapt_objective three[] = {
	{ .class_id = 1, .quantile = 0.95, .target_s = 0.002 },		/* vip */
	{ .class_id = 2, .quantile = 0.95, .target_s = 0.050 },		/* normal */
	{ .class_id = 3, .quantile = 0.99, .target_s = 5.0, .may_shed = true }, /* batch */
};

static void init3(struct ripen__adapt *a)
{
	struct ripen__adapt_params p;

	ripen__adapt_default_params(&p);
	CHECK_OK(ripen__adapt_init(a, &p, three, 3));
}

/* Every change of one step is within the law's bounds and clamps. */
static void check_bounded(const struct ripen__adapt *before, const struct ripen__adapt *after,
			  const struct ripen__adapt_out *out)
{
	const double up = 1.0 + after->p.step, eps = 1e-12;

	for (size_t i = 0; i < after->n; i++) {
		double f = after->w[i] / before->w[i];

		CHECK(after->w[i] >= after->p.w_min - eps && after->w[i] <= after->p.w_max + eps);
		/* a give-up drops a weight to w_min, a restore sets 1: else
		 * at most one raise or one double back-off */
		if (out->event != RIPEN__ADAPT_NONE && out->which == i)
			continue;
		CHECK(f <= up + eps && f >= 1.0 / (up * up) - eps);
	}
	CHECK(after->tau_s >= after->p.tau_min_s - eps && after->tau_s <= after->p.tau_max_s + eps);
	CHECK(after->tau_s / before->tau_s <= up * up + eps);
	CHECK(after->tau_s / before->tau_s >= 1.0 / up - eps);
}

static void step(struct ripen__adapt *a, double m0, double m1, double m2, struct ripen__adapt_out *out)
{
	const double m[3] = { m0, m1, m2 };
	struct ripen__adapt before = *a;

	ripen__adapt_step(a, m, out);
	check_bounded(&before, a, out);
}

static void bad_parameters_are_refused(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_params p;
	struct ripen__adapt_objective o[2] = { three[0], three[1] };

	ripen__adapt_default_params(&p);
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 0), -EINVAL);
	CHECK_EQ(ripen__adapt_init(&a, &p, o, RIPEN__ADAPT_MAX + 1), -EINVAL);
	o[1].class_id = o[0].class_id;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL); /* one class twice */
	o[1] = three[1];
	o[1].quantile = 1.0;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	o[1].quantile = 0.5;
	o[1].target_s = NAN;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	o[1].target_s = 0;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	o[1].target_s = 1;
	p.step = 0;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	ripen__adapt_default_params(&p);
	p.w_min = 2.0; /* above 1 */
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	ripen__adapt_default_params(&p);
	p.tau0_s = p.tau_max_s * 2;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	ripen__adapt_default_params(&p);
	p.band = 1.0;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	ripen__adapt_default_params(&p);
	p.patience = 0;
	CHECK_EQ(ripen__adapt_init(&a, &p, o, 2), -EINVAL);
	ripen__adapt_default_params(&p);
	CHECK_OK(ripen__adapt_init(&a, &p, o, 2));
	CHECK(a.w[0] == 1.0 && a.w[1] == 1.0 && a.tau_s == p.tau0_s);
	CHECK(ripen__adapt_weight(&a, 77) == 1.0); /* no objective: neutral */
}

/* A missing objective's weight rises by exactly (1 + step) a period; one
 * met with room falls by (1 + step)^2; in the band it holds; NaN holds. */
static void each_step_moves_the_way_the_law_says(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	const double up = 1.1;

	init3(&a);
	step(&a, 0.004, 0.040, NAN, &out); /* vip misses; normal in the band; batch no data */
	CHECK(out.changed);
	CHECK(fabs(a.w[0] - up) < 1e-12);
	CHECK(a.w[1] == 1.0);
	CHECK(a.w[2] == 1.0);
	/* the tightest objective misses: less aging, twice as fast */
	CHECK(fabs(a.tau_s - 10.0 * up * up) < 1e-9);
	step(&a, 0.0005, 0.010, 1.0, &out); /* all met with room */
	CHECK(fabs(a.w[0] - up / (up * up)) < 1e-12);
	CHECK(fabs(a.w[1] - 1.0 / (up * up)) < 1e-12);
	CHECK(fabs(a.w[2] - 1.0 / (up * up)) < 1e-12);
	CHECK(fabs(a.tau_s - 10.0 * up * up) < 1e-9); /* tau holds while all are met */
	/* a looser objective misses while the tightest has room: more
	 * aging, slowly; its weight rises */
	{
		double w2 = a.w[2], tau = a.tau_s;

		step(&a, 0.0005, 0.010, 7.0, &out);
		CHECK(fabs(a.w[2] - w2 * up) < 1e-12);
		CHECK(fabs(a.tau_s - tau / up) < 1e-9);
	}
	/* in the dead band nothing moves, not even tau */
	{
		struct ripen__adapt b = a;

		step(&a, 0.0015, 0.030, 3.0, &out);
		CHECK(!out.changed);
		CHECK(memcmp(b.w, a.w, sizeof(a.w)) == 0 && b.tau_s == a.tau_s);
		step(&a, NAN, NAN, NAN, &out);
		CHECK(!out.changed && !out.infeasible_changed && out.event == RIPEN__ADAPT_NONE);
	}
}

/* Long runs each way end at the clamps and stay there; a steady band
 * input never moves anything (no oscillation from a steady state). */
static void clamps_hold_and_steady_input_settles(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;

	init3(&a);
	for (int i = 0; i < 1000; i++)
		step(&a, 0.0001, 0.0001, 0.0001, &out); /* all far below */
	CHECK(a.w[0] == a.p.w_min && a.w[1] == a.p.w_min && a.w[2] == a.p.w_min);
	CHECK(!a.infeasible);
	init3(&a);
	for (int i = 0; i < 1000; i++)
		step(&a, 1.0, 0.0001, 0.0001, &out); /* vip misses hugely, forever */
	CHECK(a.w[0] == a.p.w_max);
	CHECK(a.tau_s == a.p.tau_max_s);
	for (int i = 0; i < 1000; i++)
		step(&a, 0.0001, 0.0001, 100.0, &out); /* only batch misses */
	CHECK(a.tau_s == a.p.tau_min_s);
	/* from any state, an input held in the band freezes it */
	{
		struct ripen__adapt b;

		step(&a, 0.0015, 0.030, 3.0, &out);
		b = a;
		for (int i = 0; i < 100; i++) {
			step(&a, 0.0015, 0.030, 3.0, &out);
			CHECK(!out.changed);
		}
		CHECK(memcmp(b.w, a.w, sizeof(a.w)) == 0 && b.tau_s == a.tau_s);
	}
}

/*
 * Overload nothing can fix: every objective misses forever. The weights
 * climb to w_max; `patience` periods later the set is infeasible and the
 * least important objective (batch) is given up; `patience` more and
 * normal is; then batch, which allows it, is shed; normal, which does not,
 * never is; obj[0] is never given up. Then room everywhere undoes it all in
 * the reverse order, one step per `patience` periods.
 */
static void overload_gives_up_least_important_first(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	int events = 0, t;
	enum ripen__adapt_event seen[8];
	size_t which[8];

	init3(&a);
	for (t = 0; t < 2000 && events < 8; t++) {
		step(&a, 1.0, 1.0, 100.0, &out);
		if (out.event != RIPEN__ADAPT_NONE) {
			seen[events] = out.event;
			which[events++] = out.which;
		}
		CHECK(!a.given_up[0] && !a.shed[0]);
		CHECK(!a.shed[1]); /* normal does not allow shedding */
	}
	CHECK_EQ(events, 3); /* batch given up, normal given up, batch shed: then nothing */
	CHECK(seen[0] == RIPEN__ADAPT_GIVE_UP && which[0] == 2);
	CHECK(seen[1] == RIPEN__ADAPT_GIVE_UP && which[1] == 1);
	CHECK(seen[2] == RIPEN__ADAPT_SHED && which[2] == 2);
	CHECK(a.infeasible);
	CHECK(a.w[1] == a.p.w_min && a.w[2] == a.p.w_min && a.w[0] == a.p.w_max);

	/* the first give-up waits for w_max (ln 64 / ln 1.1 = 44 raises) and
	 * then `patience` stuck periods */
	init3(&a);
	for (t = 1; t < 200; t++) {
		step(&a, 1.0, 1.0, 100.0, &out);
		if (out.event != RIPEN__ADAPT_NONE)
			break;
		CHECK(!out.infeasible_changed || t > 44);
	}
	CHECK(out.event == RIPEN__ADAPT_GIVE_UP && out.which == 2);
	CHECK_EQ(t, 44 + (int)a.p.patience);
	/* ... and the set was declared infeasible one step later than stuck began */
	CHECK(a.infeasible);

	/* recovery: unshed batch, restore normal, restore batch */
	init3(&a);
	for (t = 0; t < 2000; t++)
		step(&a, 1.0, 1.0, 100.0, &out);
	events = 0;
	for (t = 0; t < 2000 && events < 8; t++) {
		step(&a, 0.0001, 0.0001, 0.0001, &out);
		if (out.event != RIPEN__ADAPT_NONE) {
			seen[events] = out.event;
			which[events++] = out.which;
		}
	}
	CHECK_EQ(events, 3);
	CHECK(seen[0] == RIPEN__ADAPT_UNSHED && which[0] == 2);
	CHECK(seen[1] == RIPEN__ADAPT_RESTORE && which[1] == 1);
	CHECK(seen[2] == RIPEN__ADAPT_RESTORE && which[2] == 2);
	CHECK(!a.infeasible);
}

/* A set that only the less important objectives break: giving up the one
 * that misses is what clears the stuck state, and the vip objective,
 * which is met, keeps being pursued. */
static void only_the_missing_side_is_given_up(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	int t;

	init3(&a);
	for (t = 0; t < 500; t++) {
		step(&a, 0.0015, 0.030, 100.0, &out); /* vip, normal in band; batch misses */
		if (out.event != RIPEN__ADAPT_NONE)
			break;
	}
	CHECK(out.event == RIPEN__ADAPT_GIVE_UP && out.which == 2);
	CHECK(!a.given_up[0] && !a.given_up[1]);
	for (t = 0; t < 500; t++) {
		step(&a, 0.0015, 0.030, 100.0, &out);
		CHECK(out.event == RIPEN__ADAPT_NONE || out.event == RIPEN__ADAPT_SHED);
	}
	CHECK(!a.given_up[1]); /* never given up while it meets its objective */
}

TEST_MAIN(T(bad_parameters_are_refused), T(each_step_moves_the_way_the_law_says),
	  T(clamps_hold_and_steady_input_settles), T(overload_gives_up_least_important_first),
	  T(only_the_missing_side_is_given_up))
