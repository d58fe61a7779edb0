"""The lockstep mirror's hook engine (docs/memranges.md).

A RangeMirror hooks the range-table API in a loaded wrapper: the entry of
each function and the places its calls return to.  When an outermost API
call returns, it applies the same operation to the Python reference model
(wrapper_model), then compares, byte for byte, the guest's `ranges` and
`heap` objects with the model's rendering of them, the return value, and
what the function wrote through its out-parameter.  Every completed
operation is appended to a timeline; the first disagreement stops the run
(Machine.stop("divergence")) with a Divergence report.

It works the same during a whole boot (MirrorChecker attaches one) and
during direct calls (emulator/harness/range_harness.py).

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
from collections.abc import Callable, Iterable
from itertools import chain

from unicorn import UC_HOOK_BLOCK, UcError

from wrapper_model import HeapState, Op, OpResult, RangeTable, RangeTableState
from wrapper_model.layout import diff_bytes

from ...errors import CheckerError
from ...guest import image_cache
from ...guest.addresses import LoadedImage
from ...guest.calling import FastRegs, signed32
from ...guest.elf import SourceLocation
from ...guest.machine import Machine
from ...guest.symbols import Symboliser
from ..rangetable import RangeTableView
from .operations import API, ARG_REGS, LR, OUT_SIZE, R1, R3, ApiFunction, call_sites
from .records import Divergence, RangeOp, fmt_out


class MirrorError(CheckerError):
    """The mirror cannot be attached (missing function, layout the model cannot fill...)."""


class RangeMirror:
    """Mirrors every range-table operation of a running wrapper into a model.

    machine: not yet run (hooks are added here).  image: the wrapper as
    loaded (its symbols and link <-> guest addresses).  model_factory: makes the reference model
    (a wrapper_model.RangeTable with its HeapModel); its initial state must
    be the guest's before the first operation (bss: all zero).  record:
    keep the timeline (the differential tests switch it off for speed).
    return_sites: run-time addresses calls return to that no `bl` in the
    image shows (a GuestCaller's return pad).  symbols: the boot's
    symboliser (Guest.symbols), else one over the image alone.
    """

    def __init__(self, machine: Machine, image: LoadedImage,
                 model_factory: Callable[[], RangeTable] = RangeTable,
                 record: bool = True, view: RangeTableView | None = None,
                 return_sites: Iterable[int] = (),
                 symbols: Symboliser | None = None) -> None:
        self.machine = machine
        self.symbols = symbols or Symboliser(image)
        self.uc = machine.uc
        self.regs = FastRegs(machine.uc)
        self.image = image
        self.model_factory = model_factory
        self.record = record
        view = view or RangeTableView(image)
        self.codec = view.codec
        r_addr, r_size = view.ranges.address, view.ranges.size
        h_addr, h_size = view.heap.address, view.heap.size
        # One read covers both objects (they are usually neighbours in bss).
        self._span = min(r_addr, h_addr)
        self._span_len = max(r_addr + r_size, h_addr + h_size) - self._span
        self._r = (r_addr - self._span, r_addr - self._span + r_size)
        self._h = (h_addr - self._span, h_addr - self._span + h_size)
        self.ranges_addr, self.heap_addr = r_addr, h_addr
        self.entries: dict[str, int] = {}
        self.local_entries: dict[str, int] = {}    # ELFv2, where they differ
        for fn in API:
            if not image.has_symbol(fn.symbol):
                raise MirrorError(f"{image.elf.path.name}: no function {fn.symbol!r} to mirror")
            entry = image.function_entry(fn.symbol)
            self.entries[fn.symbol] = entry
            self._block_hook(entry, self._entry_hook(fn))
            # ELFv2: calls from the C enter at the local entry, past the TOC
            # set-up; a call from outside (a GuestCaller) at the global one.
            local = image.local_entry(fn.symbol)
            if local != entry:
                self.local_entries[fn.symbol] = local
                self._block_hook(local, self._entry_hook(fn, local=True))
        link_entries = {image.to_link(e) for e in chain(self.entries.values(),
                                                        self.local_entries.values())}
        self.return_sites: set[int] = set()
        targets: set[int] = {e for e in link_entries if e is not None}
        # The scan depends on the image's bytes alone: made once per content.
        sites = image_cache.fact(image.elf.path, "mirror-call-sites",
                                 lambda _path: call_sites(image.elf, targets))
        for site in sites:
            self.add_return_site(image.to_guest(site))
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
        regs = ARG_REGS
        out_reg = ARG_REGS[fn.out_reg] if fn.out else None
        out_size = OUT_SIZE.get(fn.out or "", 0)

        head = self.regs.batch_reader((R1, LR) + regs[:nargs])

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
        sp = self.regs.read(R1)
        frame = None
        # Pop every frame returning here with this stack pointer (a tail
        # call leaves two frames that return to one place together).
        while stack and stack[-1][2] == pc and stack[-1][1] == sp:
            frame = stack.pop()
        if frame is not None and not stack:
            self._complete(frame, pc)

    # --- one completed operation ---------------------------------------------------------------

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

        r3 = self.regs.read(R3)
        ret = None if fn.returns == "void" else signed32(r3) if fn.returns == "int" else r3
        if ret is not None and ret != expected.ret:
            problems.append(f"return value: expected {expected.ret}, got {ret}"
                            if fn.returns == "int" else
                            f"return value: expected {expected.ret:#x}, got {ret:#x}")

        out = None
        if fn.out is not None:
            size = OUT_SIZE[fn.out]
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
                    problems.append(f"out-parameter: expected untouched, got{fmt_out(fn, out)}")
                elif expected.out is not None and out != tuple(expected.out):
                    problems.append(f"out-parameter: expected{fmt_out(fn, expected.out)}, "
                                    f"got{fmt_out(fn, out)}")

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
            # The symboliser's own method, not one of this mirror's: a RangeOp
            # outlives the boot (in its result), and a bound method of the
            # mirror would keep the mirror's Unicorn instance, with all its
            # RAM, alive as long as the result.
            self.timeline.append(RangeOp(self.count, fn.symbol, op, ret, out, rb, hb,
                                         lr, codec, self.symbols.locate))
        if problems:
            self.divergence = self._divergence(fn, op, problems, expected, ret, out,
                                               model.state(), heap.state(), exp_r, exp_h,
                                               rb, hb, pc, lr)
            self.machine.stop("divergence", self.divergence.summary(), pc)

    def _locate(self, addr: int) -> SourceLocation | None:
        return self.symbols.locate(addr)

    def _divergence(self, fn: ApiFunction, op: Op, problems: list[str], expected: OpResult,
                    ret: int | None, out: tuple[int, ...] | None,
                    m_state: RangeTableState, h_state: HeapState, exp_r: bytes, exp_h: bytes,
                    rb: bytes, hb: bytes, pc: int, lr: int) -> Divergence:
        c = self.codec
        # RangeTableView builds its codec with both layouts.
        assert c.ranges_layout is not None and c.heap_layout is not None
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
