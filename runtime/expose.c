/*
 * Exposition: per-class snapshots for programs, and the Prometheus text
 * format 0.0.4 for scrapers (ripen_metrics_write).
 *
 * Written by hand, not through a client library: the format is a few
 * lines per family, and the C clients either lock and allocate per
 * observation or are heavy (the project's notes, ../shared/OBSERVABILITY.md,
 * outside this repository). Rules followed: base units (seconds), counters
 * end in _total, every family has # HELP and # TYPE, a histogram's
 * _bucket series are cumulative and le="+Inf" equals _count, label values
 * are escaped (backslash, double quote, newline).
 *
 * The exported `le` edges are a short list (the default below, plus what a
 * user adds with ripen_metrics_add_edges, because SLOs sit on them),
 * counted from the fine internal buckets. An edge E inside a fine bucket
 * [lo, hi) counts the samples below lo: lo >= E / 1.125, so the count can
 * only understate "started within E", by the samples in [lo, E], which
 * are counted at the next edge.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics-internal.h"
#include "accounting-internal.h"
#include "watch-internal.h"

#define RIPEN_MAX_USER_EDGES 16u
#define RIPEN_NAME_MAX 127u

/* ------------------------------------------------------------ snapshots */

static double s_of(uint64_t ns)
{
	return (double)ns / 1e9;
}

int ripen_pool_class_stats(struct ripen_pool *pool, uint32_t class_id,
			   struct ripen_class_stats *st)
{
	struct ripen_class_stats r = RIPEN_CLASS_STATS_INIT;
	uint64_t *wb, *rb;
	struct ripen__csnap s;
	size_t size;

	if (pool == NULL || st == NULL ||
	    st->size < offsetof(struct ripen_class_stats, submitted) + sizeof(uint64_t))
		return -EINVAL;
	wb = malloc(2 * RIPEN_H_BUCKETS * sizeof(uint64_t));
	if (wb == NULL)
		return -ENOMEM;
	rb = wb + RIPEN_H_BUCKETS;
	s.wait_b = wb;
	s.run_b = rb;
	ripen__m_snapshot(pool, ripen__mslot(class_id), &s);
	r.submitted = s.submitted;
	r.started = s.started;
	r.cancelled = s.cancelled;
	r.rejected = s.rejected;
	r.shed = s.shed;
	r.queued = s.submitted > s.started + s.cancelled ? s.submitted - s.started - s.cancelled : 0;
	if (s.wait_n > 0) {
		r.wait_p50_s = s_of(ripen__hist_quantile(wb, s.wait_n, s.wait_max, 0.50));
		r.wait_p95_s = s_of(ripen__hist_quantile(wb, s.wait_n, s.wait_max, 0.95));
		r.wait_p99_s = s_of(ripen__hist_quantile(wb, s.wait_n, s.wait_max, 0.99));
		r.wait_max_s = s_of(s.wait_max);
		r.wait_mean_s = s_of(s.wait_sum) / (double)s.wait_n;
	}
	if (s.run_n > 0) {
		r.run_p50_s = s_of(ripen__hist_quantile(rb, s.run_n, s.run_max, 0.50));
		r.run_p95_s = s_of(ripen__hist_quantile(rb, s.run_n, s.run_max, 0.95));
		r.run_p99_s = s_of(ripen__hist_quantile(rb, s.run_n, s.run_max, 0.99));
		r.run_max_s = s_of(s.run_max);
		r.run_mean_s = s_of(s.run_sum) / (double)s.run_n;
	}
	free(wb);
	size = st->size < sizeof(r) ? st->size : sizeof(r);
	r.size = size;
	memcpy(st, &r, size);
	return 0;
}

/* ------------------------------------------------------------ labels */

/* The label of slot i into buf (lock held). */
static const char *label_of(struct ripen__metrics *m, unsigned i, char *buf, size_t len)
{
	if (i == RIPEN_MSLOT_OTHER)
		return "other";
	if (m->names[i] != NULL)
		return m->names[i];
	snprintf(buf, len, "%u", i);
	return buf;
}

/* Is `label` taken by a slot other than `self`? (lock held) */
static bool label_taken(struct ripen__metrics *m, unsigned self, const char *label)
{
	char buf[16];

	for (unsigned i = 0; i < RIPEN_MSLOTS; i++)
		if (i != self && strcmp(label_of(m, i, buf, sizeof(buf)), label) == 0)
			return true;
	return false;
}

int ripen_pool_set_class_name(struct ripen_pool *pool, uint32_t class_id, const char *name)
{
	struct ripen__metrics *m;
	char num[16], *copy = NULL;
	size_t len;
	int rc = 0;

	if (pool == NULL || class_id >= RIPEN_MAX_CLASSES)
		return -EINVAL;
	m = pool->metrics;
	if (name != NULL) {
		len = strnlen(name, RIPEN_NAME_MAX + 1);
		if (len == 0 || len > RIPEN_NAME_MAX)
			return -EINVAL;
		if ((copy = strdup(name)) == NULL)
			return -ENOMEM;
	}
	snprintf(num, sizeof(num), "%u", class_id);
	pthread_mutex_lock(&m->lock);
	if (label_taken(m, class_id, copy != NULL ? copy : num)) {
		rc = -EEXIST;
		free(copy);
	} else {
		free(m->names[class_id]);
		m->names[class_id] = copy;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int ripen_metrics_add_edges(struct ripen_pool *pool, const double *le_s, size_t n)
{
	struct ripen__metrics *m;
	int rc = 0;

	if (pool == NULL || (le_s == NULL && n > 0))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(le_s[i]) || !(le_s[i] > 0))
			return -EINVAL;
	m = pool->metrics;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool dup = false;

		for (size_t k = 0; k < m->nedges; k++)
			dup = dup || m->edges[k] == le_s[i];
		if (dup)
			continue;
		if (m->nuser == RIPEN_MAX_USER_EDGES) {
			rc = -ENOSPC;
			break;
		}
		m->edges[m->nedges++] = le_s[i];
		m->nuser++;
	}
	qsort(m->edges, m->nedges, sizeof(double), cmp_double);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ------------------------------------------------------------ the text */

struct out {
	FILE *f;
	bool bad;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vfprintf(o->f, fmt, ap) < 0)
		o->bad = true;
	va_end(ap);
}

/* A label value, escaped as the format asks. */
static void put_escaped(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		int rc;

		if (*s == '\\')
			rc = fputs("\\\\", o->f);
		else if (*s == '"')
			rc = fputs("\\\"", o->f);
		else if (*s == '\n')
			rc = fputs("\\n", o->f);
		else
			rc = fputc(*s, o->f);
		if (rc == EOF)
			o->bad = true;
	}
}

/* Shortest %g that reads back as x. */
static void fmt_double(char *buf, size_t len, double x)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			return;
	}
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{pool="..",class=".."} (or with `extra` instead of class). */
static void series(struct out *o, const char *name, const char *suffix, const char *pool,
		   const char *lname, const char *lval, const char *le)
{
	put(o, "%s%s{pool=\"", name, suffix);
	put_escaped(o, pool);
	if (lname != NULL) {
		put(o, "\",%s=\"", lname);
		put_escaped(o, lval);
	}
	if (le != NULL)
		put(o, "\",le=\"%s", le);
	put(o, "\"} ");
}

struct cls {
	unsigned slot;
	char label[RIPEN_NAME_MAX + 1];
	struct ripen__csnap s;
};

/* One histogram series set from fine buckets b (count n, sum in ns). */
static void put_hist(struct out *o, const char *name, const char *pool, const char *lname,
		     const char *lval, const uint64_t *b, uint64_t n, uint64_t sum_ns,
		     const double *edges, size_t nedges)
{
	unsigned k = 0;
	uint64_t cum = 0;
	char le[40];

	for (size_t e = 0; e < nedges; e++) {
		/* whole fine buckets with hi <= edge: those below the lower
		 * bound of the bucket holding the edge */
		double edge_ns = edges[e] * 1e9;

		for (; k < RIPEN_H_BUCKETS; k++) {
			uint64_t lo, hi;

			ripen__hbucket_bounds(k, &lo, &hi);
			if ((double)hi > edge_ns)
				break;
			cum += b[k];
		}
		fmt_double(le, sizeof(le), edges[e]);
		series(o, name, "_bucket", pool, lname, lval, le);
		put(o, "%" PRIu64 "\n", cum);
	}
	series(o, name, "_bucket", pool, lname, lval, "+Inf");
	put(o, "%" PRIu64 "\n", n);
	series(o, name, "_sum", pool, lname, lval, NULL);
	fmt_double(le, sizeof(le), s_of(sum_ns));
	put(o, "%s\n", le);
	series(o, name, "_count", pool, lname, lval, NULL);
	put(o, "%" PRIu64 "\n", n);
}

static void put_counter_u64(struct out *o, const char *name, const char *help, const char *pool,
			    uint64_t v)
{
	family(o, name, "counter", help);
	series(o, name, "", pool, NULL, NULL, NULL);
	put(o, "%" PRIu64 "\n", v);
}

static void put_gauge_u64(struct out *o, const char *name, const char *help, const char *pool,
			  uint64_t v)
{
	family(o, name, "gauge", help);
	series(o, name, "", pool, NULL, NULL, NULL);
	put(o, "%" PRIu64 "\n", v);
}

static const char *kind_name(enum ripen_watch_kind k)
{
	switch (k) {
	case RIPEN_WATCH_WAIT_MEAN: return "wait_mean";
	case RIPEN_WATCH_WAIT_QUANTILE: return "wait_quantile";
	case RIPEN_WATCH_SHARE_RISE: return "share_rise";
	case RIPEN_WATCH_QUEUED: return "queued";
	case RIPEN_WATCH_ADAPT: return "adapt";
	}
	return "unknown";
}

static void watch_series(struct out *o, const char *name, const char *pool,
			 const struct ripen__watch_info *w, const char *cls)
{
	put(o, "%s{pool=\"", name);
	put_escaped(o, pool);
	put(o, "\",watch=\"%u\",class=\"", w->id);
	put_escaped(o, cls);
	put(o, "\",kind=\"%s\"} ", kind_name(w->kind));
}

static void put_watchers(struct out *o, struct ripen_pool *pool, const char *pool_name)
{
	struct ripen__watch_info wi[RIPEN_MAX_WATCHES];
	struct ripen__metrics *m = pool->metrics;
	char cls[RIPEN_MAX_WATCHES][RIPEN_NAME_MAX + 1], d[40];
	size_t n = ripen__watch_list(pool, wi, RIPEN_MAX_WATCHES);

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		char num[16];

		snprintf(cls[i], sizeof(cls[i]), "%s",
			 label_of(m, ripen__mslot(wi[i].class_id), num, sizeof(num)));
	}
	pthread_mutex_unlock(&m->lock);
	family(o, "ripen_watch_firing", "gauge", "1 while a watcher fires, else 0.");
	for (size_t i = 0; i < n; i++) {
		watch_series(o, "ripen_watch_firing", pool_name, &wi[i], cls[i]);
		put(o, "%d\n", wi[i].firing ? 1 : 0);
	}
	family(o, "ripen_watch_firings_total", "counter", "Times a watcher started firing.");
	for (size_t i = 0; i < n; i++) {
		watch_series(o, "ripen_watch_firings_total", pool_name, &wi[i], cls[i]);
		put(o, "%" PRIu64 "\n", wi[i].firings);
	}
	family(o, "ripen_watch_value", "gauge", "A watcher's last measured value (seconds for wait kinds, a relative rise, or tasks).");
	for (size_t i = 0; i < n; i++) {
		watch_series(o, "ripen_watch_value", pool_name, &wi[i], cls[i]);
		if (isfinite(wi[i].value)) {
			fmt_double(d, sizeof(d), wi[i].value);
			put(o, "%s\n", d);
		} else {
			put(o, "+Inf\n");
		}
	}
}

/* pool="...",class="..." of the controller's objective i */
static void adapt_series(struct out *o, const char *name, const char *pool, const char *cls)
{
	put(o, "%s{pool=\"", name);
	put_escaped(o, pool);
	put(o, "\",class=\"");
	put_escaped(o, cls);
	put(o, "\"} ");
}

static void put_value(struct out *o, double v)
{
	char d[40];

	if (isnan(v)) {
		put(o, "NaN\n");
	} else if (isinf(v)) {
		put(o, "%sInf\n", v > 0 ? "+" : "-");
	} else {
		fmt_double(d, sizeof(d), v);
		put(o, "%s\n", d);
	}
}

/* ripen_pool_adapt's controller, while one runs. */
static void put_adaptive(struct out *o, struct ripen_pool *pool, const char *pool_name)
{
	struct ripen__adapt_info ai;
	struct ripen__metrics *m = pool->metrics;
	char cls[16][RIPEN_NAME_MAX + 1];
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "ripen_adaptive_weight", "gauge", "The controller's weight of a class (the most favoured weighs 1)." },
		{ "ripen_adaptive_objective_seconds", "gauge", "A class's objective: its quantile of the wait at most this." },
		{ "ripen_adaptive_measured_seconds", "gauge", "That quantile over the controller's last window (+Inf: tasks queued, none started)." },
		{ "ripen_adaptive_given_up", "gauge", "1 while the controller has given the class's objective up." },
		{ "ripen_adaptive_shed", "gauge", "1 while the controller sheds the class." },
	};

	if (ripen__adapt_info(pool, &ai) != 0)
		return;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < ai.n; i++) {
		char num[16];

		snprintf(cls[i], sizeof(cls[i]), "%s",
			 label_of(m, ripen__mslot(ai.obj[i].class_id), num, sizeof(num)));
	}
	pthread_mutex_unlock(&m->lock);
	family(o, "ripen_adaptive_tau_seconds", "gauge", "The controller's aging tau.");
	put(o, "ripen_adaptive_tau_seconds{pool=\"");
	put_escaped(o, pool_name);
	put(o, "\"} ");
	put_value(o, ai.tau_s);
	family(o, "ripen_adaptive_infeasible", "gauge", "1 while the objectives cannot all be met.");
	put(o, "ripen_adaptive_infeasible{pool=\"");
	put_escaped(o, pool_name);
	put(o, "\"} %d\n", ai.infeasible ? 1 : 0);
	family(o, "ripen_adaptive_steps_total", "counter", "Control steps taken.");
	put(o, "ripen_adaptive_steps_total{pool=\"");
	put_escaped(o, pool_name);
	put(o, "\"} %" PRIu64 "\n", ai.steps);
	family(o, "ripen_adaptive_changes_total", "counter", "Control steps that moved a weight or tau.");
	put(o, "ripen_adaptive_changes_total{pool=\"");
	put_escaped(o, pool_name);
	put(o, "\"} %" PRIu64 "\n", ai.changes);
	family(o, "ripen_adaptive_events_total", "counter", "Objectives given up, shed or taken back.");
	put(o, "ripen_adaptive_events_total{pool=\"");
	put_escaped(o, pool_name);
	put(o, "\"} %" PRIu64 "\n", ai.events);
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		family(o, fam[f].name, fam[f].type, fam[f].help);
		for (size_t i = 0; i < ai.n; i++) {
			adapt_series(o, fam[f].name, pool_name, cls[i]);
			switch (f) {
			case 0: put_value(o, ai.obj[i].weight); break;
			case 1: put_value(o, ai.obj[i].target_s); break;
			case 2: put_value(o, ai.obj[i].measured_s); break;
			case 3: put(o, "%d\n", ai.obj[i].given_up ? 1 : 0); break;
			default: put(o, "%d\n", ai.obj[i].shed ? 1 : 0); break;
			}
		}
	}
}

int ripen_metrics_write(struct ripen_pool *pool, FILE *out)
{
	struct ripen_pool_stats ps = RIPEN_POOL_STATS_INIT;
	struct ripen__metrics *m;
	struct out o = { out, false };
	struct cls *cl = NULL;
	uint64_t *bufs = NULL, *lat = NULL;
	double *edges = NULL;
	size_t ncl = 0, nedges;
	char pool_name[128], d[40];
	int rc = 0;

	if (pool == NULL || out == NULL)
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE)
		return -EDEADLK;
	m = pool->metrics;
	cl = calloc(RIPEN_MSLOTS, sizeof(*cl));
	bufs = malloc((2 * RIPEN_MSLOTS + 1) * RIPEN_H_BUCKETS * sizeof(uint64_t));
	edges = malloc((RIPEN_MAX_USER_EDGES + 32) * sizeof(double));
	if (cl == NULL || bufs == NULL || edges == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	lat = bufs + 2 * RIPEN_MSLOTS * RIPEN_H_BUCKETS;

	/* Take everything first, then format: the series of one family come
	 * from one pass over the workers. A class is shown once it has any
	 * count, or a name; class 0 (the default) and "other" always. Shown
	 * from the start, a class's series let rate() see its first tasks: a
	 * series that appears with a count of 5 has those 5 lost to rate(). */
	pthread_mutex_lock(&m->lock);
	nedges = m->nedges;
	memcpy(edges, m->edges, nedges * sizeof(double));
	memcpy(pool_name, m->pool_name, sizeof(pool_name));
	for (unsigned i = 0; i < RIPEN_MSLOTS; i++) {
		struct cls *c = &cl[ncl];
		bool named = i < RIPEN_MAX_CLASSES && m->names[i] != NULL;

		c->slot = i;
		c->s.wait_b = bufs + 2 * ncl * RIPEN_H_BUCKETS;
		c->s.run_b = c->s.wait_b + RIPEN_H_BUCKETS;
		ripen__m_snapshot(pool, i, &c->s);
		if (!named && i != 0 && i != RIPEN_MSLOT_OTHER && c->s.submitted == 0 &&
		    c->s.started == 0 && c->s.cancelled == 0 &&
		    c->s.rejected == 0 && c->s.shed == 0)
			continue;
		if (i == RIPEN_MSLOT_OTHER)
			snprintf(c->label, sizeof(c->label), "other");
		else if (named)
			snprintf(c->label, sizeof(c->label), "%s", m->names[i]);
		else
			snprintf(c->label, sizeof(c->label), "%u", i);
		ncl++;
	}
	pthread_mutex_unlock(&m->lock);
	(void)ripen_pool_stats(pool, &ps);

	if (m->on) {
		family(&o, "ripen_task_wait_seconds", "histogram",
		       "Time from submit (for delayed and periodic tasks, from release) to start, per class.");
		for (size_t i = 0; i < ncl; i++)
			put_hist(&o, "ripen_task_wait_seconds", pool_name, "class", cl[i].label,
				 cl[i].s.wait_b, cl[i].s.wait_n, cl[i].s.wait_sum, edges, nedges);
		family(&o, "ripen_task_run_seconds", "histogram",
		       "Time from start to return, per class.");
		for (size_t i = 0; i < ncl; i++)
			put_hist(&o, "ripen_task_run_seconds", pool_name, "class", cl[i].label,
				 cl[i].s.run_b, cl[i].s.run_n, cl[i].s.run_sum, edges, nedges);
	}
	{
		static const struct {
			const char *name, *help;
			size_t off;
		} per_class[] = {
			{ "ripen_tasks_submitted_total", "Tasks accepted (a delayed task at its release, each release of a periodic one), per class.", offsetof(struct ripen__csnap, submitted) },
			{ "ripen_tasks_started_total", "Tasks started, per class.", offsetof(struct ripen__csnap, started) },
			{ "ripen_tasks_cancelled_total", "Tasks cancelled before they started, per class.", offsetof(struct ripen__csnap, cancelled) },
			{ "ripen_tasks_rejected_total", "Submits refused with -ESHUTDOWN, per class.", offsetof(struct ripen__csnap, rejected) },
			{ "ripen_tasks_shed_total", "Submits refused with -EBUSY by a shedding watcher, per class.", offsetof(struct ripen__csnap, shed) },
		};

		for (size_t f = 0; f < sizeof(per_class) / sizeof(per_class[0]); f++) {
			family(&o, per_class[f].name, "counter", per_class[f].help);
			for (size_t i = 0; i < ncl; i++) {
				uint64_t v;

				memcpy(&v, (const char *)&cl[i].s + per_class[f].off, sizeof(v));
				series(&o, per_class[f].name, "", pool_name, "class", cl[i].label, NULL);
				put(&o, "%" PRIu64 "\n", v);
			}
		}
	}
	family(&o, "ripen_tasks_queued", "gauge", "Tasks accepted and not yet started or cancelled, per class.");
	for (size_t i = 0; i < ncl; i++) {
		const struct ripen__csnap *s = &cl[i].s;

		series(&o, "ripen_tasks_queued", "", pool_name, "class", cl[i].label, NULL);
		put(&o, "%" PRIu64 "\n", s->submitted > s->started + s->cancelled ?
			s->submitted - s->started - s->cancelled : 0);
	}

	put_gauge_u64(&o, "ripen_workers", "Worker threads.", pool_name, pool->nworkers);
	put_gauge_u64(&o, "ripen_tasks_delayed", "Delayed and periodic tasks waiting for their release time.", pool_name, ps.delayed);
	put_gauge_u64(&o, "ripen_recording_clock_tsc",
		      "1 while waits and runs are stamped from the TSC, 0 from the vDSO clock (no trusted TSC, or its rate drifted: metrics.c).",
		      pool_name, ripen__clock_tsc() ? 1 : 0);
	put_counter_u64(&o, "ripen_steals_total", "Successful steals from a peer's heap.", pool_name, ps.steals);
	put_counter_u64(&o, "ripen_stolen_tasks_total", "Tasks moved by steals from peers' heaps.", pool_name, ps.stolen_tasks);
	put_counter_u64(&o, "ripen_inbox_steals_total", "Tasks taken from a peer's inbox.", pool_name, ps.inbox_steals);
	put_counter_u64(&o, "ripen_stale_dropped_total", "Heap entries found stale (re-prioritised, cancelled, moved) when they surfaced.", pool_name, ps.stale_dropped);
	put_counter_u64(&o, "ripen_parks_total", "Times a worker went to sleep.", pool_name, ps.parks);
	put_counter_u64(&o, "ripen_rekeys_total", "Heap re-keys (policy swap or re-score).", pool_name, ps.rekeys);
	put_counter_u64(&o, "ripen_rekeyed_entries_total", "Heap entries those re-keys touched.", pool_name, ps.rekeyed_entries);
	family(&o, "ripen_rekey_seconds_total", "counter", "Time spent re-keying heaps.");
	series(&o, "ripen_rekey_seconds_total", "", pool_name, NULL, NULL, NULL);
	fmt_double(d, sizeof(d), s_of(ps.rekey_ns));
	put(&o, "%s\n", d);
	put_counter_u64(&o, "ripen_rebalances_total", "Rebalancer periods.", pool_name, ps.rebalances);
	put_counter_u64(&o, "ripen_merged_total", "Entries the rebalancer merged and dealt out.", pool_name, ps.merged);
	put_counter_u64(&o, "ripen_rescued_total", "Entries moved off a worker stuck in a long task.", pool_name, ps.rescued);
	put_counter_u64(&o, "ripen_bad_scores_total", "NaN or infinite scores from custom policies.", pool_name, ps.bad_scores);

	family(&o, "ripen_heap_depth", "gauge", "Entries in a worker's heap (stale ones included).");
	for (unsigned i = 0; i < pool->nworkers; i++) {
		char wi[16];

		snprintf(wi, sizeof(wi), "%u", i);
		series(&o, "ripen_heap_depth", "", pool_name, "worker", wi, NULL);
		/* relaxed: a hint published by the heap's holder */
		put(&o, "%" PRIu64 "\n",
		    atomic_load_explicit(&pool->workers[i].qsize, memory_order_relaxed));
	}
	family(&o, "ripen_inbox_depth", "gauge", "Tasks in a worker's inbox, not yet in its heap.");
	for (unsigned i = 0; i < pool->nworkers; i++) {
		char wi[16];

		snprintf(wi, sizeof(wi), "%u", i);
		series(&o, "ripen_inbox_depth", "", pool_name, "worker", wi, NULL);
		put(&o, "%" PRIu64 "\n", ripen__inbox_hint(&pool->workers[i]));
	}
	{
		struct ripen__hist *h = &m->lateness;
		uint64_t n = 0;

		for (unsigned k = 0; k < RIPEN_H_BUCKETS; k++) {
			/* relaxed: single writer, the rebalancer */
			lat[k] = atomic_load_explicit(&h->b[k], memory_order_relaxed);
			n += lat[k];
		}
		family(&o, "ripen_rebalancer_lateness_seconds", "histogram",
		       "How late the rebalancer woke for its period or a timer, after its planned time.");
		put_hist(&o, "ripen_rebalancer_lateness_seconds", pool_name, NULL, NULL, lat, n,
			 atomic_load_explicit(&h->sum_ns, memory_order_relaxed), edges, nedges);
	}
	put_watchers(&o, pool, pool_name);
	put_adaptive(&o, pool, pool_name);
	if (fflush(out) != 0 || ferror(out))
		o.bad = true;
	rc = o.bad ? -EIO : 0;
out:
	free(cl);
	free(bufs);
	free(edges);
	return rc;
}
