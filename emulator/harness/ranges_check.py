"""`bwemu ranges-check`: the range table's C against the model, from the
command line, in seconds.

Random operation sequences (with the edge values that matter: 0, rma_end
and its neighbours, 2^64-1, ranges ending exactly at 2^64 or one past,
touching and overlapping ranges, more ranges than the table holds) go
through the wrapper's C in the emulator under the lockstep mirror.  The
first divergent sequence is cut down, one operation at a time, to one
where every operation matters, and reported.  (The pytest suite does the
same with hypothesis: tests/test_differential.py.)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from wrapper_model import Op

from ..checkers.mirror import DivergenceError
from .firmware import FirmwareBuild
from .range_harness import RangeHarness

U64 = 1 << 64
PAGE = 0x1000


@dataclass
class CheckResult:
    examples: int             # sequences run
    operations: int           # operations in them
    seconds: float
    failing: list[Op] | None = None   # the cut-down divergent sequence
    report: str | None = None         # the mirror's report on it

    @property
    def ok(self) -> bool:
        return self.failing is None


class SequenceMaker:
    """Draws one operation sequence at a time from a seeded generator."""

    def __init__(self, rng: random.Random, length: int):
        self.rng = rng
        self.length = length

    def sequence(self) -> list[Op]:
        rng = self.rng
        rma = rng.choice([0, PAGE, 0x1000_0000, 0x4000_0000, U64 - 1,
                          rng.randrange(1, U64)])
        self.rma = rma
        self.ends: list[int] = [0]
        ops = [Op("init", (rma,))]
        if rng.random() < 0.15:
            # More distinct ranges than the table holds, each starting one
            # byte past a page boundary so a later heap cannot merge into one.
            step = max(rma // 64, 4) if rma else 4
            for i in range(rng.randint(31, 36)):
                ops.append(Op("add", (i * step + 1, max(step // 2, 1))))
        ops += [self.operation() for _ in range(self.length)]
        return ops

    def address(self) -> int:
        rng, rma = self.rng, self.rma
        return rng.choice([0, 1, PAGE, max(rma - 1, 0), rma, min(rma + 1, U64 - 1),
                           U64 - 1, U64 - PAGE, rng.choice(self.ends),
                           rng.randrange(0, max(rma, 1)), rng.randrange(U64)])

    def size(self, start: int) -> int:
        rng = self.rng
        return rng.choice([0, 1, PAGE, 0x10000, U64 - start, min(U64 - start + 1, U64 - 1),
                           rng.randrange(1, 1 << 20) * 8, rng.randrange(U64)])

    def operation(self) -> Op:
        rng = self.rng
        kind = rng.choices(["add", "add_span", "is_free", "largest_gap", "gap_after_last",
                            "init_malloc", "vmlinux_alloc", "malloc", "free"],
                           weights=[30, 8, 6, 4, 4, 4, 4, 6, 3])[0]
        if kind in ("add", "is_free"):
            start = self.address()
            size = self.size(start)
            if kind == "add" and size:
                self.ends.append(min(start + size, U64 - 1))
            return Op(kind, (start, size))
        if kind == "add_span":
            a, b = self.address(), self.address()
            return Op(kind, (a, b) if rng.random() < 0.8 else (b, a))
        if kind in ("vmlinux_alloc", "malloc"):
            return Op(kind, (rng.choice([0, 1, PAGE, 0x14570, rng.randrange(1, 1 << 28)]),))
        if kind == "free":
            return Op(kind, (rng.choice(self.ends),))
        return Op(kind, ())


def check(build: FirmwareBuild, examples: int = 300, length: int = 30,
          seed: int | None = None) -> CheckResult:
    """Runs `examples` random sequences of `length` operations."""
    harness = RangeHarness(build.ensure_built().wrapper_elf)
    maker = SequenceMaker(random.Random(seed), length)
    t0 = time.perf_counter()
    done = ops_run = 0
    try:
        while done < examples:
            ops = maker.sequence()
            if harness.copy_conflicts(ops):
                continue   # a realloc copy over the harness itself: not a test
            done += 1
            ops_run += len(ops)
            if harness.diverges(ops):
                small = harness.minimise(ops)
                harness.reset()
                try:
                    harness.run(small)
                    report = None
                except DivergenceError as e:
                    report = str(e.divergence)
                return CheckResult(done, ops_run, time.perf_counter() - t0, small, report)
        return CheckResult(done, ops_run, time.perf_counter() - t0)
    finally:
        harness.close()
