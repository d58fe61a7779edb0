"""The ring buffer of recent execution: the last N instructions (64 by
default) before each moment worth a look (the watch's first store into a
region) and before the stop, symbolised, for every boot that fails.

How, chosen by measurement (docs/debugging.md): recording as the boot runs
costs a Python block hook per translation block, about 0.25 us each, which
on the default boot (178,000 blocks in 25 ms of guest time) is +500 %.  So
a boot records nothing while it runs.  The observer only makes the machine
run in slices of SLICE instructions (Machine.slice: nothing on the default
boot, which is shorter than one slice) and notes, for each moment, how many
instructions had completed before its slice (Machine.progress).  When a
report wants the ring of a failed boot, the harness replays the run, which
is deterministic (same image, tree, registers and devices; the timebase
counts instructions), with a RingBuffer in record mode: it runs at full
speed up to a little before each noted slice, records (block start, size)
with a block hook through the slice, and at the same moment of the replay
expands the last blocks into instructions with capstone, reading the code
from guest memory as it is then.  The replay's moments are compared with
the original's, and the findings say whether they matched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unicorn import UC_HOOK_BLOCK

from ..errors import BwemuError
from ..guest.observer import CheckState, CheckStatus, Guest, GuestEvent, RunOutcome
from ..guest.symbols import PcInfo
from .disasm import Disassembler, Instruction, image_bits

NAME = "ring"
DEFAULT_LENGTH = 64
#: Instructions per emu_start while a ring is attached: large, since each
#: slice costs about 0.2 ms; a replay records at most one slice per moment.
SLICE = 1_000_000
#: Recording starts this many instructions before the noted slice.
MARGIN = 20_000
#: Events (first stores into a region) recorded around, at most.
MAX_EVENTS = 8


@dataclass(frozen=True)
class Moment:
    """A moment of the original run that a replay must reach again."""
    key: str              # "event 0", "event 1", ..., "stop"
    kind: str             # the GuestEvent's kind, or the exit reason
    pc: int
    detail: str
    slice_start: int      # instructions completed before its slice

    def same_as(self, other: Moment) -> bool:
        return (self.key, self.kind, self.pc, self.detail) == \
            (other.key, other.kind, other.pc, other.detail)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "pc": self.pc, "detail": self.detail,
                "slice_start": self.slice_start}


@dataclass(frozen=True)
class RingEntry:
    instruction: Instruction
    where: PcInfo

    def __str__(self) -> str:
        return f"0x{self.instruction.pc:x}  {self.where.symbol:<28s} {self.instruction.text}"

    def to_json(self) -> dict[str, Any]:
        return {**self.instruction.to_json(), "where": self.where.to_json()}


@dataclass
class RingSnapshot:
    """The last instructions executed up to one moment, oldest first; the
    last one is at the moment's pc (the store, the trap, or for a stop on
    the budget the next instruction)."""
    moment: Moment
    entries: list[RingEntry]

    def lines(self) -> list[str]:
        """One line per instruction, oldest first; a loop's repeated
        iterations are shown once with their count."""
        texts = [str(e) for e in self.entries]
        pcs = [e.instruction.pc for e in self.entries]
        out: list[str] = []
        i = 0
        while i < len(texts):
            period, times = _repeat_at(pcs, i, last=len(pcs) - 1)
            if times > 1:
                out += texts[i:i + period]
                out.append(f"  ... the {period} instructions above {times - 1} more "
                           f"time{'s' if times > 2 else ''}")
                i += period * times
            else:
                out.append(texts[i])
                i += 1
        if out:
            out[-1] += "   <- here"
        return out

    def to_json(self) -> dict[str, Any]:
        return {"moment": self.moment.to_json(),
                "instructions": [e.to_json() for e in self.entries]}


@dataclass
class RingFindings:
    """The ring's contents at each moment, once recorded (replayed); until
    then the moments a replay must reach.  Never a check."""
    length: int
    moments: list[Moment] = field(default_factory=list)
    snapshots: list[RingSnapshot] = field(default_factory=list)
    recorded: bool = False
    how: str = "not recorded: a boot records its ring only when a report asks for it"
    #: Set by the harness: replays the boot and returns the recorded findings.
    replay: Callable[[], RingFindings] | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> CheckStatus:
        return CheckStatus(NAME, CheckState.NOT_A_CHECK, self.how)

    def snapshot(self, key: str) -> RingSnapshot | None:
        return next((s for s in self.snapshots if s.moment.key == key), None)

    def ensure_recorded(self) -> None:
        """Replays the boot once (if the harness said how) and takes its ring."""
        if self.recorded or self.replay is None:
            return
        replay, self.replay = self.replay, None
        try:
            other = replay()
        except BwemuError as e:       # the image or the tree cannot be prepared again
            self.how = f"the replay that records the ring failed: {e}"
            return
        problems = [f"{m.key}: {m.kind} at 0x{m.pc:x} ({m.detail})"
                    for m in self.moments
                    if not any(m.same_as(o) for o in other.moments)]
        self.snapshots = other.snapshots
        self.recorded = True
        if problems:
            self.how = ("replayed, but the replay did not reach the same moments, so "
                        "these instructions may not be the original run's: missing "
                        + "; ".join(problems))
        else:
            self.how = (f"replayed (the run is deterministic) and recorded around "
                        f"{len(self.moments)} moment(s); each was reached again at the "
                        f"same pc")

    def to_json(self) -> dict[str, Any]:
        return {"length": self.length, "recorded": self.recorded, "how": self.how,
                "moments": [m.to_json() for m in self.moments],
                "snapshots": [s.to_json() for s in self.snapshots]}


def _repeat_at(pcs: list[int], i: int, last: int, longest: int = 16) -> tuple[int, int]:
    """(period, times) of the longest run of a pc sequence repeating from i
    (the entry at `last` is kept out of it, to stay visible); (1, 1) if none."""
    best = (1, 1)
    for period in range(1, longest + 1):
        times = 1
        while i + period * (times + 1) <= last and \
                pcs[i + period * times:i + period * (times + 1)] == pcs[i:i + period]:
            times += 1
        if times > 1 and period * times > best[0] * best[1]:
            best = (period, times)
    return best


class RingBuffer:
    """Observer: notes the moments of a run (see the module docstring) or,
    given the moments of an earlier run (record=), records around them."""

    name = NAME

    def __init__(self, length: int = DEFAULT_LENGTH, record: list[Moment] | None = None,
                 slice_size: int = SLICE) -> None:
        self.length = max(1, length)
        self.record = record
        self.slice_size = slice_size
        self.moments: list[Moment] = []
        self.snapshots: list[RingSnapshot] = []
        self._addrs = [0] * self.length
        self._sizes = [0] * self.length
        self._count = 0
        self._hook: int | None = None

    # --- the protocol -------------------------------------------------------

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        self.machine = guest.machine
        self.disasm = Disassembler(image_bits(guest.image))
        guest.on_event(self._event)
        if self.record is None:
            self.machine.slice = self.slice_size
            return
        for start, end in self._windows(self.record):
            if start <= 0:
                self._start()
            else:
                self.machine.at_instruction(start, self._start)
            self.machine.at_instruction(end, self._stop)

    def finish(self, guest: Guest, run: RunOutcome) -> RingFindings:
        stop = Moment("stop", run.reason, run.pc, run.message, self.machine.progress)
        self.moments.append(stop)
        if self.record is not None and self._hook is not None:
            self.snapshots.append(self._expand(stop))
        self._stop()
        findings = RingFindings(self.length, list(self.moments), list(self.snapshots),
                                recorded=self.record is not None)
        if self.record is not None:
            findings.how = "recorded in a replay"
        return findings

    # --- moments --------------------------------------------------------------

    def _event(self, ev: GuestEvent) -> None:
        if ev.index >= MAX_EVENTS:
            return
        m = Moment(f"event {ev.index}", ev.kind, ev.pc, ev.detail, self.machine.progress)
        self.moments.append(m)
        if self.record is not None and self._hook is not None:
            self.snapshots.append(self._expand(m))

    def _windows(self, moments: list[Moment]) -> list[tuple[int, int]]:
        """[start, end) instruction counts to record in, merged."""
        spans = sorted((max(0, m.slice_start - MARGIN), m.slice_start + self.slice_size + MARGIN)
                       for m in moments)
        out: list[list[int]] = []
        for s, e in spans:
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        return [(s, e) for s, e in out]

    # --- recording ------------------------------------------------------------

    def _start(self) -> None:
        if self._hook is not None:
            return
        addrs, sizes, n = self._addrs, self._sizes, self.length

        def block(uc: Any, address: int, size: int, user: Any) -> None:
            i = self._count
            addrs[i % n] = address
            sizes[i % n] = size
            self._count = i + 1
        self._hook = self.machine.uc.hook_add(UC_HOOK_BLOCK, block)
        # Blocks translated before the hook existed would not call it.
        self.machine.uc.ctl_flush_tb()   # type: ignore[attr-defined]

    def _stop(self) -> None:
        if self._hook is None:
            return
        self.machine.uc.hook_del(self._hook)
        self._hook = None
        self.machine.uc.ctl_flush_tb()   # type: ignore[attr-defined]

    def _expand(self, moment: Moment) -> RingSnapshot:
        """The last `length` instructions of the recorded blocks, up to and
        including the one at the moment's pc, read from guest memory now."""
        n, count = self.length, self._count
        blocks = [(self._addrs[i % n], self._sizes[i % n])
                  for i in range(max(0, count - n), count)]
        out: list[Instruction] = []
        m = self.machine
        for k, (addr, size) in enumerate(blocks):
            if k == len(blocks) - 1 and addr <= moment.pc < addr + max(size, 4):
                size = moment.pc + 4 - addr     # the moment is inside its last block
            if size <= 0 or not m.in_ram(addr, size):
                continue
            out += self.disasm.block(addr, m.read(addr, size))
        out = out[-n:]
        symbols = self.guest.symbols
        return RingSnapshot(moment, [RingEntry(i, symbols.symbolise(i.pc)) for i in out])


__all__ = ["DEFAULT_LENGTH", "Moment", "NAME", "RingBuffer", "RingEntry", "RingFindings",
           "RingSnapshot", "SLICE"]
