/*
 * The public calls on a task handle: cancel, re-prioritise, state, wait,
 * release. They sit on top of the task object (task.c), the timer heap
 * (timer.c), the inboxes (inbox.c) and the worker's run functions
 * (worker.c), for the inline run of a waited-for task.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "common-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"
#include "timer-internal.h"
#include "inbox-internal.h"
#include "worker-internal.h"

int ripen_task_cancel(struct ripen_task *t)
{
	if (t == NULL)
		return -EINVAL;
	ripen__task_check(t);
	return ripen__cancel(t);
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
	/* seq_cst: every older entry is now stale; the first half of the
	 * requeue protocol (ripen__requeue tests the node after it) */
	atomic_fetch_add_explicit(&t->vb, RIPEN_VB_STEP, memory_order_seq_cst);
	RIPEN_WINDOW(RIPEN_WIN_REPRIO_BUMPED); /* a drainer or a claimer runs between bump and test */
	if (tm != NULL) {
		/* in the timer heap: it is keyed when released */
		need_entry = tm->where != RIPEN_T_IN && tm->where != RIPEN_T_CANCELLED_IN;
		pthread_mutex_unlock(&pool->timer_lock);
	}
	if (need_entry) {
		/* relaxed: we hold a reference (the caller's handle); this one
		 * is for the fresh entry, or dropped (ripen__requeue) */
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
		if (!ripen__requeue(pool, ripen__pick_target(pool, 0), t, true))
			/* the workers have exited: the task ran or was cancelled
			 * since we saw it QUEUED (nothing is queued once they
			 * stop), so there is nothing to re-prioritise */
			return -EALREADY;
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

void *ripen_task_arg(const struct ripen_task *t)
{
	if (t == NULL)
		return NULL;
	ripen__task_check(t);
	return t->arg; /* immutable after submit */
}

/* Sleep on t's word, last read as s, for up to sleep_ns (< 0: until woken).
 * TS_WAITERS is set first, so that the finish, a cancel or a re-arm wakes
 * us; if the word changed meanwhile, return at once for the caller to
 * re-read it. Spurious returns are fine: every caller loops. */
static void sleep_on(struct ripen_task *t, uint32_t s, int64_t sleep_ns)
{
	if (!(s & TS_WAITERS)) {
		RIPEN_YIELD_POINT(); /* the finish or a re-arm lands here */
		/* relaxed: only announces a sleeper; the futex re-checks the
		 * word and the callers re-load it with acquire */
		if (!atomic_compare_exchange_weak_explicit(&t->state, &s, s | TS_WAITERS,
							   memory_order_relaxed, memory_order_relaxed))
			return;
		s |= TS_WAITERS;
	}
	ripen__futex_wait(&t->state, s, sleep_ns);
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
		sleep_on(t, s, left);
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
			ripen__bump(&self->n_inline, 1);
			ripen__run_timed(self, t, NULL);
			continue;
		}
		/* not due yet, or running elsewhere: sleep until due, or until
		 * the word changes (a cancel, the end, a re-arm: all wake us) */
		sleep_on(t, s, sleep_ns);
	}
}

int ripen_task_wait(struct ripen_task *t, int64_t timeout_ns)
{
	struct ripen__worker *self = ripen__self;

	if (t == NULL)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_WATCH)
		return -EDEADLK; /* a watcher's callback holds up the timers it may wait for */
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
			ripen__bump(&self->n_inline, 1);
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
