"""The one symboliser: every PC bwemu prints, as function+offset and file:line.

ImageSymbols reads one ELF's own symbol table, DWARF line table and call
frame information (.debug_frame, else .eh_frame) with pyelftools, in link
addresses:

- function symbols are taken through their ELFv1 descriptor (.opd) to the
  code; an ELFv2 function's offset counts from its global entry, so a `bl`
  from inside the image lands at func+0x8 (the local entry);
- every function symbol counts, local ones of the same name included, and
  plain assembly labels in code (crt0's _start, the test kernel's _kstart)
  name the code after them;
- a line is given only where a line-table sequence covers the address:
  code without line rows (the linker's _savegpr*/_restgpr* helpers, an
  image built without -g) says so instead of borrowing a neighbour's line;
- a PC past the end of the nearest function is named after it, marked as
  the nearest symbol.

Symboliser puts LoadedImages together in guest addresses: the wrapper from
the start, the kernel once it has been handed over (where it was placed,
and at its link address, where a ppc64 kernel copies itself).  A PC is
matched against the images' code first (later images first: the kernel
runs over the wrapper's old place), then against their whole span.

Parsing is done once per file content (a cache keyed by path, size and
modification time) and only when asked: a boot that prints no PC parses
nothing.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import image_cache
from .addresses import LoadedImage
from .elf import ElfImage, SourceLocation
from .lines import LineTable, read_line_table

if TYPE_CHECKING:
    from elftools.dwarf.callframe import FDE

SHF_EXECINSTR = 4
#: DWARF's number for the link register on PowerPC (both ABIs, GCC and clang).
DWARF_LR = 65


@dataclass(frozen=True)
class PcInfo(SourceLocation):
    """A symbolised guest address.  As a SourceLocation it has function,
    file and line; str() gives `func+0x10 (file.c:12)`, describe() puts
    the address in front."""
    pc: int = 0
    offset: int = 0               # from the start of `function`
    image: str | None = None      # which image, when not the first one
    in_image: bool = False
    exact: bool = False           # inside the function's extent (or under a label)
    debug_info: bool = False      # the image has a line table at all

    @property
    def symbol(self) -> str:
        """`func+0x10`, `image+0x1234` without symbols, `?` outside every image."""
        if self.function is not None:
            return f"{self.function}+0x{self.offset:x}"
        if self.in_image:
            return f"{self.image or 'image'}+0x{self.offset:x}"
        return "?"

    @property
    def where(self) -> str:
        """file:line, or why there is none."""
        if not self.in_image:
            return "outside the images"
        if self.file is not None:
            return f"{self.file}:{self.line}" if self.line else self.file
        if not self.debug_info:
            return "no debug info" if self.function is not None else "no symbols, no debug info"
        return "no line info"

    def __str__(self) -> str:
        if not self.in_image:
            return "? (outside the images)"
        near = "" if self.exact or self.function is None else ", nearest symbol"
        image = f" [{self.image}]" if self.image else ""
        return f"{self.symbol}{image} ({self.where}{near})"

    def describe(self) -> str:
        return f"0x{self.pc:x} {self}"

    def to_json(self) -> dict[str, Any]:
        return {"pc": self.pc, "function": self.function, "offset": self.offset,
                "file": self.file, "line": self.line, "image": self.image,
                "exact": self.exact, "debug_info": self.debug_info, "text": str(self)}


@dataclass(frozen=True)
class FrameRule:
    """How to find the caller's frame at one code address (one CFI row):
    CFA = register cfa_reg + cfa_offset; each saved register is
    ("offset", n): at CFA + n, ("val_offset", n): it is CFA + n,
    ("register", r): in register r, ("same", 0) or ("undefined", 0)."""
    cfa_reg: int
    cfa_offset: int
    rules: dict[int, tuple[str, int]]
    ra_reg: int = DWARF_LR


#: pyelftools' RegisterRule kinds (its constants are these strings).
_RULE_KINDS = {"OFFSET": "offset", "VAL_OFFSET": "val_offset", "REGISTER": "register",
               "SAME_VALUE": "same", "UNDEFINED": "undefined"}


class ImageSymbols:
    """Symbols, lines and CFI of one image file, in link addresses."""

    def __init__(self, path: Path, bits: int = 64) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.bits = bits
        self.is_elf = False
        self.entry: int | None = None
        self.code: list[tuple[int, int]] = []
        #: Link-time [start, end) of everything loaded, bss included.
        self.span = (0, 0)
        self._funcs: list[tuple[int, int, str]] = []      # start, end, name (sized)
        self._labels: list[tuple[int, str]] = []          # start, name (sizeless)
        # Parsed once per file content (emulator/guest/image_cache.py).
        read = image_cache.fact(self.path, "symbols", _read_symbol_facts)
        if read is not None:
            (self.is_elf, self.bits, self.entry, self.code, self.span,
             self._funcs, self._labels) = read
        self._func_starts = [s for s, _, _ in self._funcs]
        self._label_starts = [s for s, _ in self._labels]
        self._rules: dict[int, FrameRule | None] = {}

    @classmethod
    def of(cls, elf: ElfImage) -> ImageSymbols:
        """The (cached) symbols of an ElfImage's file."""
        return cached(elf.path, getattr(elf, "bits", 64))

    @classmethod
    def of_path(cls, path: Path) -> ImageSymbols:
        """The (cached) symbols of an ELF file."""
        return cached(path)

    # --- reading ------------------------------------------------------------

    @cached_property
    def _lines(self) -> LineTable:
        if not self.is_elf:
            return LineTable()
        return image_cache.fact(self.path, "lines", read_line_table)

    @cached_property
    def _fdes(self) -> tuple[list[int], list[tuple[int, FDE]]]:
        from elftools.common.exceptions import DWARFError, ELFError
        from elftools.dwarf.callframe import FDE
        from elftools.elf.elffile import ELFFile
        starts: list[tuple[int, int, FDE]] = []
        if not self.is_elf:
            return [], []
        try:
            with open(self.path, "rb") as f:
                elf = ELFFile(f)
                if not elf.has_dwarf_info():
                    return [], []
                dwarf = elf.get_dwarf_info()
                if dwarf.has_CFI():
                    entries = dwarf.CFI_entries()
                elif dwarf.has_EH_CFI():
                    entries = dwarf.EH_CFI_entries()
                else:
                    return [], []
                for e in entries:
                    if isinstance(e, FDE):
                        start = e.header["initial_location"]
                        e.get_decoded()       # decode while the file is open
                        starts.append((start, start + e.header["address_range"], e))
        except (OSError, ELFError, DWARFError):
            return [], []
        starts.sort(key=lambda t: t[0])
        return [s for s, _, _ in starts], [(end, fde) for _, end, fde in starts]

    # --- questions ----------------------------------------------------------

    def contains_code(self, link: int) -> bool:
        return any(s <= link < e for s, e in self.code)

    @property
    def has_lines(self) -> bool:
        return bool(self._lines)

    @property
    def has_cfi(self) -> bool:
        return bool(self._fdes[0])

    def function_at(self, link: int) -> tuple[str, int, bool] | None:
        """(name, start, exact) of the symbol naming link: the function
        whose extent covers it; else the label (or sizeless function) at
        or below it, after the last function that ended; else the nearest
        symbol below it (exact False)."""
        fi = bisect.bisect_right(self._func_starts, link) - 1
        func = self._funcs[fi] if fi >= 0 else None
        if func is not None and link < func[1]:
            return func[2], func[0], True
        li = bisect.bisect_right(self._label_starts, link) - 1
        label = self._labels[li] if li >= 0 else None
        if label is not None and (func is None or label[0] >= func[1]):
            return label[1], label[0], True
        if label is not None and func is not None and label[0] > func[0]:
            return label[1], label[0], False
        if func is not None:
            return func[2], func[0], False
        return None

    def line_at(self, link: int) -> tuple[str, int] | None:
        """(file, line) of link, where a line-table sequence covers it."""
        return self._lines.at(link)

    def frame_rule(self, link: int) -> FrameRule | None:
        """The CFI row in force at link (None: no FDE covers it, or its CFA
        is an expression)."""
        try:
            return self._rules[link]
        except KeyError:
            rule = self._rules[link] = self._frame_rule(link)
            return rule

    def _frame_rule(self, link: int) -> FrameRule | None:
        starts, fdes = self._fdes
        i = bisect.bisect_right(starts, link) - 1
        if i < 0 or link >= fdes[i][0]:
            return None
        fde = fdes[i][1]
        table = fde.get_decoded().table
        row = None
        for r in table:
            if r["pc"] <= link:
                row = r
            else:
                break
        if row is None or row["cfa"].reg is None:
            return None
        rules: dict[int, tuple[str, int]] = {}
        for reg, rule in row.items():
            if isinstance(reg, int) and hasattr(rule, "type") and hasattr(rule, "arg"):
                kind = _RULE_KINDS.get(rule.type)
                if kind is None:
                    return None      # an expression: not something bwemu evaluates
                rules[reg] = (kind, rule.arg if isinstance(rule.arg, int) else 0)
        ra = DWARF_LR if fde.cie is None else fde.cie.header.get("return_address_register",
                                                                  DWARF_LR)
        return FrameRule(row["cfa"].reg, row["cfa"].offset, rules, ra)

    def function_ranges(self, name: str) -> list[tuple[int, int]]:
        """Link [start, end) of every function called name; a label (or a
        sizeless function) extends to the next symbol or the end of code."""
        out = [(start, end) for start, end, fname in self._funcs if fname == name]
        for i, (start, lname) in enumerate(self._labels):
            if lname == name:
                nxt = [s for s in self._func_starts if s > start]
                if i + 1 < len(self._labels):
                    nxt.append(self._labels[i + 1][0])
                end = min(nxt) if nxt else max((e for _, e in self.code), default=start + 4)
                out.append((start, end))
        return out

    def entry_function(self) -> str | None:
        """The symbol at the image's entry point (where it is entered from outside)."""
        if self.entry is None:
            return None
        hit = self.function_at(self.entry)
        return hit[0] if hit is not None and hit[1] == self.entry else None


_SymbolFacts = tuple[bool, int, "int | None", list[tuple[int, int]], tuple[int, int],
                     list[tuple[int, int, str]], list[tuple[int, str]]]


def _read_symbol_facts(path: Path) -> _SymbolFacts | None:
    """(is_elf, bits, entry, code, span, funcs, labels) of an ELF file
    (pyelftools); None for a file that is not one (a raw image)."""
    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            bits = elf.elfclass
            entry = elf["e_entry"]
            span = (0, 0)
            code: list[tuple[int, int]] = []
            loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            if loads:
                span = (min(s["p_vaddr"] for s in loads),
                        max(s["p_vaddr"] + s["p_memsz"] for s in loads))
            for sec in elf.iter_sections():
                if sec["sh_flags"] & SHF_EXECINSTR and sec["sh_size"]:
                    code.append((sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]))
            if not code:     # no section headers: the executable segments
                code = [(s["p_vaddr"], s["p_vaddr"] + s["p_filesz"])
                        for s in loads if s["p_flags"] & 1]
            code.sort()
            opd = elf.get_section_by_name(".opd") if bits == 64 else None
            opd_base, opd_data = (opd["sh_addr"], opd.data()) if opd is not None else (0, b"")
            funcs: list[tuple[int, int, str]] = []
            labels: list[tuple[int, int, str]] = []
            table = elf.get_section_by_name(".symtab")
            symbols = table.iter_symbols() if isinstance(table, SymbolTableSection) else ()
            for sym in symbols:
                kind = sym["st_info"]["type"]
                name = sym.name
                if not name or sym["st_shndx"] == "SHN_UNDEF" or name.startswith(".L"):
                    continue
                value, size = sym["st_value"], sym["st_size"]
                if kind == "STT_FUNC":
                    if opd_base <= value < opd_base + len(opd_data) - 7:
                        value = int.from_bytes(opd_data[value - opd_base:value - opd_base + 8],
                                               "big")
                    if size:
                        funcs.append((value, value + size, name))
                    else:
                        labels.append((value, 0, name))
                elif kind == "STT_NOTYPE" and any(s <= value < e for s, e in code):
                    labels.append((value, len(name), name))
    except (OSError, ELFError, DWARFError):
        return None      # a raw image: no symbols, no lines, no CFI
    funcs.sort()
    # At one address the function comes first, then the shorter name
    # (_start over _start_image); one label per address is enough.
    labels.sort()
    seen: set[int] = set()
    first: list[tuple[int, str]] = []
    for value, _, name in labels:
        if value not in seen:
            seen.add(value)
            first.append((value, name))
    return True, bits, entry, code, span, funcs, first


_CACHE: dict[tuple[str, int, int, int], ImageSymbols] = {}


def cached(path: Path, bits: int = 64) -> ImageSymbols:
    """ImageSymbols of a file, parsed once per content (path, size, mtime)."""
    try:
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, bits)
    except OSError:
        return ImageSymbols(path, bits)
    hit = _CACHE.get(key)
    if hit is None:
        if len(_CACHE) > 64:
            _CACHE.clear()
        hit = _CACHE[key] = ImageSymbols(path, bits)
    return hit


@dataclass(frozen=True)
class Mapping:
    """One image at one place in the guest."""
    symbols: ImageSymbols
    offset: int            # guest = link + offset
    start: int             # guest span [start, end)
    end: int
    label: str | None      # None for the first (main) image

    def to_link(self, pc: int) -> int:
        return pc - self.offset


class Symboliser:
    """Guest PCs -> PcInfo, over every image a boot has in memory."""

    def __init__(self, image: LoadedImage | None = None) -> None:
        self.mappings: list[Mapping] = []
        self._memo: dict[int, PcInfo] = {}
        self._entry_memo: dict[int, bool] = {}
        if image is not None:
            self.add(image)

    def add(self, image: LoadedImage, label: str | None = None) -> None:
        """An image in the guest; added later, it is matched first."""
        self.add_file(ImageSymbols.of(image.elf), image.offset,
                      image.span.address, image.span.end, label)

    def add_file(self, symbols: ImageSymbols, offset: int, start: int, end: int,
                 label: str | None) -> None:
        self.mappings.insert(0, Mapping(symbols, offset, start, end, label))
        self._memo.clear()
        self._entry_memo.clear()

    def mapping(self, pc: int) -> Mapping | None:
        """The image pc is code of (else the one whose span has it)."""
        for m in self.mappings:
            if m.symbols.contains_code(pc - m.offset):
                return m
        for m in self.mappings:
            if m.start <= pc < m.end:
                return m
        return None

    def symbolise(self, pc: int) -> PcInfo:
        hit = self._memo.get(pc)
        if hit is None:
            hit = self._memo[pc] = self._symbolise(pc)
        return hit

    def _symbolise(self, pc: int) -> PcInfo:
        m = self.mapping(pc)
        if m is None:
            return PcInfo(None, None, None, pc=pc, offset=pc)
        link = m.to_link(pc)
        syms = m.symbols
        func = syms.function_at(link)
        line = syms.line_at(link)
        name, start, exact = func if func is not None else (None, m.start - m.offset, False)
        exact = exact and syms.contains_code(link)     # data is never "inside" code
        return PcInfo(name, line[0] if line else None, line[1] if line else None,
                      pc=pc, offset=link - start, image=m.label, in_image=True,
                      exact=exact, debug_info=syms.has_lines)

    def locate(self, pc: int) -> PcInfo | None:
        """As LoadedImage.locate: None outside every image."""
        info = self.symbolise(pc)
        return info if info.in_image else None

    def frame_rule(self, pc: int) -> tuple[FrameRule | None, Mapping | None]:
        m = self.mapping(pc)
        if m is None:
            return None, None
        return m.symbols.frame_rule(m.to_link(pc)), m

    def function_start(self, pc: int) -> int | None:
        """Guest address of the start of the symbol naming pc."""
        m = self.mapping(pc)
        if m is None:
            return None
        hit = m.symbols.function_at(m.to_link(pc))
        return None if hit is None else hit[1] + m.offset

    def function_range(self, name: str) -> list[tuple[int, int]]:
        """Guest [start, end) of every function called name (sized ones;
        a label extends to the next symbol)."""
        return [(start + m.offset, end + m.offset) for m in self.mappings
                for start, end in m.symbols.function_ranges(name)]

    def is_entry(self, pc: int) -> bool:
        """Whether pc lies in the function an image is entered at from
        outside (the wrapper's _start, the kernel's entry)."""
        hit = self._entry_memo.get(pc)
        if hit is None:
            hit = self._entry_memo[pc] = self._is_entry(pc)
        return hit

    def _is_entry(self, pc: int) -> bool:
        m = self.mapping(pc)
        if m is None or m.symbols.entry is None:
            return False
        entry = m.symbols.entry_function()
        hit = m.symbols.function_at(m.to_link(pc))
        return entry is not None and hit is not None and hit[0] == entry


__all__ = ["DWARF_LR", "FrameRule", "ImageSymbols", "Mapping", "PcInfo", "Symboliser",
           "cached"]
