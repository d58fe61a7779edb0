"""firmware/elf.c: ELF64 big-endian PPC64 program header parsing, on the host.

ELF files are built here with struct.pack (ELF-64 object file format), plus
one linked by the cross toolchain and read back with pyelftools.  The driver
(firmware/host/elf_driver.c) prints elf_info as key=value lines, or exits
with the positive ELF_ERR_* code.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hostc import build_host_tool

# firmware/include/elf.h
SHORT, BADMAGIC, BADCLASS, NOLOAD, TOOMANY, BADSEGMENT = 1, 2, 3, 4, 5, 6

PT_LOAD, PT_NOTE, PT_GNU_STACK = 1, 4, 0x6474E551
SANITIZER_MARKS = ("AddressSanitizer", "runtime error")


def phdr(p_type=PT_LOAD, offset=0, vaddr=0, paddr=0, filesz=0, memsz=0,
         flags=5, align=0x10000) -> bytes:
    return struct.pack(">IIQQQQQQ", p_type, flags, offset, vaddr, paddr,
                       filesz, memsz, align)


def make_elf(phdrs: list[bytes], entry: int, phoff: int = 64, phentsize: int = 56,
             ident: bytes | None = None, machine: int = 21, tail: int = 0) -> bytes:
    if ident is None:
        ident = b"\x7fELF" + bytes([2, 2, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack(">HHIQQQIHHHHHH", 2, machine, 1, entry, phoff, 0, 0,
                               64, phentsize, len(phdrs), 64, 0, 0)
    assert len(ehdr) == 64
    body = bytearray(ehdr)
    body += bytes(max(0, phoff - len(body)))
    for p in phdrs:
        body += (p + bytes(max(0, phentsize - len(p))))[:phentsize]
    return bytes(body) + bytes(tail)


@pytest.fixture(scope="module")
def driver() -> Path:
    return build_host_tool("elf_driver", ["elf.c"])


@pytest.fixture
def parse(driver, tmp_path):
    def run(image: bytes):
        p = tmp_path / "k.elf"
        p.write_bytes(image)
        proc = subprocess.run([str(driver), str(p)], capture_output=True, text=True, timeout=30)
        assert not any(m in proc.stderr for m in SANITIZER_MARKS), proc.stderr
        assert proc.returncode >= 0
        if proc.returncode:
            return proc.returncode
        out = dict(line.split("=", 1) for line in proc.stdout.splitlines())
        info = {k: int(v, 0) for k, v in out.items() if not k.startswith("seg")}
        info["seg"] = [tuple(int(x, 0) for x in out[f"seg{i}"].split(","))
                       for i in range(info["nsegments"])]
        return info
    return run


def test_two_segment_kernel(parse):
    image = make_elf([
        phdr(offset=0x10000, vaddr=0xC000000000000000, paddr=0x0, filesz=0x5000, memsz=0x5000),
        phdr(PT_NOTE, offset=0x200, filesz=0x30, memsz=0x30),
        phdr(offset=0x20000, vaddr=0xC000000000010000, paddr=0x10000, filesz=0x800, memsz=0x9000),
    ], entry=0xC000000000000100)
    info = parse(image)
    assert info == {
        "entry": 0x100, "base": 0, "memsize": 0x19000,
        "phdrs_end": 64 + 3 * 56, "nsegments": 2,
        "seg": [(0x10000, 0x5000, 0x5000, 0), (0x20000, 0x800, 0x9000, 0x10000)],
    }


def test_base_is_lowest_paddr_and_segments_keep_file_order(parse):
    image = make_elf([
        phdr(offset=0x3000, vaddr=0xC000000002000000, paddr=0x2000000, filesz=0x100, memsz=0x200),
        phdr(offset=0x1000, vaddr=0xC000000001000000, paddr=0x1000000, filesz=0x100, memsz=0x100),
    ], entry=0xC000000001000010)
    info = parse(image)
    assert info["base"] == 0x1000000
    assert info["memsize"] == 0x1000200
    assert info["entry"] == 0x10
    assert info["seg"] == [(0x3000, 0x100, 0x200, 0x1000000), (0x1000, 0x100, 0x100, 0)]


def test_vaddr_used_when_every_paddr_is_zero(parse):
    image = make_elf([
        phdr(offset=0x1000, vaddr=0x400000, filesz=0x100, memsz=0x100),
        phdr(offset=0x2000, vaddr=0x410000, filesz=0x10, memsz=0x1000),
    ], entry=0x400080)
    info = parse(image)
    assert (info["base"], info["memsize"], info["entry"]) == (0x400000, 0x11000, 0x80)
    assert [s[3] for s in info["seg"]] == [0, 0x10000]


def test_one_nonzero_paddr_means_paddrs_are_used(parse):
    image = make_elf([
        phdr(offset=0x1000, vaddr=0x400000, paddr=0, filesz=0x100, memsz=0x100),
        phdr(offset=0x2000, vaddr=0x410000, paddr=0x10000, filesz=0x10, memsz=0x1000),
    ], entry=0x400000)
    info = parse(image)
    assert (info["base"], info["memsize"]) == (0, 0x11000)


def test_larger_phentsize_and_late_phoff(parse):
    image = make_elf([phdr(offset=0x1000, paddr=0x100, vaddr=0x100, filesz=8, memsz=8),
                      phdr(offset=0x1008, paddr=0x200, vaddr=0x200, filesz=8, memsz=8)],
                     entry=0x100, phoff=0x100, phentsize=64)
    info = parse(image)
    assert info["phdrs_end"] == 0x100 + 2 * 64
    assert info["seg"][1] == (0x1008, 8, 8, 0x100)


def test_buffer_ending_exactly_at_the_phdrs_is_enough(parse):
    image = make_elf([phdr(offset=0x1000, paddr=0x100, vaddr=0x100, filesz=8, memsz=8)],
                     entry=0x100)
    assert len(image) == 64 + 56
    assert parse(image)["phdrs_end"] == len(image)
    assert parse(image[:-1]) == SHORT


def test_eight_segments_allowed_nine_too_many(parse):
    segs = [phdr(offset=0x1000 * i, paddr=0x1000 * i, vaddr=0x1000 * i, filesz=8, memsz=8)
            for i in range(9)]
    assert parse(make_elf(segs[:8], entry=0))["nsegments"] == 8
    assert parse(make_elf(segs, entry=0)) == TOOMANY
    # non-load headers do not count
    others = [phdr(PT_GNU_STACK)] * 5
    assert parse(make_elf(others + segs[:8], entry=0))["nsegments"] == 8


GOOD = [phdr(offset=0x1000, paddr=0x100, vaddr=0x100, filesz=8, memsz=8)]


@pytest.mark.parametrize("image,code", [
    (b"", SHORT),
    (b"\x7fEL", SHORT),
    (make_elf(GOOD, entry=0x100)[:63], SHORT),
    (b"\x7fELG" + bytes(100), BADMAGIC),
    (b"MZ", BADMAGIC),
    (make_elf(GOOD, 0x100, ident=b"\x7fELF\x01\x02\x01" + bytes(9)), BADCLASS),  # 32-bit
    (make_elf(GOOD, 0x100, ident=b"\x7fELF\x02\x01\x01" + bytes(9)), BADCLASS),  # little-endian
    (make_elf(GOOD, 0x100, machine=20), BADCLASS),                                # EM_PPC
    (make_elf(GOOD, 0x100, phentsize=32), BADCLASS),
    (make_elf(GOOD, 0x100, phoff=0x1000)[:200], SHORT),
    (make_elf(GOOD, 0x100)[:64], SHORT),  # phdr missing
    (make_elf([], 0x100), NOLOAD),
    (make_elf([phdr(PT_NOTE, filesz=4, memsz=4)], 0x100), NOLOAD),
    (make_elf([phdr(offset=0x1000, paddr=0x100, vaddr=0x100, filesz=9, memsz=8)], 0x100),
     BADSEGMENT),
    (make_elf([phdr(offset=2**64 - 4, paddr=0x100, vaddr=0x100, filesz=8, memsz=8)], 0x100),
     BADSEGMENT),
    (make_elf([phdr(offset=0, paddr=2**64 - 4, vaddr=0x100, filesz=8, memsz=8)], 0x100),
     BADSEGMENT),
    (make_elf([phdr(offset=0, paddr=0x100, vaddr=2**64 - 4, filesz=8, memsz=8)], 0x100),
     BADSEGMENT),
    # ... and with the entry inside it, so only the wrap refuses it
    (make_elf([phdr(offset=0, paddr=0x100, vaddr=2**64 - 4, filesz=8, memsz=8)], 2**64 - 4),
     BADSEGMENT),
    (make_elf(GOOD, entry=0xFF), BADSEGMENT),    # entry below the image
    (make_elf(GOOD, entry=0x108), BADSEGMENT),   # entry past its end
])
def test_errors(parse, image, code):
    assert parse(image) == code


def test_phoff_overflow_is_short(parse):
    image = bytearray(make_elf(GOOD, 0x100))
    image[32:40] = struct.pack(">Q", 2**64 - 8)
    assert parse(bytes(image)) == SHORT


def test_entry_at_last_byte_is_inside(parse):
    assert parse(make_elf(GOOD, entry=0x107))["entry"] == 7


def test_strerror_has_distinct_text_for_each_code(driver):
    def text(n):
        return subprocess.run([str(driver), "--strerror", str(n)], capture_output=True,
                              text=True, check=True).stdout
    texts = [text(-c) for c in range(1, 7)]
    assert len(set(texts)) == 6 and all(len(t) > 5 for t in texts)
    assert text(3) == texts[2]
    assert text(7) == text(-7) == text(-2147483648) not in texts


CROSS = "powerpc64-linux-gnu-gcc"


@pytest.mark.skipif(shutil.which(CROSS) is None, reason="no ppc64 cross compiler")
def test_agrees_with_pyelftools_on_a_linked_binary(parse, tmp_path):
    from elftools.elf.elffile import ELFFile

    src = tmp_path / "k.c"
    src.write_text("int data[100] = {1};\nint bss[5000];\n"
                   "void _start(void) { bss[1] = data[0]; for (;;) ; }\n")
    exe = tmp_path / "k"
    subprocess.run([CROSS, "-nostdlib", "-static", "-ffreestanding", "-O1",
                    "-Wl,-Ttext=0x100000", "-o", str(exe), str(src)], check=True)
    raw = exe.read_bytes()
    info = parse(raw)
    with open(exe, "rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        assert len(loads) >= 1
        base = min(s["p_paddr"] for s in loads)
        vbase = min(s["p_vaddr"] for s in loads)
        assert info["base"] == base
        assert info["memsize"] == max(s["p_paddr"] + s["p_memsz"] for s in loads) - base
        assert info["entry"] == elf["e_entry"] - vbase
        assert info["phdrs_end"] == elf["e_phoff"] + elf["e_phnum"] * elf["e_phentsize"]
        assert info["seg"] == [(s["p_offset"], s["p_filesz"], s["p_memsz"], s["p_paddr"] - base)
                               for s in loads]
