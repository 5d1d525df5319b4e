// Latency under load (workload 5): the server's view.
//
// Open-loop Poisson arrivals of two classes, 10% VIP (base 10) and 90%
// normal (base 1); service times heavy-tailed (Pareto, alpha 2.2, mean
// 50 us, capped at 2 ms); offered load 80%, 100% and 120% of the workers'
// capacity, for 1 second of arrivals. Per class: p50, p99 and max wait from
// arrival to start, for FIFO, static, linear aging and additive aging
// (tau 20 ms). One producer thread; W = hardware threads - 1 workers, so the
// producer has a core (on 2 cores: 1 worker).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "ripen.h"

namespace {

uint64_t Now() { return ripen_now_ns(); }

struct Job {
	uint64_t arrival, start, service;
	int vip;
};

void Serve(void *arg)
{
	Job *j = static_cast<Job *>(arg);
	j->start = Now();
	while (Now() - j->start < j->service)
		;
}

ripen_policy *MakePolicy(int k)
{
	switch (k) {
	case 0: return ripen_policy_fifo();
	case 1: return ripen_policy_static();
	case 2: return ripen_policy_linear_aging(0.02);
	default: return ripen_policy_additive_aging(0.02);
	}
}

const char *kNames[] = {"fifo", "static", "linear_aging", "additive_aging"};

void BM_LatencyUnderLoad(benchmark::State &state)
{
	const int policy = (int)state.range(0);
	const double load = (double)state.range(1) / 100.0;
	const unsigned hw = std::thread::hardware_concurrency();
	const unsigned workers = hw > 1 ? hw - 1 : 1;
	const double mean_service = 50e3, alpha = 2.2;
	const double xm = mean_service * (alpha - 1) / alpha;
	const double rate = load * workers / mean_service; // arrivals per ns
	std::vector<double> vip, normal;
	uint64_t vip_max = 0, normal_max = 0;

	for (auto _ : state) {
		std::mt19937_64 rng(42);
		std::exponential_distribution<double> gap(rate);
		std::uniform_real_distribution<double> u(0, 1);
		std::vector<Job> jobs;
		uint64_t t = 0;
		while (t < 1000000000ull) {
			t += (uint64_t)gap(rng);
			double s = xm / std::pow(1 - u(rng), 1 / alpha);
			jobs.push_back({t, 0, (uint64_t)std::min(s, 2e6), u(rng) < 0.1});
		}
		ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
		o.workers = workers;
		o.policy = MakePolicy(policy);
		ripen_pool *pool;
		ripen_pool_create(&o, &pool);
		uint64_t t0 = Now();
		for (auto &j : jobs) {
			j.arrival += t0;
			while (Now() < j.arrival)
				;
			ripen_task_opts to = RIPEN_TASK_OPTS_INIT;
			to.base = j.vip ? 10 : 1;
			to.class_id = (uint32_t)j.vip;
			ripen_submit(pool, Serve, &j, &to, nullptr);
		}
		ripen_pool_wait_idle(pool, -1);
		ripen_pool_destroy(pool);
		for (auto &j : jobs) {
			uint64_t w = j.start - j.arrival;
			(j.vip ? vip : normal).push_back((double)w);
			(j.vip ? vip_max : normal_max) = std::max(j.vip ? vip_max : normal_max, w);
		}
	}
	std::sort(vip.begin(), vip.end());
	std::sort(normal.begin(), normal.end());
	auto pct = [](const std::vector<double> &v, double p) {
		return v.empty() ? 0 : v[(size_t)(p * (double)(v.size() - 1))] / 1e3;
	};
	state.counters["vip_p50_us"] = pct(vip, 0.5);
	state.counters["vip_p99_us"] = pct(vip, 0.99);
	state.counters["vip_max_us"] = (double)vip_max / 1e3;
	state.counters["norm_p50_us"] = pct(normal, 0.5);
	state.counters["norm_p99_us"] = pct(normal, 0.99);
	state.counters["norm_max_us"] = (double)normal_max / 1e3;
	state.SetLabel(kNames[policy]);
}

} // namespace

BENCHMARK(BM_LatencyUnderLoad)
	->ArgsProduct({{0, 1, 2, 3}, {80, 100, 120}})
	->Iterations(1)
	->Unit(benchmark::kMillisecond)
	->UseRealTime();

BENCHMARK_MAIN();
