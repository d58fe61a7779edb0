"""The kinds of address bwemu deals in, and the one place that converts them.

- A *link address* is where the ELF says something is (st_value, p_vaddr,
  a DWARF line row).  Only ElfImage speaks in link addresses.
- A *guest address* is a physical address in the running guest (real
  mode: no translation): a PC, a store's target, a placement.

An image loaded away from its link address (the wrapper is position
independent, and a chain-loader puts it where it likes) differs by one
offset, and LoadedImage is the only code that adds or subtracts it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NewType, TypeVar

from . import image_cache
from .elf import ElfImage, SourceLocation, Symbol

T = TypeVar("T")

LinkAddress = NewType("LinkAddress", int)
GuestAddress = NewType("GuestAddress", int)


@dataclass(frozen=True)
class Placement:
    """[address, address + size) of guest memory, named by what lies there."""
    address: int
    size: int

    @property
    def end(self) -> int:
        return self.address + self.size

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.address <= addr and addr + size <= self.end

    def overlaps(self, other: Placement) -> bool:
        return self.address < other.end and other.address < self.end


class LoadedImage:
    """An ElfImage as it sits in guest memory: `offset` added to every
    link address (0 for an image at its link address)."""

    def __init__(self, elf: ElfImage, offset: int) -> None:
        self.elf = elf
        self.offset = offset
        start, end = elf.span
        #: Everything the image loads, bss included, in guest addresses.
        self.span = Placement(start + offset, end - start)

    @classmethod
    def at(cls, elf: ElfImage, load_address: int) -> LoadedImage:
        """The image with its lowest loaded byte at load_address."""
        return cls(elf, load_address - elf.span[0])

    def to_guest(self, link: int) -> GuestAddress:
        return GuestAddress(link + self.offset)

    def to_link(self, guest: int) -> LinkAddress | None:
        """The link address of a guest address inside the image, else None."""
        if not self.span.contains(guest):
            return None
        return LinkAddress(guest - self.offset)

    @property
    def entry(self) -> GuestAddress:
        return self.to_guest(self.elf.entry)

    def symbol(self, name: str) -> Symbol:
        return self.elf.symbol(name)

    def has_symbol(self, name: str) -> bool:
        return name in self.elf.symbols

    def symbol_address(self, name: str) -> GuestAddress:
        """Where a data symbol (or an ELFv1 descriptor) is in the guest."""
        return self.to_guest(self.elf.symbol(name).value)

    def function_entry(self, name: str) -> GuestAddress:
        """A function's code in the guest (through .opd for ELFv1)."""
        return self.to_guest(self.elf.function_entry(name))

    def local_entry(self, name: str) -> GuestAddress:
        """Where a `bl` from inside the image lands (ELFv2 local entry)."""
        return self.to_guest(self.elf.local_entry(name))

    def locate(self, guest: int) -> SourceLocation | None:
        """Function and source line of a guest PC inside the image."""
        link = self.to_link(guest)
        return None if link is None else self.elf.locate(link)

    @cached_property
    def _code(self) -> list[tuple[GuestAddress, int]]:
        out: list[tuple[GuestAddress, int]] = []
        for seg in self.elf.segments:
            if seg.executable:
                base = self.to_guest(seg.vaddr)
                words = struct.iter_unpack(">I", seg.data[:len(seg.data) & ~3])
                out += [(GuestAddress(base + 4 * i), w) for i, (w,) in enumerate(words)]
        return out

    def code_words(self) -> list[tuple[GuestAddress, int]]:
        """Every word of the image's executable segments, where it lies in
        the guest (for scans for instructions such as mftb or `b .`)."""
        return self._code

    def scan_code(self, kind: str,
                  match: Callable[[int], T | None]) -> list[tuple[GuestAddress, T]]:
        """(guest address, match(word)) of every word of the executable
        segments for which match gives something: the scan for mftb, `b .`
        and the like, made once per image content for each kind (the
        answers are kept in link addresses: emulator/guest/image_cache.py).
        The same kind must always come with the same match."""
        def scan(_path: object) -> list[tuple[int, T]]:
            out: list[tuple[int, T]] = []
            for seg in self.elf.segments:
                if seg.executable:
                    n = len(seg.data) // 4
                    words = struct.unpack(f">{n}I", seg.data[:4 * n])
                    out += [(seg.vaddr + 4 * i, hit) for i, w in enumerate(words)
                            if (hit := match(w)) is not None]
            return out
        found = image_cache.fact(self.elf.path, f"{type(self.elf).__name__}-scan-{kind}", scan)
        return [(self.to_guest(a), hit) for a, hit in found]

    def segments(self) -> list[tuple[GuestAddress, bytes]]:
        """Each PT_LOAD's file bytes and where they go in the guest."""
        return [(self.to_guest(s.vaddr), s.data) for s in self.elf.segments]


__all__ = ["GuestAddress", "LinkAddress", "LoadedImage", "Placement"]
