/*
 * RCU for policy and context swaps (rcu.c).
 */
#ifndef RIPEN_RCU_INTERNAL_H
#define RIPEN_RCU_INTERNAL_H


void ripen__rcu_read_lock(void);
void ripen__rcu_read_unlock(void);
void ripen__rcu_synchronize(void);
void ripen__rcu_register(void);
void ripen__rcu_unregister(void);

#endif
