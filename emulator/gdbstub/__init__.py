"""A gdb remote stub for bwemu's boots (`bwemu boot --gdb PORT`).

packets.py frames the remote protocol, target.py describes the registers,
server.py is the observer that serves gdb and drives the run, cli.py adds
the options to `bwemu boot`.
"""

from __future__ import annotations

from .server import GdbFindings, GdbStub, GdbStubError

__all__ = ["GdbFindings", "GdbStub", "GdbStubError"]
