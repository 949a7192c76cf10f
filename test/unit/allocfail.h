/*
 * allocfail.h: counted allocators for unit tests that include a .c file
 * and make each of its allocations fail in turn (c-ares SetAllocFail).
 *
 *	#include "test/unit/allocfail.h"
 *	#define malloc counted_malloc	(and/or calloc, realloc)
 *	#include "nds/table.c"
 *	...  alloc_fail_at = k;  (the k-th allocation from now fails)
 */
#ifndef DNSPROXY_TEST_ALLOCFAIL_H
#define DNSPROXY_TEST_ALLOCFAIL_H

#include <stdlib.h>

static long alloc_fail_at = -1; /* allocations left before one fails */

static inline int
alloc_fails(void)
{
	if (alloc_fail_at < 0)
		return 0;
	return alloc_fail_at-- == 0;
}

static inline void *
counted_malloc(size_t n)
{
	return alloc_fails() ? NULL : malloc(n);
}

static inline void *
counted_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : calloc(n, size);
}

static inline void *
counted_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : realloc(p, n);
}

#endif
