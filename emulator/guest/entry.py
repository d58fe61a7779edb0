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
#: The 32-bit ones (Power ISA: CR is 32 bits; bwemu's XER holds 32).
NARROW = ("cr", "xer")
#: MSR bits whose mode bwemu does not emulate: little-endian (LE), and
#: instruction and data relocation (IR, DR: bwemu runs in real mode, with
#: no page table for translation to use).  Unicorn would run on as if
#: they were clear, and a boot would pass that real hardware fails.
MSR_UNSUPPORTED = {0x1: "LE (little-endian)", 0x10: "DR (data relocation)",
                   0x20: "IR (instruction relocation)"}


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
    given: set[str] = set()
    for name, value in overrides:
        if name not in SETTABLE:
            raise InputError(f"--reg {name}: not a register bwemu sets "
                             f"(r0..r31, lr, ctr, cr, xer, msr)")
        if name in given:
            also = " (--msr sets it too)" if name == "msr" else ""
            raise InputError(f"--reg {name}: given twice{also}")
        given.add(name)
        width = 32 if name in NARROW else 64
        if not 0 <= value < 1 << width:
            raise InputError(f"--reg {name}=0x{value:x}: not a {width}-bit value")
        if name == "msr":
            bad = [what for bit, what in MSR_UNSUPPORTED.items() if value & bit]
            if bad:
                raise InputError(f"--msr 0x{value:x}: sets MSR {', '.join(bad)}, a mode "
                                 f"bwemu does not emulate (big-endian, real mode only)")
        regs[name] = value
    return EntryState(regs)


__all__ = ["CONVENTIONS", "EPAPR_MAGIC", "EntryState", "MSR_SF", "entry_state"]
