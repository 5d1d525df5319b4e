/*
 * libFuzzer target over ripen-replay's trace loaders (tools/replay/parse.c)
 * through rp_load_buf, for the four formats.
 *
 * Byte 0 picks:
 *  - bits 0-1: the format (csv, google2011, azure-llm, ripen);
 *  - bits 2-3: the name ("fuzz.csv", "x_code.csv", "x_conv.csv", "part"):
 *    azure-llm's class comes from it;
 *  - bit 4: a tiny error buffer (byte 1 & 15 bytes, 0 included);
 *  - bit 5: the input is loaded as two parts, cut at byte 1's share of it
 *    (google2011 pairs events across parts);
 *  - bit 6: a valid header goes before each part (the ripen binary header
 *    with record_size 48 or byte 1's choice; the csv or azure-llm header
 *    line), so the fuzzer reaches the records without guessing one.
 * Every part is copied to a buffer of its exact size, so a read past it is
 * caught. Checks: a failing load returns -1, leaves the trace as it was and
 * writes a NUL-terminated message starting with the name; after
 * rp_finish succeeds, arrivals are sorted from 0, every value is finite,
 * service and deadline times are >= 0 and deadlines are not before
 * arrivals.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "ripen-trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                            \
	do {                                                                  \
		if (!(c))                                                     \
			__builtin_trap();                                     \
	} while (0)

static const char *const formats[4] = { "csv", "google2011", "azure-llm", "ripen" };
static const char *const names[4] = { "fuzz.csv", "x_code.csv", "x_conv.csv", "part" };

static size_t prefix(int fmt, uint8_t b1, unsigned char *out)
{
	static const char csv[] = "arrival_s,class,base,service_s,deadline_s\n";
	static const char azure[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
	struct ripen_trace_header h;

	switch (fmt) {
	case 0:
		memcpy(out, csv, sizeof(csv) - 1);
		return sizeof(csv) - 1;
	case 2:
		memcpy(out, azure, sizeof(azure) - 1);
		return sizeof(azure) - 1;
	case 3:
		memset(&h, 0, sizeof(h));
		memcpy(h.magic, RIPEN_TRACE_MAGIC, 8);
		h.version = RIPEN_TRACE_VERSION;
		h.header_size = sizeof(h);
		h.record_size = b1 & 0x80 ? 48u + (b1 & 15u) : 48u;
		h.clock = RIPEN_TRACE_CLOCK_MONOTONIC;
		memcpy(out, &h, sizeof(h));
		return sizeof(h);
	default:
		return 0;
	}
}

static void load_part(int fmt, const char *name, const uint8_t *p, size_t n, bool with_header,
		      uint8_t b1, struct rp_trace *tr, size_t errlen)
{
	unsigned char head[sizeof(struct ripen_trace_header)];
	size_t hn = with_header ? prefix(fmt, b1, head) : 0;
	char *buf = malloc(hn + n + 1);	/* +1: malloc(0) may return NULL */
	char err[300];
	size_t n0 = tr->n, skipped0 = tr->skipped;
	int rc;

	if (buf == NULL)
		return;
	memcpy(buf, head, hn);
	if (n > 0)
		memcpy(buf + hn, p, n);
	memset(err, 0x5a, sizeof(err));
	rc = rp_load_buf(name, formats[fmt], buf, hn + n, tr, err, errlen);
	REQUIRE(rc == 0 || rc == -1);
	if (rc != 0) {
		REQUIRE(tr->n == n0 && tr->skipped == skipped0);
		if (errlen > 0) {
			size_t len = strnlen(err, errlen);

			REQUIRE(len < errlen);
			REQUIRE((unsigned char)err[errlen] == 0x5a);
			if (errlen > 64)
				REQUIRE(strncmp(err, name, strlen(name)) == 0 && len > strlen(name));
		} else {
			REQUIRE((unsigned char)err[0] == 0x5a);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_trace tr = { 0 };
	char err[300];
	uint8_t b0, b1;
	int fmt;
	const char *name;
	size_t errlen, cut;
	bool two, with_header;

	if (size < 2)
		return 0;
	b0 = data[0];
	b1 = data[1];
	data += 2;
	size -= 2;
	fmt = b0 & 3;
	name = names[(b0 >> 2) & 3];
	errlen = b0 & 0x10 ? (size_t)(b1 & 15) : 256;
	two = (b0 & 0x20) != 0;
	with_header = (b0 & 0x40) != 0;
	cut = two ? size * b1 / 255 : size;

	load_part(fmt, name, data, cut, with_header, b1, &tr, errlen);
	if (two)
		load_part(fmt, name, data + cut, size - cut, with_header, b1, &tr, errlen);
	if (rp_finish(&tr, name, err, sizeof(err)) == 0) {
		REQUIRE(tr.n > 0 && tr.t[0].arrival_s == 0);
		for (size_t i = 0; i < tr.n; i++) {
			const struct rp_task *t = &tr.t[i];

			REQUIRE(isfinite(t->arrival_s) && isfinite(t->service_s) &&
				isfinite(t->base) && isfinite(t->deadline_s));
			REQUIRE(t->arrival_s >= 0 && t->service_s >= 0 && t->deadline_s >= 0);
			REQUIRE(t->deadline_s == 0 || t->deadline_s >= t->arrival_s);
			if (i > 0)
				REQUIRE(tr.t[i - 1].arrival_s <= t->arrival_s);
		}
	} else {
		REQUIRE(tr.n == 0);
		REQUIRE(strcmp(err + strlen(name), ": empty trace") == 0);
	}
	rp_free(&tr);
	REQUIRE(tr.t == NULL && tr.loader == NULL);
	return 0;
}
