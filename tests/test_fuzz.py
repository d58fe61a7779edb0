"""bwemu fuzz: cases made from (seed, index) alone, every outcome one of
four, findings saved with the command that replays them, and a worker's
crash or hang reported as a finding rather than taking the campaign down."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import time

import pytest

from emulator.cli import main
from emulator.harness import fuzz
from emulator.harness.fuzz import CaseOutcome, make_case


def test_a_case_is_made_from_seed_and_index_alone():
    a, b = make_case(7, 123), make_case(7, 123)
    assert (a.kind, a.detail, a.dtb, a.initrd, a.payload_patch) == \
        (b.kind, b.detail, b.dtb, b.initrd, b.payload_patch)
    assert make_case(7, 124).dtb != a.dtb or make_case(7, 124).kind != a.kind


def test_every_mutation_kind_is_drawn():
    kinds = {make_case(3, i).kind for i in range(400)}
    assert kinds == set(fuzz.MUTATIONS)


def test_each_outcome_is_one_of_four_and_replays_the_same(tmp_path):
    res = fuzz.campaign(11, range(40), jobs=1, findings_dir=tmp_path)
    assert sum(res.outcomes.values()) == 40
    assert set(res.outcomes) <= set(fuzz.OUTCOMES)
    assert res.outcomes["fatal"] > 0 and res.outcomes["handoff"] > 0
    # Any single case replays to the same outcome.
    for i in (0, 17, 39):
        first = fuzz.run_case(11, i)
        assert fuzz.run_case(11, i).outcome == first.outcome


def test_a_finding_is_saved_with_its_replay_command(tmp_path):
    outcome = CaseOutcome(5, make_case(2, 5).kind, "finding", "for the test")
    d = fuzz.save_reproducer(tmp_path, 2, outcome)
    info = json.loads((d / "case.json").read_text())
    assert info["replay"] == "bwemu fuzz --seed 2 --only 5"
    assert (d / "tree.dtb").read_bytes() == make_case(2, 5).dtb


def crashing_runner(seed: int, index: int, policy: str) -> CaseOutcome:
    """A stand-in for run_case whose case 3 kills its worker, as a SIGSEGV
    in the interpreter would."""
    if index == 3:
        faulthandler.disable()     # the dump pytest's handler prints is noise here
        os.kill(os.getpid(), signal.SIGSEGV)
    return CaseOutcome(index, "stand-in", "handoff", "fine")


def hanging_runner(seed: int, index: int, policy: str) -> CaseOutcome:
    if index == 1:
        time.sleep(30)
    return CaseOutcome(index, "stand-in", "handoff", "fine")


def test_a_worker_killed_by_a_signal_is_a_finding_of_that_case_only():
    res = fuzz.campaign(1, range(8), jobs=2, runner=crashing_runner)
    assert res.outcomes["handoff"] == 7
    assert [(f.index, f.summary.split(":")[0]) for f in res.findings] == [(3, "crash")]


def test_a_case_with_no_outcome_in_time_is_a_hang(monkeypatch):
    monkeypatch.setattr(fuzz, "CASE_TIMEOUT", 2.0)
    res = fuzz.campaign(1, range(3), jobs=2, runner=hanging_runner)
    assert [(f.index, f.summary.split(":")[0]) for f in res.findings] == [(1, "hang")]


def test_the_cli_prints_the_table_and_exits_by_the_findings(capsys, tmp_path):
    rc = main(["fuzz", "--runs", "6", "--seed", "5", "--jobs", "1",
               "--findings", str(tmp_path)])
    out = capsys.readouterr().out
    assert "kind" in out and "6 cases of seed 5" in out
    assert rc == (1 if "finding:" in out else 0)


@pytest.mark.parametrize("args, words", [
    (["--runs", "0"], "--runs: 0 is less than 1"),
    (["--jobs", "x"], "'x' is not a whole number"),
    # past these, multiprocessing raised OverflowError
    (["--jobs", str(2**70)], "--jobs: 1180591620717411303424 is more than 256"),
    (["--start", "-1"], "--start: -1 is less than 0"),
    (["--only", "-1"], "--only: -1 is less than 0"),
    # a file where the findings folder goes: once found only at the first finding
    (["--findings", "/dev/null", "--runs", "1"], "--findings /dev/null: /dev/null is not a "
                                                "directory"),
])
def test_bad_fuzz_options_get_one_line(capsys, args, words):
    try:
        rc = main(["fuzz", *args])
    except SystemExit as e:          # argparse's own refusal
        rc = int(e.code or 0)
    err = capsys.readouterr().err
    assert rc == 2 and words in err and err.count("\n") <= 2, err


def test_a_campaign_of_three_hundred_cases_has_no_findings():
    res = fuzz.campaign(1, range(300), jobs=2)
    assert not res.findings, "\n" + res.table() + "\n" + "\n".join(
        f"case {f.index} ({f.kind}): {f.summary}" for f in res.findings)
    assert res.outcomes["handoff"] and res.outcomes["fatal"] and res.outcomes["input"]


def test_a_build_with_the_totalsize_check_removed_is_caught_by_the_campaign():
    res = fuzz.campaign(1, range(300), jobs=2, fault="NO_TOTALSIZE_CHECK")
    assert res.findings, "the campaign did not notice the missing check"
    assert {f.kind for f in res.findings} <= {"header", "truncate", "prop-length",
                                             "name-offset", "token", "strings-nul"}
