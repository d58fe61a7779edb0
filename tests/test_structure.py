"""The shape of the code: layers without import cycles, one error root,
a runner that knows observers only by their protocol, and a DWARF layout
parsed once per ELF content, not once per process."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import emulator
import wrapper_model
from emulator.errors import BwemuError
from emulator.guest import dwarf
from emulator.harness.firmware import FirmwareBuild

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("emulator", "wrapper_model")


def modules() -> list[str]:
    out = []
    for pkg in (emulator, wrapper_model):
        out.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            out.append(info.name)
    return sorted(out)


def module_file(name: str) -> Path:
    path = ROOT / Path(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(name: str) -> set[str]:
    """Every project module `name` imports, at any depth of its code
    (inside functions and `if TYPE_CHECKING:` blocks included)."""
    tree = ast.parse(module_file(name).read_text())
    is_pkg = module_file(name).name == "__init__.py"
    package = name if is_pkg else name.rsplit(".", 1)[0]
    found: set[str] = set()
    known = set(modules())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def test_the_modules_import_each_other_without_a_cycle():
    graph = {m: imports_of(m) for m in modules()}
    # A package's __init__ re-exporting its submodules is not a cycle of
    # the code; every other edge counts, TYPE_CHECKING ones included.
    for m in graph:
        graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = path[path.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_model_imports_nothing_from_the_emulator():
    for m in modules():
        if m.startswith("wrapper_model"):
            assert not [t for t in imports_of(m) if t.startswith("emulator")], m


def test_the_boot_runner_and_the_guest_layer_import_no_checker():
    for m in ["emulator.harness.runner"] + [m for m in modules()
                                            if m.startswith("emulator.guest")]:
        bad = [t for t in imports_of(m) if t.startswith("emulator.checkers")
               or t.startswith("emulator.harness") and m.startswith("emulator.guest")]
        assert not bad, (m, bad)


def test_the_debug_layer_sits_between_the_checkers_and_the_harness():
    # Checkers and the guest never import the debugging aids; the aids
    # never import the harness (which adds them to every boot) or the CLI.
    for m in modules():
        deps = imports_of(m)
        if m.startswith(("emulator.checkers", "emulator.guest")):
            assert not [t for t in deps if t.startswith("emulator.debug")], m
        if m.startswith("emulator.debug"):
            assert not [t for t in deps if t.startswith(("emulator.harness", "emulator.cli",
                                                         "emulator.report"))], m


def test_every_exception_class_derives_from_the_one_root():
    seen = []
    for name in modules():
        mod = importlib.import_module(name)
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                seen.append(cls)
                assert issubclass(cls, BwemuError), f"{name}.{cls.__name__}"
    assert len(seen) >= 15     # the walk found the classes it is about


def test_a_parsed_struct_layout_is_reused_across_processes(tmp_path, monkeypatch):
    elf = FirmwareBuild().ensure_built().wrapper_elf
    copy = tmp_path / "wrapper.elf"
    shutil.copy(elf, copy)
    monkeypatch.setenv("BWEMU_CACHE_DIR", str(tmp_path / "cache"))
    dwarf.clear_cache()
    before = dwarf.parses
    first = dwarf.struct_layout(copy, "ranges")
    assert dwarf.parses == before + 1
    dwarf.clear_cache()              # as a new process would start
    assert dwarf.struct_layout(copy, "ranges") == first
    assert dwarf.parses == before + 1, "the second read parsed DWARF again"
    # Different content (one byte of a section nobody reads) parses again.
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    dwarf.clear_cache()
    dwarf.struct_layout(copy, "ranges")
    assert dwarf.parses == before + 2


def test_a_second_cli_boot_parses_no_dwarf(tmp_path):
    env = {"BWEMU_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    code = ("import sys; from emulator.cli import main; from emulator.guest import dwarf;"
            "rc = main(['boot', '--json']); print('PARSES', dwarf.parses, file=sys.stderr);"
            "sys.exit(rc)")
    counts = []
    for _ in range(2):
        p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        counts.append(int(p.stderr.split("PARSES")[1]))
    assert counts[0] > 0 and counts[1] == 0
