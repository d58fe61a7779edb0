"""`bwemu coverage [SCENARIO...] -o wrapper.info`: registered with one call
from emulator/cli.py (add_coverage_parser); the work is in run.py."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..argtypes import jobs
from ..debug.outputs import check_writable, write_output

if TYPE_CHECKING:
    from .run import BootLine

DEFAULT_OUTPUT = "wrapper.info"


def _shown(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _percent(hit: int, found: int) -> str:
    return f"{100 * hit / found:5.1f} %" if found else "    - "


def cmd_coverage(args: argparse.Namespace) -> int:
    # Imported here: the recorder and the DWARF reader are no part of the
    # other commands (a `bwemu boot` would pay ~20 ms to load pyelftools).
    from .lcov import check_test_name
    from .run import run, targets
    t0 = time.perf_counter()
    # What can be refused is refused before the first boot.
    check_test_name(args.test_name, "--test-name")
    check_writable(args.output, "-o")
    boots = targets(args.scenarios)
    live = sys.stderr.isatty()
    done = [0]

    def progress(line: BootLine) -> None:
        done[0] += 1
        if line.error:
            print(f"bwemu coverage: {line.name}: {line.error}", file=sys.stderr)
        elif live:
            sys.stderr.write(f"\r[{done[0]}/{len(boots)}] {line.name[:50]:50s}")
            sys.stderr.flush()
    result = run(boots, per_instruction=args.per_instruction, jobs=args.jobs,
                 progress=progress)
    if live:
        sys.stderr.write("\r" + " " * 70 + "\r")
    tf = result.tracefile
    write_output(args.output, tf.text(args.test_name), "-o")
    exits: dict[str, int] = {}
    for b in result.boots:
        exits[b.exit] = exits.get(b.exit, 0) + 1
    how = ", ".join(f"{n} {e}" for e, n in sorted(exits.items()))
    print(f"coverage of {len(result.boots)} boots ({how}) in "
          f"{time.perf_counter() - t0:.1f} s, counted per "
          f"{'instruction' if args.per_instruction else 'block'}:")
    width = max([len("file")] + [len(_shown(f)) for f in tf.files])
    print(f"  {'file':{width}}  {'lines':>11}  {'':7}  {'functions':>9}")
    for path in sorted(tf.files):
        fc = tf.files[path]
        print(f"  {_shown(path):{width}}  {fc.lines_hit:5} / {len(fc.lines):<4} "
              f"{_percent(fc.lines_hit, len(fc.lines))}  "
              f"{fc.functions_hit:3} / {len(fc.functions):<3}")
    print(f"  {'total':{width}}  {tf.lines_hit:5} / {tf.lines_found:<4} "
          f"{_percent(tf.lines_hit, tf.lines_found)}  "
          f"{tf.functions_hit:3} / {tf.functions_found:<3}")
    print(f"wrote {args.output}; render it with: genhtml {args.output} -o coverage-html")
    if args.missed:
        print()
        print("lines never run (a range spans lines with no instruction between them):")
        for path in sorted(tf.files):
            for first, last, text in missed(path, tf.files[path].lines):
                where = f"{first}" if first == last else f"{first}-{last}"
                print(f"  {_shown(path)}:{where:9s} {text}")
    return 1 if result.errors else 0


def missed(path: str, lines: dict[int, int]) -> list[tuple[int, int, str]]:
    """The never-run lines of a file as runs (first, last, first's source
    text): lines with a count, in order, zero ones that follow each other
    in that order joined."""
    try:
        source = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        source = []
    out: list[tuple[int, int, str]] = []
    start = prev = None
    for line in [*sorted(lines), None]:
        if line is not None and lines[line] == 0:
            if start is None:
                start = line
            prev = line
            continue
        if start is not None and prev is not None:
            text = source[start - 1].strip() if start <= len(source) else ""
            out.append((start, prev, text))
        start = prev = None
    return out


def add_coverage_parser(sub: Any) -> None:
    p = sub.add_parser("coverage", help="which lines of the wrapper the scenarios run: an "
                       "lcov tracefile",
                       description="Boot scenarios with every instruction of the wrapper "
                       "counted (per translation block, exactly), map the counts to source "
                       "lines through the DWARF line table and write an lcov tracefile "
                       "(genhtml renders it).  A line's count is the largest among its "
                       "instructions, added up over the boots.  docs/coverage.md")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="scenario files, directories of them, or names (`bwemu scenarios`); "
                   "default: every named scenario of the corpus (scenarios/)")
    p.add_argument("-o", "--output", default=DEFAULT_OUTPUT, metavar="FILE",
                   help=f"the tracefile to write (default {DEFAULT_OUTPUT})")
    p.add_argument("--jobs", "-j", type=jobs, default=1, metavar="N",
                   help=f"boots at a time (this machine has {os.cpu_count()} cores)")
    p.add_argument("--per-instruction", action="store_true",
                   help="count with a hook on every instruction instead: several times "
                   "slower, the reference the block counts are checked against")
    p.add_argument("--missed", action="store_true",
                   help="also list the lines never run, file by file (docs/coverage.md)")
    p.add_argument("--test-name", default="bwemu", metavar="NAME",
                   help="the tracefile's TN (lcov test name: letters, digits and '_')")
    p.set_defaults(func=cmd_coverage)


__all__ = ["add_coverage_parser", "cmd_coverage", "missed"]
