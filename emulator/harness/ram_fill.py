"""RAM that is not zero: a pattern written before the loads.

Real memory is not zero at power-on, nor after a previous kernel ran;
Unicorn maps RAM zeroed, which hides every "forgot to clear" bug.  So,
before the image, the tree and the initrd are loaded, the runner writes
Scenario.ram_fill (a pattern of 1 to 64 bytes, repeated: the byte at
address a is pattern[a % len(pattern)]; empty: RAM stays zero) over
every byte the boot can read before it writes it.

Which bytes those are (filling all RAM would touch every page of a
16 GiB machine, where Unicorn otherwise maps only what is used):

1. the image's whole span, its .bss and boot stack included (the loads
   then overwrite its file bytes);
2. the kernel's place at 0, [0, S);
3. after every end of what is in memory at entry (0, S, the image, the
   tree, the initrd, each reserve-map range), at the page where a heap
   starting there would start: every block the wrapper can allocate from
   it (the kernel, a moved initrd, the attached initrd, the final tree of
   T + 0x1000 bytes), at the offset it gets in each order docs/kexec.md
   allows, and the whole run of them.  The heap starts in a gap (the
   largest), and a gap starts where a range ends, so every block the
   wrapper allocates lies in filled memory.

Each window is at most WINDOW bytes (a block's first 16 MiB: enough to
show a kernel tail it forgot to zero), and all together at most TOTAL,
taken in the order above.  Everything else reads as zero, as before.
"""

from __future__ import annotations

import argparse
import re

from ..guest.machine import Machine
from ..guest.observer import Guest
from .scenario import DEFAULT_RAM_FILL, Layout, Scenario, ScenarioError

PAGE = 0x1000
#: The heap grows the final tree by this much (firmware/kexec.c DTB_ROOM).
TREE_ROOM = 0x1000
WINDOW = 16 << 20
TOTAL = 256 << 20
#: Bytes written per call into Unicorn.
CHUNK = 1 << 20
#: The words the command line and scenario files take for "leave RAM zero".
ZERO_WORDS = ("zero", "none", "0")


def parse_pattern(text: str) -> bytes:
    """A pattern as written on the command line or in a scenario file:
    hex bytes, most significant first ("0xdeadbeef", "a5"), or a word
    for zero ("zero", "none", "0").  An all-zero pattern is no fill."""
    t = text.strip().lower()
    if t in ZERO_WORDS:
        return b""
    digits = t[2:] if t.startswith("0x") else t
    if not re.fullmatch(r"[0-9a-f_]+", digits) or not digits.strip("_"):
        raise ScenarioError(f"RAM fill {text!r}: not a pattern (hex bytes such as "
                            f"0xdeadbeef, or zero)")
    digits = digits.replace("_", "")
    if len(digits) % 2:
        digits = "0" + digits
    pattern = bytes.fromhex(digits)
    if len(pattern) > 64:
        raise ScenarioError(f"RAM fill {text!r}: {len(pattern)} bytes, at most 64")
    return pattern if any(pattern) else b""


def pattern_text(pattern: bytes) -> str:
    return "0x" + pattern.hex() if pattern else "zero"


def _up(n: int) -> int:
    return -(-n // PAGE) * PAGE


def heap_blocks(kernel: int, tree: int, initrd: int, attached: int) -> set[tuple[int, int]]:
    """(offset from the heap's start, size) of every block the wrapper may
    allocate, in every order docs/kexec.md allows: fixed moves an initrd
    first, then the kernel when it is not at 0; seed starts with the
    kernel; then the attached initrd, then the final tree."""
    out = set()
    for moved in ((False, True) if initrd else (False,)):
        for kernel_in_heap in ((False, True) if kernel else (False,)):
            order = (([initrd] if moved else []) + ([kernel] if kernel_in_heap else [])
                     + ([attached] if attached else []) + [tree + TREE_ROOM])
            at = 0
            for size in order:
                out.add((at, size))
                at += _up(size)
    return out


def windows(layout: Layout, guest: Guest, reserves: list[tuple[int, int]],
            attached: int) -> list[tuple[int, int]]:
    """The spans to fill, in order of importance (not clipped to RAM)."""
    image = guest.image.span
    kernel = guest.kernel.size if guest.kernel is not None else 0
    tree = guest.dtb.size
    initrd = layout.initrd.size if layout.initrd is not None else 0
    out = [(image.address, image.end), (0, min(kernel, WINDOW))]
    ends = [0, kernel, image.end, guest.dtb.end]
    if layout.initrd is not None:
        ends.append(layout.initrd.end)
    ends += [a + s for a, s in reserves]
    blocks = sorted(heap_blocks(kernel, tree, initrd, attached))
    reach = min(sum(_up(size) for size in (kernel, tree + TREE_ROOM, initrd, attached)),
                WINDOW)
    for e in ends:
        heap = _up(e)
        out.append((e, heap + reach))
        out += [(heap + at, heap + at + min(_up(size), WINDOW)) for at, size in blocks]
    return out


def covered(spans: list[tuple[int, int]], ram: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """spans clipped to RAM, overlaps removed, at most TOTAL bytes, in order."""
    done: list[tuple[int, int]] = []
    total = 0
    for start, end in spans:
        for base, top in ram:
            lo, hi = max(start, base), min(end, top)
            pieces = [(lo, hi)] if lo < hi else []
            for a, b in done:          # what an earlier span covered already
                pieces = [p for s, e in pieces
                          for p in ((s, min(e, a)), (max(s, b), e)) if p[0] < p[1]]
            for s, e in pieces:
                e = min(e, s + TOTAL - total)
                if s < e:
                    done.append((s, e))
                    total += e - s
    merged: list[tuple[int, int]] = []
    for s, e in sorted(done):
        if merged and merged[-1][1] == s:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def write_pattern(machine: Machine, pattern: bytes, start: int, end: int) -> None:
    """pattern over [start, end), the byte at a being pattern[a % len]."""
    n = len(pattern)
    tile = pattern * ((CHUNK + n) // n + 1)
    at = start
    while at < end:
        size = min(CHUNK, end - at)
        phase = at % n
        machine.write(at, tile[phase:phase + size])
        at += size


def fill_ram(machine: Machine, scenario: Scenario, layout: Layout, guest: Guest,
             reserves: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Writes scenario.ram_fill where the boot may read before it writes
    (the module docstring); returns the spans filled."""
    pattern = scenario.ram_fill
    if not pattern:
        return []
    attached = len(scenario.attached_initrd or b"")
    spans = covered(windows(layout, guest, reserves, attached), machine.ram)
    for start, end in spans:
        write_pattern(machine, pattern, start, end)
    return spans


def add_boot_argument(parser: argparse.ArgumentParser) -> None:
    """--ram-fill PATTERN for `bwemu boot`."""
    parser.add_argument(
        "--ram-fill", type=_pattern_arg, metavar="PATTERN",
        help=f"what RAM holds before the loads, where the boot can read it first: "
             f"hex bytes repeated (default {pattern_text(DEFAULT_RAM_FILL)}), or zero")


def _pattern_arg(text: str) -> bytes:
    try:
        return parse_pattern(text)
    except ScenarioError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


__all__ = ["TOTAL", "WINDOW", "add_boot_argument", "covered", "fill_ram", "heap_blocks",
           "parse_pattern", "pattern_text", "windows", "write_pattern"]
