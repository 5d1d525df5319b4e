/*
 * Command-line helpers shared by ripen-replay and examples/httpd: the die
 * helper, whole-string numbers, and policy specs, the language of both
 * tools' --policy:
 *
 *   fifo | static | edf | linear:TAU | additive:TAU | weights:W0,W1,...:SPEC
 *   | scaled:W0,W1,...:SPEC
 *
 * TAU in seconds (> 0, at least 1 ns); weights:... wraps SPEC in
 * ripen_policy_class_weights with weight Wk for class k (nested at most
 * RP_SPEC_MAX_NESTING deep); scaled:... in ripen_policy_class_scaled (SPEC
 * static, linear:TAU or additive:TAU).
 */
#ifndef RIPEN_REPLAY_SPEC_H
#define RIPEN_REPLAY_SPEC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "ripen.h"

#define RP_SPEC_MAX_NESTING 16

/* "PROG: <message><tail>" on stderr, then exit(code): the tools' die
 * helpers (ripen-replay, examples/httpd's server and load generator). */
void rp_vdie(const char *prog, int code, const char *tail, const char *fmt, va_list ap)
	__attribute__((noreturn, format(printf, 4, 0)));

/* A whole string as an unsigned decimal integer at most max (no sign). */
bool rp_parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* A whole string as a finite double: no leading blank, nothing after it. */
bool rp_parse_num(const char *s, double *out);

/* "adaptive" and "adaptive:linear" (RIPEN_AGING_LINEAR) and
 * "adaptive:additive" (RIPEN_AGING_ADDITIVE): the controller's specs, not
 * policies (rp_policy_parse refuses them); *aging (NULL: not wanted) gets
 * the form. */
bool rp_adaptive_form(const char *spec, unsigned *aging);

/* A new policy for SPEC (the caller owns it, e.g. hands it to a pool);
 * NULL with a one-line reason in why when SPEC is bad or memory ran out. */
struct ripen_policy *rp_policy_parse(const char *spec, char *why, size_t len);

#endif
