"""Read a C variable's struct layout from an ELF's DWARF (pyelftools).

The mirror compares the guest's `ranges` and `heap` objects with the model
byte for byte, so it must know exactly where the compiler put every field.
Rather than restate offsets by hand (and drift when the header changes),
they are read from the debug information of the very ELF being run: the
variable's DIE gives its type, typedefs and qualifiers are followed down to
the struct, members give offsets, subranges give array lengths, base types
give sizes.  The result is the layout dataclasses of wrapper_model.layout,
which the model's renderers consume.

The total is cross-checked against the ELF symbol's st_size: if DWARF and
the symbol table disagree, one of them is not describing the object the
guest really has, and nothing compared through that layout could be trusted.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wrapper_model.layout import (
    ArrayLayout,
    ByteOrder,
    FieldLayout,
    ScalarLayout,
    StructLayout,
    TypeLayout,
)

from ..errors import SetupError
from .image_cache import disk_cache_dir, read_pickle, write_pickle

if TYPE_CHECKING:     # pyelftools is imported only to parse (a warm cache never does)
    from elftools.dwarf.die import DIE
    from elftools.elf.elffile import ELFFile

# Tags whose only job is to wrap another type.
_TRANSPARENT_TAGS = frozenset({
    "DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type",
    "DW_TAG_restrict_type", "DW_TAG_atomic_type",
})

_DW_ATE_SIGNED = 0x05
_DW_ATE_SIGNED_CHAR = 0x06
_DW_OP_PLUS_UCONST = 0x23


class DwarfLayoutError(SetupError):
    """The layout of a symbol could not be read, or did not add up.

    The message always names the ELF and the symbol, since the usual cause
    is a build without -g, a stripped image or a wrong symbol name.
    """

    def __init__(self, elf_name: str, symbol: str, problem: str) -> None:
        super().__init__(f"{elf_name}: symbol {symbol!r}: {problem}")
        self.elf_name = elf_name
        self.symbol = symbol
        self.problem = problem


# --- DWARF walking ------------------------------------------------------------------


def _uleb128(data: list[int]) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value


class _Reader:
    """Turns type DIEs into layouts; errors name the ELF and the symbol."""

    def __init__(self, elf_name: str, symbol: str, byte_order: ByteOrder) -> None:
        self.elf_name = elf_name
        self.symbol = symbol
        self.byte_order = byte_order

    def fail(self, problem: str) -> DwarfLayoutError:
        return DwarfLayoutError(self.elf_name, self.symbol, problem)

    @staticmethod
    def _name(die: DIE) -> str:
        attr = die.attributes.get("DW_AT_name")
        return attr.value.decode("utf-8", "replace") if attr else ""

    def _target(self, die: DIE) -> DIE:
        if "DW_AT_type" not in die.attributes:
            raise self.fail(f"{die.tag} at {die.offset:#x} has no type (void?)")
        return die.get_DIE_from_attribute("DW_AT_type")

    def type_layout(self, die: DIE, depth: int = 0) -> TypeLayout:
        if depth > 64:
            raise self.fail("type chain too deep (cycle?)")
        tag = die.tag
        if tag in _TRANSPARENT_TAGS:
            inner = self.type_layout(self._target(die), depth + 1)
            if tag == "DW_TAG_typedef" and isinstance(inner, ScalarLayout):
                # Reports read better as "u64" than "long long unsigned int".
                inner = replace(inner, type_name=self._name(die))
            return inner
        if tag == "DW_TAG_structure_type":
            return self.struct_layout(die, depth)
        if tag == "DW_TAG_array_type":
            return self.array_layout(die, depth)
        if tag == "DW_TAG_base_type":
            enc_attr = die.attributes.get("DW_AT_encoding")
            enc = enc_attr.value if enc_attr is not None else 0
            return ScalarLayout(self._byte_size(die), self._name(die),
                                enc in (_DW_ATE_SIGNED, _DW_ATE_SIGNED_CHAR))
        if tag == "DW_TAG_pointer_type":
            size = (die.attributes["DW_AT_byte_size"].value
                    if "DW_AT_byte_size" in die.attributes else die.cu["address_size"])
            return ScalarLayout(size, "pointer")
        if tag == "DW_TAG_enumeration_type":
            signed = False
            if "DW_AT_type" in die.attributes:
                under = self.type_layout(self._target(die), depth + 1)
                signed = isinstance(under, ScalarLayout) and under.signed
            return ScalarLayout(self._byte_size(die), "enum " + self._name(die), signed)
        raise self.fail(f"unsupported type {tag} {self._name(die)!r} at {die.offset:#x}")

    def _byte_size(self, die: DIE) -> int:
        if "DW_AT_byte_size" not in die.attributes:
            raise self.fail(f"{die.tag} {self._name(die)!r} has no DW_AT_byte_size")
        return int(die.attributes["DW_AT_byte_size"].value)

    def _member_offset(self, member: DIE) -> int:
        attr = member.attributes.get("DW_AT_data_member_location")
        if attr is None:
            return 0        # allowed for the first member / union members
        value: Any = attr.value
        if isinstance(value, int):
            return value
        # DWARF 2 style: a location expression, in practice DW_OP_plus_uconst N.
        if isinstance(value, list) and value and value[0] == _DW_OP_PLUS_UCONST:
            return _uleb128(value[1:])
        raise self.fail(f"member {self._name(member)!r}: unsupported location {value!r}")

    def struct_layout(self, die: DIE, depth: int) -> StructLayout:
        name = self._name(die) or "<anonymous>"
        if "DW_AT_declaration" in die.attributes:
            raise self.fail(f"struct {name} is only declared (incomplete type)")
        fields = []
        for member in die.iter_children():
            if member.tag != "DW_TAG_member":
                continue
            mname = self._name(member)
            if "DW_AT_bit_size" in member.attributes:
                raise self.fail(f"struct {name}: bit-field {mname!r} is not supported")
            fields.append(FieldLayout(
                mname, self._member_offset(member),
                self.type_layout(self._target(member), depth + 1)))
        return StructLayout(name, self._byte_size(die), tuple(fields), self.byte_order)

    def _subrange_count(self, sub: DIE) -> int:
        attrs = sub.attributes
        if "DW_AT_count" in attrs:
            return int(attrs["DW_AT_count"].value)
        if "DW_AT_upper_bound" in attrs:
            ub = attrs["DW_AT_upper_bound"]
            if ub.form.startswith("DW_FORM_ref") or ub.form == "DW_FORM_exprloc":
                raise self.fail("variable-length array is not supported")
            lower = int(attrs["DW_AT_lower_bound"].value) if "DW_AT_lower_bound" in attrs else 0
            return int(ub.value) - lower + 1
        return 0        # flexible array member: no storage of its own

    def array_layout(self, die: DIE, depth: int) -> ArrayLayout:
        element = self.type_layout(self._target(die), depth + 1)
        dims = [self._subrange_count(s) for s in die.iter_children()
                if s.tag == "DW_TAG_subrange_type"]
        if not dims:
            raise self.fail(f"array at {die.offset:#x} has no subrange")
        # int a[2][3]: the last subrange is the innermost dimension.
        layout: TypeLayout = element
        for count in reversed(dims):
            layout = ArrayLayout(layout, count)
        assert isinstance(layout, ArrayLayout)
        return layout


def _top_level_variables(elf: ELFFile) -> Iterator[DIE]:
    dwarf = elf.get_dwarf_info()
    for cu in dwarf.iter_CUs():
        for die in cu.get_top_DIE().iter_children():
            if die.tag == "DW_TAG_variable":
                yield die


def _variable_type_die(elf: ELFFile, reader: _Reader, symbol: str) -> DIE:
    """The type DIE of the variable's definition (or, lacking one, a declaration).

    GCC describes `struct x v;` after `extern struct x v;` as a declaration
    DIE carrying name and type plus a nameless definition DIE pointing back
    with DW_AT_specification, so names and types are looked up through it.
    """
    definitions: list[DIE] = []
    declarations: list[DIE] = []
    for die in _top_level_variables(elf):
        source = die
        if "DW_AT_specification" in die.attributes:
            source = die.get_DIE_from_attribute("DW_AT_specification")
        if reader._name(source) != symbol and reader._name(die) != symbol:
            continue
        typed = die if "DW_AT_type" in die.attributes else source
        if "DW_AT_declaration" in die.attributes:
            declarations.append(typed)
        else:
            definitions.append(typed)
    found = definitions or declarations
    if not found:
        raise reader.fail("no DW_TAG_variable of that name in the DWARF")
    return reader._target(found[0])


def _symbol_size(elf: ELFFile, reader: _Reader, symbol: str) -> int:
    symtab = elf.get_section_by_name(".symtab")
    from elftools.elf.sections import SymbolTableSection
    if not isinstance(symtab, SymbolTableSection):
        raise reader.fail("the ELF has no .symtab to check the size against")
    sizes = {s["st_size"] for s in symtab.get_symbol_by_name(symbol) or []
             if s["st_info"]["type"] == "STT_OBJECT"}
    if not sizes:
        raise reader.fail("no STT_OBJECT symbol of that name in .symtab")
    if len(sizes) > 1:
        raise reader.fail(f"several objects of that name with sizes {sorted(sizes)}")
    return sizes.pop()


def read_struct_layout(elf: ELFFile, symbol: str, elf_name: str = "<elf>") -> StructLayout:
    """The layout of the struct that global `symbol` is, from an open ELF."""
    reader = _Reader(elf_name, symbol, "little" if elf.little_endian else "big")
    if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_info") is None:
        raise reader.fail("the ELF has no DWARF debug information (built without -g?)")
    layout = reader.type_layout(_variable_type_die(elf, reader, symbol))
    if not isinstance(layout, StructLayout):
        raise reader.fail(f"its type is not a struct ({type(layout).__name__})")
    st_size = _symbol_size(elf, reader, symbol)
    if st_size != layout.size:
        raise reader.fail(
            f"DWARF says struct {layout.name} is {layout.size} bytes "
            f"but the symbol's st_size is {st_size}")
    return layout


_cache: dict[tuple[str, int, int, str], StructLayout] = {}

#: Bumped whenever StructLayout or this reader changes what it produces.
DISK_CACHE_VERSION = 1

#: How many times DWARF was really parsed in this process (for tests and
#: benchmarks: a warm cache parses nothing).
parses = 0


def _load_cached(file: Path) -> StructLayout | None:
    value = read_pickle(file)
    return value if isinstance(value, StructLayout) else None


def struct_layout(elf: str | os.PathLike[str] | ELFFile, symbol: str) -> StructLayout:
    """The layout of global `symbol`'s struct type.

    Given a path, the answer is cached in this process per (path, mtime,
    size, symbol), and on disk (disk_cache_dir()) per the SHA-256 of the
    ELF's bytes, so a rebuilt ELF is read again while a repeated CLI run
    of one ELF parses no DWARF at all.  An open ELFFile is read each time
    (there is nothing reliable to key on).
    """
    global parses
    if not isinstance(elf, (str, os.PathLike)):      # an open ELFFile
        name = getattr(elf.stream, "name", "<elf>")
        parses += 1
        return read_struct_layout(elf, symbol, str(name))
    path = Path(elf)
    try:
        st = path.stat()
    except OSError as exc:
        raise DwarfLayoutError(str(path), symbol, f"cannot read the ELF: {exc}") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, symbol)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DwarfLayoutError(str(path), symbol, f"cannot read the ELF: {exc}") from None
    cache_dir = disk_cache_dir()
    file = None
    if cache_dir is not None:
        digest = hashlib.sha256(data).hexdigest()[:40]
        file = cache_dir / f"layout-v{DISK_CACHE_VERSION}-{digest}-{symbol}.pickle"
        hit = _load_cached(file)
        if hit is not None:
            _cache[key] = hit
            return hit
    from elftools.elf.elffile import ELFFile
    try:
        elffile = ELFFile(io.BytesIO(data))
    except Exception as exc:  # pyelftools raises several kinds
        raise DwarfLayoutError(str(path), symbol, f"not a readable ELF: {exc}") from None
    parses += 1
    layout = read_struct_layout(elffile, symbol, str(path))
    _cache[key] = layout
    if file is not None:
        write_pickle(file, layout)
    return layout


def clear_cache() -> None:
    """Forget every layout cached in this process (for tests that rewrite
    an ELF in place); the disk cache is keyed by content and needs none."""
    _cache.clear()
