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
 * until poked (submit, a new timer, a policy swap): an idle pool stays idle.
 *
 * Measured (build/bench/bench_rescore, 2-core machine): re-keying costs
 * ~41 ns an entry at 10k queued (0.4 ms a full re-key) and ~66 ns at 1M
 * (66 ms: every entry is a cache miss on its task). Workers therefore
 * budget re-keys to a tenth of their time (worker.c): at 1M queued on one
 * worker the re-score lag of linear aging grows to ~0.7 s, at 10k it stays
 * at the period.
 *
 * Timers: a binary min-heap by (release_ns, seq) under timer_lock, each
 * entry's slot recorded in its task so that it can leave from anywhere.
 * Every transition of a timed task that involves the timer heap happens
 * under that lock: the worker's re-arm (RUNNING -> QUEUED|ARMED + push), a
 * cancel (task.c: out of the heap at once), the release here (T_IN -> T_OUT,
 * in-side count, version bump, ARMED cleared, inbox), and a waiting worker's
 * release-and-claim of a due task it runs inline (task.c). So a cancel knows
 * exactly whether the task was counted, and no entry can run a task before
 * its release. Times saturate at UINT64_MAX ("never"), so neither a release
 * time nor the rebalancer's next wake-up can wrap into the past.
 *
 * RCU: policy and context pointers are read in read-side sections (worker
 * steps, the rebalancer) of liburcu's memb flavour; swaps publish with a
 * release exchange and free after synchronize_rcu. For ThreadSanitizer,
 * which cannot see liburcu 0.13's atomics, the read side releases a token
 * before unlocking and the writer acquires it after the grace period
 * (RELIABILITY.md).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>

#include "alloc-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"

#ifdef RIPEN_TINY
#define RIPEN_MERGE_TAKE 2u
#else
#define RIPEN_MERGE_TAKE 8u
#endif
#define RIPEN_RESCUE_MAX 64u	/* entries per stuck worker per period */

/* ------------------------------------------------------------------ RCU */

static char rcu_token; /* TSan's view of the grace period (RELIABILITY.md) */

void ripen__rcu_read_lock(void)
{
	urcu_memb_read_lock();
}

void ripen__rcu_read_unlock(void)
{
	RIPEN_TSAN_RELEASE(&rcu_token);
	urcu_memb_read_unlock();
}

void ripen__rcu_synchronize(void)
{
	urcu_memb_synchronize_rcu();
	RIPEN_TSAN_ACQUIRE(&rcu_token);
}

void ripen__rcu_register(void)
{
	urcu_memb_register_thread();
}

void ripen__rcu_unregister(void)
{
	urcu_memb_unregister_thread();
}

/* --------------------------------------------------------------- timers */

static bool timer_before(const struct ripen__timer *a, const struct ripen__timer *b)
{
	return a->release_ns < b->release_ns ||
	       (a->release_ns == b->release_ns && a->seq < b->seq);
}

/* Every move of an entry records its slot in the task (ripen__timed.slot),
 * so that a task can leave the heap from anywhere: a cancel, or an inline
 * run by a waiting worker (task.c). */
static void timer_set(struct ripen__timer *a, size_t i, struct ripen__timer x)
{
	a[i] = x;
	ripen__task_timed(x.task)->slot = i;
}

static void timer_sift_up(struct ripen_pool *pool, size_t i, struct ripen__timer x)
{
	struct ripen__timer *a = pool->timers;

	while (i > 0 && timer_before(&x, &a[(i - 1) / 2])) {
		timer_set(a, i, a[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	timer_set(a, i, x);
}

static void timer_sift_down(struct ripen_pool *pool, size_t i, struct ripen__timer x)
{
	struct ripen__timer *a = pool->timers;
	size_t n = pool->ntimers;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && timer_before(&a[c + 1], &a[c]))
			c++;
		if (!timer_before(&a[c], &x))
			break;
		timer_set(a, i, a[c]);
		i = c;
	}
	timer_set(a, i, x);
}

int ripen__timer_push_locked(struct ripen_pool *pool, struct ripen_task *t)
{
	struct ripen__timed *tm = ripen__task_timed(t);
	struct ripen__timer x = { tm->release_ns, t->seq, t }, *a;

	if (pool->ntimers == pool->timers_cap) {
		size_t cap = pool->timers_cap ? 2 * pool->timers_cap : 64;

		if (RIPEN_FAULT(RIPEN_FAULT_HEAP_GROW))
			return -ENOMEM;
		a = realloc(pool->timers, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		pool->timers = a;
		pool->timers_cap = cap;
	}
	timer_sift_up(pool, pool->ntimers++, x);
	tm->where = RIPEN_T_IN;
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_delayed, 1, memory_order_relaxed);
	return 0;
}

/* Remove the entry in slot i (the caller deals with its task). */
static void timer_remove_at(struct ripen_pool *pool, size_t i)
{
	struct ripen__timer *a = pool->timers, last;
	size_t n = --pool->ntimers;

	RIPEN_CHECK(i <= n);
	if (i == n)
		return;
	last = a[n];
	if (i > 0 && timer_before(&last, &a[(i - 1) / 2]))
		timer_sift_up(pool, i, last);
	else
		timer_sift_down(pool, i, last);
}

static void timer_pop_locked(struct ripen_pool *pool)
{
	timer_remove_at(pool, 0);
}

void ripen__timer_remove_locked(struct ripen_pool *pool, struct ripen_task *t)
{
	struct ripen__timed *tm = ripen__task_timed(t);

	RIPEN_CHECK(tm->where != RIPEN_T_OUT && tm->slot < pool->ntimers &&
		    pool->timers[tm->slot].task == t);
	timer_remove_at(pool, tm->slot);
	if (tm->where == RIPEN_T_IN)
		/* relaxed: statistics */
		atomic_fetch_sub_explicit(&pool->n_delayed, 1, memory_order_relaxed);
	tm->where = RIPEN_T_OUT;
}

/* A release: count it on the in-side, make every older entry stale, make
 * the task claimable. The timer heap has let go of t already. */
static void released_locked(struct ripen_pool *pool, struct ripen_task *t)
{
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_released, 1, memory_order_relaxed);
	/* seq_cst: the in-side of idle detection for this release, counted
	 * before the task can be claimed */
	atomic_fetch_add_explicit(&pool->n_release_in, 1, memory_order_seq_cst);
	/* seq_cst: every entry made before is stale from here on (see the
	 * task state essay); then make the task claimable */
	atomic_fetch_add_explicit(&t->vb, RIPEN_VB_STEP, memory_order_seq_cst);
	atomic_fetch_and_explicit(&t->state, ~(uint32_t)TS_ARMED, memory_order_seq_cst);
}

bool ripen__timer_claim_due_locked(struct ripen_pool *pool, struct ripen_task *t, uint64_t now)
{
	struct ripen__timed *tm = ripen__task_timed(t);
	/* relaxed: timer_lock orders every transition of an armed task but a
	 * waiter's TS_WAITERS, which the CAS keeps */
	uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

	if (tm->where != RIPEN_T_IN || tm->release_ns > now ||
	    (s & (TS_MASK | TS_ARMED)) != (TS_QUEUED | TS_ARMED))
		return false;
	ripen__timer_remove_locked(pool, t);
	released_locked(pool, t);
	/* acquire: as in ripen__task_claim; the word is QUEUED now (ARMED
	 * cleared above) and only TS_WAITERS can change under timer_lock */
	s &= ~(uint32_t)TS_ARMED;
	while (!atomic_compare_exchange_weak_explicit(&t->state, &s, (s & TS_WAITERS) | TS_RUNNING,
						      memory_order_acquire, memory_order_relaxed))
		RIPEN_CHECK((s & (TS_MASK | TS_ARMED)) == TS_QUEUED);
	return true;
}

/* Release what is due; returns the next release time (UINT64_MAX: none). */
static uint64_t release_due(struct ripen_pool *pool, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	pthread_mutex_lock(&pool->timer_lock);
	while (pool->ntimers > 0) {
		struct ripen__timer top = pool->timers[0];
		struct ripen_task *t = top.task;
		struct ripen__timed *tm = ripen__task_timed(t);

		if (top.release_ns > now) {
			next = top.release_ns;
			break;
		}
		if (tm->where == RIPEN_T_CANCELLED_IN) {
			timer_pop_locked(pool);
			tm->where = RIPEN_T_OUT;
			ripen__task_put(t); /* the timer's reference */
			continue;
		}
		ripen__timer_remove_locked(pool, t);
		released_locked(pool, t);
		/* seq_cst: as in ripen_task_reprioritize. A node still linked in
		 * an inbox (queued by a re-prioritisation before the last run)
		 * becomes this release's entry when drained: it reads the new
		 * version. Otherwise queue one; the timer's reference goes with
		 * it, or is dropped. */
		if ((atomic_fetch_or_explicit(&t->vb, RIPEN_VB_BUSY, memory_order_seq_cst) &
		     RIPEN_VB_BUSY) == 0)
			ripen__inbox_push(pool, ripen__pick_target(pool, tm->target), t, false);
		else
			ripen__task_put(t);
	}
	pthread_mutex_unlock(&pool->timer_lock);
	return next;
}

void ripen__timers_cancel_all(struct ripen_pool *pool)
{
	uint64_t n = 0;

	pthread_mutex_lock(&pool->timer_lock);
	for (size_t i = 0; i < pool->ntimers; i++) {
		struct ripen_task *t = pool->timers[i].task;
		struct ripen__timed *tm = ripen__task_timed(t);

		if (tm->where != RIPEN_T_IN)
			continue;
		/* QUEUED is the only state a task in the timer heap can have;
		 * release: as in ripen__task_try_cancel */
		if (ripen__task_try_cancel(t) == 0) {
			tm->where = RIPEN_T_CANCELLED_IN;
			n++;
		}
	}
	pthread_mutex_unlock(&pool->timer_lock);
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->n_timer_cancelled, n, memory_order_relaxed);
	atomic_fetch_sub_explicit(&pool->n_delayed, n, memory_order_relaxed);
}

void ripen__timers_fini(struct ripen_pool *pool)
{
	for (size_t i = 0; i < pool->ntimers; i++)
		ripen__task_put(pool->timers[i].task);
	free(pool->timers);
	pool->timers = NULL;
	pool->ntimers = pool->timers_cap = 0;
}

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
	/* seq_cst: as in ripen_task_reprioritize: bump, then test the node */
	atomic_fetch_add_explicit(&t->vb, RIPEN_VB_STEP, memory_order_seq_cst);
	if ((atomic_fetch_or_explicit(&t->vb, RIPEN_VB_BUSY, memory_order_seq_cst) & RIPEN_VB_BUSY) == 0)
		ripen__inbox_push(pool, w, t, false); /* our reference moves with it */
	else
		ripen__task_put(t); /* an inbox entry exists and keys the new version */
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

		/* relaxed: a hint; the try-lock validates */
		if (atomic_load_explicit(&w->qsize, memory_order_relaxed) == 0 ||
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
			buf[i].key = ripen__policy_key(pol, &v, buf[i].seq, ref, &bad);
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
		if (atomic_load_explicit(&w->parked, memory_order_relaxed) ||
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
		/* seq_cst: as in ripen__heap_announce */
		if (atomic_load_explicit(&pool->nsleeping, memory_order_seq_cst))
			ripen__wake_one(pool, &pool->rebal_rng);
	}
}

/* ------------------------------------------------------------ the thread */

void ripen__rebalancer_poke(struct ripen_pool *pool)
{
	if (!pool->rebal_started)
		return;
	/* seq_cst: clears the idle flag (Dekker with the rebalancer's sleep),
	 * then bumps the futex word it sleeps on */
	atomic_store_explicit(&pool->rebal_idle, 0, memory_order_seq_cst);
	atomic_fetch_add_explicit(&pool->rebal_word, 1, memory_order_seq_cst);
	ripen__futex_wake(&pool->rebal_word, 1);
}

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
		uint64_t now, next, wake;
		const struct ripen_policy *pol;
		struct ripen__ctx *c;
		int64_t sleep_ns;

		/* acquire: pairs with the seq_cst store in ripen__rebalancer_stop */
		if (atomic_load_explicit(&pool->rebal_stop, memory_order_acquire))
			break;
		now = ripen__now_ns();
		ripen__rcu_read_lock();
		/* acquire: pair with the release exchanges in set_policy/set_context */
		pol = atomic_load_explicit(&pool->policy, memory_order_acquire);
		c = atomic_load_explicit(&pool->ctx, memory_order_acquire);
		if (pol->time_varying) {
			/* release: workers acquire ref_ns after seeing time_gen */
			atomic_store_explicit(&pool->ref_ns, now, memory_order_release);
			atomic_fetch_add_explicit(&pool->time_gen, 1, memory_order_release);
		}
		next = release_due(pool, now);
		/* acquire: the paused flag, as workers read it */
		if (pool->nworkers > 1 &&
		    atomic_load_explicit(&pool->paused, memory_order_acquire) == RIPEN_RUNNING) {
			merge_and_deal(pool, pol, c ? c->ctx : NULL, buf, &pool->rebal_rng);
			rescue(pool, buf);
		}
		ripen__rcu_read_unlock();
		/* relaxed: statistics */
		atomic_fetch_add_explicit(&pool->n_rebalances, 1, memory_order_relaxed);

		wake = ripen__sat_add(now, pool->period_ns);
		/* seq_cst: the rebalancer's half of the idle-sleep Dekker pair
		 * (submit: inbox_in, then rebal_idle; here: rebal_idle, then the
		 * counters) */
		atomic_store_explicit(&pool->rebal_idle, 1, memory_order_seq_cst);
		if (pool_has_work(pool))
			atomic_store_explicit(&pool->rebal_idle, 0, memory_order_seq_cst);
		else
			wake = next; /* only timers can need us */
		if (wake > next)
			wake = next;
		now = ripen__now_ns();
		sleep_ns = wake == UINT64_MAX ? -1 :
			   wake <= now ? 0 :
			   wake - now > (uint64_t)INT64_MAX ? -1 : (int64_t)(wake - now);
		if (sleep_ns != 0)
			ripen__futex_wait(&pool->rebal_word, word, sleep_ns);
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
