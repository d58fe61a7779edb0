"""The mutation harness (emulator/harness/mutants.py, scripts/mutants) and
its lists (tests/mutants/*.toml): every list loads, every snippet is in
its file exactly once (a source changed under a mutant is named here,
not found stale at the next campaign), every firmware source and every
checker has mutants, and one small campaign shows each outcome: killed
(with the first failing test), survived, unchanged and did not build,
each in a scratch copy that leaves the project's files alone.

The campaign itself (make mutants) is not part of the suite: it runs the
suite once per mutant.
"""

from __future__ import annotations

import re

import pytest

from emulator.harness import mutants
from emulator.harness.mutants import Mutant, Status

ROOT = mutants.ROOT
LISTS = sorted(mutants.MUTANTS_DIR.glob("*.toml"))
CHECKERS = ["emulator/checkers/watch.py", "emulator/checkers/mirror/engine.py",
            "emulator/checkers/mirror/checker.py", "emulator/checkers/model.py",
            "emulator/checkers/handoff.py", "emulator/checkers/kernel_image.py",
            "emulator/checkers/rangetable.py"]


@pytest.fixture(scope="module")
def every() -> list[Mutant]:
    return mutants.load(LISTS)


def wrapper_sources() -> list[str]:
    """firmware/Makefile's WRAPPER_SRCS."""
    text = (ROOT / "firmware" / "Makefile").read_text()
    m = re.search(r"^WRAPPER_SRCS\s*:=\s*((?:.*\\\n)*.*)$", text, re.M)
    assert m
    return [f"firmware/{s}" for s in m.group(1).replace("\\\n", " ").split()]


def test_at_least_sixty_mutants_with_unique_names_and_descriptions(every):
    assert len(every) >= 60
    assert len({m.name for m in every}) == len(every)
    assert all(len(m.description) > 20 and "\n" not in m.description for m in every)


def test_every_snippet_is_in_its_file_exactly_once(every):
    assert [(o.mutant.name, o.detail) for o in mutants.stale(every)] == []


def test_every_firmware_source_and_every_checker_has_mutants(every):
    files = {m.file for m in every}
    assert set(wrapper_sources()) - files == set()
    assert set(CHECKERS) - files == set()


def test_every_mutants_tests_exist(every):
    for m in every:
        for t in m.tests:
            assert (ROOT / t.split("::")[0]).exists(), (m.name, t)


def test_a_list_naming_no_tests_is_refused(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('[[mutant]]\nname = "a"\nfile = "nowhere.c"\noriginal = "x"\n'
                 'replacement = "y"\ndescription = "a mutant without tests"\n')
    with pytest.raises(mutants.MutantError, match="no tests"):
        mutants.load([f])


FAST = "tests/test_model_boundaries.py::test_a_predicted_hand_off_never_matches_a_stop"


def test_a_small_campaign_gives_each_outcome_in_copies_of_its_own(tmp_path):
    model = "emulator/checkers/model.py"
    small = [
        Mutant("kill", model, "        if r.handoff is None:\n",
               "        if r.handoff is None and r.reason != 'fatal':\n",
               "a predicted hand-off accepts a fatal stop", (FAST,)),
        Mutant("survive", model, "return \"none\" if v is None else f\"0x{v:x}\"",
               "return \"none\" if v is None else hex(v)", "hex text", (FAST,)),
        Mutant("same-code", model, "def _hx(v: int | None) -> str:",
               "def _hx(v: int | None) -> str:  # the same", "a comment", (FAST,)),
        Mutant("no-build", "firmware/memranges.c", "ranges.rma_end = rma_end;",
               "ranges.rma_end = rma_end", "a missing semicolon", (FAST,)),
        Mutant("gone", model, "no such text", "x", "a stale snippet", (FAST,)),
    ]
    before = (ROOT / model).read_text(), (ROOT / "firmware/memranges.c").read_text()
    c = mutants.campaign(small, jobs=2, check_baseline=False, keep=tmp_path)
    got = {o.mutant.name: o for o in c.outcomes}
    assert got["kill"].status is Status.KILLED and got["kill"].detail == FAST
    assert got["survive"].status is Status.SURVIVED
    assert got["same-code"].status is Status.UNCHANGED
    assert got["no-build"].status is Status.NO_BUILD and "error" in got["no-build"].detail
    assert got["gone"].status is Status.STALE
    assert c.killed == 1 and c.score == pytest.approx(20.0)
    assert "1 of 5 mutants killed (20.0%)" in mutants.report(c)
    assert ((ROOT / model).read_text(), (ROOT / "firmware/memranges.c").read_text()) == before
    assert list(tmp_path.iterdir()) == []          # the scratch copies are gone


def test_script_shows_the_list(every):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "mutants"), "--show",
                           "--only", "watch-"], capture_output=True, text=True, check=True)
    assert proc.stdout.count("emulator/checkers/watch.py") == \
        sum(m.name.startswith("watch-") for m in every)
