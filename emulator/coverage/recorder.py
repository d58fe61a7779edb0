"""Which instructions of the image ran, and how often: two observers.

BlockRecorder (what `bwemu coverage` uses) counts translation blocks: a
UC_HOOK_BLOCK bound to the image's span calls back once per block
executed with the block's start and size, and each instruction of the
block is counted once per call.  That gives exact execution counts, as
line counts need (a line's count is the largest count among its
instructions), at the price of one Python call per block, not per
instruction.  The choice, measured on the default boot, is in
docs/coverage.md:

- UC_HOOK_EDGE_GENERATED fires when Unicorn looks a block up or links it
  to another, not each time a block runs: a linked loop runs a thousand
  times with no call.  It gives the set of blocks that ran almost for
  free, but no counts.
- UC_HOOK_CODE gives every count directly, with one call per instruction
  (about five times the block hook's calls).  InstructionRecorder does
  that; it is the slow reference the tests hold the block counts to.

A block is counted when it is entered, so its instructions are counted as
if all of them ran.  They did, except where the run paused or ended inside
the block: Machine.run stops on an instruction count (its budget, or a
slice when a run is sliced), and the count stops the guest before the
next instruction, which may be inside a block, or the first instruction
of a block whose hook has already fired.  The run resumes at that very
PC, in a new block.  So at the first block after each pause
(Machine.starts changed) the previous block's instructions from the
resume PC on are taken back, and finish() does the same with the PC the
run ended at.  That instruction itself ran when the run ended in an
interrupt it raised (a trap, an illegal instruction, a fault), as a
per-instruction hook would see it.  The counts are then the
per-instruction counts (tests/test_coverage.py checks every instruction
of whole boots).  Hooks that move the PC mid-block, as the timebase's do
for images that read it, would make a block's tail count twice; bwemu's
wrapper has none.

Both stop counting at the hand-off, once the jump itself is counted: what
runs afterwards is the kernel, even where it lands inside the image's old
span.  Counts are kept by link address, so boots of one ELF at different
load addresses add up.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE, Uc, UcError

from ..guest.observer import CheckState, CheckStatus, Guest, Handoff, RunOutcome

INSN = 4          # PowerPC instructions are one word


#: A block hook's callback as the library calls it: (engine, address, size, user data).
BlockCallback = Callable[[Any, int, int, Any], None]


def block_hook(uc: Uc, callback: BlockCallback, begin: int, end: int) -> Callable[[], None]:
    """callback(_, address, size, _) at each block entered in [begin, end];
    returns the function that removes the hook.

    The hook is registered with the library directly (as FastRegs reads
    registers), not through the binding's hook_add: the binding's
    three-frame wrapper per call is most of a block hook's cost (on a
    boot with 2.7 M blocks, 3.0 s of hook time against 1.0 s for a bare
    ctypes callback).  Without unicorn 2.1.4's internals, the binding."""
    try:
        from unicorn.unicorn_py3.unicorn import HOOK_CODE_CFUNC, uc_hook_h, uclib
        engine, callbacks = uc._uch, uc._callbacks
    except (ImportError, AttributeError):
        h = uc.hook_add(UC_HOOK_BLOCK, callback, begin=begin, end=end)
        return lambda: uc.hook_del(h)
    fptr = HOOK_CODE_CFUNC(callback)
    handle = uc_hook_h()
    status = uclib.uc_hook_add(engine, ctypes.byref(handle), UC_HOOK_BLOCK, fptr, None,
                               ctypes.c_uint64(begin), ctypes.c_uint64(end))
    if status:
        raise UcError(status)
    # Kept where the binding keeps its own: alive as long as the engine,
    # and dropped by hook_del.
    callbacks[handle.value] = fptr
    return lambda: uc.hook_del(handle.value)


@dataclass
class CoverageFindings:
    """One boot's execution counts over one image (not a check: it never
    judges the boot)."""
    elf: Path | None                       # None: the image has no ELF (a raw binary)
    offset: int                            # load address minus link address
    counts: dict[int, int] = field(default_factory=dict)   # link address -> executions
    callbacks: int = 0                     # hook calls made (the recorder's cost)
    method: str = "block"

    @property
    def instructions(self) -> int:
        """Instructions executed in the image (the sum of the counts)."""
        return sum(self.counts.values())

    @property
    def status(self) -> CheckStatus:
        return CheckStatus("coverage", CheckState.NOT_A_CHECK,
                           f"{len(self.counts)} distinct instructions of the image ran")

    def to_json(self) -> dict[str, Any]:
        return {"elf": None if self.elf is None else str(self.elf), "method": self.method,
                "distinct_instructions": len(self.counts),
                "instructions": self.instructions, "callbacks": self.callbacks}


def _elf_path(guest: Guest) -> Path | None:
    elf = guest.image.elf
    return elf.path if elf.symbols or elf.has_lines else None


class BlockRecorder:
    """Observer: execution counts from a block hook (module doc)."""

    name = "coverage"

    def __init__(self) -> None:
        self.blocks: dict[int, int] = {}      # (start << 16 | size) -> executions
        self.cuts: dict[int, int] = {}        # (block << 32 | bytes run) -> times cut short
        self.last = [0]                       # the last block entered, same key
        self._interrupt: tuple[int, int] | None = None    # (pc, block) of the last one
        self._unhook: Callable[[], None] | None = None

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        machine = guest.machine
        span = guest.image.span
        blocks, last = self.blocks, self.last
        get = blocks.get
        seen = [machine.starts]

        def entered(engine: Any, address: int, size: int, user: Any) -> None:
            if machine.starts != seen[0]:
                # The first block since the guest was paused at `address`:
                # the block before it ran only up to there.
                seen[0] = machine.starts
                self._cut(last[0], address)
            key = address << 16 | size
            blocks[key] = get(key, 0) + 1
            last[0] = key
        self._unhook = block_hook(machine.uc, entered, span.address, span.end - 1)
        machine.on_interrupt(self._interrupted)
        guest.on_handoff(self._handoff)

    def _cut(self, key: int, pc: int) -> None:
        """Block key (the last one entered) stopped before pc, if pc is in it."""
        start, size = key >> 16, key & 0xFFFF
        if key and start <= pc < start + size:
            cut = key << 32 | (pc - start)
            self.cuts[cut] = self.cuts.get(cut, 0) + 1

    def _interrupted(self, intno: int) -> None:
        self._interrupt = (self.guest.machine.reg("pc"), self.last[0])

    def _handoff(self, handoff: Handoff) -> None:
        # The block with the jump was counted when it was entered; nothing
        # after it is the image's.
        if self._unhook is not None:
            self._unhook()
            self._unhook = None

    def finish(self, guest: Guest, run: RunOutcome) -> CoverageFindings:
        end = run.pc
        if run.reason == "exception" or self._interrupt == (run.pc, self.last[0]):
            end += INSN        # the instruction raised the interrupt that ended the run
        self._cut(self.last[0], end)
        offset = guest.image.offset
        counts: dict[int, int] = {}
        for key, n in self.blocks.items():
            start, size = key >> 16, key & 0xFFFF
            for addr in range(start - offset, start - offset + size, INSN):
                counts[addr] = counts.get(addr, 0) + n
        for cut, n in self.cuts.items():
            key, ran = cut >> 32, cut & 0xFFFF_FFFF
            start, size = key >> 16, key & 0xFFFF
            for addr in range(start + ran - offset, start - offset + size, INSN):
                counts[addr] -= n
                if not counts[addr]:
                    del counts[addr]
        return CoverageFindings(_elf_path(guest), offset, counts,
                                sum(self.blocks.values()), "block")


class InstructionRecorder:
    """Observer: execution counts from a code hook on every instruction of
    the image: exact by construction, and slow (the reference)."""

    name = "coverage"

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self._handoff_pc: int | None = None
        self._done = False

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        span = guest.image.span
        counts = self.counts

        def executing(uc: Any, address: int, size: int, user: Any) -> None:
            if self._done:
                return
            counts[address] = counts.get(address, 0) + 1
            if self._handoff_pc is not None:
                self._done = True      # the jump itself is the last instruction counted
        guest.machine.uc.hook_add(UC_HOOK_CODE, executing, begin=span.address,
                                  end=span.end - 1)
        guest.on_handoff(self._handoff)

    def _handoff(self, handoff: Handoff) -> None:
        # At our wrapper's `bctr` the jump is yet to be counted (the runner's
        # hook there runs before this one); a hand-off seen on the kernel's
        # first fetch (a foreign image) comes after the image's last one.
        pc = self.guest.machine.reg("pc")
        self._handoff_pc = pc
        self._done = not self.guest.image.span.contains(pc)

    def finish(self, guest: Guest, run: RunOutcome) -> CoverageFindings:
        offset = guest.image.offset
        counts = {addr - offset: n for addr, n in self.counts.items()}
        return CoverageFindings(_elf_path(guest), offset, counts,
                                sum(self.counts.values()), "instruction")


__all__ = ["BlockRecorder", "CoverageFindings", "InstructionRecorder"]
