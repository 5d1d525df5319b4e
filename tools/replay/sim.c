/*
 * The simulator: a deterministic discrete-event replay of a trace on W
 * identical non-preemptive workers, ordered by the library's own key
 * function (ripen__policy_key, runtime/policy.c).
 *
 * Model. Task i (arrival order) arrives at arrival_ns[i], is queued, and
 * once a worker takes it runs for service_ns[i] without interruption. A
 * free worker never idles while a task is queued. Which queued task a
 * worker takes is the one with the highest key, ties by the lower sequence
 * number (the arrival order index), exactly the runtime's heap order
 * (prioq-internal.h: higher key first, then lower seq). The key of a task is
 * ripen__policy_key(policy, view, seq, ref_ns) with view.base, class_id,
 * submit_ns = arrival_ns and deadline_ns from the trace.
 *
 * Events at one instant t are handled in this fixed order:
 *   1. every completion at t frees its worker;
 *   2. every arrival at t is queued (in arrival order);
 *   3. (time-varying policies, if a worker is free and a task queued) the
 *      reference time moves to t's grid point, and if it moved the whole
 *      queue is re-keyed at it;
 *   4. while a worker is free and a task is queued, the best queued task
 *      starts at t.
 * So a task that arrives exactly when a worker frees competes with
 * everything queued at that instant, and takes the worker if it is the best
 * of them; a task whose service time is 0 completes at t, and its worker
 * takes again at t (after all arrivals at t are queued). Nothing depends on
 * worker identity (workers are identical), on memory addresses or on the
 * clock: the same input gives the same waits, bit for bit.
 *
 * Order-stable policies (FIFO, static, additive aging, EDF, class weights
 * over those): a task is keyed once, when it is queued; the queue is a
 * 4-ary heap of (key, seq). A dispatch costs O(log Q) for Q queued.
 *
 * Time-varying policies (linear aging, class weights over it): the order of
 * two queued tasks changes as they wait. The runtime keys every task at
 * the pool's reference time, which its rebalancer moves to "now" once a
 * period (2 ms by default), and each worker re-keys its heap at the new
 * reference time (runtime/rebalance.c). The simulator makes the same
 * approximation: the reference time is t - t % P (P = rekey_period_ns), a
 * task queued after the reference time is keyed as if it had not waited
 * (the key function clamps the wait at 0, as in the runtime), and when the
 * reference time has moved since the last re-key, the next dispatch first
 * re-keys all of the queue, as a worker does at its next scheduling step:
 * O(Q) key computations, plus an O(Q) heapify unless every entry still
 * comes after its parent (the usual case). Keying an arrival at the
 * stale reference time and re-keying it before the dispatch gives the same
 * key as keying it at the new one, so deferring the re-key to the dispatch
 * changes nothing but the cost. Re-keys happen at most once per period of
 * simulated time and only at dispatches, so the cost per task is
 * O(log Q) + O(Q * periods / tasks): it grows linearly with the queue
 * length at a given arrival rate. With `exact`, every dispatch instead
 * computes the key of every queued task at ref = t and takes the best: the
 * order a scheduler that re-scores continuously would give, O(Q) per
 * dispatch (a reference, not a model of the runtime).
 *
 * With a controller (o->control, the adaptive policy), the policy changes
 * at the control instants (step 0 above, before the instant's events):
 * the whole queue is re-keyed with the new policy at the current reference
 * time, and time-varying policies go on re-keying on their grid.
 *
 * What the simulator does not model: the runtime's relaxed order across
 * workers (per-worker heaps, stealing, the rebalancer's merge), its
 * wake-up latency, the re-key throttle of huge heaps (worker.c) and the
 * cost of the tasks' own dispatch. tests/replay compares it with the live
 * run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"
#include "run.h"

struct ent {
	uint64_t key;
	uint64_t seq;
};

/* a runs before b: the runtime's order (prioq-internal.h) */
static inline int ent_before(const struct ent *a, const struct ent *b)
{
	return a->key > b->key || (a->key == b->key && a->seq < b->seq);
}

/* ---------------------------------------------- 4-ary max-heap of entries */

static void sift_up(struct ent *h, size_t i)
{
	struct ent e = h[i];

	while (i > 0) {
		size_t parent = (i - 1) / 4;

		if (!ent_before(&e, &h[parent]))
			break;
		h[i] = h[parent];
		i = parent;
	}
	h[i] = e;
}

static void sift_down(struct ent *h, size_t n, size_t i)
{
	struct ent e = h[i];

	for (;;) {
		size_t c = 4 * i + 1, best, end;

		if (c >= n)
			break;
		best = c;
		end = c + 4 < n ? c + 4 : n;
		for (size_t k = c + 1; k < end; k++)
			if (ent_before(&h[k], &h[best]))
				best = k;
		if (!ent_before(&h[best], &e))
			break;
		h[i] = h[best];
		i = best;
	}
	h[i] = e;
}

static void heapify(struct ent *h, size_t n)
{
	if (n < 2)
		return;
	for (size_t i = (n - 2) / 4 + 1; i-- > 0;)
		sift_down(h, n, i);
}

/* ------------------------------------------- min-heap of completion times */

static void comp_push(uint64_t *c, size_t *n, uint64_t v)
{
	size_t i = (*n)++;

	while (i > 0 && c[(i - 1) / 2] > v) {
		c[i] = c[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	c[i] = v;
}

static void comp_pop(uint64_t *c, size_t *n)
{
	uint64_t v = c[--(*n)];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, s;

		if (l >= *n)
			break;
		s = l + 1 < *n && c[l + 1] < c[l] ? l + 1 : l;
		if (c[s] >= v)
			break;
		c[i] = c[s];
		i = s;
	}
	if (*n > 0)
		c[i] = v;
}

/* -------------------------------------------------------------- keying */

static inline uint64_t key_of(const struct ripen_policy *p, const struct rr_task *t,
			      uint64_t seq, uint64_t ref_ns)
{
	struct ripen_task_view v = {
		.base = t->base,
		.class_id = t->class_id,
		.submit_ns = t->arrival_ns,
		.deadline_ns = t->deadline_ns,
	};
	bool bad = false;

	return ripen__policy_key(p, &v, seq, ref_ns, NULL, &bad);
}

int rr_simulate(const struct rr_task *t, size_t n, const struct ripen_policy *p,
		const struct rr_sim_opts *o, uint64_t *wait_ns, struct rr_sim_stats *st)
{
	const struct rr_control *ctl = o->control;
	bool tv = p->time_varying, exact = tv && o->exact;
	uint64_t next_ctl = ctl ? 0 : UINT64_MAX;
	const uint64_t period = o->rekey_period_ns ? o->rekey_period_ns : 1;
	const unsigned workers = o->workers ? o->workers : 1;
	struct rr_sim_stats s = { 0 };
	struct ent *q = n ? malloc(n * sizeof(*q)) : NULL;
	uint64_t *comp = malloc(workers * sizeof(*comp));
	size_t qn = 0, busy = 0, next = 0, started = 0;
	uint64_t ref = 0;

	if ((n && q == NULL) || comp == NULL) {
		free(q);
		free(comp);
		return -ENOMEM;
	}
	while (next < n || qn > 0) {
		uint64_t now;

		/* the next instant: the earliest completion or arrival (at
		 * the top of the loop no worker is free while work is queued) */
		if (busy > 0 && (next >= n || comp[0] <= t[next].arrival_ns))
			now = comp[0];
		else
			now = t[next].arrival_ns;

		/* 0. control instants up to now: a new policy re-keys the queue
		 * at the current reference time */
		for (; next_ctl <= now; next_ctl += ctl->period_ns) {
			const struct ripen_policy *np = ctl->step(ctl->ctx, next_ctl);

			if (np == NULL || np == p)
				continue;
			p = np;
			tv = p->time_varying;
			exact = tv && o->exact;
			if (!exact) {
				for (size_t i = 0; i < qn; i++)
					q[i].key = key_of(p, &t[q[i].seq], q[i].seq, ref);
				heapify(q, qn);
				s.rekeys++;
				s.rekeyed_entries += qn;
			}
		}

		/* 1. completions at now free their workers */
		while (busy > 0 && comp[0] == now)
			comp_pop(comp, &busy);

		/* 2. arrivals at now are queued */
		for (; next < n && t[next].arrival_ns == now; next++) {
			q[qn].seq = next;
			if (exact) {
				q[qn++].key = 0; /* keyed at each dispatch */
			} else {
				q[qn].key = key_of(p, &t[next], next, ref);
				sift_up(q, qn++);
			}
		}
		if (qn > s.max_queued)
			s.max_queued = qn;

		/* 3. the reference time of time-varying policies: before a
		 * dispatch, if it moved, the whole queue is re-keyed at it */
		if (tv && !exact && busy < workers && qn > 0 && now - now % period != ref) {
			bool broken = false;

			ref = now - now % period;
			for (size_t i = 0; i < qn; i++) {
				/* the tasks are reached in heap order: fetch ahead */
				if (i + 16 < qn)
					__builtin_prefetch(&t[q[i + 16].seq]);
				q[i].key = key_of(p, &t[q[i].seq], q[i].seq, ref);
				/* its parent is re-keyed already: still in order? */
				broken |= i > 0 && ent_before(&q[i], &q[(i - 1) / 4]);
			}
			if (broken)
				heapify(q, qn);
			s.rekeys++;
			s.rekeyed_entries += qn;
		}

		/* 4. free workers take the best queued tasks */
		while (busy < workers && qn > 0) {
			uint64_t seq;

			if (exact) {
				size_t best = 0;

				for (size_t i = 0; i < qn; i++)
					q[i].key = key_of(p, &t[q[i].seq], q[i].seq, now);
				for (size_t i = 1; i < qn; i++)
					if (ent_before(&q[i], &q[best]))
						best = i;
				s.rekeyed_entries += qn;
				seq = q[best].seq;
				q[best] = q[--qn];
			} else {
				seq = q[0].seq;
				q[0] = q[--qn];
				if (qn > 1)
					sift_down(q, qn, 0);
			}
			wait_ns[seq] = now - t[seq].arrival_ns;
			if (ctl != NULL)
				ctl->on_start(ctl->ctx, seq, now);
			comp_push(comp, &busy, now + t[seq].service_ns);
			if (o->progress != NULL && (++started & 0xffff) == 0)
				o->progress(o->progress_ctx, started);
		}
	}
	free(q);
	free(comp);
	if (st != NULL)
		*st = s;
	return 0;
}
