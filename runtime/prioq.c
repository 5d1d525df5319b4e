/*
 * d-ary heap (d = 4) keyed by (score key desc, submit sequence asc).
 *
 * Why 4-ary: a pop does log4(n) levels of 4 compares instead of log2(n)
 * levels of 2, and the four children of a node are 128 contiguous bytes, so
 * each level costs about one cache-line pair instead of one miss per
 * compare; push (sift-up) gets cheaper too (the figures: bench_rescore and
 * the README's table, not repeated here, where they would drift).
 *
 * Rejected alternatives: a pairing heap (pointer chasing, allocation per
 * node), a skip list (needed only for lock-free concurrent access; here one
 * thread at a time holds the heap's lock), buckets by priority (scores are doubles
 * and change over time).
 *
 * Growth doubles the array through ripen__realloc; a failed growth leaves
 * the heap unchanged and returns -ENOMEM, and every caller has a place to
 * keep the entry instead (the task's inbox), so nothing is dropped.
 *
 * Caller holds the worker's heap lock (worker.c).
 */
#include "prioq-internal.h"

#include <errno.h>
#include <string.h>

#include "alloc-internal.h"
#include "fault-internal.h"

#define D 4

int ripen__prioq_init(struct ripen__prioq *q, size_t cap)
{
	q->n = 0;
	q->cap = 0;
	q->a = NULL;
	if (cap == 0)
		return 0;
	if (RIPEN_FAULT(RIPEN_FAULT_HEAP_GROW))
		return -ENOMEM;
	q->a = ripen__malloc(cap * sizeof(*q->a));
	if (q->a == NULL)
		return -ENOMEM;
	q->cap = cap;
	return 0;
}

void ripen__prioq_fini(struct ripen__prioq *q)
{
	ripen__free(q->a, q->cap * sizeof(*q->a));
	q->a = NULL;
	q->n = q->cap = 0;
}

int ripen__prioq_reserve(struct ripen__prioq *q, size_t extra)
{
	size_t need = q->n + extra, cap = q->cap ? q->cap : 4;
	struct ripen__entry *a;

	if (need <= q->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (RIPEN_FAULT(RIPEN_FAULT_HEAP_GROW))
		return -ENOMEM;
	a = ripen__realloc(q->a, q->cap * sizeof(*a), cap * sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	q->a = a;
	q->cap = cap;
	return 0;
}

int ripen__prioq_push(struct ripen__prioq *q, const struct ripen__entry *e)
{
	struct ripen__entry *a;
	size_t i;

	if (q->n == q->cap && ripen__prioq_reserve(q, 1) != 0)
		return -ENOMEM;
	a = q->a;
	i = q->n++;
	while (i > 0) {
		size_t p = (i - 1) / D;

		if (!ripen__entry_before(e, &a[p]))
			break;
		a[i] = a[p];
		i = p;
	}
	a[i] = *e;
	return 0;
}

/* Place x at hole i of a[0..n) and sift it down to where it belongs. */
static void sift_down(struct ripen__entry *a, size_t n, size_t i, struct ripen__entry x)
{
	for (;;) {
		size_t c = i * D + 1, best, end;

		if (c >= n)
			break;
		best = c;
		end = c + D < n ? c + D : n;
		for (size_t k = c + 1; k < end; k++)
			if (ripen__entry_before(&a[k], &a[best]))
				best = k;
		if (!ripen__entry_before(&a[best], &x))
			break;
		a[i] = a[best];
		i = best;
	}
	a[i] = x;
}

bool ripen__prioq_pop(struct ripen__prioq *q, struct ripen__entry *out)
{
	if (q->n == 0)
		return false;
	*out = q->a[0];
	if (--q->n > 0)
		sift_down(q->a, q->n, 0, q->a[q->n]);
	return true;
}

void ripen__prioq_heapify(struct ripen__prioq *q)
{
	size_t n = q->n;

	if (n < 2)
		return;
	/* Floyd: sift down every internal node, last first: O(n) */
	for (size_t start = (n - 2) / D + 1; start-- > 0;)
		sift_down(q->a, n, start, q->a[start]);
}

bool ripen__prioq_valid(const struct ripen__prioq *q)
{
	for (size_t i = 1; i < q->n; i++)
		if (ripen__entry_before(&q->a[i], &q->a[(i - 1) / D]))
			return false;
	return true;
}
