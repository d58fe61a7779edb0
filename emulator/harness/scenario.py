"""Boot scenarios: a device tree plus where a chain-loader put things.

A Scenario is plain data.  MemoryTree builds the kind of device tree a
chain-loader hands on (memory, console, reserve map, /chosen); a real tree
from a file works just as well (Scenario.from_files).  place() fills in
every address the scenario leaves open, the way kexec-tools would, and
says which it chose.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libfdt

from ..errors import InputError
from ..guest.addresses import Placement
from .inputs import read_input, read_tree

MiB = 1 << 20
ALIGN = 0x10000          # kexec-tools places segments on 64 KiB boundaries
DEFAULT_BUDGET = 400_000_000
#: What RAM holds before the loads, where a boot can read it first
#: (emulator/harness/ram_fill.py): no byte of it zero.
DEFAULT_RAM_FILL = bytes.fromhex("badc0ffee0ddf00d")
UART_LOW = 0xFE00_4500       # the generated UART, below 4 GiB
UART_HIGH = 0xF_E000_4500    # ... when RAM covers UART_LOW


class ScenarioError(InputError):
    """A scenario that cannot be booted as given; the text names the input."""


def uart_address_for(memory: Sequence[tuple[int, int]]) -> int:
    """Where a generated UART goes in a machine of these RAM blocks: below
    4 GiB, as real trees have it (a 32-bit wrapper cannot reach higher),
    unless RAM is there."""
    for candidate in (UART_LOW, UART_HIGH):
        if not any(b <= candidate < b + s for b, s in memory):
            return candidate
    raise ScenarioError("the generated UART has no room: RAM covers both "
                        f"0x{UART_LOW:x} and 0x{UART_HIGH:x}")


@dataclass(frozen=True)
class MemoryTree:
    """The parts of a generated device tree that matter to the wrapper."""
    memory: tuple[tuple[int, int], ...] = ((0, 256 * MiB),)
    console: str = "hvc"                 # "hvc" (PAPR vty), "uart" or "none"
    uart_base: int | None = None         # None: UART_LOW, or UART_HIGH if RAM covers it
    reserves: tuple[tuple[int, int], ...] = ()
    bootargs: str = "console=hvc0"
    address_cells: int = 2
    size_cells: int = 2
    stdout_property: str = "linux,stdout-path"

    def __post_init__(self) -> None:
        """Every field checked here, as Scenario's are: libfdt takes a
        wrong one with a raw exception, a crash (None for a string) or a
        value silently cut to the cells that hold it."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            problem = _TREE_CHECKS[f.name](value)
            if problem:
                raise ScenarioError(f"MemoryTree field {f.name}: {problem}, "
                                    f"not {_short(value)}")
        # A value the cells cannot hold would be cut to its low words.
        ac, sc = self.address_cells, self.size_cells
        for i, (base, size) in enumerate(self.memory):
            if base >> (32 * ac):
                raise ScenarioError(f"MemoryTree field memory: block {i}'s base 0x{base:x} "
                                    f"does not fit #address-cells = {ac}")
            if size >> (32 * sc):
                raise ScenarioError(f"MemoryTree field memory: block {i}'s size 0x{size:x} "
                                    f"does not fit #size-cells = {sc}")
        if self.console == "uart" and self.uart_address >> (32 * ac):
            if self.uart_base is not None:
                raise ScenarioError(f"MemoryTree field uart_base: 0x{self.uart_base:x} "
                                    f"does not fit #address-cells = {ac}")
            raise ScenarioError(f"MemoryTree field memory: RAM covers 0x{UART_LOW:x}, so the "
                                f"UART would be at 0x{self.uart_address:x}, which does not "
                                f"fit #address-cells = {ac}: give uart_base")

    @property
    def uart_address(self) -> int:
        """Where the generated UART is (uart_base, else as uart_address_for
        chooses it)."""
        if self.uart_base is not None:
            return self.uart_base
        return uart_address_for(self.memory)

    def build(self) -> bytes:
        sw = libfdt.FdtSw()
        for addr, size in self.reserves:
            sw.add_reservemap_entry(addr, size)
        sw.finish_reservemap()

        def cells(value: int, n: int) -> list[int]:
            return [(value >> (32 * (n - 1 - i))) & 0xFFFFFFFF for i in range(n)]

        def reg(pairs: list[tuple[int, int]], ac: int, sc: int) -> bytes:
            out: list[int] = []
            for a, s in pairs:
                out += cells(a, ac) + cells(s, sc)
            return b"".join(c.to_bytes(4, "big") for c in out)

        with sw.add_node(""):
            sw.property_string("compatible", "bwemu,chain-load")
            sw.property_u32("#address-cells", self.address_cells)
            sw.property_u32("#size-cells", self.size_cells)
            with sw.add_node("chosen"):
                sw.property_string("bootargs", self.bootargs)
                if self.console == "hvc":
                    sw.property_string(self.stdout_property, "/vdevice/vty@30000000")
                elif self.console == "uart":
                    sw.property_string(self.stdout_property,
                                       f"/serial@{self.uart_address:x}")
            for base, size in self.memory:
                with sw.add_node(f"memory@{base:x}"):
                    sw.property_string("device_type", "memory")
                    sw.property("reg", reg([(base, size)], self.address_cells,
                                           self.size_cells))
            if self.console == "hvc":
                with sw.add_node("vdevice"):
                    sw.property_u32("#address-cells", 1)
                    sw.property_u32("#size-cells", 0)
                    with sw.add_node("vty@30000000"):
                        sw.property_string("compatible", "hvterm1")
                        sw.property_string("device_type", "serial")
                        sw.property_u32("reg", 0x30000000)
            elif self.console == "uart":
                with sw.add_node(f"serial@{self.uart_address:x}"):
                    # As real trees write it: Linux's boot wrapper finds its
                    # console by device_type "serial" and compatible ns16550.
                    sw.property_string("device_type", "serial")
                    sw.property_string("compatible", "ns16550")
                    sw.property("reg", reg([(self.uart_address, 0x100)],
                                           self.address_cells, self.size_cells))
                    sw.property_u32("clock-frequency", 1843200)
        return bytes(sw.as_fdt().as_bytearray())


@dataclass(frozen=True)
class Scenario:
    """What a chain-loader hands the wrapper.  Addresses left None are
    chosen by place()."""
    name: str
    dtb: bytes
    dtb_at: int | None = None
    wrapper_at: int | None = None
    initrd: bytes | None = None          # loaded next to the wrapper
    initrd_at: int | None = None
    attached_initrd: bytes | None = None  # carried inside the image
    kernel_bss: int | None = None         # None: the default test kernel
    compressed_kernel: bool = True        # False: a raw ELF payload
    policy: str = "fixed"
    budget: int = DEFAULT_BUDGET
    # --- an image of the user's instead of our firmware (docs/guest-abi.md) ---
    image: Path | None = None             # ELF32/ELF64 big-endian PowerPC, or raw
    entry_offset: int | None = None       # a raw image: where it starts, from its first byte
    kernel: Path | None = None            # the kernel ELF the image carries
    entry: str = "kexec"                  # entry convention: "kexec" or "epapr"
    regs: tuple[tuple[str, int], ...] = ()   # register overrides, after the convention
    msr: int | None = None                # MSR override
    # --- fix-ups of the tree, as a boot loader makes them ---
    memory: int | None = None             # /memory replaced by one block at 0 of this size
    cmdline: str | None = None            # /chosen bootargs
    add_uart: bool = False                # an ns16550 added and made stdout-path
    #: RAM's contents before the loads: this pattern repeated (empty: zero).
    ram_fill: bytes = DEFAULT_RAM_FILL

    def __post_init__(self) -> None:
        """Every field type- and range-checked here, so a wrong one is
        named at once, not found deep inside a boot."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            check = _FIELD_CHECKS.get(f.name)
            if check is not None:
                problem = check(value)
                if problem:
                    raise ScenarioError(f"Scenario field {f.name}: {problem}, "
                                        f"not {_short(value)}")
        if self.image is not None:
            # what composes bwemu's own image means nothing for a user's
            ours = [n for n, v in (("attached_initrd", self.attached_initrd),
                                   ("kernel_bss", self.kernel_bss)) if v is not None]
            if not self.compressed_kernel:
                ours.append("compressed_kernel")
            if ours:
                raise ScenarioError(f"Scenario field {ours[0]} describes bwemu's own "
                                    f"firmware image, not the image {self.image}")
        else:
            # ... and what describes a user's image means nothing for ours
            # (which carries its own test kernel and starts at its ELF entry):
            # ignored, a kernel that does not exist booted and passed.
            theirs = [n for n, v in (("kernel", self.kernel),
                                     ("entry_offset", self.entry_offset)) if v is not None]
            if theirs:
                raise ScenarioError(f"Scenario field {theirs[0]} describes an image of "
                                    f"your own: give image too (bwemu's own firmware "
                                    f"carries its test kernel)")

    @classmethod
    def from_files(cls, dtb: Path, *, initrd: Path | None = None,
                   **kwargs: Any) -> Scenario:
        return cls(name=Path(dtb).name, dtb=read_tree(dtb, "--dtb"),
                   initrd=read_input(initrd, "--initrd") if initrd else None, **kwargs)

    def replace(self, **changes: Any) -> Scenario:
        return dataclasses.replace(self, **changes)


#: The largest kernel_bss a Scenario takes.  The test kernel links with
#: less: its start-up code addresses the end of its bss in 32 signed bits,
#: so about 2 GiB (0x7fff0000 links); the runner names kernel_bss when the
#: link refuses a value between the two.
MAX_KERNEL_BSS = 1 << 40
#: Unicorn counts the budget in a size_t; 0 would mean "no limit".
MAX_BUDGET = (1 << 63) - 1


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int_in(lo: int, hi: int, *, optional: bool = True) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if v is None and optional:
            return None
        if not isinstance(v, int) or isinstance(v, bool):
            return f"must be an int{' or None' if optional else ''}"
        if not lo <= v <= hi:
            return f"must be in 0x{lo:x}..0x{hi:x}"
        return None
    return check


def _of(kind: type | tuple[type, ...], what: str,
        optional: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if v is None and optional:
            return None
        if kind is not bool and isinstance(v, bool):
            return f"must be {what}"          # True is an int to Python, not to us
        return None if isinstance(v, kind) else f"must be {what}"
    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}"
    return check


def _regs(v: Any) -> str | None:
    ok = isinstance(v, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
        and isinstance(p[1], int) and 0 <= p[1] < 1 << 64 for p in v)
    return None if ok else "must be a tuple of (register name, u64 value) pairs"


U64 = (1 << 64) - 1
_FIELD_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "name": _of(str, "a string"),
    "dtb": _of(bytes, "the tree's bytes"),
    "dtb_at": _int_in(0, U64),
    "wrapper_at": _int_in(0, U64),
    "initrd": _of(bytes, "bytes or None", optional=True),
    "initrd_at": _int_in(0, U64),
    "attached_initrd": _of(bytes, "bytes or None", optional=True),
    "kernel_bss": _int_in(0, MAX_KERNEL_BSS),
    "compressed_kernel": _of(bool, "True or False"),
    "policy": _one_of("fixed", "seed"),
    "budget": _int_in(1, MAX_BUDGET, optional=False),
    "image": _of(Path, "a Path or None", optional=True),
    "entry_offset": _int_in(0, U64),
    "kernel": _of(Path, "a Path or None", optional=True),
    "entry": _one_of("kexec", "epapr"),
    "regs": _regs,
    "msr": _int_in(0, U64),
    "memory": _int_in(1, U64),
    "cmdline": _of(str, "a string or None", optional=True),
    "add_uart": _of(bool, "True or False"),
    "ram_fill": lambda v: None if isinstance(v, bytes) and len(v) <= 64 else
    "must be a pattern of 0 to 64 bytes",
}


def _blocks(what: str, *, within_2_64: bool) -> Callable[[Any], str | None]:
    """A tuple of (address, size) pairs of u64 values (and, for memory,
    ending by 2^64)."""
    def check(v: Any) -> str | None:
        ok = isinstance(v, tuple) and all(
            isinstance(p, tuple) and len(p) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= U64
                    for n in p)
            and (not within_2_64 or p[0] + p[1] <= 1 << 64) for p in v)
        return None if ok else f"must be a tuple of {what} pairs of u64 values" + (
            ", each ending by 2^64" if within_2_64 else "")
    return check


#: A property name as the devicetree specification allows it (2.2.4).
_PROPERTY_NAME = re.compile(r"[0-9A-Za-z,._+?#-]{1,31}")


def _fdt_string(v: Any) -> str | None:
    """A string libfdt can store whole: UTF-8, no NUL (it would end it)."""
    if not isinstance(v, str):
        return "must be a string"
    if "\0" in v:
        return "must hold no NUL character"
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return "must be text UTF-8 can encode"
    return None


def _cells(v: Any) -> str | None:
    return None if type(v) is int and v in (1, 2) else "must be 1 or 2"


_TREE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "memory": _blocks("(base, size)", within_2_64=True),
    "console": _one_of("hvc", "uart", "none"),
    "uart_base": _int_in(0, U64),
    "reserves": _blocks("(address, size)", within_2_64=False),
    "bootargs": _fdt_string,
    # What the wrapper reads (as a scenario file's [tree] has them); a tree
    # of other counts is made by editing a generated one.
    "address_cells": _cells,
    "size_cells": _cells,
    "stdout_property": lambda v: None if isinstance(v, str)
    and _PROPERTY_NAME.fullmatch(v) else "must be a property name (1 to 31 of 0-9 a-z "
    "A-Z , . _ + ? # -)",
}


@dataclass(frozen=True)
class Layout:
    """Every address of a scenario, after place()."""
    rma_end: int
    ram: tuple[tuple[int, int], ...]
    wrapper: Placement
    dtb: Placement
    initrd: Placement | None
    notes: tuple[str, ...] = field(default=())


def _align_down(x: int, a: int) -> int:
    return x - x % a


def _clear_above(start: int, size: int, busy: list[tuple[int, int]]) -> int:
    """The lowest ALIGN-aligned address from start up whose [a, a + size)
    meets none of busy's (address, size) ranges."""
    moved = True
    while moved:
        moved = False
        for a, s in busy:
            if start < a + s and a < start + size:
                start = -(-(a + s) // ALIGN) * ALIGN
                moved = True
    return start


def _clear_below(top: int, size: int, busy: list[tuple[int, int]]) -> int:
    """The highest ALIGN-aligned address whose [a, a + size) ends by top
    and meets none of busy's ranges (negative when none does)."""
    at = _align_down(top - size, ALIGN)
    moved = True
    while moved and at >= 0:
        moved = False
        for a, s in busy:
            if at < a + s and a < at + size:
                at = _align_down(a - size, ALIGN)
                moved = True
    return at


def place(scenario: Scenario, ram: list[tuple[int, int]], wrapper_size: int,
          reserved: Sequence[tuple[int, int]] = ()) -> Layout:
    """Chooses what the scenario leaves open, as kexec-tools would: the
    wrapper (our zImage) at 32 MiB, just past a running kernel's end; the
    device tree at the top of the real-mode area and the initrd below it,
    each 64 KiB aligned, and none of them in a range of the reserve map
    (`reserved`).  An address the scenario gives is taken as it is.
    Checks everything lies in RAM without overlap."""
    rma = [size for base, size in ram if base == 0]
    rma_end = rma[0] if rma else max((b + s for b, s in ram), default=0)
    # Without a block at 0 the wrapper will refuse the tree; still load
    # everything into the lowest block so that it runs and says so.
    low, low_size = (0, rma_end) if rma else min(ram, default=(0, 0))
    notes: list[str] = []
    dtb_size = len(scenario.dtb)
    initrd_size = len(scenario.initrd) if scenario.initrd is not None else 0

    busy = [(a, s) for a, s in reserved if s > 0]
    avoiding = " clear of the reserve map" if busy else ""
    wrapper_at = scenario.wrapper_at
    if wrapper_at is None:
        wrapper_at = _clear_above(low + min(32 * MiB, _align_down(low_size // 4, ALIGN)),
                                  wrapper_size, busy)
        notes.append(f"wrapper placed at 0x{wrapper_at:x} (kexec-tools puts a "
                     f"zImage after the running kernel's end){avoiding}")
    busy.append((wrapper_at, wrapper_size))
    dtb_at = scenario.dtb_at
    if dtb_at is None:
        if dtb_size > low_size:
            raise ScenarioError(f"the device tree (0x{dtb_size:x} bytes) is larger than "
                                f"the real-mode area (0x{low_size:x} bytes)")
        dtb_at = _clear_below(low + low_size, dtb_size, busy)
        if dtb_at < low:
            raise ScenarioError(f"no room for the device tree (0x{dtb_size:x} bytes) in "
                                f"the real-mode area{avoiding}: give --dtb-at")
        notes.append(f"device tree placed at 0x{dtb_at:x} (top of the real-mode "
                     f"area){avoiding}")
    busy.append((dtb_at, dtb_size))
    initrd_at = scenario.initrd_at
    if scenario.initrd is not None and initrd_at is None:
        if initrd_size > dtb_at - low:
            raise ScenarioError(f"the initrd (0x{initrd_size:x} bytes) does not fit below "
                                f"the device tree at 0x{dtb_at:x}: give --initrd-at")
        initrd_at = _clear_below(dtb_at, initrd_size, busy)
        if initrd_at < low:
            raise ScenarioError(f"no room for the initrd (0x{initrd_size:x} bytes) below "
                                f"the device tree{avoiding}: give --initrd-at")
        notes.append(f"initrd placed at 0x{initrd_at:x} (below the device tree){avoiding}")
    if scenario.initrd is None and initrd_at is not None:
        raise ScenarioError("an initrd address was given without an initrd file")

    pieces = [("wrapper", Placement(wrapper_at, wrapper_size)),
              ("device tree", Placement(dtb_at, dtb_size))]
    if scenario.initrd is not None and initrd_at is not None:   # (always, by now)
        pieces.append(("initrd", Placement(initrd_at, initrd_size)))
    for what, p in pieces:
        if p.address < 0 or not any(b <= p.address and p.end <= b + s for b, s in ram):
            raise ScenarioError(f"the {what} at 0x{p.address:x}..0x{p.end:x} "
                                f"is not inside RAM (the device tree's /memory)")
    for i, (wa, pa) in enumerate(pieces):
        for wb, pb in pieces[i + 1:]:
            if pa.address < pb.end and pb.address < pa.end:
                raise ScenarioError(f"the {wa} (0x{pa.address:x}..0x{pa.end:x}) "
                                    f"overlaps the {wb} (0x{pb.address:x}..0x{pb.end:x})")
    return Layout(rma_end, tuple(ram), pieces[0][1], pieces[1][1],
                  pieces[2][1] if len(pieces) > 2 else None, tuple(notes))


def default_initrd(size: int = 96 * 1024) -> bytes:
    """A recognisable, non-repeating initrd: a counter pattern."""
    return struct.pack(f">{size // 4}I", *range(size // 4))


def default_scenario() -> Scenario:
    """256 MiB pseries-like machine, PAPR console, an initrd from kexec."""
    return Scenario(name="default", dtb=MemoryTree().build(),
                    initrd=default_initrd())
