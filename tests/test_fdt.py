"""The wrapper's device tree code (firmware/fdt.c, fdt_rw.c) on the host.

Trees come from dtc and pylibfdt; our reads are compared with pylibfdt's on
the same blob (node offsets are the same byte offsets in both), our writes
are read back with pylibfdt and dtc.  Corrupt trees must give an error code,
never a sanitizer report or a hang: the driver runs under ASan/UBSan with a
timeout and the tree in a buffer of exactly its size.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import libfdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fdtcraft
from emulator.guest.devicetree import DeviceTreeError, check_structure
from hostc import FIRMWARE, build_host_tool

# Our error codes are libfdt's (tests/test_fdt_errors.py checks each).
NOTFOUND, EXISTS, NOSPACE, BADOFFSET, BADPATH, TRUNCATED = (
    -libfdt.NOTFOUND, -libfdt.EXISTS, -libfdt.NOSPACE, -libfdt.BADOFFSET, -libfdt.BADPATH,
    -libfdt.TRUNCATED)
BADMAGIC, BADVERSION, BADSTRUCTURE, BADLAYOUT, BADVALUE, BADNCELLS = (
    -libfdt.BADMAGIC, -libfdt.BADVERSION, -libfdt.BADSTRUCTURE, -libfdt.BADLAYOUT,
    -libfdt.BADVALUE, -libfdt.BADNCELLS)
CODES = (NOTFOUND, EXISTS, NOSPACE, BADOFFSET, BADPATH, TRUNCATED,
         BADMAGIC, BADVERSION, BADSTRUCTURE, BADLAYOUT, BADVALUE, BADNCELLS)

SAMPLE_DTS = """
/dts-v1/;
/memreserve/ 0x1000 0x2000;
/memreserve/ 0x10000000 0x400000;
/ {
	#address-cells = <2>;
	#size-cells = <1>;
	model = "bwemu,test";
	compatible = "bwemu,pseries", "generic";
	memory@0 { device_type = "memory"; reg = <0 0 0x10000000>; };
	memory@10000000 { device_type = "memory"; reg = <0 0x10000000 0x1000>; };
	chosen { bootargs = "console=hvc0 root=/dev/ram"; empty; };
	cpus {
		#address-cells = <1>;
		#size-cells = <0>;
		cpu@0 { reg = <0>; device_type = "cpu"; };
		cpu@1 { reg = <1>; device_type = "cpu"; };
	};
	deep { a { b { c { leaf = <0xdeadbeef 0x01020304>; }; }; }; };
};
"""

# Header fields and their offsets (Devicetree Specification, 5.2).
HEADER = {name: 4 * i for i, name in enumerate(
    ["magic", "totalsize", "off_dt_struct", "off_dt_strings", "off_mem_rsvmap",
     "version", "last_comp_version", "boot_cpuid_phys", "size_dt_strings",
     "size_dt_struct"])}


@pytest.fixture(scope="module")
def driver() -> Path:
    return build_host_tool("fdt_driver", ["fdt.c", "fdt_rw.c"])


def dtc(dts: str, *args: str) -> bytes:
    proc = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", *args, "-"],
                          input=dts.encode(), capture_output=True, check=True)
    return proc.stdout


def hdr(blob: bytes, field: str) -> int:
    return struct.unpack_from(">I", blob, HEADER[field])[0]


def with_hdr(blob: bytes, **fields: int) -> bytes:
    out = bytearray(blob)
    for name, value in fields.items():
        struct.pack_into(">I", out, HEADER[name], value)
    return bytes(out)


class Driver:
    def __init__(self, exe: Path, tmp: Path):
        self.exe, self.tmp, self.n = exe, tmp, 0

    def _file(self, blob: bytes) -> Path:
        self.n += 1
        path = self.tmp / f"in{self.n}.dtb"
        path.write_bytes(blob)
        return path

    def run(self, blob: bytes, *ops: str) -> list[str]:
        proc = subprocess.run([str(self.exe), str(self._file(blob)), *map(str, ops)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return proc.stdout.splitlines()

    def probe_many(self, blobs: list[bytes]) -> list[str]:
        files = [str(self._file(b)) for b in blobs]
        proc = subprocess.run([str(self.exe), "--probe", *files],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        lines = proc.stdout.splitlines()
        assert len(lines) == len(blobs)
        return lines

    def full_many(self, blobs: list[bytes]) -> list[str]:
        """fdt_check_full of each blob, in a buffer of exactly its size."""
        files = [str(self._file(b)) for b in blobs]
        proc = subprocess.run([str(self.exe), "--full", *files],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return proc.stdout.splitlines()

    def edit(self, blob: bytes, *ops: str) -> tuple[list[str], bytes]:
        """Runs ops, then writes the tree out; returns results and the blob."""
        out = self.tmp / f"out{self.n + 1}.dtb"
        lines = self.run(blob, *ops, "write", out)
        assert lines[-1] == "ok"
        return lines[:-1], out.read_bytes()


@pytest.fixture
def drv(driver: Path, tmp_path: Path) -> Driver:
    return Driver(driver, tmp_path)


def err(code: int) -> str:
    return f"err {code}"


def pyfdt_tree(blob: bytes) -> dict:
    """The whole tree as {path: {prop: value}} in document order, via pylibfdt."""
    fdt = libfdt.Fdt(blob)
    tree: dict[str, dict[str, bytes]] = {}

    def visit(node: int, path: str) -> None:
        props = {}
        off = fdt.first_property_offset(node, quiet=(libfdt.NOTFOUND,))
        while off >= 0:
            prop = fdt.get_property_by_offset(off)
            props[prop.name] = bytes(prop)
            off = fdt.next_property_offset(off, quiet=(libfdt.NOTFOUND,))
        tree[path] = props
        child = fdt.first_subnode(node, quiet=(libfdt.NOTFOUND,))
        while child >= 0:
            name = fdt.get_name(child)
            visit(child, path.rstrip("/") + "/" + name)
            child = fdt.next_subnode(child, quiet=(libfdt.NOTFOUND,))

    visit(0, "/")
    return tree


# ---------------------------------------------------------------- reading

SAMPLE_PATHS = ["/", "/memory@0", "/memory", "/memory@10000000", "/chosen",
                "/cpus", "/cpus/cpu@0", "/cpus/cpu@1", "/cpus/cpu",
                "/deep/a/b/c", "/deep/a/b/c/", "//deep//a", "/nope",
                "/chosen/nope", "/memory@1"]


def test_path_offsets_match_pylibfdt(drv):
    blob = dtc(SAMPLE_DTS)
    fdt = libfdt.Fdt(blob)
    ours = drv.run(blob, *[x for p in SAMPLE_PATHS for x in ("path", p)])
    for path, got in zip(SAMPLE_PATHS, ours, strict=True):
        want = fdt.path_offset(path, quiet=(libfdt.NOTFOUND,))
        assert got == (str(want) if want >= 0 else err(NOTFOUND)), path


def test_path_without_unit_address_finds_first_matching_node(drv):
    blob = dtc(SAMPLE_DTS)
    fdt = libfdt.Fdt(blob)
    got = drv.run(blob, "path", "/memory", "path", "/cpus/cpu", "path", "/memory@1")
    assert got == [str(fdt.path_offset("/memory@0")),
                   str(fdt.path_offset("/cpus/cpu@0")), err(NOTFOUND)]


def test_relative_or_empty_path_is_badpath(drv):
    blob = dtc(SAMPLE_DTS)
    assert drv.run(blob, "path", "chosen", "path", "", "path", "/") == \
        [err(BADPATH), err(BADPATH), "0"]


def test_getprop_matches_pylibfdt_for_every_property(drv):
    blob = dtc(SAMPLE_DTS)
    tree = pyfdt_tree(blob)
    ops, want = [], []
    for path, props in tree.items():
        for name, value in props.items():
            ops += ["getprop", path, name]
            want.append(f"{len(value)} {value.hex()}".rstrip())
        ops += ["getprop", path, "no-such-prop"]
        want.append(err(NOTFOUND))
    assert [line.rstrip() for line in drv.run(blob, *ops)] == want


def test_subnode_iteration_and_names_match_pylibfdt(drv):
    blob = dtc(SAMPLE_DTS)
    tree = pyfdt_tree(blob)
    ops, want = [], []
    for path in tree:
        kids = [p.rsplit("/", 1)[1] for p in tree if p != "/" and
                p.rsplit("/", 1)[0] == path.rstrip("/")]
        ops += ["subnodes", path]
        want.append(" ".join(kids + ["end"]))
        ops += ["name", path]
        want.append(f"'{path.rsplit('/', 1)[1]}'")
    assert drv.run(blob, *ops) == want


def test_subnode_offset_matches_pylibfdt(drv):
    blob = dtc(SAMPLE_DTS)
    fdt = libfdt.Fdt(blob)
    cpus = fdt.path_offset("/cpus")
    got = drv.run(blob, "subnode", "/cpus", "cpu@1", "subnode", "/cpus", "cpu",
                  "subnode", "/", "cpu@1")
    assert got == [str(fdt.subnode_offset(cpus, "cpu@1")),
                   str(fdt.subnode_offset(cpus, "cpu")), err(NOTFOUND)]


def test_reserve_map_matches_pylibfdt(drv):
    blob = dtc(SAMPLE_DTS)
    fdt = libfdt.Fdt(blob)
    want = [str(fdt.num_mem_rsv())] + [
        "{:#x} {:#x}".format(*fdt.get_mem_rsv(i)) for i in range(fdt.num_mem_rsv())]
    assert want[0] == "2"
    assert drv.run(blob, "rsv") == want
    assert drv.run(blob, "rsvget", "2", "rsvget", "-1") == [err(NOTFOUND)] * 2


def test_empty_reserve_map_has_no_entries(drv):
    assert drv.run(dtc("/dts-v1/; / { };"), "rsv") == ["0"]


CELLS_DTS = """
/dts-v1/;
/ {
	#address-cells = <1>;
	#size-cells = <2>;
	none { };
	zero { #address-cells = <0>; #size-cells = <5>; };
	cpus { #address-cells = <1>; #size-cells = <0>; };
	long { #address-cells = <0 1>; #size-cells = [01]; };
	four { #address-cells = <4>; #size-cells = <4>; };
};
"""


def test_address_and_size_cells(drv):
    blob = dtc(CELLS_DTS)
    got = drv.run(blob, "acells", "/", "scells", "/",
                  "acells", "/none", "scells", "/none",
                  "acells", "/zero", "scells", "/zero",
                  "acells", "/long", "scells", "/long",
                  "acells", "/four", "scells", "/four",
                  "acells", "/cpus", "scells", "/cpus")
    # Own property only (no inheritance); defaults 2 and 1; valid 0..4
    # (the devicetree spec's /cpus has #size-cells = <0>).
    assert got == ["1", "2", "2", "1", "0", err(BADNCELLS),
                   err(BADNCELLS), err(BADNCELLS), "4", "4", "1", "0"]


@pytest.mark.parametrize("hexval, cells, want", [
    ("12345678", 1, "0x12345678"),
    ("0000000112345678", 2, "0x112345678"),
    ("ffffffffffffffff", 2, "0xffffffffffffffff"),
    ("00000000aabbccdd11223344", 3, "0xaabbccdd11223344"),
    ("0000000000000000aabbccdd11223344", 4, "0xaabbccdd11223344"),
    ("00000001aabbccdd11223344", 3, err(BADNCELLS)),
    ("0000000000000001aabbccdd11223344", 4, err(BADNCELLS)),
    ("", 0, err(BADNCELLS)),
    ("00000000000000000000000000000000000000ff", 5, err(BADNCELLS)),
])
def test_read_cells(drv, hexval, cells, want):
    # The driver passes the value in a buffer of exactly its size, so a read
    # of more cells than asked for would be an ASan error.
    assert drv.run(b"", "readcells", hexval, str(cells)) == [want]


def test_offsets_that_are_not_nodes_are_badoffset(drv):
    blob = dtc(SAMPLE_DTS)
    fdt = libfdt.Fdt(blob)
    prop = fdt.first_property_offset(0)          # a PROP token, not a node
    past = hdr(blob, "size_dt_struct")
    offsets = [2, 4, prop, past, past + 400, -8, 0x7ffffffc]
    ops = []
    for off in offsets:
        ops += ["name", f"@{off}", "getprop", f"@{off}", "model",
                "subnodes", f"@{off}", "acells", f"@{off}", "subnode", f"@{off}", "x"]
    assert drv.run(blob, *ops) == [err(BADOFFSET)] * (5 * len(offsets))


def test_strerror_knows_every_code_and_flags_unknown_ones(drv):
    known_codes = (0, *CODES)
    # libfdt's codes we never return (6, 7, 13), past the last, positive.
    unknown_codes = (-6, -7, -13, -16, 3, -100000)
    lines = drv.run(b"", *[x for c in known_codes + unknown_codes
                           for x in ("strerror", c)])
    known, unknown = lines[:len(known_codes)], lines[len(known_codes):]
    assert len(set(known)) == len(known_codes) and all(known)
    assert len(set(unknown)) == 1 and unknown[0] not in known


def test_version_16_tree_reads(drv):
    blob = dtc(SAMPLE_DTS, "-V", "16")
    assert hdr(blob, "version") == 16
    fdt = libfdt.Fdt(blob)
    assert drv.run(blob, "check", "path", "/cpus/cpu@1", "getprop", "/", "model") == \
        ["ok", str(fdt.path_offset("/cpus/cpu@1")), "11 " + b"bwemu,test\0".hex()]


# ---------------------------------------------------------------- writing

def test_open_then_pack_reproduces_dtc_output_exactly(drv):
    blob = dtc(SAMPLE_DTS)
    lines, out = drv.edit(blob, "open", 8192, "pack")
    assert lines == ["ok", "ok"]
    assert out == blob


def test_open_into_sets_totalsize_to_buffer_and_needs_room(drv):
    blob = dtc(SAMPLE_DTS)
    lines, out = drv.edit(blob, "open", len(blob) - 1, "open", 5000)
    assert lines == [err(NOSPACE), "ok"]
    assert len(out) == hdr(out, "totalsize") == 5000
    assert hdr(out, "version") == 17 and hdr(out, "last_comp_version") == 16
    assert pyfdt_tree(out) == pyfdt_tree(blob)


def test_open_into_converts_version_16(drv):
    blob16 = dtc(SAMPLE_DTS, "-V", "16")
    lines, out = drv.edit(blob16, "open", 4096, "pack")
    assert lines == ["ok", "ok"]
    assert out == dtc(SAMPLE_DTS)


@pytest.mark.parametrize("shift", [-300, -64, -8, 0, 8, 64, 300])
def test_open_into_overlapping_buffer(drv, shift):
    """Source and destination in one allocation, the destination `shift`
    bytes after the source: the result is the same as a separate copy."""
    blob = dtc(SAMPLE_DTS)
    _, plain = drv.edit(blob, "open", 1024)
    lines, out = drv.edit(blob, "openshift", 1024, shift)
    assert lines == ["ok"]
    assert out == plain


def reorder_strings_first(blob: bytes) -> bytes:
    """Same tree, laid out header, rsvmap, strings, struct (valid, unusual)."""
    rsv, st, strs = (hdr(blob, "off_mem_rsvmap"), hdr(blob, "off_dt_struct"),
                     hdr(blob, "off_dt_strings"))
    st_size, str_size = hdr(blob, "size_dt_struct"), hdr(blob, "size_dt_strings")
    body = blob[rsv:st] + blob[strs:strs + str_size]
    body += b"\0" * (-len(body) % 4)
    new_st = rsv + len(body)
    out = blob[:rsv] + body + blob[st:st + st_size]
    return with_hdr(out, totalsize=len(out), off_dt_struct=new_st,
                    off_dt_strings=rsv + (st - rsv))


def test_out_of_order_blocks_read_and_open_but_not_in_place(drv):
    blob = dtc(SAMPLE_DTS)
    odd = reorder_strings_first(blob)
    assert odd != blob and pyfdt_tree(odd) == pyfdt_tree(blob)
    assert drv.run(odd, "probe") == drv.run(blob, "probe")
    # Into a separate buffer it is laid out canonically...
    lines, out = drv.edit(odd, "open", 2048, "pack")
    assert lines == ["ok", "ok"] and out == blob
    # ...but moving it within itself could overwrite a block before it is copied.
    assert drv.run(odd, "openshift", 2048, 0) == [err(BADLAYOUT)]
    # And it cannot be edited until opened.
    assert drv.run(odd, "setu32", "/", "x", 1) == [err(BADLAYOUT)]


def test_edits_read_back_with_pylibfdt_and_dtc(drv):
    blob = dtc(SAMPLE_DTS)
    lines, out = drv.edit(
        blob, "open", 4096,
        "setstr", "/chosen", "bootargs", "quiet",            # shrink
        "setstr", "/", "model", "a much longer model name than before",  # grow
        "setu32", "/cpus/cpu@1", "reg", 7,
        "setu64", "/chosen", "linux,initrd-start", 0x1122334455667788,
        "setprop", "/chosen", "empty", "",
        "setprop", "/chosen", "blob", "0102030405",
        "addnode", "/", "extra",
        "addnode", "/extra", "child@4",
        "setu32", "/extra/child@4", "value", 0xcafe,
        "delprop", "/", "compatible",
        "delprop", "/memory@0", "device_type",
        "pack")
    assert lines[:7] == ["ok"] * 7 and lines[9:] == ["ok"] * 4
    tree = pyfdt_tree(out)
    assert tree["/chosen"] == {
        "bootargs": b"quiet\0", "empty": b"",
        "linux,initrd-start": bytes.fromhex("1122334455667788"),
        "blob": bytes.fromhex("0102030405")}
    assert tree["/"]["model"] == b"a much longer model name than before\0"
    assert "compatible" not in tree["/"]
    assert tree["/memory@0"] == {"reg": bytes.fromhex("00000000" * 2 + "10000000")}
    assert tree["/cpus/cpu@1"]["reg"] == bytes.fromhex("00000007")
    assert tree["/extra/child@4"] == {"value": bytes.fromhex("0000cafe")}
    # New nodes go last among their siblings; new properties after the others.
    assert list(tree)[-2:] == ["/extra", "/extra/child@4"]
    assert list(tree["/chosen"])[-1] == "blob"
    assert hdr(out, "totalsize") == len(out) < 4096
    proc = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", "-"], input=out,
                          capture_output=True, check=True)
    assert b'bootargs = "quiet";' in proc.stdout
    assert b"child@4 {" in proc.stdout


def test_add_subnode_returns_the_new_nodes_offset(drv):
    blob = dtc(SAMPLE_DTS)
    lines, out = drv.edit(blob, "open", 4096, "addnode", "/cpus", "cpu@2")
    assert lines[0] == "ok"
    assert int(lines[1]) == libfdt.Fdt(out).path_offset("/cpus/cpu@2")
    assert int(lines[1]) > libfdt.Fdt(out).path_offset("/cpus/cpu@1")


def test_add_subnode_errors(drv):
    blob = dtc(SAMPLE_DTS)
    lines, out = drv.edit(blob, "open", 4096,
                          "addnode", "/", "chosen", "addnode", "/", "",
                          "addnode", "/", "a/b", "addnode", "@2", "x",
                          "addnode", "/", "memory")
    assert lines[1:5] == [err(EXISTS), err(BADPATH), err(BADPATH), err(BADOFFSET)]
    # "memory" is not "memory@0": names are compared whole when adding.
    assert int(lines[5]) > 0 and "/memory" in pyfdt_tree(out)


def test_delprop_missing_is_notfound(drv):
    blob = dtc(SAMPLE_DTS)
    assert drv.run(blob, "open", 4096, "delprop", "/", "nope",
                   "delprop", "/nope", "model") == ["ok", err(NOTFOUND), err(NOTFOUND)]


def test_setprop_reuses_a_name_already_in_the_strings_block(drv):
    blob = dtc(SAMPLE_DTS)
    _, before = drv.edit(blob, "open", 4096)
    _, reused = drv.edit(blob, "open", 4096, "setu32", "/chosen", "reg", 1)
    _, suffix = drv.edit(blob, "open", 4096, "setu32", "/chosen", "type", 1)
    _, fresh = drv.edit(blob, "open", 4096, "setu32", "/chosen", "regs", 1)
    size = hdr(before, "size_dt_strings")
    assert hdr(reused, "size_dt_strings") == size
    assert hdr(suffix, "size_dt_strings") == size      # tail of "device_type"
    assert hdr(fresh, "size_dt_strings") == size + len("regs") + 1
    assert pyfdt_tree(suffix)["/chosen"]["type"] == b"\0\0\0\1"


def test_setprop_without_room_fails_and_changes_nothing(drv):
    blob = dtc(SAMPLE_DTS)
    lines, out = drv.edit(blob, "open", len(blob),
                          "setu32", "/chosen", "new-name", 1,
                          "setstr", "/chosen", "bootargs", "x" * 64,
                          "addnode", "/", "n")
    assert lines == ["ok", err(NOSPACE), err(NOSPACE), err(NOSPACE)]
    assert out == blob
    # The same size minus room for the value exactly: a shrink still fits.
    assert drv.run(blob, "open", len(blob), "setstr", "/chosen", "bootargs", "x") == \
        ["ok", "ok"]


def test_setprop_fills_the_buffer_exactly(drv):
    blob = dtc(SAMPLE_DTS)
    # 12 bytes of property header + 8 of value; "reg" is already a name.
    lines, out = drv.edit(blob, "open", len(blob) + 20,
                          "setu64", "/chosen", "reg", 5, "setu32", "/", "reg", 1)
    assert lines == ["ok", "ok", err(NOSPACE)]
    assert len(out) == hdr(out, "totalsize") == len(blob) + 20
    assert pyfdt_tree(out)["/chosen"]["reg"] == (5).to_bytes(8, "big")


def test_editing_requires_an_opened_tree(drv):
    blob16 = dtc(SAMPLE_DTS, "-V", "16")
    assert drv.run(blob16, "setu32", "/", "x", 1, "pack") == \
        [err(BADVERSION), err(BADVERSION)]


# ------------------------------------------------------ random trees

NODE_NAME = st.from_regex(r"[a-z][a-z0-9,._+-]{0,14}(@[0-9a-f]{1,8})?", fullmatch=True)
PROP_NAME = st.from_regex(r"[a-z#][a-z0-9,._+?#-]{0,14}", fullmatch=True)
VALUE = st.binary(max_size=24)


@st.composite
def random_trees(draw, depth=0):
    props = draw(st.dictionaries(PROP_NAME, VALUE, max_size=4))
    kids = {}
    if depth < 3:
        names = draw(st.lists(NODE_NAME, max_size=3, unique=True))
        kids = {n: draw(random_trees(depth + 1)) for n in names}
    return props, kids


def build_with_fdtsw(tree, rsv) -> bytes:
    # Room up front: pylibfdt grows its buffer for properties but not for
    # every call (a larger random tree ended in FDT_ERR_NOSPACE).
    sw = libfdt.FdtSw(1 << 16)
    for addr, size in rsv:
        sw.add_reservemap_entry(addr, size)
    sw.finish_reservemap()

    def emit(name, node):
        props, kids = node
        sw.begin_node(name)
        for k, v in props.items():
            sw.property(k, v)
        for k, sub in kids.items():
            emit(k, sub)
        sw.end_node()

    emit("", tree)
    fdt = sw.as_fdt()
    fdt.pack()
    return bytes(fdt.as_bytearray())[:fdt.totalsize()]


def flatten(tree, path="/"):
    props, kids = tree
    out = {path: dict(props)}
    for name, sub in kids.items():
        out.update(flatten(sub, path.rstrip("/") + "/" + name))
    return out


def node_offsets(fdt) -> dict[str, int]:
    """{path: offset} of every node, in document order, via pylibfdt."""
    out = {}

    def visit(node: int, path: str) -> None:
        out[path] = node
        child = fdt.first_subnode(node, quiet=(libfdt.NOTFOUND,))
        while child >= 0:
            visit(child, path.rstrip("/") + "/" + fdt.get_name(child))
            child = fdt.next_subnode(child, quiet=(libfdt.NOTFOUND,))

    visit(0, "/")
    return out


def ambiguous(name: str, siblings: list[str]) -> bool:
    """Would a path ending in 'name' possibly find another sibling first?"""
    base = name.split("@")[0]
    return any(s != name and s.split("@")[0] == base and
               ("@" not in s or "@" not in name) for s in siblings)


RSV = st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(1, 2**64 - 1)),
               max_size=3)
FAST = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FAST
@given(tree=random_trees(), rsv=RSV)
def test_random_tree_reads_match_pylibfdt(drv, tree, rsv):
    blob = build_with_fdtsw(tree, rsv)
    fdt = libfdt.Fdt(blob)
    flat = flatten(tree)
    offsets = node_offsets(fdt)
    assert list(offsets) == list(flat)
    ops, want = ["rsv"], [str(len(rsv))] + [f"{a:#x} {s:#x}" for a, s in rsv]
    for path, props in flat.items():
        # A path may match an earlier "name@addr" sibling: compare the lookup
        # with pylibfdt's, and read properties by the node's real offset.
        ops += ["path", path, "name", f"@{offsets[path]}"]
        # (Through such a sibling the path may even lead nowhere: /a/a with
        # siblings a@0 and a finds a@0, which has no child a.)
        found = fdt.path_offset(path, quiet=(libfdt.NOTFOUND,))
        want += [str(found) if found >= 0 else err(found),
                 f"'{path.rsplit('/', 1)[1]}'"]
        for name, value in props.items():
            ops += ["getprop", f"@{offsets[path]}", name]
            want.append(f"{len(value)} {value.hex()}")
    assert drv.run(blob, *ops) == want


@st.composite
def edit_scripts(draw):
    """A list of edits on an empty tree, and the tree they should produce."""
    model = {"/": {}}
    order = ["/"]
    ops = []
    for _ in range(draw(st.integers(1, 12))):
        path = draw(st.sampled_from(order))
        kind = draw(st.sampled_from(["set", "set", "add", "del"]))
        if kind == "add":
            name = draw(NODE_NAME)
            child = path.rstrip("/") + "/" + name
            siblings = [p.rsplit("/", 1)[1] for p in order
                        if p != "/" and p.rsplit("/", 1)[0] == path.rstrip("/")]
            if ambiguous(name, siblings):
                continue          # paths in later ops could name either node
            ops += ["addnode", path, name]
            if child in model:
                continue
            # Children go last among the parent's children: before the next
            # node in document order that is not inside the parent.
            idx = order.index(path) + 1
            while idx < len(order) and order[idx].startswith(path.rstrip("/") + "/"):
                idx += 1
            order.insert(idx, child)
            model[child] = {}
        elif kind == "set" or not model[path]:
            name, value = draw(PROP_NAME), draw(VALUE)
            ops += ["setprop", path, name, value.hex()]
            model[path][name] = value
        else:
            name = draw(st.sampled_from(sorted(model[path])))
            ops += ["delprop", path, name]
            del model[path][name]
    return ops, {p: model[p] for p in order}


@FAST
@given(script=edit_scripts())
def test_random_edits_read_back_with_pylibfdt(drv, script):
    ops, want = script
    lines, out = drv.edit(dtc("/dts-v1/; / { };"), "open", 8192, *ops, "pack")
    assert lines[0] == "ok" and lines[-1] == "ok"
    assert all(line == "ok" or line.isdigit() or line == err(EXISTS) for line in lines)
    got = pyfdt_tree(out)
    assert got == want
    assert list(got) == list(want)
    # Ours reads our own output the same way.
    assert drv.run(out, "probe") == [f"ok {len(want)}"]


# ---------------------------------------------------------- corruption

def test_bad_magic(drv):
    blob = dtc(SAMPLE_DTS)
    assert drv.run(with_hdr(blob, magic=0xfeedd00d), "check") == [err(BADMAGIC)]


@pytest.mark.parametrize("version, last_comp", [(15, 15), (17, 18), (16, 17), (1, 1)])
def test_bad_version(drv, version, last_comp):
    blob = dtc(SAMPLE_DTS)
    assert drv.run(with_hdr(blob, version=version, last_comp_version=last_comp),
                   "check") == [err(BADVERSION)]


def test_future_version_with_compatible_last_comp_reads(drv):
    blob = dtc(SAMPLE_DTS)
    assert drv.run(with_hdr(blob, version=20, last_comp_version=16), "check") == ["ok"]


def test_totalsize_smaller_than_the_blocks_is_truncated(drv):
    blob = dtc(SAMPLE_DTS)
    # The driver keeps the buffer at the file's size; totalsize lies lower.
    for size in (len(blob) - 1, hdr(blob, "off_dt_strings"), 41, 40):
        assert drv.run(with_hdr(blob, totalsize=size), "check") == [err(TRUNCATED)]
    assert drv.run(with_hdr(blob, totalsize=39), "check") == [err(TRUNCATED)]


def test_block_offsets_past_the_end_are_truncated(drv):
    blob = dtc(SAMPLE_DTS)
    big = 0xfffffff0
    for fields in ({"off_dt_struct": len(blob) + 4}, {"off_dt_struct": big},
                   {"off_dt_strings": big}, {"size_dt_strings": big},
                   {"size_dt_struct": big}, {"off_mem_rsvmap": big},
                   {"size_dt_struct": len(blob) - hdr(blob, "off_dt_struct") + 4}):
        assert drv.run(with_hdr(blob, **fields), "check") == [err(TRUNCATED)], fields


def test_misplaced_blocks_are_badlayout(drv):
    blob = dtc(SAMPLE_DTS)
    st_off = hdr(blob, "off_dt_struct")
    for fields in ({"off_dt_struct": st_off + 2},          # misaligned tokens
                   {"off_mem_rsvmap": 44},                  # misaligned map
                   {"off_dt_struct": 8},                    # inside the header
                   {"size_dt_struct": hdr(blob, "size_dt_struct") - 2},
                   {"size_dt_struct": 8},                   # too small to hold a root
                   {"off_dt_strings": st_off},              # overlaps the struct
                   {"size_dt_struct": hdr(blob, "size_dt_struct") + 4},  # into strings
                   {"totalsize": 0x80000000}):
        assert drv.run(with_hdr(blob, **fields), "check") == [err(BADLAYOUT)], fields


def test_unterminated_strings_block_is_truncated(drv):
    blob = bytearray(dtc(SAMPLE_DTS))
    end = hdr(blob, "off_dt_strings") + hdr(blob, "size_dt_strings")
    assert bytes(blob[end - 5:end]) == b"leaf\0"   # the last name dtc stored
    blob[end - 1] = ord("x")                        # ...loses its NUL
    # Lookups that meet the broken name stop there; others are unaffected.
    assert drv.run(bytes(blob), "check", "getprop", "/deep/a/b/c", "leaf",
                   "getprop", "/deep/a/b/c", "other", "getprop", "/", "model",
                   "probe") == \
        ["ok", err(TRUNCATED), err(TRUNCATED), "11 " + b"bwemu,test\0".hex(),
         err(TRUNCATED)]


def test_every_truncation_of_the_file_is_truncated(drv):
    blob = dtc(SAMPLE_DTS)
    assert drv.probe_many([blob]) == ["ok 11"]
    results = drv.probe_many([blob[:n] for n in range(len(blob))])
    assert results == [err(TRUNCATED)] * len(blob)


def test_every_truncation_with_a_consistent_header_is_caught(drv):
    """Strings first, structure block last: cutting the file cuts the
    structure block, and the header is patched to agree, so only the walk
    can notice."""
    odd = reorder_strings_first(dtc(SAMPLE_DTS))
    st_off = hdr(odd, "off_dt_struct")
    cuts = list(range(st_off, len(odd)))
    blobs = [with_hdr(odd[:n], totalsize=n, size_dt_struct=n - st_off) for n in cuts]
    results = drv.probe_many(blobs)
    for n, r in zip(cuts, results, strict=True):
        size = n - st_off
        if size % 4 or size < 16:
            assert r == err(BADLAYOUT), n
        elif n == len(odd) - 4:
            # Only the final END token is gone: every node still reads...
            assert r == "ok 11", n
        else:
            assert r == err(TRUNCATED), n
    # ...but a writer, which needs the END token, refuses it.
    only_end_missing = blobs[cuts.index(len(odd) - 4)]
    assert drv.run(only_end_missing, "open", 4096) == [err(TRUNCATED)]


def test_every_single_byte_corruption_gives_a_code_not_a_crash(drv):
    """Each byte set to 00, ff, and with bit 0 and bit 7 flipped; the tree is
    read in full, and when that passes, opened, edited and packed."""
    blob = dtc(SAMPLE_DTS)
    lines = drv.run(blob, "mutate")
    assert len(lines) == 4 * len(blob)
    codes = {err(c) for c in CODES}
    seen = set()
    for line in lines:
        pos, val, *rest = line.split(" ")
        read = " ".join(rest[:2])
        assert read in codes or (rest[0] == "ok" and int(rest[1]) > 0), line
        if rest[0] == "ok":
            write = " ".join(rest[2:])
            assert write == "ok 0" or write in codes, line
        seen.add(read)
    # The magic word is checked for every change to it.
    assert all(line.split(" ", 2)[2] == err(BADMAGIC) for line in lines[:16])
    assert {err(BADMAGIC), err(BADVERSION), err(TRUNCATED), err(BADSTRUCTURE),
            err(BADLAYOUT)} <= seen


# ------------------------------------------------ the full structural check

@pytest.fixture(scope="module")
def bw_codes(driver: Path, tmp_path_factory) -> dict[str, int]:
    """{BW_FDT_ERR_NAME without the prefix: -number} as fdt.h defines them."""
    empty = tmp_path_factory.mktemp("bwcodes") / "empty.dtb"
    empty.write_bytes(b"")
    out = subprocess.run([str(driver), str(empty), "bwerrcodes"], capture_output=True,
                         text=True, check=True).stdout.split()
    return {n.split("=")[0].removeprefix("BW_FDT_ERR_"): -int(n.split("=")[1]) for n in out}


def small(**fields: int) -> bytes:
    """A tree of root, one property and one child, header fields overridable."""
    s = fdtcraft.Strings()
    body = (fdtcraft.begin() + fdtcraft.prop(s("model"), b"m\0") + fdtcraft.begin("a")
            + fdtcraft.end_node() + fdtcraft.end_node() + fdtcraft.end())
    return fdtcraft.tree(body, s.blob, **fields)


def structure(*tokens: bytes, strings: bytes = b"model\0") -> bytes:
    return fdtcraft.tree(b"".join(tokens), strings)


B, E, N, P, END = (fdtcraft.begin, fdtcraft.end_node, fdtcraft.nop, fdtcraft.prop,
                   fdtcraft.end)
SAMPLE_LEN = len(small())

# (rule of docs/kexec.md, the code fdt_check_full must give, the tree).
# Header codes that are libfdt's are given as such.
FULL_CHECK_CASES = [
    (1, "BADMAGIC", small(magic=0xD00DFEEE)),
    (2, "BADVERSION", small(version=15, last_comp_version=15)),
    (2, "BADVERSION", small(last_comp_version=18)),
    (2, "BADVERSION", small(version=16, last_comp_version=17)),
    (3, "TOTALSIZE_SMALL", small(totalsize=39)),
    (3, "TOTALSIZE_SMALL", small(totalsize=0)),
    (4, "TOTALSIZE_LARGE", small(totalsize=0x8000_0000)),
    (5, "RSVMAP_MISPLACED", small(off_mem_rsvmap=44)),
    (5, "RSVMAP_MISPLACED", small(off_mem_rsvmap=32)),
    (6, "STRUCT_MISPLACED", small(off_dt_struct=58)),
    (6, "STRUCT_MISPLACED", small(off_dt_struct=36)),
    (7, "STRINGS_MISPLACED", small(off_dt_strings=8)),
    (8, "RSVMAP_PAST_END", small(off_mem_rsvmap=SAMPLE_LEN & ~7)),
    (9, "STRUCT_PAST_END", small(off_dt_struct=(SAMPLE_LEN + 4) & ~3)),
    (9, "STRUCT_PAST_END", small(size_dt_struct=0xFFFF_FFF0)),
    (10, "STRINGS_PAST_END", small(size_dt_strings=SAMPLE_LEN)),
    (11, "STRUCT_SIZE", small(size_dt_struct=42)),
    (11, "STRUCT_SIZE", small(size_dt_struct=12)),
    (12, "BLOCKS_OVERLAP", small(off_dt_strings=56 + 4)),
    (13, "RSVMAP_UNTERMINATED", small(off_dt_struct=48)),
    (14, "NO_END", structure(B(), N(), N(), E())),
    (14, "NO_END", structure(B(), B("a"), E(), N())),
    (15, "BAD_TOKEN", structure(B(), fdtcraft.word(5), E(), END())),
    (15, "BAD_TOKEN", structure(B(), fdtcraft.word(0), E(), END())),
    (16, "NODE_NAME", structure(B(), N(), fdtcraft.word(1), b"abcd")),
    (17, "ROOT_NAME", structure(B("root"), E(), END())),
    (18, "SECOND_ROOT", structure(B(), E(), B(), E(), END())),
    (19, "PROP_OUTSIDE", structure(P(0, b"x"), B(), E(), END())),
    (20, "PROP_PAST_END", structure(B(), P(0, b"xyz", length=0x1000), E(), END())),
    (20, "PROP_PAST_END", structure(B(), P(0, b"xyz", length=0xFFFF_FFFF), E(), END())),
    (20, "PROP_PAST_END", structure(B(), N(), fdtcraft.word(3), fdtcraft.word(0))),
    (21, "NAME_OFFSET", structure(B(), P(6, b"x"), E(), END())),
    (22, "NAME_UNTERMINATED", structure(B(), P(0, b"x"), E(), END(), strings=b"model")),
    (23, "END_NODE_OUTSIDE", structure(E(), B(), E(), END())),
    (23, "END_NODE_OUTSIDE", structure(B(), E(), E(), END())),
    (24, "NODE_OPEN", structure(B(), N(), N(), END())),
    (24, "NODE_OPEN", structure(B(), B("a"), E(), END())),
    (25, "NO_ROOT", structure(N(), N(), N(), END())),
    (26, "AFTER_END", structure(B(), E(), END(), N())),
    (26, "AFTER_END", structure(B(), E(), END(), END())),
]


def test_every_rule_of_the_doc_has_a_case_and_its_text():
    rules = fdtcraft.check_rule_texts()
    assert sorted(rules) == list(range(1, 27))
    assert {rule for rule, _, _ in FULL_CHECK_CASES} == set(rules)


@pytest.mark.parametrize("rule, code, blob", FULL_CHECK_CASES,
                         ids=[f"{r}-{c}-{i}" for i, (r, c, _) in enumerate(FULL_CHECK_CASES)])
def test_full_check_names_the_rule_broken(drv, bw_codes, rule, code, blob):
    """The first rule broken, as its own code, with docs/kexec.md's text; the
    Python check (emulator.guest.devicetree) refuses the same tree."""
    want = bw_codes.get(code, -getattr(libfdt, code, 0) or None)
    assert want is not None, code
    assert drv.run(blob, "full") == [err(want)]
    assert drv.run(b"", "strerror", want) == [fdtcraft.check_rule_texts()[rule]]
    with pytest.raises(DeviceTreeError):
        check_structure(blob)


def test_the_cases_are_broken_only_where_meant(drv):
    """The same trees with the fault taken out pass both checks: the
    wrapper's C (fdt_check_full) and bwemu's Python."""
    for blob in (small(), structure(B(), P(0, b"x"), E(), END()),
                 structure(B(), N(), B("a"), E(), N(), E(), N(), END())):
        assert drv.run(blob, "full") == ["ok"]
        check_structure(blob)


def test_full_check_passes_dtc_trees_and_version_16(drv):
    for blob in (dtc(SAMPLE_DTS), dtc(SAMPLE_DTS, "-V", "16"), dtc("/dts-v1/; / { };"),
                 dtc(SAMPLE_DTS, "-p", "256"), reorder_strings_first(dtc(SAMPLE_DTS))):
        assert drv.run(blob, "full") == ["ok"]
        check_structure(blob)


def test_version_16_block_ends_at_fdt_end(drv):
    """Version 16 records no structure size: what follows FDT_END up to the
    next block is not read (from 17 on it would be tokens after END)."""
    blob = structure(B(), E(), END(), N())
    v16 = blob[:20] + fdtcraft.word(16) + blob[24:]
    assert drv.run(v16, "full") == ["ok"]
    check_structure(v16)


def test_full_check_header_codes_refine_check_header(drv, bw_codes):
    """Each header rule's code belongs to the libfdt code fdt_check_header
    gives for the same tree (fdt_errclass)."""
    for rule, code, blob in FULL_CHECK_CASES:
        if rule > 12:
            continue
        full = drv.run(blob, "full")[0]
        cls = drv.run(b"", "errclass", full.split()[1])[0]
        assert drv.run(blob, "check") == [err(int(cls))], (rule, code)


def test_errclass_maps_ours_to_libfdts_and_leaves_libfdts(drv, bw_codes):
    libfdt_codes = set(CODES)
    for code in bw_codes.values():
        assert int(drv.run(b"", "errclass", code)[0]) in libfdt_codes
    assert drv.run(b"", *[x for c in CODES for x in ("errclass", c)]) == \
        [str(c) for c in CODES]


def test_full_check_against_a_smaller_buffer_is_truncated(drv):
    blob = dtc(SAMPLE_DTS)
    assert drv.run(blob, "fullsize", len(blob)) == ["ok"]
    for size in (len(blob) - 1, 40, 35, 0):
        assert drv.run(blob, "fullsize", size) == [err(TRUNCATED)]
    # Each cut in a buffer exactly its size: ASan sees any read past it.
    assert drv.full_many([blob[:n] for n in range(len(blob))]) == \
        [err(TRUNCATED)] * len(blob)


def test_full_check_agrees_with_the_python_check_on_every_byte_corruption(drv):
    """Every single-byte corruption of a dtc tree: fdt_check_full and
    emulator.guest.devicetree.check_structure pass and fail the same trees,
    and a tree that passes reads and edits with no error."""
    blob = dtc(SAMPLE_DTS)
    lines = drv.run(blob, "mutatefull")
    assert len(lines) == 4 * len(blob)
    passed = 0
    for line in lines:
        pos, val, *rest = line.split(" ")
        mutated = bytearray(blob)
        mutated[int(pos)] = int(val, 16)
        try:
            check_structure(bytes(mutated))
            python_ok = True
        except DeviceTreeError:
            python_ok = False
        c_ok = rest[0] == "ok"
        assert c_ok == python_ok, (line, bytes(mutated).hex())
        if c_ok:
            passed += 1
            # "ok 0", then the read probe (a node count) and the write
            # probe, both clean.
            assert rest[2] == "ok" and rest[4:] == ["ok", "0"], line
    assert 0 < passed < len(lines)


@FAST
@given(tree=random_trees(), rsv=RSV, cut=st.integers(0, 400))
def test_full_check_agrees_with_the_python_check_on_random_cuts(drv, tree, rsv, cut):
    """Random trees pass both checks; each cut short, with its header made
    to agree (size_dt_struct or totalsize), fails both or passes both."""
    blob = build_with_fdtsw(tree, rsv)
    assert drv.run(blob, "full") == ["ok"]
    check_structure(blob)
    st_off, st_size = hdr(blob, "off_dt_struct"), hdr(blob, "size_dt_struct")
    n = min(cut, st_size)
    for variant in (with_hdr(blob, size_dt_struct=n),
                    with_hdr(blob[:st_off + n], totalsize=st_off + n)):
        try:
            check_structure(variant)
            python_ok = True
        except DeviceTreeError:
            python_ok = False
        assert (drv.run(variant, "full") == ["ok"]) == python_ok, variant.hex()


# ---------------------------------------------------------- cross build

CROSS_CC = "powerpc64-linux-gnu-gcc"


@pytest.mark.parametrize("source", ["fdt.c", "fdt_rw.c"])
def test_compiles_warning_free_for_the_guest(source, tmp_path):
    if shutil.which(CROSS_CC) is None:
        pytest.skip(f"{CROSS_CC} not installed")
    inc = subprocess.run([CROSS_CC, "-print-file-name=include"], capture_output=True,
                         text=True, check=True).stdout.strip()
    proc = subprocess.run(
        [CROSS_CC, "-Os", "-std=gnu11", "-m64", "-mbig-endian", "-ffreestanding",
         "-fno-builtin", "-nostdinc", "-isystem", inc, "-iquote", str(FIRMWARE / "include"),
         "-fPIE", "-msoft-float", "-mno-altivec", "-mno-vsx", "-fno-stack-protector",
         "-Wall", "-Wextra", "-Wno-unused-parameter", "-c", str(FIRMWARE / source),
         "-o", str(tmp_path / "out.o")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
