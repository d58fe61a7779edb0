"""The instruction trace: `bwemu boot --trace`.

One line per executed instruction:

    0x2001008  ranges_add+0x0             memranges.c:52     cmpdi r4, 0        cr=0x20000448

the PC, function+offset, the source line where it changes, the
instruction (capstone, in the image's mode) and the registers it changed
(GPRs, LR, CTR, CR, XER, MSR, compared before and after it).

A code hook on every instruction (the whole boot), or only on the asked
function's or range's code; then a block hook as well, so that the
registers changed by the last traced instruction before leaving the range
are read when the next block starts.  --trace-first N removes the hooks
after N lines; --trace-last N keeps the last N and writes them at the end.

It also follows the call structure (CallStructure): a branch that sets LR
pushes its return address, reaching the address on top pops it.  The
backtrace test checks the unwinder against it at every instruction.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE

from ..errors import InputError
from ..guest.calling import FastRegs
from ..guest.observer import CheckState, CheckStatus, Guest, Handoff, RunOutcome
from ..guest.symbols import ImageSymbols, PcInfo
from .access import IDS, NAMES, memory_reader
from .disasm import Disassembler, image_bits

NAME = "trace"
#: The registers compared before and after each instruction (all but the PC).
REG_NAMES = tuple(n for n in NAMES if n != "pc")
REG_IDS = tuple(i for n, i in zip(NAMES, IDS, strict=True) if n != "pc")
TOP = (1 << 64) - 1


def sets_link(word: int) -> bool:
    """Whether word is a branch with LK=1 (bl, bcl, bclrl, bcctrl, bctarl):
    it puts the address after it in LR, as a call does."""
    op = word >> 26
    if op in (16, 18):
        return bool(word & 1)
    return op == 19 and (word >> 1) & 0x3FF in (16, 528, 560) and bool(word & 1)


class CallStructure:
    """The calls in flight as the trace sees them: returns, innermost last."""

    def __init__(self) -> None:
        self.returns: list[int] = []

    def arrive(self, pc: int) -> None:
        """Execution reached pc: if it is the pending return address, that
        call is over (a return, or `bcl 20,31,$+4` reading the PC)."""
        if self.returns and self.returns[-1] == pc:
            self.returns.pop()

    def execute(self, pc: int, word: int) -> None:
        """The instruction at pc runs: a branch that sets LR is a call."""
        if sets_link(word):
            self.returns.append(pc + 4)

    def reset(self) -> None:
        self.returns.clear()


@dataclass(frozen=True)
class TraceRecord:
    pc: int
    word: int
    text: str
    where: PcInfo
    changes: tuple[tuple[str, int], ...]
    depth: int = 0
    note: str = ""

    def line(self, show_source: bool) -> str:
        src = ""
        if show_source:
            src = f"{self.where.file}:{self.where.line}" if self.where.file else \
                f"({self.where.where})"
        regs = " ".join(f"{n}=0x{v:x}" for n, v in self.changes)
        return (f"0x{self.pc:08x}  {self.where.symbol:<28s} {src:<20s} {self.text:<30s} "
                f"{regs}{self.note}").rstrip()


class UnknownFunctionError(InputError):
    """A function to trace that neither the image nor its kernel has."""


@dataclass
class TraceFindings:
    lines: int
    why_not: str | None = None
    kept: list[str] = field(default_factory=list)     # --trace-last: the lines kept
    #: Writing the trace failed (a full disk...): the trace stopped there.
    write_error: OSError | None = None

    @property
    def status(self) -> CheckStatus:
        return CheckStatus(NAME, CheckState.NOT_A_CHECK,
                           self.why_not or f"{self.lines} instruction(s) traced")

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "why_not": self.why_not}


class Tracer:
    """Observer: the instruction trace (see the module docstring).

    out: where lines go (None: nowhere; a sink or on_step still run).
    function / span: trace only that function's code (every function of
    that name; a kernel function is found at the hand-off) / only guest
    addresses in [span[0], span[1]).  first / last: only the first N lines
    / only the last N, written at the end.  sink(record): each record.
    on_step(pc, calls): before each instruction, with the call structure
    so far (a full trace only).  strict: a function in neither the image
    nor the kernel it carries is an UnknownFunctionError from attach,
    before the first instruction (else the findings say so).  A write to
    out that fails stops the trace; the findings keep the error."""

    name = NAME

    def __init__(self, out: TextIO | None = None, *, function: str | None = None,
                 span: tuple[int, int] | None = None, first: int | None = None,
                 last: int | None = None,
                 sink: Callable[[TraceRecord], None] | None = None,
                 on_step: Callable[[int, CallStructure], None] | None = None,
                 strict: bool = False) -> None:
        self.out = out
        self.function = function
        self.span = span
        self.first = first
        self.last = last
        self.sink = sink
        self.on_step = on_step
        self.strict = strict
        self.write_error: OSError | None = None
        self.count = 0
        self.calls = CallStructure()
        self._kept: deque[TraceRecord] = deque(maxlen=last or 1)
        self._pending: tuple[int, int] | None = None
        self._before: tuple[int, ...] = ()
        self._last_line: tuple[str | None, int | None] = (None, None)
        self._hooks: list[int] = []
        self._hooks_ever = False
        self._ranges_now: list[tuple[int, int]] = []
        self._done = False
        self._restart_at: int | None = None
        self._code_at = 0
        self._code_bytes = b""
        #: Whether anyone reads records (else only on_step and the count).
        self._records = out is not None or sink is not None or bool(last)
        self.why_not: str | None = None

    # --- the protocol -------------------------------------------------------

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        self.uc = guest.machine.uc
        self.symbols = guest.symbols
        self.disasm = Disassembler(image_bits(guest.image))
        self._read_regs = FastRegs(self.uc).batch_reader(REG_IDS)
        self._read_mem = memory_reader(self.uc)
        guest.on_handoff(self._handoff)
        if self.function is None and self.span is None:
            # The block's bytes are read once, at its start, for its words.
            self._hooks.append(self.uc.hook_add(UC_HOOK_BLOCK, self._block_bytes))
            self._hooks.append(self.uc.hook_add(UC_HOOK_CODE, self._code))
            return
        ranges = self._ranges()
        if not ranges and self.function is not None:
            missing = self._missing(guest, self.function)
            if missing is None:
                return      # a kernel function: hooked at the hand-off
            if self.strict:
                raise UnknownFunctionError(missing)
            self.why_not = missing
            return
        self._hook_ranges(ranges)

    def finish(self, guest: Guest, run: RunOutcome) -> TraceFindings:
        if self._pending is not None and not self._done:
            self._emit(self._pending, self._read_regs(), "   (the run stopped here)")
        self._pending = None
        self._remove_hooks()
        kept: list[str] = []
        if self.last:
            kept = self._format(self._kept)
            self._write("".join(line + "\n" for line in kept))
        if self.function is not None and not self._hooks_ever and self.why_not is None:
            self.why_not = f"no function {self.function!r} in the image or the kernel"
        if self.out is not None:
            try:
                self.out.flush()
            except OSError as e:
                self._write_failed(e)
        return TraceFindings(self.count, self.why_not, kept, self.write_error)

    def write_to(self, out: TextIO) -> None:
        """Lines go to out from now on (the CLI sets it in attach, so that
        a trace file is opened only once the function asked for is known)."""
        self.out = out
        self._records = True

    # --- the function asked for -------------------------------------------------

    @staticmethod
    def _missing(guest: Guest, name: str) -> str | None:
        """None if the image or the kernel it carries has a function name
        (the kernel's is hooked at the hand-off); else why not: which
        images' symbols were searched, and near names that do exist."""
        searched: list[str] = []
        tables: list[ImageSymbols] = []
        syms = ImageSymbols.of(guest.image.elf)
        tables.append(syms)
        searched.append(f"the image {syms.name}"
                        + ("" if syms.is_elf else " (not an ELF: no symbols)"))
        if guest.kernel is not None:
            syms = ImageSymbols.of_path(guest.kernel.path)
            # As Guest._map_kernel: a kernel without an ELF entry is not mapped.
            if syms.is_elf and syms.entry is not None:
                if syms.function_ranges(name):
                    return None
                tables.append(syms)
            searched.append(f"the kernel {syms.name}"
                            + ("" if syms.is_elf else " (not an ELF: no symbols)"))
        names = sorted({n for t in tables for n in symbol_names(t.path)})
        near = [n for n in difflib.get_close_matches(name, names, 3)
                if any(t.function_ranges(n) for t in tables)]
        hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
        return (f"{name!r}: no function of that name in the symbols of "
                f"{' or '.join(searched)}{hint}")

    # --- hooks ------------------------------------------------------------------

    def _ranges(self) -> list[tuple[int, int]]:
        if self.span is not None:
            return [self.span]
        assert self.function is not None
        return self.symbols.function_range(self.function)

    def _hook_ranges(self, ranges: list[tuple[int, int]]) -> None:
        self._ranges_now = ranges
        for start, end in ranges:
            # One word past the end as well: a fall-through out of the range
            # still reports the registers its last instruction changed.
            self._hooks.append(self.uc.hook_add(UC_HOOK_CODE, self._code_ranged,
                                                begin=start, end=min(end, TOP)))
        if ranges:
            self._hooks_ever = True
            self._hooks.append(self.uc.hook_add(UC_HOOK_BLOCK, self._block))

    def _handoff(self, handoff: Handoff) -> None:
        # The kernel starts from its entry, with calls of its own (the jump
        # there is not a call): the structure starts again when it arrives.
        self._restart_at = handoff.entry
        if self.function is not None and not self._hooks_ever:
            self._hook_ranges(self._ranges())   # the runner flushes translations next

    def _remove_hooks(self) -> None:
        for h in self._hooks:
            self.uc.hook_del(h)
        self._hooks = []

    def _in_ranges(self, pc: int) -> bool:
        return any(s <= pc < e for s, e in self._ranges_now)

    def _block_bytes(self, uc: Any, address: int, size: int, user: Any) -> None:
        self._code_at = address
        self._code_bytes = self._read_mem(address, size) or b""

    def _code(self, uc: Any, address: int, size: int, user: Any) -> None:
        if self._done:
            return
        off = address - self._code_at
        if 0 <= off <= len(self._code_bytes) - 4:
            word = int.from_bytes(self._code_bytes[off:off + 4], "big")
        else:
            word = int.from_bytes(self._read_mem(address, 4) or b"\0\0\0\0", "big")
        if address == self._restart_at:
            self.calls.reset()
            self._restart_at = None
        self.calls.arrive(address)
        if self.on_step is not None:
            self.on_step(address, self.calls)
        self.calls.execute(address, word)
        if not self._records:
            self.count += 1
            return
        regs = self._read_regs()
        if self._pending is not None:
            self._emit(self._pending, regs)
        self._pending = (address, word)
        self._before = regs

    def _code_ranged(self, uc: Any, address: int, size: int, user: Any) -> None:
        if self._done:
            return
        regs = self._read_regs()
        if self._pending is not None:
            self._emit(self._pending, regs)
            self._pending = None
        if self._in_ranges(address):
            self._pending = (address,
                             int.from_bytes(self._read_mem(address, 4) or b"\0\0\0\0", "big"))
            self._before = regs

    def _block(self, uc: Any, address: int, size: int, user: Any) -> None:
        # A new block outside the range: the pending instruction was the
        # last of the range, and its effects are in the registers now.
        if self._pending is not None and not self._done and not self._in_ranges(address):
            self._emit(self._pending, self._read_regs())
            self._pending = None

    # --- output -----------------------------------------------------------------

    def _emit(self, pending: tuple[int, int], after: tuple[int, ...], note: str = "") -> None:
        pc, word = pending
        before = self._before
        changes = tuple((REG_NAMES[i], v) for i, (u, v) in enumerate(zip(before, after,
                                                                          strict=True))
                        if u != v) if before else ()
        rec = TraceRecord(pc, word, self.disasm.text(pc, word), self.symbols.symbolise(pc),
                          changes, len(self.calls.returns), note)
        self.count += 1
        if self.sink is not None:
            self.sink(rec)
        if self.last:
            self._kept.append(rec)
        elif self.out is not None:
            self._write(self._format_one(rec) + "\n")
        if self.first is not None and self.count >= self.first:
            self._done = True
            self._pending = None
            self._remove_hooks()       # Unicorn allows it from inside a hook

    def _write(self, text: str) -> None:
        if self.out is None or not text:
            return
        try:
            self.out.write(text)
        except OSError as e:
            self._write_failed(e)

    def _write_failed(self, e: OSError) -> None:
        """A write failed (in a hook, or at the end): no more lines are
        written, the run goes on, and the findings carry the error."""
        self.write_error = self.write_error or e
        self.out = None
        if self.sink is None and self.on_step is None:
            # Nobody else reads the trace: stop tracing, as --trace-first does.
            self._done = True
            self._pending = None
            self._remove_hooks()       # Unicorn allows it from inside a hook

    def _format_one(self, rec: TraceRecord) -> str:
        key = (rec.where.file, rec.where.line)
        show = key != self._last_line
        self._last_line = key
        return rec.line(show)

    def _format(self, records: Any) -> list[str]:
        self._last_line = (None, None)
        return [self._format_one(r) for r in records]


def symbol_names(path: Path) -> list[str]:
    """Every named symbol of an ELF file ([] for a file that is not one):
    the candidates for a near match, read only when a name is not found."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    try:
        with open(path, "rb") as f:
            return [sym.name for sec in ELFFile(f).iter_sections()
                    if isinstance(sec, SymbolTableSection)
                    for sym in sec.iter_symbols() if sym.name]
    except (OSError, ELFError):
        return []


def parse_span(text: str) -> tuple[int, int]:
    """`A-B` (hex or decimal) as [A, B)."""
    a, sep, b = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not a range A-B")
    start, end = int(a, 0), int(b, 0)
    if end <= start:
        raise ValueError(f"{text!r}: the end must be above the start")
    return start, end


__all__ = ["CallStructure", "NAME", "TraceFindings", "TraceRecord", "Tracer",
           "UnknownFunctionError", "parse_span", "sets_link", "symbol_names"]
