/*
 * Completion delivery for event loops: a task's done callback, and
 * completion queues (ripen_cq) whose readiness is an eventfd.
 *
 * A queue is a wfcqueue of finished tasks (their extension's cq_node: the
 * task's own `node` may still be linked in an inbox by a re-prioritisation
 * whose entry went stale) and a flag, `signalled`, that says the eventfd
 * has been written since the queue was last seen empty:
 *
 *   pusher (the finishing thread)          popper (the loop thread)
 *   P1 enqueue                             Q1 dequeue; got one: return it
 *   P2 signalled: 0 -> 1 ?  [seq_cst xchg]  Q2 drain the eventfd's counter
 *      yes: write(eventfd, 1)              Q3 signalled = 0           [seq_cst]
 *                                          Q4 dequeue again; got one: return it
 *                                             else -EAGAIN
 *
 * One write covers every push until the popper next finds the queue empty.
 * No completion is left unsignalled: a push whose exchange saw 1 came
 * before Q3 in the seq_cst order, so its enqueue (P1, before P2) is found
 * by Q4; a push whose exchange comes after Q3 sees 0 and writes. Q2 comes
 * before Q3, so it never swallows a write made for a push Q4 misses. A
 * spurious readiness (Q4 found the node a later write was made for) costs
 * the loop one empty pop.
 *
 * The queue holds a reference (and a hold on the pool's shell, as a
 * handle does: ripen_task_release drops both); the popper owns it.
 * Ordering: the task ran, or was cancelled, before the finishing thread's
 * P1; wfcqueue's enqueue is a full barrier and the dequeue follows the
 * link with a dependent load, so whoever pops the handle sees everything
 * the task and its done callback wrote (TSan is told with the inbox's
 * annotations).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <urcu/wfcqueue.h>

#include "common-internal.h"
#include "pool-internal.h"
#include "task-internal.h"

struct ripen_cq {
	struct cds_wfcq_head head;	/* its mutex serialises poppers */
	struct cds_wfcq_tail tail;
	alignas(RIPEN_CACHELINE) _Atomic uint32_t signalled;
	int efd;
};

int ripen_cq_create(struct ripen_cq **out)
{
	struct ripen_cq *cq;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if ((cq = aligned_alloc(RIPEN_CACHELINE, sizeof(*cq))) == NULL)
		return -ENOMEM;
	cq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cq->efd < 0) {
		int rc = -errno;

		free(cq);
		return rc;
	}
	cds_wfcq_init(&cq->head, &cq->tail);
	atomic_init(&cq->signalled, 0);
	*out = cq;
	return 0;
}

int ripen_cq_fd(const struct ripen_cq *cq)
{
	return cq != NULL ? cq->efd : -EINVAL;
}

static struct ripen_task *cq_take(struct ripen_cq *cq)
{
	struct cds_wfcq_node *n = cds_wfcq_dequeue_blocking(&cq->head, &cq->tail);
	struct ripen__ext *x;
	struct ripen_task *t;

	if (n == NULL)
		return NULL;
	x = (struct ripen__ext *)(void *)((char *)n - offsetof(struct ripen__ext, c.cq_node));
	t = (struct ripen_task *)(void *)x - 1; /* the extension follows its task */
	RIPEN_TSAN_ACQUIRE(t);
	ripen__task_check(t);
	return t;
}

int ripen_cq_pop(struct ripen_cq *cq, struct ripen_task **out)
{
	struct ripen_task *t;
	uint64_t v;

	if (cq == NULL || out == NULL)
		return -EINVAL;
	*out = NULL;
	if ((t = cq_take(cq)) != NULL) { /* Q1 */
		*out = t;
		return 0;
	}
	while (read(cq->efd, &v, sizeof(v)) > 0) /* Q2: non-blocking; -EAGAIN ends it */
		;
	/* seq_cst: Q3, the popper's half of the pair with P2 (see above) */
	atomic_store_explicit(&cq->signalled, 0, memory_order_seq_cst);
	if ((t = cq_take(cq)) != NULL) { /* Q4 */
		*out = t;
		return 0;
	}
	return -EAGAIN;
}

void ripen_cq_destroy(struct ripen_cq *cq)
{
	struct ripen_task *t;

	if (cq == NULL)
		return;
	while ((t = cq_take(cq)) != NULL) { /* what ripen_task_release does */
		struct ripen_pool *pool = t->pool;

		ripen__task_put(t);
		ripen__pool_unref(pool);
	}
	cds_wfcq_destroy(&cq->head, &cq->tail);
	close(cq->efd);
	free(cq);
}

static void cq_push(struct ripen_cq *cq, struct ripen_task *t, struct ripen__ext *x)
{
	static const uint64_t one = 1;

	/* relaxed: the queue's reference and shell hold, taken while the
	 * finishing thread still holds one of its own (an entry's or a
	 * handle's); the pop hands both to the caller */
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->pool->handles, 1, memory_order_relaxed);
	cds_wfcq_node_init(&x->c.cq_node);
	RIPEN_TSAN_RELEASE(t);
	(void)cds_wfcq_enqueue(&cq->head, &cq->tail, &x->c.cq_node); /* P1 */
	/* seq_cst: P2, the pusher's half of the pair with Q3 */
	if (atomic_exchange_explicit(&cq->signalled, 1, memory_order_seq_cst) == 0) {
		ssize_t r;

		do /* an eventfd write fails only at a counter near 2^64 - 1 */
			r = write(cq->efd, &one, sizeof(one));
		while (r < 0 && errno == EINTR);
	}
}

void ripen__task_deliver(struct ripen_task *t, uint32_t final_state)
{
	struct ripen__ext *x = ripen__task_ext(t);

	if (x->c.done != NULL)
		x->c.done(t->arg, (enum ripen_task_state)final_state);
	if (x->c.cq != NULL)
		cq_push(x->c.cq, t, x);
}
