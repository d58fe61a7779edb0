"""Named boot scenarios: the files of the corpus in scenarios/.

Each file there (docs/scenarios.md) is a scenario named by its stem:
`bwemu scenarios` lists them with their descriptions and `bwemu boot
--scenario NAME [--policy P]` boots one, under the policy given on the
command line.  The index reads only each file's description; get() loads
and checks the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .firmware import ROOT
from .inputs import check_input
from .scenario import Scenario, ScenarioError
from .scenario_file import ScenarioFile, load, read_description

#: The corpus: every *.toml under it is a named scenario.
CORPUS = ROOT / "scenarios"


@dataclass(frozen=True)
class Named:
    name: str
    description: str
    path: Path

    def load(self) -> ScenarioFile:
        return load(self.path)

    def build(self, policy: str | None = None) -> Scenario:
        """The file's scenario, under policy when one is given."""
        sc = self.load().scenario
        return sc if policy is None else sc.replace(policy=policy)


@lru_cache(maxsize=1)
def _index() -> dict[str, Named]:
    out: dict[str, Named] = {}
    for path in sorted(CORPUS.rglob("*.toml")):
        out.setdefault(path.stem, Named(path.stem, read_description(path), path))
    return out


def __getattr__(name: str) -> dict[str, Named]:
    # SCENARIOS is read lazily: importing the CLI lists no directory.
    if name == "SCENARIOS":
        return _index()
    raise AttributeError(name)


def names() -> list[str]:
    return list(_index())


def get(name: str, policy: str | None = None) -> Scenario:
    """The scenario of scenarios/NAME.toml, or of the scenario file NAME
    (a path: it has a "/" or ends in .toml), under policy when one is
    given, else under the file's own."""
    if "/" in name or name.endswith(".toml"):
        path = check_input(name, "--scenario")
        return Named(path.stem, "", path).build(policy)
    try:
        entry = _index()[name]
    except KeyError:
        raise ScenarioError(f"no scenario named {name!r}: `bwemu scenarios` "
                            f"lists them (or give a scenario file's path)") from None
    return entry.build(policy)


__all__ = ["CORPUS", "Named", "get", "names"]
