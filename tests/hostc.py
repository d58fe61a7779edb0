"""Build firmware C for the host, with AddressSanitizer and UBSan.

The wrapper's library code (memranges, simple_alloc, fdt, inflate, printf...)
is ordinary freestanding C, so it is also compiled for the host and driven by
small driver programs in firmware/host/.  A driver is rebuilt when any of its
sources or headers is newer than the binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
HOST_BUILD = ROOT / "build" / "host"

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


class HostBuildError(RuntimeError):
    pass


def host_cc() -> str:
    cc = os.environ.get("HOSTCC", "cc")
    if shutil.which(cc) is None:
        raise HostBuildError(f"host C compiler {cc!r} not found (install gcc)")
    return cc


def build_host_tool(name: str, sources: list[str], defines: tuple[str, ...] = (),
                    sanitize: bool = True) -> Path:
    """Compile firmware/host/<name>.c plus firmware sources into build/host.

    sources are paths relative to firmware/.  Returns the executable's path.
    """
    tag = "-".join([name, *[d.replace("=", "_") for d in defines]])
    if not sanitize:
        tag += "-nosan"
    out = HOST_BUILD / tag
    srcs = [FIRMWARE / "host" / f"{name}.c", *[FIRMWARE / s for s in sources]]
    deps = srcs + list((FIRMWARE / "include").glob("*.h")) + list((FIRMWARE / "host").glob("*.h"))
    if out.exists() and all(out.stat().st_mtime >= d.stat().st_mtime for d in deps):
        return out
    HOST_BUILD.mkdir(parents=True, exist_ok=True)
    cmd = [host_cc(), "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra",
           "-DBW_HOST", f"-iquote{FIRMWARE / 'include'}",
           *(SANITIZE if sanitize else []),
           *[f"-D{d}" for d in defines], "-o", str(out), *map(str, srcs)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostBuildError(f"host build of {name} failed:\n{proc.stderr}")
    return out
