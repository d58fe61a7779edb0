"""A timebase for images that read it, advancing with executed instructions.

Unicorn 2.1.4's PowerPC timebase reads 0 (docs/unicorn-notes.md), so a
guest's delay loop (Linux's udelay, which waits for TB to pass a target)
never ends.  bwemu supplies the timebase itself:

- every instruction that reads it (mftb / mftbu, and mfspr of TBL 268 or
  TBU 269: Power ISA, "Move From Time Base") in the image's executable
  segments gets a code hook that writes the value to its target register
  and steps over it;
- the value is TICKS_PER_INSTRUCTION times the instructions executed in the
  image so far, counted per translation block by a block hook bound to the
  image, so it is the same on every run of the same boot.

Both are installed only when the image reads the timebase at all: our own
wrapper does not, and pays nothing.  TICKS_PER_INSTRUCTION is large (a
slow clock, one instruction per many ticks) so that a boot loader's
multi-second waits, such as Linux's 5 s command-line prompt, pass in a few
hundred thousand instructions.
"""

from __future__ import annotations

from typing import Any

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE
from unicorn import ppc_const as P

from .addresses import LoadedImage
from .machine import Machine

TICKS_PER_INSTRUCTION = 1000
SPR_TBL, SPR_TBU = 268, 269
XO_MFSPR, XO_MFTB = 339, 371


def timebase_read(word: int) -> tuple[int, int] | None:
    """(target register, 268 or 269) when word reads the timebase."""
    if word >> 26 != 31 or (word >> 1) & 0x3FF not in (XO_MFSPR, XO_MFTB):
        return None
    # The SPR field is split: its low five bits come first in the word.
    spr = ((word >> 16) & 0x1F) | ((word >> 11) & 0x1F) << 5
    if spr not in (SPR_TBL, SPR_TBU):
        return None
    return (word >> 21) & 0x1F, spr


class Timebase:
    """The timebase of one machine running one image (see the module doc)."""

    def __init__(self, machine: Machine, image: LoadedImage,
                 ticks_per_instruction: int = TICKS_PER_INSTRUCTION) -> None:
        self.machine = machine
        self.ticks_per_instruction = ticks_per_instruction
        self.instructions = 0
        self.reads = 0
        self.sites: dict[int, tuple[int, int]] = {}
        scan = getattr(image, "scan_code", None)      # a LoadedImage: kept per content
        self.sites.update(scan("timebase", timebase_read) if scan is not None else
                          ((a, hit) for a, w in image.code_words()
                           if (hit := timebase_read(w)) is not None))
        if not self.sites:
            return
        uc = machine.uc
        span = image.span
        uc.hook_add(UC_HOOK_BLOCK, self._count, begin=span.address, end=span.end - 1)
        for site in self.sites:
            uc.hook_add(UC_HOOK_CODE, self._read, begin=site, end=site)

    @property
    def value(self) -> int:
        return self.instructions * self.ticks_per_instruction

    def _count(self, uc: Any, address: int, size: int, user: Any) -> None:
        self.instructions += size // 4

    def _read(self, uc: Any, address: int, size: int, user: Any) -> None:
        reg, spr = self.sites[address]
        tb = self.value
        # In 32-bit mode the upper half of the register is not looked at;
        # mftbu gives the upper 32 bits, mftb all 64 (the low 32 in 32-bit code).
        value = tb >> 32 if spr == SPR_TBU else tb & 0xFFFF_FFFF_FFFF_FFFF
        uc.reg_write(getattr(P, f"UC_PPC_REG_{reg}"), value)
        uc.reg_write(P.UC_PPC_REG_PC, address + 4)
        self.reads += 1


__all__ = ["TICKS_PER_INSTRUCTION", "Timebase", "timebase_read"]
