"""Argument types the subcommands share (each registered by its own module).

Every count has an upper bound: a value past it is a typo or a unit
mistake, and taken literally it ends in an OverflowError deep in
multiprocessing or collections, or in a run that never ends.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: Worker processes: past this a pool only spends memory.
MAX_JOBS = 256
#: Runs, boots, examples, trace lengths, case indices.
MAX_COUNT = 2**32


def _whole(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number "
                                         f"(decimal, or hex like 0x100)") from None


def counted(limit: int, least: int = 1) -> Callable[[str], int]:
    """The type of a whole number in [least, limit]."""
    def parse(text: str) -> int:
        n = _whole(text)
        if n < least:
            raise argparse.ArgumentTypeError(f"{text} is less than {least}")
        if n > limit:
            raise argparse.ArgumentTypeError(f"{text} is more than {limit:,}")
        return n
    parse.__name__ = "count"
    return parse


#: jobs, runs, boots, examples: 1 or more
count = counted(MAX_COUNT)
#: worker processes
jobs = counted(MAX_JOBS)
#: a case number or a first case: 0 or more
index = counted(MAX_COUNT, least=0)
#: guest instructions (Unicorn counts them in 64 bits)
instructions = counted(2**63)
