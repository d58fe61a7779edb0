"""Scenario files: a boot situation written as a small TOML file.

load(path) parses one file, checks every key before anything runs and
gives a ScenarioFile: the Scenario to boot, what is expected of the boot
(an Expect, or None: the reference model's prediction must hold and
nothing protected may be overwritten) and the file's description.

Every mistake in a file is a ScenarioFileError whose text is one line
naming the file and the key, with a suggestion where one fits:

    scenarios/x.toml: unknown key 'intird' in [load]; did you mean 'initrd'?

docs/scenarios.md is the format's reference.
"""

from __future__ import annotations

import difflib
import re
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from wrapper_model.placement import FATAL_KINDS

from ..errors import InputError
from ..guest.devicetree import DeviceTree, DeviceTreeError
from ..guest.elf import ElfImage, ElfImageError
from .firmware import POLICIES, FirmwareBuild, FirmwareError
from .inputs import LIMITS, check_input, read_input, read_tree
from .ram_fill import parse_pattern
from .result import ExitReason
from .scenario import (
    DEFAULT_BUDGET,
    DEFAULT_RAM_FILL,
    MemoryTree,
    MiB,
    Scenario,
    ScenarioError,
    place,
)

T = TypeVar("T")

#: What an [expect] overwritten list may name: the kinds of region the
#: watch protects (emulator/checkers/watch.py), by the names used here.
REGION_KINDS = ("wrapper", "input-dtb", "initrd", "reserve", "dtb", "outside-ram")
#: An expected placement that must be absent (nothing handed on).
NONE = "none"
ENTRIES = ("kexec", "epapr")
CONSOLES = ("hvc", "uart", "none")
REGISTER = re.compile(r"r([0-9]|[12][0-9]|3[01])|lr|ctr|cr|xer")
FDT_MAGIC = 0xD00DFEED
FDT_HEADER = 40


class ScenarioFileError(ScenarioError):
    """A scenario file that cannot be used as written: one line naming the
    file and, where there is one, the key."""

    def __init__(self, path: Path | str, message: str, key: str | None = None,
                 line: int | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


class _Bad(ScenarioError):
    """A value that does not fit its key (turned into a ScenarioFileError
    naming the key)."""


# --- value kinds -------------------------------------------------------------

def _kind_of(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    shown = repr(value) if not isinstance(value, (list, dict)) else ""
    return f"{names.get(type(value), type(value).__name__)}" + (f" ({shown})" if shown else "")


def _int(value: Any, what: str) -> int:
    # bool is an int to Python; to a TOML author true is not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"expected {what}, got {_kind_of(value)}")
    return value


def address(value: Any) -> int:
    v = _int(value, "an address (an integer such as 0x2000000)")
    if not 0 <= v < 2**64:
        raise _Bad(f"0x{v:x} is outside the 64-bit address space" if v >= 0
                   else f"{v} is negative: an address is 0 or more")
    return v


_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(0x[0-9a-f]+|\d+)\s*([kmgt]?)(?:i?b)?", re.I)


def size(value: Any) -> int:
    """An integer, or a string like "512M", "16G", "64KiB", "0x1000"."""
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m is None:
            raise _Bad(f"{value!r} is not a size (use an integer, or a string "
                       f"like \"512M\" or \"16G\")")
        v = int(m.group(1), 0) * _SUFFIX[m.group(2).upper()]
    else:
        v = _int(value, "a size (an integer, or a string like \"512M\")")
    if v < 0:
        raise _Bad(f"{v} is negative: a size is 0 or more")
    if v >= 2**64:
        raise _Bad(f"{value!r} does not fit in 64 bits")
    return v


def positive_size(value: Any) -> int:
    v = size(value)
    if v == 0:
        raise _Bad("must be greater than 0")
    return v


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {_kind_of(value)}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, got {_kind_of(value)}")
    return value


def choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        v = text(value)
        if v not in options:
            close = difflib.get_close_matches(v, options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _Bad(f"{v!r} is not one of {', '.join(repr(o) for o in options)}{hint}")
        return v
    return check


def pairs(value: Any, base: Callable[[Any], int] = address) -> tuple[tuple[int, int], ...]:
    """[[address, size], ...]"""
    if not isinstance(value, list):
        raise _Bad(f"expected an array of [address, size] pairs, got {_kind_of(value)}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, list):
            raise _Bad(f"entry {i} is {_kind_of(item)}: expected [address, size]")
        if len(item) != 2:
            raise _Bad(f"entry {i} has {len(item)} value{'s' * (len(item) != 1)}: "
                       f"expected two, [address, size]")
        if all(isinstance(v, int) for v in item) and item[0] + item[1] > 1 << 64:
            raise _Bad(f"entry {i} ends past 2^64 (0x{item[0]:x} + 0x{item[1]:x})")
        try:
            out.append((base(item[0]), size(item[1])))
        except _Bad as e:
            raise _Bad(f"entry {i}: {e}") from None
    return tuple(out)


SERIES_KEYS = ("from", "size", "step", "count")


def series(value: Any) -> tuple[tuple[int, int], ...]:
    """{ from = A, size = N, step = D, count = C }: C entries of N bytes at
    A, A + D, A + 2D ... (a table full of reserves without listing each)."""
    if not isinstance(value, dict):
        raise _Bad(f"expected a table like {{ from = 0x4000000, size = 0x1000, "
                   f"step = 0x100000, count = 30 }}, got {_kind_of(value)}")
    for k in value:
        if k not in SERIES_KEYS:
            close = difflib.get_close_matches(k, SERIES_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _Bad(f"unknown key {k!r}{hint}")
    missing = [k for k in SERIES_KEYS if k not in value]
    if missing:
        raise _Bad(f"missing {', '.join(missing)} (needs {', '.join(SERIES_KEYS)})")
    start, n, step = address(value["from"]), size(value["size"]), size(value["step"])
    count = _int(value["count"], "a count (an integer)")
    if not 0 < count <= 4096:
        raise _Bad(f"count {count} is not 1 .. 4096")
    if start + step * (count - 1) + n > 2**64:
        raise _Bad("the series runs past the 64-bit address space")
    return tuple((start + i * step, n) for i in range(count))


def memory(value: Any) -> int | tuple[tuple[int, int], ...]:
    """A size (one block at 0) or [[base, size], ...] blocks (a base may be
    written as a size too: "256M")."""
    if isinstance(value, list):
        blocks = pairs(value, base=size)
        if not blocks:
            raise _Bad("an empty list describes no memory")
        return blocks
    return positive_size(value)


def cells(value: Any) -> int:
    v = _int(value, "1 or 2")
    if v not in (1, 2):
        raise _Bad(f"{v} is not supported: 1 or 2")
    return v


def budget(value: Any) -> int:
    v = _int(value, "an instruction count (an integer)")
    if not 0 < v < 2**63:
        raise _Bad(f"{v} is not a usable budget (1 .. 2^63-1)")
    return v


def regs(value: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        raise _Bad(f"expected a table like {{ r6 = 0 }}, got {_kind_of(value)}")
    out = []
    for name, v in value.items():
        if not REGISTER.fullmatch(name):
            raise _Bad(f"{name!r} is not a register (r0..r31, lr, ctr, cr, xer; "
                       f"msr has its own key)")
        try:
            out.append((name, address(v)))
        except _Bad as e:
            raise _Bad(f"{name}: {e}") from None
    return tuple(out)


def fill_pattern(value: Any) -> bytes:
    """[load] ram_fill: "0xdeadbeef", "zero", or an integer (its bytes)."""
    if isinstance(value, str):
        try:
            return parse_pattern(value)
        except ScenarioError as e:
            raise _Bad(str(e).removeprefix("RAM fill ")) from None
    v = _int(value, "a pattern (a string such as \"0xdeadbeef\", or \"zero\")")
    if not 0 <= v < 1 << 512:
        raise _Bad(f"{v} is not a pattern of 0 to 64 bytes")
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


def regex(value: Any) -> str:
    v = text(value)
    try:
        re.compile(v)
    except re.error as e:
        raise _Bad(f"{v!r} is not a regular expression: {e}") from None
    return v


def placement(value: Any) -> int | str:
    if isinstance(value, str):
        if value != NONE:
            raise _Bad(f"expected an address or \"none\", got {value!r}")
        return value
    return address(value)


def regions(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Bad(f"expected an array of region kinds, got {_kind_of(value)}")
    out = []
    for item in value:
        out.append(choice(*REGION_KINDS)(item))
    return tuple(sorted(set(out)))


#: Every table and key a scenario file may have, with the check of its value.
SCHEMA: dict[str, dict[str, Callable[[Any], Any]]] = {
    "": {"description": text, "xfail": text},
    "tree": {"dtb": text, "memory": memory, "reserve": pairs, "reserve_series": series,
             "console": choice(*CONSOLES), "bootargs": text,
             "address_cells": cells, "size_cells": cells},
    "load": {"wrapper": address, "dtb": address, "initrd": address,
             "ram_fill": fill_pattern},
    "initrd": {"size": size, "file": text, "attached": boolean},
    "attached_initrd": {"size": size, "file": text},
    "kernel": {"bss": size, "compressed": boolean},
    "firmware": {"policy": choice(*POLICIES), "budget": budget, "image": text,
                 "entry": choice(*ENTRIES), "entry_offset": address, "kernel": text,
                 "regs": regs, "msr": address},
    # not "handoff": only a Boot told to stop there (the replay) ends so
    "expect": {"exit": choice(*(e.value for e in ExitReason if e is not ExitReason.HANDOFF)),
               "message": regex,
               "fatal": choice(*FATAL_KINDS), "kernel": placement, "dtb": placement,
               "initrd": placement, "overwritten": regions},
}


def _table_name(table: str) -> str:
    return "the top level" if table == "" else f"[{table}]"


def _key_name(table: str, key: str) -> str:
    return key if table == "" else f"[{table}] {key}"


# --- what a file says ------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    """What a boot must do, from a file's [expect] table.  A placement is an
    address, NONE (nothing handed on) or None (not checked)."""
    exit: str = ExitReason.KERNEL.value
    message: str | None = None          # a regex the exit message must match
    fatal: str | None = None            # the model's kind of fatal stop
    kernel: int | str | None = None     # r4 at the hand-off
    dtb: int | str | None = None        # r3 at the hand-off
    initrd: int | str | None = None     # /chosen's initrd in the tree handed on
    overwritten: tuple[str, ...] = ()   # region kinds stores must hit, exactly

    def placements(self) -> dict[str, int | str]:
        return {k: v for k, v in (("kernel", self.kernel), ("dtb", self.dtb),
                                  ("initrd", self.initrd)) if v is not None}


@dataclass(frozen=True)
class ScenarioFile:
    path: Path
    description: str
    scenario: Scenario
    expect: Expect | None = None
    xfail: str | None = None            # a known failure, with its reason

    @property
    def name(self) -> str:
        return self.scenario.name


# --- parsing -------------------------------------------------------------------

def parse_toml(path: Path, source: str) -> dict[str, Any]:
    """The file's data as plain Python values; a syntax error names its line."""
    # Imported here: a boot that reads no scenario file need not load it.
    import tomlkit
    from tomlkit.exceptions import ParseError, TOMLKitError
    try:
        doc = tomlkit.parse(source)
    except ParseError as e:
        message = re.sub(r" at line \d+ col \d+$", "", str(e))
        raise ScenarioFileError(path, f"TOML syntax error: {message} "
                                f"(line {e.line}, column {e.col})", line=e.line) from None
    except TOMLKitError as e:
        raise ScenarioFileError(path, f"TOML error: {e}") from None
    data: dict[str, Any] = doc.unwrap()
    return data


def read_description(path: Path) -> str:
    """Only the description (for listings): the file is parsed, not checked."""
    try:
        data = parse_toml(path, path.read_text())
    except (OSError, UnicodeDecodeError, ScenarioFileError):
        return "(unreadable)"
    value = data.get("description")
    return value if isinstance(value, str) else "(no description)"


def _check_keys(path: Path, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every key known and of the right type: {table: {key: value}}."""
    tables = [t for t in SCHEMA if t]
    out: dict[str, dict[str, Any]] = {"": {}}
    for key, value in data.items():
        if isinstance(value, dict) and key not in SCHEMA[""]:
            if key not in SCHEMA:
                close = difflib.get_close_matches(key, tables, n=1)
                hint = f"; did you mean [{close[0]}]?" if close else ""
                raise ScenarioFileError(path, f"unknown table [{key}]{hint}", key)
            out[key] = value
        else:
            out[""][key] = value
    checked: dict[str, dict[str, Any]] = {}
    for table, values in out.items():
        known = SCHEMA[table]
        checked[table] = {}
        for key, value in values.items():
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                if table == "" and key in SCHEMA:
                    hint = f"; [{key}] is a table"
                raise ScenarioFileError(path, f"unknown key {key!r} in "
                                        f"{_table_name(table)}{hint}",
                                        _key_name(table, key))
            try:
                checked[table][key] = known[key](value)
            except _Bad as e:
                raise ScenarioFileError(path, f"{_key_name(table, key)}: {e}",
                                        _key_name(table, key)) from None
    return checked


class _Builder:
    """Turns checked tables into a Scenario, with the cross-key checks."""

    def __init__(self, path: Path, t: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self.t = t

    def fail(self, message: str, key: str | None = None) -> ScenarioFileError:
        return ScenarioFileError(self.path, message, key)

    def get(self, table: str, key: str, default: Any = None) -> Any:
        return self.t.get(table, {}).get(key, default)

    def has(self, table: str, key: str) -> bool:
        return key in self.t.get(table, {})

    def _through(self, table: str, key: str, reader: Callable[[Path, str, int], T]) -> T:
        """reader(path, key name, size limit) on the file the key names,
        relative to the scenario file (harness/inputs.py: check_input,
        read_input, read_tree), its refusal made this file's error."""
        p = self.path.parent / self.get(table, key)
        name = _key_name(table, key)
        if not p.exists():
            raise self.fail(f"{name}: no such file: {p}", name)
        try:
            return reader(p, name, LIMITS[table if key == "file" else key])
        except InputError as e:
            raise self.fail(str(e), name) from None

    def file(self, table: str, key: str) -> Path:
        """A regular file within its size limit, to be read later."""
        return self._through(table, key, check_input)

    def read(self, table: str, key: str) -> bytes:
        return self._through(table, key, read_input)

    # --- the tree ---------------------------------------------------------
    def tree(self) -> tuple[bytes, int | None, str | None]:
        """The tree's bytes, and the Scenario's memory / cmdline fix-ups."""
        generated_only = [k for k in ("console", "address_cells", "size_cells")
                          if self.has("tree", k)]
        mem = self.get("tree", "memory")
        reserves = self.get("tree", "reserve", ()) + self.get("tree", "reserve_series", ())
        if not self.has("tree", "dtb"):
            blocks = ((0, mem),) if isinstance(mem, int) else mem or ((0, 256 * MiB),)
            kw: dict[str, Any] = {"memory": blocks, "reserves": reserves}
            for k in ("console", "address_cells", "size_cells"):
                if self.has("tree", k):
                    kw[k] = self.get("tree", k)
            if self.has("tree", "bootargs"):
                kw["bootargs"] = self.get("tree", "bootargs")
            try:
                return MemoryTree(**kw).build(), None, None
            except ScenarioError as e:
                raise self.fail(f"[tree]: {e}", "[tree]") from None
        if generated_only:
            k = generated_only[0]
            raise self.fail(f"[tree] {k}: only for a generated tree (memory = SIZE "
                            f"without dtb); a dtb names its own", f"[tree] {k}")
        blob = self.dtb_blob()
        if reserves:
            blob = add_reserves(blob, reserves)
        fill: int | None = None
        if mem is not None:
            if not isinstance(mem, int):
                raise self.fail("[tree] memory: with a dtb, memory fills its empty /memory "
                                "with one block at 0: give a size, not blocks",
                                "[tree] memory")
            described = _tree_memory(blob)
            if described:
                b, s = described[0]
                raise self.fail(f"[tree] memory: the dtb already describes its memory "
                                f"(0x{b:x}..0x{b + s:x}); memory fills only an empty "
                                f"/memory: drop one of them", "[tree] memory")
            fill = mem
        elif _tree_memory(blob) == [] and _placeholder(blob):
            raise self.fail("[tree] dtb: its /memory is empty (no reg, or size 0): give "
                            "the RAM size with memory = SIZE", "[tree] dtb")
        return blob, fill, self.get("tree", "bootargs")

    def dtb_blob(self) -> bytes:
        return self._through("tree", "dtb", read_tree)

    # --- the initrds --------------------------------------------------------
    def blob(self, table: str) -> bytes | None:
        if table not in self.t:
            return None
        has_size, has_file = self.has(table, "size"), self.has(table, "file")
        if has_size == has_file:
            raise self.fail(f"[{table}]: give either size (generated content) or file",
                            f"[{table}]")
        if has_file:
            return self.read(table, "file")
        n = self.get(table, "size")
        if n > 1 << 30:
            raise self.fail(f"[{table}] size: 0x{n:x} bytes is more than the 1 GiB "
                            f"a generated initrd may have", f"[{table}] size")
        return generated_initrd(n)

    def build(self) -> Scenario:
        dtb, fill, cmdline = self.tree()
        initrd = self.blob("initrd")
        attached = self.blob("attached_initrd")
        if self.get("initrd", "attached", False):
            if attached is not None:
                raise self.fail("[initrd] attached: there is an [attached_initrd] too; "
                                "keep one", "[initrd] attached")
            initrd, attached = None, initrd
        if self.has("load", "initrd") and initrd is None:
            raise self.fail("[load] initrd: there is no initrd from the chain-loader "
                            "(no [initrd] table, or attached = true)", "[load] initrd")
        image = self.file("firmware", "image") if self.has("firmware", "image") else None
        kernel = self.file("firmware", "kernel") if self.has("firmware", "kernel") else None
        if image is None:
            for k in ("entry_offset", "kernel"):
                if self.has("firmware", k):
                    raise self.fail(f"[firmware] {k}: only with image = FILE",
                                    f"[firmware] {k}")
        else:
            ours = [f"[kernel] {k}" for k in ("bss", "compressed") if self.has("kernel", k)]
            ours += ["[initrd] attached"] if attached is not None else []
            if ours:
                raise self.fail(f"{ours[0]}: describes bwemu's own firmware image, not "
                                f"[firmware] image", ours[0])
        name = self.path.stem
        return Scenario(
            name=name, dtb=dtb, dtb_at=self.get("load", "dtb"),
            wrapper_at=self.get("load", "wrapper"), initrd=initrd,
            initrd_at=self.get("load", "initrd"), attached_initrd=attached,
            kernel_bss=self.get("kernel", "bss"),
            compressed_kernel=self.get("kernel", "compressed", True),
            policy=self.get("firmware", "policy", "fixed"),
            budget=self.get("firmware", "budget", DEFAULT_BUDGET),
            image=image, entry_offset=self.get("firmware", "entry_offset"), kernel=kernel,
            entry=self.get("firmware", "entry", "kexec"),
            regs=self.get("firmware", "regs", ()), msr=self.get("firmware", "msr"),
            memory=fill, cmdline=cmdline,
            ram_fill=self.get("load", "ram_fill", DEFAULT_RAM_FILL))

    def expect(self) -> Expect | None:
        if "expect" not in self.t:
            return None
        e = Expect(**self.t["expect"])
        if e.exit != ExitReason.KERNEL.value:
            given = [k for k in ("kernel", "dtb", "initrd") if k in self.t["expect"]]
            if given:
                raise self.fail(f"[expect] {given[0]}: a placement is only handed on "
                                f"with exit = \"kernel\" (this expects {e.exit!r})",
                                f"[expect] {given[0]}")
        if e.fatal is not None and e.exit != ExitReason.FATAL.value:
            raise self.fail("[expect] fatal: only with exit = \"fatal\"", "[expect] fatal")
        return e


# --- device tree helpers ----------------------------------------------------------

def generated_initrd(n: int) -> bytes:
    """n bytes of a recognisable, non-repeating pattern: a big-endian 32-bit
    counter (as default_initrd, which it equals for multiples of 4 bytes)."""
    words = array("I", range((n + 3) // 4))
    if words.itemsize != 4:      # (C's unsigned int is 4 bytes wherever bwemu runs)
        return b"".join(i.to_bytes(4, "big") for i in range(len(words)))[:n]
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()[:n]


def _u32(blob: bytes, off: int) -> int:
    return int.from_bytes(blob[off:off + 4], "big")


def header_ok(blob: bytes) -> bool:
    """A header whose blocks lie inside the blob: safe to hand to libfdt."""
    if len(blob) < FDT_HEADER or _u32(blob, 0) != FDT_MAGIC:
        return False
    total, struct_off, strings_off, rsv_off = (_u32(blob, o) for o in (4, 8, 12, 16))
    struct_size, strings_size = _u32(blob, 36), _u32(blob, 32)
    return (total <= len(blob) and rsv_off + 16 <= total
            and struct_off + struct_size <= total and strings_off + strings_size <= total)


def _tree_memory(blob: bytes) -> list[tuple[int, int]] | None:
    """The tree's RAM, or None when it cannot be read (a broken tree is a
    scenario too: the wrapper's own answer is its point)."""
    if not header_ok(blob):
        return None
    try:
        return DeviceTree(blob, "device tree").memory()
    except DeviceTreeError:
        return None


def _placeholder(blob: bytes) -> bool:
    try:
        return DeviceTree(blob, "device tree").memory_is_placeholder()
    except DeviceTreeError:
        return False


def add_reserves(blob: bytes, reserves: tuple[tuple[int, int], ...]) -> bytes:
    """The tree with reserves appended to its memory reserve map: the header,
    the map, then the structure and strings blocks as they were."""
    if not header_ok(blob):
        raise ScenarioError("[tree] reserve: the dtb's header cannot be read, so "
                            "nothing can be added to its reserve map")
    rsv_off, struct_off, strings_off = _u32(blob, 16), _u32(blob, 8), _u32(blob, 12)
    struct = blob[struct_off:struct_off + _u32(blob, 36)]
    strings = blob[strings_off:strings_off + _u32(blob, 32)]
    entries = []
    off = rsv_off
    while off + 16 <= len(blob):
        a, s = int.from_bytes(blob[off:off + 8], "big"), int.from_bytes(blob[off + 8:off + 16],
                                                                           "big")
        if a == 0 and s == 0:
            break
        entries.append((a, s))
        off += 16
    entries += list(reserves)
    rsvmap = b"".join(a.to_bytes(8, "big") + s.to_bytes(8, "big") for a, s in entries)
    rsvmap += bytes(16)
    new_rsv = FDT_HEADER
    new_struct = new_rsv + len(rsvmap)
    new_strings = new_struct + len(struct)
    total = new_strings + len(strings)
    head = bytearray(blob[:FDT_HEADER])
    for off, value in ((4, total), (8, new_struct), (12, new_strings), (16, new_rsv)):
        head[off:off + 4] = value.to_bytes(4, "big")
    return bytes(head) + rsvmap + struct + strings


# --- the layout, before anything runs -------------------------------------------

_wrapper_sizes: dict[tuple[Path, float], int] = {}


def wrapper_size_at_least(policy: str) -> int:
    """A lower bound of the wrapper image's size, for the layout check: the
    plain build's loaded span if it is already built (an attached initrd
    only adds to it), else 1 (the boot itself checks again)."""
    try:
        elf_path = FirmwareBuild(policy=policy).wrapper_elf
        key = (elf_path, elf_path.stat().st_mtime)
    except (OSError, FirmwareError):
        return 1
    if key not in _wrapper_sizes:
        try:
            elf = ElfImage(elf_path)
        except ElfImageError:
            return 1
        start, end = elf.span
        elf.close()
        _wrapper_sizes[key] = end - start
    return _wrapper_sizes[key]


def check_layout(path: Path, sc: Scenario) -> None:
    """Every blob the file places inside RAM and none overlapping another;
    the keys left out as kexec-tools would choose them."""
    if sc.memory is not None:
        ram: list[tuple[int, int]] | None = [(0, sc.memory)]
    else:
        ram = _tree_memory(sc.dtb)
    if not ram or sc.image is not None:
        return     # no RAM to speak of, or a foreign image of unknown size
    wrapper = wrapper_size_at_least(sc.policy) + len(sc.attached_initrd or b"")
    given = [("wrapper", "the wrapper", sc.wrapper_at, wrapper),
             ("dtb", "the device tree", sc.dtb_at, len(sc.dtb)),
             ("initrd", "the initrd", sc.initrd_at, len(sc.initrd or b""))]
    placed = [(k, what, at, n) for k, what, at, n in given if at is not None]
    blocks = ", ".join(f"0x{b:x}..0x{b + s:x}" for b, s in ram)
    for key, what, at, n in placed:
        if not any(b <= at and at + n <= b + s for b, s in ram):
            raise ScenarioFileError(path, f"[load] {key} = 0x{at:x}: {what} "
                                    f"(0x{n:x} bytes, up to 0x{at + n:x}) is not inside "
                                    f"RAM ({blocks})", f"[load] {key}")
    for i, (ka, wa, aa, na) in enumerate(placed):
        for kb, wb, ab, nb in placed[i + 1:]:
            if aa < ab + max(nb, 1) and ab < aa + max(na, 1):
                raise ScenarioFileError(
                    path, f"[load] {kb} = 0x{ab:x}: {wb} (0x{ab:x}..0x{ab + nb:x}) "
                    f"overlaps {wa} at [load] {ka} (0x{aa:x}..0x{aa + na:x})", f"[load] {kb}")
    try:
        place(sc, ram, wrapper)
    except ScenarioError as e:
        raise ScenarioFileError(path, f"[load]: {e}, with the addresses left out chosen "
                                f"as kexec-tools would", "[load]") from None


def load(path: Path | str) -> ScenarioFile:
    """Parses and checks one scenario file; every mistake is a
    ScenarioFileError, one line naming the file and the key."""
    path = Path(path)
    try:
        source = path.read_text()
    except UnicodeDecodeError:
        raise ScenarioFileError(path, "not a text file (TOML is UTF-8)") from None
    except OSError as e:
        raise ScenarioFileError(path, f"cannot read: {e.strerror}") from None
    tables = _check_keys(path, parse_toml(path, source))
    if "description" not in tables[""]:
        raise ScenarioFileError(path, "missing key 'description': one line on what this "
                                "scenario pins down", "description")
    b = _Builder(path, tables)
    try:
        sc = b.build()
    except ScenarioFileError:
        raise
    except ScenarioError as e:
        raise ScenarioFileError(path, str(e)) from None
    expect = b.expect()
    check_layout(path, sc)
    return ScenarioFile(path, tables[""]["description"], sc, expect, tables[""].get("xfail"))


__all__ = ["Expect", "NONE", "REGION_KINDS", "SCHEMA", "ScenarioFile", "ScenarioFileError",
           "add_reserves", "generated_initrd", "load", "read_description"]
