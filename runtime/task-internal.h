/*
 * Tasks: memory, state machine and reference counting.
 *
 * State (the low two bits of `state`, which is also the futex word that
 * ripen_task_wait sleeps on):
 *
 *     QUEUED --claim--> RUNNING --finish--> DONE
 *        \--cancel--> CANCELLED
 *
 * Every transition out of QUEUED is a CAS, so exactly one of "a worker
 * claims it", "ripen_task_wait runs it inline" and "someone cancels it"
 * wins; that is what makes "runs exactly once or is reported cancelled"
 * hold. Bit TS_WAITERS says a thread sleeps on the word, so finishing and
 * cancelling call futex_wake only when someone waits.
 *
 * Lifetime: `refs` counts the caller's handle (if any) plus every queue
 * entry that points at the task (heap, steal buffer or inbox; one per entry;
 * lazy re-prioritisation will add entries, each with its ref). A stale entry
 * still holds its ref until it surfaces and is dropped, so a freed task is
 * never reachable from a queue: the reference-count answer to DESIGN.md's
 * "memory" question. Freeing overwrites `magic`, and every entry that
 * surfaces checks it.
 */
#ifndef RIPEN_TASK_INTERNAL_H
#define RIPEN_TASK_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/wfcqueue.h>

#include "ripen.h"

enum {
	TS_QUEUED = RIPEN_TASK_QUEUED,
	TS_RUNNING = RIPEN_TASK_RUNNING,
	TS_DONE = RIPEN_TASK_DONE,
	TS_CANCELLED = RIPEN_TASK_CANCELLED,
	TS_MASK = 3u,
	TS_WAITERS = 4u,
};

#define RIPEN_TASK_MAGIC 0x7269706eu	/* "ripn" */
#define RIPEN_TASK_DEAD 0xdeadd1edu

struct ripen_task {
	struct cds_wfcq_node node;	/* inbox link; written by the enqueuer */
	ripen_fn *fn;
	void *arg;
	struct ripen_pool *pool;
	uint64_t seq;			/* submit sequence == submit time in ns (see pool.c) */
	double base;
	uint32_t class_id;
	uint32_t magic;
	_Atomic uint32_t state;		/* TS_* | TS_WAITERS; futex word */
	_Atomic uint32_t refs;
	_Atomic uint32_t version;	/* bumped by re-prioritisation (next issue) */
	uint32_t pad_;
};

struct ripen_task *ripen__task_alloc(void);
/* Drop one reference; the last one frees. Any thread. */
void ripen__task_put(struct ripen_task *t);
/* QUEUED -> RUNNING. true if this caller won and must run the task. Any thread. */
bool ripen__task_claim(struct ripen_task *t);
/* RUNNING -> DONE (caller won the claim), or QUEUED -> CANCELLED (caller won
 * ripen__task_try_cancel); wakes waiters. Any thread. */
void ripen__task_set_final(struct ripen_task *t, uint32_t final_state);
/* QUEUED -> CANCELLED: 0, -EBUSY (running) or -EALREADY. Does not touch the
 * pool's counters (the caller does). Any thread. */
int ripen__task_try_cancel(struct ripen_task *t);

static inline void ripen__task_check(const struct ripen_task *t)
{
	if (ripen__unlikely(t->magic != RIPEN_TASK_MAGIC))
		RIPEN_DIE("task %p has bad magic %#x (freed or corrupted)",
			  (const void *)t, t->magic);
}

#endif
