"""The reference prediction for a boot, and the comparison with what ran.

inputs_for_boot() reads docs/kexec.md's inputs off a prepared Boot (the
tree as handed over, the composed image, the kernel ELF); the prediction
itself (wrapper_model.placement) sees only those numbers.  compare() puts
a BootResult — and the guest's final `ranges` table, read from memory —
next to the Prediction and lists every difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wrapper_model.layout import decode_range_table
from wrapper_model.placement import (
    FATAL_DTB, FATAL_HEAP, FATAL_INITRD_ALLOC, FATAL_INITRD_INVERTED,
    FATAL_INITRD_MOVE, FATAL_KERNEL, FATAL_KERNEL_RESERVE, FATAL_KNOWN_RANGE,
    FATAL_NO_RMA, PlacementInputs, Prediction, predict)
from wrapper_model.ranges import RangeTableState

from .devicetree import DeviceTree, DeviceTreeError
from .dwarf_layout import struct_layout

if TYPE_CHECKING:
    from .boot import Boot, BootResult


def inputs_for_boot(b: "Boot") -> PlacementInputs | None:
    """The model's inputs for a prepared boot; None when the tree handed
    over cannot be read (the model has nothing to say about a broken tree)."""
    try:
        tree = DeviceTree(b.dtb_in, "device tree as handed over")
        memory = tuple(tree.memory())
        reserves = tuple(tree.reserves())
        initrd = tree.chosen_initrd()
    except DeviceTreeError:
        return None
    totalsize = int.from_bytes(b.dtb_in[4:8], "big")
    start, end = b.wrapper.span
    sc = b.scenario
    return PlacementInputs(
        memory=memory,
        wrapper_at=b.layout.wrapper.address, image_size=end - start,
        dtb_at=b.layout.dtb.address, dtb_size=totalsize,
        kernel_size=b.kernel_size,
        initrd_start=initrd[0] if initrd else None,
        initrd_end=initrd[1] if initrd else None,
        reserves=reserves,
        attached_initrd_size=len(sc.attached_initrd or b""),
        policy=b.firmware.policy)


def read_range_table(b: "Boot") -> RangeTableState | None:
    """The guest's `ranges` as it is now (after the run)."""
    layout = struct_layout(b.wrapper.path, "ranges")
    addr = b.base + b.wrapper.symbol("ranges").value
    if not b.machine.in_ram(addr, layout.size):
        return None
    return decode_range_table(b.machine.read(addr, layout.size), layout)


# A guest's fatal message -> the model's kind of fatal stop.  The patterns
# are the wrapper's own wording, kept loose (a word or two per step).
FATAL_PATTERNS: dict[str, str] = {
    FATAL_NO_RMA: r"no /memory block starts at address 0",
    FATAL_INITRD_INVERTED: r"initrd.*(end.*(below|before)|inverted)",
    FATAL_KNOWN_RANGE: r"cannot record (?!.*kernel)",
    FATAL_KERNEL_RESERVE: r"cannot (record|keep|reserve).*kernel",
    FATAL_HEAP: r"heap",
    FATAL_KERNEL: r"kernel|vmlinux",
    FATAL_INITRD_MOVE: r"initrd",
    FATAL_INITRD_ALLOC: r"initrd",
    FATAL_DTB: r"device tree",
}


def fatal_matches(kind: str, message: str) -> bool:
    return re.search(FATAL_PATTERNS[kind], message, re.IGNORECASE) is not None


@dataclass
class Comparison:
    matches: bool
    mismatches: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.matches:
            return "matches the reference prediction"
        return "differs from the reference prediction: " + "; ".join(self.mismatches)


def _hx(v: int | None) -> str:
    return "none" if v is None else f"0x{v:x}"


def _table_text(t: RangeTableState) -> str:
    used = ", ".join(f"0x{s:x}..0x{e:x}" for s, e in t.used())
    return (f"rma_end 0x{t.rma_end:x} heap 0x{t.heap_start:x}..0x{t.heap_end:x} "
            f"count {t.count} refused {t.refused} [{used}]")


def compare(p: Prediction, r: "BootResult",
            table: RangeTableState | None = None) -> Comparison:
    """Every way the boot differs from the prediction.  `table` is the
    guest's final range table (None: not compared)."""
    out: list[str] = []
    if p.fatal is None:
        if r.handoff is None:
            out.append(f"outcome: predicted a hand-off to the kernel, got {r.exit} "
                       f"({r.message})")
    elif r.handoff is not None:
        out.append(f"outcome: predicted fatal ({p.fatal}: {p.fatal_detail}), "
                   f"got a hand-off to the kernel")
    elif r.exit != "fatal":
        out.append(f"outcome: predicted fatal ({p.fatal}: {p.fatal_detail}), "
                   f"got {r.exit} ({r.message})")
    elif not fatal_matches(p.fatal, r.message):
        out.append(f"outcome: predicted fatal ({p.fatal}: {p.fatal_detail}), "
                   f"got {r.message!r}")
    if table is not None and p.table is not None and table != p.table:
        out.append(f"range table: predicted {_table_text(p.table)}, "
                   f"got {_table_text(table)}")
    if p.fatal is None and r.handoff is not None:
        # The wrapper's placements, as handed on: r4, r3 and the final
        # tree's /chosen (whatever the kernel then does with them).
        if r.handoff.kernel != p.kernel:
            out.append(f"kernel: predicted {_hx(p.kernel)}, got {_hx(r.handoff.kernel)}")
        if r.handoff.dtb != p.dtb:
            out.append(f"device tree: predicted {_hx(p.dtb)}, got {_hx(r.handoff.dtb)}")
        want = None if p.initrd is None else (p.initrd.address, p.initrd.size)
        got = None if r.initrd is None else (r.initrd.address, r.initrd.size)
        if want != got:
            def txt(v):
                return "none" if v is None else f"0x{v[0]:x} (0x{v[1]:x} bytes)"
            out.append(f"initrd: predicted {txt(want)}, got {txt(got)}")
    return Comparison(not out, out)


def watch_handoff(b: "Boot") -> None:
    """Snapshots the guest's range table at the jump to the kernel (the
    kernel's copy of itself to 0 may overwrite the wrapper afterwards).
    Call before the run: hooks added later are not seen."""
    b.model_table = None

    def snap(handoff) -> None:
        b.model_table = read_range_table(b)
    b.on_handoff(snap)


def check_boot(b: "Boot", r: "BootResult") -> None:
    """Fills r.prediction, r.comparison and r.matches_model after a run
    (left None when the model has nothing to say: a broken tree, or a run
    stopped early on request).  The table compared is the one at the
    hand-off (watch_handoff) or, with no hand-off, the one left in memory."""
    if r.exit == "handoff":
        return
    inputs = inputs_for_boot(b)
    if inputs is None:
        return
    p = predict(inputs)
    if r.handoff is not None:
        table = getattr(b, "model_table", None)
    else:
        table = read_range_table(b)
    c = compare(p, r, table)
    r.prediction = p
    r.comparison = c
    r.matches_model = c.matches
