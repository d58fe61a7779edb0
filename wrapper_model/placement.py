"""The kexec platform's placement policy, predicted from the inputs alone.

Written from docs/kexec.md (the steps and both policies) on top of the
range-table and heap models (docs/memranges.md).  Nothing here looks at
what a guest did: the inputs are the numbers a chain-loader's hand-over
determines (docs/kexec.md, "Inputs"), and the output is what the wrapper
must do with them — where the heap, the kernel, the final device tree and
the initrd go, the final range table, or which fatal error stops it — plus
which of the handed-on regions the kernel's copy of itself to [0, S) will
overwrite (the seed policy's hole).

Readings of the doc that it leaves open, decided here and written into
docs/kexec.md ("Readings the model takes"):

* `fixed`, kernel not at 0: the order after ranges_init_malloc is the move
  of a low chain-loader's initrd first, then the kernel's malloc(S).
* A chain-loader's initrd with I1 == I0 is no initrd: nothing is checked
  for overlap, recorded, moved or handed on.
* The final tree's malloc(T + 0x1000) returning NULL is fatal.
* In `fixed`, "I0 < S" is the test for a move, whatever I1 is.
* A tree that fails the structural check (step 0) is fatal before step 1;
  the model is told only that it fails (PlacementInputs.tree_valid).
* The initrd overlap of step 3 is judged on the whole spans, whatever
  rma_end is.
* The initrd's memory check of step 3 comes after the overlap check and
  reads every memory block, not only those up to the real-mode area.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import RangesErr
from .errors import ModelArgumentError, ModelError
from .heap import HeapModel
from .ranges import RangeTable, RangeTableState

POLICIES = ("seed", "fixed")

#: Extra room the wrapper gives the final device tree (docs/kexec.md step 6).
DTB_SLACK = 0x1000

# The kinds of fatal stop the model can predict.  Each names the step that
# fails; emulator/checkers/model.py maps the wrapper's fatal code onto one.
FATAL_TREE = "tree"                  # step 0: the structural check fails
FATAL_NO_RMA = "no-rma"              # step 1: no /memory block at 0
FATAL_INITRD_INVERTED = "initrd-inverted"   # step 3: I1 < I0
FATAL_INITRD_OVERLAP = "initrd-overlap"     # step 3: initrd meets wrapper or tree
FATAL_INITRD_OUTSIDE = "initrd-outside"     # step 3: initrd not all in memory
FATAL_KNOWN_RANGE = "known-range"    # step 3: a ranges_add error
FATAL_KERNEL_RESERVE = "kernel-reserve"     # fixed: ranges_add(0, S) error
FATAL_HEAP = "heap"                  # ranges_init_malloc error
FATAL_KERNEL = "kernel"              # ranges_vmlinux_alloc error
FATAL_INITRD_MOVE = "initrd-move"    # fixed: malloc(I1 - I0) NULL
FATAL_INITRD_ALLOC = "initrd-alloc"  # step 5: malloc(A) NULL
FATAL_DTB = "dtb"                    # step 6: malloc(T + 0x1000) NULL

FATAL_KINDS = (FATAL_TREE, FATAL_NO_RMA, FATAL_INITRD_INVERTED, FATAL_INITRD_OVERLAP,
               FATAL_INITRD_OUTSIDE, FATAL_KNOWN_RANGE, FATAL_KERNEL_RESERVE, FATAL_HEAP,
               FATAL_KERNEL, FATAL_INITRD_MOVE, FATAL_INITRD_ALLOC, FATAL_DTB)


@dataclass(frozen=True)
class PlacementInputs:
    """docs/kexec.md's table of inputs, as plain numbers.

    memory: every (base, size) of the memory nodes' reg entries, in tree
    order (already decoded with the root's cell counts).  initrd_start /
    initrd_end: /chosen's linux,initrd-start / -end, both or neither.
    tree_valid: whether the tree passes the structural check of step 0;
    when it does not, nothing else is read from it (memory, initrd and
    reserves are then empty) and the prediction is that step's fatal.
    """

    memory: tuple[tuple[int, int], ...]
    wrapper_at: int                 # W
    image_size: int
    dtb_at: int                     # D
    dtb_size: int                   # T, the input tree's totalsize
    kernel_size: int                # S
    initrd_start: int | None = None     # I0
    initrd_end: int | None = None       # I1
    reserves: tuple[tuple[int, int], ...] = ()
    attached_initrd_size: int = 0   # A
    policy: str = "fixed"
    tree_valid: bool = True

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ModelArgumentError(f"unknown policy {self.policy!r}")
        if (self.initrd_start is None) != (self.initrd_end is None):
            raise ModelArgumentError("initrd_start and initrd_end go together")


@dataclass(frozen=True)
class Region:
    address: int
    size: int

    @property
    def end(self) -> int:
        return self.address + self.size

    def overlaps(self, start: int, end: int) -> bool:
        return self.address < end and start < self.end and self.size > 0


@dataclass(frozen=True)
class Clobber:
    """A region the kernel's copy-down to [0, S) is expected to overwrite."""

    what: str            # "device tree", "initrd" or "reserve"
    region: Region


@dataclass(frozen=True)
class Prediction:
    policy: str
    rma_end: int | None
    table: RangeTableState | None       # at the hand-off, or at the fatal stop
    heap: tuple[int, int] | None        # (heap_start, heap_end) when chosen
    kernel: int | None                  # r4 at the hand-off
    dtb: int | None                     # r3 at the hand-off
    initrd: Region | None               # the initrd as handed on
    fatal: str | None = None            # one of FATAL_KINDS
    fatal_detail: str = ""
    clobbers: tuple[Clobber, ...] = ()
    steps: tuple[str, ...] = field(default=())

    @property
    def handoff(self) -> bool:
        return self.fatal is None

    @property
    def expected_clobbers(self) -> tuple[Clobber, ...]:
        return self.clobbers

    def clobbered(self, what: str) -> bool:
        return any(c.what == what for c in self.clobbers)


class _Stop(ModelError):
    """Control flow: the prediction ends at a fatal step."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def find_rma_end(memory: tuple[tuple[int, int], ...]) -> int | None:
    """Step 1: the first reg entry with base 0 and a non-zero size."""
    for base, size in memory:
        if base == 0 and size != 0:
            return size
    return None


def first_byte_outside(memory: tuple[tuple[int, int], ...], start: int, end: int) -> int | None:
    """Step 3's memory check: the first byte of [start, end) that no
    memory block holds, None when every byte is held.  The blocks, sorted,
    are joined where they touch or overlap; a block of size 0 holds
    nothing."""
    at = start
    for base, size in sorted(b for b in memory if b[1] > 0):
        if base > at:
            break               # sorted: no later block starts at or below `at`
        at = max(at, base + size)
        if at >= end:
            return None
    return at


def _err(ret: int) -> str:
    try:
        return RangesErr(ret).name
    except ValueError:
        return str(ret)


class _Run:
    """One prediction in progress: the model table and heap, and a log."""

    def __init__(self, inputs: PlacementInputs) -> None:
        self.i = inputs
        self.heap = HeapModel()
        self.table = RangeTable(self.heap)
        self.steps: list[str] = []
        self.rma_end: int | None = None
        self.kernel: int | None = None
        self.dtb: int | None = None
        self.initrd: Region | None = None

    def log(self, text: str) -> None:
        self.steps.append(text)

    def add(self, start: int, size: int, what: str, kind: str) -> None:
        ret = self.table.add(start, size).ret
        if ret != RangesErr.OK:
            raise _Stop(kind, f"ranges_add({what} 0x{start:x}, 0x{size:x}): {_err(ret)}")

    def malloc(self, n: int, what: str, kind: str) -> int:
        p = self.heap.malloc(n)
        if p == 0:
            raise _Stop(kind, f"malloc(0x{n:x}) for the {what} returned NULL")
        self.log(f"{what}: malloc(0x{n:x}) = 0x{p:x}")
        return p

    def init_malloc(self) -> None:
        ret = self.table.init_malloc().ret
        if ret != RangesErr.OK:
            raise _Stop(FATAL_HEAP, f"ranges_init_malloc: {_err(ret)}")
        self.log(f"heap 0x{self.table.heap_start:x}..0x{self.table.heap_end:x}")

    def vmlinux_alloc(self) -> None:
        S = self.i.kernel_size
        r = self.table.vmlinux_alloc(S)
        if r.ret != RangesErr.OK or r.out is None:
            raise _Stop(FATAL_KERNEL, f"ranges_vmlinux_alloc(0x{S:x}): {_err(r.ret)}")
        self.kernel = r.out[0]
        self.log(f"kernel 0x{S:x} bytes at 0x{self.kernel:x}")

    # --- the steps of docs/kexec.md --------------------------------------
    def run(self) -> None:
        i = self.i
        if not i.tree_valid:
            raise _Stop(FATAL_TREE, "the tree handed over fails the structural check")
        self.rma_end = find_rma_end(i.memory)
        if self.rma_end is None:
            raise _Stop(FATAL_NO_RMA, "no /memory block starts at address 0")
        self.table.init(self.rma_end)
        self.log(f"rma_end 0x{self.rma_end:x}")
        self.add_known_ranges()
        if i.policy == "seed":
            self.init_malloc()
            self.vmlinux_alloc()
        else:
            self.fixed_heap_and_kernel()
        if i.attached_initrd_size > 0:
            p = self.malloc(i.attached_initrd_size, "attached initrd", FATAL_INITRD_ALLOC)
            self.initrd = Region(p, i.attached_initrd_size)
        self.dtb = self.malloc(i.dtb_size + DTB_SLACK, "final device tree", FATAL_DTB)

    def add_known_ranges(self) -> None:
        i = self.i
        self.add(i.wrapper_at, i.image_size, "wrapper", FATAL_KNOWN_RANGE)
        self.add(i.dtb_at, i.dtb_size, "device tree", FATAL_KNOWN_RANGE)
        if i.initrd_start is not None and i.initrd_end is not None:
            if i.initrd_end < i.initrd_start:
                raise _Stop(FATAL_INITRD_INVERTED,
                            f"initrd end 0x{i.initrd_end:x} below its start "
                            f"0x{i.initrd_start:x}")
            if i.initrd_end > i.initrd_start:
                size = i.initrd_end - i.initrd_start
                for what, start, span in (("wrapper", i.wrapper_at, i.image_size),
                                          ("device tree", i.dtb_at, i.dtb_size)):
                    if i.initrd_start < start + span and start < i.initrd_end:
                        raise _Stop(FATAL_INITRD_OVERLAP,
                                    f"initrd 0x{i.initrd_start:x}..0x{i.initrd_end:x} "
                                    f"overlaps the {what} 0x{start:x}..0x{start + span:x}")
                hole = first_byte_outside(i.memory, i.initrd_start, i.initrd_end)
                if hole is not None:
                    raise _Stop(FATAL_INITRD_OUTSIDE,
                                f"initrd 0x{i.initrd_start:x}..0x{i.initrd_end:x} does not "
                                f"lie in memory: no block holds 0x{hole:x}")
                self.add(i.initrd_start, size, "initrd", FATAL_KNOWN_RANGE)
                self.initrd = Region(i.initrd_start, size)
        for addr, size in i.reserves:
            self.add(addr, size, "reserve", FATAL_KNOWN_RANGE)

    def fixed_heap_and_kernel(self) -> None:
        S = self.i.kernel_size
        at_zero = bool(self.table.is_free(0, S).ret)
        if at_zero:
            self.vmlinux_alloc()
        else:
            self.add(0, S, "kernel footprint", FATAL_KERNEL_RESERVE)
            self.log(f"[0, 0x{S:x}) kept out of the heap")
        self.init_malloc()
        init = self.initrd
        if init is not None and init.address < S:
            p = self.malloc(init.size, "initrd moved from below the kernel's end",
                            FATAL_INITRD_MOVE)
            self.initrd = Region(p, init.size)
        if not at_zero:
            self.vmlinux_alloc()

    def clobbers(self) -> tuple[Clobber, ...]:
        """What lies in [0, S) at the hand-off and is protected then."""
        S = self.i.kernel_size
        out: list[Clobber] = []
        if self.dtb is not None and self.dtb < S:
            out.append(Clobber("device tree", Region(self.dtb, self.i.dtb_size)))
        if self.initrd is not None and self.initrd.overlaps(0, S):
            out.append(Clobber("initrd", self.initrd))
        for addr, size in self.i.reserves:
            r = Region(addr, size)
            if r.overlaps(0, S):
                out.append(Clobber("reserve", r))
        return tuple(out)


def predict(inputs: PlacementInputs, policy: str | None = None) -> Prediction:
    """What the wrapper does with these inputs under `policy` (default: the
    inputs' own)."""
    if policy is not None and policy != inputs.policy:
        from dataclasses import replace
        inputs = replace(inputs, policy=policy)
    run = _Run(inputs)
    fatal: _Stop | None = None
    try:
        run.run()
    except _Stop as stop:
        fatal = stop
        run.log(f"fatal ({stop.kind}): {stop.detail}")
    t = run.table
    table = t.state() if run.rma_end is not None else None
    heap = (t.heap_start, t.heap_end) if t.heap_end != 0 else None
    if fatal is not None:
        return Prediction(inputs.policy, run.rma_end, table, heap, None, None, None,
                          fatal.kind, fatal.detail, (), tuple(run.steps))
    return Prediction(inputs.policy, run.rma_end, table, heap, run.kernel, run.dtb,
                      run.initrd, None, "", run.clobbers(), tuple(run.steps))
