"""The wrapper's own checks of the tree it is handed, booted end to end.

Each tree below is made for one behaviour of docs/kexec.md: the structural
check of step 0 (fatal 17, the rule's text), the initrd overlap of step 3
(fatal 10), the zero-size initrd (no initrd at all), fdt errors named as
errors rather than shown as counts, and linear work on a huge tree.  Each
boot goes through emulator.boot() with every checker attached, and each
test checks the exit, the fatal code, the message and the model's verdict:
the model predicts these stops from the inputs alone.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import libfdt
import pytest

import fdtcraft
from emulator import MemoryTree, Scenario, boot, default_scenario
from emulator.checkers.model import FATAL_CODES, handed_on_initrd, inputs_for
from emulator.guest import devicetree
from emulator.harness.result import BootResult, ExitReason
from emulator.harness.scenario import ScenarioError
from treeread import tree_contents
from wrapper_model.placement import FATAL_INITRD_OUTSIDE, FATAL_INITRD_OVERLAP, FATAL_TREE

MiB = 1 << 20
TREE, INITRD_OVERLAP, INITRD_OUTSIDE, ROOT_CELLS = 17, 10, 11, 22
RULES = fdtcraft.check_rule_texts()
B, E, P, END = fdtcraft.begin, fdtcraft.end_node, fdtcraft.prop, fdtcraft.end


def assert_fatal(r: BootResult, code: int, text: str) -> None:
    assert r.exit is ExitReason.FATAL, (r.exit, r.message)
    assert r.fatal_code == code, r.message
    assert text in r.message, r.message
    assert not r.passed


def assert_model_predicted(r: BootResult, kind: str) -> None:
    """The model foresaw this very stop: same kind, same code, no mismatch."""
    assert r.model is not None and r.model.prediction is not None, r.model
    assert r.model.prediction.fatal == kind
    assert FATAL_CODES[kind] == r.fatal_code
    assert r.model.matches is True, r.model.comparison


# --------------------------------------------------- step 0: the structure

def crafted(variant: str) -> bytes:
    """A bootable tree (memory@0, /chosen) broken in one way."""
    body, s = fdtcraft.memory_tree(chosen=[("bootargs", b"x\0")])
    strings = s.blob
    fields: dict[str, int] = {}
    assert body.endswith(E() + END())
    root_open = body[:-8]
    if variant == "property length past the block":
        body = root_open + P(s("model"), b"m\0", length=0x10_0000) + E() + END()
        strings = s.blob
    elif variant == "strings block without NUL":
        strings = strings[:-1] + b"x"
    elif variant == "name offset past the strings":
        body = root_open + P(len(strings) + 8, b"m\0") + E() + END()
    elif variant == "extra END_NODE":
        body = body[:-4] + E() + END()
    elif variant == "missing END_NODE":
        body = root_open + END()
    elif variant == "FDT_END inside the root":
        body = root_open + END() + E() + END()
    elif variant == "two roots":
        body = body[:-4] + B() + E() + END()
    elif variant == "unknown token":
        body = root_open + fdtcraft.word(7) + E() + END()
    elif variant == "totalsize 0":
        fields["totalsize"] = 0
    elif variant == "reserve map misaligned":
        fields["off_mem_rsvmap"] = 44
    else:
        raise AssertionError(variant)
    return fdtcraft.tree(body, strings, **fields)


STRUCTURE_CASES = [
    ("property length past the block", 20),
    ("strings block without NUL", 22),
    ("name offset past the strings", 21),
    ("extra END_NODE", 23),
    ("missing END_NODE", 24),
    ("FDT_END inside the root", 24),
    ("two roots", 18),
    ("unknown token", 15),
    ("totalsize 0", 3),
    ("reserve map misaligned", 5),
]


@pytest.mark.parametrize("variant, rule", STRUCTURE_CASES, ids=[v for v, _ in STRUCTURE_CASES])
def test_a_malformed_tree_stops_with_TREE_naming_the_rule(variant, rule):
    """Before, a property past the block or a strings block without NUL read
    as "no /memory block starts at address 0", and the unbalanced trees
    reached the kernel."""
    dtb = crafted(variant)
    with pytest.raises(devicetree.DeviceTreeError):
        devicetree.check_structure(dtb)
    r = boot(Scenario(name=variant, dtb=dtb))
    assert_fatal(r, TREE, f"FATAL: device tree at 0x{r.layout.dtb.address:016x}: {RULES[rule]}")
    assert_model_predicted(r, FATAL_TREE)


def test_the_crafted_tree_itself_boots():
    """What the variants break is all that is wrong with them."""
    body, s = fdtcraft.memory_tree(chosen=[("bootargs", b"x\0")])
    r = boot(Scenario(name="crafted", dtb=fdtcraft.tree(body, s.blob)))
    assert r.passed, r.checks


def test_the_model_never_reads_a_failed_tree_with_pylibfdt(monkeypatch):
    """inputs_for gives the model tree_valid=False and reads nothing else:
    pylibfdt trusts the header and can read past a buffer whose header lies."""
    broken = crafted("property length past the block")
    seen: list[bytes] = []
    real = libfdt.Fdt

    def spy(blob, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(bytes(blob))
        return real(blob, *args, **kwargs)

    monkeypatch.setattr(devicetree.libfdt, "Fdt", spy)
    guest = SimpleNamespace(dtb_blob=broken, kernel=SimpleNamespace(size=0x1_0000),
                            image=SimpleNamespace(span=SimpleNamespace(address=32 * MiB,
                                                                       size=0x2_0000)),
                            dtb=SimpleNamespace(address=0xFF0_0000))
    inputs = inputs_for(guest, "fixed", 0)   # type: ignore[arg-type]
    assert inputs is not None and inputs.tree_valid is False
    assert inputs.memory == () and inputs.initrd_start is None and inputs.reserves == ()
    r = boot(Scenario(name="spied", dtb=broken))
    assert_model_predicted(r, FATAL_TREE)
    assert broken not in seen


# -------------------------------------------- fdt errors are not counts

def test_an_address_cells_of_three_bytes_is_named_not_counted():
    """fdt_address_cells' error once read "root #address-cells -14"."""
    body, s = fdtcraft.memory_tree()
    cells = P(s("#address-cells"), fdtcraft.word(2))
    assert body.count(cells) == 1
    body = body.replace(cells, P(s("#address-cells"), b"\0\0\2"))
    r = boot(Scenario(name="3-byte cells", dtb=fdtcraft.tree(body, s.blob)))
    assert_fatal(r, ROOT_CELLS, "root #address-cells: bad #address-cells or #size-cells")
    assert "-14" not in r.message


# ------------------------------------------------- step 3: the overlap

def with_chosen_initrd(start: int, end: int, blob: bytes | None = None) -> bytes:
    fdt = libfdt.Fdt(bytearray(blob or MemoryTree().build()))
    fdt.resize(fdt.totalsize() + 256)
    chosen = fdt.path_offset("/chosen")
    fdt.setprop_u64(chosen, "linux,initrd-start", start)
    fdt.setprop_u64(chosen, "linux,initrd-end", end)
    fdt.pack()
    return bytes(fdt.as_bytearray())


def test_a_chosen_initrd_over_the_wrapper_stops_with_INITRD_OVERLAP():
    sc = Scenario(name="initrd over the wrapper", dtb=with_chosen_initrd(0x200_1000, 0x200_3000))
    r = boot(sc)
    assert r.layout.wrapper.address == 0x200_0000
    assert_fatal(r, INITRD_OVERLAP, "initrd 0x2001000..0x2003000 overlaps the wrapper image "
                 f"0x2000000..0x{r.layout.wrapper.end:x}")
    assert_model_predicted(r, FATAL_INITRD_OVERLAP)


def test_a_chosen_initrd_over_the_tree_stops_with_INITRD_OVERLAP():
    dtb = with_chosen_initrd(0x7FF_F000, 0x800_0010)
    r = boot(Scenario(name="initrd over the tree", dtb=dtb, dtb_at=0x800_0000))
    assert_fatal(r, INITRD_OVERLAP, "initrd 0x7fff000..0x8000010 overlaps the device tree "
                 f"0x8000000..0x{0x800_0000 + len(dtb):x}")
    assert_model_predicted(r, FATAL_INITRD_OVERLAP)


@pytest.mark.parametrize("start, end, hole", [
    (0x1000_0000, 0x1000_1000, 0x1000_0000),     # fuzz seed 1 case 37: just past RAM
    (0xFFF_8000, 0x1000_8000, 0x1000_0000),      # running off its end
])
def test_a_chosen_initrd_outside_memory_stops_with_INITRD_OUTSIDE(start, end, hole):
    """256 MiB of RAM at 0.  Once handed on: the kernel faulted reading it."""
    r = boot(Scenario(name="initrd outside memory", dtb=with_chosen_initrd(start, end),
                      dtb_at=0x800_0000))
    assert_fatal(r, INITRD_OUTSIDE, f"initrd 0x{start:x}..0x{end:x} does not lie in "
                 f"memory: no /memory block holds 0x{hole:x}")
    assert_model_predicted(r, FATAL_INITRD_OUTSIDE)


def test_the_emulator_refuses_the_same_overlap_given_as_its_own_initrd():
    """--initrd-at over the wrapper cannot be loaded at all: bad input."""
    with pytest.raises(ScenarioError, match="overlaps"):
        boot(default_scenario().replace(initrd_at=0x200_0000))


# ----------------------------------------- step 3: a zero-size initrd

def test_a_zero_size_initrd_is_no_initrd_and_the_final_tree_names_none():
    """Once "predicted none, got 0x6000000 (0x0 bytes)": the pair was handed
    on as given.  Now nothing is recorded and /chosen names no initrd."""
    r = boot(Scenario(name="zero-size initrd", dtb=with_chosen_initrd(0x600_0000, 0x600_0000)))
    assert r.exit is ExitReason.KERNEL, r.message
    assert r.passed, r.checks
    p = r.model.prediction
    assert p is not None and p.initrd is None
    # Nothing recorded for it (the table at the hand-off is the predicted one).
    assert "occupied" in r.console
    assert not [line for line in r.console.splitlines() if "occupied" in line and "initrd" in line]
    chosen = tree_contents(r.final_dtb)["/chosen"]
    assert "linux,initrd-start" not in chosen and "linux,initrd-end" not in chosen
    assert chosen["bootargs"] == b"console=hvc0\0"
    assert r.initrd is None and not r.kernel_report.has_initrd


def test_a_zero_size_initrd_handed_on_reads_as_none():
    """The comparison's side: a final tree naming a 0-byte initrd (as a
    wrapper that leaves the pair alone would hand on) names none."""
    assert handed_on_initrd(with_chosen_initrd(0x600_0000, 0x600_0000)) is None
    got = handed_on_initrd(with_chosen_initrd(0x600_0000, 0x600_1000))
    assert got is not None and (got.address, got.size) == (0x600_0000, 0x1000)


# ------------------------------------------------ linear work, huge trees

def many_nodes_first(n: int) -> bytes:
    """n empty children of the root, then memory@0 and /chosen."""
    s = fdtcraft.Strings()
    nodes = b"".join(B(f"n{i}") + E() for i in range(n))
    body = (B() + P(s("#address-cells"), fdtcraft.word(2))
            + P(s("#size-cells"), fdtcraft.word(2)) + nodes
            + B("memory@0") + P(s("device_type"), b"memory\0")
            + P(s("reg"), struct.pack(">QQ", 0, 256 * MiB)) + E()
            + B("chosen") + P(s("bootargs"), b"x\0") + E() + E() + END())
    return fdtcraft.tree(body, s.blob)


def test_5000_nodes_before_memory_take_linear_work():
    """Each root child once cost some 5,600 instructions (a walk over the
    root's children for /memory and three path lookups of /chosen, each
    call re-checking the header and the node); now about 2,300: 5,000
    children fit 16 M instructions (28 M before)."""
    r = boot(Scenario(name="5000 nodes first", dtb=many_nodes_first(5000),
                      budget=16_000_000), count_instructions=True)
    assert r.exit is ExitReason.KERNEL, (r.exit, r.message)
    assert r.passed, r.checks
