// Single-source shortest paths as tasks (workload 4): relaxed Dijkstra.
//
// A task per settled node, score = minus its tentative distance; relaxing an
// arc does a CAS-min on the distance array and submits the head node when it
// improved. A task whose distance is no longer the node's is a stale pop.
// Reported against a sequential binary-heap Dijkstra in the same run: time
// ratio, work ratio (tasks that did work / reachable nodes) and stale pops;
// every distance is checked against the sequential result.
//
// Input: a DIMACS .gr file from $RIPEN_SSSP_GRAPH (e.g. ../shared/data/roads/
// moscow.gr); without one, a generated 700x700 grid with random weights.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <array>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ripen.h"
#include "workers.h"

namespace {

struct Graph {
	uint32_t n = 0;
	std::vector<uint32_t> off, to, w;
	std::string name;
};

Graph Load()
{
	Graph g;
	std::vector<std::array<uint32_t, 3>> arcs;
	const char *path = getenv("RIPEN_SSSP_GRAPH");
	FILE *f = path ? fopen(path, "r") : nullptr;
	if (f != nullptr) {
		char line[256];
		while (fgets(line, sizeof(line), f)) {
			uint32_t u, v, c;
			if (line[0] == 'p')
				sscanf(line, "p sp %u", &g.n);
			else if (line[0] == 'a' && sscanf(line, "a %u %u %u", &u, &v, &c) == 3)
				arcs.push_back({u - 1, v - 1, c});
		}
		fclose(f);
		g.name = path;
	} else {
		const uint32_t side = 700;
		std::mt19937 rng(7);
		g.n = side * side;
		for (uint32_t y = 0; y < side; y++)
			for (uint32_t x = 0; x < side; x++) {
				uint32_t u = y * side + x;
				if (x + 1 < side) {
					uint32_t c = 1 + rng() % 100;
					arcs.push_back({u, u + 1, c});
					arcs.push_back({u + 1, u, c});
				}
				if (y + 1 < side) {
					uint32_t c = 1 + rng() % 100;
					arcs.push_back({u, u + side, c});
					arcs.push_back({u + side, u, c});
				}
			}
		g.name = "grid 700x700 (generated)";
	}
	g.off.assign(g.n + 1, 0);
	for (auto &a : arcs)
		g.off[a[0] + 1]++;
	for (uint32_t i = 0; i < g.n; i++)
		g.off[i + 1] += g.off[i];
	g.to.resize(arcs.size());
	g.w.resize(arcs.size());
	std::vector<uint32_t> pos(g.off.begin(), g.off.end() - 1);
	for (auto &a : arcs) {
		g.to[pos[a[0]]] = a[1];
		g.w[pos[a[0]]++] = a[2];
	}
	return g;
}

const Graph &G()
{
	static Graph g = Load();
	return g;
}

constexpr uint32_t kInf = UINT32_MAX;

std::vector<uint32_t> Dijkstra(const Graph &g, uint32_t src)
{
	std::vector<uint32_t> d(g.n, kInf);
	using Item = std::pair<uint32_t, uint32_t>;
	std::priority_queue<Item, std::vector<Item>, std::greater<Item>> pq;
	d[src] = 0;
	pq.push({0, src});
	while (!pq.empty()) {
		auto [du, u] = pq.top();
		pq.pop();
		if (du != d[u])
			continue;
		for (uint32_t e = g.off[u]; e < g.off[u + 1]; e++) {
			uint32_t v = g.to[e], nd = du + g.w[e];
			if (nd < d[v]) {
				d[v] = nd;
				pq.push({nd, v});
			}
		}
	}
	return d;
}

// ---- the relaxed version
ripen_pool *g_pool;
std::atomic<uint32_t> *g_dist;
std::atomic<uint64_t> g_work, g_stale;

void Settle(void *arg)
{
	uint64_t packed = (uint64_t)(uintptr_t)arg;
	uint32_t u = (uint32_t)(packed >> 32), du = (uint32_t)packed;
	const Graph &g = G();
	if (g_dist[u].load(std::memory_order_relaxed) != du) {
		g_stale.fetch_add(1, std::memory_order_relaxed);
		return;
	}
	g_work.fetch_add(1, std::memory_order_relaxed);
	for (uint32_t e = g.off[u]; e < g.off[u + 1]; e++) {
		uint32_t v = g.to[e], nd = du + g.w[e];
		uint32_t cur = g_dist[v].load(std::memory_order_relaxed);
		while (nd < cur) {
			if (g_dist[v].compare_exchange_weak(cur, nd, std::memory_order_relaxed)) {
				ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
				o.base = -(double)nd;
				ripen_submit(g_pool, Settle, (void *)(uintptr_t)((uint64_t)v << 32 | nd), &o,
					     nullptr);
				break;
			}
		}
	}
}

void BM_Dijkstra_Sequential(benchmark::State &state)
{
	const Graph &g = G();
	for (auto _ : state)
		benchmark::DoNotOptimize(Dijkstra(g, 0));
	state.SetLabel(g.name);
}

void BM_Ripen_SSSP(benchmark::State &state)
{
	const Graph &g = G();
	std::vector<uint32_t> ref = Dijkstra(g, 0);
	uint64_t reachable = 0;
	for (uint32_t d : ref)
		reachable += d != kInf;
	std::vector<std::atomic<uint32_t>> dist(g.n);
	g_dist = dist.data();
	ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	o.workers = (unsigned)state.range(0);
	ripen_pool_create(&o, &g_pool);
	double work = 0, stale = 0;
	for (auto _ : state) {
		state.PauseTiming();
		for (auto &d : dist)
			d.store(kInf, std::memory_order_relaxed);
		dist[0].store(0);
		g_work = 0;
		g_stale = 0;
		state.ResumeTiming();
		ripen_submit(g_pool, Settle, (void *)(uintptr_t)0, nullptr, nullptr);
		ripen_pool_wait_idle(g_pool, -1);
		state.PauseTiming();
		for (uint32_t i = 0; i < g.n; i++)
			if (dist[i].load() != ref[i]) {
				fprintf(stderr, "SSSP: node %u has %u, Dijkstra %u\n", i, dist[i].load(), ref[i]);
				abort();
			}
		work = (double)g_work.load() / (double)reachable;
		stale = (double)g_stale.load();
		state.ResumeTiming();
	}
	ripen_pool_destroy(g_pool);
	state.counters["work_ratio"] = work;
	state.counters["stale_pops"] = stale;
	state.SetLabel(g.name);
}

void Workers(benchmark::internal::Benchmark *b)
{
	WorkerCounts(b);
	b->Unit(benchmark::kMillisecond)->UseRealTime();
}

} // namespace

BENCHMARK(BM_Dijkstra_Sequential)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Ripen_SSSP)->Apply(Workers);

BENCHMARK_MAIN();
