"""A gdb remote stub over the boot's Machine: an observer that drives the run.

    bwemu boot --gdb 1234
    gdb-multiarch build/firmware/wrapper.elf -ex 'target remote :1234'

attach() opens the listening socket (127.0.0.1 only), says how to connect
and takes the run over (Guest.drive).  When the runner starts the run, the
stub waits for gdb with the guest at its entry, before the first
instruction, and then does what gdb asks until the boot ends:

- **stepping**: Machine.run with a budget of 1 instruction.  That is exact
  because every run on the instance uses a count (docs/unicorn-notes.md).
- **continuing**: Machine.run in slices of SLICE instructions.  Between
  two slices the socket is looked at for gdb's interrupt byte, so Ctrl-C
  in gdb stops the guest within a slice (a few tens of milliseconds).
- **breakpoints** (Z0, and Z1 the same way): a code hook bound to the one
  address, added the first time gdb asks for it and kept, armed or not,
  for the rest of the run (gdb removes and re-inserts every breakpoint
  at each stop).  A code hook added after its block was translated never
  fires, so the address's translation is dropped (ctl_remove_cache).  The
  hook stops the run before the instruction executes.  A resume from an
  armed breakpoint's address passes it once.
- **memory and registers**: straight from and to the machine; a write
  goes through Machine.write, which drops stale translations.
- **the end of the boot**: when the guest reaches the kernel, the stub
  reports the inferior exited (W00) and returns the Stop: the runner then
  finishes the checkers and bwemu reports as usual.  A fatal stop, an
  exception, a mirror divergence or the budget running out is reported
  to gdb as a signal (SIGABRT, SIGSEGV, SIGABRT, SIGXCPU) so the guest can
  still be looked at; resuming from there ends the session (W01).  When
  gdb detaches, kills or goes away, the boot runs on to its end without
  it, so a boot is always reported whole.

The instruction budget counts stepped instructions and whole slices; a
slice cut short by a breakpoint is not counted (Unicorn does not say how
far it got), so under gdb the budget is a lower bound of what ran.

Only the packets gdb needs are served (see _query); everything else gets
the empty reply that tells gdb a packet is not supported.
"""

from __future__ import annotations

import re
import shlex
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicorn import ppc_const

from ..errors import SetupError
from ..guest.machine import REGISTERS, Machine, MachineError, Stop
from ..guest.observer import CheckState, CheckStatus, Guest, RunOutcome
from .packets import Connection, ConnectionClosed, escape
from .target import Register, description, registers

#: Instructions per slice of a continue: about 25 ms of a checked boot.
SLICE = 1_000_000
#: The largest memory read served at once (gdb splits larger ones).
MAX_READ = 0x800
PACKET_SIZE = 0x1000
#: The bytes of one instruction: what a breakpoint covers.
INSTRUCTION = 4

# gdb's signal numbers (include/gdb/signals.def), as stop replies carry them.
SIGINT, SIGTRAP, SIGABRT, SIGSEGV, SIGXCPU = 2, 5, 6, 11, 24
#: How each end of a run other than the kernel is shown to gdb.
SIGNAL_OF_END = {"fatal": SIGABRT, "divergence": SIGABRT, "exception": SIGSEGV,
                 "budget": SIGXCPU}
#: Ends of the run after which the boot is done: gdb sees the inferior exit.
EXITS = frozenset({"kernel", "handoff"})

BREAK = "breakpoint"        # the Stop reason of a breakpoint hook
STEP = "step"               # a step that ran its one instruction
INTERRUPT = "interrupt"     # gdb's Ctrl-C, seen between two slices
E_FAULT = "E0e"             # memory that is not there (errno EFAULT)
E_INVALID = "E16"           # a malformed request (EINVAL)


#: Unicorn's number of every register gdb is told about.
UNICORN_REGISTERS = {**REGISTERS, "fpscr": ppc_const.UC_PPC_REG_FPSCR,
                     **{f"f{i}": getattr(ppc_const, f"UC_PPC_REG_FPR{i}") for i in range(32)}}
#: Registers that are 64 bits in the CPU but shown as 32 on a 32-bit image.
_NARROWED = frozenset(f"r{i}" for i in range(32)) | {"pc", "msr", "lr", "ctr"}


class GdbStubError(SetupError):
    """The gdb server cannot start (the port is taken, ...)."""


def _announce(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class GdbFindings:
    """What the session did: a debugging aid, never part of a verdict."""
    port: int
    connected: bool = False
    stops: int = 0              # stop replies sent (breakpoints, steps, interrupts)
    breakpoints: int = 0        # distinct breakpoint addresses gdb set
    ended_by: str = ""          # "exit", "detach", "kill", "disconnect", "" (never ran)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> CheckStatus:
        how = f", ended by {self.ended_by}" if self.ended_by else ""
        detail = (f"gdb on port {self.port}: {self.stops} stops{how}" if self.connected
                  else f"gdb on port {self.port}: never connected")
        return CheckStatus("gdb", CheckState.NOT_A_CHECK, detail)

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "connected": self.connected, "stops": self.stops,
                "breakpoints": self.breakpoints, "ended_by": self.ended_by,
                "notes": self.notes}


def connect_command(elf: Path | None, port: int, bits: int) -> str:
    """The gdb command line that attaches to this stub."""
    target = f"-ex 'target remote :{port}'"
    if elf is None:
        arch = "powerpc:common64" if bits == 64 else "powerpc:common"
        return f"gdb-multiarch -ex 'set architecture {arch}' {target}"
    try:
        shown = elf.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = elf.resolve()
    return f"gdb-multiarch {shlex.quote(str(shown))} {target}"


class GdbStub:
    """Observer: serves gdb's remote protocol over the boot (module doc)."""

    name = "gdb"

    def __init__(self, port: int, *, host: str = "127.0.0.1",
                 announce: Callable[[str], None] = _announce,
                 slice_instructions: int = SLICE) -> None:
        self.host = host
        self.port = port
        self.announce = announce
        self.slice = slice_instructions
        self.findings = GdbFindings(port)
        self.listener: socket.socket | None = None
        self.conn: Connection | None = None
        #: Armed breakpoints, and every address that has a hook.
        self.breakpoints: set[int] = set()
        self._hooked: set[int] = set()
        self._skip: int | None = None       # pass this breakpoint once (the resume pc)
        self.executed = 0                   # instructions counted against the budget
        self.budget = 0
        self.end: Stop | None = None        # how the run ended, once it has

    # --- the observer protocol ---------------------------------------------------------------

    def attach(self, guest: Guest) -> None:
        self.guest = guest
        self.machine: Machine = guest.machine
        elf = guest.image.elf
        self.bits = elf.bits
        self.registers: list[Register] = registers(self.bits)
        self.by_number = {r.regnum: r for r in self.registers}
        self.xml = description(self.bits).encode()
        # gdb adds qOffsets' value to link addresses as a CORE_ADDR, 64 bits
        # even for a 32-bit image: an image loaded below its link address
        # (a negative offset) needs the offset modulo 2**64, not 2**32.
        self.offset = guest.image.offset & (2**64 - 1)
        try:
            self.listener = socket.create_server((self.host, self.port))
        except OSError as e:
            raise GdbStubError(f"--gdb {self.port}: cannot listen on {self.host}:{self.port} "
                               f"({e.strerror or e})") from None
        self.port = self.findings.port = self.listener.getsockname()[1]
        symbols = elf.path if elf.symbols else None
        self.announce(f"bwemu: waiting for gdb on {self.host}:{self.port}; attach with\n"
                      f"  {connect_command(symbols, self.port, self.bits)}")
        guest.drive(self._drive)

    def finish(self, guest: Guest, run: RunOutcome) -> GdbFindings:
        self._close()
        return self.findings

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    # --- the run -------------------------------------------------------------------------------

    def _drive(self, pc: int, budget: int) -> Stop:
        """Guest.drive's driver: the whole run, as gdb directs it."""
        self.budget = budget
        self.machine.set_reg("pc", pc)       # what gdb sees before the first instruction
        try:
            self.conn = self._accept()
            self.findings.connected = True
            return self._serve(self.conn)
        except ConnectionClosed:
            self.findings.ended_by = self.findings.ended_by or "disconnect"
            return self._run_free()
        finally:
            self._close()

    def _accept(self) -> Connection:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except KeyboardInterrupt:
            raise GdbStubError("interrupted while waiting for gdb to connect") from None
        self.listener.close()
        self.listener = None
        # Packets are small and answered one at a time: do not let Nagle hold them.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(sock)

    def _run_free(self) -> Stop:
        """The rest of the boot without gdb (it detached or went away)."""
        if self.end is not None:
            return self.end
        self.breakpoints.clear()
        remaining = self.budget - self.executed
        if remaining <= 0:
            return self._budget_stop(self.machine.reg("pc"))
        stop = self.machine.run(self.machine.reg("pc"), remaining)
        if stop.reason == "budget":
            # The machine counted only this last run: the message gives the
            # whole budget, what ran under gdb included.
            return self._budget_stop(stop.pc)
        return stop

    def _budget_stop(self, pc: int) -> Stop:
        return Stop("budget", f"budget exhausted after {self.budget} instructions "
                    f"(pc 0x{pc:x})", pc)

    def _resume(self, step: bool) -> Stop:
        """One step, or a continue until something stops the guest."""
        pc = self.machine.reg("pc")
        self._skip = pc if pc in self.breakpoints else None
        try:
            if step:
                if self.executed >= self.budget:
                    return self._budget_stop(pc)
                stop = self.machine.run(pc, 1)
                if stop.reason != "budget":
                    return stop
                self.executed += 1
                return Stop(STEP, "stepped", stop.pc)
            return self._continue(pc)
        finally:
            self._skip = None

    def _continue(self, pc: int) -> Stop:
        assert self.conn is not None
        while True:
            remaining = self.budget - self.executed
            if remaining <= 0:
                return self._budget_stop(pc)
            n = min(self.slice, remaining)
            stop = self.machine.run(pc, n)
            if stop.reason != "budget":
                return stop                # a breakpoint, or the run's end
            self.executed += n
            self._skip = None
            pc = stop.pc
            if self.conn.interrupted():
                return Stop(INTERRUPT, "interrupted by gdb", pc)

    def _hit(self, pc: int) -> None:
        """A breakpoint hook: stop before the instruction at pc."""
        if pc == self._skip:
            self._skip = None
            return
        if pc in self.breakpoints:
            self.machine.stop(BREAK, f"breakpoint at 0x{pc:x}", pc)

    def _set_breakpoint(self, addr: int) -> None:
        if addr not in self._hooked:
            self._hooked.add(addr)
            self.machine.on_code(addr, self._hit)
            # Unicorn only sees a code hook in blocks translated after it.
            self.machine.uc.ctl_remove_cache(addr, addr + INSTRUCTION)
            self.findings.breakpoints += 1
        self.breakpoints.add(addr)

    # --- the protocol --------------------------------------------------------------------------

    def _serve(self, conn: Connection) -> Stop:
        """Packets until the boot ends or gdb leaves; returns the run's end."""
        while True:
            packet = conn.receive()
            text = packet.decode("latin-1")
            resume = _resume_kind(text)
            if resume is not None:
                if self.end is not None:
                    # Resuming after the end was shown: the session is over.
                    conn.send("W01")
                    self.findings.ended_by = "exit"
                    return self.end
                stop = self._resume(step=resume == "s")
                reply = self._stop_reply(stop)
                conn.send(reply)
                if reply.startswith("W"):
                    self.findings.ended_by = "exit"
                    return stop
                continue
            if text.startswith("D"):
                conn.send("OK")
                self.findings.ended_by = "detach"
                return self._run_free()
            if text == "k":
                self.findings.ended_by = "kill"
                return self._run_free()
            conn.send(self._query(text))

    def _stop_reply(self, stop: Stop) -> str:
        if stop.reason in (BREAK, STEP):
            self.findings.stops += 1
            return f"S{SIGTRAP:02x}"
        if stop.reason == INTERRUPT:
            self.findings.stops += 1
            return f"S{SIGINT:02x}"
        self.end = stop
        if stop.reason in EXITS:
            return "W00"
        self.findings.notes.append(f"the run ended ({stop.reason}: {stop.message}); "
                                   f"shown to gdb as a signal")
        return f"S{SIGNAL_OF_END.get(stop.reason, SIGABRT):02x}"

    def _query(self, text: str) -> str:
        """The reply to every packet that does not resume the guest."""
        head = text[:1]
        if text == "?":
            if self.end is not None and self.end.reason not in EXITS:
                return f"S{SIGNAL_OF_END.get(self.end.reason, SIGABRT):02x}"
            return f"S{SIGTRAP:02x}"
        if text.startswith("qSupported"):
            return f"PacketSize={PACKET_SIZE:x};qXfer:features:read+"
        if text.startswith("qXfer:features:read:"):
            return self._xfer(text[len("qXfer:features:read:"):])
        if text == "qOffsets":
            return f"Text={self.offset:x};Data={self.offset:x};Bss={self.offset:x}"
        if text == "qAttached" or text.startswith("qAttached:"):
            return "1"            # attached: gdb detaches at exit, and the boot runs on
        if text == "vCont?":
            return "vCont;c;C;s;S"
        if head == "g":
            return "".join(self._read_register(r) for r in self.registers)
        if head == "G":
            return self._write_registers(text[1:])
        if head == "p":
            return self._p(text[1:])
        if head == "P":
            return self._P(text[1:])
        if head == "m":
            return self._read_memory(text[1:])
        if head == "M":
            return self._write_memory(text[1:])
        if head in ("Z", "z") and text[1:2] in ("0", "1"):
            return self._breakpoint(text)
        return ""

    # --- registers -------------------------------------------------------------------------------

    def _read_register(self, reg: Register) -> str:
        value = self.machine.uc.reg_read(UNICORN_REGISTERS[reg.name]) & ((1 << reg.bits) - 1)
        return value.to_bytes(reg.size, "big").hex()

    def _write_register(self, reg: Register, value: int) -> None:
        uc, number = self.machine.uc, UNICORN_REGISTERS[reg.name]
        if self.bits == 32 and reg.name in _NARROWED:
            # The CPU is 64-bit underneath: keep the upper half as it was.
            value |= uc.reg_read(number) & ~0xFFFF_FFFF
        uc.reg_write(number, value & (2**64 - 1))

    def _write_registers(self, data: str) -> str:
        try:
            raw = bytes.fromhex(data)
        except ValueError:
            return E_INVALID
        pos = 0
        for reg in self.registers:
            if pos + reg.size > len(raw):
                break
            self._write_register(reg, int.from_bytes(raw[pos:pos + reg.size], "big"))
            pos += reg.size
        return "OK"

    def _p(self, arg: str) -> str:
        try:
            reg = self.by_number.get(int(arg, 16))
        except ValueError:
            return E_INVALID
        return E_INVALID if reg is None else self._read_register(reg)

    def _P(self, arg: str) -> str:  # noqa: N802 - the packet's name
        number, _, value = arg.partition("=")
        try:
            reg = self.by_number.get(int(number, 16))
            raw = bytes.fromhex(value)
        except ValueError:
            return E_INVALID
        if reg is None or len(raw) != reg.size:
            return E_INVALID
        self._write_register(reg, int.from_bytes(raw, "big"))
        return "OK"

    # --- memory ----------------------------------------------------------------------------------

    def _read_memory(self, arg: str) -> str:
        m = re.fullmatch(r"([0-9a-fA-F]+),([0-9a-fA-F]+)", arg)
        if m is None:
            return E_INVALID
        addr, length = int(m[1], 16), min(int(m[2], 16), MAX_READ)
        # RAM only (a device's registers have side effects); a read that
        # runs off the end of a RAM block gives what there is.
        for base, end in self.machine.ram:
            if base <= addr < end:
                return self.machine.read(addr, min(length, end - addr)).hex()
        return E_FAULT if length else ""

    def _write_memory(self, arg: str) -> str:
        m = re.fullmatch(r"([0-9a-fA-F]+),([0-9a-fA-F]+):([0-9a-fA-F]*)", arg)
        if m is None:
            return E_INVALID
        addr, length = int(m[1], 16), int(m[2], 16)
        data = bytes.fromhex(m[3])
        if len(data) != length:
            return E_INVALID
        if not data:
            return "OK"
        try:
            self.machine.write(addr, data)
        except MachineError:
            return E_FAULT
        return "OK"

    # --- breakpoints and target description --------------------------------------------------

    def _breakpoint(self, text: str) -> str:
        m = re.fullmatch(r"[Zz][01],([0-9a-fA-F]+),[0-9a-fA-F]+", text.split(";")[0])
        if m is None:
            return E_INVALID
        addr = int(m[1], 16)
        # The hook covers one instruction, and Unicorn flushes the range
        # [addr, addr + 4) with its exclusive end as a 64-bit number: an
        # instruction that reaches the last byte of the address space (no
        # RAM is there) cannot be a breakpoint, nor an address past it.
        if addr + INSTRUCTION >= 2**64:
            return E_INVALID
        if text[0] == "Z":
            self._set_breakpoint(addr)
        else:
            self.breakpoints.discard(addr)
        return "OK"

    def _xfer(self, arg: str) -> str:
        m = re.fullmatch(r"([^:]*):([0-9a-fA-F]+),([0-9a-fA-F]+)", arg)
        if m is None:
            return E_INVALID
        if m[1] != "target.xml":
            return "E00"
        offset, length = int(m[2], 16), int(m[3], 16)
        chunk = self.xml[offset:offset + length]
        more = offset + length < len(self.xml)
        return ("m" if more else "l") + escape(chunk).decode("latin-1")


def _resume_kind(text: str) -> str | None:
    """"s" for a step, "c" for a continue, None for any other packet."""
    if text.startswith("vCont;"):
        actions = [a.split(":")[0][:1] for a in text[len("vCont;"):].split(";") if a]
        if any(a in "sS" for a in actions):
            return "s"
        return "c" if any(a in "cC" for a in actions) else None
    if text[:1] in ("c", "C"):
        return "c"
    if text[:1] in ("s", "S"):
        return "s"
    return None


__all__ = ["GdbFindings", "GdbStub", "GdbStubError", "SLICE", "connect_command"]
