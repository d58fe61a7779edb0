"""Backtraces of a stopped guest.

Each frame is unwound through the image's call frame information
(.debug_frame, decoded by pyelftools: emulator/guest/symbols.py): the CFA
is a register plus an offset, saved registers lie at CFA + n, the caller's
r1 is the CFA and its PC the saved link register.  Frames above the first
are looked up at the call instruction (return address - 4), where the row
describes the state of the call.

Where no CFI covers the PC, the ppc64 back chain serves:

- the linker's out-of-line epilogues `_restgpr0_*` / `_restfpr_*` are
  reached by a branch once the frame has been popped: r1 is the caller's,
  and the return address is still in the caller's LR save doubleword
  (16(r1); 4(r1) on 32-bit);
- the prologue helpers `_savegpr*`, `_savefpr*`, `_savevr*` and the other
  `_rest*` ones are called with `bl`: the return address is in LR;
- other code without CFI (assembly) is scanned from its symbol to the PC:
  if it has allocated a frame (stdu/stwu r1) the caller's frame is at 0(r1)
  and the return address in that frame's LR save word; if not, it is in
  LR (the innermost frame) or in the caller's LR save word (a frame above).

The walk stops at an image's entry point (the wrapper's _start, the
kernel's entry: entered from outside, by a jump), at a return address
outside every image, and where the stack pointer would move down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..guest.machine import Machine
from ..guest.symbols import DWARF_LR, FrameRule, PcInfo, Symboliser
from .access import memory_reader, register_reader

MAX_FRAMES = 64
#: Helpers reached by a branch after the frame is popped; the return
#: address is still in the LR save word of the caller's frame.
POPPED_HELPERS = ("_restgpr0_", "_restfpr_", "_restgpr_", "_restfpr0_")
PROLOGUE_SCAN = 4096   # instructions scanned back to the symbol, at most
PAGE = 512


@dataclass(frozen=True)
class Frame:
    """One frame: pc is where it is executing (frame 0) or the return
    address into it; where is pc symbolised, or for a caller frame the
    call instruction before the return address."""
    index: int
    pc: int
    sp: int
    where: PcInfo
    how: str          # how this frame's caller was found: "cfi", "back chain", ...

    @property
    def site(self) -> int:
        """The instruction the frame is at: pc, or the call before a return address."""
        return self.pc if self.index == 0 else self.pc - 4

    def __str__(self) -> str:
        return f"#{self.index:<2d} 0x{self.site:x}  {self.where}"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "pc": self.pc, "site": self.site, "sp": self.sp,
                "where": self.where.to_json(), "how": self.how}


@dataclass
class Backtrace:
    frames: list[Frame] = field(default_factory=list)
    end: str = ""          # why the walk stopped

    @property
    def return_addresses(self) -> list[int]:
        """Every caller frame's return address, innermost first."""
        return [f.pc for f in self.frames[1:]]

    def lines(self) -> list[str]:
        out = []
        for f in self.frames:
            how = "" if f.how == "cfi" else f"   [{f.how}]"
            out.append(f"{f}{how}")
        if self.end:
            out.append(f"    ({self.end})")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_json(self) -> dict[str, Any]:
        return {"frames": [f.to_json() for f in self.frames], "end": self.end}


def read_registers(machine: Machine) -> dict[str, int]:
    """The registers a backtrace and a report need, by name (once; for a
    hook on every instruction, keep a register_reader)."""
    return register_reader(machine.uc)()


class Unwinder:
    """Backtraces over one boot's images, reading guest memory through `read`."""

    def __init__(self, symbols: Symboliser, read: Callable[[int, int], bytes | None],
                 bits: int = 64) -> None:
        self.symbols = symbols
        self._read = read
        self.word = bits // 8
        self.lr_slot = 16 if bits == 64 else 4
        self._pages: dict[int, bytes] = {}

    @classmethod
    def for_machine(cls, symbols: Symboliser, machine: Machine, bits: int = 64) -> Unwinder:
        """Reading the machine's memory as it is when backtrace() is called."""
        return cls(symbols, memory_reader(machine.uc), bits)

    def _word(self, addr: int) -> int | None:
        # Saved registers lie close together: read the stack a page at a time.
        page = addr & ~(PAGE - 1)
        data = self._pages.get(page)
        if data is None:
            data = self._pages[page] = self._read(page, PAGE) or b""
        off = addr - page
        if off + self.word <= len(data):
            return int.from_bytes(data[off:off + self.word], "big")
        direct = self._read(addr, self.word)
        return None if direct is None else int.from_bytes(direct, "big")

    def backtrace(self, regs: dict[str, int], limit: int = MAX_FRAMES) -> Backtrace:
        """regs: by name (r0..r31, pc, lr, ctr), as read_registers gives them."""
        self._pages = {}
        state: dict[int, int] = {i: regs[f"r{i}"] for i in range(32)}
        state[DWARF_LR] = regs["lr"]
        pc = regs["pc"]
        bt = Backtrace()
        for depth in range(limit):
            site = pc if depth == 0 else pc - 4
            where = self.symbols.symbolise(site)
            sp = state.get(1, 0)
            if not where.in_image:
                bt.frames.append(Frame(depth, pc, sp, where, ""))
                bt.end = f"0x{site:x} is outside the images"
                return bt
            if self.symbols.is_entry(site):
                bt.frames.append(Frame(depth, pc, sp, where, "entry"))
                bt.end = f"{where.function}: the {where.image or 'image'}'s entry point, " \
                         f"entered from outside"
                return bt
            rule, _ = self.symbols.frame_rule(site)
            if rule is not None:
                caller, how = self._cfi(rule, state), "cfi"
            else:
                caller, how = self._back_chain(state, pc, site, depth, where)
            bt.frames.append(Frame(depth, pc, sp, where, how))
            if caller is None:
                bt.end = "the saved registers cannot be read (stack outside RAM?)"
                return bt
            ra = caller.get(DWARF_LR)
            csp = caller.get(1, 0)
            if not ra:
                bt.end = "no return address (end of the chain)"
                return bt
            if csp < sp or (csp == sp and ra == pc):
                bt.end = f"the caller's stack pointer 0x{csp:x} is not above 0x{sp:x}"
                return bt
            pc, state = ra, caller
        bt.end = f"stopped after {limit} frames"
        return bt

    def _cfi(self, rule: FrameRule, state: dict[int, int]) -> dict[int, int] | None:
        if rule.cfa_reg not in state:
            return None
        cfa = (state[rule.cfa_reg] + rule.cfa_offset) & (2**64 - 1)
        caller = dict(state)
        for reg, (kind, n) in rule.rules.items():
            if kind == "offset":
                value = self._word(cfa + n)
                if value is None:
                    return None
                caller[reg] = value
            elif kind == "val_offset":
                caller[reg] = cfa + n
            elif kind == "register":
                if n not in state:
                    return None
                caller[reg] = state[n]
            elif kind == "undefined":
                caller.pop(reg, None)
        caller[1] = cfa
        if rule.ra_reg != DWARF_LR and rule.ra_reg in caller:
            caller[DWARF_LR] = caller[rule.ra_reg]
        return caller

    def _back_chain(self, state: dict[int, int], pc: int, site: int, depth: int,
                    where: PcInfo) -> tuple[dict[int, int] | None, str]:
        sp = state.get(1, 0)
        name = where.function or ""
        caller = dict(state)
        if name.startswith(POPPED_HELPERS) or (self.word == 4 and name.endswith("_x")):
            # The frame is gone; 32-bit "_x" exits still address it by r11.
            base = state.get(11, sp) if self.word == 4 and name.endswith("_x") else sp
            ra = self._word(base + self.lr_slot)
            if ra is None:
                return None, "back chain"
            caller[DWARF_LR], caller[1] = ra, base
            return caller, "back chain (frame already popped)"
        if name.startswith(("_save", "_rest")):
            if depth > 0:
                return None, "back chain"
            caller[1] = sp
            return caller, "link register"
        if self._allocated_frame(site, where):
            back = self._word(sp)
            if back is None:
                return None, "back chain"
            ra = self._word(back + self.lr_slot)
            if ra is None:
                return None, "back chain"
            caller[1], caller[DWARF_LR] = back, ra
            return caller, "back chain"
        caller[1] = sp
        if depth > 0:
            ra = self._word(sp + self.lr_slot)
            if ra is None:
                return None, "back chain"
            caller[DWARF_LR] = ra
            return caller, "back chain (no frame)"
        return caller, "link register"

    def _allocated_frame(self, site: int, where: PcInfo) -> bool:
        """Whether the code from the symbol up to site has pushed a frame
        (stdu/stwu/stdux r1) and not popped it again (addi r1,r1,+n, or a
        load of r1 from 0(r1))."""
        start = site - where.offset
        if where.offset > 4 * PROLOGUE_SCAN or where.offset < 0:
            return False
        code = self._read(start, where.offset)
        if code is None:
            return False
        allocated = False
        for off in range(0, len(code) - 3, 4):
            w = int.from_bytes(code[off:off + 4], "big")
            op, rt, ra = w >> 26, (w >> 21) & 31, (w >> 16) & 31
            if rt == 1 and ra == 1:
                if (op == 62 and w & 3 == 1) or op == 37 or \
                        (op == 31 and (w >> 1) & 0x3FF == 181):   # stdu, stwu, stdux
                    allocated = True
                elif (op == 14 and (w & 0xFFFF) < 0x8000) or \
                        (op == 58 and w & 0xFFFF == 0) or (op == 32 and w & 0xFFFF == 0):
                    allocated = False     # addi r1,r1,+n; ld or lwz r1,0(r1)
        return allocated


__all__ = ["Backtrace", "Frame", "Unwinder", "read_registers", "register_reader"]
