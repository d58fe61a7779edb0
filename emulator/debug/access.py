"""Guest memory and registers read fast enough for a hook on every
instruction: straight to the Unicorn library with reusable buffers, as
emulator/guest/calling.py's FastRegs does for registers (the binding
builds ctypes objects on every call, a few microseconds each)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from unicorn import Uc, UcError
from unicorn import ppc_const as P

from ..guest.calling import FastRegs

NAMES = (*(f"r{i}" for i in range(32)), "pc", "lr", "ctr", "cr", "xer", "msr")
IDS = (*(getattr(P, f"UC_PPC_REG_{i}") for i in range(32)), P.UC_PPC_REG_PC,
       P.UC_PPC_REG_LR, P.UC_PPC_REG_CTR, P.UC_PPC_REG_CR, P.UC_PPC_REG_XER,
       P.UC_PPC_REG_MSR)


def memory_reader(uc: Uc) -> Callable[[int, int], bytes | None]:
    """read(addr, size): the bytes, or None where memory is not mapped."""
    try:
        from unicorn.unicorn_py3.unicorn import uclib
        handle = uc._uch
    except (ImportError, AttributeError):
        def slow(addr: int, size: int) -> bytes | None:
            try:
                return bytes(uc.mem_read(addr, size))
            except UcError:
                return None
        return slow
    buffers: dict[int, ctypes.Array[ctypes.c_char]] = {}
    fn = uclib.uc_mem_read
    h = handle     # already a c_void_p

    def read(addr: int, size: int) -> bytes | None:
        buf = buffers.get(size)
        if buf is None:
            buf = buffers[size] = ctypes.create_string_buffer(size)
        if fn(h, addr, buf, size):
            return None
        return buf.raw
    return read


def register_reader(uc: Uc) -> Callable[[], dict[str, int]]:
    """read(): r0..r31, pc, lr, ctr, cr, xer, msr by name, in one library call."""
    batch = FastRegs(uc).batch_reader(IDS)
    return lambda: dict(zip(NAMES, batch(), strict=True))


__all__ = ["memory_reader", "register_reader"]
