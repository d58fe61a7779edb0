"""The lockstep mirror of the wrapper's range table: the C's table against
the reference model, byte for byte, after every operation.

- operations.py: the hooked API, derived from wrapper_model.OPERATIONS;
- engine.py: the hooks (RangeMirror);
- records.py: the timeline entries and the divergence report;
- checker.py: the boot observer (MirrorChecker, MirrorFindings).
"""

from .checker import MirrorChecker, MirrorFindings
from .engine import MirrorError, RangeMirror
from .operations import API, ApiFunction
from .records import Divergence, DivergenceError, RangeOp, format_state, format_table

__all__ = ["API", "ApiFunction", "Divergence", "DivergenceError", "MirrorChecker",
           "MirrorError", "MirrorFindings", "RangeMirror", "RangeOp", "format_state",
           "format_table"]
