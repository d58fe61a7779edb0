"""`bwemu boot --gdb`: the remote protocol stub (emulator/gdbstub/).

Three levels: the framing and the target description on their own; the
stub driven packet by packet from Python over a boot in a thread (exact
steps, breakpoints, memory and registers, gdb's interrupt, a detach that
lets the boot finish); and real gdb-multiarch in batch mode against
`bwemu boot --gdb 0` as a subprocess, on both ABIs, checked against the
mirror's record of the same run (its --json timeline).

Every socket and subprocess wait has a timeout: a stub that stops
answering fails a test, it does not hang the suite.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator import Boot, default_scenario
from emulator.gdbstub import GdbStub
from emulator.gdbstub.packets import checksum, escape, frame, unescape
from emulator.gdbstub.server import _resume_kind
from emulator.gdbstub.target import FPU_FEATURE, PC_REGNUM, description, registers
from emulator.guest.addresses import LoadedImage
from emulator.guest.elf import ElfImage
from emulator.harness.firmware import ROOT, FirmwareBuild

TIMEOUT = 60          # seconds, for any one wait on the stub or a subprocess


# --- framing and description -------------------------------------------------------------------


def test_a_packet_is_framed_with_its_checksum():
    assert frame(b"OK") == b"$OK#9a"
    assert checksum(b"") == b"00"


def test_binary_data_is_escaped_and_restored():
    data = bytes(range(256))
    escaped = escape(data)
    assert not set(escaped) & set(b"#$*") and unescape(escaped) == data
    assert escape(b"a}b") == b"a}]b"


@pytest.mark.parametrize("bits, arch, gpr", [(64, "powerpc:common64", 64),
                                              (32, "powerpc:common", 32)])
def test_target_description_numbers_the_registers_as_qemu_does(bits, arch, gpr):
    root = ET.fromstring(description(bits))
    assert root.findtext("architecture") == arch
    regs = {r.get("name"): r for r in root.iter("reg")}
    assert int(regs["r31"].get("bitsize")) == gpr and regs["r0"].get("regnum") == "0"
    assert int(regs["pc"].get("regnum")) == PC_REGNUM and int(regs["pc"].get("bitsize")) == gpr
    assert [int(regs[n].get("regnum")) for n in ("msr", "cr", "lr", "ctr", "xer")] == \
        list(range(65, 70))
    assert regs["cr"].get("bitsize") == regs["xer"].get("bitsize") == "32"
    # The FPU is described (gdb 13.1's `finish` needs it on ppc64), as 32..63.
    fpu = [f for f in root.iter("feature") if f.get("name") == FPU_FEATURE][0]
    assert [r.get("regnum") for r in fpu.iter("reg")][:2] == ["32", "33"]
    numbers = [r.regnum for r in registers(bits)]
    assert numbers == sorted(numbers)       # the g packet's order


@pytest.mark.parametrize("packet, kind", [("vCont;c", "c"), ("vCont;s:1;c", "s"),
                                          ("vCont;C05", "c"), ("c", "c"), ("s", "s"),
                                          ("vCont?", None), ("qC", None), ("g", None)])
def test_which_packets_resume_the_guest(packet, kind):
    assert _resume_kind(packet) == kind


# --- the stub driven from Python ---------------------------------------------------------------


class Client:
    """The gdb side of the protocol, as little of it as the tests need."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the stub closed the connection")
        self.buf += chunk

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def ack(self) -> bytes:
        while not self.buf:
            self._read()
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def reply(self) -> str:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                body = self.buf[start + 1:end]
                assert self.buf[end + 1:end + 3] == checksum(body)
                self.buf = self.buf[end + 3:]
                self.sock.sendall(b"+")
                return unescape(body).decode("latin-1")
            self._read()

    def ask(self, packet: str) -> str:
        self.sock.sendall(frame(packet.encode()))
        assert self.ack() == b"+"
        return self.reply()

    def close(self) -> None:
        self.sock.close()


class BootInThread:
    """A default boot with a stub, run in a thread; result when it ends."""

    def __init__(self, slice_instructions: int = 1_000_000, budget: int | None = None,
                 **boot: Any) -> None:
        self.stub = GdbStub(0, announce=lambda text: None,
                            slice_instructions=slice_instructions)
        scenario = default_scenario()
        if budget is not None:
            scenario = dataclasses.replace(scenario, budget=budget)
        self.boot = Boot(scenario, observers=[self.stub], **boot)
        self.result: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.boot.run()

    def join(self) -> Any:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the boot did not end"
        return self.result


def regs_of(g: str) -> dict[str, int]:
    out, pos = {}, 0
    for r in registers(64):
        out[r.name] = int(g[pos:pos + 2 * r.size], 16)
        pos += 2 * r.size
    assert pos == len(g)
    return out


def detached(run: BootInThread, c: Client) -> Any:
    """gdb detaches (D): the boot runs on to the kernel and passes; its result."""
    c.send_raw(frame(b"D"))
    assert c.ack() == b"+" and c.reply() == "OK"
    c.close()
    result = run.join()
    assert result.exit == "kernel" and result.passed
    assert result.findings["gdb"].ended_by == "detach"
    return result


def test_stub_session_breakpoint_step_memory_registers_then_detach():
    run = BootInThread()
    c = Client(run.stub.port)
    try:
        assert "qXfer:features:read+" in c.ask("qSupported:multiprocess+;swbreak+")
        # The description in two pieces: m (more) then l (last).
        first = c.ask("qXfer:features:read:target.xml:0,100")
        rest = c.ask(f"qXfer:features:read:target.xml:{0x100:x},4000")
        assert first[0] == "m" and rest[0] == "l"
        assert ET.fromstring(first[1:] + rest[1:]).findtext("architecture") == \
            "powerpc:common64"
        assert c.ask("qOffsets") == "Text=2000000;Data=2000000;Bss=2000000"
        assert c.ask("qAttached") == "1"
        assert c.ask("?") == "S05"
        assert c.ask("qTStatus") == ""                 # not served: empty reply
        image = run.boot.image
        regs = regs_of(c.ask("g"))
        assert regs["pc"] == image.entry                  # before the first instruction
        # A breakpoint on ranges_add's local entry, then continue to it.
        target = image.local_entry("ranges_add")
        assert c.ask(f"Z0,{target:x},4") == "OK"
        assert c.ask("vCont;c") == "S05"
        assert int(c.ask(f"p{PC_REGNUM:x}"), 16) == target
        # Resuming from the breakpoint passes it: a step goes one instruction on.
        assert c.ask("vCont;s:1") == "S05"
        assert int(c.ask(f"p{PC_REGNUM:x}"), 16) == target + 4
        # Registers and memory, read and written.
        assert c.ask("P14=" + (0x1234).to_bytes(8, "big").hex()) == "OK"
        assert regs_of(c.ask("g"))["r20"] == 0x1234
        scratch = 0x100000
        assert c.ask(f"M{scratch:x},4:deadbeef") == "OK"
        assert c.ask(f"m{scratch:x},4") == "deadbeef"
        assert c.ask("m10000000000,4").startswith("E")     # not RAM
        assert c.ask("M10000000000,1:00").startswith("E")
        assert c.ask(f"z0,{target:x},4") == "OK"
        result = detached(run, c)
    finally:
        c.close()
    assert result.mirror.timeline        # the mirror saw the calls stepped through


@pytest.mark.parametrize("addr", [2**64 - 4, 2**64 - 1, 2**72 - 1],
                         ids=["top-word", "top-byte", "past-64-bits"])
def test_an_address_past_the_top_of_the_address_space_is_an_error_reply(addr):
    """A breakpoint whose instruction would end at or past 2**64 (or an
    address wider than 64 bits) cannot be set: an error reply, and the
    session goes on; so for memory there."""
    run = BootInThread()
    c = Client(run.stub.port)
    try:
        for kind in ("Z0", "Z1", "z0", "z1"):
            assert re.fullmatch(r"E[0-9a-f]{2}", c.ask(f"{kind},{addr:x},4")), kind
        assert re.fullmatch(r"E[0-9a-f]{2}", c.ask(f"m{addr:x},4"))
        assert re.fullmatch(r"E[0-9a-f]{2}", c.ask(f"m{addr:x},{2**64 - 1:x}"))
        assert re.fullmatch(r"E[0-9a-f]{2}", c.ask(f"M{addr:x},4:deadbeef"))
        assert run.stub.breakpoints == set() and run.stub.findings.breakpoints == 0
        # The highest breakpoint that fits is still taken, and the session goes on.
        assert c.ask(f"Z0,{2**64 - 8:x},4") == "OK"
        assert c.ask(f"z0,{2**64 - 8:x},4") == "OK"
        assert c.ask("?") == "S05"
        detached(run, c)
    finally:
        c.close()


def test_gdbs_interrupt_stops_a_continue_between_slices():
    run = BootInThread(slice_instructions=2000)
    c = Client(run.stub.port)
    try:
        c.send_raw(frame(b"vCont;c"))
        assert c.ack() == b"+"
        c.send_raw(b"\x03")
        assert c.reply() == "S02"
        pc = regs_of(c.ask("g"))["pc"]
        assert run.boot.image.span.contains(pc)       # stopped inside the wrapper
        assert 0 < run.stub.executed < 200_000        # long before the boot's end
        # Continuing after an interrupt runs on to the kernel: the inferior exits.
        assert c.ask("vCont;c") == "W00"
    finally:
        c.close()
    result = run.join()
    assert result.exit == "kernel" and result.findings["gdb"].ended_by == "exit"


@pytest.mark.parametrize("slice_instructions", [2000, 1_000_000])
def test_gdb_going_away_mid_continue_lets_the_boot_finish(slice_instructions):
    run = BootInThread(slice_instructions=slice_instructions)
    c = Client(run.stub.port)
    c.send_raw(frame(b"vCont;c"))
    c.close()             # before the reply: it goes to a closed socket
    result = run.join()
    assert result.exit == "kernel" and result.passed
    assert result.findings["gdb"].ended_by == "disconnect"


@pytest.mark.parametrize("leave", ["detach", "kill", "close"])
def test_a_budget_run_out_after_gdb_left_counts_the_whole_budget(leave):
    """gdb steps and continues through part of the budget, then leaves: the
    rest runs without it, and the budget's end names every instruction
    run (the budget), not what was left of it when gdb went."""
    budget = 300_000           # the default boot takes about 0.9 M
    run = BootInThread(slice_instructions=2000, budget=budget)
    c = Client(run.stub.port)
    try:
        for _ in range(3):
            assert c.ask("vCont;s:1") == "S05"
        target = run.boot.image.local_entry("ranges_add")
        assert c.ask(f"Z0,{target:x},4") == "OK"
        assert c.ask("vCont;c") == "S05"
        assert int(c.ask(f"p{PC_REGNUM:x}"), 16) == target
        assert 3 < run.stub.executed < budget       # part of it ran under gdb
        if leave == "detach":
            assert c.ask("D") == "OK"
        elif leave == "kill":
            c.send_raw(frame(b"k"))
            assert c.ack() == b"+"
    finally:
        c.close()
    result = run.join()
    assert result.exit == "budget"
    assert f"budget exhausted after {budget} instructions" in result.message
    assert result.findings["gdb"].ended_by == {"close": "disconnect"}.get(leave, leave)


def test_a_checksum_error_is_answered_with_a_retransmission_request():
    run = BootInThread()
    c = Client(run.stub.port)
    try:
        c.send_raw(b"$?#00")
        assert c.ack() == b"-"
        assert c.ask("?") == "S05"
    finally:
        c.close()          # gdb went away: the boot runs on without it
    result = run.join()
    assert result.exit == "kernel" and result.findings["gdb"].ended_by == "disconnect"


def test_a_taken_port_is_one_error_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "emulator.cli", "boot", "--gdb", str(port)],
                           capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    assert p.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr and "Traceback" not in p.stderr


# --- real gdb ------------------------------------------------------------------------------------

GDB = shutil.which("gdb-multiarch")
needs_gdb = pytest.mark.skipif(GDB is None, reason="gdb-multiarch is not installed "
                               "(scripts/setup-toolchain installs it)")


def start_bwemu(*args: str) -> tuple[subprocess.Popen, int, str]:
    """`bwemu boot --gdb 0 --json ARGS` in the background: the process, the
    port it listens on and the gdb command it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli", "boot", "--gdb", "0",
                             "--json", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    # Raw reads: a buffered readline could hold the second line back from select.
    fd, text = proc.stderr.fileno(), b""
    while text.count(b"\n") < 2:
        ready, _, _ = select.select([fd], [], [], TIMEOUT)
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            proc.kill()
            proc.communicate()
            pytest.fail(f"bwemu did not start listening: {text.decode()}")
        text += chunk
    lines = text.decode().splitlines()
    m = re.search(r"waiting for gdb on 127\.0\.0\.1:(\d+)", lines[0])
    assert m, lines
    return proc, int(m[1]), lines[1].strip()


def gdb_batch(elf: Path, port: int, commands: list[str]) -> str:
    args = [GDB or "gdb-multiarch", "-nx", "-batch", str(elf),
            "-ex", "set pagination off", "-ex", "set print repeats unlimited",
            "-ex", "set confirm off", "-ex", f"target remote :{port}"]
    for cmd in commands:
        args += ["-ex", cmd]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=TIMEOUT, cwd=ROOT)
    return p.stdout


def passed_boot(proc: subprocess.Popen, commands: Callable[[], str]) -> tuple[str, dict]:
    """Runs gdb (commands() returns its output) against the bwemu boot proc,
    which must then end as a passed boot; its --json result."""
    try:
        out = commands()
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"{stderr}\n{out}"
    result = json.loads(stdout)
    assert result["exit"] == "kernel" and result["passed"], result["message"]
    return out, result


def section(out: str, name: str) -> str:
    """The gdb output between `echo @@name` and the next marker."""
    return out.split(f"@@{name}\n", 1)[1].split("@@", 1)[0]


TABLE = re.compile(r"rma_end = (0x[0-9a-f]+), heap_start = (0x[0-9a-f]+), heap_end = "
                   r"(0x[0-9a-f]+), count = (0x[0-9a-f]+), refused = (0x[0-9a-f]+), "
                   r"entry = \{(.*)\}\}")


def parse_table(text: str) -> dict[str, Any]:
    """`print/x ranges` as the mirror's JSON shows a table."""
    m = TABLE.search(text)
    assert m, text
    count = int(m[4], 16)
    entries = re.findall(r"\{start = (0x[0-9a-f]+), end = (0x[0-9a-f]+)\}", m[6])
    assert len(entries) == 32          # print repeats unlimited: every entry shown
    return {"rma_end": int(m[1], 16), "heap_start": int(m[2], 16),
            "heap_end": int(m[3], 16), "count": count, "refused": int(m[5], 16),
            "entries": [[int(s, 16), int(e, 16)] for s, e in entries[:count]]}


@needs_gdb
@pytest.mark.parametrize("abi", ["elfv1", "elfv2"])
def test_gdb_breaks_steps_prints_through_dwarf_and_boot_reports(abi):
    build = FirmwareBuild(abi=abi).ensure_built()
    proc, port, command = start_bwemu("--abi", abi)
    out, result = passed_boot(proc, lambda: gdb_batch(build.wrapper_elf, port, [
        "break ranges_add",
        # The second call: the wrapper is in the table, the tree is added.
        "continue", "continue",
        "echo @@ARGS\\n", "printf \"%lu %lu\\n\", start, size", "info args",
        "echo @@BEFORE\\n", "print/x ranges",
        "echo @@BT\\n", "bt",
        "echo @@NEXT\\n", "next", "next", "frame",
        "echo @@FINISH\\n", "finish",
        "echo @@AFTER\\n", "printf \"pc %lu\\n\", $pc", "print/x ranges",
        "echo @@END\\n", "delete", "continue"]))
    assert command == (f"gdb-multiarch {build.wrapper_elf.relative_to(ROOT)} "
                       f"-ex 'target remote :{port}'")
    assert result["findings"]["gdb"]["ended_by"] == "exit"
    assert "exited normally" in section(out, "END"), out

    # The mirror's record of the same call: the second ranges_add, and the
    # operation before it (whose table is the one the call starts from).
    timeline = result["findings"]["mirror"]["timeline"]
    adds = [i for i, op in enumerate(timeline) if op["function"] == "ranges_add"]
    op, before = timeline[adds[1]], timeline[adds[1] - 1]

    args = section(out, "ARGS")
    assert [int(v) for v in args.split("\n")[0].split()] == op["args"]
    assert f"start = {op['args'][0]}" in args and f"size = {op['args'][1]}" in args
    assert parse_table(section(out, "BEFORE")) == before["ranges"]

    bt = section(out, "BT")
    frames = re.findall(r"^#(\d+) .*?(\w+) \(", bt, re.M)
    assert [f for _, f in frames][:2] == ["ranges_add", "mark"], bt
    assert {"kexec_init", "start_wrapper", "_start_image"} <= {f for _, f in frames}, bt

    # Two `next`s move within ranges_add, by lines of memranges.c.
    nxt = section(out, "NEXT")
    lines = [int(n) for n in re.findall(r"^(\d+)\t", nxt, re.M)]
    assert len(lines) >= 2 and lines[0] < lines[1], nxt
    assert re.search(r"#0 .*ranges_add \(.*memranges\.c:\d+", nxt), nxt

    # finish: back in the caller, with the call's return value, at the
    # address the mirror saw the call return to, and the table after it.
    fin = section(out, "FINISH")
    assert re.search(r"in mark \(", fin), fin
    assert int(re.search(r"Value returned is \$\d+ = (-?\d+)", fin)[1]) == op["ret"]
    after = section(out, "AFTER")
    assert int(re.search(r"pc (\d+)", after)[1]) == op["caller"]
    assert parse_table(after) == op["ranges"]
    assert op["ranges"]["count"] == before["ranges"]["count"] + 1


ZIMAGE_SCRIPT = ROOT / "scripts" / "build-linux-zimage"


@pytest.fixture(scope="module")
def zimage_epapr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Linux's zImage.epapr (ELF32, linked at 0x20000000) around the test
    kernel, made as tests/test_foreign.py makes it (into a directory of
    this module's own); skipped only when it cannot be built."""
    kernel = FirmwareBuild().ensure_built().kernel_elf
    out = tmp_path_factory.mktemp("zimage")
    proc = subprocess.run([str(ZIMAGE_SCRIPT), str(kernel), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        pytest.skip(f"the zImage cannot be built: {proc.stderr.strip()}")
    return out / "zImage.epapr"


@needs_gdb
def test_gdb_symbolises_an_elf32_image_loaded_below_its_link_address(zimage_epapr):
    """The load offset of a 32-bit image is negative here (0x2000000 -
    0x20000000): gdb adds qOffsets' value as a 64-bit address, so the stub
    must give it modulo 2**64; masked to 32 bits, every symbol landed 4 GiB
    too high and `break start` stopped as an unknown SIGTRAP at `??`."""
    elf = ElfImage(zimage_epapr)
    load = 0x2000000
    assert elf.bits == 32 and elf.span[0] > load       # below its link address
    image = LoadedImage.at(elf, load)
    start = image.to_guest(elf.symbol("start").value)
    p_base = image.to_guest(elf.symbol("p_base").value)
    proc, port, command = start_bwemu("--image", str(zimage_epapr), "--entry", "epapr",
                                      "--load-at", hex(load))
    out, result = passed_boot(proc, lambda: gdb_batch(zimage_epapr, port, [
        "echo @@ENTRY\\n", "info symbol $pc",
        "echo @@BREAK\\n", "break start", "continue",
        "echo @@BT\\n", "bt",
        "echo @@AT\\n", "info symbol $pc",
        "echo @@END\\n", "delete", "continue"]))
    assert "zImage.epapr" in command
    assert f"zImage starting: loaded at 0x{load:08x}" in result["console"]

    assert section(out, "ENTRY").strip() == "_zimage_start in section .text", out
    brk = section(out, "BREAK")
    m = re.search(r"Breakpoint 1 at 0x([0-9a-f]+)", brk)
    assert m, out
    bp = int(m[1], 16)
    assert start <= bp < start + elf.symbol("start").size     # past start's prologue
    assert re.search(rf"Breakpoint 1, 0x0*{bp:x} in start \(\)", brk), out
    frames = re.findall(r"^#(\d+)\s+0x([0-9a-f]+) in (\w+) \(", section(out, "BT"), re.M)
    assert [f for _, _, f in frames][:2] == ["start", "p_base"], out
    assert int(frames[0][1], 16) == bp
    assert p_base <= int(frames[1][1], 16) < start                  # the call in crt0
    assert section(out, "AT").strip() == f"start + {bp - start} in section .text", out
    assert "exited normally" in section(out, "END"), out
