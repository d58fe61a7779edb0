"""`bwemu boot --gdb PORT`: the option, added to the boot command by one
call from emulator/cli.py (add_boot_options), and the observer it asks
for (observers(args), given to the boot with the others)."""

from __future__ import annotations

import argparse

from ..guest.observer import Observer
from .server import GdbStub


def port(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"{text}: a port is 0..65535 (0: any free one)")
    return value


def add_boot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gdb", type=port, metavar="PORT",
                        help="before the first instruction, wait for gdb-multiarch on "
                        "127.0.0.1:PORT (0: any free port) and let it drive the boot; the "
                        "command to attach is printed on stderr")


def observers(args: argparse.Namespace) -> list[Observer]:
    """The stub, when --gdb asks for it."""
    gdb = getattr(args, "gdb", None)
    return [] if gdb is None else [GdbStub(gdb)]


__all__ = ["add_boot_options", "observers", "port"]
