"""The wrapper's device tree error codes are libfdt's.

fdt.h reuses libfdt's FDT_ERR_* names, so each must carry libfdt's number:
a code read in a register, a log or a test means the same thing in both.
The numbers come from the compiled code (the host driver prints what fdt.h
defines), and libfdt's from pylibfdt.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import libfdt
import pytest

from hostc import build_host_tool


@pytest.fixture(scope="module")
def drv(tmp_path_factory) -> Callable[..., list[str]]:
    """Runs the driver's tree-less operations; returns its output lines."""
    exe = build_host_tool("fdt_driver", ["fdt.c", "fdt_rw.c"])
    empty = tmp_path_factory.mktemp("fdt_errors") / "empty.dtb"
    empty.write_bytes(b"")

    def run(*ops: str) -> list[str]:
        proc = subprocess.run([str(exe), str(empty), *ops],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return proc.stdout.splitlines()
    return run


@pytest.fixture(scope="module")
def ours(drv) -> dict[str, int]:
    """{FDT_ERR_NAME: number} as fdt.h defines them."""
    codes = dict(line.split("=") for line in drv("errcodes"))
    return {name: int(number) for name, number in codes.items()}


def libfdt_codes() -> dict[str, int]:
    return {name: getattr(libfdt, name) for name in dir(libfdt)
            if name.startswith("FDT_ERR_") and name != "FDT_ERR_MAX"}


def test_the_driver_lists_codes(ours):
    assert len(ours) >= 12
    assert "FDT_ERR_NOTFOUND" in ours and "FDT_ERR_BADNCELLS" in ours


def test_every_code_has_libfdts_number(ours):
    theirs = libfdt_codes()
    wrong = {name: (number, theirs.get(name)) for name, number in ours.items()
             if theirs.get(name) != number}
    assert wrong == {}, "ours, libfdt's"


def test_no_two_codes_share_a_number(ours):
    assert len(set(ours.values())) == len(ours)


def test_strerror_has_distinct_text_for_each_code_and_only_for_them(drv, ours):
    """Each code has its own text; every other small number, including the
    libfdt codes this code never returns, reads as unknown.  So the driver's
    list is every code fdt_strerror knows."""
    probe = range(1, max(libfdt_codes().values()) + 8)
    lines = drv(*[x for c in probe for x in ("strerror", str(-c))])
    text = dict(zip(probe, lines, strict=True))
    unknown = drv("strerror", "-100000")[0]
    mine = {n: text[n] for n in ours.values()}
    assert unknown not in mine.values()
    assert len(set(mine.values())) == len(mine)
    assert {n for n, t in text.items() if t != unknown} == set(ours.values())


def test_our_own_codes_are_named_bw_and_clear_of_libfdts(drv, ours):
    """fdt_check_full's codes of our own (BW_FDT_ERR_*): numbered past every
    libfdt code, each with a text of its own, none shared with a libfdt
    code's text."""
    bw = {name: int(number) for name, number in
          (line.split("=") for line in drv("bwerrcodes"))}
    assert bw and all(name.startswith("BW_FDT_ERR_") for name in bw)
    assert min(bw.values()) > max(libfdt_codes().values())
    assert len(set(bw.values())) == len(bw)
    texts = drv(*[x for c in bw.values() for x in ("strerror", str(-c))])
    libfdt_texts = drv(*[x for c in ours.values() for x in ("strerror", str(-c))])
    unknown = drv("strerror", "-100000")[0]
    assert unknown not in texts
    assert len(set(texts)) == len(texts)
    assert not set(texts) & set(libfdt_texts)
