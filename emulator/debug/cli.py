"""The debugging flags of `bwemu boot`, added by one function, so that
emulator/cli.py stays thin: add_boot_arguments(parser) when the parser is
built, observers(args) for the boot, after_boot(args, result) once it ran.

    --trace [--trace-function NAME] [--trace-range A-B]
            [--trace-first N | --trace-last N] [--trace-file F]
    --map FILE.svg

What can be refused is refused before the boot: a --map or --trace-file
that cannot be written, and (as the image is loaded, before its first
instruction) a --trace-function neither the image nor its kernel has.
A --trace-range or --trace-function that no instruction ran in gets a
note at the end.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from ..argtypes import count
from ..errors import InputError
from ..guest.observer import Guest, Observer
from .outputs import check_writable, open_output, write_failed, write_output

if TYPE_CHECKING:
    from .failure_report import BootView
# The tracer, the report and the map are loaded by the flags that use them.


class DebugArgumentError(InputError):
    """A debugging flag that cannot be honoured (no memory map to draw...)."""


def _span(text: str) -> tuple[int, int]:
    try:
        from .trace import parse_span
        return parse_span(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_boot_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "seeing why a boot failed",
        "A boot that does not pass always prints a failure report (in --json: "
        "\"report\"): backtraces, the last instructions, the range table, the "
        "protected regions and a text memory map.  These add an instruction "
        "trace and a picture of the map.")
    g.add_argument("--trace", action="store_true",
                   help="trace every instruction (PC, function+offset, source line, "
                   "instruction, registers changed); any --trace-* option implies it")
    g.add_argument("--trace-function", metavar="NAME",
                   help="only the instructions of this function (the wrapper's or the "
                   "kernel's)")
    g.add_argument("--trace-range", metavar="A-B", type=_span,
                   help="only instructions at guest addresses A <= pc < B")
    one = g.add_mutually_exclusive_group()
    one.add_argument("--trace-first", metavar="N", type=count,
                     help="stop tracing after N instructions")
    one.add_argument("--trace-last", metavar="N", type=count,
                     help="keep only the last N instructions, written at the end")
    g.add_argument("--trace-file", metavar="F",
                   help="write the trace to F (default: standard output; standard "
                   "error with --json)")
    g.add_argument("--map", metavar="FILE.svg",
                   help="draw the memory map before the boot and at its end")


def tracing(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "trace", False) or args.trace_function or args.trace_range
                or args.trace_first or args.trace_last or args.trace_file)


def observers(args: argparse.Namespace) -> list[Observer]:
    """The observers the flags ask for (a Tracer, or none).  Called before
    the boot: a --map or --trace-file that cannot be written is refused
    here (OutputFileError, an InputError); an unknown --trace-function as
    the image is loaded, before its first instruction (DebugArgumentError)."""
    if args.map:
        check_writable(args.map, "--map")
    if not tracing(args):
        return []
    if args.trace_file:
        check_writable(args.trace_file, "--trace-file")
    from .trace import Tracer, UnknownFunctionError

    class CliTracer(Tracer):
        """A Tracer whose unknown --trace-function stops the boot, by name,
        before the image's first instruction, and before --trace-file is
        opened (and emptied)."""

        def attach(self, guest: Guest) -> None:
            try:
                super().attach(guest)
            except UnknownFunctionError as e:
                raise DebugArgumentError(f"--trace-function {e}") from None
            out: TextIO
            if args.trace_file:
                out = open_output(args.trace_file, "--trace-file")   # closed in after_boot
            else:
                out = sys.stderr if getattr(args, "json", False) else sys.stdout
            args._trace_out = out
            self.write_to(out)

    return [CliTracer(None, function=args.trace_function, span=args.trace_range,
                      first=args.trace_first, last=args.trace_last, strict=True)]


def after_boot(args: argparse.Namespace, result: BootView) -> None:
    """Closes the trace file, notes a trace filter that nothing ran in,
    draws the map, if asked.  A trace or map that could not be written (a
    full disk) is an InputError here, once the result has been printed."""
    out = getattr(args, "_trace_out", None)
    failed: OSError | None = None
    if out is not None and out not in (sys.stdout, sys.stderr):
        try:
            out.close()
        except OSError as e:
            failed = e
    from .trace import TraceFindings
    found = result.findings.get("trace")
    if isinstance(found, TraceFindings):
        failed = found.write_error or failed
        if found.lines == 0 and found.why_not is None:
            _note_empty(args)
    if args.map:
        from .failure_report import memory_map
        from .memmap import to_svg
        m = memory_map(result)
        if m is None:
            raise DebugArgumentError("no memory map: the inspector was not attached")
        write_output(args.map, to_svg(m), "--map")
        print(f"bwemu: memory map written to {args.map}", file=sys.stderr)
    if failed is None:
        if args.trace_file and isinstance(found, TraceFindings) and found.lines:
            written = len(found.kept) if args.trace_last else found.lines
            print(f"bwemu: trace written to {args.trace_file}: {written} instruction(s) "
                  f"of the {found.lines} traced", file=sys.stderr)
        return
    if args.trace_file:
        raise write_failed(args.trace_file, "--trace-file", failed)
    if isinstance(failed, BrokenPipeError):
        raise failed            # the reader went away (| head): main's to handle
    raise DebugArgumentError(f"cannot write the trace to standard "
                             f"{'error' if out is sys.stderr else 'output'}: "
                             f"{failed.strerror}")


def _note_empty(args: argparse.Namespace) -> None:
    """A trace filter that matched no instruction run: said on stderr, as
    a typo in an address looks just like it (it cannot be known before)."""
    if args.trace_range:
        start, end = args.trace_range
        what = f"--trace-range 0x{start:x}-0x{end:x}: no instruction ran at these addresses"
    elif args.trace_function:
        what = f"--trace-function {args.trace_function}: the function never ran"
    else:
        return
    print(f"bwemu: note: {what}; the trace is empty", file=sys.stderr)


__all__ = ["add_boot_arguments", "after_boot", "observers", "tracing"]
