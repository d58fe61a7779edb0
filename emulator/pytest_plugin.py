"""pytest plugin: every scenario file is a test (registered as the pytest11
entry point `bwemu`, so `pytest scenarios/` works once bwemu is installed).

Which .toml files are scenarios: those under a directory named
`scenarios` (at any depth), and any .toml named on the command line
(pyproject.toml and friends elsewhere are left alone).  Each file is one
item, named by its stem; pytest collects a directory's files sorted, so
every pytest-xdist worker sees the same order.

A bad file is one collection error line (the file and the key) and does
not stop the other files: the run goes on, and pytest's exit status still
says it failed.  A failing boot's report is the expectation outcome's
text: expected and actual side by side, the failed checks, every
overwrite with its function and source line, and the range-table
timeline.  For --junitxml, each item records its placements and verdict
as properties.

A checker that did not judge a file's boot (the mirror and the model are
not attached to a foreign image; a check without a verdict) is never
counted as passed: each such item records the checkers and why as the
property "not checked", and the terminal summary lists them in a section
of its own, as `bwemu boot` and `bwemu run` do.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .coverage import pytest_cov
from .errors import BwemuError
from .harness.corpus import SUFFIX, boot_file
from .harness.expectation import NOT_CHECKED, Outcome, Verdict, check
from .harness.scenario_file import ScenarioFile, ScenarioFileError, load

#: Names of files never taken for scenarios, wherever they are.
NOT_SCENARIOS = frozenset({"pyproject.toml", "setup.toml", "ruff.toml", ".ruff.toml",
                           "mypy.toml", "Cargo.toml", "poetry.toml", "pytest.toml"})
BAD_FILES = pytest.StashKey[int]()


def is_scenario(path: Path, session: pytest.Session) -> bool:
    if path.suffix != SUFFIX or path.name in NOT_SCENARIOS:
        return False
    return "scenarios" in path.parent.parts or session.isinitpath(path)


def pytest_addoption(parser: pytest.Parser) -> None:
    pytest_cov.add_option(parser)        # --bwemu-cov FILE: emulator/coverage/pytest_cov.py


def pytest_configure(config: pytest.Config) -> None:
    pytest_cov.check(config)             # an unwritable --bwemu-cov FILE, before any boot


def pytest_sessionfinish(session: pytest.Session) -> None:
    pytest_cov.write(session)            # the --bwemu-cov tracefile, if asked for


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario(file_path, parent.session):
        node: ScenarioFileNode = ScenarioFileNode.from_parent(parent, path=file_path)
        return node
    return None


class ScenarioFileNode(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            sf = load(self.path)
        except ScenarioFileError as e:
            stash = self.session.stash
            stash[BAD_FILES] = stash.get(BAD_FILES, 0) + 1
            # CollectError's text is shown as it is: one line, no traceback,
            # the file named as the user named it (relative where it can be).
            raise self.CollectError(f"{self._shown(e)}: {e.message}") from None
        yield ScenarioItem.from_parent(self, name=sf.name, spec=sf)

    def _shown(self, e: ScenarioFileError) -> str:
        rel = os.path.relpath(self.path, self.config.invocation_params.dir)
        where = self.path if rel.startswith("..") else rel
        return f"{where}:{e.line}" if e.line is not None else str(where)


class ScenarioFailed(BwemuError):
    """The boot did not do what its file expects (carried to repr_failure)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.summary())
        self.outcome = outcome


class ScenarioItem(pytest.Item):
    def __init__(self, *, spec: ScenarioFile, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        sf = self.spec
        result = boot_file(sf, observers=pytest_cov.observers(self.config))
        pytest_cov.record(self.config, result)       # --bwemu-cov
        outcome = check(result, sf.expect, sf.xfail)
        self.user_properties.extend(outcome.properties())
        if outcome.verdict is Verdict.XFAILED:
            pytest.xfail(f"{sf.xfail}: {outcome.summary()}")
        if not outcome.passed:
            raise ScenarioFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return f"{self.path}\n{excinfo.value.outcome.text()}"
        if isinstance(excinfo.value, BwemuError):
            return f"{self.path}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}: {self.spec.description}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The scenario items some checker did not judge, with why (read from
    the reports, so that pytest-xdist's workers' items are listed too)."""
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == NOT_CHECKED:
                    lines.append(f"{report.nodeid}: {value}")
    if lines:
        terminalreporter.section("bwemu scenarios: checkers that did not judge the boot "
                                 "(never counted as passed)")
        for line in sorted(lines):
            terminalreporter.line(line)
    wrote = terminalreporter.config.stash.get(pytest_cov.WROTE, None)
    if wrote is not None:                # --bwemu-cov FILE
        terminalreporter.write_line(wrote)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, Any, None]:
    """Bad scenario files do not stop the run (pytest stops on collection
    errors): they are left out of the count the loop looks at, and put
    back for the exit status.  (An old-style wrapper: pytest 7 knows it.)"""
    bad = session.stash.get(BAD_FILES, 0)
    session.testsfailed -= bad
    try:
        yield
    finally:
        session.testsfailed += bad


__all__ = ["ScenarioFileNode", "ScenarioItem", "is_scenario"]
