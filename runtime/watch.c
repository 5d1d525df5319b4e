/*
 * Watchers: "VIP work waits more than 2 ms on average", "batch's share of
 * the starts rose 40%", followed by a callback, a shed or a downgrade.
 *
 * A watcher measures one class over a sliding window, from the recording
 * (metrics.c). It keeps a ring of snapshots of the class's cumulative
 * figures, one every window/4; a value over "the window" is the current
 * figure minus the newest snapshot at least one window old, so it covers
 * the last 1 to 1.25 windows, and needs no writes on the hot path at all
 * (HdrHistogram's interval recorder swaps histograms for the same purpose;
 * with cumulative, single-writer histograms a difference does it without
 * the swap). Rules are evaluated on the rebalancer thread every
 * min(window/4, 100 ms), never more often than every 100 us.
 *
 * Firing: the value rising above the threshold fires the watcher (event
 * with firing = true, the action applied); it clears (firing = false, the
 * action undone) once the value is at or below threshold * (1 - hysteresis)
 * and it has fired for at least one window. The band and the dwell keep a
 * value that hovers at the threshold from flapping; CockroachDB's elastic
 * CPU controller and CoDel also act on windows, not on single samples.
 *
 * Actions. SHED sets the class's bit in pool->shed_mask: submits of that
 * class get -EBUSY and are counted as shed, until the last shedding
 * watcher of the class clears. DOWNGRADE multiplies the class's weight in
 * the class-weight policy by the product of the factors of the firing
 * downgrade watchers of that class (recomputed from scratch on every
 * change, so nothing drifts), then bumps policy_gen so that every worker
 * re-keys its heap as after a policy swap. A pool whose policy has no
 * class-weight layer is not affected by DOWNGRADE (only the callback runs).
 *
 * The adaptive controller (ripen_pool_adapt, the law in adapt.c) lives
 * here too: per objective an internal wait-quantile watch, never listed
 * and never firing, gives the windowed quantile; its weights join the
 * DOWNGRADE factors and its sheds the SHED bits in apply_actions; a new
 * tau is a policy swap, made like a callback, outside the lock; every step
 * that changes something is a trace record (RIPEN_TRACE_ADAPT).
 *
 * Callbacks run on the rebalancer thread after the evaluation, with the
 * watchers' lock released and outside every RCU read-side section, so they
 * may swap policies and add or remove watchers. ripen_pool_unwatch waits
 * for a delivery in progress (unless called from a callback), so that a
 * callback never runs after its watcher is gone.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt-internal.h"
#include "metrics-internal.h"
#include "park-internal.h"
#include "policy-internal.h"
#include "ripen-trace.h"
#include "trace-internal.h"
#include "watch-internal.h"

#define RIPEN_WATCH_EVAL_MAX_NS 100000000ull	/* evaluate at least every 100 ms */
#define RIPEN_WATCH_EVAL_MIN_NS 100000ull	/* and at most every 100 us */
#define RIPEN_WATCH_RING 9u			/* two windows of window/4 snapshots, + 1 */

struct wsnap {
	uint64_t t;
	uint64_t n, sum;		/* wait: count and sum (ns) */
	uint64_t started_c, started_all;
	uint64_t *b;			/* wait buckets (wait kinds only) */
};

struct watch {
	uint32_t id;
	struct ripen_watch_opts o;
	unsigned slot, target_slot;
	uint64_t eval_every, snap_every;
	uint64_t next_eval, next_snap;
	struct wsnap ring[RIPEN_WATCH_RING];
	unsigned head, count;		/* ring: newest at head */
	bool firing;
	uint64_t fired_at, firings;
	double value;
	uint64_t win_n;			/* starts in the last window (wait kinds) */
	uint64_t *scratch;		/* current wait buckets */
};

/* ripen_pool_adapt's controller: the law (adapt.c) and one internal wait
 * quantile watch per objective, never listed, never firing. */
struct adaptive {
	struct ripen__adapt law;
	struct watch *m[RIPEN__ADAPT_MAX];
	unsigned slot[RIPEN__ADAPT_MAX];
	double measured[RIPEN__ADAPT_MAX];
	uint32_t max_class;
	uint64_t period, next_step;
	unsigned aging;			/* RIPEN_AGING_*: the form of adaptive_policy */
	double tau_applied;
	ripen_watch_fn *fn;
	void *arg;
	uint64_t steps, changes, events;
};

struct ripen__watchers {
	pthread_mutex_t lock;
	pthread_cond_t done;		/* a delivery ended */
	bool delivering;
	uint32_t next_id;
	unsigned n;
	struct watch *w[RIPEN_MAX_WATCHES];
	unsigned shed_count[RIPEN_MSLOTS];
	struct adaptive *ad;		/* NULL: no controller */
	bool ad_starting;		/* a ripen_pool_adapt holds the place */
	double ctl_w[RIPEN_MSLOTS];	/* the controller's weight per slot (1: none) */
	bool ctl_shed[RIPEN_MSLOTS];
};

static bool wait_kind(enum ripen_watch_kind k)
{
	return k == RIPEN_WATCH_WAIT_MEAN || k == RIPEN_WATCH_WAIT_QUANTILE;
}

static struct ripen__watchers *watchers_of(struct ripen_pool *pool)
{
	return pool->watchers;
}

int ripen__watch_init(struct ripen_pool *pool)
{
	struct ripen__watchers *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return -ENOMEM;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->done, NULL);
	ws->next_id = 1;
	for (unsigned i = 0; i < RIPEN_MSLOTS; i++)
		ws->ctl_w[i] = 1.0;
	pool->watchers = ws;
	return 0;
}

static void watch_free(struct watch *w)
{
	for (unsigned i = 0; i < RIPEN_WATCH_RING; i++)
		free(w->ring[i].b);
	free(w->scratch);
	free(w);
}

static void adaptive_free(struct adaptive *ad)
{
	if (ad == NULL)
		return;
	for (size_t i = 0; i < RIPEN__ADAPT_MAX; i++)
		if (ad->m[i] != NULL)
			watch_free(ad->m[i]);
	free(ad);
}

void ripen__watch_fini(struct ripen_pool *pool)
{
	struct ripen__watchers *ws = watchers_of(pool);

	if (ws == NULL)
		return;
	adaptive_free(ws->ad);
	for (unsigned i = 0; i < RIPEN_MAX_WATCHES; i++)
		if (ws->w[i] != NULL)
			watch_free(ws->w[i]);
	pthread_mutex_destroy(&ws->lock);
	pthread_cond_destroy(&ws->done);
	free(ws);
	pool->watchers = NULL;
}

/* ------------------------------------------------------------ measuring */

static uint64_t started_all(struct ripen_pool *pool)
{
	uint64_t n = 0;

	for (unsigned s = 0; s < RIPEN_MSLOTS; s++)
		n += ripen__m_started_total(pool, s);
	return n;
}

/* The class's cumulative figures now, into s (b: scratch or ring buffer). */
static void measure(struct ripen_pool *pool, struct watch *w, struct wsnap *s, uint64_t now)
{
	s->t = now;
	if (wait_kind(w->o.kind))
		ripen__m_sum_wait(pool, w->slot, s->b, &s->sum, &s->n);
	if (w->o.kind == RIPEN_WATCH_SHARE_RISE) {
		s->started_c = ripen__m_started_total(pool, w->slot);
		s->started_all = started_all(pool);
	}
}

/* The newest ring snapshot taken at or before `t`, else the oldest one. */
static const struct wsnap *snap_before(const struct watch *w, uint64_t t, bool *found)
{
	const struct wsnap *oldest = NULL;

	*found = false;
	for (unsigned k = 0; k < w->count; k++) {
		const struct wsnap *s = &w->ring[(w->head + RIPEN_WATCH_RING - k) % RIPEN_WATCH_RING];

		oldest = s;
		if (s->t <= t) {
			*found = true;
			return s;
		}
	}
	return oldest;
}

/* t - d, or 0 */
static uint64_t back(uint64_t t, uint64_t d)
{
	return t > d ? t - d : 0;
}

static double share(uint64_t c1, uint64_t a1, uint64_t c0, uint64_t a0, bool *any)
{
	*any = a1 > a0;
	return *any ? (double)(c1 - c0) / (double)(a1 - a0) : 0.0;
}

/* The watcher's value at now (cur: the figures now). */
static double value_of(struct ripen_pool *pool, struct watch *w, const struct wsnap *cur,
		       uint64_t now)
{
	const struct wsnap *a, *b;
	bool found, any_now, any_prev;
	double s_now, s_prev;
	struct ripen__csnap cs;

	switch (w->o.kind) {
	case RIPEN_WATCH_WAIT_MEAN:
		a = snap_before(w, back(now, w->o.window_ns), &found);
		if (cur->n <= a->n)
			return 0; /* nothing started in the window: no evidence */
		return (double)(cur->sum - a->sum) / 1e9 / (double)(cur->n - a->n);
	case RIPEN_WATCH_WAIT_QUANTILE:
		a = snap_before(w, back(now, w->o.window_ns), &found);
		w->win_n = cur->n > a->n ? cur->n - a->n : 0;
		if (cur->n <= a->n)
			return 0;
		for (unsigned k = 0; k < RIPEN_H_BUCKETS; k++)
			w->scratch[k] = cur->b[k] - a->b[k];
		return (double)ripen__hist_quantile(w->scratch, cur->n - a->n, UINT64_MAX,
						    w->o.quantile) / 1e9;
	case RIPEN_WATCH_SHARE_RISE:
		a = snap_before(w, back(now, w->o.window_ns), &found);
		if (!found)
			return 0; /* less than one window of history */
		b = snap_before(w, back(a->t, w->o.window_ns), &found);
		if (!found)
			return 0;
		s_now = share(cur->started_c, cur->started_all, a->started_c, a->started_all, &any_now);
		s_prev = share(a->started_c, a->started_all, b->started_c, b->started_all, &any_prev);
		if (!any_now || !any_prev)
			return 0;
		if (s_prev == 0)
			return s_now > 0 ? HUGE_VAL : 0;
		return s_now / s_prev - 1.0;
	case RIPEN_WATCH_QUEUED:
		cs.wait_b = NULL;
		cs.run_b = NULL;
		ripen__m_snapshot(pool, w->slot, &cs);
		return cs.submitted > cs.started + cs.cancelled ?
		       (double)(cs.submitted - cs.started - cs.cancelled) : 0;
	case RIPEN_WATCH_ADAPT:
		break; /* not a rule */
	}
	return 0;
}

/* ------------------------------------------------------------ actions */

static void set_factor(struct ripen_pool *pool, unsigned slot, double f)
{
	uint64_t bits;

	memcpy(&bits, &f, sizeof(bits));
	/* relaxed: published by the policy_gen bump below */
	atomic_store_explicit(&pool->metrics->factor_bits[slot], bits, memory_order_relaxed);
}

/* Re-derive the shed bit and the weight factor of `slot` from the firing
 * watchers (lock held). */
static void apply_actions(struct ripen_pool *pool, struct ripen__watchers *ws, unsigned slot)
{
	double f = 1.0;
	unsigned shed = 0;
	uint64_t bit = 1ull << (slot % 64u);

	for (unsigned i = 0; i < RIPEN_MAX_WATCHES; i++) {
		struct watch *w = ws->w[i];

		if (w == NULL || !w->firing || w->target_slot != slot)
			continue;
		if (w->o.action == RIPEN_WATCH_SHED)
			shed++;
		else if (w->o.action == RIPEN_WATCH_DOWNGRADE)
			f *= w->o.factor;
	}
	/* the controller's weight and shed come on top of the watchers' */
	f *= ws->ctl_w[slot];
	shed += ws->ctl_shed[slot];
	if (shed != ws->shed_count[slot]) {
		ws->shed_count[slot] = shed;
		/* release: the shed flag; submits read it relaxed, a racing
		 * submit may go either way */
		if (shed)
			atomic_fetch_or_explicit(&pool->shed_mask[slot / 64u], bit, memory_order_release);
		else
			atomic_fetch_and_explicit(&pool->shed_mask[slot / 64u], ~bit, memory_order_release);
	}
	if (ripen__class_factor(pool->metrics->factor_bits, slot) != f) {
		set_factor(pool, slot, f);
		/* release: after the factor; workers acquire the generation at
		 * their next step and re-key (as after ripen_pool_set_policy) */
		atomic_fetch_add_explicit(&pool->policy_gen, 1, memory_order_release);
		ripen__rebalancer_poke(pool);
	}
}

/* ------------------------------------------------------------ the API */

/* A watcher for o (validated), its first snapshot taken: 0 or -ENOMEM. */
static int watch_build(struct ripen_pool *pool, const struct ripen_watch_opts *opts,
		       struct watch **out)
{
	struct ripen_watch_opts o = *opts;
	struct watch *w;
	unsigned slot;
	uint64_t now;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->o = o;
	w->o.size = sizeof(o);
	slot = ripen__mslot(o.class_id);
	w->slot = slot;
	w->target_slot = ripen__mslot(o.target_class);
	w->snap_every = o.window_ns / 4 ? o.window_ns / 4 : 1;
	w->eval_every = w->snap_every;
	if (w->eval_every > RIPEN_WATCH_EVAL_MAX_NS)
		w->eval_every = RIPEN_WATCH_EVAL_MAX_NS;
	if (w->eval_every < RIPEN_WATCH_EVAL_MIN_NS)
		w->eval_every = RIPEN_WATCH_EVAL_MIN_NS;
	if (wait_kind(o.kind)) {
		if ((w->scratch = malloc(RIPEN_H_BUCKETS * sizeof(uint64_t))) == NULL) {
			watch_free(w);
			return -ENOMEM;
		}
		for (unsigned i = 0; i < RIPEN_WATCH_RING; i++)
			if ((w->ring[i].b = malloc(RIPEN_H_BUCKETS * sizeof(uint64_t))) == NULL) {
				watch_free(w);
				return -ENOMEM;
			}
	}
	now = ripen__now_ns();
	measure(pool, w, &w->ring[0], now); /* the window's first base */
	w->head = 0;
	w->count = 1;
	w->next_snap = ripen__sat_add(now, w->snap_every);
	w->next_eval = ripen__sat_add(now, w->eval_every);
	*out = w;
	return 0;
}

int ripen_pool_watch(struct ripen_pool *pool, const struct ripen_watch_opts *opts, uint32_t *id)
{
	struct ripen_watch_opts o = RIPEN_WATCH_OPTS_INIT;
	struct ripen__watchers *ws;
	struct watch *w;
	int rc;

	if (id != NULL)
		*id = 0;
	if (pool == NULL || opts == NULL || id == NULL ||
	    opts->size < offsetof(struct ripen_watch_opts, window_ns) + sizeof(uint64_t) ||
	    opts->size > sizeof(o))
		return -EINVAL;
	memcpy(&o, opts, opts->size);
	if ((unsigned)o.kind > RIPEN_WATCH_QUEUED ||
	    !isfinite(o.threshold) || o.window_ns == 0 ||
	    !(o.hysteresis >= 0 && o.hysteresis < 1) ||
	    (o.kind == RIPEN_WATCH_WAIT_QUANTILE && !(o.quantile > 0 && o.quantile < 1)) ||
	    (o.action != RIPEN_WATCH_NOTIFY && o.action != RIPEN_WATCH_SHED &&
	     o.action != RIPEN_WATCH_DOWNGRADE) ||
	    (o.action == RIPEN_WATCH_DOWNGRADE && !(isfinite(o.factor) && o.factor > 0)) ||
	    (o.action == RIPEN_WATCH_NOTIFY && o.fn == NULL))
		return -EINVAL;
	if (pool->period_ns == 0 || (wait_kind(o.kind) && !pool->metrics->on))
		return -ENOTSUP;
	if (o.hysteresis == 0)
		o.hysteresis = 0.1;
	/* relaxed: a one-way flag; a watcher added during a shutdown is
	 * simply never evaluated again */
	if (atomic_load_explicit(&pool->closed, memory_order_relaxed))
		return -ESHUTDOWN;
	if ((rc = watch_build(pool, &o, &w)) != 0)
		return rc;

	ws = watchers_of(pool);
	pthread_mutex_lock(&ws->lock);
	if (ws->n == RIPEN_MAX_WATCHES) {
		pthread_mutex_unlock(&ws->lock);
		watch_free(w);
		return -ENOSPC;
	}
	w->id = ws->next_id++;
	if (ws->next_id == 0)
		ws->next_id = 1;
	for (unsigned i = 0; i < RIPEN_MAX_WATCHES; i++)
		if (ws->w[i] == NULL) {
			ws->w[i] = w;
			break;
		}
	ws->n++;
	*id = w->id;
	pthread_mutex_unlock(&ws->lock);
	ripen__rebalancer_poke(pool); /* it sleeps until the next thing it knows of */
	return 0;
}

int ripen_pool_unwatch(struct ripen_pool *pool, uint32_t id)
{
	struct ripen__watchers *ws;
	struct watch *w = NULL;

	if (pool == NULL)
		return -EINVAL;
	ws = watchers_of(pool);
	pthread_mutex_lock(&ws->lock);
	for (unsigned i = 0; i < RIPEN_MAX_WATCHES; i++)
		if (ws->w[i] != NULL && ws->w[i]->id == id) {
			w = ws->w[i];
			ws->w[i] = NULL;
			ws->n--;
			break;
		}
	if (w == NULL) {
		pthread_mutex_unlock(&ws->lock);
		return -ENOENT;
	}
	if (w->firing)
		apply_actions(pool, ws, w->target_slot); /* w is out of the list: undone */
	/* a callback of this watcher may be running on the rebalancer: wait
	 * for the delivery to end, unless we are that callback */
	while (ws->delivering && ripen__in_callback != RIPEN_CB_WATCH)
		pthread_cond_wait(&ws->done, &ws->lock);
	pthread_mutex_unlock(&ws->lock);
	watch_free(w);
	return 0;
}

/* ---------------------------------------------------- the controller */

/* The controller's policy at tau, in its form, with weights of 1: the
 * controller's weights come in as the classes' factors, which class
 * weights and class scaling both multiply in. */
static struct ripen_policy *adaptive_policy(const struct adaptive *ad, double tau_s)
{
	size_t n = (size_t)ad->max_class + 1;
	double w[RIPEN_MAX_CLASSES];

	for (size_t i = 0; i < n; i++)
		w[i] = 1.0;
	return ripen__adapt_policy(ad->aging, w, n, tau_s);
}


int ripen_pool_adapt(struct ripen_pool *pool, const struct ripen_adaptive_opts *opts)
{
	struct ripen_adaptive_opts o = RIPEN_ADAPTIVE_OPTS_INIT;
	struct ripen__adapt_objective obj[RIPEN__ADAPT_MAX];
	struct ripen__adapt_params p;
	struct ripen__watchers *ws;
	struct ripen_policy *pol;
	struct adaptive *ad;
	int rc;

	if (pool == NULL || opts == NULL || opts->size < offsetof(struct ripen_adaptive_opts, n) +
	    sizeof(size_t) || opts->size > sizeof(o))
		return -EINVAL;
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_TRIGGER)
		return -EDEADLK;
	memcpy(&o, opts, opts->size);
	if (o.objectives == NULL || o.n == 0 || o.n > RIPEN__ADAPT_MAX ||
	    (o.aging != RIPEN_AGING_LINEAR && o.aging != RIPEN_AGING_ADDITIVE))
		return -EINVAL;
	for (size_t i = 0; i < o.n; i++) {
		if (o.objectives[i].class_id >= RIPEN_MAX_CLASSES)
			return -EINVAL;
		obj[i].class_id = o.objectives[i].class_id;
		obj[i].quantile = o.objectives[i].quantile;
		obj[i].target_s = o.objectives[i].target_s;
		obj[i].may_shed = o.objectives[i].may_shed;
	}
	ripen__adapt_default_params(&p);
	if (o.tau0_s != 0)
		p.tau0_s = o.tau0_s;
	if (o.tau_min_s != 0)
		p.tau_min_s = o.tau_min_s;
	if (o.tau_max_s != 0)
		p.tau_max_s = o.tau_max_s;
	if (o.step != 0)
		p.step = o.step;
	if (o.band != 0)
		p.band = o.band;
	if (o.patience != 0)
		p.patience = o.patience;
	if (o.w_min != 0)
		p.w_min = o.w_min;
	if (o.tau0_s == 0 && (o.tau_min_s != 0 || o.tau_max_s != 0))
		p.tau0_s = p.tau0_s < p.tau_min_s ? p.tau_min_s
			   : p.tau0_s > p.tau_max_s ? p.tau_max_s : p.tau0_s;
	if (o.period_ns == 0)
		o.period_ns = 500000000ull;
	if (o.period_ns < RIPEN_WATCH_EVAL_MIN_NS)
		o.period_ns = RIPEN_WATCH_EVAL_MIN_NS; /* as often as watchers, no more */
	if (o.window_periods == 0)
		o.window_periods = 4;
	if (o.period_ns > UINT64_MAX / o.window_periods)
		return -EINVAL;
	if ((ad = calloc(1, sizeof(*ad))) == NULL)
		return -ENOMEM;
	if ((rc = ripen__adapt_init(&ad->law, &p, obj, o.n)) != 0) {
		free(ad);
		return rc;
	}
	if (pool->period_ns == 0 || !pool->metrics->on) {
		free(ad);
		return -ENOTSUP;
	}
	/* relaxed: a one-way flag (as ripen_pool_watch) */
	if (atomic_load_explicit(&pool->closed, memory_order_relaxed)) {
		free(ad);
		return -ESHUTDOWN;
	}
	ad->period = o.period_ns;
	ad->aging = o.aging;
	for (size_t i = 0; i < RIPEN__ADAPT_MAX; i++)
		ad->measured[i] = NAN; /* none yet */
	ad->fn = o.fn;
	ad->arg = o.arg;
	for (size_t i = 0; i < o.n; i++) {
		struct ripen_watch_opts wo = RIPEN_WATCH_OPTS_INIT;

		wo.kind = RIPEN_WATCH_WAIT_QUANTILE;
		wo.class_id = obj[i].class_id;
		wo.quantile = obj[i].quantile;
		wo.threshold = HUGE_VAL; /* never fires */
		wo.hysteresis = 0.1;
		wo.window_ns = o.period_ns * o.window_periods;
		ad->slot[i] = ripen__mslot(obj[i].class_id);
		if (obj[i].class_id > ad->max_class)
			ad->max_class = obj[i].class_id;
		if ((rc = watch_build(pool, &wo, &ad->m[i])) != 0) {
			adaptive_free(ad);
			return rc;
		}
	}
	ad->tau_applied = ad->law.tau_s;
	ws = watchers_of(pool);
	/* hold the place while the policy goes in (outside the lock: it
	 * waits for a grace period), so that a concurrent call cannot install
	 * its own policy and then lose */
	pthread_mutex_lock(&ws->lock);
	if (ws->ad != NULL || ws->ad_starting) {
		pthread_mutex_unlock(&ws->lock);
		adaptive_free(ad);
		return -EALREADY;
	}
	ws->ad_starting = true;
	pthread_mutex_unlock(&ws->lock);
	pol = adaptive_policy(ad, ad->law.tau_s);
	rc = pol == NULL ? -ENOMEM : ripen_pool_set_policy(pool, pol); /* takes pol */
	pthread_mutex_lock(&ws->lock);
	ws->ad_starting = false;
	if (rc != 0) {
		pthread_mutex_unlock(&ws->lock);
		adaptive_free(ad);
		return rc;
	}
	ad->next_step = ripen__sat_add(ripen__now_ns(), ad->period);
	ws->ad = ad;
	pthread_mutex_unlock(&ws->lock);
	ripen__rebalancer_poke(pool);
	return 0;
}

int ripen_pool_adapt_stop(struct ripen_pool *pool)
{
	struct ripen__watchers *ws;
	struct adaptive *ad;

	if (pool == NULL)
		return -EINVAL;
	/* it may wait for a delivery, which may wait for a grace period */
	if (ripen__in_callback == RIPEN_CB_SCORE || ripen__in_callback == RIPEN_CB_TRIGGER)
		return -EDEADLK;
	ws = watchers_of(pool);
	pthread_mutex_lock(&ws->lock);
	ad = ws->ad;
	if (ad == NULL) {
		pthread_mutex_unlock(&ws->lock);
		return -EALREADY;
	}
	/* a delivery (policy swap, event) may be in progress: wait for it,
	 * unless we are its callback */
	while (ws->delivering && ripen__in_callback != RIPEN_CB_WATCH)
		pthread_cond_wait(&ws->done, &ws->lock);
	ws->ad = NULL;
	for (size_t i = 0; i < ad->law.n; i++) {
		ws->ctl_w[ad->slot[i]] = 1.0;
		ws->ctl_shed[ad->slot[i]] = false;
		apply_actions(pool, ws, ad->slot[i]);
	}
	pthread_mutex_unlock(&ws->lock);
	adaptive_free(ad);
	return 0;
}

int ripen__adapt_info(struct ripen_pool *pool, struct ripen__adapt_info *out)
{
	struct ripen__watchers *ws = watchers_of(pool);
	struct adaptive *ad;

	pthread_mutex_lock(&ws->lock);
	ad = ws->ad;
	if (ad == NULL) {
		pthread_mutex_unlock(&ws->lock);
		return -ENOENT;
	}
	out->n = ad->law.n;
	out->tau_s = ad->law.tau_s;
	out->infeasible = ad->law.infeasible;
	out->steps = ad->steps;
	out->changes = ad->changes;
	out->events = ad->events;
	for (size_t i = 0; i < ad->law.n; i++) {
		out->obj[i].class_id = ad->law.obj[i].class_id;
		out->obj[i].quantile = ad->law.obj[i].quantile;
		out->obj[i].target_s = ad->law.obj[i].target_s;
		out->obj[i].weight = ad->law.w[i];
		out->obj[i].measured_s = ad->measured[i];
		out->obj[i].given_up = ad->law.given_up[i];
		out->obj[i].shed = ad->law.shed[i];
	}
	pthread_mutex_unlock(&ws->lock);
	return 0;
}

size_t ripen__watch_list(struct ripen_pool *pool, struct ripen__watch_info *out, size_t max)
{
	struct ripen__watchers *ws = watchers_of(pool);
	size_t n = 0;

	pthread_mutex_lock(&ws->lock);
	for (unsigned i = 0; i < RIPEN_MAX_WATCHES && n < max; i++) {
		struct watch *w = ws->w[i];

		if (w == NULL)
			continue;
		out[n].id = w->id;
		out[n].class_id = w->o.class_id;
		out[n].kind = w->o.kind;
		out[n].firing = w->firing;
		out[n].firings = w->firings;
		out[n].value = w->value;
		n++;
	}
	pthread_mutex_unlock(&ws->lock);
	return n;
}

/* ------------------------------------------------------------ the tick */

struct pending {
	uint32_t id;
	ripen_watch_fn *fn;
	void *arg;
	struct ripen_watch_event ev;
};

/* Evaluate w at now (lock held); true when an event is to be delivered. */
static bool evaluate(struct ripen_pool *pool, struct ripen__watchers *ws, struct watch *w,
		     uint64_t now, struct ripen_watch_event *ev)
{
	struct wsnap cur = { .b = w->scratch };
	uint64_t *cur_b = NULL;
	bool changed = false;
	double v;

	if (wait_kind(w->o.kind)) {
		/* the current figures into the next ring slot when a snapshot
		 * is due (it then doubles as the base of later windows) */
		cur_b = malloc(RIPEN_H_BUCKETS * sizeof(uint64_t));
		if (cur_b == NULL)
			return false; /* try again at the next tick */
		cur.b = cur_b;
	}
	measure(pool, w, &cur, now);
	v = value_of(pool, w, &cur, now);
	w->value = v;
	if (!w->firing && v > w->o.threshold) {
		w->firing = true;
		w->fired_at = now;
		w->firings++;
		changed = true;
	} else if (w->firing && v <= w->o.threshold * (1.0 - w->o.hysteresis) &&
		   now - w->fired_at >= w->o.window_ns) {
		w->firing = false;
		changed = true;
	}
	if (now >= w->next_snap) {
		unsigned h = (w->head + 1) % RIPEN_WATCH_RING;
		uint64_t *keep = w->ring[h].b;

		w->ring[h] = cur;
		if (cur_b != NULL) {
			cur_b = keep; /* the old buffer is freed below */
		}
		w->head = h;
		if (w->count < RIPEN_WATCH_RING)
			w->count++;
		w->next_snap = now - w->next_snap < w->snap_every ?
			       ripen__sat_add(w->next_snap, w->snap_every) :
			       ripen__sat_add(now, w->snap_every);
	}
	free(cur_b);
	w->next_eval = ripen__sat_add(now, w->eval_every);
	if (changed) {
		apply_actions(pool, ws, w->target_slot);
		ev->id = w->id;
		ev->class_id = w->o.class_id;
		ev->kind = w->o.kind;
		ev->value = v;
		ev->threshold = w->o.threshold;
		ev->now_ns = now;
		ev->firing = w->firing;
	}
	return changed && w->o.fn != NULL;
}

/* The tasks of `slot` queued now. */
static uint64_t queued_of(struct ripen_pool *pool, unsigned slot)
{
	struct ripen__csnap cs;

	cs.wait_b = NULL;
	cs.run_b = NULL;
	ripen__m_snapshot(pool, slot, &cs);
	return cs.submitted > cs.started + cs.cancelled ? cs.submitted - cs.started - cs.cancelled : 0;
}

/* The trace records of one control step, put after the lock is dropped
 * (trace_lock is not taken under the watchers' lock: a trace stop waits
 * for a grace period holding trace_lock, and a trigger inside a read
 * section may wait for the watchers' lock). */
struct adapt_trace {
	size_t n;
	uint64_t now;
	double tau;
	struct {
		uint32_t class_id;
		double w;
		unsigned flags;
	} r[RIPEN__ADAPT_MAX];
};

static void adapt_trace_put(struct ripen_pool *pool, const struct adapt_trace *t)
{
	for (size_t i = 0; i < t->n; i++)
		ripen__trace_adapt(pool, t->r[i].class_id, t->now, t->r[i].w, t->tau, t->r[i].flags);
}

/* One control step at now (lock held). *tau gets a tau to install (else
 * NaN), *tr the step's trace records; true with *ev filled when fn is to
 * hear of it. A paused pool starts nothing, so every class would look
 * starved: the controller holds still while the pool is paused. */
static bool adaptive_step(struct ripen_pool *pool, struct ripen__watchers *ws, uint64_t now,
			  double *tau, struct ripen_watch_event *ev, struct adapt_trace *tr)
{
	struct adaptive *ad = ws->ad;
	struct ripen_watch_event dummy;
	struct ripen__adapt_out out;
	size_t which;

	*tau = NAN;
	tr->n = 0;
	/* relaxed: a hint; a step taken across a resume only sees one
	 * window of mixed figures */
	if (atomic_load_explicit(&pool->paused, memory_order_relaxed) != RIPEN_RUNNING) {
		ad->next_step = ripen__sat_add(now, ad->period);
		return false;
	}

	for (size_t i = 0; i < ad->law.n; i++) {
		struct watch *m = ad->m[i];

		(void)evaluate(pool, ws, m, now, &dummy); /* never fires */
		/* no start in the window: no news, unless tasks wait (then it
		 * is starving: a miss) */
		ad->measured[i] = m->win_n > 0 ? m->value
				  : queued_of(pool, ad->slot[i]) > 0 ? HUGE_VAL : NAN;
	}
	ripen__adapt_step(&ad->law, ad->measured, &out);
	ad->steps++;
	ad->changes += out.changed;
	ad->events += out.event != RIPEN__ADAPT_NONE;
	for (size_t i = 0; i < ad->law.n; i++) {
		ws->ctl_w[ad->slot[i]] = ad->law.w[i];
		ws->ctl_shed[ad->slot[i]] = ad->law.shed[i];
		apply_actions(pool, ws, ad->slot[i]);
	}
	if (out.changed || out.infeasible_changed || out.event != RIPEN__ADAPT_NONE) {
		tr->n = ad->law.n;
		tr->now = now;
		tr->tau = ad->law.tau_s;
		for (size_t i = 0; i < ad->law.n; i++) {
			tr->r[i].class_id = ad->law.obj[i].class_id;
			tr->r[i].w = ad->law.w[i];
			tr->r[i].flags = (ad->law.given_up[i] ? RIPEN_TRACE_ADAPT_GIVEN_UP : 0u) |
					 (ad->law.shed[i] ? RIPEN_TRACE_ADAPT_SHED : 0u) |
					 (ad->law.infeasible ? RIPEN_TRACE_ADAPT_INFEASIBLE : 0u);
		}
	}
	if (ad->law.tau_s != ad->tau_applied) {
		*tau = ad->law.tau_s;
		ad->tau_applied = ad->law.tau_s;
	}
	ad->next_step = now - ad->next_step < ad->period ? ripen__sat_add(ad->next_step, ad->period)
							 : ripen__sat_add(now, ad->period);
	if (!out.infeasible_changed && out.event == RIPEN__ADAPT_NONE)
		return false;
	which = out.event != RIPEN__ADAPT_NONE ? out.which : 0;
	ev->id = 0;
	ev->class_id = ad->law.obj[which].class_id;
	ev->kind = RIPEN_WATCH_ADAPT;
	ev->value = ad->measured[which];
	ev->threshold = ad->law.obj[which].target_s;
	ev->now_ns = now;
	ev->firing = ad->law.infeasible;
	return ad->fn != NULL;
}

uint64_t ripen__watch_tick(struct ripen_pool *pool, uint64_t now)
{
	struct ripen__watchers *ws = watchers_of(pool);
	struct pending ev[RIPEN_MAX_WATCHES + 1];
	uint64_t next = UINT64_MAX;
	unsigned nev = 0;
	double tau = NAN;
	struct adapt_trace tr = { .n = 0 };

	pthread_mutex_lock(&ws->lock);
	if (ws->n == 0 && ws->ad == NULL) {
		pthread_mutex_unlock(&ws->lock);
		return UINT64_MAX;
	}
	if (ws->ad != NULL) {
		struct adaptive *ad = ws->ad;

		if (now >= ad->next_step && adaptive_step(pool, ws, now, &tau, &ev[nev].ev, &tr)) {
			ev[nev].id = 0;
			ev[nev].fn = ad->fn;
			ev[nev].arg = ad->arg;
			nev++;
		}
		for (size_t i = 0; i < ad->law.n; i++) {
			struct ripen_watch_event dummy;

			if (now >= ad->m[i]->next_eval) /* the measuring ring's snapshots */
				(void)evaluate(pool, ws, ad->m[i], now, &dummy);
			if (ad->m[i]->next_eval < next)
				next = ad->m[i]->next_eval;
		}
		if (ad->next_step < next)
			next = ad->next_step;
	}
	for (unsigned i = 0; i < RIPEN_MAX_WATCHES; i++) {
		struct watch *w = ws->w[i];

		if (w == NULL)
			continue;
		if (now >= w->next_eval && evaluate(pool, ws, w, now, &ev[nev].ev)) {
			ev[nev].id = w->id;
			ev[nev].fn = w->o.fn;
			ev[nev].arg = w->o.arg;
			nev++;
		}
		if (w->next_eval < next)
			next = w->next_eval;
	}
	if (nev == 0 && isnan(tau)) {
		pthread_mutex_unlock(&ws->lock);
		adapt_trace_put(pool, &tr);
		return next;
	}
	ws->delivering = true;
	if (!isnan(tau)) {
		/* a new tau is a new policy: installed outside the lock, as a
		 * callback would (the controller is not stopped meanwhile:
		 * ripen_pool_adapt_stop waits for the delivery) */
		struct ripen_policy *p = adaptive_policy(ws->ad, tau);

		pthread_mutex_unlock(&ws->lock);
		if (p != NULL)
			(void)ripen_pool_set_policy(pool, p); /* takes p */
		pthread_mutex_lock(&ws->lock);
	}
	for (unsigned k = 0; k < nev; k++) {
		bool live = ev[k].id == 0 && ws->ad != NULL; /* the controller's */

		/* a callback before this one may have removed this watcher */
		for (unsigned i = 0; i < RIPEN_MAX_WATCHES && !live; i++)
			live = ws->w[i] != NULL && ws->w[i]->id == ev[k].id;
		if (!live)
			continue;
		pthread_mutex_unlock(&ws->lock);
		ripen__in_callback = RIPEN_CB_WATCH;
		ev[k].fn(pool, &ev[k].ev, ev[k].arg);
		ripen__in_callback = RIPEN_CB_NONE;
		pthread_mutex_lock(&ws->lock);
	}
	ws->delivering = false;
	pthread_cond_broadcast(&ws->done);
	/* a callback may have added watchers: they are due later anyway */
	pthread_mutex_unlock(&ws->lock);
	adapt_trace_put(pool, &tr);
	return next;
}
