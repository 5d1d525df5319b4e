/*
 * ripen-trace.h: the binary format of the files ripen_pool_trace_start()
 * writes (runtime/trace.c), for readers such as tools/ripen-replay.
 *
 * A file is a header, then records, then (after ripen_pool_trace_stop) a
 * trailer. Every integer is little-endian, every double IEEE 754 binary64,
 * every struct packed as declared (no padding: sizes are asserted below).
 * A reader checks `magic`, `version`, and uses `header_size` and
 * `record_size` to skip what a newer writer added at the end of either.
 * A file without a trailer was not stopped cleanly (the process died):
 * its whole records are valid and drops are unknown; a partial last record
 * may remain, which ripen-replay refuses ("record N: truncated": cut the
 * file at a record boundary to replay the rest).
 *
 * Times are CLOCK_MONOTONIC nanoseconds (`clock` = 1), the clock of
 * ripen_now_ns(); subtract the header's start_ns for times since the trace
 * began.
 */
#ifndef RIPEN_TRACE_H
#define RIPEN_TRACE_H

#include <stdint.h>

#define RIPEN_TRACE_MAGIC "RIPENTRC"	/* 8 bytes, no NUL */
#define RIPEN_TRACE_END_MAGIC "RIPENEND"
#define RIPEN_TRACE_VERSION 1u
#define RIPEN_TRACE_CLOCK_MONOTONIC 1u

struct ripen_trace_header {
	char magic[8];			/* RIPEN_TRACE_MAGIC */
	uint32_t version;		/* RIPEN_TRACE_VERSION */
	uint32_t header_size;		/* sizeof(struct ripen_trace_header) for version 1 */
	uint32_t record_size;		/* sizeof(struct ripen_trace_record) for version 1 */
	uint32_t clock;			/* RIPEN_TRACE_CLOCK_MONOTONIC */
	uint64_t start_ns;		/* monotonic time at ripen_pool_trace_start */
	uint64_t start_realtime_ns;	/* CLOCK_REALTIME at the same moment */
	uint32_t workers;
	uint32_t flags;			/* 0 */
	uint64_t rebalance_period_ns;	/* 0: no rebalancer */
	char policy[64];		/* the pool's policy when the trace started, as a
					 * ripen-replay --policy SPEC ("static",
					 * "linear:0.02", "weights:1,10:static", "custom");
					 * NUL-padded */
	char pool[64];			/* the pool's name (opts.name), NUL-padded */
};

enum ripen_trace_kind {
	RIPEN_TRACE_RUN = 1,		/* a task ran: ready, start and end are set */
	RIPEN_TRACE_CANCEL = 2,		/* a task was cancelled before it started: ready,
					 * and end = the cancel's time; start = 0 */
	RIPEN_TRACE_ADAPT = 3,		/* a step of ripen_pool_adapt's controller that
					 * changed something, one record per objective:
					 * class_id, ready = the step's time, base = the
					 * class's weight after it, score = tau (s) after it,
					 * stolen = flags (RIPEN_TRACE_ADAPT_*), worker =
					 * 0xffff, start = end = 0. Replay skips these */
};
#define RIPEN_TRACE_ADAPT_GIVEN_UP 1u	/* the class's objective is given up */
#define RIPEN_TRACE_ADAPT_SHED 2u	/* the class is shed */
#define RIPEN_TRACE_ADAPT_INFEASIBLE 4u	/* the objectives cannot all be met */

struct ripen_trace_record {
	uint8_t kind;			/* enum ripen_trace_kind */
	uint8_t stolen;			/* 1: run by a worker that took it from a peer's heap or
					 * inbox (the rebalancer's deals do not count) */
	uint16_t worker;		/* the worker that ran it (or cancelled it; 0xffff: a
					 * thread that is not a worker) */
	uint32_t class_id;		/* as submitted (not folded into "other") */
	uint64_t ready_ns;		/* submit, or release for delayed and periodic tasks */
	uint64_t start_ns;
	uint64_t end_ns;
	double base;			/* the base when it started (after re-prioritisations) */
	double score;			/* the score its heap entry was keyed with, read
					 * back from the key: meaningful under score-based
					 * policies (static, aging, class weights, custom);
					 * under FIFO and EDF, whose keys are the inverted
					 * submit time or deadline, it is not a score. NaN
					 * for a task run inline by ripen_task_wait */
};

struct ripen_trace_trailer {
	char magic[8];			/* RIPEN_TRACE_END_MAGIC */
	uint64_t records;		/* records written */
	uint64_t dropped;		/* records dropped because the writer fell behind */
	uint64_t stop_ns;		/* monotonic time at ripen_pool_trace_stop */
};

#ifndef __cplusplus
_Static_assert(sizeof(struct ripen_trace_header) == 184, "packed header");
_Static_assert(sizeof(struct ripen_trace_record) == 48, "packed record");
_Static_assert(sizeof(struct ripen_trace_trailer) == 32, "packed trailer");
#endif

#endif
