"""The range-table API as the mirror hooks it, derived from the model's
operation table (wrapper_model.OPERATIONS), plus the ABI detail the model
does not need: which argument register carries the out-parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from unicorn import ppc_const as P

from wrapper_model import OPERATIONS, OpSignature

from ...guest.elf import ElfImage


@dataclass(frozen=True)
class ApiFunction:
    """One hooked C function and how it maps onto a model operation."""
    symbol: str          # C name
    op: str              # wrapper_model operation name
    nargs: int           # operation arguments, taken from r3, r4, ...
    returns: str         # "int", "ptr" or "void"
    out: str | None = None   # "gap" (struct mem_range *) or "addr" (u64 *)
    out_reg: int = 0     # which argument register (0 = r3) holds the out pointer

    @classmethod
    def from_signature(cls, sig: OpSignature) -> ApiFunction:
        # The out-parameter follows the integer arguments (docs/memranges.md).
        return cls(sig.c_function, sig.name, sig.nargs, sig.returns, sig.out,
                   sig.nargs if sig.out else 0)


API: tuple[ApiFunction, ...] = tuple(ApiFunction.from_signature(s) for s in OPERATIONS.values())
API_BY_OP = {f.op: f for f in API}
OUT_SIZE = {"gap": 16, "addr": 8}

ARG_REGS = tuple(getattr(P, f"UC_PPC_REG_{i}") for i in range(3, 11))
R1, R3, LR = P.UC_PPC_REG_1, P.UC_PPC_REG_3, P.UC_PPC_REG_LR


def call_sites(elf: ElfImage, targets: set[int]) -> list[int]:
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
