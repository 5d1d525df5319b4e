/*
 * Inboxes (inbox.c): the enqueue side of each worker's wait-free queue and
 * the requeue protocol; the dequeue side is worker.c's inbox_take.
 */
#ifndef RIPEN_INBOX_INTERNAL_H
#define RIPEN_INBOX_INTERNAL_H

#include "pool-internal.h"

/* Steps S2-S4 of park.c for a task whose in-side count (S1) the caller has
 * made: enqueue into w's inbox, wake whoever should take it. */
void ripen__inbox_enqueue(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t);
/* Enqueue a task into worker w's inbox: a new entry (counted == false: a
 * re-entry of an already counted task) or a release (counted == true). */
void ripen__inbox_push(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t,
		       bool counted);
struct ripen__worker *ripen__pick_target(struct ripen_pool *pool, uint32_t inbox_opt);
/*
 * The requeue protocol, for a task that needs a fresh entry at a new
 * version (re-prioritised, dealt by the rebalancer, released from the timer
 * heap). The caller has bumped t's version (every older entry is stale from
 * then on) and holds a reference for the new entry. If t's node is still
 * linked in an inbox, its drainer keys the new version and the reference is
 * dropped; otherwise the node goes into w's inbox with the reference.
 * `outside`: the caller is not one of the pool's threads nor its
 * rebalancer, so the workers may have stopped; then nothing is queued, the
 * reference is dropped and false returned. true otherwise.
 */
bool ripen__requeue(struct ripen_pool *pool, struct ripen__worker *w, struct ripen_task *t,
		    bool outside);



#endif
