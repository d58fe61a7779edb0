"""The hand-off contract, checked at the jump before the kernel runs
(emulator/checkers/handoff.py): r3 a valid tree outside the kernel image,
r4 the kernel's address with the entry at r4 plus its ELF offset, r5 = 0;
the kernel image at r4 equal to its ELF, every PT_LOAD's file bytes and its
tail zeroed up to p_memsz; and, at the wrapper's first call into C, its
own .bss all zero.

Each failure is made in the guest at the jump (bw_enter_kernel's entry,
after the wrapper's last store, before the jump reads the registers), or
by booting a kernel whose ELF differs from the default one.
"""

from __future__ import annotations

import struct

import pytest

from emulator import Boot, Scenario, boot, default_scenario
from emulator.checkers.kernel_image import KernelLayout
from emulator.harness.firmware import FirmwareBuild

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
