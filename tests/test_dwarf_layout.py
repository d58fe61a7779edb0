"""Struct layouts read from DWARF, and the model rendered through them.

Tiny C files are compiled for the guest (big-endian ppc64, the firmware's
flags plus -g) so these tests need the cross compiler but not the firmware
build.  Test-only structs with other field orders show that the layout, and
so the rendered bytes, follow the C struct rather than anything hard-coded.
"""

from __future__ import annotations

import os
import struct as pystruct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from emulator.guest.dwarf import DwarfLayoutError, clear_cache, struct_layout
from tests.layout_helpers import REAL_OBJECTS_C, compile_guest_object, real_layouts
from wrapper_model import RangeTable
from wrapper_model.constants import ALLOC_MAX_RECORDS, RANGES_MAX, U64_MAX
from wrapper_model.layout import (
    ArrayLayout,
    FieldDiff,
    LayoutError,
    ScalarLayout,
    StructLayout,
    decode,
    decode_heap,
    decode_range_table,
    diff_bytes,
    encode,
    padding,
    render_heap,
    render_range_table,
)

# A range_table with the header's fields in another order (and the array
# first), for proving that the rendering follows the DWARF.
REORDERED_C = """\
#include "types.h"
struct mem_range { u64 end; u64 start; };
struct range_table {
	struct mem_range entry[32];
	u32 refused;
	u32 count;
	u64 heap_end;
	u64 rma_end;
	u64 heap_start;
};
struct range_table ranges;
"""

SHAPES_C = """\
#include "types.h"
typedef struct { u8 tag; u64 value; u16 small; } padded_t;
struct shapes {
	const padded_t p;
	u32 grid[2][3];
	s16 negative;
	volatile u64 *ptr;
};
const struct shapes shapes_obj;
typedef struct shapes shapes_alias;
shapes_alias aliased;
int plain_int;
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("dwarf"))


@pytest.fixture(scope="module")
def layouts(build: Path) -> tuple[StructLayout, StructLayout]:
    return real_layouts(build)


def offsets(layout: StructLayout) -> dict[str, int]:
    return {f.name: f.offset for f in layout.fields}


def sample_model() -> RangeTable:
    t = RangeTable()
    t.init(0x4000000)
    t.add_span(0x100000, 0x180000)
    t.add_span(0x2000000, 0x2010000)
    t.add(0x3000000, 0x1234)
    t.init_malloc()
    t.vmlinux_alloc(0x200000)
    t.heap.malloc(0x1800)
    return t


# --- reading the real headers ---------------------------------------------------


def test_range_table_layout_follows_the_header(layouts: tuple[StructLayout, StructLayout]) -> None:
    r, _ = layouts
    assert r.name == "range_table" and r.byte_order == "big"
    assert [f.name for f in r.fields] == ["rma_end", "heap_start", "heap_end", "count", "refused",
                                          "entry"]
    assert offsets(r) == {"rma_end": 0, "heap_start": 8, "heap_end": 16, "count": 24,
                          "refused": 28, "entry": 32}
    assert r.field("count").type == ScalarLayout(4, "u32")
    entry = r.field("entry").type
    assert isinstance(entry, ArrayLayout) and entry.count == RANGES_MAX
    assert isinstance(entry.element, StructLayout) and entry.element.name == "mem_range"
    assert offsets(entry.element) == {"start": 0, "end": 8}
    assert r.size == 32 + 16 * RANGES_MAX
    assert r.offset_of("entry[3].end") == 32 + 3 * 16 + 8


def test_heap_layout_follows_the_header(layouts: tuple[StructLayout, StructLayout]) -> None:
    _, h = layouts
    assert offsets(h) == {"base": 0, "end": 8, "next": 16, "nrecords": 24, "pad": 28, "rec": 32}
    rec = h.field("rec").type
    assert isinstance(rec, ArrayLayout) and rec.count == ALLOC_MAX_RECORDS
    assert rec.element.size == 24 and h.size == 32 + 24 * ALLOC_MAX_RECORDS
    assert padding(h) == []


def test_layout_size_matches_the_symbol_size(build: Path) -> None:
    obj = compile_guest_object(REAL_OBJECTS_C, build, "objects")
    with obj.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        sizes = {s.name: s["st_size"] for s in symtab.iter_symbols()}
        assert struct_layout(elf, "ranges").size == sizes["ranges"]
        assert struct_layout(elf, "heap").size == sizes["heap"]


def test_dwarf2_member_locations_as_expressions_give_the_same_layout(build: Path,
        layouts: tuple[StructLayout, StructLayout]) -> None:
    obj = compile_guest_object(REAL_OBJECTS_C, build, "dwarf2",
                               extra=("-gdwarf-2", "-gstrict-dwarf"))
    assert (struct_layout(obj, "ranges"), struct_layout(obj, "heap")) == layouts


# --- the layout follows the C, not a table -------------------------------------------


def test_a_reordered_struct_gives_a_different_layout(build: Path,
        layouts: tuple[StructLayout, StructLayout]) -> None:
    r = struct_layout(compile_guest_object(REORDERED_C, build, "reordered"), "ranges")
    assert r != layouts[0]
    assert offsets(r) == {"entry": 0, "refused": 512, "count": 516, "heap_end": 520,
                          "rma_end": 528, "heap_start": 536}
    assert r.offset_of("entry[0].start") == 8


def test_rendering_follows_a_reordered_struct(build: Path) -> None:
    r = struct_layout(compile_guest_object(REORDERED_C, build, "reordered"), "ranges")
    t = sample_model()
    data = render_range_table(t, r)
    assert int.from_bytes(data[528:536], "big") == t.rma_end
    assert int.from_bytes(data[516:520], "big") == t.count
    first_start, first_end = t.entries[0]
    assert data[0:16] == pystruct.pack(">QQ", first_end, first_start)
    assert decode_range_table(data, r) == t.state()


# --- shapes: typedefs, qualifiers, nested arrays, padding ------------------------------


def test_typedefs_qualifiers_nested_arrays_and_padding_are_read(build: Path) -> None:
    obj = compile_guest_object(SHAPES_C, build, "shapes")
    s = struct_layout(obj, "shapes_obj")            # const-qualified variable
    assert struct_layout(obj, "aliased") == s       # through a typedef
    p = s.field("p").type                           # const typedef'd anonymous struct
    assert isinstance(p, StructLayout) and offsets(p) == {"tag": 0, "value": 8, "small": 16}
    assert p.size == 24
    grid = s.field("grid").type
    assert isinstance(grid, ArrayLayout) and grid.count == 2
    assert isinstance(grid.element, ArrayLayout) and grid.element.count == 3
    assert s.offset_of("grid[1][2]") == 24 + (1 * 3 + 2) * 4
    assert s.field("negative").type == ScalarLayout(2, "s16", True)
    assert s.field("ptr").type.size == 8
    assert padding(s) == [(1, 8), (18, 24), (50, 56)]


def test_padding_differences_are_reported(build: Path) -> None:
    s = struct_layout(compile_guest_object(SHAPES_C, build, "shapes"), "shapes_obj")
    value = {"p": {"tag": 1, "value": 2, "small": 3}, "grid": [[1, 2, 3], [4, 5, 6]],
             "negative": -2, "ptr": 0x1000}
    good = encode(s, value)
    assert decode(s, good) == value
    assert good[48:50] == b"\xff\xfe"               # signed, big-endian
    bad = bytearray(good)
    bad[3] = 0xAA                                   # inside p's padding
    assert diff_bytes(s, good, bytes(bad)) == [FieldDiff("<padding>", 1, 7, 0, 0xAA << 32)]


# --- errors -------------------------------------------------------------------------------


def test_missing_dwarf_is_a_clear_error(build: Path) -> None:
    obj = compile_guest_object(REAL_OBJECTS_C, build, "nodebug", extra=("-g0",))
    with pytest.raises(DwarfLayoutError, match=r"nodebug\.o: symbol 'ranges': .*no DWARF"):
        struct_layout(obj, "ranges")


def test_unknown_symbol_is_a_clear_error(build: Path) -> None:
    obj = compile_guest_object(REAL_OBJECTS_C, build, "objects")
    with pytest.raises(DwarfLayoutError, match=r"objects\.o: symbol 'rangez'"):
        struct_layout(obj, "rangez")


def test_a_non_struct_variable_is_refused(build: Path) -> None:
    obj = compile_guest_object(SHAPES_C, build, "shapes")
    with pytest.raises(DwarfLayoutError, match="not a struct"):
        struct_layout(obj, "plain_int")


def test_symbol_size_disagreeing_with_dwarf_is_an_error(build: Path) -> None:
    src = '#include "memranges.h"\nstruct range_table ranges;\n__asm__(".size ranges, 16");\n'
    obj = compile_guest_object(src, build, "badsize", extra=("-fno-toplevel-reorder",))
    with pytest.raises(DwarfLayoutError,
                       match=r"badsize\.o: symbol 'ranges': .*544 bytes.*st_size is 16"):
        struct_layout(obj, "ranges")


def test_a_file_that_is_not_elf_is_a_clear_error(build: Path) -> None:
    junk = build / "junk.o"
    junk.write_bytes(b"not an elf at all")
    with pytest.raises(DwarfLayoutError, match=r"junk\.o: symbol 'ranges': not a readable ELF"):
        struct_layout(junk, "ranges")


# --- cache -----------------------------------------------------------------------------------


def test_layouts_are_cached_per_path_and_reread_when_the_file_changes(build: Path) -> None:
    clear_cache()
    obj = compile_guest_object(REAL_OBJECTS_C, build, "cached")
    first = struct_layout(obj, "ranges")
    assert struct_layout(obj, "ranges") is first
    st = obj.stat()
    reordered = compile_guest_object(REORDERED_C, build, "tmp_reordered")
    os.replace(reordered, obj)
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again = struct_layout(obj, "ranges")
    assert again is not first and again.field("entry").offset == 0


# --- rendering the model through the real layout ------------------------------------------------


def test_rendered_range_table_bytes_are_the_struct(
        layouts: tuple[StructLayout, StructLayout]) -> None:
    r, _ = layouts
    t = sample_model()
    data = render_range_table(t, r)
    ents = b"".join(pystruct.pack(">QQ", s, e) for s, e in t.entries)
    expected = (pystruct.pack(">QQQII", t.rma_end, t.heap_start, t.heap_end, t.count, t.refused)
                + ents + bytes(16 * (RANGES_MAX - t.count)))
    assert data == expected


def test_rendered_heap_bytes_are_the_struct(layouts: tuple[StructLayout, StructLayout]) -> None:
    _, h = layouts
    t = sample_model()
    hp = t.heap
    recs = b"".join(pystruct.pack(">QQQ", r.base, r.size, r.state) for r in hp.records)
    expected = (pystruct.pack(">QQQII", hp.base, hp.end, hp.next, hp.nrecords, 0)
                + recs + bytes(24 * (ALLOC_MAX_RECORDS - hp.nrecords)))
    assert render_heap(hp, h) == expected
    assert decode_heap(expected, h) == hp.state()


def test_decoding_keeps_a_dirty_tail_visible(layouts: tuple[StructLayout, StructLayout]) -> None:
    r, _ = layouts
    t = sample_model()
    data = bytearray(render_range_table(t, r))
    data[r.offset_of(f"entry[{RANGES_MAX - 1}].end") + 7] = 1
    assert decode_range_table(bytes(data), r) != t.state()


def test_byte_diff_names_the_field_its_offset_and_both_values(
        layouts: tuple[StructLayout, StructLayout]) -> None:
    r, _ = layouts
    t = sample_model()
    good = render_range_table(t, r)
    bad = bytearray(good)
    off = r.offset_of("entry[3].end")
    bad[off:off + 8] = (0xDEAD).to_bytes(8, "big")
    bad[r.offset_of("refused") + 3] = 7
    assert diff_bytes(r, good, good) == []
    diffs = diff_bytes(r, good, bytes(bad))
    assert diffs == [FieldDiff("refused", 28, 4, 0, 7),
                     FieldDiff("entry[3].end", off, 8, t.state().entries[3][1], 0xDEAD)]
    want = t.state().entries[3][1]
    assert str(diffs[1]) == f"entry[3].end @+{off:#x}: expected {want:#x}, got 0xdead"


def test_rendering_refuses_a_struct_with_a_field_the_model_lacks(build: Path) -> None:
    src = ('#include "types.h"\nstruct mem_range { u64 start, end; };\n'
           "struct range_table { u64 rma_end, heap_start, heap_end; u32 count, refused;"
           " u64 generation; struct mem_range entry[32]; };\nstruct range_table ranges;\n")
    r = struct_layout(compile_guest_object(src, build, "extra_field"), "ranges")
    with pytest.raises(LayoutError, match="generation"):
        render_range_table(sample_model(), r)


def test_rendering_refuses_values_too_wide_for_the_field(
        layouts: tuple[StructLayout, StructLayout]) -> None:
    r, _ = layouts
    t = sample_model()
    st = t.state()
    wide = type(st)(st.rma_end, st.heap_start, st.heap_end, st.count, 1 << 32, st.entries)
    with pytest.raises(LayoutError, match="refused"):
        render_range_table(wide, r)
    top = type(st)(U64_MAX, 0, 0, 0, 0, ((0, 0),) * RANGES_MAX)
    assert render_range_table(top, r)[:8] == b"\xff" * 8     # the widest value that fits
