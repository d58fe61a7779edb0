"""What gdb is told about the CPU: the registers, their remote numbers and
sizes, as a target description (gdb's XML format, feature
org.gnu.gdb.power.core).

The core layout is the one QEMU's power64-core.xml uses and gdb-multiarch
13.1 accepts: r0-r31 are remote registers 0-31, pc is 64, msr 65, cr 66,
lr 67, ctr 68, xer 69.  On a 64-bit image the GPRs, pc, msr, lr and ctr
are 64 bits and cr and xer 32; on an ELF32 image (Linux's big-endian boot
wrapper is built -m32) they are all 32 bits and the architecture is
powerpc:common, since gdb refuses a 64-bit description for a 32-bit ELF
and the other way round.

The floating-point feature (org.gnu.gdb.power.fpu: f0-f31 as 32-63, 64
bits each, and a 32-bit fpscr as 70) is described too.  gdb would accept
the core alone, but then `finish` on a 64-bit image trips an assertion in
gdb 13.1 (ppc64_sysv_abi_return_value wants an FPU) and gdb aborts.

A `g` packet carries the registers in remote-number order, each in
target byte order (big-endian), with no room for the numbers left out.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURE = "org.gnu.gdb.power.core"
FPU_FEATURE = "org.gnu.gdb.power.fpu"
PC_REGNUM = 64
FPSCR_REGNUM = 70


@dataclass(frozen=True)
class Register:
    name: str       # as gdb and Machine.reg know it
    regnum: int     # gdb's remote register number
    bits: int
    type: str       # the XML type: uint32, uint64, code_ptr, data_ptr, ieee_double
    feature: str = FEATURE

    @property
    def size(self) -> int:
        return self.bits // 8


def registers(bits: int) -> list[Register]:
    """The described registers of a 64- or 32-bit image, in remote order
    (the order of a `g` packet)."""
    wide = 64 if bits == 64 else 32
    int_type = f"uint{wide}"
    out = [Register(f"r{i}", i, wide, "data_ptr" if i == 1 else int_type)
           for i in range(32)]
    out += [Register("pc", PC_REGNUM, wide, "code_ptr"),
            Register("msr", PC_REGNUM + 1, wide, int_type),
            Register("cr", PC_REGNUM + 2, 32, "uint32"),
            Register("lr", PC_REGNUM + 3, wide, "code_ptr"),
            Register("ctr", PC_REGNUM + 4, wide, int_type),
            Register("xer", PC_REGNUM + 5, 32, "uint32")]
    out += [Register(f"f{i}", 32 + i, 64, "ieee_double", FPU_FEATURE) for i in range(32)]
    out.append(Register("fpscr", FPSCR_REGNUM, 32, "uint32", FPU_FEATURE))
    return sorted(out, key=lambda r: r.regnum)


def architecture(bits: int) -> str:
    return "powerpc:common64" if bits == 64 else "powerpc:common"


def description(bits: int) -> str:
    """target.xml for an image of this ELF class."""
    lines = ['<?xml version="1.0"?>',
             '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
             "<target>",
             f"  <architecture>{architecture(bits)}</architecture>"]
    for feature in (FEATURE, FPU_FEATURE):
        lines.append(f'  <feature name="{feature}">')
        # Each register's number is given: the two features interleave.
        lines += [f'    <reg name="{r.name}" bitsize="{r.bits}" type="{r.type}" '
                  f'regnum="{r.regnum}"/>' for r in registers(bits) if r.feature == feature]
        lines.append("  </feature>")
    lines += ["</target>", ""]
    return "\n".join(lines)


__all__ = ["FEATURE", "FPSCR_REGNUM", "FPU_FEATURE", "PC_REGNUM", "Register", "architecture",
           "description", "registers"]
