/*
 * Fault injection: see fault-internal.h. Counters are relaxed atomics: a
 * test arms a point while no pool is running, or accepts that "the n-th hit"
 * is counted in whatever order concurrent threads reach the point.
 */
#include "common-internal.h"
#include "fault-internal.h"

#include <sched.h>
#include <stdatomic.h>

static const char *const names[RIPEN_FAULT_NPOINTS] = {
	[RIPEN_FAULT_TASK_ALLOC] = "task_alloc",
	[RIPEN_FAULT_HEAP_GROW] = "heap_grow",
	[RIPEN_FAULT_POOL_ALLOC] = "pool_alloc",
	[RIPEN_FAULT_THREAD_CREATE] = "thread_create",
	[RIPEN_FAULT_POLICY_ALLOC] = "policy_alloc",
};

static _Atomic uint64_t hits[RIPEN_FAULT_NPOINTS];
static _Atomic uint64_t fired[RIPEN_FAULT_NPOINTS];
static _Atomic uint64_t fail_at[RIPEN_FAULT_NPOINTS];
static _Atomic uint32_t random_one_in;
static _Atomic uint64_t random_state;
#if defined(__x86_64__) && defined(RIPEN_FAULT_INJECTION)
/* the bent TSC (see ripen__fault_tsc_rate); mult 0: not bent */
static _Atomic uint64_t bend_base, bend_mult, bend_jump;
#endif

const char *ripen__fault_name(enum ripen__fault_point p)
{
	return (unsigned)p < RIPEN_FAULT_NPOINTS ? names[p] : "?";
}

bool ripen__fault_enabled(void)
{
#ifdef RIPEN_FAULT_INJECTION
	return true;
#else
	return false;
#endif
}

#ifdef RIPEN_FAULT_INJECTION
bool ripen__fault_hit(enum ripen__fault_point p)
{
	/* relaxed: counters only; no data is published through them */
	uint64_t n = atomic_fetch_add_explicit(&hits[p], 1, memory_order_relaxed) + 1;
	uint64_t at = atomic_load_explicit(&fail_at[p], memory_order_relaxed);
	uint32_t k = atomic_load_explicit(&random_one_in, memory_order_relaxed);
	bool fail = at != 0 && n == at;

	if (!fail && k != 0) {
		/* relaxed: a shared random stream; races only reuse a value */
		uint64_t s = atomic_load_explicit(&random_state, memory_order_relaxed);
		uint64_t r = ripen__rand(&s);

		atomic_store_explicit(&random_state, s, memory_order_relaxed);
		fail = (r >> 33) % k == 0;
	}
	if (fail)
		atomic_fetch_add_explicit(&fired[p], 1, memory_order_relaxed);
	return fail;
}
#endif

void ripen__fault_arm(enum ripen__fault_point p, uint64_t nth)
{
	/* relaxed: tests arm points before starting the work they observe */
	atomic_store_explicit(&hits[p], 0, memory_order_relaxed);
	atomic_store_explicit(&fail_at[p], nth, memory_order_relaxed);
}

void ripen__fault_random(uint32_t one_in, uint64_t seed)
{
	atomic_store_explicit(&random_state, seed ? seed : 1, memory_order_relaxed);
	atomic_store_explicit(&random_one_in, one_in, memory_order_relaxed);
}

uint64_t ripen__fault_hits(enum ripen__fault_point p)
{
	return atomic_load_explicit(&hits[p], memory_order_relaxed);
}

uint64_t ripen__fault_fired(enum ripen__fault_point p)
{
	return atomic_load_explicit(&fired[p], memory_order_relaxed);
}

void ripen__fault_reset(void)
{
	for (int p = 0; p < RIPEN_FAULT_NPOINTS; p++) {
		atomic_store_explicit(&hits[p], 0, memory_order_relaxed);
		atomic_store_explicit(&fired[p], 0, memory_order_relaxed);
		atomic_store_explicit(&fail_at[p], 0, memory_order_relaxed);
	}
	atomic_store_explicit(&random_one_in, 0, memory_order_relaxed);
#if defined(__x86_64__) && defined(RIPEN_FAULT_INJECTION)
	atomic_store_explicit(&bend_mult, 0, memory_order_relaxed);
	atomic_store_explicit(&bend_jump, 0, memory_order_relaxed);
#endif
}

/*
 * A bent TSC: from the moment a test bends it, the recording clock's TSC
 * reads run at `factor` times the true rate (a VM moved to a host whose
 * TSC runs at another rate), continuous at the bend from the true TSC, so
 * that only the rate check (metrics.c, rate_holds) can tell; and a jump
 * adds a constant from then on (a snapshot restored, a machine resumed).
 * The factor is kept in 32.32 fixed point. One bend per test, while no
 * clock read races it; a no-op without fault injection.
 */
void ripen__fault_tsc_rate(double factor)
{
#if defined(__x86_64__) && defined(RIPEN_FAULT_INJECTION)
	if (!(factor > 0.0 && factor < 2.0))
		factor = 1.0; /* NaN, or out of the fixed point's range */
	/* relaxed: the base is published by the release store of the mult */
	atomic_store_explicit(&bend_base, __builtin_ia32_rdtsc(), memory_order_relaxed);
	/* release: pairs with the acquire load in ripen__rdtsc_bent */
	atomic_store_explicit(&bend_mult, factor == 1.0 ? 0 : (uint64_t)(factor * 4294967296.0),
			      memory_order_release);
#else
	(void)factor;
#endif
}

void ripen__fault_tsc_jump(uint64_t ticks)
{
#if defined(__x86_64__) && defined(RIPEN_FAULT_INJECTION)
	/* relaxed: a test's step between reads; the next read sees it or the
	 * one after, either way a jump */
	atomic_fetch_add_explicit(&bend_jump, ticks, memory_order_relaxed);
#else
	(void)ticks;
#endif
}

#if defined(__x86_64__) && defined(RIPEN_FAULT_INJECTION)
uint64_t ripen__rdtsc_bent(void)
{
	uint64_t c = __builtin_ia32_rdtsc();
	/* acquire: pairs with the release store in ripen__fault_tsc_rate,
	 * so that the base read below is the bend's */
	uint64_t m = atomic_load_explicit(&bend_mult, memory_order_acquire);
	/* relaxed: see ripen__fault_tsc_jump */
	uint64_t j = atomic_load_explicit(&bend_jump, memory_order_relaxed);
	uint64_t base;

	if (m == 0)
		return c + j;
	/* relaxed: ordered by the acquire above */
	base = atomic_load_explicit(&bend_base, memory_order_relaxed);
	if (c < base)
		return c + j;
	return base + (uint64_t)(((unsigned __int128)(c - base) * m) >> 32) + j;
}
#endif

#ifdef RIPEN_YIELD_POINTS
void ripen__yield_point(void)
{
	static RIPEN_TLS uint64_t rng;

	if (rng == 0)
		rng = (uint64_t)(uintptr_t)&rng | 1;
	if (ripen__rand_below(&rng, 8) == 0)
		sched_yield();
}
#endif

/*
 * The hook is a function and its argument, read by any thread that passes a
 * window while a test installs, swaps or removes it. Two separate atomics
 * let a reader pair the old function with the new argument: a removal
 * (NULL, NULL) that landed between a reader's two loads called the old
 * hook with a NULL argument (seen as a crash in test_regress beside
 * stress-ng, once in about 20 runs). So each install writes its pair into
 * a slot of its own, never written again, and publishes the slot: one
 * pointer, one load. Slots are not reused, since a reader may still hold
 * an old one; a test process installs a few dozen hooks.
 */
#ifndef RIPEN_FAULT_INJECTION
void ripen__window_hook(ripen__window_fn *fn, void *arg)
{
	(void)fn;
	(void)arg; /* no windows to hook: a no-op, as fault-internal.h says */
}
#else
struct window_hook {
	ripen__window_fn *fn;
	void *arg;
};

#define RIPEN_WINDOW_HOOKS 4096u
static struct window_hook window_hooks[RIPEN_WINDOW_HOOKS];
static _Atomic unsigned window_hooks_used;
static struct window_hook *_Atomic window_cur;

void ripen__window_hook(ripen__window_fn *fn, void *arg)
{
	struct window_hook *h = NULL;

	if (fn != NULL) {
		/* relaxed: only hands out distinct slots */
		unsigned i = atomic_fetch_add_explicit(&window_hooks_used, 1, memory_order_relaxed);

		if (i >= RIPEN_WINDOW_HOOKS)
			RIPEN_DIE("more than %u window hooks installed", RIPEN_WINDOW_HOOKS);
		h = &window_hooks[i];
		h->fn = fn;
		h->arg = arg;
	}
	/* release: the slot's contents before the pointer; pairs with the
	 * acquire load in ripen__window */
	atomic_store_explicit(&window_cur, h, memory_order_release);
}

void ripen__window(enum ripen__window win)
{
	/* acquire: pairs with the release store in ripen__window_hook */
	struct window_hook *h = atomic_load_explicit(&window_cur, memory_order_acquire);

	RIPEN_YIELD_POINT();
	if (h != NULL)
		h->fn(win, h->arg);
}
#endif
