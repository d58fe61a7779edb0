"""The hand-off contract, checked from the kernel's side: the kernel was
entered with r5 = 0, found a device tree at r3 that is a valid tree, and
received the initrd it was meant to, byte for byte (by checksum).

The test kernel reports what it saw through bwemu's hypercall
(docs/guest-abi.md); a kernel that does not report gives no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..guest.devices import KernelReport, initrd_checksum
from ..guest.devicetree import DeviceTree, DeviceTreeError
from ..guest.observer import CheckState, CheckStatus, Guest, Handoff, RunOutcome

NAME = "handoff"


@dataclass
class HandoffFindings:
    handoff: Handoff | None
    kernel_report: KernelReport | None
    initrd_intact: bool | None           # None: no initrd was expected
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> CheckStatus:
        if self.problems:
            return CheckStatus(NAME, CheckState.FAILED, "; ".join(self.problems))
        if self.kernel_report is None:
            return CheckStatus(NAME, CheckState.NO_VERDICT, "the kernel made no report")
        extra = ", initrd intact" if self.initrd_intact else ""
        return CheckStatus(NAME, CheckState.PASSED, f"valid device tree{extra}")

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
            "problems": self.problems,
        }


class HandoffCheck:
    """Observer: the hand-off contract.  expected_initrd: the bytes the
    kernel must receive (the chain-loader's or the attached initrd)."""

    name = NAME

    def __init__(self, expected_initrd: bytes | None) -> None:
        self.expected_initrd = expected_initrd

    def attach(self, guest: Guest) -> None:
        pass    # reads the hand-off and the kernel's report afterwards

    def finish(self, guest: Guest, run: RunOutcome) -> HandoffFindings:
        report = guest.hypervisor.report
        h = guest.handoff
        problems: list[str] = []
        if h is not None:
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
        return HandoffFindings(h, report, intact, problems)


__all__ = ["HandoffCheck", "HandoffFindings"]
