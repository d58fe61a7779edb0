"""Devices the guest talks to: an ns16550 UART, the PAPR hypervisor's
console call, and bwemu's own hypercall through which the test kernel
reports what it received (docs/guest-abi.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .machine import Machine

H_SUCCESS = 0
H_FUNCTION = -2 & (2**64 - 1)   # "not supported", as PAPR defines it
H_PUT_TERM_CHAR = 0x58
H_BWEMU_KERNEL_REPORT = 0xF0B0

# Status bits of the kernel report (firmware/include/guest_abi.h).
BWK_DTB_MAGIC = 0x1
BWK_INITRD = 0x2
BWK_RELOCATED = 0x4

# PowerPC interrupt numbers as Unicorn's PPC target reports them.
EXCP_NAMES = {0: "critical input", 1: "machine check", 2: "data storage",
              3: "instruction storage", 4: "external", 5: "alignment",
              6: "program (trap or illegal instruction)", 7: "floating-point unavailable",
              8: "system call", 10: "decrementer"}
EXCP_PROGRAM = 6
EXCP_SYSCALL = 8


class Console:
    """Everything the guest printed, from any console device."""

    def __init__(self) -> None:
        self._bytes = bytearray()

    def put(self, data: bytes) -> None:
        self._bytes += data

    @property
    def text(self) -> str:
        """What was printed, with either order of CR and LF (Linux's boot
        wrapper writes "\n\r") read as one line end."""
        raw = self._bytes.decode("utf-8", "replace")
        return raw.replace("\r\n", "\n").replace("\n\r", "\n")


class Uart16550:
    """Enough of an ns16550 for output: THR takes bytes, LSR says ready."""
    THR, LSR = 0, 5
    LSR_READY = 0x60  # THRE | TEMT

    def __init__(self, machine: Machine, console: Console, base: int,
                 reg_shift: int = 0, io_width: int = 1):
        self.console = console
        self.shift = reg_shift
        self.scratch: dict[int, int] = {}
        machine.add_mmio(base, 8 << reg_shift, self._read, self._write)

    def _read(self, offset: int, size: int) -> int:
        reg = offset >> self.shift
        if reg == self.LSR:
            return self.LSR_READY
        return self.scratch.get(reg, 0)

    def _write(self, offset: int, size: int, value: int) -> None:
        reg = offset >> self.shift
        if reg == self.THR:
            # A 4-byte register may be little-endian (the 8250 binding's
            # default): the character is in whichever end is non-zero.
            byte = value & 0xFF if value & 0xFF else (value >> 24) & 0xFF
            self.console.put(bytes([byte]))
        else:
            self.scratch[reg] = value


@dataclass(frozen=True)
class KernelReport:
    """What the test kernel saw on entry (its one hypercall)."""
    dtb: int           # r3 it was entered with
    placed_at: int     # r4: where the wrapper placed it
    status: int        # BWK_* bits
    initrd_start: int
    initrd_end: int
    initrd_checksum: int
    ran_from: int      # where it really was before copying itself to 0

    @property
    def dtb_magic_ok(self) -> bool:
        return bool(self.status & BWK_DTB_MAGIC)

    @property
    def has_initrd(self) -> bool:
        return bool(self.status & BWK_INITRD)


class Hypervisor:
    """sc 1: the PAPR console call and bwemu's kernel report."""

    def __init__(self, machine: Machine, console: Console):
        self.machine = machine
        self.console = console
        self.report: KernelReport | None = None
        self.unknown_calls: list[int] = []

    def hypercall(self) -> None:
        m = self.machine
        nr = m.reg("r3")
        if nr == H_PUT_TERM_CHAR:
            count = min(m.reg("r5"), 16)
            data = (m.reg("r6").to_bytes(8, "big") + m.reg("r7").to_bytes(8, "big"))
            self.console.put(data[:count])
            m.set_reg("r3", H_SUCCESS)
        elif nr == H_BWEMU_KERNEL_REPORT:
            self.report = KernelReport(*(m.reg(f"r{i}") for i in range(4, 11)))
            m.stop("kernel", "kernel reached")
        else:
            self.unknown_calls.append(nr)
            m.set_reg("r3", H_FUNCTION)


_checksums: dict[bytes, int] = {}


def initrd_checksum(data: bytes) -> int:
    """The test kernel's initrd checksum (guest_abi.h), computed here
    independently: FNV-1a over big-endian 64-bit words, last one padded.
    Kept per content: every boot of a campaign hands on the same initrd."""
    hit = _checksums.get(data)
    if hit is not None:
        return hit
    h = 0xCBF29CE484222325
    padded = data + bytes(-len(data) % 8)
    mask = 2**64 - 1
    for (word,) in struct.iter_unpack(">Q", padded):
        h = ((h ^ word) * 0x100000001B3) & mask
    if len(_checksums) > 16:
        _checksums.clear()
    _checksums[bytes(data)] = h
    return h
