"""`bwemu run` and `bwemu record`: scenario files from the command line.

The logic is emulator/harness/corpus.py; this is their text: a progress
bar while a suite runs, a summary table at the end, JSON on request.
Each command registers itself with one call from emulator/cli.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .argtypes import jobs

if TYPE_CHECKING:
    from .harness.corpus import CaseResult
# emulator.harness.corpus (tomlkit, the process pool) is imported by the
# commands themselves: every other bwemu command starts without it.

BAR = 30


class Progress:
    """A one-line bar on a terminal, redrawn as each scenario finishes;
    on anything else (a CI log) nothing until the summary."""

    def __init__(self, total: int, stream: TextIO, live: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream
        self.live = stream.isatty() if live is None else live

    def __call__(self, case: CaseResult) -> None:
        self.done += 1
        self.failed += not case.passed
        if not self.live:
            return
        filled = BAR * self.done // max(self.total, 1)
        bad = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {self.done}/{self.total}"
                          f"{bad}  {case.name[:40]:40s}")
        self.stream.flush()

    def finish(self) -> None:
        if self.live and self.done:
            self.stream.write("\r" + " " * (BAR + 60) + "\r")
            self.stream.flush()


def summary_table(cases: list[CaseResult]) -> str:
    """scenario, verdict, time: one row each, followed by the checkers
    that did not judge that scenario's boot, if any."""
    width = max([len("scenario")] + [len(c.name) for c in cases])
    lines = [f"{'scenario':{width}}  {'verdict':8}  {'time':>7}"]
    for c in cases:
        unjudged = f"  ({c.unjudged})" if c.unjudged else ""
        lines.append(f"{c.name:{width}}  {c.verdict:8}  {c.seconds:6.2f}s{unjudged}")
    return "\n".join(lines)


def totals(cases: list[CaseResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in cases:
        out[c.verdict] = out.get(c.verdict, 0) + 1
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from .harness import corpus
    t0 = time.perf_counter()
    paths = corpus.collect(args.paths)
    files, bad = corpus.load_all(paths)
    for case in bad:       # mistakes before anything runs, one line each
        print(f"bwemu run: {case.text}", file=sys.stderr)
    progress = Progress(len(files), sys.stderr, live=None if not args.json else False)
    cases = corpus.run_files(files, args.jobs, progress)
    progress.finish()
    wall = time.perf_counter() - t0
    everything = sorted(cases + bad, key=lambda c: c.path)
    count = totals(everything)
    unjudged = [c for c in everything if c.not_checked]
    if args.json:
        out: dict[str, Any] = {"scenarios": [c.to_json() for c in everything],
                               "totals": count, "not_fully_checked": len(unjudged),
                               "seconds": round(wall, 3),
                               "passed": all(c.passed for c in everything)}
        print(json.dumps(out, indent=2))
    else:
        print(summary_table(everything))
        for c in everything:
            if not c.passed and c.verdict != "error":
                print()
                print(c.text)
        if unjudged:
            # As `bwemu boot` does: a checker that did not judge is named, with why.
            print()
            print("not checked (never counted as passed):")
            for c in unjudged:
                print("\n".join(f"  {c.name}: {line}" for line in c.not_checked))
        print()
        print(f"{len(everything)} scenarios: "
              + ", ".join(f"{n} {v}" for v, n in sorted(count.items()))
              + f" in {wall:.1f} s ({args.jobs} job{'s' if args.jobs > 1 else ''})"
              + (f"; {len(unjudged)} not checked by every checker" if unjudged else ""))
    if bad:
        return 2
    return 0 if all(c.passed for c in cases) else 1


def cmd_record(args: argparse.Namespace) -> int:
    from .harness import corpus
    changed = False
    for path in corpus.collect(args.files):
        rec = corpus.record(path, check_only=args.check)
        changed |= bool(rec.changes)
        if not rec.changes:
            print(f"{path}: [expect] unchanged")
        for ch in rec.changes:
            print(f"{path}: {ch}" + ("" if args.check else "  (written)"))
        for note in rec.notes:
            print(f"{path}: note: {note}")
    return 1 if args.check and changed else 0


def add_run_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="boot every scenario file of directories or files",
                       description="Boot scenario files (docs/scenarios.md) and check each "
                       "against its [expect]: a progress bar, then a summary table.  Exit "
                       "status 0 only when all pass, 1 when one fails, 2 when a file is bad.")
    p.add_argument("paths", nargs="+", type=Path, metavar="DIR_OR_FILE")
    p.add_argument("--jobs", "-j", type=jobs, default=1, metavar="N",
                   help=f"boots at a time (this machine has {os.cpu_count()} cores)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_run)


def add_record_parser(sub: Any) -> None:
    p = sub.add_parser("record", help="write what a boot does into its file's [expect]",
                       description="Boot each scenario file and write the observed exit, "
                       "placements and overwrites into its [expect] table (comments and "
                       "other tables are kept): a golden file that pins today's behaviour.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--check", action="store_true",
                   help="write nothing; list what would change (exit 1 if anything would)")
    p.set_defaults(func=cmd_record)


__all__ = ["Progress", "add_record_parser", "add_run_parser", "summary_table"]
