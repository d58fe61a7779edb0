"""Scenario files: the loader's one-line answers to bad files, the mapping
onto Scenario, the expectation check (a wrong expectation fails readably,
an expected failure passes only as expected), `bwemu run`, `bwemu record`
and the pytest plugin end to end (xdist, JUnit XML, a bad file)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.corpus_cli import Progress, summary_table
from emulator.guest.devicetree import DeviceTree
from emulator.harness import scenarios_lib
from emulator.harness.corpus import CaseResult, boot_file, collect, record
from emulator.harness.expectation import Verdict, check
from emulator.harness.scenario_file import ScenarioFileError, load

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "scenarios"
DATA = ROOT / "tests" / "data"
QEMU_512M = DATA / "qemu-pseries-512M.dtb"

SEED_HOLE = """\
description = "the seed's hole: initrd at 4 MiB, a kernel of 10 MiB+ beside a wrapper at 8 MiB"

[load]
wrapper = 0x800000
initrd = 0x400000

[initrd]
size = 0x18000

[kernel]
bss = "10M"

[firmware]
policy = "seed"
"""


def write(tmp_path: Path, text: str, name: str = "case.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --- twelve (and more) kinds of bad file, each one line ----------------------

D = 'description = "x"\n'
BAD_FILES = {
    "toml-syntax": (D + "[load]\nwrapper = 0x20x\n",
                    ":3: TOML syntax error: Invalid number (line 3, column "),
    "unknown-key": (D + "[load]\nintird = 0x1000000\n",
                    ": unknown key 'intird' in [load]; did you mean 'initrd'?"),
    "unknown-table": (D + "[lod]\nwrapper = 0x1000000\n",
                      ": unknown table [lod]; did you mean [load]?"),
    "unknown-top-level-key": (D + 'descripton = "y"\n',
                              ": unknown key 'descripton' in the top level; "
                              "did you mean 'description'?"),
    "wrong-type": (D + '[load]\nwrapper = "0x2000000"\n',
                   ": [load] wrapper: expected an address (an integer such as 0x2000000), "
                   "got a string ('0x2000000')"),
    "boolean-for-a-size": (D + "[kernel]\nbss = true\n",
                           ": [kernel] bss: expected a size (an integer, or a string like "
                           "\"512M\"), got a boolean (True)"),
    "bad-size": (D + '[tree]\nmemory = "512Q"\n',
                 ": [tree] memory: '512Q' is not a size (use an integer, or a string like "
                 "\"512M\" or \"16G\")"),
    "bad-choice": (D + '[firmware]\npolicy = "fixd"\n',
                   ": [firmware] policy: 'fixd' is not one of 'fixed', 'seed'; "
                   "did you mean 'fixed'?"),
    "missing-description": ("[load]\nwrapper = 0x1000000\n",
                            ": missing key 'description': one line on what this scenario "
                            "pins down"),
    "blob-outside-ram": (D + '[tree]\nmemory = "64M"\n[load]\ndtb = 0x4000000\n',
                         ": [load] dtb = 0x4000000: the device tree (0x400 bytes, up to "
                         "0x4000400) is not inside RAM (0x0..0x4000000)"),
    "overlapping-loads": (D + "[load]\ndtb = 0x1000000\ninitrd = 0x1000000\n"
                          "[initrd]\nsize = 0x1000\n",
                          ": [load] initrd = 0x1000000: the initrd (0x1000000..0x1001000) "
                          "overlaps the device tree at [load] dtb (0x1000000..0x1000400)"),
    "dtb-and-memory": (D + f'[tree]\ndtb = "{QEMU_512M}"\nmemory = "1G"\n',
                       ": [tree] memory: the dtb already describes its memory "
                       "(0x0..0x20000000); memory fills only an empty /memory: drop one "
                       "of them"),
    "missing-file": (D + '[tree]\ndtb = "nope.dtb"\n', ": [tree] dtb: no such file: "),
    # only a Boot told to stop at the hand-off ends so: a file expecting
    # it could never pass
    "exit-handoff": (D + '[expect]\nexit = "handoff"\n',
                     ": [expect] exit: 'handoff' is not one of 'kernel', 'fatal', "
                     "'exception', 'budget', 'divergence'"),
    "bad-regex": (D + '[expect]\nexit = "fatal"\nmessage = "no room ("\n',
                  ": [expect] message: 'no room (' is not a regular expression: "
                  "missing ), unterminated subpattern at position 8"),
    "unknown-region": (D + '[expect]\noverwritten = ["intrd"]\n',
                       ": [expect] overwritten: 'intrd' is not one of 'wrapper', "
                       "'input-dtb', 'initrd', 'reserve', 'dtb', 'outside-ram'; "
                       "did you mean 'initrd'?"),
    "placement-with-fatal": (D + '[expect]\nexit = "fatal"\nkernel = 0\n',
                             ": [expect] kernel: a placement is only handed on with exit = "
                             "\"kernel\" (this expects 'fatal')"),
    "initrd-size-and-file": (D + '[initrd]\nsize = 0x1000\nfile = "x.cpio"\n',
                             ": [initrd]: give either size (generated content) or file"),
    "initrd-address-without-initrd": (D + "[load]\ninitrd = 0x1000000\n",
                                      ": [load] initrd: there is no initrd from the "
                                      "chain-loader (no [initrd] table, or attached = true)"),
    "series-unknown-key": (D + "[tree]\nreserve_series = { from = 0, size = 1, stride = 2, "
                           "count = 3 }\n",
                           ": [tree] reserve_series: unknown key 'stride'; did you mean 'step'?"),
    "console-with-dtb": (D + f'[tree]\ndtb = "{QEMU_512M}"\nconsole = "uart"\n',
                         ": [tree] console: only for a generated tree (memory = SIZE without "
                         "dtb); a dtb names its own"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(tmp_path, kind):
    text, expected = BAD_FILES[kind]
    p = write(tmp_path, text)
    with pytest.raises(ScenarioFileError) as e:
        load(p)
    line = str(e.value)
    assert "\n" not in line
    assert line.startswith(f"{p}{expected}"), line


def test_there_are_at_least_twelve_kinds_of_bad_file():
    assert len(BAD_FILES) >= 12


def test_a_dts_that_dtc_refuses_is_one_line(tmp_path):
    if shutil.which("dtc") is None:
        pytest.skip("dtc is not installed")
    write(tmp_path, "/dts-v1/;\n/ { broken\n", "bad.dts")
    p = write(tmp_path, D + '[tree]\ndtb = "bad.dts"\n')
    with pytest.raises(ScenarioFileError, match=r"\[tree\] dtb .*bad\.dts: dtc cannot compile it"):
        load(p)


# --- what a file maps onto --------------------------------------------------------

def test_sizes_are_integers_or_strings_with_a_unit(tmp_path):
    for text, want in (('"512M"', 512 << 20), ('"16G"', 16 << 30), ('"64KiB"', 64 << 10),
                       ("0x1000", 0x1000), ('"0x2000"', 0x2000)):
        p = write(tmp_path, D + f"[kernel]\nbss = {text}\n")
        assert load(p).scenario.kernel_bss == want, text


def test_memory_alone_generates_a_tree_with_that_ram(tmp_path):
    p = write(tmp_path, D + '[tree]\nmemory = "512M"\nbootargs = "quiet"\n'
              'reserve = [[0x1f00000, 0x100000]]\n')
    sc = load(p).scenario
    tree = DeviceTree(sc.dtb)
    assert tree.memory() == [(0, 512 << 20)]
    assert tree.reserves() == [(0x1f00000, 0x100000)]
    assert tree.string("/chosen", "bootargs") == "quiet"
    assert sc.memory is None and sc.cmdline is None and sc.name == "case"


def test_a_reserve_series_adds_its_entries_after_the_list(tmp_path):
    p = write(tmp_path, D + "[tree]\nreserve = [[0x100000, 0x1000]]\n"
              "reserve_series = { from = 0x4000000, size = 0x1000, step = 0x100000, count = 3 }\n")
    assert DeviceTree(load(p).scenario.dtb).reserves() == [
        (0x100000, 0x1000), (0x4000000, 0x1000), (0x4100000, 0x1000), (0x4200000, 0x1000)]


def test_a_dtb_gets_the_reserves_added_to_its_own_and_bootargs_as_a_fix_up(tmp_path):
    p = write(tmp_path, D + f'[tree]\ndtb = "{QEMU_512M}"\nbootargs = "console=hvc0"\n'
              'reserve = [[0x1f00000, 0x100000], [0x1e00000, 0x1000]]\n')
    sc = load(p).scenario
    original = DeviceTree(QEMU_512M.read_bytes())
    assert DeviceTree(sc.dtb).reserves() == original.reserves() + [(0x1f00000, 0x100000),
                                                                    (0x1e00000, 0x1000)]
    assert DeviceTree(sc.dtb).memory() == original.memory()
    assert sc.cmdline == "console=hvc0" and sc.memory is None


def test_memory_fills_a_dtb_without_memory(tmp_path):
    p = write(tmp_path, D + f'[tree]\ndtb = "{DATA / "board-no-memory.dts"}"\n'
              'memory = "256M"\n')
    assert load(p).scenario.memory == 256 << 20


def test_an_empty_memory_node_needs_memory(tmp_path):
    if shutil.which("dtc") is None:
        pytest.skip("dtc is not installed")
    write(tmp_path, '/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>;\n'
          '  memory@0 { device_type = "memory"; reg = <0 0 0 0>; };\n};\n', "empty.dts")
    p = write(tmp_path, D + '[tree]\ndtb = "empty.dts"\n')
    with pytest.raises(ScenarioFileError, match=r"\[tree\] dtb: its /memory is empty"):
        load(p)
    p = write(tmp_path, D + '[tree]\ndtb = "empty.dts"\nmemory = "128M"\n')
    assert load(p).scenario.memory == 128 << 20


def test_foreign_image_keys_map_onto_the_scenario(tmp_path):
    (tmp_path / "zImage.epapr").write_bytes(b"\x7fELF")
    (tmp_path / "vmlinux").write_bytes(b"\x7fELF")
    p = write(tmp_path, D + '[tree]\nmemory = "512M"\n[firmware]\nimage = "zImage.epapr"\n'
              'entry = "epapr"\nkernel = "vmlinux"\nregs = { r6 = 0, r7 = 0x1000000 }\n'
              'msr = 0x1000\nentry_offset = 0x100\n')
    sc = load(p).scenario
    assert sc.image == tmp_path / "zImage.epapr" and sc.kernel == tmp_path / "vmlinux"
    assert sc.entry == "epapr" and sc.regs == (("r6", 0), ("r7", 0x1000000))
    assert sc.msr == 0x1000 and sc.entry_offset == 0x100


def test_keys_of_our_own_firmware_are_refused_with_a_foreign_image(tmp_path):
    (tmp_path / "zImage").write_bytes(b"\x7fELF")
    p = write(tmp_path, D + '[firmware]\nimage = "zImage"\n[kernel]\nbss = "4M"\n')
    with pytest.raises(ScenarioFileError, match=r"\[kernel\] bss: describes bwemu's own"):
        load(p)
    p = write(tmp_path, D + '[firmware]\nentry_offset = 0x100\n')
    with pytest.raises(ScenarioFileError, match=r"\[firmware\] entry_offset: only with image"):
        load(p)


def test_initrds_from_the_loader_and_attached(tmp_path):
    (tmp_path / "rootfs.cpio").write_bytes(b"07070100")
    p = write(tmp_path, D + '[initrd]\nfile = "rootfs.cpio"\n[attached_initrd]\nsize = 10\n')
    sc = load(p).scenario
    assert sc.initrd == b"07070100" and len(sc.attached_initrd or b"") == 10
    p = write(tmp_path, D + '[initrd]\nsize = 0x1000\nattached = true\n')
    sc = load(p).scenario
    assert sc.initrd is None and len(sc.attached_initrd or b"") == 0x1000


# --- the expectation check --------------------------------------------------------

def test_a_wrong_expected_placement_fails_with_expected_and_actual_side_by_side(tmp_path):
    text = (CORPUS / "kernel-fits-below-wrapper.toml").read_text()
    assert "kernel = 0x0\n" in text
    p = write(tmp_path, text.replace("kernel = 0x0\n", "kernel = 0x1000\n"))
    sf = load(p)
    outcome = check(boot_file(sf), sf.expect, sf.xfail)
    assert outcome.verdict is Verdict.FAILED
    lines = outcome.text().splitlines()
    assert lines[0].startswith("scenario case: FAILED")
    header = next(line for line in lines if line.split()[:3] == ["what", "expected", "actual"])
    row = next(line for line in lines if line.split()[:1] == ["kernel"])
    assert row.split() == ["kernel", "0x1000", "0x0", "<-", "differs"]
    # the columns line up under their headings
    assert row.index("0x1000") == header.index("expected")
    assert row.index("0x0 ") == header.index("actual")
    initrd = next(line for line in lines if line.split()[:1] == ["initrd"])
    assert initrd.split() == ["initrd", "0xffd0000", "0xffd0000"]
    assert "range-table timeline:" in lines
    assert outcome.summary() == "kernel: expected 0x1000, got 0x0"


def test_a_clean_boot_expected_under_the_seeds_hole_fails(tmp_path):
    sf = load(write(tmp_path, SEED_HOLE + '\n[expect]\nexit = "kernel"\n'))
    outcome = check(boot_file(sf), sf.expect)
    assert outcome.verdict is Verdict.FAILED
    assert [r.what for r in outcome.mismatches] == ["overwritten"]
    assert outcome.mismatches[0].actual == "initrd"
    text = outcome.text()
    # the overwrite report names the kernel's store, with function and line
    assert "initrd (from the chain-loader)" in text
    assert "by pc 0x7c _kstart" in text and "(head.S:" in text
    # ... and the boot without [expect] fails its default verdict too
    outcome = check(boot_file(sf), None)
    assert outcome.verdict is Verdict.FAILED and not outcome.passed


def test_the_seeds_hole_passes_when_the_initrd_overwrite_is_expected(tmp_path):
    sf = load(write(tmp_path, SEED_HOLE + '\n[expect]\noverwritten = ["initrd"]\n'))
    outcome = check(boot_file(sf), sf.expect)
    assert outcome.verdict is Verdict.PASSED, outcome.text()
    # the same file under fixed: the expected overwrite does not happen
    sf = load(write(tmp_path, SEED_HOLE.replace('"seed"', '"fixed"')
                    + '\n[expect]\noverwritten = ["initrd"]\n'))
    outcome = check(boot_file(sf), sf.expect)
    assert outcome.verdict is Verdict.FAILED
    assert outcome.mismatches[0].expected == "initrd"
    assert outcome.mismatches[0].actual == "(none)"


def test_an_expected_overwrite_does_not_excuse_another(tmp_path):
    sf = load(write(tmp_path, SEED_HOLE + '\n[expect]\noverwritten = ["reserve"]\n'))
    outcome = check(boot_file(sf), sf.expect)
    assert outcome.verdict is Verdict.FAILED
    # the hand-off check's complaint is not explained by a reserve overwrite
    assert any(p.startswith("handoff: failed") for p in outcome.problems)


def test_a_known_failure_that_passes_is_reported(tmp_path):
    text = (CORPUS / "kernel-fits-below-wrapper.toml").read_text()
    sf = load(write(tmp_path, 'xfail = "pretend"\n' + text))
    outcome = check(boot_file(sf), sf.expect, sf.xfail)
    assert outcome.verdict is Verdict.XPASSED and not outcome.passed
    assert "remove the xfail" in outcome.summary()


# --- bwemu run ---------------------------------------------------------------------

def test_bwemu_run_json_and_exit_status(tmp_path, capsys):
    good = tmp_path / "suite"
    good.mkdir()
    shutil.copy(CORPUS / "kernel-fits-below-wrapper.toml", good / "a.toml")
    write(good, SEED_HOLE + '\n[expect]\noverwritten = ["initrd"]\n', "b.toml")
    assert main(["run", str(good), "--jobs", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["verdict"] for s in out["scenarios"]] == ["passed", "passed"]
    assert out["scenarios"][1]["properties"]["overwritten"] == "initrd"
    write(good, SEED_HOLE + '\n[expect]\nexit = "kernel"\n', "c.toml")
    assert main(["run", str(good)]) == 1
    text = capsys.readouterr().out
    assert "overwritten  (none)" in text and "initrd   <- differs" in text
    assert "3 scenarios: 1 failed, 2 passed" in text
    write(good, D + "[lod]\n", "d.toml")
    assert main(["run", str(good)]) == 2
    err = capsys.readouterr().err
    assert f"bwemu run: {good / 'd.toml'}: unknown table [lod]; did you mean [load]?" in err


def test_collect_finds_toml_files_sorted_and_once(tmp_path):
    for n in ("b.toml", "a.toml", "sub/c.toml", "notes.txt"):
        (tmp_path / n).parent.mkdir(exist_ok=True)
        (tmp_path / n).write_text("")
    assert collect([tmp_path, tmp_path / "a.toml"]) == [
        tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "sub" / "c.toml"]


@pytest.mark.parametrize("command", [["run"], ["run", "--json"], ["record", "--check"],
                                     ["record"]])
def test_a_directory_without_scenario_files_is_an_error_naming_it(tmp_path, capsys, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    texts = tmp_path / "texts"
    (texts / "sub").mkdir(parents=True)
    (texts / "sub" / "notes.txt").write_text("")
    for d in (empty, texts):
        assert main([*command, str(d)]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err == f"bwemu: error: {d}: no scenario files (*.toml) in this directory " \
                      f"or under it\n"
    # one good file beside it does not excuse it
    good = write(tmp_path, (CORPUS / "kernel-fits-below-wrapper.toml").read_text())
    assert main([*command, str(good), str(empty)]) == 2
    assert str(empty) in capsys.readouterr().err


def test_progress_bar_and_summary_table():
    stream = io.StringIO()
    bar = Progress(2, stream, live=True)
    cases = [CaseResult("a.toml", "a", "passed", 0.1, "", ""),
             CaseResult("b.toml", "b", "failed", 0.25, "", "")]
    for c in cases:
        bar(c)
    assert "\r[###############...............] 1/2" in stream.getvalue()
    assert "2/2, 1 failed" in stream.getvalue()
    assert summary_table(cases).splitlines() == [
        "scenario  verdict      time", "a         passed      0.10s", "b         failed      0.25s"]


# --- bwemu record --------------------------------------------------------------------

def test_record_writes_expect_keeping_comments_and_tables(tmp_path, capsys):
    p = write(tmp_path, "# a comment of the author's\n" + SEED_HOLE.replace(
        'bss = "10M"', 'bss = "10M"    # bigger than the gap'))
    assert main(["record", str(p)]) == 0
    text = p.read_text()
    assert text.startswith("# a comment of the author's\n")
    assert 'bss = "10M"    # bigger than the gap' in text
    sf = load(p)
    assert sf.expect is not None and sf.expect.overwritten == ("initrd",)
    assert "initrd = 0x400000\n" in text.split("[expect]")[1]
    assert main(["record", "--check", str(p)]) == 0
    assert "[expect] unchanged" in capsys.readouterr().out


def test_record_check_reports_the_placements_a_policy_change_moves(tmp_path, capsys):
    # a kernel too big for the gap below the wrapper: the policies place it apart
    p = write(tmp_path, SEED_HOLE.replace('policy = "seed"', 'policy = "fixed"'), "big.toml")
    record(p)                                   # pin today's placements
    pinned = load(p).expect
    assert pinned is not None and isinstance(pinned.kernel, int) and pinned.kernel != 0
    before = p.read_text()
    changed = before.replace('policy = "fixed"', 'policy = "seed"')
    p.write_text(changed)                       # the deliberate change
    capsys.readouterr()
    assert main(["record", "--check", str(p)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "[expect] kernel", "[expect] dtb", "[expect] initrd", "[expect] overwritten"]
    assert lines[0].startswith(f"{p}: [expect] kernel: 0x{pinned.kernel:x} -> 0x")
    assert lines[1].startswith(f"{p}: [expect] dtb: 0x{pinned.dtb:x} -> 0x")
    assert p.read_text() == changed             # nothing written
    rec = record(p)
    assert rec.written and [c.key for c in rec.changes] == ["kernel", "dtb", "initrd",
                                                            "overwritten"]
    assert lines[3].endswith("[expect] overwritten: [] -> ['initrd']")
    assert load(p).expect.kernel == rec.changes[0].new != pinned.kernel


def test_record_keeps_a_crlf_file_crlf(tmp_path):
    p = tmp_path / "crlf.toml"
    before = b'description = "crlf"\r\n[initrd]   # a comment\r\nsize = 0x1000\r\n'
    p.write_bytes(before)
    rec = record(p)
    after = p.read_bytes()
    assert rec.written and after.startswith(before)
    assert after.count(b"\n") == after.count(b"\r\n") > before.count(b"\n")
    sf = load(p)
    assert sf.expect is not None
    assert {c.key: c.new for c in rec.changes} == {
        "exit": sf.expect.exit, "kernel": sf.expect.kernel, "dtb": sf.expect.dtb,
        "initrd": sf.expect.initrd, "overwritten": list(sf.expect.overwritten)}
    assert not record(p, check_only=True).changes


def test_record_writes_an_inline_expect_as_the_file_wrote_it(tmp_path):
    p = write(tmp_path, 'description = "inline"\n'
              'expect = { exit="kernel",  message = "no such text", kernel =  0x1000 }  # pinned\n'
              '[initrd]\nsize = 0x1000\n')
    rec = record(p)
    new = {c.key: c.new for c in rec.changes}
    assert new.keys() == {"message", "kernel", "dtb", "initrd"} and new["message"] is None
    lines = p.read_text().splitlines()
    assert lines[0] == 'description = "inline"' and lines[2:] == ["[initrd]", "size = 0x1000"]
    assert lines[1] == (f'expect = {{ exit="kernel", kernel =  0x{new["kernel"]:x}, '
                        f'dtb = 0x{new["dtb"]:x}, initrd = 0x{new["initrd"]:x} }}  # pinned')
    sf = load(p)
    assert (sf.expect.kernel, sf.expect.dtb, sf.expect.message) == (new["kernel"], new["dtb"],
                                                                   None)
    assert not record(p, check_only=True).changes


# --- named scenarios read from the files ---------------------------------------------

def test_the_corpus_has_at_least_sixty_described_files():
    files = sorted(CORPUS.rglob("*.toml"))
    assert len(files) >= 60
    for f in files:
        assert len(load(f).description) > 20, f


def test_bwemu_scenarios_lists_the_files(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == len(scenarios_lib.names())
    assert "initrd-below-big-kernel-end-seed" in out


def test_boot_scenario_reads_the_file_under_the_policy_given_else_its_own():
    assert scenarios_lib.get("big-kernel-goes-to-heap", "seed").policy == "seed"
    assert scenarios_lib.get("initrd-below-big-kernel-end-seed", "fixed").policy == "fixed"
    # without --policy, the file's own (the CLI's default of "fixed" once
    # booted this seed scenario under the fixed policy)
    assert scenarios_lib.get("initrd-below-big-kernel-end-seed").policy == "seed"
    assert scenarios_lib.get("initrd-below-big-kernel-end").policy == "fixed"


def test_boot_scenario_takes_a_scenario_files_path(tmp_path, capsys):
    """--scenario took corpus names only: a user's own file could not be
    booted with --ranges, --map or --gdb."""
    f = tmp_path / "mine.toml"
    f.write_text('description = "mine"\n[tree]\nmemory = "512M"\n[firmware]\n'
                 'policy = "seed"\n')
    assert main(["boot", "--json", "--scenario", str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"] == "mine" and out["passed"]
    assert out["dtb"]["address"] + out["dtb"]["size"] <= 512 << 20
    assert main(["boot", "--scenario", str(tmp_path / "nope.toml")]) == 2
    assert f"--scenario {tmp_path / 'nope.toml'}: cannot read" in capsys.readouterr().err


# --- the pytest plugin, end to end -----------------------------------------------------

@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    """One `pytest -n 2 --junitxml` over a directory named scenarios holding:
    a recorded file, a wrong placement, the seed's hole expected clean and
    expected to overwrite the initrd, and a bad file."""
    base = tmp_path_factory.mktemp("plugin")
    d = base / "scenarios"
    d.mkdir()
    recorded = d / "recorded.toml"
    shutil.copy(CORPUS / "tiny-rma-1m.toml", recorded)
    assert "[expect]" not in recorded.read_text()
    assert main(["record", str(recorded)]) == 0
    assert "[expect]" in recorded.read_text()
    text = (CORPUS / "kernel-fits-below-wrapper.toml").read_text()
    (d / "wrong-placement.toml").write_text(text.replace("kernel = 0x0\n", "kernel = 0x1000\n"))
    (d / "seed-hole-clean.toml").write_text(SEED_HOLE + '\n[expect]\nexit = "kernel"\n')
    (d / "seed-hole-initrd.toml").write_text(SEED_HOLE + '\n[expect]\noverwritten = ["initrd"]\n')
    (d / "bad.toml").write_text(D + "[load]\nintird = 0x1000000\n")
    xml = base / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios", "-n", "2", "-rA",
                           "-p", "no:cacheprovider", f"--junitxml={xml}"],
                          cwd=base, capture_output=True, text=True, timeout=600)
    cases = {tc.get("name"): tc for tc in ET.parse(xml).getroot().iter("testcase")}
    return proc, cases


def test_plugin_runs_each_file_as_a_test(plugin_run):
    proc, cases = plugin_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "PASSED scenarios/recorded.toml::recorded" in proc.stdout
    assert "PASSED scenarios/seed-hole-initrd.toml::seed-hole-initrd" in proc.stdout
    assert "FAILED scenarios/seed-hole-clean.toml::seed-hole-clean" in proc.stdout
    assert "FAILED scenarios/wrong-placement.toml::wrong-placement" in proc.stdout
    assert "3 failed" not in proc.stdout and "2 failed, 2 passed, 1 error" in proc.stdout


def test_plugin_reports_a_bad_file_in_one_line_and_runs_the_others(plugin_run):
    proc, _ = plugin_run
    line = "scenarios/bad.toml: unknown key 'intird' in [load]; did you mean 'initrd'?"
    section = proc.stdout.split("ERROR collecting scenarios/bad.toml")[1]
    assert section.splitlines()[1] == line
    assert "ERROR scenarios/bad.toml" in proc.stdout
    assert "Traceback" not in proc.stdout and "Interrupted" not in proc.stdout


def test_plugin_junit_has_one_testcase_per_file_with_failure_text_and_placements(plugin_run):
    _, cases = plugin_run
    assert {"recorded", "wrong-placement", "seed-hole-clean", "seed-hole-initrd"} <= set(cases)
    failure = cases["wrong-placement"].find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert "kernel" in message and "0x1000" in message and "<- differs" in message
    props = {p.get("name"): p.get("value")
             for p in cases["seed-hole-initrd"].iter("property")}
    assert props["verdict"] == "passed" and props["overwritten"] == "initrd"
    assert props["initrd"] == "0x400000" and props["kernel"].startswith("0x")
