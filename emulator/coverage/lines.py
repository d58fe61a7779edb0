"""An image's DWARF as coverage needs it: every instruction's source file and
line, and every function's entry and declaration.

The line table (.debug_line) is a list of rows per sequence; each row
says that the instructions from its address up to the next row's belong
to its file and line (a later row at the same address wins).  File names
are made whole from the compilation directory (DW_AT_comp_dir) and the
table's include directories, so a tracefile names the real sources.  The
numbering of files and directories differs between line-table versions:
from 5 on, files and directories count from 0 and directory 0 is the
compilation directory; before, files count from 1 and directory 0 means
the compilation directory.

Functions are the subprogram DIEs with code (DW_AT_low_pc), named and
placed by themselves or by the DIE they complete (DW_AT_abstract_origin,
DW_AT_specification).  A function is entered at its low_pc, except on
ELFv2, where a call from within the image lands past the two
instructions that set up r2 (addis r2,r12 / addi r2,r2): the local entry.

Maps are kept per content (a hash of the debug sections and the code), so
the corpus's composed images, which share the wrapper's code, are read
once.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from elftools.dwarf.die import DIE
from elftools.elf.elffile import ELFFile

INSN = 4
#: addis r2, r12, X and addi r2, r2, Y: an ELFv2 global entry's TOC set-up.
ADDIS_R2_R12, ADDI_R2_R2, HIGH_HALF = 0x3C4C0000, 0x38420000, 0xFFFF0000


@dataclass(frozen=True)
class Function:
    name: str
    file: str          # full path of its source
    line: int          # where it is declared (defined)
    entry: int         # link address its calls land on


@dataclass
class LineMap:
    """Instruction link address -> (file, line); the functions."""
    lines: dict[int, tuple[str, int]] = field(default_factory=dict)
    functions: list[Function] = field(default_factory=list)


_cache: dict[str, LineMap] = {}


def _digest(elf: ELFFile) -> str:
    h = hashlib.sha256()
    for sec in elf.iter_sections():
        if sec.name.startswith(".debug_") or sec["sh_flags"] & 4:     # SHF_EXECINSTR
            h.update(sec.name.encode() + struct.pack(">Q", sec["sh_addr"]))
            h.update(sec.data())
    return h.hexdigest()


def line_map(path: str | os.PathLike[str]) -> LineMap:
    """The map of the ELF at path (empty without DWARF)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        key = _digest(elf)
        hit = _cache.get(key)
        if hit is None:
            hit = _cache[key] = _read(elf)
        return hit


def _read(elf: ELFFile) -> LineMap:
    out = LineMap()
    if not elf.has_dwarf_info():
        return out
    dwarf = elf.get_dwarf_info()
    code = _code_reader(elf)
    elfv2 = elf.elfclass == 64 and elf["e_flags"] & 3 == 2
    for cu in dwarf.iter_CUs():
        top = cu.get_top_DIE()
        prog = dwarf.line_program_for_CU(cu)
        if prog is None:
            continue
        comp_dir = _text(top.attributes.get("DW_AT_comp_dir"))
        paths = _file_paths(prog, comp_dir)
        _rows(prog, paths, out.lines)
        for die in cu.iter_DIEs():
            if die.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in die.attributes:
                fn = _function(die, paths, code, elfv2)
                if fn is not None:
                    out.functions.append(fn)
    return out


def _text(attr: Any) -> str:
    if attr is None:
        return ""
    value = attr.value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _file_paths(prog: Any, comp_dir: str) -> dict[int, str]:
    """The table's file numbers -> full paths."""
    version = prog.header["version"]
    dirs = [d.decode("utf-8", "replace") for d in prog.header["include_directory"]]
    out: dict[int, str] = {}
    for i, entry in enumerate(prog.header["file_entry"]):
        d = entry.dir_index
        if version >= 5:
            directory = dirs[d] if d < len(dirs) else ""
            number = i
        else:
            directory = comp_dir if d == 0 else (dirs[d - 1] if d - 1 < len(dirs) else "")
            number = i + 1
        name = entry.name.decode("utf-8", "replace")
        out[number] = os.path.normpath(os.path.join(comp_dir, directory, name))
    return out


def _rows(prog: Any, paths: dict[int, str], lines: dict[int, tuple[str, int]]) -> None:
    """Every instruction of every sequence, to its row's file and line."""
    prev = None
    for entry in prog.get_entries():
        state = entry.state
        if state is None:
            continue
        if prev is not None:
            where = (paths.get(prev.file, "?"), prev.line)
            for addr in range(prev.address, state.address, INSN):
                lines[addr] = where
        prev = None if state.end_sequence else state


def _code_reader(elf: ELFFile) -> Any:
    segments = [(s["p_vaddr"], s.data()) for s in elf.iter_segments()
                if s["p_type"] == "PT_LOAD"]

    def word(addr: int) -> int | None:
        for base, data in segments:
            if base <= addr and addr + 4 <= base + len(data):
                return int.from_bytes(data[addr - base:addr - base + 4], "big")
        return None
    return word


def _origin(die: DIE) -> DIE:
    """The DIE that names a concrete function (itself, or what it completes)."""
    seen = 0
    while "DW_AT_name" not in die.attributes and seen < 4:
        for attr in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if attr in die.attributes:
                die = die.get_DIE_from_attribute(attr)
                break
        else:
            break
        seen += 1
    return die


def _function(die: DIE, paths: dict[int, str], code: Any, elfv2: bool) -> Function | None:
    named = _origin(die)
    name = _text(named.attributes.get("DW_AT_name"))
    file = named.attributes.get("DW_AT_decl_file")
    line = named.attributes.get("DW_AT_decl_line")
    if not name or file is None or line is None or file.value not in paths:
        return None
    entry = die.attributes["DW_AT_low_pc"].value
    if elfv2:
        first, second = code(entry), code(entry + 4)
        if first is not None and second is not None and \
                first & HIGH_HALF == ADDIS_R2_R12 and second & HIGH_HALF == ADDI_R2_R2:
            entry += 2 * INSN
    return Function(name, paths[file.value], line.value, entry)


def clear_cache() -> None:
    _cache.clear()


__all__ = ["Function", "LineMap", "clear_cache", "line_map"]
