"""The library API as a caller holds it: what a BootResult keeps after
the boot, a Boot used twice, the arguments boot() and Boot() take, and
observers named like one another."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator import Boot, BwemuError, ExitReason, MemoryTree, boot, default_scenario
from emulator.guest.devicetree import DeviceTree
from emulator.guest.observer import CheckState, CheckStatus, Guest, RunOutcome
from emulator.harness import scenarios_lib
from emulator.harness.runner import BootRunner
from emulator.harness.scenario import MiB, ScenarioError


def test_a_result_does_not_keep_its_machine_alive():
    """A RangeOp of the mirror's timeline held a bound method of the
    RangeMirror, and through it the Unicorn instance with all its RAM:
    ten results kept in a list took 13 GB of address space."""
    b = Boot(scenarios_lib.get("initrd-below-big-kernel-end", "seed"))
    uc = weakref.ref(b.machine.uc)
    result = b.run()
    del b
    gc.collect()
    assert uc() is None
    # ... and what the timeline needs is still there without it
    timeline = result.ranges
    assert timeline and timeline[0].where is not None
    assert "kexec.c" in timeline[0].where, timeline[0].where


# --- MemoryTree: every field checked when it is made ------------------------------------

TREE_FIELDS = [
    (dict(memory="512M"), "memory: must be a tuple of (base, size) pairs"),
    (dict(memory=None), "memory: must be a tuple of (base, size) pairs"),
    (dict(memory=(0, 256 * MiB)), "memory: must be a tuple of (base, size) pairs"),
    (dict(memory=((0, -1),)), "memory: must be a tuple of (base, size) pairs of u64"),
    (dict(memory=((0, 1 << 70),)), "memory: must be a tuple of (base, size) pairs of u64"),
    (dict(memory=((0x1000, (1 << 64) - 0x800),)),
     "memory: must be a tuple of (base, size) pairs of u64 values, each ending by 2^64"),
    (dict(size_cells=1, memory=((0, 1 << 33),)),
     "memory: block 0's size 0x200000000 does not fit #size-cells = 1"),
    (dict(address_cells=1, memory=((0, 1 << 20), (1 << 32, 1 << 20))),
     "memory: block 1's base 0x100000000 does not fit #address-cells = 1"),
    (dict(console="serial"), "console: must be one of hvc, uart, none"),
    (dict(console=None), "console: must be one of hvc, uart, none"),
    (dict(reserves=((-5, 10),)), "reserves: must be a tuple of (address, size) pairs"),
    (dict(reserves=((1 << 64, 10),)), "reserves: must be a tuple of (address, size) pairs"),
    (dict(address_cells="2"), "address_cells: must be 1 or 2"),
    (dict(address_cells=3), "address_cells: must be 1 or 2"),
    (dict(size_cells=0), "size_cells: must be 1 or 2"),
    (dict(uart_base="x", console="uart"), "uart_base: must be an int or None"),
    (dict(uart_base=1 << 32, console="uart", address_cells=1),
     "uart_base: 0x100000000 does not fit #address-cells = 1"),
    (dict(console="uart", address_cells=1, size_cells=2, memory=((0, 0x1_0000_0000),)),
     "memory: RAM covers 0xfe004500, so the UART would be at 0xfe0004500"),
    (dict(bootargs=None), "bootargs: must be a string"),
    (dict(bootargs="a\0b"), "bootargs: must hold no NUL character"),
    (dict(bootargs="\udcff"), "bootargs: must be text UTF-8 can encode"),
    (dict(stdout_property=None), "stdout_property: must be a property name"),
    (dict(stdout_property=""), "stdout_property: must be a property name"),
]


@pytest.mark.parametrize("change, words", TREE_FIELDS,
                         ids=[f"{k}={v!r}"[:40] for c, _ in TREE_FIELDS
                              for k, v in list(c.items())[:1]])
def test_a_memory_tree_field_is_checked_when_it_is_made(change, words):
    with pytest.raises(ScenarioError) as e:
        MemoryTree(**change)
    text = str(e.value)
    assert text.startswith("MemoryTree field " + words), text
    assert "\n" not in text


@pytest.mark.parametrize("field", ["bootargs", "stdout_property"])
def test_a_memory_tree_string_of_none_is_an_error_not_a_crash(field):
    """libfdt took None for a string and the interpreter died (SIGSEGV)."""
    code = ("from emulator import MemoryTree, BwemuError\n"
            "try:\n"
            f"    MemoryTree({field}=None).build()\n"
            "except BwemuError as e:\n"
            "    print(e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, (run.returncode, run.stderr[-500:])
    assert run.stdout.startswith(f"MemoryTree field {field}: "), run.stdout


@pytest.mark.parametrize("tree, blocks", [
    (MemoryTree(memory=((0, (1 << 64) - 1),)), [(0, (1 << 64) - 1)]),
    (MemoryTree(memory=((1 << 40, (1 << 64) - (1 << 40)),)), [(1 << 40, (1 << 64) - (1 << 40))]),
    (MemoryTree(address_cells=1, size_cells=1, memory=((0x1000, 0xFFFF_F000),)),
     [(0x1000, 0xFFFF_F000)]),
    (MemoryTree(memory=((0, 0), (0, 256 * MiB))), [(0, 256 * MiB)]),
    (MemoryTree(memory=()), []),
])
def test_a_memory_tree_at_the_limits_holds_its_blocks_whole(tree, blocks):
    assert DeviceTree(tree.build(), "generated").memory() == blocks


# --- observers: one name each -------------------------------------------------------------


@dataclass
class Verdict:
    """Findings that say what they are told."""
    name: str
    state: CheckState

    @property
    def status(self) -> CheckStatus:
        return CheckStatus(self.name, self.state, "as told")

    def to_json(self) -> dict[str, Any]:
        return {}


class Named:
    """An observer that judges nothing, under any name."""

    def __init__(self, name: str, state: CheckState = CheckState.PASSED) -> None:
        self.name, self.state = name, state

    def attach(self, guest: Guest) -> None:
        pass

    def finish(self, guest: Guest, run: RunOutcome) -> Verdict:
        return Verdict(self.name, self.state)


def test_an_observer_named_like_a_default_checker_cannot_replace_its_verdict():
    """The seed's hole fails the watch and the hand-off contract; two
    observers named "watch" and "handoff" put their passes in those
    checkers' places and the boot was reported as passed."""
    seed_hole = scenarios_lib.get("initrd-below-big-kernel-end", "seed")
    with pytest.raises(BwemuError) as e:
        boot(seed_hole, observers=[Named("watch"), Named("handoff")])
    text = str(e.value)
    assert "'watch' is the name of a default observer" in text and "watch=False" in text
    assert "\n" not in text


@pytest.mark.parametrize("name", ["mirror", "model", "handoff", "ring", "debug"])
def test_no_default_observers_name_can_be_taken(name):
    with pytest.raises(BwemuError, match=f"'{name}' is the name of a default observer"):
        Boot(default_scenario(), observers=[Named(name)])


def test_a_checker_turned_off_leaves_its_name_free():
    r = boot(default_scenario(), watch=False, observers=[Named("watch", CheckState.FAILED)])
    assert [c.state for c in r.checks if c.name == "watch"] == [CheckState.FAILED]
    assert not r.passed


def test_two_observers_of_one_name_are_refused():
    """The second's findings replaced the first's: a failing one could be
    hidden behind a passing one."""
    with pytest.raises(BwemuError, match="two observers are named 'mine'"):
        Boot(default_scenario(), observers=[Named("mine", CheckState.FAILED), Named("mine")])
    with pytest.raises(BwemuError, match="two observers are named 'mine'"):
        BootRunner(default_scenario(), observers=[Named("mine"), Named("mine")])


# --- a Boot runs once -----------------------------------------------------------------------


def test_a_boot_run_twice_says_so_instead_of_blaming_the_guest():
    """The second run() started over RAM the first had changed and
    reported "fatal FATAL: device tree at 0x...: bad magic"."""
    b = Boot(default_scenario())
    assert b.run().passed
    with pytest.raises(BwemuError) as e:
        b.run()
    text = str(e.value)
    assert "has run already" in text and "\n" not in text


# --- the arguments of boot() and Boot() ---------------------------------------------------

ARGUMENTS: list[tuple[Callable[[], object], str]] = [
    (lambda: boot(None), "boot argument scenario: must be a Scenario"),     # type: ignore[arg-type]
    (lambda: boot("default"), "boot argument scenario: must be a Scenario"),  # type: ignore[arg-type]
    (lambda: boot(default_scenario(), "x"),                                  # type: ignore[arg-type]
     "boot argument firmware: must be a FirmwareBuild or None, not 'x'"),
    (lambda: boot(default_scenario(), observers=[None]),                     # type: ignore[list-item]
     "boot argument observers[0]: must be an observer"),
    (lambda: boot(default_scenario(), observers="x"),                        # type: ignore[arg-type]
     "boot argument observers: must be a list of observers, not 'x'"),
    (lambda: Boot(None),                                                     # type: ignore[arg-type]
     "boot argument scenario: must be a Scenario"),
    (lambda: BootRunner(default_scenario(), observers=[object()]),           # type: ignore[list-item]
     "BootRunner argument observers[0]: must be an observer"),
]


@pytest.mark.parametrize("call, words", ARGUMENTS, ids=[w for _, w in ARGUMENTS])
def test_an_argument_of_the_wrong_kind_is_named(call, words):
    with pytest.raises(BwemuError) as e:
        call()
    text = str(e.value)
    assert text.startswith(words), text
    assert "\n" not in text


def test_an_observer_whose_finish_returns_no_findings_is_named():
    class Forgetful(Named):
        def finish(self, guest: Guest, run: RunOutcome) -> Verdict:
            return None     # type: ignore[return-value]
    with pytest.raises(BwemuError, match="observer 'forgetful': finish.. returned None"):
        boot(default_scenario(), observers=[Forgetful("forgetful")])


# --- a scenario's fields for a user's image ------------------------------------------------


@pytest.mark.parametrize("change, name", [
    (dict(kernel=Path("/nonexistent/vmlinux")), "kernel"),
    (dict(entry_offset=0x100), "entry_offset"),
])
def test_what_describes_a_users_image_is_refused_without_one(change, name):
    """Scenario(kernel=...) without image booted bwemu's own firmware and
    passed, the kernel ignored (the CLI refuses --kernel without --image)."""
    with pytest.raises(ScenarioError) as e:
        default_scenario().replace(**change)
    text = str(e.value)
    assert text.startswith(f"Scenario field {name} describes an image of your own: "
                           f"give image too"), text


# --- kernel_bss past what the test kernel links with --------------------------------------


def test_a_kernel_bss_the_test_kernel_cannot_link_with_is_named_in_one_line():
    """kernel_bss = 1 << 40 passed the field check and then failed with the
    linker's multi-line 'relocation truncated to fit'."""
    for bss in (1 << 40, 0x7FFF_8000):
        with pytest.raises(ScenarioError) as e:
            boot(default_scenario().replace(kernel_bss=bss))
        text = str(e.value)
        assert text.startswith(f"Scenario field kernel_bss (--kernel-bss): 0x{bss:x} bytes "
                               f"do not link"), text
        assert "\n" not in text


def test_the_largest_kernel_bss_the_message_promises_links():
    r = boot(default_scenario().replace(kernel_bss=0x7FFF_0000))
    # 256 MiB of RAM cannot hold such a kernel: the wrapper's own answer
    assert r.exit is ExitReason.FATAL and r.matches_model, (r.exit, r.message)
