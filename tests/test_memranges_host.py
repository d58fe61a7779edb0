"""memranges.c and simple_alloc.c, built for the host with ASan and UBSan.

One test per behaviour of docs/memranges.md.  Every expected value below
was worked out by hand from that document, not taken from running the code.
The last tests rebuild the C with each deliberate FAULT_* and show that a
behaviour test here fails against it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from native import SENTINEL, HostRanges
from tests.hostc import build_host_tool

U64_MAX = (1 << 64) - 1
OK, OVERFLOW, INVERTED, FULL, NOSPACE, NOHEAP = 0, -1, -2, -3, -4, -5
FREE, USED = 0, 1
SOURCES = ["memranges.c", "simple_alloc.c"]


def build_driver(*defines: str) -> Path:
    return build_host_tool("ranges_driver", SOURCES, defines=defines)


@pytest.fixture(scope="module")
def driver() -> Path:
    return build_driver()


@pytest.fixture
def h(driver):
    with HostRanges(driver) as host:
        yield host


def used(h) -> list[tuple[int, int]]:
    return h.dump().ranges.used


def raw(h) -> tuple[bytes, bytes]:
    state = h.dump()
    return state.ranges.raw, state.heap.raw


def fill_table(h, first: int = 0) -> None:
    """32 one-page entries, one page apart: [first + 2k pages, +1 page)."""
    for i in range(32):
        assert h.add(first + i * 0x2000, 0x1000) == OK
    assert h.dump().ranges.count == 32


# -- state and init ---------------------------------------------------------

def test_state_is_all_zero_before_init(h):
    ranges, heap = raw(h)
    assert ranges == bytes(544)
    assert heap == bytes(800)


def test_init_zeroes_everything_and_stores_rma_end(h):
    h.init(0x1000000)
    h.add(0x800000, 0x1000)
    assert h.init_malloc() == OK
    h.init(0x5000)
    ranges, _ = raw(h)
    assert ranges == (0x5000).to_bytes(8, "big") + bytes(536)


def test_dump_is_big_endian_guest_layout(h):
    h.init(0x0102030405060708)
    h.add(0x1000, 0x1000)
    ranges, _ = raw(h)
    assert ranges[0:8] == bytes.fromhex("0102030405060708")
    assert ranges[24:32] == bytes.fromhex("00000001 00000000")
    assert ranges[32:48] == bytes.fromhex("0000000000001000 0000000000002000")


# -- ranges_add -------------------------------------------------------------

def test_add_zero_size_is_a_no_op(h):
    h.init(0x10000)
    assert h.add(0x100, 0) == OK
    assert h.dump().ranges.count == 0


def test_add_records_a_range(h):
    h.init(0x100000)
    assert h.add(0x1000, 0x2000) == OK
    assert used(h) == [(0x1000, 0x3000)]


def test_add_keeps_entries_sorted(h):
    h.init(0x100000)
    for start in (0x5000, 0x1000, 0x3000):
        assert h.add(start, 0x1000) == OK
    assert used(h) == [(0x1000, 0x2000), (0x3000, 0x4000), (0x5000, 0x6000)]


def test_add_merges_touching_ranges(h):
    h.init(0x100000)
    assert h.add(0x1000, 0x1000) == OK
    assert h.add(0x2000, 0x1000) == OK     # touches from above
    assert h.add(0x800, 0x800) == OK       # touches from below
    assert used(h) == [(0x800, 0x3000)]


def test_add_merges_overlapping_ranges(h):
    h.init(0x100000)
    h.add(0x1000, 0x2000)
    assert h.add(0x2000, 0x2000) == OK
    assert used(h) == [(0x1000, 0x4000)]


def test_add_bridges_two_entries_it_touches(h):
    h.init(0x100000)
    h.add(0x1000, 0x1000)
    h.add(0x3000, 0x1000)
    assert h.add(0x2000, 0x1000) == OK
    assert used(h) == [(0x1000, 0x4000)]


def test_add_inside_an_entry_changes_nothing(h):
    h.init(0x100000)
    h.add(0x1000, 0x4000)
    before = raw(h)
    assert h.add(0x2000, 0x1000) == OK
    assert raw(h) == before


def test_add_absorbs_every_entry_it_spans(h):
    h.init(0x100000)
    for start in (0x1000, 0x3000, 0x5000, 0x8000):
        h.add(start, 0x1000)
    # [0x1800, 0x5800) overlaps the first and third, covers the second
    assert h.add(0x1800, 0x4000) == OK
    assert used(h) == [(0x1000, 0x6000), (0x8000, 0x9000)]


def test_unused_entries_are_zero_after_merge(h):
    h.init(0x100000)
    for start in (0x1000, 0x3000, 0x5000, 0x8000):
        h.add(start, 0x1000)
    h.add(0x1800, 0x4000)
    table = h.dump().ranges
    assert table.count == 2
    assert table.raw[32 + 2 * 16:] == bytes(30 * 16)


def test_add_clips_at_rma_end(h):
    h.init(0x10000)
    assert h.add(0xF000, 0x5000) == OK
    assert used(h) == [(0xF000, 0x10000)]


def test_add_above_rma_end_is_ignored(h):
    h.init(0x10000)
    assert h.add(0x10000, 0x1000) == OK
    assert h.add(0x20000, 0x1000) == OK
    assert h.dump().ranges.count == 0


def test_add_rejects_range_past_2_64(h):
    h.init(U64_MAX)
    h.add(0x1000, 0x1000)
    before = raw(h)
    assert h.add(U64_MAX, 2) == OVERFLOW
    assert h.add(2, U64_MAX) == OVERFLOW
    assert h.add(U64_MAX, U64_MAX) == OVERFLOW
    assert raw(h) == before


def test_add_accepts_range_ending_exactly_at_2_64(h):
    h.init(U64_MAX)
    # ends at 2^64: valid, clipped to rma_end
    assert h.add(0x1000, (1 << 64) - 0x1000) == OK
    assert used(h) == [(0x1000, U64_MAX)]
    # last byte 2^64 - 1 lies at rma_end: valid and not tracked
    assert h.add(U64_MAX, 1) == OK
    assert h.add(1, U64_MAX) == OK
    assert used(h) == [(1, U64_MAX)]


def test_add_checks_overflow_before_rma_end(h):
    h.init(0x1000)
    assert h.add(U64_MAX, 2) == OVERFLOW


def test_zero_rma_end_records_nothing(h):
    h.init(0)
    assert h.add(0, 0x1000) == OK
    assert h.dump().ranges.count == 0


def test_33rd_distinct_range_is_refused_and_counted(h):
    h.init(0x100000)
    fill_table(h)
    before, heap_before = raw(h)
    assert h.add(0x50000, 0x1000) == FULL
    table = h.dump().ranges
    assert (table.count, table.refused) == (32, 1)
    assert h.add(0x60000, 0x1000) == FULL
    table = h.dump().ranges
    assert table.count == 32
    assert table.refused == 2
    # nothing but the refused counter (bytes 28..32) changed
    assert table.raw[:28] == before[:28]
    assert table.raw[32:] == before[32:]
    assert raw(h)[1] == heap_before


def test_merge_into_full_table_succeeds(h):
    h.init(0x100000)
    fill_table(h)
    # [0x1000, 0x2000) touches entries 0 and 1: they become one
    assert h.add(0x1000, 0x1000) == OK
    table = h.dump().ranges
    assert table.count == 31
    assert table.refused == 0
    assert table.used[:2] == [(0x0, 0x3000), (0x4000, 0x5000)]
    assert table.used[-1] == (0x3E000, 0x3F000)
    assert table.entries[31] == (0, 0)


def test_extending_an_entry_of_a_full_table_succeeds(h):
    h.init(0x100000)
    fill_table(h)
    assert h.add(0x3F000, 0x1000) == OK
    table = h.dump().ranges
    assert (table.count, table.refused) == (32, 0)
    assert table.used[-1] == (0x3E000, 0x40000)


# -- ranges_add_span --------------------------------------------------------

def test_add_span_adds_half_open_range(h):
    h.init(0x100000)
    assert h.add_span(0x1000, 0x3000) == OK
    assert used(h) == [(0x1000, 0x3000)]


def test_add_span_rejects_inverted_range(h):
    h.init(0x100000)
    assert h.add_span(0x2000, 0x1FFF) == INVERTED
    assert h.dump().ranges.count == 0


def test_add_span_of_equal_ends_is_a_no_op(h):
    h.init(0x100000)
    assert h.add_span(0x2000, 0x2000) == OK
    assert h.dump().ranges.count == 0


# -- ranges_is_free ---------------------------------------------------------

def test_is_free_of_zero_bytes_is_true_up_to_rma_end(h):
    h.init(0x10000)
    h.add(0x4000, 0x2000)
    assert h.is_free(0x5000, 0) == 1        # inside an entry: still free
    assert h.is_free(0x10000, 0) == 1
    assert h.is_free(0x10001, 0) == 0


def test_is_free_is_false_on_overlap_and_true_when_touching(h):
    h.init(0x10000)
    h.add(0x4000, 0x2000)
    assert h.is_free(0x3000, 0x1000) == 1
    assert h.is_free(0x3000, 0x1001) == 0
    assert h.is_free(0x6000, 0x1000) == 1
    assert h.is_free(0x5FFF, 1) == 0
    assert h.is_free(0x3000, 0x4000) == 0   # covers the entry whole


def test_is_free_is_false_past_rma_end(h):
    h.init(0x10000)
    assert h.is_free(0xF000, 0x1000) == 1
    assert h.is_free(0xF000, 0x1001) == 0


def test_is_free_is_false_past_2_64(h):
    h.init(U64_MAX)
    assert h.is_free(U64_MAX - 1, 1) == 1
    assert h.is_free(U64_MAX, 1) == 0
    assert h.is_free(2, U64_MAX) == 0


# -- gaps -------------------------------------------------------------------

def test_largest_gap_of_empty_table_is_all_memory(h):
    h.init(0x10000)
    g = h.largest_gap()
    assert (g.ret, g.start, g.end) == (OK, 0, 0x10000)


def test_largest_gap_includes_the_tail_up_to_rma_end(h):
    h.init(0x10000)
    h.add(0x1000, 0x1000)
    g = h.largest_gap()
    assert (g.ret, g.start, g.end) == (OK, 0x2000, 0x10000)


def test_largest_gap_ties_go_to_lowest(h):
    h.init(0x10000)
    h.add(0x0, 0x1000)
    h.add(0x2000, 0x1000)
    h.add(0x4000, 0xC000)
    # gaps [0x1000, 0x2000) and [0x3000, 0x4000), equal
    g = h.largest_gap()
    assert (g.ret, g.start, g.end) == (OK, 0x1000, 0x2000)


def test_largest_gap_without_a_gap_writes_zero_and_fails(h):
    h.init(0x10000)
    h.add(0, 0x10000)
    g = h.largest_gap()
    assert (g.ret, g.start, g.end) == (NOSPACE, 0, 0)


def test_largest_gap_with_zero_rma_end_fails(h):
    h.init(0)
    g = h.largest_gap()
    assert (g.ret, g.start, g.end) == (NOSPACE, 0, 0)


def test_gap_after_last_starts_at_end_of_last_entry(h):
    h.init(0x10000)
    h.add(0x1000, 0x1000)
    h.add(0x8000, 0x1000)
    g = h.gap_after_last()
    assert (g.ret, g.start, g.end) == (OK, 0x9000, 0x10000)


def test_gap_after_last_of_empty_table_starts_at_zero(h):
    h.init(0x10000)
    g = h.gap_after_last()
    assert (g.ret, g.start, g.end) == (OK, 0, 0x10000)


def test_gap_after_last_is_empty_when_last_entry_reaches_rma_end(h):
    h.init(0x10000)
    h.add(0x8000, 0x8000)
    g = h.gap_after_last()
    assert (g.ret, g.start, g.end) == (NOSPACE, 0, 0)


def test_gap_queries_change_nothing(h):
    h.init(0x10000)
    h.add(0x1000, 0x1000)
    before = raw(h)
    h.largest_gap()
    h.gap_after_last()
    h.is_free(0, 0x1000)
    assert raw(h) == before


# -- ranges_init_malloc -----------------------------------------------------

def test_init_malloc_avoids_chunk_at_zero(h):
    h.init(0x1000000)
    h.add(0x800000, 0x1000)
    # gap at 0 is 0x800000 long, the one after 0x801000 only 0x7ff000
    assert h.init_malloc() == OK
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0x801000, 0x1000000)
    assert state.ranges.used == [(0x800000, 0x1000000)]     # merged
    assert (state.heap.base, state.heap.end, state.heap.next) == \
        (0x801000, 0x1000000, 0x801000)
    assert state.heap.nrecords == 0


def test_init_malloc_falls_back_to_gap_at_zero(h):
    h.init(0x100000)
    h.add(0x80000, 0x80000)
    assert h.init_malloc() == OK
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0, 0x80000)
    assert state.ranges.used == [(0, 0x100000)]
    assert (state.heap.base, state.heap.end, state.heap.next) == (0, 0x80000, 0)


def test_init_malloc_rounds_heap_inward_to_pages(h):
    h.init(0x100000)
    h.add(0, 0x1800)
    h.add(0x80800, 0x7F800)
    # the only gap not at 0 is [0x1800, 0x80800)
    assert h.init_malloc() == OK
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0x2000, 0x80000)
    assert state.ranges.used == [(0, 0x1800), (0x2000, 0x80000), (0x80800, 0x100000)]
    assert (state.heap.base, state.heap.end) == (0x2000, 0x80000)


def test_init_malloc_accepts_exactly_the_minimum_heap(h):
    h.init(0x100000)
    h.add(0, 0x1000)
    h.add(0x11000, 0xEF000)
    assert h.init_malloc() == OK
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0x1000, 0x11000)
    assert state.ranges.used == [(0, 0x100000)]


def test_init_malloc_refuses_gap_below_minimum(h):
    h.init(0x100000)
    h.add(0, 0x1000)
    h.add(0x10800, 0xEF800)
    # [0x1000, 0x10800) rounds to [0x1000, 0x10000): one page short
    before = raw(h)
    assert h.init_malloc() == NOSPACE
    assert raw(h) == before


def test_init_malloc_does_not_try_a_smaller_gap(h):
    h.init(0x100000)
    h.add(0, 0x1001)
    h.add(0x11FFF, 0xE001)
    h.add(0x30000, 0xD0000)
    # largest gap [0x1001, 0x11fff) rounds to [0x2000, 0x11000), too small;
    # the smaller [0x20000, 0x30000) would do, but is not tried
    before = raw(h)
    assert h.init_malloc() == NOSPACE
    assert raw(h) == before


def test_init_malloc_with_no_gap_fails(h):
    h.init(0x100000)
    h.add(0, 0x100000)
    before = raw(h)
    assert h.init_malloc() == NOSPACE
    assert raw(h) == before


def test_init_malloc_with_zero_rma_end_fails(h):
    h.init(0)
    assert h.init_malloc() == NOSPACE


def test_init_malloc_again_moves_the_heap_and_resets_it(h):
    h.init(0x1000000)
    h.add(0x800000, 0x1000)
    assert h.init_malloc() == OK                   # [0x801000, 0x1000000)
    assert h.malloc(0x1000) == 0x801000
    assert h.init_malloc() == OK                   # only the gap at 0 is left
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0, 0x800000)
    assert state.ranges.used == [(0, 0x1000000)]
    assert state.heap.raw == (0x800000).to_bytes(16, "big") + bytes(784)


def test_init_malloc_into_full_table_is_refused_and_changes_only_refused(h):
    h.init(0x200000)
    for i in range(30):
        h.add(i * 0x2000, 0x1000)
    h.add(0x3C000, 0x800)
    h.add(0x100800, 0xFF800)
    assert h.dump().ranges.count == 32
    # largest gap not at 0: [0x3c800, 0x100800) -> heap [0x3d000, 0x100000),
    # which touches no entry, so adding it is refused, and so is the call
    before, heap_before = raw(h)
    assert h.init_malloc() == FULL
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0, 0)
    assert (state.ranges.count, state.ranges.refused) == (32, 1)
    # nothing but the refused counter (bytes 28..32) changed
    assert state.ranges.raw[:28] == before[:28]
    assert state.ranges.raw[32:] == before[32:]
    assert state.heap.raw == heap_before == bytes(len(heap_before))


def test_init_malloc_refused_for_full_table_keeps_the_earlier_heap(h):
    h.init(0x1000000)
    h.add(0x800800, 0x800)
    assert h.init_malloc() == OK                   # [0x801000, 0x1000000)
    assert h.malloc(0x1000) == 0x801000
    # 31 half-page entries below: [0x1000, 0x1800) ... [0x3d000, 0x3d800)
    for i in range(31):
        assert h.add(0x2000 * i + 0x1000, 0x800) == OK
    assert h.dump().ranges.count == 32
    # widest gap not at 0: [0x3d800, 0x800800) -> heap [0x3e000, 0x800000),
    # touching neither [0x3d000, 0x3d800) nor [0x800800, 0x1000000)
    before, heap_before = raw(h)
    assert h.init_malloc() == FULL
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0x801000, 0x1000000)
    assert state.ranges.refused == 1
    assert state.ranges.raw[:28] == before[:28]
    assert state.ranges.raw[32:] == before[32:]
    assert state.heap.raw == heap_before
    # the allocator carries on in the first heap
    assert h.malloc(0x1000) == 0x802000


def test_init_malloc_into_full_table_succeeds_when_the_heap_merges(h):
    h.init(0x100000)
    fill_table(h)
    # widest gap not at 0: [0x3f000, 0x100000), already page aligned; the
    # heap touches the last entry [0x3e000, 0x3f000) and merges with it
    assert h.init_malloc() == OK
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0x3F000, 0x100000)
    assert (state.ranges.count, state.ranges.refused) == (32, 0)
    assert state.ranges.used[-1] == (0x3E000, 0x100000)
    assert (state.heap.base, state.heap.end, state.heap.next) == \
        (0x3F000, 0x100000, 0x3F000)


# -- ranges_vmlinux_alloc ---------------------------------------------------

def test_vmlinux_alloc_at_zero_when_free(h):
    h.init(0x1000000)
    h.add(0x800000, 0x1000)
    r = h.vmlinux_alloc(0x400000)
    assert (r.ret, r.addr) == (OK, 0)
    assert used(h) == [(0, 0x400000), (0x800000, 0x801000)]


def test_vmlinux_alloc_at_zero_merges_with_touching_entry(h):
    h.init(0x1000000)
    h.add(0x800000, 0x1000)
    r = h.vmlinux_alloc(0x800000)
    assert (r.ret, r.addr) == (OK, 0)
    assert used(h) == [(0, 0x801000)]


def test_vmlinux_alloc_without_heap_is_refused(h):
    h.init(0x1000000)
    h.add(0, 0x1000)
    before = raw(h)
    r = h.vmlinux_alloc(0x1000)
    assert (r.ret, r.addr) == (NOHEAP, SENTINEL)
    assert raw(h) == before


def _heap_from_tied_gaps(h):
    """Heap [0x1000, 0x800000), the lower of two equal gaps."""
    h.init(0x1000000)
    h.add(0, 0x1000)
    h.add(0x800000, 0x1000)
    assert h.init_malloc() == OK
    state = h.dump()
    assert (state.ranges.heap_start, state.ranges.heap_end) == (0x1000, 0x800000)
    assert state.ranges.used == [(0, 0x801000)]


def test_vmlinux_alloc_falls_back_to_malloc(h):
    _heap_from_tied_gaps(h)
    table_before = h.dump().ranges.raw
    r = h.vmlinux_alloc(0x2345)
    assert (r.ret, r.addr) == (OK, 0x1000)
    state = h.dump()
    assert state.heap.used == [(0x1000, 0x3000, USED)]
    assert state.heap.next == 0x4000
    assert state.ranges.raw == table_before      # the heap is already occupied


def test_vmlinux_alloc_too_big_for_heap_is_nospace(h):
    _heap_from_tied_gaps(h)
    before = raw(h)
    r = h.vmlinux_alloc(0x800000)
    assert (r.ret, r.addr) == (NOSPACE, SENTINEL)
    assert raw(h) == before


def test_vmlinux_alloc_of_zero_bytes_is_at_zero_and_changes_nothing(h):
    h.init(0x1000000)
    h.add(0, 0x1000)
    before = raw(h)
    r = h.vmlinux_alloc(0)
    assert (r.ret, r.addr) == (OK, 0)
    assert raw(h) == before


def test_vmlinux_alloc_at_zero_into_full_table_is_refused_without_trying_the_heap(h):
    h.init(0x1000000)
    h.add(0x800800, 0x800)
    assert h.init_malloc() == OK                   # heap [0x801000, 0x1000000)
    # 31 more entries [0x2000, 0x3000) ... [0x3e000, 0x3f000)
    for i in range(31):
        assert h.add(0x2000 * i + 0x2000, 0x1000) == OK
    assert h.dump().ranges.count == 32
    # [0, 0x1000) is free and touches nothing: its add is refused
    before, heap_before = raw(h)
    r = h.vmlinux_alloc(0x1000)
    assert (r.ret, r.addr) == (FULL, SENTINEL)
    state = h.dump()
    assert state.ranges.refused == 1
    assert state.ranges.raw[:28] == before[:28]
    assert state.ranges.raw[32:] == before[32:]
    assert state.heap.raw == heap_before           # no block was taken
    assert state.heap.nrecords == 0


def test_vmlinux_alloc_at_zero_into_full_table_succeeds_when_it_touches_an_entry(h):
    h.init(0x1000000)
    fill_table(h, first=0x2000)
    # [0, 0x2000) touches the first entry [0x2000, 0x3000): they merge
    r = h.vmlinux_alloc(0x2000)
    assert (r.ret, r.addr) == (OK, 0)
    table = h.dump().ranges
    assert (table.count, table.refused) == (32, 0)
    assert table.used[0] == (0, 0x3000)


def test_vmlinux_alloc_with_heap_at_zero_uses_malloc(h):
    h.init(0x100000)
    h.add(0x80000, 0x80000)
    assert h.init_malloc() == OK                   # heap [0, 0x80000)
    # a heap exists (heap_end != 0) though heap_start is 0; its first
    # block is at 0, which malloc's caller cannot tell from NULL
    r = h.vmlinux_alloc(0x1000)
    assert (r.ret, r.addr) == (NOSPACE, SENTINEL)
    assert h.dump().heap.used == [(0, 0x1000, USED)]
    r = h.vmlinux_alloc(0x1000)
    assert (r.ret, r.addr) == (OK, 0x1000)


# -- ranges_strerror --------------------------------------------------------

def test_strerror_has_a_distinct_text_for_each_code(h):
    texts = [h.strerror(code) for code in (OK, OVERFLOW, INVERTED, FULL, NOSPACE, NOHEAP)]
    unknown = {h.strerror(code) for code in (-6, 1, 5, -1000)}
    assert all(texts)
    assert len(set(texts)) == 6
    assert len(unknown) == 1
    assert unknown.isdisjoint(texts)


# -- the heap ---------------------------------------------------------------

HEAP = 0x200000      # low enough for the driver to back it with host memory


def test_heap_init_sets_bounds_and_zeroes_records(h):
    h.heap_init(HEAP, 0x10000)
    h.malloc(0x1000)
    h.heap_init(HEAP + 0x1000, 0x8000)
    heap = h.dump().heap
    assert (heap.base, heap.end, heap.next, heap.nrecords, heap.pad) == \
        (HEAP + 0x1000, HEAP + 0x9000, HEAP + 0x1000, 0, 0)
    assert heap.raw[24:] == bytes(800 - 24)


def test_malloc_of_zero_returns_null_and_changes_nothing(h):
    h.heap_init(HEAP, 0x10000)
    before = raw(h)
    assert h.malloc(0) == 0
    assert raw(h) == before


def test_malloc_rounds_size_up_to_granule(h):
    h.heap_init(HEAP, 0x10000)
    assert h.malloc(1) == HEAP
    assert h.malloc(0x1000) == HEAP + 0x1000
    assert h.malloc(0x1001) == HEAP + 0x2000
    heap = h.dump().heap
    assert heap.used == [(HEAP, 0x1000, USED), (HEAP + 0x1000, 0x1000, USED),
                         (HEAP + 0x2000, 0x2000, USED)]
    assert (heap.nrecords, heap.next) == (3, HEAP + 0x4000)


def test_malloc_reuses_freed_record_first_fit(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x3000)
    b = h.malloc(0x1000)
    c = h.malloc(0x2000)
    assert (a, b, c) == (HEAP, HEAP + 0x3000, HEAP + 0x4000)
    h.free(a)
    h.free(c)
    assert h.malloc(0x2000) == a           # first fit, not best fit
    heap = h.dump().heap
    assert heap.used == [(HEAP, 0x3000, USED), (HEAP + 0x3000, 0x1000, USED),
                         (HEAP + 0x4000, 0x2000, FREE)]
    assert (heap.nrecords, heap.next) == (3, HEAP + 0x6000)


def test_malloc_skips_freed_records_too_small(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x1000)
    h.free(a)
    assert h.malloc(0x1800) == HEAP + 0x1000
    heap = h.dump().heap
    assert heap.used == [(HEAP, 0x1000, FREE), (HEAP + 0x1000, 0x2000, USED)]


def test_malloc_fails_when_heap_is_exhausted(h):
    h.heap_init(HEAP, 0x3000)
    assert h.malloc(0x2000) == HEAP
    before = raw(h)
    assert h.malloc(0x2000) == 0
    assert raw(h) == before
    assert h.malloc(0x1000) == HEAP + 0x2000     # exactly fills it
    assert h.dump().heap.next == HEAP + 0x3000


def test_malloc_fails_after_32_records_until_one_is_freed(h):
    h.heap_init(HEAP, 0x100000)
    blocks = [h.malloc(1) for _ in range(32)]
    assert blocks == [HEAP + i * 0x1000 for i in range(32)]
    before = raw(h)
    assert h.malloc(1) == 0
    assert raw(h) == before
    h.free(blocks[7])
    assert h.malloc(1) == blocks[7]


def test_malloc_of_huge_size_fails_without_wrapping(h):
    h.heap_init(HEAP, 0x10000)
    before = raw(h)
    assert h.malloc(U64_MAX) == 0
    assert h.malloc(U64_MAX - 0xFFE) == 0       # rounds up to exactly 2^64
    assert raw(h) == before


def test_free_marks_record_free_and_keeps_it(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x1000)
    h.malloc(0x1000)
    h.free(a)
    heap = h.dump().heap
    assert heap.used == [(HEAP, 0x1000, FREE), (HEAP + 0x1000, 0x1000, USED)]
    assert heap.next == HEAP + 0x2000


def test_free_of_unknown_or_free_pointer_changes_nothing(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x2000)
    b = h.malloc(0x1000)
    h.free(b)
    before = raw(h)
    h.free(0)
    h.free(a + 0x1000)     # inside a block, not its base
    h.free(b)              # already free
    assert raw(h) == before


def test_realloc_of_null_acts_as_malloc(h):
    h.heap_init(HEAP, 0x10000)
    assert h.realloc(0, 0x1800) == HEAP
    assert h.dump().heap.used == [(HEAP, 0x2000, USED)]


def test_realloc_to_zero_frees_and_returns_null(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x1000)
    assert h.realloc(a, 0) == 0
    assert h.dump().heap.used == [(HEAP, 0x1000, FREE)]


def test_realloc_within_block_returns_same_pointer(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x1800)
    before = raw(h)
    assert h.realloc(a, 0x2000) == a
    assert h.realloc(a, 1) == a            # never shrinks
    assert raw(h) == before


def test_realloc_grows_into_new_block_and_copies_old_block(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x1000)
    h.poke(a, b"\xde\xad\xbe\xef")
    h.poke(a + 0xFFC, b"\x01\x02\x03\x04")
    q = h.realloc(a, 0x1001)
    assert q == HEAP + 0x1000
    assert h.peek(q, 4) == b"\xde\xad\xbe\xef"
    assert h.peek(q + 0xFFC, 4) == b"\x01\x02\x03\x04"
    heap = h.dump().heap
    assert heap.used == [(HEAP, 0x1000, FREE), (HEAP + 0x1000, 0x2000, USED)]


def test_realloc_copies_whole_old_block_into_reused_record(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x3000)
    b = h.malloc(0x100)
    h.free(a)
    h.poke(b + 0xFFF, b"\x77")             # last byte of b's 0x1000 block
    assert h.realloc(b, 0x2000) == a       # first fit reuses a's record
    assert h.peek(a + 0xFFF, 1) == b"\x77"
    heap = h.dump().heap
    assert heap.used == [(HEAP, 0x3000, USED), (HEAP + 0x3000, 0x1000, FREE)]


def test_realloc_of_unknown_pointer_returns_null_and_changes_nothing(h):
    h.heap_init(HEAP, 0x10000)
    a = h.malloc(0x1000)
    before = raw(h)
    assert h.realloc(a + 0x800, 0x10) == 0     # inside a block, not its base
    assert raw(h) == before
    h.free(a)
    before = raw(h)
    assert h.realloc(a, 0x2000) == 0       # freed: no longer known
    assert raw(h) == before


def test_realloc_that_cannot_grow_keeps_old_block(h):
    h.heap_init(HEAP, 0x2000)
    a = h.malloc(0x1000)
    before = raw(h)
    assert h.realloc(a, 0x2000) == 0
    assert raw(h) == before
    assert h.dump().heap.used == [(HEAP, 0x1000, USED)]


def test_heap_at_zero_hands_out_null_first(h):
    # the spec's literal consequence: the block at 0 is returned as 0
    h.init(0x100000)
    h.add(0x80000, 0x80000)
    assert h.init_malloc() == OK
    assert h.malloc(1) == 0
    heap = h.dump().heap
    assert heap.used == [(0, 0x1000, USED)]
    assert heap.next == 0x1000
    assert h.malloc(1) == 0x1000


# -- the deliberate faults are caught -----------------------------------------

FAULT_CATCHERS = {
    "NO_MERGE_ADJACENT": (test_add_merges_touching_ranges,),
    "OVERFLOW_OFF_BY_ONE": (test_add_accepts_range_ending_exactly_at_2_64,),
    "STALE_TAIL": (test_unused_entries_are_zero_after_merge,),
    "FULL_CORRUPTS": (test_33rd_distinct_range_is_refused_and_counted,),
    "IGNORE_FULL": (test_init_malloc_into_full_table_is_refused_and_changes_only_refused,
                    test_init_malloc_refused_for_full_table_keeps_the_earlier_heap,
                    test_vmlinux_alloc_at_zero_into_full_table_is_refused_without_trying_the_heap),
}


@pytest.mark.parametrize("fault", sorted(FAULT_CATCHERS))
def test_fault_build_fails_a_behaviour_test(fault):
    """Each catcher, run against the faulty build, fails an assertion."""
    for check in FAULT_CATCHERS[fault]:
        with HostRanges(build_driver(f"FAULT_{fault}=1")) as faulty, \
                pytest.raises(AssertionError):
            check(faulty)
