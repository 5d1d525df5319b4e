/*
 * Command-line helpers (spec.h) of ripen-replay and examples/httpd: the
 * die helper and whole-string numbers. An object of its own, so that a
 * tool that does not link ripen (examples/httpd/loadgen) can use them.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

void rp_vdie(const char *prog, int code, const char *tail, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputs(tail, stderr);
	exit(code);
}

/* A whole string as an unsigned integer (decimal, no sign). */
bool rp_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != 0 || errno == ERANGE || v > max)
		return false;
	*out = v;
	return true;
}

/* A whole string as a finite double. */
bool rp_parse_num(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == 0 || strchr(" \t\n", *s) != NULL)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (*end != 0 || end == s || !isfinite(v) || errno == ERANGE)
		return false;
	*out = v;
	return true;
}
