"""A boot against what its scenario file expects: a typed outcome with text.

check(result, expect, xfail) compares a BootResult with an Expect (or, when
there is none, with the default verdict: BootResult.passed, the reference
prediction standing in for the expected placements).  With an Expect, a
failure that was expected passes when it is exactly what was expected and
nothing else failed: overwritten = ["initrd"] means the watch's hits are
all in initrd regions, at least one is, and every checker other than the
watch passed (the hand-off check's complaint about the initrd it received
is the expected overwrite's, so it is not counted twice).

The outcome's text puts expected and actual side by side, then the
checkers that failed, the checkers that did not judge the boot (not
attached, as the mirror and the model to a foreign image, or without a
verdict), every overwrite with its function and source line and the
range-table timeline.  A checker that did not judge is never counted as
passed: it is named in the text, the one-line summary and the properties.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from ..checkers.mirror import format_table
from ..checkers.model import FATAL_CODES, FATAL_KIND_OF_CODE
from ..guest.addresses import Placement
from ..guest.observer import CheckState, CheckStatus
from .result import BootResult, ExitReason
from .scenario_file import NONE, Expect

#: A watch region's name (emulator/checkers/watch.py) -> its kind in a file.
_REGION_PREFIXES = (("wrapper text", "wrapper"), ("input device tree", "input-dtb"),
                    ("initrd", "initrd"), ("reserve", "reserve"), ("final device tree", "dtb"),
                    ("outside RAM", "outside-ram"))


def region_kind(name: str) -> str:
    """The kind a scenario file names for a protected region of the watch."""
    for prefix, kind in _REGION_PREFIXES:
        if name.startswith(prefix):
            return kind
    return name


class Verdict(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    XFAILED = "xfailed"      # a known failure (xfail = "...") that still fails
    XPASSED = "xpassed"      # a known failure that now passes: remove the xfail

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Row:
    """One thing compared: what was expected and what the boot did."""
    what: str
    expected: str
    actual: str
    ok: bool


@dataclass
class Outcome:
    scenario: str
    verdict: Verdict
    rows: list[Row]
    problems: list[str] = field(default_factory=list)   # beyond the rows
    details: list[str] = field(default_factory=list)    # overwrites, timeline
    xfail: str | None = None
    against: str = "the expectations of the file"
    #: What the boot did, whatever was compared: exit, placements, overwrites.
    observed: dict[str, str] = field(default_factory=dict)
    #: The checkers that did not judge this boot (not_checked()).
    not_checked: list[CheckStatus] = field(default_factory=list)
    #: Every checker's standing: name -> {"state", "detail"}.
    checks: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """The verdict a test runner takes: a known failure passes."""
        return self.verdict in (Verdict.PASSED, Verdict.XFAILED)

    @property
    def mismatches(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def summary(self) -> str:
        """One line, ending with the checkers that did not judge the boot."""
        unjudged = f" ({unjudged_phrase(self.not_checked)})" if self.not_checked else ""
        if self.verdict is Verdict.XPASSED:
            return f"passed, but is marked xfail ({self.xfail}): remove the xfail{unjudged}"
        wrong = [f"{r.what}: expected {r.expected}, got {r.actual}" for r in self.mismatches]
        parts = wrong + self.problems
        if self.verdict is Verdict.XFAILED:
            return f"known failure ({self.xfail}): " + "; ".join(parts) + unjudged
        return ("; ".join(parts) if parts else "as expected") + unjudged

    def text(self) -> str:
        """Expected and actual side by side, then the failed checks, each
        overwrite and the range-table timeline."""
        head = {Verdict.PASSED: "passed", Verdict.FAILED: "FAILED",
                Verdict.XFAILED: f"failed as known (xfail: {self.xfail})",
                Verdict.XPASSED: f"PASSED although marked xfail ({self.xfail}): "
                                 f"remove the xfail"}[self.verdict]
        lines = [f"scenario {self.scenario}: {head}, against {self.against}"]
        w1 = max([len("what")] + [len(r.what) for r in self.rows])
        w2 = max([len("expected")] + [len(r.expected) for r in self.rows])
        w3 = max([len("actual")] + [len(r.actual) for r in self.rows])
        lines.append(f"  {'what':{w1}}  {'expected':{w2}}  {'actual':{w3}}")
        for r in self.rows:
            mark = "" if r.ok else "   <- differs"
            lines.append(f"  {r.what:{w1}}  {r.expected:{w2}}  {r.actual:{w3}}".rstrip() + mark)
        if self.problems:
            lines.append("also failed:")
            lines += [f"  {p}" for p in self.problems]
        if self.not_checked:
            lines.append("not checked:")
            lines += [f"  {c}" for c in self.not_checked]
        lines += self.details
        return "\n".join(lines)

    def properties(self) -> list[tuple[str, str]]:
        """(name, value) pairs for a report (JUnit properties): the verdict,
        what the boot did (exit, placements, overwritten regions) and, if
        any, the checkers that did not judge it, with why."""
        out = [("verdict", self.verdict.value), *self.observed.items()]
        if self.not_checked:
            out.append((NOT_CHECKED, "; ".join(map(str, self.not_checked))))
        return out


#: The property naming the checkers that did not judge a boot.
NOT_CHECKED = "not checked"


def not_checked(r: BootResult) -> list[CheckStatus]:
    """The checkers that did not judge this boot: each one not attached,
    and each without a verdict, except the hand-off check's when the run
    ended before any hand-off (nothing was handed off; the exit says why)."""
    nothing_handed_off = r.handoff is None and not r.reached_kernel
    return [c for c in r.checks if c.state is CheckState.NOT_ATTACHED
            or (c.state is CheckState.NO_VERDICT
                and not (c.name == "handoff" and nothing_handed_off))]


def unjudged_phrase(statuses: list[CheckStatus]) -> str:
    """Short: 'mirror, model not attached; handoff without a verdict'."""
    groups = [(CheckState.NOT_ATTACHED, "not attached"),
              (CheckState.NO_VERDICT, "without a verdict")]
    parts = []
    for state, words in groups:
        names = [c.name for c in statuses if c.state is state]
        if names:
            parts.append(f"{', '.join(names)} {words}")
    return "; ".join(parts)


def _hx(v: int | str | None) -> str:
    if v is None or v == NONE:
        return NONE
    return f"0x{v:x}" if isinstance(v, int) else v


def actual_placements(r: BootResult) -> dict[str, int | str]:
    """What the boot handed on: r4 (the kernel), r3 (the tree) and the
    initrd the tree's /chosen names; "none" where there is nothing."""
    h = r.handoff
    init: Placement | None = r.initrd
    return {"kernel": NONE if h is None else h.kernel,
            "dtb": NONE if h is None else h.dtb,
            "initrd": NONE if init is None else init.address}


def overwritten_kinds(r: BootResult) -> tuple[str, ...]:
    return tuple(sorted({region_kind(o.region) for o in r.overwrites}))


def _details(r: BootResult) -> list[str]:
    out: list[str] = []
    if r.overwrites:
        out.append("overwrites (stores into protected memory):")
        for o in r.overwrites:
            out.append(f"  {o}")
            table = ", ".join(f"0x{s:x}..0x{e:x}" for s, e in o.ranges or []) or "(empty)"
            out.append(f"    range table then: {table}")
    if not r.reached_kernel and r.location is not None:
        out.append(f"stopped at pc 0x{r.pc:x} in {r.location}: {r.message}")
    if r.ranges:
        out.append("range-table timeline:")
        out += ["  " + line for line in format_table(r.ranges, callers=True).splitlines()]
    return out


def _default_rows(r: BootResult) -> list[Row]:
    """No [expect]: the reference prediction is what was expected."""
    p = r.prediction
    actual = actual_placements(r)
    if p is None:
        return [Row("exit", "kernel", r.exit.value, r.reached_kernel)] + [
            Row(k, "(no prediction)", _hx(v), True) for k, v in actual.items()]
    want_exit = "kernel" if p.fatal is None else f"fatal ({p.fatal})"
    got_exit = r.exit.value
    if r.exit is ExitReason.FATAL:
        got_exit = f"fatal ({FATAL_KIND_OF_CODE.get(r.fatal_code or 0, r.fatal_code)})"
    rows = [Row("exit", want_exit, got_exit, want_exit == got_exit)]
    predicted = {"kernel": p.kernel, "dtb": p.dtb,
                 "initrd": None if p.initrd is None else p.initrd.address}
    for k, v in actual.items():
        want = _hx(predicted[k])
        rows.append(Row(k, want, _hx(v), want == _hx(v)))
    clobbers = ", ".join(sorted({c.what for c in p.clobbers})) or "(none)"
    got = ", ".join(overwritten_kinds(r)) or "(none)"
    rows.append(Row("overwritten", "(none)", got, not r.overwrites))
    if p.clobbers:
        rows[-1] = Row("overwritten", f"(none; the model predicts {clobbers})", got,
                       not r.overwrites)
    return rows


def _expected_rows(r: BootResult, e: Expect) -> list[Row]:
    rows = [Row("exit", e.exit, r.exit.value, r.exit.value == e.exit)]
    if e.message is not None:
        rows.append(Row("message", f"/{e.message}/", repr(r.message),
                        re.search(e.message, r.message) is not None))
    if e.fatal is not None:
        code = FATAL_CODES[e.fatal]
        got_code = "none" if r.fatal_code is None else str(r.fatal_code)
        rows.append(Row("fatal", f"{e.fatal} (code {code})", f"code {got_code}",
                        r.fatal_code == code))
    actual = actual_placements(r)
    for k, v in e.placements().items():
        rows.append(Row(k, _hx(v), _hx(actual[k]), actual[k] == v))
    got = overwritten_kinds(r)
    rows.append(Row("overwritten", ", ".join(e.overwritten) or "(none)",
                    ", ".join(got) or "(none)", got == e.overwritten))
    return rows


#: Checkers whose failure an expected exit explains: the model predicts
#: the wrapper to its end and knows no budget; a divergence stops the run.
EXPLAINED_BY_EXIT = {ExitReason.BUDGET.value: frozenset({"model"}),
                     ExitReason.DIVERGENCE.value: frozenset({"mirror", "model"})}


def _unexpected_failures(r: BootResult, e: Expect) -> list[str]:
    """Checkers that failed beyond what the expectation explains."""
    out = []
    excused = EXPLAINED_BY_EXIT.get(e.exit, frozenset()) if r.exit.value == e.exit \
        else frozenset()
    for c in r.checks:
        if not c.failed or c.name == "watch" or c.name in excused:
            continue            # the watch is judged by the overwritten row
        if c.name == "handoff":
            h = r.handoff_check
            explained = 0
            if h is not None and h.initrd_intact is False and "initrd" in e.overwritten:
                explained += 1
            if h is not None and h.kernel_report is not None \
                    and not h.kernel_report.dtb_magic_ok and "dtb" in e.overwritten:
                explained += 1
            if h is not None and len(h.problems) <= explained:
                continue
        out.append(str(c))
    return out


def check(r: BootResult, expect: Expect | None, xfail: str | None = None) -> Outcome:
    """The boot against its file: the default verdict without an [expect]."""
    if expect is None:
        rows = _default_rows(r)
        problems = [str(c) for c in r.failures]
        ok = r.passed
        against = "the reference prediction (no [expect])"
        if r.prediction is None:
            model = next((c for c in r.checks if c.name == "model"), None)
            why = "" if model is None else f": model {model.state.value}"
            against = f"no [expect] and no reference prediction{why}"
    else:
        rows = _expected_rows(r, expect)
        problems = _unexpected_failures(r, expect)
        ok = all(row.ok for row in rows) and not problems
        against = "the file's [expect]"
    if expect is None and not r.reached_kernel:
        # The default verdict asks for the kernel: say how the boot ended.
        problems.insert(0, f"the kernel was not reached: {r.exit.value}: {r.message}")
    if xfail is not None:
        verdict = Verdict.XPASSED if ok else Verdict.XFAILED
    else:
        verdict = Verdict.PASSED if ok else Verdict.FAILED
    observed = {"exit": r.exit.value,
                **{k: _hx(v) for k, v in actual_placements(r).items()},
                "overwritten": ", ".join(overwritten_kinds(r)) or "(none)"}
    checks = {c.name: {"state": c.state.value, "detail": c.detail} for c in r.checks}
    return Outcome(r.scenario, verdict, rows, problems, [] if ok else _details(r), xfail,
                   against, observed, not_checked(r), checks)


__all__ = ["NOT_CHECKED", "Outcome", "Row", "Verdict", "actual_placements", "check",
           "not_checked", "overwritten_kinds", "region_kind", "unjudged_phrase"]
