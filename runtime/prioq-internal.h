/*
 * The local priority heap of one worker: a 4-ary max-heap of entries.
 *
 * Not thread-safe: every operation runs under the worker's heap lock
 * (worker.c), held by the owner in its scheduling step or by a thief, or
 * the rebalancer, that won the try-lock.
 */
#ifndef RIPEN_PRIOQ_INTERNAL_H
#define RIPEN_PRIOQ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ripen_task;

/*
 * One queued reference to a task. `key` is the score mapped to a totally
 * ordered integer (ripen__score_key), `seq` the task's submit sequence (the
 * FIFO tie-break), `version` the task's version when the entry was made: an
 * entry whose version no longer matches, or whose task is no longer QUEUED,
 * is stale and is dropped when it surfaces. `epoch` marks the owner's
 * re-key pass that computed `key`. 32 bytes: two per cache line.
 */
struct ripen__entry {
	uint64_t key;
	uint64_t seq;
	struct ripen_task *task;
	uint32_t version;
	uint32_t epoch;		/* owner's re-key pass that last keyed it (worker.c) */
};

/* a runs before b: higher key first, then lower seq (earlier submit). */
static inline bool ripen__entry_before(const struct ripen__entry *a,
				       const struct ripen__entry *b)
{
	return a->key > b->key || (a->key == b->key && a->seq < b->seq);
}

/*
 * Key 0 is no entry's: a published best key of 0 means "empty heap"
 * (worker.c's pub_top), and a thief takes entries whose key beats its own
 * best, 0 when it has none. So the lowest key an entry can have is
 * RIPEN_KEY_LOWEST: still runnable, still stealable, after everything else.
 */
#define RIPEN_KEY_LOWEST 1ull

/*
 * Map a score to a key whose unsigned order is the score's numeric order.
 * -0.0 maps like +0.0; NaN maps to RIPEN_KEY_LOWEST, below every number, so
 * a broken score can never break the heap's ordering rule. +inf/-inf order
 * at the ends (-inf maps to 0x000fffffffffffff, far above the lowest key).
 */
static inline uint64_t ripen__score_key(double score)
{
	union { double d; uint64_t u; } v;

	if (score != score)
		return RIPEN_KEY_LOWEST;
	v.d = score == 0.0 ? 0.0 : score;
	return (v.u >> 63) ? ~v.u : v.u | (1ULL << 63);
}

/* The score a key was made from (ripen__score_key's inverse; NaN's key,
 * RIPEN_KEY_LOWEST, reads back as a tiny negative number). */
static inline double ripen__key_score(uint64_t key)
{
	union { double d; uint64_t u; } v;

	v.u = (key >> 63) ? key & ~(1ULL << 63) : ~key;
	return v.d;
}

/*
 * A heap with a FIFO run in front (prioq.c): a[0..hn) is the 4-ary heap,
 * r[] a ring of entries that share one key (rkey) in ascending seq, so
 * they are already in pop order; a pop takes the better of the two fronts.
 * n counts both, and a's capacity always covers n: the run can fall back
 * into the heap without allocating (heapify after a re-key does).
 */
struct ripen__prioq {
	struct ripen__entry *a;
	size_t n;		/* entries in all: hn in the heap, rlen in the run */
	size_t cap;		/* a's capacity, >= n */
	size_t hn;
	struct ripen__entry *r;	/* the run: a ring of rcap entries (a power of two) */
	size_t rhead, rlen, rcap;
	uint64_t rkey;		/* the run's key while rlen > 0 */
};

/* 0 or -ENOMEM. */
int ripen__prioq_init(struct ripen__prioq *q, size_t cap);
void ripen__prioq_fini(struct ripen__prioq *q);
/* Make room for `extra` more entries: 0 or -ENOMEM (nothing changed). */
int ripen__prioq_reserve(struct ripen__prioq *q, size_t extra);
/* 0, or -ENOMEM when the array had to grow and could not (q unchanged). */
int ripen__prioq_push(struct ripen__prioq *q, const struct ripen__entry *e);
/* Remove the best entry into *out; false when empty. */
bool ripen__prioq_pop(struct ripen__prioq *q, struct ripen__entry *out);
/* Restore the order after keys changed in place (through ripen__prioq_at):
 * the run joins the heap, O(n). */
void ripen__prioq_heapify(struct ripen__prioq *q);
/* Check the heap property and the run's order (tests, debug). */
bool ripen__prioq_valid(const struct ripen__prioq *q);

/* The i-th entry in storage order, i < n: for passes over every entry. */
static inline struct ripen__entry *ripen__prioq_at(struct ripen__prioq *q, size_t i)
{
	return i < q->hn ? &q->a[i] : &q->r[(q->rhead + i - q->hn) & (q->rcap - 1)];
}

static inline const struct ripen__entry *ripen__prioq_top(const struct ripen__prioq *q)
{
	const struct ripen__entry *h = q->hn ? &q->a[0] : NULL;

	if (q->rlen == 0)
		return h;
	if (h == NULL || ripen__entry_before(&q->r[q->rhead], h))
		return &q->r[q->rhead];
	return h;
}

#endif
