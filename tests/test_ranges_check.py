"""`bwemu ranges-check`: finds every deliberate fault and cuts it down;
passes the real firmware; refuses an unknown fault by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emulator.harness.firmware import FirmwareBuild, FirmwareError, known_faults
from emulator.harness.ranges_check import check


@pytest.mark.parametrize("fault", known_faults("memranges.c"))
def test_each_fault_is_found_and_cut_down(fault):
    res = check(FirmwareBuild(fault=fault), examples=300, seed=1)
    assert not res.ok, f"{fault} not found in {res.examples} sequences"
    # Cut down: the divergence needs every operation left (a full table
    # needs 33 adds, the others only a few).
    assert len(res.failing) <= (40 if "FULL" in fault else 6)
    assert res.failing[0].name == "init"
    assert "divergence at operation" in res.report


def test_the_real_firmware_passes():
    res = check(FirmwareBuild(), examples=300, seed=7)
    assert res.ok and res.examples == 300 and res.operations > 300 * 30


def test_cli_exit_status_and_report():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "emulator.cli", "ranges-check",
                               "--seed", "3", *args], capture_output=True, text=True,
                              timeout=300)
    good = run("--examples", "50")
    assert good.returncode == 0 and "the C matches the model" in good.stdout
    bad = run("--fault", "NO_MERGE_ADJACENT")
    assert bad.returncode == 1
    assert "smallest failing sequence" in bad.stdout and "bytes differ" in bad.stdout
    unknown = run("--fault", "BOGUS")
    assert unknown.returncode == 2 and "unknown fault 'BOGUS'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_unknown_fault_is_refused_by_the_library_too():
    with pytest.raises(FirmwareError, match="unknown fault"):
        FirmwareBuild(fault="NOPE")


@pytest.mark.parametrize("args, words", [
    (["--length", str(2**63 - 1)], "--length: 9223372036854775807 is more than 100,000"),
    (["--examples", "0"], "--examples: 0 is less than 1"),
])
def test_a_length_or_count_past_its_bound_is_refused_before_running(args, words):
    """An unbounded --length ran until killed."""
    p = subprocess.run([sys.executable, "-m", "emulator.cli", "ranges-check", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr
