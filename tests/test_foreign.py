"""Images bwemu did not build: Linux 6.1's own boot wrapper (zImage.epapr,
zImage.pseries, from Debian's linux-source-6.1) around bwemu's test kernel,
booted from the CLI as a user would, plus the pieces that make that work
(ELF32, entry conventions, timebase, spin detection, tree fix-ups)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import libfdt
import pytest

from emulator import ExitReason, MemoryTree, Scenario, boot
from emulator.cli import main
from emulator.errors import InputError
from emulator.guest.addresses import LoadedImage
from emulator.guest.devices import Console
from emulator.guest.elf import ElfImage, ElfImageError
from emulator.guest.entry import EPAPR_MAGIC, MSR_SF, entry_state
from emulator.guest.machine import Machine
from emulator.guest.observer import CheckState
from emulator.guest.timebase import TICKS_PER_INSTRUCTION, Timebase
from emulator.harness.firmware import ROOT, FirmwareBuild

ZIMAGE_SCRIPT = ROOT / "scripts" / "build-linux-zimage"
QEMU_PSERIES = ROOT / "tests" / "data" / "qemu-pseries-512M.dtb"
KERNEL_BSS = 0x100_0000          # 16 MiB: a kernel whose bss covers 0x800000


def wrap(kernel: Path, name: str) -> Path:
    out = ROOT / "build" / "linux-zimage" / name
    proc = subprocess.run([str(ZIMAGE_SCRIPT), str(kernel), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def kernel() -> Path:
    return FirmwareBuild().ensure_built().kernel_elf


@pytest.fixture(scope="module")
def zimages(kernel: Path) -> Path:
    return wrap(kernel, "testkernel")


def test_the_zimage_script_takes_an_outdir_relative_to_where_it_is_run(tmp_path, kernel,
                                                                       zimages):
    """The README's own command names a relative OUTDIR; the script wrapped
    from inside the Linux tree and wrote the images to /zImage.* instead."""
    proc = subprocess.run([str(ZIMAGE_SCRIPT), str(kernel), "rel/out"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "rel" / "out"
    assert (out / "zImage.epapr").read_bytes() == (zimages / "zImage.epapr").read_bytes()
    assert proc.stdout.splitlines() == [f"wrote {out}/zImage.epapr",
                                        f"wrote {out}/zImage.pseries"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc = main(["boot", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def assert_clean_kernel(rc: int, out: dict) -> None:
    assert out["exit"] == "kernel", out["message"]
    assert out["kernel_report"]["dtb_magic_ok"]
    assert out["checks"]["mirror"]["state"] == "not attached"
    assert "no 'ranges' symbol" in out["checks"]["mirror"]["detail"]
    assert out["checks"]["model"]["state"] == "not attached"
    assert out["checks"]["watch"]["state"] == "passed"
    assert out["checks"]["handoff"]["state"] == "passed"
    assert out["passed"] and rc == 0


@pytest.mark.parametrize("load_at", [0x2000000, 0x5430000])
def test_zimage_epapr_boots_from_the_cli_at_two_load_addresses(capsys, zimages, kernel,
                                                              load_at):
    rc, out = cli(capsys, "--image", str(zimages / "zImage.epapr"), "--entry", "epapr",
                  "--kernel", str(kernel), "--load-at", hex(load_at))
    assert f"zImage starting: loaded at 0x{load_at:08x}" in out["console"]
    assert "Finalizing device tree" in out["console"]
    assert_clean_kernel(rc, out)
    # Linux's kentry(ft_addr, 0, NULL): the tree in r3, r4 = r5 = 0, the kernel at 0.
    assert out["handoff"]["r4"] == 0 and out["handoff"]["r5"] == 0
    assert out["handoff"]["entry"] == 0 and out["handoff"]["r3"] == out["dtb"]["address"]


def test_zimage_pseries_boots_at_its_link_address(capsys, zimages, kernel):
    rc, out = cli(capsys, "--image", str(zimages / "zImage.pseries"), "--entry", "epapr",
                  "--kernel", str(kernel))
    assert "zImage starting: loaded at 0x04000000" in out["console"]
    assert any("link address 0x4000000" in n for n in out["notes"])
    assert_clean_kernel(rc, out)


def test_zimage_with_qemus_pseries_tree_reaches_the_kernel(capsys, zimages, kernel):
    # QEMU's console is the PAPR vty (hvterm1), which Linux's boot wrapper
    # has no driver for in the ePAPR path: it prints nothing ...
    rc, out = cli(capsys, "--image", str(zimages / "zImage.epapr"), "--entry", "epapr",
                  "--kernel", str(kernel), "--dtb", str(QEMU_PSERIES))
    assert out["console"] == ""
    assert_clean_kernel(rc, out)
    # ... and with a UART added as the console it speaks.
    rc, out = cli(capsys, "--image", str(zimages / "zImage.epapr"), "--entry", "epapr",
                  "--kernel", str(kernel), "--dtb", str(QEMU_PSERIES), "--uart")
    assert "zImage starting: loaded at 0x02000000" in out["console"]
    assert_clean_kernel(rc, out)


def test_a_zimage_without_the_epapr_magic_ends_as_its_own_fatal(capsys, zimages):
    rc, out = cli(capsys, "--image", str(zimages / "zImage.epapr"), "--entry", "epapr",
                  "--reg", "r6=0", "--budget", "3000000")
    assert out["exit"] == "fatal", out["message"]       # not "budget": ended at the spin
    assert "r6 contained 0x00000000 instead of ePAPR magic number" in out["message"]
    assert out["location"]["function"] == "platform_fixups"
    assert rc == 1


def test_a_zimage_entered_in_64_bit_mode_ends_on_an_exception(capsys, zimages):
    rc, out = cli(capsys, "--image", str(zimages / "zImage.epapr"), "--entry", "kexec",
                  "--budget", "3000000")
    assert out["exit"] == "exception", out["message"]
    assert rc == 1


def test_the_kernel_clearing_its_bss_over_an_initrd_the_zimage_handed_on_is_reported(
        capsys, tmp_path):
    big = FirmwareBuild().test_kernel(KERNEL_BSS)
    images = wrap(big, "testkernel-bss-16m")
    initrd = tmp_path / "initrd.bin"
    initrd.write_bytes(bytes(range(256)) * 256)
    rc, out = cli(capsys, "--image", str(images / "zImage.epapr"), "--entry", "epapr",
                  "--kernel", str(big), "--initrd", str(initrd), "--initrd-at", "0x800000")
    assert out["exit"] == "kernel" and rc == 1
    hits = [o for o in out["overwrites"] if o["region"].startswith("initrd")]
    assert hits and hits[0]["phase"] == "kernel"
    assert (hits[0]["function"], hits[0]["file"]) == ("_kstart", "head.S")
    assert hits[0]["ranges"] is None          # no range table in a foreign image
    assert out["checks"]["handoff"]["state"] == "failed"


def test_a_raw_binary_boots_with_an_entry_offset(capsys, zimages, kernel, tmp_path):
    pseries = ElfImage(zimages / "zImage.pseries")
    start, end = pseries.span
    raw = bytearray(end - start)
    for seg in pseries.segments:
        raw[seg.vaddr - start:seg.vaddr - start + len(seg.data)] = seg.data
    entry = pseries.entry - start
    pseries.close()
    image = tmp_path / "zImage.pseries.bin"
    image.write_bytes(bytes(raw))
    rc, out = cli(capsys, "--image", str(image), "--entry-offset", hex(entry),
                  "--load-at", hex(start), "--entry", "epapr", "--kernel", str(kernel))
    assert f"loaded at 0x{start:08x}" in out["console"]
    assert_clean_kernel(rc, out)


def test_an_empty_memory_node_is_refused_by_name_until_memory_is_given(capsys, tmp_path,
                                                                      zimages, kernel):
    tree = tmp_path / "board.dtb"
    tree.write_bytes(MemoryTree(memory=((0, 0),), console="uart").build())
    assert main(["boot", "--dtb", str(tree)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/memory is empty" in err and "--memory" in err
    rc, out = cli(capsys, "--image", str(zimages / "zImage.epapr"), "--entry", "epapr",
                  "--kernel", str(kernel), "--dtb", str(tree), "--memory", "512M",
                  "--cmdline", "root=/dev/ram0 quiet")
    assert_clean_kernel(rc, out)
    assert "Linux/PowerPC load: root=/dev/ram0 quiet" in out["console"]


def test_the_generated_uart_is_one_a_linux_wrapper_finds():
    fdt = libfdt.Fdt(MemoryTree(console="uart").build())
    path = fdt.getprop(fdt.path_offset("/chosen"), "linux,stdout-path").as_str()
    node = fdt.path_offset(path)
    assert fdt.getprop(node, "device_type").as_str() == "serial"
    assert fdt.getprop(node, "compatible").as_str() == "ns16550"
    reg = bytes(fdt.getprop(node, "reg"))
    assert int.from_bytes(reg[:8], "big") < 1 << 32


def test_an_elf_of_another_machine_is_refused_with_what_it_is(tmp_path):
    bogus = tmp_path / "x86.elf"
    header = bytearray(64)
    header[:7] = b"\x7fELF\x02\x01\x01"        # ELF64, little-endian
    header[16:20] = (2).to_bytes(2, "little") + (62).to_bytes(2, "little")   # x86-64
    bogus.write_bytes(bytes(header))
    with pytest.raises(ElfImageError, match="not a big-endian PowerPC ELF"):
        ElfImage(bogus)


def test_the_console_reads_lf_cr_as_one_line_end():
    c = Console()
    c.put(b"zImage starting\n\rAllocating\r\nDone\n")
    assert c.text == "zImage starting\nAllocating\nDone\n"


def test_epapr_entry_registers_and_overrides():
    state = entry_state("epapr", tree=0x1000, image=0x2000000, rma_size=8 << 30,
                        overrides=(("r6", 0),))
    regs = state.registers
    assert (regs["r3"], regs["r4"], regs["r5"], regs["r7"], regs["msr"]) == \
        (0x1000, 0, 0, 2 << 30, 0)
    assert regs["r6"] == 0 and state.bits == 32
    assert entry_state("epapr", tree=0, image=0, rma_size=1 << 20).registers["r6"] \
        == EPAPR_MAGIC


@pytest.mark.parametrize("overrides, words", [
    # Unicorn ran these as if the bits were clear: a zImage "passed" in
    # little-endian mode and with translation on and no page table
    ((("msr", 0x1),), "--msr 0x1: sets MSR LE (little-endian), a mode bwemu does not"),
    ((("msr", 0x30),), "--msr 0x30: sets MSR DR (data relocation), IR (instruction "
                       "relocation)"),
    ((("cr", 1 << 32),), "--reg cr=0x100000000: not a 32-bit value"),
    ((("msr", 0), ("msr", MSR_SF)), "--reg msr: given twice (--msr sets it too)"),
    ((("r3", 1), ("r3", 2)), "--reg r3: given twice"),
])
def test_entry_overrides_bwemu_cannot_honour_are_refused(overrides, words):
    with pytest.raises(InputError) as e:
        entry_state("epapr", tree=0, image=0, rma_size=1 << 20, overrides=overrides)
    assert str(e.value).startswith(words)


def test_msr_bits_bwemu_emulates_are_taken():
    state = entry_state("kexec", tree=0, image=0, rma_size=1 << 20,
                        overrides=(("msr", MSR_SF | 0x1000 | 0x2),))   # SF, ME, RI
    assert state.registers["msr"] == MSR_SF | 0x1002 and state.bits == 64


def test_the_timebase_advances_with_executed_instructions():
    # mftbu r5; mftb r6; addi r7,r7,1 x 3; mftb r8; b .+4 as end
    code = bytes.fromhex("7cad42a6 7ccc42a6 38e70001 38e70001 38e70001 7d0c42e6 60000000")
    m = Machine([(0, 0x10000)])
    m.write(0x1000, code)

    class Flat:                        # an "image" that is just these words
        span = type("S", (), {"address": 0x1000, "end": 0x1000 + len(code)})()

        def code_words(self) -> list[tuple[int, int]]:
            return [(0x1000 + i, int.from_bytes(code[i:i + 4], "big"))
                    for i in range(0, len(code), 4)]
    tb = Timebase(m, Flat())  # type: ignore[arg-type]
    assert len(tb.sites) == 3
    stop = m.run(0x1000, 100, until=0x101c)
    assert stop.reason == "until"
    assert m.reg("r5") == 0
    t1, t2 = m.reg("r6"), m.reg("r8")
    assert t1 > 0 and t2 > t1 and (t2 - t1) % TICKS_PER_INSTRUCTION == 0
    # The same run again gives the same values: the clock is deterministic.
    m2 = Machine([(0, 0x10000)])
    m2.write(0x1000, code)
    Timebase(m2, Flat())  # type: ignore[arg-type]
    m2.run(0x1000, 100, until=0x101c)
    assert (m2.reg("r6"), m2.reg("r8")) == (t1, t2)


def test_our_wrapper_reads_no_timebase_so_pays_nothing_for_it():
    elf = ElfImage(FirmwareBuild().ensure_built().wrapper_elf)
    m = Machine([(0, 0x1000000)])
    image = LoadedImage.at(elf, 0x100000)
    assert Timebase(m, image).sites == {}


def test_a_foreign_image_through_the_library(zimages, kernel):
    sc = Scenario(name="zimage", dtb=MemoryTree(console="uart").build(),
                  image=zimages / "zImage.epapr", entry="epapr", kernel=kernel)
    r = boot(sc)
    assert r.exit is ExitReason.KERNEL and r.passed
    states = {c.name: c.state for c in r.checks}
    assert states == {"mirror": CheckState.NOT_ATTACHED, "watch": CheckState.PASSED,
                      "model": CheckState.NOT_ATTACHED, "handoff": CheckState.PASSED}


@pytest.mark.parametrize("nops", [1, 64])
def test_falling_through_the_end_of_a_raw_image_is_its_hand_off(tmp_path, nops):
    """A block hook sees the first instruction of a block only; nops that
    run straight off the image's end are one block begun inside it, so the
    hand-off (the first fetch outside the image) went unseen."""
    raw = tmp_path / "nops.bin"
    raw.write_bytes((0x60000000).to_bytes(4, "big") * nops)      # ori 0,0,0
    r = boot(Scenario(name="nops", dtb=MemoryTree().build(), image=raw, entry_offset=0,
                      wrapper_at=0x400000))
    assert r.handoff is not None, r.message
    assert r.handoff.entry == 0x400000 + 4 * nops


def test_an_entry_offset_for_an_elf_image_is_refused(capsys):
    """The ELF file was loaded as raw bytes and entered at file offset N."""
    wrapper = FirmwareBuild().ensure_built().wrapper_elf
    assert main(["boot", "--image", str(wrapper), "--entry-offset", "0x100"]) == 2
    assert capsys.readouterr().err == (
        f"bwemu: error: {wrapper}: an ELF file, entered at its own e_entry: an entry offset "
        f"(--entry-offset) is for a raw binary\n")


def test_an_ok_without_a_kernel_elf_says_the_kernel_image_was_not_compared(capsys, zimages,
                                                                         kernel):
    """Only --json said so: the text's OK read as if every part was checked."""
    image = str(zimages / "zImage.epapr")
    assert main(["boot", "--image", image, "--entry", "epapr"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "(mirror, model not attached; kernel image not compared: no kernel ELF given)")
    assert main(["boot", "--image", image, "--entry", "epapr", "--kernel", str(kernel)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(mirror, model not attached)")


def test_a_zimage_that_spins_without_a_word_gets_a_hint(capsys, zimages):
    """A board tree whose UART Linux's wrapper cannot drive: it printed
    nothing and spun, and the verdict said only '(nothing printed)'."""
    tree = str(ROOT / "tests" / "data" / "board-1cell-uart.dts")
    args = ["--image", str(zimages / "zImage.epapr"), "--entry", "epapr", "--dtb", tree,
            "--memory", "512M"]
    rc, out = cli(capsys, *args)
    assert rc == 1 and out["exit"] == "fatal" and out["console"] == ""
    assert "--uart adds an ns16550 as the console" in out["message"]
    rc, out = cli(capsys, *args, "--uart")          # and the hint is right
    assert rc == 0 and "zImage starting" in out["console"]


def test_a_raw_image_without_an_entry_offset_is_told_how_to_boot_it(tmp_path, capsys):
    raw = tmp_path / "raw.bin"
    raw.write_bytes((0x48000000).to_bytes(4, "big"))
    assert main(["boot", "--image", str(raw)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bwemu: error: {raw}: not an ELF file")
    assert err.endswith("a raw binary is booted with the offset of its first instruction "
                        "(--entry-offset N)\n")
