/*
 * Delayed, periodic and triggered tasks: the timer heap and every step of a
 * timed task's state machine that involves it.
 *
 * Timers: a binary min-heap by (release_ns, seq) under timer_lock, each
 * entry's slot recorded in its task so that it can leave from anywhere.
 * Every transition of a timed task that involves the timer heap happens
 * under that lock: the worker's re-arm (RUNNING -> QUEUED|ARMED + push), a
 * cancel (task.c: out of the heap at once), the release here (T_IN -> T_OUT,
 * in-side count, version bump, ARMED cleared, inbox), and a waiting worker's
 * release-and-claim of a due task it runs inline (task.c). So a cancel knows
 * exactly whether the task was counted, and no entry can run a task before
 * its release. Times saturate at UINT64_MAX ("never"), so neither a release
 * time nor the rebalancer's next wake-up can wrap into the past.
 *
 * The rebalancer thread calls ripen__timers_release_due each period (and
 * sleeps until the next release time it returns); submit, cancel, the
 * worker's re-arm and a waiting worker's inline run call the rest. All of
 * it under pool->timer_lock unless a function says otherwise.
 */
#include <errno.h>
#include <stdlib.h>

#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"
#include "timer-internal.h"
#include "accounting-internal.h"
#include "inbox-internal.h"
#include "park-internal.h"
#include "rcu-internal.h"
#include "metrics-internal.h"
#include "trace-internal.h"

#define RIPEN_TIMERS_INIT 64u	/* first capacity of the timer heap */

static bool timer_before(const struct ripen__timer *a, const struct ripen__timer *b)
{
	return a->release_ns < b->release_ns ||
	       (a->release_ns == b->release_ns && a->seq < b->seq);
}

/* Every move of an entry records its slot in the task (ripen__timed.slot),
 * so that a task can leave the heap from anywhere: a cancel, or an inline
 * run by a waiting worker (task.c). */
static void timer_set(struct ripen__timer *a, size_t i, struct ripen__timer x)
{
	a[i] = x;
	ripen__task_timed(x.task)->slot = i;
}

static void timer_sift_up(struct ripen_pool *pool, size_t i, struct ripen__timer x)
{
	struct ripen__timer *a = pool->timers;

	while (i > 0 && timer_before(&x, &a[(i - 1) / 2])) {
		timer_set(a, i, a[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	timer_set(a, i, x);
}

static void timer_sift_down(struct ripen_pool *pool, size_t i, struct ripen__timer x)
{
	struct ripen__timer *a = pool->timers;
	size_t n = pool->ntimers;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && timer_before(&a[c + 1], &a[c]))
			c++;
		if (!timer_before(&a[c], &x))
			break;
		timer_set(a, i, a[c]);
		i = c;
	}
	timer_set(a, i, x);
}

int ripen__timer_push_locked(struct ripen_pool *pool, struct ripen_task *t)
{
	struct ripen__timed *tm = ripen__task_timed(t);
	struct ripen__timer x = { tm->release_ns, t->seq, t }, *a;

	if (pool->ntimers == pool->timers_cap) {
		size_t cap = pool->timers_cap ? 2 * pool->timers_cap : RIPEN_TIMERS_INIT;

		if (RIPEN_FAULT(RIPEN_FAULT_HEAP_GROW))
			return -ENOMEM;
		a = realloc(pool->timers, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		pool->timers = a;
		pool->timers_cap = cap;
	}
	timer_sift_up(pool, pool->ntimers++, x);
	tm->where = RIPEN_T_IN;
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_delayed, 1, memory_order_relaxed);
	return 0;
}

/* Remove the entry in slot i (the caller deals with its task). */
static void timer_remove_at(struct ripen_pool *pool, size_t i)
{
	struct ripen__timer *a = pool->timers, last;
	size_t n = --pool->ntimers;

	RIPEN_CHECK(i <= n);
	if (i == n)
		return;
	last = a[n];
	if (i > 0 && timer_before(&last, &a[(i - 1) / 2]))
		timer_sift_up(pool, i, last);
	else
		timer_sift_down(pool, i, last);
}

static void timer_pop_locked(struct ripen_pool *pool)
{
	timer_remove_at(pool, 0);
}

void ripen__timer_remove_locked(struct ripen_pool *pool, struct ripen_task *t)
{
	struct ripen__timed *tm = ripen__task_timed(t);

	RIPEN_CHECK(tm->where != RIPEN_T_OUT && tm->slot < pool->ntimers &&
		    pool->timers[tm->slot].task == t);
	timer_remove_at(pool, tm->slot);
	if (tm->where == RIPEN_T_IN)
		/* relaxed: statistics */
		atomic_fetch_sub_explicit(&pool->n_delayed, 1, memory_order_relaxed);
	tm->where = RIPEN_T_OUT;
}

/* A release: count it on the in-side, make every older entry stale, make
 * the task claimable. The timer heap has let go of t already. */
static void released_locked(struct ripen_pool *pool, struct ripen_task *t)
{
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_released, 1, memory_order_relaxed);
	/* seq_cst: the in-side of idle detection for this release, counted
	 * before the task can be claimed */
	atomic_fetch_add_explicit(&pool->n_release_in, 1, memory_order_seq_cst);
	ripen__m_timer_count(pool->metrics->timer_submitted, ripen__task_class(t));
	/* seq_cst: every entry made before is stale from here on (see the
	 * task state essay); then make the task claimable */
	atomic_fetch_add_explicit(&t->vb, RIPEN_VB_STEP, memory_order_seq_cst);
	atomic_fetch_and_explicit(&t->state, ~(uint32_t)TS_ARMED, memory_order_seq_cst);
}

bool ripen__timer_claim_due_locked(struct ripen_pool *pool, struct ripen_task *t, uint64_t now)
{
	struct ripen__timed *tm = ripen__task_timed(t);
	/* relaxed: timer_lock orders every transition of an armed task but a
	 * waiter's TS_WAITERS, which the CAS keeps */
	uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

	if (tm->where != RIPEN_T_IN || tm->release_ns > now ||
	    (s & (TS_MASK | TS_ARMED)) != (TS_QUEUED | TS_ARMED))
		return false;
	ripen__timer_remove_locked(pool, t);
	released_locked(pool, t);
	/* acquire: as in ripen__task_claim; the word is QUEUED now (ARMED
	 * cleared above) and only TS_WAITERS can change under timer_lock */
	s &= ~(uint32_t)TS_ARMED;
	while (!atomic_compare_exchange_weak_explicit(&t->state, &s, (s & TS_WAITERS) | TS_RUNNING,
						      memory_order_acquire, memory_order_relaxed))
		RIPEN_CHECK((s & (TS_MASK | TS_ARMED)) == TS_QUEUED);
	return true;
}

uint64_t ripen__timers_release_due(struct ripen_pool *pool, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	pthread_mutex_lock(&pool->timer_lock);
	while (pool->ntimers > 0) {
		struct ripen__timer top = pool->timers[0];
		struct ripen_task *t = top.task;
		struct ripen__timed *tm = ripen__task_timed(t);

		if (top.release_ns > now) {
			next = top.release_ns;
			break;
		}
		if (tm->where == RIPEN_T_CANCELLED_IN) {
			timer_pop_locked(pool);
			tm->where = RIPEN_T_OUT;
			ripen__task_put(t); /* the timer's reference */
			continue;
		}
		ripen__timer_remove_locked(pool, t);
		released_locked(pool, t);
		/* A node still linked in an inbox (queued by a re-prioritisation
		 * before the last run) becomes this release's entry when drained:
		 * it reads the new version. Otherwise queue one; the timer's
		 * reference goes with it, or is dropped. */
		(void)ripen__requeue(pool, ripen__pick_target(pool, tm->target), t, false);
	}
	pthread_mutex_unlock(&pool->timer_lock);
	return next;
}

void ripen__timers_cancel_all(struct ripen_pool *pool)
{
	uint64_t n = 0;

	pthread_mutex_lock(&pool->timer_lock);
	for (size_t i = 0; i < pool->ntimers; i++) {
		struct ripen_task *t = pool->timers[i].task;
		struct ripen__timed *tm = ripen__task_timed(t);

		if (tm->where != RIPEN_T_IN)
			continue;
		/* QUEUED is the only state a task in the timer heap can have;
		 * release: as in ripen__task_try_cancel */
		if (ripen__task_try_cancel(t) == 0) {
			tm->where = RIPEN_T_CANCELLED_IN;
			ripen__m_timer_count(pool->metrics->timer_cancelled, ripen__task_class(t));
			n++;
		}
	}
	pthread_mutex_unlock(&pool->timer_lock);
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_timer_cancelled, n, memory_order_relaxed);
	atomic_fetch_sub_explicit(&pool->n_delayed, n, memory_order_relaxed);
}

void ripen__timers_fini(struct ripen_pool *pool)
{
	for (size_t i = 0; i < pool->ntimers; i++)
		ripen__task_put(pool->timers[i].task);
	free(pool->timers);
	pool->timers = NULL;
	pool->ntimers = pool->timers_cap = 0;
}

/*
 * A periodic or triggered task has run (state RUNNING): re-arm it in the
 * timer heap, or finish it. true when re-armed: the entry's reference then
 * belongs to the timer heap. The CAS RUNNING -> QUEUED happens under
 * timer_lock, like every timer-related transition (task.c's cancel), so a
 * cancel either sees RUNNING (sets TS_CANCEL_REQ: not re-armed) or sees the
 * task back in the timer heap.
 */
bool ripen__timer_rearm(struct ripen_pool *pool, struct ripen_task *t)
{
	struct ripen__timed *tm = ripen__task_timed(t);
	uint64_t next, now = ripen__now_ns();
	uint32_t s;
	bool armed = false;

	if (tm->trigger != NULL) {
		struct ripen_task_view v;
		void *pool_ctx;

		ripen__rcu_read_lock();
		ripen__pool_snapshot(pool, NULL, &pool_ctx);
		ripen__task_view(t, pool_ctx, &v);
		ripen__in_callback = RIPEN_CB_TRIGGER;
		next = tm->trigger(&v);
		ripen__in_callback = RIPEN_CB_NONE;
		ripen__rcu_read_unlock();
	} else {
		/* the interval counts from the previous release: no drift;
		 * releases missed while running late are skipped. Saturating:
		 * a release past the clock's range is UINT64_MAX, never */
		next = ripen__sat_add(tm->release_ns, tm->interval_ns);
		if (next <= now) {
			uint64_t k = (now - next) / tm->interval_ns + 1;

			next = k > (UINT64_MAX - next) / tm->interval_ns ?
			       UINT64_MAX : next + k * tm->interval_ns;
		}
	}
	pthread_mutex_lock(&pool->timer_lock);
	/* relaxed: timer_lock orders this against cancel, which sets
	 * TS_CANCEL_REQ under it; TS_WAITERS is set without the lock, so the
	 * write-back below is a CAS that keeps it */
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	RIPEN_WINDOW(RIPEN_WIN_REARM); /* a waiter sets TS_WAITERS here */
	if (next != 0 && !(s & TS_CANCEL_REQ) &&
	    atomic_load_explicit(&pool->mode, memory_order_relaxed) == RIPEN_MODE_RUN) {
		uint64_t old = tm->release_ns;

		tm->release_ns = next;
		if (ripen__timer_push_locked(pool, t) == 0) {
			/* release on success: a claimer's acquire CAS (after the
			 * release clears ARMED) sees the run's effects. Only a
			 * waiter's TS_WAITERS can change the word meanwhile
			 * (wait_blocking's CAS): retry with it kept */
			while (!atomic_compare_exchange_weak_explicit(
				&t->state, &s, (s & TS_WAITERS) | TS_QUEUED | TS_ARMED,
				memory_order_release, memory_order_relaxed))
				;
			armed = true;
		} else {
			/* no memory: the task ends here, counted */
			tm->release_ns = old;
			atomic_fetch_add_explicit(&pool->n_rearm_failed, 1, memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&pool->timer_lock);
	if (armed) {
		/* a worker waiting to run it inline sleeps on the word while it
		 * runs here: it must see it queued again (task.c) */
		if (s & TS_WAITERS)
			ripen__futex_wake(&t->state, RIPEN_FUTEX_ALL);
		ripen__rebalancer_poke(pool);
	} else {
		ripen__task_set_final(t, TS_DONE);
	}
	return armed;
}

/*
 * Timed tasks (delayed, periodic, triggered): every transition that involves
 * the timer heap happens under timer_lock (see rebalance.c), so the cancel
 * knows whether the task was released (counted on the in-side, so the cancel
 * counts on the out-side) or still waits in the timer heap (counted nowhere:
 * it leaves the heap at once). A periodic task that is
 * running gets TS_CANCEL_REQ: -EBUSY, and it is not re-armed.
 */
int ripen__timer_cancel(struct ripen_task *t, struct ripen__timed *tm, bool *count)
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
				ripen__m_timer_count(pool->metrics->timer_cancelled,
						     ripen__task_class(t));
				in_timer = true;
			}
			break;
		}
	}
	pthread_mutex_unlock(&pool->timer_lock);
	if (rc != 0)
		return rc;
	if (s & TS_WAITERS)
		ripen__futex_wake(&t->state, RIPEN_FUTEX_ALL);
	if (in_timer) {
		/* relaxed: statistics; no in-side count to balance */
		atomic_fetch_add_explicit(&pool->n_timer_cancelled, 1, memory_order_relaxed);
		ripen__task_put(t); /* the timer heap's reference */
	} else {
		*count = true; /* released: counted on the in-side, so out too */
	}
	return 0;
}

int ripen__timer_submit(struct ripen_pool *pool, struct ripen_task *t)
{
	int rc;

	/* The closed check is under timer_lock: a shutdown stores closed,
	 * then cancels the timer heap under the same lock, so a delayed task
	 * is either refused or seen by that cancel. Delayed tasks are refused
	 * during any shutdown, children included. */
	pthread_mutex_lock(&pool->timer_lock);
	/* seq_cst: as submit's closed check (pool.c, step 4) */
	if (atomic_load_explicit(&pool->closed, memory_order_seq_cst))
		rc = -ESHUTDOWN;
	else
		rc = ripen__timer_push_locked(pool, t);
	pthread_mutex_unlock(&pool->timer_lock);
	if (rc == 0)
		ripen__rebalancer_poke(pool);
	return rc;
}

int ripen__cancel(struct ripen_task *t)
{
	struct ripen__timed *tm = ripen__task_timed(t);
	bool count = tm == NULL;
	int rc;

	rc = tm != NULL ? ripen__timer_cancel(t, tm, &count) : ripen__task_try_cancel(t);
	if (rc == 0 && tm == NULL) /* before it counts as finished: idle waits include it */
		ripen__task_completed(t, TS_CANCELLED);
	if (rc == 0 && count)
		ripen__count_cancel(t->pool, ripen__task_class(t));
	if (rc == 0)
		/* relaxed: the base as last set */
		ripen__trace_cancel(t->pool, ripen__task_class(t), ripen__ready_ns(t),
				    atomic_load_explicit(&t->base, memory_order_relaxed));
	return rc;
}
