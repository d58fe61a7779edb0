"""The same firmware under a second ABI: gcc -mabi=elfv2 (make ABI=elfv2).

ELFv2 has no function descriptors: a function symbol is its global entry
point, which derives r2 from r12, and calls from within the image land on
the local entry point past that set-up.  The checkers must hook the right
one (the mirror both: the C calls the local entry, the GuestCaller the
global one), so the boot and the guest-vs-model differential are run here
on the ELFv2 build, with the ELFv1 build's results as the reference.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from emulator import Boot, default_scenario
from emulator.checkers.mirror import API, DivergenceError
from emulator.guest.elf import ElfImage, ElfImageError, _local_entry_offset
from emulator.harness.firmware import FirmwareBuild, FirmwareError
from emulator.harness.range_harness import RangeHarness
from tests.strategies import any_sequence
from tests.test_differential import DIFF_SETTINGS, run_guest
from wrapper_model import Op


@pytest.fixture(scope="module")
def elfv2() -> FirmwareBuild:
    return FirmwareBuild(abi="elfv2").ensure_built()


@pytest.fixture(scope="module")
def harness(elfv2):
    h = RangeHarness(elfv2.wrapper_elf)
    yield h
    h.close()


# --- the build --------------------------------------------------------------------------------


def test_elfv2_build_has_its_own_directory_and_no_descriptors(elfv2):
    v1 = FirmwareBuild().ensure_built()
    assert elfv2.directory != v1.directory and elfv2.directory.name == "firmware-elfv2"
    image, ref = ElfImage(elfv2.wrapper_elf), ElfImage(v1.wrapper_elf)
    try:
        assert image.elfv2 and not image.elfv1
        assert ref.elfv1 and not ref.elfv2
        # The test kernel is built with the same flags.
        assert ElfImage(elfv2.kernel_elf).elfv2
    finally:
        image.close()
        ref.close()


def test_unknown_abi_is_refused():
    with pytest.raises(FirmwareError, match="unknown ABI"):
        FirmwareBuild(abi="elfv3")


def test_c_functions_have_a_local_entry_past_the_toc_setup(elfv2):
    image = ElfImage(elfv2.wrapper_elf)
    try:
        for fn in API:
            glob, local = image.function_entry(fn.symbol), image.local_entry(fn.symbol)
            # addis r2, r12, ...; addi r2, r2, ...: two instructions
            assert local - glob == 8, fn.symbol
            seg = next(s for s in image.segments if s.vaddr <= glob < s.vaddr + len(s.data))
            first = int.from_bytes(seg.data[glob - seg.vaddr:][:4], "big")
            assert first >> 16 == 0x3C4C, f"{fn.symbol}: {first:#010x} is not addis r2, r12"
        # crt0's assembly functions need no TOC: one entry point.
        assert image.local_entry("bw_stop") == image.function_entry("bw_stop")
    finally:
        image.close()


@pytest.mark.parametrize("bits, offset", [(0, 0), (1, 0), (2, 4), (3, 8), (4, 16), (6, 64)])
def test_st_other_local_entry_encoding(bits, offset):
    assert _local_entry_offset(bits) == offset


def test_reserved_local_entry_encoding_is_refused():
    with pytest.raises(ElfImageError):
        _local_entry_offset(7)


# --- a boot ------------------------------------------------------------------------------------


def test_default_scenario_boots_on_elfv2_as_on_elfv1(elfv2):
    scenario = default_scenario()
    r = Boot(scenario, FirmwareBuild(policy=scenario.policy, abi="elfv2")).run(
        count_instructions=True)
    assert r.exit == "kernel", r.message
    assert r.matches_model is True
    assert r.watch is not None and r.watch.attached and r.overwrites == []
    assert r.mirror is not None and r.mirror.attached and r.divergence is None
    assert r.passed
    ref = Boot(scenario).run()
    assert ref.exit == "kernel"
    # The C calls the range functions at their local entries: were only the
    # global ones hooked, the mirror would see nothing here.  The arguments
    # differ where they carry the image's size (ELFv2's is smaller).
    assert len(r.ranges) >= 5
    # (and so do addresses returned: compare the status codes).
    status = {fn.symbol for fn in API if fn.returns == "int"}

    def calls(result):
        return [(e.function, e.ret if e.function in status else None) for e in result.ranges]
    assert calls(r) == calls(ref)
    assert r.instructions


def test_elfv2_boot_with_a_faulty_wrapper_stops_at_the_divergence():
    scenario = default_scenario()
    fw = FirmwareBuild(policy=scenario.policy, fault="NO_MERGE_ADJACENT", abi="elfv2")
    r = Boot(scenario, fw).run()
    assert r.exit == "divergence"
    assert r.divergence is not None and r.divergence.function == "ranges_init_malloc"


# --- guest vs model ----------------------------------------------------------------------------


def test_elfv2_guest_matches_model_on_200_random_sequences(harness):
    before = harness.caller.calls

    @settings(max_examples=200, **DIFF_SETTINGS)
    @given(any_sequence)
    def check(ops):
        run_guest(harness, ops)
    check()
    assert harness.caller.calls - before > 200          # the guest really ran
    assert harness.caller.target("ranges_add").toc is None   # entered with r12, no descriptor


def test_elfv2_harness_finds_an_injected_fault():
    h = RangeHarness(FirmwareBuild(fault="NO_MERGE_ADJACENT", abi="elfv2")
                     .ensure_built().wrapper_elf)
    try:
        h.reset()
        with pytest.raises(DivergenceError) as e:
            h.run([Op("init", (0x10000,)), Op("add", (0x1000, 0x1000)),
                   Op("add", (0x2000, 0x1000))])
        assert e.value.divergence.index == 3
        assert e.value.divergence.function == "ranges_add"
    finally:
        h.close()


def test_hooking_only_global_entries_would_miss_the_c_calls(monkeypatch):
    """Why the mirror hooks local entries: without them an ELFv2 boot shows
    an empty timeline (and still reaches the kernel, so nothing else says so)."""
    monkeypatch.setattr(ElfImage, "local_entry", ElfImage.function_entry)
    scenario = default_scenario()
    r = Boot(scenario, FirmwareBuild(policy=scenario.policy, abi="elfv2")).run()
    assert r.exit == "kernel" and r.ranges == []
