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
	bool pin_workers RIPEN_DEFAULT(false); /* pin worker i to the i-th CPU this process may use (mod their
				 * count): for servers that dedicate cores; keeps two workers
				 * from time-sharing one CPU, which costs a relaxed scheduler
				 * its order while it lasts */
};
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
 * before shutdown returns); during a CANCEL they get -ESHUTDOWN.
 * Returns 0; -EALREADY if the pool was already shut down; -EINVAL for a bad
 * `how`; -EDEADLK when called from inside one of the pool's tasks (nothing
 * is done then).
 */
RIPEN_API int ripen_pool_shutdown(struct ripen_pool *pool, enum ripen_shutdown how);

/*
 * Shut down with RIPEN_SHUTDOWN_DRAIN unless already shut down, join and
 * free. Task handles still held stay valid (ripen_task_state, _wait,
 * _release work on them). Must not be called from one of the pool's own
 * tasks (aborts). NULL is a no-op.
 */
RIPEN_API void ripen_pool_destroy(struct ripen_pool *pool);

/* Counters, summed over the workers. Each is exact once the pool is idle;
 * while it runs they are a consistent-enough snapshot for monitoring. */
struct ripen_pool_stats {
	size_t size;		/* sizeof(struct ripen_pool_stats), set by caller */
	uint64_t submitted RIPEN_DEFAULT(0); /* accepted by ripen_submit() */
	uint64_t rejected RIPEN_DEFAULT(0); /* refused with -ESHUTDOWN */
	uint64_t run RIPEN_DEFAULT(0); /* started (and so finished or still running) */
	uint64_t cancelled RIPEN_DEFAULT(0); /* by ripen_task_cancel() or a CANCEL shutdown */
	uint64_t steals RIPEN_DEFAULT(0); /* successful steals from a peer's heap */
	uint64_t stolen_tasks RIPEN_DEFAULT(0); /* tasks moved by those steals */
	uint64_t inbox_steals RIPEN_DEFAULT(0); /* tasks taken from a peer's inbox */
	uint64_t stale_dropped RIPEN_DEFAULT(0); /* heap entries found stale when they surfaced */
	uint64_t parks RIPEN_DEFAULT(0); /* times a worker went to sleep */
	uint64_t inline_runs RIPEN_DEFAULT(0); /* queued tasks run inline by ripen_task_wait() */
};
#define RIPEN_POOL_STATS_INIT RIPEN_INIT_SIZE_(struct ripen_pool_stats)
RIPEN_API int ripen_pool_stats(struct ripen_pool *pool, struct ripen_pool_stats *st);

/* Number of worker threads (never fails for a valid pool; 0 for NULL). */
RIPEN_API unsigned ripen_pool_workers(const struct ripen_pool *pool);

/* Index of the calling worker thread of `pool` (0..workers-1), or -1 when
 * the caller is not one of its workers. */
RIPEN_API int ripen_pool_current_worker(const struct ripen_pool *pool);

/* ---------------------------------------------------------------- tasks */

struct ripen_task_opts {
	size_t size;		/* sizeof(struct ripen_task_opts) */
	double base RIPEN_DEFAULT(0);	/* score under the default policy: higher first; finite */
	uint32_t class_id RIPEN_DEFAULT(0); /* business class, for policies and metrics */
};
#define RIPEN_TASK_OPTS_INIT RIPEN_INIT_SIZE_(struct ripen_task_opts)

typedef void ripen_fn(void *arg);

enum ripen_task_state {
	RIPEN_TASK_QUEUED = 0,
	RIPEN_TASK_RUNNING = 1,
	RIPEN_TASK_DONE = 2,
	RIPEN_TASK_CANCELLED = 3,
};

/*
 * Queue fn(arg). opts NULL = base 0, class 0. With out non-NULL the caller
 * gets a handle it must give back with ripen_task_release(); with out NULL
 * the task is detached. Equal scores run in submit order (FIFO).
 * -EINVAL: pool or fn NULL, base NaN or infinite, unknown opts->size.
 * -ESHUTDOWN: the pool is shutting down; the task is not run, nothing leaks.
 * -ENOMEM. On any error *out is set to NULL.
 */
RIPEN_API int ripen_submit(struct ripen_pool *pool, ripen_fn *fn, void *arg,
			   const struct ripen_task_opts *opts,
			   struct ripen_task **out);

/* 0: the task will never run (it is now CANCELLED). -EBUSY: it is running.
 * -EALREADY: it is done or was cancelled before. -EINVAL: t NULL. */
RIPEN_API int ripen_task_cancel(struct ripen_task *t);

/*
 * Wait until the task is done or cancelled: 0, or -ETIMEDOUT. timeout_ns < 0
 * waits forever, 0 polls. Called from inside a task of the same pool, a
 * target that has not started yet is run inline by the waiter (so a
 * fork-join pattern cannot deadlock the pool); a running target is waited
 * for. Waits deadlock only if they form a cycle (A waits B waits A).
 * -EINVAL: t NULL.
 */
RIPEN_API int ripen_task_wait(struct ripen_task *t, int64_t timeout_ns);

/* The task's current state (a snapshot; it may change right after). */
RIPEN_API enum ripen_task_state ripen_task_state(const struct ripen_task *t);

/* Drop the handle; the task still runs. The handle must not be used after.
 * NULL is a no-op. Never fails. */
RIPEN_API void ripen_task_release(struct ripen_task *t);

/* Text for a code returned by this library (0 or negative errno). Never NULL. */
RIPEN_API const char *ripen_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* RIPEN_H */
