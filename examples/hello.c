/* The README's example: a pool, two kinds of work, a handle, shutdown. */
#include <stdio.h>
#include <ripen.h>

static char bulk1[] = "bulk-1", vip1[] = "vip-1";
static void flush_batch(void *arg) { printf("flush %s\n", (const char *)arg); }

int main(void)
{
	struct ripen_pool *pool;
	struct ripen_task_opts vip = RIPEN_TASK_OPTS_INIT, bulk = RIPEN_TASK_OPTS_INIT;
	struct ripen_task *t;

	if (ripen_pool_create(NULL, &pool) != 0) /* one worker per CPU */
		return 1;
	vip.base = 10.0;  /* higher base runs first */
	bulk.base = 1.0;
	ripen_submit(pool, flush_batch, bulk1, &bulk, NULL); /* detached */
	ripen_submit(pool, flush_batch, vip1, &vip, &t);     /* with a handle */
	ripen_task_wait(t, -1);                                /* < 0: no timeout */
	ripen_task_release(t);
	ripen_pool_shutdown(pool, RIPEN_SHUTDOWN_DRAIN);      /* runs what is queued */
	ripen_pool_destroy(pool);
	return 0;
}
