"""The wrapper's range table and heap as they lie in guest memory.

All three checkers read them: the mirror after every operation, the watch
when a store hits protected memory, the model check at the hand-off.  The
objects are the globals `ranges` and `heap`; their layout comes from the
image's own DWARF (emulator/guest/dwarf.py) and their bytes are decoded by
the model's one table codec (wrapper_model/layout.py).
"""

from __future__ import annotations

from wrapper_model import HeapState, RangeTableState
from wrapper_model.layout import LayoutError, TableCodec

from ..errors import CheckerError
from ..guest.addresses import LoadedImage, Placement
from ..guest.dwarf import DwarfLayoutError, struct_layout
from ..guest.machine import Machine

#: The globals the wrapper keeps its range table and heap in.
RANGES_SYMBOL = "ranges"
HEAP_SYMBOL = "heap"


class RangeTableMissing(CheckerError):
    """The image has no range table bwemu can read (a foreign wrapper, a
    build without DWARF); the text says which part is missing."""


class RangeTableView:
    """Where `ranges` and `heap` are in the guest, and how to decode them."""

    def __init__(self, image: LoadedImage) -> None:
        for sym in (RANGES_SYMBOL, HEAP_SYMBOL):
            if not image.has_symbol(sym):
                raise RangeTableMissing(f"{image.elf.path.name} has no {sym!r} symbol "
                                        f"(not a wrapper with bwemu's range table)")
        try:
            ranges_layout = struct_layout(image.elf.path, RANGES_SYMBOL)
            heap_layout = struct_layout(image.elf.path, HEAP_SYMBOL)
            self.codec = TableCodec(ranges_layout, heap_layout)
        except (DwarfLayoutError, LayoutError) as e:
            raise RangeTableMissing(str(e)) from None
        self.ranges = Placement(image.symbol_address(RANGES_SYMBOL), ranges_layout.size)
        self.heap = Placement(image.symbol_address(HEAP_SYMBOL), heap_layout.size)

    def read_ranges(self, machine: Machine) -> RangeTableState | None:
        """The table as it is now; None when its memory is gone from RAM."""
        if not machine.in_ram(self.ranges.address, self.ranges.size):
            return None
        return self.codec.decode_ranges(machine.read(self.ranges.address, self.ranges.size))

    def read_heap(self, machine: Machine) -> HeapState | None:
        if not machine.in_ram(self.heap.address, self.heap.size):
            return None
        return self.codec.decode_heap(machine.read(self.heap.address, self.heap.size))


__all__ = ["HEAP_SYMBOL", "RANGES_SYMBOL", "RangeTableMissing", "RangeTableView"]
