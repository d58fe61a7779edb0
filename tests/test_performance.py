"""What the speed-ups rest on (docs/performance.md): the facts parsed from
an image are kept per content and are the same as a fresh parse; a
second process parses nothing; a rebuilt image is parsed again; the
firmware's make is skipped only when the sources are unchanged; and
`bwemu bench` writes every figure it prints to its JSON file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.guest import image_cache
from emulator.guest.addresses import LoadedImage
from emulator.guest.devices import initrd_checksum
from emulator.guest.elf import ElfImage
from emulator.guest.symbols import ImageSymbols
from emulator.harness import firmware as firmware_mod
from emulator.harness.firmware import FirmwareBuild

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A disk cache of this test's own, and nothing kept in the process."""
    monkeypatch.setenv("BWEMU_CACHE_DIR", str(tmp_path / "cache"))
    image_cache.clear()
    yield tmp_path / "cache"
    image_cache.clear()


def _facts(path: Path) -> tuple:
    elf = ElfImage(path)
    syms = ImageSymbols(path)
    scan = LoadedImage(elf, 0).scan_code("spin-test", lambda w: w if w == 0x48000000 else None)
    return (elf.entry, elf.bits, elf.segments, elf.symbols, elf.readonly_sections(),
            elf.relocation_targets, elf.lines, elf.load_alignment, elf.position_independent,
            syms._funcs, syms._labels, syms.code, syms.span, syms._lines, scan)


def test_facts_from_the_disk_cache_equal_a_fresh_parse(private_cache, monkeypatch):
    elf = FirmwareBuild().ensure_built().wrapper_elf
    first = _facts(elf)                      # parsed, then stored
    assert any(private_cache.glob("image-v*-elf.pickle"))
    image_cache.clear()                      # as a new process starts
    before = dict(image_cache.computed)
    again = _facts(elf)
    assert image_cache.computed == before, "a warm cache parsed the image again"
    assert again == first
    monkeypatch.setenv("BWEMU_CACHE_DIR", "")   # no disk cache: parsed from scratch
    image_cache.clear()
    assert _facts(elf) == first


def test_a_changed_image_is_parsed_again(private_cache, tmp_path):
    copy = tmp_path / "wrapper.elf"
    shutil.copy(FirmwareBuild().ensure_built().wrapper_elf, copy)
    ElfImage(copy)
    n = image_cache.computed.get("elf", 0)
    ElfImage(copy)
    assert image_cache.computed.get("elf", 0) == n          # kept in the process
    copy.write_bytes(copy.read_bytes() + b"\0" * 8)         # another content
    ElfImage(copy)
    assert image_cache.computed.get("elf", 0) == n + 1


def test_a_broken_image_is_refused_every_time_and_never_cached(private_cache, tmp_path):
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"not an elf at all")
    for _ in range(2):
        with pytest.raises(Exception, match="not an ELF"):
            ElfImage(bad)
    assert not any(private_cache.glob("*-elf.pickle"))


def test_a_second_cli_boot_parses_no_image(tmp_path):
    env = {"BWEMU_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    code = ("import sys, json; from emulator.cli import main; "
            "from emulator.guest import image_cache;"
            "rc = main(['boot', '--json']); "
            "print('COMPUTED', json.dumps(image_cache.computed), file=sys.stderr);"
            "print('LOADED', json.dumps([m for m in PARSERS if m in sys.modules]),"
            "      file=sys.stderr);"
            "sys.exit(rc)")
    parsers = ["elftools", "tomlkit", "capstone"]
    computed, loaded, outputs = [], [], []
    for _ in range(2):
        p = subprocess.run([sys.executable, "-c", f"PARSERS = {parsers!r}; {code}"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        computed.append(json.loads(p.stderr.split("COMPUTED")[1].split("LOADED")[0]))
        loaded.append(json.loads(p.stderr.split("LOADED")[1]))
        outputs.append(json.loads(p.stdout))
    assert computed[0].get("elf") and computed[1] == {}
    # pyelftools is for parsing, tomlkit for scenario files, capstone for
    # reports that show code: a warm default boot needs none of them
    assert "elftools" in loaded[0] and loaded[1] == []
    for out in outputs:
        out.pop("seconds", None)
    assert outputs[0] == outputs[1]


def test_make_is_skipped_only_while_the_sources_are_unchanged(monkeypatch):
    build = FirmwareBuild().ensure_built()
    calls: list[tuple] = []
    monkeypatch.setattr(firmware_mod, "_make", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(firmware_mod, "_built", {})        # a new process
    build.ensure_built()
    assert calls == [], "make ran although the sources had not changed"
    monkeypatch.setattr(firmware_mod, "_built", {})
    stamp = firmware_mod._sources_stamp()
    monkeypatch.setattr(firmware_mod, "_sources_stamp", lambda: stamp + 1)   # an edit
    build.ensure_built()
    assert len(calls) == 1


def test_the_initrd_checksum_is_the_same_kept_or_computed():
    data = bytes(range(256)) * 41 + b"\x07\x01\x02"          # a padded last word
    h = 0xCBF29CE484222325
    padded = data + bytes(-len(data) % 8)
    for i in range(0, len(padded), 8):
        h = ((h ^ int.from_bytes(padded[i:i + 8], "big")) * 0x100000001B3) % 2**64
    assert initrd_checksum(data) == h
    assert initrd_checksum(bytes(data)) == h                   # from the memo


def test_bench_writes_every_figure_it_prints(tmp_path):
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, "-m", "emulator.cli", "bench", "--pairs", "1",
                        "--boots", "1", "--operations", "200",
                        "--differential-examples", "3", "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    figures = doc["figures"]
    for key in ("cli_vs_qemu", "boots_per_second", "guest_mips_checked", "guest_mips_bare",
                "guest_mips_uncounted",
                "mirrored_ops_per_second", "differential_seconds", "peak_rss_16g_mib",
                "ring_cost", "watch_cost"):
        assert key in figures, key
        assert figures[key]["what"] in p.stdout
    for key, f in figures.items():
        if f["value"] is None:
            assert "skipped" in f["detail"], key            # a skip says why
        if f["target"]:
            assert f["met"] in (True, False, None)
    assert doc["machine"]["cores"] and len(doc["machine"]["load_before"]) == 3
    assert "load average" in p.stdout


def test_a_tree_that_passed_is_not_walked_again_and_a_broken_one_always_is(monkeypatch):
    from emulator.guest import devicetree
    from emulator.harness.scenario import MemoryTree
    walks: list[bytes] = []
    real = devicetree._check_structure
    monkeypatch.setattr(devicetree, "_check_structure",
                        lambda blob, name: (walks.append(blob), real(blob, name)))
    monkeypatch.setattr(devicetree, "_passed", set())
    good = MemoryTree().build()
    for _ in range(3):
        devicetree.check_structure(good)
        devicetree.check_structure(bytes(good))          # the same content, another object
    assert len(walks) == 1
    broken = b"\0" + good[1:]                             # no magic
    for _ in range(2):
        with pytest.raises(devicetree.DeviceTreeError, match="the tree as named"):
            devicetree.check_structure(broken, "the tree as named")
    assert len(walks) == 3


def test_without_qemu_the_peer_figure_is_skipped_with_a_note(monkeypatch):
    from emulator import bench
    from emulator.harness import peer
    monkeypatch.setattr(peer, "qemu_available", lambda qemu=peer.QEMU: False)
    figures = {f.key: f for f in bench.cli_vs_qemu(1)}
    ratio = figures["cli_vs_qemu"]
    assert ratio.value is None and ratio.met is None
    assert "qemu-system-ppc64 is not installed" in ratio.detail
    assert "skipped" in ratio.line() and "MISSES" not in ratio.line()
    assert figures["cli_seconds"].value is not None and figures["cli_seconds"].value > 0
