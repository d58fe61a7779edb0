"""A boot with the default checkers: what the CLI, the tests and a notebook call.

    from emulator import boot, default_scenario
    result = boot(default_scenario())
    result.passed, result.exit, result.kernel, result.watch.overwrites

The default set is the lockstep mirror, the protected-range watch, the
model check and the hand-off contract; each can be turned off, and any
other observer added (`observers=`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..checkers.handoff import HandoffCheck
from ..checkers.mirror import MirrorChecker
from ..checkers.model import ModelCheck
from ..checkers.watch import Watch
from ..guest.observer import Observer
from .firmware import FirmwareBuild
from .result import BootResult
from .runner import BootRunner
from .scenario import Scenario


def default_observers(scenario: Scenario, *, mirror: bool = True, watch: bool = True,
                      model: bool = True, handoff: bool = True) -> list[Observer]:
    """The checkers every boot gets unless told otherwise."""
    out: list[Observer] = []
    if mirror:
        out.append(MirrorChecker())
    if watch:
        out.append(Watch())
    if model:
        out.append(ModelCheck(scenario.policy, len(scenario.attached_initrd or b"")))
    if handoff:
        expected = (scenario.attached_initrd if scenario.attached_initrd is not None
                    else scenario.initrd)
        out.append(HandoffCheck(expected))
    return out


class Boot(BootRunner):
    """A prepared boot with the default checkers (and any extra observers)."""

    def __init__(self, scenario: Scenario, firmware: FirmwareBuild | None = None, *,
                 mirror: bool = True, watch: bool = True, model: bool = True,
                 observers: Sequence[Observer] = ()) -> None:
        super().__init__(scenario, firmware, observers=[
            *default_observers(scenario, mirror=mirror, watch=watch, model=model),
            *observers])


def boot(scenario: Scenario, firmware: FirmwareBuild | None = None, *,
         count_instructions: bool = False, mirror: bool = True, watch: bool = True,
         model: bool = True, observers: Sequence[Observer] = ()) -> BootResult:
    """Boots the wrapper on scenario with the default checkers."""
    return Boot(scenario, firmware, mirror=mirror, watch=watch, model=model,
                observers=observers).run(count_instructions=count_instructions)


__all__ = ["Boot", "boot", "default_observers"]
