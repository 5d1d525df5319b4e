/*
 * Tasks: memory, state machine and reference counting.
 *
 * State (the low two bits of `state`, which is also the futex word that
 * ripen_task_wait sleeps on):
 *
 *     QUEUED --claim--> RUNNING --finish--> DONE
 *        \--cancel--> CANCELLED
 *
 * Timed tasks add TS_ARMED while they wait in the timer heap (QUEUED|ARMED:
 * cancellable, not claimable); the release clears it and bumps the version,
 * so entries from before the wait are stale; a periodic task goes
 * RUNNING -> QUEUED|ARMED when re-armed (all under pool->timer_lock). A
 * worker waiting on a timed task may also release and claim it in one step
 * under that lock once it is due (QUEUED|ARMED -> RUNNING, rebalance.c's
 * ripen__timer_claim_due_locked), to run it inline. TS_WAITERS is the one
 * bit set without the lock (a waiter's CAS): every write of the word under
 * the lock is a CAS or an RMW that keeps it, never a plain store.
 *
 * Every transition out of QUEUED is a CAS, so exactly one of "a worker
 * claims it", "ripen_task_wait runs it inline" and "someone cancels it"
 * wins; that is what makes "runs exactly once or is reported cancelled"
 * hold. Bit TS_WAITERS says a thread sleeps on the word, so finishing and
 * cancelling call futex_wake only when someone waits.
 *
 * Lifetime: `refs` counts the caller's handle (if any) plus every queue
 * entry that points at the task (a heap entry, an inbox link, the timer heap,
 * an entry in the rebalancer's hands; re-prioritisation adds entries, each
 * with its ref). A stale entry still holds its ref until it surfaces and is
 * dropped, so a freed task is never reachable from a queue: the
 * reference-count answer to the "memory" question of the project's design
 * notes (../shared/DESIGN.md, outside this repository). Freeing overwrites
 * `magic`, and every entry that surfaces checks it.
 */
#ifndef RIPEN_TASK_INTERNAL_H
#define RIPEN_TASK_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu/wfcqueue.h>

#include "alloc-internal.h"
#include "common-internal.h"
#include "fault-internal.h"
#include "ripen.h"

enum {
	TS_QUEUED = RIPEN_TASK_QUEUED,
	TS_RUNNING = RIPEN_TASK_RUNNING,
	TS_DONE = RIPEN_TASK_DONE,
	TS_CANCELLED = RIPEN_TASK_CANCELLED,
	TS_MASK = 3u,
	TS_WAITERS = 4u,	/* someone sleeps on the word */
	TS_CANCEL_REQ = 8u,	/* cancel asked while a periodic task ran: do not re-arm */
	TS_ARMED = 16u,		/* QUEUED in the timer heap: no entry may claim it yet */
};

/* Where a timed task is (ripen__timed.where), under pool->timer_lock. */
enum {
	RIPEN_T_OUT = 0,	/* released (or never held): in an inbox, heap or running */
	RIPEN_T_IN = 1,		/* in the pool's timer heap, waiting for release_ns */
	RIPEN_T_CANCELLED_IN = 2, /* cancelled by a shutdown while in the timer heap:
				   * counted nowhere, dropped when due (a ripen_task_cancel
				   * takes the task out of the heap at once) */
};

/* Extra state of delayed, periodic and triggered tasks, in the task's
 * extension. Fields are under pool->timer_lock unless said otherwise. */
struct ripen__timed {
	uint64_t release_ns;		/* next (or last) release time */
	uint64_t interval_ns;		/* immutable */
	ripen_trigger_fn *trigger;	/* immutable */
	uint32_t target;		/* immutable: 0 any, k: worker k-1 */
	uint32_t where;			/* RIPEN_T_* */
	size_t slot;			/* index in the timer heap while there */
};

/*
 * What most tasks do not use lives in an extension right after the task, in
 * the same block, present only when a task needs it: a plain task is 64
 * bytes (one jemalloc size class, one cache line), so a queued task costs
 * 96 bytes with its heap entry. Immutable after submit except `timed`.
 */
struct ripen__ext {
	uint64_t deadline_ns;
	uint32_t class_id;
	bool is_timed;			/* delayed, periodic or triggered: `timed` is live */
	union {
		struct ripen__timed timed; /* is_timed (ripen__task_timed) */
		/* !is_timed: completion delivery (complete.c), which timed tasks
		 * cannot ask for (-EINVAL), so the two share the bytes and a
		 * classed task stays 120 bytes; immutable after submit */
		struct {
			void (*done)(void *arg, enum ripen_task_state state);
			struct ripen_cq *cq;
			struct cds_wfcq_node cq_node; /* its link in cq: `node` may still sit in an inbox */
		} c;
	};
};

#define RIPEN_TASK_MAGIC 0x7269706eu	 /* "ripn": a plain task */
#define RIPEN_TASK_MAGIC_EXT 0x72697045u /* "ripE": followed by a ripen__ext */
#define RIPEN_TASK_DEAD 0xdeadd1edu

/*
 * `vb` packs the version (bits 31..1: bumped by re-prioritisation,
 * hand-over and release; an entry made at an older version is stale) and
 * the node-busy bit (bit 0: `node` is linked in an inbox). One word, so
 * "bump the version, then test the node" (re-prioritisation) and "free the
 * node, then read the version" (the drainer) are ordered by the word's own
 * modification order.
 */
#define RIPEN_VB_BUSY 1u
#define RIPEN_VB_STEP 2u

struct ripen_task {
	struct cds_wfcq_node node;	/* inbox link; written by the enqueuer */
	ripen_fn *fn;
	void *arg;
	struct ripen_pool *pool;
	uint64_t seq;			/* submit sequence == submit time in ns (see pool.c) */
	_Atomic double base;		/* ripen_task_reprioritize writes it */
	uint32_t magic;			/* RIPEN_TASK_MAGIC[_EXT]; immutable until freed */
	_Atomic uint32_t state;		/* TS_* | TS_WAITERS | TS_CANCEL_REQ; futex word */
	_Atomic uint32_t refs;
	_Atomic uint32_t vb;		/* version << 1 | RIPEN_VB_BUSY */
};

_Static_assert(sizeof(struct ripen_task) <= 64, "a plain task fits one 64-byte size class");

static inline uint32_t ripen__vb_version(uint32_t vb)
{
	return vb >> 1;
}

static inline struct ripen__ext *ripen__task_ext(struct ripen_task *t)
{
	return t->magic == RIPEN_TASK_MAGIC_EXT ? (struct ripen__ext *)(void *)(t + 1) : NULL;
}

static inline const struct ripen__ext *ripen__task_cext(const struct ripen_task *t)
{
	return t->magic == RIPEN_TASK_MAGIC_EXT ? (const struct ripen__ext *)(const void *)(t + 1)
						: NULL;
}

/* The timer state of a delayed, periodic or triggered task; NULL otherwise. */
static inline struct ripen__timed *ripen__task_timed(struct ripen_task *t)
{
	struct ripen__ext *x = ripen__task_ext(t);

	return x != NULL && x->is_timed ? &x->timed : NULL;
}

static inline uint32_t ripen__task_class(const struct ripen_task *t)
{
	const struct ripen__ext *x = ripen__task_cext(t);

	return x != NULL ? x->class_id : 0;
}

static inline uint64_t ripen__task_deadline(const struct ripen_task *t)
{
	const struct ripen__ext *x = ripen__task_cext(t);

	return x != NULL ? x->deadline_ns : 0;
}

static inline size_t ripen__task_size(const struct ripen_task *t)
{
	return sizeof(struct ripen_task) +
	       (t->magic == RIPEN_TASK_MAGIC_EXT ? sizeof(struct ripen__ext) : 0);
}

/* What a policy sees of t (ripen.h's ripen_task_view). Any thread. */
void ripen__task_view(const struct ripen_task *t, void *pool_ctx, struct ripen_task_view *v);
/* ripen__task_put's drop when others may hold references (task.c). */
void ripen__task_put_shared(struct ripen_task *t);
/*
 * The sole holder. A queue entry holds a reference, and so does every
 * other party that can reach a task: a handle, another entry, the timer
 * heap, a completion queue (the lifetime rules above). A caller holding
 * an entry that reads refs == 1 is therefore the only one that can reach
 * the task, and stays so (a new reference is taken only from one already
 * held), so no cancel, no other claim and no new waiter can race it: claim
 * and finish need no locked instruction. Most tasks are submitted without a handle;
 * for them that saves the claim's CAS and the finish's exchange, two of
 * the locked operations a task paid (5-6% of a spawn tree's samples each,
 * perf -e cpu-clock, Intel VM). A waiter that gave up (its TS_WAITERS bit
 * still set) has dropped its handle first, so nobody sleeps on the word.
 * The three are inline: out of line, the calls cost ~10 instructions a
 * task (callgrind, cg driver fib).
 * acquire: pairs with the release half of the fetch_sub in
 * ripen__task_put_shared of every earlier holder, so their writes of the
 * word (a cancel, TS_WAITERS) are seen.
 */
static inline bool ripen__task_sole(const struct ripen_task *t)
{
	return atomic_load_explicit(&t->refs, memory_order_acquire) == 1;
}

/* QUEUED -> RUNNING. true if this caller won and must run the task. Any thread. */
static inline bool ripen__task_claim(struct ripen_task *t)
{
	uint32_t s;

	RIPEN_WINDOW(RIPEN_WIN_CLAIM); /* a cancel and the handle's release land here */
	if (ripen__task_sole(t)) {
		/* relaxed: read after the sole check, whose acquire orders the
		 * last holder's writes (a cancel) before it; read before it, a
		 * cancel and a release in between would go unseen, and the
		 * cancelled task would run (test_races caught that, 1 run in
		 * 20 beside two CPU hogs) */
		s = atomic_load_explicit(&t->state, memory_order_relaxed);
		if ((s & (TS_MASK | TS_ARMED)) != TS_QUEUED)
			return false;
		/* relaxed: nobody else can read the word (ripen__task_sole) */
		atomic_store_explicit(&t->state, (s & TS_WAITERS) | TS_RUNNING,
				      memory_order_relaxed);
		return true;
	}
	/* relaxed: the CAS below re-validates */
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
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

/* RUNNING -> DONE (caller won the claim), or QUEUED -> CANCELLED (caller won
 * ripen__task_try_cancel); wakes waiters, and then returns true. Any
 * thread. */
static inline bool ripen__task_set_final(struct ripen_task *t, uint32_t final_state)
{
	uint32_t old;

	if (ripen__task_sole(t)) {
		/* release: a completion queue that takes a reference after
		 * this hands the task over with its own release (complete.c) */
		atomic_store_explicit(&t->state, final_state, memory_order_release);
		return false; /* no handle, so nobody sleeps on the word */
	}
	/* release: the task's effects happen-before a waiter's acquire load of
	 * the final state in ripen_task_wait/ripen_task_state */
	old = atomic_exchange_explicit(&t->state, final_state, memory_order_release);
	if (!(old & TS_WAITERS))
		return false;
	ripen__futex_wake(&t->state, RIPEN_FUTEX_ALL);
	return true;
}

/* QUEUED -> CANCELLED: 0, -EBUSY (running) or -EALREADY. Does not touch the
 * pool's counters (the caller does). Any thread. */
int ripen__task_try_cancel(struct ripen_task *t);

/* complete.c: t reached its final state (DONE or CANCELLED) and has a done
 * callback or a completion queue: call the one, push to the other. */
void ripen__task_deliver(struct ripen_task *t, uint32_t final_state);

/* After a plain task's final state is set, before it counts as finished
 * (the out-side of idle detection): its completion, if it asked for one;
 * true when there was one. */
static inline bool ripen__task_completed(struct ripen_task *t, uint32_t final_state)
{
	const struct ripen__ext *x = ripen__task_cext(t);

	if (ripen__likely(x == NULL || x->is_timed || (x->c.done == NULL && x->c.cq == NULL)))
		return false;
	ripen__task_deliver(t, final_state);
	return true; /* a done callback ran, or a completion queue was fed */
}

static inline void ripen__task_check(const struct ripen_task *t)
{
	if (ripen__unlikely(t->magic != RIPEN_TASK_MAGIC && t->magic != RIPEN_TASK_MAGIC_EXT))
		RIPEN_DIE("task %p has bad magic %#x (freed or corrupted)",
			  (const void *)t, t->magic);
}

/*
 * Allocation and the last drop, inline: a spawn allocates a task and its
 * run drops it, and the calls cost ~15 instructions a task (callgrind, cg
 * driver fib).
 */

/* A task with an extension when `ext`; magic set, node initialised. */
static inline struct ripen_task *ripen__task_alloc(bool ext)
{
	struct ripen_task *t;

	if (RIPEN_FAULT(RIPEN_FAULT_TASK_ALLOC))
		return NULL;
	t = ext ? ripen__malloc(sizeof(*t) + sizeof(struct ripen__ext)) : ripen__block_alloc();
	if (t != NULL) {
		cds_wfcq_node_init(&t->node);
		t->magic = ext ? RIPEN_TASK_MAGIC_EXT : RIPEN_TASK_MAGIC;
	}
	return t;
}

/* Free a task nobody references any more (or never published). */
static inline void ripen__task_free(struct ripen_task *t)
{
	size_t size = ripen__task_size(t);

	t->magic = RIPEN_TASK_DEAD;
	if (size == RIPEN_BLOCK_SIZE)
		ripen__block_free(t);
	else
		ripen__free(t, size);
}

/* Drop one reference; the last one frees. Any thread. */
static inline void ripen__task_put(struct ripen_task *t)
{
	/* The only reference left is ours: nobody else can add one (adding
	 * takes a reference already held: the handle, in re-prioritisation),
	 * so free without the locked RMW, which is most tasks' last drop.
	 * acquire: pairs with the release half of the earlier holders'
	 * fetch_sub (ripen__task_put_shared), so their accesses precede the
	 * free. */
	if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1) {
		ripen__task_check(t);
		ripen__task_free(t);
		return;
	}
	ripen__task_put_shared(t);
}

#endif
