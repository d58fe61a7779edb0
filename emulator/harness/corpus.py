"""A directory of scenario files run as a suite, and golden files recorded.

collect() finds the files, load_all() checks every one before anything
runs, run_files() boots them (in parallel with jobs > 1) and checks each
against its [expect] (emulator/harness/expectation.py).  record() writes
what a boot did into a file's [expect] table, keeping its comments and
every other table; with check_only it only says what would change.

`bwemu run` and `bwemu record` (emulator/corpus_cli.py) are thin layers
over these; the pytest plugin (emulator/pytest_plugin.py) uses
boot_file() and expectation.check() the same way.
"""

from __future__ import annotations

import fcntl
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import InlineTable

from ..checkers.model import FATAL_KIND_OF_CODE
from ..errors import BwemuError, InputError
from ..guest.observer import Observer
from .boot import Boot
from .expectation import (
    Outcome,
    Verdict,
    actual_placements,
    check,
    overwritten_kinds,
    unjudged_phrase,
)
from .firmware import BUILD_ROOT
from .result import BootResult, ExitReason
from .scenario import ScenarioError
from .scenario_file import Expect, ScenarioFile, ScenarioFileError, load, parse_toml

SUFFIX = ".toml"


def collect(paths: Sequence[Path | str]) -> list[Path]:
    """The scenario files named, and every *.toml under the directories
    named, each once, sorted (a file named twice runs once).  A directory
    without any is refused by name: a mistyped path must not pass as a
    suite of no scenarios."""
    found: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            files = [f for f in p.rglob(f"*{SUFFIX}") if f.is_file()]
            if not files:
                raise ScenarioError(f"{p}: no scenario files (*{SUFFIX}) in this directory "
                                    f"or under it")
            found.update(files)
        elif p.is_file():
            found.add(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return sorted(found)


@contextmanager
def build_lock() -> Iterator[None]:
    """One process at a time builds or composes firmware: parallel workers
    (pytest-xdist, `bwemu run --jobs`) share build/, and make is not safe
    to run twice in one directory.  The boots themselves run in parallel."""
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with open(BUILD_ROOT / ".bwemu-build.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def boot_file(sf: ScenarioFile, observers: Sequence[Observer] = ()) -> BootResult:
    """Boots a scenario file's Scenario with the default checkers (and any
    other observers: the coverage recorder of --bwemu-cov)."""
    with build_lock():
        prepared = Boot(sf.scenario, observers=observers)
    return prepared.run()


# --- running a suite ---------------------------------------------------------

@dataclass
class CaseResult:
    """One file's run, as plain data (it crosses process boundaries)."""
    path: str
    name: str
    verdict: str                 # a Verdict's value, or "error"
    seconds: float
    summary: str                 # one line
    text: str                    # expected and actual side by side, or the error
    properties: list[tuple[str, str]] = field(default_factory=list)
    #: Every checker's standing, name -> {"state", "detail"} (none for an error).
    checks: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The checkers that did not judge the boot, each "name: state (why)",
    #: and the same in short ("mirror, model not attached").
    not_checked: list[str] = field(default_factory=list)
    unjudged: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict in (Verdict.PASSED.value, Verdict.XFAILED.value)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.path, "name": self.name, "verdict": self.verdict,
                "passed": self.passed, "seconds": round(self.seconds, 3),
                "summary": self.summary, "properties": dict(self.properties),
                "checks": self.checks, "not_checked": self.not_checked,
                "text": self.text}


def error_case(path: Path | str, name: str, message: str, seconds: float = 0.0) -> CaseResult:
    return CaseResult(str(path), name, "error", seconds, message, message)


def run_one(sf: ScenarioFile) -> CaseResult:
    """Boots one checked file and judges it; never raises."""
    t0 = time.perf_counter()
    try:
        result = boot_file(sf)
        outcome = check(result, sf.expect, sf.xfail)
    except BwemuError as e:
        return error_case(sf.path, sf.name, f"{sf.path}: {e}", time.perf_counter() - t0)
    except Exception:   # noqa: BLE001 - a crash is one case's result, not the run's end
        return error_case(sf.path, sf.name, f"{sf.path}: internal error:\n"
                          f"{traceback.format_exc()}", time.perf_counter() - t0)
    return case_of(sf, outcome, time.perf_counter() - t0)


def case_of(sf: ScenarioFile, outcome: Outcome, seconds: float) -> CaseResult:
    return CaseResult(str(sf.path), sf.name, outcome.verdict.value, seconds,
                      outcome.summary(), outcome.text(), outcome.properties(),
                      outcome.checks, [str(c) for c in outcome.not_checked],
                      unjudged_phrase(outcome.not_checked))


def load_all(paths: Sequence[Path]) -> tuple[list[ScenarioFile], list[CaseResult]]:
    """Every file checked before anything runs: the good ones, and one
    error case (its one line) for each bad one."""
    good, bad = [], []
    for p in paths:
        try:
            good.append(load(p))
        except ScenarioFileError as e:
            bad.append(error_case(p, p.stem, str(e)))
    return good, bad


def run_files(files: Sequence[ScenarioFile], jobs: int = 1,
              on_done: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Boots every file, jobs at a time; results in the files' order.
    on_done(case) is called as each finishes (for a progress display)."""
    results: dict[int, CaseResult] = {}
    if jobs <= 1 or len(files) <= 1:
        for i, sf in enumerate(files):
            results[i] = run_one(sf)
            if on_done:
                on_done(results[i])
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(run_one, sf): i for i, sf in enumerate(files)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if on_done:
                    on_done(results[futures[fut]])
    return [results[i] for i in range(len(files))]


# --- recording golden files ----------------------------------------------------

@dataclass(frozen=True)
class Change:
    key: str
    old: Any          # None: not in the file
    new: Any          # None: dropped from the file

    def __str__(self) -> str:
        return f"[expect] {self.key}: {_show(self.old)} -> {_show(self.new)}"


def _show(v: Any) -> str:
    if v is None:
        return "(absent)"
    if isinstance(v, bool) or not isinstance(v, int):
        return "[" + ", ".join(map(repr, v)) + "]" if isinstance(v, list) else repr(v)
    return f"0x{v:x}"


@dataclass
class Recorded:
    path: Path
    changes: list[Change]
    written: bool
    notes: list[str] = field(default_factory=list)   # what [expect] cannot pin


#: The order of the keys record writes.
EXPECT_KEYS = ("exit", "fatal", "message", "kernel", "dtb", "initrd", "overwritten")


def observed(r: BootResult, message: str | None = None) -> dict[str, Any]:
    """What the boot did, as [expect] keys.  message: the file's own regex,
    kept when it still matches (else the exit message, escaped)."""
    out: dict[str, Any] = {"exit": r.exit.value}
    if r.exit is ExitReason.FATAL and r.fatal_code in FATAL_KIND_OF_CODE:
        out["fatal"] = FATAL_KIND_OF_CODE[r.fatal_code]
    if message is not None and re.search(message, r.message) is not None:
        out["message"] = message
    elif r.exit is not ExitReason.KERNEL:
        out["message"] = re.escape(r.message)
    if r.exit is ExitReason.KERNEL:
        out.update(actual_placements(r))
    out["overwritten"] = list(overwritten_kinds(r))
    return out


def expect_of(values: dict[str, Any]) -> Expect:
    """An Expect from [expect] keys as observed() gives them."""
    return Expect(exit=values["exit"], message=values.get("message"),
                  fatal=values.get("fatal"), kernel=values.get("kernel"),
                  dtb=values.get("dtb"), initrd=values.get("initrd"),
                  overwritten=tuple(values.get("overwritten", ())))


def _toml_value(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return tomlkit.integer(f"0x{v:x}")
    return v


def record(path: Path | str, check_only: bool = False) -> Recorded:
    """Boots the file and writes what happened into its [expect] (unless
    check_only); the changes are what differs from the [expect] it had."""
    path = Path(path)
    sf = load(path)
    r = boot_file(sf)
    source = _read_as_is(path)
    old: dict[str, Any] = dict(parse_toml(path, source).get("expect", {}))
    if old and "overwritten" not in old:
        old["overwritten"] = []        # an [expect] without it expects no overwrite
    new = observed(r, sf.expect.message if sf.expect is not None else None)
    changes = [Change(k, old.get(k), new.get(k)) for k in EXPECT_KEYS
               if old.get(k) != new.get(k)]
    outcome = check(r, expect_of(new))
    notes = [f"cannot be pinned by [expect]: {p}" for p in outcome.problems]
    notes += [f"not checked: {c}" for c in outcome.not_checked]
    if changes and not check_only:
        doc = tomlkit.parse(source)
        table = doc.get("expect")
        if table is None:
            table = tomlkit.table()
            doc.add(tomlkit.nl())
            doc["expect"] = table
        if isinstance(table, InlineTable):
            doc["expect"] = _inline_expect(table, old, new)
        else:
            for k in list(table.keys()):
                if k in EXPECT_KEYS and k not in new:
                    del table[k]
            for k in EXPECT_KEYS:
                if k in new and old.get(k) != new[k]:
                    table[k] = _toml_value(new[k])
        text = tomlkit.dumps(doc)
        if "\r\n" in source and "\n" not in source.replace("\r\n", ""):
            text = re.sub(r"(?<!\r)\n", "\r\n", text)   # a CRLF file stays CRLF
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return Recorded(path, changes, bool(changes) and not check_only, notes)


def _read_as_is(path: Path) -> str:
    """The file's text with its line endings as they are (CRLF kept)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def _inline_expect(table: InlineTable, old: dict[str, Any], new: dict[str, Any]
                   ) -> InlineTable:
    """An inline `expect = { ... }` with what changed: each key in its
    place, written as it was (its value too, unless that changed), keys
    no longer observed left out and changed ones it lacked at the end (as
    for a table); ", " between keys, and the space inside the braces as
    the file had it.  (tomlkit, left to itself, appends `,key = v` with no
    space.)"""
    pad = " " if table.as_string().startswith("{ ") else ""
    items = []
    for key, item in table.value.body:
        if key is None:
            continue                        # the whitespace between items
        name = key.key
        if name in EXPECT_KEYS and name not in new:
            continue
        changed = name in new and old.get(name) != new[name]
        value = tomlkit.item(_toml_value(new[name])) if changed else item
        items.append(f"{key.as_string()}{key.sep}{value.as_string()}")   # `k = ` as it was
    items += [f"{k} = {tomlkit.item(_toml_value(new[k])).as_string()}" for k in EXPECT_KEYS
              if k in new and k not in table and old.get(k) != new[k]]
    fresh = tomlkit.parse(f"expect = {{{pad}{', '.join(items)}{pad}}}")["expect"]
    assert isinstance(fresh, InlineTable)
    for attr in ("indent", "comment_ws", "comment", "trail"):
        setattr(fresh.trivia, attr, getattr(table.trivia, attr))
    return fresh


__all__ = ["CaseResult", "Change", "Recorded", "boot_file", "build_lock", "collect",
           "load_all", "observed", "record", "run_files", "run_one"]
