"""The wrapper's vsnprintf (firmware/lib/printf.c) against the host libc.

printf.c is built for the host with its public names renamed to bw_*, next
to firmware/host/printf_driver.c, which calls ours and libc's snprintf with
the same properly typed arguments and reports both results and whether any
byte past the buffer's size was written.  Formats are drawn from the
grammar stdio.h documents; the few places where ours is meant to differ
from C (%p's fixed 16 digits) are rewritten into an equivalent libc format.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostc import build_host_tool

RENAMES = ("vsnprintf=bw_vsnprintf", "snprintf=bw_snprintf", "sprintf=bw_sprintf")
BIG = 4000          # buffer size that holds any output drawn here

INT_CONVS = "diuxXo"
LENGTHS = ["", "hh", "h", "l", "ll", "z"]
# The argument kind the driver passes for each length, signed and unsigned.
KIND = {"": ("i", "u"), "hh": ("i", "u"), "h": ("i", "u"),
        "l": ("l", "L"), "ll": ("q", "Q"), "z": ("l", "L")}
BITS = {"i": 32, "u": 32, "l": 64, "L": 64, "q": 64, "Q": 64}


@dataclass
class Result:
    ret: int
    text: bytes | None      # bytes the function had to write, or None
    canary_ok: bool


class Driver:
    def __init__(self) -> None:
        exe = build_host_tool("printf_driver", ["lib/printf.c"], defines=RENAMES)
        self.proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)

    @staticmethod
    def _args(args: list[tuple[str, object]]) -> str:
        if not args:
            return "-"
        items = []
        for kind, value in args:
            if kind == "s":
                value = "x" + value.hex()
            items.append(f"{kind}:{value}")
        return ",".join(items)

    @staticmethod
    def _result(ret: str, text: str, canary: str) -> Result:
        return Result(int(ret), None if text == "-" else bytes.fromhex(text),
                      canary == "ok")

    def run(self, size: int, fmt: bytes, args, ref_fmt: bytes, ref_args,
            mode: int = 0) -> tuple[Result, Result]:
        line = " ".join([str(size), str(mode), "x" + fmt.hex(), self._args(args),
                         "x" + ref_fmt.hex(), self._args(ref_args)])
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.readline().split()
        assert len(out) == 6, f"driver died on {line!r}"
        return self._result(*out[:3]), self._result(*out[3:])


@pytest.fixture(scope="module")
def driver():
    d = Driver()
    yield d
    d.close()


def ours(driver: Driver, fmt: bytes, *args, size: int = BIG) -> Result:
    return driver.run(size, fmt, list(args), b"", [])[0]


# --- formats drawn from the grammar ---------------------------------------

@dataclass
class Case:
    fmt: bytes = b""
    args: list = field(default_factory=list)
    ref_fmt: bytes = b""
    ref_args: list = field(default_factory=list)

    def both(self, text: bytes, args=(), ref_text=None, ref_args=None):
        self.fmt += text
        self.args += list(args)
        self.ref_fmt += text if ref_text is None else ref_text
        self.ref_args += list(args if ref_args is None else ref_args)


literal = st.binary(max_size=6).map(
    lambda b: bytes(c for c in b if c not in (0, ord("%"))))
flags = st.lists(st.sampled_from("-0"), max_size=3).map("".join)


@st.composite
def width(draw, budget):
    """'', digits, or '*' with an int argument when the budget allows."""
    choices = ["none", "digits"] + (["star"] if budget > 0 else [])
    how = draw(st.sampled_from(choices))
    if how == "digits":
        return str(draw(st.integers(1, 8) | st.integers(1, 30))), []
    if how == "star":
        return "*", [("i", draw(st.integers(-30, 30)))]
    return "", []


@st.composite
def precision(draw, budget):
    choices = ["none", "dot", "digits"] + (["star"] if budget > 0 else [])
    how = draw(st.sampled_from(choices))
    if how == "dot":
        return ".", []
    if how == "digits":
        return "." + str(draw(st.integers(0, 6) | st.integers(0, 30))), []
    if how == "star":
        return ".*", [("i", draw(st.integers(-5, 30)))]
    return "", []


def int_value(draw, kind: str) -> int:
    bits = BITS[kind]
    # Small values too, so that widths and precisions near the digit
    # count (where padding rules bite) come up often.
    if kind.isupper() or kind == "u":
        edges = [0, 1, 2**bits - 1, 2**(bits - 1)]
        return draw(st.sampled_from(edges) | st.integers(0, 300)
                    | st.integers(0, 2**bits - 1))
    lo, hi = -2**(bits - 1), 2**(bits - 1) - 1
    return draw(st.sampled_from([0, -1, 1, lo, hi]) | st.integers(-300, 300)
                | st.integers(lo, hi))


@st.composite
def conversion(draw, case: Case, budget: int) -> int:
    """Appends one conversion to case; returns the arguments it used."""
    conv = draw(st.sampled_from(INT_CONVS + "cs%p"))
    if conv == "%":
        case.both(b"%%")
        return 0
    fl = draw(flags)
    if conv in "cs":
        fl = fl.replace("0", "")        # undefined in C
    w, wargs = draw(width(budget - 1))
    budget -= len(wargs)
    p, pargs = ("", [])
    if conv in INT_CONVS + "s":
        p, pargs = draw(precision(budget - 1))
    stars = wargs + pargs
    if conv in INT_CONVS:
        length = draw(st.sampled_from(LENGTHS))
        kind = KIND[length][conv not in "di"]
        arg = (kind, int_value(draw, kind))
        spec = f"%{fl}{w}{p}{length}{conv}".encode()
        case.both(spec, stars + [arg])
    elif conv == "c":
        case.both(f"%{fl}{w}c".encode(), stars + [("i", draw(st.integers(0, 255)))])
    elif conv == "s":
        text = draw(st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"")))
        case.both(f"%{fl}{w}{p}s".encode(), stars + [("s", text)])
    else:
        # Ours: 0x and all 16 digits, '0' ignored; libc: the same as a string.
        v = draw(st.sampled_from([0, 1, 2**64 - 1]) | st.integers(0, 2**64 - 1))
        ref_fl = "-" if "-" in fl else ""
        case.both(f"%{fl}{w}p".encode(), stars + [("p", v)],
                  ref_text=f"%{ref_fl}{w}s".encode(),
                  ref_args=wargs + [("s", f"0x{v:016x}".encode())])
    return len(stars) + 1


@st.composite
def cases(draw) -> Case:
    """A format of literals and conversions using at most 3 arguments."""
    case = Case()
    budget = 3
    case.both(draw(literal))
    for _ in range(draw(st.integers(0, 3))):
        if budget == 0:
            break
        budget -= draw(conversion(case, budget))
        case.both(draw(literal))
    return case


def check_same(mine: Result, ref: Result, what: str) -> None:
    assert mine.canary_ok, f"{what}: wrote past the buffer"
    assert ref.canary_ok
    assert (mine.ret, mine.text) == (ref.ret, ref.text), what


@settings(max_examples=200, deadline=None)
@given(case=cases(), data=st.data())
def test_snprintf_matches_libc_for_drawn_formats_and_sizes(driver, case, data):
    full, ref = driver.run(BIG, case.fmt, case.args, case.ref_fmt, case.ref_args)
    check_same(full, ref, f"{case.fmt!r} {case.args}")
    n = ref.ret
    # Truncated to nothing, to only the NUL, one short, exact, and anywhere.
    sizes = {0, 1, n, n + 1, data.draw(st.integers(0, n + 1))}
    for size in sorted(sizes):
        mine, ref = driver.run(size, case.fmt, case.args, case.ref_fmt,
                               case.ref_args)
        check_same(mine, ref, f"{case.fmt!r} {case.args} size {size}")
    mine, ref = driver.run(0, case.fmt, case.args, case.ref_fmt, case.ref_args,
                           mode=1)
    check_same(mine, ref, f"{case.fmt!r} {case.args} NULL buffer")


# --- pinned examples, independent of libc ---------------------------------

@pytest.mark.parametrize("fmt, args, expected", [
    (b"%llx", [("Q", 0xfedcba9876543210)], b"fedcba9876543210"),
    (b"%lu", [("L", 2**64 - 1)], b"18446744073709551615"),
    (b"%zu", [("L", 2**40 + 5)], b"1099511627781"),
    (b"%lld", [("q", -2**63)], b"-9223372036854775808"),
    (b"%llo", [("Q", 2**64 - 1)], b"1777777777777777777777"),
    (b"%hhx", [("u", 0x1ff)], b"ff"),
    (b"%hd", [("i", 0x18000)], b"-32768"),
    (b"%08X", [("u", 0xbeef)], b"0000BEEF"),
    (b"%-6d|", [("i", -12)], b"-12   |"),
    (b"%*d|", [("i", -5), ("i", 7)], b"7    |"),
    (b"%.3s", [("s", b"abcdef")], b"abc"),
    (b"%5.0d|", [("i", 0)], b"     |"),
    (b"%.5d", [("i", -42)], b"-00042"),
    (b"%.3d|%.2x", [("i", 42), ("u", 0xa)], b"042|0a"),
    (b"%08.3x|", [("u", 0x1f)], b"     01f|"),
    (b"%-08d|", [("i", 3)], b"3       |"),
    (b"%c%c", [("i", ord("o")), ("i", ord("k"))], b"ok"),
    (b"100%%", [], b"100%"),
])
def test_conversions_print_exactly(driver, fmt, args, expected):
    r = ours(driver, fmt, *args)
    assert (r.ret, r.text) == (len(expected), expected + b"\0")


@pytest.mark.parametrize("value, expected", [
    (0, b"0x0000000000000000"),
    (0xdeadbeef, b"0x00000000deadbeef"),
    (2**64 - 1, b"0xffffffffffffffff"),
])
def test_pointer_prints_all_sixteen_digits(driver, value, expected):
    r = ours(driver, b"%p", ("p", value))
    assert r.text == expected + b"\0"
    r = ours(driver, b"[%020p]", ("p", value))
    assert r.text == b"[  " + expected + b"]\0"


def test_unknown_conversion_is_shown_and_takes_no_argument(driver):
    r = ours(driver, b"%q %d %5", ("i", 42))
    assert r.text == b"%q 42 %5\0"
    assert r.ret == len(b"%q 42 %5")


def test_null_string_prints_placeholder(driver):
    # A NULL %s must not fault: the driver passes a pointer kind 'p' of 0.
    r = ours(driver, b"<%s>", ("p", 0))
    assert r.text == b"<(null)>\0"


def test_truncation_counts_the_full_length_and_terminates(driver):
    r = ours(driver, b"hello %d", ("i", 12345), size=4)
    assert (r.ret, r.text, r.canary_ok) == (11, b"hel\0", True)
    r = ours(driver, b"hello", size=1)
    assert (r.ret, r.text, r.canary_ok) == (5, b"\0", True)
    r = ours(driver, b"hello", size=0)
    assert (r.ret, r.text, r.canary_ok) == (5, None, True)


def test_sprintf_formats_like_snprintf(driver):
    mine, ref = driver.run(BIG, b"%s=%08llx!", [("s", b"k"), ("Q", 2**63)],
                           b"%s=%08llx!", [("s", b"k"), ("Q", 2**63)], mode=2)
    check_same(mine, ref, "sprintf")
    assert mine.text == b"k=8000000000000000!\0"
