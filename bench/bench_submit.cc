// Submit + run: one producer thread submits tasks to W workers.
//
//   empty: each task does one atomic increment; N tasks per iteration, then
//          wait for idle. Reports tasks/s.
//   prio:  tasks carry a random priority 0..999 and the producer keeps at
//          most 1024 outstanding (a steady backlog). Also reports the rank
//          error (strictly better tasks still queued when a task started)
//          and the delay (strictly worse tasks that started while it
//          waited), mean and p99, replayed exactly from each task's submit
//          and start stamps (quality.h).
//   mp:    empty tasks from 2 producer threads at once (kTasks in all).
//
// ripen and the strict global pool (strict_pool.h) run in the same process,
// so their ratio is what to read: absolute rates drift 2-3x on shared hosts.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "counters.h"
#include "quality.h"
#include "ripen.h"
#include "strict_pool.h"
#include "workers.h"

#ifdef RIPEN_HAVE_GLIB
#include <glib.h>
#endif
#ifdef RIPEN_HAVE_TBB
#include <oneapi/tbb/concurrent_priority_queue.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#endif

namespace {

constexpr int kTasks = 200000;
constexpr int kPrioLevels = 1000;
constexpr int kBacklog = 1024;

std::atomic<uint64_t> g_count{0};

// Empty tasks count per thread (counters.h); the prioritised ones share
// g_count, whose reading by the producer is what bounds the backlog.
PerThreadCounter g_empty;
void EmptyTask(void *) { g_empty.Add(); }

// ---- per-task records for the rank error and delay (quality.h)
std::vector<quality::Rec> g_recs(kTasks);

void PrioTask(void *arg)
{
	g_recs[(uint32_t)(uintptr_t)arg].start = quality::Stamp();
	g_count.fetch_add(1, std::memory_order_release);
}

template <class Submit, class WaitIdle>
void RunPrio(benchmark::State &state, Submit submit, WaitIdle wait_idle)
{
	std::mt19937 rng(42);
	double rank_sum = 0, rank_p99 = 0, delay_sum = 0, delay_p99 = 0;
	for (auto _ : state) {
		g_count.store(0);
		for (int i = 0; i < kTasks; i++) {
			g_recs[i].prio = (double)(rng() % kPrioLevels);
			while ((uint64_t)i - g_count.load(std::memory_order_acquire) >= kBacklog)
				std::this_thread::yield();
			g_recs[i].sub = quality::Stamp();
			submit(i, g_recs[i].prio);
		}
		wait_idle();
		state.PauseTiming();
		quality::Report r = quality::Replay(g_recs.data(), kTasks);
		rank_sum += r.rank_mean;
		rank_p99 += (double)r.rank_p99;
		delay_sum += r.delay_mean;
		delay_p99 += (double)r.delay_p99;
		state.ResumeTiming();
	}
	double n = (double)state.iterations();
	state.SetItemsProcessed(state.iterations() * kTasks);
	state.counters["rank_error"] = rank_sum / n;
	state.counters["rank_p99"] = rank_p99 / n;
	state.counters["delay"] = delay_sum / n;
	state.counters["delay_p99"] = delay_p99 / n;
}

struct RipenPool {
	ripen_pool *pool = nullptr;
	explicit RipenPool(unsigned w, bool metrics_off = false)
	{
		ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
		o.workers = w;
		o.metrics_off = metrics_off;
		if (ripen_pool_create(&o, &pool) != 0)
			abort();
	}
	~RipenPool() { ripen_pool_destroy(pool); }
};

void AddStats(benchmark::State &state, ripen_pool *pool)
{
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	ripen_pool_stats(pool, &st);
	double n = (double)st.run;
	state.counters["parks/task"] = st.parks / n;
	state.counters["steals/task"] = st.steals / n;
	state.counters["inbox_steals/task"] = st.inbox_steals / n;
	state.counters["busy/look"] = st.peer_looks ? (double)st.steal_busy / st.peer_looks : 0;
	state.counters["lock_waits/task"] = st.lock_waits / n;
	state.counters["lock_yields/task"] = st.lock_yields / n;
}

// Empty tasks from `producers` threads: 1 is the benchmark's own thread,
// more submit kTasks between them from threads of their own.
template <class Submit, class Wait>
void RunEmpty(benchmark::State &state, int producers, Submit submit, Wait wait)
{
	for (auto _ : state) {
		g_empty.Reset();
		if (producers == 1) {
			for (int i = 0; i < kTasks; i++)
				submit(i);
		} else {
			std::vector<std::thread> ts;
			for (int p = 0; p < producers; p++)
				ts.emplace_back([&submit, p, producers] {
					for (int i = p; i < kTasks; i += producers)
						submit(i);
				});
			for (auto &t : ts)
				t.join();
		}
		wait();
	}
	state.SetItemsProcessed(state.iterations() * kTasks);
}

constexpr int kProducers = 2; // the "several producers" runs (…MP)

void RipenEmpty(benchmark::State &state, int producers)
{
	RipenPool p((unsigned)state.range(0));
	RunEmpty(
		state, producers,
		[&](int) {
			if (ripen_submit(p.pool, EmptyTask, nullptr, nullptr, nullptr) != 0)
				abort();
		},
		[&] { ripen_pool_wait_idle(p.pool, -1); });
	AddStats(state, p.pool);
}

void StrictEmpty(benchmark::State &state, int producers)
{
	StrictPool p((unsigned)state.range(0));
	RunEmpty(
		state, producers, [&](int) { p.Submit(EmptyTask, nullptr, 0); },
		[&] { p.WaitIdle(); });
}

void BM_Ripen_Empty(benchmark::State &state) { RipenEmpty(state, 1); }
void BM_Ripen_EmptyMP(benchmark::State &state) { RipenEmpty(state, kProducers); }
void BM_Strict_Empty(benchmark::State &state) { StrictEmpty(state, 1); }
void BM_Strict_EmptyMP(benchmark::State &state) { StrictEmpty(state, kProducers); }

// The recording's cost (runtime/metrics.c): empty tasks through a pool that
// records (the default) and one with opts.metrics_off, alternating within
// each iteration so that both see the same machine. Counters: each pool's
// tasks/s and on/off, the ratio to read (1.00 = free; 0.95 = 5% slower).
// class_id 1 puts every task in a class of its own (the task extension).
void BM_Ripen_MetricsCost(benchmark::State &state)
{
	RipenPool on((unsigned)state.range(0), false), off((unsigned)state.range(0), true);
	double t_on = 0, t_off = 0;
	ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	o.class_id = (uint32_t)state.range(1);
	auto run = [&](ripen_pool *pool) {
		auto t0 = std::chrono::steady_clock::now();
		for (int i = 0; i < kTasks; i++)
			if (ripen_submit(pool, EmptyTask, nullptr, &o, nullptr) != 0)
				abort();
		ripen_pool_wait_idle(pool, -1);
		return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	};
	int k = 0;
	for (auto _ : state) {
		if (k++ & 1) { /* alternate which goes first */
			t_off += run(off.pool);
			t_on += run(on.pool);
		} else {
			t_on += run(on.pool);
			t_off += run(off.pool);
		}
	}
	double n = (double)state.iterations() * kTasks;
	state.SetItemsProcessed(state.iterations() * 2 * kTasks);
	state.counters["on_tasks/s"] = n / t_on;
	state.counters["off_tasks/s"] = n / t_off;
	state.counters["on/off"] = t_off / t_on;
}

// The trace recorder's cost (runtime/trace.c): empty tasks through a pool
// that records a trace into a temporary file and one that does not,
// alternating as above. on/off is the ratio to read. (What the recorder
// costs when off is one load and a branch a task: callgrind, see the
// README.)
void BM_Ripen_TraceCost(benchmark::State &state)
{
	RipenPool on((unsigned)state.range(0)), off((unsigned)state.range(0));
	char path[] = "/tmp/ripen-bench-trace.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || ripen_pool_trace_start(on.pool, path) != 0)
		abort();
	close(fd);
	double t_on = 0, t_off = 0;
	auto run = [&](ripen_pool *pool) {
		auto t0 = std::chrono::steady_clock::now();
		for (int i = 0; i < kTasks; i++)
			if (ripen_submit(pool, EmptyTask, nullptr, nullptr, nullptr) != 0)
				abort();
		ripen_pool_wait_idle(pool, -1);
		return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	};
	int k = 0;
	for (auto _ : state) {
		if (k++ & 1) {
			t_off += run(off.pool);
			t_on += run(on.pool);
		} else {
			t_on += run(on.pool);
			t_off += run(off.pool);
		}
	}
	ripen_pool_trace_stop(on.pool);
	unlink(path);
	double n = (double)state.iterations() * kTasks;
	state.SetItemsProcessed(state.iterations() * 2 * kTasks);
	state.counters["on_tasks/s"] = n / t_on;
	state.counters["off_tasks/s"] = n / t_off;
	state.counters["on/off"] = t_off / t_on;
}

void BM_Ripen_Prio(benchmark::State &state)
{
	RipenPool p((unsigned)state.range(0));
	RunPrio(
		state,
		[&](int i, double prio) {
			ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
			o.base = prio;
			if (ripen_submit(p.pool, PrioTask, (void *)(uintptr_t)i, &o, nullptr) != 0)
				abort();
		},
		[&] { ripen_pool_wait_idle(p.pool, -1); });
	AddStats(state, p.pool);
}

void BM_Strict_Prio(benchmark::State &state)
{
	StrictPool p((unsigned)state.range(0));
	RunPrio(
		state, [&](int i, double prio) { p.Submit(PrioTask, (void *)(uintptr_t)i, prio); },
		[&] { p.WaitIdle(); });
}

// ------------------------------------------------------------ baselines
#ifdef RIPEN_HAVE_GLIB
// GLib's GThreadPool with a sort function: exact order, O(n) insert.
struct GItem {
	double prio;
	uint64_t seq;
	void (*fn)(void *);
	void *arg;
};

gint GCompare(gconstpointer a, gconstpointer b, gpointer)
{
	auto *x = static_cast<const GItem *>(a), *y = static_cast<const GItem *>(b);
	if (x->prio != y->prio)
		return x->prio > y->prio ? -1 : 1;
	return x->seq < y->seq ? -1 : 1;
}

void GRun(gpointer data, gpointer)
{
	auto *it = static_cast<GItem *>(data);
	it->fn(it->arg);
}

struct GPool {
	GThreadPool *p;
	std::vector<GItem> items;
	std::atomic<uint64_t> seq{0};
	explicit GPool(unsigned w) : items(kTasks)
	{
		p = g_thread_pool_new(GRun, nullptr, (gint)w, TRUE, nullptr);
		g_thread_pool_set_sort_function(p, GCompare, nullptr);
	}
	~GPool() { g_thread_pool_free(p, FALSE, TRUE); }
	void Submit(int i, void (*fn)(void *), void *arg, double prio)
	{
		items[i] = GItem{prio, seq.fetch_add(1, std::memory_order_relaxed), fn, arg};
		g_thread_pool_push(p, &items[i], nullptr);
	}
};

void WaitCount(uint64_t n)
{
	while (g_count.load(std::memory_order_acquire) < n)
		std::this_thread::yield();
}

void WaitEmpty(uint64_t n)
{
	while (g_empty.Sum() < n)
		std::this_thread::yield();
}

void GLibEmpty(benchmark::State &state, int producers)
{
	GPool p((unsigned)state.range(0));
	RunEmpty(
		state, producers, [&](int i) { p.Submit(i, EmptyTask, nullptr, 0); },
		[] { WaitEmpty(kTasks); });
}

void BM_GLib_Empty(benchmark::State &state) { GLibEmpty(state, 1); }
void BM_GLib_EmptyMP(benchmark::State &state) { GLibEmpty(state, kProducers); }

void BM_GLib_Prio(benchmark::State &state)
{
	GPool p((unsigned)state.range(0));
	RunPrio(
		state, [&](int i, double prio) { p.Submit(i, PrioTask, (void *)(uintptr_t)i, prio); },
		[&] { WaitCount(kTasks); });
}
#endif

#ifdef RIPEN_HAVE_TBB
// oneTBB task_group: no priorities at all (the speed a priority runtime
// gives up); the producer thread takes part, as TBB's waiting thread does.
void BM_TBB_Empty(benchmark::State &state)
{
	tbb::task_arena arena((int)state.range(0) + 1, 1);
	for (auto _ : state) {
		arena.execute([&] {
			tbb::task_group g;
			for (int i = 0; i < kTasks; i++)
				g.run([] { EmptyTask(nullptr); });
			g.wait();
		});
	}
	state.SetItemsProcessed(state.iterations() * kTasks);
}

// concurrent_priority_queue feeding a task_group: each run() pops the best
// item queued at that moment (exact order up to the queue's own).
struct TItem {
	double prio;
	uint64_t seq;
	int id;
	bool operator<(const TItem &o) const
	{
		return prio < o.prio || (prio == o.prio && seq > o.seq);
	}
};

void BM_TBB_Prio(benchmark::State &state)
{
	tbb::task_arena arena((int)state.range(0) + 1, 1);
	tbb::concurrent_priority_queue<TItem> q;
	tbb::task_group *g = nullptr;
	uint64_t seq = 0;
	arena.execute([&] { g = new tbb::task_group; });
	RunPrio(
		state,
		[&](int i, double prio) {
			q.push(TItem{prio, seq++, i});
			arena.execute([&] {
				g->run([&q] {
					TItem it;
					if (q.try_pop(it))
						PrioTask((void *)(uintptr_t)it.id);
				});
			});
		},
		[&] { arena.execute([&] { g->wait(); }); });
	arena.execute([&] { delete g; });
}
#endif

void Workers(benchmark::internal::Benchmark *b)
{
	WorkerCounts(b);
	b->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
}

} // namespace

BENCHMARK(BM_Ripen_Empty)->Apply(Workers);
BENCHMARK(BM_Strict_Empty)->Apply(Workers);
BENCHMARK(BM_Ripen_EmptyMP)->Apply(Workers);
BENCHMARK(BM_Strict_EmptyMP)->Apply(Workers);
BENCHMARK(BM_Ripen_Prio)->Apply(Workers);
BENCHMARK(BM_Ripen_MetricsCost)->Args({2, 0})->Args({2, 1})->UseRealTime();
BENCHMARK(BM_Ripen_TraceCost)->Arg(2)->UseRealTime();
BENCHMARK(BM_Strict_Prio)->Apply(Workers);
#ifdef RIPEN_HAVE_GLIB
BENCHMARK(BM_GLib_Empty)->Apply(Workers);
BENCHMARK(BM_GLib_EmptyMP)->Apply(Workers);
BENCHMARK(BM_GLib_Prio)->Apply(Workers);
#endif
#ifdef RIPEN_HAVE_TBB
BENCHMARK(BM_TBB_Empty)->Apply(Workers);
BENCHMARK(BM_TBB_Prio)->Apply(Workers);
#endif

BENCHMARK_MAIN();
