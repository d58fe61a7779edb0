"""The kernel image in guest memory against its ELF, and the wrapper's .bss.

Two parts of the hand-off contract (emulator/checkers/handoff.py) that are
read from memory rather than from the kernel's report:

- KernelLayout: the kernel ELF's PT_LOAD segments placed as the wrapper
  places them (firmware/elf.c, docs/kexec.md): relative to the lowest
  address, p_paddr unless every p_paddr is 0, then p_vaddr; the entry
  relative to the lowest p_vaddr.  image_problems() compares guest memory
  at the kernel's address with it: every segment's file bytes, and, where
  the loader must zero it, the tail from p_filesz up to p_memsz.
- first_nonzero(): the first byte of a span that is not zero, for the
  wrapper's .bss at its first call into C.

Memory is read in chunks, so that a kernel claiming a gigabyte of bss is
checked without a gigabyte of Python bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..guest import image_cache
from ..guest.machine import Machine

#: Bytes read from the guest at a time.
CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadSegment:
    """One PT_LOAD as the wrapper places it: at `offset` from the kernel's
    address, its file bytes, then zeros up to memsz."""
    index: int          # among the PT_LOADs, in file order
    offset: int
    data: bytes
    memsz: int

    @property
    def filesz(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class KernelLayout:
    """Where every byte of a kernel ELF goes, relative to its address."""
    segments: tuple[LoadSegment, ...]
    size: int            # the loaded span, bss included (docs/kexec.md's S)
    entry_offset: int    # e_entry from the lowest p_vaddr

    @property
    def file_size(self) -> int:
        """The span of the file bytes alone: up to the end of the last
        segment's p_filesz (what a loader that leaves the bss to the
        kernel must place)."""
        return max(s.offset + s.filesz for s in self.segments)

    @classmethod
    def from_elf(cls, path: Path) -> KernelLayout | None:
        """None when path is not an ELF with PT_LOAD segments (a raw
        kernel, or one the wrapper refuses: nothing to compare with).  The
        program headers are parsed once per file content (image_cache);
        the segments' bytes are read from the file each time."""
        headers = image_cache.fact(path, "kernel-load-segments", _load_segments)
        if not headers:
            return None
        loads, entry = headers
        use_paddr = any(h.paddr for h in loads)
        where = [h.paddr if use_paddr else h.vaddr for h in loads]
        base = min(where)
        vbase = min(h.vaddr for h in loads)
        try:
            with open(path, "rb") as f:
                data = []
                for h in loads:
                    f.seek(h.file_offset)
                    data.append(f.read(h.filesz))
        except OSError:
            return None
        segments = tuple(LoadSegment(i, at - base, d, h.memsz)
                         for i, (at, h, d) in enumerate(zip(where, loads, data, strict=True)))
        size = max(s.offset + s.memsz for s in segments)
        return cls(segments, size, entry - vbase)


@dataclass(frozen=True)
class _ProgramHeader:
    """The fields of one PT_LOAD that placing it needs."""
    paddr: int
    vaddr: int
    memsz: int
    file_offset: int
    filesz: int


def _load_segments(path: Path) -> tuple[list[_ProgramHeader], int] | None:
    """The PT_LOADs in file order and e_entry; None when path is not an
    ELF pyelftools can read."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            loads = [_ProgramHeader(s["p_paddr"], s["p_vaddr"], s["p_memsz"],
                                    s["p_offset"], s["p_filesz"])
                     for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            return loads, elf["e_entry"]
    except (OSError, ELFError):
        return None


def first_difference(machine: Machine, address: int, expected: bytes) -> int | None:
    """The offset of the first byte at address that differs from expected."""
    for off in range(0, len(expected), CHUNK):
        want = expected[off:off + CHUNK]
        got = machine.read(address + off, len(want))
        if got != want:
            return off + next(i for i, (a, b) in enumerate(zip(got, want, strict=True))
                              if a != b)
    return None


def first_nonzero(machine: Machine, start: int, end: int) -> int | None:
    """The address of the first byte in [start, end) that is not zero."""
    at = start
    while at < end:
        chunk = machine.read(at, min(CHUNK, end - at))
        rest = chunk.lstrip(b"\0")
        if rest:
            return at + len(chunk) - len(rest)
        at += len(chunk)
    return None


def image_problems(machine: Machine, layout: KernelLayout, at: int, *,
                   zero_tails: bool = True) -> list[str]:
    """Every way the kernel image at `at` differs from its ELF: for each
    segment the first wrong file byte and, with zero_tails, the first
    non-zero byte of its p_filesz..p_memsz tail.  Without zero_tails only
    the file bytes are compared, so only they must be in RAM."""
    size = layout.size if zero_tails else layout.file_size
    if not machine.in_ram(at, max(size, 1)):
        return [f"the kernel image at 0x{at:x} (0x{size:x} bytes) is not in RAM"]
    out = []
    for s in layout.segments:
        start = at + s.offset
        bad = first_difference(machine, start, s.data)
        if bad is not None:
            got = machine.read(start + bad, 1)[0]
            out.append(f"kernel segment {s.index}: file byte 0x{bad:x} at 0x{start + bad:x} "
                       f"is 0x{got:02x}, the ELF has 0x{s.data[bad]:02x}")
        if zero_tails and s.memsz > s.filesz:
            dirty = first_nonzero(machine, start + s.filesz, start + s.memsz)
            if dirty is not None:
                value = machine.read(dirty, 1)[0]
                out.append(f"kernel segment {s.index}: its zeroed tail (p_filesz..p_memsz, "
                           f"0x{start + s.filesz:x}..0x{start + s.memsz:x}) holds "
                           f"0x{value:02x} at 0x{dirty:x}")
    return out


__all__ = ["KernelLayout", "LoadSegment", "first_difference", "first_nonzero",
           "image_problems"]
