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
 * The FIFO run. Work whose tasks share one priority (a spawn tree at one
 * score, FIFO on ties) would otherwise pay a full sift-down on every pop:
 * each new entry ties the ones before it and has a later seq, so it sinks
 * to the bottom of a heap that holds the whole level, and the next pop
 * sifts the last leaf back down through all of it (measured: 590 of the
 * 1,680 instructions per task of the cg driver's `spawn`). Entries with
 * equal keys pushed in seq order are already sorted, so they go into a
 * ring in front of the heap instead: push appends, pop takes the ring's
 * front when it beats the heap's top, and the pop order is exactly the
 * merged order of the two. An entry that beats the whole run (a higher
 * key) while the run is short starts a new run and the old one moves into
 * the heap, so a depth-first tree (children one key above their parent)
 * keeps its newest siblings in the ring; anything else goes into the heap.
 * The heap's array always has room for the run's entries too, so a re-key
 * (which breaks the run's equal keys) can fold the run into the heap
 * without allocating, and a ring that cannot grow leaves the entry to the
 * heap.
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
#ifdef RIPEN_TINY
#define RUN_INIT 2u	/* first ring: the growth path runs constantly */
#else
#define RUN_INIT 64u
#endif
#define RUN_MOVE_MAX 4u	/* a run this short moves into the heap for a better one */

int ripen__prioq_init(struct ripen__prioq *q, size_t cap)
{
	q->n = 0;
	q->cap = 0;
	q->a = NULL;
	q->hn = 0;
	q->r = NULL;
	q->rhead = q->rlen = q->rcap = 0;
	q->rkey = 0;
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
	ripen__free(q->r, q->rcap * sizeof(*q->r));
	q->a = NULL;
	q->r = NULL;
	q->n = q->cap = q->hn = 0;
	q->rhead = q->rlen = q->rcap = 0;
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
	/* Copy only the heap part: the room kept for the run's entries is
	 * never written until a re-key folds the run in, and a realloc would
	 * copy it, making it resident (measured: a million queued ties cost
	 * 127 bytes a task that way, against 106 for a million distinct keys) */
	a = ripen__malloc(cap * sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	if (q->hn)
		memcpy(a, q->a, q->hn * sizeof(*a));
	ripen__free(q->a, q->cap * sizeof(*a));
	q->a = a;
	q->cap = cap;
	return 0;
}

/* Sift-up push into the heap part; a has room (cap >= n covers it). */
static void heap_push(struct ripen__prioq *q, const struct ripen__entry *e)
{
	struct ripen__entry *a = q->a;
	size_t i = q->hn++;

	while (i > 0) {
		size_t p = (i - 1) / D;

		if (!ripen__entry_before(e, &a[p]))
			break;
		a[i] = a[p];
		i = p;
	}
	a[i] = *e;
}

/* Double the ring, keeping its order; false without memory (q unchanged). */
static __attribute__((noinline)) bool run_grow(struct ripen__prioq *q)
{
	size_t cap = q->rcap ? 2 * q->rcap : RUN_INIT;
	struct ripen__entry *r;

	if (RIPEN_FAULT(RIPEN_FAULT_HEAP_GROW))
		return false;
	r = ripen__malloc(cap * sizeof(*r));
	if (r == NULL)
		return false;
	for (size_t i = 0; i < q->rlen; i++)
		r[i] = q->r[(q->rhead + i) & (q->rcap - 1)];
	ripen__free(q->r, q->rcap * sizeof(*q->r));
	q->r = r;
	q->rcap = cap;
	q->rhead = 0;
	return true;
}

/* Append e to the run (rlen == 0, or e ties rkey with a later seq). */
static inline __attribute__((always_inline)) bool run_append(struct ripen__prioq *q,
							      const struct ripen__entry *e)
{
	if (q->rlen == q->rcap && !run_grow(q))
		return false;
	q->r[(q->rhead + q->rlen) & (q->rcap - 1)] = *e;
	q->rlen++;
	q->rkey = e->key;
	return true;
}

/* Move the whole run into the heap (the array has room for it). */
static void run_fold(struct ripen__prioq *q)
{
	for (size_t i = 0; i < q->rlen; i++)
		heap_push(q, &q->r[(q->rhead + i) & (q->rcap - 1)]);
	q->rlen = 0;
	q->rhead = 0;
}

int ripen__prioq_push(struct ripen__prioq *q, const struct ripen__entry *e)
{
	if (q->n == q->cap && ripen__prioq_reserve(q, 1) != 0)
		return -ENOMEM;
	q->n++;
	if (q->rlen == 0) {
		if (run_append(q, e))
			return 0;
	} else if (e->key == q->rkey) {
		if (e->seq > q->r[(q->rhead + q->rlen - 1) & (q->rcap - 1)].seq && run_append(q, e))
			return 0;
	} else if (e->key > q->rkey && q->rlen <= RUN_MOVE_MAX) {
		run_fold(q);
		if (run_append(q, e)) /* the ring has room: it just held rlen >= 1 */
			return 0;
	}
	heap_push(q, e);
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
	q->n--;
	if (q->rlen != 0 && (q->hn == 0 || ripen__entry_before(&q->r[q->rhead], &q->a[0]))) {
		*out = q->r[q->rhead];
		q->rhead = (q->rhead + 1) & (q->rcap - 1);
		q->rlen--;
		return true;
	}
	*out = q->a[0];
	if (--q->hn > 0)
		sift_down(q->a, q->hn, 0, q->a[q->hn]);
	return true;
}

void ripen__prioq_heapify(struct ripen__prioq *q)
{
	size_t n;

	/* the keys changed: the run's entries no longer tie; they join the
	 * heap's array (which has room for them) before Floyd's pass */
	for (size_t i = 0; i < q->rlen; i++)
		q->a[q->hn++] = q->r[(q->rhead + i) & (q->rcap - 1)];
	q->rlen = 0;
	q->rhead = 0;
	n = q->hn;
	if (n < 2)
		return;
	/* Floyd: sift down every internal node, last first: O(n) */
	for (size_t start = (n - 2) / D + 1; start-- > 0;)
		sift_down(q->a, n, start, q->a[start]);
}

bool ripen__prioq_valid(const struct ripen__prioq *q)
{
	if (q->hn + q->rlen != q->n || q->n > q->cap || q->rlen > q->rcap)
		return false;
	for (size_t i = 1; i < q->hn; i++)
		if (ripen__entry_before(&q->a[i], &q->a[(i - 1) / D]))
			return false;
	for (size_t i = 0; i < q->rlen; i++) {
		const struct ripen__entry *e = &q->r[(q->rhead + i) & (q->rcap - 1)];

		if (e->key != q->rkey)
			return false;
		if (i > 0 && e->seq <= q->r[(q->rhead + i - 1) & (q->rcap - 1)].seq)
			return false;
	}
	return true;
}
