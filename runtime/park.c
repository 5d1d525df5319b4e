/*
 * Parking: idle workers sleep on a futex, and a submit wakes one.
 *
 * The protocol is a Dekker pair, the one StoreLoad ordering in ripen (it
 * needs seq_cst on both sides; compare Go's nmspinning and Tokio's idle.rs):
 *
 *   submitter                              sleeping worker w
 *   S1 inbox_in(target) += 1   [seq_cst]   P1 parked(w) = 1           [seq_cst]
 *   S2 enqueue the task                    P2 nsleeping += 1          [seq_cst]
 *   S3 r1 = parked(target)     [seq_cst]   P3 recheck: inbox hints of w and
 *   S4 r2 = nsleeping          [seq_cst]      of every peer, heap sizes,
 *      r1 ? wake(target)                      stop/pause flags        [seq_cst]
 *      : r2 ? wake_one()                   P4 futex_wait(parked(w), 1)
 *
 * In the single total order of seq_cst operations, either S1 precedes P3
 * (the sleeper sees the task and does not sleep) or P1/P2 precede S3/S4 (the
 * submitter sees a sleeper and wakes one). A task is never left in an inbox
 * with every worker asleep. A sleeper that sees a non-empty hint before the
 * enqueue S2 has landed goes back to searching and finds it a moment later.
 *
 * Waking: a waker sets parked(w) from 1 to 0 with an exchange and only the
 * thread that saw 1 calls futex_wake, so each sleep costs one wake syscall.
 * The sleeper loops on parked == 1, so spurious futex returns are harmless.
 *
 * Heaps are the second kind of place work waits, and P3 reads their sizes
 * too; the other half of that pair is on the heap's side (worker.c):
 *
 *   owner or producer of heap h            sleeping worker w
 *   H1 qsize(h): 0 -> n        [seq_cst]   P2 nsleeping += 1          [seq_cst]
 *   H2 r = nsleeping           [seq_cst]   P3 qsize(h) > 0 ?          [seq_cst]
 *      r ? wake_one()                      P4 sleep
 *
 * Only the rise from 0 needs it: a sleeper that read a non-zero size did not
 * sleep. The owner's drain and steal (heap_unlock's return value and
 * wake_gate) and a task's child (ripen__worker_push_local, the same gate)
 * make that rise. With
 * the rise stored relaxed, this was the store-buffer pattern: a peer could
 * sleep while the heap held work that then waited behind the owner's task.
 * An owner whose heap stays non-empty also wakes a sleeper (a relaxed hint,
 * for parallelism, not needed for progress).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault-internal.h"
#include "pool-internal.h"
#include "accounting-internal.h"
#include "park-internal.h"

static void wake_worker(struct ripen__worker *w)
{
	/* seq_cst: part of the Dekker pair above (S3 side reads, this clears) */
	if (atomic_exchange_explicit(&w->parked, 0, memory_order_seq_cst) == 1)
		ripen__futex_wake(&w->parked, 1);
}

void ripen__wake_one(struct ripen_pool *pool, uint64_t *rng)
{
	unsigned n = pool->nworkers, start = ripen__rand_below(rng, n);

	for (unsigned i = 0; i < n; i++) {
		struct ripen__worker *w = &pool->workers[(start + i) % n];

		/* relaxed: a filter before the exchange, which decides */
		if (atomic_load_explicit(&w->parked, memory_order_relaxed) == 1 &&
		    atomic_exchange_explicit(&w->parked, 0, memory_order_seq_cst) == 1) {
			ripen__futex_wake(&w->parked, 1);
			return;
		}
	}
}

void ripen__notify(struct ripen_pool *pool, struct ripen__worker *target, uint64_t *rng)
{
	/* seq_cst: S3/S4 (or H2) of the pairs above: the caller's store that
	 * made work visible comes first in the seq_cst order */
	if (target != NULL && atomic_load_explicit(&target->parked, memory_order_seq_cst))
		wake_worker(target);
	else if (atomic_load_explicit(&pool->nsleeping, memory_order_seq_cst))
		ripen__wake_one(pool, rng);
}

void ripen__wake_all(struct ripen_pool *pool)
{
	for (unsigned i = 0; i < pool->nworkers; i++)
		wake_worker(&pool->workers[i]);
}

/* Anything a sleeping worker could act on? (P3, the recheck) */
static bool work_visible(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;

	/* seq_cst: P3 of the protocol (pairs with the flag stores in pool.c) */
	if (atomic_load_explicit(&pool->stop, memory_order_seq_cst))
		return true;
	switch (atomic_load_explicit(&pool->paused, memory_order_seq_cst)) {
	case RIPEN_PAUSED:
		return false;
	case RIPEN_PRIMING:
		/* relaxed: prime_gen is published by the seq_cst paused store */
		return w->primed_gen != atomic_load_explicit(&pool->prime_gen, memory_order_relaxed);
	}
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__worker *v = &pool->workers[i];

		if (ripen__inbox_hint(v) > 0)
			return true;
		/* seq_cst: P3 for heaps: pairs with the seq_cst store of a
		 * heap size's rise from 0 (the owner's drain or steal, a task's
		 * child) made before its maker looks for sleepers; see above.
		 * Our own heap counts too: a thief may have pushed part of a
		 * batch back into it */
		if (atomic_load_explicit(&v->qsize, memory_order_seq_cst) > 0)
			return true;
	}
	return false;
}

void ripen__park(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;

	RIPEN_WINDOW(RIPEN_WIN_PARK_ENTRY); /* a heap or an inbox fills here, unseen */
	/* seq_cst: P1, P2 of the protocol */
	atomic_store_explicit(&w->parked, 1, memory_order_seq_cst);
	atomic_fetch_add_explicit(&pool->nsleeping, 1, memory_order_seq_cst);
	RIPEN_WINDOW(RIPEN_WIN_PARK); /* a submit lands between the announce and the recheck */
	if (!work_visible(w)) {
		/* the idle check a completer with a non-empty heap left to us
		 * (accounting.c, ripen__note_done) */
		ripen__worker_signal_idle(w);
		ripen__bump(&w->n_parks, 1); /* owner-only counter */
		/* acquire: pairs with the waker's exchange; what the waker
		 * published before waking us is visible after */
		while (atomic_load_explicit(&w->parked, memory_order_acquire) == 1)
			ripen__futex_wait(&w->parked, 1, -1);
	} else {
		/* seq_cst: withdraw; a concurrent waker may also clear it */
		atomic_store_explicit(&w->parked, 0, memory_order_seq_cst);
	}
	/* seq_cst: keeps nsleeping exact for submitters' S4 */
	atomic_fetch_sub_explicit(&pool->nsleeping, 1, memory_order_seq_cst);
}

/* The rebalancer sleeps like a worker, with its own flag (rebalance.c). */
void ripen__rebalancer_poke(struct ripen_pool *pool)
{
	if (!pool->rebal_started)
		return;
	/* seq_cst: clears the idle flag (Dekker with the rebalancer's sleep),
	 * then bumps the futex word it sleeps on */
	atomic_store_explicit(&pool->rebal_idle, 0, memory_order_seq_cst);
	atomic_fetch_add_explicit(&pool->rebal_word, 1, memory_order_seq_cst);
	ripen__futex_wake(&pool->rebal_word, 1);
}
