"""Reading the user's files: regular files only, within a size limit, each
error naming the input (`--dtb board.dtb: ...`), never a hang on a FIFO or
an endless read of /dev/zero."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from ..errors import InputError

MiB = 1 << 20
#: The largest file bwemu reads for each input, by its option's name.
LIMITS = {"dtb": 16 * MiB, "initrd": 1024 * MiB, "attach-initrd": 1024 * MiB,
          "attached_initrd": 1024 * MiB, "image": 256 * MiB,
          # a vmlinux with its DWARF runs to several hundred MiB
          "kernel": 2048 * MiB}


def _limit(what: str, limit: int | None) -> int:
    """The size limit given, else the one of the option `what` names."""
    if limit is not None:
        return limit
    return LIMITS.get(what.split(" ", 1)[0].lstrip("-"), 256 * MiB)


def _refuse(st: os.stat_result, p: Path, what: str, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {p}: not a regular file")
    if st.st_size > limit:
        raise InputError(f"{what} {p}: {st.st_size} bytes, more than the "
                         f"{limit // MiB} MiB bwemu reads")


def check_input(path: str | os.PathLike[str], what: str, limit: int | None = None) -> Path:
    """The path of a regular file within the size limit, for an input read
    later (an image, a kernel ELF): the same refusals as read_input, from
    the file's status alone, before a boot starts."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise InputError(f"{what} {p}: cannot read: {e.strerror}") from None
    _refuse(st, p, what, _limit(what, limit))
    return p


def read_input(path: str | os.PathLike[str], what: str, limit: int | None = None) -> bytes:
    """The bytes of a regular file; `what` names it in errors: its option
    ("--dtb") or its scenario-file key ("[tree] dtb"), whose name also
    chooses the size limit."""
    p = Path(path)
    limit = _limit(what, limit)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise InputError(f"{what} {p}: cannot read: {e.strerror}") from None
    try:
        _refuse(os.fstat(fd), p, what, limit)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputError(f"{what} {p}: grew past {limit // MiB} MiB while being read")
    return data


def read_tree(path: str | os.PathLike[str], what: str, limit: int | None = None) -> bytes:
    """A device tree blob, or a .dts source compiled with dtc: trees are
    kept as source in most projects, and a .dts read as a blob would only
    meet the wrapper's "bad magic"."""
    p = Path(path)
    if p.suffix != ".dts":
        return read_input(p, what, limit)
    check_input(p, what, limit)
    if shutil.which("dtc") is None:
        raise InputError(f"{what} {p}: a .dts needs dtc (Debian: device-tree-compiler)")
    try:
        proc = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "-", str(p)],
                              capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise InputError(f"{what} {p}: dtc did not finish in 60 s") from None
    if proc.returncode != 0:
        first = (proc.stderr.decode(errors="replace").strip().splitlines()
                 or ["(no message)"])[0]
        raise InputError(f"{what} {p}: dtc cannot compile it: {first}")
    return proc.stdout


__all__ = ["LIMITS", "check_input", "read_input", "read_tree"]
