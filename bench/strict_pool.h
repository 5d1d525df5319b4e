// The exact-order baseline: one mutex, one binary heap, one condition
// variable. Every submit and every pop serialises on the same lock and cache
// line; its order is exact (higher priority first, FIFO on ties).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

class StrictPool {
public:
	using Fn = void (*)(void *);

	explicit StrictPool(unsigned workers)
	{
		for (unsigned i = 0; i < workers; i++)
			threads_.emplace_back([this] { Run(); });
	}
	~StrictPool()
	{
		{
			std::lock_guard<std::mutex> g(mu_);
			stop_ = true;
		}
		cv_.notify_all();
		for (auto &t : threads_)
			t.join();
	}
	void Submit(Fn fn, void *arg, double prio)
	{
		{
			std::lock_guard<std::mutex> g(mu_);
			heap_.push(Item{prio, seq_++, fn, arg});
			pending_++;
		}
		cv_.notify_one();
	}
	// Paused, the workers take nothing: a prefill then starts from a full
	// heap, as ripen's start_paused does.
	void Pause()
	{
		std::lock_guard<std::mutex> g(mu_);
		paused_ = true;
	}
	void Resume()
	{
		{
			std::lock_guard<std::mutex> g(mu_);
			paused_ = false;
		}
		cv_.notify_all();
	}
	void WaitIdle()
	{
		std::unique_lock<std::mutex> g(mu_);
		idle_cv_.wait(g, [this] { return pending_ == 0; });
	}

private:
	struct Item {
		double prio;
		uint64_t seq;
		Fn fn;
		void *arg;
		bool operator<(const Item &o) const
		{
			return prio < o.prio || (prio == o.prio && seq > o.seq);
		}
	};
	void Run()
	{
		std::unique_lock<std::mutex> g(mu_);
		for (;;) {
			cv_.wait(g, [this] { return stop_ || (!paused_ && !heap_.empty()); });
			if (heap_.empty())
				return;
			Item it = heap_.top();
			heap_.pop();
			g.unlock();
			it.fn(it.arg);
			g.lock();
			if (--pending_ == 0)
				idle_cv_.notify_all();
		}
	}
	std::mutex mu_;
	std::condition_variable cv_, idle_cv_;
	std::priority_queue<Item> heap_;
	uint64_t seq_ = 0, pending_ = 0;
	bool stop_ = false, paused_ = false;
	std::vector<std::thread> threads_;
};
