"""Argument types the subcommands share (each registered by its own module)."""

from __future__ import annotations

import argparse


def count(text: str) -> int:
    """A count of 1 or more: jobs, runs, boots, examples."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return n
