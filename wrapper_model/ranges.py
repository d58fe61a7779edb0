"""The reference model of the occupied-ranges table (memranges.c).

Written from docs/memranges.md, not from the C: the point is an independent
second reading of the spec, so that the differential tests can catch either
side misreading it.  The C shuffles a fixed array; this model thinks the way
the spec reads:

* the table is a sorted set of disjoint, non-touching half-open intervals;
* adding a range replaces every interval it overlaps or touches by their
  union;
* the free gaps are the complement of that set inside [0, rma_end).

Arithmetic is on Python ints, so "start + size > 2^64" is tested literally,
never by wrap-around.  Every operation returns an OpResult carrying the C
return value and, for those with out-parameters, what was written through
them (None when the spec says the out-parameter is left untouched).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .constants import (
    RANGES_HEAP_ALIGN,
    RANGES_HEAP_MIN,
    RANGES_MAX,
    U64_LIMIT,
    RangesErr,
    align_down,
    align_up,
    check_u64,
)
from .errors import ModelArgumentError
from .heap import HeapModel

#: A half-open interval [start, end) of guest physical addresses.
Interval = tuple[int, int]

#: What the C writes for "no gap": struct mem_range {0, 0}.
NO_GAP: Interval = (0, 0)


@dataclass(frozen=True)
class OpResult:
    """One call's observable outcome.

    ret is the C function's return value (0 for a void function, an address
    for malloc/realloc).  out is the value written through the out-parameter:
    (start, end) for the gap functions, (addr,) for vmlinux_alloc, and None
    when there is no out-parameter or the spec leaves it untouched.
    """

    ret: int
    out: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Op:
    """One call to make, on the model or on the guest: a name from OPS and
    its integer arguments.  Small and hashable so hypothesis can shrink
    lists of them and a failing example prints readably."""

    name: str
    args: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(hex(a) for a in self.args)})"


@dataclass(frozen=True)
class RangeTableState:
    """Every value the guest's struct range_table holds, field by field.

    entries always has RANGES_MAX items (unused ones (0, 0)), exactly as the
    C array does, so a state decoded from guest bytes with a non-zero tail
    compares unequal to the model's.
    """

    rma_end: int
    heap_start: int
    heap_end: int
    count: int
    refused: int
    entries: tuple[Interval, ...]

    def used(self) -> tuple[Interval, ...]:
        return self.entries[: self.count]


def _overlaps_or_touches(a: Interval, b: Interval) -> bool:
    """Closed-interval intersection: sharing an edge counts, as for merging."""
    return a[0] <= b[1] and b[0] <= a[1]


def _overlaps(a: Interval, b: Interval) -> bool:
    """Half-open intersection: sharing only an edge does not count."""
    return a[0] < b[1] and b[0] < a[1]


def complement(intervals: Iterable[Interval], lo: int, hi: int) -> Iterator[Interval]:
    """The maximal sub-intervals of [lo, hi) covered by none of `intervals`.

    `intervals` must be sorted by start (they need not be disjoint).
    """
    cursor = lo
    for start, end in intervals:
        if start > cursor:
            yield (cursor, min(start, hi))
        cursor = max(cursor, end)
        if cursor >= hi:
            return
    if cursor < hi:
        yield (cursor, hi)


def widest(intervals: Iterable[Interval]) -> Interval | None:
    """The interval with the largest end - start, the lowest start among equals."""
    best: Interval | None = None
    for iv in intervals:
        if best is None or (iv[1] - iv[0], -iv[0]) > (best[1] - best[0], -best[0]):
            best = iv
    return best


class RangeTable:
    """The range table and the ranges_* operations on it.

    The heap model is shared (init_malloc initialises it, vmlinux_alloc
    mallocs from it) and is reachable as `.heap`; pass one in to share it
    with other code, as the guest's single `heap` object is shared.
    """

    def __init__(self, heap: HeapModel | None = None) -> None:
        self.heap: HeapModel = heap if heap is not None else HeapModel()
        self._rma_end = 0
        self._heap_start = 0
        self._heap_end = 0
        self._refused = 0
        self._entries: tuple[Interval, ...] = ()

    # --- read-only state ------------------------------------------------
    @property
    def rma_end(self) -> int:
        return self._rma_end

    @property
    def heap_start(self) -> int:
        return self._heap_start

    @property
    def heap_end(self) -> int:
        return self._heap_end

    @property
    def refused(self) -> int:
        return self._refused

    @property
    def entries(self) -> tuple[Interval, ...]:
        """The occupied intervals [0, count), sorted."""
        return self._entries

    @property
    def count(self) -> int:
        return len(self._entries)

    def state(self) -> RangeTableState:
        """A snapshot in the shape of the C struct (tail entries (0, 0))."""
        padded = self._entries + (NO_GAP,) * (RANGES_MAX - len(self._entries))
        return RangeTableState(
            rma_end=self._rma_end,
            heap_start=self._heap_start,
            heap_end=self._heap_end,
            count=len(self._entries),
            refused=self._refused,
            entries=padded,
        )

    def gaps(self) -> tuple[Interval, ...]:
        """The free gaps: the complement of the entries inside [0, rma_end)."""
        return tuple(complement(self._entries, 0, self._rma_end))

    # --- operations -----------------------------------------------------
    def init(self, rma_end: int) -> OpResult:
        """ranges_init: forget everything, then remember the limit.

        The heap model is not touched: ranges_init clears only the table.
        """
        check_u64("rma_end", rma_end)
        self._rma_end = rma_end
        self._heap_start = 0
        self._heap_end = 0
        self._refused = 0
        self._entries = ()
        return OpResult(RangesErr.OK)

    def add(self, start: int, size: int) -> OpResult:
        """ranges_add: union [start, start + size), clipped at rma_end, into the set."""
        check_u64("start", start)
        check_u64("size", size)
        if size == 0:
            return OpResult(RangesErr.OK)
        if start + size > U64_LIMIT:
            return OpResult(RangesErr.OVERFLOW)
        if start >= self._rma_end:
            return OpResult(RangesErr.OK)
        new: Interval = (start, min(start + size, self._rma_end))
        absorbed = [e for e in self._entries if _overlaps_or_touches(e, new)]
        if not absorbed and len(self._entries) == RANGES_MAX:
            self._refused += 1
            return OpResult(RangesErr.FULL)
        union: Interval = (
            min([new[0]] + [e[0] for e in absorbed]),
            max([new[1]] + [e[1] for e in absorbed]),
        )
        kept = [e for e in self._entries if e not in absorbed]
        self._entries = tuple(sorted(kept + [union]))
        return OpResult(RangesErr.OK)

    def add_span(self, start: int, end: int) -> OpResult:
        """ranges_add_span: add [start, end); an inverted span is an error."""
        check_u64("start", start)
        check_u64("end", end)
        if end < start:
            return OpResult(RangesErr.INVERTED)
        return self.add(start, end - start)

    def is_free(self, start: int, size: int) -> OpResult:
        """ranges_is_free: 1 when [start, start + size) lies below rma_end, unoccupied."""
        check_u64("start", start)
        check_u64("size", size)
        if size == 0:
            return OpResult(int(start <= self._rma_end))
        want: Interval = (start, start + size)
        if want[1] > self._rma_end:
            return OpResult(0)
        return OpResult(int(not any(_overlaps(e, want) for e in self._entries)))

    def largest_gap(self) -> OpResult:
        """ranges_largest_gap: the widest free gap, lowest start among equals."""
        best = widest(self.gaps())
        if best is None:
            return OpResult(RangesErr.NOSPACE, NO_GAP)
        return OpResult(RangesErr.OK, best)

    def gap_after_last(self) -> OpResult:
        """ranges_gap_after_last: from the last entry's end (or 0) up to rma_end."""
        start = self._entries[-1][1] if self._entries else 0
        if start >= self._rma_end:
            return OpResult(RangesErr.NOSPACE, NO_GAP)
        return OpResult(RangesErr.OK, (start, self._rma_end))

    def init_malloc(self) -> OpResult:
        """ranges_init_malloc: put the heap in the widest gap not at 0.

        The gap at address 0 is only used when it is the only gap: the
        seed's policy leaves it for the kernel.  Only the chosen gap is
        tried; if it is too small after page alignment, the call fails.
        """
        gaps = self.gaps()
        candidates = [g for g in gaps if g[0] != 0] or list(gaps)
        chosen = widest(candidates)
        if chosen is None:
            return OpResult(RangesErr.NOSPACE)
        hs = align_up(chosen[0], RANGES_HEAP_ALIGN)
        he = align_down(chosen[1], RANGES_HEAP_ALIGN)
        if he < hs + RANGES_HEAP_MIN:
            return OpResult(RangesErr.NOSPACE)
        # A heap the table cannot hold is no heap: when the add is refused
        # (full table, heap touching no entry) only `refused` has changed,
        # and any earlier heap, allocator state included, stays.
        recorded = self.add(hs, he - hs)
        if recorded.ret == RangesErr.FULL:
            return OpResult(RangesErr.FULL)
        self._heap_start = hs
        self._heap_end = he
        self.heap.init(hs, he - hs)
        return OpResult(RangesErr.OK)

    def vmlinux_alloc(self, size: int) -> OpResult:
        """ranges_vmlinux_alloc: at 0 if that is free, else from the heap."""
        check_u64("size", size)
        if self.is_free(0, size).ret:
            # The kernel at 0 must be recorded; if the full table refuses
            # it, the call fails there and then (the heap is not tried).
            if self.add(0, size).ret == RangesErr.FULL:
                return OpResult(RangesErr.FULL)
            return OpResult(RangesErr.OK, (0,))
        if self._heap_end == 0:
            return OpResult(RangesErr.NOHEAP)
        p = self.heap.malloc(size)
        if p == 0:
            return OpResult(RangesErr.NOSPACE)
        return OpResult(RangesErr.OK, (p,))

    # --- the heap's operations, so one Op stream can drive both -----------
    def heap_init(self, base: int, size: int) -> OpResult:
        self.heap.init(base, size)
        return OpResult(0)

    def malloc(self, n: int) -> OpResult:
        return OpResult(self.heap.malloc(n))

    def free(self, p: int) -> OpResult:
        self.heap.free(p)
        return OpResult(0)

    def realloc(self, p: int, n: int) -> OpResult:
        return OpResult(self.heap.realloc(p, n))

    def apply(self, op: Op) -> OpResult:
        """Run one Op by name; the differential harness calls the guest's
        function C_FUNCTIONS[op.name] with the same arguments."""
        if op.name not in OPS:
            raise ModelArgumentError(f"unknown operation {op.name!r}")
        arity = OPS[op.name]
        if len(op.args) != arity:
            raise ModelArgumentError(f"{op.name} takes {arity} arguments, got {len(op.args)}")
        method: Callable[..., OpResult] = getattr(self, op.name)
        return method(*op.args)


@dataclass(frozen=True)
class OpSignature:
    """An operation as the C declares it (docs/memranges.md, "API").

    returns is "int" (a C int: 0 or a negative RangesErr), "ptr" (an
    address, 0 for NULL) or "void".  out is the kind of out-parameter
    after the integer arguments: "gap" (struct mem_range *) or "addr"
    (u64 *), None when there is none.
    """

    name: str
    c_function: str
    nargs: int
    returns: str
    out: str | None = None


#: Every operation of the model, with the C function it stands for.
OPERATIONS: dict[str, OpSignature] = {s.name: s for s in (
    OpSignature("init", "ranges_init", 1, "void"),
    OpSignature("add", "ranges_add", 2, "int"),
    OpSignature("add_span", "ranges_add_span", 2, "int"),
    OpSignature("is_free", "ranges_is_free", 2, "int"),
    OpSignature("largest_gap", "ranges_largest_gap", 0, "int", "gap"),
    OpSignature("gap_after_last", "ranges_gap_after_last", 0, "int", "gap"),
    OpSignature("init_malloc", "ranges_init_malloc", 0, "int"),
    OpSignature("vmlinux_alloc", "ranges_vmlinux_alloc", 1, "int", "addr"),
    OpSignature("heap_init", "simple_alloc_init", 2, "void"),
    OpSignature("malloc", "malloc", 1, "ptr"),
    OpSignature("free", "free", 1, "void"),
    OpSignature("realloc", "realloc", 2, "ptr"),
)}

#: Operation name -> number of integer arguments.
OPS: dict[str, int] = {n: s.nargs for n, s in OPERATIONS.items()}

#: Operation name -> the guest's C function.
C_FUNCTIONS: dict[str, str] = {n: s.c_function for n, s in OPERATIONS.items()}
