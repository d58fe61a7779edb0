"""Calling the wrapper's C functions from Python.

A GuestCaller turns `call("ranges_add", 0x1000, 0x2000)` into a guest run:
arguments in r3..r10, the TOC in r2, a stack of our own in r1, the link
register pointing at a return pad, then Machine.run on an instruction
budget until the function returns to the pad.  The value is r3.

The ABI facts used (64-bit PowerPC ELF ABI, v1 and v2):

- ELFv1: a function symbol names a descriptor (in .opd) holding the code
  address and the TOC pointer; the caller loads r2 from it.  The
  descriptor's contents are relocated at start-up, so they are read from
  guest memory, where crt0 has fixed them.
- ELFv2: a function symbol is the global entry point; a caller from outside
  the module enters there with r12 = that address, and the prologue derives
  r2 from r12.
- The caller gives the callee a frame: r1 points at a 16-byte aligned
  minimum frame (back chain, CR/LR save words, and for ELFv1 the parameter
  save area), which the callee may write into.
- int results come back sign-extended in r3; call_int() reads them as a C
  int would be seen (the low 32 bits, signed).

Hooks must be added before the first run of a machine (Unicorn ignores
hooks on code it has already translated), so the return-pad hook and the
start-up stop hook are installed when the GuestCaller is made: build the
GuestCaller (and anything else that hooks, such as a RangeMirror) before
the machine first runs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass

from unicorn import UC_HOOK_MEM_READ_UNMAPPED, UC_HOOK_MEM_WRITE_UNMAPPED, UC_PROT_ALL, Uc, UcError

from ..errors import BwemuError, SetupError
from .addresses import LoadedImage
from .elf import ElfImageError
from .machine import PAGE, Machine, Stop

#: Default instruction budget of one call: the range-table functions need a
#: few hundred; realloc's copy of a quarter-megabyte block a few hundred
#: thousand.  A runaway loop ends in well under a second.
DEFAULT_CALL_BUDGET = 4_000_000

#: `tw 31, 0, 0`, an unconditional trap: what sits at the return pad, so a
#: run that somehow passes the pad's hook traps instead of running on.
TRAP = (0x7FE00008).to_bytes(4, "big")

#: Stack frame the caller provides: ELFv1 needs 48 bytes of header and a
#: 64-byte parameter save area (112); ELFv2 needs 32.  112 serves both.
MIN_FRAME = 112

# Scratch area layout (offsets from its base).
_PAD_OFF = 0x0          # return pad: one trap word
_OUT_OFF = 0x100        # out-parameters, OUT_SIZE bytes
OUT_SIZE = 0x100
SCRATCH_MIN = 0x4000    # pad + out area + a modest stack

_MASK64 = (1 << 64) - 1


class GuestCallError(BwemuError):
    """A guest call did not return normally; .stop says how it ended."""

    def __init__(self, function: str, stop: Stop, detail: str = "") -> None:
        self.function = function
        self.stop = stop
        text = f"{function}: {stop.reason}: {stop.message}"
        super().__init__(text + (f" ({detail})" if detail else ""))


class CallBudgetExhausted(GuestCallError):
    """The call used up its instruction budget (a hang, or too small a budget)."""


class GuestFault(GuestCallError):
    """The guest took an exception (bad memory access, illegal instruction...)."""


class CallStopped(GuestCallError):
    """A hook stopped the run before the function returned (e.g. a divergence)."""


class CallSetupError(SetupError):
    """A call that cannot be made as asked (unknown symbol, too many args...)."""


def signed32(value: int) -> int:
    """The low 32 bits of a register as a C int."""
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value & 0x8000_0000 else value


class FastRegs:
    """Register access without the Python binding's per-call type dispatch.

    The binding's reg_read/reg_write look up a register class and build a
    ctypes object on every call (about a microsecond each); the mirror and
    the caller touch a dozen registers per guest call, so they go straight
    to the C library with one reusable 64-bit cell.  Only for the 64-bit
    integer registers (GPRs, LR, CTR, CR, PC).  Falls back to the binding
    if its internals are not where 2.1.4 keeps them.
    """

    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self.read: Callable[[int], int]
        self.write: Callable[[int, int], None]
        try:
            from unicorn.unicorn_py3.unicorn import uclib
            self._lib = uclib
            self._handle = uc._uch
            self._cell = ctypes.c_uint64()
            self._ref = ctypes.byref(self._cell)
            self.read = self._read
            self.write = self._write
        except (ImportError, AttributeError):
            self.read = uc.reg_read
            self.write = uc.reg_write

    def batch_reader(self, regs: tuple[int, ...]) -> Callable[[], tuple[int, ...]]:
        """A function returning the values of regs, read in one library call."""
        if self.read == self.uc.reg_read:
            return lambda: tuple(self.uc.reg_read(r) for r in regs)
        n = len(regs)
        ids = (ctypes.c_int * n)(*regs)
        cells = (ctypes.c_uint64 * n)()
        ptrs = (ctypes.c_void_p * n)(*[ctypes.addressof(cells) + 8 * i for i in range(n)])
        lib, handle = self._lib, self._handle

        def read() -> tuple[int, ...]:
            if lib.uc_reg_read_batch(handle, ids, ptrs, n):
                return tuple(self.uc.reg_read(r) for r in regs)
            return tuple(cells)
        return read

    def batch_writer(self, regs: tuple[int, ...]) -> Callable[..., None]:
        """A function writing its arguments to regs in one library call."""
        if self.write == self.uc.reg_write:
            def slow(*values: int) -> None:
                for r, v in zip(regs, values, strict=True):
                    self.uc.reg_write(r, v)
            return slow
        n = len(regs)
        ids = (ctypes.c_int * n)(*regs)
        cells = (ctypes.c_uint64 * n)()
        ptrs = (ctypes.c_void_p * n)(*[ctypes.addressof(cells) + 8 * i for i in range(n)])
        lib, handle = self._lib, self._handle

        def write(*values: int) -> None:
            cells[:] = list(values)
            if lib.uc_reg_write_batch(handle, ids, ptrs, n):
                for r, v in zip(regs, values, strict=True):
                    self.uc.reg_write(r, v)
        return write

    def _read(self, reg: int) -> int:
        if self._lib.uc_reg_read(self._handle, reg, self._ref):
            return self.uc.reg_read(reg)        # let the binding raise its error
        return self._cell.value

    def _write(self, reg: int, value: int) -> None:
        self._cell.value = value
        if self._lib.uc_reg_write(self._handle, reg, self._ref):
            self.uc.reg_write(reg, value)


@dataclass(frozen=True)
class Target:
    """Where a call enters and with which TOC (ELFv1) or r12 (ELFv2)."""
    name: str
    entry: int          # run-time code address
    toc: int | None     # ELFv1: r2 from the descriptor; ELFv2: None


class GuestCaller:
    """Calls functions of one loaded ELF image on one Machine.

    machine: the Machine the image is loaded in (not yet run if hooks are
    still to be added).  image: the loaded image (its symbols and link
    <-> guest addresses).  scratch: start of a page-aligned
    area of at least SCRATCH_MIN bytes of RAM that the image does not use;
    it holds the return pad, an out-parameter buffer (out_addr) and the
    stack the calls run on (growing down from its end).

    demand_paging: map a page wherever a call reads or writes unmapped
    memory (and forget those pages with drop_demand_pages()).  The heap
    the range functions pick may lie anywhere in the 64-bit space, and
    realloc copies blocks there; this lets such calls run.
    """

    def __init__(self, machine: Machine, image: LoadedImage, *, scratch: int,
                 scratch_size: int = 0x10000, demand_paging: bool = False,
                 startup_symbol: str | None = "start_wrapper") -> None:
        if scratch % PAGE or scratch_size < SCRATCH_MIN:
            raise CallSetupError(f"scratch area 0x{scratch:x}+0x{scratch_size:x} must be "
                                 f"page aligned and at least 0x{SCRATCH_MIN:x} bytes")
        if not machine.in_ram(scratch, scratch_size):
            raise CallSetupError(f"scratch area 0x{scratch:x}+0x{scratch_size:x} is not RAM")
        self.machine = machine
        self.image = image
        self.scratch = scratch
        self.return_pad = scratch + _PAD_OFF
        self.out_addr = scratch + _OUT_OFF
        self.stack_top = (scratch + scratch_size) & ~0xF
        self._targets: dict[str, Target] = {}
        self._writers: dict[tuple[int, bool], Callable[..., None]] = {}
        self._demand_pages: list[int] = []
        self._in_startup = False
        self.calls = 0
        self.regs = FastRegs(machine.uc)
        #: Called with the pad's address each time a call returns there.  A
        #: run stopped by its end address runs no hook at that address, so
        #: this is how watchers of returns (RangeMirror) see these ones.
        #: A callback may call machine.stop(): the call then raises CallStopped.
        self.return_callbacks: list[Callable[[int], None]] = []

        machine.write(self.return_pad, TRAP)
        machine.write(self.stack_top - MIN_FRAME, b"\0" * 8)   # end of the back chain
        machine.on_code(self.return_pad, self._returned)
        self._startup_entry: int | None = None
        if startup_symbol is not None and image.has_symbol(startup_symbol):
            # crt0's `bl` lands on the local entry (ELFv2: past the TOC set-up).
            self._startup_entry = image.local_entry(startup_symbol)
            machine.on_code(self._startup_entry, self._startup_reached)
        if demand_paging:
            machine.uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED,
                                self._map_on_demand)

    # --- hooks ------------------------------------------------------------------

    def _returned(self, pc: int) -> None:
        self.machine.stop("return", "returned to the call pad", pc)

    def _startup_reached(self, pc: int) -> None:
        if self._in_startup:
            self.machine.stop("startup", "reached the C entry point", pc)

    def _map_on_demand(self, uc: Uc, access: int, address: int, size: int, value: int,
                       user: object) -> bool:
        first = address & ~(PAGE - 1)
        last = (address + max(size, 1) - 1) & ~(PAGE - 1)
        try:
            for page in range(first, last + PAGE, PAGE):
                if not self._mapped(page):
                    uc.mem_map(page, PAGE, UC_PROT_ALL)
                    self._demand_pages.append(page)
        except UcError:
            return False
        return True

    def _mapped(self, page: int) -> bool:
        return any(begin <= page <= end for begin, end, _ in self.machine.uc.mem_regions())

    def drop_demand_pages(self) -> int:
        """Unmaps every page mapped on demand; returns how many there were."""
        n = len(self._demand_pages)
        for page in self._demand_pages:
            self.machine.uc.mem_unmap(page, PAGE)
        self._demand_pages.clear()
        return n

    @property
    def demand_pages(self) -> tuple[int, ...]:
        return tuple(self._demand_pages)

    # --- start-up -----------------------------------------------------------------

    def start_up(self, budget: int = 2_000_000, r3: int = 0) -> Stop:
        """Runs the image's own entry code up to its C entry point.

        crt0 applies the relocations, clears bss and sets up the TOC; once
        it reaches start_wrapper, C functions can be called.  r3 is what the
        entry code receives as the device tree address (it only passes it on).
        """
        if self._startup_entry is None:
            raise CallSetupError("no start-up symbol: the image has no start_wrapper")
        m = self.machine
        m.set_reg("r3", r3)
        m.set_reg("r4", self.image.span.address)
        m.set_reg("r5", 0)
        self._in_startup = True
        try:
            stop = m.run(self.image.entry, budget)
        finally:
            self._in_startup = False
        if stop.reason != "startup":
            raise GuestCallError("start-up", stop, "the entry code did not reach start_wrapper")
        return stop

    # --- calling ------------------------------------------------------------------

    def target(self, name: str) -> Target:
        """Entry and TOC of a function, resolved once and cached."""
        t = self._targets.get(name)
        if t is not None:
            return t
        try:
            code = self.image.function_entry(name)
        except ElfImageError as e:
            raise CallSetupError(str(e)) from None
        if self.image.elf.elfv1:
            desc = self.image.symbol_address(name)
            entry = self.machine.read_u64(desc)
            toc = self.machine.read_u64(desc + 8)
            if entry != code:
                raise CallSetupError(
                    f"{name}: descriptor at 0x{desc:x} holds 0x{entry:x}, expected 0x{code:x}: "
                    f"the image's relocations have not been applied (call start_up() first)")
            t = Target(name, entry, toc)
        else:
            t = Target(name, code, None)
        self._targets[name] = t
        return t

    def call(self, name: str, *args: int, budget: int = DEFAULT_CALL_BUDGET) -> int:
        """Calls name(*args) (at most 8 integer arguments); returns r3 (u64).

        Raises CallBudgetExhausted, GuestFault or CallStopped when the
        function does not return to the pad.
        """
        if len(args) > 8:
            raise CallSetupError(f"{name}: {len(args)} arguments; only r3..r10 are supported")
        t = self._targets.get(name) or self.target(name)
        m = self.machine
        key = (len(args), t.toc is not None)
        writer = self._writers.get(key)
        if writer is None:
            regs = _ARG_REGS[:len(args)] + (_R1, _LR, _R2 if t.toc is not None else _R12)
            writer = self._writers[key] = self.regs.batch_writer(regs)
        writer(*[a & _MASK64 for a in args], self.stack_top - MIN_FRAME, self.return_pad,
               t.toc if t.toc is not None else t.entry)
        self.calls += 1
        stop = m.run(t.entry, budget, until=self.return_pad)
        if stop.reason == "until":
            r3 = self.regs.read(_R3)
            for callback in self.return_callbacks:
                callback(self.return_pad)
            stopped = m.stopped
            if stopped is None:
                return r3
            stop = stopped
        if stop.reason == "budget":
            raise CallBudgetExhausted(name, stop)
        if stop.reason == "exception":
            raise GuestFault(name, stop)
        raise CallStopped(name, stop)

    def call_int(self, name: str, *args: int, budget: int = DEFAULT_CALL_BUDGET) -> int:
        """Calls a function returning C int: the result as a signed 32-bit value."""
        return signed32(self.call(name, *args, budget=budget))

    # --- scratch out-parameters --------------------------------------------------------

    def out(self, offset: int = 0) -> int:
        """Address of out-parameter space (OUT_SIZE bytes, 8-byte aligned)."""
        if not 0 <= offset < OUT_SIZE:
            raise CallSetupError(f"out offset {offset:#x} outside the out area")
        return self.out_addr + offset

    def read_out(self, size: int, offset: int = 0) -> bytes:
        return bytes(self.machine.uc.mem_read(self.out(offset), size))

    def fill_out(self, data: bytes, offset: int = 0) -> None:
        self.machine.uc.mem_write(self.out(offset), data)


from unicorn import ppc_const as _P  # noqa: E402

_ARG_REGS = tuple(getattr(_P, f"UC_PPC_REG_{i}") for i in range(3, 11))
_R1 = _P.UC_PPC_REG_1
_R2 = _P.UC_PPC_REG_2
_R3 = _P.UC_PPC_REG_3
_R12 = _P.UC_PPC_REG_12
_LR = _P.UC_PPC_REG_LR
_PC = _P.UC_PPC_REG_PC


# --- snapshots ------------------------------------------------------------------------


class RegionSnapshot:
    """The bytes of a few memory regions plus the CPU registers that matter.

    Restoring writes the bytes back.  For the range functions the whole
    mutable state is two bss objects (ranges, heap).  Measured here:
    about 330,000 restores/s of those two, against about 190,000/s for a
    ContextSnapshot with memory (which is correct too, and general).
    The regions must hold data, not code: no translation cache is flushed.
    """

    def __init__(self, machine: Machine, regions: list[tuple[int, int]]) -> None:
        self.machine = machine
        self.saved = [(addr, bytes(machine.uc.mem_read(addr, size))) for addr, size in regions]
        self.r2 = machine.reg("r2")

    def restore(self) -> None:
        uc = self.machine.uc
        for addr, data in self.saved:
            uc.mem_write(addr, data)
        self.machine.set_reg("r2", self.r2)


class ContextSnapshot:
    """A Unicorn context with memory: every register and all of RAM.

    Unicorn 2.1's UC_CTL_CONTEXT_MEMORY snapshots memory copy-on-write;
    it is general but costs more per restore than RegionSnapshot.
    """

    def __init__(self, machine: Machine) -> None:
        from unicorn import (
            UC_CTL_CONTEXT_CPU,
            UC_CTL_CONTEXT_MEMORY,
            UC_CTL_CONTEXT_MODE,
            UC_CTL_IO_WRITE,
        )
        self.machine = machine
        # The Python binding of 2.1.4 has no wrapper for this control.
        machine.uc.ctl(UC_CTL_CONTEXT_MODE, UC_CTL_IO_WRITE,
                       ctypes.c_int(UC_CTL_CONTEXT_CPU | UC_CTL_CONTEXT_MEMORY))
        self.context = machine.uc.context_save()

    def restore(self) -> None:
        self.machine.uc.context_restore(self.context)
