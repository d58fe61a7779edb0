"""Hypothesis strategies for operation sequences on the range table and heap.

Shared by the model's own property tests and (later) by the differential
guest-vs-model runs, so an example is a plain list of wrapper_model Op
values that either side can execute.

The interesting cases in docs/memranges.md are all about boundaries, so
arguments are drawn mostly from a pool of values that matter *at that
point of the sequence*: 0, rma_end and its neighbours, 2^64 - 1, sizes
that end exactly at 2^64 or one past it, and the starts and ends of ranges
already added (to make touching and overlapping ranges common rather than
a one-in-2^64 accident).  A throwaway model runs alongside generation only
to pick such values (current entries, live heap pointers); it never decides
what any operation should return.
"""

from __future__ import annotations

from hypothesis import strategies as st

from wrapper_model import Op, RangeTable
from wrapper_model.constants import (
    ALLOC_GRANULE,
    RANGES_HEAP_MIN,
    RANGES_MAX,
    U64_LIMIT,
    U64_MAX,
)

#: Limits worth trying: nothing recorded, tiny, small realistic, page-odd,
#: large, and the very top of the address space.
RMA_ENDS = (0, 1, 0x1000, 0x10000, 0x123456, 0x1000000, 0x8000000,
            0x100000000, U64_MAX - 0xFFF, U64_MAX)

u64s = st.integers(min_value=0, max_value=U64_MAX)

# The draws below are plain functions of `draw`, not composite strategies,
# and pick from state-dependent pools by index: a strategy built afresh
# for every draw (one_of, sampled_from of a new list) is validated and
# labelled again each time, which made generation cost several times the
# guest calls it feeds (docs/performance.md).  Each choice is the one
# one_of/sampled_from would make: a branch index, then a value; an index
# into the pool, shrinking towards its first element.


_below: dict[int, st.SearchStrategy[int]] = {}


def _index(n: int) -> st.SearchStrategy[int]:
    """integers(0, n - 1), built once per n (hypothesis' own strategy cache
    is a lookup too, and a slower one)."""
    hit = _below.get(n)
    if hit is None:
        hit = _below[n] = st.integers(0, n - 1)
    return hit


def _pick(draw: st.DrawFn, pool: list[int] | tuple[int, ...]) -> int:
    """One of pool, as sampled_from(pool) draws it."""
    return pool[draw(_index(len(pool)))]


def _branch(draw: st.DrawFn, n: int) -> int:
    """Which of n alternatives, as one_of(...) chooses."""
    return draw(_index(n))


def _rma_end(draw: st.DrawFn) -> int:
    return _pick(draw, RMA_ENDS) if _branch(draw, 2) == 0 else draw(u64s)


@st.composite
def rma_ends(draw: st.DrawFn) -> int:
    """An rma_end: an edge value most of the time, sometimes any u64."""
    return _rma_end(draw)


def _clamp(v: int) -> int:
    return min(max(v, 0), U64_MAX)


def _address_pool(model: RangeTable) -> list[int]:
    """Addresses that matter given the model's current state."""
    rma = model.rma_end
    pool = {0, 1, rma, rma - 1, rma + 1, U64_MAX, U64_MAX - 0xFFF, 0x1000,
            model.heap_start, model.heap_end}
    for s, e in model.entries:
        pool.update((s, e, s - 1, e + 1, e - 1))
    for s, e in model.gaps():
        pool.update((s, e, (s + e) // 2))
    return sorted(_clamp(v) for v in pool)


def _address(draw: st.DrawFn, model: RangeTable) -> int:
    which = _branch(draw, 3)
    if which == 0:
        return _pick(draw, _address_pool(model))
    if which == 1:
        return draw(u64s)
    return draw(st.integers(0, max(model.rma_end, 1) - 1 if model.rma_end else 0))


def _size_for(draw: st.DrawFn, model: RangeTable, start: int) -> int:
    """A size for a range at `start`: empty, tiny, up to a pool address
    (touching it), ending exactly at 2^64, overflowing by one, or any."""
    which = _branch(draw, 3)
    if which == 1:
        return draw(st.integers(0, 0x100000))
    if which == 2:
        return draw(u64s)
    pool = _address_pool(model)
    choices = [0, 1, 0x1000, RANGES_HEAP_MIN, U64_LIMIT - start]
    if start > 0:
        choices.append(U64_LIMIT - start + 1)       # one past 2^64
    choices += [p - start for p in pool if p > start]
    choices = [c for c in choices if 0 <= c <= U64_MAX]
    return _pick(draw, choices)


def _heap_pointer(draw: st.DrawFn, model: RangeTable) -> int:
    """A pointer for free/realloc: usually a block the heap handed out."""
    if _branch(draw, 2) == 1:
        return draw(u64s)
    bases = [r.base for r in model.heap.records]
    extra = [0, model.heap.base, model.heap.next, 0x1000]
    return _pick(draw, bases + extra)


#: Relative weights: mostly adds (they build the state), then queries.
_WEIGHTS = {
    "add": 8, "add_span": 3, "is_free": 3, "largest_gap": 1,
    "gap_after_last": 1, "init_malloc": 2, "vmlinux_alloc": 2,
    "malloc": 2, "free": 1, "realloc": 1, "init": 1,
}
_NAMES = [name for name, w in _WEIGHTS.items() for _ in range(w)]
_NAMES_NO_HEAP = [n for n in _NAMES if n not in ("malloc", "free", "realloc")]
_VMLINUX_SIZES = (0, 1, ALLOC_GRANULE, 0x200000, U64_MAX)
_MALLOC_SIZES = (0, 1, ALLOC_GRANULE - 1, ALLOC_GRANULE, ALLOC_GRANULE + 1,
                 U64_MAX, U64_MAX - ALLOC_GRANULE + 1)
_REALLOC_SIZES = (0, 1, ALLOC_GRANULE, U64_MAX)


def _one_op(draw: st.DrawFn, model: RangeTable, heap_ops: bool = True) -> Op:
    names = _NAMES if heap_ops else _NAMES_NO_HEAP
    name = names[draw(_index(len(names)))]
    if name == "init":
        return Op("init", (_rma_end(draw),))
    if name in ("add", "is_free"):
        start = _address(draw, model)
        return Op(name, (start, _size_for(draw, model, start)))
    if name == "add_span":
        start = _address(draw, model)
        end = _address(draw, model) if _branch(draw, 2) == 0 else start
        return Op(name, (start, end))
    if name in ("largest_gap", "gap_after_last", "init_malloc"):
        return Op(name)
    if name == "vmlinux_alloc":
        return Op(name, (_pick(draw, _VMLINUX_SIZES) if _branch(draw, 2) == 0
                         else _size_for(draw, model, 0),))
    if name == "malloc":
        return Op(name, (_pick(draw, _MALLOC_SIZES) if _branch(draw, 2) == 0
                         else draw(st.integers(0, 0x40000)),))
    if name == "free":
        return Op(name, (_heap_pointer(draw, model),))
    assert name == "realloc"
    return Op(name, (_heap_pointer(draw, model),
                     _pick(draw, _REALLOC_SIZES) if _branch(draw, 2) == 0
                     else draw(st.integers(0, 0x40000))))


@st.composite
def one_op(draw: st.DrawFn, model: RangeTable, heap_ops: bool = True) -> Op:
    """One operation with arguments chosen for the model's current state."""
    return _one_op(draw, model, heap_ops)


@st.composite
def op_sequences(draw: st.DrawFn, min_ops: int = 1, max_ops: int = 60,
                 heap_ops: bool = True) -> list[Op]:
    """init(rma_end) followed by a mixed sequence of operations."""
    guide = RangeTable()
    ops = [Op("init", (_rma_end(draw),))]
    guide.apply(ops[0])
    n = draw(st.integers(min_ops, max_ops))
    for _ in range(n):
        op = _one_op(draw, guide, heap_ops)
        guide.apply(op)
        ops.append(op)
    return ops


@st.composite
def many_disjoint_ranges(draw: st.DrawFn, min_count: int = RANGES_MAX + 1,
                         max_count: int = RANGES_MAX + 8, max_tail: int = 10) -> list[Op]:
    """init plus more than RANGES_MAX pairwise non-touching adds, shuffled,
    then up to max_tail mixed operations: the table has to fill and refuse."""
    count = draw(st.integers(min_count, max_count))
    stride = draw(st.sampled_from([0x2000, 0x10000, 0x100000]))
    rma_end = draw(st.sampled_from([stride * (count + 2), stride * count, U64_MAX]))
    ops = [Op("init", (rma_end,))]
    adds = []
    for i in range(count):
        start = stride * (i + 1)
        size = draw(st.integers(1, stride // 2))    # leaves a gap: never touching
        if draw(st.booleans()):
            adds.append(Op("add", (start, size)))
        else:
            adds.append(Op("add_span", (start, start + size)))
    ops += draw(st.permutations(adds))
    guide = RangeTable()
    for op in ops:
        guide.apply(op)
    for _ in range(draw(st.integers(0, max_tail))):
        op = _one_op(draw, guide)
        guide.apply(op)
        ops.append(op)
    return ops


#: Every sequence kind, for tests that want the lot.
any_sequence = st.one_of(op_sequences(), many_disjoint_ranges())
