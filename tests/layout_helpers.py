"""Compile tiny C files for the guest to get real DWARF struct layouts.

The model's renderers need the layouts the compiler really produced.  The
full firmware build is not needed for that: a C file that includes the
headers and defines the two objects, compiled with the firmware's flags plus
-g, carries the same struct types.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from emulator.guest.dwarf import struct_layout
from wrapper_model.layout import StructLayout

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "firmware" / "include"
CROSS_CC = "powerpc64-linux-gnu-gcc"

#: The object definitions of the real wrapper, for the real headers.
REAL_OBJECTS_C = """\
#include "memranges.h"
#include "simple_alloc.h"
struct range_table ranges;
struct alloc_heap heap;
"""


def guest_cflags() -> list[str]:
    """The project's guest compile flags (see the repository rules), plus -g."""
    gcc_include = subprocess.run([CROSS_CC, "-print-file-name=include"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    return ["-Os", "-g", "-std=gnu11", "-m64", "-mbig-endian", "-ffreestanding",
            "-fno-builtin", "-nostdinc", "-isystem", gcc_include,
            "-iquote", str(INCLUDE), "-fPIE", "-msoft-float", "-mno-altivec",
            "-mno-vsx", "-fno-stack-protector", "-Wall", "-Wextra",
            "-Wno-unused-parameter", "-Werror"]


def compile_guest_object(source: str, out_dir: Path, name: str = "t",
                         extra: tuple[str, ...] = ()) -> Path:
    """Compile C source text to a big-endian ppc64 .o in out_dir; skip the
    test when the cross compiler is not installed."""
    if shutil.which(CROSS_CC) is None:
        pytest.skip(f"{CROSS_CC} not installed")
    src = out_dir / f"{name}.c"
    obj = out_dir / f"{name}.o"
    src.write_text(source)
    proc = subprocess.run([CROSS_CC, *guest_cflags(), *extra, "-c", "-o", str(obj), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"guest compile of {name}.c failed:\n{proc.stderr}")
    return obj


def real_layouts(out_dir: Path) -> tuple[StructLayout, StructLayout]:
    """(ranges layout, heap layout) as the compiler lays out the headers."""
    obj = compile_guest_object(REAL_OBJECTS_C, out_dir, "objects")
    return struct_layout(obj, "ranges"), struct_layout(obj, "heap")
