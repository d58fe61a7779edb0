"""The bwemu command line: a thin layer over the library (emulator.boot)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import NoReturn

from . import bench, corpus_cli, report
from .argtypes import count, counted, index, instructions, jobs
from .coverage import cli as coverage_cli
from .debug import cli as debug_cli
from .debug.outputs import check_folder
from .errors import BwemuError
from .gdbstub import cli as gdb_cli
from .guest.entry import CONVENTIONS
from .harness import ram_fill, scenarios_lib
from .harness.boot import boot
from .harness.firmware import ABIS, POLICIES, FirmwareBuild
from .harness.inputs import check_input, read_input
from .harness.scenario import (
    MAX_KERNEL_BSS,
    MemoryTree,
    Scenario,
    ScenarioError,
    default_scenario,
)


def address(text: str) -> int:
    """An address in hex (0x...) or decimal."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address "
                                         f"(use hex like 0x2000000 or decimal)") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"{text} is outside the 64-bit address space")
    return value


#: ranges-check's longest operation sequence: the table has 32 entries,
#: so longer sequences only revisit full-table states, more slowly.
MAX_SEQUENCE = 100_000

SIZE_SUFFIXES = {"K": 10, "M": 20, "G": 30, "T": 40}


def _bytes(text: str) -> int:
    """Bytes in hex or decimal, or with a K/M/G/T suffix (512M)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    shift = SIZE_SUFFIXES.get(t[-1:], 0) if t else 0
    try:
        return int(t[:-1] if shift else t, 0) << shift
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (use 512M, 16G, "
                                         f"0x20000000 or a number of bytes)") from None


def size(text: str) -> int:
    """A size: more than 0, less than 2^64."""
    value = _bytes(text)
    if not 0 < value < 2**64:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0 and less than 2^64")
    return value


def kernel_bss(text: str) -> int:
    """--kernel-bss: a size as --memory takes one (40M), 0 included, up to
    what a Scenario takes."""
    value = _bytes(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is less than 0")
    if value > MAX_KERNEL_BSS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_KERNEL_BSS:,}")
    return value


def register(text: str) -> tuple[str, int]:
    """NAME=VALUE for --reg."""
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (e.g. r6=0)")
    return name.strip().lower(), address(value)


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    # --- named scenarios (emulator/scenarios_lib.py) ---
    if getattr(args, "scenario", None) is not None:
        if args.dtb is not None:
            raise ScenarioError("--scenario and --dtb exclude each other")
        sc = scenarios_lib.get(args.scenario)
        if args.initrd is not None:
            sc = sc.replace(initrd=_read(args.initrd, "--initrd"))
    # --- end named scenarios ---
    elif args.dtb is None:
        sc = default_scenario()
        if args.image is not None:
            # Linux's boot wrapper has no PAPR console: give it a UART.
            sc = sc.replace(name="default", dtb=MemoryTree(console="uart").build())
        if args.initrd is not None:
            sc = sc.replace(initrd=_read(args.initrd, "--initrd"))
    else:
        sc = Scenario.from_files(args.dtb, initrd=args.initrd)
    if args.image is not None:
        ours = [o for o, v in (("--attach-initrd", args.attach_initrd),
                               ("--kernel-bss", args.kernel_bss)) if v is not None]
        if ours:
            raise ScenarioError(f"{ours[0]} describes bwemu's own firmware image, "
                                f"not an --image FILE")
        sc = sc.replace(image=check_input(args.image, "--image"), entry=args.entry,
                        kernel=None if args.kernel is None
                        else check_input(args.kernel, "--kernel"),
                        entry_offset=args.entry_offset, regs=tuple(args.reg or ()),
                        msr=args.msr)
    elif args.kernel is not None or args.entry_offset is not None:
        raise ScenarioError("--kernel and --entry-offset describe an --image FILE")
    elif args.entry != "kexec" or args.reg or args.msr is not None:
        sc = sc.replace(entry=args.entry, regs=tuple(args.reg or ()), msr=args.msr)
    if args.memory is not None:
        sc = sc.replace(memory=args.memory)
    if args.cmdline is not None:
        sc = sc.replace(cmdline=args.cmdline)
    if args.uart:
        sc = sc.replace(add_uart=True)
    if args.initrd_at is not None and sc.initrd is None:
        raise ScenarioError("--initrd-at needs --initrd FILE")
    changes = {k: v for k, v in (("dtb_at", args.dtb_at), ("wrapper_at", args.wrapper_at),
                                 ("initrd_at", args.initrd_at),
                                 ("kernel_bss", args.kernel_bss),
                                 ("budget", args.budget),
                                 ("ram_fill", getattr(args, "ram_fill", None)))
               if v is not None}
    if args.attach_initrd is not None:
        changes["attached_initrd"] = _read(args.attach_initrd, "--attach-initrd")
    if args.policy is not None:           # else the scenario's own
        changes["policy"] = args.policy
    return sc.replace(**changes)


def _read(path: str, what: str) -> bytes:
    return read_input(path, what)


def cmd_boot(args: argparse.Namespace) -> int:
    sc = scenario_from_args(args)
    result = boot(sc, FirmwareBuild(policy=sc.policy, abi=args.abi), watch=not args.no_watch,
                  observers=debug_cli.observers(args) + gdb_cli.observers(args))
    if args.json:
        print(report.dumps(result))
    else:
        print(report.to_text(result))
        if args.ranges:
            print(report.ranges_text(result))
    debug_cli.after_boot(args, result)     # the trace file, --map
    return 0 if result.passed else 1


def cmd_scenarios(args: argparse.Namespace) -> int:
    """The named scenarios, one per line with what each is for."""
    for name, entry in scenarios_lib.SCENARIOS.items():
        print(f"{name:34s} {entry.description}")
    return 0


def cmd_fuzz(args: argparse.Namespace) -> int:
    """A fuzz campaign (emulator/harness/fuzz.py): cases start..start+runs of
    campaign --seed, or the one case --only."""
    from .harness import fuzz  # only when asked: it imports the pool machinery
    indices = [args.only] if args.only is not None else range(args.start,
                                                              args.start + args.runs)
    out = Path(args.findings)
    check_folder(out, "--findings")
    res = fuzz.campaign(args.seed, indices, jobs=args.jobs, policy=args.policy,
                        findings_dir=out, progress=sys.stderr.isatty() or args.progress)
    print(res.table())
    print(f"{res.runs} cases of seed {args.seed} in {res.seconds:.1f} s with "
          f"{args.jobs} job(s): {len(res.findings)} finding(s)")
    for f in res.findings:
        print(f"  finding: case {f.index} ({f.kind}): {f.summary}")
        print(f"    replay: bwemu fuzz --seed {args.seed} --only {f.index}   "
              f"(inputs in {out / f'fuzz-{args.seed}-{f.index}'})")
    return 1 if res.findings else 0


def cmd_ranges_check(args: argparse.Namespace) -> int:
    from .harness.ranges_check import check  # the mirror's harness: only when asked
    build = FirmwareBuild(policy=args.policy, fault=args.fault)
    res = check(build, examples=args.examples, length=args.length, seed=args.seed)
    what = f"{res.examples} sequences, {res.operations} operations, {res.seconds:.1f} s"
    if res.failing is None:
        print(f"ranges-check: the C matches the model: {what}")
        return 0
    print(f"ranges-check: DIVERGENCE after {what}; smallest failing sequence:")
    for i, op in enumerate(res.failing, 1):
        print(f"  #{i} {op.name}({', '.join(hex(a) for a in op.args)})")
    print(res.report)
    return 1


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line (exit 2), like every
    other error bwemu reports; --help still shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="bwemu", description="Run the PowerPC "
                      "bootwrapper in an emulator and check what it does.")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("boot", help="boot the wrapper on a scenario",
                       description="Boot the wrapper: the built-in default scenario, "
                       "or a device tree of yours.  Addresses left out are chosen "
                       "as kexec-tools would, and the output says which.")
    what = b.add_argument_group("what to boot (default: the built-in scenario)")
    what.add_argument("--scenario", metavar="NAME|FILE",   # named scenarios
                      help="a named scenario (`bwemu scenarios` lists them) or a scenario "
                      "file of yours (docs/scenarios.md)")
    what.add_argument("--dtb", metavar="FILE",
                      help="device tree to hand the wrapper: a blob, or a .dts (compiled "
                      "with dtc)")
    what.add_argument("--initrd", metavar="FILE", help="initrd loaded by the chain-loader")
    what.add_argument("--memory", type=size, metavar="SIZE",
                      help="replace /memory with one block of SIZE at 0 (512M, 16G), as a "
                      "boot loader fills in a board tree")
    what.add_argument("--cmdline", metavar="TEXT", help="/chosen bootargs")
    what.add_argument("--uart", action="store_true",
                      help="add an ns16550 to the tree and make it the console (for a "
                      "wrapper with no driver for the tree's own console)")

    where = b.add_argument_group(
        "where the chain-loader put things (default: as kexec-tools would; the output "
        "says which)")
    where.add_argument("--load-at", "--wrapper-at", type=address, metavar="ADDR",
                       dest="wrapper_at",
                       help="the wrapper or --image (an --image not position independent: "
                       "its link address)")
    where.add_argument("--dtb-at", type=address, metavar="ADDR", help="the device tree")
    where.add_argument("--initrd-at", type=address, metavar="ADDR", help="the --initrd")

    image = b.add_argument_group("an image of yours instead of bwemu's wrapper, and the "
                                 "entry state (docs/guest-abi.md)")
    image.add_argument("--image", metavar="FILE",
                       help="a big-endian PowerPC ELF32/ELF64 (Linux's zImage, a vendor's "
                       "wrapper) or, with --entry-offset, a raw binary")
    image.add_argument("--kernel", metavar="ELF",
                       help="the kernel the image carries: its size, entry and symbols")
    image.add_argument("--entry-offset", type=address, metavar="N",
                       help="a raw --image: where it starts, in bytes from its first")
    image.add_argument("--entry", choices=CONVENTIONS, default="kexec",
                       help="entry convention: kexec (r3 tree, r4 image, r5 0, 64-bit) or "
                       "epapr (r3 tree, r6 ePAPR magic, r7 mapped size, 32-bit)")
    image.add_argument("--reg", type=register, action="append", metavar="NAME=VALUE",
                       help="override a register at entry (repeatable), e.g. r6=0")
    image.add_argument("--msr", type=address, metavar="VALUE",
                       help="override the MSR at entry")

    ours = b.add_argument_group("bwemu's own wrapper and test kernel")
    ours.add_argument("--policy", choices=POLICIES,
                      help="the wrapper's heap policy (docs/kexec.md; default: the scenario "
                      "file's, else fixed)")
    ours.add_argument("--abi", choices=ABIS, default=ABIS[0],
                      help="the ABI the firmware is built for (make -C firmware ABI=elfv2)")
    ours.add_argument("--attach-initrd", metavar="FILE",
                      help="an initrd carried inside the wrapper image instead")
    ours.add_argument("--kernel-bss", type=kernel_bss, metavar="SIZE",
                      help="memory the test kernel claims past its file (40M: a bigger "
                      "kernel)")

    run = b.add_argument_group("running and output")
    run.add_argument("--budget", type=instructions, metavar="N",
                     help="instruction budget (default 400 million)")
    run.add_argument("--json", action="store_true", help="one JSON object on stdout")
    run.add_argument("--no-watch", action="store_true",
                     help="do not watch protected memory (faster; no overwrites reported)")
    run.add_argument("--ranges", action="store_true",
                     help="show the range-table timeline")
    b.set_defaults(func=cmd_boot)
    debug_cli.add_boot_arguments(b)   # --trace*, --map: emulator/debug/cli.py
    gdb_cli.add_boot_options(b)       # --gdb PORT: emulator/gdbstub/cli.py
    ram_fill.add_boot_argument(b)     # --ram-fill PATTERN: emulator/harness/ram_fill.py

    # --- named scenarios ---
    n = sub.add_parser("scenarios", help="list the named scenarios")
    n.set_defaults(func=cmd_scenarios)
    # --- end named scenarios ---

    c = sub.add_parser("ranges-check", help="the range table's C against the model, "
                       "on random operation sequences",
                       description="Run random operation sequences through the wrapper's "
                       "range-table C in the emulator and through the reference model in "
                       "lockstep; report the smallest divergent sequence, if any.")
    c.add_argument("--examples", type=count, default=300, metavar="N")
    c.add_argument("--length", type=counted(MAX_SEQUENCE), default=30, metavar="OPS",
                   help=f"operations per sequence (default 30, at most {MAX_SEQUENCE:,})")
    c.add_argument("--seed", type=int, help="for a repeatable run")
    c.add_argument("--fault", metavar="NAME",
                   help="build with a deliberate fault (memranges.c: NO_MERGE_ADJACENT, "
                   "OVERFLOW_OFF_BY_ONE, STALE_TAIL, FULL_CORRUPTS, IGNORE_FULL)")
    c.add_argument("--policy", choices=POLICIES, default="fixed")
    c.set_defaults(func=cmd_ranges_check)

    z = sub.add_parser("fuzz", help="mutate valid boots and check every outcome",
                       description="Structured mutation of valid trees, payloads and load "
                       "addresses, each booted with every checker attached.  Each case "
                       "comes from (seed, index) alone, so machines can split a campaign "
                       "by --start/--runs and replay one case with --only.")
    z.add_argument("--runs", type=count, default=200, metavar="N")
    z.add_argument("--seed", type=int, default=1)
    z.add_argument("--start", type=index, default=0, metavar="I",
                   help="first case index (to split a campaign across machines)")
    z.add_argument("--only", type=index, metavar="I", help="run case I alone (a replay)")
    z.add_argument("--jobs", type=jobs, default=os.cpu_count() or 1, metavar="J")
    z.add_argument("--policy", choices=POLICIES, default="fixed")
    z.add_argument("--findings", default="fuzz-findings", metavar="DIR",
                   help="where reproducers of findings go (default ./fuzz-findings)")
    z.add_argument("--progress", action="store_true",
                   help="a progress bar even when stderr is not a terminal")
    z.set_defaults(func=cmd_fuzz)

    bench.add_parser(sub)                 # every performance target: emulator/bench.py

    corpus_cli.add_run_parser(sub)        # scenario files: emulator/corpus_cli.py
    corpus_cli.add_record_parser(sub)
    coverage_cli.add_coverage_parser(sub)   # lcov tracefiles: emulator/coverage/cli.py
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()      # a full disk shows here, not in the interpreter's exit
        return status
    except BwemuError as e:
        # Everything bwemu raises on purpose names the input and the field.
        print(f"bwemu: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (| head): not an error of ours.
        _drop_stdout()
        sys.stderr.close()
        return 0
    except OSError as e:
        # The environment, not the input: a full disk, a vanished folder.
        where = e.filename or "standard output"
        print(f"bwemu: error: {where}: {e.strerror or e}", file=sys.stderr)
        _drop_stdout()
        return 2


def _drop_stdout() -> None:
    """Sends what stdout still buffers to /dev/null: flushed at exit into a
    full disk or a closed pipe it would fail again, with a traceback."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
