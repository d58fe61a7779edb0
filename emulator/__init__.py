"""bwemu: run a real PowerPC bootwrapper in Unicorn and check it.

The library API (what the CLI, the tests and a notebook call):

    from emulator import boot, Scenario, default_scenario
    result = boot(default_scenario())
    print(result.exit, result.kernel, result.console)
"""

from .scenario import Scenario, default_scenario, MemoryTree
from .boot import boot, Boot, BootResult
from .scenario import Placement

__all__ = ["boot", "Boot", "BootResult", "Placement", "Scenario", "default_scenario",
           "MemoryTree"]
