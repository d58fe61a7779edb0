"""End-to-end boots of the real wrapper, checked against expectations
computed independently in Python (pylibfdt, gzip, pyelftools)."""

from __future__ import annotations

import gzip
import io
import re

import libfdt
import pytest
from elftools.elf.elffile import ELFFile

from emulator import Boot, MemoryTree, boot, default_scenario
from emulator.guest.devices import initrd_checksum
from emulator.guest.elf import ElfImage
from emulator.report import verdict
from treeread import tree_contents

MiB = 1 << 20


def chosen(dtb: bytes) -> dict[str, bytes]:
    return tree_contents(dtb)["/chosen"]


def test_default_boot_reaches_kernel_with_tree_and_initrd():
    sc = default_scenario()
    r = boot(sc)
    assert r.exit == "kernel", r.message
    assert r.kernel_report.dtb == r.handoff.dtb == r.dtb.address
    assert r.kernel_report.dtb_magic_ok
    assert r.initrd_intact is True
    assert r.kernel_report.initrd_checksum == initrd_checksum(sc.initrd)
    assert verdict(r).startswith("OK")


@pytest.mark.parametrize("wrapper_at", [0x2000000, 0x4560000, 0x9A30000])
def test_wrapper_runs_where_it_was_loaded(wrapper_at):
    r = boot(default_scenario().replace(wrapper_at=wrapper_at))
    assert r.exit == "kernel", r.message
    m = re.search(r"running at 0x([0-9a-f]+)\.\.0x([0-9a-f]+)", r.console)
    assert m and int(m.group(1), 16) == wrapper_at
    assert int(m.group(2), 16) == r.layout.wrapper.end
    assert r.initrd_intact


def test_final_tree_names_the_initrd_and_keeps_the_rest():
    sc = default_scenario()
    r = boot(sc)
    props = chosen(r.final_dtb)
    start = int.from_bytes(props["linux,initrd-start"], "big")
    end = int.from_bytes(props["linux,initrd-end"], "big")
    assert (start, end - start) == (r.layout.initrd.address, len(sc.initrd))
    assert props["bootargs"].rstrip(b"\0") == b"console=hvc0"
    fdt = libfdt.Fdt(bytearray(r.final_dtb))
    mem = fdt.getprop(fdt.path_offset("/memory@0"), "reg")
    assert bytes(mem) == (0).to_bytes(8, "big") + (256 * MiB).to_bytes(8, "big")


def test_boot_without_initrd_hands_over_none():
    r = boot(default_scenario().replace(initrd=None))
    assert r.exit == "kernel"
    assert r.initrd is None and r.initrd_intact is None
    assert "linux,initrd-start" not in chosen(r.final_dtb)
    assert not r.kernel_report.has_initrd


def payload_segments(wrapper_elf) -> tuple[list[tuple[int, bytes, int]], int]:
    """The kernel inside the image, inflated here: (paddr, data, memsz)."""
    img = ElfImage(wrapper_elf)
    start = img.symbol("_vmlinux_start").value
    end = img.symbol("_vmlinux_end").value
    blob = b"".join(s.data for s in img.segments)[start:end]
    elf = ELFFile(io.BytesIO(gzip.decompress(blob)))
    segs = [(s["p_paddr"], s.data(), s["p_memsz"]) for s in elf.iter_segments()
            if s["p_type"] == "PT_LOAD"]
    return segs, elf["e_entry"]


@pytest.mark.parametrize("kernel_bss", [None, 64 * MiB])
def test_kernel_bytes_at_handoff_equal_the_inflated_payload(kernel_bss):
    # With a 64 MiB bss the kernel cannot go to 0 and lands in the heap.
    sc = default_scenario().replace(kernel_bss=kernel_bss)
    b = Boot(sc)
    b.stop_at_handoff = True
    r = b.run()
    assert r.exit == "handoff", r.message
    segs, entry = payload_segments(b.image.elf.path)
    base = min(p for p, _, _ in segs)
    kaddr = r.handoff.kernel
    assert (kaddr == 0) == (kernel_bss is None)
    assert r.handoff.entry == kaddr + entry - base
    for paddr, data, memsz in segs:
        got = b.machine.read(kaddr + paddr - base, memsz)
        assert got[:len(data)] == data
        assert got[len(data):] == bytes(memsz - len(data))


@pytest.mark.parametrize("console", ["hvc", "uart"])
def test_both_console_kinds_carry_the_wrapper_output(console):
    tree = MemoryTree(console=console)
    r = boot(default_scenario().replace(dtb=tree.build()))
    assert r.exit == "kernel"
    assert "bwemu wrapper: running at" in r.console
    assert "entering kernel at" in r.console


def test_no_console_in_tree_still_boots_silently():
    r = boot(default_scenario().replace(dtb=MemoryTree(console="none").build()))
    assert r.exit == "kernel"
    assert r.console == ""


def test_bad_magic_gives_the_wrappers_own_fatal_message():
    dtb = bytearray(MemoryTree().build())
    dtb[0:4] = b"\xd0\x0d\xfe\xef"
    r = boot(default_scenario().replace(dtb=bytes(dtb), initrd=None))
    assert r.exit == "fatal"
    assert r.message.startswith("FATAL: device tree at")
    assert "bad magic" in r.message
    assert r.location.function == "bw_stop"
    assert verdict(r).startswith("FAIL")


def test_runaway_wrapper_ends_on_the_budget():
    b = Boot(default_scenario().replace(budget=2_000_000))
    entry = b.image.function_entry("console_open")
    b.machine.write(entry, bytes.fromhex("48000000"))   # b .
    r = b.run()
    assert r.exit == "budget"
    assert "budget exhausted" in r.message
    assert r.pc == entry
    assert r.location.function == "console_open"


def test_corrupted_initrd_is_detected_by_the_checksum():
    # The harness's check can fail: damage one byte after loading.
    b = Boot(default_scenario())
    at = b.layout.initrd.address + 100
    b.machine.write(at, bytes([b.machine.read(at, 1)[0] ^ 0xFF]))
    r = b.run()
    assert r.exit == "kernel"
    assert r.initrd_intact is False
    assert verdict(r).startswith("FAIL")


def test_attached_initrd_is_moved_to_the_heap_and_handed_over():
    data = bytes(range(256)) * 300
    r = boot(default_scenario().replace(initrd=None, attached_initrd=data))
    assert r.exit == "kernel", r.message
    assert r.initrd.size == len(data)
    assert r.initrd_intact is True
    assert not (r.layout.wrapper.address <= r.initrd.address < r.layout.wrapper.end)


def test_uncompressed_kernel_payload_is_accepted():
    sc = default_scenario().replace(compressed_kernel=False)
    b = Boot(sc)
    b.stop_at_handoff = True
    r = b.run()
    assert r.exit == "handoff", r.message
    img = ElfImage(b.image.elf.path)
    raw = b"".join(s.data for s in img.segments)[
        img.symbol("_vmlinux_start").value:img.symbol("_vmlinux_end").value]
    assert raw[:4] == b"\x7fELF"   # really carried as it is
    elf = ELFFile(io.BytesIO(raw))
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD":
            assert b.machine.read(r.handoff.kernel + seg["p_paddr"], seg["p_filesz"]) \
                == seg.data()
    assert boot(sc).initrd_intact is True


@pytest.mark.parametrize("watch", [False, True])
def test_kernel_copied_over_a_low_wrapper_runs_its_own_code(watch):
    # The kernel copies itself to 0 over the wrapper's translated code:
    # without a flush at the hand-off Unicorn kept running the wrapper's.
    # The kernel also runs the hand-off address again: one hand-off only.
    sc = default_scenario().replace(
        dtb=MemoryTree(memory=((0, 1 << 30),)).build(), wrapper_at=0x100)
    b = Boot(sc, watch=watch)
    seen = []
    b.on_handoff(seen.append)
    r = b.run()
    assert r.exit == "kernel", r.message
    assert r.kernel_report.dtb_magic_ok and r.initrd_intact
    assert len(seen) == 1 and seen[0] == r.handoff


def test_a_command_line_that_is_not_utf8_is_handed_on_as_its_bytes():
    """--cmdline $'\\xff\\xfe ...' reaches argparse as surrogate escapes;
    setprop_str raised UnicodeEncodeError on them.  bootargs is bytes."""
    text = b"\xff\xfe root=/dev/ram".decode("utf-8", "surrogateescape")
    r = boot(default_scenario().replace(cmdline=text))
    assert r.passed, r.message
    assert chosen(r.final_dtb)["bootargs"] == b"\xff\xfe root=/dev/ram\0"


def test_a_command_line_holding_a_nul_is_refused_by_name():
    from emulator.guest.devicetree import DeviceTreeError
    with pytest.raises(DeviceTreeError, match=r"the command line \(bootargs\) holds a NUL "
                       r"byte at 1"):
        boot(default_scenario().replace(cmdline="a\0b"))
