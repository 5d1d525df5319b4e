/*
 * Policy specs (spec.h): the one parser behind ripen-replay's and
 * examples/httpd's --policy, built on the library's public constructors.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

/*
 * Build a policy from SPEC with the library's public constructors. NULL
 * with a reason in why when the spec is bad (or without memory).
 */
static struct ripen_policy *build(const char *spec, int depth, char *why, size_t len)
{
	double tau;

	if (depth > RP_SPEC_MAX_NESTING) {
		snprintf(why, len, "nested deeper than %d weights", RP_SPEC_MAX_NESTING);
		return NULL;
	}
	if (strcmp(spec, "fifo") == 0)
		return ripen_policy_fifo();
	if (strcmp(spec, "static") == 0)
		return ripen_policy_static();
	if (strcmp(spec, "edf") == 0)
		return ripen_policy_edf();
	if (strncmp(spec, "linear:", 7) == 0 || strncmp(spec, "additive:", 9) == 0) {
		bool lin = spec[0] == 'l';
		const char *arg = spec + (lin ? 7 : 9);
		struct ripen_policy *p;

		if (!rp_parse_num(arg, &tau) || tau <= 0) {
			snprintf(why, len, "TAU '%s' is not a positive number of seconds", arg);
			return NULL;
		}
		if (tau * 1e9 < 1.0) {
			snprintf(why, len, "TAU '%s' is below one nanosecond", arg);
			return NULL;
		}
		p = lin ? ripen_policy_linear_aging(tau) : ripen_policy_additive_aging(tau);
		if (p == NULL)
			snprintf(why, len, "out of memory");
		return p;
	}
	bool scaled = strncmp(spec, "scaled:", 7) == 0;

	if (scaled || strncmp(spec, "weights:", 8) == 0) {
		const char *list = spec + (scaled ? 7 : 8), *colon = strchr(list, ':');
		size_t n = 1, k = 0;
		double *w;
		struct ripen_policy *inner, *p;
		char num[64];

		if (colon == NULL) {
			snprintf(why, len, "%s:W0,W1,...:INNER needs an inner policy",
				 scaled ? "scaled" : "weights");
			return NULL;
		}
		for (const char *c = list; c < colon; c++)
			n += *c == ',';
		w = calloc(n, sizeof(*w));
		if (w == NULL) {
			snprintf(why, len, "out of memory");
			return NULL;
		}
		for (const char *c = list; k < n; k++) {
			const char *e = c;

			while (e < colon && *e != ',')
				e++;
			if ((size_t)(e - c) >= sizeof(num)) {
				snprintf(why, len, "weight %zu is too long", k);
				free(w);
				return NULL;
			}
			memcpy(num, c, (size_t)(e - c));
			num[e - c] = 0;
			if (!rp_parse_num(num, &w[k])) {
				snprintf(why, len, "weight %zu '%s' is not a finite number", k, num);
				free(w);
				return NULL;
			}
			c = e + 1;
		}
		inner = build(colon + 1, depth + 1, why, len);
		if (inner == NULL) {
			free(w);
			return NULL;
		}
		if (scaled && strncmp(colon + 1, "static", 6) != 0 &&
		    strncmp(colon + 1, "linear:", 7) != 0 && strncmp(colon + 1, "additive:", 9) != 0) {
			snprintf(why, len, "scaled: scales a score: its INNER is static, linear:TAU "
				 "or additive:TAU");
			ripen_policy_free(inner);
			free(w);
			return NULL;
		}
		p = scaled ? ripen_policy_class_scaled(w, n, inner)
			   : ripen_policy_class_weights(w, n, inner); /* takes inner */
		free(w);
		if (p == NULL)
			snprintf(why, len, "out of memory");
		return p;
	}
	snprintf(why, len, "unknown policy (fifo, static, edf, linear:TAU, additive:TAU, "
		 "weights:W0,W1,...:SPEC, scaled:W0,W1,...:SPEC)");
	return NULL;
}

struct ripen_policy *rp_policy_parse(const char *spec, char *why, size_t len)
{
	return build(spec, 0, why, len);
}

bool rp_adaptive_form(const char *spec, unsigned *aging)
{
	unsigned a;

	if (strcmp(spec, "adaptive") == 0 || strcmp(spec, "adaptive:linear") == 0)
		a = RIPEN_AGING_LINEAR;
	else if (strcmp(spec, "adaptive:additive") == 0)
		a = RIPEN_AGING_ADDITIVE;
	else
		return false;
	if (aging != NULL)
		*aging = a;
	return true;
}
