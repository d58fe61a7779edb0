"""The same wrapper image under QEMU's pseries machine and in bwemu.

The qemu-marked tests boot real QEMU (run them with `pytest -m qemu`); the
others pin down the pieces the comparison rests on and need no QEMU.
"""

from __future__ import annotations

import pytest

from emulator.guest.elf import ElfImage
from emulator.harness.firmware import FirmwareBuild
from emulator.harness.peer import (
    BIOS_ENTRY,
    EntryState,
    QemuPeer,
    bios_image,
    check,
    compare_consoles,
    expected_tree_address,
    parse_registers,
    qemu_available,
    run_bwemu,
    split_qemu_lines,
    window,
)

needs_qemu = pytest.mark.skipif(not qemu_available(),
                                reason="qemu-system-ppc64 is not installed")

CONSOLE = ("\nbwemu wrapper: running at 0x100..0x1c360 (loader said 0x0), "
           "device tree at 0x000000001fe00000\n"
           "kexec: real-mode area ends at 0x20000000\n"
           "kernel: 0x14570 bytes at 0x1d000\n"
           "entering kernel at 0x1d000, device tree at 0x0000000000032000\n")


def test_bios_image_puts_the_wrapper_entry_at_0x100():
    fw = FirmwareBuild().ensure_built()
    elf = ElfImage(fw.wrapper_elf)
    try:
        image = bios_image(elf)
        assert image[:BIOS_ENTRY] == bytes(BIOS_ENTRY)
        seg = min(elf.segments, key=lambda s: s.vaddr)
        assert elf.entry == seg.vaddr == 0
        assert image[BIOS_ENTRY:BIOS_ENTRY + len(seg.data)] == seg.data
        # mfmsr r0: crt0's first instruction is what QEMU runs at 0x100.
        assert image[BIOS_ENTRY:BIOS_ENTRY + 4] == bytes.fromhex("7c0000a6")
        assert len(image) == BIOS_ENTRY + max(s.vaddr + len(s.data)
                                              for s in elf.segments)
    finally:
        elf.close()


def test_identical_consoles_compare_equal_and_one_changed_digit_does_not():
    assert compare_consoles(CONSOLE, CONSOLE) == []
    changed = CONSOLE.replace("bytes at 0x1d000", "bytes at 0x1e000")
    diffs = compare_consoles(CONSOLE, changed)
    assert "-kernel: 0x14570 bytes at 0x1d000" in diffs
    assert "+kernel: 0x14570 bytes at 0x1e000" in diffs


def test_console_without_the_handoff_line_is_a_difference():
    cut = CONSOLE.split("entering")[0]
    assert window(cut) is None
    assert compare_consoles(CONSOLE, cut) == [
        "bwemu's console has no banner-to-hand-off window"]


def test_only_qemus_own_lines_are_removed():
    text = ("qemu-system-ppc64: warning: TCG doesn't support requested feature\n"
            + CONSOLE + "  qemu-system-ppc64: indented, so the guest's\n")
    kept, theirs = split_qemu_lines(text, "qemu-system-ppc64")
    assert theirs == ["qemu-system-ppc64: warning: TCG doesn't support "
                      "requested feature"]
    assert kept == CONSOLE + "  qemu-system-ppc64: indented, so the guest's\n"


def test_register_dump_is_parsed():
    dump = ("NIP 0000000000000100   LR 0000000000000000 CTR 0000000000000000\r\n"
            "MSR 0000000000000000 HID0 0000000000000000  HF 6c000000\r\n"
            "GPR00 0000000000000000 0000000000000000 0000000000000000 000000000fe00000\r\n"
            "GPR04 0000000000000004 0000000000000005 0000000000000000 0000000000000000\r\n")
    regs = parse_registers(dump)
    assert (regs["pc"], regs["msr"], regs["r1"], regs["r3"], regs["r4"],
            regs["r5"]) == (0x100, 0, 0, 0xFE00000, 4, 5)


def test_tree_address_is_two_mib_below_the_rma_capped_at_two_gib():
    assert expected_tree_address(256 << 20) == 0x0FE00000
    assert expected_tree_address(4 << 30) == 0x7FE00000


@pytest.mark.qemu
@needs_qemu
@pytest.mark.parametrize("policy,memory", [("fixed", None), ("fixed", "1G"),
                                           ("seed", None)],
                         ids=["default-memory", "1G", "seed-policy"])
def test_wrapper_prints_the_same_under_qemu_and_bwemu(policy, memory, tmp_path):
    report = check(FirmwareBuild(policy=policy), QemuPeer(memory), tmp_path)
    assert report.identical, report.summary()
    assert report.qemu.reason == "handoff"
    assert report.bwemu.exit == "kernel"
    lines = window(report.qemu.text)
    assert lines is not None and len(lines) >= 4
    regs = report.entry.regs
    assert (regs["pc"], regs["msr"], regs["r1"], regs["r4"], regs["r5"]) == (
        BIOS_ENTRY, 0, 0, 0, 0)
    assert regs["r3"] == expected_tree_address(report.rma)
    assert f"device tree at 0x{regs['r3']:016x}" in lines[0]
    # The tree dumped with dumpdtb is byte for byte the one the guest got
    # (with a fixed -seed: /chosen/rng-seed is random otherwise).
    assert report.dump == report.entry.tree


@pytest.mark.qemu
@needs_qemu
def test_peer_check_catches_an_entry_register_bwemu_gets_wrong(tmp_path):
    """bwemu given r4 = 0x100 (the kexec convention) where QEMU passes 0:
    the banner's "loader said" differs, and the comparison says so."""
    fw = FirmwareBuild()
    report = check(fw, QemuPeer(), tmp_path)
    assert report.identical, report.summary()
    wrong = EntryState(dict(report.entry.regs, r4=BIOS_ENTRY), report.entry.tree)
    _, result = run_bwemu(fw, wrong.tree, wrong)
    diffs = compare_consoles(report.qemu.text, result.console)
    assert any(d.startswith("+") and "loader said 0x100" in d for d in diffs)
    assert any(d.startswith("-") and "loader said 0x0" in d for d in diffs)
