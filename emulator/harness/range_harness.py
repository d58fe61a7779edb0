"""Direct calls into the wrapper's range-table C: the harness of the
differential tests and of `bwemu ranges-check`.

The wrapper runs in a machine of its own; each model operation becomes a
call of its C function (emulator/guest/calling.py), checked by the
lockstep mirror as it returns.  A failing sequence is cut down one
operation at a time (minimise()).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from pathlib import Path

from wrapper_model import Op, OpResult, RangeTable

from ..checkers.mirror import API, DivergenceError, RangeMirror
from ..checkers.mirror.operations import OUT_SIZE
from ..checkers.rangetable import RangeTableView
from ..guest.addresses import LoadedImage
from ..guest.calling import CallStopped, GuestCaller, RegionSnapshot, signed32
from ..guest.elf import ElfImage
from ..guest.machine import Machine

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
        self.image = LoadedImage(self.elf, base)   # base: the load offset
        span = self.image.span
        self.scratch = (span.end + SCRATCH_SIZE - 1) & ~(SCRATCH_SIZE - 1)
        self.machine = Machine([(span.address, span.size), (self.scratch, SCRATCH_SIZE)])
        for addr, data in self.image.segments():
            self.machine.write(addr, data)
        self.caller = GuestCaller(self.machine, self.image, scratch=self.scratch,
                                  scratch_size=SCRATCH_SIZE, demand_paging=True)
        view = RangeTableView(self.image)
        self.mirror = (RangeMirror(self.machine, self.image, model_factory, record=record,
                                   view=view, return_sites=[self.caller.return_pad])
                       if mirror else None)
        if self.mirror is not None:
            self.caller.return_callbacks.append(self.mirror.returned)
        self.caller.start_up()
        self._snapshot = RegionSnapshot(self.machine, [
            (view.ranges.address, view.ranges.size), (view.heap.address, view.heap.size)])
        #: Guest memory the operations must not write: image, bss, stack, scratch.
        self.reserved = (span.address, self.scratch + SCRATCH_SIZE)
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
        size = OUT_SIZE[fn.out]
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
            except CallStopped as e:
                if self.mirror is not None and self.mirror.divergence is not None:
                    raise DivergenceError(self.mirror.divergence, e.stop) from None
                raise
        return results

    def table_bytes(self) -> tuple[bytes, bytes]:
        """The guest's `ranges` and `heap` bytes now."""
        (r_addr, r_old), (h_addr, h_old) = self._snapshot.saved   # as __init__ listed them
        read = self.machine.uc.mem_read
        return bytes(read(r_addr, len(r_old))), bytes(read(h_addr, len(h_old)))

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


__all__ = ["HARNESS_BASE", "RangeHarness", "SENTINEL"]
