"""The verdict: "passed" computed from the checks, the hand-off registers
read from the guest, fatal stops matched by their code, and the contracts
the structure issue found broken (whole CR, empty memory blocks, one line
for every error bwemu raises)."""

from __future__ import annotations

import dataclasses

from emulator import ExitReason, MemoryTree, boot, default_scenario
from emulator.checkers.model import FATAL_CODES, BootFacts, compare
from emulator.cli import main
from emulator.guest.dwarf import DwarfLayoutError
from emulator.guest.machine import Machine
from emulator.guest.observer import CheckState
from emulator.harness import scenarios_lib
from emulator.harness.boot import Boot
from emulator.harness.scenario import MiB, Scenario
from wrapper_model.placement import FATAL_INITRD_ALLOC, FATAL_INITRD_MOVE

LI_R5_0 = 0x38A00000      # addi r5, 0, 0: bw_enter_kernel's `li r5, 0`
LI_R5_1 = 0x38A00001


def test_cr_reads_and_writes_the_whole_32_bit_condition_register():
    m = Machine([(0, 0x10000)])
    m.set_reg("cr", 0x2468ACE1)
    assert m.reg("cr") == 0x2468ACE1


def test_the_default_boot_passes_with_every_checker_attached():
    r = boot(default_scenario())
    assert r.passed and r.reached_kernel and r.exit is ExitReason.KERNEL
    assert [(c.name, c.state) for c in r.checks] == [
        ("mirror", CheckState.PASSED), ("watch", CheckState.PASSED),
        ("model", CheckState.PASSED), ("handoff", CheckState.PASSED)]
    assert r.handoff is not None and r.handoff.r5 == 0


def test_reaching_the_kernel_is_not_passing():
    r = boot(scenarios_lib.get("initrd-below-big-kernel-end", "seed"))
    assert r.reached_kernel and not r.passed
    assert [c.name for c in r.failures] == ["watch", "handoff"]


def test_a_checker_turned_off_is_reported_not_attached_never_passed():
    r = boot(default_scenario(), watch=False)
    watch = next(c for c in r.checks if c.name == "watch")
    assert watch.state is CheckState.NOT_ATTACHED
    assert r.passed                # every attached checker passed


def test_a_wrong_r5_at_the_hand_off_fails_the_boot():
    b = Boot(default_scenario())
    at = b.image.function_entry("bw_enter_kernel")
    code = [int.from_bytes(b.machine.read(at + 4 * i, 4), "big") for i in range(4)]
    assert LI_R5_0 in code
    b.machine.write(at + 4 * code.index(LI_R5_0), LI_R5_1.to_bytes(4, "big"))
    r = b.run()
    assert r.reached_kernel and r.handoff is not None and r.handoff.r5 == 1
    assert not r.passed
    assert [c.name for c in r.failures] == ["handoff"]
    assert "r5 at the hand-off is 0x1" in r.failures[0].detail


def test_a_fatal_at_another_step_than_predicted_is_a_model_mismatch():
    # Both steps speak of the initrd; only the code tells them apart.
    facts = BootFacts("fatal", "FATAL: no room for the attached initrd (0x1000 bytes)",
                      FATAL_CODES[FATAL_INITRD_ALLOC], None, None)
    r = boot(scenarios_lib.get("no-rma"))
    p = r.prediction
    assert p is not None and p.fatal == "no-rma" and r.matches_model
    moved = dataclasses.replace(p, fatal=FATAL_INITRD_MOVE, fatal_detail="x")
    c = compare(moved, facts)
    assert not c.matches and "code 7" in c.mismatches[0] and "fatal code 8" in c.mismatches[0]
    assert compare(dataclasses.replace(p, fatal=FATAL_INITRD_ALLOC), facts).matches


def test_a_wrapper_stopping_with_the_wrong_fatal_code_fails_the_model_check():
    b = Boot(scenarios_lib.get("no-rma"))
    stop = b.image.function_entry("bw_stop")
    b.machine.on_code(stop, lambda pc: b.machine.set_reg("r4", FATAL_CODES["heap"]))
    r = b.run()
    assert r.exit is ExitReason.FATAL and r.fatal_code == FATAL_CODES["heap"]
    assert r.matches_model is False
    assert "predicted fatal (no-rma" in r.comparison.mismatches[0]


def test_an_empty_memory_block_at_0_is_not_the_real_mode_area():
    tree = MemoryTree(memory=((0, 0), (0, 256 * MiB))).build()
    r = boot(Scenario(name="empty-block-first", dtb=tree))
    assert r.passed, (r.message, r.notes, [str(c) for c in r.checks])
    assert r.layout.rma_end == 256 * MiB


def test_an_error_of_any_layer_reaches_the_cli_as_one_line(monkeypatch, capsys):
    def broken(*a, **k):
        raise DwarfLayoutError("wrapper.elf", "ranges", "no DWARF")
    monkeypatch.setattr("emulator.cli.boot", broken)
    assert main(["boot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrapper.elf: symbol 'ranges': no DWARF" in err
