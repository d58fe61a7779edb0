"""A boot with the default checkers: what the CLI, the tests and a notebook call.

    from emulator import boot, default_scenario
    result = boot(default_scenario())
    result.passed, result.exit, result.kernel, result.watch.overwrites

The default set is the lockstep mirror, the protected-range watch, the
model check and the hand-off contract; each can be turned off, and any
other observer added (`observers=`).  Two debugging aids come with them
(emulator/debug/): the ring buffer, whose contents a failed boot's report
gets by replaying the boot (replay_ring), and the inspector's snapshots.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ..checkers.handoff import HandoffCheck
from ..checkers.mirror import MirrorChecker
from ..checkers.model import ModelCheck
from ..checkers.watch import Watch
from ..debug.ring import RingBuffer, RingFindings
from ..debug.snapshots import Inspector
from ..guest.observer import Observer
from .firmware import FirmwareBuild
from .result import BootResult
from .runner import BootArgumentError, BootRunner, check_arguments
from .scenario import Scenario

#: The debugging aids every boot gets unless debug=False.
DEBUG_AIDS = (RingBuffer.name, Inspector.name)


def default_observers(scenario: Scenario, *, mirror: bool = True, watch: bool = True,
                      model: bool = True, handoff: bool = True,
                      debug: bool = True) -> list[Observer]:
    """The checkers every boot gets unless told otherwise, and the
    debugging aids (which never judge)."""
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
        # A zero-size initrd is no initrd (docs/kexec.md): none must arrive.
        out.append(HandoffCheck(expected or None))
    if debug:
        out += [RingBuffer(), Inspector()]
    return out


class Boot(BootRunner):
    """A prepared boot with the default checkers (and any extra observers)."""

    def __init__(self, scenario: Scenario, firmware: FirmwareBuild | None = None, *,
                 mirror: bool = True, watch: bool = True, model: bool = True,
                 debug: bool = True, observers: Sequence[Observer] = ()) -> None:
        check_arguments("boot", scenario, firmware, observers)
        self._asked = scenario        # the runner's own copy gets its fix-ups
        self._flags = {"mirror": mirror, "watch": watch, "model": model}
        defaults = default_observers(scenario, mirror=mirror, watch=watch, model=model,
                                     debug=debug)
        for extra in observers:
            # Findings are kept by name: one of the caller's named like a
            # default observer would replace that one's verdict with its own.
            if any(o.name == extra.name for o in defaults):
                turn_off = (f"; give {extra.name}=False to replace that checker"
                            if extra.name in self._flags else
                            "; give debug=False to replace it" if extra.name in DEBUG_AIDS
                            else "")
                raise BootArgumentError(
                    f"boot argument observers: {extra.name!r} is the name of a default "
                    f"observer of this boot{turn_off}")
        super().__init__(scenario, firmware, observers=[*defaults, *observers])

    def run(self, count_instructions: bool = False) -> BootResult:
        result = super().run(count_instructions=count_instructions)
        ring = result.findings.get(RingBuffer.name)
        if isinstance(ring, RingFindings) and not ring.recorded:
            # Nothing here holds the machine: a replay prepares its own.
            ring.replay = functools.partial(
                replay_ring, self._asked, self.firmware, dict(self._flags),
                ring, self.stop_at_handoff)
        return result


def replay_ring(scenario: Scenario, firmware: FirmwareBuild, flags: dict[str, bool],
                original: RingFindings, stop_at_handoff: bool = False) -> RingFindings:
    """Boots the scenario again with the same checkers (the mirror can stop
    a run) and a RingBuffer recording around the original's moments.
    Observers of the caller's own are not replayed."""
    ring = RingBuffer(original.length, record=list(original.moments))
    runner = BootRunner(scenario, firmware, observers=[
        *default_observers(scenario, debug=False, **flags), ring])
    runner.stop_at_handoff = stop_at_handoff
    found = runner.run().findings.get(ring.name)
    assert isinstance(found, RingFindings)
    return found


def boot(scenario: Scenario, firmware: FirmwareBuild | None = None, *,
         count_instructions: bool = False, mirror: bool = True, watch: bool = True,
         model: bool = True, debug: bool = True,
         observers: Sequence[Observer] = ()) -> BootResult:
    """Boots the wrapper on scenario with the default checkers."""
    return Boot(scenario, firmware, mirror=mirror, watch=watch, model=model, debug=debug,
                observers=observers).run(count_instructions=count_instructions)


__all__ = ["Boot", "boot", "default_observers", "replay_ring"]
