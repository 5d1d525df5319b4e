/*
 * Per-class recording: what each business class waits and runs.
 *
 * A policy that seems to change things and has no effect is the failure
 * this project exists to prevent, so the pool records, for every class,
 * how many of its tasks were submitted, started, cancelled, rejected and
 * shed, and two histograms: the wait (submit to start; for delayed and
 * periodic tasks, release time to start, so the rebalancer's lateness in
 * releasing them is part of the wait, as the user sees it) and the run
 * (start to return).
 *
 * Layout. The worker that runs a task records it in its own block: a
 * struct ripen__mclass per class slot, each starting on its own cache line,
 * written by that worker alone with relaxed loads and stores (no locked
 * read-modify-write: ripen__bump's pattern), read by anyone who sums the
 * blocks (Tokio's per-worker metrics blocks, runtime/metrics/worker.rs, do
 * the same). A block is one anonymous mmap of about 300 KB: 65 slots times
 * two histograms of 280 buckets. Its pages stay zero pages, which cost no
 * memory, until a class is first used, so a pool that uses three classes
 * touches a few pages per worker. Classes at or beyond RIPEN_MAX_CLASSES
 * share the last slot, "other": a large id is never an error.
 *
 * What the worker cannot count itself is counted where it happens:
 * external submits with one relaxed RMW on the target worker's
 * ext_submitted[class] (submit does a seq_cst RMW on that worker's
 * inbox_in anyway; only producers that feed one worker with one class
 * share the line), releases and cancels of timed tasks under timer_lock,
 * and the rare ones (cancels from outside, rejects, sheds) with relaxed
 * RMWs on pool-wide arrays. The counts mirror ripen_pool_stats exactly
 * (accounting.c's in- and out-sides), so that per class, once quiet,
 * submitted = started + cancelled + queued.
 *
 * Histograms are log-linear (HdrHistogram's layout; Go's runtime uses the
 * same idea with 4 sub-buckets, 25% error): 64 ns units, 8 sub-buckets
 * per power of two, so every bucket above 512 ns spans at most 12.5% of
 * its lower bound, up to 2^43 ns (2.4 hours; the last bucket is open
 * above). Quantiles read the midpoint of the bucket that holds the rank
 * (within 6.25%), clamped to the exact maximum; sum, mean and max are
 * exact. A histogram's count is the sum of its buckets, so a reader's
 * cumulative buckets are monotone and end at the count by construction.
 *
 * The clock: two reads per task, at the start and at the return. The
 * submit time is already there (a task's `seq` is its submit time on
 * CLOCK_MONOTONIC), and so is a timed task's release time, so the wait
 * costs one read and the run one more. Through the vDSO those two reads
 * cost the empty-task benchmark 8% of its rate (bench_submit's
 * MetricsCost, on/off 0.92 on the 2-core development machine): the vDSO
 * reads the TSC with a fence and a seqlock around it. So where the kernel
 * itself keeps time by the TSC (clocksource "tsc": invariant and
 * synchronised across CPUs, or the kernel would have switched away; or
 * "kvm-clock" served by the vDSO, the TSC as the host scales it: see
 * tsc_source), the recording reads the TSC directly and scales it from a
 * per-worker anchor: a (TSC, CLOCK_MONOTONIC) pair re-read through the
 * vDSO once a millisecond of ticks has passed, at the rate calibrated once
 * per process over 2 ms, in 32.32 fixed point (a double conversion each
 * way cost 7 instructions a read more; callgrind, ripen-cg-driver fib 20
 * vs 21: 919 -> 879 a task). The error against CLOCK_MONOTONIC stays
 * within the rate's calibration error times one millisecond (about 20 ns)
 * plus NTP's slew over that millisecond (500 ns at the kernel's 0.05%
 * frequency limit, 5 us while an offset is slewed at 0.5%); a wait
 * that comes out below 0 from that is 0. Each worker also checks the
 * TSC's rate against CLOCK_MONOTONIC_RAW over 16 ms or more and, should
 * they disagree by 0.2% twice in a row, gives the TSC up for the process
 * (rate_holds). Elsewhere (no such TSC, other CPUs) the vDSO read is
 * used. metrics_off skips both reads and the histogram writes; the
 * per-class counts stay. Even so, rdtsc alone costs 13 ns on the Intel
 * VM, a sixth of a spawn's whole time: a worker that goes straight from
 * one task to the next starts it at the last one's end stamp, one read a
 * task fewer (worker.c, run_fn: the boundary stamp).
 *
 * On the 2-vCPU AMD EPYC VMs here (kvm-clock, booted tsc=unstable) the
 * vDSO read costs 27 ns against rdtsc's 11, and a spawned task makes two:
 * trusting kvm-clock's TSC took the fib(29) spawn tree (bench_workloads
 * Ripen_SpawnTree) from 170-175 to 90-91 ms at 1 worker and from 262-268
 * to 190-193 ms at 2, against oneTBB's 59-64 and 133-139 in the same runs.
 * Valgrind gives its guest no vDSO, so under callgrind kvm-clock is a
 * system call and the TSC is not trusted: RIPEN_METRICS_TSC=1 skips the
 * checks, for instruction counts of the path that runs natively.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault-internal.h"
#include "metrics-internal.h"
#include "watch-internal.h"

static const double default_edges[] = {
	0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
#define RIPEN_N_DEFAULT_EDGES (sizeof(default_edges) / sizeof(default_edges[0]))
#define RIPEN_MAX_USER_EDGES 16u

static _Atomic uint32_t pool_counter;

/* ------------------------------------------------------------ the clock */

double ripen__ns_per_tick;
uint64_t ripen__tick_mult;
uint64_t ripen__anchor_ticks;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

static uint64_t tight_ticks;	/* 2 us of ticks: a tight (TSC, ns) pair */
static double raw_ns_per_tick;	/* the rate against CLOCK_MONOTONIC_RAW (rate_holds) */
static bool tsc_forced;		/* RIPEN_METRICS_TSC (calibrate) */
/* a worker's rate check failed: every worker reads the vDSO from now on */
static _Atomic bool tsc_off;

#if defined(__x86_64__)
#include <cpuid.h>

enum tsc_source { TSC_NO, TSC_KERNEL, TSC_KVM };

/*
 * Does the kernel keep time by an invariant TSC? Either directly (the
 * clocksource "tsc": the kernel checked that the CPUs' TSCs agree, or it
 * would have switched away), or through kvm-clock, which is the guest's
 * TSC scaled by the host. The vDSO serves kvm-clock only where the host
 * marks it stable (PVCLOCK_TSC_STABLE_BIT; Linux, arch/x86/kernel/
 * kvmclock.c), else each read is a system call; and KVM marks it stable
 * only in its "master clock" mode, which needs the host's clock on the TSC
 * and every vCPU's TSC matched (arch/x86/kvm/x86.c,
 * pvclock_update_vm_gtod_copy). So for kvm-clock calibrate() also checks
 * that the reads are vDSO-fast. Such a guest may be booted with
 * tsc=unstable all the same (the 2-vCPU AMD VMs here are, for snapshots):
 * a snapshot's jump in the TSC is a read outside the anchor's window, and
 * a change of rate is what rate_holds() catches. Should the host drop the
 * mode later (a migration), vCPUs whose TSCs then differ move a stamp of a
 * worker that moved between them by at most the window, a millisecond; an
 * offset over 36 us (at the shortest check, 16 ms; more for longer ones)
 * also fails the rate check of a worker that moves between its two pairs.
 */
static enum tsc_source tsc_source(void)
{
	unsigned a, b, c, d;
	char src[32] = "";
	size_t len;
	FILE *f;

	if (getenv("RIPEN_METRICS_VDSO") != NULL)
		return TSC_NO; /* for comparisons: the vDSO clock throughout */
	if (!__get_cpuid(0x80000007u, &a, &b, &c, &d) || !(d & (1u << 8)))
		return TSC_NO; /* no invariant TSC */
	f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f == NULL)
		return TSC_NO;
	if (fgets(src, sizeof(src), f) == NULL)
		src[0] = '\0';
	fclose(f);
	len = strcspn(src, "\n");
	if (len == 3 && strncmp(src, "tsc", 3) == 0)
		return TSC_KERNEL;
	if (len == 9 && strncmp(src, "kvm-clock", 9) == 0)
		return TSC_KVM;
	return TSC_NO;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * A (TSC, clock `id`) pair: the TSC at the midpoint of the clock read. The
 * best of `tries` reads, or the first that spans at most `good` ticks;
 * returns the ticks it spans (a migration between the reads can make the
 * second TSC read the smaller: UINT64_MAX).
 */
static uint64_t read_pair(clockid_t id, uint64_t *tsc, uint64_t *ns, int tries, uint64_t good)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < tries && best > good; i++) {
		uint64_t c0 = ripen__rdtsc(), n = clock_ns(id), c1 = ripen__rdtsc();

		if (c1 >= c0 && c1 - c0 < best) {
			best = c1 - c0;
			*tsc = c0 + (c1 - c0) / 2;
			*ns = n;
		} else if (i == 0) {
			*tsc = c0;
			*ns = n;
		}
	}
	return best;
}

/*
 * Is CLOCK_MONOTONIC served by the vDSO, not by a system call? Compared,
 * not against a fixed cost, so that it holds under valgrind too: a vDSO
 * read costs 20-60 ns, a system call 0.3-1.2 us (measured on the VMs
 * here); the best of 8 rounds each, as preemption only adds. Where system
 * calls cost little (~100 ns) this can say no to a vDSO read: the vDSO
 * clock is then used, the slower and safe side.
 */
static bool vdso_serves(void)
{
	uint64_t best_v = UINT64_MAX, best_s = UINT64_MAX;

	for (int r = 0; r < 8; r++) {
		struct timespec ts;
		uint64_t t0 = ripen__now_ns(), t1, t2;

		for (int i = 0; i < 8; i++)
			(void)ripen__now_ns();
		t1 = ripen__now_ns();
		for (int i = 0; i < 8; i++)
			(void)syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
		t2 = ripen__now_ns();
		if (t1 - t0 < best_v)
			best_v = t1 - t0;
		if (t2 - t1 < best_s)
			best_s = t2 - t1;
	}
	return best_v * 3u < best_s;
}

static void calibrate(void)
{
	enum tsc_source src = tsc_source();
	uint64_t n0, c0, n1, c1, s0, s1, r0, cr0, r1, cr1, sr0, sr1;

	if (src == TSC_NO)
		return;
	/* RIPEN_METRICS_TSC: trust the TSC without the checks (the vDSO's, the
	 * pairs' spreads, the rate), for callgrind's instruction counts of the
	 * path that runs natively: valgrind has no vDSO, its clock reads are
	 * slow system calls, and its pairs are loose. Never for production. */
	tsc_forced = getenv("RIPEN_METRICS_TSC") != NULL;
	if (src == TSC_KVM && !tsc_forced && !vdso_serves())
		return;
	/* the best of 8 pairs of each clock at each end of 2 ms: a pair's
	 * spread errs a rate by at most half of it over 2 ms at each end;
	 * spreads of 4 us together or less keep that within 0.1% (half the
	 * rate check's margin), else no TSC */
	if ((s0 = read_pair(CLOCK_MONOTONIC, &c0, &n0, 8, 0)) == UINT64_MAX ||
	    (sr0 = read_pair(CLOCK_MONOTONIC_RAW, &cr0, &r0, 8, 0)) == UINT64_MAX)
		return;
	do
		n1 = ripen__now_ns();
	while (n1 - n0 < 2000000u);
	if ((s1 = read_pair(CLOCK_MONOTONIC, &c1, &n1, 8, 0)) == UINT64_MAX ||
	    (sr1 = read_pair(CLOCK_MONOTONIC_RAW, &cr1, &r1, 8, 0)) == UINT64_MAX ||
	    c1 <= c0 || cr1 <= cr0 || r1 <= r0)
		return;
	{
		double r = (double)(n1 - n0) / (double)(c1 - c0);

		if (!(r > 0.01 && r < 100)) /* 10 MHz .. 100 GHz, else not a TSC we know */
			return;
		if (!tsc_forced && ((double)(s0 + s1) * r > 4000.0 || (double)(sr0 + sr1) * r > 4000.0))
			return;
		raw_ns_per_tick = (double)(r1 - r0) / (double)(cr1 - cr0);
		ripen__ns_per_tick = r;
		ripen__tick_mult = (uint64_t)(r * 4294967296.0 + 0.5);
		ripen__anchor_ticks = (uint64_t)(1e6 / r); /* one millisecond */
		tight_ticks = (uint64_t)(2000.0 / r);
	}
}

/*
 * Does the TSC still keep the calibrated rate? Each worker keeps a
 * reference pair of TSC and CLOCK_MONOTONIC_RAW (no NTP slew in it: an
 * NTP daemon correcting an offset slews CLOCK_MONOTONIC by up to 0.5%
 * (chrony's default limit is higher still), and a process calibrated
 * during such a slew would then fail every check after it) and, at a
 * re-anchor at least 16 ms later, compares the ticks since with the raw
 * nanoseconds since, at the raw rate calibrated with the other. Two tight
 * pairs err by at most 4 us together, 0.025% of 16 ms; a disagreement
 * beyond 1/512 (0.2%) of the interval is the TSC's. One is forgiven: a
 * suspended or stopped machine whose TSC ran on while the clock did not
 * (or the other way) fails one check across the gap and passes the next.
 * Two in a row (a migrated VM on a host of another rate, a TSC that keeps
 * going back), and the recording falls back to the vDSO for good. A rate
 * within 0.2% moves a stamp by at most 2 us in the millisecond of an
 * anchor.
 */
#define RATE_CHECK_NS 16000000u

static bool rate_holds(struct ripen__worker *w, uint64_t tsc, uint64_t raw)
{
	uint64_t dn = raw - w->rate_raw, dc = tsc - w->rate_tsc;
	double exp_ns, err;

	if (w->rate_raw == 0) {
		w->rate_tsc = tsc;
		w->rate_raw = raw;
		return true;
	}
	if (dn < RATE_CHECK_NS)
		return true; /* too short to judge */
	w->rate_tsc = tsc;
	w->rate_raw = raw;
	/* a TSC that went back makes dc wrap: far off, a failure */
	exp_ns = (double)dc * raw_ns_per_tick;
	err = exp_ns > (double)dn ? exp_ns - (double)dn : (double)dn - exp_ns;
	if (err <= (double)dn / 512.0 + 4000.0) {
		w->rate_fails = 0;
		return true;
	}
	return ++w->rate_fails < 2;
}

/*
 * The fast path's read missed: re-anchor from a tight pair, check the
 * rate, and open the worker's window. No tight pair in four tries (the
 * thread was preempted or moved between the reads): the vDSO read is the
 * answer and the window stays shut, so the next read tries again. Or no
 * TSC at all.
 */
uint64_t ripen__m_now_slow(struct ripen__worker *w)
{
	uint64_t tsc, raw;
	bool tight, holds = true;

	/* relaxed: a flag with no data behind it; pairs with the store below */
	if (ripen__anchor_ticks == 0 || atomic_load_explicit(&tsc_off, memory_order_relaxed)) {
		w->anchor_win = 0;
		return ripen__now_ns();
	}
	/* tight: within 2 us, as the rate check's error bound assumes */
	tight = read_pair(CLOCK_MONOTONIC, &w->anchor_tsc, &w->anchor_ns, 4, tight_ticks) <=
		tight_ticks;
	/* a rate check at most every 16 ms: one more read, of the raw clock */
	if (tight && !tsc_forced && w->anchor_ns >= w->rate_next &&
	    read_pair(CLOCK_MONOTONIC_RAW, &tsc, &raw, 4, tight_ticks) <= tight_ticks) {
		w->rate_next = w->anchor_ns + RATE_CHECK_NS;
		holds = rate_holds(w, tsc, raw);
	}
	if (!holds) {
		/* relaxed: pairs with the load above; each worker sees it at
		 * its next re-anchor, within a millisecond of ticks */
		atomic_store_explicit(&tsc_off, true, memory_order_relaxed);
		w->anchor_win = 0;
		return w->anchor_ns;
	}
	w->anchor_win = tight || tsc_forced ? ripen__anchor_ticks : 0;
	return w->anchor_ns;
}
#else
static void calibrate(void)
{
}
#endif

bool ripen__clock_tsc(void)
{
	pthread_once(&clock_once, calibrate);
	/* relaxed: pairs with m_now_slow's store; a test's snapshot */
	return ripen__anchor_ticks != 0 && !atomic_load_explicit(&tsc_off, memory_order_relaxed);
}

void ripen__hbucket_bounds(unsigned i, uint64_t *lo, uint64_t *hi)
{
	unsigned e, sub;

	if (i < RIPEN_H_SUB) {
		*lo = (uint64_t)i << RIPEN_H_UNIT_SHIFT;
		*hi = (uint64_t)(i + 1) << RIPEN_H_UNIT_SHIFT;
		return;
	}
	e = i / RIPEN_H_SUB + RIPEN_H_SUB_BITS - 1u;
	sub = i % RIPEN_H_SUB;
	*lo = ((uint64_t)(RIPEN_H_SUB + sub) << (e - RIPEN_H_SUB_BITS)) << RIPEN_H_UNIT_SHIFT;
	*hi = i == RIPEN_H_BUCKETS - 1u ? UINT64_MAX :
	      ((uint64_t)(RIPEN_H_SUB + sub + 1) << (e - RIPEN_H_SUB_BITS)) << RIPEN_H_UNIT_SHIFT;
}

uint64_t ripen__hist_quantile(const uint64_t *b, uint64_t n, uint64_t max_ns, double q)
{
	uint64_t rank, cum = 0;

	if (n == 0)
		return 0;
	if (!(q > 0))
		q = 0;
	if (q > 1)
		q = 1;
	rank = (uint64_t)(q * (double)n);
	if ((double)rank < q * (double)n)
		rank++; /* ceil */
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < RIPEN_H_BUCKETS; i++) {
		cum += b[i];
		if (cum >= rank) {
			uint64_t lo, hi, mid;

			ripen__hbucket_bounds(i, &lo, &hi);
			mid = hi == UINT64_MAX ? lo : lo + (hi - lo) / 2;
			return mid < max_ns ? mid : max_ns;
		}
	}
	return max_ns; /* a racing reader saw a short sum */
}

int ripen__metrics_init(struct ripen_pool *pool, const char *name, bool on)
{
	struct ripen__metrics *m = RIPEN_FAULT(RIPEN_FAULT_POOL_ALLOC) ? NULL :
		aligned_alloc(RIPEN_CACHELINE, (sizeof(*m) + RIPEN_CACHELINE - 1) &
					       ~(size_t)(RIPEN_CACHELINE - 1));
	double one = 1.0;
	uint64_t one_bits;

	if (m == NULL)
		return -ENOMEM;
	memset(m, 0, sizeof(*m));
	memcpy(&one_bits, &one, sizeof(one_bits));
	for (unsigned i = 0; i < RIPEN_MSLOTS; i++)
		atomic_init(&m->factor_bits[i], one_bits);
	m->edges = malloc((RIPEN_N_DEFAULT_EDGES + RIPEN_MAX_USER_EDGES) * sizeof(double));
	if (m->edges == NULL) {
		free(m);
		return -ENOMEM;
	}
	memcpy(m->edges, default_edges, sizeof(default_edges));
	m->nedges = RIPEN_N_DEFAULT_EDGES;
	if (name != NULL && name[0] != '\0')
		snprintf(m->pool_name, sizeof(m->pool_name), "%s", name);
	else
		/* relaxed: a unique number is all that is needed */
		snprintf(m->pool_name, sizeof(m->pool_name), "ripen%u",
			 atomic_fetch_add_explicit(&pool_counter, 1, memory_order_relaxed) + 1);
	m->on = on;
	/* also when off: a worker's submits read the same clock (pool.c) */
	pthread_once(&clock_once, calibrate);
	pthread_mutex_init(&m->lock, NULL);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__worker *w = &pool->workers[i];
		void *p = mmap(NULL, sizeof(struct ripen__wmetrics), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			pool->metrics = m;
			ripen__metrics_fini(pool);
			return -ENOMEM;
		}
		w->m = p; /* zero pages: every counter starts at 0 */
		w->metrics_on = on;
	}
	pool->metrics = m;
	return 0;
}

void ripen__metrics_fini(struct ripen_pool *pool)
{
	struct ripen__metrics *m = pool->metrics;

	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__worker *w = &pool->workers[i];

		if (w->m != NULL)
			munmap(w->m, sizeof(struct ripen__wmetrics));
		w->m = NULL;
	}
	if (m == NULL)
		return;
	for (unsigned i = 0; i < RIPEN_MAX_CLASSES; i++)
		free(m->names[i]);
	free(m->edges);
	pthread_mutex_destroy(&m->lock);
	free(m);
	pool->metrics = NULL;
}

void ripen__m_cancelled(struct ripen_pool *pool, struct ripen__worker *self, uint32_t c)
{
	unsigned s = ripen__mslot(c);

	if (self != NULL && self->pool == pool) {
		_Atomic uint64_t *x = &self->m->cls[s].cancelled;

		/* relaxed: single writer (the worker) */
		atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	} else {
		/* relaxed: statistics */
		atomic_fetch_add_explicit(&pool->metrics->ext_cancelled[s], 1, memory_order_relaxed);
	}
}

void ripen__m_lateness(struct ripen_pool *pool, uint64_t late_ns)
{
	ripen__hist_add(&pool->metrics->lateness, late_ns);
}

/* relaxed loads throughout the readers: monitoring sums, exact once quiet */
static uint64_t ld(_Atomic uint64_t *x)
{
	return atomic_load_explicit(x, memory_order_relaxed);
}

void ripen__m_snapshot(struct ripen_pool *pool, unsigned slot, struct ripen__csnap *s)
{
	struct ripen__metrics *m = pool->metrics;
	uint64_t *wb = s->wait_b, *rb = s->run_b;

	memset(s, 0, sizeof(*s));
	s->wait_b = wb;
	s->run_b = rb;
	if (wb != NULL)
		memset(wb, 0, RIPEN_H_BUCKETS * sizeof(uint64_t));
	if (rb != NULL)
		memset(rb, 0, RIPEN_H_BUCKETS * sizeof(uint64_t));
	/* started first, with acquire (pairs with the release in
	 * ripen__m_started): every start we count has its submit counted
	 * in what we read after it */
	for (unsigned i = 0; i < pool->nworkers; i++)
		s->started += atomic_load_explicit(&pool->workers[i].m->cls[slot].started,
						   memory_order_acquire);
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__wmetrics *wm = pool->workers[i].m;
		struct ripen__mclass *mc = &wm->cls[slot];

		s->submitted += ld(&mc->submitted) + ld(&wm->ext_submitted[slot]);
		s->cancelled += ld(&mc->cancelled);
		if (wb == NULL)
			continue;
		for (unsigned k = 0; k < RIPEN_H_BUCKETS; k++) {
			uint64_t x = ld(&mc->wait.b[k]), y = ld(&mc->run.b[k]);

			wb[k] += x;
			s->wait_n += x;
			rb[k] += y;
			s->run_n += y;
		}
		s->wait_sum += ld(&mc->wait.sum_ns);
		s->run_sum += ld(&mc->run.sum_ns);
		if (ld(&mc->wait.max_ns) > s->wait_max)
			s->wait_max = ld(&mc->wait.max_ns);
		if (ld(&mc->run.max_ns) > s->run_max)
			s->run_max = ld(&mc->run.max_ns);
	}
	s->cancelled += ld(&m->ext_cancelled[slot]) + ld(&m->timer_cancelled[slot]);
	/* a timed task cancelled in the timer heap counts as submitted and
	 * cancelled, as in ripen_pool_stats */
	s->submitted += ld(&m->timer_submitted[slot]) + ld(&m->timer_cancelled[slot]);
	s->rejected = ld(&m->rejected[slot]);
	s->shed = ld(&m->shed[slot]);
}

void ripen__m_sum_wait(struct ripen_pool *pool, unsigned slot, uint64_t *b, uint64_t *sum,
		       uint64_t *n)
{
	memset(b, 0, RIPEN_H_BUCKETS * sizeof(uint64_t));
	*sum = 0;
	*n = 0;
	for (unsigned i = 0; i < pool->nworkers; i++) {
		struct ripen__hist *h = &pool->workers[i].m->cls[slot].wait;

		for (unsigned k = 0; k < RIPEN_H_BUCKETS; k++) {
			uint64_t x = ld(&h->b[k]);

			b[k] += x;
			*n += x;
		}
		*sum += ld(&h->sum_ns);
	}
}

uint64_t ripen__m_started_total(struct ripen_pool *pool, unsigned slot)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < pool->nworkers; i++)
		n += ld(&pool->workers[i].m->cls[slot].started);
	return n;
}
