"""Device-tree edge behaviours of our fdt code (firmware/fdt.c, fdt_rw.c,
built for the host), each pinned against libfdt itself through pylibfdt
on generated trees:

- a NOP token at any token boundary after the root's name, and NOPs at
  all of them at once: every lookup answers exactly as libfdt does (a NOP
  never ends a property search or a walk over children);
- a property length near 2^32 (and every length from just inside to just
  past the structure block): where libfdt refuses to read, ours returns an
  error too, whatever its code; where libfdt reads, ours reads the same
  bytes.  No bound may wrap in 32 bits;
- setprop growing a tree at the exact room boundary: ours succeeds for
  precisely the buffer sizes libfdt's does (a new name's bytes counted),
  and the trees read back alike.

NOPs before the root's BEGIN_NODE are left out: libfdt, like our code,
takes the root to be at offset 0.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import libfdt
import pytest

from hostc import build_host_tool
from test_fdt import pyfdt_tree

DTS = """
/dts-v1/;
/memreserve/ 0x1000 0x2000;
/ {
	#address-cells = <2>;
	#size-cells = <1>;
	model = "bwemu,edges";
	empty-prop;
	memory@0 { device_type = "memory"; reg = <0 0 0x10000000>; };
	chosen { bootargs = "console=hvc0"; linux,initrd-start = <0 0x100>; };
	cpus {
		#address-cells = <1>;
		cpu@0 { reg = <0>; };
		cpu@1 { reg = <1>; status = "okay"; };
	};
	leafless { };
	deep { a { b { leaf = <0xdeadbeef>; }; }; };
};
"""
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
NOP = FDT_NOP.to_bytes(4, "big")
QUIET = (libfdt.NOTFOUND, libfdt.TRUNCATED, libfdt.BADSTRUCTURE, libfdt.BADOFFSET,
         libfdt.BADLAYOUT, libfdt.NOSPACE, libfdt.BADVALUE)


@pytest.fixture(scope="module")
def driver() -> Path:
    return build_host_tool("fdt_driver", ["fdt.c", "fdt_rw.c"])


@pytest.fixture
def ours(driver: Path, tmp_path: Path):
    count = [0]

    def run(blob: bytes, *ops: object) -> list[str]:
        count[0] += 1
        path = tmp_path / f"t{count[0]}.dtb"
        path.write_bytes(blob)
        proc = subprocess.run([str(driver), str(path), *map(str, ops)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return [line.rstrip() for line in proc.stdout.splitlines()]
    return run


def dtc(dts: str) -> bytes:
    return subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-"], input=dts.encode(),
                          capture_output=True, check=True).stdout


def field(blob: bytes, index: int) -> int:
    return struct.unpack_from(">I", blob, 4 * index)[0]


def tokens(blob: bytes) -> list[int]:
    """The structure-block offsets of every token, in order."""
    st, size = field(blob, 2), field(blob, 9)
    out, off = [], 0
    while off < size:
        out.append(off)
        tag = struct.unpack_from(">I", blob, st + off)[0]
        if tag == FDT_BEGIN_NODE:
            nul = blob.index(b"\0", st + off + 4)
            off = (nul - st + 1 + 3) & ~3
        elif tag == FDT_PROP:
            length = struct.unpack_from(">I", blob, st + off + 4)[0]
            off += 12 + ((length + 3) & ~3)
        else:
            off += 4
    return out


def with_nops(blob: bytes, at: list[int]) -> bytes:
    """blob with a NOP inserted before each structure offset in at."""
    st, strs = field(blob, 2), field(blob, 3)
    body = bytearray(blob[st:st + field(blob, 9)])
    for off in sorted(at, reverse=True):
        body[off:off] = NOP
    grow = 4 * len(at)
    out = bytearray(blob[:st] + body + blob[st + field(blob, 9):])
    for index, value in ((1, len(out)), (9, field(blob, 9) + grow)):
        struct.pack_into(">I", out, 4 * index, value)
    if strs > st:
        struct.pack_into(">I", out, 12, strs + grow)
    return bytes(out)


def libfdt_answers(blob: bytes, node_paths: list[str],
                   props: dict[str, list[str]]) -> tuple[list[object], list[str]]:
    """Our driver's ops for every lookup, and libfdt's answer to each, as
    the driver prints it."""
    fdt = libfdt.Fdt(blob)
    ops: list[object] = []
    want: list[str] = []
    for path in node_paths:
        node = fdt.path_offset(path, quiet=QUIET)
        ops += ["path", path]
        want.append(str(node) if node >= 0 else f"err {node}")
        if node < 0:
            continue
        for name in [*props[path], "no-such-property"]:
            ops += ["getprop", path, name]
            value = fdt.getprop(node, name, quiet=QUIET)
            want.append(f"err {value}" if isinstance(value, int)
                        else f"{len(value)} {bytes(value).hex()}".rstrip())
        kids = []
        child = fdt.first_subnode(node, quiet=QUIET)
        while child >= 0:
            kids.append(fdt.get_name(child))
            child = fdt.next_subnode(child, quiet=QUIET)
        ops += ["subnodes", path]
        want.append(" ".join([*kids, "end"]) if child == -libfdt.NOTFOUND else
                    " ".join(kids + [f"err {child}"]))
    return ops, want


@pytest.fixture(scope="module")
def sample():
    blob = dtc(DTS)
    props = {path: list(values) for path, values in pyfdt_tree(blob).items()}
    node_paths = list(props)
    return blob, node_paths + ["/memory", "/cpus/cpu", "/nope"], props | {
        "/memory": props["/memory@0"], "/cpus/cpu": props["/cpus/cpu@0"], "/nope": []}


def test_a_nop_at_every_token_boundary_reads_as_libfdt_reads_it(ours, sample):
    blob, node_paths, props = sample
    offsets = tokens(blob)
    assert len(offsets) > 30
    wrong = []
    for at in offsets[1:]:                 # after the root's BEGIN_NODE and name
        tree = with_nops(blob, [at])
        ops, want = libfdt_answers(tree, node_paths, props)
        got = ours(tree, "check", *ops)
        if got != ["ok", *want]:
            wrong.append((at, [(o, g, w) for o, g, w in zip(ops[::2], got[1:], want,
                                                              strict=False) if g != w][:3]))
    assert not wrong, wrong[:3]


def test_nops_at_every_boundary_at_once_read_as_libfdt_reads_them(ours, sample):
    blob, node_paths, props = sample
    tree = with_nops(blob, tokens(blob)[1:] * 2)          # two NOPs everywhere
    ops, want = libfdt_answers(tree, node_paths, props)
    assert ours(tree, "check", "probe", *ops) == ["ok", ours(blob, "probe")[0], *want]


def test_a_nop_between_properties_does_not_end_the_property_search(ours, sample):
    blob, _, _ = sample
    fdt = libfdt.Fdt(blob)
    chosen = fdt.path_offset("/chosen")
    second = fdt.next_property_offset(fdt.first_property_offset(chosen))
    tree = with_nops(blob, [second])
    assert ours(tree, "getprop", "/chosen", "linux,initrd-start") == \
        [f"8 {bytes(libfdt.Fdt(tree).getprop(chosen, 'linux,initrd-start')).hex()}"]


def _first_property(blob: bytes) -> int:
    """Absolute offset of the root's first property's length word."""
    st = field(blob, 2)
    return st + libfdt.Fdt(blob).first_property_offset(0) + 4


LENGTHS = [0xFFFF_FFFF, 0xFFFF_FFFD, 0xFFFF_FFFC, 0xFFFF_FFF8, 0xFFFF_FFF4, 0xFFFF_FFF0,
           0x8000_0000, 0x7FFF_FFFF]


def readable(line: str) -> str:
    """What an answer yields, error codes aside: a value, an offset, the
    children listed before the walk ended ("err N" and "end" alike)."""
    words = line.split()
    for stop in ("err", "end"):
        if stop in words:
            words = words[:words.index(stop)]
    return " ".join(words)


def _agree(ours_lines: list[str], libfdt_lines: list[str]) -> list[tuple[str, str]]:
    return [(g, w) for g, w in zip(ours_lines, libfdt_lines, strict=True)
            if readable(g) != readable(w)]


@pytest.mark.parametrize("length", LENGTHS, ids=hex)
def test_a_property_length_near_2_to_the_32_is_an_error_as_in_libfdt(ours, sample, length):
    blob, node_paths, props = sample
    tree = bytearray(blob)
    struct.pack_into(">I", tree, _first_property(blob), length)
    tree = bytes(tree)
    ops, want = libfdt_answers(tree, node_paths, props)
    got = ours(tree, "check", "probe", *ops)
    assert got[0] == "ok" and got[1].startswith("err ")       # the header is fine
    assert not _agree(got[2:], want)


def test_every_property_length_up_to_past_the_block_agrees_with_libfdt(ours, sample):
    """Near the true length, every 5th byte on, and each length around the
    structure block's end, to 8 bytes past it."""
    blob, node_paths, props = sample
    at = _first_property(blob)
    first = struct.unpack_from(">I", blob, at)[0]
    room = field(blob, 2) + field(blob, 9) - (at + 8)       # bytes after the name word
    bad = []
    for length in sorted({*range(first, first + 9), *range(first, room, 5),
                          *range(room - 8, room + 9)}):
        tree = bytearray(blob)
        struct.pack_into(">I", tree, at, length)
        ops, want = libfdt_answers(bytes(tree), node_paths, props)
        bad += [(length, g, w) for g, w in _agree(ours(bytes(tree), *ops), want)]
    assert not bad, bad[:5]


EDITS = {
    # name: (node, property, value)
    "new name": ("/chosen", "linux,initrd-end", bytes(8)),
    "name in the strings block": ("/leafless", "reg", b"\1\2\3\4"),
    "name a suffix of another": ("/leafless", "type", b"x"),
    "empty value, new name": ("/deep/a", "flag", b""),
    "grow an existing value": ("/", "model", b"a longer model name\0"),
    "grow within its padding": ("/chosen", "bootargs", b"console=hvc1\0\0\0"),
    "same size": ("/cpus/cpu@1", "status", b"fail\0"),
    "shrink": ("/", "model", b"m\0"),
}


def _libfdt_setprop(blob: bytes, size: int, path: str, name: str, value: bytes) -> str:
    fdt = libfdt.Fdt(bytearray(blob))
    try:
        fdt.resize(size)
    except libfdt.FdtException:
        return "err open"
    err = fdt.setprop(fdt.path_offset(path), name, value, quiet=(libfdt.NOSPACE,))
    return "ok" if err == 0 else f"err {err}"


@pytest.mark.parametrize("edit", list(EDITS))
def test_setprop_fits_exactly_where_libfdt_fits(ours, sample, edit):
    blob = sample[0]
    path, name, value = EDITS[edit]
    sizes = range(len(blob) - 4, len(blob) + 48)
    theirs = {size: _libfdt_setprop(blob, size, path, name, value) for size in sizes}
    fits = min(size for size, t in theirs.items() if t == "ok")
    assert fits > sizes[0], "libfdt's boundary lies inside the range tried"
    for size in (*range(fits - 3, fits + 3), fits + 40):
        got = ours(blob, "open", size, "setprop", path, name, value.hex(), "getprop", path,
                   name)
        mine = "err open" if got[0] != "ok" else got[1]
        want = theirs.get(size) or _libfdt_setprop(blob, size, path, name, value)
        assert mine == want, (size, got, want)
        if mine == "ok":
            assert got[2] == f"{len(value)} {value.hex()}".rstrip()
