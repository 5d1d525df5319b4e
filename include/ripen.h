/*
 * ripen: a worker-pool runtime with dynamic task priorities.
 *
 * Public API. Everything here is a contract: names and meanings do not
 * change once released. All functions return 0 or a negative errno value
 * and never write errno; ripen_strerror() turns a code into text.
 *
 * Thread safety: every function may be called from any thread, including
 * from inside a running task, unless its comment says otherwise.
 */
#ifndef RIPEN_H
#define RIPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RIPEN_BUILDING_LIBRARY)
#define RIPEN_API __attribute__((visibility("default")))
#else
#define RIPEN_API
#endif

/* Options structs start with `size`; the rest defaults to zero. C++ (14 or
 * later) gets the same defaults as member initializers, so that
 * RIPEN_*_INIT stays warning-free under -Wextra. */
#ifdef __cplusplus
#define RIPEN_DEFAULT(x) = x
#define RIPEN_INIT_SIZE_(type) { sizeof(type) }
#else
#define RIPEN_DEFAULT(x)
#define RIPEN_INIT_SIZE_(type) { .size = sizeof(type) }
#endif

#define RIPEN_VERSION_MAJOR 0
#define RIPEN_VERSION_MINOR 1

struct ripen_pool;
struct ripen_task;
struct ripen_policy;			/* opaque, immutable once built */

/* ---------------------------------------------------------------- pools */

/*
 * Options for ripen_pool_create(). Always start from RIPEN_POOL_OPTS_INIT:
 * `size` tells the library which fields the caller knows, so fields can be
 * added at the end without breaking callers compiled against older headers.
 */
struct ripen_pool_opts {
	size_t size;		/* sizeof(struct ripen_pool_opts) */
	unsigned workers RIPEN_DEFAULT(0); /* 0 = online CPUs; at most RIPEN_MAX_WORKERS */
	bool start_paused RIPEN_DEFAULT(false); /* accept submits, run nothing until resumed */
	/* pin worker i to the i-th CPU this process may use (mod their count):
	 * for servers that dedicate cores; keeps two workers from time-sharing
	 * one CPU, which costs a relaxed scheduler its order while it lasts */
	bool pin_workers RIPEN_DEFAULT(false);
	/* taken over, even when create fails (also for an unknown, larger
	 * `size`); NULL = ripen_policy_static() */
	struct ripen_policy *policy RIPEN_DEFAULT(nullptr);
	/* 0 = RIPEN_REBALANCE_DEFAULT_NS. RIPEN_REBALANCE_OFF: no rebalancer
	 * thread, so no re-scoring of time-varying policies, no merging and no
	 * delayed tasks (-EINVAL): for tests and benchmarks */
	uint64_t rebalance_period_ns RIPEN_DEFAULT(0); /* wake-up times saturate: a huge
				 * period means "only when poked or a timer is due" */
	/* the `pool` label of ripen_metrics_write (copied; at most 127
	 * bytes); NULL = "ripen<N>", N the pool's creation number */
	const char *name RIPEN_DEFAULT(nullptr);
	/* no wait and run histograms: the two clock reads a task costs them
	 * are skipped (per-class counts are kept; wait watchers get -ENOTSUP) */
	bool metrics_off RIPEN_DEFAULT(false);
	/*
	 * Worker lifecycle hooks (as Tokio's on_thread_start/on_thread_stop
	 * and oneTBB's scheduler observers): called on each worker thread,
	 * with its index, before its first task and after its last, for
	 * per-thread state (a database connection, a tracing context, CPU
	 * affinity: the start hook runs after pin_workers pinned the thread).
	 * NULL = none; `hook_arg` is passed to both. A start hook may submit
	 * to the pool as any thread may (-ESHUTDOWN once it is shutting
	 * down); a stop hook's submits get -ESHUTDOWN. Like tasks, neither may shut down (-EDEADLK) or
	 * destroy (abort) the pool. ripen_pool_create may return before every
	 * start hook has run; ripen_pool_shutdown and ripen_pool_destroy
	 * return after every stop hook has.
	 */
	void (*on_worker_start)(struct ripen_pool *pool, unsigned worker, void *hook_arg)
		RIPEN_DEFAULT(nullptr);
	void (*on_worker_stop)(struct ripen_pool *pool, unsigned worker, void *hook_arg)
		RIPEN_DEFAULT(nullptr);
	void *hook_arg RIPEN_DEFAULT(nullptr);
};
#define RIPEN_REBALANCE_DEFAULT_NS 2000000ull	/* 2 ms: see runtime/rebalance.c */
#define RIPEN_REBALANCE_OFF UINT64_MAX
#define RIPEN_POOL_OPTS_INIT RIPEN_INIT_SIZE_(struct ripen_pool_opts)

#define RIPEN_MAX_WORKERS 1024u

enum ripen_shutdown {
	RIPEN_SHUTDOWN_DRAIN = 0,	/* run every accepted task, then stop */
	RIPEN_SHUTDOWN_CANCEL = 1,	/* cancel every task not yet started, then stop */
};

/*
 * Create a pool and start its worker threads. opts NULL = defaults.
 * -EINVAL: out NULL, unknown opts->size, workers > RIPEN_MAX_WORKERS.
 * -ENOMEM, -EAGAIN (thread creation failed; nothing is left behind).
 */
RIPEN_API int ripen_pool_create(const struct ripen_pool_opts *opts,
				struct ripen_pool **out);

/* Start dispatch of a pool created with start_paused: every worker first
 * moves what was submitted meanwhile into its heap, then all start together,
 * so the first tasks to run are the best ones. Returns when dispatch has
 * started. 0 also when it was already running; -EINVAL for a NULL pool. */
RIPEN_API int ripen_pool_resume(struct ripen_pool *pool);

/*
 * Wait until no accepted task is queued or running. timeout_ns < 0 waits
 * forever; 0 polls. -ETIMEDOUT when the time ran out. A paused pool with
 * queued work never becomes idle. Called from inside one of the pool's own
 * tasks it returns -EDEADLK (that task itself keeps the pool busy).
 */
RIPEN_API int ripen_pool_wait_idle(struct ripen_pool *pool, int64_t timeout_ns);

/*
 * Close the pool to new submits (they get -ESHUTDOWN), then either run
 * (DRAIN) or cancel (CANCEL) everything that was accepted, wait for running
 * tasks to return and join the workers. A paused pool is resumed to do so.
 * During a DRAIN, tasks already running may still submit children (they run
 * before shutdown returns); during a CANCEL they get -ESHUTDOWN. In both
 * modes, delayed tasks not yet due are cancelled, periodic ones are not
 * re-armed, and new delayed tasks (children too) get -ESHUTDOWN.
 * Returns 0; -EALREADY if the pool was already shut down; -EINVAL for a bad
 * `how`; -EDEADLK when called from inside one of the pool's tasks (nothing
 * is done then).
 */
RIPEN_API int ripen_pool_shutdown(struct ripen_pool *pool, enum ripen_shutdown how);

/*
 * Shut down with RIPEN_SHUTDOWN_DRAIN unless already shut down, join and
 * free. Task handles still held stay valid (every ripen_task_* call works on
 * them, before, during or after destroy; the last release frees what is
 * left). Other calls on the pool itself must not race destroy. Must not be
 * called from one of the pool's own tasks (aborts). NULL is a no-op.
 */
RIPEN_API void ripen_pool_destroy(struct ripen_pool *pool);

/* Counters, summed over the workers. Each is exact once the pool is idle;
 * while it runs they are a consistent-enough snapshot for monitoring. */
struct ripen_pool_stats {
	size_t size;		/* sizeof(struct ripen_pool_stats), set by caller */
	uint64_t submitted RIPEN_DEFAULT(0); /* accepted by ripen_submit() */
	uint64_t rejected RIPEN_DEFAULT(0); /* refused with -ESHUTDOWN (delayed ones too) */
	uint64_t run RIPEN_DEFAULT(0); /* started (and so finished or still running) */
	uint64_t cancelled RIPEN_DEFAULT(0); /* by ripen_task_cancel() or a CANCEL shutdown */
	uint64_t steals RIPEN_DEFAULT(0); /* successful steals from a peer's heap */
	uint64_t stolen_tasks RIPEN_DEFAULT(0); /* tasks moved by those steals */
	uint64_t inbox_steals RIPEN_DEFAULT(0); /* tasks taken from a peer's inbox */
	uint64_t stale_dropped RIPEN_DEFAULT(0); /* heap entries found stale when they surfaced */
	uint64_t parks RIPEN_DEFAULT(0); /* times a worker went to sleep */
	uint64_t inline_runs RIPEN_DEFAULT(0); /* queued tasks run inline by ripen_task_wait() */
	uint64_t delayed RIPEN_DEFAULT(0); /* waiting for their release time right now */
	uint64_t released RIPEN_DEFAULT(0); /* releases of delayed and periodic tasks */
	uint64_t rearm_failed RIPEN_DEFAULT(0); /* periodic tasks ended early: no memory to re-arm */
	uint64_t reprioritized RIPEN_DEFAULT(0); /* successful ripen_task_reprioritize() calls */
	uint64_t rekeys RIPEN_DEFAULT(0); /* heaps re-keyed (policy swap or re-score) */
	uint64_t rekeyed_entries RIPEN_DEFAULT(0); /* entries those re-keys touched */
	uint64_t rekey_ns RIPEN_DEFAULT(0); /* time those re-keys took, summed */
	uint64_t bad_scores RIPEN_DEFAULT(0); /* NaN/inf scores from custom policies */
	uint64_t rebalances RIPEN_DEFAULT(0); /* rebalancer periods */
	uint64_t merged RIPEN_DEFAULT(0); /* entries the rebalancer merged and dealt out */
	uint64_t rescued RIPEN_DEFAULT(0); /* entries moved off a worker stuck in a long task */
	/* where a worker's time goes when it is not running tasks: */
	uint64_t peer_looks RIPEN_DEFAULT(0); /* a worker compared its best with a peer's (p2c) */
	uint64_t steal_busy RIPEN_DEFAULT(0); /* a steal found the peer's heap locked and gave up */
	uint64_t lock_waits RIPEN_DEFAULT(0); /* an owner found its own heap locked by a thief */
	uint64_t lock_yields RIPEN_DEFAULT(0); /* ... and yielded the CPU waiting (the thief was off it) */
	/* a worker stopped running its own worse tasks because a peer with
	 * better ones kept its heap locked through 32 of its pops (the holder
	 * was off its CPU), and waited for that hold to end */
	uint64_t stall_waits RIPEN_DEFAULT(0);
	uint64_t stall_yields RIPEN_DEFAULT(0); /* ... yielding the CPU while it waited */
};
#define RIPEN_POOL_STATS_INIT RIPEN_INIT_SIZE_(struct ripen_pool_stats)
RIPEN_API int ripen_pool_stats(struct ripen_pool *pool, struct ripen_pool_stats *st);

/* Number of worker threads (never fails for a valid pool; 0 for NULL). */
RIPEN_API unsigned ripen_pool_workers(const struct ripen_pool *pool);

/* Index of the calling worker thread of `pool` (0..workers-1), or -1 when
 * the caller is not one of its workers. */
RIPEN_API int ripen_pool_current_worker(const struct ripen_pool *pool);

/* ---------------------------------------------------------------- tasks */

struct ripen_task_view;

/* Next release time (ripen_now_ns clock) of a task with a trigger, from its
 * view (pool_ctx included), or 0 to stop. Called on a worker after each run,
 * inside an RCU read-side section: ripen_pool_set_policy, _set_context and
 * _shutdown called from it return -EDEADLK (they would wait for a grace
 * period that cannot end). */
typedef uint64_t ripen_trigger_fn(const struct ripen_task_view *t);

enum ripen_task_state {
	RIPEN_TASK_QUEUED = 0,
	RIPEN_TASK_RUNNING = 1,
	RIPEN_TASK_DONE = 2,
	RIPEN_TASK_CANCELLED = 3,
};

/* A completion queue for event loops (ripen_cq_create, below). */
struct ripen_cq;

struct ripen_task_opts {
	size_t size;		/* sizeof(struct ripen_task_opts) */
	double base RIPEN_DEFAULT(0);	/* score under the default policy: higher first; finite */
	uint32_t class_id RIPEN_DEFAULT(0); /* business class, for policies and metrics */
	uint32_t inbox RIPEN_DEFAULT(0); /* 0: any worker; k: worker (k - 1) mod workers
				 * receives it (affinity; the others may still steal it) */
	uint64_t not_before_ns RIPEN_DEFAULT(0); /* absolute, ripen_now_ns clock: never start earlier
				 * (UINT64_MAX: not until cancelled, i.e. never) */
	uint64_t deadline_ns RIPEN_DEFAULT(0); /* for EDF and the task view; 0 = none */
	uint64_t interval_ns RIPEN_DEFAULT(0); /* periodic: run again every interval, measured from
				 * the previous release (no drift; missed releases are
				 * skipped, not bunched), until cancelled. A release
				 * time past the clock's range saturates to UINT64_MAX:
				 * the task then waits, queued, until cancelled */
	ripen_trigger_fn *trigger RIPEN_DEFAULT(nullptr); /* after each run: next release, or 0 to
				 * stop (exclusive with interval_ns) */
	/*
	 * Completion without a waiter (plain tasks only: a delayed, periodic
	 * or triggered task that sets either gets -EINVAL). `done`, when set, is called once
	 * with the task's arg and its final state (RIPEN_TASK_DONE or
	 * RIPEN_TASK_CANCELLED) on the thread that finished or cancelled it:
	 * the worker right after fn returned, a ripen_task_wait that ran it
	 * inline, or the thread whose ripen_task_cancel (or CANCEL shutdown)
	 * cancelled it. `cq`, when set, receives the task's handle after that
	 * (ripen_cq_pop), which the popper releases. Both come after the final
	 * state is set, so a ripen_task_wait may return before them, and
	 * before the task counts as finished, so ripen_pool_wait_idle and
	 * ripen_pool_shutdown return after them. Everything the task (and the
	 * done callback) wrote is visible to whoever pops its handle.
	 */
	void (*done)(void *arg, enum ripen_task_state state) RIPEN_DEFAULT(nullptr);
	struct ripen_cq *cq RIPEN_DEFAULT(nullptr);
};
#define RIPEN_TASK_OPTS_INIT RIPEN_INIT_SIZE_(struct ripen_task_opts)

typedef void ripen_fn(void *arg);

/*
 * Queue fn(arg). opts NULL = base 0, class 0. With out non-NULL the caller
 * gets a handle it must give back with ripen_task_release(); with out NULL
 * the task is detached. Equal scores run in submit order on one worker;
 * across workers the order is relaxed (see the README's rank error).
 * -EINVAL: pool or fn NULL, base NaN or infinite, unknown opts->size.
 * -ESHUTDOWN: the pool is shutting down; the task is not run, nothing leaks.
 * -EBUSY: a RIPEN_WATCH_SHED watcher sheds the task's class right now (the
 * task is counted as shed in its class's stats). -ENOMEM. On any error *out
 * is set to NULL.
 */
RIPEN_API int ripen_submit(struct ripen_pool *pool, ripen_fn *fn, void *arg,
			   const struct ripen_task_opts *opts,
			   struct ripen_task **out);

/* 0: the task will never run (it is now CANCELLED). -EBUSY: it is running.
 * -EALREADY: it is done or was cancelled before. -EINVAL: t NULL. */
RIPEN_API int ripen_task_cancel(struct ripen_task *t);

/*
 * Wait until the task is done or cancelled: 0, or -ETIMEDOUT. timeout_ns < 0
 * waits forever, 0 polls. Called from inside a task of the same pool with
 * timeout_ns < 0, a target that has not started yet is run inline by the
 * waiter (so a fork-join pattern cannot deadlock the pool); a delayed,
 * periodic or triggered target is run inline at each release time until it
 * ends; a running target is waited for. Such waits deadlock only if they
 * form a cycle (A waits B waits A). With a timeout >= 0 nothing is run
 * inline (it could overrun the timeout), so on a pool whose every worker
 * waits, such a wait times out. -EINVAL: t NULL. -EDEADLK: called from a
 * score function.
 */
RIPEN_API int ripen_task_wait(struct ripen_task *t, int64_t timeout_ns);

/* The task's current state (a snapshot; it may change right after). */
RIPEN_API enum ripen_task_state ripen_task_state(const struct ripen_task *t);

/* The arg the task was submitted with (NULL for NULL): what an event loop
 * that pops a handle from a completion queue needs to find its request. */
RIPEN_API void *ripen_task_arg(const struct ripen_task *t);

/* Drop the handle; the task still runs. The handle must not be used after.
 * NULL is a no-op. Never fails. */
RIPEN_API void ripen_task_release(struct ripen_task *t);

/*
 * Give a queued task a new base. Lazy: the task's version is bumped and a
 * fresh entry queued; the old entry is dropped when it surfaces. 0; -EINVAL
 * (t NULL, NaN or infinite base); -EALREADY once started, done or cancelled,
 * also when that happened during the call (a periodic task between runs is
 * queued, and can be re-prioritised); -EDEADLK from a score function.
 */
RIPEN_API int ripen_task_reprioritize(struct ripen_task *t, double new_base);

/* ------------------------------------------------------------- policies */

/* What a policy knows about a queued task. */
struct ripen_task_view {
	double base;
	uint32_t class_id;
	uint64_t submit_ns;	/* ripen_now_ns clock */
	uint64_t deadline_ns;	/* 0 = none */
	void *arg;		/* the task's argument */
	void *pool_ctx;		/* the context last published on the pool */
};

/* Score of a queued task at now_ns: higher runs first. NaN and +-inf are
 * treated as the lowest score and counted (stats.bad_scores); such tasks
 * still run, after every other, on any worker. Called on the pool's threads
 * with a worker's heap lock held, inside an RCU read-side section: it must
 * be quick and must not block. It must not call back into a pool: there
 * ripen_submit, ripen_task_wait, ripen_task_reprioritize, ripen_pool_resume,
 * _wait_idle, _shutdown, _set_policy and _set_context return -EDEADLK
 * (ripen_pool_destroy aborts). */
typedef double ripen_score_fn(const struct ripen_task_view *t, uint64_t now_ns,
			      void *policy_ctx);

#define RIPEN_POLICY_TIME_VARYING 1u	/* the order of two queued tasks can change over time */

/*
 * Constructors return NULL on bad parameters (tau not positive and finite,
 * NULL fn, n = 0, NULL w or inner) or without memory. A policy handed to a
 * constructor (inner), to ripen_pool_create or to ripen_pool_set_policy is
 * owned by the callee, even when the call fails.
 */
RIPEN_API struct ripen_policy *ripen_policy_fifo(void);		/* -submit_ns */
RIPEN_API struct ripen_policy *ripen_policy_static(void);		/* base (the default) */
RIPEN_API struct ripen_policy *ripen_policy_linear_aging(double tau_s); /* base * (1 + wait/tau) */
RIPEN_API struct ripen_policy *ripen_policy_additive_aging(double tau_s); /* base + wait/tau: key once */
RIPEN_API struct ripen_policy *ripen_policy_edf(void);		/* earliest deadline_ns first; none last */
/* The class's weight multiplies the base before `inner` scores it; classes
 * at or beyond n weigh 1. Weights must be finite. */
RIPEN_API struct ripen_policy *ripen_policy_class_weights(const double *w, size_t n,
							  struct ripen_policy *inner);
/* The class's weight multiplies the score `inner` gives (static, linear or
 * additive aging, or custom; other inners: NULL): w * (base + wait/tau)
 * over additive aging, where the weight also scales the aging rate (a
 * time-varying order); the same as class weights over static and linear.
 * Classes at or beyond n weigh 1; weights must be finite. */
RIPEN_API struct ripen_policy *ripen_policy_class_scaled(const double *w, size_t n,
							 struct ripen_policy *inner);
RIPEN_API struct ripen_policy *ripen_policy_custom(ripen_score_fn *fn, void *policy_ctx,
						   unsigned flags, void (*ctx_free)(void *));
/* Free a policy never handed to a pool. NULL is a no-op. */
RIPEN_API void ripen_policy_free(struct ripen_policy *p);

/* Swap the pool's policy (the pool takes ownership, even on error): queued
 * work is re-keyed, the new order holds from each worker's next dispatch.
 * The old policy is freed after an RCU grace period; passing the pool's
 * current policy again is a no-op (0). -EINVAL: NULL. -EDEADLK: called from
 * a score function or a trigger. */
RIPEN_API int ripen_pool_set_policy(struct ripen_pool *pool, struct ripen_policy *p);
/* Publish a context for policies and triggers (task view's pool_ctx); the
 * previous one is passed to its ctx_free after a grace period. */
RIPEN_API int ripen_pool_set_context(struct ripen_pool *pool, void *ctx,
				     void (*ctx_free)(void *));
/* The clock of submit_ns, deadlines and not_before: CLOCK_MONOTONIC in ns. */
RIPEN_API uint64_t ripen_now_ns(void);

/* -------------------------------------------------------------- metrics */

/*
 * Per-class recording (runtime/metrics.c has the design): for every class,
 * counts of tasks submitted, started, cancelled, rejected and shed, and two
 * log-linear histograms: wait (submit, or release for delayed and periodic
 * tasks, to start) and run (start to return), 8 sub-buckets per power of
 * two: at most 12.5% relative error from 512 ns to 2.4 hours (the top
 * bucket is open above). Classes 0..RIPEN_MAX_CLASSES-1 are kept apart;
 * larger ids share one series, labelled "other" (never an error).
 */
#define RIPEN_MAX_CLASSES 64u

struct ripen_class_stats {
	size_t size;		/* sizeof(struct ripen_class_stats), set by caller */
	uint64_t submitted RIPEN_DEFAULT(0); /* accepted (a delayed task at its release;
				 * each release of a periodic one counts) */
	uint64_t started RIPEN_DEFAULT(0);
	uint64_t cancelled RIPEN_DEFAULT(0);
	uint64_t rejected RIPEN_DEFAULT(0); /* -ESHUTDOWN */
	uint64_t shed RIPEN_DEFAULT(0);	/* -EBUSY from a RIPEN_WATCH_SHED watcher */
	uint64_t queued RIPEN_DEFAULT(0); /* submitted - started - cancelled, now */
	/* seconds; 0 while nothing was recorded (or with metrics_off).
	 * Quantiles are bucket midpoints (within 6.25%), clamped to the max;
	 * max and mean are exact */
	double wait_p50_s RIPEN_DEFAULT(0), wait_p95_s RIPEN_DEFAULT(0),
		wait_p99_s RIPEN_DEFAULT(0), wait_max_s RIPEN_DEFAULT(0),
		wait_mean_s RIPEN_DEFAULT(0);
	double run_p50_s RIPEN_DEFAULT(0), run_p95_s RIPEN_DEFAULT(0),
		run_p99_s RIPEN_DEFAULT(0), run_max_s RIPEN_DEFAULT(0),
		run_mean_s RIPEN_DEFAULT(0);
};
#define RIPEN_CLASS_STATS_INIT RIPEN_INIT_SIZE_(struct ripen_class_stats)

/* Snapshot of one class since the pool was created (class_id >=
 * RIPEN_MAX_CLASSES: the shared "other" series). Exact once the pool is
 * quiet. -EINVAL: pool or st NULL, st->size too small. */
RIPEN_API int ripen_pool_class_stats(struct ripen_pool *pool, uint32_t class_id,
				     struct ripen_class_stats *st);

/* Name a class in metric labels (copied; 1..127 bytes; escaped on output).
 * NULL drops the name: the label is the class's number again. -EINVAL:
 * class_id >= RIPEN_MAX_CLASSES, an empty or too long name. -EEXIST: another
 * class has that label already ("other" and other classes' numbers
 * included). */
RIPEN_API int ripen_pool_set_class_name(struct ripen_pool *pool, uint32_t class_id,
					const char *name);

/* Add `le` edges (seconds, finite, > 0) to the exported histograms' short
 * list; the default list stays. At most 16 added over the pool's life
 * (-ENOSPC); duplicates are ignored. An edge is counted from the fine
 * buckets: le=E counts the samples below the lower bound of the fine bucket
 * that holds E, which lies within 12.5% below E (samples in between count
 * at the next edge up): an SLO read off an edge is never overstated. */
RIPEN_API int ripen_metrics_add_edges(struct ripen_pool *pool, const double *le_s, size_t n);

/* Write the pool's metrics in the Prometheus text format 0.0.4: 0, or -EIO
 * when the stream fails, -EINVAL for NULL arguments. Any thread, not from a
 * score function (-EDEADLK). Families: ripen_task_wait_seconds and
 * ripen_task_run_seconds (histograms, label class), ripen_tasks_*_total
 * (per class), ripen_tasks_queued, pool-wide counters and gauges; every
 * series carries pool="<opts.name>". A class's series appear once it has a
 * name or any count; class 0 and "other" are always there (so that rate()
 * sees a class's first tasks, name the classes you use before they run). */
RIPEN_API int ripen_metrics_write(struct ripen_pool *pool, FILE *out);

/* ---------------------------------------------------------------- trace */

/*
 * Record what the pool does into a file (format: ripen-trace.h; for
 * tools/ripen-replay): one record per task run (ready, start and end
 * times, class, base, the score it was keyed with, the worker, whether it
 * was stolen) and per cancel. Workers write into rings of their own and a
 * writer thread drains them; when the writer falls behind, records are
 * dropped and counted in the file's trailer, never waited for.
 * -EINVAL: NULL pool or path. -EALREADY: a trace already runs. -ESHUTDOWN:
 * the pool is shutting down. -ENOMEM, -EAGAIN, or -errno of opening the
 * file. -EDEADLK from a score function or a trigger.
 */
RIPEN_API int ripen_pool_trace_start(struct ripen_pool *pool, const char *path);
/* Stop, write the trailer and close the file. A trace still running when
 * the pool is destroyed is stopped then. -EALREADY: no trace runs. -EIO:
 * a write failed (the file is incomplete). -EDEADLK as above. */
RIPEN_API int ripen_pool_trace_stop(struct ripen_pool *pool);

/* ------------------------------------------------------------- watchers */

enum ripen_watch_kind {
	RIPEN_WATCH_WAIT_MEAN = 0,	/* mean wait of the class's starts in the window, s */
	RIPEN_WATCH_WAIT_QUANTILE = 1,	/* `quantile` of those waits, s */
	RIPEN_WATCH_SHARE_RISE = 2,	/* its share of all starts in this window against
					 * the previous one, as a relative rise (0.4 = +40%) */
	RIPEN_WATCH_QUEUED = 3,		/* its tasks queued now */
	RIPEN_WATCH_ADAPT = 4,		/* events of ripen_pool_adapt's controller (not a rule) */
};

enum ripen_watch_action {
	RIPEN_WATCH_NOTIFY = 0,		/* the callback only */
	RIPEN_WATCH_SHED = 1,		/* while firing, submits of target_class get -EBUSY
					 * (counted as shed) */
	RIPEN_WATCH_DOWNGRADE = 2,	/* while firing, target_class's weight in the pool's
					 * class-weight policy is multiplied by factor */
};

struct ripen_watch_event {
	uint32_t id;			/* the watcher's id */
	uint32_t class_id;
	enum ripen_watch_kind kind;
	double value;			/* what was measured */
	double threshold;
	uint64_t now_ns;		/* ripen_now_ns clock */
	bool firing;			/* true once when it starts holding, false once when it clears */
};

/* Runs on the pool's rebalancer thread, outside every RCU read-side
 * section: it may submit, cancel, re-prioritise, swap policies and
 * contexts, and add or remove watchers. It must return quickly (it delays
 * timers and re-scoring) and must not wait: ripen_task_wait,
 * ripen_pool_wait_idle and ripen_pool_shutdown return -EDEADLK there, and
 * ripen_pool_destroy aborts. */
typedef void ripen_watch_fn(struct ripen_pool *pool, const struct ripen_watch_event *ev,
			    void *arg);

struct ripen_watch_opts {
	size_t size;			/* sizeof(struct ripen_watch_opts) */
	enum ripen_watch_kind kind RIPEN_DEFAULT(RIPEN_WATCH_WAIT_MEAN);
	uint32_t class_id RIPEN_DEFAULT(0); /* the class measured (>= RIPEN_MAX_CLASSES: "other") */
	double quantile RIPEN_DEFAULT(0); /* RIPEN_WATCH_WAIT_QUANTILE: in (0, 1) */
	double threshold RIPEN_DEFAULT(0); /* fires when the value rises above it */
	/* clears when the value is at or below threshold * (1 - hysteresis)
	 * and it has fired for at least one window; 0 = 0.1 */
	double hysteresis RIPEN_DEFAULT(0);
	uint64_t window_ns RIPEN_DEFAULT(0); /* measured over the last 1 to 1.25 windows;
				 * evaluated every min(window/4, 100 ms) */
	ripen_watch_fn *fn RIPEN_DEFAULT(nullptr); /* may be NULL with an action */
	void *arg RIPEN_DEFAULT(nullptr);
	enum ripen_watch_action action RIPEN_DEFAULT(RIPEN_WATCH_NOTIFY);
	uint32_t target_class RIPEN_DEFAULT(0); /* acted on by SHED and DOWNGRADE */
	double factor RIPEN_DEFAULT(0);	/* DOWNGRADE: finite, > 0 */
};
#define RIPEN_WATCH_OPTS_INIT RIPEN_INIT_SIZE_(struct ripen_watch_opts)
#define RIPEN_MAX_WATCHES 64u

/*
 * Add a watcher; its id goes to *id. -EINVAL: NULL pool, opts or id, an
 * unknown kind or action, a NaN or infinite threshold, a zero window, a
 * quantile outside (0, 1), a bad factor or hysteresis, a NULL fn with
 * RIPEN_WATCH_NOTIFY. -ENOTSUP: the pool has no rebalancer
 * (RIPEN_REBALANCE_OFF), or a wait kind on a pool with metrics_off.
 * -ENOSPC: RIPEN_MAX_WATCHES already. -ESHUTDOWN, -ENOMEM.
 * Any thread, also while the pool runs at full load.
 */
RIPEN_API int ripen_pool_watch(struct ripen_pool *pool, const struct ripen_watch_opts *o,
			       uint32_t *id);
/* Remove a watcher; its action, if in force, is undone. When it returns,
 * the callback is not running and will not run again (except when called
 * from that callback). -ENOENT: no such watcher. */
RIPEN_API int ripen_pool_unwatch(struct ripen_pool *pool, uint32_t id);

/* --------------------------------------------------- adaptive control */

/*
 * Per-class objectives on the wait, met by a controller that tunes the
 * pool's policy on its own (runtime/adapt.c has the law): "class 1: p95 of
 * the wait <= 2 ms". ripen_pool_adapt installs a class-weighted linear
 * aging policy, score = w[class] * base * (1 + wait / tau) (or, with
 * opts.aging = RIPEN_AGING_ADDITIVE, w[class] * (base + wait / tau)), and then, every
 * period, on the rebalancer thread, reads each objective's quantile over
 * the last window and moves the weights and tau by bounded steps: only
 * the most important missing class gains, by (1 + step); classes met with
 * room give back (1 + step)^2; tau rises fast when a class other than the
 * least important misses and falls slowly when the least important does;
 * everything is clamped. When the objectives cannot all be met (some
 * objective missed `patience` periods in a row while the weights could
 * not help it), it gives up the least important one (its class drops below
 * all others), then the next, never the first; then it sheds the least
 * important given-up class that allows it (its submits get -EBUSY,
 * counted as shed); and it takes these back in the reverse order once the
 * objectives are met again. Each change of that state is an event for
 * `fn` (kind RIPEN_WATCH_ADAPT, firing = infeasible); the state and the
 * weights are in ripen_metrics_write (ripen_adaptive_*). A class that has
 * tasks queued but none started in a window counts as missing.
 */
/* The aging the controller tunes. LINEAR (the default): score =
 * w[class] * base * (1 + wait / tau); a task of base 0 never ages.
 * ADDITIVE: score = w[class] * (base + wait / tau)
 * (ripen_policy_class_scaled over additive aging): every task ages, at a
 * rate its class's weight scales. */
enum ripen_aging {
	RIPEN_AGING_LINEAR = 0,
	RIPEN_AGING_ADDITIVE = 1,
};

struct ripen_objective {
	uint32_t class_id;	/* < RIPEN_MAX_CLASSES */
	double quantile;	/* in (0, 1) */
	double target_s;	/* > 0, finite */
	bool may_shed;		/* shedding this class is allowed as a last resort */
};

struct ripen_adaptive_opts {
	size_t size;		/* sizeof(struct ripen_adaptive_opts) */
	const struct ripen_objective *objectives RIPEN_DEFAULT(nullptr); /* most important first */
	size_t n RIPEN_DEFAULT(0);	/* 1..16, one per class */
	uint64_t period_ns RIPEN_DEFAULT(0);	/* 0 = 500 ms; at least 100 us */
	unsigned window_periods RIPEN_DEFAULT(0); /* the measurement spans this many; 0 = 4 */
	double tau0_s RIPEN_DEFAULT(0), tau_min_s RIPEN_DEFAULT(0), tau_max_s RIPEN_DEFAULT(0);
				/* 0 = 10 (into the clamp), 0.01, 100 s */
	double step RIPEN_DEFAULT(0);	/* 0 = 0.1 */
	double band RIPEN_DEFAULT(0);	/* met with room at <= (1 - band) x target; 0 = 0.5 */
	unsigned patience RIPEN_DEFAULT(0); /* periods; 0 = 10 */
	double w_min RIPEN_DEFAULT(0);	/* least weight of a pursued class; 0 = 1/64 */
	ripen_watch_fn *fn RIPEN_DEFAULT(nullptr); /* infeasibility events; NULL = none */
	void *arg RIPEN_DEFAULT(nullptr);
	unsigned aging RIPEN_DEFAULT(0); /* the form the weights and tau tune: RIPEN_AGING_* */
};
#define RIPEN_ADAPTIVE_OPTS_INIT RIPEN_INIT_SIZE_(struct ripen_adaptive_opts)

/*
 * Start the controller (it replaces the pool's policy). -EINVAL: NULL
 * pool or opts, unknown size, no or too many objectives, a bad quantile,
 * target, class (two objectives on one, or >= RIPEN_MAX_CLASSES) or
 * parameter. -EALREADY: a controller runs (or another call is starting
 * one). -ENOTSUP: no rebalancer
 * (RIPEN_REBALANCE_OFF) or metrics_off. -ESHUTDOWN, -ENOMEM. -EDEADLK from
 * a score function or a trigger.
 */
RIPEN_API int ripen_pool_adapt(struct ripen_pool *pool, const struct ripen_adaptive_opts *o);
/* Stop it: its weights and sheds are undone; the policy stays (with the
 * last tau). -EALREADY: none runs; -EDEADLK from a score function or a
 * trigger. When it returns, the controller does not run and `fn` will not
 * be called again (except from that fn). The controller holds still while
 * the pool is paused. */
RIPEN_API int ripen_pool_adapt_stop(struct ripen_pool *pool);

/* ------------------------------------------------- completion queues */

/*
 * A queue of finished tasks' handles for an event-loop thread, with an
 * eventfd (ripen_cq_fd) that epoll, libuv or libevent can poll: it is
 * readable while completions wait. Workers push handles (wait-free) and
 * write the eventfd once per batch: only when the queue was marked empty.
 * The loop pops until -EAGAIN, which re-arms the eventfd. Any number of
 * pools and tasks may share a queue; destroy it after the last task that
 * names it has finished (its handles still queued are released).
 * create: 0, -EINVAL (NULL out), -ENOMEM, or the eventfd's -errno.
 */
RIPEN_API int ripen_cq_create(struct ripen_cq **out);
/* The eventfd (non-blocking, close-on-exec), or -EINVAL for NULL. Owned by
 * the queue: do not close it. */
RIPEN_API int ripen_cq_fd(const struct ripen_cq *cq);
/* Pop one finished task's handle into *out (release it with
 * ripen_task_release; ripen_task_state tells DONE from CANCELLED): 0;
 * -EAGAIN when empty (the eventfd is then drained: it becomes readable
 * again at the next push); -EINVAL. Never waits for a completion (it may
 * wait out a concurrent push's linking of its node, or another popper).
 * Any thread. */
RIPEN_API int ripen_cq_pop(struct ripen_cq *cq, struct ripen_task **out);
RIPEN_API void ripen_cq_destroy(struct ripen_cq *cq);

/* Text for a code returned by this library (0 or negative errno). Never NULL. */
RIPEN_API const char *ripen_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* RIPEN_H */
