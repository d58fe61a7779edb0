"""The model check: the reference prediction for a boot, compared with what ran.

inputs_for() reads docs/kexec.md's inputs off the guest (the tree as handed
over, the loaded image, the kernel's size) plus what the harness says of
the build (heap policy, attached initrd); the prediction itself
(wrapper_model.placement) sees only those numbers.  compare() puts the
run's outcome, its hand-off and the guest's range table at the hand-off
next to the Prediction and lists every difference.

A predicted fatal stop matches only the wrapper's fatal code for that
step (docs/guest-abi.md, "Fatal codes"), never a pattern over its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wrapper_model.placement import (
    FATAL_DTB,
    FATAL_HEAP,
    FATAL_INITRD_ALLOC,
    FATAL_INITRD_INVERTED,
    FATAL_INITRD_MOVE,
    FATAL_INITRD_OUTSIDE,
    FATAL_INITRD_OVERLAP,
    FATAL_KERNEL,
    FATAL_KERNEL_RESERVE,
    FATAL_KNOWN_RANGE,
    FATAL_NO_RMA,
    FATAL_TREE,
    PlacementInputs,
    Prediction,
    predict,
)
from wrapper_model.ranges import RangeTableState

from ..errors import CheckerError
from ..guest.addresses import Placement
from ..guest.devicetree import DeviceTree, DeviceTreeError, check_structure
from ..guest.observer import CheckState, CheckStatus, Guest, Handoff, RunOutcome
from .rangetable import RangeTableView

NAME = "model"

#: The model's kind of fatal stop -> the wrapper's fatal code for that step
#: (firmware/include/guest_abi.h, BW_FATAL_*).
FATAL_CODES: dict[str, int] = {
    FATAL_NO_RMA: 1,
    FATAL_INITRD_INVERTED: 2,
    FATAL_KNOWN_RANGE: 3,
    FATAL_KERNEL_RESERVE: 4,
    FATAL_HEAP: 5,
    FATAL_KERNEL: 6,
    FATAL_INITRD_MOVE: 7,
    FATAL_INITRD_ALLOC: 8,
    FATAL_DTB: 9,
    FATAL_INITRD_OVERLAP: 10,
    FATAL_INITRD_OUTSIDE: 11,
    FATAL_TREE: 17,
}
FATAL_KIND_OF_CODE = {code: kind for kind, code in FATAL_CODES.items()}


@dataclass(frozen=True)
class BootFacts:
    """What the comparison needs of a run: how it ended and what it handed on."""
    reason: str
    message: str
    fatal_code: int | None
    handoff: Handoff | None
    initrd: Placement | None        # /chosen of the tree handed on


@dataclass
class Comparison:
    matches: bool
    mismatches: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.matches:
            return "matches the reference prediction"
        return "differs from the reference prediction: " + "; ".join(self.mismatches)


@dataclass
class ModelFindings:
    """The prediction and the comparison; both None when the model had
    nothing to say (why_not says why)."""
    attached: bool
    prediction: Prediction | None = None
    comparison: Comparison | None = None
    why_not: str | None = None

    @property
    def matches(self) -> bool | None:
        return None if self.comparison is None else self.comparison.matches

    @property
    def status(self) -> CheckStatus:
        if not self.attached:
            return CheckStatus(NAME, CheckState.NOT_ATTACHED, self.why_not or "")
        if self.comparison is None:
            return CheckStatus(NAME, CheckState.NO_VERDICT, self.why_not or "")
        if self.comparison.matches:
            return CheckStatus(NAME, CheckState.PASSED, "matches the reference prediction")
        return CheckStatus(NAME, CheckState.FAILED, "; ".join(self.comparison.mismatches))

    def to_json(self) -> dict[str, Any]:
        p = self.prediction
        return {
            "attached": self.attached, "why_not": self.why_not,
            "matches": self.matches,
            "mismatches": [] if self.comparison is None else self.comparison.mismatches,
            "prediction": None if p is None else {
                "fatal": p.fatal, "kernel": p.kernel, "dtb": p.dtb,
                "initrd": None if p.initrd is None else
                {"address": p.initrd.address, "size": p.initrd.size}},
            "expected_clobbers": [] if p is None else
            [{"what": c.what, "address": c.region.address, "size": c.region.size}
             for c in p.clobbers],
        }


def inputs_for(guest: Guest, policy: str, attached_initrd_size: int) -> PlacementInputs | None:
    """The model's inputs for a prepared guest (docs/kexec.md, "Inputs").

    The tree as handed over gets the structural check of step 0 first
    (check_structure, the rules the wrapper applies), and a tree that fails
    it is given to the model as just that (tree_valid False): nothing else
    is read from it, and pylibfdt never sees it (pylibfdt trusts the header
    and reads past a buffer whose header lies).  None when the model has
    nothing to say: no kernel ELF to size, or a sound tree whose memory
    cannot be decoded (root cell counts the wrapper refuses)."""
    if guest.kernel is None:
        return None
    blob = guest.dtb_blob
    totalsize = int.from_bytes(blob[4:8], "big") if len(blob) >= 8 else len(blob)

    def inputs(memory: tuple[tuple[int, int], ...], initrd: tuple[int, int] | None,
               reserves: tuple[tuple[int, int], ...], valid: bool) -> PlacementInputs:
        assert guest.kernel is not None
        return PlacementInputs(
            memory=memory,
            wrapper_at=guest.image.span.address, image_size=guest.image.span.size,
            dtb_at=guest.dtb.address, dtb_size=totalsize,
            kernel_size=guest.kernel.size,
            initrd_start=initrd[0] if initrd else None,
            initrd_end=initrd[1] if initrd else None,
            reserves=reserves,
            attached_initrd_size=attached_initrd_size,
            policy=policy, tree_valid=valid)

    try:
        check_structure(blob, "device tree as handed over")
    except DeviceTreeError:
        return inputs((), None, (), False)
    try:
        tree = DeviceTree(blob, "device tree as handed over")
        return inputs(tuple(tree.memory()), tree.chosen_initrd(), tuple(tree.reserves()),
                      True)
    except DeviceTreeError:
        return None


def _hx(v: int | None) -> str:
    return "none" if v is None else f"0x{v:x}"


def _table_text(t: RangeTableState) -> str:
    used = ", ".join(f"0x{s:x}..0x{e:x}" for s, e in t.used())
    return (f"rma_end 0x{t.rma_end:x} heap 0x{t.heap_start:x}..0x{t.heap_end:x} "
            f"count {t.count} refused {t.refused} [{used}]")


def _fatal_text(code: int | None) -> str:
    if not code:
        return "no fatal code"
    kind = FATAL_KIND_OF_CODE.get(code)
    return f"fatal code {code}" + (f" ({kind})" if kind else "")


def compare(p: Prediction, r: BootFacts, table: RangeTableState | None = None) -> Comparison:
    """Every way the boot differs from the prediction.  `table` is the
    guest's range table at the hand-off or at the stop (None: not compared)."""
    out: list[str] = []
    if p.fatal is None:
        if r.handoff is None:
            out.append(f"outcome: predicted a hand-off to the kernel, got {r.reason} "
                       f"({r.message})")
    elif r.handoff is not None:
        out.append(f"outcome: predicted fatal ({p.fatal}: {p.fatal_detail}), "
                   f"got a hand-off to the kernel")
    elif r.reason != "fatal":
        out.append(f"outcome: predicted fatal ({p.fatal}: {p.fatal_detail}), "
                   f"got {r.reason} ({r.message})")
    elif r.fatal_code != FATAL_CODES[p.fatal]:
        out.append(f"outcome: predicted fatal ({p.fatal}, code {FATAL_CODES[p.fatal]}: "
                   f"{p.fatal_detail}), got {_fatal_text(r.fatal_code)}: {r.message!r}")
    if table is not None and p.table is not None and table != p.table:
        out.append(f"range table: predicted {_table_text(p.table)}, "
                   f"got {_table_text(table)}")
    if p.fatal is None and r.handoff is not None:
        # The wrapper's placements, as handed on: r4, r3 and the final
        # tree's /chosen (whatever the kernel then does with them).
        if r.handoff.kernel != p.kernel:
            out.append(f"kernel: predicted {_hx(p.kernel)}, got {_hx(r.handoff.kernel)}")
        if r.handoff.dtb != p.dtb:
            out.append(f"device tree: predicted {_hx(p.dtb)}, got {_hx(r.handoff.dtb)}")
        want = None if p.initrd is None else (p.initrd.address, p.initrd.size)
        got = None if r.initrd is None else (r.initrd.address, r.initrd.size)
        if want != got:
            def txt(v: tuple[int, int] | None) -> str:
                return "none" if v is None else f"0x{v[0]:x} (0x{v[1]:x} bytes)"
            out.append(f"initrd: predicted {txt(want)}, got {txt(got)}")
    return Comparison(not out, out)


def handed_on_initrd(final_dtb: bytes | None) -> Placement | None:
    """The initrd /chosen names in the tree handed to the kernel.  A
    zero-size one (linux,initrd-start equal to -end) is none, as the
    wrapper reads it (docs/kexec.md, step 3)."""
    if final_dtb is None:
        return None
    try:
        span = DeviceTree(final_dtb, "final device tree").chosen_initrd()
    except DeviceTreeError:
        return None
    if span is None or span[1] == span[0]:
        return None
    return Placement(span[0], span[1] - span[0])


class ModelCheck:
    """Observer: predicts the boot from its inputs and compares.

    policy and attached_initrd_size describe the build, which the guest
    alone does not tell."""

    name = NAME

    def __init__(self, policy: str, attached_initrd_size: int = 0) -> None:
        self.policy = policy
        self.attached_initrd_size = attached_initrd_size
        self.view: RangeTableView | None = None
        self.why_not: str | None = None
        self.table_at_handoff: RangeTableState | None = None

    def attach(self, guest: Guest) -> None:
        try:
            self.view = RangeTableView(guest.image)
        except CheckerError as e:
            self.why_not = f"the model describes bwemu's wrapper only: {e}"
            return
        view, machine = self.view, guest.machine

        def snapshot(handoff: Handoff) -> None:
            # The kernel's copy of itself to 0 may overwrite the wrapper later.
            self.table_at_handoff = view.read_ranges(machine)
        guest.on_handoff(snapshot)

    def finish(self, guest: Guest, run: RunOutcome) -> ModelFindings:
        if self.view is None:
            return ModelFindings(False, why_not=self.why_not)
        if run.reason == "handoff":
            return ModelFindings(True, why_not="the run was stopped at the hand-off, as asked")
        inputs = inputs_for(guest, self.policy, self.attached_initrd_size)
        if inputs is None:
            return ModelFindings(True, why_not="the model cannot read its inputs (no "
                                 "kernel ELF, or root cell counts it does not decode)")
        p = predict(inputs)
        if run.reason == "fatal" and run.fatal_code not in FATAL_KIND_OF_CODE:
            # A stop on input the placement model does not describe (a
            # broken kernel payload, say): nothing to compare.
            return ModelFindings(True, p, why_not=f"the wrapper stopped on input the "
                                 f"placement model does not describe (fatal code "
                                 f"{run.fatal_code})")
        table = (self.table_at_handoff if guest.handoff is not None
                 else self.view.read_ranges(guest.machine))
        facts = BootFacts(run.reason, run.message, run.fatal_code, guest.handoff,
                          handed_on_initrd(guest.final_dtb))
        return ModelFindings(True, p, compare(p, facts, table))


__all__ = ["BootFacts", "Comparison", "FATAL_CODES", "ModelCheck", "ModelFindings",
           "compare", "handed_on_initrd", "inputs_for"]
