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

from dataclasses import dataclass
from typing import Any, Iterator, Literal, Mapping, Union

from .heap import AllocRecord, HeapModel, HeapState
from .ranges import RangeTable, RangeTableState


#: The target's byte order, in the spelling int.to_bytes takes.
ByteOrder = Literal["big", "little"]


class LayoutError(ValueError):
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

    element: "TypeLayout"
    count: int

    @property
    def size(self) -> int:
        return self.element.size * self.count


@dataclass(frozen=True)
class FieldLayout:
    """One struct member: its name, byte offset in the struct and type."""

    name: str
    offset: int
    type: "TypeLayout"

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


TypeLayout = Union[ScalarLayout, ArrayLayout, StructLayout]


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


def leaves(layout: TypeLayout, prefix: str = "", base: int = 0) -> Iterator[tuple[str, int, ScalarLayout]]:
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


def _put(buf: bytearray, layout: TypeLayout, offset: int, value: Any, path: str, order: ByteOrder) -> None:
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


# --- the two structs the model mirrors ---------------------------------------


def range_table_values(state: RangeTableState, layout: StructLayout) -> dict[str, Any]:
    """The model's state as field values, entry[] padded with zeros to the
    C array's length (taken from the layout, not assumed)."""
    n = layout.field("entry").type
    assert isinstance(n, ArrayLayout)
    used = state.used()
    if len(used) > n.count:
        raise LayoutError(f"model has {len(used)} entries, struct holds {n.count}")
    entries = [{"start": s, "end": e} for s, e in used]
    entries += [{"start": 0, "end": 0}] * (n.count - len(used))
    return {
        "rma_end": state.rma_end,
        "heap_start": state.heap_start,
        "heap_end": state.heap_end,
        "count": state.count,
        "refused": state.refused,
        "entry": entries,
    }


def heap_values(state: HeapState, layout: StructLayout) -> dict[str, Any]:
    """The heap model's state as field values, rec[] zero-padded, pad 0."""
    n = layout.field("rec").type
    assert isinstance(n, ArrayLayout)
    used = state.records[: state.nrecords]
    if len(used) > n.count:
        raise LayoutError(f"model has {len(used)} records, struct holds {n.count}")
    recs = [{"base": r.base, "size": r.size, "state": r.state} for r in used]
    recs += [{"base": 0, "size": 0, "state": 0}] * (n.count - len(used))
    return {
        "base": state.base,
        "end": state.end,
        "next": state.next,
        "nrecords": state.nrecords,
        "pad": 0,
        "rec": recs,
    }


def render_range_table(model: RangeTable | RangeTableState, layout: StructLayout) -> bytes:
    """Exactly the bytes of the guest's `ranges` for this model state."""
    state = model.state() if isinstance(model, RangeTable) else model
    return encode(layout, range_table_values(state, layout))


def render_heap(model: HeapModel | HeapState, layout: StructLayout) -> bytes:
    """Exactly the bytes of the guest's `heap` for this model state."""
    state = model.state() if isinstance(model, HeapModel) else model
    return encode(layout, heap_values(state, layout))


def decode_range_table(data: bytes, layout: StructLayout) -> RangeTableState:
    """Guest bytes -> the same dataclass the model's state() gives, all
    entries kept (a stray non-zero tail entry stays visible)."""
    v = decode(layout, data)
    return RangeTableState(
        rma_end=v["rma_end"], heap_start=v["heap_start"], heap_end=v["heap_end"],
        count=v["count"], refused=v["refused"],
        entries=tuple((e["start"], e["end"]) for e in v["entry"]),
    )


def decode_heap(data: bytes, layout: StructLayout) -> HeapState:
    """Guest bytes -> HeapState, all record slots kept."""
    v = decode(layout, data)
    return HeapState(
        base=v["base"], end=v["end"], next=v["next"], nrecords=v["nrecords"], pad=v["pad"],
        records=tuple(AllocRecord(r["base"], r["size"], r["state"]) for r in v["rec"]),
    )


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
