/*
 * Task handles: state, wait, cancel, release. See task-internal.h for the
 * state machine and the reference-counting rules.
 */
#include <errno.h>
#include <stddef.h>

#include "alloc-internal.h"
#include "common-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"

struct ripen_task *ripen__task_alloc(void)
{
	struct ripen_task *t;

	if (RIPEN_FAULT(RIPEN_FAULT_TASK_ALLOC))
		return NULL;
	t = ripen__malloc(sizeof(*t));
	if (t != NULL)
		cds_wfcq_node_init(&t->node);
	return t;
}

void ripen__task_put(struct ripen_task *t)
{
	/* acq_rel: the last dropper must see every other holder's accesses
	 * (acquire) and each holder's accesses must precede its drop (release) */
	uint32_t old = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);

	if (ripen__unlikely(old == 0))
		RIPEN_DIE("task %p released more often than referenced", (void *)t);
	if (old == 1) {
		ripen__task_check(t);
		t->magic = RIPEN_TASK_DEAD;
		ripen__free(t, sizeof(*t));
	}
}

bool ripen__task_claim(struct ripen_task *t)
{
	/* relaxed: the CAS below re-validates */
	uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

	while ((s & TS_MASK) == TS_QUEUED) {
		/* acquire on success: the claimer runs the task after reading its
		 * fields; they were published with the task (inbox, buffer) */
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

int ripen_task_cancel(struct ripen_task *t)
{
	struct ripen__worker *self = ripen__self;
	struct ripen_pool *pool;
	int rc;

	if (t == NULL)
		return -EINVAL;
	ripen__task_check(t);
	pool = t->pool;
	rc = ripen__task_try_cancel(t);
	if (rc != 0)
		return rc;
	if (self != NULL && self->pool == pool) {
		/* owner-only counters of the calling worker */
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

int ripen_task_wait(struct ripen_task *t, int64_t timeout_ns)
{
	struct ripen__worker *self = ripen__self;

	if (t == NULL)
		return -EINVAL;
	ripen__task_check(t);
	if (self != NULL && self->pool == t->pool) {
		/* A worker waiting on a task of its own pool: run it inline if it
		 * has not started, so fork-join cannot deadlock the pool. During
		 * a CANCEL shutdown it is cancelled instead of run. */
		/* relaxed: mode is a one-way flag; a stale RUN only means we run
		 * the task instead of cancelling it, which the CANCEL contract
		 * allows for tasks that start before the mode is seen */
		if (atomic_load_explicit(&t->pool->mode, memory_order_relaxed) == RIPEN_MODE_CANCEL) {
			(void)ripen_task_cancel(t);
		} else if (ripen__task_claim(t)) {
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
	if (t == NULL)
		return;
	ripen__task_check(t);
	ripen__task_put(t);
}
