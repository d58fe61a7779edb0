"""Every number the model shares with the wrapper's C, in one place.

The values come from docs/memranges.md and the headers
firmware/include/memranges.h and simple_alloc.h.  They are written out here
rather than parsed from the headers so that a changed header shows up as a
disagreement in the differential tests instead of silently moving the model
along with it.
"""

from __future__ import annotations

from enum import IntEnum

from .errors import ModelArgumentError

#: The mathematical 2^64: the spec's arithmetic is on unbounded integers, and
#: "start + size > 2^64" is compared literally against this.
U64_LIMIT: int = 1 << 64
U64_MAX: int = U64_LIMIT - 1

# --- the range table (memranges.h) ---------------------------------------
RANGES_MAX: int = 32
RANGES_HEAP_ALIGN: int = 0x1000
RANGES_HEAP_MIN: int = 0x10000

# --- the heap (simple_alloc.h) -------------------------------------------
ALLOC_MAX_RECORDS: int = 32
ALLOC_GRANULE: int = 0x1000
ALLOC_FREE: int = 0
ALLOC_USED: int = 1


class RangesErr(IntEnum):
    """The return codes of the ranges_* functions, as the C returns them.

    The header defines positive error numbers and the functions return their
    negation; the members here are the values actually returned, so a model
    result compares directly with a guest's r3.
    """

    OK = 0
    OVERFLOW = -1
    INVERTED = -2
    FULL = -3
    NOSPACE = -4
    NOHEAP = -5


def align_up(value: int, align: int) -> int:
    """Round up to a multiple of align, on unbounded integers (may reach 2^64)."""
    return -(-value // align) * align


def align_down(value: int, align: int) -> int:
    """Round down to a multiple of align."""
    return value // align * align


def check_u64(name: str, value: int) -> int:
    """Refuse an argument that no C caller could pass as a u64.

    The model's functions stand for C functions taking u64 (or size_t)
    parameters, so a negative or >= 2^64 argument is a bug in the caller (the
    test or the harness), not an input the spec gives a meaning to.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise ModelArgumentError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= U64_MAX:
        raise ModelArgumentError(f"{name}={value:#x} is not a u64")
    return value
