"""Stores made to order by the guest itself, for the watch's boundary tests.

A checker must be shown to fail through the guest, not by editing it.  So
these helpers write a few instructions over code the boot is about to run
(start_wrapper's entry: the wrapper's phase; the kernel's entry, at the
hand-off: the kernel's phase), each storing one byte at an address chosen
by the test, and then a trap, which ends the run ("exception").

The encodings are the Power ISA's (checked against binutils' objdump):
lis/ori/sldi/oris/ori build a 64-bit address in r9, stb r9,0(r9) stores
its low byte there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from emulator.checkers.watch import Overwrite
from emulator.guest.observer import Handoff
from emulator.harness.boot import Boot

LIS_R9 = 0x3D20_0000        # addis r9, 0, imm
ORI_R9 = 0x6129_0000        # ori r9, r9, imm
ORIS_R9 = 0x6529_0000       # oris r9, r9, imm
SLDI_R9_32 = 0x7929_07C6    # rldicr r9, r9, 32, 31
STB_R9 = 0x9929_0000        # stb r9, 0(r9)
STD_R9 = 0xF929_0000        # std r9, 0(r9): 8 bytes
TRAP = 0x7FE0_0008          # tw 31, 0, 0


def store_bytes(addresses: Sequence[int], store: int = STB_R9) -> bytes:
    """Code storing one byte (or, with STD_R9, a doubleword) at each
    address, in order, then a trap."""
    words: list[int] = []
    for a in addresses:
        words += [LIS_R9 | (a >> 48) & 0xFFFF, ORI_R9 | (a >> 32) & 0xFFFF, SLDI_R9_32,
                  ORIS_R9 | (a >> 16) & 0xFFFF, ORI_R9 | a & 0xFFFF, store]
    words.append(TRAP)
    return b"".join(w.to_bytes(4, "big") for w in words)


def stores_in_wrapper(b: Boot, addresses: Sequence[int], store: int = STB_R9) -> None:
    """The wrapper's first C code becomes the stores (before the run)."""
    b.machine.write(b.image.local_entry("start_wrapper"), store_bytes(addresses, store))


def stores_in_kernel(b: Boot,
                     addresses_of: Callable[[Handoff, bytes | None], Sequence[int]]) -> None:
    """At the hand-off, the kernel's first instructions become the stores;
    addresses_of(handoff, final_dtb) gives the addresses then (the final
    tree's place is known only at the hand-off).  The checkers' own
    hand-off listeners, attached earlier, have read the kernel image by then."""
    def patch(h: Handoff) -> None:
        b.machine.write(h.entry, store_bytes(addresses_of(h, b.guest.final_dtb)))
    b.guest.on_handoff(patch)


def hits(overwrites: Sequence[Overwrite], region: str) -> set[int]:
    """The addresses the watch reported in the region of that name."""
    return {o.address for o in overwrites if o.region == region}
