/*
 * Shared internals: invariant checks, cache-line layout, ThreadSanitizer
 * annotations, the clock and the cheap per-thread random source.
 *
 * Naming: public symbols are ripen_*, internal non-static ones ripen__*.
 * Everything here is callable from any thread.
 */
#ifndef RIPEN_COMMON_INTERNAL_H
#define RIPEN_COMMON_INTERNAL_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <time.h>

#define RIPEN_CACHELINE 64

#define ripen__likely(x) __builtin_expect(!!(x), 1)
#define ripen__unlikely(x) __builtin_expect(!!(x), 0)

/* A broken internal invariant is not an error code: say where, and abort. */
noreturn void ripen__die(const char *file, int line, const char *func,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define RIPEN_DIE(...) ripen__die(__FILE__, __LINE__, __func__, __VA_ARGS__)
#define RIPEN_CHECK(cond)                                                     \
	do {                                                                  \
		if (ripen__unlikely(!(cond)))                                 \
			RIPEN_DIE("invariant violated: %s", #cond);           \
	} while (0)
#ifdef NDEBUG
#define RIPEN_DCHECK(cond) ((void)0)
#else
#define RIPEN_DCHECK(cond) RIPEN_CHECK(cond)
#endif

/*
 * ThreadSanitizer cannot see liburcu 0.13's inline-assembly atomics, so the
 * hand-off of a task through a wfcqueue is invisible to it. We tell it: the
 * submitter releases on the task right before the enqueue, the dequeuer
 * acquires right after the dequeue (the pattern of ../shared/RELIABILITY.md,
 * the project's notes outside this repository). Compiled away in
 * every other build.
 */
#if defined(__SANITIZE_THREAD__)
#define RIPEN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RIPEN_TSAN 1
#endif
#endif
#ifdef RIPEN_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define RIPEN_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define RIPEN_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define RIPEN_TSAN_ACQUIRE(p) ((void)(p))
#define RIPEN_TSAN_RELEASE(p) ((void)(p))
#endif

/*
 * Thread-locals of the library: initial-exec, so that an access is one
 * %fs-relative load instead of a call to __tls_get_addr (measured: ~90
 * instructions a task in the spawn tree). The cost: a program that dlopen()s
 * libripen late needs glibc's spare static TLS, which these few words fit.
 */
#define RIPEN_TLS _Thread_local __attribute__((tls_model("initial-exec")))

/*
 * Which user callback the calling thread is inside, if any (policy.c sets
 * it around custom score functions, worker.c around triggers). A score runs
 * under the worker's heap lock, often with an inbox lock held too, inside an
 * RCU read section: calls that queue, wait or swap would deadlock there and
 * return -EDEADLK instead. A trigger runs inside an RCU read section only:
 * only the calls that wait for a grace period are refused. A watcher's
 * callback (watch.c) runs on the rebalancer outside any read section: only
 * the calls that wait for the pool (and so for the rebalancer) are refused.
 */
enum { RIPEN_CB_NONE = 0, RIPEN_CB_SCORE = 1, RIPEN_CB_TRIGGER = 2, RIPEN_CB_WATCH = 3 };
extern RIPEN_TLS unsigned char ripen__in_callback;

/* CLOCK_MONOTONIC in nanoseconds: the clock of submit times and timeouts. */
static inline uint64_t ripen__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Add to a counter that only its owner thread writes and others read
 * (ripen_pool_stats): a relaxed load and store, no locked RMW. */
static inline void ripen__bump(_Atomic uint64_t *c, uint64_t by)
{
	/* relaxed: single writer; readers want a recent value, no ordering */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
			      memory_order_relaxed);
}

/* Sleep while *word == expected, at most timeout_ns (< 0: no limit): 0 or a
 * negative errno (-EAGAIN: the word differed; -ETIMEDOUT; -EINTR). Wake n
 * sleepers. Process-private futexes (common.c). */
int ripen__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void ripen__futex_wake(_Atomic uint32_t *word, int n);
/* Wake every thread sleeping on a futex word (FUTEX_WAKE takes an int). */
#define RIPEN_FUTEX_ALL INT_MAX

/* a + b, saturating at UINT64_MAX: release and wake-up times near the end
 * of the clock's range mean "never", not a wrap to the past. */
static inline uint64_t ripen__sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* xorshift64*: per-thread, not shared; seed must be non-zero. */
static inline uint64_t ripen__rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A non-zero seed from the clock and an address. */
static inline uint64_t ripen__seed_rng(const void *salt)
{
	uint64_t x = ripen__now_ns() ^ (uint64_t)(uintptr_t)salt * 0x9E3779B97F4A7C15ULL;

	return x ? x : 1;
}

/* Uniform in [0, n) without a division. */
static inline uint32_t ripen__rand_below(uint64_t *state, uint32_t n)
{
	return (uint32_t)(((ripen__rand(state) >> 32) * (uint64_t)n) >> 32);
}

static inline void ripen__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* RIPEN_COMMON_INTERNAL_H */
