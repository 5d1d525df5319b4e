/*
 * The worker (worker.c): its thread, its run functions, and its heap's lock
 * protocol for the rebalancer.
 */
#ifndef RIPEN_WORKER_INTERNAL_H
#define RIPEN_WORKER_INTERNAL_H

#include "pool-internal.h"

void *ripen__worker_main(void *arg);
void ripen__run_task(struct ripen__worker *w, struct ripen_task *t);
/* Run a claimed timed task (delayed, periodic, triggered): re-arm or
 * finish it. Consumes one reference the caller holds. e: the heap entry it
 * came from (for the trace), NULL for an inline run. */
void ripen__run_timed(struct ripen__worker *w, struct ripen_task *t, const struct ripen__entry *e);
/* Push a task submitted from a task running on w into w's heap (or, if the
 * heap cannot grow, into w's inbox). Owner only. */
void ripen__worker_push_local(struct ripen__worker *w, struct ripen_task *t);


/* worker.c: heap access for the rebalancer (worker.c's lock protocol) */
bool ripen__heap_trylock(struct ripen__worker *v);
void ripen__heap_unlock(struct ripen__worker *v);

#endif
