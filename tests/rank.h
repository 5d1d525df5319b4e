/*
 * Rank error, replayed exactly: a Fenwick tree over the tasks' ranks (0 =
 * worst) holds the tasks not yet started; for each start, in start order,
 * count the strictly better ones still there. Shared by test_order and
 * test_policy.
 */
#ifndef RIPEN_TEST_RANK_H
#define RIPEN_TEST_RANK_H

#include <stdint.h>
#include <stdlib.h>

/* rank[id] in 0..n-1 (distinct), started[k] = id of the k-th task to start.
 * Returns the mean; *max_out gets the max. */
static inline double rank_error_replay(const unsigned *rank, const unsigned *started,
				       unsigned n, unsigned *max_out)
{
	int *fw = calloc(n + 1, sizeof(int));
	uint64_t sum = 0;
	unsigned max = 0;

	for (unsigned id = 0; id < n; id++)
		for (unsigned i = rank[id] + 1; i <= n; i += i & -i)
			fw[i]++;
	for (unsigned k = 0; k < n; k++) {
		unsigned r = rank[started[k]];
		int all = 0, upto = 0;

		for (unsigned i = n; i > 0; i -= i & -i)
			all += fw[i];
		for (unsigned i = r + 1; i > 0; i -= i & -i)
			upto += fw[i];
		for (unsigned i = r + 1; i <= n; i += i & -i)
			fw[i]--;
		sum += (unsigned)(all - upto);
		if ((unsigned)(all - upto) > max)
			max = (unsigned)(all - upto);
	}
	free(fw);
	*max_out = max;
	return n ? (double)sum / n : 0;
}

/* A random permutation of 0..n-1 (the tasks' ranks, used as bases). */
static inline unsigned *random_ranks(unsigned n, uint64_t seed)
{
	unsigned *rank = malloc(n * sizeof(unsigned));

	for (unsigned i = 0; i < n; i++)
		rank[i] = i;
	for (unsigned i = n - 1; i > 0; i--) {
		seed ^= seed >> 12;
		seed ^= seed << 25;
		seed ^= seed >> 27;
		unsigned j = (unsigned)((seed * 0x2545F4914F6CDD1DULL) % (i + 1)), x = rank[i];

		rank[i] = rank[j];
		rank[j] = x;
	}
	return rank;
}

#endif
