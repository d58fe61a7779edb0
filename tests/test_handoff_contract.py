"""The hand-off contract, checked at the jump before the kernel runs
(emulator/checkers/handoff.py): r3 a valid tree outside the kernel image,
r4 the kernel's address with the entry at r4 plus its ELF offset, r5 = 0;
the kernel image at r4 equal to its ELF, every PT_LOAD's file bytes and its
tail zeroed up to p_memsz; and, at the wrapper's first call into C, its
own .bss all zero.

Each failure is made in the guest at the jump (bw_enter_kernel's entry,
after the wrapper's last store, before the jump reads the registers), or
by booting a kernel whose ELF differs from the default one.

A part that could not be checked leaves the check without a verdict,
never passed: Linux's zImage around the test kernel, given an ELF that
is not quite the one it carries (another entry, an impossible p_memsz,
a link address at the top of the address space).
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from emulator import Boot, ExitReason, Scenario, boot, default_scenario
from emulator.checkers.handoff import HandoffCheck
from emulator.checkers.kernel_image import KernelLayout
from emulator.cli import main
from emulator.guest.elf import ElfImage, ElfImageError
from emulator.guest.machine import Machine
from emulator.guest.observer import CheckState, CheckStatus
from emulator.harness import scenarios_lib
from emulator.harness.firmware import ROOT, FirmwareBuild
from emulator.harness.result import BootResult

PHDR = struct.Struct(">IIQQQQQQ")      # Elf64_Phdr


def _at_jump(b: Boot, change) -> None:
    b.machine.on_code(b.image.function_entry("bw_enter_kernel"), lambda pc: change(b.machine))


def _layout(b: Boot) -> KernelLayout:
    layout = KernelLayout.from_elf(b.guest.kernel.path)
    assert layout is not None
    return layout


def test_a_clean_boot_checks_the_whole_contract():
    b = Boot(default_scenario())
    r = b.run()
    h = r.handoff_check
    assert r.passed
    assert h.kernel_at == r.handoff.kernel == 0
    assert h.kernel_image_ok is True and h.bss_zero is True
    assert h.to_json()["kernel_image"] == {"at": 0, "intact": True}


def _poke(m, address: int) -> None:
    m.write(address, bytes([m.read(address, 1)[0] ^ 0x40]))


@pytest.mark.parametrize("where", ["first file byte", "last file byte", "first tail byte",
                                   "last tail byte"])
def test_a_kernel_image_differing_in_one_byte_fails_the_hand_off(where):
    b = Boot(default_scenario())
    [seg] = _layout(b).segments
    offset = {"first file byte": 0, "last file byte": seg.filesz - 1,
              "first tail byte": seg.filesz, "last tail byte": seg.memsz - 1}[where]
    _at_jump(b, lambda m: _poke(m, m.reg("r4") + seg.offset + offset))
    r = b.run()
    h = r.handoff_check
    assert h.kernel_image_ok is False and not r.passed
    kind = "file byte" if "file" in where else "zeroed tail"
    assert [p for p in h.problems if p.startswith("kernel segment 0")] and kind in h.problems[0]
    assert f"0x{offset:x}" in h.problems[0]


def test_a_byte_just_past_the_kernel_image_is_not_the_kernels():
    b = Boot(default_scenario())
    size = _layout(b).size
    _at_jump(b, lambda m: m.write(m.reg("r4") + size, b"\x5a"))
    r = b.run()
    assert r.handoff_check.kernel_image_ok is True and r.passed


def test_r4_not_where_the_kernel_is_fails_the_hand_off():
    b = Boot(default_scenario())
    _at_jump(b, lambda m: m.set_reg("r4", m.reg("r4") + 0x1000))
    r = b.run()
    h = r.handoff_check
    assert not r.passed
    assert any("not at r4 + its entry offset" in p for p in h.problems), h.problems
    assert h.kernel_at == 0x1000 and h.kernel_image_ok is False


def test_a_tree_handed_on_inside_the_kernel_image_fails_the_hand_off():
    b = Boot(default_scenario())

    def tree_into_kernel(m) -> None:
        # the tree copied to the kernel's bss, r3 pointing at it
        size = int.from_bytes(m.read(m.reg("r3") + 4, 4), "big")
        m.write(0x8000, m.read(m.reg("r3"), size))
        m.set_reg("r3", 0x8000)
    _at_jump(b, tree_into_kernel)
    r = b.run()
    assert any("lies inside the kernel image" in p for p in r.handoff_check.problems)


def test_a_broken_tree_handed_on_fails_the_hand_off_though_its_magic_is_right():
    """No test handed on a broken tree: the structural check on it could be
    switched off and the suite still passed."""
    b = Boot(default_scenario())
    # size_dt_struct (header word 9) past totalsize: the magic still reads right
    _at_jump(b, lambda m: m.write(m.reg("r3") + 36, (0x7FFF_FFF0).to_bytes(4, "big")))
    r = b.run()
    h = r.handoff_check
    assert not r.passed and h.kernel_report is not None and h.kernel_report.dtb_magic_ok
    assert [p for p in h.problems if p.startswith("the tree handed on is broken: ")], \
        h.problems


def test_r3_at_no_tree_fails_the_hand_off_and_the_kernel_says_so_too():
    """Neither 'no device tree at r3' nor the kernel's own report of the
    missing magic was ever made to fire."""
    b = Boot(default_scenario())
    nowhere = 0x600_0000        # RAM the boot leaves to its fill pattern
    _at_jump(b, lambda m: m.set_reg("r3", nowhere))
    r = b.run()
    h = r.handoff_check
    assert r.reached_kernel and not r.passed
    assert not h.kernel_report.dtb_magic_ok
    assert f"no device tree at r3 = 0x{nowhere:x}" in h.problems
    assert "the kernel found no device tree magic at r3" in h.problems


def two_segment_kernel(elf: bytes, split: int) -> bytes:
    """The test kernel with its one PT_LOAD cut in two at `split` bytes:
    the same memory image, loaded by two program headers."""
    phoff = int.from_bytes(elf[32:40], "big")
    phnum = int.from_bytes(elf[56:58], "big")
    assert phnum == 1
    p_type, flags, offset, vaddr, paddr, filesz, memsz, align = PHDR.unpack_from(elf, phoff)
    assert split < filesz and phoff + 2 * PHDR.size <= offset
    out = bytearray(elf)
    out[56:58] = (2).to_bytes(2, "big")
    PHDR.pack_into(out, phoff, p_type, flags, offset, vaddr, paddr, split, split, align)
    PHDR.pack_into(out, phoff + PHDR.size, p_type, flags, offset + split, vaddr + split,
                   paddr + split, filesz - split, memsz - split, align)
    return bytes(out)


@pytest.fixture(scope="module")
def two_segments(tmp_path_factory):
    fw = FirmwareBuild().ensure_built()
    kernel = tmp_path_factory.mktemp("kernel") / "testkernel-2seg.elf"
    kernel.write_bytes(two_segment_kernel(fw.kernel_elf.read_bytes(), 0x200))
    return fw.compose(kernel), kernel


def test_a_kernel_of_two_segments_is_checked_segment_by_segment(two_segments):
    image, kernel = two_segments
    sc = Scenario(name="two-segments", dtb=default_scenario().dtb, image=image, kernel=kernel)
    assert [s.offset for s in KernelLayout.from_elf(kernel).segments] == [0, 0x200]
    r = boot(sc)
    assert r.passed, [str(c) for c in r.checks]
    assert r.handoff_check.kernel_image_ok is True

    b = Boot(sc)
    _at_jump(b, lambda m: _poke(m, m.reg("r4") + 0x200))
    r = b.run()
    assert r.handoff_check.problems[0].startswith("kernel segment 1: file byte 0x0 ")


# --- parts of the contract that could not be checked: no verdict, never passed ------

ZIMAGE_SCRIPT = ROOT / "scripts" / "build-linux-zimage"


@pytest.fixture(scope="module")
def zimage_epapr() -> Path:
    """Linux's own boot wrapper around the test kernel (as tests/test_foreign.py)."""
    kernel = FirmwareBuild().ensure_built().kernel_elf
    out = ROOT / "build" / "linux-zimage" / "testkernel"
    proc = subprocess.run([str(ZIMAGE_SCRIPT), str(kernel), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out / "zImage.epapr"


def doctored_kernel(tmp_path: Path, *, entry: int | None = None, vaddr: int | None = None,
                    memsz: int | None = None, flip: int | None = None) -> Path:
    """The test kernel's ELF with its e_entry, its one PT_LOAD's p_vaddr or
    p_memsz replaced, or the file byte `flip` bytes into the segment
    changed: the ELF given to bwemu, not the kernel the zImage carries."""
    elf = bytearray(FirmwareBuild().ensure_built().kernel_elf.read_bytes())
    phoff = int.from_bytes(elf[32:40], "big")
    p_type, flags, offset, p_vaddr, paddr, filesz, p_memsz, align = PHDR.unpack_from(elf, phoff)
    assert p_type == 1 and paddr == 0 and int.from_bytes(elf[56:58], "big") == 1
    if entry is not None:
        elf[24:32] = entry.to_bytes(8, "big")
    PHDR.pack_into(elf, phoff, p_type, flags, offset, p_vaddr if vaddr is None else vaddr,
                   paddr, filesz, p_memsz if memsz is None else memsz, align)
    if flip is not None:
        assert flip < filesz
        elf[offset + flip] ^= 0x40
    out = tmp_path / "kernel.elf"
    out.write_bytes(bytes(elf))
    return out


def _foreign(image: Path, kernel: Path | None) -> BootResult:
    r = boot(Scenario(name="zimage", dtb=default_scenario().dtb, image=image, entry="epapr",
                      kernel=kernel))
    assert r.reached_kernel, r.message
    return r


def _handoff(r: BootResult) -> CheckStatus:
    return next(c for c in r.checks if c.name == "handoff")


def test_a_kernel_entered_where_its_elf_does_not_say_leaves_the_hand_off_unchecked(
        zimage_epapr, tmp_path, capsys):
    # The zImage carries the test kernel; the ELF given says it starts at
    # the last word of its bss, which no code runs, so no fetch there is
    # ever seen: nothing was read at a jump.
    elf = ElfImage(FirmwareBuild().ensure_built().kernel_elf)
    [segment] = elf.segments
    entry = segment.vaddr + segment.memsz - 4
    kernel = doctored_kernel(tmp_path, entry=entry)
    r = _foreign(zimage_epapr, kernel)
    h = r.handoff_check
    assert r.handoff is None and h.kernel_report is not None
    status = _handoff(r)
    assert status.state is CheckState.NO_VERDICT, status
    assert "no hand-off to it was seen" in status.detail and f"0x{entry:x}" in status.detail
    rc = main(["boot", "--json", "--image", str(zimage_epapr), "--entry", "epapr",
               "--kernel", str(kernel)])
    out = json.loads(capsys.readouterr().out)
    assert out["checks"]["handoff"]["state"] == "no verdict"
    assert out["findings"]["handoff"]["registers"] is None
    assert out["findings"]["handoff"]["unchecked"] == h.unchecked
    # An attached checker with no verdict has not passed: no "OK ... with
    # a valid device tree" (said before, exit 0, with the tree unchecked).
    assert not r.passed and not out["passed"] and rc == 1
    assert out["verdict"].startswith("FAIL: kernel reached, but handoff reached no verdict")


def test_a_foreign_kernels_file_bytes_are_compared_though_its_bss_cannot_fit(
        zimage_epapr, tmp_path):
    # p_memsz far beyond RAM: the file bytes are still where the zImage put them
    huge = 0xFFFF_FFFF_FFFF_FF00
    r = _foreign(zimage_epapr, doctored_kernel(tmp_path, memsz=huge))
    h = r.handoff_check
    assert h.kernel_at == 0 and h.kernel_image_ok is True
    status = _handoff(r)
    assert status.state is CheckState.NO_VERDICT, status
    assert f"0x0..0x{huge:x}" in status.detail and "beyond RAM" in status.detail

    r = _foreign(zimage_epapr, doctored_kernel(tmp_path, memsz=huge, flip=0x100))
    h = r.handoff_check
    assert h.kernel_image_ok is False and not r.passed
    assert _handoff(r).state is CheckState.FAILED
    assert h.problems[0].startswith("kernel segment 0: file byte 0x100 at 0x100 ")


def test_a_foreign_kernel_elf_wrapping_past_2_64_is_refused_as_bad_input(
        zimage_epapr, tmp_path):
    # linked at the top of the address space: its segment would run past
    # 2^64 (this once booted, and the hand-off said the kernel was not in RAM)
    kernel = doctored_kernel(tmp_path, vaddr=0xFFFF_FFFF_FFFF_F000)
    with pytest.raises(ElfImageError, match=r"^the kernel ELF .*kernel\.elf: PT_LOAD 0 "
                       r"\(0xfffffffffffff000\+0x[0-9a-f]+\) ends past 2\^64$"):
        boot(Scenario(name="zimage", dtb=default_scenario().dtb, image=zimage_epapr,
                      entry="epapr", kernel=kernel))


def test_without_a_kernel_elf_the_hand_off_says_the_image_was_not_compared(zimage_epapr):
    r = _foreign(zimage_epapr, None)
    status = _handoff(r)
    assert status.state is CheckState.PASSED and r.handoff_check.kernel_image_ok is None
    assert "kernel image not compared (no kernel ELF given)" in status.detail
    r = _foreign(zimage_epapr, FirmwareBuild().ensure_built().kernel_elf)
    assert "kernel image equal to its ELF" in _handoff(r).detail


def test_a_run_that_stops_before_the_hand_off_has_no_verdict_saying_so():
    r = boot(scenarios_lib.get("no-rma"))
    status = _handoff(r)
    assert r.exit is ExitReason.FATAL and status.state is CheckState.NO_VERDICT
    assert status.detail == "the run ended (fatal) before any hand-off: nothing to check"


def test_a_wrapper_bss_outside_ram_is_not_checked_rather_than_passed():
    check = HandoffCheck(None)
    check.guest = SimpleNamespace(machine=Machine([(0, 0x10000)]))
    check._check_bss(0xF000, 0x11000)          # runs past the end of RAM
    assert check.bss_zero is None
    assert check.unchecked == ["the wrapper's .bss (0xf000..0x11000) is not in RAM: "
                               "not checked"]
