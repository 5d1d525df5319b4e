// Priority quality (workload 3): how far from the exact order ripen runs,
// against the exact-order baselines in the same process.
//
//   Prefilled:  2^20 tasks with random priorities are queued in a paused
//               pool, which then drains them. Every task is there from the
//               start, so rank error and delay measure the order alone.
//   Monotonic:  the steady-state workload of the MultiQueue papers: 4096
//               chains, each task submits its chain's successor with a
//               worse priority (a larger key: minus a random 1..65536)
//               until 2^20 tasks have run. The queue holds ~4096 tasks
//               throughout; what runs next keeps moving.
//   Prefilled_Contended: the Prefilled workload at 2 workers, twice per
//               iteration in the same process: quiet, then beside two CPU
//               hogs (plain busy loops on std::thread, not pinned, started
//               once the prefill is queued and before the resume, joined
//               after the drain). 2 workers + 2 hogs on the 2-vCPU machine:
//               every worker shares its CPU. The issue's target: "beside
//               two CPU hogs, the mean rank error stays within 4x of the
//               quiet figure" (rank_mean_ratio below). For ripen and the
//               strict pool (exact order: what it loses is time, not order).
//
// Per run: tasks/s and the rank error and delay (mean, p99, max) over every
// task, replayed exactly from each task's submit and start timestamps
// (quality.h). Baselines: the strict global pool, and oneTBB's
// concurrent_priority_queue feeding a task_group when meson finds TBB (both
// exact order, so what they show is the order concurrency alone disturbs).
//
// Read the median of the repetitions. A worker whose CPU is taken away while
// it holds its heap lock strands its heap until it runs again: on the 2-vCPU
// development machine a plain two-thread spin loop sees gaps of up to 4 ms a
// few times a second. Its peer stops after 32 worse tasks and waits (the
// stall rule, runtime/worker.c); before that rule a run that caught such a
// gap had a p99 rank error near the queue size. Prefilled_Contended
// provokes exactly that on purpose.
// RIPEN_BENCH_REBALANCE_NS sets ripen's rebalance period
// (18446744073709551615: no rebalancer) to see what the rebalancer adds.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "quality.h"
#include "ripen.h"
#include "strict_pool.h"
#include "workers.h"

#ifdef RIPEN_HAVE_TBB
#include <oneapi/tbb/concurrent_priority_queue.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#endif

namespace {

constexpr uint32_t kTasks = 1u << 20;
constexpr uint32_t kChains = 4096;
constexpr uint32_t kChainLen = kTasks / kChains;

std::vector<quality::Rec> g_recs(kTasks);

uint64_t Mix(uint64_t x) // splitmix64: the successor's priority step
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void Fill(bool monotonic)
{
	std::mt19937_64 rng(12345);
	for (uint32_t i = 0; i < kTasks; i++)
		g_recs[i] = quality::Rec{(double)(rng() >> 11), 0, 0};
	if (monotonic)
		for (uint32_t c = 0; c < kChains; c++) {
			uint32_t i = c * kChainLen;
			g_recs[i].prio = -(double)(1 + Mix(i) % 65536);
		}
}

// What a task does: stamp its start, then (monotonic) its successor's
// priority and submit stamp, and submit it through `submit`.
template <class Submit>
inline void Body(uint32_t i, bool monotonic, Submit submit)
{
	g_recs[i].start = quality::Stamp();
	if (!monotonic || (i + 1) % kChainLen == 0)
		return;
	g_recs[i + 1].prio = g_recs[i].prio - (double)(1 + Mix(i + 1) % 65536);
	g_recs[i + 1].sub = quality::Stamp();
	submit(i + 1, g_recs[i + 1].prio);
}

void Count(benchmark::State &state, const quality::Report &r, double n)
{
	state.counters["rank_mean"] = r.rank_mean / n;
	state.counters["rank_p99"] = (double)r.rank_p99 / n;
	state.counters["rank_max"] = (double)r.rank_max / n;
	state.counters["delay_mean"] = r.delay_mean / n;
	state.counters["delay_p99"] = (double)r.delay_p99 / n;
	state.counters["delay_max"] = (double)r.delay_max / n;
}

// One run = fill, queue the initial tasks, let the pool drain, replay.
// Hooks: pause(), submit(i, prio), resume(), wait(), done(); only resume()
// and wait() are timed.
template <class Pause, class Submit, class Resume, class Wait, class Done>
void Run(benchmark::State &state, bool monotonic, Pause pause, Submit submit, Resume resume,
	 Wait wait, Done done)
{
	quality::Report sum;
	uint64_t runs = 0;
	for (auto _ : state) {
		state.PauseTiming();
		Fill(monotonic);
		pause();
		uint32_t initial = monotonic ? kChains : kTasks;
		for (uint32_t k = 0; k < initial; k++) {
			uint32_t i = monotonic ? k * kChainLen : k;
			g_recs[i].sub = quality::Stamp();
			submit(i, g_recs[i].prio);
		}
		state.ResumeTiming();
		resume();
		wait();
		state.PauseTiming();
		done();
		quality::Report r = quality::Replay(g_recs.data(), kTasks);
		sum.rank_mean += r.rank_mean;
		sum.delay_mean += r.delay_mean;
		sum.rank_p99 += r.rank_p99;
		sum.delay_p99 += r.delay_p99;
		sum.rank_max += r.rank_max;
		sum.delay_max += r.delay_max;
		runs++;
		state.ResumeTiming();
	}
	state.SetItemsProcessed((int64_t)state.iterations() * kTasks);
	Count(state, sum, (double)runs);
}

// ---------------------------------------------------------------- ripen

ripen_pool *g_rpool;
bool g_mono;

void RipenTask(void *arg)
{
	Body((uint32_t)(uintptr_t)arg, g_mono, [](uint32_t j, double prio) {
		ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		o.base = prio;
		if (ripen_submit(g_rpool, RipenTask, (void *)(uintptr_t)j, &o, nullptr) != 0)
			abort();
	});
}

// Calls run(pause, submit, resume, wait, done) with the hooks of a ripen
// pool, a paused one per run: resume primes every heap first.
template <class Runner>
void WithRipen(benchmark::State &state, bool monotonic, Runner run)
{
	ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	o.workers = (unsigned)state.range(0);
	o.start_paused = true;
	if (getenv("RIPEN_BENCH_REBALANCE_NS") != nullptr)
		o.rebalance_period_ns = strtoull(getenv("RIPEN_BENCH_REBALANCE_NS"), nullptr, 0);
	g_mono = monotonic;
	run(
		[&] {
			if (ripen_pool_create(&o, &g_rpool) != 0)
				abort();
		},
		[](uint32_t i, double prio) {
			ripen_task_opts t = RIPEN_TASK_OPTS_INIT;
			t.base = prio;
			if (ripen_submit(g_rpool, RipenTask, (void *)(uintptr_t)i, &t, nullptr) != 0)
				abort();
		},
		[] { ripen_pool_resume(g_rpool); },
		[] { ripen_pool_wait_idle(g_rpool, -1); }, [] { ripen_pool_destroy(g_rpool); });
}

void BM_Ripen(benchmark::State &state, bool monotonic)
{
	WithRipen(state, monotonic, [&](auto &&...hooks) { Run(state, monotonic, hooks...); });
}

// ---------------------------------------------------------------- strict

StrictPool *g_spool;

void StrictTask(void *arg)
{
	Body((uint32_t)(uintptr_t)arg, g_mono, [](uint32_t j, double prio) {
		g_spool->Submit(StrictTask, (void *)(uintptr_t)j, prio);
	});
}

// The same for the strict pool (its own pause and resume).
template <class Runner>
void WithStrict(benchmark::State &state, bool monotonic, Runner run)
{
	StrictPool p((unsigned)state.range(0));
	g_spool = &p;
	g_mono = monotonic;
	run([&] { p.Pause(); },
	    [&](uint32_t i, double prio) { p.Submit(StrictTask, (void *)(uintptr_t)i, prio); },
	    [&] { p.Resume(); }, [&] { p.WaitIdle(); }, [] {});
}

void BM_Strict(benchmark::State &state, bool monotonic)
{
	WithStrict(state, monotonic, [&](auto &&...hooks) { Run(state, monotonic, hooks...); });
}

// ---------------------------------------------------------------- oneTBB
#ifdef RIPEN_HAVE_TBB
struct TItem {
	double prio;
	uint32_t id;
	bool operator<(const TItem &o) const { return prio < o.prio; }
};

tbb::concurrent_priority_queue<TItem> *g_tq;
tbb::task_group *g_tg;

void TbbSpawn();

void TbbTask(uint32_t i)
{
	Body(i, g_mono, [](uint32_t j, double prio) {
		g_tq->push(TItem{prio, j});
		TbbSpawn();
	});
}

// each spawned task pops the best item queued at that moment
void TbbSpawn()
{
	g_tg->run([] {
		TItem it;
		if (g_tq->try_pop(it))
			TbbTask(it.id);
	});
}

void BM_TBB(benchmark::State &state, bool monotonic)
{
	tbb::task_arena arena((int)state.range(0), 1);
	tbb::concurrent_priority_queue<TItem> q;
	tbb::task_group g;
	g_tq = &q;
	g_tg = &g;
	g_mono = monotonic;
	uint32_t queued = 0;
	Run(
		state, monotonic, [&] { queued = 0; },
		[&](uint32_t i, double prio) {
			q.push(TItem{prio, i});
			queued++;
		},
		[&] {
			arena.execute([&] {
				for (uint32_t k = 0; k < queued; k++)
					TbbSpawn();
			});
		},
		[&] { arena.execute([&] { g.wait(); }); }, [] {});
}
#endif

// ----------------------------------------------------- contended (hogs)

constexpr unsigned kContendedWorkers = 2;
constexpr unsigned kHogs = 2;

// Busy loops on plain threads, unpinned: the scheduler shares the CPUs
// between them and the pool's workers. The constructor returns once every
// hog spins; the destructor stops and joins them.
class Hogs {
public:
	explicit Hogs(unsigned n)
	{
		for (unsigned i = 0; i < n; i++)
			t_.emplace_back([this] {
				up_.fetch_add(1);
				uint64_t x = 0;
				while (!stop_.load(std::memory_order_relaxed))
					benchmark::DoNotOptimize(x++);
			});
		while (up_.load() < n)
			std::this_thread::yield();
	}
	~Hogs()
	{
		stop_.store(true);
		for (auto &t : t_)
			t.join();
	}

private:
	std::atomic<bool> stop_{false};
	std::atomic<unsigned> up_{0};
	std::vector<std::thread> t_;
};

// CPU time, ms: the whole machine's busy time (/proc/stat: user, nice,
// system, irq, softirq and steal, which a VM's getrusage counts as run
// time; not idle or iowait; -1 without it) and this process's (getrusage:
// every thread, the hogs included).
double MachineBusyMs()
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long v[8] = {0};
	int got = f != nullptr ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
					&v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
			       : 0;
	if (f != nullptr)
		fclose(f);
	if (got != 8)
		return -1;
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1e3 /
	       (double)sysconf(_SC_CLK_TCK);
}

double ProcessCpuMs()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

struct Drain {
	quality::Report r;
	double s = 0;	   // resume to idle, seconds
	double others = 0; // CPU ms other processes took meanwhile (ticks: +-20 ms)
};

// One prefilled run with `hogs` hogs spinning from before the resume to
// after the drain; the same hooks as Run(). Untimed: the caller reports.
template <class Pause, class Submit, class Resume, class Wait, class Done>
Drain Once(unsigned hogs, Pause pause, Submit submit, Resume resume, Wait wait, Done done)
{
	Fill(false);
	pause();
	for (uint32_t i = 0; i < kTasks; i++) {
		g_recs[i].sub = quality::Stamp();
		submit(i, g_recs[i].prio);
	}
	Drain d;
	{
		Hogs h(hogs);
		double busy0 = MachineBusyMs(), own0 = ProcessCpuMs();
		auto t0 = std::chrono::steady_clock::now();
		resume();
		wait();
		d.s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
		double busy1 = MachineBusyMs(), own1 = ProcessCpuMs();
		d.others = busy0 < 0 || busy1 < 0 ? 0 : (busy1 - busy0) - (own1 - own0);
	}
	done();
	d.r = quality::Replay(g_recs.data(), kTasks);
	return d;
}

// Per iteration a quiet run, then a contended one (back to back, so that
// both see the same machine). The benchmark's time (manual) is the
// contended drain, resume to idle; counters:
//   rank_{mean,p99,max}_quiet   rank error without hogs (as Prefilled);
//   rank_{mean,p99,max}_hogs    the same beside the two hogs;
//   rank_mean_ratio             rank_mean_hogs / rank_mean_quiet (the
//                               issue's target: at most 4; for the strict
//                               pool both means are below 1, a task popped
//                               by the peer and not yet started, and the
//                               ratio of two such figures says little);
//   drain_ms_{quiet,hogs}       resume to idle, both ways: what the hogs
//                               cost in time (what an exact order loses);
//   others_cpu_ms_{quiet,hogs}  CPU time other processes took during the
//                               drain: machine busy time less this
//                               process's. On a shared machine it tells a
//                               quiet run that was not quiet (a "quiet"
//                               rank error in the hundreds with others near
//                               drain_ms: another process held a CPU).
//                               Approximate: /proc/stat samples busy time
//                               on clock ticks, so near 0 reads +-20 ms,
//                               and a pool whose workers sleep and wake
//                               thousands of times a second (the strict
//                               pool) can read 10-20% of drain_ms off
//                               either way.
// No delay figures: with every task queued from the start, the mean delay
// equals the mean rank error (both count the same inverted pairs).
template <class Pause, class Submit, class Resume, class Wait, class Done>
void RunContended(benchmark::State &state, Pause pause, Submit submit, Resume resume, Wait wait,
		  Done done)
{
	quality::Report q, h;
	double qs = 0, hs = 0, qo = 0, ho = 0;
	uint64_t runs = 0;
	auto add = [](quality::Report &sum, const quality::Report &r) {
		sum.rank_mean += r.rank_mean;
		sum.rank_p99 += r.rank_p99;
		sum.rank_max += r.rank_max;
	};
	for (auto _ : state) {
		Drain quiet = Once(0, pause, submit, resume, wait, done);
		Drain hog = Once(kHogs, pause, submit, resume, wait, done);
		add(q, quiet.r);
		add(h, hog.r);
		qs += quiet.s;
		hs += hog.s;
		qo += quiet.others;
		ho += hog.others;
		runs++;
		state.SetIterationTime(hog.s);
	}
	const double n = (double)runs;
	state.SetItemsProcessed((int64_t)state.iterations() * kTasks);
	state.counters["rank_mean_quiet"] = q.rank_mean / n;
	state.counters["rank_p99_quiet"] = (double)q.rank_p99 / n;
	state.counters["rank_max_quiet"] = (double)q.rank_max / n;
	state.counters["rank_mean_hogs"] = h.rank_mean / n;
	state.counters["rank_p99_hogs"] = (double)h.rank_p99 / n;
	state.counters["rank_max_hogs"] = (double)h.rank_max / n;
	state.counters["rank_mean_ratio"] = q.rank_mean > 0 ? h.rank_mean / q.rank_mean : 0;
	state.counters["drain_ms_quiet"] = qs / n * 1e3;
	state.counters["drain_ms_hogs"] = hs / n * 1e3;
	state.counters["others_cpu_ms_quiet"] = qo / n;
	state.counters["others_cpu_ms_hogs"] = ho / n;
}

void BM_Ripen_Prefilled_Contended(benchmark::State &state)
{
	WithRipen(state, false, [&](auto &&...hooks) { RunContended(state, hooks...); });
}

void BM_Strict_Prefilled_Contended(benchmark::State &state)
{
	WithStrict(state, false, [&](auto &&...hooks) { RunContended(state, hooks...); });
}

void Contended(benchmark::internal::Benchmark *b)
{
	b->Arg(kContendedWorkers)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)
		->Repetitions(5)->DisplayAggregatesOnly(true);
}

void Workers(benchmark::internal::Benchmark *b)
{
	WorkerCounts(b);
	b->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->DisplayAggregatesOnly(true);
}

} // namespace

BENCHMARK_CAPTURE(BM_Ripen, Prefilled, false)->Apply(Workers);
BENCHMARK_CAPTURE(BM_Strict, Prefilled, false)->Apply(Workers);
BENCHMARK_CAPTURE(BM_Ripen, Monotonic, true)->Apply(Workers);
BENCHMARK_CAPTURE(BM_Strict, Monotonic, true)->Apply(Workers);
BENCHMARK(BM_Ripen_Prefilled_Contended)->Apply(Contended);
BENCHMARK(BM_Strict_Prefilled_Contended)->Apply(Contended);
#ifdef RIPEN_HAVE_TBB
BENCHMARK_CAPTURE(BM_TBB, Prefilled, false)->Apply(Workers);
BENCHMARK_CAPTURE(BM_TBB, Monotonic, true)->Apply(Workers);
#endif

BENCHMARK_MAIN();
