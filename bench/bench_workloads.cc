// More workloads (issue "Benchmarks"), ripen against the strict global pool
// (and oneTBB where meson finds it) in the same process:
//   SpawnTree:  fib-shaped tree, every task submits its two children; n = 29
//               gives 1.66M tasks (fib calls), deeper ones first; tasks/s. oneTBB's
//               task_group runs the same tree with no priorities at all, in
//               an arena of W threads (the waiting thread is one of them).
//               Read the ratio ripen/TBB: the price of keeping priorities.
//   WakeUp:     submit to an idle (parked) pool, time until the task starts;
//               p50/p99 in microseconds.
//   Memory:     RSS growth per queued task with 1M and 10M tasks queued in a
//               paused pool (bytes/task; the task's own arg is a NULL here).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <thread>
#include <unistd.h>
#include <vector>

#include "ripen.h"
#include "strict_pool.h"
#include "workers.h"

#ifdef RIPEN_HAVE_TBB
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#endif

namespace {

uint64_t NowNs()
{
	return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
		       std::chrono::steady_clock::now().time_since_epoch())
		.count();
}

// ------------------------------------------------------------ spawn tree

std::atomic<uint64_t> g_nodes{0};
ripen_pool *g_rpool;
StrictPool *g_spool;

// arg = depth << 8 | n. Priority = depth: deeper first, the depth-first
// order a work-stealing deque gives for free, which keeps the queue at the
// length of the current path. (Bigger subtrees first, the other natural
// choice, runs the tree level by level and queues ~all its leaves at once:
// measured here, the heap's sift-down then took 40% of the instructions.)
constexpr uintptr_t kFibN = 29; // 1.66M tasks

inline uintptr_t FibArg(uintptr_t depth, uintptr_t n) { return depth << 8 | n; }

void RipenFib(void *arg)
{
	uintptr_t a = (uintptr_t)arg, n = a & 0xff, d = a >> 8;
	g_nodes.fetch_add(1, std::memory_order_relaxed);
	if (n < 2)
		return;
	ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	o.base = (double)(d + 1);
	ripen_submit(g_rpool, RipenFib, (void *)FibArg(d + 1, n - 1), &o, nullptr);
	ripen_submit(g_rpool, RipenFib, (void *)FibArg(d + 1, n - 2), &o, nullptr);
}

void StrictFib(void *arg)
{
	uintptr_t a = (uintptr_t)arg, n = a & 0xff, d = a >> 8;
	g_nodes.fetch_add(1, std::memory_order_relaxed);
	if (n < 2)
		return;
	g_spool->Submit(StrictFib, (void *)FibArg(d + 1, n - 1), (double)(d + 1));
	g_spool->Submit(StrictFib, (void *)FibArg(d + 1, n - 2), (double)(d + 1));
}

void BM_Ripen_SpawnTree(benchmark::State &state)
{
	ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	o.workers = (unsigned)state.range(0);
	ripen_pool_create(&o, &g_rpool);
	for (auto _ : state) {
		g_nodes = 0;
		ripen_submit(g_rpool, RipenFib, (void *)FibArg(0, kFibN), nullptr, nullptr);
		ripen_pool_wait_idle(g_rpool, -1);
	}
	state.SetItemsProcessed((int64_t)g_nodes.load() * state.iterations());
	ripen_pool_destroy(g_rpool);
}

void BM_Strict_SpawnTree(benchmark::State &state)
{
	StrictPool p((unsigned)state.range(0));
	g_spool = &p;
	for (auto _ : state) {
		g_nodes = 0;
		p.Submit(StrictFib, (void *)FibArg(0, kFibN), 0);
		p.WaitIdle();
	}
	state.SetItemsProcessed((int64_t)g_nodes.load() * state.iterations());
}

#ifdef RIPEN_HAVE_TBB
void TbbFib(tbb::task_group &g, uintptr_t n)
{
	g_nodes.fetch_add(1, std::memory_order_relaxed);
	if (n < 2)
		return;
	g.run([&g, n] { TbbFib(g, n - 1); });
	g.run([&g, n] { TbbFib(g, n - 2); });
}

void BM_TBB_SpawnTree(benchmark::State &state)
{
	tbb::task_arena arena((int)state.range(0), 1);
	for (auto _ : state) {
		g_nodes = 0;
		arena.execute([] {
			tbb::task_group g;
			TbbFib(g, kFibN);
			g.wait();
		});
	}
	state.SetItemsProcessed((int64_t)g_nodes.load() * state.iterations());
}
#endif

// ---------------------------------------------------------------- wake-up

std::atomic<uint64_t> g_started{0};

void Stamp(void *) { g_started.store(NowNs(), std::memory_order_release); }

template <class Submit>
void WakeUp(benchmark::State &state, Submit submit)
{
	std::vector<double> lat;
	for (auto _ : state) {
		std::this_thread::sleep_for(std::chrono::milliseconds(2)); // workers park
		g_started = 0;
		uint64_t t0 = NowNs();
		submit();
		uint64_t s;
		while ((s = g_started.load(std::memory_order_acquire)) == 0)
			;
		lat.push_back((double)(s - t0) / 1e3);
	}
	std::sort(lat.begin(), lat.end());
	state.counters["p50_us"] = lat[lat.size() / 2];
	state.counters["p99_us"] = lat[lat.size() * 99 / 100];
}

void BM_Ripen_WakeUp(benchmark::State &state)
{
	ripen_pool *p;
	ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	o.workers = 2;
	ripen_pool_create(&o, &p);
	WakeUp(state, [&] { ripen_submit(p, Stamp, nullptr, nullptr, nullptr); });
	ripen_pool_destroy(p);
}

void BM_Strict_WakeUp(benchmark::State &state)
{
	StrictPool p(2);
	WakeUp(state, [&] { p.Submit(Stamp, nullptr, 0); });
}

// ----------------------------------------------------------------- memory

long RssBytes()
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == nullptr)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

void Nop(void *) {}

void BM_Ripen_MemoryPerQueuedTask(benchmark::State &state)
{
	double per = 0;
	for (auto _ : state) {
		ripen_pool *p;
		ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
		o.workers = 2;
		o.start_paused = true;
		ripen_pool_create(&o, &p);
		long before = RssBytes();
		for (int64_t i = 0; i < state.range(0); i++) {
			ripen_task_opts t = RIPEN_TASK_OPTS_INIT;
			t.base = (double)(i % 1000);
			ripen_submit(p, Nop, nullptr, &t, nullptr);
		}
		ripen_pool_resume(p); // primes: every task moves into a heap entry
		long queued = RssBytes();
		per = (double)(queued - before) / (double)state.range(0);
		ripen_pool_wait_idle(p, -1);
		ripen_pool_destroy(p);
	}
	state.counters["bytes_per_task"] = per;
}

} // namespace

BENCHMARK(BM_Ripen_SpawnTree)->Apply(WorkerCounts)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Strict_SpawnTree)->Apply(WorkerCounts)->Unit(benchmark::kMillisecond)->UseRealTime();
#ifdef RIPEN_HAVE_TBB
BENCHMARK(BM_TBB_SpawnTree)->Apply(WorkerCounts)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif
BENCHMARK(BM_Ripen_WakeUp)->Iterations(500)->UseRealTime();
BENCHMARK(BM_Strict_WakeUp)->Iterations(500)->UseRealTime();
BENCHMARK(BM_Ripen_MemoryPerQueuedTask)->Arg(1000000)->Arg(10000000)->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
