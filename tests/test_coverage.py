"""`bwemu coverage`: block counts that equal per-instruction counts, lines
from DWARF with whole paths, an lcov tracefile genhtml renders.

The block recorder is held to the per-instruction reference (a code hook
on every instruction of the wrapper, in a separate boot of the same
scenario) instruction by instruction and line by line, on boots that end
every way a boot ends (the kernel, a fatal stop, the budget, an
exception, a stop at the hand-off), on ELFv2, and on a run paused every
few hundred instructions (where blocks are cut short).  Then the whole
corpus, through the CLI: the tracefile renders, the entry path ran and a
fatal path that no scenario takes did not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator import Boot, default_scenario
from emulator.coverage.lcov import LcovNameError, Tracefile, check_test_name, read_lines
from emulator.coverage.lines import line_map
from emulator.coverage.recorder import BlockRecorder, CoverageFindings, InstructionRecorder
from emulator.coverage.run import Target, run, targets
from emulator.guest.elf import ElfImage
from emulator.guest.machine import Stop
from emulator.guest.observer import Guest, RunOutcome
from emulator.harness import scenarios_lib
from emulator.harness.firmware import ROOT, FirmwareBuild
from emulator.harness.scenario import ScenarioError

TIMEOUT = 1200


class Pauser:
    """Drives the run in slices of `every` instructions (Guest.drive): a
    run paused and resumed mid-block, as a sliced or debugged run is."""

    name = "pauser"

    def __init__(self, every: int) -> None:
        self.every = every
        self.pauses = 0

    def attach(self, guest: Guest) -> None:
        self.machine = guest.machine
        guest.drive(self._drive)

    def _drive(self, pc: int, budget: int) -> Stop:
        done = 0
        while True:
            n = min(self.every, budget - done)
            stop = self.machine.run(pc, n)
            if stop.reason != "budget":
                return stop
            done += n
            if done >= budget:
                return stop
            self.pauses += 1
            pc = stop.pc

    def finish(self, guest: Guest, run: RunOutcome) -> Any:
        return CoverageFindings(None, 0)      # any findings object will do (not a check)


def boot_with(scenario: Any, **kw: Any) -> Any:
    return lambda rec: Boot(scenario, observers=[rec], **kw)


def illegal_instruction(rec: Any) -> Boot:
    b = Boot(default_scenario(), observers=[rec])
    b.machine.write(b.image.local_entry("kexec_init") + 12, b"\0\0\0\0")
    return b


def stopped_at_handoff(rec: Any) -> Boot:
    b = Boot(default_scenario(), observers=[rec])
    b.stop_at_handoff = True
    return b


def paused(rec: Any) -> Boot:
    return Boot(default_scenario(), observers=[rec, Pauser(997)])


CASES = {
    "kernel": (boot_with(default_scenario()), "kernel"),
    "fatal": (boot_with(scenarios_lib.get("no-rma")), "fatal"),
    "budget": (boot_with(default_scenario().replace(budget=333_333)), "budget"),
    "exception": (illegal_instruction, "exception"),
    "handoff": (stopped_at_handoff, "handoff"),
    "elfv2": (lambda rec: Boot(default_scenario(), FirmwareBuild(abi="elfv2"),
                               observers=[rec]), "kernel"),
    "paused every 997": (paused, "kernel"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_block_counts_equal_per_instruction_counts(case):
    make, end = CASES[case]
    block_rec, ref_rec = BlockRecorder(), InstructionRecorder()
    r = make(block_rec).run()
    ref = make(ref_rec).run()
    assert r.exit == end and ref.exit == end, r.message
    block, exact = r.findings["coverage"], ref.findings["coverage"]
    assert block.counts and block.instructions > 0
    wrong = {hex(a): (block.counts.get(a), exact.counts.get(a))
             for a in set(block.counts) | set(exact.counts)
             if block.counts.get(a) != exact.counts.get(a)}
    assert not wrong, f"{len(wrong)} instructions differ: {dict(list(wrong.items())[:8])}"
    # And so every line's count (the largest among its instructions).
    lines = line_map(block.elf)
    a, b = Tracefile(), Tracefile()
    a.add(block, lines)
    b.add(exact, lines)
    assert a.files == b.files
    assert block.callbacks < exact.callbacks / 2     # the point of counting blocks


def test_the_pauser_really_cuts_blocks():
    rec = BlockRecorder()
    b = paused(rec)
    b.run()
    assert rec.cuts, "no block was cut short: the pause case tests nothing"


# --- line map --------------------------------------------------------------------------------


def test_lines_have_whole_paths_and_functions_their_entries():
    for abi in ("elfv1", "elfv2"):
        elf = FirmwareBuild(abi=abi).ensure_built().wrapper_elf
        lines = line_map(elf)
        files = {f for f, _ in lines.lines.values()}
        assert all(os.path.isabs(f) for f in files)
        assert {"crt0.S", "memranges.c", "kexec.c", "string.c"} <= \
            {os.path.basename(f) for f in files}
        assert any(f.endswith(os.path.join("lib", "string.c")) for f in files)
        image = ElfImage(elf)
        try:
            add = [f for f in lines.functions if f.name == "ranges_add"]
            assert len(add) == 1 and add[0].entry == image.local_entry("ranges_add")
            assert add[0].file.endswith("memranges.c")
        finally:
            image.close()


def test_a_line_counts_its_busiest_instruction_and_boots_add_up():
    class Map:
        lines = {0: ("/src/a.c", 3), 4: ("/src/a.c", 3), 8: ("/src/a.c", 4),
                 12: ("/src/a.c", 5)}
        functions: list = []
    run = CoverageFindings(None, 0, {0: 1, 4: 10, 8: 2})
    tf = Tracefile()
    tf.add(run, Map())          # type: ignore[arg-type]
    tf.add(run, Map())          # type: ignore[arg-type]
    assert tf.files["/src/a.c"].lines == {3: 20, 4: 4, 5: 0}
    text = tf.text()
    assert text.splitlines() == ["TN:bwemu", "SF:/src/a.c", "FNF:0", "FNH:0", "DA:3,20",
                                 "DA:4,4", "DA:5,0", "LF:3", "LH:2", "end_of_record"]


def test_an_unknown_scenario_is_refused():
    with pytest.raises(ScenarioError, match="neither a scenario file"):
        targets(["no-such-scenario"])


def test_run_adds_boots_in_order():
    result = run([Target("default", default_scenario()),
                  Target("no-rma", scenarios_lib.get("no-rma"))])
    assert [b.exit for b in result.boots] == ["kernel", "fatal"]
    assert result.tracefile.boots == 2 and not result.errors


# --- the corpus through the CLI ----------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_tracefile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coverage") / "wrapper.info"
    p = subprocess.run([sys.executable, "-m", "emulator.cli", "coverage", "--jobs", "2",
                        "-o", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "total" in p.stdout and out.exists()
    return out


def source_line(path: str, marker: str) -> int:
    lines = Path(path).read_text().splitlines()
    hits = [i + 1 for i, text in enumerate(lines) if marker in text]
    assert len(hits) == 1, (path, marker, hits)
    return hits[0]


def source(tracefile: dict[str, dict[int, int]], name: str) -> str:
    """The tracefile's name for firmware/NAME of this tree (DWARF names the
    sources a build was compiled from, with the compilation directory)."""
    path = str(ROOT / "firmware" / name)
    assert path in tracefile, sorted(tracefile)
    return path


@pytest.mark.skipif(shutil.which("genhtml") is None, reason="lcov is not installed "
                    "(scripts/setup-toolchain installs it)")
def test_genhtml_renders_the_corpus_tracefile(corpus_tracefile, tmp_path):
    p = subprocess.run(["genhtml", "-o", str(tmp_path / "html"), str(corpus_tracefile)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "WARNING" not in p.stdout + p.stderr
    assert (tmp_path / "html" / "index.html").exists()


def test_the_corpus_runs_the_entry_path_and_not_an_untaken_fatal(corpus_tracefile):
    tf = read_lines(corpus_tracefile)
    crt0 = source(tf, "crt0.S")
    entry = source_line(crt0, "mfmsr")            # the first instruction of _start
    assert tf[crt0][entry] > 0
    main = source(tf, "main.c")
    never = source_line(main, "fatal(BW_FATAL_NO_KERNEL")    # every image carries a kernel
    assert tf[main][never] == 0
    # Every line with instructions is there, run or not.
    assert sum(1 for n in tf[main].values() if n == 0) > 0


# --- pytest --bwemu-cov --------------------------------------------------------------------------

FILES = ["scenarios/default.toml", "scenarios/no-rma.toml", "scenarios/budget-runs-out.toml",
         "scenarios/cells-1-1.toml"]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_pytest_bwemu_cov_writes_what_bwemu_coverage_writes(tmp_path, workers):
    out = tmp_path / "pytest.info"
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        *workers, "--bwemu-cov", str(out), *FILES], cwd=ROOT,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not list(tmp_path.glob("pytest.info.*")), "a worker's part was left behind"
    reference = run(targets([str(ROOT / f) for f in FILES])).tracefile
    assert Tracefile.read(out).files == reference.files
    # and says so (it was silent about the file it wrote)
    assert (f"bwemu: line coverage written to {out}: {reference.lines_hit} of "
            f"{reference.lines_found} lines run") in p.stdout


def test_pytest_bwemu_cov_refuses_an_unwritable_file_before_booting(tmp_path):
    """It booted every scenario, then raised FileNotFoundError at the end."""
    target = tmp_path / "no-such-folder" / "x.info"
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--bwemu-cov", str(target), *FILES], cwd=ROOT,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == pytest.ExitCode.USAGE_ERROR, p.stdout + p.stderr
    assert f"--bwemu-cov {target}: there is no directory {target.parent}" in p.stderr
    assert "Traceback" not in p.stdout + p.stderr and "passed" not in p.stdout


def test_missed_lists_the_lines_never_run(tmp_path):
    out = tmp_path / "default.info"
    p = subprocess.run([sys.executable, "-m", "emulator.cli", "coverage", "default",
                        "--missed", "-o", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    listed = p.stdout.split("lines never run", 1)[1]
    main = str(ROOT / "firmware" / "main.c")
    never = source_line(main, "fatal(BW_FATAL_NO_KERNEL")
    zero = {line for line, n in read_lines(out)[main].items() if n == 0}
    spans = [where.split("-") for where in
             (line.split()[0].split(":")[1] for line in listed.splitlines()
              if line.strip().startswith("firmware/main.c:"))]
    assert never in zero
    assert any(int(s[0]) <= never <= int(s[-1]) for s in spans), listed
    assert "firmware/crt0.S:" in listed


# --- what the command refuses, and when -------------------------------------------------------


def refused_before_booting(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Runs `bwemu coverage argv` in this process with booting forbidden:
    it must stop with exit 2 and one line naming the problem."""
    from emulator import cli
    from emulator.coverage import run as coverage_run

    def no_boots(*a: Any, **kw: Any) -> Any:
        raise AssertionError("booted before refusing the input")
    monkeypatch.setattr(coverage_run, "run", no_boots)
    assert cli.main(["coverage", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("bwemu: error: "), err
    return err


def test_an_output_that_cannot_be_written_is_refused_before_booting(monkeypatch, capsys,
                                                                     tmp_path):
    missing = tmp_path / "no-such-dir" / "x.info"
    err = refused_before_booting(monkeypatch, capsys, "default", "-o", str(missing))
    assert f"-o {missing}: " in err and "no directory" in err
    err = refused_before_booting(monkeypatch, capsys, "default", "-o", str(tmp_path))
    assert f"-o {tmp_path}: " in err and "directory" in err
    # The check leaves nothing behind, and an existing file as it was (the
    # unknown scenario stops the command after it).
    kept = tmp_path / "kept.info"
    kept.write_text("TN:old\n")
    monkeypatch.chdir(tmp_path)
    err = refused_before_booting(monkeypatch, capsys, "no-such-scenario",
                                 "-o", "new.info")
    assert not (tmp_path / "new.info").exists()
    err = refused_before_booting(monkeypatch, capsys, "no-such-scenario",
                                 "-o", str(kept))
    assert kept.read_text() == "TN:old\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_write_that_fails_at_the_end_is_one_line(monkeypatch, capsys):
    from emulator import cli
    from emulator.coverage import run as coverage_run
    from emulator.coverage.run import CoverageRun
    monkeypatch.setattr(coverage_run, "run", lambda *a, **kw: CoverageRun(Tracefile()))
    assert cli.main(["coverage", "default", "-o", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert err == "bwemu: error: -o /dev/full: cannot write it: No space left on device\n"


def test_a_directory_without_scenarios_is_refused(monkeypatch, capsys, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("not a scenario\n")
    err = refused_before_booting(monkeypatch, capsys, str(tmp_path), "-o",
                                 str(tmp_path / "x.info"))
    assert f"{tmp_path}: no scenario files (*.toml)" in err
    assert not (tmp_path / "x.info").exists()
    # A directory that has one is taken.
    (tmp_path / "sub" / "default.toml").write_text(
        (ROOT / "scenarios" / "default.toml").read_text())
    assert [t.name for t in targets([str(tmp_path)])] == ["default"]


@pytest.mark.parametrize("name", ["a\nb", "a,b", "with space", "tn-1", "é"])
def test_a_test_name_lcov_cannot_hold_is_refused(monkeypatch, capsys, tmp_path, name):
    err = refused_before_booting(monkeypatch, capsys, "default", "--test-name", name,
                                 "-o", str(tmp_path / "x.info"))
    assert f"--test-name {name!r}: lcov takes only letters, digits and '_'" in err
    with pytest.raises(LcovNameError):
        Tracefile().text(name)


@pytest.mark.parametrize("name", ["bwemu", "Run_2", ""])
def test_a_test_name_lcov_holds_is_written(name):
    assert check_test_name(name) == name
    assert Tracefile().text(name).splitlines()[0] == f"TN:{name}"
