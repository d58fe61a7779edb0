"""Flattened device trees built token by token, broken on purpose.

dtc and pylibfdt refuse to write a malformed tree, so the tests that need
one (a property running past its block, a second root, a strings block
without its NUL...) lay it out here: a header, a reserve map, a structure
block and a strings block, in dtc's order, every field computed unless a
test overrides it.  Also docs/kexec.md's table of structural-check rules,
read from the page itself, so that the texts the tests expect are the
documented ones.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

BEGIN_NODE, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9
HEADER_FIELDS = ["magic", "totalsize", "off_dt_struct", "off_dt_strings", "off_mem_rsvmap",
                 "version", "last_comp_version", "boot_cpuid_phys", "size_dt_strings",
                 "size_dt_struct"]
DOCS = Path(__file__).resolve().parent.parent / "docs"


def pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def word(v: int) -> bytes:
    return struct.pack(">I", v)


def begin(name: str | bytes = b"") -> bytes:
    """FDT_BEGIN_NODE and its name, NUL-terminated and padded."""
    raw = name.encode() if isinstance(name, str) else name
    return word(BEGIN_NODE) + pad4(raw + b"\0")


def end_node() -> bytes:
    return word(END_NODE)


def nop() -> bytes:
    return word(NOP)


def end() -> bytes:
    return word(END)


def prop(nameoff: int, value: bytes = b"", length: int | None = None) -> bytes:
    """FDT_PROP with its value; `length` overrides the length word."""
    n = len(value) if length is None else length
    return word(PROP) + word(n) + word(nameoff) + pad4(value)


class Strings:
    """A strings block built as properties name themselves."""

    def __init__(self) -> None:
        self.blob = b""

    def __call__(self, name: str) -> int:
        raw = name.encode() + b"\0"
        at = self.blob.find(raw)
        if at < 0:
            at = len(self.blob)
            self.blob += raw
        return at


def tree(structure: bytes, strings: bytes = b"",
         reserves: list[tuple[int, int]] | None = None, **fields: int) -> bytes:
    """Header, reserve map (with its terminator), structure block, strings
    block; each header field may be overridden by name."""
    rsv = b"".join(struct.pack(">QQ", a, s) for a, s in reserves or []) + bytes(16)
    off_rsv = 40
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(structure)
    body = rsv + structure + strings
    values = {"magic": 0xD00DFEED, "totalsize": 40 + len(body), "off_dt_struct": off_struct,
              "off_dt_strings": off_strings, "off_mem_rsvmap": off_rsv, "version": 17,
              "last_comp_version": 16, "boot_cpuid_phys": 0,
              "size_dt_strings": len(strings), "size_dt_struct": len(structure)}
    unknown = set(fields) - set(values)
    assert not unknown, unknown
    values.update(fields)
    return b"".join(word(values[f]) for f in HEADER_FIELDS) + body


def memory_tree(memory: tuple[int, int] = (0, 256 << 20), *, root_props: bytes = b"",
                before: bytes = b"", after: bytes = b"",
                chosen: list[tuple[str, bytes]] | None = None) -> tuple[bytes, Strings]:
    """The structure block of a small bootable tree (2/2 cells, memory@0),
    and its strings: `before` and `after` are raw node tokens around the
    memory node; `chosen` its properties by name."""
    s = Strings()
    body = (begin() + prop(s("#address-cells"), word(2)) + prop(s("#size-cells"), word(2))
            + root_props + before
            + begin("memory@0") + prop(s("device_type"), b"memory\0")
            + prop(s("reg"), struct.pack(">QQ", *memory)) + end_node())
    if chosen is not None:
        body += begin("chosen") + b"".join(prop(s(n), v) for n, v in chosen) + end_node()
    return body + after + end_node() + end(), s


def check_rule_texts() -> dict[int, str]:
    """{rule number: text} from docs/kexec.md's structural-check tables."""
    page = (DOCS / "kexec.md").read_text()
    section = page.split("## The structural check", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| .* \| `([^`]+)` \|$", section, re.MULTILINE)
    return {int(n): text for n, text in rows}
