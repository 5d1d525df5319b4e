/*
 * The worker: its dispatch loop, inbox draining, stealing and the handling
 * of its steal buffer.
 *
 * Each worker owns a 4-ary heap (prioq.c) and a small private array `batch`
 * holding a batch it claimed (from a peer's steal buffer, or its own back).
 * At every scheduling point (between two tasks) the owner:
 *
 *   1. drains its inbox (wfcqueue, try-locked among dequeuers) into the heap;
 *   2. if a thief asked for work (sb.want) or a worker sleeps (nsleeping),
 *      moves its best min(BATCH, n/2) entries into its steal buffer and, if
 *      a worker sleeps, wakes one: work spreads in batches of the top tasks;
 *   3. one time in RIPEN_P2C_EVERY, looks at one random peer (the "power of
 *      two choices" of MultiQueues / SMQ): if that peer offers a batch whose
 *      best beats its own best, it claims it; if the peer's published best
 *      beats its own but the peer offers nothing, it asks (sb.want);
 *   4. takes its better local candidate (heap top or batch head); an entry
 *      whose task is no longer QUEUED, or whose version changed, is stale
 *      and dropped; otherwise it claims the task (CAS) and runs it.
 *
 * Its own unclaimed batch is taken back (one CAS, no re-push) when the
 * owner runs out of local work, or when the batch has been on offer for
 * RIPEN_STEAL_BATCH dispatches and its best beats the owner's local best: a
 * batch on offer costs at most that many dispatches of rank error.
 *
 * A worker with nothing local searches: its inbox, every peer's steal
 * buffer, every peer's inbox (taking half of what it holds, try-lock only),
 * asking busy peers for a batch; it spins RIPEN_SPIN_ROUNDS rounds, then
 * parks (park.c). No step waits for another thread.
 *
 * Rank error: with tasks spread round-robin, each heap holds a random 1/W
 * share of the work, so each worker's top sits near the same global
 * quantile; step 3 pulls heaps that fall behind back into line. A task
 * starts while fewer than about W strictly better tasks are still queued
 * elsewhere, plus up to one batch on offer (see tests/test_order.c).
 *
 * Owner worker only, unless a function says otherwise.
 */
#include <errno.h>
#include <sched.h>

#include "pool-internal.h"
#include "task-internal.h"

#define RIPEN_P2C_EVERY 8u	/* power of two: peer check frequency */
#define RIPEN_SPIN_ROUNDS 64u
#define RIPEN_YIELD_ROUNDS 8u

_Thread_local struct ripen__worker *ripen__self;

/* Owner-only counter, read relaxed by ripen_pool_stats. */
static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
	/* relaxed: single writer; readers want a recent value, no ordering */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
			      memory_order_relaxed);
}

void ripen__note_done(struct ripen__worker *w)
{
	/* seq_cst: the completer's half of the Dekker pair with
	 * ripen_pool_wait_idle (store done, then load idle_waiters) */
	atomic_store_explicit(&w->done, ++w->done_priv, memory_order_seq_cst);
	ripen__pool_maybe_signal_idle(w->pool);
}

void ripen__run_task(struct ripen__worker *w, struct ripen_task *t)
{
	bump(&w->n_run, 1);
	t->fn(t->arg);
	ripen__task_set_final(t, TS_DONE);
	ripen__note_done(w);
}

static inline struct ripen__entry make_entry(struct ripen_task *t)
{
	struct ripen__entry e = {
		.key = ripen__score_key(t->base),
		.seq = t->seq,
		.task = t,
		/* relaxed: a re-prioritisation racing this only makes the entry stale */
		.version = atomic_load_explicit(&t->version, memory_order_relaxed),
	};
	return e;
}

static inline bool task_queued(struct ripen_task *t)
{
	/* relaxed: a filter; the claim CAS decides */
	return (atomic_load_explicit(&t->state, memory_order_relaxed) & TS_MASK) == TS_QUEUED;
}

void ripen__worker_push_local(struct ripen__worker *w, struct ripen_task *t)
{
	struct ripen__entry e = make_entry(t);

	if (ripen__prioq_push(&w->heap, &e) == 0) {
		/* release: pairs with the idle check's loads; counted before the
		 * task can finish, so submitted never trails done */
		atomic_store_explicit(&w->local_in, ++w->local_in_priv, memory_order_release);
		return;
	}
	/* The heap could not grow: the inbox needs no allocation. */
	/* seq_cst: S1 of the park protocol (park.c) */
	atomic_fetch_add_explicit(&w->inbox_in, 1, memory_order_seq_cst);
	RIPEN_TSAN_RELEASE(t);
	cds_wfcq_enqueue(&w->inbox_head, &w->inbox_tail, &t->node);
}

/*
 * Move up to `max` tasks from v's inbox into w's heap. Any worker w; v may
 * be w. Try-lock: returns 0 at once if another dequeuer holds v's inbox.
 * Tasks the heap cannot take (no memory) stay in the inbox.
 */
static uint64_t inbox_take(struct ripen__worker *w, struct ripen__worker *v, uint64_t max)
{
	uint64_t n = 0, stale = 0;

	/* acquire: pairs with the release unlock below by the previous holder */
	if (atomic_exchange_explicit(&v->inbox_lock, 1, memory_order_acquire))
		return 0;
	while (n + stale < max) {
		struct cds_wfcq_node *node;
		struct ripen_task *t;
		struct ripen__entry e;

		if (ripen__prioq_reserve(&w->heap, 1) != 0)
			break;
		node = __cds_wfcq_dequeue_nonblocking(&v->inbox_head, &v->inbox_tail);
		if (node == NULL || node == CDS_WFCQ_WOULDBLOCK)
			break;
		t = caa_container_of(node, struct ripen_task, node);
		RIPEN_TSAN_ACQUIRE(t);
		ripen__task_check(t);
		if (!task_queued(t)) {
			stale++;
			ripen__task_put(t);
			continue;
		}
		e = make_entry(t);
		(void)ripen__prioq_push(&w->heap, &e); /* reserved above */
		n++;
	}
	if (n + stale)
		/* relaxed: a hint for sleepers and thieves (see ripen__inbox_hint) */
		atomic_fetch_add_explicit(&v->inbox_taken, n + stale, memory_order_relaxed);
	/* release: pairs with the acquire exchange of the next holder */
	atomic_store_explicit(&v->inbox_lock, 0, memory_order_release);
	if (stale)
		bump(&w->n_stale, stale);
	if (v != w && n)
		bump(&w->n_inbox_steals, n);
	return n;
}

static void drain_own_inbox(struct ripen__worker *w)
{
	if (cds_wfcq_empty(&w->inbox_head, &w->inbox_tail))
		return;
	/* Everything counted so far, plus slack for what arrives meanwhile:
	 * bounded, so a flooding producer cannot keep the owner here. */
	(void)inbox_take(w, w, ripen__inbox_hint(w) + 64);
}

static void dispatch(struct ripen__worker *w, struct ripen__entry *e);

/* Put a claimed batch where the owner will pick from it. */
static void take_batch(struct ripen__worker *w, const struct ripen__entry *e, uint32_t n)
{
	uint32_t i = 0;

	if (w->batch_head == w->batch_n) {
		for (; i < n; i++)
			w->batch[i] = e[i];
		w->batch_head = 0;
		w->batch_n = n;
		return;
	}
	for (; i < n; i++) {
		if (ripen__prioq_push(&w->heap, &e[i]) != 0) {
			/* No memory for the heap: dispatch the rest now rather
			 * than drop them; they are ready tasks. */
			for (; i < n; i++) {
				struct ripen__entry x = e[i];

				dispatch(w, &x);
			}
			return;
		}
	}
}

static bool claim_from(struct ripen__worker *w, struct ripen__worker *v)
{
	struct ripen__entry tmp[RIPEN_STEAL_BATCH];
	uint32_t n = ripen__sb_claim(&v->sb, tmp);

	if (n == 0)
		return false;
	bump(&w->n_steals, 1);
	bump(&w->n_stolen_tasks, n);
	take_batch(w, tmp, n);
	return true;
}

static bool reclaim_own(struct ripen__worker *w)
{
	struct ripen__entry tmp[RIPEN_STEAL_BATCH];
	uint32_t n = ripen__sb_reclaim(&w->sb, &w->sb_own, tmp);

	if (n == 0)
		return false;
	take_batch(w, tmp, n);
	return true;
}

/* The better of heap top and batch head, or NULL. */
static const struct ripen__entry *local_best(struct ripen__worker *w)
{
	const struct ripen__entry *h = ripen__prioq_top(&w->heap);
	const struct ripen__entry *b = w->batch_head < w->batch_n ? &w->batch[w->batch_head] : NULL;

	if (h == NULL)
		return b;
	if (b == NULL)
		return h;
	return ripen__entry_before(b, h) ? b : h;
}

static bool pop_local(struct ripen__worker *w, struct ripen__entry *out)
{
	const struct ripen__entry *best = local_best(w);

	if (best == NULL)
		return false;
	if (w->batch_head < w->batch_n && best == &w->batch[w->batch_head]) {
		*out = *best;
		w->batch_head++;
		return true;
	}
	return ripen__prioq_pop(&w->heap, out);
}

/* Step 2: offer a batch when someone wants work. */
static void maybe_fill(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;
	struct ripen__entry tmp[RIPEN_STEAL_BATCH];
	uint32_t want, sleepers, n;

	if (w->heap.n < 2 || ripen__sb_own_full(&w->sb, &w->sb_own))
		return;
	/* relaxed: requests are hints; a missed one is seen next time */
	want = atomic_load_explicit(&w->sb.want, memory_order_relaxed);
	sleepers = atomic_load_explicit(&pool->nsleeping, memory_order_relaxed);
	if (!want && !sleepers)
		return;
	n = (uint32_t)(w->heap.n / 2);
	if (n > RIPEN_STEAL_BATCH)
		n = RIPEN_STEAL_BATCH;
	for (uint32_t i = 0; i < n; i++)
		(void)ripen__prioq_pop(&w->heap, &tmp[i]);
	ripen__sb_fill(&w->sb, &w->sb_own, tmp, n);
	w->since_fill = 0;
	if (want)
		/* relaxed: see above */
		atomic_store_explicit(&w->sb.want, 0, memory_order_relaxed);
	if (sleepers)
		ripen__wake_one(pool, &w->rng);
}

/* Step 3: compare with one random peer. */
static void p2c(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;
	const struct ripen__entry *mine;
	struct ripen__worker *v;
	uint64_t my_key;
	uint32_t i;

	if (pool->nworkers < 2)
		return;
	i = ripen__rand_below(&w->rng, pool->nworkers - 1);
	v = &pool->workers[i >= w->index ? i + 1 : i];
	mine = local_best(w);
	my_key = mine ? mine->key : 0;
	/* relaxed: hints; the claim validates */
	if (ripen__sb_full_hint(&v->sb) &&
	    atomic_load_explicit(&v->sb.top_key, memory_order_relaxed) > my_key) {
		if (mine == NULL || ripen__prioq_reserve(&w->heap, RIPEN_STEAL_BATCH) == 0)
			(void)claim_from(w, v);
	} else if (atomic_load_explicit(&v->sb.pub_top, memory_order_relaxed) > my_key &&
		   !atomic_load_explicit(&v->sb.want, memory_order_relaxed)) {
		atomic_store_explicit(&v->sb.want, 1, memory_order_relaxed);
	}
}

static void publish_top(struct ripen__worker *w)
{
	const struct ripen__entry *best = local_best(w);
	uint64_t k = best ? best->key : 0;

	/* relaxed: a hint for peers' p2c; avoid dirtying the line needlessly */
	if (atomic_load_explicit(&w->sb.pub_top, memory_order_relaxed) != k)
		atomic_store_explicit(&w->sb.pub_top, k, memory_order_relaxed);
}

/* Nothing local: look everywhere once. true if work was found. */
static bool search_once(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;
	unsigned n = pool->nworkers, start = ripen__rand_below(&w->rng, n);

	drain_own_inbox(w);
	if (w->heap.n > 0)
		return true;
	if (reclaim_own(w))
		return true;
	for (unsigned i = 0; i < n; i++) {
		struct ripen__worker *v = &pool->workers[(start + i) % n];
		uint64_t hint;

		if (v == w)
			continue;
		if (claim_from(w, v))
			return true;
		hint = ripen__inbox_hint(v);
		if (hint > 0 && inbox_take(w, v, (hint + 1) / 2) > 0)
			return true;
		/* relaxed: a request; the owner reads it at its next scheduling point */
		if (atomic_load_explicit(&v->sb.pub_top, memory_order_relaxed) != 0 &&
		    !atomic_load_explicit(&v->sb.want, memory_order_relaxed))
			atomic_store_explicit(&v->sb.want, 1, memory_order_relaxed);
	}
	return false;
}

static bool search(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;

	for (unsigned round = 0; round < RIPEN_SPIN_ROUNDS + RIPEN_YIELD_ROUNDS; round++) {
		/* acquire: pairs with the release stores of the flags in pool.c */
		if (atomic_load_explicit(&pool->stop, memory_order_acquire) ||
		    atomic_load_explicit(&pool->paused, memory_order_acquire))
			return false;
		if (search_once(w))
			return true;
		if (round < RIPEN_SPIN_ROUNDS)
			ripen__cpu_relax();
		else
			sched_yield();
	}
	return false;
}

static void dispatch(struct ripen__worker *w, struct ripen__entry *e)
{
	struct ripen_task *t = e->task;

	ripen__task_check(t);
	/* relaxed: a re-prioritisation racing this only makes the entry stale;
	 * the task is then run through its newer entry */
	if (e->version != atomic_load_explicit(&t->version, memory_order_relaxed)) {
		bump(&w->n_stale, 1);
	} else if (atomic_load_explicit(&w->pool->mode, memory_order_acquire) ==
		   RIPEN_MODE_CANCEL) {
		/* acquire: pairs with the release store of mode in ripen_pool_shutdown */
		if (ripen__task_try_cancel(t) == 0) {
			bump(&w->n_cancelled, 1);
			ripen__note_done(w);
		} else {
			bump(&w->n_stale, 1);
		}
	} else if (ripen__task_claim(t)) {
		ripen__run_task(w, t);
	} else {
		bump(&w->n_stale, 1);
	}
	ripen__task_put(t); /* the entry's reference */
}

/* At exit every structure the worker owns holds only stale entries. */
static void drop_entry_at_exit(struct ripen__worker *w, struct ripen_task *t)
{
	ripen__task_check(t);
	if (task_queued(t))
		RIPEN_DIE("worker %u exiting with queued task %p", w->index, (void *)t);
	bump(&w->n_stale, 1);
	ripen__task_put(t);
}

static void cleanup(struct ripen__worker *w)
{
	struct ripen__entry e;
	struct cds_wfcq_node *node;

	(void)reclaim_own(w);
	while (pop_local(w, &e))
		drop_entry_at_exit(w, e.task);
	/* acquire: as in inbox_take; peers may still be searching */
	while (atomic_exchange_explicit(&w->inbox_lock, 1, memory_order_acquire))
		sched_yield();
	while ((node = __cds_wfcq_dequeue_blocking(&w->inbox_head, &w->inbox_tail)) != NULL) {
		struct ripen_task *t = caa_container_of(node, struct ripen_task, node);

		RIPEN_TSAN_ACQUIRE(t);
		drop_entry_at_exit(w, t);
	}
	/* release: pairs with the acquire exchange of a later holder */
	atomic_store_explicit(&w->inbox_lock, 0, memory_order_release);
}

void *ripen__worker_main(void *arg)
{
	struct ripen__worker *w = arg;
	struct ripen_pool *pool = w->pool;
	struct ripen__entry e;

	ripen__self = w;
	for (;;) {
		/* acquire: pairs with the release stores of the flags in pool.c */
		if (atomic_load_explicit(&pool->stop, memory_order_acquire))
			break;
		if (atomic_load_explicit(&pool->paused, memory_order_acquire)) {
			ripen__park(w);
			continue;
		}
		drain_own_inbox(w);
		maybe_fill(w);
		if ((ripen__rand(&w->rng) & (RIPEN_P2C_EVERY - 1)) == 0)
			p2c(w);
		if (ripen__sb_own_full(&w->sb, &w->sb_own)) {
			const struct ripen__entry *mine = local_best(w);

			if (mine == NULL ||
			    (++w->since_fill >= RIPEN_STEAL_BATCH &&
			     ripen__entry_before(&w->sb_own.e[0], mine)))
				(void)reclaim_own(w);
		}
		if (!pop_local(w, &e)) {
			publish_top(w);
			if (!search(w))
				ripen__park(w);
			continue;
		}
		publish_top(w);
		dispatch(w, &e);
	}
	cleanup(w);
	ripen__self = NULL;
	return NULL;
}
