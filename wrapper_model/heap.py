"""The reference model of the wrapper's heap (simple_alloc.c).

Written from docs/memranges.md ("The heap"), not from the C.  The heap is a
bump pointer over [base, end) plus a fixed table of at most
ALLOC_MAX_RECORDS allocation records; freed records are reused first-fit by
index and never split or merged.  Every part of the state the guest keeps in
its `struct alloc_heap` is readable here so that it can be rendered to the
exact bytes (wrapper_model.layout.render_heap) and compared.

The model holds no guest memory: realloc's copy of the old block is reported
as a BlockCopy (last_copy) for a caller that does track memory to check.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import (
    ALLOC_FREE,
    ALLOC_GRANULE,
    ALLOC_MAX_RECORDS,
    ALLOC_USED,
    U64_MAX,
    align_up,
    check_u64,
)
from .errors import ModelArgumentError


@dataclass(frozen=True)
class AllocRecord:
    """One handed-out block: [base, base + size), ALLOC_FREE or ALLOC_USED."""

    base: int
    size: int
    state: int

    @property
    def used(self) -> bool:
        return self.state == ALLOC_USED

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class BlockCopy:
    """What realloc moved: `size` bytes from src to dst (src is then freed)."""

    src: int
    dst: int
    size: int


@dataclass(frozen=True)
class HeapState:
    """Every value the guest's struct alloc_heap holds, field by field.

    records always has ALLOC_MAX_RECORDS items (unused ones all zero), as
    the C array does, so a decoded guest state with a stray record in the
    tail compares unequal to the model's.
    """

    base: int
    end: int
    next: int
    nrecords: int
    pad: int
    records: tuple[AllocRecord, ...]


#: An unused record slot: all zero bytes.
ZERO_RECORD = AllocRecord(0, 0, 0)


class HeapModel:
    """The allocator's state and its four operations.

    All fields start at zero, as the guest's bss does before
    simple_alloc_init.  Records are immutable values; an operation that
    changes one replaces it, so a tuple handed out by `records` is a true
    snapshot.
    """

    def __init__(self) -> None:
        self._base = 0
        self._end = 0
        self._next = 0
        self._records: list[AllocRecord] = []
        self.last_copy: BlockCopy | None = None

    # --- read-only state ------------------------------------------------
    @property
    def base(self) -> int:
        return self._base

    @property
    def end(self) -> int:
        return self._end

    @property
    def next(self) -> int:
        return self._next

    @property
    def nrecords(self) -> int:
        return len(self._records)

    @property
    def records(self) -> tuple[AllocRecord, ...]:
        """Records [0, nrecords); the rest of the C array is zero."""
        return tuple(self._records)

    def state(self) -> HeapState:
        """A snapshot in the shape of the C struct (pad 0, tail records zero)."""
        tail = (ZERO_RECORD,) * (ALLOC_MAX_RECORDS - len(self._records))
        return HeapState(self._base, self._end, self._next,
                         len(self._records), 0, tuple(self._records) + tail)

    def used_blocks(self) -> list[tuple[int, int]]:
        """[base, end) of every block in use, for invariant checks."""
        return [(r.base, r.end) for r in self._records if r.used]

    # --- operations -----------------------------------------------------
    def init(self, base: int, size: int) -> None:
        """simple_alloc_init: every field zero, then the heap is [base, base+size).

        A heap reaching past 2^64 cannot be described by the C struct; the
        spec's callers never make one, so it is refused as a caller bug.
        """
        check_u64("base", base)
        check_u64("size", size)
        if base + size > U64_MAX:
            raise ModelArgumentError(f"heap [{base:#x}, +{size:#x}) ends past 2^64 - 1")
        self._base = base
        self._end = base + size
        self._next = base
        self._records = []
        self.last_copy = None

    @staticmethod
    def rounded(n: int) -> int:
        """A request's block size: n rounded up to ALLOC_GRANULE (may be 2^64)."""
        return align_up(n, ALLOC_GRANULE)

    def malloc(self, n: int) -> int:
        """First fit among freed records by index, else bump; 0 means NULL."""
        check_u64("n", n)
        self.last_copy = None
        return self._malloc(n)

    def _malloc(self, n: int) -> int:
        if n == 0:
            return 0
        want = self.rounded(n)
        for i, rec in enumerate(self._records):
            if rec.state == ALLOC_FREE and rec.size >= want:
                # Reuse keeps the record's own size: blocks are never split.
                self._records[i] = AllocRecord(rec.base, rec.size, ALLOC_USED)
                return rec.base
        if len(self._records) < ALLOC_MAX_RECORDS and want <= self._end - self._next:
            addr = self._next
            self._records.append(AllocRecord(addr, want, ALLOC_USED))
            self._next += want
            return addr
        return 0

    def _used_index(self, p: int) -> int | None:
        """The lowest-index used record whose base is p, if any."""
        for i, rec in enumerate(self._records):
            if rec.state == ALLOC_USED and rec.base == p:
                return i
        return None

    def free(self, p: int) -> None:
        """Mark p's record free; NULL or an unknown pointer changes nothing."""
        check_u64("p", p)
        self.last_copy = None
        self._free(p)

    def _free(self, p: int) -> None:
        if p == 0:
            return
        i = self._used_index(p)
        if i is not None:
            rec = self._records[i]
            self._records[i] = AllocRecord(rec.base, rec.size, ALLOC_FREE)

    def realloc(self, p: int, n: int) -> int:
        """Grow (or keep) p's block; see the spec for the order of the cases."""
        check_u64("p", p)
        check_u64("n", n)
        self.last_copy = None
        if p == 0:
            return self._malloc(n)
        if n == 0:
            self._free(p)
            return 0
        i = self._used_index(p)
        if i is None:
            return 0
        old = self._records[i]
        if self.rounded(n) <= old.size:
            return p
        q = self._malloc(n)
        if q == 0:
            return 0
        self.last_copy = BlockCopy(src=p, dst=q, size=old.size)
        self._free(p)
        return q
