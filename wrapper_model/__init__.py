"""The Python reference model of the bootwrapper (docs/memranges.md).

ranges: the occupied-ranges table; heap: the simple allocator; layout: the
exact bytes the guest keeps for both, laid out as the ELF's DWARF says.
"""

from .constants import ALLOC_MAX_RECORDS, RANGES_MAX, RangesErr
from .errors import BwemuError, ModelArgumentError, ModelError
from .heap import AllocRecord, BlockCopy, HeapModel, HeapState
from .ranges import (
    C_FUNCTIONS,
    OPERATIONS,
    OPS,
    Op,
    OpResult,
    OpSignature,
    RangeTable,
    RangeTableState,
)

__all__ = [
    "ALLOC_MAX_RECORDS", "RANGES_MAX", "RangesErr",
    "AllocRecord", "BlockCopy", "HeapModel", "HeapState",
    "BwemuError", "ModelArgumentError", "ModelError",
    "C_FUNCTIONS", "OPERATIONS", "OPS", "Op", "OpSignature", "OpResult",
    "RangeTable", "RangeTableState",
]
