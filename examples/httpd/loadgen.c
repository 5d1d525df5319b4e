/*
 * loadgen: an open-loop HTTP/1.1 load generator for examples/httpd.
 *
 *   loadgen --port N [--host ADDR] --rate R --duration S [--us N]
 *           [--mix vip:10,normal:30,batch:60] [--dist fixed|pareto]
 *           [--max-conns N] [--drain S] [--out FILE]
 *
 * Requests are scheduled at a constant rate R (per second, all classes
 * together) for S seconds, their classes interleaved by a smooth weighted
 * round robin over --mix (so any window of 100 requests holds the mix to
 * within one request per class). Each one goes out at its scheduled time on
 * an idle keep-alive connection, a new one while fewer than --max-conns are
 * open, or else waits in a FIFO for the next free connection. Its latency is
 * counted from its scheduled time, not from when it went out, so a slow
 * server is not hidden by a client that stops sending (no coordinated
 * omission: Tene, "How NOT to measure latency", 2015).
 *
 * Why not h2load --rps: nghttp2 1.52's h2load (Debian 12) did not limit
 * the rate over HTTP/1.1 here: `h2load --h1 -c 10 --rps 20 -n 200 URL`
 * finished 200 requests in 25 ms, and with -D it spun in the kernel after
 * "Stopped all clients" until killed (README, "Under load").
 *
 * After the schedule ends it waits up to --drain seconds (default 60) for
 * the answers. Output: per class, on stdout,
 *   class sent answered ok p50_ms p99_ms max_ms unfinished
 * (latencies by nearest rank over the answered ones; `unfinished` were
 * still open at the end of the drain, each at least that late), and with
 * --out one line per request: class, scheduled offset in us, latency in us,
 * status (0 = unfinished or failed). Exit 0; 1 on a run-time failure
 * (connect refused, a malformed response); 2 on a bad command line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "spec.h"

#define PROG "loadgen"
#define MAX_CLASSES 8

struct klass {
	char name[16];
	unsigned weight;
	long credit;	/* smooth weighted round robin */
};

struct rq {
	unsigned cls;
	uint64_t sched_ns, done_ns;
	int status;	/* 0 until answered */
	struct rq *next; /* the waiting FIFO */
};

struct conn {
	int fd;
	bool connected;
	struct rq *cur;	/* the request in flight, or NULL (idle) */
	char buf[4096];
	size_t have;
	struct conn *next_idle;
};

static struct {
	const char *host;
	unsigned port;
	double rate, duration, drain;
	unsigned long us;
	const char *dist;
	unsigned max_conns;
	const char *out;
	struct klass k[MAX_CLASSES];
	unsigned nk;
} cfg = { .host = "127.0.0.1", .drain = 60.0, .dist = "fixed", .max_conns = 512 };

static struct sockaddr_in addr;
static int ep;
static struct conn *idle;
static unsigned nconns, failures;
static size_t done_count;
static struct rq *wait_head, **wait_tail = &wait_head;


/* A bad command line: the message and the usage, exit 2. */
static void die_usage(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rp_vdie(PROG, 2, "\nusage: " PROG " --port N [--host ADDR] --rate R --duration S [--us N]\n"
			"       [--mix vip:10,normal:30,batch:60] [--dist fixed|pareto]\n"
			"       [--max-conns N] [--drain S] [--out FILE]\n", fmt, ap);
}

/* A failure at run time: exit 1. */
static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rp_vdie(PROG, 1, "\n", fmt, ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool num_arg(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == 0)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (*end != 0 || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static void parse_mix(const char *s)
{
	const char *p = s;

	cfg.nk = 0;
	while (*p) {
		const char *colon = strchr(p, ':'), *comma;
		size_t len;
		char *end;
		unsigned long w;

		if (colon == NULL || cfg.nk == MAX_CLASSES)
			die_usage("--mix '%s': NAME:WEIGHT,... (at most %d classes)", s, MAX_CLASSES);
		len = (size_t)(colon - p);
		if (len == 0 || len >= sizeof(cfg.k[0].name))
			die_usage("--mix '%s': a class name of 1..15 bytes", s);
		memcpy(cfg.k[cfg.nk].name, p, len);
		cfg.k[cfg.nk].name[len] = 0;
		errno = 0;
		w = strtoul(colon + 1, &end, 10);
		comma = end;
		if (end == colon + 1 || errno || w == 0 || w > 1000000 || (*comma != ',' && *comma != 0))
			die_usage("--mix '%s': a weight 1..1000000 after '%s:'", s, cfg.k[cfg.nk].name);
		cfg.k[cfg.nk++].weight = (unsigned)w;
		p = *comma ? comma + 1 : comma;
	}
	if (cfg.nk == 0)
		die_usage("--mix is empty");
}

/* smooth weighted round robin (as nginx's upstream balancer) */
static unsigned next_class(void)
{
	long total = 0;
	unsigned best = 0;

	for (unsigned i = 0; i < cfg.nk; i++) {
		cfg.k[i].credit += cfg.k[i].weight;
		total += cfg.k[i].weight;
		if (cfg.k[i].credit > cfg.k[best].credit)
			best = i;
	}
	cfg.k[best].credit -= total;
	return best;
}

static void conn_close(struct conn *c)
{
	for (struct conn **pp = &idle; *pp; pp = &(*pp)->next_idle)
		if (*pp == c) {
			*pp = c->next_idle;
			break;
		}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	nconns--;
	free(c);
}

static struct conn *conn_open(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;
	int one = 1;

	if (c == NULL)
		die("out of memory");
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS)
		die("connect %s:%u: %s", cfg.host, cfg.port, strerror(errno));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	nconns++;
	return c;
}

static void conn_send(struct conn *c, struct rq *r)
{
	char req[256];
	int n = snprintf(req, sizeof(req),
			 "GET /work?us=%lu&class=%s%s HTTP/1.1\r\nHost: %s\r\n\r\n", cfg.us,
			 cfg.k[r->cls].name, strcmp(cfg.dist, "pareto") == 0 ? "&dist=pareto" : "",
			 cfg.host);
	ssize_t w;

	c->cur = r;
	c->have = 0;
	if (!c->connected)
		return; /* sent at EPOLLOUT */
	w = send(c->fd, req, (size_t)n, MSG_NOSIGNAL);
	if (w != n) /* a fresh request fits any socket buffer */
		die("send: %s", w < 0 ? strerror(errno) : "short write");
}

/* Give r a connection: an idle one, a new one, or the waiting FIFO. */
static void dispatch(struct rq *r)
{
	struct conn *c = idle;

	if (c != NULL) {
		idle = c->next_idle;
		conn_send(c, r);
	} else if (nconns < cfg.max_conns) {
		conn_send(conn_open(), r);
	} else {
		r->next = NULL;
		*wait_tail = r;
		wait_tail = &r->next;
	}
}

static void conn_free_up(struct conn *c)
{
	struct rq *r = wait_head;

	c->cur = NULL;
	if (r != NULL) {
		wait_head = r->next;
		if (wait_head == NULL)
			wait_tail = &wait_head;
		conn_send(c, r);
		return;
	}
	c->next_idle = idle;
	idle = c;
}

/* 1: the response is complete; 0: more to read; -1: malformed */
static int parse_response(struct conn *c, int *status)
{
	char *end, *cl;
	size_t head, body;
	unsigned long len;

	c->buf[c->have < sizeof(c->buf) ? c->have : sizeof(c->buf) - 1] = 0;
	end = strstr(c->buf, "\r\n\r\n");
	if (end == NULL)
		return c->have >= sizeof(c->buf) - 1 ? -1 : 0;
	if (sscanf(c->buf, "HTTP/1.%*1[01] %3d", status) != 1)
		return -1;
	head = (size_t)(end - c->buf) + 4;
	cl = strcasestr(c->buf, "\r\ncontent-length:");
	if (cl == NULL || cl > end)
		return -1;
	len = strtoul(cl + 17, NULL, 10);
	if (len > sizeof(c->buf))
		return -1;
	body = c->have - head;
	if (body < len)
		return 0;
	if (body > len)
		return -1; /* nothing is pipelined */
	return 1;
}

static void on_event(struct conn *c, uint32_t events, uint64_t now)
{
	if ((events & EPOLLOUT) && !c->connected) {
		int err = 0;
		socklen_t l = sizeof(err);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err != 0)
			die("connect %s:%u: %s", cfg.host, cfg.port, strerror(err));
		c->connected = true;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		if (c->cur != NULL) {
			struct rq *r = c->cur;

			conn_send(c, r);
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t n = recv(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have, 0);
			int status = 0, rc;

			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0) { /* closed by the server */
				if (c->cur != NULL) {
					failures++;
					c->cur->done_ns = now;
					done_count++;
				}
				conn_close(c);
				return;
			}
			c->have += (size_t)n;
			rc = parse_response(c, &status);
			if (rc < 0)
				die("a malformed response");
			if (rc == 1) {
				c->cur->status = status;
				c->cur->done_ns = now;
				done_count++;
				conn_free_up(c);
				return;
			}
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double rank_ms(const uint64_t *v, size_t n, double q)
{
	size_t k = (size_t)ceil(q * (double)n);

	if (n == 0)
		return NAN;
	return (double)v[(k ? k : 1) - 1] / 1e6;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },   { "host", required_argument, NULL, 'H' },
		{ "rate", required_argument, NULL, 'r' },   { "duration", required_argument, NULL, 'd' },
		{ "us", required_argument, NULL, 'u' },	    { "mix", required_argument, NULL, 'x' },
		{ "dist", required_argument, NULL, 'D' },   { "max-conns", required_argument, NULL, 'c' },
		{ "drain", required_argument, NULL, 'w' },  { "out", required_argument, NULL, 'o' },
		{ 0 },
	};
	struct rlimit rl;
	struct rq *rqs;
	size_t n, sent = 0;
	uint64_t t0, end_sched, deadline;
	double d;
	int ch;

	parse_mix("vip:10,normal:30,batch:60");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (!num_arg(optarg, 1, 65535, &d) || d != floor(d))
				die_usage("--port '%s'", optarg);
			cfg.port = (unsigned)d;
			break;
		case 'H':
			cfg.host = optarg;
			break;
		case 'r':
			if (!num_arg(optarg, 0.001, 1e6, &cfg.rate))
				die_usage("--rate '%s': requests per second, 0.001..1e6", optarg);
			break;
		case 'd':
			if (!num_arg(optarg, 0.001, 3600, &cfg.duration))
				die_usage("--duration '%s': seconds, 0.001..3600", optarg);
			break;
		case 'u':
			if (!num_arg(optarg, 0, 10000000, &d) || d != floor(d))
				die_usage("--us '%s'", optarg);
			cfg.us = (unsigned long)d;
			break;
		case 'x':
			parse_mix(optarg);
			break;
		case 'D':
			if (strcmp(optarg, "fixed") != 0 && strcmp(optarg, "pareto") != 0)
				die_usage("--dist '%s': fixed or pareto", optarg);
			cfg.dist = optarg;
			break;
		case 'c':
			if (!num_arg(optarg, 1, 100000, &d) || d != floor(d))
				die_usage("--max-conns '%s'", optarg);
			cfg.max_conns = (unsigned)d;
			break;
		case 'w':
			if (!num_arg(optarg, 0, 3600, &cfg.drain))
				die_usage("--drain '%s'", optarg);
			break;
		case 'o':
			cfg.out = optarg;
			break;
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (cfg.port == 0 || cfg.rate == 0 || cfg.duration == 0)
		die_usage("--port, --rate and --duration are required");
	if (cfg.rate * cfg.duration > 5e7)
		die_usage("--rate x --duration is over 5e7 requests");
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)cfg.port);
	if (inet_pton(AF_INET, cfg.host, &addr.sin_addr) != 1)
		die_usage("--host '%s': a numeric IPv4 address", cfg.host);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	n = (size_t)ceil(cfg.rate * cfg.duration);
	rqs = calloc(n, sizeof(*rqs));
	if (rqs == NULL)
		die("out of memory");
	t0 = now_ns() + 10000000ull; /* start 10 ms from now */
	for (size_t i = 0; i < n; i++) {
		rqs[i].cls = next_class();
		rqs[i].sched_ns = t0 + (uint64_t)((double)i * 1e9 / cfg.rate);
	}
	end_sched = t0 + (uint64_t)(cfg.duration * 1e9);
	deadline = end_sched + (uint64_t)(cfg.drain * 1e9);
	for (;;) {
		struct epoll_event evs[64];
		uint64_t now = now_ns();
		int ms, k;

		while (sent < n && rqs[sent].sched_ns <= now)
			dispatch(&rqs[sent++]);
		if (sent == n && (done_count == n || now >= deadline))
			break;
		if (sent < n) {
			uint64_t next = rqs[sent].sched_ns;

			ms = next > now ? (int)((next - now) / 1000000u) : 0;
		} else {
			ms = 10;
		}
		k = epoll_wait(ep, evs, 64, ms);
		if (k < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (int i = 0; i < k; i++)
			on_event(evs[i].data.ptr, evs[i].events, now);
	}
	{
		uint64_t *lat = calloc(n, sizeof(*lat));
		FILE *out = NULL;

		if (lat == NULL)
			die("out of memory");
		if (cfg.out && (out = fopen(cfg.out, "w")) == NULL)
			die("--out %s: %s", cfg.out, strerror(errno));
		printf("class\tsent\tanswered\tok\tp50_ms\tp99_ms\tmax_ms\tunfinished\n");
		for (unsigned c = 0; c < cfg.nk; c++) {
			size_t m = 0, s = 0, ok = 0, unf = 0;

			for (size_t i = 0; i < n; i++) {
				if (rqs[i].cls != c)
					continue;
				s++;
				if (rqs[i].done_ns == 0) {
					unf++;
					continue;
				}
				ok += rqs[i].status == 200;
				lat[m++] = rqs[i].done_ns - rqs[i].sched_ns;
			}
			qsort(lat, m, sizeof(*lat), cmp_u64);
			printf("%s\t%zu\t%zu\t%zu\t%.3f\t%.3f\t%.3f\t%zu\n", cfg.k[c].name, s, m, ok,
			       rank_ms(lat, m, 0.5), rank_ms(lat, m, 0.99), rank_ms(lat, m, 1.0), unf);
		}
		if (out) {
			for (size_t i = 0; i < n; i++)
				fprintf(out, "%s\t%.1f\t%.1f\t%d\n", cfg.k[rqs[i].cls].name,
					(double)(rqs[i].sched_ns - t0) / 1e3,
					rqs[i].done_ns ? (double)(rqs[i].done_ns - rqs[i].sched_ns) / 1e3 : -1.0,
					rqs[i].status);
			if (fclose(out) != 0)
				die("--out %s: %s", cfg.out, strerror(errno));
		}
		free(lat);
	}
	if (failures)
		fprintf(stderr, PROG ": %u requests lost to a closed connection\n", failures);
	free(rqs);
	return failures ? 1 : 0;
}
