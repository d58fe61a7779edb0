"""Boots under a recorder, added up into one Tracefile.

Which boots: the named scenarios of the corpus (scenarios/, through
scenarios_lib, each under its own file's policy), or those given: a
scenario file or a directory of them, or a corpus name; `default` is the
built-in default scenario when the corpus has no file of that name.  Each
boot has the default checkers, as in `bwemu run`, so it runs exactly as
the corpus runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BwemuError
from ..guest.observer import Observer
from ..harness import scenarios_lib
from ..harness.boot import Boot
from ..harness.corpus import build_lock, collect
from ..harness.scenario import Scenario, ScenarioError, default_scenario
from ..harness.scenario_file import load
from .lcov import Tracefile
from .lines import line_map
from .recorder import BlockRecorder, CoverageFindings, InstructionRecorder

DEFAULT = "default"


@dataclass(frozen=True)
class Target:
    name: str
    scenario: Scenario


@dataclass
class BootLine:
    """How one boot went, for the summary."""
    name: str
    exit: str
    instructions: int
    seconds: float
    error: str = ""


@dataclass
class CoverageRun:
    tracefile: Tracefile
    boots: list[BootLine] = field(default_factory=list)

    @property
    def errors(self) -> list[BootLine]:
        return [b for b in self.boots if b.error]


def targets(specs: Sequence[str] = ()) -> list[Target]:
    """The boots to run for these command-line words (module doc)."""
    if not specs:
        names = scenarios_lib.names()
        if not names:
            return [Target(DEFAULT, default_scenario())]
        return [Target(n, scenarios_lib.SCENARIOS[n].build()) for n in names]
    out: list[Target] = []
    for spec in specs:
        if Path(spec).exists():
            for path in collect([spec]):     # refuses a directory without scenarios
                sf = load(path)
                out.append(Target(sf.name, sf.scenario))
        elif spec in scenarios_lib.names():
            out.append(Target(spec, scenarios_lib.SCENARIOS[spec].build()))
        elif spec == DEFAULT:
            out.append(Target(DEFAULT, default_scenario()))
        else:
            raise ScenarioError(f"{spec!r} is neither a scenario file or directory nor a "
                                f"named scenario (`bwemu scenarios` lists them)")
    return out


def boot_one(target: Target, per_instruction: bool = False
             ) -> tuple[BootLine, CoverageFindings | None]:
    """One boot with a recorder (the block one, or the per-instruction
    reference): how it went, and its counts.  Never raises for the boot's
    own sake: a boot that cannot start is a BootLine with its error."""
    recorder: Observer = InstructionRecorder() if per_instruction else BlockRecorder()
    t0 = time.perf_counter()
    try:
        with build_lock():
            prepared = Boot(target.scenario, observers=[recorder])
        result = prepared.run()
    except BwemuError as e:
        return BootLine(target.name, "error", 0, time.perf_counter() - t0, str(e)), None
    found = result.findings.get("coverage")
    assert isinstance(found, CoverageFindings)
    return (BootLine(target.name, result.exit.value, found.instructions,
                     time.perf_counter() - t0), found)


def run(boots: Sequence[Target], *, per_instruction: bool = False, jobs: int = 1,
        progress: Callable[[BootLine], None] | None = None) -> CoverageRun:
    """Boots each target (jobs at a time, in worker processes when more
    than one) and adds its counts up, in the targets' order."""
    out = CoverageRun(Tracefile())
    results: dict[int, tuple[BootLine, CoverageFindings | None]] = {}
    if jobs <= 1 or len(boots) <= 1:
        for i, target in enumerate(boots):
            results[i] = boot_one(target, per_instruction)
            if progress is not None:
                progress(results[i][0])
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(boot_one, t, per_instruction): i
                       for i, t in enumerate(boots)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if progress is not None:
                    progress(results[futures[fut]][0])
    for i in range(len(boots)):
        line, found = results[i]
        out.boots.append(line)
        if found is not None and found.elf is not None:
            out.tracefile.add(found, line_map(found.elf))
    return out


__all__ = ["BootLine", "CoverageRun", "DEFAULT", "Target", "boot_one", "run", "targets"]
