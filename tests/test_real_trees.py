"""Real device trees, as other tools write them, boot end to end.

The trees in tests/data/ were dumped by QEMU's pseries, powernv and
ppce500 machines or written as board .dts files and compiled with dtc here
(tests/data/README.md says how each was made).  Every expectation below is
worked out from the tree itself with pylibfdt, or written down from reading
the tree by hand, never from the emulator's own reader: the point is that
the wrapper and the emulator both take what a real tree says.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import libfdt
import pytest

from emulator import Boot
from emulator.guest.devices import H_PUT_TERM_CHAR, Console
from emulator.guest.devicetree import DeviceTree
from emulator.harness.scenario import Scenario, default_initrd
from treeread import properties, subnodes, tree_contents

DATA = Path(__file__).parent / "data"
BANNER = "bwemu wrapper: running at"
NO_RMA = "FATAL: device tree: no /memory block starts at address 0"


@dataclass(frozen=True)
class Case:
    file: str                # in tests/data: .dtb as is, .dts compiled by dtc
    console: str | None      # the console the tree names: "hvc", "uart", None
    console_at: int | None   # vty terminal number or the UART's CPU address
    rma_end: int | None      # size of the block at 0 (read by hand); None: none

    @property
    def id(self) -> str:
        return self.file.rsplit(".", 1)[0]


BOOTING = [
    Case("qemu-pseries-512M.dtb", "hvc", 0x71000000, 0x20000000),
    Case("qemu-pseries-4G.dtb", "hvc", 0x71000000, 0x1_0000_0000),
    Case("qemu-pseries-numa.dtb", "hvc", 0x71000000, 0x10000000),
    Case("qemu-powernv.dtb", None, None, 0x40000000),
    Case("qemu-ppce500.dtb", "uart", 0xf_e000_4500, 0x10000000),
    Case("board-1cell-uart.dts", "uart", 0xe000_4500, 0x8000000),
    Case("board-2-1-cells-nested.dts", "uart", 0xf_e002_0300, 0x10000000),
]
REFUSED = [
    Case("board-no-memory.dts", "uart", 0xf000_0000, None),
    Case("board-high-memory.dts", "uart", 0xf000_0000, None),
]


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """Path of a case's .dtb, compiling .dts sources once per session."""
    out_dir = tmp_path_factory.mktemp("dtc")
    cache: dict[str, Path] = {}

    def get(case: Case) -> Path:
        src = DATA / case.file
        if src.suffix == ".dtb":
            return src
        if case.file not in cache:
            if shutil.which("dtc") is None:
                pytest.skip("dtc (device-tree-compiler) is not installed")
            dst = out_dir / (case.id + ".dtb")
            subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dst),
                            str(src)], check=True, timeout=30)
            cache[case.file] = dst
        return cache[case.file]
    return get


# -- independent readings of a tree (tree_contents: tests/treeread.py) -------

def lost_or_changed(original: bytes, final: bytes,
                    allowed: set[tuple[str, str]] = frozenset()) -> list[str]:
    """What of the original tree the final one no longer says, except the
    (path, property) pairs the wrapper is allowed to change."""
    before, after = tree_contents(original), tree_contents(final)
    problems = []
    for path, props in before.items():
        if path not in after:
            problems.append(f"node {path} is gone")
            continue
        for name, value in props.items():
            if (path, name) in allowed:
                continue
            if name not in after[path]:
                problems.append(f"{path}:{name} is gone")
            elif after[path][name] != value:
                problems.append(f"{path}:{name} changed")
    return problems


def block_at_zero(dtb: bytes) -> int | None:
    """Size of the /memory block starting at 0, read with the root's cells."""
    fdt = libfdt.Fdt(bytearray(dtb))
    root = properties(fdt, 0)
    ac = int.from_bytes(root.get("#address-cells", (2).to_bytes(4, "big")), "big")
    sc = int.from_bytes(root.get("#size-cells", (1).to_bytes(4, "big")), "big")
    for node in subnodes(fdt, 0):
        props = properties(fdt, node)
        if props.get("device_type", b"").rstrip(b"\0") != b"memory":
            continue
        reg = props.get("reg", b"")
        step = 4 * (ac + sc)
        for i in range(0, len(reg) - step + 1, step):
            base = int.from_bytes(reg[i:i + 4 * ac], "big")
            size = int.from_bytes(reg[i + 4 * ac:i + step], "big")
            if base == 0 and size:
                return size
    return None


def reserve_map(dtb: bytes) -> list[tuple[int, int]]:
    fdt = libfdt.Fdt(bytearray(dtb))
    return [tuple(fdt.get_mem_rsv(i)[1:]) for i in range(fdt.num_mem_rsv())]


def test_lost_or_changed_notices_a_removed_node_and_a_changed_property():
    """The checker the boots rely on can fail."""
    original = (DATA / "qemu-powernv.dtb").read_bytes()
    fdt = libfdt.Fdt(bytearray(original))
    fdt.setprop_u32(fdt.path_offset("/memory@0"), "ibm,chip-id", 7)
    fdt.del_node(fdt.path_offset("/bmc/sensors"))
    fdt.pack()
    problems = lost_or_changed(original, bytes(fdt.as_bytearray()))
    assert "/memory@0:ibm,chip-id changed" in problems
    assert "node /bmc/sensors is gone" in problems
    assert "node /bmc/sensors/sensor@0 is gone" in problems
    assert lost_or_changed(original, original) == []


# -- booting -----------------------------------------------------------------

@dataclass
class Run:
    result: object
    uart: str          # what reached the UART
    hvc: str           # what reached H_PUT_TERM_CHAR
    terminals: set     # the vty numbers H_PUT_TERM_CHAR was called with


def boot_split(scenario: Scenario) -> Run:
    """Boots with the UART and the hypervisor console kept apart, so a test
    sees which device the wrapper chose."""
    b = Boot(scenario)
    hvc = Console()
    terminals: set[int] = set()
    hypercall = b.hypervisor.hypercall

    def counting_hypercall() -> None:
        if b.machine.reg("r3") == H_PUT_TERM_CHAR:
            terminals.add(b.machine.reg("r4"))
        hypercall()
    b.hypervisor.console = hvc
    b.hypervisor.hypercall = counting_hypercall
    r = b.run()
    return Run(r, b.console.text, hvc.text, terminals)


def rma_end_printed(console: str) -> int:
    m = re.search(r"kexec: real-mode area ends at (0x[0-9a-f]+)", console)
    assert m, console
    return int(m.group(1), 16)


@pytest.mark.parametrize("case", BOOTING, ids=lambda c: c.id)
def test_real_tree_boots_to_the_kernel_with_banner_on_its_console(case, compiled):
    path = compiled(case)
    run = boot_split(Scenario.from_files(path))
    r = run.result
    assert r.exit == "kernel", r.message
    assert r.kernel_report.dtb_magic_ok
    shown = {"uart": run.uart, "hvc": run.hvc}
    if case.console is None:
        # powernv: /chosen names no console (OPAL owns it), so nothing shows.
        assert DeviceTree(path.read_bytes()).console() is None
        assert shown == {"uart": "", "hvc": ""}
        return
    assert BANNER in shown[case.console]
    other = "hvc" if case.console == "uart" else "uart"
    assert shown[other] == ""
    if case.console == "hvc":
        assert run.terminals == {case.console_at}
    else:
        assert DeviceTree(path.read_bytes()).console().address == case.console_at


def _with_vty_console(dtb: bytes) -> bytes:
    """A copy whose /chosen names a PAPR vty, added for the purpose."""
    fdt = libfdt.Fdt(bytearray(dtb))
    fdt.resize(len(dtb) + 512)
    vdev = fdt.add_subnode(0, "vdevice")
    fdt.setprop_u32(vdev, "#address-cells", 1)
    fdt.setprop_u32(vdev, "#size-cells", 0)
    vty = fdt.add_subnode(vdev, "vty@30000000")
    fdt.setprop_str(vty, "compatible", "hvterm1")
    fdt.setprop_u32(vty, "reg", 0x30000000)
    fdt.setprop_str(fdt.path_offset("/chosen"), "stdout-path", "/vdevice/vty@30000000")
    fdt.pack()
    return bytes(fdt.as_bytearray())


@pytest.mark.parametrize("case", BOOTING, ids=lambda c: c.id)
def test_rma_end_is_the_memory_block_at_zero(case, compiled):
    path = compiled(case)
    dtb = path.read_bytes()
    assert block_at_zero(dtb) == case.rma_end
    # The wrapper prints rma_end on its console; powernv names none, so
    # give that tree a vty to read the log from.
    if case.console is None:
        dtb = _with_vty_console(dtb)
    run = boot_split(Scenario.from_files(path).replace(dtb=dtb))
    assert run.result.exit == "kernel", run.result.message
    assert rma_end_printed(run.uart + run.hvc) == case.rma_end


@pytest.mark.parametrize("case", BOOTING, ids=lambda c: c.id)
def test_final_tree_keeps_every_original_node_and_property(case, compiled):
    dtb = compiled(case).read_bytes()
    r = boot_split(Scenario.from_files(compiled(case))).result
    assert r.exit == "kernel", r.message
    assert r.final_dtb is not None
    assert lost_or_changed(dtb, r.final_dtb) == []
    assert reserve_map(r.final_dtb) == reserve_map(dtb)


# -- trees the wrapper must refuse -------------------------------------------

@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_tree_without_memory_at_zero_ends_with_the_wrappers_fatal(case, compiled):
    dtb = compiled(case).read_bytes()
    assert block_at_zero(dtb) is None
    run = boot_split(Scenario.from_files(compiled(case)))
    r = run.result
    assert r.exit == "fatal"
    assert r.message.startswith(NO_RMA)
    # Said on the UART the tree names, after the banner.
    assert BANNER in run.uart and NO_RMA in run.uart
    assert run.uart.index(BANNER) < run.uart.index(NO_RMA)
    assert run.hvc == ""
    assert r.handoff is None


# -- the command line --------------------------------------------------------

def bwemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", [BOOTING[2], BOOTING[4], BOOTING[5]],
                         ids=lambda c: c.id)
def test_cli_boots_a_real_tree(case, compiled):
    p = bwemu("boot", "--dtb", str(compiled(case)), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert out["exit"] == "kernel"
    assert BANNER in out["console"]
    assert rma_end_printed(out["console"]) == case.rma_end


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_cli_reports_the_wrappers_fatal_with_nonzero_status(case, compiled):
    p = bwemu("boot", "--dtb", str(compiled(case)), "--json")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    out = json.loads(p.stdout)
    assert out["exit"] == "fatal"
    assert out["message"].startswith(NO_RMA)
    assert NO_RMA in out["console"]


def test_cli_text_output_shows_the_fatal_on_the_console(compiled):
    p = bwemu("boot", "--dtb", str(compiled(REFUSED[1])))
    assert p.returncode != 0
    assert NO_RMA in p.stdout
    # Everything was loaded into the one block there is, at 2 GiB.
    assert re.search(r"wrapper 0x8[0-9a-f]{7}\.\.", p.stdout), p.stdout


# -- more of what real trees bring -------------------------------------------

def test_pseries_numa_tree_with_initrd_keeps_it_intact(tmp_path):
    """Several /memory nodes, the RMA last: an initrd from the chain-loader
    is placed under the tree at the RMA's top and arrives intact."""
    initrd = tmp_path / "initrd"
    initrd.write_bytes(default_initrd(64 * 1024))
    dtb = DATA / "qemu-pseries-numa.dtb"
    run = boot_split(Scenario.from_files(dtb, initrd=initrd))
    r = run.result
    assert r.exit == "kernel", r.message
    assert r.initrd_intact is True
    assert r.layout.initrd.end <= 0x10000000   # inside memory@0
    allowed = {("/chosen", "linux,initrd-start"), ("/chosen", "linux,initrd-end")}
    assert lost_or_changed(dtb.read_bytes(), r.final_dtb, allowed) == []
    final = tree_contents(r.final_dtb)["/chosen"]
    assert int.from_bytes(final["linux,initrd-start"], "big") == r.initrd.address


def test_ppce500_tree_as_qemu_pads_it_is_reserved_whole():
    """QEMU hands over the ppce500 tree with a 1 MiB totalsize: the wrapper
    keeps all of it out of the heap and still hands on a packed copy."""
    packed = (DATA / "qemu-ppce500.dtb").read_bytes()
    fdt = libfdt.Fdt(bytearray(packed))
    fdt.resize(1 << 20)
    padded = bytes(fdt.as_bytearray())
    assert len(padded) == 1 << 20
    run = boot_split(Scenario(name="ppce500-padded", dtb=padded))
    r = run.result
    assert r.exit == "kernel", r.message
    m = re.search(r"occupied: 0x([0-9a-f]+)\.\.0x([0-9a-f]+) device tree", run.uart)
    assert m, run.uart
    start, end = int(m.group(1), 16), int(m.group(2), 16)
    assert (start, end - start) == (r.layout.dtb.address, 1 << 20)
    assert lost_or_changed(padded, r.final_dtb) == []
    assert len(r.final_dtb) < 1 << 20


def test_4gib_tree_boots_in_modest_host_memory():
    """RAM is sized from /memory (4 GiB here); the host must not pay for it."""
    code = ("import resource, sys\n"
            "from emulator import boot\n"
            "from emulator.harness.scenario import Scenario\n"
            "r = boot(Scenario.from_files(sys.argv[1]))\n"
            "assert r.exit == 'kernel', r.message\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    p = subprocess.run([sys.executable, "-c", code, str(DATA / "qemu-pseries-4G.dtb")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    max_rss_kib = int(p.stdout.split()[-1])
    assert max_rss_kib < 512 * 1024


def test_powernv_lpc_uart_named_by_stdout_path_is_reached_through_two_buses():
    """QEMU's powernv tree names no console, but it has an ns16550 on the
    LPC bus: I/O space 0x3f8 (two address cells) -> LPC ranges -> OPB
    ranges -> 0x6030_0d00_103f8.  Pointing stdout-path at it, the wrapper
    and the emulator must both follow those ranges to the same place."""
    dtb = (DATA / "qemu-powernv.dtb").read_bytes()
    fdt = libfdt.Fdt(bytearray(dtb))
    fdt.resize(len(dtb) + 256)
    fdt.setprop_str(fdt.path_offset("/chosen"), "stdout-path",
                    "/lpcm-opb@6030000000000/lpc@0/isa-serial@i3f8:115200")
    fdt.pack()
    named = bytes(fdt.as_bytearray())
    assert DeviceTree(named).console().address == 0x6030_0d00_103f8
    run = boot_split(Scenario(name="powernv-lpc-uart", dtb=named))
    assert run.result.exit == "kernel", run.result.message
    assert BANNER in run.uart and run.hvc == ""
