/*
 * The wrapper's heap: one region handed out front to back in page-sized
 * blocks, each remembered in a fixed table of records.  free() only marks
 * a record free; malloc() reuses the first free record big enough before
 * cutting a new block.  Nothing is ever split or coalesced: the wrapper
 * allocates a handful of large things (device tree, kernel, initrd) once.
 *
 * Exact semantics: docs/memranges.md.  The mirror compares every byte of
 * `heap`, unused records included.
 */
#include "types.h"
#include "string.h"
#include "simple_alloc.h"

struct alloc_heap heap;

void simple_alloc_init(u64 base, u64 size)
{
	memset(&heap, 0, sizeof(heap));
	heap.base = base;
	heap.end = base + size;
	heap.next = base;
}

/*
 * n rounded up to ALLOC_GRANULE, or 0 when that would pass 2^64 (no block
 * is that large, so the caller can only fail).
 */
static u64 block_size(u64 n)
{
	if (n > U64_MAX - (ALLOC_GRANULE - 1))
		return 0;
	return ALIGN_UP(n, ALLOC_GRANULE);
}

/* The lowest-index record in use whose block starts at p, or NULL. */
static struct alloc_record *used_record(u64 p)
{
	u32 i;

	for (i = 0; i < heap.nrecords; i++)
		if (heap.rec[i].state == ALLOC_USED && heap.rec[i].base == p)
			return &heap.rec[i];
	return NULL;
}

void *malloc(size_t size)
{
	struct alloc_record *r;
	u64 need = block_size(size);
	u32 i;

	if (need == 0)
		return NULL;

	/* First fit among the blocks already cut; a reused one keeps its size. */
	for (i = 0; i < heap.nrecords; i++) {
		r = &heap.rec[i];
		if (r->state == ALLOC_FREE && r->size >= need) {
			r->state = ALLOC_USED;
			return (void *)(uintptr_t)r->base;
		}
	}

	/* Else cut a new block from the untouched end of the heap. */
	if (heap.nrecords == ALLOC_MAX_RECORDS || need > heap.end - heap.next)
		return NULL;
	r = &heap.rec[heap.nrecords++];
	r->base = heap.next;
	r->size = need;
	r->state = ALLOC_USED;
	heap.next += need;
	return (void *)(uintptr_t)r->base;
}

void free(void *ptr)
{
	struct alloc_record *r;

	if (ptr == NULL)
		return;
	r = used_record((u64)(uintptr_t)ptr);
	if (r)
		r->state = ALLOC_FREE;
}

void *realloc(void *ptr, size_t size)
{
	struct alloc_record *r;
	u64 need;
	void *q;

	if (ptr == NULL)
		return malloc(size);
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	r = used_record((u64)(uintptr_t)ptr);
	if (r == NULL)
		return NULL;

	/* Blocks are never shrunk; one that still fits stays where it is. */
	need = block_size(size);
	if (need != 0 && need <= r->size)
		return ptr;

	q = malloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, ptr, r->size);
	free(ptr);
	return q;
}
