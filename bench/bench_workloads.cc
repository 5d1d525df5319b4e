// More workloads (issue "Benchmarks"), ripen against the strict global pool
// (and oneTBB where meson finds it) in the same process:
//   SpawnTree:  fib-shaped tree, every task submits its two children; n = 29
//               gives 1.66M tasks (fib calls), deeper ones first; tasks/s. oneTBB's
//               task_group runs the same tree with no priorities at all, in
//               an arena of W threads (the waiting thread is one of them).
//               Read the ratio ripen/TBB: the price of keeping priorities.
//   WakeUp:     submit to an idle (parked) pool, time until the task starts;
//               p50/p90/p99/p99.9/max in microseconds, and how many of the
//               wake-ups took over 100 us (slow_pct, the share in percent).
//               `workers_seen` counts the distinct threads that ran the
//               task; for ripen also parks and rebalancer periods per
//               iteration. RIPEN_WAKEUP_DUMP=dir writes one line per
//               iteration (index, submit time on steady_clock = CLOCK_MONOTONIC
//               in ns, latency in ns, the thread that ran it) to
//               dir/<benchmark>.txt, to line up with `perf sched record -k
//               CLOCK_MONOTONIC` and find out what the tail is.
//               Paired_WakeUp runs both pools in one run, in alternating
//               blocks of 10 (r_ and s_ counters): on a shared machine,
//               the comparison to trust; /1 with the submitter asleep on a
//               futex instead of spinning (see there why that matters).
//   Memory:     RSS growth per queued task with 1M and 10M tasks queued in a
//               paused pool (bytes/task; the task's own arg is a NULL here).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "ripen.h"
#include "counters.h"
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

// Tasks run, counted per thread (counters.h: one shared counter bounced a
// line between the workers at every task, for every pool alike).
PerThreadCounter g_nodes;

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
	g_nodes.Add();
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
	g_nodes.Add();
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
		g_nodes.Reset();
		ripen_submit(g_rpool, RipenFib, (void *)FibArg(0, kFibN), nullptr, nullptr);
		ripen_pool_wait_idle(g_rpool, -1);
	}
	state.SetItemsProcessed((int64_t)g_nodes.Sum() * state.iterations());
	ripen_pool_destroy(g_rpool);
}

void BM_Strict_SpawnTree(benchmark::State &state)
{
	StrictPool p((unsigned)state.range(0));
	g_spool = &p;
	for (auto _ : state) {
		g_nodes.Reset();
		p.Submit(StrictFib, (void *)FibArg(0, kFibN), 0);
		p.WaitIdle();
	}
	state.SetItemsProcessed((int64_t)g_nodes.Sum() * state.iterations());
}

#ifdef RIPEN_HAVE_TBB
void TbbFib(tbb::task_group &g, uintptr_t n)
{
	g_nodes.Add();
	if (n < 2)
		return;
	g.run([&g, n] { TbbFib(g, n - 1); });
	g.run([&g, n] { TbbFib(g, n - 2); });
}

void BM_TBB_SpawnTree(benchmark::State &state)
{
	tbb::task_arena arena((int)state.range(0), 1);
	for (auto _ : state) {
		g_nodes.Reset();
		arena.execute([] {
			tbb::task_group g;
			TbbFib(g, kFibN);
			g.wait();
		});
	}
	state.SetItemsProcessed((int64_t)g_nodes.Sum() * state.iterations());
}
#endif

// ---------------------------------------------------------------- wake-up

std::atomic<uint64_t> g_started{0};
std::atomic<long> g_ran_on{0}; // the thread (tid) that ran the last Stamp
// A blocking waiter sleeps on g_stamped (a futex word) instead of spinning.
std::atomic<uint32_t> g_stamped{0};
bool g_block_waiter = false;

void Stamp(void *)
{
	static thread_local long tid = (long)syscall(SYS_gettid);
	g_ran_on.store(tid, std::memory_order_relaxed);
	g_started.store(NowNs(), std::memory_order_release);
	if (g_block_waiter) { // after the stamp: not part of the latency
		g_stamped.store(1, std::memory_order_release);
		syscall(SYS_futex, (uint32_t *)&g_stamped, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
	}
}

// Percentile q (0..1) of sorted v: the nearest rank.
double Pct(const std::vector<double> &v, double q)
{
	size_t i = (size_t)(q * (double)v.size());
	return v[i < v.size() ? i : v.size() - 1];
}

// One pool's wake-up samples: latency, when it was submitted, who ran it.
struct WakeSamples {
	std::vector<double> lat; // us
	std::vector<uint64_t> start; // steady_clock ns
	std::vector<long> tid;

	// Sleep so the workers park, submit, spin (or, g_block_waiter, sleep
	// on a futex) until the task stamps.
	template <class Submit> void Once(Submit submit)
	{
		std::this_thread::sleep_for(std::chrono::milliseconds(2)); // workers park
		g_started = 0;
		g_stamped = 0;
		uint64_t t0 = NowNs();
		submit();
		uint64_t s;
		while ((s = g_started.load(std::memory_order_acquire)) == 0)
			if (g_block_waiter)
				syscall(SYS_futex, (uint32_t *)&g_stamped, FUTEX_WAIT_PRIVATE, 0, nullptr,
					nullptr, 0);
		lat.push_back((double)(s - t0) / 1e3);
		start.push_back(t0);
		tid.push_back(g_ran_on.load(std::memory_order_relaxed));
	}

	// Counters under `prefix`; the dump (RIPEN_WAKEUP_DUMP) to <name>.txt.
	void Report(benchmark::State &state, const std::string &name, const std::string &prefix)
	{
		if (lat.empty())
			return;
		if (const char *dir = std::getenv("RIPEN_WAKEUP_DUMP")) {
			std::string path = std::string(dir) + "/" + name + ".txt";
			if (FILE *f = fopen(path.c_str(), "w")) {
				for (size_t i = 0; i < lat.size(); i++)
					fprintf(f, "%zu %llu %.0f %ld\n", i, (unsigned long long)start[i],
						lat[i] * 1e3, tid[i]);
				fclose(f);
			}
		}
		std::vector<long> seen = tid;
		std::sort(seen.begin(), seen.end());
		std::vector<double> v = lat;
		size_t slow = (size_t)std::count_if(v.begin(), v.end(), [](double x) { return x > 100; });
		std::sort(v.begin(), v.end());
		state.counters[prefix + "p50_us"] = Pct(v, 0.50);
		state.counters[prefix + "p90_us"] = Pct(v, 0.90);
		state.counters[prefix + "p99_us"] = Pct(v, 0.99);
		state.counters[prefix + "p999_us"] = Pct(v, 0.999);
		state.counters[prefix + "max_us"] = v.back();
		state.counters[prefix + "slow_pct"] = 100.0 * (double)slow / (double)v.size();
		state.counters[prefix + "workers_seen"] =
			(double)(std::unique(seen.begin(), seen.end()) - seen.begin());
	}
};

template <class Submit>
void WakeUp(benchmark::State &state, const char *name, Submit submit)
{
	WakeSamples w;
	w.lat.reserve((size_t)state.max_iterations);
	for (auto _ : state)
		w.Once(submit);
	w.Report(state, name, "");
}

ripen_pool *WakeUpRipenPool()
{
	ripen_pool *p;
	ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	o.workers = 2;
	ripen_pool_create(&o, &p);
	return p;
}

void BM_Ripen_WakeUp(benchmark::State &state)
{
	ripen_pool *p = WakeUpRipenPool();
	struct ripen_pool_stats a = RIPEN_POOL_STATS_INIT, b = RIPEN_POOL_STATS_INIT;
	ripen_pool_stats(p, &a);
	WakeUp(state, "Ripen_WakeUp", [&] { ripen_submit(p, Stamp, nullptr, nullptr, nullptr); });
	ripen_pool_stats(p, &b);
	double it = (double)state.iterations();
	state.counters["parks_per_iter"] = (double)(b.parks - a.parks) / it;
	state.counters["rebal_per_iter"] = (double)(b.rebalances - a.rebalances) / it;
	ripen_pool_destroy(p);
}

void BM_Strict_WakeUp(benchmark::State &state)
{
	StrictPool p(2);
	WakeUp(state, "Strict_WakeUp", [&] { p.Submit(Stamp, nullptr, 0); });
}

// Both pools in one run, in alternating blocks of kWakeBlock wake-ups: the
// same machine noise for both (on a shared VM, runs a second apart see
// different neighbours), while each pool keeps the 2 ms cadence of its own
// benchmark within a block. A block starts 5 ms after the other pool's last
// wake-up, past ripen's rebalancer period: neither pool's helper threads
// wake inside the other's block. (Alternating every wake-up would move
// ripen's rebalancer, which sleeps one period after a busy look, onto the
// strict pool's submits.) r_ counters are ripen's, s_ the strict pool's;
// the benchmark's iteration is one wake-up of each. Arg 0: the submitter
// spins until the task starts, as in Ripen_WakeUp and Strict_WakeUp; arg
// 1: it sleeps on a futex instead. With two CPUs, a spinning submitter
// holds one of them, and the kernel often queues the woken worker behind
// it (wake-affine placement); now and then it is not preempted and waits
// for the scheduler tick (4 ms at HZ=250): the ms tail that both pools
// show with arg 0, about 1% of wake-ups on the 2-CPU VM, so a 500-sample
// p99 lands either near 100 us or near 2 ms. Arg 1 leaves the CPU free:
// what remains is each pool's own wake-up path.
constexpr int kWakeBlock = 10;

void BM_Paired_WakeUp(benchmark::State &state)
{
	g_block_waiter = state.range(0) != 0;
	ripen_pool *p = WakeUpRipenPool();
	StrictPool sp(2);
	WakeSamples r, s;
	struct ripen_pool_stats a = RIPEN_POOL_STATS_INIT, b = RIPEN_POOL_STATS_INIT;
	ripen_pool_stats(p, &a);
	int k = 0;
	for (auto _ : state) {
		if (k++ % kWakeBlock == 0)
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		r.Once([&] { ripen_submit(p, Stamp, nullptr, nullptr, nullptr); });
		// the strict pool's half of the pair runs kWakeBlock wake-ups later
		if (k % kWakeBlock == 0) {
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
			for (int i = 0; i < kWakeBlock; i++)
				s.Once([&] { sp.Submit(Stamp, nullptr, 0); });
		}
	}
	for (int i = 0; i < k % kWakeBlock; i++) // iterations not a multiple
		s.Once([&] { sp.Submit(Stamp, nullptr, 0); });
	ripen_pool_stats(p, &b);
	std::string arg = state.range(0) ? "_block" : "_spin";
	r.Report(state, "Paired_Ripen_WakeUp" + arg, "r_");
	s.Report(state, "Paired_Strict_WakeUp" + arg, "s_");
	state.counters["r_rebal_per_iter"] =
		(double)(b.rebalances - a.rebalances) / (double)state.iterations();
	ripen_pool_destroy(p);
	g_block_waiter = false;
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
BENCHMARK(BM_Paired_WakeUp)->Arg(0)->Arg(1)->Iterations(1000)->UseRealTime();
BENCHMARK(BM_Ripen_MemoryPerQueuedTask)->Arg(1000000)->Arg(10000000)->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
