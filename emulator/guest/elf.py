"""Images (the wrapper, the test kernel, a user's own wrapper): segments,
symbols, source lines.  ELF64 (our wrapper, ppc64 kernels) and ELF32
(Linux builds its big-endian boot wrapper -m32), big-endian PowerPC; and a
raw binary, which has neither symbols nor lines (RawImage).

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

from ..errors import InputError
from . import image_cache
from .lines import LineTable, read_line_table


class ElfImageError(InputError):
    """An image file that is missing, malformed or not big-endian PowerPC."""


class NotAnElfError(ElfImageError):
    """A file without the ELF header's magic: perhaps a raw binary."""


PF_X = 1
SHF_WRITE, SHF_ALLOC = 1, 2
#: (ELF class, e_machine) of the images bwemu runs: big-endian only.
MACHINES = {(64, "EM_PPC64"), (32, "EM_PPC")}


@dataclass(frozen=True)
class Segment:
    vaddr: int
    memsz: int
    data: bytes
    executable: bool = True


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


@dataclass(frozen=True)
class ElfFacts:
    """Everything ElfImage needs from the file but its line table, read in
    one pass (kept per content: emulator/guest/image_cache.py)."""
    bits: int
    entry: int
    e_flags: int
    segments: list[Segment]
    loads: list[tuple[int, int, int]]         # PT_LOAD (p_vaddr, p_filesz, p_offset)
    load_alignment: int
    position_independent: bool
    opd: tuple[int, bytes] | None
    readonly: list[tuple[str, int, int]]
    relocation_targets: frozenset[int]
    symbols: dict[str, Symbol]
    local_offsets: dict[str, int]
    all_functions: list[Symbol]


def _read_facts(path: Path) -> ElfFacts:
    """Parses the file with pyelftools (imported only here: a warm cache
    never loads it).  A malformed file is an ElfImageError naming it,
    whatever pyelftools raised on the way (it reads lazily, so a header it
    accepted can still fail a section or symbol read later)."""
    import struct

    from elftools.common.exceptions import ELFError, ELFParseError
    try:
        return _parse_facts(path)
    except (ELFError, ELFParseError, struct.error, ValueError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError, OSError) as e:
        raise ElfImageError(f"{path}: a malformed ELF ({type(e).__name__}: {e})") from None


def _parse_facts(path: Path) -> ElfFacts:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection
    try:
        f = open(path, "rb")  # noqa: SIM115   (closed below)
    except FileNotFoundError:
        raise ElfImageError(f"{path}: no such file") from None
    with f:
        try:
            elf = ELFFile(f)
        except ELFError as e:
            raise NotAnElfError(f"{path}: not an ELF file ({e})") from None
        if elf.little_endian or (elf.elfclass, elf["e_machine"]) not in MACHINES:
            raise ElfImageError(f"{path}: not a big-endian PowerPC ELF "
                                f"(ELF{elf.elfclass} {elf['e_machine']}, "
                                f"{'little' if elf.little_endian else 'big'}-endian)")
        bits = elf.elfclass
        phdrs = list(elf.iter_segments())
        loads = [s for s in phdrs if s["p_type"] == "PT_LOAD"]
        size = path.stat().st_size
        for i, seg in enumerate(loads):
            if seg["p_offset"] + seg["p_filesz"] > size:
                raise ElfImageError(f"{path}: PT_LOAD {i} (file bytes 0x{seg['p_offset']:x}"
                                    f"+0x{seg['p_filesz']:x}) runs past the file's end")
            if seg["p_vaddr"] + seg["p_memsz"] > 1 << bits:
                raise ElfImageError(f"{path}: PT_LOAD {i} (0x{seg['p_vaddr']:x}"
                                    f"+0x{seg['p_memsz']:x}) ends past 2^{bits}")
        entry = elf["e_entry"]
        # ELFv1's entry is a descriptor in .opd: still inside a PT_LOAD
        if loads and not any(s["p_vaddr"] <= entry < s["p_vaddr"] + s["p_memsz"]
                             for s in loads):
            raise ElfImageError(f"{path}: its entry 0x{entry:x} is in none of its PT_LOAD "
                                f"segments")
        sections = list(elf.iter_sections())
        opd = elf.get_section_by_name(".opd")
        symbols: dict[str, Symbol] = {}
        local_offsets: dict[str, int] = {}
        functions: list[Symbol] = []
        table = elf.get_section_by_name(".symtab")
        if isinstance(table, SymbolTableSection):     # None when stripped
            for sym in table.iter_symbols():
                t = sym["st_info"]["type"]
                undefined = sym["st_shndx"] == "SHN_UNDEF"
                if sym.name and t == "STT_FUNC" and not undefined:
                    functions.append(Symbol(sym.name, sym["st_value"], sym["st_size"], "func"))
                if not sym.name or undefined or t in ("STT_FILE", "STT_SECTION"):
                    continue
                kind = {"STT_FUNC": "func", "STT_OBJECT": "object"}.get(t, "other")
                symbols.setdefault(sym.name, Symbol(sym.name, sym["st_value"],
                                                    sym["st_size"], kind))
                # st_other's local-entry bits are an ELFv2 (64-bit) notion.
                local = sym["st_other"]["local"] if bits == 64 else 0
                if kind == "func" and local and sym.name not in local_offsets:
                    local_offsets[sym.name] = _local_entry_offset(local)
        relocated: set[int] = set()
        for sec in sections:
            if isinstance(sec, RelocationSection) and sec["sh_flags"] & SHF_ALLOC:
                relocated.update(rel["r_offset"] for rel in sec.iter_relocations())
        return ElfFacts(
            bits=bits, entry=entry, e_flags=elf["e_flags"],
            segments=[Segment(s["p_vaddr"], s["p_memsz"], s.data(), bool(s["p_flags"] & PF_X))
                      for s in loads],
            loads=[(s["p_vaddr"], s["p_filesz"], s["p_offset"]) for s in loads],
            # Where the image may be loaded: a multiple of this, its sections'
            # largest alignment (at least a word).  Not p_align, the linker's
            # page size: a position-independent image runs at any address
            # that keeps its sections aligned (ours at 0x100 under QEMU).
            load_alignment=max([4] + [sec["sh_addralign"] for sec in sections
                                      if sec["sh_flags"] & SHF_ALLOC]),
            # Relocatable where it is loaded (a PIE: ET_DYN, or a PT_DYNAMIC
            # for its start-up code to apply, as Linux's zImage.epapr has).
            position_independent=elf["e_type"] == "ET_DYN" or any(
                s["p_type"] == "PT_DYNAMIC" for s in phdrs),
            opd=(opd["sh_addr"], opd.data()) if opd is not None else None,
            readonly=[(sec.name, sec["sh_addr"], sec["sh_size"]) for sec in sections
                      if sec["sh_flags"] & SHF_ALLOC and not sec["sh_flags"] & SHF_WRITE
                      and sec["sh_size"] and sec["sh_type"] != "SHT_NOBITS"],
            relocation_targets=frozenset(relocated),
            symbols=symbols, local_offsets=local_offsets, all_functions=functions)


class ElfImage:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        facts = image_cache.fact(self.path, "elf", _read_facts)
        self._facts = facts
        #: 32 or 64: the ELF class, which is also the mode its code runs in.
        self.bits: int = facts.bits
        self.entry = facts.entry
        self.segments = facts.segments
        self.load_alignment = facts.load_alignment
        self.position_independent = facts.position_independent
        if not self.segments:
            raise ElfImageError(f"{self.path}: no PT_LOAD segment")
        self._local_offsets: dict[str, int] = facts.local_offsets
        self._opd = facts.opd

    def close(self) -> None:
        """Nothing to close: the file is read once, when first parsed."""

    def file_offset(self, addr: int) -> int:
        """Where in the file the byte at link address addr is."""
        for vaddr, filesz, offset in self._facts.loads:
            if vaddr <= addr < vaddr + filesz:
                return offset + addr - vaddr
        raise ElfImageError(f"{self.path}: link address 0x{addr:x} has no file bytes")

    def read(self, addr: int, size: int) -> bytes:
        """Up to size file bytes from link address addr (within one segment)."""
        for seg in self.segments:
            if seg.vaddr <= addr < seg.vaddr + len(seg.data):
                off = addr - seg.vaddr
                return seg.data[off:off + size]
        return b""

    def readonly_sections(self) -> list[tuple[str, int, int]]:
        """(name, link address, size) of every allocated section with file
        bytes that is not writable: what the image itself must not write."""
        return list(self._facts.readonly)

    @cached_property
    def relocation_targets(self) -> frozenset[int]:
        """Link addresses of the words the image's own start-up code
        relocates (r_offset of its allocated, i.e. dynamic, relocation
        sections): a position-independent image writes them as it starts,
        even inside its text (Linux's crt0 keeps p_start and friends there)."""
        return self._facts.relocation_targets

    @property
    def elfv1(self) -> bool:
        return self._opd is not None

    @property
    def elfv2(self) -> bool:
        """e_flags' ABI version bits (EF_PPC64_ABI, the low two) say 2."""
        return self.bits == 64 and self._facts.e_flags & 3 == 2

    @property
    def span(self) -> tuple[int, int]:
        """Link-time [start, end) of everything loaded, bss included."""
        return (min(s.vaddr for s in self.segments),
                max(s.vaddr + s.memsz for s in self.segments))

    @cached_property
    def symbols(self) -> dict[str, Symbol]:
        return self._facts.symbols

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
    def _all_functions(self) -> list[Symbol]:
        """Every function symbol, local ones of the same name included
        (Linux's wrapper has three static exit()s); symbols keeps one."""
        return self._facts.all_functions

    @cached_property
    def _functions(self) -> tuple[list[int], list[tuple[int, str]]]:
        spans = sorted((self._code_address(s.value), s.size, s.name)
                       for s in self._all_functions)
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

    @property
    def has_lines(self) -> bool:
        """Whether the image has a DWARF line table (built with -g)."""
        return bool(self.lines)

    @cached_property
    def lines(self) -> LineTable:
        return image_cache.fact(self.path, "lines", read_line_table)

    def locate(self, addr: int) -> SourceLocation:
        """Function and source line of a link-time code address."""
        func = self.function_at(addr)
        where = self.lines.at(addr) if func is not None else None
        if where is None:
            return SourceLocation(func, None, None)
        return SourceLocation(func, *where)


class RawImage(ElfImage):
    """A raw binary: its bytes at link address 0, entered entry_offset bytes
    in.  No symbols, no lines; position independent as far as bwemu knows
    (it is placed like our wrapper unless a load address is given)."""

    def __init__(self, path: str | Path, entry_offset: int, bits: int = 64) -> None:
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise ElfImageError(f"{self.path}: cannot read ({e.strerror})") from None
        if not data:
            raise ElfImageError(f"{self.path}: the image is empty")
        if data[:4] == b"\x7fELF":
            # loaded as raw bytes it would run its ELF header as code
            raise ElfImageError(f"{self.path}: an ELF file, entered at its own e_entry: "
                                f"an entry offset (--entry-offset) is for a raw binary")
        if not 0 <= entry_offset < len(data) or entry_offset % 4:
            raise ElfImageError(f"{self.path}: --entry-offset 0x{entry_offset:x} is not a "
                                f"word inside the image's 0x{len(data):x} bytes")
        self._file = None
        self.bits = bits
        self.entry = entry_offset
        self.segments = [Segment(0, len(data), data, True)]
        self.load_alignment = 4
        self.position_independent = True
        self._local_offsets = {}
        self._opd = None

    def close(self) -> None:
        pass

    @property
    def elfv2(self) -> bool:
        return False

    @cached_property
    def symbols(self) -> dict[str, Symbol]:
        return {}

    @cached_property
    def _all_functions(self) -> list[Symbol]:
        return []

    @cached_property
    def lines(self) -> LineTable:
        return LineTable()

    def readonly_sections(self) -> list[tuple[str, int, int]]:
        return []        # nothing says which of its bytes are code

    @cached_property
    def relocation_targets(self) -> frozenset[int]:
        return frozenset()


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
