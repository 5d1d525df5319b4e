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
#include "policy-internal.h"
#include "prioq-internal.h"
#include "ripen.h"

#ifdef RIPEN_TINY
#define RIPEN_HEAP_STEAL_MAX 4u
#elif !defined(RIPEN_HEAP_STEAL_MAX)
#define RIPEN_HEAP_STEAL_MAX 32u
#endif
/* The stall rule (worker.c): a worker runs at most this many entries worse
 * than a peer's published best under one hold of that peer's heap lock,
 * counted from the look that found it held, then waits for the hold to end */
#ifdef RIPEN_TINY
#define RIPEN_STALL_AHEAD 4u
#elif !defined(RIPEN_STALL_AHEAD)
#define RIPEN_STALL_AHEAD 32u
#endif

struct ripen__wmetrics;
struct ripen__metrics;
struct ripen__watchers;
struct ripen__tring;
struct ripen__trace;

struct ripen__worker {
	/* --- dequeuer side of the inbox: holder of inbox_lock only */
	alignas(RIPEN_CACHELINE) struct __cds_wfcq_head inbox_head;
	_Atomic uint32_t inbox_lock;	/* try-lock among dequeuers; never waited on */
	_Atomic uint64_t inbox_taken;	/* tasks dequeued from this inbox */

	/* --- enqueuer side of the inbox: any thread */
	alignas(RIPEN_CACHELINE) struct cds_wfcq_tail inbox_tail;
	_Atomic uint64_t inbox_in;	/* submits aimed at this inbox, counted before the enqueue */
	_Atomic uint64_t inbox_rejected; /* of those, refused by a closed pool */
	_Atomic uint64_t inbox_extra;	/* re-entries (re-prioritised tasks): hint only */

	/* --- the heap lock, on a line of its own */
	/* odd while held; each hold adds 2, so a value seen twice is one hold
	 * (worker.c, the stall rule). Owner in its step, or a thief: try-only
	 * for thieves */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t heap_lock;
	/* --- what the holder publishes: read by every peer's look, search
	 * and idle check. Apart from the lock, whose CAS would otherwise
	 * find the line shared after each look and wait for it; the
	 * holder's plain stores here drain while its task runs */
	/* hint: best key in the heap, 0 = empty */
	alignas(RIPEN_CACHELINE) _Atomic uint64_t pub_top;
	_Atomic uint64_t qsize;		/* hint: entries in the heap */

	/* --- parking: owner sets, wakers clear */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t parked;	/* futex word: 1 = asleep or going to */

	/* --- owner only (counters are read relaxed by ripen_pool_stats) */
	alignas(RIPEN_CACHELINE) struct ripen__prioq heap;
	uint32_t primed_gen;		/* last prime_gen this worker drained for */
	/* keys in the heap were computed with these (written under heap_lock,
	 * read by thieves that hold it) */
	uint64_t keyed_ref;		/* reference time of time-varying keys */
	uint64_t keyed_policy_gen;	/* policy/context generation */
	uint64_t keyed_time_gen;	/* re-score generation */
	uint64_t rekey_not_before;	/* throttle for periodic re-scores */
	uint32_t rekey_epoch;		/* the owner's current re-key pass */
	bool rekeying;			/* a pass is under way (read by thieves under the lock) */
	struct ripen__wmetrics *m;	/* per-class recording (metrics.c) */
	bool metrics_on;		/* histograms recorded */
	/* the recording clock's anchor (metrics-internal.h): the fast read is
	 * good while the TSC is less than anchor_win past anchor_tsc */
	uint64_t anchor_tsc, anchor_ns, anchor_win;
	/* the end stamp of the task this worker ran last, while nothing has
	 * come since but quiet steps: the next task's start (worker.c,
	 * run_fn); 0: read the clock */
	uint64_t boundary;
	struct ripen__tring *_Atomic tring; /* trace ring while a trace runs (trace.c) */
	const struct ripen_policy *pol; /* policy for this step (RCU read side) */
	/* the last step's policy, when a key needs nothing but the task:
	 * RIPEN_POL_STATIC or RIPEN_POL_FIFO, else -1; valid while policy_gen
	 * is still fast_gen (worker.c, push_local's fast path) */
	int fast_kind;
	bool fast_tv;			/* that policy is time-varying */
	uint64_t fast_gen;
	void *pool_ctx;			/* context for this step (RCU read side) */
	struct ripen_pool *pool;
	unsigned index;
	uint64_t rng;
	pthread_t thread;
	int pin_cpu;			/* CPU to pin to at start, or -1 */
	bool started;
	bool starting;			/* in its start hook: submits go the external way */
	bool exiting;			/* past its last task: its submits are refused */
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
	_Atomic uint64_t n_rekeys;
	_Atomic uint64_t n_rekeyed;
	_Atomic uint64_t n_rekey_ns;
	_Atomic uint64_t n_bad;
	_Atomic uint64_t n_looks;
	_Atomic uint64_t n_steal_busy;
	_Atomic uint64_t n_lock_waits;
	_Atomic uint64_t n_lock_yields;
	_Atomic uint64_t n_stall_waits;
	_Atomic uint64_t n_stall_yields;
	/* the stall rule (worker.c): a peer whose heap was locked, with a
	 * better best entry than ours, when we last looked */
	struct ripen__worker *stall_peer;
	uint32_t stall_hold;		/* its heap_lock then (odd: that hold) */
	uint32_t stall_ahead;		/* our pops behind its best since */
	uint32_t stall_spins;		/* backoff steps of its waits so far */
	bool stall_rewait;		/* a wait under it ended for our inbox */
	/* set while in the stall wait: the rebalancer leaves this worker's
	 * heap alone then (it is not stuck, and its entries are worse than
	 * the held peer's best); owner writes, rebalancer reads, a hint */
	_Atomic bool stall_waiting;
	/* the recording clock's rate check (metrics.c, rate_holds), once in
	 * 16 ms: kept off the lines that every task touches */
	uint64_t rate_tsc, rate_raw;	/* its reference pair */
	uint64_t rate_next;		/* CLOCK_MONOTONIC ns of the next check */
	uint32_t rate_fails;		/* failed checks in a row */
};

/* A context published with ripen_pool_set_context. */
struct ripen__ctx {
	void *ctx;
	void (*ctx_free)(void *);
};

/* An entry of the pool's timer heap (delayed and periodic tasks). */
struct ripen__timer {
	uint64_t release_ns;
	uint64_t seq;
	struct ripen_task *task;
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
	_Atomic uint32_t paused;	/* enum ripen__paused */
	_Atomic uint32_t prime_gen;	/* bumped by each resume */
	_Atomic uint32_t primed;	/* workers that drained their inbox for prime_gen */
	_Atomic uint32_t stop;		/* workers exit (set once idle after shutdown) */
	_Atomic uint32_t rebal_idle;	/* the rebalancer sleeps until poked (park.c-style Dekker) */
	_Atomic uint64_t shed_mask[2];	/* class slots shed by watchers (watch.c) */
	struct ripen__metrics *metrics;	/* per-class recording (metrics.c); in the shell */
	struct ripen__watchers *watchers; /* watch.c */
	_Atomic uint32_t tracing;	/* a trace runs: a hint for cancels (trace.c) */
	_Atomic uint64_t trace_lost;	/* cancel records a callback could not put */
	pthread_mutex_t trace_lock;	/* rank RIPEN_LOCK_TRACE: start, stop, cancel records */
	struct ripen__trace *trace;	/* under trace_lock */

	/* --- changes when workers sleep or wake */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t nsleeping;

	/* --- idle detection (ripen_pool_wait_idle) */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t idle_waiters;
	_Atomic uint32_t idle_seq;	/* futex word, bumped when the pool is seen idle */
	_Atomic uint64_t ext_cancelled;	/* cancels by threads that are not workers */
	_Atomic uint64_t int_rejected;	/* worker submits refused during a CANCEL shutdown */

	pthread_mutex_t admin_lock;	/* rank RIPEN_LOCK_ADMIN: shutdown/destroy */
	bool shut_down;
	bool destroyed;			/* the shell waits for the last task handle */
	_Atomic uint64_t handles;	/* task handles not yet released, +1 for the pool */

	/* --- policy and context: RCU-protected pointers (rcu.c, pool.c's swaps) */
	alignas(RIPEN_CACHELINE) struct ripen_policy *_Atomic policy;
	struct ripen__ctx *_Atomic ctx;
	_Atomic uint64_t policy_gen;	/* bumped by every swap: re-key now */
	_Atomic uint64_t time_gen;	/* bumped each period for time-varying policies */
	_Atomic uint64_t ref_ns;	/* reference time of time-varying keys */
	_Atomic uint64_t n_reprio;
	pthread_mutex_t swap_lock;	/* rank RIPEN_LOCK_SWAP: serialises swaps */

	/* --- rebalancer (rebalance.c) and timers (timer.c) */
	alignas(RIPEN_CACHELINE) _Atomic uint32_t rebal_word; /* futex: poked to wake it */
	_Atomic uint32_t rebal_stop;	/* the rebalancer exits (before the workers do) */
	uint64_t period_ns;		/* 0: no rebalancer */
	pthread_t rebal_thread;
	bool rebal_started;		/* set before the pool is published; never cleared */
	bool rebal_joined;
	pthread_mutex_t timer_lock;	/* rank RIPEN_LOCK_TIMER */
	struct ripen__timer *timers;	/* binary min-heap by (release_ns, seq) */
	size_t ntimers, timers_cap;
	_Atomic uint64_t n_delayed;
	_Atomic uint64_t n_released;
	_Atomic uint64_t n_release_in;	/* in-side of idle detection: releases */
	_Atomic uint64_t n_rearm_failed;
	_Atomic uint64_t n_timer_cancelled;
	_Atomic uint64_t n_rebalances;
	_Atomic uint64_t n_merged;
	_Atomic uint64_t n_rescued;
	uint64_t *last_done;		/* rebalancer only: workers' n_run at its last look */
	uint64_t rebal_rng;		/* rebalancer only */
	unsigned *deal_order;		/* rebalancer only: scratch for deal() */

	/* worker lifecycle hooks (ripen_pool_opts), set before the threads */
	void (*on_worker_start)(struct ripen_pool *, unsigned, void *);
	void (*on_worker_stop)(struct ripen_pool *, unsigned, void *);
	void *hook_arg;
};

/*
 * Lock ranks: a thread takes locks only in increasing rank. Five mutexes:
 * four per pool, and alloc.c's depot lock, the innermost: a free may take
 * it under any other lock (a task dropped inside a drain or under the
 * timer lock), and nothing is taken while it is held. Heap and inbox locks
 * are spin locks below the mutexes in rank: thieves only try them; owners
 * and the exiting worker wait for them; a re-prioritisation waits for an
 * inbox lock holding nothing else (inbox.c, inbox_reenter).
 */
enum ripen__lock_rank {
	RIPEN_LOCK_ADMIN = 1,	/* shutdown, destroy, resume */
	RIPEN_LOCK_SWAP = 2,	/* policy and context swaps */
	RIPEN_LOCK_TIMER = 3,	/* the timer heap and timed tasks' state */
	RIPEN_LOCK_TRACE = 4,	/* trace.c: start/stop (takes swap_lock only before it; waits for
				 * a grace period holding it, so it is never waited for inside
				 * a read section, nor under timer_lock: the rebalancer takes
				 * that inside one) and cancel records (taken holding nothing;
				 * only tried from triggers and score functions) and the
				 * adaptive controller's records (taken on the rebalancer,
				 * outside any read section, holding only watch.c's lock,
				 * which nothing takes under this one) */
	RIPEN_LOCK_DEPOT = 5,	/* alloc.c: the magazine depot */
};

/* The worker the calling thread is, or NULL. */
extern RIPEN_TLS struct ripen__worker *ripen__self;

/* pool.c: drop a hold on the pool's shell (destroy, a task handle's release). */
void ripen__pool_unref(struct ripen_pool *pool);


/* The pool's policy and context as a reader sees them: call inside an RCU
 * read-side section and use them only until its end. */
static inline void ripen__pool_snapshot(struct ripen_pool *pool, const struct ripen_policy **pol,
					void **pool_ctx)
{
	struct ripen__ctx *c;

	/* acquire: pairs with the release exchanges of set_policy and
	 * set_context, so the pointed-to fields are those they published */
	if (pol != NULL)
		*pol = atomic_load_explicit(&pool->policy, memory_order_acquire);
	c = atomic_load_explicit(&pool->ctx, memory_order_acquire);
	*pool_ctx = c ? c->ctx : NULL;
}

#endif
