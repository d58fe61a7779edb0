"""The wrapper drives an ns16550 at the register offsets its node gives:
register r at r << reg-shift, accessed reg-io-width bytes wide.  bwemu's
UART model is lenient (any offset reads as some register), so the offsets
themselves are pinned here: the wrapper polls LSR (5) and writes THR (0)
and touches nothing else, at the spacing reg-shift asks for."""

from __future__ import annotations

import pytest
from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MEM_READ

from emulator import Boot
from emulator.harness.firmware import ROOT
from emulator.harness.scenario_file import load

THR, LSR = 0, 5


@pytest.mark.parametrize("name", ["board-2-1-cells-nested", "board-1cell-uart", "console-uart"])
def test_the_uart_is_accessed_at_its_registers_spacing_and_width(name):
    b = Boot(load(ROOT / "scenarios" / f"{name}.toml").scenario)
    con = b.tree.console()
    assert con is not None and con.kind == "uart"
    seen: set[tuple[str, int, int]] = set()

    def access(uc, kind, address, size, value, user) -> None:
        seen.add(("read" if kind == UC_MEM_READ else "write", address - con.address, size))
    b.machine.uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, access,
                          begin=con.address, end=con.address + (8 << con.reg_shift) - 1)
    r = b.run()
    assert r.passed and "bwemu wrapper" in r.console
    assert seen == {("read", LSR << con.reg_shift, con.io_width),
                    ("write", THR << con.reg_shift, con.io_width)}, (con, seen)
