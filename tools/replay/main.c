/*
 * ripen-replay: replay task traces through ripen's scoring policies and
 * compare the waits per class.
 *
 *   ripen-replay [OPTIONS] TRACE...
 *
 * Every TRACE is loaded (replay.h: rp_load, then rp_finish: sorted by
 * arrival, stable, first arrival at 0), cut to --limit tasks, scaled by
 * --time-scale and converted to integer nanoseconds of replay time (run.h).
 * Each --policy then runs the whole trace, in the simulator (sim.c,
 * deterministic) or through a real pool (live.c), and the waits (start -
 * arrival) are summarised per class:
 *
 *   - quantiles by nearest rank: the p-quantile of n sorted waits is the
 *     ceil(p * n)-th (1-based); max is the largest;
 *   - SLA attainment: the fraction of the class's tasks with wait <= its SLA
 *     (--sla CLASS=SECONDS, else --sla SECONDS, else 5 s);
 *   - starved: tasks with wait > 10 x SLA;
 *   - the best policy per class: highest attainment, ties by the lower p99
 *     wait, then by the order of the --policy options.
 *
 * All times given on the command line (TAU, SLA, --rekey-period) and all
 * times printed are seconds of replay time, i.e. the trace's seconds after
 * --time-scale. Exit status: 0; 1 for a trace that does not parse or a
 * failure while running or writing; 2 for a bad command line.
 *
 * Output on stdout and in --json depends only on the input in sim mode (no
 * clocks, no addresses, no hash order): the same input gives the same
 * bytes. The progress bar goes to stderr, and only when it is a terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy-internal.h"
#include "replay.h"
#include "adaptive.h"
#include "run.h"
#include "spec.h"

#define PROG "ripen-replay"
#define CDF_POINTS 1000		/* quantiles kept per class and policy for --plot */
#define SIM_MAX_WORKERS (1u << 20) /* the simulator's limit (a pool's: RIPEN_MAX_WORKERS) */
#define PLOT_MAX_CLASSES 24	/* classes --plot draws: those with the most tasks */
#define TIME_LIMIT_NS (1ull << 62) /* every replay time, and their sums, stay below */

static const char *const default_policies[] = { "fifo", "static", "linear:30", "additive:30" };

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [OPTIONS] TRACE...\n"
"Replay task traces through ripen's scoring policies; print per-class waits.\n"
"\n"
"  --format F          ripen|csv|google2011|azure-llm (default csv)\n"
"  --time-scale X      multiply every time of the trace by X > 0 (default 1)\n"
"  --limit N           only the first N tasks by arrival\n"
"  --policy SPEC       repeatable; default: fifo, static, linear:30, additive:30\n"
"                      fifo | static | edf | linear:TAU | additive:TAU |\n"
"                      weights:W0,W1,...:SPEC | scaled:W0,W1,...:SPEC\n"
"                      (TAU in seconds) | adaptive[:linear|:additive] (sim;\n"
"                      needs --slo): class weights and tau of linear aging\n"
"                      (or of class-scaled additive aging) tuned each\n"
"                      control period to meet the objectives\n"
"  --workers N         workers (default 1; sim up to 1048576, live up to 1024)\n"
"  --mode sim|live     discrete-event simulation (default) or a real pool\n"
"  --sla SECONDS       the default SLA on the wait (default 5)\n"
"  --sla CLASS=SECONDS the SLA of one class (repeatable)\n"
"  --rekey-period S    re-key period of time-varying policies, simulator and\n"
"                      the live pool's rebalancer (default 0.002)\n"
"  --exact             sim: re-score every queued task at each dispatch\n"
"  --slo CLASS=Q:SECONDS  an objective: quantile Q of CLASS's waits at most\n"
"                      SECONDS (repeatable, most important first); every\n"
"                      policy is judged on it (objective_met in --json)\n"
"  --control-period S  adaptive: seconds between control steps (default 0.5)\n"
"  --control-window N  adaptive: periods each measurement spans (default 4)\n"
"  --control-log FILE  adaptive: one CSV line per control step\n"
"  --control-tau MIN:MAX  adaptive: tau's clamp, seconds (default 0.01:100;\n"
"                      it starts at 10 s, or at the nearer bound)\n"
"  --json FILE         write the summary as JSON\n"
"  --plot DIR          write wait CDFs and attainment bars (gnuplot PNGs)\n"
"  -h, --help          this text\n"
"All times are seconds of replay time (the trace's, after --time-scale).\n");
}


/* Bad command line: exit 2, with a pointer to --help. */
static void die_usage(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rp_vdie(PROG, 2, "\n(" PROG " --help for the options)\n", fmt, ap);
}

/* Anything else that stops the run: exit 1. */
static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rp_vdie(PROG, 1, "\n", fmt, ap);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		die("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

/* ------------------------------------------------------------- numbers */

/* Seconds to integer nanoseconds, for values validated to lie in [0, 2^62 ns). */
static uint64_t s_to_ns(double s)
{
	return (uint64_t)llround(s * 1e9);
}

/* ---------------------------------------------------------------- SLAs */

struct sla_rule {
	uint32_t class_id;
	double s;
};

struct config {
	const char *format;
	double time_scale;
	unsigned long long limit;	/* 0: all */
	const char **policies;
	size_t npolicies;
	unsigned workers;
	bool live;
	double sla_default;
	struct sla_rule *sla;
	size_t nsla;
	uint64_t rekey_ns;
	bool exact;
	const char *json;
	const char *plot;
	const char **traces;
	size_t ntraces;
	struct ripen__adapt_objective slo[RIPEN__ADAPT_MAX];
	size_t nslo;
	uint64_t control_ns;
	unsigned control_window;
	const char *control_log;
	double tau_min_s, tau_max_s;	/* 0: the law's defaults */
};

/* The objective on class c, or NULL. */
static const struct ripen__adapt_objective *slo_of(const struct config *c, uint32_t class_id)
{
	for (size_t i = 0; i < c->nslo; i++)
		if (c->slo[i].class_id == class_id)
			return &c->slo[i];
	return NULL;
}

static bool is_adaptive(const char *spec)
{
	return rp_adaptive_form(spec, NULL);
}

static double sla_of(const struct config *c, uint32_t class_id)
{
	double s = c->sla_default;

	for (size_t i = 0; i < c->nsla; i++) /* the last rule for a class wins */
		if (c->sla[i].class_id == class_id)
			s = c->sla[i].s;
	return s;
}

/* wait_ns <= sla_s, for integer waits: wait_ns <= floor(sla_s * 1e9) */
static uint64_t sla_ns_floor(double s)
{
	double ns = floor(s * 1e9);

	return ns >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)ns;
}

/* -------------------------------------------------------- command line */

enum {
	OPT_FORMAT = 256, OPT_SCALE, OPT_LIMIT, OPT_POLICY, OPT_WORKERS, OPT_MODE, OPT_SLA,
	OPT_JSON, OPT_PLOT, OPT_REKEY, OPT_EXACT, OPT_SLO, OPT_CONTROL_PERIOD, OPT_CONTROL_WINDOW,
	OPT_CONTROL_LOG, OPT_CONTROL_TAU,
};

static void parse_args(int argc, char **argv, struct config *c)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "time-scale", required_argument, NULL, OPT_SCALE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "sla", required_argument, NULL, OPT_SLA },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "plot", required_argument, NULL, OPT_PLOT },
		{ "rekey-period", required_argument, NULL, OPT_REKEY },
		{ "exact", no_argument, NULL, OPT_EXACT },
		{ "slo", required_argument, NULL, OPT_SLO },
		{ "control-period", required_argument, NULL, OPT_CONTROL_PERIOD },
		{ "control-window", required_argument, NULL, OPT_CONTROL_WINDOW },
		{ "control-log", required_argument, NULL, OPT_CONTROL_LOG },
		{ "control-tau", required_argument, NULL, OPT_CONTROL_TAU },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	double d;
	int opt;

	memset(c, 0, sizeof(*c));
	c->format = "csv";
	c->time_scale = 1.0;
	c->workers = 1;
	c->sla_default = 5.0;
	c->rekey_ns = RIPEN_REBALANCE_DEFAULT_NS;
	c->control_ns = 500000000ull;
	c->control_window = 4;
	c->policies = xcalloc((size_t)argc + 4, sizeof(*c->policies)); /* + defaults */
	c->sla = xcalloc((size_t)argc, sizeof(*c->sla));
	c->traces = xcalloc((size_t)argc, sizeof(*c->traces));

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_FORMAT:
			if (strcmp(optarg, "ripen") != 0 && strcmp(optarg, "csv") != 0 &&
			    strcmp(optarg, "google2011") != 0 && strcmp(optarg, "azure-llm") != 0)
				die_usage("--format: unknown format '%s' (ripen, csv, google2011, "
					  "azure-llm)", optarg);
			c->format = optarg;
			break;
		case OPT_SCALE:
			if (!rp_parse_num(optarg, &d) || d <= 0)
				die_usage("--time-scale: bad value '%s' (a number > 0)", optarg);
			c->time_scale = d;
			break;
		case OPT_LIMIT:
			if (!rp_parse_uint(optarg, SIZE_MAX, &u) || u == 0)
				die_usage("--limit: bad value '%s' (an integer >= 1)", optarg);
			c->limit = u;
			break;
		case OPT_POLICY: {
			char why[160];
			struct ripen_policy *p;

			if (is_adaptive(optarg)) {
				c->policies[c->npolicies++] = optarg;
				break;
			}
			p = rp_policy_parse(optarg, why, sizeof(why));

			if (p == NULL)
				die_usage("--policy: bad spec '%s': %s", optarg, why);
			ripen_policy_free(p);
			c->policies[c->npolicies++] = optarg;
			break;
		}
		case OPT_WORKERS:
			if (!rp_parse_uint(optarg, SIM_MAX_WORKERS, &u) || u == 0)
				die_usage("--workers: bad value '%s' (an integer 1..%u; live: "
					  "1..%u)", optarg, SIM_MAX_WORKERS, RIPEN_MAX_WORKERS);
			c->workers = (unsigned)u;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "sim") == 0)
				c->live = false;
			else if (strcmp(optarg, "live") == 0)
				c->live = true;
			else
				die_usage("--mode: unknown mode '%s' (sim or live)", optarg);
			break;
		case OPT_SLA: {
			const char *eq = strchr(optarg, '=');

			if (eq == NULL) {
				if (!rp_parse_num(optarg, &d) || d < 0)
					die_usage("--sla: bad value '%s' (seconds >= 0, or "
						  "CLASS=SECONDS)", optarg);
				c->sla_default = d;
			} else {
				char cls[32];

				if ((size_t)(eq - optarg) >= sizeof(cls))
					die_usage("--sla: bad class in '%s'", optarg);
				memcpy(cls, optarg, (size_t)(eq - optarg));
				cls[eq - optarg] = 0;
				if (!rp_parse_uint(cls, UINT32_MAX, &u))
					die_usage("--sla: bad class '%s' in '%s' (an integer "
						  "0..%u)", cls, optarg, UINT32_MAX);
				if (!rp_parse_num(eq + 1, &d) || d < 0)
					die_usage("--sla: bad value '%s' in '%s' (seconds >= 0)",
						  eq + 1, optarg);
				c->sla[c->nsla].class_id = (uint32_t)u;
				c->sla[c->nsla++].s = d;
			}
			break;
		}
		case OPT_JSON:
			c->json = optarg;
			break;
		case OPT_PLOT:
			c->plot = optarg;
			break;
		case OPT_REKEY:
			if (!rp_parse_num(optarg, &d) || d <= 0 || d * 1e9 < 1.0 || d > 1e9)
				die_usage("--rekey-period: bad value '%s' (seconds, 1e-9..1e9)",
					  optarg);
			c->rekey_ns = s_to_ns(d);
			break;
		case OPT_EXACT:
			c->exact = true;
			break;
		case OPT_SLO: {
			const char *eq = strchr(optarg, '='), *colon = eq ? strchr(eq, ':') : NULL;
			char cls[32], q[64];
			struct ripen__adapt_objective *o = &c->slo[c->nslo];

			if (eq == NULL || colon == NULL || (size_t)(eq - optarg) >= sizeof(cls) ||
			    (size_t)(colon - eq - 1) >= sizeof(q))
				die_usage("--slo: bad objective '%s' (CLASS=QUANTILE:SECONDS, "
					  "e.g. 1=0.95:0.002)", optarg);
			if (c->nslo == RIPEN__ADAPT_MAX)
				die_usage("--slo: at most %u objectives", RIPEN__ADAPT_MAX);
			memcpy(cls, optarg, (size_t)(eq - optarg));
			cls[eq - optarg] = 0;
			memcpy(q, eq + 1, (size_t)(colon - eq - 1));
			q[colon - eq - 1] = 0;
			if (!rp_parse_uint(cls, 65535, &u))
				die_usage("--slo: bad class '%s' in '%s' (an integer 0..65535)", cls,
					  optarg);
			if (slo_of(c, (uint32_t)u) != NULL)
				die_usage("--slo: class %s has an objective already", cls);
			o->class_id = (uint32_t)u;
			if (!rp_parse_num(q, &o->quantile) || !(o->quantile > 0 && o->quantile < 1))
				die_usage("--slo: bad quantile '%s' in '%s' (in (0, 1))", q, optarg);
			if (!rp_parse_num(colon + 1, &o->target_s) || !(o->target_s > 0) ||
			    o->target_s > 1e9)
				die_usage("--slo: bad target '%s' in '%s' (seconds > 0)", colon + 1,
					  optarg);
			c->nslo++;
			break;
		}
		case OPT_CONTROL_PERIOD:
			if (!rp_parse_num(optarg, &d) || d * 1e9 < 1.0 || d > 1e6)
				die_usage("--control-period: bad value '%s' (seconds, 1e-9..1e6)",
					  optarg);
			c->control_ns = s_to_ns(d);
			break;
		case OPT_CONTROL_WINDOW:
			if (!rp_parse_uint(optarg, 1000000, &u) || u == 0)
				die_usage("--control-window: bad value '%s' (periods, 1..1000000)",
					  optarg);
			c->control_window = (unsigned)u;
			break;
		case OPT_CONTROL_LOG:
			c->control_log = optarg;
			break;
		case OPT_CONTROL_TAU: {
			const char *colon = strchr(optarg, ':');
			char lo[64];

			if (colon == NULL || (size_t)(colon - optarg) >= sizeof(lo))
				die_usage("--control-tau: bad value '%s' (MIN:MAX seconds)", optarg);
			memcpy(lo, optarg, (size_t)(colon - optarg));
			lo[colon - optarg] = 0;
			if (!rp_parse_num(lo, &c->tau_min_s) || !rp_parse_num(colon + 1, &c->tau_max_s) ||
			    !(c->tau_min_s > 0) || c->tau_max_s < c->tau_min_s || c->tau_max_s > 1e9)
				die_usage("--control-tau: bad value '%s' (0 < MIN <= MAX <= 1e9 seconds)",
					  optarg);
			break;
		}
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			die_usage("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				die_usage("unknown option '-%c'", optopt);
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	for (int i = optind; i < argc; i++)
		c->traces[c->ntraces++] = argv[i];
	if (c->ntraces == 0)
		die_usage("no TRACE given");
	if (c->live && c->workers > RIPEN_MAX_WORKERS)
		die_usage("--workers: bad value '%u' for --mode live (a pool has 1..%u)",
			  c->workers, RIPEN_MAX_WORKERS);
	for (size_t i = 0; i < c->npolicies; i++) {
		if (!is_adaptive(c->policies[i]))
			continue;
		if (c->nslo == 0)
			die_usage("--policy adaptive needs at least one --slo CLASS=Q:SECONDS");
		if (c->live)
			die_usage("--policy adaptive runs in --mode sim only");
		for (size_t j = 0; j < i; j++) {
			unsigned a, b;

			if (!rp_adaptive_form(c->policies[j], &a))
				continue;
			(void)rp_adaptive_form(c->policies[i], &b);
			if (a == b)
				die_usage("--policy %s: at most once per aging form", c->policies[i]);
			if (c->control_log != NULL)
				die_usage("--control-log: with one --policy adaptive only");
		}
	}
	if (c->npolicies == 0) {
		c->npolicies = sizeof(default_policies) / sizeof(default_policies[0]);
		for (size_t i = 0; i < c->npolicies; i++)
			c->policies[i] = default_policies[i];
	}
}

/* --------------------------------------------------------- the trace */

struct replay {
	struct rr_task *t;
	size_t n;
	size_t skipped;
	uint32_t *cls;		/* class index of each task, into classes[] */
	uint32_t *classes;	/* distinct class ids, ascending */
	size_t nclasses;
	size_t *class_tasks;
	double service_sum_s;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* A replay time in [0, 2^62) ns, or false. */
static bool to_ns(double s, double scale, uint64_t *out)
{
	double v = s * scale * 1e9;

	if (!isfinite(v) || v < 0 || v >= (double)TIME_LIMIT_NS)
		return false;
	*out = (uint64_t)llround(v);
	return true;
}

static void load(const struct config *c, struct replay *r)
{
	struct rp_trace tr = { 0 };
	char err[512];
	double total = 0;
	uint32_t *ids;

	for (size_t i = 0; i < c->ntraces; i++) {
		err[0] = 0;
		if (rp_load(c->traces[i], c->format, &tr, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err[0] ? err : "trace does not load");
			rp_free(&tr);
			exit(1);
		}
	}
	err[0] = 0;
	if (rp_finish(&tr, c->traces[0], err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err[0] ? err : "trace does not load");
		rp_free(&tr);
		exit(1);
	}
	r->n = tr.n;
	if (c->limit != 0 && c->limit < r->n)
		r->n = (size_t)c->limit;
	r->skipped = tr.skipped;
	r->t = xcalloc(r->n, sizeof(*r->t));
	for (size_t i = 0; i < r->n; i++) {
		const struct rp_task *s = &tr.t[i];
		struct rr_task *d = &r->t[i];

		if (!to_ns(s->arrival_s, c->time_scale, &d->arrival_ns) ||
		    !to_ns(s->service_s, c->time_scale, &d->service_ns))
			die("%s: task %zu (by arrival): arrival %g s or service %g s is "
			    "negative, not finite or too large after --time-scale %g",
			    c->traces[0], i, s->arrival_s, s->service_s, c->time_scale);
		if (i > 0 && d->arrival_ns < r->t[i - 1].arrival_ns)
			die("%s: the trace is not sorted by arrival", c->traces[0]);
		if (!isfinite(s->base))
			die("%s: task %zu (by arrival): base %g is not finite", c->traces[0], i,
			    s->base);
		d->base = s->base;
		d->class_id = s->class_id;
		if (s->deadline_s != 0) {
			double v = s->deadline_s * c->time_scale * 1e9;

			/* a deadline before the first arrival is the earliest
			 * possible one (1 ns); past the range, the latest */
			if (v != v)
				die("%s: task %zu: deadline is not a number", c->traces[0], i);
			d->deadline_ns = v < 1 ? 1 : v >= (double)TIME_LIMIT_NS ?
				TIME_LIMIT_NS : (uint64_t)llround(v);
		}
		total += (double)d->service_ns;
		r->service_sum_s += (double)d->service_ns * 1e-9;
	}
	rp_free(&tr);
	/* every start is at most the last arrival plus all service before it */
	if (r->n > 0 && (double)r->t[r->n - 1].arrival_ns + total >= (double)TIME_LIMIT_NS)
		die("%s: the trace is too long in replay time (over 146 years): lower "
		    "--time-scale", c->traces[0]);

	ids = xcalloc(r->n, sizeof(*ids));
	for (size_t i = 0; i < r->n; i++)
		ids[i] = r->t[i].class_id;
	qsort(ids, r->n, sizeof(*ids), cmp_u32);
	r->classes = xcalloc(r->n, sizeof(*r->classes));
	for (size_t i = 0; i < r->n; i++)
		if (i == 0 || ids[i] != ids[i - 1])
			r->classes[r->nclasses++] = ids[i];
	free(ids);
	r->cls = xcalloc(r->n, sizeof(*r->cls));
	r->class_tasks = xcalloc(r->nclasses, sizeof(*r->class_tasks));
	for (size_t i = 0; i < r->n; i++) {
		uint32_t *hit = bsearch(&r->t[i].class_id, r->classes, r->nclasses,
					sizeof(*r->classes), cmp_u32);

		r->cls[i] = (uint32_t)(hit - r->classes);
		r->class_tasks[r->cls[i]]++;
	}
}

/* ------------------------------------------------------------- results */

struct class_result {
	size_t tasks;
	uint64_t p50, p95, p99, max;	/* ns */
	size_t met, starved;
	double sla_s;
	uint64_t *cdf;			/* CDF_POINTS + 1 quantiles, with --plot */
	const struct ripen__adapt_objective *obj; /* its --slo, or NULL */
	uint64_t obj_value;		/* the objective's quantile of the waits, ns */
	bool obj_met;
};

struct policy_result {
	const char *spec;
	struct class_result *c;		/* nclasses */
	uint64_t makespan_ns;		/* the last end, from the first arrival */
	struct rr_sim_stats sim;
	struct rr_live_stats live;
	bool adaptive;
	struct rr_adaptive_stats ctl;
};

/* the ceil(q * n)-th smallest of n sorted values (1-based), q in (0, 1] */
static uint64_t nearest_rank(const uint64_t *v, size_t n, unsigned num, unsigned den)
{
	/* ceil(n * num / den) without overflowing n * num */
	size_t r = n / den * num + ((n % den) * num + den - 1) / den;

	return v[r ? r - 1 : 0];
}

static void summarise(const struct config *c, const struct replay *r, const uint64_t *wait,
		      struct policy_result *pr, uint64_t *scratch, size_t *off)
{
	/* bucket the waits by class (counting sort on the class index) */
	off[0] = 0;
	for (size_t k = 0; k < r->nclasses; k++)
		off[k + 1] = off[k] + r->class_tasks[k];
	for (size_t i = 0; i < r->n; i++)
		scratch[off[r->cls[i]]++] = wait[i];
	for (size_t k = r->nclasses; k > 0; k--)
		off[k] = off[k - 1];
	off[0] = 0;

	pr->c = xcalloc(r->nclasses, sizeof(*pr->c));
	for (size_t k = 0; k < r->nclasses; k++) {
		struct class_result *cr = &pr->c[k];
		uint64_t *v = scratch + off[k];
		size_t n = r->class_tasks[k];
		uint64_t ok, starve;

		qsort(v, n, sizeof(*v), cmp_u64);
		cr->tasks = n;
		cr->p50 = nearest_rank(v, n, 50, 100);
		cr->p95 = nearest_rank(v, n, 95, 100);
		cr->p99 = nearest_rank(v, n, 99, 100);
		cr->max = v[n - 1];
		cr->sla_s = sla_of(c, r->classes[k]);
		cr->obj = slo_of(c, r->classes[k]);
		if (cr->obj != NULL) {
			size_t rank = (size_t)ceil(cr->obj->quantile * (double)n);

			cr->obj_value = v[(rank ? rank : 1) - 1];
			/* met: at most the target, in integer ns as the SLA */
			cr->obj_met = cr->obj_value <= sla_ns_floor(cr->obj->target_s);
		}
		ok = sla_ns_floor(cr->sla_s);
		starve = sla_ns_floor(cr->sla_s * 10);
		for (size_t i = 0; i < n; i++) {
			cr->met += v[i] <= ok;
			cr->starved += v[i] > starve;
		}
		if (c->plot != NULL) {
			cr->cdf = xcalloc(CDF_POINTS + 1, sizeof(*cr->cdf));
			cr->cdf[0] = v[0];
			for (unsigned j = 1; j <= CDF_POINTS; j++)
				cr->cdf[j] = nearest_rank(v, n, j, CDF_POINTS);
		}
	}
}

/* ------------------------------------------------------------ progress */

struct progress {
	bool on;
	size_t total;
	size_t index, count;
	const char *spec;
	int last;
};

static void progress_cb(void *ctx, size_t done)
{
	struct progress *pg = ctx;
	int pct = pg->total ? (int)(done * 100 / pg->total) : 100;
	char bar[31];

	if (!pg->on || pct == pg->last)
		return;
	pg->last = pct;
	for (int i = 0; i < 30; i++)
		bar[i] = i < pct * 30 / 100 ? '=' : ' ';
	bar[30] = 0;
	fprintf(stderr, "\r" PROG ": [%s] %3d%% policy %zu/%zu %-24.24s", bar, pct,
		pg->index + 1, pg->count, pg->spec);
	fflush(stderr);
}

static void progress_done(struct progress *pg)
{
	if (pg->on) {
		fprintf(stderr, "\r%*s\r", 100, "");
		fflush(stderr);
	}
}

/* --------------------------------------------------------------- output */

static double ns_s(uint64_t ns)
{
	return (double)ns * 1e-9;
}

/* best policy per class: most tasks within SLA, then lower p99, then first */
static size_t best_policy(const struct policy_result *pr, size_t np, size_t k)
{
	size_t b = 0;

	for (size_t i = 1; i < np; i++)
		if (pr[i].c[k].met > pr[b].c[k].met ||
		    (pr[i].c[k].met == pr[b].c[k].met && pr[i].c[k].p99 < pr[b].c[k].p99))
			b = i;
	return b;
}

static void print_tables(const struct config *c, const struct replay *r,
			 const struct policy_result *pr, size_t np)
{
	int w = 6;
	size_t *best = xcalloc(r->nclasses, sizeof(*best));
	uint64_t span = r->n ? r->t[r->n - 1].arrival_ns : 0;

	for (size_t i = 0; i < np; i++)
		if ((int)strlen(pr[i].spec) > w)
			w = (int)strlen(pr[i].spec);
	for (size_t k = 0; k < r->nclasses; k++)
		best[k] = best_policy(pr, np, k);

	printf("%s: %zu tasks", c->live ? "live" : "sim", r->n);
	if (r->skipped)
		printf(" (%zu rows skipped by the loader)", r->skipped);
	printf(", %zu class%s, arrivals over %.6f s, service %.6f s, %u worker%s",
	       r->nclasses, r->nclasses == 1 ? "" : "es", ns_s(span), r->service_sum_s,
	       c->workers, c->workers == 1 ? "" : "s");
	if (span > 0)
		printf(", offered load %.3f", r->service_sum_s / (ns_s(span) * c->workers));
	printf("\n");
	if (c->time_scale != 1.0)
		printf("times are trace seconds x %g\n", c->time_scale);
	printf("\n%-*s %10s %10s %12s %12s %12s %12s %10s %8s %8s\n", w, "policy", "class",
	       "tasks", "wait_p50_s", "wait_p95_s", "wait_p99_s", "wait_max_s", "sla_s",
	       "sla_att", "starved");
	for (size_t i = 0; i < np; i++) {
		for (size_t k = 0; k < r->nclasses; k++) {
			const struct class_result *cr = &pr[i].c[k];

			printf("%-*s %10u %10zu %12.6f %12.6f %12.6f %12.6f %10g %8.4f %8zu%s\n",
			       w, k == 0 ? pr[i].spec : "", (unsigned)r->classes[k], cr->tasks,
			       ns_s(cr->p50), ns_s(cr->p95), ns_s(cr->p99), ns_s(cr->max),
			       cr->sla_s, (double)cr->met / (double)cr->tasks, cr->starved,
			       best[k] == i && np > 1 ? "  *" : "");
		}
		if (c->live)
			printf("%-*s   (makespan %.6f s; producer late p99 %.6f s, max %.6f s; "
			       "steals %llu, rekeys %llu)\n", w, "", ns_s(pr[i].makespan_ns),
			       ns_s(pr[i].live.late_p99_ns), ns_s(pr[i].live.late_max_ns),
			       (unsigned long long)pr[i].live.pool.steals,
			       (unsigned long long)pr[i].live.pool.rekeys);
		else
			printf("%-*s   (makespan %.6f s; %llu queue re-keys, %llu keys recomputed, "
			       "max queued %zu)\n", w, "", ns_s(pr[i].makespan_ns),
			       (unsigned long long)pr[i].sim.rekeys,
			       (unsigned long long)pr[i].sim.rekeyed_entries, pr[i].sim.max_queued);
	}
	if (c->nslo > 0) {
		printf("\nobjectives (quantile of the wait, nearest rank, against the target):\n");
		for (size_t j = 0; j < c->nslo; j++) {
			size_t k = 0;

			while (k < r->nclasses && r->classes[k] != c->slo[j].class_id)
				k++;
			printf("  class %u p%g <= %g s:", (unsigned)c->slo[j].class_id,
			       c->slo[j].quantile * 100, c->slo[j].target_s);
			if (k == r->nclasses) {
				printf(" no such class in the trace\n");
				continue;
			}
			for (size_t i = 0; i < np; i++)
				printf("  %s %.6f %s", pr[i].spec, ns_s(pr[i].c[k].obj_value),
				       pr[i].c[k].obj_met ? "met" : "MISSED");
			printf("\n");
		}
		for (size_t i = 0; i < np; i++)
			if (pr[i].adaptive)
				printf("  %s: %llu control steps, %llu changes, %llu give-up/restore "
				       "events, infeasible in %llu steps; final tau %g s\n",
				       pr[i].spec, (unsigned long long)pr[i].ctl.steps,
				       (unsigned long long)pr[i].ctl.changes,
				       (unsigned long long)pr[i].ctl.events,
				       (unsigned long long)pr[i].ctl.infeasible_steps, pr[i].ctl.tau_s);
	}
	if (np > 1) {
		printf("\nbest per class (* above: highest SLA attainment, ties by lower p99 "
		       "wait, then first listed):\n");
		for (size_t k = 0; k < r->nclasses; k++) {
			const struct class_result *cr = &pr[best[k]].c[k];

			printf("  class %u: %s (attainment %.4f, p99 %.6f s)\n",
			       (unsigned)r->classes[k], pr[best[k]].spec,
			       (double)cr->met / (double)cr->tasks, ns_s(cr->p99));
		}
	}
	free(best);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void write_json(const struct config *c, const struct replay *r,
		       const struct policy_result *pr, size_t np)
{
	FILE *f = fopen(c->json, "w");

	if (f == NULL)
		die("--json %s: %s", c->json, strerror(errno));
	fprintf(f, "{\"policies\":[");
	for (size_t i = 0; i < np; i++) {
		fprintf(f, "%s{\"policy\":", i ? "," : "");
		json_string(f, pr[i].spec);
		fprintf(f, ",\"classes\":[");
		for (size_t k = 0; k < r->nclasses; k++) {
			const struct class_result *cr = &pr[i].c[k];

			fprintf(f, "%s{\"class\":%u,\"tasks\":%zu,\"wait_p50_s\":%.9f,"
				"\"wait_p95_s\":%.9f,\"wait_p99_s\":%.9f,\"wait_max_s\":%.9f,"
				"\"sla_attainment\":%.9f,\"starved\":%zu,\"sla_s\":%.17g,"
				"\"sla_met\":%zu",
				k ? "," : "", (unsigned)r->classes[k], cr->tasks, ns_s(cr->p50),
				ns_s(cr->p95), ns_s(cr->p99), ns_s(cr->max),
				(double)cr->met / (double)cr->tasks, cr->starved, cr->sla_s,
				cr->met);
			if (cr->obj != NULL)
				fprintf(f, ",\"objective_quantile\":%.17g,\"objective_s\":%.17g,"
					"\"objective_wait_s\":%.9f,\"objective_met\":%s",
					cr->obj->quantile, cr->obj->target_s, ns_s(cr->obj_value),
					cr->obj_met ? "true" : "false");
			fprintf(f, "}");
		}
		fprintf(f, "],\"makespan_s\":%.9f", ns_s(pr[i].makespan_ns));
		if (c->live)
			fprintf(f, ",\"producer_late_p99_s\":%.9f,\"producer_late_max_s\":%.9f",
				ns_s(pr[i].live.late_p99_ns), ns_s(pr[i].live.late_max_ns));
		if (pr[i].adaptive) {
			const struct rr_adaptive_stats *a = &pr[i].ctl;

			fprintf(f, ",\"controller\":{\"steps\":%llu,\"changes\":%llu,"
				"\"events\":%llu,\"infeasible_steps\":%llu,\"final_tau_s\":%.9g,"
				"\"final_infeasible\":%s,\"final_weights\":[",
				(unsigned long long)a->steps, (unsigned long long)a->changes,
				(unsigned long long)a->events, (unsigned long long)a->infeasible_steps,
				a->tau_s, a->infeasible ? "true" : "false");
			for (size_t j = 0; j < c->nslo; j++)
				fprintf(f, "%s{\"class\":%u,\"weight\":%.9g,\"given_up\":%s}",
					j ? "," : "", (unsigned)c->slo[j].class_id, a->w[j],
					a->given_up[j] ? "true" : "false");
			fprintf(f, "]}");
		}
		fprintf(f, "}");
	}
	fprintf(f, "],\"mode\":\"%s\",\"workers\":%u,\"tasks\":%zu,\"time_scale\":%.17g,"
		"\"rekey_period_s\":%.9f,\"exact\":%s}\n", c->live ? "live" : "sim", c->workers,
		r->n, c->time_scale, ns_s(c->rekey_ns), c->exact ? "true" : "false");
	if (ferror(f) | (fclose(f) != 0))
		die("--json %s: write failed", c->json);
}

static FILE *open_in(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		die("--plot %s: path too long", dir);
	if ((f = fopen(path, "w")) == NULL)
		die("--plot: %s: %s", path, strerror(errno));
	return f;
}

static void close_in(FILE *f, const char *dir)
{
	if (ferror(f) | (fclose(f) != 0))
		die("--plot %s: write failed", dir);
}

/* the classes --plot draws: the PLOT_MAX_CLASSES with the most tasks (ties:
 * lower id), in ascending id order; *n gets their count */
static size_t *plotted_classes(const struct replay *r, size_t *n)
{
	size_t *k = xcalloc(r->nclasses, sizeof(*k)), m = r->nclasses;

	for (size_t i = 0; i < m; i++)
		k[i] = i;
	if (m > PLOT_MAX_CLASSES) {
		/* selection by task count: a stable insertion into the top list */
		size_t top = 0;

		for (size_t i = 0; i < m; i++) {
			size_t j = top < PLOT_MAX_CLASSES ? top++ : PLOT_MAX_CLASSES;

			if (j == PLOT_MAX_CLASSES &&
			    r->class_tasks[i] <= r->class_tasks[k[PLOT_MAX_CLASSES - 1]])
				continue;
			if (j == PLOT_MAX_CLASSES)
				j--;
			while (j > 0 && r->class_tasks[k[j - 1]] < r->class_tasks[i]) {
				k[j] = k[j - 1];
				j--;
			}
			k[j] = i;
		}
		m = PLOT_MAX_CLASSES;
		/* back to ascending id order (indices are ascending ids) */
		for (size_t i = 1; i < m; i++)
			for (size_t j = i; j > 0 && k[j - 1] > k[j]; j--) {
				size_t x = k[j];

				k[j] = k[j - 1];
				k[j - 1] = x;
			}
	}
	*n = m;
	return k;
}

/* Wait CDFs per class (one line per policy; log x, zero waits drawn at
 * 1 us) and SLA attainment per policy (bars, one per class), via gnuplot;
 * at most PLOT_MAX_CLASSES classes, the ones with the most tasks. */
static void write_plots(const struct config *c, const struct replay *r,
			const struct policy_result *pr, size_t np)
{
	FILE *gp, *f;
	pid_t pid;
	int status;
	size_t nk, *ks;

	if (mkdir(c->plot, 0777) != 0 && errno != EEXIST)
		die("--plot %s: %s", c->plot, strerror(errno));
	ks = plotted_classes(r, &nk);
	if (nk < r->nclasses)
		fprintf(stderr, PROG ": --plot: %zu classes, drawing the %zu with the most tasks\n",
			r->nclasses, nk);
	gp = open_in(c->plot, "plot.gp");
	fprintf(gp, "set terminal pngcairo size 960,600 noenhanced\n"
		"set key bottom right\nset grid\n");
	for (size_t ki = 0; ki < nk; ki++) {
		size_t k = ks[ki];
		unsigned id = (unsigned)r->classes[k];
		double sla = pr[0].c[k].sla_s, lo = HUGE_VAL, hi = 0;
		char name[64];

		snprintf(name, sizeof(name), "wait_cdf_class%u.dat", id);
		f = open_in(c->plot, name);
		for (size_t i = 0; i < np; i++) {
			fprintf(f, "# policy %s\n", pr[i].spec);
			for (unsigned j = 0; j <= CDF_POINTS; j++) {
				double x = ns_s(pr[i].c[k].cdf[j]);

				x = x < 1e-6 ? 1e-6 : x;
				lo = x < lo ? x : lo;
				hi = x > hi ? x : hi;
				fprintf(f, "%.9f %.4f\n", x, (double)j / CDF_POINTS);
			}
			fprintf(f, "\n\n");
		}
		close_in(f, c->plot);
		sla = sla > 1e-6 ? sla : 1e-6;
		lo = sla < lo ? sla : lo;
		hi = sla > hi ? sla : hi;
		fprintf(gp, "set output 'wait_cdf_class%u.png'\n"
			"set title 'class %u (%zu tasks): wait CDF, SLA %g s (dashed)'\n"
			"set logscale x\nset format x '%%g'\nset xrange [%g:%g]\n"
			"set xlabel 'wait (s; zero waits at 1e-6)'\n"
			"set ylabel 'fraction of tasks'\nset yrange [0:1]\n"
			"set arrow 1 from %g, graph 0 to %g, graph 1 nohead dt 2\n"
			"plot ", id, id, r->class_tasks[k], pr[0].c[k].sla_s, lo / 2, hi * 2, sla,
			sla);
		for (size_t i = 0; i < np; i++)
			fprintf(gp, "%s'%s' index %zu using 1:2 with steps lw 2 dt %zu title '%s'",
				i ? ", " : "", name, i, i % 5 + 1, pr[i].spec);
		fprintf(gp, "\nunset arrow 1\nunset logscale x\nset xrange [*:*]\n");
	}
	f = open_in(c->plot, "attainment.dat");
	fprintf(f, "policy");
	for (size_t ki = 0; ki < nk; ki++)
		fprintf(f, " \"class %u\"", (unsigned)r->classes[ks[ki]]);
	fprintf(f, "\n");
	for (size_t i = 0; i < np; i++) {
		fprintf(f, "\"%s\"", pr[i].spec);
		for (size_t ki = 0; ki < nk; ki++)
			fprintf(f, " %.6f", (double)pr[i].c[ks[ki]].met / (double)pr[i].c[ks[ki]].tasks);
		fprintf(f, "\n");
	}
	close_in(f, c->plot);
	fprintf(gp, "set output 'attainment.png'\nset title 'SLA attainment per policy'\n"
		"set xlabel 'policy'\nset ylabel 'fraction of tasks within SLA'\n"
		"set yrange [0:1.05]\nset format x '%%g'\nset style data histograms\n"
		"set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
		"set key outside right top\n"
		"plot for [col=2:%zu] 'attainment.dat' using col:xtic(1) title columnheader\n",
		nk + 1);
	close_in(gp, c->plot);
	free(ks);

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("--plot: fork: %s", strerror(errno));
	if (pid == 0) {
		if (chdir(c->plot) != 0)
			_exit(126);
		execlp("gnuplot", "gnuplot", "plot.gp", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("--plot: waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("--plot %s: gnuplot failed (status %d%s); the data and plot.gp are there",
		    c->plot, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		    WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": not installed?" : "");
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct config c;
	struct replay r = { 0 };
	struct policy_result *pr;
	struct progress pg = { 0 };
	uint64_t *wait, *scratch;
	size_t *off;
	char err[512], why[160];

	parse_args(argc, argv, &c);
	load(&c, &r);

	pr = xcalloc(c.npolicies, sizeof(*pr));
	wait = xcalloc(r.n, sizeof(*wait));
	scratch = xcalloc(r.n, sizeof(*scratch));
	off = xcalloc(r.nclasses + 1, sizeof(*off));
	pg.on = isatty(STDERR_FILENO) == 1;
	pg.total = r.n;
	pg.count = c.npolicies;
	for (size_t i = 0; i < c.npolicies; i++) {
		struct ripen_policy *p = NULL;
		struct rr_adaptive *ad = NULL;
		struct rr_control ctl;
		FILE *clog = NULL;
		unsigned aging;
		int rc;

		if (rp_adaptive_form(c.policies[i], &aging)) {
			struct ripen__adapt_params ap;

			ripen__adapt_default_params(&ap);
			if (c.tau_min_s > 0) {
				ap.tau_min_s = c.tau_min_s;
				ap.tau_max_s = c.tau_max_s;
				ap.tau0_s = ap.tau0_s < ap.tau_min_s ? ap.tau_min_s
					    : ap.tau0_s > ap.tau_max_s ? ap.tau_max_s : ap.tau0_s;
			}
			if (c.control_log != NULL && (clog = fopen(c.control_log, "w")) == NULL)
				die("--control-log %s: %s", c.control_log, strerror(errno));
			rc = rr_adaptive_new(r.t, r.n, c.slo, c.nslo, &ap, aging, c.control_ns,
					     c.control_window, clog, &ad, &ctl);
			if (rc != 0)
				die("--policy %s: %s", c.policies[i], strerror(-rc));
			pr[i].adaptive = true;
		} else if ((p = rp_policy_parse(c.policies[i], why, sizeof(why))) == NULL) {
			die("--policy %s: %s", c.policies[i], why);
		}
		pr[i].spec = c.policies[i];
		pg.index = i;
		pg.spec = c.policies[i];
		pg.last = -1;
		progress_cb(&pg, 0);
		if (c.live) {
			struct rr_live_opts lo = {
				.workers = c.workers,
				.rebalance_period_ns = c.rekey_ns,
				.progress = progress_cb,
				.progress_ctx = &pg,
			};

			err[0] = 0;
			rc = rr_live(r.t, r.n, p, &lo, wait, &pr[i].live, err, sizeof(err));
			if (rc != 0) {
				progress_done(&pg);
				die("policy %s: %s", c.policies[i], err);
			}
			pr[i].makespan_ns = pr[i].live.makespan_ns;
		} else {
			struct rr_sim_opts so = {
				.workers = c.workers,
				.rekey_period_ns = c.rekey_ns,
				.exact = c.exact,
				.progress = progress_cb,
				.progress_ctx = &pg,
			};

			if (ad != NULL) {
				so.control = &ctl;
				rc = rr_simulate(r.t, r.n, rr_adaptive_policy(ad), &so, wait, &pr[i].sim);
				if (rc == 0)
					rc = rr_adaptive_finish(ad, &pr[i].ctl);
				rr_adaptive_free(ad);
				if (clog != NULL && (ferror(clog) | (fclose(clog) != 0)))
					die("--control-log %s: write failed", c.control_log);
			} else {
				rc = rr_simulate(r.t, r.n, p, &so, wait, &pr[i].sim);
				ripen_policy_free(p);
			}
			if (rc != 0) {
				progress_done(&pg);
				die("policy %s: simulation: %s", c.policies[i], strerror(-rc));
			}
			for (size_t k = 0; k < r.n; k++) {
				uint64_t end = r.t[k].arrival_ns + wait[k] + r.t[k].service_ns;

				if (end > pr[i].makespan_ns)
					pr[i].makespan_ns = end;
			}
		}
		summarise(&c, &r, wait, &pr[i], scratch, off);
	}
	progress_done(&pg);

	print_tables(&c, &r, pr, c.npolicies);
	if (fflush(stdout) != 0 || ferror(stdout))
		die("stdout: write failed");
	if (c.json != NULL)
		write_json(&c, &r, pr, c.npolicies);
	if (c.plot != NULL)
		write_plots(&c, &r, pr, c.npolicies);

	for (size_t i = 0; i < c.npolicies; i++) {
		for (size_t k = 0; k < r.nclasses; k++)
			free(pr[i].c[k].cdf);
		free(pr[i].c);
	}
	free(pr);
	free(wait);
	free(scratch);
	free(off);
	free(r.t);
	free(r.cls);
	free(r.classes);
	free(r.class_tasks);
	free(c.policies);
	free(c.sla);
	free(c.traces);
	return 0;
}
