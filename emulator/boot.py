"""The boot runner: scenario in, BootResult out.

Places the wrapper, device tree and initrd where the scenario says, sets the
entry registers as a chain-loader leaves them (r3 = tree, r4 = image
address, r5 = 0), runs on an instruction budget, and collects what happened.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Callable
from typing import Any

from .devices import (Console, Hypervisor, KernelReport, Uart16550,
                      EXCP_NAMES, EXCP_PROGRAM, EXCP_SYSCALL, initrd_checksum)
from .devicetree import DeviceTree, DeviceTreeError
from .elfimage import ElfImage, SourceLocation
from .image import FirmwareBuild
from .machine import Machine, Stop
from .scenario import Layout, Placement, Scenario, place
from .watch import Overwrite, Watch
from .mirror import Divergence, RangeMirror, RangeOp   # range-table mirror

DEFAULT_RAM = 256 << 20   # when the tree is too broken to say
FDT_MAGIC = bytes.fromhex("d00dfeed")
MAX_TREE = 16 << 20        # a larger "tree" at the hand-off is garbage


@dataclass(frozen=True)
class Handoff:
    """Registers at the wrapper's jump to the kernel."""
    dtb: int        # r3
    kernel: int     # r4
    entry: int      # where it jumped
    r5: int


@dataclass
class BootResult:
    scenario: str
    exit: str                      # "kernel", "fatal", "exception", "budget"
    message: str
    pc: int
    location: SourceLocation | None
    console: str
    layout: Layout
    handoff: Handoff | None = None
    kernel: Placement | None = None
    dtb: Placement | None = None
    initrd: Placement | None = None
    final_dtb: bytes | None = None
    kernel_report: KernelReport | None = None
    initrd_intact: bool | None = None
    instructions: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # Stores into protected memory (emulator/watch.py); empty when none.
    overwrites: list[Overwrite] = field(default_factory=list)
    # The reference prediction (emulator/predict.py), filled after the run:
    # matches_model is None when the model has nothing to say.
    prediction: Any = None
    comparison: Any = None
    matches_model: bool | None = None
    # --- range-table mirror (emulator/mirror.py) ---
    # Every outermost range-table operation of the run, in order, with the
    # guest's table after it (format with emulator.mirror.format_table);
    # the first disagreement with the model, if any (exit is "divergence").
    ranges: list[RangeOp] = field(default_factory=list)
    divergence: Divergence | None = None
    # --- end range-table mirror ---
    # Which checkers were attached (a silent one is not a passed one).
    mirrored: bool = False
    watched: bool = False

    @property
    def ok(self) -> bool:
        return self.exit == "kernel"


class Boot:
    """One boot in progress: the machine, its devices and its hooks."""

    def __init__(self, scenario: Scenario, firmware: FirmwareBuild | None = None,
                 *, watch: bool = True, mirror: bool = True):
        self.scenario = scenario
        self.firmware = firmware or FirmwareBuild(policy=scenario.policy)
        custom_kernel = scenario.kernel_bss is not None
        self.wrapper = ElfImage(self.firmware.compose(
            self.firmware.test_kernel(scenario.kernel_bss) if custom_kernel else None,
            scenario.attached_initrd, compressed=scenario.compressed_kernel))
        # The kernel ELF inside the image (for its size and its symbols).
        self.kernel_path = (self.firmware.test_kernel(scenario.kernel_bss)
                            if custom_kernel else self.firmware.kernel_elf)
        self.notes: list[str] = []
        try:
            self.tree: DeviceTree | None = DeviceTree(
                scenario.dtb, f"device tree of scenario {scenario.name!r}")
            ram = self.tree.memory()
        except DeviceTreeError as e:
            # Boot anyway: what the wrapper makes of a broken tree is the
            # point of such a scenario.  RAM then comes from the default.
            self.tree = None
            ram = [(0, DEFAULT_RAM)]
            self.notes.append(f"{e}; RAM defaulted to 0x{DEFAULT_RAM:x} bytes at 0 "
                              f"and the tree handed over as it is")
        if not ram:
            # No memory description: run anyway, so the wrapper's own
            # fatal message says what is missing.
            ram = [(0, DEFAULT_RAM)]
            self.notes.append(f"the tree describes no memory; RAM defaulted to "
                              f"0x{DEFAULT_RAM:x} bytes at 0")
        start, end = self.wrapper.span
        self.layout = place(scenario, ram, end - start)
        self.base = self.layout.wrapper.address - start
        dtb = scenario.dtb
        if scenario.initrd is not None and self.tree is not None:
            # As kexec-tools does: /chosen names the initrd it loaded.
            first = self.layout
            init = first.initrd
            dtb = self.tree.with_initrd(init.address, init.end)
            self.layout = dataclasses.replace(
                place(scenario.replace(dtb=dtb, dtb_at=first.dtb.address,
                                       wrapper_at=first.wrapper.address,
                                       initrd_at=init.address), ram, end - start),
                notes=first.notes)
        self.dtb_in = dtb
        self.stop_at_handoff = False

        self.machine = Machine(list(self.layout.ram))
        self.console = Console()
        self.hypervisor = Hypervisor(self.machine, self.console)
        con = self.tree.console() if self.tree is not None else None
        if con is not None and con.kind == "uart":
            Uart16550(self.machine, self.console, con.address, con.reg_shift,
                      con.io_width)
        self.handoff: Handoff | None = None
        self.final_dtb: bytes | None = None
        self._handoff_listeners: list[Callable[[Handoff], None]] = []
        self.stop_addr = self.base + self.wrapper.function_entry("bw_stop")
        self.machine.on_interrupt(self._interrupt)
        self.machine.on_code(self.base + self.wrapper.function_entry("bw_enter_kernel"),
                             self._enter_kernel)
        from .predict import watch_handoff   # the model's table snapshot
        watch_handoff(self)
        self.watch = Watch(self) if watch else None
        # --- range-table mirror: hooks go in before the first run ---
        self.mirror = RangeMirror(self.machine, self.wrapper, self.base) if mirror else None
        # --- end range-table mirror ---
        self._load()

    def _load(self) -> None:
        m = self.machine
        for seg in self.wrapper.segments:
            m.write(self.base + seg.vaddr, seg.data)
        m.write(self.layout.dtb.address, self.dtb_in)
        if self.scenario.initrd is not None:
            m.write(self.layout.initrd.address, self.scenario.initrd)
        m.set_reg("r3", self.layout.dtb.address)
        m.set_reg("r4", self.layout.wrapper.address)
        m.set_reg("r5", 0)
        m.set_reg("r1", 0)

    def _interrupt(self, intno: int) -> None:
        m = self.machine
        if intno == EXCP_SYSCALL:
            self.hypervisor.hypercall()
            return
        pc = m.reg("pc")
        if intno == EXCP_PROGRAM and self.stop_addr <= pc < self.stop_addr + 8:
            m.stop("fatal", m.read_cstring(m.reg("r3")), pc)
            return
        m.stop("exception", f"{EXCP_NAMES.get(intno, f'interrupt {intno}')} "
               f"at pc 0x{pc:x}", pc)

    def on_handoff(self, listener: Callable[[Handoff], None]) -> None:
        """listener(handoff) once, at the wrapper's jump to the kernel, with
        self.final_dtb already read.  (One hook for all: a kernel copied
        down over a wrapper loaded low runs this address again.)"""
        self._handoff_listeners.append(listener)

    def _enter_kernel(self, pc: int) -> None:
        m = self.machine
        if self.handoff is not None:
            return   # not the wrapper: the kernel running over its old place
        self.handoff = Handoff(m.reg("r3"), m.reg("r4"), m.reg("r5"), 0)
        self.final_dtb = self._read_tree(self.handoff.dtb)
        for listener in self._handoff_listeners:
            listener(self.handoff)
        # The kernel is about to copy itself to 0, possibly over code
        # Unicorn has translated: it does not notice such writes by itself.
        m.uc.ctl_flush_tb()
        if self.stop_at_handoff:
            m.stop("handoff", "stopped at the hand-off, as asked", pc)

    def _read_tree(self, addr: int) -> bytes | None:
        """The tree at addr, if there is one (magic, sane size, in RAM)."""
        m = self.machine
        if not m.in_ram(addr, 8) or m.read(addr, 4) != FDT_MAGIC:
            return None
        size = int.from_bytes(m.read(addr + 4, 4), "big")
        if not 40 <= size <= MAX_TREE or not m.in_ram(addr, size):
            return None
        return m.read(addr, size)

    def locate(self, pc: int) -> SourceLocation | None:
        start, end = self.wrapper.span
        if self.base + start <= pc < self.base + end:
            return self.wrapper.locate(pc - self.base)
        return None

    def run(self, count_instructions: bool = False) -> BootResult:
        counter = self.machine.count_instructions() if count_instructions else None
        t0 = time.perf_counter()
        stop = self.machine.run(self.base + self.wrapper.entry, self.scenario.budget)
        seconds = time.perf_counter() - t0
        result = self._result(stop, seconds, counter[0] if counter else None)
        from .predict import check_boot   # the model's verdict on this run
        check_boot(self, result)
        return result

    def _result(self, stop: Stop, seconds: float, instructions: int | None) -> BootResult:
        r = BootResult(scenario=self.scenario.name, exit=stop.reason,
                       message=stop.message, pc=stop.pc, location=self.locate(stop.pc),
                       console=self.console.text, layout=self.layout,
                       instructions=instructions, seconds=seconds,
                       notes=list(self.layout.notes) + self.notes)
        r.handoff = self.handoff
        r.watched = self.watch is not None
        r.mirrored = self.mirror is not None
        if self.watch is not None:
            r.overwrites = list(self.watch.overwrites)
        # --- range-table mirror ---
        if self.mirror is not None:
            r.ranges = list(self.mirror.timeline)
            r.divergence = self.mirror.divergence
        # --- end range-table mirror ---
        report = self.hypervisor.report
        r.kernel_report = report
        if self.handoff is not None:
            r.final_dtb = self.final_dtb
            r.dtb = Placement(self.handoff.dtb, len(self.final_dtb or b""))
            if self.final_dtb is not None:
                try:
                    span = DeviceTree(self.final_dtb, "final device tree").chosen_initrd()
                except DeviceTreeError as e:
                    r.notes.append(f"the wrapper handed over a broken tree: {e}")
                    span = None
                if span:
                    r.initrd = Placement(span[0], span[1] - span[0])
        if report is not None:
            r.kernel = Placement(report.placed_at, self.kernel_size)
            if not report.dtb_magic_ok:
                r.notes.append("the kernel found no device tree magic at r3")
            expected = self._expected_initrd()
            if expected is not None:
                r.initrd_intact = (report.has_initrd
                                   and report.initrd_end - report.initrd_start == len(expected)
                                   and report.initrd_checksum == initrd_checksum(expected))
        if self.hypervisor.unknown_calls:
            r.notes.append("unknown hypercalls: " +
                           ", ".join(hex(n) for n in self.hypervisor.unknown_calls))
        return r

    def _expected_initrd(self) -> bytes | None:
        if self.scenario.attached_initrd is not None:
            return self.scenario.attached_initrd
        return self.scenario.initrd

    @functools.cached_property
    def kernel_size(self) -> int:
        """The kernel's memory size: its ELF's loaded span, bss included."""
        kernel = ElfImage(self.kernel_path)
        try:
            start, end = kernel.span
            return end - start
        finally:
            kernel.close()


def boot(scenario: Scenario, firmware: FirmwareBuild | None = None, *,
         count_instructions: bool = False, watch: bool = True,
         mirror: bool = True) -> BootResult:
    """Boots the wrapper on scenario and returns what happened."""
    return Boot(scenario, firmware, watch=watch, mirror=mirror).run(
        count_instructions=count_instructions)
