"""Calling the wrapper's C functions from Python (emulator/calls.py).

Expected values are worked out from docs/memranges.md and the ABI, not
taken from running the code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.guest.addresses import LoadedImage
from emulator.guest.calling import (
    CallBudgetExhausted,
    CallSetupError,
    ContextSnapshot,
    GuestCaller,
    GuestFault,
    RegionSnapshot,
    signed32,
)
from emulator.guest.elf import ElfImage
from emulator.guest.machine import Machine
from emulator.harness.firmware import FirmwareBuild
from emulator.harness.range_harness import HARNESS_BASE, RangeHarness

U64_MAX = (1 << 64) - 1


@pytest.fixture(scope="module")
def wrapper_elf() -> Path:
    return FirmwareBuild().ensure_built().wrapper_elf


def make_caller(elf_path: Path, startup: bool = True) -> tuple[GuestCaller, Machine, ElfImage]:
    elf = ElfImage(elf_path)
    image = LoadedImage(elf, HARNESS_BASE)
    scratch = (image.span.end + 0xFFFF) & ~0xFFFF
    m = Machine([(image.span.address, image.span.size), (scratch, 0x10000)])
    for addr, data in image.segments():
        m.write(addr, data)
    c = GuestCaller(m, image, scratch=scratch)
    if startup:
        c.start_up()
    return c, m, elf


@pytest.fixture(scope="module")
def guest(wrapper_elf):
    c, m, elf = make_caller(wrapper_elf)
    yield c, m, elf
    elf.close()


def table(m: Machine, elf: ElfImage) -> tuple[int, list[tuple[int, int]]]:
    addr = LoadedImage(elf, HARNESS_BASE).symbol_address("ranges")
    raw = m.read(addr, 32 + 16 * 32)
    count = int.from_bytes(raw[24:28], "big")
    entries = [(int.from_bytes(raw[32 + 16 * i:40 + 16 * i], "big"),
                int.from_bytes(raw[40 + 16 * i:48 + 16 * i], "big")) for i in range(count)]
    return count, entries


def test_signed32_reads_the_low_word_as_a_c_int():
    assert signed32(0xFFFF_FFFF_FFFF_FFFD) == -3
    assert signed32(0x0000_0000_FFFF_FFFF) == -1
    assert signed32(0x1_0000_0005) == 5
    assert signed32(0x7FFF_FFFF) == 0x7FFF_FFFF


def test_arguments_go_in_r3_r4_and_the_result_comes_back_in_r3(guest):
    c, m, elf = guest
    c.call("ranges_init", 0x100000)
    assert c.call_int("ranges_add", 0x3000, 0x1000) == 0
    assert c.call_int("ranges_add", 0x1000, 0x1000) == 0
    assert table(m, elf) == (2, [(0x1000, 0x2000), (0x3000, 0x4000)])
    # end < start: -RANGES_ERR_INVERTED, both as a C int and as the raw register
    assert c.call_int("ranges_add_span", 0x5000, 0x4000) == -2
    assert c.call("ranges_add_span", 0x5000, 0x4000) == U64_MAX - 1
    assert c.call_int("ranges_is_free", 0x2000, 0x1000) == 1
    assert c.call_int("ranges_is_free", 0x1800, 0x1000) == 0


def test_full_64_bit_arguments_survive_the_call(guest):
    c, m, elf = guest
    c.call("ranges_init", U64_MAX)
    # a range ending exactly at 2^64 is valid; one byte further overflows
    assert c.call_int("ranges_add", U64_MAX, 1) == 0
    assert c.call_int("ranges_add", U64_MAX, 2) == -1
    # clipped at rma_end = 2^64 - 1: nothing at or above it is recorded
    assert table(m, elf) == (0, [])
    assert c.call_int("ranges_add", U64_MAX - 0x1000, 0x1000) == 0
    assert table(m, elf) == (1, [(U64_MAX - 0x1000, U64_MAX)])


def test_out_parameter_in_the_scratch_area(guest):
    c, m, elf = guest
    c.call("ranges_init", 0x10000)
    c.call("ranges_add", 0x0, 0x2000)
    c.call("ranges_add", 0x8000, 0x2000)
    # gaps [0x2000, 0x8000) and [0xa000, 0x10000) are equally large: the lower wins
    c.fill_out(b"\xa5" * 16)
    assert c.call_int("ranges_largest_gap", c.out()) == 0
    raw = c.read_out(16)
    assert (int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")) == (0x2000, 0x8000)


def test_a_hang_ends_in_budget_exhausted(guest):
    c, m, elf = guest
    c.call("ranges_init", 0x10000)
    # ranges_add over a table takes dozens of instructions: 5 is too few
    with pytest.raises(CallBudgetExhausted) as e:
        c.call("ranges_add", 0x1000, 0x1000, budget=5)
    assert e.value.stop.reason == "budget"
    assert "ranges_add" in str(e.value)
    # the caller is still usable afterwards
    assert c.call_int("ranges_is_free", 0x0, 0x10000) == 1


def test_a_bad_pointer_is_a_guest_fault(guest):
    c, m, elf = guest
    c.call("ranges_init", 0x10000)
    with pytest.raises(GuestFault) as e:
        c.call("ranges_largest_gap", 0x10)     # not RAM in this machine
    assert e.value.stop.reason == "exception"


def test_calls_before_start_up_are_refused(wrapper_elf):
    c, m, elf = make_caller(wrapper_elf, startup=False)
    try:
        with pytest.raises(CallSetupError, match="relocations"):
            c.call("ranges_init", 0x1000)
        with pytest.raises(CallSetupError, match="no symbol"):
            c.target("no_such_function")
    finally:
        elf.close()


def test_region_and_context_snapshots_restore_the_table(guest):
    c, m, elf = guest
    addr = HARNESS_BASE + elf.symbol("ranges").value
    size = elf.symbol("ranges").size
    c.call("ranges_init", 0x100000)
    c.call("ranges_add", 0x1000, 0x1000)
    for snap in (RegionSnapshot(m, [(addr, size)]), ContextSnapshot(m)):
        before = m.read(addr, size)
        c.call("ranges_add", 0x5000, 0x1000)
        assert m.read(addr, size) != before
        snap.restore()
        assert m.read(addr, size) == before
        assert table(m, elf) == (1, [(0x1000, 0x2000)])


def test_demand_paging_lets_realloc_copy_anywhere(wrapper_elf):
    h = RangeHarness(wrapper_elf, mirror=False)
    try:
        c = h.caller
        heap = 0x7000_0000_0000_0000
        c.call("simple_alloc_init", heap, 0x100000)
        p = c.call("malloc", 0x1000)
        assert p == heap
        q = c.call("realloc", p, 0x2000)       # needs a new block: copies 0x1000 bytes
        assert q == heap + 0x1000
        assert set(c.demand_pages) == {heap, heap + 0x1000}
        assert h.caller.drop_demand_pages() == 2
    finally:
        h.close()
