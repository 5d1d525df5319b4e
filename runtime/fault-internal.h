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
 * build does. One in RIPEN_YIELD_ONE_IN passes yields.
 */
#ifdef RIPEN_YIELD_POINTS
void ripen__yield_point(void);
#define RIPEN_YIELD_POINT() ripen__yield_point()
#else
#define RIPEN_YIELD_POINT() ((void)0)
#endif

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

#endif
