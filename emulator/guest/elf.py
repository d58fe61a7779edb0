"""ELF images (the wrapper, the test kernel): segments, symbols, source lines.

Addresses here are link-time addresses; callers add the load offset.  For
the ELFv1 ABI a function symbol names its descriptor in .opd, whose first
doubleword is the code address: function_entry() resolves that.  For
ELFv2 a function symbol is its global entry point (entered with r12 = that
address; its first instructions derive r2 from r12) and a call from within
the image (`bl`) goes to the local entry point after that TOC set-up:
local_entry() gives it.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..errors import InputError


class ElfImageError(InputError):
    """An ELF file that is missing, malformed or not a ppc64 BE image."""


@dataclass(frozen=True)
class Segment:
    vaddr: int
    memsz: int
    data: bytes


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    kind: str  # "func", "object" or "other"


@dataclass(frozen=True)
class SourceLocation:
    function: str | None
    file: str | None
    line: int | None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else "?"
        return f"{self.function or '?'} ({where})"


class ElfImage:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            # Open for the image's lifetime (ELFFile reads lazily); close() closes it.
            self._file = open(self.path, "rb")  # noqa: SIM115
            self._elf = ELFFile(self._file)
        except FileNotFoundError:
            raise ElfImageError(f"{self.path}: no such file") from None
        except ELFError as e:
            raise ElfImageError(f"{self.path}: not an ELF file ({e})") from None
        if self._elf.elfclass != 64 or self._elf.little_endian or \
                self._elf["e_machine"] != "EM_PPC64":
            raise ElfImageError(f"{self.path}: not a 64-bit big-endian PowerPC ELF")
        self.entry = self._elf["e_entry"]
        self.segments = [
            Segment(s["p_vaddr"], s["p_memsz"], s.data())
            for s in self._elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        if not self.segments:
            raise ElfImageError(f"{self.path}: no PT_LOAD segment")
        self._local_offsets: dict[str, int] = {}   # filled with symbols
        opd = self._elf.get_section_by_name(".opd")
        self._opd = (opd["sh_addr"], opd.data()) if opd is not None else None

    def close(self) -> None:
        self._file.close()

    def read(self, addr: int, size: int) -> bytes:
        """Up to size file bytes from link address addr (within one segment)."""
        for seg in self.segments:
            if seg.vaddr <= addr < seg.vaddr + len(seg.data):
                off = addr - seg.vaddr
                return seg.data[off:off + size]
        return b""

    @property
    def elfv1(self) -> bool:
        return self._opd is not None

    @property
    def elfv2(self) -> bool:
        """e_flags' ABI version bits (EF_PPC64_ABI, the low two) say 2."""
        return self._elf["e_flags"] & 3 == 2

    @property
    def span(self) -> tuple[int, int]:
        """Link-time [start, end) of everything loaded, bss included."""
        return (min(s.vaddr for s in self.segments),
                max(s.vaddr + s.memsz for s in self.segments))

    @cached_property
    def symbols(self) -> dict[str, Symbol]:
        table = self._elf.get_section_by_name(".symtab")
        out: dict[str, Symbol] = {}
        if not isinstance(table, SymbolTableSection):   # None when stripped
            return out
        for sym in table.iter_symbols():
            t = sym["st_info"]["type"]
            if not sym.name or sym["st_shndx"] == "SHN_UNDEF" or \
                    t in ("STT_FILE", "STT_SECTION"):
                continue
            kind = {"STT_FUNC": "func", "STT_OBJECT": "object"}.get(t, "other")
            out.setdefault(sym.name, Symbol(sym.name, sym["st_value"],
                                            sym["st_size"], kind))
            local = sym["st_other"]["local"]
            if kind == "func" and local and sym.name not in self._local_offsets:
                self._local_offsets[sym.name] = _local_entry_offset(local)
        return out

    def symbol(self, name: str) -> Symbol:
        try:
            return self.symbols[name]
        except KeyError:
            raise ElfImageError(f"{self.path}: no symbol {name!r}") from None

    def function_entry(self, name: str) -> int:
        """Link-time code address of a function (through .opd for ELFv1)."""
        sym = self.symbol(name)
        return self._code_address(sym.value)

    def local_entry(self, name: str) -> int:
        """Link-time local entry point of a function: where a `bl` from
        within the image lands.  The global entry (function_entry) unless an
        ELFv2 symbol says its local entry lies past it."""
        entry = self.function_entry(name)
        return entry + self._local_offsets.get(name, 0)

    def _code_address(self, value: int) -> int:
        if self._opd is not None:
            base, data = self._opd
            if base <= value < base + len(data):
                return struct.unpack_from(">Q", data, value - base)[0]
        return value

    @cached_property
    def _functions(self) -> tuple[list[int], list[tuple[int, str]]]:
        spans = sorted((self._code_address(s.value), s.size, s.name)
                       for s in self.symbols.values() if s.kind == "func")
        starts = [a for a, _, _ in spans]
        return starts, [(a + size, name) for a, size, name in spans]

    def function_at(self, addr: int) -> str | None:
        """The function covering addr or, for code under a plain assembly
        label (crt0's _start, the test kernel's _kstart), that label."""
        starts, ends = self._functions
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < max(ends[i][0], starts[i] + 4):
            return ends[i][1]
        return self._label_at(addr)

    @cached_property
    def _labels(self) -> tuple[list[int], list[str]]:
        # At one address, prefer the shorter name (_start over _start_image).
        pairs = sorted((s.value, -len(s.name), s.name) for s in self.symbols.values()
                       if s.kind == "other")
        return [v for v, _, _ in pairs], [n for _, _, n in pairs]

    def _label_at(self, addr: int) -> str | None:
        values, names = self._labels
        i = bisect.bisect_right(values, addr) - 1
        return names[i] if i >= 0 else None

    @cached_property
    def _lines(self) -> tuple[list[int], list[tuple[str, int]]]:
        rows: list[tuple[int, str, int]] = []
        if not self._elf.has_dwarf_info():
            return [], []
        dwarf = self._elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            prog = dwarf.line_program_for_CU(cu)
            if prog is None:
                continue
            names = prog["file_entry"]
            version = prog.header["version"]
            for entry in prog.get_entries():
                st = entry.state
                if st is None or st.end_sequence:
                    continue
                idx = st.file if version >= 5 else st.file - 1
                name = names[idx].name.decode() if 0 <= idx < len(names) else "?"
                rows.append((st.address, name, st.line))
        rows.sort()
        return [r[0] for r in rows], [(r[1], r[2]) for r in rows]

    def locate(self, addr: int) -> SourceLocation:
        """Function and source line of a link-time code address."""
        func = self.function_at(addr)
        addrs, lines = self._lines
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0 or func is None:
            return SourceLocation(func, None, None)
        file, line = lines[i]
        return SourceLocation(func, file, line)


def _local_entry_offset(bits: int) -> int:
    """Bytes from global to local entry, from the three st_other bits the
    ELFv2 ABI gives them (64-bit ELF V2 ABI, "Symbol Values"): 0 and 1 mean
    the same address (1: r2 is not preserved), 2..6 mean (1 << bits) >> 2
    instructions, 7 is reserved."""
    if bits <= 1:
        return 0
    if bits == 7:
        raise ElfImageError("reserved local-entry encoding 7 in st_other")
    return ((1 << bits) >> 2) * 4
