/*
 * ripen-exporter: a ripen pool under steady mixed-class traffic, with its
 * metrics served over HTTP (libmicrohttpd) for Prometheus to scrape.
 *
 *   ripen-exporter [--port N] [--port-file PATH] [--duration S]
 *                  [--wait-scrapes N] [--linger S] [--workers N] [--rate R]
 *
 * Listens on 127.0.0.1 only (--port 0: the kernel picks; --port-file gets the
 * bound port once listening). Traffic (--rate tasks/s in all, from two
 * producer threads, for --duration seconds) starts once --wait-scrapes
 * requests of /metrics have been served; then the pool is waited idle and
 * /quiesced turns true. The exporter keeps serving until SIGINT/SIGTERM, or
 * --linger seconds after that.
 *
 *   /metrics   ripen_metrics_write(), Prometheus text format 0.0.4
 *   /stats     ripen_pool_class_stats() of every class used, as JSON
 *   /quiesced  {"quiesced": true|false}
 *
 * Classes: 1 "vip", 2 "batch", 3 "bulk" (named), 0 (label "0") and 200
 * (label "other"), under class weights over linear aging (tau 50 ms). One
 * watcher (mean wait of "batch" above 100 us) counts its firings.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ripen.h"

#define NPRODUCERS 2
#define TICK_NS 5000000ull /* producers submit a burst every 5 ms */

struct class_def {
	uint32_t id;
	const char *name;  /* set with ripen_pool_set_class_name, or NULL */
	const char *label; /* what the metrics call it */
	unsigned share;	   /* percent of the traffic */
	unsigned min_us, max_us; /* run time, spun */
};

static const struct class_def classes[] = {
	{ 0, NULL, "0", 20, 30, 200 },
	{ 1, "vip", "vip", 15, 20, 80 },
	{ 2, "batch", "batch", 30, 50, 300 },
	{ 3, "bulk", "bulk", 25, 100, 500 },
	{ 200, NULL, "other", 10, 20, 500 },
};
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))
#define WATCH_CLASS 2u

static struct ripen_pool *pool;
static atomic_bool quiesced;
static atomic_bool stop_traffic;
static atomic_ulong metrics_served;
static atomic_ulong watch_firings, watch_clears;
static atomic_ulong submit_errors;
static double rate = 3000.0;

static void usage(FILE *f)
{
	fprintf(f, "usage: ripen-exporter [--port N] [--port-file PATH] [--duration S]\n"
		   "       [--wait-scrapes N] [--linger S] [--workers N] [--rate TASKS_PER_S]\n");
}

/* ------------------------------------------------------------- traffic */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void spin_task(void *arg)
{
	uint64_t d = (uint64_t)(uintptr_t)arg, t0 = ripen_now_ns();
	volatile unsigned x = 0;

	while (ripen_now_ns() - t0 < d)
		x++;
}

static const struct class_def *pick_class(uint64_t *seed)
{
	unsigned r = (unsigned)(xorshift(seed) % 100), acc = 0;

	for (size_t i = 0; i < NCLASSES; i++) {
		acc += classes[i].share;
		if (r < acc)
			return &classes[i];
	}
	return &classes[NCLASSES - 1];
}

struct producer_arg {
	unsigned idx;
	uint64_t end_ns;
};

static void *producer(void *p)
{
	struct producer_arg *a = p;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (a->idx + 1), n = 0;
	double per_tick = rate / NPRODUCERS * (double)TICK_NS / 1e9, owed = 0;
	struct timespec next;

	/* the producers' bursts interleave: producer i starts i/NPRODUCERS
	 * of a tick late */
	clock_gettime(CLOCK_MONOTONIC, &next);
	next.tv_nsec += (long)(TICK_NS / NPRODUCERS * a->idx);
	for (;;) {
		while (next.tv_nsec >= 1000000000l) {
			next.tv_nsec -= 1000000000l;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		if (atomic_load(&stop_traffic) || ripen_now_ns() >= a->end_ns)
			break;
		owed += per_tick;
		for (; owed >= 1.0; owed -= 1.0) {
			const struct class_def *c = pick_class(&seed);
			struct ripen_task_opts o = RIPEN_TASK_OPTS_INIT;
			uint64_t us = c->min_us + xorshift(&seed) % (c->max_us - c->min_us + 1);
			/* one bulk task in 50 is cancelled right after submit, so
			 * that the cancelled counters move */
			bool cancel = c->id == 3 && xorshift(&seed) % 50 == 0;
			struct ripen_task *t = NULL;
			int rc;

			o.base = 1.0;
			o.class_id = c->id;
			rc = ripen_submit(pool, spin_task, (void *)(uintptr_t)(us * 1000u), &o,
					  cancel ? &t : NULL);
			if (rc != 0) {
				atomic_fetch_add(&submit_errors, 1);
				continue;
			}
			if (t) {
				(void)ripen_task_cancel(t); /* -EBUSY when it already started */
				ripen_task_release(t);
			}
			n++;
		}
		next.tv_nsec += (long)TICK_NS;
	}
	fprintf(stderr, "ripen-exporter: producer %u submitted %llu tasks\n", a->idx,
		(unsigned long long)n);
	return NULL;
}

static void watch_cb(struct ripen_pool *p, const struct ripen_watch_event *ev, void *arg)
{
	(void)p;
	(void)arg;
	atomic_fetch_add(ev->firing ? &watch_firings : &watch_clears, 1);
}

/* ---------------------------------------------------------------- HTTP */

static char *stats_json(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	fprintf(f, "{\"quiesced\": %s, \"classes\": {", atomic_load(&quiesced) ? "true" : "false");
	for (size_t i = 0; i < NCLASSES; i++) {
		struct ripen_class_stats st = RIPEN_CLASS_STATS_INIT;
		static const char *const key[10] = {
			"wait_p50_s", "wait_p95_s", "wait_p99_s", "wait_max_s", "wait_mean_s",
			"run_p50_s", "run_p95_s", "run_p99_s", "run_max_s", "run_mean_s",
		};
		double v[10];
		int rc = ripen_pool_class_stats(pool, classes[i].id, &st);

		if (rc != 0) {
			fclose(f);
			free(buf);
			return NULL;
		}
		v[0] = st.wait_p50_s, v[1] = st.wait_p95_s, v[2] = st.wait_p99_s;
		v[3] = st.wait_max_s, v[4] = st.wait_mean_s;
		v[5] = st.run_p50_s, v[6] = st.run_p95_s, v[7] = st.run_p99_s;
		v[8] = st.run_max_s, v[9] = st.run_mean_s;
		/* labels are plain identifiers: no JSON escaping needed */
		fprintf(f, "%s\n  \"%s\": {\"id\": %u, \"submitted\": %llu, \"started\": %llu, "
			   "\"cancelled\": %llu, \"rejected\": %llu, \"shed\": %llu, \"queued\": %llu",
			i ? "," : "", classes[i].label, (unsigned)classes[i].id,
			(unsigned long long)st.submitted, (unsigned long long)st.started,
			(unsigned long long)st.cancelled, (unsigned long long)st.rejected,
			(unsigned long long)st.shed, (unsigned long long)st.queued);
		for (size_t k = 0; k < 10; k++) {
			if (isfinite(v[k]))
				fprintf(f, ", \"%s\": %.9g", key[k], v[k]);
			else
				fprintf(f, ", \"%s\": null", key[k]);
		}
		fputc('}', f);
	}
	fprintf(f, "\n}, \"watch_firings\": %lu, \"watch_clears\": %lu, \"submit_errors\": %lu}\n",
		atomic_load(&watch_firings), atomic_load(&watch_clears),
		atomic_load(&submit_errors));
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static char *metrics_text(size_t *len, int *err)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	int rc;

	if (!f) {
		*err = -errno;
		return NULL;
	}
	rc = ripen_metrics_write(pool, f);
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc != 0) {
		free(buf);
		*err = rc;
		return NULL;
	}
	return buf;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char *body = strdup(msg);

	if (!body)
		return MHD_NO;
	return reply(c, status, "text/plain; charset=utf-8", body, strlen(body));
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	char *body;
	size_t len = 0;

	(void)cls;
	(void)version;
	(void)upload;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	if (*upload_size != 0)
		return reply_text(c, MHD_HTTP_BAD_REQUEST, "no body expected\n");
	if (strcmp(url, "/metrics") == 0) {
		int err = 0;
		enum MHD_Result ret;
		char msg[160];

		body = metrics_text(&len, &err);
		if (!body) {
			snprintf(msg, sizeof msg, "ripen_metrics_write: %s\n", ripen_strerror(err));
			return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, msg);
		}
		ret = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
		/* counted once the body is taken: traffic that this wakes up
		 * cannot be in a scrape it was waiting for */
		if (ret == MHD_YES && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
			atomic_fetch_add(&metrics_served, 1);
		return ret;
	}
	if (strcmp(url, "/stats") == 0) {
		body = stats_json(&len);
		if (!body)
			return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "class stats failed\n");
		return reply(c, MHD_HTTP_OK, "application/json", body, len);
	}
	if (strcmp(url, "/quiesced") == 0) {
		body = strdup(atomic_load(&quiesced) ? "{\"quiesced\": true}\n"
						     : "{\"quiesced\": false}\n");
		if (!body)
			return MHD_NO;
		return reply(c, MHD_HTTP_OK, "application/json", body, strlen(body));
	}
	if (strcmp(url, "/") == 0)
		return reply_text(c, MHD_HTTP_OK, "ripen-exporter: /metrics /stats /quiesced\n");
	return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---------------------------------------------------------------- main */

static bool parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

static int write_port_file(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0)
		return -EIO;
	if (rename(tmp, path) != 0)
		return -errno;
	return 0;
}

/* Wait up to `ns` for SIGINT/SIGTERM: true when one came. */
static bool wait_signal(const sigset_t *set, uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	int s = sigtimedwait(set, NULL, &ts);

	if (s == SIGINT || s == SIGTERM) {
		fprintf(stderr, "ripen-exporter: %s, stopping\n", strsignal(s));
		return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	double port = 0, duration = 6, wait_scrapes = 0, linger = -1, workers = 2;
	const char *port_file = NULL;
	struct ripen_pool_opts po = RIPEN_POOL_OPTS_INIT;
	struct ripen_watch_opts wo = RIPEN_WATCH_OPTS_INIT;
	static const double weights[] = { 1.0, 8.0, 2.0, 0.5 };
	struct sockaddr_in addr;
	struct MHD_Daemon *d = NULL;
	const union MHD_DaemonInfo *info;
	pthread_t prod[NPRODUCERS];
	struct producer_arg pa[NPRODUCERS];
	unsigned nprod = 0;
	sigset_t sigs;
	uint32_t watch_id, watch_id2;
	bool stop = false;
	int rc, status = 1;

	for (int i = 1; i < argc; i += 2) { /* every option takes a value */
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok;

		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			usage(stderr);
			return 2;
		}
		if (strcmp(o, "--port") == 0)
			ok = parse_num(v, 0, 65535, &port) && port == floor(port);
		else if (strcmp(o, "--port-file") == 0)
			ok = (port_file = v) != NULL;
		else if (strcmp(o, "--duration") == 0)
			ok = parse_num(v, 0, 86400, &duration);
		else if (strcmp(o, "--wait-scrapes") == 0)
			ok = parse_num(v, 0, 1e9, &wait_scrapes) && wait_scrapes == floor(wait_scrapes);
		else if (strcmp(o, "--linger") == 0)
			ok = parse_num(v, 0, 86400, &linger);
		else if (strcmp(o, "--workers") == 0)
			ok = parse_num(v, 1, RIPEN_MAX_WORKERS, &workers) && workers == floor(workers);
		else if (strcmp(o, "--rate") == 0)
			ok = parse_num(v, 1, 1e6, &rate);
		else
			ok = false;
		if (!ok) {
			fprintf(stderr, "ripen-exporter: bad option %s %s\n", o, v);
			usage(stderr);
			return 2;
		}
	}

	/* every thread (pool, MHD, producers) inherits the blocked set; only
	 * main takes the signals, with sigtimedwait */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	po.workers = (unsigned)workers;
	po.name = "exporter";
	po.policy = ripen_policy_class_weights(weights, sizeof weights / sizeof weights[0],
					       ripen_policy_linear_aging(0.05));
	if (!po.policy) {
		fprintf(stderr, "ripen-exporter: policy: out of memory\n");
		return 1;
	}
	rc = ripen_pool_create(&po, &pool);
	if (rc != 0) {
		fprintf(stderr, "ripen-exporter: pool: %s\n", ripen_strerror(rc));
		return 1;
	}
	for (size_t i = 0; i < NCLASSES; i++) {
		if (!classes[i].name)
			continue;
		rc = ripen_pool_set_class_name(pool, classes[i].id, classes[i].name);
		if (rc != 0) {
			fprintf(stderr, "ripen-exporter: class name %s: %s\n", classes[i].name,
				ripen_strerror(rc));
			goto out;
		}
	}
	wo.kind = RIPEN_WATCH_WAIT_MEAN;
	wo.class_id = WATCH_CLASS;
	wo.threshold = 100e-6; /* 100 us: a burst of "batch" work is above it */
	wo.window_ns = 500000000u;
	wo.fn = watch_cb;
	wo.action = RIPEN_WATCH_NOTIFY;
	rc = ripen_pool_watch(pool, &wo, &watch_id);
	if (rc != 0) {
		fprintf(stderr, "ripen-exporter: watch: %s\n", ripen_strerror(rc));
		goto out;
	}
	/* and one that fires at its first evaluation whatever the load (tasks
	 * of "bulk" queued now, above -1: always), so that the watcher series
	 * move in every run; the wait-mean one fires only when the machine is
	 * busy enough */
	wo.kind = RIPEN_WATCH_QUEUED;
	wo.class_id = 3;
	wo.threshold = -1;
	wo.window_ns = 100000000u;
	rc = ripen_pool_watch(pool, &wo, &watch_id2);
	if (rc != 0) {
		fprintf(stderr, "ripen-exporter: watch: %s\n", ripen_strerror(rc));
		goto out;
	}

	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
			     (uint16_t)port, NULL, NULL, handler, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
			     MHD_OPTION_CONNECTION_TIMEOUT, 10u,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "ripen-exporter: cannot listen on 127.0.0.1:%u\n", (unsigned)port);
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || info->port == 0) {
		fprintf(stderr, "ripen-exporter: no bound port\n");
		goto out;
	}
	fprintf(stderr, "ripen-exporter: listening on http://127.0.0.1:%u/metrics\n",
		(unsigned)info->port);
	if (port_file && (rc = write_port_file(port_file, info->port)) != 0) {
		fprintf(stderr, "ripen-exporter: %s: %s\n", port_file, strerror(-rc));
		goto out;
	}

	while (!stop && atomic_load(&metrics_served) < (unsigned long)wait_scrapes)
		stop = wait_signal(&sigs, 20000000u);
	if (!stop) {
		uint64_t end = ripen_now_ns() + (uint64_t)(duration * 1e9);

		fprintf(stderr, "ripen-exporter: traffic for %g s at %g tasks/s\n", duration, rate);
		for (; nprod < NPRODUCERS; nprod++) {
			pa[nprod].idx = nprod;
			pa[nprod].end_ns = end;
			if (pthread_create(&prod[nprod], NULL, producer, &pa[nprod]) != 0) {
				fprintf(stderr, "ripen-exporter: cannot start a producer\n");
				atomic_store(&stop_traffic, true);
				break;
			}
		}
		while (!stop && ripen_now_ns() < end)
			stop = wait_signal(&sigs, 20000000u);
		atomic_store(&stop_traffic, true);
		for (unsigned i = 0; i < nprod; i++)
			pthread_join(prod[i], NULL);
		if (nprod < NPRODUCERS)
			goto out;
	}
	while (!stop) {
		rc = ripen_pool_wait_idle(pool, 100000000);
		if (rc == 0)
			break;
		if (rc != -ETIMEDOUT) {
			fprintf(stderr, "ripen-exporter: wait_idle: %s\n", ripen_strerror(rc));
			goto out;
		}
		stop = wait_signal(&sigs, 0);
	}
	if (!stop) {
		atomic_store(&quiesced, true);
		fprintf(stderr, "ripen-exporter: quiesced; watcher fired %lu times\n",
			atomic_load(&watch_firings));
		if (linger >= 0) {
			uint64_t end = ripen_now_ns() + (uint64_t)(linger * 1e9);

			while (!stop && ripen_now_ns() < end)
				stop = wait_signal(&sigs, 20000000u);
		} else {
			while (!stop)
				stop = wait_signal(&sigs, 1000000000u);
		}
	}
	status = 0;
out:
	if (d)
		MHD_stop_daemon(d);
	ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_CANCEL);
	ripen_pool_destroy(pool);
	return status;
}
