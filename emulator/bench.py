"""`bwemu bench`: every performance target of docs/performance.md, measured
in one run, as ratios and rates beside their targets.

    bwemu bench [--pairs N] [--boots N] [--json FILE] [--differential-examples N]

Each figure says how it was measured.  Runs that are compared are
interleaved, so that another job on the machine slows both sides alike,
and the machine's load average is printed with the results (and stored in
the JSON file, which a CI job can keep as a history).  The targets are
printed, never asserted: a figure below its target is reported, and the
exit status is 0 whenever every measurement could be made.

Only what argparse needs is imported with the module (the CLI builds its
parser on every start); the measuring imports come with the command.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .argtypes import count
from .errors import SetupError

ROOT = Path(__file__).resolve().parent.parent
#: The scenario whose figures the targets are about (--memory 16G for the RSS).
BIG_MEMORY = "16G"


@dataclass
class Figure:
    """One measured figure and its target."""
    key: str                        # its name in the JSON file
    what: str                       # one line for people
    value: float | None             # None: skipped
    unit: str
    target: str = ""                # "<= 1.0", ">= 150": the figure
    met: bool | None = None         # None: no target, or skipped
    detail: str = ""                # how it was measured, the numbers behind it
    reproduce: str = "bwemu bench"

    def line(self) -> str:
        value = "skipped" if self.value is None else f"{_fmt(self.value)} {self.unit}".strip()
        verdict = {True: "meets", False: "MISSES", None: ""}[self.met]
        target = f"target {self.target} {self.unit}".rstrip() if self.target else ""
        head = f"  {self.what:58s} {value:>16s}  {target:22s} {verdict}".rstrip()
        return head + (f"\n      {self.detail}" if self.detail else "")

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "value": self.value, "unit": self.unit,
                "target": self.target or None, "met": self.met, "detail": self.detail,
                "reproduce": self.reproduce}


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _meets(value: float, target: str) -> bool:
    op, _, number = target.partition(" ")
    limit = float(number.replace(",", ""))
    return value <= limit if op == "<=" else value >= limit


def _figure(key: str, what: str, value: float | None, unit: str, target: str = "",
            detail: str = "", reproduce: str = "bwemu bench") -> Figure:
    met = None if value is None or not target else _meets(value, target)
    return Figure(key, what, value, unit, target, met, detail, reproduce)


# --- the whole CLI process against QEMU ---------------------------------------------------


def bwemu_command() -> list[str]:
    """How a user starts bwemu here: the console script beside this Python,
    else `python -m emulator.cli`."""
    script = Path(sys.executable).with_name("bwemu")
    return [str(script)] if script.exists() else [sys.executable, "-m", "emulator.cli"]


def _cli_once(cmd: list[str]) -> float:
    import subprocess
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {proc.returncode}: "
                         f"{proc.stderr.decode(errors='replace')[-400:]}")
    return took


class BenchError(SetupError):
    """A measurement could not be made (a boot failed, a tool broke)."""


def cli_vs_qemu(pairs: int) -> list[Figure]:
    import statistics
    import tempfile

    from .harness.firmware import FirmwareBuild
    from .harness.peer import QemuPeer, bios_image, qemu_available
    cmd = bwemu_command() + ["boot"]
    _cli_once(cmd)               # the caches: firmware mark, parsed images, DWARF
    reproduce = "bwemu bench --pairs N"
    if not qemu_available():
        t = [_cli_once(cmd) for _ in range(pairs)]
        return [_figure("cli_vs_qemu", "bwemu boot (whole process) / QEMU pseries -bios",
                        None, "x", "<= 1.0",
                        f"skipped: qemu-system-ppc64 is not installed (Debian: "
                        f"qemu-system-ppc); bwemu boot alone: median "
                        f"{statistics.median(t) * 1000:.0f} ms of {pairs}", reproduce),
                _figure("cli_seconds", "bwemu boot, whole process, median",
                        statistics.median(t) * 1000, "ms", "", "", reproduce)]
    fw = FirmwareBuild()
    peer = QemuPeer()
    ours, theirs, ratios = [], [], []
    with tempfile.TemporaryDirectory(prefix="bwemu-bench-") as tmp:
        bios = Path(tmp) / "bios.bin"
        bios.write_bytes(bios_image(fw.compose()))
        peer.console(bios, settle=0.0)           # QEMU's own first start (page cache)
        for i in range(pairs):
            def q() -> float:
                run = peer.console(bios, settle=0.0)
                if run.reason != "handoff":
                    raise BenchError(f"QEMU did not reach the hand-off line ({run.reason})")
                return run.seconds
            # Alternate which side goes first, so neither always follows the other.
            if i % 2:
                b, a = q(), _cli_once(cmd)
            else:
                a, b = _cli_once(cmd), q()
            ours.append(a)
            theirs.append(b)
            ratios.append(a / b)
    med = statistics.median
    detail = (f"median of {pairs} per-pair ratios; bwemu {med(ours) * 1000:.0f} ms, "
              f"QEMU {med(theirs) * 1000:.0f} ms (medians; QEMU ended at its "
              f"'entering kernel' line)")
    return [_figure("cli_vs_qemu", "bwemu boot (whole process) / QEMU pseries -bios",
                    med(ratios), "x", "<= 1.0", detail, reproduce),
            _figure("cli_seconds", "bwemu boot, whole process, median", med(ours) * 1000,
                    "ms", "", "", reproduce),
            _figure("qemu_seconds", "QEMU pseries -bios to the hand-off line, median",
                    med(theirs) * 1000, "ms", "", "", reproduce)]


# --- in-process boots ------------------------------------------------------------------------


@dataclass
class BootTimes:
    wall: list[float] = field(default_factory=list)     # whole boot: set-up, run, result
    cpu: list[float] = field(default_factory=list)      # the same in this thread's CPU time
    guest: list[float] = field(default_factory=list)    # emu_start only (BootResult.seconds)


def in_process(boots: int) -> list[Figure]:
    import statistics

    from .harness.boot import boot
    from .harness.firmware import FirmwareBuild
    from .harness.runner import BootRunner
    from .harness.scenario import default_scenario
    sc = default_scenario()
    fw = FirmwareBuild(policy=sc.policy)
    def uncounted() -> Any:
        # Nothing attached and no instruction count: emu_start with count=0,
        # so no budget (measurement only; Machine.run always counts).
        b = BootRunner(sc, fw)
        real = b.machine.uc.emu_start
        b.machine.uc.emu_start = (   # type: ignore[method-assign]
            lambda begin, until, timeout=0, count=0: real(begin, until, timeout, 0))
        return b.run()

    kinds: dict[str, Callable[[], Any]] = {
        "checked": lambda: boot(sc, fw),                      # what `bwemu boot` runs
        "bare": lambda: BootRunner(sc, fw).run(),             # nothing attached
        "uncounted": uncounted,                               # ... and no count=
        "no ring": lambda: boot(sc, fw, debug=False),         # without the ring buffer
        "no watch": lambda: boot(sc, fw, watch=False),        # without the watch
    }
    times = {k: BootTimes() for k in kinds}
    for make in kinds.values():
        make()                                                # warm-up
    for _ in range(boots):
        for name, make in kinds.items():                      # interleaved
            t0, c0 = time.perf_counter(), time.thread_time()
            r = make()
            times[name].wall.append(time.perf_counter() - t0)
            times[name].cpu.append(time.thread_time() - c0)
            times[name].guest.append(r.seconds)
            if r.exit != "kernel" or (name == "checked" and not r.passed):
                raise BenchError(f"the default boot ({name}) did not pass: {r.message}")
    n = boot(sc, fw, count_instructions=True).instructions or 0
    med = statistics.median
    checked, bare = times["checked"], times["bare"]
    per_boot = med(checked.wall)
    out = [
        _figure("boots_per_second", "in-process checked boots per second, default scenario",
                1 / per_boot, "/s", ">= 150",
                f"median whole boot {per_boot * 1000:.1f} ms of {boots} (set-up "
                f"{(per_boot - med(checked.guest)) * 1000:.1f} ms, guest run "
                f"{med(checked.guest) * 1000:.1f} ms); one process, one core; in CPU "
                f"time {med(checked.cpu) * 1000:.1f} ms a boot ({1 / med(checked.cpu):.0f}/s)"),
        _figure("guest_mips_checked", "guest instructions/s, default boot, all checkers",
                n / med(checked.guest) / 1e6, "M/s", ">= 200",
                f"{n:,} instructions (counted in a separate boot) / median guest run "
                f"{med(checked.guest) * 1000:.1f} ms"),
        _figure("guest_mips_bare", "the same with nothing attached (this build's ceiling)",
                n / med(bare.guest) / 1e6, "M/s", "",
                f"median guest run {med(bare.guest) * 1000:.1f} ms; the budget's count= "
                f"still on (Machine.run)"),
        _figure("guest_mips_uncounted", "... and without count= (no budget: Unicorn's own)",
                n / med(times["uncounted"].guest) / 1e6, "M/s", "",
                f"median guest run {med(times['uncounted'].guest) * 1000:.1f} ms: what "
                f"count= costs is {1 - med(times['uncounted'].guest) / med(bare.guest):.0%} "
                f"of the bare run"),
    ]
    # Each aid's share: best of N with it against best of N without, the
    # way scripts/bench-watch and bench-debug have always measured it.
    for key, name, what in (("ring_cost", "no ring", "ring buffer and inspector"),
                            ("watch_cost", "no watch", "protected-range watch")):
        with_it, without = min(checked.guest), min(times[name].guest)
        out.append(_figure(key, f"the {what}, share of guest run time",
                           (with_it - without) / without * 100, "%", "<= 10",
                           f"best of {boots}: {without * 1000:.2f} ms without, "
                           f"{with_it * 1000:.2f} ms with"))
    return out


# --- the range table ----------------------------------------------------------------------------


def mirrored_ops(operations: int) -> Figure:
    import random

    from .harness.firmware import FirmwareBuild
    from .harness.range_harness import RangeHarness
    from .harness.ranges_check import SequenceMaker
    h = RangeHarness(FirmwareBuild().ensure_built().wrapper_elf)
    maker = SequenceMaker(random.Random(1), 30)
    batches: list[list[Any]] = []
    total = 0
    while total < operations:
        ops = maker.sequence()
        if not h.copy_conflicts(ops):
            batches.append(ops)
            total += len(ops)
    t0 = time.perf_counter()
    for ops in batches:
        h.reset()
        h.run(ops)
    took = time.perf_counter() - t0
    h.close()
    return _figure("mirrored_ops_per_second", "range-table operations/s, guest + lockstep mirror",
                   total / took, "/s", ">= 100,000",
                   f"{total:,} operations of `bwemu ranges-check`'s sequences in "
                   f"{took:.2f} s, each a guest call checked against the model",
                   "bwemu bench (also scripts/bench-ranges)")


def differential(examples: int) -> Figure:
    """The differential of tests/test_differential.py, run in this process:
    the same hypothesis strategy, settings and per-example function; N
    examples, scaled to 20,000 when N is fewer."""
    what = "the 20,000-example differential (tests/test_differential.py)"
    reproduce = ("bwemu bench --differential-examples 20000; or .venv/bin/python -m "
                 "pytest -m slow -k 20000 tests/test_differential.py")
    tests = ROOT / "tests"
    if not (tests / "strategies.py").exists():
        return _figure("differential_seconds", what, None, "s", "<= 60",
                       "skipped: needs a checkout's tests/ (hypothesis strategies)", reproduce)
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return _figure("differential_seconds", what, None, "s", "<= 60",
                       "skipped: hypothesis is not installed (pip install -e .[test])",
                       reproduce)
    for p in (str(ROOT), str(tests)):
        if p not in sys.path:
            sys.path.insert(0, p)
    import importlib

    from hypothesis import given, settings
    # Imported by name: the test suite's own modules, not part of the package.
    strategies = importlib.import_module("tests.strategies")
    suite = importlib.import_module("tests.test_differential")

    from .harness.firmware import FirmwareBuild
    from .harness.range_harness import RangeHarness
    h = RangeHarness(FirmwareBuild().ensure_built().wrapper_elf)
    ops = [0]

    @settings(max_examples=examples, **suite.DIFF_SETTINGS)
    @given(strategies.any_sequence)
    def check(seq: list[Any]) -> None:
        ops[0] += len(seq)
        suite.run_guest(h, seq)

    t0 = time.perf_counter()
    check()
    took = time.perf_counter() - t0
    h.close()
    scaled = took * 20_000 / examples
    how = (f"{examples:,} examples in {took:.1f} s" +
           ("" if examples == 20_000 else ", scaled to 20,000") +
           f"; {ops[0]:,} operations, {ops[0] / took:,.0f} ops/s including hypothesis' "
           f"generation")
    return _figure("differential_seconds", what, scaled, "s", "<= 60", how, reproduce)


# --- memory ------------------------------------------------------------------------------------


#: A `bwemu boot` in a process of its own that reports its own peak RSS:
#: VmHWM, the high-water mark of its own address space.  Not ru_maxrss,
#: which Linux carries over exec from the process that started it (here
#: the bench itself, hundreds of MiB after the differential) and which
#: counts a `make` the boot may start; ru_maxrss only where there is no /proc.
_RSS_DRIVER = """
import contextlib, io, resource, sys
from emulator.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(sys.argv[1:])
kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            kib = int(line.split()[1])
except OSError:
    pass
print("RSS", kib, rc, file=sys.stderr)
"""


def peak_rss() -> Figure:
    import subprocess
    cmd = [sys.executable, "-c", _RSS_DRIVER, "boot", "--memory", BIG_MEMORY]
    subprocess.run(cmd, capture_output=True)          # warm: a rebuild, the caches
    proc = subprocess.run(cmd, capture_output=True, text=True)
    tail = proc.stderr.rsplit("RSS", 1)
    if len(tail) != 2 or tail[1].split()[1] != "0":
        raise BenchError(f"bwemu boot --memory {BIG_MEMORY} did not pass: "
                         f"{proc.stderr[-300:]}")
    mib = int(tail[1].split()[0]) / 1024          # Linux reports KiB
    return _figure("peak_rss_16g_mib", f"peak resident memory, a boot with {BIG_MEMORY} "
                   f"of RAM described", mib, "MiB", "<= 150",
                   f"VmHWM of a `bwemu boot --memory {BIG_MEMORY}` process (its second "
                   f"run: caches warm, no rebuild)",
                   f"bwemu bench; /usr/bin/time -v bwemu boot --memory {BIG_MEMORY}")


# --- the command ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import json
    import platform
    load = os.getloadavg()
    t0 = time.perf_counter()
    sections: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("whole CLI process against the peer", lambda: cli_vs_qemu(args.pairs)),
        ("in-process boots (default scenario)", lambda: in_process(args.boots)),
        ("the range table", lambda: [mirrored_ops(args.operations),
                                      differential(args.differential_examples)]),
        ("memory", lambda: [peak_rss()]),
    ]
    figures: list[Figure] = []
    for title, measure in sections:
        print(f"{title}:", flush=True)
        try:
            found = measure()
        except BenchError as e:
            print(f"bwemu bench: {e}", file=sys.stderr)
            return 1
        for f in found:
            print(f.line(), flush=True)
        figures += found
    after = os.getloadavg()
    took = time.perf_counter() - t0
    missed = [f.key for f in figures if f.met is False]
    print(f"load average {load[0]:.2f} before, {after[0]:.2f} after, on "
          f"{os.cpu_count()} cores; {took:.0f} s; "
          + (f"{len(missed)} target(s) missed: {', '.join(missed)} (docs/performance.md "
             f"says why)" if missed else "every target met"))
    if args.json is not None:
        doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform(),
                           "load_before": list(load), "load_after": list(after)},
               "seconds": round(took, 1),
               "figures": {f.key: f.to_json() for f in figures}}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("bench", help="measure every performance target in one run",
                       description="Every figure of docs/performance.md in one run: the "
                       "CLI boot against QEMU pseries -bios, in-process boots per second, "
                       "guest instructions per second with every checker and with none, "
                       "mirrored range operations per second, the 20,000-example "
                       "differential, peak memory of a 16 GiB boot, and what the ring "
                       "buffer and the watch cost.  Targets are printed, never asserted.")
    s.add_argument("--pairs", type=count, default=9, metavar="N",
                   help="bwemu/QEMU whole-process pairs (default 9)")
    s.add_argument("--boots", type=count, default=30, metavar="N",
                   help="in-process boots of each kind (default 30)")
    s.add_argument("--operations", type=count, default=20_000, metavar="N",
                   help="mirrored range operations (default 20000)")
    s.add_argument("--differential-examples", type=count, default=2000, metavar="N",
                   help="differential examples run, scaled to 20,000 (default 2000; "
                   "20000 runs it whole)")
    s.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    s.set_defaults(func=run)


__all__ = ["Figure", "add_parser", "run"]
