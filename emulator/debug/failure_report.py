"""The failure report: why a boot did not pass, in one place.

For every boot that does not pass: what went wrong (the exit and every
failed check); for each first store into a protected region, the store
(function, line, instruction), its backtrace, how the kernel was entered
if the kernel did it, the last instructions before it and the range table
then; at the stop, the registers, the backtrace, the code around the PC
and the last instructions; the console's tail; the range table at the
stop and its timeline; the protected regions and their hits; for a model
mismatch, the first differing placement; and the memory map in text.

It reads a boot's findings only (BootView is what it needs of a
BootResult, which sits above this package); the ring buffer's contents are
recorded here, by replaying the boot, the first time a report asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ..checkers.mirror import MirrorFindings, format_table
from ..checkers.mirror.records import format_state
from ..checkers.model import ModelFindings
from ..checkers.watch import Overwrite, WatchFindings
from ..guest.observer import CheckState, CheckStatus, Findings
from .memmap import MemoryMap
from .memmap import to_text as map_text
from .ring import NAME as RING
from .ring import RingFindings, RingSnapshot
from .snapshots import NAME as DEBUG
from .snapshots import DebugFindings, Snapshot

CONSOLE_TAIL = 12
RULE = 72


class BootView(Protocol):
    """What the report reads of a boot's result (BootResult has it all)."""

    @property
    def scenario(self) -> str: ...
    @property
    def exit(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def pc(self) -> int: ...
    @property
    def console(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def checks(self) -> list[CheckStatus]: ...
    @property
    def findings(self) -> Mapping[str, Findings]: ...


F = TypeVar("F")


def _get(view: BootView, name: str, kind: type[F]) -> F | None:
    f = view.findings.get(name)
    return f if isinstance(f, kind) else None


@dataclass
class MomentReport:
    """One moment: the first store into a region, or the stop."""
    title: str
    snapshot: Snapshot | None
    ring: RingSnapshot | None
    overwrite: Overwrite | None = None
    entered_from: Snapshot | None = None      # the hand-off, for a store by the kernel
    registers: bool = False

    def lines(self, ring_how: str) -> list[str]:
        out = [_rule(self.title)]
        s = self.snapshot
        o = self.overwrite
        if o is not None:
            out.append(f"  {o}")
        if s is not None:
            here = next((i for i, _ in s.disassembly if i.pc == s.pc), None)
            where = s.symbols.symbolise(s.pc) if s.symbols is not None else None
            out.append(f"  pc 0x{s.pc:x}  {where or '?'}"
                       + (f":  {here.text}" if here is not None else ""))
            if self.registers:
                out.append("  registers:")
                out += [f"    {line}" for line in s.register_lines()]
            out.append("  backtrace:")
            out += [f"    {line}" for line in s.backtrace.lines()]
            if self.entered_from is not None:
                out.append("  the kernel was entered by the wrapper's jump, from:")
                out += [f"    {line}" for line in self.entered_from.backtrace.lines()]
            out.append(f"  code around pc 0x{s.pc:x}:")
            out += [f"    {line}" for line in s.disassembly_lines()]
        if self.ring is not None and self.ring.entries:
            out.append(f"  the last {len(self.ring.entries)} instructions, up to here "
                       f"(ring buffer):")
            out += [f"    {line}" for line in self.ring.lines()]
        else:
            out.append(f"  last instructions: not available ({ring_how})")
        if o is not None and o.ranges is not None:
            table = ", ".join(f"0x{a:x}..0x{b:x}" for a, b in o.ranges) or "(empty)"
            heap = "" if o.heap is None else f"; heap 0x{o.heap[0]:x}..0x{o.heap[1]:x}"
            out.append(f"  range table then: {table}{heap}")
        return out

    def to_json(self) -> dict[str, Any]:
        s = self.snapshot
        return {
            "title": self.title,
            "pc": None if s is None else s.pc,
            "where": None if s is None or s.symbols is None else
            s.symbols.symbolise(s.pc).to_json(),
            "overwrite": None if self.overwrite is None else {
                "region": self.overwrite.region, "address": self.overwrite.address,
                "end": self.overwrite.last, "pc": self.overwrite.pc,
                "symbol": str(self.overwrite.location or "")},
            "registers": s.registers if s is not None and self.registers else None,
            "backtrace": None if s is None else s.backtrace.to_json(),
            "entered_from": None if self.entered_from is None else
            self.entered_from.backtrace.to_json(),
            "disassembly": [] if s is None else
            [{**i.to_json(), "where": w.to_json()} for i, w in s.disassembly],
            "last_instructions": [] if self.ring is None else
            [e.to_json() for e in self.ring.entries],
            "range_table": None if self.overwrite is None or self.overwrite.ranges is None
            else [list(e) for e in self.overwrite.ranges],
        }


@dataclass
class FailureReport:
    scenario: str
    summary: list[str]
    moments: list[MomentReport]
    ring_how: str
    console_tail: list[str]
    console_lines: int
    table_at_stop: str | None
    timeline: str | None
    regions: list[tuple[str, int]] = field(default_factory=list)   # region text, hits
    model: list[str] = field(default_factory=list)
    memory_map: MemoryMap | None = None

    def lines(self) -> list[str]:
        out = [_rule(f"why the boot failed (scenario {self.scenario!r})", "=")]
        out += self.summary
        for m in self.moments:
            out += m.lines(self.ring_how)
        out.append(_rule(f"console (last {len(self.console_tail)} of {self.console_lines} "
                         f"lines)"))
        out += [f"  {line}" for line in self.console_tail] or ["  (nothing printed)"]
        out.append(_rule("range table"))
        out.append(f"  at the stop: {self.table_at_stop or 'not readable in this image'}")
        if self.timeline:
            out.append("  timeline:")
            out += [f"    {line}" for line in self.timeline.splitlines()]
        out.append(_rule("protected regions"))
        for text, hits in self.regions:
            out.append(f"  {text}" + (f"   <- {hits} overwrite(s)" if hits else ""))
        if not self.regions:
            out.append("  (the watch was not attached)")
        if self.model:
            out.append(_rule("model: first differing placement"))
            out += [f"  {line}" for line in self.model]
        if self.memory_map is not None:
            out.append(_rule("memory map"))
            out += map_text(self.memory_map)
        return out

    def text(self) -> str:
        return "\n".join(self.lines())

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "moments": [m.to_json() for m in self.moments],
            "ring": self.ring_how,
            "console_tail": self.console_tail,
            "range_table_at_stop": self.table_at_stop,
            "timeline": None if self.timeline is None else self.timeline.splitlines(),
            "protected_regions": [{"region": t, "hits": h} for t, h in self.regions],
            "model": self.model,
            "memory_map": None if self.memory_map is None else self.memory_map.to_json(),
            "text": self.text(),
        }


def _rule(title: str, ch: str = "-") -> str:
    head = f"{ch * 3} {title} "
    return head + ch * max(3, RULE - len(head))


def memory_map(view: BootView) -> MemoryMap | None:
    """The boot's memory map, with the watch's hits (None without the inspector)."""
    dbg = _get(view, DEBUG, DebugFindings)
    if dbg is None:
        return None
    watch = _get(view, "watch", WatchFindings)
    return dbg.facts.memory_map(watch.overwrites if watch is not None else [],
                                f"bwemu: scenario {view.scenario!r}, "
                                f"exit {view.exit}")


def build(view: BootView) -> FailureReport | None:
    """The report of a boot that did not pass (None for one that did)."""
    if view.passed:
        return None
    dbg = _get(view, DEBUG, DebugFindings)
    ring = _get(view, RING, RingFindings)
    watch = _get(view, "watch", WatchFindings)
    mirror = _get(view, "mirror", MirrorFindings)
    model = _get(view, "model", ModelFindings)
    if ring is not None:
        ring.ensure_recorded()
    ring_how = ring.how if ring is not None else "the ring buffer was not attached"

    summary = [f"  exit: {view.exit}: {view.message}"]
    for c in view.checks:
        if c.state is CheckState.FAILED:
            summary.append(f"  failed: {c.name}: {c.detail}")
    summary.append(f"  ring buffer: {ring_how}")

    moments: list[MomentReport] = []
    handoff = dbg.snapshot("hand-off") if dbg is not None else None
    snaps = [s for s in dbg.snapshots if s.key.startswith("event ")] if dbg is not None else []
    for s in snaps:
        ow = _overwrite_of(s, watch)
        title = s.detail.split(":")[0] if s.kind == "overwrite" else s.detail
        moments.append(MomentReport(
            title, s, ring.snapshot(s.key) if ring is not None else None, ow,
            entered_from=handoff if ow is not None and ow.phase == "kernel" else None))
    stop = dbg.snapshot("stop") if dbg is not None else None
    moments.append(MomentReport(f"at the stop: {view.exit}: {view.message}", stop,
                                ring.snapshot("stop") if ring is not None else None,
                                registers=True))

    lines = view.console.rstrip("\n").splitlines()
    table = None
    if handoff is not None and handoff.table is not None:
        # After the hand-off the kernel may have run over the wrapper's data.
        table = f"{format_state(handoff.table)}   (at the hand-off)"
    elif stop is not None and stop.table is not None:
        table = format_state(stop.table)
    timeline = None
    if mirror is not None and mirror.attached:
        timeline = format_table(mirror.timeline, callers=True)
    regions: list[tuple[str, int]] = []
    if watch is not None and watch.attached:
        for r in watch.regions:
            hits = sum(1 for o in watch.overwrites if o.region == r.name)
            regions.append((str(r), hits))
        for o in watch.overwrites:
            if not any(r.name == o.region for r in watch.regions):
                regions.append((f"{o.region} 0x{o.address:x}..0x{o.last:x}", 1))
    return FailureReport(view.scenario, summary, moments, ring_how,
                         lines[-CONSOLE_TAIL:], len(lines), table, timeline, regions,
                         _model_lines(model), memory_map(view))


def _overwrite_of(s: Snapshot, watch: WatchFindings | None) -> Overwrite | None:
    if watch is None or s.kind != "overwrite":
        return None
    return next((o for o in watch.overwrites
                 if o.pc == s.pc and s.detail.startswith(f"first store into {o.region}:")),
                None)


def _model_lines(model: ModelFindings | None) -> list[str]:
    if model is None or model.comparison is None or model.comparison.matches:
        return []
    mism = model.comparison.mismatches
    placement = [m for m in mism if m.split(":")[0] in ("kernel", "device tree", "initrd")]
    first = (placement or mism)[0]
    out = [f"first: {first}"]
    out += [f"also:  {m}" for m in mism if m != first]
    return out


__all__ = ["BootView", "FailureReport", "MomentReport", "build", "memory_map"]
