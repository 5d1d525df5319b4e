/*
 * The trace recorder (trace.c): per-worker rings of run records, drained
 * to a file by a writer thread.
 */
#ifndef RIPEN_TRACE_INTERNAL_H
#define RIPEN_TRACE_INTERNAL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common-internal.h"
#include "ripen-trace.h"

/* A single-producer (the worker), single-consumer (the writer) ring. */
struct ripen__tring {
	alignas(RIPEN_CACHELINE) _Atomic uint64_t head;	/* the writer's: next to read */
	alignas(RIPEN_CACHELINE) _Atomic uint64_t tail;	/* the worker's: next to write */
	_Atomic uint64_t dropped;			/* the worker's: records it could not write */
	uint64_t mask;					/* capacity - 1 */
	struct ripen_trace_record rec[];
};

struct ripen__worker;
struct ripen_pool;

/* Worker w ran a task: put its record (inside an RCU read section, so
 * that ripen_pool_trace_stop can wait for it). Owner only; called only
 * when w->tring was seen non-NULL. */
void ripen__trace_run(struct ripen__worker *w, const struct ripen_trace_record *r);
/* A task was cancelled before it started (any thread). */
void ripen__trace_cancel(struct ripen_pool *pool, uint32_t class_id, uint64_t ready_ns,
			 double base);
/* A step of the adaptive controller changed class_id's weight or tau, or
 * its state (flags: RIPEN_TRACE_ADAPT_*): rebalancer thread, outside any
 * RCU read section. */
void ripen__trace_adapt(struct ripen_pool *pool, uint32_t class_id, uint64_t now_ns,
			double weight, double tau_s, unsigned flags);
/* Pool teardown (no worker left): stop a trace still running. */
void ripen__trace_fini(struct ripen_pool *pool);

#endif
