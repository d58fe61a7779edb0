"""Seeing why a boot failed (emulator/debug/): the symboliser, the trace,
the ring buffer, backtraces, the failure report and the memory map."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

import capstone
import pytest
from elftools.elf.elffile import ELFFile

from emulator import MemoryTree
from emulator.checkers.model import ModelCheck
from emulator.debug import failure_report
from emulator.debug.backtrace import Unwinder, register_reader
from emulator.debug.ring import RingBuffer, RingFindings
from emulator.debug.snapshots import DebugFindings, Inspector
from emulator.debug.trace import CallStructure, Tracer, TraceRecord
from emulator.guest.addresses import LoadedImage
from emulator.guest.elf import ElfImage
from emulator.guest.observer import CheckState
from emulator.guest.symbols import ImageSymbols, Symboliser
from emulator.harness import scenarios_lib
from emulator.harness.boot import Boot, boot
from emulator.harness.firmware import FirmwareBuild
from emulator.harness.runner import BootRunner
from emulator.harness.scenario import Scenario, default_scenario

ROOT = Path(__file__).resolve().parent.parent
OBJDUMP = "powerpc64-linux-gnu-objdump"
OBJCOPY = "powerpc64-linux-gnu-objcopy"
#: objdump's extended mnemonics where capstone prints the basic one.
ALIASES = {"nor": "not", "or.": "mr.", "rldicr": "clrrdi", "rldicl": "srdi",
           "rlwinm": "clrrwi", "rldicr.": "clrrdi.", "sync": "hwsync"}


def bwemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args],
                          capture_output=True, text=True, timeout=300)


def wrapper_elf(abi: str = "elfv1") -> Path:
    return FirmwareBuild(abi=abi).ensure_built().wrapper_elf


def source_line(path: Path, pattern: str) -> int:
    """The line number of the one line of path matching pattern."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(pattern, line)]
    assert len(hits) == 1, hits
    return hits[0]


# --- the symboliser -----------------------------------------------------------

def symboliser(path: Path, at: int = 0x2000000) -> Symboliser:
    return Symboliser(LoadedImage.at(ElfImage(path), at))


def test_elfv1_functions_are_named_at_their_code_not_their_descriptor():
    path = wrapper_elf()
    elf = ElfImage(path)
    s = symboliser(path)
    entry = 0x2000000 + elf.function_entry("ranges_add")
    info = s.symbolise(entry + 8)
    assert (info.function, info.offset, info.exact) == ("ranges_add", 8, True)
    assert info.file == "memranges.c" and info.line
    assert str(info).startswith("ranges_add+0x8 (memranges.c:")
    # The descriptor in .opd is data, not the function.
    desc = s.symbolise(0x2000000 + elf.symbol("ranges_add").value)
    assert desc.function != "ranges_add" or not desc.exact
    # An assembly label names the code after it.
    assert s.symbolise(0x2000000 + 0x24).symbol == "_start+0x24"


def test_elfv2_offsets_count_from_the_global_entry():
    path = wrapper_elf("elfv2")
    elf = ElfImage(path)
    assert elf.elfv2
    s = symboliser(path)
    glob, local = elf.function_entry("ranges_add"), elf.local_entry("ranges_add")
    assert local > glob
    assert s.symbolise(0x2000000 + glob).symbol == "ranges_add+0x0"
    assert s.symbolise(0x2000000 + local).symbol == f"ranges_add+0x{local - glob:x}"


def test_code_without_line_rows_says_so_instead_of_borrowing_a_line():
    s = symboliser(wrapper_elf())
    elf = ElfImage(wrapper_elf())
    helper = 0x2000000 + elf.symbol("_restgpr0_29").value + 8
    info = s.symbolise(helper)
    assert info.symbol == "_restgpr0_29+0x8"
    assert info.file is None and str(info) == "_restgpr0_29+0x8 (no line info)"


def test_without_debug_info_it_says_so_and_falls_back_to_the_nearest_symbol(tmp_path):
    src = wrapper_elf()
    stripped = tmp_path / "nodebug.elf"
    subprocess.run([OBJCOPY, "--strip-debug", str(src), str(stripped)], check=True)
    elf = ElfImage(src)
    s = symboliser(stripped)
    info = s.symbolise(0x2000000 + elf.function_entry("ranges_add") + 4)
    assert info.symbol == "ranges_add+0x4" and not info.debug_info
    assert str(info) == "ranges_add+0x4 (no debug info)"
    # Past the end of the last sized function, in .text: the nearest symbol.
    funcs = [(elf.function_entry(n), sym.size) for n, sym in elf.symbols.items()
             if sym.kind == "func" and sym.size]
    start, size = max(funcs)
    gap = s.symbolise(0x2000000 + start + size + 0x10000)
    assert "nearest symbol" in str(gap) or not gap.in_image
    bare = tmp_path / "bare.elf"
    subprocess.run([OBJCOPY, "--strip-all", str(src), str(bare)], check=True)
    info = symboliser(bare).symbolise(0x2000000 + 0x100)
    assert str(info) == "image+0x100 (no symbols, no debug info)"
    assert str(s.symbolise(0x10)) == "? (outside the images)"


def test_every_pc_printed_goes_through_the_symboliser():
    r = boot(scenarios_lib.get("initrd-below-big-kernel-end", "seed"))
    ow = r.overwrites[0]
    assert "_kstart+0x7c [kernel] (head.S:" in str(ow)
    assert r.location is not None and "+0x" in str(r.location)
    assert all(op.where is None or "+0x" in op.where for op in r.ranges)
    assert "+0x" in r.ranges[0].where


# --- the trace ------------------------------------------------------------------

def objdump(path: Path) -> tuple[dict[int, tuple[int, str]], dict[str, int]]:
    """{link address: (word, mnemonic)} and {function: start} from objdump -d."""
    out = subprocess.run([OBJDUMP, "-d", str(path)], capture_output=True, text=True,
                         check=True).stdout
    insns, labels = {}, {}
    for line in out.splitlines():
        m = re.match(r"([0-9a-f]+) <\.?([^>]+)>:$", line)
        if m:
            labels[m.group(2)] = int(m.group(1), 16)
            continue
        m = re.match(r"\s+([0-9a-f]+):\s+((?:[0-9a-f]{2} ){4})\s*(\S+)", line)
        if m:
            insns[int(m.group(1), 16)] = (int(m.group(2).replace(" ", ""), 16), m.group(3))
    return insns, labels


def test_trace_of_one_function_matches_the_elfs_own_disassembly():
    records: list[TraceRecord] = []
    b = Boot(default_scenario(), observers=[Tracer(function="ranges_add",
                                                   sink=records.append)])
    r = b.run()
    assert r.passed and records
    assert all(rec.where.function == "ranges_add" for rec in records)
    path = b.image.elf.path
    insns, labels = objdump(path)
    start = labels["ranges_add"]
    # capstone over the file's own bytes, read here without bwemu's ELF code.
    with open(path, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        data, base = text.data(), text["sh_addr"]
    cs = capstone.Cs(capstone.CS_ARCH_PPC, capstone.CS_MODE_64 | capstone.CS_MODE_BIG_ENDIAN)
    first_call = records[:16]       # the first call, from its entry
    assert first_call[0].pc - b.image.offset == start
    for rec in first_call:
        link = rec.pc - b.image.offset
        word, mnemonic = insns[link]
        assert rec.word == word, hex(link)
        assert rec.where.symbol == f"ranges_add+0x{link - start:x}"
        ours = rec.text.split()[0]
        assert ALIASES.get(ours, ours) == mnemonic, (hex(link), rec.text, mnemonic)
        (_, _, mn, ops), = cs.disasm_lite(data[link - base:link - base + 4], rec.pc, 1)
        assert rec.text == f"{mn} {ops}".strip()


def test_cli_trace_function_prints_only_that_function(tmp_path):
    out = tmp_path / "trace.txt"
    p = bwemu("boot", "--trace", "--trace-function", "ranges_add", "--trace-file", str(out))
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    assert lines and all(re.match(r"0x[0-9a-f]+  ranges_add\+0x[0-9a-f]+ ", ln)
                         for ln in lines), lines[:3]
    assert "memranges.c:" in lines[0]
    # Said where it went (nothing confirmed it; --map does)
    assert f"bwemu: trace written to {out}: {len(lines)} instruction(s) of the " \
        f"{len(lines)} traced" in p.stderr
    # Registers it changed, after the instruction.
    assert any(re.search(r" r\d+=0x[0-9a-f]+", ln) for ln in lines)


def test_trace_first_last_and_range(tmp_path):
    first: list[TraceRecord] = []
    r = boot(default_scenario(), observers=[Tracer(first=5, sink=first.append)])
    assert r.passed and [x.where.symbol for x in first] == \
        [f"_start+0x{4 * i:x}" for i in range(5)]
    out = tmp_path / "last.txt"
    p = bwemu("boot", "--scenario", "no-rma", "--trace-last", "3", "--trace-file", str(out))
    assert p.returncode == 1
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and "bw_stop+0x0" in lines[-1] and "trap" in lines[-1]
    assert re.search(rf"trace written to {re.escape(str(out))}: 3 instruction\(s\) of the "
                     rf"\d+ traced", p.stderr), p.stderr
    b = Boot(default_scenario())
    lo = b.image.function_entry("ranges_add")
    ranged: list[TraceRecord] = []
    boot(default_scenario(), observers=[Tracer(span=(lo, lo + 8), sink=ranged.append)])
    assert ranged and {x.pc - lo for x in ranged} <= {0, 4}


def test_call_structure_sees_calls_returns_and_the_pc_reading_idiom():
    calls = CallStructure()
    bl, bcl_20_31, blr, b = 0x48000101, 0x429F0005, 0x4E800020, 0x48000100
    for pc, word in ((0x100, bl), (0x200, bcl_20_31), (0x204, blr), (0x104, b)):
        calls.arrive(pc)
        calls.execute(pc, word)
    assert calls.returns == []


# --- backtraces -------------------------------------------------------------------

def check_backtraces(scenario: Scenario, firmware: FirmwareBuild | None,
                     every: bool) -> tuple[int, list[str]]:
    """Unwinds at each instruction of a boot (each new (pc, calls in flight)
    unless every) and compares the return addresses with the calls the
    trace has seen; returns (unwinds, mismatches)."""
    bad: list[str] = []
    seen: set[tuple[int, tuple[int, ...]]] = set()
    state: dict[str, object] = {}
    unwinds = [0]

    def step(pc: int, calls: CallStructure) -> None:
        key = (pc, tuple(calls.returns))
        if not every and key in seen:
            return
        seen.add(key)
        unwinds[0] += 1
        unwinder = state["unwinder"]
        assert isinstance(unwinder, Unwinder)
        bt = unwinder.backtrace(state["registers"]())   # type: ignore[operator]
        if bt.return_addresses != list(reversed(calls.returns)) and len(bad) < 5:
            bad.append(f"at 0x{pc:x}: calls {[hex(a) for a in reversed(calls.returns)]}\n{bt}")
    b = Boot(scenario, firmware, observers=[Tracer(on_step=step)])
    state["unwinder"] = Unwinder.for_machine(b.guest.symbols, b.machine)
    state["registers"] = register_reader(b.machine.uc)
    b.run()
    return unwinds[0], bad


@pytest.mark.parametrize("name", ["kernel-fits-below-wrapper", "no-rma"])
def test_backtrace_agrees_with_the_traced_calls_at_every_instruction(name):
    # Every instruction of the boot, each (pc, calls in flight) once: the
    # same code with the same calls in flight unwinds by the same rules.
    n, bad = check_backtraces(scenarios_lib.get(name), None, every=False)
    assert n > 1000 and not bad, "\n".join(bad)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kernel-fits-below-wrapper", "reserve-map-overflows-table"])
def test_backtrace_agrees_on_the_elfv2_build(name):
    n, bad = check_backtraces(scenarios_lib.get(name), FirmwareBuild(abi="elfv2"),
                              every=False)
    assert n > 1000 and not bad, "\n".join(bad)


@pytest.mark.slow
def test_backtrace_agrees_at_literally_every_instruction():
    n, bad = check_backtraces(default_scenario(), None, every=True)
    assert n > 900_000 and not bad, "\n".join(bad)


# --- the ring buffer ----------------------------------------------------------------

def test_a_passing_boot_records_nothing_and_the_debug_aids_never_judge():
    r = boot(default_scenario())
    ring, dbg = r.findings["ring"], r.findings["debug"]
    assert isinstance(ring, RingFindings) and not ring.recorded and not ring.snapshots
    assert isinstance(dbg, DebugFindings)
    assert ring.status.state is dbg.status.state is CheckState.NOT_A_CHECK
    assert r.passed and {c.name for c in r.checks} == {"mirror", "watch", "model", "handoff"}
    assert failure_report.build(r) is None


def test_the_ring_of_a_fatal_boot_ends_at_the_trap_in_order():
    r = boot(scenarios_lib.get("no-rma"))
    ring = r.findings["ring"]
    assert isinstance(ring, RingFindings)
    ring.ensure_recorded()
    assert ring.recorded and "reached again at the same pc" in ring.how
    last = ring.snapshot("stop")
    assert last is not None and len(last.entries) == 64
    texts = [(e.where.symbol, e.instruction.text) for e in last.entries]
    assert texts[-1] == ("bw_stop+0x0", "trap")
    assert texts[-2][0].startswith("fatal+") and texts[-2][1].startswith("bl ")
    # In order: each instruction follows the one before or is a branch target.
    for a, b in pairwise(last.entries):
        assert b.instruction.pc == a.instruction.pc + 4 or \
            a.instruction.text.split()[0].startswith("b"), (a, b)


# --- the failure reports --------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_hole(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, ET.Element]:
    svg = tmp_path_factory.mktemp("map") / "seed.svg"
    p = bwemu("boot", "--scenario", "initrd-below-big-kernel-end", "--policy", "seed",
              "--json", "--map", str(svg))
    assert p.returncode == 1, p.stderr
    return json.loads(p.stdout), ET.parse(svg).getroot()


def test_the_seed_hole_is_explained_in_one_report(seed_hole):
    out, _ = seed_hole
    rep = out["report"]
    text = rep["text"]
    line = source_line(ROOT / "firmware/testkernel/head.S", r"^\s*std\s+%r0, 0\(%r9\)")
    store = rep["moments"][0]
    # The overwriting store's function and line, and its instruction.
    assert store["overwrite"]["region"] == "initrd (from the chain-loader)"
    assert (store["where"]["function"], store["where"]["line"]) == ("_kstart", line)
    assert f"_kstart+0x7c [kernel] (head.S:{line}):  std r0, 0(r9)" in text
    # The backtrace at the first overwriting store, and how the kernel got there.
    assert store["backtrace"]["frames"][0]["where"]["function"] == "_kstart"
    assert [f["where"]["function"] for f in store["entered_from"]["frames"]] == \
        ["bw_enter_kernel", "start_wrapper", "_start"]
    # The last instructions before it, ending at the store.
    last = store["last_instructions"]
    assert len(last) == 64 and last[-1]["pc"] == store["pc"] and last[-1]["text"] == "std r0, 0(r9)"
    assert "the last 64 instructions, up to here (ring buffer)" in text
    # The range table then, and its timeline.
    assert store["range_table"] and [0x1000000, 0x1018000] in store["range_table"]
    assert any("ranges_init_malloc()" in t for t in rep["timeline"])
    assert "range table then: 0x1000000..0x1018000" in text
    assert any(r["hits"] and r["region"].startswith("initrd") for r in rep["protected_regions"])
    # The text map shows the footprint over the initrd.
    assert "OVERLAP: kernel footprint 0x0..0x" in text and "overlaps initrd 0x1000000" in text
    # the overwrite says what it did (it said the initrd overlapped itself)
    assert "OVERLAP: stores at 0x1000000..0x1018000 overwrote initrd 0x1000000" in text


def test_the_seed_hole_map_shows_the_footprint_over_the_initrd(seed_hole):
    _, svg = seed_hole
    ns = {"s": "http://www.w3.org/2000/svg"}

    def blocks(column: str) -> dict[str, tuple[int, int]]:
        col = svg.find(f"s:g[@data-column='{column}']", ns)
        assert col is not None
        return {g.get("data-name"): (int(g.get("data-start"), 16), int(g.get("data-end"), 16))
                for g in col.findall("s:g[@class='block']", ns)}
    before, after = blocks("before"), blocks("after")
    assert {"RAM", "wrapper", "input tree", "initrd"} <= set(before)
    assert {"kernel footprint", "kernel image", "heap", "final tree", "initrd",
            "overwrite: initrd (from the chain-loader)"} <= set(after)
    fp, initrd = after["kernel footprint"], after["initrd"]
    assert fp[0] == 0 and fp[0] < initrd[1] and initrd[0] < fp[1]
    # Every block is labelled with its name, start and end.
    for g in svg.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "block":
            texts = " ".join(t.text or "" for t in g.iter("{http://www.w3.org/2000/svg}text"))
            assert g.get("data-start") in texts or g.get("data-name") == "RAM", texts
    notes = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")
             if t.get("class") == "note"]
    assert any(n.startswith("overlap: kernel footprint") and "initrd" in n for n in notes)


def test_a_wrapper_fatal_report_backtraces_from_fatal_to_the_failing_step(tmp_path):
    dtb = tmp_path / "nomemory.dtb"
    dtb.write_bytes(MemoryTree(memory=()).build())
    p = bwemu("boot", "--dtb", str(dtb), "--json")
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert out["exit"] == "fatal"
    stop = out["report"]["moments"][-1]
    names = [f["where"]["function"] for f in stop["backtrace"]["frames"]]
    assert names[:2] == ["bw_stop", "fatal"] and names[-2:] == ["start_wrapper", "_start"]
    step = stop["backtrace"]["frames"][2]["where"]
    assert step["function"] in ("kexec_init", "find_rma_end") and step["line"]
    assert stop["registers"]["pc"] == out["pc"]
    assert stop["last_instructions"][-1]["text"] == "trap"
    text = out["report"]["text"]
    assert "=> 0x" in text and "registers:" in text and "console (last" in text


def test_a_model_mismatch_names_the_first_differing_placement():
    # The seed policy's build, checked against the fixed policy's prediction.
    sc = scenarios_lib.get("initrd-below-big-kernel-end", "seed")
    r = BootRunner(sc, FirmwareBuild(policy="seed"),
                   observers=[ModelCheck("fixed"), Inspector(), RingBuffer()]).run()
    rep = failure_report.build(r)
    assert rep is not None and r.comparison is not None and not r.comparison.matches
    assert rep.model[0].startswith("first: kernel: predicted 0x")
    assert "--- model: first differing placement" in rep.text()
    assert rep.to_json()["model"][0] == rep.model[0]


def test_the_text_report_of_a_failed_boot_comes_before_the_verdict():
    p = bwemu("boot", "--scenario", "no-rma")
    assert p.returncode == 1
    assert "=== why the boot failed" in p.stdout
    assert p.stdout.rstrip().splitlines()[-1].startswith("FAIL:")


def test_image_symbols_are_parsed_once_per_file(tmp_path):
    copy = tmp_path / "w.elf"
    shutil.copy(wrapper_elf(), copy)
    a = ImageSymbols.of_path(copy)
    assert ImageSymbols.of_path(copy) is a
    assert a.has_cfi and a.has_lines


# --- running in slices ----------------------------------------------------------------

def test_a_run_in_slices_is_the_same_run_and_checkpoints_are_exact():
    plain = Boot(default_scenario(), debug=False)
    a = plain.run()
    sliced = Boot(default_scenario(), debug=False)
    sliced.machine.slice = 100_000
    seen: list[int] = []
    sliced.machine.at_instruction(123_457, lambda: seen.append(sliced.machine.reg("pc")))
    b = sliced.run()
    assert (a.exit, a.pc, a.console) == (b.exit, b.pc, b.console) and b.passed
    total = boot(default_scenario(), debug=False, count_instructions=True).instructions
    assert total is not None
    # The stop fell in the last slice (slices restart at each checkpoint).
    assert total - 100_000 < sliced.machine.progress <= total
    short = Boot(default_scenario().replace(budget=123_457), debug=False).run()
    assert short.exit == "budget" and seen == [short.pc]


# --- the flags' input, refused before the boot ---------------------------------------------------

def one_error_before_the_boot(p: subprocess.CompletedProcess) -> str:
    """The boot never ran (no report, no verdict): one error line, exit 2."""
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stdout == "", p.stdout
    assert len(p.stderr.splitlines()) == 1 and p.stderr.startswith("bwemu: error: "), p.stderr
    return p.stderr


def test_a_map_or_trace_file_that_cannot_be_written_is_refused_before_the_boot(tmp_path):
    missing = tmp_path / "no-such-dir" / "map.svg"
    err = one_error_before_the_boot(bwemu("boot", "--map", str(missing)))
    assert f"--map {missing}: there is no directory" in err
    err = one_error_before_the_boot(bwemu("boot", "--map", str(tmp_path)))
    assert f"--map {tmp_path}: is a directory" in err
    trace = tmp_path / "no-such-dir" / "trace.txt"
    err = one_error_before_the_boot(bwemu("boot", "--trace-file", str(trace)))
    assert f"--trace-file {trace}: there is no directory" in err
    # Checked, not left behind: a refused boot creates neither file.
    ok = tmp_path / "map.svg"
    err = one_error_before_the_boot(bwemu("boot", "--map", str(ok), "--trace-file",
                                          str(trace)))
    assert not ok.exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_trace_that_fails_to_be_written_is_one_line_at_the_end():
    for extra in ([], ["--trace-last", "5"]):
        p = bwemu("boot", "--trace-file", "/dev/full", *extra)
        assert p.returncode == 2 and "OK: kernel reached" in p.stdout, p.stderr
        assert p.stderr == ("bwemu: error: --trace-file /dev/full: cannot write it: "
                            "No space left on device\n"), p.stderr


def test_an_unknown_trace_function_is_refused_with_the_images_searched(tmp_path):
    out = tmp_path / "trace.txt"
    out.write_text("an earlier trace\n")
    err = one_error_before_the_boot(bwemu("boot", "--trace-function", "nosuchfn",
                                          "--trace-file", str(out)))
    assert ("--trace-function 'nosuchfn': no function of that name in the symbols of the "
            "image wrapper.elf or the kernel testkernel.elf") in err
    assert "did you mean" not in err
    assert out.read_text() == "an earlier trace\n"      # not opened, not emptied
    err = one_error_before_the_boot(bwemu("boot", "--trace-function", "range_add"))
    assert "did you mean 'ranges_add'" in err
    # The library's Tracer says so in its findings instead of raising.
    r = boot(default_scenario(), observers=[Tracer(function="nosuchfn")])
    trace = r.findings["trace"]
    assert r.passed and trace.lines == 0 and "testkernel.elf" in (trace.why_not or "")


def test_a_kernel_function_is_still_traced_from_the_hand_off(tmp_path):
    out = tmp_path / "trace.txt"
    p = bwemu("boot", "--trace-function", "kernel_main", "--trace-first", "3",
              "--trace-file", str(out))
    assert p.returncode == 0 and "note" not in p.stderr, p.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and all(" kernel_main+0x" in ln for ln in lines), lines


def test_a_trace_range_no_instruction_ran_in_gets_a_note(tmp_path):
    out = tmp_path / "trace.txt"
    p = bwemu("boot", "--trace-range", "0x5000000000-0x5000000010", "--trace-file", str(out))
    assert p.returncode == 0 and out.read_text() == ""
    assert ("bwemu: note: --trace-range 0x5000000000-0x5000000010: no instruction ran at "
            "these addresses; the trace is empty") in p.stderr
    lo = Boot(default_scenario()).image.function_entry("ranges_add")
    p = bwemu("boot", "--trace-range", f"0x{lo:x}-0x{lo + 8:x}", "--trace-file", str(out))
    assert p.returncode == 0 and "note" not in p.stderr, p.stderr
    assert len(out.read_text().splitlines()) > 0
    # A function that exists but never runs (nothing in the wrapper calls it).
    p = bwemu("boot", "--trace-function", "ranges_largest_gap", "--trace-file", str(out))
    assert p.returncode == 0 and out.read_text() == ""
    assert ("bwemu: note: --trace-function ranges_largest_gap: the function never ran; "
            "the trace is empty") in p.stderr
