/*
 * A bootwrapper heap: first-fit over a fixed table of allocation records
 * in one contiguous region (simple_alloc.c).  Semantics: docs/memranges.md.
 */
#ifndef BW_SIMPLE_ALLOC_H
#define BW_SIMPLE_ALLOC_H

#include "types.h"

#define ALLOC_MAX_RECORDS	32
#define ALLOC_GRANULE		0x1000ULL	/* sizes round up to this */

#define ALLOC_FREE		0	/* record returned by free() */
#define ALLOC_USED		1

struct alloc_record {
	u64 base;
	u64 size;		/* rounded up to ALLOC_GRANULE */
	u64 state;		/* ALLOC_FREE or ALLOC_USED */
};

struct alloc_heap {
	u64 base;		/* heap [base, end) */
	u64 end;
	u64 next;		/* first byte never handed out */
	u32 nrecords;		/* records [0, nrecords) have been used */
	u32 pad;
	struct alloc_record rec[ALLOC_MAX_RECORDS];
};

extern struct alloc_heap heap;

#ifdef BW_HOST
/*
 * Built for the host (tests), these would replace libc's allocator, which
 * the sanitizers and the driver itself rely on: give them other names.
 */
#define malloc bw_malloc
#define free bw_free
#define realloc bw_realloc
#endif

void simple_alloc_init(u64 base, u64 size);
void *malloc(size_t size);
void free(void *ptr);
void *realloc(void *ptr, size_t size);

#endif
