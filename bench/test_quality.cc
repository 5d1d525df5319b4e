// quality::Replay against a brute-force count on random small runs with
// tied priorities and interleaved submits and starts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "quality.h"

int main()
{
	std::mt19937_64 rng(99);
	int failures = 0, checks = 0;
	for (int round = 0; round < 200; round++) {
		size_t n = 1 + rng() % 60;
		// 2n distinct stamps, dealt two per task: the smaller is the submit
		std::vector<uint64_t> stamps(2 * n);
		for (size_t i = 0; i < 2 * n; i++)
			stamps[i] = i;
		std::shuffle(stamps.begin(), stamps.end(), rng);
		std::vector<quality::Rec> r(n);
		for (size_t i = 0; i < n; i++) {
			uint64_t a = stamps[2 * i], b = stamps[2 * i + 1];
			r[i] = quality::Rec{(double)(rng() % 8), std::min(a, b), std::max(a, b)};
		}
		quality::Report got = quality::Replay(r.data(), n);
		// brute force over pairs
		double rsum = 0, dsum = 0;
		uint64_t rmax = 0, dmax = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t better = 0, worse = 0;
			for (size_t j = 0; j < n; j++) {
				if (j == i)
					continue;
				if (r[j].prio > r[i].prio && r[j].sub < r[i].start &&
				    r[j].start > r[i].start)
					better++;
				if (r[j].prio < r[i].prio && r[j].start > r[i].sub &&
				    r[j].start < r[i].start)
					worse++;
			}
			rsum += (double)better;
			dsum += (double)worse;
			rmax = better > rmax ? better : rmax;
			dmax = worse > dmax ? worse : dmax;
		}
		checks++;
		if (got.rank_max != rmax || got.delay_max != dmax ||
		    std::fabs(got.rank_mean * (double)n - rsum) > 1e-6 ||
		    std::fabs(got.delay_mean * (double)n - dsum) > 1e-6) {
			failures++;
			fprintf(stderr,
				"round %d: n=%zu rank %g/%lu vs %g/%lu, delay %g/%lu vs %g/%lu\n",
				round, n, got.rank_mean * (double)n, (unsigned long)got.rank_max,
				rsum, (unsigned long)rmax, got.delay_mean * (double)n,
				(unsigned long)got.delay_max, dsum, (unsigned long)dmax);
		}
	}
	printf("%d of %d replays match the brute-force count\n", checks - failures, checks);
	return failures != 0;
}
