/*
 * Dispatch order, checked only where the design fixes it under any
 * scheduling: one worker runs in exact score order, FIFO on ties; two
 * workers with one held inside a task run in the order the stealing
 * mechanism dictates, step by step, with a rank error bounded by
 * construction. How close a free-running pool comes to the exact order
 * depends on the host's scheduling: a benchmark figure (bench_quality),
 * printed here, never asserted.
 */
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "rank.h"
#include "ripen.h"

static atomic_uint start_pos;
static unsigned *started;	/* started[pos] = task id */

static void stamp_fn(void *arg)
{
	started[atomic_fetch_add(&start_pos, 1)] = (unsigned)(uintptr_t)arg;
}

static struct ripen_pool *paused_pool(unsigned workers, bool pin)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p;

	o.workers = workers;
	o.pin_workers = pin;
	o.start_paused = true;
	CHECK_OK(ripen_pool_create(&o, &p));
	return p;
}

static void one_worker_runs_in_exact_order(void)
{
	const unsigned n = 20000;
	double *base = calloc(n, sizeof(double));
	struct ripen_pool *p = paused_pool(1, false);
	uint64_t rng = 99;

	started = calloc(n, sizeof(unsigned));
	atomic_store(&start_pos, 0);
	for (unsigned i = 0; i < n; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.base = base[i] = (double)(test_rand(&rng) % 64) - 20.0; /* many ties, negatives */
		CHECK_OK(ripen_submit(p, stamp_fn, (void *)(uintptr_t)i, &o, NULL));
	}
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	CHECK_EQ(atomic_load(&start_pos), n);
	for (unsigned k = 1; k < n; k++) {
		unsigned a = started[k - 1], b = started[k];

		if (!(base[a] > base[b] || (base[a] == base[b] && a < b)))
			check_fail(__FILE__, __LINE__,
				   "position %u: task %u (base %g) ran before task %u (base %g)",
				   k, a, base[a], b, base[b]);
	}
	ripen_pool_destroy(p);
	free(started);
	free(base);
}

/*
 * FIFO on ties, on its own: every task has the same score, so submit order
 * is the only order (the heap's FIFO run, prioq.c); then two scores,
 * submitted alternately, and in two halves with the better one second,
 * which must come out as two FIFO runs, the better one first. One worker:
 * nothing but the queue decides.
 */
static void one_worker_ties_run_fifo(void)
{
	const unsigned n = 20000;

	for (int round = 0; round < 3; round++) {
		struct ripen_pool *p = paused_pool(1, false);

		started = calloc(n, sizeof(unsigned));
		atomic_store(&start_pos, 0);
		for (unsigned i = 0; i < n; i++) {
			struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

			o.base = round == 0 ? 7.0 : round == 1 ? (i % 2 ? 1.0 : -1.0) :
				 (i < n / 2 ? -1.0 : 1.0);
			CHECK_OK(ripen_submit(p, stamp_fn, (void *)(uintptr_t)i, &o, NULL));
		}
		CHECK_OK(ripen_pool_resume(p));
		CHECK_OK(ripen_pool_wait_idle(p, -1));
		CHECK_EQ(atomic_load(&start_pos), n);
		for (unsigned k = 0; k < n; k++) {
			unsigned want = round == 0 ? k : round == 1 ?
					(k < n / 2 ? 2 * k + 1 : 2 * (k - n / 2)) :
					(k < n / 2 ? n / 2 + k : k - n / 2);

			if (started[k] != want)
				check_fail(__FILE__, __LINE__,
					   "round %d, position %u: task %u ran, task %u was due "
					   "(equal scores run in submit order)", round, k, started[k], want);
		}
		ripen_pool_destroy(p);
		free(started);
	}
}

/*
 * Two workers, one held. A setup task, on whichever worker (A) runs it,
 * sends a gate task to the other worker's (B's) inbox and waits until B
 * runs it; then it submits A's tasks, which go straight into A's own heap
 * (a submit from a task does), and the gate does the same with B's. The
 * gate returns; the setup task keeps A inside it, holding no lock, until
 * every task ran; no rebalancer (it merges heaps and rescues tasks). So
 * from then on B is the only thread touching either heap, its try-locks of
 * A's heap cannot fail, and its run order depends on nothing but the
 * mechanism and B's random draws: at each step, one time in 4, B looks at
 * A (its only peer) and, if A's best beats its own, takes the 1st, 3rd, ...
 * of A's entries whose score beats its own best, of at most C = 2 x 32 of
 * them (heap_steal); with an empty heap it does the same with A's best
 * (search). Each task reads the pool's steal counters as it starts, and
 * the replay holds every start to that model: without a steal it is B's
 * best; with one, exactly ceil(min(g, C) / 2) entries moved, g = A's
 * entries with a better score than B's best, and it is A's former best.
 * In every run, exactly.
 *
 * The bound. The ranks, from the top: K = 40 of B's per one of A's
 * (B^K A B^K A ...), then a tail of A's below all of B's, its lower half
 * with one score (ranked by submit order: FIFO on ties has to survive
 * steals taking them out of A's heap and giving every other one back). A
 * start's rank error counts the tasks ranked above it still queued. Let x
 * be the number of A's tasks above B's next own task: the error is x for
 * one of B's own tasks and at most C/2 - 1 for a stolen one (the j-th
 * taken had j of A's above it, and A only loses tasks). x grows by at most
 * 1 per K own starts, and only a steal lowers it: one made while B's best
 * is its own halves it (if x <= C); one made while B still holds stolen
 * tasks follows no own start since the steal before. So if no run of
 * RUN = 160 steps passes with A's best scored above B's and no steal, x is
 * at most C/2 after each steal and C/2 + ceil(RUN / K) = 36 anywhere (8 in
 * a tiny build, where C = 8: K is chosen so that ceil(RUN / K) <= C/2
 * there too): the asserted max. At each of those steps B looks with
 * probability 1/4, independently of the past (its own generator), so such
 * a run has probability < n (3/4)^160 < 1e-16 per round.
 *
 * p2c stealing broken: B stays on its own tasks while A's pile up above
 * them, and the run check fails within a few hundred starts. A steal that
 * takes every entry, or one, fails the count at the tail's first steal.
 */
enum {
	HELD_K = 40,		/* B's tasks per one of A's, in the top part */
	HELD_TOP_A = 100,	/* A's tasks among B's */
	HELD_TAIL = 1000,	/* A's tasks below all of B's, the lower half tied */
	HELD_RUN = 160,		/* steps passing A's better best without a steal */
	HELD_ROUNDS = 3,
	HELD_TOP = HELD_TOP_A * (HELD_K + 1), /* ranks above the tail */
	HELD_TIES = HELD_TOP + HELD_TAIL / 2, /* ranks from here on share a score */
	HELD_N = HELD_TOP + HELD_TAIL,
};
/* the asserted max rank error: C/2 + ceil(RUN / K), valid while ceil(RUN / K) <= C/2 */
#define HELD_BOUND(cap) ((cap) / 2 + (HELD_RUN + HELD_K - 1) / HELD_K)
_Static_assert((HELD_RUN + HELD_K - 1) / HELD_K <= 8 / 2, "K too small for C = 8");
#define HELD_STALL_NS (30 * 1000000000ull) /* no progress: a hang, not a slow host */

struct held_rec {
	unsigned id;		/* = its rank from the top */
	int worker;
	uint64_t steals, moved, inbox; /* the pool's counters as it started */
};

static struct {
	struct ripen_pool *pool;
	atomic_int held_w, free_w;
	atomic_uint phase;	/* 1: gate running; 2: A's heap filled */
	atomic_uint pos, done;
	struct held_rec rec[HELD_N], base_rec; /* base_rec: the counters before */
	uint64_t rng;
} H;

static bool held_is_a(unsigned rank)
{
	return rank >= HELD_TOP || rank % (HELD_K + 1) == HELD_K;
}

/* The score of the task at `rank` (0 is the best): the ties rank by submit order */
static unsigned held_score(unsigned rank)
{
	return rank < HELD_TIES ? HELD_N - rank : 1;
}

static void held_wait(atomic_uint *v, unsigned want, const char *what)
{
	uint64_t t = test_now_ns();
	unsigned seen = 0, now;

	while ((now = atomic_load_explicit(v, memory_order_acquire)) < want) {
		if (now != seen) {
			seen = now;
			t = test_now_ns();
		} else if (test_now_ns() - t > HELD_STALL_NS) {
			check_fail(__FILE__, __LINE__, "%s: %u of %u, none for 30 s", what, now, want);
		}
		test_sleep_ns(1000000); /* a waiting worker leaves the CPUs to B */
	}
}

static void held_counters(struct held_rec *r)
{
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;

	CHECK_OK(ripen_pool_stats(H.pool, &st));
	r->worker = ripen_pool_current_worker(H.pool);
	r->steals = st.steals;
	r->moved = st.stolen_tasks;
	r->inbox = st.inbox_steals;
}

static void held_task(void *arg)
{
	struct held_rec *r = &H.rec[atomic_fetch_add(&H.pos, 1)];

	r->id = (unsigned)(uintptr_t)arg;
	held_counters(r);
	atomic_fetch_add_explicit(&H.done, 1, memory_order_release);
}

static void held_submit(unsigned rank)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

	o.base = held_score(rank);
	CHECK_OK(ripen_submit(H.pool, held_task, (void *)(uintptr_t)rank, &o, NULL));
}

/* Submit the caller's tasks (A's or B's) into its heap: A's ties first, in
 * rank order, the rest in random order. */
static void held_fill(bool a)
{
	unsigned *perm = random_ranks(HELD_N, test_rand(&H.rng));

	for (unsigned r = HELD_TIES; a && r < HELD_N; r++)
		held_submit(r);
	for (unsigned i = 0; i < HELD_N; i++)
		if (perm[i] < HELD_TIES && held_is_a(perm[i]) == a)
			held_submit(perm[i]);
	free(perm);
}

static void held_gate(void *arg)
{
	(void)arg;
	atomic_store(&H.free_w, ripen_pool_current_worker(H.pool));
	atomic_store_explicit(&H.phase, 1, memory_order_release);
	held_wait(&H.phase, 2, "gate: setup task");
	held_fill(false);
	held_counters(&H.base_rec);
}

static void held_setup(void *arg)
{
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	int me = ripen_pool_current_worker(H.pool);

	(void)arg;
	CHECK(me == 0 || me == 1);
	atomic_store(&H.held_w, me);
	o.inbox = (uint32_t)(1 - me) + 1; /* the other worker's inbox */
	CHECK_OK(ripen_submit(H.pool, held_gate, NULL, &o, NULL));
	held_wait(&H.phase, 1, "setup: gate task");
	held_fill(true);
	atomic_store_explicit(&H.phase, 2, memory_order_release);
	held_wait(&H.done, HELD_N, "held worker: tasks run by its peer");
}

struct held_sum {
	unsigned steals, p2c, chances, max_run, max_err, cap;
	double mean_err;
};

/* The steal region: of the g entries above B's best, at most C, where C is
 * 2 * RIPEN_HEAP_STEAL_MAX: 64, or 8 in a -Dtiny build, which this
 * public-API test cannot see; the first steal with more than 8 entries to
 * take shows which (at the latest the tail's first). *cap 0: not known yet. */
static unsigned held_region(unsigned g, uint64_t moved, unsigned *cap)
{
	if (g > 8 && *cap == 0)
		*cap = moved == 4 ? 8 : 64;
	return *cap != 0 && g > *cap ? *cap : g;
}

static void held_replay(struct held_sum *s)
{
	unsigned *a = malloc(HELD_N * sizeof(unsigned)), *own = malloc(HELD_N * sizeof(unsigned));
	unsigned *stack = malloc(HELD_N * sizeof(unsigned)), *take = malloc(HELD_N * sizeof(unsigned));
	unsigned *rank = malloc(HELD_N * sizeof(unsigned)), *order = malloc(HELD_N * sizeof(unsigned));
	bool *gone = calloc(HELD_N, sizeof(bool));
	unsigned na = 0, nown = 0, ahead = 0, optr = 0, sn = 0, run = 0, max_err;
	uint64_t err_sum = 0;
	const struct held_rec *prev = &H.base_rec;
	int bw = atomic_load(&H.free_w);

	CHECK_EQ(atomic_load(&H.held_w) + bw, 1); /* one each */
	for (unsigned r = 0; r < HELD_N; r++) {
		if (held_is_a(r))
			a[na++] = r; /* both lists best first */
		else
			own[nown++] = r;
	}
	for (unsigned k = 0; k < HELD_N; k++) {
		const struct held_rec *c = &H.rec[k];
		unsigned top, ktop, g = 0, err = 0;
		bool empty;
		uint64_t ds = c->steals - prev->steals, dm = c->moved - prev->moved;

		if (c->worker != bw || c->inbox != prev->inbox)
			check_fail(__FILE__, __LINE__, "start %u: task %u ran on worker %d "
				   "(free worker %d), inbox steals %llu -> %llu", k, c->id, c->worker,
				   bw, (unsigned long long)prev->inbox, (unsigned long long)c->inbox);
		while (ahead < na && gone[ahead])
			ahead++;
		top = sn ? stack[sn - 1] : optr < nown ? own[optr] : HELD_N; /* B's best */
		empty = top == HELD_N;
		ktop = empty ? 0 : held_score(top);
		for (unsigned i = ahead; i < na && a[i] < top; i++) {
			err += !gone[i]; /* A's tasks ahead of it */
			g += !gone[i] && held_score(a[i]) > ktop; /* ... with a better score */
		}
		if (ds == 0) {
			if (dm != 0 || empty)
				check_fail(__FILE__, __LINE__, "start %u: %llu tasks moved without a "
					   "steal, B's heap %s", k, (unsigned long long)dm,
					   empty ? "empty" : "not empty");
			if (g > 0 && ++run >= HELD_RUN)
				check_fail(__FILE__, __LINE__, "start %u: B passed over A's better "
					   "best %u steps in a row without a steal (%u of A's above)",
					   k, run, g);
		} else {
			unsigned region, want, m = 0, t = 0;

			if (ds != 1 || g == 0)
				check_fail(__FILE__, __LINE__, "start %u: %llu steals with %u of A's "
					   "tasks above B's best (want 1, and some)", k,
					   (unsigned long long)ds, g);
			region = held_region(g, dm, &s->cap);
			want = (region + 1) / 2; /* the 1st, 3rd, ... */
			if (dm != want)
				check_fail(__FILE__, __LINE__, "start %u: a steal moved %llu tasks of "
					   "the %u above B's best (want every other of at most C = 64, "
					   "8 in a tiny build; here C = %u: %u)", k,
					   (unsigned long long)dm, g, s->cap, want);
			for (unsigned i = ahead; m < region; i++) {
				if (gone[i])
					continue;
				if (m++ % 2 == 0) {
					gone[i] = true;
					take[t++] = a[i];
				}
			}
			while (t > 0)
				stack[sn++] = take[--t]; /* A's best ends on top */
			s->steals++;
			s->p2c += !empty;
			run = 0;
			err = 0; /* A's best was the best of all */
			top = stack[sn - 1];
		}
		if (c->id != top)
			check_fail(__FILE__, __LINE__, "start %u: task %u ran, the model's next "
				   "is %u (%llu steals, %llu moved)", k, c->id, top,
				   (unsigned long long)ds, (unsigned long long)dm);
		if (sn)
			sn--;
		else
			optr++;
		s->chances += g > 0 && !empty;
		if (run > s->max_run)
			s->max_run = run;
		err_sum += err;
		if (err > s->max_err)
			s->max_err = err;
		prev = c;
	}
	CHECK_EQ(sn, 0);
	CHECK_EQ(optr, nown);
	CHECK_NE(s->cap, 0);
	/* the same figures from the start order alone */
	for (unsigned k = 0; k < HELD_N; k++) {
		rank[k] = HELD_N - 1 - k; /* rank_error_replay: 0 = worst */
		order[k] = H.rec[k].id;
	}
	s->mean_err = rank_error_replay(rank, order, HELD_N, &max_err);
	CHECK_EQ(max_err, s->max_err);
	CHECK_EQ((uint64_t)(s->mean_err * HELD_N + 0.5), err_sum);
	CHECK_LE(s->max_err, HELD_BOUND(s->cap));
	free(a);
	free(own);
	free(stack);
	free(take);
	free(rank);
	free(order);
	free(gone);
}

static void held_peer_steals_by_construction(void)
{
	int rounds = (int)(HELD_ROUNDS * test_scale() + 0.99); /* sanitizers: fewer */

	for (int round = 0; round < rounds; round++) {
		struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
		struct held_sum s = { 0 };

		memset(&H, 0, sizeof(H));
		H.rng = 0x5eed + (uint64_t)round;
		atomic_store(&H.held_w, -1);
		atomic_store(&H.free_w, -1);
		o.workers = 2;
		o.rebalance_period_ns = RIPEN_REBALANCE_OFF;
		CHECK_OK(ripen_pool_create(&o, &H.pool));
		CHECK_OK(ripen_submit(H.pool, held_setup, NULL, NULL, NULL));
		CHECK_OK(ripen_pool_wait_idle(H.pool, -1));
		CHECK_EQ(atomic_load_explicit(&H.done, memory_order_acquire), HELD_N);
		held_replay(&s);
		printf("# held peer, round %d: %u tasks, %u steals (%u by p2c, look rate %.2f of "
		       "%u chances), longest run %u, rank error mean %.2f max %u "
		       "(asserted <= %u, C = %u)\n", round, HELD_N, s.steals, s.p2c,
		       s.chances ? (double)s.p2c / s.chances : 0.0, s.chances, s.max_run,
		       s.mean_err, s.max_err, HELD_BOUND(s.cap), s.cap);
		ripen_pool_destroy(H.pool);
	}
}

/*
 * A free-running pool's rank error (how many strictly better tasks were
 * still queued when a task started), for the record: it measures the host
 * as much as the scheduler (a worker descheduled inside its step lets its
 * peers run ahead of its heap), so it is printed, not checked.
 */
static void free_running_rank_error_reported(void)
{
	unsigned n = (unsigned)(50000 * test_scale());
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	for (unsigned w = 2; w <= 4; w *= 2) {
		unsigned *rank = random_ranks(n, 1234 + w), max = 0;
		struct ripen_pool *p = paused_pool(w, w <= ncpu); /* pinned where they fit */
		double mean;

		started = calloc(n, sizeof(unsigned));
		atomic_store(&start_pos, 0);
		for (unsigned i = 0; i < n; i++) {
			struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

			o.base = rank[i]; /* distinct scores */
			CHECK_OK(ripen_submit(p, stamp_fn, (void *)(uintptr_t)i, &o, NULL));
		}
		CHECK_OK(ripen_pool_resume(p));
		CHECK_OK(ripen_pool_wait_idle(p, -1));
		CHECK_EQ(atomic_load(&start_pos), n);
		mean = rank_error_replay(rank, started, n, &max);
		printf("# reported, not checked: workers=%u (%s, %ld CPUs) tasks=%u rank error "
		       "mean=%.2f max=%u\n", w, w <= ncpu ? "pinned" : "unpinned", ncpu, n, mean,
		       max);
		ripen_pool_destroy(p);
		free(started);
		free(rank);
	}
}

TEST_MAIN(T(one_worker_runs_in_exact_order), T(one_worker_ties_run_fifo),
	  T(held_peer_steals_by_construction), T(free_running_rank_error_reported))
