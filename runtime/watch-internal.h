/*
 * Watchers (watch.c): rules on the per-class metrics, evaluated on the
 * rebalancer thread, with built-in actions.
 */
#ifndef RIPEN_WATCH_INTERNAL_H
#define RIPEN_WATCH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "pool-internal.h"

/* The pool's (empty) watcher list: 0 or -ENOMEM (pool creation). */
int ripen__watch_init(struct ripen_pool *pool);
/* Evaluate the watchers that are due at now and deliver their events
 * (rebalancer thread, outside any RCU read-side section). Returns the
 * next time one is due, UINT64_MAX with none. */
uint64_t ripen__watch_tick(struct ripen_pool *pool, uint64_t now);
/* Free every watcher (pool teardown; no thread of the pool is left). */
void ripen__watch_fini(struct ripen_pool *pool);

/* What ripen_metrics_write shows of a watcher. */
struct ripen__watch_info {
	uint32_t id, class_id;
	enum ripen_watch_kind kind;
	bool firing;
	uint64_t firings;
	double value;
};
/* What ripen_metrics_write shows of the controller (ripen_pool_adapt). */
struct ripen__adapt_info {
	size_t n;
	double tau_s;
	bool infeasible;
	uint64_t steps, changes, events;
	struct {
		uint32_t class_id;
		double quantile, target_s, weight, measured_s; /* measured: NaN = none yet */
		bool given_up, shed;
	} obj[16];
};
/* 0 with *out filled, or -ENOENT when no controller runs. Any thread. */
int ripen__adapt_info(struct ripen_pool *pool, struct ripen__adapt_info *out);

/* Copy up to `max` watchers' info; returns how many. Any thread. */
size_t ripen__watch_list(struct ripen_pool *pool, struct ripen__watch_info *out, size_t max);

#endif
