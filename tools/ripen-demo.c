/*
 * ripen-demo: what ripen is for, in one run.
 *
 * A server's background pool is overloaded: three producer threads submit
 * work of three classes faster than the workers can run it:
 *   VIP    (base 10)  10% of the tasks
 *   normal (base 1)   30%
 *   batch  (base 0.1) 60%
 * Every task is ~0.5 ms of CPU. ripen dispatches by score, so the VIP work
 * jumps the queue while it lasts, and the table shows how long each class
 * waited. Usage: ripen-demo [workers] [tasks] [static|aging] [TRACE]
 * With TRACE, the run is recorded (ripen_pool_trace_start) into that file,
 * for `ripen-replay --format ripen TRACE`.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ripen.h"

enum { VIP, NORMAL, BATCH, NCLASS };
static const char *const class_name[NCLASS] = { "VIP", "normal", "batch" };
static const char class_char[NCLASS] = { 'V', 'n', '.' };
static const double class_base[NCLASS] = { 10.0, 1.0, 0.1 };

struct job {
	int cls;
	uint64_t submitted_ns;
	uint64_t started_ns;
};

static struct ripen_pool *pool;
static struct job *jobs;
static unsigned njobs;
static atomic_uint next_job;
static atomic_uint start_order;
static int *order; /* class of the k-th task to start */
static uint64_t t_start, interval_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void work(void *arg)
{
	struct job *j = arg;
	uint64_t t0 = now_ns();
	volatile uint64_t x = 0;

	j->started_ns = t0;
	order[atomic_fetch_add(&start_order, 1)] = j->cls;
	while (now_ns() - t0 < 500000) /* ~0.5 ms of CPU */
		x++;
}

static void *producer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (;;) {
		unsigned i = atomic_fetch_add(&next_job, 1);
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		unsigned r;
		int rc;

		if (i >= njobs)
			return NULL;
		r = (unsigned)rand_r(&seed) % 100;
		jobs[i].cls = r < 10 ? VIP : r < 40 ? NORMAL : BATCH;
		o.base = class_base[jobs[i].cls];
		o.class_id = (uint32_t)jobs[i].cls;
		jobs[i].submitted_ns = now_ns();
		rc = ripen_submit(pool, work, &jobs[i], &o, NULL);
		if (rc != 0) {
			fprintf(stderr, "submit: %s\n", ripen_strerror(rc));
			exit(1);
		}
		/* paced: task i arrives at start + i * interval, which is about
		 * twice as fast as the workers can run them */
		while (now_ns() < t_start + (uint64_t)(i + 1) * interval_ns) {
			struct timespec ts = { 0, 50000 };

			nanosleep(&ts, NULL);
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	pthread_t th[3];
	uint64_t *waits[NCLASS];
	unsigned nw[NCLASS] = { 0 };
	struct ripen_class_stats cs[NCLASS];
	int rc;

	po.workers = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
	njobs = argc > 2 ? (unsigned)atoi(argv[2]) : 800;
	if (argc > 3 && strcmp(argv[3], "aging") == 0)
		po.policy = ripen_policy_linear_aging(0.020);
	else if (argc > 3 && strcmp(argv[3], "static") != 0) {
		fprintf(stderr, "usage: %s [workers] [tasks] [static|aging] [TRACE]\n", argv[0]);
		return 2;
	}
	jobs = calloc(njobs, sizeof(*jobs));
	order = calloc(njobs, sizeof(*order));
	for (int c = 0; c < NCLASS; c++)
		waits[c] = calloc(njobs, sizeof(uint64_t));
	if ((rc = ripen_pool_create(&po, &pool)) != 0) {
		fprintf(stderr, "ripen_pool_create: %s\n", ripen_strerror(rc));
		return 1;
	}
	printf("ripen demo: %u workers, %u tasks of ~0.5 ms from 3 producers, arriving\n"
	       "about twice as fast as the workers can run them; policy: %s.\n"
	       "Classes: VIP (base 10, 10%%), normal (base 1, 30%%), batch (base 0.1, 60%%).\n\n",
	       ripen_pool_workers(pool), njobs,
	       po.policy ? "linear aging, tau 20 ms" : "static (by base)");
	if (argc > 4 && (rc = ripen_pool_trace_start(pool, argv[4])) != 0) {
		fprintf(stderr, "%s: %s\n", argv[4], ripen_strerror(rc));
		ripen_pool_destroy(pool);
		return 1;
	}
	interval_ns = 500000 / ripen_pool_workers(pool) / 2;
	t_start = now_ns();
	for (uintptr_t i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, producer, (void *)(i + 1));
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	ripen_pool_wait_idle(pool, -1);
	if (argc > 4 && (rc = ripen_pool_trace_stop(pool)) != 0)
		fprintf(stderr, "%s: %s\n", argv[4], ripen_strerror(rc));
	ripen_pool_stats(pool, &st);
	for (int c = 0; c < NCLASS; c++) {
		cs[c].size = sizeof(cs[c]);
		ripen_pool_class_stats(pool, (uint32_t)c, &cs[c]); /* the pool's own view */
	}
	ripen_pool_destroy(pool);

	printf("Start order (V = VIP, n = normal, . = batch), in the order tasks began:\n");
	for (unsigned k = 0; k < njobs; k++) {
		putchar(class_char[order[k]]);
		if (k % 80 == 79 || k + 1 == njobs)
			putchar('\n');
	}
	for (unsigned i = 0; i < njobs; i++) {
		int c = jobs[i].cls;

		waits[c][nw[c]++] = jobs[i].started_ns - jobs[i].submitted_ns;
	}
	printf("\nWait from submit to start, per class (measured by the tasks; in brackets\n"
	       "what the pool recorded itself, ripen_pool_class_stats):\n");
	printf("  %-7s %6s %18s %18s %18s\n", "class", "tasks", "p50 ms", "p99 ms", "max ms");
	for (int c = 0; c < NCLASS; c++) {
		uint64_t *w = waits[c];
		unsigned n = nw[c];

		if (n == 0)
			continue;
		qsort(w, n, sizeof(*w), cmp_u64);
		printf("  %-7s %6u %7.2f [%7.2f] %7.2f [%7.2f] %7.2f [%7.2f]\n", class_name[c], n,
		       (double)w[n / 2] / 1e6, cs[c].wait_p50_s * 1e3,
		       (double)w[(n * 99) / 100] / 1e6, cs[c].wait_p99_s * 1e3,
		       (double)w[n - 1] / 1e6, cs[c].wait_max_s * 1e3);
	}
	printf("\n%llu tasks run, %llu steals between workers. The VIP work waited a\n"
	       "fraction of what the batch work did: it went first while the pool was\n"
	       "overloaded.\n", (unsigned long long)st.run, (unsigned long long)st.steals);
	if (argc > 4)
		printf("The run was recorded in %s: ripen-replay --format ripen %s\n"
		       "replays it through other policies.\n", argv[4], argv[4]);
	if (argc > 3 && po.policy != NULL)
		printf("With linear aging every task's score grows with its wait,\n"
		       "base * (1 + wait/tau), so under a longer overload the batch work\n"
		       "would not starve behind a stream of VIP work.\n");
	else
		printf("Under sustained overload static priority would starve the batch\n"
		       "work; `ripen-demo %u %u aging` runs the same traffic under linear\n"
		       "aging (tau 20 ms), whose scores grow with the wait.\n", po.workers, njobs);
	for (int c = 0; c < NCLASS; c++)
		free(waits[c]);
	free(order);
	free(jobs);
	return 0;
}
