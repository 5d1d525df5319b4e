/*
 * ripen-replay's trace loaders (tools/replay/parse.c): every format from
 * small inline inputs with its values checked, google2011's pairing across
 * parts and its cut-short, resubmission and skip rules, ripen binary files
 * built here from the structs of ripen-trace.h, and every documented error
 * message, exactly (file, line, column). Files that must come from disk
 * (gzip, unreadable paths, azure-llm's name-based class) are written to a
 * temporary directory and removed.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef RP_HAVE_ZLIB
#include <zlib.h>
#endif

#include "../check.h"
#include "replay.h"
#include "ripen-trace.h"

/* ---- helpers ----------------------------------------------------------- */

#define CHECK_DBL(a, b)                                                       \
	do {                                                                  \
		double a_ = (a), b_ = (b);                                    \
		if (!(fabs(a_ - b_) <= 1e-9 * (fabs(b_) > 1 ? fabs(b_) : 1))) \
			check_fail(__FILE__, __LINE__, "%s == %s (%.17g vs %.17g)", \
				   #a, #b, a_, b_);                           \
	} while (0)

#define CHECK_STR(a, b)                                                       \
	do {                                                                  \
		const char *a_ = (a), *b_ = (b);                              \
		if (strcmp(a_, b_) != 0)                                      \
			check_fail(__FILE__, __LINE__, "%s\n  got  '%s'\n  want '%s'", \
				   #a, a_, b_);                               \
	} while (0)

static char err[1024];

static void load_ok_(const char *name, const char *fmt, const char *buf, size_t len,
		     struct rp_trace *tr, int line)
{
	if (rp_load_buf(name, fmt, buf, len, tr, err, sizeof(err)) != 0)
		check_fail(__FILE__, line, "load of %s failed: %s", name, err);
}
#define LOAD_OK(name, fmt, s, tr) load_ok_(name, fmt, s, strlen(s), tr, __LINE__)

static void finish_ok_(struct rp_trace *tr, int line)
{
	if (rp_finish(tr, "trace", err, sizeof(err)) != 0)
		check_fail(__FILE__, line, "rp_finish failed: %s", err);
}
#define FINISH_OK(tr) finish_ok_(tr, __LINE__)

/* A load that must fail with exactly `want` and leave the trace as it was. */
static void load_fails_(const char *name, const char *fmt, const char *buf, size_t len,
			const char *want, int line)
{
	struct rp_trace tr = { 0 };
	int rc = rp_load_buf(name, fmt, buf, len, &tr, err, sizeof(err));

	if (rc != -1 || strcmp(err, want) != 0)
		check_fail(__FILE__, line, "load of %s: rc %d\n  got  '%s'\n  want '%s'", name, rc,
			   rc ? err : "", want);
	if (tr.n != 0 || tr.skipped != 0)
		check_fail(__FILE__, line, "a failed load left %zu tasks, %zu skipped", tr.n,
			   tr.skipped);
	/* nothing may be pending either: the trace is still empty */
	if (rp_finish(&tr, "t", err, sizeof(err)) != -1 || strcmp(err, "t: empty trace") != 0)
		check_fail(__FILE__, line, "a failed load left pending state: %s", err);
	rp_free(&tr);
}
#define LOAD_FAILS(name, fmt, s, want) load_fails_(name, fmt, s, strlen(s), want, __LINE__)
#define LOAD_FAILS_N(name, fmt, s, n, want) load_fails_(name, fmt, s, n, want, __LINE__)

static void task_is_(const struct rp_trace *tr, size_t i, double arrival, double service,
		     double base, uint32_t cls, double deadline, int line)
{
	const struct rp_task *t;

	if (i >= tr->n)
		check_fail(__FILE__, line, "task %zu of %zu", i, tr->n);
	t = &tr->t[i];
	if (fabs(t->arrival_s - arrival) > 1e-9 * (arrival > 1 ? arrival : 1) ||
	    fabs(t->service_s - service) > 1e-9 * (service > 1 ? service : 1) || t->base != base ||
	    t->class_id != cls || fabs(t->deadline_s - deadline) > 1e-9 * (deadline > 1 ? deadline : 1))
		check_fail(__FILE__, line,
			   "task %zu: arrival %.9g service %.9g base %g class %u deadline %.9g, "
			   "want %.9g %.9g %g %u %.9g", i, t->arrival_s, t->service_s, t->base,
			   t->class_id, t->deadline_s, arrival, service, base, cls, deadline);
}
#define TASK_IS(tr, i, a, s, b, c, d) task_is_(tr, i, a, s, b, c, d, __LINE__)

static char tmpdir[256];

static const char *tmp_path(const char *leaf)
{
	static char p[4][512];
	static int k;

	if (tmpdir[0] == '\0') {
		const char *t = getenv("TMPDIR");

		snprintf(tmpdir, sizeof(tmpdir), "%s/test_parse.XXXXXX", t && *t ? t : "/tmp");
		CHECK(mkdtemp(tmpdir) != NULL);
	}
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, leaf);
	return p[k];
}

static void write_file(const char *path, const void *buf, size_t n)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL);
	CHECK_EQ(fwrite(buf, 1, n, f), n);
	CHECK_EQ(fclose(f), 0);
}

static void cleanup(void)
{
	static const char *const leaves[] = {
		"a.csv", "big.csv", "p1.csv.gz", "p2.csv.gz", "cut.csv.gz", "plain-part.csv",
		"x_code.csv", "x_conv.csv", "t.rpn", "t.rpn.gz", "derived.csv",
	};

	if (tmpdir[0] == '\0')
		return;
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++)
		unlink(tmp_path(leaves[i]));
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

/* ---- csv --------------------------------------------------------------- */

static void csv_values(void)
{
	struct rp_trace tr = { 0 };

	/* columns in another order, a deadline, CRLF, a BOM, blank lines, out of
	 * arrival order with ties: sorted stably, shifted to the first arrival */
	LOAD_OK("a.csv", "csv",
		"\xef\xbb\xbf" "service_s,deadline_s,base,class,arrival_s\r\n"
		"0.5,0,2,1,10.25\r\n"
		"1e-3,12,-3.5,7,10\r\n"
		"\r\n"
		"2,0,+1,0,10.25\r\n"
		"0,10,.5,4294967295,10.\n"
		"\n", &tr);
	CHECK_EQ(tr.n, 4);
	CHECK_EQ(tr.skipped, 0);
	FINISH_OK(&tr);
	TASK_IS(&tr, 0, 0, 0.001, -3.5, 7, 2);
	/* the deadline at the very first arrival stays a deadline */
	TASK_IS(&tr, 1, 0, 0, 0.5, 4294967295u, DBL_TRUE_MIN);
	CHECK(tr.t[1].deadline_s > 0);
	TASK_IS(&tr, 2, 0.25, 0.5, 2, 1, 0);
	TASK_IS(&tr, 3, 0.25, 2, 1, 0, 0);	/* the tie keeps file order */
	rp_free(&tr);
	CHECK(tr.t == NULL && tr.n == 0);

	/* a header with no rows loads; two files merge, the earliest is 0 */
	LOAD_OK("h.csv", "csv", "arrival_s,class,base,service_s", &tr);
	CHECK_EQ(tr.n, 0);
	LOAD_OK("b.csv", "csv", "arrival_s,class,base,service_s\n5,0,1,1\n", &tr);
	LOAD_OK("c.csv", "csv", "arrival_s,class,base,service_s\n3,1,1,2\n", &tr);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 2);
	TASK_IS(&tr, 0, 0, 2, 1, 1, 0);
	TASK_IS(&tr, 1, 2, 1, 1, 0, 0);
	rp_free(&tr);
}

/* Many rows out of order with ties (the merge sort, not only its
 * insertion-sorted runs): arrival order, ties in file order. */
static void stable_sort(void)
{
	struct rp_trace tr = { 0 };
	size_t cap = 64 + 1000 * 24, n;
	char *buf = malloc(cap);

	CHECK(buf != NULL);
	n = (size_t)snprintf(buf, cap, "arrival_s,class,base,service_s\n");
	for (unsigned i = 0; i < 1000; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%u,%u,1,0\n", 100 + (i * 7919u) % 13, i);
	CHECK_LT(n, cap);
	load_ok_("many.csv", "csv", buf, n, &tr, __LINE__);
	free(buf);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 1000);
	CHECK_DBL(tr.t[0].arrival_s, 0);
	for (size_t i = 1; i < tr.n; i++) {
		CHECK(tr.t[i - 1].arrival_s <= tr.t[i].arrival_s);
		if (tr.t[i - 1].arrival_s == tr.t[i].arrival_s)
			CHECK_LT(tr.t[i - 1].class_id, tr.t[i].class_id);
	}
	CHECK_DBL(tr.t[999].arrival_s, 12);
	rp_free(&tr);
}

static void csv_errors(void)
{
	static const char hdr[] = "arrival_s,class,base,service_s\n";
	static const char hdr5[] = "arrival_s,class,base,service_s,deadline_s\n";
	char buf[256];

	LOAD_FAILS("x.csv", "csv", "",
		   "x.csv:1:1: header: missing (expected arrival_s,class,base,service_s[,deadline_s])");
	LOAD_FAILS("x.csv", "csv", "arrival_s,class,base\n",
		   "x.csv:1:1: header: missing column service_s");
	LOAD_FAILS("x.csv", "csv", "arrival_s,class,base,service_s,foo\n",
		   "x.csv:1:32: header: unknown column 'foo' (expected "
		   "arrival_s,class,base,service_s[,deadline_s])");
	LOAD_FAILS("x.csv", "csv", "arrival_s,class,base,base,service_s\n",
		   "x.csv:1:22: header: duplicate column base");
	LOAD_FAILS("x.csv", "csv", "arrival_s,,class,base,service_s\n",
		   "x.csv:1:11: header: empty column name (expected "
		   "arrival_s,class,base,service_s[,deadline_s])");
	LOAD_FAILS("x.csv", "csv", "arrival_s,class,base,service_s\n0,0,1,1\n\n1,0,1\n",
		   "x.csv:4:1: expected 4 fields, found 3");
	LOAD_FAILS("x.csv", "csv", "arrival_s,class,base,service_s\n0,0,1,1,2\n",
		   "x.csv:2:1: expected 4 fields, found 5");
	LOAD_FAILS("trace.csv", "csv", "arrival_s,class,base,service_s\n0,0,1,1\n1.25,0,1.5,-1\n",
		   "trace.csv:3:12: service_s: negative service time -1");

#define ROW_FAILS(h, row, want)                                               \
	do {                                                                  \
		snprintf(buf, sizeof(buf), "%s%s\n", h, row);                 \
		LOAD_FAILS("x.csv", "csv", buf, want);                        \
	} while (0)
	ROW_FAILS(hdr, "abc,0,1,1", "x.csv:2:1: arrival_s: expected a decimal number, found 'abc'");
	ROW_FAILS(hdr, " 1,0,1,1", "x.csv:2:1: arrival_s: expected a decimal number, found ' 1'");
	ROW_FAILS(hdr, "inf,0,1,1", "x.csv:2:1: arrival_s: expected a decimal number, found 'inf'");
	ROW_FAILS(hdr, "0x10,0,1,1", "x.csv:2:1: arrival_s: expected a decimal number, found '0x10'");
	ROW_FAILS(hdr, "1e,0,1,1", "x.csv:2:1: arrival_s: expected a decimal number, found '1e'");
	ROW_FAILS(hdr, ".,0,1,1", "x.csv:2:1: arrival_s: expected a decimal number, found '.'");
	ROW_FAILS(hdr, "1e999,0,1,1", "x.csv:2:1: arrival_s: out of range 1e999");
	ROW_FAILS(hdr, "2e12,0,1,1", "x.csv:2:1: arrival_s: out of range 2e12 (at most 1e+12 s)");
	ROW_FAILS(hdr, "-0.5,0,1,1", "x.csv:2:1: arrival_s: negative arrival time -0.5");
	ROW_FAILS(hdr, ",0,1,1", "x.csv:2:1: arrival_s: empty field");
	ROW_FAILS(hdr, "1,,1,1", "x.csv:2:3: class: empty field");
	ROW_FAILS(hdr, "1,1.5,1,1", "x.csv:2:3: class: expected an integer in [0, 4294967295], found '1.5'");
	ROW_FAILS(hdr, "1,-1,1,1", "x.csv:2:3: class: expected an integer in [0, 4294967295], found '-1'");
	ROW_FAILS(hdr, "1,4294967296,1,1",
		  "x.csv:2:3: class: expected an integer in [0, 4294967295], found '4294967296'");
	ROW_FAILS(hdr, "1,0,nan,1", "x.csv:2:5: base: expected a decimal number, found 'nan'");
	ROW_FAILS(hdr, "1,0,-1e400,1", "x.csv:2:5: base: out of range -1e400");
	ROW_FAILS(hdr, "1,0,1,1\x01", "x.csv:2:7: service_s: expected a decimal number, found '1?'");
	ROW_FAILS(hdr, "1,0,1,1e13", "x.csv:2:7: service_s: out of range 1e13 (at most 1e+12 s)");
	ROW_FAILS(hdr5, "1,0,1,1,-2", "x.csv:2:9: deadline_s: negative deadline -2");
	ROW_FAILS(hdr5, "3,0,1,1,2.5", "x.csv:2:9: deadline_s: deadline 2.5 before arrival 3");
	ROW_FAILS(hdr, "1,0,1,\"1\"", "x.csv:2:7: service_s: expected a decimal number, found '\"1\"'");
	ROW_FAILS(hdr, "1,0,1,123456789012345678901234567890123456789012345",
		  "x.csv:2:7: service_s: out of range "
		  "1234567890123456789012345678901234567890... (at most 1e+12 s)");
#undef ROW_FAILS
	{
		/* a number too long for the exact path and for strtod's copy */
		size_t n = strlen(hdr) + 4 + 500 + 2;
		char *big = malloc(n + 1);

		CHECK(big != NULL);
		strcpy(big, hdr);
		strcat(big, "1,0,");
		memset(big + strlen(hdr) + 4, '7', 500);
		strcpy(big + strlen(hdr) + 4 + 500, ",1");
		LOAD_FAILS("x.csv", "csv", big, "x.csv:2:5: base: number longer than 400 characters");
		free(big);
	}
	{
		/* a line longer than 64 KiB, from memory and from a file */
		size_t n = strlen(hdr) + 70000;
		char *big = malloc(n + 2);
		struct rp_trace tr = { 0 };
		const char *path = tmp_path("big.csv");
		char want[600];

		CHECK(big != NULL);
		memcpy(big, hdr, strlen(hdr));
		memset(big + strlen(hdr), '1', 70000);
		big[n] = '\n';
		big[n + 1] = '\0';
		LOAD_FAILS("x.csv", "csv", big, "x.csv:2:1: line longer than 65536 bytes");
		write_file(path, big, n + 1);
		CHECK_EQ(rp_load(path, "csv", &tr, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s:2:1: line longer than 65536 bytes", path);
		CHECK_STR(err, want);
		free(big);
		rp_free(&tr);
		cleanup();
	}
}

/* A failed load puts the trace back as it was; messages are truncated
 * safely; NULL or zero-sized error buffers are fine. */
static void rollback_and_messages(void)
{
	struct rp_trace tr = { 0 };
	const char *s;
	char small[8];

	LOAD_OK("a.csv", "csv", "arrival_s,class,base,service_s\n1,0,1,1\n", &tr);
	s = "arrival_s,class,base,service_s\n2,0,1,1\nx,0,1,1\n";
	CHECK_EQ(rp_load_buf("b.csv", "csv", s, strlen(s), &tr, err, sizeof(err)), -1);
	CHECK_STR(err, "b.csv:3:1: arrival_s: expected a decimal number, found 'x'");
	CHECK_EQ(tr.n, 1);
	/* google2011 events of a failed part do not stay pending */
	s = "1,,7,0,,0,u,1,2,,,,\n1,,7,0,,1,u,1,2,,,,\n2,,7,0,,4,u,1,2,,,,\nbad\n";
	CHECK_EQ(rp_load_buf("p", "google2011", s, strlen(s), &tr, err, sizeof(err)), -1);
	CHECK_STR(err, "p:4:1: expected 13 fields, found 1");
	CHECK_EQ(tr.skipped, 0);
	/* a cancel of a failed ripen file is not counted either (see ripen_*) */
	memset(small, 'z', sizeof(small));
	CHECK_EQ(rp_load_buf("long-name.csv", "csv", "", 0, &tr, small, sizeof(small)), -1);
	CHECK_STR(small, "long-na");
	CHECK_EQ(rp_load_buf("x.csv", "csv", "", 0, &tr, NULL, 0), -1);
	small[0] = 'q';
	CHECK_EQ(rp_load_buf("x.csv", "csv", "", 0, &tr, small, 0), -1);
	CHECK_EQ(small[0], 'q');
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 1);
	CHECK_EQ(tr.skipped, 0);
	TASK_IS(&tr, 0, 0, 1, 1, 0, 0);
	rp_free(&tr);
	rp_free(&tr);	/* twice: a zeroed trace */
}

static void formats_and_files(void)
{
	struct rp_trace tr = { 0 };
	char want[600];
	const char *dir;

	LOAD_FAILS("x", "xml", "a", "x: unknown format 'xml' (csv, google2011, azure-llm, ripen)");
	CHECK_EQ(rp_load("/nonexistent/t.csv", "xml", &tr, err, sizeof(err)), -1);
	CHECK_STR(err, "/nonexistent/t.csv: unknown format 'xml' (csv, google2011, azure-llm, ripen)");
	CHECK_EQ(rp_load("/nonexistent/t.csv", "csv", &tr, err, sizeof(err)), -1);
	CHECK_STR(err, "/nonexistent/t.csv: No such file or directory");
	dir = tmp_path("");
	CHECK_EQ(rp_load(dir, "csv", &tr, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: Is a directory", dir);
	CHECK_STR(err, want);
	if (geteuid() != 0) {
		const char *p = tmp_path("a.csv");

		write_file(p, "arrival_s,class,base,service_s\n", 31);
		CHECK_EQ(chmod(p, 0), 0);
		CHECK_EQ(rp_load(p, "csv", &tr, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s: Permission denied", p);
		CHECK_STR(err, want);
	}
	/* a plain file through rp_load */
	write_file(tmp_path("a.csv"), "arrival_s,class,base,service_s\n4,2,3,1\n", 39);
	if (rp_load(tmp_path("a.csv"), "csv", &tr, err, sizeof(err)) != 0)
		check_fail(__FILE__, __LINE__, "%s", err);
	CHECK_EQ(tr.n, 1);
	rp_free(&tr);

	/* empty traces */
	CHECK_EQ(rp_finish(&tr, "nothing", err, sizeof(err)), -1);
	CHECK_STR(err, "nothing: empty trace");
	LOAD_OK("h.csv", "csv", "arrival_s,class,base,service_s\r\n\r\n", &tr);
	LOAD_OK("g", "google2011", "", &tr);
	CHECK_EQ(rp_finish(&tr, "h.csv", err, sizeof(err)), -1);
	CHECK_STR(err, "h.csv: empty trace");
	rp_free(&tr);
	cleanup();
}

/* ---- google2011 ----------------------------------------------------------- */

/* One raw task_events line: time, job, index, event type, class, priority. */
static void ev(char *buf, size_t cap, long long t, long long job, int idx, int type, int cls,
	       int prio)
{
	size_t n = strlen(buf);

	snprintf(buf + n, cap - n, "%lld,,%lld,%d,%s,%d,user=,%d,%d,0.0625,0.01,0.0001,0\n", t, job,
		 idx, type == 0 ? "" : "4711", type, cls, prio);
}

static void google_pairing(void)
{
	struct rp_trace tr = { 0 };
	char a[2048] = "", b[2048] = "";

	/* part one: job 1 task 0 submitted and scheduled, job 2 task 3 whole */
	ev(a, sizeof(a), 1000000, 1, 0, 0, 2, 9);	/* submit at 1 s */
	ev(a, sizeof(a), 1500000, 2, 3, 0, 1, 0);
	ev(a, sizeof(a), 3000000, 1, 0, 1, 2, 9);	/* scheduled at 3 s */
	ev(a, sizeof(a), 3500000, 2, 3, 1, 1, 0);
	ev(a, sizeof(a), 4000000, 2, 3, 8, 1, 5);	/* an update: ignored */
	ev(a, sizeof(a), 4500000, 2, 3, 4, 1, 0);	/* finish after 1 s */
	/* part two: job 1 task 0 finishes */
	ev(b, sizeof(b), 10250000, 1, 0, 4, 2, 9);
	LOAD_OK("part-1", "google2011", a, &tr);
	CHECK_EQ(tr.n, 0);	/* pairing waits for rp_finish */
	LOAD_OK("part-2", "google2011", b, &tr);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 2);
	CHECK_EQ(tr.skipped, 0);
	TASK_IS(&tr, 0, 0, 7.25, 9, 2, 0);
	TASK_IS(&tr, 1, 0.5, 1, 0, 1, 0);
	rp_free(&tr);

	/* the same parts in the other order pair the same way */
	LOAD_OK("part-2", "google2011", b, &tr);
	LOAD_OK("part-1", "google2011", a, &tr);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 2);
	TASK_IS(&tr, 0, 0, 7.25, 9, 2, 0);
	TASK_IS(&tr, 1, 0.5, 1, 0, 1, 0);
	rp_free(&tr);
}

static void google_rules(void)
{
	struct rp_trace tr = { 0 };
	char a[8192] = "";

	/* job 10: evicted after 2 s of running, resubmitted (a new task), then
	 * finished after 4 s */
	ev(a, sizeof(a), 1000000, 10, 0, 0, 0, 2);
	ev(a, sizeof(a), 2000000, 10, 0, 1, 0, 2);
	ev(a, sizeof(a), 4000000, 10, 0, 2, 0, 2);	/* evict: cut at 4 s */
	ev(a, sizeof(a), 5000000, 10, 0, 0, 0, 3);	/* resubmit, a new priority */
	ev(a, sizeof(a), 6000000, 10, 0, 1, 0, 3);
	ev(a, sizeof(a), 10000000, 10, 0, 4, 0, 3);
	/* job 11: killed (5), failed (3), lost (6) while running: cut there */
	ev(a, sizeof(a), 1000000, 11, 0, 0, 1, 4);
	ev(a, sizeof(a), 1000000, 11, 0, 1, 1, 4);
	ev(a, sizeof(a), 1250000, 11, 0, 5, 1, 4);
	ev(a, sizeof(a), 1000000, 11, 1, 0, 1, 4);
	ev(a, sizeof(a), 1000000, 11, 1, 1, 1, 4);
	ev(a, sizeof(a), 1500000, 11, 1, 3, 1, 4);
	ev(a, sizeof(a), 1000000, 11, 2, 0, 1, 4);
	ev(a, sizeof(a), 1000000, 11, 2, 1, 1, 4);
	ev(a, sizeof(a), 1750000, 11, 2, 6, 1, 4);
	/* skipped, one each: killed while pending; no submit (scheduled and
	 * finished); only an end; only an update; submitted, never ended;
	 * scheduled, never ended; an end at 2^63-1 (after the window) */
	ev(a, sizeof(a), 2000000, 12, 0, 0, 0, 1);
	ev(a, sizeof(a), 3000000, 12, 0, 5, 0, 1);
	ev(a, sizeof(a), 2000000, 12, 1, 1, 0, 1);
	ev(a, sizeof(a), 3000000, 12, 1, 4, 0, 1);
	ev(a, sizeof(a), 3000000, 12, 2, 4, 0, 1);
	ev(a, sizeof(a), 3000000, 12, 3, 7, 0, 1);
	ev(a, sizeof(a), 2000000, 12, 4, 0, 0, 1);
	ev(a, sizeof(a), 2000000, 12, 5, 0, 0, 1);
	ev(a, sizeof(a), 2500000, 12, 5, 1, 0, 1);
	ev(a, sizeof(a), 2000000, 12, 6, 0, 0, 1);
	ev(a, sizeof(a), 2500000, 12, 6, 1, 0, 1);
	ev(a, sizeof(a), INT64_MAX, 12, 6, 4, 0, 1);
	/* a submit that follows a submit with no end: the first is skipped */
	ev(a, sizeof(a), 2000000, 13, 0, 0, 3, 11);
	ev(a, sizeof(a), 2100000, 13, 0, 0, 3, 11);
	ev(a, sizeof(a), 2200000, 13, 0, 1, 3, 11);
	ev(a, sizeof(a), 2300000, 13, 0, 4, 3, 11);
	LOAD_OK("part", "google2011", a, &tr);
	FINISH_OK(&tr);
	CHECK_EQ(tr.skipped, 8);
	CHECK_EQ(tr.n, 6);
	/* arrival order; the four tasks submitted at 1 s keep load order */
	TASK_IS(&tr, 0, 0, 2, 2, 0, 0);		/* job 10, first attempt */
	TASK_IS(&tr, 1, 0, 0.25, 4, 1, 0);	/* job 11 task 0, killed */
	TASK_IS(&tr, 2, 0, 0.5, 4, 1, 0);	/* task 1, failed */
	TASK_IS(&tr, 3, 0, 0.75, 4, 1, 0);	/* task 2, lost */
	TASK_IS(&tr, 4, 1.1, 0.1, 11, 3, 0);	/* job 13's second submit */
	TASK_IS(&tr, 5, 4, 4, 3, 0, 0);		/* job 10, resubmitted */
	rp_free(&tr);
}

static void google_errors(void)
{
	LOAD_FAILS("p", "google2011", "1,,2,3,,0,u,1,2,,,\n", "p:1:1: expected 13 fields, found 12");
	LOAD_FAILS("p", "google2011", "1,,2,3,,9,u,1,2,,,,\n",
		   "p:1:9: event type: expected an integer in [0, 8], found '9'");
	LOAD_FAILS("p", "google2011", "1,,2,3,,,u,1,2,,,,\n", "p:1:9: event type: empty field");
	LOAD_FAILS("p", "google2011", "1,,2,3,,0,u,,2,,,,\n",
		   "p:1:13: scheduling class: empty on a submit event");
	LOAD_FAILS("p", "google2011", "1,,2,3,,0,u,1,,,,,\n", "p:1:15: priority: empty on a submit event");
	LOAD_FAILS("p", "google2011", "1,,2,3,,4,u,1,x,,,,\n",
		   "p:1:15: priority: expected an integer in [0, 4294967295], found 'x'");
	LOAD_FAILS("p", "google2011", "1,,2,3,,0,u,1,2,,,,\n9223372036854775808,,2,3,,4,u,1,2,,,,\n",
		   "p:2:1: time: expected an integer in [0, 9223372036854775807], found "
		   "'9223372036854775808'");
	LOAD_FAILS("p", "google2011", "1,,-2,3,,0,u,1,2,,,,\n",
		   "p:1:4: job id: expected an integer in [0, 18446744073709551615], found '-2'");
	LOAD_FAILS("p", "google2011", "1,,2,4294967296,,0,u,1,2,,,,\n",
		   "p:1:6: task index: expected an integer in [0, 4294967295], found '4294967296'");
	LOAD_FAILS("p", "google2011", "time,job\n",
		   "p:1:1: header: unknown column 'time' (expected a raw task_events part (13 "
		   "columns, no header) or the header arrival_us,job_id,task_index,priority,"
		   "sched_class,wait_us,service_us,end_event,cpu_req)");
	LOAD_FAILS("p", "google2011", "arrival_us,priority,sched_class\n",
		   "p:1:1: header: missing column service_us");
	LOAD_FAILS("d.csv", "google2011",
		   "arrival_us,job_id,task_index,priority,sched_class,wait_us,service_us,end_event,cpu_req\n"
		   "5,1,0,2,0,1,-7,4,0\n",
		   "d.csv:2:13: service_us: negative service time -7");
	LOAD_FAILS("d.csv", "google2011", "arrival_us,priority,sched_class,service_us\n1,2,-1,5\n",
		   "d.csv:2:5: sched_class: expected an integer in [0, 4294967295], found '-1'");
}

static void google_derived(void)
{
	struct rp_trace tr = { 0 };

	LOAD_OK("tasks.csv", "google2011",
		"arrival_us,job_id,task_index,priority,sched_class,wait_us,service_us,end_event,cpu_req\n"
		"5621081272,515042969,3,0,2,17177745,22370644,5,0.01562\n"
		"5600000000,5285926325,0,9,0,2907323,23617700,3,0.0625\r\n"
		"5653358573,6252023188,0,1,3,1526724,0,4,0\n", &tr);
	/* another column order, only the required columns */
	LOAD_OK("more.csv", "google2011", "service_us,sched_class,priority,arrival_us\n"
		"1000000,1,11,5600000000\n", &tr);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 4);
	CHECK_EQ(tr.skipped, 0);
	TASK_IS(&tr, 0, 0, 23.6177, 9, 0, 0);
	TASK_IS(&tr, 1, 0, 1, 11, 1, 0);
	TASK_IS(&tr, 2, 21.081272, 22.370644, 0, 2, 0);
	TASK_IS(&tr, 3, 53.358573, 0, 1, 3, 0);
	rp_free(&tr);
}

#ifdef RP_HAVE_ZLIB
static void write_gz(const char *path, const char *s)
{
	gzFile g = gzopen(path, "wb");

	CHECK(g != NULL);
	CHECK_EQ(gzwrite(g, s, (unsigned)strlen(s)), (int)strlen(s));
	CHECK_EQ(gzclose(g), Z_OK);
}
#endif

/* Raw parts as the trace ships them, gzip-compressed, through rp_load. */
static void google_gzip_files(void)
{
#ifdef RP_HAVE_ZLIB
	struct rp_trace tr = { 0 };
	char a[2048] = "", b[2048] = "", want[700];
	const char *p1 = tmp_path("p1.csv.gz"), *p2 = tmp_path("p2.csv.gz");
	const char *cut = tmp_path("cut.csv.gz"), *plain = tmp_path("plain-part.csv");
	FILE *f;
	long size;
	char *bytes;

	ev(a, sizeof(a), 7000000, 5, 1, 0, 1, 6);
	ev(a, sizeof(a), 8000000, 5, 1, 1, 1, 6);
	ev(a, sizeof(a), 8000000, 6, 0, 4, 0, 0);	/* an end only: skipped */
	ev(b, sizeof(b), 9500000, 5, 1, 4, 1, 6);
	ev(b, sizeof(b), 9500000, 6, 1, 0, 0, 0);	/* submitted, no end: skipped */
	write_gz(p1, a);
	write_gz(p2, b);
	write_file(plain, a, strlen(a));
	if (rp_load(p1, "google2011", &tr, err, sizeof(err)) != 0 ||
	    rp_load(p2, "google2011", &tr, err, sizeof(err)) != 0)
		check_fail(__FILE__, __LINE__, "%s", err);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 1);
	CHECK_EQ(tr.skipped, 2);
	TASK_IS(&tr, 0, 0, 1.5, 6, 1, 0);
	rp_free(&tr);
	/* plain and compressed parts mix */
	if (rp_load(plain, "google2011", &tr, err, sizeof(err)) != 0 ||
	    rp_load(p2, "google2011", &tr, err, sizeof(err)) != 0)
		check_fail(__FILE__, __LINE__, "%s", err);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 1);
	rp_free(&tr);

	/* a gzip file cut short */
	f = fopen(p1, "rb");
	CHECK(f != NULL);
	CHECK_EQ(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	CHECK_GT(size, 20);
	rewind(f);
	bytes = malloc((size_t)size);
	CHECK(bytes != NULL);
	CHECK_EQ(fread(bytes, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	write_file(cut, bytes, (size_t)size - 12);
	free(bytes);
	CHECK_EQ(rp_load(cut, "google2011", &tr, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: gzip: unexpected end of file", cut);
	CHECK_STR(err, want);
	CHECK_EQ(rp_finish(&tr, "t", err, sizeof(err)), -1);	/* nothing stayed pending */
	rp_free(&tr);
	cleanup();
#else
	test_skip("built without zlib");
#endif
}

/* ---- azure-llm ------------------------------------------------------------ */

static void azure_values(void)
{
	struct rp_trace tr = { 0 };
	const char *code = tmp_path("x_code.csv"), *conv = tmp_path("x_conv.csv");
	static const char code_s[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
				     "2023-11-16 23:59:59.5,1000,10\n"
				     "2023-11-17 00:00:00.25,0,0\r\n";
	static const char conv_s[] = "GeneratedTokens,TIMESTAMP,ContextTokens\n"
				     "100,2023-11-16 23:59:58.0000001,300\n"
				     "1,2023-11-17T00:00:01,2\n";

	write_file(code, code_s, strlen(code_s));
	write_file(conv, conv_s, strlen(conv_s));
	/* the code file first: the earliest arrival is in the second file */
	if (rp_load(code, "azure-llm", &tr, err, sizeof(err)) != 0 ||
	    rp_load(conv, "azure-llm", &tr, err, sizeof(err)) != 0)
		check_fail(__FILE__, __LINE__, "%s", err);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 4);
	CHECK_EQ(tr.skipped, 0);
	/* service = 0.005 + 0.0002 * context + 0.025 * generated */
	TASK_IS(&tr, 0, 0, 0.005 + 0.06 + 2.5, 1, 0, 0);
	TASK_IS(&tr, 1, 1.4999999, 0.005 + 0.2 + 0.25, 10, 1, 0);
	TASK_IS(&tr, 2, 2.2499999, 0.005, 10, 1, 0);	/* across midnight */
	TASK_IS(&tr, 3, 2.9999999, 0.005 + 0.0004 + 0.025, 1, 0, 0);
	rp_free(&tr);

	/* from memory: the name picks the class; month and leap-day ends */
	LOAD_OK("Azure_CODE.csv", "azure-llm", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
		"2024-02-28 23:00:00,1,1\n2024-03-01 00:00:00.123456789,1,1\n", &tr);
	LOAD_OK("other.csv", "azure-llm", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
		"2024-02-29 12:00:00,0,4\n", &tr);
	FINISH_OK(&tr);
	CHECK_EQ(tr.n, 3);
	TASK_IS(&tr, 0, 0, 0.0302, 10, 1, 0);
	TASK_IS(&tr, 1, 13 * 3600, 0.105, 1, 0, 0);
	TASK_IS(&tr, 2, 25 * 3600 + 0.123456789, 0.0302, 10, 1, 0);
	rp_free(&tr);
	cleanup();
}

static void azure_errors(void)
{
	static const char h[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
	static const char *const bad_ts[] = {
		"2023-13-01 00:00:00", "2023-02-29 00:00:00", "2023-11-16 24:00:00",
		"2023-11-16 18:15:46.", "2023-11-16 18:15:46.1234567890", "2023-11-16 18:15",
		"2023/11/16 18:15:46", "2023-11-16 18:15:46Z", "",
	};
	char buf[256], want[256];

	LOAD_FAILS("a.csv", "azure-llm", "TIMESTAMP,ContextTokens\n",
		   "a.csv:1:1: header: missing column GeneratedTokens");
	LOAD_FAILS("a.csv", "azure-llm", "",
		   "a.csv:1:1: header: missing (expected TIMESTAMP,ContextTokens,GeneratedTokens)");
	LOAD_FAILS("a.csv", "azure-llm", "TIMESTAMP,ContextTokens,GeneratedTokens,x\n",
		   "a.csv:1:41: header: unknown column 'x' (expected "
		   "TIMESTAMP,ContextTokens,GeneratedTokens)");
	for (size_t i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++) {
		snprintf(buf, sizeof(buf), "%s2023-11-16 18:15:46.6805900,1,1\n%s,1,1\n", h, bad_ts[i]);
		snprintf(want, sizeof(want),
			 "a.csv:3:1: TIMESTAMP: expected YYYY-MM-DD HH:MM:SS[.fraction], found '%s'",
			 bad_ts[i]);
		LOAD_FAILS("a.csv", "azure-llm", buf, want);
	}
	snprintf(buf, sizeof(buf), "%s2023-11-16 18:15:46,-4,1\n", h);
	LOAD_FAILS("a.csv", "azure-llm", buf,
		   "a.csv:2:21: ContextTokens: expected an integer in [0, 4294967295], found '-4'");
	snprintf(buf, sizeof(buf), "%s2023-11-16 18:15:46,4,\n", h);
	LOAD_FAILS("a.csv", "azure-llm", buf, "a.csv:2:23: GeneratedTokens: empty field");
}

/* ---- ripen binary traces ---------------------------------------------------- */

/* Little-endian hosts: the structs are the file layout. */
struct bin {
	unsigned char b[4096];
	size_t n;
};

static void put(struct bin *o, const void *p, size_t n)
{
	CHECK_LE(o->n + n, sizeof(o->b));
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void put_header(struct bin *o, uint32_t version, uint32_t hsize, uint32_t rsize)
{
	struct ripen_trace_header h;
	static const unsigned char zeros[64];

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, RIPEN_TRACE_MAGIC, 8);
	h.version = version;
	h.header_size = hsize;
	h.record_size = rsize;
	h.clock = RIPEN_TRACE_CLOCK_MONOTONIC;
	h.start_ns = 1000000000;
	h.workers = 2;
	strcpy(h.policy, "static");
	strcpy(h.pool, "test");
	put(o, &h, sizeof(h));
	if (hsize > sizeof(h)) {
		CHECK_LE(hsize - sizeof(h), sizeof(zeros));
		put(o, zeros, hsize - sizeof(h));
	}
}

static void put_rec(struct bin *o, uint32_t rsize, uint8_t kind, uint32_t cls, uint64_t ready,
		    uint64_t start, uint64_t end, double base)
{
	struct ripen_trace_record r;
	static const unsigned char junk[64] = { 0xff, 0xee, 0xdd };

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.worker = 1;
	r.class_id = cls;
	r.ready_ns = ready;
	r.start_ns = start;
	r.end_ns = end;
	r.base = base;
	r.score = NAN;
	put(o, &r, sizeof(r));
	if (rsize > sizeof(r))
		put(o, junk, rsize - sizeof(r));	/* what a newer writer added */
}

static void put_trailer(struct bin *o, uint64_t records)
{
	struct ripen_trace_trailer t;

	memset(&t, 0, sizeof(t));
	memcpy(t.magic, RIPEN_TRACE_END_MAGIC, 8);
	t.records = records;
	t.stop_ns = 9000000000u;
	put(o, &t, sizeof(t));
}

/* Three runs (in end order, not arrival order) and a cancel. */
static void put_body(struct bin *o, uint32_t rsize)
{
	put_rec(o, rsize, RIPEN_TRACE_RUN, 3, 2000000000u, 2100000000u, 2600000000u, 5.5);
	put_rec(o, rsize, RIPEN_TRACE_CANCEL, 1, 1500000000u, 0, 2700000000u, 1);
	put_rec(o, rsize, RIPEN_TRACE_RUN, 0, 1250000000u, 2000000000u, 2800000000u, -2);
	put_rec(o, rsize, RIPEN_TRACE_RUN, 7, 2000000000u, 2000000000u, 2000000000u, 0);
}

static void check_body(struct rp_trace *tr)
{
	FINISH_OK(tr);
	CHECK_EQ(tr->n, 3);
	CHECK_EQ(tr->skipped, 1);
	TASK_IS(tr, 0, 0, 0.8, -2, 0, 0);
	TASK_IS(tr, 1, 0.75, 0.5, 5.5, 3, 0);
	TASK_IS(tr, 2, 0.75, 0, 0, 7, 0);	/* the tie keeps file order */
	rp_free(tr);
}

static void ripen_values(void)
{
	struct rp_trace tr = { 0 };
	struct bin o = { .n = 0 };

	/* with a trailer */
	put_header(&o, 1, sizeof(struct ripen_trace_header), sizeof(struct ripen_trace_record));
	put_body(&o, sizeof(struct ripen_trace_record));
	put_trailer(&o, 4);
	load_ok_("t.rpn", "ripen", (const char *)o.b, o.n, &tr, __LINE__);
	check_body(&tr);
	/* without one (the writer died on a record boundary) */
	load_ok_("t.rpn", "ripen", (const char *)o.b, o.n - sizeof(struct ripen_trace_trailer), &tr,
		 __LINE__);
	check_body(&tr);
	/* a newer writer's longer header and records */
	o.n = 0;
	put_header(&o, 1, sizeof(struct ripen_trace_header) + 24, 60);
	put_body(&o, 60);
	put_trailer(&o, 4);
	load_ok_("t.rpn", "ripen", (const char *)o.b, o.n, &tr, __LINE__);
	check_body(&tr);
	/* the adaptive controller's records are skipped like cancels */
	{
		size_t keep = o.n - sizeof(struct ripen_trace_trailer);

		o.n = keep;
		put_rec(&o, 60, RIPEN_TRACE_ADAPT, 1, 2500000000u, 0, 0, 0.5);
		put_trailer(&o, 5);
		load_ok_("t.rpn", "ripen", (const char *)o.b, o.n, &tr, __LINE__);
		FINISH_OK(&tr);
		CHECK_EQ(tr.n, 3);
		CHECK_EQ(tr.skipped, 2);
		rp_free(&tr);
		o.n = keep;
		put_trailer(&o, 4);
	}
	/* from a file, and gzip-compressed */
	write_file(tmp_path("t.rpn"), o.b, o.n);
	if (rp_load(tmp_path("t.rpn"), "ripen", &tr, err, sizeof(err)) != 0)
		check_fail(__FILE__, __LINE__, "%s", err);
	check_body(&tr);
#ifdef RP_HAVE_ZLIB
	{
		gzFile g = gzopen(tmp_path("t.rpn.gz"), "wb");

		CHECK(g != NULL);
		CHECK_EQ(gzwrite(g, o.b, (unsigned)o.n), (int)o.n);
		CHECK_EQ(gzclose(g), Z_OK);
		if (rp_load(tmp_path("t.rpn.gz"), "ripen", &tr, err, sizeof(err)) != 0)
			check_fail(__FILE__, __LINE__, "%s", err);
		check_body(&tr);
	}
#endif
	/* only a header: loads, empty */
	o.n = 0;
	put_header(&o, 1, sizeof(struct ripen_trace_header), sizeof(struct ripen_trace_record));
	load_ok_("t.rpn", "ripen", (const char *)o.b, o.n, &tr, __LINE__);
	CHECK_EQ(rp_finish(&tr, "t.rpn", err, sizeof(err)), -1);
	CHECK_STR(err, "t.rpn: empty trace");
	rp_free(&tr);
	cleanup();
}

static void ripen_errors(void)
{
	const size_t hs = sizeof(struct ripen_trace_header), rs = sizeof(struct ripen_trace_record);
	struct bin o = { .n = 0 };
	char want[128];

	LOAD_FAILS_N("t.rpn", "ripen", "", 0, "t.rpn: not a ripen trace (bad magic)");
	LOAD_FAILS_N("t.rpn", "ripen", "RIPENTR", 7, "t.rpn: not a ripen trace (bad magic)");
	LOAD_FAILS("t.rpn", "ripen", "arrival_s,class,base,service_s\n",
		   "t.rpn: not a ripen trace (bad magic)");
	put_header(&o, 1, (uint32_t)hs, (uint32_t)rs);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, 100,
		     "t.rpn: header truncated (100 of 184 bytes)");
	o.n = 0;
	put_header(&o, 2, (uint32_t)hs, (uint32_t)rs);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n,
		     "t.rpn: unsupported version 2 (this reader knows 1)");
	o.n = 0;
	put_header(&o, 1, 100, (uint32_t)rs);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n,
		     "t.rpn: bad header_size 100 (expected 184 to 65536)");
	o.n = 0;
	put_header(&o, 1, (uint32_t)hs, 40);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n,
		     "t.rpn: bad record_size 40 (expected 48 to 65536)");
	o.n = 0;
	put_header(&o, 1, (uint32_t)hs + 16, (uint32_t)rs);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, hs + 8,
		     "t.rpn: header truncated (192 of 200 bytes)");

	/* a record cut short: the third of four */
	o.n = 0;
	put_header(&o, 1, (uint32_t)hs, (uint32_t)rs);
	put_body(&o, (uint32_t)rs);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, hs + 2 * rs + 20,
		     "t.rpn: record 3: truncated (20 of 48 bytes)");
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, hs + 3 * rs + 1,
		     "t.rpn: record 4: truncated (1 of 48 bytes)");
	/* a trailer cut short, counting wrong, followed by more */
	put_trailer(&o, 4);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n - 1,
		     "t.rpn: trailer truncated (31 of 32 bytes)");
	put(&o, "x", 1);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n, "t.rpn: data after the trailer");
	o.n = 0;
	put_header(&o, 1, (uint32_t)hs, (uint32_t)rs);
	put_body(&o, (uint32_t)rs);
	put_trailer(&o, 5);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n,
		     "t.rpn: trailer counts 5 records, the file holds 4");
	/* bad records */
	o.n = 0;
	put_header(&o, 1, (uint32_t)hs, (uint32_t)rs);
	put_rec(&o, (uint32_t)rs, RIPEN_TRACE_RUN, 0, 1, 2, 3, 1);
	put_rec(&o, (uint32_t)rs, RIPEN_TRACE_RUN, 0, 1, 5, 4, 1);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n, "t.rpn: record 2: end before start");
	o.n -= rs;
	put_rec(&o, (uint32_t)rs, RIPEN_TRACE_RUN, 0, 1, 2, 3, INFINITY);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n, "t.rpn: record 2: base not finite");
	o.n -= rs;
	put_rec(&o, (uint32_t)rs, 4, 0, 1, 2, 3, 1);
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n, "t.rpn: record 2: unknown kind 4");
	/* a cancel in a file that then fails is not counted (load_fails checks) */
	o.n -= rs;
	put_rec(&o, (uint32_t)rs, RIPEN_TRACE_CANCEL, 0, 1, 0, 3, 1);
	put_rec(&o, (uint32_t)rs, 0, 0, 1, 0, 3, 1);
	snprintf(want, sizeof(want), "t.rpn: record 3: unknown kind 0");
	LOAD_FAILS_N("t.rpn", "ripen", (const char *)o.b, o.n, want);
}

static void cleanup_all(void)
{
	cleanup();
}

TEST_MAIN(T(csv_values), T(stable_sort), T(csv_errors), T(rollback_and_messages), T(formats_and_files),
	  T(google_pairing), T(google_rules), T(google_errors), T(google_derived),
	  T(google_gzip_files), T(azure_values), T(azure_errors), T(ripen_values),
	  T(ripen_errors), T(cleanup_all))
