"""The hand-off contract (docs/guest-abi.md, "Entry and hand-off").

At the wrapper's jump to the kernel, before the kernel runs:
- r3: a device tree that passes the full structural check, not inside the
  kernel image;
- r4: for bwemu's wrapper (the kexec convention) the kernel's address,
  with the entry jumped to at r4 plus the entry's offset in the ELF;
- r5 = 0;
- the kernel image at its place equal to its ELF: every PT_LOAD's file
  bytes and, for bwemu's wrapper, its tail zeroed up to p_memsz
  (emulator/checkers/kernel_image.py).  Another image is checked where
  its entry says the kernel is, file bytes only (Linux's boot wrapper
  leaves the bss to the kernel).

Before that, at the wrapper's first call into C (start_wrapper's entry):
its own .bss all zero, as crt0.S must leave it.

From the kernel's side: it found the tree's magic at r3 and received the
initrd it was meant to, byte for byte (by checksum).  The test kernel
reports what it saw through bwemu's hypercall.

A part of the contract that could not be checked is never counted as
held: a hand-off never seen (the run stopped first, or the kernel ran but
no fetch at its ELF's entry was seen), a kernel that made no report, a
kernel image that could not be compared (its ELF unreadable, or placed by
its entry outside RAM) each add a reason to `unchecked`, and the check
then has no verdict (unless something it did check failed).  Without a
kernel ELF (a foreign image booted without --kernel) there is nothing to
compare the image with; the check's detail says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unicorn import UC_HOOK_BLOCK, Uc

from ..errors import BwemuError
from ..guest.devices import KernelReport, initrd_checksum
from ..guest.devicetree import DeviceTree, DeviceTreeError
from ..guest.handoff import kernel_entries
from ..guest.observer import CheckState, CheckStatus, Guest, Handoff, RunOutcome
from .kernel_image import KernelLayout, first_nonzero, image_problems

NAME = "handoff"

#: bwemu's wrapper: its first C function, its .bss, its jump to the kernel.
START_C = "start_wrapper"
BSS_START, BSS_END = "__bss_start", "__bss_end"
ENTER_KERNEL = "bw_enter_kernel"


@dataclass
class HandoffFindings:
    handoff: Handoff | None
    kernel_report: KernelReport | None
    initrd_intact: bool | None           # None: no initrd was expected
    problems: list[str] = field(default_factory=list)
    #: Where the kernel image was compared with its ELF, and whether it
    #: matched (None: not compared: no hand-off, or no kernel ELF).
    kernel_at: int | None = None
    kernel_image_ok: bool | None = None
    #: The wrapper's .bss at its first call into C (None: not checked:
    #: not bwemu's wrapper, or C was never reached).
    bss_zero: bool | None = None
    #: The parts of the contract that could not be checked, each with why:
    #: any of them leaves the check without a verdict.
    unchecked: list[str] = field(default_factory=list)

    @property
    def status(self) -> CheckStatus:
        if self.problems:
            return CheckStatus(NAME, CheckState.FAILED, "; ".join(self.problems))
        if self.unchecked:
            return CheckStatus(NAME, CheckState.NO_VERDICT, "; ".join(self.unchecked))
        if self.kernel_report is None:
            return CheckStatus(NAME, CheckState.NO_VERDICT, "the kernel made no report")
        if self.kernel_image_ok:
            image = ", kernel image equal to its ELF"
        else:
            image = ", kernel image not compared (no kernel ELF given)"
        extra = ", initrd intact" if self.initrd_intact else ""
        return CheckStatus(NAME, CheckState.PASSED, f"valid device tree{image}{extra}")

    def to_json(self) -> dict[str, Any]:
        rep = self.kernel_report
        h = self.handoff
        return {
            "registers": None if h is None else
            {"r3": h.dtb, "r4": h.kernel, "r5": h.r5, "entry": h.entry},
            "kernel_report": None if rep is None else
            {"dtb": rep.dtb, "placed_at": rep.placed_at, "dtb_magic_ok": rep.dtb_magic_ok,
             "initrd_start": rep.initrd_start, "initrd_end": rep.initrd_end,
             "initrd_checksum": rep.initrd_checksum},
            "initrd_intact": self.initrd_intact,
            "kernel_image": {"at": self.kernel_at, "intact": self.kernel_image_ok},
            "bss_zero": self.bss_zero,
            "problems": self.problems,
            "unchecked": self.unchecked,
        }


class HandoffCheck:
    """Observer: the hand-off contract.  expected_initrd: the bytes the
    kernel must receive (the chain-loader's or the attached initrd)."""

    name = NAME

    def __init__(self, expected_initrd: bytes | None) -> None:
        self.expected_initrd = expected_initrd
        self.problems: list[str] = []      # found while the guest ran
        self.unchecked: list[str] = []     # parts that could not be checked, and why
        self.kernel_at: int | None = None
        self.kernel_image_ok: bool | None = None
        self.bss_zero: bool | None = None

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        image = guest.image
        if all(image.has_symbol(s) for s in (START_C, BSS_START, BSS_END)):
            bss = (image.symbol_address(BSS_START), image.symbol_address(BSS_END))

            def entered(uc: Uc, address: int, size: int, user: object) -> None:
                if self.bss_zero is None:
                    self._check_bss(*bss)
            # A block hook over the global and (ELFv2) local entry: crt0.S
            # reaches the local one by `bl`.
            guest.machine.uc.hook_add(UC_HOOK_BLOCK, entered,
                                      begin=image.function_entry(START_C),
                                      end=image.local_entry(START_C))
        guest.on_handoff(self._handoff)

    def _check_bss(self, start: int, end: int) -> None:
        machine = self.guest.machine
        if not machine.in_ram(start, max(end - start, 1)):
            self.unchecked.append(f"the wrapper's .bss (0x{start:x}..0x{end:x}) is not in "
                                  f"RAM: not checked")
            return
        dirty = first_nonzero(machine, start, end)
        self.bss_zero = dirty is None
        if dirty is not None:
            self.problems.append(
                f"the wrapper's .bss (0x{start:x}..0x{end:x}) is not zero when C starts: "
                f"0x{machine.read(dirty, 1)[0]:02x} at 0x{dirty:x} "
                f"(offset 0x{dirty - start:x})")

    def _handoff(self, h: Handoff) -> None:
        """At the jump, before the kernel's first instruction."""
        g = self.guest
        if g.kernel is None:
            return
        layout = KernelLayout.from_elf(g.kernel.path)
        if layout is None:
            self.unchecked.append(f"the kernel image was not compared: {g.kernel.path.name} "
                                  f"could not be read as an ELF with PT_LOAD segments")
            return
        ours = g.image.has_symbol(ENTER_KERNEL)      # the kexec convention
        if ours:
            at = h.kernel
            if h.entry != (at + layout.entry_offset) % 2**64:
                self.problems.append(
                    f"the kernel is entered at 0x{h.entry:x}, not at r4 + its entry "
                    f"offset (0x{at:x} + 0x{layout.entry_offset:x})")
        else:
            at = h.entry - layout.entry_offset
            # File bytes only (below), so only they need be in RAM.
            if at < 0 or not g.machine.in_ram(at, max(layout.file_size, 1)):
                self.unchecked.append(
                    f"the kernel image was not compared: entered at 0x{h.entry:x}, "
                    f"{_signed_hex(layout.entry_offset)} into its ELF, it would start at "
                    f"{_signed_hex(at)}, and its 0x{layout.file_size:x} file bytes from "
                    f"there are not in RAM")
                return
        self.kernel_at = at
        found = image_problems(g.machine, layout, at, zero_tails=ours)
        self.kernel_image_ok = not found
        self.problems += found
        final = g.final_dtb
        if not ours and not g.machine.in_ram(at, max(layout.size, 1)):
            # Not a kernel this machine could hold, bss included (the image
            # must carry another): its span says nothing of the tree.
            self.unchecked.append(
                f"{g.kernel.path.name} spans 0x{at:x}..0x{at + layout.size:x} with its "
                f"p_memsz, beyond RAM: whether the tree handed on lies inside the kernel "
                f"was not checked")
        elif final is not None and h.dtb < at + layout.size and at < h.dtb + len(final):
            self.problems.append(f"the device tree at r3 = 0x{h.dtb:x} lies inside the "
                                 f"kernel image 0x{at:x}..0x{at + layout.size:x}")

    def finish(self, guest: Guest, run: RunOutcome) -> HandoffFindings:
        report = guest.hypervisor.report
        h = guest.handoff
        problems = list(self.problems)
        unchecked = list(self.unchecked)
        if h is None and report is None:
            unchecked.append(f"the run ended ({run.reason}) before any hand-off: "
                             f"nothing to check")
        elif h is None:
            unchecked.append(self._no_handoff(guest))
        else:
            if h.r5 != 0:
                problems.append(f"r5 at the hand-off is 0x{h.r5:x}, not 0")
            if guest.final_dtb is None:
                problems.append(f"no device tree at r3 = 0x{h.dtb:x}")
            else:
                try:
                    DeviceTree(guest.final_dtb, "final device tree").check_structure()
                except DeviceTreeError as e:
                    problems.append(f"the tree handed on is broken: {e}")
        intact = None
        if report is None and h is not None:
            unchecked.append("the kernel made no report: the tree's magic it found and the "
                             "initrd it received were not checked")
        if report is not None:
            if not report.dtb_magic_ok:
                problems.append("the kernel found no device tree magic at r3")
            expected = self.expected_initrd
            if expected is not None:
                intact = (report.has_initrd
                          and report.initrd_end - report.initrd_start == len(expected)
                          and report.initrd_checksum == initrd_checksum(expected))
                if not intact:
                    problems.append("the initrd the kernel received is not the one given")
        return HandoffFindings(h, report, intact, problems, self.kernel_at,
                               self.kernel_image_ok, self.bss_zero, unchecked)

    @staticmethod
    def _no_handoff(guest: Guest) -> str:
        """Why a kernel that ran and reported had no hand-off to check."""
        where = ""
        if guest.kernel is not None and not guest.image.has_symbol(ENTER_KERNEL):
            try:
                entries = sorted(kernel_entries(guest.kernel.path))
            except BwemuError:
                entries = []
            shown = " or ".join(f"0x{e % 2**64:x}" for e in entries)
            where = (f" (no instruction was fetched at {guest.kernel.path.name}'s entry, "
                     f"{shown}: is it the kernel the image carries?)") if shown else ""
        return (f"the kernel ran and reported, but no hand-off to it was seen{where}: r3, "
                f"r4, r5, the tree handed on and the kernel image were not checked")


def _signed_hex(v: int) -> str:
    return f"-0x{-v:x}" if v < 0 else f"0x{v:x}"


__all__ = ["HandoffCheck", "HandoffFindings"]
