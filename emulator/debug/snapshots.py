"""The inspector: what the guest looked like at the moments a failure
report needs, taken while the guest is there, cheaply.

At each GuestEvent (the watch's first store into a region), at the
hand-off and at the stop it copies the registers, the stack from r1 up
(STACK bytes) and the code around the PC.  Backtrace, disassembly and
symbols are computed from those copies only when asked (a report), so a
boot that passes pays a few memory reads.  It also gathers the facts of
the memory map (emulator/debug/memmap.py): RAM, what the chain-loader
loaded, the reserve map, the heap, the kernel's placement, the final tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from wrapper_model import RangeTableState

from ..checkers.rangetable import RangeTableView
from ..checkers.watch import Overwrite
from ..errors import CheckerError
from ..guest.addresses import LoadedImage
from ..guest.devicetree import DeviceTree, DeviceTreeError
from ..guest.machine import Machine
from ..guest.observer import CheckState, CheckStatus, Guest, GuestEvent, Handoff, RunOutcome
from ..guest.symbols import PcInfo, Symboliser
from .backtrace import Backtrace, Unwinder, read_registers
from .disasm import Disassembler, Instruction, image_bits
from .memmap import Block, MemoryMap

NAME = "debug"
STACK = 64 << 10          # bytes of stack copied from r1 up
CODE_BEFORE, CODE_AFTER = 12, 6     # instructions around the PC
MAX_EVENTS = 8


@dataclass
class Snapshot:
    """Registers and memory around one moment; the rest on demand."""
    key: str              # "event 0", "hand-off", "stop"
    kind: str
    detail: str
    registers: dict[str, int]
    stack: tuple[int, bytes]
    code: tuple[int, bytes]
    table: RangeTableState | None = None
    symbols: Symboliser | None = field(default=None, repr=False, compare=False)
    image: LoadedImage | None = field(default=None, repr=False, compare=False)
    bits: int = 64

    @property
    def pc(self) -> int:
        return self.registers["pc"]

    def _read(self, addr: int, size: int) -> bytes | None:
        for base, data in (self.stack, self.code):
            if base <= addr and addr + size <= base + len(data):
                return data[addr - base:addr - base + size]
        if self.image is not None:
            link = self.image.to_link(addr)
            if link is not None:
                data = self.image.elf.read(link, size)
                if len(data) == size:
                    return data
        return None

    @cached_property
    def backtrace(self) -> Backtrace:
        if self.symbols is None:
            return Backtrace(end="no symbols")
        return Unwinder(self.symbols, self._read, self.bits).backtrace(self.registers)

    @cached_property
    def disassembly(self) -> list[tuple[Instruction, PcInfo]]:
        base, data = self.code
        dis = Disassembler(self.bits)
        out = []
        for ins in dis.block(base, data):
            where = self.symbols.symbolise(ins.pc) if self.symbols is not None else \
                PcInfo(None, None, None, pc=ins.pc)
            out.append((ins, where))
        return out

    def disassembly_lines(self) -> list[str]:
        out = []
        for ins, where in self.disassembly:
            mark = "=>" if ins.pc == self.pc else "  "
            out.append(f"{mark} 0x{ins.pc:x}  {where.symbol:<28s} {ins.word:08x}  {ins.text}")
        return out

    def register_lines(self) -> list[str]:
        r = self.registers
        out = []
        for row in range(0, 32, 4):
            out.append("  ".join(f"r{i:<2d} {r[f'r{i}']:016x}" for i in range(row, row + 4)))
        out.append(f"pc  {r['pc']:016x}  lr  {r['lr']:016x}  ctr {r['ctr']:016x}  "
                   f"msr {r['msr']:016x}")
        out.append(f"cr  {r['cr']:08x}          xer {r['xer']:016x}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "detail": self.detail,
                "registers": self.registers, "backtrace": self.backtrace.to_json(),
                "disassembly": [{**i.to_json(), "where": w.to_json()}
                                for i, w in self.disassembly],
                "range_table": None if self.table is None else
                [list(e) for e in self.table.used()]}


@dataclass
class MapFacts:
    """What the memory map is drawn from (guest addresses, [start, end))."""
    ram: list[tuple[int, int]] = field(default_factory=list)
    image: tuple[str, int, int] = ("image", 0, 0)
    dtb: tuple[int, int] = (0, 0)
    initrd: tuple[int, int] | None = None
    reserves: list[tuple[int, int]] = field(default_factory=list)
    heap: tuple[int, int] | None = None
    kernel_at: int | None = None
    kernel_size: int | None = None
    final_dtb: tuple[int, int] | None = None
    handed_initrd: tuple[int, int] | None = None

    def memory_map(self, overwrites: Sequence[Overwrite] = (), title: str = "") -> MemoryMap:
        ram = [Block("RAM", s, e, "ram") for s, e in self.ram]
        name, istart, iend = self.image
        common = [Block(name, istart, iend, "image"),
                  Block("input tree", self.dtb[0], self.dtb[1], "tree")]
        if self.initrd is not None:
            common.append(Block("initrd", self.initrd[0], self.initrd[1], "initrd"))
        reserves = [Block(f"reserve {i}", s, e, "reserve")
                    for i, (s, e) in enumerate(self.reserves) if e > s]
        after = list(ram) + common
        if self.heap is not None:
            after.append(Block("heap", self.heap[0], self.heap[1], "heap"))
        if self.kernel_size:
            if self.kernel_at:
                after.append(Block("kernel image", self.kernel_at,
                                   self.kernel_at + self.kernel_size, "kernel"))
            if self.final_dtb is not None or self.kernel_at is not None:
                after.append(Block("kernel footprint", 0, self.kernel_size, "footprint"))
        if self.final_dtb is not None:
            after.append(Block("final tree", self.final_dtb[0], self.final_dtb[1], "tree"))
        if self.handed_initrd is not None and self.handed_initrd != self.initrd:
            after.append(Block("initrd (handed on)", self.handed_initrd[0],
                               self.handed_initrd[1], "initrd"))
        after += reserves
        for o in overwrites:
            after.append(Block(f"overwrite: {o.region}", o.address, max(o.last, o.address + 1),
                               "overwrite"))
        blocks_before = list(ram) + common + reserves
        return MemoryMap([b for b in blocks_before if b.end > b.start],
                         [b for b in after if b.end > b.start], title)

    def to_json(self) -> dict[str, Any]:
        return {"ram": [list(r) for r in self.ram], "image": list(self.image),
                "dtb": list(self.dtb), "initrd": None if self.initrd is None else list(self.initrd),
                "reserves": [list(r) for r in self.reserves],
                "heap": None if self.heap is None else list(self.heap),
                "kernel_at": self.kernel_at, "kernel_size": self.kernel_size,
                "final_dtb": None if self.final_dtb is None else list(self.final_dtb),
                "handed_initrd": None if self.handed_initrd is None else list(self.handed_initrd)}


@dataclass
class DebugFindings:
    snapshots: list[Snapshot] = field(default_factory=list)
    facts: MapFacts = field(default_factory=MapFacts)

    @property
    def status(self) -> CheckStatus:
        return CheckStatus(NAME, CheckState.NOT_A_CHECK,
                           f"{len(self.snapshots)} snapshot(s) for reports")

    def snapshot(self, key: str) -> Snapshot | None:
        return next((s for s in self.snapshots if s.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {"snapshots": [{"key": s.key, "kind": s.kind, "detail": s.detail,
                               "pc": s.pc} for s in self.snapshots],
                "map": self.facts.to_json()}


class Inspector:
    """Observer: snapshots at every event (first MAX_EVENTS), the hand-off
    and the stop, and the memory map's facts."""

    name = NAME

    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []
        self.facts = MapFacts()
        self.view: RangeTableView | None = None

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        self.machine = guest.machine
        self.bits = image_bits(guest.image)
        try:
            self.view = RangeTableView(guest.image)
        except CheckerError:
            self.view = None
        f = self.facts
        f.ram = list(guest.machine.ram)
        span = guest.image.span
        ours = guest.image.has_symbol("_start_image") and guest.image.has_symbol("bw_stop")
        f.image = ("wrapper" if ours else f"image {guest.image.elf.path.name}",
                   span.address, span.end)
        f.dtb = (guest.dtb.address, guest.dtb.end)
        if guest.initrd is not None and guest.initrd.size:
            f.initrd = (guest.initrd.address, guest.initrd.end)
        try:
            f.reserves = [(a, min(a + s, 2**64)) for a, s in
                          DeviceTree(guest.dtb_blob, "input tree").reserves()]
        except DeviceTreeError:
            f.reserves = []
        if guest.kernel is not None:
            f.kernel_size = guest.kernel.size
        guest.on_event(self._event)
        guest.on_handoff(self._handoff)

    def _event(self, ev: GuestEvent) -> None:
        if ev.index < MAX_EVENTS:
            self.snapshots.append(self._take(f"event {ev.index}", ev.kind, ev.detail, ev.pc))

    def _handoff(self, handoff: Handoff) -> None:
        self.snapshots.append(self._take("hand-off", "hand-off",
                                         f"the jump to the kernel at 0x{handoff.entry:x}",
                                         None))
        f = self.facts
        f.kernel_at = handoff.kernel
        f.heap = self._heap()
        final = self.guest.final_dtb
        if final is not None:
            f.final_dtb = (handoff.dtb, handoff.dtb + len(final))
            try:
                f.handed_initrd = DeviceTree(final, "final tree").chosen_initrd()
            except DeviceTreeError:
                f.handed_initrd = None

    def finish(self, guest: Guest, run: RunOutcome) -> DebugFindings:
        self.snapshots.append(self._take("stop", run.reason, run.message, run.pc))
        if guest.handoff is None:
            self.facts.heap = self._heap()
        return DebugFindings(list(self.snapshots), self.facts)

    def _heap(self) -> tuple[int, int] | None:
        if self.view is None:
            return None
        state = self.view.read_ranges(self.machine)
        if state is None or not state.heap_end:
            return None
        return state.heap_start, state.heap_end

    def _take(self, key: str, kind: str, detail: str, pc: int | None) -> Snapshot:
        m = self.machine
        regs = read_registers(m)
        if pc is not None:
            regs["pc"] = pc
        return Snapshot(key, kind, detail, regs, _copy(m, regs["r1"], STACK),
                        _copy(m, regs["pc"] - 4 * CODE_BEFORE, 4 * (CODE_BEFORE + CODE_AFTER)),
                        self.view.read_ranges(m) if self.view is not None else None,
                        self.guest.symbols, self.guest.image, self.bits)


def _copy(m: Machine, addr: int, size: int) -> tuple[int, bytes]:
    """Up to size bytes from addr, clipped to the RAM block addr is in."""
    for base, end in m.ram:
        if base <= addr < end:
            return addr, m.read(addr, min(size, end - addr))
        if addr < base < addr + size:       # starts below RAM: from its start
            return base, m.read(base, min(addr + size, end) - base)
    return addr, b""


__all__ = ["DebugFindings", "Inspector", "MapFacts", "NAME", "Snapshot"]
