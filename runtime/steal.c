/*
 * Steal buffers: how a worker hands a batch of its best tasks to others
 * without ever waiting on them, and without others ever touching its heap.
 *
 * The idea is the Stealing Multi-Queue's (Postnikova, Koval, Nadiradze,
 * Alistarh, PPoPP 2022): every worker owns a sequential heap and publishes
 * a small buffer of its top tasks; a thief takes the whole buffer at once.
 * The code and protocol below are ours.
 *
 * word = 2 * epoch + full. Epochs only grow (64 bits: no ABA).
 *
 * Fill (owner, buffer empty: word == 2e, observed with acquire):
 *   1. store slots[0..n), n, top_key                  (relaxed)
 *   2. store word = 2e + 1                            (release)
 * Claim (any thread, the owner included):
 *   1. w = load word                                  (acquire) ; if even: empty
 *   2. read n and slots[0..n)                         (relaxed)
 *   3. CAS word: w -> w + 1                           (acq_rel)
 *      success: the slots read in 2 are those published with w, because the
 *      owner writes slots only after it sees an even word, which only this
 *      CAS produced; failure: someone else won, give up (try once).
 *
 * Why the owner's load of an even word is acquire: it synchronises with the
 * claimer's release CAS, so the owner's next slot stores happen after the
 * claimer's slot loads, and the claimer can never read half of the next
 * batch. Slots are atomics so that a claimer's speculative reads of a batch
 * being replaced are not data races (the CAS then fails).
 *
 * Progress: fill is wait-free (owner only); claim is a single CAS, try-once.
 *
 * Memory: each entry in a buffer holds its task's queue reference (see
 * task-internal.h); the claimer inherits it. A claimed task's fields (seq)
 * are read after the acquire CAS, which orders them after their writes.
 *
 * Rejected: Chase-Lev deque (LIFO/FIFO order, not priority); letting
 * thieves lock the owner's heap (the owner would have to wait); stealing
 * single tasks (one CAS per task instead of per batch).
 */
#include "steal-internal.h"

#include "common-internal.h"
#include "task-internal.h"

void ripen__sb_init(struct ripen__stealbuf *sb, struct ripen__sb_mirror *m)
{
	atomic_init(&sb->word, 0);
	atomic_init(&sb->top_key, 0);
	atomic_init(&sb->pub_top, 0);
	atomic_init(&sb->n, 0);
	atomic_init(&sb->want, 0);
	for (unsigned i = 0; i < RIPEN_STEAL_BATCH; i++) {
		atomic_init(&sb->slot[i].task, NULL);
		atomic_init(&sb->slot[i].key, 0);
		atomic_init(&sb->slot[i].version, 0);
	}
	m->n = 0;
	m->word = 0;
}

bool ripen__sb_own_full(struct ripen__stealbuf *sb, const struct ripen__sb_mirror *m)
{
	/* acquire: if a claimer emptied it, pairs with the claimer's CAS so the
	 * owner's next fill is ordered after the claimer's slot reads */
	uint64_t w = atomic_load_explicit(&sb->word, memory_order_acquire);

	return (w & 1) && w == m->word;
}

bool ripen__sb_full_hint(struct ripen__stealbuf *sb)
{
	/* relaxed: a hint for "worth trying"; the claim itself re-reads */
	return atomic_load_explicit(&sb->word, memory_order_relaxed) & 1;
}

void ripen__sb_fill(struct ripen__stealbuf *sb, struct ripen__sb_mirror *m,
		    const struct ripen__entry *e, uint32_t n)
{
	/* acquire: see ripen__sb_own_full */
	uint64_t w = atomic_load_explicit(&sb->word, memory_order_acquire);

	RIPEN_DCHECK(!(w & 1));
	RIPEN_DCHECK(n >= 1 && n <= RIPEN_STEAL_BATCH);
	for (uint32_t i = 0; i < n; i++) {
		/* relaxed: published by the release store of word below */
		atomic_store_explicit(&sb->slot[i].task, e[i].task, memory_order_relaxed);
		atomic_store_explicit(&sb->slot[i].key, e[i].key, memory_order_relaxed);
		atomic_store_explicit(&sb->slot[i].version, e[i].version, memory_order_relaxed);
		m->e[i] = e[i];
	}
	/* relaxed: published by the release store of word below */
	atomic_store_explicit(&sb->n, n, memory_order_relaxed);
	atomic_store_explicit(&sb->top_key, e[0].key, memory_order_relaxed);
	m->n = n;
	m->word = w + 1;
	/* release: publish slots and n; pairs with the acquire load in ripen__sb_claim */
	atomic_store_explicit(&sb->word, w + 1, memory_order_release);
}

uint32_t ripen__sb_claim(struct ripen__stealbuf *sb, struct ripen__entry *out)
{
	/* acquire: pairs with the release store in ripen__sb_fill */
	uint64_t w = atomic_load_explicit(&sb->word, memory_order_acquire);
	uint32_t n;

	if (!(w & 1))
		return 0;
	/* relaxed: validated by the CAS below (a changed word means a new batch) */
	n = atomic_load_explicit(&sb->n, memory_order_relaxed);
	if (n > RIPEN_STEAL_BATCH)
		n = RIPEN_STEAL_BATCH; /* torn read of a newer batch: the CAS will fail */
	for (uint32_t i = 0; i < n; i++) {
		/* relaxed: as above */
		out[i].task = atomic_load_explicit(&sb->slot[i].task, memory_order_relaxed);
		out[i].key = atomic_load_explicit(&sb->slot[i].key, memory_order_relaxed);
		out[i].version = atomic_load_explicit(&sb->slot[i].version, memory_order_relaxed);
	}
	/* acq_rel: acquire the batch (success); release our slot reads so the
	 * owner's acquire in ripen__sb_own_full orders its next fill after them */
	if (!atomic_compare_exchange_strong_explicit(&sb->word, &w, w + 1,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		ripen__task_check(out[i].task);
		out[i].seq = out[i].task->seq;
		out[i].pad_ = 0;
	}
	return n;
}

uint32_t ripen__sb_reclaim(struct ripen__stealbuf *sb, struct ripen__sb_mirror *m,
			   struct ripen__entry *out)
{
	uint64_t w = m->word;

	if (!(w & 1))
		return 0;
	/* acq_rel: as in ripen__sb_claim; the owner needs no slot reads, its
	 * mirror holds the batch */
	if (!atomic_compare_exchange_strong_explicit(&sb->word, &w, w + 1,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return 0;
	for (uint32_t i = 0; i < m->n; i++)
		out[i] = m->e[i];
	return m->n;
}
