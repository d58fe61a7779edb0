"""A scenario file whose boot some checker did not judge: Linux's zImage
(a foreign image: no range table, so neither the mirror nor the model is
attached).  `bwemu run` (table, summary, --json), `bwemu record` and the
pytest plugin name those checkers, with why, and never present the file
as checked against a reference prediction nobody made; a file of bwemu's
own wrapper beside it is judged by all four."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.harness.corpus import boot_file, record
from emulator.harness.expectation import Verdict, check
from emulator.harness.firmware import ROOT, FirmwareBuild
from emulator.harness.scenario_file import load

ZIMAGE_SCRIPT = ROOT / "scripts" / "build-linux-zimage"
CORPUS = ROOT / "scenarios"
CHECKERS = {"mirror", "watch", "model", "handoff"}


@pytest.fixture(scope="module")
def foreign_text() -> str:
    """A scenario file's text booting Linux's zImage.epapr around the test
    kernel (built as tests/test_foreign.py builds it)."""
    kernel = FirmwareBuild().ensure_built().kernel_elf
    out = ROOT / "build" / "linux-zimage" / "testkernel"
    proc = subprocess.run([str(ZIMAGE_SCRIPT), str(kernel), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return (f'description = "Linux zImage.epapr around the test kernel"\n'
            f'[firmware]\nimage = {json.dumps(str(out / "zImage.epapr"))}\n'
            f'entry = "epapr"\nkernel = {json.dumps(str(kernel))}\n')


@pytest.fixture
def suite(tmp_path: Path, foreign_text: str) -> Path:
    d = tmp_path / "suite"
    d.mkdir()
    (d / "foreign.toml").write_text(foreign_text)
    shutil.copy(CORPUS / "kernel-fits-below-wrapper.toml", d / "own.toml")
    return d


def test_the_outcome_names_the_checkers_that_did_not_judge(suite):
    sf = load(suite / "foreign.toml")
    outcome = check(boot_file(sf), sf.expect)
    assert outcome.verdict is Verdict.PASSED
    assert [c.name for c in outcome.not_checked] == ["mirror", "model"]
    head, *rest = outcome.text().splitlines()
    assert "reference prediction (no [expect])" not in head
    assert head.endswith("against no [expect] and no reference prediction: model not attached")
    at = rest.index("not checked:")
    assert rest[at + 1].startswith("  mirror: not attached (") and "'ranges'" in rest[at + 1]
    assert outcome.summary() == "as expected (mirror, model not attached)"
    assert dict(outcome.properties())["not checked"].startswith("mirror: not attached (")

    own = load(suite / "own.toml")
    outcome = check(boot_file(own), own.expect)
    assert outcome.not_checked == [] and "not checked" not in dict(outcome.properties())
    assert outcome.summary() == "as expected"


def test_bwemu_run_names_the_checkers_not_attached(suite, capsys):
    assert main(["run", str(suite)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:3]}
    assert rows["foreign"].endswith("s  (mirror, model not attached)")
    assert rows["own"].endswith("s")
    assert "not checked (never counted as passed):" in lines
    assert any(line.startswith("  foreign: mirror: not attached (") for line in lines)
    assert any(line.startswith("  foreign: model: not attached (") for line in lines)
    assert not any(line.startswith("  own: ") for line in lines)
    assert lines[-1].startswith("2 scenarios: 2 passed in ")
    assert lines[-1].endswith("; 1 not checked by every checker")


def test_bwemu_run_json_has_each_scenarios_checks(suite, capsys):
    assert main(["run", str(suite), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_name = {s["name"]: s for s in out["scenarios"]}
    foreign, own = by_name["foreign"], by_name["own"]
    assert set(foreign["checks"]) == set(own["checks"]) == CHECKERS
    assert {n: c["state"] for n, c in foreign["checks"].items()} == {
        "mirror": "not attached", "watch": "passed", "model": "not attached",
        "handoff": "passed"}
    assert {c["state"] for c in own["checks"].values()} == {"passed"}
    assert [s.split(":")[0] for s in foreign["not_checked"]] == ["mirror", "model"]
    assert own["not_checked"] == [] and out["not_fully_checked"] == 1
    assert foreign["summary"] == "as expected (mirror, model not attached)"


def test_record_notes_the_checkers_not_attached(suite, capsys):
    rec = record(suite / "foreign.toml")
    assert rec.written
    assert [n.split(" (")[0] for n in rec.notes] == ["not checked: mirror: not attached",
                                                     "not checked: model: not attached"]
    assert main(["record", "--check", str(suite / "foreign.toml")]) == 0
    out = capsys.readouterr().out
    assert "[expect] unchanged" in out and "note: not checked: mirror: not attached (" in out


def test_the_pytest_plugin_lists_the_checkers_that_did_not_judge(tmp_path, foreign_text):
    d = tmp_path / "scenarios"
    d.mkdir()
    (d / "foreign.toml").write_text(foreign_text)
    shutil.copy(CORPUS / "kernel-fits-below-wrapper.toml", d / "own.toml")
    xml = tmp_path / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios", "-n", "2",
                           "-p", "no:cacheprovider", f"--junitxml={xml}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    section = proc.stdout.split("checkers that did not judge the boot")[1]
    listed = [line for line in section.splitlines() if "::" in line]
    assert len(listed) == 1
    assert listed[0].startswith("scenarios/foreign.toml::foreign: mirror: not attached (")
    assert "; model: not attached (" in listed[0]
    cases = {tc.get("name"): {p.get("name"): p.get("value") for p in tc.iter("property")}
             for tc in ET.parse(xml).getroot().iter("testcase")}
    assert cases["foreign"]["not checked"] == listed[0].split("::foreign: ")[1]
    assert "not checked" not in cases["own"]
