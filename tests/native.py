"""The wrapper's range table and heap, compiled for the host and driven here.

firmware/host/ranges_driver.c links memranges.c and simple_alloc.c into a
small program that takes one operation a line on stdin and answers one line
on stdout (the protocol is described at the top of that file).  HostRanges
wraps it: one method per operation, typed results, and the raw guest bytes
of both structs from dump().

Building the driver is the caller's business (tests use tests/hostc.py's
build_host_tool); this module only needs the executable's path.
"""

from __future__ import annotations

import contextlib
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

RANGES_MAX = 32
ALLOC_MAX_RECORDS = 32

# The driver presets out-parameters to this, so "left untouched" is visible.
SENTINEL = 0x5A5A5A5A5A5A5A5A

# The guest's natural big-endian layouts, as the driver checks them with
# _Static_assert; the emulator's mirror takes its offsets from DWARF instead.
_TABLE_HEAD = struct.Struct(">QQQII")
_RANGE = struct.Struct(">QQ")
_HEAP_HEAD = struct.Struct(">QQQII")
_RECORD = struct.Struct(">QQQ")
RANGE_TABLE_SIZE = _TABLE_HEAD.size + RANGES_MAX * _RANGE.size
ALLOC_HEAP_SIZE = _HEAP_HEAD.size + ALLOC_MAX_RECORDS * _RECORD.size


class DriverError(RuntimeError):
    """The driver refused a request, or died."""


@dataclass(frozen=True)
class GapResult:
    ret: int
    start: int
    end: int


@dataclass(frozen=True)
class AllocResult:
    ret: int
    addr: int


@dataclass(frozen=True)
class RangeTable:
    rma_end: int
    heap_start: int
    heap_end: int
    count: int
    refused: int
    entries: tuple[tuple[int, int], ...]   # all RANGES_MAX, unused included
    raw: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> RangeTable:
        if len(raw) != RANGE_TABLE_SIZE:
            raise ValueError(f"range table is {len(raw)} bytes, not {RANGE_TABLE_SIZE}")
        head = _TABLE_HEAD.unpack_from(raw, 0)
        entries = tuple(_RANGE.unpack_from(raw, _TABLE_HEAD.size + i * _RANGE.size)
                        for i in range(RANGES_MAX))
        return cls(*head, entries=entries, raw=raw)

    @property
    def used(self) -> list[tuple[int, int]]:
        """The entries in use, as (start, end)."""
        return list(self.entries[:self.count])


@dataclass(frozen=True)
class Heap:
    base: int
    end: int
    next: int
    nrecords: int
    pad: int
    records: tuple[tuple[int, int, int], ...]   # (base, size, state), all of them
    raw: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> Heap:
        if len(raw) != ALLOC_HEAP_SIZE:
            raise ValueError(f"heap is {len(raw)} bytes, not {ALLOC_HEAP_SIZE}")
        head = _HEAP_HEAD.unpack_from(raw, 0)
        records = tuple(_RECORD.unpack_from(raw, _HEAP_HEAD.size + i * _RECORD.size)
                        for i in range(ALLOC_MAX_RECORDS))
        return cls(*head, records=records, raw=raw)

    @property
    def used(self) -> list[tuple[int, int, int]]:
        """The records handed out so far, as (base, size, state)."""
        return list(self.records[:self.nrecords])


@dataclass(frozen=True)
class State:
    ranges: RangeTable
    heap: Heap


class HostRanges:
    """One running driver process.  Use as a context manager."""

    def __init__(self, driver: str | Path, timeout: float = 10.0):
        self.timeout = timeout
        self._proc = subprocess.Popen(
            [str(driver)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, bufsize=1)

    # -- plumbing ---------------------------------------------------------

    def request(self, line: str) -> str:
        """Send one request line, return the answer line (without newline)."""
        proc = self._proc
        if proc.poll() is not None:
            raise DriverError(f"driver has exited ({proc.returncode}): {self._stderr()}")
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            raise DriverError(f"driver died: {self._stderr()}") from None
        answer = proc.stdout.readline()
        if not answer:
            proc.wait(self.timeout)
            raise DriverError(f"driver died on {line!r} "
                              f"(exit {proc.returncode}): {self._stderr()}")
        answer = answer.rstrip("\n")
        if answer.startswith("error"):
            raise DriverError(f"{line!r}: {answer}")
        return answer

    def _stderr(self) -> str:
        if self._proc.poll() is None:
            return ""
        return self._proc.stderr.read()

    def _ints(self, line: str) -> list[int]:
        return [int(tok, 16) if i else int(tok) for i, tok in
                enumerate(self.request(line).split())]

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write("quit\n")
                proc.stdin.flush()
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        try:
            proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    def __enter__(self) -> HostRanges:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the range table ----------------------------------------------------

    def init(self, rma_end: int) -> None:
        self.request(f"init {rma_end:x}")

    def add(self, start: int, size: int) -> int:
        return int(self.request(f"add {start:x} {size:x}"))

    def add_span(self, start: int, end: int) -> int:
        return int(self.request(f"span {start:x} {end:x}"))

    def is_free(self, start: int, size: int) -> int:
        return int(self.request(f"isfree {start:x} {size:x}"))

    def largest_gap(self, preset: int = SENTINEL) -> GapResult:
        return GapResult(*self._ints(f"gap {preset:x}"))

    def gap_after_last(self, preset: int = SENTINEL) -> GapResult:
        return GapResult(*self._ints(f"after {preset:x}"))

    def init_malloc(self) -> int:
        return int(self.request("initmalloc"))

    def vmlinux_alloc(self, size: int, preset: int = SENTINEL) -> AllocResult:
        return AllocResult(*self._ints(f"vmlinux {size:x} {preset:x}"))

    def strerror(self, err: int) -> str:
        return self.request(f"strerror {err:d}")

    # -- the heap -----------------------------------------------------------

    def heap_init(self, base: int, size: int) -> None:
        self.request(f"heapinit {base:x} {size:x}")

    def malloc(self, n: int) -> int:
        return int(self.request(f"malloc {n:x}"), 16)

    def free(self, p: int) -> None:
        self.request(f"free {p:x}")

    def realloc(self, p: int, n: int) -> int:
        """Needs the heap in host memory (see the driver); else DriverError."""
        return int(self.request(f"realloc {p:x} {n:x}"), 16)

    def poke(self, addr: int, data: bytes) -> None:
        self.request(f"poke {addr:x} {data.hex()}")

    def peek(self, addr: int, length: int) -> bytes:
        return bytes.fromhex(self.request(f"peek {addr:x} {length:x}"))

    # -- state --------------------------------------------------------------

    def dump(self) -> State:
        ranges_hex, heap_hex = self.request("dump").split()
        return State(RangeTable.from_bytes(bytes.fromhex(ranges_hex)),
                     Heap.from_bytes(bytes.fromhex(heap_hex)))
