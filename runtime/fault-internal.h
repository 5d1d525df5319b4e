/*
 * Fault injection at named points (test builds: meson -Dfault_injection=true).
 *
 * Each point counts its hits; a test arms a point to fail its n-th hit
 * (ripen__fault_arm) or every hit with probability 1/k (ripen__fault_random).
 * In other builds RIPEN_FAULT() is the constant false and costs nothing.
 * Any thread.
 */
#ifndef RIPEN_FAULT_INTERNAL_H
#define RIPEN_FAULT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common-internal.h"

enum ripen__fault_point {
	RIPEN_FAULT_TASK_ALLOC,		/* ripen_submit: the task */
	RIPEN_FAULT_HEAP_GROW,		/* a worker heap's array */
	RIPEN_FAULT_POOL_ALLOC,		/* ripen_pool_create: pool, workers */
	RIPEN_FAULT_THREAD_CREATE,	/* ripen_pool_create: each worker thread, the rebalancer */
	RIPEN_FAULT_POLICY_ALLOC,	/* policy constructors, ripen_pool_set_context */
	RIPEN_FAULT_NPOINTS
};

/*
 * Random yields at the critical points of the concurrent code (test builds:
 * meson -Dyield_points=true): widen race windows, as liburcu's debug-yield
 * build does. One pass in eight yields (fault.c).
 */
#ifdef RIPEN_YIELD_POINTS
void ripen__yield_point(void);
#define RIPEN_YIELD_POINT() ripen__yield_point()
#else
#define RIPEN_YIELD_POINT() ((void)0)
#endif

/*
 * Named protocol windows: the places between a read of shared task or pool
 * state and the write that depends on it, where another thread's step
 * changes the outcome. Each is a yield point; in fault-injection builds a
 * test can also install a hook that runs there (on whichever thread passes),
 * to hold the window open while it makes the racing step happen: a
 * directed test of one interleaving instead of a soak that hopes for it.
 */
enum ripen__window {
	RIPEN_WIN_REARM,		/* worker.c rearm: state read, not yet written back */
	RIPEN_WIN_REPRIO,		/* task.c reprioritize: seen QUEUED, version not yet bumped */
	RIPEN_WIN_REPRIO_BUMPED,	/* task.c reprioritize: version bumped, node not yet tested */
	RIPEN_WIN_DRAINED,		/* worker.c: own inbox drained into the heap, nothing popped */
	RIPEN_WIN_PARK_ENTRY,		/* park.c: found nothing, not yet announced asleep */
	RIPEN_WIN_PARK,			/* park.c: announced asleep, work not yet rechecked */
	RIPEN_WIN_UNLOCK_GATE,		/* worker.c: heap size published, sleepers not yet read */
	RIPEN_WIN_REKEY_CHUNK,		/* worker.c maybe_rekey: between two chunks */
	RIPEN_WIN_REQUEUE,		/* rebalance.c requeue: entry current, version not yet bumped */
	RIPEN_WIN_TRACE_DRAIN,		/* trace.c writer: about to drain the rings */
	RIPEN_WIN_TRACE_PUT,		/* trace.c: a worker has its ring, the record not yet put */
	RIPEN_WIN_STALL_WAIT,		/* worker.c stall_wait: the peer's lock word not yet read */
	RIPEN_WIN_CLAIM,		/* task-internal.h claim: entry popped, holders not yet counted */
	RIPEN_WIN_NWINDOWS
};
typedef void ripen__window_fn(enum ripen__window win, void *arg);

#ifdef RIPEN_FAULT_INJECTION
void ripen__window(enum ripen__window win);
#define RIPEN_WINDOW(win) ripen__window(win)
#else
#define RIPEN_WINDOW(win) RIPEN_YIELD_POINT()
#endif
/* Install (fn non-NULL) or remove the hook; a no-op without fault injection. */
void ripen__window_hook(ripen__window_fn *fn, void *arg);

#ifdef RIPEN_FAULT_INJECTION
bool ripen__fault_hit(enum ripen__fault_point p);
#define RIPEN_FAULT(p) ripen__unlikely(ripen__fault_hit(p))
#else
#define RIPEN_FAULT(p) false
#endif

/* Test control (present in every build; a no-op without fault injection). */
const char *ripen__fault_name(enum ripen__fault_point p);
void ripen__fault_arm(enum ripen__fault_point p, uint64_t nth);	/* 0 disarms */
void ripen__fault_random(uint32_t one_in, uint64_t seed);	/* 0 disables */
uint64_t ripen__fault_hits(enum ripen__fault_point p);
uint64_t ripen__fault_fired(enum ripen__fault_point p);
void ripen__fault_reset(void);
bool ripen__fault_enabled(void);
/* From now on the recording clock's TSC runs at factor times its rate (1: true). */
void ripen__fault_tsc_rate(double factor);
/* From now on the recording clock's TSC reads `ticks` more (a jump). */
void ripen__fault_tsc_jump(uint64_t ticks);
#if defined(__x86_64__) && defined(RIPEN_FAULT_INJECTION)
/* the TSC as bent by ripen__fault_tsc_rate: the recording clock's reads */
uint64_t ripen__rdtsc_bent(void);
#endif

#endif
