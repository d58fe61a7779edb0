"""bwemu: run a real PowerPC bootwrapper in Unicorn and check it.

The library API (what the CLI, the tests and a notebook call):

    from emulator import boot, Scenario, default_scenario
    result = boot(default_scenario())
    print(result.passed, result.exit, result.kernel, result.console)

Layers, bottom up (docs/architecture.md): guest/ (machine, devices, images,
the observer protocol), checkers/ (mirror, watch, model, hand-off),
harness/ (firmware builds, scenarios, the runner, results), then report.py
and cli.py.
"""

from .errors import BwemuError, InputError
from .guest.addresses import Placement
from .harness.boot import Boot, boot
from .harness.result import BootResult, ExitReason
from .harness.scenario import MemoryTree, Scenario, default_scenario

__all__ = ["Boot", "BootResult", "BwemuError", "ExitReason", "InputError", "MemoryTree",
           "Placement", "Scenario", "boot", "default_scenario"]
