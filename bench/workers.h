// The worker counts every sweep uses: 1, 2, 4, 8, 16, stopping at the
// machine's hardware threads (but always reaching 2).
#pragma once

#include <benchmark/benchmark.h>

#include <thread>

inline void WorkerCounts(benchmark::internal::Benchmark *b)
{
	unsigned max = std::thread::hardware_concurrency();

	for (unsigned w = 1; w <= 16; w *= 2) {
		b->Arg(w);
		if (w >= max && w >= 2)
			break;
	}
}
