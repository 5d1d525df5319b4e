/*
 * Shared by the stress programs: option parsing, the ledger, canaries and
 * minimum event counts. A stress run that did not exercise its races fails.
 */
#ifndef RIPEN_STRESS_COMMON_H
#define RIPEN_STRESS_COMMON_H

#include <getopt.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/check.h"
#include "ripen.h"

struct stress_opts {
	unsigned workers, producers;
	double seconds;
	uint64_t seed;
	unsigned size;
};

static inline void stress_parse(int argc, char **argv, struct stress_opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "w:p:s:S:n:h")) != -1) {
		switch (c) {
		case 'w': o->workers = (unsigned)atoi(optarg); break;
		case 'p': o->producers = (unsigned)atoi(optarg); break;
		case 's': o->seconds = atof(optarg); break;
		case 'S': o->seed = strtoull(optarg, NULL, 0); break;
		case 'n': o->size = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-w workers] [-p producers] [-s seconds] "
					"[-S seed] [-n size]\n", argv[0]);
			exit(c == 'h' ? 0 : 2);
		}
	}
	if (o->seed == 0)
		o->seed = 1;
}

/* The user-side canary of one task: LIVE until it ran, then RAN. */
#define REC_LIVE 0x4c495645u
#define REC_RAN 0x52414e21u

struct rec {
	_Atomic uint32_t magic;
	atomic_uint runs;
	atomic_uint cancelled;	/* ripen_task_cancel returned 0 */
	uint32_t id;
	/* completion delivery (stress_ledger): done callbacks, queue pops */
	atomic_uint done_calls, done_state, cq_pops;
	atomic_uint refused;	/* its submit got -ESHUTDOWN */
};

static inline void rec_run(struct rec *r)
{
	uint32_t m = atomic_load(&r->magic);

	if (m != REC_LIVE)
		check_fail(__FILE__, __LINE__, "task %u: canary %#x before its run (run twice, "
			   "or after free)", r->id, m);
	if (atomic_fetch_add(&r->runs, 1) != 0)
		check_fail(__FILE__, __LINE__, "task %u ran twice", r->id);
	if (atomic_load(&r->cancelled))
		check_fail(__FILE__, __LINE__, "task %u ran after a successful cancel", r->id);
	atomic_store(&r->magic, REC_RAN);
}

/* A minimum event count: fail a run that did not exercise what it claims. */
#define REQUIRE_AT_LEAST(what, value, min)                                        \
	do {                                                                      \
		unsigned long long v_ = (unsigned long long)(value), m_ = (min);   \
		printf("  %-28s %llu (at least %llu)\n", what, v_, m_);            \
		if (v_ < m_)                                                       \
			check_fail(__FILE__, __LINE__, "not exercised: %s = %llu < %llu", \
				   what, v_, m_);                                   \
	} while (0)

#endif
