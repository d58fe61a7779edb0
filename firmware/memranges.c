/*
 * The table of occupied memory below rma_end, and the two allocation
 * policies built on it: the heap for malloc and the kernel's place.
 *
 * The contract is docs/memranges.md; the Python reference model and the
 * emulator's byte-for-byte mirror are written from it, so every byte of
 * `ranges` (unused entries and the refused counter included) matters.
 *
 * Deliberate faults, for showing that the checkers catch real bugs
 * (build with -DFAULT_<NAME>=1, or `make FAULT=<NAME>`):
 *
 *   FAULT_NO_MERGE_ADJACENT    ranges that only touch are kept apart
 *   FAULT_OVERFLOW_OFF_BY_ONE  a range ending exactly at 2^64 is refused
 *   FAULT_STALE_TAIL           entries freed by a merge keep their old bytes
 *   FAULT_FULL_CORRUPTS        a range refused for a full table still counts
 *   FAULT_IGNORE_FULL          init_malloc and vmlinux_alloc succeed though
 *                              the full table refused their range
 *
 * Each changes one place below (IGNORE_FULL: two), marked "FAULT".
 */
#include "types.h"
#include "string.h"
#include "memranges.h"
#include "simple_alloc.h"

struct range_table ranges;

void ranges_init(u64 rma_end)
{
	memset(&ranges, 0, sizeof(ranges));
	ranges.rma_end = rma_end;
}

/* Does e overlap or touch [start, end)?  Touching ranges become one. */
static int joins(const struct mem_range *e, u64 start, u64 end)
{
#ifdef FAULT_NO_MERGE_ADJACENT
	/* FAULT: only overlapping ranges join; touching ones stay apart */
	return e->start < end && start < e->end;
#else
	return e->start <= end && start <= e->end;
#endif
}

int ranges_add(u64 start, u64 size)
{
	struct mem_range *e = ranges.entry;
	u32 n = ranges.count;
	u32 lo, hi, gone, i;
	u64 end;

	if (size == 0)
		return RANGES_OK;

	/*
	 * The last byte, start + size - 1, must be below 2^64.  Written
	 * without computing start + size so that a range ending exactly at
	 * 2^64 (whose end wraps to 0) is accepted.
	 */
#ifdef FAULT_OVERFLOW_OFF_BY_ONE
	/* FAULT: '>=' refuses a range whose last byte is 2^64 - 1 */
	if (size - 1 >= U64_MAX - start)
#else
	if (size - 1 > U64_MAX - start)
#endif
		return -RANGES_ERR_OVERFLOW;

	/* Memory at or above the limit is not tracked. */
	if (start >= ranges.rma_end)
		return RANGES_OK;

	/* Clip; comparing sizes keeps start + size from wrapping. */
	if (size > ranges.rma_end - start)
		end = ranges.rma_end;
	else
		end = start + size;

	/* Skip the entries wholly below the new range and apart from it. */
	for (lo = 0; lo < n && e[lo].start < start && !joins(&e[lo], start, end);
	     lo++)
		;
	/* The entries it absorbs follow on, one run in a sorted table. */
	for (hi = lo; hi < n && joins(&e[hi], start, end); hi++)
		;

	if (lo == hi) {
		/* A new entry, inserted at lo to keep the table sorted. */
		if (n == RANGES_MAX) {
			ranges.refused++;
#ifdef FAULT_FULL_CORRUPTS
			/* FAULT: the refused range is counted as if stored */
			ranges.count++;
#endif
			return -RANGES_ERR_FULL;
		}
		for (i = n; i > lo; i--)
			e[i] = e[i - 1];
		e[lo].start = start;
		e[lo].end = end;
		ranges.count = n + 1;
		return RANGES_OK;
	}

	/* Entry lo becomes the union of itself, the new range and the run. */
	if (e[lo].start < start)
		start = e[lo].start;
	if (e[hi - 1].end > end)
		end = e[hi - 1].end;
	e[lo].start = start;
	e[lo].end = end;

	/* Close the hole left by entries lo + 1 .. hi - 1. */
	gone = hi - lo - 1;
	for (i = hi; i < n; i++)
		e[i - gone] = e[i];
#ifndef FAULT_STALE_TAIL
	/* Unused entries are zero: the mirror compares them too. */
	for (i = n - gone; i < n; i++) {
		e[i].start = 0;
		e[i].end = 0;
	}
#else
	/* FAULT: the freed tail keeps the old entries' bytes */
#endif
	ranges.count = n - gone;
	return RANGES_OK;
}

int ranges_add_span(u64 start, u64 end)
{
	if (end < start)
		return -RANGES_ERR_INVERTED;
	return ranges_add(start, end - start);
}

int ranges_is_free(u64 start, u64 size)
{
	u32 i;

	/* start + size <= rma_end, asked without computing start + size */
	if (start > ranges.rma_end || size > ranges.rma_end - start)
		return 0;
	if (size == 0)
		return 1;

	for (i = 0; i < ranges.count; i++) {
		const struct mem_range *e = &ranges.entry[i];

		if (e->start < start + size && start < e->end)
			return 0;
	}
	return 1;
}

/*
 * The free interval just before entry i (before rma_end for i == count).
 * Empty, start >= end, when entry i starts where entry i - 1 ends.
 */
static struct mem_range gap_before(u32 i)
{
	struct mem_range g;

	g.start = i ? ranges.entry[i - 1].end : 0;
	g.end = i < ranges.count ? ranges.entry[i].start : ranges.rma_end;
	return g;
}

/*
 * The largest free gap, the lowest among equals; with skip_zero, gaps
 * starting at 0 are not considered.  Returns 0 or -RANGES_ERR_NOSPACE.
 */
static int pick_gap(int skip_zero, struct mem_range *best)
{
	struct mem_range g;
	int found = 0;
	u32 i;

	best->start = 0;
	best->end = 0;
	for (i = 0; i <= ranges.count; i++) {
		g = gap_before(i);
		if (g.start >= g.end || (skip_zero && g.start == 0))
			continue;
		/* strictly larger: the first of equal gaps wins */
		if (!found || g.end - g.start > best->end - best->start) {
			*best = g;
			found = 1;
		}
	}
	return found ? RANGES_OK : -RANGES_ERR_NOSPACE;
}

int ranges_largest_gap(struct mem_range *gap)
{
	return pick_gap(0, gap);
}

int ranges_gap_after_last(struct mem_range *gap)
{
	struct mem_range g = gap_before(ranges.count);

	if (g.start >= g.end) {
		gap->start = 0;
		gap->end = 0;
		return -RANGES_ERR_NOSPACE;
	}
	*gap = g;
	return RANGES_OK;
}

int ranges_init_malloc(void)
{
	struct mem_range g;
	u64 hs, he;
	int err;

	/* The chunk at 0 is left for the kernel, unless it is all there is. */
	if (pick_gap(1, &g) && pick_gap(0, &g))
		return -RANGES_ERR_NOSPACE;

	/* Rounding the start up may pass 2^64: then nothing is left. */
	if (g.start > U64_MAX - (RANGES_HEAP_ALIGN - 1))
		return -RANGES_ERR_NOSPACE;
	hs = ALIGN_UP(g.start, RANGES_HEAP_ALIGN);
	he = ALIGN_DOWN(g.end, RANGES_HEAP_ALIGN);
	if (he < hs || he - hs < RANGES_HEAP_MIN)
		return -RANGES_ERR_NOSPACE;

	/*
	 * A heap the table cannot record could later be handed out again
	 * as free memory: refuse it, and keep any earlier heap intact.
	 */
	err = ranges_add(hs, he - hs);
#ifdef FAULT_IGNORE_FULL
	/* FAULT: the heap is set up though the table refused it */
	err = RANGES_OK;
#endif
	if (err)
		return err;
	ranges.heap_start = hs;
	ranges.heap_end = he;
	simple_alloc_init(hs, he - hs);
	return RANGES_OK;
}

int ranges_vmlinux_alloc(u64 size, u64 *addr)
{
	void *p;
	int err;

	/* The kernel runs best at 0: take it there when nothing is in the way. */
	if (ranges_is_free(0, size)) {
		/* Unrecorded, the kernel's place could be given out again. */
		err = ranges_add(0, size);
#ifdef FAULT_IGNORE_FULL
		/* FAULT: the kernel is placed at 0 though the table refused it */
		err = RANGES_OK;
#endif
		if (err)
			return err;
		*addr = 0;
		return RANGES_OK;
	}
	if (ranges.heap_end == 0)
		return -RANGES_ERR_NOHEAP;

	p = malloc(size);
	if (p == NULL)
		return -RANGES_ERR_NOSPACE;
	*addr = (u64)(uintptr_t)p;
	return RANGES_OK;
}

const char *ranges_strerror(int err)
{
	switch (err) {
	case RANGES_OK:
		return "success";
	case -RANGES_ERR_OVERFLOW:
		return "range passes the end of the address space";
	case -RANGES_ERR_INVERTED:
		return "range ends before it starts";
	case -RANGES_ERR_FULL:
		return "range table full";
	case -RANGES_ERR_NOSPACE:
		return "no free memory large enough";
	case -RANGES_ERR_NOHEAP:
		return "no heap yet";
	default:
		return "unknown range error";
	}
}
