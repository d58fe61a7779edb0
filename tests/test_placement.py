"""The placement prediction (wrapper_model.placement), worked by hand from
docs/kexec.md and docs/memranges.md.  Every expected number below was
derived on paper from the steps, not read off a run."""

from __future__ import annotations

import dataclasses

import pytest

from wrapper_model.placement import (
    FATAL_HEAP,
    FATAL_INITRD_INVERTED,
    FATAL_INITRD_OUTSIDE,
    FATAL_INITRD_OVERLAP,
    FATAL_KERNEL,
    FATAL_KNOWN_RANGE,
    FATAL_NO_RMA,
    FATAL_TREE,
    PlacementInputs,
    Region,
    find_rma_end,
    predict,
)

MiB = 1 << 20

# The default boot's numbers: 256 MiB, wrapper at 32 MiB, tree at the top,
# initrd below it, the small test kernel.
DEFAULT = PlacementInputs(
    memory=((0, 0x1000_0000),), wrapper_at=0x200_0000, image_size=0x2_4230,
    dtb_at=0xFFF_0000, dtb_size=0x239, kernel_size=0x1_4570,
    initrd_start=0xFFD_0000, initrd_end=0xFFE_8000, policy="fixed")

# The seed's hole: initrd at 16 MiB, a kernel of 40 MiB + 0x14570.
HOLE = dataclasses.replace(DEFAULT, initrd_start=0x100_0000, initrd_end=0x101_8000,
                           kernel_size=0x281_4570)


def used(p):
    return p.table.used()


@pytest.mark.parametrize("policy", ["fixed", "seed"])
def test_small_kernel_runs_at_0_and_heap_takes_gap_after_wrapper(policy):
    p = predict(DEFAULT, policy)
    assert p.fatal is None
    assert p.rma_end == 0x1000_0000
    assert p.kernel == 0
    # Largest gap not at 0: wrapper end 0x2024230 .. initrd 0xffd0000.
    assert p.heap == (0x202_5000, 0xFFD_0000)
    # The heap touches the initrd's entry and merges with it.
    assert used(p) == ((0, 0x1_4570), (0x200_0000, 0x202_4230),
                       (0x202_5000, 0xFFE_8000), (0xFFF_0000, 0xFFF_0239))
    assert p.table.refused == 0
    # First malloc: the final tree (0x239 + 0x1000 -> two pages).
    assert p.dtb == 0x202_5000
    assert p.initrd == Region(0xFFD_0000, 0x1_8000)
    assert p.clobbers == ()


def test_seed_hands_a_low_initrd_to_a_kernel_that_overwrites_it():
    p = predict(HOLE, "seed")
    assert p.fatal is None
    # Heap first: the widest gap not at 0 is wrapper end .. tree.
    assert p.heap == (0x202_5000, 0xFFF_0000)
    # [0, S) meets the initrd: the kernel is malloc-ed (S rounds to 0x2815000).
    assert p.kernel == 0x202_5000
    assert p.dtb == 0x202_5000 + 0x281_5000
    assert p.initrd == Region(0x100_0000, 0x1_8000)
    assert [c.what for c in p.clobbers] == ["initrd"]
    assert used(p) == ((0x100_0000, 0x101_8000), (0x200_0000, 0x202_4230),
                       (0x202_5000, 0xFFF_0239))


def test_fixed_keeps_kernel_footprint_out_of_heap_and_moves_low_initrd():
    p = predict(HOLE, "fixed")
    assert p.fatal is None
    # ranges_add(0, S) absorbs the initrd and the wrapper.
    assert used(p)[0] == (0, 0x281_4570)
    assert p.heap == (0x281_5000, 0xFFF_0000)
    # The initrd moves first, then the kernel, then the tree.
    assert p.initrd == Region(0x281_5000, 0x1_8000)
    assert p.kernel == 0x282_D000
    assert p.dtb == 0x282_D000 + 0x281_5000
    assert p.clobbers == ()


def test_attached_initrd_is_malloced_before_the_tree_and_replaces_the_loaded_one():
    p = predict(dataclasses.replace(DEFAULT, attached_initrd_size=0x1_0001), "fixed")
    assert p.initrd == Region(0x202_5000, 0x1_0001)
    assert p.dtb == 0x202_5000 + 0x1_1000


def test_reserves_are_recorded_and_ignored_above_rma_end():
    inputs = dataclasses.replace(
        DEFAULT, initrd_start=None, initrd_end=None,
        reserves=((0xE00_0000, 0x10_0000), (0x1_7000_0000, 0x100_0000)),
        memory=((0, 0x1000_0000), (0x1000_0000, 0x7000_0000)))
    p = predict(inputs, "fixed")
    # Heap: the gap wrapper end .. RTAS is the widest (0xbfdbdd0); it
    # touches RTAS and merges with it.  The TCE table above 256 MiB is not
    # recorded.
    assert p.heap == (0x202_5000, 0xE00_0000)
    assert used(p) == ((0, 0x1_4570), (0x200_0000, 0x202_4230),
                       (0x202_5000, 0xE10_0000), (0xFFF_0000, 0xFFF_0239))


def test_reserve_at_0_sends_the_kernel_to_the_heap_and_is_an_expected_clobber():
    inputs = dataclasses.replace(DEFAULT, reserves=((0, 0x1_0000),))
    for policy in ("fixed", "seed"):
        p = predict(inputs, policy)
        assert p.kernel != 0
        assert [c.what for c in p.clobbers] == ["reserve"]


def test_rma_end_is_the_first_nonempty_reg_at_0():
    assert find_rma_end(((0x1000_0000, 1), (0, 0), (0, 0x800_0000), (0, 1))) == 0x800_0000
    assert find_rma_end(((0x1000_0000, 0x1000_0000),)) is None


def test_no_memory_at_0_is_fatal_before_any_table():
    p = predict(dataclasses.replace(DEFAULT, memory=((0x1000_0000, 0x1000_0000),)))
    assert p.fatal == FATAL_NO_RMA
    assert p.table is None and p.kernel is None


def test_inverted_initrd_is_fatal():
    p = predict(dataclasses.replace(DEFAULT, initrd_start=0xFFE_8000,
                                    initrd_end=0xFFD_0000))
    assert p.fatal == FATAL_INITRD_INVERTED


def test_empty_initrd_is_no_initrd():
    p = predict(dataclasses.replace(DEFAULT, initrd_end=DEFAULT.initrd_start))
    assert p.fatal is None and p.initrd is None
    assert len(used(p)) == 3


def test_a_tree_failing_the_structural_check_is_fatal_before_step_1():
    """Step 0: nothing else is read, no table exists."""
    p = predict(dataclasses.replace(DEFAULT, tree_valid=False, memory=()))
    assert p.fatal == FATAL_TREE
    assert p.table is None and p.rma_end is None and p.heap is None
    # ...whatever the rest of the inputs would have led to.
    assert predict(dataclasses.replace(DEFAULT, tree_valid=False)).fatal == FATAL_TREE


@pytest.mark.parametrize("start, end, kind", [
    # Wrapper [0x2000000, 0x2024230), tree [0xfff0000, 0xfff0239).
    (0x200_0000, 0x200_1000, FATAL_INITRD_OVERLAP),          # its first bytes
    (0x1FF_0000, 0x200_0001, FATAL_INITRD_OVERLAP),          # one byte in
    (0x202_422F, 0x300_0000, FATAL_INITRD_OVERLAP),          # its last byte
    (0x1F0_0000, 0x400_0000, FATAL_INITRD_OVERLAP),          # all of it
    (0xFFE_0000, 0xFFF_0001, FATAL_INITRD_OVERLAP),          # the tree's first byte
    (0xFFF_0238, 0xFFF_1000, FATAL_INITRD_OVERLAP),          # the tree's last byte
    (0x1FF_0000, 0x200_0000, None),                          # ends where the wrapper starts
    (0x202_4230, 0x203_0000, None),                          # starts where it ends
    (0xFFE_0000, 0xFFF_0000, None),                          # ends where the tree starts
    (0x200_1000, 0x200_1000, None),                          # zero size: no initrd at all
])
def test_an_initrd_sharing_a_byte_with_the_wrapper_or_the_tree_is_fatal(start, end, kind):
    for policy in ("fixed", "seed"):
        p = predict(dataclasses.replace(DEFAULT, initrd_start=start, initrd_end=end), policy)
        assert p.fatal == kind, (hex(start), hex(end), p.fatal_detail)
        if kind is not None:
            # Step 3 stops before the initrd is recorded.
            assert p.table.used() == ((0x200_0000, 0x202_4230), (0xFFF_0000, 0xFFF_0239))


def test_the_overlap_is_judged_above_rma_end_too():
    above = dataclasses.replace(DEFAULT, wrapper_at=0x2_0000_0000, initrd_start=0x2_0000_1000,
                                initrd_end=0x2_0000_2000)
    assert predict(above).fatal == FATAL_INITRD_OVERLAP


# Memory [0, 256 MiB) and [512 MiB, 768 MiB): a hole of 256 MiB between.
TWO_BLOCKS = ((0, 0x1000_0000), (0x2000_0000, 0x1000_0000))


@pytest.mark.parametrize("memory, start, end, hole", [
    (DEFAULT.memory, 0x1000_0000, 0x1000_1000, 0x1000_0000),   # fuzz seed 1 case 37
    (DEFAULT.memory, 0xFFF_F000, 0x1000_1000, 0x1000_0000),    # runs off the end
    (DEFAULT.memory, 1 << 63, (1 << 63) + 0x1000, 1 << 63),    # far past it
    (TWO_BLOCKS, 0x1800_0000, 0x1800_1000, 0x1800_0000),       # in the hole
    (TWO_BLOCKS, 0xFFF_F000, 0x2000_1000, 0x1000_0000),        # across the hole
    (TWO_BLOCKS[::-1], 0x2FFF_F000, 0x3000_0001, 0x3000_0000),  # off the upper block
    (TWO_BLOCKS + ((0x1000_0000, 0),), 0xFFF_F000, 0x1000_1000, 0x1000_0000),  # size 0
    (DEFAULT.memory, 0x1000_0000, 0x1000_0000, None),          # zero size: no initrd
    (TWO_BLOCKS, 0x2000_0000, 0x2000_1000, None),              # in the upper block
    (((0, 0x1000_0000), (0x1000_0000, 0x1000_0000)), 0xFFF_F000, 0x1000_1000, None),
])
def test_an_initrd_not_all_in_memory_is_fatal(memory, start, end, hole):
    """Step 3: every byte of [I0, I1) in some block, blocks that meet
    joined, in any order; checked after the overlap, before recording."""
    for policy in ("fixed", "seed"):
        p = predict(dataclasses.replace(DEFAULT, memory=memory, initrd_start=start,
                                        initrd_end=end), policy)
        if hole is None:
            assert p.fatal is None, p.fatal_detail
            continue
        assert p.fatal == FATAL_INITRD_OUTSIDE, (hex(start), p.fatal_detail)
        assert p.fatal_detail.endswith(f"no block holds 0x{hole:x}")
        assert used(p) == ((0x200_0000, 0x202_4230), (0xFFF_0000, 0xFFF_0239))


def test_blocks_meeting_in_either_order_hold_an_initrd_across_them():
    for memory in (((0, 0x800_0000), (0x800_0000, 0x800_0000)),
                   ((0x800_0000, 0x800_0000), (0, 0x800_0000)),
                   ((0x400_0000, 0xC00_0000), (0, 0x900_0000))):
        p = predict(dataclasses.replace(DEFAULT, memory=memory, initrd_start=0x7FF_0000,
                                        initrd_end=0x801_0000))
        assert p.fatal is None, (memory, p.fatal_detail)


def test_the_overlap_is_judged_before_the_memory_check():
    p = predict(dataclasses.replace(DEFAULT, dtb_at=0x1000_0000, initrd_start=0xFFF_F000,
                                    initrd_end=0x1000_0010))
    assert p.fatal == FATAL_INITRD_OVERLAP


def test_reserve_map_overflowing_the_table_is_fatal_with_one_refusal():
    # wrapper, tree, initrd + 29 reserves = 32 entries; the 30th is refused.
    reserves = tuple((0x400_0000 + i * 0x10_0000, 0x1000) for i in range(30))
    p = predict(dataclasses.replace(DEFAULT, reserves=reserves))
    assert p.fatal == FATAL_KNOWN_RANGE
    assert p.table.count == 32 and p.table.refused == 1
    # 29 fill the table exactly; the kernel's [0, S) then touches nothing
    # and is refused: ranges_vmlinux_alloc fails with FULL.
    full = predict(dataclasses.replace(DEFAULT, reserves=reserves[:29]))
    assert full.fatal == FATAL_KERNEL and full.table.refused == 1
    # 28: the kernel is the 32nd entry.
    ok = predict(dataclasses.replace(DEFAULT, reserves=reserves[:28]))
    assert ok.fatal is None and ok.kernel == 0
    # The heap fuses the last reserve (ends 0x5b01000) with the initrd: 31.
    assert ok.table.count == 31 and ok.heap == (0x5B0_1000, 0xFFD_0000)


def test_kernel_larger_than_rma_fails_differently_by_policy():
    inputs = dataclasses.replace(DEFAULT, kernel_size=0x1000_0001)
    # seed: a heap exists, but malloc(S) cannot fit the kernel.
    assert predict(inputs, "seed").fatal == FATAL_KERNEL
    # fixed: [0, S) clipped at rma_end fills the RMA; no heap.
    p = predict(inputs, "fixed")
    assert p.fatal == FATAL_HEAP
    assert used(p)[0][0] == 0 and p.heap is None


def test_heap_too_small_is_fatal():
    # 1 MiB RMA with the wrapper in the middle: gaps under 64 KiB after
    # page alignment?  No: make every gap not at 0 smaller than 64 KiB.
    inputs = PlacementInputs(memory=((0, 0x10_0000),), wrapper_at=0x1_0000,
                             image_size=0xE_8000, dtb_at=0xF_8000, dtb_size=0x1000,
                             kernel_size=0x8000)
    p = predict(inputs, "seed")
    assert p.fatal == FATAL_HEAP


def test_policy_argument_overrides_inputs():
    assert predict(HOLE, "seed").policy == "seed"
    assert predict(HOLE).policy == "fixed"
    assert predict(HOLE, "seed").kernel != predict(HOLE).kernel
