"""The Unicorn machine: a 64-bit big-endian PowerPC CPU in real mode, RAM,
and the hooks other modules attach.

Unicorn 2.1.4 facts this relies on (docs/unicorn-notes.md):
- no ctl_set_cpu_model for PPC64 (it would pick a 32-bit CPU);
- UC_TLB_VIRTUAL with no TLB hook gives the identity mapping real mode
  needs (the default model would fault on the first fetch);
- a run must use an instruction count from the very first emu_start on an
  instance, or blocks translated uncounted later ignore the budget;
- code written after it was translated needs the translation cache flushed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from unicorn import (
    UC_ARCH_PPC,
    UC_HOOK_BLOCK,
    UC_HOOK_CODE,
    UC_HOOK_INTR,
    UC_HOOK_MEM_WRITE,
    UC_MODE_BIG_ENDIAN,
    UC_MODE_PPC64,
    UC_PROT_ALL,
    UC_TLB_VIRTUAL,
    Uc,
    UcError,
)
from unicorn import ppc_const as P

from ..errors import SetupError

PAGE = 0x1000
# emu_start needs an end address; this one is never reached (it is not
# word-aligned, so no instruction can sit there).
NEVER = 0xFFFF_FFFF_FFFF_FFF1

REGISTERS = {f"r{i}": getattr(P, f"UC_PPC_REG_{i}") for i in range(32)}
REGISTERS.update(pc=P.UC_PPC_REG_PC, lr=P.UC_PPC_REG_LR, ctr=P.UC_PPC_REG_CTR,
                 msr=P.UC_PPC_REG_MSR, cr=P.UC_PPC_REG_CR,
                 xer=P.UC_PPC_REG_XER)
# cr is the whole 32-bit condition register (UC_PPC_REG_CR0 is one 4-bit field).


class MachineError(SetupError):
    """A request the machine cannot honour (bad memory map, bad address)."""


@dataclass(frozen=True)
class Stop:
    """Why a run ended, as decided by a hook (or by Machine.run itself)."""
    reason: str          # "kernel", "fatal", "exception", "budget", "halt"
    message: str
    pc: int


def _page_span(start: int, end: int) -> tuple[int, int]:
    return start & ~(PAGE - 1), (end + PAGE - 1) & ~(PAGE - 1)


class Machine:
    def __init__(self, ram: list[tuple[int, int]]):
        """ram: (base, size) blocks of memory; overlaps are merged."""
        self.uc = Uc(UC_ARCH_PPC, UC_MODE_PPC64 | UC_MODE_BIG_ENDIAN)
        # (mypy reads unicorn's Python 2 binding, which lacks this method.)
        self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)   # type: ignore[attr-defined]
        self.ram = self._merge(ram)
        for base, end in self.ram:
            try:
                self.uc.mem_map(base, end - base, UC_PROT_ALL)
            except UcError as e:
                raise MachineError(
                    f"RAM 0x{base:x}..0x{end:x} (0x{end - base:x} bytes, from /memory) "
                    f"cannot be mapped on this host: {e}") from None
        self._stop: Stop | None = None
        self._hooks: list[int] = []
        self._started = False
        #: emu_start calls so far: a hook that sees it change knows the guest
        #: was paused and resumed at the PC it stopped at (emulator/coverage/).
        self.starts = 0
        #: Run in slices of this many instructions (None: one emu_start).
        #: Then `progress` is how many instructions had completed before the
        #: slice now running, or the one a stop fell in: a deterministic
        #: re-run can go that far at full speed before it records anything
        #: (emulator/debug/ring.py).  Each slice costs an emu_start (about
        #: 0.2 ms), so slices are large.
        self.slice: int | None = None
        self.progress = 0
        self._checkpoints: list[tuple[int, Callable[[], None]]] = []

    @staticmethod
    def _merge(blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
        spans = sorted(_page_span(b, b + s) for b, s in blocks if s > 0)
        if not spans:
            raise MachineError("no memory: the device tree describes no RAM")
        out = [list(spans[0])]
        for s, e in spans[1:]:
            if s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        for s, e in out:
            if e >= 1 << 64:
                # Unicorn maps sizes below 2^64 only: the last page is out of reach.
                raise MachineError(f"memory block 0x{s:x}.. reaches 2^64 (the top of the "
                                   f"address space cannot be mapped)")
        return [(s, e) for s, e in out]

    def in_ram(self, addr: int, size: int = 1) -> bool:
        return any(b <= addr and addr + size <= e for b, e in self.ram)

    # Memory and registers.
    def read(self, addr: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(addr, size))

    def write(self, addr: int, data: bytes) -> None:
        if not self.in_ram(addr, len(data)):
            raise MachineError(f"0x{addr:x}..0x{addr + len(data):x} is not in RAM")
        self.uc.mem_write(addr, data)
        if self._started:
            self.uc.ctl_remove_cache(addr, addr + len(data))

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "big")

    def read_cstring(self, addr: int, limit: int = 1024) -> str:
        out = bytearray()
        while len(out) < limit and self.in_ram(addr + len(out)):
            b = self.read(addr + len(out), 1)
            if b == b"\0":
                break
            out += b
        return out.decode("utf-8", "replace")

    def reg(self, name: str) -> int:
        return self.uc.reg_read(REGISTERS[name])

    def set_reg(self, name: str, value: int) -> None:
        self.uc.reg_write(REGISTERS[name], value & (2**64 - 1))

    # Hooks (add them before the first run: see the module docstring).
    def on_code(self, addr: int, callback: Callable[[int], None],
                end: int | None = None) -> None:
        """callback(pc) before executing any instruction in [addr, end]."""
        h = self.uc.hook_add(UC_HOOK_CODE, lambda uc, a, s, u: callback(a),
                             begin=addr, end=addr if end is None else end)
        self._hooks.append(h)

    def on_interrupt(self, callback: Callable[[int], None]) -> None:
        h = self.uc.hook_add(UC_HOOK_INTR, lambda uc, n, u: callback(n))
        self._hooks.append(h)

    def on_write(self, begin: int, end: int,
                 callback: Callable[[int, int, int], None]) -> None:
        """callback(pc, address, size) for each store into [begin, end]."""
        def hook(uc: Uc, access: int, address: int, size: int, value: int,
                 user: object) -> None:
            callback(uc.reg_read(P.UC_PPC_REG_PC), address, size)
        self._hooks.append(self.uc.hook_add(UC_HOOK_MEM_WRITE, hook,
                                            begin=begin, end=end))

    def count_instructions(self) -> list[int]:
        """Counts executed instructions (costly: for benchmarks only)."""
        counter = [0]

        def hook(uc: Uc, address: int, size: int, user: object) -> None:
            counter[0] += size // 4
        self._hooks.append(self.uc.hook_add(UC_HOOK_BLOCK, hook))
        return counter

    def add_mmio(self, base: int, size: int, read: Callable[[int, int], int],
                 write: Callable[[int, int, int], None]) -> None:
        """A device: read(offset, size) -> value, write(offset, size, value)."""
        start, end = _page_span(base, base + size)
        if size <= 0 or end > 1 << 64:
            raise MachineError(f"device at 0x{base:x} (0x{size:x} bytes) runs past 2^64")
        if any(b < end and start < e for b, e in self.ram):
            raise MachineError(f"device at 0x{base:x}..0x{base + size:x} overlaps RAM")
        delta = base - start
        try:
            self.uc.mmio_map(start, end - start,
                             lambda uc, off, sz, u: read(off - delta, sz), None,
                             lambda uc, off, sz, val, u: write(off - delta, sz, val),
                             None)
        except UcError as e:
            raise MachineError(f"device at 0x{base:x} cannot be mapped: {e}") from None

    # Running.
    def stop(self, reason: str, message: str, pc: int | None = None) -> None:
        """Called by a hook: ends the current run with this reason."""
        if self._stop is None:
            self._stop = Stop(reason, message, self.reg("pc") if pc is None else pc)
        self.uc.emu_stop()

    @property
    def stopped(self) -> Stop | None:
        """The stop a hook asked for during or since the last run, if any."""
        return self._stop

    def at_instruction(self, count: int, callback: Callable[[], None]) -> None:
        """callback() once, in the next run, when exactly count instructions
        have executed (between two instructions: hooks added there need
        ctl_flush_tb to be seen)."""
        self._checkpoints.append((count, callback))

    def run(self, pc: int, budget: int, until: int | None = None) -> Stop:
        """Runs from pc for at most budget instructions, or until pc reaches
        `until` (then the reason is "until": emu_start's own end address,
        which costs nothing per instruction, unlike a hook)."""
        if budget <= 0:
            raise MachineError("the instruction budget must be positive")
        self._stop = None
        self._started = True
        self.progress = 0
        end = NEVER if until is None else until
        if not self._checkpoints and (not self.slice or budget <= self.slice):
            return self._run_once(pc, end, budget, until)   # a guest call's path
        pending = sorted(self._checkpoints, key=lambda c: c[0])
        self._checkpoints = []
        done = 0
        while True:
            # The next pause: the budget, the end of a slice or a checkpoint.
            target = min([budget, *([done + self.slice] if self.slice else []),
                          *[n for n, _ in pending if n > done]])
            stopped, here = self._start(pc, end, target - done, until)
            if stopped is not None:
                return stopped
            done = self.progress = target
            while pending and pending[0][0] <= done:
                pending.pop(0)[1]()
            if self._stop is not None:
                return self._stop
            if done >= budget:
                break
            pc = here
        return self._exhausted(budget, here)

    def _run_once(self, pc: int, end: int, budget: int, until: int | None) -> Stop:
        """run() in one emu_start: what its loop does when no slice or
        checkpoint falls inside the budget, without the loop's bookkeeping
        (a direct guest call makes one such run per operation)."""
        stopped, here = self._start(pc, end, budget, until)
        if stopped is not None:
            return stopped
        self.progress = budget
        return self._exhausted(budget, here)

    def _start(self, pc: int, end: int, count: int,
               until: int | None) -> tuple[Stop | None, int]:
        """One emu_start of count instructions: (the stop, if a hook, an
        error or the end address ended it; the PC it ended at)."""
        self.starts += 1
        try:
            self.uc.emu_start(pc, end, timeout=0, count=count)
        except UcError as e:
            if self._stop is None:
                here = self.reg("pc")
                self._stop = Stop("exception", f"{e} at pc 0x{here:x}", here)
        if self._stop is not None:
            return self._stop, self._stop.pc
        here = self.reg("pc")
        if until is not None and here == until:
            return Stop("until", f"reached 0x{here:x}", here), here
        return None, here

    def _exhausted(self, budget: int, here: int) -> Stop:
        self._stop = Stop("budget", f"budget exhausted after {budget} "
                          f"instructions (pc 0x{here:x})", here)
        return self._stop
