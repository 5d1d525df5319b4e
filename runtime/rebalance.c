/*
 * The rebalancer: one thread per pool that, every period,
 *
 *   1. moves the reference time of time-varying policies (ref_ns) to now and
 *      bumps time_gen: each worker re-keys its own heap at that one instant
 *      at its next scheduling step (owner-side re-heapify on request), so
 *      keys computed on different workers compare again;
 *   2. releases due delayed and periodic tasks from the timer heap into
 *      inboxes (and counts them on the in-side of idle detection then);
 *   3. merges the best RIPEN_MERGE_TAKE entries of every worker and deals the
 *      merged run back out round-robin, so every worker holds a fair share of
 *      the global top even when producers all feed one worker;
 *   4. rescues tasks stranded behind a long task: a worker that started
 *      nothing during a whole period while its heap holds work has its best
 *      RIPEN_RESCUE_MAX entries dealt to the others, and a sleeping worker is
 *      woken to steal the rest (the heap of a worker inside a task is not
 *      locked: thieves reach it; the rescue makes sure someone looks). A
 *      worker in a stall wait (worker.c, step 3a) is not stuck: it waits
 *      for a peer whose heap stays locked, and both the rescue and the
 *      merge leave it alone (with two workers they could only deal its
 *      entries to that held peer's inbox, behind the hold). A
 *      bigger rescue was measured to hurt: moving whole heaps of 4096 every
 *      period made the rebalancer the bottleneck of tests/stress;
 *   5. counts the period (stats.rebalances).
 *
 * It never stops the world: it touches a worker's heap only through the
 * heap's try-lock (worker.c), one heap at a time, for a bounded number of
 * pops or pushes, and skips a heap whose owner is in its scheduling step.
 * Entries it holds in between stay accounted for (their tasks are QUEUED;
 * a claim by ripen_task_wait just makes them stale). Step by step, for
 * merging: (a) for each worker in turn: try-lock, pop up to TAKE entries,
 * unlock (a busy heap is skipped this period); (b) re-key them at the
 * current reference time and sort; (c) deal entry j to worker (j mod W)
 * through that worker's wait-free inbox: bump the task's version (the entry
 * in hand becomes stale and is dropped) and enqueue the task for a fresh
 * entry, which the owner keys with its own policy snapshot when it drains,
 * exactly like a re-prioritisation. So the rebalancer never waits on a
 * worker, and never writes a key into a heap under a policy the owner has
 * already replaced. An earlier version pushed into heaps under their locks:
 * it had to retry busy locks and re-key for each target's policy.
 *
 * Why 2 ms by default: the re-score lag of linear aging is one period (plus
 * the re-key throttle, worker.c), small against the seconds-scale tau a
 * server uses; the work per period is O(W * TAKE) plus the due timers, a
 * few microseconds, so 500 periods a second cost well under 1% of a core.
 * A pool with nothing queued, running or timed lets the rebalancer sleep
 * until poked (a heap's rise from empty, a resume, a new timer, a policy
 * swap): an idle pool stays idle. A submit does not poke it: a task that a
 * woken worker takes and runs at once never waits in a heap, where all of
 * the rebalancer's work is. A poke per submit into an idle pool woke this
 * thread beside the worker for every first task; it competed with the
 * worker for a CPU, and its look often came before the task was done, so it
 * slept one period and woke again about when a periodic client's next
 * request came. Measured on the 2-CPU VM, bench_workloads Paired_WakeUp/1
 * (the submitter asleep, not spinning), 7 quiet runs of 1000 wake-ups:
 * p50/p90/p99 13.5/31.7/50.0 us with the poke (strict pool beside it
 * 9.0/13.8/21.2), 8.9/17.3/33.8 without (strict 8.0/13.4/21.1). With a
 * spinning submitter (Paired_WakeUp/0, Ripen_WakeUp) both pools show the
 * same ms tail, about 0.7% of wake-ups, with or without the poke: there the
 * kernel queues the woken worker behind the spinner until a tick.
 *
 * Re-keying a big heap costs a cache miss per entry on its task
 * (bench_rescore; the README has the figures), so workers budget re-keys to
 * a tenth of their time (worker.c, RIPEN_REKEY_SHARE): with a million queued
 * on one worker the re-score lag of linear aging grows well past the
 * period; with ten thousand it stays at the period.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"
#include "timer-internal.h"
#include "accounting-internal.h"
#include "inbox-internal.h"
#include "park-internal.h"
#include "rcu-internal.h"
#include "rebalance-internal.h"
#include "worker-internal.h"
#include "metrics-internal.h"
#include "watch-internal.h"

#ifdef RIPEN_TINY
#define RIPEN_MERGE_TAKE 2u
#else
#define RIPEN_MERGE_TAKE 8u
#endif
#define RIPEN_RESCUE_MAX 64u	/* entries per stuck worker per period */

/* ------------------------------------------------------- merge and deal */

static int cmp_entry(const void *a, const void *b)
{
	const struct ripen__entry *x = a, *y = b;

	return ripen__entry_before(x, y) ? -1 : ripen__entry_before(y, x) ? 1 : 0;
}

/*
 * Hand a task the rebalancer took out of a heap to worker w, through w's
 * inbox (wait-free; w keys it with its own policy snapshot when it drains).
 * The entry we hold is made stale by a version bump; the task then gets one
 * fresh entry, exactly as ripen_task_reprioritize does it (task.c).
 */
static void requeue(struct ripen_pool *pool, struct ripen__worker *w, struct ripen__entry *e)
{
	struct ripen_task *t = e->task;

	/* relaxed: filters; the claim CAS and the version decide */
	if ((atomic_load_explicit(&t->state, memory_order_relaxed) & (TS_MASK | TS_ARMED)) !=
		    TS_QUEUED ||
	    ripen__vb_version(atomic_load_explicit(&t->vb, memory_order_relaxed)) != e->version) {
		ripen__task_put(t); /* stale: drop it here */
		return;
	}
	RIPEN_WINDOW(RIPEN_WIN_REQUEUE); /* a re-prioritisation links the node here */
	/* seq_cst: the entry in hand is stale from here on; then the requeue
	 * protocol, our reference going with the node or dropped */
	atomic_fetch_add_explicit(&t->vb, RIPEN_VB_STEP, memory_order_seq_cst);
	(void)ripen__requeue(pool, w, t, false);
}

/* Deal e[0..n) (best first) round-robin over the workers, starting at
 * `first` and leaving out `skip` (or -1): entry j goes to the (j mod m)-th
 * of the m eligible workers, so each gets an equal slice of every rank
 * range. Never blocks. */
static void deal(struct ripen_pool *pool, struct ripen__entry *e, size_t n, unsigned first,
		 int skip)
{
	unsigned nw = pool->nworkers, m = 0;
	unsigned *order = pool->deal_order;

	for (unsigned i = 0; i < nw; i++) {
		unsigned wi = (first + i) % nw;

		if ((int)wi != skip || nw == 1)
			order[m++] = wi;
	}
	for (size_t j = 0; j < n; j++)
		requeue(pool, &pool->workers[order[j % m]], &e[j]);
}

static void merge_and_deal(struct ripen_pool *pool, const struct ripen_policy *pol,
			   void *pool_ctx, struct ripen__entry *buf, uint64_t *rng)
{
	unsigned nw = pool->nworkers;
	size_t n = 0;

	for (unsigned i = 0; i < nw; i++) {
		struct ripen__worker *w = &pool->workers[i];

		/* relaxed: hints; the try-lock validates. A worker in a stall
		 * wait (worker.c) holds nothing of the global top: the held
		 * peer's best beats its own, and dealing its entries out would
		 * put half of them behind that hold */
		if (atomic_load_explicit(&w->qsize, memory_order_relaxed) == 0 ||
		    atomic_load_explicit(&w->stall_waiting, memory_order_relaxed) ||
		    !ripen__heap_trylock(w))
			continue;
		for (unsigned k = 0; k < RIPEN_MERGE_TAKE && w->heap.n > 0; k++)
			(void)ripen__prioq_pop(&w->heap, &buf[n++]);
		ripen__heap_unlock(w);
	}
	if (n == 0)
		return;
	/* compare at one instant: the pool's current reference time */
	if (pol->time_varying) {
		/* relaxed: this thread is the only writer of ref_ns */
		uint64_t ref = atomic_load_explicit(&pool->ref_ns, memory_order_relaxed);

		for (size_t i = 0; i < n; i++) {
			struct ripen_task_view v;
			bool bad = false;

			ripen__task_view(buf[i].task, pool_ctx, &v);
			buf[i].key = ripen__policy_key(pol, &v, buf[i].seq, ref,
						       pool->metrics->factor_bits, &bad);
		}
	}
	qsort(buf, n, sizeof(*buf), cmp_entry);
	deal(pool, buf, n, ripen__rand_below(rng, nw), -1);
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_merged, n, memory_order_relaxed);
}

static void rescue(struct ripen_pool *pool, struct ripen__entry *buf)
{
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__worker *w = &pool->workers[i];
		/* relaxed: progress is a hint; a false alarm moves work early.
		 * A worker that started no task for a whole period while its
		 * heap holds work and it is not asleep is stuck: inside a long
		 * task, or descheduled */
		uint64_t done = atomic_load_explicit(&w->n_run, memory_order_relaxed);
		size_t n = 0;

		if (done != pool->last_done[i]) {
			pool->last_done[i] = done;
			continue;
		}
		/* relaxed: hints, as above. A worker in a stall wait
		 * (worker.c) starts nothing on purpose: it waits for a peer
		 * whose heap stays locked, and with two workers that peer is
		 * the only one a rescue could deal to */
		if (atomic_load_explicit(&w->parked, memory_order_relaxed) ||
		    atomic_load_explicit(&w->stall_waiting, memory_order_relaxed) ||
		    atomic_load_explicit(&w->qsize, memory_order_relaxed) == 0 ||
		    !ripen__heap_trylock(w))
			continue;
		while (n < RIPEN_RESCUE_MAX && w->heap.n > 0)
			(void)ripen__prioq_pop(&w->heap, &buf[n++]);
		ripen__heap_unlock(w);
		if (n == 0)
			continue;
		deal(pool, buf, n, (i + 1) % pool->nworkers, (int)i);
		/* relaxed: statistics */
		atomic_fetch_add_explicit(&pool->n_rescued, n, memory_order_relaxed);
		/* the dealt entries went through inboxes, each with its
		 * notify; this one wakes a sleeper for the rest of w's heap */
		ripen__notify(pool, NULL, &pool->rebal_rng);
	}
}

/* ------------------------------------------------------------ the thread */

static bool pool_has_work(struct ripen_pool *pool)
{
	if (!ripen__pool_is_idle(pool))
		return true;
	for (unsigned i = 0; i < pool->nworkers; i++)
		/* seq_cst: part of the idle sleep's recheck */
		if (atomic_load_explicit(&pool->workers[i].qsize, memory_order_seq_cst))
			return true;
	return false;
}

static void *rebalancer_main(void *arg)
{
	struct ripen_pool *pool = arg;
	size_t cap = (size_t)pool->nworkers * RIPEN_MERGE_TAKE;
	struct ripen__entry *buf;

	if (cap < RIPEN_RESCUE_MAX)
		cap = RIPEN_RESCUE_MAX;
	buf = malloc(cap * sizeof(*buf));
	if (buf == NULL)
		RIPEN_DIE("rebalancer: no memory for its %zu-entry buffer", cap);
	ripen__rcu_register();
	for (;;) {
		/* acquire: a poke's bump; read before the stop flag, so a stop
		 * that lands after it changes the word and the sleep returns */
		uint32_t word = atomic_load_explicit(&pool->rebal_word, memory_order_acquire);
		uint64_t now, next, wake, next_watch;
		const struct ripen_policy *pol;
		void *pool_ctx;
		int64_t sleep_ns;

		/* acquire: pairs with the seq_cst store in ripen__rebalancer_stop */
		if (atomic_load_explicit(&pool->rebal_stop, memory_order_acquire))
			break;
		now = ripen__now_ns();
		ripen__rcu_read_lock();
		ripen__pool_snapshot(pool, &pol, &pool_ctx);
		if (pol->time_varying) {
			/* release: workers acquire ref_ns after seeing time_gen */
			atomic_store_explicit(&pool->ref_ns, now, memory_order_release);
			atomic_fetch_add_explicit(&pool->time_gen, 1, memory_order_release);
		}
		next = ripen__timers_release_due(pool, now);
		/* acquire: the paused flag, as workers read it */
		if (pool->nworkers > 1 &&
		    atomic_load_explicit(&pool->paused, memory_order_acquire) == RIPEN_RUNNING) {
			merge_and_deal(pool, pol, pool_ctx, buf, &pool->rebal_rng);
			rescue(pool, buf);
		}
		ripen__rcu_read_unlock();
		/* relaxed: statistics */
		atomic_fetch_add_explicit(&pool->n_rebalances, 1, memory_order_relaxed);
		/* watchers, outside the read section: their callbacks may swap
		 * policies (watch.c) */
		next_watch = ripen__watch_tick(pool, ripen__now_ns());

		wake = ripen__sat_add(now, pool->period_ns);
		/* seq_cst: the rebalancer's half of the idle-sleep Dekker pair
		 * (a heap's rise: qsize, then rebal_idle, worker.c wake_gate;
		 * here: rebal_idle, then the counters and every qsize) */
		atomic_store_explicit(&pool->rebal_idle, 1, memory_order_seq_cst);
		if (pool_has_work(pool))
			atomic_store_explicit(&pool->rebal_idle, 0, memory_order_seq_cst);
		else
			wake = next; /* only timers can need us */
		if (wake > next)
			wake = next;
		if (wake > next_watch)
			wake = next_watch;
		now = ripen__now_ns();
		sleep_ns = wake == UINT64_MAX ? -1 :
			   wake <= now ? 0 :
			   wake - now > (uint64_t)INT64_MAX ? -1 : (int64_t)(wake - now);
		if (sleep_ns != 0 &&
		    ripen__futex_wait(&pool->rebal_word, word, sleep_ns) == -ETIMEDOUT) {
			/* woken by the clock, not a poke: how late (lateness
			 * histogram, metrics.c) */
			now = ripen__now_ns();
			ripen__m_lateness(pool, now > wake ? now - wake : 0);
		}
	}
	ripen__rcu_unregister();
	free(buf);
	return NULL;
}

int ripen__rebalancer_start(struct ripen_pool *pool)
{
	if (pool->period_ns == 0)
		return 0;
	if (RIPEN_FAULT(RIPEN_FAULT_THREAD_CREATE) ||
	    pthread_create(&pool->rebal_thread, NULL, rebalancer_main, pool) != 0)
		return -EAGAIN;
	pool->rebal_started = true;
	pthread_setname_np(pool->rebal_thread, "ripen-rebal");
	return 0;
}

void ripen__rebalancer_stop(struct ripen_pool *pool)
{
	/* rebal_started is written once, before the pool is published;
	 * rebal_joined only by the caller (admin_lock or create's unwind) */
	if (!pool->rebal_started || pool->rebal_joined)
		return;
	/* seq_cst: the flag, then the word the rebalancer sleeps on */
	atomic_store_explicit(&pool->rebal_stop, 1, memory_order_seq_cst);
	atomic_fetch_add_explicit(&pool->rebal_word, 1, memory_order_seq_cst);
	ripen__futex_wake(&pool->rebal_word, 1);
	pthread_join(pool->rebal_thread, NULL);
	pool->rebal_joined = true;
}
