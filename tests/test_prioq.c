/* The worker heap and the score-to-key mapping, in isolation. */
#include <errno.h>
#include <math.h>

#include "check.h"
#include "prioq-internal.h"
#include "ripen.h"

static void key_order_matches_numeric_order(void)
{
	const double v[] = { -INFINITY, -1e308, -1.0, -1e-310, 0.0, 4.9e-324, 1e-300,
			     1.0, 1.5, 1e308, INFINITY };
	size_t n = sizeof(v) / sizeof(v[0]);

	for (size_t i = 0; i + 1 < n; i++)
		CHECK(ripen__score_key(v[i]) < ripen__score_key(v[i + 1]));
	CHECK_EQ(ripen__score_key(-0.0), ripen__score_key(0.0));
	/* NaN maps below everything, -inf included */
	CHECK_EQ(ripen__score_key(NAN), RIPEN_KEY_LOWEST); /* never 0: that is "empty" */
	CHECK(ripen__score_key(-NAN) < ripen__score_key(-INFINITY));
	CHECK_GT(ripen__score_key(-INFINITY), 0);
}

static void pops_in_key_then_seq_order(void)
{
	struct ripen__prioq q;
	struct ripen__entry e, prev = { 0 };
	uint64_t rng = 42;
	const size_t n = 20000;

	CHECK_OK(ripen__prioq_init(&q, 1));
	for (size_t i = 0; i < n; i++) {
		e.key = test_rand(&rng) % 50; /* many ties */
		e.seq = i;
		e.task = NULL;
		e.version = 0;
		CHECK_OK(ripen__prioq_push(&q, &e));
		if (i % 1000 == 0)
			CHECK(ripen__prioq_valid(&q));
	}
	CHECK_EQ(q.n, n);
	CHECK(ripen__prioq_valid(&q));
	for (size_t i = 0; i < n; i++) {
		CHECK(ripen__prioq_pop(&q, &e));
		if (i > 0) {
			CHECK_LE(e.key, prev.key);
			if (e.key == prev.key)
				CHECK_GT(e.seq, prev.seq); /* FIFO on ties */
		}
		prev = e;
	}
	CHECK(!ripen__prioq_pop(&q, &e));
	ripen__prioq_fini(&q);
}

static void interleaved_push_pop_matches_reference(void)
{
	/* against a sorted-array reference */
	static uint64_t ref[4096];
	size_t rn = 0;
	struct ripen__prioq q;
	struct ripen__entry e = { 0 };
	uint64_t rng = 7;

	CHECK_OK(ripen__prioq_init(&q, 0));
	for (int step = 0; step < 100000; step++) {
		if (rn < 4096 && (rn == 0 || test_rand(&rng) % 3 != 0)) {
			uint64_t k = test_rand(&rng);
			size_t i = rn++;

			while (i > 0 && ref[i - 1] > k) {
				ref[i] = ref[i - 1];
				i--;
			}
			ref[i] = k;
			e.key = k;
			e.seq = (uint64_t)step;
			CHECK_OK(ripen__prioq_push(&q, &e));
		} else {
			CHECK(ripen__prioq_pop(&q, &e));
			CHECK(e.key == ref[--rn]);
		}
		CHECK_EQ(q.n, rn);
	}
	ripen__prioq_fini(&q);
}

static void reserve_grows_and_keeps_entries(void)
{
	struct ripen__prioq q;
	struct ripen__entry e = { .key = 5, .seq = 1 };

	CHECK_OK(ripen__prioq_init(&q, 2));
	CHECK_OK(ripen__prioq_push(&q, &e));
	CHECK_OK(ripen__prioq_reserve(&q, 1000));
	CHECK_GE(q.cap, 1001);
	CHECK_EQ(q.n, 1);
	CHECK(ripen__prioq_top(&q)->key == 5);
	ripen__prioq_fini(&q);
}

TEST_MAIN(T(key_order_matches_numeric_order), T(pops_in_key_then_seq_order),
	  T(interleaved_push_pop_matches_reference), T(reserve_grows_and_keeps_entries))
