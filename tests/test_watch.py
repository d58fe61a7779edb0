"""The protected-range watch (emulator/watch.py): stores into memory that
is still needed are reported with their region, PC, function and line.

The seed's hole is built from docs/kexec.md: a chain-loader's initrd low in
memory ([0x80000, 0x98000)) and a kernel whose memory size (1 MiB of bss)
covers it.  [0, S) is then not free, so the kernel goes to the heap; when
it starts it copies itself to 0 and clears its bss, clearing the initrd.
The fixed policy moves the initrd first.
"""

from __future__ import annotations

import json
import re

from emulator import Boot, default_scenario
from emulator.checkers.watch import KERNEL, WRAPPER
from emulator.cli import main
from emulator.harness.firmware import ROOT

HEAD_S = ROOT / "firmware" / "testkernel" / "head.S"
INITRD_AT = 0x80000
KERNEL_BSS = 0x100000

def head_line(pattern: str) -> int:
    """The line of head.S whose code matches pattern (exactly one)."""
    hits = [i for i, text in enumerate(HEAD_S.read_text().splitlines(), 1)
            if re.match(pattern, text.split("/*")[0].strip())]
    assert len(hits) == 1, (pattern, hits)
    return hits[0]


def hole(policy: str):
    return default_scenario().replace(initrd_at=INITRD_AT, kernel_bss=KERNEL_BSS,
                                      policy=policy)


def cli(capsys, *args: str) -> tuple[int, dict]:
    rc = main(["boot", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def test_default_boot_writes_no_protected_memory(capsys):
    rc, out = cli(capsys)
    assert out["overwrites"] == []
    assert out["exit"] == "kernel"
    assert rc == 0


def test_seed_hole_kernel_clears_the_initrd_and_is_reported_with_its_line():
    b = Boot(hole("seed"))
    r = b.run()
    assert r.exit == "kernel", r.message
    assert r.initrd_intact is False
    assert r.handoff.kernel != 0          # the kernel did not fit at 0
    [ow] = r.overwrites
    assert ow.region == "initrd (from the chain-loader)"
    assert ow.phase == KERNEL
    # One entry for the whole bss-clearing loop: every doubleword of it.
    assert (ow.address, ow.size, ow.count) == (INITRD_AT, 0x18000, 0x18000 // 8)
    assert ow.last == INITRD_AT + 0x18000
    assert ow.function == "_kstart"
    assert ow.file == "head.S"
    assert ow.line == head_line(r"std\s+%r0,\s*0\(%r9\)")
    # The range table at that moment still records the initrd where it was.
    assert (INITRD_AT, INITRD_AT + 0x18000) in ow.ranges
    assert ow.heap is not None and ow.heap[0] > INITRD_AT


def test_seed_hole_cli_reports_the_store_and_exits_non_zero(capsys):
    rc, out = cli(capsys, "--policy", "seed", "--initrd-at", hex(INITRD_AT),
                  "--kernel-bss", hex(KERNEL_BSS))
    assert rc != 0
    assert out["verdict"].startswith("FAIL")
    [ow] = out["overwrites"]
    assert ow["region"] == "initrd (from the chain-loader)"
    assert (ow["address"], ow["size"], ow["phase"]) == (INITRD_AT, 0x18000, "kernel")
    assert (ow["function"], ow["file"]) == ("_kstart", "head.S")
    assert ow["line"] == head_line(r"std\s+%r0,\s*0\(%r9\)")


def test_fixed_policy_boots_the_hole_scenario_cleanly(capsys):
    r = Boot(hole("fixed")).run()
    assert r.exit == "kernel", r.message
    assert r.overwrites == []
    assert r.initrd_intact is True
    assert r.initrd.address != INITRD_AT     # moved out of the kernel's way
    rc, out = cli(capsys, "--policy", "fixed", "--initrd-at", hex(INITRD_AT),
                  "--kernel-bss", hex(KERNEL_BSS))
    assert out["overwrites"] == [] and out["initrd_intact"] is True
    assert rc == 0


def test_watch_can_be_turned_off():
    b = Boot(hole("seed"), watch=False)
    assert "watch" not in b.observers
    assert b.run().overwrites == []


def _redirect_fdt_open_into(b: Boot, target: int) -> None:
    """A wrapper bug made to order: the final tree copied to target."""
    entry = b.image.function_entry("fdt_open_into")
    b.machine.on_code(entry, lambda pc: b.machine.set_reg("r4", target))


def test_wrapper_store_into_its_own_text_is_caught_with_wrapper_line():
    b = Boot(default_scenario())
    text = b.image.symbol_address("_start_image") + 0x100
    _redirect_fdt_open_into(b, text)
    r = b.run()
    hits = [o for o in r.overwrites if o.region == "wrapper text, rodata and payload"]
    assert hits, r.overwrites
    first = min(hits, key=lambda o: o.address)
    assert first.address == text
    assert first.phase == WRAPPER
    loc = b.image.locate(first.pc)
    assert first.function == loc.function is not None
    # A wrapper source: the store may sit in a header's inline helper.
    assert first.file is not None and first.file.endswith((".c", ".h"))
    assert (ROOT / "firmware").joinpath(first.file).exists() or \
        any((ROOT / "firmware").rglob(first.file))
    assert first.line == loc.line is not None
    assert b.image.span.contains(first.pc)


def test_store_outside_ram_is_reported_and_stops_the_run():
    b = Boot(default_scenario())
    nowhere = 0x4000_0000_0000
    _redirect_fdt_open_into(b, nowhere)
    r = b.run()
    assert r.exit == "exception"
    [ow] = r.overwrites
    assert ow.region == "outside RAM"
    # The copy may run backwards: the first store lands anywhere in the tree.
    assert nowhere <= ow.address < nowhere + 0x2000
    assert ow.phase == WRAPPER
    assert ow.function is not None and ow.file.endswith(".c")


def test_kernel_store_into_the_final_tree_is_caught_by_a_hook_added_at_handoff():
    # At the hand-off, make the kernel's second instruction a store into the
    # tree it was handed (stw r31, 0x14(r31); r31 = r3 after the first).
    b = Boot(default_scenario())
    stw = (36 << 26 | 31 << 21 | 31 << 16 | 0x14).to_bytes(4, "big")

    def patch(pc: int) -> None:
        b.machine.write(b.machine.reg("r5") + 4, stw)
    b.machine.on_code(b.image.function_entry("bw_enter_kernel"), patch)
    r = b.run()
    assert r.exit == "kernel", r.message
    [ow] = r.overwrites
    assert ow.region == "final device tree"
    assert (ow.address, ow.size) == (r.handoff.dtb + 0x14, 4)
    assert ow.phase == KERNEL
    assert (ow.function, ow.file) == ("_kstart", "head.S")
    assert ow.line == head_line(r"mr\s+%r30,\s*%r4")
    assert any(reg.name == "final device tree" for reg in b.observers["watch"].regions)


def test_reserve_inside_the_kernels_footprint_is_reported_under_fixed_too():
    from emulator.harness.scenario import MemoryTree
    tree = MemoryTree(reserves=((0x40000, 0x1000),)).build()
    sc = default_scenario().replace(dtb=tree, kernel_bss=KERNEL_BSS)
    r = Boot(sc).run()
    regions = {o.region for o in r.overwrites}
    assert regions == {"reserve map entry 0"}, r.overwrites
    assert all(o.phase == KERNEL and o.function == "_kstart" for o in r.overwrites)
    assert sum(o.size for o in r.overwrites) == 0x1000
