"""Every kind of broken input gets a specific answer: one line naming the
input and the field (CLI exit 2), or the wrapper's own fatal message (exit
1), never a traceback, a crash, a hang or a wrong OK.  Each kind below
names the message it expects."""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libfdt
import pytest

from emulator import MemoryTree, Scenario, boot, default_scenario
from emulator.cli import main
from emulator.errors import BwemuError
from emulator.harness.firmware import FirmwareBuild
from emulator.harness.scenario import MiB, ScenarioError

GiB = 1 << 30
QEMU_TREE = Path(__file__).parent / "data" / "qemu-pseries-512M.dtb"


def tree(**kw: object) -> bytes:
    return MemoryTree(**kw).build()   # type: ignore[arg-type]


def edit(blob: bytes, change: Callable[[libfdt.Fdt], None], room: int = 512) -> bytes:
    fdt = libfdt.Fdt(bytearray(blob))
    fdt.resize(len(blob) + room)
    change(fdt)
    fdt.pack()
    return bytes(fdt.as_bytearray())


def set32(blob: bytes, off: int, value: int) -> bytes:
    b = bytearray(blob)
    b[off:off + 4] = value.to_bytes(4, "big")
    return bytes(b)


def with_uart(reg_shift: int | None = None, width: int | None = None,
              base: int = 0xFE00_4500) -> bytes:
    def change(f: libfdt.Fdt) -> None:
        node = f.path_offset(f"/serial@{base:x}")
        if reg_shift is not None:
            f.setprop_u32(node, "reg-shift", reg_shift)
        if width is not None:
            f.setprop_u32(node, "reg-io-width", width)
    return edit(tree(console="uart", uart_base=base), change)


def uart_on_bus(ranges: bytes, cells: tuple[int, int] = (1, 1), depth: int = 1) -> bytes:
    """A UART behind `depth` nested buses with these cell counts, the
    innermost bus with these ranges; stdout-path points at the UART."""
    ac, sc = cells

    def change(f: libfdt.Fdt) -> None:
        bus, path = 0, ""
        for level in range(depth):
            bus = f.add_subnode(bus, f"bus{level}")
            path += f"/bus{level}"
            f.setprop_u32(bus, "#address-cells", ac)
            f.setprop_u32(bus, "#size-cells", sc)
        f.setprop(bus, "ranges", ranges)
        uart = f.add_subnode(bus, "serial@4500")
        f.setprop_str(uart, "compatible", "ns16550")
        f.setprop(uart, "reg", (0x4500).to_bytes(4, "big") + (0x100).to_bytes(4, "big"))
        f.setprop_str(f.path_offset("/chosen"), "linux,stdout-path", path + "/serial@4500")
    return edit(tree(console="none"), change)


def uart_root_cells(ac: int, sc: int) -> bytes:
    """The generated UART tree (reg written for 2 and 2 cells) with other
    root cell counts, as the fuzzer's "cells" kind makes it."""
    def change(f: libfdt.Fdt) -> None:
        f.setprop_u32(0, "#address-cells", ac)
        f.setprop_u32(0, "#size-cells", sc)
    return edit(tree(console="uart"), change)


def chosen(**props: bytes) -> bytes:
    def change(f: libfdt.Fdt) -> None:
        c = f.path_offset("/chosen")
        for name, value in props.items():
            f.setprop(c, name.replace("_", "-").replace("linux-", "linux,"), value)
    return edit(tree(), change)


def root_cells(ac: int, sc: int) -> bytes:
    def change(f: libfdt.Fdt) -> None:
        f.setprop_u32(0, "#address-cells", ac)
        f.setprop_u32(0, "#size-cells", sc)
    return edit(tree(), change)


# --- kinds the emulator refuses before anything runs (a Scenario of a tree) ----------------


@dataclass(frozen=True)
class Refused:
    """A scenario bwemu must refuse, with words its one-line error holds."""
    kind: str
    make: Callable[[], Scenario]
    words: str


def sc(dtb: bytes, **kw: object) -> Callable[[], Scenario]:
    return lambda: Scenario(name="bad", dtb=dtb, **kw)   # type: ignore[arg-type]


REFUSED = [
    Refused("empty tree file", sc(b""), "0 bytes, shorter than the 40-byte header"),
    Refused("tree file shorter than the header", sc(tree()[:39]),
            "39 bytes, shorter than the 40-byte header"),
    Refused("totalsize larger than the file", sc(set32(tree(), 4, 0x7FFF_FFF0)),
            "header totalsize 0x7ffffff0 is larger than the file"),
    Refused("totalsize one past the file", sc(set32(tree(), 4, len(tree()) + 1)),
            "is larger than the file"),
    Refused("memory of 2^64-1 bytes", sc(tree(memory=((0, (1 << 64) - 1),))),
            "reaches 2^64"),
    Refused("memory of 1 TiB", sc(tree(memory=((0, 1 << 40),))),
            "cannot be mapped on this host"),
    Refused("memory of 32 GiB", sc(tree(memory=((0, 32 * GiB),))),
            "cannot be mapped on this host"),
    Refused("UART reg-shift 64", sc(with_uart(reg_shift=64)),
            "reg-shift = <0x40>: bwemu emulates 0..4"),
    Refused("UART reg-shift 0xffffffff", sc(with_uart(reg_shift=0xFFFF_FFFF)),
            "reg-shift = <0xffffffff>"),
    Refused("UART reg-io-width 16", sc(with_uart(width=16)), "reg-io-width = <0x10>"),
    Refused("UART overlapping RAM", sc(with_uart(base=0x100_0000)), "overlaps RAM"),
    Refused("bus ranges past 2^64",
            sc(uart_on_bus((0).to_bytes(4, "big") + (0xFFFF_FFFF).to_bytes(4, "big") * 2
                           + (0x10000).to_bytes(4, "big"))),
            "past 2^64"),
    Refused("bus with zero cells and ranges", sc(uart_on_bus(b"\0" * 8, (0, 0), depth=2)),
            "all its cell counts are 0"),
    Refused("tree larger than the real-mode area",
            sc(edit(tree(memory=((0, 0x10000),)),
                    lambda f: f.setprop(0, "pad", bytes(0x20000)), room=0x21000)),
            "larger than the real-mode area"),
    Refused("initrd too big for the room below the tree",
            sc(tree(memory=((0, 64 * MiB),)), initrd=bytes(100 * MiB)),
            "does not fit below the device tree"),
    Refused("wrapper address not aligned", sc(tree(), wrapper_at=0x200_0001),
            "must be loaded at a multiple of 0x10"),
    Refused("tree address outside RAM", sc(tree(), dtb_at=0x7FFF_0000), "is not inside RAM"),
    Refused("initrd over the wrapper", sc(tree(), initrd=bytes(0x1000), initrd_at=0x200_0000,
                                          wrapper_at=0x200_0000), "overlaps"),
    Refused("initrd address outside RAM", sc(tree(), initrd=bytes(0x1000),
                                             initrd_at=1 << 40), "is not inside RAM"),
    Refused("initrd address without an initrd", sc(tree(), initrd_at=0x100_0000),
            "initrd address was given without an initrd"),
    Refused("empty /memory without --memory", sc(tree(memory=((0, 0),))),
            "/memory is empty (no reg, or size 0): give the RAM size with --memory SIZE"),
    Refused("--memory too big for 1 size cell",
            sc(tree(address_cells=1, size_cells=1), memory=1 << 33),
            "does not fit the root's #size-cells = <1>"),
    Refused("image that does not exist", sc(tree(), image=Path("/nonexistent/zImage")),
            "no such file"),
    Refused("image that is text", sc(tree(), image=Path(__file__)), "not an ELF file"),
    Refused("raw image with entry past its end",
            sc(tree(), image=Path(__file__), entry_offset=1 << 30), "is not a word inside"),
    Refused("raw image with an unaligned entry", sc(tree(), image=Path(__file__),
                                                   entry_offset=3), "is not a word inside"),
    Refused("register override of no register", sc(tree(), regs=(("r99", 0),)),
            "--reg r99: not a register bwemu sets"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.kind for c in REFUSED])
def test_the_emulator_refuses_by_name(case: Refused) -> None:
    with pytest.raises(BwemuError) as e:
        boot(case.make())
    text = str(e.value)
    assert case.words in text, text
    assert "\n" not in text.strip()


SCENARIO_FIELDS = [
    (dict(budget=2**64 + 5), "Scenario field budget: must be in 0x1..0x7fffffffffffffff"),
    (dict(budget=2**64), "Scenario field budget"),
    (dict(budget=1.5), "Scenario field budget: must be an int"),
    (dict(wrapper_at="banana"), "Scenario field wrapper_at: must be an int or None, "
                                "not 'banana'"),
    (dict(dtb=None), "Scenario field dtb: must be the tree's bytes"),
    (dict(policy="sideways"), "Scenario field policy: must be one of fixed, seed"),
    (dict(entry="uefi"), "Scenario field entry: must be one of kexec, epapr"),
    (dict(regs=(("r3", "x"),)), "Scenario field regs"),
    (dict(memory=0), "Scenario field memory: must be in 0x1.."),
    (dict(kernel_bss=2**63), "Scenario field kernel_bss: must be in 0x0..0x10000000000"),
    (dict(initrd="text"), "Scenario field initrd: must be bytes or None"),
    (dict(compressed_kernel=1), "Scenario field compressed_kernel: must be True or False"),
    (dict(dtb_at=-1), "Scenario field dtb_at: must be in"),
]


@pytest.mark.parametrize("change, words", SCENARIO_FIELDS,
                         ids=[next(iter(c)) + "=" + repr(next(iter(c.values())))[:12]
                              for c, _ in SCENARIO_FIELDS])
def test_a_scenario_field_of_the_wrong_type_is_named_at_construction(change, words):
    with pytest.raises(ScenarioError, match="^" + words.replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.").replace("*", r"\*")
                       .replace("[", r"\[")):
        default_scenario().replace(**change)


# --- kinds the CLI refuses (exit 2, one line) ---------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    fifo = d / "fifo"
    os.mkfifo(fifo)
    big = d / "big.dtb"
    with big.open("wb") as f:
        f.truncate(17 * MiB)
    empty = d / "empty.bin"
    empty.write_bytes(b"")
    x86 = d / "x86.elf"
    header = bytearray(64)
    header[:7] = b"\x7fELF\x02\x01\x01"
    header[16:20] = (2).to_bytes(2, "little") + (62).to_bytes(2, "little")
    x86.write_bytes(bytes(header))
    good = d / "good.dtb"
    good.write_bytes(tree())
    huge = d / "huge.elf"            # sparse: 8 GiB on paper, nothing on disk
    with huge.open("wb") as f:
        f.truncate(8 << 30)
    bad_dts = d / "bad.dts"
    bad_dts.write_text("/dts-v1/;\n/ { memory { reg = <0 0x10000000> }; };\n")
    return {"fifo": fifo, "dir": d, "big": big, "empty": empty, "x86": x86, "tree": good,
            "huge": huge, "bad_dts": bad_dts,
            "wrapper": FirmwareBuild().ensure_built().wrapper_elf}


CLI_CASES = [
    (["--dtb", "/nonexistent/x.dtb"], "--dtb /nonexistent/x.dtb: cannot read"),
    (["--dtb", "{dir}"], "not a regular file"),
    (["--dtb", "{fifo}"], "not a regular file"),
    (["--dtb", "/dev/zero"], "--dtb /dev/zero: not a regular file"),
    (["--dtb", "{big}"], "more than the 16 MiB bwemu reads"),
    (["--initrd", "{fifo}"], "--initrd"),
    (["--attach-initrd", "/nonexistent/i"], "--attach-initrd /nonexistent/i: cannot read"),
    (["--kernel-bss", str(2**63)], "--kernel-bss: 9223372036854775808 is more than "
                                   "1,099,511,627,776"),
    (["--image", "{x86}"], "not a big-endian PowerPC ELF (ELF64 EM_X86_64, little-endian)"),
    # read whole before any check, these two hung and ran the host out of memory
    (["--image", "/dev/zero"], "--image /dev/zero: not a regular file"),
    (["--image", "{wrapper}", "--kernel", "/dev/zero"], "--kernel /dev/zero: not a regular file"),
    (["--image", "{huge}"], "8589934592 bytes, more than the 256 MiB bwemu reads"),
    (["--image", "{dir}"], "not a regular file"),
    (["--image", "/nonexistent/z"], "--image /nonexistent/z: cannot read"),
    # once ignored, or booted and then failed on the initrd check
    (["--image", "{wrapper}", "--kernel-bss", "0x1000"],
     "--kernel-bss describes bwemu's own firmware image, not an --image FILE"),
    (["--image", "{wrapper}", "--attach-initrd", "{tree}"],
     "--attach-initrd describes bwemu's own firmware image"),
    (["--dtb", "{bad_dts}"], "dtc cannot compile it"),
    (["--image", "{empty}", "--entry-offset", "0"], "the image is empty"),
    (["--reg", "r6"], "is not NAME=VALUE"),
    (["--memory", "banana"], "is not a size"),
    (["--memory", "0"], "must be more than 0"),
    (["--kernel", "/x.elf"], "--kernel and --entry-offset describe an --image FILE"),
    (["--budget", "0"], "--budget: 0 is less than 1"),
    (["--budget", "abc"], "'abc' is not a whole number"),
    (["--trace-last", str(2**70)], "--trace-last: 1180591620717411303424 is more than"),
    (["--wrapper-at", "0x2000001"], "must be loaded at a multiple of 0x10"),
    (["--dtb-at", "0x7fff0000"], "is not inside RAM"),
    (["--dtb", "{tree}", "--initrd-at", "0x1000000"], "--initrd-at needs --initrd FILE"),
]


@pytest.mark.parametrize("args, words", CLI_CASES, ids=[" ".join(a)[:40] for a, _ in CLI_CASES])
def test_the_cli_answers_bad_input_in_one_line(capsys, files, args, words):
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    try:
        rc = main(["boot", *argv])
    except SystemExit as e:        # argparse's own refusal
        rc = int(e.code or 0)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert words in err
    assert err.count("\n") <= 2 and "Traceback" not in err


def test_a_fifo_as_the_tree_never_blocks(files):
    # In a subprocess with a deadline: before, open() waited for a writer.
    p = subprocess.run([shutil.which("python3") or "python3", "-c",
                        "import sys; from emulator.cli import main; "
                        f"sys.exit(main(['boot', '--dtb', '{files['fifo']}']))"],
                       capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parent.parent,
                       env=dict(os.environ, PYTHONPATH="."))
    assert p.returncode in (1, 2) and "not a regular file" in p.stderr + p.stdout or \
        p.returncode == 1 and "No module" in p.stderr


# --- kinds the wrapper answers with its own fatal message --------------------------------


@dataclass(frozen=True)
class Fatal:
    kind: str
    dtb: Callable[[], bytes]
    words: str


def bad_magic() -> bytes:
    return set32(tree(), 0, 0xD00DFEEE)


def unterminated_rsvmap() -> bytes:
    t = bytearray(tree(reserves=((0x100_0000, 0x1000),)))
    off = int.from_bytes(t[16:20], "big")
    t[off + 16:off + 32] = (0x200_0000).to_bytes(8, "big") + (0x1000).to_bytes(8, "big")
    return bytes(t)


def no_room_for_the_heap() -> bytes:
    """64 MiB whose every gap around the wrapper (at 16 MiB, as placed) and
    the tree (at the top) is smaller than the heap's minimum."""
    from emulator.guest.elf import ElfImage
    elf = ElfImage(FirmwareBuild().ensure_built().wrapper_elf)
    start, end = elf.span
    elf.close()
    after = 16 * MiB + ((end - start + 0xFFF) & ~0xFFF) + 0x1000
    return tree(memory=((0, 64 * MiB),),
                reserves=((0x1000, 16 * MiB - 0x1000), (after, 64 * MiB - 0x10000 - after)))


FATALS = [
    Fatal("bad magic", bad_magic, "FATAL: device tree at"),
    Fatal("no memory node", lambda: edit(tree(), lambda f: f.del_node(
        f.path_offset("/memory@0"))), "no /memory block starts at address 0"),
    Fatal("memory not at 0", lambda: tree(memory=((0x1000_0000, 256 * MiB),)),
          "no /memory block starts at address 0"),
    Fatal("root #address-cells 3", lambda: root_cells(3, 2),
          "root #address-cells 3 / #size-cells 2 not supported"),
    Fatal("root #size-cells 3", lambda: root_cells(2, 3),
          "root #address-cells 2 / #size-cells 3 not supported"),
    Fatal("/chosen initrd-start of 3 bytes",
          lambda: chosen(linux_initrd_start=b"\0\0\1", linux_initrd_end=bytes(8)),
          "/chosen linux,initrd-start is 3 bytes, not 4 or 8"),
    Fatal("/chosen initrd-end of 0 bytes",
          lambda: chosen(linux_initrd_start=bytes(8), linux_initrd_end=b""),
          "/chosen linux,initrd-end is 0 bytes, not 4 or 8"),
    Fatal("only /chosen initrd-start",
          lambda: chosen(linux_initrd_start=(0x100_0000).to_bytes(8, "big")),
          "/chosen has only one of linux,initrd-start and linux,initrd-end"),
    Fatal("initrd end before its start",
          lambda: chosen(linux_initrd_start=(0x200_0000).to_bytes(8, "big"),
                         linux_initrd_end=(0x100_0000).to_bytes(8, "big")),
          "initrd ends (0x1000000) before it"),
    Fatal("more reserve entries than the table holds",
          lambda: tree(reserves=tuple((0x400_0000 + i * 0x20000, 0x1000) for i in range(40))),
          "cannot record"),
    Fatal("no room for the heap", lambda: no_room_for_the_heap(),
          "no room for the heap: no free memory large enough"),
    Fatal("reserve map with no terminator in the tree", unterminated_rsvmap,
          "FATAL: device tree"),
]


@pytest.mark.parametrize("case", FATALS, ids=[c.kind for c in FATALS])
def test_the_wrapper_answers_with_its_own_fatal(case: Fatal) -> None:
    r = boot(Scenario(name=case.kind, dtb=case.dtb()))
    assert r.exit.value == "fatal", (r.exit, r.message)
    assert case.words in r.message, r.message
    assert r.fatal_code and not r.passed


def test_a_broken_kernel_payload_gets_the_wrappers_fatal(tmp_path):
    from emulator.harness.fuzz import FuzzCase, scenario_of
    crc = zlib.crc32(FirmwareBuild().ensure_built().payload_elf.read_bytes())
    for patch, compressed, words in (
            ((3, b"\xff"), True, "kernel image: not a gzip stream, or an unsupported header"),
            ((10, b"\xff\xff"), True, "kernel image: reserved deflate block type"),
            # a dynamic block (BFINAL 1, BTYPE 2) whose code-length code has
            # four lengths, all 0: written whole, so the answer does not hang
            # on what the compressed stream happened to hold at that offset
            ((10, b"\x05" + bytes(5)), True, "kernel image: invalid Huffman code lengths"),
            # the trailer: the CRC-32's low byte, ISIZE's high byte
            ((-8, bytes([crc & 0xFF ^ 0x01])), True, "kernel image: CRC-32 mismatch"),
            ((-1, b"\x7f"), True, "kernel image: uncompressed size (ISIZE) mismatch"),
            ((0, b"\x00"), False, "kernel image: not an ELF file")):
        case = FuzzCase(0, 0, "test", "", tree(), payload_patch=patch, compressed=compressed)
        r = boot(scenario_of(case, FirmwareBuild(), tmp_path))
        assert r.exit.value == "fatal" and words in r.message, r.message


@pytest.mark.parametrize("ac, sc", [(2, 3), (3, 1), (2, 0), (1, 3), (3, 0)])
def test_root_cells_the_wrapper_refuses_give_no_console_and_ROOT_CELLS(ac, sc):
    """Fuzz seed 1 case 245 (2, 3): the console read the UART's reg with
    the root's 2 address cells and wrote to 0xfe004500, which bwemu had not
    mapped (it emulates no UART in a tree whose memory it cannot read):
    the CPU faulted in ns16550_putc before step 1's fatal.  (3, 1) read
    0xfe00450000000000; (1, 3) wrote the console into RAM at 0.  Now no
    console: the wrapper stops silently at step 1 with fatal 22."""
    r = boot(Scenario(name=f"uart with root cells {ac}/{sc}", dtb=uart_root_cells(ac, sc)))
    assert r.exit.value == "fatal" and r.fatal_code == 22, (r.exit, r.message)
    assert f"root #address-cells {ac} / #size-cells {sc} not supported" in r.message
    assert r.console == ""


def uart_reg(reg: bytes) -> bytes:
    def change(f: libfdt.Fdt) -> None:
        f.setprop(f.path_offset("/serial@fe004500"), "reg", reg)
    return edit(tree(console="uart"), change)


def test_a_uart_reg_of_part_of_an_entry_is_no_console():
    """12 bytes where an entry is 16 (2 + 2 cells): written for other cell
    counts, so not even its first address is taken."""
    whole = boot(Scenario(name="uart reg whole", dtb=uart_reg(
        (0xFE00_4500).to_bytes(8, "big") + (0x100).to_bytes(8, "big"))))
    assert whole.exit.value == "kernel" and "bwemu wrapper" in whole.console
    part = boot(Scenario(name="uart reg part", dtb=uart_reg(
        (0xFE00_4500).to_bytes(8, "big") + (0x100).to_bytes(4, "big"))))
    assert part.exit.value == "kernel", part.message
    assert part.console == ""


def test_bus_ranges_of_a_whole_entry_and_a_part_is_no_console():
    """(1, 1) cells on the bus under a (2, 2) root: 16-byte entries."""
    entry = ((0).to_bytes(4, "big") + (0xFE00_0000).to_bytes(8, "big")
             + (0x10000).to_bytes(4, "big"))
    whole = boot(Scenario(name="bus ranges whole", dtb=uart_on_bus(entry)))
    assert whole.exit.value == "kernel" and "bwemu wrapper" in whole.console
    part = boot(Scenario(name="bus ranges part", dtb=uart_on_bus(entry + bytes(4))))
    assert part.exit.value == "kernel", part.message
    assert part.console == ""


def test_a_console_node_without_reg_boots_silently_not_as_an_overlap():
    def change(f: libfdt.Fdt) -> None:
        f.delprop(f.path_offset("/serial@fe004500"), "reg")
    r = boot(Scenario(name="uart-without-reg", dtb=edit(tree(console="uart"), change)))
    assert r.exit.value == "kernel" and r.console == ""


def test_a_zero_length_initrd_file_is_not_a_crash(tmp_path):
    r = boot(default_scenario().replace(initrd=b""))
    assert r.exit.value in ("kernel", "fatal") and r.message


def test_a_dts_given_to_dtb_is_compiled_as_scenario_files_compile_it(tmp_path, capsys):
    """Read as a blob, a .dts met the wrapper's "bad magic" (exit 1)."""
    dts = tmp_path / "board.dts"
    dts.write_bytes(subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts"], input=tree(),
                                   capture_output=True, check=True).stdout)
    assert main(["boot", "--dtb", str(dts)]) == 0, capsys.readouterr().out


def test_a_scenario_for_an_image_refuses_what_only_composes_our_own(tmp_path):
    image = FirmwareBuild().ensure_built().wrapper_elf
    for change, name in (({"kernel_bss": 0x1000}, "kernel_bss"),
                         ({"attached_initrd": b"x"}, "attached_initrd"),
                         ({"compressed_kernel": False}, "compressed_kernel")):
        with pytest.raises(ScenarioError, match=f"^Scenario field {name} describes bwemu's "
                           "own firmware image"):
            default_scenario().replace(image=image, **change)


def test_a_scenario_file_naming_a_huge_image_gets_one_line(files, tmp_path):
    """An 8 GiB (sparse) image in a scenario file was read whole: a
    MemoryError, or the host's memory, before any check."""
    from emulator.harness.scenario_file import ScenarioFileError, load
    toml = tmp_path / "huge.toml"
    toml.write_text(f'description = "x"\n[firmware]\nimage = "{files["huge"]}"\n'
                    f'entry = "epapr"\n')
    with pytest.raises(ScenarioFileError, match=r"\[firmware\] image .*huge\.elf: 8589934592 "
                       r"bytes, more than the 256 MiB bwemu reads"):
        load(toml)


def test_a_memory_reg_with_part_of_an_entry_is_the_wrappers_to_answer(capsys):
    """Three cells under 2/2 root cells were called "/memory is empty (no
    reg, or size 0)" and refused before the boot; the wrapper reads no
    whole block from it and says so itself."""
    def change(f: libfdt.Fdt) -> None:
        f.setprop(f.path_offset("/memory@0"), "reg", bytes(12))
    r = boot(Scenario(name="reg of 3 cells", dtb=edit(tree(), change)))
    assert r.exit.value == "fatal" and "no /memory block starts at address 0" in r.message
    def empty(f: libfdt.Fdt) -> None:      # a whole entry of size 0 is a placeholder
        f.setprop(f.path_offset("/memory@0"), "reg", bytes(16))
    with pytest.raises(ScenarioError, match="/memory is empty"):
        boot(Scenario(name="reg of 0 size", dtb=edit(tree(), empty)))


@pytest.mark.parametrize("memory, words", [
    ("[[0, 0x10000000, 5]]", "[tree] memory: entry 0 has 3 values: expected two, [address, size]"),
    ("[[0xffffffffffff0000, 0x20000]]", "[tree] memory: entry 0 ends past 2^64"),
])
def test_a_scenario_files_memory_pair_is_checked_whole(tmp_path, memory, words):
    """A block past 2^64 was taken, and answered with "no room for the
    device tree"; three values were "an array: expected [address, size]"."""
    from emulator.harness.scenario_file import ScenarioFileError, load
    toml = tmp_path / "m.toml"
    toml.write_text(f'description = "x"\n[tree]\nmemory = {memory}\n')
    with pytest.raises(ScenarioFileError) as e:
        load(toml)
    assert words in str(e.value)


def test_a_kernel_elf_whose_entry_no_segment_holds_is_bad_input(tmp_path, capsys):
    """--kernel with e_entry 0xdeadbeef booted, and the hand-off was never
    seen; the ELF cannot be the kernel the image carries: refused, naming it."""
    data = bytearray(FirmwareBuild().ensure_built().kernel_elf.read_bytes())
    data[24:32] = (0xDEADBEEF).to_bytes(8, "big")
    kernel = tmp_path / "entry.elf"
    kernel.write_bytes(bytes(data))
    wrapper = FirmwareBuild().ensure_built().wrapper_elf
    rc = main(["boot", "--image", str(wrapper), "--kernel", str(kernel)])
    err = capsys.readouterr().err
    assert rc == 2 and err == (f"bwemu: error: the kernel ELF {kernel}: its entry 0xdeadbeef "
                               f"is in none of its PT_LOAD segments\n")


def ram_node_typed(value: bytes, pad: bytes | None = None) -> bytes:
    """The default tree with its memory node renamed ram@0 (so only its
    device_type can make it memory) and device_type set to value; pad, if
    given, overwrites the bytes that align the value to 4."""
    def change(f: libfdt.Fdt) -> None:
        node = f.path_offset("/memory@0")
        f.set_name(node, "ram@0")
        f.setprop(node, "device_type", value)
    blob = edit(tree(), change)
    if pad is not None:
        at = blob.index(value + bytes(len(pad)))
        blob = blob[:at + len(value)] + pad + blob[at + len(value) + len(pad):]
    return blob


@pytest.mark.parametrize("value, pad, is_memory", [
    (b"memory\0", None, True),
    # a string list beginning "memory": the wrapper's strcmp took it, the
    # model's reading did not, and a correct boot was failed
    (b"memory\0x\0", None, False),
    # six bytes and no NUL: strcmp read on into the padding ("XX")
    (b"memory", b"XX", False),
])
def test_the_wrapper_and_the_model_agree_on_what_a_memory_node_is(value, pad, is_memory):
    r = boot(Scenario(name="device_type", dtb=ram_node_typed(value, pad)))
    assert r.matches_model, (r.exit, r.message, r.model_mismatches)
    if is_memory:
        assert r.passed, r.message
    else:
        assert r.fatal_code == 1 and "no /memory block starts at address 0" in r.message
