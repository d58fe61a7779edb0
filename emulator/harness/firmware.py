"""Firmware builds and image composition.

A FirmwareBuild is one configuration of firmware/ (heap policy, injected
fault, ABI) in its own build directory, made with firmware/Makefile.  compose()
links that build's wrapper with another payload (a test kernel of another
memory size, an attached initrd), through the Makefile's compose target so
there is one set of link flags; results are cached by content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import SetupError

ROOT = Path(__file__).resolve().parent.parent.parent
FIRMWARE_SRC = ROOT / "firmware"
BUILD_ROOT = ROOT / "build"
POLICIES = ("fixed", "seed")
ABIS = ("elfv1", "elfv2")
CROSS_DEFAULT = "powerpc64-linux-gnu-"


class FirmwareError(SetupError):
    """The firmware could not be built or composed; the text says why."""


def cross_prefix() -> str:
    return os.environ.get("CROSS_COMPILE", CROSS_DEFAULT)


def _make(build_dir: Path, *args: str, **variables: str) -> None:
    prefix = cross_prefix()
    if shutil.which(prefix + "gcc") is None:
        raise FirmwareError(
            f"the cross compiler {prefix}gcc is not installed: run `make setup` "
            f"(or apt-get install gcc-powerpc64-linux-gnu binutils-powerpc64-linux-gnu)")
    cmd = ["make", "-s", "-C", str(FIRMWARE_SRC), f"O={build_dir}",
           f"CROSS_COMPILE={prefix}", *args,
           *(f"{k}={v}" for k, v in variables.items())]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FirmwareError(f"firmware build failed ({' '.join(args) or 'all'}):\n"
                            f"{proc.stdout}{proc.stderr}")


_built: dict[Path, float] = {}


def known_faults(source: str = "*.c") -> list[str]:
    """The deliberate faults the firmware sources can be built with: each
    is an `#ifdef FAULT_NAME` (or #ifndef) somewhere in firmware/ (or in
    the files matching `source`: "memranges.c" for the range table's)."""
    names: set[str] = set()
    for src in FIRMWARE_SRC.rglob(source):
        names.update(re.findall(r"^#\s*if(?:n?def\s+|.*defined\()FAULT_(\w+)",
                                src.read_text(errors="replace"), re.M))
    return sorted(names)


SOURCE_SUFFIXES = (".c", ".h", ".S", ".lds")


def _sources_stamp() -> float:
    """The newest modification time among the firmware sources."""
    newest = 0.0
    folders = [str(FIRMWARE_SRC)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    folders.append(e.path)
                elif e.name.endswith(SOURCE_SUFFIXES) or e.name == "Makefile":
                    newest = max(newest, e.stat().st_mtime)
    return newest


@dataclass(frozen=True)
class FirmwareBuild:
    policy: str = "fixed"
    fault: str | None = None
    abi: str = "elfv1"      # "elfv2": built with gcc -mabi=elfv2 (make ABI=elfv2)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise FirmwareError(f"unknown heap policy {self.policy!r}: "
                                f"choose one of {', '.join(POLICIES)}")
        if self.fault is not None and self.fault not in known_faults():
            raise FirmwareError(f"unknown fault {self.fault!r}: the firmware has "
                                f"{', '.join(known_faults())}")
        if self.abi not in ABIS:
            raise FirmwareError(f"unknown ABI {self.abi!r}: choose one of {', '.join(ABIS)}")

    @property
    def directory(self) -> Path:
        name = "firmware" if self.policy == "fixed" else f"firmware-{self.policy}"
        if self.fault:
            name += f"-fault-{self.fault.lower()}"
        if self.abi != "elfv1":
            name += f"-{self.abi}"
        return BUILD_ROOT / name

    @property
    def wrapper_elf(self) -> Path:
        return self.directory / "wrapper.elf"

    @property
    def kernel_elf(self) -> Path:
        """The test kernel with its symbols and DWARF: what bwemu reads."""
        return self.directory / "testkernel.elf"

    @property
    def payload_elf(self) -> Path:
        """The test kernel as the default image carries it: stripped
        (objcopy -S), as Linux's wrapper script strips vmlinux."""
        return self.directory / "testkernel.payload.elf"

    def _run_make(self, *args: str, **variables: str) -> None:
        _make(self.directory, *args, ABI=self.abi, **variables)

    def ensure_built(self) -> FirmwareBuild:
        """Runs make when the sources changed since this process last did
        (make itself decides what to rebuild; this only saves its start-up
        on every boot of a campaign)."""
        stamp = _sources_stamp()
        if _built.get(self.directory) == stamp and self.wrapper_elf.exists():
            return self
        # What the last make in this directory was run on, by any process:
        # a CLI boot of unchanged sources then skips make's start-up too.
        mark = self.directory / ".bwemu-built"
        seen = f"{stamp!r} {cross_prefix()}"
        try:
            if mark.read_text() == seen and self.wrapper_elf.exists() \
                    and self.kernel_elf.exists() and self.payload_elf.exists():
                _built[self.directory] = stamp
                return self
        except OSError:
            pass
        variables = {"POLICY": self.policy}
        if self.fault:
            variables["FAULT"] = self.fault
        self._run_make(**variables)
        _built[self.directory] = stamp
        with contextlib.suppress(OSError):       # the mark only saves time
            mark.write_text(seen)
        return self

    def test_kernel(self, bss: int) -> Path:
        """The test kernel claiming bss bytes of memory past its file."""
        self.ensure_built()
        objects = hashlib.sha256()
        for obj in sorted((self.directory / "kernel").glob("*.o")):
            objects.update(obj.read_bytes())
        # Named by content, so a rebuilt kernel never reuses a stale link.
        out = (self.directory / "compose" /
               f"testkernel-bss-{bss:x}-{objects.hexdigest()[:12]}.elf")
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            self._run_make("testkernel", KERNEL_BSS=hex(bss),
                  KERNEL_OUT=str(out), POLICY=self.policy)
        return out

    def compose(self, kernel_elf: Path | None = None,
                attached_initrd: bytes | None = None,
                compressed: bool = True) -> Path:
        """A wrapper image carrying kernel_elf (default: the test kernel),
        gzip-compressed unless compressed is False, and, if given, an initrd
        attached to the image."""
        self.ensure_built()
        if kernel_elf is None and attached_initrd is None and compressed:
            return self.wrapper_elf
        kernel = Path(kernel_elf) if kernel_elf else self.payload_elf
        h = hashlib.sha256(kernel.read_bytes())
        h.update(self.wrapper_elf.read_bytes())
        if attached_initrd is not None:
            h.update(b"initrd" + attached_initrd)
        if not compressed:
            h.update(b"uncompressed")
        out_dir = self.directory / "compose" / h.hexdigest()[:16]
        out = out_dir / "wrapper.elf"
        if out.exists():
            return out
        out_dir.mkdir(parents=True, exist_ok=True)
        variables = {"KERNEL_ELF": str(kernel), "IMAGE": str(out),
                     "POLICY": self.policy}
        if attached_initrd is not None:
            initrd = out_dir / "initrd.bin"
            initrd.write_bytes(attached_initrd)
            variables["INITRD"] = str(initrd)
        if self.fault:
            variables["FAULT"] = self.fault
        if not compressed:
            variables["COMPRESS"] = "none"
        self._run_make("compose", **variables)
        return out
