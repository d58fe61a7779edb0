"""The lockstep mirror as a boot observer: attaches a RangeMirror to the
wrapper when the image has bwemu's range table, and reports the timeline
and the first divergence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...guest.observer import CheckState, CheckStatus, Guest, RunOutcome
from ..rangetable import RangeTableMissing
from .engine import MirrorError, RangeMirror
from .records import Divergence, RangeOp

NAME = "mirror"


@dataclass
class MirrorFindings:
    """Every outermost range-table operation of the run, in order, with the
    guest's table after it, and the first disagreement with the model."""
    attached: bool
    timeline: list[RangeOp] = field(default_factory=list)
    divergence: Divergence | None = None
    why_not: str | None = None       # why it was not attached

    @property
    def status(self) -> CheckStatus:
        if not self.attached:
            return CheckStatus(NAME, CheckState.NOT_ATTACHED, self.why_not or "")
        if self.divergence is not None:
            return CheckStatus(NAME, CheckState.FAILED, self.divergence.summary())
        return CheckStatus(NAME, CheckState.PASSED,
                           f"{len(self.timeline)} operations, every table state "
                           f"equal to the model's")

    def to_json(self) -> dict[str, Any]:
        return {"attached": self.attached, "why_not": self.why_not,
                "operations": len(self.timeline),
                "divergence": None if self.divergence is None else str(self.divergence),
                "timeline": [op.to_json() for op in self.timeline]}


class MirrorChecker:
    """Observer: the range-table mirror (emulator/checkers/mirror/engine.py)."""

    name = NAME

    def __init__(self) -> None:
        self.mirror: RangeMirror | None = None
        self.why_not: str | None = None

    def attach(self, guest: Guest) -> None:
        try:
            self.mirror = RangeMirror(guest.machine, guest.image, symbols=guest.symbols)
        except (RangeTableMissing, MirrorError) as e:
            self.why_not = str(e)

    def finish(self, guest: Guest, run: RunOutcome) -> MirrorFindings:
        if self.mirror is None:
            return MirrorFindings(False, why_not=self.why_not)
        return MirrorFindings(True, list(self.mirror.timeline), self.mirror.divergence)


__all__ = ["MirrorChecker", "MirrorFindings"]
