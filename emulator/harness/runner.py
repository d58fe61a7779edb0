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
from pathlib import Path

from ..errors import InputError, SetupError
from ..guest.addresses import LoadedImage, Placement
from ..guest.devices import EXCP_NAMES, EXCP_PROGRAM, EXCP_SYSCALL, Console, Hypervisor, Uart16550
from ..guest.devicetree import DeviceTree, DeviceTreeError, check_fits
from ..guest.elf import ElfImage, ElfImageError, NotAnElfError, RawImage
from ..guest.entry import entry_state
from ..guest.handoff import HandoffByFetch
from ..guest.machine import Machine, Stop
from ..guest.observer import Findings, Guest, Handoff, KernelImage, Observer, RunOutcome
from ..guest.spin import SpinStop
from ..guest.timebase import Timebase
from .firmware import FirmwareBuild, FirmwareError
from .ram_fill import fill_ram
from .result import BootResult, ExitReason
from .scenario import Scenario, ScenarioError, place, uart_address_for

DEFAULT_RAM = 256 << 20   # when the tree is too broken to say
FDT_MAGIC = bytes.fromhex("d00dfeed")
MAX_TREE = 16 << 20        # a larger "tree" at the hand-off is garbage

#: Our wrapper's stop on a fatal error (r3 = message, r4 = fatal code) and
#: its jump to the kernel (firmware/crt0.S).
STOP_SYMBOL = "bw_stop"
ENTER_KERNEL_SYMBOL = "bw_enter_kernel"
#: `bctr`: the jump itself, where the hand-off registers are final.
BCTR = 0x4E800420


class BootArgumentError(InputError):
    """An argument of boot(), Boot() or BootRunner() of the wrong kind."""


class BootUsedError(SetupError):
    """run() called again on a boot that has run."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_arguments(caller: str, scenario: object, firmware: object,
                    observers: object) -> None:
    """Refuses, by name, an argument of the wrong kind: without this a
    None scenario or a string as firmware got as far as a raw
    AttributeError somewhere inside the set-up."""
    def bad(name: str, what: str, value: object) -> BootArgumentError:
        return BootArgumentError(f"{caller} argument {name}: must be {what}, "
                                 f"not {_short(value)}")
    if not isinstance(scenario, Scenario):
        raise bad("scenario", "a Scenario (emulator.Scenario)", scenario)
    if firmware is not None and not isinstance(firmware, FirmwareBuild):
        raise bad("firmware", "a FirmwareBuild or None", firmware)
    if not isinstance(observers, (list, tuple)):
        raise bad("observers", "a list of observers", observers)
    for i, o in enumerate(observers):
        if not (isinstance(getattr(o, "name", None), str) and callable(getattr(o, "attach", None))
                and callable(getattr(o, "finish", None))):
            raise bad(f"observers[{i}]", "an observer (a name, attach() and finish(): "
                      "emulator/guest/observer.py)", o)
    names = [o.name for o in observers]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise BootArgumentError(f"{caller} argument observers: two observers are named "
                                f"{twice!r}; a boot keeps findings by name, so one would "
                                f"replace the other's")


class BootRunner:
    """One boot in progress: the guest, its devices and its observers.
    It runs once."""

    def __init__(self, scenario: Scenario, firmware: FirmwareBuild | None = None, *,
                 observers: Sequence[Observer] = ()) -> None:
        check_arguments(type(self).__name__, scenario, firmware, observers)
        self._ran = False
        self.notes: list[str] = []
        self.firmware = firmware or FirmwareBuild(policy=scenario.policy)
        try:
            check_fits(scenario.dtb, f"device tree of scenario {scenario.name!r}")
        except DeviceTreeError as e:
            raise ScenarioError(str(e)) from None
        elf, kernel_path = self._image(scenario)
        try:       # read before any set-up: a malformed one is bad input
            kernel = KernelImage.from_elf(kernel_path) if kernel_path is not None else None
        except ElfImageError as e:
            raise ElfImageError(f"the kernel ELF {e}") from None
        scenario = self._fix_up_tree(scenario)
        if scenario.image is not None and scenario.wrapper_at is None \
                and not elf.position_independent:
            scenario = scenario.replace(wrapper_at=elf.span[0])
            self.notes.append(f"image loaded at its link address 0x{elf.span[0]:x} "
                              f"(it is not position independent)")
        self.scenario = scenario
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
        align = elf.load_alignment
        if scenario.wrapper_at is not None and scenario.wrapper_at % align:
            raise ScenarioError(f"--load-at 0x{scenario.wrapper_at:x}: the image must be "
                                f"loaded at a multiple of 0x{align:x} (its sections' "
                                f"alignment)")
        reserved = self.tree.reserves() if self.tree is not None else []
        self.layout = place(scenario, ram, end - start, reserved)
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
                                       initrd_at=init.address), ram, end - start,
                      reserved),
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
                           initrd=self.layout.initrd, kernel=kernel)
        self.machine.on_interrupt(self._interrupt)
        # Our wrapper names its fatal stop and its jump to the kernel; an
        # image that does not is watched for both (docs/guest-abi.md).
        self.stop_addr: int | None = None
        if self.image.has_symbol(STOP_SYMBOL):
            self.stop_addr = self.image.function_entry(STOP_SYMBOL)
        if self.image.has_symbol(ENTER_KERNEL_SYMBOL):
            self.machine.on_code(self._jump_to_kernel(),
                                 lambda pc: self._enter_kernel(pc, self.machine.reg("ctr")))
        else:
            HandoffByFetch(self.machine, self.image, kernel_path,
                           lambda pc: self._enter_kernel(pc, pc))
        SpinStop(self.machine, self.image, self.console)
        self.timebase = Timebase(self.machine, self.image)
        self.observers: dict[str, Observer] = {}
        for observer in observers:
            observer.attach(self.guest)
            self.observers[observer.name] = observer
        self._load()

    def _image(self, scenario: Scenario) -> tuple[ElfImage, Path | None]:
        """The image to boot and the kernel ELF it carries: our firmware
        composed for the scenario, or the user's own image."""
        if scenario.image is None:
            bss = scenario.kernel_bss
            kernel_path = self.firmware.ensure_built().kernel_elf
            if bss is not None:
                kernel_path = self._test_kernel(bss)
            elf = ElfImage(self.firmware.compose(
                kernel_path if bss is not None else None,
                scenario.attached_initrd, compressed=scenario.compressed_kernel))
            return elf, kernel_path
        if scenario.entry_offset is not None:
            bits = 64 if entry_state(scenario.entry, tree=0, image=0, rma_size=0,
                                     overrides=self._overrides(scenario)).bits == 64 else 32
            return RawImage(scenario.image, scenario.entry_offset, bits), scenario.kernel
        try:
            return ElfImage(scenario.image), scenario.kernel
        except NotAnElfError as e:
            raise NotAnElfError(f"{e}: a raw binary is booted with the offset of its "
                                f"first instruction (--entry-offset N)") from None

    def _test_kernel(self, bss: int) -> Path:
        """The test kernel linked with bss bytes of bss, or one line naming
        kernel_bss when that is more than it can link with."""
        try:
            return self.firmware.test_kernel(bss)
        except FirmwareError as e:
            if "relocation truncated to fit" not in str(e):
                raise
        # head.S loads __kbss_end with lis/addi: a signed 32-bit address,
        # so the kernel with its bss must end below 0x7fff8000 (with the
        # kernel as it is, 0x7fff0000 bytes of bss link; 0x7fff8000 do not).
        raise ScenarioError(f"Scenario field kernel_bss (--kernel-bss): 0x{bss:x} bytes "
                            f"do not link: the test kernel's start-up code addresses the "
                            f"end of its bss in 32 signed bits, so the kernel with its bss "
                            f"must end below 0x7fff8000 (0x7fff0000 bytes of bss link)")

    @staticmethod
    def _overrides(scenario: Scenario) -> tuple[tuple[str, int], ...]:
        msr = () if scenario.msr is None else (("msr", scenario.msr),)
        return tuple(scenario.regs) + msr

    def _fix_up_tree(self, scenario: Scenario) -> Scenario:
        """--memory and --cmdline, applied to the tree as a boot loader
        would; an empty /memory without --memory is refused by name."""
        if scenario.memory is None and scenario.cmdline is None and not scenario.add_uart:
            try:
                if DeviceTree(scenario.dtb, "device tree").memory_is_placeholder():
                    raise ScenarioError(
                        f"device tree of scenario {scenario.name!r}: /memory is empty "
                        f"(no reg, or size 0): give the RAM size with --memory SIZE")
            except DeviceTreeError:
                pass          # a broken tree: the wrapper's own answer is the point
            return scenario
        dtb = scenario.dtb
        name = f"device tree of scenario {scenario.name!r}"
        if scenario.memory is not None:
            dtb = DeviceTree(dtb, name).with_memory(scenario.memory)
            self.notes.append(f"/memory set to one block of 0x{scenario.memory:x} bytes at 0")
        if scenario.cmdline is not None:
            dtb = DeviceTree(dtb, name).with_bootargs(scenario.cmdline)
        if scenario.add_uart:
            tree = DeviceTree(dtb, name)
            blocks = tuple(tree.memory())
            address = uart_address_for(blocks or ((0, DEFAULT_RAM),))
            dtb = tree.with_uart(address)
            self.notes.append(f"an ns16550 added at 0x{address:x} as the console (--uart)")
        return scenario.replace(dtb=dtb)

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
        self.ram_filled = fill_ram(m, self.scenario, self.layout, self.guest,
                                   self.tree.reserves() if self.tree is not None else [])
        for addr, data in self.image.segments():
            m.write(addr, data)
        m.write(self.guest.dtb.address, self.guest.dtb_blob)
        if self.scenario.initrd is not None and self.layout.initrd is not None:
            m.write(self.layout.initrd.address, self.scenario.initrd)
        state = entry_state(self.scenario.entry, tree=self.layout.dtb.address,
                            image=self.layout.wrapper.address,
                            rma_size=self.layout.rma_end,
                            overrides=self._overrides(self.scenario))
        for name, value in state.registers.items():
            m.set_reg(name, value)

    def _interrupt(self, intno: int) -> None:
        m = self.machine
        if intno == EXCP_SYSCALL:
            self.hypervisor.hypercall()
            return
        pc = m.reg("pc")
        if intno == EXCP_PROGRAM and self.stop_addr is not None \
                and self.stop_addr <= pc < self.stop_addr + 8:
            self._fatal_code = m.reg("r4")
            m.stop("fatal", m.read_cstring(m.reg("r3")), pc)
            return
        m.stop("exception", f"{EXCP_NAMES.get(intno, f'interrupt {intno}')} "
               f"at pc 0x{pc:x}", pc)

    def _enter_kernel(self, pc: int, target: int) -> None:
        """The jump to the kernel: at pc, to target."""
        m = self.machine
        if self.guest.handoff is not None:
            return   # not the wrapper: the kernel running over its old place
        handoff = Handoff(dtb=m.reg("r3"), kernel=m.reg("r4"), r5=m.reg("r5"),
                          entry=target)
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
        if self._ran:
            # The machine is as the first run left it (RAM written over,
            # hooks and observers spent): a second run would judge that.
            raise BootUsedError(f"this {type(self).__name__} has run already, and a boot "
                                f"runs once: make a new one to boot again")
        self._ran = True
        counter = self.machine.count_instructions() if count_instructions else None
        self._fatal_code = None
        t0 = time.perf_counter()
        stop = self.guest.run(self.image.entry, self.scenario.budget)   # or an observer drives it
        seconds = time.perf_counter() - t0
        outcome = RunOutcome(stop.reason, stop.message, stop.pc,
                             self._fatal_code if stop.reason == "fatal" else None)
        findings: dict[str, Findings] = {}
        for name, observer in self.observers.items():
            found = observer.finish(self.guest, outcome)
            if not isinstance(found, Findings):
                raise BootArgumentError(f"observer {name!r}: finish() returned "
                                        f"{_short(found)}, not findings (a status "
                                        f"and to_json())")
            findings[name] = found
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


__all__ = ["BootArgumentError", "BootRunner", "BootUsedError", "check_arguments"]
