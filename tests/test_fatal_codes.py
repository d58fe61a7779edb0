"""Every fatal stop names its cause in r4 (firmware/include/guest_abi.h).

The real wrapper, cross-built for each heap policy (and for ELFv2), runs in
a bare Unicorn CPU until its first interrupt: a fatal stop is the trap
tw 31,0,0 in bw_stop with r3 = the message and r4 = the BW_FATAL_* code.
Each scenario is a device tree (and, for the kernel image checks, a
composed image) built to fail at one step of docs/kexec.md or main.c, so
the code at the trap is that step's.  Deliberately independent of the
emulator package: only the guest <-> emulator contract is under test.

Layout: RAM 0..64 MiB; the wrapper at 32 MiB and the tree at 48 MiB, both
above the real-mode area the trees declare (16 MiB unless said), so the
range table holds only what a scenario puts there.  The trees declare all
of RAM, as two blocks: [0, 16 MiB) and the rest (step 3 wants an initrd in
memory).
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from unicorn import (
    UC_ARCH_PPC,
    UC_HOOK_INTR,
    UC_MODE_BIG_ENDIAN,
    UC_MODE_PPC64,
    UC_PROT_ALL,
    UC_TLB_VIRTUAL,
    Uc,
    UcError,
)
from unicorn import ppc_const as P

from hostc import FIRMWARE

CROSS_CC = "powerpc64-linux-gnu-gcc"
pytestmark = pytest.mark.skipif(shutil.which(CROSS_CC) is None or shutil.which("dtc") is None,
                                reason=f"needs {CROSS_CC} and dtc")

# The numbers of guest_abi.h, as the emulator must read them.
NO_RMA, INITRD_INVERTED, KNOWN_RANGE, KERNEL_RESERVE, HEAP = 1, 2, 3, 4, 5
KERNEL, INITRD_MOVE, INITRD_ALLOC, DTB, INITRD_OVERLAP = 6, 7, 8, 9, 10
INITRD_OUTSIDE = 11
TREE, NO_KERNEL, KERNEL_GZIP, KERNEL_SHORT, KERNEL_ELF = 17, 18, 19, 20, 21
ROOT_CELLS, CHOSEN_PROP_SIZE, INITRD_HALF, RESERVE_MAP = 22, 23, 24, 25

RAM = 64 << 20
WRAPPER_AT = 32 << 20
TREE_AT = 48 << 20
RMA = 16 << 20
TW_31_0_0 = 0x7FE00008
PAGE = 0x1000


def align(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


# ------------------------------------------------------------------ builds

@dataclass
class Build:
    directory: Path
    policy: str
    abi: str

    def make(self, *args: str) -> None:
        proc = subprocess.run(
            ["make", "-s", f"-j{os.cpu_count() or 1}", "-C", str(FIRMWARE),
             f"O={self.directory}", f"POLICY={self.policy}", f"ABI={self.abi}", *args],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def compose(self, name: str, kernel: bytes | None = None,
                initrd: bytes | None = None) -> Path:
        """An image carrying `kernel` as it is (uncompressed; default: the
        test kernel gzipped) and optionally an attached initrd."""
        out = self.directory / "fatal" / name
        out.mkdir(parents=True, exist_ok=True)
        args = [f"IMAGE={out / 'wrapper.elf'}"]
        if kernel is not None:
            (out / "kernel").write_bytes(kernel)
            args += [f"KERNEL_ELF={out / 'kernel'}", "COMPRESS=none"]
        if initrd is not None:
            (out / "initrd").write_bytes(initrd)
            args.append(f"INITRD={out / 'initrd'}")
        self.make("compose", *args)
        return out / "wrapper.elf"

    @property
    def wrapper(self) -> Path:
        return self.directory / "wrapper.elf"

    @property
    def kernel(self) -> Path:
        return self.directory / "testkernel.elf"


@pytest.fixture(scope="module", params=[("fixed", "elfv1"), ("seed", "elfv1"),
                                        ("fixed", "elfv2")],
                ids=lambda p: "-".join(p))
def build(request, tmp_path_factory) -> Build:
    policy, abi = request.param
    b = Build(tmp_path_factory.mktemp(f"fw-{policy}-{abi}"), policy, abi)
    b.make()
    return b


def kernel_size(elf_path: Path) -> int:
    """S of docs/kexec.md: the span of the kernel's PT_LOAD segments."""
    with open(elf_path, "rb") as f:
        loads = [s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"]
        return (max(s["p_paddr"] + s["p_memsz"] for s in loads)
                - min(s["p_paddr"] for s in loads))


# ------------------------------------------------------------------- a run

@dataclass
class Stop:
    interrupt: int
    pc: int
    word_before: int        # the instruction the trap stopped after
    message: bytes
    code: int


def run(image: Path, dtb: bytes) -> Stop:
    """Boots image with the tree at TREE_AT; stops at the first interrupt."""
    uc = Uc(UC_ARCH_PPC, UC_MODE_PPC64 | UC_MODE_BIG_ENDIAN)
    uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)        # identity mapping: real mode
    uc.mem_map(0, RAM, UC_PROT_ALL)
    with open(image, "rb") as f:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                uc.mem_write(WRAPPER_AT + seg["p_vaddr"], seg.data())
        entry = WRAPPER_AT + elf["e_entry"]
    uc.mem_write(TREE_AT, dtb)
    uc.reg_write(P.UC_PPC_REG_3, TREE_AT)
    uc.reg_write(P.UC_PPC_REG_4, WRAPPER_AT)
    uc.reg_write(P.UC_PPC_REG_5, 0)
    seen: list[Stop] = []

    def interrupt(uc, number, _):
        pc = uc.reg_read(P.UC_PPC_REG_PC)
        r3 = uc.reg_read(P.UC_PPC_REG_3)
        message = bytes(uc.mem_read(r3, 256)).split(b"\0")[0] if r3 < RAM - 256 else b""
        seen.append(Stop(number, pc, int.from_bytes(uc.mem_read(pc - 4, 4), "big"),
                         message, uc.reg_read(P.UC_PPC_REG_4)))
        uc.emu_stop()

    uc.hook_add(UC_HOOK_INTR, interrupt)
    try:
        uc.emu_start(entry, 0xFFFF_FFFF_FFFF_FFF1, count=20_000_000)
    except UcError as e:
        pytest.fail(f"the guest faulted: {e} at pc 0x{uc.reg_read(P.UC_PPC_REG_PC):x}")
    assert seen, "the guest neither stopped nor trapped within its budget"
    return seen[0]


def assert_fatal(stop: Stop, code: int, text: str) -> None:
    assert stop.word_before == TW_31_0_0, \
        f"stopped by interrupt {stop.interrupt} at 0x{stop.pc:x}, not at bw_stop's trap"
    assert stop.message.startswith(b"FATAL: ")
    assert text.encode() in stop.message, stop.message
    assert stop.code == code, f"r4 = {stop.code}, want {code}: {stop.message!r}"


# ------------------------------------------------------------------ trees

def dtb(body: str = "", *, memory: str | None = None, reserves: list[tuple[int, int]] = (),
        cells: tuple[int, int] = (2, 2), pad: int = 0) -> bytes:
    """A tree with no console; memory@0 of RMA bytes, then the rest of RAM,
    unless `memory` says."""
    ac, sc = cells
    if memory is None:
        memory = (f'memory@0 {{ device_type = "memory"; '
                  f'reg = <0 0 0 {RMA:#x} 0 {RMA:#x} 0 {RAM - RMA:#x}>; }};')
    rsv = "".join(f"/memreserve/ {a:#x} {s:#x};\n" for a, s in reserves)
    dts = (f"/dts-v1/;\n{rsv}/ {{ #address-cells = <{ac}>; #size-cells = <{sc}>;\n"
           f"{memory}\n{body}\n}};\n")
    args = ["-S", str(pad)] if pad else []
    proc = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", *args, "-"],
                          input=dts.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def memory_at_0(size: int) -> str:
    return f'memory@0 {{ device_type = "memory"; reg = <0 0 0 {size:#x}>; }};'


def chosen_initrd(start: int, end: int) -> str:
    return (f"chosen {{ linux,initrd-start = <{start:#x}>; "
            f"linux,initrd-end = <{end:#x}>; }};")


# Keeps the heap off address 0 under both policies.
LOW_PAGE = [(0, PAGE)]


# ------------------------------------------------- the tree handed over

def test_a_tree_without_the_magic_stops_with_TREE(build):
    blob = bytearray(dtb())
    blob[0] ^= 0xFF
    assert_fatal(run(build.wrapper, bytes(blob)), TREE, "bad magic")


def test_no_memory_at_0_stops_with_NO_RMA(build):
    tree = dtb(memory='memory@10000000 { device_type = "memory"; '
                      'reg = <0 0x10000000 0 0x1000000>; };')
    assert_fatal(run(build.wrapper, tree), NO_RMA, "no /memory block starts at address 0")


def test_root_cells_of_3_stop_with_ROOT_CELLS(build):
    tree = dtb(memory='memory@0 { device_type = "memory"; reg = <0 0 0 0 0x1000000>; };',
               cells=(3, 2))
    assert_fatal(run(build.wrapper, tree), ROOT_CELLS, "#address-cells 3")


def test_a_two_byte_initrd_start_stops_with_CHOSEN_PROP_SIZE(build):
    tree = dtb("chosen { linux,initrd-start = /bits/ 16 <0x10>; "
               "linux,initrd-end = <0x100000>; };")
    assert_fatal(run(build.wrapper, tree), CHOSEN_PROP_SIZE, "is 2 bytes")


def test_an_initrd_start_without_end_stops_with_INITRD_HALF(build):
    tree = dtb("chosen { linux,initrd-start = <0x100000>; };")
    assert_fatal(run(build.wrapper, tree), INITRD_HALF, "only one of")


def test_an_initrd_ending_before_it_starts_stops_with_INITRD_INVERTED(build):
    tree = dtb(chosen_initrd(0x200000, 0x100000))
    assert_fatal(run(build.wrapper, tree), INITRD_INVERTED, "before it starts")


def test_a_reserve_map_without_its_end_stops_with_TREE(build):
    """The structural check covers the reserve map (docs/kexec.md rule 13),
    before anything reads it; RESERVE_MAP is left for a map that changes
    later."""
    blob = bytearray(dtb(reserves=[(0x100000, PAGE)]))
    rsvmap = int.from_bytes(blob[16:20], "big")
    blob[rsvmap + 16:rsvmap + 32] = b"\x01" * 16     # the {0, 0} terminator
    assert_fatal(run(build.wrapper, bytes(blob)), TREE,
                 "memory reserve map has no (0, 0) entry before the next block")


def test_a_property_running_past_the_structure_block_stops_with_TREE(build):
    """Once read as "no /memory block starts at address 0"."""
    blob = bytearray(dtb())
    st = int.from_bytes(blob[8:12], "big")
    # The root's first property: its length word, after token and name.
    assert int.from_bytes(blob[st + 8:st + 12], "big") == 3
    blob[st + 12:st + 16] = (0x10000).to_bytes(4, "big")
    assert_fatal(run(build.wrapper, bytes(blob)), TREE,
                 "a property runs past the structure block")


def test_a_tree_starting_with_end_node_stops_with_TREE_not_a_cell_count(build):
    """Once "root #address-cells -4 / #size-cells -4": an error code shown
    as a count."""
    blob = bytearray(dtb())
    st = int.from_bytes(blob[8:12], "big")
    blob[st:st + 4] = (2).to_bytes(4, "big")          # FDT_END_NODE
    stop = run(build.wrapper, bytes(blob))
    assert_fatal(stop, TREE, "FDT_END_NODE with no node open")
    assert b"-4" not in stop.message


def test_root_cells_of_two_cells_name_the_error_not_a_count(build):
    tree = dtb(memory='memory@0 { device_type = "memory"; reg = <0 0 0 0x1000000>; };')
    blob = bytearray(tree)
    st = int.from_bytes(blob[8:12], "big")
    assert int.from_bytes(blob[st + 12:st + 16], "big") == 4   # #address-cells' length
    blob[st + 12:st + 16] = (3).to_bytes(4, "big")          # now 3 bytes long
    stop = run(build.wrapper, bytes(blob))
    assert_fatal(stop, ROOT_CELLS, "root #address-cells: bad #address-cells or #size-cells")
    assert b"-14" not in stop.message


def test_an_initrd_over_the_wrapper_stops_with_INITRD_OVERLAP(build):
    tree = dtb(chosen_initrd(WRAPPER_AT + PAGE, WRAPPER_AT + 2 * PAGE))
    assert_fatal(run(build.wrapper, tree), INITRD_OVERLAP, "overlaps the wrapper image")


def test_an_initrd_over_the_tree_stops_with_INITRD_OVERLAP(build):
    tree = dtb(chosen_initrd(TREE_AT - PAGE, TREE_AT + 0x10))
    assert_fatal(run(build.wrapper, tree), INITRD_OVERLAP, "overlaps the device tree")


def test_an_initrd_ending_where_the_tree_starts_is_no_overlap(build):
    """[I0, I1) ending where the tree starts shares no byte with it."""
    stop = run(build.wrapper, dtb(chosen_initrd(TREE_AT - PAGE, TREE_AT), reserves=LOW_PAGE))
    assert stop.word_before != TW_31_0_0, stop.message


@pytest.mark.parametrize("start, end, memory, hole", [
    # memory [0, RMA) only: past its end, and running off it
    (RMA, RMA + PAGE, memory_at_0(RMA), RMA),
    (RMA - PAGE, RMA + PAGE, memory_at_0(RMA), RMA),
    # [0, RMA) and [RMA + 1 MiB, RAM): in the hole between them
    (RMA + PAGE, RMA + 2 * PAGE,
     f'memory@0 {{ device_type = "memory"; reg = <0 0 0 {RMA:#x}>; }}; '
     f'memory@1100000 {{ device_type = "memory"; '
     f'reg = <0 {RMA + 0x100000:#x} 0 {RAM - RMA - 0x100000:#x}>; }};', RMA + PAGE),
    # the same blocks, listed highest first: the first pass finds nothing
    # past [0, RMA), the second the upper block
    (RMA - PAGE, RMA + 0x100000 + PAGE,
     f'memory@1100000 {{ device_type = "memory"; '
     f'reg = <0 {RMA + 0x100000:#x} 0 {RAM - RMA - 0x100000:#x}>; }}; '
     f'memory@0 {{ device_type = "memory"; reg = <0 0 0 {RMA:#x}>; }};', RMA),
])
def test_an_initrd_outside_memory_stops_with_INITRD_OUTSIDE(build, start, end, memory, hole):
    """Fuzz seed 1 case 37: an initrd past the end of RAM was handed on
    and the kernel faulted reading it."""
    tree = dtb(chosen_initrd(start, end), memory=memory, reserves=LOW_PAGE)
    assert_fatal(run(build.wrapper, tree), INITRD_OUTSIDE,
                 f"initrd {start:#x}..{end:#x} does not lie in memory: "
                 f"no /memory block holds {hole:#x}")


@pytest.mark.parametrize("memory", [
    # one block, two touching ones in either order, two overlapping ones
    memory_at_0(RAM),
    f'memory@0 {{ device_type = "memory"; reg = <0 0 0 {RMA:#x} 0 {RMA:#x} 0 {RMA:#x}>; }};',
    f'memory@0 {{ device_type = "memory"; reg = <0 {RMA:#x} 0 {RMA:#x} 0 0 0 {RMA:#x}>; }};',
    f'memory@0 {{ device_type = "memory"; reg = <0 0 0 {RMA:#x} 0 {RMA - PAGE:#x} 0 {RMA:#x}>; }};',
])
def test_an_initrd_across_blocks_that_meet_lies_in_memory(build, memory):
    """[RMA - 4K, RMA + 4K): in memory when the blocks meet at RMA (as
    the kernel maps them), whatever order the tree lists them in."""
    tree = dtb(chosen_initrd(RMA - PAGE, RMA + PAGE), memory=memory, reserves=LOW_PAGE)
    stop = run(build.wrapper, tree)
    assert stop.word_before != TW_31_0_0, stop.message


def test_an_initrd_over_the_tree_and_outside_memory_stops_with_INITRD_OVERLAP(build):
    """The overlap is checked first (docs/kexec.md, step 3)."""
    tree = dtb(chosen_initrd(TREE_AT - PAGE, TREE_AT + 0x10), memory=memory_at_0(RMA))
    assert_fatal(run(build.wrapper, tree), INITRD_OVERLAP, "overlaps the device tree")


def test_a_zero_size_initrd_inside_the_wrapper_is_no_initrd(build):
    """I1 == I0: nothing to check, record or hand on."""
    stop = run(build.wrapper, dtb(chosen_initrd(WRAPPER_AT + PAGE, WRAPPER_AT + PAGE),
                                  reserves=LOW_PAGE))
    assert stop.word_before != TW_31_0_0, stop.message


# ------------------------------------------------------- the range table

def test_a_reserve_past_2_to_the_64_stops_with_KNOWN_RANGE(build):
    tree = dtb(reserves=[(0xFFFF_FFFF_FFFF_0000, 0x20000)])
    assert_fatal(run(build.wrapper, tree), KNOWN_RANGE, "cannot record reserved")


def reserves_above_the_kernel(n: int) -> list[tuple[int, int]]:
    """n disjoint pages from 4 MiB up, none touching another."""
    return [(0x400000 + k * 0x20000, PAGE) for k in range(n)]


def test_a_33rd_range_stops_with_KNOWN_RANGE(build):
    tree = dtb(reserves=reserves_above_the_kernel(33))
    assert_fatal(run(build.wrapper, tree), KNOWN_RANGE, "cannot record reserved")


def test_a_full_table_with_0_free_stops_with_KERNEL(build):
    """32 ranges fill the table; [0, S) is free but touches none of them,
    so recording the kernel there is refused (fixed: at once, kexec.c;
    seed: after the heap merged into the last range, main.c)."""
    assert kernel_size(build.kernel) < 0x400000
    tree = dtb(reserves=reserves_above_the_kernel(32))
    text = {"fixed": "cannot record the kernel at 0", "seed": "no room for the kernel"}
    assert_fatal(run(build.wrapper, tree), KERNEL, text[build.policy])


def test_a_real_mode_area_under_64k_stops_with_HEAP(build):
    tree = dtb(memory=memory_at_0(0xF000))
    assert_fatal(run(build.wrapper, tree), HEAP, "no room for the heap")


# -------------------------------------------------------------- the heap

def test_an_initrd_below_the_kernels_end_too_big_for_the_heap(build):
    """Initrd [4K, 132K), heap 64K after it.  fixed: moving the initrd
    fails (INITRD_MOVE); seed: the kernel (over 64K) does not fit (KERNEL)."""
    S = kernel_size(build.kernel)
    start, end = PAGE, PAGE + 0x20000
    assert S > 0x10000 and align(S) <= end
    tree = dtb(chosen_initrd(start, end), memory=memory_at_0(end + 0x10000))
    stop = run(build.wrapper, tree)
    if build.policy == "fixed":
        assert_fatal(stop, INITRD_MOVE, "no room to move the initrd")
    else:
        assert_fatal(stop, KERNEL, "no room for the kernel")


def small_rma(build: Build) -> int:
    """Room for the heap and the kernel in it under both policies, with
    LOW_PAGE reserved, and 128K to spare."""
    return 2 * align(kernel_size(build.kernel)) + 0x20000


def test_an_attached_initrd_bigger_than_the_heap_stops_with_INITRD_ALLOC(build):
    rma = small_rma(build)
    image = build.compose("attached-initrd", initrd=bytes(rma))
    tree = dtb(memory=memory_at_0(rma), reserves=LOW_PAGE)
    assert_fatal(run(image, tree), INITRD_ALLOC, "no room for the attached initrd")


def test_a_tree_bigger_than_the_heap_stops_with_DTB(build):
    rma = small_rma(build)
    tree = dtb(memory=memory_at_0(rma), reserves=LOW_PAGE, pad=rma)
    assert_fatal(run(build.wrapper, tree), DTB, "no room for the final device tree")


# ----------------------------------------------------- the kernel image

def test_an_empty_kernel_stops_with_NO_KERNEL(build):
    image = build.compose("empty", kernel=b"")
    assert_fatal(run(image, dtb(reserves=LOW_PAGE)), NO_KERNEL, "no kernel in the image")


def test_a_broken_gzip_stream_stops_with_KERNEL_GZIP(build):
    image = build.compose("bad-gzip", kernel=b"\x1f\x8b\x09" + bytes(61))
    assert_fatal(run(image, dtb(reserves=LOW_PAGE)), KERNEL_GZIP, "kernel image: ")


def gzipped_kernel(build: Build, level: int = 9) -> bytes:
    return gzip.compress(build.kernel.read_bytes(), compresslevel=level, mtime=0)


def with_trailer(stream: bytes, crc: int | None = None, isize: int | None = None) -> bytes:
    old_crc, old_isize = struct.unpack("<II", stream[-8:])
    return stream[:-8] + struct.pack("<II", old_crc if crc is None else crc,
                                     old_isize if isize is None else isize)


def test_a_kernel_stream_with_its_trailer_intact_reaches_the_kernel(build):
    """The streams below differ from this one only where they say."""
    image = build.compose("gzip-good", kernel=gzipped_kernel(build))
    stop = run(image, dtb(reserves=LOW_PAGE))
    assert stop.word_before != TW_31_0_0, stop.message


@pytest.mark.parametrize("name, change, text", [
    ("crc", lambda s: with_trailer(s, crc=struct.unpack("<I", s[-8:-4])[0] ^ 1),
     "kernel image: CRC-32 mismatch"),
    ("isize-more", lambda s: with_trailer(s, isize=struct.unpack("<I", s[-4:])[0] + 1),
     "kernel image: uncompressed size (ISIZE) mismatch"),
    # fewer bytes than the ELF header: named as the lie it is, not a short ELF
    ("isize-tiny", lambda s: with_trailer(s, isize=64),
     "kernel image: uncompressed size (ISIZE) mismatch"),
])
def test_a_kernel_stream_whose_trailer_differs_stops_with_KERNEL_GZIP(build, name, change, text):
    """The kernel's segments end before its file does, so inflating them
    never reached the trailer: such a stream was handed on as if fine."""
    image = build.compose(f"gzip-{name}", kernel=change(gzipped_kernel(build)))
    assert_fatal(run(image, dtb(reserves=LOW_PAGE)), KERNEL_GZIP, text)


def test_a_kernel_stream_with_a_flipped_data_byte_stops_with_KERNEL_GZIP(build):
    """Stored blocks decode whatever their bytes say: a byte of the kernel's
    code changed in the stream is seen only by the CRC (fuzz seed 1 case
    140: the kernel ran the garbage and took a program interrupt)."""
    stream = bytearray(gzipped_kernel(build, level=0))
    with open(build.kernel, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        assert text is not None
        at = text["sh_offset"] + 8
    # one stored block from the start: its five header bytes (RFC 1951
    # 3.2.4), then the file's bytes as they are
    assert stream[10] & 6 == 0 and int.from_bytes(stream[11:13], "little") > at
    stream[10 + 5 + at] ^= 0x10
    image = build.compose("gzip-flipped", kernel=bytes(stream))
    assert_fatal(run(image, dtb(reserves=LOW_PAGE)), KERNEL_GZIP,
                 "kernel image: CRC-32 mismatch")


def test_a_kernel_that_is_no_elf_stops_with_KERNEL_ELF(build):
    image = build.compose("not-elf", kernel=b"MZ" + bytes(254))
    assert_fatal(run(image, dtb(reserves=LOW_PAGE)), KERNEL_ELF, "kernel image: ")


def test_a_kernel_file_cut_after_its_headers_stops_with_KERNEL_SHORT(build):
    image = build.compose("short", kernel=build.kernel.read_bytes()[:0x400])
    assert_fatal(run(image, dtb(reserves=LOW_PAGE)), KERNEL_SHORT, "past its end")


def test_the_normal_tree_reaches_the_kernel(build):
    """The trees above fail only where they are meant to: the same layout
    with nothing wrong boots (the test kernel's report hypercall is the
    first interrupt)."""
    stop = run(build.wrapper, dtb(reserves=LOW_PAGE))
    assert stop.word_before != TW_31_0_0, stop.message
