"""The Python reference model of the bootwrapper (docs/memranges.md).

ranges: the occupied-ranges table; heap: the simple allocator; layout: the
exact bytes the guest keeps for both, laid out as the ELF's DWARF says.
"""

from .constants import RANGES_MAX, ALLOC_MAX_RECORDS, RangesErr
from .heap import AllocRecord, BlockCopy, HeapModel, HeapState
from .errors import BwemuError, ModelArgumentError, ModelError
from .ranges import C_FUNCTIONS, OPERATIONS, OPS, Op, OpSignature, OpResult, RangeTable, RangeTableState

__all__ = [
    "ALLOC_MAX_RECORDS", "RANGES_MAX", "RangesErr",
    "AllocRecord", "BlockCopy", "HeapModel", "HeapState",
    "BwemuError", "ModelArgumentError", "ModelError",
    "C_FUNCTIONS", "OPERATIONS", "OPS", "Op", "OpSignature", "OpResult", "RangeTable", "RangeTableState",
]
