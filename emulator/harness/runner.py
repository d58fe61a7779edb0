"""The boot runner: a scenario and a list of observers in, a BootResult out.

Prepares the guest (the composed wrapper image, RAM from the tree, the
device tree, initrd and wrapper placed where the scenario says, the
console devices), sets the entry registers as a chain-loader leaves them
(r3 = tree, r4 = image address, r5 = 0), attaches every observer before
the first instruction, runs on an instruction budget and assembles the
result.  It knows observers only through their protocol
(emulator/guest/observer.py); which ones a boot gets is decided by the
caller (emulator/harness/boot.py assembles the default set).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from ..guest.addresses import LoadedImage, Placement
from ..guest.devices import EXCP_NAMES, EXCP_PROGRAM, EXCP_SYSCALL, Console, Hypervisor, Uart16550
from ..guest.devicetree import DeviceTree, DeviceTreeError
from ..guest.elf import ElfImage
from ..guest.machine import Machine, Stop
from ..guest.observer import Findings, Guest, Handoff, KernelImage, Observer, RunOutcome
from .firmware import FirmwareBuild
from .result import BootResult, ExitReason
from .scenario import Scenario, place

DEFAULT_RAM = 256 << 20   # when the tree is too broken to say
FDT_MAGIC = bytes.fromhex("d00dfeed")
MAX_TREE = 16 << 20        # a larger "tree" at the hand-off is garbage

#: Our wrapper's stop on a fatal error (r3 = message, r4 = fatal code) and
#: its jump to the kernel (firmware/crt0.S).
STOP_SYMBOL = "bw_stop"
ENTER_KERNEL_SYMBOL = "bw_enter_kernel"
#: `bctr`: the jump itself, where the hand-off registers are final.
BCTR = 0x4E800420


class BootRunner:
    """One boot in progress: the guest, its devices and its observers."""

    def __init__(self, scenario: Scenario, firmware: FirmwareBuild | None = None, *,
                 observers: Sequence[Observer] = ()) -> None:
        self.scenario = scenario
        self.firmware = firmware or FirmwareBuild(policy=scenario.policy)
        bss = scenario.kernel_bss
        custom_kernel = bss is not None
        kernel_path = (self.firmware.test_kernel(bss) if bss is not None
                       else self.firmware.ensure_built().kernel_elf)
        elf = ElfImage(self.firmware.compose(
            kernel_path if custom_kernel else None,
            scenario.attached_initrd, compressed=scenario.compressed_kernel))
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
        start, end = elf.span
        self.layout = place(scenario, ram, end - start)
        dtb = scenario.dtb
        if scenario.initrd is not None and self.tree is not None:
            # As kexec-tools does: /chosen names the initrd it loaded.
            first = self.layout
            init = first.initrd
            assert init is not None
            dtb = self.tree.with_initrd(init.address, init.end)
            self.layout = dataclasses.replace(
                place(scenario.replace(dtb=dtb, dtb_at=first.dtb.address,
                                       wrapper_at=first.wrapper.address,
                                       initrd_at=init.address), ram, end - start),
                notes=first.notes)
        self.stop_at_handoff = False
        self._fatal_code: int | None = None      # r4 of the last fatal stop

        self.machine = Machine(list(self.layout.ram))
        self.console = Console()
        self.hypervisor = Hypervisor(self.machine, self.console)
        con = self.tree.console() if self.tree is not None else None
        if con is not None and con.kind == "uart":
            Uart16550(self.machine, self.console, con.address, con.reg_shift,
                      con.io_width)
        self.image = LoadedImage.at(elf, self.layout.wrapper.address)
        self.guest = Guest(self.machine, self.image, self.console, self.hypervisor,
                           dtb=Placement(self.layout.dtb.address, len(dtb)), dtb_blob=dtb,
                           initrd=self.layout.initrd, kernel=KernelImage.from_elf(kernel_path))
        self.stop_addr = self.image.function_entry(STOP_SYMBOL)
        self.machine.on_interrupt(self._interrupt)
        self.machine.on_code(self._jump_to_kernel(), self._enter_kernel)
        self.observers: dict[str, Observer] = {}
        for observer in observers:
            observer.attach(self.guest)
            self.observers[observer.name] = observer
        self._load()

    def _jump_to_kernel(self) -> int:
        """The guest address of the `bctr` in bw_enter_kernel."""
        entry = self.image.function_entry(ENTER_KERNEL_SYMBOL)
        code = self.image.elf.read(self.image.to_link(entry) or 0, 64)
        for off in range(0, len(code) - 3, 4):
            if int.from_bytes(code[off:off + 4], "big") == BCTR:
                return entry + off
        return entry     # no bctr found: hook the entry (registers may differ)

    def on_handoff(self, listener: Callable[[Handoff], None]) -> None:
        """listener(handoff) once, at the wrapper's jump to the kernel."""
        self.guest.on_handoff(listener)

    def _load(self) -> None:
        m = self.machine
        for addr, data in self.image.segments():
            m.write(addr, data)
        m.write(self.guest.dtb.address, self.guest.dtb_blob)
        if self.scenario.initrd is not None and self.layout.initrd is not None:
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
            self._fatal_code = m.reg("r4")
            m.stop("fatal", m.read_cstring(m.reg("r3")), pc)
            return
        m.stop("exception", f"{EXCP_NAMES.get(intno, f'interrupt {intno}')} "
               f"at pc 0x{pc:x}", pc)

    def _enter_kernel(self, pc: int) -> None:
        m = self.machine
        if self.guest.handoff is not None:
            return   # not the wrapper: the kernel running over its old place
        handoff = Handoff(dtb=m.reg("r3"), kernel=m.reg("r4"), r5=m.reg("r5"),
                          entry=m.reg("ctr"))
        self.guest.handed_off(handoff, self._read_tree(handoff.dtb))
        # The kernel is about to copy itself to 0, possibly over code
        # Unicorn has translated: it does not notice such writes by itself.
        # (mypy reads unicorn's Python 2 binding, which lacks this method.)
        m.uc.ctl_flush_tb()   # type: ignore[attr-defined]
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

    def run(self, count_instructions: bool = False) -> BootResult:
        counter = self.machine.count_instructions() if count_instructions else None
        self._fatal_code = None
        t0 = time.perf_counter()
        stop = self.machine.run(self.image.entry, self.scenario.budget)
        seconds = time.perf_counter() - t0
        outcome = RunOutcome(stop.reason, stop.message, stop.pc,
                             self._fatal_code if stop.reason == "fatal" else None)
        findings: dict[str, Findings] = {}
        for name, observer in self.observers.items():
            findings[name] = observer.finish(self.guest, outcome)
        return self._result(stop, outcome, seconds,
                            counter[0] if counter else None, findings)

    def _result(self, stop: Stop, outcome: RunOutcome, seconds: float,
                instructions: int | None, findings: dict[str, Findings]) -> BootResult:
        g = self.guest
        r = BootResult(scenario=self.scenario.name, exit=ExitReason(stop.reason),
                       message=stop.message, pc=stop.pc, location=g.locate(stop.pc),
                       console=self.console.text, layout=self.layout,
                       handoff=g.handoff, fatal_code=outcome.fatal_code,
                       instructions=instructions, seconds=seconds,
                       notes=list(self.layout.notes) + self.notes, findings=findings)
        report = self.hypervisor.report
        r.kernel_report = report
        if g.handoff is not None:
            r.final_dtb = g.final_dtb
            r.dtb = Placement(g.handoff.dtb, len(g.final_dtb or b""))
            if g.final_dtb is not None:
                try:
                    span = DeviceTree(g.final_dtb, "final device tree").chosen_initrd()
                except DeviceTreeError as e:
                    r.notes.append(f"the wrapper handed over a broken tree: {e}")
                    span = None
                if span:
                    r.initrd = Placement(span[0], span[1] - span[0])
        if report is not None and g.kernel is not None:
            r.kernel = Placement(report.placed_at, g.kernel.size)
        if self.hypervisor.unknown_calls:
            r.notes.append("unknown hypercalls: " +
                           ", ".join(hex(n) for n in self.hypervisor.unknown_calls))
        return r


__all__ = ["BootRunner"]
