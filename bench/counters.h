// A task counter that every thread adds to on a line of its own, summed by
// the reader. One shared counter takes a locked add at every task on a line
// that bounces between the workers: a cost of the benchmark, which the
// pools under test pay in proportion to how evenly they spread the tasks
// (measured with bench_workloads' spawn tree at 2 workers on the 2-vCPU
// Intel VM: ripen 253-259 -> 182-183 ms, oneTBB 214-222 -> 187-194 ms,
// strict pool 146-162 -> 140-154 ms). Slots are handed out in thread
// order and wrap (pools come and go, so threads accumulate); the add is
// atomic so that two threads sharing a slot after a wrap still count
// right. bench_sssp keeps its own pair of counters the same way.
#pragma once

#include <atomic>
#include <cstdint>

class PerThreadCounter {
public:
	void Add()
	{
		// release: a reader that sees the count (acquire) sees the
		// task's effects
		Mine().n.fetch_add(1, std::memory_order_release);
	}
	uint64_t Sum() const
	{
		uint64_t s = 0;

		for (const Slot &c : slot_)
			s += c.n.load(std::memory_order_acquire); // pairs with Add
		return s;
	}
	void Reset()
	{
		for (Slot &c : slot_)
			c.n.store(0, std::memory_order_relaxed); // between runs: the pool is idle
	}

private:
	struct alignas(64) Slot {
		std::atomic<uint64_t> n{0};
	};
	static constexpr unsigned kSlots = 64;

	Slot &Mine()
	{
		// one slot per thread for all counters: a thread adds to one at a time
		static std::atomic<unsigned> next{0};
		static thread_local unsigned mine = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
		return slot_[mine];
	}

	Slot slot_[kSlots];
};
