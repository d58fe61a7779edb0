"""The bwemu command line: output shapes, exit statuses, and clear errors
for bad input (never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulator import MemoryTree
from emulator.cli import main


def bwemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_boot_json_has_the_documented_fields():
    p = bwemu("boot", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["exit"] == "kernel"
    for key in ("message", "pc", "console", "kernel", "dtb", "initrd"):
        assert key in out
    for key in ("kernel", "dtb", "initrd"):
        assert set(out[key]) == {"address", "size"}
    assert "bwemu wrapper" in out["console"]


def test_boot_text_says_where_things_went(tmp_path):
    p = bwemu("boot")
    assert p.returncode == 0
    assert "OK: kernel reached" in p.stdout
    assert "note:    wrapper placed at 0x2000000" in p.stdout


def test_user_tree_and_addresses(tmp_path):
    dtb = tmp_path / "board.dtb"
    dtb.write_bytes(MemoryTree(memory=((0, 64 << 20),), console="uart").build())
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"x" * 5000)
    p = bwemu("boot", "--dtb", str(dtb), "--dtb-at", "0x100000", "--wrapper-at",
              "0x800000", "--initrd", str(initrd), "--initrd-at", "16777216", "--json")
    out = json.loads(p.stdout)
    assert p.returncode == 0, out["message"]
    assert out["wrapper"]["address"] == 0x800000
    assert out["initrd"] == {"address": 16777216, "size": 5000}


def test_bad_magic_exits_nonzero_with_the_wrappers_message(tmp_path):
    dtb = tmp_path / "bad.dtb"
    dtb.write_bytes(b"\0" * 64)
    p = bwemu("boot", "--dtb", str(dtb), "--json")
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["exit"] == "fatal" and "bad magic" in out["message"]


def test_budget_exhausted_exits_nonzero():
    p = bwemu("boot", "--budget", "5000", "--json")
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["exit"] == "budget" and "budget exhausted" in out["message"]


@pytest.mark.parametrize("args, words", [
    (["--dtb", "/nonexistent/x.dtb"], "--dtb /nonexistent/x.dtb: cannot read: No such file"),
    (["--dtb-at", "banana"], "is not an address"),
    (["--dtb", "tests/data/../../build/firmware/none.dtb"], "none.dtb: cannot read: No such file"),
    (["--dtb-at", "0x7fff0000"], "is not inside RAM"),
    (["--wrapper-at", "0xffc0000", "--dtb-at", "0xffc0000"], "overlaps"),
    (["--budget", "0"], "0 is less than 1"),
])
def test_bad_input_gets_a_specific_error_not_a_traceback(args, words):
    p = bwemu("boot", *args)
    assert p.returncode == 2
    assert words in p.stderr
    assert "Traceback" not in p.stderr


def test_initrd_address_without_initrd_is_refused(tmp_path):
    dtb = tmp_path / "board.dtb"
    dtb.write_bytes(MemoryTree().build())
    p = bwemu("boot", "--dtb", str(dtb), "--initrd-at", "0x1000000")
    assert p.returncode == 2
    assert "--initrd-at needs --initrd" in p.stderr


@pytest.mark.parametrize("command", [["boot"], ["scenarios"], ["boot", "--json"]])
def test_output_to_a_full_disk_is_one_line(command):
    """stdout on /dev/full raised OSError out of print (a long report) or
    out of the interpreter's final flush (a short one), as a traceback."""
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "emulator.cli", *command], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr == "bwemu: error: standard output: No space left on device\n"


def test_kernel_bss_takes_a_size_as_memory_does(capsys):
    """--kernel-bss 40M said "'40M' is not a whole number", though --memory
    and a scenario file's bss take suffixes."""
    assert main(["boot", "--json", "--kernel-bss", "40M"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kernel"]["size"] > 40 << 20


def test_boot_help_groups_its_options_by_what_they_are_for(capsys):
    """One flat list of 25 options; --dtb-at and --initrd-at had no help."""
    with pytest.raises(SystemExit):
        main(["boot", "--help"])
    text = capsys.readouterr().out
    groups = ["what to boot", "where the chain-loader put things", "an image of yours",
              "bwemu's own wrapper and test kernel", "running and output"]
    at = [text.index(g) for g in groups]
    assert at == sorted(at)
    for option in ("--dtb-at ADDR", "--initrd-at ADDR"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(option))
        assert line.strip() != option, f"{option} has no help"
    assert text.index("  --kernel ELF ") > text.index("an image of yours")
