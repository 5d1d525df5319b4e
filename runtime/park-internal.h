/*
 * Parking and waking (park.c): the Dekker pairs that keep a sleeping pool
 * from missing work, and the one wake decision.
 */
#ifndef RIPEN_PARK_INTERNAL_H
#define RIPEN_PARK_INTERNAL_H

#include "pool-internal.h"

void ripen__park(struct ripen__worker *w);
void ripen__wake_one(struct ripen_pool *pool, uint64_t *rng);
/* The wake decision, after work was made visible with a seq_cst store (an
 * inbox count, a heap size's rise): wake `target` if it is parked (NULL:
 * no target), else one sleeper if any. Every wake-up for new work goes
 * through here; see park.c. */
void ripen__notify(struct ripen_pool *pool, struct ripen__worker *target, uint64_t *rng);
void ripen__wake_all(struct ripen_pool *pool);


/* Wake the rebalancer from its idle sleep (a heap's rise from empty, a
 * resume, a timer, a swap). */
void ripen__rebalancer_poke(struct ripen_pool *pool);

#endif
