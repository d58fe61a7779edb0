"""Named boot scenarios: the situations docs/kexec.md's policy must handle.

Each entry builds a Scenario for a given heap policy.  `bwemu scenarios`
lists them and `bwemu boot --scenario NAME` boots one; tests/test_scenarios
boots every one under both policies and compares it with the reference
prediction.  Each says in `expect` what its point is, in terms of the
prediction, so a test can check that the scenario still exercises the
situation it is named for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .scenario import MemoryTree, MiB, Scenario, ScenarioError, default_initrd

#: A test-kernel bss that makes S larger than the default wrapper address
#: (32 MiB): such a kernel cannot run below the wrapper.
BIG_KERNEL_BSS = 40 * MiB

# pseries-like firmware regions for the reserve map.
RTAS = (0x0E00_0000, 0x10_0000)        # RTAS instantiated in the RMA
TCE = (0x0C00_0000, 0x80_0000)         # a TCE table, also in the RMA
TCE_HIGH = (0x1_7000_0000, 0x100_0000)  # a TCE table above the RMA


@dataclass(frozen=True)
class Named:
    name: str
    description: str
    build: Callable[[str], Scenario]
    # What the prediction must say for this scenario to be what it is named:
    # keys "kernel_at_0" (bool), "fatal" (kind, or dict policy -> kind),
    # "fatal_any" (bool), "initrd_moved" (bool,
    # fixed policy), "clobbers" (dict policy -> tuple of region kinds).
    expect: dict


_DEFAULT_TREE = MemoryTree()     # frozen: one instance serves every default


def _sc(name: str, policy: str, tree: MemoryTree = _DEFAULT_TREE, **kw: Any) -> Scenario:
    return Scenario(name=name, dtb=tree.build(), policy=policy, **kw)


def _entries() -> list[Named]:
    out: list[Named] = []

    Build = Callable[[str], Scenario]

    def add(name: str, description: str,
            expect: dict | None = None) -> Callable[[Build], Build]:
        def deco(fn: Build) -> Build:
            out.append(Named(name, description, lambda p: fn(p), expect or {}))
            return fn
        return deco

    @add("kernel-fits-below-wrapper",
         "256 MiB, wrapper at 32 MiB, the default (small) kernel: it runs at 0 "
         "below the wrapper; initrd from the chain-loader at the top",
         {"kernel_at_0": True, "clobbers": {"seed": (), "fixed": ()}})
    def _(p: str) -> Scenario:
        return _sc("kernel-fits-below-wrapper", p, initrd=default_initrd())

    @add("big-kernel-goes-to-heap",
         "a kernel with 40 MiB of bss does not fit below the wrapper at "
         "32 MiB: it is malloc-ed from the heap",
         {"kernel_at_0": False, "clobbers": {"seed": (), "fixed": ()}})
    def _(p: str) -> Scenario:
        return _sc("big-kernel-goes-to-heap", p, initrd=default_initrd(),
                   kernel_bss=BIG_KERNEL_BSS)

    @add("initrd-below-wrapper",
         "the chain-loader's initrd at 16 MiB, below the wrapper at 32 MiB; "
         "a small kernel",
         {"kernel_at_0": True, "initrd_moved": False})
    def _(p: str) -> Scenario:
        return _sc("initrd-below-wrapper", p, initrd=default_initrd(),
                   initrd_at=16 * MiB)

    @add("initrd-below-big-kernel-end",
         "the seed's hole: initrd at 16 MiB, kernel of 40 MiB+ that cannot run "
         "at 0; seed hands the initrd on where the kernel will overwrite it, "
         "fixed moves it first",
         {"kernel_at_0": False, "initrd_moved": True,
          "clobbers": {"seed": ("initrd",), "fixed": ()}})
    def _(p: str) -> Scenario:
        return _sc("initrd-below-big-kernel-end", p, initrd=default_initrd(),
                   initrd_at=16 * MiB, kernel_bss=BIG_KERNEL_BSS)

    @add("wrapper-above-initrd-and-dtb",
         "wrapper near the top of the RMA, device tree and initrd low: the "
         "bulk of free memory lies after the initrd",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        return _sc("wrapper-above-initrd-and-dtb", p, initrd=default_initrd(),
                   wrapper_at=0x0F00_0000, dtb_at=0x0100_0000,
                   initrd_at=0x0110_0000)

    @add("attached-initrd",
         "no initrd from the chain-loader; one attached to the image is "
         "malloc-ed and handed on",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        return _sc("attached-initrd", p, attached_initrd=default_initrd(64 * 1024))

    @add("attached-replaces-loaded-initrd",
         "both: the attached initrd replaces the chain-loader's",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        return _sc("attached-replaces-loaded-initrd", p, initrd=default_initrd(),
                   attached_initrd=default_initrd(64 * 1024))

    @add("rtas-and-tce-reserved",
         "RTAS and a TCE table inside the RMA, and a TCE table above it, in "
         "the reserve map: recorded (or ignored above rma_end), never used",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        tree = MemoryTree(memory=((0, 256 * MiB), (256 * MiB, 6 * 256 * MiB)),
                          reserves=(RTAS, TCE, TCE_HIGH))
        return _sc("rtas-and-tce-reserved", p, tree, initrd=default_initrd())

    @add("bulk-after-reserve",
         "a reserve at 64 MiB splits memory so that the largest gap starts "
         "after it",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        tree = MemoryTree(reserves=((64 * MiB, 0x10_0000),))
        return _sc("bulk-after-reserve", p, tree, initrd=default_initrd(),
                   dtb_at=200 * MiB)

    @add("bulk-after-device-tree",
         "device tree at 48 MiB, initrd at the top: the largest gap starts "
         "after the device tree",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        return _sc("bulk-after-device-tree", p, initrd=default_initrd(),
                   dtb_at=48 * MiB, wrapper_at=16 * MiB, initrd_at=250 * MiB)

    @add("chunk-at-0-reserved",
         "the reserve map holds [0, 64 KiB): the kernel cannot run where it "
         "is; seed lets its copy-down overwrite the reserve",
         {"kernel_at_0": False, "clobbers": {"seed": ("reserve",),
                                             "fixed": ("reserve",)}})
    def _(p: str) -> Scenario:
        tree = MemoryTree(reserves=((0, 0x1_0000),))
        return _sc("chunk-at-0-reserved", p, tree, initrd=default_initrd())

    @add("wrapper-at-0",
         "the wrapper loaded at 0 (as firmware loads a -bios image): the kernel "
         "goes to the heap",
         {"kernel_at_0": False})
    def _(p: str) -> Scenario:
        return _sc("wrapper-at-0", p, initrd=default_initrd(), wrapper_at=0)

    @add("rma-smaller-than-memory",
         "128 MiB RMA, 1 GiB of RAM in two nodes: everything stays below "
         "128 MiB",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        tree = MemoryTree(memory=((0, 128 * MiB), (128 * MiB, 896 * MiB)))
        return _sc("rma-smaller-than-memory", p, tree, initrd=default_initrd())

    @add("cells-1-1",
         "a 32-bit style tree (#address-cells = #size-cells = 1)",
         {"kernel_at_0": True})
    def _(p: str) -> Scenario:
        tree = MemoryTree(address_cells=1, size_cells=1, console="hvc")
        return _sc("cells-1-1", p, tree, initrd=default_initrd())

    @add("no-rma",
         "memory does not start at 0: the wrapper stops (no RMA)",
         {"fatal": "no-rma"})
    def _(p: str) -> Scenario:
        tree = MemoryTree(memory=((256 * MiB, 256 * MiB),))
        return _sc("no-rma", p, tree, wrapper_at=288 * MiB)

    @add("reserve-map-overflows-table",
         "33 scattered reserves: the 32-entry table refuses one",
         {"fatal": "known-range"})
    def _(p: str) -> Scenario:
        tree = MemoryTree(reserves=tuple((0x400_0000 + i * 0x10_0000, 0x1000)
                                         for i in range(33)))
        return _sc("reserve-map-overflows-table", p, tree)

    @add("table-full-refuses-kernel",
         "wrapper, tree, initrd and 29 reserves fill the 32-entry table: the "
         "kernel's [0, S) at 0 is refused in fixed; in seed the heap, chosen "
         "first, fuses two entries and the kernel fits",
         {"fatal": {"fixed": "kernel", "seed": None}})
    def _(p: str) -> Scenario:
        tree = MemoryTree(reserves=tuple((0x400_0000 + i * 0x10_0000, 0x1000)
                                         for i in range(29)))
        return _sc("table-full-refuses-kernel", p, tree, initrd=default_initrd())

    @add("kernel-larger-than-rma",
         "a kernel claiming more than the 64 MiB RMA: no room",
         {"fatal_any": True})
    def _(p: str) -> Scenario:
        tree = MemoryTree(memory=((0, 64 * MiB),))
        return _sc("kernel-larger-than-rma", p, tree, kernel_bss=80 * MiB,
                   wrapper_at=16 * MiB)

    return out


SCENARIOS: dict[str, Named] = {n.name: n for n in _entries()}


def names() -> list[str]:
    return list(SCENARIOS)


def get(name: str, policy: str = "fixed") -> Scenario:
    try:
        entry = SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"no scenario named {name!r}: `bwemu scenarios` "
                            f"lists them") from None
    return entry.build(policy)
