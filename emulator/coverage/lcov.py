"""Execution counts of boots -> source lines -> an lcov tracefile.

A line's count in one boot is the largest count among the instructions
the line table gives it (a line run once whose loop body ran ten times
is not a line run eleven times, and an alignment nop after a function
that never runs does not make its closing line unrun).  Over several
boots the counts add up, as `lcov -a` adds the tracefiles of separate
runs.  A function's count is its entry instruction's (lines.Function).

Lines with no instruction in any image (comments, declarations) are not
in the tracefile; lines with instructions that never ran are, with
count 0.  The format is lcov's tracefile (geninfo(1)): per source file
SF, FN/FNDA/FNF/FNH, DA/LF/LH, end_of_record, under one TN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .lines import LineMap
from .recorder import CoverageFindings

TEST_NAME = "bwemu"
#: What lcov takes as a test name (lcov(1), --test-name: letters, decimal
#: digits and "_"; geninfo turns anything else into "_", and genhtml reads
#: a TN line only up to a comma).  Empty is lcov's own default.
TEST_NAME_CHARS = re.compile(r"[A-Za-z0-9_]*")


class LcovNameError(InputError):
    """A test name lcov's TN line cannot hold."""


def check_test_name(name: str, what: str = "test name") -> str:
    """name, if lcov can hold it as a TN; else LcovNameError saying why,
    naming it as what (the option that gave it)."""
    if TEST_NAME_CHARS.fullmatch(name) is None:
        bad = sorted({c for c in name if TEST_NAME_CHARS.fullmatch(c) is None})
        raise LcovNameError(f"{what} {name!r}: lcov takes only letters, digits and "
                            f"'_' in a test name, not {', '.join(map(repr, bad))}")
    return name


@dataclass
class FileCoverage:
    lines: dict[int, int] = field(default_factory=dict)        # line -> count
    functions: dict[str, list[int]] = field(default_factory=dict)   # name -> [line, count]

    @property
    def lines_hit(self) -> int:
        return sum(1 for n in self.lines.values() if n)

    @property
    def functions_hit(self) -> int:
        return sum(1 for _, n in self.functions.values() if n)


@dataclass
class Tracefile:
    """Line and function counts per source file, over any number of boots."""
    files: dict[str, FileCoverage] = field(default_factory=dict)
    boots: int = 0

    def add(self, run: CoverageFindings, lines: LineMap) -> None:
        """One boot's counts, through its image's line map."""
        self.boots += 1
        best: dict[tuple[str, int], int] = {}
        for addr, where in lines.lines.items():
            n = run.counts.get(addr, 0)
            if n > best.get(where, -1):
                best[where] = n
        for (file, line), n in best.items():
            fc = self.files.setdefault(file, FileCoverage())
            fc.lines[line] = fc.lines.get(line, 0) + n
        for fn in lines.functions:
            fc = self.files.setdefault(fn.file, FileCoverage())
            entry = fc.functions.setdefault(fn.name, [fn.line, 0])
            entry[0] = min(entry[0], fn.line)
            entry[1] += run.counts.get(fn.entry, 0)

    def count(self, file: str | Path, line: int) -> int | None:
        """A line's count, None when the line has no instruction."""
        fc = self.files.get(str(file))
        return None if fc is None else fc.lines.get(line)

    @property
    def lines_found(self) -> int:
        return sum(len(f.lines) for f in self.files.values())

    @property
    def lines_hit(self) -> int:
        return sum(f.lines_hit for f in self.files.values())

    @property
    def functions_found(self) -> int:
        return sum(len(f.functions) for f in self.files.values())

    @property
    def functions_hit(self) -> int:
        return sum(f.functions_hit for f in self.files.values())

    def text(self, test_name: str = TEST_NAME) -> str:
        out = [f"TN:{check_test_name(test_name)}"]
        for path in sorted(self.files):
            fc = self.files[path]
            out.append(f"SF:{path}")
            functions = sorted(fc.functions.items(), key=lambda kv: (kv[1][0], kv[0]))
            out += [f"FN:{line},{name}" for name, (line, _) in functions]
            out += [f"FNDA:{n},{name}" for name, (_, n) in functions]
            out += [f"FNF:{len(functions)}", f"FNH:{fc.functions_hit}"]
            out += [f"DA:{line},{n}" for line, n in sorted(fc.lines.items())]
            out += [f"LF:{len(fc.lines)}", f"LH:{fc.lines_hit}", "end_of_record"]
            if path != sorted(self.files)[-1]:
                out.append(f"TN:{test_name}")
        return "\n".join(out) + "\n"

    def write(self, path: str | Path, test_name: str = TEST_NAME) -> None:
        Path(path).write_text(self.text(test_name))

    def merge(self, other: Tracefile) -> None:
        """Adds another's counts (as `lcov -a` adds tracefiles)."""
        self.boots += other.boots
        for path, theirs in other.files.items():
            ours = self.files.setdefault(path, FileCoverage())
            for line, n in theirs.lines.items():
                ours.lines[line] = ours.lines.get(line, 0) + n
            for name, (line, n) in theirs.functions.items():
                entry = ours.functions.setdefault(name, [line, 0])
                entry[0] = min(entry[0], line)
                entry[1] += n

    @classmethod
    def read(cls, path: str | Path) -> Tracefile:
        """A tracefile this module wrote (SF, FN, FNDA and DA are read)."""
        out = cls()
        fc: FileCoverage | None = None
        for text in Path(path).read_text().splitlines():
            key, _, value = text.partition(":")
            if key == "SF":
                fc = out.files.setdefault(value, FileCoverage())
            elif fc is None:
                continue
            elif key == "DA":
                line, n = value.split(",")[:2]
                fc.lines[int(line)] = fc.lines.get(int(line), 0) + int(n)
            elif key == "FN":
                line, name = value.split(",", 1)
                fc.functions.setdefault(name, [int(line), 0])
            elif key == "FNDA":
                n, name = value.split(",", 1)
                fc.functions.setdefault(name, [0, 0])[1] += int(n)
        return out


def read_lines(path: str | Path) -> dict[str, dict[int, int]]:
    """The DA counts of a tracefile, per source file (for checks)."""
    out: dict[str, dict[int, int]] = {}
    current: dict[int, int] | None = None
    for line in Path(path).read_text().splitlines():
        if line.startswith("SF:"):
            current = out.setdefault(line[3:], {})
        elif line.startswith("DA:") and current is not None:
            number, count = line[3:].split(",")[:2]
            current[int(number)] = current.get(int(number), 0) + int(count)
    return out


__all__ = ["FileCoverage", "TEST_NAME", "LcovNameError", "Tracefile", "check_test_name",
           "read_lines"]
