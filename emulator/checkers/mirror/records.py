"""What the mirror records: the timeline of completed operations and the
first divergence, with the text each prints as."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from wrapper_model import HeapState, Op, OpResult, RangeTableState
from wrapper_model.constants import RangesErr
from wrapper_model.layout import FieldDiff, TableCodec

from ...guest.calling import CallStopped
from ...guest.elf import SourceLocation
from ...guest.machine import Stop
from .operations import API_BY_OP, ApiFunction


def format_state(t: RangeTableState) -> str:
    used = t.entries[: min(t.count, len(t.entries))]
    text = " ".join(f"[{s:#x}..{e:#x})" for s, e in used) or "(empty)"
    extra = []
    if t.heap_end:
        extra.append(f"heap [{t.heap_start:#x}..{t.heap_end:#x})")
    if t.refused:
        extra.append(f"refused {t.refused}")
    stray = [f"entry[{i}]=[{s:#x}..{e:#x})" for i, (s, e) in enumerate(t.entries)
             if i >= t.count and (s or e)]
    if stray:
        extra.append("stray " + " ".join(stray))
    return text + (f"  ({', '.join(extra)})" if extra else "")


def fmt_ret(fn: ApiFunction, ret: int | None) -> str:
    if ret is None or fn.returns == "void":
        return ""
    if fn.returns == "ptr":
        return f" -> {ret:#x}"
    try:
        name = RangesErr(ret).name if ret < 0 else None
    except ValueError:
        name = None
    return f" -> {ret}" + (f" ({name})" if name else "")


def fmt_out(fn: ApiFunction, out: tuple[int, ...] | None) -> str:
    if fn.out is None:
        return ""
    if out is None:
        return " (out untouched)"
    if fn.out == "gap":
        return f" gap=[{out[0]:#x}..{out[1]:#x})"
    return f" addr={out[0]:#x}"


@dataclass(frozen=True, eq=False)
class RangeOp:
    """One completed range-table operation, as the guest performed it.

    index counts operations from 1; op is the model's Op (name, args);
    ret is the guest's return value (a C int as a signed number, a pointer
    as an unsigned one, None for a void function); out is what the guest
    wrote through the out-parameter ((start, end) or (addr,)), None when
    it left it untouched or has none.  table and heap are the guest's
    structs after the operation (decoded on first use).  caller is the
    run-time return address; where its function and line (resolved from
    DWARF on first use, as that costs a line-table parse).  locator must
    not reach the machine: a RangeOp is kept in a BootResult after the
    boot, and the Unicorn instance with its RAM must be free to go.
    """

    index: int
    function: str
    op: Op
    ret: int | None
    out: tuple[int, ...] | None
    raw_ranges: bytes = field(repr=False)
    raw_heap: bytes = field(repr=False)
    caller: int = 0
    codec: TableCodec | None = field(default=None, repr=False, compare=False)
    locator: Callable[[int], SourceLocation | None] | None = field(
        default=None, repr=False, compare=False)

    @cached_property
    def where(self) -> str | None:
        loc = self.locator(self.caller) if self.locator is not None else None
        return str(loc) if loc is not None else None

    @cached_property
    def table(self) -> RangeTableState:
        assert self.codec is not None
        return self.codec.decode_ranges(self.raw_ranges)

    @cached_property
    def heap(self) -> HeapState:
        assert self.codec is not None
        return self.codec.decode_heap(self.raw_heap)

    @property
    def call(self) -> str:
        return f"{self.function}({', '.join(hex(a) for a in self.op.args)})"

    def __str__(self) -> str:
        fn = API_BY_OP[self.op.name]
        head = f"#{self.index} {self.call}{fmt_ret(fn, self.ret)}{fmt_out(fn, self.out)}"
        return f"{head}   {format_state(self.table)}"

    def to_json(self) -> dict[str, Any]:
        """The operation and the guest's table after it (entries in use
        only), as plain numbers; the caller as its run-time address."""
        t = self.table
        return {"index": self.index, "function": self.function, "args": list(self.op.args),
                "ret": self.ret, "out": None if self.out is None else list(self.out),
                "caller": self.caller,
                "ranges": {"rma_end": t.rma_end, "heap_start": t.heap_start,
                           "heap_end": t.heap_end, "count": t.count, "refused": t.refused,
                           "entries": [list(e) for e in t.used()]}}


def format_table(entries: Iterable[RangeOp], callers: bool = True) -> str:
    """The timeline, one line per operation (plus its caller when known)."""
    lines = []
    for e in entries:
        line = str(e)
        if callers and e.where:
            line += f"   <- {e.where}"
        lines.append(line)
    return "\n".join(lines) if lines else "(no range-table operations)"


@dataclass
class Divergence:
    """The first operation on which the guest and the model disagree."""

    index: int
    function: str
    op: Op
    problems: list[str]
    expected: OpResult
    actual_ret: int | None
    actual_out: tuple[int, ...] | None
    expected_table: RangeTableState
    actual_table: RangeTableState
    table_diffs: list[FieldDiff]
    expected_heap: HeapState
    actual_heap: HeapState
    heap_diffs: list[FieldDiff]
    pc: int                      # where the run stopped: the call's return address
    location: SourceLocation | None      # ... and its function and line (the call site)
    entry: int                   # the called function's entry
    entry_location: SourceLocation | None
    history: list[Op] = field(default_factory=list)

    @property
    def call(self) -> str:
        return f"{self.function}({', '.join(hex(a) for a in self.op.args)})"

    def summary(self) -> str:
        return f"operation #{self.index} {self.call}: {'; '.join(self.problems)}"

    def __str__(self) -> str:
        fn = API_BY_OP[self.op.name]
        out = [f"divergence at operation #{self.index}: {self.call}"]
        out += [f"  {p}" for p in self.problems]
        out.append(f"  expected:{fmt_ret(fn, self.expected.ret)}"
                   f"{fmt_out(fn, self.expected.out)}")
        out.append(f"  actual:  {fmt_ret(fn, self.actual_ret)}{fmt_out(fn, self.actual_out)}")
        out.append(f"  expected table: {format_state(self.expected_table)}")
        out.append(f"  actual table:   {format_state(self.actual_table)}")
        if self.table_diffs:
            out.append("  ranges bytes differ:")
            out += [f"    {d}" for d in self.table_diffs]
        if self.heap_diffs:
            out.append("  heap bytes differ:")
            out += [f"    {d}" for d in self.heap_diffs]
        out.append(f"  {self.function} at {self.entry:#x}, {self.entry_location or '?'}")
        out.append(f"  stopped at pc {self.pc:#x} (its return address) in "
                   f"{self.location or '?'}")
        if self.history:
            out.append("  operations so far: " + ", ".join(str(o) for o in self.history))
        return "\n".join(out)


class DivergenceError(CallStopped):
    """Raised by RangeHarness.run when the mirror stops a call."""

    def __init__(self, divergence: Divergence, stop: Stop) -> None:
        super().__init__(divergence.function, stop, divergence.summary())
        self.divergence = divergence

    def __str__(self) -> str:
        return str(self.divergence)
