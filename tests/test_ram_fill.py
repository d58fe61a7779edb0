"""RAM that is not zero (emulator/harness/ram_fill.py): before the loads,
RAM holds a pattern wherever the boot can read before writing, so that a
wrapper relying on zeroed memory fails in bwemu as it would on hardware.

The two bugs Unicorn's zeroed RAM hid, each shown caught with the fill and
invisible without it: a .bss cleared only partly (crt0.S's loop patched in
the guest to step 16 bytes), and a kernel whose p_memsz tail is not zeroed
(the wrapper's memset of it skipped).
"""

from __future__ import annotations

import json

import pytest

from emulator import Boot, MemoryTree, boot, default_scenario
from emulator.checkers.kernel_image import KernelLayout
from emulator.cli import main
from emulator.harness import ram_fill
from emulator.harness.scenario import DEFAULT_RAM_FILL, ScenarioError
from emulator.harness.scenario_file import ScenarioFileError, load

STD_R0_0_R9 = 0xF809_0000       # std r0, 0(r9): crt0.S's bss clearing store
ADDI_R9_8 = 0x3929_0008         # addi r9, r9, 8: ... and its step
ADDI_R9_16 = 0x3929_0010
GiB = 1 << 30


def test_default_pattern_has_no_zero_byte():
    assert DEFAULT_RAM_FILL and all(DEFAULT_RAM_FILL)
    assert default_scenario().ram_fill == DEFAULT_RAM_FILL


@pytest.mark.parametrize("text,pattern", [
    ("0xdeadbeef", bytes.fromhex("deadbeef")), ("a5", b"\xa5"), ("0x5", b"\x05"),
    ("0x00ff", b"\x00\xff"), ("0xdead_beef", bytes.fromhex("deadbeef")),
    ("zero", b""), ("none", b""), ("0", b""), ("0x0000", b"")])
def test_patterns_are_hex_bytes_or_zero(text, pattern):
    assert ram_fill.parse_pattern(text) == pattern


@pytest.mark.parametrize("text", ["", "0x", "0xzz", "ff" * 65, "-1", "1.5"])
def test_a_bad_pattern_is_refused_by_name(text):
    with pytest.raises(ScenarioError, match="RAM fill"):
        ram_fill.parse_pattern(text)


def test_before_the_run_the_images_bss_and_stack_and_the_kernels_place_hold_the_pattern():
    b = Boot(default_scenario().replace(ram_fill=b"\x11\x22\x33"))
    bss = b.image.symbol_address("__bss_start")
    end = b.image.span.end
    for a in (bss, end - 1, 0, 0x1000, b.layout.dtb.end):      # stack's top, [0, S), after
        assert b.machine.read(a, 1)[0] == b"\x11\x22\x33"[a % 3], hex(a)
    text = b.image.symbol_address("_start_image")
    assert b.machine.read(text, 16) == b.image.elf.read(b.image.to_link(text), 16)
    assert b.machine.read(b.layout.dtb.address, 4) == bytes.fromhex("d00dfeed")


def test_zero_leaves_ram_as_unicorn_maps_it():
    b = Boot(default_scenario().replace(ram_fill=b""))
    assert b.ram_filled == []
    assert b.machine.read(b.image.symbol_address("__bss_start"), 64) == bytes(64)


def test_every_heap_block_lies_in_a_filled_window():
    """The heap starts where a range ends: every allocation is filled."""
    for sc in (default_scenario(),
               default_scenario().replace(dtb=MemoryTree(reserves=((0x800_0000, 0x1000),))
                                          .build(), kernel_bss=0x200_0000)):
        b = Boot(sc)
        r = b.run()
        assert r.passed, r.checks
        heap = r.mirror.timeline[-1].heap
        assert heap.nrecords >= 1
        for rec in heap.records[:heap.nrecords]:
            # its first bytes, up to a window's length
            want = min(rec.size, ram_fill.WINDOW - 0x2000)
            assert any(s <= rec.base and rec.base + want <= e for s, e in b.ram_filled), \
                (hex(rec.base), [(hex(s), hex(e)) for s, e in b.ram_filled])


def test_sixteen_gib_of_ram_gets_a_bounded_fill():
    sc = default_scenario().replace(dtb=MemoryTree(memory=((0, 16 * GiB),)).build())
    b = Boot(sc)
    filled = sum(e - s for s, e in b.ram_filled)
    assert filled < 4 << 20, filled
    assert b.run().passed


def test_a_kernel_of_a_gigabyte_fills_at_most_the_total():
    sc = default_scenario().replace(dtb=MemoryTree(memory=((0, 4 * GiB),)).build(),
                                    kernel_bss=GiB)
    b = Boot(sc)
    assert sum(e - s for s, e in b.ram_filled) <= ram_fill.TOTAL


def _crt0_bss_step(b: Boot) -> int:
    """The guest address of crt0.S's `addi r9, r9, 8` after its bss store."""
    start = b.image.entry
    words = [int.from_bytes(b.machine.read(start + 4 * i, 4), "big") for i in range(64)]
    i = next(i for i in range(63) if words[i] == STD_R0_0_R9 and words[i + 1] == ADDI_R9_8)
    return start + 4 * (i + 1)


@pytest.mark.parametrize("fill", [DEFAULT_RAM_FILL, b""], ids=["pattern", "zero"])
def test_a_bss_cleared_only_partly_is_caught_with_the_fill_and_hidden_without(fill):
    b = Boot(default_scenario().replace(ram_fill=fill))
    b.machine.write(_crt0_bss_step(b), ADDI_R9_16.to_bytes(4, "big"))   # every other word
    r = b.run()
    h = r.handoff_check
    if fill:
        assert h.bss_zero is False and not r.passed
        assert "the wrapper's .bss" in h.problems[0] and "not zero when C starts" in h.problems[0]
    else:
        assert h.bss_zero is True and r.passed        # the bug Unicorn's zero RAM hides


@pytest.mark.parametrize("fill", [DEFAULT_RAM_FILL, b""], ids=["pattern", "zero"])
def test_a_kernel_tail_left_unzeroed_is_caught_with_the_fill_and_hidden_without(fill):
    b = Boot(default_scenario().replace(ram_fill=fill))
    layout = KernelLayout.from_elf(b.guest.kernel.path)
    [seg] = layout.segments
    tail = seg.memsz - seg.filesz
    m = b.machine

    def skip_tail_memset(pc: int) -> None:       # the kernel goes to 0 here
        if m.reg("r3") == seg.offset + seg.filesz and m.reg("r5") == tail:
            m.set_reg("r5", 0)
    m.on_code(b.image.function_entry("memset"), skip_tail_memset)
    r = b.run()
    h = r.handoff_check
    assert r.handoff.kernel == 0
    if fill:
        assert h.kernel_image_ok is False and not r.passed
        assert "zeroed tail" in h.problems[0]
    else:
        assert h.kernel_image_ok is True and r.passed


def test_scenario_file_key(tmp_path):
    f = tmp_path / "fill.toml"
    f.write_text('description = "x"\n[load]\nram_fill = "0xa5a5"\n')
    assert load(f).scenario.ram_fill == b"\xa5\xa5"
    f.write_text('description = "x"\n[load]\nram_fill = "zero"\n')
    assert load(f).scenario.ram_fill == b""
    f.write_text('description = "x"\n[load]\nram_fill = 0xa5\n')
    assert load(f).scenario.ram_fill == b"\xa5"
    f.write_text('description = "x"\n')
    assert load(f).scenario.ram_fill == DEFAULT_RAM_FILL
    f.write_text('description = "x"\n[load]\nram_fill = "0xq"\n')
    with pytest.raises(ScenarioFileError, match=r"\[load\] ram_fill: '0xq': not a pattern"):
        load(f)


def test_cli_ram_fill(capsys):
    assert main(["boot", "--json", "--ram-fill", "zero"]) == 0
    assert json.loads(capsys.readouterr().out)["exit"] == "kernel"
    with pytest.raises(SystemExit) as e:
        main(["boot", "--ram-fill", "0xzz"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ram-fill" in err


def test_the_fill_is_deterministic():
    a, b = (boot(default_scenario()) for _ in range(2))
    assert a.final_dtb == b.final_dtb and a.passed and b.passed
