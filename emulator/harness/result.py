"""What a boot gives back: BootResult, with the exit reason as an enum, each
observer's findings in its own typed field, and the verdict computed here
from the checks (never parsed from text).

"Passed" means: the kernel was reached, and every checker that was
attached passed.  A checker that was not attached is listed as such in
`checks`, never counted as a pass; `reached_kernel` alone says nothing
about the checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeVar

from wrapper_model.placement import Prediction

from ..checkers.handoff import HandoffFindings
from ..checkers.mirror import Divergence, MirrorFindings, RangeOp
from ..checkers.model import Comparison, ModelFindings
from ..checkers.watch import Overwrite, WatchFindings
from ..guest.addresses import Placement
from ..guest.devices import KernelReport
from ..guest.elf import SourceLocation
from ..guest.observer import CheckState, CheckStatus, Findings, Handoff
from .scenario import Layout


class ExitReason(str, enum.Enum):
    """How a boot's run ended."""
    KERNEL = "kernel"            # the kernel was entered and reported
    FATAL = "fatal"              # the wrapper stopped on a fatal error
    EXCEPTION = "exception"      # the CPU took an interrupt nobody handles
    BUDGET = "budget"            # the instruction budget ran out
    DIVERGENCE = "divergence"    # the mirror stopped the run
    HANDOFF = "handoff"          # stopped at the hand-off, as asked

    def __str__(self) -> str:
        return self.value


#: The checkers a default boot attaches, in the order the verdict lists them.
CHECKERS = ("mirror", "watch", "model", "handoff")

F = TypeVar("F")


@dataclass
class BootResult:
    scenario: str
    exit: ExitReason
    message: str
    pc: int
    location: SourceLocation | None
    console: str
    layout: Layout
    handoff: Handoff | None = None
    fatal_code: int | None = None       # the wrapper's fatal code (docs/guest-abi.md)
    kernel: Placement | None = None     # where the kernel reported it ran
    dtb: Placement | None = None        # the tree handed on
    initrd: Placement | None = None     # the initrd /chosen names in it
    final_dtb: bytes | None = None
    kernel_report: KernelReport | None = None
    instructions: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: Every observer's findings, by its name ("mirror", "watch"...).
    findings: dict[str, Findings] = field(default_factory=dict)

    # --- typed access to each checker's findings ----------------------------

    def _get(self, name: str, kind: type[F]) -> F | None:
        f = self.findings.get(name)
        return f if isinstance(f, kind) else None

    @property
    def mirror(self) -> MirrorFindings | None:
        return self._get("mirror", MirrorFindings)

    @property
    def watch(self) -> WatchFindings | None:
        return self._get("watch", WatchFindings)

    @property
    def model(self) -> ModelFindings | None:
        return self._get("model", ModelFindings)

    @property
    def handoff_check(self) -> HandoffFindings | None:
        return self._get("handoff", HandoffFindings)

    # --- the verdict ----------------------------------------------------------

    @property
    def checks(self) -> list[CheckStatus]:
        """Every checker's standing: the default ones first (those not
        attached say so), then any other observer that gives one."""
        out = []
        for name in CHECKERS:
            f = self.findings.get(name)
            out.append(f.status if f is not None else
                       CheckStatus(name, CheckState.NOT_ATTACHED, "turned off for this boot"))
        out += [f.status for n, f in self.findings.items() if n not in CHECKERS
                and f.status.state is not CheckState.NOT_A_CHECK]   # debugging aids
        return out

    @property
    def reached_kernel(self) -> bool:
        """The kernel was entered and reported; says nothing of the checks."""
        return self.exit is ExitReason.KERNEL

    @property
    def failures(self) -> list[CheckStatus]:
        return [c for c in self.checks if c.failed]

    @property
    def unjudged(self) -> list[CheckStatus]:
        """Attached checkers that reached no verdict (a kernel that made no
        report, a hand-off never seen): not failed, but not passed either."""
        return [c for c in self.checks if c.state is CheckState.NO_VERDICT]

    @property
    def passed(self) -> bool:
        """The kernel was reached and every attached checker passed: one
        with no verdict has not (those not attached are named, not counted)."""
        return self.reached_kernel and not self.failures and not self.unjudged

    # --- shorthands for the commonest questions ----------------------------------

    @property
    def overwrites(self) -> list[Overwrite]:
        return self.watch.overwrites if self.watch is not None else []

    @property
    def ranges(self) -> list[RangeOp]:
        return self.mirror.timeline if self.mirror is not None else []

    @property
    def divergence(self) -> Divergence | None:
        return self.mirror.divergence if self.mirror is not None else None

    @property
    def prediction(self) -> Prediction | None:
        return self.model.prediction if self.model is not None else None

    @property
    def comparison(self) -> Comparison | None:
        return self.model.comparison if self.model is not None else None

    @property
    def matches_model(self) -> bool | None:
        return self.model.matches if self.model is not None else None

    @property
    def initrd_intact(self) -> bool | None:
        h = self.handoff_check
        return h.initrd_intact if h is not None else None


__all__ = ["BootResult", "CHECKERS", "ExitReason"]
