/*
 * ripen-replay's internal interface: a trace in memory (parse.c fills it),
 * the simulator and the live run (sim.c, live.c) consume it, main.c drives.
 */
#ifndef RIPEN_REPLAY_H
#define RIPEN_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* One task of a trace. Times in seconds from the trace's first arrival
 * (the loader shifts them so the first is 0; --time-scale is applied by
 * main.c, not here). */
struct rp_task {
	double arrival_s;
	double service_s;	/* >= 0 */
	double base;		/* the task's base score (priority) */
	double deadline_s;	/* absolute, same clock as arrival_s; 0 = none */
	uint32_t class_id;
};

struct rp_trace {
	struct rp_task *t;
	size_t n, cap;
	size_t skipped;		/* rows left out by a documented rule (e.g. google2011 tasks
				 * without an end, cancel records of ripen traces) */
	void *loader;		/* parse.c's state between rp_load calls (google2011 events
				 * awaiting their pairing, the azure-llm reference day);
				 * NULL in a zeroed trace; rp_finish and rp_free release it */
};

/*
 * Append the tasks of `path`, read as `format` ("ripen", "csv",
 * "google2011", "azure-llm"), to tr; several calls merge traces. 0 on
 * success; on error -1 with a message "PATH:LINE:COL: what" in err (LINE
 * and COL 1-based; for binary formats, "PATH: record N: what"). Never
 * crashes on any input. After the last file, rp_finish() sorts by arrival
 * (stable: ties keep file order), shifts the first arrival to 0 and fails
 * ("PATH: empty trace") when there are no tasks.
 */
int rp_load(const char *path, const char *format, struct rp_trace *tr, char *err, size_t errlen);
/* The same from memory (for the fuzzer and tests); `name` is used in messages. */
int rp_load_buf(const char *name, const char *format, const char *buf, size_t len,
		struct rp_trace *tr, char *err, size_t errlen);
int rp_finish(struct rp_trace *tr, const char *name, char *err, size_t errlen);
void rp_free(struct rp_trace *tr);

#endif
