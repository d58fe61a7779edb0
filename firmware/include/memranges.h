/*
 * The table of occupied memory ranges below rma_end (memranges.c).
 *
 * The exact semantics of every operation are in docs/memranges.md; the
 * Python reference model (wrapper_model/ranges.py) is written from that
 * document, not from this code, and the emulator's mirror compares the two
 * byte for byte after every operation.  Change one, change the document.
 */
#ifndef BW_MEMRANGES_H
#define BW_MEMRANGES_H

#include "types.h"

#define RANGES_MAX		32
#define RANGES_HEAP_ALIGN	0x1000ULL	/* heap bounds are page aligned */
#define RANGES_HEAP_MIN		0x10000ULL	/* smallest usable heap */

/* Return codes: 0 is success, errors are negative. */
#define RANGES_OK		0
#define RANGES_ERR_OVERFLOW	1	/* start + size passes 2^64 */
#define RANGES_ERR_INVERTED	2	/* end below start */
#define RANGES_ERR_FULL		3	/* would need entry RANGES_MAX + 1 */
#define RANGES_ERR_NOSPACE	4	/* no free gap (large enough) */
#define RANGES_ERR_NOHEAP	5	/* allocation before ranges_init_malloc */

/* One occupied range, half open: [start, end), start < end. */
struct mem_range {
	u64 start;
	u64 end;
};

/*
 * The whole state, one object in bss.  Entries [0, count) are sorted by
 * start, pairwise neither overlapping nor touching; entries [count,
 * RANGES_MAX) are all zero bytes.
 */
struct range_table {
	u64 rma_end;		/* nothing at or above it is recorded */
	u64 heap_start;		/* heap chosen by ranges_init_malloc, */
	u64 heap_end;		/*   0 and 0 until then */
	u32 count;		/* entries in use */
	u32 refused;		/* adds refused with RANGES_ERR_FULL */
	struct mem_range entry[RANGES_MAX];
};

extern struct range_table ranges;

void ranges_init(u64 rma_end);
int ranges_add(u64 start, u64 size);
int ranges_add_span(u64 start, u64 end);
int ranges_is_free(u64 start, u64 size);
int ranges_largest_gap(struct mem_range *gap);
int ranges_gap_after_last(struct mem_range *gap);
int ranges_init_malloc(void);
int ranges_vmlinux_alloc(u64 size, u64 *addr);
const char *ranges_strerror(int err);

#endif
