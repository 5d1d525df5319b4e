// Priority quality, computed exactly offline (issue "Benchmarks", workload 3).
//
// Every task owns a record: its priority (higher is better) and two
// timestamps, taken just before it is submitted and as it starts. After the
// run the records become a stream of submit and start events in time order,
// replayed through two Fenwick trees (order-statistic trees over the
// priorities' dense ranks):
//   queued:  tasks submitted and not yet started, by rank;
//   started: tasks started so far, by rank.
// For each task,
//   rank error = tasks strictly better still queued when it starts;
//   delay      = tasks strictly worse that started while it waited
//              = (worse ones started by its start) - (by its submit).
// The definitions are those of the relaxed-priority-queue literature
// (Alistarh et al., "The SprayList", PPoPP 2015; Williams, Sanders and
// Dementiev, "Engineering MultiQueues", ESA 2021), here for a task runtime:
// "queued" runs from the submit call to the task's first instruction.
//
// Timestamps: the TSC on x86-64 (invariant and synchronised across cores
// on the machines this runs on), the monotonic clock elsewhere. A cross-core
// skew only blurs events closer together than the skew.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace quality {

inline uint64_t Stamp()
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

struct Rec {
	double prio;	// higher is better
	uint64_t sub;	// Stamp() before the submit call
	uint64_t start; // Stamp() at the task's first instruction
};

struct Report {
	double rank_mean = 0, delay_mean = 0;
	uint64_t rank_p99 = 0, rank_max = 0, delay_p99 = 0, delay_max = 0;
	uint64_t tasks = 0;
};

class Fenwick {
public:
	explicit Fenwick(size_t n) : t_(n + 1, 0) {}
	void Add(size_t i, int64_t v)
	{
		for (i++; i < t_.size(); i += i & (~i + 1))
			t_[i] += v;
	}
	int64_t Prefix(size_t i) const // sum over [0, i)
	{
		int64_t s = 0;
		for (; i > 0; i -= i & (~i + 1))
			s += t_[i];
		return s;
	}

private:
	std::vector<int64_t> t_;
};

inline uint64_t P99(std::vector<uint32_t> &v)
{
	if (v.empty())
		return 0;
	size_t k = v.size() * 99 / 100;
	std::nth_element(v.begin(), v.begin() + (long)k, v.end());
	return v[k];
}

// recs[0..n): every task of the run, each started exactly once.
inline Report Replay(const Rec *recs, size_t n)
{
	Report r;
	if (n == 0)
		return r;
	// dense ranks: equal priorities share one, 0 = worst
	std::vector<double> prios(n);
	for (size_t i = 0; i < n; i++)
		prios[i] = recs[i].prio;
	std::sort(prios.begin(), prios.end());
	prios.erase(std::unique(prios.begin(), prios.end()), prios.end());
	const size_t levels = prios.size();
	std::vector<uint32_t> rank(n);
	for (size_t i = 0; i < n; i++)
		rank[i] = (uint32_t)(std::lower_bound(prios.begin(), prios.end(), recs[i].prio) -
				     prios.begin());

	// events: (time, task << 1 | is_start); a task's submit sorts before
	// its start even on equal stamps
	struct Ev {
		uint64_t time;
		uint64_t key;
		bool operator<(const Ev &o) const
		{
			return time < o.time || (time == o.time && (key & 1) < (o.key & 1));
		}
	};
	std::vector<Ev> ev;
	ev.reserve(2 * n);
	for (size_t i = 0; i < n; i++) {
		ev.push_back(Ev{recs[i].sub, (uint64_t)i << 1});
		ev.push_back(Ev{recs[i].start < recs[i].sub ? recs[i].sub : recs[i].start,
				((uint64_t)i << 1) | 1});
	}
	std::sort(ev.begin(), ev.end());

	Fenwick queued(levels), started(levels);
	std::vector<int64_t> worse_at_submit(n, 0);
	std::vector<uint32_t> rank_err, delay;
	rank_err.reserve(n);
	delay.reserve(n);
	int64_t nqueued = 0;
	double rsum = 0, dsum = 0;
	for (const Ev &e : ev) {
		size_t id = e.key >> 1;
		uint32_t k = rank[id];
		if ((e.key & 1) == 0) {
			queued.Add(k, 1);
			nqueued++;
			worse_at_submit[id] = started.Prefix(k);
			continue;
		}
		queued.Add(k, -1);
		nqueued--;
		uint32_t better = (uint32_t)(nqueued - queued.Prefix(k + 1));
		uint32_t d = (uint32_t)(started.Prefix(k) - worse_at_submit[id]);
		started.Add(k, 1);
		rank_err.push_back(better);
		delay.push_back(d);
		rsum += better;
		dsum += d;
		r.rank_max = std::max<uint64_t>(r.rank_max, better);
		r.delay_max = std::max<uint64_t>(r.delay_max, d);
	}
	r.tasks = n;
	r.rank_mean = rsum / (double)n;
	r.delay_mean = dsum / (double)n;
	r.rank_p99 = P99(rank_err);
	r.delay_p99 = P99(delay);
	return r;
}

} // namespace quality
