/*
 * ripen-replay's trace loaders: four input formats into one rp_trace
 * (replay.h). Every loader is strict, reports the first problem as
 * "NAME:LINE:COL: what" (text; LINE and COL 1-based, COL the first byte of
 * the offending field, 1 for a whole-line problem) or "NAME: record N: what"
 * (binary; N counts records from 1), and leaves the trace as it was before
 * the failing call (its tasks, skipped count and pending google2011 events
 * are rolled back). Any input is safe: bounded memory per line, no crash.
 *
 * Common to the text formats: fields are separated by ',' with no quoting
 * and no blanks around them; a line ends with LF or CRLF; lines longer than
 * RP_MAX_LINE (64 KiB) are an error; empty lines are skipped wherever they
 * are; a UTF-8 byte-order mark before the first line is ignored. A decimal
 * is [+-]digits[.digits][(e|E)[+-]digits] (".5" and "5." too; no inf, nan,
 * hex or blanks) and must be finite; an integer is plain digits. Times and
 * service times are at most RP_MAX_SECONDS (1e12 s). Files are read through
 * zlib when it is built in, so any of them may also be gzip-compressed.
 *
 * csv: a header naming the columns arrival_s, class, base, service_s and
 *   optionally deadline_s, in any order (an unknown or repeated name is an
 *   error), then one task a line. arrival_s >= 0; class an integer below
 *   2^32; base any finite decimal; service_s >= 0; deadline_s >= 0, absolute
 *   on the clock of arrival_s, 0 = none, else not before arrival_s. A header
 *   with no rows is no error here (rp_finish then finds the trace empty).
 *
 * google2011, detected by the first line: one that starts with a digit
 *   makes the file a raw clusterdata-2011-2 task_events part (13 columns,
 *   no header); anything else must be the header of the derived table.
 *  (a) Raw parts. Columns: time (us), missing-info, job id, task index,
 *   machine id, event type, user, scheduling class, priority, CPU, memory,
 *   disk, different-machine. time, job id, task index and event type (0-8)
 *   are required integers; scheduling class and priority are integers below
 *   2^32, required on submit events (empty allowed elsewhere); the other
 *   columns are not read. Events are only collected by rp_load; rp_finish
 *   pairs them over every part loaded into the trace, in any order of the
 *   parts: per (job id, task index), events in time order (ties: load
 *   order), each attempt is
 *     submit (0) -> schedule (1) -> end: evict 2, fail 3, finish 4, kill 5
 *     or lost 6,
 *   and becomes one task: arrival = submit time, service = end time -
 *   schedule time, base = the submit's priority, class = its scheduling
 *   class (update events 7/8 are ignored). The cut-short rule: an attempt
 *   that ends by evict, fail, kill or lost after it was scheduled is
 *   replayed with its service cut at that event -- the work it did before
 *   the end -- exactly like a finish. A resubmission (a submit after an
 *   end, usually after an evict) starts a new attempt: a new task. Counted
 *   in tr->skipped and not replayed, one per attempt: an attempt whose
 *   submit is not in the loaded parts (its first event seen is a schedule,
 *   update or end), one that was not scheduled when it ended (killed or
 *   lost while pending: it never ran), and one with no end inside the parts
 *   (still pending or running at the last event, or followed by another
 *   submit without an end). Events at time 2^63-1 (the trace's "after the
 *   window") are dropped, so their attempts have no end.
 *  (b) The derived table tasks_p01-02.csv, header arrival_us, job_id,
 *   task_index, priority, sched_class, wait_us, service_us, end_event,
 *   cpu_req (any order; arrival_us, priority, sched_class and service_us
 *   required): arrival = arrival_us / 1e6, service = service_us / 1e6, base
 *   = priority, class = sched_class; the other columns are not read.
 *
 * azure-llm: Azure's LLM inference traces, header TIMESTAMP, ContextTokens,
 *   GeneratedTokens (any order). TIMESTAMP is "YYYY-MM-DD HH:MM:SS" with an
 *   optional fraction of 1-9 digits (a 'T' in place of the blank is
 *   accepted), read as UTC; times are kept as seconds from midnight of the
 *   first azure-llm timestamp loaded into the trace, so several files merge
 *   on one clock and midnight and month ends are crossed by date
 *   arithmetic. The traces hold no service time; it is a MODEL, linear in
 *   the token counts:
 *     service_s = RP_AZURE_FIXED_S + RP_AZURE_PREFILL_S * ContextTokens
 *                                  + RP_AZURE_DECODE_S * GeneratedTokens
 *   with 5 ms of fixed overhead, 0.2 ms a context token (prefill at ~5,000
 *   tokens/s) and 25 ms a generated token (decode at ~40 tokens/s). These
 *   are approximate, order-of-magnitude figures of the kind public LLM
 *   serving reports give for one request on a multi-GPU node serving a
 *   70B-class model (prefill at thousands of tokens a second, 20-50 ms
 *   between output tokens; e.g. the Splitwise paper that released this
 *   trace, and vLLM/TensorRT-LLM benchmarks); batching and contention are
 *   not modelled. A file whose name (after the last '/') contains "code"
 *   (any case) is class 1, base 10 (code completion, latency-critical);
 *   any other ("conv", conversation) is class 0, base 1.
 *
 * ripen: the binary files of include/ripen-trace.h. The header's magic,
 *   version (1), header_size (>= 184) and record_size (>= 48) are checked;
 *   what a newer writer appended to either is skipped. A RUN record becomes
 *   a task: arrival = ready_ns, service = end_ns - start_ns (end before
 *   start is an error), base (must be finite), class. A CANCEL record is
 *   counted in skipped. The trailer, when there is one, must be whole, last,
 *   and count the records read. A file without a trailer (the writer
 *   died) is accepted when it ends on a record boundary; a partial last
 *   record is "record N: truncated". Times are the monotonic clock's: files
 *   of one boot merge on it. Records are in file (end) order, not arrival
 *   order; rp_finish sorts.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RP_HAVE_ZLIB
#include <zlib.h>
#endif

#include "replay.h"
#include "ripen-trace.h"

#define RP_MAX_LINE 65536u		/* bytes a line, its end excluded */
#define RP_BUF_SIZE (1u << 20)		/* a file's read window (> RP_MAX_LINE + 2) */
#define RP_MAX_FIELDS 16u		/* fields a line keeps (more are only counted) */
#define RP_MAX_NUMBER 400u		/* characters of a number that needs strtod */
#define RP_MAX_SECONDS 1e12		/* the largest time or service time accepted */
#define RP_MAX_BIN_PART 65536u		/* the largest header_size / record_size */

/* azure-llm's service model (see above) */
#define RP_AZURE_FIXED_S 0.005
#define RP_AZURE_PREFILL_S 0.0002
#define RP_AZURE_DECODE_S 0.025
#define RP_AZURE_CODE_CLASS 1u
#define RP_AZURE_CODE_BASE 10.0
#define RP_AZURE_OTHER_CLASS 0u
#define RP_AZURE_OTHER_BASE 1.0

#define RP_GOOGLE_NO_TIME INT64_MAX	/* "after the trace window" */

/* ---- state kept between rp_load calls --------------------------------- */

struct gev {				/* one raw google2011 event */
	uint64_t job;
	int64_t t;
	uint32_t idx;
	uint32_t seq;			/* load order, the tie-break */
	uint32_t prio;
	uint32_t cls;
	uint8_t type;
};

struct loader {
	struct gev *ev;
	size_t nev, evcap;
	bool have_day0;			/* azure-llm's reference day */
	int64_t day0;
};

/* ---- context, messages ------------------------------------------------- */

struct ctx {
	const char *name;
	char *err;
	size_t errlen;
	struct rp_trace *tr;
};

static int fail_at(struct ctx *c, size_t line, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_at(struct ctx *c, size_t line, size_t col, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (c->err == NULL || c->errlen == 0)
		return -1;
	if (line > 0)
		k = snprintf(c->err, c->errlen, "%s:%zu:%zu: ", c->name, line, col);
	else
		k = snprintf(c->err, c->errlen, "%s: ", c->name);
	if (k < 0) {
		c->err[0] = '\0';
		return -1;
	}
	if ((size_t)k < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
		va_end(ap);
	}
	return -1;
}

#define fail(c, ...) fail_at((c), 0, 0, __VA_ARGS__)

/* A field's text for a message: at most 40 bytes, unprintable bytes as '?'. */
struct shown {
	char s[48];
};

static struct shown show(const char *p, size_t n)
{
	struct shown o;
	size_t k = n > 40 ? 40 : n;

	for (size_t i = 0; i < k; i++) {
		unsigned char ch = (unsigned char)p[i];

		o.s[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	if (k < n) {
		memcpy(o.s + k, "...", 4);
	} else {
		o.s[k] = '\0';
	}
	return o;
}

/* ---- the trace ------------------------------------------------------------ */

static int push_task(struct ctx *c, const struct rp_task *t)
{
	struct rp_trace *tr = c->tr;

	if (tr->n == tr->cap) {
		size_t cap = tr->cap ? tr->cap * 2 : 1024;
		struct rp_task *p;

		if (cap < tr->cap || cap > SIZE_MAX / sizeof(*p))
			return fail(c, "out of memory");
		p = realloc(tr->t, cap * sizeof(*p));
		if (p == NULL)
			return fail(c, "out of memory");
		tr->t = p;
		tr->cap = cap;
	}
	tr->t[tr->n++] = *t;
	return 0;
}

static struct loader *get_loader(struct ctx *c)
{
	if (c->tr->loader == NULL) {
		c->tr->loader = calloc(1, sizeof(struct loader));
		if (c->tr->loader == NULL)
			fail(c, "out of memory");
	}
	return c->tr->loader;
}

/* ---- input: a memory buffer, or a file through zlib (or stdio) ----------- */

struct rd {
	struct ctx *c;
	const char *data;		/* the bytes: data[beg, end) not consumed yet */
	size_t beg, end, scan;		/* scan: data[beg, scan) holds no '\n' */
	bool eof;
	char *own;			/* file mode: the window (data == own) */
	void *fh;			/* gzFile or FILE * */
	size_t lineno;			/* the last line returned */
	uint64_t consumed;		/* bytes before data[beg] (binary) */
};

static void rd_mem(struct rd *r, struct ctx *c, const char *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->data = len ? buf : "";
	r->end = len;
	r->eof = true;
}

#ifdef RP_HAVE_ZLIB
/* zlib's message, less the "PATH: " it starts with. */
static const char *gz_message(gzFile g, const char *path, int *zerr)
{
	const char *msg = gzerror(g, zerr);
	size_t n = strlen(path);

	if (msg == NULL || *msg == '\0')
		return "read error";
	if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
		msg += n + 2;
	return msg;
}
#endif

/* File mode: read more after what is left; 0, or -1 with the message. */
static int rd_more(struct rd *r)
{
	size_t left = r->end - r->beg;
	long got;

	if (r->beg > 0) {
		memmove(r->own, r->own + r->beg, left);
		r->scan -= r->beg;
		r->beg = 0;
		r->end = left;
	}
#ifdef RP_HAVE_ZLIB
	{
		unsigned want = (unsigned)(RP_BUF_SIZE - r->end);
		int k;

		errno = 0;
		k = gzread((gzFile)r->fh, r->own + r->end, want);
		if (k <= 0) {
			int saved = errno, zerr;
			const char *msg = gz_message((gzFile)r->fh, r->c->name, &zerr);

			if (zerr == Z_ERRNO)
				return fail(r->c, "%s", strerror(saved ? saved : EIO));
			if (k < 0 || (zerr != Z_OK && zerr != Z_STREAM_END))
				return fail(r->c, "gzip: %s", msg);
		}
		got = k;
	}
#else
	{
		FILE *f = r->fh;
		size_t k = fread(r->own + r->end, 1, RP_BUF_SIZE - r->end, f);

		if (k == 0 && ferror(f))
			return fail(r->c, "%s", strerror(errno ? errno : EIO));
		if (r->consumed == 0 && r->end == 0 && k >= 2 &&
		    (unsigned char)r->own[0] == 0x1f && (unsigned char)r->own[1] == 0x8b)
			return fail(r->c, "gzip-compressed, but this build has no zlib");
		got = (long)k;
	}
#endif
	if (got == 0)
		r->eof = true;
	r->end += (size_t)got;
	return 0;
}

/* The next line (its end and a trailing CR removed): 1, 0 at the end, -1. */
static int rd_line(struct rd *r, const char **p, size_t *n)
{
	for (;;) {
		const char *base = r->data + r->beg;
		size_t avail = r->end - r->beg, from = r->scan - r->beg;
		const char *nl = avail > from ? memchr(base + from, '\n', avail - from) : NULL;
		size_t len;

		if (nl != NULL) {
			len = (size_t)(nl - base);
			r->beg += len + 1;
		} else if (avail > RP_MAX_LINE + 1 || (r->eof && avail > 0)) {
			len = avail;
			r->beg = r->end;
		} else if (r->eof) {
			return 0;
		} else {
			r->scan = r->end;
			if (rd_more(r) != 0)
				return -1;
			continue;
		}
		r->scan = r->beg;
		r->lineno++;
		if (len > 0 && base[len - 1] == '\r')
			len--;
		if (len > RP_MAX_LINE)
			return fail_at(r->c, r->lineno, 1, "line longer than %u bytes", RP_MAX_LINE);
		*p = base;
		*n = len;
		return 1;
	}
}

/* Binary: make up to k bytes available at data[beg]; returns how many are. */
static int rd_need(struct rd *r, size_t k, size_t *have)
{
	while (r->end - r->beg < k && !r->eof) {
		r->scan = r->end;
		if (rd_more(r) != 0)
			return -1;
	}
	*have = r->end - r->beg < k ? r->end - r->beg : k;
	return 0;
}

static void rd_skip(struct rd *r, size_t k)
{
	r->beg += k;
	r->scan = r->beg;
	r->consumed += k;
}

/* ---- fields and numbers ------------------------------------------------------ */

struct field {
	const char *p;
	size_t n;
	size_t col;
};

/* Splits a line at ','; stores the first RP_MAX_FIELDS, returns the count. */
static size_t split(const char *p, size_t n, struct field *f)
{
	size_t k = 0, start = 0;

	for (;;) {
		const char *q = start < n ? memchr(p + start, ',', n - start) : NULL;
		size_t stop = q ? (size_t)(q - p) : n;

		if (k < RP_MAX_FIELDS) {
			f[k].p = p + start;
			f[k].n = stop - start;
			f[k].col = start + 1;
		}
		k++;
		if (q == NULL)
			return k;
		start = stop + 1;
	}
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

enum { NUM_OK, NUM_SYNTAX, NUM_RANGE, NUM_LONG };

static const double pow10_exact[23] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/*
 * A strict decimal. Most fields (at most 19 significant digits, a power of
 * ten within 1e+-22, mantissa below 2^53) are converted exactly here: one
 * IEEE multiplication or division of two exact values is correctly rounded.
 * The rest go through strtod once the syntax is known to be good.
 */
static int parse_double(const char *p, size_t n, double *out)
{
	size_t i = 0;
	bool neg = false, any = false, exact = true;
	uint64_t m = 0;
	int digits = 0;
	long e10 = 0;
	double v;

	if (i < n && (p[i] == '+' || p[i] == '-')) {
		neg = p[i] == '-';
		i++;
	}
	for (; i < n && is_digit(p[i]); i++) {
		any = true;
		if (m == 0 && p[i] == '0')
			continue;
		if (digits < 19) {
			m = m * 10 + (uint64_t)(p[i] - '0');
			digits++;
		} else {
			exact = false;
		}
	}
	if (i < n && p[i] == '.') {
		for (i++; i < n && is_digit(p[i]); i++) {
			any = true;
			if (m == 0 && p[i] == '0') {
				e10--;
				continue;
			}
			if (digits < 19) {
				m = m * 10 + (uint64_t)(p[i] - '0');
				digits++;
				e10--;
			} else {
				exact = false;
			}
		}
	}
	if (!any)
		return NUM_SYNTAX;
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		bool eneg = false, edig = false;
		long ev = 0;

		i++;
		if (i < n && (p[i] == '+' || p[i] == '-')) {
			eneg = p[i] == '-';
			i++;
		}
		for (; i < n && is_digit(p[i]); i++) {
			edig = true;
			if (ev < 100000)
				ev = ev * 10 + (p[i] - '0');
		}
		if (!edig)
			return NUM_SYNTAX;
		e10 += eneg ? -ev : ev;
	}
	if (i != n)
		return NUM_SYNTAX;
	if (m == 0) {
		v = 0.0;
	} else if (exact && m <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
		v = (double)m;
		v = e10 < 0 ? v / pow10_exact[-e10] : v * pow10_exact[e10];
	} else {
		char buf[RP_MAX_NUMBER + 1];

		if (n > RP_MAX_NUMBER)
			return NUM_LONG;
		memcpy(buf, p, n);
		buf[n] = '\0';
		errno = 0;
		v = strtod(buf, NULL);	/* the sign is in buf */
		if (!isfinite(v))
			return NUM_RANGE;
		*out = v + 0.0;
		return NUM_OK;
	}
	*out = neg ? -v + 0.0 : v;
	return NUM_OK;
}

static bool parse_uint(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (!is_digit(p[i]))
			return false;
		d = (unsigned)(p[i] - '0');
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* A decimal field: rc 0 and *v, or -1 with the message. */
static int field_double(struct rd *r, const struct field *f, const char *what, double *v)
{
	int rc;

	if (f->n == 0)
		return fail_at(r->c, r->lineno, f->col, "%s: empty field", what);
	rc = parse_double(f->p, f->n, v);
	if (rc == NUM_OK)
		return 0;
	if (rc == NUM_RANGE)
		return fail_at(r->c, r->lineno, f->col, "%s: out of range %s", what,
			       show(f->p, f->n).s);
	if (rc == NUM_LONG)
		return fail_at(r->c, r->lineno, f->col, "%s: number longer than %u characters",
			       what, RP_MAX_NUMBER);
	return fail_at(r->c, r->lineno, f->col, "%s: expected a decimal number, found '%s'", what,
		       show(f->p, f->n).s);
}

/* A time or service time: a decimal in [0, RP_MAX_SECONDS * scale]. */
static int field_time(struct rd *r, const struct field *f, const char *what, const char *kind,
		      double scale, double *v)
{
	if (field_double(r, f, what, v) != 0)
		return -1;
	if (*v < 0)
		return fail_at(r->c, r->lineno, f->col, "%s: negative %s %s", what, kind,
			       show(f->p, f->n).s);
	if (*v > RP_MAX_SECONDS * scale)
		return fail_at(r->c, r->lineno, f->col, "%s: out of range %s (at most %g s)", what,
			       show(f->p, f->n).s, RP_MAX_SECONDS);
	return 0;
}

static int field_uint(struct rd *r, const struct field *f, const char *what, uint64_t max,
		      uint64_t *v)
{
	if (parse_uint(f->p, f->n, max, v))
		return 0;
	if (f->n == 0)
		return fail_at(r->c, r->lineno, f->col, "%s: empty field", what);
	return fail_at(r->c, r->lineno, f->col, "%s: expected an integer in [0, %llu], found '%s'",
		       what, (unsigned long long)max, show(f->p, f->n).s);
}

/* ---- headers ------------------------------------------------------------------ */

struct colspec {
	const char *name;
	bool required;
};

/*
 * Maps header fields to specs: role[i] = the spec of column i. Unknown,
 * empty and repeated names and missing required ones are errors.
 */
static int map_header(struct rd *r, const char *p, size_t n, const struct colspec *spec,
		      size_t nspec, const char *expect, int *role, size_t *ncols)
{
	struct field f[RP_MAX_FIELDS];
	size_t k = split(p, n, f);
	int seen[RP_MAX_FIELDS];

	for (size_t s = 0; s < nspec; s++)
		seen[s] = 0;
	for (size_t i = 0; i < k && i < RP_MAX_FIELDS; i++) {
		size_t s;

		for (s = 0; s < nspec; s++)
			if (strlen(spec[s].name) == f[i].n && memcmp(spec[s].name, f[i].p, f[i].n) == 0)
				break;
		if (s == nspec) {
			if (f[i].n == 0)
				return fail_at(r->c, r->lineno, f[i].col,
					       "header: empty column name (expected %s)", expect);
			return fail_at(r->c, r->lineno, f[i].col,
				       "header: unknown column '%s' (expected %s)",
				       show(f[i].p, f[i].n).s, expect);
		}
		if (seen[s])
			return fail_at(r->c, r->lineno, f[i].col, "header: duplicate column %s",
				       spec[s].name);
		seen[s] = 1;
		role[i] = (int)s;
	}
	/* more than RP_MAX_FIELDS columns: one of the first nspec + 1 repeats or
	 * is unknown, so this is only reached with k <= nspec */
	for (size_t s = 0; s < nspec; s++)
		if (spec[s].required && !seen[s])
			return fail_at(r->c, r->lineno, 1, "header: missing column %s", spec[s].name);
	*ncols = k;
	return 0;
}

/* The first line, a byte-order mark removed; -1 on error, 0 at the end. */
static int first_line(struct rd *r, const char **p, size_t *n)
{
	int rc = rd_line(r, p, n);

	if (rc == 1 && *n >= 3 && memcmp(*p, "\xef\xbb\xbf", 3) == 0) {
		*p += 3;
		*n -= 3;
	}
	return rc;
}

static int header_line(struct rd *r, const char **p, size_t *n, const char *expect)
{
	int rc = first_line(r, p, n);

	if (rc < 0)
		return -1;
	if (rc == 0 || *n == 0)
		return fail_at(r->c, r->lineno ? r->lineno : 1, 1, "header: missing (expected %s)",
			       expect);
	return 0;
}

/* The next non-empty data line and its fields, checked against ncols. */
static int data_line(struct rd *r, struct field *f, size_t ncols)
{
	const char *p;
	size_t n, k;
	int rc;

	do {
		rc = rd_line(r, &p, &n);
		if (rc <= 0)
			return rc;
	} while (n == 0);
	k = split(p, n, f);
	if (k != ncols)
		return fail_at(r->c, r->lineno, 1, "expected %zu fields, found %zu", ncols, k);
	return 1;
}

/* ---- csv ------------------------------------------------------------------------ */

enum { CSV_ARRIVAL, CSV_CLASS, CSV_BASE, CSV_SERVICE, CSV_DEADLINE, CSV_NCOLS };

static int load_csv(struct rd *r)
{
	static const struct colspec spec[CSV_NCOLS] = {
		{ "arrival_s", true }, { "class", true }, { "base", true },
		{ "service_s", true }, { "deadline_s", false },
	};
	static const char expect[] = "arrival_s,class,base,service_s[,deadline_s]";
	struct field f[RP_MAX_FIELDS];
	int role[RP_MAX_FIELDS];
	const char *p;
	size_t n, ncols;
	int rc;

	if (header_line(r, &p, &n, expect) != 0 ||
	    map_header(r, p, n, spec, CSV_NCOLS, expect, role, &ncols) != 0)
		return -1;
	while ((rc = data_line(r, f, ncols)) == 1) {
		struct rp_task t = { 0 };
		const struct field *fa = NULL, *fd = NULL;

		for (size_t i = 0; i < ncols; i++) {
			uint64_t u;

			switch (role[i]) {
			case CSV_ARRIVAL:
				rc = field_time(r, &f[i], "arrival_s", "arrival time", 1, &t.arrival_s);
				fa = &f[i];
				break;
			case CSV_CLASS:
				rc = field_uint(r, &f[i], "class", UINT32_MAX, &u);
				t.class_id = (uint32_t)u;
				break;
			case CSV_BASE:
				rc = field_double(r, &f[i], "base", &t.base);
				break;
			case CSV_SERVICE:
				rc = field_time(r, &f[i], "service_s", "service time", 1, &t.service_s);
				break;
			default:
				rc = field_time(r, &f[i], "deadline_s", "deadline", 1, &t.deadline_s);
				fd = &f[i];
				break;
			}
			if (rc != 0)
				return -1;
		}
		if (fd != NULL && t.deadline_s != 0 && t.deadline_s < t.arrival_s)
			return fail_at(r->c, r->lineno, fd->col, "deadline_s: deadline %s before arrival %s",
				       show(fd->p, fd->n).s, show(fa->p, fa->n).s);
		if (push_task(r->c, &t) != 0)
			return -1;
	}
	return rc;
}

/* ---- google2011 ---------------------------------------------------------------- */

static int push_event(struct ctx *c, const struct gev *e)
{
	struct loader *ld = get_loader(c);

	if (ld == NULL)
		return -1;
	if (ld->nev >= UINT32_MAX)
		return fail(c, "more than %u google2011 events", UINT32_MAX);
	if (ld->nev == ld->evcap) {
		size_t cap = ld->evcap ? ld->evcap * 2 : 4096;
		struct gev *p;

		if (cap > SIZE_MAX / sizeof(*p))
			return fail(c, "out of memory");
		p = realloc(ld->ev, cap * sizeof(*p));
		if (p == NULL)
			return fail(c, "out of memory");
		ld->ev = p;
		ld->evcap = cap;
	}
	ld->ev[ld->nev] = *e;
	ld->ev[ld->nev].seq = (uint32_t)ld->nev;
	ld->nev++;
	return 0;
}

enum {
	G_TIME = 0, G_JOB = 2, G_INDEX = 3, G_TYPE = 5, G_CLASS = 7, G_PRIO = 8, G_NCOLS = 13,
};
enum {
	EV_SUBMIT = 0, EV_SCHEDULE = 1, EV_EVICT = 2, EV_FAIL = 3, EV_FINISH = 4, EV_KILL = 5,
	EV_LOST = 6, EV_UPDATE_PENDING = 7, EV_UPDATE_RUNNING = 8,
};

/* One raw task_events line (already split into 13 fields). */
static int google_event(struct rd *r, const struct field *f)
{
	struct gev e = { 0 };
	uint64_t u;

	if (field_uint(r, &f[G_TIME], "time", INT64_MAX, &u) != 0)
		return -1;
	e.t = (int64_t)u;
	if (field_uint(r, &f[G_JOB], "job id", UINT64_MAX, &e.job) != 0 ||
	    field_uint(r, &f[G_INDEX], "task index", UINT32_MAX, &u) != 0)
		return -1;
	e.idx = (uint32_t)u;
	if (field_uint(r, &f[G_TYPE], "event type", EV_UPDATE_RUNNING, &u) != 0)
		return -1;
	e.type = (uint8_t)u;
	if (f[G_CLASS].n > 0 || e.type == EV_SUBMIT) {
		if (f[G_CLASS].n == 0)
			return fail_at(r->c, r->lineno, f[G_CLASS].col,
				       "scheduling class: empty on a submit event");
		if (field_uint(r, &f[G_CLASS], "scheduling class", UINT32_MAX, &u) != 0)
			return -1;
		e.cls = (uint32_t)u;
	}
	if (f[G_PRIO].n > 0 || e.type == EV_SUBMIT) {
		if (f[G_PRIO].n == 0)
			return fail_at(r->c, r->lineno, f[G_PRIO].col,
				       "priority: empty on a submit event");
		if (field_uint(r, &f[G_PRIO], "priority", UINT32_MAX, &u) != 0)
			return -1;
		e.prio = (uint32_t)u;
	}
	if (e.t == RP_GOOGLE_NO_TIME)
		return 0;
	return push_event(r->c, &e);
}

static int google_raw_line(struct rd *r, const char *p, size_t n)
{
	struct field f[RP_MAX_FIELDS];
	size_t k;

	if (n == 0)
		return 0;
	k = split(p, n, f);
	if (k != G_NCOLS)
		return fail_at(r->c, r->lineno, 1, "expected %u fields, found %zu", (unsigned)G_NCOLS, k);
	return google_event(r, f);
}

enum { GD_ARRIVAL, GD_JOB, GD_INDEX, GD_PRIO, GD_CLASS, GD_WAIT, GD_SERVICE, GD_END, GD_CPU, GD_NCOLS };

static int load_google_derived(struct rd *r, const char *p, size_t n)
{
	static const struct colspec spec[GD_NCOLS] = {
		{ "arrival_us", true }, { "job_id", false }, { "task_index", false },
		{ "priority", true }, { "sched_class", true }, { "wait_us", false },
		{ "service_us", true }, { "end_event", false }, { "cpu_req", false },
	};
	static const char expect[] = "a raw task_events part (13 columns, no header) or the "
		"header arrival_us,job_id,task_index,priority,sched_class,wait_us,service_us,"
		"end_event,cpu_req";
	struct field f[RP_MAX_FIELDS];
	int role[RP_MAX_FIELDS];
	size_t ncols;
	int rc;

	if (map_header(r, p, n, spec, GD_NCOLS, expect, role, &ncols) != 0)
		return -1;
	while ((rc = data_line(r, f, ncols)) == 1) {
		struct rp_task t = { 0 };

		for (size_t i = 0; i < ncols; i++) {
			uint64_t u;

			rc = 0;
			switch (role[i]) {
			case GD_ARRIVAL:
				rc = field_time(r, &f[i], "arrival_us", "arrival time", 1e6, &t.arrival_s);
				t.arrival_s /= 1e6;
				break;
			case GD_PRIO:
				rc = field_double(r, &f[i], "priority", &t.base);
				break;
			case GD_CLASS:
				rc = field_uint(r, &f[i], "sched_class", UINT32_MAX, &u);
				t.class_id = (uint32_t)u;
				break;
			case GD_SERVICE:
				rc = field_time(r, &f[i], "service_us", "service time", 1e6, &t.service_s);
				t.service_s /= 1e6;
				break;
			default:
				break;
			}
			if (rc != 0)
				return -1;
		}
		if (push_task(r->c, &t) != 0)
			return -1;
	}
	return rc;
}

static int load_google(struct rd *r)
{
	const char *p;
	size_t n;
	int rc = first_line(r, &p, &n);

	if (rc <= 0)
		return rc;	/* an empty part: no events */
	if (n > 0 && !is_digit(p[0]))
		return load_google_derived(r, p, n);
	do {
		if (google_raw_line(r, p, n) != 0)
			return -1;
	} while ((rc = rd_line(r, &p, &n)) == 1);
	return rc;
}

static int cmp_gev(const void *a, const void *b)
{
	const struct gev *x = a, *y = b;

	if (x->job != y->job)
		return x->job < y->job ? -1 : 1;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

struct gout {
	uint32_t seq;			/* the submit's load order */
	struct rp_task t;
};

static int cmp_gout(const void *a, const void *b)
{
	const struct gout *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Pairs the pending raw events into tasks (the rule is at the top). */
static int google_resolve(struct ctx *c, struct loader *ld)
{
	enum { IDLE, PENDING, RUNNING, ORPHAN } st = IDLE;
	struct gout *out = NULL;
	size_t nout = 0, skipped = 0;
	const struct gev *sub = NULL;
	int64_t sched = 0;

	if (ld->nev == 0)
		return 0;
	qsort(ld->ev, ld->nev, sizeof(ld->ev[0]), cmp_gev);
	/* every task has its own submit event: nev bounds the output */
	if (ld->nev > SIZE_MAX / sizeof(*out))
		return fail(c, "out of memory");
	out = malloc(ld->nev * sizeof(*out));
	if (out == NULL)
		return fail(c, "out of memory");
	for (size_t i = 0; i < ld->nev; i++) {
		const struct gev *e = &ld->ev[i];

		if (i > 0 && (e->job != e[-1].job || e->idx != e[-1].idx)) {
			skipped += st != IDLE;
			st = IDLE;
		}
		switch (e->type) {
		case EV_SUBMIT:
			skipped += st != IDLE;	/* the previous attempt had no end */
			st = PENDING;
			sub = e;
			break;
		case EV_SCHEDULE:
			if (st == PENDING) {
				st = RUNNING;
				sched = e->t;
			} else if (st == IDLE) {
				st = ORPHAN;
			}
			break;
		case EV_UPDATE_PENDING:
		case EV_UPDATE_RUNNING:
			if (st == IDLE)
				st = ORPHAN;
			break;
		default:		/* evict, fail, finish, kill, lost */
			if (st == RUNNING) {
				out[nout].seq = sub->seq;
				out[nout].t = (struct rp_task){
					.arrival_s = (double)sub->t / 1e6,
					.service_s = (double)(e->t - sched) / 1e6,
					.base = (double)sub->prio,
					.class_id = sub->cls,
				};
				nout++;
			} else {
				skipped++;
			}
			st = IDLE;
			break;
		}
	}
	skipped += st != IDLE;
	qsort(out, nout, sizeof(*out), cmp_gout);
	for (size_t i = 0; i < nout; i++) {
		if (push_task(c, &out[i].t) != 0) {
			free(out);
			return -1;
		}
	}
	free(out);
	c->tr->skipped += skipped;
	return 0;
}

/* ---- azure-llm --------------------------------------------------------------- */

static bool digits_at(const char *p, size_t n, size_t at, size_t k, int *v)
{
	int x = 0;

	if (at + k > n)
		return false;
	for (size_t i = at; i < at + k; i++) {
		if (!is_digit(p[i]))
			return false;
		x = x * 10 + (p[i] - '0');
	}
	*v = x;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (year >= 0). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t yy = m <= 2 ? y - 1 : y;
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;				/* [0, 399] */
	int64_t mp = m > 2 ? m - 3 : m + 9;			/* March = 0 */
	int64_t doy = (153 * mp + 2) / 5 + d - 1;		/* [0, 365] */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;	/* [0, 146096] */

	return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* "YYYY-MM-DD HH:MM:SS[.f{1,9}]": the day and the seconds into it. */
static bool parse_timestamp(const char *p, size_t n, int64_t *day, double *sec)
{
	int y, mo, d, h, mi, s;
	long ns = 0;
	size_t i;

	if (!digits_at(p, n, 0, 4, &y) || n < 19 || p[4] != '-' || !digits_at(p, n, 5, 2, &mo) ||
	    p[7] != '-' || !digits_at(p, n, 8, 2, &d) || (p[10] != ' ' && p[10] != 'T') ||
	    !digits_at(p, n, 11, 2, &h) || p[13] != ':' || !digits_at(p, n, 14, 2, &mi) ||
	    p[16] != ':' || !digits_at(p, n, 17, 2, &s))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
		return false;
	i = 19;
	if (i < n) {
		long scale = 100000000;

		if (p[i] != '.' || i + 1 == n || n - (i + 1) > 9)
			return false;
		for (i++; i < n; i++, scale /= 10) {
			if (!is_digit(p[i]))
				return false;
			ns += (p[i] - '0') * scale;
		}
	}
	*day = days_from_civil(y, mo, d);
	*sec = h * 3600.0 + mi * 60.0 + s + (double)ns / 1e9;
	return true;
}

enum { AZ_TIME, AZ_CONTEXT, AZ_GENERATED, AZ_NCOLS };

static bool name_has(const char *name, const char *word)
{
	const char *slash = strrchr(name, '/');
	size_t wl = strlen(word);

	if (slash != NULL)
		name = slash + 1;
	for (; *name; name++) {
		size_t i;

		for (i = 0; i < wl; i++) {
			char ch = name[i];

			if (ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			if (ch != word[i])
				break;
		}
		if (i == wl)
			return true;
	}
	return false;
}

static int load_azure(struct rd *r)
{
	static const struct colspec spec[AZ_NCOLS] = {
		{ "TIMESTAMP", true }, { "ContextTokens", true }, { "GeneratedTokens", true },
	};
	static const char expect[] = "TIMESTAMP,ContextTokens,GeneratedTokens";
	struct field f[RP_MAX_FIELDS];
	int role[RP_MAX_FIELDS];
	const char *p;
	size_t n, ncols;
	bool code = name_has(r->c->name, "code");
	struct loader *ld;
	int rc;

	if (header_line(r, &p, &n, expect) != 0 ||
	    map_header(r, p, n, spec, AZ_NCOLS, expect, role, &ncols) != 0)
		return -1;
	while ((rc = data_line(r, f, ncols)) == 1) {
		struct rp_task t = { 0 };
		uint64_t ctx_tok = 0, gen_tok = 0;
		int64_t day = 0;
		double sec = 0;

		for (size_t i = 0; i < ncols; i++) {
			rc = 0;
			if (role[i] == AZ_TIME) {
				if (!parse_timestamp(f[i].p, f[i].n, &day, &sec))
					return fail_at(r->c, r->lineno, f[i].col,
						       "TIMESTAMP: expected YYYY-MM-DD HH:MM:SS[.fraction], found '%s'",
						       show(f[i].p, f[i].n).s);
			} else if (role[i] == AZ_CONTEXT) {
				rc = field_uint(r, &f[i], "ContextTokens", UINT32_MAX, &ctx_tok);
			} else {
				rc = field_uint(r, &f[i], "GeneratedTokens", UINT32_MAX, &gen_tok);
			}
			if (rc != 0)
				return -1;
		}
		ld = get_loader(r->c);
		if (ld == NULL)
			return -1;
		if (!ld->have_day0) {
			ld->have_day0 = true;
			ld->day0 = day;
		}
		t.arrival_s = (double)(day - ld->day0) * 86400.0 + sec;
		t.service_s = RP_AZURE_FIXED_S + RP_AZURE_PREFILL_S * (double)ctx_tok +
			      RP_AZURE_DECODE_S * (double)gen_tok;
		t.class_id = code ? RP_AZURE_CODE_CLASS : RP_AZURE_OTHER_CLASS;
		t.base = code ? RP_AZURE_CODE_BASE : RP_AZURE_OTHER_BASE;
		if (push_task(r->c, &t) != 0)
			return -1;
	}
	return rc;
}

/* ---- ripen binary traces --------------------------------------------------- */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static double ledouble(const unsigned char *p)
{
	uint64_t u = le64(p);
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

#define HOFF(f) offsetof(struct ripen_trace_header, f)
#define ROFF(f) offsetof(struct ripen_trace_record, f)
#define TOFF(f) offsetof(struct ripen_trace_trailer, f)

static int load_ripen(struct rd *r)
{
	struct ctx *c = r->c;
	const unsigned char *h;
	size_t have;
	uint32_t version, hsize, rsize;
	uint64_t nrec = 0;

	if (rd_need(r, sizeof(struct ripen_trace_header), &have) != 0)
		return -1;
	h = (const unsigned char *)r->data + r->beg;
	if (have < 8 || memcmp(h, RIPEN_TRACE_MAGIC, 8) != 0)
		return fail(c, "not a ripen trace (bad magic)");
	if (have < sizeof(struct ripen_trace_header))
		return fail(c, "header truncated (%zu of %zu bytes)", have,
			    sizeof(struct ripen_trace_header));
	version = le32(h + HOFF(version));
	hsize = le32(h + HOFF(header_size));
	rsize = le32(h + HOFF(record_size));
	if (version != RIPEN_TRACE_VERSION)
		return fail(c, "unsupported version %u (this reader knows %u)", version,
			    RIPEN_TRACE_VERSION);
	if (hsize < sizeof(struct ripen_trace_header) || hsize > RP_MAX_BIN_PART)
		return fail(c, "bad header_size %u (expected %zu to %u)", hsize,
			    sizeof(struct ripen_trace_header), RP_MAX_BIN_PART);
	if (rsize < sizeof(struct ripen_trace_record) || rsize > RP_MAX_BIN_PART)
		return fail(c, "bad record_size %u (expected %zu to %u)", rsize,
			    sizeof(struct ripen_trace_record), RP_MAX_BIN_PART);
	if (rd_need(r, hsize, &have) != 0)
		return -1;
	if (have < hsize)
		return fail(c, "header truncated (%zu of %u bytes)", have, hsize);
	rd_skip(r, hsize);
	for (;;) {
		const unsigned char *p;
		uint64_t ready, start, end;
		double base;
		unsigned kind;

		if (rd_need(r, rsize > sizeof(struct ripen_trace_trailer) ? rsize :
			    sizeof(struct ripen_trace_trailer), &have) != 0)
			return -1;
		if (have == 0)
			return 0;	/* no trailer: the records up to here */
		p = (const unsigned char *)r->data + r->beg;
		if (have >= 8 && memcmp(p, RIPEN_TRACE_END_MAGIC, 8) == 0) {
			uint64_t said;

			if (have < sizeof(struct ripen_trace_trailer))
				return fail(c, "trailer truncated (%zu of %zu bytes)", have,
					    sizeof(struct ripen_trace_trailer));
			said = le64(p + TOFF(records));
			if (said != nrec)
				return fail(c, "trailer counts %llu records, the file holds %llu",
					    (unsigned long long)said, (unsigned long long)nrec);
			rd_skip(r, sizeof(struct ripen_trace_trailer));
			if (rd_need(r, 1, &have) != 0)
				return -1;
			if (have > 0)
				return fail(c, "data after the trailer");
			return 0;
		}
		nrec++;
		if (have < rsize)
			return fail(c, "record %llu: truncated (%zu of %u bytes)",
				    (unsigned long long)nrec, have, rsize);
		kind = p[ROFF(kind)];
		ready = le64(p + ROFF(ready_ns));
		start = le64(p + ROFF(start_ns));
		end = le64(p + ROFF(end_ns));
		base = ledouble(p + ROFF(base));
		if (kind == RIPEN_TRACE_RUN) {
			struct rp_task t = { 0 };

			if (end < start)
				return fail(c, "record %llu: end before start", (unsigned long long)nrec);
			if (!isfinite(base))
				return fail(c, "record %llu: base not finite", (unsigned long long)nrec);
			t.arrival_s = (double)ready / 1e9;
			t.service_s = (double)(end - start) / 1e9;
			t.base = base;
			t.class_id = le32(p + ROFF(class_id));
			if (push_task(c, &t) != 0)
				return -1;
		} else if (kind == RIPEN_TRACE_CANCEL || kind == RIPEN_TRACE_ADAPT) {
			c->tr->skipped++; /* not tasks to replay */
		} else {
			return fail(c, "record %llu: unknown kind %u", (unsigned long long)nrec, kind);
		}
		rd_skip(r, rsize);
	}
}

/* ---- entry points ----------------------------------------------------------------- */

typedef int loader_fn(struct rd *r);

static loader_fn *lookup(const char *format)
{
	if (format == NULL)
		return NULL;
	if (strcmp(format, "csv") == 0)
		return load_csv;
	if (strcmp(format, "google2011") == 0)
		return load_google;
	if (strcmp(format, "azure-llm") == 0)
		return load_azure;
	if (strcmp(format, "ripen") == 0)
		return load_ripen;
	return NULL;
}

/* Runs a loader; on failure the trace is put back as it was. */
static int run_loader(loader_fn *fn, struct rd *r)
{
	struct rp_trace *tr = r->c->tr;
	struct loader *ld = tr->loader;
	size_t n0 = tr->n, skipped0 = tr->skipped, nev0 = ld ? ld->nev : 0;
	bool day0_set = ld ? ld->have_day0 : false;

	if (fn(r) == 0)
		return 0;
	tr->n = n0;
	tr->skipped = skipped0;
	ld = tr->loader;
	if (ld != NULL) {
		ld->nev = nev0;
		ld->have_day0 = day0_set;
	}
	return -1;
}

static int bad_format(struct ctx *c, const char *format)
{
	return fail(c, "unknown format '%s' (csv, google2011, azure-llm, ripen)",
		    format ? show(format, strlen(format)).s : "(null)");
}

int rp_load_buf(const char *name, const char *format, const char *buf, size_t len,
		struct rp_trace *tr, char *err, size_t errlen)
{
	struct ctx c = { name ? name : "(buffer)", err, errlen, tr };
	loader_fn *fn = lookup(format);
	struct rd r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (fn == NULL)
		return bad_format(&c, format);
	if (buf == NULL && len > 0)
		return fail(&c, "no buffer");
	rd_mem(&r, &c, buf, len);
	return run_loader(fn, &r);
}

int rp_load(const char *path, const char *format, struct rp_trace *tr, char *err, size_t errlen)
{
	struct ctx c = { path ? path : "(null)", err, errlen, tr };
	loader_fn *fn = lookup(format);
	struct rd r;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (fn == NULL)
		return bad_format(&c, format);
	if (path == NULL)
		return fail(&c, "no path");
	memset(&r, 0, sizeof(r));
	r.c = &c;
	r.own = malloc(RP_BUF_SIZE);
	if (r.own == NULL)
		return fail(&c, "out of memory");
	r.data = r.own;
	errno = 0;
#ifdef RP_HAVE_ZLIB
	r.fh = gzopen(path, "rb");
	if (r.fh != NULL)
		gzbuffer((gzFile)r.fh, 256u * 1024u);
#else
	r.fh = fopen(path, "rb");
#endif
	if (r.fh == NULL) {
		rc = fail(&c, "%s", errno ? strerror(errno) : "cannot open");
		free(r.own);
		return rc;
	}
	rc = run_loader(fn, &r);
#ifdef RP_HAVE_ZLIB
	gzclose_r((gzFile)r.fh);
#else
	fclose(r.fh);
#endif
	free(r.own);
	return rc;
}

/* Stable merge sort by arrival (ties keep load order). */
static void sort_tasks(struct rp_task *a, struct rp_task *tmp, size_t n)
{
	size_t mid, i, j, k;

	if (n < 16) {
		for (i = 1; i < n; i++) {
			struct rp_task x = a[i];

			for (j = i; j > 0 && a[j - 1].arrival_s > x.arrival_s; j--)
				a[j] = a[j - 1];
			a[j] = x;
		}
		return;
	}
	mid = n / 2;
	sort_tasks(a, tmp, mid);
	sort_tasks(a + mid, tmp, n - mid);
	if (a[mid - 1].arrival_s <= a[mid].arrival_s)
		return;
	memcpy(tmp, a, mid * sizeof(*a));
	for (i = 0, j = mid, k = 0; i < mid && j < n; k++)
		a[k] = a[j].arrival_s < tmp[i].arrival_s ? a[j++] : tmp[i++];
	while (i < mid)
		a[k++] = tmp[i++];
}

static void free_loader(struct rp_trace *tr)
{
	struct loader *ld = tr->loader;

	if (ld != NULL) {
		free(ld->ev);
		free(ld);
		tr->loader = NULL;
	}
}

int rp_finish(struct rp_trace *tr, const char *name, char *err, size_t errlen)
{
	struct ctx c = { name ? name : "(trace)", err, errlen, tr };
	bool sorted = true;
	double t0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (tr->loader != NULL) {
		if (google_resolve(&c, tr->loader) != 0)
			return -1;
		free_loader(tr);
	}
	if (tr->n == 0)
		return fail(&c, "empty trace");
	for (size_t i = 1; i < tr->n && sorted; i++)
		sorted = tr->t[i - 1].arrival_s <= tr->t[i].arrival_s;
	if (!sorted) {
		struct rp_task *tmp = malloc((tr->n / 2 + 1) * sizeof(*tmp));

		if (tmp == NULL)
			return fail(&c, "out of memory");
		sort_tasks(tr->t, tmp, tr->n);
		free(tmp);
	}
	t0 = tr->t[0].arrival_s;
	for (size_t i = 0; i < tr->n; i++) {
		struct rp_task *t = &tr->t[i];

		t->arrival_s -= t0;
		if (t->deadline_s != 0) {
			t->deadline_s -= t0;
			/* a deadline at the very first arrival must stay a deadline */
			if (t->deadline_s <= 0)
				t->deadline_s = DBL_TRUE_MIN;
		}
	}
	return 0;
}

void rp_free(struct rp_trace *tr)
{
	if (tr == NULL)
		return;
	free(tr->t);
	free_loader(tr);
	memset(tr, 0, sizeof(*tr));
}
