"""A real peer for the emulator: the same wrapper image under QEMU's pseries.

QEMU's pseries machine with `-bios FILE` loads FILE raw at address 0 and
starts it at 0x100, real mode, MSR = 0 (32-bit mode), r1 = 0, r3 = the
flattened device tree it built, r4 = r5 = 0.  That is the wrapper's own
entry convention, so the wrapper ELF, flattened into a raw image that puts
its first byte at 0x100, runs there unchanged and prints on the spapr vty
(H_PUT_TERM_CHAR) exactly what it prints in bwemu.

What this module does, per machine configuration (memory size, extra
-machine options):

1. bios_image(): 0x100 zero bytes, then the ELF's PT_LOAD file bytes laid
   out by address (what `objcopy -O binary` gives, with the padding).
2. QemuPeer.entry_state(): QEMU started paused (-S) with a QMP socket; the
   registers it entered the guest with ("info registers") and the device
   tree as it lies in guest memory at r3 (pmemsave) -- the tree the guest
   really got, read before one instruction ran.
3. QemuPeer.dump_tree(): the same machine's `-machine dumpdtb=FILE`.
4. QemuPeer.console(): the boot itself; QEMU is ended once the console shows
   the wrapper's "entering kernel at" line (the test kernel's report
   hypercall is unknown to QEMU, so the kernel then just spins), or at a
   timeout.
5. run_bwemu(): the same ELF at 0x100 in bwemu, with the tree QEMU handed
   over, at QEMU's address, and QEMU's entry registers.
6. compare(): both consoles line by line from the banner to the hand-off.

Every QEMU run uses the same options, and a fixed `-seed`: /chosen carries
an "rng-seed" property that is otherwise fresh random bytes on each start,
so the tree of one run would not be the tree of the next.  `-nographic` is
needed, not just `-display none`: with a graphics device present QEMU
leaves stdout-path out of /chosen and the wrapper finds no console.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SetupError
from ..guest.devicetree import DeviceTree
from ..guest.elf import ElfImage
from .boot import Boot
from .firmware import FirmwareBuild
from .result import BootResult
from .scenario import Scenario

QEMU = "qemu-system-ppc64"
BIOS_ENTRY = 0x100          # where pseries starts a -bios image
FDT_HEADER = 0x28           # bytes of the flattened tree's header
BANNER = "bwemu wrapper:"
HANDOFF = "entering kernel at"
DEFAULT_SEED = 1
DEFAULT_TIMEOUT = 20.0      # seconds for a whole boot to the hand-off
ENTRY_REGS = ("pc", "msr", "r1", "r3", "r4", "r5")


class PeerError(SetupError):
    """QEMU is missing, refused the options, or did not answer."""


def qemu_available(qemu: str = QEMU) -> bool:
    return shutil.which(qemu) is not None


def bios_image(elf: str | Path | ElfImage) -> bytes:
    """The raw -bios file for a wrapper ELF linked at 0: BIOS_ENTRY zero
    bytes, then the PT_LOAD file contents placed by address from the lowest
    one (bss and the stack are not in the file: the wrapper clears bss)."""
    image = elf if isinstance(elf, ElfImage) else ElfImage(elf)
    try:
        lowest = min(s.vaddr for s in image.segments)
        top = max(s.vaddr + len(s.data) for s in image.segments)
        body = bytearray(top - lowest)
        for s in image.segments:
            body[s.vaddr - lowest:s.vaddr - lowest + len(s.data)] = s.data
        return bytes(BIOS_ENTRY) + bytes(body)
    finally:
        if not isinstance(elf, ElfImage):
            image.close()


def tree_totalsize(tree: bytes) -> int:
    return int.from_bytes(tree[4:8], "big")


def rma_size(tree: bytes) -> int | None:
    """The size of the memory block at 0 (pseries puts exactly the RMA
    there), or None when there is none."""
    return DeviceTree(tree, "QEMU's device tree").rma_size()


def expected_tree_address(rma: int) -> int:
    """Where DESIGN.md says pseries puts the tree: 2 MiB below
    min(RMA size, 2 GiB)."""
    return min(rma, 2 << 30) - (2 << 20)


@dataclass
class EntryState:
    """The CPU as QEMU hands it to the -bios image, and the tree at r3."""
    regs: dict[str, int]
    tree: bytes


@dataclass
class ConsoleRun:
    text: str                  # the guest's console, \r\n made \n
    reason: str                # "handoff", "timeout" or "exited"
    seconds: float
    qemu_lines: list[str] = field(default_factory=list)   # QEMU's own, removed
    stderr: str = ""


class QemuPeer:
    """One pseries configuration: memory size and extra -machine options."""

    def __init__(self, memory: str | None = None, machine_options: tuple[str, ...] = (),
                 *, seed: int = DEFAULT_SEED, qemu: str = QEMU,
                 timeout: float = DEFAULT_TIMEOUT):
        self.memory = memory
        self.machine_options = tuple(machine_options)
        self.seed = seed
        self.qemu = qemu
        self.timeout = timeout
        if not qemu_available(qemu):
            raise PeerError(f"{qemu} is not installed (Debian: apt-get install "
                            f"qemu-system-ppc)")

    def describe(self) -> str:
        opts = ",".join(("pseries",) + self.machine_options)
        return f"-machine {opts}" + (f" -m {self.memory}" if self.memory else "")

    def command(self, bios: Path, *more_machine: str, extra: tuple[str, ...] = ()) -> list[str]:
        """The one command line every run shares; only dumpdtb, -S and the
        QMP socket are added on top, none of which changes the machine."""
        machine = ",".join(("pseries",) + self.machine_options + more_machine)
        cmd = [self.qemu, "-machine", machine]
        if self.memory:
            cmd += ["-m", self.memory]
        cmd += ["-bios", str(bios), "-nographic", "-serial", "mon:stdio",
                "-seed", str(self.seed), *extra]
        return cmd

    def dump_tree(self, bios: Path, workdir: Path) -> bytes:
        out = workdir / "dumpdtb.dtb"
        proc = subprocess.run(self.command(bios, f"dumpdtb={out}"),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=self.timeout)
        if not out.exists():
            raise PeerError(f"dumpdtb wrote nothing (exit {proc.returncode}):\n"
                            f"{proc.stderr}")
        return out.read_bytes()

    def entry_state(self, bios: Path, workdir: Path) -> EntryState:
        sock_path = workdir / "qmp.sock"
        proc = subprocess.Popen(
            self.command(bios, extra=("-S", "-qmp", f"unix:{sock_path},server=on,wait=off")),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        try:
            qmp = _Qmp(sock_path, proc, self.timeout)
            try:
                regs = parse_registers(qmp.hmp("info registers"))
                dtb = regs["r3"]
                head = workdir / "entry-head.bin"
                qmp.call("pmemsave", val=dtb, size=FDT_HEADER, filename=str(head))
                size = tree_totalsize(head.read_bytes())
                if not FDT_HEADER <= size <= 2 << 20:
                    raise PeerError(f"no device tree at r3 = 0x{dtb:x} "
                                    f"(header says totalsize 0x{size:x})")
                whole = workdir / "entry-tree.dtb"
                qmp.call("pmemsave", val=dtb, size=size, filename=str(whole))
                tree = whole.read_bytes()
                qmp.call("quit")
            finally:
                qmp.close()
            proc.wait(timeout=self.timeout)
        finally:
            _end(proc)
        return EntryState(regs, tree)

    def console(self, bios: Path, settle: float = 0.5) -> ConsoleRun:
        """Boots to the hand-off; keeps reading `settle` seconds past it so
        that anything printed after the line is seen too."""
        t0 = time.monotonic()
        proc = subprocess.Popen(self.command(bios), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None   # (PIPE)
        out = bytearray()
        reason = "timeout"
        deadline = t0 + self.timeout
        try:
            fd = proc.stdout.fileno()
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                ready, _, _ = select.select([fd], [], [], deadline - now)
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    reason = "exited"
                    break
                out += chunk
                if reason != "handoff" and _handoff_seen(out):
                    reason = "handoff"
                    deadline = time.monotonic() + settle
        finally:
            _end(proc)
            stderr = proc.stderr.read().decode("utf-8", "replace")
            proc.stdout.close()
            proc.stderr.close()
        if reason == "timeout" and _handoff_seen(out):
            reason = "handoff"
        text, qemu_lines = split_qemu_lines(normalize(bytes(out)),
                                            Path(self.qemu).name)
        return ConsoleRun(text, reason, time.monotonic() - t0, qemu_lines, stderr)


def _handoff_seen(out: bytearray) -> bool:
    at = out.find(HANDOFF.encode())
    return at >= 0 and out.find(b"\n", at) >= 0


def _end(proc: subprocess.Popen) -> None:
    """Ends the QEMU this module started (only that process)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Qmp:
    """Just enough of a QMP client: one command at a time, events skipped."""

    def __init__(self, path: Path, proc: subprocess.Popen[str], timeout: float) -> None:
        assert proc.stderr is not None   # started with stderr=PIPE
        deadline = time.monotonic() + timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if proc.poll() is not None:
                    raise PeerError("QEMU exited before its QMP socket opened:\n"
                                    + proc.stderr.read()) from None
                if time.monotonic() > deadline:
                    raise PeerError("QEMU's QMP socket never opened") from None
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.reader = self.sock.makefile("r", encoding="utf-8")
        json.loads(self.reader.readline())       # the greeting
        self.call("qmp_capabilities")

    def call(self, command: str, **arguments: Any) -> Any:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            line = self.reader.readline()
            if not line:
                if command == "quit":
                    return None
                raise PeerError(f"QMP closed while waiting for {command}")
            reply = json.loads(line)
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise PeerError(f"QMP {command}: {reply['error'].get('desc', reply)}")

    def hmp(self, command_line: str) -> str:
        return self.call("human-monitor-command", **{"command-line": command_line})

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def parse_registers(text: str) -> dict[str, int]:
    """pc, msr and r0..r31 from HMP's "info registers"."""
    regs: dict[str, int] = {}
    m = re.search(r"\bNIP ([0-9a-fA-F]+)", text)
    if m:
        regs["pc"] = int(m.group(1), 16)
    m = re.search(r"\bMSR ([0-9a-fA-F]+)", text)
    if m:
        regs["msr"] = int(m.group(1), 16)
    for m in re.finditer(r"GPR(\d\d)((?: +[0-9a-fA-F]{16})+)", text):
        first = int(m.group(1))
        for i, word in enumerate(m.group(2).split()):
            regs[f"r{first + i}"] = int(word, 16)
    missing = [r for r in ENTRY_REGS if r not in regs]
    if missing:
        raise PeerError(f"cannot read {', '.join(missing)} from QEMU's "
                        f"register dump:\n{text}")
    return regs


def normalize(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").replace("\r\n", "\n")


def split_qemu_lines(text: str, program: str) -> tuple[str, list[str]]:
    """Removes the lines QEMU itself writes ("qemu-system-ppc64: ..."),
    which the wrapper never prints; returns the rest and those lines."""
    kept: list[str] = []
    theirs: list[str] = []
    for line in text.splitlines(keepends=True):
        (theirs if line.startswith(program + ": ") else kept).append(line)
    return "".join(kept), [t.rstrip("\n") for t in theirs]


def run_bwemu(firmware: FirmwareBuild, tree: bytes, entry: EntryState) -> tuple[Boot, BootResult]:
    """The wrapper at BIOS_ENTRY in bwemu, with the tree at QEMU's r3 and
    QEMU's entry registers (r4 = 0, not the image address; MSR as QEMU
    had it, so crt0's switch to 64-bit mode is exercised here too)."""
    sc = Scenario(name="qemu-peer", dtb=tree, dtb_at=entry.regs["r3"],
                  wrapper_at=BIOS_ENTRY, policy=firmware.policy)
    b = Boot(sc, firmware)
    for r in ("r1", "r4", "r5", "msr"):
        b.machine.set_reg(r, entry.regs[r])
    return b, b.run()


def window(text: str) -> list[str] | None:
    """The console lines from the banner to the hand-off line, inclusive;
    None when either is missing."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if BANNER in line), None)
    if start is None:
        return None
    end = next((i for i in range(start, len(lines)) if HANDOFF in lines[i]), None)
    if end is None:
        return None
    return lines[start:end + 1]


@dataclass
class PeerReport:
    config: str
    policy: str
    bios_size: int
    entry: EntryState
    dump: bytes
    rma: int | None
    qemu: ConsoleRun
    bwemu: BootResult
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        e = self.entry.regs
        out = [f"QEMU {self.config}, {self.policy} policy: "
               f"{'IDENTICAL' if self.identical else 'DIFFERENT'}",
               "  entry: " + ", ".join(f"{r} 0x{e[r]:x}" for r in ENTRY_REGS),
               f"  tree: 0x{tree_totalsize(self.entry.tree):x} bytes at 0x{e['r3']:x}"
               + (f", RMA 0x{self.rma:x}" if self.rma is not None else ""),
               f"  QEMU console ended by {self.qemu.reason} after "
               f"{self.qemu.seconds:.1f}s; bwemu: {self.bwemu.exit}"]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  {d}" for d in self.differences]
        return "\n".join(out)


def compare_consoles(peer: str, ours: str) -> list[str]:
    """The differences between two consoles' banner-to-hand-off windows,
    as text (empty when they are identical)."""
    a, b = window(peer), window(ours)
    diffs: list[str] = []
    if a is None:
        diffs.append("QEMU's console has no banner-to-hand-off window")
    if b is None:
        diffs.append("bwemu's console has no banner-to-hand-off window")
    if a is None or b is None:
        return diffs
    if a != b:
        diffs += [d.rstrip("\n") for d in difflib.unified_diff(
            a, b, "qemu", "bwemu", lineterm="")]
    return diffs


def check(firmware: FirmwareBuild, peer: QemuPeer,
          workdir: Path | None = None) -> PeerReport:
    """Runs one configuration on both sides and compares."""
    firmware.ensure_built()
    elf = firmware.compose()
    with tempfile.TemporaryDirectory(prefix="bwemu-peer-") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        bios = work / "bios.bin"
        image = bios_image(elf)
        bios.write_bytes(image)
        entry = peer.entry_state(bios, work)
        dump = peer.dump_tree(bios, work)
        qemu_run = peer.console(bios)
        (work / "qemu-console.txt").write_text(qemu_run.text)
        _, result = run_bwemu(firmware, entry.tree, entry)
        (work / "bwemu-console.txt").write_text(result.console)

    notes: list[str] = []
    differences: list[str] = []
    rma = rma_size(entry.tree)
    regs = entry.regs
    if regs["pc"] != BIOS_ENTRY:
        differences.append(f"QEMU entered at 0x{regs['pc']:x}, not 0x{BIOS_ENTRY:x}")
    if rma is not None and regs["r3"] != expected_tree_address(rma):
        notes.append(f"tree at 0x{regs['r3']:x}, not 2 MiB below "
                     f"min(RMA 0x{rma:x}, 2 GiB) = 0x{expected_tree_address(rma):x}")
    if dump != entry.tree:
        notes.append(f"dumpdtb's tree (0x{tree_totalsize(dump):x} bytes) is not "
                     f"the tree the guest got (0x{tree_totalsize(entry.tree):x} "
                     f"bytes); bwemu boots the guest's")
    if qemu_run.qemu_lines:
        notes.append(f"removed {len(qemu_run.qemu_lines)} line(s) QEMU printed "
                     f"itself: {qemu_run.qemu_lines}")
    if qemu_run.reason != "handoff":
        differences.append(f"QEMU's boot ended by {qemu_run.reason} without the "
                           f"hand-off line; stderr:\n{qemu_run.stderr}")
    if result.exit != "kernel":
        differences.append(f"bwemu's boot ended with {result.exit}: {result.message}")
    differences += compare_consoles(qemu_run.text, result.console)
    _, _, after_q = qemu_run.text.partition(HANDOFF)
    _, _, after_b = result.console.partition(HANDOFF)
    tail_q, tail_b = after_q.partition("\n")[2], after_b.partition("\n")[2]
    if tail_q != tail_b:
        notes.append(f"after the hand-off line: QEMU printed {tail_q!r}, "
                     f"bwemu {tail_b!r}")
    return PeerReport(peer.describe(), firmware.policy, len(image), entry, dump,
                      rma, qemu_run, result, differences, notes)
