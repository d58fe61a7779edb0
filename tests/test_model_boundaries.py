"""The model check compares every field it is given: each placement's
address and size, the outcome and the fatal step by its code, every field
of the range table at the hand-off; and a wrong hand-off register, put
into the guest at the jump, is a mismatch.

compare() is taken field by field on a real boot's prediction and facts;
the registers and the tree handed on are changed in the guest itself.
"""

from __future__ import annotations

import dataclasses
import re

import libfdt
import pytest

from emulator import Boot, boot, default_scenario
from emulator.checkers.model import FATAL_CODES, BootFacts, compare, handed_on_initrd
from emulator.checkers.rangetable import RangeTableView
from emulator.guest.addresses import Placement
from emulator.harness import scenarios_lib
from emulator.harness.firmware import ROOT
from wrapper_model.placement import Region

#: Every number a BootFacts can carry that the wrapper's codes use.
CODES = range(1, 40)


@pytest.fixture(scope="module")
def clean():
    """A boot whose every placement is non-trivial: kernel, tree, initrd."""
    b = Boot(default_scenario())
    r = b.run()
    assert r.passed
    table = b.observers["model"].table_at_handoff
    assert table is not None
    facts = BootFacts(r.exit.value, r.message, r.fatal_code, r.handoff,
                      handed_on_initrd(r.final_dtb))
    assert compare(r.prediction, facts, table).matches
    return r.prediction, facts, table


def _facts_with(facts: BootFacts, **registers: int) -> BootFacts:
    return dataclasses.replace(facts, handoff=dataclasses.replace(facts.handoff, **registers))


@pytest.mark.parametrize("field", ["kernel", "dtb"])
@pytest.mark.parametrize("delta", [1, -1, 0x1000])
def test_a_register_placement_one_off_is_a_mismatch(clean, field, delta):
    p, facts, table = clean
    got = _facts_with(facts, **{field: (getattr(facts.handoff, field) + delta) % 2**64})
    c = compare(p, got, table)
    assert not c.matches and len(c.mismatches) == 1, c.mismatches


@pytest.mark.parametrize("change", [(1, 0), (-1, 0), (0, 1), (0, -1), (0x1000, 0),
                                    (1, -1)])
def test_an_initrd_differing_in_address_or_size_alone_is_a_mismatch(clean, change):
    p, facts, table = clean
    da, ds = change
    i = facts.initrd
    got = dataclasses.replace(facts, initrd=Placement(i.address + da, i.size + ds))
    c = compare(p, got, table)
    assert not c.matches and [m.split(":")[0] for m in c.mismatches] == ["initrd"]
    # and the same from the prediction's side
    moved = dataclasses.replace(p, initrd=Region(p.initrd.address + da, p.initrd.size + ds))
    assert not compare(moved, facts, table).matches


def test_an_initrd_present_on_one_side_only_is_a_mismatch(clean):
    p, facts, table = clean
    assert not compare(p, dataclasses.replace(facts, initrd=None), table).matches
    assert not compare(dataclasses.replace(p, initrd=None), facts, table).matches


def _table_variants(t):
    for name in ("rma_end", "heap_start", "heap_end", "count", "refused"):
        yield name, dataclasses.replace(t, **{name: getattr(t, name) + 1})
    for i in range(len(t.entries)):
        for j, end in enumerate(("start", "end")):
            e = list(t.entries)
            pair = list(e[i])
            pair[j] += 1
            e[i] = tuple(pair)
            yield f"entry[{i}].{end}", dataclasses.replace(t, entries=tuple(e))


def test_any_single_field_of_the_range_table_differing_is_a_mismatch(clean):
    p, facts, table = clean
    missed = [name for name, t in _table_variants(table)
              if compare(p, facts, t).matches]
    assert not missed
    assert len(list(_table_variants(table))) == 5 + 2 * 32


@pytest.mark.parametrize("kind", list(FATAL_CODES))
def test_a_predicted_fatal_matches_its_own_code_and_no_other(clean, kind):
    p, facts, table = clean
    fatal = dataclasses.replace(p, fatal=kind, fatal_detail="predicted", table=None)
    matching = [code for code in CODES
                if compare(fatal, BootFacts("fatal", "FATAL: x", code, None, None)).matches]
    assert matching == [FATAL_CODES[kind]]
    assert not compare(fatal, facts).matches                   # a hand-off instead
    assert not compare(fatal, BootFacts("budget", "out", None, None, None)).matches


def test_a_predicted_hand_off_never_matches_a_stop(clean):
    p, facts, table = clean
    for code in CODES:
        assert not compare(p, BootFacts("fatal", "FATAL: x", code, None, None)).matches
    assert not compare(p, BootFacts("exception", "x", None, None, None)).matches


def test_the_model_reads_each_fatal_code_as_guest_abi_h_defines_it():
    header = (ROOT / "firmware" / "include" / "guest_abi.h").read_text()
    defined = {name: int(value) for name, value in
               re.findall(r"#define\s+BW_FATAL_(\w+)\s+(\d+)", header)}
    for kind, code in FATAL_CODES.items():
        assert defined[kind.upper().replace("-", "_")] == code, kind


# --- through the guest ------------------------------------------------------------------


def _at_jump(b: Boot, change) -> None:
    """change(machine) at bw_enter_kernel's entry: after the wrapper set
    r3/r4 for the hand-off, before the jump reads them."""
    b.machine.on_code(b.image.function_entry("bw_enter_kernel"),
                      lambda pc: change(b.machine))


@pytest.mark.parametrize("reg,what", [("r4", "kernel"), ("r3", "device tree")])
def test_a_wrong_hand_off_register_is_a_model_mismatch(reg, what):
    b = Boot(default_scenario())
    _at_jump(b, lambda m: m.set_reg(reg, m.reg(reg) + 0x1000))
    r = b.run()
    assert r.matches_model is False
    assert any(m.startswith(f"{what}: predicted") for m in r.comparison.mismatches), \
        r.comparison.mismatches


def _set_chosen(m, start_delta: int, end_delta: int) -> None:
    """Moves /chosen's initrd-start and -end in the tree at r3."""
    at = m.reg("r3")
    fdt = libfdt.Fdt(m.read(at, int.from_bytes(m.read(at + 4, 4), "big")))
    chosen = fdt.path_offset("/chosen")
    for name, delta in (("linux,initrd-start", start_delta), ("linux,initrd-end", end_delta)):
        fdt.setprop_u64(chosen, name, fdt.getprop(chosen, name).as_uint64() + delta)
    m.write(at, bytes(fdt.as_bytearray()))


@pytest.mark.parametrize("deltas", [(0, 0x1000), (0x1000, 0x1000)],
                         ids=["size-only", "address-only"])
def test_the_initrd_handed_on_in_the_final_tree_is_compared_by_address_and_size(deltas):
    b = Boot(default_scenario())
    _at_jump(b, lambda m: _set_chosen(m, *deltas))
    r = b.run()
    assert r.matches_model is False
    assert [m.split(":")[0] for m in r.comparison.mismatches] == ["initrd"]


def test_the_wrong_fatal_code_from_the_guest_is_a_mismatch():
    b = Boot(scenarios_lib.get("no-rma"))
    b.machine.on_code(b.image.function_entry("bw_stop"),
                      lambda pc: b.machine.set_reg("r4", b.machine.reg("r4") + 1))
    r = b.run()
    assert r.matches_model is False


def test_the_range_table_at_the_hand_off_is_compared():
    b = Boot(default_scenario())
    view = RangeTableView(b.image)
    refused = view.ranges.address + 28       # struct range_table: u32 refused at +28
    _at_jump(b, lambda m: m.write(refused, b"\x00\x00\x00\x07"))
    r = b.run()
    assert r.matches_model is False
    assert [m.split(":")[0] for m in r.comparison.mismatches] == ["range table"]


def test_the_default_boot_matches(clean):
    assert boot(default_scenario()).matches_model
