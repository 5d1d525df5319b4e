/*
 * The worker: its dispatch loop, inbox draining, stealing and parking.
 *
 * Each worker owns a 4-ary heap (prioq.c) guarded by `heap_lock`. The owner
 * holds the lock through its scheduling step (drain, compare, pop: about a
 * hundred nanoseconds) and releases it while a task runs. Thieves only
 * try-lock it, once, and move on when it is held: no thief ever waits on a
 * peer. This is the MultiQueue's try-locked heap (Rihani, Sanders and
 * Dementiev, SPAA 2015) used by owners for locality, as in the Stealing
 * Multi-Queue (Postnikova et al., PPoPP 2022). The owner's own lock is
 * uncontended unless a thief is inside, for one batch of pops; the owner
 * then spins, and yields after a while in case that thief was descheduled.
 *
 * At every scheduling point the owner, holding its heap lock:
 *   1. drains its inbox (wfcqueue, try-locked among dequeuers) into the heap;
 *   2. one time in RIPEN_P2C_EVERY, looks at one random peer ("power of two
 *      choices"): if the peer's published best beats its own, it try-locks
 *      the peer's heap and takes every other entry of those that beat its
 *      own best (heap_steal), which levels the two tops. A lone worker
 *      never looks: its steps stay quiet (callgrind, fib at one worker:
 *      881 -> 843 instructions a task);
 *   3. pops its best entry; then, unlocked: if a worker sleeps and the heap
 *      still holds work, wakes one (it will steal); the entry is dropped if
 *      stale (task no longer QUEUED, or its version changed), otherwise the
 *      task is claimed (CAS) and run.
 *   3a. the stall rule: when a look found the peer's heap locked and its
 *      published best above ours, every later pop checks whether that one
 *      hold still lasts (the lock word is odd while held and grows by 2
 *      per hold, so the same value is the same hold) and counts the pops
 *      that run worse than the peer's best; past RIPEN_STALL_AHEAD of them
 *      the holder is off its CPU, and the worker stops, unlocks, and waits
 *      (spins, then yields its CPU) until the hold ends, then looks at that
 *      peer first; new work in its own inbox ends the wait too, but not
 *      the watch: the budget stays spent, so that work runs only if it
 *      beats the peer's best (a fresh budget per inbox exit let a
 *      producer's stream of submits buy 32 worse pops a batch: the
 *      backlog run's mean rank error was 13.6-22.8 so, 5.2-8.3 now).
 *      A re-wait after an inbox exit backs off before it looks at the
 *      inbox again, on one spin budget for the whole watch: an inbox that
 *      reads non-empty but cannot be drained yet (a producer preempted
 *      mid-enqueue, another dequeuer holding its lock) otherwise looped
 *      the step and the wait without ever yielding the CPU.
 *      The rebalancer leaves a waiting worker alone (rebalance.c). Most
 *      holds last one scheduling step, about one pop, when the holder
 *      runs; the long ones (a re-key chunk of RIPEN_REKEY_CHUNK entries
 *      and the heapify after it, a big inbox drain, a slow custom score)
 *      trip the rule on a running peer too, and the wait then lasts that
 *      hold. The budget is counted from the first look that finds the
 *      hold (one step in RIPEN_P2C_EVERY looks, at a random peer), and a
 *      worker watches one peer at a time.
 *
 * A worker with nothing local searches every peer's heap (try-lock, half of
 * its best) and inbox (try-lock, half of what it holds), spins
 * RIPEN_SPIN_ROUNDS rounds, then parks (park.c); it never calls sched_yield
 * on that path (see search()). A peer inside a long task
 * holds no lock, so its queued work is always within reach: nothing strands
 * behind a long task for longer than a searching worker needs to look.
 *
 * Rejected: SMQ's lock-free steal buffers (a batch of the owner's best,
 * claimed with one CAS). Built and measured here first: with two workers
 * and 100k prefilled tasks the mean rank error was 6.7 against 1.4 for the
 * try-locked heap, because the owner's best batch sits on offer while the
 * owner runs worse tasks, and a thief's whole-batch claim overshoots; a
 * Chase-Lev deque has no priority order at all.
 *
 * Where a second worker's time goes (measured on the 2-vCPU dev machine,
 * ripen_pool_stats' peer_looks, steal_busy, lock_waits and lock_yields,
 * bench_sssp's per-solve counters, perf -e cpu-clock):
 *   - relaxed SSSP (moscow.gr): about 19k steals moving 40k of 412k tasks
 *     per solve and 35-70 involuntary context switches; CPU per task rises
 *     from ~250 ns at one worker to ~315-340 ns at two (1.3x; 1.5-1.7x on
 *     the small rome99, whose frontier is a few hundred nodes). At one
 *     worker 6% of the run was the vDSO clock read for each spawn's seq:
 *     a worker's submit now reads its TSC-scaled recording clock;
 *   - relaxed SSSP on an Intel Xeon VM (2 vCPUs, a cache line 135 ns to
 *     the other vCPU and back; bench_sssp, moscow.gr). First, the
 *     benchmark's own share: its work and stale counters were one shared
 *     pair of atomics, a line that bounced at every task; counted per
 *     thread, two workers went from 612-635 to 499-514 ns of CPU a task
 *     (one build, alternately), 129-134 to 105-108 ms a solve, a little
 *     faster than one worker (116-130 ms). One worker spends 280-315 ns a task,
 *     so the second still costs ~1.8x in CPU. Scratch builds, not kept,
 *     took parts of p2c away in turn. Looking but never stealing: 346 ns
 *     against 303 at one worker in the same run. Not looking at all: 317
 *     against 272, at a work ratio of 1.23 (the workers drift apart). So
 *     the steals and what they cause make up most of the difference. They
 *     are small (18k a solve, 2.2 tasks each: the two tops sit in one
 *     distance band); the thief's pops sift through the victim's heap,
 *     whose lines the victim then fetches back while it waits for its lock
 *     (perf -e cpu-clock: heap_lock_own_slow 6% of the samples at two
 *     workers, ripen__task_claim 5x its one-worker count), and they keep
 *     both workers on neighbouring nodes (the task body's own samples
 *     double: distance lines written by both). Tried and measured, none
 *     kept:
 *       * push instead of pull: a worker whose best two beat a peer's
 *         published best handed it every other one of them through its
 *         inbox, and stole only from a peer whose lock word had not moved
 *         since its last look (not stepping) or was held (the stall rule).
 *         Steals fell to 2.5-2.9k a solve, CPU a task by no more than the
 *         noise, and order got worse: 2^20 prefilled mean rank error 2.9
 *         against 1.5, monotonic 2.2-3.3 against 1.5-1.6, the producer
 *         backlog 4.7-5.9 against 2.6-4.6 at a lower rate; gifts of at most
 *         8 pops still 2.8-3.2. A correction waits for the worker ahead to
 *         look, then for the inbox drain, where a pull acts on the look of
 *         the worker behind. That build's profile still showed the look's
 *         read of the peer's thieves' line (20% of ripen__worker_main's
 *         samples) and the owner's lock CAS after it (14%);
 *       * a published second-best key, stealing only when the peer's
 *         second beats our best (no one-entry steals): steals 17.5k ->
 *         12.7k, CPU a task within the noise, order unchanged, and 70
 *         instructions more a spawn at one worker (fibd) for computing it;
 *       * a look every 16 pops instead of 4: ~10% less CPU a task, 2.3-4x
 *         the rank error (prefilled 3.6-4.1, monotonic 3.6-6.1, backlog
 *         7.5-8.1);
 *       * the heap's best 8 in a sorted ring in front of it (prioq), kept
 *         full by the owner's pops, so that a thief's takes touch those
 *         four lines and not the heap: CPU a task 476-520 against 525-584
 *         (four alternating runs), monotonic rank error 1.4 against 1.55,
 *         prefilled 1.8 against 1.65, and 36 instructions more a spawn at
 *         one worker (fibd; 14 fib). A top refilled only when it ran
 *         empty (eight sifts in one hold): 461-473 against 514-519 ns,
 *         prefilled 1.9-2.0 against 1.6-1.7.
 *     Since then: a task whose entry holds its only reference is claimed
 *     and finished with plain stores (task-internal.h, ripen__task_sole),
 *     and the heap lock has a line of its own: every look reads the
 *     peer's pub_top, which shared the lock's line, so the owner's next
 *     lock CAS found it shared and waited (perf: the CAS 19% of
 *     ripen__worker_main's samples at two workers, the look's read of
 *     the peer's pub_top 22%). CPU a task at two workers: 415-439 -> 406
 *     ns for the first, then 440-487 -> 420-472 for the second
 *     (alternating builds, each; one worker 217-269 throughout). The CAS
 *     still holds a fifth of the loop's samples: a locked instruction
 *     drains the store buffer, which holds the pub_top store that a
 *     peer's look made miss, when the task between was short.
 *     Open: fewer looks while the tops stay close without losing the
 *     order, and a placement that keeps the workers' nodes apart;
 *   - short tasks: the owner holds its lock through most of its time, so a
 *     p2c look finds it held (1.15 busy try-locks per look in the prio
 *     backlog run) and order rests on placement: submits now pass over a
 *     worker whose inbox piles up (inbox.c), and a peer takes such a pile
 *     whole;
 *   - big heaps: a steal pops up to 64 entries and pushes 32 back, each
 *     O(log n) with cache misses, so it holds the victim's lock for tens of
 *     microseconds; the owner waits (2^20 prefilled, 2 workers: ~40k
 *     lock_waits, 13-30k lock_yields per drain). A thief that retried a
 *     busy lock for 8 pause rounds made that worse (543 ms and 46,705 owner
 *     yields against 394 ms and 13,348 for one try), so thieves try once;
 *   - beside two CPU hogs (bench_quality Prefilled_Contended: 2^20
 *     prefilled, 2 workers) the mean rank error was 72-340 against 1.7-13
 *     quiet, the max 4,000-6,300, while the strict pool stayed exact. A
 *     worker descheduled inside its step (the owner holds its lock through
 *     most of its time when tasks are short, a pop on a big heap being a
 *     microsecond of cache misses) strands its heap for a whole time slice
 *     of the hogs, and its peer runs its own worse entries meanwhile:
 *     thousands of them. No relaxed structure whose queues a preempted
 *     thread can hold exclusively bounds that: more heaps than workers
 *     (MultiQueue c > 1) only shrinks the stranded share to 1/(cW). So
 *     the peer must stop running ahead of a held heap, which is what an
 *     exact-order pool does for free: the stall rule (step 3a). Measured
 *     after it, alternating with the old build in one session: mean
 *     4.8-5.4 against 86-121 before, max 184-271 against 4,600-5,700,
 *     ratio to quiet 2.4-3.2 (the goal: 4); the drain beside the
 *     hogs takes 10-20% longer (2.2-2.3 s against 1.9-2.1: waiting instead
 *     of running ahead), quiet it is unchanged within the noise; the
 *     quiet max fell too (400-670 to 73-87: the machine's own
 *     preemptions). The ahead budget barely matters: 8, 32 and 128 all
 *     gave means of 4.8-6.8. It does not keep the rule off a running
 *     peer in a long hold: a review measured 231-709 waits (11-29k
 *     yields) per quiet 2^20 drain with a policy swap every 2 ms, so every
 *     re-key, against 9-19 without swaps and 0 before the rule, at no
 *     loss of drain time (0.85-0.93 s against 0.98-1.04).
 *
 * Owner worker only, unless a function says otherwise.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>

#include "alloc-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"
#include "timer-internal.h"
#include "accounting-internal.h"
#include "inbox-internal.h"
#include "park-internal.h"
#include "rcu-internal.h"
#include "worker-internal.h"
#include "metrics-internal.h"
#include "trace-internal.h"

#define RIPEN_P2C_EVERY 4u	/* power of two: one peer look per this many pops */
#define RIPEN_SPIN_ROUNDS 64u	/* search rounds before parking */
#define RIPEN_INBOX_PILE 8u	/* a peer inbox this full is not being drained */
#define RIPEN_REKEY_CHUNK 1024u	/* entries re-keyed between letting thieves in */
#define RIPEN_REKEY_SHARE 10u	/* re-keys take at most 1/SHARE of a worker's time */
#define RIPEN_THIEF_WINDOW 64u	/* pause rounds a re-keying owner leaves thieves */
#define RIPEN_OWN_SPINS 128u	/* owner's pause rounds on its heap lock before yielding */
#define RIPEN_DRAIN_SLACK 64u	/* a drain takes what was counted plus this many */
#define RIPEN_PRIME_YIELDS 20000u /* a primed worker's yields for the go, then it parks */
/* An entry's epoch: the owner's re-key pass in the low 31 bits; the top bit
 * says the entry came from a peer's heap or inbox (the trace's `stolen`) */
#define RIPEN_EPOCH_STOLEN (1u << 31)

RIPEN_TLS struct ripen__worker *ripen__self;

#define bump ripen__bump /* owner-only counters (common-internal.h) */

/* ------------------------------------------------------------ heap lock */

static inline bool heap_trylock_seen(struct ripen__worker *v, uint32_t *seen)
{
	uint32_t l;

	RIPEN_YIELD_POINT();
	/* relaxed: a filter that keeps the line shared while it is held */
	l = atomic_load_explicit(&v->heap_lock, memory_order_relaxed);
	*seen = l;
	if (l & 1u)
		return false;
	/* acquire: pairs with the release in heap_unlock; we see the heap as
	 * the last holder left it. relaxed on failure: nothing was taken */
	if (atomic_compare_exchange_strong_explicit(&v->heap_lock, &l, l + 1u,
						    memory_order_acquire, memory_order_relaxed))
		return true;
	*seen = l;
	return false;
}

static inline bool heap_trylock(struct ripen__worker *v)
{
	uint32_t seen;

	return heap_trylock_seen(v, &seen);
}

/*
 * The heap lock is a hold counter: odd while held, and each hold adds 2 in
 * all (the CAS to odd, the unlock's store of the next even value), so a
 * peer that reads the same odd value twice saw one hold throughout (the
 * stall rule, next_entry). 2^31 holds between two reads would wrap it; a
 * stall check is a few pops apart.
 *
 * Publish the heap's size and best key for peers, then unlock. Holder only.
 * true when the published size rose from 0: the caller must then look for
 * sleepers (wake_gate), because a peer that parked while the heap looked
 * empty would not come back for this work on its own.
 *
 * That rise is the store of a Dekker pair with ripen__park (P2: nsleeping
 * += 1, then P3: qsize loads), so it and the sleeper read that follows it
 * are seq_cst: either the parking peer sees the new size and stays up, or
 * the gate sees it asleep and wakes one. Other size changes stay relaxed:
 * a peer that read any non-zero size did not sleep, and a sleeper that read
 * 0 read a value from before the rise (the rise is the first non-zero
 * store after it, and the thief's or owner's store of 0 happens-before the
 * rise through the lock), so in the seq_cst order it precedes the rise.
 */
static inline bool heap_unlock(struct ripen__worker *v)
{
	const struct ripen__entry *top = ripen__prioq_top(&v->heap);
	uint64_t k = top ? top->key : 0;
	/* relaxed: the holder's own last store, or a previous holder's
	 * (ordered before us by the lock) */
	uint64_t old = atomic_load_explicit(&v->qsize, memory_order_relaxed);
	bool rose = false;

	/* relaxed: hints for peers' p2c and sleepers; avoid dirtying the line */
	if (atomic_load_explicit(&v->pub_top, memory_order_relaxed) != k)
		atomic_store_explicit(&v->pub_top, k, memory_order_relaxed);
	if (old != v->heap.n) {
		if (old == 0) {
			/* seq_cst: the rise, see above; pairs with park's P2/P3 */
			atomic_store_explicit(&v->qsize, v->heap.n, memory_order_seq_cst);
			rose = true;
		} else {
			atomic_store_explicit(&v->qsize, v->heap.n, memory_order_relaxed);
		}
	}
	/* release: pairs with the acquire CAS of the next holder. The holder
	 * wrote the odd value itself (relaxed load of its own store) */
	atomic_store_explicit(&v->heap_lock,
			      atomic_load_explicit(&v->heap_lock, memory_order_relaxed) + 1u,
			      memory_order_release);
	return rose;
}

/* The second half of a rise (heap_unlock): wake a sleeper to steal. */
static void wake_gate(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;

	RIPEN_WINDOW(RIPEN_WIN_UNLOCK_GATE);
	ripen__notify(pool, NULL, &w->rng); /* H2 after the rise */
	/* seq_cst: the rebalancer's idle sleep is the same Dekker pair: the
	 * rise (qsize, seq_cst), then rebal_idle here; it stores rebal_idle,
	 * then reads every qsize (rebalance.c, pool_has_work). Work that waits
	 * in a heap is all it acts on, so this rise is when it must wake */
	if (atomic_load_explicit(&pool->rebal_idle, memory_order_seq_cst))
		ripen__rebalancer_poke(pool);
}

bool ripen__heap_trylock(struct ripen__worker *v)
{
	return heap_trylock(v);
}

void ripen__heap_unlock(struct ripen__worker *v)
{
	/* the rebalancer only takes entries out: the size never rises here */
	(void)heap_unlock(v);
}

/* Owner: take its own heap lock; a thief inside leaves after one batch. */
static void heap_lock_own_slow(struct ripen__worker *w)
{
	w->boundary = 0; /* the wait may yield the CPU: not the next task's */
	bump(&w->n_lock_waits, 1);
	for (unsigned spins = 0; !heap_trylock(w); spins++) {
		if (spins < RIPEN_OWN_SPINS) {
			ripen__cpu_relax();
		} else {
			bump(&w->n_lock_yields, 1);
			sched_yield(); /* the thief was descheduled inside */
		}
	}
}

static inline void heap_lock_own(struct ripen__worker *w)
{
	if (ripen__unlikely(!heap_trylock(w)))
		heap_lock_own_slow(w);
}

/*
 * Re-key the whole heap when the policy or context was swapped, or when the
 * rebalancer moved the reference time of a time-varying policy. Re-keying
 * takes at most a tenth of the worker's time: a re-key that took d ns is not
 * repeated for 9d ns. So after a swap the new order holds from the next
 * dispatch, unless the worker re-keyed within that budget window already
 * (swaps arriving faster than a big heap can be re-keyed): then from the
 * next re-key the budget allows, with entries keyed under the old and the
 * new policy mixed meanwhile (an order question, never a memory one).
 * Measured: stress_ledger swaps every 5 ms; with every swap re-keying at
 * once, a 100k-entry heap was re-keyed back to back and the pool crawled.
 * Owner, heap lock held, RCU read side, after the generations were loaded
 * (see step_begin).
 */
static void snapshot(struct ripen__worker *w, uint64_t *pg, uint64_t *tg);
static void rekey_entry(struct ripen__worker *w, const struct ripen_policy *pol, void *pool_ctx,
			struct ripen__entry *e);

static void maybe_rekey(struct ripen__worker *w, uint64_t pg, uint64_t tg)
{
	struct ripen_pool *pool = w->pool;
	uint64_t t0, d, n_keyed = 0;
	bool restarted = false;
	uint32_t ep;

	if (pg == w->keyed_policy_gen && (tg == w->keyed_time_gen || !w->pol->time_varying))
		return;
	t0 = ripen__now_ns();
	if (t0 < w->rekey_not_before)
		return; /* the budget: see the comment above */
restart:
	/* acquire: pairs with the rebalancer's release store of ref_ns */
	w->keyed_ref = atomic_load_explicit(&pool->ref_ns, memory_order_acquire);
	w->keyed_policy_gen = pg;
	w->keyed_time_gen = tg;
	if (++w->rekey_epoch >= RIPEN_EPOCH_STOLEN)
		w->rekey_epoch = 1;
	ep = w->rekey_epoch;
	/*
	 * Computing a key reads the task (a cache miss each): a big heap takes
	 * milliseconds. Every RIPEN_REKEY_CHUNK entries the owner lets go of
	 * its heap lock, so thieves reach the heap meanwhile (they see
	 * `rekeying` and key what they take themselves), and of its RCU read
	 * section, so a policy swap waits for one chunk, not for the whole
	 * pass (tens of milliseconds at a million queued). What thieves pop and push back
	 * may move around, so entries carry the pass that keyed them and a
	 * last sweep, under the lock throughout, keys the ones that moved.
	 * A swap seen at a chunk boundary restarts the pass under the new
	 * policy, once; a later one leaves keyed_policy_gen behind, so the
	 * next step re-keys again (budget permitting).
	 */
	w->rekeying = true;
	for (size_t i = 0; i < w->heap.n; i++) {
		struct ripen__entry *e = ripen__prioq_at(&w->heap, i);

		if ((e->epoch & ~RIPEN_EPOCH_STOLEN) == ep)
			continue;
		rekey_entry(w, w->pol, w->pool_ctx, e);
		e->epoch = ep | (e->epoch & RIPEN_EPOCH_STOLEN);
		if (++n_keyed % RIPEN_REKEY_CHUNK == 0) {
			uint64_t tg2;

			(void)heap_unlock(w); /* re-keying never adds entries */
			w->pol = NULL;
			w->pool_ctx = NULL;
			ripen__rcu_read_unlock();
			RIPEN_WINDOW(RIPEN_WIN_REKEY_CHUNK);
			for (unsigned k = 0; k < RIPEN_THIEF_WINDOW; k++) /* a window for thieves */
				ripen__cpu_relax();
			heap_lock_own(w);
			ripen__rcu_read_lock();
			snapshot(w, &pg, &tg2);
			if (pg != w->keyed_policy_gen && !restarted) {
				restarted = true;
				tg = tg2;
				goto restart;
			}
		}
	}
	for (size_t i = 0; i < w->heap.n; i++) {
		struct ripen__entry *e = ripen__prioq_at(&w->heap, i);

		if ((e->epoch & ~RIPEN_EPOCH_STOLEN) != ep) {
			rekey_entry(w, w->pol, w->pool_ctx, e);
			e->epoch = ep | (e->epoch & RIPEN_EPOCH_STOLEN);
			n_keyed++;
		}
	}
	ripen__prioq_heapify(&w->heap);
	w->rekeying = false;
	d = ripen__now_ns() - t0;
	w->rekey_not_before = t0 + RIPEN_REKEY_SHARE * d;
	bump(&w->n_rekeys, 1);
	bump(&w->n_rekeyed, n_keyed);
	bump(&w->n_rekey_ns, d);
}

/* The policy and context for this step, and the generations that announce
 * them. Inside an RCU read-side section. */
static void snapshot(struct ripen__worker *w, uint64_t *pg, uint64_t *tg)
{
	struct ripen_pool *pool = w->pool;

	/* acquire: generations first, then the pointers they announce
	 * (set_policy stores the pointer, then bumps the generation) */
	*pg = atomic_load_explicit(&pool->policy_gen, memory_order_acquire);
	*tg = atomic_load_explicit(&pool->time_gen, memory_order_acquire);
	ripen__pool_snapshot(pool, &w->pol, &w->pool_ctx);
	w->fast_kind = w->pol->kind == RIPEN_POL_STATIC || w->pol->kind == RIPEN_POL_FIFO ?
		       (int)w->pol->kind : -1;
	w->fast_tv = w->pol->time_varying;
	w->fast_gen = *pg;
}

/*
 * A quiet step: nothing in the inbox to key, no peer to look at this time,
 * and no re-key due (maybe_rekey's test, with the time-varying flag of the
 * policy at the generation the last snapshot loaded). Such a step only
 * pops, which needs no policy, so it skips the RCU read section and the
 * snapshot: ~50 instructions of most steps. Owner, heap lock held.
 */
static inline bool step_is_quiet(struct ripen__worker *w, bool look)
{
	struct ripen_pool *pool = w->pool;
	uint64_t pg;

	if (look || !cds_wfcq_empty(&w->inbox_head, &w->inbox_tail))
		return false;
	/* acquire: as snapshot's load; a swap not seen yet is seen by the
	 * next step, as it would be by a snapshot taken now */
	pg = atomic_load_explicit(&pool->policy_gen, memory_order_acquire);
	if (pg != w->fast_gen || pg != w->keyed_policy_gen)
		return false;
	/* acquire: as snapshot's load of time_gen */
	return !w->fast_tv ||
	       atomic_load_explicit(&pool->time_gen, memory_order_acquire) == w->keyed_time_gen;
}

/* The policy part of a step, heap lock held: RCU read side, policy
 * snapshot, a re-key if one is due. step_end leaves the read side. */
static void step_policy(struct ripen__worker *w)
{
	uint64_t pg, tg;

	ripen__rcu_read_lock();
	snapshot(w, &pg, &tg);
	maybe_rekey(w, pg, tg);
}

/* Begin a scheduling step: own heap lock, then step_policy. */
static void step_begin(struct ripen__worker *w)
{
	heap_lock_own(w);
	step_policy(w);
}

/* End a step; true when the heap went from empty to non-empty (the caller
 * passes it to wake_gate or does so itself). */
static bool step_end(struct ripen__worker *w)
{
	w->pol = NULL;
	w->pool_ctx = NULL;
	ripen__rcu_read_unlock();
	return heap_unlock(w);
}

/* ------------------------------------------------------------ running */

/* Key of t for w's heap: w's policy snapshot, w's reference time. */
static uint64_t key_for(struct ripen__worker *w, const struct ripen_policy *pol, void *pool_ctx,
			const struct ripen_task *t)
{
	struct ripen_task_view v;
	bool bad = false;
	uint64_t k;

	ripen__task_view(t, pool_ctx, &v);
	k = ripen__policy_key(pol, &v, t->seq, w->keyed_ref, w->pool->metrics->factor_bits, &bad);
	if (ripen__unlikely(bad))
		bump(&w->n_bad, 1);
	RIPEN_DCHECK(k >= RIPEN_KEY_LOWEST); /* 0 would read as "empty" to thieves */
	return k;
}

/* Recompute e's key for w's heap (w's keyed_ref, the caller's policy). */
static void rekey_entry(struct ripen__worker *w, const struct ripen_policy *pol, void *pool_ctx,
			struct ripen__entry *e)
{
	e->key = key_for(w, pol, pool_ctx, e->task);
}

/* An entry for t at `version` in w's heap; the caller is in an RCU
 * read-side section and passes the policy and context it read there. */
static struct ripen__entry make_entry(struct ripen__worker *w, const struct ripen_policy *pol,
				      void *pool_ctx, struct ripen_task *t, uint32_t version)
{
	struct ripen__entry e;

	e.task = t;
	e.seq = t->seq;
	e.epoch = 0;
	e.version = version;
	e.key = key_for(w, pol, pool_ctx, t);
	return e;
}

static inline struct ripen_task *task_of(struct cds_wfcq_node *node)
{
	return (struct ripen_task *)(void *)((char *)node - offsetof(struct ripen_task, node));
}

static inline bool task_queued(struct ripen_task *t)
{
	/* relaxed: a filter; the claim CAS decides. An armed task (in the
	 * timer heap) is not claimable: its entries are stale */
	return (atomic_load_explicit(&t->state, memory_order_relaxed) &
		(TS_MASK | TS_ARMED)) == TS_QUEUED;
}

/* run_fn while a trace runs: the same, and the task's record (trace.c).
 * e: the entry it came from, NULL for an inline run. */
static __attribute__((noinline, cold)) uint64_t run_traced(struct ripen__worker *w,
						       struct ripen__mclass *mc,
						       struct ripen_task *t,
						       const struct ripen__entry *e, uint64_t t0)
{
	struct ripen_trace_record rec;
	uint64_t end;

	memset(&rec, 0, sizeof(rec));
	rec.kind = RIPEN_TRACE_RUN;
	rec.stolen = e != NULL && (e->epoch & RIPEN_EPOCH_STOLEN) != 0;
	rec.worker = (uint16_t)w->index;
	rec.class_id = ripen__task_class(t);
	rec.ready_ns = ripen__ready_ns(t); /* before the run: a re-arm moves it */
	rec.start_ns = t0 != 0 ? t0 : ripen__m_now(w);
	/* relaxed: a re-prioritisation racing the start is as good as lost */
	rec.base = atomic_load_explicit(&t->base, memory_order_relaxed);
	rec.score = e != NULL ? ripen__key_score(e->key) : NAN;
	t->fn(t->arg);
	end = ripen__m_now(w);
	if (t0 != 0)
		ripen__hist_add(&mc->run, end > t0 ? end - t0 : 0);
	rec.end_ns = end;
	ripen__trace_run(w, &rec);
	return t0 != 0 ? end | 1u : 0;
}

/*
 * Run a claimed task's function, counted and timed in its class (and
 * traced while a trace runs). e: its entry, NULL for an inline run.
 * Returns the end stamp (0 when histograms are off).
 *
 * The boundary stamp. Reading the recording clock is rdtsc and a scale,
 * 13 ns on the Intel VM, and a task took three reads (its submit, its
 * start, its end): 15% of a spawn tree's time each (perf -e cpu-clock:
 * the instructions after the rdtscs held a quarter of the samples; a
 * build without the start read ran fib(29) at one worker in 185 ms
 * against 217). So a worker that goes straight from one task to the next
 * starts the next at the last one's end stamp: straight means through
 * quiet steps only (next_entry: its lock, one pop, its unlock), with no
 * waiter woken, no completion delivered, no re-arm, no search, park,
 * pause, stall wait, lock yield or wake-up in between (each of those
 * clears w->boundary). What the step costs (a pop: up to a microsecond
 * of cache misses on a big heap) then counts in the task's run time, not
 * in its wait. An inline run (ripen_task_wait) always reads the clock,
 * and so does the first task after it: its start would otherwise be
 * before the outer task's own work.
 */
static inline uint64_t run_fn(struct ripen__worker *w, struct ripen_task *t,
			      const struct ripen__entry *e)
{
	struct ripen__mclass *mc = ripen__m_class(w, t);
	uint64_t t0, start = e != NULL ? w->boundary : 0;

	w->boundary = 0;
	bump(&w->n_run, 1);
	t0 = ripen__m_started(w, mc, t, start);
	/* relaxed: a hint; ripen__trace_run reloads it inside a read section */
	if (ripen__unlikely(atomic_load_explicit(&w->tring, memory_order_relaxed) != NULL))
		return run_traced(w, mc, t, e, t0);
	t->fn(t->arg);
	return ripen__m_ran(w, mc, t0);
}

void ripen__run_task(struct ripen__worker *w, struct ripen_task *t)
{
	run_fn(w, t, NULL);
	ripen__task_set_final(t, TS_DONE);
	ripen__task_completed(t, TS_DONE);
	ripen__note_done(w);
}

void ripen__run_timed(struct ripen__worker *w, struct ripen_task *t, const struct ripen__entry *e)
{
	struct ripen__timed *tm = ripen__task_timed(t);
	bool repeats = tm->interval_ns != 0 || tm->trigger != NULL;

	run_fn(w, t, e);
	if (repeats && ripen__timer_rearm(w->pool, t)) {
		ripen__note_done(w);
		return; /* the reference went to the timer heap */
	}
	if (!repeats)
		ripen__task_set_final(t, TS_DONE); /* rearm did it otherwise */
	ripen__note_done(w);
	ripen__task_put(t);
}

/* Drop a stale entry or claim and run (or, in a CANCEL shutdown, cancel)
 * its task; then drop the entry's reference. Not under the heap lock. */
static void dispatch(struct ripen__worker *w, struct ripen__entry *e)
{
	struct ripen_task *t = e->task;

	ripen__task_check(t);
	RIPEN_YIELD_POINT(); /* between pop and claim: cancel, re-prioritise race here */
	/* relaxed: a re-prioritisation racing this only makes the entry stale;
	 * the task is then run through its newer entry */
	if (e->version != ripen__vb_version(atomic_load_explicit(&t->vb, memory_order_relaxed))) {
		bump(&w->n_stale, 1);
	} else if (atomic_load_explicit(&w->pool->mode, memory_order_acquire) ==
		   RIPEN_MODE_CANCEL) {
		/* acquire: pairs with the release store of mode in ripen_pool_shutdown */
		w->boundary = 0; /* a cancel may wake waiters and deliver */
		if (ripen__cancel(t) != 0)
			bump(&w->n_stale, 1);
	} else if (ripen__task_claim(t)) {
		if (ripen__task_timed(t) != NULL) {
			ripen__run_timed(w, t, e); /* takes the entry's reference */
			return;
		}
		uint64_t end = run_fn(w, t, e);
		bool woke = ripen__task_set_final(t, TS_DONE);
		bool delivered = ripen__task_completed(t, TS_DONE);

		ripen__note_done(w);
		/* the next task's start, unless a wake-up or a completion
		 * (a syscall, a callback) came after this end (run_fn) */
		w->boundary = woke || delivered ? 0 : end;
	} else {
		bump(&w->n_stale, 1);
	}
	ripen__task_put(t); /* the entry's reference */
}

/*
 * The key of a child for push_local without an RCU read section: under the
 * static and FIFO policies a key is a function of the task alone, so the
 * kind seen at the worker's last step is all it takes, as long as no swap
 * came since (the generation still matches; a swap in between sends the
 * child the slow way, under the new policy). Saves the read section, the
 * snapshot and the generic policy call: ~120 of ~1,000 instructions a spawn
 * (callgrind, cg driver fibd). false: take the slow path.
 */
static inline bool fast_key(struct ripen__worker *w, const struct ripen_task *t, uint64_t *k)
{
	/* relaxed: compared with the generation our last snapshot loaded
	 * (acquire there); a swap racing this is as if it came just after */
	if (w->fast_kind < 0 ||
	    atomic_load_explicit(&w->pool->policy_gen, memory_order_relaxed) != w->fast_gen)
		return false;
	if (w->fast_kind == RIPEN_POL_FIFO)
		*k = ~t->seq;
	else /* relaxed: our own new task */
		*k = ripen__score_key(atomic_load_explicit(&t->base, memory_order_relaxed));
	return true;
}

void ripen__worker_push_local(struct ripen__worker *w, struct ripen_task *t)
{
	struct ripen_pool *pool = w->pool;
	const struct ripen_policy *pol;
	struct ripen__entry e;
	void *pool_ctx;
	bool rose;
	int rc;

	heap_lock_own(w);
	/* relaxed: t is our own new task, not yet reachable by anyone else */
	e.version = ripen__vb_version(atomic_load_explicit(&t->vb, memory_order_relaxed));
	if (fast_key(w, t, &e.key)) {
		e.task = t;
		e.seq = t->seq;
		e.epoch = 0;
	} else {
		ripen__rcu_read_lock();
		ripen__pool_snapshot(pool, &pol, &pool_ctx);
		e = make_entry(w, pol, pool_ctx, t, e.version);
		ripen__rcu_read_unlock();
	}
	rc = ripen__prioq_push(&w->heap, &e);
	if (rc == 0)
		/* release: pairs with the idle check's loads; counted before the
		 * task can finish, so submitted never trails done */
		atomic_store_explicit(&w->local_in, ++w->local_in_priv, memory_order_release);
	/* The rise from empty is the only store that must meet a parking
	 * peer's recheck (heap_unlock's comment); a heap that was non-empty
	 * kept every peer up already, or was shared at the owner's last step
	 * end (next_entry's hint). Measured: announcing every child with a
	 * seq_cst store and a sleeper check cost a fence and ~20 instructions
	 * a spawn for nothing. */
	rose = heap_unlock(w);
	if (rc != 0) { /* the heap could not grow: the inbox needs no allocation */
		/* relaxed: t is not published yet; the enqueue publishes it. The
		 * node is linked from here on: a re-prioritisation through the
		 * caller's handle must see it busy, or it would link it again */
		atomic_store_explicit(&t->vb, RIPEN_VB_BUSY, memory_order_relaxed);
		ripen__inbox_push(pool, w, t, true);
	} else if (rose) { /* a sleeper can take the child from our heap while this task runs */
		wake_gate(w);
	}
}

/* ------------------------------------------------------------ moving work */

/*
 * Move up to `max` tasks from v's inbox into w's heap. w holds its own heap
 * lock; v may be w. Try-lock: returns 0 at once if another dequeuer holds
 * v's inbox. Tasks the heap cannot take (no memory) stay in the inbox.
 */
static uint64_t inbox_take(struct ripen__worker *w, struct ripen__worker *v, uint64_t max)
{
	uint64_t n = 0, stale = 0;

	/* acquire: pairs with the release unlock below by the previous holder */
	if (atomic_exchange_explicit(&v->inbox_lock, 1, memory_order_acquire))
		return 0;
	while (n + stale < max) {
		struct cds_wfcq_node *node;
		struct ripen_task *t;
		struct ripen__entry e;
		uint32_t vb;

		if (ripen__prioq_reserve(&w->heap, 1) != 0)
			break;
		node = __cds_wfcq_dequeue_nonblocking(&v->inbox_head, &v->inbox_tail);
		if (node == NULL || node == CDS_WFCQ_WOULDBLOCK)
			break;
		t = task_of(node);
		RIPEN_TSAN_ACQUIRE(t);
		ripen__task_check(t);
		RIPEN_YIELD_POINT(); /* a re-prioritisation races the busy-bit hand-over */
		/* seq_cst: the node is free again, and the version we key comes
		 * with it. Pairs with ripen_task_reprioritize (bump, then set the
		 * busy bit, on this word): if it saw the node busy, this RMW
		 * follows its bump and returns the new version. Both can happen
		 * (it sees the node free after this and queues a fresh entry
		 * at the version we read): two live entries at one version. The
		 * claim CAS lets one run the task; for a periodic task the other
		 * fails on ARMED after the re-arm, or on the version the next
		 * release bumps. */
		vb = atomic_fetch_and_explicit(&t->vb, ~RIPEN_VB_BUSY, memory_order_seq_cst);
		if (!task_queued(t)) {
			stale++;
			ripen__task_put(t);
			continue;
		}
		e = make_entry(w, w->pol, w->pool_ctx, t, ripen__vb_version(vb));
		if (v != w)
			e.epoch = RIPEN_EPOCH_STOLEN;
		(void)ripen__prioq_push(&w->heap, &e); /* reserved above */
		n++;
	}
	if (n + stale)
		/* release: pairs with the acquire load in ripen__inbox_hint */
		atomic_fetch_add_explicit(&v->inbox_taken, n + stale, memory_order_release);
	/* release: pairs with the acquire exchange of the next holder */
	atomic_store_explicit(&v->inbox_lock, 0, memory_order_release);
	if (stale)
		bump(&w->n_stale, stale);
	if (v != w && n)
		bump(&w->n_inbox_steals, n);
	return n;
}

/* w holds its heap lock. */
static void drain_own_inbox(struct ripen__worker *w)
{
	if (cds_wfcq_empty(&w->inbox_head, &w->inbox_tail))
		return;
	/* Everything counted so far, plus slack for what arrives meanwhile:
	 * bounded, so a flooding producer cannot keep the owner here. */
	(void)inbox_take(w, w, ripen__inbox_hint(w) + RIPEN_DRAIN_SLACK);
	RIPEN_WINDOW(RIPEN_WIN_DRAINED); /* entries keyed, inbox unlocked, none popped yet */
}

/* Push stolen entries into w's heap (w holds its lock); the caller
 * reserved room for them, so no push can fail. */
static void push_all(struct ripen__worker *w, struct ripen__entry *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		e[i].epoch = RIPEN_EPOCH_STOLEN; /* v's re-key passes are not w's */
		RIPEN_CHECK(ripen__prioq_push(&w->heap, &e[i]) == 0);
	}
}

/*
 * Try-lock v's heap and move every other one of its best entries into w's
 * heap: of the entries whose key beats `above` (w's own best; 0 when w has
 * nothing), at most 2 * RIPEN_HEAP_STEAL_MAX, w
 * takes the 1st, 3rd, 5th... and v keeps the 2nd, 4th... Splitting the
 * region above w's top evenly leaves both workers' next pops at about the
 * same global rank; taking the whole region would just swap which of the
 * two is ahead (and invite a steal back). w holds its own heap lock; v != w.
 */
static bool heap_steal(struct ripen__worker *w, struct ripen__worker *v, uint64_t above)
{
	struct ripen__entry tmp[2 * RIPEN_HEAP_STEAL_MAX];
	size_t k = 0, lim;
	uint32_t seen;
	bool rekey;

	if (ripen__prioq_reserve(&w->heap, RIPEN_HEAP_STEAL_MAX) != 0)
		return false;
	if (!heap_trylock_seen(v, &seen)) {
		bump(&w->n_steal_busy, 1);
		if (above != 0 && (seen & 1u) && w->stall_peer == NULL) {
			/* the stall rule: watch this hold (next_entry) */
			w->stall_peer = v;
			w->stall_hold = seen;
			w->stall_ahead = 0;
			w->stall_spins = 0;
			w->stall_rewait = false;
		}
		return false;
	}
	lim = v->heap.n;
	if (lim > 2 * RIPEN_HEAP_STEAL_MAX)
		lim = 2 * RIPEN_HEAP_STEAL_MAX;
	while (k < lim && ripen__prioq_top(&v->heap)->key > above)
		(void)ripen__prioq_pop(&v->heap, &tmp[k++]);
	/* give back the 2nd, 4th...: their slots were just freed, no growth */
	for (size_t i = 1; i < k; i += 2)
		(void)ripen__prioq_push(&v->heap, &tmp[i]);
	/* keys computed by v under another policy or reference time must be
	 * re-computed for w's heap; read v's key state while we hold its lock */
	rekey = v->rekeying || v->keyed_policy_gen != w->keyed_policy_gen ||
		(w->pol->time_varying && v->keyed_ref != w->keyed_ref);
	(void)heap_unlock(v); /* a thief only takes: v's size never rises */
	if (k == 0)
		return false;
	for (size_t i = 2; i < k; i += 2)
		tmp[i / 2] = tmp[i];
	k = (k + 1) / 2;
	if (rekey)
		for (size_t i = 0; i < k; i++)
			rekey_entry(w, w->pol, w->pool_ctx, &tmp[i]);
	bump(&w->n_steals, 1);
	bump(&w->n_stolen_tasks, k);
	push_all(w, tmp, (uint32_t)k);
	return true;
}

/* Step 2: compare with one peer, v or a random one (lock held). */
static void p2c(struct ripen__worker *w, struct ripen__worker *v)
{
	struct ripen_pool *pool = w->pool;
	const struct ripen__entry *mine = ripen__prioq_top(&w->heap);
	uint64_t my_key = mine ? mine->key : 0;
	uint32_t i;

	if (pool->nworkers < 2)
		return;
	if (v == NULL) {
		i = ripen__rand_below(&w->rng, pool->nworkers - 1);
		v = &pool->workers[i >= w->index ? i + 1 : i];
	}
	bump(&w->n_looks, 1);
	/* relaxed: a hint; the try-lock validates */
	if (atomic_load_explicit(&v->pub_top, memory_order_relaxed) > my_key)
		(void)heap_steal(w, v, my_key);
	/* A peer asleep, still waking, or descheduled is not draining its
	 * inbox: work sent there would wait for a futex wake-up or a time
	 * slice. Take half of it when the peer is parked (it is being woken
	 * and will share), all of it when it has piled up (a running owner
	 * drains at every step, so a pile means it is off the CPU or inside
	 * a long task). relaxed: hints; inbox_take try-locks. */
	{
		uint64_t hint = ripen__inbox_hint(v);

		if (hint > RIPEN_INBOX_PILE)
			(void)inbox_take(w, v, hint);
		else if (hint > 0 && atomic_load_explicit(&v->parked, memory_order_relaxed))
			(void)inbox_take(w, v, (hint + 1) / 2);
	}
}

/* ------------------------------------------------------------ searching */

/* Nothing local: look everywhere once (lock held). true if work was found. */
static bool search_once(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;
	unsigned n = pool->nworkers, start = ripen__rand_below(&w->rng, n);

	drain_own_inbox(w);
	if (w->heap.n > 0)
		return true;
	for (unsigned i = 0; i < n; i++) {
		struct ripen__worker *v = &pool->workers[(start + i) % n];
		uint64_t hint;

		if (v == w)
			continue;
		/* relaxed: hint; the try-lock validates */
		if (atomic_load_explicit(&v->qsize, memory_order_relaxed) > 0 &&
		    heap_steal(w, v, 0))
			return true;
		hint = ripen__inbox_hint(v);
		if (hint > 0 && inbox_take(w, v, (hint + 1) / 2) > 0)
			return true;
	}
	return false;
}

static bool search(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;

	/* Spin, then park; no sched_yield on the way: measured here, a worker
	 * that yielded before parking took 1.9 ms (p50) to wake from its futex,
	 * one that did not 15-23 us (bench_workloads, WakeUp). */
	for (unsigned round = 0; round < RIPEN_SPIN_ROUNDS; round++) {
		bool found;

		/* acquire: pairs with the release stores of the flags in pool.c */
		if (atomic_load_explicit(&pool->stop, memory_order_acquire) ||
		    atomic_load_explicit(&pool->paused, memory_order_acquire))
			return false;
		step_begin(w);
		found = search_once(w);
		if (step_end(w))
			wake_gate(w); /* stole a batch: a sleeper may share it */
		if (found)
			return true;
		ripen__cpu_relax();
	}
	return false;
}

/* ------------------------------------------------------------ lifecycle */

/* At exit every structure the worker owns holds only stale entries. */
static void drop_entry_at_exit(struct ripen__worker *w, struct ripen_task *t)
{
	ripen__task_check(t);
	if (task_queued(t))
		RIPEN_DIE("worker %u exiting with queued task %p", w->index, (void *)t);
	bump(&w->n_stale, 1);
	ripen__task_put(t);
}

static void cleanup(struct ripen__worker *w)
{
	struct ripen__entry e;
	struct cds_wfcq_node *node;

	heap_lock_own(w);
	while (ripen__prioq_pop(&w->heap, &e))
		drop_entry_at_exit(w, e.task);
	(void)heap_unlock(w); /* empty */
	/* acquire: as in inbox_take; peers may still be searching */
	while (atomic_exchange_explicit(&w->inbox_lock, 1, memory_order_acquire))
		sched_yield();
	while ((node = __cds_wfcq_dequeue_blocking(&w->inbox_head, &w->inbox_tail)) != NULL) {
		struct ripen_task *t = task_of(node);

		RIPEN_TSAN_ACQUIRE(t);
		drop_entry_at_exit(w, t);
	}
	/* release: pairs with the acquire exchange of a later holder */
	atomic_store_explicit(&w->inbox_lock, 0, memory_order_release);
}

/*
 * Paused. During a resume (RIPEN_PRIMING) every worker first moves its whole
 * inbox into its heap and reports it; ripen_pool_resume lets them all run
 * only when every heap is primed, so no worker runs its best task while
 * better ones still sit in a peer's inbox. The wait for the go is a short
 * yield-spin, so the workers start together rather than one futex wake-up
 * apart; past that it parks.
 */
static void paused(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;
	/* acquire: pairs with the seq_cst store of paused in resume */
	uint32_t state = atomic_load_explicit(&pool->paused, memory_order_acquire);
	uint32_t gen = atomic_load_explicit(&pool->prime_gen, memory_order_acquire);

	if (state == RIPEN_RUNNING)
		return; /* resumed since the main loop looked */
	if (state == RIPEN_PRIMING && w->primed_gen != gen) {
		step_begin(w);
		drain_own_inbox(w);
		(void)step_end(w); /* the resume wakes every worker */
		w->primed_gen = gen;
		/* release: our heap is primed; pairs with resume's acquire load */
		atomic_fetch_add_explicit(&pool->primed, 1, memory_order_release);
		for (unsigned i = 0; i < RIPEN_PRIME_YIELDS; i++) {
			/* acquire: as above */
			if (atomic_load_explicit(&pool->paused, memory_order_acquire) != RIPEN_PRIMING)
				return;
			sched_yield();
		}
	}
	ripen__park(w);
}

/*
 * The stall rule (the essay's step 3a). Owner, heap lock held, stall_peer
 * set: true when we are about to pop a worse entry than the peer's
 * published best for the (RIPEN_STALL_AHEAD + 1)-th time while the peer's
 * heap stayed locked under the one hold we saw, so the holder is off its
 * CPU. Clears the watch once that hold has ended.
 */
static bool stalled_behind(struct ripen__worker *w)
{
	struct ripen__worker *v = w->stall_peer;
	const struct ripen__entry *mine;

	/* relaxed: a hint, as a thief's filter load; the same odd value is
	 * the same hold (each hold adds 2), and a new one means the holder
	 * ran: our next look can steal */
	if (atomic_load_explicit(&v->heap_lock, memory_order_relaxed) != w->stall_hold) {
		w->stall_peer = NULL;
		return false;
	}
	mine = ripen__prioq_top(&w->heap);
	/* relaxed: the hint the holder published at its last unlock */
	if (mine == NULL || atomic_load_explicit(&v->pub_top, memory_order_relaxed) <= mine->key)
		return false;
	if (w->stall_ahead > RIPEN_STALL_AHEAD)
		return true; /* spent: no count to wrap in a long hold */
	return ++w->stall_ahead > RIPEN_STALL_AHEAD;
}

/* Wait, holding no lock, for the stalled peer's hold to end: spin a while,
 * then give the CPU away (to the holder, if it waits for this one). Work
 * arriving in our own inbox ends the wait, and so do a stop or pause (the
 * main loop handles them). Only the end of the hold (or a stop or pause)
 * ends the watch: after an inbox exit the budget stays spent, so the
 * retried step runs what beats the peer's best and waits again at the
 * first worse pop. A fresh budget there let every batch of inbox work
 * (a producer's submits, the rebalancer's merge dealing to us each
 * period) buy RIPEN_STALL_AHEAD more worse pops under the one hold. A
 * watch counts as one wait however many inbox exits it has. */
static void stall_wait(struct ripen__worker *w)
{
	struct ripen_pool *pool = w->pool;
	struct ripen__worker *v = w->stall_peer;
	bool rewait = w->stall_rewait, keep = false;

	/* one wait per watch: a re-wait after an inbox exit is the same one */
	if (!rewait)
		bump(&w->n_stall_waits, 1);
	/* relaxed, no pair: a hint for the rebalancer's rescue and merge,
	 * which skip a waiting worker (rebalance.c); the try-lock there
	 * validates, and a stale read costs one period's churn at most */
	atomic_store_explicit(&w->stall_waiting, true, memory_order_relaxed);
	for (unsigned i = 0;; i++) {
		RIPEN_WINDOW(RIPEN_WIN_STALL_WAIT); /* the hold may end and another begin here */
		/* relaxed: as in stalled_behind */
		if (atomic_load_explicit(&v->heap_lock, memory_order_relaxed) != w->stall_hold)
			break;
		/* acquire: pairs with the release stores of the flags in pool.c */
		if (atomic_load_explicit(&pool->stop, memory_order_acquire) ||
		    atomic_load_explicit(&pool->paused, memory_order_acquire))
			break;
		/* new work of our own (a submit aimed here, a release, a
		 * re-prioritisation) may beat the peer's best: the retried
		 * step drains it, and a pop that beats pub_top is not counted.
		 * A re-wait backs off one step first: an inbox that reads
		 * non-empty but cannot be drained yet (a producer preempted
		 * between its tail exchange and its link, a peer holding the
		 * inbox lock) would otherwise loop through the step and back
		 * here without ever yielding the CPU that producer needs. The
		 * backoff count lives in w for the whole watch, so such a loop
		 * spins RIPEN_OWN_SPINS steps in all, then yields each time */
		if ((!rewait || i > 0) && !cds_wfcq_empty(&w->inbox_head, &w->inbox_tail)) {
			keep = true;
			break;
		}
		if (w->stall_spins < RIPEN_OWN_SPINS) {
			w->stall_spins++;
			ripen__cpu_relax();
		} else {
			bump(&w->n_stall_yields, 1);
			sched_yield();
		}
	}
	/* relaxed, no pair: as above */
	atomic_store_explicit(&w->stall_waiting, false, memory_order_relaxed);
	if (keep)
		w->stall_rewait = true;
	else
		w->stall_peer = NULL;
}

/* One scheduling step: steps 1-3 of the essay. false: nothing local. */
static bool next_entry(struct ripen__worker *w, struct ripen__entry *e)
{
	/* a lone worker has no peer to look at: every step of its that finds
	 * no inbox work and no swap stays quiet (no RCU section, no snapshot) */
	bool look = w->pool->nworkers > 1 && (ripen__rand(&w->rng) & (RIPEN_P2C_EVERY - 1)) == 0;
	struct ripen__worker *peer = NULL;
	bool got, more, quiet, rose;

again:
	heap_lock_own(w);
	quiet = step_is_quiet(w, look);
	if (!quiet) {
		w->boundary = 0; /* a drain, a look, a re-key: not the next task's */
		step_policy(w);
		drain_own_inbox(w);
		if (look)
			p2c(w, peer);
	}
	if (ripen__unlikely(w->stall_peer != NULL) && stalled_behind(w)) {
		rose = quiet ? heap_unlock(w) : step_end(w);
		if (rose)
			wake_gate(w);
		peer = w->stall_peer;
		stall_wait(w);
		/* at that peer first: its hold ended, or our inbox has work and
		 * the watch goes on (a look at a held peer keeps it) */
		look = true;
		goto again;
	}
	got = ripen__prioq_pop(&w->heap, e);
	more = w->heap.n > 0;
	rose = quiet ? heap_unlock(w) : step_end(w);
	if (rose) {
		wake_gate(w); /* the heap was empty to peers: the full gate */
		w->boundary = 0; /* a wake-up: not the next task's */
	} else if (more && atomic_load_explicit(&w->pool->nsleeping, memory_order_relaxed)) {
		/* relaxed: a hint, to share a heap that stays non-empty; that
		 * no work strands rests on the gate at the rise alone */
		ripen__wake_one(w->pool, &w->rng);
		w->boundary = 0; /* a futex wake: not the next task's */
	}
	return got;
}

void *ripen__worker_main(void *arg)
{
	struct ripen__worker *w = arg;
	struct ripen_pool *pool = w->pool;
	struct ripen__entry e;

	ripen__self = w;
	ripen__alloc_bind_thread();
	ripen__rcu_register();
	if (w->pin_cpu >= 0) {
		cpu_set_t cs;

		CPU_ZERO(&cs);
		CPU_SET(w->pin_cpu, &cs);
		/* best effort: a refused pin leaves the worker unpinned */
		(void)pthread_setaffinity_np(pthread_self(), sizeof(cs), &cs);
	}
	if (pool->on_worker_start != NULL) {
		w->starting = true;
		pool->on_worker_start(pool, w->index, pool->hook_arg);
		w->starting = false;
	}
	for (;;) {
		/* acquire: pairs with the release stores of the flags in pool.c */
		if (atomic_load_explicit(&pool->stop, memory_order_acquire))
			break;
		if (atomic_load_explicit(&pool->paused, memory_order_acquire)) {
			w->boundary = 0;
			paused(w);
			continue;
		}
		if (next_entry(w, &e)) {
			dispatch(w, &e);
		} else {
			w->boundary = 0; /* searching and parking are nobody's run */
			if (!search(w))
				ripen__park(w);
		}
	}
	cleanup(w);
	w->exiting = true;
	if (pool->on_worker_stop != NULL)
		pool->on_worker_stop(pool, w->index, pool->hook_arg);
	ripen__alloc_unbind_thread();
	ripen__rcu_unregister();
	ripen__self = NULL;
	return NULL;
}
