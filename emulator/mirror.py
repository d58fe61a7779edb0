"""The lockstep mirror of the wrapper's range table (docs/memranges.md).

A RangeMirror hooks the range-table API in a loaded wrapper: the entry of
each function and each of its return instructions.  When an outermost API
call returns, it applies the same operation to the Python reference model
(wrapper_model), then compares, byte for byte, the guest's `ranges` and
`heap` objects with the model's rendering of them, the return value, and
what the function wrote through its out-parameter.  Every completed
operation is appended to a timeline; the first disagreement stops the run
(Machine.stop("divergence")) with a Divergence report.

It works the same during a whole boot (emulator/boot.py attaches one) and
during direct calls (RangeHarness below, used by the differential tests).

All hooks are block hooks (UC_HOOK_BLOCK), never instruction hooks:
while a run counts instructions (Machine.run always does), Unicorn checks
every executed instruction against every instruction hook's address range,
so each instruction hook, even one on code never reached, slows all guest
code down (about 0.5 us per call to a range function per hook, measured).
A function's entry starts a translation block, and so does the address a
call returns to, which is where a call is seen to complete: the word after
each `bl` to an API function (found by scanning the image), the caller's
return pad, and, for a call through a pointer, the return address seen at
entry (hooked then, and its cached translation dropped).  The return is
matched by return address and r1; GCC's out-of-line epilogues
(`b _restgpr0_31`) and tail calls need no special handling this way.

Nested API calls (ranges_init_malloc calls ranges_add and
simple_alloc_init, ranges_vmlinux_alloc calls malloc, realloc calls malloc
and free) count once, as the outermost operation, because the model's
operation includes the nested ones.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Callable, Iterable

from unicorn import UC_HOOK_BLOCK, UcError
from unicorn import ppc_const as P

from wrapper_model import HeapState, Op, OpResult, RangeTable, RangeTableState
from wrapper_model.constants import ALLOC_MAX_RECORDS, RANGES_MAX, RangesErr
from wrapper_model.heap import AllocRecord
from wrapper_model.layout import FieldDiff, StructLayout, diff_bytes, leaves

from .calls import CallStopped, FastRegs, GuestCaller, RegionSnapshot, signed32
from .dwarf_layout import struct_layout
from .elfimage import ElfImage, SourceLocation
from .machine import Machine


class MirrorError(Exception):
    """The mirror cannot be attached (missing symbol, layout the model cannot fill...)."""


# --- the API ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiFunction:
    """One hooked C function and how it maps onto a model operation."""
    symbol: str          # C name
    op: str              # wrapper_model operation name
    nargs: int           # operation arguments, taken from r3, r4, ...
    returns: str         # "int", "ptr" or "void"
    out: str | None = None   # "gap" (struct mem_range *) or "addr" (u64 *)
    out_reg: int = 0     # which argument register (0 = r3) holds the out pointer


API: tuple[ApiFunction, ...] = (
    ApiFunction("ranges_init", "init", 1, "void"),
    ApiFunction("ranges_add", "add", 2, "int"),
    ApiFunction("ranges_add_span", "add_span", 2, "int"),
    ApiFunction("ranges_is_free", "is_free", 2, "int"),
    ApiFunction("ranges_largest_gap", "largest_gap", 0, "int", "gap", 0),
    ApiFunction("ranges_gap_after_last", "gap_after_last", 0, "int", "gap", 0),
    ApiFunction("ranges_init_malloc", "init_malloc", 0, "int"),
    ApiFunction("ranges_vmlinux_alloc", "vmlinux_alloc", 1, "int", "addr", 1),
    ApiFunction("simple_alloc_init", "heap_init", 2, "void"),
    ApiFunction("malloc", "malloc", 1, "ptr"),
    ApiFunction("free", "free", 1, "void"),
    ApiFunction("realloc", "realloc", 2, "ptr"),
)
API_BY_OP = {f.op: f for f in API}
_OUT_SIZE = {"gap": 16, "addr": 8}

_ARG_REGS = tuple(getattr(P, f"UC_PPC_REG_{i}") for i in range(3, 11))
_R1, _R3, _LR = P.UC_PPC_REG_1, P.UC_PPC_REG_3, P.UC_PPC_REG_LR


# --- fast rendering -----------------------------------------------------------------------


class FlatCodec:
    """A struct.Struct built from a DWARF layout, for one struct's bytes.

    names lists the model's values in its own ("canonical") order, as leaf
    paths ("rma_end", "entry[3].end"); the layout must have exactly those
    leaves (a field the model knows nothing about is an error, as is one the
    C struct lacks).  Offsets, sizes, padding and byte order all come from
    the layout; padding packs as zero bytes.
    """

    _CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}

    def __init__(self, layout: StructLayout, names: list[str]) -> None:
        self.layout = layout
        found = sorted(leaves(layout), key=lambda leaf: leaf[1])
        paths = [p for p, _, _ in found]
        missing = sorted(set(names) - set(paths))
        extra = sorted(set(paths) - set(names))
        if missing or extra or len(paths) != len(names):
            raise MirrorError(
                f"struct {layout.name}: the model has no value for {extra[:4]} "
                f"and the C struct has no field for {missing[:4]}")
        fmt = [">" if layout.byte_order == "big" else "<"]
        pos = 0
        for path, offset, leaf in found:
            if offset < pos:
                raise MirrorError(f"struct {layout.name}: {path} overlaps the field before it")
            if leaf.size not in self._CODES:
                raise MirrorError(f"struct {layout.name}: {path} is {leaf.size} bytes")
            if offset > pos:
                fmt.append(f"{offset - pos}x")
            code = self._CODES[leaf.size]
            fmt.append(code.lower() if leaf.signed else code)
            pos = offset + leaf.size
        if layout.size > pos:
            fmt.append(f"{layout.size - pos}x")
        self.struct = struct.Struct("".join(fmt))
        index = {n: i for i, n in enumerate(names)}
        self.order = [index[p] for p in paths]
        self.identity = self.order == list(range(len(names)))

    def pack(self, values: list[int] | tuple[int, ...]) -> bytes:
        if self.identity:
            return self.struct.pack(*values)
        return self.struct.pack(*[values[i] for i in self.order])

    def unpack(self, data: bytes) -> tuple[int, ...]:
        raw = self.struct.unpack(data)
        if self.identity:
            return raw
        out = [0] * len(raw)
        for k, i in enumerate(self.order):
            out[i] = raw[k]
        return tuple(out)


RANGE_NAMES = ["rma_end", "heap_start", "heap_end", "count", "refused"] + [
    f"entry[{i}].{f}" for i in range(RANGES_MAX) for f in ("start", "end")]
HEAP_NAMES = ["base", "end", "next", "nrecords", "pad"] + [
    f"rec[{i}].{f}" for i in range(ALLOC_MAX_RECORDS) for f in ("base", "size", "state")]


class TableCodec:
    """Both structs of one wrapper ELF: render the model, decode the guest."""

    def __init__(self, elf_path: str | Path) -> None:
        self.ranges_layout = struct_layout(elf_path, "ranges")
        self.heap_layout = struct_layout(elf_path, "heap")
        self.ranges = FlatCodec(self.ranges_layout, RANGE_NAMES)
        self.heap = FlatCodec(self.heap_layout, HEAP_NAMES)

    def render_ranges(self, s: RangeTableState) -> bytes:
        return self.ranges.pack((s.rma_end, s.heap_start, s.heap_end, s.count, s.refused,
                                 *chain.from_iterable(s.entries)))

    def render_heap(self, s: HeapState) -> bytes:
        return self.heap.pack((s.base, s.end, s.next, s.nrecords, s.pad,
                               *chain.from_iterable((r.base, r.size, r.state)
                                                    for r in s.records)))

    def decode_ranges(self, data: bytes) -> RangeTableState:
        v = self.ranges.unpack(data)
        return RangeTableState(v[0], v[1], v[2], v[3], v[4],
                               tuple(zip(v[5::2], v[6::2])))

    def decode_heap(self, data: bytes) -> HeapState:
        v = self.heap.unpack(data)
        recs = tuple(AllocRecord(*v[i:i + 3]) for i in range(5, len(v), 3))
        return HeapState(v[0], v[1], v[2], v[3], v[4], recs)


# --- timeline and divergence ------------------------------------------------------------------


def _fmt_table(t: RangeTableState) -> str:
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


def _fmt_ret(fn: ApiFunction, ret: int | None) -> str:
    if ret is None or fn.returns == "void":
        return ""
    if fn.returns == "ptr":
        return f" -> {ret:#x}"
    try:
        name = RangesErr(ret).name if ret < 0 else None
    except ValueError:
        name = None
    return f" -> {ret}" + (f" ({name})" if name else "")


def _fmt_out(fn: ApiFunction, out: tuple[int, ...] | None) -> str:
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
    DWARF on first use, as that costs a line-table parse).
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
        head = f"#{self.index} {self.call}{_fmt_ret(fn, self.ret)}{_fmt_out(fn, self.out)}"
        return f"{head}   {_fmt_table(self.table)}"


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
        out.append(f"  expected:{_fmt_ret(fn, self.expected.ret)}"
                   f"{_fmt_out(fn, self.expected.out)}")
        out.append(f"  actual:  {_fmt_ret(fn, self.actual_ret)}{_fmt_out(fn, self.actual_out)}")
        out.append(f"  expected table: {_fmt_table(self.expected_table)}")
        out.append(f"  actual table:   {_fmt_table(self.actual_table)}")
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


class DivergenceError(AssertionError):
    """Raised by RangeHarness.run when the mirror stops a call."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(str(divergence))
        self.divergence = divergence


# --- the mirror ---------------------------------------------------------------------------------


def _call_sites(elf: ElfImage, targets: set[int]) -> list[int]:
    """Link-time addresses just after every `bl` into one of targets.

    `bl` is primary opcode 18 with AA = 0, LK = 1 (the Power ISA's
    encoding); the word after it (a nop the linker may turn into a TOC
    restore) is where the callee returns to.
    """
    sites = []
    for seg in elf.segments:
        data = seg.data
        for off in range(0, len(data) - 3, 4):
            w = int.from_bytes(data[off:off + 4], "big")
            if w >> 26 == 18 and w & 3 == 1:
                disp = w & 0x03FF_FFFC
                if disp & 0x0200_0000:
                    disp -= 1 << 26
                if seg.vaddr + off + disp in targets:
                    sites.append(seg.vaddr + off + 4)
    return sites


class RangeMirror:
    """Mirrors every range-table operation of a running wrapper into a model.

    machine: not yet run (hooks are added here).  elf, base: the wrapper
    image and its load offset.  model_factory: makes the reference model
    (a wrapper_model.RangeTable with its HeapModel); its initial state must
    be the guest's before the first operation (bss: all zero).  record:
    keep the timeline (the differential tests switch it off for speed).
    return_sites: run-time addresses calls return to that no `bl` in the
    image shows (a GuestCaller's return pad).
    """

    def __init__(self, machine: Machine, elf: ElfImage, base: int,
                 model_factory: Callable[[], RangeTable] = RangeTable,
                 record: bool = True, codec: TableCodec | None = None,
                 return_sites: Iterable[int] = ()) -> None:
        self.machine = machine
        self.uc = machine.uc
        self.regs = FastRegs(machine.uc)
        self.elf = elf
        self.base = base
        self.model_factory = model_factory
        self.record = record
        try:
            self.codec = codec or TableCodec(elf.path)
        except MirrorError:
            raise
        except Exception as e:
            raise MirrorError(f"cannot read the struct layouts of {elf.path}: {e}") from None
        r_addr = base + elf.symbol("ranges").value
        h_addr = base + elf.symbol("heap").value
        r_size, h_size = self.codec.ranges_layout.size, self.codec.heap_layout.size
        # One read covers both objects (they are usually neighbours in bss).
        self._span = min(r_addr, h_addr)
        self._span_len = max(r_addr + r_size, h_addr + h_size) - self._span
        self._r = (r_addr - self._span, r_addr - self._span + r_size)
        self._h = (h_addr - self._span, h_addr - self._span + h_size)
        self.ranges_addr, self.heap_addr = r_addr, h_addr
        self.entries: dict[str, int] = {}
        self.local_entries: dict[str, int] = {}    # ELFv2, where they differ
        for fn in API:
            if fn.symbol not in elf.symbols:
                raise MirrorError(f"{elf.path}: no function {fn.symbol!r} to mirror")
            entry = base + elf.function_entry(fn.symbol)
            self.entries[fn.symbol] = entry
            self._block_hook(entry, self._entry_hook(fn))
            # ELFv2: calls from the C enter at the local entry, past the TOC
            # set-up; a call from outside (a GuestCaller) at the global one.
            local = base + elf.local_entry(fn.symbol)
            if local != entry:
                self.local_entries[fn.symbol] = local
                self._block_hook(local, self._entry_hook(fn, local=True))
        link_entries = {e - base for e in chain(self.entries.values(),
                                                self.local_entries.values())}
        self.return_sites: set[int] = set()
        for site in _call_sites(elf, link_entries):
            self.add_return_site(base + site)
        for site in return_sites:
            self.add_return_site(site)
        self.late_return_sites = 0
        self.reset()

    # --- state --------------------------------------------------------------------------------

    def reset(self, model: RangeTable | None = None) -> None:
        """Starts over: a fresh model, no operations, no divergence."""
        self.model = model if model is not None else self.model_factory()
        self.timeline: list[RangeOp] = []
        self.history: list[Op] = []
        self.count = 0
        self.divergence: Divergence | None = None
        self._stack: list[tuple] = []
        self._rkey: tuple | None = None
        self._hkey: tuple | None = None
        self._exp_r = self._exp_h = b""

    # --- hooks ------------------------------------------------------------------------------------

    def _block_hook(self, addr: int, callback: Callable[[int], None]) -> None:
        self.uc.hook_add(UC_HOOK_BLOCK, lambda uc, a, size, user: callback(a),
                         begin=addr, end=addr)

    def add_return_site(self, addr: int) -> None:
        """Watch addr as a place API calls return to (before the first run,
        or followed by dropping addr's cached translation)."""
        if addr not in self.return_sites:
            self.return_sites.add(addr)
            self._block_hook(addr, self.returned)

    def _entry_hook(self, fn: ApiFunction, local: bool = False) -> Callable[[int], None]:
        uc = self.uc
        read = self.regs.read
        nargs = fn.nargs
        regs = _ARG_REGS
        out_reg = _ARG_REGS[fn.out_reg] if fn.out else None
        out_size = _OUT_SIZE.get(fn.out or "", 0)

        head = self.regs.batch_reader((_R1, _LR) + regs[:nargs])

        def entered(pc: int) -> None:
            stack = self._stack
            sp, lr, *rest = head()
            if local and stack and stack[-1][0] is fn and stack[-1][1] == sp \
                    and stack[-1][2] == lr:
                # Entered at the global entry, whose translation block ended
                # before the local one (a page boundary): the same call.
                return
            if lr not in self.return_sites:
                # A call through a pointer: watch its return address from now on.
                self.add_return_site(lr)
                uc.ctl_remove_cache(lr, lr + 4)
                self.late_return_sites += 1
            if stack:
                stack.append((fn, sp, lr))      # nested: part of the outer operation
                return
            args = tuple(rest)
            ptr, before = None, None
            if out_reg is not None:
                ptr = read(out_reg)
                try:
                    before = bytes(uc.mem_read(ptr, out_size))
                except UcError:
                    before = None
            stack.append((fn, sp, lr, args, ptr, before))
        return entered

    def returned(self, pc: int) -> None:
        """A call may have returned to pc (called by the return-site hooks)."""
        stack = self._stack
        if not stack:
            return
        sp = self.regs.read(_R1)
        frame = None
        # Pop every frame returning here with this stack pointer (a tail
        # call leaves two frames that return to one place together).
        while stack and stack[-1][2] == pc and stack[-1][1] == sp:
            frame = stack.pop()
        if frame is not None and not stack:
            self._complete(frame, pc)

    # --- one completed operation ----------------------------------------------------------------------

    def _complete(self, frame: tuple, pc: int) -> None:
        fn, _sp, lr, args, ptr, before = frame
        uc = self.uc
        self.count += 1
        op = Op(fn.op, args)
        problems: list[str] = []
        try:
            expected = self.model.apply(op)
        except (ValueError, TypeError) as e:
            expected = OpResult(0)
            problems.append(f"the model refused the operation: {e}")

        r3 = self.regs.read(_R3)
        ret = None if fn.returns == "void" else signed32(r3) if fn.returns == "int" else r3
        if ret is not None and ret != expected.ret:
            problems.append(f"return value: expected {expected.ret}, got {ret}"
                            if fn.returns == "int" else
                            f"return value: expected {expected.ret:#x}, got {ret:#x}")

        out = None
        if fn.out is not None:
            size = _OUT_SIZE[fn.out]
            try:
                after: bytes | None = bytes(uc.mem_read(ptr, size))
            except UcError:
                after = None
            if after is None:
                problems.append(f"out-parameter pointer {ptr:#x} is not readable")
            else:
                if expected.out is not None or after != before:
                    out = struct.unpack(">QQ" if size == 16 else ">Q", after)
                if expected.out is None and after != before:
                    problems.append(f"out-parameter: expected untouched, got{_fmt_out(fn, out)}")
                elif expected.out is not None and out != tuple(expected.out):
                    problems.append(f"out-parameter: expected{_fmt_out(fn, expected.out)}, "
                                    f"got{_fmt_out(fn, out)}")

        raw = bytes(uc.mem_read(self._span, self._span_len))
        rb, hb = raw[self._r[0]:self._r[1]], raw[self._h[0]:self._h[1]]
        codec = self.codec
        model = self.model
        # Most operations change one struct or none: render only on change.
        # The model replaces its entry tuple / record objects when it changes
        # them, so these keys compare mostly by identity.
        rkey = (model.rma_end, model.heap_start, model.heap_end, model.refused, model.entries)
        heap = model.heap
        hkey = (heap.base, heap.end, heap.next, heap.records)
        if rkey != self._rkey:
            self._rkey, self._exp_r = rkey, codec.render_ranges(model.state())
        if hkey != self._hkey:
            self._hkey, self._exp_h = hkey, codec.render_heap(heap.state())
        exp_r, exp_h = self._exp_r, self._exp_h
        if rb != exp_r:
            problems.append("ranges bytes differ")
        if hb != exp_h:
            problems.append("heap bytes differ")

        if self.record:
            self.history.append(op)
            self.timeline.append(RangeOp(self.count, fn.symbol, op, ret, out, rb, hb,
                                         lr, codec, self._locate))
        if problems:
            self.divergence = self._divergence(fn, op, problems, expected, ret, out,
                                               model.state(), heap.state(), exp_r, exp_h,
                                               rb, hb, pc, lr)
            self.machine.stop("divergence", self.divergence.summary(), pc)

    def _locate(self, addr: int) -> SourceLocation | None:
        start, end = self.elf.span
        if self.base + start <= addr < self.base + end:
            return self.elf.locate(addr - self.base)
        return None

    def _divergence(self, fn, op, problems, expected, ret, out, m_state, h_state,
                    exp_r, exp_h, rb, hb, pc, lr) -> Divergence:
        c = self.codec
        return Divergence(
            index=self.count, function=fn.symbol, op=op, problems=problems,
            expected=expected, actual_ret=ret, actual_out=out,
            expected_table=m_state, actual_table=c.decode_ranges(rb),
            table_diffs=diff_bytes(c.ranges_layout, exp_r, rb),
            expected_heap=h_state, actual_heap=c.decode_heap(hb),
            heap_diffs=diff_bytes(c.heap_layout, exp_h, hb),
            pc=pc, location=self._locate(pc), entry=self.entries[fn.symbol],
            entry_location=self._locate(self.entries[fn.symbol]),
            history=list(self.history) if self.record else [])

# --- direct calls: the harness of the differential tests ----------------------------------------------

#: Where the harness loads the wrapper: high and odd, away from the
#: addresses the operation strategies favour (0, rma_end, 2^64 - 1...).
HARNESS_BASE = 0x5EED_0000_0000
SCRATCH_SIZE = 0x10000
SENTINEL = 0x5A5A5A5A5A5A5A5A


class RangeHarness:
    """The wrapper in a machine of its own, its range functions called directly.

    Loads the ELF at HARNESS_BASE, runs its start-up code (relocation, bss,
    TOC) up to start_wrapper, and snapshots the two objects the range
    functions change.  apply(op) calls the C function for a model Op and
    returns the guest's OpResult; with mirror=True (the default) a
    RangeMirror checks each call against the model as it returns.
    reset() restores the snapshot between examples.
    """

    def __init__(self, elf_path: str | Path, *, mirror: bool = True, record: bool = False,
                 base: int = HARNESS_BASE,
                 model_factory: Callable[[], RangeTable] = RangeTable) -> None:
        self.elf = ElfImage(elf_path)
        start, end = self.elf.span
        self.base = base
        self.scratch = (base + end + SCRATCH_SIZE - 1) & ~(SCRATCH_SIZE - 1)
        image = (base + start, end - start)
        self.machine = Machine([image, (self.scratch, SCRATCH_SIZE)])
        for seg in self.elf.segments:
            self.machine.write(base + seg.vaddr, seg.data)
        self.caller = GuestCaller(self.machine, self.elf, base, scratch=self.scratch,
                                  scratch_size=SCRATCH_SIZE, demand_paging=True)
        self.mirror = (RangeMirror(self.machine, self.elf, base, model_factory, record=record,
                                   return_sites=[self.caller.return_pad])
                       if mirror else None)
        if self.mirror is not None:
            self.caller.return_callbacks.append(self.mirror.returned)
        self.caller.start_up()
        ranges = base + self.elf.symbol("ranges").value
        heap = base + self.elf.symbol("heap").value
        self._snapshot = RegionSnapshot(self.machine, [
            (ranges, self.elf.symbol("ranges").size), (heap, self.elf.symbol("heap").size)])
        #: Guest memory the operations must not write: image, bss, stack, scratch.
        self.reserved = (base + start, self.scratch + SCRATCH_SIZE)
        self._sentinel16 = struct.pack(">QQ", SENTINEL, SENTINEL)
        self._calls = {f.op: f for f in API}

    def reset(self) -> None:
        self._snapshot.restore()
        self.caller.drop_demand_pages()
        if self.mirror is not None:
            self.mirror.reset()

    def apply(self, op: Op) -> OpResult:
        """Calls op's C function; the guest's return value and out-parameter.

        out is None when the function has no out-parameter or left it
        holding the sentinel the harness put there.
        """
        fn = self._calls[op.name]
        c = self.caller
        if fn.out is None:
            r3 = c.call(fn.symbol, *op.args)
            if fn.returns == "void":
                return OpResult(0)
            return OpResult(signed32(r3) if fn.returns == "int" else r3)
        c.fill_out(self._sentinel16)
        ptr = c.out()
        args = (ptr,) if fn.out == "gap" else (*op.args, ptr)
        ret = signed32(c.call(fn.symbol, *args))
        size = _OUT_SIZE[fn.out]
        raw = c.read_out(size)
        if raw == self._sentinel16[:size]:
            return OpResult(ret, None)
        return OpResult(ret, struct.unpack(">QQ" if size == 16 else ">Q", raw))

    def run(self, ops: Iterable[Op]) -> list[OpResult]:
        """Applies ops in order; raises DivergenceError at the first divergence."""
        results = []
        for op in ops:
            try:
                results.append(self.apply(op))
            except CallStopped:
                if self.mirror is not None and self.mirror.divergence is not None:
                    raise DivergenceError(self.mirror.divergence) from None
                raise
        return results

    def table_bytes(self) -> tuple[bytes, bytes]:
        """The guest's `ranges` and `heap` bytes now."""
        return tuple(bytes(self.machine.uc.mem_read(a, len(d)))   # type: ignore[return-value]
                     for a, d in self._snapshot.saved)

    def copy_conflicts(self, ops: Iterable[Op]) -> bool:
        """Would one of realloc's block copies in ops write the harness's own memory?

        The operations choose heap addresses from rma_end alone, so a
        sequence can place the heap over the image the harness runs; such
        a sequence tests the harness, not the C, and is skipped.
        """
        guide = RangeTable()
        lo, hi = self.reserved
        for op in ops:
            try:
                guide.apply(op)
            except ValueError:
                return False
            copy = guide.heap.last_copy if op.name == "realloc" else None
            if copy is not None:
                for a in (copy.src, copy.dst):
                    if a < hi and lo < a + copy.size:
                        return True
        return False

    def diverges(self, ops: list[Op]) -> bool:
        """Does this sequence, from a clean state, end in a divergence?"""
        self.reset()
        try:
            self.run(ops)
        except DivergenceError:
            return True
        return False

    def minimise(self, ops: list[Op]) -> list[Op]:
        """A failing sequence with every operation that can go removed.

        Deletes one operation at a time (never the first, the init) while
        the sequence still diverges, until no single deletion keeps it
        failing: a final pass after Hypothesis' own shrinking, which can
        leave no-op operations behind in sequences of dependent draws.
        """
        if not self.diverges(ops):
            raise ValueError("the sequence does not diverge")
        ops = list(ops)
        changed = True
        while changed:
            changed = False
            for i in range(len(ops) - 1, 0, -1):
                trial = ops[:i] + ops[i + 1:]
                if not self.copy_conflicts(trial) and self.diverges(trial):
                    ops = trial
                    changed = True
        return ops

    def close(self) -> None:
        self.elf.close()


__all__ = ["API", "ApiFunction", "Divergence", "DivergenceError", "FlatCodec",
           "MirrorError", "RangeHarness", "RangeMirror", "RangeOp", "TableCodec",
           "format_table"]
