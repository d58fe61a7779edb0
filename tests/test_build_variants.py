"""firmware/Makefile keeps every build configuration apart.

A configuration is the heap policy, the injected fault, the ABI and the
toolchain.  Left to its default, each gets its own build directory, named
as the Python side's FirmwareBuild names it; built into one explicit O=,
a change of configuration rebuilds everything.  Checked
with plain make runs: the default directories on a copy of firmware/ under
tmp_path (so the repository's own build/ is never touched), explicit O=
directories under tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hostc import FIRMWARE

CROSS_CC = "powerpc64-linux-gnu-gcc"

pytestmark = pytest.mark.skipif(shutil.which(CROSS_CC) is None,
                                reason=f"{CROSS_CC} not installed")


def make(src: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["make", "-s", f"-j{os.cpu_count() or 1}", "-C", str(src), *args],
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def up_to_date(src: Path, *args: str) -> bool:
    """make -q: would this command line build nothing?"""
    return make(src, "-q", *args, check=False).returncode == 0


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of firmware/ whose default build root is tmp_path/build."""
    shutil.copytree(FIRMWARE, tmp_path / "firmware")
    return tmp_path


def built_dirs(tree: Path) -> set[str]:
    root = tree / "build"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def elf(directory: Path) -> bytes:
    return (directory / "wrapper.elf").read_bytes()


# ------------------------------------------------------- default directories

def test_a_fault_build_never_touches_the_default_build(tree):
    src, default = tree / "firmware", tree / "build" / "firmware"
    # On a clean tree: the faulty objects go to their own directory only.
    make(src, "FAULT=STALE_TAIL")
    assert built_dirs(tree) == {"firmware-fault-stale_tail"}
    faulty = elf(tree / "build" / "firmware-fault-stale_tail")

    make(src)
    good = elf(default)
    assert good != faulty

    # After a normal build: another fault build, or the same one again,
    # leaves the default directory's wrapper as it was.
    make(src, "FAULT=STALE_TAIL")
    make(src, "FAULT=NO_MERGE_ADJACENT")
    assert elf(default) == good
    assert elf(tree / "build" / "firmware-fault-stale_tail") == faulty
    assert up_to_date(src)


def test_the_default_directory_names_the_whole_configuration(tree):
    src = tree / "firmware"
    expected = set()
    for args, name in [(["POLICY=seed"], "firmware-seed"),
                       (["ABI=elfv2"], "firmware-elfv2"),
                       (["POLICY=seed", "FAULT=STALE_TAIL", "ABI=elfv2"],
                        "firmware-seed-fault-stale_tail-elfv2"),
                       (["POLICY=fixed", "ABI=elfv1"], "firmware")]:
        make(src, *args)
        expected.add(name)
        assert built_dirs(tree) == expected, args
        assert (tree / "build" / name / "wrapper.elf").is_file()
        assert up_to_date(src, *args)


# ------------------------------------------------- one explicit O= directory

def test_a_new_configuration_in_the_same_O_rebuilds_and_the_old_one_comes_back(tmp_path):
    out = tmp_path / "o"
    o = f"O={out}"
    make(FIRMWARE, o, "POLICY=fixed")
    fixed = elf(out)
    assert up_to_date(FIRMWARE, o, "POLICY=fixed")
    assert not up_to_date(FIRMWARE, o, "POLICY=seed")

    make(FIRMWARE, o, "POLICY=seed")
    assert elf(out) != fixed
    assert not up_to_date(FIRMWARE, o, "POLICY=fixed")

    make(FIRMWARE, o, "POLICY=fixed")
    assert elf(out) == fixed

    make(FIRMWARE, o, "POLICY=fixed", "FAULT=STALE_TAIL")
    assert elf(out) != fixed
    make(FIRMWARE, o, "POLICY=fixed")
    assert elf(out) == fixed


def test_the_same_configuration_again_rebuilds_nothing(tmp_path):
    out = tmp_path / "o"
    make(FIRMWARE, f"O={out}", "POLICY=seed", "FAULT=IGNORE_FULL")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    make(FIRMWARE, f"O={out}", "POLICY=seed", "FAULT=IGNORE_FULL")
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_the_python_sides_calls_keep_their_configuration(tmp_path):
    """FirmwareBuild builds with POLICY and FAULT, links test kernels
    with POLICY only, and composes with POLICY and FAULT."""
    out = tmp_path / "o"
    o = f"O={out}"
    make(FIRMWARE, o, "POLICY=fixed", "FAULT=STALE_TAIL")
    kernel = tmp_path / "kernel-bss.elf"
    make(FIRMWARE, o, "testkernel", "KERNEL_BSS=0x4000000", f"KERNEL_OUT={kernel}",
         "POLICY=fixed")
    # The kernel link did not disturb the faulty wrapper's objects.
    assert up_to_date(FIRMWARE, o, "POLICY=fixed", "FAULT=STALE_TAIL")

    images = {}
    for policy in ("fixed", "seed", "fixed"):
        image = tmp_path / policy / "wrapper.elf"
        make(FIRMWARE, o, "compose", f"KERNEL_ELF={kernel}", f"IMAGE={image}",
             f"POLICY={policy}", "FAULT=STALE_TAIL", "COMPRESS=none")
        images.setdefault(policy, []).append(image.read_bytes())
    assert images["fixed"][0] == images["fixed"][1] != images["seed"][0]


# ------------------------------------------------------------- the payload

def test_the_payload_is_the_same_whatever_the_source_trees_path(tmp_path):
    """The test kernel's DWARF names the directory it was built in, so the
    unstripped ELF differs between two copies of the tree; the payload the
    image compresses is stripped and must not (CI's clone lives elsewhere
    than a developer's, and a byte offset in the gzip stream must mean the
    same thing in both)."""
    built = []
    for name in ("a", "a-much-longer-directory-name"):
        src, out = tmp_path / name / "firmware", tmp_path / name / "out"
        shutil.copytree(FIRMWARE, src)
        make(src, f"O={out}", f"{out}/testkernel.payload.elf")
        built.append(out)
    first, second = built
    assert (first / "testkernel.elf").read_bytes() != (second / "testkernel.elf").read_bytes()
    assert (first / "testkernel.payload.elf").read_bytes() == \
        (second / "testkernel.payload.elf").read_bytes()
