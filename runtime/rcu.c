/*
 * RCU for the pool's policy and context pointers (liburcu's memb flavour).
 *
 * Policy and context pointers are read in read-side sections (worker
 * steps, the rebalancer) of liburcu's memb flavour; swaps publish with a
 * release exchange and free after synchronize_rcu. For ThreadSanitizer,
 * which cannot see liburcu 0.13's atomics, the read side releases a token
 * before unlocking and the writer acquires it after the grace period
 * (the token pattern of the project's reliability notes,
 * ../shared/RELIABILITY.md, outside this repository).
 * The snapshot readers take is ripen__pool_snapshot (pool-internal.h).
 * Any thread that is registered (workers and the rebalancer register
 * themselves; set_policy and set_context only synchronize).
 */
#include <urcu/urcu-memb.h>

#include "common-internal.h"
#include "pool-internal.h"
#include "rcu-internal.h"

static char rcu_token; /* TSan's view of the grace period (see above) */

void ripen__rcu_read_lock(void)
{
	urcu_memb_read_lock();
}

void ripen__rcu_read_unlock(void)
{
	RIPEN_TSAN_RELEASE(&rcu_token);
	urcu_memb_read_unlock();
}

void ripen__rcu_synchronize(void)
{
	urcu_memb_synchronize_rcu();
	RIPEN_TSAN_ACQUIRE(&rcu_token);
}

void ripen__rcu_register(void)
{
	urcu_memb_register_thread();
}

void ripen__rcu_unregister(void)
{
	urcu_memb_unregister_thread();
}
