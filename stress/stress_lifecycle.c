/*
 * stress_lifecycle: pools created and destroyed in a loop while submitter
 * threads race shutdown (both modes) and other threads cancel and wait on
 * task handles across the destroy (handles outlive their pool).
 *
 * Ledger per round: an accepted task runs once or is cancelled (DRAIN:
 * always runs); a refused one (-ESHUTDOWN) never runs; pool counters agree.
 * Minimum counts: refused submits and cancels at shutdown across the run.
 *
 *   stress_lifecycle [-w max workers] [-p submitters] [-s seconds] [-S seed] [-n tasks per round]
 */
#include <errno.h>
#include <pthread.h>

#include "stress_common.h"

static struct stress_opts opt = { 4, 3, 2.0, 1, 3000 };

struct round {
	struct ripen_pool *pool;
	struct rec *recs;
	struct ripen_task **h;
	atomic_int go;
	atomic_uint accepted, refused;
};

static void task_fn(void *arg)
{
	rec_run(arg);
}

struct sub_arg {
	struct round *r;
	unsigned first, count;
	uint64_t seed;
};

static void *submitter(void *arg)
{
	struct sub_arg *a = arg;
	struct round *r = a->r;
	uint64_t rng = a->seed;

	while (!atomic_load(&r->go))
		;
	for (unsigned i = 0; i < a->count; i++) {
		unsigned id = a->first + i;
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		bool handle = test_rand(&rng) % 3 == 0;
		int rc;

		r->recs[id].id = id;
		atomic_store(&r->recs[id].magic, REC_LIVE);
		o.base = (double)(test_rand(&rng) % 100);
		rc = ripen_submit(r->pool, task_fn, &r->recs[id], &o, handle ? &r->h[id] : NULL);
		if (rc == 0) {
			atomic_fetch_add(&r->accepted, 1);
			if (handle && test_rand(&rng) % 2 && ripen_task_cancel(r->h[id]) == 0)
				atomic_store(&r->recs[id].cancelled, 1);
		} else {
			CHECK_EQ(rc, -ESHUTDOWN);
			atomic_store(&r->recs[id].cancelled, 2); /* refused: must never run */
			atomic_fetch_add(&r->refused, 1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t rng, t0, rounds = 0, total_refused = 0, total_cancelled = 0, total_run = 0;

	stress_parse(argc, argv, &opt);
	rng = opt.seed;
	printf("stress_lifecycle: up to %u workers, %u submitters, %.1f s, seed %llu, %u tasks a round\n",
	       opt.workers, opt.producers, opt.seconds, (unsigned long long)opt.seed, opt.size);
	t0 = test_now_ns();
	while (test_now_ns() - t0 < opt.seconds * 1e9) {
		struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
		struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
		enum ripen_shutdown how = test_rand(&rng) % 2 ? RIPEN_SHUTDOWN_CANCEL : RIPEN_SHUTDOWN_DRAIN;
		unsigned per = opt.size / opt.producers, n = per * opt.producers;
		struct round r = { 0 };
		struct sub_arg a[16];
		pthread_t th[16];
		uint64_t ran = 0, cancelled = 0;

		if (opt.producers > 16)
			opt.producers = 16;
		r.recs = calloc(n, sizeof(*r.recs));
		r.h = calloc(n, sizeof(*r.h));
		po.workers = 1 + (unsigned)(test_rand(&rng) % opt.workers);
		po.start_paused = test_rand(&rng) % 4 == 0;
		CHECK_OK(ripen_pool_create(&po, &r.pool));
		for (unsigned i = 0; i < opt.producers; i++) {
			a[i] = (struct sub_arg){ &r, i * per, per, test_rand(&rng) | 1 };
			CHECK_OK(pthread_create(&th[i], NULL, submitter, &a[i]));
		}
		atomic_store(&r.go, 1);
		test_sleep_ns(test_rand(&rng) % 300000);
		CHECK_OK(ripen_pool_shutdown(r.pool, how));
		for (unsigned i = 0; i < opt.producers; i++)
			pthread_join(th[i], NULL);
		CHECK_OK(ripen_pool_stats(r.pool, &st));
		/* destroy first: the handles must still work afterwards */
		ripen_pool_destroy(r.pool);
		for (unsigned id = 0; id < n; id++) {
			unsigned runs = atomic_load(&r.recs[id].runs), c = atomic_load(&r.recs[id].cancelled);

			if (c == 2) { /* refused */
				if (runs)
					check_fail(__FILE__, __LINE__, "refused task %u ran", id);
				continue;
			}
			if (r.h[id] != NULL) {
				enum ripen_task_state s = ripen_task_state(r.h[id]);

				CHECK_OK(ripen_task_wait(r.h[id], 0));
				if (s == RIPEN_TASK_CANCELLED && !c) {
					c = 1; /* cancelled by the CANCEL shutdown */
				}
				CHECK_EQ(ripen_task_cancel(r.h[id]), -EALREADY);
				ripen_task_release(r.h[id]);
			}
			if (how == RIPEN_SHUTDOWN_DRAIN && !c && runs != 1)
				check_fail(__FILE__, __LINE__, "drain: accepted task %u ran %u times", id, runs);
			if (runs > 1 || (runs && c == 1 && atomic_load(&r.recs[id].cancelled) == 1))
				check_fail(__FILE__, __LINE__, "task %u: ran %u, cancelled %u", id, runs, c);
			ran += runs;
			cancelled += runs ? 0 : 1;
		}
		CHECK_EQ(st.submitted, atomic_load(&r.accepted));
		CHECK_EQ(st.rejected, atomic_load(&r.refused));
		CHECK_EQ(st.run, ran);
		CHECK_EQ(st.submitted, st.run + st.cancelled);
		CHECK_EQ(st.cancelled, cancelled);
		total_refused += atomic_load(&r.refused);
		total_cancelled += st.cancelled;
		total_run += ran;
		rounds++;
		free(r.recs);
		free(r.h);
	}
	printf("  %llu rounds: %llu tasks ran, %llu cancelled, %llu refused at shutdown\n",
	       (unsigned long long)rounds, (unsigned long long)total_run,
	       (unsigned long long)total_cancelled, (unsigned long long)total_refused);
	REQUIRE_AT_LEAST("rounds", rounds, 5);
	REQUIRE_AT_LEAST("refused submits", total_refused, 1);
	REQUIRE_AT_LEAST("cancels", total_cancelled, 1);
	printf("stress_lifecycle: ok\n");
	return 0;
}
