"""Entry conventions: the registers and MSR a loader leaves for an image
(docs/guest-abi.md, "Entry conventions").

- kexec: what kexec-tools (and our wrapper, for its kernel) leave: r3 = the
  device tree, r4 = where the image was loaded, r5 = 0 (no Open Firmware),
  r1 = 0 (no stack: the image sets its own), 64-bit mode (MSR[SF] set).
- epapr: the ePAPR 1.1 boot convention for a client program: r3 = the
  device tree, r4 = r5 = 0, r6 = the ePAPR magic 0x45504150, r7 = the size
  of the initial mapped area, r8 = r9 = 0, 32-bit mode (MSR = 0).  In real
  mode everything is mapped; bwemu gives the size of the memory block at 0,
  at most 2 GiB.

Any register can then be overridden (`--reg r6=0`, `--msr 0x...`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

EPAPR_MAGIC = 0x45504150
MSR_SF = 1 << 63               # 64-bit mode
IMA_MAX = 2 << 30

CONVENTIONS = ("kexec", "epapr")
#: Registers an override may name (those Machine knows).
SETTABLE = tuple(f"r{i}" for i in range(32)) + ("lr", "ctr", "cr", "xer", "msr")


@dataclass(frozen=True)
class EntryState:
    """Registers at the image's first instruction; msr included."""
    registers: dict[str, int]

    @property
    def bits(self) -> int:
        return 64 if self.registers.get("msr", MSR_SF) & MSR_SF else 32


def entry_state(convention: str, *, tree: int, image: int, rma_size: int,
                overrides: tuple[tuple[str, int], ...] = ()) -> EntryState:
    """The registers for convention, then the overrides in order."""
    if convention == "kexec":
        regs = {"r1": 0, "r3": tree, "r4": image, "r5": 0, "msr": MSR_SF}
    elif convention == "epapr":
        regs = {"r1": 0, "r3": tree, "r4": 0, "r5": 0, "r6": EPAPR_MAGIC,
                "r7": min(rma_size, IMA_MAX), "r8": 0, "r9": 0, "msr": 0}
    else:
        raise InputError(f"entry convention {convention!r}: choose one of "
                         f"{', '.join(CONVENTIONS)}")
    for name, value in overrides:
        if name not in SETTABLE:
            raise InputError(f"--reg {name}: not a register bwemu sets "
                             f"(r0..r31, lr, ctr, cr, xer, msr)")
        if not 0 <= value < 1 << 64:
            raise InputError(f"--reg {name}=0x{value:x}: not a 64-bit value")
        regs[name] = value
    return EntryState(regs)


__all__ = ["CONVENTIONS", "EPAPR_MAGIC", "EntryState", "MSR_SF", "entry_state"]
