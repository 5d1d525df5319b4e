/*
 * Steal buffer: the batch of its best tasks that a worker offers to others.
 * See steal.c for the protocol. The owner fills; any thread (owner included)
 * claims the whole batch with one CAS.
 */
#ifndef RIPEN_STEAL_INTERNAL_H
#define RIPEN_STEAL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "prioq-internal.h"

#ifdef RIPEN_TINY
#define RIPEN_STEAL_BATCH 2u
#else
#define RIPEN_STEAL_BATCH 8u
#endif

struct ripen__sb_slot {
	_Atomic(struct ripen_task *) task;
	_Atomic uint64_t key;
	_Atomic uint32_t version;
};

struct ripen__stealbuf {
	_Atomic uint64_t word;		/* 2 * epoch + full */
	_Atomic uint64_t top_key;	/* best key in the batch, valid while full */
	_Atomic uint64_t pub_top;	/* hint: owner's best key overall, 0 = none */
	_Atomic uint32_t n;		/* entries in the batch */
	_Atomic uint32_t want;		/* a thief asked for a batch */
	struct ripen__sb_slot slot[RIPEN_STEAL_BATCH];
};

/* The owner's private copy of its current batch, for reclaiming it. */
struct ripen__sb_mirror {
	struct ripen__entry e[RIPEN_STEAL_BATCH];
	uint32_t n;
	uint64_t word;			/* the odd word value published with it */
};

void ripen__sb_init(struct ripen__stealbuf *sb, struct ripen__sb_mirror *m);
/* Owner only: is the batch published last still unclaimed? */
bool ripen__sb_own_full(struct ripen__stealbuf *sb, const struct ripen__sb_mirror *m);
/* Owner only, buffer empty: publish n (1..RIPEN_STEAL_BATCH) entries, best first. */
void ripen__sb_fill(struct ripen__stealbuf *sb, struct ripen__sb_mirror *m,
		    const struct ripen__entry *e, uint32_t n);
/* Any thread: try once to take the whole batch. Returns the number of
 * entries written to out (0: empty, or another thread won). Never waits. */
uint32_t ripen__sb_claim(struct ripen__stealbuf *sb, struct ripen__entry *out);
/* Owner only: take back its own unclaimed batch (0 if it was stolen). */
uint32_t ripen__sb_reclaim(struct ripen__stealbuf *sb, struct ripen__sb_mirror *m,
			   struct ripen__entry *out);
/* Any thread: does the buffer hold a batch right now? (hint) */
bool ripen__sb_full_hint(struct ripen__stealbuf *sb);

#endif
