"""The library API as a caller holds it: what a BootResult keeps after
the boot, a Boot used twice, the arguments boot() and Boot() take, and
observers named like one another."""

from __future__ import annotations

import gc
import weakref

from emulator import Boot
from emulator.harness import scenarios_lib


def test_a_result_does_not_keep_its_machine_alive():
    """A RangeOp of the mirror's timeline held a bound method of the
    RangeMirror, and through it the Unicorn instance with all its RAM:
    ten results kept in a list took 13 GB of address space."""
    b = Boot(scenarios_lib.get("initrd-below-big-kernel-end", "seed"))
    uc = weakref.ref(b.machine.uc)
    result = b.run()
    del b
    gc.collect()
    assert uc() is None
    # ... and what the timeline needs is still there without it
    timeline = result.ranges
    assert timeline and timeline[0].where is not None
    assert "kexec.c" in timeline[0].where, timeline[0].where
