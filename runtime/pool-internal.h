/*
 * The pool and its workers: shared structure definitions.
 *
 * Who touches what (each group sits on its own cache lines, so that owner
 * writes, submitter writes and thief writes do not false-share):
 *
 * | field group          | written by                  | read by               |
 * |----------------------|-----------------------------|-----------------------|
 * | inbox tail, inbox_in | any submitting thread       | sleepers, idle check  |
 * | inbox head, taken    | holder of inbox_lock        | sleepers (hint)       |
 * | heap (heap_lock held)| owner; a thief that won the | pub_top, qsize: all   |
 * |                      | try-lock                    |                       |
 * | parked               | owner sets, wakers clear    | submitters            |
 * | counters             | owner only                  | stats (relaxed)       |
 *
 * Free-running counters are 64-bit and only ever compared by difference.
 */
#ifndef RIPEN_POOL_INTERNAL_H
#define RIPEN_POOL_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/wfcqueue.h>

#include "common-internal.h"
#include "prioq-internal.h"
#include "ripen.h"

#ifdef RIPEN_TINY
#define RIPEN_HEAP_STEAL_MAX 4u
#else
#define RIPEN_HEAP_STEAL_MAX 32u
#endif

struct ripen__worker {
	/* --- dequeuer side of the inbox: holder of inbox_lock only */
	alignas(RIPEN_CACHELINE) struct __cds_wfcq_head inbox_head;
	_Atomic uint32_t inbox_lock;	/* try-lock among dequeuers; never waited on */
	_Atomic uint64_t inbox_taken;	/* tasks dequeued from this inbox */

	/* --- enqueuer side of the inbox: any thread */
	alignas(RIPEN_CACHELINE) struct cds_wfcq_tail inbox_tail;
	_Atomic uint64_t inbox_in;	/* submits aimed at this inbox, counted before the enqueue */
	_Atomic uint64_t inbox_rejected; /* of those, refused by a closed pool */

	/* --- thieves' line: the heap lock and what the holder publishes */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t heap_lock; /* owner in its step, or a thief; try-only for thieves */
	_Atomic uint64_t pub_top;	/* hint: best key in the heap, 0 = empty */
	_Atomic uint64_t qsize;		/* hint: entries in the heap */

	/* --- parking: owner sets, wakers clear */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t parked;	/* futex word: 1 = asleep or going to */

	/* --- owner only (counters are read relaxed by ripen_pool_stats) */
	alignas(RIPEN_CACHELINE) struct ripen__prioq heap;
	uint32_t primed_gen;		/* last prime_gen this worker drained for */
	struct ripen_pool *pool;
	unsigned index;
	uint64_t rng;
	pthread_t thread;
	int pin_cpu;			/* CPU to pin to at start, or -1 */
	bool started;
	uint64_t done_priv;
	uint64_t local_in_priv;
	_Atomic uint64_t local_in;	/* tasks submitted by this worker's tasks */
	_Atomic uint64_t done;		/* tasks this worker finished or cancelled */
	_Atomic uint64_t n_run;
	_Atomic uint64_t n_cancelled;
	_Atomic uint64_t n_steals;
	_Atomic uint64_t n_stolen_tasks;
	_Atomic uint64_t n_inbox_steals;
	_Atomic uint64_t n_stale;
	_Atomic uint64_t n_parks;
	_Atomic uint64_t n_inline;
};

enum ripen__paused {
	RIPEN_RUNNING = 0,
	RIPEN_PAUSED = 1,
	RIPEN_PRIMING = 2,	/* resume in progress: drain inboxes, do not run yet */
};

enum ripen__mode {
	RIPEN_MODE_RUN = 0,
	RIPEN_MODE_DRAIN = 1,
	RIPEN_MODE_CANCEL = 2,
};

struct ripen_pool {
	struct ripen__worker *workers;
	unsigned nworkers;

	/* --- read on every submit, written once or twice in a pool's life */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t closed;	/* external submits refused */
	_Atomic uint32_t mode;		/* enum ripen__mode */
	_Atomic uint32_t paused;	/* RIPEN_PAUSED_* */
	_Atomic uint32_t prime_gen;	/* bumped by each resume */
	_Atomic uint32_t primed;	/* workers that drained their inbox for prime_gen */
	_Atomic uint32_t stop;		/* workers exit (set once idle after shutdown) */

	/* --- changes when workers sleep or wake */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t nsleeping;

	/* --- idle detection (ripen_pool_wait_idle) */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t idle_waiters;
	_Atomic uint32_t idle_seq;	/* futex word, bumped when the pool is seen idle */
	_Atomic uint64_t ext_cancelled;	/* cancels by threads that are not workers */
	_Atomic uint64_t int_rejected;	/* worker submits refused during a CANCEL shutdown */

	pthread_mutex_t admin_lock;	/* rank RIPEN_LOCK_ADMIN: shutdown/destroy */
	bool shut_down;
};

/*
 * Lock ranks: a thread takes locks only in increasing rank. There is one
 * mutex today; its rank is recorded so that the next one has a place.
 * (Inbox locks are try-locks and never waited on, so they have no rank.)
 */
enum ripen__lock_rank {
	RIPEN_LOCK_ADMIN = 1,
};

/* The worker the calling thread is, or NULL. */
extern _Thread_local struct ripen__worker *ripen__self;

/* worker.c */
void *ripen__worker_main(void *arg);
void ripen__run_task(struct ripen__worker *w, struct ripen_task *t);
void ripen__note_done(struct ripen__worker *w);
/* Push a task submitted from a task running on w into w's heap (or, if the
 * heap cannot grow, into w's inbox). Owner only. */
void ripen__worker_push_local(struct ripen__worker *w, struct ripen_task *t);

/* park.c */
void ripen__park(struct ripen__worker *w);
void ripen__wake_worker(struct ripen__worker *w);
void ripen__wake_one(struct ripen_pool *pool, uint64_t *rng);
void ripen__wake_all(struct ripen_pool *pool);
int ripen__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void ripen__futex_wake(_Atomic uint32_t *word, int n);
/* Anything a sleeping worker could act on? (the recheck of the park protocol) */
bool ripen__work_visible(struct ripen__worker *w);

/* pool.c */
bool ripen__pool_is_idle(struct ripen_pool *pool);
void ripen__pool_maybe_signal_idle(struct ripen_pool *pool);

static inline uint64_t ripen__inbox_hint(struct ripen__worker *w)
{
	/* seq_cst: the sleeper's half of the Dekker pair with the submitter's
	 * inbox_in increment; see park.c */
	uint64_t in = atomic_load_explicit(&w->inbox_in, memory_order_seq_cst);
	uint64_t rej = atomic_load_explicit(&w->inbox_rejected, memory_order_relaxed);
	/* relaxed: hint only, a stale value errs towards "non-empty" */
	uint64_t taken = atomic_load_explicit(&w->inbox_taken, memory_order_relaxed);
	int64_t d = (int64_t)(in - rej - taken);

	return d > 0 ? (uint64_t)d : 0;
}

#endif
