"""`pytest --bwemu-cov FILE scenarios/`: the wrapper's line coverage over
the scenario files a pytest run boots, as one lcov tracefile.

The scenario plugin (emulator/pytest_plugin.py) calls in here: the
option, the recorder for each scenario boot, the boot's counts, and the
tracefile at the end.  Under pytest-xdist each worker writes its part
(FILE.<worker id>) and the controller adds the parts up into FILE.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from ..debug.outputs import OutputFileError, check_writable
from ..guest.observer import Observer
from .lcov import Tracefile
from .lines import line_map
from .recorder import BlockRecorder, CoverageFindings

OPTION = "bwemu_cov"
_TRACEFILE = pytest.StashKey[Tracefile]()
#: What the controller wrote, for the terminal summary.
WROTE = pytest.StashKey[str]()


def add_option(parser: pytest.Parser) -> None:
    parser.getgroup("bwemu").addoption(
        "--bwemu-cov", dest=OPTION, metavar="FILE",
        help="write the wrapper's line coverage over the scenario files booted to FILE "
        "(an lcov tracefile; docs/coverage.md)")


def check(config: pytest.Config) -> None:
    """Refuses a --bwemu-cov FILE that cannot be written before anything
    boots (it was found only at the session's end, as a traceback)."""
    target = config.getoption(OPTION, None)
    if target and getattr(config, "workerinput", None) is None:
        try:
            check_writable(target, "--bwemu-cov")
        except OutputFileError as e:
            raise pytest.UsageError(str(e)) from None


def observers(config: pytest.Config) -> list[Observer]:
    """A recorder for a scenario boot, when --bwemu-cov asks for one."""
    return [BlockRecorder()] if config.getoption(OPTION, None) else []


def record(config: pytest.Config, result: Any) -> None:
    """Adds a scenario boot's counts to the run's tracefile."""
    found = result.findings.get("coverage")
    if not isinstance(found, CoverageFindings) or found.elf is None:
        return
    tf = config.stash.setdefault(_TRACEFILE, Tracefile())
    tf.add(found, line_map(found.elf))


def write(session: pytest.Session) -> None:
    """The tracefile, at the end of the session (or this worker's part)."""
    config = session.config
    target = config.getoption(OPTION, None)
    if not target:
        return
    tf = config.stash.get(_TRACEFILE, Tracefile())
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        tf.write(f"{target}.{worker['workerid']}")
        return
    path = Path(target)
    for part in sorted(path.parent.glob(f"{path.name}.gw*")):
        tf.merge(Tracefile.read(part))
        with contextlib.suppress(OSError):
            part.unlink()
    tf.write(path)
    config.stash[WROTE] = (f"bwemu: line coverage written to {path}: {tf.lines_hit} of "
                           f"{tf.lines_found} lines run")


__all__ = ["OPTION", "WROTE", "add_option", "check", "observers", "record", "write"]
