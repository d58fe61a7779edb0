"""What an observer of a boot sees, and the small protocol it follows.

A boot is a Guest (the machine, the loaded image with its symbols and its
one address translator, the console, what the chain-loader put where)
plus a list of observers.  Every observer follows one protocol:

1. attach(guest): before the first instruction runs.  Hooks go in here
   (Unicorn ignores hooks on code it has already translated).  An observer
   that cannot work on this image says so in its findings; it does not
   raise, because a silent checker must be reported, not hidden.  One
   that must run the guest itself (a debugger stepping it) hands the
   runner its driver here: guest.drive(driver).
2. guest.on_handoff(listener): optional, called once at the image's jump
   to the kernel, with the registers read from the guest at that jump.
   guest.on_event(listener): optional, called at each moment a checker
   calls worth a closer look (the watch's first store into a region), so
   that debugging observers can take their snapshot then.
3. finish(guest, run): after the run, returns its findings: a typed
   object with a CheckStatus that says whether it was attached and, if it
   is a checker, whether it passed.

The boot runner (emulator/harness/runner.py) knows only this protocol;
the checkers (emulator/checkers/) and the debugging observers know only
this module and the guest layer below it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import SetupError
from .addresses import LoadedImage, Placement
from .devices import Console, Hypervisor
from .elf import ElfImage, SourceLocation
from .machine import Machine, Stop
from .symbols import ImageSymbols, Symboliser


@dataclass(frozen=True)
class Handoff:
    """The image's jump to the kernel, read from the guest at the jump."""
    dtb: int        # r3: the device tree handed on
    kernel: int     # r4: where the kernel was placed
    r5: int         # r5: 0 in the kexec convention (no Open Firmware)
    entry: int      # the address jumped to


@dataclass
class KernelImage:
    """The kernel the image carries: its ELF, for its size and symbols."""
    path: Path
    size: int       # its loaded span, bss included: its run-time footprint

    @classmethod
    def from_elf(cls, path: Path) -> KernelImage:
        elf = ElfImage(path)
        try:
            start, end = elf.span
        finally:
            elf.close()
        return cls(Path(path), end - start)


@dataclass(frozen=True)
class GuestEvent:
    """A moment of the run a checker found worth a snapshot, announced while
    the guest is stopped in it (registers and memory are as they are then).
    kind: what happened ("overwrite"); pc: the instruction doing it;
    detail: one line for people; index: the count of events before it."""
    kind: str
    pc: int
    detail: str
    index: int = 0


class Guest:
    """One guest being booted, as every observer sees it."""

    def __init__(self, machine: Machine, image: LoadedImage, console: Console,
                 hypervisor: Hypervisor, *,
                 dtb: Placement, dtb_blob: bytes, initrd: Placement | None,
                 kernel: KernelImage | None) -> None:
        self.machine = machine
        #: The wrapper (or foreign image) and its link <-> guest translator.
        self.image = image
        self.console = console
        #: The PAPR console and bwemu's kernel report (docs/guest-abi.md).
        self.hypervisor = hypervisor
        #: The device tree as the chain-loader handed it over, and where.
        self.dtb = dtb
        self.dtb_blob = dtb_blob
        #: The chain-loader's initrd, if it loaded one.
        self.initrd = initrd
        self.kernel = kernel
        #: Set at the hand-off, before the listeners run.
        self.handoff: Handoff | None = None
        self.final_dtb: bytes | None = None
        self._driver: Callable[[int, int], Stop] | None = None
        self._handoff_listeners: list[Callable[[Handoff], None]] = []
        self._event_listeners: list[Callable[[GuestEvent], None]] = []
        self.events: list[GuestEvent] = []
        #: Every PC printed goes through this: the image, and the kernel once
        #: handed over (where placed and at its link address).
        self.symbols = Symboliser(image)

    def drive(self, driver: Callable[[int, int], Stop]) -> None:
        """An observer takes over running the guest (a debugger stepping
        it): the runner calls driver(entry pc, budget) instead of
        Machine.run, and its Stop ends the run as Machine.run's would.
        The driver runs the machine itself, in pieces as it likes."""
        if self._driver is not None:
            raise SetupError("two observers cannot both drive one run")
        self._driver = driver

    def run(self, pc: int, budget: int) -> Stop:
        """The run, from pc on at most budget instructions: Machine.run,
        unless an observer drives it (drive())."""
        if self._driver is not None:
            return self._driver(pc, budget)
        return self.machine.run(pc, budget)

    def on_handoff(self, listener: Callable[[Handoff], None]) -> None:
        """listener(handoff) once, at the jump to the kernel (final_dtb set)."""
        self._handoff_listeners.append(listener)

    def handed_off(self, handoff: Handoff, final_dtb: bytes | None) -> None:
        """Called by the runner at the jump; tells every listener."""
        self.handoff = handoff
        self.final_dtb = final_dtb
        if self.kernel is not None:
            self._map_kernel(self.kernel, handoff)
        for listener in self._handoff_listeners:
            listener(handoff)

    def _map_kernel(self, kernel: KernelImage, handoff: Handoff) -> None:
        """The kernel's symbols where it was entered and at its link address
        (a ppc64 kernel copies itself there first)."""
        syms = ImageSymbols.of_path(kernel.path)
        if not syms.is_elf or syms.entry is None:
            return
        start, end = syms.span
        placed = handoff.entry - (syms.entry - start)
        self.symbols.add_file(syms, placed - start, placed, placed + end - start, "kernel")
        if placed != start:
            self.symbols.add_file(syms, 0, start, end, "kernel")

    def on_event(self, listener: Callable[[GuestEvent], None]) -> None:
        """listener(event) at each GuestEvent, while the guest is in it."""
        self._event_listeners.append(listener)

    def event(self, kind: str, pc: int, detail: str) -> None:
        """Called by a checker from its hook: announces a GuestEvent."""
        ev = GuestEvent(kind, pc, detail, len(self.events))
        self.events.append(ev)
        for listener in self._event_listeners:
            listener(ev)

    def locate(self, pc: int) -> SourceLocation | None:
        """Function and line of a PC in the image or the kernel handed
        over (None outside them): a PcInfo, whose str() is func+0x10 (file:line)."""
        return self.symbols.locate(pc)


class CheckState(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_ATTACHED = "not attached"
    NO_VERDICT = "no verdict"      # attached, but had nothing to judge
    #: A debugging aid (ring buffer, trace...): never judges, never listed
    #: among a boot's checks, never makes it pass or fail.
    NOT_A_CHECK = "not a check"


@dataclass(frozen=True)
class CheckStatus:
    """One observer's standing in a boot's verdict."""
    name: str
    state: CheckState
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.state is CheckState.FAILED

    def __str__(self) -> str:
        return f"{self.name}: {self.state.value}" + (f" ({self.detail})" if self.detail else "")


@runtime_checkable
class Findings(Protocol):
    """What an observer contributes to a boot's result."""

    @property
    def status(self) -> CheckStatus: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunOutcome:
    """How the run ended, as the runner saw it (before any verdict)."""
    reason: str          # an ExitReason value
    message: str
    pc: int
    fatal_code: int | None = None   # the wrapper's fatal code (docs/guest-abi.md)
    notes: list[str] = field(default_factory=list)


class Observer(Protocol):
    """A plug-in of a boot: see the module docstring."""

    #: The key of its findings in BootResult.findings ("watch", "mirror"...).
    name: str

    def attach(self, guest: Guest) -> None: ...

    def finish(self, guest: Guest, run: RunOutcome) -> Findings: ...


__all__ = ["CheckState", "CheckStatus", "Findings", "Guest", "GuestEvent", "Handoff",
           "KernelImage", "Observer", "RunOutcome"]
