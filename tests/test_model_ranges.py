"""The reference model against docs/memranges.md.

Unit tests: one behaviour of the spec each, expected values worked out by
hand from the text.  Property tests: the spec's invariants hold after any
operation sequence the strategies produce, in the model's state and in the
bytes it renders for the guest's structs.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.layout_helpers import real_layouts
from tests.strategies import any_sequence, many_disjoint_ranges, op_sequences
from wrapper_model import HeapModel, Op, OpResult, RangeTable, RangeTableState
from wrapper_model.constants import (
    ALLOC_FREE,
    ALLOC_MAX_RECORDS,
    ALLOC_USED,
    RANGES_MAX,
    U64_LIMIT,
    U64_MAX,
    RangesErr,
)
from wrapper_model.heap import AllocRecord, BlockCopy
from wrapper_model.layout import StructLayout, render_heap, render_range_table

OK, OVERFLOW, INVERTED, FULL, NOSPACE, NOHEAP = (
    RangesErr.OK, RangesErr.OVERFLOW, RangesErr.INVERTED, RangesErr.FULL,
    RangesErr.NOSPACE, RangesErr.NOHEAP)
MB = 0x100000


def table(rma_end: int, *ranges: tuple[int, int]) -> RangeTable:
    """A table after init(rma_end) and add_span of each (start, end)."""
    t = RangeTable()
    t.init(rma_end)
    for s, e in ranges:
        assert t.add_span(s, e).ret == OK
    return t


def full_table(rma_end: int = 0x100000) -> RangeTable:
    """RANGES_MAX entries [0x2000*i + 0x1000, +0x800): every one isolated."""
    t = table(rma_end)
    for i in range(RANGES_MAX):
        assert t.add(0x2000 * i + 0x1000, 0x800).ret == OK
    assert t.count == RANGES_MAX
    return t


# --- return codes -----------------------------------------------------------------


def test_error_codes_are_the_negated_header_numbers() -> None:
    codes = (OK, OVERFLOW, INVERTED, FULL, NOSPACE, NOHEAP)
    assert [int(e) for e in codes] == [0, -1, -2, -3, -4, -5]


# --- ranges_init --------------------------------------------------------------------


def test_init_stores_rma_end_and_zeroes_everything_else() -> None:
    t = table(0x1000000, (0x1000, 0x2000))
    t.init_malloc()
    t.add(0x5000000, 1)  # above the limit: ignored
    t.init(0x4000)
    assert t.state() == RangeTableState(0x4000, 0, 0, 0, 0, ((0, 0),) * RANGES_MAX)


def test_init_clears_refused() -> None:
    t = full_table()
    assert t.add(0x80000, 1).ret == FULL
    assert t.refused == 1
    t.init(0x1000)
    assert t.refused == 0


def test_init_leaves_the_heap_model_alone() -> None:
    t = table(16 * MB)
    t.init_malloc()
    before = t.heap.state()
    t.init(16 * MB)
    assert t.heap.state() == before and t.heap_end == 0


def test_rma_end_zero_records_nothing() -> None:
    t = table(0)
    assert t.add(0, 100).ret == OK
    assert t.add(U64_MAX, 1).ret == OK
    assert t.entries == ()


# --- ranges_add -----------------------------------------------------------------------


def test_add_of_size_zero_changes_nothing_even_when_it_would_overflow_or_is_full() -> None:
    t = full_table()
    before = t.state()
    assert t.add(U64_MAX, 0) == OpResult(OK)
    assert t.add(0x500, 0) == OpResult(OK)
    assert t.state() == before


def test_add_past_2_to_the_64_is_overflow_even_above_rma_end() -> None:
    t = table(0x1000)
    assert t.add(U64_MAX, 2).ret == OVERFLOW        # step 2 before step 3
    assert t.add(0x10, U64_MAX).ret == OVERFLOW
    assert t.entries == ()


def test_add_ending_exactly_at_2_to_the_64_is_valid_and_clipped() -> None:
    t = table(U64_MAX)
    assert t.add(U64_MAX - 1, 1).ret == OK
    assert t.entries == ((U64_MAX - 1, U64_MAX),)
    t = table(0x1000)
    assert t.add(0x800, U64_LIMIT - 0x800).ret == OK    # ends at 2^64
    assert t.entries == ((0x800, 0x1000),)
    t = table(U64_MAX)
    assert t.add(U64_MAX, 1).ret == OK                   # at the limit: not tracked
    assert t.entries == ()


def test_add_at_or_above_rma_end_is_ignored() -> None:
    t = table(0x10000)
    assert t.add(0x10000, 0x10).ret == OK
    assert t.add(0x20000, 0x10).ret == OK
    assert t.entries == ()


def test_add_is_clipped_at_rma_end() -> None:
    t = table(0x10000)
    assert t.add(0xF000, 0x5000).ret == OK
    assert t.entries == ((0xF000, 0x10000),)


def test_add_keeps_entries_sorted_by_start() -> None:
    t = table(MB, (0x9000, 0xA000), (0x1000, 0x2000), (0x5000, 0x6000))
    assert t.entries == ((0x1000, 0x2000), (0x5000, 0x6000), (0x9000, 0xA000))


def test_add_merges_a_range_touching_on_either_side() -> None:
    t = table(MB, (0x2000, 0x3000))
    t.add_span(0x3000, 0x4000)      # touches the end
    t.add_span(0x1000, 0x2000)      # touches the start
    assert t.entries == ((0x1000, 0x4000),)


def test_add_does_not_merge_ranges_one_byte_apart() -> None:
    t = table(MB, (0x2000, 0x3000), (0x3001, 0x4000))
    assert t.entries == ((0x2000, 0x3000), (0x3001, 0x4000))


def test_add_absorbs_every_entry_it_overlaps_or_touches_into_one() -> None:
    t = table(MB, (0x1000, 0x2000), (0x3000, 0x4000), (0x5000, 0x6000), (0x8000, 0x9000))
    assert t.add_span(0x1800, 0x5000).ret == OK     # overlaps 1st, covers 2nd, touches 3rd
    assert t.entries == ((0x1000, 0x6000), (0x8000, 0x9000))
    assert t.state().entries[2:] == ((0, 0),) * (RANGES_MAX - 2)


def test_add_inside_an_entry_changes_nothing() -> None:
    t = table(MB, (0x1000, 0x8000))
    t.add_span(0x2000, 0x3000)
    assert t.entries == ((0x1000, 0x8000),)


def test_add_of_a_new_range_to_a_full_table_is_refused_and_counted() -> None:
    t = full_table()
    before = t.entries
    assert t.add(0x80000, 0x10) == OpResult(FULL)
    assert t.add(0x90000, 0x10) == OpResult(FULL)
    assert t.entries == before and t.refused == 2


def test_add_that_merges_succeeds_even_when_full() -> None:
    t = full_table()
    assert t.add(0x1800, 0x10).ret == OK            # touches entry 0's end
    assert t.add(0x2F00, 0x100).ret == OK           # touches entry 1's start
    assert t.entries[0] == (0x1000, 0x1810) and t.entries[1] == (0x2F00, 0x3800)
    assert t.add_span(0x1000, 0x3800).ret == OK     # joins the two: frees a slot
    assert t.count == RANGES_MAX - 1 and t.refused == 0
    assert t.add(0x80000, 0x10).ret == OK


def test_refusal_when_full_ignores_ranges_above_rma_end() -> None:
    t = full_table(rma_end=0x41000)
    assert t.add(0x41000, 0x10).ret == OK           # step 3 before step 6
    assert t.refused == 0


# --- ranges_add_span ----------------------------------------------------------------


def test_add_span_rejects_an_inverted_span() -> None:
    t = table(MB)
    assert t.add_span(0x2000, 0x1FFF) == OpResult(INVERTED)
    assert t.entries == ()


def test_add_span_with_equal_ends_is_an_empty_no_op() -> None:
    t = table(MB)
    assert t.add_span(0x2000, 0x2000) == OpResult(OK)
    assert t.entries == ()


def test_add_span_is_add_of_end_minus_start() -> None:
    t = table(MB)
    assert t.add_span(0x100, U64_MAX).ret == OK
    assert t.entries == ((0x100, MB),)


# --- ranges_is_free ------------------------------------------------------------------


def test_is_free_of_size_zero_depends_only_on_start_versus_rma_end() -> None:
    t = table(0x10000, (0, 0x10000))
    assert t.is_free(0x10000, 0).ret == 1           # start == rma_end: 1
    assert t.is_free(0x5000, 0).ret == 1            # inside an entry, still 1
    assert t.is_free(0x10001, 0).ret == 0


def test_is_free_up_to_exactly_rma_end() -> None:
    t = table(0x10000)
    assert t.is_free(0xF000, 0x1000).ret == 1
    assert t.is_free(0xF000, 0x1001).ret == 0


def test_is_free_never_when_the_range_passes_2_to_the_64() -> None:
    t = table(U64_MAX)
    assert t.is_free(U64_MAX, 2).ret == 0
    assert t.is_free(1, U64_MAX).ret == 0


def test_is_free_touching_an_entry_is_free_overlapping_is_not() -> None:
    t = table(MB, (0x2000, 0x3000))
    assert t.is_free(0x1000, 0x1000).ret == 1
    assert t.is_free(0x3000, 0x1000).ret == 1
    assert t.is_free(0x1000, 0x1001).ret == 0
    assert t.is_free(0x2FFF, 0x10).ret == 0
    assert t.is_free(0x2800, 0x10).ret == 0


def test_is_free_changes_nothing() -> None:
    t = full_table()
    before = t.state()
    t.is_free(0, U64_MAX)
    assert t.state() == before


# --- ranges_largest_gap / ranges_gap_after_last --------------------------------------


def test_gaps_are_the_complement_of_the_entries_below_rma_end() -> None:
    t = table(0x10000, (0x1000, 0x2000), (0x8000, 0x9000))
    assert t.gaps() == ((0, 0x1000), (0x2000, 0x8000), (0x9000, 0x10000))


def test_largest_gap_is_the_widest() -> None:
    # gaps: 0x1000 at 0, 0x6000 in the middle, 0x5000 at the top
    t = table(0xE000, (0x1000, 0x2000), (0x8000, 0x9000))
    assert t.largest_gap() == OpResult(OK, (0x2000, 0x8000))


def test_largest_gap_prefers_the_lowest_start_among_equals() -> None:
    t = table(0x3000, (0x1000, 0x2000))
    assert t.largest_gap() == OpResult(OK, (0, 0x1000))


def test_largest_gap_includes_the_gap_at_zero() -> None:
    t = table(0x10000, (0x8000, 0x10000))
    assert t.largest_gap() == OpResult(OK, (0, 0x8000))


def test_largest_gap_with_no_gap_writes_zero_and_fails() -> None:
    assert table(0x10000, (0, 0x10000)).largest_gap() == OpResult(NOSPACE, (0, 0))
    assert table(0).largest_gap() == OpResult(NOSPACE, (0, 0))


def test_gap_after_last_of_an_empty_table_is_everything() -> None:
    assert table(0x10000).gap_after_last() == OpResult(OK, (0, 0x10000))


def test_gap_after_last_starts_at_the_last_entry_end_not_the_largest_gap() -> None:
    t = table(0x10000, (0x1000, 0x2000), (0xE000, 0xF000))
    assert t.gap_after_last() == OpResult(OK, (0xF000, 0x10000))


def test_gap_after_last_is_nospace_when_the_last_entry_reaches_rma_end() -> None:
    assert table(0x10000, (0x1000, 0x10000)).gap_after_last() == OpResult(NOSPACE, (0, 0))
    assert table(0).gap_after_last() == OpResult(NOSPACE, (0, 0))


# --- ranges_init_malloc -----------------------------------------------------------------


def test_init_malloc_avoids_the_gap_at_zero_even_when_it_is_larger() -> None:
    t = table(64 * MB, (32 * MB, 33 * MB))
    assert t.init_malloc() == OpResult(OK)
    assert (t.heap_start, t.heap_end) == (33 * MB, 64 * MB)
    assert t.entries == ((32 * MB, 64 * MB),)        # the heap merged with its neighbour
    assert (t.heap.base, t.heap.end, t.heap.next) == (33 * MB, 64 * MB, 33 * MB)


def test_init_malloc_uses_the_gap_at_zero_when_it_is_the_only_one() -> None:
    t = table(16 * MB, (8 * MB, 16 * MB))
    assert t.init_malloc().ret == OK
    assert (t.heap_start, t.heap_end) == (0, 8 * MB)
    assert t.entries == ((0, 16 * MB),)


def test_init_malloc_on_an_empty_table_takes_everything_below_rma_end() -> None:
    t = table(16 * MB + 0x123)
    assert t.init_malloc().ret == OK
    assert (t.heap_start, t.heap_end) == (0, 16 * MB)


def test_init_malloc_picks_the_widest_non_zero_gap_lowest_start_among_equals() -> None:
    t = table(0x100000, (0x10000, 0x20000), (0x40000, 0x50000), (0x70000, 0x80000))
    # gaps: [0,0x10000) [0x20000,0x40000) [0x50000,0x70000) [0x80000,0x100000)
    assert t.init_malloc().ret == OK
    assert (t.heap_start, t.heap_end) == (0x80000, 0x100000)
    t = table(0x90000, (0x10000, 0x20000), (0x40000, 0x50000), (0x70000, 0x90000))
    assert t.init_malloc().ret == OK
    assert (t.heap_start, t.heap_end) == (0x20000, 0x40000)


def test_init_malloc_aligns_the_heap_inward_to_pages() -> None:
    t = table(0x40000 + 0x234, (0x1000, 0x1001))
    assert t.init_malloc().ret == OK
    assert (t.heap_start, t.heap_end) == (0x2000, 0x40000)
    # [0x1000,0x1001) and the heap are 0xFFF apart: they stay two entries.
    assert t.entries == ((0x1000, 0x1001), (0x2000, 0x40000))


def test_init_malloc_fails_when_the_chosen_gap_is_too_small_and_tries_no_other() -> None:
    # Non-zero gap [0x81001, 0x91FFF) aligns to [0x82000, 0x91000): one page
    # short of RANGES_HEAP_MIN, and the huge gap at 0 is not tried instead.
    t = table(0x91FFF, (0x80000, 0x81001))
    before = t.state()
    assert t.init_malloc() == OpResult(NOSPACE)
    assert t.state() == before and t.heap.state() == HeapModel().state()


def test_init_malloc_accepts_exactly_the_minimum_heap() -> None:
    t = table(0x91000, (0x80000, 0x81000))
    assert t.init_malloc().ret == OK
    assert (t.heap_start, t.heap_end) == (0x81000, 0x91000)


def test_init_malloc_with_no_gap_fails() -> None:
    t = table(16 * MB, (0, 16 * MB))
    assert t.init_malloc() == OpResult(NOSPACE)
    assert table(0).init_malloc() == OpResult(NOSPACE)


def test_init_malloc_near_2_to_the_64_does_not_wrap_the_alignment() -> None:
    # Gap [2^64 - 0x800, 2^64 - 1): aligned up its start is 2^64, far above its end.
    t = table(U64_MAX, (0x1000, U64_LIMIT - 0x800))
    assert t.init_malloc() == OpResult(NOSPACE)


def test_init_malloc_again_chooses_a_new_heap_and_resets_the_allocator() -> None:
    # non-zero gaps: [0x20000, 0x60000) and the narrower [0x70000, 0xA0000)
    t = table(0xA0000, (0x10000, 0x20000), (0x60000, 0x70000))
    assert t.init_malloc().ret == OK
    assert (t.heap_start, t.heap_end) == (0x20000, 0x60000)
    assert t.entries == ((0x10000, 0x70000),)       # merged with both neighbours
    assert t.heap.malloc(0x1000) == 0x20000
    assert t.init_malloc().ret == OK                # [0x70000, 0xA0000) is what is left
    assert (t.heap_start, t.heap_end) == (0x70000, 0xA0000)
    assert t.heap.nrecords == 0 and t.heap.next == 0x70000
    assert t.entries == ((0x10000, 0xA0000),)


def test_init_malloc_with_a_full_table_is_refused_and_changes_only_refused() -> None:
    # Entries end at [0x3F000, 0x3F800); the widest non-zero gap
    # [0x3F800, 0xC8000) gives the heap [0x40000, 0xC8000), touching nothing.
    t = full_table(rma_end=0x1000 * 200)
    before = t.state()
    assert t.init_malloc() == OpResult(FULL)
    assert t.state() == dataclasses.replace(before, refused=1)
    assert (t.heap_start, t.heap_end) == (0, 0)
    assert t.heap.state() == HeapModel().state()     # never initialised


def test_init_malloc_refused_by_a_full_table_keeps_the_earlier_heap() -> None:
    t = table(16 * MB, (8 * MB + 0x800, 8 * MB + 0x1000))
    assert t.init_malloc().ret == OK                 # heap [8 MiB + 0x1000, 16 MiB)
    assert t.heap.malloc(0x1000) == 8 * MB + 0x1000
    for i in range(RANGES_MAX - 1):                  # [0x1000, 0x1800) ... [0x3D000, 0x3D800)
        assert t.add(0x2000 * i + 0x1000, 0x800).ret == OK
    # widest non-zero gap [0x3D800, 8 MiB + 0x800) -> heap [0x3E000, 8 MiB),
    # one byte short of touching either neighbour
    before, heap_before = t.state(), t.heap.state()
    assert t.init_malloc() == OpResult(FULL)
    assert t.state() == dataclasses.replace(before, refused=1)
    assert (t.heap_start, t.heap_end) == (8 * MB + 0x1000, 16 * MB)
    assert t.heap.state() == heap_before
    assert t.heap.malloc(0x1000) == 8 * MB + 0x2000  # the old heap carries on


def test_init_malloc_with_a_full_table_succeeds_when_the_heap_merges() -> None:
    # Non-zero gaps: [0x1800 + 0x2000*i, +0x1800) and [0x3F800, 0x50000);
    # the widest is the last, whose heap [0x40000, 0x50000) touches nothing...
    t = full_table(rma_end=0x50000)
    assert t.init_malloc() == OpResult(FULL)
    # ...but with the last entry ending on a page it does, and merges.
    t = full_table(rma_end=0x50000)
    assert t.add(0x3F800, 0x800).ret == OK           # [0x3F000, 0x40000)
    assert t.init_malloc() == OpResult(OK)
    assert (t.heap_start, t.heap_end) == (0x40000, 0x50000)
    assert t.count == RANGES_MAX and t.refused == 0
    assert t.entries[-1] == (0x3F000, 0x50000)
    assert (t.heap.base, t.heap.end) == (0x40000, 0x50000)


# --- ranges_vmlinux_alloc ------------------------------------------------------------------


def test_vmlinux_alloc_goes_at_zero_when_that_is_free() -> None:
    t = table(16 * MB, (8 * MB, 9 * MB))
    assert t.vmlinux_alloc(4 * MB) == OpResult(OK, (0,))
    assert t.entries == ((0, 4 * MB), (8 * MB, 9 * MB))


def test_vmlinux_alloc_of_size_zero_returns_zero_without_adding() -> None:
    t = table(16 * MB, (0, MB))
    assert t.vmlinux_alloc(0) == OpResult(OK, (0,))
    assert t.entries == ((0, MB),)


def test_vmlinux_alloc_without_a_heap_is_noheap_and_leaves_addr_untouched() -> None:
    t = table(16 * MB, (MB, 2 * MB))
    assert t.vmlinux_alloc(4 * MB) == OpResult(NOHEAP, None)


def test_vmlinux_alloc_larger_than_rma_end_needs_the_heap() -> None:
    assert table(16 * MB).vmlinux_alloc(17 * MB) == OpResult(NOHEAP, None)


def test_vmlinux_alloc_mallocs_from_the_heap_when_zero_is_taken() -> None:
    t = table(64 * MB, (0, MB))
    t.init_malloc()                                  # heap [1 MiB, 64 MiB)
    assert t.vmlinux_alloc(4 * MB + 1) == OpResult(OK, (MB,))
    assert t.heap.records == (AllocRecord(MB, 4 * MB + 0x1000, ALLOC_USED),)
    assert t.vmlinux_alloc(100 * MB) == OpResult(NOSPACE, None)


def test_vmlinux_alloc_ignores_a_heap_forgotten_by_init() -> None:
    t = table(64 * MB, (0, MB))
    t.init_malloc()
    t.init(64 * MB)
    t.add(0, MB)
    assert t.vmlinux_alloc(2 * MB) == OpResult(NOHEAP, None)


def test_vmlinux_alloc_at_zero_refused_by_a_full_table_fails_without_trying_the_heap() -> None:
    t = table(16 * MB, (8 * MB + 0x800, 8 * MB + 0x1000))
    assert t.init_malloc().ret == OK                 # heap [8 MiB + 0x1000, 16 MiB)
    for i in range(RANGES_MAX - 1):                  # [0x2000, 0x3000) ... [0x3E000, 0x3F000)
        assert t.add(0x2000 * i + 0x2000, 0x1000).ret == OK
    before, heap_before = t.state(), t.heap.state()
    # [0, 0x1000) is free but touches nothing: its add is refused
    assert t.vmlinux_alloc(0x1000) == OpResult(FULL, None)
    assert t.state() == dataclasses.replace(before, refused=1)
    assert t.heap.state() == heap_before             # no block was taken


def test_vmlinux_alloc_at_zero_into_a_full_table_succeeds_when_it_touches_an_entry() -> None:
    t = full_table()                                 # first entry [0x1000, 0x1800)
    assert t.vmlinux_alloc(0x800) == OpResult(FULL, None)
    assert t.vmlinux_alloc(0x1000) == OpResult(OK, (0,))
    assert t.entries[0] == (0, 0x1800)
    assert t.count == RANGES_MAX and t.refused == 1


# --- the heap -----------------------------------------------------------------------------


def heap(base: int = 0x100000, size: int = 0x100000) -> HeapModel:
    h = HeapModel()
    h.init(base, size)
    return h


def test_heap_init_zeroes_and_sets_the_region() -> None:
    h = heap()
    h.malloc(0x1000)
    h.init(0x200000, 0x3000)
    assert (h.base, h.end, h.next, h.nrecords, h.records) == (0x200000, 0x203000, 0x200000, 0, ())


def test_malloc_of_zero_is_null_and_changes_nothing() -> None:
    h = heap()
    assert h.malloc(0) == 0 and h.nrecords == 0


def test_malloc_rounds_up_to_the_granule_and_bumps() -> None:
    h = heap()
    assert h.malloc(1) == 0x100000
    assert h.malloc(0x1000) == 0x101000
    assert h.malloc(0x1001) == 0x102000
    assert h.next == 0x104000
    assert [r.size for r in h.records] == [0x1000, 0x1000, 0x2000]


def test_malloc_reuses_the_lowest_index_free_record_that_fits_and_keeps_its_size() -> None:
    h = heap()
    a, b, c = h.malloc(0x1000), h.malloc(0x3000), h.malloc(0x3000)
    for p in (a, b, c):
        h.free(p)
    assert h.malloc(0x2000) == b                    # a is too small; b before c
    assert h.records[1] == AllocRecord(b, 0x3000, ALLOC_USED)
    assert h.malloc(0x800) == a


def test_malloc_fails_when_the_space_left_is_too_small() -> None:
    h = heap(size=0x3000)
    assert h.malloc(0x2000) == 0x100000
    assert h.malloc(0x1001) == 0
    assert h.malloc(0x1000) == 0x102000
    assert h.malloc(1) == 0 and h.nrecords == 2


def test_malloc_of_almost_2_to_the_64_fails_without_wrapping() -> None:
    h = heap()
    assert h.malloc(U64_MAX) == 0
    assert h.malloc(U64_MAX - 0xFFF) == 0
    assert h.nrecords == 0 and h.next == 0x100000


def test_malloc_fails_after_the_record_table_is_used_up() -> None:
    h = heap(size=0x1000 * 100)
    for i in range(ALLOC_MAX_RECORDS):
        assert h.malloc(1) == 0x100000 + 0x1000 * i
    assert h.malloc(1) == 0
    h.free(0x100000 + 0x5000)
    assert h.malloc(0x1000) == 0x105000


def test_malloc_before_init_is_null() -> None:
    assert HeapModel().malloc(1) == 0


def test_free_of_null_or_an_unknown_pointer_changes_nothing() -> None:
    h = heap()
    a = h.malloc(0x2000)
    before = h.state()
    h.free(0)
    h.free(a + 0x1000)
    assert h.state() == before


def test_free_twice_is_harmless() -> None:
    h = heap()
    a = h.malloc(1)
    h.free(a)
    h.free(a)
    assert h.records == (AllocRecord(a, 0x1000, ALLOC_FREE),)


def test_realloc_of_null_is_malloc() -> None:
    h = heap()
    assert h.realloc(0, 0x1800) == 0x100000
    assert h.records[0].size == 0x2000


def test_realloc_to_zero_frees_and_returns_null() -> None:
    h = heap()
    a = h.malloc(1)
    assert h.realloc(a, 0) == 0
    assert h.records[0].state == ALLOC_FREE


def test_realloc_of_an_unknown_pointer_is_null() -> None:
    h = heap()
    h.malloc(1)
    before = h.state()
    assert h.realloc(0x1234, 5) == 0
    assert h.state() == before


def test_realloc_within_the_block_returns_it_unchanged() -> None:
    h = heap()
    a = h.malloc(0x1800)
    before = h.state()
    assert h.realloc(a, 0x2000) == a
    assert h.state() == before and h.last_copy is None


def test_realloc_growing_moves_copies_and_frees_the_old_block() -> None:
    h = heap()
    a = h.malloc(0x1000)
    q = h.realloc(a, 0x1001)
    assert q == 0x101000
    assert h.last_copy == BlockCopy(src=a, dst=q, size=0x1000)
    assert h.records == (AllocRecord(a, 0x1000, ALLOC_FREE), AllocRecord(q, 0x2000, ALLOC_USED))


def test_realloc_that_cannot_grow_returns_null_and_keeps_the_block() -> None:
    h = heap(size=0x2000)
    a = h.malloc(0x1000)
    assert h.realloc(a, 0x2000) == 0
    assert h.records == (AllocRecord(a, 0x1000, ALLOC_USED),)


def test_model_refuses_arguments_no_c_caller_could_pass() -> None:
    t = table(MB)
    with pytest.raises(ValueError):
        t.add(-1, 1)
    with pytest.raises(ValueError):
        t.add(0, U64_LIMIT)
    with pytest.raises(ValueError):
        HeapModel().init(U64_MAX, 2)


# --- Op dispatch -----------------------------------------------------------------------------


def test_apply_runs_an_op_by_name_and_checks_its_arity() -> None:
    t = RangeTable()
    assert t.apply(Op("init", (MB,))) == OpResult(OK)
    assert t.apply(Op("add_span", (0x2000, 0x1000))) == OpResult(INVERTED)
    with pytest.raises(ValueError):
        t.apply(Op("add", (1,)))
    with pytest.raises(ValueError):
        t.apply(Op("launch_missiles"))


# --- invariants ----------------------------------------------------------------------------


def invariant_violations(state: RangeTableState, heap_model: HeapModel | None = None) -> list[str]:
    """Every way the state breaks the spec's invariants (empty when none)."""
    bad = []
    used = state.entries[: state.count]
    if state.count > RANGES_MAX:
        bad.append(f"count {state.count} > {RANGES_MAX}")
    for i, (s, e) in enumerate(used):
        if not s < e <= state.rma_end:
            bad.append(f"entry[{i}] = [{s:#x}, {e:#x}) not within [.., rma_end={state.rma_end:#x}]")
    for i in range(len(used) - 1):
        if not used[i][1] < used[i + 1][0]:
            bad.append(f"entry[{i}] and entry[{i + 1}] overlap, touch or are unsorted")
    if any(e != (0, 0) for e in state.entries[state.count:]):
        bad.append("non-zero entry after count")
    if state.heap_end and not any(s <= state.heap_start and state.heap_end <= e for s, e in used):
        bad.append(f"heap [{state.heap_start:#x}, {state.heap_end:#x}) not inside one entry")
    if heap_model is not None:
        blocks = sorted(heap_model.used_blocks())
        for b, e in blocks:
            if not heap_model.base <= b < e <= heap_model.end:
                bad.append(f"block [{b:#x}, {e:#x}) outside the heap")
        for (_, e1), (b2, _) in itertools.pairwise(blocks):
            if e1 > b2:
                bad.append("two used blocks overlap")
        for r in heap_model.records:
            if r.size % 0x1000 or r.base % 0x1000 != heap_model.base % 0x1000:
                bad.append(f"record {r} not granule-sized/aligned like the heap")
    return bad


def test_invariant_checker_catches_broken_states() -> None:
    zero = ((0, 0),) * RANGES_MAX
    good = RangeTableState(0x10000, 0, 0, 2, 0, ((0x1000, 0x2000), (0x3000, 0x4000)) + zero[2:])
    assert invariant_violations(good) == []
    touching = RangeTableState(0x10000, 0, 0, 2, 0, ((0x1000, 0x2000), (0x2000, 0x4000)) + zero[2:])
    above = RangeTableState(0x3000, 0, 0, 2, 0, ((0x1000, 0x2000), (0x3000, 0x4000)) + zero[2:])
    dirty_tail = RangeTableState(0x10000, 0, 0, 1, 0,
                                 ((0x1000, 0x2000), (0x3000, 0x4000)) + zero[2:])
    heap_recorded = RangeTableState(0x10000, 0x3000, 0x4000, 2, 0,
                                    ((0x1000, 0x2000), (0x3000, 0x4000)) + zero[2:])
    assert invariant_violations(heap_recorded) == []
    heap_straddles = RangeTableState(0x10000, 0x1000, 0x4000, 2, 0,
                                     ((0x1000, 0x2000), (0x3000, 0x4000)) + zero[2:])
    heap_unrecorded = RangeTableState(0x10000, 0x5000, 0x6000, 2, 0,
                                      ((0x1000, 0x2000), (0x3000, 0x4000)) + zero[2:])
    for broken in (touching, above, dirty_tail, heap_straddles, heap_unrecorded):
        assert invariant_violations(broken)
    h = heap()
    h._records.append(AllocRecord(0x100800, 0x1000, ALLOC_USED))  # deliberately corrupt
    h._records.append(AllocRecord(0x100000, 0x1000, ALLOC_USED))
    assert invariant_violations(good, h)


def test_invariants_catch_a_model_that_does_not_merge_touching_ranges(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A plausible misreading of add's step 5 (merge only on overlap) must
    trip the invariant check: the checker is not vacuous."""
    import wrapper_model.ranges as ranges_mod

    monkeypatch.setattr(ranges_mod, "_overlaps_or_touches", ranges_mod._overlaps)
    with pytest.raises(AssertionError, match="overlap, touch"):
        run_checked([Op("init", (MB,)), Op("add", (0x1000, 0x1000)), Op("add", (0x2000, 0x1000))])


def check_rendered(t: RangeTable, layouts: tuple[StructLayout, StructLayout]) -> None:
    """The rendered bytes keep the struct's tail zero and agree with count."""
    r_layout, h_layout = layouts
    data = render_range_table(t, r_layout)
    entry = r_layout.field("entry")
    elem = entry.type.element.size  # type: ignore[union-attr]
    tail = data[entry.offset + t.count * elem: entry.offset + RANGES_MAX * elem]
    assert tail == bytes(len(tail)), "rendered entries after count are not zero"
    count_f = r_layout.field("count")
    assert int.from_bytes(data[count_f.offset:count_f.offset + count_f.size], "big") == t.count
    render_heap(t.heap, h_layout)  # must fit the struct (no value too wide)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> tuple[StructLayout, StructLayout]:
    return real_layouts(Path(tmp_path_factory.mktemp("layouts")))


def run_checked(ops: list[Op],
                layouts: tuple[StructLayout, StructLayout] | None = None) -> RangeTable:
    """Run ops on a fresh model, checking after each one the invariants
    (a heap set up lies inside an entry among them), that a kernel placed
    at 0 is recorded, and that `refused` counts exactly the FULL results:
    init_malloc and vmlinux_alloc report their own add's refusal as FULL."""
    t = RangeTable()
    fulls = 0
    for op in ops:
        res = t.apply(op)
        problems = invariant_violations(t.state(), t.heap)
        assert not problems, f"after {op}: {problems}"
        if op.name == "vmlinux_alloc" and res.out == (0,) and op.args[0] > 0:
            assert any(s == 0 and op.args[0] <= e for s, e in t.entries), \
                f"kernel [0, {op.args[0]:#x}) placed but not recorded after {op}"
        if op.name == "init":
            fulls = 0
        if res.ret == FULL:
            fulls += 1
        assert t.refused == fulls, f"refused {t.refused} != FULL results {fulls} after {op}"
        if layouts is not None:
            check_rendered(t, layouts)
    return t


def _swallow_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old misreading: a refused add inside init_malloc or vmlinux_alloc
    reports success to its caller (the table still counts it in `refused`)."""
    original = RangeTable.add

    def add(self: RangeTable, start: int, size: int) -> OpResult:
        res = original(self, start, size)
        return OpResult(OK) if res.ret == FULL else res

    monkeypatch.setattr(RangeTable, "add", add)


def _full_then(*tail: Op) -> list[Op]:
    """init(1 MiB), 32 isolated half-page entries from 0x1000, then tail."""
    return ([Op("init", (MB,))]
            + [Op("add", (0x2000 * i + 0x1000, 0x800)) for i in range(RANGES_MAX)]
            + list(tail))


def test_run_checked_catches_an_unrecorded_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    ops = _full_then(Op("init_malloc"))
    run_checked(ops)
    _swallow_full(monkeypatch)
    with pytest.raises(AssertionError, match="heap .* not inside one entry"):
        run_checked(ops)


def test_run_checked_catches_an_unrecorded_kernel_at_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    ops = _full_then(Op("vmlinux_alloc", (0x800,)))
    run_checked(ops)
    _swallow_full(monkeypatch)
    with pytest.raises(AssertionError, match="placed but not recorded"):
        run_checked(ops)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_sequence)
def test_invariants_hold_after_any_operation_sequence(ops: list[Op]) -> None:
    run_checked(ops)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=any_sequence)
def test_rendered_bytes_keep_the_invariants(
        ops: list[Op], layouts: tuple[StructLayout, StructLayout]) -> None:
    run_checked(ops, layouts)


@settings(max_examples=50, deadline=None)
@given(many_disjoint_ranges(max_tail=0))
def test_more_than_32_distinct_ranges_fill_the_table_and_refuse_the_rest(ops: list[Op]) -> None:
    t = run_checked(ops)
    below = sum(1 for op in ops[1:] if op.args[0] < t.rma_end)
    assert below > RANGES_MAX or t.rma_end < U64_MAX
    assert t.count == min(below, RANGES_MAX)
    assert t.refused == max(0, below - RANGES_MAX)


@settings(max_examples=200, deadline=None)
@given(op_sequences(), st.data())
def test_is_free_agrees_with_the_gaps(ops: list[Op], data: st.DataObject) -> None:
    """is_free(start, size) is 1 exactly when [start, start+size) lies in one gap."""
    t = run_checked(ops)
    for s, e in t.gaps():
        assert t.is_free(s, e - s).ret == 1
        if e < t.rma_end:
            assert t.is_free(s, e - s + 1).ret == 0
        if s > 0:
            assert t.is_free(s - 1, e - s + 1).ret == 0
    start = data.draw(st.integers(0, U64_MAX))
    size = data.draw(st.integers(1, U64_MAX))
    inside = any(s <= start and start + size <= e for s, e in t.gaps())
    assert t.is_free(start, size).ret == int(inside)


@settings(max_examples=200, deadline=None)
@given(op_sequences())
def test_largest_gap_and_gap_after_last_agree_with_the_gaps(ops: list[Op]) -> None:
    t = run_checked(ops)
    gaps = t.gaps()
    res = t.largest_gap()
    if not gaps:
        assert res == OpResult(NOSPACE, (0, 0))
    else:
        assert res.ret == OK and res.out in gaps
        widest = max(e - s for s, e in gaps)
        assert res.out[1] - res.out[0] == widest
        assert res.out == min(g for g in gaps if g[1] - g[0] == widest)
    after = t.gap_after_last()
    if gaps and gaps[-1][1] == t.rma_end:       # then it starts at the last entry's end
        assert after == OpResult(OK, gaps[-1])
    else:
        assert after == OpResult(NOSPACE, (0, 0))


def test_the_model_runs_20000_operations_a_second() -> None:
    import time

    ops = [Op("init", (0x100000000,))]
    for i in range(2000):
        ops.append(Op("add", ((i * 0x7919000) % 0xF0000000, 0x3000 + (i % 7) * 0x1000)))
        ops.append(Op("is_free", ((i * 0x1337000) % 0x100000000, 0x1000)))
        ops.append(Op("largest_gap"))
        ops.append(Op("gap_after_last"))
        if i % 50 == 0:
            ops.append(Op("init", (0x100000000,)))
    t = RangeTable()
    began = time.perf_counter()
    for op in ops:
        t.apply(op)
    rate = len(ops) / (time.perf_counter() - began)
    assert rate > 20000, f"only {rate:.0f} operations per second"
