/*
 * Idle detection (accounting.c): the in- and out-counters and the idle check.
 */
#ifndef RIPEN_ACCOUNTING_INTERNAL_H
#define RIPEN_ACCOUNTING_INTERNAL_H

#include "pool-internal.h"

/* Was the pool idle at some instant during the call? (out == in) */
bool ripen__pool_is_idle(struct ripen_pool *pool);
/* After an out-count: wake ripen_pool_wait_idle's sleepers if idle. */
void ripen__pool_maybe_signal_idle(struct ripen_pool *pool);
/* Wait until idle (timeout_ns < 0: forever): 0 or -ETIMEDOUT. */
int ripen__wait_idle(struct ripen_pool *pool, int64_t timeout_ns);
/* Worker w finished or cancelled a task: its out-count. Owner only. */
void ripen__note_done(struct ripen__worker *w);
/* Worker w may be the last one busy (its heap looks empty, or it is about
 * to park): publish its out-count, ordered, and wake ripen_pool_wait_idle's
 * sleepers if the pool is idle. Owner only. */
void ripen__worker_signal_idle(struct ripen__worker *w);
/* A successful ripen_task_cancel: the out-count, on the calling worker's
 * counter or the pool's (other threads). */
void ripen__count_cancel(struct ripen_pool *pool, uint32_t class_id);


/* Tasks in w's inbox by its counters (a hint: may err towards non-empty). */
static inline uint64_t ripen__inbox_hint(struct ripen__worker *w)
{
	/* Subtracted counters first: a reject or take counted here always
	 * has its increment of inbox_in counted below, so the hint can err
	 * only towards "non-empty". acquire: pairs with the release adds. */
	uint64_t rej = atomic_load_explicit(&w->inbox_rejected, memory_order_acquire);
	uint64_t taken = atomic_load_explicit(&w->inbox_taken, memory_order_acquire);
	/* seq_cst: the sleeper's half of the Dekker pair with the submitter's
	 * inbox_in increment; see park.c */
	uint64_t in = atomic_load_explicit(&w->inbox_in, memory_order_seq_cst) +
		      atomic_load_explicit(&w->inbox_extra, memory_order_seq_cst);
	int64_t d = (int64_t)(in - rej - taken);

	return d > 0 ? (uint64_t)d : 0;
}

#endif
