/*
 * ripen-replay's simulator (tools/replay/sim.c) against schedules computed
 * by hand, and against a naive reference simulator on random traces.
 *
 * Times are plain nanoseconds. The hand-computed cases state every wait;
 * the event rule under test (sim.c): at an instant, completions first, then
 * arrivals, then free workers take the best queued task (ties by arrival
 * order).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "policy-internal.h"
#include "run.h"

#define NS(x) ((uint64_t)(x))

struct spec {
	uint64_t arrival, service;
	double base;
	uint32_t class_id;
	uint64_t deadline;
};

static struct rr_task *tasks_of(const struct spec *s, size_t n)
{
	struct rr_task *t = calloc(n, sizeof(*t));

	CHECK(t != NULL);
	for (size_t i = 0; i < n; i++) {
		t[i].arrival_ns = s[i].arrival;
		t[i].service_ns = s[i].service;
		t[i].base = s[i].base;
		t[i].class_id = s[i].class_id;
		t[i].deadline_ns = s[i].deadline;
	}
	return t;
}

/* simulate and compare every wait with the expected one */
static void expect(const struct spec *s, size_t n, struct ripen_policy *p, unsigned workers,
		   uint64_t period, bool exact, const uint64_t *want)
{
	struct rr_task *t = tasks_of(s, n);
	uint64_t *w = calloc(n, sizeof(*w));
	struct rr_sim_opts o = { .workers = workers, .rekey_period_ns = period, .exact = exact };

	CHECK(p != NULL && w != NULL);
	CHECK_OK(rr_simulate(t, n, p, &o, w, NULL));
	for (size_t i = 0; i < n; i++) {
		if (w[i] != want[i])
			fprintf(stderr, "task %zu: wait %llu, expected %llu\n", i,
				(unsigned long long)w[i], (unsigned long long)want[i]);
		CHECK_EQ(w[i], want[i]);
	}
	ripen_policy_free(p);
	free(t);
	free(w);
}

/*
 * One worker: A..F, I below, (arrival, service, base).
 *   A(0,10,1) B(2,5,2) C(4,5,3) D(10,5,5) I(12,1,2) E(25,1,0) F(25,1,0)
 * static:
 *   t=0  A starts.
 *   t=10 A completes and D arrives at the same instant: D (5) beats C (3)
 *        and B (2), so D starts at 10 (had dispatch come before arrivals, C
 *        would have).
 *   t=15 C (3) over B, I (2); t=20 B and I tie at 2: B arrived first.
 *   t=25 B completes, E and F arrive: I (2) starts; t=26 E (tie with F,
 *        arrived first), t=27 F.
 *   waits: A 0, B 18, C 11, D 0, I 13, E 1, F 2
 * fifo: A 0-10, B 10-15, C 15-20, D 20-25, I 25-26, E 26-27, F 27
 *   waits: A 0, B 8, C 11, D 10, I 13, E 1, F 2
 */
static const struct spec one_worker[] = {
	{ 0, 10, 1, 0, 0 }, { 2, 5, 2, 0, 0 }, { 4, 5, 3, 0, 0 }, { 10, 5, 5, 0, 0 },
	{ 12, 1, 2, 0, 0 }, { 25, 1, 0, 0, 0 }, { 25, 1, 0, 0, 0 },
};

static void one_worker_static(void)
{
	static const uint64_t want[] = { 0, 18, 11, 0, 13, 1, 2 };

	expect(one_worker, 7, ripen_policy_static(), 1, 2000000, false, want);
}

static void one_worker_fifo(void)
{
	static const uint64_t want[] = { 0, 8, 11, 10, 13, 1, 2 };

	expect(one_worker, 7, ripen_policy_fifo(), 1, 2000000, false, want);
}

/*
 * Two workers: A(0,10,1) B(0,10,1) C(0,5,3) D(0,5,2) E(10,3,1) F(10,3,4)
 * G(10,1,0).
 * static:
 *   t=0  C and D start (the two best); A, B queued.
 *   t=5  both complete: A and B tie at 1, both start (A first).
 *   t=10 E, F, G arrive, no worker is free.
 *   t=15 both complete at once: F (4), then E (1), start at 15.
 *   t=18 both complete: G starts.
 *   waits: A 5, B 5, C 0, D 0, E 5, F 5, G 8
 * fifo:
 *   t=0  A, B start; t=10 both complete as E, F, G arrive: C, D start
 *   (arrived first); t=15 E, F; t=18 G.
 *   waits: A 0, B 0, C 10, D 10, E 5, F 5, G 8
 */
static const struct spec two_workers[] = {
	{ 0, 10, 1, 0, 0 }, { 0, 10, 1, 0, 0 }, { 0, 5, 3, 0, 0 }, { 0, 5, 2, 0, 0 },
	{ 10, 3, 1, 0, 0 }, { 10, 3, 4, 0, 0 }, { 10, 1, 0, 0, 0 },
};

static void two_workers_static(void)
{
	static const uint64_t want[] = { 5, 5, 0, 0, 5, 5, 8 };

	expect(two_workers, 7, ripen_policy_static(), 2, 2000000, false, want);
}

static void two_workers_fifo(void)
{
	static const uint64_t want[] = { 0, 0, 10, 10, 5, 5, 8 };

	expect(two_workers, 7, ripen_policy_fifo(), 2, 2000000, false, want);
}

/*
 * A task that arrives exactly when the only worker frees, against a queued
 * task of the same base: the queued one arrived first and wins the tie.
 *   A(0,4,1) B(1,1,2) C(4,1,2): t=4 A completes, C arrives; B and C tie at
 *   2, B arrived first: B 4-5 (wait 3), C 5 (wait 1).
 * With C's base 3 instead, C starts at 4 (wait 0) and B at 5 (wait 4).
 */
static void arrival_at_completion(void)
{
	struct spec s[] = { { 0, 4, 1, 0, 0 }, { 1, 1, 2, 0, 0 }, { 4, 1, 2, 0, 0 } };
	static const uint64_t tie[] = { 0, 3, 1 }, better[] = { 0, 4, 0 };

	expect(s, 3, ripen_policy_static(), 1, 2000000, false, tie);
	s[2].base = 3;
	expect(s, 3, ripen_policy_static(), 1, 2000000, false, better);
}

/*
 * Zero service: X(0,5,1) Y(0,0,3) Z(0,1,2), static, one worker. Y starts at
 * 0 and completes at 0, its worker takes Z at 0, then X at 1.
 */
static void zero_service(void)
{
	static const struct spec s[] = { { 0, 5, 1, 0, 0 }, { 0, 0, 3, 0, 0 }, { 0, 1, 2, 0, 0 } };
	static const uint64_t want[] = { 1, 0, 0 };

	expect(s, 3, ripen_policy_static(), 1, 2000000, false, want);
}

/*
 * Linear aging, tau 10 ns: A(0,120,1) B(1,1,1) C(60,1,2), one worker.
 * At t=120: keyed at reference time r, B = 1 + (r-1)/10 and
 * C = 2 (1 + (r-60)/10); B wins iff r < 109.
 *   exact (r = 120), or period 1 (r = 120): C (14 vs 12.9) at 120, B at 121:
 *     waits A 0, B 120, C 60
 *   period 100 (r = 100): B (10.9 vs 10) at 120, C at 121:
 *     waits A 0, B 119, C 61
 *   period 1000 (r = 0, nobody has waited yet): C on its base, as exact.
 */
static void linear_rekey_period(void)
{
	static const struct spec s[] = { { 0, 120, 1, 0, 0 }, { 1, 1, 1, 0, 0 }, { 60, 1, 2, 0, 0 } };
	static const uint64_t fresh[] = { 0, 120, 60 }, stale[] = { 0, 119, 61 };

	expect(s, 3, ripen_policy_linear_aging(1e-8), 1, 1, false, fresh);
	expect(s, 3, ripen_policy_linear_aging(1e-8), 1, 1000000, true, fresh);
	expect(s, 3, ripen_policy_linear_aging(1e-8), 1, 100, false, stale);
	expect(s, 3, ripen_policy_linear_aging(1e-8), 1, 1000, false, fresh);
}

/*
 * Additive aging, tau 10 ns: A(0,100,1) B(1,1,1) C(50,1,5). At t=100,
 * B = 1 + 99/10 = 10.9, C = 5 + 50/10 = 10: B at 100 (wait 99), C at 101
 * (wait 51).
 */
static void additive(void)
{
	static const struct spec s[] = { { 0, 100, 1, 0, 0 }, { 1, 1, 1, 0, 0 }, { 50, 1, 5, 0, 0 } };
	static const uint64_t want[] = { 0, 99, 51 };

	expect(s, 3, ripen_policy_additive_aging(1e-8), 1, 2000000, false, want);
}

/*
 * EDF: A(0,10, none) B(1,1, dl 50) C(2,1, dl 30) D(3,1, none): at 10, C
 * (earliest deadline), B at 11, D (none: last) at 12.
 * Class weights 1,10 over static: P(0,10,1,c0) Q(1,1,5,c0) R(2,1,1,c1):
 * R weighs 10 > Q's 5: R at 10 (wait 8), Q at 11 (wait 10).
 */
static void edf_and_weights(void)
{
	static const struct spec e[] = { { 0, 10, 0, 0, 0 }, { 1, 1, 0, 0, 50 },
					 { 2, 1, 0, 0, 30 }, { 3, 1, 0, 0, 0 } };
	static const uint64_t ew[] = { 0, 10, 8, 9 };
	static const struct spec w[] = { { 0, 10, 1, 0, 0 }, { 1, 1, 5, 0, 0 }, { 2, 1, 1, 1, 0 } };
	static const uint64_t ww[] = { 0, 10, 8 };
	static const double weights[] = { 1, 10 };

	expect(e, 4, ripen_policy_edf(), 1, 2000000, false, ew);
	expect(w, 3, ripen_policy_class_weights(weights, 2, ripen_policy_static()), 1, 2000000,
	       false, ww);
}

/*
 * Class scaling over additive aging, weights 1 (class 0) and 0.5 (class
 * 1), tau 10 ns, exact: A(0,100,1,c0) B(1,1,6,c1) C(2,1,2,c0). At t=100,
 * B = 0.5 (6 + 99/10) = 7.95 and C = 1 (2 + 98/10) = 11.8: C at 100 (wait
 * 98), B at 101 (wait 100). Class weights (0.5 * 6 + 9.9 = 12.9) and plain
 * additive aging (15.9) would both start B first: the weight scales B's
 * aging too.
 */
static void scaled_additive(void)
{
	static const struct spec s[] = { { 0, 100, 1, 0, 0 }, { 1, 1, 6, 1, 0 }, { 2, 1, 2, 0, 0 } };
	static const uint64_t want[] = { 0, 100, 98 }, want_weights[] = { 0, 99, 99 };
	static const double weights[] = { 1, 0.5 };

	expect(s, 3, ripen_policy_class_scaled(weights, 2, ripen_policy_additive_aging(1e-8)), 1,
	       2000000, true, want);
	expect(s, 3, ripen_policy_class_weights(weights, 2, ripen_policy_additive_aging(1e-8)), 1,
	       2000000, true, want_weights);
	/* on the re-key grid (period 50): keyed at 100, the same order */
	expect(s, 3, ripen_policy_class_scaled(weights, 2, ripen_policy_additive_aging(1e-8)), 1,
	       50, false, want);
}

/* ------------------------------------------------ naive reference model */

/*
 * The documented rule, implemented the slow way: advance time to the next
 * event, free every worker completing then, queue every arrival, and let
 * each free worker scan the whole queue for the best key (at the grid
 * reference time for time-varying policies, at now with exact).
 */
static void reference(const struct rr_task *t, size_t n, const struct ripen_policy *p,
		      unsigned workers, uint64_t period, bool exact, uint64_t *wait)
{
	uint64_t *free_at = calloc(workers, sizeof(*free_at));
	bool *queued = calloc(n, sizeof(*queued)), *done = calloc(n, sizeof(*done));
	size_t next = 0, left = n;
	uint64_t now = 0;

	CHECK(free_at != NULL && queued != NULL && done != NULL);
	while (left > 0) {
		uint64_t ev = UINT64_MAX;
		unsigned nfree = 0;
		bool any = false;

		for (size_t i = 0; i < n; i++)
			any |= queued[i];
		for (unsigned k = 0; k < workers; k++)
			if (free_at[k] > now && free_at[k] < ev)
				ev = free_at[k];
		if (next < n && t[next].arrival_ns < ev)
			ev = t[next].arrival_ns;
		for (unsigned k = 0; k < workers; k++)
			nfree += free_at[k] <= now;
		if (!(any && nfree > 0))
			now = ev > now ? ev : now;
		while (next < n && t[next].arrival_ns <= now)
			queued[next++] = true;
		for (unsigned k = 0; k < workers; k++) {
			size_t best = SIZE_MAX;
			uint64_t bkey = 0, ref = exact ? now : now - now % period;

			if (free_at[k] > now)
				continue;
			for (size_t i = 0; i < n; i++) {
				struct ripen_task_view v = { .base = t[i].base,
					.class_id = t[i].class_id, .submit_ns = t[i].arrival_ns,
					.deadline_ns = t[i].deadline_ns };
				bool bad = false;
				uint64_t key;

				if (!queued[i])
					continue;
				key = ripen__policy_key(p, &v, i, p->time_varying ? ref : 0,
							NULL, &bad);
				if (best == SIZE_MAX || key > bkey) {
					best = i;
					bkey = key;
				}
			}
			if (best == SIZE_MAX)
				break;
			queued[best] = false;
			done[best] = true;
			left--;
			wait[best] = now - t[best].arrival_ns;
			free_at[k] = now + t[best].service_ns;
		}
		/* a zero-service task frees its worker at now: loop again at now */
	}
	free(free_at);
	free(queued);
	free(done);
}

static void random_traces_match_reference(void)
{
	uint64_t seed = 0x5eed1234abcdULL;
	int rounds = (int)(300 * test_scale());

	for (int r = 0; r < rounds; r++) {
		size_t n = 1 + test_rand(&seed) % 60;
		unsigned workers = 1 + (unsigned)(test_rand(&seed) % 3);
		uint64_t period = 1 + test_rand(&seed) % 20;
		bool exact = test_rand(&seed) % 4 == 0;
		struct rr_task *t = calloc(n, sizeof(*t));
		uint64_t *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b)), at = 0;
		struct ripen_policy *p;
		struct rr_sim_opts o = { .workers = workers, .rekey_period_ns = period,
					 .exact = exact };
		static const double w[] = { 1, 3, 0.5 };

		CHECK(t != NULL && a != NULL && b != NULL);
		for (size_t i = 0; i < n; i++) {
			at += test_rand(&seed) % 4 == 0 ? 0 : test_rand(&seed) % 6; /* ties */
			t[i].arrival_ns = at;
			t[i].service_ns = test_rand(&seed) % 8; /* zeros too */
			t[i].base = (double)(test_rand(&seed) % 4);
			t[i].class_id = (uint32_t)(test_rand(&seed) % 3);
			t[i].deadline_ns = test_rand(&seed) % 3 ? at + test_rand(&seed) % 30 : 0;
		}
		switch (r % 8) {
		case 0: p = ripen_policy_fifo(); break;
		case 1: p = ripen_policy_static(); break;
		case 2: p = ripen_policy_linear_aging(5e-9); break;
		case 3: p = ripen_policy_additive_aging(3e-9); break;
		case 4: p = ripen_policy_edf(); break;
		case 5: p = ripen_policy_class_weights(w, 3, ripen_policy_static()); break;
		case 6: p = ripen_policy_class_scaled(w, 3, ripen_policy_additive_aging(3e-9)); break;
		default: p = ripen_policy_class_weights(w, 3, ripen_policy_linear_aging(4e-9)); break;
		}
		CHECK(p != NULL);
		CHECK_OK(rr_simulate(t, n, p, &o, a, NULL));
		reference(t, n, p, workers, period, exact, b);
		for (size_t i = 0; i < n; i++) {
			if (a[i] != b[i])
				fprintf(stderr, "round %d (policy %d, %u workers, period %llu%s) "
					"task %zu: sim %llu, reference %llu\n", r, r % 8, workers,
					(unsigned long long)period, exact ? ", exact" : "", i,
					(unsigned long long)a[i], (unsigned long long)b[i]);
			CHECK_EQ(a[i], b[i]);
		}
		ripen_policy_free(p);
		free(t);
		free(a);
		free(b);
	}
}

/* the same input twice: the same waits, bit for bit */
static void deterministic(void)
{
	uint64_t seed = 42, at = 0;
	size_t n = 20000;
	struct rr_task *t = calloc(n, sizeof(*t));
	uint64_t *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
	struct rr_sim_opts o = { .workers = 4, .rekey_period_ns = 2000000 };

	CHECK(t != NULL && a != NULL && b != NULL);
	for (size_t i = 0; i < n; i++) {
		at += test_rand(&seed) % 300000;
		t[i].arrival_ns = at;
		t[i].service_ns = test_rand(&seed) % 1300000;
		t[i].base = 1 + (double)(test_rand(&seed) % 10);
	}
	for (int k = 0; k < 2; k++) {
		struct ripen_policy *p = k ? ripen_policy_linear_aging(0.01) : ripen_policy_static();

		CHECK_OK(rr_simulate(t, n, p, &o, a, NULL));
		memset(b, 0xa5, n * sizeof(*b));
		CHECK_OK(rr_simulate(t, n, p, &o, b, NULL));
		CHECK(memcmp(a, b, n * sizeof(*a)) == 0);
		ripen_policy_free(p);
	}
	free(t);
	free(a);
	free(b);
}

TEST_MAIN(T(one_worker_static), T(one_worker_fifo), T(two_workers_static), T(two_workers_fifo),
	  T(arrival_at_completion), T(zero_service), T(linear_rekey_period), T(additive), T(scaled_additive),
	  T(edf_and_weights), T(random_traces_match_reference), T(deterministic))
