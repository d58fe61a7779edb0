"""One error root for everything bwemu raises on purpose.

    BwemuError
    ├── InputError        bad input from the user: a file, a field, an option
    │   │                 (the CLI prints one line and exits 2)
    │   ├── ScenarioError       a scenario that cannot be booted as given
    │   ├── DeviceTreeError     a device tree bwemu cannot read
    │   └── ElfImageError       an ELF file that is not a usable image
    ├── SetupError        the machine or the tools cannot do what was asked
    │   ├── FirmwareError       the firmware could not be built or composed
    │   ├── MachineError        a memory map or address the machine cannot honour
    │   ├── DwarfLayoutError    a struct layout that cannot be read from DWARF
    │   └── CallSetupError      a guest call that cannot be made as asked
    ├── CheckerError      a checker that cannot attach to this image
    │   └── MirrorError
    ├── GuestCallError    a direct guest call that did not return normally
    │   ├── CallBudgetExhausted, GuestFault
    │   └── CallStopped
    │       └── DivergenceError the mirror stopped a direct call
    └── ModelError        (wrapper_model) a question the specification does not cover
        └── LayoutError         model values that do not fit a struct layout

Each class is defined next to the code that raises it and derives from the
right branch here; this module holds only the branches, so it imports
only the root, which wrapper_model defines (the lowest layer: the model
imports nothing from emulator).  The CLI catches BwemuError and prints its text on one line:
exit status 2 for an InputError or SetupError (the run could not start as
asked), and also 2 for the rest, which name their cause the same way.
"""

from __future__ import annotations

from wrapper_model.errors import BwemuError, ModelError


class InputError(BwemuError):
    """Bad input: a file, a scenario field or an option the user gave."""


class SetupError(BwemuError):
    """The machine, the toolchain or a build cannot do what was asked."""


class CheckerError(BwemuError):
    """A checker cannot attach to this image (missing symbol, layout...)."""


__all__ = ["BwemuError", "CheckerError", "InputError", "ModelError", "SetupError"]
