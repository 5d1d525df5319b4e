/*
 * A minimal test harness: TAP output, assertions that print both operands
 * with file:line and abort (so a failure inside a worker thread still fails
 * the test), and a table of named cases. `./test NAME` runs one case.
 */
#ifndef RIPEN_CHECK_H
#define RIPEN_CHECK_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline void check_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((__noreturn__, format(printf, 3, 4)));
static inline void check_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	printf("Bail out! %s:%d\n", file, line);
	fflush(stdout);
	fflush(stderr);
	abort();
}

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c))                                                     \
			check_fail(__FILE__, __LINE__, "%s", #c);             \
	} while (0)

#define CHECK_OP_(a, op, b)                                                   \
	do {                                                                  \
		long long a_ = (long long)(a), b_ = (long long)(b);           \
		if (!(a_ op b_))                                              \
			check_fail(__FILE__, __LINE__, "%s %s %s (%lld vs %lld)", \
				   #a, #op, #b, a_, b_);                      \
	} while (0)
#define CHECK_EQ(a, b) CHECK_OP_(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP_(a, !=, b)
#define CHECK_LE(a, b) CHECK_OP_(a, <=, b)
#define CHECK_LT(a, b) CHECK_OP_(a, <, b)
#define CHECK_GE(a, b) CHECK_OP_(a, >=, b)
#define CHECK_GT(a, b) CHECK_OP_(a, >, b)

#define CHECK_OK(expr)                                                        \
	do {                                                                  \
		int rc_ = (expr);                                             \
		if (rc_ != 0)                                                 \
			check_fail(__FILE__, __LINE__, "%s returned %d (%s)", \
				   #expr, rc_, ripen_strerror(rc_));          \
	} while (0)

struct test_case {
	const char *name;
	void (*fn)(void);
};

/* A case that cannot run in this build calls test_skip(why) and returns:
 * TAP reports it as skipped, not passed. */
static const char *test_skipped_;

static inline void test_skip(const char *why)
{
	test_skipped_ = why;
}

static inline int run_tests(const struct test_case *cases, size_t n, int argc, char **argv)
{
	size_t planned = 0, k = 0;

	for (size_t i = 0; i < n; i++)
		if (argc < 2 || strcmp(argv[1], cases[i].name) == 0)
			planned++;
	printf("1..%zu\n", planned);
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		if (argc >= 2 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		test_skipped_ = NULL;
		cases[i].fn();
		if (test_skipped_ != NULL)
			printf("ok %zu - %s # SKIP %s\n", ++k, cases[i].name, test_skipped_);
		else
			printf("ok %zu - %s\n", ++k, cases[i].name);
		fflush(stdout);
	}
	return 0;
}

#define TEST_MAIN(...)                                                        \
	int main(int argc, char **argv)                                       \
	{                                                                     \
		static const struct test_case cases_[] = { __VA_ARGS__ };    \
		return run_tests(cases_, sizeof(cases_) / sizeof(cases_[0]),  \
				 argc, argv);                                 \
	}
#define T(f) { #f, f }

static inline uint64_t test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void test_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Scale for slow (sanitizer) builds: RIPEN_TEST_SCALE=0.1 shrinks loops. */
static inline double test_scale(void)
{
	const char *s = getenv("RIPEN_TEST_SCALE");
	double v = s ? atof(s) : 1.0;

	return v > 0 ? v : 1.0;
}

static inline uint64_t test_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif
