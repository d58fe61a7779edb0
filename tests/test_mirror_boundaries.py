"""The mirror compares every byte of the table state: a single byte of
`ranges` (each header field, every entry, used or not, padding) or of
`heap` (each header field, every record) that differs from the model's
rendering is a divergence, named by its field.

The byte is changed in guest memory between two operations, and the next
operation is one that reads and writes nothing (free(NULL)), so that only
the byte comparison can notice: not a return value, not an out-parameter.
"""

from __future__ import annotations

import pytest

from emulator import Boot, ExitReason, default_scenario
from emulator.checkers.mirror import DivergenceError
from emulator.checkers.rangetable import RangeTableView
from emulator.harness.firmware import FirmwareBuild
from emulator.harness.range_harness import RangeHarness
from wrapper_model import Op, OpResult, RangeTable

#: A table with used and unused entries, a heap with used and free records.
SETUP = [Op("init", (0x1000_0000,)), Op("add", (0x200_0000, 0x2_0000)),
         Op("add", (0xfff_0000, 0x1000)), Op("add", (0x80_0000, 0x10)),
         Op("init_malloc", ()), Op("malloc", (0x3000,)), Op("malloc", (0x1000,)),
         Op("malloc", (0x5000,))]
NOTHING = Op("free", (0,))


@pytest.fixture(scope="module")
def harness():
    h = RangeHarness(FirmwareBuild().ensure_built().wrapper_elf)
    h.reset()
    ptr = h.run(SETUP)[-2].ret                  # free the middle block: a free record
    h.run([Op("free", (ptr,))])
    yield h, SETUP + [Op("free", (ptr,))]
    h.close()


def _corrupt_and_compare(h: RangeHarness, setup: list[Op], address: int):
    h.reset()
    h.run(setup)
    old = h.machine.read(address, 1)[0]
    h.machine.write(address, bytes([old ^ 0x81]))
    with pytest.raises(DivergenceError) as e:
        h.run([NOTHING])
    return e.value.divergence


@pytest.mark.parametrize("struct", ["ranges", "heap"])
def test_a_change_of_any_single_byte_of_the_table_state_is_a_divergence(harness, struct):
    h, setup = harness
    view = RangeTableView(h.image)
    where = view.ranges if struct == "ranges" else view.heap
    missed = []
    for i in range(where.size):
        d = _corrupt_and_compare(h, setup, where.address + i)
        diffs = d.table_diffs if struct == "ranges" else d.heap_diffs
        named = [f for f in diffs if f.offset <= i < f.offset + f.size]
        if d.problems != [f"{struct} bytes differ"] or len(diffs) != 1 or not named:
            missed.append((i, d.problems, [str(f) for f in diffs]))
    assert not missed, missed[:5]


def test_state_compared_is_the_whole_struct_per_dwarf(harness):
    h, _ = harness
    view = RangeTableView(h.image)
    # struct range_table: 5 header fields and 32 entries; struct alloc_heap: 4 and 32 records
    assert (view.ranges.size, view.heap.size) == (32 + 32 * 16, 32 + 32 * 24)


def test_a_stray_byte_in_an_unused_entry_during_a_boot_stops_it_as_a_divergence():
    b = Boot(default_scenario())
    view = RangeTableView(b.image)
    last_entry_end = view.ranges.address + view.ranges.size - 1

    def corrupt(pc: int) -> None:
        b.machine.write(last_entry_end, b"\x01")
    b.machine.on_code(b.image.function_entry("ranges_init_malloc"), corrupt)
    r = b.run()
    assert r.exit is ExitReason.DIVERGENCE
    assert r.divergence.function == "ranges_init_malloc"
    assert [str(f).split(" @")[0] for f in r.divergence.table_diffs] == ["entry[31].end"]
    assert [c.name for c in r.failures][0] == "mirror"


# --- every other value the mirror compares: return values, out-parameters ---------------


class OffByOne(RangeTable):
    """The model, with one operation's answer changed: the guest is then
    right and the model wrong, which the mirror must notice all the same."""

    def __init__(self, target: Op, change) -> None:
        super().__init__()
        self.target, self.change = target, change

    def apply(self, op: Op) -> OpResult:
        result = super().apply(op)
        return self.change(result) if op == self.target else result


ANSWERS = {
    # the call after SETUP: (the call, the model's changed answer, the problem named)
    "gap start": (Op("largest_gap", ()),
                  lambda r: OpResult(r.ret, (r.out[0] + 1, r.out[1])), "out-parameter"),
    "gap end": (Op("largest_gap", ()),
                lambda r: OpResult(r.ret, (r.out[0], r.out[1] + 1)), "out-parameter"),
    "gap after last": (Op("gap_after_last", ()),
                       lambda r: OpResult(r.ret, (r.out[0], r.out[1] - 1)), "out-parameter"),
    "is_free's answer": (Op("is_free", (0, 0x1000)),
                         lambda r: OpResult(1 - r.ret), "return value"),
    "add's error code": (Op("add", (0x100, 0x10)), lambda r: OpResult(-3), "return value"),
    "malloc's pointer": (Op("malloc", (0x10,)),
                         lambda r: OpResult(r.ret + 0x1000), "return value"),
    "vmlinux_alloc's address": (Op("vmlinux_alloc", (0x10000,)),
                                lambda r: OpResult(r.ret, (r.out[0] + 0x1000,)),
                                "out-parameter"),
}


@pytest.mark.parametrize("what", list(ANSWERS))
def test_a_return_value_or_out_parameter_differing_by_one_is_a_divergence(what):
    op, change, problem = ANSWERS[what]
    h = RangeHarness(FirmwareBuild().ensure_built().wrapper_elf,
                     model_factory=lambda: OffByOne(op, change))
    try:
        h.reset()
        h.run(SETUP)
        with pytest.raises(DivergenceError) as e:
            h.run([op])
        assert [p.split(":")[0] for p in e.value.divergence.problems] == [problem]
    finally:
        h.close()
