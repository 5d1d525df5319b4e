/*
 * Task handles: state, wait, cancel, release. See task-internal.h for the
 * state machine and the reference-counting rules.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc-internal.h"
#include "common-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"

struct ripen_task *ripen__task_alloc(bool ext)
{
	struct ripen_task *t;

	if (RIPEN_FAULT(RIPEN_FAULT_TASK_ALLOC))
		return NULL;
	t = ripen__malloc(sizeof(*t) + (ext ? sizeof(struct ripen__ext) : 0));
	if (t != NULL) {
		cds_wfcq_node_init(&t->node);
		t->magic = ext ? RIPEN_TASK_MAGIC_EXT : RIPEN_TASK_MAGIC;
	}
	return t;
}

void ripen__task_free(struct ripen_task *t)
{
	size_t size = ripen__task_size(t);

	t->magic = RIPEN_TASK_DEAD;
	ripen__free(t, size);
}

void ripen__task_put(struct ripen_task *t)
{
	uint32_t old;

	/* The only reference left is ours: nobody else can add one (adding
	 * takes a reference already held: the handle, in re-prioritisation),
	 * so free without the locked RMW, which is most tasks' last drop.
	 * acquire: pairs with the release half of the earlier holders'
	 * fetch_sub below, so their accesses precede the free. */
	if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1) {
		ripen__task_check(t);
		ripen__task_free(t);
		return;
	}
	/* acq_rel: the last dropper must see every other holder's accesses
	 * (acquire) and each holder's accesses must precede its drop (release) */
	old = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);

	if (ripen__unlikely(old == 0))
		RIPEN_DIE("task %p released more often than referenced", (void *)t);
	if (old == 1) {
		ripen__task_check(t);
		ripen__task_free(t);
	}
}

bool ripen__task_claim(struct ripen_task *t)
{
	/* relaxed: the CAS below re-validates */
	uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

	while ((s & (TS_MASK | TS_ARMED)) == TS_QUEUED) {
		RIPEN_YIELD_POINT(); /* read QUEUED; a cancel or another claim lands here */
		/* acquire on success: the claimer runs the task after reading its
		 * fields; they were published with the task (inbox, heap) */
		if (atomic_compare_exchange_weak_explicit(&t->state, &s,
							  (s & TS_WAITERS) | TS_RUNNING,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

void ripen__task_set_final(struct ripen_task *t, uint32_t final_state)
{
	/* release: the task's effects happen-before a waiter's acquire load of
	 * the final state in ripen_task_wait/ripen_task_state */
	uint32_t old = atomic_exchange_explicit(&t->state, final_state, memory_order_release);

	if (old & TS_WAITERS)
		ripen__futex_wake(&t->state, 1 << 30);
}

int ripen__task_try_cancel(struct ripen_task *t)
{
	/* relaxed: the CAS below re-validates */
	uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

	for (;;) {
		switch (s & TS_MASK) {
		case TS_RUNNING:
			return -EBUSY;
		case TS_DONE:
		case TS_CANCELLED:
			return -EALREADY;
		}
		RIPEN_YIELD_POINT(); /* read QUEUED; a claim lands here */
		/* release: a waiter that sees CANCELLED (acquire) sees what the
		 * canceller did before; the waiters bit is dropped with the word */
		if (atomic_compare_exchange_weak_explicit(&t->state, &s, TS_CANCELLED,
							  memory_order_release,
							  memory_order_relaxed))
			break;
	}
	if (s & TS_WAITERS)
		ripen__futex_wake(&t->state, 1 << 30);
	return 0;
}

/* Count a successful cancel on the out-side of idle detection. */
static void count_cancel(struct ripen_pool *pool)
{
	struct ripen__worker *self = ripen__self;

	if (self != NULL && self->pool == pool) {
		/* owner-only counter of the calling worker */
		atomic_store_explicit(&self->n_cancelled,
				      atomic_load_explicit(&self->n_cancelled, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		ripen__note_done(self);
	} else {
		/* seq_cst: the Dekker pair with ripen_pool_wait_idle's registration
		 * (idle_waiters increment, then the counter reads) */
		atomic_fetch_add_explicit(&pool->ext_cancelled, 1, memory_order_seq_cst);
		ripen__pool_maybe_signal_idle(pool);
	}
}

/*
 * Timed tasks (delayed, periodic, triggered): every transition that involves
 * the timer heap happens under timer_lock (see rebalance.c), so the cancel
 * knows whether the task was released (counted on the in-side, so the cancel
 * counts on the out-side) or still waits in the timer heap (counted nowhere:
 * it is marked and dropped when it comes due). A periodic task that is
 * running gets TS_CANCEL_REQ: -EBUSY, and it is not re-armed.
 */
static int cancel_timed(struct ripen_task *t, struct ripen__timed *tm)
{
	struct ripen_pool *pool = t->pool;
	bool in_timer = false;
	uint32_t s;
	int rc;

	pthread_mutex_lock(&pool->timer_lock);
	/* relaxed: the CAS below decides; timer_lock orders the rest */
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	for (;;) {
		uint32_t st = s & TS_MASK;

		RIPEN_YIELD_POINT(); /* a claim, a waiter's bit or a finish lands here */
		if (st == TS_DONE || st == TS_CANCELLED) {
			rc = -EALREADY;
			break;
		}
		if (st == TS_RUNNING) {
			if (s & TS_CANCEL_REQ) {
				rc = -EBUSY;
				break;
			}
			/* relaxed: read under timer_lock by rearm */
			if (atomic_compare_exchange_weak_explicit(&t->state, &s, s | TS_CANCEL_REQ,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				rc = -EBUSY;
				break;
			}
			continue;
		}
		/* release: as in ripen__task_try_cancel */
		if (atomic_compare_exchange_weak_explicit(&t->state, &s, TS_CANCELLED,
							  memory_order_release,
							  memory_order_relaxed)) {
			rc = 0;
			if (tm->where == RIPEN_T_IN) {
				/* out of the timer heap now: a server that cancels
				 * far-off timeouts must not keep them until due */
				ripen__timer_remove_locked(pool, t);
				in_timer = true;
			}
			break;
		}
	}
	pthread_mutex_unlock(&pool->timer_lock);
	if (rc != 0)
		return rc;
	if (s & TS_WAITERS)
		ripen__futex_wake(&t->state, 1 << 30);
	if (in_timer) {
		/* relaxed: statistics; no in-side count to balance */
		atomic_fetch_add_explicit(&pool->n_timer_cancelled, 1, memory_order_relaxed);
		ripen__task_put(t); /* the timer heap's reference */
	} else {
		count_cancel(pool);
	}
	return 0;
}

int ripen_task_cancel(struct ripen_task *t)
{
	struct ripen__timed *tm;
	int rc;

	if (t == NULL)
		return -EINVAL;
	ripen__task_check(t);
	tm = ripen__task_timed(t);
	if (tm != NULL)
		return cancel_timed(t, tm);
	rc = ripen__task_try_cancel(t);
	if (rc == 0)
		count_cancel(t->pool);
	return rc;
}

int ripen_task_reprioritize(struct ripen_task *t, double new_base)
{
	struct ripen_pool *pool;
	struct ripen__timed *tm;
	bool need_entry = true;

	if (t == NULL || new_base != new_base || new_base - new_base != 0.0)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE)
		return -EDEADLK;
	ripen__task_check(t);
	pool = t->pool;
	tm = ripen__task_timed(t);
	if (tm != NULL)
		pthread_mutex_lock(&pool->timer_lock);
	/* acquire: a task we see QUEUED has the fields its submitter wrote */
	if ((atomic_load_explicit(&t->state, memory_order_acquire) & TS_MASK) != TS_QUEUED) {
		if (tm != NULL)
			pthread_mutex_unlock(&pool->timer_lock);
		return -EALREADY;
	}
	RIPEN_WINDOW(RIPEN_WIN_REPRIO); /* the task runs and the pool shuts down here */
	/* relaxed: published by the version bump below */
	atomic_store_explicit(&t->base, new_base, memory_order_relaxed);
	/* seq_cst: every older entry is now stale; pairs with the drainer's
	 * fetch_and of the busy bit (worker.c inbox_take) through the busy
	 * test below, on the same word */
	atomic_fetch_add_explicit(&t->vb, RIPEN_VB_STEP, memory_order_seq_cst);
	RIPEN_WINDOW(RIPEN_WIN_REPRIO_BUMPED); /* a drainer or a claimer runs between bump and test */
	if (tm != NULL) {
		/* in the timer heap: it is keyed when released */
		need_entry = tm->where != RIPEN_T_IN && tm->where != RIPEN_T_CANCELLED_IN;
		pthread_mutex_unlock(&pool->timer_lock);
	}
	/* seq_cst: if the node is still in an inbox, its drainer clears the
	 * busy bit and reads the version in one RMW after our bump, so it keys
	 * the new one; otherwise queue a fresh entry (with its own reference) */
	if (need_entry &&
	    (atomic_fetch_or_explicit(&t->vb, RIPEN_VB_BUSY, memory_order_seq_cst) & RIPEN_VB_BUSY) == 0) {
		/* relaxed: we hold a reference (the caller's handle) */
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
		if (!ripen__inbox_reenter(pool, ripen__pick_target(pool, 0), t)) {
			/* the workers have exited: the task ran or was cancelled
			 * since we saw it QUEUED (nothing is queued once they
			 * stop), so there is nothing to re-prioritise */
			ripen__task_put(t);
			return -EALREADY;
		}
	}
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_reprio, 1, memory_order_relaxed);
	return 0;
}

enum ripen_task_state ripen_task_state(const struct ripen_task *t)
{
	if (t == NULL)
		return RIPEN_TASK_CANCELLED;
	ripen__task_check(t);
	/* acquire: pairs with the release exchange in ripen__task_set_final, so
	 * a caller that sees DONE sees the task's effects */
	return (enum ripen_task_state)(atomic_load_explicit(
		&t->state, memory_order_acquire) & TS_MASK);
}

static int wait_blocking(struct ripen_task *t, int64_t timeout_ns)
{
	uint64_t deadline = timeout_ns > 0 ? ripen__now_ns() + (uint64_t)timeout_ns : 0;

	for (;;) {
		/* acquire: pairs with the release exchange in ripen__task_set_final */
		uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
		int64_t left = -1;

		if ((s & TS_MASK) >= TS_DONE)
			return 0;
		if (timeout_ns == 0)
			return -ETIMEDOUT;
		if (timeout_ns > 0) {
			uint64_t now = ripen__now_ns();

			if (now >= deadline)
				return -ETIMEDOUT;
			left = (int64_t)(deadline - now);
		}
		if (!(s & TS_WAITERS)) {
			RIPEN_YIELD_POINT(); /* the finish or a re-arm lands here */
			/* relaxed: only announces a sleeper; the futex re-checks
			 * the word and the loop re-loads it with acquire */
			if (!atomic_compare_exchange_weak_explicit(&t->state, &s, s | TS_WAITERS,
								   memory_order_relaxed,
								   memory_order_relaxed))
				continue;
			s |= TS_WAITERS;
		}
		ripen__futex_wait(&t->state, s, left);
	}
}

/*
 * A worker waits, without a timeout, on a timed task of its own pool: it
 * runs the task inline at its release time, so a fork-join on a delayed,
 * periodic or triggered child cannot deadlock the pool either. Until the
 * task is due the waiter sleeps on the task's word (a cancel wakes it);
 * then, under timer_lock, it either takes the task straight out of the
 * timer heap (release and claim in one step) or, if the rebalancer has
 * released it already, claims it with the ordinary CAS against whichever
 * worker pops its entry. A periodic task goes back to the timer heap after
 * each run, so the waiter runs it at each release until it ends.
 */
static int wait_timed_inline(struct ripen__worker *self, struct ripen_task *t,
			     struct ripen__timed *tm)
{
	struct ripen_pool *pool = t->pool;

	for (;;) {
		/* acquire: pairs with the release exchange in ripen__task_set_final */
		uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
		int64_t sleep_ns = -1;
		bool claimed = false, by_timer = false;

		if ((s & TS_MASK) >= TS_DONE)
			return 0;
		/* relaxed: as in ripen_task_wait */
		if (atomic_load_explicit(&pool->mode, memory_order_relaxed) == RIPEN_MODE_CANCEL) {
			(void)ripen_task_cancel(t);
			return wait_blocking(t, -1);
		}
		if ((s & TS_MASK) == TS_QUEUED) {
			uint64_t now = ripen__now_ns();

			pthread_mutex_lock(&pool->timer_lock);
			if (tm->where == RIPEN_T_IN) {
				by_timer = claimed = ripen__timer_claim_due_locked(pool, t, now);
				if (!claimed && tm->release_ns > now)
					sleep_ns = tm->release_ns - now > (uint64_t)INT64_MAX ?
						   -1 : (int64_t)(tm->release_ns - now);
			} else {
				claimed = ripen__task_claim(t);
			}
			pthread_mutex_unlock(&pool->timer_lock);
		}
		if (claimed) {
			if (!by_timer)
				/* relaxed: we hold a reference (a handle); this one
				 * is for the run, which may hand it to the timer heap */
				atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
			atomic_store_explicit(&self->n_inline,
					      atomic_load_explicit(&self->n_inline, memory_order_relaxed) + 1,
					      memory_order_relaxed);
			ripen__run_timed(self, t);
			continue;
		}
		/* not due yet, or running elsewhere: sleep until due, or until
		 * the word changes (a cancel, the end, a re-arm: all wake us) */
		if (!(s & TS_WAITERS)) {
			/* relaxed: as in wait_blocking */
			if (!atomic_compare_exchange_weak_explicit(&t->state, &s, s | TS_WAITERS,
								   memory_order_relaxed,
								   memory_order_relaxed))
				continue;
			s |= TS_WAITERS;
		}
		ripen__futex_wait(&t->state, s, sleep_ns);
	}
}

int ripen_task_wait(struct ripen_task *t, int64_t timeout_ns)
{
	struct ripen__worker *self = ripen__self;

	if (t == NULL)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE)
		return -EDEADLK;
	ripen__task_check(t);
	if (self != NULL && self->pool == t->pool) {
		struct ripen__timed *tm = ripen__task_timed(t);

		/* A worker waiting on a task of its own pool: run it inline if it
		 * has not started, so fork-join cannot deadlock the pool. During
		 * a CANCEL shutdown it is cancelled instead of run. A timed task
		 * runs inline once due (wait_timed_inline). Nothing is run
		 * inline under a timeout, which it could overrun. */
		/* relaxed: mode is a one-way flag; a stale RUN only means we run
		 * the task instead of cancelling it, which the CANCEL contract
		 * allows for tasks that start before the mode is seen */
		if (atomic_load_explicit(&t->pool->mode, memory_order_relaxed) == RIPEN_MODE_CANCEL) {
			(void)ripen_task_cancel(t);
		} else if (timeout_ns < 0 && tm != NULL) {
			return wait_timed_inline(self, t, tm);
		} else if (timeout_ns < 0 && ripen__task_claim(t)) {
			atomic_store_explicit(&self->n_inline,
					      atomic_load_explicit(&self->n_inline, memory_order_relaxed) + 1,
					      memory_order_relaxed);
			ripen__run_task(self, t);
		}
	}
	return wait_blocking(t, timeout_ns);
}

void ripen_task_release(struct ripen_task *t)
{
	struct ripen_pool *pool;

	if (t == NULL)
		return;
	ripen__task_check(t);
	pool = t->pool;
	ripen__task_put(t);
	ripen__pool_unref(pool); /* the handle's hold on the pool's shell */
}
