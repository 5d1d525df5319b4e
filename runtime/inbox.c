/*
 * Inboxes: each worker's wait-free queue (liburcu wfcqueue) for tasks that
 * come from outside its own step: external submits, affinity submits,
 * releases of timed tasks, re-prioritised and rebalanced tasks. Enqueuers
 * are wait-free; dequeuers (the owner draining, a peer taking half) hold the
 * inbox's try-lock (worker.c inbox_take). This file is the enqueue side:
 * where a task goes, the in-side count, the enqueue and the wake-up
 * (S1-S4 of park.c), and the requeue protocol for tasks that need a fresh
 * entry at a new version.
 */
#include <sched.h>
#include <stddef.h>

#include "pool-internal.h"
#include "task-internal.h"
#include "inbox-internal.h"
#include "park-internal.h"

static RIPEN_TLS uint32_t tls_cursor; /* round-robin target, per thread */
static RIPEN_TLS uint64_t tls_rng;

/* Tasks waiting in w's inbox, roughly: relaxed, for placement only. */
static inline uint64_t inbox_pending(struct ripen__worker *w)
{
	/* relaxed: a hint; taken first, so the difference errs high */
	uint64_t taken = atomic_load_explicit(&w->inbox_taken, memory_order_relaxed);
	uint64_t in = atomic_load_explicit(&w->inbox_in, memory_order_relaxed);

	return in > taken ? in - taken : 0;
}

/*
 * Round-robin over the workers, except past a worker that is not draining:
 * a running worker empties its inbox at every scheduling step, so one whose
 * inbox holds more than RIPEN_PLACE_PILE is descheduled, asleep or inside a
 * long task, and the next worker gets the task if its inbox is shorter.
 * Without this a producer kept feeding a descheduled worker half of its
 * tasks, and they waited for its time slice while worse ones ran.
 */
#define RIPEN_PLACE_PILE 16u

struct ripen__worker *ripen__pick_target(struct ripen_pool *pool, uint32_t inbox_opt)
{
	struct ripen__worker *w;
	unsigned n = pool->nworkers;

	if (inbox_opt != 0)
		return &pool->workers[(inbox_opt - 1) % n];
	if (tls_cursor >= n) {
		if (tls_rng == 0)
			tls_rng = ripen__seed_rng(&tls_rng);
		tls_cursor = ripen__rand_below(&tls_rng, n);
	}
	w = &pool->workers[tls_cursor];
	tls_cursor = tls_cursor + 1 < n ? tls_cursor + 1 : 0;
	if (n > 1) {
		uint64_t p = inbox_pending(w);

		if (p > RIPEN_PLACE_PILE) {
			struct ripen__worker *v = &pool->workers[tls_cursor];

			if (inbox_pending(v) < p)
				w = v;
		}
	}
	return w;
}

static void wake_for(struct ripen_pool *pool, struct ripen__worker *w);

/* Steps 5-6 of submit: enqueue, then wake whoever should take it. */
void ripen__inbox_enqueue(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t)
{
	/* a node goes around again (re-prioritised, periodic): wfcqueue
	 * leaves a dequeued node's next pointer as it was */
	cds_wfcq_node_init(&t->node);
	RIPEN_TSAN_RELEASE(t);
	cds_wfcq_enqueue(&w->inbox_head, &w->inbox_tail, &t->node);
	wake_for(pool, w);
}

/* S3, S4: after an enqueue into w's inbox. */
static void wake_for(struct ripen_pool *pool, struct ripen__worker *w)
{
	/* seq_cst: S3, S4 of the park protocol. A paused pool wakes
	 * everyone when it resumes: no wake-up per submit meanwhile. */
	if (atomic_load_explicit(&pool->paused, memory_order_seq_cst) == RIPEN_RUNNING) {
		if (tls_rng == 0)
			tls_rng = ripen__seed_rng(&tls_rng);
		ripen__notify(pool, w, &tls_rng);
	}
	/* No rebalancer poke here: it acts on heaps only, and a task waits in
	 * a heap only after the heap's rise from empty, which pokes it
	 * (worker.c, wake_gate), or after a resume (pool.c). Poking at every
	 * submit into an idle pool woke a second thread beside the worker for
	 * each first task, competing with it for a CPU (rebalance.c). */
}

void ripen__inbox_push(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t,
		       bool counted)
{
	/* seq_cst: S1 of the park protocol; for counted tasks also the in-side
	 * of idle detection, counted before the task can be seen */
	atomic_fetch_add_explicit(counted ? &w->inbox_in : &w->inbox_extra, 1, memory_order_seq_cst);
	ripen__inbox_enqueue(pool, w, t);
}

static bool inbox_reenter(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t);

bool ripen__requeue(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t,
		    bool outside)
{
	/* seq_cst: the busy test after the caller's version bump; pairs with
	 * the drainer's fetch_and of the busy bit (worker.c inbox_take),
	 * which frees the node and reads the version in one RMW on the same
	 * word: if the node is still linked, that drain comes after our bump
	 * and keys the new version, so no second entry is needed */
	if (atomic_fetch_or_explicit(&t->vb, RIPEN_VB_BUSY, memory_order_seq_cst) & RIPEN_VB_BUSY) {
		ripen__task_put(t);
		return true;
	}
	if (!outside) {
		ripen__inbox_push(pool, w, t, false); /* the reference moves with it */
		return true;
	}
	if (inbox_reenter(pool, w, t))
		return true;
	ripen__task_put(t);
	return false;
}

/* A re-entry from outside the pool's threads (re-prioritisation) into w's
 * inbox, unless the workers have stopped: then nothing would ever drain it,
 * and false is returned with nothing queued. */
static bool inbox_reenter(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t)
{
	bool open;

	/* acquire: pairs with the release unlock of the previous holder (a
	 * drainer, or the exiting worker's cleanup). Waiting is fine here:
	 * holders never block inside, and this is no dequeuer's hot path */
	while (atomic_exchange_explicit(&w->inbox_lock, 1, memory_order_acquire))
		sched_yield();
	/* relaxed: under the inbox lock. The exiting worker reads stop = 1
	 * before its cleanup takes this lock: if our hold came after that
	 * one we see 1 here; if before, the cleanup drains our node */
	open = !atomic_load_explicit(&pool->stop, memory_order_relaxed);
	if (open) {
		/* seq_cst: S1 of the park protocol (a hint counter for these) */
		atomic_fetch_add_explicit(&w->inbox_extra, 1, memory_order_seq_cst);
		cds_wfcq_node_init(&t->node);
		RIPEN_TSAN_RELEASE(t);
		cds_wfcq_enqueue(&w->inbox_head, &w->inbox_tail, &t->node);
	}
	/* release: pairs with the acquire exchange of the next holder */
	atomic_store_explicit(&w->inbox_lock, 0, memory_order_release);
	if (open)
		wake_for(pool, w);
	return open;
}
