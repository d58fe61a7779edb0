"""The hand-off of an image that does not name it.

Our wrapper jumps to the kernel from bw_enter_kernel, which the runner
hooks.  A foreign image (Linux's zImage, a vendor's wrapper) has no such
symbol, so the hand-off is taken to be (docs/guest-abi.md, "Hand-off"):

- with the kernel's ELF given: the first instruction fetched at the
  kernel's entry point, either as linked (e_entry) or as placed at 0
  (e_entry less its lowest p_vaddr: ppc64 wrappers copy the kernel to 0);
- without it: the first instruction fetched outside the image's loaded
  span (code, data and bss).

Both are block hooks on everything outside the image, removed at the
first hit: the kernel then runs with no Python callback per block.  A
block hook sees a block's first instruction only, and a block that runs
straight off the image's end (no branch: the last instruction falls
through) starts inside it; a code hook on the one word past the end
catches that fetch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE

from .addresses import LoadedImage
from .elf import ElfImage
from .machine import Machine

TOP = (1 << 64) - 1


def kernel_entries(path: Path) -> frozenset[int]:
    """Where a kernel ELF can be entered: at e_entry, or placed at 0."""
    elf = ElfImage(path)
    try:
        low = min(s.vaddr for s in elf.segments)
        return frozenset({elf.entry, elf.entry - low})
    finally:
        elf.close()


class HandoffByFetch:
    """Calls on_handoff(pc) at the first fetch that is the hand-off."""

    def __init__(self, machine: Machine, image: LoadedImage, kernel: Path | None,
                 on_handoff: Callable[[int], None]) -> None:
        self.machine = machine
        self.on_handoff = on_handoff
        self.entries = kernel_entries(kernel) if kernel is not None else None
        self.done = False
        span = image.span
        self.hooks = []
        for begin, end in ((0, span.address - 1), (span.end, TOP)):
            if begin <= end and begin <= TOP:
                self.hooks.append(machine.uc.hook_add(UC_HOOK_BLOCK, self._fetched,
                                                      begin=begin, end=end))
        if span.end <= TOP:
            self.hooks.append(machine.uc.hook_add(UC_HOOK_CODE, self._fetched,
                                                  begin=span.end, end=span.end))

    def _fetched(self, uc: Any, address: int, size: int, user: Any) -> None:
        if self.done or (self.entries is not None and address not in self.entries):
            return
        self.done = True
        for h in self.hooks:
            uc.hook_del(h)
        self.on_handoff(address)


__all__ = ["HandoffByFetch", "kernel_entries"]
