/*
 * httpd: a libmicrohttpd server whose handlers hand their work to a pool
 * and answer when it is done, with no thread per request.
 *
 *   httpd [--port N] [--listen ADDR] [--workers N] [--policy SPEC]
 *         [--backend ripen|glib|fifo] [--start-paused] [--port-file PATH]
 *         [--max-seconds S] [--grace S] [--max-connections N]
 *         [--slo CLASS=Q:SECONDS]... [--control-period S]
 *
 *   GET /work?us=N[&class=C][&dist=fixed|pareto]   header X-Class: C
 *       C is vip, normal (the default) or batch. The work is a CPU spin of
 *       N microseconds (0..10000000); dist=pareto draws it instead from a
 *       Pareto law of shape 2 whose mean is N (capped at 50 N, so the mean
 *       is a little under N). 200 once it ran, with one line
 *       "class=C us=N seq=S worker=W wait_us=X run_us=Y" (S: the order in
 *       which the pool started the requests' work, from 0); 400 with the
 *       reason for a bad request; 503 when the server is stopping.
 *   GET /metrics        the pool's ripen_metrics_write (ripen backend),
 *                       then the server's own series (every backend)
 *   GET /admin/resume   starts a --start-paused pool (ripen backend)
 *
 * One thread, the event loop, runs libmicrohttpd in its external epoll mode
 * and polls three more descriptors in the same epoll set: the completion
 * queue's eventfd, a signalfd (SIGINT, SIGTERM) and nothing else. A /work
 * request is parsed, submitted and its connection suspended; the pool's
 * worker runs the spin and pushes the finished request to the completion
 * queue; the loop pops it, resumes the connection, and libmicrohttpd calls
 * the handler again, which answers. So a request costs no thread while it
 * waits, and every response is written by the loop thread.
 *
 * The backends share everything but the pool, so a comparison between them
 * measures only the pool:
 *   ripen   ripen_submit with the class's base score (vip 3, normal 2,
 *           batch 1) and class id (1, 2, 3, named), completions through a
 *           ripen_cq; the worker hooks name the worker threads and give each
 *           its index; any --policy spec of ripen-replay, or --policy
 *           adaptive with one --slo per objective (most important first;
 *           CLASS is vip, normal or batch; Q the quantile of the wait, in
 *           (0, 1)): ripen_pool_adapt tunes the class weights and tau every
 *           --control-period (default 0.5 s), of linear aging, or of
 *           class-scaled additive aging with --policy adaptive:additive;
 *   glib    GThreadPool (exclusive threads); --policy static installs a
 *           sort function (higher base first, then arrival order), fifo
 *           none. It sorts once, at push, so it cannot age;
 *   fifo    a plain pool: a mutex, a condition variable and one FIFO list.
 * The glib and fifo backends complete through a locked list and an eventfd
 * written when the list was empty (the same one-write-per-batch contract as
 * ripen_cq).
 *
 * Server-side figures in /metrics (httpd_*) are measured the same way for
 * every backend: wait = the worker's start - the submit, latency = the
 * loop's pop of the completion - the handler's first sight of the request,
 * both on ripen_now_ns's clock, kept exactly (every sample, up to 4M per
 * class and series) and summarised by nearest rank.
 *
 * Stopping (SIGINT, SIGTERM, --max-seconds): the listening socket closes,
 * a paused pool is resumed, and requests in flight get --grace seconds
 * (default 5) to finish; after that the rest are not run (those already
 * spinning finish their spin) and get 503. Then the pool shuts down and the
 * connections close. Exit status 0; 1 when something failed at run time; 2
 * for a bad command line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#ifdef HTTPD_HAVE_GLIB
#include <glib.h>
#endif

#include "ripen.h"
#include "spec.h"

#define PROG "httpd"
#define MAX_US 10000000ull	  /* the largest cost a request may ask: 10 s */
#define MAX_SAMPLES (4u << 20)	  /* per class and series */
#define MAX_WORKERS_HTTPD 256u

/* ------------------------------------------------------------- classes */

struct class_def {
	const char *name;
	uint32_t id;	/* ripen class id */
	double base;	/* base score */
};

static const struct class_def classes[] = {
	{ "vip", 1, 3.0 },
	{ "normal", 2, 2.0 },
	{ "batch", 3, 1.0 },
};
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))
#define DEFAULT_CLASS 1u /* normal */

/* ------------------------------------------------------------ requests */

struct req {
	struct MHD_Connection *conn;
	unsigned cls;		/* index into classes[] */
	uint64_t us;		/* as asked */
	uint64_t cost_ns;	/* as drawn */
	uint64_t arrive_ns;	/* the handler's first sight (loop thread) */
	uint64_t submit_ns;
	uint64_t seq;		/* submit order (glib's tie break) */
	/* written by the worker, read by the loop after the completion's
	 * hand-over (ripen_cq_pop, or the locked list) */
	uint64_t start_ns, end_ns;
	uint64_t start_seq;
	unsigned worker;
	bool cancelled;
	/* loop thread only */
	bool done;
	struct req *next;	/* the glib/fifo lists */
};

/* --------------------------------------------------------------- state */

enum backend { BACKEND_RIPEN, BACKEND_GLIB, BACKEND_FIFO };

static struct {
	enum backend backend;
	const char *backend_name;
	const char *policy_spec;
	unsigned workers;
	bool start_paused;
	unsigned port;
	const char *listen_addr;
	const char *port_file;
	double max_seconds;
	double grace_s;
	unsigned max_connections;
	struct ripen_objective slo[16];
	size_t nslo;
	double control_period_s;
} cfg = {
	.backend = BACKEND_RIPEN,
	.backend_name = "ripen",
	.workers = 0,
	.listen_addr = "127.0.0.1",
	.grace_s = 5.0,
	.max_connections = 16384,
	.control_period_s = 0.5,
};

/* Set once a stop began: workers skip the spin of whatever they start and
 * mark it cancelled. Written by the loop (relaxed store), read by workers
 * (relaxed load): a late sight only costs one more spin. */
static atomic_bool cancel_all;
/* The order in which workers start requests: relaxed fetch_add, pairs with
 * nothing (the numbers only need to be distinct and follow real time on a
 * single worker, which the RMW's total order per location gives). */
static atomic_ullong start_counter;
static _Thread_local unsigned tls_worker;
static atomic_ullong worker_tasks[MAX_WORKERS_HTTPD]; /* relaxed: a counter only */

/* loop-thread-only bookkeeping */
struct series {
	uint64_t *v;
	size_t n, cap;
	uint64_t sum_ns, dropped;
};
static struct {
	uint64_t accepted[NCLASSES], answered[NCLASSES], cancelled[NCLASSES];
	uint64_t bad_requests, not_found, refused;
	uint64_t inflight;
	struct series wait[NCLASSES], latency[NCLASSES];
	uint64_t next_seq;
} st;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull; /* loop thread: the Pareto draws */


/* A bad command line: the message and the usage, exit 2. */
static void die_usage(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rp_vdie(PROG, 2, "\nusage: " PROG " [--port N] [--listen ADDR] [--workers N] [--policy SPEC]\n"
			"             [--backend ripen|glib|fifo] [--start-paused] [--port-file PATH]\n"
			"             [--max-seconds S] [--grace S] [--max-connections N]\n"
			"             [--slo CLASS=Q:SECONDS]... [--control-period S]\n", fmt, ap);
}

/* A failure at run time: exit 1. */
static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rp_vdie(PROG, 1, "\n", fmt, ap);
}

static void series_add(struct series *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t *v;

		if (cap > MAX_SAMPLES || (v = realloc(s->v, cap * sizeof(*v))) == NULL) {
			s->dropped++;
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	s->sum_ns += ns;
}

/* ---------------------------------------------------------------- work */

static void spin_ns(uint64_t ns)
{
	uint64_t t0 = ripen_now_ns();
	volatile unsigned x = 0;

	while (ripen_now_ns() - t0 < ns)
		x++;
}

/* The work of one request, on a worker of whichever backend. */
static void run_req(struct req *r)
{
	r->start_ns = ripen_now_ns();
	/* relaxed: see start_counter */
	r->start_seq = atomic_fetch_add_explicit(&start_counter, 1, memory_order_relaxed);
	r->worker = tls_worker;
	/* relaxed: see worker_tasks */
	atomic_fetch_add_explicit(&worker_tasks[tls_worker % MAX_WORKERS_HTTPD], 1,
				  memory_order_relaxed);
	/* relaxed: see cancel_all */
	if (atomic_load_explicit(&cancel_all, memory_order_relaxed))
		r->cancelled = true;
	else
		spin_ns(r->cost_ns);
	r->end_ns = ripen_now_ns();
}

/* xorshift64*, then a Pareto(shape 2) draw with mean `us`, capped at 50 us */
static uint64_t draw_pareto_ns(uint64_t us)
{
	uint64_t x = rng_state;
	double u, v;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	u = ((double)((x * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0; /* (0,1) */
	v = (double)us * 0.5 / sqrt(u); /* x_m = mean/2 for shape 2 */
	if (v > 50.0 * (double)us)
		v = 50.0 * (double)us;
	return (uint64_t)(v * 1000.0);
}

/* ------------------------------------------- the glib/fifo completions */

/* A locked list and an eventfd, written when a push finds the list empty;
 * the loop reads the eventfd and then takes the whole list, so a push after
 * the take finds it empty again and writes. */
static struct {
	pthread_mutex_t lock;
	struct req *head, **tail;
	int efd;
} lq = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void lq_push(struct req *r)
{
	bool was_empty;

	pthread_mutex_lock(&lq.lock);
	r->next = NULL;
	was_empty = lq.head == NULL;
	*lq.tail = r;
	lq.tail = &r->next;
	pthread_mutex_unlock(&lq.lock);
	if (was_empty) {
		uint64_t one = 1;

		if (write(lq.efd, &one, sizeof(one)) != (ssize_t)sizeof(one) && errno != EAGAIN)
			abort(); /* an eventfd write fails only on a counter overflow */
	}
}

static struct req *lq_take(void)
{
	struct req *h;
	uint64_t v;

	if (read(lq.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		die("completion eventfd: %s", strerror(errno));
	pthread_mutex_lock(&lq.lock);
	h = lq.head;
	lq.head = NULL;
	lq.tail = &lq.head;
	pthread_mutex_unlock(&lq.lock);
	return h;
}

/* ------------------------------------------------------------ backends */

static struct ripen_pool *pool;
static struct ripen_cq *cq;

static void hook_start(struct ripen_pool *p, unsigned worker, void *arg)
{
	char name[16];

	(void)p;
	(void)arg;
	tls_worker = worker;
	snprintf(name, sizeof(name), "httpd-w%u", worker);
	(void)pthread_setname_np(pthread_self(), name);
}

static void hook_stop(struct ripen_pool *p, unsigned worker, void *arg)
{
	(void)p;
	(void)arg;
	(void)worker;
}

static void ripen_fn_req(void *arg)
{
	run_req(arg);
}

/* the glib and fifo workers number themselves at their first task */
static atomic_uint next_worker_index; /* relaxed: distinct numbers only */
static _Thread_local bool tls_numbered;

static void number_worker(void)
{
	if (!tls_numbered) {
		tls_numbered = true;
		tls_worker = atomic_fetch_add_explicit(&next_worker_index, 1, memory_order_relaxed);
	}
}

#ifdef HTTPD_HAVE_GLIB
static GThreadPool *gpool;

static void glib_fn(gpointer data, gpointer user)
{
	(void)user;
	number_worker();
	run_req(data);
	lq_push(data);
}

/* static: higher base first, then earlier submit */
static gint glib_cmp(gconstpointer a, gconstpointer b, gpointer user)
{
	const struct req *x = a, *y = b;
	double bx = classes[x->cls].base, by = classes[y->cls].base;

	(void)user;
	if (bx != by)
		return bx > by ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}
#endif

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct req *head, **tail;
	bool stop;
	pthread_t *threads;
} fq = { .lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *fifo_worker(void *arg)
{
	(void)arg;
	number_worker();
	for (;;) {
		struct req *r;

		pthread_mutex_lock(&fq.lock);
		while (fq.head == NULL && !fq.stop)
			pthread_cond_wait(&fq.cv, &fq.lock);
		r = fq.head;
		if (r == NULL) {
			pthread_mutex_unlock(&fq.lock);
			return NULL;
		}
		fq.head = r->next;
		if (fq.head == NULL)
			fq.tail = &fq.head;
		pthread_mutex_unlock(&fq.lock);
		run_req(r);
		lq_push(r);
	}
}

static int comp_fd(void)
{
	return cfg.backend == BACKEND_RIPEN ? ripen_cq_fd(cq) : lq.efd;
}

static void backend_start(void)
{
	char why[256] = "out of memory";
	struct ripen_policy *p = NULL;
	int rc;

	if (cfg.workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg.workers = n > 0 ? (unsigned)n : 1u;
	}
	if (cfg.backend != BACKEND_RIPEN) {
		lq.tail = &lq.head;
		lq.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (lq.efd < 0)
			die("eventfd: %s", strerror(errno));
	}
	switch (cfg.backend) {
	case BACKEND_RIPEN: {
		struct ripen_pool_opts o = RIPEN_POOL_OPTS_INIT;

		if (rp_adaptive_form(cfg.policy_spec, NULL))
			p = ripen_policy_static(); /* until ripen_pool_adapt below */
		else
			p = rp_policy_parse(cfg.policy_spec, why, sizeof(why));
		if (p == NULL)
			die_usage("--policy '%s': %s", cfg.policy_spec, why);
		o.workers = cfg.workers;
		o.policy = p; /* taken over */
		o.start_paused = cfg.start_paused;
		o.name = "httpd";
		o.on_worker_start = hook_start;
		o.on_worker_stop = hook_stop;
		rc = ripen_pool_create(&o, &pool);
		if (rc != 0)
			die("ripen_pool_create: %s", ripen_strerror(rc));
		for (size_t i = 0; i < NCLASSES; i++) {
			rc = ripen_pool_set_class_name(pool, classes[i].id, classes[i].name);
			if (rc != 0)
				die("ripen_pool_set_class_name: %s", ripen_strerror(rc));
		}
		rc = ripen_cq_create(&cq);
		if (rc != 0)
			die("ripen_cq_create: %s", ripen_strerror(rc));
		if (cfg.nslo > 0) {
			struct ripen_adaptive_opts ao = RIPEN_ADAPTIVE_OPTS_INIT;

			ao.objectives = cfg.slo;
			ao.n = cfg.nslo;
			ao.period_ns = (uint64_t)(cfg.control_period_s * 1e9);
			(void)rp_adaptive_form(cfg.policy_spec, &ao.aging);
			rc = ripen_pool_adapt(pool, &ao);
			if (rc != 0)
				die("ripen_pool_adapt: %s", ripen_strerror(rc));
		}
		break;
	}
	case BACKEND_GLIB: {
#ifdef HTTPD_HAVE_GLIB
		GError *err = NULL;

		gpool = g_thread_pool_new(glib_fn, NULL, (gint)cfg.workers, TRUE, &err);
		if (gpool == NULL)
			die("g_thread_pool_new: %s", err ? err->message : "failed");
		if (strcmp(cfg.policy_spec, "static") == 0)
			g_thread_pool_set_sort_function(gpool, glib_cmp, NULL);
#else
		die_usage("--backend glib: built without GLib (libglib2.0-dev)");
#endif
		break;
	}
	case BACKEND_FIFO:
		fq.tail = &fq.head;
		fq.threads = calloc(cfg.workers, sizeof(*fq.threads));
		if (fq.threads == NULL)
			die("out of memory");
		for (unsigned i = 0; i < cfg.workers; i++) {
			rc = pthread_create(&fq.threads[i], NULL, fifo_worker, NULL);
			if (rc != 0)
				die("pthread_create: %s", strerror(rc));
		}
		break;
	}
}

/* 0, or a negative errno (the request is not queued, nothing will complete) */
static int backend_submit(struct req *r)
{
	r->submit_ns = ripen_now_ns();
	r->seq = st.next_seq++;
	switch (cfg.backend) {
	case BACKEND_RIPEN: {
		struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;

		o.base = classes[r->cls].base;
		o.class_id = classes[r->cls].id;
		o.cq = cq;
		return ripen_submit(pool, ripen_fn_req, r, &o, NULL);
	}
	case BACKEND_GLIB:
#ifdef HTTPD_HAVE_GLIB
		/* GLib queues the data even when it returns FALSE (a thread
		 * could not be started): it still runs, so it is accepted */
		(void)g_thread_pool_push(gpool, r, NULL);
		return 0;
#else
		return -ENOSYS;
#endif
	case BACKEND_FIFO:
		pthread_mutex_lock(&fq.lock);
		if (fq.stop) {
			pthread_mutex_unlock(&fq.lock);
			return -ESHUTDOWN;
		}
		r->next = NULL;
		*fq.tail = r;
		fq.tail = &r->next;
		pthread_cond_signal(&fq.cv);
		pthread_mutex_unlock(&fq.lock);
		return 0;
	}
	return -EINVAL;
}

/* Everything completed so far, as a list through ->next (loop thread). */
static struct req *backend_take(void)
{
	struct req *h = NULL, **tail = &h;
	struct ripen_task *t;
	int rc;

	if (cfg.backend != BACKEND_RIPEN)
		return lq_take();
	while ((rc = ripen_cq_pop(cq, &t)) == 0) {
		struct req *r = ripen_task_arg(t);

		/* a task cancelled by the pool never ran run_req */
		if (ripen_task_state(t) == RIPEN_TASK_CANCELLED) {
			r->cancelled = true;
			r->start_ns = r->end_ns = ripen_now_ns();
		}
		ripen_task_release(t);
		r->next = NULL;
		*tail = r;
		tail = &r->next;
	}
	if (rc != -EAGAIN)
		die("ripen_cq_pop: %s", ripen_strerror(rc));
	return h;
}

static void backend_stop(void)
{
	switch (cfg.backend) {
	case BACKEND_RIPEN: {
		int rc = ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN);

		if (rc != 0)
			die("ripen_pool_shutdown: %s", ripen_strerror(rc));
		break;
	}
	case BACKEND_GLIB:
#ifdef HTTPD_HAVE_GLIB
		g_thread_pool_free(gpool, FALSE, TRUE);
		gpool = NULL;
#endif
		break;
	case BACKEND_FIFO:
		pthread_mutex_lock(&fq.lock);
		fq.stop = true;
		pthread_cond_broadcast(&fq.cv);
		pthread_mutex_unlock(&fq.lock);
		for (unsigned i = 0; i < cfg.workers; i++)
			pthread_join(fq.threads[i], NULL);
		break;
	}
}

static void backend_destroy(void)
{
	if (cfg.backend == BACKEND_RIPEN) {
		ripen_pool_destroy(pool);
		ripen_cq_destroy(cq);
	} else {
		close(lq.efd);
		free(fq.threads);
	}
}

/* --------------------------------------------------------------- HTTP */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *ctype,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *ctype,
			     const char *fmt, ...)
{
	char buf[512];
	struct MHD_Response *resp;
	enum MHD_Result ret;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	resp = MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = MHD_queue_response(c, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result bad_request(struct MHD_Connection *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static enum MHD_Result bad_request(struct MHD_Connection *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	st.bad_requests++;
	return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain", "bad request: %s\n", why);
}

/* Copy at most 32 bytes of s for a message, non-printing bytes as '?'. */
static const char *shown(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; s[i] != 0 && i + 4 < len && i < 32; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? s[i] : '?';
	if (s[i] != 0 && i + 4 <= len) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = 0;
	return buf;
}

static int class_index(const char *name)
{
	for (size_t i = 0; i < NCLASSES; i++)
		if (strcmp(name, classes[i].name) == 0)
			return (int)i;
	return -1;
}

/* s's quantiles from `sorted`, its samples in ascending order */
static void quantiles_out(FILE *f, const char *metric, const char *cls, const struct series *s,
			  const uint64_t *sorted)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };

	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		double v = NAN;

		if (s->n > 0) {
			/* nearest rank: the ceil(q n)-th smallest */
			size_t rank = (size_t)ceil(qs[k] * (double)s->n);

			if (rank < 1)
				rank = 1;
			v = (double)sorted[rank - 1] / 1e9;
		}
		if (isnan(v))
			fprintf(f, "%s{class=\"%s\",quantile=\"%g\"} NaN\n", metric, cls, qs[k]);
		else
			fprintf(f, "%s{class=\"%s\",quantile=\"%g\"} %.9g\n", metric, cls, qs[k], v);
	}
	fprintf(f, "%s_sum{class=\"%s\"} %.9g\n", metric, cls, (double)s->sum_ns / 1e9);
	fprintf(f, "%s_count{class=\"%s\"} %zu\n", metric, cls, s->n);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static char *metrics_text(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	uint64_t *scratch = NULL;
	size_t most = 0;

	if (f == NULL)
		return NULL;
	if (cfg.backend == BACKEND_RIPEN) {
		int rc = ripen_metrics_write(pool, f);

		if (rc != 0)
			fprintf(stderr, PROG ": ripen_metrics_write: %s\n", ripen_strerror(rc));
	}
	fprintf(f, "# HELP httpd_info The server's backend and policy.\n# TYPE httpd_info gauge\n");
	fprintf(f, "httpd_info{backend=\"%s\",policy=\"%s\",workers=\"%u\"} 1\n", cfg.backend_name,
		cfg.policy_spec, cfg.workers);
	fprintf(f, "# HELP httpd_work_accepted_total /work requests submitted to the pool.\n"
		   "# TYPE httpd_work_accepted_total counter\n");
	for (size_t i = 0; i < NCLASSES; i++)
		fprintf(f, "httpd_work_accepted_total{class=\"%s\"} %llu\n", classes[i].name,
			(unsigned long long)st.accepted[i]);
	fprintf(f, "# HELP httpd_work_answered_total /work requests answered 200.\n"
		   "# TYPE httpd_work_answered_total counter\n");
	for (size_t i = 0; i < NCLASSES; i++)
		fprintf(f, "httpd_work_answered_total{class=\"%s\"} %llu\n", classes[i].name,
			(unsigned long long)st.answered[i]);
	fprintf(f, "# HELP httpd_work_cancelled_total /work requests not run (stopping): 503.\n"
		   "# TYPE httpd_work_cancelled_total counter\n");
	for (size_t i = 0; i < NCLASSES; i++)
		fprintf(f, "httpd_work_cancelled_total{class=\"%s\"} %llu\n", classes[i].name,
			(unsigned long long)st.cancelled[i]);
	fprintf(f, "# HELP httpd_bad_requests_total Requests answered 400.\n"
		   "# TYPE httpd_bad_requests_total counter\nhttpd_bad_requests_total %llu\n",
		(unsigned long long)st.bad_requests);
	fprintf(f, "# HELP httpd_refused_total /work requests the pool refused: 503.\n"
		   "# TYPE httpd_refused_total counter\nhttpd_refused_total %llu\n",
		(unsigned long long)st.refused);
	fprintf(f, "# HELP httpd_inflight /work requests accepted and not yet answered.\n"
		   "# TYPE httpd_inflight gauge\nhttpd_inflight %llu\n",
		(unsigned long long)st.inflight);
	fprintf(f, "# HELP httpd_worker_tasks_total Requests each worker started.\n"
		   "# TYPE httpd_worker_tasks_total counter\n");
	for (unsigned w = 0; w < cfg.workers && w < MAX_WORKERS_HTTPD; w++)
		fprintf(f, "httpd_worker_tasks_total{worker=\"%u\"} %llu\n", w,
			/* relaxed: see worker_tasks */
			(unsigned long long)atomic_load_explicit(&worker_tasks[w],
								 memory_order_relaxed));
	for (size_t i = 0; i < NCLASSES; i++) {
		most = st.wait[i].n > most ? st.wait[i].n : most;
		most = st.latency[i].n > most ? st.latency[i].n : most;
	}
	scratch = malloc((most ? most : 1) * sizeof(*scratch));
	if (scratch == NULL) {
		fclose(f);
		free(buf);
		return NULL;
	}
	for (int m = 0; m < 2; m++) {
		const char *name = m == 0 ? "httpd_wait_seconds" : "httpd_latency_seconds";

		fprintf(f, "# HELP %s %s, exact quantiles by nearest rank.\n# TYPE %s summary\n", name,
			m == 0 ? "Submit to the worker's start, per class"
			       : "The handler's first sight to the completion's pop, per class",
			name);
		for (size_t i = 0; i < NCLASSES; i++) {
			struct series *s = m == 0 ? &st.wait[i] : &st.latency[i];

			if (s->n > 0) { /* s->v is NULL before the first sample */
				memcpy(scratch, s->v, s->n * sizeof(*scratch));
				qsort(scratch, s->n, sizeof(*scratch), cmp_u64);
			}
			quantiles_out(f, name, classes[i].name, s, scratch);
		}
	}
	free(scratch);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static enum MHD_Result answer_metrics(struct MHD_Connection *c)
{
	size_t len = 0;
	char *text = metrics_text(&len);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (text == NULL)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n");
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				      "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool stopping;

static enum MHD_Result answer_work(struct MHD_Connection *c, void **con_cls)
{
	const char *us_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "us");
	const char *qcls = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "class");
	const char *hcls = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Class");
	const char *dist = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dist");
	char sh[40];
	uint64_t us = 0;
	int cls = (int)DEFAULT_CLASS;
	struct req *r;
	int rc;

	if (us_s == NULL)
		return bad_request(c, "missing us=N (microseconds of work, 0..%llu)", MAX_US);
	if (*us_s == 0 || strlen(us_s) > 8)
		goto bad_us;
	for (const char *p = us_s; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad_us;
		us = us * 10 + (uint64_t)(*p - '0');
	}
	if (us > MAX_US)
		goto bad_us;
	if (hcls != NULL && qcls != NULL && strcmp(hcls, qcls) != 0)
		return bad_request(c, "X-Class '%s' and class= disagree", shown(hcls, sh, sizeof(sh)));
	if (hcls != NULL || qcls != NULL) {
		const char *name = hcls ? hcls : qcls;

		cls = class_index(name);
		if (cls < 0)
			return bad_request(c, "unknown class '%s' (vip, normal, batch)",
					   shown(name, sh, sizeof(sh)));
	}
	if (dist != NULL && strcmp(dist, "fixed") != 0 && strcmp(dist, "pareto") != 0)
		return bad_request(c, "unknown dist '%s' (fixed, pareto)", shown(dist, sh, sizeof(sh)));
	if (stopping) {
		st.refused++;
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "stopping\n");
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "out of memory\n");
	r->conn = c;
	r->cls = (unsigned)cls;
	r->us = us;
	r->cost_ns = dist != NULL && strcmp(dist, "pareto") == 0 ? draw_pareto_ns(us) : us * 1000u;
	r->arrive_ns = ripen_now_ns();
	rc = backend_submit(r);
	if (rc != 0) {
		free(r);
		st.refused++;
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "pool refused: %s\n",
			     ripen_strerror(rc));
	}
	st.accepted[cls]++;
	st.inflight++;
	*con_cls = r;
	MHD_suspend_connection(c);
	return MHD_YES;
bad_us:
	return bad_request(c, "us '%s' is not a whole number of microseconds 0..%llu",
			   shown(us_s, sh, sizeof(sh)), MAX_US);
}

static enum MHD_Result answer_done(struct MHD_Connection *c, struct req *r)
{
	if (r->cancelled)
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
			     "stopping: the work was not run\n");
	return reply(c, MHD_HTTP_OK, "text/plain",
		     "class=%s us=%llu seq=%llu worker=%u wait_us=%.1f run_us=%.1f\n",
		     classes[r->cls].name, (unsigned long long)r->us,
		     (unsigned long long)r->start_seq, r->worker,
		     (double)(r->start_ns - r->submit_ns) / 1e3,
		     (double)(r->end_ns - r->start_ns) / 1e3);
}

/*
 * libmicrohttpd calls the handler several times per request: first with
 * only the headers, then (for a body) with its pieces, then once with
 * *upload_data_size 0 when the request is complete. A response queued
 * before that last call makes it close the connection, so the first call
 * only marks the request (seen_headers), a body is swallowed and marked
 * (seen_body: a GET has none, 400), and the work starts on the last call.
 * After a resume the context is the struct req.
 */
static char seen_headers, seen_body;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	void *ctx = *con_cls;

	(void)cls;
	(void)version;
	(void)upload_data;
	if (ctx == NULL) {
		*con_cls = &seen_headers;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		*con_cls = &seen_body;
		return MHD_YES;
	}
	if (ctx != &seen_headers && ctx != &seen_body) /* resumed: the work completed */
		return answer_done(c, ctx);
	*con_cls = NULL; /* from here on, only a struct req */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "only GET\n");
	if (ctx == &seen_body)
		return bad_request(c, "a GET has no body");
	if (strcmp(url, "/work") == 0)
		return answer_work(c, con_cls);
	if (strcmp(url, "/metrics") == 0)
		return answer_metrics(c);
	if (strcmp(url, "/admin/resume") == 0) {
		int rc;

		if (cfg.backend != BACKEND_RIPEN)
			return reply(c, MHD_HTTP_CONFLICT, "text/plain", "not a ripen pool\n");
		rc = ripen_pool_resume(pool);
		return reply(c, rc == 0 ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			     "%s\n", rc == 0 ? "resumed" : ripen_strerror(rc));
	}
	st.not_found++;
	return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "no such path (/work, /metrics)\n");
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r == NULL || *con_cls == &seen_headers || *con_cls == &seen_body)
		return;
	/* A suspended request is only terminated after its resume (stopping
	 * resumes everything before MHD_stop_daemon), so its work is done. */
	if (!r->done)
		die("request terminated while its work was queued (internal error at %s:%d)",
		    __FILE__, __LINE__);
	free(r);
	*con_cls = NULL;
}

/* Resume every completed request's connection; count and record it. */
static void take_completions(void)
{
	struct req *r = backend_take();
	uint64_t now = ripen_now_ns();

	while (r != NULL) {
		struct req *next = r->next;

		r->done = true;
		st.inflight--;
		if (r->cancelled) {
			st.cancelled[r->cls]++;
		} else {
			st.answered[r->cls]++;
			series_add(&st.wait[r->cls], r->start_ns - r->submit_ns);
			series_add(&st.latency[r->cls], now - r->arrive_ns);
		}
		MHD_resume_connection(r->conn);
		r = next;
	}
}

/* ---------------------------------------------------------------- main */

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "policy", required_argument, NULL, 'P' },
		{ "backend", required_argument, NULL, 'b' },
		{ "start-paused", no_argument, NULL, 'S' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{ "grace", required_argument, NULL, 'g' },
		{ "max-connections", required_argument, NULL, 'c' },
		{ "slo", required_argument, NULL, 'o' },
		{ "control-period", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned long long v;
	double d;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (!rp_parse_uint(optarg, 65535, &v))
				die_usage("--port '%s': not a port number 0..65535", optarg);
			cfg.port = (unsigned)v;
			break;
		case 'l':
			cfg.listen_addr = optarg;
			break;
		case 'w':
			if (!rp_parse_uint(optarg, MAX_WORKERS_HTTPD, &v) || v == 0)
				die_usage("--workers '%s': not a count 1..%u", optarg, MAX_WORKERS_HTTPD);
			cfg.workers = (unsigned)v;
			break;
		case 'P':
			cfg.policy_spec = optarg;
			break;
		case 'b':
			if (strcmp(optarg, "ripen") == 0)
				cfg.backend = BACKEND_RIPEN;
			else if (strcmp(optarg, "glib") == 0)
				cfg.backend = BACKEND_GLIB;
			else if (strcmp(optarg, "fifo") == 0)
				cfg.backend = BACKEND_FIFO;
			else
				die_usage("--backend '%s': ripen, glib or fifo", optarg);
			cfg.backend_name = optarg;
			break;
		case 'S':
			cfg.start_paused = true;
			break;
		case 'f':
			cfg.port_file = optarg;
			break;
		case 'm':
			if (!rp_parse_num(optarg, &d) || d <= 0 || d > 1e7)
				die_usage("--max-seconds '%s': not a positive number of seconds", optarg);
			cfg.max_seconds = d;
			break;
		case 'g':
			if (!rp_parse_num(optarg, &d) || d < 0 || d > 1e7)
				die_usage("--grace '%s': not a number of seconds >= 0", optarg);
			cfg.grace_s = d;
			break;
		case 'c':
			if (!rp_parse_uint(optarg, 1000000, &v) || v == 0)
				die_usage("--max-connections '%s': not a count 1..1000000", optarg);
			cfg.max_connections = (unsigned)v;
			break;
		case 'o': {
			char name[16];
			const char *eq = strchr(optarg, '='), *colon = eq ? strchr(eq, ':') : NULL;
			char q[64];
			int ci;
			struct ripen_objective *ob = &cfg.slo[cfg.nslo];

			if (eq == NULL || colon == NULL || (size_t)(eq - optarg) >= sizeof(name) ||
			    (size_t)(colon - eq - 1) >= sizeof(q))
				die_usage("--slo '%s': CLASS=QUANTILE:SECONDS, e.g. vip=0.99:0.005", optarg);
			if (cfg.nslo == 3)
				die_usage("--slo: one per class (vip, normal, batch)");
			memcpy(name, optarg, (size_t)(eq - optarg));
			name[eq - optarg] = 0;
			memcpy(q, eq + 1, (size_t)(colon - eq - 1));
			q[colon - eq - 1] = 0;
			if ((ci = class_index(name)) < 0)
				die_usage("--slo '%s': unknown class '%s' (vip, normal, batch)", optarg, name);
			for (size_t i = 0; i < cfg.nslo; i++)
				if (cfg.slo[i].class_id == classes[ci].id)
					die_usage("--slo: class %s has an objective already", name);
			ob->class_id = classes[ci].id;
			if (!rp_parse_num(q, &ob->quantile) || !(ob->quantile > 0 && ob->quantile < 1))
				die_usage("--slo '%s': the quantile must be in (0, 1)", optarg);
			if (!rp_parse_num(colon + 1, &ob->target_s) || !(ob->target_s > 0) ||
			    ob->target_s > 1e6)
				die_usage("--slo '%s': the target must be seconds > 0", optarg);
			cfg.nslo++;
			break;
		}
		case 'C':
			if (!rp_parse_num(optarg, &d) || d < 0.001 || d > 3600)
				die_usage("--control-period '%s': seconds, 0.001..3600", optarg);
			cfg.control_period_s = d;
			break;
		case 'h':
			die_usage("help");
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (cfg.policy_spec == NULL)
		cfg.policy_spec = cfg.backend == BACKEND_FIFO ? "fifo" : "static";
	if (cfg.backend == BACKEND_GLIB && strcmp(cfg.policy_spec, "static") != 0 &&
	    strcmp(cfg.policy_spec, "fifo") != 0)
		die_usage("--backend glib takes --policy static or fifo (GThreadPool sorts once, "
			  "at push: it cannot age)");
	if (cfg.backend == BACKEND_FIFO && strcmp(cfg.policy_spec, "fifo") != 0)
		die_usage("--backend fifo takes only --policy fifo");
	if (cfg.start_paused && cfg.backend != BACKEND_RIPEN)
		die_usage("--start-paused needs --backend ripen");
	if (rp_adaptive_form(cfg.policy_spec, NULL) != (cfg.nslo > 0))
		die_usage("--policy adaptive and --slo go together (--backend ripen)");
}

static void write_port_file(unsigned port)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (cfg.port_file == NULL)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", cfg.port_file) >= (int)sizeof(tmp))
		die("--port-file: path too long");
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, cfg.port_file) != 0)
		die("--port-file %s: %s", cfg.port_file, strerror(errno));
}

static struct MHD_Daemon *start_daemon(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg.listen_addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)cfg.port);
	} else if (inet_pton(AF_INET6, cfg.listen_addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)cfg.port);
		flags |= MHD_USE_IPv6;
	} else {
		die_usage("--listen '%s': not a numeric IPv4 or IPv6 address", cfg.listen_addr);
	}
	d = MHD_start_daemon(flags, (uint16_t)cfg.port, NULL, NULL, handler, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
			     MHD_OPTION_CONNECTION_LIMIT, cfg.max_connections,
			     MHD_OPTION_CONNECTION_TIMEOUT, 120u,
			     MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
			     MHD_OPTION_END);
	if (d == NULL)
		die("cannot listen on %s port %u", cfg.listen_addr, cfg.port);
	return d;
}

static void epoll_add(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct rlimit rl;
	sigset_t sigs;
	int ep, sfd, mfd, cfd;
	uint64_t t0, stop_at = 0;
	unsigned port;

	parse_args(argc, argv);
	/* a server with many clients: as many descriptors as we may have */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* the signals go to the signalfd: block them before any thread exists */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0)
		die("pthread_sigmask failed");
	signal(SIGPIPE, SIG_IGN);
	backend_start();
	d = start_daemon();
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : cfg.port;
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL)
		die("no epoll descriptor from libmicrohttpd");
	mfd = info->epoll_fd;
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0)
		die("signalfd/epoll: %s", strerror(errno));
	cfd = comp_fd();
	epoll_add(ep, mfd);
	epoll_add(ep, cfd);
	epoll_add(ep, sfd);
	write_port_file(port);
	printf(PROG ": listening on %s port %u, backend %s, policy %s, %u workers%s\n",
	       cfg.listen_addr, port, cfg.backend_name, cfg.policy_spec, cfg.workers,
	       cfg.start_paused ? ", paused" : "");
	fflush(stdout);
	t0 = ripen_now_ns();

	for (;;) {
		struct epoll_event evs[8];
		MHD_UNSIGNED_LONG_LONG to;
		int ms = -1, n;
		uint64_t now = ripen_now_ns();

		if (MHD_get_timeout(d, &to) == MHD_YES)
			ms = to > 1000 ? 1000 : (int)to;
		if (cfg.max_seconds > 0 || stopping)
			ms = ms < 0 || ms > 100 ? 100 : ms; /* look at the clock at least every 100 ms */
		n = epoll_wait(ep, evs, 8, ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
					stopping = true;
			}
		}
		/* the completions first: their connections are then served by
		 * the MHD_run below */
		take_completions();
		now = ripen_now_ns();
		if (!stopping && cfg.max_seconds > 0 && (double)(now - t0) / 1e9 >= cfg.max_seconds)
			stopping = true;
		if (stopping && stop_at == 0) {
			MHD_socket ls = MHD_quiesce_daemon(d);

			if (ls != MHD_INVALID_SOCKET)
				close(ls);
			stop_at = now + (uint64_t)(cfg.grace_s * 1e9);
			/* a paused pool would hold its requests past any grace */
			if (cfg.backend == BACKEND_RIPEN && ripen_pool_resume(pool) != 0)
				die("ripen_pool_resume failed");
			fprintf(stderr, PROG ": stopping, %llu requests in flight\n",
				(unsigned long long)st.inflight);
		}
		if (stop_at != 0 && now >= stop_at)
			/* relaxed: see cancel_all */
			atomic_store_explicit(&cancel_all, true, memory_order_relaxed);
		if (MHD_run(d) != MHD_YES)
			die("MHD_run failed");
		if (stop_at != 0 && st.inflight == 0)
			break;
	}
	/* every request has been resumed: let MHD write the last responses
	 * (bounded: one more second) */
	for (uint64_t end = ripen_now_ns() + 1000000000ull; ripen_now_ns() < end;) {
		const union MHD_DaemonInfo *ci = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		struct epoll_event ev;

		if (ci == NULL || ci->num_connections == 0)
			break;
		(void)epoll_wait(ep, &ev, 1, 10);
		(void)MHD_run(d);
	}
	backend_stop();
	MHD_stop_daemon(d);
	backend_destroy();
	close(ep);
	close(sfd);
	fprintf(stderr, PROG ": stopped\n");
	for (size_t i = 0; i < NCLASSES; i++) {
		free(st.wait[i].v);
		free(st.latency[i].v);
	}
	return 0;
}
