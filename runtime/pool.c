/*
 * The pool: creation, submit, idle detection, shutdown, destroy, stats.
 *
 * Submit (external thread; wait-free apart from the allocation):
 *   1. allocate and fill the task; refs = 1 (the queue entry) + 1 (handle);
 *   2. pick the target worker round-robin (per-thread cursor: no shared line);
 *   3. inbox_in(target) += 1                 [seq_cst]  (S1 of park.c)
 *   4. closed?                               [seq_cst]  -> count a reject, free, -ESHUTDOWN
 *   5. enqueue on the target's wfcqueue      (wait-free)
 *   6. wake the target if parked, else one sleeper if any   (S3/S4 of park.c)
 * A submit from inside one of the pool's tasks skips the inbox and pushes
 * straight into the running worker's heap.
 *
 * Sequence: a task's `seq` is its submit time in ns from CLOCK_MONOTONIC,
 * made strictly increasing per submitting thread. Tie-break by seq is FIFO
 * for one producer and submit-time order across producers, without the
 * global fetch-add counter that every producer would fight over.
 *
 * Shutdown protocol:
 *   1. take admin_lock (rank RIPEN_LOCK_ADMIN); a second shutdown gets -EALREADY;
 *   2. store mode = DRAIN or CANCEL          [release]  (workers read it at dispatch)
 *   3. store closed = 1                      [seq_cst]  Dekker with submit steps 3-4:
 *      a submitter either sees closed and rejects, or its inbox_in increment
 *      is seen by step 5's idle check and its task is run or cancelled;
 *   4. unpause, wake every worker;
 *   5. wait until idle (every accepted task done or cancelled; tasks running
 *      in DRAIN may still submit children, counted before their parent ends);
 *   6. store stop = 1 [seq_cst], wake all; each worker drops the stale
 *      entries it still holds (asserting none is QUEUED) and exits;
 *   7. join.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc-internal.h"
#include "fault-internal.h"
#include "policy-internal.h"
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
#include "trace-internal.h"

#ifdef RIPEN_TINY
#define RIPEN_HEAP_INIT 2u
#else
#define RIPEN_HEAP_INIT 256u
#endif

static RIPEN_TLS uint64_t tls_last_seq;


int ripen_pool_wait_idle(struct ripen_pool *pool, int64_t timeout_ns)
{
	if (pool == NULL)
		return -EINVAL;
	if ((ripen__self != NULL && ripen__self->pool == pool) ||
	    ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_WATCH)
		return -EDEADLK; /* a watcher's callback: timers wait for the rebalancer */
	return ripen__wait_idle(pool, timeout_ns);
}

/* ----------------------------------------------------------------- create */

static bool opts_size_ok(size_t size, size_t min, size_t max)
{
	return size >= min && size <= max;
}

/* What a destroyed pool no longer needs. */
static void free_pool_resources(struct ripen_pool *pool)
{
	/* relaxed: no thread of the pool is left */
	struct ripen__ctx *c = atomic_load_explicit(&pool->ctx, memory_order_relaxed);

	for (unsigned i = 0; i < pool->nworkers; i++)
		ripen__prioq_fini(&pool->workers[i].heap);
	ripen__timers_fini(pool);
	ripen_policy_free(atomic_load_explicit(&pool->policy, memory_order_relaxed));
	atomic_store_explicit(&pool->policy, NULL, memory_order_relaxed);
	if (c != NULL) {
		if (c->ctx_free != NULL)
			c->ctx_free(c->ctx);
		free(c);
	}
	atomic_store_explicit(&pool->ctx, NULL, memory_order_relaxed);
	ripen__trace_fini(pool); /* a trace still running: its trailer */
	ripen__watch_fini(pool);
	free(pool->last_done);
	free(pool->deal_order);
	pool->last_done = NULL;
	pool->deal_order = NULL;
}

/* The shell: what task handles may still touch (timer_lock, counters). */
static void free_pool_shell(struct ripen_pool *pool)
{
	ripen__metrics_fini(pool); /* a late cancel through a handle counts there */
	free(pool->workers);
	pthread_mutex_destroy(&pool->admin_lock);
	pthread_mutex_destroy(&pool->swap_lock);
	pthread_mutex_destroy(&pool->timer_lock);
	pthread_mutex_destroy(&pool->trace_lock);
	free(pool);
}

static void free_pool(struct ripen_pool *pool)
{
	free_pool_resources(pool);
	free_pool_shell(pool);
}

/* Drop a reference to the pool's shell: the pool's own (destroy) or a task
 * handle's (ripen_task_release). Any thread. */
void ripen__pool_unref(struct ripen_pool *pool)
{
	/* acq_rel: the last one sees every other holder's accesses */
	if (atomic_fetch_sub_explicit(&pool->handles, 1, memory_order_acq_rel) == 1)
		free_pool_shell(pool);
}

/* Worker i gets the i-th CPU of the process's affinity mask (mod count). */
static void plan_pinning(struct ripen_pool *pool)
{
	cpu_set_t allowed;
	int cpus[CPU_SETSIZE], ncpu = 0;

	for (unsigned i = 0; i < pool->nworkers; i++)
		pool->workers[i].pin_cpu = -1;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed))
			cpus[ncpu++] = c;
	if (ncpu == 0)
		return;
	for (unsigned i = 0; i < pool->nworkers; i++)
		pool->workers[i].pin_cpu = cpus[i % (unsigned)ncpu];
}

static void stop_and_join(struct ripen_pool *pool)
{
	/* The rebalancer goes first: it may hold entries between taking them
	 * from one heap and requeueing them through an inbox, and releases
	 * timed tasks into inboxes; neither may land in the inbox of a worker
	 * that has already drained its last (cleanup). */
	ripen__rebalancer_stop(pool);
	/* seq_cst: the waker's side of the park protocol (stop before parked) */
	atomic_store_explicit(&pool->stop, 1, memory_order_seq_cst);
	ripen__wake_all(pool);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		if (pool->workers[i].started)
			pthread_join(pool->workers[i].thread, NULL);
		pool->workers[i].started = false;
	}
}

/* The caller's options, checked, with defaults filled in; the policy is
 * ours from here on, whatever happens (freed on error). */
static int take_opts(const struct ripen_pool_opts *opts, struct ripen_pool_opts *o, unsigned *n)
{
	/* taken over whenever the caller's struct has the field: a larger
	 * (newer) struct has it too */
	if (opts != NULL && opts->size >= offsetof(struct ripen_pool_opts, policy) +
					     sizeof(opts->policy))
		o->policy = opts->policy;
	if (opts != NULL) {
		if (!opts_size_ok(opts->size, offsetof(struct ripen_pool_opts, pin_workers) + sizeof(bool),
				  sizeof(struct ripen_pool_opts))) {
			ripen_policy_free(o->policy);
			return -EINVAL;
		}
		memcpy(o, opts, opts->size);
	}
	if (o->workers > RIPEN_MAX_WORKERS ||
	    (o->name != NULL && strnlen(o->name, 128) > 127)) {
		ripen_policy_free(o->policy);
		return -EINVAL;
	}
	if (o->policy == NULL && (o->policy = ripen_policy_static()) == NULL)
		return -ENOMEM;
	*n = o->workers;
	if (*n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		*n = c < 1 ? 1 : c > (long)RIPEN_MAX_WORKERS ? RIPEN_MAX_WORKERS : (unsigned)c;
	}
	return 0;
}

/* The pool and its arrays, zeroed; NULL without memory. */
static struct ripen_pool *pool_alloc(unsigned n)
{
	struct ripen_pool *pool = RIPEN_FAULT(RIPEN_FAULT_POOL_ALLOC) ? NULL :
		aligned_alloc(RIPEN_CACHELINE, (sizeof(*pool) + RIPEN_CACHELINE - 1) &
					       ~(size_t)(RIPEN_CACHELINE - 1));

	if (pool == NULL)
		return NULL;
	memset(pool, 0, sizeof(*pool));
	if (RIPEN_FAULT(RIPEN_FAULT_POOL_ALLOC) ||
	    (pool->workers = aligned_alloc(RIPEN_CACHELINE, n * sizeof(struct ripen__worker))) == NULL ||
	    (pool->last_done = calloc(n, sizeof(uint64_t))) == NULL ||
	    (pool->deal_order = calloc(n, sizeof(unsigned))) == NULL) {
		free(pool->last_done);
		free(pool->deal_order);
		free(pool->workers);
		free(pool);
		return NULL;
	}
	memset(pool->workers, 0, n * sizeof(struct ripen__worker));
	return pool;
}

/* Everything but the threads. Owns o->policy from here on. */
static void pool_init(struct ripen_pool *pool, const struct ripen_pool_opts *o, unsigned n)
{
	pthread_mutex_init(&pool->admin_lock, NULL);
	pthread_mutex_init(&pool->swap_lock, NULL);
	pthread_mutex_init(&pool->timer_lock, NULL);
	pthread_mutex_init(&pool->trace_lock, NULL);
	pool->on_worker_start = o->on_worker_start;
	pool->on_worker_stop = o->on_worker_stop;
	pool->hook_arg = o->hook_arg;
	atomic_init(&pool->policy, o->policy);
	atomic_init(&pool->ctx, NULL);
	atomic_init(&pool->policy_gen, 0);
	atomic_init(&pool->time_gen, 0);
	atomic_init(&pool->ref_ns, ripen__now_ns());
	atomic_init(&pool->n_reprio, 0);
	atomic_init(&pool->rebal_word, 0);
	atomic_init(&pool->rebal_idle, 0);
	atomic_init(&pool->rebal_stop, 0);
	atomic_init(&pool->handles, 1);
	atomic_init(&pool->n_release_in, 0);
	atomic_init(&pool->n_rearm_failed, 0);
	pool->rebal_rng = ripen__seed_rng(&pool->rebal_rng);
	pool->period_ns = o->rebalance_period_ns == 0 ? RIPEN_REBALANCE_DEFAULT_NS :
			  o->rebalance_period_ns == RIPEN_REBALANCE_OFF ? 0 : o->rebalance_period_ns;
	atomic_init(&pool->closed, 0);
	atomic_init(&pool->mode, RIPEN_MODE_RUN);
	atomic_init(&pool->paused, o->start_paused ? RIPEN_PAUSED : RIPEN_RUNNING);
	atomic_init(&pool->prime_gen, 0);
	atomic_init(&pool->primed, 0);
	atomic_init(&pool->stop, 0);
	atomic_init(&pool->nsleeping, 0);
	atomic_init(&pool->idle_waiters, 0);
	atomic_init(&pool->idle_seq, 0);
	atomic_init(&pool->ext_cancelled, 0);
	atomic_init(&pool->int_rejected, 0);
	pool->nworkers = n;
}

/* Worker i's fields and heap: 0 or -ENOMEM. */
static int worker_init(struct ripen_pool *pool, unsigned i, bool pinned)
{
	struct ripen__worker *w = &pool->workers[i];

	__cds_wfcq_init(&w->inbox_head, &w->inbox_tail);
	atomic_init(&w->inbox_lock, 0);
	atomic_init(&w->inbox_taken, 0);
	atomic_init(&w->inbox_in, 0);
	atomic_init(&w->inbox_rejected, 0);
	atomic_init(&w->inbox_extra, 0);
	/* relaxed: before the threads exist */
	w->keyed_ref = atomic_load_explicit(&pool->ref_ns, memory_order_relaxed);
	atomic_init(&w->parked, 0);
	atomic_init(&w->heap_lock, 0);
	atomic_init(&w->pub_top, 0);
	atomic_init(&w->qsize, 0);
	if (!pinned)
		w->pin_cpu = -1;
	w->pool = pool;
	w->index = i;
	w->fast_kind = -1; /* until its first step's snapshot */
	w->rng = ripen__seed_rng(w);
	return ripen__prioq_init(&w->heap, RIPEN_HEAP_INIT);
}

/* The workers and the rebalancer: 0 or -EAGAIN (the caller unwinds). */
static int start_threads(struct ripen_pool *pool)
{
	sigset_t all, old;
	int rc = 0;

	/* Workers take no asynchronous signals: those belong to the server's
	 * own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* The rebalancer first: a worker's start hook may submit before
	 * ripen_pool_create returns, and submits read rebal_started (a plain
	 * field, published to the workers by their pthread_create) */
	rc = ripen__rebalancer_start(pool);
	for (unsigned i = 0; rc == 0 && i < pool->nworkers; i++) {
		struct ripen__worker *w = &pool->workers[i];

		if (RIPEN_FAULT(RIPEN_FAULT_THREAD_CREATE) ||
		    pthread_create(&w->thread, NULL, ripen__worker_main, w) != 0) {
			rc = -EAGAIN;
			break;
		}
		w->started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return rc;
	for (unsigned i = 0; i < pool->nworkers; i++) {
		char name[16];

		snprintf(name, sizeof(name), "ripen-w%u", i % 10000u); /* i < RIPEN_MAX_WORKERS */
		pthread_setname_np(pool->workers[i].thread, name);
	}
	return 0;
}

int ripen_pool_create(const struct ripen_pool_opts *opts, struct ripen_pool **out)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *pool;
	unsigned n = 0;
	int rc;

	if (out == NULL) {
		/* the policy is taken over even so */
		if (opts != NULL && opts->size >= offsetof(struct ripen_pool_opts, policy) +
						     sizeof(opts->policy))
			ripen_policy_free(opts->policy);
		return -EINVAL;
	}
	*out = NULL;
	if ((rc = take_opts(opts, &o, &n)) != 0)
		return rc;
	if ((pool = pool_alloc(n)) == NULL) {
		ripen_policy_free(o.policy);
		return -ENOMEM;
	}
	pool_init(pool, &o, n);
	if (o.pin_workers)
		plan_pinning(pool);
	for (unsigned i = 0; i < n; i++) {
		if (worker_init(pool, i, o.pin_workers) != 0) {
			pool->nworkers = i + 1;
			free_pool(pool);
			return -ENOMEM;
		}
	}
	if ((rc = ripen__metrics_init(pool, o.name, !o.metrics_off)) != 0 ||
	    (rc = ripen__watch_init(pool)) != 0) {
		free_pool(pool);
		return rc;
	}
	if ((rc = start_threads(pool)) != 0) {
		stop_and_join(pool);
		free_pool(pool);
		return rc;
	}
	*out = pool;
	return 0;
}

/*
 * Resume protocol (caller holds admin_lock):
 *   1. prime_gen += 1, primed = 0; paused = PRIMING [seq_cst]; wake all;
 *   2. each worker drains its inbox into its heap, primed += 1 [release];
 *   3. when primed == nworkers [acquire]: paused = RUNNING [seq_cst]; wake all.
 * Workers do not exit while the pool is paused or priming (stop is set
 * only after a shutdown has resumed the pool), so step 3 always ends.
 */
static void resume_locked(struct ripen_pool *pool)
{
	/* relaxed: admin_lock orders resumes; workers read it after the
	 * seq_cst store of paused below */
	if (atomic_load_explicit(&pool->paused, memory_order_relaxed) == RIPEN_RUNNING)
		return;
	atomic_fetch_add_explicit(&pool->prime_gen, 1, memory_order_relaxed);
	atomic_store_explicit(&pool->primed, 0, memory_order_relaxed);
	/* seq_cst: the waker's side of the park protocol (flag, then parked) */
	atomic_store_explicit(&pool->paused, RIPEN_PRIMING, memory_order_seq_cst);
	ripen__wake_all(pool);
	/* acquire: pairs with each worker's release increment of primed */
	while (atomic_load_explicit(&pool->primed, memory_order_acquire) < pool->nworkers)
		sched_yield();
	/* seq_cst: as above */
	atomic_store_explicit(&pool->paused, RIPEN_RUNNING, memory_order_seq_cst);
	ripen__wake_all(pool);
	/* the priming drains filled heaps without the gate (paused()): the
	 * rebalancer has work from now on if it was idle */
	ripen__rebalancer_poke(pool);
}

int ripen_pool_resume(struct ripen_pool *pool)
{
	if (pool == NULL)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE)
		return -EDEADLK; /* a priming worker scores: resume waits for it */
	/* acquire: pairs with the seq_cst store of RUNNING. A running pool
	 * needs nothing; this also keeps a resume from inside a task (the
	 * pool runs) from waiting on admin_lock held by a draining shutdown */
	if (atomic_load_explicit(&pool->paused, memory_order_acquire) == RIPEN_RUNNING)
		return 0;
	pthread_mutex_lock(&pool->admin_lock);
	resume_locked(pool);
	pthread_mutex_unlock(&pool->admin_lock);
	return 0;
}

unsigned ripen_pool_workers(const struct ripen_pool *pool)
{
	return pool ? pool->nworkers : 0;
}

int ripen_pool_current_worker(const struct ripen_pool *pool)
{
	struct ripen__worker *w = ripen__self;

	return (pool != NULL && w != NULL && w->pool == pool) ? (int)w->index : -1;
}

/* ---------------------------------------------------------------- submit */

/* A new task, QUEUED, with a reference for its first entry and one for the
 * handle when asked; its sequence is its submit time, strictly increasing
 * per thread. NULL without memory. */
static inline struct ripen_task *make_task(struct ripen_pool *pool, ripen_fn *fn, void *arg,
					   const struct ripen_task_opts *o, uint64_t now,
					   bool delayed, bool timed, bool handle)
{
	struct ripen_task *t = ripen__task_alloc(timed || o->class_id != 0 || o->deadline_ns != 0 ||
						 o->done != NULL || o->cq != NULL);
	struct ripen__ext *x;

	if (t == NULL)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	t->pool = pool;
	atomic_init(&t->base, o->base);
	t->seq = now > tls_last_seq ? now : tls_last_seq + 1;
	tls_last_seq = t->seq;
	atomic_init(&t->state, TS_QUEUED);
	atomic_init(&t->refs, handle ? 2 : 1);
	atomic_init(&t->vb, 0);
	x = ripen__task_ext(t);
	if (x != NULL) {
		x->class_id = o->class_id;
		x->deadline_ns = o->deadline_ns;
		x->is_timed = timed;
		if (timed) {
			x->timed.release_ns = delayed ? o->not_before_ns : t->seq;
			x->timed.interval_ns = o->interval_ns;
			x->timed.trigger = o->trigger;
			x->timed.target = o->inbox;
			x->timed.where = RIPEN_T_OUT;
		} else { /* the caller refused completions on timed tasks */
			x->c.done = o->done;
			x->c.cq = o->cq;
		}
	}
	return t;
}

static const struct ripen_task_opts default_task_opts = RIPEN_TASK_OPTS_INIT;

/*
 * The options in force: the caller's own struct when it has this build's
 * size (read in place: no zeroing and copying of ~100 bytes a submit, ~45
 * instructions of a spawn under callgrind), else a copy over the defaults
 * (an older caller's shorter struct), NULL when the size is out of range.
 */
static inline const struct ripen_task_opts *task_opts(const struct ripen_task_opts *opts,
						      struct ripen_task_opts *copy)
{
	if (opts == NULL)
		return &default_task_opts;
	if (ripen__likely(opts->size == sizeof(struct ripen_task_opts)))
		return opts;
	if (!opts_size_ok(opts->size, offsetof(struct ripen_task_opts, class_id) + sizeof(uint32_t),
			  sizeof(struct ripen_task_opts)))
		return NULL;
	*copy = default_task_opts;
	memcpy(copy, opts, opts->size);
	return copy;
}

int ripen_submit(struct ripen_pool *pool, ripen_fn *fn, void *arg,
		 const struct ripen_task_opts *opts, struct ripen_task **out)
{
	struct ripen_task_opts copy;
	const struct ripen_task_opts *op;
	struct ripen__worker *self = ripen__self, *w;
	struct ripen_task *t;
	uint64_t now;
	bool delayed, timed;

	if (out != NULL)
		*out = NULL;
	if (pool == NULL || fn == NULL)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE)
		return -EDEADLK; /* the heap lock is ours: see common-internal.h */
	op = task_opts(opts, &copy);
	if (op == NULL)
		return -EINVAL;
	if (op->base != op->base || op->base - op->base != 0.0) /* NaN or infinite */
		return -EINVAL;
	if (op->interval_ns != 0 && op->trigger != NULL)
		return -EINVAL;
	/* A worker's spawn reads its recording clock (metrics-internal.h: the
	 * TSC scaled from a vDSO anchor, where the kernel keeps time by the
	 * TSC), the same CLOCK_MONOTONIC nanoseconds: measured here, the vDSO
	 * call took 20-40 ns and 6% of a relaxed-SSSP run at one worker
	 * (perf, bench_sssp on moscow.gr), rdtsc 12 ns */
	now = self != NULL && self->pool == pool ? ripen__m_now(self) : ripen__now_ns();
	delayed = op->not_before_ns > now;
	timed = delayed || op->interval_ns != 0 || op->trigger != NULL;
	if (timed && pool->period_ns == 0)
		return -EINVAL; /* timers live in the rebalancer */
	if (timed && (op->done != NULL || op->cq != NULL))
		return -EINVAL; /* completion delivery is for plain tasks */
	if (ripen__unlikely(ripen__m_shedding(pool, op->class_id))) {
		ripen__m_shed(pool, op->class_id); /* a watcher sheds the class (watch.c) */
		return -EBUSY;
	}

	t = make_task(pool, fn, arg, op, now, delayed, timed, out != NULL);
	if (t == NULL)
		return -ENOMEM;
	if (delayed) {
		int rc;

		atomic_init(&t->state, TS_QUEUED | TS_ARMED);
		rc = ripen__timer_submit(pool, t);
		if (rc != 0) {
			if (rc == -ESHUTDOWN)
				/* relaxed: statistics (stats.rejected); a delayed
				 * task refused was never counted on the in-side */
				atomic_fetch_add_explicit(&pool->int_rejected, 1, memory_order_relaxed);
			if (rc == -ESHUTDOWN)
				ripen__m_rejected(pool, op->class_id);
			ripen__task_free(t);
			return rc;
		}
	} else if (self != NULL && self->pool == pool && !self->starting) {
		/* (A start hook's submits take the external path below: no task
		 * of this worker holds idle detection back for them, so they need
		 * its Dekker pair with a shutdown.)
		 * acquire: pairs with the release store of mode in shutdown. A
		 * worker past its last task (its stop hook) would queue work no
		 * one runs */
		if (atomic_load_explicit(&pool->mode, memory_order_acquire) == RIPEN_MODE_CANCEL ||
		    ripen__unlikely(self->exiting)) {
			/* relaxed: statistics only */
			atomic_fetch_add_explicit(&pool->int_rejected, 1, memory_order_relaxed);
			ripen__m_rejected(pool, op->class_id);
			ripen__task_free(t);
			return -ESHUTDOWN;
		}
		ripen__m_local_submitted(self, op->class_id); /* before it can start */
		if (op->inbox != 0) { /* affinity asked: that worker's inbox */
			/* relaxed: not yet published; the enqueue publishes it */
			atomic_store_explicit(&t->vb, RIPEN_VB_BUSY, memory_order_relaxed);
			ripen__inbox_push(pool, ripen__pick_target(pool, op->inbox), t, true);
		} else {
			ripen__worker_push_local(self, t);
		}
	} else {
		w = ripen__pick_target(pool, op->inbox);
		/* seq_cst: S1 (park.c) and the in-side of idle detection */
		atomic_fetch_add_explicit(&w->inbox_in, 1, memory_order_seq_cst);
		RIPEN_YIELD_POINT(); /* shutdown closes the pool right here */
		/* seq_cst: step 4; Dekker with step 3 of the shutdown protocol */
		if (atomic_load_explicit(&pool->closed, memory_order_seq_cst)) {
			/* seq_cst: out-side of idle detection; shutdown waits on it */
			atomic_fetch_add_explicit(&w->inbox_rejected, 1, memory_order_seq_cst);
			ripen__m_rejected(pool, op->class_id);
			ripen__task_free(t);
			ripen__pool_maybe_signal_idle(pool);
			return -ESHUTDOWN;
		}
		ripen__m_ext_submitted(w, op->class_id); /* before it can start */
		/* relaxed: the enqueue below publishes it (and TSan is told) */
		atomic_store_explicit(&t->vb, RIPEN_VB_BUSY, memory_order_relaxed);
		ripen__inbox_enqueue(pool, w, t);
	}
	if (out != NULL) {
		/* relaxed: the handle keeps the pool's shell alive; the count
		 * only has to be exact when it reaches zero (acq_rel there) */
		atomic_fetch_add_explicit(&pool->handles, 1, memory_order_relaxed);
		*out = t;
	}
	return 0;
}

uint64_t ripen_now_ns(void)
{
	return ripen__now_ns();
}

/* --------------------------------------------------------------- policies */

int ripen_pool_set_policy(struct ripen_pool *pool, struct ripen_policy *p)
{
	struct ripen_policy *old;

	if (pool == NULL || p == NULL) {
		ripen_policy_free(p);
		return -EINVAL;
	}
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_TRIGGER) {
		/* inside a read section, where no grace period can end. Owned
		 * even on error, so freed, unless it is the live one. acquire:
		 * as the workers load it (we are in a read section too) */
		if (atomic_load_explicit(&pool->policy, memory_order_acquire) != p)
			ripen_policy_free(p);
		return -EDEADLK;
	}
	pthread_mutex_lock(&pool->swap_lock);
	/* relaxed: swap_lock orders the swappers, the only writers */
	if (atomic_load_explicit(&pool->policy, memory_order_relaxed) == p) {
		/* the pool owns it already; freeing the "old" one would free
		 * the live policy */
		pthread_mutex_unlock(&pool->swap_lock);
		return 0;
	}
	/* release: publish the new policy's fields; pairs with the acquire
	 * loads in step_begin (worker.c) and the rebalancer */
	old = atomic_exchange_explicit(&pool->policy, p, memory_order_acq_rel);
	/* release: after the pointer (step_begin loads the generation first) */
	atomic_fetch_add_explicit(&pool->policy_gen, 1, memory_order_release);
	ripen__rcu_synchronize();
	ripen_policy_free(old);
	pthread_mutex_unlock(&pool->swap_lock);
	ripen__rebalancer_poke(pool);
	return 0;
}

int ripen_pool_set_context(struct ripen_pool *pool, void *ctx, void (*ctx_free)(void *))
{
	struct ripen__ctx *c, *old;

	if (pool == NULL)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_TRIGGER)
		return -EDEADLK; /* as in set_policy */
	if (RIPEN_FAULT(RIPEN_FAULT_POLICY_ALLOC) || (c = malloc(sizeof(*c))) == NULL)
		return -ENOMEM;
	c->ctx = ctx;
	c->ctx_free = ctx_free;
	pthread_mutex_lock(&pool->swap_lock);
	/* release/acquire: as in set_policy */
	old = atomic_exchange_explicit(&pool->ctx, c, memory_order_acq_rel);
	/* release: scores may depend on the context: re-key (as a swap) */
	atomic_fetch_add_explicit(&pool->policy_gen, 1, memory_order_release);
	ripen__rcu_synchronize();
	if (old != NULL) {
		if (old->ctx_free != NULL)
			old->ctx_free(old->ctx);
		free(old);
	}
	pthread_mutex_unlock(&pool->swap_lock);
	return 0;
}

/* --------------------------------------------------------------- shutdown */

int ripen_pool_shutdown(struct ripen_pool *pool, enum ripen_shutdown how)
{
	if (pool == NULL || (how != RIPEN_SHUTDOWN_DRAIN && how != RIPEN_SHUTDOWN_CANCEL))
		return -EINVAL;
	if ((ripen__self != NULL && ripen__self->pool == pool) ||
	    ripen__in_callback != RIPEN_CB_NONE)
		return -EDEADLK;
	pthread_mutex_lock(&pool->admin_lock);
	if (pool->shut_down) {
		pthread_mutex_unlock(&pool->admin_lock);
		return -EALREADY;
	}
	/* release: workers' acquire loads of mode at dispatch */
	atomic_store_explicit(&pool->mode,
			      how == RIPEN_SHUTDOWN_CANCEL ? RIPEN_MODE_CANCEL : RIPEN_MODE_DRAIN,
			      memory_order_release);
	/* seq_cst: step 3 (Dekker with submit's inbox_in increment) */
	atomic_store_explicit(&pool->closed, 1, memory_order_seq_cst);
	resume_locked(pool);
	ripen__wake_all(pool);
	/* delayed tasks not yet due are cancelled in both modes; periodic
	 * ones are not re-armed once the mode has changed (worker.c) */
	ripen__timers_cancel_all(pool);
	(void)ripen__wait_idle(pool, -1);
	stop_and_join(pool);
	pool->shut_down = true;
	pthread_mutex_unlock(&pool->admin_lock);
	return 0;
}

void ripen_pool_destroy(struct ripen_pool *pool)
{
	if (pool == NULL)
		return;
	if (ripen__self != NULL && ripen__self->pool == pool)
		RIPEN_DIE("ripen_pool_destroy called from one of the pool's own tasks");
	if (ripen__in_callback != RIPEN_CB_NONE)
		RIPEN_DIE("ripen_pool_destroy called from a score function, a trigger or a watcher");
	(void)ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN);
	free_pool_resources(pool);
	pool->destroyed = true;
	ripen__pool_unref(pool); /* the shell lives on while task handles do */
}

/* ------------------------------------------------------------------ stats */

int ripen_pool_stats(struct ripen_pool *pool, struct ripen_pool_stats *st)
{
	struct ripen_pool_stats s = RIPEN_POOL_STATS_INIT;
	size_t size;

	if (pool == NULL || st == NULL || st->size < offsetof(struct ripen_pool_stats, submitted) + 8)
		return -EINVAL;
	size = st->size < sizeof(s) ? st->size : sizeof(s);
	/* relaxed throughout: monitoring counters, no ordering needed */
	s.cancelled = atomic_load_explicit(&pool->ext_cancelled, memory_order_relaxed);
	s.rejected = atomic_load_explicit(&pool->int_rejected, memory_order_relaxed);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__worker *w = &pool->workers[i];
		uint64_t in = atomic_load_explicit(&w->inbox_in, memory_order_relaxed);
		uint64_t rej = atomic_load_explicit(&w->inbox_rejected, memory_order_relaxed);

		s.submitted += in - rej + atomic_load_explicit(&w->local_in, memory_order_relaxed);
		s.rejected += rej;
		s.run += atomic_load_explicit(&w->n_run, memory_order_relaxed);
		s.cancelled += atomic_load_explicit(&w->n_cancelled, memory_order_relaxed);
		s.steals += atomic_load_explicit(&w->n_steals, memory_order_relaxed);
		s.stolen_tasks += atomic_load_explicit(&w->n_stolen_tasks, memory_order_relaxed);
		s.inbox_steals += atomic_load_explicit(&w->n_inbox_steals, memory_order_relaxed);
		s.stale_dropped += atomic_load_explicit(&w->n_stale, memory_order_relaxed);
		s.parks += atomic_load_explicit(&w->n_parks, memory_order_relaxed);
		s.inline_runs += atomic_load_explicit(&w->n_inline, memory_order_relaxed);
		s.rekeys += atomic_load_explicit(&w->n_rekeys, memory_order_relaxed);
		s.rekeyed_entries += atomic_load_explicit(&w->n_rekeyed, memory_order_relaxed);
		s.rekey_ns += atomic_load_explicit(&w->n_rekey_ns, memory_order_relaxed);
		s.bad_scores += atomic_load_explicit(&w->n_bad, memory_order_relaxed);
		s.peer_looks += atomic_load_explicit(&w->n_looks, memory_order_relaxed);
		s.steal_busy += atomic_load_explicit(&w->n_steal_busy, memory_order_relaxed);
		s.lock_waits += atomic_load_explicit(&w->n_lock_waits, memory_order_relaxed);
		s.lock_yields += atomic_load_explicit(&w->n_lock_yields, memory_order_relaxed);
		s.stall_waits += atomic_load_explicit(&w->n_stall_waits, memory_order_relaxed);
		s.stall_yields += atomic_load_explicit(&w->n_stall_yields, memory_order_relaxed);
	}
	/* a delayed task cancelled before its release counts as submitted and
	 * cancelled, so that submitted == run + cancelled + queued holds */
	s.submitted += atomic_load_explicit(&pool->n_timer_cancelled, memory_order_relaxed);
	s.submitted += atomic_load_explicit(&pool->n_release_in, memory_order_relaxed);
	s.cancelled += atomic_load_explicit(&pool->n_timer_cancelled, memory_order_relaxed);
	s.delayed = atomic_load_explicit(&pool->n_delayed, memory_order_relaxed);
	s.released = atomic_load_explicit(&pool->n_released, memory_order_relaxed);
	s.rearm_failed = atomic_load_explicit(&pool->n_rearm_failed, memory_order_relaxed);
	s.reprioritized = atomic_load_explicit(&pool->n_reprio, memory_order_relaxed);
	s.rebalances = atomic_load_explicit(&pool->n_rebalances, memory_order_relaxed);
	s.merged = atomic_load_explicit(&pool->n_merged, memory_order_relaxed);
	s.rescued = atomic_load_explicit(&pool->n_rescued, memory_order_relaxed);
	s.size = size;
	memcpy(st, &s, size);
	return 0;
}
