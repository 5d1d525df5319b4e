/*
 * The task object: memory, references, and the state transitions every
 * path shares (claim, finish, cancel). See task-internal.h for the state
 * machine and the reference-counting rules; the public calls on a task
 * handle are in handle.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc-internal.h"
#include "common-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"
#include "timer-internal.h"

_Static_assert(sizeof(struct ripen_task) == RIPEN_BLOCK_SIZE,
	       "a plain task is one block of ripen's allocator (alloc-internal.h)");

/* The slow half of ripen__task_put: other references may remain. */
void ripen__task_put_shared(struct ripen_task *t)
{
	/* acq_rel: the last dropper must see every other holder's accesses
	 * (acquire) and each holder's accesses must precede its drop (release) */
	uint32_t old = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);

	if (ripen__unlikely(old == 0))
		RIPEN_DIE("task %p released more often than referenced", (void *)t);
	if (old == 1) {
		ripen__task_check(t);
		ripen__task_free(t);
	}
}

void ripen__task_view(const struct ripen_task *t, void *pool_ctx, struct ripen_task_view *v)
{
	/* relaxed: a re-prioritisation racing this also bumps the version,
	 * which makes an entry keyed with the old base stale */
	v->base = atomic_load_explicit(&t->base, memory_order_relaxed);
	v->class_id = ripen__task_class(t);
	v->submit_ns = t->seq;
	v->deadline_ns = ripen__task_deadline(t);
	v->arg = t->arg;
	v->pool_ctx = pool_ctx;
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
		ripen__futex_wake(&t->state, RIPEN_FUTEX_ALL);
	return 0;
}
