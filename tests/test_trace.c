/*
 * The trace recorder (issue 12): what a pool did, read back from the file.
 *
 * Every case reads the file with the structs of ripen-trace.h and checks
 * it against what the test itself did: the task count per class, the
 * cancels, the order of the times in each record, the trailer. The drop
 * case holds the writer in its window (fault-injection build; a skip
 * elsewhere) so that the ring must overflow, and checks the count exactly.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fault-internal.h"
#include "metrics-internal.h"
#include "ripen-trace.h"
#include "ripen.h"

#define SEC 1000000000ull

struct tfile {
	struct ripen_trace_header h;
	struct ripen_trace_record *r;
	size_t n;
	bool has_trailer;
	struct ripen_trace_trailer tl;
};

static void read_trace(const char *path, struct tfile *tf)
{
	FILE *f = fopen(path, "rb");
	long size;
	size_t body;

	CHECK(f != NULL);
	CHECK_EQ(fread(&tf->h, sizeof(tf->h), 1, f), 1);
	CHECK(memcmp(tf->h.magic, RIPEN_TRACE_MAGIC, 8) == 0);
	CHECK_EQ(tf->h.version, RIPEN_TRACE_VERSION);
	CHECK_EQ(tf->h.header_size, sizeof(tf->h));
	CHECK_EQ(tf->h.record_size, sizeof(struct ripen_trace_record));
	CHECK_EQ(tf->h.clock, RIPEN_TRACE_CLOCK_MONOTONIC);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, (long)sizeof(tf->h), SEEK_SET);
	body = (size_t)size - sizeof(tf->h);
	tf->has_trailer = body >= sizeof(tf->tl) && (body - sizeof(tf->tl)) % sizeof(tf->r[0]) == 0;
	tf->n = (body - (tf->has_trailer ? sizeof(tf->tl) : 0)) / sizeof(tf->r[0]);
	tf->r = malloc((tf->n + 1) * sizeof(tf->r[0]));
	CHECK(tf->r != NULL);
	CHECK_EQ(fread(tf->r, sizeof(tf->r[0]), tf->n, f), tf->n);
	if (tf->has_trailer) {
		CHECK_EQ(fread(&tf->tl, sizeof(tf->tl), 1, f), 1);
		CHECK(memcmp(tf->tl.magic, RIPEN_TRACE_END_MAGIC, 8) == 0);
		CHECK_EQ(tf->tl.records, tf->n);
	}
	fclose(f);
}

static char path_buf[64];

static const char *tmp_path(void)
{
	snprintf(path_buf, sizeof(path_buf), "/tmp/ripen-trace-test.%d", (int)getpid());
	return path_buf;
}

static void noop(void *arg)
{
	(void)arg;
}

static struct ripen_pool *make_pool(unsigned workers, bool paused, struct ripen_policy *pol)
{
	struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool *p;

	o.workers = workers;
	o.start_paused = paused;
	o.policy = pol;
	o.name = "traced";
	CHECK_OK(ripen_pool_create(&o, &p));
	return p;
}

/* Runs and cancels, per class, as recorded. */
static void records_what_ran(void)
{
	enum { N = 20000, CANCELS = 50 };
	const double w[] = { 1, 10 };
	struct ripen_pool *pool = make_pool(2, true,
					    ripen_policy_class_weights(w, 2, ripen_policy_static()));
	struct ripen_task *h[CANCELS];
	uint64_t per_class[3] = { 0 }, seen[3] = { 0 }, t0 = ripen_now_ns();
	struct tfile tf;
	size_t runs = 0, cancels = 0, stolen = 0;

	CHECK_OK(ripen_pool_trace_start(pool, tmp_path()));
	CHECK_EQ(ripen_pool_trace_start(pool, tmp_path()), -EALREADY);
	for (int i = 0; i < N; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.class_id = (uint32_t)(i % 3);
		o.base = (double)(i % 7);
		o.inbox = (i % 2) ? 1 : 0; /* skewed to worker 0: the other steals */
		per_class[o.class_id]++;
		CHECK_OK(ripen_submit(pool, noop, NULL, &o, i < CANCELS ? &h[i] : NULL));
	}
	for (int i = 0; i < CANCELS; i++) {
		CHECK_OK(ripen_task_cancel(h[i]));
		per_class[i % 3]--;
		ripen_task_release(h[i]);
	}
	CHECK_OK(ripen_pool_resume(pool));
	CHECK_OK(ripen_pool_wait_idle(pool, 30 * (int64_t)SEC));
	CHECK_OK(ripen_pool_trace_stop(pool));
	CHECK_EQ(ripen_pool_trace_stop(pool), -EALREADY);
	read_trace(tmp_path(), &tf);
	CHECK(tf.has_trailer);
	CHECK_EQ(tf.tl.dropped, 0);
	CHECK_EQ(tf.h.workers, 2);
	CHECK(strcmp(tf.h.policy, "weights:1,10:static") == 0);
	CHECK(strcmp(tf.h.pool, "traced") == 0);
	CHECK(tf.h.start_ns >= t0);
	for (size_t i = 0; i < tf.n; i++) {
		const struct ripen_trace_record *r = &tf.r[i];

		CHECK(r->class_id < 3);
		if (r->kind == RIPEN_TRACE_RUN) {
			runs++;
			seen[r->class_id]++;
			CHECK(r->worker < 2);
			CHECK(r->ready_ns >= t0);
			CHECK(r->start_ns + 1000 >= r->ready_ns); /* the TSC clock: ~20 ns */
			CHECK(r->end_ns >= r->start_ns);
			/* the key's score: class weight x base under this policy */
			CHECK(r->score == r->base * (r->class_id == 1 ? 10 : 1));
			stolen += r->stolen;
		} else {
			CHECK_EQ(r->kind, RIPEN_TRACE_CANCEL);
			CHECK_EQ(r->start_ns, 0);
			CHECK(r->end_ns >= r->ready_ns);
			cancels++;
		}
	}
	CHECK_EQ(runs, N - CANCELS);
	CHECK_EQ(cancels, CANCELS);
	for (int c = 0; c < 3; c++)
		CHECK_EQ(seen[c], per_class[c]);
	printf("# %zu runs, %zu cancels, %zu stolen\n", runs, cancels, stolen);
	free(tf.r);
	unlink(tmp_path());
	ripen_pool_destroy(pool);
}

/* A trace left running is stopped by destroy, trailer and all. */
static void destroy_stops_the_trace(void)
{
	struct ripen_pool *pool = make_pool(1, false, NULL);
	struct tfile tf;

	CHECK_OK(ripen_pool_trace_start(pool, tmp_path()));
	for (int i = 0; i < 100; i++)
		CHECK_OK(ripen_submit(pool, noop, NULL, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	ripen_pool_destroy(pool);
	read_trace(tmp_path(), &tf);
	CHECK(tf.has_trailer);
	CHECK_EQ(tf.n, 100);
	CHECK(strcmp(tf.h.policy, "static") == 0);
	free(tf.r);
	unlink(tmp_path());
}

/*
 * The recording clock against CLOCK_MONOTONIC. Where the kernel keeps time
 * by the TSC, a worker's start and end stamps are the TSC scaled from an
 * anchor (metrics-internal.h); elsewhere they are the vDSO read and this
 * holds trivially. Each task stamps its own body with ripen_now_ns(); the
 * worker's stamps come before and after the body, so whatever the
 * scheduling, start <= body start and end >= body end, within the anchor's
 * error (half a pair read that the re-anchor keeps under 2 us, plus the
 * rate's calibration error over a millisecond of ticks, ~20 ns). A rate
 * off by 1% or more moves a stamp by up to 10 us inside each millisecond
 * of ticks and breaks the bracket somewhere in the run.
 */
enum { BR_N = 3000, BR_SPIN_NS = 20000, BR_EPS_NS = 5000 };
static uint64_t br_at[BR_N][2];

static void bracketed(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	uint64_t s = ripen_now_ns(), e;

	do
		e = ripen_now_ns();
	while (e - s < BR_SPIN_NS);
	br_at[i][0] = s;
	br_at[i][1] = e;
}

static void stamps_bracket_the_body(void)
{
	struct ripen_pool *pool = make_pool(1, true, ripen_policy_fifo());
	struct tfile tf;
	uint64_t worst_start = 0, worst_end = 0;

	CHECK_OK(ripen_pool_trace_start(pool, tmp_path()));
	for (uintptr_t i = 0; i < BR_N; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.class_id = (uint32_t)(i % 3);
		CHECK_OK(ripen_submit(pool, bracketed, (void *)i, &o, NULL));
	}
	CHECK_OK(ripen_pool_resume(pool));
	CHECK_OK(ripen_pool_wait_idle(pool, 60 * (int64_t)SEC));
	CHECK_OK(ripen_pool_trace_stop(pool));
	read_trace(tmp_path(), &tf);
	CHECK(tf.has_trailer);
	CHECK_EQ(tf.tl.dropped, 0);
	CHECK_EQ(tf.n, BR_N);
	/* one worker, FIFO: record i is task i (its class says so) */
	for (size_t i = 0; i < tf.n; i++) {
		const struct ripen_trace_record *r = &tf.r[i];
		uint64_t bs = br_at[i][0], be = br_at[i][1];

		CHECK_EQ(r->kind, RIPEN_TRACE_RUN);
		CHECK_EQ(r->class_id, i % 3);
		if (r->start_ns > bs && r->start_ns - bs > worst_start)
			worst_start = r->start_ns - bs;
		if (be > r->end_ns && be - r->end_ns > worst_end)
			worst_end = be - r->end_ns;
	}
	printf("# worst stamp past the body: start %llu ns late, end %llu ns early\n",
	       (unsigned long long)worst_start, (unsigned long long)worst_end);
	CHECK(worst_start <= BR_EPS_NS);
	CHECK(worst_end <= BR_EPS_NS);
	free(tf.r);
	unlink(tmp_path());
	ripen_pool_destroy(pool);
}

/*
 * The recording clock's rate check (metrics.c, rate_holds). A TSC that
 * keeps its rate stays the recording clock through 48 tasks of 1 ms (a
 * re-anchor at each task's end, a check every 16 ms), and so does one that
 * jumps 20 ms ahead once (a resumed machine: one failed check, forgiven).
 * One bent to run 1% fast (fault.c: continuous at the bend, so that only
 * the rate tells, by 160 us in 16 ms against the check's 36 us) is given
 * up within the next 96 tasks (two failed checks in a row, the first of
 * them perhaps straddling the bend and passing), and the stamps bracket
 * the bodies again while it stays bent; the exposition's
 * ripen_recording_clock_tsc says which clock it is. Runs last: the
 * fallback is for the process.
 */
static void spin_1ms(void *arg)
{
	uint64_t s = ripen_now_ns();

	(void)arg;
	while (ripen_now_ns() - s < 1000000u)
		;
}

static void run_spins(struct ripen_pool *pool, int n)
{
	for (int i = 0; i < n; i++)
		CHECK_OK(ripen_submit(pool, spin_1ms, NULL, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(pool, 60 * (int64_t)SEC));
}

/* The exposition's ripen_recording_clock_tsc for the pool "traced". */
static int exposed_clock(struct ripen_pool *pool)
{
	char *buf = NULL, *at;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int v = -1;

	CHECK(f != NULL);
	CHECK_OK(ripen_metrics_write(pool, f));
	fclose(f);
	at = strstr(buf, "\nripen_recording_clock_tsc{pool=\"traced\"} ");
	if (at != NULL)
		v = atoi(at + strlen("\nripen_recording_clock_tsc{pool=\"traced\"} "));
	free(buf);
	return v;
}

static void a_bent_tsc_is_given_up(void)
{
	struct ripen_pool *pool;

	if (!ripen__fault_enabled()) {
		test_skip("needs -Dfault_injection=true");
		return;
	}
	if (!ripen__clock_tsc()) {
		test_skip("the recording clock is not the TSC on this machine");
		return;
	}
	pool = make_pool(1, false, NULL);
	run_spins(pool, 48);
	CHECK(ripen__clock_tsc());
	CHECK_EQ(exposed_clock(pool), 1);
	/* 20 ms of ticks at the calibrated rate */
	ripen__fault_tsc_jump((uint64_t)(20e6 / ripen__ns_per_tick));
	run_spins(pool, 48);
	CHECK(ripen__clock_tsc());
	ripen__fault_tsc_rate(1.01);
	run_spins(pool, 96);
	CHECK(!ripen__clock_tsc());
	CHECK_EQ(exposed_clock(pool), 0); /* what an operator sees */
	ripen_pool_destroy(pool);
	stamps_bracket_the_body();
	ripen__fault_reset();
}

static void bad_input(void)
{
	struct ripen_pool *pool = make_pool(1, false, NULL);

	CHECK_EQ(ripen_pool_trace_start(NULL, tmp_path()), -EINVAL);
	CHECK_EQ(ripen_pool_trace_start(pool, NULL), -EINVAL);
	CHECK_EQ(ripen_pool_trace_start(pool, ""), -EINVAL);
	CHECK_EQ(ripen_pool_trace_start(pool, "/nonexistent-dir/x"), -ENOENT);
	CHECK_EQ(ripen_pool_trace_stop(pool), -EALREADY);
	CHECK_EQ(ripen_pool_trace_stop(NULL), -EINVAL);
	/* the pool is unharmed, and can trace after a failed start */
	CHECK_OK(ripen_pool_trace_start(pool, tmp_path()));
	CHECK_OK(ripen_submit(pool, noop, NULL, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	CHECK_OK(ripen_pool_trace_stop(pool));
	CHECK_OK(ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN));
	CHECK_EQ(ripen_pool_trace_start(pool, tmp_path()), -ESHUTDOWN);
	unlink(tmp_path());
	ripen_pool_destroy(pool);
}

/* hook: the writer is held in its window until released */
static atomic_int hold_writer, writer_held;

static void writer_hook(enum ripen__window win, void *arg)
{
	(void)arg;
	if (win != RIPEN_WIN_TRACE_DRAIN)
		return;
	while (atomic_load(&hold_writer)) {
		atomic_store(&writer_held, 1);
		sched_yield();
	}
}

/* A writer that falls behind: records are dropped, counted exactly, and
 * the workers never wait. */
static void drops_are_counted(void)
{
	enum { N = 50000 };
	struct ripen_pool *pool;
	struct tfile tf;

	if (!ripen__fault_enabled()) {
		test_skip("needs the window hooks (-Dfault_injection=true)");
		return;
	}
	pool = make_pool(1, false, NULL);
	atomic_store(&hold_writer, 1);
	atomic_store(&writer_held, 0);
	ripen__window_hook(writer_hook, NULL);
	CHECK_OK(ripen_pool_trace_start(pool, tmp_path()));
	while (!atomic_load(&writer_held))
		sched_yield();
	for (int i = 0; i < N; i++)
		CHECK_OK(ripen_submit(pool, noop, NULL, NULL, NULL));
	CHECK_OK(ripen_pool_wait_idle(pool, 60 * (int64_t)SEC)); /* the workers did not wait */
	atomic_store(&hold_writer, 0);
	CHECK_OK(ripen_pool_trace_stop(pool));
	ripen__window_hook(NULL, NULL);
	read_trace(tmp_path(), &tf);
	CHECK(tf.has_trailer);
	CHECK_EQ(tf.n, 32768); /* one ring's worth */
	CHECK_EQ(tf.tl.dropped, N - 32768);
	printf("# %zu written, %llu dropped\n", tf.n, (unsigned long long)tf.tl.dropped);
	free(tf.r);
	unlink(tmp_path());
	ripen_pool_destroy(pool);
}

/* Traces start and stop while producers keep the pool busy: every file
 * is whole (header, records, trailer) and no record is written after its
 * trace stopped (the sum of the files never exceeds the runs). */
static atomic_int stop_producing;

static void *producer(void *arg)
{
	struct ripen_pool *pool = arg;

	while (!atomic_load(&stop_producing)) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		struct ripen_task *h;

		o.class_id = 4;
		CHECK_OK(ripen_submit(pool, noop, NULL, NULL, NULL));
		CHECK_OK(ripen_submit(pool, noop, NULL, &o, &h));
		(void)ripen_task_cancel(h);
		ripen_task_release(h);
	}
	return NULL;
}

static void start_stop_under_load(void)
{
	struct ripen_pool *pool = make_pool(2, false, NULL);
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	pthread_t th[2];
	uint64_t recorded_runs = 0;

	atomic_store(&stop_producing, 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, producer, pool), 0);
	for (int k = 0; k < 20; k++) {
		struct tfile tf;

		CHECK_OK(ripen_pool_trace_start(pool, tmp_path()));
		for (volatile int spin = 0; spin < 200000; spin++)
			;
		CHECK_OK(ripen_pool_trace_stop(pool));
		read_trace(tmp_path(), &tf);
		CHECK(tf.has_trailer);
		for (size_t i = 0; i < tf.n; i++) {
			CHECK(tf.r[i].kind == RIPEN_TRACE_RUN || tf.r[i].kind == RIPEN_TRACE_CANCEL);
			recorded_runs += tf.r[i].kind == RIPEN_TRACE_RUN;
		}
		free(tf.r);
	}
	atomic_store(&stop_producing, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_OK(ripen_pool_wait_idle(pool, 30 * (int64_t)SEC));
	CHECK_OK(ripen_pool_stats(pool, &st));
	CHECK_LE(recorded_runs, st.run);
	printf("# 20 traces, %llu runs recorded of %llu\n", (unsigned long long)recorded_runs,
	       (unsigned long long)st.run);
	unlink(tmp_path());
	ripen_pool_destroy(pool);
}

/*
 * hook: a worker holds its ring inside ripen__trace_run while the trace is
 * stopped. The stop must wait for it (the grace period) and its last drain
 * must take the record; a stop that did not wait would free the ring under
 * the worker (ASan) and lose the record.
 */
static atomic_int put_armed, put_inside, stopping;

static void put_hook(enum ripen__window win, void *arg)
{
	(void)arg;
	if (win != RIPEN_WIN_TRACE_PUT || !atomic_exchange(&put_armed, 0))
		return;
	atomic_store(&put_inside, 1);
	while (!atomic_load(&stopping))
		sched_yield();
	usleep(50000); /* a stop that does not wait is done by now */
}

static void *stopper(void *arg)
{
	CHECK_OK(ripen_pool_trace_stop(arg));
	return NULL;
}

static void stop_waits_for_a_put(void)
{
	struct ripen_pool *pool;
	struct tfile tf;
	pthread_t th;

	if (!ripen__fault_enabled()) {
		test_skip("needs the window hooks (-Dfault_injection=true)");
		return;
	}
	pool = make_pool(1, false, NULL);
	atomic_store(&put_inside, 0);
	atomic_store(&stopping, 0);
	atomic_store(&put_armed, 1);
	ripen__window_hook(put_hook, NULL);
	CHECK_OK(ripen_pool_trace_start(pool, tmp_path()));
	CHECK_OK(ripen_submit(pool, noop, NULL, NULL, NULL));
	while (!atomic_load(&put_inside))
		sched_yield();
	atomic_store(&stopping, 1);
	CHECK_EQ(pthread_create(&th, NULL, stopper, pool), 0);
	pthread_join(th, NULL);
	ripen__window_hook(NULL, NULL);
	read_trace(tmp_path(), &tf);
	CHECK(tf.has_trailer);
	CHECK_EQ(tf.n, 1); /* the held record made it */
	free(tf.r);
	unlink(tmp_path());
	CHECK_OK(ripen_pool_wait_idle(pool, 10 * (int64_t)SEC));
	ripen_pool_destroy(pool);
}

static const struct test_case cases[] = {
	{ "stop_waits_for_a_put", stop_waits_for_a_put },
	{ "start_stop_under_load", start_stop_under_load },
	{ "records_what_ran", records_what_ran },
	{ "stamps_bracket_the_body", stamps_bracket_the_body },
	{ "destroy_stops_the_trace", destroy_stops_the_trace },
	{ "bad_input", bad_input },
	{ "drops_are_counted", drops_are_counted },
	{ "a_bent_tsc_is_given_up", a_bent_tsc_is_given_up }, /* last: see there */
};

int main(int argc, char **argv)
{
	return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
