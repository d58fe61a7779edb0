"""`bwemu fuzz`: structured mutation of valid boots, each driven through a
full boot with every checker attached, and every run given exactly one
outcome.

A case is made from (seed, index) alone, so a campaign split by index
range across machines makes the same cases, and one case can be replayed
by its seed and index.  Each case starts from a valid boot (a generated
tree, a QEMU tree, with or without an initrd) and applies one mutation
kind: a header field, a structure token or length, the reserve map,
/memory and /chosen, cell counts, the gzip stream or the ELF header of the
kernel payload, or the load addresses.

Outcomes:

- handoff: the kernel was reached and the boot passed, or everything that
  failed was predicted by the model (a clobber the placement foresaw);
- fatal: the wrapper stopped with a fatal code and a message, and the
  model, where it had a verdict, predicted that stop;
- input: bwemu refused the input before running, in one line;
- finding: anything else: a traceback, a crash of the worker, a hang, a
  CPU exception or a runaway in the wrapper, a mirror divergence, a model
  mismatch, an unpredicted overwrite, or a hand-off of a tree that is not
  valid (a wrong OK).  Each is saved as a reproducer directory with the
  one command that replays it.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..checkers.watch import Overwrite
from ..errors import BwemuError
from ..guest.devicetree import FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_NOP, FDT_PROP
from ..guest.devicetree import check_structure as check_tree
from ..guest.elf import ElfImage
from ..guest.observer import CheckState
from .boot import boot
from .firmware import FirmwareBuild
from .result import BootResult, ExitReason
from .scenario import DEFAULT_BUDGET, MemoryTree, MiB, Scenario, default_initrd

#: Instructions a fuzz boot may take: the default budget (the default boot
#: takes about 1.2 M; a 16 MiB initrd moved and checksummed about 133 M).
FUZZ_BUDGET = DEFAULT_BUDGET
#: Wall seconds before a case counts as a hang.
CASE_TIMEOUT = 60.0
QEMU_TREE = Path(__file__).resolve().parents[2] / "tests" / "data" / "qemu-pseries-512M.dtb"

OUTCOMES = ("handoff", "fatal", "input", "finding")
#: The wrapper's fatal codes for a broken kernel payload (docs/guest-abi.md):
#: NO_KERNEL, KERNEL_GZIP, KERNEL_SHORT, KERNEL_ELF.
KERNEL_CODES = frozenset({18, 19, 20, 21})


@dataclass
class FuzzCase:
    """One boot to try: the mutated inputs and how they were made."""
    seed: int
    index: int
    kind: str
    detail: str
    dtb: bytes
    initrd: bytes | None = None
    wrapper_at: int | None = None
    dtb_at: int | None = None
    initrd_at: int | None = None
    #: Bytes of the kernel payload to overwrite: (offset in the payload, bytes).
    payload_patch: tuple[int, bytes] | None = None
    compressed: bool = True

    @property
    def name(self) -> str:
        return f"fuzz-{self.seed}-{self.index}"


@dataclass
class CaseOutcome:
    index: int
    kind: str
    outcome: str              # one of OUTCOMES
    summary: str              # one line: the message, or what the finding is
    seconds: float = 0.0


@dataclass
class CampaignResult:
    seed: int
    runs: int
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, Counter[str]] = field(default_factory=dict)
    findings: list[CaseOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        width = max([len(k) for k in self.kinds] + [4])
        head = f"{'kind':{width}}  " + "  ".join(f"{o:>8}" for o in OUTCOMES)
        lines = [head, "-" * len(head)]
        for kind in sorted(self.kinds):
            c = self.kinds[kind]
            lines.append(f"{kind:{width}}  " + "  ".join(f"{c[o]:8d}" for o in OUTCOMES))
        lines.append("-" * len(head))
        lines.append(f"{'all':{width}}  " + "  ".join(f"{self.outcomes[o]:8d}" for o in OUTCOMES))
        return "\n".join(lines)


# --- the valid starting points ---------------------------------------------------------


def _bases() -> list[tuple[str, bytes, bool]]:
    """(name, tree, with an initrd) the mutations start from."""
    out = [("generated", MemoryTree().build(), True),
           ("generated-uart", MemoryTree(console="uart").build(), False),
           ("reserved", MemoryTree(reserves=((0xE00_0000, 0x10_0000),)).build(), True),
           ("cells-1-1", MemoryTree(address_cells=1, size_cells=1).build(), True)]
    if QEMU_TREE.is_file():
        out.append(("qemu-pseries", QEMU_TREE.read_bytes(), False))
    return out


# --- tree surgery -----------------------------------------------------------------------


def _u32(b: bytes | bytearray, off: int) -> int:
    return int.from_bytes(b[off:off + 4], "big")


def _put32(b: bytearray, off: int, value: int) -> None:
    b[off:off + 4] = (value & 0xFFFF_FFFF).to_bytes(4, "big")


def _tokens(blob: bytes) -> list[tuple[int, int]]:
    """(offset, token) of every structure token of a valid tree."""
    off, end = _u32(blob, 8), _u32(blob, 8) + _u32(blob, 36)
    out = []
    while off < end:
        tok = _u32(blob, off)
        out.append((off, tok))
        off += 4
        if tok == FDT_BEGIN_NODE:
            off = (blob.index(b"\0", off) + 1 + 3) & ~3
        elif tok == FDT_PROP:
            off = (off + 8 + _u32(blob, off) + 3) & ~3
        elif tok == FDT_END:
            break
    return out


HEADER_FIELDS = {"totalsize": 4, "off_dt_struct": 8, "off_dt_strings": 12,
                 "off_mem_rsvmap": 16, "version": 20, "last_comp_version": 24,
                 "size_dt_strings": 32, "size_dt_struct": 36}
EDGES = (0, 1, 3, 4, 0x28, 0x7FFF_FFF0, 0x8000_0000, 0xFFFF_FFFF)


def _edge(rng: random.Random, value: int) -> int:
    return rng.choice([*EDGES, value + 1, value - 1, value + 4, value - 4, value * 2,
                       rng.randrange(1 << 32)])


Mutation = Callable[[random.Random, bytearray, FuzzCase], str]


def m_header(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    name = rng.choice(sorted(HEADER_FIELDS))
    off = HEADER_FIELDS[name]
    new = _edge(rng, _u32(t, off))
    _put32(t, off, new)
    return f"header {name} = 0x{new & 0xFFFF_FFFF:x}"


def m_magic(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    _put32(t, 0, rng.choice([0, 0xEDFE0DD0, 0xD00DFEEE, rng.randrange(1 << 32)]))
    return f"magic = 0x{_u32(t, 0):08x}"


def m_token(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    off, tok = rng.choice(_tokens(bytes(t)))
    new = rng.choice([FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END, 5, 0,
                      0xFFFF_FFFF])
    _put32(t, off, new)
    return f"token at 0x{off:x}: {tok} -> {new}"


def _prop_word(rng: random.Random, t: bytearray, at: int, what: str) -> str:
    """An edge value in one word of a random property's header (at 4: its
    length, at 8: its name offset)."""
    props = [o for o, tok in _tokens(bytes(t)) if tok == FDT_PROP]
    off = rng.choice(props) + at
    new = _edge(rng, _u32(t, off))
    _put32(t, off, new)
    return f"{what} at 0x{off:x} = 0x{new & 0xFFFF_FFFF:x}"


def m_prop_len(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    return _prop_word(rng, t, 4, "property length")


def m_name_offset(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    return _prop_word(rng, t, 8, "property name offset")


def m_truncate(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    n = rng.randrange(0, len(t))
    del t[n:]
    return f"file cut to {n} bytes"


def m_strings_nul(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    off, size = _u32(t, 12), _u32(t, 32)
    for i in range(off, off + size):
        if t[i] == 0:
            t[i] = 0x41
    return "every NUL of the strings block replaced"


def m_reserve(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    ram = 256 * MiB
    entries = []
    for _ in range(rng.choice([1, 2, 5, 40])):
        addr = rng.choice([0, 0x1000, 32 * MiB, ram - 0x10000, ram, 1 << 40,
                           rng.randrange(ram) & ~0xFFF, (1 << 64) - 0x1000])
        size = rng.choice([0, 1, 0x1000, 16 * MiB, ram, (1 << 64) - addr,
                           rng.randrange(1, 64 * MiB)])
        entries.append((addr, min(size, (1 << 64) - 1 - addr)))
    t[:] = MemoryTree(reserves=tuple(entries)).build()
    return f"reserve map {', '.join(f'0x{a:x}+0x{s:x}' for a, s in entries)}"


def m_memory(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    blocks = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        base = rng.choice([0, 0, 0x1000, 128 * MiB, 1 << 32])
        size = rng.choice([0, 0x1000, 16 * MiB, 64 * MiB, 256 * MiB, 1 << 30, 3 << 30,
                           1 << 40, (1 << 64) - 1 - base])
        blocks.append((base, size))
    t[:] = MemoryTree(memory=tuple(blocks)).build()
    case.wrapper_at = case.dtb_at = case.initrd_at = None
    return f"memory {', '.join(f'0x{b:x}+0x{s:x}' for b, s in blocks)}"


def m_chosen_initrd(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    import libfdt  # only here: the tree is valid before this mutation
    fdt = libfdt.Fdt(bytearray(t))
    fdt.resize(len(t) + 256)
    chosen = fdt.path_offset("/chosen")
    start = rng.choice([0, 0x1000, 32 * MiB, 0xFF0_0000, 0x1000_0000, 1 << 63])
    end = rng.choice([start, start + 0x1000, start - 1 if start else 0, start + 4 * MiB,
                      (1 << 64) - 1])
    sizes = rng.choice([(8, 8), (4, 4), (8, 4), (3, 8), (0, 8)])
    for name, value, n in (("linux,initrd-start", start, sizes[0]),
                           ("linux,initrd-end", end, sizes[1])):
        fdt.setprop(chosen, name, (value & ((1 << 64) - 1)).to_bytes(8, "big")[8 - n:])
    if rng.random() < 0.15:
        fdt.delprop(chosen, "linux,initrd-end")
    fdt.pack()
    t[:] = bytes(fdt.as_bytearray())
    case.initrd = None
    case.initrd_at = None
    return f"/chosen initrd 0x{start:x}..0x{end & ((1 << 64) - 1):x} ({sizes[0]}/{sizes[1]} bytes)"


def m_cells(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    ac, sc = rng.choice([0, 1, 2, 3, 4, 0xFFFF_FFFF]), rng.choice([0, 1, 2, 3, 4])
    import libfdt
    fdt = libfdt.Fdt(bytearray(t))
    fdt.setprop_u32(0, "#address-cells", ac)
    fdt.setprop_u32(0, "#size-cells", sc)
    t[:] = bytes(fdt.as_bytearray())
    return f"root #address-cells {ac}, #size-cells {sc}"


def m_gzip(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    off = rng.choice([0, 1, 2, 3, 4, 9, 10, 11, 12, 20, 100, rng.randrange(8, 4000), -8, -4,
                      -1])
    data = bytes([rng.randrange(256) for _ in range(rng.choice([1, 1, 2, 4]))])
    case.payload_patch = (off, data)
    return f"gzip stream byte(s) at {off}: {data.hex()}"


def m_elf_header(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    # e_ident, e_type, e_machine, e_entry, e_phoff, e_phentsize, e_phnum,
    # and the first program header's type, offset, addresses and sizes
    off = rng.choice([0, 4, 5, 16, 18, 24, 32, 54, 56, 64, 72, 80, 96, 104])
    n = rng.choice([1, 2, 4, 8])
    data = rng.choice([bytes(n), b"\xff" * n, bytes([rng.randrange(256) for _ in range(n)])])
    case.payload_patch = (off, data)
    case.compressed = False
    return f"kernel ELF bytes at {off}: {data.hex()}"


def m_load(rng: random.Random, t: bytearray, case: FuzzCase) -> str:
    ram = 256 * MiB
    choices = [0, 0x100, 0x10000, 32 * MiB, ram - 0x10000, ram, ram + 0x1000, 0x2000001,
               1 << 40, rng.randrange(ram) & ~0xFFFF, rng.randrange(ram)]
    what = rng.choice(["wrapper_at", "dtb_at", "initrd_at"])
    value = rng.choice(choices)
    if what == "initrd_at" and case.initrd is None:
        case.initrd = default_initrd(0x8000)
    setattr(case, what, value)
    return f"{what} = 0x{value:x}"


MUTATIONS: dict[str, Mutation] = {
    "header": m_header, "magic": m_magic, "token": m_token, "prop-length": m_prop_len,
    "name-offset": m_name_offset, "truncate": m_truncate, "strings-nul": m_strings_nul,
    "reserve-map": m_reserve, "memory": m_memory, "chosen-initrd": m_chosen_initrd,
    "cells": m_cells, "gzip": m_gzip, "elf-header": m_elf_header, "load": m_load,
}


def make_case(seed: int, index: int) -> FuzzCase:
    """Case `index` of campaign `seed`: the same on every machine."""
    rng = random.Random(f"bwemu-fuzz:{seed}:{index}")
    base_name, tree, with_initrd = rng.choice(_bases())
    kind = rng.choice(sorted(MUTATIONS))
    case = FuzzCase(seed, index, kind, "", tree,
                    default_initrd(0x18000) if with_initrd else None)
    t = bytearray(tree)
    detail = MUTATIONS[kind](rng, t, case)
    case.dtb = bytes(t)
    case.detail = f"{base_name}: {detail}"
    return case


# --- running one case ------------------------------------------------------------------------


def _patched_image(firmware: FirmwareBuild, case: FuzzCase, workdir: Path) -> Path:
    """A copy of the composed wrapper with its kernel payload patched."""
    assert case.payload_patch is not None
    src = firmware.compose(compressed=case.compressed)
    data = bytearray(src.read_bytes())
    elf = ElfImage(src)
    try:
        start = elf.symbol("_vmlinux_start").value
        end = elf.symbol("_vmlinux_end").value
        file_off = elf.file_offset(start)
    finally:
        elf.close()
    off, patch = case.payload_patch
    at = file_off + (off if off >= 0 else end - start + off)
    data[at:at + len(patch)] = patch
    out = workdir / f"{case.name}.elf"
    out.write_bytes(bytes(data))
    return out


def scenario_of(case: FuzzCase, firmware: FirmwareBuild, workdir: Path) -> Scenario:
    sc = Scenario(name=case.name, dtb=case.dtb, initrd=case.initrd, wrapper_at=case.wrapper_at,
                  dtb_at=case.dtb_at, initrd_at=case.initrd_at, budget=FUZZ_BUDGET,
                  policy=firmware.policy)
    if case.payload_patch is not None:
        sc = sc.replace(image=_patched_image(firmware, case, workdir),
                        kernel=_patched_kernel(firmware, case, workdir))
    return sc


def _patched_kernel(firmware: FirmwareBuild, case: FuzzCase, workdir: Path) -> Path | None:
    """The kernel ELF the patched payload carries, when bwemu can read it:
    an uncompressed payload is the ELF itself.  None for a patched gzip
    stream (what it decodes to is the wrapper's to find out), or an ELF
    too broken to read: the model then has no kernel to predict with."""
    if case.compressed or case.payload_patch is None:
        return None
    data = bytearray(firmware.ensure_built().payload_elf.read_bytes())
    off, patch = case.payload_patch
    at = off if off >= 0 else len(data) + off
    data[at:at + len(patch)] = patch
    out = workdir / f"{case.name}.kernel.elf"
    out.write_bytes(bytes(data))
    try:
        ElfImage(out).close()
    except BwemuError:
        out.unlink()
        return None
    return out


def judge(case: FuzzCase, r: BootResult) -> tuple[str, str]:
    """(outcome, summary) of a finished boot."""
    states = {c.name: c for c in r.checks}
    if r.exit is ExitReason.FATAL:
        if not r.fatal_code or not r.message.strip():
            return "finding", f"fatal without a code or message: {r.message!r}"
        if states["model"].failed:
            return "finding", f"model mismatch on a fatal: {states['model'].detail}"
        if states["model"].state is CheckState.NO_VERDICT and \
                not (case.payload_patch is not None and r.prediction is None):
            # Outside the model: the stop must be about what was broken
            # (with a kernel the model could not read, any stop may be).
            broke_kernel = case.payload_patch is not None
            if broke_kernel != (r.fatal_code in KERNEL_CODES):
                return "finding", (f"fatal code {r.fatal_code} for a case that broke the "
                                   f"{'kernel payload' if broke_kernel else 'tree or layout'}"
                                   f": {r.message}")
        return "fatal", r.message
    if r.exit is not ExitReason.KERNEL:
        if case.payload_patch is not None and r.handoff is not None and not r.failures:
            # The wrapper handed over what the broken payload decoded to,
            # every checker content: the kernel's crash is the payload's.
            return "handoff", f"the broken kernel ran after a clean hand-off: {r.message}"
        return "finding", f"{r.exit.value}: {r.message}"
    try:
        check_tree(case.dtb, "input tree")
        input_ok = True
    except BwemuError:
        input_ok = False
    if not input_ok:
        return "finding", "wrong OK: the kernel was reached from a tree that is not valid"
    if r.passed:
        return "handoff", "kernel reached, every checker passed"
    predicted = {c.what for c in r.prediction.clobbers} if r.prediction else set()
    unexplained = []
    for c in r.failures:
        if c.name == "watch":
            hits = {o.region.split(" ", 1)[0] for o in r.overwrites
                    if not _explained(o, predicted, case, r)}
            if hits:
                unexplained.append(f"watch: {c.detail}")
        elif c.name == "handoff" and c.detail == \
                "the initrd the kernel received is not the one given" and "initrd" in predicted:
            continue
        else:
            unexplained.append(f"{c.name}: {c.detail}")
    if unexplained:
        return "finding", "; ".join(unexplained)
    return "handoff", "kernel reached; what failed was predicted: " + ", ".join(sorted(predicted))


def _explained(o: Overwrite, predicted: set[str], case: FuzzCase, r: BootResult) -> bool:
    """Is this store accounted for?  A kernel-phase store into a clobber
    the model predicted, or the wrapper writing its own image where the
    case itself loaded it over a reserve (the loader's choice, not the
    wrapper's mistake)."""
    if o.phase == "kernel":
        return _predicted(o.region, predicted)
    wrapper = r.layout.wrapper
    return (case.wrapper_at is not None and o.region.startswith("reserve")
            and wrapper.address <= o.address < wrapper.end)


def _predicted(region: str, predicted: set[str]) -> bool:
    """Is a watch region one of the model's predicted clobber kinds?"""
    if region.startswith("initrd"):
        return "initrd" in predicted
    if region.startswith("reserve"):
        return "reserve" in predicted
    if "device tree" in region:
        return "device tree" in predicted
    return False


def run_case(seed: int, index: int, policy: str = "fixed",
             workdir: str | None = None, fault: str | None = None) -> CaseOutcome:
    """Makes and boots one case; never raises (a worker's crash is the
    parent's to see)."""
    t0 = time.perf_counter()
    case = make_case(seed, index)      # a bug here is bwemu's, and raises
    work = Path(workdir or os.environ.get("TMPDIR", "/tmp"))
    firmware = FirmwareBuild(policy=policy, fault=fault)
    try:
        r = boot(scenario_of(case, firmware, work), firmware)
        outcome, summary = judge(case, r)
    except BwemuError as e:
        text = str(e)
        outcome, summary = ("input", text) if "\n" not in text.strip() else \
            ("finding", f"a multi-line error: {text[:200]!r}")
    except Exception:   # noqa: BLE001 - every other exception is a finding
        outcome, summary = "finding", "traceback: " + traceback.format_exc(limit=4)[-600:]
    finally:
        if case.payload_patch is not None:
            (work / f"{case.name}.elf").unlink(missing_ok=True)
            (work / f"{case.name}.kernel.elf").unlink(missing_ok=True)
    return CaseOutcome(index, case.kind, outcome, summary.splitlines()[0] if summary else "",
                       time.perf_counter() - t0)


# --- the campaign ------------------------------------------------------------------------------


def save_reproducer(directory: Path, seed: int, outcome: CaseOutcome) -> Path:
    """The case's inputs and the one command that replays it."""
    case = make_case(seed, outcome.index)
    d = directory / case.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "tree.dtb").write_bytes(case.dtb)
    if case.initrd is not None:
        (d / "initrd.bin").write_bytes(case.initrd)
    info = {"seed": seed, "index": outcome.index, "kind": case.kind, "detail": case.detail,
            "finding": outcome.summary, "wrapper_at": case.wrapper_at, "dtb_at": case.dtb_at,
            "initrd_at": case.initrd_at, "payload_patch": None if case.payload_patch is None
            else [case.payload_patch[0], case.payload_patch[1].hex()],
            "replay": f"bwemu fuzz --seed {seed} --only {outcome.index}"}
    (d / "case.json").write_text(json.dumps(info, indent=2) + "\n")
    return d


def _progress(done: int, total: int, findings: int, started: float) -> None:
    width = 30
    filled = width * done // max(total, 1)
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                     f"{rate:5.1f}/s findings: {findings} ")
    sys.stderr.flush()


CaseRunner = Callable[[int, int, str], CaseOutcome]


def campaign(seed: int, indices: range | list[int], jobs: int = 1, policy: str = "fixed",
             findings_dir: Path | None = None, progress: bool = False,
             runner: CaseRunner = run_case, fault: str | None = None) -> CampaignResult:
    """Runs the cases in `indices` of campaign `seed` in `jobs` processes
    (runner: run_case, or a stand-in of the same signature for tests) on
    the firmware built with `policy` and, to show the campaign catches
    it, a deliberate `fault`."""
    result = CampaignResult(seed, len(indices))
    t0 = time.perf_counter()
    FirmwareBuild(policy=policy, fault=fault).ensure_built().compose(compressed=False)
    if fault is not None:
        runner = functools.partial(run_case, fault=fault)

    def record(o: CaseOutcome) -> None:
        result.outcomes[o.outcome] += 1
        result.kinds.setdefault(o.kind, Counter())[o.outcome] += 1
        if o.outcome == "finding":
            result.findings.append(o)
            if findings_dir is not None:
                save_reproducer(findings_dir, seed, o)

    for done, o in enumerate(_outcomes(seed, list(indices), jobs, policy, runner), 1):
        record(o)
        if progress:
            _progress(done, len(indices), len(result.findings), t0)
    if progress:
        sys.stderr.write("\n")
    result.seconds = time.perf_counter() - t0
    return result


def _outcomes(seed: int, indices: list[int], jobs: int, policy: str,
              runner: CaseRunner) -> Iterator[CaseOutcome]:
    """Each case's outcome, from `jobs` worker processes.  A worker that
    dies takes its in-flight cases with it: each is then re-run alone, so
    the one that kills a worker is the one reported.  A case with no
    outcome after CASE_TIMEOUT is a hang (its workers are killed)."""
    if jobs <= 1:
        for i in indices:
            yield runner(seed, i, policy)
        return
    queue = list(reversed(indices))
    suspects: list[int] = []
    while queue:
        pool = cf.ProcessPoolExecutor(max_workers=jobs)
        running: dict[cf.Future[CaseOutcome], int] = {}
        try:
            while queue or running:
                while queue and len(running) < 2 * jobs:
                    i = queue.pop()
                    running[pool.submit(runner, seed, i, policy)] = i
                done, _ = cf.wait(running, timeout=CASE_TIMEOUT,
                                  return_when=cf.FIRST_COMPLETED)
                if not done:
                    for i in running.values():
                        yield CaseOutcome(i, make_case(seed, i).kind, "finding",
                                          f"hang: no outcome in {CASE_TIMEOUT:.0f} s")
                    running.clear()
                    _kill(pool)
                    break
                for fut in done:
                    i = running.pop(fut)
                    try:
                        yield fut.result()
                    except cf.process.BrokenProcessPool:
                        suspects.append(i)
                if suspects:
                    suspects += running.values()
                    running.clear()
                    break
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        for i in sorted(suspects):
            yield _isolated(seed, i, policy, runner)
        suspects = []


def _kill(pool: cf.ProcessPoolExecutor) -> None:
    """Ends a pool's workers now (the executor has no public way to)."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.terminate()


def _isolated(seed: int, index: int, policy: str, runner: CaseRunner) -> CaseOutcome:
    pool = cf.ProcessPoolExecutor(max_workers=1)
    try:
        return pool.submit(runner, seed, index, policy).result(timeout=CASE_TIMEOUT)
    except cf.process.BrokenProcessPool:
        return CaseOutcome(index, make_case(seed, index).kind, "finding",
                           "crash: the worker process died (a signal, e.g. SIGSEGV)")
    except cf.TimeoutError:
        _kill(pool)
        return CaseOutcome(index, make_case(seed, index).kind, "finding",
                           f"hang: no outcome in {CASE_TIMEOUT:.0f} s")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["CampaignResult", "CaseOutcome", "FuzzCase", "MUTATIONS", "OUTCOMES",
           "campaign", "judge", "make_case", "run_case", "save_reproducer"]
