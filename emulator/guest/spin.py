"""A guest that prints and spins: Linux's boot wrapper ends a fatal error
with its message on the console and a branch to itself (`b .`, 0x48000000:
primary opcode 18, displacement 0, AA = LK = 0).  Waiting for the budget to
run out would take seconds and call it a runaway; instead every such
instruction in the image's code gets a block hook (it is always the start
of a translation block, being its own branch target), and reaching one
ends the run as "fatal" with the console's last line: within one
instruction of the spin.
"""

from __future__ import annotations

from typing import Any

from unicorn import UC_HOOK_BLOCK

from .addresses import LoadedImage
from .devices import Console
from .machine import Machine

BRANCH_TO_SELF = 0x48000000


def _branch_to_self(word: int) -> bool | None:
    return True if word == BRANCH_TO_SELF else None


class SpinStop:
    """Stops the machine at the first branch-to-self in the image."""

    def __init__(self, machine: Machine, image: LoadedImage, console: Console) -> None:
        self.machine = machine
        self.console = console
        self.sites = [addr for addr, _ in image.scan_code("spin", _branch_to_self)]
        for addr in self.sites:
            machine.uc.hook_add(UC_HOOK_BLOCK, self._spin, begin=addr, end=addr)

    def _spin(self, uc: Any, address: int, size: int, user: Any) -> None:
        lines = [line for line in self.console.text.splitlines() if line.strip()]
        # Silence usually means the image found no console it has a driver
        # for in the tree (Linux's knows ns16550, not the PAPR vty).
        last = lines[-1].strip() if lines else (
            "(nothing printed: if the image has a console, its driver may not match the "
            "tree's; --uart adds an ns16550 as the console)")
        self.machine.stop("fatal", f"{last} (then spins at pc 0x{address:x})", address)


__all__ = ["BRANCH_TO_SELF", "SpinStop"]
