// Re-scoring cost: what a worker pays to re-key its heap under a
// time-varying policy (linear aging), at 10k and 1M queued tasks.
//
// A gate task submits N children (they go into its worker's heap), then
// spins past a few rebalance periods, so the next scheduling step re-keys
// all N at once. Reported per iteration: ns per re-keyed entry and the cost
// of one full re-key of the heap (a period's re-score at that size), from
// the pool's rekey_ns / rekeyed_entries counters.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "ripen.h"

namespace {

struct Gate {
	ripen_pool *pool;
	int64_t n;
};

void Nop(void *) {}

void GateFn(void *arg)
{
	auto *g = static_cast<Gate *>(arg);
	for (int64_t i = 0; i < g->n; i++) {
		ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		o.base = 1.0 + (double)(i % 1000);
		if (ripen_submit(g->pool, Nop, nullptr, &o, nullptr) != 0)
			abort();
	}
	auto t0 = std::chrono::steady_clock::now();
	while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(10))
		;
}

void BM_RescoreLinearAging(benchmark::State &state)
{
	double ns_per_entry = 0, full = 0;
	for (auto _ : state) {
		ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
		ripen_pool *pool;
		po.workers = 1;
		po.policy = ripen_policy_linear_aging(1.0);
		if (ripen_pool_create(&po, &pool) != 0)
			abort();
		Gate g{pool, state.range(0)};
		if (ripen_submit(pool, GateFn, &g, nullptr, nullptr) != 0)
			abort();
		ripen_pool_wait_idle(pool, -1);
		struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
		ripen_pool_stats(pool, &st);
		ripen_pool_destroy(pool);
		if (st.rekeyed_entries) {
			ns_per_entry = (double)st.rekey_ns / (double)st.rekeyed_entries;
			full = ns_per_entry * (double)state.range(0);
		}
	}
	state.counters["ns_per_entry"] = ns_per_entry;
	state.counters["full_rekey_ms"] = full / 1e6;
}

} // namespace

BENCHMARK(BM_RescoreLinearAging)->Arg(10000)->Arg(1000000)->Iterations(3)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
