/*
 * Delayed, periodic and triggered tasks (timer.c): the pool's timer heap
 * and the steps of a timed task's state machine that involve it. See
 * timer.c for the protocol; every function takes or expects timer_lock as
 * its comment says.
 */
#ifndef RIPEN_TIMER_INTERNAL_H
#define RIPEN_TIMER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "pool-internal.h"
#include "task-internal.h"

/* Submit a delayed task (QUEUED|ARMED, refs set): into the timer heap, or
 * -ESHUTDOWN once the pool is closing, or -ENOMEM. Takes timer_lock. */
int ripen__timer_submit(struct ripen_pool *pool, struct ripen_task *t);
/* Put a timed task into the timer heap (caller holds timer_lock). 0 or -ENOMEM. */
int ripen__timer_push_locked(struct ripen_pool *pool, struct ripen_task *t);
/* Take t (T_IN or T_CANCELLED_IN) out of the timer heap, wherever it is;
 * it is T_OUT after. Caller holds timer_lock and deals with the timer's
 * reference. */
void ripen__timer_remove_locked(struct ripen_pool *pool, struct ripen_task *t);
/* t waits in the timer heap and is due at `now`: release it and claim it
 * (QUEUED|ARMED -> RUNNING) in one step under timer_lock, for a worker that
 * runs it inline (task.c). true: the caller runs t and owns the timer's
 * reference. */
bool ripen__timer_claim_due_locked(struct ripen_pool *pool, struct ripen_task *t, uint64_t now);
void ripen__timers_fini(struct ripen_pool *pool);
/* Shutdown: cancel every task still waiting in the timer heap. */
void ripen__timers_cancel_all(struct ripen_pool *pool);
/* Release what is due at `now` into inboxes; returns the next release time
 * (UINT64_MAX: none). Takes timer_lock. The rebalancer's. */
uint64_t ripen__timers_release_due(struct ripen_pool *pool, uint64_t now);
/* A periodic or triggered task has just run on a worker (RUNNING): put it
 * back into the timer heap for its next release (true: the caller's
 * reference went with it), or finish it (DONE; false). Takes timer_lock. */
bool ripen__timer_rearm(struct ripen_pool *pool, struct ripen_task *t);
/* ripen_task_cancel of a timed task: 0, -EBUSY (running: a periodic task is
 * then not re-armed), -EALREADY. On 0, *count says whether the caller must
 * count the cancel on the out-side of idle detection (the task had been
 * released); one cancelled in the timer heap was counted nowhere. */
int ripen__timer_cancel(struct ripen_task *t, struct ripen__timed *tm, bool *count);
/* Cancel any task and count it (ripen_task_cancel without the argument
 * checks; a worker's cancel during a CANCEL shutdown). Any thread. */
int ripen__cancel(struct ripen_task *t);

#endif
