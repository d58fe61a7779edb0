"""Turning a BootResult into text for people and JSON for programs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .checkers.mirror import format_table
from .checkers.watch import overwrite_json
from .guest.addresses import Placement
from .guest.observer import CheckState
from .harness.result import BootResult, ExitReason

if TYPE_CHECKING:
    from .debug.failure_report import FailureReport

VERDICTS = {
    ExitReason.KERNEL: "kernel reached",
    ExitReason.FATAL: "the wrapper stopped with a fatal error",
    ExitReason.EXCEPTION: "the CPU took an unexpected exception",
    ExitReason.BUDGET: "budget exhausted: the guest ran away (a loop?)",
    ExitReason.DIVERGENCE: "the wrapper's range table diverged from the reference model",
    ExitReason.HANDOFF: "stopped at the hand-off, as asked",
}


def _placement(p: Placement | None) -> dict[str, int] | None:
    return None if p is None else {"address": p.address, "size": p.size}


def _hex(p: Placement | None) -> str:
    return "-" if p is None else f"0x{p.address:x}..0x{p.end:x} (0x{p.size:x} bytes)"


def _overwrites_summary(r: BootResult) -> str:
    """How many stores hit protected memory, and the first of them."""
    ows = r.overwrites or []
    first = ows[0]
    where = f"{first.function or '?'}" + (f" ({first.file}:{first.line})" if first.file else "")
    more = f" and {len(ows) - 1} more" if len(ows) > 1 else ""
    return (f"protected memory was written: {first.region} at 0x{first.address:x} "
            f"by {where}{more}")


def verdict(r: BootResult) -> str:
    """One line: OK only when r.passed, which the library computes from the
    checks; otherwise what failed, the exit first."""
    if not r.reached_kernel:
        extra = f"; {_overwrites_summary(r)}" if r.overwrites else ""
        return f"FAIL: {VERDICTS.get(r.exit, str(r.exit))}: {r.message}{extra}"
    if not r.passed:
        problems = []
        for c in r.failures:
            if c.name == "watch":
                problems.append(_overwrites_summary(r))
            elif c.name == "model":
                problems.append(f"the placement {r.comparison}")
            else:
                problems.append(f"{c.name}: {c.detail}")
        problems += [f"{c.name} reached no verdict ({c.detail})" for c in r.unjudged]
        return "FAIL: kernel reached, but " + "; ".join(problems)
    extra = ", initrd intact" if r.initrd_intact else ""
    notes = []
    off = [c.name for c in r.checks if c.state is CheckState.NOT_ATTACHED]
    if off:
        notes.append(f"{', '.join(off)} not attached")
    h = r.handoff_check
    if h is not None and h.kernel_image_ok is None:
        notes.append("kernel image not compared: no kernel ELF given")
    unchecked = f" ({'; '.join(notes)})" if notes else ""
    return f"OK: kernel reached with a valid device tree{extra}{unchecked}"


def to_json(r: BootResult) -> dict[str, Any]:
    rep = r.kernel_report
    loc = r.location
    return {
        "scenario": r.scenario,
        "exit": r.exit.value,
        "passed": r.passed,
        "fatal_code": r.fatal_code,
        "message": r.message,
        "pc": r.pc,
        "location": None if loc is None else
        {"function": loc.function, "file": loc.file, "line": loc.line},
        "console": r.console,
        "kernel": _placement(r.kernel),
        "dtb": _placement(r.dtb),
        "initrd": _placement(r.initrd),
        "wrapper": _placement(r.layout.wrapper),
        "handoff": None if r.handoff is None else
        {"r3": r.handoff.dtb, "r4": r.handoff.kernel, "r5": r.handoff.r5,
         "entry": r.handoff.entry},
        "kernel_report": None if rep is None else
        {"dtb": rep.dtb, "placed_at": rep.placed_at, "dtb_magic_ok": rep.dtb_magic_ok,
         "initrd_start": rep.initrd_start, "initrd_end": rep.initrd_end,
         "initrd_checksum": rep.initrd_checksum},
        "initrd_intact": r.initrd_intact,
        "overwrites": [overwrite_json(o) for o in r.overwrites],
        "checks": {c.name: {"state": c.state.value, "detail": c.detail} for c in r.checks},
        "findings": {name: f.to_json() for name, f in r.findings.items()},
        "range_operations": len(r.ranges),
        "divergence": None if r.divergence is None else str(r.divergence),
        "matches_model": r.matches_model,
        "model_mismatches": r.comparison.mismatches if r.comparison is not None else [],
        "expected_clobbers": [] if r.prediction is None else
        [{"what": c.what, "address": c.region.address, "size": c.region.size}
         for c in r.prediction.clobbers],
        "notes": r.notes,
        "verdict": verdict(r),
        "report": _failure_json(r),
    }


def dumps(r: BootResult) -> str:
    return json.dumps(to_json(r), indent=2)


def to_text(r: BootResult) -> str:
    lines = [f"bwemu: scenario {r.scenario!r}"]
    lay = r.layout
    lines.append(f"  loaded:  wrapper {_hex(lay.wrapper)}, device tree {_hex(lay.dtb)}"
                 + (f", initrd {_hex(lay.initrd)}" if lay.initrd else ""))
    lines += [f"  note:    {n}" for n in r.notes]
    lines.append("--- console " + "-" * 50)
    lines.append(r.console.rstrip("\n") or "(nothing printed)")
    lines.append("-" * 62)
    if r.reached_kernel:
        lines.append(f"  kernel:      {_hex(r.kernel)}")
        lines.append(f"  device tree: {_hex(r.dtb)}")
        lines.append(f"  initrd:      {_hex(r.initrd)}")
    else:
        where = f" in {r.location}" if r.location else ""
        lines.append(f"  stopped at pc 0x{r.pc:x}{where}")
    if r.comparison is not None:
        lines.append(f"  model:       {r.comparison}")
    if r.mirror is not None and r.mirror.attached:
        state = ("every table state equal to the model's" if r.divergence is None
                 else f"DIVERGED: {r.divergence.summary()}")
        lines.append(f"  mirror:      {len(r.ranges)} range-table operations mirrored, {state}")
    if r.watch is not None and not r.overwrites:
        lines.append("  watch:       no store into protected memory")
    for c in r.checks:
        if c.state in (CheckState.NOT_ATTACHED, CheckState.NO_VERDICT):
            lines.append(f"  {c.name + ':':12s} {c.state.value}" +
                         (f": {c.detail}" if c.detail else ""))
    for o in r.overwrites:
        lines.append(f"  OVERWRITE:   {o}")
        if o.ranges is not None:
            table = ", ".join(f"0x{s:x}..0x{e:x}" for s, e in o.ranges) or "(empty)"
            heap = "" if o.heap is None else f"; heap 0x{o.heap[0]:x}..0x{o.heap[1]:x}"
            lines.append(f"               range table then: {table}{heap}")
    failure = _failure(r)
    if failure is not None:
        lines.append(failure.text())
    lines.append(verdict(r))
    return "\n".join(lines)


def _failure(r: BootResult) -> FailureReport | None:
    """The failure report (emulator/debug/failure_report.py), None for a pass:
    the report's code is loaded only for a boot that needs one."""
    if r.passed:
        return None
    from .debug import failure_report
    return failure_report.build(r)


def _failure_json(r: BootResult) -> dict[str, Any] | None:
    failure = _failure(r)
    return None if failure is None else failure.to_json()


def ranges_text(r: BootResult) -> str:
    """The range-table timeline: each operation, its caller, the table after."""
    if not r.ranges:
        return "range table: no operations recorded (mirror off?)"
    return "range table timeline:\n" + format_table(r.ranges, callers=True)
