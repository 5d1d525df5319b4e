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

/*
 * The FIFO run in front of the heap (prioq.c): whatever mix of ties,
 * rising keys, late seqs and in-place re-keys goes in, the pops come out
 * in (key desc, seq asc) order, checked entry by entry against a sorted
 * reference. The phases drive each path: long tie runs (append), a
 * depth-first tree (a better key folds a short run into the heap), ties
 * with earlier seqs (stolen entries: heap), random keys, and a re-key of
 * every entry through ripen__prioq_at followed by heapify (the run folds).
 */
struct ref_ent {
	uint64_t key, seq;
};

static bool ref_before(const struct ref_ent *a, const struct ref_ent *b)
{
	return a->key > b->key || (a->key == b->key && a->seq < b->seq);
}

/* ref kept sorted best-last, so a pop is ref[--n] */
static void ref_insert(struct ref_ent *ref, size_t *n, struct ref_ent x)
{
	size_t i = (*n)++;

	while (i > 0 && ref_before(&ref[i - 1], &x)) {
		ref[i] = ref[i - 1];
		i--;
	}
	ref[i] = x;
}

static void run_and_heap_pop_in_merged_order(void)
{
	enum { MAX = 3000 };
	static struct ref_ent ref[MAX];
	struct ripen__prioq q;
	uint64_t rng = 11, seq = 1000000, runs_seen = 0;
	size_t rn = 0;

	CHECK_OK(ripen__prioq_init(&q, 1));
	for (int step = 0; step < 200000; step++) {
		unsigned phase = (unsigned)(step / 5000) % 5;
		struct ripen__entry e = { 0 };
		bool push = rn == 0 || (rn < MAX && test_rand(&rng) % 2 == 0);

		if (phase == 4 && step % 5000 == 4999) {
			/* re-key everything in place, then heapify */
			for (size_t i = 0; i < q.n; i++)
				ripen__prioq_at(&q, i)->key = 1 + test_rand(&rng) % 40;
			ripen__prioq_heapify(&q);
			CHECK(ripen__prioq_valid(&q));
			CHECK_EQ(q.rlen, 0);
			rn = 0;
			for (size_t i = 0; i < q.n; i++) {
				const struct ripen__entry *x = ripen__prioq_at(&q, i);

				ref_insert(ref, &rn, (struct ref_ent){ x->key, x->seq });
			}
			continue;
		}
		if (push) {
			switch (phase) {
			case 0: /* one tie for a while: the run */
				e.key = 7;
				e.seq = seq++;
				break;
			case 1: /* depth first: a key above the last one, twice */
				e.key = 8 + (uint64_t)(step % 64) / 2;
				e.seq = seq++;
				break;
			case 2: /* ties with earlier seqs, as stolen entries are */
				e.key = 7 + test_rand(&rng) % 2;
				e.seq = seq - 1 - test_rand(&rng) % 500000;
				break;
			default: /* random keys, a few ties */
				e.key = 1 + test_rand(&rng) % 40;
				e.seq = seq++;
				break;
			}
			CHECK_OK(ripen__prioq_push(&q, &e));
			ref_insert(ref, &rn, (struct ref_ent){ e.key, e.seq });
			runs_seen += q.rlen > 1;
		} else {
			struct ref_ent want = ref[--rn];

			CHECK(ripen__prioq_top(&q)->key == want.key);
			CHECK(ripen__prioq_pop(&q, &e));
			if (e.key != want.key || e.seq != want.seq)
				check_fail(__FILE__, __LINE__, "step %d: popped (%llu, %llu), want (%llu, %llu)",
					   step, (unsigned long long)e.key, (unsigned long long)e.seq,
					   (unsigned long long)want.key, (unsigned long long)want.seq);
		}
		CHECK_EQ(q.n, rn);
		if (step % 997 == 0)
			CHECK(ripen__prioq_valid(&q));
	}
	CHECK_GT(runs_seen, 1000); /* the run was used, not only the heap */
	while (rn > 0) {
		struct ripen__entry e;
		struct ref_ent want = ref[--rn];

		CHECK(ripen__prioq_pop(&q, &e));
		CHECK(e.key == want.key && e.seq == want.seq);
	}
	ripen__prioq_fini(&q);
}

/* A tie run never sifts: FIFO work stays out of the heap part. */
static void ties_in_seq_order_skip_the_heap(void)
{
	struct ripen__prioq q;
	struct ripen__entry e = { .key = 3 };

	CHECK_OK(ripen__prioq_init(&q, 4));
	for (uint64_t i = 0; i < 10000; i++) {
		e.seq = i;
		CHECK_OK(ripen__prioq_push(&q, &e));
		if (i % 3 == 2) {
			CHECK(ripen__prioq_pop(&q, &e));
			CHECK_EQ(e.seq, i / 3); /* the oldest first */
		}
	}
	CHECK_EQ(q.hn, 0);
	CHECK(ripen__prioq_valid(&q));
	ripen__prioq_fini(&q);
}

TEST_MAIN(T(key_order_matches_numeric_order), T(pops_in_key_then_seq_order),
	  T(interleaved_push_pop_matches_reference), T(reserve_grows_and_keeps_entries),
	  T(run_and_heap_pop_in_merged_order), T(ties_in_seq_order_skip_the_heap))
