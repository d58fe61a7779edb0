"""The protected-range watch: stores into memory that is still needed.

While the wrapper runs, and after it has handed over until the kernel has
reported, some memory must not be written (docs/kexec.md, "What the
emulator protects"): the wrapper's own text, read-only data and payload,
the input device tree, the chain-loader's initrd, every reserve-map range,
the final device tree and the initrd as handed on, and anything outside
RAM.  Each such store is caught as it happens and recorded as an Overwrite
with its PC, function and source line, and the wrapper's range table at
that moment.  The first store into each region is announced to the guest's
event listeners (Guest.event) while the guest is still in it, so that a
debugging observer can take its backtrace and recent instructions then.

Cost: one UC_HOOK_MEM_WRITE per region, each bound to the region's address
range (from MAX_STORE - 1 bytes before it: Unicorn matches a store by its
first byte, and a doubleword starting just below a region writes into
it), so a store elsewhere calls no Python.  Regions known only at the
hand-off (the final tree, the initrd as handed on) get their hooks from
the hand-off's code hook.  That works in Unicorn 2.1.4 because stores are
matched against the hook list when they execute, not when they are
translated, once any write hook existed at translation time (the hooks
installed here before the run ensure that); the translation cache is
flushed as well so that nothing translated earlier can miss them.

A hit does not stop the run (the kernel's own report then shows the
damage), except a store outside RAM, which Unicorn faults on anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unicorn import UC_HOOK_MEM_WRITE, UC_HOOK_MEM_WRITE_UNMAPPED, Uc
from unicorn import ppc_const as P

from ..errors import CheckerError
from ..guest.addresses import LoadedImage
from ..guest.devicetree import DeviceTree, DeviceTreeError, reserve_map
from ..guest.elf import SourceLocation
from ..guest.observer import CheckState, CheckStatus, Guest, Handoff, RunOutcome
from .rangetable import RangeTableView

NAME = "watch"

WRAPPER, KERNEL = "wrapper", "kernel"
ALWAYS = frozenset({WRAPPER, KERNEL})
OUTSIDE_RAM = "outside RAM"
#: The widest store a PowerPC instruction makes (stq; a doubleword for the
#: GPR stores GCC emits).
MAX_STORE = 16


@dataclass
class ProtectedRegion:
    """[start, end) must not be written while the run is in one of phases."""
    name: str
    start: int
    end: int
    phases: frozenset[str]
    #: Words inside the region its owner may write: the image's own
    #: relocation targets (guest addresses), written once as it starts.
    relocated: frozenset[int] = frozenset()

    def __str__(self) -> str:
        return (f"{self.name} 0x{self.start:x}..0x{self.end:x} "
                f"({', '.join(sorted(self.phases))})")


@dataclass
class Overwrite:
    """Stores by one instruction into one protected region (coalesced: a
    copy loop is one entry with its first address, bytes and count)."""
    region: str
    address: int          # the first store's address
    size: int             # bytes written, all stores together
    pc: int
    function: str | None
    file: str | None
    line: int | None
    phase: str            # "wrapper" or "kernel"
    count: int = 1
    last: int = 0         # one past the highest byte written
    #: The range table's used entries at the first store; None when the
    #: image has no range table bwemu can read (a foreign wrapper).
    ranges: list[tuple[int, int]] | None = field(default_factory=list)
    heap: tuple[int, int] | None = None
    #: The store's PC symbolised (guest.symbols): str() is func+0x10 (file:line).
    location: SourceLocation | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.location is not None:
            where = str(self.location)
        else:
            where = (f"{self.function or '?'} "
                     f"({f'{self.file}:{self.line}' if self.file else '?'})")
        stores = f"{self.count} stores, " if self.count > 1 else ""
        return (f"{self.region}: {stores}0x{self.size:x} bytes from "
                f"0x{self.address:x} (up to 0x{self.last:x}) by pc 0x{self.pc:x} "
                f"{where} during the {self.phase} phase")


@dataclass
class WatchFindings:
    """The regions the watch protected and every store that hit one."""
    attached: bool
    regions: list[ProtectedRegion] = field(default_factory=list)
    overwrites: list[Overwrite] = field(default_factory=list)
    why_not: str | None = None

    @property
    def status(self) -> CheckStatus:
        if not self.attached:
            return CheckStatus(NAME, CheckState.NOT_ATTACHED, self.why_not or "")
        if self.overwrites:
            first = self.overwrites[0]
            more = f" and {len(self.overwrites) - 1} more" if len(self.overwrites) > 1 else ""
            return CheckStatus(NAME, CheckState.FAILED,
                               f"{first.region} written at 0x{first.address:x} by "
                               f"{first.function or '?'}{more}")
        return CheckStatus(NAME, CheckState.PASSED,
                           f"no store into {len(self.regions)} protected regions")

    def to_json(self) -> dict[str, Any]:
        return {"attached": self.attached, "why_not": self.why_not,
                "regions": [{"name": r.name, "start": r.start, "end": r.end,
                             "phases": sorted(r.phases)} for r in self.regions],
                "overwrites": [overwrite_json(o) for o in self.overwrites]}


def overwrite_json(o: Overwrite) -> dict[str, Any]:
    """One hit as plain data."""
    return {"region": o.region, "address": o.address, "size": o.size, "pc": o.pc,
            "function": o.function, "file": o.file, "line": o.line, "phase": o.phase,
            "count": o.count, "end": o.last,
            "symbol": None if o.location is None else str(o.location),
            "ranges": None if o.ranges is None else [list(e) for e in o.ranges],
            "heap": None if o.heap is None else list(o.heap)}


class Watch:
    """Observer: builds the protected regions of a boot and hooks them."""

    name = NAME

    def __init__(self) -> None:
        self.phase = WRAPPER
        self.regions: list[ProtectedRegion] = []
        self.overwrites: list[Overwrite] = []
        self._by_key: dict[tuple[int, str], Overwrite] = {}
        self._announced: set[str] = set()
        self._table: RangeTableView | None = None

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        self.machine = guest.machine
        try:
            self._table = RangeTableView(guest.image)
        except CheckerError:
            self._table = None     # a hit then shows no range table
        for region in self._initial_regions():
            self._protect(region)
        self.machine.uc.hook_add(UC_HOOK_MEM_WRITE_UNMAPPED, self._unmapped)
        guest.on_handoff(self._handoff)

    def finish(self, guest: Guest, run: RunOutcome) -> WatchFindings:
        return WatchFindings(True, list(self.regions), list(self.overwrites))

    # --- the regions -------------------------------------------------------

    def _initial_regions(self) -> list[ProtectedRegion]:
        g = self.guest
        out = _image_regions(g.image)
        out.append(ProtectedRegion("input device tree", g.dtb.address, g.dtb.end,
                                   frozenset({WRAPPER})))
        if g.initrd is not None and g.initrd.size > 0:
            # Also protected in the kernel phase if it is handed on as it is
            # (decided at the hand-off).
            out.append(ProtectedRegion("initrd (from the chain-loader)",
                                       g.initrd.address, g.initrd.end,
                                       frozenset({WRAPPER})))
        # The reserve map as the spec reads it; a broken map gives what
        # could be read (the wrapper's own error is then the point of the run).
        for i, (addr, size) in enumerate(reserve_map(self.guest.dtb_blob)):
            if size > 0:
                out.append(ProtectedRegion(f"reserve map entry {i}", addr,
                                           min(addr + size, 2**64), ALWAYS))
        return out

    def _protect(self, region: ProtectedRegion) -> None:
        if region.end <= region.start:
            # Nothing to protect; and to Unicorn a hook whose begin is past
            # its end covers every address.
            return
        self.regions.append(region)

        def hook(uc: Uc, access: int, address: int, size: int, value: int,
                 user: object) -> None:
            if address + size > region.start:      # not a store ending before it
                self._hit(region, uc.reg_read(P.UC_PPC_REG_PC), address, size)
        # Unicorn matches a store by its first byte: one that starts up to
        # MAX_STORE - 1 bytes before the region still writes into it.
        self.machine.uc.hook_add(UC_HOOK_MEM_WRITE, hook,
                                 begin=max(region.start - (MAX_STORE - 1), 0),
                                 end=region.end - 1)

    def _handoff(self, handoff: Handoff) -> None:
        """The wrapper jumps to the kernel: from here on the final tree and
        the initrd as handed on are protected, the wrapper's things not.
        (Hooks added now are seen: store hooks already exist, and Boot
        flushes the translation cache after this.)"""
        self.phase = KERNEL
        dtb = handoff.dtb
        final = self.guest.final_dtb
        if final is not None:
            self._protect(ProtectedRegion("final device tree", dtb, dtb + len(final),
                                          frozenset({KERNEL})))
        span = None
        if final is not None:
            try:
                span = DeviceTree(final, "final device tree").chosen_initrd()
            except DeviceTreeError:
                span = None
        if span and span[1] > span[0]:
            loader = next((r for r in self.regions
                           if r.name.startswith("initrd (from")), None)
            if loader is not None and (loader.start, loader.end) == span:
                loader.phases = ALWAYS
            else:
                self._protect(ProtectedRegion("initrd (as handed on)", span[0], span[1],
                                              frozenset({KERNEL})))

    # --- hits ----------------------------------------------------------------

    def _hit(self, region: ProtectedRegion, pc: int, address: int, size: int) -> None:
        if self.phase not in region.phases or address in region.relocated:
            return
        key = (pc, region.name)
        ow = self._by_key.get(key)
        if ow is not None:
            ow.size += size
            ow.count += 1
            ow.last = max(ow.last, address + size)
            return
        loc = self.locate(pc)
        ow = Overwrite(region.name, address, size, pc, loc.function, loc.file,
                       loc.line, self.phase, last=address + size, location=loc)
        ow.ranges, ow.heap = self._range_table()
        self._by_key[key] = ow
        self.overwrites.append(ow)
        if region.name not in self._announced:
            self._announced.add(region.name)
            self.guest.event("overwrite", pc, f"first store into {region.name}: "
                             f"0x{size:x} bytes at 0x{address:x} by pc 0x{pc:x} {loc}")

    def _unmapped(self, uc: Uc, access: int, address: int, size: int, value: int,
                  user: object) -> bool:
        region = ProtectedRegion(OUTSIDE_RAM, address, address + size, ALWAYS)
        self._hit(region, uc.reg_read(P.UC_PPC_REG_PC), address, size)
        return False   # let Unicorn fault: there is nothing to store into

    # --- where a store came from --------------------------------------------

    def locate(self, pc: int) -> SourceLocation:
        """Function+offset and line, through the guest's one symboliser: the
        wrapper, and after the hand-off the kernel where it was placed and
        at its link address (where it copies itself)."""
        return self.guest.symbols.symbolise(pc)

    def _range_table(self) -> tuple[list[tuple[int, int]] | None, tuple[int, int] | None]:
        """The wrapper's `ranges` as it is in guest memory now: its used
        entries (None: no table in this image) and the heap (None before
        ranges_init_malloc)."""
        if self._table is None:
            return None, None
        state = self._table.read_ranges(self.machine)
        if state is None:
            return [], None
        used = [(s, e) for s, e in state.entries[:min(state.count, len(state.entries))]]
        heap = (state.heap_start, state.heap_end) if state.heap_end else None
        return used, heap


def _image_regions(image: LoadedImage) -> list[ProtectedRegion]:
    """What the image must not write while it runs.  Our wrapper: .text,
    .rodata and .kernel, one run from _start_image up to _initrd_end
    (firmware/wrapper.lds), with .data and .bss after it.  Any other ELF:
    each allocated section that is not writable, by name.  A raw image:
    nothing (nothing says which of its bytes are code)."""
    only_wrapper = frozenset({WRAPPER})
    if image.has_symbol("_start_image") and image.has_symbol("_initrd_end"):
        return [ProtectedRegion("wrapper text, rodata and payload",
                                image.symbol_address("_start_image"),
                                image.symbol_address("_initrd_end"), only_wrapper)]
    relocated = frozenset(image.to_guest(a) for a in image.elf.relocation_targets)
    return [ProtectedRegion(f"image {name}", image.to_guest(addr),
                            image.to_guest(addr) + size, only_wrapper, relocated)
            for name, addr, size in image.elf.readonly_sections()]


__all__ = ["KERNEL", "OUTSIDE_RAM", "Overwrite", "ProtectedRegion", "WRAPPER", "Watch",
           "WatchFindings", "overwrite_json"]
