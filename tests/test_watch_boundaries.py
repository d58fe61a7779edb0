"""The watch's regions, byte for byte: every kind of protected region is
hit at its first and at its last byte, and not one byte outside either end.

Each boot makes the guest itself store single bytes (tests/guest_stores.py):
in the wrapper's phase from start_wrapper's first instruction, in the
kernel's from its entry.  The regions' extents come from what the test
knows independently of the watch: the linker's symbols, where the
scenario loaded things, the reserve map it wrote, the tree handed on as
read from memory, the RAM the tree describes.
"""

from __future__ import annotations

import libfdt
import pytest

from emulator import Boot, MemoryTree, default_scenario
from emulator.guest.observer import Handoff
from guest_stores import STD_R9, hits, stores_in_kernel, stores_in_wrapper

MiB = 1 << 20
RESERVES = ((0x800_0000, 0x1000), (0x900_0000, 0x2001))


def scenario(**changes):
    return default_scenario().replace(dtb=MemoryTree(reserves=RESERVES).build(), **changes)


def around(start: int, end: int) -> list[int]:
    """One byte before, the first, the last, one byte after [start, end)."""
    return [start - 1, start, end - 1, end]


def totalsize(blob: bytes) -> int:
    return int.from_bytes(blob[4:8], "big")


# --- the wrapper's phase ------------------------------------------------------------


def _wrapper_text(b: Boot) -> tuple[int, int]:
    return b.image.symbol_address("_start_image"), b.image.symbol_address("_initrd_end")


def _input_tree(b: Boot) -> tuple[int, int]:
    at = b.layout.dtb.address
    return at, at + totalsize(b.machine.read(at, 8))


def _loaders_initrd(b: Boot) -> tuple[int, int]:
    return b.layout.initrd.address, b.layout.initrd.end


WRAPPER_PHASE = {
    "wrapper text, rodata and payload": _wrapper_text,
    "input device tree": _input_tree,
    "initrd (from the chain-loader)": _loaders_initrd,
    "reserve map entry 0": lambda b: (RESERVES[0][0], sum(RESERVES[0])),
    "reserve map entry 1": lambda b: (RESERVES[1][0], sum(RESERVES[1])),
}


@pytest.mark.parametrize("region", list(WRAPPER_PHASE))
def test_wrapper_phase_store_hits_region_at_first_and_last_byte_only(region):
    b = Boot(scenario())
    start, end = WRAPPER_PHASE[region](b)
    stores_in_wrapper(b, around(start, end))
    r = b.run()
    assert r.exit == "exception", r.message           # the stores ran, then the trap
    assert hits(r.overwrites, region) == {start, end - 1}, r.overwrites
    assert all(o.phase == "wrapper" for o in r.overwrites)


@pytest.mark.parametrize("region", list(WRAPPER_PHASE))
def test_a_doubleword_store_reaching_into_a_region_from_below_is_caught(region):
    """Unicorn matches a store by its first byte: one starting up to 7
    bytes before the region still writes its first bytes."""
    b = Boot(scenario())
    start, end = WRAPPER_PHASE[region](b)
    stores_in_wrapper(b, [start - 8, start - 7, start - 1, end - 1], STD_R9)
    r = b.run()
    assert r.exit == "exception", r.message
    assert hits(r.overwrites, region) == {start - 7, start - 1, end - 1}, r.overwrites


# --- the kernel's phase --------------------------------------------------------------


def _final_tree(h: Handoff, final: bytes) -> tuple[int, int]:
    return h.dtb, h.dtb + totalsize(final)


def _handed_on_initrd(h: Handoff, final: bytes) -> tuple[int, int]:
    fdt = libfdt.Fdt(final)
    chosen = fdt.path_offset("/chosen")
    return (fdt.getprop(chosen, "linux,initrd-start").as_uint64(),
            fdt.getprop(chosen, "linux,initrd-end").as_uint64())


KERNEL_PHASE = {
    # region: (scenario changes, extent at the hand-off)
    "final device tree": ({}, _final_tree),
    # attached to the image: the kernel gets it where the heap put it
    "initrd (as handed on)": ({"initrd": None, "attached_initrd": bytes(range(256)) * 24 + b"x"},
                              _handed_on_initrd),
    # handed on where the chain-loader put it: protected in both phases
    "initrd (from the chain-loader)": ({}, _handed_on_initrd),
    "reserve map entry 0": ({}, lambda h, f: (RESERVES[0][0], sum(RESERVES[0]))),
    "reserve map entry 1": ({}, lambda h, f: (RESERVES[1][0], sum(RESERVES[1]))),
}


@pytest.mark.parametrize("region", list(KERNEL_PHASE))
def test_kernel_phase_store_hits_region_at_first_and_last_byte_only(region):
    changes, extent = KERNEL_PHASE[region]
    b = Boot(scenario(**changes))
    seen: list[tuple[int, int]] = []

    def addresses(h: Handoff, final: bytes | None) -> list[int]:
        assert final is not None
        seen.append(extent(h, final))
        return around(*seen[0])
    stores_in_kernel(b, addresses)
    r = b.run()
    assert r.exit == "exception", r.message
    start, end = seen[0]
    assert hits(r.overwrites, region) == {start, end - 1}, r.overwrites
    assert all(o.phase == "kernel" for o in r.overwrites)


# --- outside RAM ------------------------------------------------------------------------


def test_store_just_past_the_end_of_ram_is_outside_ram_and_the_last_byte_of_ram_is_not():
    b = Boot(scenario())
    top = 256 * MiB
    stores_in_wrapper(b, [top - 1, top])      # the first faults only after the second
    r = b.run()
    assert r.exit == "exception"
    assert hits(r.overwrites, "outside RAM") == {top}, r.overwrites
    assert [o.address for o in r.overwrites] == [top]


def test_store_at_the_last_byte_of_a_hole_between_memory_blocks_is_outside_ram():
    blocks = ((0, 256 * MiB), (512 * MiB, 256 * MiB))
    b = Boot(default_scenario().replace(dtb=MemoryTree(memory=blocks).build()))
    hole_end = 512 * MiB
    stores_in_wrapper(b, [hole_end, hole_end - 1])
    r = b.run()
    assert r.exit == "exception"
    assert [o.address for o in r.overwrites] == [hole_end - 1]
    assert r.overwrites[0].region == "outside RAM"


def test_kernel_phase_store_outside_ram_is_reported():
    b = Boot(scenario())
    stores_in_kernel(b, lambda h, f: [256 * MiB])
    r = b.run()
    assert r.exit == "exception"
    [ow] = r.overwrites
    assert (ow.region, ow.address, ow.phase) == ("outside RAM", 256 * MiB, "kernel")
