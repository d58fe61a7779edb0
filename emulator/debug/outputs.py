"""Files a command writes (--map, --trace-file, coverage's -o, fuzz's
--findings folder): refused by name before any boot when they cannot be
written, and a write that fails at the end is one line too.

    check_writable(path, option)      before the work: raises OutputFileError
    check_folder(path, option)        the same for a folder files will go into
    open_output(path, option)         the file opened for writing, or OutputFileError
    write_output(path, text, option)  the whole file at once, or OutputFileError
    write_failed(path, option, e)     the error for an OSError of a later write

`option` names the flag in the message ("--map /x/y.svg: ...").  Only what
can be known before writing is checked: a missing directory, a directory
given as the file, no permission, a read-only file system.  A device that
is full (/dev/full) says so only when written to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from ..errors import InputError


class OutputFileError(InputError):
    """A file named on the command line that cannot be written."""


def write_failed(path: str, option: str, e: OSError) -> OutputFileError:
    """The error for path, which could not be opened or written (e)."""
    return OutputFileError(f"{option} {path}: cannot write it: "
                           f"{e.strerror or e.__class__.__name__}")


def check_writable(path: str, option: str) -> None:
    """Raises OutputFileError unless path can be opened for writing.  A file
    that exists is opened without being changed; one that does not is
    created and removed again."""
    p = Path(path)
    if p.is_dir():
        raise OutputFileError(f"{option} {path}: is a directory, not a file")
    if not os.path.lexists(p) and not p.parent.is_dir():
        raise OutputFileError(f"{option} {path}: there is no directory {p.parent}")
    existed = os.path.lexists(p)
    try:
        # Append, not truncate; non-blocking, so that a FIFO without a
        # reader is refused instead of waiting for one.
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError as e:
        raise write_failed(path, option, e) from None
    os.close(fd)
    if not existed:
        p.unlink()


def check_folder(path: Path, option: str) -> None:
    """Raises OutputFileError unless path is a folder that is there, or can
    be made, and can be written (fuzz --findings: checked before the
    campaign, not when its first finding is written)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputFileError(f"{option} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFileError(f"{option} {path}: {existing} cannot be written")


def open_output(path: str, option: str) -> TextIO:
    """path opened for writing (truncated), or OutputFileError."""
    check_writable(path, option)
    try:
        return open(path, "w")     # noqa: SIM115 (the caller closes it)
    except OSError as e:
        raise write_failed(path, option, e) from None


def write_output(path: str, text: str, option: str) -> None:
    """Writes text to path; a failure (a full device...) is OutputFileError."""
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise write_failed(path, option, e) from None


__all__ = ["OutputFileError", "check_folder", "check_writable", "open_output",
           "write_failed", "write_output"]
