"""The guest's bytes for the model's state, laid out as the compiler did.

The mirror compares the model with the guest byte for byte, so the model has
to produce exactly the bytes of the C structs: every field at its offset,
big-endian, unused array entries zero, padding zero.  Offsets and sizes are
never written down here: they come as layout dataclasses, which
emulator/dwarf_layout.py reads from the wrapper ELF's DWARF.  A change to
the C struct therefore moves the rendering with it, and a field the model
knows nothing about is an error rather than a silently zero hole.

Values are plain Python: an int for a scalar, a sequence for an array, a
mapping of field name to value for a struct.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

from .constants import ALLOC_MAX_RECORDS, RANGES_MAX
from .errors import ModelError
from .heap import AllocRecord, HeapModel, HeapState
from .ranges import RangeTable, RangeTableState

#: The target's byte order, in the spelling int.to_bytes takes.
ByteOrder = Literal["big", "little"]


class LayoutError(ModelError, ValueError):
    """The model's values do not fit the layout (or the bytes do not)."""


@dataclass(frozen=True)
class ScalarLayout:
    """An integer (or pointer/enum) of `size` bytes."""

    size: int
    type_name: str = ""
    signed: bool = False


@dataclass(frozen=True)
class ArrayLayout:
    """`count` consecutive elements, with no gaps between them (as in C)."""

    element: TypeLayout
    count: int

    @property
    def size(self) -> int:
        return self.element.size * self.count


@dataclass(frozen=True)
class FieldLayout:
    """One struct member: its name, byte offset in the struct and type."""

    name: str
    offset: int
    type: TypeLayout

    @property
    def size(self) -> int:
        return self.type.size


@dataclass(frozen=True)
class StructLayout:
    """A C struct: its members in declaration order and total size.

    byte_order is the target's ("big" for our ppc64 guest); it is carried on
    every struct so that a layout read from an ELF is self-describing.
    """

    name: str
    size: int
    fields: tuple[FieldLayout, ...]
    byte_order: ByteOrder = "big"

    def field(self, name: str) -> FieldLayout:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"struct {self.name} has no field {name!r}")

    def offset_of(self, path: str) -> int:
        """Byte offset of a path like "entry[3].end" within the struct."""
        for p, off, _ in _all_paths(self, "", 0):
            if p == path:
                return off
        raise KeyError(f"struct {self.name} has no path {path!r}")


TypeLayout = ScalarLayout | ArrayLayout | StructLayout


# --- walking a layout --------------------------------------------------------


def _all_paths(layout: TypeLayout, prefix: str, base: int) -> Iterator[tuple[str, int, TypeLayout]]:
    """Every node (not only leaves), pre-order, as (path, offset, layout)."""
    if prefix:
        yield prefix, base, layout
    if isinstance(layout, StructLayout):
        for f in layout.fields:
            sub = f"{prefix}.{f.name}" if prefix else f.name
            yield from _all_paths(f.type, sub, base + f.offset)
    elif isinstance(layout, ArrayLayout):
        for i in range(layout.count):
            yield from _all_paths(layout.element, f"{prefix}[{i}]", base + i * layout.element.size)


def leaves(layout: TypeLayout, prefix: str = "",
           base: int = 0) -> Iterator[tuple[str, int, ScalarLayout]]:
    """Every scalar in the layout as (path, offset, layout), in declaration
    order: rma_end, ..., entry[3].end, ..."""
    for path, offset, node in _all_paths(layout, prefix, base):
        if isinstance(node, ScalarLayout):
            yield path, offset, node
    if isinstance(layout, ScalarLayout) and not prefix:
        yield "", base, layout


def padding(layout: StructLayout) -> list[tuple[int, int]]:
    """The byte runs [start, end) that belong to no scalar: they must be zero."""
    covered = bytearray(layout.size)
    for _, offset, leaf in leaves(layout):
        covered[offset:offset + leaf.size] = b"\x01" * leaf.size
    runs: list[tuple[int, int]] = []
    i = 0
    while i < layout.size:
        if covered[i]:
            i += 1
            continue
        j = i
        while j < layout.size and not covered[j]:
            j += 1
        runs.append((i, j))
        i = j
    return runs


# --- generic encode / decode -------------------------------------------------


def _put(buf: bytearray, layout: TypeLayout, offset: int, value: Any, path: str,
         order: ByteOrder) -> None:
    if isinstance(layout, ScalarLayout):
        if not isinstance(value, int):
            raise LayoutError(f"{path or 'value'}: expected an int, got {value!r}")
        try:
            raw = value.to_bytes(layout.size, order, signed=layout.signed)
        except OverflowError:
            raise LayoutError(
                f"{path}: {value:#x} does not fit in {layout.size} bytes") from None
        buf[offset:offset + layout.size] = raw
    elif isinstance(layout, ArrayLayout):
        if len(value) != layout.count:
            raise LayoutError(f"{path}: {len(value)} values for {layout.count} elements")
        for i, v in enumerate(value):
            _put(buf, layout.element, offset + i * layout.element.size, v, f"{path}[{i}]", order)
    else:
        names = {f.name for f in layout.fields}
        missing = names - set(value)
        extra = set(value) - names
        if missing or extra:
            raise LayoutError(
                f"struct {layout.name} at {path or 'top'}: the model has no value for "
                f"{sorted(missing)} and the C struct has no field for {sorted(extra)}")
        for f in layout.fields:
            sub = f"{path}.{f.name}" if path else f.name
            _put(buf, f.type, offset + f.offset, value[f.name], sub, order)


def encode(layout: StructLayout, value: Mapping[str, Any]) -> bytes:
    """The struct's bytes: every field from `value`, padding zero."""
    buf = bytearray(layout.size)
    _put(buf, layout, 0, value, "", layout.byte_order)
    return bytes(buf)


def _get(data: bytes, layout: TypeLayout, offset: int, order: ByteOrder) -> Any:
    if isinstance(layout, ScalarLayout):
        return int.from_bytes(data[offset:offset + layout.size], order, signed=layout.signed)
    if isinstance(layout, ArrayLayout):
        return [_get(data, layout.element, offset + i * layout.element.size, order)
                for i in range(layout.count)]
    return {f.name: _get(data, f.type, offset + f.offset, order) for f in layout.fields}


def decode(layout: StructLayout, data: bytes) -> dict[str, Any]:
    """The struct's field values as nested dicts / lists / ints."""
    if len(data) != layout.size:
        raise LayoutError(f"struct {layout.name} is {layout.size} bytes, got {len(data)}")
    return _get(data, layout, 0, layout.byte_order)


# --- the table codec: the two structs the model mirrors ---------------------


class FlatCodec:
    """One struct's bytes <-> a flat tuple of its scalars, through one
    struct.Struct built from the layout (fast enough to run after every
    mirrored operation).

    names lists the model's values in the model's own order, as leaf paths
    ("rma_end", "entry[3].end"); the layout must have exactly those leaves:
    a field the model knows nothing about is an error, as is one the C
    struct lacks.  Offsets, sizes, padding and byte order all come from the
    layout; padding packs as zero bytes.
    """

    _CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}

    def __init__(self, layout: StructLayout, names: list[str]) -> None:
        self.layout = layout
        found = sorted(leaves(layout), key=lambda leaf: leaf[1])
        paths = [p for p, _, _ in found]
        extra = sorted(set(paths) - set(names))
        missing = sorted(set(names) - set(paths))
        if missing or extra or len(paths) != len(names):
            raise LayoutError(
                f"struct {layout.name}: the model has no value for {extra[:4]} "
                f"and the C struct has no field for {missing[:4]}")
        fmt = [">" if layout.byte_order == "big" else "<"]
        pos = 0
        for path, offset, leaf in found:
            if offset < pos:
                raise LayoutError(f"struct {layout.name}: {path} overlaps the field before it")
            if leaf.size not in self._CODES:
                raise LayoutError(f"struct {layout.name}: {path} is {leaf.size} bytes")
            if offset > pos:
                fmt.append(f"{offset - pos}x")
            code = self._CODES[leaf.size]
            fmt.append(code.lower() if leaf.signed else code)
            pos = offset + leaf.size
        if layout.size > pos:
            fmt.append(f"{layout.size - pos}x")
        self.struct = struct.Struct("".join(fmt))
        self._leaves = found
        index = {n: i for i, n in enumerate(names)}
        self.order = [index[p] for p in paths]
        self.identity = self.order == list(range(len(names)))

    def pack(self, values: Sequence[int]) -> bytes:
        ordered = values if self.identity else [values[i] for i in self.order]
        try:
            return self.struct.pack(*ordered)
        except struct.error:
            raise self._too_wide(ordered) from None

    def _too_wide(self, ordered: Sequence[int]) -> LayoutError:
        for (path, _, leaf), value in zip(self._leaves, ordered, strict=False):
            try:
                value.to_bytes(leaf.size, "big", signed=leaf.signed)
            except (OverflowError, AttributeError):
                return LayoutError(f"{path}: {value!r} does not fit in {leaf.size} bytes")
        return LayoutError(f"struct {self.layout.name}: values do not fit")

    def unpack(self, data: bytes) -> tuple[int, ...]:
        if len(data) != self.layout.size:
            raise LayoutError(f"struct {self.layout.name} is {self.layout.size} bytes, "
                              f"got {len(data)}")
        raw = self.struct.unpack(data)
        if self.identity:
            return raw
        out = [0] * len(raw)
        for k, i in enumerate(self.order):
            out[i] = raw[k]
        return tuple(out)


#: The model's values of each struct, in the order the codec takes them.
RANGE_NAMES = ["rma_end", "heap_start", "heap_end", "count", "refused"] + [
    f"entry[{i}].{f}" for i in range(RANGES_MAX) for f in ("start", "end")]
HEAP_NAMES = ["base", "end", "next", "nrecords", "pad"] + [
    f"rec[{i}].{f}" for i in range(ALLOC_MAX_RECORDS) for f in ("base", "size", "state")]


class TableCodec:
    """The guest's `ranges` and `heap` objects <-> the model's states: the
    one codec the mirror, the watch and the model check all use."""

    def __init__(self, ranges_layout: StructLayout | None,
                 heap_layout: StructLayout | None) -> None:
        self.ranges_layout = ranges_layout
        self.heap_layout = heap_layout
        self._ranges = _codec(ranges_layout, "ranges") if ranges_layout is not None else None
        self._heap_codec = _codec(heap_layout, "heap") if heap_layout is not None else None

    def render_ranges(self, s: RangeTableState) -> bytes:
        if len(s.entries) != RANGES_MAX:
            used = s.used()
            if len(used) > RANGES_MAX:
                raise LayoutError(f"model has {len(used)} entries, struct holds {RANGES_MAX}")
            s = RangeTableState(s.rma_end, s.heap_start, s.heap_end, s.count, s.refused,
                                tuple(used) + ((0, 0),) * (RANGES_MAX - len(used)))
        return self._table().pack((s.rma_end, s.heap_start, s.heap_end, s.count, s.refused,
                                 *chain.from_iterable(s.entries)))

    def decode_ranges(self, data: bytes) -> RangeTableState:
        """All entries kept: a stray non-zero tail entry stays visible."""
        v = self._table().unpack(data)
        entries = tuple(zip(v[5::2], v[6::2], strict=True))
        return RangeTableState(v[0], v[1], v[2], v[3], v[4], entries)

    def render_heap(self, s: HeapState) -> bytes:
        recs = list(s.records[:s.nrecords])
        if len(recs) > ALLOC_MAX_RECORDS:
            raise LayoutError(f"model has {len(recs)} records, struct holds {ALLOC_MAX_RECORDS}")
        recs += [AllocRecord(0, 0, 0)] * (ALLOC_MAX_RECORDS - len(recs))
        return self._heap().pack((s.base, s.end, s.next, s.nrecords, 0,
                                  *chain.from_iterable((r.base, r.size, r.state)
                                                       for r in recs)))

    def decode_heap(self, data: bytes) -> HeapState:
        """All record slots kept."""
        v = self._heap().unpack(data)
        recs = tuple(AllocRecord(*v[i:i + 3]) for i in range(5, len(v), 3))
        return HeapState(v[0], v[1], v[2], v[3], v[4], recs)

    def _table(self) -> FlatCodec:
        if self._ranges is None:
            raise LayoutError("this codec was made without the range table's layout")
        return self._ranges

    def _heap(self) -> FlatCodec:
        if self._heap_codec is None:
            raise LayoutError("this codec was made without the heap's layout")
        return self._heap_codec


@functools.lru_cache(maxsize=64)
def _codec(layout: StructLayout, which: str) -> FlatCodec:
    return FlatCodec(layout, RANGE_NAMES if which == "ranges" else HEAP_NAMES)


def render_range_table(model: RangeTable | RangeTableState, layout: StructLayout) -> bytes:
    """Exactly the bytes of the guest's `ranges` for this model state."""
    state = model.state() if isinstance(model, RangeTable) else model
    return TableCodec(layout, None).render_ranges(state)


def render_heap(model: HeapModel | HeapState, layout: StructLayout) -> bytes:
    """Exactly the bytes of the guest's `heap` for this model state."""
    state = model.state() if isinstance(model, HeapModel) else model
    return TableCodec(None, layout).render_heap(state)


def decode_range_table(data: bytes, layout: StructLayout) -> RangeTableState:
    """Guest bytes -> the dataclass the model's state() gives."""
    return TableCodec(layout, None).decode_ranges(data)


def decode_heap(data: bytes, layout: StructLayout) -> HeapState:
    """Guest bytes -> HeapState."""
    return TableCodec(None, layout).decode_heap(data)


# --- differences ---------------------------------------------------------------


@dataclass(frozen=True)
class FieldDiff:
    """One field (or padding run) whose bytes differ.

    path is "entry[3].end" for a field, "<padding>" for bytes that belong to
    no field; expected/actual are the values decoded from each side.
    """

    path: str
    offset: int
    size: int
    expected: int
    actual: int

    def __str__(self) -> str:
        return (f"{self.path} @+{self.offset:#x}: expected {self.expected:#x}, "
                f"got {self.actual:#x}")


def diff_bytes(layout: StructLayout, expected: bytes, actual: bytes) -> list[FieldDiff]:
    """Every field and padding run whose bytes differ, in offset order."""
    for what, data in (("expected", expected), ("actual", actual)):
        if len(data) != layout.size:
            raise LayoutError(
                f"{what}: struct {layout.name} is {layout.size} bytes, got {len(data)}")
    if expected == actual:
        return []
    order = layout.byte_order
    spans: list[tuple[str, int, int, bool]] = [
        (path, off, leaf.size, leaf.signed) for path, off, leaf in leaves(layout)]
    spans += [("<padding>", s, e - s, False) for s, e in padding(layout)]
    diffs = []
    for path, off, size, signed in sorted(spans, key=lambda s: s[1]):
        a = expected[off:off + size]
        b = actual[off:off + size]
        if a != b:
            diffs.append(FieldDiff(path, off, size,
                                   int.from_bytes(a, order, signed=signed),
                                   int.from_bytes(b, order, signed=signed)))
    return diffs
