/*
 * Per-class recording (metrics.c has the design essay): the worker-owned
 * blocks, the pool's shared counters, and the inline hot-path recorders.
 */
#ifndef RIPEN_METRICS_INTERNAL_H
#define RIPEN_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common-internal.h"
#include "fault-internal.h"
#include "pool-internal.h"
#include "task-internal.h"

/* Series slots: classes 0..RIPEN_MAX_CLASSES-1, then "other". */
#define RIPEN_MSLOTS (RIPEN_MAX_CLASSES + 1u)
#define RIPEN_MSLOT_OTHER RIPEN_MAX_CLASSES

/*
 * Log-linear buckets over 64 ns units: u = ns >> 6; u < 8 is its own
 * bucket (64 ns wide); above, 8 sub-buckets per power of two, so a bucket
 * [lo, hi) has hi/lo <= 1.125 from 512 ns up. 35 octaves reach 2^43 ns
 * (2.4 h); the last bucket is open above.
 */
#define RIPEN_H_UNIT_SHIFT 6u
#define RIPEN_H_SUB_BITS 3u
#define RIPEN_H_SUB (1u << RIPEN_H_SUB_BITS)
#define RIPEN_H_TOP_OCTAVE 36u
#define RIPEN_H_BUCKETS ((RIPEN_H_TOP_OCTAVE - 1u) * RIPEN_H_SUB) /* 280 */

/* A histogram with one writer; count = sum of the buckets. */
struct ripen__hist {
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t max_ns;
	_Atomic uint64_t b[RIPEN_H_BUCKETS];
};

/* One class on one worker; the worker alone writes it. */
struct ripen__mclass {
	alignas(RIPEN_CACHELINE) _Atomic uint64_t started;
	_Atomic uint64_t submitted;	/* submits by tasks running on this worker */
	_Atomic uint64_t cancelled;	/* cancels by tasks running on this worker */
	struct ripen__hist wait;
	struct ripen__hist run;
};

/* A worker's block: one mmap, zero pages until a class is first used. */
struct ripen__wmetrics {
	struct ripen__mclass cls[RIPEN_MSLOTS];
	/* external submits aimed at this worker's inbox: any thread, one
	 * relaxed RMW each (the submit already does a seq_cst one on
	 * inbox_in of the same worker) */
	alignas(RIPEN_CACHELINE) _Atomic uint64_t ext_submitted[RIPEN_MSLOTS];
};

/* The pool's part. */
struct ripen__metrics {
	/* read on key computations of the class-weight policy: bits of the
	 * double factor each class's weight is multiplied by (1.0 = none);
	 * written by the watchers under watch_lock */
	alignas(RIPEN_CACHELINE) _Atomic uint64_t factor_bits[RIPEN_MSLOTS];
	/* rare paths, any thread: relaxed RMW */
	alignas(RIPEN_CACHELINE) _Atomic uint64_t ext_cancelled[RIPEN_MSLOTS];
	_Atomic uint64_t rejected[RIPEN_MSLOTS];
	_Atomic uint64_t shed[RIPEN_MSLOTS];
	/* timer_lock held: releases and cancels of tasks in the timer heap */
	alignas(RIPEN_CACHELINE) _Atomic uint64_t timer_submitted[RIPEN_MSLOTS];
	_Atomic uint64_t timer_cancelled[RIPEN_MSLOTS];
	/* rebalancer only: how late its timed wake-ups were */
	alignas(RIPEN_CACHELINE) struct ripen__hist lateness;
	/* labels and edges, under `lock` */
	pthread_mutex_t lock;
	char *names[RIPEN_MAX_CLASSES];
	double *edges;			/* sorted, seconds: the default plus user ones */
	size_t nedges, nuser;
	char pool_name[128];
	bool on;			/* histograms recorded (!opts.metrics_off) */
};

static inline unsigned ripen__mslot(uint32_t class_id)
{
	return class_id < RIPEN_MAX_CLASSES ? class_id : RIPEN_MSLOT_OTHER;
}

static inline unsigned ripen__hbucket(uint64_t ns)
{
	uint64_t u = ns >> RIPEN_H_UNIT_SHIFT;
	unsigned e, i;

	if (u < RIPEN_H_SUB)
		return (unsigned)u;
	e = 63u - (unsigned)__builtin_clzll(u); /* >= RIPEN_H_SUB_BITS */
	i = (e - RIPEN_H_SUB_BITS + 1u) * RIPEN_H_SUB +
	    (unsigned)((u >> (e - RIPEN_H_SUB_BITS)) & (RIPEN_H_SUB - 1u));
	return i < RIPEN_H_BUCKETS ? i : RIPEN_H_BUCKETS - 1u;
}

/* Bucket i covers [lo, hi) ns; the last one's hi is UINT64_MAX. */
void ripen__hbucket_bounds(unsigned i, uint64_t *lo, uint64_t *hi);

/* Single writer: relaxed loads and stores, no locked RMW. */
static inline void ripen__hist_add(struct ripen__hist *h, uint64_t ns)
{
	_Atomic uint64_t *b = &h->b[ripen__hbucket(ns)];

	/* relaxed: the one writer; readers sum whatever they see (pairs
	 * with nothing: monitoring, exact once the pool is quiet) */
	atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&h->sum_ns, atomic_load_explicit(&h->sum_ns, memory_order_relaxed) + ns,
			      memory_order_relaxed);
	if (ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
		atomic_store_explicit(&h->max_ns, ns, memory_order_relaxed);
}

/*
 * The recording's clock (metrics.c, "The clock"): CLOCK_MONOTONIC ns, read
 * as the TSC scaled from a per-worker anchor that is re-read through the
 * vDSO every millisecond, where the kernel's own clock is the TSC (the
 * clocksource "tsc", or "kvm-clock" served by the vDSO) and its rate keeps
 * to the calibration; the vDSO clock everywhere else.
 */
extern double ripen__ns_per_tick;	/* 0: no usable TSC */
extern uint64_t ripen__tick_mult;	/* ns per tick in 32.32 fixed point */
extern uint64_t ripen__anchor_ticks;	/* re-anchor after this many ticks; 0: no TSC */
uint64_t ripen__m_now_slow(struct ripen__worker *w);
/* Is the recording clock the TSC now (false once a rate check failed)? */
bool ripen__clock_tsc(void);

#if defined(__x86_64__)
#ifdef RIPEN_FAULT_INJECTION
#define ripen__rdtsc() ripen__rdtsc_bent() /* fault-internal.h */
#else
#define ripen__rdtsc() __builtin_ia32_rdtsc()
#endif
#endif

/*
 * One unsigned compare on the fast path: the worker's anchor_win is 0
 * until its first re-anchor and whenever the TSC is not used, so every
 * read then takes the slow call (the vDSO). The scaling is fixed point:
 * d < anchor_win (a millisecond of ticks), so d * mult stays near
 * 1e6 * 2^32 < 2^63 at any TSC rate; the double conversions it replaces
 * cost 7 more instructions a read (callgrind).
 */
static inline uint64_t ripen__m_now(struct ripen__worker *w)
{
#if defined(__x86_64__)
	uint64_t d = ripen__rdtsc() - w->anchor_tsc;

	if (ripen__likely(d < w->anchor_win)) /* else stale, behind, or no TSC */
		return w->anchor_ns + ((d * ripen__tick_mult) >> 32);
	return ripen__m_now_slow(w);
#else
	(void)w;
	return ripen__now_ns();
#endif
}

/* When a task became ready: its release for timed tasks, else its submit. */
static inline uint64_t ripen__ready_ns(struct ripen_task *t)
{
	const struct ripen__timed *tm = ripen__task_timed(t);

	/* release_ns is written under timer_lock before the release that
	 * made t claimable, and not again until this run re-arms it */
	return tm != NULL ? tm->release_ns : t->seq;
}

/* Worker w starts t: count it, record its wait. `stamp`: the start time
 * when the caller has one (worker.c, the boundary stamp), else 0: read
 * the clock. Returns the start time for ripen__m_ran (0 when histograms
 * are off). Owner only. */
static inline uint64_t ripen__m_started(struct ripen__worker *w, struct ripen__mclass *mc,
					struct ripen_task *t, uint64_t stamp)
{
	uint64_t now, ready;

	/* release: a reader that sees this start (acquire) sees its submit
	 * counted, so queued = submitted - started never goes negative */
	atomic_store_explicit(&mc->started, atomic_load_explicit(&mc->started, memory_order_relaxed) + 1,
			      memory_order_release);
	if (!w->metrics_on)
		return 0;
	now = stamp != 0 ? stamp : ripen__m_now(w);
	ready = ripen__ready_ns(t);
	ripen__hist_add(&mc->wait, now > ready ? now - ready : 0);
	return now | 1u; /* never 0 */
}

/* The task that started at t0 has returned: record its run time. Returns
 * the end time (0 when histograms are off). */
static inline uint64_t ripen__m_ran(struct ripen__worker *w, struct ripen__mclass *mc, uint64_t t0)
{
	uint64_t now;

	if (t0 == 0)
		return 0;
	now = ripen__m_now(w);
	ripen__hist_add(&mc->run, now > t0 ? now - t0 : 0);
	return now | 1u; /* never 0 */
}

static inline struct ripen__mclass *ripen__m_class(struct ripen__worker *w,
						   const struct ripen_task *t)
{
	return &w->m->cls[ripen__mslot(ripen__task_class(t))];
}

/* A task of class c accepted from this worker's task (owner only). */
static inline void ripen__m_local_submitted(struct ripen__worker *w, uint32_t c)
{
	_Atomic uint64_t *s = &w->m->cls[ripen__mslot(c)].submitted;

	/* relaxed: single writer; the task's publication orders it before
	 * its start (see ripen__m_started) */
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* A task of class c accepted into w's inbox by a thread that is not one
 * of the pool's workers. */
static inline void ripen__m_ext_submitted(struct ripen__worker *w, uint32_t c)
{
	/* relaxed: counted before the enqueue that publishes the task */
	atomic_fetch_add_explicit(&w->m->ext_submitted[ripen__mslot(c)], 1, memory_order_relaxed);
}

static inline void ripen__m_rejected(struct ripen_pool *pool, uint32_t c)
{
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->metrics->rejected[ripen__mslot(c)], 1, memory_order_relaxed);
}

/* Is class c shed now (a RIPEN_WATCH_SHED watcher firing)? Any thread. */
static inline bool ripen__m_shedding(struct ripen_pool *pool, uint32_t c)
{
	unsigned s = ripen__mslot(c);

	/* relaxed: a flag the watchers flip; a submit racing a flip may go
	 * either way */
	return (atomic_load_explicit(&pool->shed_mask[s / 64u], memory_order_relaxed) >>
		(s % 64u)) & 1u;
}

static inline void ripen__m_shed(struct ripen_pool *pool, uint32_t c)
{
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&pool->metrics->shed[ripen__mslot(c)], 1, memory_order_relaxed);
}

/* timer_lock held: a release, or a cancel while in the timer heap. */
static inline void ripen__m_timer_count(_Atomic uint64_t *a, uint32_t c)
{
	_Atomic uint64_t *x = &a[ripen__mslot(c)];

	/* relaxed: the lock makes this thread the one writer */
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* A cancel of a class-c task counted on the out-side (accounting.c). */
void ripen__m_cancelled(struct ripen_pool *pool, struct ripen__worker *self, uint32_t c);

/* Pool creation and teardown (pool.c). */
int ripen__metrics_init(struct ripen_pool *pool, const char *name, bool on);
void ripen__metrics_fini(struct ripen_pool *pool);
/* The rebalancer woke `late_ns` after its planned time. */
void ripen__m_lateness(struct ripen_pool *pool, uint64_t late_ns);

/* Per-class sums over every writer (metrics.c). */
struct ripen__csnap {
	uint64_t submitted, started, cancelled, rejected, shed;
	uint64_t wait_n, run_n;
	uint64_t wait_sum, wait_max, run_sum, run_max;
	uint64_t *wait_b, *run_b;	/* RIPEN_H_BUCKETS each, or NULL: counts only */
};
void ripen__m_snapshot(struct ripen_pool *pool, unsigned slot, struct ripen__csnap *s);
/* Value at quantile q of buckets b (count n): the midpoint of the bucket
 * holding rank ceil(q n), clamped to max_ns. 0 for n = 0. */
uint64_t ripen__hist_quantile(const uint64_t *b, uint64_t n, uint64_t max_ns, double q);
/* Summed histogram of one class over the workers (watchers). */
void ripen__m_sum_wait(struct ripen_pool *pool, unsigned slot, uint64_t *b, uint64_t *sum,
		       uint64_t *n);
uint64_t ripen__m_started_total(struct ripen_pool *pool, unsigned slot);

#endif
