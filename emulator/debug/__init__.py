"""Seeing why a boot failed: symbolised instructions, a ring buffer of the
last ones executed, backtraces, an instruction trace, a failure report and
a memory map picture.

The observers here (ring.py, inspect.py, trace.py) follow the protocol of
emulator/guest/observer.py, like the checkers, and never judge a boot:
their findings' status is CheckState.NOT_A_CHECK.  This package sits
beside the checkers, reading their findings (never the other way round),
and below the harness, which adds the ring buffer and the inspector to
every boot (docs/architecture.md, "The debug layer").
"""
