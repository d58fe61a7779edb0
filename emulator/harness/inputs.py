"""Reading the user's files: regular files only, within a size limit, each
error naming the input (`--dtb board.dtb: ...`), never a hang on a FIFO or
an endless read of /dev/zero."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InputError

MiB = 1 << 20
#: The largest file bwemu reads for each input, by its option's name.
LIMITS = {"dtb": 16 * MiB, "initrd": 1024 * MiB, "attach-initrd": 1024 * MiB,
          "image": 256 * MiB, "kernel": 256 * MiB}


def read_input(path: str | os.PathLike[str], what: str, limit: int | None = None) -> bytes:
    """The bytes of a regular file; `what` names it in errors: its option
    ("--dtb"), whose name also chooses the size limit."""
    p = Path(path)
    kind = what.split(" ", 1)[0].lstrip("-")
    limit = limit if limit is not None else LIMITS.get(kind, 256 * MiB)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise InputError(f"{what} {p}: cannot read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} {p}: not a regular file")
        if st.st_size > limit:
            raise InputError(f"{what} {p}: {st.st_size} bytes, more than the "
                             f"{limit // MiB} MiB bwemu reads")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputError(f"{what} {p}: grew past {limit // MiB} MiB while being read")
    return data


__all__ = ["LIMITS", "read_input"]
