"""Source lines of code addresses (emulator/guest/lines.py) agree with
binutils' addr2line, instruction by instruction.

Every place bwemu names a line (a store the watch caught, a fatal's PC,
a divergence, a backtrace) goes through the one line table, so it is
checked here against the toolchain's own reader on every instruction of
the wrapper (both ABIs) and of the test kernel.  Rows at one address are
the usual trap: the last one in the program is in force.  ElfImage's
own reader once sorted them by (file, line) instead, and named the wrong
line for 625 of the wrapper's 6,845 instructions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from emulator.guest.elf import ElfImage
from emulator.guest.symbols import ImageSymbols
from emulator.harness.firmware import FirmwareBuild, cross_prefix

ADDR2LINE = cross_prefix() + "addr2line"
SHF_EXECINSTR = 4

pytestmark = pytest.mark.skipif(shutil.which(ADDR2LINE) is None,
                                reason=f"{ADDR2LINE} not installed")


def code_addresses(path: Path) -> list[int]:
    """Every instruction of the executable sections."""
    with open(path, "rb") as f:
        return [a for s in ELFFile(f).iter_sections()
                if s["sh_flags"] & SHF_EXECINSTR and s["sh_type"] != "SHT_NOBITS"
                for a in range(s["sh_addr"], s["sh_addr"] + s["sh_size"], 4)]


def addr2line(path: Path, addrs: list[int]) -> list[tuple[str, int] | None]:
    out = subprocess.run([ADDR2LINE, "-e", str(path)], input="\n".join(map(hex, addrs)),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(addrs)
    lines: list[tuple[str, int] | None] = []
    for text in out:
        file, _, line = text.rpartition(":")
        line = line.split()[0]            # "12 (discriminator 3)"
        lines.append(None if file.startswith("??") or not line.isdigit() or line == "0"
                     else (os.path.basename(file), int(line)))
    return lines


@pytest.mark.parametrize("which", ["wrapper", "wrapper-elfv2", "kernel"])
def test_every_instruction_has_the_line_addr2line_gives(which):
    fw = FirmwareBuild(abi="elfv2" if which.endswith("elfv2") else "elfv1").ensure_built()
    path = fw.kernel_elf if which == "kernel" else fw.wrapper_elf
    addrs = code_addresses(path)
    assert len(addrs) > 200, "a line table worth checking"
    expected = addr2line(path, addrs)
    assert sum(e is not None for e in expected) > 0.9 * len(addrs)
    elf, symbols = ElfImage(path), ImageSymbols.of_path(path)
    try:
        wrong = []
        for addr, want in zip(addrs, expected, strict=True):
            loc = elf.locate(addr)
            got = (loc.file, loc.line) if loc.line is not None else None
            # ElfImage names a line only inside a function
            want_in_function = want if loc.function is not None else None
            if got != want_in_function or symbols.line_at(addr) != want:
                wrong.append((hex(addr), want, got, symbols.line_at(addr)))
    finally:
        elf.close()
    assert not wrong, f"{len(wrong)} of {len(addrs)} differ, first: {wrong[:5]}"
