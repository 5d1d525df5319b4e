/*
 * The rebalancer thread (rebalance.c).
 */
#ifndef RIPEN_REBALANCE_INTERNAL_H
#define RIPEN_REBALANCE_INTERNAL_H

#include "pool-internal.h"

int ripen__rebalancer_start(struct ripen_pool *pool);
void ripen__rebalancer_stop(struct ripen_pool *pool);

#endif
