/*
 * What every file shares: the loud end of a broken invariant, the text of
 * the library's error codes, and the futex calls every sleep uses. Any
 * thread.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common-internal.h"
#include "ripen.h"

noreturn void ripen__die(const char *file, int line, const char *func, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ripen: %s:%d: %s: ", file, line, func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

const char *ripen_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EINVAL: return "invalid argument";
	case -ENOMEM: return "out of memory";
	case -EAGAIN: return "resource temporarily unavailable (thread creation failed)";
	case -ESHUTDOWN: return "pool is shut down";
	case -ETIMEDOUT: return "timed out";
	case -EBUSY: return "task is running, or its class is shed by a watcher";
	case -ENOENT: return "no such watcher";
	case -ENOTSUP: return "not supported by this pool (no rebalancer, or metrics off)";
	case -ENOSPC: return "no room left (watchers, edges)";
	case -EEXIST: return "label already taken by another class";
	case -EIO: return "the output stream failed";
	case -EALREADY: return "already done, cancelled or shut down";
	case -EDEADLK: return "would deadlock (called from one of the pool's own tasks)";
	default: return "unknown error";
	}
}

int ripen__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	long rc;

	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tp = &ts;
	}
	rc = syscall(SYS_futex, (uintptr_t)word, FUTEX_WAIT_PRIVATE, expected, tp, NULL, 0);
	return rc == 0 ? 0 : -errno;
}

void ripen__futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uintptr_t)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
