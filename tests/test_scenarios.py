"""Every named scenario boots and matches the reference prediction, under
both heap policies; random layouts do too (hypothesis)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from emulator.checkers.model import BootFacts, ModelFindings, compare
from emulator.guest.devicetree import DeviceTree
from emulator.harness import scenarios_lib
from emulator.harness.boot import Boot, boot
from emulator.harness.scenario import MemoryTree, MiB, Scenario, ScenarioError, default_initrd

POLICIES = ("fixed", "seed")


def run(sc: Scenario):
    # The protected-range watch is another part's check: the model's
    # verdict is taken on its own here.
    return boot(sc, watch=False)


def assert_matches(r) -> None:
    assert r.prediction is not None, "no prediction was made"
    assert r.matches_model is True, f"{r.scenario}: {r.comparison}"
    if r.prediction.fatal is None:
        assert r.handoff is not None
    else:
        assert r.exit == "fatal" and r.handoff is None


#: The named scenarios that were Python code before they moved into
#: scenarios/ (each file's [expect] now says what its point is).
NAMED = ("kernel-fits-below-wrapper", "big-kernel-goes-to-heap", "initrd-below-wrapper",
         "initrd-below-big-kernel-end", "wrapper-above-initrd-and-dtb", "attached-initrd",
         "attached-replaces-loaded-initrd", "rtas-and-tce-reserved", "bulk-after-reserve",
         "bulk-after-device-tree", "chunk-at-0-reserved", "wrapper-at-0",
         "rma-smaller-than-memory", "cells-1-1", "no-rma", "reserve-map-overflows-table",
         "table-full-refuses-kernel", "kernel-larger-than-rma", "default")


def test_every_named_scenario_is_a_file():
    assert set(NAMED) <= set(scenarios_lib.names())
    assert all(scenarios_lib.SCENARIOS[n].description for n in NAMED)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", NAMED)
def test_named_scenario_matches_prediction(name, policy):
    """Whatever the policy its file names, the boot under either policy is
    what the reference model predicts."""
    assert_matches(run(scenarios_lib.get(name, policy)))


def test_small_kernel_at_0_when_no_initrd_is_below_it():
    r = run(scenarios_lib.get("kernel-fits-below-wrapper"))
    assert r.handoff.kernel == 0 and r.exit == "kernel" and r.initrd_intact


def test_the_seeds_hole_is_predicted_only_for_seed():
    seed = run(scenarios_lib.get("initrd-below-big-kernel-end", "seed"))
    fixed = run(scenarios_lib.get("initrd-below-big-kernel-end", "fixed"))
    assert seed.prediction.clobbered("initrd")
    assert seed.initrd.address == seed.layout.initrd.address
    assert not fixed.prediction.clobbered("initrd")
    assert fixed.initrd.address >= fixed.prediction.table.used()[0][1]


def test_comparison_catches_a_wrong_prediction():
    """The checker can fail: the same boot against a prediction with the
    kernel, the tree, the initrd or the table moved is reported, field by
    field."""
    b = Boot(scenarios_lib.get("kernel-fits-below-wrapper"), watch=False)
    r = b.run()
    p = r.prediction
    facts = BootFacts(r.exit.value, r.message, r.fatal_code, r.handoff, r.initrd)
    table = b.observers["model"].table_at_handoff
    assert compare(p, facts, table).matches
    wrong_kernel = dataclasses.replace(p, kernel=0x1000)
    c = compare(wrong_kernel, facts, table)
    assert not c.matches and c.mismatches == ["kernel: predicted 0x1000, got 0x0"]
    wrong = dataclasses.replace(p, dtb=p.dtb + 0x1000, initrd=None)
    assert [m.split(":")[0] for m in compare(wrong, facts).mismatches] == ["device tree", "initrd"]
    t = p.table
    moved = dataclasses.replace(t, heap_end=t.heap_end - 0x1000)
    assert compare(dataclasses.replace(p, table=moved), facts, table).mismatches[0] \
        .startswith("range table")
    fatal = dataclasses.replace(p, fatal="heap", fatal_detail="x")
    assert compare(fatal, facts).mismatches[0].startswith("outcome")


def test_a_model_mismatch_fails_the_verdict():
    from emulator import report
    r = run(scenarios_lib.get("kernel-fits-below-wrapper"))
    assert report.verdict(r).startswith("OK")
    assert report.to_json(r)["matches_model"] is True
    wrong = dataclasses.replace(r.prediction, kernel=0x1000)
    facts = BootFacts(r.exit.value, r.message, r.fatal_code, r.handoff, r.initrd)
    r.findings["model"] = ModelFindings(True, wrong, compare(wrong, facts))
    assert not r.passed and r.reached_kernel
    assert report.verdict(r).startswith("FAIL")
    assert "kernel: predicted 0x1000" in report.verdict(r)


# --- random layouts ---------------------------------------------------------

ALIGN = 0x1_0000
KERNEL_BSS = (None, 4 * MiB, 40 * MiB)   # a few, so builds stay cached


@st.composite
def layouts(draw):
    rma = draw(st.sampled_from([64 * MiB, 128 * MiB, 256 * MiB]))
    memory = [(0, rma)]
    if draw(st.booleans()):
        memory.append((rma, draw(st.sampled_from([64 * MiB, 768 * MiB]))))

    def addr(lo=0, hi=rma):
        return draw(st.integers(lo // ALIGN, hi // ALIGN - 1)) * ALIGN

    reserves = []
    for _ in range(draw(st.integers(0, 4))):
        base = draw(st.integers(0, (rma + 64 * MiB) // 0x1000 - 1)) * 0x1000
        size = draw(st.sampled_from([0x1000, 0x10_0000, 0x80_0000]))
        reserves.append((base, size))
    tree = MemoryTree(memory=tuple(memory), reserves=tuple(reserves))
    initrd = None
    initrd_at = None
    if draw(st.booleans()):
        initrd = default_initrd(draw(st.sampled_from([0x1000, 96 * 1024, 2 * MiB])))
        initrd_at = addr()
    attached = default_initrd(64 * 1024) if draw(st.booleans()) else None
    return Scenario(name="random", dtb=tree.build(), wrapper_at=addr(),
                    dtb_at=addr(), initrd=initrd, initrd_at=initrd_at,
                    attached_initrd=attached,
                    kernel_bss=draw(st.sampled_from(KERNEL_BSS)),
                    policy=draw(st.sampled_from(POLICIES)))


def check_random(sc: Scenario) -> None:
    try:
        r = run(sc)
    except ScenarioError:
        assume(False)   # pieces overlapping or outside RAM: not a hand-over
        return
    assert_matches(r)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layouts())
def test_random_layouts_match_prediction(sc):
    check_random(sc)


@pytest.mark.slow
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layouts())
def test_random_layouts_match_prediction_long(sc):
    check_random(sc)


# --- the watch agrees with the prediction ------------------------------------

def overwrite_kind(region: str) -> str:
    """A watch region's name as the prediction names what it clobbers."""
    for prefix, kind in (("final device tree", "device tree"), ("initrd", "initrd"),
                         ("reserve", "reserve")):
        if region.startswith(prefix):
            return kind
    return region


def check_watch(sc: Scenario) -> None:
    try:
        r = boot(sc)
    except ScenarioError:
        assume(False)
        return
    assume(r.prediction is not None and r.prediction.fatal is None)
    assert r.matches_model, r.comparison
    # A chain-loader never loads into reserved memory; where this one did,
    # the wrapper's own start-up writes there and the watch rightly says so.
    loaded = [p for p in (r.layout.wrapper, r.layout.dtb, r.layout.initrd) if p]
    assume(not any(p.address < a + n and a < p.end
                   for p in loaded for a, n in DeviceTree(sc.dtb).reserves()))
    # The wrapper itself never stores into anything protected ...
    assert [o for o in r.overwrites if o.phase == "wrapper"] == []
    # ... and the kernel's copy to 0 hits exactly what the model said it would.
    hit = {overwrite_kind(o.region) for o in r.overwrites}
    assert hit == {c.what for c in r.prediction.clobbers}
    if sc.initrd is not None or sc.attached_initrd is not None:
        assert r.initrd_intact is (not r.prediction.clobbered("initrd"))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layouts())
def test_random_layouts_overwrite_exactly_what_was_predicted(sc):
    check_watch(sc)


@pytest.mark.slow
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layouts())
def test_random_layouts_overwrite_exactly_what_was_predicted_long(sc):
    check_watch(sc)
