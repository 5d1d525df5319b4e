/*
 * The trace recorder: what a pool did, one record per task, for
 * tools/ripen-replay and for a user who wants to ask which policy would
 * have kept a promise on yesterday's traffic.
 *
 * Hot path. The worker that ran a task writes a 48-byte record (the format
 * is include/ripen-trace.h) into its own ring, single-producer: a relaxed
 * load of its tail, an acquire load of the writer's head, a copy, a release
 * store of the tail. No shared write: the ring's head and tail sit on their
 * own cache lines, and only the writer thread writes the head. When the
 * ring is full (the writer fell behind) the record is dropped and counted
 * on the worker's ring; the trailer of the file says how many. A worker
 * never waits for the writer. With no trace running, a task costs one
 * relaxed load of the worker's ring pointer (`w->tring`, NULL) and a
 * branch.
 *
 * Start and stop. ripen_pool_trace_start writes the header, allocates the
 * rings and starts the writer, then publishes each worker's ring with a
 * release store. A worker reads the pointer relaxed outside any lock; only
 * when it is non-NULL does it enter an RCU read section, load it again
 * (acquire) and write there. ripen_pool_trace_stop stores NULL in every
 * worker and waits for an RCU grace period: after it, no worker is inside
 * a write, so the writer's last drain sees every record that was put, and
 * the rings can be freed. Cancels are rare and come from any thread: they
 * go through a ring of their own under trace_lock, and so do the adaptive
 * controller's records (its steps, from the rebalancer thread).
 *
 * The writer wakes every RIPEN_TRACE_DRAIN_NS, copies what each ring holds
 * into a stdio buffer and writes it. Its file errors are remembered and
 * returned by ripen_pool_trace_stop (-EIO).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fault-internal.h"
#include "metrics-internal.h"
#include "policy-internal.h"
#include "pool-internal.h"
#include "rcu-internal.h"
#include "trace-internal.h"

#define RIPEN_TRACE_RING_BITS 15u		/* 32768 records (1.5 MB) a worker */
#define RIPEN_TRACE_DRAIN_NS 2000000ull		/* the writer's period: 2 ms */

struct ripen__trace {
	FILE *f;
	pthread_t thread;
	pthread_mutex_t lock;			/* the writer's sleep and stop flag */
	pthread_cond_t cond;
	bool stop;
	bool io_error;
	uint64_t written;
	unsigned nrings;
	struct ripen__tring **rings;		/* workers', then the cancel ring */
};

static struct ripen__tring *ring_new(void)
{
	size_t n = (size_t)1 << RIPEN_TRACE_RING_BITS;
	struct ripen__tring *r = aligned_alloc(RIPEN_CACHELINE,
					       (sizeof(*r) + n * sizeof(r->rec[0]) +
						RIPEN_CACHELINE - 1) & ~(size_t)(RIPEN_CACHELINE - 1));

	if (r == NULL)
		return NULL;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->dropped, 0);
	r->mask = n - 1;
	return r;
}

/* Producer side: the ring's one writer (a worker, or trace_lock's holder). */
static void ring_put(struct ripen__tring *r, const struct ripen_trace_record *rec)
{
	/* relaxed: our own index */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	/* acquire: pairs with the writer's release store of head, so the
	 * slot we reuse has been copied out */
	uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);

	if (t - h > r->mask) {
		/* relaxed: single writer; read by the writer at the end */
		atomic_store_explicit(&r->dropped,
				      atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		return;
	}
	r->rec[t & r->mask] = *rec;
	/* release: the record's bytes before the index that shows them;
	 * pairs with the writer's acquire load of tail */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

/* Consumer side: copy out what r holds. */
static void ring_drain(struct ripen__trace *tr, struct ripen__tring *r)
{
	/* relaxed: our own index */
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	/* acquire: pairs with the producer's release store of tail */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);

	while (h != t) {
		uint64_t i = h & r->mask, n = t - h;

		if (n > r->mask + 1 - i)
			n = r->mask + 1 - i; /* up to the ring's end */
		if (fwrite(&r->rec[i], sizeof(r->rec[0]), n, tr->f) != n)
			tr->io_error = true;
		tr->written += n;
		h += n;
	}
	/* release: the slots are free again; pairs with ring_put's acquire */
	atomic_store_explicit(&r->head, h, memory_order_release);
}

static void *writer_main(void *arg)
{
	struct ripen__trace *tr = arg;
	bool stop = false;

	while (!stop) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts); /* the cond's clock (trace_start) */
		ts.tv_nsec += (long)RIPEN_TRACE_DRAIN_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&tr->lock);
		if (!tr->stop)
			pthread_cond_timedwait(&tr->cond, &tr->lock, &ts);
		stop = tr->stop;
		pthread_mutex_unlock(&tr->lock);
		RIPEN_WINDOW(RIPEN_WIN_TRACE_DRAIN); /* a writer that falls behind */
		/* the cancel ring's producers hold trace_lock, not ours: its
		 * indices are atomics like the workers' rings */
		for (unsigned i = 0; i < tr->nrings; i++)
			ring_drain(tr, tr->rings[i]);
	}
	return NULL;
}

void ripen__trace_run(struct ripen__worker *w, const struct ripen_trace_record *rec)
{
	struct ripen__tring *r;

	ripen__rcu_read_lock();
	/* acquire: pairs with trace_start's release store (the ring is
	 * initialised); NULL after a stop, whose grace period waits for us */
	r = atomic_load_explicit(&w->tring, memory_order_acquire);
	if (r != NULL) {
		RIPEN_WINDOW(RIPEN_WIN_TRACE_PUT); /* a stop runs here */
		ring_put(r, rec);
	}
	ripen__rcu_read_unlock();
}

void ripen__trace_cancel(struct ripen_pool *pool, uint32_t class_id, uint64_t ready_ns,
			 double base)
{
	struct ripen_trace_record rec;
	struct ripen__worker *self = ripen__self;

	/* relaxed: a hint; the check under the lock decides */
	if (atomic_load_explicit(&pool->tracing, memory_order_relaxed) == 0)
		return;
	memset(&rec, 0, sizeof(rec));
	rec.kind = RIPEN_TRACE_CANCEL;
	rec.worker = self != NULL && self->pool == pool ? (uint16_t)self->index : 0xffffu;
	rec.class_id = class_id;
	rec.ready_ns = ready_ns;
	rec.end_ns = ripen__now_ns();
	rec.base = base;
	rec.score = NAN;
	/* From a trigger or a score function (inside an RCU read section) a
	 * stop holding trace_lock could be waiting for our grace period:
	 * only try the lock there, and count the record as dropped */
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_TRIGGER) {
		if (pthread_mutex_trylock(&pool->trace_lock) != 0) {
			/* relaxed: read by the stop, under trace_lock */
			atomic_fetch_add_explicit(&pool->trace_lost, 1, memory_order_relaxed);
			return;
		}
	} else {
		pthread_mutex_lock(&pool->trace_lock);
	}
	if (pool->trace != NULL)
		ring_put(pool->trace->rings[pool->trace->nrings - 1], &rec);
	pthread_mutex_unlock(&pool->trace_lock);
}

void ripen__trace_adapt(struct ripen_pool *pool, uint32_t class_id, uint64_t now_ns,
			double weight, double tau_s, unsigned flags)
{
	struct ripen_trace_record rec;

	/* relaxed: a hint; the check under the lock decides */
	if (atomic_load_explicit(&pool->tracing, memory_order_relaxed) == 0)
		return;
	memset(&rec, 0, sizeof(rec));
	rec.kind = RIPEN_TRACE_ADAPT;
	rec.stolen = (uint8_t)flags;
	rec.worker = 0xffffu;
	rec.class_id = class_id;
	rec.ready_ns = now_ns;
	rec.base = weight;
	rec.score = tau_s;
	/* the rebalancer thread, outside any RCU read section: a stop
	 * holding trace_lock waits for no grace period of ours */
	pthread_mutex_lock(&pool->trace_lock);
	if (pool->trace != NULL)
		ring_put(pool->trace->rings[pool->trace->nrings - 1], &rec);
	pthread_mutex_unlock(&pool->trace_lock);
}

static void trace_free(struct ripen__trace *tr)
{
	for (unsigned i = 0; i < tr->nrings; i++)
		free(tr->rings[i]);
	free(tr->rings);
	pthread_mutex_destroy(&tr->lock);
	pthread_cond_destroy(&tr->cond);
	free(tr);
}

int ripen_pool_trace_start(struct ripen_pool *pool, const char *path)
{
	struct ripen_trace_header h;
	struct ripen__trace *tr;
	struct timespec rt;
	const struct ripen_policy *pol;
	char spec[sizeof(h.policy)];
	sigset_t all, old;
	int rc = 0;

	if (pool == NULL || path == NULL || path[0] == '\0')
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_TRIGGER)
		return -EDEADLK;
	/* swap_lock (a lower rank, so before trace_lock): the policy cannot
	 * be swapped and freed meanwhile; relaxed: the swappers' own order */
	pthread_mutex_lock(&pool->swap_lock);
	pol = atomic_load_explicit(&pool->policy, memory_order_relaxed);
	ripen__policy_spec(pol, spec, sizeof(spec));
	pthread_mutex_unlock(&pool->swap_lock);
	pthread_mutex_lock(&pool->trace_lock);
	if (pool->trace != NULL) {
		pthread_mutex_unlock(&pool->trace_lock);
		return -EALREADY;
	}
	/* relaxed: a one-way flag; a trace started during a shutdown would
	 * outlive the workers it records */
	if (atomic_load_explicit(&pool->closed, memory_order_relaxed)) {
		pthread_mutex_unlock(&pool->trace_lock);
		return -ESHUTDOWN;
	}
	tr = calloc(1, sizeof(*tr));
	if (tr == NULL) {
		pthread_mutex_unlock(&pool->trace_lock);
		return -ENOMEM;
	}
	{
		/* the writer's sleep on CLOCK_MONOTONIC: a step of the wall
		 * clock must not stall the drain (and so drop records) */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_mutex_init(&tr->lock, NULL);
		pthread_cond_init(&tr->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	tr->nrings = pool->nworkers + 1;
	tr->rings = calloc(tr->nrings, sizeof(*tr->rings));
	for (unsigned i = 0; tr->rings != NULL && i < tr->nrings; i++)
		if ((tr->rings[i] = ring_new()) == NULL)
			rc = -ENOMEM;
	if (tr->rings == NULL)
		rc = -ENOMEM;
	if (rc == 0 && (tr->f = fopen(path, "wb")) == NULL)
		rc = -errno;
	if (rc == 0) {
		memset(&h, 0, sizeof(h));
		memcpy(h.magic, RIPEN_TRACE_MAGIC, 8);
		h.version = RIPEN_TRACE_VERSION;
		h.header_size = sizeof(h);
		h.record_size = sizeof(struct ripen_trace_record);
		h.clock = RIPEN_TRACE_CLOCK_MONOTONIC;
		h.start_ns = ripen__now_ns();
		clock_gettime(CLOCK_REALTIME, &rt);
		h.start_realtime_ns = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
		h.workers = pool->nworkers;
		h.rebalance_period_ns = pool->period_ns;
		memcpy(h.policy, spec, sizeof(h.policy));
		snprintf(h.pool, sizeof(h.pool), "%.63s", pool->metrics->pool_name);
		if (fwrite(&h, sizeof(h), 1, tr->f) != 1)
			rc = -EIO;
	}
	/* the writer takes no asynchronous signals, as the workers */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (rc == 0 && pthread_create(&tr->thread, NULL, writer_main, tr) != 0)
		rc = -EAGAIN;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		if (tr->f != NULL)
			fclose(tr->f);
		if (tr->rings == NULL)
			tr->nrings = 0;
		trace_free(tr);
		pthread_mutex_unlock(&pool->trace_lock);
		return rc;
	}
	pthread_setname_np(tr->thread, "ripen-trace");
	pool->trace = tr;
	for (unsigned i = 0; i < pool->nworkers; i++)
		/* release: the ring's initialisation before the pointer; pairs
		 * with the acquire reload in ripen__trace_run */
		atomic_store_explicit(&pool->workers[i].tring, tr->rings[i], memory_order_release);
	/* relaxed: a hint for cancels (the lock decides) */
	atomic_store_explicit(&pool->tracing, 1, memory_order_relaxed);
	pthread_mutex_unlock(&pool->trace_lock);
	return 0;
}

/* Stop and write the trailer; trace_lock held. */
static int trace_stop_locked(struct ripen_pool *pool)
{
	struct ripen__trace *tr = pool->trace;
	struct ripen_trace_trailer tl;
	uint64_t dropped = 0;
	int rc;

	for (unsigned i = 0; i < pool->nworkers; i++)
		/* relaxed: the grace period below orders it against the
		 * workers' read sections */
		atomic_store_explicit(&pool->workers[i].tring, NULL, memory_order_relaxed);
	/* relaxed: as in start */
	atomic_store_explicit(&pool->tracing, 0, memory_order_relaxed);
	ripen__rcu_synchronize(); /* no worker is inside ring_put any more */
	pthread_mutex_lock(&tr->lock);
	tr->stop = true;
	pthread_cond_signal(&tr->cond);
	pthread_mutex_unlock(&tr->lock);
	pthread_join(tr->thread, NULL); /* its last drain took everything */
	for (unsigned i = 0; i < tr->nrings; i++)
		/* relaxed: the producers are done (grace period, or trace_lock) */
		dropped += atomic_load_explicit(&tr->rings[i]->dropped, memory_order_relaxed);
	/* relaxed: cancels from callbacks that found the lock taken */
	dropped += atomic_exchange_explicit(&pool->trace_lost, 0, memory_order_relaxed);
	memset(&tl, 0, sizeof(tl));
	memcpy(tl.magic, RIPEN_TRACE_END_MAGIC, 8);
	tl.records = tr->written;
	tl.dropped = dropped;
	tl.stop_ns = ripen__now_ns();
	if (fwrite(&tl, sizeof(tl), 1, tr->f) != 1)
		tr->io_error = true;
	if (fclose(tr->f) != 0)
		tr->io_error = true;
	rc = tr->io_error ? -EIO : 0;
	pool->trace = NULL;
	trace_free(tr);
	return rc;
}

int ripen_pool_trace_stop(struct ripen_pool *pool)
{
	int rc;

	if (pool == NULL)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_TRIGGER)
		return -EDEADLK; /* the grace period could not end */
	pthread_mutex_lock(&pool->trace_lock);
	rc = pool->trace != NULL ? trace_stop_locked(pool) : -EALREADY;
	pthread_mutex_unlock(&pool->trace_lock);
	return rc;
}

void ripen__trace_fini(struct ripen_pool *pool)
{
	pthread_mutex_lock(&pool->trace_lock);
	if (pool->trace != NULL)
		(void)trace_stop_locked(pool);
	pthread_mutex_unlock(&pool->trace_lock);
}
