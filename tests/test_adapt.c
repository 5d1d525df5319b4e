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

static void init3p(struct ripen__adapt *a, unsigned patience)
{
	struct ripen__adapt_params p;

	ripen__adapt_default_params(&p);
	p.patience = patience;
	CHECK_OK(ripen__adapt_init(a, &p, three, 3));
}

static void init3(struct ripen__adapt *a)
{
	init3p(a, 10);
}

/* Every change of one step is within the law's bounds and clamps: the
 * most favoured class weighs 1, none less than w_min, a ratio of two
 * weights moves by at most (1 + step)^3 (one raise against one back-off),
 * tau by at most (1 + step)^2 up or (1 + step) down. */
static void check_bounded(const struct ripen__adapt *before, const struct ripen__adapt *after,
			  const struct ripen__adapt_out *out)
{
	const double up = 1.0 + after->p.step, eps = 1e-9;
	double top = 0;

	for (size_t i = 0; i < after->n; i++) {
		if (after->given_up[i])
			CHECK(after->w[i] == after->p.w_min / RIPEN__ADAPT_GAP);
		else
			CHECK(after->w[i] >= after->p.w_min * (1 - eps) && after->w[i] <= 1.0 + eps);
		top = after->w[i] > top ? after->w[i] : top;
	}
	CHECK(fabs(top - 1.0) < eps);
	for (size_t i = 0; i < after->n; i++) {
		for (size_t j = 0; j < after->n; j++) {
			double f;

			/* a give-up or restore moves its own weight; the floor
			 * clamp lifts a weight: neither is a step */
			if ((out->event != RIPEN__ADAPT_NONE && (out->which == i || out->which == j)) ||
			    after->w[i] <= after->p.w_min * (1 + eps) ||
			    after->w[j] <= after->p.w_min * (1 + eps))
				continue;
			f = (after->w[i] / after->w[j]) / (before->w[i] / before->w[j]);
			CHECK(f <= up * up * up * (1 + eps) && f >= 1.0 / (up * up * up) * (1 - eps));
		}
	}
	CHECK(after->tau_s >= after->p.tau_min_s * (1 - eps) && after->tau_s <= after->p.tau_max_s * (1 + eps));
	CHECK(after->tau_s / before->tau_s <= up * up * (1 + eps));
	CHECK(after->tau_s / before->tau_s >= 1.0 / up * (1 - eps));
}

static void step(struct ripen__adapt *a, double m0, double m1, double m2, struct ripen__adapt_out *out)
{
	const double m[3] = { m0, m1, m2 };
	struct ripen__adapt before = *a;

	ripen__adapt_step(a, m, out);
	check_bounded(&before, a, out);
}

static bool near(double x, double y)
{
	return fabs(x - y) <= 1e-9 * fabs(y);
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

/* Only the most important missing objective gains, by (1 + step); those
 * met with room give back (1 + step)^2; the dead band and NaN hold; and
 * since only ratios matter, every class giving back at once is no change. */
static void each_step_moves_the_way_the_law_says(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	const double up = 1.1;

	init3(&a);
	step(&a, 0.004, 0.040, NAN, &out); /* vip misses; normal in the band; batch no data */
	CHECK(out.changed);
	CHECK(near(a.w[0], 1.0) && near(a.w[1], 1.0 / up) && near(a.w[2], 1.0 / up));
	/* the tightest objective misses: less aging, twice as fast */
	CHECK(near(a.tau_s, 10.0 * up * up));
	step(&a, 0.0005, 0.010, 1.0, &out); /* all met with room: ratios stay */
	CHECK(!out.changed);
	CHECK(near(a.w[0], 1.0) && near(a.w[1], 1.0 / up) && near(a.w[2], 1.0 / up));
	CHECK(near(a.tau_s, 10.0 * up * up)); /* tau holds while all are met */
	/* the least important objective misses while the others have room:
	 * it weighs as much as normal already, its cap, so only aging helps
	 * it: tau falls, slowly, and no weight moves */
	{
		double r20 = a.w[2] / a.w[0], tau = a.tau_s;

		step(&a, 0.0005, 0.010, 7.0, &out);
		CHECK(near(a.w[2] / a.w[0], r20));
		CHECK(near(a.tau_s, tau / up));
	}
	/* below its cap, it climbs: (1 + step) up while the others give
	 * back (1 + step)^2, until it weighs as much as normal */
	{
		struct ripen__adapt b;

		init3(&a);
		a.w[2] = 0.5;
		b = a;
		step(&a, 0.0005, 0.010, 7.0, &out);
		CHECK(near(a.w[2] / a.w[0], (b.w[2] / b.w[0]) * up * up * up));
		for (int i = 0; i < 4; i++) /* 0.5 * 1.331^3 > 1: capped by the 3rd */
			step(&a, 0.0005, 0.010, 7.0, &out);
		CHECK(a.w[2] == a.w[1] && a.w[1] == a.w[0]);
		CHECK(!a.given_up[2]);
	}
	/* two miss: only the more important one gains; the other holds */
	{
		double r01 = a.w[0] / a.w[1];

		step(&a, 0.004, 0.2, 3.0, &out);
		CHECK(near(a.w[0] / a.w[1], r01 * up));
		CHECK(near(a.w[1] / a.w[2], 1.0 / (a.w[2] / a.w[1]))); /* batch in band holds too */
	}
	/* in the dead band nothing moves, not even tau; NaN is no news */
	{
		struct ripen__adapt b = a;

		step(&a, 0.0015, 0.030, 3.0, &out);
		CHECK(!out.changed);
		CHECK(memcmp(b.w, a.w, sizeof(a.w)) == 0 && b.tau_s == a.tau_s);
		step(&a, NAN, NAN, NAN, &out);
		CHECK(!out.changed && !out.infeasible_changed && out.event == RIPEN__ADAPT_NONE);
	}
}

/* Long runs each way end at the clamps and stay there (patience out of
 * the way); from any state, an input held in the band freezes it. */
static void clamps_hold_and_steady_input_settles(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;

	init3p(&a, 1000000);
	for (int i = 0; i < 1000; i++)
		step(&a, 1.0, 0.0001, 0.0001, &out); /* vip misses hugely, forever */
	CHECK(a.w[0] == 1.0 && a.w[1] == a.p.w_min && a.w[2] == a.p.w_min);
	CHECK(a.tau_s == a.p.tau_max_s);
	for (int i = 0; i < 1000; i++)
		step(&a, 0.0001, 0.0001, 100.0, &out); /* only batch misses */
	/* it never climbs over the ones above it: only aging moves */
	CHECK(a.w[2] <= a.w[1] && a.w[1] <= a.w[0] && a.w[0] == 1.0);
	CHECK(a.tau_s == a.p.tau_min_s);
	CHECK(!a.given_up[1] && !a.given_up[2]);
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

/* A toy plant: vip's p95 falls as its weight grows against the others
 * (12 ms / sqrt of the ratio to the mean of the other two). From equal
 * weights the controller needs about 13 periods of climbing, longer than
 * patience, which must not count as stuck; it drives vip under its target
 * and then stops moving: no oscillation. */
static void a_plant_settles(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	int last_change = -1;

	init3(&a);
	for (int t = 0; t < 600; t++) {
		double ratio = a.w[0] / ((a.w[1] + a.w[2]) / 2);

		step(&a, 0.012 / sqrt(ratio), 0.010, 1.0, &out);
		if (out.changed)
			last_change = t;
		CHECK(out.event == RIPEN__ADAPT_NONE);
	}
	CHECK(last_change < 300); /* settled well before the end */
	CHECK(0.012 / sqrt(a.w[0] / ((a.w[1] + a.w[2]) / 2)) <= 0.002); /* vip met */
}

/*
 * Overload nothing can fix: every objective misses forever. After
 * `patience` periods the set is infeasible and the least important
 * objective (batch) is given up; `patience` more and normal is; then
 * batch, which allows it, is shed; normal, which does not, never is;
 * obj[0] is never given up. Then room everywhere undoes it all in the
 * reverse order, one step per `patience` periods.
 */
static void overload_gives_up_least_important_first(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	int events = 0, t, at[8];
	enum ripen__adapt_event seen[8];
	size_t which[8];

	init3(&a);
	for (t = 1; t <= 2000 && events < 8; t++) {
		step(&a, 1.0, 1.0, 100.0, &out);
		if (out.event != RIPEN__ADAPT_NONE) {
			at[events] = t;
			seen[events] = out.event;
			which[events++] = out.which;
		}
		CHECK(out.infeasible_changed == (t == (int)a.p.patience));
		CHECK(!a.given_up[0] && !a.shed[0]);
		CHECK(!a.shed[1]); /* normal does not allow shedding */
	}
	CHECK_EQ(events, 3); /* batch given up, normal given up, batch shed: then nothing */
	CHECK(seen[0] == RIPEN__ADAPT_GIVE_UP && which[0] == 2 && at[0] == 10);
	CHECK(seen[1] == RIPEN__ADAPT_GIVE_UP && which[1] == 1 && at[1] == 20);
	CHECK(seen[2] == RIPEN__ADAPT_SHED && which[2] == 2 && at[2] == 30);
	CHECK(a.infeasible);
	CHECK(a.w[1] == a.p.w_min / RIPEN__ADAPT_GAP && a.w[2] == a.p.w_min / RIPEN__ADAPT_GAP);
	CHECK(a.w[0] == 1.0);

	/* recovery: unshed batch, restore normal, restore batch */
	events = 0;
	for (t = 1; t <= 2000 && events < 8; t++) {
		step(&a, 0.0001, 0.0001, 0.0001, &out);
		if (out.event != RIPEN__ADAPT_NONE) {
			at[events] = t;
			seen[events] = out.event;
			which[events++] = out.which;
		}
	}
	CHECK_EQ(events, 3);
	CHECK(seen[0] == RIPEN__ADAPT_UNSHED && which[0] == 2 && at[0] == 10);
	CHECK(seen[1] == RIPEN__ADAPT_RESTORE && which[1] == 1 && at[1] == 20);
	CHECK(seen[2] == RIPEN__ADAPT_RESTORE && which[2] == 2 && at[2] == 30);
	CHECK(!a.infeasible);

	/* the same overload, then a load where vip and normal are met but
	 * without room (in the band): the undo waits for the objective to be
	 * taken back to be met too, and then goes the same way */
	init3(&a);
	for (t = 0; t < 2000; t++)
		step(&a, 1.0, 1.0, 100.0, &out);
	for (t = 1; t <= 200; t++) {
		step(&a, 0.0015, 0.030, 100.0, &out); /* batch still misses: nothing back */
		CHECK(out.event == RIPEN__ADAPT_NONE);
	}
	events = 0;
	for (t = 1; t <= 2000 && events < 8; t++) {
		/* normal's own value while given up is in the band: met */
		step(&a, 0.0015, 0.030, t < 5 ? NAN : 3.0, &out);
		if (out.event != RIPEN__ADAPT_NONE) {
			at[events] = t;
			seen[events] = out.event;
			which[events++] = out.which;
		}
	}
	CHECK_EQ(events, 3);
	/* a shed class has nothing to measure: NaN counts as met for it */
	CHECK(seen[0] == RIPEN__ADAPT_UNSHED && which[0] == 2 && at[0] == 10);
	CHECK(seen[1] == RIPEN__ADAPT_RESTORE && which[1] == 1 && at[1] == 20);
	CHECK(seen[2] == RIPEN__ADAPT_RESTORE && which[2] == 2 && at[2] == 30);
}

/* Only the less important side misses: at its cap (the weight of the one
 * above it) it is given up, the ones that meet theirs keep being pursued,
 * and nothing is shed. */
static void only_the_missing_side_is_given_up(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	int t;

	init3(&a);
	for (t = 1; t <= 500; t++) {
		step(&a, 0.0015, 0.030, 100.0, &out); /* vip, normal in band; batch misses */
		if (out.event != RIPEN__ADAPT_NONE)
			break;
	}
	/* batch weighs as much as normal from the start: stuck at once,
	 * given up `patience` periods later */
	CHECK(out.event == RIPEN__ADAPT_GIVE_UP && out.which == 2 && t == 10);
	for (t = 0; t < 500; t++) {
		step(&a, 0.0015, 0.030, 100.0, &out);
		CHECK(out.event == RIPEN__ADAPT_NONE);
	}
	CHECK(!a.given_up[0] && !a.given_up[1] && !a.shed[2]);
	/* with batch given up, a miss of normal (now the least important
	 * pursued) must not add aging: batch's tasks wait longest and would
	 * gain most; tau rises instead */
	{
		double tau = a.tau_s;

		step(&a, 0.0015, 0.2, 100.0, &out);
		CHECK(near(a.tau_s, tau * 1.1 * 1.1) || a.tau_s == a.p.tau_max_s);
		CHECK(a.tau_s > tau || tau == a.p.tau_max_s);
	}
}

/* Whatever the feed, the weights keep the priority order of the pursued
 * objectives (a pseudo-random feed of misses, room and band). */
static void weights_keep_the_priority_order(void)
{
	struct ripen__adapt a;
	struct ripen__adapt_out out;
	uint64_t x = 88172645463325252ull;
	static const double pick[4] = { 0.3, 0.7, 1.5, NAN }; /* room, band, miss, none */

	init3(&a);
	for (int t = 0; t < 5000; t++) {
		double m[3];

		for (int i = 0; i < 3; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			m[i] = pick[x % 4] * three[i].target_s;
		}
		step(&a, m[0], m[1], m[2], &out);
		for (size_t i = 1; i < 3; i++)
			for (size_t j = 0; j < i; j++)
				if (!a.given_up[i] && !a.given_up[j])
					CHECK(a.w[i] <= a.w[j]);
		CHECK(a.w[0] == 1.0);
	}
}

TEST_MAIN(T(bad_parameters_are_refused), T(each_step_moves_the_way_the_law_says),
	  T(clamps_hold_and_steady_input_settles), T(a_plant_settles),
	  T(weights_keep_the_priority_order),
	  T(overload_gives_up_least_important_first),
	  T(only_the_missing_side_is_given_up))
