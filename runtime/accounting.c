/*
 * Accounting: the in- and out-counters that make "the pool is idle" exact,
 * the idle check, and ripen_pool_wait_idle's sleep.
 *
 * Idle detection. Every accepted task is counted once on the "in" side
 * (inbox_in of an inbox, or local_in of the worker whose task submitted it)
 * before it becomes visible, and once on the "out" side (done of the worker
 * that finished or cancelled it, inbox_rejected for refused submits,
 * ext_cancelled for cancels by other threads) after it is finished. All are
 * monotonic. ripen__pool_is_idle reads every out-counter, then every
 * in-counter: out_read <= out(t) <= in(t) <= in_read for an instant t
 * between the two passes, so out_read == in_read proves the pool was idle
 * at t. No counter is shared by all producers and workers.
 */
#include <errno.h>
#include <limits.h>

#include "pool-internal.h"
#include "accounting-internal.h"
#include "metrics-internal.h"

bool ripen__pool_is_idle(struct ripen_pool *pool)
{
	uint64_t out = 0, in = 0;

	/* seq_cst throughout: out-side first, then in-side (see the essay) */
	out += atomic_load_explicit(&pool->ext_cancelled, memory_order_seq_cst);
	/* releases of timed tasks count on the in-side pool-wide: a release
	 * may reuse an entry already in an inbox (rebalance.c) */
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__worker *w = &pool->workers[i];

		out += atomic_load_explicit(&w->done, memory_order_seq_cst);
		out += atomic_load_explicit(&w->inbox_rejected, memory_order_seq_cst);
	}
	in += atomic_load_explicit(&pool->n_release_in, memory_order_seq_cst);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__worker *w = &pool->workers[i];

		in += atomic_load_explicit(&w->inbox_in, memory_order_seq_cst);
		in += atomic_load_explicit(&w->local_in, memory_order_seq_cst);
	}
	RIPEN_CHECK(out <= in);
	return out == in;
}

void ripen__pool_maybe_signal_idle(struct ripen_pool *pool)
{
	/* seq_cst: the finisher's load of the Dekker pair (its counter store,
	 * seq_cst, came first); pairs with the registration in wait_idle */
	if (atomic_load_explicit(&pool->idle_waiters, memory_order_seq_cst) == 0)
		return;
	if (!ripen__pool_is_idle(pool))
		return;
	/* release: bump the generation waiters sleep on */
	atomic_fetch_add_explicit(&pool->idle_seq, 1, memory_order_release);
	ripen__futex_wake(&pool->idle_seq, RIPEN_FUTEX_ALL);
}

int ripen__wait_idle(struct ripen_pool *pool, int64_t timeout_ns)
{
	uint64_t deadline = timeout_ns > 0 ? ripen__now_ns() + (uint64_t)timeout_ns : 0;
	int rc = 0;

	/* seq_cst: registration, then the counter reads in is_idle (Dekker) */
	atomic_fetch_add_explicit(&pool->idle_waiters, 1, memory_order_seq_cst);
	for (;;) {
		/* acquire: pairs with the release bump in maybe_signal_idle */
		uint32_t seq = atomic_load_explicit(&pool->idle_seq, memory_order_acquire);
		int64_t left = -1;

		if (ripen__pool_is_idle(pool))
			break;
		if (timeout_ns == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (timeout_ns > 0) {
			uint64_t now = ripen__now_ns();

			if (now >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			left = (int64_t)(deadline - now);
		}
		ripen__futex_wait(&pool->idle_seq, seq, left);
	}
	/* relaxed: only the count matters; nothing is published by leaving */
	atomic_fetch_sub_explicit(&pool->idle_waiters, 1, memory_order_relaxed);
	return rc;
}

void ripen__worker_signal_idle(struct ripen__worker *w)
{
	/* seq_cst: the completer's half of the Dekker pair with
	 * ripen_pool_wait_idle: store done, then load idle_waiters (in
	 * maybe_signal_idle). From ripen__park the count is unchanged since
	 * note_done stored it with release, which is no half of any pair: it
	 * is stored again here, ordered */
	atomic_store_explicit(&w->done, w->done_priv, memory_order_seq_cst);
	ripen__pool_maybe_signal_idle(w->pool);
}

void ripen__note_done(struct ripen__worker *w)
{
	++w->done_priv;
	/* The full idle check reads every worker's counters: only a worker
	 * whose heap looks empty makes it here. One with entries left (stale
	 * ones, when the pool is in fact idle) pops them, runs out of work and
	 * makes the check in ripen__park before it sleeps: every way to an
	 * idle pool ends with its workers parking. relaxed: a hint. */
	if (atomic_load_explicit(&w->qsize, memory_order_relaxed) == 0) {
		ripen__worker_signal_idle(w);
		return;
	}
	/* release: the task's effects happen-before the waiter's seq_cst load
	 * of `done` in ripen__pool_is_idle. No Dekker pair here: this worker
	 * still has work, and its idle check comes when it parks, which
	 * stores the count again with seq_cst. A seq_cst store on every task
	 * (an xchg) cost a spawn tree 2-5% of its time at one worker
	 * (bench_workloads Ripen_SpawnTree/1, medians of 3, alternating runs
	 * on the Intel VM: 182-185 ms with it, 176-183 without) */
	atomic_store_explicit(&w->done, w->done_priv, memory_order_release);
}

/* Count a successful cancel on the out-side of idle detection. */
void ripen__count_cancel(struct ripen_pool *pool, uint32_t class_id)
{
	struct ripen__worker *self = ripen__self;

	ripen__m_cancelled(pool, self, class_id); /* before the out-count */
	if (self != NULL && self->pool == pool) {
		ripen__bump(&self->n_cancelled, 1); /* the calling worker's own */
		ripen__note_done(self);
	} else {
		/* seq_cst: the Dekker pair with ripen_pool_wait_idle's registration
		 * (idle_waiters increment, then the counter reads) */
		atomic_fetch_add_explicit(&pool->ext_cancelled, 1, memory_order_seq_cst);
		ripen__pool_maybe_signal_idle(pool);
	}
}
