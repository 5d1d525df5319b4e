/*
 * libFuzzer target over sequences of API calls with hostile values.
 *
 * The first byte picks the target:
 *  - even: the worker heap alone (sequential): push keys made from arbitrary
 *    doubles (NaN, +-inf, -0.0, denormals, huge), pop; after every operation
 *    the heap property holds and a pop never returns a key below the rest;
 *  - odd: a one-worker pool (paused or not, with a hostile rebalance
 *    period): submit with arbitrary bases, delays, intervals and triggers
 *    (0, 1 ns, the past, the end of time, arbitrary words), cancel, wait
 *    with zero/short/negative timeouts, re-prioritise, release, read state,
 *    swap policies, resume, wait_idle, stats, shutdown, calls on released
 *    handles being skipped (that misuse is undefined, see README).
 *    Every return code must be one the contract lists; at the end
 *    submitted == run + cancelled and every handle is final.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/check.h"
#include "prioq-internal.h"
#include "ripen.h"

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t take8(struct input *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static double take_double(struct input *in)
{
	uint64_t u = 0;
	double d;

	for (int i = 0; i < 8; i++)
		u = u << 8 | take8(in);
	memcpy(&d, &u, sizeof(d));
	return d;
}

static void fuzz_heap(struct input *in)
{
	struct ripen__prioq q;
	struct ripen__entry e = { 0 };
	uint64_t seq = 0;

	CHECK_OK(ripen__prioq_init(&q, 2));
	while (in->n) {
		if (take8(in) % 3 != 0) {
			e.key = ripen__score_key(take_double(in));
			e.seq = seq++;
			CHECK_OK(ripen__prioq_push(&q, &e));
		} else if (ripen__prioq_pop(&q, &e)) {
			const struct ripen__entry *top = ripen__prioq_top(&q);

			if (top != NULL)
				CHECK(!ripen__entry_before(top, &e));
		}
		CHECK(ripen__prioq_valid(&q));
	}
	ripen__prioq_fini(&q);
}

static uint64_t take64(struct input *in)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = u << 8 | take8(in);
	return u;
}

static void noop(void *arg)
{
	(void)arg;
}

/* A time word: the hostile ones first. */
static uint64_t take_time(struct input *in, bool relative_ok)
{
	uint64_t now = ripen_now_ns();

	switch (take8(in) % 8) {
	case 0: return 0;
	case 1: return 1;
	case 2: return UINT64_MAX;
	case 3: return UINT64_MAX - 1;
	case 4: return relative_ok ? now + take8(in) * 10000ull : take8(in);
	case 5: return relative_ok ? now - take8(in) : UINT64_MAX / 2;
	case 6: return take64(in);
	default: return take8(in) * 1000ull;
	}
}

/* Triggers keyed by the task's base: what they return after each run. */
static uint64_t hostile_trigger(const struct ripen_task_view *v)
{
	uint64_t now = ripen_now_ns();

	switch ((unsigned)fabs(fmod(v->base, 6.0))) {
	case 0: return 0;			/* stop */
	case 1: return 1;			/* the distant past: at once */
	case 2: return UINT64_MAX;		/* never */
	case 3: return now;
	case 4: return now + 100000;
	default: return now - 1;
	}
}

static struct ripen_policy *pick_policy(uint8_t k)
{
	static const double w[3] = { 1e300, -0.0, 5e-324 };

	switch (k % 6) {
	case 0: return ripen_policy_static();
	case 1: return ripen_policy_fifo();
	case 2: return ripen_policy_linear_aging(1e-9 * (k + 1));
	case 3: return ripen_policy_additive_aging(1e3);
	case 4: return ripen_policy_edf();
	default: return ripen_policy_class_weights(w, 3, ripen_policy_static());
	}
}

#define NH 16
#define NW 8

/* Completion delivery: every accepted task that asked for it is delivered
 * once, whatever the input did to it. */
static atomic_uint_fast64_t fz_done_calls;

static void fuzz_done(void *arg, enum ripen_task_state st)
{
	(void)arg;
	CHECK(st == RIPEN_TASK_DONE || st == RIPEN_TASK_CANCELLED);
	atomic_fetch_add(&fz_done_calls, 1);
}

static void on_watch(struct ripen_pool *pool, const struct ripen_watch_event *ev, void *arg)
{
	(void)pool;
	(void)arg;
	CHECK((unsigned)ev->kind <= RIPEN_WATCH_QUEUED);
}

static void fuzz_pool(struct input *in)
{
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_pool_stats st = RIPEN_POOL_STATS_INIT;
	struct ripen_pool *pool;
	struct ripen_task *h[NH] = { 0 };
	bool timed[NH] = { 0 };
	uint32_t wid[NW] = { 0 };
	bool shut = false, shedding = false;
	uint64_t want_done = 0, want_cq = 0, popped = 0;
	struct ripen_cq *cq;
	struct ripen_task *ct;
	int rc;

	CHECK_OK(ripen_cq_create(&cq));
	atomic_store(&fz_done_calls, 0);

	po.workers = 1;
	po.start_paused = take8(in) & 1;
	switch (take8(in) % 6) {
	case 0: po.rebalance_period_ns = 0; break;
	case 1: po.rebalance_period_ns = 1; break;
	case 2: po.rebalance_period_ns = RIPEN_REBALANCE_OFF; break;
	case 3: po.rebalance_period_ns = UINT64_MAX - 1; break;
	case 4: po.rebalance_period_ns = 1 + take8(in) * 100000ull; break;
	default: po.rebalance_period_ns = take64(in); break;
	}
	CHECK_OK(ripen_pool_create(&po, &pool));
	while (in->n) {
		uint8_t op = take8(in), i = take8(in) % NH;

		switch (op % 15) {
		case 0: { /* submit */
			struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
			double b = take_double(in);

			uint8_t kind = take8(in);
			bool is_timed;

			o.base = b;
			o.class_id = take8(in);
			o.deadline_ns = take8(in) ? ripen_now_ns() + take8(in) * 1000 : 0;
			if (kind & 1)
				o.not_before_ns = take_time(in, true);
			if (kind & 2)
				o.interval_ns = take_time(in, false);
			if (kind & 4)
				o.trigger = hostile_trigger;
			if (kind & 8)
				o.deadline_ns = take_time(in, true);
			if (kind & 16)
				o.done = fuzz_done;
			if (kind & 32)
				o.cq = cq;
			if (h[i] != NULL) {
				ripen_task_release(h[i]);
				h[i] = NULL;
			}
			rc = ripen_submit(pool, noop, NULL, &o, &h[i]);
			is_timed = o.not_before_ns > ripen_now_ns() - 1000000000ull || o.interval_ns ||
				   o.trigger;
			if (!isfinite(b) || (o.interval_ns != 0 && o.trigger != NULL))
				CHECK_EQ(rc, -EINVAL);
			else if (rc == -EINVAL)
				/* timers need the rebalancer; completion delivery is
				 * for plain tasks */
				CHECK(is_timed && (po.rebalance_period_ns == RIPEN_REBALANCE_OFF ||
						   o.done != NULL || o.cq != NULL));
			else
				CHECK(rc == 0 || (shut && rc == -ESHUTDOWN) || (shedding && rc == -EBUSY));
			if (rc != 0)
				CHECK(h[i] == NULL);
			want_done += rc == 0 && o.done != NULL;
			want_cq += rc == 0 && o.cq != NULL;
			timed[i] = rc == 0 && is_timed;
			break;
		}
		case 1:
			if (h[i]) {
				rc = ripen_task_cancel(h[i]);
				CHECK(rc == 0 || rc == -EBUSY || rc == -EALREADY);
			}
			break;
		case 2:
			if (h[i]) {
				int64_t to = (int8_t)take8(in);

				if (to < 0 && (po.start_paused || timed[i]))
					to = 0; /* a paused pool, or a timed task, may never finish */
				rc = ripen_task_wait(h[i], to * 1000);
				CHECK(rc == 0 || rc == -ETIMEDOUT);
			}
			break;
		case 3:
			if (h[i]) {
				double b = take_double(in);

				rc = ripen_task_reprioritize(h[i], b);
				CHECK(isfinite(b) ? (rc == 0 || rc == -EALREADY) : rc == -EINVAL);
			}
			break;
		case 4:
			ripen_task_release(h[i]);
			h[i] = NULL;
			break;
		case 5:
			if (h[i])
				CHECK((unsigned)ripen_task_state(h[i]) <= RIPEN_TASK_CANCELLED);
			break;
		case 6:
			CHECK_OK(ripen_pool_set_policy(pool, pick_policy(take8(in))));
			break;
		case 7:
			CHECK_OK(ripen_pool_resume(pool));
			po.start_paused = false;
			break;
		case 8:
			rc = ripen_pool_wait_idle(pool, 0);
			CHECK(rc == 0 || rc == -ETIMEDOUT);
			break;
		case 9:
			CHECK_OK(ripen_pool_stats(pool, &st));
			CHECK_GE(st.submitted, st.run + st.cancelled);
			break;
		case 10: { /* a watcher with hostile options */
			struct ripen_watch_opts w = RIPEN_WATCH_OPTS_INIT;
			uint8_t k = take8(in);

			w.kind = (enum ripen_watch_kind)(k % 6);
			w.action = (enum ripen_watch_action)((k >> 3) % 4);
			w.class_id = take8(in);
			w.target_class = take8(in) % 4 ? take8(in) : 200;
			w.threshold = take_double(in);
			w.quantile = take_double(in);
			w.hysteresis = take8(in) & 1 ? take_double(in) : 0;
			w.factor = take_double(in);
			w.window_ns = take_time(in, false);
			w.fn = (k & 0x40) ? on_watch : NULL;
			if (wid[i % NW] != 0) {
				CHECK_OK(ripen_pool_unwatch(pool, wid[i % NW]));
				wid[i % NW] = 0;
			}
			rc = ripen_pool_watch(pool, &w, &wid[i % NW]);
			CHECK(rc == 0 || rc == -EINVAL || rc == -ENOTSUP || rc == -ESHUTDOWN);
			if (rc == 0) {
				CHECK(isfinite(w.threshold) && w.window_ns != 0 && (unsigned)w.kind <= 3);
				shedding = shedding || w.action == RIPEN_WATCH_SHED;
			} else {
				CHECK_EQ(wid[i % NW], 0);
			}
			break;
		}
		case 11:
			rc = ripen_pool_unwatch(pool, take8(in) & 1 ? wid[i % NW] : take8(in));
			CHECK(rc == 0 || rc == -ENOENT);
			/* a random id may have hit any of ours: remove the rest
			 * (each is there, or was just removed by that id) */
			for (unsigned k = 0; k < NW; k++) {
				if (wid[k] != 0) {
					rc = ripen_pool_unwatch(pool, wid[k]);
					CHECK(rc == 0 || rc == -ENOENT);
					wid[k] = 0;
				}
			}
			break;
		case 12: { /* the exposition, and per-class counts against the pool's */
			char *buf = NULL;
			size_t len = 0;
			FILE *f = open_memstream(&buf, &len);
			uint64_t started = 0;

			CHECK(f != NULL);
			CHECK_OK(ripen_metrics_write(pool, f));
			fclose(f);
			CHECK(len > 0 && buf[len - 1] == '\n');
			free(buf);
			for (unsigned c = 0; c <= RIPEN_MAX_CLASSES; c++) {
				struct ripen_class_stats cs = RIPEN_CLASS_STATS_INIT;

				CHECK_OK(ripen_pool_class_stats(pool, c, &cs));
				CHECK_GE(cs.submitted, cs.started + cs.cancelled);
				started += cs.started;
			}
			CHECK_OK(ripen_pool_stats(pool, &st));
			CHECK_LE(started, st.run + 1); /* read at two instants: one may start between */
			break;
		}
		case 13: { /* class names: hostile bytes, lengths, clashes */
			char name[200];
			size_t n = take8(in) % sizeof(name);
			uint32_t c = take8(in) % 80;
			bool named;

			for (size_t k = 0; k < n; k++)
				name[k] = (char)(take8(in) | 1); /* no NUL inside */
			name[n] = '\0';
			named = take8(in) & 1;
			rc = ripen_pool_set_class_name(pool, c, named ? name : NULL);
			CHECK(rc == 0 || rc == -EINVAL || rc == -EEXIST);
			if (c >= RIPEN_MAX_CLASSES || (named && (n == 0 || n > 127)))
				CHECK_EQ(rc, -EINVAL);
			break;
		}
		case 14: {
			double e[3] = { take_double(in), take_double(in), take_double(in) };

			rc = ripen_metrics_add_edges(pool, e, take8(in) % 4);
			CHECK(rc == 0 || rc == -EINVAL || rc == -ENOSPC);
			break;
		}
		default:
			rc = ripen_pool_shutdown(pool, (enum ripen_shutdown)(take8(in) % 3));
			CHECK(rc == 0 || rc == -EALREADY || rc == -EINVAL);
			if (rc == 0) {
				shut = true;
				po.start_paused = false;
			}
			break;
		}
	}
	CHECK(ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_CANCEL) == 0 || shut);
	CHECK_OK(ripen_pool_stats(pool, &st));
	CHECK_EQ(st.submitted, st.run + st.cancelled);
	for (unsigned c = 0; c <= RIPEN_MAX_CLASSES; c++) {
		struct ripen_class_stats cs = RIPEN_CLASS_STATS_INIT;

		CHECK_OK(ripen_pool_class_stats(pool, c, &cs));
		CHECK_EQ(cs.submitted, cs.started + cs.cancelled);
	}
	/* shut down: every completion is in */
	CHECK_EQ(atomic_load(&fz_done_calls), want_done);
	while (ripen_cq_pop(cq, &ct) == 0) {
		CHECK(ripen_task_state(ct) >= RIPEN_TASK_DONE);
		ripen_task_release(ct);
		popped++;
	}
	CHECK_EQ(popped, want_cq);
	ripen_pool_destroy(pool);
	ripen_cq_destroy(cq);
	for (int k = 0; k < NH; k++) {
		if (h[k] != NULL) {
			CHECK(ripen_task_state(h[k]) >= RIPEN_TASK_DONE);
			ripen_task_release(h[k]);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	if (size == 0)
		return 0;
	if (take8(&in) & 1)
		fuzz_pool(&in);
	else
		fuzz_heap(&in);
	return 0;
}
