/*
 * Completion delivery (ripen_task_opts.done and .cq, ripen_cq_*): each
 * finished or cancelled task's completion comes exactly once, with its
 * final state, and a completion queue's eventfd is written once per batch
 * and is readable exactly while completions wait.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "ripen.h"

enum { N = 4000 };

struct item {
	atomic_uint done_calls;
	atomic_uint done_state;
	atomic_int done_worker;		/* ripen_pool_current_worker in the callback */
	atomic_uint pops;
	unsigned id;
};

static struct item items[N];
static struct ripen_pool *cur_pool;

static void noop(void *arg)
{
	(void)arg;
}

static void on_done(void *arg, enum ripen_task_state st)
{
	struct item *it = arg;

	atomic_store(&it->done_state, (unsigned)st);
	atomic_store(&it->done_worker, ripen_pool_current_worker(cur_pool));
	atomic_fetch_add(&it->done_calls, 1);
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void reset_items(void)
{
	for (unsigned i = 0; i < N; i++) {
		atomic_store(&items[i].done_calls, 0);
		atomic_store(&items[i].done_state, 99);
		atomic_store(&items[i].done_worker, -2);
		atomic_store(&items[i].pops, 0);
		items[i].id = i;
	}
}

/* Pop everything; count pops per item, check each handle's state. */
static unsigned drain_cq(struct ripen_cq *cq)
{
	struct ripen_task *t;
	unsigned n = 0;
	int rc;

	while ((rc = ripen_cq_pop(cq, &t)) == 0) {
		struct item *it = ripen_task_arg(t);

		CHECK(it >= items && it < items + N);
		atomic_fetch_add(&it->pops, 1);
		/* the done callback ran before the push, and its writes are seen */
		CHECK_EQ(atomic_load(&it->done_calls), 1);
		CHECK_EQ(atomic_load(&it->done_state), (unsigned)ripen_task_state(t));
		ripen_task_release(t);
		n++;
	}
	CHECK_EQ(rc, -EAGAIN);
	return n;
}

static void rejects_bad_input(void)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *t = (struct ripen_task *)&o;
	struct ripen_pool *p;
	struct ripen_cq *cq;

	CHECK_EQ(ripen_cq_create(NULL), -EINVAL);
	CHECK_EQ(ripen_cq_fd(NULL), -EINVAL);
	CHECK_EQ(ripen_cq_pop(NULL, &t), -EINVAL);
	CHECK_OK(ripen_cq_create(&cq));
	CHECK_GE(ripen_cq_fd(cq), 0);
	CHECK_EQ(ripen_cq_pop(cq, NULL), -EINVAL);
	CHECK_EQ(ripen_cq_pop(cq, &t), -EAGAIN);
	CHECK(t == NULL);
	CHECK(!fd_readable(ripen_cq_fd(cq)));
	po.workers = 1;
	CHECK_OK(ripen_pool_create(&po, &p));
	/* completion delivery is for plain tasks */
	o.cq = cq;
	o.not_before_ns = ripen_now_ns() + 1000000000ull;
	CHECK_EQ(ripen_submit(p, noop, NULL, &o, NULL), -EINVAL);
	o.not_before_ns = 0;
	o.interval_ns = 1000000;
	CHECK_EQ(ripen_submit(p, noop, NULL, &o, NULL), -EINVAL);
	o.interval_ns = 0;
	o.cq = NULL;
	o.done = on_done;
	o.interval_ns = 1000000;
	CHECK_EQ(ripen_submit(p, noop, NULL, &o, NULL), -EINVAL);
	ripen_pool_destroy(p);
	CHECK(ripen_task_arg(NULL) == NULL);
	ripen_cq_destroy(cq);
	ripen_cq_destroy(NULL);
}

/*
 * Run and cancel, from a paused pool: the cancelled half never runs and is
 * delivered CANCELLED on the cancelling (this) thread; the rest DONE on a
 * worker. Every push before the first pop shares one eventfd write, so the
 * counter reads exactly 1; after the queue is drained the fd is quiet, and
 * the next completion makes it readable again.
 */
static void run_and_cancel_deliver_once(void)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_task *h[N];
	struct ripen_pool *p;
	struct ripen_cq *cq;
	uint64_t v = 0;

	reset_items();
	CHECK_OK(ripen_cq_create(&cq));
	po.workers = 2;
	po.start_paused = true;
	CHECK_OK(ripen_pool_create(&po, &p));
	cur_pool = p;
	for (unsigned i = 0; i < N; i++) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.base = (double)(i % 7);
		o.done = on_done;
		o.cq = cq;
		CHECK_OK(ripen_submit(p, noop, &items[i], &o, &h[i]));
	}
	for (unsigned i = 0; i < N; i += 2)
		CHECK_OK(ripen_task_cancel(h[i]));
	CHECK_OK(ripen_pool_resume(p));
	CHECK_OK(ripen_pool_wait_idle(p, -1));
	/* wait_idle returned after every completion was delivered */
	CHECK_EQ(read(ripen_cq_fd(cq), &v, sizeof(v)), (ssize_t)sizeof(v));
	CHECK_EQ(v, 1); /* one write for the whole batch */
	CHECK_EQ(drain_cq(cq), N);
	CHECK(!fd_readable(ripen_cq_fd(cq)));
	for (unsigned i = 0; i < N; i++) {
		CHECK_EQ(atomic_load(&items[i].done_calls), 1);
		CHECK_EQ(atomic_load(&items[i].pops), 1);
		if (i % 2 == 0) {
			CHECK_EQ(atomic_load(&items[i].done_state), RIPEN_TASK_CANCELLED);
			CHECK_EQ(atomic_load(&items[i].done_worker), -1); /* this thread */
		} else {
			CHECK_EQ(atomic_load(&items[i].done_state), RIPEN_TASK_DONE);
			CHECK_GE(atomic_load(&items[i].done_worker), 0);
		}
		ripen_task_release(h[i]);
	}
	/* the next completion arms the fd again */
	{
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.cq = cq;
		CHECK_OK(ripen_submit(p, noop, &items[0], &o, NULL));
		CHECK_OK(ripen_pool_wait_idle(p, -1));
		CHECK(fd_readable(ripen_cq_fd(cq)));
		atomic_store(&items[0].done_calls, 1); /* no done callback this time */
		atomic_store(&items[0].done_state, RIPEN_TASK_DONE);
		CHECK_EQ(drain_cq(cq), 1);
		CHECK(!fd_readable(ripen_cq_fd(cq)));
	}
	ripen_pool_destroy(p);
	ripen_cq_destroy(cq);
}

/*
 * Racing: producers submit, a canceller cancels handles, a loop thread
 * polls the eventfd and pops, and a CANCEL shutdown lands in the middle.
 * Every accepted task is delivered exactly once by each path, with a state
 * that matches its handle and the pool's counters; the loop thread, woken
 * only by the eventfd, pops them; whatever it left at the end must have
 * left the eventfd readable (else an event loop would sleep on it).
 */
static atomic_uint accepted_n, stop_loop, loop_pops;
static struct ripen_cq *race_cq;
static struct ripen_task *_Atomic race_h[N];

static void spin_task(void *arg)
{
	uint64_t t0 = ripen_now_ns();

	(void)arg;
	while (ripen_now_ns() - t0 < 2000) /* 2 us: the shutdown finds work queued */
		;
}

static void *producer(void *arg)
{
	unsigned base = (unsigned)(uintptr_t)arg;

	for (unsigned i = base; i < N; i += 2) {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		struct ripen_task *h;
		int rc;

		o.done = on_done;
		o.cq = race_cq;
		o.base = (double)(i % 13);
		rc = ripen_submit(cur_pool, spin_task, &items[i], &o, &h);
		if (rc == 0) {
			atomic_fetch_add(&accepted_n, 1);
			atomic_store(&race_h[i], h);
		} else {
			CHECK_EQ(rc, -ESHUTDOWN);
		}
	}
	return NULL;
}

static void *canceller(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < N; i += 3) {
		struct ripen_task *h;

		while ((h = atomic_load(&race_h[i])) == NULL && atomic_load(&accepted_n) < N &&
		       !atomic_load(&stop_loop))
			sched_yield();
		if (h != NULL)
			(void)ripen_task_cancel(h);
	}
	return NULL;
}

static void *loop_thread(void *arg)
{
	struct pollfd pf = { .fd = ripen_cq_fd(race_cq), .events = POLLIN };

	(void)arg;
	while (!atomic_load(&stop_loop)) {
		if (poll(&pf, 1, 20) == 1)
			atomic_fetch_add(&loop_pops, drain_cq(race_cq));
	}
	return NULL;
}

static void racing_completions_deliver_once(void)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	pthread_t prod[2], canc, loop;
	unsigned ran = 0, cancelled = 0, delivered = 0, cancelled_all = 0, refused_all = 0;

	for (int round = 0; round < 8; round++) {
		reset_items();
		for (unsigned i = 0; i < N; i++)
			atomic_store(&race_h[i], NULL);
		atomic_store(&accepted_n, 0);
		atomic_store(&stop_loop, 0);
		atomic_store(&loop_pops, 0);
		CHECK_OK(ripen_cq_create(&race_cq));
		po.workers = 2;
		CHECK_OK(ripen_pool_create(&po, &cur_pool));
		CHECK_OK(pthread_create(&loop, NULL, loop_thread, NULL));
		CHECK_OK(pthread_create(&canc, NULL, canceller, NULL));
		for (int k = 0; k < 2; k++)
			CHECK_OK(pthread_create(&prod[k], NULL, producer, (void *)(uintptr_t)k));
		test_sleep_ns(round % 2 ? 1000000 : 100000);
		CHECK_OK(ripen_pool_shutdown(cur_pool, RIPEN_SHUTDOWN_CANCEL));
		for (int k = 0; k < 2; k++)
			pthread_join(prod[k], NULL);
		atomic_store(&stop_loop, 1);
		pthread_join(canc, NULL);
		/* the loop saw a readable fd for everything pushed before its
		 * last poll; give it one more look, then stop it */
		pthread_join(loop, NULL);
		{
			/* what the loop left must have left the fd readable: a
			 * queue holding completions behind a quiet fd is a lost
			 * wake-up, and an event loop would sleep on it */
			bool readable = fd_readable(ripen_cq_fd(race_cq));
			unsigned missed = drain_cq(race_cq);
			unsigned total = atomic_load(&loop_pops) + missed;

			CHECK(missed == 0 || readable);
			CHECK_EQ(total, atomic_load(&accepted_n));
		}
		CHECK_OK(ripen_pool_stats(cur_pool, &st));
		CHECK_EQ(st.submitted, atomic_load(&accepted_n));
		ran = cancelled = delivered = 0;
		for (unsigned i = 0; i < N; i++) {
			struct ripen_task *h = atomic_load(&race_h[i]);
			unsigned calls = atomic_load(&items[i].done_calls);

			if (h == NULL) { /* refused: never accepted, never delivered */
				refused_all++;
				CHECK_EQ(calls, 0);
				CHECK_EQ(atomic_load(&items[i].pops), 0);
				continue;
			}
			CHECK_EQ(calls, 1);
			CHECK_EQ(atomic_load(&items[i].pops), 1);
			CHECK_EQ(atomic_load(&items[i].done_state), (unsigned)ripen_task_state(h));
			ran += atomic_load(&items[i].done_state) == RIPEN_TASK_DONE;
			cancelled += atomic_load(&items[i].done_state) == RIPEN_TASK_CANCELLED;
			delivered++;
			ripen_task_release(h);
		}
		CHECK_EQ(ran, st.run);
		CHECK_EQ(cancelled, st.cancelled);
		CHECK_EQ(delivered, st.submitted);
		cancelled_all += cancelled;
		ripen_pool_destroy(cur_pool);
		ripen_cq_destroy(race_cq);
	}
	printf("# last round: %u accepted, %u ran, %u cancelled; all rounds: %u cancelled, %u "
	       "refused\n", delivered, ran, cancelled, cancelled_all, refused_all);
	/* how much of each race a round reached depends on the host: printed,
	 * not asserted; run_and_cancel_deliver_once cancels by construction,
	 * and a refused submit is never delivered: */
	{
		struct ripen_pool_opts po1 = RIPEN_POOL_OPTS_INIT;
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
		struct ripen_task *t = NULL;

		reset_items();
		CHECK_OK(ripen_cq_create(&race_cq));
		po1.workers = 1;
		CHECK_OK(ripen_pool_create(&po1, &cur_pool));
		CHECK_OK(ripen_pool_shutdown(cur_pool, RIPEN_SHUTDOWN_DRAIN));
		o.done = on_done;
		o.cq = race_cq;
		CHECK_EQ(ripen_submit(cur_pool, noop, &items[0], &o, &t), -ESHUTDOWN);
		CHECK(t == NULL);
		CHECK_EQ(atomic_load(&items[0].done_calls), 0);
		CHECK_EQ(ripen_cq_pop(race_cq, &t), -EAGAIN);
		ripen_pool_destroy(cur_pool);
		ripen_cq_destroy(race_cq);
	}
}

TEST_MAIN(T(rejects_bad_input), T(run_and_cancel_deliver_once), T(racing_completions_deliver_once))
